"""Moodle's time: the rates a run measures, the plan's estimate, and the slow-site warning."""

from __future__ import annotations

from collections import Counter

import pytest

from moodle_bridge.sync.rates import CONTRACT_RATES, estimate, measured, merged


def test_a_run_measures_moodles_seconds_per_record_of_each_kind():
    seconds = {
        "core_user_create_users": 2.0,
        "core_user_update_users": 0.5,
        "enrol_manual_enrol_users": 1.0,
        "core_webservice_get_site_info": 0.1,
    }
    applied = Counter(
        create=100, update=20, suspend=5, enrol_enrol=40, enrol_suspend=10, cohort_create=3
    )
    rates = measured(seconds, applied)
    assert rates == pytest.approx({"create": 0.02, "update": 0.02, "enrol": 0.02})


def test_a_kind_the_run_did_not_apply_keeps_its_earlier_rate():
    assert merged({"create": 0.01, "enrol": 0.005}, {"create": 0.03}) == {
        "create": 0.03,
        "enrol": 0.005,
    }


def test_the_estimate_uses_measured_rates_and_falls_back_on_the_contracts():
    planned = {"create": 1000, "update": 0, "move": 5, "cohort_add": 1000, "absent": 7}
    first = estimate(planned, None, workers=1)
    assert not first.measured
    assert first.seconds == pytest.approx(1000 * CONTRACT_RATES["create"] + 1000 / 545)
    measured_site = estimate(planned, {"create": 0.05}, workers=1)
    assert measured_site.measured
    assert measured_site.seconds == pytest.approx(50 + 1000 / 545)
    # Two clients double a 2-core site's throughput; more add little.
    assert estimate(planned, None, workers=2).seconds == pytest.approx(first.seconds / 2)
    assert estimate(planned, None, workers=8).seconds == pytest.approx(first.seconds / 2)
