"""The gap engine on small hand-made cases, and its properties under Hypothesis."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moodle_bridge.gap_engine import (
    CompletedCourse,
    CurrentEnrolment,
    Decision,
    GapPlan,
    Status,
    plan_gaps,
)
from moodle_bridge.mappings import (
    NATIONAL,
    CompetencyDefinition,
    CourseOffer,
    Mappings,
    PositionRule,
)
from moodle_bridge.roster.assessment import Assessment, LatestAssessments
from moodle_bridge.roster.person import Person

AS_OF = dt.date(2026, 5, 1)
D1 = dt.date(2025, 1, 10)
D2 = dt.date(2025, 6, 10)


class P(NamedTuple):
    nip: str
    jabatan: str = "Guru"
    unit: str = "TEST"
    active: bool = True


class A(NamedTuple):
    nip: str
    competency: str
    level: int
    date: dt.date = D1
    row: int = 2


COMPETENCIES = (
    CompetencyDefinition("MAN-A", "Integritas", "manajerial", 1),
    CompetencyDefinition("TEK-B", "Teknis B", "teknis", 2),
    CompetencyDefinition("TEK-C", "Teknis C", "teknis", 2),
    CompetencyDefinition("SOS-D", "Perekat", "sosial_kultural", 3),
    CompetencyDefinition("TEK-E", "Teknis E", "teknis", 9),
)


def offer(
    comp: str,
    low: int,
    name: str | None = None,
    *,
    high: int | None = None,
    capacity: int | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    scope: str = NATIONAL,
    row: int = 0,
) -> CourseOffer:
    return CourseOffer(
        comp,
        low,
        high or low + 1,
        name or f"{comp}-{low}",
        20,
        start,
        end,
        capacity,
        "manual",
        scope,
        f"catalogue/{scope}.csv",
        row,
    )


def mappings(
    catalogue: Sequence[CourseOffer] = (),
    standards: dict[str, dict[str, int]] | None = None,
    *,
    cap: int = 4,
    unit: str = "TEST",
    rules: Sequence[PositionRule] = (),
) -> Mappings:
    if standards is None:
        standards = {"guru": {"MAN-A": 3, "TEK-B": 3, "TEK-C": 2, "SOS-D": 2}}
    return Mappings(
        unit=unit,
        competencies=MappingProxyType({c.code: c for c in COMPETENCIES}),
        standards=MappingProxyType(standards),
        position_rules=tuple(rules),
        catalogue=tuple(catalogue),
        annual_cap=cap,
    )


def every_step(capacity: int | None = None) -> list[CourseOffer]:
    return [offer(c.code, lvl, capacity=capacity) for c in COMPETENCIES for lvl in range(1, 5)]


def decision(plan: GapPlan, nip: str, comp: str) -> Decision:
    (found,) = [d for d in plan.people[nip].decisions if d.competency == comp]
    return found


def statuses(plan: GapPlan, nip: str) -> dict[str, Status]:
    return {d.competency: d.status for d in plan.people[nip].decisions}


NIP1, NIP2, NIP3, NIP4 = (f"19800101200501100{i}" for i in range(1, 5))


# --- levels ---------------------------------------------------------------------------------------
def test_a_gap_gets_the_course_that_starts_at_the_level() -> None:
    plan = plan_gaps([P(NIP1)], [A(NIP1, "TEK-B", 1)], mappings(every_step()), as_of=AS_OF)
    d = decision(plan, NIP1, "TEK-B")
    assert d.status is Status.CHOSEN
    assert d.offer is not None
    assert (d.offer.course_shortname, d.level, d.required, d.gap) == ("TEK-B-1", 1, 3, 2)
    assert (
        d.reason() == "chosen: TEK-B-1 closes the gap 2 in TEK-B (level 1, required 3) from 1 to 2"
    )


def test_the_latest_assessment_counts_and_a_tie_goes_to_the_later_row() -> None:
    rows = [
        A(NIP1, "TEK-B", 3, D2, 5),
        A(NIP1, "TEK-B", 1, D1, 9),  # older, though a later row
        A(NIP1, "TEK-C", 2, D2, 4),
        A(NIP1, "TEK-C", 1, D2, 7),  # same day, later row: wins
        A(NIP1, "MAN-A", 1, D1, 3),
        A(NIP1, "MAN-A", 3, D1, 3),  # same day and row: the higher level, in any order
    ]
    for order in (rows, rows[::-1]):
        plan = plan_gaps([P(NIP1)], order, mappings(every_step()), as_of=AS_OF)
        assert decision(plan, NIP1, "TEK-B").level == 3
        assert decision(plan, NIP1, "TEK-C").level == 1
        assert decision(plan, NIP1, "MAN-A").level == 3


def test_pydantic_people_and_assessments_fit() -> None:
    person = Person(
        nip=NIP1, display_name="Ahmad", firstname="Ahmad", lastname="Ahmad", unit="TEST",
        jabatan="Guru",
    )  # fmt: skip
    assessment = Assessment(nip=NIP1, competency="TEK-B", level=2, date=D1, row=2)
    plan = plan_gaps([person], [assessment], mappings(every_step()), as_of=AS_OF)
    assert decision(plan, NIP1, "TEK-B").status is Status.CHOSEN


# --- missing data ---------------------------------------------------------------------------------
def test_not_assessed_is_reported_not_treated_as_level_zero() -> None:
    plan = plan_gaps([P(NIP1)], [A(NIP1, "TEK-B", 1)], mappings(every_step()), as_of=AS_OF)
    d = decision(plan, NIP1, "MAN-A")
    assert (d.status, d.level, d.gap, d.offer) == (Status.NOT_ASSESSED, None, None, None)
    assert plan.not_assessed == {NIP1: ("MAN-A", "SOS-D", "TEK-C")}
    assert "not assessed in MAN-A" in d.reason()
    assert plan.stats["MAN-A"].not_assessed == 1


def test_a_position_without_standard_is_reported() -> None:
    people = [P(NIP1, "Analis Kebijakan"), P(NIP2, "analis  kebijakan"), P(NIP3, "")]
    plan = plan_gaps(people, [], mappings(every_step()), as_of=AS_OF)
    assert [(m.jabatan, m.nips) for m in plan.without_standard] == [
        ("", (NIP3,)),
        ("Analis Kebijakan", (NIP1, NIP2)),
    ]
    assert plan.people[NIP1].decisions == ()
    assert plan.explain(NIP1).state == "no_standard"
    assert "no standard" in plan.why(NIP1, "TEK-B-1")


def test_the_managerial_default_of_the_position_level_applies() -> None:
    rule = PositionRule("", "Kepala Seksi *", "Pengawas", "position_levels.csv", 2)
    m = mappings(every_step(), {"kepala seksi umum": {"TEK-B": 2}}, rules=[rule])
    plan = plan_gaps([P(NIP1, "Kepala Seksi Umum")], [A(NIP1, "MAN-A", 1)], m, as_of=AS_OF)
    d = decision(plan, NIP1, "MAN-A")
    assert (d.required, d.origin, d.status) == (2, "default", Status.CHOSEN)
    assert "managerial default" in d.reason()
    assert plan.people[NIP1].position_level == "Pengawas"


def test_no_course_from_this_level() -> None:
    m = mappings([offer("TEK-B", 1)])
    plan = plan_gaps([P(NIP1)], [A(NIP1, "TEK-B", 2)], m, as_of=AS_OF)
    d = decision(plan, NIP1, "TEK-B")
    assert d.status is Status.NO_COURSE
    assert d.reason() == "no course in the catalogue takes TEK-B from level 2 (gap 1 in TEK-B " \
        "(level 2, required 3))"  # fmt: skip


def test_no_gap_needs_nothing() -> None:
    plan = plan_gaps([P(NIP1)], [A(NIP1, "TEK-C", 4)], mappings(every_step()), as_of=AS_OF)
    d = decision(plan, NIP1, "TEK-C")
    assert (d.status, d.gap, d.offer) == (Status.NO_GAP, -2, None)
    assert plan.stats["TEK-C"].met == 1


def test_closed_windows_are_not_offered() -> None:
    closed = offer("TEK-B", 1, end=dt.date(2026, 4, 30))
    plan = plan_gaps([P(NIP1)], [A(NIP1, "TEK-B", 1)], mappings([closed]), as_of=AS_OF)
    d = decision(plan, NIP1, "TEK-B")
    assert (d.status, d.offer) == (Status.WINDOW_CLOSED, closed)


def test_inactive_people_and_strangers() -> None:
    plan = plan_gaps(
        [P(NIP1, active=False), P(NIP2)],
        [A(NIP1, "TEK-B", 1), A(NIP3, "TEK-B", 1), A(NIP2, "TEK-Z", 1), A(NIP2, "TEK-Z", 2)],
        mappings(every_step()),
        as_of=AS_OF,
    )
    assert plan.inactive == (NIP1,)
    assert NIP1 not in plan.people
    assert plan.explain(NIP1).state == "inactive"
    assert plan.explain(NIP4).state == "unknown"
    assert plan.unknown_people == 1
    assert plan.unknown_competencies == {"TEK-Z": 2}


# --- completions and enrolments -------------------------------------------------------------------
def test_a_completion_after_the_assessment_raises_the_level_to_the_next_step() -> None:
    done = [CompletedCourse(NIP1, "TEK-B-1", dt.datetime(2025, 3, 1, 10, 0))]
    plan = plan_gaps(
        [P(NIP1)], [A(NIP1, "TEK-B", 1, D1)], mappings(every_step()), as_of=AS_OF,
        completions=done,
    )  # fmt: skip
    d = decision(plan, NIP1, "TEK-B")
    assert (d.assessed, d.level, d.raised_by, d.status) == (1, 2, "TEK-B-1", Status.CHOSEN)
    assert d.offer is not None
    assert d.offer.course_shortname == "TEK-B-2"
    assert "assessed 1, raised by completing TEK-B-1" in d.reason()


def test_a_completion_before_the_assessment_does_not_raise_and_is_not_repeated() -> None:
    done = [CompletedCourse(NIP1, "TEK-B-1", dt.date(2024, 12, 1))]
    plan = plan_gaps(
        [P(NIP1)], [A(NIP1, "TEK-B", 1, D1)], mappings(every_step()), as_of=AS_OF,
        completions=done,
    )  # fmt: skip
    d = decision(plan, NIP1, "TEK-B")
    assert (d.level, d.status) == (1, Status.ALREADY_COMPLETED)
    assert "already completed" in d.reason()


def test_a_completed_window_falls_back_to_another_course() -> None:
    other = offer("TEK-B", 1, "TEK-B-1-ALT", scope="TEST")
    done = [CompletedCourse(NIP1, "TEK-B-1-ALT", dt.date(2024, 12, 1))]
    m = mappings([other, *every_step()])
    plan = plan_gaps([P(NIP1)], [A(NIP1, "TEK-B", 1)], m, as_of=AS_OF, completions=done)
    chosen = decision(plan, NIP1, "TEK-B").offer
    assert chosen is not None
    assert chosen.course_shortname == "TEK-B-1"


def test_a_current_enrolment_is_kept_takes_a_seat_and_is_not_chosen_again() -> None:
    rest = [o for o in every_step() if o.course_shortname != "TEK-B-1"]
    m = mappings([offer("TEK-B", 1, capacity=2), *rest])
    plan = plan_gaps(
        [P(NIP1), P(NIP2), P(NIP3)],
        [A(n, "TEK-B", 1) for n in (NIP1, NIP2, NIP3)],
        m,
        as_of=AS_OF,
        enrolments=[CurrentEnrolment(NIP2, "TEK-B-1", dt.date(2026, 2, 1))],
        used_this_year={NIP2: 1},
    )
    assert decision(plan, NIP2, "TEK-B").status is Status.ENROLLED
    assert "kept" in decision(plan, NIP2, "TEK-B").reason()
    assert decision(plan, NIP1, "TEK-B").status is Status.CHOSEN
    assert decision(plan, NIP3, "TEK-B").status is Status.WAITING
    (load,) = [c for c in plan.courses if c.offer.course_shortname == "TEK-B-1"]
    assert (load.existing, load.chosen, load.free, load.waiting) == (1, 1, 0, [NIP3])
    assert plan.people[NIP2].cap_used == 1
    wanted = {(e.nip, e.offer.course_shortname, e.new) for e in plan.desired_enrolments()}
    assert {(NIP1, "TEK-B-1", True), (NIP2, "TEK-B-1", False)} <= wanted
    assert (NIP3, "TEK-B-1", True) not in wanted


def test_an_enrolment_whose_gap_closed_is_not_desired() -> None:
    plan = plan_gaps(
        [P(NIP1)],
        [A(NIP1, "TEK-B", 3)],
        mappings(every_step()),
        as_of=AS_OF,
        enrolments=[CurrentEnrolment(NIP1, "TEK-B-1")],
    )
    assert plan.desired_enrolments() == []


# --- the cap --------------------------------------------------------------------------------------
def test_the_cap_counts_what_the_person_already_has_and_serves_big_gaps_first() -> None:
    m = mappings(
        every_step(),
        {"guru": {"MAN-A": 2, "TEK-B": 4, "TEK-C": 2, "SOS-D": 4, "TEK-E": 4}},
        cap=3,
    )
    levels = {"MAN-A": 1, "TEK-B": 1, "TEK-C": 1, "SOS-D": 1, "TEK-E": 2}
    plan = plan_gaps(
        [P(NIP1)],
        [A(NIP1, c, lvl) for c, lvl in levels.items()],
        m,
        as_of=AS_OF,
        used_this_year={NIP1: 1},
    )
    # Gaps: TEK-B 3 (prio 2), SOS-D 3 (prio 3), TEK-E 2, MAN-A 1 (prio 1), TEK-C 1 (prio 2).
    assert statuses(plan, NIP1) == {
        "TEK-B": Status.CHOSEN,
        "SOS-D": Status.CHOSEN,
        "TEK-E": Status.CAP_REACHED,
        "MAN-A": Status.CAP_REACHED,
        "TEK-C": Status.CAP_REACHED,
    }
    assert plan.people[NIP1].cap_used == 3
    assert "annual cap" in decision(plan, NIP1, "MAN-A").reason()
    lines = plan.explain(NIP1).lines()
    assert "trainings this year: 1 before this plan, 2 chosen now, cap 3" in lines


def test_equal_gaps_follow_priority_then_code() -> None:
    m = mappings(every_step(), {"guru": {"MAN-A": 2, "TEK-B": 2, "TEK-C": 2}}, cap=2)
    plan = plan_gaps([P(NIP1)], [A(NIP1, c, 1) for c in ("MAN-A", "TEK-B", "TEK-C")], m,
                     as_of=AS_OF)  # fmt: skip
    assert statuses(plan, NIP1) == {
        "MAN-A": Status.CHOSEN,
        "TEK-B": Status.CHOSEN,
        "TEK-C": Status.CAP_REACHED,
    }


def test_the_unit_cap_and_an_override() -> None:
    m = mappings(every_step(), cap=1)
    people, rows = [P(NIP1)], [A(NIP1, c, 1) for c in ("MAN-A", "TEK-B", "TEK-C", "SOS-D")]
    assert len(plan_gaps(people, rows, m, as_of=AS_OF).people[NIP1].chosen) == 1
    no_cap = replace(m, annual_cap=0)
    assert len(plan_gaps(people, rows, no_cap, as_of=AS_OF).people[NIP1].chosen) == 0
    over = plan_gaps(people, rows, m, as_of=AS_OF, used_this_year={NIP1: 7})
    assert over.people[NIP1].chosen == ()


# --- capacity and the waiting list ----------------------------------------------------------------
def test_capacity_goes_to_larger_gaps_then_nip_and_the_rest_wait() -> None:
    m = mappings([offer("TEK-B", 1, capacity=2)], {"guru": {"TEK-B": 3}, "staf": {"TEK-B": 2}})
    people = [P(NIP4, "Staf"), P(NIP3, "Guru"), P(NIP2, "Staf"), P(NIP1, "Staf")]
    plan = plan_gaps(people, [A(p.nip, "TEK-B", 1) for p in people], m, as_of=AS_OF)
    assert decision(plan, NIP3, "TEK-B").status is Status.CHOSEN  # gap 2
    assert decision(plan, NIP1, "TEK-B").status is Status.CHOSEN  # gap 1, smallest NIP
    waiting = [decision(plan, n, "TEK-B") for n in (NIP2, NIP4)]
    assert [(d.status, d.waiting_position) for d in waiting] == [
        (Status.WAITING, 1),
        (Status.WAITING, 2),
    ]
    assert "waiting list position 2 for TEK-B-1" in waiting[1].reason()
    (load,) = plan.courses
    assert (load.capacity, load.projected, load.waiting) == (2, 2, [NIP2, NIP4])


def test_windows_fill_in_order_and_the_unit_row_comes_first() -> None:
    own = offer("TEK-B", 1, "OWN", capacity=1, scope="TEST")
    early = offer("TEK-B", 1, "NAT", capacity=1, start=dt.date(2026, 5, 1),
                  end=dt.date(2026, 5, 31))  # fmt: skip
    late = offer("TEK-B", 1, "NAT", capacity=1, start=dt.date(2026, 8, 1),
                 end=dt.date(2026, 8, 31))  # fmt: skip
    m = mappings([late, early, own], {"guru": {"TEK-B": 2}})
    people = [P(n) for n in (NIP1, NIP2, NIP3, NIP4)]
    plan = plan_gaps(people, [A(p.nip, "TEK-B", 1) for p in people], m, as_of=AS_OF)
    got = [decision(plan, p.nip, "TEK-B") for p in people]
    assert [(d.status, d.offer) for d in got] == [
        (Status.CHOSEN, own),
        (Status.CHOSEN, early),
        (Status.CHOSEN, late),
        (Status.WAITING, own),
    ]
    assert "window 2026-05-01..2026-05-31" in got[1].reason()


def test_a_waiting_gap_does_not_use_the_cap() -> None:
    m = mappings([offer("TEK-B", 1, capacity=0), offer("TEK-C", 1)], cap=1)
    plan = plan_gaps([P(NIP1)], [A(NIP1, "TEK-B", 1), A(NIP1, "TEK-C", 1)], m, as_of=AS_OF)
    assert decision(plan, NIP1, "TEK-B").status is Status.WAITING
    assert decision(plan, NIP1, "TEK-C").status is Status.CHOSEN


def test_national_windows_are_shared_between_units() -> None:
    national = offer("TEK-B", 1, capacity=1)
    units = {
        "AAA": mappings([national], {"guru": {"TEK-B": 2}}, unit="AAA"),
        "BBB": mappings([national], {"guru": {"TEK-B": 3}}, unit="BBB"),
    }
    people = [P(NIP1, unit="AAA"), P(NIP2, unit="BBB"), P(NIP3, unit="ZZZ")]
    plan = plan_gaps(people, [A(p.nip, "TEK-B", 1) for p in people], units, as_of=AS_OF)
    assert decision(plan, NIP2, "TEK-B").status is Status.CHOSEN
    assert decision(plan, NIP1, "TEK-B").status is Status.WAITING
    assert len(plan.courses) == 1
    assert plan.unmapped_units == {"ZZZ": (NIP3,)}
    assert plan.explain(NIP3).state == "unit_without_mappings"


# --- explanations, statistics ---------------------------------------------------------------------
def test_why_in_and_why_not() -> None:
    m = mappings(every_step())
    rows = [A(NIP1, "TEK-B", 1), A(NIP1, "TEK-C", 3), A(NIP1, "MAN-A", 2)]
    plan = plan_gaps([P(NIP1)], rows, m, as_of=AS_OF)
    assert plan.why(NIP1, "TEK-B-1").startswith("chosen: TEK-B-1 closes")
    assert "but the person is at level 1" in plan.why(NIP1, "TEK-B-2")
    assert "no gap in TEK-C" in plan.why(NIP1, "TEK-C-1")
    assert "not assessed in SOS-D" in plan.why(NIP1, "SOS-D-1")
    assert "does not require" in plan.why(NIP1, "TEK-E-1")
    assert "not in the catalogue" in plan.why(NIP1, "NOPE")
    assert plan.why(NIP4, "TEK-B-1") == "not in the roster given to the plan"
    lines = plan.explain(NIP1).lines()
    assert lines[0] == "TEST / Guru"
    assert any(line.startswith("SOS-D: not assessed") for line in lines)


def test_statistics_per_competency_and_level() -> None:
    people = [P(NIP1), P(NIP2), P(NIP3)]
    rows = [A(NIP1, "TEK-B", 1), A(NIP2, "TEK-B", 2), A(NIP3, "TEK-B", 3)]
    plan = plan_gaps(people, rows, mappings(every_step()), as_of=AS_OF)
    stats = plan.stats["TEK-B"]
    assert (stats.required, stats.met, stats.not_assessed) == (3, 1, 0)
    assert stats.gaps_by_level == {1: 1, 2: 1}
    assert stats.gaps_by_size == {1: 1, 2: 1}
    assert stats.outcomes == {Status.CHOSEN: 2, Status.NO_GAP: 1}
    assert plan.stats["TEK-E"].required == 0
    assert plan.summary()["chosen"] == 2
    assert plan.gap_cohorts()[("TEK-B", 1)] == (NIP1,)


# --- determinism and the properties ---------------------------------------------------------------
def fingerprint(plan: GapPlan) -> tuple[object, ...]:
    return (
        tuple(plan.decisions()),
        tuple((c.offer, c.existing, c.chosen, tuple(c.waiting)) for c in plan.courses),
        tuple(sorted((k, tuple(sorted(v.outcomes.items()))) for k, v in plan.stats.items())),
        tuple(plan.desired_enrolments()),
    )


def shuffled(items: Iterable[object], seed: int) -> list[object]:
    out = list(items)
    random.Random(seed).shuffle(out)
    return out


def test_the_same_inputs_in_another_order_give_the_same_plan() -> None:
    m = mappings(every_step(capacity=3), cap=2)
    rng = random.Random(5)
    people = [P(f"1980010120050110{i:02d}", rng.choice(["Guru", "Staf"])) for i in range(40)]
    rows = [
        A(p.nip, c.code, rng.randint(1, 4), rng.choice([D1, D2]), rng.randint(2, 9))
        for p in people
        for c in COMPETENCIES
        for _ in range(rng.randint(0, 2))
    ]
    done = [CompletedCourse(p.nip, "TEK-B-1", D2) for p in people[:5]]
    base = plan_gaps(people, rows, m, as_of=AS_OF, completions=done)
    for seed in range(3):
        again = plan_gaps(
            shuffled(people, seed), shuffled(rows, seed), m, as_of=AS_OF,  # type: ignore[arg-type]
            completions=shuffled(done, seed),  # type: ignore[arg-type]
        )  # fmt: skip
        assert fingerprint(again) == fingerprint(base)


_NIPS = [f"1980010120050110{i:02d}" for i in range(12)]
_CODES = [c.code for c in COMPETENCIES]
_DAYS = [dt.date(2025, 1, 1), dt.date(2025, 6, 1), dt.date(2026, 1, 1)]


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, object]:
    catalogue: list[CourseOffer] = []
    for code in _CODES:
        for low in range(1, 5):
            if draw(st.booleans()):
                continue
            windows = draw(st.integers(1, 2))
            high = draw(st.integers(low + 1, 5))
            for w in range(windows):
                scope = draw(st.sampled_from([NATIONAL, "TEST"]))
                closed = draw(st.integers(0, 5)) == 0
                start = dt.date(2026, 1 + 6 * w, 1)
                end = dt.date(2026, 4, 1) if closed else dt.date(2026, 6 + 6 * w, 28)
                catalogue.append(
                    offer(code, low, f"{code}-{low}-{scope}", high=high, scope=scope,
                          capacity=draw(st.none() | st.integers(0, 2)), start=start, end=end)
                )  # fmt: skip
    jabatan = {
        "guru": {c: draw(st.integers(1, 5)) for c in draw(st.sets(st.sampled_from(_CODES)))},
        "staf": {c: draw(st.integers(1, 5)) for c in draw(st.sets(st.sampled_from(_CODES)))},
    }
    m = mappings(catalogue, {k: v for k, v in jabatan.items() if v}, cap=draw(st.integers(0, 4)))
    nips = draw(st.lists(st.sampled_from(_NIPS), unique=True, max_size=10))
    people = [
        P(n, draw(st.sampled_from(["Guru", "Staf", "Lain"])), active=draw(st.integers(0, 9)) > 0)
        for n in nips
    ]
    rows = [
        A(n, code, draw(st.integers(1, 5)), draw(st.sampled_from(_DAYS)), draw(st.integers(2, 6)))
        for n in nips
        for code in _CODES
        for _ in range(draw(st.integers(0, 2)))
    ]
    # A few more rows for anyone; a row is a file's line number, never below 1.
    rows += draw(st.lists(st.builds(A, st.sampled_from(_NIPS), st.sampled_from(_CODES),
                                    st.integers(1, 5), st.sampled_from(_DAYS),
                                    st.integers(2, 6)), max_size=3))  # fmt: skip
    names = sorted({o.course_shortname for o in catalogue}) or ["NONE"]
    done = draw(
        st.lists(
            st.builds(CompletedCourse, st.sampled_from(nips or _NIPS), st.sampled_from(names),
                      st.sampled_from(_DAYS)),
            max_size=8,
        )
    )  # fmt: skip
    enrolled = draw(
        st.lists(
            st.builds(CurrentEnrolment, st.sampled_from(nips or _NIPS), st.sampled_from(names),
                      st.none() | st.sampled_from(_DAYS)),
            max_size=8,
        )
    )  # fmt: skip
    used = draw(st.dictionaries(st.sampled_from(_NIPS), st.integers(0, 2), max_size=4))
    return {
        "m": m, "people": people, "rows": rows, "done": done, "enrolled": enrolled, "used": used,
    }  # fmt: skip


def _latest_level(rows: list[A], nip: str, comp: str) -> int | None:
    mine = [r for r in rows if r.nip == nip and r.competency == comp]
    return max(mine, key=lambda r: (r.date, r.row, r.level)).level if mine else None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds(), st.integers(0, 2**16))
def test_properties(world: dict[str, object], seed: int) -> None:
    m: Mappings = world["m"]  # type: ignore[assignment]
    people: list[P] = world["people"]  # type: ignore[assignment]
    rows: list[A] = world["rows"]  # type: ignore[assignment]
    done: list[CompletedCourse] = world["done"]  # type: ignore[assignment]
    enrolled: list[CurrentEnrolment] = world["enrolled"]  # type: ignore[assignment]
    used: dict[str, int] = world["used"]  # type: ignore[assignment]
    plan = plan_gaps(
        people, rows, m, as_of=AS_OF, completions=done, enrolments=enrolled, used_this_year=used
    )

    completed = {(c.nip, c.course_shortname) for c in done}
    current = {(e.nip, e.course_shortname) for e in enrolled}
    for nip, person in plan.people.items():
        # No person exceeds the cap (what they had before counts).
        assert len(person.chosen) <= max(0, m.annual_cap - used.get(nip, 0))
        for d in person.decisions:
            assessed = _latest_level(rows, nip, d.competency)
            assert d.assessed == assessed
            if d.status is not Status.CHOSEN:
                continue
            o = d.offer
            assert o is not None
            assert d.level is not None
            # Every choice closes a real gap, starting at the person's effective level.
            assert d.required > d.level
            assert (o.competency, o.from_level) == (d.competency, d.level)
            assert d.level >= (assessed or 0)
            assert not o.is_closed(AS_OF)
            assert (nip, o.course_shortname) not in completed
            assert (nip, o.course_shortname) not in current
    # No course window exceeds its capacity (seats already taken count).
    for load in plan.courses:
        if load.capacity is not None and load.chosen:
            assert load.projected <= load.capacity
    # The plan does not depend on row order.
    again = plan_gaps(
        shuffled(people, seed), shuffled(rows, seed), m, as_of=AS_OF,  # type: ignore[arg-type]
        completions=shuffled(done, seed), enrolments=shuffled(enrolled, seed),  # type: ignore[arg-type]
        used_this_year=dict(shuffled(used.items(), seed)),  # type: ignore[arg-type]
    )  # fmt: skip
    assert fingerprint(again) == fingerprint(plan)


@pytest.mark.parametrize("status", list(Status))
def test_every_status_has_a_reason(status: Status) -> None:
    o = offer("TEK-B", 1)
    level = None if status is Status.NOT_ASSESSED else 1
    d = Decision(NIP1, "TEK-B", 3, level, level, status, o, 1)
    assert d.reason()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_assessments_kept_by_a_reader_plan_the_same_and_stay_as_they_were(
    world: dict[str, object],
) -> None:
    m: Mappings = world["m"]  # type: ignore[assignment]
    people: list[P] = world["people"]  # type: ignore[assignment]
    rows: list[A] = world["rows"]  # type: ignore[assignment]
    done: list[CompletedCourse] = world["done"]  # type: ignore[assignment]
    enrolled: list[CurrentEnrolment] = world["enrolled"]  # type: ignore[assignment]
    latest = LatestAssessments(rows)
    before = LatestAssessments(rows)
    args = {"as_of": AS_OF, "completions": done, "enrolments": enrolled}
    from_rows = plan_gaps(people, rows, m, **args)  # type: ignore[arg-type]
    for _ in range(2):
        kept = plan_gaps(people, latest, m, **args)  # type: ignore[arg-type]
        assert fingerprint(kept) == fingerprint(from_rows)
        assert kept.unknown_people == from_rows.unknown_people
        assert kept.unknown_competencies == from_rows.unknown_competencies
    assert latest == before


def test_open_gaps_are_the_competencies_below_the_standard() -> None:
    rows = [A(NIP1, "TEK-B", 1), A(NIP1, "TEK-C", 3), A(NIP1, "MAN-A", 2)]
    plan = plan_gaps([P(NIP1)], rows, mappings([offer("TEK-B", 1)]), as_of=AS_OF)
    person = plan.people[NIP1]
    # MAN-A has a gap but no course; SOS-D is not assessed: its gap is unknown, not open.
    assert person.open_gaps() == ("MAN-A", "TEK-B")
    assert [d.competency for d in person.gaps] == ["MAN-A", "SOS-D", "TEK-B"]
