"""The HR error file: every row of a run that could not be used, what is wrong, how to fix it.

The people who correct the roster are the unit's HR staff, and they read Bahasa Indonesia: the
file is written in the language of the run (headers included), one line per row, next to the
run report as ``<report>-perbaikan.csv``. Its columns: the file, the row number, the column,
the cell's value, what is wrong and how to fix it. The value keeps the NIP where the column
*is* the NIP (HR must find the row); anywhere else a NIP in the value is masked. A row whose
status is unknown is listed too: it was set aside, and only HR can correct it.

It names people, so it is written owner-only and formula-safe like every other export.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path

from moodle_bridge.i18n import N_, _
from moodle_bridge.logs import mask_nips
from moodle_bridge.reports.exports import Cell, write_csv
from moodle_bridge.roster.person import RowError, UnknownStatus

__all__ = [
    "REPAIR_COLUMNS",
    "REPAIR_SUFFIX",
    "refused_rows",
    "repair_rows",
    "repairs_path",
    "write_repairs",
]

#: The file name's ending, after the run report's own name.
REPAIR_SUFFIX = "-perbaikan.csv"

REPAIR_COLUMNS = (
    N_("file"),
    N_("row"),
    N_("column"),
    N_("value"),
    N_("what is wrong"),
    N_("how to fix"),
)

_FIX = N_("Correct this cell in the HR data and export the file again.")


def repairs_path(report: Path) -> Path:
    """Where the HR error file of the report (or plan file) ``report`` goes: beside it."""
    return report.with_name(report.stem + REPAIR_SUFFIX)


def refused_rows(errors: Iterable[RowError], warnings: Iterable[RowError]) -> list[RowError]:
    """The rows HR must correct, in file and row order: the refused ones and those set aside
    for an unknown status. Findings about no row (row 0: a mapping table) are left out."""
    found = [*errors, *(w for w in warnings if isinstance(w, UnknownStatus))]
    return sorted((e for e in found if e.row > 0), key=lambda e: (e.source, e.row))


def repair_rows(errors: Iterable[RowError], nip_columns: Collection[str]) -> list[tuple[Cell, ...]]:
    """Each error as a line of :data:`REPAIR_COLUMNS`; ``nip_columns`` are the headers whose
    values are NIPs, shown whole."""
    return [
        (
            error.source,
            error.row,
            error.column or "",
            error.value if error.column in nip_columns else mask_nips(error.value),
            error.reason,
            error.fix or _(_FIX),
        )
        for error in errors
    ]


def write_repairs(
    path: Path, errors: Iterable[RowError], nip_columns: Collection[str] = ("nip",)
) -> Path:
    """Write the HR error file of ``errors`` (CSV, owner-only, formula-safe)."""
    header = [_(title) for title in REPAIR_COLUMNS]
    return write_csv(path, header, repair_rows(errors, nip_columns))
