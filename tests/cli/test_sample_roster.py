"""``moodle-bridge sample-roster``: deterministic files a sync and the gap engine can read."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from click.testing import CliRunner

from moodle_bridge.cli import main
from moodle_bridge.mappings import load_mappings
from moodle_bridge.roster.generic import read_generic_roster


def test_sample_roster_is_deterministic_and_readable(tmp_path: Path):
    for name in ("a", "b"):
        result = CliRunner().invoke(main, ["sample-roster", "--size", "300", "--seed", "9",
                                           "--out", str(tmp_path / name), "--xlsx"])
        assert result.exit_code == 0, result.output
    a, b = tmp_path / "a", tmp_path / "b"
    assert (a / "roster.csv").read_bytes() == (b / "roster.csv").read_bytes()
    assert (a / "assessments.csv").read_bytes() == (b / "assessments.csv").read_bytes()
    roster = read_generic_roster(a / "roster.csv")
    assert roster.rows == 300
    assert len(roster.people) > 270
    assert roster.errors, "about 2% of the rows are dirty"
    from_xlsx = read_generic_roster(a / "roster.xlsx").people
    assert [replace(p, source="") for p in from_xlsx] == [
        replace(p, source="") for p in roster.people
    ]
    load_mappings(a / "mappings", "PENDIS")  # the copied tables load without error
