"""HTTP transport to Moodle: the only module of moodle_bridge that imports ``requests``.

It POSTs form fields and hands back the raw answer; deciding what the answer means (and
whether to retry) is the client's job. Failures of the connection itself become
:class:`~moodle_bridge.errors.NetworkError` whose text holds neither the request body (where
the token travels) nor any URL query.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol
from urllib.parse import quote_plus, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from moodle_bridge import __version__, errors

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "RawResponse",
    "SupportsPost",
    "Transport",
    "strip_query",
]

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 120.0

_USER_AGENT = f"moodle-bridge/{__version__} (+requests/{requests.__version__})"
# "<urllib3.connection.HTTPSConnection object at 0x7f..>: " says nothing to a reader.
_OBJECT_REPR = re.compile(r"<[^<>]* object at 0x[0-9a-fA-F]+>:?\s*")
_QUERY = re.compile(r"\?[^\s'\")]*")
# Shorter values are too common to redact without mangling the message (e.g. "json", "1").
_MIN_REDACTED_LENGTH = 6
_MAX_REASON_LENGTH = 300


@dataclass(frozen=True)
class RawResponse:
    """An HTTP answer as received: status, Content-Type, body bytes and headers."""

    status: int
    content_type: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


class SupportsPost(Protocol):
    """What :class:`~moodle_bridge.moodle.client.MoodleClient` needs from a transport."""

    def post(self, url: str, pairs: list[tuple[str, str]]) -> RawResponse:
        """POST ``pairs`` form-encoded to ``url``; raise NetworkError if no answer arrives."""
        ...


def strip_query(url: str) -> str:
    """Return ``url`` without query, fragment or user info: safe to show in messages."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _innermost(exc: BaseException) -> BaseException:
    """Follow requests' and urllib3's wrapping down to the error that started it."""
    seen: set[int] = set()
    current = exc
    while id(current) not in seen:
        seen.add(id(current))
        reason = getattr(current, "reason", None)
        first_arg = current.args[0] if current.args else None
        if isinstance(reason, BaseException):
            current = reason
        elif isinstance(first_arg, BaseException):
            current = first_arg
        elif current.__cause__ is not None:
            current = current.__cause__
        else:
            break
    return current


def _reason(exc: BaseException, pairs: list[tuple[str, str]]) -> str:
    """Describe why a request failed, with no query string and no value from the body."""
    cause = _innermost(exc)
    text = _OBJECT_REPR.sub("", str(cause)).strip() or type(cause).__name__
    text = _QUERY.sub("", text)
    for _name, value in pairs:
        if len(value) >= _MIN_REDACTED_LENGTH and value in text:
            text = text.replace(value, "<redacted>")
    if len(text) > _MAX_REASON_LENGTH:
        text = text[:_MAX_REASON_LENGTH] + "..."
    return text


#: Characters ``quote_plus`` leaves as they are; most names, NIPs and codes are only these.
_SAFE = re.compile(r"[A-Za-z0-9_.\-~]*")
#: The same plus brackets: the shape of field names such as ``users[12][email]``.
_SAFE_OR_BRACKET = re.compile(r"[A-Za-z0-9_.\-~\[\]]*")


def _quote(text: str) -> str:
    if _SAFE.fullmatch(text):
        return text
    if _SAFE_OR_BRACKET.fullmatch(text):
        return text.replace("[", "%5B").replace("]", "%5D")
    return quote_plus(text)


def form_body(pairs: list[tuple[str, str]]) -> bytes:
    """The ``application/x-www-form-urlencoded`` body of ``pairs``, as ``urlencode`` makes it.

    ``urlencode`` quotes every character through a Python loop; a 233,000-account load sends
    millions of fields that need no quoting at all, so those are passed through as they are.
    """
    return "&".join(f"{_quote(k)}={_quote(v)}" for k, v in pairs).encode("ascii")


class Transport:
    """A pooled HTTPS session that POSTs form fields to Moodle.

    TLS certificates are always verified, against ``ca_bundle`` when given (a PEM file or
    directory, e.g. a government CA) and the system's trusted roots otherwise; there is
    deliberately no way to turn verification off. Redirects are not followed: a POST that is
    redirected arrives as a GET without its body (and without the token), so a redirect is
    reported instead.
    """

    def __init__(
        self,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        ca_bundle: str | Path | None = None,
        concurrency: int = 4,
        user_agent: str = _USER_AGENT,
    ) -> None:
        if connect_timeout <= 0 or read_timeout <= 0:
            msg = "timeouts must be positive numbers of seconds"
            raise errors.ConfigError(msg)
        if concurrency < 1:
            msg = f"concurrency must be at least 1, not {concurrency}"
            raise errors.ConfigError(msg)
        self._verify: str | bool = True
        if ca_bundle is not None:
            bundle = Path(ca_bundle).expanduser()
            if not bundle.exists():
                msg = f"CA bundle {bundle} does not exist"
                raise errors.ConfigError(msg)
            self._verify = str(bundle)
        self.timeout = (connect_timeout, read_timeout)
        self.concurrency = concurrency
        self._session = requests.Session()
        # Every worker thread needs its own pooled connection or they queue on one socket;
        # retries are the client's business, so urllib3 must not retry behind its back.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=concurrency, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.headers.update({"User-Agent": user_agent, "Accept": "application/json"})

    def __repr__(self) -> str:
        return (
            f"Transport(timeout={self.timeout!r}, concurrency={self.concurrency}, "
            f"verify={self._verify!r})"
        )

    def post(self, url: str, pairs: list[tuple[str, str]]) -> RawResponse:
        """POST ``pairs`` form-encoded to ``url`` and return the answer, whatever its status.

        Raises NetworkError when the connection fails, times out or the answer is cut off,
        and Fatal when TLS verification fails or the request cannot be made at all.
        """
        body = form_body(pairs)
        failure: errors.MoodleError | None = None
        try:
            response = self._session.post(
                url,
                data=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                timeout=self.timeout,
                verify=self._verify,
                allow_redirects=False,
            )
        # The error is built here but raised below, outside the handler, so that it carries
        # no __context__: requests' exception holds the prepared request, body and token.
        except requests.exceptions.SSLError as exc:
            failure = errors.TlsError(
                f"TLS verification failed for {strip_query(url)}: {_reason(exc, pairs)} "
                "(give the site's CA bundle if it uses a private CA)"
            )
        except requests.exceptions.ConnectTimeout as exc:
            failure = errors.NetworkError(
                f"timed out after {self.timeout[0]:g} s connecting to {strip_query(url)}: "
                f"{_reason(exc, pairs)}"
            )
        except requests.exceptions.Timeout as exc:
            failure = errors.NetworkError(
                f"no answer within {self.timeout[1]:g} s from {strip_query(url)}: "
                f"{_reason(exc, pairs)}"
            )
        except requests.exceptions.ConnectionError as exc:
            failure = errors.NetworkError(
                f"connection to {strip_query(url)} failed: {_reason(exc, pairs)}"
            )
        except (
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            failure = errors.NetworkError(
                f"the answer from {strip_query(url)} was cut off: {_reason(exc, pairs)}"
            )
        except requests.exceptions.RequestException as exc:
            failure = errors.Fatal(
                f"could not send a request to {strip_query(url)}: "
                f"{type(exc).__name__}: {_reason(exc, pairs)}"
            )
        if failure is not None:
            raise failure
        return RawResponse(
            status=response.status_code,
            content_type=response.headers.get("Content-Type", ""),
            body=response.content,
            headers=response.headers,
        )

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
