"""``moodle-bridge completions pull``: course completions from Moodle into the ledger."""

from __future__ import annotations

import dataclasses

import click

from moodle_bridge.cli.app import AppContext, BridgeGroup, emit_json, finish, progress_bars
from moodle_bridge.cli.connect import connect
from moodle_bridge.cli.failures import ExitCode
from moodle_bridge.cli.notifying import notifying
from moodle_bridge.cli.options import JSON_OPTION, unit_codes
from moodle_bridge.cli.render import pull_data, pull_lines
from moodle_bridge.completions import PullScope, pull_completions, pull_options
from moodle_bridge.files import exclusive
from moodle_bridge.notify import pull_part
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
@JSON_OPTION
@click.pass_obj
def completions_pull(app: AppContext, units: tuple[str, ...], as_json: bool) -> None:
    """Find the completions of every enrolment the bridge knows and record the new ones.

    Reads the site's completion report page by page when it has one ([completions] report),
    else asks person by person (one call answers all of a person's courses). Completed
    enrolments are never asked again. Exit code 1 when some people or report pages could not
    be read, 2 when the state belongs to another Moodle site, 4 on a fatal Moodle error.
    """
    settings = app.settings
    with notifying(app, "completions pull") as parts:
        # Inside: broken mapping tables stop an unattended pull, and someone must hear of it.
        mappings = load_all_mappings(app.mappings_dir)
        catalogue = {o.course_shortname: o for m in mappings.values() for o in m.catalogue}
        with (
            connect(app) as client,
            exclusive(settings.state.dir),
            Store.open(app.state_file) as store,
        ):
            chosen = unit_codes(units, app.mappings_dir, store)
            scope = PullScope(units=set(chosen) or None)
            with progress_bars(not as_json) as bars:
                progress = (lambda n, total: bars("people asked", n, total)) if bars else None
                report = pull_completions(
                    client,
                    store,
                    catalogue,
                    scope,
                    options=dataclasses.replace(pull_options(settings), site_url=client.url),
                    progress=progress,
                )
        if as_json:
            emit_json(pull_data(report))
        else:
            click.echo("\n".join(pull_lines(report)))
        code = ExitCode.RECORD_ERRORS if report.failures else ExitCode.OK
        if report.stopped:
            code = ExitCode.FATAL
        parts.append(pull_part(report, code, sorted(chosen)))
        finish(code)
