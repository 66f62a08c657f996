"""``moodle-bridge plan``/``sync`` end to end: CliRunner -> HTTP -> the Moodle emulator.

The acceptance list of issue 3: first sync, no-change second sync, partial updates,
suspension and return, the suspension guard, ownership, bisection of a refused record,
reconcile, file formats, a missing custom profile field and a revoked token.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from pathlib import Path

import openpyxl

from moodle_bridge.emulator import Emulator, default_seed
from moodle_bridge.emulator.server import running
from tests.conftest import SECRET_TOKEN
from tests.e2e.conftest import (
    HEADER,
    NO_GRACE,
    SITE_INFO,
    UNITS,
    Bridge,
    Run,
    nip,
    people,
    person,
)

ZERO_PLAN = {
    "create": 0,
    "update": 0,
    "suspend": 0,
    "unsuspend": 0,
    "cohort_create": 0,
    "cohort_add": 0,
    "cohort_remove": 0,
    "enrol_enrol": 0,
    "enrol_suspend": 0,
    "enrol_reactivate": 0,
    "enrol_retime": 0,
    "move": 0,
    "cohort_remove_held": 0,
    "absent": 0,
    "kept": 0,
}
#: A seeded Moodle account the bridge never created (Ahmad Fauzi, SETJEN).
SEEDED_NIP = "197501012000031001"


def synced(bridge: Bridge, ids: range, *options: str) -> Path:
    """Sync ``ids`` into a fresh site and check it went through cleanly."""
    roster = bridge.roster(people(ids))
    run = bridge.sync(roster, *options)
    assert run.exit_code == 0, run.output
    return roster


# --- 1. first sync ---------------------------------------------------------------------------
def test_first_sync_creates_everyone_reports_bad_rows_and_fills_unit_cohorts(bridge: Bridge):
    rows = people(range(30))
    # Bad rows at known places (data row k is spreadsheet row k + 2: the header is row 1).
    bad = {
        3: person(900, nip="19800101200501100"),  # 17 digits
        10: person(901, email="not-an-email"),
        17: person(902, unit=""),
        25: person(903, status="ENTAHLAH"),  # unknown: a warning, not a refusal
        31: person(904, nip="1.98001E+17"),
    }
    for index in sorted(bad):
        rows.insert(index, bad[index])
    inactive = person(905, status="PENSIUN")  # not active and no account: not created
    rows.append(inactive)

    # The site's own unit:PENDIS and unit:SETJEN are joined only when adopted.
    run = bridge.sync(bridge.roster(rows), "--adopt-cohorts")

    assert run.exit_code == 1, run.output
    assert run.data is not None
    refused = [i + 2 for i in sorted(bad) if i != 25]
    assert sorted(e["row"] for e in run.data["row_errors"]) == refused
    assert [e["column"] for e in run.data["row_warnings"] if e["row"] == 27] == ["status"]
    assert run.data["record_errors"] == []
    assert run.data["applied"]["create"] == 30
    for i in range(30):
        user = bridge.user(nip(i))
        assert user["username"] == nip(i)
        assert user["email"] == f"p{i}@kemenag.example"
        assert (user["firstname"], user["lastname"]) == ("Ahmad", f"Pegawai{i:03d}")
        assert user["suspended"] == 0
        assert user["customfields"]["unit"] == UNITS[i % 3]
        assert user["customfields"]["satker"] == f"Kanwil Provinsi {i % 7}"
        assert user["id"] in bridge.cohort_members(UNITS[i % 3])
        for other in UNITS:
            if other != UNITS[i % 3]:
                assert user["id"] not in bridge.cohort_members(other)
    for refused in [*bad.values(), inactive]:
        assert bridge.users_by_idnumber(refused["nip"]) == []


# --- 2. second sync --------------------------------------------------------------------------
def test_second_sync_with_the_same_roster_writes_nothing(bridge: Bridge):
    roster = synced(bridge, range(60))

    again = bridge.sync(roster)

    assert again.exit_code == 0, again.output
    assert again.data is not None
    assert again.data["planned"] == ZERO_PLAN
    assert again.writes == []
    assert [name for name, _ in again.calls] == [SITE_INFO]  # the site binding, nothing more
    assert again.data["applied"] == {}


def _updates_sent(run: Run) -> dict[int, dict[str, object]]:
    """What the ``core_user_update_users`` requests asked to change, by user id.

    Custom profile fields are gathered as ``{"customfields": {shortname: value}}``.
    """
    sent: dict[int, dict[str, object]] = {}
    for pairs in run.fields("core_user_update_users"):
        plain: dict[str, dict[str, str]] = {}
        custom: dict[str, dict[str, dict[str, str]]] = {}
        for key, value in pairs:
            match = re.fullmatch(r"users\[(\d+)\]\[(\w+)\](?:\[(\d+)\]\[(\w+)\])?", key)
            assert match, key
            if match[3] is None:
                plain.setdefault(match[1], {})[match[2]] = value
            else:
                custom.setdefault(match[1], {}).setdefault(match[3], {})[match[4]] = value
        for index, fields in plain.items():
            user_id = int(fields.pop("id"))
            item: dict[str, object] = dict(fields)
            if index in custom:
                item["customfields"] = {c["type"]: c["value"] for c in custom[index].values()}
            assert user_id not in sent, "user updated twice"
            sent[user_id] = item
    return sent


# --- 3. 5% changed ---------------------------------------------------------------------------
def test_five_percent_changed_updates_only_those_fields(bridge: Bridge):
    synced(bridge, range(100))
    before = {i: bridge.user(nip(i)) for i in range(100)}
    snapshot = {
        i: (u["id"], u["firstname"], u["lastname"], u["email"], dict(u["customfields"]))
        for i, u in before.items()
    }
    email_changed = {5, 40, 77}
    satker_changed = {12, 63}
    rows = []
    for i in range(100):
        row = person(i)
        if i in email_changed:
            row["email"] = f"baru{i}@kemenag.example"
        if i in satker_changed:
            row["satker"] = "Kankemenag Kota Baru"
        rows.append(row)

    run = bridge.sync(bridge.roster(rows))

    assert run.exit_code == 0, run.output
    assert run.data is not None
    assert run.data["planned"] == {**ZERO_PLAN, "update": 5}
    assert run.data["applied"] == {"update": 5}
    updates = [c for c in run.writes if c[0] == "core_user_update_users"]
    assert [c[0] for c in run.writes] == ["core_user_update_users"] * len(updates)
    assert len(updates) >= 1
    # Only the changed field travels, for only the changed people.
    sent = _updates_sent(run)
    ids = {snapshot[i][0]: i for i in range(100)}
    assert {ids[user_id] for user_id in sent} == email_changed | satker_changed
    for user_id, fields in sent.items():
        i = ids[user_id]
        if i in email_changed:
            assert fields == {"email": f"baru{i}@kemenag.example"}
        else:
            assert fields == {"customfields": {"satker": "Kankemenag Kota Baru"}}
    for i in range(100):
        user = bridge.user(nip(i))
        user_id, first, last, email, custom = snapshot[i]
        assert user["id"] == user_id
        assert (user["firstname"], user["lastname"]) == (first, last)
        want_email = f"baru{i}@kemenag.example" if i in email_changed else email
        assert user["email"] == want_email
        want_custom = dict(custom)
        if i in satker_changed:
            want_custom["satker"] = "Kankemenag Kota Baru"
        assert user["customfields"] == want_custom


# --- 4. suspend and return -------------------------------------------------------------------
def test_removed_people_are_suspended_and_come_back_with_the_same_account(bridge: Bridge):
    bridge.configure(NO_GRACE)
    synced(bridge, range(40), "--adopt-cohorts")
    leaver, retiree = nip(7), nip(8)
    ids = {n: bridge.user(n)["id"] for n in (leaver, retiree)}
    rows = [person(i) for i in range(40) if i != 7]
    rows[7] = person(8, status="PENSIUN")  # row of person 8 (person 7 removed before it)
    assert rows[7]["nip"] == retiree

    gone = bridge.sync(bridge.roster(rows), "--allow-suspend", "2")

    assert gone.exit_code == 0, gone.output
    assert gone.data is not None
    assert gone.data["planned"]["suspend"] == 2
    for n in (leaver, retiree):
        user = bridge.user(n)
        assert user["suspended"] == 1
        assert user["id"] == ids[n]
    assert bridge.user(nip(9))["suspended"] == 0

    back = bridge.sync(bridge.roster(people(range(40))))

    assert back.exit_code == 0, back.output
    assert back.data is not None
    assert back.data["planned"]["unsuspend"] == 2
    assert back.data["planned"]["create"] == 0
    for n in (leaver, retiree):
        user = bridge.user(n)  # still exactly one account per NIP
        assert user["suspended"] == 0
        assert user["id"] == ids[n]
        assert user["id"] in bridge.cohort_members(UNITS[int(n[-3:]) % 3])


def test_the_plan_names_who_is_absent_and_who_is_kept_and_why(bridge: Bridge):
    synced(bridge, range(9))
    rows = [person(i) for i in range(9) if i != 3]  # person 3 is missing from the roster
    rows[3] = person(4, nama="S.Pd.")  # person 4's row (row 5) cannot be used
    roster = bridge.roster(rows)

    text = bridge.invoke("plan", "--plugin", "generic", "--roster", str(roster))
    data = bridge.plan(roster).data

    assert text.exit_code == 1, text.output  # the refused row
    assert data is not None
    (absent,) = data["absent"]
    since = dt.date.fromtimestamp(absent["since"])
    assert absent["since_date"] == since.isoformat()
    assert dt.date.fromisoformat(absent["suspend_on_date"]) - since == dt.timedelta(days=14)
    masked = {i: f"{nip(i)[:4]}{'*' * 12}{nip(i)[-2:]}" for i in (3, 4)}
    assert (
        f"  {masked[3]} Ahmad Pegawai003: absent since {absent['since_date']}, suspended on "
        f"{absent['suspend_on_date']}\n" in text.output
    )
    (kept,) = data["kept"]
    assert kept["row"] == 5
    assert (
        f"  {masked[4]} Ahmad Pegawai004: kept unchanged, row 5 refused ({kept['why']})\n"
        in text.output
    )


def test_one_removal_within_the_limit_needs_no_override(bridge: Bridge):
    bridge.configure(NO_GRACE)
    synced(bridge, range(40))  # limit: 5% of 40 = 2
    run = bridge.sync(bridge.roster(people(range(1, 40))))
    assert run.exit_code == 0, run.output
    assert bridge.user(nip(0))["suspended"] == 1


# --- 5. the suspension guard ----------------------------------------------------------------
def _proposed(path: str | None) -> list[str]:
    assert path is not None
    with open(path, newline="", encoding="utf-8") as source:
        return [row["nip"] for row in csv.DictReader(source)]


def test_the_guard_stops_an_empty_roster(bridge: Bridge):
    synced(bridge, range(40))
    empty = bridge.tmp_path / "empty.csv"
    empty.write_text(",".join(HEADER) + "\n", encoding="utf-8")

    run = bridge.sync(empty)

    assert run.exit_code == 3, run.output
    assert run.writes == []
    assert run.data is not None
    assert run.data["guard"]
    # A file with no rows names no unit: nobody is in its scope, so nobody is proposed.
    assert _proposed(run.data["proposed_removals"]) == []
    assert all(bridge.user(nip(i))["suspended"] == 0 for i in range(40))

    # Named on purpose, the units' people would all be suspended: the file proposes them.
    bridge.configure(NO_GRACE)
    scoped = bridge.sync(empty, "--scope", ",".join(UNITS))

    assert scoped.exit_code == 3, scoped.output
    assert scoped.writes == []
    assert scoped.data is not None
    assert scoped.data["guard"]
    proposed = scoped.data["proposed_removals"]
    assert Path(proposed).is_relative_to(bridge.state_dir)
    assert sorted(_proposed(proposed)) == sorted(nip(i) for i in range(40))
    assert all(bridge.user(nip(i))["suspended"] == 0 for i in range(40))


def test_the_guard_stops_a_halved_roster(bridge: Bridge):
    bridge.configure(NO_GRACE)
    synced(bridge, range(40))

    run = bridge.sync(bridge.roster(people(range(20))))

    assert run.exit_code == 3, run.output
    assert run.writes == []
    assert run.data is not None
    assert "--allow-suspend" in run.data["guard"]
    proposed = run.data["proposed_removals"]
    assert Path(proposed).is_relative_to(bridge.state_dir)
    assert sorted(_proposed(proposed)) == sorted(nip(i) for i in range(20, 40))
    assert all(bridge.user(nip(i))["suspended"] == 0 for i in range(40))

    too_few = bridge.sync(bridge.roster(people(range(20))), "--allow-suspend", "19")
    assert too_few.exit_code == 3, too_few.output
    assert too_few.writes == []

    accepted = bridge.sync(bridge.roster(people(range(20))), "--allow-suspend", "20")
    assert accepted.exit_code == 0, accepted.output
    assert [bridge.user(nip(i))["suspended"] for i in range(40)] == [0] * 20 + [1] * 20


# --- 5b. one state, one site ----------------------------------------------------------------
def test_every_command_refuses_a_state_bound_to_another_site(bridge: Bridge, tmp_path: Path):
    roster = synced(bridge, range(6))
    bound = bridge.emulator.world.settings["wwwroot"]
    units = tmp_path / "units.toml"
    units.write_text(f'[[source]]\nplugin = "generic"\nroster = "{roster.name}"\n')
    # Run once on its own site: unchanged, the source would be skipped there.
    assert bridge.invoke("run", "--manifest", str(units), "--yes").exit_code == 0
    other = Emulator(default_seed())
    other.world.settings["wwwroot"] = "https://lms.other.example"
    assert bound != "https://lms.other.example"
    (tmp_path / "elsewhere").mkdir()
    with running(other) as served:
        elsewhere = Bridge(other, served, tmp_path / "elsewhere")
        elsewhere.state_dir = bridge.state_dir  # the operator's slip: the first site's state
        for command in (
            ("sync", "--plugin", "generic", "--roster", str(roster), "--yes"),
            ("plan", "--plugin", "generic", "--roster", str(roster)),
            ("completions", "pull"),
            ("runs", "revert", "1", "--yes"),
            ("run", "--manifest", str(units), "--yes"),
        ):
            run = elsewhere.invoke(*command)

            assert run.exit_code == 2, (command, run.output)
            assert "this state belongs to the Moodle site" in run.output, command
            assert f" at {bound}, not to " in run.output, command
            assert "https://lms.other.example" in run.output, command
            assert [name for name, _ in run.calls] == [SITE_INFO], command


# --- 6. accounts the bridge does not own -----------------------------------------------------
def _seeded() -> dict[str, str]:
    return person(
        0,
        nip=SEEDED_NIP,
        nama="Ahmad Fauzi Baru",
        email="fauzi.baru@kemenag.example",
        unit="SETJEN",
        satker="Biro Baru",
    )


def _frozen(user: dict[str, object]) -> dict[str, object]:
    keys = ("id", "username", "firstname", "lastname", "email", "suspended", "auth", "idnumber")
    return {**{k: user[k] for k in keys}, "customfields": dict(user["customfields"])}  # type: ignore[call-overload]


def test_an_unowned_account_is_never_touched_without_adopt(bridge: Bridge):
    seeded = bridge.user(SEEDED_NIP)
    before = _frozen(seeded)
    # Also an account made by hand through the web service, for a NIP of the roster.
    hand_nip = nip(20)
    bridge.admin_call(
        "core_user_create_users",
        {
            "users[0][username]": hand_nip,
            "users[0][idnumber]": hand_nip,
            "users[0][firstname]": "Dibuat",
            "users[0][lastname]": "Manual",
            "users[0][email]": "manual20@kemenag.example",
            "users[0][createpassword]": "1",
        },
    )
    hand_before = _frozen(bridge.user(hand_nip))
    cohorts_before = set(bridge.emulator.world.user_cohorts[seeded["id"]])
    rows = [*people(range(10)), _seeded(), person(20)]

    run = bridge.sync(bridge.roster(rows))

    assert run.exit_code == 1, run.output
    assert run.data is not None
    refused = {e["row"]: e for e in run.data["record_errors"] if e["action"] == "create"}
    assert set(refused) == {12, 13}  # the seeded person's row and person 20's row
    for error in refused.values():
        assert error["errorcode"] == "invalidparameter"
        assert "--adopt" in error["reason"]
    assert _frozen(bridge.user(SEEDED_NIP)) == before
    assert _frozen(bridge.user(hand_nip)) == hand_before

    # Dropping them from the roster must not suspend accounts the bridge does not own.
    run = bridge.sync(bridge.roster(people(range(10))), "--allow-suspend", "5")
    assert run.exit_code == 0, run.output
    assert _frozen(bridge.user(SEEDED_NIP)) == before
    assert _frozen(bridge.user(hand_nip)) == hand_before
    world = bridge.emulator.world
    assert world.user_cohorts[before["id"]] == cohorts_before  # type: ignore[index]


def test_adopt_takes_over_an_existing_account_and_updates_it(bridge: Bridge):
    seeded_id = bridge.user(SEEDED_NIP)["id"]
    rows = [*people(range(10)), _seeded()]

    run = bridge.sync(bridge.roster(rows), "--adopt")

    assert run.exit_code == 0, run.output
    assert run.data is not None
    assert run.data["adopted"] == 1
    assert run.data["record_errors"] == []
    user = bridge.user(SEEDED_NIP)  # still one account for the NIP
    assert user["id"] == seeded_id
    assert f"{user['firstname']} {user['lastname']}" == "Ahmad Fauzi Baru"
    assert user["email"] == "fauzi.baru@kemenag.example"
    assert user["customfields"]["satker"] == "Biro Baru"
    assert user["customfields"]["unit"] == "SETJEN"
    assert user["id"] in bridge.cohort_members("SETJEN")

    again = bridge.sync(bridge.roster(rows))
    assert again.exit_code == 0, again.output
    assert again.writes == []


# --- 7. one bad record in 200 ----------------------------------------------------------------
def test_one_record_moodle_refuses_in_a_batch_of_200(bridge: Bridge):
    bridge.admin_call(
        "core_user_create_users",
        {
            "users[0][username]": "someone.else",
            "users[0][firstname]": "Orang",
            "users[0][lastname]": "Lain",
            "users[0][email]": "p137@kemenag.example",
            "users[0][createpassword]": "1",
        },
    )
    rows = people(range(200))

    run = bridge.sync(bridge.roster(rows))

    assert run.exit_code == 1, run.output
    assert run.data is not None
    assert run.data["applied"]["create"] == 199
    errors = [e for e in run.data["record_errors"] if e["action"] == "create"]
    assert len(errors) == 1
    assert errors[0]["row"] == 137 + 2
    assert errors[0]["errorcode"] == "invalidparameter"
    assert errors[0]["action"] == "create"
    assert "email" in errors[0]["reason"]
    for i in range(200):
        assert len(bridge.users_by_idnumber(nip(i))) == (0 if i == 137 else 1)
    assert run.count("core_user_create_users") <= 1 + 2 * math.ceil(math.log2(200))


def test_a_record_moodle_refuses_is_reported_once(bridge: Bridge):
    """The person whose account could not be created is one record error, not two: their
    cohort membership cannot be added either, but that follows from the refusal."""
    bridge.admin_call(
        "core_user_create_users",
        {
            "users[0][username]": "someone.else",
            "users[0][firstname]": "Orang",
            "users[0][lastname]": "Lain",
            "users[0][email]": "p7@kemenag.example",
            "users[0][createpassword]": "1",
        },
    )

    run = bridge.sync(bridge.roster(people(range(20))))

    assert run.exit_code == 1, run.output
    assert run.data is not None
    assert [(e["action"], e["row"]) for e in run.data["record_errors"]] == [("create", 9)]


# --- 8. reconcile ----------------------------------------------------------------------------
def test_reconcile_restores_a_name_changed_by_hand(bridge: Bridge):
    roster = synced(bridge, range(12))
    user = bridge.user(nip(4))
    bridge.admin_call(
        "core_user_update_users",
        {"users[0][id]": str(user["id"]), "users[0][firstname]": "Diubah"},
    )
    other = bridge.user(nip(9))
    bridge.admin_call(
        "core_user_update_users",
        {
            "users[0][id]": str(other["id"]),
            "users[0][customfields][0][type]": "satker",
            "users[0][customfields][0][value]": "Diubah Manual",
        },
    )
    assert bridge.user(nip(4))["firstname"] == "Diubah"
    assert bridge.user(nip(9))["customfields"]["satker"] == "Diubah Manual"

    trusting = bridge.sync(roster)  # trusts the store: drift is not seen
    assert trusting.exit_code == 0, trusting.output
    assert trusting.writes == []

    run = bridge.sync(roster, "--reconcile")

    assert run.exit_code == 0, run.output
    assert run.data is not None
    assert run.data["planned"] == {**ZERO_PLAN, "update": 2}
    assert bridge.user(nip(4))["firstname"] == "Ahmad"
    assert bridge.user(nip(9))["customfields"]["satker"] == person(9)["satker"]
    assert [c[0] for c in run.writes] == ["core_user_update_users"]
    assert _updates_sent(run) == {
        user["id"]: {"firstname": "Ahmad"},
        other["id"]: {"customfields": {"satker": person(9)["satker"]}},
    }
    after = bridge.sync(roster, "--reconcile")  # nothing left to restore
    assert after.exit_code == 0, after.output
    assert after.writes == []


# --- 9. file formats -------------------------------------------------------------------------
def test_semicolon_bom_cp1252_and_xlsx_files_give_the_same_plan(bridge: Bridge):
    rows = people(range(12))
    rows[3]["nama"] = "Dra. Renée Nur'aini, M.Pd."
    rows[8]["nama"] = "José O'Brien"
    rows[5]["satker"] = "Kanwil Provinsi Jawa Barat; Bandung"  # a delimiter inside a cell
    bom = bridge.roster(rows, delimiter=";", encoding="utf-8-sig")
    cp1252 = bridge.roster(rows, delimiter=";", encoding="cp1252")
    assert bom.read_bytes().startswith(b"\xef\xbb\xbf")
    assert "é".encode("cp1252") in cp1252.read_bytes()
    xlsx = bridge.tmp_path / "roster.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(list(HEADER))
    for row in rows:
        sheet.append([row[c] for c in HEADER])
    book.save(xlsx)

    plans = {}
    for path in (bom, cp1252, xlsx):
        run = bridge.plan(path)
        assert run.exit_code == 0, run.output
        assert run.writes == []
        assert run.data is not None
        assert run.data["row_errors"] == []
        plans[path.name] = run.data["planned"]
    assert plans[bom.name] == plans[cp1252.name] == plans[xlsx.name]
    assert plans[bom.name]["create"] == 12

    # Same people, same names: once one file is applied, the others plan nothing.
    first = bridge.sync(bom)
    assert first.exit_code == 0, first.output
    renee = bridge.user(nip(3))
    assert "Renée" in f"{renee['firstname']} {renee['lastname']}"
    assert "Nur'aini" in f"{renee['firstname']} {renee['lastname']}"
    assert bridge.user(nip(5))["customfields"]["satker"] == "Kanwil Provinsi Jawa Barat; Bandung"
    assert {nip(i) for i in range(12)} <= set(bridge.emulator.world.idnumber_index)
    for path in (cp1252, xlsx):
        run = bridge.plan(path)
        assert run.exit_code == 0, run.output
        assert run.data is not None
        assert run.data["planned"] == ZERO_PLAN, path.name


# --- 10. a custom profile field Moodle does not have ----------------------------------------
def test_a_missing_custom_profile_field_stops_after_the_first_batch(bridge: Bridge):
    # A small request budget makes several create batches of the 60 people.
    bridge.config.write_text(
        "[moodle]\nmax_attempts = 2\nmax_total_wait = 1\nfield_budget = 200\n"
        '[sync]\nprofile_fields = {unit = "unit", satker = "nosuchfield"}\n',
        encoding="utf-8",
    )

    run = bridge.sync(bridge.roster(people(range(60))))

    assert run.exit_code == 4, run.output
    assert run.data is not None
    assert "nosuchfield" in run.data["stopped"]
    assert "field(s) nosuchfield:" in run.data["stopped"]  # only the missing one is named
    creates = run.count("core_user_create_users")
    assert creates == 1
    created = [i for i in range(60) if bridge.users_by_idnumber(nip(i))]
    assert 0 < len(created) < 60
    human = bridge.invoke(
        "sync", "--plugin", "generic", "--roster", str(bridge.roster(people(range(60)))), "--yes"
    )
    assert human.exit_code == 4
    assert "nosuchfield" in human.output


# --- 11. a revoked token ---------------------------------------------------------------------
def test_a_revoked_token_exits_4_without_printing_it(bridge: Bridge):
    bridge_user = bridge.emulator.world.username_index["bridge"]
    bridge.emulator.world.add_token(SECRET_TOKEN, bridge_user)
    bridge.token = SECRET_TOKEN
    roster = synced(bridge, range(10))
    bridge.emulator.world.revoke_token(SECRET_TOKEN)

    for verbose, args in (([], ["--json"]), ([], []), (["-vv"], [])):
        run = bridge.invoke(
            *verbose,
            "sync",
            "--plugin",
            "generic",
            "--roster",
            str(roster),
            "--yes",
            "--reconcile",
            *args,
        )
        assert run.exit_code == 4, run.output
        assert SECRET_TOKEN not in run.output
        assert SECRET_TOKEN not in run.result.stderr
    for report in bridge.state_dir.rglob("*"):
        if report.is_file() and report.suffix in (".json", ".csv"):
            assert SECRET_TOKEN not in report.read_text(encoding="utf-8", errors="replace")


def test_a_token_revoked_in_the_middle_of_a_run_exits_4_and_the_next_run_finishes(
    bridge: Bridge,
):
    emulator = bridge.emulator
    bridge_user = emulator.world.username_index["bridge"]
    emulator.world.add_token(SECRET_TOKEN, bridge_user)
    bridge.token = SECRET_TOKEN
    bridge.config.write_text(
        "[moodle]\nmax_attempts = 2\nmax_total_wait = 1\nfield_budget = 300\nworkers = 1\n",
        encoding="utf-8",
    )
    original = emulator.handle_form

    def revoke_after_first_create(body: str, query: str = ""):  # type: ignore[no-untyped-def]
        reply = original(body, query)
        if any(name == "core_user_create_users" for name, _ in emulator.calls):
            emulator.world.revoke_token(SECRET_TOKEN)
        return reply

    emulator.handle_form = revoke_after_first_create  # type: ignore[method-assign]
    roster = bridge.roster(people(range(60)))

    run = bridge.sync(roster)

    assert run.exit_code == 4, run.output
    assert SECRET_TOKEN not in run.output
    created_first = [i for i in range(60) if bridge.users_by_idnumber(nip(i))]
    assert 0 < len(created_first) < 60

    emulator.handle_form = original  # type: ignore[method-assign]
    emulator.world.add_token(SECRET_TOKEN, bridge_user)
    again = bridge.sync(roster)
    assert again.exit_code == 0, again.output
    for i in range(60):
        assert len(bridge.users_by_idnumber(nip(i))) == 1
