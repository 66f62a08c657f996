"""Emulated Moodle functions: users (``core_user_*``) and the ``create_users_bulk`` test hook.

These follow ``core_user_external`` and ``user/lib.php`` of Moodle 4.5. Creation checks and
inserts user after user inside one transaction: a failure rolls the whole batch back, but the ids
already handed out stay spent, as with a PostgreSQL sequence. Updates are per user, each failure
a warning. Lookups go through ``user_get_user_details()``'s visibility rules, so a caller without
the right capabilities silently gets less, or nothing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from moodle_bridge.emulator.core import Call, Emulator, setup_action, ws_function
from moodle_bridge.emulator.external import (
    INSTALLED_LANGS,
    INSTALLED_THEMES,
    ExternalError,
    clean_param,
    invalid_parameter,
    php_string,
)
from moodle_bridge.emulator.world import Row, World

#: Columns of Moodle's ``user`` table that create/update parameters write (the rest of a
#: parameter set, such as customfields, preferences or interests, is stored elsewhere).
_USER_COLUMNS = (
    "username",
    "auth",
    "suspended",
    "firstname",
    "lastname",
    "email",
    "maildisplay",
    "city",
    "country",
    "timezone",
    "description",
    "firstnamephonetic",
    "lastnamephonetic",
    "middlename",
    "alternatename",
    "idnumber",
    "institution",
    "department",
    "phone1",
    "phone2",
    "address",
    "lang",
    "calendartype",
    "theme",
    "mailformat",
)

#: What a user row holds when nobody set a value (the ``user`` table's defaults and Moodle's
#: ``defaultpreference_*`` install settings). Seeded rows only spell out part of this.
_ROW_DEFAULTS: dict[str, Any] = {
    "idnumber": "",
    "auth": "manual",
    "confirmed": 1,
    "suspended": 0,
    "timezone": "99",
    "theme": "",
    "firstaccess": 0,
    "lastaccess": 0,
    "mailformat": 1,
    "maildisplay": 2,
    "maildigest": 0,
    "autosubscribe": 1,
    "trackforums": 0,
    "city": "",
    "country": "",
    "institution": "",
    "department": "",
    "phone1": "",
    "phone2": "",
    "address": "",
    "description": None,
    "descriptionformat": 1,
    "policyagreed": 0,
    "picture": 0,
    "firstnamephonetic": "",
    "lastnamephonetic": "",
    "middlename": "",
    "alternatename": "",
}

#: Auth plugins whose ``is_internal()`` is false: Moodle does not keep their passwords.
_EXTERNAL_AUTHS = frozenset({"cas", "db", "ldap", "mnet", "oauth2", "shibboleth"})

#: Installed auth plugins that ``core_user_create_users`` still refuses (they need extra data).
_UNCREATABLE_AUTHS = frozenset({"mnet", "webservice"})

#: ``core_user::get_property_type()`` of the fields a lookup may search by.
_PROPERTY_TYPES = {
    "id": "int",
    "idnumber": "raw",
    "username": "username",
    "email": "raw_trimmed",
    "auth": "auth",
    "firstname": "notags",
    "lastname": "notags",
}

#: ``$CFG->enrolments_sync_interval`` default: how often a login re-syncs a user's enrolments.
_ENROLMENT_SYNC_INTERVAL = 3600

#: The strings of ``lang/en/error.php`` that the user functions' exceptions use.
_ERROR_STRINGS = {
    "invaliduserid": "Invalid user ID",
    "usernotupdatedadmin": "Cannot update admin accounts",
    "useremailduplicate": "Duplicate address",
    "useradminodelete": "Administrator accounts can not be deleted",
    "usernotdeletederror": "User not deleted - error",
    "dmlwriteexception": "Error writing to database",
}

_PHP_TRIM = " \t\n\r\0\x0b"
_HTML5_EMAIL = re.compile(
    r"[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*"
)
_AMPERSAND = re.compile(r"&(?![a-zA-Z0-9#]{1,8};)")
_TAG = re.compile(r"<[a-zA-Z/!?][^>]*>?")
_PHP_NUMERIC = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*")


# --- small Moodle helpers ----------------------------------------------------------------------
def moodle_exception(errorcode: str, debuginfo: str | None = None) -> ExternalError:
    """``new moodle_exception($errorcode)`` of core: the message is core's error string for the
    code, or ``error/<code>`` when core has none (Moodle then shows the code itself)."""
    message = _ERROR_STRINGS.get(errorcode, f"error/{errorcode}")
    return ExternalError(errorcode, message, debuginfo=debuginfo)


def php_empty(value: Any) -> bool:
    """PHP's ``empty()``: None, "", "0", 0 and empty containers are empty."""
    return value is None or value in ("", "0", 0, False) or value == [] or value == {}


def _php_loose_equal(sent: str, cleaned: Any) -> bool:
    """PHP 8's ``==`` between a sent string and its cleaned value (numeric strings by value)."""
    text = php_string(cleaned)
    if _PHP_NUMERIC.fullmatch(sent) and _PHP_NUMERIC.fullmatch(text):
        return float(sent) == float(text)
    return sent == text


def setting(world: World, name: str, default: Any) -> Any:
    """A site setting (``$CFG->name``), or Moodle's install default when the seed has none."""
    value = world.settings.get(name)
    return default if value is None else value


def format_string(text: str) -> str:
    """Moodle's ``format_string()`` with the default ``formatstringstriptags`` on."""
    text = _AMPERSAND.sub("&amp;", text)
    return _TAG.sub("", text).replace("<", "&lt;").replace(">", "&gt;")


def validate_email(address: str) -> bool:
    """Moodle's ``validate_email()``: PHPMailer's HTML5 rule, and no angle brackets."""
    return bool(_HTML5_EMAIL.fullmatch(address)) and not re.search(r"[<>\r\n]", address)


def value_of(world: World, user: Row, name: str) -> Any:
    """A column of a user row, with the table default when the row does not carry it."""
    if name in user:
        return user[name]
    if name == "lang":
        return setting(world, "lang", "en")
    if name == "calendartype":
        return setting(world, "calendartype", "gregorian")
    return _ROW_DEFAULTS.get(name)


def fullname(world: World, user: Row) -> str:
    """Moodle's ``fullname()`` with the site's ``fullnamedisplay`` (English: first then last)."""
    template = str(setting(world, "fullnamedisplay", "language"))
    first, last = str(user.get("firstname", "")), str(user.get("lastname", ""))
    if template == "language":
        # The language string "{firstname} {lastname}" is used as is: nothing is trimmed.
        return f"{first} {last}"
    names = (
        "firstnamephonetic",
        "lastnamephonetic",
        "middlename",
        "alternatename",
        "firstname",
        "lastname",
    )
    for name in names:
        template = template.replace(name, str(value_of(world, user, name) or ""))
    return re.sub(r"\s{2,}", " ", template).strip()


def picture_url(world: World, size: str) -> str:
    """``user_picture::get_url()`` of a user without an uploaded picture (``f1`` or ``f2``).

    The emulator does not store uploaded pictures, so every user has the theme's default image.
    """
    wwwroot = world.settings["wwwroot"]
    theme = setting(world, "theme", "boost")
    themerev = setting(world, "themerev", "-1")
    return f"{wwwroot}/theme/image.php/{theme}/core/{themerev}/u/{size}"


def is_guest(user: Row) -> bool:
    """Whether ``user`` is the site's guest account (``isguestuser()``)."""
    return user.get("kind") == "guest" or user.get("username") == "guest"


def user_preferences(user: Row) -> dict[str, Any]:
    """The user's ``user_preferences`` rows, name to value, in the order they were written.

    A seeded manual account that carries no preferences had its password set when it was
    created, which is when Moodle's manual auth plugin records ``auth_manual_passwordupdatetime``.
    """
    if "preferences" not in user:
        prefs: dict[str, Any] = {}
        if user.get("auth", "manual") == "manual" and int(user.get("timecreated") or 0) > 0:
            prefs["auth_manual_passwordupdatetime"] = str(user["timecreated"])
        user["preferences"] = prefs
    result: dict[str, Any] = user["preferences"]
    return result


def _set_preference(user: Row, name: str, value: Any) -> None:
    """``set_user_preference()``: values are stored as strings; null removes the preference."""
    prefs = user_preferences(user)
    if value is None:
        prefs.pop(name, None)
    else:
        prefs[name] = php_string(value)


def _password_policy_errors(world: World, password: str) -> list[str]:
    """``get_password_policy_errors()`` for the site's policy settings."""
    if php_empty(setting(world, "passwordpolicy", "1")):
        return []

    def minimum(name: str, default: str) -> int:
        return int(setting(world, name, default) or 0)

    categories = [unicodedata.category(ch) for ch in password]
    errors = []
    length = minimum("minpasswordlength", "8")
    if len(password) < length:
        errors.append(f"Passwords must be at least {length} characters long.")
    digits = minimum("minpassworddigits", "1")
    if categories.count("Nd") < digits:
        errors.append(f"Passwords must have at least {digits} digit(s).")
    lower = minimum("minpasswordlower", "1")
    if categories.count("Ll") < lower:
        errors.append(f"Passwords must have at least {lower} lower case letter(s).")
    upper = minimum("minpasswordupper", "1")
    if categories.count("Lu") < upper:
        errors.append(f"Passwords must have at least {upper} upper case letter(s).")
    special = minimum("minpasswordnonalphanum", "1")
    if sum(1 for c in categories if c not in ("Nd", "Ll", "Lu")) < special:
        errors.append(
            f"The password must have at least {special} special character(s) such as *, -, or #."
        )
    identical = minimum("maxconsecutiveidentchars", "0")
    if identical > 0 and re.search(rf"(.)\1{{{identical}}}", password, re.DOTALL):
        errors.append(f"Passwords must have at most {identical} consecutive identical characters.")
    return errors


def _password_policy_error(world: World, password: str) -> ExternalError | None:
    """``check_password_policy()`` as ``user_*_user()`` use it: its HTML is the errorcode."""
    errmsg = "".join(f"<div>{error}</div>" for error in _password_policy_errors(world, password))
    return moodle_exception(errmsg) if errmsg else None


def _ordered_profile_fields(world: World) -> list[Row]:
    return sorted(
        world.profile_fields.values(),
        key=lambda f: (f.get("categoryid", 0), f.get("sortorder", 0), f["id"]),
    )


def _save_profile_data(world: World, user: Row, customfields: Iterable[Row]) -> None:
    """``profile_save_data()``: values of existing fields are stored; unknown names are ignored."""
    known = {f["shortname"] for f in world.profile_fields.values()}
    values = user.setdefault("customfields", {})
    for item in customfields:
        if item["type"] in known:
            values[item["type"]] = item["value"]


def _interests(value: str) -> list[str]:
    """The tags ``useredit_update_interests()`` makes of a comma-separated interests string."""
    tags: list[str] = []
    for part in value.split(","):
        tag = part.strip(_PHP_TRIM)
        if not php_empty(tag) and tag.lower() not in (t.lower() for t in tags):
            tags.append(tag)
    return tags


def _write_columns(user: Row, item: Row) -> None:
    for column in _USER_COLUMNS:
        if column in item:
            value = item[column]
            user[column] = int(bool(value)) if column == "suspended" else value


def _write_extras(world: World, user: Row, item: Row) -> None:
    """What create and update store after the row itself: interests, profile fields, prefs."""
    if not php_empty(item.get("interests")):
        user["interests"] = _interests(str(item["interests"]))
    if item.get("customfields"):
        _save_profile_data(world, user, item["customfields"])
    for preference in item.get("preferences") or []:
        _set_preference(user, str(preference["type"]), preference["value"])


# --- core_user_create_users --------------------------------------------------------------------
@dataclass
class _NewUsers:
    """Users inserted so far in one ``create_users`` transaction."""

    new_row: Row
    rows: list[Row] = field(default_factory=list)
    usernames: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)


def _new_user_problem(call: Call, item: Row, batch: _NewUsers) -> str | None:
    """Why ``create_users`` refuses this user before inserting it (the debuginfo), or None."""
    world = call.world
    for name in ("username", "firstname", "lastname"):
        if str(item[name]).strip(_PHP_TRIM) == "":
            return f"The field {name} cannot be blank"
    username = item["username"]
    if username in world.username_index or username in batch.usernames:
        return f"Username already exists: {username}"
    auth = item["auth"]  # validate_parameters() already refused plugins that are not installed
    if auth in _UNCREATABLE_AUTHS:
        return f"Invalid authentication type: {auth}"
    if item["lang"] not in INSTALLED_LANGS:
        return f"Invalid language code: {item['lang']}"
    if not php_empty(item.get("theme")) and item["theme"] not in INSTALLED_THEMES:
        return f"Invalid theme: {item['theme']}"
    if (
        auth not in _EXTERNAL_AUTHS
        and php_empty(item.get("password"))
        and php_empty(item.get("createpassword"))
    ):
        return "Invalid password: you must provide a password, or set createpassword."
    email = item["email"]
    if not validate_email(email):
        return f"Email address is invalid: {email}"
    if php_empty(setting(world, "allowaccountssameemail", "0")) and (
        world.email_taken(email) or email.lower() in batch.emails
    ):
        return f"Email address already exists: {email}"
    return None


def _new_row(world: World) -> Row:
    """A new user row before the caller's values: the table's and the site's defaults."""
    row = dict(_ROW_DEFAULTS)
    row.update(
        lang=setting(world, "lang", "en"),
        calendartype=setting(world, "calendartype", "gregorian"),
        mnethostid=int(setting(world, "mnet_localhost_id", "1")),
    )
    return row


def _insert_user(world: World, new_row: Row, values: Row, now: int) -> Row:
    """``user_create_user()``'s insert of ``values`` over ``new_row``: a fresh id and context."""
    row: Row = {"id": world.next_id("user", world.users), "contextid": world.next_context_id()}
    row.update(new_row)
    row.update(
        timecreated=now,
        timemodified=now,
        customfields={},
        system_roles=[],
        site_admin=False,
        preferences={},
    )
    _write_columns(row, values)
    return row


def _new_user(call: Call, item: Row, batch: _NewUsers) -> Row:
    """Check and insert one user of a ``create_users`` batch (not yet visible to others)."""
    problem = _new_user_problem(call, item, batch)
    if problem is not None:
        raise invalid_parameter(problem)
    world = call.world
    createpassword = not php_empty(item.get("createpassword"))
    internal = item["auth"] not in _EXTERNAL_AUTHS
    updatepassword = internal and not createpassword
    policy = _password_policy_error(world, str(item["password"])) if updatepassword else None
    if policy is not None:
        raise policy
    row = _insert_user(world, batch.new_row, item, call.now)
    if updatepassword and item["auth"] == "manual":
        _set_preference(row, "auth_manual_passwordupdatetime", call.now)
    if createpassword:
        # setnew_password_and_mail() makes the user choose a password at first login.
        _set_preference(row, "auth_forcepasswordchange", 1)
    _write_extras(world, row, item)
    batch.rows.append(row)
    batch.usernames.add(row["username"])
    batch.emails.add(str(row["email"]).lower())
    return row


def _commit(world: World, rows: Iterable[Row]) -> None:
    for row in rows:
        world.users[row["id"]] = row
        world.index_user(row)


@ws_function("core_user_create_users")
def create_users(call: Call) -> list[dict[str, Any]]:
    """Create users, all or none: the first bad user rolls back those inserted before it."""
    call.require_capability("moodle/user:create", "Create users")
    batch = _NewUsers(_new_row(call.world))
    for item in call.params["users"]:
        _new_user(call, item, batch)
    _commit(call.world, batch.rows)
    return [{"id": row["id"], "username": row["username"]} for row in batch.rows]


@setup_action("create_users_bulk")
def create_users_bulk(emulator: Emulator, action: dict[str, Any]) -> None:
    """Create ``count`` users directly (no web service, no events), ids consecutive with n."""
    world = emulator.world
    first, count = int(action["first"]), int(action["count"])
    timecreated = int(action["timecreated"])
    new_row = _new_row(world)
    rows = []
    for n in range(first, first + count):
        username = action["username_format"] % n
        values = {
            "username": username,
            "idnumber": username,
            "firstname": action["firstname"],
            "lastname": action["lastname_format"] % n,
            "email": action["email_format"] % n,
            "auth": "manual",
            "lang": "en",
        }
        row = _insert_user(world, new_row, values, timecreated)
        # The password was set through the manual auth plugin when the account was created.
        _set_preference(row, "auth_manual_passwordupdatetime", timecreated)
        rows.append(row)
    _commit(world, rows)


# --- core_user_update_users --------------------------------------------------------------------
def _update_problem(call: Call, user: Row | None, item: Row) -> ExternalError | None:
    """The exception ``update_users`` stops at for this user (its warning), or None."""
    world = call.world
    if user is None:
        return moodle_exception("invaliduserid")
    if user["id"] != call.userid and user.get("site_admin") and not call.is_admin:
        return moodle_exception("usernotupdatedadmin")
    if is_guest(user):
        return moodle_exception("usernotupdatedguest")
    if "email" in item and item["email"] != user.get("email"):
        if not validate_email(item["email"]):
            return moodle_exception("useremailinvalid")
        if php_empty(setting(world, "allowaccountssameemail", "0")) and world.email_taken(
            item["email"], except_id=user["id"]
        ):
            return moodle_exception("useremailduplicate")
    # user_update_user(): the password policy applies to any new password, whatever the auth.
    if "password" in item:
        policy = _password_policy_error(world, str(item["password"]))
        if policy is not None:
            return policy
    username = str(item.get("username", user["username"]))
    if world.username_index.get(username, user["id"]) != user["id"]:
        # The unique index on (mnethostid, username) refuses the row: a dml_write_exception.
        return moodle_exception("dmlwriteexception")
    return None


def _update_user(call: Call, item: Row) -> None:
    """``update_users`` for one user; raises what Moodle turns into that user's warning."""
    world = call.world
    user = world.users.get(item["id"])
    problem = _update_problem(call, user, item)
    if problem is not None:
        raise problem
    assert user is not None  # _update_problem() refuses a missing user
    values = dict(item)
    if php_empty(values.get("calendartype")):
        values.pop("calendartype", None)
    world.unindex_user(user)
    _write_columns(user, values)
    user["timemodified"] = call.now
    world.index_user(user)
    if "password" in item and value_of(world, user, "auth") == "manual":
        _set_preference(user, "auth_manual_passwordupdatetime", call.now)
    _write_extras(world, user, values)


@ws_function("core_user_update_users")
def update_users(call: Call) -> dict[str, Any]:
    """Update users one by one; each failure becomes a warning and the others still apply."""
    call.require_capability("moodle/user:update", "Update user profiles")
    warnings = []
    for item in call.params["users"]:
        try:
            _update_user(call, item)
        except ExternalError as error:
            warnings.append(
                {
                    "item": "user",
                    "itemid": item["id"],
                    "warningcode": error.errorcode,
                    "message": error.message,
                }
            )
    return {"warnings": warnings}


# --- core_user_delete_users --------------------------------------------------------------------
def _missing_user(userid: int) -> ExternalError:
    return ExternalError(
        "invaliduser",
        "Invalid user",
        exception="dml_missing_record_exception",
        debuginfo=(
            f"SELECT * FROM {{user}} WHERE id = ? AND deleted = ?\n"
            f"[array (\n  0 => {userid},\n  1 => 0,\n)]"
        ),
    )


def _delete_user(world: World, user: Row) -> None:
    """``delete_user()``: the account goes with its enrolments, memberships and tokens.

    Moodle keeps a renamed row flagged as deleted that no lookup returns; the emulator drops it.
    """
    uid = user["id"]
    world.unindex_user(user)
    del world.users[uid]
    for enrolid, userid in [key for key in world.enrolments if key[1] == uid]:
        world.remove_enrolment(enrolid, userid)
    for cohortid in list(world.user_cohorts.get(uid, ())):
        world.remove_cohort_member(cohortid, uid)
    for token in [t for t, holder in world.tokens.items() if holder == uid]:
        world.revoke_token(token)


def _delete_refusal(call: Call, user: Row) -> str | None:
    """Why ``delete_users`` will not delete this account (an error code), or None."""
    if user.get("site_admin"):
        return "useradminodelete"
    if user["id"] == call.userid:
        return "usernotdeletederror"
    return None


@ws_function("core_user_delete_users")
def delete_users(call: Call) -> None:
    """Delete users, all or none (admins, the caller and unknown ids fail the whole batch)."""
    call.require_capability("moodle/user:delete", "Delete users")
    world = call.world
    doomed: dict[int, Row] = {}
    for userid in call.params["userids"]:
        user = world.users.get(userid)
        if user is None or userid in doomed:
            raise _missing_user(userid)
        refusal = _delete_refusal(call, user)
        if refusal is not None:
            raise moodle_exception(refusal)
        doomed[userid] = user
    # The id sequence must not hand a deleted user's id out again.
    world.reserve_ids("user", max(world.users, default=0) + 1)
    for user in doomed.values():
        if not is_guest(user):  # delete_user() refuses the guest account without an error.
            _delete_user(world, user)


# --- user_get_user_details ---------------------------------------------------------------------
@dataclass
class Viewer:
    """The calling user, with what ``user_get_user_details()`` lets them see of others."""

    call: Call
    can_view_details: bool
    can_view_all_details: bool
    can_view_hidden: bool
    identity: frozenset[str]
    hidden: frozenset[str]
    profile_fields: list[Row]
    _course_contacts: set[int] | None = None
    _assigned: set[int] | None = None

    @classmethod
    def of(cls, call: Call) -> Viewer:
        """Work out the caller's capabilities once per call."""
        identity: frozenset[str] = frozenset()
        if call.has_capability("moodle/site:viewuseridentity"):
            shown = str(setting(call.world, "showuseridentity", "email"))
            identity = frozenset(name.strip() for name in shown.split(",") if name.strip())
        hidden = str(setting(call.world, "hiddenuserfields", ""))
        return cls(
            call=call,
            can_view_details=call.has_capability("moodle/user:viewdetails"),
            can_view_all_details=call.has_capability("moodle/user:viewalldetails"),
            can_view_hidden=call.has_capability("moodle/user:viewhiddendetails"),
            identity=identity,
            hidden=frozenset(name.strip() for name in hidden.split(",") if name.strip()),
            profile_fields=_ordered_profile_fields(call.world),
        )

    def is_course_contact(self, userid: int) -> bool:
        """``has_coursecontact_role()``: holds a course contact role (teacher) in some course."""
        if self._course_contacts is None:
            roles = {
                int(r)
                for r in str(setting(self.call.world, "coursecontact", "3")).split(",")
                if r.strip()
            }
            self._course_contacts = {
                e["userid"]
                for e in self.call.world.enrolments.values()
                if roles.intersection(e.get("roleids", []))
            }
        return userid in self._course_contacts

    def has_role_assignment(self, user: Row) -> bool:
        """Whether the user holds any role anywhere (``profilesforenrolledusersonly``)."""
        if user.get("system_roles"):
            return True
        if self._assigned is None:
            self._assigned = {
                e["userid"] for e in self.call.world.enrolments.values() if e.get("roleids")
            }
        return user["id"] in self._assigned


def _field_visible(viewer: Viewer, profile_field: Row, user: Row) -> bool:
    """``profile_field_base::is_visible()`` for a user's profile page."""
    visible = int(profile_field.get("visible", 2))
    if visible == 2:  # PROFILE_VISIBLE_ALL
        return True
    if visible in (1, 3) and user["id"] == viewer.call.userid:  # PRIVATE, TEACHERS
        return True
    return viewer.can_view_all_details


def _display_value(profile_field: Row, data: Any) -> str:
    if profile_field.get("datatype") in ("text", "menu"):
        return format_string(php_string(data))
    return php_string(data)


def _custom_fields(viewer: Viewer, user: Row) -> list[dict[str, Any]]:
    values = user.get("customfields") or {}
    result = []
    for profile_field in viewer.profile_fields:
        data = values.get(profile_field["shortname"])
        if php_empty(data) or not _field_visible(viewer, profile_field, user):
            continue
        result.append(
            {
                "type": profile_field["datatype"],
                "value": data,
                "displayvalue": _display_value(profile_field, data),
                "name": profile_field["name"],
                "shortname": profile_field["shortname"],
            }
        )
    return result


def _preferences(call: Call, user: Row) -> list[dict[str, Any]]:
    """The caller's own preferences, as loaded for this request.

    Every web-service login runs ``enrol_check_plugins()``, which stamps
    ``last_time_enrolments_synced`` at most once per sync interval; it is only visible here.
    """
    prefs = user_preferences(user)
    if call.now - int(prefs.get("last_time_enrolments_synced", 0)) >= _ENROLMENT_SYNC_INTERVAL:
        prefs["last_time_enrolments_synced"] = str(call.now)
    result: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in prefs.items()]
    result.append({"name": "_lastloaded", "value": call.now})
    return result


def _visible_to_owner_or(viewer: Viewer, current: bool, name: str) -> bool:
    return name in viewer.identity or current or viewer.can_view_all_details


def user_details(viewer: Viewer, user: Row) -> dict[str, Any] | None:
    """``user_get_user_details_courses()`` for the system profile, or None when hidden.

    The course-profile route (seeing a user through a course the caller teaches in) is not
    modelled: the service accounts this emulator serves hold their capabilities at site level.
    """
    world = viewer.call.world
    current = user["id"] == viewer.call.userid
    is_admin = viewer.call.is_admin
    if not (current or viewer.can_view_details or viewer.is_course_contact(user["id"])):
        return None

    def shown(name: str) -> bool:
        return name not in viewer.hidden or is_admin

    def col(name: str) -> Any:
        return value_of(world, user, name)

    details: dict[str, Any] = {"id": user["id"]}
    if current or viewer.can_view_all_details:
        details["username"] = user["username"]
    details["firstname"] = user.get("firstname", "")
    details["lastname"] = user.get("lastname", "")
    details["fullname"] = fullname(world, user)
    customfields = _custom_fields(viewer, user)
    if customfields:
        details["customfields"] = customfields
    details["profileimageurl"] = picture_url(world, "f1")
    details["profileimageurlsmall"] = picture_url(world, "f2")
    if viewer.can_view_hidden and col("address"):
        details["address"] = col("address")
    for phone in ("phone1", "phone2"):
        if col(phone) and (phone in viewer.identity or viewer.can_view_hidden):
            details[phone] = col(phone)
    description = col("description")
    if description is not None and (
        is_admin
        or (
            shown("description")
            and (
                current
                or php_empty(setting(world, "profilesforenrolledusersonly", "1"))
                or viewer.has_role_assignment(user)
            )
        )
    ):
        details["description"] = description
        details["descriptionformat"] = col("descriptionformat")
    for name in ("country", "city"):
        if shown(name) and col(name):
            details[name] = col(name)
    if shown("suspended"):
        details["suspended"] = bool(col("suspended"))
    for name in ("firstaccess", "lastaccess"):
        if shown(name):
            details[name] = col(name) or 0
    if is_admin or current or "email" in viewer.identity or int(col("maildisplay")) == 1:
        details["email"] = user.get("email", "")
    if user.get("interests"):
        details["interests"] = ", ".join(user["interests"])
    for name in ("idnumber", "institution"):
        if col(name) and _visible_to_owner_or(viewer, current, name):
            details[name] = col(name)
    if col("department") is not None and _visible_to_owner_or(viewer, current, "department"):
        details["department"] = col("department")
    if current:
        details["preferences"] = _preferences(viewer.call, user)
    if current or viewer.can_view_all_details:
        for name in ("auth", "confirmed", "lang", "theme", "timezone", "mailformat", "trackforums"):
            details[name] = col(name)
    return details


# --- core_user_get_users_by_field --------------------------------------------------------------
def _matching_ids(world: World, field_name: str, values: Iterable[Any]) -> Iterator[int]:
    """Ids of the users whose ``field_name`` equals one of ``values`` (PostgreSQL ``=``)."""
    for value in values:
        if field_name == "id":
            if value in world.users:
                yield value
        elif field_name == "username":
            uid = world.username_index.get(value)
            if uid is not None:
                yield uid
        elif field_name == "idnumber":
            yield from world.idnumber_index.get(value, ())
        else:  # email: the index is case-insensitive, the database comparison is not.
            yield from (
                uid
                for uid in world.email_index.get(str(value).lower(), ())
                if world.users.get(uid, {}).get("email") == value
            )


def _search_field_error(field_name: str) -> ExternalError:
    return ExternalError(
        "codingerror",
        "Coding error detected, it must be fixed by a programmer: invalid field parameter",
        exception="core\\exception\\coding_exception",
        debuginfo=f"The search field '{field_name}' is not supported, look at the web service "
        "documentation",
    )


@ws_function("core_user_get_users_by_field")
def get_users_by_field(call: Call) -> list[dict[str, Any]]:
    """Users by id, idnumber, username or email; what the caller may not see is left out."""
    world = call.world
    field_name = call.params["field"]
    if field_name not in ("id", "idnumber", "username", "email"):
        raise _search_field_error(field_name)
    paramtype = _PROPERTY_TYPES[field_name]
    cleaned = []
    for value in call.params["values"]:
        clean = clean_param(value, paramtype, world.settings)
        if not _php_loose_equal(php_string(value), clean):
            problem = (
                f"The field '{field_name}' value is invalid: {php_string(value)}"
                f"(cleaned value: {php_string(clean)})"
            )
            raise invalid_parameter(problem)
        cleaned.append(clean)
    viewer = Viewer.of(call)
    result = []
    for uid in sorted(set(_matching_ids(world, field_name, cleaned))):
        details = user_details(viewer, world.users[uid])
        # Only users whose searched field the caller may see are returned.
        if details is not None and not php_empty(details.get(field_name)):
            result.append(details)
    return result


# --- core_user_get_users -----------------------------------------------------------------------
def _like(pattern: str) -> re.Pattern[str]:
    """A case-insensitive SQL ``LIKE`` pattern (``%``, ``_``, ``\\`` escapes) as a regex."""
    parts = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            parts.append(re.escape(next(chars, "\\")))
        elif ch == "%":
            parts.append(".*")
        elif ch == "_":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _criterion_matches(world: World, key: str, value: Any) -> Iterator[int]:
    """Ids of users matching one criterion, as the SQL ``get_users`` builds would."""
    if key in ("id", "username", "idnumber"):
        yield from _matching_ids(world, key, [value])
        return
    if key == "auth":
        yield from (
            uid for uid, user in world.users.items() if value_of(world, user, "auth") == value
        )
        return
    regex = _like(php_string(value))
    yield from (
        uid for uid, user in world.users.items() if regex.fullmatch(php_string(user.get(key, "")))
    )


def _key_already_set(key: str) -> ExternalError:
    return moodle_exception("keyalreadyset", f"The key {key} can only be sent once")


@ws_function("core_user_get_users")
def get_users(call: Call) -> dict[str, Any]:
    """Users matching every criterion; unsupported keys are dropped with a warning."""
    world = call.world
    warnings = []
    criteria: dict[str, Any] = {}
    for criterion in call.params["criteria"]:
        key = criterion["key"]
        if key in criteria:
            raise _key_already_set(key)
        if key not in _PROPERTY_TYPES:
            warnings.append(
                {
                    "item": key,
                    "warningcode": "invalidfieldparameter",
                    "message": f"The search key '{key}' is not supported, look at the web service "
                    "documentation",
                }
            )
            continue
        criteria[key] = clean_param(criterion["value"], _PROPERTY_TYPES[key], world.settings)
    ids: set[int] | None = None
    for key, value in criteria.items():
        found = set(_criterion_matches(world, key, value))
        ids = found if ids is None else ids & found
    viewer = Viewer.of(call)
    users = []
    for uid in sorted(world.users if ids is None else ids):
        details = user_details(viewer, world.users[uid])
        # A user is returned only if the caller may see every field searched by.
        if details is not None and all(not php_empty(details.get(key)) for key in criteria):
            users.append(details)
    return {"users": users, "warnings": warnings}
