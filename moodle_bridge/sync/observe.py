"""The observe phase: every read of Moodle a run needs before it plans.

Nothing here writes to Moodle, except the cohort-sync probe (one membership of the token's own
user in the probe cohort). What these functions record in the state is what they found there:
the site's identity, course ids, cohorts someone else made, enrolments someone else made. An
adoption is not a finding: the engine records it once the operator confirmed the plan.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from moodle_bridge import errors
from moodle_bridge.moodle import cohorts as moodle_cohorts
from moodle_bridge.moodle import courses as moodle_courses
from moodle_bridge.moodle import enrol as moodle_enrol
from moodle_bridge.moodle import site as moodle_site
from moodle_bridge.moodle import users as moodle_users
from moodle_bridge.moodle.api import Caller
from moodle_bridge.store import Account, CohortRow, EnrolmentRow, SiteIdentity, Store
from moodle_bridge.sync.desired import PROFILE_PREFIX, DesiredState, fingerprint
from moodle_bridge.sync.journal import find_cohorts
from moodle_bridge.sync.plan import Record
from moodle_bridge.sync.planner import Audience, CohortView, KnownAccount

__all__ = [
    "PROBE_COHORT",
    "CohortFindings",
    "SiteMismatch",
    "bind_site",
    "cohort_view",
    "enrolled_elsewhere",
    "known_from_moodle",
    "known_from_store",
    "members_from_moodle",
    "moodle_record",
    "probe_cohort_sync",
    "read_users",
    "resolve_courses",
]

#: Values per ``core_user_get_users_by_field`` read: Moodle answers 1000 in about 2.6 s.
READ_CHUNK = 1000
#: The cohort the bridge uses to prove what the site's cohort sync does on removal.
PROBE_COHORT = "bridge:probe"
#: Where the last probe's finding is kept in the state.
PROBE_VALUE = "cohort_sync_probe"


class SiteMismatch(errors.ConfigError):
    """The state belongs to another Moodle site than the one configured."""


# --- the site ---------------------------------------------------------------------------------
def bind_site(caller: Caller, store: Store, url: str, *, record: bool) -> SiteIdentity:
    """The configured site's identity; the state is bound to it on the first applied run.

    Raises SiteMismatch, before anything is written, when the state belongs to another site:
    Moodle ids of one site mean other people on another.
    """
    info = moodle_site.get_site_info(caller)
    here = SiteIdentity(url, info.siteurl, info.sitename, info.release or "", info.userid)
    bound = store.site()
    if bound is not None and bound.siteurl != here.siteurl:
        msg = (
            f"this state belongs to the Moodle site {bound.sitename!r} at {bound.siteurl}, not "
            f"to {here.sitename!r} at {here.siteurl}: use that site's state directory "
            "([state] dir), or a new one for this site"
        )
        raise SiteMismatch(msg)
    if record and bound != here:
        store.record_site(here)
    return here


# --- accounts ---------------------------------------------------------------------------------
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


def read_users(
    caller: Caller, field_name: moodle_users.UserField, values: Sequence[str | int]
) -> dict[str, list[moodle_users.MoodleUser]]:
    """Users by ``field_name`` value, read in chunks Moodle answers in a few seconds."""
    found: dict[str, list[moodle_users.MoodleUser]] = {}
    chunks = caller.chunks(values, lambda v: v, others={"field": field_name}, limit=READ_CHUNK)
    for chunk in chunks:
        for user in moodle_users.get_users_by_field(caller, field_name, chunk):
            found.setdefault(str(getattr(user, field_name) or ""), []).append(user)
    return found


def _known(account: Account, record: Record, suspended: bool) -> KnownAccount:
    return KnownAccount(
        account.nip,
        account.moodle_id,
        account.unit,
        record,
        suspended,
        account.seen_at,
        account.absent_since,
    )


def known_from_store(
    store: Store, desired: DesiredState, accounts: Mapping[str, Account]
) -> dict[str, KnownAccount]:
    """Trust the store: only accounts whose applied hash differs need their record read."""
    stale = [
        nip
        for nip, account in accounts.items()
        if nip not in desired.accounts or account.applied_hash != desired.accounts[nip].fingerprint
    ]
    records = store.applied_records(stale)
    known: dict[str, KnownAccount] = {}
    for nip, account in accounts.items():
        want = desired.accounts.get(nip)
        if nip in records:
            record = {k: str(v) for k, v in records[nip].items()}
        elif want is not None and account.applied_hash == want.fingerprint:
            record = want.record
        else:
            record = {}  # not kept: every field is sent again
        known[nip] = _known(account, record, account.suspended)
    return known


def known_from_moodle(
    caller: Caller, accounts: Mapping[str, Account], shortnames: Collection[str]
) -> dict[str, KnownAccount]:
    """``--reconcile``: every owned account as Moodle holds it now (deleted ones left out).

    Raises Fatal when Moodle shows none of them with their details: that is what a token
    without ``moodle/user:viewalldetails`` sees, and treating everyone as changed or gone
    would be a disaster.
    """
    by_id = {a.moodle_id: a for a in accounts.values()}
    found = read_users(caller, "id", sorted(by_id))
    blind = not any(user.username for users in found.values() for user in users)
    if by_id and blind:
        msg = (
            "Moodle returned none of the accounts the bridge owns with their details: the "
            "token's user probably lacks moodle/user:viewalldetails (run moodle-bridge "
            "doctor); stopping rather than treating them as gone or changed"
        )
        raise errors.Fatal(msg, wsfunction="core_user_get_users_by_field")
    known: dict[str, KnownAccount] = {}
    for moodle_id, account in by_id.items():
        users = found.get(str(moodle_id))
        if users:
            user = users[0]
            known[account.nip] = _known(
                account, moodle_record(user, shortnames), bool(user.suspended)
            )
    return known


def members_from_moodle(
    caller: Caller, store: Store, accounts: Mapping[str, Account]
) -> dict[str, set[str]]:
    """``--reconcile``: the members of the bridge's cohorts as Moodle has them (owned
    accounts only), so memberships changed by hand are put right."""
    cohorts = {c.moodle_id: c.idnumber for c in store.cohorts().values() if c.moodle_id is not None}
    nips = {a.moodle_id: nip for nip, a in accounts.items()}
    members: dict[str, set[str]] = {}
    ids = sorted(cohorts)
    for start in range(0, len(ids), READ_CHUNK):
        for cohort in moodle_cohorts.get_cohort_members(caller, ids[start : start + READ_CHUNK]):
            members[cohorts[cohort.cohortid]] = {nips[u] for u in cohort.userids if u in nips}
    return members


def adoption(
    caller: Caller, desired: DesiredState, owned: Mapping[str, Account], shortnames: Sequence[str]
) -> list[tuple[str, moodle_users.MoodleUser, Record, str]]:
    """``--adopt``: existing accounts of roster people, matched by idnumber, then username.

    Returns (NIP, user, record as Moodle holds it, its fingerprint) for each unambiguous match.
    """
    moodle_ids = {a.moodle_id for a in owned.values()}
    unknown = [a for nip, a in desired.accounts.items() if nip not in owned]
    by_idnumber = read_users(caller, "idnumber", [a.nip for a in unknown])
    by_username = read_users(
        caller, "username", [a.record["username"] for a in unknown if a.nip not in by_idnumber]
    )
    found = []
    for want in unknown:
        candidates = by_idnumber.get(want.nip) or by_username.get(want.record["username"], [])
        # Moodle does not keep idnumbers unique: only an unambiguous match is adopted.
        if len(candidates) != 1 or candidates[0].id in moodle_ids:
            continue
        user = candidates[0]
        record = moodle_record(user, shortnames)
        found.append((want.nip, user, record, fingerprint(record)))
        moodle_ids.add(user.id)
    return found


# --- cohorts ----------------------------------------------------------------------------------
@dataclass
class CohortFindings:
    """What the run found out about the cohorts it wants, for the operator."""

    view: CohortView
    #: Cohorts that exist in Moodle but are not the bridge's: left alone, with what to do.
    foreign: list[str] = field(default_factory=list)
    #: Cohorts someone else made that ``--adopt-cohorts`` takes over, as the state will hold
    #: them. The plan already uses them; they become the bridge's only when the engine records
    #: them, after the operator confirmed that plan.
    to_adopt: list[CohortRow] = field(default_factory=list)


def cohort_view(
    caller: Caller,
    store: Store,
    wanted: Collection[str],
    audience: Mapping[str, Audience],
    *,
    adopt: bool,
    record: bool,
) -> CohortFindings:
    """Which cohorts the run may use, must create, or must leave alone.

    A cohort is the bridge's when the bridge created it or it was adopted on purpose
    (``--adopt-cohorts``): a cohort made by hand may be linked to courses by cohort sync, and
    adding people to it could enrol them where nobody meant them to be. ``adopt`` only
    proposes the adoption (``to_adopt``); ``record`` remembers the foreign cohorts found.
    """
    rows = {k: c for k, c in store.cohorts().items() if c.moodle_id is not None}
    usable = {k for k, c in rows.items() if c.created_by_bridge or c.adopted}
    unknown = sorted(set(wanted) - set(rows))
    found = {
        k: CohortRow(k, c.id, c.name, False, adopted=True)
        for k, c in find_cohorts(caller, unknown).items()
    }
    found.update({k: c._replace(adopted=True) for k, c in rows.items() if k not in usable})
    findings = CohortFindings(CohortView())
    if adopt:
        findings.to_adopt = [found[k] for k in sorted(found) if k in wanted]
        usable.update(c.idnumber for c in findings.to_adopt)
    findings.foreign = sorted(set(found) - usable)
    if record:
        # Remembered as someone else's, so later runs need not look them up again.
        for idnumber in findings.foreign:
            store.record_cohort(found[idnumber]._replace(adopted=False))
    findings.view = CohortView(
        usable=frozenset(usable),
        foreign=frozenset(findings.foreign),
        removal_safe=probe_result(store),
        audience=audience,
    )
    return findings


def probe_result(store: Store) -> bool:
    """Whether the last probe proved the site's cohort sync suspends on removal."""
    found = store.value(PROBE_VALUE)
    return bool(found and found.get("suspends"))


@dataclass(frozen=True)
class ProbeFinding:
    """What the probe found: whether a removal keeps the enrolment, and how it knows."""

    suspends: bool
    note: str


def probe_cohort_sync(
    caller: Caller, store: Store | None, course_shortname: str, token_userid: int
) -> ProbeFinding:
    """Prove what the site's cohort sync does when a member is removed: ``suspends`` when it
    keeps the enrolment (suspended), not when it deletes it or the probe is not set up.

    The administrator links the cohort ``bridge:probe`` (the bridge creates it) to a course
    of their choice, by cohort sync; the token's own user joins the cohort, leaves it, and
    the course's participants tell whether the enrolment stayed. The finding is remembered in
    ``store`` for the runs that plan without probing (``plan``).
    """
    finding = _probe(caller, course_shortname, token_userid)
    if store is not None:
        store.set_value(
            PROBE_VALUE,
            {"suspends": finding.suspends, "note": finding.note, "at": int(time.time())},
        )
    return finding


def _probe(caller: Caller, course_shortname: str, token_userid: int) -> ProbeFinding:
    courses = moodle_courses.get_courses_by_field(caller, "shortname", course_shortname)
    if not courses:
        return ProbeFinding(False, f"there is no course {course_shortname}")
    course = courses[0].id
    cohort = find_cohorts(caller, [PROBE_COHORT]).get(PROBE_COHORT)
    if cohort is None:
        new = moodle_cohorts.NewCohort(name="moodle-bridge probe", idnumber=PROBE_COHORT)
        cohort = moodle_cohorts.create_cohorts(caller, [new])[0]
    moodle_cohorts.add_cohort_members(
        caller, [moodle_cohorts.CohortMemberRef.by_ids(cohort.id, token_userid)]
    )
    enrolled = moodle_enrol.get_users_courses(caller, token_userid, returnusercount=False)
    if not any(c.id == course for c in enrolled):
        note = f"cohort {PROBE_COHORT} is not linked to {course_shortname} by cohort sync"
        return ProbeFinding(False, note)
    moodle_cohorts.delete_cohort_members(
        caller, [moodle_cohorts.CohortMember(cohortid=cohort.id, userid=token_userid)]
    )
    stayed = any(
        user.id == token_userid
        for user in moodle_enrol.iter_enrolled_users(caller, course, userfields=("id",))
    )
    if stayed:
        return ProbeFinding(True, "a removal suspends the enrolment (it stays, with its history)")
    return ProbeFinding(False, "a removal deletes the enrolment: removals are held")


# --- courses and enrolments ---------------------------------------------------------------------
def resolve_courses(
    caller: Caller, store: Store, needed: Collection[str], *, record: bool
) -> tuple[dict[str, int], list[str]]:
    """Moodle ids of the catalogue courses a run needs, and the ones Moodle lacks.

    Looked up by shortname once and remembered (with the course's full name, for SIASN).
    """
    known = store.courses()
    found: dict[str, tuple[int, str]] = {}
    missing: list[str] = []
    for shortname in sorted(set(needed) - set(known)):
        courses = moodle_courses.get_courses_by_field(caller, "shortname", shortname)
        if courses:
            found[shortname] = (courses[0].id, courses[0].fullname or "")
        else:
            missing.append(shortname)
    if found and record:
        store.record_courses(
            {k: v[0] for k, v in found.items()}, {k: v[1] for k, v in found.items()}
        )
    return {**known, **{k: v[0] for k, v in found.items()}}, missing


def enrolled_elsewhere(
    caller: Caller,
    accounts: Mapping[str, Account],
    course_ids: Mapping[str, int],
    candidates: Iterable[tuple[str, str]],
) -> list[EnrolmentRow]:
    """Of the (NIP, course) enrolments a run is about to make, those Moodle already has by
    another hand (an administrator, a self-enrolment, another cohort): one paged read per
    course. They are recorded as someone else's and never written."""
    by_course: dict[str, set[str]] = {}
    for nip, course in candidates:
        if nip in accounts and course in course_ids:
            by_course.setdefault(course, set()).add(nip)
    found: list[EnrolmentRow] = []
    for course, nips in sorted(by_course.items()):
        found += _participants(caller, course, course_ids[course], nips, accounts)
    return found


def _participants(
    caller: Caller,
    course: str,
    course_id: int,
    nips: Iterable[str],
    accounts: Mapping[str, Account],
) -> list[EnrolmentRow]:
    """Which of ``nips`` take part in ``course`` (suspended enrolments included)."""
    ids = {accounts[nip].moodle_id: nip for nip in nips}
    users = moodle_enrol.iter_enrolled_users(caller, course_id, userfields=("id",))
    return [
        EnrolmentRow(ids[user.id], course, False, method="other")
        for user in users
        if user.id in ids
    ]


#: Seconds Moodle takes to list one person's courses, and to page 1,000 participants of a
#: course (the contract's measurements): which way of finding enrolments is cheaper.
_PER_PERSON, _PER_THOUSAND_PARTICIPANTS, _PER_COURSE = 0.05, 0.45, 0.03


def catalogue_enrolments(
    caller: Caller,
    accounts: Mapping[str, Account],
    course_ids: Mapping[str, int],
    nips: Sequence[str],
    participants: int = 0,
) -> list[EnrolmentRow]:
    """The (active) enrolments of the people ``nips`` in the courses ``course_ids``, by any
    method, as rows of someone else's enrolments. Asked person by person (one call each) or
    course by course (paged participants), whichever costs Moodle less for ``participants``
    expected participants in all."""
    ids = {accounts[nip].moodle_id: nip for nip in nips if nip in accounts}
    if not ids or not course_ids:
        return []
    by_person = len(ids) * _PER_PERSON
    by_course = len(course_ids) * _PER_COURSE + participants / 1000 * _PER_THOUSAND_PARTICIPANTS
    if by_person <= by_course:
        names = {course_id: name for name, course_id in course_ids.items()}
        return [
            EnrolmentRow(nip, names[course.id], False, method="other")
            for userid, nip in sorted(ids.items(), key=lambda item: item[1])
            for course in moodle_enrol.get_users_courses(caller, userid, returnusercount=False)
            if course.id in names
        ]
    return [
        row
        for name, course_id in sorted(course_ids.items())
        for row in _participants(caller, name, course_id, ids.values(), accounts)
    ]
