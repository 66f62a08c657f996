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


EnrolKind = Literal["enrol", "suspend", "reactivate", "retime"]


@dataclass(frozen=True)
class WantedEnrolment:
    """A course someone should be enrolled in (manual enrolment), with its window."""

    nip: str
    course: str
    timestart: int = 0
    timeend: int = 0


@dataclass(frozen=True)
class KnownEnrolment:
    """An enrolment the bridge made, as it last set it."""

    nip: str
    course: str
    suspended: bool
    timestart: int = 0
    timeend: int = 0


@dataclass(frozen=True)
class EnrolChange:
    """Enrol, suspend, reactivate or move the window of one manual enrolment.

    Removal is always a suspension: progress and history stay in Moodle.
    """

    nip: str
    course: str
    kind: EnrolKind
    suspended: bool
    timestart: int = 0
    timeend: int = 0


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
    enrolments: list[EnrolChange] = field(default_factory=list)
    guard: GuardTrip | None = None

    def count(self, kind: ChangeKind) -> int:
        """How many account changes of ``kind`` the plan holds."""
        return sum(1 for change in self.changes if change.kind == kind)

    @property
    def is_empty(self) -> bool:
        """Whether the plan writes nothing at all."""
        return not (
            self.enrolments
            or self.creates
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
            **{
                f"enrol_{kind}": sum(1 for e in self.enrolments if e.kind == kind)
                for kind in ("enrol", "suspend", "reactivate", "retime")
            },
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
    wanted_enrolments: Mapping[tuple[str, str], WantedEnrolment] | None = None,
    known_enrolments: Mapping[tuple[str, str], KnownEnrolment] | None = None,
    guards: Guards = Guards(),
) -> Plan:
    """Compute what must change so that Moodle matches ``desired``.

    ``wanted_enrolments`` (None: enrolments are not managed in this run) and
    ``known_enrolments`` (those the bridge made) give the manual enrolments to plan.
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
    managed_enrolments = 0
    if wanted_enrolments is not None:
        in_scope = {nip for nip, account in known.items() if account.unit in scope}
        in_scope.update(desired.accounts)
        enrolments = known_enrolments or {}
        result.enrolments = plan_enrolments(wanted_enrolments, enrolments, in_scope=in_scope)
        managed_enrolments = sum(1 for nip, _ in enrolments if nip in in_scope)
    result.guard = _check_guards(
        result, desired, known, scope, units_seen, guards, managed_enrolments
    )
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
    managed_enrolments: int = 0,
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
    enrol_suspensions = sum(1 for e in result.enrolments if e.kind == "suspend")
    if enrol_suspensions and not (
        guards.allow_suspend is not None and enrol_suspensions <= guards.allow_suspend
    ):
        enrol_limit = suspension_limit(managed_enrolments, guards)
        if enrol_suspensions > enrol_limit:
            return GuardTrip(
                f"the plan would suspend {enrol_suspensions} enrolments, more than the limit "
                f"of {enrol_limit} (use --allow-suspend N to accept)",
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


def plan_enrolments(
    wanted: Mapping[tuple[str, str], WantedEnrolment],
    known: Mapping[tuple[str, str], KnownEnrolment],
    *,
    in_scope: Collection[str],
) -> list[EnrolChange]:
    """What must change so the bridge's manual enrolments match ``wanted``.

    ``known`` holds only enrolments the bridge made, so nobody else's is ever touched;
    an unwanted one is suspended (only for people in ``in_scope``: the roster's units).
    """
    changes: list[EnrolChange] = []
    for key, want in sorted(wanted.items()):
        have = known.get(key)
        kind: EnrolKind | None = None
        if have is None:
            kind = "enrol"
        elif have.suspended:
            kind = "reactivate"
        elif (have.timestart, have.timeend) != (want.timestart, want.timeend):
            kind = "retime"
        if kind is not None:
            changes.append(
                EnrolChange(want.nip, want.course, kind, False, want.timestart, want.timeend)
            )
    for key, have in sorted(known.items()):
        if key not in wanted and not have.suspended and have.nip in in_scope:
            changes.append(
                EnrolChange(have.nip, have.course, "suspend", True, have.timestart, have.timeend)
            )
    return changes
