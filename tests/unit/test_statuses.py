"""The status vocabulary: the shipped table, normalisation, unit overrides, how readers use it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from moodle_bridge.errors import ConfigError
from moodle_bridge.roster.generic import parse_generic_row, read_generic_roster
from moodle_bridge.roster.person import Person, RowError, UnknownStatus
from moodle_bridge.roster.sources import SourceRow
from moodle_bridge.roster.statuses import (
    MEANINGS,
    SHIPPED_MAPPINGS,
    BrokenStatuses,
    StatusTable,
    check_statuses,
    load_statuses,
    normalise_status,
    shipped_statuses,
)

TODAY = date(2025, 6, 1)
NIP = "198001012005011001"

ACTIVE = (
    "AKTIF", "PNS", "CPNS", "PPPK", "PNS AKTIF", "PPPK AKTIF",
    "CUTI", "CUTI TAHUNAN", "CUTI BESAR", "CUTI SAKIT", "CUTI MELAHIRKAN",
    "CUTI KARENA ALASAN PENTING", "CUTI BERSAMA",
    "TUGAS BELAJAR", "IZIN BELAJAR",
    "DPK", "DIPEKERJAKAN", "DPB", "DIPERBANTUKAN",
    "MPP", "MASA PERSIAPAN PENSIUN",
)  # fmt: skip
INACTIVE = (
    "CLTN", "CUTI DI LUAR TANGGUNGAN NEGARA",
    "PEMBERHENTIAN SEMENTARA", "DIBERHENTIKAN SEMENTARA", "PENERIMA UANG TUNGGU",
    "DIBERHENTIKAN", "PENSIUN", "MENINGGAL", "MENINGGAL DUNIA", "WAFAT",
    "MENGUNDURKAN DIRI", "PINDAH INSTANSI", "HILANG",
)  # fmt: skip
LEFT_UNIT = ("MUTASI KELUAR", "PINDAH")
#: Not ASN: shipped as active (a unit that lists them trains them), changeable per unit.
CONTRACT_STAFF = ("HONORER", "PPNPN")


def parse(status: str, *, unit: str = "SETJEN", table: StatusTable | None = None) -> object:
    values = {"nip": NIP, "nama": "Siti Rahmah", "unit": unit, "status": status}
    return parse_generic_row("r.csv", SourceRow(2, values), statuses=table, today=TODAY)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- the shipped table --------------------------------------------------------------------------
@pytest.mark.parametrize("status", ACTIVE + CONTRACT_STAFF)
def test_serving_statuses_are_active(status: str) -> None:
    assert shipped_statuses().meaning(status) == "yes"
    person = parse(status)
    assert isinstance(person, Person)
    assert (person.active, person.left_unit, person.status) == (True, False, status)


@pytest.mark.parametrize("status", INACTIVE)
def test_statuses_of_people_not_serving_are_inactive(status: str) -> None:
    assert shipped_statuses().meaning(status) == "no"
    person = parse(status)
    assert isinstance(person, Person)
    assert (person.active, person.left_unit) == (False, False)


@pytest.mark.parametrize("status", LEFT_UNIT)
def test_moving_out_of_the_unit_is_left_unit_not_inactive(status: str) -> None:
    assert shipped_statuses().meaning(status) == "left_unit"
    person = parse(status)
    assert isinstance(person, Person)
    assert (person.active, person.left_unit) == (False, True)


def test_both_spellings_of_mpp_mean_the_same() -> None:
    table = shipped_statuses()
    assert table.meaning("MPP") == table.meaning("Masa Persiapan Pensiun") == "yes"


def test_every_kind_of_cuti_is_active_except_cltn() -> None:
    meanings = shipped_statuses().meanings()
    cuti = {status: meaning for status, meaning in meanings.items() if status.startswith("CUTI")}
    unpaid = {"CUTI DI LUAR TANGGUNGAN NEGARA", "CUTI DILUAR TANGGUNGAN NEGARA"}
    assert len(cuti) >= 8
    assert {status for status, meaning in cuti.items() if meaning != "yes"} == unpaid
    assert meanings["CLTN"] == "no"


def test_the_shipped_file_is_the_shipped_table() -> None:
    assert load_statuses(SHIPPED_MAPPINGS) == shipped_statuses()
    assert check_statuses(SHIPPED_MAPPINGS) == []
    assert set(shipped_statuses().meanings().values()) == set(MEANINGS)


# --- normalisation ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "written",
    [
        "cuti tahunan",
        "CUTI  TAHUNAN",
        " Cuti_Tahunan ",
        "cuti-tahunan",
        "CUTI -_ TAHUNAN",
        "Cuti\tTahunan",
    ],
)
def test_case_spaces_underscores_and_dashes_do_not_matter(written: str) -> None:
    assert normalise_status(written) == "CUTI TAHUNAN"
    person = parse(written)
    assert isinstance(person, Person)
    assert (person.status, person.active) == ("CUTI TAHUNAN", True)


def test_an_empty_status_is_aktif() -> None:
    person = parse("")
    assert isinstance(person, Person)
    assert (person.status, person.active) == ("AKTIF", True)


# --- unknown statuses ---------------------------------------------------------------------------
def test_an_unknown_status_is_a_warning_that_keeps_the_person(tmp_path: Path) -> None:
    path = write(
        tmp_path / "r.csv",
        "nip,nama,unit,status\n"
        f"{NIP},Siti Rahmah,SETJEN,SKORSING\n"
        "198001012005011002,Ahmad Fauzan,SETJEN,PENSIUN\n",
    )
    result = read_generic_roster(path, today=TODAY)
    assert [p.nip for p in result.people] == ["198001012005011002"]
    assert result.errors == []
    [warning] = result.warnings
    assert isinstance(warning, UnknownStatus)
    assert (warning.row, warning.column, warning.nip, warning.status) == (
        2, "status", NIP, "SKORSING",
    )  # fmt: skip
    assert "SKORSING" in warning.reason
    assert "left as it is" in warning.reason
    assert result.kept == {NIP: warning}
    assert result.untied == 0


def test_a_very_long_unknown_status_is_shown_cut() -> None:
    unknown = parse("X" * 300)
    assert isinstance(unknown, UnknownStatus)
    assert "X" * 40 + "..." in unknown.reason
    assert "X" * 41 not in unknown.reason


def test_an_empty_table_knows_nothing() -> None:
    assert isinstance(parse("AKTIF", table=StatusTable({})), UnknownStatus)


# --- unit overrides -----------------------------------------------------------------------------
def test_a_unit_file_overrides_and_extends_the_national_table(tmp_path: Path) -> None:
    write(tmp_path / "statuses.csv", "status,active,note\nAKTIF,yes,\nHONORER,yes,\n")
    write(
        tmp_path / "statuses" / "PENDIS.csv",
        "Status;Active;Note\nhonorer;no;PENDIS does not train contract staff\nSKORSING;no;\n",
    )
    table = load_statuses(tmp_path)
    assert table.units == {"PENDIS"}
    assert table.meaning("HONORER", "PENDIS") == "no"
    assert table.meaning("HONORER", "SETJEN") == "yes"
    assert table.meaning("HONORER") == "yes"
    assert table.meaning("SKORSING", "PENDIS") == "no"
    assert table.meaning("SKORSING", "SETJEN") is None
    assert table.meaning("AKTIF", "PENDIS") == "yes"
    # In a generic file, each row is read with the overrides of its own unit.
    pendis = parse("Honorer", unit="PENDIS", table=table)
    setjen = parse("Honorer", unit="SETJEN", table=table)
    assert isinstance(pendis, Person)
    assert isinstance(setjen, Person)
    assert (pendis.active, setjen.active) == (False, True)


def test_a_folder_without_statuses_csv_uses_the_shipped_table(tmp_path: Path) -> None:
    assert load_statuses(tmp_path) == shipped_statuses()
    write(tmp_path / "statuses" / "BIMAS_ISLAM.csv", "status,active\nPPNPN,no\n")
    table = load_statuses(tmp_path)
    assert table.meaning("PPNPN", "BIMAS_ISLAM") == "no"
    assert table.meaning("CUTI SAKIT", "BIMAS_ISLAM") == "yes"
    assert table.meanings() == shipped_statuses().meanings()


def test_the_folder_replaces_the_shipped_table(tmp_path: Path) -> None:
    write(tmp_path / "statuses.csv", "status,active\nAKTIF,yes\n")
    assert load_statuses(tmp_path).meaning("CUTI") is None


# --- broken files -------------------------------------------------------------------------------
def test_every_bad_cell_is_reported_with_file_row_and_column(tmp_path: Path) -> None:
    write(
        tmp_path / "statuses.csv",
        "status,active,note\n"
        "AKTIF,yes,\n"
        "aktif,yes,again\n"  # the same status once normalised
        "CUTI,maybe,\n"
        ",no,\n"
        "PINDAH,Left-Unit,written loosely\n"
        "PENSIUN,no,a, comma\n",
    )
    write(tmp_path / "statuses" / "pendis.csv", "status,active\nX,no\n")
    write(tmp_path / "statuses" / "SETJEN.csv", "status\nX\n")
    problems = check_statuses(tmp_path)
    assert [(e.source, e.row, e.column) for e in problems] == [
        ("statuses.csv", 3, "status"),
        ("statuses.csv", 4, "active"),
        ("statuses.csv", 5, "status"),
        ("statuses.csv", 7, None),
        ("statuses/SETJEN.csv", 1, "active"),
        ("statuses/pendis.csv", 0, None),
    ]
    assert "already listed on row 2" in problems[0].reason
    assert "yes, no, left_unit" in problems[1].reason
    assert "not a unit code" in problems[-1].reason
    with pytest.raises(BrokenStatuses) as caught:
        load_statuses(tmp_path)
    assert isinstance(caught.value, ConfigError)
    assert caught.value.errors == tuple(problems)
    assert "6 error(s)" in str(caught.value)
    assert "(and 1 more)" in str(caught.value)


def test_a_table_refuses_meanings_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="left_unit"):
        StatusTable({"AKTIF": "ya"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="empty"):
        StatusTable({" - ": "yes"})


def test_tables_are_equal_by_content() -> None:
    one = StatusTable({"aktif": "yes"}, {"PENDIS": {"x": "no"}})
    other = StatusTable({"AKTIF": "yes"}, {"PENDIS": {"X": "no"}, "SETJEN": {}})
    assert one == other
    assert hash(one) == hash(other)
    assert one != StatusTable({"AKTIF": "yes"})
    assert "PENDIS" in repr(one)


def test_a_refused_row_is_not_an_unknown_status() -> None:
    error = parse_generic_row(
        "r.csv",
        SourceRow(2, {"nip": NIP, "nama": "S.Pd.", "unit": "SETJEN", "status": "SKORSING"}),
        today=TODAY,
    )
    assert type(error) is RowError
    assert (error.column, error.nip) == ("nama", NIP)
