"""The invariants of a year of unattended runs, judged from the emulated Moodle's own state.

Each check returns a list of violations in words (empty: it holds). They read
``Emulator.world`` (users, suspended flags, enrolments, cohort members, completions) and, where
the invariant is about what the bridge *recorded*, its state; never the bridge's opinion of
Moodle.

**Nobody still an employee is suspended** (:func:`wrongly_suspended`). Precisely: only exports
that a run applied count ("synced"). A person's *rows* are the rows of synced exports whose NIP
the reader can read (a row whose NIP cell Excel destroyed is tied to nobody and says nothing).
Their *state* is what the latest active or inactive row says (``CUTI ...`` is active,
``PENSIUN``/``MENINGGAL``/``CLTN`` inactive; on one day an active row wins); a refused row (a bad
email, a name that is only a title) and a ``MUTASI KELUAR`` row do not change it. Their *last
listing* is the export time of their latest active row, or of a later refused row read while
they were still protected (the grace had not run out since the listing before it). A person
whose state is active must not be suspended in Moodle unless the grace has passed since their
last listing: a person listed nowhere for longer than the grace may be. That is the weakest
rule the design allows, so a failure is a real wrong suspension: the bridge counts the grace
from the first *run* that missed the person, which is always later than the export that last
listed them. (A refused row read after the grace ran out does not protect: the person may have
been suspended for their absence already, and a refused row changes nothing, so they stay
suspended until a row the reader accepts lists them.)

The others, by the name the driver files their violations under:

* ``unit_follows_person`` (:func:`stale_units`): an account whose state is active carries the
  unit of the person's latest active row in its profile field ``unit``.
* ``one_account`` (:func:`duplicate_accounts`): no two Moodle users share an idnumber (NIP).
* ``suspension_explained`` (:func:`unexplained_suspensions`): every suspended account the
  bridge owns has a reason and a date in the state; every suspended manual enrolment it made
  has a reason and the run that suspended it.
* ``other_site_untouched`` (:func:`writes`, :func:`changed_accounts`): a run for another site
  (``--emulator``, another Moodle) sends no write and changes no account, and the real state's
  files stay as they were.
* ``gaps_need_assessments`` (:func:`gap_changes`): a run without assessments changes no
  enrolment (status, start, end) and no member of a gap or audience cohort.
* ``history_kept`` (:class:`History`): no enrolment row, course completion (or its time),
  activity or criteria completion Moodle ever held is gone (the emulator keeps no gradebook:
  grades go with the enrolment in Moodle, so a deleted enrolment is a lost grade here).
* ``ledger_complete`` (:func:`ledger_gaps`): after a pull, every completion Moodle holds of a
  course the bridge chose for the person (any enrolment method) is in the ledger, once.
* ``cap`` (:func:`over_cap`): nobody is enrolled in more catalogue courses in one year than the
  cap, counting every enrolment method, once the bridge has made one of those enrolments.
* ``hand_untouched`` (:class:`HandEnrolments`): an enrolment an administrator made by hand
  keeps its status, window, roles and modifier.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from moodle_bridge.emulator import Emulator
from moodle_bridge.emulator.world import World
from moodle_bridge.store import LedgerEntry, Store
from tests.e2e.conftest import is_write
from tests.simulation.world import ZONE, Export, RowKind

GAP_COHORT = "gap:"
AUDIENCE_COHORT = "course:"
ENROL_SUSPENDED = 1


# --- 1. nobody active is suspended ----------------------------------------------------------------
@dataclass
class Standing:
    """What the synced exports say of one person."""

    #: (export time, active?) of the latest active or inactive row.
    state: tuple[int, bool] | None = None
    #: Export time of the latest active or refused row.
    last_listed: int = 0
    #: The unit whose export holds the latest active row.
    unit: str = ""


@dataclass
class Evidence:
    """Every synced export's rows, folded per person, for a grace of ``grace_days``."""

    grace_days: int
    people: dict[str, Standing] = field(default_factory=lambda: defaultdict(Standing))
    synced: list[Export] = field(default_factory=list)

    def add(self, export: Export) -> None:
        """Count ``export`` as synced (a run applied it)."""
        self.synced.append(export)
        stamp = export.stamp
        for row in export.rows:
            if row.kind is RowKind.UNTIED:
                continue
            standing = self.people[row.nip]
            if row.kind is RowKind.ACTIVE or (
                row.kind is RowKind.REFUSED and self._protected(standing, stamp)
            ):
                standing.last_listed = max(standing.last_listed, stamp)
            if row.kind in (RowKind.ACTIVE, RowKind.INACTIVE):
                state = (stamp, row.kind is RowKind.ACTIVE)
                if standing.state is None or state > standing.state:
                    standing.state = state
                    standing.unit = export.unit if state[1] else standing.unit

    def must_be_active(self, nip: str, now: int) -> bool:
        """Whether the rule above forbids suspending ``nip`` at ``now``."""
        standing = self.people.get(nip)
        return standing is not None and self._protected(standing, now)

    def _protected(self, standing: Standing, now: int) -> bool:
        if standing.state is None or not standing.state[1]:
            return False
        return now < standing.last_listed + self.grace_days * 86400


def users_by_idnumber(world: World) -> dict[str, list[dict[str, Any]]]:
    """Moodle's users by idnumber (users without one left out)."""
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for user in world.users.values():
        if user.get("idnumber") and not user.get("deleted"):
            found[str(user["idnumber"])].append(user)
    return found


def wrongly_suspended(world: World, evidence: Evidence, now: int) -> list[str]:
    """Suspended accounts of people the synced exports still show as employees."""
    return [
        f"{idnumber} is suspended in Moodle although the synced exports list them as active "
        f"(last listed {_day(evidence.people[idnumber].last_listed)})"
        for idnumber, users in sorted(users_by_idnumber(world).items())
        if any(u.get("suspended") for u in users) and evidence.must_be_active(idnumber, now)
    ]


def stale_units(world: World, evidence: Evidence) -> list[str]:
    """Accounts of people the synced exports show as active whose profile field ``unit`` is not
    the unit of their latest active row: ownership follows the person, whatever order the
    units' runs came in."""
    problems = []
    for idnumber, users in sorted(users_by_idnumber(world).items()):
        standing = evidence.people.get(idnumber)
        if standing is None or standing.state is None or not standing.state[1]:
            continue
        for user in users:
            unit = (user.get("customfields") or {}).get("unit")
            if unit != standing.unit:
                problems.append(f"{idnumber} is in unit {unit} in Moodle, not {standing.unit}")
    return problems


# --- 2. nobody has two accounts -------------------------------------------------------------------
def duplicate_accounts(world: World) -> list[str]:
    """Idnumbers (NIPs) that more than one Moodle user carries."""
    return [
        f"{idnumber} has {len(users)} accounts (ids {sorted(u['id'] for u in users)})"
        for idnumber, users in sorted(users_by_idnumber(world).items())
        if len(users) > 1
    ]


# --- 3. every suspension has a reason and a date --------------------------------------------------
def unexplained_suspensions(world: World, store: Store) -> list[str]:
    """Suspended accounts and enrolments of the bridge's people whose suspension the state does
    not explain with a reason and a date (enrolments: a reason and the run)."""
    problems = []
    accounts = store.accounts()
    by_id = {a.moodle_id: a for a in accounts.values()}
    for user in world.users.values():
        if not user.get("suspended") or user["id"] not in by_id:
            continue
        account = by_id[user["id"]]
        if not (account.suspended and account.suspended_reason and account.suspended_at):
            problems.append(
                f"{account.nip} is suspended in Moodle, but the state records "
                f"suspended={account.suspended} reason={account.suspended_reason!r} "
                f"at={account.suspended_at}"
            )
    courses = {courseid: shortname for shortname, courseid in store.courses().items()}
    rows = store.enrolments()
    for (enrolid, userid), row in world.enrolments.items():
        owner = by_id.get(userid)
        shortname = courses.get(world.instance_course.get(enrolid, 0))
        if row["status"] != ENROL_SUSPENDED or owner is None or shortname is None:
            continue
        known = rows.get((owner.nip, shortname))
        if known is None or known.method != "manual" or row["enrol"] != "manual":
            continue
        if not (known.suspended and known.suspended_reason and known.suspended_by_run):
            problems.append(
                f"the enrolment of {owner.nip} in {shortname} is suspended in Moodle, but "
                f"the state records reason={known.suspended_reason!r} "
                f"run={known.suspended_by_run}"
            )
    return problems


# --- 4. nothing is written to another site --------------------------------------------------------
def writes(calls: Iterable[tuple[str, int]]) -> list[str]:
    """The write calls among ``calls`` (an emulator's ``calls`` list, or a slice of it)."""
    return [f"write call {name}" for name, _ in calls if is_write(name)]


def account_snapshot(world: World) -> dict[int, tuple[Any, ...]]:
    """Every user's fields that a sync can change, by id."""
    return {
        uid: tuple(
            sorted((k, repr(v)) for k, v in user.items() if k not in ("lastaccess", "contextid"))
        )
        for uid, user in world.users.items()
    }


def changed_accounts(
    before: Mapping[int, tuple[Any, ...]], after: Mapping[int, tuple[Any, ...]]
) -> list[str]:
    """Users created, deleted or changed between two snapshots."""
    found = []
    for uid in sorted(set(before) | set(after)):
        if uid not in before:
            found.append(f"user {uid} was created")
        elif uid not in after:
            found.append(f"user {uid} was deleted")
        elif before[uid] != after[uid]:
            found.append(f"user {uid} was changed")
    return found


# --- 5. gap enrolments change only on runs given assessments --------------------------------------
@dataclass(frozen=True)
class GapSnapshot:
    """The enrolments and the gap and audience cohorts' members, as Moodle has them."""

    enrolments: Mapping[tuple[int, int], tuple[int, int, int]]
    members: Mapping[str, frozenset[int]]


def gap_snapshot(world: World) -> GapSnapshot:
    """Take a :class:`GapSnapshot` of ``world``: manual enrolments, enrolments by cohort sync
    from gap and audience cohorts, and those cohorts' members. (A new member of a unit cohort
    that the site links to a course is enrolled there on any run: not the gaps' doing.)"""
    gaps = {
        cid
        for cid, cohort in world.cohorts.items()
        if str(cohort.get("idnumber") or "").startswith((GAP_COHORT, AUDIENCE_COHORT))
    }
    return GapSnapshot(
        {
            key: (row["status"], row["timestart"], row["timeend"])
            for key, row in world.enrolments.items()
            if row["enrol"] == "manual"
            or world.enrol_instances.get(key[0], {}).get("cohortid") in gaps
        },
        {
            str(world.cohorts[cid]["idnumber"]): frozenset(world.cohort_member_sets.get(cid, ()))
            for cid in gaps
        },
    )


def gap_changes(before: GapSnapshot, after: GapSnapshot) -> list[str]:
    """What changed in enrolments and gap or audience cohorts between two snapshots."""
    problems = [
        f"enrolment {key} changed: {before.enrolments.get(key)} -> {after.enrolments.get(key)}"
        for key in sorted(set(before.enrolments) | set(after.enrolments))
        if before.enrolments.get(key) != after.enrolments.get(key)
    ]
    for cohort in sorted(set(before.members) | set(after.members)):
        old, new = before.members.get(cohort, frozenset()), after.members.get(cohort, frozenset())
        if old != new:
            problems.append(
                f"cohort {cohort}: {len(new - old)} members added, {len(old - new)} removed"
            )
    return problems


# --- 6. no enrolment, grade or completion is ever deleted -----------------------------------------
@dataclass
class History:
    """Everything of learning history Moodle ever held; :meth:`lost` says what is gone.

    The emulator keeps no gradebook: in Moodle, grades go with the enrolment (a user who is
    unenrolled loses their grades from the course's gradebook), so a deleted enrolment row is
    what a lost grade looks like here. Course completions must keep their time, and activity
    and criteria completions must stay.
    """

    enrolments: set[tuple[int, int]] = field(default_factory=set)
    completions: dict[tuple[int, int], int] = field(default_factory=dict)
    progress: set[tuple[str, int, int]] = field(default_factory=set)

    def lost(self, world: World) -> list[str]:
        """What Moodle held at an earlier call and no longer does; then remember the present."""
        problems = [
            f"enrolment (instance {e}, user {u}) was deleted"
            for e, u in sorted(self.enrolments - set(world.enrolments))
        ]
        completed = {
            key: int(row["timecompleted"])
            for key, row in world.completions.items()
            if row.get("timecompleted")
        }
        problems += [
            f"the completion of course {c} by user {u} at {when} is now {completed.get((c, u))}"
            for (c, u), when in sorted(self.completions.items())
            if completed.get((c, u)) != when
        ]
        progress = {("module", *k) for k in world.module_completions} | {
            ("criteria", *k) for k in world.criteria_completions
        }
        problems += [
            f"{kind} completion {a}/{b} was deleted"
            for kind, a, b in sorted(self.progress - progress)
        ]
        self.enrolments |= set(world.enrolments)
        self.completions.update(completed)
        self.progress |= progress
        return problems


# --- 7. every completion of a chosen course is in the ledger exactly once -------------------------
def chosen_courses(world: World, store: Store, bridge_userid: int) -> set[tuple[str, str]]:
    """(NIP, course) the bridge chose: its enrolments of any method in its state, and, from
    Moodle, enrolments it made (manual, by its token's user) or that came through its audience
    cohorts."""
    chosen = set(store.enrolments())
    courses = {courseid: shortname for shortname, courseid in store.courses().items()}
    nips = {a.moodle_id: nip for nip, a in store.accounts().items()}
    audience = _audience_cohort_ids(world)
    for (enrolid, userid), row in world.enrolments.items():
        instance = world.enrol_instances.get(enrolid, {})
        shortname = courses.get(world.instance_course.get(enrolid, 0))
        if shortname is None or userid not in nips:
            continue
        made = row["enrol"] == "manual" and row.get("modifierid") == bridge_userid
        if made or instance.get("cohortid") in audience:
            chosen.add((nips[userid], shortname))
    return chosen


def ledger_gaps(
    world: World,
    store: Store,
    chosen: Collection[tuple[str, str]],
    until: int,
    ledger: Iterable[LedgerEntry] | None = None,
) -> list[str]:
    """Completions (before ``until``) of chosen courses that the ledger (default: the state's)
    lacks, and ledger entries recorded more than once."""
    counts = Counter((e.nip, e.course) for e in (store.completions() if ledger is None else ledger))
    problems = [f"{key} is {n} times in the ledger" for key, n in sorted(counts.items()) if n > 1]
    ids = store.courses()
    moodle_ids = {nip: a.moodle_id for nip, a in store.accounts().items()}
    for nip, course in sorted(chosen):
        if (nip, course) in counts or course not in ids or nip not in moodle_ids:
            continue
        row = world.completions.get((ids[course], moodle_ids[nip]))
        when = int(row.get("timecompleted") or 0) if row else 0
        if when and when < until:
            problems.append(f"{nip} completed {course} at {_day(when)}; the ledger lacks it")
    return problems


# --- 8. nobody exceeds the annual cap, counting every enrolment method ----------------------------
def over_cap(world: World, catalogue: Mapping[str, int], cap: int, bridge_userid: int) -> list[str]:
    """People enrolled in more than ``cap`` catalogue courses in one year (by every method),
    where at least one of those enrolments is the bridge's. ``catalogue`` maps shortnames to
    course ids. An enrolment counts in the year it was made and in the year its window opens
    (the rule of the annual cap)."""
    course_ids = set(catalogue.values())
    audience = _audience_cohort_ids(world)
    counted: dict[tuple[int, int], set[int]] = defaultdict(set)
    bridges: set[tuple[int, int]] = set()
    for (enrolid, userid), row in world.enrolments.items():
        courseid = world.instance_course.get(enrolid)
        if courseid not in course_ids:
            continue
        instance = world.enrol_instances.get(enrolid, {})
        mine = (row["enrol"] == "manual" and row.get("modifierid") == bridge_userid) or (
            instance.get("cohortid") in audience
        )
        for moment in {row["timecreated"], row["timestart"]} - {0}:
            year = dt.datetime.fromtimestamp(moment, ZONE).year
            counted[(userid, year)].add(courseid)
            if mine:
                bridges.add((userid, year))
    return [
        f"user {userid} is enrolled in {len(courses)} catalogue courses in {year} (cap {cap})"
        for (userid, year), courses in sorted(counted.items())
        if len(courses) > cap and (userid, year) in bridges
    ]


# --- 9. a hand enrolment is never changed ---------------------------------------------------------
@dataclass
class HandEnrolments:
    """Enrolments an administrator made by hand, as they were made."""

    rows: dict[tuple[int, int], tuple[Any, ...]] = field(default_factory=dict)

    @staticmethod
    def _shape(row: Mapping[str, Any]) -> tuple[Any, ...]:
        return (
            row["status"], row["timestart"], row["timeend"], tuple(row["roleids"]),
            row["modifierid"], row["timemodified"],
        )  # fmt: skip

    def record(self, world: World, keys: Iterable[tuple[int, int]]) -> None:
        """Remember the enrolments ``keys`` as the administrator left them."""
        for key in keys:
            self.rows[key] = self._shape(world.enrolments[key])

    def changed(self, world: World) -> list[str]:
        """Hand enrolments that are gone or no longer as the administrator left them."""
        problems = []
        for key, shape in sorted(self.rows.items()):
            row = world.enrolments.get(key)
            if row is None:
                problems.append(f"hand enrolment {key} was deleted")
            elif self._shape(row) != shape:
                problems.append(f"hand enrolment {key} changed: {shape} -> {self._shape(row)}")
        return problems


# --- helpers --------------------------------------------------------------------------------------
def _audience_cohort_ids(world: World) -> set[int]:
    return {
        cid
        for cid, cohort in world.cohorts.items()
        if str(cohort.get("idnumber") or "").startswith(AUDIENCE_COHORT)
    }


def _day(stamp: int) -> str:
    return dt.datetime.fromtimestamp(stamp, ZONE).date().isoformat() if stamp else "never"


def bridge_user_id(emulator: Emulator) -> int:
    """The Moodle id of the bridge's token user."""
    return int(emulator.world.username_index["bridge"])
