"""Cohorts: create, search, read, and add or remove members (``core_cohort_*``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from moodle_bridge.moodle.api import (
    Caller,
    Context,
    MoodleInput,
    MoodleModel,
    MoodleWarning,
    expect_count,
    parse,
    parse_list,
    parse_warnings,
    to_params,
)

__all__ = [
    "CategoryRef",
    "Cohort",
    "CohortCustomField",
    "CohortCustomFieldValue",
    "CohortMember",
    "CohortMemberRef",
    "CohortMembers",
    "CohortRef",
    "NewCohort",
    "UserRef",
    "add_cohort_members",
    "create_cohorts",
    "delete_cohort_members",
    "get_cohort_members",
    "get_cohorts",
    "search_cohorts",
]


class CategoryRef(MoodleInput):
    """Where a new cohort lives: ``system``, or a category by ``id`` or ``idnumber``."""

    type: Literal["system", "id", "idnumber"]
    value: str | int = ""


class CohortRef(MoodleInput):
    """A cohort named by ``id`` or ``idnumber``."""

    type: Literal["id", "idnumber"]
    value: str | int


class UserRef(MoodleInput):
    """A user named by ``id``, ``idnumber`` or ``username``."""

    type: Literal["id", "idnumber", "username"]
    value: str | int


class CohortCustomFieldValue(MoodleInput):
    """A cohort custom field to set, by its shortname."""

    shortname: str
    value: str


class NewCohort(MoodleInput):
    """A cohort for ``core_cohort_create_cohorts`` (in the system context unless told)."""

    name: str
    idnumber: str
    categorytype: CategoryRef = Field(default_factory=lambda: CategoryRef(type="system"))
    description: str | None = None
    descriptionformat: int | None = None
    visible: bool | None = None
    theme: str | None = None
    customfields: list[CohortCustomFieldValue] | None = None


class CohortCustomField(MoodleModel):
    """A cohort custom field as Moodle reports it."""

    shortname: str
    name: str
    type: str
    value: str
    valueraw: str


class Cohort(MoodleModel):
    """A cohort as Moodle reports it."""

    id: int
    name: str
    idnumber: str
    description: str
    descriptionformat: int
    visible: bool
    theme: str | None = None
    customfields: list[CohortCustomField] = Field(default_factory=list)


class CohortMemberRef(MoodleInput):
    """A membership to add: a cohort and a user, each named by id or another key."""

    cohorttype: CohortRef
    usertype: UserRef

    @classmethod
    def by_ids(cls, cohortid: int, userid: int) -> CohortMemberRef:
        """The membership of user ``userid`` in cohort ``cohortid``."""
        return cls(
            cohorttype=CohortRef(type="id", value=cohortid),
            usertype=UserRef(type="id", value=userid),
        )


class CohortMember(MoodleInput):
    """A membership to remove, by ids."""

    cohortid: int
    userid: int


class CohortMembers(MoodleModel):
    """The ids of the members of one cohort."""

    cohortid: int
    userids: list[int]


class _SearchAnswer(MoodleModel):
    cohorts: list[Cohort]


def create_cohorts(caller: Caller, cohorts: Sequence[NewCohort]) -> list[Cohort]:
    """Create ``cohorts`` in one call and return them, in the order sent.

    All or nothing: a duplicate ``idnumber`` or a missing category fails the call
    (InvalidParameter). Not resent on a lost answer: search by idnumber first.
    Raises TruncatedRequest if Moodle created fewer cohorts than were sent.
    """
    wsfunction = "core_cohort_create_cohorts"
    params = {"cohorts": [to_params(cohort) for cohort in cohorts]}
    created = parse_list(wsfunction, Cohort, caller.call(wsfunction, params, retry_writes=False))
    expect_count(wsfunction, cohorts, created)
    return created


def search_cohorts(
    caller: Caller,
    query: str,
    *,
    context: Context | None = None,
    includes: Literal["parents", "self", "all"] = "parents",
    limitfrom: int = 0,
    limitnum: int = 25,
) -> list[Cohort]:
    """Return the cohorts whose name or idnumber contains ``query``.

    ``context`` defaults to the system context; ``includes`` says whether cohorts of its
    parents (``parents``), only its own (``self``) or also of its children (``all``) count.
    """
    wsfunction = "core_cohort_search_cohorts"
    params = {
        "query": query,
        "context": to_params(context or Context.system()),
        "includes": includes,
        "limitfrom": limitfrom,
        "limitnum": limitnum,
    }
    return parse(wsfunction, _SearchAnswer, caller.call(wsfunction, params)).cohorts


def get_cohorts(caller: Caller, cohortids: Sequence[int] = ()) -> list[Cohort]:
    """Return the cohorts ``cohortids`` (ids that do not exist are skipped); all when empty."""
    wsfunction = "core_cohort_get_cohorts"
    answer = caller.call(wsfunction, {"cohortids": list(cohortids)})
    return parse_list(wsfunction, Cohort, answer)


def add_cohort_members(caller: Caller, members: Sequence[CohortMemberRef]) -> list[MoodleWarning]:
    """Add ``members`` and return Moodle's warnings for the ones it skipped.

    Per item: valid memberships are added even when others fail. ``warningcode`` is ``"3"``
    for an existing member, ``"2"`` for a missing cohort or user, ``"1"`` for a bad type.
    """
    wsfunction = "core_cohort_add_cohort_members"
    params = {"members": [to_params(member) for member in members]}
    return parse_warnings(wsfunction, caller.call(wsfunction, params))


def delete_cohort_members(caller: Caller, members: Sequence[CohortMember]) -> None:
    """Remove ``members`` (removing a non-member is no error).

    All or nothing: a missing cohort (InvalidRecord) or user fails the whole call.
    """
    wsfunction = "core_cohort_delete_cohort_members"
    params = {"members": [to_params(member) for member in members]}
    caller.call(wsfunction, params)


def get_cohort_members(caller: Caller, cohortids: Sequence[int]) -> list[CohortMembers]:
    """Return the member ids of each cohort in ``cohortids``; a missing cohort is InvalidRecord."""
    wsfunction = "core_cohort_get_cohort_members"
    answer = caller.call(wsfunction, {"cohortids": list(cohortids)})
    return parse_list(wsfunction, CohortMembers, answer)
