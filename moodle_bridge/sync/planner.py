"""Desired state + what the bridge knows of Moodle -> a :class:`Plan`. Pure: no I/O, no clock.

The rules that protect people, each named where it is applied:

* **Ownership follows the person.** A person belongs to the unit of the most recent roster row
  that listed them (by the roster's date, whatever unit or plugin). A row older than that
  changes nothing: an old file run again cannot undo a newer one.
* **A run speaks for its scope.** It may suspend only people whose current unit is in its
  scope, and only when they are inactive or absent.
* **Absent is not gone.** Someone missing from their unit's roster is suspended only once the
  grace period since the first run that missed them has passed; listed again, anywhere, the
  countdown stops.
* **A refused row never changes an existing account** (nor its memberships or enrolments).
* **No removal that can unenrol.** A cohort removal is made only when the site's cohort sync
  is proven to suspend rather than unenrol; a course's audience cohort only ever grows; an
  enrolment is suspended, never removed, and only when its gap is closed (or gap management is
  stopped on purpose).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from moodle_bridge.i18n import _
from moodle_bridge.sync.desired import PROFILE_PREFIX, DesiredAccount, DesiredState
from moodle_bridge.sync.plan import (
    Absence,
    AccountKind,
    ChangeAccount,
    CreateAccount,
    EnrolChange,
    EnrolKind,
    GuardTrip,
    Kept,
    Membership,
    Plan,
    Reason,
    Record,
)

__all__ = [
    "AUDIENCE_PREFIX",
    "GAP_PREFIX",
    "Audience",
    "CohortView",
    "EnrolmentView",
    "Guards",
    "KnownAccount",
    "KnownEnrolment",
    "Rules",
    "WantedEnrolment",
    "plan",
    "suspension_limit",
]

#: Idnumber prefixes of the bridge's gap cohorts and of its courses' audience cohorts.
GAP_PREFIX = "gap:"
AUDIENCE_PREFIX = "course:"
GAP_REASON = Reason("gap")


@dataclass(frozen=True)
class KnownAccount:
    """An account the bridge owns, as it was last applied (or, with reconcile, as read)."""

    nip: str
    moodle_id: int
    unit: str
    record: Record
    suspended: bool
    #: The roster date of the latest row that listed the person (0: unknown).
    seen_at: int = 0
    #: When a run first missed the person in their unit's roster (None: not absent).
    absent_since: int | None = None


@dataclass(frozen=True)
class WantedEnrolment:
    """A course someone should be enrolled in (manual enrolment), with its window."""

    nip: str
    course: str
    timestart: int = 0
    timeend: int = 0
    reason: Reason = GAP_REASON


@dataclass(frozen=True)
class KnownEnrolment:
    """An enrolment the bridge knows: made by it (``manual``), through its audience cohort
    (``cohort``), or someone else's (``other``), as it last set or saw it."""

    nip: str
    course: str
    suspended: bool
    timestart: int = 0
    timeend: int = 0
    method: str = "manual"


@dataclass(frozen=True)
class Guards:
    """Limits on what a run may do without an explicit override."""

    #: Suspending more than this share of the managed accounts in scope stops the run...
    suspend_share: float = 0.05
    #: ...and so does suspending more than this many, whichever is lower.
    suspend_max: int = 500
    #: ``--allow-suspend N``: the operator accepts up to N suspensions.
    allow_suspend: int | None = None


@dataclass(frozen=True)
class Rules:
    """What a run may do: its scope, its clock and its limits."""

    #: The units this roster speaks for.
    scope: frozenset[str]
    #: Now (Unix seconds): absences are dated with it.
    now: int
    #: Seconds an absent person keeps their account active.
    absent_grace: int = 14 * 86400
    guards: Guards = Guards()
    #: True when the operator or the plugin named the scope: then a unit in it that the roster
    #: does not list at all stops the run (a wrong or truncated file).
    explicit_scope: bool = False


@dataclass(frozen=True)
class Audience:
    """The course (and window) a cohort-mode audience cohort enrols its members in, and the
    step of the competency it teaches."""

    course: str
    timestart: int = 0
    timeend: int = 0
    competency: str = ""
    from_level: int = 0


@dataclass(frozen=True)
class CohortView:
    """What the run knows of cohorts in Moodle."""

    #: Cohorts that exist in Moodle and are the bridge's own or adopted.
    usable: frozenset[str] = frozenset()
    #: Cohorts that exist in Moodle but are not the bridge's: never touched.
    foreign: frozenset[str] = frozenset()
    #: True when the site's cohort sync is proven to suspend (not delete) on removal.
    removal_safe: bool = False
    #: Audience cohort idnumber -> its course and window.
    audience: Mapping[str, Audience] = field(default_factory=dict)


@dataclass(frozen=True)
class EnrolmentView:
    """The enrolments of a run that manages them (with assessments, or ``--stop-gaps``)."""

    wanted: Mapping[tuple[str, str], WantedEnrolment]
    known: Mapping[tuple[str, str], KnownEnrolment]
    #: Known manual enrolments that may be suspended: their gap is closed, or gap management
    #: stops. Anything else not wanted is left as it is (a learner is never locked out of a
    #: course in progress only because the plan changed its mind).
    releasable: Mapping[tuple[str, str], Reason] = field(default_factory=dict)
    #: Catalogue courses Moodle lacks: nobody is enrolled in them, joins their audience cohort
    #: or waits for its link (until an administrator creates the course).
    missing_courses: frozenset[str] = frozenset()


def plan(
    desired: DesiredState,
    known: Mapping[str, KnownAccount],
    members: Mapping[str, Collection[str]],
    rules: Rules,
    cohorts: CohortView = CohortView(),
    enrolments: EnrolmentView | None = None,
) -> Plan:
    """Compute what must change so that Moodle matches ``desired``, within ``rules``.

    ``known`` are the accounts the bridge owns (nobody else's account is ever in a plan),
    ``members`` the memberships it made (cohort idnumber -> NIPs). ``enrolments`` None: this
    run does not manage enrolments or gap cohorts, which stay exactly as they are.
    """
    result = Plan()
    listed = _plan_listed(result, desired, known)
    _plan_unlisted(result, desired, known, rules, listed)
    _plan_memberships(result, desired, listed, members, cohorts, enrolments)
    managed_enrolments = 0
    if enrolments is not None:
        result.enrolments = plan_enrolments(enrolments, listed)
        managed_enrolments = sum(
            1 for (nip, _), e in enrolments.known.items() if e.method == "manual" and nip in listed
        )
    result.guard = _check_guards(result, desired, known, rules, managed_enrolments)
    return result


def _plan_listed(
    result: Plan, desired: DesiredState, known: Mapping[str, KnownAccount]
) -> dict[str, DesiredAccount]:
    """Create, change, suspend or unsuspend the people the roster lists. Returns the listed
    people whose rows count (not kept, not stale, not inactive without an account), by NIP."""
    for nip, refusal in sorted(desired.kept.items()):
        have = known.get(nip)
        if have is not None:
            result.kept.append(Kept(nip, have.unit, refusal.reason, refusal.source, refusal.row))
            _listed_again(result, have, desired.roster_date)
    listed: dict[str, DesiredAccount] = {}
    for nip, want in desired.accounts.items():
        have = known.get(nip)
        if have is None:
            if want.active:
                listed[nip] = want
                result.creates.append(
                    CreateAccount(
                        nip,
                        want.unit,
                        want.record,
                        display_name=want.display_name,
                        seen_at=desired.roster_date,
                        source=want.source,
                        row=want.row,
                    )
                )
            continue
        if desired.roster_date < have.seen_at:
            newer = dt.datetime.fromtimestamp(have.seen_at, dt.UTC).date().isoformat()
            why = _("a newer roster ({date}) lists this person").format(date=newer)
            result.kept.append(Kept(nip, have.unit, why, want.source, want.row))
            continue
        listed[nip] = want
        _listed_again(result, have, desired.roster_date)
        change = _account_change(want, have, desired.roster_date)
        if change is not None:
            result.changes.append(change)
    return listed


def _listed_again(result: Plan, have: KnownAccount, roster_date: int) -> None:
    if roster_date > have.seen_at:
        result.seen[have.nip] = roster_date
    if have.absent_since is not None:
        result.absent_since[have.nip] = None


def _account_change(
    want: DesiredAccount, have: KnownAccount, roster_date: int
) -> ChangeAccount | None:
    kind: AccountKind = "update"
    if want.active and have.suspended:
        kind = "unsuspend"
    elif not want.active and not have.suspended:
        kind = "suspend"
    elif not want.active:
        return None  # suspended already: an inactive person's data need not be current
    changes = {k: v for k, v in want.record.items() if have.record.get(k) != v}
    if not changes and kind == "update":
        return None
    if kind == "suspend":
        reason = Reason.of("status", status=want.status)
    elif want.unit != have.unit:
        reason = Reason.of("moved", old=have.unit, new=want.unit)
    elif kind == "unsuspend":
        reason = Reason.of("returned", status=want.status)
    else:
        reason = Reason.of("changed", fields=", ".join(_field_names(changes)))
    return ChangeAccount(
        want.nip,
        have.moodle_id,
        kind,
        changes,
        want.record,
        suspended=not want.active,
        reason=reason,
        unit=want.unit,
        before={k: have.record[k] for k in changes if k in have.record},
        display_name=want.display_name,
        seen_at=roster_date,
        source=want.source,
        row=want.row,
    )


def _field_names(changes: Mapping[str, str]) -> list[str]:
    return sorted(key.removeprefix(PROFILE_PREFIX) for key in changes)


def _plan_unlisted(
    result: Plan,
    desired: DesiredState,
    known: Mapping[str, KnownAccount],
    rules: Rules,
    listed: Mapping[str, DesiredAccount],
) -> None:
    """Start, continue or end the grace period of owned accounts the roster does not list."""
    for nip, have in sorted(known.items()):
        if nip in listed or nip in desired.kept or nip in desired.accounts:
            continue
        # Absence is evidence only from a roster of the person's own unit (the run's scope),
        # no older than the row that last listed them.
        if have.suspended or have.unit not in rules.scope:
            continue
        if desired.roster_date < have.seen_at:
            continue
        since = have.absent_since
        if since is None:
            since = rules.now
            result.absent_since[nip] = since
        suspend_on = since + rules.absent_grace
        if rules.now < suspend_on:
            result.absences.append(Absence(nip, have.unit, since, suspend_on))
            continue
        departed = desired.departed.get(nip)
        day = dt.datetime.fromtimestamp(since, dt.UTC).date().isoformat()
        reason = (
            Reason.of("absent", unit=have.unit, since=day, status=departed.status)
            if departed is not None
            else Reason.of("absent", unit=have.unit, since=day)
        )
        result.changes.append(
            ChangeAccount(
                nip,
                have.moodle_id,
                "suspend",
                {},
                have.record,
                suspended=True,
                reason=reason,
                unit=have.unit,
            )
        )


def _plan_memberships(
    result: Plan,
    desired: DesiredState,
    listed: Mapping[str, DesiredAccount],
    members: Mapping[str, Collection[str]],
    cohorts: CohortView,
    enrolments: EnrolmentView | None,
) -> None:
    # Only listed, active people change memberships: suspended, departed and kept people keep
    # theirs (removing them from a cohort synced to a course could unenrol them).
    missing = enrolments.missing_courses if enrolments is not None else frozenset()
    for nip, want in sorted(listed.items()):
        if not want.active:
            continue
        for cohort in sorted(want.cohorts - cohorts.foreign):
            if nip in members.get(cohort, ()):
                continue
            audience = cohorts.audience.get(cohort)
            if audience is None:
                join = Membership(cohort, nip, _cohort_reason(cohort, want.unit))
            elif audience.course in missing:
                # No course to link the cohort to, nor to enrol its members in: the course is
                # reported as missing, never as a link to make.
                continue
            elif cohort not in cohorts.usable:
                # Nobody joins an audience cohort before an administrator could link it to its
                # course: the cohort is created now, its people join at the next sync.
                result.cohorts_to_create[cohort] = desired.cohort_names.get(cohort, cohort)
                result.awaiting_link[cohort] = audience.course
                continue
            else:
                reason = _step(audience.competency, audience.from_level)
                join = Membership(
                    cohort, nip, reason, audience.course, audience.timestart, audience.timeend
                )
            result.member_adds.append(join)
            if cohort not in cohorts.usable:
                result.cohorts_to_create[cohort] = desired.cohort_names.get(cohort, cohort)
    for cohort, nips in sorted(members.items()):
        if not _removable(cohort, gaps=enrolments is not None):
            continue
        for nip in sorted(nips):
            stays = listed.get(nip)
            if stays is None or not stays.active or cohort in stays.cohorts:
                continue
            reason = Reason.of("unit", unit=stays.unit)
            if cohort.startswith(GAP_PREFIX):
                reason = Reason.of("gap_closed", competency=cohort.split(":")[1])
            target = result.member_removes if cohorts.removal_safe else result.held_removals
            target.append(Membership(cohort, nip, reason))


def _step(competency: str, from_level: int) -> Reason:
    return Reason.of("gap", competency=competency, **{"from": from_level, "to": from_level + 1})


def _cohort_reason(cohort: str, unit: str) -> Reason:
    """Why a person joins a cohort that is not an audience cohort."""
    parts = cohort.split(":")
    if cohort.startswith(GAP_PREFIX) and len(parts) == 3 and parts[2].isdigit():
        return _step(parts[1], int(parts[2]))
    return Reason.of("unit", unit=unit)


def _removable(cohort: str, *, gaps: bool) -> bool:
    """Audience cohorts only grow; gap cohorts change only in runs that manage gaps."""
    if cohort.startswith(AUDIENCE_PREFIX):
        return False
    return gaps or not cohort.startswith(GAP_PREFIX)


def suspension_limit(managed: int, guards: Guards) -> int:
    """How many suspensions a run may make without ``--allow-suspend``."""
    if guards.allow_suspend is not None:
        return guards.allow_suspend
    return min(max(1, math.floor(guards.suspend_share * managed)), guards.suspend_max)


def _check_guards(
    result: Plan,
    desired: DesiredState,
    known: Mapping[str, KnownAccount],
    rules: Rules,
    managed_enrolments: int,
) -> GuardTrip | None:
    guards = rules.guards
    suspensions = result.suspensions
    managed = sum(1 for account in known.values() if account.unit in rules.scope)
    override = guards.allow_suspend is not None and len(suspensions) <= guards.allow_suspend
    # An empty file names no unit, so its scope is empty too: it is still a wrong file.
    if not (desired.accounts or desired.kept or desired.departed) and known and not override:
        reason = _("the roster lists nobody but the bridge manages {count} accounts")
        return GuardTrip(reason.format(count=len(known)), suspensions)
    if rules.explicit_scope and not override:
        listed_units = desired.units | {d.unit for d in desired.departed.values()}
        missing = sorted(
            unit
            for unit in rules.scope - listed_units
            if any(a.unit == unit for a in known.values())
        )
        if missing and (suspensions or result.absences):
            reason = _(
                "unit(s) {units} are in this run's scope, but the roster lists nobody of them"
            )
            return GuardTrip(reason.format(units=", ".join(missing)), suspensions)
    # A removal from a cohort may unenrol someone (cohort sync): it counts as an enrolment
    # suspension.
    enrol_suspensions = sum(1 for e in result.enrolments if e.kind == "suspend") + len(
        result.member_removes
    )
    if enrol_suspensions and not (
        guards.allow_suspend is not None and enrol_suspensions <= guards.allow_suspend
    ):
        enrol_limit = suspension_limit(managed_enrolments + len(result.member_removes), guards)
        if enrol_suspensions > enrol_limit:
            reason = _(
                "the plan would suspend or remove {count} enrolments and memberships, more than "
                "the limit of {limit} (use --allow-suspend N to accept)"
            )
            return GuardTrip(reason.format(count=enrol_suspensions, limit=enrol_limit), suspensions)
    limit = suspension_limit(managed, guards)
    if len(suspensions) > limit:
        reason = _(
            "the plan would suspend {count} accounts, more than the limit of {limit} (use "
            "--allow-suspend N to accept)"
        )
        return GuardTrip(reason.format(count=len(suspensions), limit=limit), suspensions)
    return None


def plan_enrolments(view: EnrolmentView, listed: Collection[str]) -> list[EnrolChange]:
    """What must change so the bridge's manual enrolments match ``view.wanted``.

    Only enrolments the bridge made itself (method ``manual``) are ever written: someone
    else's and those of an audience cohort are left alone. An unwanted one is suspended only
    when it is releasable and its person is listed by this run's roster.
    """
    changes: list[EnrolChange] = []
    for key, want in sorted(view.wanted.items()):
        have = view.known.get(key)
        kind: EnrolKind | None = None
        if have is None:
            kind = "enrol"
        elif have.method != "manual":
            continue
        elif have.suspended:
            kind = "reactivate"
        elif (have.timestart, have.timeend) != (want.timestart, want.timeend):
            kind = "retime"
        if kind is not None:
            reason = Reason("window") if kind == "retime" else want.reason
            changes.append(
                EnrolChange(
                    want.nip, want.course, kind, False, want.timestart, want.timeend, reason
                )
            )
    for key, have in sorted(view.known.items()):
        release = view.releasable.get(key)
        if (
            release is None
            or key in view.wanted
            or have.method != "manual"
            or have.suspended
            or have.nip not in listed
        ):
            continue
        changes.append(
            EnrolChange(
                have.nip, have.course, "suspend", True, have.timestart, have.timeend, release
            )
        )
    return changes
