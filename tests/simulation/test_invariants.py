"""Each invariant of the simulation catches a violation planted in the emulator's state, and is
quiet when there is none: an invariant that cannot fail proves nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from moodle_bridge.emulator.cohorts import link_cohort_to_course
from moodle_bridge.emulator.completion import learner_completes
from moodle_bridge.store import Applied, Changes, EnrolmentRow, LedgerEntry, NewAccount, Store
from tests.simulation import invariants as inv
from tests.simulation.site import SimClock, Site
from tests.simulation.world import Export, Row, RowKind, export_stamp

START = dt.date(2026, 3, 2)
NOW = export_stamp(START) + 6 * 3600
DAY = 86400
NIP = "198001012005011001"
OTHER = "198502022010012002"
REASON = '{"code": "status", "status": "PENSIUN"}'


@pytest.fixture
def site() -> Site:
    return Site(SimClock(NOW))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "state.sqlite3", clock=lambda: float(NOW)) as opened:
        yield opened


def add_user(site: Site, nip: str, *, suspended: bool = False) -> int:
    """A Moodle account made through the web service, as the bridge would."""
    created = site.admin(
        "core_user_create_users",
        {
            "users[0][username]": nip,
            "users[0][idnumber]": nip,
            "users[0][firstname]": "Ahmad",
            "users[0][lastname]": "Pegawai",
            "users[0][email]": f"{nip}@kemenag.example",
            "users[0][createpassword]": "1",
        },
    )
    userid = int(created[0]["id"])
    if suspended:
        suspend(site, userid)
    return userid


def suspend(site: Site, userid: int) -> None:
    site.admin("core_user_update_users", {"users[0][id]": str(userid), "users[0][suspended]": "1"})


def export(day: dt.date, *rows: tuple[str, RowKind]) -> Export:
    return Export("PENDIS", day, Path("x.csv"), tuple(Row(nip, kind, "", ()) for nip, kind in rows))


def settle(store: Store, changes: Changes) -> None:
    """Record ``changes`` as one confirmed batch of a run, as the executor does."""
    run = store.begin_run("sync", "generic")
    store.confirm_batch(store.journal_batch(run, "test", {}), changes=changes)


# --- 1. nobody active is suspended ----------------------------------------------------------------
def test_an_active_person_who_is_suspended_is_a_violation(site: Site) -> None:
    evidence = inv.Evidence(14)
    evidence.add(export(START, (NIP, RowKind.ACTIVE), (OTHER, RowKind.INACTIVE)))
    userid = add_user(site, NIP)
    add_user(site, OTHER, suspended=True)
    assert inv.wrongly_suspended(site.world, evidence, NOW) == []
    suspend(site, userid)
    found = inv.wrongly_suspended(site.world, evidence, NOW)
    assert len(found) == 1
    assert NIP in found[0]
    # Listed nowhere for longer than the grace: a suspension is allowed.
    assert inv.wrongly_suspended(site.world, evidence, NOW + 15 * DAY) == []


def test_the_rule_of_the_latest_row() -> None:
    later = START + dt.timedelta(days=2)
    evidence = inv.Evidence(14)

    def active(*rows: Export) -> bool:
        fresh = inv.Evidence(14)
        for each in rows:
            fresh.add(each)
        return fresh.must_be_active(NIP, export_stamp(later) + 3600)

    assert active(export(START, (NIP, RowKind.ACTIVE)))
    # The latest row wins, whatever order the exports were synced in (an old file re-run).
    assert not active(export(later, (NIP, RowKind.INACTIVE)), export(START, (NIP, RowKind.ACTIVE)))
    assert active(export(START, (NIP, RowKind.INACTIVE)), export(later, (NIP, RowKind.ACTIVE)))
    # A refused row keeps the state of the row before it.
    assert active(export(START, (NIP, RowKind.ACTIVE)), export(later, (NIP, RowKind.REFUSED)))
    assert not active(export(START, (NIP, RowKind.INACTIVE)), export(later, (NIP, RowKind.REFUSED)))
    assert not active(export(later, (NIP, RowKind.REFUSED)))
    # On one day, an active row in one unit's file wins over a MUTASI KELUAR row in another's.
    assert active(export(later, (NIP, RowKind.LEFT_UNIT)), export(later, (NIP, RowKind.ACTIVE)))
    # A row nobody can tie to the person says nothing, and neither does MUTASI KELUAR: the
    # grace counts from the last row that listed them.
    old = START - dt.timedelta(days=20)
    assert not active(
        export(old, (NIP, RowKind.ACTIVE)),
        export(START, (NIP, RowKind.UNTIED)),
        export(later, (NIP, RowKind.LEFT_UNIT)),
    )
    # A refused row listing a person still protected protects them a grace longer...
    recent = START - dt.timedelta(days=10)
    kept = inv.Evidence(14)
    kept.add(export(recent, (NIP, RowKind.ACTIVE)))
    kept.add(export(START, (NIP, RowKind.REFUSED)))
    assert kept.must_be_active(NIP, export_stamp(recent + dt.timedelta(days=20)))
    # ...but not once the grace since the row before has run out: the person may have been
    # suspended for their absence already, and a refused row changes nothing.
    assert not active(export(old, (NIP, RowKind.ACTIVE)), export(START, (NIP, RowKind.REFUSED)))
    assert not evidence.must_be_active(NIP, NOW)


def test_an_account_whose_unit_is_not_the_latest_active_row_s_is_found(site: Site) -> None:
    later = START + dt.timedelta(days=3)
    evidence = inv.Evidence(14)
    evidence.add(export(START, (NIP, RowKind.ACTIVE)))
    moved = Export("SETJEN", later, Path("y.csv"), (Row(NIP, RowKind.ACTIVE, "", ()),))
    evidence.add(moved)
    # An old PENDIS file run again, and a refused row, do not take the person back.
    evidence.add(export(START - dt.timedelta(days=30), (NIP, RowKind.ACTIVE)))
    evidence.add(export(later, (NIP, RowKind.REFUSED)))
    userid = add_user(site, NIP)
    site.world.users[userid]["customfields"] = {"unit": "PENDIS"}
    assert inv.stale_units(site.world, evidence) == [
        f"{NIP} is in unit PENDIS in Moodle, not SETJEN"
    ]
    site.world.users[userid]["customfields"] = {"unit": "SETJEN"}
    assert inv.stale_units(site.world, evidence) == []


# --- 2. nobody has two accounts -------------------------------------------------------------------
def test_two_accounts_with_one_nip_are_a_violation(site: Site) -> None:
    add_user(site, NIP)
    assert inv.duplicate_accounts(site.world) == []
    twin = site.admin(
        "core_user_create_users",
        {
            "users[0][username]": "twin",
            "users[0][idnumber]": NIP,
            "users[0][firstname]": "Ahmad",
            "users[0][lastname]": "Kembar",
            "users[0][email]": "twin@kemenag.example",
            "users[0][createpassword]": "1",
        },
    )
    assert twin
    assert inv.duplicate_accounts(site.world) == [
        f"{NIP} has 2 accounts (ids {sorted(site.world.idnumber_index[NIP])})"
    ]


# --- 3. every suspension has a reason and a date --------------------------------------------------
def test_a_suspension_the_state_does_not_explain_is_a_violation(site: Site, store: Store) -> None:
    userid = add_user(site, NIP, suspended=True)
    store.record_accounts([NewAccount(NIP, userid, NIP, "PENDIS", "h")])
    found = inv.unexplained_suspensions(site.world, store)
    assert len(found) == 1
    assert "suspended in Moodle" in found[0]
    settle(store, Changes(applied=[Applied(NIP, "h", True, reason=REASON)]))
    assert inv.unexplained_suspensions(site.world, store) == []


def test_a_suspended_enrolment_the_state_does_not_explain_is_a_violation(
    site: Site, store: Store
) -> None:
    userid = add_user(site, NIP)
    store.record_accounts([NewAccount(NIP, userid, NIP, "PENDIS", "h")])
    courseid = site.create_courses(["SIM-A-12"])["SIM-A-12"]
    store.record_courses({"SIM-A-12": courseid}, {"SIM-A-12": "A"})
    key = site.enrol_by_hand(userid, courseid, 0, 0)
    site.world.enrolments[key]["status"] = inv.ENROL_SUSPENDED
    store.record_enrolments([EnrolmentRow(NIP, "SIM-A-12", True)])
    assert len(inv.unexplained_suspensions(site.world, store)) == 1
    reason = '{"code": "gap_closed"}'
    row = EnrolmentRow(NIP, "SIM-A-12", True, suspended_reason=reason)
    store.record_enrolments([EnrolmentRow(NIP, "SIM-A-12", False)])
    settle(store, Changes(enrolments=[row]))
    assert inv.unexplained_suspensions(site.world, store) == []


# --- 4. nothing is written to another site --------------------------------------------------------
def test_writes_and_changed_accounts_are_found(site: Site) -> None:
    reads = [("core_webservice_get_site_info", 0), ("core_cohort_search_cohorts", 3)]
    assert inv.writes(reads) == []
    assert inv.writes([*reads, ("enrol_manual_enrol_users", 5)]) == [
        "write call enrol_manual_enrol_users"
    ]
    userid = add_user(site, NIP)
    before = inv.account_snapshot(site.world)
    assert inv.changed_accounts(before, inv.account_snapshot(site.world)) == []
    suspend(site, userid)
    other = add_user(site, OTHER)
    assert inv.changed_accounts(before, inv.account_snapshot(site.world)) == [
        f"user {userid} was changed",
        f"user {other} was created",
    ]


# --- 5. gap enrolments change only on runs given assessments --------------------------------------
def test_a_changed_gap_membership_or_enrolment_is_found(site: Site) -> None:
    userid, other = add_user(site, NIP), add_user(site, OTHER)
    courseid = site.create_courses(["SIM-A-12"])["SIM-A-12"]
    gap = site.create_cohort("gap:TEK-A:1")
    site.create_cohort("unit:BIMAS_ISLAM")
    for cohort in ("gap:TEK-A:1", "unit:BIMAS_ISLAM"):
        site.admin(
            "core_cohort_add_cohort_members",
            {
                "members[0][cohorttype][type]": "idnumber",
                "members[0][cohorttype][value]": cohort,
                "members[0][usertype][type]": "id",
                "members[0][usertype][value]": str(userid),
            },
        )
    key = site.enrol_by_hand(other, courseid, 0, 0)
    before = inv.gap_snapshot(site.world)
    assert inv.gap_changes(before, inv.gap_snapshot(site.world)) == []
    # A unit cohort is not the gap machinery's: it may change on any run, and so may the
    # enrolments it brings in a course the site linked it to.
    unit = site.world.cohort_idnumber_index["unit:BIMAS_ISLAM"]
    link_cohort_to_course(site.emulator, courseid, unit)
    site.world.remove_cohort_member(unit, userid)
    assert inv.gap_changes(before, inv.gap_snapshot(site.world)) == []
    site.world.remove_cohort_member(gap, userid)
    site.world.enrolments[key]["timeend"] = 1
    assert inv.gap_changes(before, inv.gap_snapshot(site.world)) == [
        f"enrolment {key} changed: (0, 0, 0) -> (0, 0, 1)",
        "cohort gap:TEK-A:1: 0 members added, 1 removed",
    ]


# --- 6. nothing of learning history is deleted ----------------------------------------------------
def test_a_deleted_enrolment_or_a_changed_completion_is_found(site: Site) -> None:
    userid = add_user(site, NIP)
    ids = site.create_courses(["SIM-A-12", "SIM-B-12"])
    history = inv.History()
    kept = site.enrol_by_hand(userid, ids["SIM-A-12"], 0, 0)
    lost = site.enrol_by_hand(userid, ids["SIM-B-12"], 0, 0)
    learner_completes(site.emulator, userid, ids["SIM-A-12"], NOW - DAY)
    assert history.lost(site.world) == []
    assert history.lost(site.world) == []
    site.world.remove_enrolment(*lost)
    site.world.completions[(ids["SIM-A-12"], userid)]["timecompleted"] = NOW
    found = history.lost(site.world)
    assert found[0] == f"enrolment (instance {lost[0]}, user {userid}) was deleted"
    assert f"the completion of course {ids['SIM-A-12']} by user {userid}" in found[1]
    assert kept in site.world.enrolments


def test_a_cohort_removal_that_unenrols_is_a_lost_enrolment(site: Site) -> None:
    """The emulator unenrols at once, as Moodle's default cohort sync does: History sees it."""
    userid = add_user(site, NIP)
    courseid = site.create_courses(["SIM-C-12"])["SIM-C-12"]
    cohortid = site.create_cohort("course:SIM-C-12")
    site.world.add_cohort_member(cohortid, userid)
    link_cohort_to_course(site.emulator, courseid, cohortid)
    history = inv.History()
    assert history.lost(site.world) == []
    site.admin(
        "core_cohort_delete_cohort_members",
        {"members[0][cohortid]": str(cohortid), "members[0][userid]": str(userid)},
    )
    assert len(history.lost(site.world)) == 1


# --- 7. every completion of a chosen course is in the ledger --------------------------------------
def test_a_completion_missing_from_the_ledger_is_found(site: Site, store: Store) -> None:
    userid = add_user(site, NIP)
    courseid = site.create_courses(["SIM-A-12"])["SIM-A-12"]
    store.record_accounts([NewAccount(NIP, userid, NIP, "PENDIS", "h")])
    store.record_courses({"SIM-A-12": courseid}, {"SIM-A-12": "A"})
    key = site.enrol_by_hand(userid, courseid, 0, 0)
    site.world.enrolments[key]["modifierid"] = inv.bridge_user_id(site.emulator)
    chosen = inv.chosen_courses(site.world, store, inv.bridge_user_id(site.emulator))
    assert chosen == {(NIP, "SIM-A-12")}
    assert inv.ledger_gaps(site.world, store, chosen, NOW) == []
    learner_completes(site.emulator, userid, courseid, NOW - DAY)
    assert inv.ledger_gaps(site.world, store, chosen, NOW - 2 * DAY) == []
    assert len(inv.ledger_gaps(site.world, store, chosen, NOW)) == 1
    store.record_completions([LedgerEntry(NIP, "SIM-A-12", NOW - DAY)])
    assert inv.ledger_gaps(site.world, store, chosen, NOW) == []
    # The same completion recorded a second time (with another time) is counted twice.
    twice = [*store.completions(), LedgerEntry(NIP, "SIM-A-12", NOW)]
    assert inv.ledger_gaps(site.world, store, chosen, NOW, twice) == [
        f"{(NIP, 'SIM-A-12')} is 2 times in the ledger"
    ]


# --- 8. the annual cap ----------------------------------------------------------------------------
def test_more_catalogue_enrolments_than_the_cap_is_a_violation_when_the_bridge_made_one(
    site: Site,
) -> None:
    userid = add_user(site, NIP)
    ids = site.create_courses(["C1", "C2", "C3", "C4"])
    bridge = inv.bridge_user_id(site.emulator)
    for course in ("C1", "C2", "C3"):
        site.enrol_by_hand(userid, ids[course], 0, 0)
    assert inv.over_cap(site.world, ids, 3, bridge) == []
    fourth = site.enrol_by_hand(userid, ids["C4"], 0, 0)
    # Only administrators' enrolments: not the bridge's doing.
    assert inv.over_cap(site.world, ids, 3, bridge) == []
    site.world.enrolments[fourth]["modifierid"] = bridge
    assert inv.over_cap(site.world, ids, 3, bridge) == [
        f"user {userid} is enrolled in 4 catalogue courses in {START.year} (cap 3)"
    ]
    # A course outside the catalogue does not count.
    assert inv.over_cap(site.world, {c: ids[c] for c in ("C1", "C2", "C4")}, 3, bridge) == []


# --- 9. hand enrolments ---------------------------------------------------------------------------
def test_a_changed_hand_enrolment_is_found(site: Site) -> None:
    userid = add_user(site, NIP)
    courseid = site.create_courses(["SIM-A-12"])["SIM-A-12"]
    hand = inv.HandEnrolments()
    key = site.enrol_by_hand(userid, courseid, NOW, NOW + 90 * DAY)
    hand.record(site.world, [key])
    assert hand.changed(site.world) == []
    # What enrol_manual_enrol_users by the bridge would do to it: rewrite the window.
    site.admin(
        "enrol_manual_enrol_users",
        {
            "enrolments[0][roleid]": "5",
            "enrolments[0][userid]": str(userid),
            "enrolments[0][courseid]": str(courseid),
        },
    )
    assert len(hand.changed(site.world)) == 1
    site.world.remove_enrolment(*key)
    assert hand.changed(site.world) == [f"hand enrolment {key} was deleted"]
