"""``[notify]`` for the commands that run unattended: ``sync``, ``run`` and ``completions pull``.

A command wraps its body in :func:`notifying` and adds a part per run as it learns it; once the
command's exit code is known (its end, or the failure that ends it), the summary goes out when
it needs a human. A summary that cannot be delivered is a warning on stderr: the exit code and
the output stay what they would have been without ``[notify]``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click

from moodle_bridge.cli.app import AppContext
from moodle_bridge.cli.failures import Terminated, failure_for
from moodle_bridge.notify import Part, Summary, deliver

__all__ = ["notifying"]


@contextlib.contextmanager
def notifying(app: AppContext, command: str, *, enabled: bool = True) -> Iterator[list[Part]]:
    """Run the block; then send the summary of the parts it added, with the command's exit
    code, when that code needs a human. ``enabled`` False (a trial against an emulator, a
    plan) sends nothing. Whatever the block raised is raised again, unchanged."""
    parts: list[Part] = []
    try:
        yield parts
    except click.exceptions.Exit as end:
        _send(app, Summary(command, end.exit_code, tuple(parts)), enabled)
        raise
    except click.ClickException as error:
        summary = Summary(command, error.exit_code, tuple(parts), error.format_message())
        _send(app, summary, enabled)
        raise
    except (Exception, KeyboardInterrupt, Terminated) as error:
        # The same code and line the command is about to end with (see failures).
        failure = failure_for(error)
        summary = Summary(command, failure.exit_code, tuple(parts), failure.format_message())
        _send(app, summary, enabled)
        raise


def _send(app: AppContext, summary: Summary, enabled: bool) -> None:
    if not enabled:
        return
    for problem in deliver(app.settings.notify, summary, app.env):
        click.echo(
            f"moodle-bridge: warning: no notification: {problem}; the exit code is unchanged",
            err=True,
        )
