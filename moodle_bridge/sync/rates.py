"""Moodle's time: what a run cost the site per record, and what a plan will cost.

At ministry scale the bridge's own CPU is not the limit; Moodle's time is. A run measures the
seconds Moodle spent per record of each kind (the time of its answered writes over the records
they carried, through a :class:`Meter`); ``plan`` estimates how long an apply will take from the
rates this state's earlier runs measured, or from the contract's measurements on a first run.
A site whose user creation, or email change, costs more than a threshold per user is probably
scanning ``mdl_user`` for every email (the missing ``lower(email)`` index of
docs/OPERATIONS.md): the run says so once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from moodle_bridge.moodle.api import Caller, CountingCaller

__all__ = [
    "CONTRACT_RATES",
    "EMAIL_CHECKED",
    "SLOW_USER_SECONDS",
    "Estimate",
    "Meter",
    "estimate",
    "measured",
    "merged",
    "slow_user_seconds",
]


class _Write(NamedTuple):
    """A write a run measures: the list parameter that carries its records, and their kind."""

    records: str
    kind: str


#: The measured writes, by function. An update carrying an email is its own kind
#: (``update_email``, see :func:`_kind_of`).
_WRITES: Mapping[str, _Write] = {
    "core_user_create_users": _Write("users", "create"),
    "core_user_update_users": _Write("users", "update"),
    "core_cohort_add_cohort_members": _Write("members", "cohort_add"),
    "core_cohort_delete_cohort_members": _Write("members", "cohort_remove"),
    "enrol_manual_enrol_users": _Write("enrolments", "enrol"),
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

#: The kinds for which Moodle checks, case-insensitively, that no other account has the email:
#: a full scan of ``mdl_user`` per user on a site without the ``lower(email)`` index.
EMAIL_CHECKED = ("create", "update_email")

#: Moodle's time per created or email-changed user above which the site is probably scanning
#: ``mdl_user``.
SLOW_USER_SECONDS = 0.040

#: How much two concurrent clients gain on a 2-core site (the contract: they double it; more
#: add little).
_PARALLEL_GAIN = {1: 1.0, 2: 2.0}


def _kind(action: str) -> str | None:
    """The kind of record a planned action is estimated as."""
    if action in ("update", "suspend", "unsuspend"):
        return "update"
    if action.startswith("enrol_"):
        return "enrol"
    return action if action in CONTRACT_RATES else None


def _kind_of(wsfunction: str, params: Mapping[str, Any] | None) -> tuple[str, int] | None:
    """The kind and number of records a call carries; None for a call that is not measured.

    The bridge sends an account's email only when it changes, so an update batch carrying one
    is an email change (the executor sends those in batches of their own).
    """
    write = _WRITES.get(wsfunction)
    if write is None or params is None:
        return None
    kind = write.kind
    records = params.get(write.records) or []
    if kind == "update" and any(isinstance(r, Mapping) and r.get("email") for r in records):
        kind = "update_email"
    return kind, len(records)


class Meter(CountingCaller):
    """Counts and times calls like its base, and measures Moodle's seconds and the records
    carried by each kind of write (thread-safe). Only answered calls count: a batch Moodle
    refused as a whole is sent again in halves, and those are counted."""

    def __init__(self, caller: Caller) -> None:
        super().__init__(caller)
        self.kind_seconds: defaultdict[str, float] = defaultdict(float)
        self.records: Counter[str] = Counter()

    def answered(self, wsfunction: str, params: Mapping[str, Any] | None, seconds: float) -> None:
        """Add a measured write's time and records to its kind."""
        measuring = _kind_of(wsfunction, params)
        if measuring is not None:
            kind, records = measuring
            with self._lock:
                self.kind_seconds[kind] += seconds
                self.records[kind] += records

    def measured(self) -> dict[str, float]:
        """Moodle's seconds per record of each kind measured so far."""
        with self._lock:
            return measured(self.kind_seconds, self.records)


def measured(seconds: Mapping[str, float], records: Mapping[str, int]) -> dict[str, float]:
    """Moodle's seconds per record of each kind (kinds without records or time are left
    out)."""
    return {
        kind: seconds[kind] / count
        for kind, count in records.items()
        if count and seconds.get(kind)
    }


def slow_user_seconds(rates: Mapping[str, float], threshold: float) -> float | None:
    """Moodle's seconds per created or email-changed user, the slower of the two, when it is
    over ``threshold``; else None."""
    slowest = max((rates[kind] for kind in EMAIL_CHECKED if kind in rates), default=None)
    return slowest if slowest is not None and slowest > threshold else None


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
