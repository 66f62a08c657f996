"""The runner: budgeted batches, bisection, site faults, the breaker and the pipeline."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from moodle_bridge.sync.desired import fingerprint
from moodle_bridge.sync.executor import SCOUT
from moodle_bridge.sync.journal import resume_pending
from moodle_bridge.sync.plan import Plan
from tests.unit.sync_kit import Site, create, enrolment, make_site, member, nip

COURSE = "TEK-KEU-1"
CREATE = "core_user_create_users"
ADD = "core_cohort_add_cohort_members"


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path)


def _plan(people: range, *, bad: set[int] = frozenset(), enrol: bool = False) -> Plan:
    """Accounts for ``people`` with their unit cohort (and an enrolment); ``bad`` ones carry a
    username Moodle refuses."""
    return Plan(
        creates=[create(i, username="NOT VALID") if i in bad else create(i) for i in people],
        member_adds=[member(i) for i in people],
        enrolments=[enrolment(i) for i in people] if enrol else [],
    )


def _apply(site: Site, plan: Plan, workers: int = 1):
    return site.executor(workers).apply(plan, site.cohorts(), site.courses(COURSE))


def _owners(site: Site, people: range) -> Counter[str]:
    return Counter(u["idnumber"] for u in site.emulator.world.users.values()
                   if u["idnumber"] in {nip(i) for i in people})


# --- budget and bisection ---------------------------------------------------------------------
def test_batches_are_the_fewest_the_request_budget_allows(tmp_path: Path):
    site = make_site(tmp_path, field_budget=300)
    result = _apply(site, _plan(range(70)))
    creates = site.transport.calls(CREATE)
    # 11 fields a person (6 plain, 2 custom fields of 2, createpassword) in 297: 27 a batch,
    # after the small first batch that goes alone while its read-back proves the site.
    assert [len(form) - 3 for form in creates] == [SCOUT * 11, 27 * 11, 27 * 11, 6 * 11]
    assert all(len(form) <= 300 for _, form in site.transport.served)
    assert result.applied == {"create": 70, "cohort_add": 70}
    assert result.failures == []
    assert result.stopped is None


def test_one_refused_record_in_200_is_found_by_bisection(site: Site):
    result = _apply(site, _plan(range(200), bad={137}))
    assert len(site.transport.calls(CREATE)) <= 1 + 2 * math.ceil(math.log2(200))
    assert [(f.action, f.nip, f.errorcode) for f in result.failures] == [
        ("create", nip(137), "invalidparameter")]
    assert result.applied == {"create": 199, "cohort_add": 199}
    assert set(_owners(site, range(200))) == {nip(i) for i in range(200)} - {nip(137)}
    states = Counter(b.state for b in site.store.batches(site.run_id))
    assert states["failed"] >= 8
    assert "pending" not in states


def test_items_of_a_person_without_account_are_reported_once(site: Site):
    plan = _plan(range(3), bad={1}, enrol=True)
    plan.member_adds.append(member(50))  # no account, and none being created
    result = _apply(site, plan)
    assert sorted((f.action, f.nip) for f in result.failures) == [
        ("cohort_add", nip(50)), ("create", nip(1))]
    assert next(f.reason for f in result.failures if f.nip == nip(50)) == (
        "the person has no account")


# --- faults of the site ------------------------------------------------------------------------
def _fault_on(function: str, call: int, when: str = "after"):
    """A fault on the ``call``-th request of ``function`` (counting from 1)."""
    seen = Counter[str]()

    def fault(name: str, _form: dict[str, str]) -> str | None:
        seen[name] += 1
        return when if name == function and seen[name] == call else None

    return fault


def test_a_fault_after_moodle_committed_a_create_is_settled_by_reading_back(site: Site):
    site.transport.fault = _fault_on(CREATE, 1, "after")
    plan = _plan(range(40))
    result = _apply(site, plan)
    # The first batch (the scout) was read back, neither bisected nor resent; then the rest.
    assert [len(form) for form in site.transport.calls(CREATE)] == [3 + SCOUT * 11, 3 + 30 * 11]
    assert result.failures == []
    assert result.stopped is None
    assert result.applied == {"create": 40, "cohort_add": 40}
    assert max(_owners(site, range(40)).values()) == 1
    accounts = site.store.accounts()
    # The bridge's own, with the hash of what it sent: the next plan has nothing to write.
    assert all(accounts[nip(i)].applied_hash == fingerprint(c.record)
               for i, c in enumerate(plan.creates))
    states = [b.state for b in site.store.batches(site.run_id) if b.action == "create_users"]
    assert states == ["resolved", "confirmed"]


def test_a_fault_before_the_commit_sends_the_batch_again(site: Site):
    site.transport.fault = _fault_on(CREATE, 1, "before")
    result = _apply(site, _plan(range(40)))
    assert result.applied == {"create": 40, "cohort_add": 40}
    assert len(site.transport.calls(CREATE)) == 2  # the first try never reached Moodle
    assert max(_owners(site, range(40)).values()) == 1


@pytest.mark.parametrize("call", [2, 3])
def test_a_fault_in_the_middle_of_a_bisection_restarts_it_from_that_batch(site: Site, call: int):
    """The 2nd create is the good first half (committed), the 3rd the half with the refused
    record (refused): either way the site's fault hid the answer, and neither is bisected
    because of it; what is still missing is sent again, and bisected from there."""
    site.transport.fault = _fault_on(CREATE, call, "after")
    result = _apply(site, _plan(range(200), bad={137}))
    assert [f.nip for f in result.failures] == [nip(137)]
    owners = _owners(site, range(200))
    assert set(owners) == {nip(i) for i in range(200)} - {nip(137)}
    assert max(owners.values()) == 1
    assert result.applied["create"] == 199
    assert len(site.transport.calls(CREATE)) <= 2 + 2 * math.ceil(math.log2(200))


def test_a_site_that_stays_away_stops_the_run_and_leaves_the_batch_open(site: Site):
    creates = Counter[str]()

    def away_after_first_create(name: str, _form: dict[str, str]) -> str | None:
        creates[name] += name == CREATE
        if name == CREATE and creates[name] == 1:
            return "after"  # committed, then the site went away for good
        return "before" if creates[CREATE] else None

    site.transport.fault = away_after_first_create
    result = _apply(site, _plan(range(40)))
    assert result.stopped is not None
    assert result.stopped.startswith("site answered with an HTML page")
    assert "http=503" in result.stopped
    assert "\n" not in result.stopped
    assert [b.action for b in site.store.pending_batches()] == ["create_users"]
    assert result.failures == []  # a fault of the site is nobody's record

    site.transport.fault = lambda _name, _form: None
    resumed = resume_pending(site.store, site.client, site.store.begin_run("sync", None))
    assert resumed == {"create_users": 1}
    assert len(site.store.accounts()) == SCOUT  # the batch Moodle committed; the rest is replanned


def test_an_idempotent_write_the_site_never_answered_is_left_to_the_next_plan(site: Site):
    site.transport.fault = lambda name, _form: "before" if name == ADD else None
    result = _apply(site, _plan(range(5)))
    assert result.stopped is not None
    assert result.applied == {"create": 5}
    adds = [b for b in site.store.batches(site.run_id) if b.action == "cohort_add"]
    assert [(b.state, b.result) for b in adds] == [("resolved", {"replanned": True})]


def test_moodle_answering_for_fewer_records_than_sent_stops_and_keeps_what_it_made(site: Site):
    site.emulator.world.settings["php_max_input_vars"] = 200  # the budget says 4990
    result = _apply(site, _plan(range(40)))
    assert result.stopped is not None
    assert "max_input_vars" in result.stopped
    made = _owners(site, range(40))
    assert 0 < len(made) < 40
    assert set(site.store.accounts()) == set(made)
    assert site.store.pending_batches() == []


# --- the breaker --------------------------------------------------------------------------------
def test_the_breaker_stops_a_run_whose_records_mostly_fail(site: Site):
    result = _apply(site, _plan(range(80), bad=set(range(80))))
    assert result.stopped is not None
    assert "circuit breaker" in result.stopped
    assert len(result.failures) < 80
    assert result.applied == {}


# --- the pipeline -------------------------------------------------------------------------------
def test_no_membership_or_enrolment_is_sent_before_its_account_exists(tmp_path: Path):
    site = make_site(tmp_path, field_budget=400)
    world = site.emulator.world
    early: list[str] = []

    def check(name: str, form: dict[str, str]) -> None:
        key = {ADD: "][usertype][value]", "enrol_manual_enrol_users": "][userid]"}.get(name)
        ids = {int(v) for k, v in form.items() if key and k.endswith(key)}
        early.extend(name for uid in ids if uid not in world.users)

    site.transport.fault = check
    result = _apply(site, _plan(range(120), enrol=True), workers=3)
    assert early == []
    assert result.applied == {"create": 120, "cohort_add": 120, "enrol_enrol": 120}
    order = [name for name, _ in site.transport.served]
    # Pipelined: memberships of the first batches went out before the last batch was created.
    assert order.index(ADD) < len(order) - 1 - order[::-1].index(CREATE)


def test_the_first_create_batch_is_read_back_before_any_other_is_sent(tmp_path: Path):
    site = make_site(tmp_path, field_budget=300)
    _apply(site, _plan(range(100)), workers=4)
    order = [(name, form.get("field")) for name, form in site.transport.served]
    readback = order.index(("core_user_get_users_by_field", "id"))
    assert [name for name, _ in order[:readback]] == [CREATE]
    assert [len(form) - 3 for form in site.transport.calls(CREATE)] == [
        SCOUT * 11, 27 * 11, 27 * 11, 27 * 11, 9 * 11]


def test_cohorts_are_created_first_and_their_members_added(site: Site):
    plan = _plan(range(3))
    plan.cohorts_to_create = {"gap:NEW": "Gap baru"}
    plan.member_adds += [member(i, "gap:NEW") for i in range(3)]
    result = _apply(site, plan, workers=2)
    assert site.transport.served[0][0] == "core_cohort_create_cohorts"
    assert result.applied == {"cohort_create": 1, "create": 3, "cohort_add": 6}
    assert site.store.cohort_members("gap:NEW") == {"gap:NEW": {nip(i) for i in range(3)}}


def test_the_change_log_has_a_line_per_person_change(site: Site):
    _apply(site, _plan(range(2), enrol=True))
    lines = Counter(c.action for c in site.store.run_changes(site.run_id))
    assert lines == {"create": 2, "cohort_add": 2, "enrol_enrol": 2}


def test_an_account_the_bridges_own_journal_sent_never_stalls_a_run(site: Site):
    """A state written by an older version that took a committed create batch for refused:
    the account is recorded as the bridge's own, and its memberships follow."""
    stage = site.create_stage()
    stage.send(site.client, [create(1)])
    payload = stage.payload([create(1)]).to_json()
    old = site.store.journal_batch(site.run_id, "create_users", payload)
    site.store.fail_batch(old, "dbconnectionfailed")
    result = _apply(site, _plan(range(1, 3)))
    assert result.failures == []
    assert result.applied == {"create": 2, "cohort_add": 2}
    assert max(_owners(site, range(1, 3)).values()) == 1
    assert site.store.accounts()[nip(1)].how == "created"
