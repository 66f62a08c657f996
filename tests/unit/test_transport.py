"""Transport: one pooled session, explicit timeouts, TLS always verified, safe failures."""

from __future__ import annotations

import inspect
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
import requests
import responses
from hypothesis import given
from hypothesis import strategies as st

from moodle_bridge import errors
from moodle_bridge.moodle.transport import RawResponse, Transport, form_body, strip_query

URL = "https://lms.example.go.id/webservice/rest/server.php"
TOKEN = "tok-SECRET-5f3a9c"
PAIRS = [("wstoken", TOKEN), ("wsfunction", "core_webservice_get_site_info")]


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def test_post_sends_form_body_and_returns_the_raw_answer(mocked: responses.RequestsMock):
    mocked.post(URL, json={"sitename": "x"}, headers={"Retry-After": "3"})
    raw = Transport().post(URL, [*PAIRS, ("users[0][email]", "a&b@x.id")])

    assert isinstance(raw, RawResponse)
    assert raw.status == 200
    assert raw.content_type == "application/json"
    assert raw.body == b'{"sitename": "x"}'
    assert raw.headers["retry-after"] == "3"
    request = mocked.calls[0].request
    assert request.url == URL  # the token travels in the body, never in the URL
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "moodle-bridge/" in request.headers["User-Agent"]
    assert parse_qsl(request.body.decode()) == [*PAIRS, ("users[0][email]", "a&b@x.id")]


def test_non_200_answers_are_returned_not_raised(mocked: responses.RequestsMock):
    mocked.post(URL, status=503, body="<html>down</html>", content_type="text/html")
    raw = Transport().post(URL, PAIRS)
    assert (raw.status, raw.content_type, raw.body) == (503, "text/html", b"<html>down</html>")


def test_default_timeouts_and_verification(
    mocked: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    mocked.post(URL, json=None)
    Transport().post(URL, PAIRS)
    kwargs = mocked.calls[0].request.req_kwargs
    assert kwargs["timeout"] == (10.0, 120.0)
    assert kwargs["verify"] is True


def test_configured_timeouts_and_ca_bundle(mocked: responses.RequestsMock, tmp_path: Path):
    bundle = tmp_path / "kemenag-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    mocked.post(URL, json=None)
    Transport(connect_timeout=3, read_timeout=30, ca_bundle=bundle).post(URL, PAIRS)
    kwargs = mocked.calls[0].request.req_kwargs
    assert kwargs["timeout"] == (3, 30)
    assert kwargs["verify"] == str(bundle)


def test_there_is_no_switch_to_turn_verification_off():
    assert not {"verify", "insecure", "verify_tls"} & set(inspect.signature(Transport).parameters)


def test_missing_ca_bundle_is_a_config_error(tmp_path: Path):
    with pytest.raises(errors.ConfigError, match="does not exist"):
        Transport(ca_bundle=tmp_path / "nope.pem")


@pytest.mark.parametrize(
    "kwargs", [{"connect_timeout": 0}, {"read_timeout": -1}, {"concurrency": 0}]
)
def test_bad_settings_are_refused(kwargs: dict[str, float]):
    with pytest.raises(errors.ConfigError):
        Transport(**kwargs)  # type: ignore[arg-type]


def test_pool_holds_a_connection_per_worker():
    transport = Transport(concurrency=16)
    adapter = transport._session.get_adapter(URL)
    assert adapter._pool_maxsize >= 16  # type: ignore[attr-defined]
    assert adapter.max_retries.total == 0  # type: ignore[attr-defined]


def test_redirects_are_not_followed(mocked: responses.RequestsMock):
    mocked.post(URL, status=302, headers={"Location": "https://other.example/login?x=1"})
    raw = Transport().post(URL, PAIRS)
    assert raw.status == 302
    assert len(mocked.calls) == 1


_RAISED = [
    (requests.exceptions.ConnectTimeout(f"timeout for {URL}?wstoken={TOKEN}"), "timed out"),
    (requests.exceptions.ReadTimeout(f"Read timed out. body={TOKEN}"), "no answer within 120"),
    (
        requests.exceptions.ConnectionError(ConnectionRefusedError(111, "Connection refused")),
        "Connection refused",
    ),
    (
        requests.exceptions.ConnectionError(ConnectionResetError(104, "Connection reset by peer")),
        "reset by peer",
    ),
    (requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead"), "cut off"),
]


@pytest.mark.parametrize(("exc", "words"), _RAISED)
def test_connection_failures_become_network_errors(
    mocked: responses.RequestsMock, exc: Exception, words: str
):
    mocked.post(URL, body=exc)
    with pytest.raises(errors.NetworkError, match=words) as info:
        Transport().post(URL, PAIRS)
    err = info.value
    assert isinstance(err, errors.Retriable)
    assert URL in str(err)
    assert TOKEN not in str(err)
    assert TOKEN not in repr(err)
    assert "?" not in str(err)
    # Nothing chained: requests' exception holds the prepared request, body and token.
    assert err.__cause__ is None
    assert err.__context__ is None


def test_tls_failure_is_fatal_not_retried(mocked: responses.RequestsMock):
    mocked.post(URL, body=requests.exceptions.SSLError("certificate verify failed"))
    with pytest.raises(errors.Fatal, match="TLS verification failed") as info:
        Transport().post(URL, PAIRS)
    assert not isinstance(info.value, errors.Retriable)


def test_other_request_failures_are_fatal(mocked: responses.RequestsMock):
    mocked.post(URL, body=requests.exceptions.InvalidHeader("bad header"))
    with pytest.raises(errors.Fatal, match="InvalidHeader"):
        Transport().post(URL, PAIRS)


def test_urllib3_wrapping_is_unwrapped_to_the_cause(mocked: responses.RequestsMock):
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    inner = NewConnectionError(None, "Failed to establish a new connection: [Errno -2] unknown")
    wrapped = MaxRetryError(None, "/webservice/rest/server.php?wstoken=" + TOKEN, reason=inner)
    mocked.post(URL, body=requests.exceptions.ConnectionError(wrapped))
    with pytest.raises(errors.NetworkError) as info:
        Transport().post(URL, PAIRS)
    assert "Failed to establish a new connection" in str(info.value)
    assert TOKEN not in str(info.value)


def test_strip_query_drops_query_fragment_and_credentials():
    assert strip_query("https://u:p@h.example/x/server.php?wstoken=t#f") == (
        "https://h.example/x/server.php"
    )


def test_repr_and_context_manager():
    with Transport(concurrency=2) as transport:
        assert "concurrency=2" in repr(transport)


@given(
    st.lists(st.tuples(st.text(), st.text() | st.sampled_from(["%5B", "a[0]", "x y"])), max_size=20)
)
def test_form_body_is_exactly_what_urlencode_makes(pairs):
    assert form_body(pairs) == urlencode(pairs).encode("ascii")
