"""The journal: typed payloads (and the older formats), recover() per action, and resume."""

from __future__ import annotations

from pathlib import Path

import pytest

from moodle_bridge.moodle import cohorts as moodle_cohorts
from moodle_bridge.moodle import users as moodle_users
from moodle_bridge.store import Batch, NewAccount
from moodle_bridge.sync.desired import fingerprint
from moodle_bridge.sync.journal import (
    Action,
    CohortsPayload,
    CreatePayload,
    EnrolPayload,
    MembersPayload,
    UpdatePayload,
    read_payload,
    recover,
    resume_pending,
    unanswered_enrolments,
)
from tests.unit.sync_kit import Site, create, make_site, nip


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path)


def _batch(site: Site, action: Action, payload: object) -> Batch:
    batch = site.store.batch(site.store.journal_batch(site.run_id, action, payload))
    assert batch is not None
    return batch


def _create_in_moodle(site: Site, *people: int) -> dict[str, int]:
    stage = site.create_stage()
    made = stage.send(site.client, [create(i) for i in people])
    return {nip(i): user.id for i, user in zip(people, made, strict=True)}


# --- payloads -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "payload"),
    [
        (Action.CREATE_COHORTS, CohortsPayload(["gap:A", "unit:X"])),
        (Action.CREATE_USERS, CreatePayload({"1": "u1"}, {"1": "PENDIS"}, {"1": "h"}, {"1": "N"},
                                            {"1": 7})),
        (Action.UPDATE_USERS, UpdatePayload(["1", "2"])),
        (Action.COHORT_ADD, MembersPayload([("unit:X", "1")])),
        (Action.COHORT_REMOVE, MembersPayload([("gap:A", "2")])),
        (Action.ENROL, EnrolPayload([("1", "TEK-KEU-1", "suspend")])),
    ],
)
def test_each_payload_reads_back_from_the_journal(site: Site, action: Action, payload: object):
    batch = _batch(site, action, payload.to_json())
    assert batch.action == action.value
    assert read_payload(action, batch.payload) == payload


def test_payloads_of_the_older_journal_formats_are_read():
    old_create = {"usernames": {"1": "u1"}, "units": {"1": "PENDIS"}}
    assert read_payload(Action.CREATE_USERS, old_create) == CreatePayload({"1": "u1"},
                                                                          {"1": "PENDIS"})
    first = {"nips": ["1", "2"], "usernames": ["u1", "u2"]}
    assert read_payload(Action.CREATE_USERS, first).usernames == {"1": "u1", "2": "u2"}
    assert read_payload(Action.ENROL, {"enrolments": [["1", "C", "enrol"]]}) == EnrolPayload(
        [("1", "C", "enrol")])
    assert read_payload(Action.COHORT_ADD, {"members": [["unit:X", "1"]]}) == MembersPayload(
        [("unit:X", "1")])


# --- recover ----------------------------------------------------------------------------------
def test_recover_finds_the_created_accounts_that_carry_the_username_sent(site: Site):
    ids = _create_in_moodle(site, 0, 1)
    # Person 2's NIP is the idnumber of someone else's account: not the bridge's.
    moodle_users.create_users(site.client, [moodle_users.NewUser(
        username="someone", idnumber=nip(2), firstname="A", lastname="B",
        email="someone@kemenag.example", createpassword=True)])
    items = [create(i) for i in range(4)]
    batch = _batch(site, Action.CREATE_USERS, site.create_stage().payload(items).to_json())

    result, changes = recover(Action.CREATE_USERS, batch, site.client)

    assert result == {"found": 2}
    assert changes.accounts == [
        NewAccount(nip(i), ids[nip(i)], nip(i), "PENDIS", fingerprint(items[i].record),
                   "created", False, None, f"Nama{i} Uji", 1000 + i)
        for i in (0, 1)
    ]
    assert [(line.action, line.nip, line.unit) for line in changes.log] == [
        ("create", nip(0), "PENDIS"), ("create", nip(1), "PENDIS")]


def test_recover_of_an_old_create_batch_records_no_applied_hash(site: Site):
    ids = _create_in_moodle(site, 5)
    batch = _batch(site, Action.CREATE_USERS, {"usernames": {nip(5): nip(5)},
                                               "units": {nip(5): "SETJEN"}})
    _result, changes = recover(Action.CREATE_USERS, batch, site.client)
    assert changes.accounts == [NewAccount(nip(5), ids[nip(5)], nip(5), "SETJEN", None)]


def test_recover_of_a_cohort_batch_records_the_cohorts_found_as_the_bridges(site: Site):
    made = moodle_cohorts.create_cohorts(
        site.client, [moodle_cohorts.NewCohort(name="Gap A", idnumber="gap:A")])
    batch = _batch(site, Action.CREATE_COHORTS, {"idnumbers": ["gap:A", "gap:B"]})
    result, changes = recover(Action.CREATE_COHORTS, batch, site.client)
    assert result == {"found": 1}
    assert [(c.idnumber, c.moodle_id, c.created_by_bridge) for c in changes.cohorts] == [
        ("gap:A", made[0].id, True)]


@pytest.mark.parametrize(
    ("action", "payload"),
    [
        (Action.UPDATE_USERS, {"nips": ["1"]}),
        (Action.COHORT_ADD, {"members": [["unit:PENDIS", "1"]]}),
        (Action.COHORT_REMOVE, {"members": [["unit:PENDIS", "1"]]}),
        (Action.ENROL, {"enrolments": [["1", "TEK-KEU-1", "enrol"]]}),
    ],
)
def test_idempotent_batches_are_replanned_without_a_call(
    site: Site, action: Action, payload: object
):
    result, changes = recover(action, _batch(site, action, payload), site.client)
    assert result == {"replanned": True}
    assert changes.accounts == changes.applied == changes.log == []
    assert site.transport.served == []


# --- resume -----------------------------------------------------------------------------------
def test_resume_settles_every_open_batch_by_the_resuming_run(site: Site):
    ids = _create_in_moodle(site, 0, 1)
    # NIP 1 was recorded since (a later batch of the crashed run): kept as the store has it.
    site.store.record_accounts([NewAccount(nip(1), ids[nip(1)], nip(1), "SETJEN", "later")])
    items = [create(0), create(1)]
    _batch(site, Action.CREATE_USERS, site.create_stage().payload(items).to_json())
    _batch(site, Action.ENROL, {"enrolments": [[nip(1), "TEK-KEU-1", "enrol"]]})
    settled = site.store.batch(site.store.journal_batch(site.run_id, "update_users", {}))
    assert settled is not None
    site.store.confirm_batch(settled.id)
    resuming = site.store.begin_run("sync", None)

    resumed = resume_pending(site.store, site.client, resuming)

    assert resumed == {"create_users": 1, "enrol": 1}
    assert site.store.pending_batches() == []
    assert {b.settled_by_run for b in site.store.batches(site.run_id) if b.state == "resolved"} == {
        resuming}
    accounts = site.store.accounts()
    assert accounts[nip(0)].moodle_id == ids[nip(0)]
    assert accounts[nip(0)].applied_hash == fingerprint(items[0].record)
    assert (accounts[nip(1)].unit, accounts[nip(1)].applied_hash) == ("SETJEN", "later")
    assert [(c.action, c.nip) for c in site.store.run_changes(resuming)] == [("create", nip(0))]


# --- enrolments whose answer was lost ----------------------------------------------------------
def test_unanswered_enrolments_are_those_of_open_or_read_back_batches(site: Site):
    lost = _batch(site, Action.ENROL, EnrolPayload([(nip(1), "A", "enrol"),
                                                    (nip(2), "B", "suspend")]).to_json())
    site.store.resolve_batch(lost.id, {"replanned": True})
    _batch(site, Action.COHORT_ADD, MembersPayload([("course:C", nip(3)),
                                                   ("unit:PENDIS", nip(4))]).to_json())
    refused = _batch(site, Action.ENROL, EnrolPayload([(nip(5), "A", "enrol")]).to_json())
    site.store.fail_batch(refused.id, "invalidparameter")
    answered = _batch(site, Action.ENROL, EnrolPayload([(nip(6), "A", "enrol")]).to_json())
    site.store.confirm_batch(answered.id)

    found = unanswered_enrolments(site.store, {"course:C": "C"})

    # A suspension is no enrolment, a unit cohort enrols in nothing, a refused batch enrolled
    # nobody and an answered one is recorded as it was.
    assert found == {(nip(1), "A"), (nip(3), "C")}
