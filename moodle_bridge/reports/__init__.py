"""Reports from the completion ledger: the per-person JP table, the SIASN training-history
export and the unit dashboard.

:func:`build_reports` writes every file of one unit and year into a folder and returns a
:class:`ReportFiles` naming them; :func:`reports_from_store` does the same from the state
database alone. What a report is built from besides the people and the ledger is one
:class:`ReportInputs`. Nothing here prints or logs (the files hold NIPs and names: that is
their purpose, and why they are ``0600``).

Files, for unit ``U`` and year ``Y`` (``U`` is ``ALL`` for everyone)::

    U-Y-pegawai.csv / .xlsx     NIP, Nama, Unit, Satker, JP Y, Memenuhi 20 JP (Ya/Tidak),
                                Pelatihan selesai, Kesenjangan terbuka (empty when unknown)
    U-Y-siasn.csv / .xlsx       NIP, Nama, Nama Pelatihan, Jenis Kompetensi, Tanggal Mulai,
                                Tanggal Selesai, JP, Penyelenggara
    U-Y-dasbor.html             the dashboard: aggregates only, no NIP, no name

The SIASN export (riwayat pelatihan), ready to upload:

* **Dates** are ISO dates (``YYYY-MM-DD``) in the CSV and date cells (formatted
  ``yyyy-mm-dd``) in the XLSX. Every training has both: it ends on Moodle's completion day and
  starts on the ledger entry's ``timestarted`` (the Moodle enrolment's start) when set, else
  the enrolment window's start (the enrolment's ``timestart``, else the catalogue window the
  completion falls in), else the day the bridge made the enrolment, else the completion day.
* **Nama Pelatihan** is the course's full name (``Store.course_names()``), else its short name.
* **Nama** is the name as the roster writes it (``accounts.display_name``, titles included).
  When no sync recorded it, the name Moodle was given (first name and last name) stands in,
  except that a one-word name, which Moodle holds as first name = last name (or a last name
  that is only a marker such as ``.``), is written once: never "Darmaji Darmaji".

See :mod:`.ledger` for how people, years and JP are counted, :mod:`.exports` for the CSV and
XLSX format (UTF-8 with BOM, formula escaping, file modes) and :mod:`.dashboard` for the page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from moodle_bridge.reports.dashboard import (
    CHART_IDS,
    DashboardStats,
    dashboard_html,
    dashboard_stats,
)
from moodle_bridge.reports.exports import (
    Cell,
    escape_cell,
    private_dir,
    write_csv,
    write_private,
    write_xlsx,
)
from moodle_bridge.reports.ledger import (
    ALL_UNITS,
    DEFAULT_JP_MINIMUM,
    DEFAULT_ORGANISER,
    GapCounts,
    Ledger,
    PersonYear,
    ReportInputs,
    TrainingRow,
    build_ledger,
    gap_counts,
    year_bounds,
)
from moodle_bridge.roster.person import Person
from moodle_bridge.store import LedgerEntry, Store
from moodle_bridge.sync.desired import PROFILE_PREFIX

__all__ = [
    "ALL_UNITS",
    "CHART_IDS",
    "DEFAULT_JP_MINIMUM",
    "DEFAULT_ORGANISER",
    "DashboardStats",
    "GapCounts",
    "Ledger",
    "PersonYear",
    "ReportFiles",
    "ReportInputs",
    "TrainingRow",
    "build_ledger",
    "build_reports",
    "dashboard_html",
    "dashboard_stats",
    "escape_cell",
    "gap_counts",
    "people_from_store",
    "people_header",
    "people_rows",
    "reports_from_store",
    "siasn_header",
    "siasn_rows",
    "year_bounds",
]


def people_from_store(store: Store, unit: str) -> list[Person]:
    """The people behind the bridge's accounts, as last applied (names, satker, jabatan...):
    reports need no roster file. Names follow the module's rule."""
    selected = None if unit == ALL_UNITS else unit
    accounts = store.accounts(selected)
    records = store.applied_records(accounts)
    names = store.display_names(selected)
    people = []
    for nip, account in sorted(accounts.items()):
        record = {k: str(v) for k, v in records.get(nip, {}).items()}
        first, last = record.get("firstname", ""), record.get("lastname", "")
        people.append(
            Person(
                nip=nip,
                display_name=names.get(nip) or _full_name(first, last) or nip,
                firstname=first,
                lastname=last,
                email=record.get("email"),
                unit=account.unit,
                satker=record.get(PROFILE_PREFIX + "satker", ""),
                jabatan=record.get(PROFILE_PREFIX + "jabatan", ""),
                golongan=record.get(PROFILE_PREFIX + "golongan", ""),
                active=not account.suspended,
            )
        )
    return people


def _full_name(first: str, last: str) -> str:
    """The name Moodle was given, written once: a one-word name is stored as first name = last
    name (or with a marker without letters as the last name)."""
    first, last = first.strip(), last.strip()
    if last == first or not any(ch.isalnum() for ch in last):
        return first
    return f"{first} {last}".strip()


def reports_from_store(store: Store, inputs: ReportInputs, out_dir: Path) -> ReportFiles:
    """:func:`build_reports` from the state alone: the people as last applied, the year's
    ledger, and (unless ``inputs`` gives them) the enrolments and course names the bridge
    recorded."""
    since, until = year_bounds(inputs.year)
    if inputs.enrolments is None:
        inputs = replace(inputs, enrolments=store.enrolments())
    if inputs.course_names is None:
        inputs = replace(inputs, course_names=store.course_names())
    return build_reports(
        people_from_store(store, inputs.unit),
        store.completions(since=since, until=until),
        inputs,
        out_dir,
    )


@dataclass(frozen=True, slots=True)
class ReportFiles:
    """The files :func:`build_reports` wrote (all mode 0600)."""

    people_csv: Path
    people_xlsx: Path
    siasn_csv: Path
    siasn_xlsx: Path
    dashboard_html: Path
    #: People in the report and trainings in the SIASN export, for a summary line.
    people: int
    trainings: int

    @property
    def paths(self) -> tuple[Path, ...]:
        """Every file, in the order above."""
        return (
            self.people_csv,
            self.people_xlsx,
            self.siasn_csv,
            self.siasn_xlsx,
            self.dashboard_html,
        )


def people_header(year: int, jp_minimum: int = DEFAULT_JP_MINIMUM) -> tuple[str, ...]:
    """The columns of the per-person table."""
    return (
        "NIP",
        "Nama",
        "Unit",
        "Satker",
        f"JP {year}",
        f"Memenuhi {jp_minimum} JP",
        "Pelatihan selesai",
        "Kesenjangan terbuka",
    )


def people_rows(ledger: Ledger) -> list[tuple[Cell, ...]]:
    """The per-person table's rows, in roster order."""
    return [
        (
            p.nip,
            p.name,
            p.unit,
            p.satker,
            p.jp,
            "Ya" if p.meets_minimum else "Tidak",
            p.trainings,
            p.open_gaps,
        )
        for p in ledger.people
    ]


def siasn_header() -> tuple[str, ...]:
    """The columns of the SIASN training-history export."""
    return (
        "NIP",
        "Nama",
        "Nama Pelatihan",
        "Jenis Kompetensi",
        "Tanggal Mulai",
        "Tanggal Selesai",
        "JP",
        "Penyelenggara",
    )


def siasn_rows(ledger: Ledger) -> list[tuple[Cell, ...]]:
    """One row per training completed in the year, by completion date then NIP."""
    return [
        (
            t.nip,
            t.name,
            t.training,
            t.kind,
            t.start,
            t.end,
            t.jp,
            t.organiser,
        )
        for t in ledger.trainings
    ]


_PEOPLE_WIDTHS = (21, 34, 14, 40, 9, 12, 12, 14)
_SIASN_WIDTHS = (21, 34, 44, 17, 14, 14, 7, 26)
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def build_reports(
    people: Sequence[Person],
    completions: Sequence[LedgerEntry],
    inputs: ReportInputs,
    out_dir: Path,
) -> ReportFiles:
    """Write the reports of ``inputs.unit`` (``"ALL"``: everyone) for ``inputs.year`` into
    ``out_dir``.

    ``people``: the roster (any units; filtered here). ``completions``: the ledger
    (``Store.completions()``; passing ``since, until = year_bounds(year)`` saves memory, other
    years are left out anyway). ``out_dir`` is created 0700 when missing; every file is written
    0600, atomically, replacing an older report of the same unit and year. Raises ``OSError``
    when a file cannot be written.
    """
    ledger = build_ledger(people, completions, inputs)
    folder = private_dir(Path(out_dir))
    stem = f"{_UNSAFE_NAME.sub('_', inputs.unit) or 'unit'}-{inputs.year}"
    people_head = people_header(inputs.year, inputs.jp_minimum)
    people_table = people_rows(ledger)
    siasn_table = siasn_rows(ledger)
    delimiter = inputs.csv_delimiter
    page = dashboard_html(
        ledger,
        mappings=inputs.mappings,
        open_by_competency=inputs.gaps.per_competency if inputs.gaps is not None else None,
        organiser=inputs.organiser,
        generated=inputs.generated,
    )
    return ReportFiles(
        people_csv=write_csv(
            folder / f"{stem}-pegawai.csv", people_head, people_table, delimiter=delimiter
        ),
        people_xlsx=write_xlsx(
            folder / f"{stem}-pegawai.xlsx",
            people_head,
            people_table,
            sheet=f"JP {inputs.year}",
            widths=_PEOPLE_WIDTHS,
        ),
        siasn_csv=write_csv(
            folder / f"{stem}-siasn.csv", siasn_header(), siasn_table, delimiter=delimiter
        ),
        siasn_xlsx=write_xlsx(
            folder / f"{stem}-siasn.xlsx",
            siasn_header(),
            siasn_table,
            sheet="Riwayat Pelatihan",
            widths=_SIASN_WIDTHS,
        ),
        dashboard_html=write_private(folder / f"{stem}-dasbor.html", page.encode("utf-8")),
        people=len(ledger.people),
        trainings=len(ledger.trainings),
    )
