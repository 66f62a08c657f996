"""Apply a plan to Moodle: budgeted batches, a journal, bisection, a circuit breaker.

Every batch is journalled before it is sent and settled after, in the same transaction as what
it changed. The stages (:mod:`moodle_bridge.sync.stages`) know their records; this runner does
the rest once for all of them. Moodle refuses some batches as a whole without saying which
record it refused, so such a batch is halved until the record stands alone. A fault of the
site is never the records': an answer lost to it is an unknown outcome, settled by reading
back (:func:`~moodle_bridge.sync.journal.recover`), and what is still missing is sent again.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, TypeVar

from moodle_bridge import errors
from moodle_bridge.moodle.api import Caller, to_params
from moodle_bridge.store import Changes, Store
from moodle_bridge.sync.journal import recover
from moodle_bridge.sync.pipeline import Lane, Pipeline
from moodle_bridge.sync.plan import EnrolChange, Membership, Plan
from moodle_bridge.sync.stages.accounts import ChangeStage, CreateStage
from moodle_bridge.sync.stages.base import RecordFailure, Settled, Stage, Targets
from moodle_bridge.sync.stages.cohorts import CohortStage
from moodle_bridge.sync.stages.enrolments import EnrolStage
from moodle_bridge.sync.stages.members import MemberAddStage, MemberRemoveStage
from moodle_bridge.sync.verify import Verifier

__all__ = [
    "RESENDS",
    "CircuitBreaker",
    "ExecutionResult",
    "Executor",
    "Progress",
    "RecordFailure",
    "RunOptions",
]

T = TypeVar("T", Membership, EnrolChange)

#: ``progress(stage, done, total)``: ``done`` more of the ``total`` records of ``stage``
#: (create, update, cohort_add, cohort_remove, cohort_create, enrol) were handled.
Progress = Callable[[str, int, int], None]

#: How often in a row a batch of creates whose answer a site fault hid is read back and sent
#: again before the run stops (the reads themselves wait under the client's retry policy).
RESENDS = 4


@dataclass
class CircuitBreaker:
    """Stops a run whose records fail at a rate that means something is wrong site-wide."""

    max_failure_rate: float = 0.5
    min_records: int = 50
    attempted: int = 0
    failed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, ok: int, failed: int) -> None:
        """Count outcomes; raise Fatal once the failure rate is too high."""
        with self._lock:
            self.attempted += ok + failed
            self.failed += failed
            tripped = (
                self.attempted >= self.min_records
                and self.failed > self.max_failure_rate * self.attempted
            )
        if tripped:
            msg = (
                f"circuit breaker: {self.failed} of {self.attempted} records failed; "
                "stopping before more damage (see the per-record errors)"
            )
            raise errors.Fatal(msg)


#: Records in a gated lane's first batch (see :meth:`Executor._chunks`).
SCOUT = 10


@dataclass
class ExecutionResult:
    """What a sync did: records applied per action, records refused, why it stopped."""

    applied: Counter[str] = field(default_factory=Counter)
    failures: list[RecordFailure] = field(default_factory=list)
    stopped: str | None = None
    #: What Moodle answered when the run stopped, for the run report (it may name people).
    stopped_raw: str | None = None


@dataclass(frozen=True)
class RunOptions:
    """How the runner writes (from ``SyncOptions``)."""

    workers: int = 2
    max_failure_rate: float = 0.5
    role_id: int = 5
    role_shortname: str = "student"


class Executor:
    """Applies plans through a Moodle client, journalling every write in the store."""

    def __init__(
        self,
        caller: Caller,
        store: Store,
        run_id: int,
        options: RunOptions | None = None,
        *,
        progress: Progress | None = None,
    ) -> None:
        self.caller = caller
        self.store = store
        self.run_id = run_id
        self.options = options or RunOptions()
        self.progress: Progress = progress or (lambda _stage, _done, _total: None)
        self.breaker = CircuitBreaker(max_failure_rate=self.options.max_failure_rate)
        self.verifier = Verifier(caller, store, self.options.role_id, self.options.role_shortname)
        self._lock = threading.Lock()
        self._result = ExecutionResult()
        self._totals: Counter[str] = Counter()
        self._targets = Targets()
        self._pipeline = Pipeline(self.options.workers)
        #: Memberships and enrolments of people whose accounts are being created, by NIP,
        #: and the lanes they join once the account exists.
        self._waiting: dict[str, list[Membership | EnrolChange]] = {}
        self._lanes: dict[type, Lane] = {}

    def apply(
        self, plan: Plan, cohort_ids: Mapping[str, int], course_ids: Mapping[str, int] | None = None
    ) -> ExecutionResult:
        """Apply ``plan``; ``cohort_ids`` and ``course_ids`` map cohort idnumbers and course
        shortnames to Moodle ids.

        Record errors are collected; a fatal error, the circuit breaker or a site that stayed
        away stops the run and says why in ``stopped``. Whatever was settled before is kept,
        and batches still open are settled by the next run.
        """
        self._result = ExecutionResult()
        self._totals = _totals(plan)
        self._targets = _targets(self.store, plan, cohort_ids, course_ids or {})
        self._waiting, self._lanes = {}, {}
        wanted = [c for c in sorted(plan.cohorts_to_create.items()) if c[0] not in cohort_ids]
        try:
            # Cohorts first, on their own (they are few): memberships need their ids.
            self._run(lambda: self._lane(CohortStage(), wanted))
            self._run(lambda: self._queue(plan))
        except (errors.Fatal, errors.Retriable) as error:
            # One line; a site fault's starts with what the site answered ("database
            # unavailable", "site in maintenance until about 14:05").
            self._result.stopped = str(error)
            self._result.stopped_raw = error.raw
        return self._result

    def _run(self, queue: Callable[[], object]) -> None:
        self._pipeline = Pipeline(self.options.workers)
        queue()
        self._pipeline.run(self._work)

    def _queue(self, plan: Plan) -> None:
        """Lanes in the order they are served. Updates, removals and what concerns existing
        accounts wait for nothing; a created batch's memberships and enrolments wait for it,
        then go to the front of their lanes (sent while the next batch is created)."""
        creating = {c.nip for c in plan.creates}
        self._waiting = defaultdict(list)
        waiting: Iterable[Membership | EnrolChange] = chain(plan.member_adds, plan.enrolments)
        for item in waiting:
            if item.nip in creating:
                self._waiting[item.nip].append(item)
        adds = MemberAddStage(self._targets, self.verifier)
        self._lanes[Membership] = self._lane(adds, _without(plan.member_adds, creating))
        # The first enrolment is read back (the role) before the other enrolments are sent,
        # and the first created account (the profile fields) before the other creates.
        enrol = EnrolStage(self._targets, self.verifier)
        self._lanes[EnrolChange] = self._lane(enrol, _without(plan.enrolments, creating), True)
        self._lane(CreateStage(self.verifier), plan.creates, gated=True)
        # An email change costs Moodle a duplicate-email check the other changes do not: sent
        # in batches of their own, its time per user is measured apart (sync/rates.py).
        changes = self._lane(ChangeStage(), (c for c in plan.changes if "email" in c.changes))
        others = (c for c in plan.changes if "email" not in c.changes)
        self._pipeline.add(changes, self._chunks(changes.stage, others))
        self._lane(MemberRemoveStage(self._targets), plan.member_removes)

    def _lane(self, stage: Stage[Any], items: Iterable[Any], gated: bool = False) -> Lane:
        lane = self._pipeline.lane(stage, gated=gated)
        self._pipeline.add(lane, self._chunks(stage, items, scout=SCOUT if gated else None))
        return lane

    def _chunks(
        self, stage: Stage[Any], items: Iterable[Any], scout: int | None = None
    ) -> Iterator[list[Any]]:
        """``items`` in budgeted chunks, made as they are taken (a batch's records are built
        when it is sent, not for everyone at once); those that cannot be sent are reported.
        With ``scout``, the first chunk holds at most that many: a gated lane's first chunk
        goes alone while its read-back proves the site, and a small one keeps Moodle's other
        core waiting for as short a time as possible."""
        ready = iter(item for item in items if self._sendable(stage, item))

        def wire(item: Any) -> dict[str, Any]:
            return to_params(stage.wire(item))

        if scout is not None:
            yield from self.caller.chunks(itertools.islice(ready, scout), wire)
        yield from self.caller.chunks(ready, wire)

    def _sendable(self, stage: Stage[Any], item: Any) -> bool:
        reason = stage.blocked(item)
        if reason is not None:
            with self._lock:
                self._result.failures.append(stage.failure(item, None, reason))
        return reason is None

    def _work(self, lane: Lane, chunk: list[Any]) -> None:
        self._send(lane.stage, chunk, 0)

    def _send(self, stage: Stage[Any], items: list[Any], faults: int) -> None:
        """Journal, send and settle one batch; bisect it, or read it back and send it again."""
        batch = self.store.journal_batch(self.run_id, stage.action, stage.payload(items).to_json())
        try:
            answer = stage.send(self.caller, items)
        except errors.TruncatedRequest as error:
            self._recover(stage, batch)
            msg = (
                f"{error.message}: PHP dropped part of the request (max_input_vars); lower "
                "[moodle] field_budget"
            )
            raise errors.Fatal(msg, wsfunction=error.wsfunction) from error
        except errors.RecordError as error:
            self._refused(stage, batch, items, error)
        except errors.Retriable:
            rest = stage.unsettled(items, self._recover(stage, batch))
            if rest is None or faults >= RESENDS:
                raise
            if rest:
                # A fault says nothing of the records: a bisection starts again from here.
                self._send(stage, rest, faults + 1)
        else:
            settled = stage.settle(items, answer)
            self.store.confirm_batch(batch, settled.result, settled.changes)
            self._settled(stage, len(items), settled)

    def _refused(
        self, stage: Stage[Any], batch: int, items: list[Any], error: errors.RecordError
    ) -> None:
        """Moodle refused the batch as a whole: halve it until the refused record is alone."""
        if len(items) > 1:
            self.store.fail_batch(batch, error.errorcode or type(error).__name__)
            middle = len(items) // 2
            self._send(stage, items[:middle], 0)
            self._send(stage, items[middle:], 0)
            return
        outcome = stage.refused(items[0], error)
        if isinstance(outcome, Settled):
            self.store.resolve_batch(batch, outcome.result, outcome.changes, run_id=self.run_id)
        else:
            self.store.fail_batch(batch, error.errorcode or type(error).__name__)
            # Moodle's own answer goes to the run report (owner-only), never to the terminal.
            outcome = Settled(None, failures=[dataclasses.replace(outcome, raw=error.raw)])
        self._settled(stage, 1, outcome)

    def _recover(self, stage: Stage[Any], batch: int) -> Changes:
        """Settle a batch whose answer was lost from what Moodle holds now."""
        journalled = self.store.batch(batch)
        assert journalled is not None, "a batch just journalled is in the journal"
        result, changes = recover(stage.action, journalled, self.caller)
        self.store.resolve_batch(batch, result, changes, run_id=self.run_id)
        found = len(changes.accounts) + len(changes.cohorts)
        applied = Counter({stage.progress: found}) if found else Counter()
        self._settled(stage, found, Settled(result, changes, applied))
        return changes

    def _settled(self, stage: Stage[Any], handled: int, settled: Settled) -> None:
        """Count a settled batch, check it, and release what waited for its accounts."""
        self._targets.record(settled.changes)
        with self._lock:
            self._result.applied.update(settled.applied)
            self._result.failures.extend(settled.failures)
            self.progress(stage.progress, handled, self._totals[stage.progress])
        self.breaker.record(sum(settled.applied.values()), len(settled.failures))
        checked = stage.verify(settled.changes)
        with self._lock:
            self._result.failures.extend(checked)
            ready = [i for a in settled.changes.accounts for i in self._waiting.pop(a.nip, [])]
        for kind, lane in self._lanes.items():
            items = [item for item in ready if isinstance(item, kind)]
            if items:
                self._pipeline.add(lane, self._chunks(lane.stage, items), first=True)


def _without(items: Sequence[T], nips: Collection[str]) -> Iterator[T]:
    """The items of people not in ``nips`` (those wait for their accounts)."""
    return (item for item in items if item.nip not in nips)


def _totals(plan: Plan) -> Counter[str]:
    return Counter(
        create=len(plan.creates),
        update=len(plan.changes),
        cohort_add=len(plan.member_adds),
        cohort_remove=len(plan.member_removes),
        cohort_create=len(plan.cohorts_to_create),
        enrol=len(plan.enrolments),
    )


def _targets(
    store: Store, plan: Plan, cohort_ids: Mapping[str, int], course_ids: Mapping[str, int]
) -> Targets:
    """The ids known before the run; units as they will be, for the change log."""
    targets = Targets(cohorts=dict(cohort_ids), courses=course_ids)
    for nip, account in store.accounts().items():
        targets.users[nip] = account.moodle_id
        targets.units[nip] = account.unit
    targets.units.update((c.nip, c.unit) for c in plan.creates)
    targets.units.update((c.nip, c.unit) for c in plan.changes if c.unit)
    return targets
