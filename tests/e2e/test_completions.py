"""Completions end to end: ``sync --assessments`` enrols, the emulated Moodle records
completions, ``moodle-bridge completions pull`` brings them into the ledger.

The "End-to-end against the emulator" item of issue 5's acceptance list (the pull part): the
ledger holds exactly the completions Moodle has, with JP and competency from the catalogue and
the criteria's completion time where Moodle tells it; a second pull makes no calls for
completed enrolments; a completion survives the enrolment's later suspension; the next sync
moves the person on to the next level's course.

The tests use their own small mapping tables (written into ``tmp_path``). One course of the
catalogue is the seeded site's MNJ-INTEGRITAS-1 (two activity criteria, as recorded from a real
Moodle); the others are created with the admin token, two of them given a self-completion
criterion and one left without criteria (Moodle then cannot tell a completion time at all).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from moodle_bridge.completions import SOURCE_PULL_TIME, SOURCE_REPORT
from moodle_bridge.emulator.completion import add_self_completion
from moodle_bridge.store import EnrolmentRow, LedgerEntry, Store
from tests.e2e.conftest import (
    SITE_INFO,
    Bridge,
    Run,
    nip,
    person,
    write_assessments,
    write_tables,
)

UNIT = "PENDIS"
JABATAN = "Analis SDM Aparatur"
ZONE = ZoneInfo("Asia/Jakarta")
STATUS = "core_completion_get_course_completion_status"
USERS_COURSES = "core_enrol_get_users_courses"

COMPETENCIES = [
    ("TEK-A", "Alpha", "teknis", 1),
    ("TEK-B", "Beta", "teknis", 2),
    ("TEK-C", "Gamma", "teknis", 3),
]
STANDARD = {"TEK-A": 3, "TEK-B": 2, "TEK-C": 2}

A12 = "MNJ-INTEGRITAS-1"  # seeded: two activity criteria, ALL
A23 = "E2E-A-23"  # created here, self-completion criterion added
B12 = "E2E-B-12"  # created here, self-completion criterion added
C12 = "E2E-C-12"  # created here, no completion criteria
#: competency, from, to, shortname, JP
CATALOGUE = [
    ("TEK-A", 1, 2, A12, 12),
    ("TEK-A", 2, 3, A23, 20),
    ("TEK-B", 1, 2, B12, 8),
    ("TEK-C", 1, 2, C12, 5),
]
JP = {row[3]: row[4] for row in CATALOGUE}
COMPETENCY = {row[3]: (row[0], row[2]) for row in CATALOGUE}
CREATED = (A23, B12, C12)
WITH_SELF_CRITERION = (A23, B12)

OLD = dt.date(2024, 1, 10)
#: person -> competency -> assessed level (on OLD).
ASSESSED: dict[int, dict[str, int]] = {
    0: {"TEK-A": 1, "TEK-B": 1, "TEK-C": 1},  # A12, B12, C12
    1: {"TEK-A": 1, "TEK-B": 2, "TEK-C": 2},  # A12
    2: {"TEK-A": 2, "TEK-B": 1, "TEK-C": 2},  # A23, B12
    3: {"TEK-A": 3, "TEK-B": 2, "TEK-C": 1},  # C12
    4: {"TEK-A": 3, "TEK-B": 2, "TEK-C": 2},  # no gap
    5: {"TEK-A": 1, "TEK-B": 1, "TEK-C": 1},  # A12, B12, C12: completes nothing
}
PEOPLE = range(6)
EXPECTED_ENROLMENTS = {
    (nip(0), A12),
    (nip(0), B12),
    (nip(0), C12),
    (nip(1), A12),
    (nip(2), A23),
    (nip(2), B12),
    (nip(3), C12),
    (nip(5), A12),
    (nip(5), B12),
    (nip(5), C12),
}


# --- files ------------------------------------------------------------------------------------
def write_mappings(folder: Path) -> Path:
    return write_tables(
        folder,
        unit=UNIT,
        jabatan=JABATAN,
        competencies=COMPETENCIES,
        standard=STANDARD,
        catalogue=[
            [c, low, high, name, jp, "", "", "", "manual"] for c, low, high, name, jp in CATALOGUE
        ],
    )


class Site:
    """One bridge with its mappings, roster, assessments and courses."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.mappings = write_mappings(bridge.tmp_path / "mappings")
        bridge.configure(f'[enrol]\nmappings_dir = "{self.mappings}"\n')
        self.roster = bridge.roster([person(i, unit=UNIT, jabatan=JABATAN) for i in PEOPLE])
        self.assessment_rows = [
            (i, c, level, OLD) for i, levels in ASSESSED.items() for c, level in levels.items()
        ]
        self.assessments = write_assessments(
            bridge.tmp_path / "assessments.csv", self.assessment_rows
        )
        world = bridge.emulator.world
        seeded = {c["shortname"]: cid for cid, c in world.courses.items()}
        assert A12 in seeded, "the seeded site has lost MNJ-INTEGRITAS-1"
        assert len(world.courses[seeded[A12]]["completion_criteria"]) == 2
        self.course_ids: dict[str, int] = bridge.create_courses(CREATED)
        self.course_ids[A12] = seeded[A12]
        # Course completion settings have no web service: set them as a teacher would.
        for name in WITH_SELF_CRITERION:
            assert world.courses[self.course_ids[name]]["enablecompletion"] == 1
            add_self_completion(bridge.emulator, self.course_ids[name])

    @property
    def store_path(self) -> Path:
        return self.bridge.state_dir / "state.sqlite3"

    def reassess(self, *extra: tuple[int, str, int, dt.date]) -> None:
        self.assessment_rows = [*self.assessment_rows, *extra]
        write_assessments(self.assessments, self.assessment_rows)

    def sync(self) -> Run:
        return self.bridge.sync(self.roster, "--assessments", str(self.assessments))

    def pull(self, *options: str) -> Run:
        return self.bridge.invoke("completions", "pull", "--json", *options)

    def ledger(self) -> list[LedgerEntry]:
        with Store.open(self.store_path) as store:
            return store.completions()

    def store_enrolments(self) -> dict[tuple[str, str], EnrolmentRow]:
        with Store.open(self.store_path) as store:
            return store.enrolments()

    # --- the emulated Moodle -------------------------------------------------------------------
    def userid(self, i: int) -> int:
        return int(self.bridge.user(nip(i))["id"])

    def complete_criteria(self, i: int, course: str, when: int) -> None:
        """The learner meets every criterion; Moodle's completion task aggregates."""
        self.bridge.emulator.run_setup(
            {
                "action": "complete_criteria_and_aggregate",
                "userid": self.userid(i),
                "courseid": self.course_ids[course],
                "timecompleted": when,
            }
        )

    def mark_completed(self, i: int, course: str, when: int) -> None:
        """An administrator writes the course completion directly (criteria untouched)."""
        self.bridge.emulator.run_setup(
            {
                "action": "mark_course_completed",
                "userid": self.userid(i),
                "courseid": self.course_ids[course],
                "timecompleted": when,
            }
        )

    def enrolments(self) -> dict[tuple[str, str], dict[str, Any]]:
        """(NIP, course) -> the manual user_enrolments row of the people of this site."""
        world = self.bridge.emulator.world
        owned = {self.userid(i): nip(i) for i in PEOPLE}
        instances = {
            instance["id"]: name
            for name, course_id in self.course_ids.items()
            for instance in world.courses[course_id]["enrolment_instances"]
            if instance["enrol"] == "manual"
        }
        return {
            (owned[userid], instances[enrolid]): row
            for (enrolid, userid), row in world.enrolments.items()
            if enrolid in instances and userid in owned
        }

    def active(self) -> set[tuple[str, str]]:
        return {key for key, row in self.enrolments().items() if row["status"] == 0}

    def manual_items(self, run: Run) -> list[dict[str, str]]:
        """Every item of every enrol_manual_enrol_users request of ``run``."""
        items: dict[tuple[int, str], dict[str, str]] = {}
        for n, pairs in enumerate(run.fields("enrol_manual_enrol_users")):
            for key, value in pairs:
                index, _, name = key.removeprefix("enrolments[").partition("][")
                items.setdefault((n, index), {})[name.rstrip("]")] = value
        return list(items.values())


def ok(run: Run) -> dict[str, Any]:
    assert run.exit_code == 0, run.output
    assert run.data is not None, run.output
    return run.data


def synced(site: Site) -> dict[str, Any]:
    data = ok(site.sync())
    assert data["record_errors"] == [], data["record_errors"]
    return data


def asked_users(run: Run) -> list[int]:
    """The users ``core_enrol_get_users_courses`` was asked about in ``run``."""
    return sorted(
        int(value) for pairs in run.fields(USERS_COURSES) for key, value in pairs if key == "userid"
    )


def days_ago(days: int) -> int:
    """A whole-second time ``days`` days before now, at 09:00 Jakarta time."""
    day = dt.datetime.now(ZONE).date() - dt.timedelta(days=days)
    return int(dt.datetime.combine(day, dt.time(9), ZONE).timestamp())


@pytest.fixture
def site(bridge: Bridge) -> Site:
    """A site without a completion report: the pull asks person by person."""
    bridge.emulator.world.reports.clear()
    site = Site(bridge)
    synced(site)
    assert site.active() == EXPECTED_ENROLMENTS
    return site


@pytest.fixture
def report_site(bridge: Bridge) -> Site:
    """The seeded site, whose "Bridge course completions" report is shared with the bridge."""
    site = Site(bridge)
    synced(site)
    return site


def complete_scenario(site: Site) -> dict[tuple[str, str], int | None]:
    """Mark the scenario's completions in Moodle; (NIP, course) -> the time Moodle records in
    the criteria (None: written directly, Moodle's API cannot tell when)."""
    t_a12, t_a23, t_b12 = days_ago(20), days_ago(9), days_ago(3)
    site.complete_criteria(0, A12, t_a12)  # two activity criteria, then the completion task
    site.mark_completed(0, B12, days_ago(5))  # has a criterion, but written directly
    site.mark_completed(1, A12, days_ago(7))  # written directly: person 1 is then all done
    site.complete_criteria(2, A23, t_a23)  # self-completion criterion
    site.complete_criteria(2, B12, t_b12)
    site.mark_completed(3, C12, days_ago(2))  # a course without criteria at all
    return {
        (nip(0), A12): t_a12,
        (nip(0), B12): None,
        (nip(1), A12): None,
        (nip(2), A23): t_a23,
        (nip(2), B12): t_b12,
        (nip(3), C12): None,
    }


# --- 1. the ledger holds exactly Moodle's completions -------------------------------------------
def test_a_pull_records_exactly_the_completions_with_jp_competency_and_time(site: Site) -> None:
    expected = complete_scenario(site)
    before = int(time.time())

    run = site.pull()

    after = int(time.time()) + 1
    data = ok(run)
    assert data["failures"] == [], data
    assert data["stopped"] is None, data
    assert data["new_completions"] == len(expected)
    assert data["enrolments_pending"] == len(EXPECTED_ENROLMENTS)
    assert data["people_asked"] == 5  # everyone with an enrolment; person 4 has none
    assert run.count(USERS_COURSES) == 5  # one call per person, not per enrolment
    assert run.count(STATUS) == len(expected)  # only completed courses cost a second call
    assert run.writes == []

    ledger = site.ledger()
    assert {(c.nip, c.course) for c in ledger} == set(expected)
    for entry in ledger:
        key = (entry.nip, entry.course)
        competency, to_level = COMPETENCY[entry.course]
        assert (entry.jp, entry.competency, entry.to_level) == (
            JP[entry.course],
            competency,
            to_level,
        ), entry
        if expected[key] is not None:
            assert entry.timecompleted == expected[key], entry
            assert entry.source == "moodle", entry
        else:
            assert before <= entry.timecompleted <= after, entry
            assert entry.source == SOURCE_PULL_TIME, entry
    jp: dict[str, int] = {}
    for entry in ledger:
        jp[entry.nip] = jp.get(entry.nip, 0) + entry.jp
    # Hand-computed: 0 did A12 (12) + B12 (8); 1 did A12; 2 did A23 (20) + B12 (8); 3 did C12.
    assert jp == {nip(0): 20, nip(1): 12, nip(2): 28, nip(3): 5}
    assert nip(5) not in jp
    assert nip(4) not in jp


def test_the_report_gives_moodles_time_even_for_completions_written_directly(
    report_site: Site,
) -> None:
    """Issue 13: a SIASN row's end date was the pull's date where Moodle had the time. The
    report's Time completed column has it for every completion, written directly or not."""
    site = report_site
    expected = complete_scenario(site)
    written_directly = {
        (nip(0), B12): days_ago(5),
        (nip(1), A12): days_ago(7),
        (nip(3), C12): days_ago(2),
    }

    run = site.pull()

    data = ok(run)
    assert data["failures"] == [], data
    assert data["new_completions"] == len(expected)
    # One look at the report and one page: nobody asked one by one.
    assert run.count("core_reportbuilder_retrieve_report") == 2
    assert run.count(USERS_COURSES) == run.count(STATUS) == 0
    ledger = {(c.nip, c.course): c for c in site.ledger()}
    assert set(ledger) == set(expected)
    for key, when in {**expected, **written_directly}.items():
        assert when is not None
        assert (ledger[key].timecompleted, ledger[key].source) == (when, SOURCE_REPORT), key
    assert {c.method for c in ledger.values()} == {"manual"}
    started = {key: e.timestart or e.enrolled_at for key, e in site.store_enrolments().items()}
    assert all(ledger[key].timestarted == started[key] for key in ledger)


def test_a_pull_limited_to_a_unit_asks_only_its_people(site: Site) -> None:
    complete_scenario(site)
    # --unit takes known unit codes only: SETJEN is listed, but nobody here belongs to it.
    (site.mappings / "units.csv").write_text("unit,annual_cap\nPENDIS,\nSETJEN,\n")

    other = site.pull("--unit", "SETJEN")

    data = ok(other)
    assert data["people_asked"] == 0
    assert data["new_completions"] == 0
    assert other.calls == [(SITE_INFO, 0)]  # the site's identity only
    assert site.ledger() == []
    assert ok(site.pull("--unit", UNIT))["new_completions"] == 6


# --- 2. a repeated pull asks only about what is still pending ----------------------------------
def test_a_second_pull_asks_nothing_about_completed_enrolments(site: Site) -> None:
    complete_scenario(site)
    ok(site.pull())
    first = site.ledger()

    again = site.pull()

    data = ok(again)
    assert data["new_completions"] == 0
    assert again.count(STATUS) == 0
    # People 1, 2 and 3 completed everything they were enrolled in: they are not asked again.
    assert asked_users(again) == sorted([site.userid(0), site.userid(5)])
    assert data["people_asked"] == 2
    assert data["enrolments_pending"] == 4  # 0: C12; 5: A12, B12, C12
    # First of all the site's identity (the state must be this site's), then the one look
    # for a completion report this site does not have, then the two people.
    assert data["calls"] == {SITE_INFO: 1, "core_reportbuilder_list_reports": 1, USERS_COURSES: 2}
    assert [name for name, _ in again.calls[:1]] == [SITE_INFO]
    assert len(again.calls) == 4
    assert site.ledger() == first

    # A completion that happens later costs exactly one more status call, and only for it.
    site.complete_criteria(5, B12, days_ago(1))
    third = site.pull()
    data = ok(third)
    assert data["new_completions"] == 1
    assert third.count(STATUS) == 1
    assert asked_users(third) == sorted([site.userid(0), site.userid(5)])
    assert {(c.nip, c.course) for c in site.ledger()} == {(c.nip, c.course) for c in first} | {
        (nip(5), B12)
    }


# --- 3. a completion survives the enrolment's suspension ---------------------------------------
def test_a_completion_survives_the_suspension_of_its_enrolment(site: Site) -> None:
    when = days_ago(4)
    site.complete_criteria(2, B12, when)
    ok(site.pull())
    recorded = [c for c in site.ledger() if (c.nip, c.course) == (nip(2), B12)]
    assert [(c.timecompleted, c.jp) for c in recorded] == [(when, JP[B12])]
    # A new assessment says person 2 now meets the TEK-B standard: the gap closes.
    site.reassess((2, "TEK-B", 2, dt.datetime.now(ZONE).date() - dt.timedelta(days=1)))

    run = site.sync()

    data = ok(run)
    assert data["record_errors"] == []
    assert run.count("enrol_manual_unenrol_users") == 0
    # A finished course is left as it is: the learner keeps access, and the ledger has it.
    assert site.enrolments()[(nip(2), B12)]["status"] == 0
    assert [c for c in site.ledger() if (c.nip, c.course) == (nip(2), B12)] == recorded
    # An administrator suspends the enrolment in Moodle: the completion stays in the ledger.
    courseid = next(
        cid for cid, c in site.bridge.emulator.world.courses.items() if c["shortname"] == B12
    )
    site.bridge.admin_call(
        "enrol_manual_enrol_users",
        {
            "enrolments[0][roleid]": "5",
            "enrolments[0][userid]": str(site.userid(2)),
            "enrolments[0][courseid]": str(courseid),
            "enrolments[0][suspend]": "1",
        },
    )
    assert site.enrolments()[(nip(2), B12)]["status"] == 1
    # Pulling again, with the enrolment suspended, neither loses nor changes it.
    later = site.pull()
    assert ok(later)["new_completions"] == 0
    assert [c for c in site.ledger() if (c.nip, c.course) == (nip(2), B12)] == recorded
    # Nor does a sync after that re-enrol them in the course they completed.
    again = site.sync()
    ok(again)
    assert (nip(2), B12) not in site.active()
    assert [c for c in site.ledger() if (c.nip, c.course) == (nip(2), B12)] == recorded


# --- 4. the next sync moves the person on ------------------------------------------------------
def test_the_next_sync_moves_the_person_on_to_the_next_level(site: Site) -> None:
    site.complete_criteria(1, A12, days_ago(6))
    # Without a pull, the bridge does not know: the sync changes nothing for person 1.
    before = site.sync()
    ok(before)
    assert before.writes == []
    assert (nip(1), A23) not in site.enrolments()

    ok(site.pull())
    assert [(c.nip, c.course, c.to_level) for c in site.ledger()] == [(nip(1), A12, 2)]

    run = site.sync()

    data = ok(run)
    assert data["record_errors"] == []
    assert (nip(1), A23) in site.active()  # the next step, 2 -> 3
    items = site.manual_items(run)
    a12 = str(site.course_ids[A12])
    user1 = str(site.userid(1))
    # Never enrolled again in the course they completed (a suspension is no enrolment).
    assert [
        i
        for i in items
        if (i.get("userid"), i.get("courseid")) == (user1, a12) and i.get("suspend") != "1"
    ] == []
    # The finished course is left as it is (access to its material stays).
    assert (nip(1), A12) in site.active()
    # Nobody else moved: person 5 (also at TEK-A level 1, nothing completed) stays in A12.
    assert (nip(5), A12) in site.active()
    assert (nip(5), A23) not in site.enrolments()
    # And the run after that, with the same files, writes nothing.
    again = site.sync()
    ok(again)
    assert again.writes == []
    assert (nip(1), A23) in site.active()


def test_the_sync_after_a_routine_pull_moves_everyone_on_without_an_override(
    site: Site,
) -> None:
    """Completions are the normal course of things, not a sign of bad input: the sync after a
    pull that brought several of them must not stop at the suspension guard (which is there
    for a roster or an assessment file gone wrong), or nobody moves on until an operator
    passes --allow-suspend."""
    complete_scenario(site)  # six completions out of ten enrolments
    ok(site.pull())

    run = site.sync()

    assert run.data is not None, run.output
    assert run.data["guard"] is None, run.data["guard"]
    ok(run)
    # 0 and 1 finished TEK-A 1 -> 2: both move on to 2 -> 3.
    assert {(nip(0), A23), (nip(1), A23)} <= site.active()
    completed = {(c.nip, c.course) for c in site.ledger()}
    user_of = {str(site.userid(i)): nip(i) for i in PEOPLE}
    course_of = {str(cid): name for name, cid in site.course_ids.items()}
    for item in site.manual_items(run):
        key = (user_of.get(item.get("userid", "")), course_of.get(item.get("courseid", "")))
        assert key not in completed or item.get("suspend") == "1", item


def test_a_completion_not_yet_pulled_is_asked_for_before_its_enrolment_is_suspended(
    site: Site,
) -> None:
    when = days_ago(3)
    site.complete_criteria(2, B12, when)
    # The gap closes by a new assessment before anyone pulled: Moodle stops listing a
    # suspended enrolment, so the sync must ask first or the completion would be lost.
    site.reassess((2, "TEK-B", 2, dt.datetime.now(ZONE).date() - dt.timedelta(days=1)))
    run = site.sync()
    ok(run)
    assert [(c.nip, c.course, c.timecompleted) for c in site.ledger()] == [(nip(2), B12, when)]
    assert site.enrolments()[(nip(2), B12)]["status"] == 0
