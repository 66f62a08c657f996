"""Read-back checks, each made once, and the explanation of a refused create."""

from __future__ import annotations

from pathlib import Path

import pytest

from moodle_bridge import errors
from moodle_bridge.moodle import cohorts as moodle_cohorts
from moodle_bridge.moodle import enrol as moodle_enrol
from moodle_bridge.moodle import users as moodle_users
from moodle_bridge.store import EnrolmentRow, NewAccount
from moodle_bridge.sync.desired import PROFILE_PREFIX
from moodle_bridge.sync.journal import Action, CreatePayload
from moodle_bridge.sync.stages.accounts import CreateStage
from moodle_bridge.sync.verify import Verifier
from tests.unit.sync_kit import Site, create, make_site, nip

SEEDED = "197501012000031001"


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path)


def _created(site: Site, verifier: Verifier, *people: int, **fields: str) -> list[NewAccount]:
    stage = CreateStage(verifier)
    items = [create(i, **fields) for i in people]
    return stage.settle(items, stage.send(site.client, items)).changes.accounts


def _refusal(site: Site, **fields: str) -> errors.RecordError:
    with pytest.raises(errors.RecordError) as info:
        moodle_users.create_users(site.client, [site.create_stage().wire(create(1, **fields))])
    return info.value


# --- custom profile fields ----------------------------------------------------------------------
def test_a_missing_custom_profile_field_stops_the_run_naming_only_it(site: Site):
    verifier = Verifier(site.client, site.store, 5, "student")
    accounts = _created(site, verifier, 1, **{PROFILE_PREFIX + "nosuchfield": "x"})
    with pytest.raises(errors.Fatal, match=r"field\(s\) nosuchfield:"):
        verifier.profile_fields(accounts)


def test_profile_fields_are_read_back_once(site: Site):
    verifier = Verifier(site.client, site.store, 5, "student")
    accounts = _created(site, verifier, 1, 2)
    verifier.profile_fields(accounts)
    verifier.profile_fields(accounts)
    assert len(site.transport.calls("core_user_get_users_by_field")) == 1


# --- the role ---------------------------------------------------------------------------------
def _enrolled(site: Site) -> tuple[int, int]:
    userid, courseid = site.user(SEEDED)["id"], site.course_id("TEK-KEU-1")
    moodle_enrol.enrol_users(site.client, [moodle_enrol.Enrolment(roleid=3, userid=userid,
                                                                  courseid=courseid)])
    return userid, courseid


def test_an_enrolment_with_another_role_than_the_student_role_stops_the_run(site: Site):
    with pytest.raises(errors.Fatal, match=r"role id 3 is not the 'student' role.*editingteacher"):
        Verifier(site.client, site.store, 3, "student").role(*_enrolled(site))


def test_the_right_role_passes_and_is_checked_once(site: Site):
    verifier = Verifier(site.client, site.store, 3, "editingteacher")
    verifier.role(*_enrolled(site))
    verifier.role(*_enrolled(site))
    assert len(site.transport.calls("core_enrol_get_enrolled_users")) == 1


# --- cohort sync ------------------------------------------------------------------------------
def test_an_audience_cohort_not_linked_to_its_course_is_a_record_failure_once(site: Site):
    site.link("unit:PENDIS", "TEK-KEU-1")
    verifier = Verifier(site.client, site.store, 5, "student")
    [first, second] = _created(site, verifier, 1, 2)
    users = {first.nip: first.moodle_id, second.nip: second.moodle_id}
    site.cohorts()
    moodle_cohorts.add_cohort_members(site.client, [
        moodle_cohorts.CohortMemberRef.by_ids(site.cohort_id(c), first.moodle_id)
        for c in ("unit:PENDIS", "unit:SETJEN")])
    rows = [EnrolmentRow(first.nip, "TEK-KEU-1", False, method="cohort", cohort="unit:PENDIS"),
            EnrolmentRow(first.nip, "TEK-KEU-2", False, method="cohort", cohort="unit:SETJEN"),
            EnrolmentRow(second.nip, "TEK-KEU-2", False, method="cohort", cohort="unit:SETJEN")]

    failures = verifier.cohort_sync(rows, users)

    assert [(f.action, f.nip) for f in failures] == [("cohort_sync", first.nip)]
    assert "link cohort unit:SETJEN to course TEK-KEU-2 by cohort sync" in failures[0].reason
    assert verifier.cohort_sync(rows, users) == []
    assert len(site.transport.calls("core_enrol_get_users_courses")) == 2


def test_a_member_not_enrolled_in_a_course_moodle_lacks_blames_the_course_not_the_link(
    site: Site,
):
    verifier = Verifier(site.client, site.store, 5, "student")
    [first] = _created(site, verifier, 1)
    rows = [EnrolmentRow(first.nip, "GONE-12", False, method="cohort", cohort="course:GONE-12")]

    [failure] = verifier.cohort_sync(rows, {first.nip: first.moodle_id})

    assert failure.reason == (
        "course GONE-12 does not exist in Moodle: create it or fix the catalogue"
    )


# --- refused creates ------------------------------------------------------------------------------
def test_a_username_someone_else_holds_asks_for_adopt(site: Site):
    verifier = Verifier(site.client, site.store, 5, "student")
    error = _refusal(site, username=SEEDED)
    reason = verifier.refused_create(create(1, username=SEEDED), error)
    assert isinstance(reason, str)
    assert "does not own it: run with --adopt" in reason


def test_a_taken_email_says_so(site: Site):
    verifier = Verifier(site.client, site.store, 5, "student")
    email = site.user(SEEDED)["email"]
    reason = verifier.refused_create(create(1, email=email), _refusal(site, email=email))
    assert reason == "another Moodle account already uses this email address"


def test_an_account_the_bridges_journal_sent_is_its_own_never_adopt(site: Site):
    """An older version took a committed batch for refused (a site fault hid the answer);
    the account is still the bridge's, or every later run would stall on it."""
    verifier = Verifier(site.client, site.store, 5, "student")
    [account] = _created(site, verifier, 1)
    batch = site.store.journal_batch(
        site.run_id, Action.CREATE_USERS, CreatePayload({nip(1): nip(1)}).to_json())
    site.store.fail_batch(batch, "dbconnectionfailed")

    found = verifier.refused_create(create(1), _refusal(site))

    assert isinstance(found, moodle_users.MoodleUser)
    assert found.id == account.moodle_id


def test_the_same_account_without_the_journal_entry_is_not_taken(site: Site):
    verifier = Verifier(site.client, site.store, 5, "student")
    _created(site, verifier, 1)  # as if made by hand with the bridge's username and idnumber
    reason = verifier.refused_create(create(1), _refusal(site))
    assert isinstance(reason, str)
    assert "--adopt" in reason


@pytest.mark.parametrize("settled", ["pending", "invalidparameter"])
def test_an_account_only_a_refused_or_unanswered_batch_named_is_not_taken(
    site: Site, settled: str
):
    """The batch being sent, and a batch Moodle refused as a whole (one transaction: nothing
    of it was committed), name the person too: neither makes an account found there the
    bridge's, or every hand-made account with the NIP as username would be taken over."""
    verifier = Verifier(site.client, site.store, 5, "student")
    _created(site, verifier, 1)  # as if made by hand with the bridge's username and idnumber
    batch = site.store.journal_batch(
        site.run_id, Action.CREATE_USERS, CreatePayload({nip(1): nip(1)}).to_json())
    if settled != "pending":
        site.store.fail_batch(batch, settled)

    reason = verifier.refused_create(create(1), _refusal(site))

    assert isinstance(reason, str)
    assert "--adopt" in reason
