"""Pull course completions from Moodle into the ledger, asking only about pending enrolments.

One ``core_enrol_get_users_courses`` call answers all of a person's courses (``completed`` per
course), so people are asked, not enrolments; only a course that says completed costs a second
call, ``core_completion_get_course_completion_status``, for the time. Enrolments already in the
ledger are never asked again, and enrolments whose window closed more than a grace period ago
are left alone.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from moodle_bridge import errors
from moodle_bridge.mappings import CourseOffer
from moodle_bridge.moodle import completion as moodle_completion
from moodle_bridge.moodle import enrol as moodle_enrol
from moodle_bridge.moodle.api import Caller, CountingCaller
from moodle_bridge.store import LedgerEntry, Store

#: ``progress(done)``: ``done`` more people were asked.
PullProgress = Callable[[int], None]

#: Source of a ledger entry whose time Moodle did not tell (a completion written directly,
#: e.g. by an administrator): the pull's own time stands in.
SOURCE_PULL_TIME = "moodle:pull-time"


@dataclass(frozen=True)
class PullOptions:
    """How far back and how hard a pull goes."""

    #: Keep asking about an enrolment this many days after its window closed.
    grace_days: int = 30
    workers: int = 2
    timezone: str = "Asia/Jakarta"


@dataclass
class PullReport:
    """What a pull did."""

    people_asked: int = 0
    enrolments_pending: int = 0
    skipped_closed: int = 0
    new_completions: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)
    stopped: str | None = None
    seconds: float = 0.0


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


def pull_completions(
    caller: Caller,
    store: Store,
    catalogue: Mapping[str, CourseOffer],
    *,
    as_of: dt.date,
    units: set[str] | None = None,
    only: Collection[tuple[str, str]] | None = None,
    options: PullOptions | None = None,
    progress: PullProgress | None = None,
) -> PullReport:
    """Ask Moodle about every pending enrolment the bridge made and record new completions.

    ``catalogue`` maps course shortnames to their catalogue row (JP, competency, target level,
    window). ``units`` limits the pull to people of these units, ``only`` to these
    (nip, course) enrolments. A suspended enrolment is not asked: Moodle no longer lists it,
    which is why a sync asks about an enrolment before it suspends it. Never raises for one person:
    their failure is reported; a fatal error stops the pull and is reported in ``stopped``.
    """
    options = options or PullOptions()
    started = time.monotonic()
    counting = CountingCaller(caller)
    report = PullReport()
    zone = ZoneInfo(options.timezone)
    accounts = store.accounts()
    done = {(c.nip, c.course) for c in store.completions()}
    horizon = dt.datetime.combine(
        as_of - dt.timedelta(days=options.grace_days), dt.time.min, zone
    ).timestamp()
    pending: defaultdict[str, set[str]] = defaultdict(set)
    for (nip, course), enrolment in store.enrolments().items():
        account = accounts.get(nip)
        if (
            (nip, course) in done
            or enrolment.suspended
            or account is None
            or (units and account.unit not in units)
            or (only is not None and (nip, course) not in only)
        ):
            continue
        if enrolment.timeend and enrolment.timeend < horizon:
            report.skipped_closed += 1
            continue
        pending[nip].add(course)
    report.enrolments_pending = sum(len(c) for c in pending.values())

    def ask(nip: str) -> list[LedgerEntry]:
        courses = moodle_enrol.get_users_courses(
            counting, accounts[nip].moodle_id, returnusercount=False
        )
        found = []
        for course in courses:
            if course.shortname not in pending[nip] or not course.completed:
                continue
            when = completion_time(counting, course.id, accounts[nip].moodle_id)
            offer = catalogue.get(course.shortname)
            found.append(
                LedgerEntry(
                    nip,
                    course.shortname,
                    when or int(time.time()),
                    offer.jp if offer else 0,
                    offer.competency if offer else "",
                    offer.to_level if offer else 0,
                    "moodle" if when else SOURCE_PULL_TIME,
                )
            )
        return found

    with ThreadPoolExecutor(max_workers=max(1, options.workers)) as pool:
        futures = {nip: pool.submit(ask, nip) for nip in sorted(pending)}
        for nip, future in futures.items():
            try:
                found = future.result()
            except errors.Fatal as error:
                report.stopped = str(error)
                for other in futures.values():
                    other.cancel()
                break
            except errors.MoodleError as error:
                report.failures.append((nip, error.message))
                continue
            # Recorded per person at once: an interrupted pull keeps what it learned.
            report.new_completions += store.record_completions(found)
            store.mark_checked((nip, course) for course in pending[nip])
            report.people_asked += 1
            if progress is not None:
                progress(1)
    report.calls = counting.calls
    report.seconds = time.monotonic() - started
    return report
