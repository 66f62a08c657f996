"""Manual enrolments: ``enrol_manual_enrol_users`` enrols, suspends, reactivates and retimes.

Moodle enrols all or none of a batch; enrolling again is harmless, so a retry or a resumed run
may send a batch again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from moodle_bridge.moodle import enrol as moodle_enrol
from moodle_bridge.moodle.api import Caller
from moodle_bridge.store import Changes, EnrolmentRow
from moodle_bridge.sync.journal import Action, EnrolPayload
from moodle_bridge.sync.plan import EnrolChange, enrol_change
from moodle_bridge.sync.stages.base import RecordFailure, Settled, StageDefaults, Targets
from moodle_bridge.sync.verify import Verifier

__all__ = ["EnrolStage"]


class EnrolStage(StageDefaults):
    """Manual enrolments with the configured role."""

    action = Action.ENROL
    progress = "enrol"

    def __init__(self, targets: Targets, verifier: Verifier) -> None:
        self.targets = targets
        self.verifier = verifier

    def blocked(self, item: EnrolChange) -> str | None:
        """An enrolment needs the person's account and the course in Moodle."""
        return self.targets.missing(item.nip, course=item.course)

    def wire(self, item: EnrolChange) -> moodle_enrol.Enrolment:
        """The enrolment by Moodle ids, with its window and suspension."""
        return moodle_enrol.Enrolment(
            roleid=self.verifier.role_id,
            userid=self.targets.users[item.nip],
            courseid=self.targets.courses[item.course],
            timestart=item.timestart,
            timeend=item.timeend,
            suspend=item.suspended,
        )

    def payload(self, items: Sequence[EnrolChange]) -> EnrolPayload:
        """``(NIP, course, kind)`` rows."""
        return EnrolPayload([(e.nip, e.course, e.kind) for e in items])

    def send(self, caller: Caller, items: Sequence[EnrolChange]) -> None:
        """Enrol the batch (Moodle answers nothing)."""
        moodle_enrol.enrol_users(caller, [self.wire(item) for item in items])

    def settle(self, items: Sequence[EnrolChange], answer: None) -> Settled:
        """The enrolments as set, with the reason of each suspension."""
        rows = [
            EnrolmentRow(
                e.nip, e.course, e.suspended, e.timestart, e.timeend,
                suspended_reason=e.reason.to_json() if e.suspended else None,
            )
            for e in items
        ]  # fmt: skip
        log = [enrol_change(e, self.targets.units) for e in items]
        applied = Counter(f"enrol_{e.kind}" for e in items)
        return Settled({"count": len(items)}, Changes(enrolments=rows, log=log), applied)

    def failure(self, item: EnrolChange, errorcode: str | None, reason: str) -> RecordFailure:
        """The failure of the person, under the change's kind."""
        return RecordFailure(f"enrol_{item.kind}", item.nip, errorcode, reason)

    def verify(self, changes: Changes) -> list[RecordFailure]:
        """The first active enrolment proves the configured role is the student role."""
        first = next((row for row in changes.enrolments if not row.suspended), None)
        if first is not None:
            self.verifier.role(self.targets.users[first.nip], self.targets.courses[first.course])
        return []
