"""The error tree: Moodle's site-level failures, plain-text reasons, the one-line summary."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moodle_bridge import errors
from moodle_bridge.errors import Outage, SiteUnavailable

FAULTS = Path("/work/shared/moodle-ws-contract/_fault_responses.json")
DATA = Path(errors.__file__).parent / "emulator" / "data" / "fault_responses.json"


def recorded(name: str) -> dict[str, Any]:
    """A recorded fault answer: the contract's when present, else the emulator's copy."""
    if FAULTS.is_file():
        cases = json.loads(FAULTS.read_text(encoding="utf-8"))["cases"]
        return next(case for case in cases if case["name"] == name)
    return dict(json.loads(DATA.read_text(encoding="utf-8"))["cases"][name])


def body(errorcode: str | None, *, exception: str = "moodle_exception", **extra: str) -> Any:
    found = {"exception": exception, "message": "m", **extra}
    if errorcode is not None:
        found["errorcode"] = errorcode
    return errors.error_from_body(found, wsfunction="core_user_create_users", http_status=200)


# --- the table ----------------------------------------------------------------------------------
def test_every_entry_says_why_and_the_errorcodes_are_unambiguous_or_need_evidence():
    seen: dict[str, list[errors.SiteFailure]] = {}
    for failure in errors.SITE_FAILURES:
        assert len(failure.why) > 40, failure.signal
        seen.setdefault(failure.signal, []).append(failure)
    for signal, entries in seen.items():
        # A code listed twice is told apart by its evidence, never by its position alone.
        if len(entries) > 1:
            assert all(entry.evidence for entry in entries), signal
    required = {"dbconnectionfailed", "sitemaintenance", errors.HTML_PAGE}
    assert required <= set(seen)


def test_the_recorded_database_down_body_is_a_database_outage():
    answer = json.loads(recorded("database_down")["body"])
    err = errors.error_from_body(answer, wsfunction="core_user_create_users", http_status=200)
    assert type(err) is SiteUnavailable
    assert isinstance(err, errors.Retriable)
    assert not isinstance(err, errors.RecordError)
    assert err.outage is Outage.DATABASE
    # The database may have gone away after the commit: a write's outcome is unknown.
    assert err.refused_before_work is False
    assert err.errorcode == "dbconnectionfailed"
    assert err.message.startswith("Error: Database connection failed. It is possible")
    assert "<" not in err.message
    assert len(err.message) <= errors.REASON_LIMIT
    assert err.summary() == "database unavailable"


@pytest.mark.parametrize(
    ("errorcode", "outage", "before_work"),
    [
        ("sitemaintenance", Outage.MAINTENANCE, True),
        ("upgraderunning", Outage.UPGRADE, True),
        ("sessionwaiterr", Outage.BUSY, False),
        ("locktimeout", Outage.BUSY, False),
        ("dbconnectionfailed", Outage.DATABASE, False),
    ],
)
def test_site_level_codes(errorcode: str, outage: Outage, before_work: bool):
    err = body(errorcode)
    assert isinstance(err, SiteUnavailable)
    assert (err.outage, err.refused_before_work) == (outage, before_work)


def test_a_body_without_errorcode_is_known_by_its_exception_class():
    err = body(None, exception="core\\exception\\dml_connection_exception")
    assert isinstance(err, SiteUnavailable)
    assert err.outage is Outage.DATABASE


@pytest.mark.parametrize("code", ["dmlwriteexception", "dmlreadexception"])
def test_read_and_write_failures_are_the_sites_only_with_evidence(code: str):
    # Production: no debuginfo. A value too long for its column fails exactly like this.
    assert type(body(code)) is errors.MoodleException
    assert type(body(code, debuginfo="value too long for type character varying(100)")) is (
        errors.MoodleException
    )
    gone = body(code, debuginfo="FATAL: terminating connection due to administrator command")
    assert isinstance(gone, SiteUnavailable)
    assert gone.outage is Outage.DATABASE
    locked = body(code, debuginfo="ERROR:  deadlock detected\nDETAIL: Process 1 waits")
    assert isinstance(locked, SiteUnavailable)
    assert locked.outage is Outage.BUSY


@pytest.mark.parametrize("code", ["invalidparameter", "invalidrecord", "dmltransactionexception"])
def test_record_errors_stay_record_errors(code: str):
    assert isinstance(body(code), errors.RecordError)


@pytest.mark.parametrize(
    ("text", "outage"),
    [
        ("Moodle Real Test under maintenance. The site is undergoing maintenance", "maintenance"),
        ("Error: Database connection failed", "database"),
        ("Site is being upgraded, please retry later.", "upgrade"),
        ("Bad Gateway nginx", None),
    ],
)
def test_pages_are_told_apart_by_what_they_say(text: str, outage: str | None):
    assert errors.page_outage(text) == (Outage(outage) if outage else None)


# --- plain text ------------------------------------------------------------------------------
def test_the_recorded_maintenance_page_becomes_one_sentence_pair():
    page = recorded("cli_maintenance_mode")["body"]
    assert errors.plain_text(page) == (
        "Moodle Real Test under maintenance. "
        "The site is undergoing maintenance and is currently not available"
    )


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("Invalid parameter value detected", "Invalid parameter value detected"),
        ("<br />\n<b>Warning</b>: x", "Warning: x"),
        ("error/<div>Passwords must be at least 8 characters long.</div>",
         "error/ Passwords must be at least 8 characters long."),
        ("<p>a &amp; b</p><p>c &lt; d</p>", "a & b. c < d"),
        ("<script>alert(1)</script><style>p{}</style>ok<!-- hidden -->", "ok"),
        ("  lots \n\t of   space ", "lots of space"),
        ("value < 5 and > 3", "value < 5 and > 3"),
    ],
)
def test_plain_text(text: str, plain: str):
    assert errors.plain_text(text) == plain


def test_long_text_is_cut_at_a_word_with_an_ellipsis():
    text = "word " * 100
    plain = errors.plain_text(text)
    assert len(plain) <= errors.REASON_LIMIT
    assert plain.endswith("word...")


@given(st.text())
def test_plain_text_is_one_short_line(text: str):
    plain = errors.plain_text(text)
    assert len(plain) <= errors.REASON_LIMIT
    assert "\n" not in plain
    assert plain == plain.strip()


# --- the line for people -----------------------------------------------------------------------
def test_maintenance_until_is_given_in_the_configured_timezone():
    now = time.time()
    err = SiteUnavailable("m", outage=Outage.MAINTENANCE, until=now + 300)
    jakarta = datetime.fromtimestamp(now + 300 + 59, ZoneInfo("Asia/Jakarta"))
    text = err.summary("Asia/Jakarta")
    assert text.startswith("site in maintenance until about ")
    assert text.endswith(jakarta.strftime("%H:%M"))
    # The machine's own time without a zone, and for a zone name nobody knows.
    local = datetime.fromtimestamp(now + 300 + 59).strftime("%H:%M")
    assert err.summary().endswith(local)
    assert err.summary("Nowhere/Atlantis").endswith(local)


def test_until_is_never_before_the_time_it_names():
    # 10:00:01 Jakarta: "about 10:01", not "10:00" (the site is not back at 10:00).
    moment = datetime(2026, 12, 3, 10, 0, 1, tzinfo=ZoneInfo("Asia/Jakarta")).timestamp()
    err = SiteUnavailable("m", outage=Outage.UNAVAILABLE, until=moment)
    text = err.summary("Asia/Jakarta")
    assert text.endswith(" 10:01")
    assert "10:00" not in text


@pytest.mark.parametrize(
    ("outage", "summary"),
    [
        (Outage.DATABASE, "database unavailable"),
        (Outage.MAINTENANCE, "site in maintenance"),
        (Outage.UPGRADE, "site being upgraded"),
        (Outage.HTML_PAGE, "site answered with an HTML page instead of JSON"),
    ],
)
def test_str_is_one_line_starting_with_the_summary(outage: Outage, summary: str):
    err = SiteUnavailable(
        "Error: Database connection failed.",
        outage=outage,
        wsfunction="core_user_create_users",
        errorcode="dbconnectionfailed",
        http_status=200,
        debuginfo="line one\nline two",
    )
    text = str(err)
    assert text.startswith(f"{summary}: Error: Database connection failed.")
    assert "function=core_user_create_users" in text
    assert "\n" not in text


def test_raw_is_kept_apart_from_the_message():
    err = SiteUnavailable("short", outage=Outage.HTML_PAGE, raw="<html>long</html>")
    assert err.raw == "<html>long</html>"
    assert "<html>" not in str(err)
