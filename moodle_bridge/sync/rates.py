"""Moodle's time: what a run cost the site per record, and what a plan will cost.

At ministry scale the bridge's own CPU is not the limit; Moodle's time is. A run measures the
seconds Moodle spent per record of each kind (the time of its calls over the records they
carried); ``plan`` estimates how long an apply will take from the rates this state's earlier
runs measured, or from the contract's measurements on a first run. A site whose user creation
costs more than a threshold per user is probably scanning ``mdl_user`` for every email (the
missing ``lower(email)`` index of docs/OPERATIONS.md): the run says so once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "CONTRACT_RATES",
    "FUNCTIONS",
    "SLOW_USER_SECONDS",
    "Estimate",
    "estimate",
    "measured",
    "merged",
]

#: The function that carries each kind of record.
FUNCTIONS: Mapping[str, str] = {
    "create": "core_user_create_users",
    "update": "core_user_update_users",
    "cohort_add": "core_cohort_add_cohort_members",
    "cohort_remove": "core_cohort_delete_cohort_members",
    "enrol": "enrol_manual_enrol_users",
}

#: Seconds per record at 100 records per call, on the contract's 2-core site (its README):
#: 121.5 users/s created, 198 enrolments/s, 545 memberships/s. Updates and removals were not
#: measured; they are taken as their measured twins.
CONTRACT_RATES: Mapping[str, float] = {
    "create": 1 / 121.5,
    "update": 1 / 121.5,
    "cohort_add": 1 / 545,
    "cohort_remove": 1 / 545,
    "enrol": 1 / 198,
}

#: Moodle's time per created user above which the site is probably scanning ``mdl_user``.
SLOW_USER_SECONDS = 0.040

#: How much two concurrent clients gain on a 2-core site (the contract: they double it; more
#: add little).
_PARALLEL_GAIN = {1: 1.0, 2: 2.0}


def _kind(action: str) -> str | None:
    if action in ("update", "suspend", "unsuspend"):
        return "update"
    if action.startswith("enrol_"):
        return "enrol"
    return action if action in FUNCTIONS else None


def measured(seconds: Mapping[str, float], applied: Mapping[str, int]) -> dict[str, float]:
    """Moodle's seconds per record of each kind a run applied (kinds it did not apply are
    left out)."""
    records: Counter[str] = Counter()
    for action, count in applied.items():
        kind = _kind(action)
        if kind is not None:
            records[kind] += count
    return {
        kind: seconds[FUNCTIONS[kind]] / count
        for kind, count in records.items()
        if count and seconds.get(FUNCTIONS[kind])
    }


def merged(earlier: Mapping[str, float] | None, latest: Mapping[str, float]) -> dict[str, float]:
    """The rates to remember: the latest measured ones over the earlier."""
    return {**(earlier or {}), **latest}


@dataclass(frozen=True)
class Estimate:
    """How long an apply will take Moodle, and from which rates."""

    seconds: float
    measured: bool


def estimate(
    planned: Mapping[str, int], rates: Mapping[str, float] | None, workers: int
) -> Estimate:
    """The wall time an apply of ``planned`` (counts per action) will take at ``rates`` (this
    state's measured seconds per record; None: the contract's) with ``workers`` clients."""
    known = dict(CONTRACT_RATES)
    known.update(rates or {})
    total = 0.0
    for action, count in planned.items():
        kind = _kind(action)
        if kind is not None:
            total += count * known[kind]
    gain = _PARALLEL_GAIN.get(workers, 2.0)
    return Estimate(total / gain, rates is not None)
