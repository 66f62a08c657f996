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

Size: a plan of the whole ministry holds 2.6 million decisions. A person's plan keeps only their
levels and, per gap, a :class:`GapOutcome` (status, course window, waiting position; the common
ones shared between people); :class:`Decision` objects are built when asked for.
"""

from __future__ import annotations

import datetime as dt
import gc
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
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
from moodle_bridge.roster.assessment import (
    AssessmentLike,
    LatestAssessments,
    rank_day,
    rank_level,
)

__all__ = [
    "AssessmentLike",
    "CompetencyStats",
    "CompletedCourse",
    "CourseLoad",
    "CurrentEnrolment",
    "Decision",
    "Explanation",
    "GapOutcome",
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

    def reason(self, *, missing: bool = False) -> str:
        """One sentence a clerk can read: what was decided and why; ``missing`` marks the
        course as one Moodle lacks."""
        comp, need = self.competency, self.required
        origin = " (managerial default of the position level)" if self.origin == "default" else ""
        required = f"required {need}{origin}"
        course = self.offer.label() if self.offer is not None else ""
        if missing:
            course += " (missing in Moodle: create it or fix the catalogue)"
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


class GapOutcome(NamedTuple):
    """How one gap was settled: its status, the course window concerned (see
    :class:`Decision`) and the 1-based waiting-list position (0: not waiting)."""

    status: Status
    offer: CourseOffer | None = None
    waiting_position: int = 0


@dataclass(slots=True)
class PersonPlan:
    """One active person's plan: their standard, levels and how each gap was settled.

    :attr:`decisions` are built from these when asked for, so a plan of a quarter of a million
    people stays small.
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
    #: Per requirement (same order): how its gap was settled; ``None`` without a gap or level.
    outcomes: tuple[GapOutcome | None, ...] = ()

    @property
    def position_level(self) -> str | None:
        """The position level the standard used (``None`` without one)."""
        return self.standard.position_level if self.standard is not None else None

    @property
    def decisions(self) -> tuple[Decision, ...]:
        """One decision per required competency, in competency-code order."""
        if self.standard is None:
            return ()
        return tuple(
            self._decision(req, level, outcome)
            for req, level, outcome in zip(
                self.standard.requirements, self.levels, self.outcomes, strict=True
            )
        )

    @property
    def gaps(self) -> tuple[Decision, ...]:
        """The decisions other than "no gap" (not assessed included), in competency-code order."""
        return tuple(d for d in self.decisions if d.status is not Status.NO_GAP)

    @property
    def chosen(self) -> tuple[Decision, ...]:
        """The new enrolments this plan chose."""
        return tuple(d for d in self.gaps if d.status is Status.CHOSEN)

    @property
    def cap_used(self) -> int:
        """Trainings counted this year once the plan's choices are made."""
        chosen = sum(1 for o in self.outcomes if o is not None and o.status is Status.CHOSEN)
        return self.used_before + chosen

    def open_gaps(self) -> tuple[str, ...]:
        """The competencies whose (effective) level is below the standard, whatever the plan
        does about them; a competency never assessed has no known gap and is left out."""
        if self.standard is None:
            return ()
        return tuple(
            req.competency
            for req, outcome in zip(self.standard.requirements, self.outcomes, strict=True)
            if outcome is not None
        )

    def _decision(
        self, req: Requirement, level: int | None, outcome: GapOutcome | None
    ) -> Decision:
        if level is None:
            return Decision(
                self.nip, req.competency, req.level, None, None, Status.NOT_ASSESSED,
                origin=req.origin,
            )  # fmt: skip
        assessed, raised_by = level, None
        if self.raised is not None and req.competency in self.raised:
            assessed, raised_by = self.raised[req.competency]
        settled = outcome if outcome is not None else _NO_GAP
        return Decision(
            self.nip, req.competency, req.level, assessed, level, settled.status, settled.offer,
            settled.waiting_position, raised_by, req.origin,
        )  # fmt: skip


_NO_GAP = GapOutcome(Status.NO_GAP)


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

    def lines(self, missing: Collection[str] = ()) -> list[str]:
        """The explanation as lines of text (NIPs are the caller's to mask); a chosen (or
        kept) course in ``missing`` (shortnames Moodle lacks) is marked so."""
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
        for d in self.decisions:
            gone = d.desired and d.offer is not None and d.offer.course_shortname in missing
            lines.append(f"{d.competency}: {d.reason(missing=gone)}")
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
            PlannedEnrolment(p.nip, o.offer, o.status is Status.CHOSEN)
            for p in self.people.values()
            for o in p.outcomes
            if o is not None and o.status in DESIRED and o.offer is not None
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
) -> GapPlan:
    """Plan the courses that close each active person's competency gaps.

    ``mappings`` is one unit's mappings (applied to everyone) or unit code -> mappings (people
    are routed by their ``unit``; national course windows are then shared between units).
    ``as_of`` decides which windows are closed and which year the cap counts. ``completions``
    raise levels and exclude courses; ``enrolments`` are the active enrolments in catalogue
    courses (they are kept when still needed, take seats, and are never chosen again);
    ``used_this_year`` counts each person's trainings already started this year (current
    enrolments of this year included). Each unit's annual cap is its mappings' ``annual_cap``.

    ``assessments`` may be any iterable (read once; generators are fine) or, cheapest, the
    :class:`LatestAssessments` a reader kept, which is used as it is (and not changed). A
    duplicate NIP in ``people`` keeps the largest ``(unit, jabatan, active)`` so that the
    result never depends on order.
    """
    # Millions of small tuples and no reference cycles: the cyclic collector would only rescan
    # the growing heap again and again (a third of the run time at full size).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        catalogue = _Catalogue(mappings, as_of)
        roster = _collect_people(people)
        latest = (
            assessments
            if isinstance(assessments, LatestAssessments)
            else LatestAssessments(assessments)
        )
        enrolled, windows = _count_enrolments(enrolments, roster, catalogue.loads, as_of)
        history = _History(
            _collect_completions(completions), enrolled, windows, used_this_year or {}
        )
        known = catalogue.known_codes
        unknown_codes = {c: n for c, n in latest.rows_by_competency().items() if c not in known}
        # Assessments read here are the engine's own: each person's are freed once planned.
        own = latest is not assessments
        planning = _Planning(catalogue, latest.take if own else latest.by_nip.get, history)
        for nip in sorted(roster):
            planning.add(roster[nip])
        planning.allocate()
        return planning.result(roster, latest, unknown_codes)
    finally:
        if was_enabled:
            gc.enable()


class _Offers(NamedTuple):
    """The catalogue rows that take one competency on from one level."""

    #: Every row, in the order they are tried (see :meth:`Mappings.offers`).
    every: tuple[CourseOffer, ...]
    #: The rows whose window has not closed.
    still_open: tuple[CourseOffer, ...]


class _Queue:
    """The gaps of one size in one competency that ask for a seat, in the order they were
    planned (NIP order), in flat arrays rather than an object per request: a ministry makes a
    million requests."""

    __slots__ = ("people", "slots", "windows")

    def __init__(self) -> None:
        #: The person's index in NIP order, and the requirement's position in their standard.
        self.people: array[int] = array("L")
        self.slots: array[int] = array("H")
        #: The open windows the person has not completed, in the order they are tried.
        self.windows: list[tuple[CourseOffer, ...]] = []


#: A queue's key: (minus the gap, the competency's priority, its code). Served in key order,
#: then NIP order within a queue: the allocation order of the rules.
_QueueKey = tuple[int, int, str]


class _Step(NamedTuple):
    """One requirement of a standard, with what the loop needs of it at hand."""

    competency: str
    required: int
    #: Starting level 0-5 -> the competency's offers from that level (``None``: none).
    offers: list[_Offers | None]
    #: The competency's counters in :class:`_Tally`.
    statuses: defaultdict[Status, int]
    at_level: list[int]
    of_size: list[int]
    #: Gap size -> the queue of the gaps of that size asking for a seat.
    queues: tuple[_Queue, ...]


class _History(NamedTuple):
    """What people already did: completions, current enrolments, trainings this year."""

    #: NIP -> course -> the latest completion day.
    completed: Mapping[str, Mapping[str, dt.date]]
    #: NIP -> the courses they are enrolled in, and each enrolment's window (whose seat it has).
    enrolled: Mapping[str, set[str]]
    windows: Mapping[tuple[str, str], CourseOffer]
    used: Mapping[str, int]


_NO_RANKS: Mapping[str, int] = MappingProxyType({})


class _Tally:
    """Counters for :class:`CompetencyStats`, kept per competency for speed."""

    def __init__(self, all_mappings: Mapping[str, Mappings]) -> None:
        codes = sorted({c for m in all_mappings.values() for c in m.competencies})
        self.statuses: dict[str, defaultdict[Status, int]] = {c: defaultdict(int) for c in codes}
        self.at_level: dict[str, list[int]] = {c: [0] * 6 for c in codes}
        self.of_size: dict[str, list[int]] = {c: [0] * 6 for c in codes}
        self.people_per_standard: defaultdict[int, int] = defaultdict(int)

    def stats(self, standards: Iterable[Standard]) -> dict[str, CompetencyStats]:
        """The statistics, given every distinct standard the plan used."""
        required: defaultdict[str, int] = defaultdict(int)
        for standard in standards:
            n = self.people_per_standard.get(id(standard), 0)
            for req in standard.requirements:
                required[req.competency] += n
        stats: dict[str, CompetencyStats] = {}
        for code, counted in self.statuses.items():
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


class _Catalogue:
    """The mapping tables made ready for the loop, the course loads and the counters."""

    def __init__(self, mappings: Mappings | Mapping[str, Mappings], as_of: dt.date) -> None:
        self.single: Mappings | None = None
        self.by_unit: Mapping[str, Mappings] = {}
        if isinstance(mappings, Mappings):
            self.single = mappings
            self.mappings: dict[str, Mappings] = {mappings.unit: mappings}
        else:
            self.by_unit = mappings
            self.mappings = dict(sorted(mappings.items()))
        self.as_of = as_of
        self.known_codes = {c for m in self.mappings.values() for c in m.competencies}
        self.loads = _course_loads(self.mappings)
        self.tally = _Tally(self.mappings)
        self.queues: dict[_QueueKey, _Queue] = {}
        self._tables = {id(m): _offer_table(m, as_of) for m in self.mappings.values()}
        self._steps: dict[tuple[int, str], tuple[Standard | None, tuple[_Step, ...]]] = {}

    def route(self, unit: str) -> Mappings | None:
        """The mappings that plan the people of ``unit`` (``None``: the unit has none)."""
        return self.single if self.single is not None else self.by_unit.get(unit)

    def steps(self, m: Mappings, jabatan: str) -> tuple[Standard | None, tuple[_Step, ...]]:
        """The standard of ``jabatan`` in ``m`` and its requirements made ready (cached)."""
        key = (id(m), jabatan)
        ready = self._steps.get(key)
        if ready is None:
            table = self._tables[id(m)]
            ready = self._steps[key] = _prepare(m, jabatan, table, self.tally, self.queues)
        return ready

    def standards(self) -> list[Standard]:
        """Every distinct standard :meth:`steps` found."""
        found = {id(s): s for s, _ in self._steps.values() if s is not None}
        return list(found.values())


class _Planning:
    """Everyone's plans, built person by person in NIP order, then the seats allocated across
    them all at once."""

    def __init__(
        self,
        catalogue: _Catalogue,
        ranks: Callable[[str], Mapping[str, int] | None],
        history: _History,
    ) -> None:
        self.catalogue = catalogue
        #: NIP -> competency -> rank of the latest assessment (see LatestAssessments).
        self.ranks = ranks
        self.history = history
        self.plans: dict[str, PersonPlan] = {}
        # The people with a standard and their outcomes, by index in NIP order (queues hold
        # the index: a small int is cheaper than a NIP).
        self.order: list[PersonPlan] = []
        self.slots: list[list[GapOutcome | None]] = []
        self.inactive: list[str] = []
        self.unmapped: defaultdict[str, list[str]] = defaultdict(list)
        self.missing: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
        self.not_assessed: dict[str, tuple[str, ...]] = {}
        self._shared: dict[tuple[Status, int], GapOutcome] = {}

    def outcome(self, status: Status, offer: CourseOffer | None) -> GapOutcome:
        """The one shared outcome of ``status`` in ``offer`` (no waiting position)."""
        key = (status, id(offer))
        found = self._shared.get(key)
        if found is None:
            found = self._shared[key] = GapOutcome(status, offer)
        return found

    def add(self, person: PersonLike) -> None:
        """Plan ``person``: route them to their unit's mappings, then settle their levels."""
        nip = person.nip
        if not person.active:
            self.inactive.append(nip)
            return
        m = self.catalogue.route(person.unit)
        if m is None:
            self.unmapped[person.unit].append(nip)
            return
        standard, steps = self.catalogue.steps(m, person.jabatan)
        used = self.history.used.get(nip, 0)
        plan = PersonPlan(nip, person.unit, person.jabatan, standard, m.annual_cap, used)
        self.plans[nip] = plan
        if standard is None:
            self.missing[(person.unit, normalise_jabatan(person.jabatan))].append(nip)
            return
        self.catalogue.tally.people_per_standard[id(standard)] += 1
        self._settle(plan, m, steps)

    def _settle(self, plan: PersonPlan, m: Mappings, steps: tuple[_Step, ...]) -> None:
        """Each requirement's level and, for each gap, its outcome or a request for a seat."""
        nip, index = plan.nip, len(self.order)
        ranks = self.ranks(nip) or _NO_RANKS
        done = self.history.completed.get(nip)
        raised = _raised_levels(m, ranks, done) if done else None
        mine = self.history.enrolled.get(nip)
        levels: list[int | None] = []
        outcomes: list[GapOutcome | None] = []
        missed: list[str] = []
        for slot, (comp, need, offers, statuses, at_level, of_size, queues) in enumerate(steps):
            rank = ranks.get(comp)
            if rank is None:
                levels.append(None)
                outcomes.append(None)
                missed.append(comp)
                statuses[Status.NOT_ASSESSED] += 1
                continue
            level = raised[comp][1] if raised is not None and comp in raised else rank_level(rank)
            levels.append(level)
            gap = need - level
            if gap <= 0:
                outcomes.append(None)
                continue
            at_level[level] += 1
            of_size[gap] += 1
            entry = offers[level]
            free = entry.still_open if entry is not None else ()
            if mine is not None or done is not None or not free:
                outcome = self._without_seat(nip, entry, mine, done)
                if outcome is not None:
                    statuses[outcome.status] += 1
                    outcomes.append(outcome)
                    continue
                if done is not None:
                    free = tuple(o for o in free if o.course_shortname not in done)
            queue = queues[gap]
            queue.people.append(index)
            queue.slots.append(slot)
            queue.windows.append(free)
            outcomes.append(None)  # settled by allocate()
        plan.levels = tuple(levels)
        if raised:
            plan.raised = {c: (assessed, course) for c, (assessed, _, course) in raised.items()}
        if missed:
            self.not_assessed[nip] = tuple(missed)
        self.order.append(plan)
        self.slots.append(outcomes)

    def _without_seat(
        self,
        nip: str,
        entry: _Offers | None,
        mine: set[str] | None,
        done: Mapping[str, dt.date] | None,
    ) -> GapOutcome | None:
        """The outcome of a gap settled without asking for a seat; ``None`` when it asks."""
        if entry is None:
            return self.outcome(Status.NO_COURSE, None)
        if mine is not None:
            kept = next((o for o in entry.every if o.course_shortname in mine), None)
            if kept is not None:
                window = self.history.windows.get((nip, kept.course_shortname), kept)
                return self.outcome(Status.ENROLLED, window)
        if not entry.still_open:
            return self.outcome(Status.WINDOW_CLOSED, entry.every[-1])
        if done is not None and all(o.course_shortname in done for o in entry.still_open):
            return self.outcome(Status.ALREADY_COMPLETED, entry.still_open[0])
        return None

    def allocate(self) -> None:
        """Serve the requests in priority order across everyone: cap, then seats, else wait."""
        queues, loads, slots = self.catalogue.queues, self.catalogue.loads, self.slots
        left = [max(0, p.cap - p.used_before) for p in self.order]
        chosen, cap_reached, waiting_list = Status.CHOSEN, Status.CAP_REACHED, Status.WAITING
        for key in sorted(queues):
            queue = queues.pop(key)  # freed once served
            statuses = self.catalogue.tally.statuses[key[2]]
            for index, slot, windows in zip(queue.people, queue.slots, queue.windows, strict=True):
                if left[index] <= 0:
                    outcome = self.outcome(cap_reached, windows[0])
                else:
                    for candidate in windows:
                        load = loads[id(candidate)]
                        cap = candidate.capacity
                        if cap is None or load.existing + load.chosen < cap:
                            load.chosen += 1
                            left[index] -= 1
                            outcome = self.outcome(chosen, candidate)
                            break
                    else:
                        waiting = loads[id(windows[0])].waiting
                        waiting.append(self.order[index].nip)
                        outcome = GapOutcome(waiting_list, windows[0], len(waiting))
                statuses[outcome.status] += 1
                slots[index][slot] = outcome

    def result(
        self,
        roster: Mapping[str, PersonLike],
        latest: LatestAssessments,
        unknown_codes: Mapping[str, int],
    ) -> GapPlan:
        """The plan, once :meth:`allocate` has run."""
        # Popped, not read: each person's list is freed once it is a tuple.
        while self.slots:
            self.order.pop().outcomes = tuple(self.slots.pop())
        catalogue, known = self.catalogue, self.catalogue.known_codes
        loads = {id(c): c for c in catalogue.loads.values()}.values()
        return GapPlan(
            as_of=catalogue.as_of,
            people=MappingProxyType(self.plans),
            courses=tuple(sorted(loads, key=lambda c: _offer_sort(c.offer))),
            stats=MappingProxyType(catalogue.tally.stats(catalogue.standards())),
            not_assessed=MappingProxyType(self.not_assessed),
            without_standard=tuple(
                MissingStandard(unit, roster[nips[0]].jabatan, tuple(nips))
                for (unit, _), nips in sorted(self.missing.items())
            ),
            inactive=tuple(self.inactive),
            unmapped_units=MappingProxyType(
                {u: tuple(n) for u, n in sorted(self.unmapped.items())}
            ),
            unknown_competencies=MappingProxyType(dict(sorted(unknown_codes.items()))),
            unknown_people=sum(
                1
                for nip, ranks in latest.by_nip.items()
                if nip not in roster and not known.isdisjoint(ranks)
            ),
            mappings=MappingProxyType(catalogue.mappings),
        )


def _offer_table(m: Mappings, as_of: dt.date) -> dict[str, list[_Offers | None]]:
    table: dict[str, list[_Offers | None]] = {}
    for code in m.competencies:
        row: list[_Offers | None] = [None] * 6
        for level in range(1, 6):
            options = m.offers(code, level)
            if options:
                row[level] = _Offers(options, tuple(o for o in options if not o.is_closed(as_of)))
        table[code] = row
    return table


def _prepare(
    m: Mappings,
    jabatan: str,
    table: Mapping[str, list[_Offers | None]],
    tally: _Tally,
    queues: dict[_QueueKey, _Queue],
) -> tuple[Standard | None, tuple[_Step, ...]]:
    standard = m.standard_for(jabatan)
    if standard is None:
        return None, ()
    steps: list[_Step] = []
    for req in standard.requirements:
        code = req.competency
        priority = m.competencies[code].priority
        by_gap = tuple(queues.setdefault((-gap, priority, code), _Queue()) for gap in range(6))
        steps.append(
            _Step(
                competency=code,
                required=req.level,
                offers=table[code],
                statuses=tally.statuses[code],
                at_level=tally.at_level[code],
                of_size=tally.of_size[code],
                queues=by_gap,
            )
        )
    return standard, tuple(steps)


def _collect_people(people: Iterable[PersonLike]) -> dict[str, PersonLike]:
    roster: dict[str, PersonLike] = {}
    for p in people:
        old = roster.get(p.nip)
        if old is None or (p.unit, p.jabatan, p.active) > (old.unit, old.jabatan, old.active):
            roster[p.nip] = p
    return roster


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
    m: Mappings, ranks: Mapping[str, int], done: Mapping[str, dt.date]
) -> dict[str, tuple[int, int, str]]:
    """Competency -> (assessed level, raised level, course) for completions that count."""
    raised: dict[str, tuple[int, int, str]] = {}
    for course in sorted(done):
        step = m.course_step(course)
        if step is None:
            continue
        rank = ranks.get(step.competency)
        if rank is None or done[course].toordinal() < rank_day(rank):
            continue
        assessed = rank_level(rank)
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
