"""The mapping files: competency dictionary, position standards, course catalogue, unit policy.

Unit staff keep these files in ``mappings/`` and edit them in a spreadsheet; every column is
documented in ``mappings/README.md``. :func:`load_mappings` reads the national files and one
unit's files into a :class:`Mappings`, checking every cell: each problem becomes a
:class:`~moodle_bridge.roster.person.RowError` naming the file (relative to the folder), the
spreadsheet row and the column. :func:`check_mappings` returns those errors; :func:`load_mappings`
raises :class:`BrokenMappings` (a :class:`~moodle_bridge.errors.ConfigError`) carrying all of
them, so nothing is ever planned from a broken catalogue.

Layout of the folder::

    competencies.csv            code, name, kind, priority
    position_levels.csv         unit (optional), jabatan (exact or with *), position_level
    units.csv                   unit, annual_cap                     (optional file)
    standards/<UNIT>.csv        jabatan, competency, level
    catalogue/national.csv      competency, from_level, to_level, course_shortname, jp,
    catalogue/<UNIT>.csv          window_start, window_end, capacity, mode  (unit file optional)
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal, NamedTuple

from moodle_bridge.errors import ConfigError
from moodle_bridge.roster.assessment import parse_date
from moodle_bridge.roster.person import RowError, describe_errors
from moodle_bridge.roster.sources import SourceError, SourceRow, read_rows

__all__ = [
    "COMPETENCY_KINDS",
    "DEFAULT_ANNUAL_CAP",
    "MANAGERIAL_DEFAULTS",
    "NATIONAL",
    "POSITION_LEVELS",
    "BrokenMappings",
    "CompetencyDefinition",
    "CourseOffer",
    "Mappings",
    "PositionRule",
    "Requirement",
    "Standard",
    "check_mappings",
    "load_mappings",
    "normalise_jabatan",
]

#: The kinds of competency of PermenPANRB 38/2017.
COMPETENCY_KINDS: tuple[str, ...] = ("teknis", "manajerial", "sosial_kultural")

#: Position level -> the managerial level its standard requires (PermenPANRB 38/2017).
MANAGERIAL_DEFAULTS: Mapping[str, int] = MappingProxyType(
    {"JPT Madya": 5, "JPT Pratama": 4, "Administrator": 3, "Pengawas": 2, "Pelaksana": 1}
)
#: The position levels, most senior first.
POSITION_LEVELS: tuple[str, ...] = tuple(MANAGERIAL_DEFAULTS)

#: Trainings a person may start per year when ``units.csv`` says nothing for the unit.
DEFAULT_ANNUAL_CAP = 4

#: The scope of the rows of ``catalogue/national.csv``.
NATIONAL = "national"

Mode = Literal["manual", "cohort"]
_MODES: tuple[Mode, ...] = ("manual", "cohort")
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_UNIT = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_LEVEL_BY_NAME = {name.casefold(): name for name in POSITION_LEVELS}
_MAX_SHORTNAME = 255


def normalise_jabatan(text: str) -> str:
    """The form jabatan names are matched in: case-folded, spaces collapsed."""
    return " ".join(text.split()).casefold()


# --- the data -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CompetencyDefinition:
    """One entry of the competency dictionary (``competencies.csv``)."""

    code: str
    name: str
    kind: str
    #: Lower is more important; gaps of equal size are served in this order.
    priority: int
    source: str = ""
    row: int = 0


@dataclass(frozen=True, slots=True)
class CourseOffer:
    """One catalogue row: a Moodle course that takes a competency from one level to a higher one,
    in one enrolment window (``None`` ends are open), with an optional capacity.

    ``scope`` is the unit code of the unit's own catalogue, or :data:`NATIONAL`. ``mode`` is
    ``manual`` (the bridge enrols people) or ``cohort`` (an administrator linked the course to
    the gap cohort with cohort sync; the bridge manages only the cohort's membership).
    """

    competency: str
    from_level: int
    to_level: int
    course_shortname: str
    jp: int
    window_start: dt.date | None = None
    window_end: dt.date | None = None
    #: Seats in this window (``None``: unlimited; ``0``: no new seats).
    capacity: int | None = None
    mode: Mode = "manual"
    scope: str = NATIONAL
    source: str = ""
    row: int = 0

    @property
    def window_key(self) -> tuple[str, str, dt.date | None, dt.date | None]:
        """``(scope, shortname, start, end)``: what a capacity counts seats of."""
        return (self.scope, self.course_shortname, self.window_start, self.window_end)

    def is_closed(self, as_of: dt.date) -> bool:
        """True when the window ended before ``as_of``."""
        return self.window_end is not None and self.window_end < as_of

    def contains(self, day: dt.date) -> bool:
        """True when ``day`` falls inside the window."""
        start_ok = self.window_start is None or self.window_start <= day
        return start_ok and (self.window_end is None or day <= self.window_end)

    def window_status(self, day: dt.date) -> str:
        """``open``, ``upcoming`` or ``closed`` on ``day`` (a row without a window: open)."""
        if self.window_end is not None and self.window_end < day:
            return "closed"
        if self.window_start is not None and self.window_start > day:
            return "upcoming"
        return "open"

    def label(self) -> str:
        """``SHORTNAME (window 2025-03-01..2025-03-31)``, for messages."""
        if self.window_start is None and self.window_end is None:
            return self.course_shortname
        start = self.window_start.isoformat() if self.window_start else "…"
        end = self.window_end.isoformat() if self.window_end else "…"
        return f"{self.course_shortname} (window {start}..{end})"


class PositionRule(NamedTuple):
    """A row of ``position_levels.csv``: jabatan matching ``pattern`` have ``position_level``."""

    unit: str
    pattern: str
    position_level: str
    source: str
    row: int

    def matches(self, normalised: str) -> bool:
        """True when the (normalised) jabatan matches this rule."""
        return _pattern(normalise_jabatan(self.pattern)).fullmatch(normalised) is not None


class Requirement(NamedTuple):
    """A required level in one competency; ``origin`` says where it comes from."""

    competency: str
    level: int
    #: ``"standard"`` (the unit's standards file) or ``"default"`` (the managerial default
    #: of the position level).
    origin: str


class Standard(NamedTuple):
    """What a position requires: its requirements sorted by competency code."""

    jabatan: str
    position_level: str | None
    requirements: tuple[Requirement, ...]


@dataclass(frozen=True)
class Mappings:
    """Everything the gap engine needs to know about one unit, checked.

    Build it with :func:`load_mappings`. ``catalogue`` holds the unit's own rows first, then the
    national rows, each part in file order.
    """

    unit: str
    competencies: Mapping[str, CompetencyDefinition]
    #: Normalised jabatan -> competency code -> required level (the unit's standards file).
    standards: Mapping[str, Mapping[str, int]]
    position_rules: tuple[PositionRule, ...] = ()
    catalogue: tuple[CourseOffer, ...] = ()
    annual_cap: int = DEFAULT_ANNUAL_CAP
    #: Normalised jabatan -> the name as the standards file writes it.
    jabatan_names: Mapping[str, str] = field(default_factory=dict)
    _standards_cache: dict[str, Standard | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _offers: dict[tuple[str, int], tuple[CourseOffer, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _steps: dict[str, CourseOffer] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        offers: dict[tuple[str, int], list[CourseOffer]] = {}
        for offer in self.catalogue:
            self._steps.setdefault(offer.course_shortname, offer)
            offers.setdefault((offer.competency, offer.from_level), []).append(offer)
        for key, rows in offers.items():
            # Own rows before national ones; within each, the earliest window first.
            rows.sort(
                key=lambda o: (
                    0 if o.scope == self.unit else 1,
                    o.window_start or dt.date.min,
                    o.window_end or dt.date.max,
                    o.course_shortname,
                    o.row,
                )
            )
            self._offers[key] = tuple(rows)

    def position_level(self, jabatan: str) -> str | None:
        """The position level of ``jabatan``: the unit's rules first, then the general ones,
        each in file order; the first match wins. ``None`` when no rule matches."""
        normalised = normalise_jabatan(jabatan)
        for rule in self.position_rules:
            if rule.unit == self.unit and rule.matches(normalised):
                return rule.position_level
        for rule in self.position_rules:
            if not rule.unit and rule.matches(normalised):
                return rule.position_level
        return None

    def standard_for(self, jabatan: str) -> Standard | None:
        """The standard of ``jabatan``: the unit's rows for it, plus the managerial default of
        its position level for every managerial competency the rows leave out. ``None`` when
        the unit gives no row for it and no position-level rule matches it."""
        normalised = normalise_jabatan(jabatan)
        if normalised in self._standards_cache:
            return self._standards_cache[normalised]
        explicit = self.standards.get(normalised, {})
        level_name = self.position_level(jabatan) if normalised else None
        requirements = {c: Requirement(c, lvl, "standard") for c, lvl in explicit.items()}
        if level_name is not None:
            default = MANAGERIAL_DEFAULTS[level_name]
            for code, competency in self.competencies.items():
                if competency.kind == "manajerial" and code not in requirements:
                    requirements[code] = Requirement(code, default, "default")
        standard = (
            Standard(jabatan, level_name, tuple(requirements[c] for c in sorted(requirements)))
            if requirements
            else None
        )
        self._standards_cache[normalised] = standard
        return standard

    def offers(self, competency: str, from_level: int) -> tuple[CourseOffer, ...]:
        """The catalogue rows starting ``competency`` at ``from_level``, in the order they are
        tried: the unit's own rows, then national ones; earlier windows first."""
        return self._offers.get((competency, from_level), ())

    def course_step(self, shortname: str) -> CourseOffer | None:
        """A catalogue row of the course ``shortname`` (every row of one course closes the same
        step), or ``None`` when the course is not in this unit's catalogue."""
        return self._steps.get(shortname)

    def courses(self, shortname: str) -> tuple[CourseOffer, ...]:
        """Every catalogue row (window) of the course ``shortname``."""
        return tuple(o for o in self.catalogue if o.course_shortname == shortname)


# --- errors ---------------------------------------------------------------------------------------
class BrokenMappings(ConfigError):
    """The mapping files have errors; ``errors`` lists every one (file, row, column, reason)."""

    def __init__(self, unit: str, errors: tuple[RowError, ...]) -> None:
        super().__init__(
            f"the mappings of {unit} have {len(errors)} error(s), nothing is planned: "
            + describe_errors(errors)
        )
        self.unit = unit
        self.errors = errors


# --- loading --------------------------------------------------------------------------------------
def load_mappings(folder: str | Path, unit: str) -> Mappings:
    """Read and check the national files and ``unit``'s files in ``folder``.

    Raises :class:`BrokenMappings` listing every bad cell (and every missing or unreadable
    file) when anything is wrong.
    """
    mappings, errors = _load(Path(folder), unit)
    if errors or mappings is None:
        raise BrokenMappings(unit, tuple(errors))
    return mappings


def check_mappings(folder: str | Path, unit: str) -> list[RowError]:
    """Every problem :func:`load_mappings` would refuse, without raising (for ``doctor``)."""
    return _load(Path(folder), unit)[1]


class _Reader:
    """Reads one mapping file's rows and collects its errors."""

    def __init__(self, folder: Path, relative: str, errors: list[RowError]) -> None:
        self.path = folder / relative
        self.name = relative
        self.errors = errors

    def error(self, row: int, column: str | None, reason: str) -> None:
        self.errors.append(RowError(source=self.name, row=row, column=column, reason=reason))

    def rows(self, required: tuple[str, ...], *, optional: bool = False) -> Iterator[SourceRow]:
        if not self.path.is_file():
            if not optional:
                self.error(0, None, f"the file is missing (expected at {self.path})")
            return
        try:
            for row in read_rows(self.path, required=required):
                if row.extra:
                    self.error(
                        row.row,
                        None,
                        f"cells beyond the last column ({', '.join(row.extra)}): "
                        "a separator inside a cell?",
                    )
                yield row
        except SourceError as exc:
            column = getattr(exc, "column", None)
            self.error(1 if column else 0, column, str(exc))

    def cell(self, row: SourceRow, column: str) -> str:
        return (row.values.get(column) or "").strip()

    def integer(
        self, row: SourceRow, column: str, *, low: int, high: int | None = None, what: str = ""
    ) -> int | None:
        text = self.cell(row, column)
        value = _int(text)
        if value is None or value < low or (high is not None and value > high):
            bound = f"{low}-{high}" if high is not None else f"a whole number of {low} or more"
            self.error(row.row, column, f"{what or column} {text!r} is not {bound}")
            return None
        return value

    def date(self, row: SourceRow, column: str) -> tuple[bool, dt.date | None]:
        text = self.cell(row, column)
        if not text:
            return True, None
        day = parse_date(text)
        if day is None:
            self.error(row.row, column, f"the date {text!r} is not a day written YYYY-MM-DD")
            return False, None
        return True, day


def _int(text: str) -> int | None:
    if re.fullmatch(r"-?\d+(?:\.0+)?", text):
        return int(text.split(".")[0])
    return None


def _load(folder: Path, unit: str) -> tuple[Mappings | None, list[RowError]]:
    errors: list[RowError] = []
    if not _UNIT.fullmatch(unit):
        errors.append(
            RowError(
                source="", row=0, column=None, reason=f"{unit!r} is not a unit code (like PENDIS)"
            )
        )
        return None, errors
    competencies = _competencies(_Reader(folder, "competencies.csv", errors))
    rules = _position_rules(_Reader(folder, "position_levels.csv", errors))
    annual_cap = _annual_cap(_Reader(folder, "units.csv", errors), unit)
    standards, names = _standards(_Reader(folder, f"standards/{unit}.csv", errors), competencies)
    national = _catalogue(_Reader(folder, "catalogue/national.csv", errors), competencies, NATIONAL)
    own = _catalogue(
        _Reader(folder, f"catalogue/{unit}.csv", errors), competencies, unit, optional=True
    )
    _check_courses(own, national, errors)
    mappings = Mappings(
        unit=unit,
        competencies=MappingProxyType(competencies),
        standards=MappingProxyType(standards),
        position_rules=tuple(rules),
        catalogue=(*own, *national),
        annual_cap=annual_cap,
        jabatan_names=MappingProxyType(names),
    )
    return mappings, errors


def _competencies(reader: _Reader) -> dict[str, CompetencyDefinition]:
    found: dict[str, CompetencyDefinition] = {}
    for row in reader.rows(("code", "name", "kind", "priority")):
        code = reader.cell(row, "code")
        name = reader.cell(row, "name")
        kind = reader.cell(row, "kind").lower()
        ok = True
        if not _CODE.fullmatch(code):
            reader.error(
                row.row,
                "code",
                f"the code {code!r} is empty or has characters other than "
                "letters, digits, '.', '_' and '-'",
            )
            ok = False
        elif code in found:
            reader.error(row.row, "code", f"{code} is already defined on row {found[code].row}")
            ok = False
        if not name:
            reader.error(row.row, "name", "the name is empty")
            ok = False
        if kind not in COMPETENCY_KINDS:
            reader.error(
                row.row, "kind", f"the kind {kind!r} is not one of {', '.join(COMPETENCY_KINDS)}"
            )
            ok = False
        priority = reader.integer(row, "priority", low=0, what="the priority")
        if ok and priority is not None:
            found[code] = CompetencyDefinition(code, name, kind, priority, reader.name, row.row)
    return found


def _position_rules(reader: _Reader) -> list[PositionRule]:
    rules: list[PositionRule] = []
    for row in reader.rows(("jabatan", "position_level")):
        unit = reader.cell(row, "unit").upper()
        pattern = " ".join(reader.cell(row, "jabatan").split())
        level = _LEVEL_BY_NAME.get(" ".join(reader.cell(row, "position_level").split()).casefold())
        ok = True
        if unit and not _UNIT.fullmatch(unit):
            reader.error(row.row, "unit", f"{unit!r} is not a unit code (like PENDIS)")
            ok = False
        if not pattern:
            reader.error(row.row, "jabatan", "the jabatan (or pattern) is empty")
            ok = False
        if level is None:
            reader.error(
                row.row,
                "position_level",
                f"the position level {reader.cell(row, 'position_level')!r} is not one of "
                f"{', '.join(POSITION_LEVELS)}",
            )
            ok = False
        if ok and level is not None:
            rules.append(PositionRule(unit, pattern, level, reader.name, row.row))
    return rules


def _unit_rows(reader: _Reader) -> dict[str, SourceRow]:
    """The rows of ``units.csv`` by unit code (the file is optional)."""
    found: dict[str, SourceRow] = {}
    for row in reader.rows(("unit",), optional=True):
        code = reader.cell(row, "unit").upper()
        if not _UNIT.fullmatch(code):
            reader.error(row.row, "unit", f"{code!r} is not a unit code (like PENDIS)")
        elif code in found:
            reader.error(row.row, "unit", f"{code} is already listed on row {found[code].row}")
        else:
            found[code] = row
    return found


def _annual_cap(reader: _Reader, unit: str) -> int:
    rows = _unit_rows(reader)
    cap = DEFAULT_ANNUAL_CAP
    for code, row in rows.items():
        if not reader.cell(row, "annual_cap"):
            continue
        value = reader.integer(row, "annual_cap", low=0, high=52, what="the annual cap")
        if value is not None and code == unit:
            cap = value
    return cap


class UnitCohort(NamedTuple):
    """A unit's cohort in Moodle: everyone whose current unit it is. An empty ``name`` leaves
    the plugin's."""

    idnumber: str
    name: str


def load_unit_cohorts(folder: Path) -> dict[str, UnitCohort]:
    """Each unit's cohort from ``units.csv``: ``cohort_idnumber`` (default ``unit:<CODE>``) and
    ``name``. Raises BrokenMappings for a bad file."""
    errors: list[RowError] = []
    reader = _Reader(folder, "units.csv", errors)
    cohorts: dict[str, UnitCohort] = {}
    for code, row in _unit_rows(reader).items():
        idnumber = reader.cell(row, "cohort_idnumber") or f"unit:{code}"
        if len(idnumber) > 100 or not idnumber.isprintable():
            reader.error(row.row, "cohort_idnumber", f"{idnumber!r} cannot be a cohort idnumber")
            continue
        cohorts[code] = UnitCohort(idnumber, reader.cell(row, "name"))
    taken: dict[str, str] = {}
    for code, cohort in cohorts.items():
        if taken.setdefault(cohort.idnumber, code) != code:
            reader.error(
                0,
                "cohort_idnumber",
                f"{code} and {taken[cohort.idnumber]} share the cohort {cohort.idnumber}",
            )
    if errors:
        scope = "every unit (units.csv)"
        raise BrokenMappings(scope, tuple(errors))
    return cohorts


def _standards(
    reader: _Reader, competencies: Mapping[str, CompetencyDefinition]
) -> tuple[dict[str, dict[str, int]], dict[str, str]]:
    standards: dict[str, dict[str, int]] = {}
    names: dict[str, str] = {}
    rows_of: dict[tuple[str, str], int] = {}
    for row in reader.rows(("jabatan", "competency", "level")):
        jabatan = " ".join(reader.cell(row, "jabatan").split())
        code = reader.cell(row, "competency")
        ok = True
        if not jabatan:
            reader.error(row.row, "jabatan", "the jabatan is empty")
            ok = False
        if code not in competencies:
            reader.error(row.row, "competency", _unknown(code))
            ok = False
        level = reader.integer(row, "level", low=1, high=5, what="the level")
        if not ok or level is None:
            continue
        key = (normalise_jabatan(jabatan), code)
        if key in rows_of:
            reader.error(
                row.row, "competency", f"{jabatan} / {code} is already given on row {rows_of[key]}"
            )
            continue
        rows_of[key] = row.row
        standards.setdefault(key[0], {})[code] = level
        names.setdefault(key[0], jabatan)
    return standards, names


def _unknown(code: str) -> str:
    if not code:
        return "the competency code is empty"
    return f"the competency {code!r} is not in competencies.csv"


_CATALOGUE_COLUMNS = ("competency", "from_level", "to_level", "course_shortname", "jp")


def _catalogue(
    reader: _Reader,
    competencies: Mapping[str, CompetencyDefinition],
    scope: str,
    *,
    optional: bool = False,
) -> list[CourseOffer]:
    offers: list[CourseOffer] = []
    for row in reader.rows(_CATALOGUE_COLUMNS, optional=optional):
        code = reader.cell(row, "competency")
        ok = True
        if code not in competencies:
            reader.error(row.row, "competency", _unknown(code))
            ok = False
        low = reader.integer(row, "from_level", low=1, high=5, what="the level")
        high = reader.integer(row, "to_level", low=1, high=5, what="the level")
        if low is not None and high is not None and low >= high:
            reader.error(row.row, "to_level", f"to_level {high} is not above from_level {low}")
            ok = False
        shortname = reader.cell(row, "course_shortname")
        if not shortname or len(shortname) > _MAX_SHORTNAME:
            reader.error(row.row, "course_shortname", "the course short name is empty or too long")
            ok = False
        jp = reader.integer(row, "jp", low=1, high=1000, what="the JP")
        start_ok, start = reader.date(row, "window_start")
        end_ok, end = reader.date(row, "window_end")
        if start is not None and end is not None and end < start:
            reader.error(
                row.row, "window_end", f"the window ends ({end}) before it starts ({start})"
            )
            ok = False
        capacity: int | None = None
        if reader.cell(row, "capacity"):
            capacity = reader.integer(row, "capacity", low=0, what="the capacity")
            ok = ok and capacity is not None
        mode_text = reader.cell(row, "mode").lower() or "manual"
        mode: Mode = "cohort" if mode_text == "cohort" else "manual"
        if mode_text not in _MODES:
            reader.error(row.row, "mode", f"the mode {mode_text!r} is not manual or cohort")
            ok = False
        if not (ok and start_ok and end_ok) or low is None or high is None or jp is None:
            continue
        offer = CourseOffer(
            code, low, high, shortname, jp, start, end, capacity, mode, scope, reader.name, row.row
        )
        for other in offers:
            if other.competency == code and other.from_level == low and _overlap(other, offer):
                reader.error(
                    row.row,
                    "from_level",
                    f"row {other.row} already offers {code} from level {low} in an "
                    "overlapping window (give each row of the same start level its own window)",
                )
                break
        else:
            offers.append(offer)
    return offers


def _overlap(a: CourseOffer, b: CourseOffer) -> bool:
    a_start, a_end = a.window_start or dt.date.min, a.window_end or dt.date.max
    b_start, b_end = b.window_start or dt.date.min, b.window_end or dt.date.max
    return a_start <= b_end and b_start <= a_end


def _check_courses(
    own: list[CourseOffer], national: list[CourseOffer], errors: list[RowError]
) -> None:
    """One course short name means one competency step, and its windows must not overlap."""
    seen: dict[str, list[CourseOffer]] = {}
    for offer in (*national, *own):
        for other in seen.get(offer.course_shortname, ()):
            where = f"{other.source} row {other.row}"
            if (other.competency, other.from_level, other.to_level) != (
                offer.competency,
                offer.from_level,
                offer.to_level,
            ):
                reason = (
                    f"the course {offer.course_shortname} is {other.competency} "
                    f"{other.from_level}->{other.to_level} on {where}; one course must "
                    "close one step"
                )
            elif _overlap(other, offer):
                reason = (
                    f"the course {offer.course_shortname} already has an overlapping window "
                    f"on {where}"
                )
            else:
                continue
            errors.append(
                RowError(
                    source=offer.source, row=offer.row, column="course_shortname", reason=reason
                )
            )
            break
        else:
            seen.setdefault(offer.course_shortname, []).append(offer)


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _pattern(text: str) -> re.Pattern[str]:
    compiled = _PATTERNS.get(text)
    if compiled is None:
        compiled = re.compile(".*".join(re.escape(part) for part in text.split("*")))
        _PATTERNS[text] = compiled
    return compiled
