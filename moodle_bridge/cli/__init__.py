"""The ``moodle-bridge`` command line: parse options, call the library, show the result.

One module per command group; ``render`` turns reports into text and JSON; ``failures`` holds
the one table from what went wrong to the exit code cron reads.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from moodle_bridge import __version__, i18n, logs
from moodle_bridge.cli.app import SHIPPED_MAPPINGS, AppContext, BridgeGroup
from moodle_bridge.cli.completions_cmd import completions
from moodle_bridge.cli.demo_cmd import demo_command
from moodle_bridge.cli.doctor_cmd import doctor
from moodle_bridge.cli.emulator_cmd import emulator
from moodle_bridge.cli.gaps_cmd import explain_command, gaps_command
from moodle_bridge.cli.plugins_cmd import plugins_command
from moodle_bridge.cli.provision_cmd import plan_command, sync_command
from moodle_bridge.cli.report_cmd import report_command
from moodle_bridge.cli.run_cmd import run_command
from moodle_bridge.cli.runs_cmd import runs
from moodle_bridge.cli.samples_cmd import sample_roster_command

__all__ = ["SHIPPED_MAPPINGS", "main"]


@click.group(cls=BridgeGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    help="More log output on stderr (-v info, -vv debug and tracebacks). NIPs and emails "
    "are masked.",
)
@click.option(
    "--lang",
    type=click.Choice(i18n.languages()),
    envvar=i18n.ENV_VAR,
    show_envvar=True,
    help="Language of row errors, warnings, plan and run summaries and the HR error file "
    "(en English, id Bahasa Indonesia). Default: the locale (LC_ALL, LC_MESSAGES, LANG), "
    "else English. Logs stay English.",
)
@click.pass_context
def main(ctx: click.Context, config_file: Path | None, verbose: int, lang: str | None) -> None:
    """Provision Kemenag ASN into Moodle, enrol them by competency gap, pull completions.

    Exit codes: 0 all done; 1 done with record errors; 2 usage or configuration error;
    3 stopped by a safety guard; 4 stopped by a fatal Moodle error or an unusable state
    database; 130 and 143 interrupted (Ctrl-C, SIGTERM): the next run resumes.
    """
    # First thing: people's text is translated where it is made, far below the CLI.
    i18n.use_language(i18n.choose_language(lang, os.environ))
    logs.configure(verbose)
    ctx.obj = AppContext(config_file, verbose)


for _command in (
    doctor,
    plan_command,
    sync_command,
    run_command,
    runs,
    gaps_command,
    explain_command,
    completions,
    report_command,
    plugins_command,
    demo_command,
    sample_roster_command,
    emulator,
):
    main.add_command(_command)
