"""The ``moodle-bridge`` command line: parse options, call the library, show the result."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from moodle_bridge import __version__, logs
from moodle_bridge.config import Settings, load_settings
from moodle_bridge.doctor import DoctorReport, run_doctor
from moodle_bridge.errors import ConfigError
from moodle_bridge.moodle.client import MoodleClient, RetryPolicy
from moodle_bridge.moodle.transport import Transport

#: Exit codes, documented in the README, so cron can tell outcomes apart.
EXIT_OK = 0
EXIT_RECORD_ERRORS = 1
EXIT_USAGE = 2
EXIT_GUARD = 3
EXIT_FATAL = 4


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
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def doctor(app: AppContext, use_emulator: bool, as_json: bool) -> None:
    """Check the URL, the token, the service's functions and that user lookups work."""
    with connect(app, use_emulator) as client:
        report = run_doctor(client)
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
