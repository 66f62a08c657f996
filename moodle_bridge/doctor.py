"""Check that a Moodle site and token can do everything the bridge needs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from moodle_bridge import errors
from moodle_bridge.completions import find_completion_report
from moodle_bridge.moodle import courses, site, users
from moodle_bridge.moodle.api import Caller
from moodle_bridge.sync.observe import PROBE_COHORT, probe_cohort_sync

#: Every web-service function the bridge calls; the token's service must include them all.
BRIDGE_FUNCTIONS: tuple[str, ...] = (
    "core_webservice_get_site_info",
    "core_user_create_users",
    "core_user_update_users",
    "core_user_get_users_by_field",
    "core_cohort_create_cohorts",
    "core_cohort_search_cohorts",
    "core_cohort_add_cohort_members",
    "core_cohort_delete_cohort_members",
    "core_cohort_get_cohort_members",
    "core_course_get_courses_by_field",
    "enrol_manual_enrol_users",
    "core_enrol_get_enrolled_users",
    "core_enrol_get_users_courses",
    "core_completion_get_course_completion_status",
)

#: The functions of the completion report; without them completions are pulled person by person.
REPORT_FUNCTIONS: tuple[str, ...] = (
    "core_reportbuilder_list_reports",
    "core_reportbuilder_retrieve_report",
)

REPORT_HINT = (
    "create it in Site administration > Reports > Report builder > Custom reports > New report: "
    'name "Bridge course completions", report source "Course participants", default setup off; '
    "columns Course: Course short name, User: Username, Course completion: Completed and "
    "Time completed; conditions Course completion: Completed = Yes and Time completed "
    '"In the last" 30 days; audience "Manually added users": the bridge\'s user (see the '
    "README, The Moodle side)"
)

PROBE_HINT = (
    "set Site administration > Plugins > Enrolments > Cohort sync > External unenrol action to "
    "'Disable course enrolment and remove roles', create a course for the probe, link the "
    f"cohort {PROBE_COHORT} to it (Enrolment methods > Cohort sync; the bridge creates the "
    "cohort on its first probe) and name the course in [cohorts] probe_course"
)

SERVICE_HINT = (
    "add it in Site administration > Server > Web services > External services > "
    "(the bridge's service) > Functions"
)


@dataclass(frozen=True)
class Check:
    """One thing doctor looked at."""

    name: str
    ok: bool
    detail: str
    hint: str = ""


@dataclass
class DoctorReport:
    """What doctor found; ``ok`` only when every check passed."""

    checks: list[Check] = field(default_factory=list)
    sitename: str | None = None
    release: str | None = None

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return all(check.ok for check in self.checks)


def _connection_check(error: errors.MoodleError) -> Check:
    if isinstance(error, errors.InvalidToken):
        return Check(
            "token",
            False,
            f"Moodle refused the token: {error.message}",
            "create a token for the bridge's user in Site administration > Server > "
            "Web services > Manage tokens, and set MOODLE_BRIDGE_TOKEN",
        )
    if isinstance(error, errors.NetworkError):
        return Check(
            "connection",
            False,
            f"Moodle is unreachable: {error.message}",
            "check the URL (MOODLE_BRIDGE_URL), DNS, firewall and proxy",
        )
    if isinstance(error, errors.ServerError):
        return Check(
            "connection",
            False,
            f"the site did not answer as Moodle: {error.message}",
            "is the site in maintenance mode, or is a proxy answering instead?",
        )
    if isinstance(error, errors.AccessDenied | errors.FunctionNotFound):
        return Check(
            "functions",
            False,
            f"core_webservice_get_site_info is not available: {error.message}",
            SERVICE_HINT,
        )
    return Check(
        "connection",
        False,
        f"{type(error).__name__}: {error}",
        "see the message; check the URL and the web-service setup",
    )


def run_doctor(
    caller: Caller,
    catalogue: Sequence[str] = (),
    *,
    completion_report: int | str | None = None,
    use_report: bool = True,
    timezone: str = "Asia/Jakarta",
    probe_course: str | None = None,
) -> DoctorReport:
    """Check the site, the token, the service's functions and user lookups, that every
    course of the ``catalogue`` (shortnames) exists in Moodle, (unless ``use_report`` is
    off) the completion report: ``completion_report`` by id or name, else the one the pull
    would find, with its dates shown in ``timezone``; and what the site's cohort sync does on
    removal, with the probe course ``probe_course`` (see ``[cohorts] probe_course``)."""
    report = DoctorReport()
    try:
        info = site.get_site_info(caller)
    except errors.MoodleError as error:
        report.checks.append(_connection_check(error))
        return report
    report.sitename, report.release = info.sitename, info.release
    report.checks.append(Check("token", True, f"valid for user {info.username} (id {info.userid})"))

    available = set(info.functions)
    missing = [name for name in BRIDGE_FUNCTIONS if name not in available]
    for name in missing:
        report.checks.append(
            Check(f"function {name}", False, f"{name} is not in the token's service", SERVICE_HINT)
        )
    if not missing:
        report.checks.append(
            Check("functions", True, f"all {len(BRIDGE_FUNCTIONS)} functions are available")
        )

    if "core_user_get_users_by_field" in available:
        report.checks.append(_user_lookup_check(caller, info.userid))
    if catalogue and "core_course_get_courses_by_field" in available:
        report.checks.append(_catalogue_check(caller, catalogue))
    if use_report:
        report.checks.append(
            _report_check(caller, info.userid, available, completion_report, timezone)
        )
    report.checks.append(_cohort_sync_check(caller, info.userid, probe_course))
    return report


def _cohort_sync_check(caller: Caller, userid: int, probe_course: str | None) -> Check:
    """What removing a member of a cohort linked to a course does on this site: the bridge
    removes people from its unit and gap cohorts only when it is proven to suspend."""
    name = "cohort sync removal"
    if probe_course is None:
        return Check(
            name,
            True,
            "not probed: the bridge holds every removal from its unit and gap cohorts "
            "(a removal could unenrol people from courses linked to them)",
            PROBE_HINT,
        )
    finding = probe_cohort_sync(caller, None, probe_course, userid)
    if finding.suspends:
        return Check(name, True, f"probed on {probe_course}: {finding.note}")
    return Check(name, False, f"probed on {probe_course}: {finding.note}", PROBE_HINT)


def _report_check(
    caller: Caller, userid: int, available: set[str], wanted: int | str | None, timezone: str
) -> Check:
    """The completion report: there, shared with the token's user, with the columns and
    conditions the pull needs, its dates in the bridge's timezone. A site without any is fine
    (the pull asks person by person); one that is named, or looks meant, but unfit is not."""
    absent = [name for name in REPORT_FUNCTIONS if name not in available]
    if absent:
        return Check(
            "completion report",
            wanted is None,
            f"{' and '.join(absent)} not in the token's service: completions are pulled "
            "person by person",
            SERVICE_HINT,
        )
    try:
        lookup = find_completion_report(caller, wanted)
    except errors.MoodleError as error:
        return Check("completion report", False, f"could not look at the reports: {error}", "")
    if lookup.report is None:
        meant = wanted is not None or bool(lookup.looked_at)
        detail = (
            f"no usable completion report: {lookup.problem}"
            if meant
            else f"{lookup.problem}: completions are pulled person by person (about 20 s of "
            "Moodle time per 1,000 pending enrolments, against about 1.4 s per 1,000 report "
            "rows); the README's Moodle-side section says how to create the report"
        )
        return Check("completion report", not meant, detail, REPORT_HINT)
    found = lookup.report
    zone = _viewer_timezone(caller, userid)
    if zone not in (None, "99", timezone):
        return Check(
            "completion report",
            False,
            f"report {found.label} shows dates in the bridge user's timezone {zone}, but the "
            f"bridge reads them in {timezone}",
            "set the bridge's user's timezone to the server timezone (Edit profile > "
            "Timezone), or [enrol] timezone to the site's",
        )
    return Check(
        "completion report",
        True,
        f"completions are read from report {found.label} ({found.reach.describe()})",
    )


def _viewer_timezone(caller: Caller, userid: int) -> str | None:
    """The token user's own timezone ("99": the server's); None when it cannot be read."""
    try:
        found = users.get_users_by_field(caller, "id", [str(userid)])
    except errors.MoodleError:
        return None
    return found[0].timezone if found else None


def _catalogue_check(caller: Caller, shortnames: Sequence[str]) -> Check:
    missing = [
        name
        for name in sorted(set(shortnames))
        if not courses.get_courses_by_field(caller, "shortname", name)
    ]
    if missing:
        shown = ", ".join(missing[:10]) + (
            f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        )
        return Check(
            "catalogue",
            False,
            f"{len(missing)} catalogue course(s) do not exist in Moodle: {shown}",
            "create them in Moodle (shortname as in the catalogue), or fix the "
            "shortname in mappings/catalogue/",
        )
    return Check("catalogue", True, f"all {len(set(shortnames))} catalogue courses exist")


#: Every Moodle install has the guest (1) and the first administrator (2) among its first ids.
PROBE_USER_IDS = range(1, 21)


def _user_lookup_check(caller: Caller, userid: int) -> Check:
    # Moodle returns a user only when the searched field is among the details the token may
    # see: without moodle/user:viewalldetails, lookups by username or idnumber (the bridge's
    # keys) answer [] as if nobody existed. Lookups by id still answer, without the username,
    # which is the tell. A user always sees their own record, so the probe asks for the
    # site's first accounts other than the token's user.
    probe = [str(i) for i in PROBE_USER_IDS if i != userid]
    try:
        found = users.get_users_by_field(caller, "id", probe)
    except errors.MoodleError as error:
        return Check(
            "user lookup",
            False,
            f"looking up users failed: {error}",
            "grant the bridge's role moodle/user:viewalldetails",
        )
    if not any(user.username for user in found):
        return Check(
            "user lookup",
            False,
            "looking up the site's first accounts returned nothing: user lookups are blind",
            "grant the bridge's role moodle/user:viewalldetails (and "
            "moodle/user:viewdetails) at system level",
        )
    return Check("user lookup", True, "user lookups see accounts")
