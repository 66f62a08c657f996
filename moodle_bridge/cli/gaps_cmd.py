"""``moodle-bridge gaps`` and ``explain``: the competency-gap plan of a roster, read-only."""

from __future__ import annotations

from pathlib import Path

import click

from moodle_bridge.cli.app import AppContext, BridgeCommand, emit_json, finish
from moodle_bridge.cli.failures import ExitCode
from moodle_bridge.cli.options import (
    ASSESSMENTS_REQUIRED,
    JSON_OPTION,
    PLUGIN_OPTION,
    ROSTER_OPTION,
    load_plugin,
)
from moodle_bridge.cli.render import gaps_data, gaps_lines
from moodle_bridge.store import EnrolmentRow, LedgerEntry, Store
from moodle_bridge.sync.gaps import GapState, gap_state

__all__ = ["explain_command", "gap_state_for", "gaps_command"]


def gap_state_for(app: AppContext, plugin: str, roster: Path, assessments: Path) -> GapState:
    """The gap plan for a roster, counting the enrolments the bridge already made.

    Read-only: the state database is opened only when it exists.
    """
    unit = load_plugin(plugin)
    people = unit.read_roster(roster).people
    known: dict[tuple[str, str], EnrolmentRow] = {}
    completed: list[LedgerEntry] = []
    if app.state_file.exists():
        with Store.open(app.state_file) as store:
            known, completed = store.enrolments(), store.completions()
    return gap_state(people, unit, app.gap_inputs(assessments), known, completed)


@click.command("gaps", cls=BridgeCommand)
@PLUGIN_OPTION
@ROSTER_OPTION
@ASSESSMENTS_REQUIRED
@JSON_OPTION
@click.pass_obj
def gaps_command(
    app: AppContext, plugin: str, roster: Path, assessments: Path, as_json: bool
) -> None:
    """Gap statistics per competency and level, people not assessed, positions without a
    standard, and projected enrolments per course against capacity. Writes nothing."""
    data = gaps_data(gap_state_for(app, plugin, roster, assessments).plan)
    if as_json:
        emit_json(data)
    else:
        click.echo("\n".join(gaps_lines(data)))


@click.command("explain", cls=BridgeCommand)
@click.argument("nip")
@PLUGIN_OPTION
@ROSTER_OPTION
@ASSESSMENTS_REQUIRED
@JSON_OPTION
@click.pass_obj
def explain_command(
    app: AppContext, nip: str, plugin: str, roster: Path, assessments: Path, as_json: bool
) -> None:
    """Why NIP is (or is not) in each course: gaps, choices with reasons, cap usage."""
    explanation = gap_state_for(app, plugin, roster, assessments).plan.explain(nip)
    lines = explanation.lines()
    if as_json:
        emit_json({"nip": nip, "state": explanation.state, "lines": lines})
    else:
        click.echo("\n".join(lines))
    finish(ExitCode.OK if explanation.person is not None else ExitCode.RECORD_ERRORS)
