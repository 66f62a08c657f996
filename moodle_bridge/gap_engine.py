"""The gap engine: from position standards and assessments to the courses each ASN should take.

Pure: no files, no Moodle, no clock. :func:`plan_gaps` takes the people, their assessments,
the checked :class:`~moodle_bridge.mappings.Mappings`, the completions and current enrolments,
and returns a :class:`GapPlan`. The same inputs give the same plan whatever their order.

The rules, in the order they apply to each person and each competency their position requires:

1. **Level.** The latest assessment counts (by date; on the same date, the later row). A
   completed catalogue course raises the level to the course's ``to_level`` when it was
   completed on or after that assessment's date (an assessment made after the course already
   measured its effect). With no assessment the competency is *not assessed*: no course, and
   the person is reported (a completion alone never stands in for an assessment).
2. **Gap** = required level - level. No gap: nothing to do.
3. **Course.** The catalogue rows that start at the person's level (the unit's own rows, then
   national ones; earlier windows first). None: *no course from this level*. Enrolled in one of
   them already: *already enrolled*, kept (it is part of the desired state). Every window
   closed on ``as_of``: *window closed*. Every open one already completed: *already completed*.
4. **Allocation**, across everyone at once: the remaining requests are served in the order
   (gap size desc, competency priority, competency code, NIP), so for each person their gaps
   come largest first, and for each course window the people with the larger gaps come first.
   A request is *cap reached* when the person already has their annual cap of trainings
   (``used_this_year`` plus what this plan chose); otherwise it takes the first window with a
   free seat (*chosen*), or joins the *waiting list* of the first window. A waiting request
   does not use the cap, so a less important gap may still be served.

Every decision carries its status and :meth:`Decision.reason`; :meth:`GapPlan.explain` and
:meth:`GapPlan.why` answer "why in this course" and "why not in that one".
"""

from __future__ import annotations

import datetime as dt
import gc
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple, Protocol

from moodle_bridge.mappings import (
    NATIONAL,
    CourseOffer,
    Mappings,
    Requirement,
    Standard,
    normalise_jabatan,
)

__all__ = [
    "AssessmentLike",
    "CompetencyStats",
    "CompletedCourse",
    "CourseLoad",
    "CurrentEnrolment",
    "Decision",
    "Explanation",
    "GapPlan",
    "MissingStandard",
    "PersonLike",
    "PersonPlan",
    "PlannedEnrolment",
    "Status",
    "plan_gaps",
]


# --- inputs ---------------------------------------------------------------------------------------
class PersonLike(Protocol):
    """What the engine reads of a person (:class:`~moodle_bridge.roster.person.Person` fits)."""

    @property
    def nip(self) -> str: ...
    @property
    def unit(self) -> str: ...
    @property
    def jabatan(self) -> str: ...
    @property
    def active(self) -> bool: ...


class AssessmentLike(Protocol):
    """What the engine reads of an assessment
    (:class:`~moodle_bridge.roster.assessment.Assessment` fits)."""

    @property
    def nip(self) -> str: ...
    @property
    def competency(self) -> str: ...
    @property
    def level(self) -> int: ...
    @property
    def date(self) -> dt.date: ...
    @property
    def row(self) -> int: ...


class CompletedCourse(NamedTuple):
    """``nip`` completed the Moodle course ``course_shortname`` on ``time`` (a date or datetime)."""

    nip: str
    course_shortname: str
    time: dt.date


class CurrentEnrolment(NamedTuple):
    """``nip`` is enrolled (active) in ``course_shortname``; ``start`` is the enrolment's
    ``timestart`` (which window it belongs to), ``None`` when unknown."""

    nip: str
    course_shortname: str
    start: dt.date | None = None


# --- results --------------------------------------------------------------------------------------
class Status(StrEnum):
    """The outcome for one person and one required competency."""

    CHOSEN = "chosen"
    ENROLLED = "already_enrolled"
    WAITING = "waiting_list"
    CAP_REACHED = "cap_reached"
    NOT_ASSESSED = "not_assessed"
    NO_GAP = "no_gap"
    ALREADY_COMPLETED = "already_completed"
    NO_COURSE = "no_course"
    WINDOW_CLOSED = "window_closed"


#: Statuses whose course belongs in Moodle: new enrolments and enrolments kept.
DESIRED: frozenset[Status] = frozenset({Status.CHOSEN, Status.ENROLLED})


class Decision(NamedTuple):
    """What the plan does about one person's required competency, and why.

    ``level`` is the effective level (``assessed``, raised by ``raised_by``'s completion);
    both are ``None`` when not assessed. ``offer`` is the course window concerned: the chosen
    or kept one; the first candidate for waiting list and cap reached; the completed one; the
    last closed one; ``None`` otherwise. ``waiting_position`` is 1-based (0: not waiting).
    """

    nip: str
    competency: str
    required: int
    assessed: int | None
    level: int | None
    status: Status
    offer: CourseOffer | None = None
    waiting_position: int = 0
    raised_by: str | None = None
    #: ``"standard"`` or ``"default"`` (the managerial default of the position level).
    origin: str = "standard"

    @property
    def gap(self) -> int | None:
        """Required minus effective level; ``None`` when not assessed."""
        return None if self.level is None else self.required - self.level

    @property
    def desired(self) -> bool:
        """True when the person should be (or stay) enrolled in :attr:`offer`."""
        return self.status in DESIRED

    def level_text(self) -> str:
        """``level 3`` or ``level 3 (assessed 2, raised by completing X)``."""
        if self.level is None:
            return "not assessed"
        if self.raised_by is not None and self.assessed != self.level:
            return (
                f"level {self.level} (assessed {self.assessed}, raised by completing "
                f"{self.raised_by})"
            )
        return f"level {self.level}"

    def reason(self) -> str:
        """One sentence a clerk can read: what was decided and why."""
        comp, need = self.competency, self.required
        origin = " (managerial default of the position level)" if self.origin == "default" else ""
        required = f"required {need}{origin}"
        course = self.offer.label() if self.offer is not None else ""
        step = f"{self.offer.from_level} to {self.offer.to_level}" if self.offer is not None else ""
        status = self.status
        if status is Status.NOT_ASSESSED:
            return (
                f"not assessed in {comp} ({required}): no course until an assessment gives a level"
            )
        level = self.level_text()
        if status is Status.NO_GAP:
            return f"no gap in {comp}: {level} meets the {required}"
        gap = f"gap {self.gap} in {comp} ({level}, {required})"
        if status is Status.CHOSEN:
            return f"chosen: {course} closes the {gap} from {step}"
        if status is Status.ENROLLED:
            return f"already enrolled in {course}, which closes the {gap} from {step}: kept"
        if status is Status.WAITING:
            return (
                f"waiting list position {self.waiting_position} for {course}: every open "
                f"window of the courses from level {self.level} is full ({gap})"
            )
        if status is Status.CAP_REACHED:
            return (
                f"not chosen: the annual cap of trainings is reached; {course} would close the "
                f"{gap} (larger or more important gaps came first)"
            )
        if status is Status.ALREADY_COMPLETED:
            return (
                f"not chosen: {course} was already completed, yet the {gap} remains; "
                "a new assessment or another course is needed"
            )
        if status is Status.WINDOW_CLOSED:
            return (
                f"not chosen: every window of the courses from level {self.level} has "
                f"closed (last: {course}) ({gap})"
            )
        return f"no course in the catalogue takes {comp} from level {self.level} ({gap})"


@dataclass(slots=True)
class PersonPlan:
    """One active person's plan: their standard, levels and decisions.

    Decisions about competencies without a gap are built on demand (:attr:`decisions`), so a
    plan of a quarter of a million people stays small.
    """

    nip: str
    unit: str
    jabatan: str
    standard: Standard | None
    #: The annual cap and the trainings already counted this year before this plan.
    cap: int
    used_before: int
    #: Effective level per requirement of :attr:`standard` (same order); ``None``: not assessed.
    levels: tuple[int | None, ...] = ()
    #: Competency -> (assessed level, course whose completion raised it), where raised.
    raised: Mapping[str, tuple[int, str]] | None = None
    #: The decisions other than "no gap", sorted by competency code.
    gaps: tuple[Decision, ...] = ()

    @property
    def position_level(self) -> str | None:
        """The position level the standard used (``None`` without one)."""
        return self.standard.position_level if self.standard is not None else None

    @property
    def decisions(self) -> tuple[Decision, ...]:
        """One decision per required competency, in competency-code order."""
        if self.standard is None:
            return ()
        by_code = {d.competency: d for d in self.gaps}
        out: list[Decision] = []
        for req, level in zip(self.standard.requirements, self.levels, strict=True):
            found = by_code.get(req.competency)
            if found is not None:
                out.append(found)
                continue
            assessed, raised_by = level, None
            if self.raised is not None and req.competency in self.raised:
                assessed, raised_by = self.raised[req.competency]
            out.append(
                Decision(
                    self.nip,
                    req.competency,
                    req.level,
                    assessed,
                    level,
                    Status.NO_GAP,
                    raised_by=raised_by,
                    origin=req.origin,
                )
            )
        return tuple(out)

    @property
    def chosen(self) -> tuple[Decision, ...]:
        """The new enrolments this plan chose."""
        return tuple(d for d in self.gaps if d.status is Status.CHOSEN)

    @property
    def cap_used(self) -> int:
        """Trainings counted this year once the plan's choices are made."""
        return self.used_before + len(self.chosen)


@dataclass(slots=True)
class CourseLoad:
    """One course window's projected enrolments against its capacity."""

    offer: CourseOffer
    #: Current enrolments counted in this window (input), and the plan's new ones.
    existing: int = 0
    chosen: int = 0
    #: NIPs on the waiting list, in order.
    waiting: list[str] = field(default_factory=list)

    @property
    def capacity(self) -> int | None:
        """Seats in the window (``None``: unlimited)."""
        return self.offer.capacity

    @property
    def projected(self) -> int:
        """Enrolments once the plan is applied."""
        return self.existing + self.chosen

    @property
    def free(self) -> int | None:
        """Seats left after the plan (``None``: unlimited)."""
        cap = self.offer.capacity
        return None if cap is None else max(0, cap - self.projected)


@dataclass(frozen=True, slots=True)
class CompetencyStats:
    """Counts for one competency over the planned people."""

    competency: str
    #: People whose standard requires it.
    required: int
    met: int
    not_assessed: int
    #: Effective level -> people with a gap at that level.
    gaps_by_level: Mapping[int, int]
    #: Gap size -> people.
    gaps_by_size: Mapping[int, int]
    #: Status -> people (every required competency has exactly one status).
    outcomes: Mapping[Status, int]


class MissingStandard(NamedTuple):
    """A position the unit's mappings give no standard for, and who holds it."""

    unit: str
    jabatan: str
    nips: tuple[str, ...]


class PlannedEnrolment(NamedTuple):
    """An enrolment the plan wants in Moodle: ``new`` for a choice, else one kept."""

    nip: str
    offer: CourseOffer
    new: bool


@dataclass(frozen=True, slots=True)
class Explanation:
    """Everything :meth:`GapPlan.explain` knows about one person."""

    nip: str
    #: ``planned``, ``no_standard``, ``inactive``, ``unit_without_mappings`` or ``unknown``.
    state: str
    person: PersonPlan | None
    decisions: tuple[Decision, ...]

    def lines(self) -> list[str]:
        """The explanation as lines of text (NIPs are the caller's to mask)."""
        p = self.person
        if self.state == "unknown":
            return ["not in the roster given to the plan"]
        if self.state == "inactive":
            return ["inactive in the roster: no course is planned"]
        if self.state == "unit_without_mappings":
            return ["the person's unit has no mappings: no course is planned"]
        assert p is not None  # every other state has a person
        head = f"{p.unit} / {p.jabatan or '(no jabatan)'}"
        if p.position_level:
            head += f" (position level {p.position_level})"
        if self.state == "no_standard":
            return [head, "no standard for this position: no course is planned"]
        lines = [
            head,
            f"trainings this year: {p.used_before} before this plan, {len(p.chosen)} chosen now, "
            f"cap {p.cap}",
        ]
        lines.extend(f"{d.competency}: {d.reason()}" for d in self.decisions)
        return lines


@dataclass(frozen=True)
class GapPlan:
    """The result of :func:`plan_gaps`."""

    as_of: dt.date
    #: Active people whose unit has mappings, by NIP (those without a standard included).
    people: Mapping[str, PersonPlan]
    #: Every course window of the catalogues, by (competency, from level, scope, course, start).
    courses: tuple[CourseLoad, ...]
    stats: Mapping[str, CompetencyStats]
    #: NIP -> the required competencies they have no assessment for.
    not_assessed: Mapping[str, tuple[str, ...]]
    without_standard: tuple[MissingStandard, ...]
    inactive: tuple[str, ...]
    #: Unit -> NIPs of people whose unit has no mappings (only when a dict of mappings is given).
    unmapped_units: Mapping[str, tuple[str, ...]]
    #: Competency codes found in assessments but in no dictionary -> number of rows.
    unknown_competencies: Mapping[str, int]
    #: Distinct NIPs that have assessments but are not in the roster.
    unknown_people: int
    mappings: Mapping[str, Mappings] = field(repr=False, default_factory=dict)

    @property
    def year(self) -> int:
        """The year the annual cap counts."""
        return self.as_of.year

    def decisions(self) -> Iterator[Decision]:
        """Every decision, person by person (NIP order), "no gap" ones included."""
        for nip in sorted(self.people):
            yield from self.people[nip].decisions

    def desired_enrolments(self) -> list[PlannedEnrolment]:
        """The enrolments the plan wants: chosen ones (``new``) and kept ones, sorted by course,
        window and NIP. Anything the bridge enrolled that is not here is no longer wanted."""
        out = [
            PlannedEnrolment(d.nip, d.offer, d.status is Status.CHOSEN)
            for p in self.people.values()
            for d in p.gaps
            if d.desired and d.offer is not None
        ]
        out.sort(key=lambda e: (*_offer_sort(e.offer), e.nip))
        return out

    def gap_cohorts(self) -> dict[tuple[str, int], tuple[str, ...]]:
        """(competency, starting level) -> sorted NIPs of the people the plan enrols (or keeps)
        in a course of that step: the membership of the gap cohorts."""
        members: defaultdict[tuple[str, int], list[str]] = defaultdict(list)
        for e in self.desired_enrolments():
            members[(e.offer.competency, e.offer.from_level)].append(e.nip)
        return {k: tuple(sorted(v)) for k, v in sorted(members.items())}

    def explain(self, nip: str) -> Explanation:
        """The person's state, standard, decisions (with reasons) and cap usage."""
        person = self.people.get(nip)
        if person is not None:
            state = "planned" if person.standard is not None else "no_standard"
            return Explanation(nip, state, person, person.decisions)
        if nip in self.inactive:
            return Explanation(nip, "inactive", None, ())
        if any(nip in nips for nips in self.unmapped_units.values()):
            return Explanation(nip, "unit_without_mappings", None, ())
        return Explanation(nip, "unknown", None, ())

    def why(self, nip: str, course_shortname: str) -> str:
        """Why the person is, or is not, in the course ``course_shortname``."""
        explanation = self.explain(nip)
        person = explanation.person
        if person is None or person.standard is None:
            return explanation.lines()[-1]
        for d in explanation.decisions:
            if d.offer is not None and d.offer.course_shortname == course_shortname:
                return d.reason()
        mappings = self.mappings.get(person.unit)
        step = mappings.course_step(course_shortname) if mappings is not None else None
        if step is None:
            return f"{course_shortname} is not in the catalogue of {person.unit}"
        what = (
            f"{course_shortname} takes {step.competency} from {step.from_level} to {step.to_level}"
        )
        for d in explanation.decisions:
            if d.competency != step.competency:
                continue
            if d.status is Status.NO_GAP or d.status is Status.NOT_ASSESSED:
                return f"{what}; {d.reason()}"
            if d.level != step.from_level:
                tail = f"; {d.reason()}" if d.offer is not None else ""
                return f"{what}, but the person is at {d.level_text()}{tail}"
            return f"{what}; {d.reason()}"
        return f"{what}, which the position {person.jabatan!r} does not require"

    def summary(self) -> dict[str, int]:
        """Headline counts: people planned, gaps, chosen, waiting..."""
        counts: Counter[str] = Counter()
        for s in self.stats.values():
            for status, n in s.outcomes.items():
                counts[str(status)] += n
        counts["people"] = len(self.people)
        counts["people_not_assessed"] = len(self.not_assessed)
        counts["people_without_standard"] = sum(len(m.nips) for m in self.without_standard)
        counts["inactive"] = len(self.inactive)
        return dict(sorted(counts.items()))


# --- the engine -----------------------------------------------------------------------------------
_ROW_BITS = 37
_DATE_SHIFT = _ROW_BITS + 3
_ROW_MASK = (1 << _ROW_BITS) - 1


def _offer_sort(offer: CourseOffer) -> tuple[str, int, int, str, str, dt.date, dt.date]:
    return (
        offer.competency,
        offer.from_level,
        0 if offer.scope != NATIONAL else 1,
        offer.scope,
        offer.course_shortname,
        offer.window_start or dt.date.min,
        offer.window_end or dt.date.max,
    )


def plan_gaps(
    people: Iterable[PersonLike],
    assessments: Iterable[AssessmentLike],
    mappings: Mappings | Mapping[str, Mappings],
    *,
    as_of: dt.date,
    completions: Iterable[CompletedCourse] = (),
    enrolments: Iterable[CurrentEnrolment] = (),
    used_this_year: Mapping[str, int] | None = None,
    annual_cap: int | None = None,
) -> GapPlan:
    """Plan the courses that close each active person's competency gaps.

    ``mappings`` is one unit's mappings (applied to everyone) or unit code -> mappings (people
    are routed by their ``unit``; national course windows are then shared between units).
    ``as_of`` decides which windows are closed and which year the cap counts. ``completions``
    raise levels and exclude courses; ``enrolments`` are the active enrolments in catalogue
    courses (they are kept when still needed, take seats, and are never chosen again);
    ``used_this_year`` counts each person's trainings already started this year (current
    enrolments of this year included); ``annual_cap`` overrides every unit's cap.

    Inputs are read once (generators are fine); a duplicate NIP in ``people`` keeps the largest
    ``(unit, jabatan, active)`` so that the result never depends on order.
    """
    # Millions of small tuples and no reference cycles: the cyclic collector would only rescan
    # the growing heap again and again (a third of the run time at full size).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _plan(
            people, assessments, mappings, as_of, completions, enrolments, used_this_year,
            annual_cap,
        )  # fmt: skip
    finally:
        if was_enabled:
            gc.enable()


def _plan(
    people: Iterable[PersonLike],
    assessments: Iterable[AssessmentLike],
    mappings: Mappings | Mapping[str, Mappings],
    as_of: dt.date,
    completions: Iterable[CompletedCourse],
    enrolments: Iterable[CurrentEnrolment],
    used_this_year: Mapping[str, int] | None,
    annual_cap: int | None,
) -> GapPlan:
    if isinstance(mappings, Mappings):
        single: Mappings | None = mappings
        by_unit: Mapping[str, Mappings] = {}
        all_mappings: dict[str, Mappings] = {mappings.unit: mappings}
    else:
        single, by_unit = None, mappings
        all_mappings = dict(sorted(mappings.items()))
    known_codes = {c for m in all_mappings.values() for c in m.competencies}
    used = used_this_year or {}

    roster = _collect_people(people)
    latest, unknown_codes, unknown_people = _latest_assessments(assessments, roster, known_codes)
    completed = _collect_completions(completions)
    loads = _course_loads(all_mappings)
    enrolled, enrolment_window = _count_enrolments(enrolments, roster, loads, as_of)
    tally = _Tally(all_mappings)
    tables = {id(m): _offer_table(m, as_of) for m in all_mappings.values()}
    prepared: dict[tuple[int, str], tuple[Standard | None, tuple[_Prepared, ...]]] = {}

    plans: dict[str, PersonPlan] = {}
    inactive: list[str] = []
    unmapped: defaultdict[str, list[str]] = defaultdict(list)
    missing: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
    not_assessed: dict[str, tuple[str, ...]] = {}
    # Per planned person, by index in NIP order (requests carry the index: comparing and
    # looking up small ints is cheaper than NIP strings, and sorts the same way).
    order: list[PersonPlan] = []
    found: list[list[Decision] | None] = []
    requests: list[_Request] = []
    empty: dict[str, int] = {}
    not_assessed_status = Status.NOT_ASSESSED

    for nip in sorted(roster):
        person = roster[nip]
        if not person.active:
            inactive.append(nip)
            continue
        m = single if single is not None else by_unit.get(person.unit)
        if m is None:
            unmapped[person.unit].append(nip)
            continue
        jabatan = person.jabatan
        ready = prepared.get((id(m), jabatan))
        if ready is None:
            ready = prepared[(id(m), jabatan)] = _prepare(m, jabatan, tables[id(m)], tally)
        standard, reqs = ready
        cap = m.annual_cap if annual_cap is None else annual_cap
        plan = PersonPlan(nip, person.unit, jabatan, standard, cap, used.get(nip, 0))
        plans[nip] = plan
        index = len(order)
        order.append(plan)
        found.append(None)
        if standard is None:
            missing[(person.unit, normalise_jabatan(jabatan))].append(nip)
            continue
        tally.people_per_standard[id(standard)] += 1
        # Popped, not read: the assessments of people already planned are freed as we go.
        per = latest.pop(nip, empty)
        done = completed.get(nip)
        raised = _raised_levels(m, per, done) if done else None
        mine = enrolled.get(nip)
        levels: list[int | None] = []
        decisions: list[Decision] = []
        missed: list[str] = []
        for req, comp, need, priority, row, outcomes, at_level, of_size in reqs:
            key = per.get(comp)
            if key is None:
                levels.append(None)
                missed.append(comp)
                decisions.append(
                    Decision(nip, comp, need, None, None, not_assessed_status, None, 0, None,
                             req.origin)
                )  # fmt: skip
                outcomes[not_assessed_status] += 1
                continue
            assessed = level = key & 7
            raised_by: str | None = None
            if raised is not None and comp in raised:
                assessed, level, raised_by = raised[comp]
            levels.append(level)
            gap = need - level
            if gap <= 0:
                continue
            at_level[level] += 1
            of_size[gap] += 1
            entry = row[level]
            offer: CourseOffer | None = None
            if entry is None:
                status = Status.NO_COURSE
            else:
                options, open_ = entry
                kept = None
                if mine is not None:
                    kept = next((o for o in options if o.course_shortname in mine), None)
                if kept is not None:
                    status = Status.ENROLLED
                    offer = enrolment_window.get((nip, kept.course_shortname), kept)
                elif not open_:
                    status, offer = Status.WINDOW_CLOSED, options[-1]
                else:
                    avail = (
                        open_
                        if done is None
                        else tuple(o for o in open_ if o.course_shortname not in done)
                    )
                    if avail:
                        requests.append(
                            (-gap, priority, comp, index, avail, req, assessed, level, raised_by)
                        )
                        continue
                    status, offer = Status.ALREADY_COMPLETED, open_[0]
            outcomes[status] += 1
            decisions.append(
                Decision(nip, comp, need, assessed, level, status, offer, 0, raised_by,
                         req.origin)
            )  # fmt: skip
        plan.levels = tuple(levels)
        if raised:
            plan.raised = {c: (a, course) for c, (a, _, course) in raised.items()}
        if missed:
            not_assessed[nip] = tuple(missed)
        if decisions:
            found[index] = decisions

    _allocate(requests, order, loads, found, tally)
    for plan, settled in zip(order, found, strict=True):
        if settled:
            plan.gaps = tuple(settled)

    return GapPlan(
        as_of=as_of,
        people=MappingProxyType(plans),
        courses=tuple(
            sorted({id(c): c for c in loads.values()}.values(), key=lambda c: _offer_sort(c.offer))
        ),
        stats=MappingProxyType(tally.stats(prepared)),
        not_assessed=MappingProxyType(not_assessed),
        without_standard=tuple(
            MissingStandard(unit, roster[nips[0]].jabatan, tuple(nips))
            for (unit, _), nips in sorted(missing.items())
        ),
        inactive=tuple(inactive),
        unmapped_units=MappingProxyType({u: tuple(n) for u, n in sorted(unmapped.items())}),
        unknown_competencies=MappingProxyType(dict(sorted(unknown_codes.items()))),
        unknown_people=unknown_people,
        mappings=MappingProxyType(all_mappings),
    )


#: (-gap, priority, competency, person index, open windows, requirement, assessed, level,
#: raised_by);
#: the first four are unique per request, so sorting never compares the rest.
_Request = tuple[int, int, str, int, tuple[CourseOffer, ...], Requirement, int, int, "str | None"]
#: Per level 0-5: (every row from that level, the rows still open), or None.
_Entry = tuple[tuple[CourseOffer, ...], tuple[CourseOffer, ...]] | None
#: A requirement with what the loop needs at hand: (requirement, code, level, priority,
#: the competency's offers by level, its status counts, gaps by level, gaps by size).
_Prepared = tuple[
    Requirement, str, int, int, list[_Entry], defaultdict[Status, int], list[int], list[int]
]


class _Tally:
    """Counters for :class:`CompetencyStats`, kept per competency for speed."""

    def __init__(self, all_mappings: Mapping[str, Mappings]) -> None:
        codes = sorted({c for m in all_mappings.values() for c in m.competencies})
        self.outcomes: dict[str, defaultdict[Status, int]] = {c: defaultdict(int) for c in codes}
        self.at_level: dict[str, list[int]] = {c: [0] * 6 for c in codes}
        self.of_size: dict[str, list[int]] = {c: [0] * 6 for c in codes}
        self.people_per_standard: defaultdict[int, int] = defaultdict(int)

    def stats(
        self, prepared: Mapping[tuple[int, str], tuple[Standard | None, tuple[_Prepared, ...]]]
    ) -> dict[str, CompetencyStats]:
        required: defaultdict[str, int] = defaultdict(int)
        seen: set[int] = set()
        for standard, _ in prepared.values():
            if standard is None or id(standard) in seen:
                continue
            seen.add(id(standard))
            n = self.people_per_standard.get(id(standard), 0)
            for req in standard.requirements:
                required[req.competency] += n
        stats: dict[str, CompetencyStats] = {}
        for code, counted in self.outcomes.items():
            out = {s: n for s in Status if (n := counted.get(s, 0))}
            met = required[code] - sum(out.values())
            if met:
                out[Status.NO_GAP] = met
            stats[code] = CompetencyStats(
                competency=code,
                required=required[code],
                met=met,
                not_assessed=out.get(Status.NOT_ASSESSED, 0),
                gaps_by_level=MappingProxyType(
                    {lvl: n for lvl, n in enumerate(self.at_level[code]) if n}
                ),
                gaps_by_size=MappingProxyType(
                    {size: n for size, n in enumerate(self.of_size[code]) if n}
                ),
                outcomes=MappingProxyType(dict(sorted(out.items()))),
            )
        return stats


def _offer_table(m: Mappings, as_of: dt.date) -> dict[str, list[_Entry]]:
    table: dict[str, list[_Entry]] = {}
    for code in m.competencies:
        row: list[_Entry] = [None] * 6
        for level in range(1, 6):
            options = m.offers(code, level)
            if options:
                row[level] = (options, tuple(o for o in options if not o.is_closed(as_of)))
        table[code] = row
    return table


def _prepare(
    m: Mappings, jabatan: str, table: Mapping[str, list[_Entry]], tally: _Tally
) -> tuple[Standard | None, tuple[_Prepared, ...]]:
    standard = m.standard_for(jabatan)
    if standard is None:
        return None, ()
    return standard, tuple(
        (
            req,
            req.competency,
            req.level,
            m.competencies[req.competency].priority,
            table[req.competency],
            tally.outcomes[req.competency],
            tally.at_level[req.competency],
            tally.of_size[req.competency],
        )
        for req in standard.requirements
    )


def _collect_people(people: Iterable[PersonLike]) -> dict[str, PersonLike]:
    roster: dict[str, PersonLike] = {}
    for p in people:
        old = roster.get(p.nip)
        if old is None or (p.unit, p.jabatan, p.active) > (old.unit, old.jabatan, old.active):
            roster[p.nip] = p
    return roster


def _latest_assessments(
    assessments: Iterable[AssessmentLike],
    roster: Mapping[str, PersonLike],
    known_codes: set[str],
) -> tuple[dict[str, dict[str, int]], Counter[str], int]:
    """NIP -> competency -> packed (date, row, level) of the latest assessment.

    One int per entry (date ordinal, then row, then level, in that order of significance)
    keeps a quarter of a million people's assessments small and makes "latest" one ``>``.
    """
    latest: dict[str, dict[str, int]] = {}
    unknown_codes: Counter[str] = Counter()
    strangers: set[str] = set()
    shift = _DATE_SHIFT
    for a in assessments:
        nip, comp = a.nip, a.competency
        if comp not in known_codes:
            unknown_codes[comp] += 1
            continue
        per = latest.get(nip)
        if per is None:
            if nip not in roster:
                strangers.add(nip)
                continue
            per = latest[nip] = {}
        row = a.row
        if not 0 <= row <= _ROW_MASK:
            row = 0 if row < 0 else _ROW_MASK
        key = (a.date.toordinal() << shift) | (row << 3) | a.level
        old = per.get(comp)
        if old is None or key > old:
            per[comp] = key
    return latest, unknown_codes, len(strangers)


def _collect_completions(completions: Iterable[CompletedCourse]) -> dict[str, dict[str, dt.date]]:
    """NIP -> course -> the latest completion day."""
    done: dict[str, dict[str, dt.date]] = {}
    for c in completions:
        day = c.time.date() if isinstance(c.time, dt.datetime) else c.time
        per = done.setdefault(c.nip, {})
        old = per.get(c.course_shortname)
        if old is None or day > old:
            per[c.course_shortname] = day
    return done


def _raised_levels(
    m: Mappings, per: Mapping[str, int], done: Mapping[str, dt.date]
) -> dict[str, tuple[int, int, str]]:
    """Competency -> (assessed level, raised level, course) for completions that count."""
    raised: dict[str, tuple[int, int, str]] = {}
    for course in sorted(done):
        step = m.course_step(course)
        if step is None:
            continue
        key = per.get(step.competency)
        if key is None or done[course].toordinal() < key >> _DATE_SHIFT:
            continue
        assessed = key & 7
        old = raised.get(step.competency)
        best = old[1] if old is not None else assessed
        if step.to_level > best:
            raised[step.competency] = (assessed, step.to_level, course)
    return raised


def _course_loads(all_mappings: Mapping[str, Mappings]) -> dict[int, CourseLoad]:
    """id(offer) -> its window's load; offers of one window (a national row loaded for several
    units) share one load."""
    by_window: dict[tuple[object, ...], CourseLoad] = {}
    loads: dict[int, CourseLoad] = {}
    for m in all_mappings.values():
        for offer in m.catalogue:
            loads[id(offer)] = by_window.setdefault(offer.window_key, CourseLoad(offer))
    return loads


def _count_enrolments(
    enrolments: Iterable[CurrentEnrolment],
    roster: Mapping[str, PersonLike],
    loads: Mapping[int, CourseLoad],
    as_of: dt.date,
) -> tuple[dict[str, set[str]], dict[tuple[str, str], CourseOffer]]:
    """Who is enrolled where, and each enrolment's window (whose seat it takes)."""
    first: dict[tuple[str, str], dt.date | None] = {}
    for e in enrolments:
        key = (e.nip, e.course_shortname)
        if key not in first:
            first[key] = e.start
        else:
            old = first[key]
            if e.start is not None and (old is None or e.start < old):
                first[key] = e.start
    windows: defaultdict[str, list[CourseLoad]] = defaultdict(list)
    for load in {id(x): x for x in loads.values()}.values():
        windows[load.offer.course_shortname].append(load)
    enrolled: dict[str, set[str]] = {}
    where: dict[tuple[str, str], CourseOffer] = {}
    for (nip, course), start in sorted(first.items(), key=lambda kv: kv[0]):
        enrolled.setdefault(nip, set()).add(course)
        candidates = windows.get(course)
        if not candidates:
            continue
        person = roster.get(nip)
        unit = person.unit if person is not None else None
        day = start or as_of

        def rank(
            load: CourseLoad, unit: str | None = unit, day: dt.date = day
        ) -> tuple[int, int, dt.date, dt.date, str]:
            o = load.offer
            return (
                0 if o.scope == unit else 1 if o.scope == NATIONAL else 2,
                0 if o.contains(day) else 1,
                o.window_start or dt.date.min,
                o.window_end or dt.date.max,
                o.scope,
            )

        best = min(candidates, key=rank)
        best.existing += 1
        where[(nip, course)] = best.offer
    return enrolled, where


def _allocate(
    requests: list[_Request],
    order: Sequence[PersonPlan],
    loads: Mapping[int, CourseLoad],
    found: list[list[Decision] | None],
    tally: _Tally,
) -> None:
    """Serve the requests in priority order across everyone: cap, then seats, else wait."""
    requests.sort()
    left = [max(0, p.cap - p.used_before) for p in order]
    outcomes = tally.outcomes
    chosen, waiting_list, cap_reached = Status.CHOSEN, Status.WAITING, Status.CAP_REACHED
    for _, _, comp, index, avail, req, assessed, level, raised_by in requests:
        offer = avail[0]
        position = 0
        if left[index] <= 0:
            status = cap_reached
        else:
            for candidate in avail:
                load = loads[id(candidate)]
                cap = candidate.capacity
                if cap is None or load.existing + load.chosen < cap:
                    load.chosen += 1
                    left[index] -= 1
                    status, offer = chosen, candidate
                    break
            else:
                status = waiting_list
                waiting = loads[id(offer)].waiting
                waiting.append(order[index].nip)
                position = len(waiting)
        outcomes[comp][status] += 1
        decision = Decision(
            order[index].nip, comp, req.level, assessed, level, status, offer, position,
            raised_by, req.origin,
        )  # fmt: skip
        mine = found[index]
        if mine is None:
            found[index] = [decision]
        else:
            mine.append(decision)
