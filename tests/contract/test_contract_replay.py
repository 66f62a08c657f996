"""Every recorded case, replayed in order against the emulator, must answer as Moodle did."""

from __future__ import annotations

import json

import pytest

from tests.contract.replay import (
    RECORDINGS,
    Outcome,
    apart,
    case_files,
    case_ids,
    replay,
    replay_apart,
)

CASES = case_ids(RECORDINGS)
#: The cases of the recordings made apart from the main sequence (``_apart.json``).
APART_CASES = [case_id for recording in apart(RECORDINGS) for case_id in recording.case_ids()]


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome]:
    return {o.case_id: o for o in replay(RECORDINGS)}


@pytest.fixture(scope="module")
def apart_outcomes() -> dict[str, Outcome]:
    return {o.case_id: o for o in replay_apart(RECORDINGS)}


def test_every_recorded_case_is_replayed() -> None:
    assert len(CASES) == 242
    assert len(APART_CASES) == 9
    # A recording that is in neither list would be a truth nobody checks.
    replayed = {path.name for path in case_files(RECORDINGS)} | {
        recording.path.name for recording in apart(RECORDINGS)
    }
    recordings = {
        path.name
        for path in RECORDINGS.glob("*.json")
        if "cases" in json.loads(path.read_text(encoding="utf-8"))
    }
    assert recordings == replayed


def assert_answers_alike(outcome: Outcome) -> None:
    # Serialised with key order kept: Moodle orders keys by the function's description.
    expected = json.dumps(outcome.expected, indent=1, ensure_ascii=False)
    actual = json.dumps(outcome.actual, indent=1, ensure_ascii=False)
    assert actual == expected


@pytest.mark.parametrize("case_id", CASES)
def test_recorded_case(outcomes: dict[str, Outcome], case_id: str) -> None:
    assert_answers_alike(outcomes[case_id])


@pytest.mark.parametrize("case_id", APART_CASES)
def test_recorded_case_made_apart(apart_outcomes: dict[str, Outcome], case_id: str) -> None:
    assert_answers_alike(apart_outcomes[case_id])
