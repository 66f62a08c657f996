"""The planner: pure diff of desired state against what the bridge owns, its guards, and the
rules that protect people (ownership, scope, the grace, refused rows, removals)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moodle_bridge.roster.person import Person, RowError
from moodle_bridge.store import EnrolmentRow
from moodle_bridge.sync.desired import Departure, DesiredAccount, DesiredState
from moodle_bridge.sync.gaps import GapInputs, gap_state
from moodle_bridge.sync.plan import Reason
from moodle_bridge.sync.planner import (
    Audience,
    CohortView,
    EnrolmentView,
    Guards,
    KnownAccount,
    KnownEnrolment,
    Rules,
    WantedEnrolment,
    plan,
)
from moodle_bridge.units import discover_units
from tests.unit.test_gap_state import tables

DAY = 86400
NOW = 1_780_000_000
GRACE = 14 * DAY
PENDIS = frozenset({"PENDIS"})


def record(nip: str, email: str | None = None, unit: str = "PENDIS") -> dict[str, str]:
    return {
        "username": nip,
        "idnumber": nip,
        "firstname": "Nur",
        "lastname": "Aini",
        "email": email or f"{nip}@kemenag.example",
        "auth": "manual",
        "profile_field_unit": unit,
    }


def nip(i: int) -> str:
    return f"19800101200501{1 + i % 2}{i:03d}"


def desired(
    *accounts: DesiredAccount,
    date: int = NOW,
    kept: dict[str, RowError] | None = None,
    departed: dict[str, Departure] | None = None,
) -> DesiredState:
    state = DesiredState(roster_date=date, kept=kept or {}, departed=departed or {})
    for account in accounts:
        state.accounts[account.nip] = account
        for cohort in account.cohorts:
            state.cohort_names[cohort] = cohort
    return state


def want(
    i: int,
    *,
    active: bool = True,
    unit: str = "PENDIS",
    email: str | None = None,
    cohorts: tuple[str, ...] | None = None,
    status: str = "AKTIF",
) -> DesiredAccount:
    return DesiredAccount(
        nip(i),
        unit,
        record(nip(i), email, unit),
        active,
        frozenset(cohorts if cohorts is not None else (f"unit:{unit}",)),
        status=status,
    )


def known(
    i: int,
    *,
    suspended: bool = False,
    unit: str = "PENDIS",
    email: str | None = None,
    seen_at: int = 0,
    absent_since: int | None = None,
) -> KnownAccount:
    return KnownAccount(
        nip(i), 1000 + i, unit, record(nip(i), email, unit), suspended, seen_at, absent_since
    )


def rules(
    scope: frozenset[str] = PENDIS,
    *,
    now: int = NOW,
    grace: int = GRACE,
    guards: Guards | None = None,
    explicit: bool = False,
) -> Rules:
    return Rules(scope, now, grace, guards or Guards(), explicit_scope=explicit)


USABLE = CohortView(usable=frozenset({"unit:PENDIS", "unit:SETJEN"}))


def test_new_people_are_created_and_join_their_cohort():
    result = plan(desired(want(1), want(2)), {}, {}, rules())
    assert [c.nip for c in result.creates] == [nip(1), nip(2)]
    assert result.creates[0].seen_at == NOW
    assert result.cohorts_to_create == {"unit:PENDIS": "unit:PENDIS"}
    assert {m.nip for m in result.member_adds} == {nip(1), nip(2)}


def test_a_second_plan_from_the_applied_state_is_empty():
    result = plan(
        desired(want(1)),
        {nip(1): known(1, seen_at=NOW)},
        {"unit:PENDIS": {nip(1)}},
        rules(),
        USABLE,
    )
    assert result.is_empty
    assert result.guard is None
    assert not result.seen
    assert not result.absent_since


def test_only_changed_fields_are_sent_with_their_old_values():
    result = plan(
        desired(want(1, email="baru@kemenag.example")),
        {nip(1): known(1)},
        {"unit:PENDIS": {nip(1)}},
        rules(),
        USABLE,
    )
    [change] = result.changes
    assert change.kind == "update"
    assert change.changes == {"email": "baru@kemenag.example"}
    assert change.before == {"email": f"{nip(1)}@kemenag.example"}
    assert change.reason == Reason.of("changed", fields="email")


def test_inactive_people_are_suspended_at_once_with_their_status_and_never_created():
    result = plan(
        desired(want(1, active=False, status="PENSIUN"), want(2, active=False)),
        {nip(1): known(1)},
        {},
        rules(guards=Guards(allow_suspend=5)),
    )
    assert not result.creates
    [change] = result.changes
    assert (change.nip, change.kind) == (nip(1), "suspend")
    assert change.reason.text() == "status PENSIUN"


def test_a_returning_person_is_unsuspended_with_the_same_account():
    result = plan(
        desired(want(1)),
        {nip(1): known(1, suspended=True)},
        {"unit:PENDIS": {nip(1)}},
        rules(),
        USABLE,
    )
    [change] = result.changes
    assert (change.kind, change.moodle_id, change.suspended) == ("unsuspend", 1001, False)


# --- absent is not gone -------------------------------------------------------------------
def test_an_absent_person_starts_the_grace_and_is_not_suspended():
    result = plan(desired(want(1)), {nip(1): known(1), nip(2): known(2)}, {}, rules(), USABLE)
    assert result.absent_since == {nip(2): NOW}
    [absence] = result.absences
    assert (absence.nip, absence.since, absence.suspend_on) == (nip(2), NOW, NOW + GRACE)
    assert not result.changes


def test_an_absent_person_is_suspended_once_the_grace_has_passed_with_the_date():
    since = NOW - GRACE
    result = plan(
        desired(want(1)),
        {nip(1): known(1), nip(2): known(2, absent_since=since)},
        {},
        rules(),
        USABLE,
    )
    [change] = result.changes
    assert (change.nip, change.kind) == (nip(2), "suspend")
    assert change.reason.code == "absent"
    assert change.reason.get("since") == "2026-05-14"
    assert not result.absent_since  # the countdown is recorded already


def test_a_day_before_the_grace_ends_nobody_is_suspended():
    since = NOW - GRACE + DAY
    result = plan(
        desired(want(1)),
        {nip(1): known(1), nip(2): known(2, absent_since=since)},
        {},
        rules(),
        USABLE,
    )
    assert not result.changes
    assert [a.nip for a in result.absences] == [nip(2)]


def test_listed_again_within_the_grace_cancels_it_even_in_another_unit():
    mover = want(2, unit="SETJEN")
    result = plan(
        desired(mover),
        {nip(2): known(2, absent_since=NOW - DAY)},
        {},
        rules(frozenset({"SETJEN"})),
        USABLE,
    )
    assert result.absent_since == {nip(2): None}
    [change] = result.changes
    assert change.kind == "update"
    assert change.reason == Reason.of("moved", old="PENDIS", new="SETJEN")
    assert change.unit == "SETJEN"


def test_a_zero_grace_suspends_the_absent_at_once():
    result = plan(
        desired(want(1)),
        {nip(1): known(1), nip(2): known(2)},
        {},
        rules(grace=0, guards=Guards(allow_suspend=1)),
        USABLE,
    )
    assert [c.nip for c in result.changes if c.kind == "suspend"] == [nip(2)]


def test_a_person_who_left_this_unit_is_absent_not_inactive():
    departed = {nip(2): Departure(nip(2), "PENDIS", "MUTASI KELUAR")}
    result = plan(
        desired(want(1), departed=departed),
        {nip(1): known(1), nip(2): known(2)},
        {},
        rules(),
        USABLE,
    )
    assert not result.changes
    assert [a.nip for a in result.absences] == [nip(2)]


# --- ownership and scope -------------------------------------------------------------------
def test_accounts_of_units_outside_the_scope_are_left_alone():
    result = plan(
        desired(want(1)),
        {nip(1): known(1, seen_at=NOW), nip(2): known(2, unit="SETJEN")},
        {"unit:PENDIS": {nip(1)}},
        rules(),
        USABLE,
    )
    assert result.is_empty
    assert not result.absences


def test_a_move_synced_by_the_old_unit_first_never_suspends_the_mover():
    # Night 1: PENDIS exports without the mover; BIMAS has not exported yet.
    knowns = {nip(1): known(1, seen_at=NOW - DAY), nip(2): known(2, seen_at=NOW - DAY)}
    old_unit = plan(desired(want(1)), knowns, {"unit:PENDIS": {nip(1), nip(2)}}, rules(), USABLE)
    assert not [c for c in old_unit.changes if c.kind == "suspend"]
    assert old_unit.absent_since == {nip(2): NOW}
    # Night 2: SETJEN lists the mover: moved, cohort changed, never suspended.
    knowns[nip(2)] = known(2, seen_at=NOW - DAY, absent_since=NOW)
    new_unit = plan(
        desired(want(2, unit="SETJEN"), date=NOW + DAY),
        knowns,
        {"unit:PENDIS": {nip(1), nip(2)}},
        rules(frozenset({"SETJEN"}), now=NOW + DAY),
        CohortView(usable=USABLE.usable, removal_safe=True),
    )
    [change] = new_unit.changes
    assert (change.kind, change.unit) == ("update", "SETJEN")
    assert [(m.cohort, m.nip) for m in new_unit.member_adds] == [("unit:SETJEN", nip(2))]
    assert [(m.cohort, m.nip) for m in new_unit.member_removes] == [("unit:PENDIS", nip(2))]
    assert new_unit.absent_since == {nip(2): None}


def test_after_the_move_the_old_units_roster_never_touches_the_mover():
    knowns = {nip(1): known(1, seen_at=NOW), nip(2): known(2, unit="SETJEN", seen_at=NOW)}
    result = plan(
        desired(want(1), date=NOW + DAY),
        knowns,
        {"unit:PENDIS": {nip(1)}},
        rules(now=NOW + DAY),
        USABLE,
    )
    assert result.is_empty
    assert not result.absences


def test_an_older_roster_than_the_row_that_last_listed_someone_changes_nothing():
    knowns = {nip(1): known(1, seen_at=NOW), nip(2): known(2, seen_at=NOW, suspended=True)}
    old = desired(want(1, unit="SETJEN"), want(2), date=NOW - 10 * DAY)
    result = plan(old, knowns, {}, rules(frozenset({"PENDIS", "SETJEN"})), USABLE)
    assert not result.changes
    assert {k.nip for k in result.kept} == {nip(1), nip(2)}
    assert "newer roster" in result.kept[0].why


def test_an_old_roster_is_no_evidence_of_absence():
    knowns = {nip(1): known(1, seen_at=NOW), nip(2): known(2, seen_at=NOW)}
    result = plan(desired(want(1), date=NOW - DAY), knowns, {}, rules(), USABLE)
    assert not result.absences
    assert not result.absent_since


# --- refused rows ---------------------------------------------------------------------------
def test_a_refused_row_keeps_the_person_exactly_as_they_are():
    refusal = RowError(source="r.csv", row=7, column="email", reason="bad email", nip=nip(2))
    knowns = {nip(1): known(1), nip(2): known(2, absent_since=NOW - DAY)}
    members = {"unit:PENDIS": {nip(1), nip(2)}}
    result = plan(
        desired(want(1), kept={nip(2): refusal}),
        knowns,
        members,
        rules(),
        CohortView(usable=USABLE.usable, removal_safe=True),
    )
    assert result.is_empty
    [kept] = result.kept
    assert (kept.nip, kept.row, kept.why) == (nip(2), 7, "bad email")
    assert result.absent_since == {nip(2): None}  # listed: the countdown stops


# --- cohorts ---------------------------------------------------------------------------------
def test_a_foreign_cohort_is_never_joined_nor_created():
    foreign = CohortView(foreign=frozenset({"unit:PENDIS"}))
    result = plan(desired(want(1)), {}, {}, rules(), foreign)
    assert not result.member_adds
    assert not result.cohorts_to_create


def test_removals_are_held_until_the_site_is_proven_to_suspend():
    moved = want(1, unit="SETJEN")
    args = (
        desired(moved),
        {nip(1): known(1)},
        {"unit:PENDIS": {nip(1)}},
        rules(frozenset({"SETJEN"})),
    )
    held = plan(*args, USABLE)
    assert not held.member_removes
    assert [(m.cohort, m.nip) for m in held.held_removals] == [("unit:PENDIS", nip(1))]
    made = plan(*args, CohortView(usable=USABLE.usable, removal_safe=True))
    assert [(m.cohort, m.nip) for m in made.member_removes] == [("unit:PENDIS", nip(1))]


def test_nobody_joins_a_new_audience_cohort_before_it_can_be_linked():
    audience = {"course:PAI-12": Audience("PAI-12", 10, 20, "TEK-PAI", 1)}
    view = CohortView(usable=frozenset({"unit:PENDIS"}), audience=audience)
    result = plan(desired(want(1, cohorts=("unit:PENDIS", "course:PAI-12"))), {}, {}, rules(),
                  view, EnrolmentView({}, {}))
    assert "course:PAI-12" in result.cohorts_to_create
    assert result.awaiting_link == {"course:PAI-12": "PAI-12"}
    assert [m.cohort for m in result.member_adds] == ["unit:PENDIS"]


def test_an_audience_cohort_of_a_course_moodle_lacks_is_neither_joined_nor_awaits_a_link():
    audience = {"course:PAI-12": Audience("PAI-12", 10, 20, "TEK-PAI", 1)}
    for usable in ({"unit:PENDIS"}, {"unit:PENDIS", "course:PAI-12"}):
        view = CohortView(usable=frozenset(usable), audience=audience)
        result = plan(desired(want(1, cohorts=("unit:PENDIS", "course:PAI-12"))), {}, {},
                      rules(), view, EnrolmentView({}, {}, missing_courses=frozenset({"PAI-12"})))
        assert result.cohorts_to_create == {}
        assert result.awaiting_link == {}
        assert [m.cohort for m in result.member_adds] == ["unit:PENDIS"]


def test_an_audience_cohort_only_grows_and_carries_its_course():
    audience = {"course:PAI-12": Audience("PAI-12", 10, 20, "TEK-PAI", 1)}
    view = CohortView(
        usable=frozenset({"unit:PENDIS", "course:PAI-12"}), removal_safe=True, audience=audience
    )
    joined = plan(
        desired(want(1, cohorts=("unit:PENDIS", "course:PAI-12"))),
        {},
        {},
        rules(),
        view,
        EnrolmentView({}, {}),
    )
    add = next(m for m in joined.member_adds if m.cohort == "course:PAI-12")
    assert (add.course, add.timestart, add.timeend) == ("PAI-12", 10, 20)
    assert add.reason.text() == "gap TEK-PAI 1\u21922"
    left = plan(
        desired(want(1)),
        {nip(1): known(1)},
        {"unit:PENDIS": {nip(1)}, "course:PAI-12": {nip(1)}},
        rules(),
        view,
        EnrolmentView({}, {}),
    )
    assert not left.member_removes
    assert not left.held_removals


def test_gap_cohorts_are_untouched_by_a_run_without_assessments():
    members = {"unit:PENDIS": {nip(1)}, "gap:MAN-INTEG:2": {nip(1)}}
    view = CohortView(usable=frozenset(members), removal_safe=True)
    without = plan(desired(want(1)), {nip(1): known(1)}, members, rules(), view)
    assert without.is_empty
    managed = plan(
        desired(want(1)), {nip(1): known(1)}, members, rules(), view, EnrolmentView({}, {})
    )
    assert [(m.cohort, m.reason.code) for m in managed.member_removes] == [
        ("gap:MAN-INTEG:2", "gap_closed")
    ]


# --- enrolments --------------------------------------------------------------------------------
def test_only_the_bridges_manual_enrolments_are_ever_written():
    wanted = {(nip(1), c): WantedEnrolment(nip(1), c) for c in ("A", "B", "C")}
    knowns = {
        (nip(1), "A"): KnownEnrolment(nip(1), "A", True, method="other"),
        (nip(1), "B"): KnownEnrolment(nip(1), "B", True, method="cohort"),
        (nip(1), "C"): KnownEnrolment(nip(1), "C", True, method="manual"),
    }
    result = plan(
        desired(want(1)),
        {nip(1): known(1)},
        {"unit:PENDIS": {nip(1)}},
        rules(),
        USABLE,
        EnrolmentView(wanted, knowns),
    )
    assert [(e.course, e.kind) for e in result.enrolments] == [("C", "reactivate")]


def test_an_unwanted_enrolment_is_suspended_only_when_releasable():
    knowns = {
        (nip(1), "A"): KnownEnrolment(nip(1), "A", False),
        (nip(1), "B"): KnownEnrolment(nip(1), "B", False),
    }
    closed = Reason.of("gap_closed", competency="MAN-INTEG")
    result = plan(
        desired(want(1)),
        {nip(1): known(1)},
        {"unit:PENDIS": {nip(1)}},
        rules(),
        USABLE,
        EnrolmentView({}, knowns, {(nip(1), "A"): closed}),
    )
    [suspension] = result.enrolments
    assert (suspension.course, suspension.kind, suspension.reason) == ("A", "suspend", closed)


def test_enrolments_of_people_the_roster_does_not_list_are_left_alone():
    knowns = {(nip(2), "A"): KnownEnrolment(nip(2), "A", False)}
    result = plan(
        desired(want(1)),
        {nip(1): known(1), nip(2): known(2)},
        {},
        rules(),
        USABLE,
        EnrolmentView({}, knowns, {(nip(2), "A"): Reason("gap_closed")}),
    )
    assert not result.enrolments


# --- guards ----------------------------------------------------------------------------------
def test_an_empty_roster_trips_the_guard():
    result = plan(desired(), {nip(i): known(i) for i in range(3)}, {}, rules())
    assert result.guard is not None
    assert "lists nobody" in result.guard.reason
    # A generic file with no rows names no unit: its scope is empty, and it still stops.
    unscoped = plan(desired(), {nip(i): known(i) for i in range(3)}, {}, rules(frozenset()))
    assert unscoped.guard is not None


def test_a_halved_roster_trips_the_guard_when_the_grace_ends_unless_allowed():
    since = NOW - GRACE
    knowns = {nip(i): known(i, absent_since=since if i >= 50 else None) for i in range(100)}
    half = desired(*(want(i) for i in range(50)))
    tripped = plan(half, knowns, {}, rules(), USABLE)
    assert tripped.guard is not None
    assert "--allow-suspend" in tripped.guard.reason
    allowed = plan(half, knowns, {}, rules(guards=Guards(allow_suspend=50)), USABLE)
    assert allowed.guard is None
    assert allowed.count("suspend") == 50


def test_a_unit_in_an_explicit_scope_that_the_roster_lacks_trips_the_guard():
    knowns = {nip(1): known(1), nip(2): known(2, unit="SETJEN")}
    result = plan(
        desired(want(1)),
        knowns,
        {"unit:PENDIS": {nip(1)}},
        rules(frozenset({"PENDIS", "SETJEN"}), explicit=True),
        USABLE,
    )
    assert result.guard is not None
    assert "SETJEN" in result.guard.reason


# --- properties --------------------------------------------------------------------------------
people = st.dictionaries(st.integers(0, 60), st.tuples(st.booleans(), st.booleans()), max_size=30)


@given(people, people)
def test_applying_a_plan_reaches_the_target(
    before: dict[int, tuple[bool, bool]], after: dict[int, tuple[bool, bool]]
):
    knowns = {nip(i): known(i, suspended=not active) for i, (active, _) in before.items()}
    target = desired(
        *(
            want(i, active=active, email=f"e{i}{flag}@kemenag.example")
            for i, (active, flag) in after.items()
        )
    )
    first = plan(target, knowns, {}, rules(grace=0, guards=Guards(allow_suspend=10**6)))
    # Apply the plan to the bridge's knowledge the way the executor records it.
    applied = dict(knowns)
    for create in first.creates:
        applied[create.nip] = KnownAccount(create.nip, 0, "PENDIS", create.record, False, NOW)
    for change in first.changes:
        applied[change.nip] = KnownAccount(
            change.nip, 0, "PENDIS", change.record, change.suspended, NOW
        )
    members: dict[str, set[str]] = {}
    for m in first.member_adds:
        members.setdefault(m.cohort, set()).add(m.nip)
    second = plan(
        target,
        applied,
        members,
        rules(grace=0, guards=Guards(allow_suspend=10**6)),
        CohortView(usable=frozenset(first.cohorts_to_create) | {"unit:PENDIS"}),
    )
    assert second.is_empty


@given(
    st.dictionaries(st.integers(0, 40), st.sampled_from(["listed", "kept", "absent"]), max_size=30),
    st.integers(0, 30),
)
def test_nobody_listed_as_active_is_ever_suspended(fate: dict[int, str], days_absent: int):
    """Whatever the countdowns, a person whose row in this roster is active (or refused) is
    never suspended, and an absent person only once the whole grace has passed."""
    since = NOW - days_absent * DAY
    knowns = {nip(i): known(i, absent_since=since) for i in fate}
    rows = [want(i) for i, f in fate.items() if f == "listed"]
    kept = {
        nip(i): RowError(source="r", row=i, column="email", reason="x", nip=nip(i))
        for i, f in fate.items()
        if f == "kept"
    }
    result = plan(
        desired(*rows, kept=kept), knowns, {}, rules(guards=Guards(allow_suspend=99)), USABLE
    )
    suspended = {c.nip for c in result.changes if c.kind == "suspend"}
    assert not suspended & ({r.nip for r in rows} | set(kept))
    if suspended:
        assert days_absent >= 14


@pytest.mark.parametrize(
    "standard",
    ["Penyuluh,TEK-B,2\n", "Penyuluh,TEK-A,1\nPenyuluh,TEK-B,2\n"],
    ids=["competency-not-required", "no-gap-at-the-new-position"],
)
def test_a_mover_keeps_the_enrolment_in_progress(tmp_path: Path, standard: str):
    """A person enrolled in A-12 for their PENDIS position moves to SETJEN with a new position:
    the gap engine no longer wants A-12 (the new standard does not ask for TEK-A, or asks only
    for the level they have), but their gap in TEK-A is not closed: the course in progress
    stays active."""
    folder = tables(tmp_path / "mappings")
    (folder / "competencies.csv").write_text("code,name,kind,priority\nTEK-A,A,teknis,1\n"
                                             "TEK-B,B,teknis,2\n")  # fmt: skip
    (folder / "standards" / "SETJEN.csv").write_text(f"jabatan,competency,level\n{standard}")
    with (folder / "catalogue" / "national.csv").open("a") as catalogue:
        catalogue.write("TEK-B,1,2,B-12,20,,,,manual\n")
    assessments = tmp_path / "assessments.csv"
    assessments.write_text(
        f"nip,kompetensi,level,tanggal\n{nip(1)},TEK-A,1,2026-01-10\n{nip(1)},TEK-B,1,2026-01-10\n"
    )
    inputs = GapInputs(assessments, folder, dt.date.today())
    generic = discover_units().require("generic")
    before = Person(nip=nip(1), display_name="Nur Aini", firstname="Nur", lastname="Aini",
                    unit="PENDIS", jabatan="Guru")  # fmt: skip
    (taken,) = gap_state([before], generic, inputs, {}).wanted.values()
    assert taken.course == "A-12"
    rows = {(nip(1), "A-12"): EnrolmentRow(nip(1), "A-12", False, taken.timestart, taken.timeend)}
    moved = replace(before, unit="SETJEN", jabatan="Penyuluh")

    gap = gap_state([moved], generic, inputs, rows)

    assert (nip(1), "A-12") not in gap.wanted  # the plan changed its mind...
    assert gap.releasable == {}  # ...which is no reason to lock the learner out
    enrolments = EnrolmentView(
        gap.wanted,
        {key: KnownEnrolment(r.nip, r.course, r.suspended, r.timestart, r.timeend)
         for key, r in rows.items()},
        gap.releasable,
    )  # fmt: skip
    result = plan(
        desired(want(1, unit="SETJEN")),
        {nip(1): known(1, seen_at=NOW - DAY)},
        {"unit:PENDIS": {nip(1)}},
        rules(frozenset({"SETJEN"})),
        USABLE,
        enrolments,
    )
    [change] = result.changes
    assert (change.kind, change.unit) == ("update", "SETJEN")
    assert change.reason == Reason.of("moved", old="PENDIS", new="SETJEN")
    assert [(e.course, e.kind) for e in result.enrolments] == [("B-12", "enrol")]
    assert result.guard is None
