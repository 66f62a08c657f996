"""The planner: pure diff of desired state against what the bridge owns, and its guards."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from moodle_bridge.sync.desired import DesiredAccount, DesiredState
from moodle_bridge.sync.planner import Guards, KnownAccount, plan


def record(nip: str, email: str | None = None, unit: str = "PENDIS") -> dict[str, str]:
    return {"username": nip, "idnumber": nip, "firstname": "Nur", "lastname": "Aini",
            "email": email or f"{nip}@kemenag.example", "auth": "manual",
            "profile_field_unit": unit}


def nip(i: int) -> str:
    return f"19800101200501{1 + i % 2}{i:03d}"


def desired(*accounts: DesiredAccount) -> DesiredState:
    state = DesiredState()
    for account in accounts:
        state.accounts[account.nip] = account
        for cohort in account.cohorts:
            state.cohort_names[cohort] = cohort
    return state


def want(i: int, *, active: bool = True, unit: str = "PENDIS", email: str | None = None,
         cohorts: tuple[str, ...] = ("unit:PENDIS",)) -> DesiredAccount:
    return DesiredAccount(nip(i), unit, record(nip(i), email, unit), active, frozenset(cohorts))


def known(i: int, *, suspended: bool = False, unit: str = "PENDIS",
          email: str | None = None) -> KnownAccount:
    return KnownAccount(nip(i), 1000 + i, unit, record(nip(i), email, unit), suspended)


def test_new_people_are_created_and_join_their_cohort():
    result = plan(desired(want(1), want(2)), {}, {}, scope={"PENDIS"})
    assert [c.nip for c in result.creates] == [nip(1), nip(2)]
    assert result.cohorts_to_create == {"unit:PENDIS": "unit:PENDIS"}
    assert {m.nip for m in result.member_adds} == {nip(1), nip(2)}


def test_a_second_plan_from_the_applied_state_is_empty():
    result = plan(desired(want(1)), {nip(1): known(1)}, {"unit:PENDIS": {nip(1)}},
                  scope={"PENDIS"}, known_cohorts={"unit:PENDIS"})
    assert result.is_empty
    assert result.guard is None


def test_only_changed_fields_are_sent():
    result = plan(desired(want(1, email="baru@kemenag.example")), {nip(1): known(1)},
                  {"unit:PENDIS": {nip(1)}}, scope={"PENDIS"}, known_cohorts={"unit:PENDIS"})
    [change] = result.changes
    assert change.kind == "update"
    assert change.changes == {"email": "baru@kemenag.example"}


def test_people_gone_from_the_roster_are_suspended_not_deleted():
    result = plan(desired(*(want(i) for i in range(40))),
                  {nip(i): known(i) for i in range(41)}, {}, scope={"PENDIS"})
    [change] = result.changes
    assert (change.nip, change.kind, change.suspended) == (nip(40), "suspend", True)


def test_inactive_people_are_suspended_and_never_created():
    result = plan(desired(want(1, active=False), want(2, active=False)),
                  {nip(1): known(1)}, {}, scope={"PENDIS"}, guards=Guards(allow_suspend=5))
    assert not result.creates
    assert [(c.nip, c.kind) for c in result.changes] == [(nip(1), "suspend")]


def test_a_returning_person_is_unsuspended_with_the_same_account():
    result = plan(desired(want(1)), {nip(1): known(1, suspended=True)},
                  {"unit:PENDIS": {nip(1)}}, scope={"PENDIS"}, known_cohorts={"unit:PENDIS"})
    [change] = result.changes
    assert (change.kind, change.moodle_id, change.suspended) == ("unsuspend", 1001, False)


def test_accounts_of_units_outside_the_roster_are_left_alone():
    result = plan(desired(want(1)), {nip(1): known(1), nip(2): known(2, unit="SETJEN")},
                  {"unit:PENDIS": {nip(1)}}, scope={"PENDIS"}, known_cohorts={"unit:PENDIS"})
    assert result.is_empty


def test_an_empty_roster_trips_the_guard():
    result = plan(desired(), {nip(i): known(i) for i in range(3)}, {}, scope={"PENDIS"})
    assert result.guard is not None
    assert "empty" in result.guard.reason
    assert len(result.guard.suspensions) == 3


def test_a_halved_roster_trips_the_guard_unless_allowed():
    knowns = {nip(i): known(i) for i in range(100)}
    half = desired(*(want(i) for i in range(50)))
    tripped = plan(half, knowns, {}, scope={"PENDIS"})
    assert tripped.guard is not None
    assert "--allow-suspend" in tripped.guard.reason
    allowed = plan(half, knowns, {}, scope={"PENDIS"}, guards=Guards(allow_suspend=50))
    assert allowed.guard is None
    assert allowed.count("suspend") == 50


def test_a_vanished_unit_trips_the_guard():
    knowns = {nip(1): known(1), nip(2): known(2, unit="SETJEN")}
    result = plan(desired(want(1)), knowns, {"unit:PENDIS": {nip(1)}},
                  scope={"PENDIS", "SETJEN"}, units_seen={"PENDIS", "SETJEN"},
                  known_cohorts={"unit:PENDIS"})
    assert result.guard is not None
    assert "SETJEN" in result.guard.reason


def test_a_person_who_moved_unit_changes_cohort():
    moved = want(1, unit="SETJEN", cohorts=("unit:SETJEN",))
    result = plan(desired(moved), {nip(1): known(1)}, {"unit:PENDIS": {nip(1)}},
                  scope={"PENDIS", "SETJEN"}, known_cohorts={"unit:PENDIS"})
    assert [(m.cohort, m.nip) for m in result.member_adds] == [("unit:SETJEN", nip(1))]
    assert [(m.cohort, m.nip) for m in result.member_removes] == [("unit:PENDIS", nip(1))]


people = st.dictionaries(st.integers(0, 60), st.tuples(st.booleans(), st.booleans()), max_size=30)


@given(people, people)
def test_applying_a_plan_reaches_the_target(before: dict[int, tuple[bool, bool]],
                                            after: dict[int, tuple[bool, bool]]):
    knowns = {nip(i): known(i, suspended=not active) for i, (active, _) in before.items()}
    target = desired(*(want(i, active=active, email=f"e{i}{flag}@kemenag.example")
                       for i, (active, flag) in after.items()))
    first = plan(target, knowns, {}, scope={"PENDIS"}, guards=Guards(allow_suspend=10**6))
    # Apply the plan to the bridge's knowledge the way the executor records it.
    applied = dict(knowns)
    for create in first.creates:
        applied[create.nip] = KnownAccount(create.nip, 0, "PENDIS", create.record, False)
    for change in first.changes:
        applied[change.nip] = KnownAccount(change.nip, 0, "PENDIS", change.record,
                                           change.suspended)
    members: dict[str, set[str]] = {}
    for m in first.member_adds:
        members.setdefault(m.cohort, set()).add(m.nip)
    second = plan(target, applied, members, scope={"PENDIS"},
                  known_cohorts=set(first.cohorts_to_create),
                  guards=Guards(allow_suspend=10**6))
    assert second.is_empty
