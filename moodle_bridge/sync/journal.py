"""The write journal: what each batch names, and how a batch of unknown outcome is settled.

Every write is journalled before it is sent (:meth:`Store.journal_batch`) with a payload that
lets a later run find its records in Moodle. A batch whose answer never came (the connection
broke, the site answered with a fault, the process was killed) is settled by :func:`recover`,
both by the run that lost the answer and by the next run's resume (:func:`resume_pending`).
Creates are settled by reading back by idnumber; the other writes are idempotent in Moodle, so
the next plan simply does again what is still missing.

Payloads are JSON in the store. Those written before the payload types existed (the
``{"usernames": ..., "units": ...}`` of a create, ``{"nips": [...]}`` of an update...) are
the same keys, so open batches of older states are read as they are.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from moodle_bridge.moodle import cohorts as moodle_cohorts
from moodle_bridge.moodle import users as moodle_users
from moodle_bridge.moodle.api import Caller
from moodle_bridge.store import Batch, Changes, CohortRow, NewAccount, Store
from moodle_bridge.sync.plan import CreateAccount, create_change

__all__ = [
    "Action",
    "CohortsPayload",
    "CreatePayload",
    "EnrolPayload",
    "MembersPayload",
    "Payload",
    "UpdatePayload",
    "find_cohorts",
    "find_created",
    "read_payload",
    "recover",
    "resume_pending",
    "unanswered_enrolments",
]


class Action(enum.StrEnum):
    """What a journalled batch asked Moodle to do (the ``action`` column of the journal)."""

    CREATE_COHORTS = "create_cohorts"
    CREATE_USERS = "create_users"
    UPDATE_USERS = "update_users"
    COHORT_ADD = "cohort_add"
    COHORT_REMOVE = "cohort_remove"
    ENROL = "enrol"


@dataclass(frozen=True)
class _Payload:
    """A payload keeps its fields under their own names (tuples become JSON lists)."""

    def to_json(self) -> dict[str, Any]:
        """The payload as the journal keeps it."""
        return asdict(self)


@dataclass(frozen=True)
class CohortsPayload(_Payload):
    """Cohorts a batch created, by idnumber."""

    idnumbers: list[str]


@dataclass(frozen=True)
class CreatePayload(_Payload):
    """Accounts a batch created, by NIP: the username sent and what to record once found.

    ``hashes`` (the fingerprint of the record sent), ``names`` and ``seen`` are absent from
    older journals; an account recovered without its hash gets every field sent again.
    """

    usernames: dict[str, str]
    units: dict[str, str] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class UpdatePayload(_Payload):
    """Owned accounts a batch changed, by NIP."""

    nips: list[str]


@dataclass(frozen=True)
class MembersPayload(_Payload):
    """Cohort memberships a batch added or removed: ``(cohort idnumber, NIP)``."""

    members: list[tuple[str, str]]


@dataclass(frozen=True)
class EnrolPayload(_Payload):
    """Manual enrolments a batch made or changed: ``(NIP, course shortname, kind)``."""

    enrolments: list[tuple[str, str, str]]


Payload = CohortsPayload | CreatePayload | UpdatePayload | MembersPayload | EnrolPayload


def read_payload(action: Action, data: Mapping[str, Any] | None) -> Payload:
    """The typed payload of a journalled batch (any format the journal ever held)."""
    data = data or {}
    if action is Action.CREATE_COHORTS:
        return CohortsPayload([str(i) for i in data.get("idnumbers", [])])
    if action is Action.CREATE_USERS:
        return _create_payload(data)
    if action is Action.UPDATE_USERS:
        return UpdatePayload([str(nip) for nip in data.get("nips", [])])
    if action is Action.ENROL:
        return EnrolPayload([(str(n), str(c), str(k)) for n, c, k in data.get("enrolments", [])])
    return MembersPayload([(str(c), str(n)) for c, n in data.get("members", [])])


def _create_payload(data: Mapping[str, Any]) -> CreatePayload:
    usernames = data.get("usernames", {})
    if isinstance(usernames, list):
        # The first journal format: parallel lists of NIPs and usernames.
        usernames = dict(zip(data.get("nips", []), usernames, strict=False))
    return CreatePayload(
        {str(k): str(v) for k, v in usernames.items()},
        dict(data.get("units", {})),
        dict(data.get("hashes", {})),
        dict(data.get("names", {})),
        {str(k): int(v) for k, v in data.get("seen", {}).items()},
    )


def recover(action: Action, batch: Batch, caller: Caller) -> tuple[dict[str, Any], Changes]:
    """Settle a batch whose answer was lost: what to record as its result, and what changed.

    Creates are looked up by idnumber: an account found there with the username the batch
    sent is the bridge's own, a cohort found with the idnumber the batch sent was made by it.
    Updates, memberships and enrolments are idempotent in Moodle: they are "replanned" (the
    next plan does again whatever is missing) and change nothing here. Raises what the
    look-ups raise (a Retriable one leaves the batch open).
    """
    payload = read_payload(action, batch.payload)
    if isinstance(payload, CreatePayload):
        accounts = _found_accounts(caller, payload)
        log = [create_change(CreateAccount(a.nip, a.unit, {})) for a in accounts]
        return {"found": len(accounts)}, Changes(accounts=accounts, log=log)
    if isinstance(payload, CohortsPayload):
        found = find_cohorts(caller, payload.idnumbers)
        rows = [CohortRow(c.idnumber, c.id, c.name, True) for c in found.values()]
        return {"found": len(rows)}, Changes(cohorts=rows)
    return {"replanned": True}, Changes()


def _found_accounts(caller: Caller, payload: CreatePayload) -> list[NewAccount]:
    found = find_created(caller, payload.usernames)
    return [
        NewAccount(
            nip,
            user.id,
            payload.usernames[nip],
            payload.units.get(nip, ""),
            payload.hashes.get(nip),
            "created",
            False,
            None,
            payload.names.get(nip, ""),
            payload.seen.get(nip, 0),
        )
        for nip, user in sorted(found.items())
    ]


def resume_pending(store: Store, caller: Caller, run_id: int | None) -> Counter[str]:
    """Settle every open batch of earlier runs (by run ``run_id``); count them per action.

    An account found for a NIP the store already owns is left as the store has it: a later
    batch (or an adoption) recorded it since.
    """
    resumed: Counter[str] = Counter()
    for batch in store.pending_batches():
        result, changes = recover(Action(batch.action), batch, caller)
        if changes.accounts:
            owned = {nip for nip in (a.nip for a in changes.accounts) if store.account(nip)}
            changes.accounts = [a for a in changes.accounts if a.nip not in owned]
            changes.log = [line for line in changes.log if line.nip not in owned]
        store.resolve_batch(batch.id, result, changes, run_id=run_id)
        resumed[batch.action] += 1
    return resumed


def unanswered_enrolments(store: Store, audience: Mapping[str, str]) -> set[tuple[str, str]]:
    """(NIP, course) of the enrolments the bridge itself may have made without hearing back:
    the enrolments of manual enrolment batches, and the joins of a course's audience cohort
    (``audience``: cohort idnumber -> course shortname), whose answer was lost.

    Found in Moodle by the next run, they are the bridge's own: replanned, never taken for an
    enrolment someone else made (which the bridge would then never suspend or retime).
    """
    found: set[tuple[str, str]] = set()
    for batch in store.unanswered_batches([Action.ENROL, Action.COHORT_ADD]):
        payload = read_payload(Action(batch.action), batch.payload)
        if isinstance(payload, EnrolPayload):
            found.update(
                (nip, course) for nip, course, kind in payload.enrolments if kind == "enrol"
            )
        elif isinstance(payload, MembersPayload):
            found.update((nip, audience[c]) for c, nip in payload.members if c in audience)
    return found


def find_created(caller: Caller, wanted: Mapping[str, str]) -> dict[str, moodle_users.MoodleUser]:
    """Look up accounts by idnumber (NIP -> wanted username): those that exist, by NIP.

    Moodle does not keep idnumbers unique, so only an account with the username the bridge
    gave it counts as the bridge's own.
    """
    found: dict[str, moodle_users.MoodleUser] = {}
    for chunk in caller.chunks(sorted(wanted), lambda nip: nip, others={"field": "idnumber"}):
        for user in moodle_users.get_users_by_field(caller, "idnumber", chunk):
            nip = user.idnumber or ""
            if nip in wanted and user.username == wanted[nip]:
                found[nip] = user
    return found


def find_cohorts(caller: Caller, idnumbers: Iterable[str]) -> dict[str, moodle_cohorts.Cohort]:
    """The cohorts that already exist in Moodle with these idnumbers."""
    found: dict[str, moodle_cohorts.Cohort] = {}
    for idnumber in idnumbers:
        for cohort in moodle_cohorts.search_cohorts(caller, idnumber):
            if cohort.idnumber == idnumber:
                found[idnumber] = cohort
    return found
