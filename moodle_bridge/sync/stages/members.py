"""Cohort memberships: ``core_cohort_add_cohort_members`` and ``core_cohort_delete_cohort_members``.

A member of a course's audience cohort is enrolled in that course by Moodle's cohort sync;
the bridge records that enrolment (method ``cohort``) with the membership.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from moodle_bridge import errors
from moodle_bridge.moodle import cohorts as moodle_cohorts
from moodle_bridge.moodle.api import Caller
from moodle_bridge.store import Changes, EnrolmentRow
from moodle_bridge.sync.journal import Action, MembersPayload
from moodle_bridge.sync.plan import Membership, member_change
from moodle_bridge.sync.stages.base import RecordFailure, Settled, StageDefaults, Targets
from moodle_bridge.sync.verify import Verifier

__all__ = ["MemberAddStage", "MemberRemoveStage"]

#: Moodle's warning for a user who is a member already: the membership is there.
ALREADY_MEMBER = "3"


class _MemberStage(StageDefaults):
    """What adding and removing share: the ids they need and what the journal keeps."""

    action: Action
    progress: str

    def __init__(self, targets: Targets) -> None:
        self.targets = targets

    def blocked(self, item: Membership) -> str | None:
        """A membership needs the person's account and the cohort in Moodle."""
        return self.targets.missing(item.nip, cohort=item.cohort)

    def payload(self, items: Sequence[Membership]) -> MembersPayload:
        """``(cohort idnumber, NIP)`` pairs."""
        return MembersPayload([(m.cohort, m.nip) for m in items])

    def failure(self, item: Membership, errorcode: str | None, reason: str) -> RecordFailure:
        """The failure of the person, under this stage's action."""
        return RecordFailure(self.progress, item.nip, errorcode, reason)

    def _settled(self, items: Sequence[Membership], changes: Changes) -> Settled:
        changes.log = [member_change(self.progress, m, self.targets.units) for m in items]
        return Settled({"count": len(items)}, changes, Counter({self.progress: len(items)}))


class MemberAddStage(_MemberStage):
    """Adds members: Moodle adds each on its own; a refused one is bisected out."""

    action = Action.COHORT_ADD
    progress = "cohort_add"

    def __init__(self, targets: Targets, verifier: Verifier) -> None:
        super().__init__(targets)
        self.verifier = verifier

    def wire(self, item: Membership) -> moodle_cohorts.CohortMemberRef:
        """The membership by Moodle ids."""
        return moodle_cohorts.CohortMemberRef.by_ids(
            self.targets.cohorts[item.cohort], self.targets.users[item.nip]
        )

    def send(self, caller: Caller, items: Sequence[Membership]) -> None:
        """Add the batch; raises MoodleException when Moodle skipped a member for a reason
        other than "already a member" (which one is not said: the runner bisects)."""
        wsfunction = "core_cohort_add_cohort_members"
        warnings = moodle_cohorts.add_cohort_members(caller, [self.wire(m) for m in items])
        bad = [w for w in warnings if w.warningcode != ALREADY_MEMBER]
        if bad:
            msg = f"{len(bad)} member(s) not added: {bad[0].message}"
            raise errors.MoodleException(msg, errorcode=bad[0].warningcode, wsfunction=wsfunction)

    def settle(self, items: Sequence[Membership], answer: None) -> Settled:
        """Memberships, and the enrolments cohort sync makes of audience cohorts."""
        enrolments = [
            EnrolmentRow(m.nip, m.course, False, m.timestart, m.timeend, method="cohort",
                         cohort=m.cohort)
            for m in items
            if m.course
        ]  # fmt: skip
        changes = Changes(members_added=[(m.cohort, m.nip) for m in items], enrolments=enrolments)
        return self._settled(items, changes)

    def verify(self, changes: Changes) -> list[RecordFailure]:
        """The first member of each audience cohort must be enrolled in its course."""
        return self.verifier.cohort_sync(changes.enrolments, self.targets.users)


class MemberRemoveStage(_MemberStage):
    """Removes members: all or nothing per batch in Moodle."""

    action = Action.COHORT_REMOVE
    progress = "cohort_remove"

    def wire(self, item: Membership) -> moodle_cohorts.CohortMember:
        """The membership by Moodle ids."""
        return moodle_cohorts.CohortMember(
            cohortid=self.targets.cohorts[item.cohort], userid=self.targets.users[item.nip]
        )

    def send(self, caller: Caller, items: Sequence[Membership]) -> None:
        """Remove the batch (removing a non-member is no error)."""
        moodle_cohorts.delete_cohort_members(caller, [self.wire(m) for m in items])

    def settle(self, items: Sequence[Membership], answer: None) -> Settled:
        """The memberships are gone."""
        return self._settled(items, Changes(members_removed=[(m.cohort, m.nip) for m in items]))
