"""Reading the completion report's cells, headings and conditions (no Moodle needed)."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from moodle_bridge.completions import (
    Reach,
    ReportColumns,
    fit_columns,
    parse_completed,
    parse_report_time,
    read_conditions,
)
from moodle_bridge.emulator import Emulator, default_seed
from moodle_bridge.emulator.reportbuilder import add_report, userdate

JAKARTA = ZoneInfo("Asia/Jakarta")
#: Friday 27 November 2026, 20:02:00 in Jakarta (UTC+7).
FRIDAY_8_02_PM = int(dt.datetime(2026, 11, 27, 20, 2, tzinfo=JAKARTA).timestamp())


@pytest.mark.parametrize(
    "text",
    [
        "Friday, 27 November 2026, 8:02 PM",  # Moodle's strftimedatetime, as recorded
        "friday, 27 november 2026, 8:02 pm",
        "Friday,\u00a027 November 2026,\u202f8:02\u202fPM",  # no-break spaces
        "27 November 2026, 8:02 PM",  # no weekday
        "Fri, 27 Nov 2026, 08:02 p.m.",
        "27 November 2026, 20:02",
        "Jumat, 27 November 2026, 20.02",  # Indonesian
        "27 Nopember 2026 20.02",
        "27/11/26, 20:02",  # strftimedatetimeshort
        "27/11/2026, 8:02 PM",
        "2026-11-27 20:02",
        "2026-11-27T20:02:00",
    ],
)
def test_every_accepted_format_reads_as_the_same_moment(text: str) -> None:
    assert parse_report_time(text, JAKARTA) == FRIDAY_8_02_PM


def test_seconds_are_kept_when_shown_and_midnight_and_noon_read_right() -> None:
    assert parse_report_time("2026-11-27 20:02:59", JAKARTA) == FRIDAY_8_02_PM + 59
    midnight = int(dt.datetime(2026, 11, 27, 0, 5, tzinfo=JAKARTA).timestamp())
    assert parse_report_time("Friday, 27 November 2026, 12:05 AM", JAKARTA) == midnight
    assert parse_report_time("Friday, 27 November 2026, 12:05 PM", JAKARTA) == midnight + 12 * 3600


def test_the_zone_is_the_viewers() -> None:
    utc = parse_report_time("27 November 2026, 8:02 PM", ZoneInfo("UTC"))
    assert utc - FRIDAY_8_02_PM == 7 * 3600


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Yes",
        "Saturday, 27 November 2026, 8:02 PM",  # the weekday contradicts the date
        "Friday, 31 November 2026, 8:02 PM",  # no such day
        "27 November 2026, 13:02 PM",  # not a 12-hour time
        "27 Brumaire 2026, 8:02 PM",
        "11/27/2026, 8:02 PM",  # month first: the 27th month
        "1764248520",
    ],
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"date|time|weekday|month|day|range"):
        parse_report_time(text, JAKARTA)


def test_the_emulators_rendering_reads_back_exactly() -> None:
    for moment in (FRIDAY_8_02_PM, FRIDAY_8_02_PM + 4 * 3600, 1_748_736_000, 1_751_328_000):
        assert parse_report_time(userdate(moment, JAKARTA), JAKARTA) == moment - moment % 60


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes", True),
        (" ya ", True),
        ("No", False),
        ("Tidak", False),
        ("", False),  # no course_completions row yet
        ("50.0%", None),
        ("Maybe", None),
    ],
)
def test_completed_cells(text: str, expected: bool | None) -> None:
    assert parse_completed(text) is expected


def test_the_recorded_report_has_every_column_the_pull_needs() -> None:
    headers = [
        "Course short name",
        "Course ID number",
        "Username",
        "ID number",
        "Completed",
        "Time completed",
        "Student progress",
    ]
    assert fit_columns(headers) == ReportColumns(
        completed=4,
        timecompleted=5,
        course_shortname=0,
        course_idnumber=1,
        username=2,
        user_idnumber=3,
    )


def test_one_course_and_one_user_column_are_enough_and_renamed_headings_match() -> None:
    columns = fit_columns(["course id number", "ID  number", "completed", "TIME COMPLETED"])
    assert columns == ReportColumns(
        completed=2, timecompleted=3, course_idnumber=0, user_idnumber=1
    )


def test_missing_columns_are_named() -> None:
    assert fit_columns(["Course full name", "Full name", "Completed"]) == [
        '"Course short name" or "Course ID number"',
        '"Username" or "ID number"',
        '"Time completed"',
    ]


def test_conditions_that_cannot_hide_a_needed_completion_pass() -> None:
    reach, problems = read_conditions(
        {
            "user:username_operator": 8,
            "completion:completed_operator": "1",
            "course:fullname_operator": 0,
            "course:fullname_value": "ignored: any value",
        }
    )
    assert (reach, problems) == (Reach(), [])


def test_the_time_condition_sets_how_far_back_the_report_reaches() -> None:
    last_30_days = {
        "completion:timecompleted_operator": 4,
        "completion:timecompleted_value": 30,
        "completion:timecompleted_unit": 1,
    }
    reach, problems = read_conditions(last_30_days)
    assert problems == []
    assert reach == Reach(lookback=30 * 86_400)
    assert reach.start(10_000_000) == 10_000_000 - 30 * 86_400
    # A month is counted as 28 days: never more than the report really shows.
    months, _ = read_conditions({**last_30_days, "completion:timecompleted_unit": 3})
    assert months.lookback == 30 * 28 * 86_400
    since, _ = read_conditions(
        {"completion:timecompleted_operator": 3, "completion:timecompleted_from": 1_700_000_000}
    )
    assert since == Reach(since=1_700_000_000)
    assert since.start(1_800_000_000) == 1_700_000_000


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"completion:completed_operator": 2}, "completion:completed"),
        ({"user:suspended_operator": 2}, "user:suspended"),
        ({"course:shortname_operator": 5, "course:shortname_value": "BIMAS"}, "course:shortname"),
        ({"completion:timecompleted_operator": 5}, "completion:timecompleted"),
        (
            {"completion:timecompleted_operator": 3, "completion:timecompleted_to": 1_700_000_000},
            "completion:timecompleted",
        ),
    ],
)
def test_conditions_that_may_hide_completions_are_named(values: dict[str, int], named: str) -> None:
    _, problems = read_conditions(values)
    assert len(problems) == 1
    assert named in problems[0]


def test_the_emulators_time_completed_condition_filters_like_moodles_date_filter() -> None:
    now = int(dt.datetime(2026, 3, 31, 12, tzinfo=JAKARTA).timestamp())
    emulator = Emulator(default_seed(), clock=lambda: float(now))
    world = emulator.world
    world.completions.clear()
    day = 86_400
    # A completion 6 days, 20 days and 40 days ago; and one in progress (no time).
    for userid, courseid, ago in ((5, 2, 6), (6, 3, 20), (7, 4, 40)):
        world.completions[(courseid, userid)] = {
            "userid": userid, "courseid": courseid, "timecompleted": now - ago * day,
            "timeenrolled": 0, "timestarted": 0,
        }  # fmt: skip
    world.completions[(5, 8)] = {"userid": 8, "courseid": 5, "timecompleted": None}
    for userid, courseid in ((5, 2), (6, 3), (7, 4), (8, 5)):
        enrolid = next(
            i["id"]
            for i in world.courses[courseid]["enrolment_instances"]
            if i["enrol"] == "manual"
        )
        if (enrolid, userid) not in world.enrolments:
            emulator.handle(
                [
                    ("wstoken", emulator.token_for("admin")),
                    ("wsfunction", "enrol_manual_enrol_users"),
                    ("moodlewsrestformat", "json"),
                    ("enrolments[0][roleid]", "5"),
                    ("enrolments[0][userid]", str(userid)),
                    ("enrolments[0][courseid]", str(courseid)),
                ]
            )

    def completed_users(**conditions: int) -> set[int]:
        values = {f"completion:timecompleted_{k}": v for k, v in conditions.items()}
        reportid = add_report(
            emulator, "r", ("user:username", "completion:timecompleted"), conditions=values,
            audience=[3],
        )  # fmt: skip
        reply = emulator.handle(
            [
                ("wstoken", emulator.token_for("bridge")),
                ("wsfunction", "core_reportbuilder_retrieve_report"),
                ("moodlewsrestformat", "json"),
                ("reportid", str(reportid)),
                ("perpage", "0"),
            ]
        )
        rows = json.loads(reply.body)["data"]["rows"]
        names = {r["columns"][0] for r in rows}
        return {uid for uid, user in world.users.items() if user["username"] in names}

    assert completed_users(operator=4, value=7, unit=1) == {5}  # last 7 days
    assert completed_users(operator=4, value=3, unit=2) == {5, 6}  # last 3 weeks
    # Last month from 31 March: PHP's "-1 month" is 3 March (no 31 February), so 40 days
    # back is out and 20 days back is in.
    assert completed_users(operator=4, value=1, unit=3) == {5, 6}
    assert completed_users(operator=3, to=now - 10 * day) == {6, 7}  # range, end excluded
    assert completed_users(operator=1) == {5, 6, 7}  # not empty
    assert 8 in completed_users(operator=2)  # empty: in progress, no time
    assert completed_users(operator=4, value=0, unit=1) >= {5, 6, 7, 8}  # "0 days": no filter


def test_the_completions_section_of_the_settings_reaches_the_pull(tmp_path) -> None:
    from moodle_bridge.completions import pull_options
    from moodle_bridge.config import load_settings
    from moodle_bridge.errors import ConfigError

    config = tmp_path / "moodle-bridge.toml"
    config.write_text(
        '[completions]\nreport = "Bridge course completions"\nperpage = 500\n'
        '[enrol]\ntimezone = "Asia/Makassar"\n[moodle]\nworkers = 3\n'
    )
    options = pull_options(load_settings({}, config))
    assert (options.report, options.use_report, options.perpage) == (
        "Bridge course completions",
        True,
        500,
    )
    assert (options.timezone, options.workers) == ("Asia/Makassar", 3)
    config.write_text("[completions]\nreport = 12\nuse_report = false\n")
    options = pull_options(load_settings({}, config), workers=1)
    assert (options.report, options.use_report, options.workers) == (12, False, 1)
    config.write_text("[completions]\nreprot = 12\n")
    with pytest.raises(ConfigError, match="reprot"):
        load_settings({}, config)
