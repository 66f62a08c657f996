"""Every recorded case, replayed in order against the emulator, must answer as Moodle did."""

from __future__ import annotations

import json

import pytest

from tests.contract.replay import RECORDINGS, Outcome, case_ids, replay

CASES = case_ids(RECORDINGS)


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome]:
    return {o.case_id: o for o in replay(RECORDINGS)}


def test_every_recorded_case_is_replayed() -> None:
    assert len(CASES) == 242


@pytest.mark.parametrize("case_id", CASES)
def test_recorded_case(outcomes: dict[str, Outcome], case_id: str) -> None:
    outcome = outcomes[case_id]
    # Serialised with key order kept: Moodle orders keys by the function's description.
    expected = json.dumps(outcome.expected, indent=1, ensure_ascii=False)
    actual = json.dumps(outcome.actual, indent=1, ensure_ascii=False)
    assert actual == expected
