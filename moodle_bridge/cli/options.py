"""Options shared by several commands, and what their values name: one meaning per option.

``--plugin`` names the unit plugin that reads a roster (``generic``, ``pendis``...); ``--unit``
names an Eselon I unit code (``PENDIS``), in any case. In ``plan`` and ``sync`` ``--unit`` is
still accepted as the old name of ``--plugin``, with a warning, for one release.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click

from moodle_bridge.cli.failures import ExitCode, fail
from moodle_bridge.roster.sources import read_rows
from moodle_bridge.store import Store
from moodle_bridge.units import UnitMapper, discover_units

__all__ = [
    "ASSESSMENTS_REQUIRED",
    "EMULATOR_OPTION",
    "JSON_OPTION",
    "PLUGIN_OPTION",
    "ROSTER_OPTION",
    "SCOPE_OPTION",
    "SEED_OPTION",
    "SYNC_ASSESSMENTS_OPTION",
    "SYNC_ROSTER_OPTION",
    "WAIT_FOR_SITE_OPTION",
    "chosen_plugin",
    "input_file",
    "load_plugin",
    "number",
    "out_folder",
    "plugin_or_alias",
    "require_file",
    "unit_codes",
]

F = TypeVar("F", bound=Callable[..., Any])

PLUGIN_HELP = "Unit plugin that reads the roster (generic, pendis...; see 'moodle-bridge plugins')."


def input_file(
    name: str,
    help_text: str,
    *,
    required: bool = False,
    dest: str | None = None,
    checked_in_command: bool = False,
) -> Callable[[F], F]:
    """An option naming a file that must exist. ``checked_in_command``: the command checks it
    itself with :func:`require_file`, inside its ``[notify]`` block, so a file missing under
    cron (HR's export not there yet) reaches a human and not only cron's exit code."""
    names = (name, dest) if dest else (name,)
    kind = click.Path(exists=not checked_in_command, dir_okay=False, path_type=Path)
    return click.option(*names, type=kind, required=required, help=help_text)


def require_file(path: Path | None, option: str) -> None:
    """Stop, as click would for the option, unless ``path`` (when given) is a file."""
    if path is None or path.is_file():
        return
    # A directory never gets here: click refuses it (dir_okay=False) as it parses the option.
    message = f"File {click.format_filename(path)!r} does not exist."
    raise click.BadParameter(message, param_hint=f"'{option}'")


def out_folder(help_text: str) -> Callable[[F], F]:
    """``--out DIR``: a folder the command writes into, passed as ``out_dir``."""
    kind = click.Path(file_okay=False, path_type=Path)
    return click.option("--out", "out_dir", type=kind, required=True, help=help_text)


def number(
    name: str, default: int, help_text: str, low: int | None = 0, high: int | None = None
) -> Callable[[F], F]:
    """A whole-number option whose default ``--help`` shows; ``low=None`` for any number."""
    kind = int if low is None and high is None else click.IntRange(low, high)
    return click.option(name, type=kind, default=default, show_default=True, help=help_text)


PLUGIN_OPTION = click.option("--plugin", required=True, help=PLUGIN_HELP)
ROSTER_HELP = "The HR roster export (CSV or XLSX) in the unit's format."
ROSTER_OPTION = input_file("--roster", ROSTER_HELP, required=True)
#: ``plan`` and ``sync`` check their files themselves (see ``input_file``).
SYNC_ROSTER_OPTION = input_file("--roster", ROSTER_HELP, required=True, checked_in_command=True)
SYNC_ASSESSMENTS_OPTION = input_file(
    "--assessments",
    "Competency assessments (CSV/XLSX: nip, kompetensi, level, tanggal): also enrol "
    "people into the courses that close their gaps, and keep the gap cohorts.",
    checked_in_command=True,
)
ASSESSMENTS_REQUIRED = input_file(
    "--assessments",
    "Competency assessments (CSV/XLSX: nip, kompetensi, level, tanggal).",
    required=True,
)
#: The synthetic people of the demo and of sample-roster.
SEED_OPTION = number(
    "--seed",
    1,
    "Seed of the synthetic people: the same seed gives the same people, byte for byte.",
    low=None,
)
JSON_OPTION = click.option(
    "--json", "as_json", is_flag=True, help="Print the result as JSON (NIPs masked) for scripts."
)
WAIT_FOR_SITE_OPTION = click.option(
    "--wait-for-site",
    is_flag=True,
    help="Wait out an outage of the site (database down, maintenance) for up to "
    "[moodle] max_site_wait seconds instead of stopping once max_total_wait is spent; the "
    "same as [moodle] wait_for_site = true, for a nightly run nobody watches.",
)
EMULATOR_OPTION = click.option(
    "--emulator",
    "use_emulator",
    is_flag=True,
    help="Use a fresh built-in Moodle emulator instead of the configured site, with a state "
    "of its own that is discarded afterwards (for trying things out).",
)


def _scope(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> frozenset[str] | None:
    if value is None:
        return None
    units = frozenset(part.strip().upper() for part in value.split(",") if part.strip())
    if not units:
        msg = "give at least one unit code, e.g. --scope PENDIS,SETJEN"
        raise click.BadParameter(msg)
    return units


SCOPE_OPTION = click.option(
    "--scope",
    metavar="UNIT,...",
    callback=_scope,
    help="The units this roster speaks for: only their people may be suspended when absent or "
    "inactive, and a unit given here that the roster lacks stops the run. Default: the "
    "plugin's unit, or for 'generic' the units present in the file.",
)


def plugin_or_alias(command: F) -> F:
    """``--plugin``, and ``--unit`` as its deprecated old name (``plan`` and ``sync`` only)."""
    command = click.option(
        "--unit",
        "unit_alias",
        metavar="PLUGIN",
        help="Deprecated: the old name of --plugin in this command (a unit code elsewhere).",
    )(command)
    return click.option("--plugin", help=PLUGIN_HELP)(command)


def chosen_plugin(plugin: str | None, unit_alias: str | None) -> str:
    """The plugin named by ``--plugin`` or by its deprecated alias ``--unit``."""
    if plugin is not None and unit_alias is not None and plugin != unit_alias:
        msg = f"--unit {unit_alias} and --plugin {plugin} disagree: give --plugin only"
        raise click.UsageError(msg)
    if plugin is None and unit_alias is None:
        msg = "Missing option '--plugin'."
        raise click.UsageError(msg)
    if plugin is None:
        click.echo(
            f"moodle-bridge: warning: --unit is deprecated in this command and will name a "
            f"unit code in the next release; use --plugin {unit_alias}",
            err=True,
        )
    chosen = plugin or unit_alias
    assert chosen is not None
    return chosen


def load_plugin(name: str) -> UnitMapper:
    """The installed unit plugin ``name``; a broken plugin is named on stderr and skipped.

    Raises ConfigError (exit 2) for a plugin that is not installed.
    """
    found = discover_units()
    for problem in found.problems:
        click.echo(f"moodle-bridge: plugin {problem.name} skipped: {problem.reason}", err=True)
    return found.require(name)


def unit_codes(
    given: Iterable[str], mappings_dir: Path, store: Store, *, allow_all: bool = False
) -> list[str]:
    """The unit codes given with ``--unit``, upper-cased and checked.

    A code is known when the mapping tables' ``units.csv`` lists it or the state database
    holds people of it. An unknown code ends the command (exit 2) listing the known ones: a
    typo must not write empty reports that look like a unit without training.
    """
    codes = [code.strip().upper() for code in given]
    wanted = {code for code in codes if not (allow_all and code == "ALL")}
    if not wanted:
        return codes
    known = _listed_units(mappings_dir)
    if not wanted <= known:
        known |= set(store.units_seen()) | {a.unit for a in store.accounts().values()}
    unknown = sorted(wanted - known)
    if unknown:
        choices = ", ".join(sorted(known)) or "none yet"
        also = " (or ALL)" if allow_all else ""
        fail(
            f"unknown unit {', '.join(unknown)}: the known units are {choices}{also}",
            ExitCode.USAGE,
        )
    return codes


def _listed_units(mappings_dir: Path) -> set[str]:
    path = mappings_dir / "units.csv"
    if not path.exists():
        return set()
    return {row.values["unit"].strip().upper() for row in read_rows(path, required=("unit",))}
