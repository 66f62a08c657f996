"""The ``generic`` unit plugin: the generic roster format, with people of any unit.

The columns are those of :mod:`moodle_bridge.roster.generic` (``nip``, ``nama``, ``unit``
required; ``email``, ``satker``, ``jabatan``, ``golongan``, ``status`` optional), and each
person's unit comes from the ``unit`` column, and so do the status overrides that apply to
the row (``mappings/statuses/<UNIT>.csv``). Assessments use the generic layout too.
"""

from __future__ import annotations

from pathlib import Path

from moodle_bridge.roster.generic import RosterResult, parse_generic_row, read_generic_roster
from moodle_bridge.roster.person import Person, RowError
from moodle_bridge.roster.sources import SourceRow
from moodle_bridge.units import CohortSpec, UnitMapper, unit_cohort
from plugins import ESELON_I_UNITS

__all__ = ["GenericMapper"]


class GenericMapper(UnitMapper):
    """Reads the generic format; every person is in the cohort of the unit their row names."""

    code = "GENERIC"
    name = "Generic roster format (any Eselon I unit)"
    any_unit = True

    def read_roster(self, path: Path) -> RosterResult:
        """Read the file with :func:`~moodle_bridge.roster.generic.read_generic_roster`."""
        return read_generic_roster(
            path, mononym=self.name_rule, marker=self.name_marker, statuses=self.statuses
        )

    def map_row(self, source_name: str, row: SourceRow) -> Person | RowError:
        """Map one generic row (see :func:`~moodle_bridge.roster.generic.parse_generic_row`)."""
        return parse_generic_row(
            source_name,
            row,
            mononym=self.name_rule,
            marker=self.name_marker,
            statuses=self.statuses,
        )

    def cohorts_for(self, person: Person) -> list[CohortSpec]:
        """The cohort of the person's unit, named after the unit where the name is known."""
        return [unit_cohort(person.unit, ESELON_I_UNITS.get(person.unit, person.unit))]
