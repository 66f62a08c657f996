"""One provisioning run, in explicit phases: read the roster, observe, plan, guard, apply.

* **observe** reads Moodle and the state (the site's identity, open batches of an earlier run,
  accounts, cohorts, courses, enrolments someone else made, completions about to matter);
* **plan** is pure (:func:`moodle_bridge.sync.planner.plan`);
* **guard** stops a plan that would suspend too many, before anything is written;
* **apply** hands the plan to the executor, which journals every batch.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import socket
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, cast

from moodle_bridge import errors
from moodle_bridge.completions import PullOptions, PullScope, pull_completions
from moodle_bridge.files import private_dir, write_private
from moodle_bridge.i18n import _
from moodle_bridge.manifest import digest as manifest_digest
from moodle_bridge.moodle.api import Caller
from moodle_bridge.roster.assessment import LatestAssessments
from moodle_bridge.roster.generic import RosterResult
from moodle_bridge.roster.person import RowError
from moodle_bridge.store import Account, EnrolmentRow, FinalStatus, NewAccount, Store
from moodle_bridge.sync import observe, rates
from moodle_bridge.sync.desired import AccountPolicy, AccountRules, DesiredState, build_desired
from moodle_bridge.sync.executor import ExecutionResult, Executor, Progress, RunOptions
from moodle_bridge.sync.gaps import GapInputs, GapState, gap_state, load_all_mappings
from moodle_bridge.sync.journal import resume_pending, unanswered_enrolments
from moodle_bridge.sync.plan import ChangeAccount, EnrolChange, Plan, Reason
from moodle_bridge.sync.planner import (
    EnrolmentView,
    Guards,
    KnownAccount,
    KnownEnrolment,
    Rules,
    plan,
)
from moodle_bridge.sync.report import SyncReport

__all__ = ["Engine", "SyncOptions", "SyncReport", "Unit"]

DAY = 86400
#: Completions of windows closing within this many seconds are pulled before planning: the
#: next nightly run may come too late, once Moodle no longer answers about the closed window.
CLOSING_MARGIN = 2 * DAY
#: Where the state keeps Moodle's measured seconds per record of each kind.
RATES = "moodle_rates"
#: Where the state keeps the catalogue courses applied runs looked up and Moodle lacked (the
#: found ones are in its ``courses`` table): ``explain`` marks them without asking Moodle.
MISSING_COURSES = "missing_courses"


class Unit(AccountRules, Protocol):
    """The unit-plugin surface the engine uses (see :class:`moodle_bridge.units.UnitMapper`)."""

    code: str
    any_unit: bool

    def read_roster(self, path: Path) -> RosterResult: ...

    def latest_assessments(self, path: Path) -> tuple[LatestAssessments, list[RowError]]: ...


@dataclass(frozen=True)
class SyncOptions:
    """How a run behaves (from the command line and the settings)."""

    apply: bool = True
    reconcile: bool = False
    adopt: bool = False
    adopt_cohorts: bool = False
    #: The units the roster speaks for; None: the plugin's unit, or (generic) the file's units.
    scope: frozenset[str] | None = None
    #: Days an absent person keeps their account active.
    absent_grace_days: int = 14
    #: Stop managing gap cohorts and enrolments for the units in scope (goes through the guard).
    stop_gaps: bool = False
    #: Shortname of the course the administrator linked to the probe cohort (cohort sync).
    probe_course: str | None = None
    guards: Guards = field(default_factory=Guards)
    policy: AccountPolicy = field(default_factory=AccountPolicy)
    workers: int = 2
    max_failure_rate: float = 0.5
    role_id: int = 5
    role_shortname: str = "student"
    #: The mapping tables, for the JP and competency of completions pulled during a sync.
    mappings_dir: Path | None = None
    #: How completions are pulled during a sync (report or person by person).
    pull: PullOptions = field(default_factory=PullOptions)
    #: Moodle's time per created or email-changed user above which the run warns of a slow site.
    slow_user_seconds: float = rates.SLOW_USER_SECONDS


@dataclass(frozen=True)
class Source:
    """What one run reads: a roster through a unit plugin, and optionally assessments."""

    plugin: str
    unit: Unit
    roster: Path
    gaps: GapInputs | None = None
    #: The manifest source's name, when the run belongs to one.
    name: str | None = None


class Engine:
    """Runs plan and sync for one source against one Moodle and one state store."""

    def __init__(
        self,
        caller: Caller,
        store: Store,
        state_dir: Path,
        options: SyncOptions,
        *,
        progress: Progress | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        #: The configured site address, recorded with the site's identity.
        self.url = str(getattr(caller, "url", ""))
        #: Counts the calls, and measures Moodle's time per record of each kind of write (for
        #: the rates and the slow-site warning).
        self.caller = rates.Meter(caller)
        self.store = store
        self.state_dir = state_dir
        self.options = options
        self.progress = progress
        self.clock = clock

    def run(
        self, source: Source, *, confirm: Callable[[Plan, SyncReport], bool] | None = None
    ) -> SyncReport:
        """Read the roster, plan, and (when ``options.apply``) apply. Never raises for a record;
        raises ConfigError for an unusable roster, broken mapping tables or another site's
        state, and MoodleError only before anything is written when not applying.

        With ``source.gaps``, the run also manages enrolments by competency gap and the gap
        cohorts; without, they stay exactly as they are (unless ``options.stop_gaps``).
        """
        started = time.monotonic()
        report = SyncReport(
            "sync" if self.options.apply else "plan", source.plugin, str(source.roster),
            source=source.name,
        )  # fmt: skip
        roster = self._read(source, report)
        try:
            self._begin(report, source.name or str(source.roster))
            gap = self._gaps(roster, source, report)
            desired = self._desired(roster, source, gap, report)
            the_plan = self._observe_and_plan(desired, gap, report)
        except (errors.Fatal, errors.Retriable) as error:
            report.result = ExecutionResult(stopped=str(error))
            return self._finish(report, started)
        except errors.ConfigError:
            report.result = ExecutionResult(stopped="stopped by a configuration error")
            self._finish(report, started)
            raise
        return self._guard_and_apply(the_plan, report, (source, started), confirm)

    def _guard_and_apply(
        self,
        the_plan: Plan,
        report: SyncReport,
        run: tuple[Source, float],
        confirm: Callable[[Plan, SyncReport], bool] | None,
    ) -> SyncReport:
        source, started = run
        report.plan, report.guard = the_plan, the_plan.guard
        report.names = _names(self.store, the_plan)
        report.names.update((a.nip, a.display_name) for a in report.accounts_to_adopt)
        report.estimate = rates.estimate(
            the_plan.summary(), self.store.value(RATES), self.options.workers
        )
        if the_plan.guard is not None:
            report.proposed_removals = self._write_removals(the_plan, report)
            return self._finish(report, started)
        if not self.options.apply:
            return self._finish(report, started)
        # Adopting is a change of its own: asked about even when nothing else changes now.
        asks = not the_plan.is_empty or bool(report.cohorts_to_adopt or report.accounts_to_adopt)
        if asks and confirm is not None and not confirm(the_plan, report):
            report.declined = True
            return self._finish(report, started)
        # Adopted first, so the roster date that lists them is recorded on their accounts too.
        self._adopt(report)
        self.store.record_observations(the_plan.seen, the_plan.absent_since)
        if not the_plan.is_empty:
            report.result = self._apply(the_plan, report)
            self._measure(report)
        self._remember_gaps(report, source)
        return self._finish(report, started)

    def _remember_gaps(self, report: SyncReport, source: Source) -> None:
        """After a successful run, what the gap engine read (the enrolments as they are now),
        so that the next run with the same input need not plan again. Not while an audience
        cohort waits for its link, nor while a catalogue course is missing in Moodle: the
        administrator's link or course changes what the plan must do without changing anything
        the digest reads."""
        stopped = report.result is not None and (report.result.stopped or report.failures)
        awaiting = report.plan is not None and report.plan.awaiting_link
        waiting = awaiting or report.missing_courses
        if source.gaps is None or report.gaps_digest is None or stopped or waiting:
            return
        self.store.set_value(self._gaps_key(source), self._gaps_digest(source, source.gaps))

    def _measure(self, report: SyncReport) -> None:
        """Remember what this run cost Moodle per record, for the next plan's estimate, and
        say when creating users or changing their emails is slow enough to mean a scan of
        ``mdl_user`` per user."""
        latest = self.caller.measured()
        if latest:
            self.store.set_value(RATES, rates.merged(self.store.value(RATES), latest))
        report.slow_user_seconds = rates.slow_user_seconds(latest, self.options.slow_user_seconds)

    def revert(
        self, run_id: int, *, confirm: Callable[[Plan, SyncReport], bool] | None = None
    ) -> SyncReport:
        """Undo the suspensions of run ``run_id``, as a new run with its own plan and report.

        Only accounts and enrolments that run suspended, and that are still suspended by it,
        are unsuspended; an absent person's grace starts again from the next sync. Raises
        ConfigError for an unknown run.
        """
        started = time.monotonic()
        if self.store.run(run_id) is None:
            msg = f"there is no run {run_id} in this state (see: moodle-bridge runs)"
            raise errors.ConfigError(msg)
        report = SyncReport("revert", "", f"run {run_id}")
        try:
            self._begin(report, f"run {run_id}")
        except (errors.Fatal, errors.Retriable) as error:
            report.result = ExecutionResult(stopped=str(error))
            return self._finish(report, started)
        the_plan = undo_plan(self.store, run_id)
        report.plan, report.names = the_plan, _names(self.store, the_plan)
        if not self.options.apply or the_plan.is_empty:
            return self._finish(report, started)
        if confirm is not None and not confirm(the_plan, report):
            report.declined = True
            return self._finish(report, started)
        self.store.record_observations({}, the_plan.absent_since)
        report.result = self._apply(the_plan, report)
        return self._finish(report, started)

    # --- reading ---------------------------------------------------------------------------
    def _read(self, source: Source, report: SyncReport) -> RosterResult:
        roster = source.unit.read_roster(source.roster)
        report.rows, report.people = roster.rows, len(roster.people)
        report.row_errors, report.row_warnings = list(roster.errors), list(roster.warnings)
        report.untied = roster.untied
        return roster

    def _gaps(self, roster: RosterResult, source: Source, report: SyncReport) -> GapState | None:
        """The gap plan, after the completions that matter now are in the ledger: those of
        windows closing before the next nightly run (Moodle stops answering about a closed
        window), so that a completion on a window's last day raises the level in time.

        None when the run does not manage gaps, or when nothing the gap engine reads changed
        since the last successful run of this source: then enrolments and gap cohorts stay as
        they are, which is what planning again would have decided.
        """
        if source.gaps is None:
            return None
        if self.options.apply:
            self._pull(closing_before=int(self.clock()) + CLOSING_MARGIN)
        report.gaps_digest = self._gaps_digest(source, source.gaps)
        if self.store.value(self._gaps_key(source)) == report.gaps_digest:
            report.gaps_unchanged = True
            return None
        enrolments, ledger = self.store.enrolments(), self.store.completions()
        gap = gap_state(roster.people, source.unit, source.gaps, enrolments, ledger)
        others = self._catalogue_enrolments(gap, enrolments)
        if others:
            # Someone else's enrolments in catalogue courses serve their steps and count for
            # the annual cap: plan again knowing them.
            if self.options.apply:
                self.store.record_enrolments(others)
            enrolments = {**{(o.nip, o.course): o for o in others}, **enrolments}
            gap = gap_state(roster.people, source.unit, source.gaps, enrolments, ledger)
        report.gap_plan = gap.plan
        report.row_errors.extend(gap.errors)
        return gap

    def _catalogue_enrolments(
        self, gap: GapState, enrolments: Mapping[tuple[str, str], EnrolmentRow]
    ) -> list[EnrolmentRow]:
        """The catalogue courses the people about to be enrolled are already in, by anyone's
        hand, that the state does not know: a hand enrolment in another course of a step, or
        of another step, counts for the person's plan and cap."""
        fresh = {
            nip
            for nip, course in [*gap.wanted, *_audience_joins(gap)]
            if (nip, course) not in enrolments
        }
        catalogue = {o.course_shortname for m in gap.plan.mappings.values() for o in m.catalogue}
        course_ids, _missing = self._resolve(catalogue)
        found = observe.catalogue_enrolments(
            self.caller, self.store.accounts(), course_ids, sorted(fresh), len(enrolments)
        )
        mine = self._unanswered(gap)
        return [
            r
            for r in found
            if (r.nip, r.course) not in enrolments and (r.nip, r.course) not in mine
        ]

    def _unanswered(self, gap: GapState | None) -> set[tuple[str, str]]:
        """Enrolments and audience joins the bridge sent in batches whose answer was lost."""
        courses_of = {k: a.course for k, a in gap.audience.items()} if gap is not None else {}
        return unanswered_enrolments(self.store, courses_of)

    @staticmethod
    def _gaps_key(source: Source) -> str:
        return f"gaps:{source.name or source.plugin}:{source.roster.name}"

    def _gaps_digest(self, source: Source, inputs: GapInputs) -> str:
        """What the gap engine's answer depends on: the roster, the assessments, the mapping
        tables, the ledger and the enrolments, the year, and which windows are open."""
        tables = sorted(inputs.mappings_dir.rglob("*.csv"))
        mappings = load_all_mappings(inputs.mappings_dir)
        windows = sorted(
            (o.course_shortname, str(o.window_start), o.window_status(inputs.as_of))
            for m in mappings.values()
            for o in m.catalogue
        )
        facts = [inputs.as_of.year, windows, self.store.markers()]
        return manifest_digest([source.roster, inputs.assessments, *tables], facts)

    def _desired(
        self, roster: RosterResult, source: Source, gap: GapState | None, report: SyncReport
    ) -> DesiredState:
        desired = build_desired(
            roster.people, source.unit, self.options.policy, gap.cohorts if gap else None
        )
        desired.roster_date = int(source.roster.stat().st_mtime)
        desired.kept.update(roster.kept)
        report.row_warnings.extend(desired.warnings)
        report.row_errors.extend(desired.errors)
        report.scope = tuple(sorted(self._scope(source, desired)))
        return desired

    def _scope(self, source: Source, desired: DesiredState) -> frozenset[str]:
        if self.options.scope is not None:
            return self.options.scope
        if source.unit.any_unit:
            return frozenset(desired.units | {d.unit for d in desired.departed.values()})
        return frozenset({source.unit.code})

    # --- observing and planning --------------------------------------------------------------
    def _begin(self, report: SyncReport, label: str) -> None:
        """Check the site, open the run, and settle what an interrupted run left open."""
        apply = self.options.apply
        observe.bind_site(self.caller, self.store, self.url, record=apply)
        if not apply:
            return
        report.run_id = self._begin_run(report.command, report.plugin, label)
        report.resumed = resume_pending(self.store, self.caller, report.run_id)

    def _observe_and_plan(
        self, desired: DesiredState, gap: GapState | None, report: SyncReport
    ) -> Plan:
        options, apply = self.options, self.options.apply
        accounts = self.store.accounts()
        shortnames = list(options.policy.profile_fields.values())
        if options.adopt:
            # Planned as if owned, recorded only once the operator confirmed (see _adopt).
            report.accounts_to_adopt = self._adoption(desired, accounts)
            accounts = _with_adoptions(accounts, report)
        if options.reconcile:
            known = observe.known_from_moodle(self.caller, accounts, shortnames)
            self._report_deleted(desired, accounts, known, report)
            members = observe.members_from_moodle(self.caller, self.store, accounts)
        else:
            known = observe.known_from_store(self.store, desired, accounts)
            known.update((a.nip, _as_known(a)) for a in report.accounts_to_adopt)
            members = self.store.cohort_members()
        audience = gap.audience if gap is not None else {}
        findings = observe.cohort_view(
            self.caller,
            self.store,
            desired.cohort_names,
            audience,
            adopt=options.adopt_cohorts,
            record=apply,
        )
        report.foreign_cohorts, report.cohorts_to_adopt = findings.foreign, findings.to_adopt
        enrolments = (
            self._enrolments(desired, gap, report, accounts) if gap or options.stop_gaps else None
        )
        rules = Rules(
            frozenset(report.scope),
            int(self.clock()),
            options.absent_grace_days * DAY,
            options.guards,
            explicit_scope=options.scope is not None or not self._any_unit(report),
        )
        the_plan = plan(desired, known, members, rules, findings.view, enrolments)
        if the_plan.held_removals and apply and options.probe_course:
            token_user = self.store.site()
            if (
                token_user is not None
                and observe.probe_cohort_sync(
                    self.caller, self.store, options.probe_course, token_user.token_userid
                ).suspends
            ):
                safe = dataclasses.replace(findings.view, removal_safe=True)
                the_plan = plan(desired, known, members, rules, safe, enrolments)
        return the_plan

    def _any_unit(self, report: SyncReport) -> bool:
        return self.options.scope is None and len(report.scope) != 1

    def _enrolments(
        self,
        desired: DesiredState,
        gap: GapState | None,
        report: SyncReport,
        accounts: Mapping[str, Account],
    ) -> EnrolmentView:
        """What the run knows of enrolments: the bridge's, someone else's found in Moodle for
        the courses it is about to fill, and which of its own it may release."""
        apply = self.options.apply
        rows = self.store.enrolments()
        wanted = dict(gap.wanted) if gap is not None else {}
        joining = _audience_joins(gap) if gap is not None else {}
        needed = {course for _nip, course in [*wanted, *joining, *rows]}
        course_ids, report.missing_courses = self._resolve(needed)
        wanted = {key: w for key, w in wanted.items() if w.course in course_ids}
        # Participants include suspended enrolments, which a person's course list does not:
        # an administrator's suspended enrolment in the chosen course is theirs, never ours.
        # A batch of ours whose answer was lost is ours, though Moodle may have it already.
        mine = self._unanswered(gap)
        fresh = [key for key in [*wanted, *joining] if key not in rows and key not in mine]
        others = observe.enrolled_elsewhere(self.caller, accounts, course_ids, fresh)
        if others and apply:
            # Someone else's enrolments of a person about to be adopted are not recorded before
            # the account is (confirmation first): the plan leaves them alone all the same, and
            # the next run finds them again if it still wants their course.
            adopting = {a.nip for a in report.accounts_to_adopt}
            self.store.record_enrolments(o for o in others if o.nip not in adopting)
        rows = {**{(o.nip, o.course): o for o in others}, **rows}
        releasable = dict(gap.releasable) if gap is not None else {}
        if self.options.stop_gaps:
            wanted, releasable = {}, _stop_gaps(rows, accounts, frozenset(report.scope))
        completed = {(c.nip, c.course) for c in self.store.completions()}
        # A completed enrolment is left as it is: it stays known (so it is never enrolled
        # again) and is never released.
        releasable = {k: r for k, r in releasable.items() if k not in completed}
        if releasable and apply:
            # Moodle stops listing a suspended enrolment: ask about a completion first.
            self._pull(only=set(releasable))
            completed = {(c.nip, c.course) for c in self.store.completions()}
            releasable = {k: r for k, r in releasable.items() if k not in completed}
        known = {
            key: KnownEnrolment(e.nip, e.course, e.suspended, e.timestart, e.timeend, e.method)
            for key, e in rows.items()
        }
        return EnrolmentView(wanted, known, releasable, frozenset(report.missing_courses))

    def _resolve(self, needed: Collection[str]) -> tuple[dict[str, int], list[str]]:
        """Moodle ids of the courses ``needed``, and those Moodle lacks; an applied run
        remembers both (the ids by :func:`observe.resolve_courses`)."""
        course_ids, missing = observe.resolve_courses(
            self.caller, self.store, needed, record=self.options.apply
        )
        if self.options.apply:
            before = sorted(self.store.value(MISSING_COURSES) or ())
            after = sorted((set(before) | set(missing)) - set(course_ids))
            if after != before:
                self.store.set_value(MISSING_COURSES, after)
        return course_ids, missing

    def _pull(
        self,
        *,
        only: set[tuple[str, str]] | None = None,
        closing_before: int | None = None,
    ) -> None:
        """Bring the completions that matter now into the ledger, with each course's JP."""
        folder = self.options.mappings_dir
        mappings = load_all_mappings(folder) if folder is not None else {}
        catalogue = {o.course_shortname: o for m in mappings.values() for o in m.catalogue}
        pull_completions(
            self.caller,
            self.store,
            catalogue,
            PullScope(only=only, closing_before=closing_before),
            options=dataclasses.replace(self.options.pull, now=int(self.clock())),
        )

    def _report_deleted(
        self,
        desired: DesiredState,
        accounts: Mapping[str, Account],
        known: Mapping[str, KnownAccount],
        report: SyncReport,
    ) -> None:
        for nip in sorted(set(accounts) - set(known)):
            # Deleted by hand in Moodle: recreating would hide that; say so instead.
            gone = desired.accounts.pop(nip, None)
            report.row_errors.append(
                RowError(
                    source=gone.source if gone else "",
                    row=gone.row if gone else 0,
                    column=None,
                    nip=nip,
                    reason=_(
                        "the bridge's account was deleted in Moodle; it is not recreated "
                        "(restore it, or remove it from the bridge's state)"
                    ),
                    fix=_("Ask the Moodle administrator to restore the person's account."),
                )
            )

    def _adoption(
        self, desired: DesiredState, owned: Mapping[str, Account]
    ) -> list[NewAccount]:
        """``--adopt``: the existing accounts of roster people to take over, by idnumber, then
        by username (read from Moodle, recorded nowhere yet)."""
        shortnames = list(self.options.policy.profile_fields.values())
        return [
            NewAccount(
                nip,
                user.id,
                user.username or "",
                desired.accounts[nip].unit,
                digest,
                "adopted",
                bool(user.suspended),
                record,
                desired.accounts[nip].display_name,
            )
            for nip, user, record, digest in observe.adoption(
                self.caller, desired, owned, shortnames
            )
        ]

    def _adopt(self, report: SyncReport) -> None:
        """Take over the accounts and cohorts the confirmed plan was made with: a plan, a
        guarded or a declined run leaves them someone else's."""
        self.store.record_accounts(report.accounts_to_adopt)
        report.adopted = len(report.accounts_to_adopt)
        for cohort in report.cohorts_to_adopt:
            self.store.record_cohort(cohort)
        report.adopted_cohorts = [c.idnumber for c in report.cohorts_to_adopt]

    # --- applying ----------------------------------------------------------------------------
    def _apply(self, the_plan: Plan, report: SyncReport) -> ExecutionResult:
        assert report.run_id is not None
        options = self.options
        executor = Executor(
            self.caller,
            self.store,
            report.run_id,
            RunOptions(
                options.workers, options.max_failure_rate, options.role_id, options.role_shortname
            ),
            progress=self.progress,
        )
        cohort_ids = {
            c.idnumber: int(c.moodle_id)
            for c in self.store.cohorts().values()
            if c.moodle_id is not None
        }
        return executor.apply(the_plan, cohort_ids, self.store.courses())

    # --- runs --------------------------------------------------------------------------------
    def _begin_run(self, command: str, plugin: str, label: str) -> int:
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
        return self.store.begin_run(command, plugin or None, label)

    def _finish(self, report: SyncReport, started: float) -> SyncReport:
        report.calls = self.caller.calls
        report.seconds = time.monotonic() - started
        if report.run_id is not None:
            self.store.finish_run(
                report.run_id,
                cast(FinalStatus, report.status),
                report.to_dict(personal=True),
                report.exit_code,
            )
        return report

    def _write_removals(self, the_plan: Plan, report: SyncReport) -> Path:
        folder = private_dir(self.state_dir / "reports")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = folder / f"proposed-suspensions-{report.plugin}-{stamp}.csv"
        accounts = _with_adoptions(self.store.accounts(), report)
        reasons = {c.nip: c.reason.text() for c in the_plan.changes}
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(["nip", "moodle_id", "unit", "reason"])
        for nip in the_plan.suspensions:
            account = accounts.get(nip)
            writer.writerow(
                [
                    nip,
                    account.moodle_id if account else "",
                    account.unit if account else "",
                    reasons.get(nip, ""),
                ]
            )
        return write_private(path, text.getvalue().encode("utf-8"))


def _with_adoptions(accounts: Mapping[str, Account], report: SyncReport) -> dict[str, Account]:
    """The bridge's accounts and those the run is about to adopt, as the plan sees them."""
    return {**accounts, **{a.nip: _as_owned(a) for a in report.accounts_to_adopt}}


def _as_owned(new: NewAccount) -> Account:
    """An account about to be adopted, as the plan sees the bridge's own."""
    return Account(
        new.nip, new.moodle_id, new.username, new.unit, "adopted", new.applied_hash,
        new.suspended, owned_since=0, updated_at=0,
    )  # fmt: skip


def _as_known(new: NewAccount) -> KnownAccount:
    """An account about to be adopted, with its record as Moodle holds it: the plan sends
    only the fields the roster changes."""
    record = {k: str(v) for k, v in (new.record or {}).items()}
    return KnownAccount(new.nip, new.moodle_id, new.unit, record, new.suspended)


def _names(store: Store, the_plan: Plan) -> dict[str, str]:
    """The names of the people ``the_plan`` concerns (those it keeps or counts as absent
    too): the roster's, else the state's."""
    concerned = {change.nip for change in the_plan.person_changes({})}
    concerned.update(k.nip for k in the_plan.kept)
    concerned.update(a.nip for a in the_plan.absences)
    names = {nip: name for nip, name in store.display_names().items() if nip in concerned}
    names.update({c.nip: c.display_name for c in the_plan.creates})
    names.update({c.nip: c.display_name for c in the_plan.changes if c.display_name})
    return names


def undo_plan(store: Store, run_id: int) -> Plan:
    """The plan that unsuspends what run ``run_id`` suspended and is still suspended by it."""
    reason = Reason.of("revert", run=run_id)
    the_plan = Plan()
    accounts = store.accounts()
    mine = [a for a in accounts.values() if a.suspended and a.suspended_by_run == run_id]
    records = store.applied_records(a.nip for a in mine)
    for account in sorted(mine):
        record = {k: str(v) for k, v in records.get(account.nip, {}).items()}
        the_plan.changes.append(
            ChangeAccount(
                account.nip,
                account.moodle_id,
                "unsuspend",
                {},
                record,
                suspended=False,
                reason=reason,
                unit=account.unit,
            )
        )
        the_plan.absent_since[account.nip] = None
    for row in sorted(store.enrolments().values()):
        if row.method == "manual" and row.suspended and row.suspended_by_run == run_id:
            the_plan.enrolments.append(
                EnrolChange(
                    row.nip, row.course, "reactivate", False, row.timestart, row.timeend, reason
                )
            )
    return the_plan


def _audience_joins(gap: GapState) -> dict[tuple[str, str], str]:
    """(NIP, course) -> audience cohort, for every audience membership the plan wants."""
    return {
        (nip, gap.audience[spec.idnumber].course): spec.idnumber
        for nip, specs in gap.cohorts.items()
        for spec in specs
        if spec.idnumber in gap.audience
    }


def _stop_gaps(
    rows: Mapping[tuple[str, str], EnrolmentRow],
    accounts: Mapping[str, Account],
    scope: frozenset[str],
) -> dict[tuple[str, str], Reason]:
    """``--stop-gaps``: every active manual enrolment of the bridge's people in scope."""
    released: dict[tuple[str, str], Reason] = {}
    for key, row in rows.items():
        account = accounts.get(row.nip)
        if account is None or account.unit not in scope:
            continue
        if row.method == "manual" and not row.suspended:
            released[key] = Reason.of("stop_gaps", unit=account.unit)
    return released


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
