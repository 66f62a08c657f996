"""What a run did or would do, for people (the CLI renders it) and scripts (``--json``)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moodle_bridge.exitcodes import ExitCode
from moodle_bridge.gap_engine import GapPlan
from moodle_bridge.logs import mask
from moodle_bridge.roster.person import RowError
from moodle_bridge.store import CohortRow, NewAccount
from moodle_bridge.sync.executor import ExecutionResult, RecordFailure
from moodle_bridge.sync.plan import Absence, GuardTrip, Plan
from moodle_bridge.sync.rates import Estimate

__all__ = ["SyncReport"]

_STATUS = {ExitCode.OK: "ok", ExitCode.RECORD_ERRORS: "record_errors", ExitCode.GUARD: "guard"}


@dataclass
class SyncReport:
    """Everything a run did or would do."""

    command: str
    plugin: str
    roster: str
    scope: tuple[str, ...] = ()
    source: str | None = None
    run_id: int | None = None
    rows: int = 0
    people: int = 0
    row_errors: list[RowError] = field(default_factory=list)
    row_warnings: list[RowError] = field(default_factory=list)
    #: Refused rows whose NIP could not be read: nobody can be tied to them.
    untied: int = 0
    #: The headers of the roster's (and assessments') NIP column, as the row errors name it.
    nip_columns: tuple[str, ...] = ("nip",)
    #: Catalogue courses the mapping tables name but Moodle lacks (not a roster problem).
    missing_courses: list[str] = field(default_factory=list)
    #: Cohorts that exist in Moodle but are not the bridge's (see ``--adopt-cohorts``).
    foreign_cohorts: list[str] = field(default_factory=list)
    #: Cohorts someone else made that ``--adopt-cohorts`` would take over (plan, guard, declined
    #: run alike), and the idnumbers of those this run did take over (only once applied).
    cohorts_to_adopt: list[CohortRow] = field(default_factory=list)
    adopted_cohorts: list[str] = field(default_factory=list)
    plan: Plan | None = None
    #: NIP -> name of the people the plan concerns, for the lines people read.
    names: dict[str, str] = field(default_factory=dict)
    guard: GuardTrip | None = None
    proposed_removals: Path | None = None
    resumed: Counter[str] = field(default_factory=Counter)
    #: Existing accounts ``--adopt`` would take over (plan, guard, declined run alike), and
    #: how many this run did take over (only once applied).
    accounts_to_adopt: list[NewAccount] = field(default_factory=list)
    adopted: int = 0
    result: ExecutionResult | None = None
    declined: bool = False
    gap_plan: GapPlan | None = None
    #: The digest of what the gap engine read, and whether it was the same as last time (then
    #: the engine did not run and enrolments were left as they are).
    gaps_digest: str | None = None
    gaps_unchanged: bool = False
    #: How long applying the plan takes Moodle, at this state's measured rates or the contract's.
    estimate: Estimate | None = None
    #: Moodle's seconds per created or email-changed user (the slower), when above the
    #: threshold of a slow site.
    slow_user_seconds: float | None = None
    calls: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def planned(self) -> dict[str, int]:
        """Counts per planned action."""
        return self.plan.summary() if self.plan is not None else {}

    @property
    def failures(self) -> list[RecordFailure]:
        """Records Moodle refused."""
        return self.result.failures if self.result else []

    @property
    def exit_code(self) -> ExitCode:
        """All done, record errors, a safety guard, or stopped by a fatal error."""
        if self.result is not None and self.result.stopped:
            return ExitCode.FATAL
        if self.guard is not None:
            return ExitCode.GUARD
        if self.row_errors or self.failures:
            return ExitCode.RECORD_ERRORS
        return ExitCode.OK

    @property
    def status(self) -> str:
        """The run's status word for the store."""
        return _STATUS.get(self.exit_code, "fatal")

    def to_dict(self, *, personal: bool = False) -> dict[str, Any]:
        """The report as JSON-able data; NIPs are masked unless ``personal``."""
        show: Callable[[str | None], str | None] = (
            (lambda nip: nip) if personal else (lambda nip: mask(nip) if nip else nip)
        )
        result = self.result
        return {
            "command": self.command,
            "plugin": self.plugin,
            "roster": self.roster,
            "scope": list(self.scope),
            "source": self.source,
            "run_id": self.run_id,
            "exit_code": self.exit_code,
            "rows": self.rows,
            "people": self.people,
            "planned": self.planned,
            "applied": dict(result.applied) if result else {},
            "stopped": result.stopped if result else None,
            **(
                {"stopped_moodle_answer": result.stopped_raw}
                if personal and result and result.stopped_raw
                else {}
            ),
            "declined": self.declined,
            "guard": self.guard.reason if self.guard else None,
            "proposed_removals": str(self.proposed_removals) if self.proposed_removals else None,
            "resumed": dict(self.resumed),
            "accounts_to_adopt": len(self.accounts_to_adopt),
            "adopted": self.adopted,
            "cohorts_to_adopt": [
                {"idnumber": c.idnumber, "name": c.name, "moodle_id": c.moodle_id}
                for c in self.cohorts_to_adopt
            ],
            "adopted_cohorts": self.adopted_cohorts,
            "foreign_cohorts": self.foreign_cohorts,
            "missing_courses": self.missing_courses,
            # Audience cohort -> the course an administrator must link it to (Cohort sync).
            "awaiting_link": dict(sorted(self.plan.awaiting_link.items())) if self.plan else {},
            "untied_rows": self.untied,
            "row_errors": [_row(e, show) for e in self.row_errors],
            "row_warnings": [_row(e, show) for e in self.row_warnings],
            "kept": [
                {"nip": show(k.nip), "unit": k.unit, "why": k.why, "row": k.row}
                for k in (self.plan.kept if self.plan else [])
            ],
            "absent": [_absence(a, show) for a in (self.plan.absences if self.plan else [])],
            "record_errors": [_failure(f, show, personal=personal) for f in self.failures],
            "gaps_unchanged": self.gaps_unchanged,
            "estimated_seconds": round(self.estimate.seconds, 1) if self.estimate else None,
            "slow_user_seconds": self.slow_user_seconds,
            "calls": dict(self.calls),
            "seconds": round(self.seconds, 3),
        }


def _failure(
    failure: RecordFailure, show: Callable[[str | None], str | None], *, personal: bool
) -> dict[str, Any]:
    return {
        "action": failure.action,
        "source": failure.source,
        "row": failure.row,
        "nip": show(failure.nip),
        "errorcode": failure.errorcode,
        "reason": failure.reason,
        **({"moodle_answer": failure.raw} if personal and failure.raw else {}),
    }


def _absence(absence: Absence, show: Callable[[str | None], str | None]) -> dict[str, Any]:
    """An absence in Unix seconds, and as the days the text plan shows (local time)."""
    return {
        "nip": show(absence.nip),
        "unit": absence.unit,
        "since": absence.since,
        "suspend_on": absence.suspend_on,
        "since_date": dt.date.fromtimestamp(absence.since).isoformat(),
        "suspend_on_date": dt.date.fromtimestamp(absence.suspend_on).isoformat(),
    }


def _row(error: RowError, show: Callable[[str | None], str | None]) -> dict[str, Any]:
    return {
        "source": error.source,
        "row": error.row,
        "column": error.column,
        "reason": error.reason,
        "nip": show(error.nip),
    }
