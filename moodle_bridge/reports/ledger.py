"""JP queries over the completion ledger: who learned how many hours in a year, and what.

Pure: no files, no clock, no logging. :func:`build_ledger` takes the people, the ledger's
completions and a :class:`ReportInputs` (unit, year and the optional context: mappings, open
gaps, enrolments, course names) and returns a :class:`Ledger`: one :class:`PersonYear` per
person of the unit and one :class:`TrainingRow` per training they completed in the year.

Rules:

* **Unit.** The people whose ``unit`` equals ``unit`` (``"ALL"``: everyone). A completion
  counts for its person wherever the course came from (a PENDIS teacher who finished a
  national or a SETJEN course still learned those hours); completions of people outside the
  selection, or of NIPs not in the roster at all, are left out.
* **Year.** A completion belongs to the calendar year of its ``timecompleted`` (Unix seconds)
  in Asia/Jakarta (WIB, UTC+7 all year), converted by :mod:`moodle_bridge.timeutil` like every
  other local day of the bridge.
* **JP** is the JP recorded in the ledger with the completion (the catalogue's JP at pull
  time), summed per person. ``meets_minimum`` is ``jp >= jp_minimum`` (20 JP: UU 5/2014,
  PP 11/2017).
* **Training** (a SIASN row): its name is the course's full name as Moodle has it
  (``course_names``), else its short name. It ends on the completion day (Moodle's
  ``timecompleted``). It starts on the first of these that is known and not after the end:

  1. the ledger entry's ``timestarted`` (the start of the Moodle enrolment, as pulled);
  2. the enrolment window's start: the ``timestart`` the bridge gave the enrolment, else the
     catalogue window the completion falls in (or the latest window that began before it);
  3. the day the bridge made the enrolment (its ``enrolled_at``);
  4. the completion day itself (a course nobody recorded a start for), so that every row has
     a start, as SIASN requires.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from moodle_bridge import timeutil
from moodle_bridge.gap_engine import GapPlan
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
    "ReportInputs",
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
#: Asia/Jakarta: UTC+7 without daylight saving time (the name the dashboard shows), the zone of
#: the ledger's years and days; a fixed offset needs no tz database on the host.
WIB = dt.timezone(dt.timedelta(hours=7), "WIB")


def year_bounds(year: int) -> tuple[int, int]:
    """``[start, end)`` of ``year`` in Asia/Jakarta, as Unix seconds."""
    first, following = dt.date(year, 1, 1), dt.date(year + 1, 1, 1)
    return timeutil.day_start(first, WIB), timeutil.day_start(following, WIB)


def local_date(timestamp: int) -> dt.date:
    """The day in Asia/Jakarta of a Unix time."""
    return timeutil.local_date(timestamp, WIB)


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
class GapCounts:
    """Open competency gaps of a :class:`GapPlan`, per person and per competency."""

    #: NIP -> open gaps (people without one are left out).
    per_person: Mapping[str, int]
    #: Competency code -> people with an open gap in it.
    per_competency: Mapping[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportInputs:
    """What the reports of one unit and year are built from, besides the people and the ledger.

    Raises :class:`ValueError` for a year outside 1970-9998 or a JP minimum below 1.
    """

    #: A unit code, or :data:`ALL_UNITS` for everyone.
    unit: str
    year: int
    #: Unit -> mappings: competency names and kinds, course windows (the person's unit first).
    mappings: Mapping[str, Mappings] = field(default_factory=dict)
    #: Open gaps (``gap_counts(plan)``); ``None``: unknown, the table's column stays empty.
    gaps: GapCounts | None = None
    #: (NIP, course) -> the enrolments the bridge knows (``Store.enrolments()``): training
    #: starts and each person's enrolment count (``None``: unknown).
    enrolments: Mapping[tuple[str, str], EnrolmentRow] | None = None
    #: Course short name -> full name (``Store.course_names()``).
    course_names: Mapping[str, str] | None = None
    organiser: str = DEFAULT_ORGANISER
    jp_minimum: int = DEFAULT_JP_MINIMUM
    csv_delimiter: str = ","
    #: The time printed on the dashboard (``None``: now).
    generated: dt.datetime | None = None

    def __post_init__(self) -> None:
        if not 1970 <= self.year <= 9998:
            msg = f"the year {self.year} is out of range"
            raise ValueError(msg)
        if self.jp_minimum < 1:
            msg = f"the JP minimum must be 1 or more, not {self.jp_minimum}"
            raise ValueError(msg)


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
    start: dt.date
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
    people: Sequence[Person], completions: Sequence[LedgerEntry], inputs: ReportInputs
) -> Ledger:
    """The JP year of ``inputs.unit``: see the module's rules."""
    chosen = select_people(people, inputs.unit)
    by_nip = {p.nip: p for p in chosen}
    start, end = year_bounds(inputs.year)
    lookups = _Lookups(inputs)
    jp: Counter[str] = Counter()
    rows: list[TrainingRow] = []
    for c in completions:
        person = by_nip.get(c.nip)
        if person is None or not start <= c.timecompleted < end:
            continue
        jp[c.nip] += c.jp
        rows.append(lookups.training(person, c))
    rows.sort(key=lambda r: (r.end, r.nip, r.course))
    done = Counter(r.nip for r in rows)
    enrolled = None if inputs.enrolments is None else Counter(nip for nip, _ in inputs.enrolments)
    open_gaps = None if inputs.gaps is None else inputs.gaps.per_person
    table = tuple(
        PersonYear(
            nip=p.nip,
            name=p.display_name,
            unit=p.unit,
            satker=p.satker,
            jp=jp[p.nip],
            meets_minimum=jp[p.nip] >= inputs.jp_minimum,
            trainings=done[p.nip],
            open_gaps=None if open_gaps is None else open_gaps.get(p.nip, 0),
            enrolled=None if enrolled is None else enrolled[p.nip],
        )
        for p in chosen
    )
    return Ledger(inputs.unit, inputs.year, inputs.jp_minimum, table, tuple(rows))


def gap_counts(plan: GapPlan, unit: str = ALL_UNITS) -> GapCounts:
    """The open gaps of ``plan`` (of ``unit``'s people; ``"ALL"``: everyone).

    An open gap is a required competency whose (effective) level is below the standard, whatever
    the plan does about it: chosen, enrolled, waiting, capped, no course, window closed. A
    competency never assessed is not counted: its gap is unknown, not open.
    """
    people: dict[str, int] = {}
    competencies: Counter[str] = Counter()
    for nip, person in plan.people.items():
        if unit != ALL_UNITS and person.unit != unit:
            continue
        found = person.open_gaps()
        if found:
            people[nip] = len(found)
            competencies.update(found)
    return GapCounts(people, dict(competencies))


class _Lookups:
    """Names, kinds, windows and enrolments for the training rows, the person's unit first."""

    def __init__(self, inputs: ReportInputs) -> None:
        self._inputs = inputs
        self._names = inputs.course_names or {}
        self._enrolments = inputs.enrolments or {}
        self._kinds: dict[tuple[str, str], str] = {}
        self._offers: dict[tuple[str, str], tuple[CourseOffer, ...]] = {}

    def training(self, person: Person, c: LedgerEntry) -> TrainingRow:
        """The SIASN row of ``person``'s completion ``c``."""
        finished = local_date(c.timecompleted)
        return TrainingRow(
            nip=c.nip,
            name=person.display_name,
            training=self._names.get(c.course) or c.course,
            kind=self.kind(person.unit, c.competency),
            start=self.start(person.unit, c, finished),
            end=finished,
            jp=c.jp,
            organiser=self._inputs.organiser,
            course=c.course,
            competency=c.competency,
            unit=person.unit,
            satker=person.satker,
        )

    def start(self, unit: str, c: LedgerEntry, finished: dt.date) -> dt.date:
        """The training's start: the first rule of the module's list that gives a day."""
        enrolment = self._enrolments.get((c.nip, c.course))
        for moment in (c.timestarted, enrolment.timestart if enrolment is not None else 0):
            if moment > 0 and (day := local_date(moment)) <= finished:
                return day
        window = self._window_start(unit, c.course, finished)
        if window is not None:
            return window
        if enrolment is not None and enrolment.enrolled_at > 0:
            made = local_date(enrolment.enrolled_at)
            if made <= finished:
                return made
        return finished

    def kind(self, unit: str, competency: str) -> str:
        """The competency's kind in the first mappings that define it, else ``""``."""
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

    def _order(self, unit: str) -> list[Mappings]:
        mappings = self._inputs.mappings
        own = mappings.get(unit)
        rest = [m for key, m in sorted(mappings.items()) if key != unit]
        return ([own] if own is not None else []) + rest

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

    def _window_start(self, unit: str, course: str, finished: dt.date) -> dt.date | None:
        offers = self._courses(unit, course)
        for offer in offers:
            if offer.window_start is not None and offer.contains(finished):
                return offer.window_start
        earlier = [
            o.window_start
            for o in offers
            if o.window_start is not None and o.window_start <= finished
        ]
        return max(earlier) if earlier else None
