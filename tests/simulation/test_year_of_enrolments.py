"""Issue 13's acceptance: a year of monthly syncs with enrolments, judged from the emulator.

On the first of each month every unit syncs its roster with the month's assessments (gaps open
and close), then completions are pulled. Between two months administrators enrol some people
by hand (in the course of their gap, or in another catalogue course) and learners complete
courses, some on the last evening of a window that closes before the next run. Cohort-mode
courses are served through audience cohorts that the administrators link to their courses
(the site's own ``unit:PENDIS`` is linked to a course from the start, and the bridge's unit and
gap cohorts are linked to a community course: a removal that unenrols would delete an
enrolment). The site's cohort sync unenrols on removal (Moodle's default) or, in the second
variant, suspends, as the bridge's probe proves.
"""

from __future__ import annotations

import pytest

from tests.simulation.driver import Verdicts, year_of_months
from tests.simulation.world import Scale

CI = Scale(people=500, days=365, seed=13)
SCALE = Scale.from_env(CI)
INVARIANTS = [
    name
    for name in (
        "history_kept",
        "ledger_complete",
        "cap",
        "hand_untouched",
        "active_not_suspended",
        "unit_follows_person",
        "one_account",
        "suspension_explained",
        "runs_apply",
    )
]


@pytest.fixture(scope="module", params=["unenrol", "suspend"])
def months(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Verdicts:
    folder = tmp_path_factory.mktemp(f"months-{request.param}")
    return year_of_months(folder, SCALE, suspends=request.param == "suspend")


@pytest.mark.parametrize("invariant", INVARIANTS)
def test_the_invariant_holds_all_year(months: Verdicts, invariant: str) -> None:
    assert months.of(invariant) == [], months.summary()


def test_the_year_was_as_eventful_as_the_issue_asks(months: Verdicts) -> None:
    stats = months.stats
    assert stats["completed"] > 50, months.summary()
    assert stats["last_day_completions"] > 0, months.summary()
    assert stats["hand_enrolled"] > 0, months.summary()
    assert stats["found_not_ours"] > 0, months.summary()
    assert stats["audience_links"] > 0, months.summary()
    for planned in ("enrol_enrol", "enrol_suspend", "cohort_add", "suspend", "move"):
        assert stats[f"plan_{planned}"] > 0, (planned, months.summary())
    assert stats["pulled"] > 0, months.summary()


def test_removals_that_could_unenrol_are_made_only_once_the_probe_proved_they_suspend(
    months: Verdicts,
) -> None:
    stats = months.stats
    if months.slips["cohort_sync"] == "unenrol":
        assert stats["plan_cohort_remove"] == 0, months.summary()
        assert stats["plan_cohort_remove_held"] > 0, months.summary()
    else:
        assert stats["plan_cohort_remove"] > 0, months.summary()
