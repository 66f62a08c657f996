"""Each write stage on its own, against the emulated site called in process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moodle_bridge import errors
from moodle_bridge.moodle.api import to_params
from moodle_bridge.store import Applied, Changes, CohortRow, EnrolmentRow, NewAccount
from moodle_bridge.sync.desired import fingerprint
from moodle_bridge.sync.plan import ChangeAccount, EnrolChange, Membership, Reason
from moodle_bridge.sync.stages.accounts import ChangeStage, CreateStage
from moodle_bridge.sync.stages.base import RecordFailure, Targets
from moodle_bridge.sync.stages.cohorts import CohortStage
from moodle_bridge.sync.stages.enrolments import EnrolStage
from moodle_bridge.sync.stages.members import MemberAddStage, MemberRemoveStage
from moodle_bridge.sync.verify import Verifier
from tests.unit.sync_kit import Site, create, enrolment, make_site, member, nip

SEEDED = "197501012000031001"  # an account of the seed, in unit:SETJEN


def seeded_in(cohort: str) -> Membership:
    return Membership(cohort, SEEDED, Reason.of("unit", unit="PENDIS"))


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path)


@pytest.fixture
def verifier(site: Site) -> Verifier:
    return Verifier(site.client, site.store, 5, "student")


@pytest.fixture
def targets(site: Site) -> Targets:
    seeded = site.user(SEEDED)
    assert seeded is not None
    return Targets({SEEDED: seeded["id"]}, {SEEDED: "SETJEN"}, site.cohorts(),
                   site.courses("TEK-KEU-1", "TEK-KEU-2"))


# --- cohorts ----------------------------------------------------------------------------------
def test_cohort_stage_creates_system_cohorts_and_records_them_as_the_bridges(site: Site):
    stage = CohortStage()
    items = [("gap:A", "Gap A"), ("gap:B", "Gap B")]
    settled = stage.settle(items, stage.send(site.client, items))
    made = {c["idnumber"]: c["id"] for c in site.emulator.world.cohorts.values()}
    assert settled.changes.cohorts == [CohortRow("gap:A", made["gap:A"], "Gap A", True),
                                       CohortRow("gap:B", made["gap:B"], "Gap B", True)]
    assert settled.applied == {"cohort_create": 2}
    assert stage.payload(items).idnumbers == ["gap:A", "gap:B"]
    assert stage.unsettled(items, Changes(cohorts=settled.changes.cohorts[:1])) == items[1:]
    assert stage.failure(items[0], "x", "why").reason == "cohort gap:A: why"


# --- accounts ---------------------------------------------------------------------------------
def test_create_stage_sends_custom_fields_and_asks_moodle_for_the_password(site: Site,
                                                                          verifier: Verifier):
    stage = CreateStage(verifier)
    params = to_params(stage.wire(create(1)))
    assert params["createpassword"] is True
    assert params["customfields"] == [{"type": "unit", "value": "PENDIS"},
                                      {"type": "satker", "value": "Satker A"}]
    assert "profile_field_unit" not in params


def test_create_stage_settles_accounts_with_their_record_and_a_change_log(site: Site,
                                                                         verifier: Verifier):
    stage = CreateStage(verifier)
    items = [create(1), create(2)]
    settled = stage.settle(items, stage.send(site.client, items))
    ids = [site.user(nip(i))["id"] for i in (1, 2)]
    assert settled.changes.accounts == [
        NewAccount(nip(i), ids[k], nip(i), "PENDIS", fingerprint(items[k].record), "created",
                   False, items[k].record, f"Nama{i} Uji", 1000 + i)
        for k, i in enumerate((1, 2))
    ]
    assert [(c.action, c.nip, c.source, c.row) for c in settled.changes.log] == [
        ("create", nip(1), "roster.csv", 3), ("create", nip(2), "roster.csv", 4)]
    assert settled.applied == {"create": 2}
    payload = stage.payload(items)
    assert payload.usernames == {nip(1): nip(1), nip(2): nip(2)}
    assert payload.hashes[nip(1)] == fingerprint(items[0].record)


def test_create_stage_explains_a_refused_account(site: Site, verifier: Verifier):
    stage = CreateStage(verifier)
    taken = create(1, username=SEEDED)
    with pytest.raises(errors.InvalidParameter) as info:
        stage.send(site.client, [taken])
    outcome = stage.refused(taken, info.value)
    assert isinstance(outcome, RecordFailure)
    assert (outcome.action, outcome.nip, outcome.errorcode) == ("create", nip(1),
                                                                "invalidparameter")
    assert "--adopt" in outcome.reason
    assert (outcome.source, outcome.row) == ("roster.csv", 3)


def _change(kind: str, **more: object) -> ChangeAccount:
    seeded_record = {"firstname": "Baru"}
    return ChangeAccount(SEEDED, 5, kind, seeded_record, {"username": SEEDED, **seeded_record},
                         kind == "suspend", Reason.of("absent", since="2026-11-01", unit="SETJEN"),
                         **more)


def test_change_stage_sends_only_the_changes_and_the_suspension():
    stage = ChangeStage()
    assert to_params(stage.wire(_change("update"))) == {"id": 5, "firstname": "Baru"}
    assert to_params(stage.wire(_change("suspend"))) == {"id": 5, "firstname": "Baru",
                                                         "suspended": True}


def test_change_stage_records_the_suspension_reason_and_fails_what_moodle_warned_of(site: Site):
    stage = ChangeStage()
    gone = ChangeAccount(nip(9), 99999, "update", {"firstname": "X"}, {"firstname": "X"}, False,
                         Reason("changed"))
    items = [_change("suspend", unit="SETJEN", display_name="Baru Orang"), gone]
    settled = stage.settle(items, stage.send(site.client, items))
    assert settled.changes.applied == [
        Applied(SEEDED, fingerprint(items[0].record), True, items[0].record, "SETJEN",
                items[0].reason.to_json(), "Baru Orang", None)]
    assert [(c.action, c.nip) for c in settled.changes.log] == [("suspend", SEEDED)]
    assert settled.applied == {"suspend": 1}
    assert [(f.action, f.nip, f.errorcode) for f in settled.failures] == [
        ("update", nip(9), "invaliduserid")]
    assert site.user(SEEDED)["suspended"]


# --- members ----------------------------------------------------------------------------------
def test_member_stages_say_why_an_item_cannot_be_sent(targets: Targets, verifier: Verifier):
    stage = MemberAddStage(targets, verifier)
    assert stage.blocked(member(1)) == "the person has no account"
    assert stage.blocked(seeded_in("gap:none")) == "cohort gap:none is not in Moodle"
    assert stage.blocked(seeded_in("unit:PENDIS")) is None


def test_adding_records_members_and_the_enrolments_of_audience_cohorts(
    site: Site, targets: Targets, verifier: Verifier
):
    stage = MemberAddStage(targets, verifier)
    plain = seeded_in("unit:PENDIS")
    audience = Membership("unit:BIMASISLAM", SEEDED, Reason("gap"), course="TEK-KEU-1",
                          timestart=100, timeend=200)
    items = [plain, audience]
    stage.send(site.client, items)
    stage.send(site.client, items)  # again: "already a member" is done, not refused
    settled = stage.settle(items, None)
    assert settled.changes.members_added == [("unit:PENDIS", SEEDED), ("unit:BIMASISLAM", SEEDED)]
    assert settled.changes.enrolments == [
        EnrolmentRow(SEEDED, "TEK-KEU-1", False, 100, 200, method="cohort",
                     cohort="unit:BIMASISLAM")]
    assert [(c.action, c.unit, c.target) for c in settled.changes.log] == [
        ("cohort_add", "SETJEN", "unit:PENDIS"), ("cohort_add", "SETJEN", "unit:BIMASISLAM")]
    assert settled.applied == {"cohort_add": 2}


def test_adding_a_member_moodle_skips_is_a_refusal_of_the_batch(site: Site, targets: Targets,
                                                                verifier: Verifier):
    targets.users[nip(1)] = 99999  # an id Moodle does not know
    stage = MemberAddStage(targets, verifier)
    with pytest.raises(errors.RecordError, match="1 member\\(s\\) not added"):
        stage.send(site.client, [member(1), seeded_in("unit:PENDIS")])


def test_removing_records_the_memberships_gone(site: Site, targets: Targets):
    stage = MemberRemoveStage(targets)
    items = [seeded_in("unit:SETJEN")]
    settled = stage.settle(items, stage.send(site.client, items))
    assert settled.changes.members_removed == [("unit:SETJEN", SEEDED)]
    assert settled.applied == {"cohort_remove": 1}
    assert SEEDED not in {
        site.emulator.world.users[u]["idnumber"]
        for u in site.emulator.world.cohort_member_sets[site.cohort_id("unit:SETJEN")]}
    assert stage.payload(items).members == [("unit:SETJEN", SEEDED)]


# --- enrolments -------------------------------------------------------------------------------
def test_enrol_stage_enrols_with_the_configured_role_and_records_suspension_reasons(
    site: Site, targets: Targets, verifier: Verifier
):
    stage = EnrolStage(targets, verifier)
    assert stage.blocked(enrolment(1)) == "the person has no account"
    nowhere = EnrolChange(SEEDED, "NOPE", "enrol", False)
    assert stage.blocked(nowhere) == "course NOPE is not in Moodle"
    why = Reason.of("gap_closed", competency="K1")
    items = [EnrolChange(SEEDED, "TEK-KEU-1", "enrol", False, 10, 20),
             EnrolChange(SEEDED, "TEK-KEU-2", "suspend", True, reason=why)]
    assert to_params(stage.wire(items[0]))["roleid"] == 5
    settled = stage.settle(items, stage.send(site.client, items))
    assert settled.changes.enrolments == [
        EnrolmentRow(SEEDED, "TEK-KEU-1", False, 10, 20),
        EnrolmentRow(SEEDED, "TEK-KEU-2", True, suspended_reason=why.to_json())]
    assert settled.applied == {"enrol_enrol": 1, "enrol_suspend": 1}
    assert json.loads(settled.changes.log[1].reason)["code"] == "gap_closed"
    assert stage.failure(items[1], None, "x").action == "enrol_suspend"
