"""The engine's phases, each on its own, against the emulator in process (no sockets):
observe (the site, cohorts, courses, someone else's enrolments, the cohort-sync probe), plan
(pure, in test_planner), guard and apply; and a whole run through :class:`Engine`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from moodle_bridge.emulator import Emulator, default_seed
from moodle_bridge.emulator.cohorts import link_cohort_to_course
from moodle_bridge.emulator.inprocess import InProcessTransport
from moodle_bridge.moodle import cohorts as moodle_cohorts
from moodle_bridge.moodle import users as moodle_users
from moodle_bridge.moodle.client import MoodleClient, RetryPolicy, Timing
from moodle_bridge.store import CohortRow, EnrolmentRow, NewAccount, SiteIdentity, Store
from moodle_bridge.sync import observe
from moodle_bridge.sync.engine import Engine, Source, SyncOptions
from moodle_bridge.sync.planner import Guards
from moodle_bridge.units import discover_units

NOW = 1_790_000_000


def client_of(emulator: Emulator, user: str = "bridge") -> MoodleClient:
    return MoodleClient(
        "http://127.0.0.1:8080",
        emulator.token_for(user),
        transport=InProcessTransport(emulator),
        retry=RetryPolicy(max_attempts=2, base_delay=0.01, max_total_wait=0.05),
        timing=Timing(sleep=lambda _seconds: None),
    )


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(default_seed())


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store.open(tmp_path / "state.sqlite3") as opened:
        yield opened


def roster(path: Path, rows: list[tuple[str, str, str]], mtime: int = NOW) -> Path:
    """A generic roster of (nip, name, unit) rows, dated ``mtime``."""
    lines = ["nip,nama,email,unit,satker,jabatan,golongan,status"]
    lines += [f"{nip},{name},{nip}@kemenag.example,{unit},,,," for nip, name, unit in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.utime(path, (mtime, mtime))
    return path


def nip(i: int) -> str:
    return f"198001012005011{i:03d}"


# --- observe: the site ------------------------------------------------------------------------
def test_the_first_applied_run_binds_the_state_and_another_site_is_refused(emulator, store):
    client = client_of(emulator)
    here = observe.bind_site(client, store, client.url, record=True)
    assert store.site() == here
    assert here.siteurl == emulator.world.settings["wwwroot"]
    store.record_site(here._replace(siteurl="https://lms.other.example", sitename="Other"))
    with pytest.raises(observe.SiteMismatch, match="belongs to the Moodle site 'Other'"):
        observe.bind_site(client, store, client.url, record=True)


def test_a_plan_never_binds_the_state(emulator, store):
    client = client_of(emulator)
    observe.bind_site(client, store, client.url, record=False)
    assert store.site() is None


# --- observe: cohorts ---------------------------------------------------------------------------
def test_a_cohort_the_bridge_did_not_make_is_foreign_until_adopted(emulator, store):
    client = client_of(emulator)
    wanted = ["unit:PENDIS", "unit:NEW"]
    findings = observe.cohort_view(client, store, wanted, {}, adopt=False, record=True)
    assert findings.foreign == ["unit:PENDIS"]
    assert "unit:PENDIS" not in findings.view.usable
    # Remembered as someone else's: the next run needs no lookup, and still leaves it alone.
    assert store.cohorts()["unit:PENDIS"].created_by_bridge is False
    again = observe.cohort_view(client, store, wanted, {}, adopt=False, record=True)
    assert again.foreign == ["unit:PENDIS"]
    # --adopt-cohorts proposes the adoption, which the plan uses; observing never records it
    # (the engine does, once the operator confirmed the plan).
    proposed = observe.cohort_view(client, store, wanted, {}, adopt=True, record=True)
    assert [(c.idnumber, c.name) for c in proposed.to_adopt] == [
        ("unit:PENDIS", "Direktorat Jenderal Pendidikan Islam")
    ]
    assert proposed.foreign == []
    assert "unit:PENDIS" in proposed.view.usable
    assert store.cohorts()["unit:PENDIS"].adopted is False


# --- observe: courses and enrolments --------------------------------------------------------------
def test_courses_are_resolved_once_with_their_full_name_and_missing_ones_named(emulator, store):
    client = client_of(emulator)
    ids, missing = observe.resolve_courses(
        client, store, ["TEK-KEU-1", "NO-SUCH-COURSE"], record=True
    )
    assert "TEK-KEU-1" in ids
    assert missing == ["NO-SUCH-COURSE"]
    assert store.course_names()["TEK-KEU-1"] == "Pengelolaan Keuangan Negara"


def test_an_enrolment_someone_else_made_is_found_and_never_written(emulator, store):
    client = client_of(emulator)
    world = emulator.world
    course = next(c for c in world.courses.values() if c["shortname"] == "TEK-KEU-1")
    enrolled = min(
        userid
        for enrolid, course_id in world.instance_course.items()
        if course_id == course["id"]
        for userid in world.instance_users[enrolid]
    )
    user = world.users[enrolled]
    store.record_accounts([NewAccount(user["idnumber"], enrolled, user["username"], "PENDIS", "h")])
    found = observe.enrolled_elsewhere(
        client, store.accounts(), {"TEK-KEU-1": course["id"]}, [(user["idnumber"], "TEK-KEU-1")]
    )
    assert found == [EnrolmentRow(user["idnumber"], "TEK-KEU-1", False, method="other")]


# --- observe: the cohort-sync probe ---------------------------------------------------------------
def probe_site(emulator: Emulator, unenrolaction: str) -> int:
    """A probe course linked to the probe cohort, as an administrator sets it up."""
    emulator.world.settings["enrol_cohort_unenrolaction"] = unenrolaction
    admin = client_of(emulator, "admin")
    [course] = admin.call(
        "core_course_create_courses",
        {"courses": [{"fullname": "Probe", "shortname": "MB-PROBE", "categoryid": 1}]},
    )
    [cohort] = admin.call(
        "core_cohort_create_cohorts",
        {
            "cohorts": [
                {
                    "name": "probe",
                    "idnumber": observe.PROBE_COHORT,
                    "categorytype": {"type": "system", "value": ""},
                }
            ]
        },
    )
    link_cohort_to_course(emulator, int(course["id"]), int(cohort["id"]))
    return int(course["id"])


@pytest.mark.parametrize(("action", "suspends"), [("3", True), ("0", False)])
def test_the_probe_tells_a_suspending_cohort_sync_from_an_unenrolling_one(
    emulator, store, action: str, suspends: bool
):
    probe_site(emulator, action)
    client = client_of(emulator)
    me = client.call("core_webservice_get_site_info")["userid"]
    finding = observe.probe_cohort_sync(client, store, "MB-PROBE", me)
    assert finding.suspends is suspends
    assert observe.probe_result(store) is suspends


def test_an_unlinked_probe_proves_nothing(emulator, store):
    client = client_of(emulator)
    admin = client_of(emulator, "admin")
    admin.call(
        "core_course_create_courses",
        {"courses": [{"fullname": "Probe", "shortname": "MB-PROBE", "categoryid": 1}]},
    )
    me = client.call("core_webservice_get_site_info")["userid"]
    finding = observe.probe_cohort_sync(client, store, "MB-PROBE", me)
    assert not finding.suspends
    assert "not linked" in finding.note


# --- a whole run: guard and apply -----------------------------------------------------------------
def engine(emulator: Emulator, store: Store, tmp_path: Path, **options: object) -> Engine:
    opts = SyncOptions(**options)  # type: ignore[arg-type]
    return Engine(client_of(emulator), store, tmp_path, opts, clock=lambda: NOW)


def source(path: Path) -> Source:
    return Source("generic", discover_units().require("generic"), path)


def test_plan_writes_nothing_to_moodle_nor_to_the_state(emulator, store, tmp_path):
    users = len(emulator.world.users)
    report = engine(emulator, store, tmp_path, apply=False).run(
        source(roster(tmp_path / "r.csv", [(nip(1), "Nur Aini", "BIMAS_ISLAM")]))
    )
    assert report.plan is not None
    assert [c.nip for c in report.plan.creates] == [nip(1)]
    assert len(emulator.world.users) == users
    assert store.accounts() == {}
    assert store.runs() == []


def test_apply_creates_records_the_changes_and_a_rerun_plans_nothing(emulator, store, tmp_path):
    path = roster(tmp_path / "r.csv", [(nip(i), f"Nur Aini{i}", "BIMAS_ISLAM") for i in range(3)])
    first = engine(emulator, store, tmp_path).run(source(path))
    assert first.exit_code == 0, first.to_dict()
    assert first.run_id is not None
    assert {c.action for c in store.run_changes(first.run_id)} == {"create", "cohort_add"}
    assert store.accounts()[nip(1)].seen_at == NOW
    assert store.display_names()[nip(1)] == "Nur Aini1"
    again = engine(emulator, store, tmp_path).run(source(path))
    assert again.plan is not None
    assert again.plan.is_empty
    assert again.result is None


def test_the_guard_stops_before_any_write_and_names_whom_it_would_suspend(
    emulator, store, tmp_path
):
    rows = [(nip(i), f"Nur Aini{i}", "BIMAS_ISLAM") for i in range(30)]
    engine(emulator, store, tmp_path).run(source(roster(tmp_path / "r.csv", rows)))
    calls_before = len(emulator.calls)
    half = roster(tmp_path / "half.csv", rows[:10], mtime=NOW + 60)
    report = engine(emulator, store, tmp_path, absent_grace_days=0, guards=Guards()).run(
        source(half)
    )
    assert report.exit_code == 3
    assert report.proposed_removals is not None
    assert report.proposed_removals.read_text().count("\n") == 21
    writes = [name for name, _ in emulator.calls[calls_before:] if "get" not in name]
    assert writes == []
    assert all(not a.suspended for a in store.accounts().values())


def test_a_run_against_another_sites_state_stops_before_anything(emulator, store, tmp_path):
    store.record_site(SiteIdentity("https://x", "https://lms.other.example", "Other", "4.5", 2))
    with pytest.raises(observe.SiteMismatch):
        engine(emulator, store, tmp_path).run(
            source(roster(tmp_path / "r.csv", [(nip(1), "Nur Aini", "BIMAS_ISLAM")]))
        )
    assert store.accounts() == {}
    assert store.cohorts() == {} or all(isinstance(c, CohortRow) for c in store.cohorts().values())


def test_a_run_remembers_moodles_rates_and_says_when_user_creation_is_slow(
    emulator, store, tmp_path
):
    path = roster(tmp_path / "r.csv", [(nip(i), f"Nur Aini{i}", "BIMAS_ISLAM") for i in range(5)])
    first = engine(emulator, store, tmp_path, apply=False).run(source(path))
    assert first.estimate is not None
    assert not first.estimate.measured
    # Any time at all is "slow" against a threshold of a microsecond per user.
    report = engine(emulator, store, tmp_path, slow_user_seconds=1e-6).run(source(path))
    assert report.slow_user_seconds is not None
    assert set(store.value("moodle_rates")) >= {"create", "cohort_add"}
    rerun = engine(emulator, store, tmp_path, apply=False).run(
        source(roster(tmp_path / "r2.csv", [(nip(9), "Nur Baru", "BIMAS_ISLAM")], NOW + 1))
    )
    assert rerun.estimate is not None
    assert rerun.estimate.measured


def test_email_changes_are_measured_apart_and_a_slow_one_is_said(emulator, store, tmp_path):
    """Moodle checks a changed email against every account, as it does for a created one: the
    time per email-changed user is its own rate, and a slow one is reported. Changes without
    an email go in batches of their own, measured as plain updates, never called slow."""
    rows = [(nip(i), f"Nur Aini{i}", "BIMAS_ISLAM") for i in range(6)]
    first = engine(emulator, store, tmp_path, slow_user_seconds=60.0).run(
        source(roster(tmp_path / "r.csv", rows))
    )
    assert first.slow_user_seconds is None
    assert "update_email" not in store.value("moodle_rates")
    renamed = roster(tmp_path / "r2.csv", [(n, f"{name} Baru", u) for n, name, u in rows], NOW + 1)
    names_only = engine(emulator, store, tmp_path, slow_user_seconds=1e-6).run(source(renamed))
    assert names_only.planned["update"] == 6
    assert names_only.slow_user_seconds is None
    assert "update_email" not in store.value("moodle_rates")
    # Two people change their email, two their name only.
    lines = renamed.read_text().splitlines()
    for i in (1, 2):
        lines[i] = lines[i].replace("@kemenag.example", "@baru.kemenag.example")
    for i in (3, 4):
        lines[i] = lines[i].replace(" Baru,", " Lagi,")
    renamed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.utime(renamed, (NOW + 2, NOW + 2))
    run = engine(emulator, store, tmp_path, slow_user_seconds=1e-6)
    mixed = run.run(source(renamed))
    assert mixed.exit_code == 0, mixed.to_dict()
    assert mixed.planned["update"] == 4
    # Not one batch of four: the email changes went alone.
    assert run.caller.records == {"update": 2, "update_email": 2}
    assert mixed.slow_user_seconds is not None
    assert mixed.slow_user_seconds == store.value("moodle_rates")["update_email"]
    assert {"update", "update_email"} <= set(store.value("moodle_rates"))


def test_a_normal_site_is_not_called_slow(emulator, store, tmp_path):
    path = roster(tmp_path / "r.csv", [(nip(1), "Nur Aini", "BIMAS_ISLAM")])
    report = engine(emulator, store, tmp_path, slow_user_seconds=60.0).run(source(path))
    assert report.slow_user_seconds is None


MAPPINGS = Path(__file__).parents[2] / "mappings"
#: The one person of :func:`gap_source`, whose assessed gap the shipped tables close with
#: SOS-KULT-23.
GAP_PERSON = (nip(1), "Nur Aini", "BIMAS_ISLAM")


def gap_source(emulator: Emulator, tmp_path: Path) -> tuple[Source, Path]:
    """A site with the SOS-KULT courses, and a run with assessments for :data:`GAP_PERSON`
    (and the assessments file, to change it)."""
    from moodle_bridge.sync.gaps import GapInputs

    client_of(emulator, "admin").call(
        "core_course_create_courses",
        {
            "courses": [
                {"fullname": n, "shortname": n, "categoryid": 1}
                for n in ("SOS-KULT-23", "SOS-KULT-12")
            ]
        },
    )
    path = tmp_path / "r.csv"
    path.write_text(
        "nip,nama,email,unit,satker,jabatan,golongan,status\n"
        f"{nip(1)},Nur Aini,a@kemenag.example,BIMAS_ISLAM,,Analis Kepegawaian Ahli Muda,,\n",
        encoding="utf-8",
    )
    os.utime(path, (NOW, NOW))
    assessments = tmp_path / "a.csv"
    assessments.write_text(f"nip,kompetensi,level,tanggal\n{nip(1)},SOS-KULT,2,2026-01-10\n")
    today = __import__("datetime").date(2026, 8, 20)
    unit = discover_units().require("generic")
    return Source("generic", unit, path, GapInputs(assessments, MAPPINGS, today)), assessments


def test_the_gap_engine_is_skipped_when_nothing_it_reads_changed(emulator, store, tmp_path):
    """A nightly run with the same roster, assessments, tables and ledger plans no gaps: the
    answer would be the same. New assessments make it plan again."""
    run_source, assessments = gap_source(emulator, tmp_path)

    def run() -> object:
        return engine(emulator, store, tmp_path, mappings_dir=MAPPINGS).run(run_source)

    first = run()
    assert not first.gaps_unchanged
    assert first.gap_plan is not None
    assert first.plan.summary()["enrol_enrol"] == 1
    second = run()
    assert second.gaps_unchanged
    assert second.gap_plan is None
    assert second.plan.is_empty
    assessments.write_text(f"nip,kompetensi,level,tanggal\n{nip(1)},SOS-KULT,3,2026-08-01\n")
    third = run()
    assert not third.gaps_unchanged
    assert third.gap_plan is not None


# --- adopting a cohort goes through the confirmation ----------------------------------------------
PENDIS = [(nip(i), f"Siti Pendis{i}", "PENDIS") for i in range(3)]


def pendis_joins(report) -> list[str]:
    assert report.plan is not None
    return [m.nip for m in report.plan.member_adds if m.cohort == "unit:PENDIS"]


def test_a_declined_adoption_adopts_nothing_and_the_next_sync_leaves_the_cohort_alone(
    emulator, store, tmp_path
):
    path = roster(tmp_path / "r.csv", PENDIS)
    cohort_id = emulator.world.cohort_idnumber_index["unit:PENDIS"]
    members = set(emulator.world.cohort_member_sets[cohort_id])
    asked = []

    def decline(_plan, report) -> bool:
        asked.append([c.idnumber for c in report.cohorts_to_adopt])
        return False

    declined = engine(emulator, store, tmp_path, adopt_cohorts=True).run(
        source(path), confirm=decline
    )
    assert asked == [["unit:PENDIS"]]
    assert declined.declined
    assert sorted(pendis_joins(declined)) == [n for n, _name, _unit in PENDIS]
    assert declined.adopted_cohorts == []
    assert declined.to_dict()["cohorts_to_adopt"][0]["idnumber"] == "unit:PENDIS"
    row = store.cohort("unit:PENDIS")
    assert row is None or not (row.adopted or row.created_by_bridge)
    plain = engine(emulator, store, tmp_path).run(source(path))
    assert plain.foreign_cohorts == ["unit:PENDIS"]
    assert plain.cohorts_to_adopt == []
    assert pendis_joins(plain) == []
    assert emulator.world.cohort_member_sets[cohort_id] == members
    assert store.cohort("unit:PENDIS").adopted is False


def test_a_guarded_run_adopts_nothing(emulator, store, tmp_path):
    rows = [(nip(i), f"Nur Aini{i}", "PENDIS") for i in range(30)]
    engine(emulator, store, tmp_path).run(source(roster(tmp_path / "r.csv", rows)))
    half = roster(tmp_path / "half.csv", rows[:10], mtime=NOW + 60)
    report = engine(emulator, store, tmp_path, adopt_cohorts=True, absent_grace_days=0).run(
        source(half), confirm=lambda _plan, _report: True
    )
    assert report.exit_code == 3
    assert [c.idnumber for c in report.cohorts_to_adopt] == ["unit:PENDIS"]
    assert report.adopted_cohorts == []
    assert store.cohort("unit:PENDIS").adopted is False


def test_a_plan_adopts_nothing(emulator, store, tmp_path):
    report = engine(emulator, store, tmp_path, apply=False, adopt_cohorts=True).run(
        source(roster(tmp_path / "r.csv", PENDIS))
    )
    assert [c.idnumber for c in report.cohorts_to_adopt] == ["unit:PENDIS"]
    assert report.adopted_cohorts == []
    assert store.cohorts() == {}


def test_a_confirmed_adoption_is_recorded_after_the_confirmation_and_used(
    emulator, store, tmp_path
):
    seen_at_confirmation = []

    def accept(_plan, report) -> bool:
        seen_at_confirmation.append(store.cohort("unit:PENDIS"))
        return True

    report = engine(emulator, store, tmp_path, adopt_cohorts=True).run(
        source(roster(tmp_path / "r.csv", PENDIS)), confirm=accept
    )
    assert seen_at_confirmation == [None]
    assert report.exit_code == 0, report.to_dict()
    assert report.adopted_cohorts == ["unit:PENDIS"]
    assert store.cohort("unit:PENDIS").adopted is True
    cohort_id = emulator.world.cohort_idnumber_index["unit:PENDIS"]
    ids = {store.accounts()[n].moodle_id for n, _name, _unit in PENDIS}
    assert ids <= emulator.world.cohort_member_sets[cohort_id]


def test_an_adoption_nobody_joins_is_still_asked_about(emulator, store, tmp_path):
    path = roster(tmp_path / "r.csv", PENDIS)
    engine(emulator, store, tmp_path).run(source(path))
    # An administrator puts the people into the site's cohort by hand: adopting it now joins
    # nobody, and is still a change the operator must confirm.
    cohort_id = emulator.world.cohort_idnumber_index["unit:PENDIS"]
    moodle_cohorts.add_cohort_members(
        client_of(emulator, "admin"),
        [
            moodle_cohorts.CohortMemberRef.by_ids(cohort_id, a.moodle_id)
            for a in store.accounts().values()
        ],
    )
    asked = []
    report = engine(emulator, store, tmp_path, adopt_cohorts=True, reconcile=True).run(
        source(path), confirm=lambda plan, _report: asked.append(plan.is_empty) or False
    )
    assert asked == [True]
    assert report.declined
    assert store.cohort("unit:PENDIS").adopted is False


# --- adopting existing accounts: recorded only once confirmed ---------------------------------
def existing_account(emulator: Emulator, person: tuple[str, str, str]) -> int:
    """An account an administrator made by hand for a roster person (NIP as idnumber)."""
    nip_, name, _unit = person
    first, last = name.split(" ", 1)
    created = moodle_users.create_users(
        client_of(emulator, "admin"),
        [
            moodle_users.NewUser(
                username=f"hand.{nip_}",
                firstname=first,
                lastname=last,
                email=f"old.{nip_}@kemenag.example",
                idnumber=nip_,
                createpassword=True,
            )
        ],
    )
    return created[0].id


def test_a_plan_proposes_the_accounts_to_adopt_and_records_nothing(emulator, store, tmp_path):
    moodle_id = existing_account(emulator, PENDIS[0])
    report = engine(emulator, store, tmp_path, apply=False, adopt=True).run(
        source(roster(tmp_path / "r.csv", PENDIS))
    )
    assert [(a.nip, a.moodle_id) for a in report.accounts_to_adopt] == [(PENDIS[0][0], moodle_id)]
    assert report.adopted == 0
    assert report.to_dict()["accounts_to_adopt"] == 1
    assert report.plan is not None
    # The plan is made as if adopted: two creates, and one update of the hand-made account
    # sending only what the roster changes (its email), never a second account for the NIP.
    assert sorted(c.nip for c in report.plan.creates) == [n for n, _name, _u in PENDIS[1:]]
    change = next(c for c in report.plan.changes if c.nip == PENDIS[0][0])
    assert change.moodle_id == moodle_id
    assert change.changes.get("email") == f"{PENDIS[0][0]}@kemenag.example"
    assert "firstname" not in change.changes
    assert store.accounts() == {}


def test_a_declined_adoption_leaves_the_account_someone_elses(emulator, store, tmp_path):
    moodle_id = existing_account(emulator, PENDIS[0])
    before = dict(emulator.world.users[moodle_id])
    path = roster(tmp_path / "r.csv", PENDIS)
    asked = []
    declined = engine(emulator, store, tmp_path, adopt=True).run(
        source(path), confirm=lambda _plan, report: asked.append(report.accounts_to_adopt) or False
    )
    assert [[a.nip for a in accounts] for accounts in asked] == [[PENDIS[0][0]]]
    assert declined.declined
    assert declined.adopted == 0
    assert store.accounts() == {}
    assert emulator.world.users[moodle_id] == before
    # Without --adopt, the next run never touches the hand-made account nor owns it.
    engine(emulator, store, tmp_path).run(source(path))
    assert store.accounts()[PENDIS[0][0]].moodle_id != moodle_id
    assert emulator.world.users[moodle_id] == before


def test_a_confirmed_adoption_is_recorded_after_the_confirmation(emulator, store, tmp_path):
    moodle_id = existing_account(emulator, PENDIS[0])
    owned_at_confirmation = []

    def accept(_plan, _report) -> bool:
        owned_at_confirmation.append(dict(store.accounts()))
        return True

    report = engine(emulator, store, tmp_path, adopt=True).run(
        source(roster(tmp_path / "r.csv", PENDIS)), confirm=accept
    )
    assert owned_at_confirmation == [{}]
    assert report.exit_code == 0, report.to_dict()
    assert report.adopted == 1
    account = store.accounts()[PENDIS[0][0]]
    assert (account.moodle_id, account.how) == (moodle_id, "adopted")
    assert emulator.world.users[moodle_id]["email"] == f"{PENDIS[0][0]}@kemenag.example"
    again = engine(emulator, store, tmp_path).run(source(roster(tmp_path / "r.csv", PENDIS)))
    assert again.plan is not None
    assert again.plan.is_empty


def test_an_adoption_with_assessments_leaves_the_persons_own_enrolments_alone(
    emulator, store, tmp_path
):
    """The person to adopt already has the course their gap wants, enrolled by an
    administrator: the plan enrols nobody, and nothing of theirs is recorded before the
    adoption is confirmed."""
    run_source, _assessments = gap_source(emulator, tmp_path)
    moodle_id = existing_account(emulator, GAP_PERSON)
    course = client_of(emulator, "admin").call(
        "core_course_get_courses_by_field", {"field": "shortname", "value": "SOS-KULT-23"}
    )["courses"][0]["id"]
    client_of(emulator, "admin").call(
        "enrol_manual_enrol_users",
        {"enrolments": [{"roleid": 5, "userid": moodle_id, "courseid": course}]},
    )

    def run(confirm):
        options = {"mappings_dir": MAPPINGS, "adopt": True}
        return engine(emulator, store, tmp_path, **options).run(run_source, confirm=confirm)

    declined = run(lambda _plan, _report: False)
    assert declined.declined
    assert declined.plan.summary()["enrol_enrol"] == 0
    assert store.accounts() == {}
    assert store.enrolments() == {}
    accepted = run(lambda _plan, _report: True)
    assert accepted.exit_code == 0, accepted.to_dict()
    assert store.accounts()[GAP_PERSON[0]].moodle_id == moodle_id
    assert accepted.plan.summary()["enrol_enrol"] == 0


def test_an_adopted_account_moodle_already_agrees_with_is_seen_and_named(
    emulator, store, tmp_path
):
    """No field to change, so the executor never touches the account: the run still records
    the roster date that lists the person (their absence is counted from it) and names them."""
    moodle_id = existing_account(emulator, PENDIS[0])
    path = roster(tmp_path / "r.csv", PENDIS)
    planned = engine(emulator, store, tmp_path, apply=False, adopt=True).run(source(path))
    change = next(c for c in planned.plan.changes if c.nip == PENDIS[0][0])
    user = emulator.world.users[moodle_id]
    for field_, value in change.changes.items():
        if field_.startswith("profile_field_"):
            user.setdefault("customfields", {})[field_.removeprefix("profile_field_")] = value
        else:
            user[field_] = value

    report = engine(emulator, store, tmp_path, adopt=True).run(source(path))

    assert report.exit_code == 0, report.to_dict()
    assert all(c.nip != PENDIS[0][0] for c in report.plan.changes)
    assert report.adopted == 1
    assert store.accounts()[PENDIS[0][0]].seen_at == NOW
    assert report.names[PENDIS[0][0]] == PENDIS[0][1]


def test_a_guarded_adoption_names_the_account_in_the_proposed_suspensions(
    emulator, store, tmp_path
):
    moodle_id = existing_account(emulator, PENDIS[0])
    path = tmp_path / "r.csv"
    path.write_text(
        "nip,nama,email,unit,satker,jabatan,golongan,status\n"
        f"{PENDIS[0][0]},{PENDIS[0][1]},x@kemenag.example,PENDIS,,,,PENSIUN\n"
        f"{PENDIS[1][0]},{PENDIS[1][1]},y@kemenag.example,PENDIS,,,,\n",
        encoding="utf-8",
    )
    os.utime(path, (NOW, NOW))

    report = engine(emulator, store, tmp_path, adopt=True, guards=Guards(suspend_max=0)).run(
        source(path)
    )

    assert report.exit_code == 3
    assert report.proposed_removals is not None
    lines = report.proposed_removals.read_text(encoding="utf-8").splitlines()
    assert lines[1:] == [f"{PENDIS[0][0]},{moodle_id},PENDIS,status PENSIUN"]
    assert store.accounts() == {}
