"""The simulation's own small mapping tables: three competencies, every unit's jabatan, and a
catalogue with manual and cohort-mode courses, open and windowed, national and per unit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from tests.e2e.conftest import write_csv_rows
from tests.simulation.world import JABATAN

#: Every unit's annual cap (one value: a mover's cap does not change with their unit).
CAP = 3
COMPETENCIES = (
    ("TEK-A", "Teknis Alpha", "teknis", 1),
    ("MAN-B", "Manajerial Beta", "manajerial", 2),
    ("SOS-C", "Sosial Gamma", "sosial_kultural", 3),
)
CATALOGUE_HEADER = (
    "competency", "from_level", "to_level", "course_shortname", "jp", "window_start",
    "window_end", "capacity", "mode",
)  # fmt: skip


def standards() -> dict[str, dict[str, int]]:
    """Jabatan -> competency -> the level the position requires."""
    return {
        jabatan: {"TEK-A": 3, "MAN-B": 3 if "Muda" in jabatan else 2, "SOS-C": 2}
        for jabatans in JABATAN.values()
        for jabatan in jabatans
    }


def _rows(years: Iterable[int]) -> dict[str, list[tuple[object, ...]]]:
    national: list[tuple[object, ...]] = [
        ("TEK-A", 1, 2, "SIM-A-12", 20, "", "", "", "manual"),
        ("MAN-B", 1, 2, "SIM-B-12", 20, "", "", "", "manual"),
        ("SOS-C", 1, 2, "SIM-C-12", 20, "", "", "", "cohort"),
    ]
    pendis: list[tuple[object, ...]] = []
    bimas: list[tuple[object, ...]] = []
    for y in years:
        national += [
            ("TEK-A", 2, 3, "SIM-A-23", 30, f"{y}-03-01", f"{y}-05-31", 80, "manual"),
            ("TEK-A", 2, 3, "SIM-A-23", 30, f"{y}-09-01", f"{y}-11-30", 80, "manual"),
            ("MAN-B", 2, 3, "SIM-B-23", 30, f"{y}-04-01", f"{y}-06-30", "", "manual"),
        ]
        pendis.append(("TEK-A", 2, 3, "PENDIS-A-23", 30, f"{y}-06-01", f"{y}-08-31", 100, "cohort"))
        bimas.append(("MAN-B", 2, 3, "BIMAS-B-23", 30, f"{y}-07-01", f"{y}-10-31", "", "manual"))
    return {"national": national, "PENDIS": pendis, "BIMAS_ISLAM": bimas}


def manual_courses(unit: str) -> dict[tuple[str, int], list[str]]:
    """(competency, from level) -> the manual catalogue courses a person of ``unit`` may be
    enrolled in for that step."""
    steps: dict[tuple[str, int], list[str]] = {}
    for name, rows in _rows([2026]).items():  # any year: only the steps matter here
        for competency, low, _, shortname, *_, mode in rows:
            if name in ("national", unit) and mode == "manual":
                step = steps.setdefault((str(competency), int(str(low))), [])
                if shortname not in step:
                    step.append(str(shortname))
    return steps


def shortnames(years: Iterable[int]) -> list[str]:
    """Every catalogue course's shortname."""
    return sorted({str(r[3]) for rows in _rows(years).values() for r in rows})


def write_tables(folder: Path, first: dt.date, last: dt.date) -> Path:
    """Write the tables, with windows in every year from ``first`` to ``last``."""
    years = range(first.year, last.year + 1)
    write_csv_rows(folder / "competencies.csv", ("code", "name", "kind", "priority"), COMPETENCIES)
    write_csv_rows(folder / "position_levels.csv", ("unit", "jabatan", "position_level"), [])
    write_csv_rows(
        folder / "units.csv", ("unit", "annual_cap"), [(u, CAP) for u in sorted(JABATAN)]
    )
    for unit, jabatans in JABATAN.items():
        standard = [
            (jabatan, competency, level)
            for jabatan in jabatans
            for competency, level in sorted(standards()[jabatan].items())
        ]
        write_csv_rows(
            folder / "standards" / f"{unit}.csv", ("jabatan", "competency", "level"), standard
        )
    for name, rows in _rows(years).items():
        write_csv_rows(folder / "catalogue" / f"{name}.csv", CATALOGUE_HEADER, rows)
    return folder
