"""``moodle-bridge plugins``: the installed unit plugins."""

from __future__ import annotations

import click

from moodle_bridge.cli.app import BridgeCommand, emit_json
from moodle_bridge.cli.options import JSON_OPTION
from moodle_bridge.units import installed_units

__all__ = ["plugins_command"]


@click.command("plugins", cls=BridgeCommand)
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
