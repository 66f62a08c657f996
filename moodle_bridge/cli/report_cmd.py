"""``moodle-bridge report``: a unit's JP table, SIASN export and dashboard from the ledger."""

from __future__ import annotations

from pathlib import Path

import click

from moodle_bridge.cli.app import AppContext, BridgeCommand, emit_json
from moodle_bridge.cli.failures import ExitCode, fail
from moodle_bridge.cli.gaps_cmd import gap_state_for
from moodle_bridge.cli.options import JSON_OPTION, input_file, out_folder, unit_codes
from moodle_bridge.reports import ReportInputs, gap_counts, reports_from_store
from moodle_bridge.store import Store
from moodle_bridge.sync.gaps import load_all_mappings

__all__ = ["report_command"]


@click.command("report", cls=BridgeCommand)
@click.option(
    "--unit",
    required=True,
    help="Eselon I unit code in any case (PENDIS, SETJEN...), or ALL for the whole ministry.",
)
@click.option(
    "--year",
    type=click.IntRange(1970, 9998),
    required=True,
    help="Calendar year of the completions (Asia/Jakarta).",
)
@out_folder("Folder for the report files (created owner-only).")
@input_file("--roster", "With --assessments: also count each person's open gaps.")
@input_file("--assessments", "With --roster: the assessments for the open-gap counts.")
@click.option(
    "--plugin",
    default="generic",
    show_default=True,
    help="Unit plugin that reads --roster and --assessments.",
)
@JSON_OPTION
@click.pass_obj
def report_command(
    app: AppContext,
    unit: str,
    year: int,
    out_dir: Path,
    roster: Path | None,
    assessments: Path | None,
    plugin: str,
    as_json: bool,
) -> None:
    """Write the per-person JP table, the SIASN training-history export (CSV and XLSX) and the
    unit's HTML dashboard from the completion ledger. NIPs are in the files (that is their
    purpose), which are readable by their owner only."""
    database = app.state_file
    if not database.exists():
        fail(f"no state database at {database}: run a sync first", ExitCode.USAGE)
    mappings = load_all_mappings(app.mappings_dir)
    with Store.open(database) as store:
        [code] = unit_codes([unit], app.mappings_dir, store, allow_all=True)
        counts = None
        if roster is not None and assessments is not None:
            counts = gap_counts(gap_state_for(app, plugin, roster, assessments).plan, code)
        inputs = ReportInputs(unit=code, year=year, mappings=mappings, gaps=counts)
        files = reports_from_store(store, inputs, out_dir)
    if as_json:
        paths = [str(p) for p in files.paths]
        emit_json({"files": paths, "people": files.people, "trainings": files.trainings})
    else:
        click.echo(f"{files.people} people, {files.trainings} trainings completed in {year}:")
        for path in files.paths:
            click.echo(f"  {path}")
