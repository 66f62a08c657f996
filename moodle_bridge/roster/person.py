"""The people of a roster, as the rest of the bridge sees them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict

#: Person attribute -> Moodle custom profile field short name, unless the settings say otherwise.
DEFAULT_PROFILE_FIELDS: Mapping[str, str] = MappingProxyType(
    {"unit": "unit", "satker": "satker", "jabatan": "jabatan", "golongan": "golongan"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Person:
    """One ASN as the roster describes them, validated and normalised.

    A slotted dataclass, not a model: a ministry roster holds 233,000 of them, and the
    validation happened in the reader already. ``dataclasses.replace`` makes a changed copy.

    ``nip`` is the 18-digit key (Moodle ``idnumber`` and, by default, ``username``).
    ``display_name`` is the name as HR writes it, titles included; ``firstname`` and
    ``lastname`` are what Moodle gets. ``unit`` is the Eselon I code (``PENDIS``...).
    """

    nip: str
    display_name: str
    firstname: str
    lastname: str
    email: str | None = None
    unit: str
    satker: str = ""
    jabatan: str = ""
    golongan: str = ""
    #: False when the status says the person is not serving (``PENSIUN``, ``CLTN``...) or
    #: left this unit (then :attr:`left_unit` is True too).
    active: bool = True
    #: The status says the person left *this unit*, not the ministry (``MUTASI KELUAR``,
    #: ``PINDAH``): the sync treats them as absent from the unit (the grace period applies),
    #: not as inactive. ``active`` is then False.
    left_unit: bool = False
    #: The status as HR wrote it, normalised (``AKTIF``, ``CUTI TAHUNAN``...), for reports.
    status: str = "AKTIF"
    #: Where the person came from, for error reports: file name and 1-based row number.
    source: str = ""
    row: int = 0
    #: Non-fatal findings about the row (e.g. a PPPK-shaped NIP), in words a clerk understands.
    warnings: tuple[str, ...] = ()


class RowError(BaseModel):
    """A row that could not become a :class:`Person` (or a row-level warning).

    ``nip`` is set whenever the row's NIP cell could be read, whatever else is wrong with the
    row: the sync then leaves that person's account exactly as it is. ``reason`` says what is
    wrong and ``fix`` (when the reader knows) how HR corrects it, both in the language of the
    run; ``value`` is the offending cell as the file holds it, for the HR error file.
    """

    model_config = ConfigDict(frozen=True)

    source: str
    row: int
    column: str | None
    reason: str
    #: The NIP if one could be read, for matching errors to people (masked in logs).
    nip: str | None = None
    #: The cell's value as written (may name a person: never logged unmasked).
    value: str = ""
    #: How to correct the row, in a short sentence ("" when the reader does not say).
    fix: str = ""


class UnknownStatus(RowError):
    """A row set aside, not refused: its status is in no status table.

    Readers put it among a roster's *warnings* (never its errors) and keep the person's
    account exactly as it is: an unknown status is never a reason to suspend anyone.
    ``status`` is the status as the reader normalised it.
    """

    status: str


def describe_errors(errors: Sequence[RowError], limit: int = 5) -> str:
    """The first ``limit`` errors as ``file row N column C: reason``, joined by ``; ``, and how
    many more there are: the body of a message about a broken file."""
    shown = "; ".join(
        f"{e.source} row {e.row}" + (f" column {e.column}" if e.column else "") + f": {e.reason}"
        for e in errors[:limit]
    )
    more = f" (and {len(errors) - limit} more)" if len(errors) > limit else ""
    return shown + more
