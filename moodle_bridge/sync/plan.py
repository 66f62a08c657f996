"""What a sync would do: typed actions, each with the reason a person can read.

Every action that suspends, unenrols, removes from a cohort or changes an account names its
:class:`Reason`; the reason travels with the action into the run's per-person change log,
the plan file and the terminal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from moodle_bridge.i18n import N_, _
from moodle_bridge.store import PersonChange

__all__ = [
    "Absence",
    "AccountKind",
    "ChangeAccount",
    "CreateAccount",
    "EnrolChange",
    "EnrolKind",
    "GuardTrip",
    "Kept",
    "Membership",
    "Plan",
    "Reason",
    "Record",
]

#: An account as the bridge manages it: every field as text, custom profile fields as
#: ``profile_field_<shortname>`` (Moodle's own spelling in its user upload).
Record = dict[str, str]

AccountKind = Literal["update", "suspend", "unsuspend"]
EnrolKind = Literal["enrol", "suspend", "reactivate", "retime"]


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a change is made: a code and its values, rendered in the operator's language.

    ``code`` is one of: ``new`` (new in the roster), ``changed`` (``fields``), ``status``
    (``status``), ``absent`` (``since``, a date), ``returned``, ``moved`` (``old``, ``new``),
    ``gap`` (``competency``, ``from``, ``to``), ``gap_closed`` (``competency``), ``account``
    (the account is suspended), ``stop_gaps`` (``unit``), ``revert`` (``run``), ``window``,
    ``unit`` (``unit``: the unit's cohort).
    """

    code: str
    values: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, code: str, **values: object) -> Reason:
        """A reason with its values as text, in a stable order."""
        return cls(code, tuple(sorted((k, str(v)) for k, v in values.items())))

    def get(self, key: str, default: str = "") -> str:
        """One of the reason's values."""
        return dict(self.values).get(key, default)

    def to_json(self) -> str:
        """The reason as it is kept in the state database."""
        return json.dumps({"code": self.code, **dict(self.values)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | None) -> Reason | None:
        """Read back :meth:`to_json` (None stays None)."""
        if not text:
            return None
        data = json.loads(text)
        code = str(data.pop("code"))
        return cls.of(code, **data)

    def text(self) -> str:
        """The reason in the current language (a code without a text is shown as it is)."""
        template = _REASON_TEXT.get(self.code)
        if template is None:
            return self.code
        return _(template).format_map(_Missing(self.values))


class _Missing(dict[str, str]):
    def __init__(self, values: tuple[tuple[str, str], ...]) -> None:
        super().__init__(values)

    def __missing__(self, key: str) -> str:
        return "?"


_REASON_TEXT = {
    "new": N_("new in the roster"),
    # Translators: {fields} lists field names as Moodle calls them (email, satker...).
    "changed": N_("changed: {fields}"),
    "status": N_("status {status}"),
    "absent": N_("absent from the roster of {unit} since {since}"),
    "returned": N_("listed again as {status}"),
    "moved": N_("moved from {old} to {new}"),
    # Translators: a competency gap closed by one step: "gap MAN-INTEG 2→3".
    "gap": N_("gap {competency} {from}\u2192{to}"),
    "gap_closed": N_("no longer chosen for {competency}"),
    "account": N_("the account is suspended"),
    "stop_gaps": N_("gap management stopped for {unit}"),
    "unit": N_("unit {unit}"),
    "revert": N_("revert of run {run}"),
    "window": N_("the course window changed"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class _Listed:
    """Where an account change comes from: the roster row that lists the person."""

    display_name: str = ""
    #: The roster's date (Unix seconds) of the row that lists the person.
    seen_at: int = 0
    source: str = ""
    row: int = 0


@dataclass(frozen=True, slots=True)
class CreateAccount(_Listed):
    """Create the account of a person Moodle does not know yet."""

    nip: str
    unit: str
    record: Record


@dataclass(frozen=True, slots=True)
class ChangeAccount(_Listed):
    """Change an owned account: only the fields in ``changes`` are sent."""

    nip: str
    moodle_id: int
    kind: AccountKind
    changes: Record
    #: The whole record as it will be after the change, to remember as applied.
    record: Record
    suspended: bool
    reason: Reason
    #: The person's unit after the change.
    unit: str = ""
    #: What Moodle held of the changed fields before (as far as the bridge knows).
    before: Record = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Membership:
    """A person in a cohort (by cohort idnumber and NIP).

    ``course`` is set for a course's audience cohort (cohort-mode catalogue rows): Moodle's
    cohort sync enrols the member in that course, so the bridge records the enrolment
    (method ``cohort``) when the membership is confirmed.
    """

    cohort: str
    nip: str
    reason: Reason = Reason("new")
    course: str = ""
    timestart: int = 0
    timeend: int = 0


@dataclass(frozen=True, slots=True)
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
    reason: Reason = Reason("gap")


@dataclass(frozen=True, slots=True)
class Absence:
    """An owned account missing from its unit's roster, counting down its grace period."""

    nip: str
    unit: str
    #: When the first run missed the person, and when the grace ends (Unix seconds).
    since: int
    suspend_on: int


@dataclass(frozen=True, slots=True)
class Kept:
    """A person listed by the roster whose row could not be used: left exactly as they are."""

    nip: str
    unit: str
    why: str
    source: str = ""
    row: int = 0


@dataclass(frozen=True)
class GuardTrip:
    """Why the plan must not be applied without an explicit override."""

    reason: str
    #: NIPs whose accounts the plan would suspend, for the proposed-removals file.
    suspensions: tuple[str, ...] = ()


@dataclass
class Plan:
    """Everything a sync would do, in the order it does it, and what it found on the way."""

    creates: list[CreateAccount] = field(default_factory=list)
    changes: list[ChangeAccount] = field(default_factory=list)
    cohorts_to_create: dict[str, str] = field(default_factory=dict)
    member_adds: list[Membership] = field(default_factory=list)
    member_removes: list[Membership] = field(default_factory=list)
    enrolments: list[EnrolChange] = field(default_factory=list)
    #: Removals not made because Moodle could unenrol the person (see the README).
    held_removals: list[Membership] = field(default_factory=list)
    absences: list[Absence] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)
    #: Audience cohorts created by this run, by the course an administrator must link each to
    #: (cohort sync): their people join at the next sync.
    awaiting_link: dict[str, str] = field(default_factory=dict)
    #: What the run learnt without writing to Moodle: NIP -> the roster date that lists the
    #: person now, and NIP -> since when they are absent (None: no longer absent).
    seen: dict[str, int] = field(default_factory=dict)
    absent_since: dict[str, int | None] = field(default_factory=dict)
    guard: GuardTrip | None = None

    def count(self, kind: AccountKind) -> int:
        """How many account changes of ``kind`` the plan holds."""
        return sum(1 for change in self.changes if change.kind == kind)

    @property
    def is_empty(self) -> bool:
        """Whether the plan writes nothing to Moodle."""
        return not (
            self.enrolments
            or self.creates
            or self.changes
            or self.cohorts_to_create
            or self.member_adds
            or self.member_removes
        )

    @property
    def suspensions(self) -> tuple[str, ...]:
        """NIPs of the accounts the plan suspends."""
        return tuple(sorted(c.nip for c in self.changes if c.kind == "suspend"))

    def summary(self) -> dict[str, int]:
        """Counts per action, for people and for ``--json``."""
        return {
            "create": len(self.creates),
            "update": self.count("update"),
            "suspend": self.count("suspend"),
            "unsuspend": self.count("unsuspend"),
            "move": sum(1 for c in self.changes if c.reason.code == "moved"),
            "cohort_create": len(self.cohorts_to_create),
            "cohort_add": len(self.member_adds),
            "cohort_remove": len(self.member_removes),
            **{
                f"enrol_{kind}": sum(1 for e in self.enrolments if e.kind == kind)
                for kind in ("enrol", "suspend", "reactivate", "retime")
            },
            "cohort_remove_held": len(self.held_removals),
            "absent": len(self.absences),
            "kept": len(self.kept),
        }

    def person_changes(self, units: Mapping[str, str]) -> Iterator[PersonChange]:
        """One line per person-level change, for the plan file and the operator.

        ``units`` maps NIPs to their unit for actions that do not carry it.
        """
        for create in self.creates:
            yield create_change(create)
        for change in self.changes:
            yield account_change(change)
        for member in self.member_adds:
            yield member_change("cohort_add", member, units)
        for member in self.member_removes:
            yield member_change("cohort_remove", member, units)
        for enrol in self.enrolments:
            yield enrol_change(enrol, units)


def create_change(create: CreateAccount) -> PersonChange:
    """The change log line of an account creation."""
    return PersonChange(
        "create", create.nip, create.unit, "", Reason("new").to_json(), None,
        create.source, create.row,
    )  # fmt: skip


def account_change(change: ChangeAccount) -> PersonChange:
    """The change log line of an account change, with the fields before and after."""
    action = "move" if change.reason.code == "moved" else change.kind
    detail = (
        json.dumps({"before": change.before, "after": change.changes}, ensure_ascii=False)
        if change.changes
        else None
    )
    return PersonChange(
        action, change.nip, change.unit, "", change.reason.to_json(), detail,
        change.source, change.row,
    )  # fmt: skip


def member_change(action: str, member: Membership, units: Mapping[str, str]) -> PersonChange:
    """The change log line of a cohort membership added or removed."""
    return PersonChange(
        action, member.nip, units.get(member.nip, ""), member.cohort, member.reason.to_json(),
        None, "", 0,
    )  # fmt: skip


def enrol_change(enrol: EnrolChange, units: Mapping[str, str]) -> PersonChange:
    """The change log line of an enrolment change."""
    return PersonChange(
        f"enrol_{enrol.kind}", enrol.nip, units.get(enrol.nip, ""), enrol.course,
        enrol.reason.to_json(), None, "", 0,
    )  # fmt: skip
