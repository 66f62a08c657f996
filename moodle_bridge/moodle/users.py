"""Users: ``core_user_create_users``, ``core_user_update_users``, ``core_user_get_users_by_field``
and ``core_user_get_users``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import Field

from moodle_bridge.moodle.api import (
    Caller,
    MoodleInput,
    MoodleModel,
    MoodleWarning,
    NameValue,
    expect_count,
    name_value_list,
    parse,
    parse_list,
    parse_warnings,
    to_params,
)

__all__ = [
    "CreatedUser",
    "CustomFieldValue",
    "MoodleUser",
    "NewUser",
    "UserCustomField",
    "UserField",
    "UserPreference",
    "UserSearchResult",
    "UserUpdate",
    "create_users",
    "get_users",
    "get_users_by_field",
    "update_users",
]

#: The fields ``core_user_get_users_by_field`` can look users up by.
UserField = Literal["id", "idnumber", "username", "email"]


class CustomFieldValue(MoodleInput):
    """A custom profile field to set: ``type`` is the field's *shortname* (``"satker"``).

    Moodle silently ignores a shortname that does not exist on the site.
    """

    type: str
    value: str


class UserPreference(MoodleInput):
    """A user preference to set: ``type`` is the preference name."""

    type: str
    value: str


class _UserFields(MoodleInput):
    """Profile fields that create and update both accept."""

    auth: str | None = None
    password: str | None = None
    idnumber: str | None = None
    maildisplay: int | None = None
    city: str | None = None
    country: str | None = None
    timezone: str | None = None
    description: str | None = None
    firstnamephonetic: str | None = None
    lastnamephonetic: str | None = None
    middlename: str | None = None
    alternatename: str | None = None
    interests: str | None = None
    institution: str | None = None
    department: str | None = None
    phone1: str | None = None
    phone2: str | None = None
    address: str | None = None
    lang: str | None = None
    calendartype: str | None = None
    theme: str | None = None
    mailformat: int | None = None
    customfields: list[CustomFieldValue] | None = None
    preferences: list[UserPreference] | None = None


class NewUser(_UserFields):
    """A user for ``core_user_create_users``.

    Moodle needs either ``password`` or ``createpassword=True``, except for auth plugins
    that keep no password (``ldap``, ``oauth2``).
    """

    username: str
    firstname: str
    lastname: str
    email: str
    createpassword: bool | None = None


class UserUpdate(_UserFields):
    """Changes to the user ``id``: only the fields given are sent, the rest stay as they are.

    ``suspended=True`` suspends the account, ``False`` reactivates it. Custom fields not
    listed in ``customfields`` keep their values.
    """

    id: int
    username: str | None = None
    firstname: str | None = None
    lastname: str | None = None
    email: str | None = None
    suspended: bool | None = None
    userpicture: int | None = None


class CreatedUser(MoodleModel):
    """A user Moodle created."""

    id: int
    username: str


class UserCustomField(MoodleModel):
    """A custom profile field as Moodle reports it: ``type`` is the field's data type here."""

    shortname: str
    name: str
    type: str
    value: str
    displayvalue: str | None = None


class MoodleUser(MoodleModel):
    """A user as Moodle reports it.

    Moodle leaves out empty fields (a user without ``idnumber`` has none in the answer) and
    fields the token may not see; both arrive as None.
    """

    id: int
    username: str | None = None
    fullname: str
    firstname: str | None = None
    lastname: str | None = None
    email: str | None = None
    idnumber: str | None = None
    auth: str | None = None
    suspended: bool | None = None
    confirmed: bool | None = None
    department: str | None = None
    institution: str | None = None
    city: str | None = None
    country: str | None = None
    lang: str | None = None
    timezone: str | None = None
    firstaccess: int | None = None
    lastaccess: int | None = None
    customfields: list[UserCustomField] = Field(default_factory=list)
    preferences: list[NameValue] = Field(default_factory=list)

    @property
    def customfield_values(self) -> dict[str, str]:
        """The custom profile fields as ``{shortname: value}``."""
        return {field.shortname: field.value for field in self.customfields}


class UserSearchResult(MoodleModel):
    """The users found by ``core_user_get_users``, with Moodle's warnings.

    A criteria key Moodle does not support yields a warning *and every user of the site*.
    """

    users: list[MoodleUser]
    warnings: list[MoodleWarning] = Field(default_factory=list)


def create_users(caller: Caller, users: Sequence[NewUser]) -> list[CreatedUser]:
    """Create ``users`` in one call and return their ids, in the order sent.

    All or nothing: one invalid user fails the call (InvalidParameter) and none is created.
    Not resent on a lost answer: look the users up by idnumber before sending them again.
    Raises TruncatedRequest if Moodle created fewer users than were sent.
    """
    wsfunction = "core_user_create_users"
    params = {"users": [to_params(user) for user in users]}
    answer = caller.call(wsfunction, params, retry_writes=False)
    created = parse_list(wsfunction, CreatedUser, answer)
    expect_count(wsfunction, users, created)
    return created


def update_users(caller: Caller, users: Sequence[UserUpdate]) -> list[MoodleWarning]:
    """Apply ``users`` and return Moodle's warnings, one per user it could not update.

    Per item: the valid updates are applied even when others fail (``invaliduserid``...).
    """
    wsfunction = "core_user_update_users"
    params = {"users": [to_params(user) for user in users]}
    return parse_warnings(wsfunction, caller.call(wsfunction, params))


def get_users_by_field(
    caller: Caller, field: UserField, values: Sequence[str | int]
) -> list[MoodleUser]:
    """Return the users whose ``field`` is one of ``values`` (missing values are skipped).

    No values means no users, without a call (Moodle would refuse an empty list). Beware:
    without ``moodle/user:viewalldetails`` Moodle answers ``[]`` as if nobody existed, and
    ``email`` matches case-sensitively.
    """
    wsfunction = "core_user_get_users_by_field"
    if not values:
        return []
    answer = caller.call(wsfunction, {"field": field, "values": list(values)})
    return parse_list(wsfunction, MoodleUser, answer)


def get_users(caller: Caller, criteria: Mapping[str, str | int]) -> UserSearchResult:
    """Search users by ``criteria`` (``{"email": "%@kemenag.example"}``; ``%`` is a wildcard).

    Supported keys: id, idnumber, username, email, firstname, lastname, auth.
    """
    wsfunction = "core_user_get_users"
    params = {"criteria": name_value_list(criteria, name="key")}
    return parse(wsfunction, UserSearchResult, caller.call(wsfunction, params))
