"""Apply a plan to Moodle: budgeted batches, bisection, a journal, a circuit breaker.

Every write is journalled in the store before it is sent and settled after, in the same
transaction as what it changed; a batch whose outcome is unknown (the connection broke after
sending) is re-checked in Moodle by idnumber before anything is sent again.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from moodle_bridge import errors
from moodle_bridge.moodle import cohorts as moodle_cohorts
from moodle_bridge.moodle import enrol as moodle_enrol
from moodle_bridge.moodle import users as moodle_users
from moodle_bridge.moodle.api import Caller
from moodle_bridge.moodle.encoding import value_field_count
from moodle_bridge.store import Applied, CohortRow, EnrolmentRow, NewAccount, Store
from moodle_bridge.sync.batching import Refused, bisect_send, chunk_by_fields
from moodle_bridge.sync.desired import PROFILE_PREFIX, Record, fingerprint
from moodle_bridge.sync.planner import (
    ChangeAccount,
    CreateAccount,
    EnrolChange,
    Membership,
    Plan,
)

T = TypeVar("T")

#: Every request also carries wstoken, wsfunction and moodlewsrestformat.
REQUEST_OVERHEAD = 3
#: Fields one manual enrolment takes: roleid, userid, courseid, timestart, timeend, suspend.
ENROL_FIELDS = 6
#: Pages of enrolled users read to check the role of the first enrolment the bridge made.
ROLE_CHECK_PAGES = 5
#: Fields one cohort membership takes: cohorttype[type], cohorttype[value], usertype[...].
MEMBER_ADD_FIELDS = 4
MEMBER_REMOVE_FIELDS = 2

#: ``progress(stage, done, total)``: ``done`` more of the ``total`` records of ``stage``
#: (create, update, cohort_add...) were handled.
Progress = Callable[[str, int, int], None]


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


def moodle_record(user: moodle_users.MoodleUser, shortnames: Iterable[str]) -> Record:
    """What Moodle holds for an account, in the shape of a desired record."""
    record: Record = {
        "username": user.username or "",
        "idnumber": user.idnumber or "",
        "firstname": user.firstname or "",
        "lastname": user.lastname or "",
        "email": user.email or "",
        "auth": user.auth or "",
    }
    values = user.customfield_values
    for shortname in shortnames:
        record[PROFILE_PREFIX + shortname] = values.get(shortname, "")
    return record


def find_created(caller: Caller, wanted: dict[str, str]) -> dict[str, moodle_users.MoodleUser]:
    """Look up accounts by idnumber (NIP -> wanted username): those that exist, by NIP.

    Moodle does not keep idnumbers unique, so only an account with the username the bridge
    gave it counts as the bridge's own.
    """
    found: dict[str, moodle_users.MoodleUser] = {}
    for user in moodle_users.get_users_by_field(caller, "idnumber", sorted(wanted)):
        if user.idnumber in wanted and user.username == wanted[user.idnumber]:
            found[user.idnumber] = user
    return found


class Executor:
    """Applies plans through a Moodle client, journalling every write in the store."""

    def __init__(
        self,
        caller: Caller,
        store: Store,
        run_id: int,
        *,
        field_budget: int,
        workers: int = 2,
        progress: Progress | None = None,
        breaker: CircuitBreaker | None = None,
        role_id: int = 5,
        role_shortname: str = "student",
    ) -> None:
        self.caller = caller
        self.store = store
        self.run_id = run_id
        self.budget = field_budget - REQUEST_OVERHEAD
        self.workers = workers
        self.progress: Progress = progress or (lambda _stage, _done, _total: None)
        self._totals: Counter[str] = Counter()
        self._progress_lock = threading.Lock()
        self.breaker = breaker or CircuitBreaker()
        self._lock = threading.Lock()
        self._fields_checked = False
        self.role_id = role_id
        self.role_shortname = role_shortname
        self._role_checked = False
        #: People whose account Moodle refused in this run: already reported once.
        self._refused_nips: set[str] = set()

    # --- the run -------------------------------------------------------------------------
    def apply(
        self,
        plan: Plan,
        cohort_ids: dict[str, int],
        course_ids: Mapping[str, int] | None = None,
    ) -> ExecutionResult:
        """Apply ``plan``; ``cohort_ids`` and ``course_ids`` map idnumbers and shortnames
        to Moodle ids.

        Record errors are collected; a fatal error, the circuit breaker or a network failure
        that outlasted the retries stops the run and is reported in ``stopped``. Whatever was
        confirmed before is kept, and open batches are re-checked by the next run.
        """
        result = ExecutionResult()
        self._totals = Counter(
            create=len(plan.creates),
            update=len(plan.changes),
            cohort_add=len(plan.member_adds),
            cohort_remove=len(plan.member_removes),
            cohort_create=len(plan.cohorts_to_create),
            enrol=len(plan.enrolments),
        )
        try:
            self._create_cohorts(plan.cohorts_to_create, cohort_ids, result)
            self._create_accounts(plan.creates, result)
            self._change_accounts(plan.changes, result)
            self._members(plan.member_adds, cohort_ids, result, added=True)
            self._members(plan.member_removes, cohort_ids, result, added=False)
            self._enrol(plan.enrolments, course_ids or {}, result)
        except (errors.Fatal, errors.Retriable) as error:
            result.stopped = str(error)
        return result

    def _parallel(self, chunks: Sequence[T], work: Callable[[T], None]) -> None:
        if self.workers <= 1 or len(chunks) <= 1:
            for chunk in chunks:
                work(chunk)
            return
        stop = threading.Event()

        def guarded(chunk: T) -> None:
            # After a fatal error (a revoked token) or a failure that outlasted the retries,
            # no further chunk is started: only the requests already in flight follow.
            if stop.is_set():
                return
            try:
                work(chunk)
            except BaseException:
                stop.set()
                raise

        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = [pool.submit(guarded, chunk) for chunk in chunks]
            # Wait for every worker before raising, so no batch is left half-recorded.
            failures = [f.exception() for f in futures]
        for failure in failures:
            if failure is not None:
                raise failure

    def _journal(self, action: str, payload: object) -> int:
        with self._lock:
            return self.store.journal_batch(self.run_id, action, payload)

    def _count(self, result: ExecutionResult, action: str, done: int) -> None:
        with self._lock:
            result.applied[action] += done
        self._advance(action, done)

    def _advance(self, stage: str, done: int) -> None:
        # Workers finish concurrently; the progress display is not thread-safe.
        with self._progress_lock:
            self.progress(stage, done, self._totals[stage])

    def _fail(self, result: ExecutionResult, failures: Iterable[RecordFailure]) -> None:
        with self._lock:
            result.failures.extend(failures)

    # --- cohorts -------------------------------------------------------------------------
    def _create_cohorts(
        self, wanted: dict[str, str], cohort_ids: dict[str, int], result: ExecutionResult
    ) -> None:
        missing = {k: v for k, v in wanted.items() if k not in cohort_ids}
        if not missing:
            return
        batch = self._journal("create_cohorts", {"idnumbers": sorted(missing)})
        # A cohort made by hand, or by a run that crashed before recording it, is taken as it
        # is rather than created twice (Moodle refuses a duplicate idnumber anyway).
        found = find_cohorts(self.caller, missing)
        new = [
            moodle_cohorts.NewCohort(name=name, idnumber=idnumber)
            for idnumber, name in sorted(missing.items())
            if idnumber not in found
        ]
        created = moodle_cohorts.create_cohorts(self.caller, new) if new else []
        known = [CohortRow(c.idnumber, c.id, c.name, False) for c in found.values()]
        known += [CohortRow(c.idnumber, c.id, c.name, True) for c in created]
        self.store.confirm_batch(batch, {"created": len(created)}, cohorts=known)
        for cohort in known:
            cohort_ids[cohort.idnumber] = int(cohort.moodle_id or 0)
        self._count(result, "cohort_create", len(created))

    # --- accounts ------------------------------------------------------------------------
    def _create_accounts(self, creates: list[CreateAccount], result: ExecutionResult) -> None:
        if not creates:
            return
        # Payloads are built per batch, not all at once: at 233,000 people that is memory.
        chunks = chunk_by_fields(creates, lambda c: _new_user_fields(c), self.budget)
        # The first chunk goes alone: its read-back proves the custom profile fields exist
        # before thousands of accounts are created without them.
        self._create_chunk(chunks[0], result)
        self._parallel(chunks[1:], lambda chunk: self._create_chunk(chunk, result))

    def _create_chunk(self, chunk: list[CreateAccount], result: ExecutionResult) -> None:
        def send(items: list[CreateAccount]) -> list[int]:
            batch = self._journal("create_users", _create_payload(items))
            try:
                answer = self.caller.call(
                    "core_user_create_users",
                    {"users": [_new_user(c) for c in items]},
                    retry_writes=False,
                )
            except errors.RecordError as error:
                with self._lock:
                    self.store.fail_batch(batch, error.errorcode or type(error).__name__)
                raise
            except errors.Retriable:
                # The answer was lost: Moodle may or may not have created them. Ask it.
                return self._recover(batch, items)
            created = [int(u["id"]) for u in answer or []]
            if len(created) != len(items):
                self._recover(batch, items)
                msg = (
                    f"Moodle created {len(created)} of {len(items)} accounts: PHP dropped "
                    "part of the request (max_input_vars); lower [moodle] field_budget"
                )
                raise errors.Fatal(msg, wsfunction="core_user_create_users")
            self._confirm_created(batch, items, created)
            return created

        def sent(items: list[CreateAccount], ids: list[int]) -> None:
            self._count(result, "create", len(items))
            self.breaker.record(len(items), 0)
            if not self._fields_checked and ids:
                self._check_profile_fields(items[0], ids[0])

        bisect_send(chunk, send, sent, lambda refused: self._refused("create", refused, result))

    def _confirm_created(
        self, batch: int, items: Sequence[CreateAccount], ids: Sequence[int]
    ) -> None:
        with self._lock:
            self.store.confirm_batch(
                batch,
                {"ids": list(ids)},
                accounts=[
                    _new_account(c, moodle_id) for c, moodle_id in zip(items, ids, strict=True)
                ],
            )

    def _recover(self, batch: int, items: list[CreateAccount]) -> list[int]:
        """Settle a create batch whose answer was lost, from what Moodle now holds.

        Those found are recorded as created; the rest are sent again once. A failure of that
        lookup leaves the batch open for the next run's resume.
        """
        found = find_created(self.caller, {c.nip: c.record["username"] for c in items})
        done = [c for c in items if c.nip in found]
        with self._lock:
            self.store.resolve_batch(
                batch,
                {"found": len(done)},
                run_id=self.run_id,
                accounts=[_new_account(c, found[c.nip].id) for c in done],
            )
        rest = [c for c in items if c.nip not in found]
        ids = [found[c.nip].id for c in done]
        if rest:
            payload = {"users": [_new_user(c) for c in rest]}
            again = self._journal("create_users", _create_payload(rest))
            answer = self.caller.call("core_user_create_users", payload, retry_writes=False)
            new_ids = [int(u["id"]) for u in answer or []]
            self._confirm_created(again, rest, new_ids)
            ids += new_ids
        return ids

    def _check_profile_fields(self, create: CreateAccount, moodle_id: int) -> None:
        # Moodle silently ignores a custom field whose shortname does not exist on the site.
        self._fields_checked = True
        wanted = [
            k[len(PROFILE_PREFIX) :]
            for k, v in create.record.items()
            if k.startswith(PROFILE_PREFIX) and v
        ]
        if not wanted:
            return
        found = moodle_users.get_users_by_field(self.caller, "id", [moodle_id])
        stored = found[0].customfield_values if found else {}
        lost = sorted(name for name in wanted if name not in stored)
        if lost:
            msg = (
                f"Moodle has no custom profile field(s) {', '.join(lost)}: create them in Site "
                "administration > Users > User profile fields, or map them in [sync] "
                "profile_fields of moodle-bridge.toml"
            )
            raise errors.Fatal(msg, wsfunction="core_user_create_users")

    def _refused(self, action: str, refused: Refused[Any], result: ExecutionResult) -> None:
        """Report a record Moodle refused, at once, and let the circuit breaker count it."""
        record = refused.item
        if isinstance(record, CreateAccount):
            with self._lock:
                self._refused_nips.add(record.nip)
        failure = RecordFailure(
            action,
            getattr(record, "nip", None),
            refused.error.errorcode,
            self._explain(record, refused.error),
            getattr(record, "source", ""),
            getattr(record, "row", 0),
        )
        self._fail(result, [failure])
        self.breaker.record(0, 1)

    def _explain(self, record: object, error: errors.MoodleError) -> str:
        if not isinstance(error, errors.InvalidParameter) or not isinstance(record, CreateAccount):
            return error.message
        # Moodle does not say what it refused; the usual causes can be asked for.
        username, email = record.record["username"], record.record["email"]
        if moodle_users.get_users_by_field(self.caller, "username", [username]):
            return (
                "an account with this username already exists and the bridge does not own "
                "it: run with --adopt to take it over"
            )
        if moodle_users.get_users_by_field(self.caller, "email", [email]):
            return "another Moodle account already uses this email address"
        return (
            "Moodle refused the record (invalid parameter): check the username, email, "
            "names and auth method"
        )

    def _change_accounts(self, changes: list[ChangeAccount], result: ExecutionResult) -> None:
        if not changes:
            return
        updates = {c.nip: _user_update(c) for c in changes}
        chunks = chunk_by_fields(changes, lambda c: value_field_count(updates[c.nip]), self.budget)

        def work(chunk: list[ChangeAccount]) -> None:
            batch = self._journal("update_users", {"nips": [c.nip for c in chunk]})
            # Moodle updates per item: each refused item comes back as a warning.
            warnings = moodle_users.update_users(
                self.caller, [moodle_users.UserUpdate.model_validate(updates[c.nip]) for c in chunk]
            )
            refused = {w.itemid: w for w in warnings if w.itemid is not None}
            done = [c for c in chunk if c.moodle_id not in refused]
            with self._lock:
                self.store.confirm_batch(
                    batch,
                    {"refused": sorted(refused)},
                    applied=[
                        Applied(c.nip, fingerprint(c.record), c.suspended, c.record) for c in done
                    ],
                )
                for c in done:
                    result.applied[c.kind] += 1
            self._advance("update", len(chunk))
            self._fail(
                result,
                [
                    RecordFailure(
                        c.kind,
                        c.nip,
                        refused[c.moodle_id].warningcode,
                        refused[c.moodle_id].message,
                    )
                    for c in chunk
                    if c.moodle_id in refused
                ],
            )
            self.breaker.record(len(done), len(chunk) - len(done))

        self._parallel(chunks, work)

    # --- cohort members ------------------------------------------------------------------
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
        action = "cohort_add" if added else "cohort_remove"
        ids = {nip: account.moodle_id for nip, account in self.store.accounts().items()}
        ready = [m for m in members if m.nip in ids and m.cohort in cohort_ids]
        self._fail(
            result,
            [
                RecordFailure(action, m.nip, None, "no account or cohort id to use")
                for m in members
                if (m.nip not in ids or m.cohort not in cohort_ids)
                and m.nip not in self._refused_nips
            ],
        )
        per_item = MEMBER_ADD_FIELDS if added else MEMBER_REMOVE_FIELDS
        chunks = chunk_by_fields(ready, lambda _m: per_item, self.budget)

        def send(items: list[Membership]) -> None:
            batch = self._journal(action, {"members": [[m.cohort, m.nip] for m in items]})
            refs = [(cohort_ids[m.cohort], ids[m.nip]) for m in items]
            if added:
                warnings = moodle_cohorts.add_cohort_members(
                    self.caller, [moodle_cohorts.CohortMemberRef.by_ids(c, u) for c, u in refs]
                )
                # Per item in Moodle; "already a member" (3) means it is done.
                bad = [w for w in warnings if w.warningcode != "3"]
                if bad:
                    with self._lock:
                        self.store.fail_batch(batch, bad[0].warningcode)
                    msg = f"{len(bad)} member(s) not added: {bad[0].message}"
                    raise errors.MoodleException(
                        msg,
                        errorcode=bad[0].warningcode,
                        wsfunction="core_cohort_add_cohort_members",
                    )
            else:
                try:
                    moodle_cohorts.delete_cohort_members(
                        self.caller,
                        [moodle_cohorts.CohortMember(cohortid=c, userid=u) for c, u in refs],
                    )
                except errors.RecordError as error:
                    with self._lock:
                        self.store.fail_batch(batch, error.errorcode or "refused")
                    raise
            rows = [(m.cohort, m.nip) for m in items]
            with self._lock:
                self.store.confirm_batch(
                    batch,
                    {"count": len(items)},
                    members_added=rows if added else (),
                    members_removed=() if added else rows,
                )

        def sent(items: list[Membership], _answer: None) -> None:
            self._count(result, action, len(items))
            self.breaker.record(len(items), 0)

        def work(chunk: list[Membership]) -> None:
            bisect_send(chunk, send, sent, lambda refused: self._refused(action, refused, result))

        self._parallel(chunks, work)

    # --- enrolments ----------------------------------------------------------------------
    def _enrol(
        self, changes: list[EnrolChange], course_ids: Mapping[str, int], result: ExecutionResult
    ) -> None:
        if not changes:
            return
        ids = {nip: account.moodle_id for nip, account in self.store.accounts().items()}
        ready = [c for c in changes if c.nip in ids and c.course in course_ids]
        self._fail(
            result,
            [
                RecordFailure(
                    f"enrol_{c.kind}",
                    c.nip,
                    None,
                    f"course {c.course} is not in Moodle"
                    if c.nip in ids
                    else "the person has no account",
                )
                for c in changes
                if (c.nip not in ids or c.course not in course_ids)
                and c.nip not in self._refused_nips
            ],
        )
        chunks = chunk_by_fields(ready, lambda _c: ENROL_FIELDS, self.budget)

        def item(change: EnrolChange) -> moodle_enrol.Enrolment:
            return moodle_enrol.Enrolment(
                roleid=self.role_id,
                userid=ids[change.nip],
                courseid=course_ids[change.course],
                timestart=change.timestart,
                timeend=change.timeend,
                suspend=change.suspended,
            )

        def send(items: list[EnrolChange]) -> None:
            batch = self._journal(
                "enrol", {"enrolments": [[c.nip, c.course, c.kind] for c in items]}
            )
            # Moodle enrols all or none of a batch; enrolling again is harmless, so retries
            # and a resumed run may resend it.
            try:
                moodle_enrol.enrol_users(self.caller, [item(c) for c in items])
            except errors.RecordError as error:
                with self._lock:
                    self.store.fail_batch(batch, error.errorcode or "refused")
                raise
            with self._lock:
                self.store.confirm_batch(
                    batch,
                    {"count": len(items)},
                    enrolments=[
                        EnrolmentRow(c.nip, c.course, c.suspended, c.timestart, c.timeend)
                        for c in items
                    ],
                )

        def sent(items: list[EnrolChange], _answer: None) -> None:
            with self._lock:
                for c in items:
                    result.applied[f"enrol_{c.kind}"] += 1
            self._advance("enrol", len(items))
            self.breaker.record(len(items), 0)
            first = next((c for c in items if c.kind == "enrol"), None)
            if first is not None and not self._role_checked:
                self._check_role(ids[first.nip], course_ids[first.course])

        def work(chunk: list[EnrolChange]) -> None:
            bisect_send(
                chunk,
                send,
                sent,
                lambda refused: self._refused(f"enrol_{refused.item.kind}", refused, result),
            )

        first, rest = chunks[0], chunks[1:]
        work(first)
        self._parallel(rest, work)

    def _check_role(self, userid: int, courseid: int) -> None:
        """Read the first enrolment back: the configured role id must be the student role."""
        self._role_checked = True
        for page in range(ROLE_CHECK_PAGES):
            users = moodle_enrol.get_enrolled_users(
                self.caller,
                courseid,
                {"userfields": "id,roles", "limitfrom": page * 1000, "limitnumber": 1000},
            )
            for user in users:
                if user.id == userid:
                    names = {role.shortname for role in user.roles if role.roleid == self.role_id}
                    if self.role_shortname not in names:
                        msg = (
                            f"role id {self.role_id} is not the '{self.role_shortname}' "
                            f"role on this site (it is {sorted(names) or 'unknown'}): set "
                            "[enrol] role_id in moodle-bridge.toml"
                        )
                        raise errors.Fatal(msg, wsfunction="enrol_manual_enrol_users")
                    return
            if len(users) < 1000:
                return


def find_cohorts(caller: Caller, idnumbers: Iterable[str]) -> dict[str, moodle_cohorts.Cohort]:
    """The cohorts that already exist in Moodle with these idnumbers."""
    found: dict[str, moodle_cohorts.Cohort] = {}
    for idnumber in idnumbers:
        for cohort in moodle_cohorts.search_cohorts(caller, idnumber):
            if cohort.idnumber == idnumber:
                found[idnumber] = cohort
    return found


def _new_user(create: CreateAccount) -> dict[str, Any]:
    """``core_user_create_users`` parameters of one account; Moodle makes and mails the
    password (accounts of SSO sites log in through their auth plugin instead)."""
    return {**moodle_user_fields(create.record), "createpassword": True}


def _new_user_fields(create: CreateAccount) -> int:
    """How many form fields :func:`_new_user` makes, without making it: a profile field is two
    (``type`` and ``value``), any other field one, plus ``createpassword``."""
    custom = sum(1 for key in create.record if key.startswith(PROFILE_PREFIX))
    return len(create.record) + custom + 1


def _create_payload(items: Sequence[CreateAccount]) -> dict[str, dict[str, str]]:
    """What a resume needs to re-check a create batch: usernames and units by NIP."""
    return {
        "usernames": {c.nip: c.record["username"] for c in items},
        "units": {c.nip: c.unit for c in items},
    }


def _new_account(create: CreateAccount, moodle_id: int) -> NewAccount:
    return NewAccount(
        create.nip,
        moodle_id,
        create.record["username"],
        create.unit,
        fingerprint(create.record),
        "created",
        False,
        create.record,
    )


def _user_update(change: ChangeAccount) -> dict[str, Any]:
    fields = moodle_user_fields(change.changes)
    fields["id"] = change.moodle_id
    if change.kind != "update":
        fields["suspended"] = change.suspended
    return fields
