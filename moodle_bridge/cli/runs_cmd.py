"""``moodle-bridge runs``: the history of runs, what each changed for whom, and a way back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from moodle_bridge.cli.app import AppContext, BridgeCommand, BridgeGroup, emit_json, finish
from moodle_bridge.cli.connect import connect
from moodle_bridge.cli.failures import ExitCode, fail
from moodle_bridge.cli.options import JSON_OPTION
from moodle_bridge.cli.provision_cmd import RunRequest, confirmer, save_report, sync_options
from moodle_bridge.cli.render import (
    change_dicts,
    change_lines,
    plan_lines,
    result_lines,
    run_error_lines,
    runs_lines,
)
from moodle_bridge.files import exclusive, private_dir
from moodle_bridge.i18n import _
from moodle_bridge.logs import mask
from moodle_bridge.reports.changes import write_changes
from moodle_bridge.store import Run, Store
from moodle_bridge.sync.engine import Engine

__all__ = ["runs"]


def _open_state(app: AppContext) -> Store:
    database = app.state_file
    if not database.exists():
        fail(f"no state database at {database}: run a sync first", ExitCode.USAGE)
    return Store.open(database)


def _when(moment: int | None) -> str:
    if not moment:
        return ""
    return dt.datetime.fromtimestamp(moment).strftime("%Y-%m-%d %H:%M")


def run_scope(store: Store, run: Run) -> list[str]:
    """The units run ``run`` spoke for: the scope its report recorded; for a run without one
    (a revert, which speaks for people rather than units, or a run that crashed before its
    report) the units of the people it changed."""
    summary = run.summary if isinstance(run.summary, dict) else {}
    scope = summary.get("scope")
    if scope:
        return [str(unit) for unit in scope]
    return store.run_units(run.id)


def run_data(run: Run, scope: list[str]) -> dict[str, Any]:
    """One run for ``--json`` and the listing: no personal data. ``scope``: its units (see
    :func:`run_scope`)."""
    summary = run.summary if isinstance(run.summary, dict) else {}
    return {
        "id": run.id,
        "command": run.command,
        "plugin": run.unit,
        "source": run.source,
        "scope": scope,
        "status": run.status,
        "exit_code": run.exit_code,
        "started": _when(run.started_at),
        "seconds": (run.finished_at - run.started_at) if run.finished_at else None,
        "applied": summary.get("applied", {}),
        "who": f"{run.os_user or '?'}@{run.host or '?'}",
    }


@click.group("runs", cls=BridgeGroup, invoke_without_command=True)
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=20,
    show_default=True,
    help="How many of the latest runs to list.",
)
@JSON_OPTION
@click.pass_context
def runs(ctx: click.Context, limit: int, as_json: bool) -> None:
    """The latest runs: when, how long, which source and units, what they applied, who ran
    them."""
    if ctx.invoked_subcommand is not None:
        return
    app = ctx.find_object(AppContext)
    assert app is not None
    with _open_state(app) as store:
        rows = [run_data(run, run_scope(store, run)) for run in store.runs(limit)]
    if as_json:
        emit_json(rows)
        return
    click.echo("\n".join(runs_lines(rows)))


@runs.command("show", cls=BridgeCommand)
@click.argument("run_id", type=int)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the run's per-person changes (with NIPs) to this CSV, owner-only.",
)
@JSON_OPTION
@click.pass_obj
def show(app: AppContext, run_id: int, out: Path | None, as_json: bool) -> None:
    """The per-person changes and the errors of run RUN_ID (NIPs masked on the terminal)."""
    with _open_state(app) as store:
        run = store.run(run_id)
        if run is None:
            fail(
                f"there is no run {run_id} in this state (see: moodle-bridge runs)", ExitCode.USAGE
            )
        changes = store.run_changes(run_id)
        names = store.display_names()
        data = run_data(run, run_scope(store, run))
        if out is not None:
            # As plan --out does: a folder of its own for a file that names people.
            private_dir(out.parent)
            write_changes(out, changes, names)
    summary = run.summary if isinstance(run.summary, dict) else {}
    errors = summary.get("record_errors", []) + summary.get("row_errors", [])
    rows = change_dicts(changes, names)
    if as_json:
        emit_json({**data, "changes": rows, "errors": [_masked(e) for e in errors]})
        return
    # The run's line of the listing first: which run, when, for which units.
    lines = [*runs_lines([data]), *change_lines(rows, limit=None)]
    if not rows:
        lines.append("  " + _("No per-person changes."))
    click.echo("\n".join([*lines, *run_error_lines(errors)]))


def _masked(error: dict[str, Any]) -> dict[str, Any]:
    return {**error, "nip": mask(str(error["nip"])) if error.get("nip") else None}


@runs.command("revert", cls=BridgeCommand)
@click.argument("run_id", type=int)
@click.option(
    "--yes", is_flag=True, help="Apply without asking (asking happens only on a terminal)."
)
@JSON_OPTION
@click.pass_obj
def revert(app: AppContext, run_id: int, yes: bool, as_json: bool) -> None:
    """Unsuspend the accounts and enrolments run RUN_ID suspended (only those still suspended
    by it), as a new run with its own plan, confirmation and report. An absent person's grace
    period starts again; fix the roster before the next sync, or it suspends them again."""
    request = RunRequest("revert", Path(f"run {run_id}"), None, apply=True, yes=yes)
    state_dir = app.settings.state.dir
    with connect(app) as client, exclusive(state_dir), _open_state(app) as store:
        options = sync_options(app.settings, request, app.mappings_dir)
        engine = Engine(client, store, state_dir, options)
        report = engine.revert(run_id, confirm=confirmer(request))
        saved = save_report(state_dir, store, report)
    if as_json:
        emit_json({**report.to_dict(), "report_file": str(saved)})
    else:
        report_line = _("Report: {path}").format(path=saved)
        click.echo("\n".join([*plan_lines(report), *result_lines(report), report_line]))
    finish(report.exit_code)
