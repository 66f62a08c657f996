"""``moodle-bridge plan`` and ``sync``: read a roster, plan, confirm on a terminal, apply."""
# The runs of a manifest share this path: ``run_cmd`` calls :func:`sync_source`.

from __future__ import annotations

import contextlib
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
from moodle_bridge.cli.notifying import notifying
from moodle_bridge.cli.options import (
    EMULATOR_OPTION,
    JSON_OPTION,
    SCOPE_OPTION,
    SYNC_ASSESSMENTS_OPTION,
    SYNC_ROSTER_OPTION,
    WAIT_FOR_SITE_OPTION,
    chosen_plugin,
    load_plugin,
    plugin_or_alias,
    require_file,
)
from moodle_bridge.cli.render import change_lines, plan_lines, plan_rows, result_lines
from moodle_bridge.completions import pull_options
from moodle_bridge.config import Settings
from moodle_bridge.files import exclusive, private_dir, write_private_text
from moodle_bridge.i18n import _
from moodle_bridge.mappings import load_unit_cohorts
from moodle_bridge.moodle.api import Caller
from moodle_bridge.notify import sync_part
from moodle_bridge.reports.changes import write_changes
from moodle_bridge.reports.repairs import refused_rows, repairs_path, write_repairs
from moodle_bridge.roster.statuses import load_statuses
from moodle_bridge.store import Store
from moodle_bridge.sync.desired import AccountPolicy
from moodle_bridge.sync.engine import Engine, Source, SyncOptions, SyncReport
from moodle_bridge.sync.plan import Plan
from moodle_bridge.sync.planner import Guards
from moodle_bridge.units import UnitMapper

__all__ = [
    "RunRequest",
    "confirmer",
    "plan_command",
    "run_engine",
    "save_repairs",
    "save_report",
    "source_for",
    "sync_command",
    "sync_options",
    "sync_source",
]


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
    adopt_cohorts: bool = False
    allow_suspend: int | None = None
    use_emulator: bool = False
    scope: frozenset[str] | None = None
    stop_gaps: bool = False
    name: str | None = None


def sync_options(settings: Settings, request: RunRequest, mappings_dir: Path) -> SyncOptions:
    """The engine's options from the settings and the command line."""
    sync = settings.sync
    return SyncOptions(
        apply=request.apply,
        reconcile=request.reconcile,
        adopt=request.adopt,
        adopt_cohorts=request.adopt_cohorts,
        scope=request.scope,
        absent_grace_days=sync.absent_grace_days,
        stop_gaps=request.stop_gaps,
        probe_course=settings.cohorts.probe_course,
        guards=Guards(sync.suspend_share, sync.suspend_max, request.allow_suspend),
        policy=AccountPolicy(
            sync.profile_fields, sync.placeholder_email_domain, load_unit_cohorts(mappings_dir)
        ),
        workers=settings.moodle.workers,
        max_failure_rate=sync.max_failure_rate,
        role_id=settings.enrol.role_id,
        role_shortname=settings.enrol.role,
        mappings_dir=mappings_dir,
        pull=pull_options(settings),
        slow_user_seconds=settings.moodle.slow_user_ms / 1000,
    )


def source_for(app: AppContext, request: RunRequest) -> Source:
    """The roster (and assessments) to read, through its plugin and the status table."""
    unit = load_plugin(request.plugin)
    unit.statuses = load_statuses(app.mappings_dir)
    gaps = app.gap_inputs(request.assessments) if request.assessments else None
    return Source(request.plugin, unit, request.roster, gaps, request.name)


def confirmer(request: RunRequest) -> Callable[[Plan, SyncReport], bool]:
    """Ask on a terminal before applying; the full per-person list is one keystroke away."""

    def confirm(plan: Plan, report: SyncReport) -> bool:
        # Under cron there is nobody to ask: no terminal means yes, as --yes does.
        if request.yes or not sys.stdin.isatty():
            return True
        click.echo("\n".join(plan_lines(report)))
        # Translators: only an answer starting with "y" applies and one with "l" lists; keep
        # those letters (Indonesian "ya" and "lihat" keep them too).
        question = _("Apply this plan to Moodle? [y]es, [n]o, [l]ist every change")
        while True:
            answer = click.prompt(question, default="n", show_default=False).strip().lower()
            if answer.startswith("l"):
                click.echo_via_pager("\n".join(change_lines(plan_rows(report), limit=None)))
                continue
            return answer.startswith("y")

    return confirm


def save_report(state_dir: Path, store: Store, report: SyncReport) -> Path:
    """The run report with NIPs, the run's per-person changes and the HR error file (see
    :func:`save_repairs`), owner-only, under ``<state>/reports/``."""
    folder = private_dir(state_dir / "reports")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = folder / f"{report.command}-{report.run_id or 'dry'}-{stamp}"
    if report.run_id is not None:
        write_changes(
            base.with_suffix(".csv"), store.run_changes(report.run_id), store.display_names()
        )
    data = json.dumps(report.to_dict(personal=True), indent=2, ensure_ascii=False)
    saved = write_private_text(base.with_suffix(".json"), data)
    save_repairs(saved, report)
    return saved


def save_repairs(beside: Path, report: SyncReport) -> Path | None:
    """The HR error file of the run's refused rows, next to the file ``beside`` (the run
    report or the plan file), in the run's language; None when no row was refused."""
    rows = refused_rows(report.row_errors, report.row_warnings)
    if not rows:
        return None
    return write_repairs(repairs_path(beside), rows, report.nip_columns)


def sync_source(
    app: AppContext, client: Caller, state: tuple[Store, Path], request: RunRequest, source: Source
) -> SyncReport:
    """One run of the engine for ``request`` on an open state, as plan, sync and run share it."""
    store, state_dir = state
    options = sync_options(app.settings, request, app.mappings_dir)
    with progress_bars(not request.as_json) as progress:
        engine = Engine(client, store, state_dir, options, progress=progress)
        report = engine.run(source, confirm=confirmer(request))
    names = source.unit.column_names if isinstance(source.unit, UnitMapper) else {}
    report.nip_columns = tuple(sorted({"nip", names.get("nip", "nip")}))
    return report


def run_engine(app: AppContext, request: RunRequest) -> None:
    """Run the engine as asked, show the report, and end with the run's exit code.

    An applied run against the configured site tells ``[notify]`` when it needs a human.
    """
    # An emulator's state is discarded with it: there is no report to point to, nor anyone to
    # tell about a trial.
    keep = request.apply and not request.use_emulator
    with notifying(app, "sync", enabled=keep) as parts:
        # Checked here rather than by click: a file missing under cron is told to [notify].
        require_file(request.roster, "--roster")
        require_file(request.assessments, "--assessments")
        source = source_for(app, request)  # an unknown plugin stops before any site is asked
        with site_and_state(app, request.use_emulator) as (client, state_dir):
            lock = exclusive(state_dir) if request.apply else contextlib.nullcontext()
            with lock, Store.open(state_dir / STATE_FILE) as store:
                report = sync_source(app, client, (store, state_dir), request, source)
                saved = save_report(state_dir, store, report) if keep else None
                if request.out is not None:
                    _write_out(request.out, store, report)
                repairs = _repairs_file(request, state_dir, report, saved)
        parts.append(sync_part(report.to_dict(), str(saved) if saved else None))
        _show(request, report, saved, repairs)
        finish(report.exit_code)


def _show(
    request: RunRequest, report: SyncReport, saved: Path | None, repairs: Path | None
) -> None:
    if request.as_json:
        files = {"report_file": str(saved) if saved else None}
        emit_json({**report.to_dict(), **files, "repairs_file": str(repairs) if repairs else None})
        return
    lines = plan_lines(report)
    if request.apply:
        lines += result_lines(report)
        lines += [_("Report: {path}").format(path=saved)] if saved else []
    if repairs is not None:
        lines.append(_("Rows for HR to correct, with how to fix each: {path}").format(path=repairs))
    click.echo("\n".join(lines))


def _repairs_file(
    request: RunRequest, state_dir: Path, report: SyncReport, saved: Path | None
) -> Path | None:
    """Where the HR error file went: beside the run report (sync), beside ``--out`` or in
    ``<state>/reports/`` (plan); None when no row was refused or there is nowhere to keep it
    (a plan on the emulator without ``--out``)."""
    if saved is not None:
        return repairs_path(saved) if refused_rows(report.row_errors, report.row_warnings) else None
    if request.out is not None:
        return save_repairs(request.out, report)
    if request.apply or request.use_emulator:
        return None
    folder = private_dir(state_dir / "reports")
    return save_repairs(folder / f"{report.command}-{time.strftime('%Y%m%d-%H%M%S')}", report)


def _write_out(out: Path, store: Store, report: SyncReport) -> None:
    """``--out``: the per-person changes (``.csv``) or the summary (anything else, JSON)."""
    private_dir(out.parent)
    if out.suffix.lower() != ".csv":
        write_private_text(out, json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return
    names = store.display_names()
    if report.plan is not None:
        names.update({c.nip: c.display_name for c in report.plan.creates})
        units = {a.nip: a.unit for a in store.accounts().values()}
        write_changes(out, report.plan.person_changes(units), names)


@click.command("plan", cls=BridgeCommand)
@plugin_or_alias
@SYNC_ROSTER_OPTION
@SYNC_ASSESSMENTS_OPTION
@JSON_OPTION
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the plan to this file, owner-only: with .csv one line per person-level "
    "change (action, NIP, name, unit, reason, roster row), otherwise the summary as JSON.",
)
@SCOPE_OPTION
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
    scope: frozenset[str] | None,
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
        scope=scope,
    )
    run_engine(app, request)


@click.command("sync", cls=BridgeCommand)
@plugin_or_alias
@SYNC_ROSTER_OPTION
@SYNC_ASSESSMENTS_OPTION
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
    help="Take over existing Moodle accounts of roster people, matched by idnumber, then "
    "username; the plan counts them, and they are taken over once it is confirmed.",
)
@click.option(
    "--adopt-cohorts",
    is_flag=True,
    help="Use cohorts that exist in Moodle with the idnumbers the bridge wants although the "
    "bridge did not create them (they are left alone and reported otherwise); the plan lists "
    "them, and they are taken over once it is confirmed.",
)
@click.option(
    "--stop-gaps",
    is_flag=True,
    help="Stop managing competency gaps for the units in scope: remove their gap-cohort "
    "memberships and suspend the bridge's enrolments (through the safety guard).",
)
@SCOPE_OPTION
@WAIT_FOR_SITE_OPTION
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
    adopt_cohorts: bool,
    stop_gaps: bool,
    scope: frozenset[str] | None,
    wait_for_site: bool,
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
        adopt_cohorts=adopt_cohorts,
        allow_suspend=allow_suspend,
        use_emulator=use_emulator,
        scope=scope,
        stop_gaps=stop_gaps,
    )
    if stop_gaps and assessments is not None:
        msg = "--stop-gaps stops managing gaps: it cannot be given with --assessments"
        raise click.UsageError(msg)
    if wait_for_site:
        app.wait_for_site()
    run_engine(app, request)
