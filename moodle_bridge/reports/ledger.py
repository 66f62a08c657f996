"""JP queries over the completion ledger: who learned how many hours in a year, and what.

Pure: no files, no clock, no logging. :func:`build_ledger` takes the people, the ledger's
completions and the optional context (mappings, open gaps, enrolments, course names) and
returns a :class:`Ledger`: one :class:`PersonYear` per person of the unit and one
:class:`TrainingRow` per training they completed in the year.

Rules:

* **Unit.** The people whose ``unit`` equals ``unit`` (``"ALL"``: everyone). A completion
  counts for its person wherever the course came from (a PENDIS teacher who finished a
  national or a SETJEN course still learned those hours); completions of people outside the
  selection, or of NIPs not in the roster at all, are left out.
* **Year.** A completion belongs to the calendar year of its ``timecompleted`` (Unix seconds)
  in Asia/Jakarta (WIB, UTC+7 all year: Indonesia has no daylight saving time since 1964, so
  a fixed offset is exact and needs no tz database).
* **JP** is the JP recorded in the ledger with the completion (the catalogue's JP at pull
  time), summed per person. ``meets_minimum`` is ``jp >= jp_minimum`` (20 JP: UU 5/2014,
  PP 11/2017).
* **Training start** (SIASN ``start``): the enrolment's ``timestart`` when the bridge knows it,
  else the start of the catalogue window the completion falls in (or the latest window that
  began before it), else unknown. The end is the completion date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from moodle_bridge.gap_engine import GapPlan, Status
from moodle_bridge.mappings import CourseOffer, Mappings
from moodle_bridge.roster.person import Person
from moodle_bridge.store import EnrolmentRow, LedgerEntry

__all__ = [
    "ALL_UNITS",
    "DEFAULT_JP_MINIMUM",
    "DEFAULT_ORGANISER",
    "WIB",
    "GapCounts",
    "Ledger",
    "PersonYear",
    "TrainingRow",
    "build_ledger",
    "gap_counts",
    "local_date",
    "select_people",
    "year_bounds",
]

#: The unit code that selects everyone.
ALL_UNITS = "ALL"
#: JP each ASN has the right to per year (UU 5/2014, PP 11/2017).
DEFAULT_JP_MINIMUM = 20
#: The organiser written in the SIASN export unless the caller says otherwise.
DEFAULT_ORGANISER = "Kementerian Agama RI"
#: Asia/Jakarta: UTC+7 without daylight saving time.
WIB = dt.timezone(dt.timedelta(hours=7), "WIB")


def year_bounds(year: int) -> tuple[int, int]:
    """``[start, end)`` of ``year`` in Asia/Jakarta, as Unix seconds."""
    start = dt.datetime(year, 1, 1, tzinfo=WIB)
    end = dt.datetime(year + 1, 1, 1, tzinfo=WIB)
    return int(start.timestamp()), int(end.timestamp())


def local_date(timestamp: int) -> dt.date:
    """The day in Asia/Jakarta of a Unix time."""
    return dt.datetime.fromtimestamp(timestamp, WIB).date()


def select_people(people: Sequence[Person], unit: str) -> list[Person]:
    """The people of ``unit`` (``"ALL"``: everyone), in the given order, one per NIP."""
    seen: set[str] = set()
    out: list[Person] = []
    for person in people:
        if (unit == ALL_UNITS or person.unit == unit) and person.nip not in seen:
            seen.add(person.nip)
            out.append(person)
    return out


@dataclass(frozen=True, slots=True)
class PersonYear:
    """One row of the per-person table."""

    nip: str
    name: str
    unit: str
    satker: str
    #: JP of the trainings completed in the year.
    jp: int
    meets_minimum: bool
    #: Trainings completed in the year.
    trainings: int
    #: Open competency gaps (``None``: not known, no gap counts were given).
    open_gaps: int | None
    #: Enrolments the bridge made for the person (``None``: not known).
    enrolled: int | None


@dataclass(frozen=True, slots=True)
class TrainingRow:
    """One completed training, as SIASN's training history (riwayat pelatihan) wants it."""

    nip: str
    name: str
    #: The training's name (the course's full name, or its short name when unknown).
    training: str
    #: ``teknis``, ``manajerial``, ``sosial_kultural``, or ``""`` when the competency is unknown.
    kind: str
    start: dt.date | None
    end: dt.date
    jp: int
    organiser: str
    course: str
    competency: str
    unit: str
    satker: str


@dataclass(frozen=True, slots=True)
class Ledger:
    """The JP year of one unit: people (roster order) and trainings (by date, NIP, course)."""

    unit: str
    year: int
    jp_minimum: int
    people: tuple[PersonYear, ...]
    trainings: tuple[TrainingRow, ...]

    @property
    def headcount(self) -> int:
        return len(self.people)

    @property
    def meeting_minimum(self) -> int:
        """People with at least the minimum JP."""
        return sum(1 for p in self.people if p.meets_minimum)


def build_ledger(
    people: Sequence[Person],
    completions: Sequence[LedgerEntry],
    *,
    unit: str,
    year: int,
    mappings: Mapping[str, Mappings] | None = None,
    open_gaps: Mapping[str, int] | None = None,
    enrolled: Mapping[str, int] | None = None,
    enrolments: Mapping[tuple[str, str], EnrolmentRow] | None = None,
    course_names: Mapping[str, str] | None = None,
    organiser: str = DEFAULT_ORGANISER,
    jp_minimum: int = DEFAULT_JP_MINIMUM,
) -> Ledger:
    """The JP year of ``unit``: see the module's rules.

    ``mappings`` is unit -> :class:`Mappings` (the person's own unit is asked first, then the
    others, for a competency's kind and a course's window). ``open_gaps`` and ``enrolled`` are
    NIP -> count. ``enrolments`` is (NIP, course) -> :class:`EnrolmentRow` as the store returns
    them; when ``enrolled`` is not given it is counted from ``enrolments``.
    """
    chosen = select_people(people, unit)
    by_nip = {p.nip: p for p in chosen}
    start, end = year_bounds(year)
    names = course_names or {}
    context = _Context(mappings or {})
    if enrolled is None and enrolments is not None:
        counts: dict[str, int] = {}
        for nip, _course in enrolments:
            counts[nip] = counts.get(nip, 0) + 1
        enrolled = counts

    jp: dict[str, int] = {}
    done: dict[str, int] = {}
    rows: list[TrainingRow] = []
    for c in completions:
        person = by_nip.get(c.nip)
        if person is None or not start <= c.timecompleted < end:
            continue
        jp[c.nip] = jp.get(c.nip, 0) + c.jp
        done[c.nip] = done.get(c.nip, 0) + 1
        finished = local_date(c.timecompleted)
        enrolment = enrolments.get((c.nip, c.course)) if enrolments is not None else None
        begun: dt.date | None = None
        if enrolment is not None and enrolment.timestart > 0:
            begun = local_date(enrolment.timestart)
        if begun is None or begun > finished:
            begun = context.window_start(person.unit, c.course, finished)
        rows.append(
            TrainingRow(
                nip=c.nip,
                name=person.display_name,
                training=names.get(c.course, c.course),
                kind=context.kind(person.unit, c.competency),
                start=begun,
                end=finished,
                jp=c.jp,
                organiser=organiser,
                course=c.course,
                competency=c.competency,
                unit=person.unit,
                satker=person.satker,
            )
        )
    rows.sort(key=lambda r: (r.end, r.nip, r.course))
    table = tuple(
        PersonYear(
            nip=p.nip,
            name=p.display_name,
            unit=p.unit,
            satker=p.satker,
            jp=jp.get(p.nip, 0),
            meets_minimum=jp.get(p.nip, 0) >= jp_minimum,
            trainings=done.get(p.nip, 0),
            open_gaps=None if open_gaps is None else open_gaps.get(p.nip, 0),
            enrolled=None if enrolled is None else enrolled.get(p.nip, 0),
        )
        for p in chosen
    )
    return Ledger(unit, year, jp_minimum, table, tuple(rows))


@dataclass(frozen=True, slots=True)
class GapCounts:
    """Open competency gaps of a :class:`GapPlan`, per person and per competency."""

    #: NIP -> open gaps (people without one are left out).
    per_person: Mapping[str, int]
    #: Competency code -> people with an open gap in it.
    per_competency: Mapping[str, int]


def gap_counts(plan: GapPlan, unit: str = ALL_UNITS) -> GapCounts:
    """The open gaps of ``plan`` (of ``unit``'s people; ``"ALL"``: everyone).

    An open gap is a required competency whose (effective) level is below the standard, whatever
    the plan does about it: chosen, enrolled, waiting, capped, no course, window closed. A
    competency never assessed is not counted: its gap is unknown, not open.
    """
    people: dict[str, int] = {}
    competencies: dict[str, int] = {}
    for nip, person in plan.people.items():
        if unit != ALL_UNITS and person.unit != unit:
            continue
        for decision in person.gaps:
            if decision.status in (Status.NOT_ASSESSED, Status.NO_GAP):
                continue
            people[nip] = people.get(nip, 0) + 1
            competencies[decision.competency] = competencies.get(decision.competency, 0) + 1
    return GapCounts(people, competencies)


class _Context:
    """Looks up competency kinds and course windows, the person's unit first."""

    def __init__(self, mappings: Mapping[str, Mappings]) -> None:
        self._mappings = mappings
        self._kinds: dict[tuple[str, str], str] = {}
        self._offers: dict[tuple[str, str], tuple[CourseOffer, ...]] = {}

    def _order(self, unit: str) -> list[Mappings]:
        own = self._mappings.get(unit)
        rest = [m for key, m in sorted(self._mappings.items()) if key != unit]
        return ([own] if own is not None else []) + rest

    def kind(self, unit: str, competency: str) -> str:
        key = (unit, competency)
        found = self._kinds.get(key)
        if found is None:
            found = ""
            for m in self._order(unit):
                entry = m.competencies.get(competency)
                if entry is not None:
                    found = entry.kind
                    break
            self._kinds[key] = found
        return found

    def _courses(self, unit: str, course: str) -> tuple[CourseOffer, ...]:
        key = (unit, course)
        found = self._offers.get(key)
        if found is None:
            found = ()
            for m in self._order(unit):
                found = m.courses(course)
                if found:
                    break
            self._offers[key] = found
        return found

    def window_start(self, unit: str, course: str, finished: dt.date) -> dt.date | None:
        offers = self._courses(unit, course)
        if offers:
            for offer in offers:
                if offer.window_start is not None and offer.contains(finished):
                    return offer.window_start
            earlier = [
                o.window_start
                for o in offers
                if o.window_start is not None and o.window_start <= finished
            ]
            if earlier:
                return max(earlier)
        return None
