"""Fuzzing the roster, assessment and mapping readers (issue 6, "Bad input and secrets").

Every input, however hostile, must end in one of the documented outcomes:

* rows: people (:class:`Person`) and row errors (:class:`RowError`), or assessments and row
  errors, or a checked :class:`Mappings`;
* a :class:`~moodle_bridge.errors.ConfigError` the CLI reports as "this file is unusable":
  :class:`SourceError` (and its subclasses :class:`MissingColumn`, :class:`DuplicateColumn`,
  :class:`UnsafeWorkbook`) for rosters and assessments, :class:`BrokenMappings` for mappings;

and never another exception, never a hang (each example runs in a thread joined with a
timeout). The example counts are bounded so the whole file runs in well under a minute in CI;
``MOODLE_BRIDGE_FUZZ_EXAMPLES=2000`` (or any number) runs a longer campaign locally.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moodle_bridge.errors import ConfigError
from moodle_bridge.mappings import BrokenMappings, Mappings, load_mappings
from moodle_bridge.roster.assessment import Assessment
from moodle_bridge.roster.generic import RosterResult, read_generic_roster
from moodle_bridge.roster.person import Person, RowError
from moodle_bridge.roster.sources import SourceError, read_rows
from plugins.bimas_islam import BimasIslamMapper
from plugins.generic import GenericMapper
from plugins.pendis import PendisMapper

#: Examples per test for a longer campaign (the defaults keep the file well under 40 s).
CAMPAIGN = int(os.environ.get("MOODLE_BRIDGE_FUZZ_EXAMPLES", "0") or 0)


#: Seconds one reader may take on one (small) fuzzed file before it counts as a hang.
HANG_AFTER = 15.0


def fuzz(default: int) -> settings:
    """Bounded settings: ``default`` examples (or the campaign size), no deadline."""
    return settings(
        max_examples=max(default, CAMPAIGN),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )


GENERIC_HEADER = "nip,nama,email,unit,satker,jabatan,golongan,status"
PENDIS_HEADER = (
    "NIP;Nama Lengkap;Gelar Depan;Gelar Belakang;Email Dinas;Satuan Kerja;Jabatan;"
    "Pangkat/Golongan;Status Pegawai;TMT Jabatan"
)
BIMAS_HEADER = "No,NIP Baru,Nama Pegawai,Jenis Kelamin,E-mail,Unit Kerja,Jabatan,Gol. Ruang,Status"
ASSESSMENT_HEADER = "nip,kompetensi,level,tanggal"
HEADERS = {
    "generic": GENERIC_HEADER,
    "pendis": PENDIS_HEADER,
    "bimas": BIMAS_HEADER,
    "assessment": ASSESSMENT_HEADER,
}

# --- the readers under test -----------------------------------------------------------------
ROSTER_READERS: dict[str, Callable[[Path], RosterResult]] = {
    "read_generic_roster": read_generic_roster,
    "generic": GenericMapper().read_roster,
    "pendis": PendisMapper().read_roster,
    "bimas_islam": BimasIslamMapper().read_roster,
}


def bounded(call: Callable[[], Any], *, what: str) -> Any:
    """Run ``call`` in a thread; fail if it hangs, re-raise what it raised."""
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, name=f"fuzz-{what}", daemon=True)
    worker.start()
    worker.join(HANG_AFTER)
    assert not worker.is_alive(), f"{what} did not finish within {HANG_AFTER} s (a hang)"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def check_roster(result: object, where: str) -> None:
    """The shape every roster reader promises."""
    assert isinstance(result, RosterResult), where
    seen: set[int] = set()
    for person in result.people:
        assert isinstance(person, Person), where
        assert len(person.nip) == 18, where
        assert person.nip.isascii(), where
        assert person.nip.isdigit(), where
        assert person.firstname.strip(), where
        assert person.lastname.strip(), where
        assert len(person.firstname) <= 100, where
        assert len(person.lastname) <= 100, where
        assert person.unit, where
        assert person.row >= 1, where
        assert person.row not in seen, f"{where}: row {person.row} gave two outcomes"
        seen.add(person.row)
    for error in [*result.errors, *result.warnings]:
        assert isinstance(error, RowError), where
        assert error.reason.strip(), where
    for error in result.errors:
        assert error.row >= 1, where
        assert error.row not in seen, f"{where}: row {error.row} gave two outcomes"
        seen.add(error.row)
    assert result.rows >= len(result.people) + len(result.errors), where


def read_every_roster(path: Path) -> None:
    for name, reader in ROSTER_READERS.items():
        try:
            result = bounded(lambda reader=reader: reader(path), what=name)
        except SourceError as exc:
            message = str(exc)
        else:
            check_roster(result, name)
            continue
        assert message.strip(), f"{name}: a SourceError without a message"


def assert_message(exc: Exception) -> None:
    assert str(exc).strip(), f"{type(exc).__name__} without a message"


def read_assessments(path: Path) -> None:
    for name, mapper in (("generic", GenericMapper()), ("pendis", PendisMapper())):
        try:
            found, errors = bounded(lambda m=mapper: m.read_assessments(path), what=name)
        except SourceError as exc:
            assert_message(exc)
            continue
        assert all(isinstance(a, Assessment) and 1 <= a.level <= 5 for a in found)
        assert all(isinstance(e, RowError) and e.row >= 1 for e in errors)
        assert all(a.nip.isascii() and a.nip.isdigit() and len(a.nip) == 18 for a in found)


# --- inputs ----------------------------------------------------------------------------------
NIPS = st.one_of(
    st.sampled_from(
        [
            "198001012005011001",
            "19800101 200501 1 001",
            "NIP. 198001012005011002",
            "'198001012005011003",
            "1.98001E+17",
            "198001012005011001.0",
            "\u0661\u0669\u0668\u0660\u0660\u0661\u0660\u0661\u0662\u0660\u0660\u0665\u0660\u0661\u0661\u0660\u0660\u0661",
            "\uff11\uff19\uff18\uff10\uff10\uff11\uff10\uff11\uff12\uff10\uff10\uff15\uff10\uff11\uff11\uff10\uff10\uff11",
            "199902302005011001",
            "180001012005011001",
            "198001011990011001",
            "198001012005019001",
            "198001012005011001\u200b",
            "",
            "-",
        ]
    ),
    st.from_regex(r"[0-9 .\-]{0,24}", fullmatch=True),
)
NAMES = st.one_of(
    st.sampled_from(
        [
            "Dr. H. Ahmad Fauzi, M.Pd.I.",
            "Sukarno",
            "I Gusti Ngurah Rai",
            "Ma'ruf Amin",
            '=HYPERLINK("http://x","y")',
            "+Budi",
            "@Citra",
            "Ahmad\u202eizuaF",
            "<b>Dedi</b>",
            "A" * 150,
            "Prof.Dr.H.",
            ", S.Ag.",
        ]
    ),
    st.text(max_size=40),
)
CELLS = st.one_of(
    NIPS,
    NAMES,
    st.sampled_from(
        ["PENDIS", "bimas islam", "AKTIF", "Pensiun", "x@y.z", "A@B", "3", "Ahli", "6",
         "31-12-2024", "2024-02-30", "\"", "\"\"", ";", ",", "\t", "\r", "\n", "\x00", "\ufeff"]
    ),
    st.text(max_size=12),
)  # fmt: skip


@st.composite
def csv_text(draw: st.DrawFn, header: str | None) -> str:
    """A CSV-like text: an optional known header, then rows of hostile cells."""
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    lines: list[str] = []
    if header is not None:
        lines.append(header.replace(",", delimiter).replace(";", delimiter))
    for _ in range(draw(st.integers(0, 6))):
        cells = draw(st.lists(CELLS, max_size=12))
        quoted = [f'"{c}"' if draw(st.booleans()) else c for c in cells]
        lines.append(delimiter.join(quoted))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return newline.join(lines) + draw(st.sampled_from(["", newline]))


def encoded(text: str, how: str) -> bytes:
    if how == "utf-8-sig":
        return b"\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass")
    if how == "cp1252":
        return text.encode("cp1252", "replace")
    return text.encode("utf-8", "surrogatepass")


ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "cp1252"])
RAW = st.one_of(
    st.binary(max_size=600),
    st.binary(max_size=300).map(lambda b: b"PK\x03\x04" + b),  # read as a zip
    st.binary(max_size=300).map(lambda b: b"\xd0\xcf\x11\xe0" + b),  # read as old .xls
    st.binary(max_size=300).map(lambda b: b"\xff\xfe" + b),  # UTF-16 mark
)


def text_inputs(header: str | None) -> st.SearchStrategy[bytes]:
    structured = st.builds(encoded, csv_text(header), ENCODINGS)
    free = st.builds(
        encoded,
        st.text(max_size=400).map(lambda t: (header + "\n" if header else "") + t),
        ENCODINGS,
    )
    return st.one_of(structured, free)


def fresh(suffix: str = ".csv") -> Path:
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    return folder / f"input{suffix}"


# --- rosters -----------------------------------------------------------------------------------
@fuzz(120)
@given(data=RAW)
def test_arbitrary_bytes_as_a_roster(data: bytes):
    path = fresh()
    try:
        path.write_bytes(data)
        read_every_roster(path)
    finally:
        shutil.rmtree(path.parent)


@fuzz(250)
@given(
    data=st.one_of(
        text_inputs(GENERIC_HEADER),
        text_inputs(PENDIS_HEADER),
        text_inputs(BIMAS_HEADER),
        text_inputs(None),
    )
)
def test_arbitrary_text_as_a_roster(data: bytes):
    path = fresh()
    try:
        path.write_bytes(data)
        read_every_roster(path)
    finally:
        shutil.rmtree(path.parent)


# --- assessments -------------------------------------------------------------------------------
@fuzz(150)
@given(data=st.one_of(RAW, text_inputs(ASSESSMENT_HEADER), text_inputs(None)))
def test_arbitrary_input_as_an_assessment_file(data: bytes):
    path = fresh()
    try:
        path.write_bytes(data)
        read_assessments(path)
    finally:
        shutil.rmtree(path.parent)


# --- mappings -------------------------------------------------------------------------------------
MAPPING_FILES: dict[str, str] = {
    "competencies.csv": "code,name,kind,priority\n"
    "MAN-INTEG,Integritas,manajerial,1\n"
    "SOS-KULT,Perekat Bangsa,sosial_kultural,2\n"
    "TEK-PAI-01,Pembelajaran PAI,teknis,3\n",
    "position_levels.csv": "unit,jabatan,position_level\n"
    ",Direktur Jenderal *,JPT Madya\n"
    "PENDIS,Guru *,Pelaksana\n",
    "units.csv": "unit,annual_cap\nPENDIS,4\n",
    "standards/PENDIS.csv": "jabatan,competency,level\n"
    "Guru Madrasah,TEK-PAI-01,3\n"
    "Guru Madrasah,SOS-KULT,2\n",
    "catalogue/national.csv": "competency,from_level,to_level,course_shortname,jp,"
    "window_start,window_end,capacity,mode\n"
    "MAN-INTEG,1,2,MAN-INTEG-12,20,,,,\n"
    "SOS-KULT,1,2,SOS-KULT-12,20,2025-01-01,2025-12-31,100,manual\n",
    "catalogue/PENDIS.csv": "competency,from_level,to_level,course_shortname,jp,"
    "window_start,window_end,capacity,mode\n"
    "TEK-PAI-01,1,2,PENDIS-PAI-12,30,,,,cohort\n",
}
MAPPING_CELLS = st.one_of(
    CELLS,
    st.sampled_from(
        ["MAN-INTEG", "SOS-KULT", "TEK-PAI-01", "manajerial", "teknis", "sosial_kultural",
         "JPT Madya", "Pelaksana", "Guru *", "*", "**", "1", "2", "5", "0", "-1", "1.0", "1e3",
         "99999999999999999999", "2025-01-01", "01-01-2025", "2025-13-01", "manual", "cohort",
         "PENDIS", "pendis", "x" * 300]
    ),
)  # fmt: skip


def write_mappings(folder: Path) -> None:
    for relative, text in MAPPING_FILES.items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def test_the_fixture_mappings_load():
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        write_mappings(folder)
        loaded = load_mappings(folder, "PENDIS")
        assert set(loaded.competencies) == {"MAN-INTEG", "SOS-KULT", "TEK-PAI-01"}
        assert len(loaded.catalogue) == 3
    finally:
        shutil.rmtree(folder)


@st.composite
def mapping_text(draw: st.DrawFn, relative: str) -> bytes:
    header = MAPPING_FILES[relative].splitlines()[0]
    width = header.count(",") + 1
    if draw(st.booleans()):
        rows = [
            ",".join(draw(st.lists(MAPPING_CELLS, min_size=width - 1, max_size=width + 1)))
            for _ in range(draw(st.integers(0, 5)))
        ]
        text = "\n".join([header, *rows])
        return encoded(text, draw(ENCODINGS))
    return draw(st.one_of(RAW, text_inputs(header), text_inputs(None)))


def check_broken(exc: BrokenMappings) -> None:
    assert exc.errors, "BrokenMappings without a single error"
    assert all(isinstance(e, RowError) for e in exc.errors)
    assert all(e.reason.strip() for e in exc.errors)


def load_bounded(folder: Path) -> None:
    try:
        loaded = bounded(lambda: load_mappings(folder, "PENDIS"), what="load_mappings")
    except BrokenMappings as exc:
        check_broken(exc)
        return
    assert isinstance(loaded, Mappings)
    for offer in loaded.catalogue:
        assert 1 <= offer.from_level < offer.to_level <= 5
        assert 1 <= offer.jp <= 1000
        assert offer.competency in loaded.competencies


@fuzz(40)
@given(st.data())
def test_arbitrary_input_as_each_mapping_file(data: st.DataObject):
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        write_mappings(folder)
        for relative in MAPPING_FILES:
            if data.draw(st.booleans(), label=f"fuzz {relative}"):
                content = data.draw(mapping_text(relative), label=relative)
                (folder / relative).write_bytes(content)
        load_bounded(folder)
    finally:
        shutil.rmtree(folder)


@fuzz(25)
@given(relative=st.sampled_from(sorted(MAPPING_FILES)), content=st.data())
def test_one_fuzzed_mapping_file_at_a_time(relative: str, content: st.DataObject):
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        write_mappings(folder)
        (folder / relative).write_bytes(content.draw(mapping_text(relative)))
        load_bounded(folder)
    finally:
        shutil.rmtree(folder)


# --- XLSX -------------------------------------------------------------------------------------
XLSX_VALUES = st.one_of(
    st.none(),
    CELLS,
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.dates(min_value=dt.date(1900, 3, 1), max_value=dt.date(9999, 12, 31)),
    st.datetimes(min_value=dt.datetime(1900, 3, 1), max_value=dt.datetime(9999, 12, 31)),
    st.sampled_from(["=1+1", '=CONCAT("Ah","mad")', '=HYPERLINK("http://x")', "=A1/0"]),
)
_XML_SAFE = str.maketrans({chr(c): None for c in range(32) if c not in (9, 10, 13)})


def xml_safe(value: object) -> object:
    if isinstance(value, str):
        return value.translate(_XML_SAFE)
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)
    return value


@st.composite
def workbooks(draw: st.DrawFn) -> bytes:
    """A random but well-formed workbook: header of a known layout (or none), random cells,
    formulas (never evaluated: no cached value), extra sheets, sometimes a chart sheet first."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = draw(st.sampled_from(["Sheet1", "Data", "Pegawai 2025"]))
    header = draw(st.sampled_from([*HEADERS.values(), None]))
    if header is not None:
        sheet.append(header.replace(";", ",").split(","))
    for _ in range(draw(st.integers(0, 6))):
        sheet.append([xml_safe(v) for v in draw(st.lists(XLSX_VALUES, max_size=11))])
    if draw(st.booleans()):
        # A sparse far-away cell: the dimension grows, the reader must not allocate it all.
        sheet.cell(row=draw(st.integers(1, 5000)), column=draw(st.integers(1, 300)), value="x")
    if draw(st.booleans()):
        book.create_sheet("Lain").append(["a", "b"])
    if draw(st.integers(0, 9)) == 0:
        book.create_chartsheet("Grafik", 0)
    path = fresh(".xlsx")
    try:
        book.save(path)
        return path.read_bytes()
    finally:
        shutil.rmtree(path.parent)


@fuzz(40)
@given(workbook=workbooks(), name=st.sampled_from([".xlsx", ".csv"]))
def test_random_workbooks_as_rosters_and_assessments(workbook: bytes, name: str):
    path = fresh(name)
    try:
        path.write_bytes(workbook)
        read_every_roster(path)
        read_assessments(path)
    finally:
        shutil.rmtree(path.parent)


@fuzz(15)
@given(
    workbook=workbooks(),
    relative=st.sampled_from(sorted(MAPPING_FILES)),
)
def test_random_workbooks_as_mapping_files(workbook: bytes, relative: str):
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        write_mappings(folder)
        (folder / relative).write_bytes(workbook)
        load_bounded(folder)
    finally:
        shutil.rmtree(folder)


@fuzz(30)
@given(workbook=workbooks(), cut=st.integers(0, 10**9), flip=st.integers(0, 255))
def test_damaged_workbooks(workbook: bytes, cut: int, flip: int):
    """A workbook truncated or with one byte changed: SourceError or rows, nothing else."""
    damaged = bytearray(workbook)
    position = cut % len(damaged)
    if flip % 2:
        damaged = damaged[:position]
    else:
        damaged[position] ^= flip or 1
    path = fresh(".xlsx")
    try:
        path.write_bytes(bytes(damaged))
        read_every_roster(path)
        try:
            rows = bounded(lambda: list(read_rows(path)), what="read_rows")
        except SourceError:
            return
        assert all(r.row >= 1 for r in rows)
    finally:
        shutil.rmtree(path.parent)


def test_a_config_error_is_the_only_file_level_exception():
    """The documented exceptions are ConfigErrors (what the CLI reports as exit 2)."""
    assert issubclass(SourceError, ConfigError)
    assert issubclass(BrokenMappings, ConfigError)
