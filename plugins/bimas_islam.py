"""The ``bimas_islam`` unit plugin: Ditjen Bimas Islam's XLSX staff export.

One sheet, header on the first row::

    No | NIP Baru | Nama Pegawai | Jenis Kelamin | E-mail | Unit Kerja | Jabatan |
    Gol. Ruang | Status

``Nama Pegawai`` carries the titles inside the name (``Drs. H. Ahmad Fauzi, M.Si.``).
``Status`` (``Aktif``, ``Cuti``, ``Pensiun``, ``Meninggal``...) is read with the status table
(``mappings/statuses.csv``, with ``mappings/statuses/BIMAS_ISLAM.csv`` on top). A NIP cell
that Excel stored as a number has lost its last digits and is refused. Everyone is in unit
``BIMAS_ISLAM``; ``No`` and ``Jenis Kelamin`` are not used.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from moodle_bridge.roster.sources import SourceRow
from moodle_bridge.units import GenericColumnsMapper
from plugins import ESELON_I_UNITS

__all__ = ["BimasIslamMapper"]


class BimasIslamMapper(GenericColumnsMapper):
    """Reads BIMAS_ISLAM's XLSX export; every person is in unit ``BIMAS_ISLAM``."""

    code = "BIMAS_ISLAM"
    name = ESELON_I_UNITS["BIMAS_ISLAM"]
    required_columns = ("nip baru", "nama pegawai")
    column_names: Mapping[str, str] = MappingProxyType(
        {
            "nip": "NIP Baru",
            "nama": "Nama Pegawai",
            "email": "E-mail",
            "satker": "Unit Kerja",
            "jabatan": "Jabatan",
            "golongan": "Gol. Ruang",
            "status": "Status",
        }
    )
    #: Header (lower case) in the export -> generic column.
    _HEADERS: Mapping[str, str] = MappingProxyType(
        {header.lower(): column for column, header in column_names.items()}
    )

    def to_generic(self, row: SourceRow) -> dict[str, str]:
        """The export's columns renamed to the generic ones."""
        return {column: row.values.get(header, "") for header, column in self._HEADERS.items()}
