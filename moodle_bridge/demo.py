"""The demo: a synthetic roster synced twice into a built-in Moodle emulator over HTTP."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from moodle_bridge.completions import PullReport, pull_completions
from moodle_bridge.emulator import Emulator, default_seed
from moodle_bridge.emulator.cohorts import link_cohort_to_course
from moodle_bridge.emulator.completion import add_self_completion, learner_completes
from moodle_bridge.emulator.server import running
from moodle_bridge.errors import ConfigError
from moodle_bridge.files import private_dir
from moodle_bridge.mappings import CourseOffer, Mappings
from moodle_bridge.moodle.client import MoodleClient
from moodle_bridge.reports import ReportFiles, ReportInputs, reports_from_store
from moodle_bridge.samples import (
    generate_assessments,
    generate_people,
    write_assessments_csv,
    write_roster_csv,
)
from moodle_bridge.store import Store
from moodle_bridge.sync.engine import Engine, Source, SyncOptions, SyncReport
from moodle_bridge.sync.executor import Progress
from moodle_bridge.sync.gaps import GapInputs, load_unit_mappings
from moodle_bridge.timeutil import day_start
from moodle_bridge.units import discover_units

__all__ = ["DEMO_UNITS", "DemoResult", "fresh_workdir", "run_demo", "seed_catalogue"]

#: Three units of very different sizes, as in the ministry.
DEMO_UNITS = {"PENDIS": 0.6, "BIMAS_ISLAM": 0.25, "SETJEN": 0.15}

#: What a demo leaves in its folder; the next demo removes exactly these.
DEMO_ENTRIES = ("roster.csv", "assessments.csv", "state", "reports")
#: The file that marks a folder as a demo's, so that clearing it never removes anyone's files.
DEMO_MARKER = ".moodle-bridge-demo"

#: Learners finish their courses at times counted in the ministry's timezone.
DEMO_ZONE = ZoneInfo("Asia/Jakarta")


@dataclass
class DemoResult:
    """The demo's runs and where it left its files."""

    roster: Path
    assessments: Path
    state_dir: Path
    site_url: str
    courses: int
    plan: SyncReport
    first_sync: SyncReport
    second_sync: SyncReport
    #: Audience cohorts the first sync created, then linked to their courses as an
    #: administrator would, and the sync that brought their people in.
    linked: int = 0
    joined: SyncReport | None = None
    completed_in_moodle: int = 0
    pull: PullReport | None = None
    reports: ReportFiles | None = None

    @property
    def ok(self) -> bool:
        """Whether the demo showed what it should: a sync applied, the last one wrote nothing."""
        first = self.first_sync.result
        second = self.second_sync
        return (
            first is not None
            and first.stopped is None
            and second.plan is not None
            and second.plan.is_empty
            and second.result is None
        )


def _prepare_site(client: MoodleClient, emulator: Emulator, offers: list[CourseOffer]) -> int:
    """Do what the ministry's Moodle administrators do before the bridge runs: create the
    catalogue's courses, with self completion."""
    shortnames = sorted({o.course_shortname for o in offers})
    created: list[dict[str, Any]] = client.call(
        "core_course_create_courses",
        {
            "courses": [
                {"fullname": name, "shortname": name, "categoryid": 1, "enablecompletion": 1}
                for name in shortnames
            ]
        },
    )
    for course in created:
        add_self_completion(emulator, int(course["id"]))
    return len(shortnames)


def link_audiences(emulator: Emulator, awaiting: Mapping[str, str]) -> int:
    """Do what an administrator does after a sync names audience cohorts to link: link each
    to its course by cohort sync (Moodle enrols the cohort's members at once)."""
    world = emulator.world
    courses = {c.get("shortname"): cid for cid, c in world.courses.items()}
    cohorts = {c.get("idnumber"): cid for cid, c in world.cohorts.items()}
    for cohort, course in sorted(awaiting.items()):
        link_cohort_to_course(emulator, courses[course], cohorts[cohort])
    return len(awaiting)


def seed_catalogue(emulator: Emulator, url: str, offers: Sequence[CourseOffer]) -> int:
    """Prepare the emulator served at ``url`` as the demo does: the catalogue's courses, with
    self completion. Returns how many courses were created. Raises ConfigError when the
    emulator's seed has no ``admin``."""
    if "admin" not in emulator.world.username_index:
        msg = "the emulator's seed has no admin user to create the catalogue's courses with"
        raise ConfigError(msg)
    with MoodleClient(url, emulator.token_for("admin")) as admin:
        return _prepare_site(admin, emulator, list(offers))


def fresh_workdir(workdir: Path) -> Path:
    """Make ``workdir`` ready for a new demo: remove what an earlier demo left there.

    Each demo runs against a new emulator, and an old state describes another site. Only the
    demo's own entries are removed, and only from a folder that is clearly a demo's: one with
    the demo's marker or nothing but the demo's entries. Raises ConfigError for any other
    folder holding one of those names.
    """
    private_dir(workdir)
    marker = workdir / DEMO_MARKER
    left = [workdir / name for name in DEMO_ENTRIES if (workdir / name).exists()]
    others = {p.name for p in workdir.iterdir()} - {*DEMO_ENTRIES, DEMO_MARKER}
    if left and others and not marker.exists():
        msg = (
            f"{workdir} holds {', '.join(p.name for p in left)} that no demo wrote there: "
            "choose another folder with --dir"
        )
        raise ConfigError(msg)
    for path in left:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    marker.write_text("A moodle-bridge demo folder: each demo clears it.\n", encoding="utf-8")
    return workdir


def run_demo(
    workdir: Path,
    mappings_dir: Path,
    *,
    size: int = 3000,
    seed: int = 1,
    progress: Progress | None = None,
) -> DemoResult:
    """Generate a roster of ``size`` synthetic ASN (with some dirty rows) and their
    assessments in ``workdir``, serve a fresh emulator on 127.0.0.1 with the catalogue's
    courses, and run plan, sync and sync again, with competency-gap enrolments. What an
    earlier demo left in ``workdir`` is removed first (see :func:`fresh_workdir`)."""
    fresh_workdir(workdir)
    mappings = load_unit_mappings(mappings_dir, DEMO_UNITS)
    roster, assessments = _write_inputs(workdir, mappings, size, seed)
    offers = [o for m in mappings.values() for o in m.catalogue]
    state_dir = workdir / "state"
    unit = discover_units().require("generic")
    gaps = GapInputs(assessments, mappings_dir, dt.date.today())
    emulator = Emulator(default_seed())
    with running(emulator) as server:
        courses = seed_catalogue(emulator, server.url, offers)
        with (
            MoodleClient(server.url, emulator.token_for("bridge")) as client,
            Store.open(state_dir / "state.sqlite3") as store,
        ):
            options = SyncOptions(mappings_dir=mappings_dir)
            source = Source("generic", unit, roster, gaps)

            def run(apply: bool) -> SyncReport:
                mode = dataclasses.replace(options, apply=apply)
                engine = Engine(
                    client, store, state_dir, mode, progress=progress if apply else None
                )
                return engine.run(source)

            plan, first = run(False), run(True)
            awaiting = first.plan.awaiting_link if first.plan is not None else {}
            linked = link_audiences(emulator, awaiting)
            joined = run(True) if linked else first
            result = DemoResult(
                roster, assessments, state_dir, server.url, courses, plan, first, run(True)
            )
            result.linked, result.joined = linked, joined
            result.completed_in_moodle = _learners_complete(emulator, store, seed)
            catalogue = {o.course_shortname: o for o in offers}
            result.pull = pull_completions(client, store, catalogue)
            inputs = ReportInputs(unit="PENDIS", year=dt.date.today().year, mappings=mappings)
            result.reports = reports_from_store(store, inputs, workdir / "reports")
        return result


def _write_inputs(
    workdir: Path, mappings: Mapping[str, Mappings], size: int, seed: int
) -> tuple[Path, Path]:
    """The demo's roster and assessments, generated into ``workdir``."""
    roster = workdir / "roster.csv"
    write_roster_csv(roster, generate_people(size, seed, units=DEMO_UNITS))
    competencies = sorted({c for m in mappings.values() for c in m.competencies})
    assessments = workdir / "assessments.csv"
    write_assessments_csv(
        assessments,
        generate_assessments(generate_people(size, seed, units=DEMO_UNITS), competencies, seed),
    )
    return roster, assessments


def _learners_complete(emulator: Emulator, store: Store, seed: int) -> int:
    """Play the learners: about 60% finish their courses (mark themselves complete), at times
    spread over the year so far."""
    rng = random.Random(seed)
    accounts, courses = store.accounts(), store.courses()
    today = dt.date.today()
    start = day_start(dt.date(today.year, 1, 1), DEMO_ZONE)
    span = day_start(today, DEMO_ZONE) - start
    done = 0
    for enrolment in store.enrolments().values():
        if rng.random() < 0.6 and enrolment.course in courses:
            learner_completes(
                emulator,
                accounts[enrolment.nip].moodle_id,
                courses[enrolment.course],
                int(start + rng.random() * span),
            )
            done += 1
    return done
