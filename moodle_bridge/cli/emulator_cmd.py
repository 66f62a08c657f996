"""``moodle-bridge emulator serve``: the built-in Moodle, for trying the bridge without a site."""

from __future__ import annotations

import threading
from pathlib import Path

import click

from moodle_bridge.cli.app import AppContext, BridgeGroup
from moodle_bridge.cli.options import input_file, number
from moodle_bridge.sync.gaps import load_all_mappings

__all__ = ["emulator"]


@click.group(cls=BridgeGroup)
def emulator() -> None:
    """The built-in Moodle emulator, for trying the bridge without a real site."""


@emulator.command("serve")
@number("--port", 8765, "Port on 127.0.0.1 to listen on (0 picks a free one).", high=65535)
@input_file(
    "--seed",
    "Seed file in the contract's _seed.json format (default: the built-in one).",
    dest="seed_file",
)
@click.option(
    "--catalogue",
    is_flag=True,
    help="Also create the mapping tables' catalogue courses, as the demo does (with self "
    "completion).",
)
@click.option(
    "--cost",
    # The names of moodle_bridge.emulator.cost.COST_MODELS (not imported here: loading the
    # emulator would cost every command's start; test_help checks they agree).
    type=click.Choice(("contract",)),
    help="Take Moodle's time, as measured on a real site (see the contract README), per call "
    "and per record, served by a limited number of simulated server cores.",
)
@number("--cores", 2, "Simulated server cores with --cost.", low=1)
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="With --cost: serve this many times faster than the measured site.",
)
@click.option(
    "--large-site",
    is_flag=True,
    help="With --cost: as a site holding 150,000 accounts without the lower(email) index "
    "(see docs/OPERATIONS.md).",
)
@click.pass_obj
def emulator_serve(
    app: AppContext,
    port: int,
    seed_file: Path | None,
    catalogue: bool,
    cost: str | None,
    cores: int,
    speed: float,
    large_site: bool,
) -> None:
    """Serve an emulated Moodle on 127.0.0.1 until interrupted (Ctrl-C or SIGTERM)."""
    from moodle_bridge.demo import seed_catalogue
    from moodle_bridge.emulator import Emulator, load_seed
    from moodle_bridge.emulator.cost import simulated_cost
    from moodle_bridge.emulator.server import running

    charged = (
        simulated_cost(cost, cores=cores, speed=speed, large_site=large_site) if cost else None
    )
    emu = Emulator(load_seed(seed_file), cost=charged)
    with running(emu, port) as server:
        if catalogue:
            mappings = load_all_mappings(app.mappings_dir)
            offers = [o for m in mappings.values() for o in m.catalogue]
            courses = seed_catalogue(emu, server.url, offers)
            click.echo(f"{courses} catalogue courses created from {app.mappings_dir}")
        click.echo(f"Moodle emulator listening on {server.url}")
        tokens = ", ".join(
            f"{user}={emu.token_for(user)}"
            for user in ("bridge", "admin")
            if user in emu.world.username_index
        )
        click.echo(f"Tokens (emulator only, never secret): {tokens}")
        click.echo("Press Ctrl-C to stop.")
        threading.Event().wait()
