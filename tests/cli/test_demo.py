"""``moodle-bridge demo``: the README's first quick-start command, at a small size."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from moodle_bridge.cli import main
from moodle_bridge.demo import DEMO_ENTRIES, fresh_workdir


def test_demo_syncs_then_changes_nothing(tmp_path: Path):
    result = CliRunner().invoke(main, ["demo", "--size", "300", "--dir", str(tmp_path),
                                       "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ok"] is True
    first, second = data["first_sync"], data["second_sync"]
    assert first["applied"]["create"] == data["plan"]["planned"]["create"] > 250
    assert first["row_errors"], "the demo roster has dirty rows"
    assert all(error["row"] > 1 for error in first["row_errors"])
    assert sum(n for k, n in second["planned"].items() if k not in ("kept", "absent")) == 0
    # Only the check that the state belongs to this site: no write, nothing read per person.
    assert second["calls"] == {"core_webservice_get_site_info": 1}
    # Output masks NIPs: none of the roster's 18-digit NIPs appears.
    nips = {line.split(",")[0] for line in (tmp_path / "roster.csv").read_text().splitlines()[1:]}
    assert not any(nip in result.output for nip in nips if len(nip) == 18)


def test_a_second_demo_in_the_same_folder_starts_afresh(tmp_path: Path):
    args = ["demo", "--size", "60", "--dir", str(tmp_path / "demo"), "--json"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(main, args)
    assert second.exit_code == 0, second.output
    data = json.loads(second.stdout)
    # A fresh state against a fresh emulator: everyone is created again, nobody suspended.
    assert data["first_sync"]["applied"]["create"] == json.loads(first.stdout)["first_sync"][
        "applied"
    ]["create"]
    assert data["first_sync"]["guard"] is None


def test_a_folder_that_is_not_a_demo_is_never_cleared(tmp_path: Path):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "state.sqlite3").write_text("someone's real state")
    (tmp_path / "notes.txt").write_text("mine")
    result = CliRunner().invoke(main, ["demo", "--size", "5", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "choose another folder with --dir" in result.stderr
    assert (tmp_path / "state" / "state.sqlite3").read_text() == "someone's real state"


def test_clearing_a_demo_folder_removes_only_what_a_demo_wrote(tmp_path: Path):
    fresh_workdir(tmp_path)
    for name in DEMO_ENTRIES:
        (tmp_path / name).mkdir() if "." not in name else (tmp_path / name).write_text("old")
    (tmp_path / "state" / "state.sqlite3").write_text("old")
    (tmp_path / "notes.txt").write_text("mine")
    fresh_workdir(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".moodle-bridge-demo", "notes.txt"]
