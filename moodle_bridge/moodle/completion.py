"""Completion: a user's course completion and activity completion in a course."""

from __future__ import annotations

from pydantic import Field

from moodle_bridge.moodle.api import Caller, MoodleModel, parse

__all__ = [
    "AGGREGATION_ALL",
    "AGGREGATION_ANY",
    "ActivityCompletion",
    "ActivityRule",
    "CompletionCriterion",
    "CourseCompletionStatus",
    "CriterionDetails",
    "RuleValue",
    "get_activities_completion_status",
    "get_course_completion_status",
]

#: ``aggregation``: the course completes when all criteria are met...
AGGREGATION_ALL = 1
#: ...or when any one of them is.
AGGREGATION_ANY = 2


class CriterionDetails(MoodleModel):
    """How Moodle describes one criterion (display text; ``criteria`` may hold HTML)."""

    type: str
    criteria: str
    requirement: str
    status: str


class CompletionCriterion(MoodleModel):
    """One completion criterion and whether the user met it (``timecompleted`` if so)."""

    type: int
    title: str
    status: str
    complete: bool
    timecompleted: int | None = None
    details: CriterionDetails


class CourseCompletionStatus(MoodleModel):
    """Whether a user completed a course, and the state of each criterion.

    ``completed`` is the course's own verdict. A completion written directly (by an
    administrator or an import) makes it True while the criteria still say incomplete.
    """

    completed: bool
    aggregation: int
    completions: list[CompletionCriterion]

    @property
    def timecompleted(self) -> int | None:
        """When the course was completed (epoch seconds), as far as the criteria tell.

        The time the last criterion was met (the first, for ``AGGREGATION_ANY``). None when
        the course is not completed, or when no met criterion carries a time, as for a
        completion written directly: this function cannot tell when that happened.
        """
        if not self.completed:
            return None
        times = [c.timecompleted for c in self.completions if c.complete and c.timecompleted]
        if not times:
            return None
        return min(times) if self.aggregation == AGGREGATION_ANY else max(times)


class RuleValue(MoodleModel):
    """The state of one completion rule of an activity."""

    status: int
    description: str


class ActivityRule(MoodleModel):
    """A completion rule of an activity (``completionview``...)."""

    rulename: str
    rulevalue: RuleValue


class ActivityCompletion(MoodleModel):
    """A user's completion of one activity: ``state`` 0 incomplete, 1 complete, 2 passed,
    3 failed; ``timecompleted`` 0 when not completed.
    """

    cmid: int
    modname: str
    instance: int
    state: int
    timecompleted: int
    tracking: int
    overrideby: int | None = None
    valueused: bool | None = None
    hascompletion: bool | None = None
    isautomatic: bool | None = None
    istrackeduser: bool | None = None
    uservisible: bool | None = None
    isoverallcomplete: bool | None = None
    details: list[ActivityRule] = Field(default_factory=list)


class _CourseAnswer(MoodleModel):
    completionstatus: CourseCompletionStatus


class _ActivitiesAnswer(MoodleModel):
    statuses: list[ActivityCompletion]


def get_course_completion_status(
    caller: Caller, courseid: int, userid: int
) -> CourseCompletionStatus:
    """Return the completion of ``courseid`` by ``userid``.

    Moodle refuses with ``usernotenroled``, ``nocriteriaset`` (no criteria) or
    ``cannotviewreport`` (completion disabled); these arrive as MoodleException.
    """
    wsfunction = "core_completion_get_course_completion_status"
    answer = caller.call(wsfunction, {"courseid": courseid, "userid": userid})
    return parse(wsfunction, _CourseAnswer, answer).completionstatus


def get_activities_completion_status(
    caller: Caller, courseid: int, userid: int
) -> list[ActivityCompletion]:
    """Return the completion state of every activity of ``courseid`` for ``userid``."""
    wsfunction = "core_completion_get_activities_completion_status"
    answer = caller.call(wsfunction, {"courseid": courseid, "userid": userid})
    return parse(wsfunction, _ActivitiesAnswer, answer).statuses
