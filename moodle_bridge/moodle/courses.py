"""Courses and categories: ``core_course_get_courses_by_field``, ``core_course_get_categories``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import Field

from moodle_bridge.moodle.api import (
    Caller,
    MoodleModel,
    NameValue,
    name_value_list,
    parse,
    parse_list,
)

__all__ = [
    "Category",
    "Course",
    "CourseField",
    "get_categories",
    "get_courses_by_field",
]

#: The fields ``core_course_get_courses_by_field`` can look courses up by ("" for all).
CourseField = Literal["", "id", "ids", "shortname", "idnumber", "category", "sectionid"]


class Course(MoodleModel):
    """A course as ``core_course_get_courses_by_field`` reports it.

    ``idnumber`` and the settings after it are only there for a token that may see them.
    """

    id: int
    shortname: str
    fullname: str
    displayname: str
    categoryid: int
    categoryname: str
    summary: str
    summaryformat: int
    enrollmentmethods: list[str]
    #: None when completion is off for the course.
    showcompletionconditions: bool | None = None
    idnumber: str | None = None
    format: str | None = None
    visible: bool | None = None
    enablecompletion: bool | None = None
    startdate: int | None = None
    enddate: int | None = None
    lang: str | None = None
    timecreated: int | None = None
    timemodified: int | None = None
    courseformatoptions: list[NameValue] = Field(default_factory=list)


class Category(MoodleModel):
    """A course category; ``path`` is its ancestry as ``/parent/.../id``."""

    id: int
    name: str
    parent: int
    depth: int
    path: str
    sortorder: int
    coursecount: int
    description: str
    descriptionformat: int
    idnumber: str | None = None
    visible: bool | None = None
    timemodified: int | None = None


class _CoursesAnswer(MoodleModel):
    courses: list[Course]


def get_courses_by_field(
    caller: Caller, field: CourseField = "", value: str | int | Sequence[int] = ""
) -> list[Course]:
    """Return the courses whose ``field`` equals ``value``; every course when ``field`` is "".

    For ``field="ids"`` give a list of ids. A missing id among several makes Moodle fail
    with a PHP error (MoodleException without errorcode); a missing single value gives [].
    """
    wsfunction = "core_course_get_courses_by_field"
    if not isinstance(value, str | int):
        value = ",".join(str(item) for item in value)
    answer = caller.call(wsfunction, {"field": field, "value": value})
    return parse(wsfunction, _CoursesAnswer, answer).courses


def get_categories(
    caller: Caller,
    criteria: Mapping[str, str | int] | None = None,
    *,
    addsubcategories: bool = True,
) -> list[Category]:
    """Return the categories matching every one of ``criteria`` (all without criteria).

    Keys: id, ids (comma-separated), name, parent, idnumber, visible, theme. Searching by
    ``idnumber`` needs ``moodle/category:manage`` (else ``criteriaerror``).
    """
    wsfunction = "core_course_get_categories"
    params = {
        "criteria": name_value_list(criteria or {}, name="key"),
        "addsubcategories": addsubcategories,
    }
    return parse_list(wsfunction, Category, caller.call(wsfunction, params))
