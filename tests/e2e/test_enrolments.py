"""Competency-gap enrolments end to end: ``moodle-bridge sync --assessments`` -> HTTP -> emulator.

The "End-to-end against the emulator" item of issue 4's acceptance list: the first sync enrols
exactly the engine's choices, a second sync writes nothing, a new assessment that closes a gap
suspends (never unenrols) the enrolment, a cohort-synced course is handled through its cohort
only, an enrolment made by hand is left alone, and the annual cap holds across runs.

The tests use their own small mapping tables (written into ``tmp_path``), so they do not
depend on the shipped samples; the engine's choices are computed independently with
:func:`moodle_bridge.gap_engine.plan_gaps` on the same inputs.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pytest

from moodle_bridge.emulator.cohorts import link_cohort_to_course
from moodle_bridge.gap_engine import CurrentEnrolment, GapPlan, plan_gaps
from moodle_bridge.mappings import load_mappings
from moodle_bridge.store import Store
from tests.e2e.conftest import (
    Bridge,
    Run,
    is_write,
    nip,
    person,
    write_assessments,
    write_tables,
)

UNIT = "PENDIS"
JABATAN = "Analis SDM Aparatur"
STUDENT = 5  # the seeded site's student role
ZONE = ZoneInfo("Asia/Jakarta")

COMPETENCIES = [
    # code, name, kind, priority (lower is more important)
    ("TEK-A", "Alpha", "teknis", 1),
    ("TEK-B", "Beta", "teknis", 2),
    ("TEK-C", "Gamma", "teknis", 3),
]
STANDARD = {"TEK-A": 3, "TEK-B": 2, "TEK-C": 2}
WINDOW = (dt.date(2020, 1, 1), dt.date(2099, 12, 31))
#: competency, from, to, shortname, capacity, window
CATALOGUE = [
    ("TEK-A", 1, 2, "E2E-A-12", "2", None),
    ("TEK-A", 2, 3, "E2E-A-23", "", WINDOW),
    ("TEK-B", 1, 2, "E2E-B-12", "", None),
    ("TEK-C", 1, 2, "E2E-C-12", "", None),
]
COURSES = [row[3] for row in CATALOGUE]

OLD = dt.date(2024, 1, 10)
NEW = dt.date(2024, 6, 10)
#: person -> competency -> level (assessed on OLD). People 6 has no assessment at all.
ASSESSED: dict[int, dict[str, int]] = {
    0: {"TEK-A": 1, "TEK-B": 1, "TEK-C": 1},  # three gaps, A the largest
    1: {"TEK-A": 1, "TEK-B": 2, "TEK-C": 2},  # one gap
    2: {"TEK-A": 1, "TEK-B": 1},  # A-12 is full (capacity 2): waits; C not assessed
    3: {"TEK-A": 2, "TEK-B": 1, "TEK-C": 1},  # A-23 (with a window), B, C
    4: {"TEK-A": 3, "TEK-B": 2, "TEK-C": 2},  # no gap
    5: {"TEK-A": 2},  # A-23; B and C not assessed
    7: {"TEK-A": 1, "TEK-B": 1, "TEK-C": 2},  # A closed by a later assessment (below)
}
PEOPLE = range(8)


class Who(NamedTuple):
    nip: str
    unit: str
    jabatan: str
    active: bool = True


class Assessed(NamedTuple):
    nip: str
    competency: str
    level: int
    date: dt.date
    row: int


def base_assessments() -> list[tuple[int, str, int, dt.date]]:
    rows = [(i, c, level, OLD) for i, levels in ASSESSED.items() for c, level in levels.items()]
    rows.append((7, "TEK-A", 3, NEW))  # the latest assessment counts
    return rows


# --- files ------------------------------------------------------------------------------------
def write_mappings(
    folder: Path, *, cap: int | None = None, cohort_courses: tuple[str, ...] = ()
) -> Path:
    return write_tables(
        folder,
        unit=UNIT,
        jabatan=JABATAN,
        competencies=COMPETENCIES,
        standard=STANDARD,
        cap=cap,
        catalogue=[
            [
                c,
                low,
                high,
                name,
                20,
                window[0].isoformat() if window else "",
                window[1].isoformat() if window else "",
                capacity,
                "cohort" if name in cohort_courses else "manual",
            ]
            for c, low, high, name, capacity, window in CATALOGUE
        ],
    )


class Site:
    """One bridge with its mappings, roster and courses, ready for ``sync --assessments``."""

    def __init__(
        self,
        bridge: Bridge,
        *,
        cap: int | None = None,
        cohort_courses: tuple[str, ...] = (),
        settings: str = "",
        missing: tuple[str, ...] = (),
    ) -> None:
        self.bridge = bridge
        self.mappings = write_mappings(
            bridge.tmp_path / "mappings", cap=cap, cohort_courses=cohort_courses
        )
        bridge.configure(f'[enrol]\nmappings_dir = "{self.mappings}"\n{settings}')
        self.roster = bridge.roster([person(i, unit=UNIT, jabatan=JABATAN) for i in PEOPLE])
        self.assessment_rows = base_assessments()
        self.assessments = write_assessments(
            bridge.tmp_path / "assessments.csv", self.assessment_rows
        )
        # The catalogue courses an administrator has made (``missing``: not yet).
        self.course_ids: dict[str, int] = bridge.create_courses(
            [c for c in COURSES if c not in missing]
        )

    def link_audience(self, course: str) -> None:
        """Link the course's audience cohort (made by the first sync) to it by cohort sync, as
        the administrator does when the sync asks to."""
        world = self.bridge.emulator.world
        cohort = world.cohort_idnumber_index[f"course:{course}"]
        link_cohort_to_course(self.bridge.emulator, self.course_ids[course], cohort)

    def enrol_by_hand(self, who: int, course: str) -> tuple[str, str]:
        """Enrol person ``who`` in ``course`` as an administrator would, with the admin token."""
        self.bridge.admin_call(
            "enrol_manual_enrol_users",
            {
                "enrolments[0][roleid]": str(STUDENT),
                "enrolments[0][userid]": str(self.bridge.user(nip(who))["id"]),
                "enrolments[0][courseid]": str(self.course_ids[course]),
            },
        )
        return nip(who), course

    def reassess(self, *extra: tuple[int, str, int, dt.date]) -> None:
        """Add assessments to the file the next sync reads."""
        self.assessment_rows = [*self.assessment_rows, *extra]
        write_assessments(self.assessments, self.assessment_rows)

    def sync(self, *options: str) -> Run:
        return self.bridge.sync(self.roster, "--assessments", str(self.assessments), *options)

    def plan(self, enrolments: tuple[CurrentEnrolment, ...] = ()) -> GapPlan:
        """The engine's choices, computed here from the same inputs."""
        people = [Who(nip(i), UNIT, JABATAN) for i in PEOPLE]
        assessed = [
            Assessed(nip(i), c, level, day, row)
            for row, (i, c, level, day) in enumerate(self.assessment_rows, start=2)
        ]
        used: dict[str, int] = {}
        for e in enrolments:
            used[e.nip] = used.get(e.nip, 0) + 1
        return plan_gaps(
            people,
            assessed,
            {UNIT: load_mappings(self.mappings, UNIT)},
            as_of=dt.date.today(),
            enrolments=enrolments,
            used_this_year=used,
        )

    # --- what the emulated Moodle holds -------------------------------------------------------
    def user_ids(self) -> dict[int, str]:
        return {self.bridge.user(nip(i))["id"]: nip(i) for i in PEOPLE}

    def enrolments(self, kind: str = "manual") -> dict[tuple[str, str], dict[str, Any]]:
        """(NIP, course shortname) -> the user_enrolments row, for ``kind`` instances."""
        world = self.bridge.emulator.world
        owned = self.user_ids()
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for name, course_id in self.course_ids.items():
            for instance in world.courses[course_id]["enrolment_instances"]:
                if instance["enrol"] != kind:
                    continue
                for (enrolid, userid), row in world.enrolments.items():
                    if enrolid == instance["id"] and userid in owned:
                        out[(owned[userid], name)] = row
        return out

    def active(self) -> set[tuple[str, str]]:
        return {key for key, row in self.enrolments().items() if row["status"] == 0}

    def gap_cohorts(self, prefix: str = "gap:") -> dict[str, set[str]]:
        """Gap (or audience) cohort idnumber -> NIPs of its owned members."""
        world = self.bridge.emulator.world
        owned = self.user_ids()
        return {
            idnumber: {owned[u] for u in world.cohort_member_sets.get(cid, set()) if u in owned}
            for idnumber, cid in world.cohort_idnumber_index.items()
            if str(idnumber).startswith(prefix)
        }

    def manual_items(self, run: Run) -> list[dict[str, str]]:
        """Every item of every enrol_manual_enrol_users request of ``run``."""
        items: dict[tuple[int, str], dict[str, str]] = {}
        for n, pairs in enumerate(run.fields("enrol_manual_enrol_users")):
            for key, value in pairs:
                index, _, name = key.removeprefix("enrolments[").partition("][")
                items.setdefault((n, index), {})[name.rstrip("]")] = value
        return list(items.values())


#: The cases that run twice: removals unproven (held), and proven by the probe (made).
PROBED = pytest.mark.parametrize("probed", [False, True], ids=["unproven", "probed"])


def synced(bridge: Bridge, *, probed: bool) -> Site:
    """A site after its first sync; its cohort sync proven to suspend when ``probed``."""
    site = Site(bridge, settings=bridge.prove_removals() if probed else "")
    ok(site.sync())
    return site


def manual_choices(plan: GapPlan) -> set[tuple[str, str]]:
    return {
        (e.nip, e.offer.course_shortname)
        for e in plan.desired_enrolments()
        if e.offer.mode == "manual"
    }


def midnight(day: dt.date, *, end: bool = False) -> int:
    return int(dt.datetime.combine(day, dt.time.max if end else dt.time.min, ZONE).timestamp())


def not_the_probes(bridge: Bridge, run: Run) -> list[str]:
    """The writes of ``run`` other than the probe's (the token's own user joining and leaving
    the cohort ``bridge:probe``), which runs before the guard can judge removals."""
    world = bridge.emulator.world
    probe = {str(world.cohort_idnumber_index.get("bridge:probe"))}
    me = {str(world.username_index["bridge"])}
    found = []
    for name, pairs in run.requests:
        if not is_write(name):
            continue
        cohorts = {v for k, v in pairs if k.endswith(("[cohortid]", "[cohorttype][value]"))}
        users = {v for k, v in pairs if k.endswith(("[userid]", "[usertype][value]"))}
        if not name.startswith("core_cohort_") or (cohorts, users) != (probe, me):
            found.append(f"{name} {pairs}")
    return found


def read_changes(path: Path) -> list[dict[str, str]]:
    """The rows of a per-person change file."""
    with path.open(encoding="utf-8-sig", newline="") as source:
        return list(csv.DictReader(source))


def ok(run: Run) -> dict[str, Any]:
    assert run.exit_code == 0, run.output
    assert run.data is not None
    assert run.data["record_errors"] == [], run.data["record_errors"]
    return run.data


# --- 1. the first sync enrols exactly the engine's choices -----------------------------------
def test_first_sync_enrols_exactly_the_engines_choices_as_students(bridge: Bridge) -> None:
    site = Site(bridge)
    plan = site.plan()
    wanted = manual_choices(plan)
    # The scenario is what it claims: capacity, windows, the latest assessment, no gap.
    assert (nip(0), "E2E-A-12") in wanted
    assert (nip(1), "E2E-A-12") in wanted
    assert (nip(2), "E2E-A-12") not in wanted  # waiting list: the course is full
    assert (nip(3), "E2E-A-23") in wanted
    assert not any(n in (nip(4), nip(6)) for n, _ in wanted)
    assert (nip(7), "E2E-A-12") not in wanted
    assert (nip(7), "E2E-B-12") in wanted

    run = site.sync()

    data = ok(run)
    assert data["applied"].get("enrol_enrol") == len(wanted)
    rows = site.enrolments()
    assert set(rows) == wanted
    assert bridge.emulator.world.roles[STUDENT]["shortname"] == "student"
    for (who, course), row in rows.items():
        assert row["status"] == 0, (who, course)
        assert row["roleids"] == [STUDENT], (who, course)
        if course == "E2E-A-23":
            assert (row["timestart"], row["timeend"]) == (
                midnight(WINDOW[0]),
                midnight(WINDOW[1], end=True),
            )
        else:
            assert (row["timestart"], row["timeend"]) == (0, 0), (who, course)
    # The gap cohorts gap:<competency>:<starting level> hold the people the plan enrols.
    expected_cohorts = {
        f"gap:{competency}:{level}": set(nips)
        for (competency, level), nips in plan.gap_cohorts().items()
    }
    assert expected_cohorts["gap:TEK-A:1"] == {nip(0), nip(1)}
    assert site.gap_cohorts() == expected_cohorts


# --- 2. a second sync writes nothing ---------------------------------------------------------
def test_a_second_sync_with_the_same_files_writes_nothing(bridge: Bridge) -> None:
    site = Site(bridge)
    ok(site.sync())
    before = {key: dict(row) for key, row in site.enrolments().items()}

    again = site.sync()

    data = ok(again)
    assert again.writes == []
    assert not any(data["planned"].values()), data["planned"]
    assert data["applied"] == {}
    assert {key: dict(row) for key, row in site.enrolments().items()} == before


# --- 3. a closed gap suspends, never unenrols -------------------------------------------------
@PROBED
def test_a_new_assessment_that_closes_a_gap_suspends_the_enrolment(
    bridge: Bridge, probed: bool
) -> None:
    site = synced(bridge, probed=probed)
    assert (nip(1), "E2E-A-12") in site.active()
    user_id = bridge.user(nip(1))["id"]
    site.reassess((1, "TEK-A", 3, dt.date(2024, 9, 1)))  # later, and at the required level
    if probed:
        # Once removals are made, the guard counts the membership removal as an unenrolment
        # too: two for 8 people is over its limit of one, and the run stops before any write
        # (the probe's own join and leave of bridge:probe aside).
        stopped = site.sync()

        assert stopped.exit_code == 3, stopped.output
        assert stopped.data is not None
        assert stopped.data["guard"] == (
            "the plan would suspend or remove 2 enrolments and memberships, more than the "
            "limit of 1 (use --allow-suspend N to accept)"
        )
        planned = stopped.data["planned"]
        assert (planned["enrol_suspend"], planned["cohort_remove"]) == (1, 1)
        assert stopped.data["applied"] == {}
        assert not_the_probes(bridge, stopped) == []
        assert (nip(1), "E2E-A-12") in site.active()

    run = site.sync(*(["--allow-suspend", "2"] if probed else []))

    data = ok(run)
    assert data["planned"]["enrol_suspend"] == 1
    assert run.count("enrol_manual_unenrol_users") == 0
    rows = site.enrolments()
    assert (nip(1), "E2E-A-12") in rows  # the row is still there...
    assert rows[(nip(1), "E2E-A-12")]["status"] == 1  # ...suspended
    assert rows[(nip(1), "E2E-A-12")]["roleids"] == [STUDENT]
    suspended = {key for key, row in rows.items() if row["status"] == 1}
    assert suspended == {(nip(1), "E2E-A-12")}
    # Leaving the gap cohort could unenrol (cohort sync): made only once the probe proved it
    # suspends instead, else held.
    assert data["planned"]["cohort_remove_held"] == (0 if probed else 1)
    assert data["planned"]["cohort_remove"] == (1 if probed else 0)
    world = bridge.emulator.world
    gap_members = world.cohort_member_sets[world.cohort_idnumber_index["gap:TEK-A:1"]]
    assert (user_id in gap_members) is not probed
    assert run.count("enrol_manual_enrol_users") >= 1  # the suspension went through it
    assert any(item.get("suspend") == "1" for item in site.manual_items(run))


@PROBED
def test_stop_gaps_goes_through_the_guard_and_suspends_without_deleting(
    bridge: Bridge, probed: bool
) -> None:
    site = synced(bridge, probed=probed)
    ours = site.active()
    gaps = site.gap_cohorts()
    memberships = sum(len(nips) for nips in gaps.values())
    assert len(ours) >= 2, ours
    assert memberships >= 2, gaps
    # An enrolment an administrator made is not the bridge's: stopping gaps leaves it alone.
    hand_key = site.enrol_by_hand(4, "E2E-B-12")
    hand = dict(site.enrolments()[hand_key])
    # Stopping gap management is a run without assessments; it cannot come with them.
    both = site.sync("--stop-gaps")
    assert both.exit_code == 2, both.output
    assert "--stop-gaps" in both.output
    removals = memberships if probed else 0
    limit = len(ours) + removals

    stopped = bridge.sync(site.roster, "--stop-gaps")

    assert stopped.exit_code == 3, stopped.output
    assert stopped.data is not None
    assert stopped.data["guard"].startswith(
        f"the plan would suspend or remove {limit} enrolments and memberships, more than the "
        "limit of"
    ), stopped.data["guard"]
    assert stopped.data["planned"]["enrol_suspend"] == len(ours)
    assert stopped.data["applied"] == {}
    assert not_the_probes(bridge, stopped) == []
    assert site.active() == ours | {hand_key}
    assert site.gap_cohorts() == gaps

    run = bridge.sync(site.roster, "--stop-gaps", "--allow-suspend", str(limit))

    data = ok(run)
    assert data["applied"]["enrol_suspend"] == len(ours)
    assert run.count("enrol_manual_unenrol_users") == 0
    rows = site.enrolments()
    assert set(rows) == ours | {hand_key}  # every enrolment is still there...
    assert {key for key, row in rows.items() if row["status"] == 1} == ours  # ...ours suspended
    assert all(rows[key]["roleids"] == [STUDENT] for key in ours)
    assert rows[hand_key] == hand
    # Leaving the gap cohorts could unenrol (cohort sync): made only once the probe proved it
    # suspends, else held and reported.
    assert data["planned"]["cohort_remove"] == removals
    assert data["planned"]["cohort_remove_held"] == memberships - removals
    assert site.gap_cohorts() == ({c: set() for c in gaps} if probed else gaps)
    assert all(bridge.user(nip(i))["suspended"] == 0 for i in PEOPLE)
    changes = read_changes(Path(data["report_file"]).with_suffix(".csv"))
    suspended = {(c["nip"], c["target"]) for c in changes if c["action"] == "enrol_suspend"}
    assert suspended == ours
    assert {c["reason"] for c in changes if c["action"] == "enrol_suspend"} == {
        f"gap management stopped for {UNIT}"
    }


def test_the_seat_a_closed_gap_frees_is_given_in_the_same_run(bridge: Bridge) -> None:
    """The run that suspends an enrolment no longer wanted plans as if its seat were free:
    otherwise the next run with the very same files still has something to write."""
    site = Site(bridge)
    ok(site.sync())
    assert (nip(2), "E2E-A-12") not in site.active()  # waiting: A-12 (2 seats) is full
    site.reassess((1, "TEK-A", 3, dt.date(2024, 9, 1)))  # person 1 no longer needs A-12

    ok(site.sync())

    assert site.enrolments()[(nip(1), "E2E-A-12")]["status"] == 1
    # The seat person 1 released goes to the first of the waiting list in the same run...
    assert (nip(2), "E2E-A-12") in site.active()
    # ...so the next run, with the same files, writes nothing.
    again = site.sync()
    ok(again)
    assert again.writes == [], again.data and again.data["planned"]
    assert site.enrolments()[(nip(1), "E2E-A-12")]["status"] == 1


# --- 4. a cohort-synced course goes through its audience cohort only -------------------------
def test_a_cohort_synced_course_is_handled_through_the_cohort_only(bridge: Bridge) -> None:
    site = Site(bridge, cohort_courses=("E2E-C-12",))
    course_id = site.course_ids["E2E-C-12"]
    audience = "course:E2E-C-12"
    takers = {
        e.nip for e in site.plan().desired_enrolments() if e.offer.course_shortname == "E2E-C-12"
    }
    assert takers == {nip(0), nip(3)}

    run = site.sync()

    # The course's audience cohort is made; nobody joins it before it can be linked.
    data = ok(run)
    assert site.gap_cohorts("course:") == {audience: set()}
    assert site.enrolments("cohort") == {}
    items = site.manual_items(run)
    assert items, "the manual courses were enrolled"
    assert [i for i in items if i.get("courseid") == str(course_id)] == []
    site.link_audience("E2E-C-12")

    joined = site.sync()

    data = ok(joined)
    assert not any(e["action"] == "cohort_sync" for e in data["record_errors"])
    assert [i for i in site.manual_items(joined) if i.get("courseid") == str(course_id)] == []
    assert {n for n, course in site.enrolments("manual") if course == "E2E-C-12"} == set()
    through_cohort = site.enrolments("cohort")
    assert {n for n, course in through_cohort if course == "E2E-C-12"} == takers
    assert all(row["status"] == 0 for row in through_cohort.values())
    assert site.gap_cohorts("course:")[audience] == takers
    assert site.gap_cohorts()["gap:TEK-C:1"] == takers
    # The other courses are still enrolled manually, exactly as the engine chose.
    assert set(site.enrolments("manual")) == manual_choices(site.plan())

    again = site.sync()
    ok(again)
    assert again.writes == []


def test_an_unlinked_cohort_course_is_reported_as_a_cohort_sync_error(bridge: Bridge) -> None:
    site = Site(bridge, cohort_courses=("E2E-C-12",))
    # The first sync makes the audience cohort and names the link to make; the administrator
    # does not make it.
    assert ok(site.sync())["awaiting_link"] == {"course:E2E-C-12": "E2E-C-12"}

    run = site.sync()

    assert run.exit_code == 1, run.output
    assert run.data is not None
    errors = [e for e in run.data["record_errors"] if e["action"] == "cohort_sync"]
    assert len(errors) == 1, run.data["record_errors"]
    assert "E2E-C-12" in errors[0]["reason"]
    assert "link cohort course:E2E-C-12 to course E2E-C-12" in errors[0]["reason"]
    items = site.manual_items(run)
    assert [i for i in items if i.get("courseid") == str(site.course_ids["E2E-C-12"])] == []


def test_a_cohort_course_moodle_lacks_is_named_missing_never_linked_nor_enrolled(
    bridge: Bridge,
) -> None:
    site = Site(bridge, cohort_courses=("E2E-C-12",), missing=("E2E-C-12",))
    chosen = site.plan().desired_enrolments()
    takers = sorted(e.nip for e in chosen if e.offer.course_shortname == "E2E-C-12")
    assert takers, "the scenario chooses the missing course for someone"
    args = ("--plugin", "generic", "--roster", str(site.roster),
            "--assessments", str(site.assessments))  # fmt: skip

    plan = bridge.invoke("plan", *args)

    assert plan.exit_code == 0, plan.output
    assert "Moodle lacks (nobody is enrolled in them until they exist): E2E-C-12" in plan.output
    assert "Link cohort" not in plan.output
    assert bridge.invoke("plan", *args, "--json").data["awaiting_link"] == {}
    for _night in range(2):
        run = site.sync()
        data = ok(run)  # no cohort-sync error blaming a link
        assert data["missing_courses"] == ["E2E-C-12"]
        assert "course:E2E-C-12" not in site.gap_cohorts("course:")
    with Store.open(bridge.state_dir / "state.sqlite3") as store:
        assert [k for k in store.enrolments() if k[1] == "E2E-C-12"] == []
    explained = bridge.invoke("explain", takers[0], *args)
    assert "E2E-C-12 (missing in Moodle: create it or fix the catalogue)" in explained.output
    assert "already enrolled in E2E-C-12" not in explained.output
    # The administrator creates the course: the next sync, on the same files, asks for the link.
    site.course_ids.update(bridge.create_courses(["E2E-C-12"]))
    after = ok(site.sync())
    assert after["missing_courses"] == []
    assert after["planned"]["cohort_create"] == 1
    assert "course:E2E-C-12" in site.gap_cohorts("course:")


# --- 5. an enrolment made by hand is left alone ----------------------------------------------
def test_an_enrolment_made_by_hand_is_never_touched(bridge: Bridge) -> None:
    site = Site(bridge)
    ok(site.sync())
    hand_user = bridge.user(nip(4))["id"]  # no gap at all: the engine wants nothing for them
    course_id = site.course_ids["E2E-B-12"]
    hand_key = site.enrol_by_hand(4, "E2E-B-12")
    before = dict(site.enrolments()[hand_key])
    assert before["status"] == 0
    assert hand_key not in manual_choices(site.plan())
    # Person 0's gap in TEK-B closes: the bridge suspends its own enrolment in the same course
    # in this run, and must still leave the one made by hand alone.
    site.reassess((0, "TEK-B", 2, dt.date(2024, 9, 1)))

    run = site.sync()

    data = ok(run)
    assert data["planned"]["enrol_suspend"] == 1
    assert site.enrolments()[(nip(0), "E2E-B-12")]["status"] == 1
    assert site.enrolments()[hand_key] == before
    for item in site.manual_items(run):
        assert (item.get("userid"), item.get("courseid")) != (str(hand_user), str(course_id))
    for extra in ((), ("--reconcile",)):
        again = site.sync(*extra)
        ok(again)
        assert again.writes == []
        assert site.enrolments()[hand_key] == before


# --- 6. the annual cap -----------------------------------------------------------------------
def test_the_annual_cap_holds_on_the_first_and_the_next_sync(bridge: Bridge) -> None:
    site = Site(bridge, cap=1)
    plan = site.plan()
    wanted = manual_choices(plan)
    assert {c for n, c in wanted if n == nip(0)} == {"E2E-A-12"}  # three gaps, one seat
    assert {c for n, c in wanted if n == nip(3)} == {"E2E-A-23"}  # three gaps, priority wins

    ok(site.sync())

    first = site.active()
    assert first == wanted
    per_person: dict[str, int] = {}
    for n, _ in first:
        per_person[n] = per_person.get(n, 0) + 1
    assert max(per_person.values()) == 1
    assert {c for n, c in first if n == nip(0)} == {"E2E-A-12"}

    again = site.sync()

    ok(again)
    assert {c for n, c in site.active() if n == nip(0)} == {"E2E-A-12"}
    # The other gaps are not served this year: also not for person 3, whose course's window
    # opened in an earlier year (the enrolment was still started this year).
    assert site.active() == first, sorted(site.active() - first)
    assert again.writes == []
    # The engine agrees once it knows what the first sync started this year.
    today = dt.date.today()
    current = tuple(CurrentEnrolment(n, c, today) for n, c in first)
    assert manual_choices(site.plan(current)) == first
