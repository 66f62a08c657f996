"""The ``moodle-bridge`` command line: parse options, call the library, show the result."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from moodle_bridge import __version__, logs
from moodle_bridge.completions import PullOptions, pull_completions
from moodle_bridge.config import Settings, load_settings
from moodle_bridge.doctor import DoctorReport, run_doctor
from moodle_bridge.errors import ConfigError, MoodleError
from moodle_bridge.logs import mask
from moodle_bridge.mappings import CourseOffer
from moodle_bridge.moodle.client import MoodleClient, RetryPolicy
from moodle_bridge.moodle.transport import Transport
from moodle_bridge.reports import ReportInputs, gap_counts, reports_from_store
from moodle_bridge.samples import (
    generate_assessments,
    generate_people,
    write_assessments_csv,
    write_roster_csv,
    write_roster_xlsx,
)
from moodle_bridge.store import EnrolmentRow, LedgerEntry, Store
from moodle_bridge.sync.desired import AccountPolicy
from moodle_bridge.sync.engine import Engine, SyncOptions, SyncReport
from moodle_bridge.sync.executor import Progress
from moodle_bridge.sync.gaps import GapInputs, GapState, gap_state, load_all_mappings
from moodle_bridge.sync.planner import Guards, Plan
from moodle_bridge.units import UnitMapper, discover_units, installed_units

#: Exit codes, documented in the README, so cron can tell outcomes apart.
EXIT_OK = 0
EXIT_RECORD_ERRORS = 1
EXIT_USAGE = 2
EXIT_GUARD = 3
EXIT_FATAL = 4

#: Per-record lines shown on the terminal; the rest are in the run report and --json.
SHOWN = 15

#: The mapping tables shipped beside the package (a source checkout or editable install).
SHIPPED_MAPPINGS = Path(__file__).resolve().parent.parent / "mappings"

#: The state database inside the state directory.
STATE_FILE = "state.sqlite3"


class AppContext:
    """What every command needs: the settings and the environment they came from."""

    def __init__(self, config_file: Path | None) -> None:
        self.config_file = config_file
        self.env = dict(os.environ)
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """The settings, loaded on first use so ``--help`` never needs a valid file."""
        if self._settings is None:
            self._settings = load_settings(self.env, self.config_file)
        return self._settings


def fail(message: str, code: int) -> None:
    """Print ``message`` to stderr and exit with ``code``."""
    click.echo(f"moodle-bridge: {message}", err=True)
    sys.exit(code)


def client_for(settings: Settings, url: str, token: str) -> MoodleClient:
    """A client configured from the settings."""
    moodle = settings.moodle
    transport = Transport(
        connect_timeout=moodle.connect_timeout,
        read_timeout=moodle.read_timeout,
        ca_bundle=moodle.ca_bundle,
        concurrency=moodle.workers,
    )
    retry = RetryPolicy(max_attempts=moodle.max_attempts, max_total_wait=moodle.max_total_wait)
    return MoodleClient(
        url, token, transport=transport, retry=retry, field_budget=moodle.field_budget
    )


@contextlib.contextmanager
def connect(app: AppContext, use_emulator: bool) -> Iterator[MoodleClient]:
    """A client for the configured site, or for a built-in emulator served on 127.0.0.1."""
    try:
        settings = app.settings
        if use_emulator:
            from moodle_bridge.emulator import Emulator, default_seed
            from moodle_bridge.emulator.server import running

            emulator = Emulator(default_seed())
            with (
                running(emulator) as server,
                client_for(settings, server.url, emulator.token_for("bridge")) as client,
            ):
                yield client
            return
        if not settings.moodle.url:
            fail(
                "no Moodle URL: set MOODLE_BRIDGE_URL or [moodle] url in moodle-bridge.toml",
                EXIT_USAGE,
            )
        token = settings.token(app.env)
        client = client_for(settings, str(settings.moodle.url), token)
    except ConfigError as error:
        fail(str(error), EXIT_USAGE)
        raise  # unreachable: fail() exits; keeps type checkers informed
    with client:
        yield client


def emit_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout, for scripts."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="moodle-bridge")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Settings file (default: $MOODLE_BRIDGE_CONFIG, else ./moodle-bridge.toml when present).",
)
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="More log output on stderr (-v info, -vv debug). NIPs and emails are masked.",
)
@click.pass_context
def main(ctx: click.Context, config_file: Path | None, verbose: int) -> None:
    """Provision Kemenag ASN into Moodle, enrol them by competency gap, pull completions.

    Exit codes: 0 all done; 1 done with record errors; 2 usage or configuration error;
    3 stopped by a safety guard; 4 stopped by a fatal Moodle error.
    """
    logs.configure(verbose)
    ctx.obj = AppContext(config_file)


def _render_doctor(report: DoctorReport) -> None:
    if report.sitename:
        click.echo(f"Site: {report.sitename} (Moodle {report.release})")
    for check in report.checks:
        mark = "ok  " if check.ok else "FAIL"
        click.echo(f"[{mark}] {check.name}: {check.detail}")
        if check.hint and not check.ok:
            click.echo(f"       fix: {check.hint}")
    click.echo("All checks passed." if report.ok else "Some checks failed.")


@main.command()
@click.option(
    "--emulator",
    "use_emulator",
    is_flag=True,
    help="Check the built-in Moodle emulator (served on 127.0.0.1) instead of the configured site.",
)
@click.option(
    "--catalogue",
    "check_catalogue",
    is_flag=True,
    help="Also check that every course in the mapping tables' catalogues exists in Moodle "
    "(one lookup per course).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def doctor(app: AppContext, use_emulator: bool, check_catalogue: bool, as_json: bool) -> None:
    """Check the URL, the token, the service's functions and that user lookups work."""
    shortnames: list[str] = []
    if check_catalogue:
        try:
            mappings = load_all_mappings(mappings_dir(app.settings))
        except ConfigError as error:
            fail(str(error), EXIT_USAGE)
        shortnames = [o.course_shortname for m in mappings.values() for o in m.catalogue]
    with connect(app, use_emulator) as client:
        report = run_doctor(client, shortnames)
    if as_json:
        emit_json(
            {
                "ok": report.ok,
                "sitename": report.sitename,
                "release": report.release,
                "checks": [vars(check) for check in report.checks],
            }
        )
    else:
        _render_doctor(report)
    sys.exit(EXIT_OK if report.ok else EXIT_FATAL)


# --- provisioning ------------------------------------------------------------------------------
def _options(
    settings: Settings,
    *,
    apply: bool,
    reconcile: bool = False,
    adopt: bool = False,
    allow_suspend: int | None = None,
) -> SyncOptions:
    sync = settings.sync
    return SyncOptions(
        apply=apply,
        reconcile=reconcile,
        adopt=adopt,
        guards=Guards(sync.suspend_share, sync.suspend_max, allow_suspend),
        policy=AccountPolicy(sync.profile_fields, sync.placeholder_email_domain),
        workers=settings.moodle.workers,
        field_budget=settings.moodle.field_budget,
        max_failure_rate=sync.max_failure_rate,
        role_id=settings.enrol.role_id,
        role_shortname=settings.enrol.role,
    )


def mappings_dir(settings: Settings) -> Path:
    """The mapping tables' folder: the setting, else ./mappings, else the shipped one."""
    if settings.enrol.mappings_dir is not None:
        return settings.enrol.mappings_dir
    here = Path("mappings")
    return here if here.is_dir() else SHIPPED_MAPPINGS


def _gap_inputs(settings: Settings, assessments: Path | None) -> GapInputs | None:
    if assessments is None:
        return None
    return GapInputs(
        assessments, mappings_dir(settings), datetime.date.today(), settings.enrol.timezone
    )


def _unit(name: str) -> UnitMapper:
    found = discover_units()
    for problem in found.problems:
        click.echo(f"moodle-bridge: plugin {problem.name} skipped: {problem.reason}", err=True)
    try:
        return found.require(name)
    except ConfigError as error:
        fail(str(error), EXIT_USAGE)
        raise


@contextlib.contextmanager
def _progress_bars(enabled: bool) -> Iterator[Progress | None]:
    """A progress bar per stage on stderr when it is a terminal; None otherwise."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    with contextlib.ExitStack() as stack:
        bars: dict[str, Any] = {}

        def advance(stage: str, done: int, total: int) -> None:
            if stage not in bars:
                bar = click.progressbar(
                    length=total, label=stage.replace("_", " "), file=sys.stderr
                )
                bars[stage] = stack.enter_context(bar)
            bars[stage].update(done)

        yield advance


def _render_plan(report: SyncReport) -> None:
    click.echo(
        f"Roster {report.roster}: {report.rows} rows, {report.people} people, "
        f"{len(report.row_errors)} refused, {len(report.row_warnings)} warnings."
    )
    for error in report.row_errors[:SHOWN]:
        column = f" [{error.column}]" if error.column else ""
        click.echo(f"  row {error.row}{column}: {error.reason}")
    if len(report.row_errors) > SHOWN:
        click.echo(f"  ... and {len(report.row_errors) - SHOWN} more (see --json or the report)")
    if report.resumed:
        click.echo(
            "Re-checked from an interrupted run: "
            + ", ".join(f"{n} {a}" for a, n in sorted(report.resumed.items()))
        )
    if report.adopted:
        click.echo(f"Adopted {report.adopted} existing accounts.")
    planned = ", ".join(f"{n} {k}" for k, n in report.planned.items() if n) or "nothing"
    click.echo(f"Plan: {planned}.")
    if report.guard:
        click.echo(f"STOPPED by a safety guard: {report.guard.reason}.")
        if report.proposed_removals:
            click.echo(f"Proposed suspensions written to {report.proposed_removals}")


def _render_result(report: SyncReport) -> None:
    if report.declined:
        click.echo("Nothing applied.")
        return
    result = report.result
    if result is not None:
        applied = ", ".join(f"{n} {k}" for k, n in sorted(result.applied.items())) or "nothing"
        click.echo(f"Applied: {applied}.")
        for failure in result.failures[:SHOWN]:
            where = f"row {failure.row}: " if failure.row else ""
            nip = mask(failure.nip) if failure.nip else "-"
            click.echo(
                f"  {failure.action} {where}{nip}: {failure.reason}"
                + (f" ({failure.errorcode})" if failure.errorcode else "")
            )
        if result.stopped:
            click.echo(f"STOPPED: {result.stopped}. The next run resumes where this one ended.")
    calls = sum(report.calls.values())
    click.echo(f"{calls} Moodle calls in {report.seconds:.1f} s.")


def _save_report(state_dir: Path, report: SyncReport) -> Path:
    folder = state_dir / "reports"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = (
        folder / f"{report.command}-{report.run_id or 'dry'}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(report.to_dict(personal=True), out, indent=2, ensure_ascii=False)
    return path


def _run_sync(
    app: AppContext,
    *,
    unit_name: str,
    roster: Path,
    assessments: Path | None,
    apply: bool,
    yes: bool,
    as_json: bool,
    out: Path | None = None,
    reconcile: bool = False,
    adopt: bool = False,
    allow_suspend: int | None = None,
    use_emulator: bool = False,
) -> None:
    unit = _unit(unit_name)
    settings = app.settings
    options = _options(
        settings, apply=apply, reconcile=reconcile, adopt=adopt, allow_suspend=allow_suspend
    )
    state_dir = settings.state.dir

    def confirm(plan: Plan, report: SyncReport) -> bool:
        if yes or not sys.stdin.isatty():
            return True
        _render_plan(report)
        return click.confirm("Apply this plan to Moodle?", default=False)

    try:
        with (
            connect(app, use_emulator) as client,
            Store.open(state_dir / STATE_FILE) as store,
            _progress_bars(not as_json) as progress,
        ):
            engine = Engine(client, store, state_dir, options, progress=progress)
            report = engine.run(
                unit_name, unit, roster, confirm=confirm, gaps=_gap_inputs(settings, assessments)
            )
    except ConfigError as error:
        fail(str(error), EXIT_USAGE)
        return
    except MoodleError as error:
        fail(str(error), EXIT_FATAL)
        return
    saved = _save_report(state_dir, report) if apply else None
    if as_json:
        data = report.to_dict()
        data["report_file"] = str(saved) if saved else None
        emit_json(data)
    else:
        _render_plan(report)
        if apply:
            _render_result(report)
            click.echo(f"Report: {saved}")
    if out is not None:
        out.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False), "utf-8")
    sys.exit(report.exit_code)


UNIT_OPTION = click.option(
    "--unit",
    "unit_name",
    required=True,
    help="Unit plugin that reads the roster (generic, pendis, ...; see 'moodle-bridge plugins').",
)
ROSTER_OPTION = click.option(
    "--roster",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The HR roster export (CSV or XLSX) in the unit's format.",
)
ASSESSMENTS_OPTION = click.option(
    "--assessments",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Competency assessments (CSV/XLSX: nip, kompetensi, level, tanggal): also enrol "
    "people into the courses that close their gaps, and keep the gap cohorts.",
)
JSON_OPTION = click.option(
    "--json", "as_json", is_flag=True, help="Print the result as JSON (NIPs masked) for scripts."
)
EMULATOR_OPTION = click.option(
    "--emulator",
    "use_emulator",
    is_flag=True,
    help="Use a fresh built-in Moodle emulator instead of the "
    "configured site (for trying things out).",
)


@main.command("plan")
@UNIT_OPTION
@ROSTER_OPTION
@ASSESSMENTS_OPTION
@JSON_OPTION
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the plan summary as JSON to this file.",
)
@EMULATOR_OPTION
@click.pass_obj
def plan_command(
    app: AppContext,
    unit_name: str,
    roster: Path,
    assessments: Path | None,
    as_json: bool,
    out: Path | None,
    use_emulator: bool,
) -> None:
    """Read and check the roster and show what a sync would change. Writes nothing."""
    _run_sync(
        app,
        unit_name=unit_name,
        roster=roster,
        assessments=assessments,
        apply=False,
        yes=True,
        as_json=as_json,
        out=out,
        use_emulator=use_emulator,
    )


@main.command("sync")
@UNIT_OPTION
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
    unit_name: str,
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
    _run_sync(
        app,
        unit_name=unit_name,
        roster=roster,
        assessments=assessments,
        apply=True,
        yes=yes,
        as_json=as_json,
        reconcile=reconcile,
        adopt=adopt,
        allow_suspend=allow_suspend,
        use_emulator=use_emulator,
    )


# --- competency gaps ----------------------------------------------------------------------------
def _gap_state(app: AppContext, unit_name: str, roster: Path, assessments: Path) -> GapState:
    """The gap plan for a roster, counting the enrolments the bridge already made (read-only:
    the state database is opened only if it exists)."""
    unit = _unit(unit_name)
    settings = app.settings
    inputs = _gap_inputs(settings, assessments)
    assert inputs is not None
    try:
        people = unit.read_roster(roster).people
        database = settings.state.dir / STATE_FILE
        known: dict[tuple[str, str], EnrolmentRow] = {}
        completed: list[LedgerEntry] = []
        if database.exists():
            with Store.open(database) as store:
                known, completed = store.enrolments(), store.completions()
        return gap_state(people, unit, inputs, known, completed)
    except ConfigError as error:
        fail(str(error), EXIT_USAGE)
        raise


ASSESSMENTS_REQUIRED = click.option(
    "--assessments",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Competency assessments (CSV/XLSX: nip, kompetensi, level, tanggal).",
)


@main.command("gaps")
@UNIT_OPTION
@ROSTER_OPTION
@ASSESSMENTS_REQUIRED
@JSON_OPTION
@click.pass_obj
def gaps_command(
    app: AppContext, unit_name: str, roster: Path, assessments: Path, as_json: bool
) -> None:
    """Gap statistics per competency and level, people not assessed, positions without a
    standard, and projected enrolments per course against capacity. Writes nothing."""
    plan = _gap_state(app, unit_name, roster, assessments).plan
    courses: list[dict[str, Any]] = [
        {
            "course": load.offer.label(),
            "competency": load.offer.competency,
            "from_level": load.offer.from_level,
            "mode": load.offer.mode,
            "existing": load.existing,
            "chosen": load.chosen,
            "capacity": load.capacity,
            "waiting": len(load.waiting),
        }
        for load in plan.courses
    ]
    stats: dict[str, dict[str, Any]] = {
        code: {
            "required": s.required,
            "met": s.met,
            "not_assessed": s.not_assessed,
            "gaps_by_level": dict(s.gaps_by_level),
        }
        for code, s in sorted(plan.stats.items())
    }
    missing = [
        {"unit": m.unit, "jabatan": m.jabatan, "people": len(m.nips)} for m in plan.without_standard
    ]
    if as_json:
        emit_json(
            {
                "summary": plan.summary(),
                "competencies": stats,
                "courses": courses,
                "positions_without_standard": missing,
            }
        )
        return
    summary = plan.summary()
    click.echo("People: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in summary.items()))
    click.echo("\nGaps per competency (people at each current level):")
    for code, s in stats.items():
        levels = ", ".join(f"L{lvl}: {n}" for lvl, n in sorted(s["gaps_by_level"].items()))
        click.echo(
            f"  {code:<16} required {s['required']:>6}, met {s['met']:>6}, "
            f"not assessed {s['not_assessed']:>5}; gaps {levels or '-'}"
        )
    click.echo("\nProjected enrolments per course:")
    for c in courses:
        seats = f"/{c['capacity']}" if c["capacity"] is not None else ""
        waiting = f", {c['waiting']} waiting" if c["waiting"] else ""
        click.echo(f"  {c['course']:<40} {c['existing'] + c['chosen']}{seats}{waiting}")
    for m in missing:
        click.echo(f"No standard for {m['unit']} / {m['jabatan']} ({m['people']} people)")


@main.command("explain")
@click.argument("nip")
@UNIT_OPTION
@ROSTER_OPTION
@ASSESSMENTS_REQUIRED
@JSON_OPTION
@click.pass_obj
def explain_command(
    app: AppContext, nip: str, unit_name: str, roster: Path, assessments: Path, as_json: bool
) -> None:
    """Why NIP is (or is not) in each course: gaps, choices with reasons, cap usage."""
    explanation = _gap_state(app, unit_name, roster, assessments).plan.explain(nip)
    lines = explanation.lines()
    if as_json:
        emit_json({"nip": nip, "state": explanation.state, "lines": lines})
    else:
        click.echo("\n".join(lines))
    sys.exit(EXIT_OK if explanation.person is not None else EXIT_RECORD_ERRORS)


# --- completions --------------------------------------------------------------------------------
def catalogue_offers(settings: Settings) -> dict[str, CourseOffer]:
    """Every catalogue row of every unit in the mapping tables, by course shortname."""
    mappings = load_all_mappings(mappings_dir(settings))
    return {o.course_shortname: o for m in mappings.values() for o in m.catalogue}


@main.group()
def completions() -> None:
    """Course completions: pull them from Moodle into the local ledger."""


@completions.command("pull")
@click.option(
    "--unit",
    "units",
    multiple=True,
    help="Only people of this Eselon I unit (repeatable); default: everyone.",
)
@click.option(
    "--grace-days",
    type=click.IntRange(0),
    default=30,
    show_default=True,
    help="Keep asking about an enrolment this many days after its window closed.",
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
    try:
        catalogue = catalogue_offers(settings)
        with connect(app, False) as client, Store.open(settings.state.dir / STATE_FILE) as store:
            report = pull_completions(
                client,
                store,
                catalogue,
                as_of=datetime.date.today(),
                units=set(units) or None,
                options=PullOptions(grace_days, settings.moodle.workers, settings.enrol.timezone),
            )
    except ConfigError as error:
        fail(str(error), EXIT_USAGE)
        return
    data = {
        "people_asked": report.people_asked,
        "enrolments_pending": report.enrolments_pending,
        "skipped_closed_windows": report.skipped_closed,
        "new_completions": report.new_completions,
        "failures": [{"nip": mask(nip), "reason": reason} for nip, reason in report.failures],
        "stopped": report.stopped,
        "calls": dict(report.calls),
        "seconds": round(report.seconds, 3),
    }
    if as_json:
        emit_json(data)
    else:
        click.echo(
            f"Asked {report.people_asked} people about {report.enrolments_pending} "
            f"pending enrolments ({report.skipped_closed} past their window): "
            f"{report.new_completions} new completions, "
            f"{sum(report.calls.values())} Moodle calls in {report.seconds:.1f} s."
        )
        for nip, reason in report.failures[:SHOWN]:
            click.echo(f"  {mask(nip)}: {reason}")
        if report.stopped:
            click.echo(f"STOPPED: {report.stopped}")
    if report.stopped:
        sys.exit(EXIT_FATAL)
    sys.exit(EXIT_RECORD_ERRORS if report.failures else EXIT_OK)


# --- reports ---------------------------------------------------------------------------------
@main.command("report")
@click.option(
    "--unit",
    required=True,
    help="Eselon I unit code (PENDIS, SETJEN...), or ALL for the whole ministry.",
)
@click.option(
    "--year",
    type=click.IntRange(1970, 9998),
    required=True,
    help="Calendar year of the completions (Asia/Jakarta).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for the report files (created owner-only).",
)
@click.option(
    "--roster",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --assessments: also count each person's open gaps.",
)
@click.option(
    "--assessments",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --roster: the assessments for the open-gap counts.",
)
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
    settings = app.settings
    database = settings.state.dir / STATE_FILE
    if not database.exists():
        fail(f"no state database at {database}: run a sync first", EXIT_USAGE)
    counts = None
    if roster is not None and assessments is not None:
        counts = gap_counts(_gap_state(app, plugin, roster, assessments).plan, unit)
    try:
        mappings = load_all_mappings(mappings_dir(settings))
        inputs = ReportInputs(unit=unit, year=year, mappings=mappings, gaps=counts)
        with Store.open(database) as store:
            files = reports_from_store(store, inputs, out_dir)
    except ConfigError as error:
        fail(str(error), EXIT_USAGE)
        return
    if as_json:
        emit_json(
            {
                "files": [str(p) for p in files.paths],
                "people": files.people,
                "trainings": files.trainings,
            }
        )
    else:
        click.echo(f"{files.people} people, {files.trainings} trainings completed in {year}:")
        for path in files.paths:
            click.echo(f"  {path}")


@main.command("plugins")
@JSON_OPTION
def plugins_command(as_json: bool) -> None:
    """List the installed unit plugins, their versions, and any that failed to load."""
    units = installed_units()
    if as_json:
        emit_json([u.model_dump() for u in units])
        return
    for unit in units:
        state = f"BROKEN: {unit.problem}" if unit.problem else unit.unit_name
        click.echo(
            f"{unit.name:<16} {unit.code or '-':<14} {unit.distribution or '-'} "
            f"{unit.version or '-':<8} {state}"
        )


@main.command("demo")
@click.option(
    "--size",
    type=click.IntRange(1, 300_000),
    default=3000,
    show_default=True,
    help="How many synthetic ASN the demo roster holds.",
)
@click.option(
    "--seed",
    type=int,
    default=1,
    show_default=True,
    help="Seed of the synthetic roster (the same seed gives the same people).",
)
@click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("moodle-bridge-demo"),
    show_default=True,
    help="Where the demo writes its roster, state and reports.",
)
@JSON_OPTION
@click.pass_obj
def demo_command(app: AppContext, size: int, seed: int, workdir: Path, as_json: bool) -> None:
    """Sync a synthetic roster into a built-in Moodle emulator: plan, sync, sync again, then
    let simulated learners finish courses, pull the completions and write the reports.

    Everything stays on this machine: the emulator listens on 127.0.0.1 and the people are
    generated (names and NIPs of nobody real), with a few dirty rows of every kind.
    """
    from moodle_bridge.demo import run_demo

    with _progress_bars(not as_json) as progress:
        result = run_demo(
            workdir, mappings_dir(app.settings), size=size, seed=seed, progress=progress
        )
    if as_json:
        emit_json(
            {
                "ok": result.ok,
                "roster": str(result.roster),
                "plan": result.plan.to_dict(),
                "first_sync": result.first_sync.to_dict(),
                "second_sync": result.second_sync.to_dict(),
                "completed_in_moodle": result.completed_in_moodle,
                "pulled": result.pull.new_completions if result.pull else 0,
                "pull_calls": dict(result.pull.calls) if result.pull else {},
                "reports": [str(p) for p in result.reports.paths] if result.reports else [],
            }
        )
    else:
        click.echo(
            f"Demo roster: {result.roster} ({size} synthetic ASN in 3 units), "
            f"assessments: {result.assessments}"
        )
        click.echo(
            f"The administrators' part: {result.courses} catalogue courses created, "
            "cohort-mode courses linked to their gap cohorts."
        )
        click.echo(f"Moodle emulator: {result.site_url}\n")
        click.echo("1. moodle-bridge plan (writes nothing):")
        _render_plan(result.plan)
        click.echo("\n2. moodle-bridge sync:")
        _render_result(result.first_sync)
        click.echo("\n3. moodle-bridge sync again (nothing changed in the roster):")
        planned = sum(result.second_sync.planned.values())
        click.echo(
            f"Plan: {planned or 'nothing'} changes; "
            f"{sum(result.second_sync.calls.values())} Moodle calls."
        )
        if result.pull is not None:
            click.echo(
                f"\n4. Learners finish {result.completed_in_moodle} enrolments in Moodle; "
                f"moodle-bridge completions pull: {result.pull.new_completions} new in the "
                f"ledger, {sum(result.pull.calls.values())} Moodle calls."
            )
        if result.reports is not None:
            click.echo(f"\n5. moodle-bridge report --unit PENDIS: {result.reports.dashboard_html}")
        click.echo(f"\nState and run reports: {result.state_dir}")
        click.echo("Demo OK." if result.ok else "Demo FAILED: see above.")
    sys.exit(EXIT_OK if result.ok else EXIT_FATAL)


@main.command("sample-roster")
@click.option(
    "--size",
    type=click.IntRange(0),
    default=1000,
    show_default=True,
    help="How many synthetic ASN to generate.",
)
@click.option(
    "--seed",
    type=int,
    default=1,
    show_default=True,
    help="The same seed gives the same people, byte for byte.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for roster.csv, assessments.csv and mappings/.",
)
@click.option(
    "--dirty-share",
    type=click.FloatRange(0, 1),
    default=0.02,
    show_default=True,
    help="Share of rows with a defect of one of the kinds DOMAIN.md lists.",
)
@click.option("--xlsx", is_flag=True, help="Also write the roster as roster.xlsx.")
@click.pass_obj
def sample_roster_command(
    app: AppContext, size: int, seed: int, out_dir: Path, dirty_share: float, xlsx: bool
) -> None:
    """Write a deterministic synthetic roster, its assessments and matching mapping tables.

    Nobody in it is real: names and NIPs are generated, with titles, one-word and Balinese
    names, apostrophes, and the split across Eselon I units of the ministry.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    roster = out_dir / "roster.csv"
    written = write_roster_csv(roster, generate_people(size, seed, dirty_share=dirty_share))
    if xlsx:
        write_roster_xlsx(
            out_dir / "roster.xlsx", generate_people(size, seed, dirty_share=dirty_share)
        )
    source = mappings_dir(app.settings)
    shutil.copytree(source, out_dir / "mappings", dirs_exist_ok=True)
    competencies = sorted({c for m in load_all_mappings(source).values() for c in m.competencies})
    assessed = write_assessments_csv(
        out_dir / "assessments.csv",
        generate_assessments(
            generate_people(size, seed, dirty_share=dirty_share), competencies, seed
        ),
    )
    click.echo(f"{written} roster rows, {assessed} assessments and the mapping tables in {out_dir}")


@main.group()
def emulator() -> None:
    """The built-in Moodle emulator, for trying the bridge without a real site."""


@emulator.command("serve")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port on 127.0.0.1 to listen on (0 picks a free one).",
)
@click.option(
    "--seed",
    "seed_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Seed file in the contract's _seed.json format (default: the built-in one).",
)
def emulator_serve(port: int, seed_file: Path | None) -> None:
    """Serve an emulated Moodle on 127.0.0.1 until interrupted."""
    from moodle_bridge.emulator import Emulator, load_seed
    from moodle_bridge.emulator.server import running

    emu = Emulator(load_seed(seed_file))
    with running(emu, port) as server:
        click.echo(f"Moodle emulator listening on {server.url}")
        click.echo(
            "Tokens (emulator only, never secret): "
            + ", ".join(
                f"{user}={emu.token_for(user)}"
                for user in ("bridge", "admin")
                if user in emu.world.username_index
            )
        )
        click.echo("Press Ctrl-C to stop.")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
