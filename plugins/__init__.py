"""The built-in unit plugins of moodle_bridge.

Each is registered in the ``moodle_bridge.units`` entry-point group by moodle-bridge's own
``pyproject.toml``, exactly as a unit's own package registers its plugin:

* ``generic`` (:mod:`plugins.generic`): the generic roster format, people of any unit;
* ``pendis`` (:mod:`plugins.pendis`): Ditjen Pendidikan Islam's SIMPEG-style CSV export;
* ``bimas_islam`` (:mod:`plugins.bimas_islam`): Ditjen Bimas Islam's XLSX export.

``samples/`` holds a synthetic sample file for each (written by ``samples/make_samples.py``),
and ``template/`` a plugin package to copy when writing a unit's own plugin.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["ESELON_I_UNITS"]

#: Eselon I units of Kemenag by the codes the built-in plugins use, for cohort names. Units
#: change (BPJPH left in 2024, Ditjen PHU in 2025): this is a table of names, not a list of
#: the units the bridge accepts.
ESELON_I_UNITS: Mapping[str, str] = MappingProxyType(
    {
        "SETJEN": "Sekretariat Jenderal",
        "ITJEN": "Inspektorat Jenderal",
        "PENDIS": "Direktorat Jenderal Pendidikan Islam",
        "BIMAS_ISLAM": "Direktorat Jenderal Bimbingan Masyarakat Islam",
        "BIMAS_KRISTEN": "Direktorat Jenderal Bimbingan Masyarakat Kristen",
        "BIMAS_KATOLIK": "Direktorat Jenderal Bimbingan Masyarakat Katolik",
        "BIMAS_HINDU": "Direktorat Jenderal Bimbingan Masyarakat Hindu",
        "BIMAS_BUDDHA": "Direktorat Jenderal Bimbingan Masyarakat Buddha",
        "BMBPSDM": "Badan Moderasi Beragama dan Pengembangan Sumber Daya Manusia",
    }
)
