"""Drive a simulated year: the HR world's exports, the bridge's runs, the operator's slips.

The emulated Moodle is served over HTTP on 127.0.0.1; the bridge talks to it through its real
client, engine and state. One :class:`SimClock` is the time of the emulator, the engine and the
state alike, so a year passes in seconds. After every run the invariants of
:mod:`tests.simulation.invariants` are checked from the emulator's state, and every violation
is kept with the run that caused it (:class:`Verdicts`).

* :func:`year_of_nights` (issue 9): each unit syncs its own file on the nights it exports
  (PENDIS every second day, BIMAS_ISLAM Mondays and Thursdays, SETJEN Wednesdays), with
  assessments, on one state; the operator slips in between (:data:`NIGHT_SLIPS`).
* :func:`year_of_months` (issue 13): on the first of each month every unit syncs with
  assessments and completions are pulled; between two months administrators enrol people by
  hand and learners complete courses, some on the last day of a window. The site's cohort sync
  unenrols on removal (Moodle's default) or, in the second variant, is proven by the probe to
  suspend.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from click.testing import CliRunner

from moodle_bridge.cli import main
from moodle_bridge.completions import PullOptions, PullReport, pull_completions
from moodle_bridge.emulator.completion import learner_completes
from moodle_bridge.emulator.enrol import is_active
from moodle_bridge.errors import ConfigError
from moodle_bridge.mappings import CourseOffer
from moodle_bridge.moodle.client import MoodleClient
from moodle_bridge.store import Store
from moodle_bridge.sync.engine import Engine, Source, SyncOptions, SyncReport
from moodle_bridge.sync.gaps import GapInputs, load_all_mappings
from moodle_bridge.sync.planner import Guards
from moodle_bridge.units import discover_units
from tests.simulation import invariants as inv
from tests.simulation.site import SUSPEND, UNENROL, SimClock, Site
from tests.simulation.tables import CAP, manual_courses, shortnames, standards, write_tables
from tests.simulation.world import (
    UNITS,
    ZONE,
    Export,
    HRWorld,
    Scale,
    run_stamp,
)

DAY = 86400
STATE_FILE = "state.sqlite3"
COMMUNITY_COURSE = "SIM-KOMUNITAS"
PROBE_COURSE = "SIM-PROBE"
PROBE_COHORT = "bridge:probe"


# --- the bridge -----------------------------------------------------------------------------------
def applied(report: SyncReport) -> bool:
    """Whether a run read its roster and applied its plan (an empty plan included)."""
    return (
        report.plan is not None
        and report.guard is None
        and not report.declined
        and (report.result is None or not report.result.stopped)
    )


class Bridge:
    """One state folder and one token against one site; a new engine per run, as cron does."""

    def __init__(
        self, site: Site, state_dir: Path, clock: SimClock, mappings: Path, options: SyncOptions
    ) -> None:
        self.site, self.state_dir, self.clock = site, state_dir, clock
        self.mappings, self.options = mappings, options
        self.unit = discover_units().require("generic")
        self.client = MoodleClient(site.url, site.emulator.token_for("bridge"))
        self.store = Store.open(state_dir / STATE_FILE, clock=clock)

    def close(self) -> None:
        self.store.close()
        self.client.close()

    def run(
        self,
        roster: Path,
        *,
        assessments: Path | None,
        name: str,
        options: SyncOptions | None = None,
    ) -> SyncReport:
        """Sync ``roster`` now (the clock's time), with assessments when given."""
        today = dt.datetime.fromtimestamp(self.clock.now, ZONE).date()
        gaps = GapInputs(assessments, self.mappings, today) if assessments else None
        engine = Engine(
            self.client, self.store, self.state_dir, options or self.options, clock=self.clock
        )
        return engine.run(Source("generic", self.unit, roster, gaps, name=name))

    def pull(self) -> PullReport:
        """Pull completions, as ``completions pull`` would."""
        catalogue: dict[str, CourseOffer] = {
            o.course_shortname: o
            for m in load_all_mappings(self.mappings).values()
            for o in m.catalogue
        }
        return pull_completions(
            self.client, self.store, catalogue, options=PullOptions(now=self.clock.now)
        )


# --- verdicts -------------------------------------------------------------------------------------
@dataclass
class Verdicts:
    """Every violation of every invariant, with when it happened, and what the year did."""

    violations: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    stats: Counter[str] = field(default_factory=Counter)
    slips: dict[str, str] = field(default_factory=dict)
    #: Records Moodle refused, and the guards that stopped a run, in words.
    failures: list[str] = field(default_factory=list)
    guards: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, invariant: str, found: Sequence[str], when: str) -> None:
        """Keep the violations ``found`` of ``invariant``, saying when they were seen."""
        self.violations[invariant].extend(f"{when}: {v}" for v in found)

    def of(self, invariant: str) -> list[str]:
        """The violations of one invariant (at most 20, for a readable failure)."""
        return self.violations.get(invariant, [])[:20]

    def summary(self) -> str:
        counts = {k: len(v) for k, v in self.violations.items() if v}
        return (
            f"violations {counts or 'none'} in {self.seconds:.0f} s; "
            f"{dict(sorted(self.stats.items()))}"
        )


class Year:
    """What both years share: the world, the site, the bridge and the checks after each run."""

    def __init__(
        self,
        workdir: Path,
        scale: Scale,
        *,
        grace_days: int,
        cohort_sync: str = UNENROL,
        probe: bool = False,
    ) -> None:
        self.workdir = workdir
        self.world = HRWorld(scale)
        self.standards = standards()
        self.mappings = write_tables(workdir / "mappings", self.world.start, self.world.end)
        self.grace_days = grace_days
        self.clock = SimClock(run_stamp(self.world.start) - DAY)
        self.site = Site(self.clock, cohort_sync=cohort_sync)
        self.options = SyncOptions(
            absent_grace_days=grace_days,
            probe_course=PROBE_COURSE if probe else None,
            mappings_dir=self.mappings,
        )
        self.probe = probe
        self.assessments = workdir / "assessments.csv"
        self.verdicts = Verdicts()
        self.evidence = inv.Evidence(grace_days)
        self.history = inv.History()
        self.hand = inv.HandEnrolments()
        self.bridge: Bridge | None = None
        self.catalogue: dict[str, int] = {}
        self.adopted: set[str] = set()

    @contextlib.contextmanager
    def running(self) -> Iterator[Bridge]:
        started = time.monotonic()
        with self.site:
            names = shortnames(range(self.world.start.year, self.world.end.year + 1))
            self.catalogue = self.site.create_courses([*names, COMMUNITY_COURSE, PROBE_COURSE])
            self.catalogue.pop(COMMUNITY_COURSE)
            self.catalogue.pop(PROBE_COURSE)
            if self.probe:
                self.site.link(_created(self.site, PROBE_COHORT), PROBE_COURSE)
            self.bridge = Bridge(
                self.site, self.workdir / "state", self.clock, self.mappings, self.options
            )
            try:
                yield self.bridge
            finally:
                self.bridge.close()
                self.verdicts.seconds = time.monotonic() - started

    @property
    def today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.clock.now, ZONE).date()

    def sync(
        self,
        export: Export,
        *,
        gaps: bool = True,
        options: SyncOptions | None = None,
        label: str = "",
    ) -> SyncReport:
        """Run one source, let the operator accept a guard they reviewed, then check."""
        assert self.bridge is not None
        when = label or f"{self.today} {export.unit} ({export.day})"
        if export.unit not in self.adopted:
            # The site's own unit cohorts (unit:PENDIS is linked to a course) are adopted on
            # purpose on the unit's first run, as the operator would after reading the report.
            self.adopted.add(export.unit)
            options = replace(options or self.options, adopt_cohorts=True)
        before = inv.gap_snapshot(self.site.world) if not gaps else None
        if before is not None:
            self.verdicts.stats["enrolments_watched_without_assessments"] += len(before.enrolments)
        assessments = self.assessments if gaps else None
        report = self.bridge.run(
            export.path, assessments=assessments, name=export.unit.lower(), options=options
        )
        self.verdicts.stats["runs"] += 1
        if report.guard is not None:
            # The operator reads the proposed suspensions and accepts them (all are real in
            # this world; the invariants judge what they did).
            self.verdicts.stats["guard_trips"] += 1
            self.verdicts.guards.append(f"{when}: {report.guard.reason}")
            accept = replace(
                options or self.options,
                guards=Guards(allow_suspend=len(report.guard.suspensions) + 10_000),
            )
            report = self.bridge.run(
                export.path, assessments=assessments, name=export.unit.lower(), options=accept
            )
        if applied(report):
            self.evidence.add(export)
        else:
            self.verdicts.stats["not_applied"] += 1
            self.verdicts.add("runs_apply", [f"run not applied: {report.to_dict()}"], when)
        self._count(report)
        self.check(when, before)
        return report

    def _count(self, report: SyncReport) -> None:
        for key, value in report.planned.items():
            self.verdicts.stats[f"plan_{key}"] += value
        self.verdicts.stats["untied_rows"] += report.untied
        self.verdicts.stats["failures"] += len(report.failures)
        self.verdicts.failures.extend(
            f"{report.roster}: {f.action} {f.errorcode} {f.reason}" for f in report.failures
        )

    def check(self, when: str, gaps_before: inv.GapSnapshot | None = None) -> None:
        """The invariants every run must keep."""
        world, store, add = self.site.world, self.store, self.verdicts.add
        add(
            "active_not_suspended",
            inv.wrongly_suspended(world, self.evidence, self.clock.now),
            when,
        )
        add("unit_follows_person", inv.stale_units(world, self.evidence), when)
        add("one_account", inv.duplicate_accounts(world), when)
        add("suspension_explained", inv.unexplained_suspensions(world, store), when)
        add("history_kept", self.history.lost(world), when)
        if gaps_before is not None:
            add(
                "gaps_need_assessments", inv.gap_changes(gaps_before, inv.gap_snapshot(world)), when
            )

    @property
    def running_bridge(self) -> Bridge:
        """The bridge, while the year runs."""
        assert self.bridge is not None
        return self.bridge

    @property
    def store(self) -> Store:
        """The bridge's state, while the year runs."""
        return self.running_bridge.store


def _created(site: Site, idnumber: str) -> str:
    site.create_cohort(idnumber)
    return idnumber


# --- issue 9: a year of nights --------------------------------------------------------------------
#: Day of the year -> the operator's slip that night.
NIGHT_SLIPS = {
    40: "emulator_on_real_state",
    75: "without_assessments",
    110: "old_file",
    150: "two_at_once",
    190: "other_site",
}


def year_of_nights(
    workdir: Path, scale: Scale, *, slips: Mapping[int, str] = NIGHT_SLIPS
) -> Verdicts:
    """Every unit on its own schedule for ``scale.days`` nights, with the operator's slips."""
    year = Year(workdir, scale, grace_days=14)
    world = year.world
    with year.running():
        world.assess(year.standards, share=0.6)
        world.write_assessments(year.assessments)
        forgetful = False
        for number, day in enumerate(world.days()):
            world.advance_to(day)
            if day.day == 1 and number:
                world.assess(year.standards, share=0.05)
                world.write_assessments(year.assessments)
            # The operator forgets --assessments in the first run on or after the slip's day.
            forgetful = forgetful or slips.get(number) == "without_assessments"
            for k, unit in enumerate(world.units_exporting()):
                export = world.export(unit, workdir / "exports")
                year.clock.at(run_stamp(day) + 60 * k)
                year.sync(export, gaps=not forgetful)
                if forgetful:
                    year.verdicts.slips["without_assessments"] = f"{unit} on {day}"
                    forgetful = False
            year.site.link_audiences()
            if slips.get(number) in SLIPS:
                year.clock.at(run_stamp(day) + 1800)
                SLIPS[slips[number]](year)
    year.verdicts.stats["people"] = len(world.people)
    year.verdicts.stats["moves"] = sum(1 for e in world.events if e.what == "move")
    year.verdicts.stats["exports"] = len(world.exports)
    return year.verdicts


def _state_files(state_dir: Path) -> dict[str, tuple[int, int, int]]:
    """Each file of the state folder's (inode, size, modification time).

    Only ``stat``: opening the database files and closing them again would drop the SQLite
    locks this process holds on them (POSIX locks belong to the process, and any close of the
    file ends them), and another process could then corrupt the database.
    """
    found = {}
    for path in sorted(state_dir.rglob("*")):
        info = path.stat()
        if path.is_file():
            found[str(path.relative_to(state_dir))] = (info.st_ino, info.st_size, info.st_mtime_ns)
    return found


def _cli_env(year: Year, site: Site) -> dict[str, str]:
    return {
        "MOODLE_BRIDGE_URL": site.url,
        "MOODLE_BRIDGE_TOKEN": site.emulator.token_for("bridge"),
        "MOODLE_BRIDGE_STATE_DIR": str(year.workdir / "state"),
        "MOODLE_BRIDGE_CONFIG": str(year.workdir / "none.toml"),
    }


def slip_emulator_on_real_state(year: Year) -> None:
    """``sync --emulator`` with the real state folder configured: the real state and the real
    site must stay exactly as they were."""
    state_dir, site = year.workdir / "state", year.site
    (year.workdir / "none.toml").write_text("", encoding="utf-8")
    before_files, before_calls = _state_files(state_dir), len(site.emulator.calls)
    before_users = inv.account_snapshot(site.world)
    roster = year.world.exports[-1].path
    result = CliRunner().invoke(
        main,
        ["sync", "--plugin", "generic", "--roster", str(roster), "--emulator", "--yes", "--json"],
        env=_cli_env(year, site),
    )
    found = []
    if _state_files(state_dir) != before_files:
        found.append("the real state folder changed")
    found += inv.changed_accounts(before_users, inv.account_snapshot(site.world))
    if len(site.emulator.calls) != before_calls:
        found.append(f"the real site got {len(site.emulator.calls) - before_calls} calls")
    year.verdicts.add("other_site_untouched", found, f"{year.today} sync --emulator")
    year.verdicts.slips["emulator_on_real_state"] = f"exit {result.exit_code}"


def slip_old_file(year: Year) -> None:
    """The operator syncs a PENDIS file from five weeks ago again."""
    old = [
        e
        for e in year.world.exports
        if e.unit == "PENDIS" and e.day <= year.today - dt.timedelta(days=35)
    ]
    report = year.sync(old[-1], label=f"{year.today} old file {old[-1].day}")
    year.verdicts.slips["old_file"] = json.dumps(report.planned)


def slip_two_at_once(year: Year) -> None:
    """Two ``moodle-bridge sync`` processes on one state at once: one must refuse to start.

    Each request is slowed down so that the runs overlap; the roster is the one just synced
    (nothing to change), and the grace is made endless for these two so that their wall clock
    (not the simulation's) cannot suspend anyone.
    """
    site = year.site
    (year.workdir / "none.toml").write_text("", encoding="utf-8")
    env = {
        **os.environ,
        **_cli_env(year, site),
        "MOODLE_BRIDGE_ABSENT_GRACE_DAYS": "100000",
    }
    roster = year.world.exports[-1].path
    command = [sys.executable, "-m", "moodle_bridge", "sync", "--plugin", "generic", "--roster",
               str(roster), "--yes", "--json"]  # fmt: skip
    # Neither run is given assessments: gap cohorts and enrolments must stay as they are.
    gaps_before = inv.gap_snapshot(site.world)
    site.emulator.latency = 1.0
    try:
        runs = [
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(2)
        ]
        outcomes = [
            (p.wait(timeout=120), p.stderr.read().decode() if p.stderr else "") for p in runs
        ]
    finally:
        site.emulator.latency = 0.0
    codes = sorted(code for code, _ in outcomes)
    # The run that got the state exits 0, or 1 for the roster's refused rows; the other 2.
    refused = [err for code, err in outcomes if code == 2]
    found = []
    if codes[0] not in (0, 1) or len(refused) != 1 or "another" not in refused[0]:
        found.append(
            f"two runs at once: exit codes {codes}, stderr {[e[-300:] for _, e in outcomes]}"
        )
    year.verdicts.add("one_run_at_a_time", found, f"{year.today} two at once")
    year.verdicts.slips["two_at_once"] = f"exit codes {codes}"
    year.check(f"{year.today} after two at once", gaps_before)


def slip_other_site(year: Year) -> None:
    """The operator points the real state at another Moodle: the run must stop before any
    write, and change nothing anywhere."""
    assert year.bridge is not None
    other = Site(year.clock, wwwroot="https://lms.other.example")
    before_users = inv.account_snapshot(year.site.world)
    before_accounts = year.store.accounts()
    with other:
        other.create_courses(["OTHER-1"])
        with MoodleClient(other.url, other.emulator.token_for("bridge")) as client:
            engine = Engine(
                client, year.store, year.workdir / "state", year.options, clock=year.clock
            )
            unit = year.bridge.unit
            outcome = "ran"
            try:
                report = engine.run(Source("generic", unit, year.world.exports[-1].path))
                outcome = f"report exit {report.exit_code}"
            except ConfigError as error:
                outcome = f"refused: {type(error).__name__}"
    found = inv.writes(other.emulator.calls)
    found += inv.changed_accounts(before_users, inv.account_snapshot(year.site.world))
    if year.store.accounts() != before_accounts:
        found.append("the state's accounts changed")
    if not outcome.startswith("refused"):
        found.append(f"the run against another site was not refused ({outcome})")
    year.verdicts.add("other_site_untouched", found, f"{year.today} other site")
    year.verdicts.slips["other_site"] = outcome


SLIPS: dict[str, Callable[[Year], None]] = {
    "emulator_on_real_state": slip_emulator_on_real_state,
    "old_file": slip_old_file,
    "two_at_once": slip_two_at_once,
    "other_site": slip_other_site,
}


# --- issue 13: a year of months -------------------------------------------------------------------
def _months(world: HRWorld) -> list[dt.date]:
    days = [d for d in world.days() if d.day == 1]
    return days or [world.start]


def year_of_months(
    workdir: Path,
    scale: Scale,
    *,
    suspends: bool = False,
) -> Verdicts:
    """Monthly syncs of every unit with assessments, with completions pulled, hand enrolments
    and learners in between. ``suspends``: the site's cohort sync suspends on removal, and the
    bridge is given the probe course that proves it. The site keeps its completion report (the
    seeded one), the bridge's way to see closed windows."""
    year = Year(
        workdir,
        scale,
        grace_days=45,
        cohort_sync=SUSPEND if suspends else UNENROL,
        probe=suspends,
    )
    world, site = year.world, year.site
    year.verdicts.slips["cohort_sync"] = "suspend" if suspends else "unenrol"
    rng = world.rng
    with year.running():
        world.assess(year.standards, share=0.8)
        world.write_assessments(year.assessments)
        months = _months(world)
        for number, day in enumerate(months):
            world.advance_to(day)
            for k, unit in enumerate(UNITS):
                year.clock.at(run_stamp(day) + 60 * k)
                year.sync(world.export(unit, workdir / "exports"))
            year.verdicts.stats["audience_links"] += site.link_audiences()
            if number == 0:
                # Administrators link the bridge's unit and gap cohorts to a course of their
                # own: a removal from them that unenrols would now delete an enrolment.
                for idnumber in sorted(site.world.cohort_idnumber_index):
                    if idnumber.startswith(("unit:", inv.GAP_COHORT)):
                        site.link(idnumber, COMMUNITY_COURSE)
            year.clock.at(run_stamp(day) + 1800)
            year.verdicts.stats["pulled"] += year.running_bridge.pull().new_completions
            _check_month(year, f"{day} after the pull")
            following = months[number + 1] if number + 1 < len(months) else world.end
            # Mid-month the assessment results come out (gaps close, open, or stay), and
            # administrators enrol some people by hand in the course of their new step, before
            # the bridge gets to it at the next run.
            middle = min(day + dt.timedelta(days=14), following)
            world.advance_to(middle)
            world.assess(year.standards, share=0.2)
            world.write_assessments(year.assessments)
            _hand_enrolments(year, rng, run_stamp(middle))
            _learners(year, rng, run_stamp(day) + 3600, run_stamp(following) - 3600)
        year.clock.at(run_stamp(world.end))
        year.check(f"{world.end} end")
        _check_month(year, f"{world.end} end", pull=False)
        found = [e for e in year.store.enrolments().values() if e.method == "other"]
        year.verdicts.stats["found_not_ours"] = len(found)
    year.verdicts.stats["people"] = len(world.people)
    year.verdicts.stats["hand_enrolments"] = len(year.hand.rows)
    return year.verdicts


def _check_month(year: Year, when: str, *, pull: bool = True) -> None:
    world, store = year.site.world, year.store
    bridge_id = inv.bridge_user_id(year.site.emulator)
    if pull:
        chosen = inv.chosen_courses(world, store, bridge_id)
        year.verdicts.add(
            "ledger_complete", inv.ledger_gaps(world, store, chosen, year.clock.now), when
        )
    year.verdicts.add("cap", inv.over_cap(world, year.catalogue, CAP, bridge_id), when)
    year.verdicts.add("hand_untouched", year.hand.changed(world), when)
    year.verdicts.add("history_kept", year.history.lost(world), when)


def _hand_enrolments(year: Year, rng: random.Random, when: int) -> None:
    """About 5% of the bridge's learners a month are enrolled by hand by an administrator, with a
    window of their own, in the course of their next step in a competency they lack (the one
    the bridge will choose, as in issue 13's report); never beyond the cap by the
    administrator alone."""
    site, world = year.site, year.site.world
    year.clock.at(when)
    people = year.world.by_nip()
    accounts = year.store.accounts()
    made = []
    for nip in sorted(accounts):
        person = people.get(nip)
        user = world.users.get(accounts[nip].moodle_id)
        if person is None or user is None or user.get("suspended") or rng.random() >= 0.05:
            continue
        steps = manual_courses(accounts[nip].unit)
        options = [
            course
            for competency, need in sorted(year.standards.get(person.jabatan, {}).items())
            if (held := person.levels.get(competency)) is not None and held[0] < need
            for course in steps.get((competency, held[0]), [])
        ]
        if not options:
            continue
        courseid = year.catalogue[rng.choice(options)]
        mine = {world.instance_course.get(e) for e in world.user_enrolids.get(user["id"], ())}
        if courseid in mine or len(mine & set(year.catalogue.values())) >= CAP:
            continue
        made.append(site.enrol_by_hand(user["id"], courseid, when + DAY, when + 120 * DAY))
    year.hand.record(world, made)
    year.verdicts.stats["hand_enrolled"] += len(made)


def _learners(year: Year, rng: random.Random, start: int, end: int) -> None:
    """Learners finish some of the courses they are actively enrolled in: some at any time of
    the month, some on the last evening of a window that closes this month."""
    emulator = year.site.emulator
    world = emulator.world
    courses = {*year.catalogue.values(), year.site.course_id(COMMUNITY_COURSE)}
    for (enrolid, userid), row in sorted(world.enrolments.items()):
        courseid = world.instance_course.get(enrolid)
        if courseid not in courses or rng.random() >= 0.3:
            continue
        done = world.completions.get((courseid, userid), {})
        if done.get("timecompleted"):
            continue
        closes = row["timeend"] if start < row["timeend"] <= end else 0
        if closes and rng.random() < 0.5:
            when = closes - 3600  # the last evening of the window
            year.verdicts.stats["last_day_completions"] += 1
        else:
            when = rng.randint(start, end)
        if is_active(world, row, when) and world.users.get(userid, {}).get("suspended") == 0:
            learner_completes(emulator, userid, courseid, when)
            year.verdicts.stats["completed"] += 1
    year.clock.at(end)
