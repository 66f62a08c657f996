"""Competency assessments: one person's assessed level in one competency, on one date.

The generic assessment file has the columns ``nip``, ``kompetensi`` (the competency code of
the unit's dictionary), ``level`` (1-5, or the level's name: Paham, Dasar, Menengah, Mumpuni,
Ahli) and ``tanggal`` (the assessment date, ``DD-MM-YYYY`` or ``YYYY-MM-DD``). Unit plugins
with another layout map their rows onto :class:`Assessment` themselves (see
:meth:`moodle_bridge.units.UnitMapper.map_assessment_row`).

Only the latest assessment of each person in each competency counts (by date; on the same date,
the later row; on the same row, the higher level). :class:`LatestAssessments` keeps just those
while the rows are read: a ministry's file holds 3.4 million rows, and a list of them would
hold about 400 MiB that nothing uses.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from moodle_bridge.i18n import _
from moodle_bridge.roster.nip import normalise_nip
from moodle_bridge.roster.person import RowError
from moodle_bridge.roster.sources import SourceRow

__all__ = [
    "ASSESSMENT_COLUMNS",
    "LEVEL_NAMES",
    "Assessment",
    "AssessmentLike",
    "LatestAssessments",
    "collect_latest",
    "parse_assessment_row",
    "parse_date",
    "parse_level",
    "rank_day",
    "rank_level",
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

    def error(role: str, reason: str, fix: str, nip: str | None = None) -> RowError:
        return RowError(
            source=source_name,
            row=row.row,
            column=columns[role],
            reason=reason,
            nip=nip,
            value=value(role),
            fix=fix,
        )

    def value(role: str) -> str:
        return (row.values.get(columns[role]) or "").strip()

    checked = normalise_nip(value("nip"))
    if checked.error is not None or checked.nip is None:
        return error("nip", checked.error or _("The NIP is not valid"), checked.fix or "")
    nip = checked.nip
    competency = value("competency")
    if not competency:
        fix = _("Write the competency's code as the unit's competency dictionary lists it.")
        return error("competency", _("The competency code is empty"), fix, nip)
    level = parse_level(value("level"))
    if level is None:
        names = ", ".join(LEVEL_NAMES.values())
        reason = _("The level {level!r} is not 1-5 ({names})").format(
            level=value("level"), names=names
        )
        fix = _("Write the level as a number 1-5 or its name ({names}).").format(names=names)
        return error("level", reason, fix, nip)
    date = parse_date(value("date"))
    if date is None:
        reason = _("The date {date!r} is not a day written DD-MM-YYYY or YYYY-MM-DD").format(
            date=value("date")
        )
        fix = _("Write the assessment date as DD-MM-YYYY (31-12-2026) or YYYY-MM-DD.")
        return error("date", reason, fix, nip)
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


# --- keeping the latest ---------------------------------------------------------------------------
class AssessmentLike(Protocol):
    """What :class:`LatestAssessments` and the gap engine read of an assessment
    (:class:`Assessment` fits)."""

    @property
    def nip(self) -> str: ...
    @property
    def competency(self) -> str: ...
    @property
    def level(self) -> int: ...
    @property
    def date(self) -> dt.date: ...
    @property
    def row(self) -> int: ...


# A rank is one int that orders assessments of one person and competency the way the rule says:
# the day (its ordinal) is the most significant part, then the row, then the level. One small
# int per entry keeps 2.6 million of them small, and "later" is one ``>``.
_LEVEL_BITS = 3
_ROW_BITS = 37
_ROW_MAX = (1 << _ROW_BITS) - 1
_DAY_SHIFT = _ROW_BITS + _LEVEL_BITS
_LEVEL_MASK = (1 << _LEVEL_BITS) - 1


def rank_level(rank: int) -> int:
    """The level of the assessment a :meth:`LatestAssessments.ranks` value stands for."""
    return rank & _LEVEL_MASK


def rank_day(rank: int) -> int:
    """The day (as :meth:`datetime.date.toordinal`) of the assessment a rank stands for."""
    return rank >> _DAY_SHIFT


class LatestAssessments:
    """The latest assessment of each person in each competency, kept while reading.

    Add rows with :meth:`extend` (in any order: the result does not depend on it). Iterating
    gives one :class:`Assessment` per person and competency (without ``source``).
    """

    __slots__ = ("_dropped", "_ranks")

    def __init__(self, assessments: Iterable[AssessmentLike] = ()) -> None:
        self._ranks: dict[str, dict[str, int]] = {}
        #: Competency -> rows read but not kept (an earlier or a superseded assessment).
        self._dropped: dict[str, int] = {}
        self.extend(assessments)

    def extend(self, assessments: Iterable[AssessmentLike]) -> None:
        """Read ``assessments``, keeping each one only while it is the latest."""
        ranks, dropped = self._ranks, self._dropped
        shift, level_bits, row_max = _DAY_SHIFT, _LEVEL_BITS, _ROW_MAX
        for a in assessments:
            row = a.row
            if not 0 <= row <= row_max:
                row = 0 if row < 0 else row_max
            rank = (a.date.toordinal() << shift) | (row << level_bits) | a.level
            competency = a.competency
            mine = ranks.get(a.nip)
            if mine is None:
                ranks[a.nip] = {competency: rank}
                continue
            old = mine.get(competency)
            if old is None:
                mine[competency] = rank
                continue
            dropped[competency] = dropped.get(competency, 0) + 1
            if rank > old:
                mine[competency] = rank

    @property
    def by_nip(self) -> Mapping[str, Mapping[str, int]]:
        """NIP -> competency -> rank of the latest assessment (read it with :func:`rank_level`
        and :func:`rank_day`)."""
        return self._ranks

    def take(self, nip: str) -> Mapping[str, int] | None:
        """Remove and return ``nip``'s ranks (``None`` when there are none): for a single pass
        that is done with each person, so the memory is freed as it goes."""
        return self._ranks.pop(nip, None)

    def rows_by_competency(self) -> dict[str, int]:
        """Competency code -> rows read (every row, not only the kept ones)."""
        rows = Counter(itertools.chain.from_iterable(self._ranks.values()))
        rows.update(self._dropped)
        return dict(rows)

    def __len__(self) -> int:
        return sum(len(mine) for mine in self._ranks.values())

    def __iter__(self) -> Iterator[Assessment]:
        for nip, mine in self._ranks.items():
            for competency, rank in mine.items():
                yield Assessment(
                    nip=nip,
                    competency=competency,
                    level=rank_level(rank),
                    date=dt.date.fromordinal(rank_day(rank)),
                    row=(rank >> _LEVEL_BITS) & _ROW_MAX,
                )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LatestAssessments):
            return NotImplemented
        return self._ranks == other._ranks and self._dropped == other._dropped

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value


def collect_latest(
    results: Iterable[Assessment | RowError],
) -> tuple[LatestAssessments, list[RowError]]:
    """A reader's row results as the latest assessments and the row errors (in file order),
    without ever holding every row."""
    errors: list[RowError] = []

    def assessments() -> Iterator[Assessment]:
        for result in results:
            if isinstance(result, RowError):
                errors.append(result)
            else:
                yield result

    return LatestAssessments(assessments()), errors
