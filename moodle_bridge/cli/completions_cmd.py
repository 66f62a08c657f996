"""``moodle-bridge completions pull``: course completions from Moodle into the ledger."""

from __future__ import annotations

import datetime

import click

from moodle_bridge.cli.app import AppContext, BridgeGroup, emit_json, finish
from moodle_bridge.cli.connect import connect
from moodle_bridge.cli.failures import ExitCode
from moodle_bridge.cli.options import JSON_OPTION, number, unit_codes
from moodle_bridge.cli.render import pull_data, pull_lines
from moodle_bridge.completions import PullOptions, pull_completions
from moodle_bridge.store import Store
from moodle_bridge.sync.gaps import load_all_mappings

__all__ = ["completions"]


@click.group(cls=BridgeGroup)
def completions() -> None:
    """Course completions: pull them from Moodle into the local ledger."""


@completions.command("pull")
@click.option(
    "--unit",
    "units",
    multiple=True,
    help="Only people of this Eselon I unit code, in any case (repeatable); default: everyone.",
)
@number(
    "--grace-days", 30, "Keep asking about an enrolment this many days after its window closed."
)
@JSON_OPTION
@click.pass_obj
def completions_pull(
    app: AppContext, units: tuple[str, ...], grace_days: int, as_json: bool
) -> None:
    """Ask Moodle about every pending enrolment the bridge made and record new completions.

    Completed enrolments are never asked again; one call per person answers all their
    courses. Exit code 1 when some people could not be asked, 4 on a fatal Moodle error.
    """
    settings = app.settings
    mappings = load_all_mappings(app.mappings_dir)
    catalogue = {o.course_shortname: o for m in mappings.values() for o in m.catalogue}
    with connect(app) as client, Store.open(app.state_file) as store:
        chosen = unit_codes(units, app.mappings_dir, store)
        report = pull_completions(
            client,
            store,
            catalogue,
            as_of=datetime.date.today(),
            units=set(chosen) or None,
            options=PullOptions(grace_days, settings.moodle.workers, settings.enrol.timezone),
        )
    if as_json:
        emit_json(pull_data(report))
    else:
        click.echo("\n".join(pull_lines(report)))
    if report.stopped:
        finish(ExitCode.FATAL)
    finish(ExitCode.RECORD_ERRORS if report.failures else ExitCode.OK)
