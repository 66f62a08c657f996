"""Desired state: people to account records, with Moodle's rules checked before sending."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from moodle_bridge.roster.person import Person
from moodle_bridge.sync.desired import AccountPolicy, build_desired
from moodle_bridge.units import CohortSpec, unit_cohort


class Rules:
    auth = "manual"

    def __init__(self, usernames: Mapping[str, str] | None = None) -> None:
        self.usernames = usernames or {}

    def username_for(self, person: Person) -> str:
        return self.usernames.get(person.nip, person.nip)

    def profile_fields(self, person: Person, shortnames: Mapping[str, str]) -> dict[str, str]:
        return {shortnames["unit"]: person.unit} if "unit" in shortnames else {}

    def cohorts_for(self, person: Person) -> list[CohortSpec]:
        return [unit_cohort(person.unit, person.unit)]


def person(i: int, email: str | None = None, active: bool = True) -> Person:
    return Person(nip=f"19800101200501{1 + i % 2}{i:03d}", display_name=f"Nur {i}",
                  firstname="Nur", lastname=f"Aini{i}", email=email, unit="PENDIS",
                  active=active, source="r.csv", row=i + 2)


def test_records_carry_the_managed_fields():
    state = build_desired([person(1, "nur@kemenag.example")], Rules(), AccountPolicy())
    [account] = state.accounts.values()
    assert account.record == {
        "username": account.nip, "idnumber": account.nip, "firstname": "Nur",
        "lastname": "Aini1", "email": "nur@kemenag.example", "auth": "manual",
        "profile_field_unit": "PENDIS",
    }
    assert account.cohorts == {"unit:PENDIS"}


def test_missing_and_shared_emails_get_unique_placeholders():
    people = [person(1), person(2, "same@kemenag.example"), person(3, "same@kemenag.example")]
    state = build_desired(people, Rules(), AccountPolicy(placeholder_domain="x.invalid"))
    emails = [a.record["email"] for a in state.accounts.values()]
    assert emails == [f"{p.nip}@x.invalid" for p in people]
    assert [w.row for w in state.warnings] == [4, 5]


def test_usernames_moodle_refuses_are_row_errors_before_sending():
    people = [person(1), person(2), person(3)]
    rules = Rules({people[0].nip: "Nur Aini", people[2].nip: people[1].nip})
    state = build_desired(people, rules, AccountPolicy())
    assert list(state.accounts) == [people[1].nip]
    assert [(e.row, e.column) for e in state.errors] == [(3, "username"), (5, "username")]
    assert "same username" in state.errors[1].reason


def test_inactive_people_belong_to_no_cohort():
    state = build_desired([person(1, active=False)], Rules(), AccountPolicy())
    assert state.accounts[person(1).nip].cohorts == frozenset()
    assert state.cohort_names == {}


def test_units_csv_names_and_keys_the_unit_cohorts(tmp_path):
    from moodle_bridge.mappings import load_unit_cohorts
    from moodle_bridge.units import discover_units

    (tmp_path / "units.csv").write_text(
        "unit,annual_cap,name,cohort_idnumber\n"
        "ITJEN,3,Inspektorat,unit:INSPEKTORAT\nSETJEN,4,,\n",
        encoding="utf-8",
    )
    cohorts = load_unit_cohorts(tmp_path)
    assert cohorts["ITJEN"] == ("unit:INSPEKTORAT", "Inspektorat")
    assert cohorts["SETJEN"] == ("unit:SETJEN", "")
    unit = discover_units().require("generic")
    sample = Path(__file__).parents[2] / "plugins" / "samples" / "generic.csv"
    people = unit.read_roster(sample).people
    state = build_desired(people, unit, AccountPolicy(unit_cohorts=cohorts))
    by_unit = {a.unit: a.cohorts for a in state.accounts.values()}
    assert by_unit["ITJEN"] == frozenset({"unit:INSPEKTORAT"})
    assert state.cohort_names["unit:INSPEKTORAT"] == "Inspektorat"
    # No name in units.csv: the plugin's name for the unit stays.
    assert state.cohort_names["unit:SETJEN"] == "Sekretariat Jenderal"


def test_two_units_cannot_share_a_cohort(tmp_path):
    import pytest

    from moodle_bridge.mappings import BrokenMappings, load_unit_cohorts

    (tmp_path / "units.csv").write_text(
        "unit,cohort_idnumber\nPENDIS,unit:X\nSETJEN,unit:X\n", encoding="utf-8"
    )
    with pytest.raises(BrokenMappings, match="share the cohort unit:X"):
        load_unit_cohorts(tmp_path)
