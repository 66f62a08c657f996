"""The ``pendis`` unit plugin: Ditjen Pendidikan Islam's SIMPEG-style export.

The export is a CSV as Excel writes it in an Indonesian locale (``;``-separated, UTF-8 with a
BOM or Windows-1252) with these headers::

    NIP;Nama Lengkap;Gelar Depan;Gelar Belakang;Email Dinas;Satuan Kerja;Jabatan;
    Pangkat/Golongan;Status Pegawai;TMT Jabatan

Titles come in their own columns and are put back around the name for display
(``Dr. H. Ahmad Fauzi, M.Pd.I.``). ``Pangkat/Golongan`` reads ``Penata Muda Tk. I (III/b)``:
the golongan is the part in brackets. ``Status Pegawai`` (``PNS``, ``CPNS``, ``PPPK``,
``Cuti Tahunan``, ``Pensiun``...) is read with the status table, where
``mappings/statuses/PENDIS.csv`` can override ``mappings/statuses.csv`` for PENDIS alone.
``TMT Jabatan`` (``DD-MM-YYYY``) is only
checked: a date that does not exist is a warning. Everyone is in unit ``PENDIS``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from moodle_bridge.roster.assessment import parse_date
from moodle_bridge.roster.person import Person, RowError
from moodle_bridge.roster.sources import SourceRow
from moodle_bridge.units import GenericColumnsMapper
from plugins import ESELON_I_UNITS

__all__ = ["PendisMapper", "golongan_of", "name_with_titles"]

_BRACKETED = re.compile(r"\(([^()]*)\)\s*$")


def golongan_of(pangkat: str) -> str:
    """``III/b`` from ``Penata Muda Tk. I (III/b)``; the text itself when nothing is bracketed."""
    match = _BRACKETED.search(pangkat)
    return (match.group(1) if match else pangkat).strip()


def name_with_titles(front: str, name: str, back: str) -> str:
    """The name as it is written with its titles: ``Dr. Ahmad Fauzi, M.Pd.I.``; empty if no name."""
    name = name.strip()
    if not name:
        return ""
    written = f"{front.strip()} {name}".strip()
    back = back.strip().lstrip(",").strip()
    return f"{written}, {back}" if back else written


class PendisMapper(GenericColumnsMapper):
    """Reads PENDIS's SIMPEG export; every person is in unit ``PENDIS``."""

    code = "PENDIS"
    name = ESELON_I_UNITS["PENDIS"]
    required_columns = ("nip", "nama lengkap")
    column_names: Mapping[str, str] = MappingProxyType(
        {
            "nip": "NIP",
            "nama": "Nama Lengkap",
            "email": "Email Dinas",
            "satker": "Satuan Kerja",
            "jabatan": "Jabatan",
            "golongan": "Pangkat/Golongan",
            "status": "Status Pegawai",
        }
    )

    def to_generic(self, row: SourceRow) -> dict[str, str]:
        """The SIMPEG columns as generic ones (see the module docstring)."""
        value = row.values.get
        return {
            "nip": value("nip", ""),
            "nama": name_with_titles(
                value("gelar depan", ""), value("nama lengkap", ""), value("gelar belakang", "")
            ),
            "email": value("email dinas", ""),
            "satker": value("satuan kerja", ""),
            "jabatan": value("jabatan", ""),
            "golongan": golongan_of(value("pangkat/golongan", "")),
            "status": value("status pegawai", ""),
        }

    def map_row(self, source_name: str, row: SourceRow) -> Person | RowError:
        """Map the row as generic, then check ``TMT Jabatan`` (a bad date is a warning)."""
        result = super().map_row(source_name, row)
        tmt = row.values.get("tmt jabatan", "").strip()
        if isinstance(result, Person) and tmt and parse_date(tmt) is None:
            warning = (
                f"TMT Jabatan {tmt!r} is not a real date written DD-MM-YYYY; "
                "it was ignored: correct it in SIMPEG"
            )
            return replace(result, warnings=(*result.warnings, warning))
        return result
