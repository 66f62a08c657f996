"""Desired state + what the bridge knows of Moodle -> a plan of typed actions. Pure: no I/O."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal

from moodle_bridge.sync.desired import DesiredState, Record

ChangeKind = Literal["update", "suspend", "unsuspend"]


@dataclass(frozen=True)
class KnownAccount:
    """An account the bridge owns, as it was last applied (or, with reconcile, as read)."""

    nip: str
    moodle_id: int
    unit: str
    record: Record
    suspended: bool


@dataclass(frozen=True)
class CreateAccount:
    """Create the account of a person Moodle does not know yet."""

    nip: str
    unit: str
    record: Record
    source: str = ""
    row: int = 0


@dataclass(frozen=True)
class ChangeAccount:
    """Change an owned account: only the fields in ``changes`` are sent."""

    nip: str
    moodle_id: int
    kind: ChangeKind
    changes: Record
    #: The whole record as it will be after the change, to remember as applied.
    record: Record
    suspended: bool


@dataclass(frozen=True)
class Membership:
    """A person in a cohort (by cohort idnumber and NIP)."""

    cohort: str
    nip: str


@dataclass(frozen=True)
class GuardTrip:
    """Why the plan must not be applied without an explicit override."""

    reason: str
    #: NIPs whose accounts the plan would suspend, for the proposed-removals file.
    suspensions: tuple[str, ...] = ()


@dataclass
class Plan:
    """Everything a sync would do, in the order it does it."""

    creates: list[CreateAccount] = field(default_factory=list)
    changes: list[ChangeAccount] = field(default_factory=list)
    cohorts_to_create: dict[str, str] = field(default_factory=dict)
    member_adds: list[Membership] = field(default_factory=list)
    member_removes: list[Membership] = field(default_factory=list)
    guard: GuardTrip | None = None

    def count(self, kind: ChangeKind) -> int:
        """How many account changes of ``kind`` the plan holds."""
        return sum(1 for change in self.changes if change.kind == kind)

    @property
    def is_empty(self) -> bool:
        """Whether the plan writes nothing at all."""
        return not (
            self.creates
            or self.changes
            or self.cohorts_to_create
            or self.member_adds
            or self.member_removes
        )

    def summary(self) -> dict[str, int]:
        """Counts per action, for people and for ``--json``."""
        return {
            "create": len(self.creates),
            "update": self.count("update"),
            "suspend": self.count("suspend"),
            "unsuspend": self.count("unsuspend"),
            "cohort_create": len(self.cohorts_to_create),
            "cohort_add": len(self.member_adds),
            "cohort_remove": len(self.member_removes),
        }


@dataclass(frozen=True)
class Guards:
    """Limits on what a run may do without an explicit override."""

    #: Suspending more than this share of the managed accounts in scope stops the run...
    suspend_share: float = 0.05
    #: ...and so does suspending more than this many, whichever is lower.
    suspend_max: int = 500
    #: ``--allow-suspend N``: the operator accepts up to N suspensions.
    allow_suspend: int | None = None


def plan(
    desired: DesiredState,
    known: Mapping[str, KnownAccount],
    members: Mapping[str, Collection[str]],
    *,
    scope: Collection[str],
    units_seen: Collection[str] = (),
    known_cohorts: Collection[str] = (),
    guards: Guards = Guards(),
) -> Plan:
    """Compute what must change so that Moodle matches ``desired``.

    ``known`` are the accounts the bridge owns; nobody else's account is ever in a plan.
    ``scope`` are the units this roster speaks for: an owned account of a unit in scope
    that the roster no longer lists is suspended; other units' accounts are left alone.
    ``members`` are the cohort memberships the bridge made (cohort idnumber -> NIPs).
    """
    result = Plan()
    for nip, want in desired.accounts.items():
        have = known.get(nip)
        if have is None:
            if want.active:
                result.creates.append(
                    CreateAccount(nip, want.unit, want.record, want.source, want.row)
                )
            continue
        changes = {k: v for k, v in want.record.items() if have.record.get(k) != v}
        kind: ChangeKind = "update"
        if want.active and have.suspended:
            kind = "unsuspend"
        elif not want.active and not have.suspended:
            kind = "suspend"
        elif not want.active:
            continue  # suspended already: no need to keep an inactive person's data current
        if changes or kind != "update":
            result.changes.append(
                ChangeAccount(
                    nip, have.moodle_id, kind, changes, want.record, suspended=not want.active
                )
            )

    for nip, have in known.items():
        if nip not in desired.accounts and have.unit in scope and not have.suspended:
            result.changes.append(
                ChangeAccount(nip, have.moodle_id, "suspend", {}, have.record, suspended=True)
            )

    _plan_memberships(result, desired, known, members, known_cohorts)
    result.guard = _check_guards(result, desired, known, scope, units_seen, guards)
    return result


def _plan_memberships(
    result: Plan,
    desired: DesiredState,
    known: Mapping[str, KnownAccount],
    members: Mapping[str, Collection[str]],
    known_cohorts: Collection[str],
) -> None:
    # Suspended and departed people keep their memberships: removing one from a cohort that
    # is synced to a course would unenrol them and lose their history there.
    for nip, want in sorted(desired.accounts.items()):
        if not want.active:
            continue
        for cohort in sorted(want.cohorts):
            if nip not in members.get(cohort, ()):
                result.member_adds.append(Membership(cohort, nip))
                if cohort not in known_cohorts:
                    result.cohorts_to_create[cohort] = desired.cohort_names.get(cohort, cohort)
    for cohort, nips in sorted(members.items()):
        for nip in sorted(nips):
            wanted = desired.accounts.get(nip)
            if wanted and wanted.active and nip in known and cohort not in wanted.cohorts:
                result.member_removes.append(Membership(cohort, nip))


def suspension_limit(managed: int, guards: Guards) -> int:
    """How many suspensions a run may make without ``--allow-suspend``."""
    if guards.allow_suspend is not None:
        return guards.allow_suspend
    return min(max(1, math.floor(guards.suspend_share * managed)), guards.suspend_max)


def _check_guards(
    result: Plan,
    desired: DesiredState,
    known: Mapping[str, KnownAccount],
    scope: Collection[str],
    units_seen: Collection[str],
    guards: Guards,
) -> GuardTrip | None:
    suspensions = tuple(sorted(c.nip for c in result.changes if c.kind == "suspend"))
    managed = sum(1 for account in known.values() if account.unit in scope)
    override = guards.allow_suspend is not None and len(suspensions) <= guards.allow_suspend
    if not desired.accounts and managed and not override:
        return GuardTrip(
            f"the roster is empty but the bridge manages {managed} accounts in scope", suspensions
        )
    vanished = sorted(set(units_seen) & set(scope) - desired.units)
    if vanished and suspensions and not override:
        return GuardTrip(
            f"unit(s) {', '.join(vanished)} were in the last roster and are missing from this one",
            suspensions,
        )
    limit = suspension_limit(managed, guards)
    if len(suspensions) > limit:
        return GuardTrip(
            f"the plan would suspend {len(suspensions)} accounts, more than the "
            f"limit of {limit} (use --allow-suspend N to accept)",
            suspensions,
        )
    return None
