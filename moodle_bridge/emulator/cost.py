"""Moodle's time, simulated: what each call would cost the recorded site, on a few cores.

The emulator answers in microseconds; a real Moodle takes tens of milliseconds per call and
milliseconds per record. With a :class:`SimulatedCost` attached, every request waits for one of
a bounded number of simulated server cores, then holds it for the call's *service time*
(sleeping in the server thread, divided by a speed factor), so the bridge can be measured
against Moodle's cost without a Moodle.

The service time of a call is ``fixed + per_record * records`` for its function (a straight line
fitted to the medians the contract README measured on its 2-core site, least squares on the
relative error), plus, on a site without the ``lower(email)`` index, a scan of ``mdl_user`` for
each created account and each update carrying an email:

================================================  ========  ========  ===============  ============
function                                          fixed ms  ms each   each             fit
================================================  ========  ========  ===============  ============
``core_user_create_users``                        36        7.69      user sent        +9.6% at 10
``core_user_update_users``                        36        7.69      user sent        assumed
``enrol_manual_enrol_users``                      25        4.88      enrolment        -10.6% at 10
``enrol_manual_unenrol_users``                    25        4.88      enrolment        assumed
``core_cohort_add_cohort_members``                20.5      1.60      member           +5.0% at 10
``core_cohort_delete_cohort_members``             20.5      1.60      member           assumed
``core_user_get_users_by_field``                  27        2.64      value sent       -2.9% at 100
``core_enrol_get_enrolled_users``                 27 (a)    0.45 (b)  user answered    one point
``core_enrol_get_users_courses``                  31        3.83      course answered  two points
``core_completion_get_course_completion_status``  23.5      0                          ±1.5 ms
``core_reportbuilder_retrieve_report``            27 (a)    1.40      row answered     one point
any other function                                25        0                          assumed
================================================  ========  ========  ===============  ============

(a) assumed: the lookup's fixed time. (b) 3.48 without a ``userfields`` option (16.8 s for a
4,833-user course). Unmeasured functions take the rates of their measured twins. A call Moodle
refuses costs its function's fixed time.

The email scan costs :data:`EMAIL_SCAN_PER_ACCOUNT` (0.24 µs) per account on the site: fitted
so that creation at the bridge's batch size (332 users, 7.8 ms a user) slows by 102/18 at
150,000 accounts, the ratio measured with and without the index (issue 11). The README's other
point, 48-52 users/s at about 34,000 accounts, the model puts at 63: it understates the scan of a
small table, not of the large ones that matter.

Taking the README's single-client times as one core's service time makes two workers double
the throughput, as the README observed for two clients; the side-by-side run of issue 11 got
about the single-client rate with two workers (123 users/s for a plain batched loop, where this
model gives about 200). Absolute rates are therefore optimistic; the model is for comparing
two ways of sending the same work, and for the shape of a site's slow-down.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "ANSWER",
    "CONTRACT_RATES",
    "COST_MODELS",
    "DEFAULT_RATE",
    "EMAIL_SCAN_PER_ACCOUNT",
    "LARGE_SITE_ACCOUNTS",
    "Bill",
    "CostModel",
    "Rate",
    "SimulatedCost",
    "simulated_cost",
]

#: ``Rate.records`` value: count the records of the answer (rows, users, courses), not a
#: parameter list.
ANSWER = "<answer>"


@dataclass(frozen=True)
class Rate:
    """Service time of one function: ``fixed`` seconds a call plus ``per_record`` seconds for
    each record, counted in the list parameter named ``records`` (or the answer: :data:`ANSWER`).
    """

    fixed: float
    per_record: float = 0.0
    records: str = ""


_CREATE = Rate(0.036, 0.00769, "users")
_ENROL = Rate(0.025, 0.00488, "enrolments")
_MEMBERS = Rate(0.0205, 0.0016, "members")
_READ_FIXED = 0.027

#: The fitted rates of the functions the contract README measured, and the assumed ones of
#: their unmeasured twins (an update is costed like a create, an unenrolment like an
#: enrolment, a member removal like an addition).
CONTRACT_RATES: Mapping[str, Rate] = MappingProxyType(
    {
        "core_user_create_users": _CREATE,
        "core_user_update_users": _CREATE,
        "enrol_manual_enrol_users": _ENROL,
        "enrol_manual_unenrol_users": _ENROL,
        "core_cohort_add_cohort_members": _MEMBERS,
        "core_cohort_delete_cohort_members": _MEMBERS,
        "core_user_get_users_by_field": Rate(_READ_FIXED, 0.00264, "values"),
        "core_enrol_get_enrolled_users": Rate(_READ_FIXED, 0.00045, ANSWER),
        "core_enrol_get_users_courses": Rate(0.031, 0.00383, ANSWER),
        "core_completion_get_course_completion_status": Rate(0.0235),
        "core_reportbuilder_retrieve_report": Rate(_READ_FIXED, 0.0014, ANSWER),
    }
)
#: Any other call: about the cheapest call measured (a one-value lookup, a one-member add).
DEFAULT_RATE = Rate(0.025)
#: ``core_enrol_get_enrolled_users`` without ``userfields``: every profile field of each user.
_ENROLLED_FULL = Rate(_READ_FIXED, 16.8 / 4833, ANSWER)
#: Seconds per account on the site of Moodle's case-insensitive duplicate-email check without
#: the ``lower(email)`` index (a sequential scan of ``mdl_user``).
EMAIL_SCAN_PER_ACCOUNT = 0.24e-6
#: Accounts of the "large site" of issue 11's slow-down measurement.
LARGE_SITE_ACCOUNTS = 150_000
#: Names of the cost models ``emulator serve --cost`` accepts.
COST_MODELS = ("contract",)


@dataclass(frozen=True)
class CostModel:
    """Service times of Moodle calls on the contract's site (pure arithmetic, no waiting).

    ``email_index`` False: the site lacks the ``lower(email)`` index, so each created account
    and each update carrying an email costs a scan of every account: the site's own
    (``site_accounts``) plus those the emulator holds (``accounts`` of :meth:`service_time`).
    """

    rates: Mapping[str, Rate] = field(default_factory=lambda: CONTRACT_RATES)
    default: Rate = DEFAULT_RATE
    email_index: bool = True
    site_accounts: int = 0
    scan_per_account: float = EMAIL_SCAN_PER_ACCOUNT

    @classmethod
    def contract(cls, *, large_site: bool = False) -> CostModel:
        """The contract's rates; ``large_site``: 150,000 accounts and no ``lower(email)`` index."""
        if large_site:
            return cls(email_index=False, site_accounts=LARGE_SITE_ACCOUNTS)
        return cls()

    def rate(self, wsfunction: str, params: Mapping[str, Any] | None = None) -> Rate:
        """The rate of ``wsfunction`` called with (validated) ``params``."""
        if wsfunction == "core_enrol_get_enrolled_users" and params is not None:
            names = {o.get("name") for o in params.get("options") or () if isinstance(o, dict)}
            if "userfields" not in names:
                return _ENROLLED_FULL
        return self.rates.get(wsfunction, self.default)

    def service_time(
        self, wsfunction: str, params: Mapping[str, Any], answer: Any, *, accounts: int = 0
    ) -> float:
        """Seconds one core spends on a call that succeeded; ``accounts``: users in the
        emulator's world (they add to ``site_accounts`` for the email scan)."""
        rate = self.rate(wsfunction, params)
        records = _count(answer) if rate.records == ANSWER else _count(params.get(rate.records))
        return self.seconds(rate, records, email_checks(wsfunction, params), accounts)

    def seconds(self, rate: Rate, records: int, checks: int = 0, accounts: int = 0) -> float:
        """Seconds of a call at ``rate`` over ``records`` records with ``checks`` duplicate-email
        checks on a site of ``site_accounts + accounts`` accounts."""
        seconds = rate.fixed + rate.per_record * records
        if not self.email_index:
            seconds += checks * (self.site_accounts + accounts) * self.scan_per_account
        return seconds

    def refused_time(self, wsfunction: str | None) -> float:
        """Seconds one core spends on a call Moodle refused (or an unknown function)."""
        return self.rate(wsfunction).fixed if wsfunction else self.default.fixed

    def load_seconds(
        self,
        people: int,
        *,
        users_per_call: int,
        members_per_call: int,
        parallel: int = 2,
        accounts: int = 0,
    ) -> float:
        """Wall seconds Moodle needs to create ``people`` accounts and one cohort membership
        each, in calls of the given sizes, with ``parallel`` cores kept busy; the site starts
        with ``accounts`` besides ``site_accounts`` and grows as they are created."""
        create = self.rates.get("core_user_create_users", self.default)
        members = self.rates.get("core_cohort_add_cohort_members", self.default)
        busy = 0.0
        for start in range(0, people, users_per_call):
            size = min(users_per_call, people - start)
            busy += self.seconds(create, size, size, accounts + start)
        for start in range(0, people, members_per_call):
            busy += self.seconds(members, min(members_per_call, people - start))
        return busy / max(1, parallel)


def email_checks(wsfunction: str, params: Mapping[str, Any]) -> int:
    """How many case-insensitive duplicate-email checks Moodle runs for a call: one per created
    account, one per update carrying an email (the bridge sends an email only when it changed)."""
    users = params.get("users") or ()
    if wsfunction == "core_user_create_users":
        return len(users)
    if wsfunction == "core_user_update_users":
        return sum(1 for u in users if isinstance(u, dict) and u.get("email"))
    return 0


def _count(value: Any) -> int:
    if isinstance(value, list):
        return len(value)
    if isinstance(value, dict):
        # A report page: {"details": ..., "data": {"rows": [...]}}.
        data = value.get("data")
        if isinstance(data, dict) and isinstance(data.get("rows"), list):
            return len(data["rows"])
    return 0


@dataclass
class Bill:
    """What one request costs; the emulator fills it in while it holds a core."""

    model: CostModel
    wsfunction: str | None = None
    seconds: float | None = None

    def charge(self, params: Mapping[str, Any], answer: Any, *, accounts: int) -> None:
        """Price the call to :attr:`wsfunction` that succeeded."""
        self.seconds = self.model.service_time(
            self.wsfunction or "", params, answer, accounts=accounts
        )

    @property
    def due(self) -> float:
        """Service seconds of the request (a refused call's fixed time when not charged)."""
        return (
            self.seconds if self.seconds is not None else self.model.refused_time(self.wsfunction)
        )


@dataclass
class SimulatedCost:
    """A Moodle server of ``cores`` simulated cores serving at ``speed`` times real time.

    A request waits for a free core, then holds it until its service time (divided by
    ``speed``) has passed since it got the core: the emulator's own work counts toward it.
    ``clock`` and ``sleep`` are injectable so tests never wait. Counters are in modelled
    (not divided) seconds.
    """

    model: CostModel = field(default_factory=CostModel)
    cores: int = 2
    speed: float = 1.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    #: Requests served, and modelled service seconds by function.
    served: int = 0
    by_function: dict[str, float] = field(default_factory=dict)
    #: Most cores ever held at once.
    peak: int = 0
    #: Requests waiting for a core now.
    waiting: int = 0
    _busy: int = 0
    _free: threading.Semaphore = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.cores < 1:
            msg = f"cores must be 1 or more, not {self.cores}"
            raise ValueError(msg)
        if not self.speed > 0:
            msg = f"speed must be positive, not {self.speed}"
            raise ValueError(msg)
        self._free = threading.BoundedSemaphore(self.cores)

    @contextlib.contextmanager
    def serving(self) -> Iterator[Bill]:
        """Hold a core for one request; the caller fills in the :class:`Bill`."""
        with self._lock:
            self.waiting += 1
        with self._free:
            started = self.clock()
            with self._lock:
                self.waiting -= 1
                self._busy += 1
                self.peak = max(self.peak, self._busy)
            bill = Bill(self.model)
            try:
                yield bill
            finally:
                due = bill.due
                remaining = due / self.speed - (self.clock() - started)
                if remaining > 0:
                    self.sleep(remaining)
                with self._lock:
                    self._busy -= 1
                    self.served += 1
                    name = bill.wsfunction or "?"
                    self.by_function[name] = self.by_function.get(name, 0.0) + due

    @property
    def busy_seconds(self) -> float:
        """Modelled core-seconds served so far."""
        with self._lock:
            return sum(self.by_function.values())


def simulated_cost(
    name: str, *, cores: int = 2, speed: float = 1.0, large_site: bool = False
) -> SimulatedCost:
    """The cost model called ``name`` (one of :data:`COST_MODELS`) on ``cores`` cores.

    Raises ValueError for an unknown name, a core count below 1 or a speed not above 0.
    """
    if name not in COST_MODELS:
        msg = f"unknown cost model {name!r} (known: {', '.join(COST_MODELS)})"
        raise ValueError(msg)
    return SimulatedCost(CostModel.contract(large_site=large_site), cores=cores, speed=speed)
