"""``moodle-bridge gaps`` and ``explain``: the competency-gap plan of a roster, read-only."""

from __future__ import annotations

from dataclasses import dataclass
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
from moodle_bridge.sync.engine import MISSING_COURSES
from moodle_bridge.sync.gaps import GapState, gap_state

__all__ = ["explain_command", "gap_state_for", "gaps_command"]


@dataclass(frozen=True)
class CourseCheck:
    """What applied runs found of the catalogue courses in Moodle (``explain`` is offline)."""

    found: frozenset[str] = frozenset()
    missing: frozenset[str] = frozenset()


def gap_state_for(app: AppContext, plugin: str, roster: Path, assessments: Path) -> GapState:
    """The gap plan for a roster, counting the enrolments the bridge already made.

    Read-only: the state database is opened only when it exists.
    """
    return _gap_state(app, plugin, roster, assessments)[0]


def _gap_state(
    app: AppContext, plugin: str, roster: Path, assessments: Path
) -> tuple[GapState, CourseCheck]:
    """:func:`gap_state_for`, and what the state knows of the courses in Moodle."""
    unit = load_plugin(plugin)
    people = unit.read_roster(roster).people
    known: dict[tuple[str, str], EnrolmentRow] = {}
    completed: list[LedgerEntry] = []
    courses = CourseCheck()
    if app.state_file.exists():
        with Store.open(app.state_file) as store:
            known, completed = store.enrolments(), store.completions()
            courses = CourseCheck(
                frozenset(store.courses()), frozenset(store.value(MISSING_COURSES) or ())
            )
    state = gap_state(people, unit, app.gap_inputs(assessments), known, completed)
    return state, courses


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
    """Why NIP is (or is not) in each course: gaps, choices with reasons, cap usage, and
    which chosen courses the last sync found missing in Moodle."""
    state, courses = _gap_state(app, plugin, roster, assessments)
    explanation = state.plan.explain(nip)
    wanted = sorted(
        {d.offer.course_shortname for d in explanation.decisions if d.offer and d.desired}
    )
    missing = [c for c in wanted if c in courses.missing - courses.found]
    unchecked = [c for c in wanted if c not in courses.found | courses.missing]
    lines = explanation.lines(missing)
    if unchecked:
        lines.append(
            "not checked against Moodle yet (a sync looks them up): " + ", ".join(unchecked)
        )
    if as_json:
        emit_json(
            {
                "nip": nip,
                "state": explanation.state,
                "lines": lines,
                "missing_in_moodle": missing,
                "not_checked_in_moodle": unchecked,
            }
        )
    else:
        click.echo("\n".join(lines))
    finish(ExitCode.OK if explanation.person is not None else ExitCode.RECORD_ERRORS)
