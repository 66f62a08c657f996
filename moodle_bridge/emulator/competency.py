"""Emulated Moodle functions: competency frameworks and competencies (``core_competency_*``,
``tool_lp_list_courses_using_competency``).

Answers come from the seeded frameworks, competencies and the courses' ``competencyids`` (the
competency_coursecomp links, in that order), with Moodle's defaults for the persistent fields
the seed leaves out. Capability checks follow ``core_competency\\api``: viewing frameworks and
course competencies is granted to every logged-in user by the Authenticated user role.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moodle_bridge.emulator.completion import course_progress
from moodle_bridge.emulator.core import Call, nopermissions, ws_function
from moodle_bridge.emulator.courses import (
    FORMAT_HTML,
    context_instance,
    course_value,
    db_int,
    format_text,
    missing_record,
)
from moodle_bridge.emulator.enrol import format_string, get_course, require_course_login
from moodle_bridge.emulator.external import ExternalError, invalid_parameter
from moodle_bridge.emulator.reportbuilder import collation_key, user_has_capability
from moodle_bridge.emulator.world import Row, World

_VIEW_CAPABILITIES = ("moodle/competency:competencyview", "moodle/competency:competencymanage")
_COURSE_VIEW_CAPABILITIES = (
    "moodle/competency:coursecompetencyview",
    "moodle/competency:coursecompetencymanage",
)
# competency::RULE_OUTCOME_NONE and course_competency::RULE_OUTCOME_EVIDENCE.
_RULE_OUTCOME_NONE, _RULE_OUTCOME_EVIDENCE = 0, 1

_FRAMEWORK_COLUMNS = (
    "id", "shortname", "idnumber", "description", "descriptionformat", "scaleid",
    "scaleconfiguration", "visible", "contextid", "taxonomies", "timecreated", "timemodified",
    "usermodified",
)  # fmt: skip
_COMPETENCY_COLUMNS = (
    "id", "shortname", "idnumber", "description", "descriptionformat", "sortorder", "parentid",
    "path", "ruleoutcome", "ruletype", "ruleconfig", "scaleid", "scaleconfiguration",
    "competencyframeworkid", "timecreated", "timemodified", "usermodified",
)  # fmt: skip
_INTEGER_COLUMNS = frozenset(
    {"id", "descriptionformat", "sortorder", "parentid", "ruleoutcome", "scaleid", "visible",
     "contextid", "competencyframeworkid", "timecreated", "timemodified", "usermodified"}
)  # fmt: skip
#: The columns external list_competencies/count_competencies accept as filters.
_FILTER_COLUMNS = (
    "id", "shortname", "description", "sortorder", "idnumber", "parentid", "competencyframeworkid",
)  # fmt: skip


# --- errors ------------------------------------------------------------------------------------
def _not_enabled() -> ExternalError:
    return ExternalError("competenciesarenotenabled", "Competencies are not enabled.")


def _read_error() -> ExternalError:
    """What PostgreSQL's refusal of a bad ORDER BY column or a bad integer becomes."""
    return ExternalError(
        "dmlreadexception", "Error reading from database", exception="dml_read_exception"
    )


def _bad_includes() -> ExternalError:
    return ExternalError(
        "codingerror",
        "Coding error detected, it must be fixed by a programmer: "
        "Invalid parameter value for 'includes'.",
        exception="coding_exception",
    )


def _missing(recordid: int, table: str, fields: str = "*") -> ExternalError:
    """The ``dml_missing_record_exception`` of reading a record by id."""
    return missing_record(table, f"SELECT {fields} FROM {{{table}}} WHERE id = ?", [recordid])


def _no_context() -> ExternalError:
    return invalid_parameter("Context does not exist")


# --- access checks ------------------------------------------------------------------------------
def _require_enabled(world: World) -> None:
    """``api::require_enabled()``."""
    if str(world.settings.get("competency_enabled", "1")) in ("", "0"):
        raise _not_enabled()


def _has_any(call: Call, capabilities: tuple[str, ...]) -> bool:
    return any(user_has_capability(call, c) for c in capabilities)


def _cannot_view_frameworks() -> ExternalError:
    return nopermissions("View competency frameworks")


def _require_view(call: Call) -> None:
    """The framework read check of ``api``: competencyview or competencymanage."""
    if not _has_any(call, _VIEW_CAPABILITIES):
        raise _cannot_view_frameworks()


def _cannot_view_course_competencies() -> ExternalError:
    return nopermissions("View course competencies")


def _require_course_view(call: Call) -> None:
    """The course competency check of ``api``: coursecompetencyview or coursecompetencymanage."""
    if not _has_any(call, _COURSE_VIEW_CAPABILITIES):
        raise _cannot_view_course_competencies()


# --- contexts -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Context:
    """A context: its id, level ("system", "coursecat", "course", "user") and instance id."""

    id: int
    level: str
    instanceid: int


def _system(world: World) -> _Context:
    return _Context(int(world.site.get("system_contextid", 1)), "system", 0)


def _context(world: World, contextid: int) -> _Context | None:
    found = context_instance(world, contextid)
    return None if found is None else _Context(contextid, *found)


def _context_from_params(world: World, param: dict[str, Any]) -> _Context | None:
    """``external_api::get_context_from_params()``; a missing context is None (IGNORE_MISSING)."""
    if param.get("contextid"):
        return _context(world, int(param["contextid"]))
    level = param.get("contextlevel") or ""
    if not level:
        msg = (
            "Missing parameters, please provide either context level with instance id or contextid"
        )
        raise invalid_parameter(msg)
    if level not in ("system", "user", "coursecat", "course", "module", "block"):
        msg = f"Invalid context level = {level}"
        raise invalid_parameter(msg)
    if level == "system":
        return _system(world)
    table = {"coursecat": world.categories, "course": world.courses, "user": world.users}
    row = table.get(level, {}).get(int(param.get("instanceid") or 0))
    contextid = None if row is None else row.get("contextid")
    return None if contextid is None else _context(world, int(contextid))


def _category_path(world: World, categoryid: int) -> list[int]:
    """The context ids from the system down to a category's context."""
    category = world.categories[categoryid]
    chain = [int(c) for c in str(category.get("path", f"/{categoryid}")).split("/") if c]
    categories = [int(world.categories[c]["contextid"]) for c in chain if c in world.categories]
    return [_system(world).id, *categories]


def _context_path(world: World, context: _Context) -> list[int]:
    """The context ids from the system down to ``context`` (Moodle's context.path)."""
    if context.level == "coursecat":
        return _category_path(world, context.instanceid)
    if context.level == "course":
        categoryid = int(world.courses[context.instanceid]["categoryid"])
        return [*_category_path(world, categoryid), context.id]
    system = _system(world).id
    return [context.id] if context.id == system else [system, context.id]


def _related_context_ids(call: Call, context: _Context, includes: str) -> set[int]:
    """``api::get_related_contexts()``: the context and its category children or its parents,
    kept where the user may view frameworks."""
    if includes not in ("children", "parents", "self"):
        raise _bad_includes()
    path = _context_path(call.world, context)
    ids = {context.id}
    if includes == "children":
        for categoryid in call.world.categories:
            below = _category_path(call.world, categoryid)
            if len(below) > len(path) and below[: len(path)] == path:
                ids.add(below[-1])
    elif includes == "parents":
        ids.update(path[:-1])
    return ids if _has_any(call, _VIEW_CAPABILITIES) else set()


def _validate_context(call: Call, context: _Context | None) -> _Context:
    """``external_api::validate_context()``: an existing context the user may enter."""
    if context is None:
        raise _no_context()
    if context.level == "course":
        require_course_login(call, call.world.courses[context.instanceid])
    return context


def _context_name(world: World, context: _Context, *, prefix: bool) -> str:
    """``context::get_context_name()`` of the contexts a framework can live in."""
    if context.level == "coursecat":
        name = format_string(world.categories[context.instanceid]["name"])
        return f"Category: {name}" if prefix else name
    return "System"


# --- persistents --------------------------------------------------------------------------------
def _framework(world: World, frameworkid: int) -> Row:
    framework = world.competency_frameworks.get(frameworkid)
    if framework is None:
        raise _missing(frameworkid, "competency_framework")
    return framework


def _competency(world: World, competencyid: int) -> Row:
    competency = world.competencies.get(competencyid)
    if competency is None:
        raise _missing(competencyid, "competency")
    return competency


def _framework_context(world: World, framework: Row) -> _Context:
    """The framework's context: the system or a category (the only levels Moodle allows)."""
    context = _context(world, int(framework["contextid"]))
    return context if context is not None else _system(world)


def _competency_context(world: World, competency: Row) -> _Context:
    return _framework_context(world, _framework(world, int(competency["competencyframeworkid"])))


def _framework_fields(framework: Row) -> dict[str, Any]:
    """A competency_framework row with the table's defaults."""
    return {
        "shortname": framework["shortname"],
        "idnumber": framework["idnumber"],
        "description": framework.get("description", ""),
        "descriptionformat": framework.get("descriptionformat", FORMAT_HTML),
        "visible": framework.get("visible", 1),
        "scaleid": framework["scaleid"],
        "scaleconfiguration": framework["scaleconfiguration"],
        "contextid": framework["contextid"],
        "taxonomies": framework.get("taxonomies", ""),
        "id": framework["id"],
        "timecreated": framework.get("timecreated", 0),
        "timemodified": framework.get("timemodified", framework.get("timecreated", 0)),
        "usermodified": framework.get("usermodified", 0),
    }


def _competency_fields(world: World, competency: Row) -> dict[str, Any]:
    """A competency row with the table's defaults; times and author default to the framework's.

    The seed leaves them out: its competencies were made with their framework, by its author.
    """
    framework = _framework_fields(_framework(world, int(competency["competencyframeworkid"])))
    created = competency.get("timecreated", framework["timecreated"])
    return {
        "shortname": competency["shortname"],
        "idnumber": competency["idnumber"],
        "description": competency.get("description", ""),
        "descriptionformat": competency.get("descriptionformat", FORMAT_HTML),
        "sortorder": competency.get("sortorder", 0),
        "parentid": competency.get("parentid", 0),
        "path": competency.get("path", "/0/"),
        "ruleoutcome": competency.get("ruleoutcome", _RULE_OUTCOME_NONE),
        "ruletype": competency.get("ruletype"),
        "ruleconfig": competency.get("ruleconfig"),
        "scaleid": competency.get("scaleid"),
        "scaleconfiguration": competency.get("scaleconfiguration"),
        "competencyframeworkid": competency["competencyframeworkid"],
        "id": competency["id"],
        "timecreated": created,
        "timemodified": competency.get("timemodified", created),
        "usermodified": competency.get("usermodified", framework["usermodified"]),
    }


def _competency_record(world: World, competency: Row) -> dict[str, Any]:
    """``competency_exporter``: the fields, the description formatted as the external API does."""
    record = _competency_fields(world, competency)
    record["description"] = format_text(record["description"], record["descriptionformat"])
    record["descriptionformat"] = FORMAT_HTML
    return record


def _framework_record(call: Call, framework: Row) -> dict[str, Any]:
    """``competency_framework_exporter``."""
    world = call.world
    record = _framework_fields(framework)
    record["description"] = format_text(record["description"], record["descriptionformat"])
    record["descriptionformat"] = FORMAT_HTML
    context = _framework_context(world, framework)
    record["canmanage"] = user_has_capability(call, "moodle/competency:competencymanage")
    record["competenciescount"] = sum(
        1
        for c in world.competencies.values()
        if int(c["competencyframeworkid"]) == int(framework["id"])
    )
    record["contextname"] = _context_name(world, context, prefix=True)
    record["contextnamenoprefix"] = _context_name(world, context, prefix=False)
    return record


def _links(world: World, owners: list[tuple[str, int, Row]]) -> list[Row]:
    """Link rows (competency_coursecomp, competency_modulecomp) from ``competencyids`` lists.

    ``owners`` are (owner field, owner id, row holding ``competencyids``) in the order the
    seeding step inserted the links, which gives their ids; a link's times and author are its
    competency's. Links default to RULE_OUTCOME_EVIDENCE.
    """
    links: list[Row] = []
    for field, ownerid, holder in owners:
        for sortorder, competencyid in enumerate(holder.get("competencyids", [])):
            competency = _competency_fields(world, _competency(world, int(competencyid)))
            links.append(
                {
                    field: ownerid,
                    "competencyid": int(competencyid),
                    "sortorder": sortorder,
                    "ruleoutcome": _RULE_OUTCOME_EVIDENCE,
                    "overridegrade": False,
                    "id": len(links) + 1,
                    "timecreated": competency["timecreated"],
                    "timemodified": competency["timemodified"],
                    "usermodified": competency["usermodified"],
                }
            )
    return links


def _course_links(world: World) -> list[Row]:
    """Every competency_coursecomp row, courses in id order."""
    return _links(world, [("courseid", cid, world.courses[cid]) for cid in sorted(world.courses)])


def _module_links(world: World) -> list[Row]:
    """Every competency_modulecomp row (a course module's ``competencyids``), in course order."""
    modules = [
        ("cmid", int(cm["cmid"]), cm)
        for cid in sorted(world.courses)
        for cm in world.courses[cid].get("course_modules", [])
    ]
    return _links(world, modules)


def _course_module(world: World, cmid: int) -> tuple[Row, Row]:
    """(course, course module) of ``cmid``, as ``context_module::instance()`` reads it."""
    for course in world.courses.values():
        for cm in course.get("course_modules", []):
            if int(cm["cmid"]) == cmid:
                return course, cm
    raise _missing(cmid, "course_modules", "id,course")


# --- queries ------------------------------------------------------------------------------------
def _check_order(order: str) -> None:
    if order not in ("", "ASC", "DESC"):
        msg = "Invalid order param. Must be ASC, DESC or empty."
        raise invalid_parameter(msg)


def _sorted_page(
    records: list[dict[str, Any]],
    columns: tuple[str, ...],
    sort: str,
    order: str,
    skip: int,
    limit: int,
) -> list[dict[str, Any]]:
    """``ORDER BY $sort $order`` with ``$skip``/``$limit`` as Moodle's DML applies them."""
    if sort:
        if sort not in columns:
            raise _read_error()
        records = sorted(
            records,
            key=lambda r: (
                r[sort] is None,
                collation_key(r[sort]) if isinstance(r[sort], str) else (r[sort] or 0),
            ),
            reverse=order == "DESC",
        )
    skip, limit = max(skip, 0), max(limit, 0)
    return records[skip : skip + limit] if limit else records[skip:]


def _matches_filters(record: dict[str, Any], filters: dict[str, str]) -> bool:
    """``$DB->get_records($table, $filters)``: equality, integers cast as PostgreSQL does."""
    for column, value in filters.items():
        actual = record.get(column)
        if column in _INTEGER_COLUMNS:
            wanted = db_int(value)
            if wanted is None:
                raise _read_error()
            if actual is None or int(actual) != wanted:
                return False
        elif actual is None or str(actual) != value:
            return False
    return True


def _safe_filters(filters: list[dict[str, Any]]) -> dict[str, str]:
    """The external functions' filter check; a repeated column keeps its last value."""
    safe: dict[str, str] = {}
    for item in filters:
        if item["column"] not in _FILTER_COLUMNS:
            msg = "Filter column was invalid"
            raise invalid_parameter(msg)
        safe[item["column"]] = item["value"]
    return safe


def _filtered_competencies(call: Call, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What list_competencies and count_competencies select, after their context checks."""
    world = call.world
    safe = _safe_filters(filters)
    _require_enabled(world)
    context = _system(world)
    if "competencyframeworkid" in safe:
        wanted = db_int(safe["competencyframeworkid"])
        if wanted is None:
            raise _read_error()
        context = _framework_context(world, _framework(world, wanted))
    _require_view(call)
    _validate_context(call, context)
    rows = [_competency_fields(world, c) for c in world.competencies.values()]
    return [r for r in sorted(rows, key=lambda r: int(r["id"])) if _matches_filters(r, safe)]


# --- web service functions ----------------------------------------------------------------------
@ws_function("core_competency_list_competency_frameworks")
def list_competency_frameworks(call: Call) -> list[dict[str, Any]]:
    """Frameworks in the context and the contexts ``includes`` adds, sorted and paged."""
    params, world = call.params, call.world
    context = _validate_context(call, _context_from_params(world, params["context"]))
    _check_order(params["order"])
    _require_enabled(world)
    # The Authenticated user role grants competencyview, so even a user holding nothing but
    # webservice/rest:use gets the frameworks (see AUTHENTICATED_USER_CAPABILITIES).
    ids = _related_context_ids(call, context, params["includes"])
    if not ids:
        raise _cannot_view_frameworks()
    query = str(params["query"] or "").lower()
    frameworks = [
        f
        for f in world.competency_frameworks.values()
        if int(f["contextid"]) in ids
        and (not params["onlyvisible"] or int(f.get("visible", 1)) == 1)
        and (
            not query or query in str(f["shortname"]).lower() or query in str(f["idnumber"]).lower()
        )
    ]
    records = [_framework_fields(f) for f in sorted(frameworks, key=lambda f: int(f["id"]))]
    page = _sorted_page(
        records,
        _FRAMEWORK_COLUMNS,
        params["sort"],
        params["order"],
        params["skip"],
        params["limit"],
    )
    return [_framework_record(call, world.competency_frameworks[r["id"]]) for r in page]


@ws_function("core_competency_count_competency_frameworks")
def count_competency_frameworks(call: Call) -> int:
    """How many frameworks list_competency_frameworks would find, unfiltered."""
    params, world = call.params, call.world
    context = _validate_context(call, _context_from_params(world, params["context"]))
    _require_enabled(world)
    ids = _related_context_ids(call, context, params["includes"])
    if not ids:
        raise _cannot_view_frameworks()
    return sum(1 for f in world.competency_frameworks.values() if int(f["contextid"]) in ids)


@ws_function("core_competency_read_competency_framework")
def read_competency_framework(call: Call) -> dict[str, Any]:
    """One framework."""
    world = call.world
    _require_enabled(world)
    framework = _framework(world, call.params["id"])
    _require_view(call)
    _validate_context(call, _framework_context(world, framework))
    return _framework_record(call, framework)


@ws_function("core_competency_list_competencies")
def list_competencies(call: Call) -> list[dict[str, Any]]:
    """Competencies matching every filter exactly, sorted and paged."""
    params = call.params
    _check_order(params["order"])
    records = _filtered_competencies(call, params["filters"])
    page = _sorted_page(
        records,
        _COMPETENCY_COLUMNS,
        params["sort"],
        params["order"],
        params["skip"],
        params["limit"],
    )
    return [_competency_record(call.world, call.world.competencies[r["id"]]) for r in page]


@ws_function("core_competency_count_competencies")
def count_competencies(call: Call) -> int:
    """How many competencies match every filter."""
    return len(_filtered_competencies(call, call.params["filters"]))


@ws_function("core_competency_search_competencies")
def search_competencies(call: Call) -> list[dict[str, Any]]:
    """Competencies of a framework whose short name, idnumber or description contain the text."""
    world = call.world
    _require_enabled(world)
    framework = _framework(world, call.params["competencyframeworkid"])
    _require_view(call)
    _validate_context(call, _framework_context(world, framework))
    needle = str(call.params["searchtext"] or "").lower()
    found = [
        c
        for c in world.competencies.values()
        if int(c["competencyframeworkid"]) == int(framework["id"])
        and any(
            needle in str(c.get(f) or "").lower() for f in ("shortname", "idnumber", "description")
        )
    ]
    found.sort(key=lambda c: (collation_key(c.get("path", "/0/")), int(c.get("sortorder", 0))))
    return [_competency_record(world, c) for c in found]


@ws_function("core_competency_read_competency")
def read_competency(call: Call) -> dict[str, Any]:
    """One competency."""
    world = call.world
    _require_enabled(world)
    competency = _competency(world, call.params["id"])
    _require_view(call)
    _validate_context(call, _competency_context(world, competency))
    return _competency_record(world, competency)


def _course_competency_links(call: Call, courseid: int) -> list[Row]:
    """The course's competency links, after the checks list/count_course_competencies make."""
    world = call.world
    course = get_course(world, courseid, "id,category")
    require_course_login(call, course)
    _require_enabled(world)
    _require_course_view(call)
    links = [link for link in _course_links(world) if link["courseid"] == courseid]
    return sorted(links, key=lambda link: int(link["sortorder"]))


@ws_function("core_competency_list_course_competencies")
def list_course_competencies(call: Call) -> list[dict[str, Any]]:
    """The competencies linked to a course, with their links, in the course's order."""
    world = call.world
    return [
        {
            "competency": _competency_record(world, world.competencies[link["competencyid"]]),
            "coursecompetency": link,
        }
        for link in _course_competency_links(call, call.params["id"])
    ]


@ws_function("core_competency_count_competencies_in_course")
def count_competencies_in_course(call: Call) -> int:
    """How many competencies are linked to a course."""
    return len(_course_competency_links(call, call.params["id"]))


def _courses_using(call: Call, competencyid: int) -> list[Row]:
    """``api::list_courses_using_competency()``: the visible courses linking the competency."""
    world = call.world
    _require_enabled(world)
    competency = _competency(world, competencyid)
    _require_view(call)
    _validate_context(call, _competency_context(world, competency))
    # The per-course checks: course competencies visible, and hidden courses only to those
    # who may see them (roles are held site-wide here, so the answers do not vary by course).
    if not _has_any(call, _COURSE_VIEW_CAPABILITIES):
        return []
    seehidden = call.has_capability("moodle/course:viewhiddencourses")
    using = [
        world.courses[link["courseid"]]
        for link in _course_links(world)
        if link["competencyid"] == competencyid
    ]
    return [course for course in using if seehidden or course_value(course, "visible")]


@ws_function("core_competency_count_courses_using_competency")
def count_courses_using_competency(call: Call) -> int:
    """How many courses (visible to the user) use a competency."""
    return len(_courses_using(call, call.params["id"]))


@ws_function("core_competency_list_course_module_competencies")
def list_course_module_competencies(call: Call) -> list[dict[str, Any]]:
    """The competencies linked to an activity (a course module's ``competencyids``)."""
    world = call.world
    course, cm = _course_module(world, call.params["cmid"])
    require_course_login(call, course)
    _require_enabled(world)
    _require_course_view(call)
    return [
        {
            "competency": _competency_record(world, world.competencies[link["competencyid"]]),
            "coursemodulecompetency": link,
        }
        for link in _module_links(world)
        if link["cmid"] == cm["cmid"]
    ]


@ws_function("tool_lp_list_courses_using_competency")
def list_courses_using_competency(call: Call) -> list[dict[str, Any]]:
    """The courses using a competency, as ``course_summary_exporter`` shows them."""
    return [_course_summary(call, course) for course in _courses_using(call, call.params["id"])]


# --- course_summary_exporter --------------------------------------------------------------------
def _course_summary(call: Call, course: Row) -> dict[str, Any]:
    """``core_course\\external\\course_summary_exporter`` for the calling user."""
    world = call.world
    courseid = int(course["id"])
    progress = course_progress(world, course, call.userid, call.now)
    shortnames = str(world.settings.get("courselistshortnames", "0")) not in ("", "0")
    fullname = format_string(course["fullname"])
    category = world.categories.get(int(course["categoryid"]), {})
    preferences = call.user.get("preferences", {})
    return {
        "id": courseid,
        "fullname": fullname,
        "shortname": format_string(course["shortname"]),
        "idnumber": course_value(course, "idnumber"),
        "summary": format_text(
            course_value(course, "summary"), course_value(course, "summaryformat")
        ),
        "summaryformat": FORMAT_HTML,
        "startdate": course_value(course, "startdate"),
        "enddate": course_value(course, "enddate"),
        "visible": course_value(course, "visible"),
        "showactivitydates": course_value(course, "showactivitydates"),
        "showcompletionconditions": course_value(course, "showcompletionconditions"),
        "pdfexportfont": course_value(course, "pdfexportfont") or "",
        "fullnamedisplay": (
            f"{format_string(course['shortname'])} {fullname}" if shortnames else fullname
        ),
        "viewurl": f"{world.settings['wwwroot']}/course/view.php?id={courseid}",
        "courseimage": generated_course_image(courseid),
        "progress": math.floor(progress or 0),
        "hasprogress": progress is not None,
        "isfavourite": False,
        "hidden": bool(int(preferences.get(f"block_myoverview_hidden_course_{courseid}", 0))),
        "showshortname": shortnames,
        "coursecategory": format_string(category.get("name", "")),
    }


# --- the generated course image (core_geopattern) -----------------------------------------------
#: The default course colours of a fresh site (core_admin | coursecolor1 ... coursecolor10).
COURSE_COLOURS = (
    "#81ecec", "#74b9ff", "#a29bfe", "#dfe6e9", "#00b894",
    "#0984e3", "#b2bec3", "#fdcb6e", "#fd79a8", "#6c5ce7",
)  # fmt: skip


def generated_course_image(courseid: int) -> str:
    """``$OUTPUT->get_generated_image_for_id()``: the GeoPattern SVG of a course, as a data URI."""
    svg = _GeoPattern(str(courseid), COURSE_COLOURS[courseid % 10]).svg()
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def _php_number(value: float | int) -> str:
    """A number interpolated into a PHP string (``precision`` = 14)."""
    if isinstance(value, int):
        return str(value)
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    text = f"{value:.14G}"
    if "E" in text:
        mantissa, exponent = text.split("E")
        if "." not in mantissa:
            mantissa += ".0"
        return f"{mantissa}E{int(exponent):+d}"
    return text


Attrs = dict[str, Any]


def _attr(value: Any) -> str:
    return _php_number(value) if isinstance(value, int | float) else str(value)


def _attrs(args: Attrs) -> str:
    """GeoPattern's ``argsToString()``: ``key="value" ``, arrays as ``k:v;`` lists."""
    parts = []
    for key, value in args.items():
        if isinstance(value, dict):
            inner = "".join(f"{k}:{_attr(v)};" for k, v in value.items())
            parts.append(f'{key}="{inner}" ')
        else:
            parts.append(f'{key}="{_attr(value)}" ')
    return "".join(parts)


def _element(tag: str, elements: Attrs, args: Attrs) -> str:
    return f"<{tag} {_attrs(elements)}{_attrs(args)}/>"


def _rect(x: Any, y: Any, width: Any, height: Any, args: Attrs | None = None) -> str:
    return _element("rect", {"x": x, "y": y, "width": width, "height": height}, args or {})


def _polyline(points: str, args: Attrs) -> str:
    return _element("polyline", {"points": points}, args)


def _circle(cx: Any, cy: Any, r: Any, args: Attrs) -> str:
    return _element("circle", {"cx": cx, "cy": cy, "r": r}, args)


def _group(items: list[str], args: Attrs) -> str:
    return f"<g {_attrs(args)}>{''.join(items)}</g>"


def _join(*values: float | int) -> str:
    return ", ".join(_php_number(v) for v in values)


def _commas(*values: float | int) -> str:
    return ",".join(_php_number(v) for v in values)


_STROKE = {"stroke": "#000", "stroke-opacity": "0.02"}


class _GeoPattern:
    """RedeyeVentures' GeoPattern as Moodle bundles it (lib/geopattern-php), with a set colour."""

    # The library lists "chevrons" 17th, but one hex digit only ever picks among the first 16.
    patterns = (
        "octogons", "overlapping_circles", "plus_signs", "xes", "sine_waves", "hexagons",
        "overlapping_rings", "plaid", "triangles", "squares", "concentric_circles", "diamonds",
        "tessellation", "nested_squares", "mosaic_squares", "triangles_rotated",
    )  # fmt: skip

    def __init__(self, string: str, colour: str) -> None:
        self.hash = hashlib.sha1(string.encode()).hexdigest()
        self.colour = colour
        self.width: float | int = 100
        self.height: float | int = 100
        self.body: list[str] = []

    def svg(self) -> str:
        red, green, blue = (int(self.colour[i : i + 2], 16) for i in (1, 3, 5))
        self.body.append(_rect(0, 0, "100%", "100%", {"fill": f"rgb({red}, {green}, {blue})"}))
        generator: Callable[[], None] = getattr(self, "_" + self.patterns[self.hex_val(20, 1)])
        generator()
        return (
            f'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" '
            f'width="{_php_number(self.width)}" height="{_php_number(self.height)}">'
            f"{''.join(self.body)}</svg>"
        )

    # --- utilities
    def hex_val(self, index: int, length: int) -> int:
        digits = self.hash[index : index + length]
        return int(digits, 16) if digits else 0

    @staticmethod
    def map(value: float, vmin: float, vmax: float, dmin: float, dmax: float) -> float:
        return (float(value) - vmin) * (dmax - dmin) / (vmax - vmin) + dmin

    def opacity(self, val: int) -> float:
        return self.map(val, 0, 15, 0.02, 0.15)

    @staticmethod
    def fill(val: int) -> str:
        return "#ddd" if val % 2 == 0 else "#222"

    def size(self, width: float, height: float) -> None:
        self.width, self.height = float(math.floor(width)), float(math.floor(height))

    def filled(self, val: int) -> Attrs:
        return {"fill": self.fill(val), "fill-opacity": self.opacity(val), **_STROKE}

    # --- patterns
    def _octogons(self) -> None:
        square = self.map(self.hex_val(0, 1), 0, 15, 10, 60)
        c = square * 0.33
        tile = _commas(c, 0, square - c, 0, square, c, square, square - c, square - c, square, c,
                       square, 0, square - c, 0, c, c, 0)  # fmt: skip
        self.size(square * 6, square * 6)
        for i, (x, y) in enumerate(_grid()):
            val = self.hex_val(i, 1)
            args = {"fill": self.fill(val), "fill-opacity": self.opacity(val), **_STROKE}
            args["transform"] = f"translate({_join(x * square, y * square)})"
            self.body.append(_polyline(tile, args))

    def _overlapping_circles(self) -> None:
        radius = self.map(self.hex_val(0, 1), 0, 15, 25, 200) / 2
        self.size(radius * 6, radius * 6)
        for i, (x, y) in enumerate(_grid()):
            val = self.hex_val(i, 1)
            args = {"fill": self.fill(val), "style": {"opacity": self.opacity(val)}}
            for cx, cy in _tile_copies(x, y):
                self.body.append(_circle(cx * radius, cy * radius, radius, args))

    def _plus_signs(self) -> None:
        square = self.map(self.hex_val(0, 1), 0, 15, 10, 25)
        plus = square * 3
        shape = _plus_shape(square)
        self.size(square * 12, square * 12)
        for i, (x, y) in enumerate(_grid()):
            val = self.hex_val(i, 1)
            dx = 0 if y % 2 == 0 else 1
            styles = {
                "fill": self.fill(val),
                **_STROKE,
                "style": {"fill-opacity": self.opacity(val)},
            }

            def place(tx: float, ty: float, styles: Attrs = styles) -> None:
                self.body.append(
                    _group(shape, {**styles, "transform": f"translate({_join(tx, ty)})"})
                )

            place(x * plus - x * square + dx * square - square, y * plus - y * square - plus / 2)
            if x == 0:
                place(
                    4 * plus - x * square + dx * square - square, y * plus - y * square - plus / 2
                )
            if y == 0:
                place(
                    x * plus - x * square + dx * square - square, 4 * plus - y * square - plus / 2
                )
            if x == 0 and y == 0:
                place(
                    4 * plus - x * square + dx * square - square, 4 * plus - y * square - plus / 2
                )

    def _xes(self) -> None:
        square = self.map(self.hex_val(0, 1), 0, 15, 10, 25)
        size = square * 3 * 0.943
        shape = _plus_shape(square)
        self.size(size * 3, size * 3)
        half = size / 2
        for i, (x, y) in enumerate(_grid()):
            val = self.hex_val(i, 1)
            dy = y * size - size * 0.5 if x % 2 == 0 else y * size - size * 0.5 + size / 4
            styles = {"fill": self.fill(val), "style": {"opacity": self.opacity(val)}}

            def place(tx: float, ty: float, styles: Attrs = styles) -> None:
                transform = f"translate({_join(tx, ty)}) rotate({_join(45, half, half)})"
                self.body.append(_group(shape, {**styles, "transform": transform}))

            place(x * size / 2 - size / 2, dy - y * size / 2)
            if x == 0:
                place(6 * size / 2 - size / 2, dy - y * size / 2)
            if y == 0:
                dy = 6 * size - size / 2 if x % 2 == 0 else 6 * size - size / 2 + size / 4
                place(x * size / 2 - size / 2, dy - 6 * size / 2)
            if y == 5:
                place(x * size / 2 - size / 2, dy - 11 * size / 2)
            if x == 0 and y == 0:
                place(6 * size / 2 - size / 2, dy - 6 * size / 2)

    def _sine_waves(self) -> None:
        period = float(math.floor(self.map(self.hex_val(0, 1), 0, 15, 100, 400)))
        quarter = period / 4
        x_offset = period / 4 * 0.7
        amplitude = float(math.floor(self.map(self.hex_val(1, 1), 0, 15, 30, 100)))
        wave_width = float(math.floor(self.map(self.hex_val(2, 1), 0, 15, 3, 30)))
        amp = _number_format(amplitude)
        path = (
            f"M0 {amp} C {_php_number(x_offset)} 0, {_number_format(period / 2 - x_offset)} 0, "
            f"{_number_format(period / 2)} {amp} S {_number_format(period - x_offset)} "
            f"{_number_format(2 * amplitude)}, {_php_number(period)} {amp} S "
            f"{_number_format(period * 1.5 - x_offset)} 0, {_number_format(period * 1.5)}, {amp}"
        )
        self.size(period, wave_width * 36)
        for i in range(36):
            styles = self.outline(self.hex_val(i, 1), wave_width)
            for ty in (
                wave_width * i - amplitude * 1.5,
                wave_width * i - amplitude * 1.5 + wave_width * 36,
            ):
                transform = f"translate(-{_php_number(quarter)}, {_php_number(ty)})"
                self.body.append(_element("path", {"d": path}, {**styles, "transform": transform}))

    def _hexagons(self) -> None:
        side = self.map(self.hex_val(0, 1), 0, 15, 8, 60)
        hex_height = side * math.sqrt(3)
        hex_width = side * 2
        b = math.sin(60 * math.pi / 180) * side
        shape = _commas(0, b, side / 2, 0, side / 2 + side, 0, side * 2, b, side / 2 + side, b * 2,
                        side / 2, b * 2, 0, b)  # fmt: skip
        self.size(hex_width * 3 + side * 3, hex_height * 6)
        for i, (x, y) in enumerate(_grid()):
            val = self.hex_val(i, 1)
            dy = y * hex_height if x % 2 == 0 else y * hex_height + hex_height / 2
            styles = {**_STROKE, "fill-opacity": self.opacity(val), "fill": self.fill(val)}

            def place(tx: float, ty: float, styles: Attrs = styles) -> None:
                self.body.append(
                    _polyline(shape, {**styles, "transform": f"translate({_join(tx, ty)})"})
                )

            place(x * side * 1.5 - hex_width / 2, dy - hex_height / 2)
            if x == 0:
                place(6 * side * 1.5 - hex_width / 2, dy - hex_height / 2)
            if y == 0:
                dy2 = 6 * hex_height if x % 2 == 0 else 6 * hex_height + hex_height / 2
                place(x * side * 1.5 - hex_width / 2, dy2 - hex_height / 2)
            if x == 0 and y == 0:
                place(6 * side * 1.5 - hex_width / 2, 5 * hex_height + hex_height / 2)

    def _overlapping_rings(self) -> None:
        ring = self.map(self.hex_val(0, 1), 0, 15, 10, 60)
        stroke = ring / 4
        self.size(ring * 6, ring * 6)
        for i, (x, y) in enumerate(_grid()):
            args = self.outline(self.hex_val(i, 1), stroke)
            for cx, cy in _tile_copies(x, y):
                self.body.append(_circle(cx * ring, cy * ring, ring - stroke / 2, args))

    def _plaid(self) -> None:
        height = width = 0
        for i in range(0, 38, 2):
            height += self.hex_val(i, 1) + 5
            val = self.hex_val(i + 1, 1)
            args = {"opacity": self.opacity(val), "fill": self.fill(val)}
            self.body.append(_rect(0, height, "100%", val + 5, args))
            height += val + 5
        for i in range(0, 38, 2):
            width += self.hex_val(i, 1) + 5
            val = self.hex_val(i + 1, 1)
            args = {"opacity": self.opacity(val), "fill": self.fill(val)}
            self.body.append(_rect(width, 0, val + 5, "100%", args))
            width += val + 5
        self.size(width, height)

    def _triangles(self) -> None:
        side = self.map(self.hex_val(0, 1), 0, 15, 15, 80)
        height = side / 2 * math.sqrt(3)
        shape = _join(side / 2, 0, side, height, 0, height, side / 2, 0)
        self.size(side * 3, height * 6)
        for i, (x, y) in enumerate(_grid()):
            val = self.hex_val(i, 1)
            rotation = (180 if x % 2 == 0 else 0) if y % 2 == 0 else (180 if x % 2 != 0 else 0)
            rotate = f"rotate({_join(rotation, side / 2, height / 2)})"
            for tx in [x * side * 0.5 - side / 2] + ([6 * side * 0.5 - side / 2] if x == 0 else []):
                transform = f"translate({_join(tx, height * y)}) {rotate}"
                self.body.append(_polyline(shape, {**self.filled(val), "transform": transform}))

    def _squares(self) -> None:
        square = self.map(self.hex_val(0, 1), 0, 15, 10, 60)
        self.size(square * 6, square * 6)
        for i, (x, y) in enumerate(_grid()):
            self.body.append(
                _rect(x * square, y * square, square, square, self.filled(self.hex_val(i, 1)))
            )

    def _concentric_circles(self) -> None:
        ring = self.map(self.hex_val(0, 1), 0, 15, 10, 60)
        stroke = ring / 5
        self.size((ring + stroke) * 6, (ring + stroke) * 6)
        for i, (x, y) in enumerate(_grid()):
            val = self.hex_val(i, 1)
            cx = x * ring + x * stroke + (ring + stroke) / 2
            cy = y * ring + y * stroke + (ring + stroke) / 2
            self.body.append(_circle(cx, cy, ring / 2, self.outline(val, stroke)))
            inner = self.hex_val(39 - i, 1)
            args = {"fill": self.fill(inner), "fill-opacity": self.opacity(inner)}
            self.body.append(_circle(cx, cy, ring / 4, args))

    def _diamonds(self) -> None:
        width = self.map(self.hex_val(0, 1), 0, 15, 10, 50)
        height = self.map(self.hex_val(1, 1), 0, 15, 10, 50)
        shape = _join(width / 2, 0, width, height / 2, width / 2, height, 0, height / 2)
        self.size(width * 6, height * 3)
        for i, (x, y) in enumerate(_grid()):
            styles = self.filled(self.hex_val(i, 1))
            dx: float | int = 0 if y % 2 == 0 else width / 2
            for cx, cy in _tile_copies(x, y):
                translate = _join(cx * width - width / 2 + dx, height / 2 * cy - height / 2)
                self.body.append(
                    _polyline(shape, {**styles, "transform": f"translate({translate})"})
                )

    def _tessellation(self) -> None:
        side = self.map(self.hex_val(0, 1), 0, 15, 5, 40)
        hex_height = side * math.sqrt(3)
        hex_width = side * 2
        tri_height = side / 2 * math.sqrt(3)
        triangle = _join(0, 0, tri_height, side / 2, 0, side, 0, 0)
        tile_width = side * 3 + tri_height * 2
        tile_height = hex_height * 2 + side * 2
        self.size(tile_width, tile_height)
        half = side / 2
        n = _php_number
        mid_y = tile_height / 2 - side / 2
        right = tile_width - side / 2
        left_mid = tile_width - tile_width / 2 - side / 2
        right_mid = tile_width / 2 + side / 2
        bottom_y = tile_height - hex_height / 2
        neg_right = -tile_width + side / 2
        upper = tile_height / 2 - side / 2 - side
        neg_upper = -tile_height + tile_height / 2 - side / 2 - side
        neg_bottom = -tile_height + side / 2
        rot = f"rotate(0, {n(half)}, {n(tri_height / 2)})"
        for i in range(20):
            val = self.hex_val(i, 1)
            styles: Attrs = {**_STROKE, "fill": self.fill(val), "fill-opacity": self.opacity(val)}
            styles["stroke-width"] = 1

            def tri(transform: str, styles: Attrs = styles) -> None:
                self.body.append(_polyline(triangle, {**styles, "transform": transform}))

            def square(x: float, y: float, transform: str = "", styles: Attrs = styles) -> None:
                extra = {"transform": transform} if transform else {}
                self.body.append(_rect(x, y, side, side, {**styles, **extra}))

            if i == 0:
                for x, y in ((-half, -half), (right, -half), (-half, tile_height - half),
                             (right, tile_height - half)):  # fmt: skip
                    square(x, y)
            elif i == 1:
                square(hex_width / 2 + tri_height, hex_height / 2)
            elif i == 2:
                square(-half, tile_height / 2 - half)
                square(right, tile_height / 2 - half)
            elif i == 3:
                square(hex_width / 2 + tri_height, hex_height * 1.5 + side)
            elif i == 4:
                tri(f"translate({n(half)}, {n(-half)}) {rot}")
                tri(f"translate({n(half)}, {n(tile_height + half)}) {rot} scale(1, -1)")
            elif i == 5:
                tri(f"translate({n(right)}, {n(-half)}) {rot} scale(-1, 1)")
                tri(f"translate({n(right)}, {n(tile_height + half)}) {rot} scale(-1, -1)")
            elif i == 6:
                tri(f"translate({n(right_mid)}, {n(hex_height / 2)})")
            elif i == 7:
                tri(f"translate({n(left_mid)}, {n(hex_height / 2)}) scale(-1, 1)")
            elif i == 8:
                tri(f"translate({n(right_mid)}, {n(bottom_y)}) scale(1, -1)")
            elif i == 9:
                tri(f"translate({n(left_mid)}, {n(bottom_y)}) scale(-1, -1)")
            elif i == 10:
                tri(f"translate({n(half)}, {n(mid_y)})")
            elif i == 11:
                tri(f"translate({n(right)}, {n(mid_y)}) scale(-1, 1)")
            else:
                turn, back = f"rotate(30, 0, {n(side)})", "rotate(-30, 0, 0)"
                transforms = {
                    12: f"translate({n(half)}, {n(half)}) {back}",
                    13: f"scale(-1, 1) translate({n(neg_right)}, {n(half)}) {back}",
                    14: f"translate({n(half)}, {n(upper)}) {turn}",
                    15: f"scale(-1, 1) translate({n(neg_right)}, {n(upper)}) {turn}",
                    16: f"scale(1, -1) translate({n(half)}, {n(neg_upper)}) {turn}",
                    17: f"scale(-1, -1) translate({n(neg_right)}, {n(neg_upper)}) {turn}",
                    18: f"scale(1, -1) translate({n(half)}, {n(neg_bottom)}) {back}",
                    19: f"scale(-1, -1) translate({n(neg_right)}, {n(neg_bottom)}) {back}",
                }
                square(0, 0, transforms[i])

    def _nested_squares(self) -> None:
        block = self.map(self.hex_val(0, 1), 0, 15, 4, 12)
        square = block * 7
        dimension = (square + block) * 6 + block * 6
        self.size(dimension, dimension)
        for i, (x, y) in enumerate(_grid()):
            left = x * square + x * block * 2 + block / 2
            top = y * square + y * block * 2 + block / 2
            outer, inner = self.hex_val(i, 1), self.hex_val(39 - i, 1)
            self.body.append(_rect(left, top, square, square, self.outline(outer, block)))
            self.body.append(
                _rect(
                    left + block * 2,
                    top + block * 2,
                    block * 3,
                    block * 3,
                    self.outline(inner, block),
                )
            )

    def outline(self, val: int, width: float) -> Attrs:
        """Unfilled strokes: the rings and nested squares."""
        style = {"opacity": self.opacity(val), "stroke-width": f"{_php_number(width)}px"}
        return {"fill": "none", "stroke": self.fill(val), "style": style}

    def _mosaic_squares(self) -> None:
        size = self.map(self.hex_val(0, 1), 0, 15, 15, 50)
        self.size(size * 8, size * 8)
        for i, (x, y) in enumerate((x, y) for y in range(4) for x in range(4)):
            left, top = x * size * 2, y * size * 2
            first = self.hex_val(i, 1)
            if (x % 2 == 0) == (y % 2 == 0):
                tiles = [
                    (first, left, top + size, "1, -1"),
                    (first, left + size * 2, top + size, "-1, -1"),
                    (first, left, top + size, "1, 1"),
                    (first, left + size * 2, top + size, "-1, 1"),
                ]
            else:
                second = self.hex_val(i + 1, 1)
                tiles = [
                    (first, left + size, top, "-1, 1"),
                    (first, left + size, top + size * 2, "1, -1"),
                    (second, left + size, top + size * 2, "-1, -1"),
                    (second, left + size, top, "1, 1"),
                ]
            triangle = _join(0, 0, size, size, 0, size, 0, 0)
            for val, tx, ty, scale in tiles:
                args = {**_STROKE, "fill-opacity": self.opacity(val), "fill": self.fill(val)}
                args["transform"] = f"translate({_join(tx, ty)}) scale({scale})"
                self.body.append(_polyline(triangle, args))

    def _triangles_rotated(self) -> None:
        side = self.map(self.hex_val(0, 1), 0, 15, 15, 80)
        width = side / 2 * math.sqrt(3)
        shape = _join(0, 0, width, side / 2, 0, side, 0, 0)
        self.size(width * 6, side * 3)
        for i, (x, y) in enumerate(_grid()):
            val = self.hex_val(i, 1)
            rotation = (180 if x % 2 == 0 else 0) if y % 2 == 0 else (180 if x % 2 != 0 else 0)
            rotate = f"rotate({_join(rotation, width / 2, side / 2)})"
            for ty in [y * side * 0.5 - side / 2] + ([6 * side * 0.5 - side / 2] if y == 0 else []):
                transform = f"translate({_join(x * width, ty)}) {rotate}"
                self.body.append(_polyline(shape, {**self.filled(val), "transform": transform}))


def _tile_copies(x: int, y: int) -> list[tuple[int, int]]:
    """A tile, then its copies on the right edge, the bottom edge and the corner, for tiling."""
    copies = [(x, y)]
    if x == 0:
        copies.append((6, y))
    if y == 0:
        copies.append((x, 6))
    if x == 0 and y == 0:
        copies.append((6, 6))
    return copies


def _grid() -> list[tuple[int, int]]:
    """The 6 x 6 tiles of most patterns, row by row."""
    return [(x, y) for y in range(6) for x in range(6)]


def _plus_shape(square: float) -> list[str]:
    return [_rect(square, 0, square, square * 3), _rect(0, square, square * 3, square)]


def _number_format(value: float) -> str:
    """PHP's ``number_format($value)``: rounded half away from zero, thousands with commas."""
    return f"{math.floor(abs(value) + 0.5) * (1 if value >= 0 else -1):,}"
