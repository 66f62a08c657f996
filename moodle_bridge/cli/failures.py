"""Exit codes: the one table from what went wrong to the code cron reads, and the one line shown.

Every command ends in a documented code (README, "Exit codes"). A failure the CLI finds itself
is raised with :func:`fail`; an exception from the library is turned into a :class:`Failure` by
:func:`failure_for` through :data:`EXIT_CODES`, so no command decides a code of its own and none
shows a traceback unless asked with ``-vv``.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import traceback
from collections.abc import Iterator
from types import FrameType
from typing import IO, Any, NoReturn

import click

from moodle_bridge.errors import ConfigError, MoodleError
from moodle_bridge.exitcodes import ExitCode
from moodle_bridge.logs import mask
from moodle_bridge.store import StoreBusy, StoreError

__all__ = [
    "EXIT_CODES",
    "INTERRUPTED",
    "ExitCode",
    "Failure",
    "Terminated",
    "exit_code_for",
    "fail",
    "failure_for",
    "sigterm_raises",
]


#: What an interrupted command says: the journal lets the next run pick up where it stopped.
INTERRUPTED = "interrupted; the next run resumes"


class Terminated(BaseException):
    """SIGTERM arrived. A BaseException, like KeyboardInterrupt, so that no ``except
    Exception`` in the library mistakes it for a failure to handle and carry on."""


class Failure(click.ClickException):
    """A command's end: one line on stderr and a documented exit code."""

    def __init__(self, message: str, code: ExitCode) -> None:
        # One line, whatever the message held: cron mails and log greps read lines.
        super().__init__(" ".join(mask(message).split()))
        # click declares exit_code a class variable, but its main() reads it from the
        # exception it caught: one class serves every code.
        self.exit_code = int(code)  # type: ignore[misc]

    def show(self, file: IO[Any] | None = None) -> None:
        """Print ``moodle-bridge: <message>`` on stderr."""
        click.echo(f"moodle-bridge: {self.format_message()}", err=True, file=file)


def fail(message: str, code: ExitCode) -> NoReturn:
    """End the command with ``message`` (one line on stderr) and ``code``."""
    raise Failure(message, code)


#: The one table from exception type to exit code; the first row that matches wins, so the
#: more specific types come first. Anything not listed is unexpected: exit 4, named, with
#: the traceback only under ``-vv``.
EXIT_CODES: tuple[tuple[type[BaseException], ExitCode], ...] = (
    (Terminated, ExitCode.TERMINATED),
    (KeyboardInterrupt, ExitCode.INTERRUPTED),
    # click raises Abort for Ctrl-C or end of input at a confirmation prompt.
    (click.Abort, ExitCode.INTERRUPTED),
    # Another process holds the state: the same as another run using it, a usage error.
    (StoreBusy, ExitCode.USAGE),
    # Damaged (StateDamaged), unreadable or newer than this code: the message says what to do.
    (StoreError, ExitCode.FATAL),
    (ConfigError, ExitCode.USAGE),
    (MoodleError, ExitCode.FATAL),
    # A file or folder given on the command line that cannot be read or written.
    (OSError, ExitCode.USAGE),
)


def exit_code_for(error: BaseException) -> ExitCode | None:
    """The exit code :data:`EXIT_CODES` gives ``error``; None when it is unexpected."""
    for kind, code in EXIT_CODES:
        if isinstance(error, kind):
            return code
    return None


def failure_for(error: BaseException, *, verbose: int = 0) -> Failure:
    """The :class:`Failure` that ends a command which raised ``error``.

    An unexpected error is named in one line that suggests ``-vv``; with ``-vv`` its traceback
    (NIPs and emails masked) is printed first.
    """
    code = exit_code_for(error)
    if code in (ExitCode.INTERRUPTED, ExitCode.TERMINATED):
        return Failure(INTERRUPTED, code)
    if isinstance(error, OSError) and code is not None:
        where = f" {error.filename}" if error.filename else ""
        return Failure(f"cannot use{where}: {error.strerror or error}", code)
    if code is not None:
        return Failure(str(error), code)
    if verbose >= 2:
        click.echo(mask("".join(traceback.format_exception(error))), err=True, nl=False)
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    detail = f": {first}" if first else ""
    hint = "" if verbose >= 2 else " (run again with -vv to see where)"
    return Failure(f"unexpected {type(error).__name__}{detail}{hint}", ExitCode.FATAL)


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`Terminated` as Ctrl-C raises
    KeyboardInterrupt: the command stops where it is, its transactions roll back, and it ends
    with exit code 143 instead of dying silently. Signals reach only the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
