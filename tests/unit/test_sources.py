"""CSV and XLSX readers: encodings, delimiters, row numbers, workbooks, and refusals."""

from __future__ import annotations

import tracemalloc
import zipfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moodle_bridge.errors import ConfigError
from moodle_bridge.roster.sources import (
    DuplicateColumn,
    MissingColumn,
    SourceError,
    SourceRow,
    UnsafeWorkbook,
    detect_encoding,
    header,
    read_rows,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "rosters"


def write(tmp_path: Path, data: bytes, name: str = "roster.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def rows(path: Path, **kw: Any) -> list[SourceRow]:
    return list(read_rows(path, **kw))


# --- encodings and delimiters -----------------------------------------------------------------
def test_utf8_comma(tmp_path: Path) -> None:
    path = write(tmp_path, "NIP,Nama\n1,René\n".encode())
    assert detect_encoding(path) == "utf-8"
    assert rows(path) == [SourceRow(2, {"nip": "1", "nama": "René"})]


def test_utf8_with_bom_semicolon(tmp_path: Path) -> None:
    path = write(tmp_path, b"\xef\xbb\xbf" + "nip;nama\r\n1;Nur\u2019aini\r\n".encode())
    assert detect_encoding(path) == "utf-8-sig"
    assert header(path) == ["nip", "nama"]
    assert rows(path) == [SourceRow(2, {"nip": "1", "nama": "Nur\u2019aini"})]


def test_windows_1252_with_accent_and_curly_apostrophe(tmp_path: Path) -> None:
    path = write(tmp_path, "nip;nama\n1;René Nur\u2019aini\n".encode("cp1252"))
    assert b"\xe9" in path.read_bytes()
    assert b"\x92" in path.read_bytes()
    assert detect_encoding(path) == "cp1252"
    assert rows(path) == [SourceRow(2, {"nip": "1", "nama": "René Nur\u2019aini"})]


def test_windows_1252_byte_far_into_the_file_is_found_before_reading(tmp_path: Path) -> None:
    # The first megabyte is ASCII; the only accented byte is on the last line.
    body = b"".join(b"%d;Ahmad\n" % i for i in range(120_000))
    path = write(tmp_path, b"nip;nama\n" + body + "9;Ren\u00e9\n".encode("cp1252"))
    assert path.stat().st_size > 1 << 20
    assert detect_encoding(path) == "cp1252"
    assert rows(path)[-1].values["nama"] == "René"


def test_tab_delimiter(tmp_path: Path) -> None:
    path = write(tmp_path, b"nip\tnama\n1\tSiti, S.Ag.\n")
    assert rows(path) == [SourceRow(2, {"nip": "1", "nama": "Siti, S.Ag."})]


def test_delimiter_comes_from_the_header_not_from_quoted_names(tmp_path: Path) -> None:
    path = write(tmp_path, b'"nip";"nama, lengkap";"unit"\n1;"Siti, S.Ag.";PENDIS\n')
    assert header(path) == ["nip", "nama, lengkap", "unit"]
    assert rows(path)[0].values == {"nip": "1", "nama, lengkap": "Siti, S.Ag.", "unit": "PENDIS"}


def test_utf16_is_refused_with_advice(tmp_path: Path) -> None:
    path = write(tmp_path, "nip,nama\n1,Siti\n".encode("utf-16"))
    with pytest.raises(SourceError, match="UTF-16"):
        rows(path)


def test_bytes_neither_utf8_nor_windows_1252_are_refused_with_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, b"nip;nama\n1;Siti\n2;Bad\x81Byte\n")
    with pytest.raises(SourceError, match=r"line 3 .*0x81"):
        rows(path)


def test_bom_then_invalid_utf8_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, b"\xef\xbb\xbfnip;nama\n1;Ren\xe9\n")
    with pytest.raises(SourceError, match="UTF-8 mark"):
        rows(path)


# --- header and rows --------------------------------------------------------------------------
def test_header_is_lower_cased_stripped_and_collapsed(tmp_path: Path) -> None:
    path = write(tmp_path, b" NIP ;Nama   Lengkap;;UNIT\n")
    assert header(path) == ["nip", "nama lengkap", "", "unit"]


def test_row_numbers_are_spreadsheet_rows(tmp_path: Path) -> None:
    data = (
        b"\n"  # row 1: empty, so the header is row 2
        b"nip,nama,satker\n"
        b"1,Siti,MIN 1\n"  # row 3
        b"\n"  # row 4: empty, counted and skipped
        b" , ,  \n"  # row 5: blanks only, skipped
        b'2,Ahmad,"Kanwil\nGedung B"\n'  # row 6, two physical lines
        b"3,Budi,MAN 2\n"  # row 7
    )
    got = rows(write(tmp_path, data))
    assert [r.row for r in got] == [3, 6, 7]
    assert got[1].values["satker"] == "Kanwil\nGedung B"


def test_short_rows_are_padded_and_long_rows_keep_their_extra_cells(tmp_path: Path) -> None:
    path = write(tmp_path, b"nip,nama,email\n1,Siti\n2,Ahmad,a@x.id,,\n3,Budi, S.Pd.,b@x.id\n")
    got = rows(path)
    assert got[0] == SourceRow(2, {"nip": "1", "nama": "Siti", "email": ""})
    assert got[1].extra == ()  # trailing empty cells are harmless
    assert got[2].values == {"nip": "3", "nama": "Budi", "email": " S.Pd."}
    assert got[2].extra == ("b@x.id",)


def test_columns_limits_the_values(tmp_path: Path) -> None:
    path = write(tmp_path, b"nip,nama,catatan,unit\n1,Siti,x,PENDIS\n")
    assert rows(path, columns=("nip", "unit", "email")) == [
        SourceRow(2, {"nip": "1", "unit": "PENDIS"})
    ]


def test_missing_required_column_names_it(tmp_path: Path) -> None:
    path = write(tmp_path, b"nip,name\n1,Siti\n")
    with pytest.raises(MissingColumn, match="'nama'") as caught:
        rows(path, required=("nip", "nama"))
    assert caught.value.column == "nama"
    assert isinstance(caught.value, ConfigError)


def test_duplicate_wanted_column_is_refused_other_duplicates_keep_the_first(tmp_path: Path) -> None:
    path = write(tmp_path, b"nip,nama,x,x,nama\n1,Siti,a,b,Siti2\n")
    with pytest.raises(DuplicateColumn, match="'nama'"):
        rows(path, columns=("nip", "nama"))
    with pytest.raises(DuplicateColumn, match="'x'"):
        rows(path, columns=("nip", "x"))
    # Without a list of wanted columns nothing is ambiguous for the caller: the first wins.
    assert rows(path)[0].values == {"nip": "1", "nama": "Siti", "x": "a"}


def test_empty_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="empty"):
        rows(write(tmp_path, b""))
    with pytest.raises(SourceError, match="empty"):
        rows(write(tmp_path, b"\n\n , \n"))


def test_header_only_gives_no_rows(tmp_path: Path) -> None:
    assert rows(write(tmp_path, b"nip,nama\n")) == []


def test_missing_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot read"):
        rows(tmp_path / "nope.csv")


def test_unclosed_quote_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, b'nip,nama\n1,"Siti\n' + b"x" * (200 * 1024) + b"\n")
    with pytest.raises(SourceError, match="quotation mark"):
        rows(path)


def test_old_xls_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "roster.xls")
    with pytest.raises(SourceError, match=r"\.xls"):
        rows(path)


def test_rows_are_streamed_not_loaded(tmp_path: Path) -> None:
    line = b"197501012000031001;Dr. H. Ahmad Fauzan, S.Ag.;ahmad@contoh.go.id;PENDIS\n"
    path = write(tmp_path, b"nip;nama;email;unit\n" + line * 50_000)  # ~3.7 MB
    tracemalloc.start()
    try:
        count = sum(1 for _ in read_rows(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 50_000
    assert peak < path.stat().st_size / 4


# --- XLSX -------------------------------------------------------------------------------------
def make_workbook(path: Path, table: list[list[object]], title: str = "Pegawai") -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = title
    for line in table:
        sheet.append(line)
    workbook.save(path)
    return path


def test_xlsx_values_become_text(tmp_path: Path) -> None:
    path = make_workbook(
        tmp_path / "roster.xlsx",
        [
            ["NIP", "Nama", "Lahir", "Jam", "Angka", "Aktif", "Kosong"],
            ["19750101 200003 1 001", "René", date(1975, 1, 1), datetime(2020, 1, 2, 3, 4),
             12.0, True, None],
            [1.97501e17, "Siti", datetime(1980, 2, 3), None, 3.5, False, None],
            [197501012000031001, "Exact", None, None, 7, None, None],
        ],
    )  # fmt: skip
    got = rows(path)
    assert got[0] == SourceRow(
        2,
        {
            "nip": "19750101 200003 1 001",
            "nama": "René",
            "lahir": "1975-01-01",
            "jam": "2020-01-02 03:04:00",
            "angka": "12",
            "aktif": "TRUE",
            "kosong": "",
        },
    )
    # A NIP Excel stored as a float keeps its scientific form, so the NIP check refuses it.
    assert got[1].values["nip"] == "1.97501E+17"
    assert got[1].values["lahir"] == "1980-02-03"
    assert got[1].values["angka"] == "3.5"
    assert got[1].values["aktif"] == "FALSE"
    # Whole numbers that a float cannot hold exactly are never printed as digits.
    nip = got[2].values["nip"]
    assert nip == "197501012000031001" or "E+" in nip


def test_xlsx_row_numbers_include_empty_rows(tmp_path: Path) -> None:
    path = make_workbook(tmp_path / "roster.xlsx", [["nip", "nama"], ["1", "Siti"]])
    workbook = openpyxl.load_workbook(path)
    sheet = workbook.active
    assert sheet is not None
    sheet["A5"] = "2"
    sheet["B5"] = "Ahmad"
    workbook.save(path)
    assert [(r.row, r.values["nama"]) for r in rows(path)] == [(2, "Siti"), (5, "Ahmad")]


def test_xlsx_sheet_by_name(tmp_path: Path) -> None:
    path = make_workbook(tmp_path / "roster.xlsx", [["catatan"], ["lihat sheet 2"]])
    workbook = openpyxl.load_workbook(path)
    second = workbook.create_sheet("Data")
    second.append(["nip", "nama"])
    second.append(["1", "Siti"])
    workbook.save(path)
    assert rows(path, sheet="Data") == [SourceRow(2, {"nip": "1", "nama": "Siti"})]
    assert header(path) == ["catatan"]
    with pytest.raises(SourceError, match="no sheet named 'Nope'"):
        rows(path, sheet="Nope")


def test_xlsx_missing_column(tmp_path: Path) -> None:
    path = make_workbook(tmp_path / "roster.xlsx", [["nip", "nama"], ["1", "Siti"]])
    with pytest.raises(MissingColumn, match="'unit'"):
        rows(path, required=("nip", "nama", "unit"))


def test_xlsx_is_recognised_by_content_not_name(tmp_path: Path) -> None:
    path = make_workbook(tmp_path / "export.csv", [["nip", "nama"], ["1", "Siti"]])
    assert rows(path) == [SourceRow(2, {"nip": "1", "nama": "Siti"})]


def zip_bomb(path: Path, size: int) -> Path:
    """A valid workbook whose sheet XML is padded with ``size`` bytes of whitespace."""
    make_workbook(path, [["nip", "nama"], ["1", "Siti"]])
    with zipfile.ZipFile(path) as source:
        members = {info.filename: source.read(info) for info in source.infolist()}
    sheet = "xl/worksheets/sheet1.xml"
    members[sheet] = members[sheet].replace(b"<sheetData>", b"<sheetData>" + b" " * size, 1)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in members.items():
            target.writestr(name, data)
    return path


def test_zip_bomb_is_refused_before_opening(tmp_path: Path) -> None:
    path = zip_bomb(tmp_path / "bomb.xlsx", 50 * 1024 * 1024)
    assert path.stat().st_size < 1024 * 1024
    with pytest.raises(UnsafeWorkbook, match="zip bomb"):
        rows(path)


def test_workbook_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    path = zip_bomb(tmp_path / "big.xlsx", 3 * 1024 * 1024)
    assert rows(path, max_ratio=10_000) == [SourceRow(2, {"nip": "1", "nama": "Siti"})]
    with pytest.raises(UnsafeWorkbook, match="more than the limit of 2 MiB"):
        rows(path, max_uncompressed=2 * 1024 * 1024, max_ratio=10_000)
    assert issubclass(UnsafeWorkbook, ConfigError)


def test_corrupt_zip_is_a_source_error(tmp_path: Path) -> None:
    path = write(tmp_path, b"PK\x03\x04" + b"garbage" * 50, "broken.xlsx")
    with pytest.raises(SourceError, match=r"not a valid \.xlsx"):
        rows(path)


def test_zip_that_is_not_a_workbook_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "other.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    with pytest.raises(SourceError, match="cannot be opened"):
        rows(path)


# --- fuzz -------------------------------------------------------------------------------------
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2000))
def test_any_bytes_give_rows_or_a_source_error(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path, data, "fuzz.csv")
    try:
        for row in read_rows(path, required=("nip",)):
            assert row.row >= 2
            assert all(isinstance(v, str) for v in row.values.values())
    except SourceError:
        pass
