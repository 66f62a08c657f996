"""Every command ends every failure in its documented exit code, with one line and no traceback.

Cron reads the code: 1 means "done, with record errors", so a broken settings file or a damaged
state database must never look like one. Signals are in ``test_signals.py``.
"""

from __future__ import annotations

import sqlite3

import click
import pytest

from moodle_bridge.cli import main
from moodle_bridge.cli.failures import EXIT_CODES, INTERRUPTED, ExitCode, Terminated, failure_for
from moodle_bridge.errors import ConfigError, Fatal, InvalidToken, NetworkError, RecordError
from moodle_bridge.mappings import BrokenMappings
from moodle_bridge.store import SchemaTooNew, StateDamaged, StoreBusy, StoreError
from tests.cli.conftest import NIP, Workspace, leaf_commands, one_line

SECRET = "tok-SECRET-failures-77"

COMMANDS = sorted(leaf_commands(main))
#: The commands that talk to the configured Moodle.
TO_MOODLE = ("doctor", "plan", "sync", "completions pull", "run", "runs revert")
#: The commands that open the configured state database.
WITH_STATE = (
    "plan", "sync", "gaps", "explain", "completions pull", "report", "run", "runs", "runs show",
    "runs revert",
)  # fmt: skip


def test_the_matrix_covers_every_command(workspace: Workspace):
    # A new command must be added to Workspace.arguments, and so to every test below.
    assert set(workspace.arguments()) == set(COMMANDS)


# --- configuration ------------------------------------------------------------------------------
BROKEN_SETTINGS = {
    "bad TOML": ("[moodle\nurl = 'https://lms.example'\n", "is not valid TOML"),
    "unknown key": ("[moodle]\nurll = 'https://lms.example'\n", "unknown key moodle.urll"),
    "bad value": ("[moodle]\nworkers = 0\n", "moodle.workers"),
    "bad section": ("[sync]\nsuspend_share = 'many'\n", "sync.suspend_share"),
    "token in the file": (f"[moodle]\ntoken = '{SECRET}'\n", "MOODLE_BRIDGE_TOKEN"),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("broken", sorted(BROKEN_SETTINGS))
def test_broken_settings_exit_2_with_one_line(workspace: Workspace, command: str, broken: str):
    text, expected = BROKEN_SETTINGS[broken]
    workspace.config.write_text(text, encoding="utf-8")

    result = workspace.run(*workspace.arguments()[command])

    assert result.exit_code == 2, result.output
    line = one_line(result)
    assert expected in line
    assert str(workspace.config) in line
    assert SECRET not in result.output
    assert result.stdout == ""


def test_settings_that_are_not_utf8_exit_2(workspace: Workspace):
    workspace.config.write_bytes(b"[moodle]\nurl = '\xff\xfe'\n")
    result = workspace.run("plugins")
    assert result.exit_code == 2
    assert "is not UTF-8 text" in one_line(result)


def test_a_missing_settings_file_exits_2(workspace: Workspace):
    workspace.config.unlink()
    result = workspace.run("plugins")
    assert result.exit_code == 2
    assert "cannot read settings file" in one_line(result)


def test_help_needs_no_valid_settings(workspace: Workspace):
    workspace.config.write_text("[moodle\n", encoding="utf-8")
    for command in COMMANDS:
        result = workspace.run(*command.split(), "--help")
        assert result.exit_code == 0, (command, result.output)


@pytest.mark.parametrize("command", TO_MOODLE)
def test_no_url_exits_2(workspace: Workspace, command: str):
    result = workspace.run(*workspace.arguments()[command], env={"MOODLE_BRIDGE_TOKEN": SECRET})
    assert result.exit_code == 2, result.output
    assert "no Moodle URL" in one_line(result)


@pytest.mark.parametrize("command", TO_MOODLE)
def test_no_token_exits_2(workspace: Workspace, command: str):
    result = workspace.run(
        *workspace.arguments()[command], env={"MOODLE_BRIDGE_URL": "https://lms.example"}
    )
    assert result.exit_code == 2, result.output
    assert "no Moodle token" in one_line(result)


# --- the state database -------------------------------------------------------------------------
def damage(workspace: Workspace) -> None:
    workspace.state.mkdir()
    (workspace.state / "state.sqlite3").write_bytes(b"this was a state database once\n" * 300)


SITE = {"MOODLE_BRIDGE_URL": "http://127.0.0.1:9", "MOODLE_BRIDGE_TOKEN": SECRET}


@pytest.mark.parametrize("command", WITH_STATE)
def test_a_damaged_state_exits_4_saying_what_to_do(workspace: Workspace, command: str):
    damage(workspace)
    database = workspace.state / "state.sqlite3"

    result = workspace.run(*workspace.arguments()[command], env=SITE)

    assert result.exit_code == 4, result.output
    line = one_line(result)
    assert f"the state database {database} is damaged" in line
    assert f"sqlite3 {database}.damaged .recover | sqlite3 {database}" in line
    assert SECRET not in result.output


@pytest.mark.parametrize(
    "args",
    [["plugins"], ["sample-roster", "--size", "5"], ["doctor", "--emulator"],
     ["demo", "--size", "5"]],
    ids=["plugins", "sample-roster", "doctor --emulator", "demo"],
)
def test_commands_without_the_state_ignore_a_damaged_one(workspace: Workspace, args: list[str]):
    damage(workspace)
    where = {"sample-roster": ["--out", str(workspace.root / "s")],
             "demo": ["--dir", str(workspace.root / "d")]}.get(args[0], [])  # fmt: skip
    result = workspace.run(*args, *where)
    assert result.exit_code == 0, result.output


def test_plan_on_the_emulator_never_opens_the_configured_state(workspace: Workspace):
    damage(workspace)
    before = (workspace.state / "state.sqlite3").read_bytes()
    result = workspace.run("plan", "--plugin", "generic", "--roster", str(workspace.roster),
                           "--emulator", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (workspace.state / "state.sqlite3").read_bytes() == before
    assert sorted(p.name for p in workspace.state.iterdir()) == ["state.sqlite3"]


def test_an_unreadable_state_folder_exits_4(workspace: Workspace):
    workspace.state.mkdir()
    (workspace.state / "state.sqlite3").mkdir()  # a folder where the file should be
    result = workspace.run(*workspace.arguments()["report"])
    assert result.exit_code == 4, result.output
    assert "state database" in one_line(result)


# --- anything else ------------------------------------------------------------------------------
@pytest.fixture
def broken_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """``plugins`` fails with an error no table row expects, whose message holds a NIP."""

    def broken() -> None:
        msg = f"no luck for {NIP}\nsecond line"
        raise RuntimeError(msg)

    monkeypatch.setattr("moodle_bridge.cli.plugins_cmd.installed_units", broken)


@pytest.mark.usefixtures("broken_plugins")
def test_an_unexpected_error_is_named_in_one_line(workspace: Workspace):
    result = workspace.run("plugins")
    assert result.exit_code == 4
    line = one_line(result)
    assert "unexpected RuntimeError: no luck for 1980************01" in line
    assert "second line" not in line
    assert "-vv" in line
    assert NIP not in result.output


@pytest.mark.usefixtures("broken_plugins")
def test_an_unexpected_error_shows_its_traceback_with_vv(workspace: Workspace):
    result = workspace.run("-vv", "plugins")
    assert result.exit_code == 4
    assert "Traceback" in result.stderr
    assert "plugins_cmd.py" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("moodle-bridge: unexpected RuntimeError")
    assert NIP not in result.output


def test_a_fatal_moodle_error_escaping_a_command_exits_4(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
):
    def refused(*_args: object, **_options: object) -> None:
        msg = "Invalid token - token not found"
        raise InvalidToken(msg, errorcode="invalidtoken")

    monkeypatch.setattr("moodle_bridge.cli.doctor_cmd.run_doctor", refused)
    result = workspace.run("doctor", env=SITE)
    assert result.exit_code == 4
    assert "Invalid token" in one_line(result)


def test_an_output_path_that_cannot_be_written_exits_2(workspace: Workspace):
    out = workspace.roster / "plan.json"  # inside a file, not a folder
    result = workspace.run("plan", "--plugin", "generic", "--roster", str(workspace.roster),
                           "--emulator", "--out", str(out))  # fmt: skip
    assert result.exit_code == 2
    assert f"cannot use {workspace.roster}" in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.output


def test_plan_out_creates_its_folder_and_the_file_is_owner_only(workspace: Workspace):
    out = workspace.root / "plans" / "plan.json"
    result = workspace.run("plan", "--plugin", "generic", "--roster", str(workspace.roster),
                           "--emulator", "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert '"planned"' in out.read_text(encoding="utf-8")


# --- the table itself ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "code"),
    [
        (Terminated(), ExitCode.TERMINATED),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED),
        (click.Abort(), ExitCode.INTERRUPTED),
        (StoreBusy("the state database s is locked by another process"), ExitCode.USAGE),
        (StateDamaged("the state database s is damaged"), ExitCode.FATAL),
        (SchemaTooNew("newer"), ExitCode.FATAL),
        (StoreError("cannot write"), ExitCode.FATAL),
        (ConfigError("bad"), ExitCode.USAGE),
        (BrokenMappings("PENDIS", ()), ExitCode.USAGE),
        (Fatal("stop"), ExitCode.FATAL),
        (NetworkError("unreachable"), ExitCode.FATAL),
        (RecordError("refused"), ExitCode.FATAL),
        (FileNotFoundError(2, "No such file or directory", "/x/y"), ExitCode.USAGE),
        (sqlite3.OperationalError("disk I/O error"), ExitCode.FATAL),
        (ValueError("bug"), ExitCode.FATAL),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value.name,
)
def test_each_exception_has_its_exit_code(error: BaseException, code: ExitCode):
    failure = failure_for(error)
    assert failure.exit_code == code
    assert "\n" not in failure.format_message()


def test_interruptions_say_the_next_run_resumes():
    for error in (KeyboardInterrupt(), Terminated(), click.Abort()):
        assert failure_for(error).format_message() == INTERRUPTED


def test_the_table_lists_specific_types_before_their_bases():
    kinds = [kind for kind, _ in EXIT_CODES]
    for i, kind in enumerate(kinds):
        for later in kinds[i + 1 :]:
            assert not issubclass(later, kind), f"{later.__name__} is hidden by {kind.__name__}"


def test_the_documented_codes():
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0, "RECORD_ERRORS": 1, "USAGE": 2, "GUARD": 3, "FATAL": 4,
        "INTERRUPTED": 130, "TERMINATED": 143,
    }  # fmt: skip
