"""Emulated Moodle functions: the report builder's custom reports (``core_reportbuilder_*``).

A report's rows are computed from the live state the way the ``participants`` datasource joins
it in SQL (course -> enrol -> user_enrolments -> user -> course_completions), filtered by the
report's conditions and shown the way Moodle's column callbacks display them ("Yes", dates in
the viewer's timezone, "50.0%").
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from moodle_bridge.emulator.core import Call, Emulator, ws_function
from moodle_bridge.emulator.external import ExternalError, _s, to_json
from moodle_bridge.emulator.users import fullname, is_guest, picture_url
from moodle_bridge.emulator.world import Row, World

#: Capabilities that Moodle's default "Authenticated user" role (archetype ``user``) allows in
#: the system context, among those the emulator checks. Every logged-in user except the guest
#: holds that role implicitly, whatever roles the seed assigns, so a web-service user holding
#: nothing but ``webservice/rest:use`` still has them.
AUTHENTICATED_USER_CAPABILITIES = frozenset(
    {
        "moodle/competency:competencyview",
        "moodle/competency:coursecompetencyview",
        "moodle/reportbuilder:view",
    }
)

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip

_REPORT_TYPE_CUSTOM = 0
# PHP's SORT_DESC, as stored in reportbuilder_column.sortdirection (SORT_ASC is 4).
_SORT_DESC = 3

PARTICIPANTS_SOURCE = "core_course\\reportbuilder\\datasource\\participants"
_DATASOURCE_NAMES = {PARTICIPANTS_SOURCE: "Course participants"}


# --- Moodle helpers (the competency module uses them too) -----------------------------------------
def user_has_capability(call: Call, capability: str) -> bool:
    """``has_capability()`` at system level, counting the implicit Authenticated user role."""
    if capability in AUTHENTICATED_USER_CAPABILITIES and not is_guest(call.user):
        return True
    return call.has_capability(capability)


def collation_key(value: Any) -> tuple[str, str]:
    """Sort key approximating PostgreSQL's en_US collation: case-insensitive first."""
    text = "" if value is None else str(value)
    return text.casefold(), text


def user_zone(world: World, user: Row | None) -> tzinfo:
    """The timezone Moodle renders dates in for ``user``: forced, the user's own, or the site's."""
    name = str(world.settings.get("forcetimezone", "99"))
    if name == "99" and user is not None:
        name = str(user.get("timezone", "99"))
    if name == "99":
        name = str(world.settings.get("timezone", "UTC"))
    if re.fullmatch(r"[+-]?\d+(\.\d+)?", name):
        return timezone(timedelta(hours=float(name)))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def userdate(timestamp: int, zone: tzinfo) -> str:
    """``userdate()`` in ``strftimedatetime`` (``%A, %d %B %Y, %I:%M %p``), unpadded day, hour."""
    moment = datetime.fromtimestamp(timestamp, zone)
    hour = moment.hour % 12 or 12
    meridiem = "AM" if moment.hour < 12 else "PM"
    return (
        f"{_WEEKDAYS[moment.weekday()]}, {moment.day} {_MONTHS[moment.month - 1]} "
        f"{moment.year}, {hour}:{moment.minute:02d} {meridiem}"
    )


def format_float(value: float, decimals: int) -> str:
    """``format_float()``: PHP's ``number_format()``, which rounds halves away from zero."""
    quantum = Decimal(1).scaleb(-decimals)
    return str(Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_UP))


def _main_admin(world: World) -> int:
    return int(str(world.settings.get("siteadmins", "2")).split(",")[0])


def _user_summary(world: World, userid: int) -> dict[str, Any]:
    """``core_user\\external\\user_summary_exporter`` for a user without a picture."""
    user = world.users.get(userid, {"id": userid})
    identity = [str(user[f]) for f in _identity_fields(world) if user.get(f)]
    return {
        "id": userid,
        "email": user.get("email", ""),
        "idnumber": user.get("idnumber", ""),
        "phone1": user.get("phone1", ""),
        "phone2": user.get("phone2", ""),
        "department": user.get("department", ""),
        "institution": user.get("institution", ""),
        "fullname": fullname(world, user),
        "identity": ", ".join(identity),
        "profileurl": f"{world.settings['wwwroot']}/user/profile.php?id={userid}",
        "profileimageurl": picture_url(world, "f1"),
        "profileimageurlsmall": picture_url(world, "f2"),
    }


def _identity_fields(world: World) -> list[str]:
    return [f for f in str(world.settings.get("showuseridentity", "")).split(",") if f]


# --- the participants datasource ------------------------------------------------------------------
@dataclass(frozen=True)
class _Line:
    """One joined row: a course, one of its enrolment instances and one enrolled user (or none)."""

    course: Row
    instance: Row | None
    enrolment: Row | None
    user: Row | None


@dataclass(frozen=True)
class _View:
    """What rendering a cell needs besides the row: the state, the clock and the viewer's zone."""

    world: World
    now: int
    zone: tzinfo


def _live_user(world: World, userid: int) -> Row | None:
    """The user a user_enrolments row joins to (the join skips deleted users)."""
    user = world.users.get(userid)
    return None if user is None or user.get("deleted") else user


@dataclass(frozen=True)
class _Group:
    """The rows one enrolment instance adds to the join: its users that pass the conditions,
    or (``userids`` None) the single user-less row of an instance or course without enrolments.
    """

    course: Row
    instance: Row | None
    userids: list[int] | None

    def size(self) -> int:
        return 1 if self.userids is None else len(self.userids)

    def lines(self, world: World, first: int = 0, last: int | None = None) -> list[_Line]:
        """Rows ``first`` to ``last`` of the group, in the order a nested loop over the
        user_enrolments index meets them (by user id)."""
        if self.userids is None or self.instance is None:
            return [_Line(self.course, self.instance, None, None)][first:last]
        enrolid = self.instance["id"]
        return [
            _Line(
                self.course, self.instance, world.enrolments[(enrolid, uid)], _live_user(world, uid)
            )
            for uid in sorted(self.userids)[first:last]
        ]


CourseTest = Callable[[Row], bool]
UserTest = Callable[[Row | None], bool]
LineTest = Callable[[_Line], bool]


@dataclass(frozen=True)
class _Filters:
    """A report's conditions, by what they look at (so user tests run once per user)."""

    course: list[CourseTest]
    user: list[UserTest]
    line: list[LineTest]


def _groups(world: World, filters: _Filters) -> list[_Group]:
    """The LEFT JOINs of the datasource (course, enrol, user_enrolments, user), filtered."""
    siteid = int(world.site.get("siteid", 1))
    verdicts: dict[int, bool] = {}

    def user_passes(userid: int) -> bool:
        verdict = verdicts.get(userid)
        if verdict is None:
            user = _live_user(world, userid)
            verdict = verdicts[userid] = all(test(user) for test in filters.user)
        return verdict

    def empty_row(course: Row, instance: Row | None) -> list[_Group]:
        line = _Line(course, instance, None, None)
        passes = all(t(None) for t in filters.user) and all(t(line) for t in filters.line)
        return [_Group(course, instance, None)] if passes else []

    groups: list[_Group] = []
    for courseid in sorted(world.courses):
        course = world.courses[courseid]
        if courseid == siteid or not all(test(course) for test in filters.course):
            continue
        instances = sorted(course.get("enrolment_instances", []), key=lambda i: int(i["id"]))
        if not instances:
            groups += empty_row(course, None)
        for instance in instances:
            members = world.instance_users.get(instance["id"])
            if not members:
                groups += empty_row(course, instance)
                continue
            userids = [uid for uid in members if user_passes(uid)]
            if filters.line:
                group = _Group(course, instance, userids)
                userids = [
                    line.enrolment["userid"]
                    for line in group.lines(world)
                    if line.enrolment is not None and all(t(line) for t in filters.line)
                ]
            groups.append(_Group(course, instance, userids))
    return groups


def _window(world: World, groups: list[_Group], offset: int, limit: int) -> list[_Line]:
    """Rows ``offset`` to ``offset + limit`` (0: all) in nested-loop order, built only there."""
    window: list[_Line] = []
    start = 0
    for group in groups:
        size = group.size()
        if start + size > offset and (not limit or start < offset + limit):
            last = None if not limit else offset + limit - start
            window += group.lines(world, max(offset - start, 0), last)
        start += size
    return window


def _completion(world: World, line: _Line) -> Row | None:
    if line.user is None:
        return None
    return world.completions.get((line.course["id"], line.user["id"]))


# PostgreSQL's hash join, whose row order Moodle shows when a report has no sorted column and the
# page covers the whole result: the planner then hashes the participant rows on (course id,
# user id) and probes the table with course_completions in its physical order. Matching rows come
# out first, in course_completions order; the participants without a completion follow in hash
# bucket order (hashint8 of each key, combined by rotating, nbuckets a power of two >= 1024).
_MASK = 0xFFFFFFFF


def _rotl(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (32 - bits))) & _MASK


def _hash_uint32(value: int) -> int:
    """PostgreSQL's ``hash_bytes_uint32()`` (Bob Jenkins' final mix)."""
    a = b = c = (0x9E3779B9 + 4 + 3923095) & _MASK
    a = (a + value) & _MASK
    c ^= b
    c = (c - _rotl(b, 14)) & _MASK
    a ^= c
    a = (a - _rotl(c, 11)) & _MASK
    b ^= a
    b = (b - _rotl(a, 25)) & _MASK
    c ^= b
    c = (c - _rotl(b, 16)) & _MASK
    a ^= c
    a = (a - _rotl(c, 4)) & _MASK
    b ^= a
    b = (b - _rotl(a, 14)) & _MASK
    c ^= b
    return (c - _rotl(b, 24)) & _MASK


def _hash_int8(value: int) -> int:
    low, high = value & _MASK, (value >> 32) & _MASK
    low ^= high if value >= 0 else ~high & _MASK
    return _hash_uint32(low)


def _hash_keys(keys: tuple[int | None, ...]) -> int:
    """``ExecHashGetHashValue()``: a NULL key leaves the rotated hash unchanged."""
    hashed = 0
    for key in keys:
        hashed = _rotl(hashed, 1)
        if key is not None:
            hashed ^= _hash_int8(key)
    return hashed


def _line_key(line: _Line) -> tuple[int, int | None]:
    return int(line.course["id"]), None if line.user is None else int(line.user["id"])


def _hash_join_order(world: World, lines: list[_Line]) -> list[_Line]:
    nbuckets = max(1024, 1 << max(len(lines) - 1, 0).bit_length())
    by_key: dict[tuple[int, int | None], list[int]] = defaultdict(list)
    for index, line in enumerate(lines):
        by_key[_line_key(line)].append(index)
    ordered: list[_Line] = []
    matched: set[int] = set()
    for courseid, userid in world.completions:
        # A bucket chain holds the later insertions first.
        for index in reversed(by_key.get((courseid, userid), [])):
            ordered.append(lines[index])
            matched.add(index)
    rest = [i for i in range(len(lines)) if i not in matched]
    rest.sort(key=lambda i: (_hash_keys(_line_key(lines[i])) & (nbuckets - 1), -i))
    ordered.extend(lines[i] for i in rest)
    return ordered


# --- columns and conditions ---------------------------------------------------------------------
Getter = Callable[[_Line, World], Any]
Render = Callable[[Any, _Line, _View], str]


@dataclass(frozen=True)
class _Column:
    """A datasource column: its header, raw value (for sorting) and display."""

    title: str
    raw: Getter
    render: Render


def _user_value(world: World, user: Row | None, field: str) -> Any:
    if user is None:
        return None
    return fullname(world, user) if field == "fullname" else user.get(field)


def _user_field(field: str) -> Getter:
    return lambda line, world: _user_value(world, line.user, field)


def _course_field(field: str) -> Getter:
    return lambda line, world: line.course.get(field)


def _completion_field(field: str) -> Getter:
    def raw(line: _Line, world: World) -> Any:
        completion = _completion(world, line)
        return None if completion is None else completion.get(field)

    return raw


def _completed(line: _Line, world: World) -> bool | None:
    """Whether the course is completed; None without a user or a course_completions row."""
    completion = _completion(world, line)
    if completion is None:
        return None
    return bool(completion.get("timecompleted"))


def _show_text(value: Any, line: _Line, view: _View) -> str:
    return _s(value) if value is not None else ""


def _show_plain(value: Any, line: _Line, view: _View) -> str:
    return "" if value is None else str(value)


def _show_date(value: Any, line: _Line, view: _View) -> str:
    return userdate(int(value), view.zone) if value else ""


def _show_completed(value: Any, line: _Line, view: _View) -> str:
    if line.user is None or value is None:
        return ""
    return "Yes" if value else "No"


def _show_progress(value: Any, line: _Line, view: _View) -> str:
    # Imported here: enrol and cohorts import this module's helpers, and completion imports enrol.
    from moodle_bridge.emulator.completion import course_progress

    if line.user is None:
        return ""
    progress = course_progress(view.world, line.course, int(line.user["id"]), view.now)
    return f"{format_float(progress or 0.0, 1)}%"


_USER_TEXT_FIELDS = {
    "username": "Username",
    "idnumber": "ID number",
    "firstname": "First name",
    "lastname": "Last name",
    "email": "Email address",
    "city": "City/town",
    "institution": "Institution",
    "department": "Department",
}
_COURSE_TEXT_FIELDS = {
    "fullname": "Course full name",
    "shortname": "Course short name",
    "idnumber": "Course ID number",
}

_COLUMNS: dict[str, _Column] = {
    **{
        f"user:{field}": _Column(title, _user_field(field), _show_text)
        for field, title in _USER_TEXT_FIELDS.items()
    },
    "user:fullname": _Column("Full name", _user_field("fullname"), _show_plain),
    **{
        f"course:{field}": _Column(title, _course_field(field), _show_plain)
        for field, title in _COURSE_TEXT_FIELDS.items()
    },
    "completion:completed": _Column("Completed", _completed, _show_completed),
    "completion:timecompleted": _Column(
        "Time completed", _completion_field("timecompleted"), _show_date
    ),
    "completion:timeenrolled": _Column(
        "Time enrolled", _completion_field("timeenrolled"), _show_date
    ),
    "completion:timestarted": _Column("Time started", _completion_field("timestarted"), _show_date),
    "completion:progresspercent": _Column(
        "Student progress", lambda line, world: None, _show_progress
    ),
}


def _enrolment_status(line: _Line, now: int) -> int | None:
    """The enrolment entity's status: 0 active, 1 suspended, 2 not current.

    Its SQL counts an enrolment from its very start time (``timestart > now`` is not current).
    """
    if line.enrolment is None or line.instance is None:
        return None
    if int(line.enrolment.get("status", 0)) != 0:
        return int(line.enrolment["status"])
    timeend = int(line.enrolment.get("timeend") or 0)
    current = (
        int(line.instance.get("status", 0)) == 0
        and int(line.enrolment.get("timestart") or 0) <= now
        and (timeend == 0 or timeend > now)
    )
    return 0 if current else 2


# core_reportbuilder\local\filters\text operators.
_TEXT_ANY, _TEXT_CONTAINS, _TEXT_NOT_CONTAINS, _TEXT_EQUAL, _TEXT_NOT_EQUAL = 0, 1, 2, 3, 4
_TEXT_STARTS, _TEXT_ENDS, _TEXT_EMPTY, _TEXT_NOT_EMPTY = 5, 6, 7, 8

_TEXT_OPERATORS: dict[int, Callable[[str, str], bool]] = {
    _TEXT_CONTAINS: lambda text, needle: needle in text,
    _TEXT_NOT_CONTAINS: lambda text, needle: needle not in text,
    _TEXT_EQUAL: lambda text, needle: text == needle,
    _TEXT_NOT_EQUAL: lambda text, needle: text != needle,
    _TEXT_STARTS: lambda text, needle: text.startswith(needle),
    _TEXT_ENDS: lambda text, needle: text.endswith(needle),
}


def _text_test(operator: int, value: str) -> Callable[[Any], bool] | None:
    """Moodle's text filter as a test of a value, None when it restricts nothing.

    Its SQL compares case-insensitively; a NULL matches nothing but "is empty".
    """
    if operator == _TEXT_EMPTY:
        return lambda raw: not raw
    if operator == _TEXT_NOT_EMPTY:
        return lambda raw: raw is not None and str(raw) != ""
    compare = _TEXT_OPERATORS.get(operator)
    if compare is None or value == "":
        return None
    needle = value.lower()
    return lambda raw: raw is not None and compare(str(raw).lower(), needle)


def _flag_test(operator: int) -> Callable[[Any], bool] | None:
    """boolean_select: 1 = checked, 2 = not checked; a NULL value matches neither."""
    if operator not in (1, 2):
        return None
    wanted = operator == 1
    return lambda raw: raw is not None and bool(int(raw)) == wanted


# core_reportbuilder\local\filters\date operators and relative units.
_DATE_NOT_EMPTY, _DATE_EMPTY, _DATE_RANGE, _DATE_LAST, _DATE_CURRENT, _DATE_NEXT = 1, 2, 3, 4, 5, 6
_DATE_UNIT_DAY, _DATE_UNIT_WEEK, _DATE_UNIT_MONTH, _DATE_UNIT_YEAR = 1, 2, 3, 4
_COMPLETION_DATES = ("timecompleted", "timeenrolled", "timestarted")


def _shift_months(moment: datetime, months: int) -> datetime:
    """PHP's ``modify("+N month")``: the day of the month is kept and overflows into the next
    month (31 March - 1 month = 3 March)."""
    index = moment.year * 12 + moment.month - 1 + months
    first = moment.replace(year=index // 12, month=index % 12 + 1, day=1)
    return first + timedelta(days=moment.day - 1)


def _relative_timeframe(operator: int, amount: int, unit: int, now: datetime) -> tuple[int, int]:
    """``date::get_relative_timeframe()``: the [start, end] of "last/current/next N units",
    computed on the wall clock of the site's timezone."""
    start = end = now
    if operator == _DATE_CURRENT:
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        if unit == _DATE_UNIT_WEEK:
            day_start -= timedelta(days=now.weekday())
            start, end = day_start, day_start + timedelta(days=7)
        elif unit == _DATE_UNIT_MONTH:
            start = day_start.replace(day=1)
            end = _shift_months(start, 1)
        elif unit == _DATE_UNIT_YEAR:
            start = day_start.replace(month=1, day=1)
            end = start.replace(year=start.year + 1)
        else:
            start, end = day_start, day_start + timedelta(days=1)
        # The period ends at 23:59:59 of its last day.
        return int(start.timestamp()), int(end.timestamp()) - 1
    sign = -1 if operator == _DATE_LAST else 1
    if unit in (_DATE_UNIT_DAY, _DATE_UNIT_WEEK):
        moved = now + timedelta(days=sign * amount * (7 if unit == _DATE_UNIT_WEEK else 1))
    else:
        moved = _shift_months(now, sign * amount * (12 if unit == _DATE_UNIT_YEAR else 1))
    start, end = (moved, now) if operator == _DATE_LAST else (now, moved)
    return int(start.timestamp()), int(end.timestamp())


def _date_test(
    uid: str, values: dict[str, Any], world: World, now: int
) -> Callable[[Any], bool] | None:
    """Moodle's date filter as a test of a value (None or 0: no date), None when it restricts
    nothing (any value, or "last/next 0 units")."""
    operator = int(values.get(f"{uid}_operator", 0) or 0)
    amount = int(values.get(f"{uid}_value", 1) or 0)
    unit = int(values.get(f"{uid}_unit", _DATE_UNIT_DAY) or _DATE_UNIT_DAY)
    if operator == _DATE_NOT_EMPTY:
        return lambda raw: bool(raw)
    if operator == _DATE_EMPTY:
        return lambda raw: not raw
    if operator == _DATE_RANGE:
        since = int(values.get(f"{uid}_from", 0) or 0)
        until = int(values.get(f"{uid}_to", 0) or 0)
        if not since and not until:
            return None
        return lambda raw: (
            raw is not None and (not since or int(raw) >= since) and (not until or int(raw) < until)
        )
    if operator in (_DATE_LAST, _DATE_NEXT) and amount == 0:
        return None
    if operator not in (_DATE_LAST, _DATE_CURRENT, _DATE_NEXT):
        return None
    # PHP's default timezone is the site's (core_date::set_default_server_timezone()).
    start, end = _relative_timeframe(
        operator, amount, unit, datetime.fromtimestamp(now, user_zone(world, None))
    )
    return lambda raw: raw is not None and start <= int(raw) <= end


def _filters(report: Row, world: World, now: int) -> _Filters:
    """The report's conditions with their saved operators and values."""
    values = report.get("condition_values", {})
    filters = _Filters([], [], [])
    for condition in report.get("conditions", []):
        _add_condition(filters, condition["uniqueidentifier"], values, world, now)
    return filters


def _add_condition(
    filters: _Filters, uid: str, values: dict[str, Any], world: World, now: int
) -> None:
    """File one condition under what it tests; conditions set to "any value" add nothing."""
    operator = int(values.get(f"{uid}_operator", 0) or 0)
    value = str(values.get(f"{uid}_value", "") or "")
    entity, _, field = uid.partition(":")
    if uid == "user:fullname" or (entity == "user" and field in _USER_TEXT_FIELDS):
        text = _text_test(operator, value)
        if text:
            filters.user.append(lambda user: text(_user_value(world, user, field)))
    elif entity == "course" and field in _COURSE_TEXT_FIELDS:
        course_text = _text_test(operator, value)
        if course_text:
            filters.course.append(lambda course: course_text(course.get(field)))
    elif uid in ("user:suspended", "user:confirmed"):
        flag = _flag_test(operator)
        if flag:
            filters.user.append(lambda user: flag(_user_value(world, user, field)))
    elif uid == "completion:completed":
        # The filter's SQL is CASE WHEN timecompleted > 0 THEN 1 ELSE 0: no row counts as 0.
        completed = _flag_test(operator)
        if completed:
            filters.line.append(lambda line: completed(bool(_completed(line, world))))
    elif entity == "completion" and field in _COMPLETION_DATES:
        # A NULL course_completions row (no completion yet) has no date: "is empty" holds.
        dated = _date_test(uid, values, world, now)
        if dated:
            filters.line.append(lambda line: dated(_completion_field(field)(line, world)))
    elif uid == "enrolment:status":
        # A select filter: 1 = equal to, 2 = not equal to; a NULL status matches neither.
        if operator in (1, 2) and value != "":
            wanted, equal = int(value), operator == 1

            def status_is(line: _Line) -> bool:
                status = _enrolment_status(line, now)
                return status is not None and (status == wanted) == equal

            filters.line.append(status_is)
    else:
        msg = f"the emulator does not implement report condition {uid}"
        raise NotImplementedError(msg)


def _report_columns(report: Row) -> list[tuple[Row, _Column]]:
    columns = []
    for column in sorted(report.get("columns", []), key=lambda c: int(c.get("columnorder", 0))):
        uid = column["uniqueidentifier"]
        if uid not in _COLUMNS:
            msg = f"the emulator does not implement report column {uid}"
            raise NotImplementedError(msg)
        columns.append((column, _COLUMNS[uid]))
    return columns


def _sort_lines(lines: list[_Line], enabled: list[tuple[Row, _Column]], world: World) -> None:
    """ORDER BY the sort-enabled columns; PostgreSQL puts NULLs last ascending, first descending."""
    for column, spec in sorted(enabled, key=lambda item: -int(item[0].get("sortorder", 0))):

        def key(line: _Line, spec: _Column = spec) -> tuple[bool, Any]:
            raw = spec.raw(line, world)
            return raw is None, collation_key(raw) if isinstance(raw, str) else (raw or 0)

        lines.sort(key=key, reverse=int(column.get("sortdirection", 4)) == _SORT_DESC)


def _bounds(page: int, perpage: int) -> tuple[int, int]:
    """(offset, limit) of a page; Moodle's DML reads negatives as 0 and a limit of 0 as none."""
    return max(page * perpage, 0), max(perpage, 0)


def _slice(items: list[Any], offset: int, limit: int) -> list[Any]:
    return items[offset : offset + limit] if limit else items[offset:]


def _report_page(call: Call, report: Row, page: int, perpage: int) -> dict[str, Any]:
    """``custom_report_data_exporter``: headers, one page of formatted rows, the row count."""
    world = call.world
    columns = _report_columns(report)
    groups = _groups(world, _filters(report, world, call.now))
    total = sum(group.size() for group in groups)
    offset, limit = _bounds(page, perpage)
    # Reading the whole result, PostgreSQL picks a hash join; a smaller LIMIT makes it walk the
    # indexes in a nested loop instead (course, enrolment instance, user: the groups' order).
    whole = offset == 0 and (limit == 0 or limit >= total)
    sorting = [(c, spec) for c, spec in columns if int(c.get("sortenabled", 0))]
    if whole or sorting:
        lines = [line for group in groups for line in group.lines(world)]
        if whole:
            lines = _hash_join_order(world, lines)
        _sort_lines(lines, sorting, world)
        window = _slice(lines, offset, limit)
    else:
        window = _window(world, groups, offset, limit)
    view = _View(world, call.now, user_zone(world, call.user))
    return {
        "headers": [str(c.get("heading") or spec.title) for c, spec in columns],
        "rows": [
            {"columns": [spec.render(spec.raw(line, world), line, view) for _, spec in columns]}
            for line in window
        ],
        "totalrowcount": total,
    }


# --- reports: access and details ------------------------------------------------------------------
def _in_audience(world: World, user: Row, audience: Row) -> bool:
    """Whether ``user`` belongs to one audience of a report (by its audience class)."""
    kind = str(audience.get("classname", "")).rsplit("\\", 1)[-1]
    config = audience.get("configdata") or {}
    if kind == "manual":
        return str(user["id"]) in {str(u) for u in config.get("users", [])}
    if kind == "allusers":
        return True
    if kind == "admins":
        return bool(user.get("site_admin"))
    if kind == "systemrole":
        wanted = {int(r) for r in config.get("roles", [])}
        held = {
            rid
            for rid, role in world.roles.items()
            if role["shortname"] in user.get("system_roles", [])
        }
        return bool(wanted & held)
    if kind == "cohortmember":
        return any(
            user["id"] in world.cohort_member_sets.get(int(c), set())
            for c in config.get("cohorts", [])
        )
    return False


def _can_edit(call: Call, report: Row) -> bool:
    if int(report.get("type", _REPORT_TYPE_CUSTOM)) != _REPORT_TYPE_CUSTOM:
        return False
    if user_has_capability(call, "moodle/reportbuilder:editall"):
        return True
    own = int(report.get("usercreated", _main_admin(call.world))) == call.userid
    return own and user_has_capability(call, "moodle/reportbuilder:edit")


def _listed(call: Call, report: Row) -> bool:
    """``audience::user_reports_list_access_sql()``: editable reports and those shared with us."""
    if _can_edit(call, report):
        return True
    return any(_in_audience(call.world, call.user, a) for a in report.get("audiences", []))


def _can_view(call: Call, report: Row) -> bool:
    """``permission::can_view_report()``.

    Its first test, ``moodle/reportbuilder:view``, always passes: the Authenticated user role
    grants it (see AUTHENTICATED_USER_CAPABILITIES).
    """
    return user_has_capability(call, "moodle/reportbuilder:viewall") or _listed(call, report)


def _seeding_time(world: World) -> int:
    """When the seed was made: seeded rows share it, so take it from the seeded courses."""
    return min((int(c.get("timecreated", 0)) for c in world.courses.values()), default=0)


def _report_details(world: World, report: Row) -> dict[str, Any]:
    """``custom_report_details_exporter``: the persistent's fields, source name and modifier."""
    values = report.get("condition_values")
    conditiondata = report.get("conditiondata", to_json(values) if values else None)
    created = int(report.get("timecreated", _seeding_time(world)))
    usercreated = int(report.get("usercreated", _main_admin(world)))
    usermodified = int(report.get("usermodified", usercreated))
    return {
        "name": report.get("name"),
        "source": report["source"],
        "type": report.get("type", _REPORT_TYPE_CUSTOM),
        "uniquerows": report.get("uniquerows", 0),
        "conditiondata": conditiondata,
        "settingsdata": report.get("settingsdata"),
        "contextid": report.get("contextid", world.site.get("system_contextid", 1)),
        "component": report.get("component", ""),
        "area": report.get("area", ""),
        "itemid": report.get("itemid", 0),
        "usercreated": usercreated,
        "id": report["id"],
        "timecreated": created,
        "timemodified": int(report.get("timemodified", created)),
        "usermodified": usermodified,
        "sourcename": _DATASOURCE_NAMES.get(report["source"], report["source"]),
        "tags": [],
        "modifiedby": _user_summary(world, usermodified),
    }


def _report_or_missing(world: World, reportid: int) -> Row:
    report = world.reports.get(reportid)
    if report is None:
        raise _missing_report(reportid)
    return report


def _missing_report(reportid: int) -> ExternalError:
    """``dml_missing_record_exception`` of ``new report($id)``."""
    return ExternalError(
        "invalidrecord",
        "Can't find data record in database table reportbuilder_report.",
        exception="dml_missing_record_exception",
        debuginfo=(
            f"SELECT * FROM {{reportbuilder_report}} WHERE id = ?\n[array (\n  0 => {reportid},\n)]"
        ),
    )


def _cannot_view() -> ExternalError:
    """``report_access_exception('errorreportview')``."""
    return ExternalError(
        "errorreportview",
        "You cannot view this report",
        exception="core_reportbuilder\\exception\\report_access_exception",
    )


# --- web service functions ----------------------------------------------------------------------
@ws_function("core_reportbuilder_list_reports")
def list_reports(call: Call) -> dict[str, Any]:
    """The custom reports the user may see, by name, one page of them."""
    page, perpage = call.params["page"], call.params["perpage"]
    visible = [
        r
        for r in call.world.reports.values()
        if int(r.get("type", _REPORT_TYPE_CUSTOM)) == _REPORT_TYPE_CUSTOM and _listed(call, r)
    ]
    visible.sort(key=lambda r: (collation_key(r.get("name")), int(r["id"])))
    offset, limit = _bounds(page, perpage)
    window = _slice(visible, offset, limit)
    return {"reports": [_report_details(call.world, r) for r in window], "warnings": []}


@ws_function("core_reportbuilder_retrieve_report")
def retrieve_report(call: Call) -> dict[str, Any]:
    """A report's details and one page of its rows, computed from the current state."""
    report = _report_or_missing(call.world, call.params["reportid"])
    if not _can_view(call, report):
        raise _cannot_view()
    return {
        "details": _report_details(call.world, report),
        "data": _report_page(call, report, call.params["page"], call.params["perpage"]),
        "warnings": [],
    }


# --- test hooks -----------------------------------------------------------------------------------
def add_report(
    emulator: Emulator,
    name: str,
    columns: Sequence[str],
    *,
    conditions: Mapping[str, Any] | None = None,
    audience: Sequence[int] = (),
    headings: Mapping[str, str] | None = None,
    sorted_by: Sequence[str] = (),
) -> int:
    """Create a custom report on the course participants datasource, as an administrator does
    in the report editor (no web service can): test, demo and benchmark hook.

    ``columns`` are column identifiers (``course:shortname``, ``completion:timecompleted``...),
    ``conditions`` the saved condition values (``{"completion:completed_operator": 1}``; each
    condition is added for the identifier before ``_operator``), ``audience`` the ids of the
    users it is shared with, ``headings`` custom column titles and ``sorted_by`` the columns
    sorted on, in order. Returns the report's id.
    """
    values = dict(conditions or {})
    uids = list(dict.fromkeys(key.rsplit("_", 1)[0] for key in values))
    with emulator.lock:
        world = emulator.world
        reportid = 1 + max(world.reports, default=0)
        world.reports[reportid] = {
            "id": reportid,
            "name": name,
            "source": PARTICIPANTS_SOURCE,
            "type": _REPORT_TYPE_CUSTOM,
            "contextid": world.site.get("system_contextid", 1),
            "uniquerows": 0,
            "timecreated": emulator.now(),
            "columns": [
                {
                    "id": order,
                    "uniqueidentifier": uid,
                    "columnorder": order,
                    "sortenabled": int(uid in sorted_by),
                    "sortdirection": 4,
                    "sortorder": sorted_by.index(uid) + 1 if uid in sorted_by else order,
                    **({"heading": headings[uid]} if headings and uid in headings else {}),
                }
                for order, uid in enumerate(columns, start=1)
            ],
            "conditions": [{"uniqueidentifier": uid} for uid in uids],
            "condition_values": values,
            "audiences": [
                {
                    "classname": "core_reportbuilder\\reportbuilder\\audience\\manual",
                    "configdata": {"users": [str(u) for u in audience]},
                }
            ],
        }
    return reportid
