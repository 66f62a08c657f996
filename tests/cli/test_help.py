"""Every command explains itself and every option."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from moodle_bridge.cli import main


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.extend(_commands(command, (*prefix, name)))
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("path", _commands(main), ids=lambda p: " ".join(p) or "main")
def test_every_command_has_help(path: tuple[str, ...]):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    assert command.help, f"{' '.join(path)} has no help text"
    for param in command.params:
        if isinstance(param, click.Option) and param.name not in ("help", "version"):
            assert param.help, f"option {param.name} of {' '.join(path) or 'main'} has no help"


REPOSITORY = Path(__file__).resolve().parents[2]


def test_help_refers_only_to_files_the_repository_has():
    texts = []
    for path in _commands(main):
        command: click.Command = main
        for name in path:
            assert isinstance(command, click.Group)
            command = command.commands[name]
        texts.append(command.help or "")
        texts += [p.help or "" for p in command.params if isinstance(p, click.Option)]
    named = set(re.findall(r"[\w./-]+\.md\b", "\n".join(texts)))
    assert named, "the help names no document at all: this test checks nothing"
    missing = {name for name in named if not (REPOSITORY / name).is_file()}
    assert missing == set()


_MAIN_VALUE_OPTIONS = {
    o for p in main.params if isinstance(p, click.Option) and not p.is_flag and not p.count
    for o in p.opts
}


def _documented_commands() -> list[tuple[tuple[str, ...], set[str], str]]:
    """Each ``moodle-bridge ...`` line of the README: the command it names, the options it
    gives, and the line."""
    found = []
    for line in (REPOSITORY / "README.md").read_text(encoding="utf-8").splitlines():
        for call in re.findall(r"moodle-bridge((?: +[^`|>]+)+)", line):
            words = iter(call.split())
            path: list[str] = []
            command: click.Command = main
            for word in words:
                if command is main and word.startswith("-"):
                    if word.split("=")[0] in _MAIN_VALUE_OPTIONS and "=" not in word:
                        next(words, None)  # the option's value, before the command
                    continue
                if not isinstance(command, click.Group) or word not in command.commands:
                    break
                command = command.commands[word]
                path.append(word)
            options = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", call))
            found.append((tuple(path), options, line))
    return found


def test_every_option_the_readme_shows_exists():
    """A documented cron line that exits 2 every night is worse than none."""
    documented = _documented_commands()
    assert sum(1 for path, options, _ in documented if path and options) >= 15
    for path, options, line in documented:
        command: click.Command = main
        known = {o for p in main.params for o in getattr(p, "opts", [])}
        for name in path:
            assert isinstance(command, click.Group)
            command = command.commands[name]
            known |= {o for p in command.params for o in getattr(p, "opts", [])}
        assert options - known - {"--help"} == set(), line


def test_the_cost_models_emulator_serve_offers_are_the_emulators():
    from moodle_bridge.cli.emulator_cmd import emulator_serve
    from moodle_bridge.emulator.cost import COST_MODELS

    [option] = [p for p in emulator_serve.params if p.name == "cost"]
    assert tuple(option.type.choices) == COST_MODELS  # type: ignore[attr-defined]
