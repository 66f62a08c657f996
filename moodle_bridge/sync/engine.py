"""One provisioning run: roster -> desired state -> resume -> plan -> guards -> apply -> report."""

from __future__ import annotations

import csv
import datetime as dt
import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from moodle_bridge import errors
from moodle_bridge.completions import PullOptions, pull_completions
from moodle_bridge.gap_engine import GapPlan
from moodle_bridge.logs import mask
from moodle_bridge.moodle import cohorts as moodle_cohorts
from moodle_bridge.moodle import courses as moodle_courses
from moodle_bridge.moodle import enrol as moodle_enrol
from moodle_bridge.moodle import users as moodle_users
from moodle_bridge.moodle.api import Caller, CountingCaller
from moodle_bridge.roster.assessment import Assessment
from moodle_bridge.roster.generic import RosterResult
from moodle_bridge.roster.person import RowError
from moodle_bridge.store import Batch, CohortRow, FinalStatus, NewAccount, Store
from moodle_bridge.sync.desired import (
    AccountPolicy,
    AccountRules,
    DesiredState,
    build_desired,
    fingerprint,
)
from moodle_bridge.sync.executor import (
    CircuitBreaker,
    ExecutionResult,
    Executor,
    Progress,
    RecordFailure,
    find_cohorts,
    find_created,
    moodle_record,
)
from moodle_bridge.sync.gaps import GapInputs, GapState, gap_state
from moodle_bridge.sync.planner import (
    Guards,
    GuardTrip,
    KnownAccount,
    KnownEnrolment,
    Plan,
    plan,
)

#: Values per ``core_user_get_users_by_field`` read: Moodle answers 1000 in about 2.6 s.
READ_CHUNK = 1000

EXIT_OK, EXIT_RECORD_ERRORS, EXIT_GUARD, EXIT_FATAL = 0, 1, 3, 4


class Unit(AccountRules, Protocol):
    """The unit-plugin surface the engine uses (see :class:`moodle_bridge.units.UnitMapper`)."""

    code: str
    any_unit: bool

    def read_roster(self, path: Path) -> RosterResult: ...

    def read_assessments(self, path: Path) -> tuple[list[Assessment], list[RowError]]: ...


@dataclass(frozen=True)
class SyncOptions:
    """How a run behaves (from the command line and the settings)."""

    apply: bool = True
    reconcile: bool = False
    adopt: bool = False
    guards: Guards = field(default_factory=Guards)
    policy: AccountPolicy = field(default_factory=AccountPolicy)
    workers: int = 2
    field_budget: int = 4990
    max_failure_rate: float = 0.5
    role_id: int = 5
    role_shortname: str = "student"


@dataclass
class SyncReport:
    """Everything a run did or would do, for people (CLI) and scripts (``--json``)."""

    command: str
    unit: str
    roster: str
    run_id: int | None = None
    rows: int = 0
    people: int = 0
    row_errors: list[RowError] = field(default_factory=list)
    row_warnings: list[RowError] = field(default_factory=list)
    planned: dict[str, int] = field(default_factory=dict)
    guard: GuardTrip | None = None
    proposed_removals: Path | None = None
    resumed: Counter[str] = field(default_factory=Counter)
    adopted: int = 0
    result: ExecutionResult | None = None
    declined: bool = False
    gap_plan: GapPlan | None = None
    calls: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def failures(self) -> list[RecordFailure]:
        """Records Moodle refused."""
        return self.result.failures if self.result else []

    @property
    def exit_code(self) -> int:
        """0 all done; 1 record errors; 3 safety guard; 4 stopped by a fatal error."""
        if self.result is not None and self.result.stopped:
            return EXIT_FATAL
        if self.guard is not None:
            return EXIT_GUARD
        if self.row_errors or self.failures:
            return EXIT_RECORD_ERRORS
        return EXIT_OK

    @property
    def status(self) -> str:
        """The run's status word for the store."""
        return {
            EXIT_OK: "ok",
            EXIT_RECORD_ERRORS: "record_errors",
            EXIT_GUARD: "guard",
            EXIT_FATAL: "fatal",
        }[self.exit_code]

    def to_dict(self, *, personal: bool = False) -> dict[str, Any]:
        """The report as JSON-able data; NIPs are masked unless ``personal``."""
        show: Callable[[str | None], str | None] = (
            (lambda nip: nip) if personal else (lambda nip: mask(nip) if nip else nip)
        )
        result = self.result
        return {
            "command": self.command,
            "unit": self.unit,
            "roster": self.roster,
            "run_id": self.run_id,
            "exit_code": self.exit_code,
            "rows": self.rows,
            "people": self.people,
            "planned": self.planned,
            "applied": dict(result.applied) if result else {},
            "stopped": result.stopped if result else None,
            "declined": self.declined,
            "guard": self.guard.reason if self.guard else None,
            "proposed_removals": str(self.proposed_removals) if self.proposed_removals else None,
            "resumed": dict(self.resumed),
            "adopted": self.adopted,
            "row_errors": [
                {
                    "source": e.source,
                    "row": e.row,
                    "column": e.column,
                    "reason": e.reason,
                    "nip": show(e.nip),
                }
                for e in self.row_errors
            ],
            "row_warnings": [
                {
                    "source": e.source,
                    "row": e.row,
                    "column": e.column,
                    "reason": e.reason,
                    "nip": show(e.nip),
                }
                for e in self.row_warnings
            ],
            "record_errors": [
                {
                    "action": f.action,
                    "source": f.source,
                    "row": f.row,
                    "nip": show(f.nip),
                    "errorcode": f.errorcode,
                    "reason": f.reason,
                }
                for f in self.failures
            ],
            "calls": dict(self.calls),
            "seconds": round(self.seconds, 3),
        }


class Engine:
    """Runs plan and sync for one unit plugin against one Moodle and one state store."""

    def __init__(
        self,
        caller: Caller,
        store: Store,
        state_dir: Path,
        options: SyncOptions,
        *,
        progress: Progress | None = None,
    ) -> None:
        self.caller = CountingCaller(caller)
        self.store = store
        self.state_dir = state_dir
        self.options = options
        self.progress = progress

    def run(
        self,
        unit_name: str,
        unit: Unit,
        roster_path: Path,
        *,
        gaps: GapInputs | None = None,
        confirm: Callable[[Plan, SyncReport], bool] | None = None,
    ) -> SyncReport:
        """Read the roster, plan, and (when ``options.apply``) apply. Never raises for a record;
        raises ConfigError for an unusable roster or broken mapping tables, and MoodleError only
        before anything is written when not applying.

        With ``gaps``, the run also enrols people into the courses that close their competency
        gaps and keeps the gap cohorts; without, enrolments are left as they are.
        """
        started = time.monotonic()
        command = "sync" if self.options.apply else "plan"
        report = SyncReport(command, unit_name, str(roster_path))
        roster = unit.read_roster(roster_path)
        report.rows, report.people = roster.rows, len(roster.people)
        report.row_errors, report.row_warnings = roster.errors, roster.warnings
        gap = None
        if gaps is not None:
            gap = gap_state(
                roster.people, unit, gaps, self.store.enrolments(), self.store.completions()
            )
            report.gap_plan = gap.plan
            report.row_errors = [*report.row_errors, *gap.errors]
        desired = build_desired(
            roster.people, unit, self.options.policy, gap.cohorts if gap else None
        )
        # The people are in the desired state now; at 233,000 they are worth freeing.
        del roster
        report.row_warnings = [*report.row_warnings, *desired.warnings]
        report.row_errors = [*report.row_errors, *desired.errors]

        if self.options.apply:
            report.run_id = self._begin(command, unit_name)
        try:
            self._prepare(report, desired)
            course_ids = self._course_ids(gap, report) if gap else {}
            the_plan = self._plan(desired, unit, report, gap, course_ids)
        except (errors.Fatal, errors.Retriable) as error:
            report.result = ExecutionResult(stopped=str(error))
            return self._finish(report, started)
        report.planned = the_plan.summary()
        report.guard = the_plan.guard
        if the_plan.guard is not None:
            report.proposed_removals = self._write_removals(the_plan.guard, report)
            return self._finish(report, started)
        if not self.options.apply or the_plan.is_empty:
            return self._finish(report, started)
        if confirm is not None and not confirm(the_plan, report):
            report.declined = True
            return self._finish(report, started)
        assert report.run_id is not None
        executor = Executor(
            self.caller,
            self.store,
            report.run_id,
            field_budget=self.options.field_budget,
            workers=self.options.workers,
            progress=self.progress,
            breaker=CircuitBreaker(max_failure_rate=self.options.max_failure_rate),
            role_id=self.options.role_id,
            role_shortname=self.options.role_shortname,
        )
        cohort_ids = {
            c.idnumber: int(c.moodle_id)
            for c in self.store.cohorts().values()
            if c.moodle_id is not None
        }
        report.result = executor.apply(the_plan, cohort_ids, course_ids)
        if gap is not None and gap.cohort_courses and not report.result.stopped:
            self._check_cohort_sync(the_plan, gap, report.result)
        if not report.result.stopped:
            self.store.record_units_seen(
                report.run_id, Counter(a.unit for a in desired.accounts.values() if a.active)
            )
        return self._finish(report, started)

    # --- runs ------------------------------------------------------------------------------
    def _begin(self, command: str, unit_name: str) -> int:
        here = socket.gethostname()
        stale = []
        for run in self.store.unfinished_runs():
            if run.host == here and run.pid and run.pid != os.getpid() and _alive(run.pid):
                msg = (
                    f"another moodle-bridge run (pid {run.pid}) is using this state "
                    "directory; wait for it to finish"
                )
                raise errors.ConfigError(msg)
            stale.append(run.id)
        self.store.mark_crashed(stale)
        return self.store.begin_run(command, unit_name)

    def _finish(self, report: SyncReport, started: float) -> SyncReport:
        report.calls = self.caller.calls
        report.seconds = time.monotonic() - started
        if report.run_id is not None:
            self.store.finish_run(
                report.run_id, cast(FinalStatus, report.status), report.to_dict(personal=True)
            )
        return report

    def _write_removals(self, guard: GuardTrip, report: SyncReport) -> Path:
        folder = self.state_dir / "reports"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = folder / f"proposed-suspensions-{report.unit}-{stamp}.csv"
        accounts = self.store.accounts()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["nip", "moodle_id", "unit"])
            for nip in guard.suspensions:
                account = accounts.get(nip)
                writer.writerow(
                    [nip, account.moodle_id if account else "", account.unit if account else ""]
                )
        return path

    # --- before planning -------------------------------------------------------------------
    def _prepare(self, report: SyncReport, desired: DesiredState) -> None:
        if not self.options.apply:
            return
        for batch in self.store.pending_batches():
            report.resumed[batch.action] += 1
            self._resume(batch, report.run_id)
        if self.options.adopt:
            report.adopted = self._adopt(desired)

    def _resume(self, batch: Batch, run_id: int | None) -> None:
        """Settle a batch an earlier run sent without hearing the answer."""
        payload = batch.payload or {}
        if batch.action == "create_users":
            wanted: dict[str, str] = payload.get("usernames", {})
            units: dict[str, str] = payload.get("units", {})
            found = find_created(self.caller, wanted) if wanted else {}
            accounts = self.store.accounts()
            new = [
                NewAccount(
                    nip, user.id, wanted[nip], units.get(nip, ""), None, "created", False, None
                )
                for nip, user in found.items()
                if nip not in accounts
            ]
            self._resolve(batch, run_id, {"found": len(found)}, accounts=new)
        elif batch.action == "create_cohorts":
            idnumbers: list[str] = payload.get("idnumbers", [])
            cohorts = [
                CohortRow(c.idnumber, c.id, c.name, True)
                for c in find_cohorts(self.caller, idnumbers).values()
            ]
            self._resolve(batch, run_id, {"found": len(cohorts)}, cohorts=cohorts)
        else:
            # Updates and memberships are idempotent in Moodle: the new plan redoes what
            # is missing, and what was done reads as done (e.g. "already a member").
            self._resolve(batch, run_id, {"replanned": True})

    def _resolve(
        self, batch: Batch, run_id: int | None, result: dict[str, Any], **changes: Any
    ) -> None:
        self.store.resolve_batch(batch.id, result, run_id=run_id, **changes)

    def _adopt(self, desired: DesiredState) -> int:
        """Take over existing accounts of roster people: by idnumber, then by username."""
        owned = self.store.accounts()
        moodle_ids = {a.moodle_id for a in owned.values()}
        unknown = [a for nip, a in desired.accounts.items() if nip not in owned]
        shortnames = list(self.options.policy.profile_fields.values())
        adopted: list[NewAccount] = []
        by_idnumber = self._read_users("idnumber", [a.nip for a in unknown])
        by_username = self._read_users(
            "username", [a.record["username"] for a in unknown if a.nip not in by_idnumber]
        )
        for want in unknown:
            candidates = by_idnumber.get(want.nip) or by_username.get(want.record["username"], [])
            # Moodle does not keep idnumbers unique: only an unambiguous match is adopted.
            if len(candidates) != 1 or candidates[0].id in moodle_ids:
                continue
            user = candidates[0]
            record = moodle_record(user, shortnames)
            adopted.append(
                NewAccount(
                    want.nip,
                    user.id,
                    user.username or "",
                    want.unit,
                    fingerprint(record),
                    "adopted",
                    bool(user.suspended),
                    record,
                )
            )
            moodle_ids.add(user.id)
        self.store.record_accounts(adopted)
        return len(adopted)

    def _read_users(
        self, field_name: moodle_users.UserField, values: Sequence[str | int]
    ) -> dict[str, list[moodle_users.MoodleUser]]:
        found: dict[str, list[moodle_users.MoodleUser]] = {}
        # Each value is one form field, beside wstoken, wsfunction, format and field.
        size = max(1, min(READ_CHUNK, self.options.field_budget - 4))
        for start in range(0, len(values), size):
            chunk = values[start : start + size]
            for user in moodle_users.get_users_by_field(self.caller, field_name, chunk):
                key = str(getattr(user, field_name) or "")
                found.setdefault(key, []).append(user)
        return found

    # --- planning ----------------------------------------------------------------------------
    def _plan(
        self,
        desired: DesiredState,
        unit: Unit,
        report: SyncReport,
        gap: GapState | None = None,
        course_ids: Mapping[str, int] | None = None,
    ) -> Plan:
        accounts = self.store.accounts()
        if self.options.reconcile:
            known = self._known_from_moodle(accounts)
            for nip in sorted(set(accounts) - set(known)):
                # Deleted by hand in Moodle: recreating would hide that; say so instead.
                gone = desired.accounts.pop(nip, None)
                report.row_errors.append(
                    RowError(
                        source=gone.source if gone else "",
                        row=gone.row if gone else 0,
                        column=None,
                        nip=nip,
                        reason="the bridge's account was deleted in Moodle; it is not recreated "
                        "(restore it, or remove it from the bridge's state)",
                    )
                )
        else:
            known = self._known_from_store(desired, accounts)
        cohorts = {c for c, row in self.store.cohorts().items() if row.moodle_id is not None}
        unknown = sorted(set(desired.cohort_names) - cohorts)
        # Cohorts that exist in Moodle already (made by hand or seeded) are used, not created.
        for found in find_cohorts(self.caller, unknown).values():
            cohorts.add(found.idnumber)
            if self.options.apply:
                self.store.record_cohort(
                    found.idnumber, found.id, found.name, created_by_bridge=False
                )
        units_seen = set(self.store.units_seen())
        scope = (desired.units | units_seen) if unit.any_unit else {unit.code}
        return plan(
            desired,
            known,
            self._members_from_moodle(accounts)
            if self.options.reconcile
            else self.store.cohort_members(),
            scope=scope,
            units_seen=units_seen,
            known_cohorts=cohorts,
            wanted_enrolments=(
                {k: w for k, w in gap.wanted.items() if w.course in (course_ids or {})}
                if gap is not None
                else None
            ),
            known_enrolments=self._known_enrolments(gap),
            guards=self.options.guards,
        )

    def _known_enrolments(self, gap: GapState | None) -> dict[tuple[str, str], KnownEnrolment]:
        """The bridge's enrolments, less the completed ones: a finished course is left as it
        is (the learner keeps access, and routine completions trip no suspension guard).

        Moodle stops listing a suspended enrolment, so before a sync suspends one it asks
        whether it was completed; a completion found then goes into the ledger first.
        """
        enrolments = self.store.enrolments()
        if gap is not None and self.options.apply:
            doomed = {
                key for key, e in enrolments.items() if not e.suspended and key not in gap.wanted
            }
            if doomed:
                catalogue = {
                    o.course_shortname: o for m in gap.plan.mappings.values() for o in m.catalogue
                }
                pull_completions(
                    self.caller,
                    self.store,
                    catalogue,
                    as_of=dt.date.today(),
                    only=doomed,
                    options=PullOptions(workers=self.options.workers),
                )
        completed = {(c.nip, c.course) for c in self.store.completions()}
        return {
            key: KnownEnrolment(e.nip, e.course, e.suspended, e.timestart, e.timeend)
            for key, e in enrolments.items()
            if key not in completed
        }

    def _course_ids(self, gap: GapState, report: SyncReport) -> dict[str, int]:
        """Moodle ids of the catalogue courses the run needs; a missing course is reported."""
        known = self.store.courses()
        needed = {w.course for w in gap.wanted.values()} | {
            course for _, course in self.store.enrolments()
        }
        found: dict[str, int] = {}
        for shortname in sorted(needed - set(known)):
            courses = moodle_courses.get_courses_by_field(self.caller, "shortname", shortname)
            if courses:
                found[shortname] = courses[0].id
            else:
                report.row_errors.append(
                    RowError(
                        source="catalogue",
                        row=0,
                        column="course_shortname",
                        reason=f"course {shortname} is in the catalogue but not in Moodle: nobody "
                        "is enrolled in it until it exists",
                    )
                )
        if found and self.options.apply:
            self.store.record_courses(found)
        return {**known, **found}

    def _check_cohort_sync(self, the_plan: Plan, gap: GapState, result: ExecutionResult) -> None:
        """No web service shows cohort-sync instances: check that Moodle really enrolled the
        first new member of each cohort-mode gap cohort in its course."""
        accounts = self.store.accounts()
        for cohort, course in sorted(gap.cohort_courses.items()):
            member = next((m.nip for m in the_plan.member_adds if m.cohort == cohort), None)
            if member is None or member not in accounts:
                continue
            courses = moodle_enrol.get_users_courses(self.caller, accounts[member].moodle_id)
            if not any(c.shortname == course for c in courses):
                result.failures.append(
                    RecordFailure(
                        "cohort_sync",
                        member,
                        None,
                        f"course {course} is declared cohort-synced to {cohort}, but Moodle did "
                        "not enrol the new member: link the cohort to the course (EnrolmentRow "
                        "methods > CohortRow sync) or set the catalogue row's mode to manual",
                    )
                )

    def _members_from_moodle(self, accounts: Mapping[str, Any]) -> dict[str, set[str]]:
        """``--reconcile``: the members of the bridge's cohorts as Moodle has them (owned
        accounts only), so memberships changed by hand are put right."""
        cohorts = {
            c.moodle_id: c.idnumber
            for c in self.store.cohorts().values()
            if c.moodle_id is not None
        }
        nips = {a.moodle_id: nip for nip, a in accounts.items()}
        members: dict[str, set[str]] = {}
        ids = sorted(cohorts)
        for start in range(0, len(ids), READ_CHUNK):
            for cohort in moodle_cohorts.get_cohort_members(
                self.caller, ids[start : start + READ_CHUNK]
            ):
                members[cohorts[cohort.cohortid]] = {nips[u] for u in cohort.userids if u in nips}
        return members

    def _known_from_store(
        self, desired: DesiredState, accounts: Mapping[str, Any]
    ) -> dict[str, KnownAccount]:
        """Trust the store: only accounts whose applied hash differs need their record."""
        stale = [
            nip
            for nip, account in accounts.items()
            if nip not in desired.accounts
            or account.applied_hash != desired.accounts[nip].fingerprint
        ]
        records = self.store.applied_records(stale)
        known: dict[str, KnownAccount] = {}
        for nip, account in accounts.items():
            want = desired.accounts.get(nip)
            if nip in records:
                record = {k: str(v) for k, v in records[nip].items()}
            elif want is not None and account.applied_hash == want.fingerprint:
                record = want.record
            else:
                record = {}  # not kept: every field is sent again
            known[nip] = KnownAccount(
                nip, account.moodle_id, account.unit, record, account.suspended
            )
        return known

    def _known_from_moodle(self, accounts: Mapping[str, Any]) -> dict[str, KnownAccount]:
        """``--reconcile``: read every owned account back from Moodle to find drift."""
        by_id = {a.moodle_id: a for a in accounts.values()}
        found = self._read_users("id", sorted(by_id))
        # Without moodle/user:viewalldetails Moodle answers with nothing, or with users
        # stripped of their username and idnumber: either way the run cannot see drift.
        blind = not any(user.username for users in found.values() for user in users)
        if by_id and blind:
            msg = (
                "Moodle returned none of the accounts the bridge owns with their details: the "
                "token's user probably lacks moodle/user:viewalldetails (run moodle-bridge "
                "doctor); stopping rather than treating them as gone or changed"
            )
            raise errors.Fatal(msg, wsfunction="core_user_get_users_by_field")
        shortnames = list(self.options.policy.profile_fields.values())
        known: dict[str, KnownAccount] = {}
        for moodle_id, account in by_id.items():
            users = found.get(str(moodle_id))
            if not users:
                continue  # deleted by hand: left out rather than recreated over its history
            user = users[0]
            known[account.nip] = KnownAccount(
                account.nip,
                moodle_id,
                account.unit,
                moodle_record(user, shortnames),
                bool(user.suspended),
            )
        return known


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
