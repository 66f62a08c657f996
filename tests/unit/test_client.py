"""MoodleClient: body layout, decoding, retries, request budget, and token secrecy."""

from __future__ import annotations

import json
import logging
import random
import re
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
import responses

from moodle_bridge import errors
from moodle_bridge.moodle.client import MoodleClient, RetryPolicy, Timing, parse_retry_after
from moodle_bridge.moodle.transport import RawResponse
from tests.unit.test_errors import recorded

TOKEN = "tok-SECRET-5f3a9c"
SITE = "https://lms.example.go.id"
ENDPOINT = f"{SITE}/webservice/rest/server.php"
WALL = 1_790_000_000.0
PERSONAL = "siti.aminah@kemenag.example"


class FakeTime:
    """A clock that moves only when the client sleeps; sleeps are recorded, never taken."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class MaxJitter(random.Random):
    """Always draws the top of the jitter range, so waits are predictable."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def make_client(
    fake_time: FakeTime, *, rng: random.Random | None = None, **kwargs: Any
) -> MoodleClient:
    timing = Timing(fake_time.clock, fake_time.sleep, lambda: WALL, rng or random.Random(7))
    return MoodleClient(SITE + "/", TOKEN, timing=timing, **kwargs)


@pytest.fixture
def client(fake_time: FakeTime) -> MoodleClient:
    return make_client(fake_time)


def sent_pairs(call: Any) -> list[tuple[str, str]]:
    return parse_qsl(call.request.body.decode(), keep_blank_values=True)


# --- the request ----------------------------------------------------------------------------
def test_body_has_token_first_then_function_format_and_params(
    mocked: responses.RequestsMock, client: MoodleClient
):
    mocked.post(ENDPOINT, json=[{"id": 5}])
    result = client.call("core_user_get_users_by_field", {"field": "email", "values": [PERSONAL]})
    assert result == [{"id": 5}]
    assert mocked.calls[0].request.url == ENDPOINT
    assert sent_pairs(mocked.calls[0]) == [
        ("wstoken", TOKEN),
        ("wsfunction", "core_user_get_users_by_field"),
        ("moodlewsrestformat", "json"),
        ("field", "email"),
        ("values[0]", PERSONAL),
    ]


@pytest.mark.parametrize(
    "url",
    [SITE, SITE + "/", SITE + "/webservice/rest/server.php", SITE + "/webservice/rest/server.php/"],
)
def test_url_forms_all_reach_the_endpoint(url: str):
    client = MoodleClient(url, TOKEN)
    assert client.endpoint == ENDPOINT
    assert client.url == SITE


def test_site_in_a_subdirectory():
    assert MoodleClient("https://x.example/moodle/", TOKEN).endpoint == (
        "https://x.example/moodle/webservice/rest/server.php"
    )


@pytest.mark.parametrize(
    "url",
    ["ftp://x.example", "lms.example.go.id", "https://x.example/?a=1", "https://u:p@x.example"],
)
def test_unusable_urls_are_config_errors(url: str):
    with pytest.raises(errors.ConfigError, match="Moodle URL"):
        MoodleClient(url, TOKEN)


@pytest.mark.parametrize("token", ["", "  ", " tok "])
def test_bad_tokens_are_config_errors(token: str):
    with pytest.raises(errors.ConfigError, match="token"):
        MoodleClient(SITE, token)


def test_plain_http_to_a_remote_host_is_warned_about(caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.WARNING, logger="moodle_bridge.moodle"):
        MoodleClient("http://lms.example.go.id", TOKEN)
        MoodleClient("http://127.0.0.1:8080", TOKEN)
    assert len(caplog.records) == 1
    assert "plain http" in caplog.records[0].getMessage()


@pytest.mark.parametrize("name", ["wstoken", "wsfunction", "moodlewsrestformat"])
def test_reserved_parameter_names_are_refused(client: MoodleClient, name: str):
    with pytest.raises(ValueError, match="reserved"):
        client.call("core_webservice_get_site_info", {name: "x"})


@pytest.mark.parametrize("name", ["", "core user", "core_x&wstoken=1", "1abc"])
def test_malformed_function_names_are_refused(client: MoodleClient, name: str):
    with pytest.raises(ValueError, match="function name"):
        client.call(name)


def test_any_transport_can_be_injected(fake_time: FakeTime):
    class Recorder:
        def __init__(self) -> None:
            self.seen: list[tuple[str, list[tuple[str, str]]]] = []

        def post(self, url: str, pairs: list[tuple[str, str]]) -> RawResponse:
            self.seen.append((url, pairs))
            return RawResponse(200, "application/json", b"null", {})

    recorder = Recorder()
    client = make_client(fake_time, transport=recorder)
    assert client.call("enrol_manual_enrol_users", {"enrolments": []}) is None
    assert recorder.seen[0][0] == ENDPOINT
    assert recorder.seen[0][1][0] == ("wstoken", TOKEN)


# --- decoding a success -------------------------------------------------------------------
@pytest.mark.parametrize(
    "value", [None, [], {}, [{"id": 1}], {"warnings": []}, 0, True, "text", {"exceptions": 1}]
)
def test_any_json_that_is_not_an_error_is_returned(
    mocked: responses.RequestsMock, client: MoodleClient, value: Any
):
    mocked.post(ENDPOINT, body=json.dumps(value), content_type="application/json")
    assert client.call("core_webservice_get_site_info") == value


def test_json_with_a_byte_order_mark_is_read(mocked: responses.RequestsMock, client: MoodleClient):
    mocked.post(ENDPOINT, body=b"\xef\xbb\xbf" + b'{"a": 1}', content_type="application/json")
    assert client.call("core_webservice_get_site_info") == {"a": 1}


# --- decoding Moodle's errors (HTTP 200 with an exception body) ---------------------------------
@pytest.mark.parametrize(
    ("body", "cls"),
    [
        (
            {"exception": "moodle_exception", "errorcode": "invalidtoken", "message": "m"},
            errors.InvalidToken,
        ),
        (
            {
                "exception": "webservice_access_exception",
                "errorcode": "accessexception",
                "message": "Access control exception",
            },
            errors.AccessDenied,
        ),
        (
            {
                "exception": "required_capability_exception",
                "errorcode": "nopermissions",
                "message": "m",
            },
            errors.MissingCapability,
        ),
        (
            {
                "exception": "invalid_parameter_exception",
                "errorcode": "invalidparameter",
                "message": "Invalid parameter value detected",
            },
            errors.InvalidParameter,
        ),
        (
            {
                "exception": "dml_missing_record_exception",
                "errorcode": "invalidrecord",
                "message": "Can't find data record in database table external_functions.",
            },
            errors.FunctionNotFound,
        ),
        (
            {
                "exception": "dml_missing_record_exception",
                "errorcode": "invalidrecord",
                "message": "Can't find data record in database table cohort.",
            },
            errors.InvalidRecord,
        ),
        (
            {
                "exception": "moodle_exception",
                "errorcode": "invaliduser",
                "message": "Invalid user",
            },
            errors.MoodleException,
        ),
        (
            {"exception": "Error", "message": 'Attempt to assign property "contextvalidated"'},
            errors.MoodleException,
        ),
    ],
)
def test_error_bodies_map_to_classes(
    mocked: responses.RequestsMock, client: MoodleClient, body: dict[str, Any], cls: type
):
    mocked.post(ENDPOINT, json=body)
    with pytest.raises(cls) as info:
        client.call("core_cohort_get_cohort_members", {"cohortids": [999]})
    err = info.value
    assert type(err) is cls
    assert err.wsfunction == "core_cohort_get_cohort_members"
    assert err.http_status == 200
    assert err.errorcode == body.get("errorcode")
    assert len(mocked.calls) == 1  # Moodle's own errors are never retried


def test_password_policy_html_errorcode_is_kept(
    mocked: responses.RequestsMock, client: MoodleClient
):
    code = "<div>Passwords must be at least 8 characters long.</div>"
    mocked.post(
        ENDPOINT,
        json={"exception": "moodle_exception", "errorcode": code, "message": "error/" + code},
    )
    with pytest.raises(errors.MoodleException) as info:
        client.call("core_user_create_users", {"users": [{"password": "x"}]})
    assert info.value.errorcode == code
    assert isinstance(info.value, errors.RecordError)


def test_sitemaintenance_body_is_retried(mocked: responses.RequestsMock, client: MoodleClient):
    mocked.post(
        ENDPOINT,
        json={
            "exception": "moodle_exception",
            "errorcode": "sitemaintenance",
            "message": "Site is undergoing maintenance",
        },
    )
    mocked.post(ENDPOINT, json={"ok": True})
    assert client.call("core_webservice_get_site_info") == {"ok": True}


# --- HTTP statuses and broken bodies -----------------------------------------------------------
def test_html_page_is_a_site_fault(mocked: responses.RequestsMock, fake_time: FakeTime):
    page = "<!DOCTYPE html><html><head><title>Site maintenance</title></head></html>"
    mocked.post(ENDPOINT, body=page, content_type="text/html; charset=utf-8")
    client = make_client(fake_time, retry=RetryPolicy(max_total_wait=0))
    with pytest.raises(errors.SiteUnavailable) as info:
        client.call("core_webservice_get_site_info")
    err = info.value
    # Still a server error for code that handles those (doctor).
    assert isinstance(err, errors.ServerError)
    assert err.outage is errors.Outage.MAINTENANCE
    assert err.message == "Site maintenance"
    assert err.raw == page
    assert err.refused_before_work is False
    assert str(err).startswith("site in maintenance: Site maintenance")
    assert err.http_status == 200
    assert err.wsfunction == "core_webservice_get_site_info"


def test_markup_labelled_as_json_is_still_an_html_page(
    mocked: responses.RequestsMock, fake_time: FakeTime
):
    mocked.post(ENDPOINT, body="<br />\n<b>Warning</b>: x\n[]", content_type="application/json")
    client = make_client(fake_time, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(errors.SiteUnavailable, match="HTML page instead of JSON") as info:
        client.call("core_webservice_get_site_info")
    assert info.value.outage is errors.Outage.HTML_PAGE
    assert info.value.message == "Warning: x []"


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (200, "", errors.BadResponse),
        (200, "   \n", errors.BadResponse),
        (200, '[{"id": 1}, {"id"', errors.BadResponse),
        (200, "not json", errors.BadResponse),
        (200, b"\xff\xfe\xfa", errors.BadResponse),
        (500, "", errors.ServerError),
        (503, "", errors.ServerError),
        (504, "Gateway Time-out", errors.ServerError),
        (522, "", errors.ServerError),
    ],
)
def test_retriable_answers_are_retried_then_raised(
    mocked: responses.RequestsMock, fake_time: FakeTime, status: int, body: Any, cls: type
):
    mocked.post(ENDPOINT, status=status, body=body, content_type="application/json")
    client = make_client(fake_time)
    with pytest.raises(cls) as info:
        client.call("core_webservice_get_site_info")
    err = info.value
    assert type(err) is cls
    assert isinstance(err, errors.Retriable)
    assert (err.wsfunction, err.http_status) == ("core_webservice_get_site_info", status)
    assert err.__context__ is None
    assert len(mocked.calls) == 5
    assert len(fake_time.sleeps) == 4


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.HttpError),
        (401, errors.HttpError),
        (403, errors.HttpError),
        (404, errors.HttpError),
        (405, errors.HttpError),
        (501, errors.HttpError),
        (301, errors.HttpError),
        (302, errors.HttpError),
        (413, errors.RequestTooLarge),
    ],
)
def test_fatal_statuses_are_not_retried(
    mocked: responses.RequestsMock, client: MoodleClient, status: int, cls: type
):
    mocked.post(
        ENDPOINT,
        status=status,
        body="<html>no</html>",
        content_type="text/html",
        headers={"Location": "https://sso.example/login?next=x"},
    )
    with pytest.raises(cls) as info:
        client.call("core_webservice_get_site_info")
    assert type(info.value) is cls
    assert info.value.http_status == status
    assert info.value.wsfunction == "core_webservice_get_site_info"
    assert len(mocked.calls) == 1
    assert "?next" not in str(info.value)


def test_redirect_names_the_target(mocked: responses.RequestsMock, client: MoodleClient):
    mocked.post(ENDPOINT, status=301, headers={"Location": "https://new.example/x?y=1"})
    with pytest.raises(errors.HttpError, match=re.escape("redirected to https://new.example/x;")):
        client.call("core_webservice_get_site_info")


# --- network failures ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "exc",
    [
        requests.exceptions.ConnectTimeout(f"connect timeout {ENDPOINT}?wstoken={TOKEN}"),
        requests.exceptions.ReadTimeout(f"read timeout wstoken={TOKEN}"),
        requests.exceptions.ConnectionError(ConnectionResetError(104, "Connection reset by peer")),
        requests.exceptions.ConnectionError(f"Max retries exceeded with url: /x?wstoken={TOKEN}"),
        requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead(10 bytes)"),
    ],
)
def test_network_failures_are_retried_then_raised(
    mocked: responses.RequestsMock, fake_time: FakeTime, exc: Exception
):
    mocked.post(ENDPOINT, body=exc)
    client = make_client(fake_time)
    with pytest.raises(errors.NetworkError) as info:
        client.call("core_user_get_users_by_field", {"field": "email", "values": [PERSONAL]})
    err = info.value
    assert err.wsfunction == "core_user_get_users_by_field"
    assert err.http_status is None
    assert len(mocked.calls) == 5
    for text in (str(err), repr(err), *map(str, err.args)):
        assert TOKEN not in text
        assert PERSONAL not in text


def test_a_retry_that_succeeds_returns_the_answer(
    mocked: responses.RequestsMock, client: MoodleClient, fake_time: FakeTime
):
    mocked.post(ENDPOINT, body=requests.exceptions.ReadTimeout("slow"))
    mocked.post(ENDPOINT, status=502)
    mocked.post(ENDPOINT, json={"sitename": "LMS"})
    assert client.call("core_webservice_get_site_info") == {"sitename": "LMS"}
    assert len(mocked.calls) == 3
    assert len(fake_time.sleeps) == 2


# --- rate limiting and Retry-After ----------------------------------------------------------
def test_429_with_delta_seconds(
    mocked: responses.RequestsMock, client: MoodleClient, fake_time: FakeTime
):
    mocked.post(ENDPOINT, status=429, headers={"Retry-After": "7"})
    mocked.post(ENDPOINT, body="null", content_type="application/json")
    assert client.call("enrol_manual_enrol_users", {"enrolments": [{"userid": 1}]}) is None
    assert fake_time.sleeps == [7.0]


def test_429_with_http_date_measured_from_the_date_header(
    mocked: responses.RequestsMock, client: MoodleClient, fake_time: FakeTime
):
    served = WALL - 3600  # a server clock an hour off must not matter
    mocked.post(
        ENDPOINT,
        status=429,
        headers={
            "Date": formatdate(served, usegmt=True),
            "Retry-After": formatdate(served + 12, usegmt=True),
        },
    )
    mocked.post(ENDPOINT, json=[])
    assert client.call("core_webservice_get_site_info") == []
    assert fake_time.sleeps == [12.0]


def test_429_with_http_date_and_no_date_header_uses_the_wall_clock(
    mocked: responses.RequestsMock, client: MoodleClient, fake_time: FakeTime
):
    mocked.post(ENDPOINT, status=429, headers={"Retry-After": formatdate(WALL + 20, usegmt=True)})
    mocked.post(ENDPOINT, json=[])
    client.call("core_webservice_get_site_info")
    assert fake_time.sleeps == [20.0]


def test_503_with_retry_after_is_the_site_refusing_before_any_work(
    mocked: responses.RequestsMock, fake_time: FakeTime
):
    mocked.post(ENDPOINT, status=503, headers={"Retry-After": "4"})
    client = make_client(fake_time, retry=RetryPolicy(max_total_wait=3))
    with pytest.raises(errors.SiteUnavailable) as info:
        client.call("core_webservice_get_site_info")
    err = info.value
    assert err.outage is errors.Outage.UNAVAILABLE
    assert err.refused_before_work is True
    assert (err.retry_after, err.until) == (4.0, WALL + 4)
    assert err.http_status == 503
    assert err.message == "HTTP 503 with an empty answer"
    assert fake_time.sleeps == []  # 4 s asked for, 3 s of budget: no waiting in vain


def test_429_without_retry_after_backs_off(mocked: responses.RequestsMock, fake_time: FakeTime):
    mocked.post(ENDPOINT, status=429)
    client = make_client(fake_time, rng=MaxJitter(), retry=RetryPolicy(max_attempts=3))
    with pytest.raises(errors.RateLimited) as info:
        client.call("core_webservice_get_site_info")
    assert info.value.retry_after is None
    assert fake_time.sleeps == [0.5, 1.0]


def test_retry_after_is_capped(mocked: responses.RequestsMock, fake_time: FakeTime):
    mocked.post(ENDPOINT, status=429, headers={"Retry-After": "86400"})
    mocked.post(ENDPOINT, json=[])
    client = make_client(fake_time, retry=RetryPolicy(max_retry_after=45))
    client.call("core_webservice_get_site_info")
    assert fake_time.sleeps == [45.0]


@pytest.mark.parametrize(
    ("value", "date", "seconds"),
    [
        ("120", None, 120.0),
        (" 5 ", None, 5.0),
        ("1.5", None, 1.5),
        ("-3", None, 0.0),
        ("soon", None, None),
        ("", None, None),
        (None, None, None),
        ("nan", None, None),
        (formatdate(WALL + 30, usegmt=True), None, 30.0),
        (formatdate(WALL - 30, usegmt=True), None, 0.0),
        (formatdate(500, usegmt=True), formatdate(440, usegmt=True), 60.0),
        (formatdate(WALL + 9, usegmt=True), "garbage", 9.0),
    ],
)
def test_parse_retry_after(value: str | None, date: str | None, seconds: float | None):
    assert parse_retry_after(value, now=WALL, date_header=date) == seconds


# --- retry bounds -----------------------------------------------------------------------------
def test_backoff_is_exponential_and_capped(mocked: responses.RequestsMock, fake_time: FakeTime):
    mocked.post(ENDPOINT, status=502)
    policy = RetryPolicy(max_attempts=10, max_total_wait=1000)
    client = make_client(fake_time, rng=MaxJitter(), retry=policy)
    with pytest.raises(errors.ServerError):
        client.call("core_webservice_get_site_info")
    assert fake_time.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert len(mocked.calls) == 10


def test_jitter_is_full_and_comes_from_the_injected_rng(
    mocked: responses.RequestsMock, fake_time: FakeTime
):
    mocked.post(ENDPOINT, status=504)
    policy = RetryPolicy(max_attempts=8, max_total_wait=1000)
    client = make_client(fake_time, rng=random.Random(42), retry=policy)
    with pytest.raises(errors.ServerError):
        client.call("core_webservice_get_site_info")
    draws = random.Random(42)
    expected = [draws.uniform(0, min(30.0, 0.5 * 2**n)) for n in range(7)]
    assert fake_time.sleeps == expected


def test_total_wait_is_bounded(mocked: responses.RequestsMock, fake_time: FakeTime):
    mocked.post(ENDPOINT, status=429, headers={"Retry-After": "50"})
    client = make_client(fake_time, retry=RetryPolicy(max_attempts=10, max_total_wait=120))
    with pytest.raises(errors.RateLimited):
        client.call("core_webservice_get_site_info")
    assert fake_time.sleeps == [50.0, 50.0]
    assert len(mocked.calls) == 3


def test_default_policy_bounds(mocked: responses.RequestsMock, fake_time: FakeTime):
    mocked.post(ENDPOINT, status=429, headers={"Retry-After": "100000"})
    client = make_client(fake_time)
    with pytest.raises(errors.RateLimited):
        client.call("core_webservice_get_site_info")
    assert len(mocked.calls) <= 5
    assert sum(fake_time.sleeps) <= 120


def test_one_attempt_means_no_retry(mocked: responses.RequestsMock, fake_time: FakeTime):
    mocked.post(ENDPOINT, status=500)
    client = make_client(fake_time, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(errors.ServerError):
        client.call("core_webservice_get_site_info")
    assert len(mocked.calls) == 1
    assert fake_time.sleeps == []


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"base_delay": -1}, {"factor": 0.5}, {"max_total_wait": -1}],
)
def test_retry_policy_validates(kwargs: dict[str, Any]):
    with pytest.raises(ValueError, match="must"):
        RetryPolicy(**kwargs)


def test_writes_without_retry_raise_at_once(
    mocked: responses.RequestsMock, client: MoodleClient, fake_time: FakeTime
):
    mocked.post(ENDPOINT, body=requests.exceptions.ReadTimeout("lost"))
    with pytest.raises(errors.NetworkError):
        client.call("core_user_create_users", {"users": [{"username": "x"}]}, retry_writes=False)
    assert len(mocked.calls) == 1
    assert fake_time.sleeps == []


def test_writes_without_retry_still_wait_out_rate_limits(
    mocked: responses.RequestsMock, client: MoodleClient, fake_time: FakeTime
):
    mocked.post(ENDPOINT, status=429, headers={"Retry-After": "2"})
    mocked.post(ENDPOINT, json=[{"id": 9, "username": "x"}])
    result = client.call(
        "core_user_create_users", {"users": [{"username": "x"}]}, retry_writes=False
    )
    assert result == [{"id": 9, "username": "x"}]
    assert fake_time.sleeps == [2.0]


# --- faults of the site (issue 14) ---------------------------------------------------------------
DB_DOWN = recorded("database_down")
MAINTENANCE = recorded("cli_maintenance_mode")
SITEMAINTENANCE = {"exception": "moodle_exception", "errorcode": "sitemaintenance", "message": "m"}


def database_down(mocked: responses.RequestsMock, times: int = 1) -> None:
    for _ in range(times):
        mocked.post(ENDPOINT, body=DB_DOWN["body"], content_type="application/json")


def maintenance(mocked: responses.RequestsMock, retry_after: str = "300", times: int = 1) -> None:
    for _ in range(times):
        mocked.post(
            ENDPOINT,
            status=503,
            body=MAINTENANCE["body"],
            content_type="text/html; charset=utf-8",
            headers={"Retry-After": retry_after},
        )


CREATE = ("core_user_create_users", {"users": [{"username": "x"}]})


def test_the_recorded_database_down_answer(mocked: responses.RequestsMock, fake_time: FakeTime):
    database_down(mocked)
    client = make_client(fake_time, retry=RetryPolicy(max_total_wait=0))
    with pytest.raises(errors.SiteUnavailable) as info:
        client.call(*CREATE)
    err = info.value
    assert err.outage is errors.Outage.DATABASE
    assert err.message.startswith("Error: Database connection failed. It is possible")
    assert "<p>" not in str(err)
    assert err.raw == DB_DOWN["body"]
    assert (err.wsfunction, err.http_status) == ("core_user_create_users", 200)


def test_the_recorded_maintenance_answer(mocked: responses.RequestsMock, fake_time: FakeTime):
    maintenance(mocked)
    client = make_client(fake_time)
    with pytest.raises(errors.SiteUnavailable) as info:
        client.call(*CREATE)
    err = info.value
    assert err.outage is errors.Outage.MAINTENANCE
    assert err.refused_before_work is True
    assert (err.retry_after, err.until) == (300.0, WALL + 300)
    assert err.message == (
        "Moodle Real Test under maintenance. "
        "The site is undergoing maintenance and is currently not available"
    )
    assert err.summary("UTC") == f"site in maintenance until about {_hhmm(WALL + 300)}"
    assert err.raw is not None
    assert err.raw.startswith("<!DOCTYPE html>")


def _hhmm(when: float) -> str:
    return datetime.fromtimestamp(when + 59, UTC).strftime("%Y-%m-%d %H:%M")


def test_a_site_outage_is_not_cut_short_by_the_attempt_count(
    mocked: responses.RequestsMock, fake_time: FakeTime
):
    database_down(mocked, times=12)
    mocked.post(ENDPOINT, json=[{"id": 3}])
    policy = RetryPolicy(max_attempts=3, max_total_wait=1000)
    client = make_client(fake_time, rng=MaxJitter(), retry=policy)
    assert client.call("core_user_get_users_by_field", {"field": "id", "values": [3]}) == [
        {"id": 3}
    ]
    assert len(mocked.calls) == 13
    assert fake_time.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0] + [30.0] * 6


def test_a_site_outage_is_waited_out_until_the_budget_is_spent_exactly(
    mocked: responses.RequestsMock, fake_time: FakeTime
):
    database_down(mocked, times=50)
    client = make_client(
        fake_time, rng=MaxJitter(), retry=RetryPolicy(max_attempts=2, max_total_wait=10)
    )
    with pytest.raises(errors.SiteUnavailable):
        client.call("core_webservice_get_site_info")
    # The last wait is shortened so the last attempt comes when the budget ends.
    assert fake_time.sleeps == [0.5, 1.0, 2.0, 4.0, 2.5]
    assert len(mocked.calls) == 6


def test_ordinary_failures_keep_their_attempt_count(
    mocked: responses.RequestsMock, fake_time: FakeTime
):
    mocked.post(ENDPOINT, status=502)
    client = make_client(fake_time, retry=RetryPolicy(max_attempts=3, max_total_wait=1000))
    with pytest.raises(errors.ServerError) as info:
        client.call("core_webservice_get_site_info")
    assert not isinstance(info.value, errors.SiteUnavailable)
    assert len(mocked.calls) == 3


def test_a_write_meeting_a_database_outage_is_an_unknown_outcome(
    mocked: responses.RequestsMock, client: MoodleClient, fake_time: FakeTime
):
    # The database may have gone after the commit: resending could create twice.
    database_down(mocked)
    mocked.post(ENDPOINT, json=[{"id": 9, "username": "x"}])
    with pytest.raises(errors.SiteUnavailable) as info:
        client.call(*CREATE, retry_writes=False)
    assert info.value.refused_before_work is False
    assert len(mocked.calls) == 1
    assert fake_time.sleeps == []


@pytest.mark.parametrize(
    "page",
    [
        {"status": 502, "body": "<html><body>Bad Gateway</body></html>"},
        {"status": 200, "body": "<br /><b>Fatal error</b>: x"},
    ],
)
def test_a_write_meeting_an_html_page_is_an_unknown_outcome(
    mocked: responses.RequestsMock, client: MoodleClient, page: dict[str, Any]
):
    mocked.post(ENDPOINT, content_type="text/html", **page)
    with pytest.raises(errors.SiteUnavailable) as info:
        client.call(*CREATE, retry_writes=False)
    assert info.value.outage is errors.Outage.HTML_PAGE
    assert len(mocked.calls) == 1


def test_a_write_refused_for_maintenance_is_sent_again(
    mocked: responses.RequestsMock, client: MoodleClient, fake_time: FakeTime
):
    maintenance(mocked, retry_after="2")
    mocked.post(ENDPOINT, json=SITEMAINTENANCE)
    mocked.post(ENDPOINT, json=[{"id": 9, "username": "x"}])
    # Refused before any work (503 + Retry-After, then the JSON form): safe to resend.
    assert client.call(*CREATE, retry_writes=False) == [{"id": 9, "username": "x"}]
    assert len(mocked.calls) == 3
    assert fake_time.sleeps[0] == 2.0


def test_retry_after_beyond_the_budget_stops_at_once(
    mocked: responses.RequestsMock, client: MoodleClient, fake_time: FakeTime
):
    maintenance(mocked, retry_after="300", times=5)
    with pytest.raises(errors.SiteUnavailable) as info:
        client.call("core_webservice_get_site_info")
    assert len(mocked.calls) == 1
    assert fake_time.sleeps == []
    assert str(info.value).startswith(f"site in maintenance until about {_local(WALL + 300)}")


def _local(when: float) -> str:
    moment = datetime.fromtimestamp(when + 59)
    today = datetime.now().date()
    return moment.strftime("%H:%M" if moment.date() == today else "%Y-%m-%d %H:%M")


@pytest.mark.parametrize(
    ("retry_after", "budget", "sleeps"),
    [
        # 40 + 40 waited; the 20 s left are less than the 40 s asked for.
        ("40", 100, [40.0, 40.0]),
        # "Come back at once" must not turn into a busy loop against a site that is down.
        ("0", 5, [0.5] * 10),
    ],
)
def test_retry_after_is_honoured_within_what_is_left_of_the_budget(
    mocked: responses.RequestsMock,
    fake_time: FakeTime,
    retry_after: str,
    budget: float,
    sleeps: list[float],
):
    maintenance(mocked, retry_after=retry_after, times=100)
    client = make_client(fake_time, retry=RetryPolicy(max_total_wait=budget))
    with pytest.raises(errors.SiteUnavailable):
        client.call("core_webservice_get_site_info")
    assert fake_time.sleeps == sleeps
    assert len(mocked.calls) == len(sleeps) + 1


def test_wait_for_site_rides_out_a_long_maintenance(
    mocked: responses.RequestsMock, fake_time: FakeTime
):
    maintenance(mocked, retry_after="300", times=4)
    mocked.post(ENDPOINT, json={"sitename": "LMS"})
    client = make_client(fake_time, retry=RetryPolicy(max_total_wait=120, wait_for_site=True))
    assert client.call("core_webservice_get_site_info") == {"sitename": "LMS"}
    # Asked again every max_retry_after seconds: the maintenance may end early.
    assert fake_time.sleeps == [60.0] * 4


def test_wait_for_site_is_bounded_by_its_own_cap(
    mocked: responses.RequestsMock, fake_time: FakeTime
):
    maintenance(mocked, retry_after="300")
    policy = RetryPolicy(max_total_wait=10, wait_for_site=True, max_site_wait=200)
    client = make_client(fake_time, retry=policy)
    with pytest.raises(errors.SiteUnavailable):
        client.call("core_webservice_get_site_info")
    assert fake_time.sleeps == []
    database_down(mocked, times=100)
    client = make_client(fake_time, rng=MaxJitter(), retry=policy)
    fake_time.sleeps.clear()
    with pytest.raises(errors.SiteUnavailable):
        client.call("core_webservice_get_site_info")
    assert sum(fake_time.sleeps) == pytest.approx(200)


def test_the_raw_answer_is_cut_to_a_few_kilobytes(
    mocked: responses.RequestsMock, fake_time: FakeTime
):
    page = "<html><body>" + "<p>Proxy error, please wait.</p>" * 1000 + "</body></html>"
    mocked.post(ENDPOINT, status=502, body=page, content_type="text/html")
    client = make_client(fake_time, retry=RetryPolicy(max_total_wait=0))
    with pytest.raises(errors.SiteUnavailable) as info:
        client.call("core_webservice_get_site_info")
    assert info.value.raw == page[: errors.RAW_LIMIT]
    assert len(info.value.message) <= errors.REASON_LIMIT


# --- request budget -------------------------------------------------------------------------
def test_call_over_budget_is_refused_without_sending(
    mocked: responses.RequestsMock, fake_time: FakeTime
):
    client = make_client(fake_time, field_budget=10)
    with pytest.raises(errors.RequestTooLarge) as info:
        client.call("core_user_get_users_by_field", {"field": "id", "values": list(range(7))})
    assert info.value.wsfunction == "core_user_get_users_by_field"
    assert "11 form fields exceed the budget of 10" in str(info.value)
    assert len(mocked.calls) == 0


def test_call_exactly_at_budget_is_sent(mocked: responses.RequestsMock, fake_time: FakeTime):
    mocked.post(ENDPOINT, json=[])
    client = make_client(fake_time, field_budget=10)
    client.call("core_user_get_users_by_field", {"field": "id", "values": list(range(6))})
    assert len(sent_pairs(mocked.calls[0])) == 10


def test_default_budget_leaves_a_margin_under_max_input_vars(client: MoodleClient):
    assert 4900 <= client.field_budget < 5001


# --- logging and secrecy ----------------------------------------------------------------------
def test_debug_log_names_function_fields_status_and_duration(
    mocked: responses.RequestsMock, client: MoodleClient, caplog: pytest.LogCaptureFixture
):
    mocked.post(ENDPOINT, json=[])
    with caplog.at_level(logging.DEBUG, logger="moodle_bridge.moodle"):
        client.call("core_user_get_users_by_field", {"field": "email", "values": [PERSONAL]})
    [record] = [r for r in caplog.records if r.name == "moodle_bridge.moodle"]
    message = record.getMessage()
    assert "core_user_get_users_by_field" in message
    assert "5 fields" in message
    assert "http=200" in message
    assert " s" in message


_SECRET_SCENARIOS: list[Any] = [
    {
        "json": {
            "exception": "moodle_exception",
            "errorcode": "invalidtoken",
            "message": f"Invalid token {TOKEN}",
            "debuginfo": f"token={TOKEN}",
        }
    },
    {
        "json": {
            "exception": "invalid_parameter_exception",
            "errorcode": "invalidparameter",
            "message": "Invalid parameter value detected",
            "debuginfo": f'users => the value is "{PERSONAL}"',
        }
    },
    {"body": requests.exceptions.ConnectTimeout(f"{ENDPOINT}?wstoken={TOKEN}")},
    {"body": requests.exceptions.ReadTimeout(f"wstoken={TOKEN}&values[0]={PERSONAL}")},
    {"body": requests.exceptions.ConnectionError(f"reset; body wstoken={TOKEN}")},
    {"body": requests.exceptions.ChunkedEncodingError(f"broken {TOKEN}")},
    {"body": requests.exceptions.SSLError(f"bad cert {TOKEN}")},
    {"status": 429, "headers": {"Retry-After": "1"}},
    {"status": 503},
    {"status": 404, "body": f"<html>{TOKEN}</html>"},
    {"status": 200, "body": f"<html><title>{TOKEN}</title></html>", "content_type": "text/html"},
    {"status": 200, "body": "{", "content_type": "application/json"},
    {"status": 200, "body": ""},
    {"json": {**json.loads(DB_DOWN["body"]), "debuginfo": f"wstoken={TOKEN}"}},
    {"json": {"exception": "moodle_exception", "errorcode": "sitemaintenance",
              "message": f"<p>maintenance {TOKEN}</p>"}},
    {"status": 503, "headers": {"Retry-After": "1"}, "content_type": "text/html",
     "body": f"<html><body><h1>{TOKEN}</h1>{'x' * 5000}</body></html>"},
    {"status": 502, "content_type": "text/html",
     "body": f"<html>{'y' * (errors.RAW_LIMIT - 10)}{TOKEN}</html>"},
]


@pytest.mark.parametrize("scenario", _SECRET_SCENARIOS)
def test_token_never_leaks(
    mocked: responses.RequestsMock,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
    scenario: dict[str, Any],
):
    mocked.post(ENDPOINT, **scenario)
    caplog.set_level(logging.DEBUG)
    client = make_client(fake_time, retry=RetryPolicy(max_attempts=2, max_total_wait=3))
    with pytest.raises(errors.MoodleError) as info:
        client.call("core_user_get_users_by_field", {"field": "email", "values": [PERSONAL]})
    err = info.value
    texts = [str(err), repr(err), repr(client), *map(str, err.args), str(err.message)]
    texts += [str(err.debuginfo), str(err.raw)]
    if isinstance(err, errors.SiteUnavailable):
        texts.append(err.summary())
    # Not even the start of the token, where the raw answer is cut.
    assert TOKEN[:8] not in str(err.raw)
    for record in caplog.records:
        texts.extend([record.getMessage(), repr(record.args)])
    for text in texts:
        assert TOKEN not in text
    for record in caplog.records:
        assert PERSONAL not in record.getMessage()
    assert err.wsfunction == "core_user_get_users_by_field"
    assert err.__context__ is None or TOKEN not in str(err.__context__)


def test_repr_shows_the_url_only(client: MoodleClient):
    assert repr(client) == f"MoodleClient(url={SITE!r})"
    assert TOKEN not in str(vars(client).get("url"))


def test_close_and_context_manager(fake_time: FakeTime):
    with make_client(fake_time) as client:
        assert client.url == SITE
