"""``moodle-bridge demo``: the README's first quick-start command, at a small size."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from moodle_bridge.cli import main


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
    assert sum(second["planned"].values()) == 0
    assert second["calls"] == {}
    # Output masks NIPs: none of the roster's 18-digit NIPs appears.
    nips = {line.split(",")[0] for line in (tmp_path / "roster.csv").read_text().splitlines()[1:]}
    assert not any(nip in result.output for nip in nips if len(nip) == 18)
