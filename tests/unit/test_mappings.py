"""The mapping files: the shipped samples load, and every bad cell is reported precisely."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from moodle_bridge.errors import ConfigError
from moodle_bridge.mappings import (
    DEFAULT_ANNUAL_CAP,
    MANAGERIAL_DEFAULTS,
    NATIONAL,
    BrokenMappings,
    check_mappings,
    load_mappings,
)
from moodle_bridge.roster.person import RowError
from moodle_bridge.samples import DEFAULT_UNITS, generate_people

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "mappings"
BUILT_IN = ("PENDIS", "BIMAS_ISLAM", "SETJEN")

CATALOGUE_HEADER = (
    "competency,from_level,to_level,course_shortname,jp,window_start,window_end,capacity,mode\n"
)


def write(folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A small valid mappings folder for unit TEST."""
    write(
        tmp_path,
        "competencies.csv",
        "code,name,kind,priority\n"
        "MAN-INTEG,Integritas,manajerial,1\n"
        "MAN-KOM,Komunikasi,manajerial,3\n"
        "TEK-A,Teknis A,teknis,2\n",
    )
    write(
        tmp_path,
        "position_levels.csv",
        "unit,jabatan,position_level\n"
        ",Kepala Seksi *,Pengawas\n"
        "TEST,Kepala Seksi Khusus,Administrator\n"
        ",* Ahli Pertama,Pelaksana\n",
    )
    write(tmp_path, "units.csv", "unit,annual_cap\nTEST,2\nOTHER,\n")
    write(
        tmp_path,
        "standards/TEST.csv",
        "jabatan,competency,level\n"
        "Guru Ahli Pertama,TEK-A,2\n"
        "Guru Ahli Pertama,MAN-INTEG,3\n"
        "Kepala Seksi Umum,TEK-A,3\n"
        "Tanpa Level,TEK-A,1\n",
    )
    write(tmp_path, "standards/OTHER.csv", "jabatan,competency,level\nGuru Ahli Pertama,TEK-A,1\n")
    write(
        tmp_path,
        "catalogue/national.csv",
        CATALOGUE_HEADER + "TEK-A,1,2,TEKA-12,20,,,,\n"
        "MAN-INTEG,1,2,INTEG-12,24,2026-01-01,2026-06-30,30,\n"
        "MAN-INTEG,1,2,INTEG-12,24,2026-07-01,2026-12-31,30,manual\n",
    )
    write(
        tmp_path, "catalogue/TEST.csv", CATALOGUE_HEADER + "TEK-A,1,2,TEST-TEKA-12,30,,,5,cohort\n"
    )
    return tmp_path


def errors_of(folder: Path, unit: str = "TEST") -> list[RowError]:
    return check_mappings(folder, unit)


def where(errors: list[RowError]) -> set[tuple[str, int, str | None]]:
    return {(e.source, e.row, e.column) for e in errors}


# --- the shipped samples --------------------------------------------------------------------------
@pytest.mark.parametrize("unit", sorted(DEFAULT_UNITS))
def test_shipped_mappings_load_without_error(unit: str) -> None:
    assert check_mappings(SHIPPED, unit) == []
    mappings = load_mappings(SHIPPED, unit)
    assert mappings.unit == unit
    assert len(mappings.competencies) >= 12
    assert mappings.catalogue


@pytest.mark.parametrize("unit", BUILT_IN)
def test_every_generated_jabatan_has_a_standard(unit: str) -> None:
    mappings = load_mappings(SHIPPED, unit)
    jabatan = {r.jabatan for r in generate_people(3000, 11, dirty_share=0.0, units={unit: 1.0})}
    assert jabatan
    assert {j for j in jabatan if mappings.standard_for(j) is None} == set()


@pytest.mark.parametrize("unit", BUILT_IN)
def test_shipped_catalogue_covers_the_first_three_steps(unit: str) -> None:
    mappings = load_mappings(SHIPPED, unit)
    covered = [
        code
        for code in mappings.competencies
        if all(mappings.offers(code, level) for level in (1, 2, 3))
    ]
    assert len(covered) >= len(mappings.competencies) * 2 // 3
    assert all(20 <= o.jp <= 40 for o in mappings.catalogue)
    assert any(o.capacity is not None for o in mappings.catalogue)


# --- what a valid folder gives --------------------------------------------------------------------
def test_small_folder_loads(folder: Path) -> None:
    m = load_mappings(folder, "TEST")
    assert m.annual_cap == 2
    assert load_mappings(folder, "OTHER").annual_cap == DEFAULT_ANNUAL_CAP
    assert [o.course_shortname for o in m.offers("TEK-A", 1)] == ["TEST-TEKA-12", "TEKA-12"]
    own = m.offers("TEK-A", 1)[0]
    assert (own.scope, own.mode, own.capacity) == ("TEST", "cohort", 5)
    assert m.offers("TEK-A", 1)[1].scope == NATIONAL
    windows = m.offers("MAN-INTEG", 1)
    assert [w.window_start for w in windows] == [dt.date(2026, 1, 1), dt.date(2026, 7, 1)]
    assert m.course_step("INTEG-12") is not None
    assert m.course_step("NOPE") is None


def test_standard_adds_the_managerial_default_where_the_unit_gives_none(folder: Path) -> None:
    m = load_mappings(folder, "TEST")
    guru = m.standard_for("guru  ahli PERTAMA")  # matched case- and space-insensitively
    assert guru is not None
    assert guru.position_level == "Pelaksana"
    assert {(r.competency, r.level, r.origin) for r in guru.requirements} == {
        ("MAN-INTEG", 3, "standard"),  # the unit's own row wins over the default
        ("MAN-KOM", MANAGERIAL_DEFAULTS["Pelaksana"], "default"),
        ("TEK-A", 2, "standard"),
    }
    seksi = m.standard_for("Kepala Seksi Umum")
    assert seksi is not None
    assert seksi.position_level == "Pengawas"
    assert {r.level for r in seksi.requirements if r.origin == "default"} == {2}


def test_unit_position_rules_come_before_general_ones(folder: Path) -> None:
    m = load_mappings(folder, "TEST")
    assert m.position_level("Kepala Seksi Khusus") == "Administrator"
    assert load_mappings(folder, "OTHER").position_level("Kepala Seksi Khusus") == "Pengawas"


def test_no_rows_and_no_position_level_means_no_standard(folder: Path) -> None:
    m = load_mappings(folder, "TEST")
    assert m.standard_for("Analis Kebijakan") is None
    assert m.standard_for("") is None
    # Rows without a position level: only the unit's rows.
    only = m.standard_for("Tanpa Level")
    assert only is not None
    assert only.position_level is None
    assert [r.competency for r in only.requirements] == ["TEK-A"]
    # No rows but a position level: the managerial defaults alone.
    defaults = m.standard_for("Kepala Seksi Lain")
    assert defaults is not None
    assert {r.origin for r in defaults.requirements} == {"default"}


def test_unit_catalogue_is_optional(folder: Path) -> None:
    (folder / "catalogue" / "TEST.csv").unlink()
    m = load_mappings(folder, "TEST")
    assert all(o.scope == NATIONAL for o in m.catalogue)


# --- bad cells ------------------------------------------------------------------------------------
BAD_CATALOGUE_ROWS = [
    ("TEK-X,1,2,X-12,20,,,,", "competency", "not in competencies.csv"),
    (",1,2,X-12,20,,,,", "competency", "empty"),
    ("TEK-A,0,2,X-02,20,,,,", "from_level", "not 1-5"),
    ("TEK-A,2,6,X-26,20,,,,", "to_level", "not 1-5"),
    ("TEK-A,3,3,X-33,20,,,,", "to_level", "not above"),
    ("TEK-A,4,2,X-42,20,,,,", "to_level", "not above"),
    ("TEK-A,2,3,X-23,0,,,,", "jp", "JP"),
    ("TEK-A,2,3,X-23,dua puluh,,,,", "jp", "JP"),
    ("TEK-A,2,3,X-23,20,2026-02-30,,,", "window_start", "2026-02-30"),
    ("TEK-A,2,3,X-23,20,,31/12/2026x,,", "window_end", "31/12/2026x"),
    ("TEK-A,2,3,X-23,20,2026-06-01,2026-05-01,,", "window_end", "before it starts"),
    ("TEK-A,2,3,X-23,20,,,-5,", "capacity", "capacity"),
    ("TEK-A,2,3,X-23,20,,,lima,", "capacity", "capacity"),
    ("TEK-A,2,3,X-23,20,,,,online", "mode", "manual or cohort"),
    ("TEK-A,2,3,,20,,,,", "course_shortname", "empty"),
    ("TEK-A,1,2,OTHER-12,20,,,,", "from_level", "overlapping window"),
    ("MAN-INTEG,1,2,INTEG-B,20,2026-06-01,2026-07-15,,", "from_level", "overlapping window"),
    ("MAN-KOM,1,2,TEKA-12,20,,,,", "course_shortname", "one course must close one step"),
]


@pytest.mark.parametrize(("row", "column", "words"), BAD_CATALOGUE_ROWS)
def test_each_bad_catalogue_cell_is_reported(
    folder: Path, row: str, column: str, words: str
) -> None:
    path = folder / "catalogue" / "national.csv"
    path.write_text(path.read_text(encoding="utf-8") + row + "\n", encoding="utf-8")
    errors = errors_of(folder)
    assert [(e.source, e.row, e.column) for e in errors] == [("catalogue/national.csv", 5, column)]
    assert words in errors[0].reason
    with pytest.raises(BrokenMappings) as raised:
        load_mappings(folder, "TEST")
    assert isinstance(raised.value, ConfigError)
    assert raised.value.errors == tuple(errors)
    assert "catalogue/national.csv row 5" in str(raised.value)


def test_a_unit_row_reusing_a_national_window_is_refused(folder: Path) -> None:
    write(
        folder,
        "catalogue/TEST.csv",
        CATALOGUE_HEADER + "MAN-INTEG,1,2,INTEG-12,24,2026-03-01,2026-03-31,10,\n",
    )
    errors = errors_of(folder)
    assert where(errors) == {("catalogue/TEST.csv", 2, "course_shortname")}
    assert "overlapping window" in errors[0].reason


def test_every_bad_cell_of_a_row_and_of_every_file_is_reported_at_once(folder: Path) -> None:
    write(
        folder,
        "catalogue/TEST.csv",
        CATALOGUE_HEADER + "TEK-Z,7,1,,x,2026-13-01,,-1,robot\n",
    )
    write(
        folder,
        "competencies.csv",
        "code,name,kind,priority\n"
        "MAN-INTEG,Integritas,manajerial,1\n"
        "MAN-KOM,Komunikasi,manajerial,3\n"
        "TEK-A,Teknis A,teknis,2\n"
        "TEK-A,Duplikat,teknis,2\n"
        "TEK B,,technical,-1\n",
    )
    write(
        folder,
        "standards/TEST.csv",
        "jabatan,competency,level\n"
        "Guru Ahli Pertama,TEK-A,2\n"
        "guru ahli  pertama,TEK-A,3\n"
        ",TEK-Q,9\n",
    )
    write(folder, "position_levels.csv", "unit,jabatan,position_level\nbad unit,*,Eselon II\n")
    write(folder, "units.csv", "unit,annual_cap\nTEST,banyak\nTEST,3\n")
    errors = errors_of(folder)
    assert where(errors) == {
        ("catalogue/TEST.csv", 2, "competency"),
        ("catalogue/TEST.csv", 2, "from_level"),
        ("catalogue/TEST.csv", 2, "course_shortname"),
        ("catalogue/TEST.csv", 2, "jp"),
        ("catalogue/TEST.csv", 2, "window_start"),
        ("catalogue/TEST.csv", 2, "capacity"),
        ("catalogue/TEST.csv", 2, "mode"),
        ("competencies.csv", 5, "code"),
        ("competencies.csv", 6, "code"),
        ("competencies.csv", 6, "name"),
        ("competencies.csv", 6, "kind"),
        ("competencies.csv", 6, "priority"),
        ("standards/TEST.csv", 3, "competency"),
        ("standards/TEST.csv", 4, "jabatan"),
        ("standards/TEST.csv", 4, "competency"),
        ("standards/TEST.csv", 4, "level"),
        ("position_levels.csv", 2, "unit"),
        ("position_levels.csv", 2, "position_level"),
        ("units.csv", 2, "annual_cap"),
        ("units.csv", 3, "unit"),
    }
    with pytest.raises(BrokenMappings) as raised:
        load_mappings(folder, "TEST")
    assert len(raised.value.errors) == len(errors)
    assert "and 15 more" in str(raised.value)


def test_missing_files_and_columns_are_reported(folder: Path) -> None:
    (folder / "standards" / "TEST.csv").unlink()
    write(folder, "catalogue/national.csv", "competency,from_level,course_shortname,jp\n")
    errors = errors_of(folder)
    assert where(errors) == {
        ("standards/TEST.csv", 0, None),
        ("catalogue/national.csv", 1, "to_level"),
    }
    assert "missing" in errors[0].reason


def test_cells_beyond_the_header_are_reported(folder: Path) -> None:
    path = folder / "catalogue" / "national.csv"
    path.write_text(
        path.read_text(encoding="utf-8") + "TEK-A,2,3,X-23,20,,,,,Kelas A,Kelas B\n",
        encoding="utf-8",
    )
    errors = errors_of(folder)
    assert where(errors) == {("catalogue/national.csv", 5, None)}
    assert "Kelas A" in errors[0].reason


def test_semicolons_and_a_bom_are_read(folder: Path) -> None:
    (folder / "units.csv").write_bytes("\ufeffunit;annual_cap\r\nTEST;3\r\n".encode())
    assert load_mappings(folder, "TEST").annual_cap == 3


def test_a_bad_unit_code_is_refused(folder: Path) -> None:
    errors = errors_of(folder, "test unit")
    assert len(errors) == 1
    assert "not a unit code" in errors[0].reason


def test_shipped_folder_is_untouched_by_tests(tmp_path: Path) -> None:
    copy = tmp_path / "m"
    shutil.copytree(SHIPPED, copy)
    assert check_mappings(copy, "PENDIS") == []
