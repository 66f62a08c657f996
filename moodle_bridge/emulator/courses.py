"""Emulated Moodle functions: course categories and courses (``core_course_*``).

Besides the handlers, this module holds what other parts of the emulator need about courses:
contexts, Moodle's defaults for course fields the seed leaves out, category and course sort
orders, and ``format_text`` as the external API applies it.
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from moodle_bridge.emulator.core import Call, nopermissions, ws_function
from moodle_bridge.emulator.enrol import (
    can_access_course,
    course_instances,
    format_string,
    fullname,
    is_active,
)
from moodle_bridge.emulator.external import (
    INSTALLED_LANGS,
    ExternalError,
    clean_param,
    invalid_parameter,
)
from moodle_bridge.emulator.world import Row, World

#: get_max_courses_in_category(): the sortorder room of one category.
MAX_COURSES_IN_CATEGORY = 10000
YEARSECS = 365 * 24 * 3600
FORMAT_MOODLE, FORMAT_HTML, FORMAT_PLAIN, FORMAT_MARKDOWN = 0, 1, 2, 4

#: Filters a fresh Moodle 4.5 has on, in their site order; nothing is set per context.
SITE_FILTERS = (
    "displayh5p",
    "activitynames",
    "mathjaxloader",
    "emoticon",
    "urltolink",
    "mediaplugin",
)

#: Column values of a course row the seed does not spell out: the defaults of Moodle's course
#: table (summaryformat is HTML, as the seeded summaries come back unwrapped).
COURSE_COLUMN_DEFAULTS: dict[str, Any] = {
    "idnumber": "",
    "summary": "",
    "summaryformat": FORMAT_HTML,
    "format": "topics",
    "showgrades": 1,
    "newsitems": 1,
    "startdate": 0,
    "enddate": 0,
    "marker": 0,
    "maxbytes": 0,
    "legacyfiles": 0,
    "showreports": 0,
    "visible": 1,
    "groupmode": 0,
    "groupmodeforce": 0,
    "defaultgroupingid": 0,
    "lang": "",
    "calendartype": "",
    "theme": "",
    "timecreated": 0,
    "timemodified": 0,
    "requested": 0,
    "enablecompletion": 0,
    "completionnotify": 0,
    "cacherev": 0,
    "showactivitydates": 0,
}

#: The "moodlecourse" settings of a fresh site that core_course_create_courses applies.
COURSE_SETTINGS: dict[str, Any] = {
    "hiddensections": 1,
    "coursedisplay": 0,
    "courseenddateenabled": 1,
    "courseduration": YEARSECS,
    "enablecompletion": 1,
    "showactivitydates": 1,
    "showcompletionconditions": 1,
}

#: Course format options by format, with the defaults core_courseformat gives them.
FORMAT_OPTIONS: dict[str, dict[str, int]] = {
    "topics": {
        "hiddensections": COURSE_SETTINGS["hiddensections"],
        "coursedisplay": COURSE_SETTINGS["coursedisplay"],
    },
    "weeks": {
        "hiddensections": COURSE_SETTINGS["hiddensections"],
        "coursedisplay": COURSE_SETTINGS["coursedisplay"],
        "automaticenddate": 1,
    },
}

#: Enrolment plugins that add an instance to every new course, with (status, role archetype).
DEFAULT_ENROL_INSTANCES: dict[str, tuple[int, str | None]] = {
    "manual": (0, "student"),
    "guest": (1, None),
    "self": (1, "student"),
}

#: Capabilities every logged-in user has through Moodle's "Authenticated user" role.
AUTHENTICATED_USER_CAPABILITIES = frozenset({"moodle/category:viewcourselist"})

#: Roles shown as course contacts ($CFG->coursecontact): editing teachers.
COURSE_CONTACT_ARCHETYPES = ("editingteacher",)


# --- shared helpers ------------------------------------------------------------------------------
def moodle_error(*, code: str, message: str, debuginfo: str | None = None) -> ExternalError:
    """A plain ``moodle_exception``."""
    return ExternalError(code, message, debuginfo=debuginfo)


def missing_record(table: str, sql: str, params: list[Any]) -> ExternalError:
    """``dml_missing_record_exception`` of a MUST_EXIST read, with Moodle's debuginfo."""
    dumped = "".join(f"  {i} => {_php_export(v)},\n" for i, v in enumerate(params))
    debuginfo = f"{sql}\n[array (\n{dumped})]"
    if table == "user":
        return ExternalError(
            "invaliduser",
            "Invalid user",
            exception="dml_missing_record_exception",
            debuginfo=debuginfo,
        )
    return ExternalError(
        "invalidrecord",
        f"Can't find data record in database table {table}.",
        exception="dml_missing_record_exception",
        debuginfo=debuginfo,
    )


def _php_export(value: Any) -> str:
    """``var_export()`` of a scalar."""
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(value)


def db_int(value: Any) -> int | None:
    """The integer PostgreSQL reads from a value compared with a bigint column, None if it fails."""
    match = re.fullmatch(r"\s*([+-]?\d+)\s*", str(value))
    return int(match.group(1)) if match else None


def has_capability(call: Call, capability: str) -> bool:
    """``has_capability`` at system level, counting the Authenticated user role."""
    return capability in AUTHENTICATED_USER_CAPABILITIES or call.has_capability(capability)


def validate_format(fmt: int) -> int:
    """``core_external\\util::validate_format``."""
    if fmt not in (FORMAT_MOODLE, FORMAT_HTML, FORMAT_PLAIN, FORMAT_MARKDOWN):
        raise moodle_error(
            code="formatnotsupported",
            message="Format not supported",
            debuginfo=f"The format with value={fmt} is not supported by this Moodle site",
        )
    return fmt


def format_text(text: Any, fmt: Any) -> str:
    """``core_external\\util::format_text``: the text as HTML (the format it returns is HTML)."""
    if text is None:
        return ""
    source = str(text)
    fmt = int(fmt) if fmt is not None else FORMAT_MOODLE
    if fmt == FORMAT_PLAIN:
        escaped = html.escape(source, quote=True).replace("&#x27;", "&#039;")
        return _nl2br(escaped.replace("  ", "&nbsp; "))
    if fmt == FORMAT_MOODLE:
        return f'<div class="text_to_html">{_nl2br(source)}</div>'
    if fmt == FORMAT_MARKDOWN:
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", source) if p.strip()]
        return "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return source


def _nl2br(text: str) -> str:
    return re.sub(r"(\r\n|\n\r|\n|\r)", r"<br />\1", text)


def course_value(course: Row, field: str) -> Any:
    """A course column, with Moodle's column default when the row does not carry it."""
    if field in course:
        return course[field]
    if field == "showcompletionconditions":
        # Moodle keeps it only for courses that track completion (NULL otherwise).
        return 1 if course_value(course, "enablecompletion") else None
    return COURSE_COLUMN_DEFAULTS.get(field)


def course_image_url(world: World, course: Row) -> str:
    """The generated course image URL Moodle gives a course without an image file."""
    wwwroot = world.settings.get("wwwroot", "")
    return f"{wwwroot}/pluginfile.php/{course['contextid']}/course/generated/course.svg"


def site_course(world: World) -> Row:
    """The front page course (id SITEID) as a course row."""
    front = world.site.get("frontpage_course", {})
    return {
        "id": int(front.get("id", 1)),
        "shortname": front.get("shortname", ""),
        "fullname": front.get("fullname", ""),
        "categoryid": int(front.get("category", 0)),
        "contextid": int(front.get("contextid", 2)),
        "format": "site",
        "summaryformat": FORMAT_HTML,
        "enrolment_instances": [],
    }


def course_by_id(world: World, courseid: int) -> Row | None:
    """The course with this id, the front page included."""
    course = world.courses.get(courseid)
    if course is None and courseid == int(world.site.get("siteid", 1)):
        return site_course(world)
    return course


def context_instance(world: World, contextid: int) -> tuple[str, int] | None:
    """(context level, instance id) of a context id, None when there is no such context."""
    if contextid == int(world.site.get("system_contextid", 1)):
        return ("system", 0)
    for category in world.categories.values():
        if category.get("contextid") == contextid:
            return ("coursecat", category["id"])
    for course in world.courses.values():
        if course.get("contextid") == contextid:
            return ("course", course["id"])
    for user in world.users.values():
        if user.get("contextid") == contextid:
            return ("user", user["id"])
    return None


# --- categories ----------------------------------------------------------------------------------
def fix_category_sortorder(world: World) -> None:
    """The category half of Moodle's ``fix_course_sortorder()``.

    Unsorted categories (sortorder 0, i.e. new ones) go last among their siblings; then the tree
    is walked depth first and every category gets the next MAX_COURSES_IN_CATEGORY slot. Course
    sortorders follow their category (see :func:`course_sortorders`).
    """
    children: dict[int, list[Row]] = defaultdict(list)
    for category in world.categories.values():
        if not category.get("sortorder"):
            category["sortorder"] = MAX_COURSES_IN_CATEGORY * MAX_COURSES_IN_CATEGORY
        children[int(category.get("parent") or 0)].append(category)
    sortorder = 0

    def walk(parentid: int, path: str, depth: int) -> None:
        nonlocal sortorder
        for category in sorted(children.get(parentid, []), key=lambda c: (c["sortorder"], c["id"])):
            sortorder += MAX_COURSES_IN_CATEGORY
            category.update(
                parent=parentid, depth=depth, path=f"{path}/{category['id']}", sortorder=sortorder
            )
            walk(category["id"], category["path"], depth + 1)

    walk(0, "", 1)


def course_sortorders(world: World) -> dict[int, int]:
    """Every course's sortorder.

    Moodle inserts a new course at the top of its category and no emulated function reorders
    courses, so within a category the newest (highest id) course comes first, right after the
    category's own sortorder.
    """
    by_category: dict[int, list[int]] = defaultdict(list)
    for course in world.courses.values():
        by_category[int(course["categoryid"])].append(course["id"])
    result: dict[int, int] = {}
    for categoryid, courseids in by_category.items():
        category = world.categories.get(categoryid)
        base = int(category["sortorder"]) if category else 0
        for position, courseid in enumerate(sorted(courseids, reverse=True), start=1):
            result[courseid] = base + position
    return result


def _category_output(call: Call, category: Row) -> dict[str, Any]:
    info: dict[str, Any] = {
        "id": category["id"],
        "name": format_string(category["name"]),
        "description": format_text(
            category.get("description"), category.get("descriptionformat", FORMAT_HTML)
        ),
        "descriptionformat": FORMAT_HTML,
        "parent": category.get("parent", 0),
        "sortorder": category.get("sortorder", 0),
        "coursecount": category.get("coursecount", 0),
        "depth": category.get("depth", 1),
        "path": category.get("path", f"/{category['id']}"),
    }
    if call.has_capability("moodle/category:manage"):
        info["idnumber"] = category.get("idnumber")
        info["visible"] = category.get("visible", 1)
        info["visibleold"] = category.get("visibleold", category.get("visible", 1))
        info["timemodified"] = category.get("timemodified", 0)
        info["theme"] = clean_param(category.get("theme") or "", "theme")
    return info


def _criteria_error(*, debuginfo: str) -> ExternalError:
    return moodle_error(
        code="criteriaerror",
        debuginfo=debuginfo,
        message="Missing permissions to search on a criterion.",
    )


def _category_filters(call: Call, criteria: list[dict[str, Any]]) -> dict[str, Any]:
    """The WHERE conditions of core_course_get_categories, as {column: accepted values}."""
    conditions: dict[str, Any] = {}
    for crit in criteria:
        key = str(crit["key"]).strip()
        # A repeated key counts once, except "ids": Moodle never records that one as seen.
        if key in conditions and key != "ids":
            continue
        value = crit["value"]
        if key in ("id", "parent"):
            conditions[key] = {clean_param(value, "int")}
        elif key == "ids":
            ids = {db_int(v) for v in re.sub(r"[^0-9,]", "", str(value)).split(",")}
            conditions["ids"] = conditions.get("ids", ids) & ids
        elif key == "name":
            conditions[key] = {clean_param(value, "text")}
        elif key in ("idnumber", "theme"):
            if not call.has_capability("moodle/category:manage"):
                raise _criteria_error(
                    debuginfo=f'You don\'t have the permissions to search on the "{key}" field.'
                )
            conditions[key] = {value if key == "idnumber" else clean_param(value, "theme")}
        elif key == "visible":
            if not call.has_capability("moodle/category:viewhiddencategories"):
                raise _criteria_error(
                    debuginfo='You don\'t have the permissions to search on the "visible" field.'
                )
            conditions[key] = {clean_param(value, "int")}
        else:
            raise _criteria_error(debuginfo=f"You can not search on this criteria: {key}")
    return conditions


def _matches(category: Row, conditions: dict[str, Any]) -> bool:
    for key, accepted in conditions.items():
        column = "id" if key == "ids" else key
        value = category.get(column)
        if key == "theme":
            value = value or ""
        if value not in accepted:
            return False
    return True


@ws_function("core_course_get_categories")
def get_categories(call: Call) -> list[dict[str, Any]]:
    """core_course_external::get_categories."""
    world = call.world
    criteria = call.params["criteria"]
    if criteria:
        conditions = _category_filters(call, criteria)
        found = {c["id"]: c for c in world.categories.values() if _matches(c, conditions)}
        if found and call.params["addsubcategories"]:
            # Sub-categories of any depth, held to the visible/theme conditions only.
            extra = {k: v for k, v in conditions.items() if k in ("visible", "theme")}
            for category in list(found.values()):
                prefix = f"{category['path']}/"
                for other in world.categories.values():
                    if other["path"].startswith(prefix) and _matches(other, extra):
                        found.setdefault(other["id"], other)
        categories = list(found.values())
    else:
        categories = list(world.categories.values())

    excluded: set[int] = set()
    result = []
    for category in sorted(categories, key=lambda c: c["path"].encode()):
        parents = [int(p) for p in category["path"].split("/")[1:]]
        if any(p in excluded for p in parents):
            excluded.add(category["id"])
            continue
        visible = category.get("visible", 1) or call.has_capability(
            "moodle/category:viewhiddencategories"
        )
        if visible and has_capability(call, "moodle/category:viewcourselist"):
            result.append(_category_output(call, category))
        else:
            excluded.add(category["id"])
    # Moodle sorts with strcmp() on the sortorder, so as strings.
    return sorted(result, key=lambda c: str(c["sortorder"]).encode())


@ws_function("core_course_create_categories")
def create_categories(call: Call) -> list[dict[str, Any]]:
    """core_course_external::create_categories: all or nothing."""
    world = call.world
    tree = ("parent", "path", "depth", "sortorder")
    saved = {cid: {k: c.get(k) for k in tree} for cid, c in world.categories.items()}
    created: list[dict[str, Any]] = []
    try:
        for data in call.params["categories"]:
            created.append(_create_category(call, data))
    except ExternalError:
        # Moodle rolls the whole batch back (the ids it took stay used).
        for category in created:
            del world.categories[category["id"]]
        for cid, values in saved.items():
            world.categories[cid].update(values)
        raise
    return created


def _create_category(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    world = call.world
    parentid = int(data["parent"])
    parent = world.categories.get(parentid) if parentid else None
    if parentid and parent is None:
        raise moodle_error(code="unknowcategory", message="Unknown category")
    if not call.has_capability("moodle/category:manage"):
        raise nopermissions(capability_name="Manage categories")
    validate_format(int(data["descriptionformat"]))
    # core_course_category::create()
    name = data["name"]
    if name in ("", "0"):
        raise moodle_error(code="categorynamerequired", message="Category name is required")
    if len(name) > 255:
        raise moodle_error(code="categorytoolong", message="Category name too long")
    idnumber = data.get("idnumber")
    if idnumber not in (None, "", "0"):
        if len(idnumber) > 100:
            raise moodle_error(code="idnumbertoolong", message="ID number is too long")
        if any(c.get("idnumber") == idnumber for c in world.categories.values()):
            raise moodle_error(
                code="categoryidnumbertaken",
                message="ID number is already used for another category",
            )
    categoryid = world.next_id("course_categories", world.categories)
    category: Row = {
        "id": categoryid,
        "idnumber": idnumber,
        "name": name,
        "parent": parentid,
        "path": f"{parent['path'] if parent else ''}/{categoryid}",
        "depth": (int(parent["depth"]) if parent else 0) + 1,
        "sortorder": 0,
        "contextid": world.next_context_id(),
        "coursecount": 0,
        "description": data.get("description", ""),
        "descriptionformat": data["descriptionformat"],
        "visible": parent.get("visible", 1) if parent else 1,
        "visibleold": 1,
        "theme": "",
        "timemodified": call.now,
    }
    world.categories[categoryid] = category
    fix_category_sortorder(world)
    return {"id": categoryid, "name": format_string(name)}


# --- courses -------------------------------------------------------------------------------------
@ws_function("core_course_create_courses")
def create_courses(call: Call) -> list[dict[str, Any]]:
    """core_course_external::create_courses: all or nothing."""
    world = call.world
    created: list[Row] = []
    try:
        for data in call.params["courses"]:
            created.append(_create_course(call, data))
    except ExternalError:
        # Moodle rolls the whole batch back (the ids it took stay used).
        for course in created:
            _drop_course(world, course)
        raise
    return [{"id": c["id"], "shortname": c["shortname"]} for c in created]


def _create_course(call: Call, data: dict[str, Any]) -> Row:
    world = call.world
    category = world.categories.get(int(data["categoryid"]))
    if category is None:
        raise moodle_error(
            code="errorcatcontextnotvalid",
            message=f"You cannot execute functions in the category context (category id:"
            f"{data['categoryid']}). The context error message was: "
            f"Invalid parameter value detected",
        )
    if not call.has_capability("moodle/course:create"):
        raise nopermissions(capability_name="Create courses")
    for field in ("fullname", "shortname"):
        if not str(data[field]).strip():
            raise moodle_error(code="errorinvalidparam", message=f'The param "{field}" is invalid.')
    if "lang" in data and data["lang"] not in INSTALLED_LANGS:
        raise moodle_error(code="errorinvalidparam", message='The param "lang" is invalid.')
    visible = int(category.get("visible", 1))
    if "visible" in data and call.has_capability("moodle/course:visibility"):
        visible = int(data["visible"])
    enablecompletion = 0
    if str(world.settings.get("enablecompletion", "0")) not in ("", "0"):
        enablecompletion = data.get("enablecompletion", COURSE_SETTINGS["enablecompletion"])
    validate_format(int(data["summaryformat"]))

    # create_course()
    shortname, idnumber = data["shortname"], data.get("idnumber", "")
    # Moodle checks only values PHP does not consider empty ("" and "0").
    if shortname != "0" and any(c["shortname"] == shortname for c in world.courses.values()):
        raise moodle_error(
            code="shortnametaken",
            message=f"Short name is already used for another course ({shortname})",
        )
    if idnumber not in ("", "0") and any(
        c.get("idnumber") == idnumber for c in world.courses.values()
    ):
        raise moodle_error(
            code="courseidnumbertaken",
            message=f"ID number is already used for another course ({idnumber})",
        )
    startdate = int(data.get("startdate", 0))
    enddate = (
        int(data["enddate"])
        if "enddate" in data
        else (
            startdate + COURSE_SETTINGS["courseduration"]
            if COURSE_SETTINGS["courseenddateenabled"]
            else 0
        )
    )
    if enddate and enddate < startdate:
        raise moodle_error(
            code="enddatebeforestartdate",
            message="The course end date must be after the start date.",
        )

    courseid = world.next_id("course", world.courses)
    options = dict(FORMAT_OPTIONS.get(data["format"], {}))
    given = {o["name"]: o["value"] for o in data.get("courseformatoptions", [])}
    if "hiddensections" in data:
        given.setdefault("hiddensections", data["hiddensections"])
    for name in options:
        if name in given:
            options[name] = clean_param(given[name], "int")
    course: Row = {
        "id": courseid,
        "shortname": shortname,
        "fullname": data["fullname"],
        "idnumber": idnumber,
        "categoryid": category["id"],
        "contextid": world.next_context_id(),
        "format": data["format"],
        "visible": int(visible),
        "visibleold": int(visible),
        "enablecompletion": int(enablecompletion),
        "startdate": startdate,
        "enddate": enddate,
        "timecreated": call.now,
        "timemodified": call.now,
        "cacherev": call.now,
        "summary": data.get("summary", ""),
        "summaryformat": data["summaryformat"],
        "showgrades": data["showgrades"],
        "newsitems": data["newsitems"],
        "maxbytes": data["maxbytes"],
        "showreports": data["showreports"],
        "groupmode": data["groupmode"],
        "groupmodeforce": data["groupmodeforce"],
        "defaultgroupingid": data["defaultgroupingid"],
        "completionnotify": data.get("completionnotify", 0),
        "lang": data.get("lang", "")
        if call.has_capability("moodle/course:setforcedlanguage")
        else "",
        "theme": "",
        "marker": 0,
        "legacyfiles": 0,
        "calendartype": "",
        "requested": 0,
        "showactivitydates": COURSE_SETTINGS["showactivitydates"],
        "showcompletionconditions": (
            COURSE_SETTINGS["showcompletionconditions"] if enablecompletion else None
        ),
        "format_options": options,
        "enrolment_instances": _default_enrol_instances(world),
        "course_modules": [],
        "completion_criteria": [],
        "completion_aggregation": [],
        "competencyids": [],
    }
    world.courses[courseid] = course
    world.index_course(course)
    category["coursecount"] = int(category.get("coursecount", 0)) + 1
    return course


def _drop_course(world: World, course: Row) -> None:
    del world.courses[course["id"]]
    for instance in course["enrolment_instances"]:
        world.enrol_instances.pop(instance["id"], None)
        world.instance_course.pop(instance["id"], None)
    category = world.categories[course["categoryid"]]
    category["coursecount"] = int(category["coursecount"]) - 1


def _default_enrol_instances(world: World) -> list[Row]:
    """What enrol_course_updated() adds to a new course: one instance per default plugin."""
    enabled = str(world.settings.get("enrol_plugins_enabled", "manual")).split(",")
    instances: list[Row] = []
    for plugin in enabled:
        if plugin not in DEFAULT_ENROL_INSTANCES:
            continue
        status, archetype = DEFAULT_ENROL_INSTANCES[plugin]
        roleid = _role_by_archetype(world, archetype) if archetype else 0
        instances.append(
            {
                "id": world.next_id("enrol", world.enrol_instances),
                "enrol": plugin,
                "status": status,
                "roleid": roleid,
                "sortorder": len(instances),
                "name": None,
            }
        )
    return instances


def _role_by_archetype(world: World, archetype: str) -> int:
    return min(
        (r["id"] for r in world.roles.values() if r.get("archetype") == archetype), default=0
    )


def _course_contacts(world: World, course: Row, now: int) -> list[dict[str, Any]]:
    """The course contacts: users holding a $CFG->coursecontact role through an active enrolment."""
    roles = {
        rid: role
        for rid, role in world.roles.items()
        if role.get("archetype") in COURSE_CONTACT_ARCHETYPES
    }
    found: dict[int, tuple[Any, ...]] = {}
    for instance in course.get("enrolment_instances", []):
        for userid in world.instance_users.get(instance["id"], ()):
            enrolment = world.enrolments[(instance["id"], userid)]
            held = [rid for rid in enrolment.get("roleids", []) if rid in roles]
            user = world.users.get(userid)
            if user is None or not held or not is_active(world, enrolment, now):
                continue
            order = min(roles[rid].get("sortorder", rid) for rid in held)
            key = (order, str(user["lastname"]).casefold(), str(user["firstname"]).casefold())
            found[userid] = min(found.get(userid, key), key)
    ranked = sorted(found, key=lambda uid: (found[uid], uid))
    return [{"id": uid, "fullname": fullname(world, world.users[uid])} for uid in ranked]


def _format_options(course: Row) -> dict[str, Any]:
    """course_get_format($course)->get_config_for_external()."""
    if course_value(course, "format") not in FORMAT_OPTIONS:
        return {}
    options: dict[str, Any] = dict(FORMAT_OPTIONS[course_value(course, "format")])
    options.update(course.get("format_options", {}))
    # Formats add the site's indentation setting, as a config string.
    options["indentation"] = "1"
    return options


def _course_output(call: Call, course: Row, sortorders: dict[int, int]) -> dict[str, Any] | None:
    """One course of core_course_get_courses_by_field, None when the user may not see it."""
    world = call.world
    canupdate = call.has_capability("moodle/course:update")
    if (
        not course_value(course, "visible")
        and not canupdate
        and not call.has_capability("moodle/course:viewhiddencourses")
    ):
        return None
    category = world.categories.get(int(course["categoryid"]))
    info: dict[str, Any] = {
        "id": course["id"],
        "fullname": format_string(course["fullname"]),
        "displayname": format_string(course["fullname"]),
        "shortname": format_string(course["shortname"]),
        "categoryid": course["categoryid"],
        "categoryname": format_string(category["name"]) if category else "",
        "summary": format_text(
            course_value(course, "summary"), course_value(course, "summaryformat")
        ),
        "summaryformat": FORMAT_HTML,
        "summaryfiles": [],
        "overviewfiles": [],
        "contacts": _course_contacts(world, course, call.now),
        "enrollmentmethods": [
            i["enrol"] for i in course_instances(world, course["id"], enabled=True)
        ],
        "sortorder": sortorders.get(course["id"], 0),
        "showactivitydates": course_value(course, "showactivitydates"),
        "showcompletionconditions": course_value(course, "showcompletionconditions"),
        "courseimage": course_image_url(world, course),
    }
    if course["id"] != int(world.site.get("siteid", 1)) and not can_access_course(call, course):
        # Not allowed in: the public information only.
        return info
    fields = [
        "format",
        "showgrades",
        "newsitems",
        "startdate",
        "enddate",
        "maxbytes",
        "showreports",
        "visible",
        "groupmode",
        "groupmodeforce",
        "defaultgroupingid",
        "enablecompletion",
        "completionnotify",
        "lang",
        "theme",
        "marker",
    ]
    if canupdate:
        fields += [
            "idnumber",
            "legacyfiles",
            "calendartype",
            "timecreated",
            "timemodified",
            "requested",
            "cacherev",
        ]
    info["filters"] = [{"filter": f, "localstate": 0, "inheritedstate": 1} for f in SITE_FILTERS]
    for field in fields:
        info[field] = course_value(course, field)
    info["theme"] = clean_param(info["theme"] or "", "theme")
    info["lang"] = clean_param(info["lang"] or "", "lang")
    options = _format_options(course)
    if options:
        info["courseformatoptions"] = [{"name": k, "value": v} for k, v in options.items()]
    return info


def _courses_by_ids(world: World, value: str) -> Iterable[Row]:
    requested: list[str] = []
    for item in re.sub(r"[^0-9,]", "", value).split(","):
        if item not in requested:
            requested.append(item)
    courses = []
    for item in requested:
        course = course_by_id(world, int(item)) if item else None
        if course is None:
            # util::validate_courses() keeps failed ids as null rows and then writes to them.
            raise ExternalError(
                None, 'Attempt to assign property "contextvalidated" on null', exception="Error"
            )
        courses.append(course)
    return courses


@ws_function("core_course_get_courses_by_field")
def get_courses_by_field(call: Call) -> dict[str, Any]:
    """core_course_external::get_courses_by_field."""
    world = call.world
    field, value = call.params["field"], call.params["value"]
    every = [site_course(world), *world.courses.values()]
    courses: Iterable[Row]
    if not field:
        courses = sorted(every, key=lambda c: c["id"])
    elif field in ("id", "category"):
        wanted = clean_param(value, "int")
        column = "categoryid" if field == "category" else "id"
        courses = sorted((c for c in every if c[column] == wanted), key=lambda c: c["id"])
    elif field == "ids":
        courses = _courses_by_ids(world, str(value))
    elif field in ("shortname", "idnumber"):
        wanted = clean_param(value, "text") if field == "shortname" else value
        courses = sorted(
            (c for c in every if course_value(c, field) == wanted), key=lambda c: c["id"]
        )
    elif field == "sectionid":
        # Course sections are not modelled: no section id matches.
        courses = []
    else:
        raise invalid_parameter(debuginfo="Invalid field name")
    sortorders = course_sortorders(world)
    found = [_course_output(call, course, sortorders) for course in courses]
    return {"courses": [c for c in found if c is not None], "warnings": []}
