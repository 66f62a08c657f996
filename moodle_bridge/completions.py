"""Pull course completions from Moodle into the ledger, by custom report or person by person.

Two ways to learn about completions, and what each one sees:

* **The completion report** (Moodle's report builder, ``core_reportbuilder_retrieve_report``):
  a custom report on the *Course participants* datasource listing, per enrolment, the course,
  the user, *Completed* and *Time completed*, read page by page (about 1.4 s of Moodle time
  per 1,000 rows). It lists every enrolment row Moodle keeps, whatever the method and whether
  it is suspended or its window has closed, and its *Time completed* is Moodle's own, also for
  a completion written directly by an administrator. A condition "Time completed in the last N
  days" keeps each read small; the pull then trusts the report only for enrolments it checked
  (or that started) within those N days, and asks the others person by person.
* **Person by person** (sites without the report, and what the report cannot vouch for): one
  ``core_enrol_get_users_courses`` per person answers all of their active courses, and only a
  completed course costs a second call, ``core_completion_get_course_completion_status``, for
  the time (about 20 s of Moodle time per 1,000 pending enrolments). Moodle answers only about
  *active* enrolments: once a window's ``timeend`` has passed (or the enrolment is suspended)
  the course is no longer listed and the status call answers ``usernotenroled``, so this path
  must ask before the window closes (``closing_before``), and it cannot see a completion made
  after its last question.

Either way the ledger's key is (NIP, course): a completion found twice is recorded once, and
an entry once recorded is never changed.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from moodle_bridge import errors
from moodle_bridge.config import Settings
from moodle_bridge.mappings import CourseOffer
from moodle_bridge.moodle import completion as moodle_completion
from moodle_bridge.moodle import courses as moodle_courses
from moodle_bridge.moodle import enrol as moodle_enrol
from moodle_bridge.moodle import reportbuilder
from moodle_bridge.moodle.api import Caller, CountingCaller
from moodle_bridge.store import EnrolmentRow, LedgerEntry, Store
from moodle_bridge.sync.observe import bind_site
from moodle_bridge.workers import run_parallel

__all__ = [
    "DEFAULT_REPORT_NAME",
    "PARTICIPANTS_SOURCE",
    "SOURCE_PULL_TIME",
    "SOURCE_REPORT",
    "CompletionReport",
    "PullOptions",
    "PullProgress",
    "PullReport",
    "PullScope",
    "Reach",
    "ReportColumns",
    "ReportLookup",
    "completion_time",
    "find_completion_report",
    "fit_columns",
    "parse_completed",
    "parse_report_time",
    "pull_completions",
    "pull_options",
    "read_conditions",
]

#: ``progress(done, total)``: ``done`` more of ``total`` people were asked.
PullProgress = Callable[[int, int], None]

#: Source of a ledger entry whose time Moodle did not tell (a completion written directly,
#: e.g. by an administrator, read person by person): the pull's own time stands in.
SOURCE_PULL_TIME = "moodle:pull-time"
#: Source of a ledger entry read from the completion report: Moodle's completion time, to the
#: minute (the report shows no seconds).
SOURCE_REPORT = "moodle:report"

#: The datasource whose reports join courses, enrolments, users and course completions.
PARTICIPANTS_SOURCE = "core_course\\reportbuilder\\datasource\\participants"
#: The name the README gives the report; looked at first when none is configured.
DEFAULT_REPORT_NAME = "Bridge course completions"

#: Named state value: the last complete read of the report (id, name, rows, when). A targeted
#: pull compares its size with the people it would ask.
REPORT_STATE = "completions.report"
#: Failures of the report path carry this instead of a NIP.
REPORT_KEY = "report"

# Moodle time, from the contract README: a report row ~1.4 ms; a person with 4 courses ~50 ms.
_MS_PER_REPORT_ROW = 1.4
_MS_PER_PERSON = 50.0
#: A report read vouches for an enrolment only when it reaches this far before the enrolment's
#: last check or start: the read takes time, and the two clocks may differ.
_COVERAGE_MARGIN = 86_400

Key = tuple[str, str]


# --- options and report -------------------------------------------------------------------------
@dataclass(frozen=True)
class PullOptions:
    """Where, when and how hard a pull reads."""

    workers: int = 2
    #: The zone the report's dates are shown in: the site's (the bridge's user keeps the
    #: default "server timezone"; ``doctor`` checks it).
    timezone: str = "Asia/Jakarta"
    #: The completion report by id or name; None: the first one the bridge's user can see
    #: whose columns fit.
    report: int | str | None = None
    #: False: never read a report, always ask person by person.
    use_report: bool = True
    #: Report rows per call.
    perpage: int = 1000
    #: The pull's clock (Unix time); None: the system's when the pull starts.
    now: int | None = None
    #: The site the state must belong to, checked before anyone is asked; None: not checked.
    site_url: str | None = None


def pull_options(settings: Settings, *, workers: int | None = None) -> PullOptions:
    """The pull's options from the settings (``[completions]``, ``[moodle] workers`` and the
    ``[enrol] timezone``)."""
    return PullOptions(
        workers=settings.moodle.workers if workers is None else workers,
        timezone=settings.enrol.timezone,
        report=settings.completions.report,
        use_report=settings.completions.use_report,
        perpage=settings.completions.perpage,
    )


@dataclass
class PullReport:
    """What a pull did.

    ``path`` is "report", "per-person", "report+per-person" or "none" (nothing to ask).
    ``fallback`` says why the per-person path stood in for the report, ``notes`` what else the
    operator should know. ``failures`` are (NIP, reason), or (``"report"``, reason) for the
    report path; a report read that failed is completed by the next pull.
    """

    people_asked: int = 0
    enrolments_pending: int = 0
    #: Pending enrolments the per-person path could not ask about: their window has closed.
    skipped_closed: int = 0
    new_completions: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)
    stopped: str | None = None
    seconds: float = 0.0
    path: str = "none"
    #: The report read, as "name (id N)".
    report: str | None = None
    fallback: str | None = None
    notes: list[str] = field(default_factory=list)
    report_pages: int = 0
    report_rows: int = 0
    #: Report rows of people, courses or enrolments the bridge does not manage (or no longer
    #: waits for).
    rows_ignored: int = 0
    found_by_report: int = 0
    found_by_person: int = 0
    #: Found person by person without a time: the pull's time stands in.
    pull_time_entries: int = 0
    #: Pending enrolments the per-person path leaves alone: suspended, or not yet started.
    skipped_suspended: int = 0
    skipped_not_started: int = 0


# --- reading the report's cells -----------------------------------------------------------------
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan", "januari"),
            ("february", "feb", "februari", "peb"),
            ("march", "mar", "maret"),
            ("april", "apr"),
            ("may", "mei"),
            ("june", "jun", "juni"),
            ("july", "jul", "juli"),
            ("august", "aug", "agustus", "agu", "agt"),
            ("september", "sep", "sept"),
            ("october", "oct", "oktober", "okt"),
            ("november", "nov", "nopember"),
            ("december", "dec", "desember", "des"),
        ),
        start=1,
    )
    for name in names
}
_WEEKDAYS = {
    name: number
    for number, names in enumerate(
        (
            ("monday", "mon", "senin"),
            ("tuesday", "tue", "selasa"),
            ("wednesday", "wed", "rabu"),
            ("thursday", "thu", "kamis"),
            ("friday", "fri", "jumat", "jum'at"),
            ("saturday", "sat", "sabtu"),
            ("sunday", "sun", "minggu", "ahad"),
        )
    )
    for name in names
}
_CLOCK = (
    r"(?P<hour>\d{1,2})[:.](?P<minute>\d{2})(?:[:.](?P<second>\d{2}))?"
    r"(?:\s*(?P<ampm>[ap])\.?m\.?)?"
)
_TEXTUAL_DATE = re.compile(
    r"(?:(?P<weekday>[a-z']+),?\s+)?(?P<day>\d{1,2})\s+(?P<month>[a-z]+)\.?\s+(?P<year>\d{4}),?\s+"
    + _CLOCK
)
_NUMERIC_DATE = re.compile(
    r"(?P<day>\d{1,2})/(?P<month>\d{1,2})/(?P<year>\d{4}|\d{2}),?\s+" + _CLOCK
)
_ISO_DATE = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})[t\s](?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2}))?"
)


def parse_report_time(text: str, zone: ZoneInfo) -> int:
    """Unix time of a date as the report shows it, read in ``zone`` (the viewer's timezone).

    Accepted, case-insensitively, with any spacing (no-break spaces too):

    * Moodle's ``strftimedatetime``: "Friday, 27 November 2026, 8:02 PM" (the weekday may be
      left out; when given it must be the date's), English or Indonesian names ("Jumat,
      27 November 2026, 20.02"), month names in full or abbreviated, a 12-hour clock with
      AM/PM or a 24-hour one, ``:`` or ``.`` between hours and minutes, optional seconds;
    * ``strftimedatetimeshort``, day first: "27/11/26, 20:02" or "27/11/2026, 8:02 PM";
    * ISO 8601 without offset: "2026-11-27 20:02" or "2026-11-27T20:02:05".

    Raises ValueError for anything else, or for a date or time that does not exist.
    """
    cleaned = " ".join(text.replace("\u202f", " ").replace("\xa0", " ").split()).casefold()
    for pattern in (_TEXTUAL_DATE, _NUMERIC_DATE, _ISO_DATE):
        found = pattern.fullmatch(cleaned)
        if found is not None:
            return _timestamp(found.groupdict(), zone, text)
    msg = f"not a date the completion report shows: {text!r}"
    raise ValueError(msg)


def _timestamp(parts: dict[str, str | None], zone: ZoneInfo, text: str) -> int:
    month_text = parts["month"] or ""
    month = int(month_text) if month_text.isdigit() else _MONTHS.get(month_text, 0)
    year = int(parts["year"] or 0)
    year += 2000 if year < 100 else 0
    hour, minute = int(parts["hour"] or 0), int(parts["minute"] or 0)
    ampm = parts.get("ampm")
    if ampm is not None:
        if not 1 <= hour <= 12:
            msg = f"not a 12-hour time: {text!r}"
            raise ValueError(msg)
        hour = hour % 12 + (12 if ampm == "p" else 0)
    moment = dt.datetime(  # raises ValueError for 31 February, 25:00...
        year, month, int(parts["day"] or 0), hour, minute, int(parts["second"] or 0), tzinfo=zone
    )
    weekday = parts.get("weekday")
    if weekday is not None and _WEEKDAYS.get(weekday) != moment.weekday():
        msg = f"the weekday does not match the date: {text!r}"
        raise ValueError(msg)
    return int(moment.timestamp())


_YES = frozenset({"yes", "ya", "true", "1", "y"})
_NO = frozenset({"no", "tidak", "false", "0", "n", ""})


def parse_completed(text: str) -> bool | None:
    """Whether the *Completed* cell says completed: "Yes" (or "Ya"), "No" (or "Tidak"), or
    empty (no completion record yet); None for anything else."""
    value = " ".join(text.split()).casefold()
    if value in _YES:
        return True
    if value in _NO:
        return False
    return None


# --- finding the report -----------------------------------------------------------------------
@dataclass(frozen=True)
class ReportColumns:
    """Where the columns the pull reads are, by position in a row (None: not in the report)."""

    completed: int
    timecompleted: int
    course_shortname: int | None = None
    course_idnumber: int | None = None
    username: int | None = None
    user_idnumber: int | None = None


#: Column role -> the heading Moodle gives it (English; a renamed column matches by heading).
COLUMN_HEADINGS = {
    "course_shortname": "Course short name",
    "course_idnumber": "Course ID number",
    "username": "Username",
    "user_idnumber": "ID number",
    "completed": "Completed",
    "timecompleted": "Time completed",
}
#: What the pull needs, each satisfied by any one of its column roles.
_NEEDS = (
    ("course_shortname", "course_idnumber"),
    ("username", "user_idnumber"),
    ("completed",),
    ("timecompleted",),
)


def _heading(text: str) -> str:
    return " ".join(text.split()).casefold()


def fit_columns(headers: Sequence[str]) -> ReportColumns | list[str]:
    """The pull's columns among a report's ``headers``, or what is missing, named for people."""
    where: dict[str, int] = {}
    for index, header in enumerate(headers):
        for role, heading in COLUMN_HEADINGS.items():
            if _heading(header) == _heading(heading):
                where.setdefault(role, index)
    missing = [
        " or ".join(f'"{COLUMN_HEADINGS[role]}"' for role in roles)
        for roles in _NEEDS
        if not any(role in where for role in roles)
    ]
    if missing:
        return missing
    return ReportColumns(**where)


# core_reportbuilder filter operators the pull understands.
_TEXT_NOT_EMPTY = 8
_BOOLEAN_YES, _BOOLEAN_NO = 1, 2
_DATE_NOT_EMPTY, _DATE_RANGE, _DATE_LAST = 1, 3, 4
#: Seconds of the date filter's relative units, never more than the unit can be (a month is at
#: least 28 days), so the pull never believes the report reaches further back than it does.
_DATE_UNITS = {1: 86_400, 2: 7 * 86_400, 3: 28 * 86_400, 4: 365 * 86_400}
_TIME_CONDITION = "completion:timecompleted"
#: Conditions that cannot hide a completion the pull needs, and the operators allowed.
_HARMLESS = {
    "completion:completed": {0, _BOOLEAN_YES},
    "user:username": {0, _TEXT_NOT_EMPTY},
    "user:idnumber": {0, _TEXT_NOT_EMPTY},
    "course:shortname": {0, _TEXT_NOT_EMPTY},
    "course:idnumber": {0, _TEXT_NOT_EMPTY},
}


@dataclass(frozen=True)
class Reach:
    """How far back the report lists completions: everything (``lookback`` None, ``since``
    0), the last ``lookback`` seconds, or from ``since`` on."""

    since: int = 0
    lookback: int | None = None

    def start(self, now: int) -> int:
        """The earliest completion time the report lists at ``now``."""
        return max(self.since, now - self.lookback) if self.lookback is not None else self.since

    def describe(self) -> str:
        """The reach in words."""
        if self.lookback is not None:
            return f"completions of the last {self.lookback // 86_400} days"
        if self.since:
            day = dt.datetime.fromtimestamp(self.since, dt.UTC).date().isoformat()
            return f"completions since {day}"
        return "every completion"


def read_conditions(values: Mapping[str, Any]) -> tuple[Reach, list[str]]:
    """What a report's saved condition values mean for the pull: how far back it reaches, and
    the conditions that could hide a completion the pull needs (named for people)."""
    problems: list[str] = []
    reach = Reach()
    for key, raw in sorted(values.items()):
        if not key.endswith("_operator"):
            continue
        uid = key.removesuffix("_operator")
        operator = _int(raw)
        if uid == _TIME_CONDITION:
            reach, problem = _time_reach(values, operator)
            if problem:
                problems.append(problem)
        elif operator and operator not in _HARMLESS.get(uid, {0}):
            problems.append(
                f"condition {uid} (operator {operator}) may hide completions the bridge needs: "
                "remove it or set it to any value"
            )
    return reach, problems


def _int(raw: Any) -> int:
    try:
        return int(raw or 0)
    except (TypeError, ValueError):
        return -1


def _time_reach(values: Mapping[str, Any], operator: int) -> tuple[Reach, str | None]:
    if operator in (0, _DATE_NOT_EMPTY):
        return Reach(), None
    if operator == _DATE_LAST:
        amount = _int(values.get(f"{_TIME_CONDITION}_value", 1))
        unit = _DATE_UNITS.get(_int(values.get(f"{_TIME_CONDITION}_unit", 1)))
        if amount == 0:  # Moodle ignores "in the last 0 days"
            return Reach(), None
        if unit is not None and amount > 0:
            return Reach(lookback=amount * unit), None
    if operator == _DATE_RANGE and not _int(values.get(f"{_TIME_CONDITION}_to", 0)):
        return Reach(since=max(_int(values.get(f"{_TIME_CONDITION}_from", 0)), 0)), None
    return Reach(), (
        f"condition {_TIME_CONDITION} (operator {operator}) hides recent completions: use "
        '"in the last N days" (or no condition on the time)'
    )


@dataclass(frozen=True)
class CompletionReport:
    """A custom report the pull can read: which one, where its columns are, how far back."""

    id: int
    name: str
    columns: ReportColumns
    reach: Reach
    headers: tuple[str, ...]

    @property
    def label(self) -> str:
        """The report as people name it."""
        return f"{self.name} (id {self.id})"


@dataclass(frozen=True)
class ReportLookup:
    """The report found, or why there is none (``problem``; ``missing``: columns it lacks)."""

    report: CompletionReport | None
    problem: str | None = None
    missing: tuple[str, ...] = ()
    #: Reports looked at (ids and names), for doctor.
    looked_at: tuple[str, ...] = ()


# A report the bridge cannot use is not a reason to stop: the per-person path stands in. A
# site that does not answer, or a token Moodle refuses, is one.
_REPORT_UNUSABLE = (
    errors.RecordError,
    errors.AccessDenied,
    errors.FunctionNotFound,
    errors.MissingCapability,
)


def find_completion_report(caller: Caller, wanted: int | str | None = None) -> ReportLookup:
    """Find the completion report: ``wanted`` by id or name, else the first report on the
    *Course participants* datasource (``DEFAULT_REPORT_NAME`` first) the token's user can see
    whose columns and conditions fit.

    Costs one ``core_reportbuilder_list_reports`` call per 50 reports (none when ``wanted`` is
    an id) and one one-row ``core_reportbuilder_retrieve_report`` per report looked at. Raises
    Retriable when the site does not answer and Fatal for a token Moodle refuses; a report the
    bridge may not use (or report functions missing from the service) is a ``problem``.
    """
    try:
        candidates = _candidates(caller, wanted)
    except _REPORT_UNUSABLE as error:
        return ReportLookup(None, f"the custom reports cannot be listed: {error.message}")
    if isinstance(candidates, str):
        return ReportLookup(None, candidates)
    problems: list[str] = []
    missing: tuple[str, ...] = ()
    looked_at: list[str] = []
    for reportid, name in candidates:
        looked_at.append(f"{name} (id {reportid})" if name else f"id {reportid}")
        try:
            first = reportbuilder.retrieve_report(caller, reportid, page=0, perpage=1)
        except _REPORT_UNUSABLE as error:
            problems.append(f"report {looked_at[-1]}: {_access_problem(error)}")
            continue
        label = f"{first.details.name} (id {reportid})"
        columns = fit_columns(first.data.headers)
        if isinstance(columns, list):
            missing = missing or tuple(columns)
            problems.append(f"report {label} lacks the column(s) {', '.join(columns)}")
            continue
        reach, hiding = read_conditions(first.details.condition_values)
        if hiding:
            problems.append(f"report {label}: {'; '.join(hiding)}")
            continue
        return ReportLookup(
            CompletionReport(
                reportid, first.details.name, columns, reach, tuple(first.data.headers)
            ),
            looked_at=tuple(looked_at),
        )
    return ReportLookup(None, "; ".join(problems), missing, tuple(looked_at))


def _candidates(caller: Caller, wanted: int | str | None) -> list[tuple[int, str]] | str:
    """The reports to look at, as (id, name), or why there are none."""
    if isinstance(wanted, int):
        return [(wanted, "")]
    reports = reportbuilder.list_all_reports(caller)
    if wanted is not None:
        named = [(r.id, r.name) for r in reports if _heading(r.name) == _heading(wanted)]
        return named or (
            f'no custom report named "{wanted}" is shared with the bridge\'s user '
            f"(it can see {len(reports)} report(s))"
        )
    found = sorted(
        (r for r in reports if r.source == PARTICIPANTS_SOURCE),
        key=lambda r: (_heading(r.name) != _heading(DEFAULT_REPORT_NAME), r.id),
    )
    return [(r.id, r.name) for r in found] or (
        "no custom report on the Course participants datasource is shared with the bridge's user"
    )


def _access_problem(error: errors.MoodleError) -> str:
    if error.errorcode == "errorreportview":
        return "not shared with the bridge's user (add it to the report's audience)"
    if error.errorcode == "invalidrecord":
        return "no such report"
    return error.message


# --- the pull -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PullScope:
    """Which enrolments a pull asks about (None: no limit).

    ``units`` limits the pull to people of these units, ``only`` to these (NIP, course)
    enrolments, ``closing_before`` to enrolments whose window closes (``timeend``) at or before
    that Unix time: the nightly sync passes its next run's time so that the per-person path
    asks about every window before it closes.
    """

    units: set[str] | None = None
    only: Collection[Key] | None = None
    closing_before: int | None = None


def pull_completions(
    caller: Caller,
    store: Store,
    catalogue: Mapping[str, CourseOffer],
    scope: PullScope = PullScope(),
    *,
    options: PullOptions | None = None,
    progress: PullProgress | None = None,
) -> PullReport:
    """Find the completions of the enrolments the state knows, of every method, and add them
    to the ledger with the course's JP and competency from ``catalogue``, the enrolment's
    method and start, and Moodle's completion time.

    A full pull reads the completion report when there is one and asks person by person what
    the report cannot vouch for; a targeted one (``scope.only``, ``scope.closing_before``)
    reads the report only when the last read shows that is cheaper than asking the people.
    ``progress(n, total)`` hears of each ``n`` more people asked; ``options.now`` is the pull's
    clock (default: the system's). With ``options.site_url`` the state must belong to that site,
    checked before anyone is asked (SiteMismatch): its Moodle ids are other people on another
    site.

    Never raises for one person or one report page: their failure is reported, and what was
    read before it is recorded. A fatal error stops the pull and is reported in ``stopped``.
    """
    options = options or PullOptions()
    started = time.monotonic()
    counting = CountingCaller(caller)
    report = PullReport()
    now = options.now if options.now is not None else int(time.time())
    pull = _Pull(counting, store, catalogue, options, report, now, progress)
    try:
        if options.site_url is not None:
            bind_site(counting, store, options.site_url, record=False)
        pull.run(units=scope.units, only=scope.only, closing_before=scope.closing_before)
    except errors.Fatal as error:
        report.stopped = str(error)
    except errors.Retriable as error:
        report.stopped = f"the site did not answer: {error}"
    report.calls = counting.calls
    report.seconds = time.monotonic() - started
    return report


@dataclass(frozen=True)
class _Found:
    """A completion one path found: the enrolment, Moodle's time (or the pull's), the source."""

    key: Key
    when: int
    source: str


class _Pull:
    """One pull: the pending enrolments, the paths, and what they found."""

    def __init__(
        self,
        caller: Caller,
        store: Store,
        catalogue: Mapping[str, CourseOffer],
        options: PullOptions,
        report: PullReport,
        now: int,
        progress: PullProgress | None,
    ) -> None:
        self.caller = caller
        self.store = store
        self.catalogue = catalogue
        self.options = options
        self.report = report
        self.now = now
        self.progress = progress
        self.accounts = store.accounts()
        self.pending: dict[Key, EnrolmentRow] = {}
        self._lock = threading.Lock()

    # -- choosing --------------------------------------------------------------------------------
    def run(
        self, *, units: set[str] | None, only: Collection[Key] | None, closing_before: int | None
    ) -> None:
        done = {(c.nip, c.course) for c in self.store.completions()}
        for key, enrolment in self.store.enrolments().items():
            account = self.accounts.get(key[0])
            if (
                key in done
                or account is None
                or (units and account.unit not in units)
                or (only is not None and key not in only)
                or (closing_before is not None and not 0 < enrolment.timeend <= closing_before)
            ):
                continue
            self.pending[key] = enrolment
        self.report.enrolments_pending = len(self.pending)
        if not self.pending:
            return
        targeted = only is not None or closing_before is not None
        if not self.options.use_report:
            self.report.fallback = "reading a report is turned off ([completions] use_report)"
            self.ask_people(set(self.pending))
        elif targeted and not self._report_is_cheaper():
            self.report.notes.append(
                "a targeted pull: asking the people costs Moodle less than reading the report"
            )
            self.ask_people(set(self.pending))
        else:
            self._by_report()

    def _report_is_cheaper(self) -> bool:
        """Whether the last complete read of the report cost less than asking the people."""
        last = self.store.value(REPORT_STATE)
        if not isinstance(last, dict) or "rows" not in last:
            return False
        people = {nip for nip, _ in self._askable(set(self.pending))}
        return int(last["rows"]) * _MS_PER_REPORT_ROW < len(people) * _MS_PER_PERSON

    def _by_report(self) -> None:
        lookup = find_completion_report(self.caller, self.options.report)
        if lookup.report is None:
            self.report.fallback = (
                f"no usable completion report ({lookup.problem}): asking person by person"
            )
            self.ask_people(set(self.pending))
            return
        self.report.report = lookup.report.label
        unsure = self.read_report(lookup.report)
        if unsure is None:
            return
        if unsure:
            self.ask_people(unsure)
        self.report.path = "report+per-person" if self.report.people_asked else "report"

    # -- the report path -------------------------------------------------------------------------
    def read_report(self, found: CompletionReport) -> set[Key] | None:
        """Read every page; record what each page shows at once. Returns the pending
        enrolments the report cannot vouch for (to ask person by person), or None when the
        read did not finish (the next pull reads again)."""
        self.report.path = "report"
        read_at = self.now
        people = self._people_by(found.columns)
        courses = self._courses_by(found.columns)
        seen: set[Key] = set()
        unreadable: set[Key] = set()
        total: int | None = None
        try:
            for page in reportbuilder.iter_report_pages(
                self.caller, found.id, perpage=self.options.perpage
            ):
                if tuple(page.data.headers) != found.headers or total not in (
                    None,
                    page.data.totalrowcount,
                ):
                    msg = "the report changed while it was read"
                    raise _ReportChanged(msg)
                total = page.data.totalrowcount
                entries = []
                for cells in page.rows:
                    hit = self._read_row(cells, found.columns, people, courses, unreadable)
                    if hit is not None and hit.key not in seen:
                        seen.add(hit.key)
                        entries.append(hit)
                self._record(entries, by_report=True)
                self.report.report_pages += 1
                self.report.report_rows += len(page.rows)
        except (_ReportChanged, errors.RecordError, errors.Retriable) as error:
            reason = error.message if isinstance(error, errors.MoodleError) else str(error)
            self.report.failures.append(
                (
                    REPORT_KEY,
                    f"page {self.report.report_pages + 1} of report {found.label} could not "
                    f"be read ({reason}): the completions of the pages before it are recorded, "
                    "the next pull reads the report again",
                )
            )
            return None
        self.store.set_value(
            REPORT_STATE,
            {"id": found.id, "name": found.name, "rows": total or 0, "read_at": read_at},
        )
        return self._vouch(found.reach.start(read_at), seen, unreadable)

    def _vouch(self, reach_start: int, seen: set[Key], unreadable: set[Key]) -> set[Key]:
        """Mark checked the enrolments the complete read vouches for; return the others.

        The read vouches for an enrolment it did not list as completed when it reaches back
        (with a margin) to the enrolment's last check or, never checked, its start: a
        completion since then would be in it. An enrolment made by someone else may have been
        completed before the bridge knew of it, so only its own start counts.
        """
        checked = self.store.checked_at()
        vouched, unsure = [], set()
        for key, enrolment in self.pending.items():
            if key in seen:
                continue
            start = enrolment.timestart
            if enrolment.method != "other":
                start = start or enrolment.enrolled_at
            basis = max(checked.get(key, 0), start)
            if key not in unreadable and (
                reach_start == 0 or basis - _COVERAGE_MARGIN >= reach_start
            ):
                vouched.append(key)
            else:
                unsure.add(key)
        self.store.mark_checked(vouched, at=self.now)
        if unsure - unreadable:
            self.report.notes.append(
                f"{len(unsure - unreadable)} enrolment(s) started or were last checked before "
                "the report's time condition reaches: asked person by person"
            )
        return unsure

    def _read_row(
        self,
        cells: Sequence[str],
        columns: ReportColumns,
        people: Mapping[str, str],
        courses: Mapping[str, str],
        unreadable: set[Key],
    ) -> _Found | None:
        """The pending enrolment a row shows completed, if any; rows of anything else count as
        ignored, and an unreadable row of a pending enrolment is a failure (asked person by
        person instead)."""
        key = (
            people.get(_heading(_at(cells, _first(columns.username, columns.user_idnumber))), ""),
            courses.get(
                _heading(_at(cells, _first(columns.course_shortname, columns.course_idnumber))), ""
            ),
        )
        if key not in self.pending:
            self.report.rows_ignored += 1
            return None
        completed = parse_completed(_at(cells, columns.completed))
        if completed is False:
            return None
        try:
            if completed is None:
                msg = f"a Completed value the bridge cannot read: {_at(cells, columns.completed)!r}"
                raise ValueError(msg)
            when = parse_report_time(_at(cells, columns.timecompleted), self._zone)
        except ValueError as error:
            if key not in unreadable:
                unreadable.add(key)
                self.report.failures.append((key[0], f"{key[1]}: report row not read: {error}"))
            return None
        return _Found(key, when, SOURCE_REPORT)

    @property
    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.options.timezone)

    def _people_by(self, columns: ReportColumns) -> dict[str, str]:
        """The report's user value -> NIP: by username (unique in Moodle, as the bridge recorded
        it) when the report has it, else by idnumber (the NIP itself)."""
        if columns.username is not None:
            return {_heading(a.username): nip for nip, a in self.accounts.items()}
        return {_heading(nip): nip for nip in self.accounts}

    def _courses_by(self, columns: ReportColumns) -> dict[str, str]:
        """The report's course value -> shortname: the shortname itself, or the idnumbers of the
        courses the bridge knows (one call)."""
        shortnames = {course for _, course in self.pending}
        if columns.course_shortname is not None:
            return {_heading(name): name for name in shortnames}
        ids = self.store.courses()
        known = sorted(ids[name] for name in shortnames if name in ids)
        if not known:
            return {}
        found = moodle_courses.get_courses_by_field(self.caller, "ids", known)
        return {_heading(c.idnumber): c.shortname for c in found if c.idnumber}

    # -- the per-person path ---------------------------------------------------------------------
    def _askable(self, keys: set[Key]) -> list[Key]:
        """The enrolments Moodle can answer about now: active, and within their window."""
        return [key for key in sorted(keys) if _unaskable(self.pending[key], self.now) is None]

    def ask_people(self, keys: set[Key]) -> None:
        """Ask each person with an askable enrolment among ``keys`` about all of their courses."""
        if self.report.path == "none":
            self.report.path = "per-person"
        wanted: defaultdict[str, set[str]] = defaultdict(set)
        skipped: Counter[str] = Counter()
        for nip, course in sorted(keys):
            why = _unaskable(self.pending[(nip, course)], self.now)
            if why is None:
                wanted[nip].add(course)
            else:
                skipped[why] += 1
        self.report.skipped_suspended += skipped["suspended"]
        self.report.skipped_closed += skipped["closed"]
        self.report.skipped_not_started += skipped["not started"]
        if self.report.skipped_closed:
            self.report.notes.append(
                f"{self.report.skipped_closed} enrolment(s) past their window: Moodle no longer "
                "answers about them person by person (only a completion report sees them)"
            )

        def ask(nip: str) -> None:
            try:
                found, listed = self._ask(nip, wanted[nip])
            except (errors.RecordError, errors.Retriable) as error:
                with self._lock:
                    self.report.failures.append((nip, error.message))
                return
            # Recorded per person at once: an interrupted pull keeps what it learned.
            self._record(found, by_report=False)
            self.store.mark_checked(((nip, course) for course in listed), at=self.now)
            with self._lock:
                self.report.people_asked += 1
            if self.progress is not None:
                self.progress(1, len(wanted))

        run_parallel(sorted(wanted), ask, self.options.workers)

    def _ask(self, nip: str, courses: set[str]) -> tuple[list[_Found], set[str]]:
        """One person's completions among ``courses``, and which of them Moodle listed."""
        userid = self.accounts[nip].moodle_id
        found, listed = [], set()
        for course in moodle_enrol.get_users_courses(self.caller, userid, returnusercount=False):
            if course.shortname not in courses:
                continue
            listed.add(course.shortname)
            if course.completed:
                when = completion_time(self.caller, course.id, userid)
                source = "moodle" if when else SOURCE_PULL_TIME
                found.append(_Found((nip, course.shortname), when or int(time.time()), source))
        return found, listed

    # -- recording -------------------------------------------------------------------------------
    def _record(self, found: Sequence[_Found], *, by_report: bool) -> None:
        entries = [self._entry(hit) for hit in found]
        new = self.store.record_completions(entries)
        with self._lock:
            self.report.new_completions += new
            if by_report:
                self.report.found_by_report += len(found)
            else:
                self.report.found_by_person += len(found)
                self.report.pull_time_entries += sum(
                    1 for hit in found if hit.source == SOURCE_PULL_TIME
                )

    def _entry(self, hit: _Found) -> LedgerEntry:
        """The ledger entry of a completion: what the course was worth, how the person was
        enrolled and since when (the window's start, else when the enrolment was made)."""
        nip, course = hit.key
        enrolment = self.pending[hit.key]
        offer = self.catalogue.get(course)
        return LedgerEntry(
            nip,
            course,
            hit.when,
            offer.jp if offer else 0,
            offer.competency if offer else "",
            offer.to_level if offer else 0,
            hit.source,
            enrolment.method,
            enrolment.timestart or enrolment.enrolled_at,
        )


def _unaskable(enrolment: EnrolmentRow, now: int) -> str | None:
    """Why Moodle cannot answer about an enrolment person by person now, None when it can:
    ``core_enrol_get_users_courses`` lists only active enrolments within their window."""
    if enrolment.suspended:
        return "suspended"
    if enrolment.timeend and enrolment.timeend <= now:
        return "closed"
    if enrolment.timestart > now:
        return "not started"
    return None


class _ReportChanged(Exception):
    """The report's columns or row count changed between pages: the pages may have shifted."""


def _at(cells: Sequence[str], index: int) -> str:
    return cells[index] if 0 <= index < len(cells) else ""


def _first(preferred: int | None, other: int | None) -> int:
    """The column to read: ``preferred`` when the report has it (``fit_columns`` made sure one
    of the two is there)."""
    return preferred if preferred is not None else other if other is not None else -1


def completion_time(caller: Caller, courseid: int, userid: int) -> int | None:
    """When ``userid`` completed ``courseid``, as far as Moodle tells; None when it does not.

    Moodle reports the time only through the criteria: a completion written directly has none,
    and a course without criteria answers with an error (``nocriteriaset``) although
    ``core_enrol_get_users_courses`` says completed.
    """
    try:
        status = moodle_completion.get_course_completion_status(caller, courseid, userid)
    except errors.RecordError:
        return None
    return status.timecompleted
