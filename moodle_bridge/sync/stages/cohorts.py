"""Cohorts the plan needs and Moodle does not have yet: ``core_cohort_create_cohorts``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from moodle_bridge.i18n import _
from moodle_bridge.moodle import cohorts as moodle_cohorts
from moodle_bridge.moodle.api import Caller
from moodle_bridge.store import Changes, CohortRow
from moodle_bridge.sync.journal import Action, CohortsPayload
from moodle_bridge.sync.stages.base import RecordFailure, Settled, StageDefaults

__all__ = ["CohortItem", "CohortStage"]

#: A cohort to create: ``(idnumber, name)``.
CohortItem = tuple[str, str]


class CohortStage(StageDefaults):
    """Creates cohorts (all or nothing per batch in Moodle: a refused one is bisected out)."""

    action = Action.CREATE_COHORTS
    progress = "cohort_create"

    def wire(self, item: CohortItem) -> moodle_cohorts.NewCohort:
        """A system-level cohort."""
        idnumber, name = item
        return moodle_cohorts.NewCohort(name=name, idnumber=idnumber)

    def payload(self, items: Sequence[CohortItem]) -> CohortsPayload:
        """The idnumbers sent."""
        return CohortsPayload([idnumber for idnumber, _ in items])

    def send(self, caller: Caller, items: Sequence[CohortItem]) -> list[moodle_cohorts.Cohort]:
        """Create the batch; Moodle answers with the cohorts, in order."""
        return moodle_cohorts.create_cohorts(caller, [self.wire(item) for item in items])

    def settle(self, items: Sequence[CohortItem], answer: list[moodle_cohorts.Cohort]) -> Settled:
        """The cohorts are the bridge's."""
        rows = [CohortRow(c.idnumber, c.id, c.name, True) for c in answer]
        return Settled(
            {"created": len(rows)}, Changes(cohorts=rows), Counter(cohort_create=len(rows))
        )

    def failure(self, item: CohortItem, errorcode: str | None, reason: str) -> RecordFailure:
        """The failure names the cohort (it has no NIP)."""
        why = _("cohort {cohort}: {reason}").format(cohort=item[0], reason=reason)
        return RecordFailure("cohort_create", None, errorcode, why)

    def unsettled(self, items: Sequence[CohortItem], changes: Changes) -> list[CohortItem]:
        """Cohorts the read-back did not find are created again."""
        found = {cohort.idnumber for cohort in changes.cohorts}
        return [item for item in items if item[0] not in found]
