"""``moodle-bridge sample-roster``: synthetic, deterministic input files for trying the bridge."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from moodle_bridge.cli.app import AppContext, BridgeCommand
from moodle_bridge.cli.options import SEED_OPTION, number, out_folder
from moodle_bridge.files import private_dir
from moodle_bridge.samples import (
    generate_assessments,
    generate_people,
    write_assessments_csv,
    write_roster_csv,
    write_roster_xlsx,
)
from moodle_bridge.sync.gaps import load_all_mappings

__all__ = ["sample_roster_command"]


@click.command("sample-roster", cls=BridgeCommand)
@number("--size", 1000, "How many synthetic ASN to generate.")
@SEED_OPTION
@out_folder("Folder for roster.csv, assessments.csv and mappings/.")
@click.option(
    "--dirty-share",
    type=click.FloatRange(0, 1),
    default=0.02,
    show_default=True,
    help="Share of rows with a defect of one of the kinds docs/DOMAIN.md lists.",
)
@click.option("--xlsx", is_flag=True, help="Also write the roster as roster.xlsx.")
@click.pass_obj
def sample_roster_command(
    app: AppContext, size: int, seed: int, out_dir: Path, dirty_share: float, xlsx: bool
) -> None:
    """Write a deterministic synthetic roster, its assessments and matching mapping tables.

    Nobody in it is real: names and NIPs are generated, with titles, one-word and Balinese
    names, apostrophes, and the split across Eselon I units of the ministry.
    """
    private_dir(out_dir)
    written = write_roster_csv(
        out_dir / "roster.csv", generate_people(size, seed, dirty_share=dirty_share)
    )
    if xlsx:
        write_roster_xlsx(
            out_dir / "roster.xlsx", generate_people(size, seed, dirty_share=dirty_share)
        )
    source = app.mappings_dir
    shutil.copytree(source, out_dir / "mappings", dirs_exist_ok=True)
    competencies = sorted({c for m in load_all_mappings(source).values() for c in m.competencies})
    assessed = write_assessments_csv(
        out_dir / "assessments.csv",
        generate_assessments(
            generate_people(size, seed, dirty_share=dirty_share), competencies, seed
        ),
    )
    click.echo(f"{written} roster rows, {assessed} assessments and the mapping tables in {out_dir}")
