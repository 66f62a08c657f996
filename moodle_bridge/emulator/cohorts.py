"""Emulated Moodle functions: cohorts (``core_cohort_*``) and the cohort sync they drive.

Moodle's cohort sync (``enrol_cohort``) listens to cohort events and acts at once, without cron:
:func:`cohort_member_added` and :func:`cohort_member_removed` do what its handlers do, for any
module that changes cohort membership.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from moodle_bridge.emulator.core import Call, Emulator, nopermissions, ws_function
from moodle_bridge.emulator.courses import (
    FORMAT_HTML,
    context_instance,
    course_by_id,
    db_int,
    format_text,
    missing_record,
    validate_format,
)
from moodle_bridge.emulator.enrol import (
    ENROL_INSTANCE_ENABLED,
    ENROL_USER_ACTIVE,
    ENROL_USER_SUSPENDED,
    enrol_user,
    format_string,
    require_course_login,
    unenrol_user,
    update_user_enrol,
)
from moodle_bridge.emulator.external import ExternalError, invalid_parameter
from moodle_bridge.emulator.reportbuilder import collation_key
from moodle_bridge.emulator.world import Row, World

#: enrol_cohort's "unenrolaction" values (ENROL_EXT_REMOVED_*).
UNENROL = "0"
SUSPEND_NO_ROLES = "3"

#: Human names of the cohort capabilities, as nopermissions prints them.
CAN_MANAGE = "Create, delete and move cohorts"
CAN_VIEW = "View site-wide cohorts"
CAN_ASSIGN = "Add and remove cohort members"

COHORT_CONTEXT_LEVELS = ("system", "coursecat")


# --- cohort sync (enrol/cohort/locallib.php, enrol_cohort_handler) --------------------------------
def _sync_instances(world: World, cohortid: int) -> list[Row]:
    return [
        world.enrol_instances[i]
        for i in sorted(world.cohort_sync_instances.get(cohortid, ()))
        if i in world.enrol_instances
    ]


def cohort_member_added(
    world: World, cohortid: int, userid: int, *, now: int, modifierid: int
) -> None:
    """``member_added``: enrol the new member in every course synced with the cohort."""
    if "cohort" not in str(world.settings.get("enrol_plugins_enabled", "")).split(","):
        return
    for instance in _sync_instances(world, cohortid):
        if instance["status"] != ENROL_INSTANCE_ENABLED:
            continue
        # A role that no longer exists is not assigned; the user is still enrolled.
        roleid = instance["roleid"] if instance.get("roleid") in world.roles else 0
        enrol_user(
            world,
            instance,
            userid,
            roleid,
            now=now,
            modifierid=modifierid,
            status=ENROL_USER_ACTIVE,
        )


def cohort_member_removed(
    world: World, cohortid: int, userid: int, *, now: int, modifierid: int
) -> None:
    """``member_removed``: unenrol (or suspend, per enrol_cohort_unenrolaction) at once."""
    action = str(world.settings.get("enrol_cohort_unenrolaction", UNENROL))
    for instance in _sync_instances(world, cohortid):
        row = world.enrolments.get((instance["id"], userid))
        if row is None:
            continue
        if action == UNENROL:
            unenrol_user(world, instance, userid)
        elif row["status"] != ENROL_USER_SUSPENDED:
            update_user_enrol(row, now=now, modifierid=modifierid, status=ENROL_USER_SUSPENDED)
            if action == SUSPEND_NO_ROLES:
                row["roleids"] = []


def _cohort_deleted(world: World, cohortid: int) -> None:
    """``deleted``: sync instances go (or are disabled without roles, per unenrolaction)."""
    action = str(world.settings.get("enrol_cohort_unenrolaction", UNENROL))
    for instance in _sync_instances(world, cohortid):
        if action == SUSPEND_NO_ROLES:
            for userid in list(world.instance_users.get(instance["id"], ())):
                world.enrolments[(instance["id"], userid)]["roleids"] = []
            instance["status"] = 1
            continue
        for userid in list(world.instance_users.get(instance["id"], ())):
            unenrol_user(world, instance, userid)
        course = world.courses[world.instance_course[instance["id"]]]
        course["enrolment_instances"].remove(instance)
        world.enrol_instances.pop(instance["id"])
        world.instance_course.pop(instance["id"])
        world.cohort_sync_instances[cohortid].remove(instance["id"])


# --- Moodle's errors and lookups ---------------------------------------------------------------
def _read_error(value: Any) -> ExternalError:
    """What PostgreSQL makes of a non-number compared with a bigint column."""
    return ExternalError(
        "dmlreadexception",
        "Error reading from database",
        exception="dml_read_exception",
        debuginfo=f'ERROR:  invalid input syntax for type bigint: "{value}"',
    )


def _get_cohort(world: World, cohortid: int) -> Row:
    """``$DB->get_record('cohort', ['id' => $id], '*', MUST_EXIST)``."""
    cohort = world.cohorts.get(cohortid)
    if cohort is None:
        raise missing_record(
            table="cohort", sql="SELECT * FROM {cohort} WHERE id = ?", params=[cohortid]
        )
    return cohort


def _cohort_context(world: World, cohort: Row) -> tuple[str, int]:
    """The cohort's context, which must be the system or a category."""
    context = context_instance(world, int(cohort["contextid"]))
    if context is None or context[0] not in COHORT_CONTEXT_LEVELS:
        raise invalid_parameter(debuginfo="Invalid context")
    return context


def _require_any(call: Call, capabilities: tuple[str, ...], name: str) -> None:
    if not any(call.has_capability(c) for c in capabilities):
        raise nopermissions(capability_name=name)


def _category_context_id(world: World, column: str, value: Any) -> int | None:
    """The context of the category whose ``column`` (id or idnumber) is ``value``."""
    if column == "id":
        wanted = db_int(value)
        if wanted is None:
            raise _read_error(value)
        category = world.categories.get(wanted)
    else:
        category = next((c for c in world.categories.values() if c.get("idnumber") == value), None)
    return int(category["contextid"]) if category else None


def _output(cohort: Row) -> dict[str, Any]:
    """A cohort as the get and search functions return it."""
    return {
        "id": cohort["id"],
        "name": format_string(cohort["name"]),
        "idnumber": cohort.get("idnumber"),
        "description": format_text(
            cohort.get("description"), cohort.get("descriptionformat", FORMAT_HTML)
        ),
        "descriptionformat": FORMAT_HTML,
        "visible": cohort.get("visible", 1),
        # A theme only shows when $CFG->allowcohortthemes is on, which it is not.
        "theme": None if cohort.get("theme") else "",
        "customfields": [],
    }


# --- core_cohort_create_cohorts / update / delete -----------------------------------------------
def _context_for_categorytype(world: World, categorytype: dict[str, Any], notfound: str) -> int:
    kind, value = categorytype["type"], categorytype["value"]
    if kind not in ("idnumber", "id", "system"):
        raise invalid_parameter(debuginfo=f"category type must be id, idnumber or system:{kind}")
    if kind == "system":
        return int(world.site.get("system_contextid", 1))
    contextid = _category_context_id(world, kind, value)
    if contextid is None:
        raise invalid_parameter(debuginfo=notfound.format(kind=kind, value=value))
    return contextid


@ws_function("core_cohort_create_cohorts")
def create_cohorts(call: Call) -> list[dict[str, Any]]:
    """core_cohort_external::create_cohorts: all or nothing."""
    world = call.world
    created: list[Row] = []
    try:
        for data in call.params["cohorts"]:
            created.append(_create_cohort(call, data))
    except ExternalError:
        # Moodle rolls the whole batch back (the ids it took stay used).
        for cohort in created:
            world.unindex_cohort(cohort)
            del world.cohorts[cohort["id"]]
        raise
    return [_output(c) for c in created]


def _create_cohort(call: Call, data: dict[str, Any]) -> Row:
    world = call.world
    contextid = _context_for_categorytype(
        world, data["categorytype"], "category not exists: category {kind} = {value}"
    )
    idnumber = data["idnumber"]
    if idnumber in world.cohort_idnumber_index:
        raise invalid_parameter(debuginfo=f"record already exists: idnumber={idnumber}")
    call.require_capability("moodle/cohort:manage", CAN_MANAGE)
    validate_format(int(data["descriptionformat"]))
    # cohort_add_cohort(); themes are off ($CFG->allowcohortthemes) and no cohort custom
    # fields are defined, so both are dropped.
    cohort: Row = {
        "id": world.next_id("cohort", world.cohorts),
        "idnumber": idnumber,
        "name": data["name"],
        "contextid": contextid,
        "description": data.get("description", ""),
        "descriptionformat": data["descriptionformat"],
        "visible": int(data.get("visible", True)),
        "component": "",
        "theme": "",
        "timecreated": call.now,
        "timemodified": call.now,
        "members": [],
    }
    world.cohorts[cohort["id"]] = cohort
    world.index_cohort(cohort)
    return cohort


@ws_function("core_cohort_update_cohorts")
def update_cohorts(call: Call) -> None:
    """core_cohort_external::update_cohorts: all or nothing (idnumbers are not checked)."""
    world = call.world
    saved: dict[int, Row] = {}
    try:
        for data in call.params["cohorts"]:
            _update_cohort(call, data, saved)
    except ExternalError:
        # Moodle rolls the whole batch back.
        for cohortid, values in saved.items():
            _set_idnumber(world, world.cohorts[cohortid], values.get("idnumber"))
            world.cohorts[cohortid].update(values)
        raise


def _set_idnumber(world: World, cohort: Row, idnumber: Any) -> None:
    old = cohort.get("idnumber")
    if old is not None and world.cohort_idnumber_index.get(old) == cohort["id"]:
        del world.cohort_idnumber_index[old]
    cohort["idnumber"] = idnumber
    if idnumber is not None:
        world.cohort_idnumber_index[idnumber] = cohort["id"]


def _update_cohort(call: Call, data: dict[str, Any], saved: dict[int, Row]) -> None:
    world = call.world
    if not str(data["name"]).strip():
        raise invalid_parameter(debuginfo="Invalid cohort name")
    cohort = _get_cohort(world, data["id"])
    call.require_capability("moodle/cohort:manage", CAN_MANAGE)
    contextid = _context_for_categorytype(
        world, data["categorytype"], "category not exists: category={value}"
    )
    if contextid != cohort["contextid"]:
        _cohort_context(world, {"contextid": contextid})
    if data.get("description"):
        validate_format(int(data["descriptionformat"]))
    saved.setdefault(cohort["id"], {k: v for k, v in cohort.items() if k != "members"})
    _set_idnumber(world, cohort, data["idnumber"])
    cohort.update(
        name=data["name"],
        contextid=contextid,
        timemodified=call.now,
        descriptionformat=data["descriptionformat"],
    )
    for key in ("description", "visible"):
        if key in data:
            cohort[key] = int(data[key]) if key == "visible" else data[key]


@ws_function("core_cohort_delete_cohorts")
def delete_cohorts(call: Call) -> None:
    """core_cohort_external::delete_cohorts: all checked first, as the batch is atomic."""
    world = call.world
    cohorts: dict[int, Row] = {}
    for cohortid in call.params["cohortids"]:
        if cohortid in cohorts:
            # Already deleted earlier in the batch: Moodle's read fails and rolls it all back.
            raise missing_record(
                table="cohort", sql="SELECT * FROM {cohort} WHERE id = ?", params=[cohortid]
            )
        cohort = _get_cohort(world, cohortid)
        _cohort_context(world, cohort)
        call.require_capability("moodle/cohort:manage", CAN_MANAGE)
        cohorts[cohortid] = cohort
    for cohort in cohorts.values():
        # cohort_delete_cohort(): the members go without member events, then "deleted" fires.
        world.unindex_cohort(cohort)
        del world.cohorts[cohort["id"]]
        _cohort_deleted(world, cohort["id"])


# --- core_cohort_get_cohorts / search_cohorts ---------------------------------------------------
@ws_function("core_cohort_get_cohorts")
def get_cohorts(call: Call) -> list[dict[str, Any]]:
    """core_cohort_external::get_cohorts: the given cohorts (all when none), unknown ids skipped."""
    world = call.world
    wanted = call.params["cohortids"]
    ids = sorted(set(wanted)) if wanted else sorted(world.cohorts)
    result = []
    for cohortid in ids:
        cohort = world.cohorts.get(cohortid)
        if cohort is None:
            continue
        _cohort_context(world, cohort)
        _require_any(call, ("moodle/cohort:manage", "moodle/cohort:view"), CAN_VIEW)
        result.append(_output(cohort))
    return result


def _context_from_params(call: Call, param: dict[str, Any]) -> tuple[str, int, int]:
    """``get_context_from_params()`` then ``validate_context()``: (level, instance, context id)."""
    world = call.world
    if param["contextid"]:
        contextid = int(param["contextid"])
        found = context_instance(world, contextid)
        if found is None:
            raise invalid_parameter(debuginfo="Context does not exist")
        level, instanceid = found
    elif param["contextlevel"]:
        level, instanceid = str(param["contextlevel"]), int(param["instanceid"])
        contextid = _context_id_of(world, level, instanceid)
    else:
        raise invalid_parameter(
            debuginfo="Missing parameters, please provide either context "
            "level with instance id or contextid"
        )
    course = world.courses.get(instanceid) if level == "course" else None
    if course is not None:
        require_course_login(call, course)
    return level, instanceid, contextid


#: What ``context_<level>::instance()`` reads for each level: table and fields.
_CONTEXT_TABLES = {
    "coursecat": ("course_categories", "id,parent"),
    "course": ("course", "id,category"),
    "user": ("user", "id"),
    "module": ("course_modules", "id,course"),
    "block": ("block_instances", "id,parentcontextid"),
}


def _context_id_of(world: World, level: str, instanceid: int) -> int:
    """``context_<level>::instance($instanceid)``, which must exist."""
    if level == "system":
        return int(world.site.get("system_contextid", 1))
    if level not in _CONTEXT_TABLES:
        raise ExternalError(None, f'Class "context_{level}" not found', exception="Error")
    row: Row | None = {
        "coursecat": world.categories.get(instanceid),
        "course": course_by_id(world, instanceid),
        "user": world.users.get(instanceid),
    }.get(level)
    if row is None or row.get("contextid") is None:
        table, fields = _CONTEXT_TABLES[level]
        raise missing_record(
            table=table, sql=f"SELECT {fields} FROM {{{table}}} WHERE id = ?", params=[instanceid]
        )
    return int(row["contextid"])


def _parent_contextids(world: World, level: str, instanceid: int) -> list[int]:
    """``get_parent_context_ids()``: the system, then the categories down to the context."""
    if level == "system":
        return []
    categories: list[str] = []
    if level == "coursecat" and instanceid in world.categories:
        categories = world.categories[instanceid]["path"].split("/")[1:-1]
    elif level == "course":
        course = course_by_id(world, instanceid)
        category = world.categories.get(int(course["categoryid"])) if course else None
        categories = category["path"].split("/")[1:] if category else []
    return [int(world.site.get("system_contextid", 1))] + [
        int(world.categories[int(c)]["contextid"]) for c in categories if int(c) in world.categories
    ]


def _matches_query(cohort: Row, query: str) -> bool:
    """``cohort_get_search_query()``: case-insensitive LIKE on name, idnumber, description."""
    if query in ("", "0"):  # PHP's empty()
        return True
    needle = query.casefold()
    return any(
        needle in str(cohort.get(f)).casefold()
        for f in ("name", "idnumber", "description")
        if cohort.get(f) is not None
    )


def _ordered(cohorts: list[Row], offset: int, limit: int) -> list[Row]:
    """ORDER BY name, idnumber with the database's LIMIT/OFFSET (0 is no limit)."""
    ranked = sorted(
        cohorts,
        key=lambda c: (collation_key(c.get("name")), collation_key(c.get("idnumber")), c["id"]),
    )
    offset = max(offset, 0)
    return ranked[offset : offset + limit] if limit > 0 else ranked[offset:]


@ws_function("core_cohort_search_cohorts")
def search_cohorts(call: Call) -> dict[str, Any]:
    """core_cohort_external::search_cohorts."""
    world = call.world
    params = call.params
    level, instanceid, contextid = _context_from_params(call, params["context"])
    if not call.has_capability("moodle/cohort:manage"):
        call.require_capability("moodle/cohort:view", CAN_VIEW)
    query, includes = str(params["query"]), params["includes"]
    limitfrom, limitnum = int(params["limitfrom"]), int(params["limitnum"])
    matching = [c for c in world.cohorts.values() if _matches_query(c, query)]
    # cohort_get_cohorts() and cohort_get_all_cohorts() take limitfrom as a page number.
    if includes in ("self", "parents"):
        found = _ordered(
            [c for c in matching if c["contextid"] == contextid], limitfrom * limitnum, limitnum
        )
        if includes == "parents" and level != "system":
            found += _available_cohorts(call, matching, level, instanceid, limitfrom, limitnum)
    elif includes == "all":
        found = _ordered(matching, limitfrom * limitnum, limitnum)
    else:
        raise ExternalError(
            errorcode="codingerror",
            message="Coding error detected, it must be fixed by a programmer: "
            "Invalid parameter value for 'includes'.",
            exception="core\\exception\\coding_exception",
        )
    # PHP's array union: a cohort found twice keeps its first place.
    unique: dict[int, Row] = {}
    for cohort in found:
        unique.setdefault(cohort["id"], cohort)
    return {"cohorts": [_output(c) for c in unique.values()]}


def _available_cohorts(
    call: Call, matching: list[Row], level: str, instanceid: int, offset: int, limit: int
) -> list[Row]:
    """``cohort_get_available_cohorts()``: cohorts of the parent contexts the user may see."""
    parents = _parent_contextids(call.world, level, instanceid)
    anyvisible = set(parents) if call.has_capability("moodle/cohort:view") else set()
    onlyvisible = set(parents) - anyvisible
    usable = [
        c
        for c in matching
        if c["contextid"] in anyvisible or (c["contextid"] in onlyvisible and c.get("visible", 1))
    ]
    return _ordered(usable, offset, limit)


# --- members -----------------------------------------------------------------------------------
@ws_function("core_cohort_get_cohort_members")
def get_cohort_members(call: Call) -> list[dict[str, Any]]:
    """core_cohort_external::get_cohort_members: member ids ordered by lastname, firstname."""
    world = call.world
    result = []
    for cohortid in call.params["cohortids"]:
        cohort = _get_cohort(world, cohortid)
        _cohort_context(world, cohort)
        _require_any(call, ("moodle/cohort:manage", "moodle/cohort:view"), CAN_VIEW)
        members = [
            world.users[uid] for uid in world.cohort_member_sets[cohortid] if uid in world.users
        ]
        members.sort(
            key=lambda u: (
                collation_key(u.get("lastname")),
                collation_key(u.get("firstname")),
                u["id"],
            )
        )
        result.append({"cohortid": cohortid, "userids": [u["id"] for u in members]})
    return result


def _find_cohort(world: World, kind: str, value: Any) -> int | None:
    if kind == "idnumber":
        return world.cohort_idnumber_index.get(value)
    cohortid = db_int(value)
    if cohortid is None:
        raise _read_error(value)
    return cohortid if cohortid in world.cohorts else None


def _find_user(world: World, kind: str, value: Any) -> int | None:
    if kind == "username":
        user = world.user_by_username(str(value))
        return int(user["id"]) if user else None
    userid = db_int(value)
    if userid is None:
        raise _read_error(value)
    return userid if userid in world.users else None


def _member_problem(
    world: World, member: dict[str, Any], pending: Container[tuple[int, int]]
) -> tuple[str, str] | tuple[int, int]:
    """(warningcode, message) for an item Moodle skips, else the (cohortid, userid) to add."""
    ctype, cvalue = member["cohorttype"]["type"], member["cohorttype"]["value"]
    utype, uvalue = member["usertype"]["type"], member["usertype"]["value"]
    if ctype not in ("id", "idnumber"):
        return ("1", f"invalid parameter: cohortype={ctype}")
    if utype not in ("id", "username"):
        return ("1", f"invalid parameter: usertype={utype}")
    try:
        cohortid = _find_cohort(world, ctype, cvalue)
        if cohortid is None:
            return ("2", f"cohort {ctype}={cvalue} not exists")
        userid = _find_user(world, utype, uvalue)
    except ExternalError as error:
        # Moodle rethrows anything thrown here as moodle_exception('Error', 'cohort'), a string
        # that does not exist, hence the "component/code" message.
        raise ExternalError(errorcode="Error", message="cohort/Error") from error
    if userid is None:
        return ("2", f"user {utype}={uvalue} not exists")
    if userid in world.cohort_member_sets[cohortid] or (cohortid, userid) in pending:
        return ("3", f"record already exists: cohort({ctype}={cvalue} {utype}={uvalue})")
    context = context_instance(world, int(world.cohorts[cohortid]["contextid"]))
    if context is None or context[0] not in COHORT_CONTEXT_LEVELS:
        return ("1", f"Invalid context: {context[0] if context else ''}")
    return (cohortid, userid)


@ws_function("core_cohort_add_cohort_members")
def add_cohort_members(call: Call) -> dict[str, Any]:
    """core_cohort_external::add_cohort_members: per item, skipped items become warnings.

    An exception (no capability, a database error) rolls the whole batch back, so the members
    are only added once every item has been looked at.
    """
    world = call.world
    warnings = []
    pending: dict[tuple[int, int], None] = {}
    for member in call.params["members"]:
        outcome = _member_problem(world, member, pending)
        if isinstance(outcome[0], str):
            warnings.append({"warningcode": outcome[0], "message": outcome[1]})
            continue
        _require_any(call, ("moodle/cohort:manage", "moodle/cohort:assign"), CAN_ASSIGN)
        pending[(int(outcome[0]), int(outcome[1]))] = None
    for cohortid, userid in pending:
        world.add_cohort_member(cohortid, userid)
        cohort_member_added(world, cohortid, userid, now=call.now, modifierid=call.userid)
    return {"warnings": warnings}


@ws_function("core_cohort_delete_cohort_members")
def delete_cohort_members(call: Call) -> None:
    """core_cohort_external::delete_cohort_members: atomic, so every item is checked first."""
    world = call.world
    removals = []
    mnethostid = str(world.settings.get("mnet_localhost_id", "1"))
    for member in call.params["members"]:
        cohort = _get_cohort(world, member["cohortid"])
        if member["userid"] not in world.users:
            raise missing_record(
                table="user",
                sql="SELECT * FROM {user} WHERE id = ? AND deleted = ? AND mnethostid = ?",
                params=[member["userid"], 0, mnethostid],
            )
        _cohort_context(world, cohort)
        _require_any(call, ("moodle/cohort:manage", "moodle/cohort:assign"), CAN_ASSIGN)
        removals.append((cohort["id"], member["userid"]))
    for cohortid, userid in removals:
        # cohort_remove_member() fires its event even for a user who was not a member.
        world.remove_cohort_member(cohortid, userid)
        cohort_member_removed(world, cohortid, userid, now=call.now, modifierid=call.userid)


def link_cohort_to_course(
    emulator: Emulator, courseid: int, cohortid: int, roleid: int = 5
) -> None:
    """Add a cohort-sync enrolment instance, as an administrator does in Moodle's UI (no web
    service can), and enrol the cohort's current members at once (test and demo hook)."""
    world = emulator.world
    with emulator.lock:
        course = world.courses[courseid]
        cohort = world.cohorts[cohortid]
        instances = course.setdefault("enrolment_instances", [])
        instance = {
            "id": world.next_id("enrol", world.enrol_instances),
            "enrol": "cohort",
            "status": ENROL_INSTANCE_ENABLED,
            "roleid": roleid,
            "sortorder": len(instances),
            "name": "",
            "cohortid": cohortid,
            "cohort_idnumber": cohort.get("idnumber"),
            "groupid": 0,
        }
        instances.append(instance)
        world.index_course(course)
        for userid in sorted(world.cohort_member_sets.get(cohortid, set())):
            cohort_member_added(
                world,
                cohortid,
                userid,
                now=emulator.now(),
                modifierid=world.username_index.get("admin", 2),
            )
