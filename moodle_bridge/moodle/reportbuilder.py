"""Custom reports: ``core_reportbuilder_list_reports`` and ``core_reportbuilder_retrieve_report``.

Report rows are display strings, formatted as the report shows them ("Yes", "Friday,
27 November 2026, 8:02 PM", "50.0%"); reading them is the caller's business.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from moodle_bridge.moodle.api import Caller, MoodleModel, parse

__all__ = [
    "Report",
    "ReportData",
    "ReportPage",
    "ReportRow",
    "iter_report_pages",
    "list_all_reports",
    "list_reports",
    "retrieve_report",
]


class Report(MoodleModel):
    """A custom report's definition (``conditiondata``/``settingsdata`` are JSON text)."""

    id: int
    name: str
    source: str
    sourcename: str | None = None
    type: int
    uniquerows: bool
    contextid: int
    component: str
    area: str
    itemid: int
    conditiondata: str | None = None
    settingsdata: str | None = None
    usercreated: int
    usermodified: int
    timecreated: int
    timemodified: int

    @property
    def condition_values(self) -> dict[str, Any]:
        """The saved values of the report's conditions (``{"user:username_operator": 8}``);
        a condition left at its defaults has none. Unreadable data reads as none."""
        try:
            values = json.loads(self.conditiondata or "{}")
        except ValueError:
            return {}
        return values if isinstance(values, dict) else {}


class ReportRow(MoodleModel):
    """One row: the cells in the order of the headers."""

    columns: list[str]


class ReportData(MoodleModel):
    """One page of rows, and how many rows the whole report has."""

    headers: list[str]
    rows: list[ReportRow]
    totalrowcount: int


class ReportPage(MoodleModel):
    """A page of a report: its definition and rows. ``page``/``perpage`` are what was asked."""

    details: Report
    data: ReportData
    page: int = 0
    perpage: int = 0

    @property
    def rows(self) -> list[list[str]]:
        """The rows of this page as lists of cells."""
        return [row.columns for row in self.data.rows]


class _ReportsAnswer(MoodleModel):
    reports: list[Report]


def list_reports(caller: Caller, *, page: int = 0, perpage: int = 10) -> list[Report]:
    """Return the custom reports this token may view ([] when it is in no audience)."""
    wsfunction = "core_reportbuilder_list_reports"
    answer = caller.call(wsfunction, {"page": page, "perpage": perpage})
    return parse(wsfunction, _ReportsAnswer, answer).reports


def list_all_reports(caller: Caller, *, perpage: int = 50) -> list[Report]:
    """Return every custom report this token may view, reading the list page by page."""
    reports: list[Report] = []
    page = 0
    while True:
        batch = list_reports(caller, page=page, perpage=perpage)
        reports += batch
        if len(batch) < perpage:
            return reports
        page += 1


def retrieve_report(
    caller: Caller, reportid: int, *, page: int = 0, perpage: int = 10
) -> ReportPage:
    """Return page ``page`` (from 0) of report ``reportid``, ``perpage`` rows per page.

    A page past the end has no rows. A missing report is InvalidRecord; a token outside the
    report's audience gets ``errorreportview``.
    """
    wsfunction = "core_reportbuilder_retrieve_report"
    answer = caller.call(wsfunction, {"reportid": reportid, "page": page, "perpage": perpage})
    result = parse(wsfunction, ReportPage, answer)
    return result.model_copy(update={"page": page, "perpage": perpage})


def iter_report_pages(
    caller: Caller, reportid: int, *, perpage: int = 1000
) -> Iterator[ReportPage]:
    """Yield the pages of report ``reportid`` in order, until the rows run out.

    The first page is always yielded (it carries the headers even when there are no rows);
    later pages only when they hold rows. Rows added while paging can shift the pages.
    """
    if perpage < 1:
        msg = f"perpage must be at least 1, not {perpage}"
        raise ValueError(msg)
    page = 0
    while True:
        result = retrieve_report(caller, reportid, page=page, perpage=perpage)
        if page and not result.data.rows:
            return
        yield result
        if len(result.data.rows) < perpage or (page + 1) * perpage >= result.data.totalrowcount:
            return
        page += 1
