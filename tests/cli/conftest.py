"""Every command of the CLI, with arguments that pass parsing, for tests that drive them all."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from moodle_bridge.cli import main

NIP = "198001012005011001"
ROSTER = (
    "nip,nama,email,unit,satker,jabatan,golongan,status\n"
    f"{NIP},Nur Aini,nur@kemenag.example,PENDIS,MAN 1,Guru,III/a,\n"
)
ASSESSMENTS = f"nip,kompetensi,level,tanggal\n{NIP},MAN-INTEG,1,2026-01-10\n"

#: No MOODLE_BRIDGE_* setting of the machine running the tests may leak into them.
CLEAN_ENV: dict[str, str | None] = {
    name: None
    for name in (
        "MOODLE_BRIDGE_URL",
        "MOODLE_BRIDGE_TOKEN",
        "MOODLE_BRIDGE_TOKEN_FILE",
        "MOODLE_BRIDGE_CONFIG",
        "MOODLE_BRIDGE_STATE_DIR",
        "MOODLE_BRIDGE_WORKERS",
        "MOODLE_BRIDGE_CA_BUNDLE",
    )
}


def leaf_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> set[str]:
    """Every runnable command of ``group``, as its words (``completions pull``); a group that
    runs on its own (``runs``) counts too."""
    found: set[str] = set()
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found |= leaf_commands(command, (*prefix, name))
            if command.invoke_without_command:
                found.add(" ".join((*prefix, name)))
        else:
            found.add(" ".join((*prefix, name)))
    return found


@dataclass
class Workspace:
    """A folder with a roster, assessments, a settings file and a state folder."""

    root: Path

    def __post_init__(self) -> None:
        self.config = self.root / "moodle-bridge.toml"
        self.state = self.root / "state"
        self.roster = self.root / "roster.csv"
        self.assessments = self.root / "assessments.csv"

    def settings(self, extra: str = "") -> None:
        """Write the settings file: the state folder, then ``extra`` TOML."""
        self.config.write_text(f'[state]\ndir = "{self.state}"\n{extra}', encoding="utf-8")

    def arguments(self) -> dict[str, list[str]]:
        """Arguments that get each command past click's parsing, by command."""
        roster, assessments = str(self.roster), str(self.assessments)
        plugin = ["--plugin", "generic", "--roster", roster]
        return {
            "doctor": ["doctor"],
            "plan": ["plan", *plugin],
            "sync": ["sync", *plugin, "--yes"],
            "gaps": ["gaps", *plugin, "--assessments", assessments],
            "explain": ["explain", NIP, *plugin, "--assessments", assessments],
            "completions pull": ["completions", "pull"],
            "report": ["report", "--unit", "PENDIS", "--year", "2026", "--out",
                       str(self.root / "out")],
            "plugins": ["plugins"],
            "demo": ["demo", "--size", "5", "--dir", str(self.root / "demo")],
            "sample-roster": ["sample-roster", "--size", "5", "--out", str(self.root / "s")],
            "emulator serve": ["emulator", "serve", "--port", "0"],
            "run": ["run", "--manifest", str(self.manifest()), "--yes"],
            "runs": ["runs"],
            "runs show": ["runs", "show", "1"],
            "runs revert": ["runs", "revert", "1", "--yes"],
        }  # fmt: skip

    def manifest(self) -> Path:
        """A manifest of one source: the workspace's roster."""
        path = self.root / "units.toml"
        path.write_text(
            f'[[source]]\nplugin = "generic"\nroster = "{self.roster.name}"\n', encoding="utf-8"
        )
        return path

    def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        """Run the CLI in-process with this workspace's settings file."""
        return CliRunner().invoke(
            main, ["--config", str(self.config), *args], env={**CLEAN_ENV, **(env or {})}
        )


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    space = Workspace(tmp_path)
    space.roster.write_text(ROSTER, encoding="utf-8")
    space.assessments.write_text(ASSESSMENTS, encoding="utf-8")
    space.settings()
    return space


EMULATOR_NOTE = "moodle-bridge: --emulator: a throwaway state in "


def one_line(result: Result) -> str:
    """The single line a failing command printed on stderr (asserted to be exactly one),
    besides the note of ``--emulator`` on where its throwaway state is."""
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.stderr.splitlines() if not line.startswith(EMULATOR_NOTE)]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("moodle-bridge: "), lines[0]
    return lines[0]
