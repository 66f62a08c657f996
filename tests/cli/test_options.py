"""One meaning per option: ``--plugin`` picks the roster reader, ``--unit`` names a unit code.

``--unit`` is still the old name of ``--plugin`` in ``plan`` and ``sync`` for one release, with
a warning; everywhere else it is a unit code in any case, and an unknown one stops the command
(exit 2) instead of writing empty files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moodle_bridge.emulator import Emulator
from moodle_bridge.emulator.server import EmulatorHTTPServer
from moodle_bridge.store import LedgerEntry, NewAccount, Store
from tests.cli.conftest import EMULATOR_NOTE, NIP, Workspace, one_line

OTHER_NIP = "198203152006042002"
JAN_2026 = 1_767_225_600  # 2026-01-01 07:00 WIB
SITE = {"MOODLE_BRIDGE_URL": "http://127.0.0.1:9", "MOODLE_BRIDGE_TOKEN": "tok-options-1"}


def plan(workspace: Workspace, *choice: str) -> tuple[int, str, str]:
    result = workspace.run("plan", *choice, "--roster", str(workspace.roster), "--emulator",
                           "--json")  # fmt: skip
    return result.exit_code, result.stdout, result.stderr


# --- --plugin and its old name ------------------------------------------------------------------
def test_plan_and_sync_take_the_plugin_with_plugin(workspace: Workspace):
    code, stdout, stderr = plan(workspace, "--plugin", "generic")
    assert code == 0, stderr
    assert json.loads(stdout)["people"] == 1
    # Nothing on stderr but where the throwaway state of --emulator was, and it is gone.
    (note,) = stderr.splitlines()
    assert note.startswith(EMULATOR_NOTE)
    assert str(workspace.state) in note  # the configured state, named as not opened
    assert not Path(note.removeprefix(EMULATOR_NOTE).split(",")[0]).exists()


@pytest.mark.parametrize("command", ["plan", "sync"])
def test_unit_is_a_deprecated_alias_in_plan_and_sync(workspace: Workspace, command: str):
    args = [command, "--unit", "generic", "--roster", str(workspace.roster), "--emulator",
            "--json", *(["--yes"] if command == "sync" else [])]  # fmt: skip
    result = workspace.run(*args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["people"] == 1
    warning = one_line(result)
    assert "--unit is deprecated" in warning
    assert "use --plugin generic" in warning


def test_plugin_and_a_different_alias_are_refused(workspace: Workspace):
    code, _, stderr = plan(workspace, "--plugin", "generic", "--unit", "pendis")
    assert code == 2
    assert "give --plugin only" in stderr


def test_plan_without_a_plugin_is_a_usage_error(workspace: Workspace):
    code, _, stderr = plan(workspace)
    assert code == 2
    assert "Missing option '--plugin'" in stderr


@pytest.mark.parametrize("command", ["gaps", "explain"])
def test_gaps_and_explain_know_only_plugin(workspace: Workspace, command: str):
    nip = [NIP] if command == "explain" else []
    files = ["--roster", str(workspace.roster), "--assessments", str(workspace.assessments)]
    result = workspace.run(command, *nip, "--unit", "generic", *files)
    assert result.exit_code == 2
    assert "No such option '--unit'" in result.stderr


def test_an_unknown_plugin_exits_2_in_one_line(workspace: Workspace):
    code, _, stderr = plan(workspace, "--plugin", "nosuch")
    assert code == 2
    assert len(stderr.splitlines()) == 1
    assert "nosuch" in stderr


# --- --unit as a unit code ----------------------------------------------------------------------
def ledger(workspace: Workspace, unit: str = "PENDIS") -> None:
    with Store.open(workspace.state / "state.sqlite3") as store:
        record = {"firstname": "Nur", "lastname": "Aini", "profile_field_satker": "MAN 1"}
        store.record_accounts([
            NewAccount(NIP, 10, NIP, unit, "h", record=record),
            NewAccount(OTHER_NIP, 11, OTHER_NIP, "SETJEN", "h", record=record),
        ])
        store.record_completions([LedgerEntry(NIP, "MAN-INTEG-12", JAN_2026, 20, "MAN-INTEG", 2)])


def report(workspace: Workspace, unit: str, out: Path) -> tuple[int, str, str]:
    result = workspace.run("report", "--unit", unit, "--year", "2026", "--out", str(out),
                           "--json")  # fmt: skip
    return result.exit_code, result.stdout, result.stderr


def test_report_takes_a_unit_code_in_any_case(workspace: Workspace):
    ledger(workspace)
    upper = report(workspace, "PENDIS", workspace.root / "upper")
    lower = report(workspace, "pendis", workspace.root / "lower")
    assert upper[0] == lower[0] == 0, (upper, lower)
    first, second = json.loads(upper[1]), json.loads(lower[1])
    assert (first["people"], first["trainings"]) == (1, 1)
    assert (second["people"], second["trainings"]) == (1, 1)
    assert [Path(p).name for p in first["files"]] == [Path(p).name for p in second["files"]]
    assert all(Path(p).name.startswith("PENDIS-2026") for p in second["files"])


def test_report_of_an_unknown_unit_exits_2_listing_the_known_ones(workspace: Workspace):
    ledger(workspace)
    out = workspace.root / "out"
    result = workspace.run("report", "--unit", "PENDSI", "--year", "2026", "--out", str(out))
    assert result.exit_code == 2
    line = one_line(result)
    assert "unknown unit PENDSI" in line
    assert "PENDIS" in line
    assert "SETJEN" in line
    assert "(or ALL)" in line
    assert not out.exists(), "no empty report files for a typo"


def test_a_unit_known_only_from_the_state_is_accepted(workspace: Workspace):
    tables = workspace.root / "tables"
    tables.mkdir()
    (tables / "units.csv").write_text("unit,annual_cap\nPENDIS,4\n", encoding="utf-8")
    workspace.settings(f'[enrol]\nmappings_dir = "{tables}"\n')
    ledger(workspace, unit="KANWIL_JATENG")
    code, stdout, stderr = report(workspace, "kanwil_jateng", workspace.root / "out")
    assert code == 0, stderr
    assert json.loads(stdout)["people"] == 1
    code, _, stderr = report(workspace, "KANWIL_JATIM", workspace.root / "out2")
    assert code == 2
    assert "BIMAS" not in stderr  # these tables list PENDIS only
    assert "KANWIL_JATENG, PENDIS, SETJEN" in stderr


def test_report_of_all_units(workspace: Workspace):
    ledger(workspace)
    code, stdout, stderr = report(workspace, "all", workspace.root / "out")
    assert code == 0, stderr
    assert json.loads(stdout)["people"] == 2


def test_completions_pull_takes_unit_codes_in_any_case(
    workspace: Workspace, emulator: Emulator, served: EmulatorHTTPServer
):
    ledger(workspace)
    # Nothing is pending, so the one call is the site's identity: only the unit codes are
    # checked.
    here = {"MOODLE_BRIDGE_URL": served.url, "MOODLE_BRIDGE_TOKEN": emulator.token_for("bridge")}
    result = workspace.run("completions", "pull", "--unit", "pendis", "--unit", "Setjen",
                           "--json", env=here)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["people_asked"] == 0
    assert [name for name, _ in emulator.calls] == ["core_webservice_get_site_info"]
    # An unknown code stops the command before any call (the site here is unreachable).
    result = workspace.run("completions", "pull", "--unit", "pendis", "--unit", "nope", env=SITE)
    assert result.exit_code == 2
    assert "unknown unit NOPE" in one_line(result)
