"""The completion pull against the emulator over HTTP: by custom report and person by person.

Issues 11 and 13: the report is read page by page; rows of people, courses and enrolments the
bridge does not manage are ignored; a completion both paths see is recorded once; a page that
fails mid-pull records nothing beyond what was read and the next pull completes it; a report
without the needed columns is named by ``doctor`` and the pull falls back, saying so; every
enrolment method reaches the ledger with its method; a completion on the last day of a window
is in the ledger after the window closed.

Each test builds its own small world on the seeded site: NIP-named users made in bulk (some the
bridge's, some not), courses named ``AA-...`` (sorted before the seeded ones) with a
self-completion criterion, enrolments made with the admin token, and the state's account and
enrolment rows written through the store's API, as a sync would have.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import pytest

from moodle_bridge import errors
from moodle_bridge.completions import (
    REPORT_KEY,
    REPORT_STATE,
    SOURCE_PULL_TIME,
    SOURCE_REPORT,
    PullOptions,
    PullReport,
    PullScope,
    pull_completions,
)
from moodle_bridge.doctor import run_doctor
from moodle_bridge.emulator.completion import add_self_completion, learner_completes
from moodle_bridge.emulator.core import Reply
from moodle_bridge.emulator.reportbuilder import add_report
from moodle_bridge.mappings import CourseOffer
from moodle_bridge.moodle import completion as moodle_completion
from moodle_bridge.moodle import enrol as moodle_enrol
from moodle_bridge.moodle import reportbuilder
from moodle_bridge.moodle.client import MoodleClient, RetryPolicy
from moodle_bridge.store import Changes, EnrolmentRow, LedgerEntry, NewAccount, Store
from moodle_bridge.timeutil import day_end, day_start
from tests.e2e.conftest import Bridge, nip

ZONE = ZoneInfo("Asia/Jakarta")
UNIT = "PENDIS"
ONE, TWO, THREE = "AA-ONE", "AA-TWO", "AA-THREE"
COHORT_COURSE = "SOS-MODERASI-1"  # seeded: linked to cohort unit:PENDIS (id 2) by cohort sync
CATALOGUE = {
    name: CourseOffer("TEK-A", 1, 2, name, jp)
    for name, jp in ((ONE, 12), (TWO, 8), (THREE, 20), (COHORT_COURSE, 5))
}
RETRIEVE = "core_reportbuilder_retrieve_report"
LIST = "core_reportbuilder_list_reports"
USERS_COURSES = "core_enrol_get_users_courses"
STATUS = "core_completion_get_course_completion_status"
BRIDGE_USERID = 3
#: The columns and conditions the README asks for.
COLUMNS = ("course:shortname", "user:username", "completion:completed", "completion:timecompleted")
LAST_30_DAYS = {
    "completion:completed_operator": 1,
    "completion:timecompleted_operator": 4,
    "completion:timecompleted_value": 30,
    "completion:timecompleted_unit": 1,
}


def minute(day: dt.date, hour: int, minutes: int = 0) -> int:
    return int(dt.datetime.combine(day, dt.time(hour, minutes), ZONE).timestamp())


class Site:
    """The bridge's state and a client, on a seeded emulator with ten NIP-named users."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.emulator = bridge.emulator
        self.client = MoodleClient(bridge.url, bridge.token, retry=RetryPolicy(max_attempts=1))
        self.store = Store.open(bridge.tmp_path / "state.sqlite3")
        self.now = int(dt.datetime.now(ZONE).replace(second=0, microsecond=0).timestamp())
        self.today = dt.datetime.fromtimestamp(self.now, ZONE).date()
        self.emulator.run_setup(
            {
                "action": "create_users_bulk",
                "count": 10,
                "first": 0,
                "username_format": "198001012005011%03d",
                "firstname": "Pegawai",
                "lastname_format": "Nomor%03d",
                "email_format": "p%03d@kemenag.example",
                "timecreated": self.now - 400 * 86_400,
            }
        )
        by_name = {u["username"]: uid for uid, u in self.emulator.world.users.items()}
        self.userid = {i: by_name[nip(i)] for i in range(10)}
        self.course_id = bridge.create_courses([ONE, TWO, THREE])
        for courseid in self.course_id.values():
            add_self_completion(self.emulator, courseid)
        self.course_id[COHORT_COURSE] = next(
            cid for cid, c in self.emulator.world.courses.items() if c["shortname"] == COHORT_COURSE
        )

    def manage(self, *people: int) -> None:
        """The bridge owns these people's accounts."""
        self.store.record_accounts(
            NewAccount(nip(i), self.userid[i], nip(i), UNIT, None) for i in people
        )

    def enrol(
        self,
        i: int,
        course: str,
        *,
        timestart: int = 0,
        timeend: int = 0,
        method: str = "manual",
        known: bool = True,
    ) -> None:
        """Enrol person ``i`` with the admin token; ``known``: the state records it, with
        ``method``."""
        fields = {
            "enrolments[0][roleid]": "5",
            "enrolments[0][userid]": str(self.userid[i]),
            "enrolments[0][courseid]": str(self.course_id[course]),
        }
        if timestart:
            fields["enrolments[0][timestart]"] = str(timestart)
        if timeend:
            fields["enrolments[0][timeend]"] = str(timeend)
        self.bridge.admin_call("enrol_manual_enrol_users", fields)
        if known:
            self.know(i, course, timestart=timestart, timeend=timeend, method=method)

    def know(
        self, i: int, course: str, *, timestart: int = 0, timeend: int = 0, method: str = "manual"
    ) -> None:
        """Record an enrolment in the state, as the sync does."""
        run = self.store.begin_run("test", UNIT)
        batch = self.store.journal_batch(run, "enrol", {})
        row = EnrolmentRow(
            nip(i),
            course,
            False,
            timestart,
            timeend,
            method=method,  # type: ignore[arg-type]
        )
        self.store.confirm_batch(batch, changes=Changes(enrolments=[row]))
        self.store.finish_run(run, "ok")

    def learner_completes(self, i: int, course: str, when: int) -> None:
        """The learner meets the criteria at ``when``: Moodle knows the time everywhere."""
        learner_completes(self.emulator, self.userid[i], self.course_id[course], when)

    def admin_marks_completed(self, i: int, course: str, when: int) -> None:
        """Written directly: the status call cannot tell when, the report can."""
        self.emulator.run_setup(
            {
                "action": "mark_course_completed",
                "userid": self.userid[i],
                "courseid": self.course_id[course],
                "timecompleted": when,
            }
        )

    def at(self, moment: int) -> None:
        """Set the site's clock (and the pulls') to ``moment``."""
        self.now = moment
        self.emulator.clock = lambda: float(moment)

    def pull(self, **options: Any) -> PullReport:
        only = options.pop("only", None)
        closing_before = options.pop("closing_before", None)
        return pull_completions(
            self.client,
            self.store,
            CATALOGUE,
            PullScope(only=only, closing_before=closing_before),
            options=PullOptions(**options, now=self.now),
        )

    def ledger(self) -> dict[tuple[str, str], LedgerEntry]:
        return {(e.nip, e.course): e for e in self.store.completions()}

    def report_rows(self, reportid: int) -> list[list[str]]:
        page = reportbuilder.retrieve_report(self.client, reportid, page=0, perpage=0)
        return page.rows


@pytest.fixture
def site(bridge: Bridge) -> Iterator[Site]:
    site = Site(bridge)
    yield site
    site.store.close()
    site.client.close()


def ok(report: PullReport) -> PullReport:
    assert report.stopped is None, report
    assert report.failures == [], report.failures
    return report


# --- paging ---------------------------------------------------------------------------------------
def test_the_report_is_read_page_by_page_and_every_completion_recorded(site: Site) -> None:
    site.manage(*range(7))
    start = day_start(site.today - dt.timedelta(days=40), ZONE)
    times = {i: minute(site.today - dt.timedelta(days=i + 1), 9, 15) for i in range(5)}
    for i in range(7):
        site.enrol(i, ONE, timestart=start)
    for i, when in times.items():
        site.learner_completes(i, ONE, when)
    total = len(site.report_rows(1))

    report = ok(site.pull(perpage=3))

    assert report.path == "report"
    assert report.report == "Bridge course completions (id 1)"
    assert report.new_completions == 5 == report.found_by_report
    assert report.report_pages == math.ceil(total / 3)
    assert report.report_rows == total
    # One one-row look at the report's columns, then the pages; nobody asked one by one.
    assert report.calls == {LIST: 1, RETRIEVE: 1 + math.ceil(total / 3)}
    ledger = site.ledger()
    assert set(ledger) == {(nip(i), ONE) for i in times}
    for i, when in times.items():
        entry = ledger[(nip(i), ONE)]
        assert (entry.timecompleted, entry.source, entry.jp) == (when, SOURCE_REPORT, 12)
        assert (entry.method, entry.timestarted) == ("manual", start)
    # The two still at work were checked by the read (a report without a time condition
    # vouches for every enrolment it does not list as completed).
    checked = site.store.checked_at()
    assert checked[(nip(5), ONE)] == checked[(nip(6), ONE)] == site.now
    assert site.store.value(REPORT_STATE)["rows"] == total

    again = ok(site.pull(perpage=3))
    assert again.new_completions == 0
    assert again.enrolments_pending == 2
    assert site.ledger() == ledger


# --- what the bridge does not manage --------------------------------------------------------------
def test_rows_of_people_courses_and_enrolments_the_bridge_does_not_manage_are_ignored(
    site: Site,
) -> None:
    site.manage(0, 1)
    when = minute(site.today - dt.timedelta(days=2), 10)
    site.enrol(0, ONE)
    site.learner_completes(0, ONE, when)
    site.enrol(7, ONE, known=False)  # not the bridge's person
    site.learner_completes(7, ONE, when)
    site.enrol(0, TWO, known=False)  # the bridge's person, an enrolment it never chose
    site.learner_completes(0, TWO, when)
    site.enrol(1, THREE, known=False)  # a course the bridge does not know at all
    site.learner_completes(1, THREE, when)
    total = len(site.report_rows(1))

    report = ok(site.pull())

    assert set(site.ledger()) == {(nip(0), ONE)}
    assert report.new_completions == 1
    # Every row but the bridge's one pending enrolment (the seeded site's own people too).
    assert report.rows_ignored == total - 1
    assert report.report_rows == total


# --- both paths ---------------------------------------------------------------------------------
def test_a_completion_both_paths_see_in_one_pull_is_recorded_once_with_moodles_time(
    site: Site,
) -> None:
    reportid = add_report(
        site.emulator, "Recent completions", COLUMNS, conditions=LAST_30_DAYS,
        audience=[BRIDGE_USERID],
    )  # fmt: skip
    site.manage(0)
    # Both enrolments started 100 days ago and were never checked: a report of the last 30
    # days cannot vouch for them, so the person is asked too, and Moodle lists both completed.
    start = site.now - 100 * 86_400
    site.enrol(0, ONE, timestart=start, timeend=site.now + 30 * 86_400)
    site.enrol(0, TWO, timestart=start, timeend=site.now + 30 * 86_400)
    recent, old = site.now - 5 * 86_400, site.now - 60 * 86_400 + 17
    site.admin_marks_completed(0, ONE, recent)  # the status call could not tell this time
    site.learner_completes(0, TWO, old)  # too old for the report
    assert [row[0] for row in site.report_rows(reportid)] == [ONE]

    report = ok(site.pull(report="recent completions"))

    assert report.path == "report+per-person"
    assert report.report == f"Recent completions (id {reportid})"
    assert (report.found_by_report, report.found_by_person, report.new_completions) == (1, 1, 2)
    assert report.calls[USERS_COURSES] == 1
    assert report.calls[STATUS] == 1  # for TWO only: ONE was already found
    ledger = site.ledger()
    assert len(ledger) == 2
    one, two = ledger[(nip(0), ONE)], ledger[(nip(0), TWO)]
    assert (one.timecompleted, one.source) == (recent, SOURCE_REPORT)
    assert (two.timecompleted, two.source) == (old, "moodle")

    again = ok(site.pull(report="recent completions"))
    assert (again.enrolments_pending, again.new_completions, again.calls) == (0, 0, {})
    assert site.ledger() == ledger


def test_a_completion_pulled_person_by_person_is_not_counted_again_by_the_report(
    site: Site,
) -> None:
    site.manage(0, 1)
    site.enrol(0, ONE)
    site.enrol(1, ONE)
    site.admin_marks_completed(0, ONE, site.now - 3 * 86_400)
    first = ok(site.pull(use_report=False))
    assert first.path == "per-person"
    assert first.fallback == "reading a report is turned off ([completions] use_report)"
    before = site.ledger()
    assert before[(nip(0), ONE)].source == SOURCE_PULL_TIME
    site.learner_completes(1, ONE, site.now - 86_400)

    report = ok(site.pull())

    assert report.path == "report"
    assert report.new_completions == 1  # person 1 only
    after = site.ledger()
    assert after[(nip(0), ONE)] == before[(nip(0), ONE)]  # once, as first recorded
    assert after[(nip(1), ONE)].timecompleted == site.now - 86_400


# --- a page that fails ------------------------------------------------------------------------
def test_a_page_failing_mid_pull_records_only_what_was_read_and_the_next_pull_completes_it(
    site: Site,
) -> None:
    reportid = add_report(
        site.emulator,
        "Sorted completions",
        COLUMNS,
        conditions={"completion:completed_operator": 1},
        audience=[BRIDGE_USERID],
        sorted_by=("course:shortname", "user:username"),
    )
    site.manage(*range(6))
    for i in range(6):
        site.enrol(i, ONE)
        site.learner_completes(i, ONE, minute(site.today - dt.timedelta(days=1), 8, i))
    rows = site.report_rows(reportid)
    assert [row[1] for row in rows[:6]] == [nip(i) for i in range(6)]  # AA-ONE sorts first
    failing = {"page": "1"}
    serve = site.emulator.handle_form

    def database_down_on_the_second_page(body: str, query: str = "") -> Reply:
        fields = dict(parse_qsl(body, keep_blank_values=True))
        if fields.get("wsfunction") == RETRIEVE and fields.get("page") == failing.get("page"):
            answer = {
                "exception": "dml_connection_exception",
                "errorcode": "dbconnectionfailed",
                "message": "Database connection failed",
            }
            return Reply(200, "application/json", json.dumps(answer))
        return serve(body, query)

    site.emulator.handle_form = database_down_on_the_second_page  # type: ignore[method-assign]

    report = site.pull(report=reportid, perpage=2)

    assert report.stopped is None
    assert [key for key, _ in report.failures] == [REPORT_KEY]
    assert "page 2 of report Sorted completions" in report.failures[0][1]
    assert report.report_pages == 1
    # Only the first page's two completions: nothing the pull did not read.
    assert set(site.ledger()) == {(nip(0), ONE), (nip(1), ONE)}
    assert report.new_completions == 2
    # Nothing is taken as checked, no cursor moves, and nobody is asked one by one instead.
    assert set(site.store.checked_at().values()) == {0}
    assert site.store.value(REPORT_STATE) is None
    assert USERS_COURSES not in report.calls

    failing.clear()
    later = ok(site.pull(report=reportid, perpage=2))
    assert later.new_completions == 4
    assert set(site.ledger()) == {(nip(i), ONE) for i in range(6)}


# --- a report that does not fit ----------------------------------------------------------------
def test_a_report_without_the_needed_columns_is_named_by_doctor_and_the_pull_falls_back(
    site: Site,
) -> None:
    site.emulator.world.reports.clear()
    add_report(
        site.emulator,
        "Bridge course completions",
        ("course:shortname", "user:username", "completion:completed"),
        audience=[BRIDGE_USERID],
    )
    site.manage(0)
    site.enrol(0, ONE)
    when = site.now - 2 * 86_400
    site.learner_completes(0, ONE, when)

    doctor = run_doctor(site.client)
    check = next(c for c in doctor.checks if c.name == "completion report")
    assert not check.ok
    assert '"Time completed"' in check.detail
    assert "Course participants" in check.hint
    report = ok(site.pull())

    assert report.path == "per-person"
    assert report.fallback is not None
    assert "no usable completion report" in report.fallback
    assert '"Time completed"' in report.fallback
    assert report.calls[USERS_COURSES] == 1
    assert site.ledger()[(nip(0), ONE)].timecompleted == when


def test_doctor_passes_the_seeded_report_and_fails_a_report_read_in_another_timezone(
    site: Site,
) -> None:
    check = next(c for c in run_doctor(site.client).checks if c.name == "completion report")
    assert check.ok, check
    assert "Bridge course completions (id 1)" in check.detail
    assert "every completion" in check.detail
    site.emulator.world.users[BRIDGE_USERID]["timezone"] = "Asia/Makassar"
    check = next(c for c in run_doctor(site.client).checks if c.name == "completion report")
    assert not check.ok
    assert "Asia/Makassar" in check.detail


def test_a_site_without_any_report_passes_doctor_and_is_pulled_person_by_person(
    site: Site,
) -> None:
    site.emulator.world.reports.clear()
    check = next(c for c in run_doctor(site.client).checks if c.name == "completion report")
    assert check.ok
    assert "person by person" in check.detail
    site.manage(0)
    site.enrol(0, ONE)
    report = ok(site.pull())
    assert report.path == "per-person"
    assert report.fallback is not None
    assert "Course participants" in report.fallback


def test_the_cli_doctor_names_the_missing_columns(bridge: Bridge) -> None:
    bridge.emulator.world.reports.clear()
    add_report(bridge.emulator, "Completions", ("course:shortname", "completion:completed"),
               audience=[BRIDGE_USERID])  # fmt: skip
    run = bridge.invoke("doctor")
    assert run.exit_code == 4, run.output
    assert '"Username" or "ID number"' in run.output
    assert '"Time completed"' in run.output


# --- every method -----------------------------------------------------------------------------
@pytest.mark.parametrize("use_report", [True, False], ids=["report", "per-person"])
def test_cohort_and_other_enrolments_reach_the_ledger_with_their_method(
    site: Site, use_report: bool
) -> None:
    site.manage(0, 1)
    # Cohort sync: adding the member to the linked cohort enrols them at once.
    site.bridge.admin_call(
        "core_cohort_add_cohort_members",
        {
            "members[0][cohorttype][type]": "idnumber",
            "members[0][cohorttype][value]": "unit:PENDIS",
            "members[0][usertype][type]": "id",
            "members[0][usertype][value]": str(site.userid[0]),
        },
    )
    window = day_start(site.today - dt.timedelta(days=10), ZONE)
    site.know(0, COHORT_COURSE, timestart=window, method="cohort")
    site.enrol(1, ONE, method="other")  # an administrator enrolled them before the bridge would
    t0, t1 = minute(site.today, 0, 1), minute(site.today - dt.timedelta(days=1), 14, 30)
    site.learner_completes(0, COHORT_COURSE, t0)
    site.learner_completes(1, ONE, t1)

    report = ok(site.pull(use_report=use_report))

    assert report.new_completions == 2
    ledger = site.ledger()
    cohort, other = ledger[(nip(0), COHORT_COURSE)], ledger[(nip(1), ONE)]
    assert (cohort.method, cohort.timestarted, cohort.timecompleted, cohort.jp) == (
        "cohort",
        window,
        t0,
        5,
    )
    enrolled_at = site.store.enrolments()[(nip(1), ONE)].enrolled_at
    assert (other.method, other.timestarted, other.timecompleted) == ("other", enrolled_at, t1)
    assert {cohort.source, other.source} == ({SOURCE_REPORT} if use_report else {"moodle"})


# --- closed windows -----------------------------------------------------------------------------
def test_a_completion_on_the_last_day_of_a_window_is_in_the_ledger_after_it_closed(
    site: Site,
) -> None:
    last_day = site.today + dt.timedelta(days=3)
    opens, closes = day_start(last_day - dt.timedelta(days=30), ZONE), day_end(last_day, ZONE)
    site.manage(0, 1, 2)
    site.enrol(0, ONE, timestart=opens, timeend=closes)
    site.enrol(1, TWO, timestart=opens, timeend=closes)
    site.enrol(2, THREE, timestart=opens, timeend=closes + 60 * 86_400)
    nightly = minute(last_day, 1)

    # The last night's run, before the window closes: without a report, it asks about every
    # enrolment whose window closes before the next run (and only those).
    site.at(nightly)
    site.learner_completes(1, TWO, minute(last_day, 0, 30))
    before_close = ok(site.pull(use_report=False, closing_before=nightly + 86_400))
    assert before_close.people_asked == 2
    assert set(site.ledger()) == {(nip(1), TWO)}
    # The learner finishes in the evening of the window's last day.
    site.learner_completes(0, ONE, minute(last_day, 20, 2))

    site.at(nightly + 86_400)
    # Moodle no longer answers about the closed enrolment person by person.
    courses = moodle_enrol.get_users_courses(site.client, site.userid[0])
    assert ONE not in {c.shortname for c in courses}
    with pytest.raises(errors.RecordError, match="not enrolled"):
        moodle_completion.get_course_completion_status(
            site.client, site.course_id[ONE], site.userid[0]
        )
    blind = ok(site.pull(use_report=False))
    assert (blind.skipped_closed, blind.new_completions) == (1, 0)
    assert USERS_COURSES in blind.calls  # person 2 only, whose window is still open
    assert blind.people_asked == 1

    # The report still lists the finished course, with Moodle's time.
    seen = ok(site.pull())
    assert seen.path == "report"
    assert seen.new_completions == 1
    entry = site.ledger()[(nip(0), ONE)]
    assert (entry.timecompleted, entry.source, entry.timestarted) == (
        minute(last_day, 20, 2),
        SOURCE_REPORT,
        opens,
    )
    assert len(site.ledger()) == 2
