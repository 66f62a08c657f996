"""Moodle's time: the rates a run measures, the plan's estimate, and the slow-site warning."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from moodle_bridge.sync.rates import (
    CONTRACT_RATES,
    Meter,
    estimate,
    measured,
    merged,
    slow_user_seconds,
)


class Answering:
    """A caller that answers every call with nothing."""

    def call(
        self, wsfunction: str, params: Mapping[str, Any] | None = None, *, retry_writes: bool = True
    ) -> Any:
        return None


def test_a_run_measures_moodles_seconds_per_record_of_each_kind():
    seconds = {"create": 2.0, "update": 0.5, "enrol": 1.0}
    records = {"create": 100, "update": 25, "enrol": 50, "cohort_add": 0}
    assert measured(seconds, records) == pytest.approx(
        {"create": 0.02, "update": 0.02, "enrol": 0.02}
    )


def test_the_meter_counts_the_records_each_write_carried_and_an_email_change_apart():
    meter = Meter(Answering())  # type: ignore[arg-type]
    users = [{"username": "a"}, {"username": "b"}]
    meter.answered("core_user_create_users", {"users": users}, 0.5)
    meter.answered("core_user_update_users", {"users": [{"id": 1, "firstname": "A"}] * 5}, 0.5)
    meter.answered("core_user_update_users", {"users": [{"id": 2, "email": "b@x.example"}]}, 0.5)
    meter.answered("enrol_manual_enrol_users", {"enrolments": [{"userid": 1}] * 10}, 0.5)
    meter.answered("core_webservice_get_site_info", None, 0.5)
    meter.answered("core_user_get_users_by_field", {"field": "id", "values": ["1"]}, 0.5)
    assert meter.records == {"create": 2, "update": 5, "update_email": 1, "enrol": 10}
    assert meter.measured() == pytest.approx(
        {"create": 0.25, "update": 0.1, "update_email": 0.5, "enrol": 0.05}
    )
    # Every answered call reaches the measure, and is counted as before.
    meter.call("core_user_update_users", {"users": [{"id": 3, "email": "c@x.example"}]})
    assert meter.records["update_email"] == 2
    assert meter.calls["core_user_update_users"] == 1


def test_creating_or_changing_an_email_is_slow_past_the_threshold_and_the_slower_is_said():
    assert slow_user_seconds({"create": 0.01, "update": 0.9}, 0.04) is None
    assert slow_user_seconds({"create": 0.05}, 0.04) == 0.05
    assert slow_user_seconds({"create": 0.01, "update_email": 0.06}, 0.04) == 0.06
    assert slow_user_seconds({"create": 0.07, "update_email": 0.06}, 0.04) == 0.07
    assert slow_user_seconds({}, 0.04) is None


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
