"""The demo: a synthetic roster synced twice into a built-in Moodle emulator over HTTP."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moodle_bridge.completions import PullReport, pull_completions
from moodle_bridge.emulator import Emulator, default_seed
from moodle_bridge.emulator.cohorts import link_cohort_to_course
from moodle_bridge.emulator.completion import add_self_completion, learner_completes
from moodle_bridge.emulator.server import running
from moodle_bridge.mappings import CourseOffer
from moodle_bridge.moodle.client import MoodleClient
from moodle_bridge.reports import ReportFiles, ReportInputs, reports_from_store
from moodle_bridge.samples import (
    generate_assessments,
    generate_people,
    write_assessments_csv,
    write_roster_csv,
)
from moodle_bridge.store import Store
from moodle_bridge.sync.engine import Engine, SyncOptions, SyncReport
from moodle_bridge.sync.executor import Progress
from moodle_bridge.sync.gaps import GapInputs, gap_cohort, load_unit_mappings
from moodle_bridge.units import discover_units

#: Three units of very different sizes, as in the ministry.
DEMO_UNITS = {"PENDIS": 0.6, "BIMAS_ISLAM": 0.25, "SETJEN": 0.15}


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
    completed_in_moodle: int = 0
    pull: PullReport | None = None
    reports: ReportFiles | None = None

    @property
    def ok(self) -> bool:
        """Whether the demo showed what it should: a sync applied, the next changed nothing."""
        first = self.first_sync.result
        second = self.second_sync
        return (
            first is not None
            and first.stopped is None
            and not any(second.planned.values())
            and sum(second.calls.values()) == 0
        )


def _prepare_site(client: MoodleClient, emulator: Emulator, offers: list[CourseOffer]) -> int:
    """Do what the ministry's Moodle administrators do before the bridge runs: create the
    catalogue's courses, and link each cohort-mode course to its gap cohort."""
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
    ids = {c["shortname"]: int(c["id"]) for c in created}
    for courseid in ids.values():
        add_self_completion(emulator, courseid)
    cohort_offers = {
        gap_cohort(o.competency, o.from_level): o for o in offers if o.mode == "cohort"
    }
    if cohort_offers:
        cohorts = client.call(
            "core_cohort_create_cohorts",
            {
                "cohorts": [
                    {
                        "name": idnumber,
                        "idnumber": idnumber,
                        "categorytype": {"type": "system", "value": ""},
                    }
                    for idnumber in sorted(cohort_offers)
                ]
            },
        )
        for cohort in cohorts:
            offer = cohort_offers[cohort["idnumber"]]
            link_cohort_to_course(emulator, ids[offer.course_shortname], int(cohort["id"]))
    return len(shortnames)


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
    courses, and run plan, sync and sync again, with competency-gap enrolments."""
    workdir.mkdir(parents=True, exist_ok=True)
    roster = workdir / "roster.csv"
    write_roster_csv(roster, generate_people(size, seed, units=DEMO_UNITS))
    mappings = load_unit_mappings(mappings_dir, DEMO_UNITS)
    competencies = sorted({c for m in mappings.values() for c in m.competencies})
    assessments = workdir / "assessments.csv"
    write_assessments_csv(
        assessments,
        generate_assessments(generate_people(size, seed, units=DEMO_UNITS), competencies, seed),
    )
    offers = [o for m in mappings.values() for o in m.catalogue]
    state_dir = workdir / "state"
    unit = discover_units().require("generic")
    gaps = GapInputs(assessments, mappings_dir, dt.date.today())
    emulator = Emulator(default_seed())
    with running(emulator) as server:
        with MoodleClient(server.url, emulator.token_for("admin")) as admin:
            courses = _prepare_site(admin, emulator, offers)
        with (
            MoodleClient(server.url, emulator.token_for("bridge")) as client,
            Store.open(state_dir / "state.sqlite3") as store,
        ):
            reports = []
            for apply in (False, True, True):
                engine = Engine(
                    client,
                    store,
                    state_dir,
                    SyncOptions(apply=apply),
                    progress=progress if apply else None,
                )
                reports.append(engine.run("generic", unit, roster, gaps=gaps))
            plan, first, second = reports
            result = DemoResult(
                roster, assessments, state_dir, server.url, courses, plan, first, second
            )
            result.completed_in_moodle = _learners_complete(emulator, store, seed)
            catalogue = {o.course_shortname: o for o in offers}
            result.pull = pull_completions(client, store, catalogue, as_of=dt.date.today())
            inputs = ReportInputs(unit="PENDIS", year=dt.date.today().year, mappings=mappings)
            result.reports = reports_from_store(store, inputs, workdir / "reports")
        return result


def _learners_complete(emulator: Emulator, store: Store, seed: int) -> int:
    """Play the learners: about 60% finish their courses (mark themselves complete), at times
    spread over the year so far."""
    rng = random.Random(seed)
    accounts, courses = store.accounts(), store.courses()
    today = dt.date.today()
    start = dt.datetime(today.year, 1, 1, tzinfo=dt.UTC).timestamp()
    span = dt.datetime.combine(today, dt.time.min, dt.UTC).timestamp() - start
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
