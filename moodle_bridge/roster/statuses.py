"""The employment-status vocabulary: what each status an HR export writes means for an account.

The vocabulary is data, kept by unit staff in the mappings folder (see ``mappings/README.md``)::

    statuses.csv            status, active, note        (the shipped file when absent)
    statuses/<UNIT>.csv     status, active, note        (optional: one unit's overrides)

``active`` is one of the :data:`MEANINGS`:

* ``yes``: still serving; the account is kept active (``AKTIF``, every ``CUTI`` but CLTN...);
* ``no``: not serving; the account is suspended (``PENSIUN``, ``CLTN``...);
* ``left_unit``: left *this unit*, not the ministry (``MUTASI KELUAR``, ``PINDAH``): the
  person is absent from this unit's roster, and the grace period applies.

Statuses are compared after :func:`normalise_status` (case, repeated spaces, ``_`` and ``-``
do not matter), so ``cuti_tahunan`` and ``Cuti  Tahunan`` are ``CUTI TAHUNAN``. A unit's file
overrides the rows of ``statuses.csv`` it repeats and adds the others, for that unit's people
only. A status in neither is *unknown*: the readers set the row aside with a warning and leave
the person's account exactly as it is (never a reason to suspend anyone).

:func:`load_statuses` reads and checks a folder; :func:`shipped_statuses` is the table of the
``mappings/`` folder shipped with moodle-bridge, which readers use when given no table.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Literal, get_args

from moodle_bridge.errors import ConfigError
from moodle_bridge.roster.person import RowError, describe_errors
from moodle_bridge.roster.sources import SourceError, SourceRow, read_rows

__all__ = [
    "MEANINGS",
    "SHIPPED_MAPPINGS",
    "STATUS_FILE",
    "UNIT_STATUS_FOLDER",
    "BrokenStatuses",
    "Meaning",
    "StatusTable",
    "check_statuses",
    "load_statuses",
    "normalise_status",
    "shipped_statuses",
]

#: What a status means for the account: see the module docstring.
Meaning = Literal["yes", "no", "left_unit"]
MEANINGS: tuple[Meaning, ...] = get_args(Meaning)

#: The mappings folder shipped with moodle-bridge (next to the package in a source checkout).
SHIPPED_MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
#: The national table's file name in a mappings folder, and the folder of units' overrides.
STATUS_FILE = "statuses.csv"
UNIT_STATUS_FOLDER = "statuses"

_SEPARATORS = re.compile(r"[\s_\-]+")
_UNIT = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
#: ``active`` as written (lower case, ``-`` and spaces as ``_``) -> its meaning.
_MEANING_BY_TEXT: Mapping[str, Meaning] = MappingProxyType({m: m for m in MEANINGS})


def normalise_status(text: str) -> str:
    """The form statuses are compared in: upper case, runs of spaces, ``_`` and ``-`` made one
    space, trimmed (``" cuti_tahunan "`` -> ``"CUTI TAHUNAN"``)."""
    return _SEPARATORS.sub(" ", text).strip().upper()


class StatusTable:
    """Status -> :data:`Meaning`, nationally and per unit. Immutable; equal by content.

    ``statuses`` is the national table, ``units`` each unit's overrides (unit code -> status
    -> meaning); keys are normalised with :func:`normalise_status`. Raises ValueError for a
    meaning that is not one of :data:`MEANINGS` or an empty status.
    """

    __slots__ = ("_hash", "_merged", "_national", "_units")

    def __init__(
        self,
        statuses: Mapping[str, Meaning],
        units: Mapping[str, Mapping[str, Meaning]] = MappingProxyType({}),
    ) -> None:
        self._national = _normalised(statuses)
        self._units = {unit: _normalised(table) for unit, table in units.items() if table}
        self._hash = hash(
            (
                frozenset(self._national.items()),
                frozenset((unit, frozenset(t.items())) for unit, t in self._units.items()),
            )
        )
        self._merged: dict[str | None, Mapping[str, Meaning]] = {}

    @property
    def units(self) -> frozenset[str]:
        """The units with overrides of their own."""
        return frozenset(self._units)

    def meanings(self, unit: str | None = None) -> Mapping[str, Meaning]:
        """Normalised status -> meaning for the people of ``unit`` (the national table with the
        unit's overrides on top; the national table alone for None or a unit without any)."""
        merged = self._merged.get(unit)
        if merged is None:
            own = self._units.get(unit) if unit is not None else None
            merged = MappingProxyType({**self._national, **own} if own else self._national)
            self._merged[unit] = merged
        return merged

    def meaning(self, status: str, unit: str | None = None) -> Meaning | None:
        """What ``status`` (as HR writes it) means for a person of ``unit``; None when the
        table does not know it."""
        return self.meanings(unit).get(normalise_status(status))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StatusTable):
            return NotImplemented
        return self._national == other._national and self._units == other._units

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        units = f", overrides for {', '.join(sorted(self._units))}" if self._units else ""
        return f"StatusTable({len(self._national)} statuses{units})"


def _normalised(table: Mapping[str, Meaning]) -> dict[str, Meaning]:
    normalised: dict[str, Meaning] = {}
    for status, meaning in table.items():
        key = normalise_status(status)
        if not key:
            msg = "a status table entry has an empty status"
            raise ValueError(msg)
        if meaning not in MEANINGS:
            msg = f"status {key!r} means {meaning!r}; expected one of {', '.join(MEANINGS)}"
            raise ValueError(msg)
        normalised[key] = meaning
    return normalised


class BrokenStatuses(ConfigError):
    """The status files have errors; ``errors`` lists every one (file, row, column, reason)."""

    def __init__(self, errors: tuple[RowError, ...]) -> None:
        super().__init__(
            f"the status table has {len(errors)} error(s), no roster is read: "
            + describe_errors(errors)
        )
        self.errors = errors


def load_statuses(folder: str | Path) -> StatusTable:
    """The status table of the mappings folder ``folder``.

    ``statuses.csv`` in the folder is the national table (the shipped one when the folder has
    none, so an older mappings folder keeps working); ``statuses/<UNIT>.csv`` files add each
    unit's overrides. Raises :class:`BrokenStatuses` listing every bad cell and unreadable
    file when anything is wrong.
    """
    table, errors = _load(Path(folder))
    if errors or table is None:
        raise BrokenStatuses(tuple(errors))
    return table


def check_statuses(folder: str | Path) -> list[RowError]:
    """Every problem :func:`load_statuses` would refuse, without raising (for ``doctor``)."""
    return _load(Path(folder))[1]


@cache
def shipped_statuses() -> StatusTable:
    """The table of the shipped ``mappings/statuses.csv``: what readers use by default.

    Raises :class:`BrokenStatuses` when the shipped file is missing or broken (an
    installation problem).
    """
    return load_statuses(SHIPPED_MAPPINGS)


def _load(folder: Path) -> tuple[StatusTable | None, list[RowError]]:
    errors: list[RowError] = []
    national_file = folder / STATUS_FILE
    if national_file.is_file() or folder.resolve() == SHIPPED_MAPPINGS:
        national = _read(national_file, STATUS_FILE, errors)
    else:
        national = dict(shipped_statuses().meanings())
    units: dict[str, dict[str, Meaning]] = {}
    unit_folder = folder / UNIT_STATUS_FOLDER
    if unit_folder.is_dir():
        for path in sorted(unit_folder.iterdir()):
            if path.suffix.lower() != ".csv" or path.name.startswith("."):
                continue
            name = f"{UNIT_STATUS_FOLDER}/{path.name}"
            if not _UNIT.fullmatch(path.stem):
                reason = (
                    f"the file name {path.stem!r} is not a unit code: name the file after the "
                    "unit, in capitals (PENDIS.csv)"
                )
                errors.append(RowError(source=name, row=0, column=None, reason=reason))
                continue
            units[path.stem] = _read(path, name, errors)
    if errors:
        return None, errors
    return StatusTable(national, units), errors


def _read(path: Path, name: str, errors: list[RowError]) -> dict[str, Meaning]:
    """The statuses of one file; its problems are appended to ``errors``."""
    found: dict[str, Meaning] = {}
    first_row: dict[str, int] = {}
    for row in _rows(path, name, errors):
        status = normalise_status(row.values.get("status", ""))
        written = row.values.get("active", "").strip()
        meaning = _MEANING_BY_TEXT.get(written.lower().replace("-", "_").replace(" ", "_"))
        if not status:
            errors.append(_error(name, row, "status", "the status is empty"))
        elif status in first_row:
            reason = f"{status} is already listed on row {first_row[status]}"
            errors.append(_error(name, row, "status", reason))
        if meaning is None:
            reason = f"active {written!r} is not one of {', '.join(MEANINGS)}"
            errors.append(_error(name, row, "active", reason))
        if status and status not in first_row:
            first_row[status] = row.row
            if meaning is not None:
                found[status] = meaning
    return found


def _rows(path: Path, name: str, errors: list[RowError]) -> Iterator[SourceRow]:
    if not path.is_file():
        reason = f"the file is missing (expected at {path})"
        errors.append(RowError(source=name, row=0, column=None, reason=reason))
        return
    try:
        for row in read_rows(path, required=("status", "active")):
            if row.extra:
                reason = (
                    f"cells beyond the last column ({', '.join(row.extra)}): "
                    "a comma inside a note? Quote the note"
                )
                errors.append(RowError(source=name, row=row.row, column=None, reason=reason))
                continue
            yield row
    except SourceError as exc:
        column = getattr(exc, "column", None)
        errors.append(RowError(source=name, row=1 if column else 0, column=column, reason=str(exc)))


def _error(name: str, row: SourceRow, column: str, reason: str) -> RowError:
    return RowError(source=name, row=row.row, column=column, reason=reason)
