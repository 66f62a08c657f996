"""Competencies: frameworks, competencies, and the competencies linked to a course."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field

from moodle_bridge.moodle.api import (
    Caller,
    Context,
    MoodleInput,
    MoodleModel,
    name_value_list,
    parse_list,
    to_params,
)

__all__ = [
    "Competency",
    "CompetencyFramework",
    "CourseCompetency",
    "CourseCompetencyLink",
    "FrameworkQuery",
    "list_competencies",
    "list_competency_frameworks",
    "list_course_competencies",
]

SortOrder = Literal["", "ASC", "DESC"]


class CompetencyFramework(MoodleModel):
    """A competency framework (``scaleconfiguration`` and ``taxonomies`` are Moodle's text)."""

    id: int
    shortname: str
    idnumber: str
    description: str
    descriptionformat: int
    visible: bool
    scaleid: int
    scaleconfiguration: str
    contextid: int
    taxonomies: str
    competenciescount: int | None = None
    timecreated: int
    timemodified: int


class Competency(MoodleModel):
    """A competency of a framework; ``parentid`` 0 and ``path`` "/0/" at the top level."""

    id: int
    shortname: str
    idnumber: str
    description: str
    descriptionformat: int
    competencyframeworkid: int
    parentid: int
    path: str
    sortorder: int
    ruleoutcome: int
    ruletype: str | None = None
    ruleconfig: str | None = None
    scaleid: int | None = None
    scaleconfiguration: str | None = None
    timecreated: int
    timemodified: int


class CourseCompetencyLink(MoodleModel):
    """The link between a course and a competency (``ruleoutcome``: what completing does)."""

    id: int
    courseid: int
    competencyid: int
    sortorder: int
    ruleoutcome: int


class CourseCompetency(MoodleModel):
    """A competency linked to a course, with the link."""

    competency: Competency
    coursecompetency: CourseCompetencyLink


class FrameworkQuery(MoodleInput):
    """Which frameworks ``core_competency_list_competency_frameworks`` lists: of ``context``
    (the system context by default) and, with ``includes``, of its children or parents;
    ``limit`` 0 means no limit."""

    sort: str = "shortname"
    order: SortOrder = ""
    skip: int = 0
    limit: int = 0
    context: Context = Field(default_factory=Context.system)
    includes: Literal["children", "parents", "self"] = "children"
    onlyvisible: bool = False
    query: str = ""


def list_competency_frameworks(
    caller: Caller, query: FrameworkQuery | None = None
) -> list[CompetencyFramework]:
    """Return the frameworks ``query`` asks for (by default every framework of the site)."""
    wsfunction = "core_competency_list_competency_frameworks"
    params = to_params(query or FrameworkQuery())
    return parse_list(wsfunction, CompetencyFramework, caller.call(wsfunction, params))


def list_competencies(
    caller: Caller,
    filters: Mapping[str, str | int],
    *,
    sort: str = "",
    order: SortOrder = "",
    skip: int = 0,
    limit: int = 0,
) -> list[Competency]:
    """Return the competencies whose columns equal ``filters``
    (``{"competencyframeworkid": 1}``, ``{"idnumber": "KOMP-INTEGRITAS"}``).

    An unknown column is InvalidParameter; ``limit`` 0 means no limit.
    """
    wsfunction = "core_competency_list_competencies"
    params = {
        "filters": name_value_list(filters, name="column"),
        "sort": sort,
        "order": order,
        "skip": skip,
        "limit": limit,
    }
    return parse_list(wsfunction, Competency, caller.call(wsfunction, params))


def list_course_competencies(caller: Caller, courseid: int) -> list[CourseCompetency]:
    """Return the competencies linked to ``courseid``, in the course's order."""
    wsfunction = "core_competency_list_course_competencies"
    answer = caller.call(wsfunction, {"id": courseid})
    return parse_list(wsfunction, CourseCompetency, answer)
