"""The built-in unit plugins (and the plugin template) under the plugin test kit, plus their
format-specific rules."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import ClassVar

import pytest

from moodle_bridge.roster.person import Person, RowError, UnknownStatus
from moodle_bridge.roster.sources import MissingColumn, SourceRow, read_rows
from moodle_bridge.roster.statuses import StatusTable, load_statuses
from moodle_bridge.testing import UnitPluginContract
from moodle_bridge.units import CohortSpec, UnitMapper
from plugins.bimas_islam import BimasIslamMapper
from plugins.generic import GenericMapper
from plugins.pendis import PendisMapper, golongan_of, name_with_titles

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "plugins" / "samples"
TEMPLATE = ROOT / "plugins" / "template"


def _template_module() -> ModuleType:
    """The template plugin's package, imported from its directory (it is not installed)."""
    init = TEMPLATE / "moodle_bridge_unit_contoh" / "__init__.py"
    spec = importlib.util.spec_from_file_location("moodle_bridge_unit_contoh", init)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the test kit against each plugin -------------------------------------------------------------
class TestGenericPlugin(UnitPluginContract):
    mapper = GenericMapper()
    sample = SAMPLES / "generic.csv"
    assessment_sample = SAMPLES / "assessments.csv"
    expected_people = 22
    expected_errors = 2


class TestPendisPlugin(UnitPluginContract):
    mapper = PendisMapper()
    sample = SAMPLES / "pendis.csv"
    assessment_sample = SAMPLES / "assessments.csv"
    expected_people = 36
    expected_errors = 5


class TestBimasIslamPlugin(UnitPluginContract):
    mapper = BimasIslamMapper()
    sample = SAMPLES / "bimas_islam.xlsx"
    expected_people = 27
    expected_errors = 3


class TestTemplatePlugin(UnitPluginContract):
    mapper: ClassVar[UnitMapper] = _template_module().ContohMapper()
    sample = TEMPLATE / "tests" / "sample.csv"
    expected_errors = 3


# --- statuses: the table the bridge sets ------------------------------------------------------
@pytest.mark.parametrize(
    ("mapper_class", "sample", "unit"),
    [
        (GenericMapper, SAMPLES / "generic.csv", "SETJEN"),
        (PendisMapper, SAMPLES / "pendis.csv", "PENDIS"),
        (BimasIslamMapper, SAMPLES / "bimas_islam.xlsx", "BIMAS_ISLAM"),
        (_template_module().ContohMapper, TEMPLATE / "tests" / "sample.csv", "BIMAS_KRISTEN"),
    ],
)
def test_plugins_read_statuses_with_the_table_the_bridge_sets(
    tmp_path: Path, mapper_class: type[UnitMapper], sample: Path, unit: str
) -> None:
    mapper = mapper_class()
    baseline = mapper.read_roster(sample)
    serving = {"AKTIF", "PNS", "CPNS"}
    folder = tmp_path / "statuses"
    folder.mkdir()
    (folder / f"{unit}.csv").write_text(
        "status,active\n" + "".join(f"{s},left_unit\n" for s in serving), encoding="utf-8"
    )
    mapper.statuses = load_statuses(tmp_path)
    moved = {p.nip for p in mapper.read_roster(sample).people if p.left_unit}
    assert moved
    assert moved == {p.nip for p in baseline.people if p.unit == unit and p.status in serving}

    mapper.statuses = StatusTable({})
    nothing = mapper.read_roster(sample)
    assert nothing.people == []
    assert set(nothing.kept) >= {p.nip for p in baseline.people}
    assert all(isinstance(w, UnknownStatus) for w in nothing.warnings)


# --- pendis ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pendis() -> dict[int, Person | RowError]:
    result = PendisMapper().read_roster(SAMPLES / "pendis.csv")
    items: list[Person | RowError] = [*result.people, *result.errors]
    return {item.row: item for item in items}


@pytest.mark.parametrize(
    ("front", "name", "back", "written"),
    [
        ("Dr.", "Ahmad Fauzi", "M.Pd.I.", "Dr. Ahmad Fauzi, M.Pd.I."),
        ("", "Ahmad Fauzi", "", "Ahmad Fauzi"),
        (" Hj. ", " Siti ", ", S.Ag.", "Hj. Siti, S.Ag."),
        ("Drs.", "", "M.Si.", ""),
    ],
)
def test_pendis_puts_titles_back_around_the_name(
    front: str, name: str, back: str, written: str
) -> None:
    assert name_with_titles(front, name, back) == written


@pytest.mark.parametrize(
    ("pangkat", "golongan"),
    [("Penata Muda Tk. I (III/b)", "III/b"), ("Pembina ( IV/a )", "IV/a"), ("IX", "IX"), ("", "")],
)
def test_pendis_reads_the_golongan_in_brackets(pangkat: str, golongan: str) -> None:
    assert golongan_of(pangkat) == golongan


def test_pendis_person_from_the_sample(pendis: dict[int, Person | RowError]) -> None:
    first = pendis[2]
    assert isinstance(first, Person)
    assert first.display_name == "Dr. Arif Taufik Fadillah"
    assert (first.firstname, first.lastname) == ("Arif Taufik", "Fadillah")
    assert (first.unit, first.golongan, first.status, first.active) == (
        "PENDIS",
        "IV/a",
        "PNS",
        True,
    )


def test_pendis_dirty_rows(pendis: dict[int, Person | RowError]) -> None:
    raw = {row.row: row.values for row in read_rows(SAMPLES / "pendis.csv")}
    spaced = pendis[5]
    assert " " in raw[5]["nip"]
    assert isinstance(spaced, Person)
    assert spaced.nip == raw[5]["nip"].replace(" ", "")
    upper = pendis[7]
    assert isinstance(upper, Person)
    assert upper.email is not None
    assert upper.email == upper.email.lower()
    retired = pendis[15]
    assert isinstance(retired, Person)
    assert not retired.active
    mononym = pendis[14]
    assert isinstance(mononym, Person)
    assert mononym.firstname == mononym.lastname
    tmt = pendis[16]
    assert isinstance(tmt, Person)
    assert any("TMT Jabatan '31-02-2020'" in w for w in tmt.warnings)


def test_pendis_errors_name_the_simpeg_columns(pendis: dict[int, Person | RowError]) -> None:
    errors = {
        row: (item.column, item.reason)
        for row, item in pendis.items()
        if not isinstance(item, Person)
    }
    assert errors[40][0] == "NIP"
    assert "Excel" in errors[40][1]
    assert errors[41][0] == "NIP"
    assert errors[43] == ("Nama Lengkap", "The name is empty")
    assert errors[6][0] == errors[39][0] == "NIP"  # one NIP, two different rows


def test_pendis_semicolon_bom_and_windows_1252_read_alike(tmp_path: Path) -> None:
    text = (SAMPLES / "pendis.csv").read_text(encoding="utf-8-sig")
    text = text.replace("Arif Taufik", "Arif Taufík")
    cp1252 = tmp_path / "pendis-cp1252.csv"
    cp1252.write_bytes(text.encode("cp1252"))
    people = PendisMapper().read_roster(cp1252).people
    assert people[0].firstname == "Arif Taufík"
    assert len(people) == 36


# --- bimas_islam ----------------------------------------------------------------------------------
def test_bimas_islam_refuses_a_nip_excel_stored_as_a_number() -> None:
    result = BimasIslamMapper().read_roster(SAMPLES / "bimas_islam.xlsx")
    excel = next(e for e in result.errors if e.row == 6)
    assert excel.column == "NIP Baru"
    assert "Excel" in excel.reason


def test_bimas_islam_person_from_the_sample() -> None:
    result = BimasIslamMapper().read_roster(SAMPLES / "bimas_islam.xlsx")
    by_row = {p.row: p for p in result.people}
    assert by_row[2].display_name == "Dr. Nur'aini Hakim, S.Pd.I"
    assert (by_row[2].firstname, by_row[2].lastname) == ("Nur'aini", "Hakim")
    assert {p.unit for p in result.people} == {"BIMAS_ISLAM"}
    assert not by_row[12].active  # Meninggal
    assert by_row[8].firstname == by_row[8].lastname  # "Drs. H." and a one-word name


def test_bimas_islam_missing_column_names_it(tmp_path: Path) -> None:
    path = tmp_path / "wrong.csv"
    path.write_text("NIP,Nama\n197501012000031001,Ahmad\n", encoding="utf-8")
    with pytest.raises(MissingColumn, match="nip baru"):
        BimasIslamMapper().read_roster(path)


# --- generic --------------------------------------------------------------------------------------
def test_generic_takes_each_persons_unit_from_the_file() -> None:
    result = GenericMapper().read_roster(SAMPLES / "generic.csv")
    assert {p.unit for p in result.people} == {"SETJEN", "ITJEN", "BMBPSDM"}
    setjen = next(p for p in result.people if p.unit == "SETJEN")
    assert GenericMapper().cohorts_for(setjen) == [
        CohortSpec(idnumber="unit:SETJEN", name="Sekretariat Jenderal")
    ]


def test_generic_names_an_unknown_units_cohort_by_its_code() -> None:
    row = SourceRow(2, {"nip": "197501012000031001", "nama": "Ahmad Fauzi", "unit": "BARU"})
    person = GenericMapper().map_row("f.csv", row)
    assert isinstance(person, Person)
    assert GenericMapper().cohorts_for(person) == [CohortSpec(idnumber="unit:BARU", name="BARU")]


def test_the_same_cohort_name_from_generic_and_from_the_units_plugin() -> None:
    pendis = PendisMapper().read_roster(SAMPLES / "pendis.csv").people[0]
    assert GenericMapper().cohorts_for(pendis) == PendisMapper().cohorts_for(pendis)


# --- the template ---------------------------------------------------------------------------------
def test_the_template_shows_policy_overrides() -> None:
    mapper = TestTemplatePlugin.mapper
    people = mapper.read_roster(TEMPLATE / "tests" / "sample.csv").people
    mononym = next(p for p in people if p.display_name == "Tiurma")
    assert (mononym.firstname, mononym.lastname) == ("Tiurma", ".")
    assert mapper.auth == "oauth2"
    assert [c.idnumber for c in mapper.cohorts_for(mononym)] == [
        "unit:BIMAS_KRISTEN",
        "satker:BIMAS_KRISTEN:Kanwil Kemenag Prov. Sumatera Utara",
    ]


# --- the kit catches a plugin that breaks the contract ------------------------------------------
KIT_VICTIM = '''
from dataclasses import replace
from pathlib import Path

from moodle_bridge.roster.generic import parse_generic_row
from moodle_bridge.roster.sources import SourceRow
from moodle_bridge.testing import UnitPluginContract
from plugins.pendis import PendisMapper


class DeafMapper(PendisMapper):
    """Reads statuses with the shipped table whatever table the bridge sets."""

    def map_row(self, source_name, row):
        values = {"unit": self.code, **self.to_generic(row)}
        return parse_generic_row(source_name, SourceRow(row.row, values, row.extra))


class SloppyMapper(PendisMapper):
    """Puts people in the wrong unit and gives Moodle usernames it refuses."""

    def map_row(self, source_name, row):
        result = super().map_row(source_name, row)
        if hasattr(result, "unit"):
            return replace(result, unit="BIMAS_ISLAM")
        return result

    def username_for(self, person):
        return person.display_name


class TestSloppy(UnitPluginContract):
    mapper = SloppyMapper()
    sample = Path(SAMPLE)


class TestDeaf(UnitPluginContract):
    mapper = DeafMapper()
    sample = Path(SAMPLE)
'''


def test_the_kit_fails_a_plugin_that_breaks_the_contract(tmp_path: Path) -> None:
    module = tmp_path / "test_sloppy.py"
    module.write_text(KIT_VICTIM.replace("SAMPLE", repr(str(SAMPLES / "pendis.csv"))))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", str(module)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    failed = {line.split(" ")[1].split("::", 1)[1] for line in run.stdout.splitlines()
              if line.startswith("FAILED")}  # fmt: skip
    assert failed == {
        "TestSloppy::test_people_have_a_unit",
        "TestSloppy::test_usernames",
        "TestDeaf::test_statuses_come_from_the_table_the_bridge_sets",
    }, run.stdout
