"""Example unit plugin: Ditjen Bimas Kristen's staff export (a CSV; the layout is made up).

Headers: ``NIP``, ``Nama``, ``Email``, ``Satker``, ``Jabatan``, ``Golongan``, ``Keterangan``
(the status: ``Aktif``, ``Pensiun``...). Everyone is in unit ``BIMAS_KRISTEN``.

The export carries the generic columns under other headers, so the plugin subclasses
``GenericColumnsMapper`` and only renames them: the NIP, name, email and status rules of the
generic format then apply unchanged. A unit with a layout that is not a renaming subclasses
``UnitMapper`` and implements ``map_row`` itself, passing ``statuses=self.statuses`` to
``parse_generic_row``.

Statuses are not code: what ``Keterangan`` values mean is in the mappings folder
(``mappings/statuses.csv``, and ``mappings/statuses/BIMAS_KRISTEN.csv`` for this unit's own
terms), and the bridge hands the loaded table to the plugin as ``self.statuses``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from moodle_bridge.roster.person import Person
from moodle_bridge.roster.sources import SourceRow
from moodle_bridge.units import CohortSpec, GenericColumnsMapper, unit_cohort

__all__ = ["ContohMapper"]


class ContohMapper(GenericColumnsMapper):
    """Reads the example export; every person is in unit ``BIMAS_KRISTEN``."""

    # Required: the unit code people get, and the unit's name (also the unit cohort's name).
    code = "BIMAS_KRISTEN"
    name = "Direktorat Jenderal Bimbingan Masyarakat Kristen"
    # The lower-cased headers the file must have; a file without them stops the run.
    required_columns = ("nip", "nama")
    # Generic column -> this file's header, so row errors name the column the clerk sees.
    column_names: Mapping[str, str] = MappingProxyType(
        {
            "nip": "NIP",
            "nama": "Nama",
            "email": "Email",
            "satker": "Satker",
            "jabatan": "Jabatan",
            "golongan": "Golongan",
            "status": "Keterangan",
        }
    )
    # Optional policies, shown with non-default values: one-word names get "." as lastname,
    # and the unit's accounts log in through the site's OAuth 2 (e.g. Google Workspace).
    name_rule = "marker"
    auth = "oauth2"

    def to_generic(self, row: SourceRow) -> dict[str, str]:
        """The row's cells under the generic column names."""
        return {
            column: row.values.get(header.lower(), "")
            for column, header in self.column_names.items()
        }

    def cohorts_for(self, person: Person) -> list[CohortSpec]:
        """The unit cohort, and one cohort per satker (``satker:BIMAS_KRISTEN:<satker>``)."""
        cohorts = [unit_cohort(self.code, self.name)]
        if person.satker:
            cohorts.append(
                CohortSpec(idnumber=f"satker:{self.code}:{person.satker}", name=person.satker)
            )
        return cohorts
