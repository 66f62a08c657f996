"""Emulated Moodle functions: manual enrolment and the enrolment lookups of ``core_enrol``.

Besides the handlers this module holds what Moodle keeps in ``lib/enrollib.php`` and
``lib/accesslib.php`` for courses: the enrolment primitives other modules use (cohort sync
enrols through them), who counts as enrolled and active, course-level capabilities from role
archetypes, course access (``require_login``), and the course part of
``user_get_user_details()``. Roles live on the enrolment rows (the seed's ``roleids``): a role
assigned through an enrolment goes when that enrolment goes.
"""

from __future__ import annotations

from typing import Any

from moodle_bridge.emulator.core import Call, nopermissions, ws_function
from moodle_bridge.emulator.external import ExternalError, clean_param, invalid_parameter
from moodle_bridge.emulator.reportbuilder import collation_key

# format_string and fullname are re-exported: courses.py imports them from here.
from moodle_bridge.emulator.users import Viewer, php_empty, user_details
from moodle_bridge.emulator.users import format_string as format_string
from moodle_bridge.emulator.users import fullname as fullname
from moodle_bridge.emulator.world import Row, World

ENROL_USER_ACTIVE = 0
ENROL_USER_SUSPENDED = 1
ENROL_INSTANCE_ENABLED = 0

CONTEXT_SYSTEM, CONTEXT_COURSECAT, CONTEXT_COURSE, CONTEXT_MODULE = 10, 40, 50, 70

#: Capabilities the standard role archetypes hold in a course (Moodle's ``db/access.php``
#: defaults), for the few capabilities the emulated functions check there.
ARCHETYPE_COURSE_CAPABILITIES: dict[str, frozenset[str]] = {
    "manager": frozenset(
        {
            "enrol/manual:enrol",
            "enrol/manual:unenrol",
            "moodle/course:enrolreview",
            "moodle/course:overridecompletion",
            "moodle/course:view",
            "moodle/course:viewhiddencourses",
            "moodle/course:viewhiddenuserfields",
            "moodle/course:viewparticipants",
            "moodle/role:assign",
            "moodle/role:review",
            "moodle/site:accessallgroups",
            "moodle/site:viewfullnames",
            "moodle/site:viewuseridentity",
            "moodle/user:viewalldetails",
            "moodle/user:viewdetails",
            "report/completion:view",
            "report/progress:view",
        }
    ),
    "coursecreator": frozenset({"moodle/course:viewhiddencourses"}),
    "editingteacher": frozenset(
        {
            "enrol/manual:enrol",
            "enrol/manual:unenrol",
            "moodle/course:enrolreview",
            "moodle/course:overridecompletion",
            "moodle/course:viewhiddencourses",
            "moodle/course:viewhiddenuserfields",
            "moodle/course:viewparticipants",
            "moodle/role:assign",
            "moodle/role:review",
            "moodle/site:accessallgroups",
            "moodle/site:viewfullnames",
            "moodle/site:viewuseridentity",
            "moodle/user:viewdetails",
            "report/completion:view",
            "report/progress:view",
        }
    ),
    "teacher": frozenset(
        {
            "moodle/course:overridecompletion",
            "moodle/course:viewhiddencourses",
            "moodle/course:viewhiddenuserfields",
            "moodle/course:viewparticipants",
            "moodle/site:viewfullnames",
            "moodle/site:viewuseridentity",
            "moodle/user:viewdetails",
            "report/completion:view",
            "report/progress:view",
        }
    ),
    "student": frozenset(
        {
            "moodle/course:isincompletionreports",
            "moodle/course:viewparticipants",
        }
    ),
}

#: Context levels where a role of each archetype can be assigned (``get_default_contextlevels``).
ARCHETYPE_CONTEXT_LEVELS: dict[str, tuple[int, ...]] = {
    "manager": (CONTEXT_SYSTEM, CONTEXT_COURSECAT, CONTEXT_COURSE),
    "coursecreator": (CONTEXT_SYSTEM, CONTEXT_COURSECAT),
    "editingteacher": (CONTEXT_COURSE, CONTEXT_MODULE),
    "teacher": (CONTEXT_COURSE, CONTEXT_MODULE),
    "student": (CONTEXT_COURSE, CONTEXT_MODULE),
}

#: ``user_get_default_fields()``: what ``userfields`` may name.
DEFAULT_USER_FIELDS = (
    "id",
    "username",
    "fullname",
    "firstname",
    "lastname",
    "email",
    "address",
    "phone1",
    "phone2",
    "department",
    "institution",
    "interests",
    "firstaccess",
    "lastaccess",
    "auth",
    "confirmed",
    "idnumber",
    "lang",
    "theme",
    "timezone",
    "mailformat",
    "description",
    "descriptionformat",
    "city",
    "country",
    "profileimageurlsmall",
    "profileimageurl",
    "customfields",
    "groups",
    "roles",
    "preferences",
    "enrolledcourses",
    "suspended",
    "lastcourseaccess",
    "trackforums",
)


# --- Moodle's errors -------------------------------------------------------------------------
def _sql_params(value: int) -> str:
    """The ``var_export()`` of a one-parameter list, as dml exceptions print it."""
    return f"[array (\n  0 => {value},\n)]"


def missing_user(userid: int) -> ExternalError:
    """``dml_missing_record_exception`` for the user table (Moodle calls it ``invaliduser``)."""
    return ExternalError(
        "invaliduser",
        "Invalid user",
        exception="dml_missing_record_exception",
        debuginfo=f"SELECT * FROM {{user}} WHERE id = ?\n{_sql_params(userid)}",
    )


def missing_course(courseid: int, fields: str = "*") -> ExternalError:
    """``dml_missing_record_exception`` for the course table."""
    return ExternalError(
        "invalidrecord",
        "Can't find data record in database table course.",
        exception="dml_missing_record_exception",
        debuginfo=f"SELECT {fields} FROM {{course}} WHERE id = ?\n{_sql_params(courseid)}",
    )


def get_course(world: World, courseid: int, fields: str = "*") -> Row:
    """``$DB->get_record('course', ..., MUST_EXIST)``."""
    course = world.courses.get(courseid)
    if course is None:
        raise missing_course(courseid, fields)
    return course


def get_user(world: World, userid: int) -> Row:
    """``core_user::get_user($userid, '*', MUST_EXIST)``."""
    user = world.users.get(userid)
    if user is None:
        raise missing_user(userid)
    return user


# --- roles and capabilities in a course -------------------------------------------------------
#: ``role_get_name()`` of the standard roles, which have no name of their own.
STANDARD_ROLE_NAMES = {
    "manager": "Manager",
    "coursecreator": "Course creator",
    "editingteacher": "Teacher",
    "teacher": "Non-editing teacher",
    "student": "Student",
    "guest": "Guest",
    "user": "Authenticated user",
    "frontpage": "Authenticated user on site home",
}


def role_name(role: Row) -> str:
    """``role_get_name()``: the role's own name, else the standard name of its short name."""
    if str(role.get("name") or "").strip():
        return format_string(role["name"])
    return STANDARD_ROLE_NAMES.get(role["shortname"], str(role["shortname"]))


def _role_capabilities(world: World, role: Row) -> frozenset[str] | set[str]:
    defined = world.role_capabilities.get(role["shortname"])
    if defined is not None:
        return defined
    return ARCHETYPE_COURSE_CAPABILITIES.get(role.get("archetype") or "", frozenset())


def course_roleids(world: World, courseid: int, userid: int) -> list[int]:
    """The roles a user holds in a course, one per role assignment, in role sort order."""
    roleids = [
        roleid
        for enrolid in world.user_enrolids.get(userid, ())
        if world.instance_course.get(enrolid) == courseid
        for roleid in world.enrolments[(enrolid, userid)].get("roleids", [])
    ]
    return sorted(roleids, key=lambda rid: world.roles[rid].get("sortorder", rid))


def has_course_capability(world: World, userid: int, courseid: int, capability: str) -> bool:
    """``has_capability()`` in a course context: system roles, then the roles in the course."""
    user = world.users.get(userid)
    if user is None:
        return False
    if user.get("site_admin"):
        return True
    if any(
        capability in world.role_capabilities.get(name, set())
        for name in user.get("system_roles", [])
    ):
        return True
    return any(
        capability in _role_capabilities(world, world.roles[rid])
        for rid in course_roleids(world, courseid, userid)
    )


def require_course_capability(call: Call, course: Row, capability: str, name: str) -> None:
    """``require_capability()`` in a course context; ``name`` is the capability's human name."""
    if not has_course_capability(call.world, call.userid, course["id"], capability):
        raise nopermissions(name)


def assignable_roleids(call: Call, course: Row) -> set[int]:
    """``get_assignable_roles()`` in a course context for the calling user."""
    world = call.world
    if not has_course_capability(world, call.userid, course["id"], "moodle/role:assign"):
        return set()

    def assignable_here(role: Row) -> bool:
        levels = role.get("contextlevels") or ARCHETYPE_CONTEXT_LEVELS.get(
            role.get("archetype") or "", ()
        )
        return CONTEXT_COURSE in levels

    candidates = {rid for rid, role in world.roles.items() if assignable_here(role)}
    if call.is_admin:
        return candidates
    by_name = {role["shortname"]: rid for rid, role in world.roles.items()}
    held = {by_name[name] for name in call.user.get("system_roles", []) if name in by_name}
    held.update(course_roleids(world, course["id"], call.userid))
    allowed = {row["allowassign"] for row in world.role_allow_assign if row["roleid"] in held}
    return candidates & allowed


# --- enrolment state -------------------------------------------------------------------------
def course_instances(world: World, courseid: int, *, enabled: bool = False) -> list[Row]:
    """``enrol_get_instances()``: a course's enrolment instances in sort order."""
    course = world.courses.get(courseid)
    instances = list(course.get("enrolment_instances", [])) if course else []
    if enabled:
        plugins = str(world.settings.get("enrol_plugins_enabled", "")).split(",")
        instances = [
            i for i in instances if i["status"] == ENROL_INSTANCE_ENABLED and i["enrol"] in plugins
        ]
    return sorted(instances, key=lambda i: (i.get("sortorder", 0), i["id"]))


def is_active(world: World, row: Row, now: int) -> bool:
    """An enrolment counts as active: active row, enabled instance, within its dates."""
    instance = world.enrol_instances.get(row["enrolid"])
    return (
        row["status"] == ENROL_USER_ACTIVE
        and instance is not None
        and instance["status"] == ENROL_INSTANCE_ENABLED
        and row["timestart"] < now
        and (row["timeend"] == 0 or row["timeend"] > now)
    )


def enrolled_userids(
    world: World, courseid: int, now: int, *, onlyactive: bool = False, onlysuspended: bool = False
) -> set[int]:
    """``get_enrolled_sql()``: users with an enrolment in the course (any state by default).

    ``onlysuspended`` keeps the users with enrolments none of which is active.
    """
    users: set[int] = set()
    active: set[int] = set()
    for instance in course_instances(world, courseid):
        members = world.instance_users.get(instance["id"], set())
        users |= members
        if onlyactive or onlysuspended:
            active.update(
                uid
                for uid in members
                if is_active(world, world.enrolments[(instance["id"], uid)], now)
            )
    if onlyactive:
        return active
    if onlysuspended:
        return users - active
    return users


def is_enrolled(
    world: World,
    courseid: int,
    userid: int,
    now: int,
    *,
    onlyactive: bool = True,
    capability: str | None = None,
) -> bool:
    """``is_enrolled()``: an (active) enrolment in the course, and the capability if given."""
    user = world.users.get(userid)
    if user is None or user.get("username") == "guest":
        return False
    rows = [
        world.enrolments[(enrolid, userid)]
        for enrolid in world.user_enrolids.get(userid, ())
        if world.instance_course.get(enrolid) == courseid
    ]
    if not any(is_active(world, row, now) or not onlyactive for row in rows):
        return False
    return capability is None or has_course_capability(world, userid, courseid, capability)


def course_sort_key(world: World, course: Row) -> tuple[int, int, int]:
    """Moodle's "visible DESC, sortorder ASC" for course lists.

    ``create_course()`` puts a new course first in its category and ``fix_course_sortorder()``
    numbers the category from there, so within a category the newest course comes first.
    """
    category = world.categories.get(course.get("categoryid", 0), {})
    return (-int(course.get("visible", 1)), int(category.get("sortorder", 0)), -course["id"])


def user_courses(world: World, userid: int, now: int, *, onlyactive: bool = True) -> list[Row]:
    """``enrol_get_users_courses()``: the courses a user is (actively) enrolled in, sorted."""
    user = world.users.get(userid)
    if user is None or user.get("username") == "guest":
        return []
    courseids = {
        world.instance_course[enrolid]
        for enrolid in world.user_enrolids.get(userid, ())
        if not onlyactive or is_active(world, world.enrolments[(enrolid, userid)], now)
    }
    courses = [world.courses[cid] for cid in courseids if cid in world.courses]
    return sorted(courses, key=lambda course: course_sort_key(world, course))


# --- enrolment primitives (enrol_plugin in lib/enrollib.php) --------------------------------
def update_user_enrol(
    row: Row,
    *,
    now: int,
    modifierid: int,
    status: int | None = None,
    timestart: int | None = None,
    timeend: int | None = None,
) -> None:
    """``enrol_plugin::update_user_enrol()``: change what is given and differs."""
    changes = {
        k: v
        for k, v in (("status", status), ("timestart", timestart), ("timeend", timeend))
        if v is not None and row[k] != v
    }
    if changes:
        row.update(changes, modifierid=modifierid, timemodified=now)


def enrol_user(
    world: World,
    instance: Row,
    userid: int,
    roleid: int | None,
    *,
    now: int,
    modifierid: int,
    timestart: int = 0,
    timeend: int = 0,
    status: int | None = None,
) -> None:
    """``enrol_plugin::enrol_user()``: enrol or update the enrolment, then assign the role.

    An existing enrolment takes the new dates and status; a role is added next to any the user
    already holds through this enrolment (a second role does not replace the first).
    """
    row = world.enrolments.get((instance["id"], userid))
    if row is not None:
        if (
            row["timestart"] != timestart
            or row["timeend"] != timeend
            or (status is not None and row["status"] != status)
        ):
            update_user_enrol(
                row,
                now=now,
                modifierid=modifierid,
                status=status,
                timestart=timestart,
                timeend=timeend,
            )
    else:
        row = {
            "userid": userid,
            "courseid": world.instance_course[instance["id"]],
            "enrolid": instance["id"],
            "enrol": instance["enrol"],
            "roleids": [],
            "status": ENROL_USER_ACTIVE if status is None else status,
            "timestart": timestart,
            "timeend": timeend,
            "modifierid": modifierid,
            "timecreated": now,
            "timemodified": now,
        }
        world.add_enrolment(row)
    if roleid and roleid not in row["roleids"]:
        row["roleids"].append(roleid)


def unenrol_user(world: World, instance: Row, userid: int) -> None:
    """``enrol_plugin::unenrol_user()``: drop the enrolment and the roles that came with it.

    Completion data stays, as in Moodle. Not being enrolled is no error.
    """
    world.remove_enrolment(instance["id"], userid)


# --- course access (require_login) ----------------------------------------------------------
def can_access_course(call: Call, course: Row) -> bool:
    """``can_access_course()`` for the calling user, as ``require_login()`` checks it."""
    world = call.world
    if call.is_admin:
        return True
    if not course.get("visible", 1) and not has_course_capability(
        world, call.userid, course["id"], "moodle/course:viewhiddencourses"
    ):
        return False
    if has_course_capability(world, call.userid, course["id"], "moodle/course:view"):
        return True
    return is_enrolled(world, course["id"], call.userid, call.now)


def require_course_login(call: Call, course: Row) -> None:
    """``external_api::validate_context()`` for a course context."""
    if not can_access_course(call, course):
        hidden = not course.get("visible", 1)
        raise ExternalError(
            errorcode="requireloginerror",
            message="Course or activity not accessible.",
            exception="core\\exception\\require_login_exception",
            debuginfo="Course is hidden" if hidden else "Not enrolled",
        )


# --- user_get_user_details in a course (user/lib.php) -----------------------------------------
def enrolled_user_details(
    viewer: Viewer, user: Row, course: Row, userfields: list[str]
) -> dict[str, Any] | None:
    """``user_get_user_details($user, $course, $userfields)``, or None when hidden.

    The profile part is ``users.user_details``; the course adds the user's roles there and
    the courses they are actively enrolled in. ``userfields`` restricts the answer (``id`` and
    ``fullname`` always come), and naming a field Moodle does not know is an error.
    """
    call = viewer.call
    for name in userfields:
        if name not in DEFAULT_USER_FIELDS:
            raise ExternalError(errorcode="invaliduserfield", message=f"Invalid user field: {name}")
    wanted = set(userfields or DEFAULT_USER_FIELDS) | {"id", "fullname"}
    if "description" in wanted:
        wanted.add("descriptionformat")
    profile = user_details(viewer, user)
    if profile is None:
        return None
    details = {key: value for key, value in profile.items() if key in wanted}
    if "lastcourseaccess" in wanted and ("lastaccess" not in viewer.hidden or call.is_admin):
        details["lastcourseaccess"] = 0
    if "roles" in wanted:
        details["roles"] = [
            {
                "roleid": rid,
                "name": call.world.roles[rid].get("name", ""),
                "shortname": call.world.roles[rid]["shortname"],
                "sortorder": 0,
            }
            for rid in course_roleids(call.world, course["id"], user["id"])
        ]
    if "enrolledcourses" in wanted and "mycourses" not in viewer.hidden:
        mycourses = user_courses(call.world, user["id"], call.now)
        if mycourses:
            details["enrolledcourses"] = [
                {
                    "id": c["id"],
                    "fullname": format_string(c["fullname"]),
                    "shortname": format_string(c["shortname"]),
                }
                for c in mycourses
                if c.get("categoryid")
            ]
    return details


# --- enrol_manual_enrol_users / enrol_manual_unenrol_users ----------------------------------
def _no_manual_instance() -> ExternalError:
    # Moodle passes the parameters in the place of the link, so the placeholder stays unfilled.
    return ExternalError(
        "wsnoinstance",
        "Manual enrolment plugin instance doesn't exist or is disabled for the course "
        "(id = {$a->courseid})",
    )


@ws_function("enrol_manual_enrol_users")
def enrol_manual_enrol_users(call: Call) -> None:
    """Enrol users through the course's manual instance; the whole batch or nothing."""
    world = call.world
    planned: list[tuple[Row, dict[str, Any]]] = []
    for item in call.params["enrolments"]:
        course = world.courses.get(item["courseid"])
        if course is None:
            raise invalid_parameter(debuginfo="Context does not exist")
        require_course_login(call, course)
        require_course_capability(call, course, "enrol/manual:enrol", "Enrol users")
        if item["roleid"] not in assignable_roleids(call, course):
            raise ExternalError(
                errorcode="wsusercannotassign",
                message=f"You don't have the permission to assign this role ({item['roleid']}) "
                f"to this user ({item['userid']}) in this course ({item['courseid']}).",
            )
        instance = next(
            (
                i
                for i in course_instances(world, course["id"], enabled=True)
                if i["enrol"] == "manual"
            ),
            None,
        )
        if instance is None:
            raise _no_manual_instance()
        get_user(world, item["userid"])
        planned.append((instance, item))
    # Moodle runs the batch in one transaction: nothing is written unless every item passed.
    for instance, item in planned:
        enrol_user(
            world,
            instance,
            item["userid"],
            item["roleid"],
            now=call.now,
            modifierid=call.userid,
            timestart=item.get("timestart") or 0,
            timeend=item.get("timeend") or 0,
            status=ENROL_USER_SUSPENDED if item.get("suspend") else ENROL_USER_ACTIVE,
        )


@ws_function("enrol_manual_unenrol_users")
def enrol_manual_unenrol_users(call: Call) -> None:
    """Unenrol users from the course's manual instance; other enrolments are left alone."""
    world = call.world
    planned: list[tuple[Row, int]] = []
    for item in call.params["enrolments"]:
        course = get_course(world, item["courseid"], "id,category")
        require_course_login(call, course)
        require_course_capability(
            call, course, "enrol/manual:unenrol", "Unenrol users from the course"
        )
        instance = next(
            (i for i in course_instances(world, course["id"]) if i["enrol"] == "manual"), None
        )
        if instance is None:
            raise _no_manual_instance()
        get_user(world, item["userid"])
        planned.append((instance, item["userid"]))
    # One transaction, as in Moodle: a failing item leaves every enrolment in place.
    for instance, userid in planned:
        unenrol_user(world, instance, userid)


# --- core_enrol_get_enrolled_users --------------------------------------------------------------
_SORT_FIELDS = ("id", "firstname", "lastname", "siteorder")


def _sorted_users(users: list[Row], sortby: str, descending: bool) -> list[Row]:
    """``ORDER BY us.<sortby> <direction>``; siteorder is "lastname, firstname, id <direction>"."""
    if sortby == "siteorder":
        sign = -1 if descending else 1
        return sorted(
            users,
            key=lambda u: (
                collation_key(u.get("lastname")),
                collation_key(u.get("firstname")),
                sign * u["id"],
            ),
        )
    by_id = sorted(users, key=lambda u: int(u["id"]))
    if sortby == "id":
        return by_id[::-1] if descending else by_id
    # Equal names keep id order (PostgreSQL leaves it open; the emulator makes it stable).
    return sorted(by_id, key=lambda u: collation_key(u.get(sortby)), reverse=descending)


@ws_function("core_enrol_get_enrolled_users")
def core_enrol_get_enrolled_users(call: Call) -> list[dict[str, Any]]:
    """The participants of a course, with the details the caller may see."""
    world = call.world
    courseid = call.params["courseid"]
    withcapability = ""
    groupid = 0
    onlyactive = onlysuspended = descending = False
    userfields: list[str] = []
    limitfrom = limitnumber = 0
    sortby = "id"
    for option in call.params["options"]:
        name, value = option["name"], option["value"]
        if name == "withcapability":
            withcapability = str(value)
        elif name == "groupid":
            groupid = clean_param(value, "int")
        elif name == "onlyactive":
            onlyactive = not php_empty(value)
        elif name == "onlysuspended":
            onlysuspended = not php_empty(value)
        elif name == "userfields":
            userfields = [clean_param(f, "alphanumext") for f in str(value).split(",")]
        elif name == "limitfrom":
            limitfrom = clean_param(value, "int")
        elif name == "limitnumber":
            limitnumber = clean_param(value, "int")
        elif name == "sortby":
            if value not in _SORT_FIELDS:
                raise invalid_parameter(
                    debuginfo=f"Invalid value for sortby parameter (value: {value}), "
                    f"allowed values are: {','.join(_SORT_FIELDS)}"
                )
            sortby = str(value)
        elif name == "sortdirection":
            direction = str(value).upper()
            if direction not in ("ASC", "DESC"):
                # Moodle's message spans two source lines, indentation included.
                raise invalid_parameter(
                    debuginfo="Invalid value for sortdirection parameter\n"
                    f"                        (value: {direction}),allowed values are: ASC,DESC"
                )
            descending = direction == "DESC"

    course = get_course(world, courseid)
    try:
        require_course_login(call, course)
    except ExternalError as error:
        raise ExternalError(
            errorcode="errorcoursecontextnotvalid",
            message=f"You cannot execute functions in the course context (course id:{courseid}). "
            f"The context error message was: {error.message}",
        ) from error
    require_course_capability(call, course, "moodle/course:viewparticipants", "View participants")
    if withcapability:
        require_course_capability(
            call, course, "moodle/role:review", "Review permissions for others"
        )
    if groupid:
        # Groups are not emulated: the caller is in none, and a group has no members.
        require_course_capability(call, course, "moodle/site:accessallgroups", "Access all groups")
    if onlyactive or onlysuspended:
        require_course_capability(
            call, course, "moodle/course:enrolreview", "Review course enrolments"
        )

    userids = enrolled_userids(
        world, courseid, call.now, onlyactive=onlyactive, onlysuspended=onlysuspended
    )
    if withcapability:
        userids = {
            uid for uid in userids if has_course_capability(world, uid, courseid, withcapability)
        }
    if groupid:
        userids = set()
    users = _sorted_users(
        [world.users[uid] for uid in userids if uid in world.users], sortby, descending
    )
    page = users[max(limitfrom, 0) :]
    if limitnumber > 0:
        page = page[:limitnumber]
    viewer = Viewer.of(call)
    details = (enrolled_user_details(viewer, user, course, userfields) for user in page)
    return [row for row in details if row is not None]


# --- core_enrol_get_course_enrolment_methods ----------------------------------------------------
def _instance_info(world: World, courseid: int, instance: Row) -> dict[str, Any] | None:
    """``enrol_plugin::get_enrol_info()``: only guest and self answer; manual, cohort do not.

    Self enrolment's status would carry the reason a user cannot enrol themselves; the emulator
    keeps no self-enrolment settings (dates, caps, cohort limits), so it is always open.
    """
    plugin = instance["enrol"]
    if plugin not in ("guest", "self"):
        return None
    name = instance.get("name")
    if not name:
        name = "Guest access" if plugin == "guest" else "Self enrolment"
        role = world.roles.get(instance.get("roleid") or 0)
        if plugin == "self" and role is not None:
            name += f" ({role_name(role)})"
    return {
        "id": instance["id"],
        "courseid": courseid,
        "type": plugin,
        "name": format_string(name),
        "status": True,
        "wsfunction": f"enrol_{plugin}_get_instance_info",
    }


@ws_function("core_enrol_get_course_enrolment_methods")
def core_enrol_get_course_enrolment_methods(call: Call) -> list[dict[str, Any]]:
    """The enabled enrolment methods of a course that describe themselves."""
    world = call.world
    course = get_course(world, call.params["courseid"])
    if not course.get("visible", 1) and not can_access_course(call, course):
        raise ExternalError(
            errorcode="coursehidden", message="This course is currently unavailable to students"
        )
    infos = (
        _instance_info(world, course["id"], i)
        for i in course_instances(world, course["id"], enabled=True)
    )
    return [info for info in infos if info is not None]
