"""``moodle-bridge run --manifest units.toml``: every unit's source, one process, one state."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from moodle_bridge.cli.app import STATE_FILE, AppContext, BridgeCommand, emit_json, finish
from moodle_bridge.cli.connect import connect
from moodle_bridge.cli.failures import ExitCode
from moodle_bridge.cli.notifying import notifying
from moodle_bridge.cli.options import JSON_OPTION, WAIT_FOR_SITE_OPTION, input_file
from moodle_bridge.cli.provision_cmd import RunRequest, save_report, source_for, sync_source
from moodle_bridge.cli.render import plan_lines, result_lines
from moodle_bridge.files import exclusive
from moodle_bridge.i18n import _
from moodle_bridge.manifest import ManifestSource, digest, load_manifest
from moodle_bridge.moodle.api import Caller
from moodle_bridge.notify import Part, sync_part
from moodle_bridge.store import Store
from moodle_bridge.sync.observe import bind_site

__all__ = ["run_command"]


@dataclass
class Outcome:
    """What became of one source of the manifest: ``note`` is a sentence in the run's language
    (in ``--json`` too, as a reason is); ``code`` is what scripts read."""

    name: str
    code: int
    note: str
    report: dict[str, Any] | None = None
    report_file: str | None = None

    def part(self) -> Part:
        """This source in the manifest run's one ``[notify]`` summary."""
        if self.report is None:
            return Part(self.name, self.code, note=self.note)
        return sync_part(self.report, self.report_file)


@click.command("run", cls=BridgeCommand)
@input_file("--manifest", "TOML file of [[source]] tables (plugin, roster, ...).", required=True)
@click.option(
    "--yes", is_flag=True, help="Apply without asking (asking happens only on a terminal anyway)."
)
@WAIT_FOR_SITE_OPTION
@JSON_OPTION
@click.pass_obj
def run_command(
    app: AppContext, manifest: Path, yes: bool, wait_for_site: bool, as_json: bool
) -> None:
    """Sync every source of a manifest, one after the other, on one state.

    A source whose roster, assessments and mapping tables have not changed since its last
    successful run is skipped; a missing roster is skipped with a warning (exit 1), never read
    as an empty roster. Each source gets its own report; the exit code is the highest.
    """
    if wait_for_site:
        app.wait_for_site()
    state_dir = app.settings.state.dir
    outcomes: list[Outcome] = []
    with notifying(app, "run") as parts:
        loaded = load_manifest(manifest)  # a broken manifest is told too
        with (
            connect(app) as client,
            exclusive(state_dir),
            Store.open(state_dir / STATE_FILE) as store,
        ):
            # A skipped source asks Moodle nothing: the state's site is checked once for all.
            bind_site(client, store, str(app.settings.moodle.url), record=False)
            for source in loaded.source:
                outcome = _run_source(app, client, store, source, (loaded.base, yes, as_json))
                outcomes.append(outcome)
                if outcome.code == ExitCode.FATAL:
                    # A fatal answer (a revoked token, a site that stays away) fails every
                    # source.
                    outcomes += [
                        Outcome(rest.name, ExitCode.FATAL, _("not run"))
                        for rest in _after(loaded.source, source)
                    ]
                    break
        code = max((o.code for o in outcomes), default=ExitCode.OK)
        parts += [o.part() for o in outcomes]
        if as_json:
            emit_json({"exit_code": code, "sources": [vars(o) for o in outcomes]})
        else:
            # Translators: a source's outcome in a manifest run: "pendis: unchanged since its
            # last successful run (exit 0)".
            line = _("{source}: {note} (exit {code})")
            said = [line.format(source=o.name, note=o.note, code=o.code) for o in outcomes]
            click.echo("\n".join(said))
        finish(code)


def _after(
    sources: tuple[ManifestSource, ...], source: ManifestSource
) -> tuple[ManifestSource, ...]:
    return sources[sources.index(source) + 1 :]


def _run_source(
    app: AppContext,
    client: Caller,
    store: Store,
    source: ManifestSource,
    how: tuple[Path, bool, bool],
) -> Outcome:
    base, yes, as_json = how
    roster = source.roster_path(base)
    if roster is None:
        note = _("no roster matches {pattern}").format(pattern=source.roster)
        return Outcome(source.name, ExitCode.RECORD_ERRORS, note)
    assessments = source.assessments_path(base)
    if source.assessments and assessments is None:
        note = _("no assessments match {pattern}").format(pattern=source.assessments)
        return Outcome(source.name, ExitCode.RECORD_ERRORS, note)
    tables = sorted(app.mappings_dir.rglob("*.csv"))
    key = digest([roster, assessments, *tables])
    if store.source_digest(source.name) == key:
        return Outcome(source.name, ExitCode.OK, _("unchanged since its last successful run"))
    request = RunRequest(
        source.plugin,
        roster,
        assessments,
        apply=True,
        yes=yes,
        as_json=as_json,
        scope=frozenset(source.scope) if source.scope else None,
        name=source.name,
    )
    state = (store, app.settings.state.dir)
    report = sync_source(app, client, state, request, source_for(app, request))
    saved = save_report(app.settings.state.dir, store, report)
    # Record errors need a corrected roster, which changes the digest; a stopped, guarded or
    # declined run must run again as it is.
    if report.exit_code in (ExitCode.OK, ExitCode.RECORD_ERRORS) and not report.declined:
        store.record_source(source.name, key, report.run_id)
    if not as_json:
        lines = [f"== {source.name}: {roster}", *plan_lines(report), *result_lines(report)]
        click.echo("\n".join(lines))
    # Translators: a synced source's outcome: its roster file and its run report.
    note = _("{roster}: report {path}").format(roster=roster.name, path=saved)
    return Outcome(source.name, report.exit_code, note, report.to_dict(), str(saved))
