"""From people, assessments and the mapping tables to wanted enrolments and gap cohorts."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from moodle_bridge.gap_engine import CompletedCourse as Completion
from moodle_bridge.gap_engine import CurrentEnrolment, GapPlan, plan_gaps
from moodle_bridge.mappings import Mappings, load_mappings
from moodle_bridge.roster.assessment import Assessment
from moodle_bridge.roster.person import Person, RowError
from moodle_bridge.store import EnrolmentRow, LedgerEntry
from moodle_bridge.sync.planner import WantedEnrolment
from moodle_bridge.units import CohortSpec

#: Prefix of the gap cohorts' idnumbers: ``gap:<competency>:<starting level>``.
GAP_COHORT_PREFIX = "gap:"


class AssessmentReader(Protocol):
    """The unit-plugin hook that reads assessment files."""

    def read_assessments(self, path: Path) -> tuple[list[Assessment], list[RowError]]: ...


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
    wanted: dict[tuple[str, str], WantedEnrolment] = field(default_factory=dict)
    #: NIP -> the gap cohorts the person belongs to.
    cohorts: dict[str, list[CohortSpec]] = field(default_factory=dict)
    #: Gap cohort idnumber -> course shortname, for catalogue rows in ``cohort`` mode: Moodle
    #: enrols the cohort's members through cohort sync; the bridge only manages membership.
    cohort_courses: dict[str, str] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)


def gap_cohort(competency: str, level: int) -> str:
    """The idnumber of the cohort of people taking the step from ``level`` in ``competency``."""
    return f"{GAP_COHORT_PREFIX}{competency}:{level}"


def _epoch(day: dt.date | None, zone: ZoneInfo, *, end: bool) -> int:
    if day is None:
        return 0
    moment = dt.datetime.combine(day, dt.time.max if end else dt.time.min, zone)
    return int(moment.timestamp())


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
    assessments, errors = reader.read_assessments(inputs.assessments)

    def day(moment: int) -> dt.date | None:
        return dt.datetime.fromtimestamp(moment, zone).date() if moment else None

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
        if inputs.as_of.year in {d.year for d in (day(e.timestart), day(e.enrolled_at)) if d}
    )
    completions = [
        Completion(c.nip, c.course, dt.datetime.fromtimestamp(c.timecompleted, zone).date())
        for c in completed
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
    kept = [e for e in current if (e.nip, e.course_shortname) in wanted]
    if len(kept) != len(current):
        plan = planned(kept)
    state = GapState(plan, errors=errors)
    state.errors.extend(
        RowError(
            source="mappings",
            row=0,
            column="unit",
            reason=f"unit {unit} has no mapping tables (standards/{unit}.csv): its "
            "people get no enrolments",
        )
        for unit in sorted(units - mapped)
    )
    names = {code: c.name for m in mappings.values() for code, c in m.competencies.items()}
    members: defaultdict[str, list[CohortSpec]] = defaultdict(list)
    for enrolment in plan.desired_enrolments():
        offer = enrolment.offer
        if offer.mode == "cohort":
            idnumber = gap_cohort(offer.competency, offer.from_level)
            state.cohort_courses[idnumber] = offer.course_shortname
            continue
        state.wanted[(enrolment.nip, offer.course_shortname)] = WantedEnrolment(
            enrolment.nip,
            offer.course_shortname,
            _epoch(offer.window_start, zone, end=False),
            _epoch(offer.window_end, zone, end=True),
        )
    for (competency, level), nips in plan.gap_cohorts().items():
        spec = CohortSpec(
            idnumber=gap_cohort(competency, level),
            name=f"{names.get(competency, competency)}: level {level} to {level + 1}",
        )
        for nip in nips:
            members[nip].append(spec)
    state.cohorts = dict(members)
    return state
