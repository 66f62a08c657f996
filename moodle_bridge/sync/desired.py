"""From people to the Moodle accounts and cohort memberships they should have."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from moodle_bridge.i18n import N_, _
from moodle_bridge.mappings import UnitCohort
from moodle_bridge.roster.person import DEFAULT_PROFILE_FIELDS, Person, RowError
from moodle_bridge.sync.plan import Record
from moodle_bridge.units import COHORT_PREFIX, CohortSpec

#: Prefix of custom profile fields inside an account record (``profile_field_satker``),
#: the same spelling Moodle uses in its own user upload.
PROFILE_PREFIX = "profile_field_"


@dataclass(frozen=True)
class DesiredAccount:
    """What one person's Moodle account should look like.

    ``record`` holds every field the bridge manages, as strings (custom profile fields as
    ``profile_field_<shortname>``); ``active`` False means suspended (or never created).
    """

    nip: str
    unit: str
    record: Record
    active: bool
    cohorts: frozenset[str] = field(default_factory=frozenset)
    source: str = ""
    row: int = 0
    display_name: str = ""
    status: str = "AKTIF"

    @property
    def fingerprint(self) -> str:
        """A stable hash of the record, to tell cheaply whether anything changed."""
        return fingerprint(self.record)


def fingerprint(record: Mapping[str, str]) -> str:
    """A stable hash of an account record."""
    text = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


@dataclass(frozen=True)
class AccountPolicy:
    """Site-wide account settings (``[sync]`` in moodle-bridge.toml)."""

    #: Person attribute -> Moodle custom profile field shortname.
    profile_fields: Mapping[str, str] = field(default_factory=lambda: DEFAULT_PROFILE_FIELDS)
    #: Domain of the placeholder email given to people without one (Moodle requires one).
    placeholder_domain: str = "no-email.invalid"
    #: Unit code -> its cohort as ``units.csv`` names it, in place of the plugin's default.
    unit_cohorts: Mapping[str, UnitCohort] = field(default_factory=dict)


def unit_cohorts_of(person: Person, rules: AccountRules, policy: AccountPolicy) -> list[CohortLike]:
    """The person's cohorts from their plugin, with their unit's cohort as ``units.csv`` says."""
    found: list[CohortLike] = list(rules.cohorts_for(person))
    mapped = policy.unit_cohorts.get(person.unit)
    if mapped is None:
        return found
    default = f"{COHORT_PREFIX}{person.unit}"
    return [
        CohortSpec(idnumber=mapped.idnumber, name=mapped.name or c.name)
        if c.idnumber == default
        else c
        for c in found
    ]


def placeholder_email(nip: str, policy: AccountPolicy) -> str:
    """The unique stand-in email of a person whose roster row has none (or a shared one)."""
    return f"{nip}@{policy.placeholder_domain}"


def account_record(
    person: Person, rules: AccountRules, policy: AccountPolicy, email: str | None
) -> Record:
    """The fields the bridge manages for ``person``'s account."""
    record: Record = {
        "username": rules.username_for(person),
        "idnumber": person.nip,
        "firstname": person.firstname,
        "lastname": person.lastname,
        "email": email or placeholder_email(person.nip, policy),
        "auth": rules.auth,
    }
    for shortname, value in rules.profile_fields(person, policy.profile_fields).items():
        record[PROFILE_PREFIX + shortname] = value
    return record


@dataclass(frozen=True)
class Departure:
    """A roster row saying the person left this unit (``MUTASI KELUAR``), not the ministry."""

    nip: str
    unit: str
    status: str
    source: str = ""
    row: int = 0


@dataclass
class DesiredState:
    """Every account and membership the roster asks for, keyed by NIP.

    ``roster_date`` is the roster file's date (Unix seconds): a row older than the latest row
    that listed the person changes nothing. ``kept`` are people the roster lists but whose row
    could not be used (their account stays exactly as it is); ``departed`` those whose row
    says they left this unit.
    """

    accounts: dict[str, DesiredAccount] = field(default_factory=dict)
    roster_date: int = 0
    kept: dict[str, RowError] = field(default_factory=dict)
    departed: dict[str, Departure] = field(default_factory=dict)
    #: Cohort idnumber -> display name, for creating cohorts that do not exist yet.
    cohort_names: dict[str, str] = field(default_factory=dict)
    #: Per-person findings that did not stop the person (e.g. a shared email replaced).
    warnings: list[RowError] = field(default_factory=list)
    #: People who cannot have an account as the roster describes them.
    errors: list[RowError] = field(default_factory=list)

    @property
    def units(self) -> set[str]:
        """The units that have at least one person in the roster."""
        return {account.unit for account in self.accounts.values()}


def shared_emails(people: Iterable[Person]) -> set[str]:
    """Emails that more than one active person in the roster gives."""
    seen: set[str] = set()
    shared: set[str] = set()
    for person in people:
        if person.email and person.active:
            (shared if person.email in seen else seen).add(person.email)
    return shared


class CohortLike(Protocol):
    """A cohort a person belongs to, as unit plugins describe it."""

    @property
    def idnumber(self) -> str: ...

    @property
    def name(self) -> str: ...


class AccountRules(Protocol):
    """The unit-plugin hooks that shape accounts (see :class:`moodle_bridge.units.UnitMapper`)."""

    auth: str

    def username_for(self, person: Person) -> str: ...

    def profile_fields(self, person: Person, shortnames: Mapping[str, str]) -> dict[str, str]: ...

    def cohorts_for(self, person: Person) -> Sequence[CohortLike]: ...


#: What Moodle accepts as a username (PARAM_USERNAME without extended characters).
USERNAME = re.compile(r"[a-z0-9_.@-]{1,100}")


def _refusal(person: Person, column: str, reason: str, value: str, fix: str = "") -> RowError:
    return RowError(
        source=person.source,
        row=person.row,
        column=column,
        reason=reason,
        nip=person.nip,
        value=value,
        fix=fix,
    )


def build_desired(
    people: Iterable[Person],
    rules: AccountRules,
    policy: AccountPolicy,
    extra_cohorts: Mapping[str, Sequence[CohortLike]] | None = None,
) -> DesiredState:
    """The accounts and cohort memberships ``people`` should have.

    Moodle refuses a second account with the same email, so people who share one get the
    placeholder instead, with a warning: everyone still gets an account. A username Moodle
    would refuse (or one given to two people) is refused here, before anything is sent.
    ``extra_cohorts`` adds cohorts per NIP (the gap cohorts of a run with assessments).
    A person refused here is also in ``kept``: a bad cell never changes an existing account.
    """
    people = list(people)
    shared = shared_emails(people)
    state = DesiredState()
    usernames: dict[str, str] = {}
    for person in people:
        if person.left_unit:
            state.departed[person.nip] = Departure(
                person.nip, person.unit, person.status, person.source, person.row
            )
            continue
        email = person.email
        if email in shared:
            state.warnings.append(_refusal(person, "email", _(SHARED_EMAIL), email or ""))
            email = None
        record = account_record(person, rules, policy, email)
        username = record["username"]
        problem = _username_problem(username, person.nip, usernames)
        if problem is not None:
            fix = _(
                "The username comes from the unit plugin: ask the bridge's administrator to "
                "correct it."
            )
            refusal = _refusal(person, "username", problem, username, fix)
            state.errors.append(refusal)
            state.kept[person.nip] = refusal
            continue
        cohorts = (
            [*unit_cohorts_of(person, rules, policy), *(extra_cohorts or {}).get(person.nip, ())]
            if person.active
            else []
        )
        for cohort in cohorts:
            state.cohort_names.setdefault(cohort.idnumber, cohort.name)
        state.accounts[person.nip] = _desired_account(person, record, cohorts)
    return state


SHARED_EMAIL = N_(
    "email shared with another person in the roster: the account gets a placeholder email instead"
)


def _username_problem(username: str, nip: str, usernames: dict[str, str]) -> str | None:
    """Why Moodle would refuse ``username`` (``usernames`` holds those given so far)."""
    if not USERNAME.fullmatch(username):
        return _(
            "Moodle does not accept the username {username!r} (only lower-case letters, "
            "digits and _ . @ -)"
        ).format(username=username)
    if usernames.setdefault(username, nip) != nip:
        return _("another person in the roster has the same username")
    return None


def _desired_account(
    person: Person, record: Record, cohorts: Sequence[CohortLike]
) -> DesiredAccount:
    return DesiredAccount(
        nip=person.nip,
        unit=person.unit,
        record=record,
        active=person.active,
        cohorts=frozenset(c.idnumber for c in cohorts),
        source=person.source,
        row=person.row,
        display_name=person.display_name,
        status=person.status,
    )
