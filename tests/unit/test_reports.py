"""The reports: JP ledger, per-person table, SIASN export, formula escaping, file modes, HTML."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import sqlite3
import stat
from pathlib import Path

import pytest
from openpyxl import load_workbook

from moodle_bridge.mappings import CompetencyDefinition, CourseOffer, Mappings
from moodle_bridge.reports import (
    CHART_IDS,
    GapCounts,
    ReportFiles,
    ReportInputs,
    build_ledger,
    build_reports,
    dashboard_html,
    escape_cell,
    people_from_store,
    reports_from_store,
    year_bounds,
)
from moodle_bridge.reports.exports import csv_bytes, xlsx_bytes
from moodle_bridge.reports.ledger import WIB
from moodle_bridge.roster.person import Person
from moodle_bridge.store import EnrolmentRow, LedgerEntry, NewAccount, Store

NIP_A = "197501012000031001"
NIP_B = "198002022005012002"
NIP_C = "198503032010011003"  # BIMAS_ISLAM
NIP_X = "199001012015031004"  # not in the roster
PAYLOADS = ('=HYPERLINK("http://x","y")', "+1", "-2", "@SUM(A1)", "\tTab", "\rCR", "\nLF")
PAYLOAD_NIPS = [f"19910101201503{i:04d}" for i in range(len(PAYLOADS))]


def at(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> int:
    """Unix time of a Jakarta wall-clock time."""
    return int(dt.datetime(year, month, day, hour, minute, tzinfo=WIB).timestamp())


def person(nip: str, name: str, unit: str = "PENDIS", satker: str = "MAN 1 Kota Malang") -> Person:
    return Person(
        nip=nip, display_name=name, firstname=name, lastname=name, unit=unit, satker=satker
    )


PEOPLE = [
    person(NIP_A, "Dr. H. Ahmad Fauzi, M.Pd.I."),
    person(NIP_B, "Siti Nur'aini", satker="-Kankemenag Kota Batu"),
    person(NIP_C, "I Gusti Ngurah Rai", unit="BIMAS_ISLAM", satker="Kanwil Bali"),
    *(person(n, p) for n, p in zip(PAYLOAD_NIPS, PAYLOADS, strict=True)),
]

COMPLETIONS = [
    # A: a PENDIS course in March (20 JP) ...
    LedgerEntry(NIP_A, "PENDIS-X", at(2025, 3, 10), 20, "TEK-A", 2),
    # ... one the evening of 31 December 2024 in Jakarta (already 2024-12-31 16:30 UTC): excluded
    LedgerEntry(NIP_A, "PENDIS-Y", at(2024, 12, 31, 23, 30), 12, "TEK-A", 3),
    # ... and a BIMAS_ISLAM course half an hour into 2025 in Jakarta (still 2024 in UTC): counted
    LedgerEntry(NIP_A, "BIMAS-Z", at(2025, 1, 1, 0, 30), 8, "SOS-C", 2),
    # B: 12 JP in 2025 (below 20), and 30 more in 2026 that do not count for 2025
    LedgerEntry(NIP_B, "PENDIS-X", at(2025, 3, 12), 12, "TEK-A", 2),
    LedgerEntry(NIP_B, "BIMAS-Z", at(2026, 1, 5), 30, "SOS-C", 2),
    # C (another unit) and X (not in the roster)
    LedgerEntry(NIP_C, "BIMAS-Z", at(2025, 6, 1), 24, "SOS-C", 2),
    LedgerEntry(NIP_X, "PENDIS-X", at(2025, 6, 1), 20, "TEK-A", 2),
    # one payload person completes too, so the SIASN export carries a payload name
    LedgerEntry(PAYLOAD_NIPS[0], "PENDIS-X", at(2025, 5, 2), 20, "TEK-A", 2),
]

MAPPINGS = {
    "PENDIS": Mappings(
        unit="PENDIS",
        competencies={"TEK-A": CompetencyDefinition("TEK-A", "Alpha", "teknis", 1)},
        standards={},
        catalogue=(
            CourseOffer("TEK-A", 1, 2, "PENDIS-X", 20, dt.date(2025, 2, 1), dt.date(2025, 4, 30)),
            CourseOffer("TEK-A", 1, 2, "PENDIS-X", 20, dt.date(2025, 5, 1), dt.date(2025, 12, 31)),
        ),
    ),
    "BIMAS_ISLAM": Mappings(
        unit="BIMAS_ISLAM",
        competencies={
            "SOS-C": CompetencyDefinition("SOS-C", "Perekat Bangsa", "sosial_kultural", 1)
        },
        standards={},
        catalogue=(CourseOffer("SOS-C", 1, 2, "BIMAS-Z", 8),),
    ),
}

ENROLMENTS = {
    (NIP_A, "PENDIS-X"): EnrolmentRow(NIP_A, "PENDIS-X", False, at(2025, 2, 15, 8)),
    (NIP_A, "MAN-Q"): EnrolmentRow(NIP_A, "MAN-Q", False),
    (NIP_B, "PENDIS-X"): EnrolmentRow(NIP_B, "PENDIS-X", False),
}
NAMES = {"PENDIS-X": "Pembelajaran Alpha di Madrasah"}


def build(tmp_path: Path, unit: str = "PENDIS") -> ReportFiles:
    inputs = ReportInputs(
        unit=unit,
        year=2025,
        mappings=MAPPINGS,
        gaps=GapCounts({NIP_A: 1, NIP_B: 3}, {"TEK-A": 2}),
        enrolments=ENROLMENTS,
        course_names=NAMES,
        generated=dt.datetime(2025, 12, 1, tzinfo=WIB),
    )
    return build_reports(PEOPLE, COMPLETIONS, inputs, tmp_path / "out")


def read_csv(path: Path) -> list[list[str]]:
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


# --- the ledger ---------------------------------------------------------------------------------
def test_year_bounds_are_jakarta_midnights() -> None:
    start, end = year_bounds(2025)
    assert dt.datetime.fromtimestamp(start, dt.UTC) == dt.datetime(2024, 12, 31, 17, tzinfo=dt.UTC)
    assert end - start == 365 * 86400


def test_jp_totals_flags_and_units() -> None:
    pendis = ReportInputs(unit="PENDIS", year=2025, mappings=MAPPINGS, enrolments=ENROLMENTS)
    ledger = build_ledger(PEOPLE, COMPLETIONS, pendis)
    rows = {p.nip: p for p in ledger.people}
    assert NIP_C not in rows  # another unit
    assert len(rows) == 2 + len(PAYLOADS)
    # A: 20 (March) + 8 (1 Jan, 00:30 WIB, a BIMAS_ISLAM course); the 31 Dec 23:30 one is 2024
    assert (rows[NIP_A].jp, rows[NIP_A].trainings, rows[NIP_A].meets_minimum) == (28, 2, True)
    assert (rows[NIP_B].jp, rows[NIP_B].trainings, rows[NIP_B].meets_minimum) == (12, 1, False)
    assert rows[NIP_A].enrolled == 2
    assert rows[NIP_B].enrolled == 1
    assert rows[PAYLOAD_NIPS[1]].enrolled == 0
    assert rows[PAYLOAD_NIPS[1]].open_gaps is None  # no gap counts given
    assert ledger.meeting_minimum == 2  # A and the first payload person (20 JP exactly)
    assert NIP_X not in {t.nip for t in ledger.trainings}

    everyone = build_ledger(PEOPLE, COMPLETIONS, ReportInputs(unit="ALL", year=2025))
    assert {p.nip: p.jp for p in everyone.people}[NIP_C] == 24
    assert len(everyone.trainings) == 5

    next_year = build_ledger(PEOPLE, COMPLETIONS, ReportInputs(unit="PENDIS", year=2026))
    assert {p.nip: p.jp for p in next_year.people}[NIP_B] == 30


def test_siasn_rows(tmp_path: Path) -> None:
    files = build(tmp_path)
    rows = read_csv(files.siasn_csv)
    assert rows[0] == [
        "NIP",
        "Nama",
        "Nama Pelatihan",
        "Jenis Kompetensi",
        "Tanggal Mulai",
        "Tanggal Selesai",
        "JP",
        "Penyelenggara",
    ]
    org = "Kementerian Agama RI"
    assert rows[1:] == [
        # no enrolment, no window: starts on the completion day; kind from BIMAS_ISLAM
        [NIP_A, "Dr. H. Ahmad Fauzi, M.Pd.I.", "BIMAS-Z", "sosial_kultural", "2025-01-01",
         "2025-01-01", "8", org],
        # the enrolment's start
        [NIP_A, "Dr. H. Ahmad Fauzi, M.Pd.I.", NAMES["PENDIS-X"], "teknis", "2025-02-15",
         "2025-03-10", "20", org],
        # enrolled, start unknown: the window the completion falls in
        [NIP_B, "Siti Nur'aini", NAMES["PENDIS-X"], "teknis", "2025-02-01", "2025-03-12",
         "12", org],
        # not enrolled by the bridge: the second window
        [PAYLOAD_NIPS[0], "'" + PAYLOADS[0], NAMES["PENDIS-X"], "teknis", "2025-05-01",
         "2025-05-02", "20", org],
    ]  # fmt: skip
    assert files.trainings == 4
    book = load_workbook(files.siasn_xlsx)
    sheet = book.active
    assert sheet is not None
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[2] == [
        NIP_A, "Dr. H. Ahmad Fauzi, M.Pd.I.", NAMES["PENDIS-X"], "teknis",
        dt.datetime(2025, 2, 15), dt.datetime(2025, 3, 10), 20, org,
    ]  # fmt: skip
    assert sheet["A2"].data_type == "s"  # the NIP is text, never 1.97501E+17


def test_people_table(tmp_path: Path) -> None:
    files = build(tmp_path)
    rows = read_csv(files.people_csv)
    assert rows[0] == [
        "NIP",
        "Nama",
        "Unit",
        "Satker",
        "JP 2025",
        "Memenuhi 20 JP",
        "Pelatihan selesai",
        "Kesenjangan terbuka",
    ]
    by_nip = {r[0]: r for r in rows[1:]}
    assert by_nip[NIP_A] == [
        NIP_A, "Dr. H. Ahmad Fauzi, M.Pd.I.", "PENDIS", "MAN 1 Kota Malang", "28", "Ya", "2", "1"
    ]  # fmt: skip
    assert by_nip[NIP_B][3:] == ["'-Kankemenag Kota Batu", "12", "Tidak", "1", "3"]
    assert by_nip[PAYLOAD_NIPS[1]][4:] == ["0", "Tidak", "0", "0"]
    assert NIP_C not in by_nip
    assert files.people == 2 + len(PAYLOADS)


# --- formula injection --------------------------------------------------------------------------
@pytest.mark.parametrize("payload", [*PAYLOADS, "=1+1", "-", "@"])
def test_escape_cell_escapes_formula_starts(payload: str) -> None:
    assert escape_cell(payload) == "'" + payload


@pytest.mark.parametrize("text", ["Ahmad", "", " =x", "'=x", "1975", "Nur'aini", "a=b"])
def test_escape_cell_leaves_other_text(text: str) -> None:
    assert escape_cell(text) == text


def test_payloads_are_escaped_in_csv_and_xlsx(tmp_path: Path) -> None:
    files = build(tmp_path)
    names = {r[0]: r[1] for r in read_csv(files.people_csv)[1:]}
    for nip, payload in zip(PAYLOAD_NIPS, PAYLOADS, strict=True):
        assert names[nip] == "'" + payload
    for path in (files.people_xlsx, files.siasn_xlsx):
        sheet = load_workbook(path).active
        assert sheet is not None
        for row in sheet.iter_rows(min_row=2):
            for cell in row:
                assert cell.data_type != "f"
                if isinstance(cell.value, str) and cell.value[:1] in "=+-@\t\r\n":
                    pytest.fail(f"unescaped cell {cell.coordinate}: {cell.value!r}")
    people = load_workbook(files.people_xlsx).active
    assert people is not None
    found = {row[0].value: row[1] for row in people.iter_rows(min_row=2)}
    for nip, payload in zip(PAYLOAD_NIPS, PAYLOADS, strict=True):
        # XML parsers read a CR in text as LF; the escape is what matters
        assert found[nip].value == ("'" + payload).replace("\r", "\n")
        assert found[nip].data_type == "s"


def test_low_level_writers_escape_headers_and_drop_xml_control_characters() -> None:
    data = csv_bytes(["=H"], [["+x", 3, None]], delimiter=";")
    assert data.decode("utf-8-sig") == "'=H\r\n'+x;3;\r\n"
    book = load_workbook(io.BytesIO(xlsx_bytes(["h"], [["a\x00b\x1fc"]])))
    sheet = book.active
    assert sheet is not None
    assert sheet["A2"].value == "a\ufffdb\ufffdc"


# --- files --------------------------------------------------------------------------------------
def test_files_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        out = tmp_path / "out"
        out.mkdir()
        stale = out / "PENDIS-2025-pegawai.csv"
        stale.write_text("old")
        stale.chmod(0o644)
        files = build(tmp_path)
        nested = build_reports(
            PEOPLE,
            COMPLETIONS,
            ReportInputs(unit="PENDIS", year=2025),
            tmp_path / "new" / "reports",
        )
    finally:
        os.umask(old)
    assert files.people_csv == stale
    for path in (*files.paths, *nested.paths):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((tmp_path / "new" / "reports").stat().st_mode) == 0o700
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in files.paths)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="year"):
        ReportInputs(unit="PENDIS", year=1900)
    with pytest.raises(ValueError, match="minimum"):
        ReportInputs(unit="PENDIS", year=2025, jp_minimum=0)


# --- the dashboard ------------------------------------------------------------------------------
def test_dashboard_is_self_contained_and_has_every_chart(tmp_path: Path) -> None:
    files = build(tmp_path)
    page = files.dashboard_html.read_text(encoding="utf-8")
    assert "http://" not in page
    assert "https://" not in page
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()
    assert not re.search(r"\b(src|href)\s*=\s*[\"'](?!#)", page)  # only in-page #references
    assert "default-src 'none'" in page
    for chart in CHART_IDS:
        match = re.search(rf'<figure class="chart" id="{chart}"[^>]*>\s*<svg\b', page)
        assert match, chart
    assert page.count("<svg") == len(CHART_IDS)
    # ids are unique across the inlined charts
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    # aggregates only: no NIP, no name
    for p in PEOPLE:
        assert p.nip not in page
        assert p.display_name not in page
    assert "Memenuhi 20 JP" in page
    assert "Sebaran JP per pegawai, 2025" in page
    assert "Pelatihan selesai per bulan, 2025" in page


def test_dashboard_of_an_empty_unit() -> None:
    ledger = build_ledger([], [], ReportInputs(unit="SETJEN", year=2025))
    page = dashboard_html(ledger, generated=dt.datetime(2025, 1, 1, tzinfo=WIB))
    assert page.count("<svg") == len(CHART_IDS)
    assert "Belum ada data" in page


# --- the SIASN export: dates, starts, names ------------------------------------------------------
def test_every_siasn_training_has_a_start_and_the_xlsx_holds_date_cells(tmp_path: Path) -> None:
    files = build(tmp_path)
    sheet = load_workbook(files.siasn_xlsx).active
    assert sheet is not None
    header = [c.value for c in sheet[1]]
    start_col = header.index("Tanggal Mulai") + 1
    end_col = header.index("Tanggal Selesai") + 1
    rows = list(sheet.iter_rows(min_row=2))
    assert len(rows) == files.trainings
    for row in rows:
        start, end = row[start_col - 1], row[end_col - 1]
        for cell in (start, end):
            # a day number with a date format (openpyxl reads it back as a datetime)
            assert cell.is_date, cell.coordinate
            assert cell.number_format == "yyyy-mm-dd"
        assert isinstance(start.value, dt.datetime)
        assert isinstance(end.value, dt.datetime)
        assert start.value <= end.value
    for line in read_csv(files.siasn_csv)[1:]:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", line[4]), line
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", line[5]), line


def test_the_training_start_follows_the_rule_in_order() -> None:
    done = at(2025, 8, 20)
    window = MAPPINGS["PENDIS"].catalogue[1]  # 2025-05-01..2025-12-31

    def start(entry: LedgerEntry, enrolment: EnrolmentRow | None = None) -> dt.date:
        known = {(entry.nip, entry.course): enrolment} if enrolment is not None else {}
        inputs = ReportInputs(unit="PENDIS", year=2025, mappings=MAPPINGS, enrolments=known)
        (row,) = build_ledger(PEOPLE, [entry], inputs).trainings
        assert row.end == dt.date(2025, 8, 20)
        return row.start

    course = window.course_shortname
    enrolled = EnrolmentRow(NIP_A, course, False, at(2025, 5, 3), 0, at(2025, 4, 28))
    # 1. the ledger's timestarted, before anything the bridge knows
    timestarted = LedgerEntry(NIP_A, course, done, 20, "TEK-A", 2, timestarted=at(2025, 6, 7))
    assert start(timestarted, enrolled) == dt.date(2025, 6, 7)
    # 2. the enrolment's window start, else the catalogue window of the completion
    plain = LedgerEntry(NIP_A, course, done, 20, "TEK-A", 2)
    assert start(plain, enrolled) == dt.date(2025, 5, 3)
    assert start(plain, enrolled._replace(timestart=0)) == dt.date(2025, 5, 1)
    # 3. when the bridge made the enrolment (a course without windows)
    elsewhere = LedgerEntry(NIP_A, "NO-WINDOW", done, 20, "TEK-A", 2)
    made = EnrolmentRow(NIP_A, "NO-WINDOW", False, 0, 0, at(2025, 7, 1))
    assert start(elsewhere, made) == dt.date(2025, 7, 1)
    # 4. nothing known, or only days after the end: the completion day
    assert start(elsewhere) == dt.date(2025, 8, 20)
    late = LedgerEntry(NIP_A, "NO-WINDOW", done, 20, "TEK-A", 2, timestarted=at(2025, 9, 1))
    assert start(late, made._replace(enrolled_at=at(2025, 9, 2))) == dt.date(2025, 8, 20)


def _store_with_people(tmp_path: Path) -> Store:
    store = Store.open(tmp_path / "state" / "state.sqlite3")
    names = {
        NIP_A: ("Darmaji", "Darmaji"),  # a one-word name, repeated by the split rule
        NIP_B: ("Sukarno", "."),  # a one-word name with the marker
        NIP_C: ("Siti", "Aminah"),
        NIP_X: ("Ahmad", "Fauzi"),
    }
    store.record_accounts(
        NewAccount(nip, i, nip, "PENDIS", "h", record={"firstname": f, "lastname": last})
        for i, (nip, (f, last)) in enumerate(names.items(), start=1)
    )
    store.record_courses({"PENDIS-X": 7, "BIMAS-Z": 8})
    store.record_completions(
        [
            LedgerEntry(NIP_A, "PENDIS-X", at(2025, 3, 10), 20, "TEK-A", 2),
            LedgerEntry(NIP_C, "BIMAS-Z", at(2025, 3, 11), 8, "SOS-C", 2),
        ]
    )
    return store


def _sync_recorded(store_path: Path) -> None:
    """What a sync records beside the accounts (the roster's name, the course's full name)."""
    with sqlite3.connect(store_path) as db:
        db.execute(
            "UPDATE accounts SET display_name = 'Dr. H. Ahmad Fauzi, M.Pd.I.' WHERE nip = ?",
            (NIP_X,),
        )
        db.execute(
            "UPDATE courses SET fullname = 'Pembelajaran Alpha di Madrasah' "
            "WHERE shortname = 'PENDIS-X'"
        )


def test_names_from_the_state_are_never_doubled(tmp_path: Path) -> None:
    with _store_with_people(tmp_path) as store:
        _sync_recorded(tmp_path / "state" / "state.sqlite3")
        assert store.display_names() == {NIP_X: "Dr. H. Ahmad Fauzi, M.Pd.I."}
        assert store.display_names("SETJEN") == {}
        names = {p.nip: p.display_name for p in people_from_store(store, "PENDIS")}
    assert names == {
        NIP_A: "Darmaji",
        NIP_B: "Sukarno",
        NIP_C: "Siti Aminah",
        NIP_X: "Dr. H. Ahmad Fauzi, M.Pd.I.",
    }


def test_reports_from_the_state_name_trainings_by_the_full_name(tmp_path: Path) -> None:
    with _store_with_people(tmp_path) as store:
        _sync_recorded(tmp_path / "state" / "state.sqlite3")
        assert store.course_names() == {"PENDIS-X": "Pembelajaran Alpha di Madrasah"}
        inputs = ReportInputs(unit="PENDIS", year=2025, mappings=MAPPINGS)
        files = reports_from_store(store, inputs, tmp_path / "out")
    rows = read_csv(files.siasn_csv)[1:]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (NIP_A, "Darmaji", "Pembelajaran Alpha di Madrasah"),
        (NIP_C, "Siti Aminah", "BIMAS-Z"),  # no full name recorded: the short name
    ]
