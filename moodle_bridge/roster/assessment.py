"""Competency assessments: one person's assessed level in one competency, on one date.

The generic assessment file has the columns ``nip``, ``kompetensi`` (the competency code of
the unit's dictionary), ``level`` (1-5, or the level's name: Paham, Dasar, Menengah, Mumpuni,
Ahli) and ``tanggal`` (the assessment date, ``DD-MM-YYYY`` or ``YYYY-MM-DD``). Unit plugins
with another layout map their rows onto :class:`Assessment` themselves (see
:meth:`moodle_bridge.units.UnitMapper.map_assessment_row`).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from moodle_bridge.roster.nip import normalise_nip
from moodle_bridge.roster.person import RowError
from moodle_bridge.roster.sources import SourceRow

__all__ = [
    "ASSESSMENT_COLUMNS",
    "LEVEL_NAMES",
    "Assessment",
    "parse_assessment_row",
    "parse_date",
    "parse_level",
]

#: Level number -> its name in PermenPANRB 38/2017.
LEVEL_NAMES: Mapping[int, str] = MappingProxyType(
    {1: "Paham", 2: "Dasar", 3: "Menengah", 4: "Mumpuni", 5: "Ahli"}
)

#: The generic file's columns: role -> header (lower case).
ASSESSMENT_COLUMNS: Mapping[str, str] = MappingProxyType(
    {"nip": "nip", "competency": "kompetensi", "level": "level", "date": "tanggal"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Assessment:
    """One assessed level: ``nip`` was found at ``level`` (1-5) in ``competency`` on ``date``.

    A slotted dataclass: a ministry file holds millions, validated by the reader already.
    """

    nip: str
    #: The competency's code in the unit's dictionary (``MAN-INTEG``, ``TEK-PAI-01``...).
    competency: str
    level: int
    date: dt.date
    #: Where the assessment came from, for error reports: file name and 1-based row number.
    source: str = ""
    row: int = 0


_DMY = re.compile(r"(\d{1,2})-(\d{1,2})-(\d{4})")
_YMD = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]00:00(?::00)?)?")


@functools.lru_cache(maxsize=4096)
def parse_date(text: str) -> dt.date | None:
    """Read ``DD-MM-YYYY`` or ``YYYY-MM-DD``; None when it is neither or not a real day.

    A midnight time after an ISO date (how spreadsheet cells holding dates often read back)
    is accepted.
    """
    text = text.strip()
    if match := _DMY.fullmatch(text):
        day, month, year = (int(part) for part in match.groups())
    elif match := _YMD.fullmatch(text):
        year, month, day = (int(part) for part in match.groups())
    else:
        return None
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


_LEVEL_BY_NAME = {name.lower(): level for level, name in LEVEL_NAMES.items()}


def parse_level(text: str) -> int | None:
    """Read a level 1-5 written as a number (``3``, ``3.0``) or by name; None otherwise."""
    text = text.strip()
    if text.lower() in _LEVEL_BY_NAME:
        return _LEVEL_BY_NAME[text.lower()]
    if re.fullmatch(r"[1-5](?:\.0+)?", text):
        return int(text[0])
    return None


def parse_assessment_row(
    source_name: str,
    row: SourceRow,
    columns: Mapping[str, str] = ASSESSMENT_COLUMNS,
) -> Assessment | RowError:
    """Turn one row into an :class:`Assessment`, or a :class:`RowError` saying what is wrong.

    ``columns`` maps the roles ``nip``, ``competency``, ``level`` and ``date`` to the file's
    (lower-case) headers, so a plugin with other headers can reuse this function.
    """

    def error(role: str, reason: str, nip: str | None = None) -> RowError:
        return RowError(
            source=source_name, row=row.row, column=columns[role], reason=reason, nip=nip
        )

    def value(role: str) -> str:
        return (row.values.get(columns[role]) or "").strip()

    checked = normalise_nip(value("nip"))
    if checked.error is not None or checked.nip is None:
        return error("nip", checked.error or "The NIP is not valid")
    nip = checked.nip
    competency = value("competency")
    if not competency:
        return error("competency", "The competency code is empty", nip)
    level = parse_level(value("level"))
    if level is None:
        return error(
            "level",
            f"The level {value('level')!r} is not 1-5 ({', '.join(LEVEL_NAMES.values())})",
            nip,
        )
    date = parse_date(value("date"))
    if date is None:
        return error(
            "date", f"The date {value('date')!r} is not a day written DD-MM-YYYY or YYYY-MM-DD", nip
        )
    # A ministry file repeats each NIP, code and date millions of times: one string object
    # (and one date, from parse_date's cache) each, instead of a copy per row.
    return Assessment(
        nip=sys.intern(nip),
        competency=sys.intern(competency),
        level=level,
        date=date,
        source=source_name,
        row=row.row,
    )
