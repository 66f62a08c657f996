"""``moodle-bridge doctor``: is the site, its token and its service fit for the bridge?"""

from __future__ import annotations

import click

from moodle_bridge.cli.app import AppContext, BridgeCommand, emit_json, finish
from moodle_bridge.cli.connect import connect
from moodle_bridge.cli.failures import ExitCode
from moodle_bridge.cli.options import JSON_OPTION
from moodle_bridge.cli.render import doctor_data, doctor_lines
from moodle_bridge.doctor import run_doctor
from moodle_bridge.sync.gaps import load_all_mappings


@click.command("doctor", cls=BridgeCommand)
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
@JSON_OPTION
@click.pass_obj
def doctor(app: AppContext, use_emulator: bool, check_catalogue: bool, as_json: bool) -> None:
    """Check the URL, the token, the service's functions and that user lookups work."""
    shortnames: list[str] = []
    if check_catalogue:
        mappings = load_all_mappings(app.mappings_dir)
        shortnames = [o.course_shortname for m in mappings.values() for o in m.catalogue]
    completions, zone = app.settings.completions, app.settings.enrol.timezone
    with connect(app, use_emulator) as client:
        report = run_doctor(
            client,
            shortnames,
            completion_report=completions.report,
            use_report=completions.use_report,
            timezone=zone,
            probe_course=app.settings.cohorts.probe_course,
        )
    if as_json:
        emit_json(doctor_data(report))
    else:
        click.echo("\n".join(doctor_lines(report)))
    finish(ExitCode.OK if report.ok else ExitCode.FATAL)
