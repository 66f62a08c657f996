"""``moodle-bridge demo``: the whole job against a built-in emulator, on synthetic people."""

from __future__ import annotations

from pathlib import Path

import click

from moodle_bridge.cli.app import AppContext, BridgeCommand, emit_json, finish, progress_bars
from moodle_bridge.cli.failures import ExitCode
from moodle_bridge.cli.options import JSON_OPTION, SEED_OPTION, number
from moodle_bridge.cli.render import demo_data, demo_lines

__all__ = ["demo_command"]


@click.command("demo", cls=BridgeCommand)
@number("--size", 3000, "How many synthetic ASN the demo roster holds.", low=1, high=300_000)
@SEED_OPTION
@click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("moodle-bridge-demo"),
    show_default=True,
    help="Where the demo writes its roster, state and reports; what an earlier demo left "
    "there is removed first.",
)
@JSON_OPTION
@click.pass_obj
def demo_command(app: AppContext, size: int, seed: int, workdir: Path, as_json: bool) -> None:
    """Sync a synthetic roster into a built-in Moodle emulator: plan, sync, sync again, then
    let simulated learners finish courses, pull the completions and write the reports.

    Everything stays on this machine: the emulator listens on 127.0.0.1 and the people are
    generated (names and NIPs of nobody real), with a few dirty rows of every kind. Each demo
    starts afresh: a new emulator, and a folder cleared of what the last demo left.
    """
    from moodle_bridge.demo import run_demo

    with progress_bars(not as_json) as progress:
        result = run_demo(workdir, app.mappings_dir, size=size, seed=seed, progress=progress)
    if as_json:
        emit_json(demo_data(result))
    else:
        click.echo("\n".join(demo_lines(result, size)))
    finish(ExitCode.OK if result.ok else ExitCode.FATAL)
