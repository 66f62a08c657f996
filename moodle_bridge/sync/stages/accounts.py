"""Accounts: create new ones (``core_user_create_users``), change owned ones
(``core_user_update_users``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from moodle_bridge import errors
from moodle_bridge.moodle import users as moodle_users
from moodle_bridge.moodle.api import Caller, MoodleWarning
from moodle_bridge.store import Applied, Changes, NewAccount
from moodle_bridge.sync.desired import PROFILE_PREFIX, fingerprint
from moodle_bridge.sync.journal import Action, CreatePayload, UpdatePayload
from moodle_bridge.sync.plan import (
    ChangeAccount,
    CreateAccount,
    account_change,
    create_change,
)
from moodle_bridge.sync.stages.base import RecordFailure, Settled, StageDefaults
from moodle_bridge.sync.verify import Verifier

__all__ = ["ChangeStage", "CreateStage", "user_fields"]


def user_fields(record: Mapping[str, str]) -> dict[str, Any]:
    """A record as ``core_user_*`` fields: ``profile_field_x`` become ``customfields``."""
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


class CreateStage(StageDefaults):
    """Creates accounts: all or nothing per batch in Moodle, so a refused one is bisected out.

    Moodle makes and mails the password (accounts of SSO sites log in through their auth
    plugin instead).
    """

    action = Action.CREATE_USERS
    progress = "create"

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier

    def wire(self, item: CreateAccount) -> moodle_users.NewUser:
        """The account with ``createpassword``."""
        return moodle_users.NewUser.model_validate(
            {**user_fields(item.record), "createpassword": True}
        )

    def payload(self, items: Sequence[CreateAccount]) -> CreatePayload:
        """Usernames to look the accounts up by, and what to record once found."""
        return CreatePayload(
            usernames={c.nip: c.record["username"] for c in items},
            units={c.nip: c.unit for c in items},
            hashes={c.nip: fingerprint(c.record) for c in items},
            names={c.nip: c.display_name for c in items if c.display_name},
            seen={c.nip: c.seen_at for c in items if c.seen_at},
        )

    def send(
        self, caller: Caller, items: Sequence[CreateAccount]
    ) -> list[moodle_users.CreatedUser]:
        """Create the batch; Moodle answers with the ids, in order."""
        return moodle_users.create_users(caller, [self.wire(item) for item in items])

    def settle(
        self, items: Sequence[CreateAccount], answer: list[moodle_users.CreatedUser]
    ) -> Settled:
        """Every account of the batch is the bridge's, as sent."""
        accounts = [_created(c, user.id) for c, user in zip(items, answer, strict=True)]
        changes = Changes(accounts=accounts, log=[create_change(c) for c in items])
        return Settled({"ids": [user.id for user in answer]}, changes, Counter(create=len(items)))

    def failure(self, item: CreateAccount, errorcode: str | None, reason: str) -> RecordFailure:
        """The failure of the person's row."""
        return RecordFailure("create", item.nip, errorcode, reason, item.source, item.row)

    def refused(self, item: CreateAccount, error: errors.RecordError) -> Settled | RecordFailure:
        """Why Moodle refused the account, unless it turns out to be the bridge's own."""
        found = self.verifier.refused_create(item, error)
        if isinstance(found, str):
            return self.failure(item, error.errorcode, found)
        # Recorded without an applied record: the next plan sends every field again.
        account = NewAccount(
            item.nip, found.id, item.record["username"], item.unit, None, "created",
            bool(found.suspended), None, item.display_name, item.seen_at,
        )  # fmt: skip
        changes = Changes(accounts=[account], log=[create_change(item)])
        return Settled({"owned": found.id}, changes, Counter(create=1))

    def unsettled(self, items: Sequence[CreateAccount], changes: Changes) -> list[CreateAccount]:
        """Accounts the read-back did not find are created again."""
        found = {account.nip for account in changes.accounts}
        return [item for item in items if item.nip not in found]

    def verify(self, changes: Changes) -> list[RecordFailure]:
        """The first created account proves the custom profile fields exist (or stops)."""
        self.verifier.profile_fields(changes.accounts)
        return []


def _created(create: CreateAccount, moodle_id: int) -> NewAccount:
    return NewAccount(
        create.nip, moodle_id, create.record["username"], create.unit,
        fingerprint(create.record), "created", False, create.record, create.display_name,
        create.seen_at,
    )  # fmt: skip


class ChangeStage(StageDefaults):
    """Changes owned accounts: Moodle applies each item on its own and warns of the others."""

    action = Action.UPDATE_USERS
    progress = "update"

    def wire(self, item: ChangeAccount) -> moodle_users.UserUpdate:
        """Only the changed fields, and the suspension when it changes."""
        fields = {**user_fields(item.changes), "id": item.moodle_id}
        if item.kind != "update":
            fields["suspended"] = item.suspended
        return moodle_users.UserUpdate.model_validate(fields)

    def payload(self, items: Sequence[ChangeAccount]) -> UpdatePayload:
        """The NIPs changed."""
        return UpdatePayload([c.nip for c in items])

    def send(self, caller: Caller, items: Sequence[ChangeAccount]) -> list[MoodleWarning]:
        """Apply the batch; Moodle answers with a warning per account it did not update."""
        return moodle_users.update_users(caller, [self.wire(item) for item in items])

    def settle(self, items: Sequence[ChangeAccount], answer: list[MoodleWarning]) -> Settled:
        """The accounts Moodle did not warn about are applied; the others failed."""
        refused = {w.itemid: w for w in answer if w.itemid is not None}
        done = [c for c in items if c.moodle_id not in refused]
        settled = Settled(
            {"refused": sorted(refused)},
            Changes(applied=[_applied(c) for c in done], log=[account_change(c) for c in done]),
            Counter(c.kind for c in done),
        )
        for c in items:
            if c.moodle_id in refused:
                warning = refused[c.moodle_id]
                settled.failures.append(self.failure(c, warning.warningcode, warning.message))
        return settled

    def failure(self, item: ChangeAccount, errorcode: str | None, reason: str) -> RecordFailure:
        """The failure of the person's row, under the change's kind."""
        return RecordFailure(item.kind, item.nip, errorcode, reason, item.source, item.row)


def _applied(change: ChangeAccount) -> Applied:
    return Applied(
        change.nip,
        fingerprint(change.record),
        change.suspended,
        change.record,
        unit=change.unit or None,
        reason=change.reason.to_json() if change.kind == "suspend" else None,
        display_name=change.display_name or None,
        seen_at=change.seen_at or None,
    )
