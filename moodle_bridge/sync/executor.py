"""Apply a plan to Moodle: budgeted batches, bisection, a journal, resume, a circuit breaker."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from moodle_bridge import errors
from moodle_bridge.moodle import cohorts as moodle_cohorts
from moodle_bridge.moodle import users as moodle_users
from moodle_bridge.moodle.api import Caller
from moodle_bridge.moodle.encoding import value_field_count
from moodle_bridge.sync.batching import Refused, bisect_send, chunk_by_fields
from moodle_bridge.sync.desired import PROFILE_PREFIX, Record, fingerprint
from moodle_bridge.sync.planner import ChangeAccount, CreateAccount, Membership, Plan

T = TypeVar("T")

#: Fields of the form wrapper around each list item (``users[12][...]``) are counted by the
#: encoder; this is the fixed part of every request: wstoken, wsfunction, format.
REQUEST_OVERHEAD = 3

Progress = Callable[[str, int], None]


class SyncStore(Protocol):
    """What the executor needs from the state store (see :mod:`moodle_bridge.store`)."""

    def journal_batch(self, action: str, payload: dict[str, Any]) -> int: ...

    def confirm_batch(self, batch_id: int, result: dict[str, Any]) -> None: ...

    def fail_batch(self, batch_id: int, reason: str) -> None: ...

    def record_created(self, rows: Sequence[tuple[str, int, str, str, str]]) -> None: ...

    def record_applied(self, rows: Sequence[tuple[str, str, bool, str]]) -> None: ...

    def record_cohort(self, idnumber: str, moodle_id: int, name: str) -> None: ...

    def record_members(self, cohort: str, nips: Sequence[str], *, added: bool) -> None: ...

    def moodle_ids(self, nips: Sequence[str]) -> dict[str, int]: ...


@dataclass(frozen=True)
class RecordFailure:
    """One record Moodle (or the bridge, before sending) refused."""

    action: str
    nip: str | None
    errorcode: str | None
    reason: str
    source: str = ""
    row: int = 0


@dataclass
class CircuitBreaker:
    """Stops a run whose records fail at a rate that means something is wrong site-wide."""

    max_failure_rate: float = 0.5
    min_records: int = 50
    attempted: int = 0
    failed: int = 0

    def record(self, ok: int, failed: int) -> None:
        """Count outcomes; raise Fatal when the failure rate is too high."""
        self.attempted += ok + failed
        self.failed += failed
        if (
            self.attempted >= self.min_records
            and self.failed > self.max_failure_rate * self.attempted
        ):
            msg = (
                f"circuit breaker: {self.failed} of {self.attempted} records failed; "
                "stopping before more damage (see the per-record errors)"
            )
            raise errors.Fatal(msg)


@dataclass
class ExecutionResult:
    """What a sync did."""

    applied: Counter[str] = field(default_factory=Counter)
    failures: list[RecordFailure] = field(default_factory=list)
    stopped: str | None = None


def moodle_user_fields(record: Record) -> dict[str, Any]:
    """A record as ``core_user_*`` parameters: custom fields become ``customfields``."""
    fields: dict[str, Any] = {}
    custom: list[dict[str, str]] = []
    for key, value in record.items():
        if key.startswith(PROFILE_PREFIX):
            custom.append({"type": key[len(PROFILE_PREFIX) :], "value": value})
        else:
            fields[key] = value
    if custom:
        fields["customfields"] = custom
    return fields


class Executor:
    """Applies plans through a Moodle client, journalling every write in the store."""

    def __init__(
        self,
        caller: Caller,
        store: SyncStore,
        *,
        field_budget: int,
        workers: int = 2,
        auth_needs_password: bool = True,
        progress: Progress | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.caller = caller
        self.store = store
        self.budget = field_budget - REQUEST_OVERHEAD
        self.workers = workers
        self.auth_needs_password = auth_needs_password
        self.progress = progress or (lambda _stage, _n: None)
        self.breaker = breaker or CircuitBreaker()
        self._lock = threading.Lock()
        self._fields_checked = False

    # --- the run -------------------------------------------------------------------------
    def apply(self, plan: Plan, cohort_ids: dict[str, int]) -> ExecutionResult:
        """Apply ``plan``; ``cohort_ids`` maps known cohort idnumbers to Moodle ids.

        Record errors are collected; a fatal error (or the circuit breaker) stops the run
        and is reported in ``stopped``. Whatever was confirmed before is kept in the store.
        """
        result = ExecutionResult()
        try:
            self._create_cohorts(plan.cohorts_to_create, cohort_ids, result)
            self._create_accounts(plan.creates, result)
            self._change_accounts(plan.changes, result)
            self._add_members(plan.member_adds, cohort_ids, result)
            self._remove_members(plan.member_removes, cohort_ids, result)
        except errors.Fatal as error:
            result.stopped = str(error)
        return result

    def _parallel(self, chunks: Iterable[T], work: Callable[[T], None]) -> None:
        if self.workers <= 1:
            for chunk in chunks:
                work(chunk)
            return
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for future in [pool.submit(work, chunk) for chunk in chunks]:
                future.result()

    def _fail(self, result: ExecutionResult, failures: Sequence[RecordFailure]) -> None:
        with self._lock:
            result.failures.extend(failures)

    # --- cohorts -------------------------------------------------------------------------
    def _create_cohorts(
        self, wanted: dict[str, str], cohort_ids: dict[str, int], result: ExecutionResult
    ) -> None:
        missing = {
            idnumber: name for idnumber, name in wanted.items() if idnumber not in cohort_ids
        }
        if not missing:
            return
        # A cohort made by hand, or by a run that crashed before recording it, is found by
        # its idnumber instead of being created twice (Moodle refuses duplicates anyway).
        for idnumber in list(missing):
            found = moodle_cohorts.search_cohorts(self.caller, idnumber)
            for cohort in found:
                if cohort.idnumber == idnumber:
                    cohort_ids[idnumber] = cohort.id
                    self.store.record_cohort(idnumber, cohort.id, cohort.name)
                    del missing[idnumber]
                    break
        if not missing:
            return
        new = [
            moodle_cohorts.NewCohort(name=name, idnumber=idnumber)
            for idnumber, name in sorted(missing.items())
        ]
        batch = self.store.journal_batch("create_cohorts", {"idnumbers": sorted(missing)})
        created = moodle_cohorts.create_cohorts(self.caller, new)
        for cohort in created:
            cohort_ids[cohort.idnumber or ""] = cohort.id
            self.store.record_cohort(cohort.idnumber or "", cohort.id, cohort.name)
        self.store.confirm_batch(batch, {"created": len(created)})
        result.applied["cohort_create"] += len(created)

    # --- accounts ------------------------------------------------------------------------
    def _new_user(self, create: CreateAccount) -> dict[str, Any]:
        fields = moodle_user_fields(create.record)
        if self.auth_needs_password:
            fields["createpassword"] = True
        return fields

    def _create_accounts(self, creates: list[CreateAccount], result: ExecutionResult) -> None:
        if not creates:
            return
        payloads = {c.nip: self._new_user(c) for c in creates}
        chunks = chunk_by_fields(creates, lambda c: _item_fields(payloads[c.nip]), self.budget)
        # The first chunk goes alone: its read-back proves the custom profile fields exist
        # before thousands of accounts are created without them.
        self._create_chunk(chunks[0], payloads, result)
        self._parallel(chunks[1:], lambda chunk: self._create_chunk(chunk, payloads, result))

    def _create_chunk(
        self,
        chunk: list[CreateAccount],
        payloads: dict[str, dict[str, Any]],
        result: ExecutionResult,
    ) -> None:
        def send(items: list[CreateAccount]) -> list[moodle_users.CreatedUser]:
            with self._lock:
                batch = self.store.journal_batch(
                    "create_users",
                    {
                        "nips": [c.nip for c in items],
                        "usernames": [c.record["username"] for c in items],
                    },
                )
            try:
                created = self.caller.call(
                    "core_user_create_users",
                    {"users": [payloads[c.nip] for c in items]},
                    retry_writes=False,
                )
            except errors.RecordError as error:
                with self._lock:
                    self.store.fail_batch(batch, error.errorcode or "refused")
                raise
            users = [moodle_users.CreatedUser.model_validate(u) for u in created or []]
            if len(users) != len(items):
                msg = (
                    f"Moodle created {len(users)} of {len(items)} accounts: the request was "
                    "cut (max_input_vars?); lower [moodle] field_budget"
                )
                raise errors.Fatal(msg, wsfunction="core_user_create_users")
            with self._lock:
                self.store.record_created(
                    [
                        (
                            c.nip,
                            u.id,
                            c.record["username"],
                            c.record.get(PROFILE_PREFIX + "unit", ""),
                            fingerprint(c.record),
                        )
                        for c, u in zip(items, users, strict=True)
                    ]
                )
                self.store.confirm_batch(batch, {"ids": [u.id for u in users]})
            return users

        def sent(items: list[CreateAccount], users: list[moodle_users.CreatedUser]) -> None:
            with self._lock:
                result.applied["create"] += len(items)
            self.progress("create", len(items))
            if not self._fields_checked:
                self._check_profile_fields(items[0], users[0].id)

        refused = bisect_send(chunk, send, sent)
        self._report_refused("create", refused, result)
        self.breaker.record(len(chunk) - len(refused), len(refused))

    def _report_refused(
        self, action: str, refused: Sequence[Refused[Any]], result: ExecutionResult
    ) -> None:
        failures = []
        for item in refused:
            record = item.item
            nip = getattr(record, "nip", None)
            failures.append(
                RecordFailure(
                    action,
                    nip,
                    item.error.errorcode,
                    _explain(item.error),
                    getattr(record, "source", ""),
                    getattr(record, "row", 0),
                )
            )
        self._fail(result, failures)

    def _check_profile_fields(self, create: CreateAccount, moodle_id: int) -> None:
        # Moodle silently ignores a custom field whose shortname does not exist.
        self._fields_checked = True
        wanted = {
            k[len(PROFILE_PREFIX) :]: v
            for k, v in create.record.items()
            if k.startswith(PROFILE_PREFIX) and v
        }
        if not wanted:
            return
        found = moodle_users.get_users_by_field(self.caller, "id", [moodle_id])
        stored = found[0].customfield_values if found else {}
        lost = sorted(name for name in wanted if name not in stored)
        if lost:
            msg = (
                f"Moodle has no custom profile field(s) {', '.join(lost)}: create them in "
                "Site administration > Users > User profile fields, or fix the field "
                "mapping in moodle-bridge.toml"
            )
            raise errors.Fatal(msg, wsfunction="core_user_create_users")

    def _change_accounts(self, changes: list[ChangeAccount], result: ExecutionResult) -> None:
        if not changes:
            return
        updates = {c.nip: self._user_update(c) for c in changes}
        chunks = chunk_by_fields(changes, lambda c: _item_fields(updates[c.nip]), self.budget)

        def work(chunk: list[ChangeAccount]) -> None:
            with self._lock:
                batch = self.store.journal_batch("update_users", {"nips": [c.nip for c in chunk]})
            # Updates are per item in Moodle: each refused item comes back as a warning.
            answer = self.caller.call(
                "core_user_update_users", {"users": [updates[c.nip] for c in chunk]}
            )
            warnings = (answer or {}).get("warnings", []) if isinstance(answer, dict) else []
            refused_ids = {int(w.get("itemid") or 0): w for w in warnings}
            done = [c for c in chunk if c.moodle_id not in refused_ids]
            with self._lock:
                self.store.record_applied(
                    [
                        (c.nip, fingerprint(c.record), c.suspended, c.record.get("username", ""))
                        for c in done
                    ]
                )
                self.store.confirm_batch(batch, {"refused": sorted(refused_ids)})
                for c in done:
                    result.applied[c.kind] += 1
            self._fail(
                result,
                [
                    RecordFailure(
                        c.kind,
                        c.nip,
                        str(refused_ids[c.moodle_id].get("warningcode")),
                        str(refused_ids[c.moodle_id].get("message")),
                    )
                    for c in chunk
                    if c.moodle_id in refused_ids
                ],
            )
            self.progress("update", len(chunk))
            self.breaker.record(len(done), len(chunk) - len(done))

        self._parallel(chunks, work)

    @staticmethod
    def _user_update(change: ChangeAccount) -> dict[str, Any]:
        fields = moodle_user_fields(change.changes)
        fields["id"] = change.moodle_id
        if change.kind != "update":
            fields["suspended"] = change.suspended
        return fields

    # --- cohort members ------------------------------------------------------------------
    def _members_payload(
        self, members: Sequence[Membership], cohort_ids: dict[str, int], accounts: dict[str, int]
    ) -> list[dict[str, Any]]:
        return [{"cohortid": cohort_ids[m.cohort], "userid": accounts[m.nip]} for m in members]

    def _add_members(
        self, adds: list[Membership], cohort_ids: dict[str, int], result: ExecutionResult
    ) -> None:
        self._members(adds, cohort_ids, result, added=True)

    def _remove_members(
        self, removes: list[Membership], cohort_ids: dict[str, int], result: ExecutionResult
    ) -> None:
        self._members(removes, cohort_ids, result, added=False)

    def _members(
        self,
        members: list[Membership],
        cohort_ids: dict[str, int],
        result: ExecutionResult,
        *,
        added: bool,
    ) -> None:
        if not members:
            return
        ids = self.store.moodle_ids([m.nip for m in members])
        ready = [m for m in members if m.nip in ids and m.cohort in cohort_ids]
        action = "cohort_add" if added else "cohort_remove"
        self._fail(
            result,
            [
                RecordFailure(action, m.nip, None, "no account or cohort to use")
                for m in members
                if m.nip not in ids or m.cohort not in cohort_ids
            ],
        )
        per_item = 4 if added else 2
        chunks = chunk_by_fields(ready, lambda _m: per_item, self.budget)

        def send(items: list[Membership]) -> None:
            with self._lock:
                batch = self.store.journal_batch(
                    action, {"members": [[m.cohort, m.nip] for m in items]}
                )
            if added:
                # Adding is per item; "already a member" (code 3) means done.
                payload = [
                    {
                        "cohorttype": {"type": "id", "value": str(cohort_ids[m.cohort])},
                        "usertype": {"type": "id", "value": str(ids[m.nip])},
                    }
                    for m in items
                ]
                answer = self.caller.call("core_cohort_add_cohort_members", {"members": payload})
                warnings = answer.get("warnings", []) if isinstance(answer, dict) else []
                bad = [w for w in warnings if str(w.get("warningcode")) != "3"]
                if bad:
                    msg = f"{len(bad)} member(s) not added: {bad[0].get('message')}"
                    raise errors.MoodleException(msg, wsfunction="core_cohort_add_cohort_members")
            else:
                # Removing is all-or-nothing in Moodle: bisection finds the bad one.
                self.caller.call(
                    "core_cohort_delete_cohort_members",
                    {"members": self._members_payload(items, cohort_ids, ids)},
                )
            with self._lock:
                for cohort in sorted({m.cohort for m in items}):
                    self.store.record_members(
                        cohort, [m.nip for m in items if m.cohort == cohort], added=added
                    )
                self.store.confirm_batch(batch, {"count": len(items)})

        def sent(items: list[Membership], _result: None) -> None:
            with self._lock:
                result.applied[action] += len(items)
            self.progress(action, len(items))

        def work(chunk: list[Membership]) -> None:
            refused = bisect_send(chunk, send, sent)
            self._report_refused(action, refused, result)

        self._parallel(chunks, work)


def _item_fields(payload: dict[str, Any]) -> int:
    return value_field_count(payload)


def _explain(error: errors.MoodleError) -> str:
    if isinstance(error, errors.InvalidParameter):
        return (
            "Moodle refused the record (invalid parameter): usually a username or email "
            "already used by another account, or a value Moodle does not accept"
        )
    return error.message
