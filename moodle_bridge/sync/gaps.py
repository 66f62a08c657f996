"""From people, assessments and the mapping tables to wanted enrolments and gap cohorts."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from moodle_bridge.gap_engine import CompletedCourse, CurrentEnrolment, GapPlan, plan_gaps
from moodle_bridge.i18n import _
from moodle_bridge.mappings import CourseOffer, Mappings, load_mappings
from moodle_bridge.roster.assessment import LatestAssessments
from moodle_bridge.roster.person import Person, RowError
from moodle_bridge.store import EnrolmentRow, LedgerEntry
from moodle_bridge.sync.plan import Reason
from moodle_bridge.sync.planner import AUDIENCE_PREFIX, GAP_PREFIX, Audience, WantedEnrolment
from moodle_bridge.timeutil import day_end, day_start, local_date
from moodle_bridge.units import CohortSpec


class AssessmentReader(Protocol):
    """The unit-plugin hook that reads assessment files."""

    def latest_assessments(self, path: Path) -> tuple[LatestAssessments, list[RowError]]: ...


@dataclass(frozen=True)
class GapInputs:
    """Where the competency data comes from, for a run that manages enrolments."""

    assessments: Path
    mappings_dir: Path
    as_of: dt.date
    #: The site's timezone: enrolment windows open and close at its midnight.
    timezone: str = "Asia/Jakarta"


@dataclass
class GapState:
    """What a run with assessments wants besides accounts."""

    plan: GapPlan
    #: Manual enrolments wanted: (NIP, course) -> the enrolment and its window.
    wanted: dict[tuple[str, str], WantedEnrolment] = field(default_factory=dict)
    #: NIP -> the gap cohorts and audience cohorts the person belongs to.
    cohorts: dict[str, list[CohortSpec]] = field(default_factory=dict)
    #: Audience cohort idnumber -> the course (and window) its members are enrolled in by
    #: cohort sync: the catalogue rows in ``cohort`` mode.
    audience: dict[str, Audience] = field(default_factory=dict)
    #: The bridge's manual enrolments that may be suspended: the person's gap is closed.
    releasable: dict[tuple[str, str], Reason] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)


def gap_cohort(competency: str, level: int) -> str:
    """The idnumber of the cohort of people taking the step from ``level`` in ``competency``."""
    return f"{GAP_PREFIX}{competency}:{level}"


def audience_cohort(offer: CourseOffer) -> str:
    """The idnumber of a cohort-mode course window's audience: ``course:<SHORTNAME>`` or, for a
    windowed row, ``course:<SHORTNAME>:<window start YYYYMMDD>``. It only ever grows."""
    base = f"{AUDIENCE_PREFIX}{offer.course_shortname}"
    return f"{base}:{offer.window_start:%Y%m%d}" if offer.window_start else base


def _window(offer: CourseOffer, zone: ZoneInfo) -> tuple[int, int]:
    start = day_start(offer.window_start, zone) if offer.window_start else 0
    end = day_end(offer.window_end, zone) if offer.window_end else 0
    return start, end


def load_unit_mappings(folder: Path, units: Iterable[str]) -> dict[str, Mappings]:
    """Each unit's mapping tables; raises BrokenMappings (a ConfigError) for a broken one."""
    return {unit: load_mappings(folder, unit) for unit in sorted(set(units))}


def load_all_mappings(folder: Path) -> dict[str, Mappings]:
    """The mapping tables of every unit that has a standards file in ``folder``."""
    units = [path.stem for path in sorted((folder / "standards").glob("*.csv"))]
    return load_unit_mappings(folder, units)


def gap_state(
    people: Sequence[Person],
    reader: AssessmentReader,
    inputs: GapInputs,
    known: Mapping[tuple[str, str], EnrolmentRow],
    completed: Iterable[LedgerEntry] = (),
) -> GapState:
    """Plan every active person's courses and turn the plan into Moodle terms.

    ``known`` are the enrolments the bridge made: the active ones are current (they take
    seats and are kept while their gap is open) and those started this year count towards
    the annual cap. ``completed`` (the ledger) raises levels: the next plan neither enrols a
    person again nor skips their next step.
    """
    zone = ZoneInfo(inputs.timezone)
    units = {p.unit for p in people if p.active}
    # A unit with no tables at all gets no enrolments (and is reported); a unit whose tables
    # are broken stops the run, since planning from half a catalogue would be wrong.
    mapped = {u for u in units if (inputs.mappings_dir / "standards" / f"{u}.csv").exists()}
    mappings = load_unit_mappings(inputs.mappings_dir, mapped)
    assessments, errors = reader.latest_assessments(inputs.assessments)
    current, used = _history(known, inputs.as_of, zone)
    completions = [
        CompletedCourse(c.nip, c.course, local_date(c.timecompleted, zone)) for c in completed
    ]

    def planned(enrolments: list[CurrentEnrolment]) -> GapPlan:
        return plan_gaps(
            people,
            assessments,
            mappings,
            as_of=inputs.as_of,
            enrolments=enrolments,
            used_this_year=used,
            completions=completions,
        )

    plan = planned(current)
    # An enrolment the plan releases (its gap closed) still held a seat while planning: plan
    # again without it, so the freed seat goes to the waiting list in this run, not the next.
    wanted = {(e.nip, e.offer.course_shortname) for e in plan.desired_enrolments()}
    releasable = _releasable(plan, known, wanted)
    kept = [e for e in current if (e.nip, e.course_shortname) not in releasable]
    if len(kept) != len(current):
        plan = planned(kept)
    state = GapState(plan, errors=errors, releasable=releasable)
    state.errors.extend(_unmapped(units - mapped))
    _desired_in_moodle(state, mappings, zone)
    return state


def _history(
    known: Mapping[tuple[str, str], EnrolmentRow], as_of: dt.date, zone: ZoneInfo
) -> tuple[list[CurrentEnrolment], Counter[str]]:
    """The enrolments that hold seats now, and the trainings each person used this year."""

    def day(moment: int) -> dt.date | None:
        return local_date(moment, zone) if moment else None

    # An enrolment holds its seat in the window it was made for (its timestart; a course
    # without a window has none, then the day the bridge made it)...
    current = [
        CurrentEnrolment(e.nip, e.course, day(e.timestart or e.enrolled_at))
        for e in known.values()
        if not e.suspended
    ]
    # ...and counts against the cap of the year it was chosen in (the bridge made it) as well
    # as of the year its window opens, as the plan that chose it counted it: a training in
    # next year's window, chosen now, is part of this year's cap too.
    used = Counter(
        e.nip
        for e in known.values()
        if as_of.year in {d.year for d in (day(e.timestart), day(e.enrolled_at)) if d}
    )
    return current, used


def _unmapped(units: Iterable[str]) -> list[RowError]:
    return [
        RowError(
            source="mappings",
            row=0,
            column="unit",
            reason=_(
                "unit {unit} has no mapping tables (standards/{unit}.csv): its people get no "
                "enrolments"
            ).format(unit=unit),
        )
        for unit in sorted(units)
    ]


def _desired_in_moodle(state: GapState, mappings: Mapping[str, Mappings], zone: ZoneInfo) -> None:
    """The plan's enrolments as Moodle will see them: manual enrolments, and memberships of
    the gap cohorts and of the cohort-mode courses' audience cohorts."""
    names = {code: c.name for m in mappings.values() for code, c in m.competencies.items()}
    members: defaultdict[str, list[CohortSpec]] = defaultdict(list)
    for enrolment in state.plan.desired_enrolments():
        offer = enrolment.offer
        timestart, timeend = _window(offer, zone)
        if offer.mode == "cohort":
            idnumber = audience_cohort(offer)
            state.audience[idnumber] = Audience(
                offer.course_shortname, timestart, timeend, offer.competency, offer.from_level
            )
            members[enrolment.nip].append(
                CohortSpec(idnumber=idnumber, name=f"{offer.label()} ({offer.scope})")
            )
            continue
        state.wanted[(enrolment.nip, offer.course_shortname)] = WantedEnrolment(
            enrolment.nip,
            offer.course_shortname,
            timestart,
            timeend,
            Reason.of(
                "gap",
                competency=offer.competency,
                **{"from": offer.from_level, "to": offer.to_level},
            ),
        )
    for (competency, level), nips in state.plan.gap_cohorts().items():
        spec = CohortSpec(
            idnumber=gap_cohort(competency, level),
            name=f"{names.get(competency, competency)}: level {level} to {level + 1}",
        )
        for nip in nips:
            members[nip].append(spec)
    state.cohorts = dict(members)


def _releasable(
    plan: GapPlan,
    known: Mapping[tuple[str, str], EnrolmentRow],
    wanted: Collection[tuple[str, str]],
) -> dict[tuple[str, str], Reason]:
    """The bridge's active manual enrolments whose gap is closed: the person's level in the
    course's competency has reached the level the course leads to. An enrolment the plan no
    longer chose for any other reason (cap, capacity, a move, a changed catalogue) is left as
    it is: a learner is never locked out of a course in progress by a change of plan."""
    released: dict[tuple[str, str], Reason] = {}
    for key, row in known.items():
        if row.method != "manual" or row.suspended or key in wanted:
            continue
        person = plan.people.get(row.nip)
        mappings = plan.mappings.get(person.unit) if person is not None else None
        step = mappings.course_step(row.course) if mappings is not None else None
        if person is None or step is None or person.standard is None:
            continue
        levels = dict(
            zip(
                (r.competency for r in person.standard.requirements),
                person.levels,
                strict=False,
            )
        )
        level = levels.get(step.competency)
        if level is not None and level >= step.to_level:
            released[key] = Reason.of("gap_closed", competency=step.competency)
    return released
