"""The unit-plugin contract, and how installed unit plugins are found.

A *unit plugin* teaches the bridge one Eselon I unit's HR exports. It is a subclass of
:class:`UnitMapper` registered in the entry-point group ``moodle_bridge.units``::

    [project.entry-points."moodle_bridge.units"]
    pendis = "plugins.pendis:PendisMapper"

The entry-point name (``pendis``) is what ``--plugin`` selects; the class is created with no
arguments. The built-in plugins (``generic``, ``pendis``, ``bimas_islam``) are registered the
same way by moodle-bridge's own ``pyproject.toml``, so a unit's own package works exactly like
ours. A plugin sets :attr:`UnitMapper.code` and :attr:`UnitMapper.name` and implements
:meth:`UnitMapper.map_row`; every other hook has a default. A unit whose export is the generic
format under other headers subclasses :class:`GenericColumnsMapper` and only says how its row
reads as a generic one.

Statuses are data, not code: the bridge loads the status table of the mappings folder
(:func:`~moodle_bridge.roster.statuses.load_statuses`: ``mappings/statuses.csv`` and the units'
``mappings/statuses/<UNIT>.csv``) and sets it as :attr:`UnitMapper.statuses` before it calls
:meth:`UnitMapper.read_roster`. A plugin never sets it; a plugin that maps rows itself passes
it on to :func:`~moodle_bridge.roster.generic.parse_generic_row` (``statuses=self.statuses``),
which :class:`GenericColumnsMapper` does already. Left as None, it means the shipped table.

Cohorts: every person belongs to the cohort of their unit, whose Moodle ``idnumber`` is
``unit:<CODE>`` (``unit:PENDIS``) and whose name is the unit's name. The prefix keeps the
bridge's cohorts apart from cohorts made by hand, and the code is stable where names change.

:func:`discover_units` loads every plugin, checks it against the contract
(:func:`check_contract`), and reports a plugin that fails to import or breaks the contract by
name instead of raising, so one broken plugin never takes down the run for the other units.
"""

from __future__ import annotations

import abc
import difflib
import importlib.metadata
import inspect
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import get_args

from pydantic import BaseModel, ConfigDict

from moodle_bridge.errors import ConfigError
from moodle_bridge.roster import generic as _generic
from moodle_bridge.roster.assessment import (
    Assessment,
    LatestAssessments,
    collect_latest,
    parse_assessment_row,
)
from moodle_bridge.roster.generic import RosterResult, parse_generic_row
from moodle_bridge.roster.names import MononymRule
from moodle_bridge.roster.person import DEFAULT_PROFILE_FIELDS, Person, RowError
from moodle_bridge.roster.sources import SourceRow, read_rows
from moodle_bridge.roster.statuses import StatusTable

__all__ = [
    "COHORT_PREFIX",
    "DEFAULT_PROFILE_FIELDS",
    "ENTRY_POINT_GROUP",
    "HOOKS",
    "Assessment",
    "CohortSpec",
    "DiscoveryResult",
    "GenericColumnsMapper",
    "InstalledUnit",
    "PluginProblem",
    "RosterResult",
    "UnitMapper",
    "check_contract",
    "collect_roster",
    "discover_units",
    "installed_units",
    "unit_cohort",
]

#: The entry-point group unit plugins register in.
ENTRY_POINT_GROUP = "moodle_bridge.units"

#: Prefix of the ``idnumber`` of the bridge's unit cohorts: ``unit:PENDIS``.
COHORT_PREFIX = "unit:"


_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")


class CohortSpec(BaseModel):
    """A Moodle cohort a person belongs to, named by its ``idnumber`` (the key) and ``name``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    idnumber: str
    name: str


def unit_cohort(code: str, name: str) -> CohortSpec:
    """The cohort of everyone in unit ``code``: idnumber ``unit:<code>``, the unit's name."""
    return CohortSpec(idnumber=f"{COHORT_PREFIX}{code}", name=name)


class UnitMapper(abc.ABC):
    """Base class of unit plugins: how one unit's exports become people, and its policies.

    Subclasses set :attr:`code` and :attr:`name`, implement :meth:`map_row`, and override
    any other hook whose default does not suit the unit. Hooks must be deterministic (the same
    input gives the same output, run after run: the sync plans from their answers) and must not
    print or talk to Moodle. A hook that cannot map a row returns a
    :class:`~moodle_bridge.roster.person.RowError`; only a problem with the whole file raises.
    """

    #: The Eselon I code of the unit's people (``PENDIS``): capitals, digits and ``_``.
    code: str = ""
    #: The unit's name, for people and for the unit cohort's name.
    name: str = ""
    #: True when the file names each person's unit (the ``generic`` plugin): people may then
    #: belong to any unit, not only :attr:`code`.
    any_unit: bool = False
    #: Moodle ``auth`` plugin of the accounts the bridge creates for this unit.
    auth: str = "manual"
    #: How a one-word name is split (``"repeat"`` or ``"marker"``, see
    #: :func:`~moodle_bridge.roster.names.split_name`), and the marker ``"marker"`` uses.
    name_rule: MononymRule = "repeat"
    name_marker: str = "."
    #: Lower-case headers the roster must have; the default :meth:`read_roster` stops with a
    #: :class:`~moodle_bridge.roster.sources.MissingColumn` naming one that is missing.
    required_columns: tuple[str, ...] = ()
    #: Generic column (``nip``, ``nama``, ``email``, ``satker``...) -> the header the unit's
    #: file uses for it (``"NIP"``, ``"Nama Lengkap"``), so that row errors name the column a
    #: clerk sees. Used by :func:`collect_roster` and :class:`GenericColumnsMapper`.
    column_names: Mapping[str, str] = MappingProxyType({})
    #: The status table to read rows with. Set by the bridge before :meth:`read_roster` (from
    #: the mappings folder); None means the shipped ``mappings/statuses.csv``. A plugin does
    #: not set it: a unit's own statuses go in ``mappings/statuses/<UNIT>.csv``.
    statuses: StatusTable | None = None

    # --- reading -------------------------------------------------------------------------------
    def read_roster(self, path: Path) -> RosterResult:
        """Read a whole roster file. Called once per run, for the file given with ``--roster``.

        Returns every row as a person or a row error (with its row number), duplicate NIPs
        settled and ``kept``/``untied`` filled as :func:`collect_roster` describes; statuses
        are read with :attr:`statuses`. Raises
        :class:`~moodle_bridge.roster.sources.SourceError` (a ConfigError) for a problem with
        the whole file: unreadable, a required column missing. The default streams rows with
        :func:`~moodle_bridge.roster.sources.read_rows` (CSV or XLSX) and calls :meth:`map_row`
        on each; override it only for a format those readers cannot read.
        """
        rows = read_rows(path, required=self.required_columns)
        outcomes = (self.map_row(path.name, row) for row in rows)
        return collect_roster(path.name, outcomes, column_names=self.column_names)

    @abc.abstractmethod
    def map_row(self, source_name: str, row: SourceRow) -> Person | RowError:
        """Map one roster row. Called by :meth:`read_roster` for every non-empty data row.

        ``source_name`` is the file's name and ``row.row`` the 1-based row number (the header
        is row 1); both go into the result's ``source`` and ``row``. Returns a
        :class:`~moodle_bridge.roster.person.Person` whose ``unit`` is :attr:`code` (or any
        unit when :attr:`any_unit`), or a :class:`~moodle_bridge.roster.person.RowError`
        naming the file's column and saying, in words a clerk understands, what is wrong, with
        ``nip`` set whenever the NIP could be read. A status :attr:`statuses` does not know
        gives an :class:`~moodle_bridge.roster.person.UnknownStatus`, never a plain RowError
        nor an inactive person. Must not raise for a bad row.
        """

    def read_assessments(self, path: Path) -> tuple[list[Assessment], list[RowError]]:
        """Read an assessment file. Called once per run by the competency-gap commands.

        Returns the assessments and the row errors, both in file order. Raises
        :class:`~moodle_bridge.roster.sources.SourceError` when the file cannot be read. The
        default reads every row through :meth:`map_assessment_row`.
        """
        assessments: list[Assessment] = []
        errors: list[RowError] = []
        for result in self._assessment_rows(path):
            if isinstance(result, RowError):
                errors.append(result)
            else:
                assessments.append(result)
        return assessments, errors

    def latest_assessments(self, path: Path) -> tuple[LatestAssessments, list[RowError]]:
        """The latest assessment per person and competency, and the row errors: what the gap
        engine uses, without holding every row of a file of millions. Not a hook: a plugin
        that reads assessments its own way overrides :meth:`read_assessments`, and this
        follows it."""
        if type(self).read_assessments is not UnitMapper.read_assessments:
            assessments, errors = self.read_assessments(path)
            latest, _ = collect_latest(assessments)
            return latest, errors
        return collect_latest(self._assessment_rows(path))

    def _assessment_rows(self, path: Path) -> Iterator[Assessment | RowError]:
        return (self.map_assessment_row(path.name, row) for row in read_rows(path))

    def map_assessment_row(self, source_name: str, row: SourceRow) -> Assessment | RowError:
        """Map one assessment row. Called by :meth:`read_assessments` for every data row.

        Returns an :class:`~moodle_bridge.roster.assessment.Assessment` (level 1-5) or a
        RowError; must not raise for a bad row. The default reads the generic layout: ``nip``,
        ``kompetensi``, ``level``, ``tanggal`` (``DD-MM-YYYY`` or ``YYYY-MM-DD``).
        """
        return parse_assessment_row(source_name, row)

    # --- policies -----------------------------------------------------------------------------
    def username_for(self, person: Person) -> str:
        """The Moodle ``username`` of ``person``. Called when the desired state is built.

        Must return a non-empty string Moodle accepts as a username (lower-case letters,
        digits, ``_ - . @``) that is stable for the person and unique on the site. Default:
        the NIP.
        """
        return person.nip

    def profile_fields(
        self, person: Person, shortnames: Mapping[str, str] = DEFAULT_PROFILE_FIELDS
    ) -> dict[str, str]:
        """Moodle custom profile fields of ``person``. Called when the desired state is built.

        ``shortnames`` maps person attributes to the site's field short names (from the
        settings); attributes it leaves out are not filled. Returns short name -> value, where
        an empty value clears the field. Default: ``unit``, ``satker``, ``jabatan`` and
        ``golongan``.
        """
        values = {
            "unit": person.unit,
            "satker": person.satker,
            "jabatan": person.jabatan,
            "golongan": person.golongan,
        }
        return {shortnames[key]: value for key, value in values.items() if key in shortnames}

    def cohorts_for(self, person: Person) -> list[CohortSpec]:
        """The cohorts ``person`` belongs to. Called when the desired state is built.

        Returns every bridge-managed cohort the person should be in; the bridge takes them out
        of its cohorts not listed. Default: the unit cohort, ``unit:<CODE>`` named after the
        unit (see :func:`unit_cohort`).
        """
        name = self.name if person.unit == self.code else person.unit
        return [unit_cohort(person.unit, name)]


class GenericColumnsMapper(UnitMapper):
    """A unit whose export carries the generic columns under its own headers.

    A subclass implements :meth:`to_generic`; this class runs the result through
    :func:`~moodle_bridge.roster.generic.parse_generic_row` (NIP, name, email and status
    rules all apply unchanged, statuses through :attr:`statuses`) and names the unit's own
    header in every RowError, using :attr:`column_names`.
    """

    @abc.abstractmethod
    def to_generic(self, row: SourceRow) -> dict[str, str]:
        """The row as generic columns. Called by :meth:`map_row` for every row.

        Returns ``nip``, ``nama`` (titles included), ``unit``, and whichever of ``email``,
        ``satker``, ``jabatan``, ``golongan``, ``status`` the file has. A column left out is
        empty; a missing ``unit`` is :attr:`code`.
        """

    def map_row(self, source_name: str, row: SourceRow) -> Person | RowError:
        """Map the row through :meth:`to_generic` and the generic rules (see the class)."""
        values = {"unit": self.code, **self.to_generic(row)}
        result = parse_generic_row(
            source_name,
            SourceRow(row.row, values, row.extra),
            mononym=self.name_rule,
            marker=self.name_marker,
            statuses=self.statuses,
        )
        if isinstance(result, RowError):
            return _renamed(result, self.column_names)
        return result


def collect_roster(
    source_name: str,
    outcomes: Iterable[Person | RowError],
    *,
    column_names: Mapping[str, str] = MappingProxyType({}),
) -> RosterResult:
    """Gather mapped rows into a :class:`~moodle_bridge.roster.generic.RosterResult`.

    Duplicate NIPs are settled as :func:`~moodle_bridge.roster.generic.read_generic_roster`
    settles them: rows identical after cleaning count once, with a warning; rows that differ
    are all refused. Each person's warnings, every email address shared by several people, and
    every :class:`~moodle_bridge.roster.person.UnknownStatus` are in ``warnings``. ``kept``
    names the NIP of every row that could not be used, ``untied`` counts the refused rows
    without a readable NIP. The findings made here name their column through ``column_names``
    (generic column -> the file's header).
    """
    result = _generic.collect_outcomes(source_name, outcomes)
    if column_names:
        result.errors = [_renamed(error, column_names) for error in result.errors]
        result.warnings = [_renamed(warning, column_names) for warning in result.warnings]
        result.kept = {nip: _renamed(why, column_names) for nip, why in result.kept.items()}
    result.warnings.sort(key=lambda warning: warning.row)
    return result


def _renamed(error: RowError, column_names: Mapping[str, str]) -> RowError:
    if error.column is None or error.column not in column_names:
        return error
    return error.model_copy(update={"column": column_names[error.column]})


# --- the contract check ---------------------------------------------------------------------------
#: The hooks a plugin may override, with the arguments the bridge passes each (after self).
HOOKS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "read_roster": ("path",),
        "map_row": ("source_name", "row"),
        "read_assessments": ("path",),
        "map_assessment_row": ("source_name", "row"),
        "username_for": ("person",),
        "profile_fields": ("person", "shortnames"),
        "cohorts_for": ("person",),
    }
)
_GENERIC_HOOKS: Mapping[str, tuple[str, ...]] = MappingProxyType({"to_generic": ("row",)})
_SETTINGS = (
    "code", "name", "any_unit", "auth", "name_rule", "name_marker", "required_columns",
    "column_names", "statuses",
)  # fmt: skip
_KNOWN = frozenset((*HOOKS, *_GENERIC_HOOKS, *_SETTINGS))


def _squash(name: str) -> str:
    return name.replace("_", "").lower()


_SQUASHED = {_squash(known): known for known in _KNOWN}


def _misspelt(attribute: str) -> str | None:
    """The contract name ``attribute`` seems a misspelling of, if any."""
    close = difflib.get_close_matches(_squash(attribute), _SQUASHED, n=1, cutoff=0.85)
    return _SQUASHED[close[0]] if close else None


def _own_attributes(mapper: UnitMapper) -> list[str]:
    """Public names the plugin defines itself: in class bodies below the base, or on self."""
    names: set[str] = set(vars(mapper))
    bases = set(GenericColumnsMapper.__mro__)
    for klass in type(mapper).__mro__:
        if klass not in bases:
            names.update(vars(klass))
    return sorted(name for name in names if not name.startswith("_"))


def check_contract(mapper: UnitMapper) -> list[str]:
    """What is wrong with ``mapper`` as a unit plugin, one sentence each; empty when nothing.

    Checked: :attr:`~UnitMapper.code` (capitals, digits, ``_``) and :attr:`~UnitMapper.name`
    are set; the settings have the right types; every hook is callable with the arguments the
    bridge passes; and no attribute looks like a misspelt hook or setting (``map_rows``,
    ``cohort_for``), which would otherwise be silently ignored.
    """
    problems: list[str] = []
    code = getattr(mapper, "code", None)
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        problems.append(
            f"code must be a unit code of capitals, digits and '_' (like PENDIS), got {code!r}"
        )
    for setting, wanted in (("name", "the unit's name"), ("auth", "a Moodle auth plugin")):
        value = getattr(mapper, setting, None)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{setting} must be {wanted}, got {value!r}")
    if not isinstance(getattr(mapper, "any_unit", None), bool):
        problems.append("any_unit must be True or False")
    rules = get_args(MononymRule)
    if getattr(mapper, "name_rule", None) not in rules:
        problems.append(f"name_rule must be one of {', '.join(map(repr, rules))}")
    marker = getattr(mapper, "name_marker", None)
    if not isinstance(marker, str) or not marker.strip():
        problems.append("name_marker must be a non-empty string")
    columns = getattr(mapper, "required_columns", None)
    # Headers reach map_row lower-cased with single spaces; "NIP" would never be found.
    if not isinstance(columns, tuple) or not all(
        isinstance(c, str) and c == " ".join(c.split()).lower() for c in columns
    ):
        problems.append(
            f"required_columns must be a tuple of lower-case header names, got {columns!r}"
        )
    if not isinstance(getattr(mapper, "column_names", None), Mapping):
        problems.append("column_names must be a mapping of generic column to header")
    statuses = getattr(mapper, "statuses", None)
    if not isinstance(statuses, StatusTable | None):
        problems.append(
            f"statuses must be a StatusTable or None, got {type(statuses).__name__}: the bridge "
            "sets it from the mappings folder, and a unit's own statuses go in "
            "mappings/statuses/<UNIT>.csv"
        )
    hooks = dict(HOOKS)
    if isinstance(mapper, GenericColumnsMapper):
        hooks.update(_GENERIC_HOOKS)
    for hook, arguments in hooks.items():
        problem = _check_hook(mapper, hook, arguments)
        if problem:
            problems.append(problem)
    for attribute in _own_attributes(mapper):
        if attribute not in _KNOWN and (meant := _misspelt(attribute)) is not None:
            problems.append(
                f"{attribute!r} is not part of the contract: did you mean {meant!r}? "
                "(a private helper's name should start with '_')"
            )
    return problems


def _check_hook(mapper: UnitMapper, hook: str, arguments: tuple[str, ...]) -> str | None:
    implementation = getattr(mapper, hook, None)
    if not callable(implementation):
        return f"{hook} must be a method, got {type(implementation).__name__}"
    try:
        signature = inspect.signature(implementation)
    except (TypeError, ValueError):
        return None  # a builtin without a signature: nothing to check
    try:
        signature.bind(*arguments)
    except TypeError:
        return f"{hook}{signature} cannot be called as {hook}({', '.join(arguments)})"
    return None


# --- discovery ------------------------------------------------------------------------------------
class PluginProblem(BaseModel):
    """A plugin that was skipped: its entry-point ``name`` and why, in words."""

    model_config = ConfigDict(frozen=True)

    name: str
    reason: str
    distribution: str | None = None


class InstalledUnit(BaseModel):
    """One installed unit plugin as ``moodle-bridge plugins`` lists it.

    ``problem`` says why the plugin was skipped (``code`` and ``unit_name`` are then empty
    when it could not even be loaded); None for a usable plugin.
    """

    model_config = ConfigDict(frozen=True)

    #: The entry-point name, what ``--unit`` selects.
    name: str
    code: str
    unit_name: str
    #: The entry point's target, ``module:Class``.
    target: str
    #: The distribution that installed it, and its version (None when unknown).
    distribution: str | None
    version: str | None
    problem: str | None = None


@dataclass
class DiscoveryResult:
    """The usable plugins by entry-point name, the skipped ones, and all as installed."""

    units: dict[str, UnitMapper] = field(default_factory=dict)
    problems: list[PluginProblem] = field(default_factory=list)
    installed: list[InstalledUnit] = field(default_factory=list)

    def require(self, name: str) -> UnitMapper:
        """The plugin called ``name``; ConfigError saying why when it is missing or broken."""
        if name in self.units:
            return self.units[name]
        for problem in self.problems:
            if problem.name == name:
                msg = f"unit plugin {name!r} is installed but unusable: {problem.reason}"
                raise ConfigError(msg)
        available = ", ".join(sorted(self.units)) or "none"
        msg = f"no unit plugin called {name!r} (installed: {available})"
        raise ConfigError(msg)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _instantiate(target: object) -> UnitMapper:
    """The mapper an entry point's object stands for; TypeError saying why it is not one."""
    if isinstance(target, UnitMapper):
        return target
    if isinstance(target, type) and issubclass(target, UnitMapper):
        if inspect.isabstract(target):
            missing = ", ".join(sorted(getattr(target, "__abstractmethods__", ())))
            msg = f"{target.__name__} does not implement {missing}"
            raise TypeError(msg)
        return target()
    shown = getattr(target, "__qualname__", None) or type(target).__name__
    msg = f"{shown} is not a UnitMapper subclass"
    raise TypeError(msg)


def _distribution_of(entry_point: importlib.metadata.EntryPoint) -> tuple[str | None, str | None]:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return None, None
    try:
        return str(dist.metadata["Name"]), str(dist.version)
    except Exception:
        return None, None


def _load(entry_point: importlib.metadata.EntryPoint) -> tuple[UnitMapper | None, str]:
    """The checked mapper, or None and why it is unusable."""
    try:
        mapper = _instantiate(entry_point.load())
    except (Exception, SystemExit) as exc:
        # SystemExit too: a plugin calling sys.exit() on import must not end the run.
        return None, f"cannot load {entry_point.value}: {_describe(exc)}"
    try:
        problems = check_contract(mapper)
    except Exception as exc:
        problems = [f"checking it failed: {_describe(exc)}"]
    if problems:
        return mapper, "breaks the unit-plugin contract: " + "; ".join(problems)
    return mapper, ""


def _text_attribute(mapper: UnitMapper | None, attribute: str) -> str:
    value = getattr(mapper, attribute, "")
    return value if isinstance(value, str) else ""


def discover_units(
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
) -> DiscoveryResult:
    """Load every unit plugin of the ``moodle_bridge.units`` group; never raises.

    ``entry_points`` defaults to the installed ones (tests pass their own). A plugin that fails
    to import or to be created, is not a :class:`UnitMapper`, breaks the contract
    (:func:`check_contract`), or reuses a name or unit code an earlier plugin holds, is left
    out of ``units`` and reported in ``problems``; ``installed`` lists all, sorted by name.
    """
    if entry_points is None:
        entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    result = DiscoveryResult()
    codes: dict[str, str] = {}
    for entry_point in entry_points:
        distribution, version = _distribution_of(entry_point)
        if entry_point.name in result.units:
            mapper, problem = None, f"the name {entry_point.name!r} is taken by another plugin"
        else:
            mapper, problem = _load(entry_point)
        code = _text_attribute(mapper, "code")
        if not problem and code in codes:
            problem = f"unit code {code!r} is already provided by plugin {codes[code]!r}"
        if problem:
            result.problems.append(
                PluginProblem(name=entry_point.name, reason=problem, distribution=distribution)
            )
        else:
            assert mapper is not None
            codes[code] = entry_point.name
            result.units[entry_point.name] = mapper
        result.installed.append(
            InstalledUnit(
                name=entry_point.name,
                code=code,
                unit_name=_text_attribute(mapper, "name"),
                target=entry_point.value,
                distribution=distribution,
                version=version,
                problem=problem or None,
            )
        )
    result.installed.sort(key=lambda unit: unit.name)
    return result


def installed_units() -> list[InstalledUnit]:
    """Every installed unit plugin, usable or not, by name: what ``moodle-bridge plugins`` shows.

    Each row gives the entry-point name, the unit code and name, the ``module:Class`` target,
    the distribution that installed it and its version, and why it was skipped if it was.
    """
    return discover_units().installed
