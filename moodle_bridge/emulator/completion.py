"""Emulated Moodle functions: activity and course completion (``core_completion``).

Also ``core_enrol_get_users_courses``, whose answer is mostly completion progress per course.
The state follows Moodle's tables: ``world.module_completions`` is course_modules_completion
keyed (cmid, userid), ``world.criteria_completions`` is course_completion_crit_compl keyed
(criteriaid, userid) and ``world.completions`` is course_completions keyed (courseid, userid),
with ``timecompleted`` None while a course is in progress.
"""

from __future__ import annotations

from typing import Any

from moodle_bridge.emulator.core import Call, Emulator, nopermissions, setup_action, ws_function
from moodle_bridge.emulator.enrol import (
    can_access_course,
    enrolled_userids,
    get_course,
    get_user,
    has_course_capability,
    is_enrolled,
    require_course_login,
    user_courses,
)
from moodle_bridge.emulator.external import ExternalError
from moodle_bridge.emulator.users import format_string
from moodle_bridge.emulator.world import Row, World

COMPLETION_INCOMPLETE = 0
COMPLETION_COMPLETE = 1
COMPLETION_COMPLETE_PASS = 2
COMPLETION_COMPLETE_FAIL = 3

COMPLETION_TRACKING_NONE = 0
COMPLETION_TRACKING_MANUAL = 1
COMPLETION_TRACKING_AUTOMATIC = 2

COMPLETION_CRITERIA_TYPE_SELF = 1
COMPLETION_CRITERIA_TYPE_ACTIVITY = 4
COMPLETION_CRITERIA_TYPE_ROLE = 7
COMPLETION_CRITERIA_TYPE_COURSE = 8
#: Criteria types aggregated as a group (with their own ALL/ANY) before the overall method.
GROUPED_CRITERIA_TYPES = (
    COMPLETION_CRITERIA_TYPE_ACTIVITY,
    COMPLETION_CRITERIA_TYPE_ROLE,
    COMPLETION_CRITERIA_TYPE_COURSE,
)

COMPLETION_AGGREGATION_ALL = 1
COMPLETION_AGGREGATION_ANY = 2

#: ``get_string('modulename', 'mod_x')`` of the standard activity modules.
MODULE_NAMES = {
    "assign": "Assignment",
    "book": "Book",
    "chat": "Chat",
    "choice": "Choice",
    "data": "Database",
    "feedback": "Feedback",
    "folder": "Folder",
    "forum": "Forum",
    "glossary": "Glossary",
    "h5pactivity": "H5P",
    "imscp": "IMS content package",
    "label": "Text and media area",
    "lesson": "Lesson",
    "lti": "External tool",
    "page": "Page",
    "quiz": "Quiz",
    "resource": "File",
    "scorm": "SCORM package",
    "survey": "Survey",
    "url": "URL",
    "wiki": "Wiki",
    "workshop": "Workshop",
    "bigbluebuttonbn": "BigBlueButton",
}
#: Modules without a view page (``cm_info::has_view()`` is false).
MODULES_WITHOUT_VIEW = frozenset({"label"})


# --- completion state ------------------------------------------------------------------------
def completion_enabled(world: World, course: Row) -> bool:
    """``completion_info::is_enabled()``: on for the site and for the course."""
    return str(world.settings.get("enablecompletion", "1")) == "1" and bool(
        course.get("enablecompletion")
    )


def activities(course: Row) -> list[Row]:
    """``completion_info::get_activities()``: course modules with completion, in course order."""
    return [
        cm
        for cm in course.get("course_modules", [])
        if cm.get("completion", COMPLETION_TRACKING_NONE) != COMPLETION_TRACKING_NONE
        and not cm.get("deletioninprogress")
    ]


def module_data(world: World, cm: Row, userid: int) -> Row:
    """``completion_info::get_data()``: the stored state, or Moodle's default for none."""
    stored = world.module_completions.get((cm["cmid"], userid))
    if stored is not None:
        return stored
    return {
        "coursemoduleid": cm["cmid"],
        "userid": userid,
        "completionstate": COMPLETION_INCOMPLETE,
        "viewed": 0,
        "overrideby": None,
        "timemodified": 0,
    }


def is_overall_complete(cm: Row, state: int) -> bool:
    """``cm_completion_details::is_overall_complete()``: whether a state counts as done.

    A failed grade still completes an activity unless it requires a passing grade.
    """
    if cm["completion"] == COMPLETION_TRACKING_MANUAL:
        return state == COMPLETION_COMPLETE
    done = {COMPLETION_COMPLETE, COMPLETION_COMPLETE_PASS}
    if not cm.get("completionpassgrade"):
        done.add(COMPLETION_COMPLETE_FAIL)
    return state in done


def is_tracked_user(world: World, course: Row, userid: int, now: int) -> bool:
    """``completion_info::is_tracked_user()``: actively enrolled and shown on reports."""
    return is_enrolled(
        world, course["id"], userid, now, capability="moodle/course:isincompletionreports"
    )


def is_course_complete(world: World, courseid: int, userid: int) -> bool:
    """``completion_info::is_course_complete()``: a course completion time is recorded."""
    row = world.completions.get((courseid, userid))
    return bool(row and row.get("timecompleted"))


def criteria(course: Row) -> list[Row]:
    """The course's completion criteria, as ``completion_info::get_criteria()`` orders them."""
    return sorted(course.get("completion_criteria", []), key=lambda c: (c["criteriatype"], c["id"]))


def aggregation_method(course: Row, criteriatype: int | None = None) -> int:
    """The ALL/ANY method of the course (``None``) or of a criteria type; ALL by default."""
    for row in course.get("completion_aggregation", []):
        if row.get("criteriatype") == criteriatype:
            return int(row["method"])
    return COMPLETION_AGGREGATION_ALL


def _aggregate(method: int, results: list[bool]) -> bool:
    if method == COMPLETION_AGGREGATION_ANY:
        return any(results)
    return all(results)


def _criteria_met(world: World, course: Row, userid: int) -> bool:
    """Whether a user's criteria completions satisfy the course's aggregation."""
    results: list[bool] = []
    grouped: dict[int, list[bool]] = {}
    for criterion in criteria(course):
        done = bool(
            (world.criteria_completions.get((criterion["id"], userid)) or {}).get("timecompleted")
        )
        if criterion["criteriatype"] in GROUPED_CRITERIA_TYPES:
            grouped.setdefault(criterion["criteriatype"], []).append(done)
        else:
            results.append(done)
    results += [
        _aggregate(aggregation_method(course, ctype), done) for ctype, done in grouped.items()
    ]
    return bool(results) and _aggregate(aggregation_method(course), results)


def course_progress(world: World, course: Row, userid: int, now: int) -> float | None:
    """``core_completion\\progress::get_course_progress_percentage()``."""
    if not completion_enabled(world, course) or not is_tracked_user(world, course, userid, now):
        return None
    if is_course_complete(world, course["id"], userid):
        return 100.0
    modules = activities(course)
    if not modules:
        return None
    done = sum(
        1
        for cm in modules
        if module_data(world, cm, userid)["completionstate"]
        not in (COMPLETION_INCOMPLETE, COMPLETION_COMPLETE_FAIL)
    )
    return done / len(modules) * 100


def _course_completion_row(world: World, courseid: int, userid: int) -> Row:
    row = world.completions.get((courseid, userid))
    if row is None:
        row = {
            "userid": userid,
            "courseid": courseid,
            "timecompleted": None,
            "timeenrolled": 0,
            "timestarted": 0,
        }
        world.completions[(courseid, userid)] = row
    return row


def mark_course_completed(world: World, userid: int, courseid: int, timecompleted: int) -> None:
    """``completion_completion::mark_complete()``: record the course as completed.

    The criteria are left as they are, so they may still say incomplete. A completion time,
    once written, never changes.
    """
    row = _course_completion_row(world, courseid, userid)
    if not row.get("timecompleted"):
        row["timecompleted"] = timecompleted


def mark_criteria_complete(
    world: World, course: Row, criterion: Row, userid: int, when: int
) -> None:
    """``completion_criteria_completion::mark_complete()``; the course is then in progress."""
    world.criteria_completions[(criterion["id"], userid)] = {
        "userid": userid,
        "course": course["id"],
        "criteriaid": criterion["id"],
        "timecompleted": when,
    }
    row = _course_completion_row(world, course["id"], userid)
    if not row.get("timestarted"):
        row["timestarted"] = when


def update_state(
    world: World,
    course: Row,
    cm: Row,
    userid: int,
    newstate: int,
    *,
    when: int,
    overrideby: int | None,
) -> None:
    """``completion_info::update_state()`` for a manual state or an override.

    A change to COMPLETE leaves COMPLETE_PASS/FAIL as they are; ``overrideby`` is the user
    overriding, recorded with the state.
    """
    if not completion_enabled(world, course) or not cm.get("completion"):
        return
    current = module_data(world, cm, userid)
    if newstate == current["completionstate"] or (
        newstate == COMPLETION_COMPLETE
        and current["completionstate"] in (COMPLETION_COMPLETE_PASS, COMPLETION_COMPLETE_FAIL)
    ):
        return
    if newstate not in (COMPLETION_COMPLETE, COMPLETION_INCOMPLETE):
        raise ExternalError(
            errorcode="err_system",
            message="An internal error occurred in the completion system. (System administrators "
            "can enable debugging information to see more detail.)",
            debuginfo=f"Unexpected manual completion state for {cm['cmid']}: {newstate}",
        )
    world.module_completions[(cm["cmid"], userid)] = {
        **current,
        "completionstate": newstate,
        "timemodified": when,
        "overrideby": overrideby,
    }
    # Outside bulk updates, internal_set_data() marks the activity criteria and aggregates at
    # once (mark_course_completions_activity_criteria): the course row appears in progress.
    _review_user(world, course, userid)


def _review_user(world: World, course: Row, userid: int) -> None:
    """Mark a user's completed activity criteria, then the course if the criteria are met.

    An activity criterion completes at the time its activity was completed; the course at the
    latest criteria completion time.
    """
    modules = {cm["cmid"]: cm for cm in course.get("course_modules", [])}
    for criterion in criteria(course):
        cm = modules.get(criterion.get("moduleinstance") or 0)
        if (
            criterion["criteriatype"] != COMPLETION_CRITERIA_TYPE_ACTIVITY
            or cm is None
            or (criterion["id"], userid) in world.criteria_completions
        ):
            continue
        data = module_data(world, cm, userid)
        if is_overall_complete(cm, data["completionstate"]):
            mark_criteria_complete(world, course, criterion, userid, data["timemodified"])
    if not is_course_complete(world, course["id"], userid) and _criteria_met(world, course, userid):
        times = [
            world.criteria_completions[(c["id"], userid)]["timecompleted"]
            for c in criteria(course)
            if (c["id"], userid) in world.criteria_completions
        ]
        mark_course_completed(world, userid, course["id"], max(times))


def run_completion_task(world: World, now: int) -> None:
    """``\\core\\task\\completion_regular_task``: aggregate every user with progress.

    Only users with activity or criteria completions can have met any criterion, so only they
    are reviewed, and only where they are tracked.
    """
    course_of_cm = {
        cm["cmid"]: course
        for course in world.courses.values()
        for cm in course.get("course_modules", [])
    }
    candidates = {
        (course_of_cm[cmid]["id"], userid)
        for cmid, userid in world.module_completions
        if cmid in course_of_cm
    }
    candidates |= {
        (row["course"], userid) for (_, userid), row in world.criteria_completions.items()
    }
    for courseid, userid in sorted(candidates):
        course = world.courses.get(courseid)
        if (
            course is not None
            and completion_enabled(world, course)
            and is_tracked_user(world, course, userid, now)
        ):
            _review_user(world, course, userid)


def _site_admin_id(world: World) -> int:
    return int(str(world.settings.get("siteadmins", "2")).split(",")[0])


# --- test hooks --------------------------------------------------------------------------------
@setup_action("mark_course_completed")
def _mark_course_completed_action(emulator: Emulator, action: dict[str, Any]) -> None:
    mark_course_completed(
        emulator.world, int(action["userid"]), int(action["courseid"]), int(action["timecompleted"])
    )


@setup_action("complete_criteria_and_aggregate")
def _complete_criteria_and_aggregate(emulator: Emulator, action: dict[str, Any]) -> None:
    """Complete every criterion as a learner would, then run the completion task."""
    world = emulator.world
    userid, when = int(action["userid"]), int(action["timecompleted"])
    course = get_course(world, int(action["courseid"]))
    modules = {cm["cmid"]: cm for cm in course.get("course_modules", [])}
    for criterion in criteria(course):
        if criterion["criteriatype"] == COMPLETION_CRITERIA_TYPE_ACTIVITY:
            cm = modules[criterion["moduleinstance"]]
            update_state(
                world,
                course,
                cm,
                userid,
                COMPLETION_COMPLETE,
                when=when,
                overrideby=_site_admin_id(world),
            )
        else:
            mark_criteria_complete(world, course, criterion, userid, when)
    run_completion_task(world, emulator.now())


# --- core_completion_get_course_completion_status ----------------------------------------------
def _criterion_details(call: Call, course: Row, criterion: Row) -> tuple[str, dict[str, str]]:
    """The title and ``get_details()`` of a criterion (self and activity completion)."""
    if criterion["criteriatype"] == COMPLETION_CRITERIA_TYPE_SELF:
        title = "Self completion"
        return title, {
            "type": title,
            "criteria": title,
            "requirement": "Marking yourself complete",
            "status": "",
        }
    title = "Activity completion"
    cm = next(
        m for m in course.get("course_modules", []) if m["cmid"] == criterion["moduleinstance"]
    )
    name = format_string(cm.get("name", ""))
    if cm["modname"] in MODULES_WITHOUT_VIEW:
        link = name
    else:
        url = f"{call.world.settings['wwwroot']}/mod/{cm['modname']}/view.php?id={cm['cmid']}"
        link = f'<a href="{url}">{name}</a>'
    requirement: list[str] = []
    if cm.get("completion") == COMPLETION_TRACKING_MANUAL:
        requirement.append("Marking yourself complete")
    elif cm.get("completion") == COMPLETION_TRACKING_AUTOMATIC:
        if cm.get("completionview"):
            modulename = MODULE_NAMES.get(cm["modname"], cm["modname"]).lower()
            requirement.append(f"Viewing the {modulename}")
        if cm.get("completiongradeitemnumber") is not None:
            requirement.append("Achieving grade")
        if cm.get("completionpassgrade"):
            requirement.append("Achieving passing grade")
    return title, {
        "type": title,
        "criteria": link,
        "requirement": ", ".join(requirement),
        "status": "",
    }


def can_view_completion(call: Call, userid: int, course: Row) -> bool:
    """``completion_can_view_data()``: completion on, and the caller's own data or the right."""
    if not completion_enabled(call.world, course):
        return False
    return (
        userid == call.userid
        or call.has_capability("moodle/user:viewuseractivitiesreport")
        or has_course_capability(call.world, call.userid, course["id"], "report/completion:view")
    )


@ws_function("core_completion_get_course_completion_status")
def core_completion_get_course_completion_status(call: Call) -> dict[str, Any]:
    """A user's course completion and the state of each criterion."""
    world = call.world
    course = get_course(world, call.params["courseid"])
    user = get_user(world, call.params["userid"])
    require_course_login(call, course)
    if not can_view_completion(call, user["id"], course):
        raise ExternalError(errorcode="cannotviewreport", message="You cannot view this report")
    if not is_tracked_user(world, course, user["id"], call.now):
        if user["id"] == call.userid:
            raise ExternalError(
                errorcode="notenroled", message="You are not enrolled in this course"
            )
        raise ExternalError(
            errorcode="usernotenroled", message="User is not enrolled in this course"
        )
    course_criteria = criteria(course)
    if not course_criteria:
        raise ExternalError(
            errorcode="nocriteriaset", message="No completion criteria set for this course"
        )
    rows = []
    for criterion in course_criteria:
        done = world.criteria_completions.get((criterion["id"], user["id"]))
        timecompleted = done.get("timecompleted") if done else None
        title, details = _criterion_details(call, course, criterion)
        rows.append(
            {
                "type": criterion["criteriatype"],
                "title": title,
                "status": "Yes" if timecompleted else "No",
                "complete": bool(timecompleted),
                "timecompleted": timecompleted,
                "details": details,
            }
        )
    return {
        "completionstatus": {
            "completed": is_course_complete(world, course["id"], user["id"]),
            "aggregation": aggregation_method(course),
            "completions": rows,
        },
        "warnings": [],
    }


# --- core_completion_get_activities_completion_status ------------------------------------------
def _rule_details(cm: Row, data: Row) -> list[dict[str, Any]]:
    """``cm_completion_details::get_details()`` for the view rule (automatic tracking only)."""
    if cm["completion"] != COMPLETION_TRACKING_AUTOMATIC or not cm.get("completionview"):
        return []
    if data.get("overrideby"):
        status = data["completionstate"]
    else:
        status = COMPLETION_COMPLETE if data.get("viewed") else COMPLETION_INCOMPLETE
    return [{"rulename": "completionview", "rulevalue": {"status": status, "description": "View"}}]


@ws_function("core_completion_get_activities_completion_status")
def core_completion_get_activities_completion_status(call: Call) -> dict[str, Any]:
    """The completion state of every activity with completion in a course, for one user."""
    world = call.world
    course = get_course(world, call.params["courseid"])
    user = get_user(world, call.params["userid"])
    require_course_login(call, course)
    if user["id"] != call.userid and not has_course_capability(
        world, call.userid, course["id"], "report/progress:view"
    ):
        raise nopermissions(capability_name="View activity completion reports")
    tracked = is_tracked_user(world, course, user["id"], call.now)
    statuses = []
    for cm in activities(course):
        if not cm.get("visible", 1) and not has_course_capability(
            world, call.userid, course["id"], "moodle/course:viewhiddenactivities"
        ):
            continue
        data = module_data(world, cm, user["id"])
        statuses.append(
            {
                "cmid": cm["cmid"],
                "modname": cm["modname"],
                "instance": cm["instance"],
                "state": data["completionstate"],
                "timecompleted": data["timemodified"],
                "tracking": cm["completion"],
                "overrideby": data.get("overrideby"),
                "valueused": False,
                "hascompletion": True,
                "isautomatic": cm["completion"] == COMPLETION_TRACKING_AUTOMATIC,
                "istrackeduser": tracked,
                "uservisible": True,
                "details": _rule_details(cm, data),
                "isoverallcomplete": is_overall_complete(cm, data["completionstate"]),
            }
        )
    return {"statuses": statuses, "warnings": []}


# --- core_completion_mark_course_self_completed --------------------------------------------------
@ws_function("core_completion_mark_course_self_completed")
def core_completion_mark_course_self_completed(call: Call) -> dict[str, Any]:
    """The caller marks the self-completion criterion of a course as done."""
    world = call.world
    course = get_course(world, call.params["courseid"])
    require_course_login(call, course)
    if not completion_enabled(world, course):
        raise ExternalError(errorcode="completionnotenabled", message="Completion is not enabled")
    if not is_tracked_user(world, course, call.userid, call.now):
        raise ExternalError(
            errorcode="nottracked",
            message="You are currently not being tracked by completion in this course",
        )
    criterion = next(
        (c for c in criteria(course) if c["criteriatype"] == COMPLETION_CRITERIA_TYPE_SELF), None
    )
    if criterion is None:
        raise ExternalError(
            errorcode="noselfcompletioncriteria",
            message="No self completion criteria set for this course",
        )
    if (world.criteria_completions.get((criterion["id"], call.userid)) or {}).get("timecompleted"):
        raise ExternalError(
            errorcode="useralreadymarkedcomplete", message="User already marked as complete"
        )
    mark_criteria_complete(world, course, criterion, call.userid, call.now)
    return {"status": True, "warnings": []}


# --- core_completion_override_activity_completion_status -----------------------------------------
@ws_function("core_completion_override_activity_completion_status")
def core_completion_override_activity_completion_status(call: Call) -> dict[str, Any]:
    """Set a user's completion state of an activity, as a teacher overriding it."""
    world = call.world
    cmid = call.params["cmid"]
    found = next(
        (
            (course, cm)
            for course in world.courses.values()
            for cm in course.get("course_modules", [])
            if cm["cmid"] == cmid
        ),
        None,
    )
    if found is None:
        raise ExternalError(
            errorcode="invalidcoursemodule",
            message="Invalid course module ID",
            exception="dml_missing_record_exception",
            debuginfo=f"SELECT id,course FROM {{course_modules}} WHERE id = ?\n"
            f"[array (\n  0 => {cmid},\n)]",
        )
    course, cm = found
    require_course_login(call, course)
    if not completion_enabled(world, course):
        raise ExternalError(errorcode="completionnotenabled", message="Completion is not enabled")
    userid = call.params["userid"]
    tracking = cm.get("completion", COMPLETION_TRACKING_NONE)
    if tracking and not has_course_capability(
        world, call.userid, course["id"], "moodle/course:overridecompletion"
    ):
        raise ExternalError(
            errorcode="nopermission",
            message="error/nopermission",
            exception="core\\exception\\required_capability_exception",
        )
    update_state(
        world, course, cm, userid, call.params["newstate"], when=call.now, overrideby=call.userid
    )
    data = module_data(world, cm, userid)
    return {
        "cmid": cm["cmid"],
        "userid": userid,
        "state": data["completionstate"],
        "timecompleted": data["timemodified"],
        "overrideby": data.get("overrideby"),
        "tracking": tracking,
    }


# --- core_enrol_get_users_courses ----------------------------------------------------------------
def _course_summary(call: Call, course: Row, userid: int, returnusercount: bool) -> dict[str, Any]:
    """One course as ``core_enrol_get_users_courses`` shows it; completion only to those allowed."""
    world = call.world
    completed: bool | None = None
    progress: float | None = None
    hascriteria = usertracked = False
    if can_view_completion(call, userid, course) and course.get("enablecompletion"):
        completed = is_course_complete(world, course["id"], userid)
        hascriteria = bool(course.get("completion_criteria"))
        usertracked = is_tracked_user(world, course, userid, call.now)
        progress = course_progress(world, course, userid, call.now)
    name = format_string(course["fullname"])
    summary: dict[str, Any] = {
        "id": course["id"],
        "shortname": format_string(course["shortname"]),
        "fullname": name,
        "displayname": name,
        "idnumber": course.get("idnumber", ""),
        "visible": course.get("visible", 1),
        "summary": course.get("summary") or "",
        "summaryformat": course.get("summaryformat", 1),
        "format": course.get("format", "topics"),
        "courseimage": f"{world.settings['wwwroot']}/pluginfile.php/{course['contextid']}"
        "/course/generated/course.svg",
        "showgrades": course.get("showgrades", 1),
        "lang": course.get("lang") or "",
        "enablecompletion": course.get("enablecompletion", 0),
        "completionhascriteria": hascriteria,
        "completionusertracked": usertracked,
        "category": course.get("categoryid"),
        "progress": progress,
        "completed": completed,
        "startdate": course.get("startdate", 0),
        "enddate": course.get("enddate", 0),
        "marker": course.get("marker", 0),
        "lastaccess": None,
        "isfavourite": False,
        "hidden": False,
        "overviewfiles": [],
        "showactivitydates": course.get("showactivitydates", 0),
        "showcompletionconditions": course.get("showcompletionconditions", 1),
        "timemodified": course.get("timemodified", 0),
    }
    if returnusercount:
        summary["enrolledusercount"] = len(enrolled_userids(world, course["id"], call.now))
    return summary


@ws_function("core_enrol_get_users_courses")
def core_enrol_get_users_courses(call: Call) -> list[dict[str, Any]]:
    """The courses a user is actively enrolled in, with completion progress.

    Courses the caller cannot enter are left out without a word, so a caller without rights
    gets an empty list.
    """
    world = call.world
    userid = call.params["userid"]
    result = []
    for course in user_courses(world, userid, call.now):
        if not can_access_course(call, course):
            continue
        # Another user's courses need the participants list and the user's profile.
        if userid != call.userid and not all(
            has_course_capability(world, call.userid, course["id"], capability)
            for capability in ("moodle/course:viewparticipants", "moodle/user:viewdetails")
        ):
            continue
        result.append(_course_summary(call, course, userid, call.params["returnusercount"]))
    return result


def add_self_completion(emulator: Emulator, courseid: int) -> None:
    """Give a course a self-completion criterion, as a teacher does in the course's completion
    settings (no web service can): test and demo hook."""
    world = emulator.world
    with emulator.lock:
        next_id = 1 + max(
            (
                c["id"]
                for course in world.courses.values()
                for c in course.get("completion_criteria", [])
            ),
            default=0,
        )
        course = world.courses[courseid]
        course["completion_criteria"] = [
            {
                "id": next_id,
                "criteriatype": COMPLETION_CRITERIA_TYPE_SELF,
                "module": None,
                "moduleinstance": None,
            }
        ]
        course["completion_aggregation"] = [{"criteriatype": None, "method": 1}]


def learner_completes(emulator: Emulator, userid: int, courseid: int, when: int) -> None:
    """A learner meets every criterion of a course at ``when`` and Moodle aggregates for that
    learner only (the site-wide cron of ``complete_criteria_and_aggregate`` is quadratic
    over a demo's thousands): test and demo hook."""
    world = emulator.world
    with emulator.lock:
        course = world.courses[courseid]
        for criterion in criteria(course):
            mark_criteria_complete(world, course, criterion, userid, when)
        if criteria(course):
            mark_course_completed(world, userid, courseid, when)
