"""The test kit for unit-plugin authors: the contract every unit plugin must keep, as pytest tests.

Subclass :class:`UnitPluginContract` in your plugin's test suite and say which mapper and
which sample file to check; pytest then runs every check below against them::

    from pathlib import Path

    from moodle_bridge.testing import UnitPluginContract
    from my_unit_plugin import MyMapper

    class TestMyPlugin(UnitPluginContract):
        mapper = MyMapper()
        sample = Path(__file__).parent / "sample.csv"
        assessment_sample = None  # or a file in the plugin's assessment layout
        expected_people = 30      # optional: pin what the sample holds
        expected_errors = 4

The sample should look like a real export of the unit (synthetic people only) and hold the
dirty rows the unit's HR data really has. The kit also checks that the plugin reads statuses
with the table the bridge gives it (:attr:`~moodle_bridge.units.UnitMapper.statuses`) and
names the NIP of every row it cannot use. A test fails with a message naming the row. Override
:meth:`UnitPluginContract.source_rows` when the sample is not a file
:func:`~moodle_bridge.roster.sources.read_rows` can read.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pytest

from moodle_bridge.roster.assessment import Assessment
from moodle_bridge.roster.generic import RosterResult
from moodle_bridge.roster.names import MAX_NAME_PART
from moodle_bridge.roster.nip import normalise_nip
from moodle_bridge.roster.person import Person, RowError, UnknownStatus
from moodle_bridge.roster.sources import SourceRow, read_rows
from moodle_bridge.roster.statuses import StatusTable
from moodle_bridge.units import DEFAULT_PROFILE_FIELDS, CohortSpec, UnitMapper, check_contract

__all__ = ["UnitPluginContract"]

# Moodle's default username rule (without $CFG->extendedusernamechars).
_USERNAME = re.compile(r"[a-z0-9_.@-]+")
_UNIT_CODE = re.compile(r"[A-Z][A-Z0-9_]*")


def _where(item: Person | RowError | Assessment) -> str:
    return f"{item.source} row {item.row}"


class UnitPluginContract:
    """Pytest checks of one unit plugin against one sample file. Subclass it as ``Test...``."""

    #: The plugin under test.
    mapper: ClassVar[UnitMapper]
    #: A roster export in the plugin's format.
    sample: ClassVar[Path]
    #: An assessment file in the plugin's format; None skips the assessment checks.
    assessment_sample: ClassVar[Path | None] = None
    #: How many people and row errors the sample gives, when pinned.
    expected_people: ClassVar[int | None] = None
    expected_errors: ClassVar[int | None] = None
    #: The profile-field short names to ask :meth:`UnitMapper.profile_fields` for.
    profile_shortnames: ClassVar[Mapping[str, str]] = DEFAULT_PROFILE_FIELDS
    #: False only for a plugin whose people never go through the status table.
    reads_statuses: ClassVar[bool] = True

    # --- fixtures and helpers -----------------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def roster(cls) -> RosterResult:
        """The sample, read once per test class."""
        return cls.mapper.read_roster(cls.sample)

    def source_rows(self) -> list[SourceRow]:
        """The sample's non-empty data rows, as the default reader sees them."""
        return list(read_rows(self.sample))

    # --- the plugin itself ------------------------------------------------------------------------
    def test_keeps_the_contract(self) -> None:
        """Code, name, settings and hook signatures are right; no misspelt hook."""
        assert check_contract(self.mapper) == []

    def test_sample_exists(self) -> None:
        assert self.sample.is_file(), f"no sample file at {self.sample}"

    # --- reading the sample -------------------------------------------------------------------
    def test_sample_gives_people(self, roster: RosterResult) -> None:
        assert roster.people, "the sample gave nobody: is the format right?"
        if self.expected_people is not None:
            assert len(roster.people) == self.expected_people
        if self.expected_errors is not None:
            assert len(roster.errors) == self.expected_errors, [
                f"{_where(e)}: {e.reason}" for e in roster.errors
            ]

    def test_every_row_is_accounted_for(self, roster: RosterResult) -> None:
        """Each data row is a person, a row error, or a duplicate counted once (a warning)."""
        rows = {row.row for row in self.source_rows()}
        people = {person.row for person in roster.people}
        errors = {error.row for error in roster.errors}
        warned = {warning.row for warning in roster.warnings}
        assert not people & errors, f"rows both accepted and refused: {sorted(people & errors)}"
        assert rows - people - errors - warned == set(), "rows that vanished"
        assert (people | errors) - rows == set(), "rows that are not in the file"
        assert roster.rows == len(rows)

    def test_map_row_answers_every_row(self) -> None:
        """``map_row`` gives a Person or a RowError carrying the row's file and number."""
        for row in self.source_rows():
            result = self.mapper.map_row(self.sample.name, row)
            assert isinstance(result, Person | RowError), f"row {row.row}: got {result!r}"
            assert (result.source, result.row) == (self.sample.name, row.row), (
                f"row {row.row} came back as {_where(result)}"
            )

    def test_row_errors_are_explained(self, roster: RosterResult) -> None:
        for error in [*roster.errors, *roster.warnings]:
            assert error.source == self.sample.name, _where(error)
            assert error.row >= 1, _where(error)
            assert error.reason.strip(), f"{_where(error)}: no reason given"

    def test_people_have_valid_unique_nips(self, roster: RosterResult) -> None:
        seen: dict[str, int] = {}
        for person in roster.people:
            checked = normalise_nip(person.nip)
            assert checked.nip == person.nip, f"{_where(person)}: NIP not normalised or invalid"
            assert person.nip not in seen, f"{_where(person)}: NIP also on row {seen[person.nip]}"
            seen[person.nip] = person.row

    def test_people_have_a_unit(self, roster: RosterResult) -> None:
        for person in roster.people:
            assert _UNIT_CODE.fullmatch(person.unit), f"{_where(person)}: unit {person.unit!r}"
            if not self.mapper.any_unit:
                assert person.unit == self.mapper.code, f"{_where(person)}: unit {person.unit}"

    def test_people_have_moodle_names(self, roster: RosterResult) -> None:
        for person in roster.people:
            for part in (person.firstname, person.lastname):
                assert part.strip(), f"{_where(person)}: empty name part"
                assert len(part) <= MAX_NAME_PART, f"{_where(person)}: name part too long"
            assert person.display_name.strip(), f"{_where(person)}: no display name"

    def test_unused_rows_keep_their_people(self, roster: RosterResult) -> None:
        """Every row that gives no person names its NIP in ``kept`` when it has one, or
        counts in ``untied``; nobody is both kept and accepted."""
        unknown = [w for w in roster.warnings if isinstance(w, UnknownStatus)]
        unused = [*roster.errors, *unknown]
        accepted = {person.nip for person in roster.people}
        assert not accepted & set(roster.kept), "people both accepted and kept as they are"
        named = {error.nip for error in unused if error.nip is not None}
        assert named == set(roster.kept), "kept must hold the NIP of every unused row"
        assert roster.untied == sum(error.nip is None for error in roster.errors)
        for error in unused:
            if error.nip is not None:
                assert normalise_nip(error.nip).nip == error.nip, f"{_where(error)}: bad NIP"

    def test_left_unit_means_not_active(self, roster: RosterResult) -> None:
        for person in roster.people:
            assert not (person.left_unit and person.active), f"{_where(person)}: left and active"

    def test_statuses_come_from_the_table_the_bridge_sets(self, roster: RosterResult) -> None:
        """With a table that knows no status, nobody is accepted: each row is set aside with
        an :class:`~moodle_bridge.roster.person.UnknownStatus`, or refused."""
        if not self.reads_statuses:
            pytest.skip("this plugin's people do not go through the status table")
        mapper = copy.copy(self.mapper)
        mapper.statuses = StatusTable({})
        unknown = mapper.read_roster(self.sample)
        assert unknown.people == [], f"{_where(unknown.people[0])}: status table ignored"
        assert set(unknown.kept) >= {person.nip for person in roster.people}

    def test_reading_is_deterministic(self, roster: RosterResult) -> None:
        assert self.mapper.read_roster(self.sample) == roster

    # --- the policy hooks ---------------------------------------------------------------------
    def test_usernames(self, roster: RosterResult) -> None:
        """Each username is a valid Moodle username, unique, and the same on every call."""
        seen: dict[str, int] = {}
        for person in roster.people:
            username = self.mapper.username_for(person)
            assert isinstance(username, str), f"{_where(person)}: username is not a str"
            assert _USERNAME.fullmatch(username), f"{_where(person)}: username {username!r}"
            assert username == self.mapper.username_for(person), _where(person)
            assert username not in seen, f"{_where(person)}: username also on row {seen[username]}"
            seen[username] = person.row

    def test_auth(self) -> None:
        assert isinstance(self.mapper.auth, str)
        assert self.mapper.auth.strip()

    def test_profile_fields(self, roster: RosterResult) -> None:
        allowed = set(self.profile_shortnames.values())
        for person in roster.people:
            fields = self.mapper.profile_fields(person, self.profile_shortnames)
            assert isinstance(fields, dict), _where(person)
            for key, value in fields.items():
                assert isinstance(key, str), f"{_where(person)}: field name {key!r}"
                assert isinstance(value, str), f"{_where(person)}: field {key} = {value!r}"
                assert key in allowed, f"{_where(person)}: field {key!r} is not configured"
            assert fields == self.mapper.profile_fields(person, self.profile_shortnames)

    def test_profile_fields_follow_the_settings(self, roster: RosterResult) -> None:
        """Renamed or left-out short names are honoured."""
        renamed = {key: f"bridge_{value}" for key, value in self.profile_shortnames.items()}
        for person in roster.people[:5]:
            assert set(self.mapper.profile_fields(person, renamed)) <= set(renamed.values())
            assert self.mapper.profile_fields(person, {}) == {}

    def test_cohorts(self, roster: RosterResult) -> None:
        for person in roster.people:
            cohorts = self.mapper.cohorts_for(person)
            assert isinstance(cohorts, list), _where(person)
            assert cohorts, f"{_where(person)}: in no cohort at all"
            for cohort in cohorts:
                assert isinstance(cohort, CohortSpec), f"{_where(person)}: {cohort!r}"
                assert cohort.idnumber.strip(), f"{_where(person)}: cohort without idnumber"
                assert cohort.name.strip(), f"{_where(person)}: cohort without name"
            idnumbers = [cohort.idnumber for cohort in cohorts]
            assert len(set(idnumbers)) == len(idnumbers), f"{_where(person)}: cohort twice"
            assert cohorts == self.mapper.cohorts_for(person), _where(person)

    # --- assessments --------------------------------------------------------------------------
    def test_assessments(self) -> None:
        if self.assessment_sample is None:
            pytest.skip("no assessment sample for this plugin")
        assessments, errors = self.mapper.read_assessments(self.assessment_sample)
        assert assessments, "the assessment sample gave no assessment"
        for assessment in assessments:
            assert isinstance(assessment, Assessment), repr(assessment)
            assert 1 <= assessment.level <= 5, _where(assessment)
            assert normalise_nip(assessment.nip).nip == assessment.nip, _where(assessment)
            assert assessment.competency.strip(), _where(assessment)
            assert assessment.row >= 1, _where(assessment)
        for error in errors:
            assert isinstance(error, RowError), repr(error)
            assert error.row >= 1, _where(error)
            assert error.reason.strip(), _where(error)
        again = self.mapper.read_assessments(self.assessment_sample)
        assert again == (assessments, errors)
