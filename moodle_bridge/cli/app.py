"""What every command shares: the settings, the command classes that end every failure in its
exit code, and the paths the bridge keeps its files in."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import click

from moodle_bridge.cli.failures import ExitCode, Terminated, failure_for, sigterm_raises
from moodle_bridge.config import Settings, load_settings
from moodle_bridge.sync.executor import Progress
from moodle_bridge.sync.gaps import GapInputs

__all__ = [
    "SHIPPED_MAPPINGS",
    "STATE_FILE",
    "AppContext",
    "BridgeCommand",
    "BridgeGroup",
    "emit_json",
    "finish",
    "progress_bars",
]

#: The mapping tables shipped beside the package (a source checkout or editable install).
SHIPPED_MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"

#: The state database inside the state directory.
STATE_FILE = "state.sqlite3"


class AppContext:
    """What every command needs: the settings and the environment they came from."""

    def __init__(self, config_file: Path | None, verbose: int = 0) -> None:
        self.config_file = config_file
        self.verbose = verbose
        self.env = dict(os.environ)
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """The settings, loaded on first use so ``--help`` never needs a valid file."""
        if self._settings is None:
            self._settings = load_settings(self.env, self.config_file)
        return self._settings

    def wait_for_site(self) -> None:
        """Wait out an outage of the site (``--wait-for-site``), whatever the settings say."""
        moodle = self.settings.moodle.model_copy(update={"wait_for_site": True})
        self._settings = self.settings.model_copy(update={"moodle": moodle})

    @property
    def state_file(self) -> Path:
        """The configured state database."""
        return self.settings.state.dir / STATE_FILE

    @property
    def mappings_dir(self) -> Path:
        """The mapping tables' folder: the setting, else ./mappings, else the shipped one."""
        if self.settings.enrol.mappings_dir is not None:
            return self.settings.enrol.mappings_dir
        here = Path("mappings")
        return here if here.is_dir() else SHIPPED_MAPPINGS

    def gap_inputs(self, assessments: Path) -> GapInputs:
        """What the gap engine needs besides the roster: assessments, tables, today, zone."""
        return GapInputs(
            assessments, self.mappings_dir, datetime.date.today(), self.settings.enrol.timezone
        )


class BridgeCommand(click.Command):
    """A command that reads the settings before it runs: a broken settings file stops every
    command alike (exit 2), before anything is done, and never stops ``--help``."""

    def invoke(self, ctx: click.Context) -> Any:
        """Load the settings, then run the command."""
        app = ctx.find_object(AppContext)
        if app is not None:
            _ = app.settings
        return super().invoke(ctx)


class BridgeGroup(click.Group):
    """A group whose commands are :class:`BridgeCommand`. At the top, it turns whatever a
    command raised into its documented exit code and one line (see ``failures``)."""

    command_class = BridgeCommand
    group_class = type

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; translate its exceptions through the exit-code table."""
        if ctx.parent is not None:
            return super().invoke(ctx)
        with sigterm_raises():
            try:
                return super().invoke(ctx)
            # click ends these itself: its own usage errors and exits, and a reader of our
            # output that went away (``| head``), which is no failure of the command.
            except (click.ClickException, click.exceptions.Exit, BrokenPipeError):
                raise
            except (Exception, KeyboardInterrupt, Terminated) as error:
                app = ctx.find_object(AppContext)
                raise failure_for(error, verbose=app.verbose if app else 0) from error


def finish(code: int) -> NoReturn:
    """End the command with one of the documented exit codes."""
    raise click.exceptions.Exit(int(ExitCode(code)))


def emit_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout, for scripts."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@contextlib.contextmanager
def progress_bars(enabled: bool) -> Iterator[Progress | None]:
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
