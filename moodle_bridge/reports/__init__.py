"""Reports from the completion ledger: the per-person JP table, the SIASN training-history
export and the unit dashboard.

One entry point, :func:`build_reports`, writes every file of one unit and year into a folder
and returns a :class:`ReportFiles` naming them. Nothing here prints or logs (the files hold
NIPs and names: that is their purpose, and why they are ``0600``).

Files, for unit ``U`` and year ``Y`` (``U`` is ``ALL`` for everyone)::

    U-Y-pegawai.csv / .xlsx     NIP, Nama, Unit, Satker, JP Y, Memenuhi 20 JP (Ya/Tidak),
                                Pelatihan selesai, Kesenjangan terbuka (empty when unknown)
    U-Y-siasn.csv / .xlsx       NIP, Nama, Nama Pelatihan, Jenis Kompetensi, Tanggal Mulai,
                                Tanggal Selesai, JP, Penyelenggara (dates YYYY-MM-DD)
    U-Y-dasbor.html             the dashboard: aggregates only, no NIP, no name

See :mod:`.ledger` for how people, years and JP are counted, :mod:`.exports` for the CSV and
XLSX format (UTF-8 with BOM, formula escaping, file modes) and :mod:`.dashboard` for the page.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from moodle_bridge.mappings import Mappings
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
    TrainingRow,
    build_ledger,
    gap_counts,
    year_bounds,
)
from moodle_bridge.roster.person import Person
from moodle_bridge.store import EnrolmentRow, LedgerEntry, Store
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
    "siasn_header",
    "siasn_rows",
    "year_bounds",
]


def people_from_store(store: Store, unit: str) -> list[Person]:
    """The people behind the bridge's accounts, as last applied (names, satker, jabatan...):
    reports need no roster file."""
    accounts = store.accounts(None if unit == ALL_UNITS else unit)
    records = store.applied_records(accounts)
    people = []
    for nip, account in sorted(accounts.items()):
        record = {k: str(v) for k, v in records.get(nip, {}).items()}
        first, last = record.get("firstname", ""), record.get("lastname", "")
        people.append(
            Person(
                nip=nip,
                display_name=f"{first} {last}".strip() or nip,
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
            t.start.isoformat() if t.start is not None else "",
            t.end.isoformat(),
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
    *,
    unit: str,
    year: int,
    out_dir: Path,
    mappings: Mapping[str, Mappings] | None = None,
    open_gaps: Mapping[str, int] | None = None,
    enrolled: Mapping[str, int] | None = None,
    course_names: Mapping[str, str] | None = None,
    organiser: str = DEFAULT_ORGANISER,
    jp_minimum: int = DEFAULT_JP_MINIMUM,
    enrolments: Mapping[tuple[str, str], EnrolmentRow] | None = None,
    open_by_competency: Mapping[str, int] | None = None,
    csv_delimiter: str = ",",
    generated: dt.datetime | None = None,
) -> ReportFiles:
    """Write the reports of ``unit`` (``"ALL"``: everyone) for ``year`` into ``out_dir``.

    ``people``: the roster (any units; filtered here). ``completions``: the ledger
    (``Store.completions()``; passing ``since, until = year_bounds(year)`` saves memory, other
    years are left out anyway). ``mappings``: unit -> Mappings, for competency kinds, names
    and course windows. ``open_gaps``: NIP -> open gaps (``gap_counts(plan).per_person``);
    ``open_by_competency``: competency -> open gaps, which turns the dashboard's competency
    chart into closed vs open. ``enrolled``: NIP -> enrolments; ``enrolments``: the store's
    ``enrolments()``, which gives training start dates (and ``enrolled`` when that is not
    given). ``course_names``: course short name -> full name. ``generated``: the time printed
    on the dashboard (default: now).

    ``out_dir`` is created 0700 when missing; every file is written 0600, atomically,
    replacing an older report of the same unit and year. Raises ``OSError`` when a file
    cannot be written, ``ValueError`` for a year before 1970 or ``jp_minimum`` below 1.
    """
    if year < 1970 or year > 9998:
        msg = f"the year {year} is out of range"
        raise ValueError(msg)
    if jp_minimum < 1:
        msg = f"the JP minimum must be 1 or more, not {jp_minimum}"
        raise ValueError(msg)
    ledger = build_ledger(
        people,
        completions,
        unit=unit,
        year=year,
        mappings=mappings,
        open_gaps=open_gaps,
        enrolled=enrolled,
        enrolments=enrolments,
        course_names=course_names,
        organiser=organiser,
        jp_minimum=jp_minimum,
    )
    folder = private_dir(Path(out_dir))
    stem = f"{_UNSAFE_NAME.sub('_', unit) or 'unit'}-{year}"
    people_head = people_header(year, jp_minimum)
    people_table = people_rows(ledger)
    siasn_table = siasn_rows(ledger)
    files = ReportFiles(
        people_csv=write_csv(
            folder / f"{stem}-pegawai.csv", people_head, people_table, delimiter=csv_delimiter
        ),
        people_xlsx=write_xlsx(
            folder / f"{stem}-pegawai.xlsx",
            people_head,
            people_table,
            sheet=f"JP {year}",
            widths=_PEOPLE_WIDTHS,
        ),
        siasn_csv=write_csv(
            folder / f"{stem}-siasn.csv", siasn_header(), siasn_table, delimiter=csv_delimiter
        ),
        siasn_xlsx=write_xlsx(
            folder / f"{stem}-siasn.xlsx",
            siasn_header(),
            siasn_table,
            sheet="Riwayat Pelatihan",
            widths=_SIASN_WIDTHS,
        ),
        dashboard_html=write_private(
            folder / f"{stem}-dasbor.html",
            dashboard_html(
                ledger,
                mappings=mappings,
                open_by_competency=open_by_competency,
                organiser=organiser,
                generated=generated,
            ).encode("utf-8"),
        ),
        people=len(ledger.people),
        trainings=len(ledger.trainings),
    )
    return files
