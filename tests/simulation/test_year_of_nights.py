"""Issue 9's acceptance: a year of nightly runs, every unit on its own schedule, one state.

Three units export their rosters on their own days (PENDIS every second day, BIMAS_ISLAM on
Mondays and Thursdays, SETJEN on Wednesdays); each export is synced that night with the
assessments, against the emulator over HTTP. People move between units with an HR lag of 0-10
days, take leave, go on CLTN and come back, retire and die; 0.5% of rows carry a bad cell; new
people are hired. The operator slips: ``sync --emulator`` with the real state configured, a run
without assessments, an old file synced again, two runs at once, and the real state pointed at
another Moodle. After every run the invariants (:mod:`tests.simulation.invariants`) are checked
from the emulator's state. ``MOODLE_BRIDGE_LONG_SIMULATION=1`` runs the long version.
"""

from __future__ import annotations

import pytest

from tests.simulation.driver import NIGHT_SLIPS, Verdicts, year_of_nights
from tests.simulation.world import Scale

INVARIANTS = (
    "active_not_suspended",
    "unit_follows_person",
    "one_account",
    "suspension_explained",
    "other_site_untouched",
    "gaps_need_assessments",
    "one_run_at_a_time",
    "history_kept",
    "runs_apply",
)


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Verdicts:
    return year_of_nights(tmp_path_factory.mktemp("nights"), Scale.from_env())


@pytest.mark.parametrize("invariant", INVARIANTS)
def test_the_invariant_holds_after_every_run(nights: Verdicts, invariant: str) -> None:
    assert nights.of(invariant) == [], nights.summary()


def test_every_slip_happened_and_was_caught(nights: Verdicts) -> None:
    assert set(nights.slips) == set(NIGHT_SLIPS.values()), nights.slips
    assert nights.slips["emulator_on_real_state"] in ("exit 0", "exit 1"), nights.slips
    # The run without assessments had enrolments and gap cohorts to leave alone.
    assert nights.stats["enrolments_watched_without_assessments"] > 0, nights.summary()
    # The run for another site was refused before it could write anything.
    assert nights.slips["other_site"].startswith("refused"), nights.slips
    assert nights.slips["two_at_once"] in ("exit codes [0, 2]", "exit codes [1, 2]"), nights.slips


def test_the_year_was_as_eventful_as_the_issue_asks(nights: Verdicts) -> None:
    """The invariants above prove something only if what they guard against happened."""
    stats = nights.stats
    assert stats["runs"] >= 300 * nights_scale()
    assert stats["moves"] >= 20
    for planned in ("create", "suspend", "unsuspend", "move", "absent", "kept", "enrol_enrol"):
        assert stats[f"plan_{planned}"] > 0, (planned, nights.summary())
    assert stats["untied_rows"] > 0
    assert stats["plan_cohort_remove_held"] > 0, nights.summary()
    # What the year did and how long it took (issue 9 asks under 3 minutes in CI): shown with
    # ``pytest -rP``; not asserted, the machine's load is not the bridge's.
    print(nights.summary())


def nights_scale() -> float:
    return Scale.from_env().days / 365
