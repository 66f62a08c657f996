"""Every error body recorded from a real Moodle 4.5, fed through the client, gets its class."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import responses

from moodle_bridge import errors
from moodle_bridge.emulator.phpform import decode_pairs
from moodle_bridge.moodle.client import MoodleClient

TOKEN = "tok-SECRET-5f3a9c"
SITE = "https://lms.example.go.id"
ENDPOINT = f"{SITE}/webservice/rest/server.php"

_REPO_RECORDINGS = Path(__file__).resolve().parents[1] / "contract" / "recordings"
_SHARED_RECORDINGS = Path("/work/shared/moodle-ws-contract")
RECORDINGS = _REPO_RECORDINGS if _REPO_RECORDINGS.is_dir() else _SHARED_RECORDINGS


def _error_cases() -> list[Any]:
    cases = []
    for folder in (RECORDINGS, RECORDINGS / "debug_normal"):
        for path in sorted(folder.glob("*.json")):
            document = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(document, dict):
                continue
            for case in document.get("cases", []):
                response = case.get("response")
                if isinstance(response, dict) and "exception" in response:
                    label = f"{folder.name}/{path.stem}/{case['name']}"
                    cases.append(pytest.param(folder.name == "debug_normal", case, id=label))
    return cases


CASES = _error_cases()


def _expected_class(body: dict[str, Any]) -> type[errors.MoodleError]:
    code = body.get("errorcode")
    if code == "invalidtoken":
        return errors.InvalidToken
    if code == "accessexception":
        return errors.AccessDenied
    if code in ("nopermissions", "nopermission", "wsusercannotassign"):
        return errors.MissingCapability
    if code == "invalidparameter":
        return errors.InvalidParameter
    if code == "invalidrecord":
        if "external_functions" in body.get("message", ""):
            return errors.FunctionNotFound
        return errors.InvalidRecord
    return errors.MoodleException


def test_the_recordings_were_found():
    assert len(CASES) > 100
    with_debuginfo = [p for p in CASES if p.values[0] and "debuginfo" in p.values[1]["response"]]
    assert len(with_debuginfo) > 20


@pytest.mark.parametrize(("debug", "case"), CASES)
def test_recorded_error_body_maps_to_its_class(debug: bool, case: dict[str, Any]):
    request = case["request"]
    body = case["response"]
    wsfunction = request.get("wsfunction") or "core_webservice_get_site_info"
    recorded_fields = request.get("params")
    params = decode_pairs(list(recorded_fields.items())) if recorded_fields else {}

    client = MoodleClient(SITE, TOKEN)
    with responses.RequestsMock() as mocked:
        mocked.post(
            ENDPOINT,
            body=json.dumps(body),
            status=case["http_status"],
            # _cohort_sync_suspend.json records no content type: JSON, as every REST answer.
            content_type=case.get("content_type", "application/json"),
        )
        with pytest.raises(errors.MoodleError) as info:
            client.call(wsfunction, params)
        sent = parse_qsl(mocked.calls[0].request.body.decode(), keep_blank_values=True)

    err = info.value
    expected = _expected_class(body)
    assert type(err) is expected
    if expected is errors.MoodleException:
        assert isinstance(err, errors.RecordError)
    assert err.wsfunction == wsfunction
    assert err.http_status == case["http_status"]
    # Shown to people: plain text (a password-policy failure is HTML in Moodle).
    assert err.message == errors.plain_text(body["message"])
    assert "<" not in err.message
    code = body.get("errorcode")
    assert err.errorcode == (code if isinstance(code, str) else None)
    assert err.exception == body["exception"]
    # debuginfo (why a parameter was invalid) only exists with debugging on, and is kept.
    assert err.debuginfo == body.get("debuginfo")
    if not debug:
        assert err.debuginfo is None
    # Re-encoding the decoded request gives back exactly the fields the recording sent.
    if recorded_fields:
        assert sent[3:] == list(recorded_fields.items())
    assert TOKEN not in str(err)
