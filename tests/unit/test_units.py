"""The unit-plugin contract: default hooks, the contract check, and discovery."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import sys
import tomllib
from pathlib import Path

import pytest

from moodle_bridge.errors import ConfigError
from moodle_bridge.roster.assessment import Assessment, parse_date, parse_level
from moodle_bridge.roster.person import Person, RowError, UnknownStatus
from moodle_bridge.roster.sources import MissingColumn, SourceRow
from moodle_bridge.roster.statuses import StatusTable
from moodle_bridge.units import (
    DEFAULT_PROFILE_FIELDS,
    ENTRY_POINT_GROUP,
    CohortSpec,
    GenericColumnsMapper,
    UnitMapper,
    check_contract,
    collect_roster,
    discover_units,
    installed_units,
    unit_cohort,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "plugins" / "samples"
NIP_A = "197501012000031001"
NIP_B = "198002022005012002"


def person(nip: str = NIP_A, **changes: object) -> Person:
    fields: dict[str, object] = {
        "nip": nip,
        "display_name": "Drs. Ahmad Fauzi, M.Si.",
        "firstname": "Ahmad",
        "lastname": "Fauzi",
        "email": "ahmad@kemenag.go.id",
        "unit": "TESTUNIT",
        "satker": "MAN 1 Kota Bandung",
        "jabatan": "Guru",
        "golongan": "III/b",
        "source": "roster.csv",
        "row": 2,
    }
    fields.update(changes)
    return Person(**fields)


# --- mappers used by the tests (the entry points below point at them) ----------------------------
class GoodMapper(UnitMapper):
    code = "TESTUNIT"
    name = "Unit Uji"

    def map_row(self, source_name: str, row: SourceRow) -> Person | RowError:
        nip = row.values.get("nip", "")
        if not nip.isdigit():
            return RowError(source=source_name, row=row.row, column="nip", reason="bad NIP")
        return person(nip, source=source_name, row=row.row, email=row.values.get("email") or None)

    def golongan_label(self, golongan: str) -> str:
        """A public helper whose name is nothing like a hook: allowed."""
        return golongan.upper()


class OtherGoodMapper(GoodMapper):
    code = "OTHERUNIT"


class SameCodeMapper(GoodMapper):
    pass


class Misspelt(GoodMapper):
    def map_rows(self, source_name: str, rows: list[SourceRow]) -> None:
        """Meant map_row: would be silently ignored."""

    def cohort_for(self, person: Person) -> list[CohortSpec]:
        return []


class PrivateHelper(GoodMapper):
    def _map_rows(self) -> None:
        """Private helpers may be called anything."""


class WrongSignature(GoodMapper):
    def map_row(self, row: SourceRow) -> Person | RowError:  # type: ignore[override]
        raise NotImplementedError


class NoCode(GoodMapper):
    code = ""


class LowerCaseCode(GoodMapper):
    code = "pendis"


class BadSettings(GoodMapper):
    name = ""
    auth = ""
    name_rule = "invent"  # type: ignore[assignment]
    any_unit = "yes"  # type: ignore[assignment]
    # The vocabulary as code, the way plugins once extended it: now a status file's job.
    statuses = {"CUTI": True}  # type: ignore[assignment]  # noqa: RUF012


class UpperCaseColumns(GoodMapper):
    required_columns = ("NIP",)


class HookNotCallable(GoodMapper):
    cohorts_for = "unit:X"  # type: ignore[assignment]


class Abstract(UnitMapper):
    code = "ABSTRACT"
    name = "No map_row"


class NotAMapper:
    code = "NOPE"


class FailsToCreate(GoodMapper):
    code = "FAILS"

    def __init__(self) -> None:
        msg = "needs a config file"
        raise RuntimeError(msg)


GOOD_INSTANCE = OtherGoodMapper()


def ep(name: str, target: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name, f"{__name__}:{target}", ENTRY_POINT_GROUP)


def raw(target: str, name: str = "x") -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name, target, ENTRY_POINT_GROUP)


# --- default hooks --------------------------------------------------------------------------------
def test_default_username_is_the_nip() -> None:
    assert GoodMapper().username_for(person()) == NIP_A


def test_default_auth_and_name_rule() -> None:
    assert GoodMapper().auth == "manual"
    assert GoodMapper().name_rule == "repeat"


def test_default_profile_fields() -> None:
    assert GoodMapper().profile_fields(person()) == {
        "unit": "TESTUNIT",
        "satker": "MAN 1 Kota Bandung",
        "jabatan": "Guru",
        "golongan": "III/b",
    }
    assert GoodMapper().profile_fields(
        person(), DEFAULT_PROFILE_FIELDS
    ) == GoodMapper().profile_fields(person())


def test_profile_fields_follow_the_configured_short_names() -> None:
    fields = GoodMapper().profile_fields(person(satker=""), {"unit": "eselon1", "satker": "wu"})
    # Left-out attributes are not filled; an empty value is sent, so Moodle clears the field.
    assert fields == {"eselon1": "TESTUNIT", "wu": ""}


def test_default_cohort_is_the_unit_cohort() -> None:
    assert GoodMapper().cohorts_for(person()) == [
        CohortSpec(idnumber="unit:TESTUNIT", name="Unit Uji")
    ]
    assert unit_cohort("PENDIS", "Pendis") == CohortSpec(idnumber="unit:PENDIS", name="Pendis")


def test_default_cohort_of_a_person_of_another_unit_is_named_by_code() -> None:
    assert GoodMapper().cohorts_for(person(unit="ITJEN")) == [
        CohortSpec(idnumber="unit:ITJEN", name="ITJEN")
    ]


# --- reading --------------------------------------------------------------------------------------
def write(tmp_path: Path, text: str, name: str = "roster.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_default_read_roster_maps_every_row(tmp_path: Path) -> None:
    path = write(tmp_path, f"nip,email\n{NIP_A},a@x.id\nxx,\n\n{NIP_B},b@x.id\n")
    result = GoodMapper().read_roster(path)
    assert [p.row for p in result.people] == [2, 5]
    assert [(e.row, e.column, e.source) for e in result.errors] == [(3, "nip", "roster.csv")]
    assert result.rows == 3


def test_default_read_roster_settles_duplicates_and_shared_emails(tmp_path: Path) -> None:
    nip_c = "199001012015011003"
    text = (
        f"nip,email\n{NIP_A},a@x.id\n{NIP_A},a@x.id\n"  # identical: counted once
        f"{NIP_B},b@x.id\n{NIP_B},other@x.id\n"  # conflicting: both refused
        f"{nip_c},a@x.id\n"  # shares an email with row 2
    )
    result = GoodMapper().read_roster(write(tmp_path, text))
    assert [p.row for p in result.people] == [2, 6]
    assert sorted(e.row for e in result.errors) == [4, 5]
    assert all("different data" in e.reason for e in result.errors)
    repeats = [w for w in result.warnings if "repeats" in w.reason]
    assert [w.row for w in repeats] == [3]
    shared = [w for w in result.warnings if w.column == "email"]
    assert sorted(w.row for w in shared) == [2, 6]


def test_missing_required_column_stops_with_its_name(tmp_path: Path) -> None:
    class Strict(GoodMapper):
        required_columns = ("nip", "nama lengkap")

    with pytest.raises(MissingColumn, match="nama lengkap") as caught:
        Strict().read_roster(write(tmp_path, f"nip\n{NIP_A}\n"))
    assert isinstance(caught.value, ConfigError)


class Renaming(GenericColumnsMapper):
    code = "RENAMED"
    name = "Renamed columns"
    column_names = {"nip": "Nomor Induk", "nama": "Nama", "email": "Surel"}  # noqa: RUF012

    def to_generic(self, row: SourceRow) -> dict[str, str]:
        return {
            "nip": row.values["nomor induk"],
            "nama": row.values["nama"],
            "email": row.values.get("surel", ""),
        }


def test_generic_columns_mapper_names_the_files_columns(tmp_path: Path) -> None:
    text = (
        "Nomor Induk,Nama,Surel\n"
        f"{NIP_A},Drs. Ahmad Fauzi,\n"
        "1.97501E+17,Siti,\n"
        f"{NIP_B},,\n"
        "199001012015011003,Rina Wati,not-an-email\n"
        f"{NIP_A},Ahmad Lain,\n"
    )
    result = Renaming().read_roster(write(tmp_path, text))
    assert result.people == []
    columns = {e.row: e.column for e in result.errors}
    assert columns == {2: "Nomor Induk", 3: "Nomor Induk", 4: "Nama", 5: "Surel", 6: "Nomor Induk"}


def test_generic_columns_mapper_sets_the_unit_code() -> None:
    row = SourceRow(2, {"nomor induk": NIP_A, "nama": "Ahmad Fauzi"})
    result = Renaming().map_row("f.csv", row)
    assert isinstance(result, Person)
    assert (result.unit, result.firstname, result.lastname) == ("RENAMED", "Ahmad", "Fauzi")


def test_collect_roster_renames_the_columns_of_its_findings() -> None:
    people = [person(row=2, email="x@y.id"), person(NIP_B, row=3, email="x@y.id")]
    result = collect_roster("f.csv", people, column_names={"email": "Surel"})
    assert {w.column for w in result.warnings} == {"Surel"}


def test_the_generic_columns_mapper_reads_statuses_with_the_table_it_is_given(
    tmp_path: Path,
) -> None:
    text = (
        "Nomor Induk,Nama,Surel,Keterangan\n"
        f"{NIP_A},Ahmad Fauzi,,Honorer\n"
        f"{NIP_B},Siti Rahmah,,SKORSING\n"
        "199001012015011003,Rina Wati,bukan email,\n"
        "1.97501E+17,Siti,,\n"
    )

    class WithStatus(Renaming):
        column_names = {**Renaming.column_names, "status": "Keterangan"}  # noqa: RUF012

        def to_generic(self, row: SourceRow) -> dict[str, str]:
            return {**super().to_generic(row), "status": row.values["keterangan"]}

    mapper = WithStatus()
    shipped = mapper.read_roster(write(tmp_path, text))
    assert [(p.nip, p.active) for p in shipped.people] == [(NIP_A, True)]
    mapper.statuses = StatusTable({"HONORER": "yes"}, {"RENAMED": {"honorer": "no"}})
    result = mapper.read_roster(write(tmp_path, text))
    assert [(p.nip, p.active) for p in result.people] == [(NIP_A, False)]
    assert set(result.kept) == {NIP_B, "199001012015011003"}
    assert (result.kept[NIP_B].column, result.kept["199001012015011003"].column) == (
        "Keterangan",
        "Surel",
    )
    assert isinstance(result.kept[NIP_B], UnknownStatus)
    assert [w.row for w in result.warnings] == [3]
    assert result.untied == 1


def test_read_assessments_generic_layout() -> None:
    assessments, errors = GoodMapper().read_assessments(SAMPLES / "assessments.csv")
    assert len(assessments) == 12
    first = assessments[0]
    assert isinstance(first, Assessment)
    assert (first.row, first.level, first.date) == (2, 1, dt.date(2024, 3, 15))
    assert {e.column for e in errors} == {"level", "tanggal", "nip", "kompetensi"}
    assert all(e.row > 1 and e.reason for e in errors)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15-03-2024", dt.date(2024, 3, 15)),
        ("5-3-2024", dt.date(2024, 3, 5)),
        ("2024-03-15", dt.date(2024, 3, 15)),
        ("2024-03-15 00:00:00", dt.date(2024, 3, 15)),
        ("31-02-2024", None),
        ("2024/03/15", None),
        ("03-15-2024", None),
        ("", None),
    ],
)
def test_parse_date(text: str, expected: dt.date | None) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1),
        ("5", 5),
        ("3.0", 3),
        (" Menengah ", 3),
        ("ahli", 5),
        ("0", None),
        ("6", None),
        ("", None),
        ("2.5", None),
    ],
)
def test_parse_level(text: str, expected: int | None) -> None:
    assert parse_level(text) == expected


# --- the contract check ---------------------------------------------------------------------------
def test_a_good_mapper_keeps_the_contract() -> None:
    assert check_contract(GoodMapper()) == []
    assert check_contract(PrivateHelper()) == []


def test_misspelt_hooks_are_refused_by_name() -> None:
    problems = check_contract(Misspelt())
    assert any("'map_rows'" in p and "'map_row'" in p for p in problems), problems
    assert any("'cohort_for'" in p and "'cohorts_for'" in p for p in problems), problems


def test_a_hook_with_the_wrong_arguments_is_refused() -> None:
    problems = check_contract(WrongSignature())
    assert len(problems) == 1
    assert "map_row" in problems[0]
    assert "map_row(source_name, row)" in problems[0]


def test_required_columns_must_be_written_as_headers_reach_the_mapper() -> None:
    [problem] = check_contract(UpperCaseColumns())
    assert problem.startswith("required_columns must be a tuple of lower-case header names")


def test_a_hook_that_is_not_callable_is_refused() -> None:
    assert any("cohorts_for must be a method" in p for p in check_contract(HookNotCallable()))


@pytest.mark.parametrize("mapper", [NoCode(), LowerCaseCode()])
def test_the_code_must_be_a_unit_code(mapper: UnitMapper) -> None:
    assert any(p.startswith("code must be") for p in check_contract(mapper))


def test_bad_settings_are_each_reported() -> None:
    problems = " | ".join(check_contract(BadSettings()))
    for setting in ("name must", "auth must", "name_rule must", "any_unit must"):
        assert setting in problems
    assert "statuses must be a StatusTable or None, got dict" in problems
    assert "mappings/statuses/<UNIT>.csv" in problems


def test_a_status_table_set_by_the_bridge_keeps_the_contract() -> None:
    mapper = GoodMapper()
    mapper.statuses = StatusTable({"AKTIF": "yes"})
    assert check_contract(mapper) == []


# --- discovery ------------------------------------------------------------------------------------
def test_discovery_loads_classes_and_instances() -> None:
    result = discover_units([ep("good", "GoodMapper"), ep("instance", "GOOD_INSTANCE")])
    assert result.problems == []
    assert set(result.units) == {"good", "instance"}
    assert isinstance(result.units["good"], GoodMapper)
    assert result.units["instance"] is GOOD_INSTANCE
    assert [u.name for u in result.installed] == ["good", "instance"]
    assert result.require("good") is result.units["good"]


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("Misspelt", "did you mean 'map_row'"),
        ("WrongSignature", "cannot be called as map_row(source_name, row)"),
        ("Abstract", "does not implement map_row"),
        ("NotAMapper", "NotAMapper is not a UnitMapper subclass"),
        ("FailsToCreate", "RuntimeError: needs a config file"),
        ("NoSuchThing", "AttributeError"),
        ("NoCode", "code must be"),
    ],
)
def test_a_broken_plugin_is_reported_and_skipped(target: str, reason: str) -> None:
    result = discover_units([ep("broken", target), ep("good", "GoodMapper")])
    assert list(result.units) == ["good"]
    [problem] = result.problems
    assert problem.name == "broken"
    assert reason in problem.reason
    broken = next(u for u in result.installed if u.name == "broken")
    assert broken.problem == problem.reason
    with pytest.raises(ConfigError, match="'broken' is installed but unusable"):
        result.require("broken")


def test_a_plugin_whose_module_is_missing_is_reported() -> None:
    result = discover_units([raw("no_such_module_xyz:Mapper", "missing")])
    assert result.units == {}
    assert "ModuleNotFoundError" in result.problems[0].reason


@pytest.mark.parametrize(
    "body", ["raise RuntimeError('boom at import')", "import sys\nsys.exit(3)"]
)
def test_a_plugin_that_fails_on_import_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str
) -> None:
    module = f"broken_plugin_{abs(hash(body))}"
    (tmp_path / f"{module}.py").write_text(body + "\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    result = discover_units([raw(f"{module}:Mapper", "broken"), ep("good", "GoodMapper")])
    assert list(result.units) == ["good"]
    assert result.problems[0].name == "broken"
    assert result.problems[0].reason.startswith(f"cannot load {module}:Mapper")
    sys.modules.pop(module, None)


def test_a_second_plugin_with_the_same_code_is_refused() -> None:
    result = discover_units([ep("first", "GoodMapper"), ep("second", "SameCodeMapper")])
    assert list(result.units) == ["first"]
    assert result.problems[0].name == "second"
    assert "unit code 'TESTUNIT' is already provided by plugin 'first'" in result.problems[0].reason


def test_a_second_plugin_with_the_same_name_is_refused() -> None:
    result = discover_units([ep("same", "GoodMapper"), ep("same", "OtherGoodMapper")])
    assert isinstance(result.units["same"], GoodMapper)
    assert not isinstance(result.units["same"], OtherGoodMapper)
    assert "taken by another plugin" in result.problems[0].reason


def test_require_names_what_is_installed() -> None:
    result = discover_units([ep("good", "GoodMapper")])
    with pytest.raises(ConfigError, match=r"no unit plugin called 'nope' \(installed: good\)"):
        result.require("nope")


def test_the_built_in_plugins_are_registered_in_pyproject() -> None:
    """The project's own table loads cleanly (no install needed to check this)."""
    table = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    registered = table["project"]["entry-points"][ENTRY_POINT_GROUP]
    assert set(registered) == {"generic", "pendis", "bimas_islam"}
    result = discover_units(raw(target, name) for name, target in registered.items())
    assert result.problems == []
    assert {name: unit.code for name, unit in result.units.items()} == {
        "generic": "GENERIC",
        "pendis": "PENDIS",
        "bimas_islam": "BIMAS_ISLAM",
    }


def test_installed_units_lists_the_built_ins_with_their_distribution() -> None:
    """Needs the package installed (``pip install -e .``) after the entry points were added."""
    units = {unit.name: unit for unit in installed_units()}
    for name in ("generic", "pendis", "bimas_islam"):
        assert name in units, "reinstall moodle-bridge (pip install -e .) to register plugins"
        assert units[name].problem is None
        assert units[name].distribution == "moodle-bridge"
        assert units[name].version == importlib.metadata.version("moodle-bridge")
