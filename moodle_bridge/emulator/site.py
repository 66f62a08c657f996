"""Emulated Moodle functions: site information (``core_webservice_get_site_info``).

Follows ``core_webservice_external::get_site_info()`` of Moodle 4.5, answering for the token's
user and the token's service.
"""

from __future__ import annotations

import secrets
from typing import Any

from moodle_bridge.emulator.core import Call, ws_function
from moodle_bridge.emulator.external import ExternalError, signatures
from moodle_bridge.emulator.users import (
    format_string,
    fullname,
    is_guest,
    php_empty,
    picture_url,
    setting,
    user_preferences,
    value_of,
)
from moodle_bridge.emulator.world import World

#: ``version.php`` of the plugins whose functions the service can hold, in Moodle 4.5.6.
#: Functions of core (``core_*``) report the site's own version instead.
PLUGIN_VERSIONS = {
    "enrol_manual": "2024100700",
    "tool_lp": "2024100701",
}

#: The order in which the recorded site's service got its functions (the ids of its
#: ``external_services_functions`` rows). Moodle lists a service's functions in that order: its
#: query has no ORDER BY and PostgreSQL walks that table. The seed export lists them sorted
#: by name, which loses the order; this table restores it. Functions it does not name follow in
#: the seed's order.
SERVICE_FUNCTION_ORDER = (
    "core_webservice_get_site_info",
    "core_user_create_users",
    "core_user_update_users",
    "core_user_get_users_by_field",
    "core_user_get_users",
    "core_user_delete_users",
    "core_cohort_create_cohorts",
    "core_cohort_update_cohorts",
    "core_cohort_delete_cohorts",
    "core_cohort_search_cohorts",
    "core_cohort_get_cohorts",
    "core_cohort_add_cohort_members",
    "core_cohort_delete_cohort_members",
    "core_cohort_get_cohort_members",
    "core_course_get_courses_by_field",
    "core_course_get_categories",
    "core_course_create_categories",
    "core_course_create_courses",
    "core_enrol_get_enrolled_users",
    "core_enrol_get_users_courses",
    "core_enrol_get_course_enrolment_methods",
    "enrol_manual_enrol_users",
    "enrol_manual_unenrol_users",
    "core_completion_get_course_completion_status",
    "core_completion_get_activities_completion_status",
    "core_completion_mark_course_self_completed",
    "core_completion_override_activity_completion_status",
    "core_competency_list_competency_frameworks",
    "core_competency_count_competency_frameworks",
    "core_competency_read_competency_framework",
    "core_competency_list_competencies",
    "core_competency_search_competencies",
    "core_competency_count_competencies",
    "core_competency_read_competency",
    "core_competency_list_course_competencies",
    "core_competency_count_competencies_in_course",
    "core_competency_count_courses_using_competency",
    "core_competency_list_course_module_competencies",
    "tool_lp_list_courses_using_competency",
    "core_reportbuilder_list_reports",
    "core_reportbuilder_retrieve_report",
)

#: The flags ``get_site_info`` reports as advanced features, with Moodle's install defaults.
_ADVANCED_FEATURES = (
    ("usecomments", "1"),
    ("usetags", "1"),
    ("enablenotes", "1"),
    ("messaging", "1"),
    ("enableblogs", "1"),
    ("enablecompletion", "1"),
    ("enablebadges", "1"),
    ("messagingallusers", "0"),
    ("enablecustomreports", "1"),
    ("enableglobalsearch", "0"),
)

#: Capabilities every signed-in (non-guest) user holds through the default authenticated role.
_AUTHENTICATED_USER_CAPS = frozenset({"moodle/user:manageownfiles"})

# get_home_page() values.
_HOMEPAGE_SITE, _HOMEPAGE_MY, _HOMEPAGE_USER, _HOMEPAGE_MYCOURSES, _HOMEPAGE_URL = range(5)

#: PHP's upload limits on the recorded server (``upload_max_filesize``/``post_max_size``: 64M).
_PHP_UPLOAD_LIMIT = 64 * 1024 * 1024


def _component(function_name: str) -> str:
    """The frankenstyle component a function belongs to (``moodle`` for core)."""
    if function_name.startswith("core_"):
        return "moodle"
    plugintype, plugin, _ = function_name.split("_", 2)
    return f"{plugintype}_{plugin}"


def _function_version(world: World, function_name: str) -> str:
    component = _component(function_name)
    if component == "moodle":
        return world.version
    version = PLUGIN_VERSIONS.get(component)
    if version is None:
        raise _missing_version_file(component)
    return version


def _missing_version_file(component: str) -> ExternalError:
    return ExternalError(
        "missingversionfile",
        f"Coding error: version.php file is missing for the component {component}",
    )


def _service_functions(world: World) -> list[dict[str, str]]:
    """The token's service functions that exist on the site, in the service's own order."""
    known = signatures()
    rank = {name: i for i, name in enumerate(SERVICE_FUNCTION_ORDER)}
    names = [name for name in world.service.get("functions", []) if name in known]
    names.sort(key=lambda name: rank.get(name, len(rank)))
    return [{"name": name, "version": _function_version(world, name)} for name in names]


def _has(call: Call, capability: str) -> bool:
    if capability in _AUTHENTICATED_USER_CAPS and not is_guest(call.user):
        return True
    return call.has_capability(capability)


def _home_page(call: Call) -> int:
    """``get_home_page()`` for the token's user."""
    world = call.world
    default = int(setting(world, "defaulthomepage", _HOMEPAGE_MY))
    dashboard = not php_empty(setting(world, "enabledashboard", "1"))
    fallback = _HOMEPAGE_MY if dashboard else _HOMEPAGE_MYCOURSES
    if is_guest(call.user) or default == _HOMEPAGE_SITE:
        return _HOMEPAGE_SITE
    if default == _HOMEPAGE_MY:
        return _HOMEPAGE_MY if dashboard else fallback
    if default == _HOMEPAGE_USER:
        chosen = user_preferences(call.user).get("user_home_page_preference", fallback)
        page = int(chosen)
        return fallback if page == _HOMEPAGE_MY and not dashboard else page
    return default


def _private_key(call: Call) -> str:
    """``get_user_key('core_files', $USER->id)``: created at random on first use, then kept."""
    keys = call.user.setdefault("private_keys", {})
    if "core_files" not in keys:
        keys["core_files"] = secrets.token_hex(16)
    key: str = keys["core_files"]
    return key


@ws_function("core_webservice_get_site_info")
def get_site_info(call: Call) -> dict[str, Any]:
    """Site, user and service information for the token's user."""
    world, user = call.world, call.user
    frontpage = world.site.get("frontpage_course", {})
    calendartype = setting(world, "calendartype", "gregorian")
    limit = int(setting(world, "limitconcurrentlogins", "0"))
    info: dict[str, Any] = {
        "sitename": format_string(str(frontpage.get("fullname", ""))),
        "username": user["username"],
        "firstname": user.get("firstname", ""),
        "lastname": user.get("lastname", ""),
        "fullname": fullname(world, user),
        "lang": value_of(world, user, "lang"),
        "userid": user["id"],
        "siteurl": world.settings["wwwroot"],
        "userpictureurl": picture_url(world, "f1"),
        "functions": _service_functions(world),
        "downloadfiles": int(world.service.get("downloadfiles", 0)),
        "uploadfiles": int(world.service.get("uploadfiles", 0)),
        "release": world.release,
        "version": world.version,
        "mobilecssurl": setting(world, "mobilecssurl", ""),
        "advancedfeatures": [
            *(
                {"name": name, "value": int(setting(world, name, default) or 0)}
                for name, default in _ADVANCED_FEATURES
            ),
            {
                "name": "mnet_dispatcher_mode",
                "value": int(setting(world, "mnet_dispatcher_mode", "off") == "strict"),
            },
            {
                "name": "enablecompetencies",
                "value": int(setting(world, "competency_enabled", "1") or 0),
            },
        ],
        "usercanmanageownfiles": _has(call, "moodle/user:manageownfiles"),
        "userquota": 0
        if _has(call, "moodle/user:ignoreuserquota")
        else int(setting(world, "userquota", 104857600)),
        "usermaxuploadfilesize": -1
        if _has(call, "moodle/course:ignorefilesizelimits")
        else _max_upload(world),
        "userhomepage": _home_page(call),
        "userprivateaccesskey": _private_key(call),
        "siteid": world.site.get("siteid", 1),
        "sitecalendartype": calendartype,
        "usercalendartype": user.get("calendartype") or calendartype,
        "userissiteadmin": call.is_admin,
        "theme": setting(world, "theme", "boost"),
        "limitconcurrentlogins": limit,
        "policyagreed": value_of(world, user, "policyagreed"),
    }
    if info["userhomepage"] == _HOMEPAGE_URL:
        info["userhomepageurl"] = setting(world, "defaulthomepageurl", "")
    return info


def _max_upload(world: World) -> int:
    """``get_max_upload_file_size($CFG->maxbytes)``: PHP's limit, lowered by the site's."""
    sitebytes = int(setting(world, "maxbytes", 0))
    return sitebytes if 0 < sitebytes < _PHP_UPLOAD_LIMIT else _PHP_UPLOAD_LIMIT
