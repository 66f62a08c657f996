"""``moodle-bridge plan`` and ``sync``: read a roster, plan, confirm on a terminal, apply."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from moodle_bridge.cli.app import (
    STATE_FILE,
    AppContext,
    BridgeCommand,
    emit_json,
    finish,
    progress_bars,
)
from moodle_bridge.cli.connect import site_and_state
from moodle_bridge.cli.options import (
    ASSESSMENTS_OPTION,
    EMULATOR_OPTION,
    JSON_OPTION,
    ROSTER_OPTION,
    chosen_plugin,
    load_plugin,
    plugin_or_alias,
)
from moodle_bridge.cli.render import plan_lines, result_lines
from moodle_bridge.config import Settings
from moodle_bridge.files import private_dir, write_private_text
from moodle_bridge.store import Store
from moodle_bridge.sync.desired import AccountPolicy
from moodle_bridge.sync.engine import Engine, SyncOptions, SyncReport
from moodle_bridge.sync.planner import Guards, Plan

__all__ = ["RunRequest", "plan_command", "run_engine", "sync_command"]


@dataclass(frozen=True)
class RunRequest:
    """What ``plan`` or ``sync`` was asked to do."""

    plugin: str
    roster: Path
    assessments: Path | None
    apply: bool
    yes: bool = False
    as_json: bool = False
    out: Path | None = None
    reconcile: bool = False
    adopt: bool = False
    allow_suspend: int | None = None
    use_emulator: bool = False


def sync_options(settings: Settings, request: RunRequest) -> SyncOptions:
    """The engine's options from the settings and the command line."""
    sync = settings.sync
    return SyncOptions(
        apply=request.apply,
        reconcile=request.reconcile,
        adopt=request.adopt,
        guards=Guards(sync.suspend_share, sync.suspend_max, request.allow_suspend),
        policy=AccountPolicy(sync.profile_fields, sync.placeholder_email_domain),
        workers=settings.moodle.workers,
        field_budget=settings.moodle.field_budget,
        max_failure_rate=sync.max_failure_rate,
        role_id=settings.enrol.role_id,
        role_shortname=settings.enrol.role,
    )


def _confirmer(request: RunRequest) -> Callable[[Plan, SyncReport], bool]:
    def confirm(plan: Plan, report: SyncReport) -> bool:
        # Under cron there is nobody to ask: no terminal means yes, as --yes does.
        if request.yes or not sys.stdin.isatty():
            return True
        click.echo("\n".join(plan_lines(report)))
        return click.confirm("Apply this plan to Moodle?", default=False)

    return confirm


def _save_report(state_dir: Path, report: SyncReport) -> Path:
    """The run report with NIPs, owner-only, under ``<state>/reports/``."""
    folder = private_dir(state_dir / "reports")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = folder / f"{report.command}-{report.run_id or 'dry'}-{stamp}.json"
    data = json.dumps(report.to_dict(personal=True), indent=2, ensure_ascii=False)
    return write_private_text(path, data)


def run_engine(app: AppContext, request: RunRequest) -> None:
    """Run the engine as asked, show the report, and end with the run's exit code."""
    unit = load_plugin(request.plugin)
    gaps = app.gap_inputs(request.assessments) if request.assessments else None
    options = sync_options(app.settings, request)
    with (
        site_and_state(app, request.use_emulator) as (client, state_dir),
        Store.open(state_dir / STATE_FILE) as store,
        progress_bars(not request.as_json) as progress,
    ):
        engine = Engine(client, store, state_dir, options, progress=progress)
        report = engine.run(
            request.plugin, unit, request.roster, confirm=_confirmer(request), gaps=gaps
        )
        # An emulator's state is discarded with it: there is no report to point to.
        keep = request.apply and not request.use_emulator
        saved = _save_report(state_dir, report) if keep else None
    if request.as_json:
        emit_json({**report.to_dict(), "report_file": str(saved) if saved else None})
    else:
        lines = plan_lines(report)
        if request.apply:
            lines += result_lines(report)
            lines += [f"Report: {saved}"] if saved else []
        click.echo("\n".join(lines))
    if request.out is not None:
        private_dir(request.out.parent)
        write_private_text(request.out, json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    finish(report.exit_code)


@click.command("plan", cls=BridgeCommand)
@plugin_or_alias
@ROSTER_OPTION
@ASSESSMENTS_OPTION
@JSON_OPTION
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the plan summary as JSON (NIPs masked) to this file, owner-only.",
)
@EMULATOR_OPTION
@click.pass_obj
def plan_command(
    app: AppContext,
    plugin: str | None,
    unit_alias: str | None,
    roster: Path,
    assessments: Path | None,
    as_json: bool,
    out: Path | None,
    use_emulator: bool,
) -> None:
    """Read and check the roster and show what a sync would change. Writes nothing."""
    request = RunRequest(
        chosen_plugin(plugin, unit_alias),
        roster,
        assessments,
        apply=False,
        as_json=as_json,
        out=out,
        use_emulator=use_emulator,
    )
    run_engine(app, request)


@click.command("sync", cls=BridgeCommand)
@plugin_or_alias
@ROSTER_OPTION
@ASSESSMENTS_OPTION
@click.option(
    "--yes", is_flag=True, help="Apply without asking (asking happens only on a terminal anyway)."
)
@click.option(
    "--allow-suspend",
    type=click.IntRange(0),
    metavar="N",
    help="Accept up to N suspensions, above the safety limit.",
)
@click.option(
    "--reconcile",
    is_flag=True,
    help="Read every owned account back from Moodle to find changes made by hand "
    "(slow: ~10 minutes for 233,000 accounts).",
)
@click.option(
    "--adopt",
    is_flag=True,
    help="Take over existing Moodle accounts of roster people, matched by idnumber, then username.",
)
@JSON_OPTION
@EMULATOR_OPTION
@click.pass_obj
def sync_command(
    app: AppContext,
    plugin: str | None,
    unit_alias: str | None,
    roster: Path,
    assessments: Path | None,
    yes: bool,
    allow_suspend: int | None,
    reconcile: bool,
    adopt: bool,
    as_json: bool,
    use_emulator: bool,
) -> None:
    """Plan, show the plan, confirm on a terminal, and apply it to Moodle.

    A second run with the same roster changes nothing. An interrupted run is resumed by the
    next one: batches whose answer was lost are re-checked in Moodle first.
    """
    request = RunRequest(
        chosen_plugin(plugin, unit_alias),
        roster,
        assessments,
        apply=True,
        yes=yes,
        as_json=as_json,
        reconcile=reconcile,
        adopt=adopt,
        allow_suspend=allow_suspend,
        use_emulator=use_emulator,
    )
    run_engine(app, request)
