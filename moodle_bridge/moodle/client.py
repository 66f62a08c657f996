"""MoodleClient: call a Moodle web-service function, decode the answer, raise typed errors.

Everything above this module talks to Moodle through :meth:`MoodleClient.call`; nothing here
knows what the functions mean.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from moodle_bridge import errors
from moodle_bridge.moodle.encoding import encode_params, field_count, value_field_count
from moodle_bridge.moodle.transport import RawResponse, SupportsPost, Transport, strip_query

__all__ = [
    "DEFAULT_FIELD_BUDGET",
    "DEFAULT_MAX_SITE_WAIT",
    "ENDPOINT_PATH",
    "MoodleClient",
    "RetryPolicy",
    "Timing",
    "parse_retry_after",
]

log = logging.getLogger("moodle_bridge.moodle")

ENDPOINT_PATH = "/webservice/rest/server.php"
#: PHP keeps 5001 fields with the default ``max_input_vars=5000``; a few are left spare.
DEFAULT_FIELD_BUDGET = 4990
#: wstoken, wsfunction and moodlewsrestformat travel with every call.
FIXED_FIELDS = 3
_RESERVED = frozenset({"wstoken", "wsfunction", "moodlewsrestformat"})
_WSFUNCTION = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# 501 and 505 say the server will never handle this request; other 5xx (including proxies'
# 520-524) are passing trouble.
_FATAL_5XX = frozenset({501, 505})
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
T = TypeVar("T")

#: How long ``wait_for_site`` waits for a site at most: a Moodle upgrade in CLI maintenance
#: mode takes minutes to an hour; a night's run that has waited four hours had better stop
#: and say so.
DEFAULT_MAX_SITE_WAIT = 4 * 3600.0


@dataclass(frozen=True)
class Timing:
    """The clocks a client reads and the sleep it takes between retries: ``clock`` (monotonic
    seconds), ``wall_clock`` (epoch seconds, for an HTTP-date ``Retry-After``), ``sleep``, and
    ``rng`` for the jitter of the waits."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    wall_clock: Callable[[], float] = time.time
    rng: random.Random = field(default_factory=random.Random)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a :class:`~moodle_bridge.errors.Retriable` failure.

    Waits grow exponentially from ``base_delay`` by ``factor`` up to ``max_delay``, with full
    jitter (a uniform draw between 0 and that bound). A ``Retry-After`` from the server is
    honoured instead, up to ``max_retry_after``. At most ``max_attempts`` requests are sent,
    and the call gives up rather than sleep past ``max_total_wait`` seconds of waiting in all.

    A fault of the site (:class:`~moodle_bridge.errors.SiteUnavailable`: its database down,
    maintenance...) is not limited by ``max_attempts``: an attempt count would cut a database
    restart short long before the wait budget is spent. It is retried until
    ``max_total_wait`` seconds have been waited (the last wait shortened to end exactly then),
    and at once given up when the site's ``Retry-After`` is longer than what is left of that
    budget: waiting would be in vain. With ``wait_for_site`` the budget for site faults is
    ``max_site_wait`` instead, for a run that had better finish late than not at all.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    factor: float = 2.0
    max_delay: float = 30.0
    max_retry_after: float = 60.0
    max_total_wait: float = 120.0
    wait_for_site: bool = False
    max_site_wait: float = DEFAULT_MAX_SITE_WAIT

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            msg = f"max_attempts must be at least 1, not {self.max_attempts}"
            raise ValueError(msg)
        delays = (self.base_delay, self.max_delay, self.max_retry_after, self.max_total_wait)
        if min(*delays, self.max_site_wait) < 0:
            msg = "retry delays must not be negative"
            raise ValueError(msg)
        if self.base_delay <= 0:
            # A site outage is retried until the wait budget is spent: waits must add up.
            msg = f"base_delay must be positive, not {self.base_delay}"
            raise ValueError(msg)
        if self.factor < 1:
            msg = f"factor must be at least 1, not {self.factor}"
            raise ValueError(msg)

    def delay(self, retry: int, retry_after: float | None, rng: random.Random) -> float:
        """Return the wait before retry number ``retry`` (1 for the first retry)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        # A site outage is retried by time, not by count: the exponent must not overflow.
        bound = min(self.max_delay, self.base_delay * self.factor ** min(retry - 1, 60))
        return rng.uniform(0.0, bound)

    @property
    def site_budget(self) -> float:
        """Seconds of waiting a site fault may cost one request."""
        if self.wait_for_site:
            return max(self.max_total_wait, self.max_site_wait)
        return self.max_total_wait


def parse_retry_after(
    value: str | None, *, now: float, date_header: str | None = None
) -> float | None:
    """Return the seconds a ``Retry-After`` header asks for, or None if absent or unreadable.

    Both forms are read: delta-seconds (``120``) and an HTTP-date. A date is measured from the
    answer's own ``Date`` header when there is one (so a skewed local clock does not matter),
    otherwise from ``now`` (seconds since the epoch).
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if seconds == seconds else None  # NaN is not a delay
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    reference = now
    if date_header:
        try:
            served = parsedate_to_datetime(date_header)
        except (TypeError, ValueError, IndexError):
            pass
        else:
            reference = (served if served.tzinfo else served.replace(tzinfo=UTC)).timestamp()
    return max(when.timestamp() - reference, 0.0)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, item in headers.items():
        if key.lower() == wanted:
            return item
    return None


def _endpoint(url: str) -> str:
    """Return the REST endpoint for a site URL; ConfigError for URLs that cannot be used."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        msg = f"the Moodle URL must start with https:// and name a host, not {strip_query(url)!r}"
        raise errors.ConfigError(msg)
    if parts.query or parts.fragment:
        msg = "the Moodle URL must not have a query or fragment (the token goes in the body)"
        raise errors.ConfigError(msg)
    if "@" in parts.netloc:
        msg = "the Moodle URL must not contain a user name or password"
        raise errors.ConfigError(msg)
    path = parts.path.rstrip("/")
    if not path.endswith(ENDPOINT_PATH):
        path += ENDPOINT_PATH
    return f"{parts.scheme}://{parts.netloc}{path}"


def _is_page(raw: RawResponse) -> bool:
    """Whether the answer is markup (a web page, PHP's HTML warnings), not JSON."""
    return "text/html" in raw.content_type.lower() or raw.body.lstrip().startswith(b"<")


class MoodleClient:
    """Calls Moodle web-service functions through the REST protocol with JSON answers.

    ``url`` is the site's address (``https://lms.example.go.id``; a trailing slash or the full
    ``/webservice/rest/server.php`` endpoint is accepted). The token is sent in the POST body
    only, first of all fields, and never appears in this object's repr, in log records or in
    any error raised. ``timing`` (the clocks, sleep and jitter) is injectable so tests never
    wait.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        transport: SupportsPost | None = None,
        retry: RetryPolicy | None = None,
        field_budget: int = DEFAULT_FIELD_BUDGET,
        timing: Timing | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.endpoint = _endpoint(url)
        self.url = self.endpoint[: -len(ENDPOINT_PATH)]
        if not token or token != token.strip():
            msg = "the Moodle token is empty or has surrounding whitespace"
            raise errors.ConfigError(msg)
        self._token = token
        if field_budget <= FIXED_FIELDS:
            msg = f"field_budget must exceed {FIXED_FIELDS}, not {field_budget}"
            raise errors.ConfigError(msg)
        self.field_budget = field_budget
        self._owns_transport = transport is None
        self._transport: SupportsPost = transport if transport is not None else Transport()
        self.retry = retry if retry is not None else RetryPolicy()
        timing = timing or Timing()
        self._clock = timing.clock
        self._sleep = timing.sleep
        self._wall_clock = timing.wall_clock
        self._rng = timing.rng
        self._log = logger if logger is not None else log
        host = urlsplit(self.endpoint).hostname or ""
        if self.endpoint.startswith("http://") and host not in _LOOPBACK:
            self._log.warning(
                "Moodle URL %s is plain http: the token crosses the network unencrypted",
                self.url,
            )

    def __repr__(self) -> str:
        return f"MoodleClient(url={self.url!r})"

    # --- the call ---------------------------------------------------------------------------
    def call(
        self,
        wsfunction: str,
        params: Mapping[str, Any] | None = None,
        *,
        retry_writes: bool = True,
    ) -> Any:
        """Call ``wsfunction`` with ``params`` and return Moodle's decoded JSON answer.

        ``params`` are nested dicts and lists (see
        :func:`~moodle_bridge.moodle.encoding.encode_params`). Functions that return nothing
        give None. Errors Moodle reports in the body become the class its ``errorcode`` maps
        to; HTTP and network failures become Retriable or Fatal errors; all of them carry
        ``wsfunction`` and ``http_status`` (None when no answer came).

        Retriable failures are sent again under the :class:`RetryPolicy`. Moodle has no
        idempotency keys, so resending a create whose answer was lost can create the record
        twice: pass ``retry_writes=False`` for non-idempotent writes. Then only what was
        refused before any work was done is retried (:class:`~moodle_bridge.errors.RateLimited`,
        and a :class:`~moodle_bridge.errors.SiteUnavailable` whose ``refused_before_work`` is
        True: maintenance, upgrade); any other Retriable error, ``dbconnectionfailed``
        included, is an unknown outcome: it is raised at once and the caller must look the
        records up (by idnumber) before sending them again.

        Raises RequestTooLarge, without sending, when the call needs more form fields than
        ``field_budget`` (PHP would silently drop the excess); ValueError for a malformed
        ``wsfunction`` or a reserved parameter name.
        """
        if not _WSFUNCTION.fullmatch(wsfunction):
            msg = f"not a web-service function name: {wsfunction!r}"
            raise ValueError(msg)
        params = params or {}
        clash = _RESERVED.intersection(params)
        if clash:
            msg = f"parameter name(s) reserved by the protocol: {', '.join(sorted(clash))}"
            raise ValueError(msg)
        fields = encode_params(params)
        total = FIXED_FIELDS + len(fields)
        if total > self.field_budget:
            msg = (
                f"{total} form fields exceed the budget of {self.field_budget} "
                "(split the list with chunks())"
            )
            raise errors.RequestTooLarge(msg, wsfunction=wsfunction)
        # The token goes first: when PHP cuts a body at max_input_vars it drops the last fields.
        pairs = [
            ("wstoken", self._token),
            ("wsfunction", wsfunction),
            ("moodlewsrestformat", "json"),
            *fields,
        ]
        return self._send_with_retries(wsfunction, pairs, retry_writes=retry_writes)

    def _send_with_retries(
        self, wsfunction: str, pairs: list[tuple[str, str]], *, retry_writes: bool
    ) -> Any:
        waited = 0.0
        attempt = 1
        while True:
            try:
                return self._send_once(wsfunction, pairs, attempt)
            except errors.Retriable as err:
                delay = self._retry_delay(err, attempt, waited, retry_writes=retry_writes)
                if delay is None:
                    raise
                self._log.info(
                    "%s: %s (http=%s), retry %d in %.2f s (%.1f s waited so far)",
                    wsfunction,
                    type(err).__name__,
                    err.http_status,
                    attempt,
                    delay,
                    waited,
                )
                self._sleep(delay)
                waited += delay
                attempt += 1

    def _retry_delay(
        self, err: errors.Retriable, attempt: int, waited: float, *, retry_writes: bool
    ) -> float | None:
        """The wait before sending again after ``attempt`` failed with ``err``, or None to give
        up (the reason is logged, except for an unknown outcome the caller settles)."""
        policy = self.retry
        site = err if isinstance(err, errors.SiteUnavailable) else None
        if not retry_writes and not (
            isinstance(err, errors.RateLimited) or (site is not None and site.refused_before_work)
        ):
            return None
        if site is None:
            if attempt >= policy.max_attempts:
                self._give_up(err, f"after {attempt} attempts")
                return None
            delay = policy.delay(attempt, err.retry_after, self._rng)
            if waited + delay > policy.max_total_wait:
                self._give_up(
                    err, f"waiting {delay:.1f} s more would exceed {policy.max_total_wait:g} s"
                )
                return None
            return delay
        left = policy.site_budget - waited
        if site.retry_after is not None and site.retry_after > left:
            self._give_up(
                err, f"the site asks for {site.retry_after:g} s, {max(left, 0):.0f} s are left"
            )
            return None
        if left <= 0:
            self._give_up(err, f"{waited:.0f} s of waiting spent")
            return None
        # Jitter (or a Retry-After of 0) must not turn into a busy loop against a site that is
        # down: every wait counts at least the base delay against the budget.
        delay = max(policy.delay(attempt, site.retry_after, self._rng), policy.base_delay)
        return min(delay, left)

    def _give_up(self, err: errors.Retriable, why: str) -> None:
        self._log.warning(
            "%s: giving up, %s (%s, http=%s)",
            err.wsfunction,
            why,
            type(err).__name__,
            err.http_status,
        )

    def _send_once(self, wsfunction: str, pairs: list[tuple[str, str]], attempt: int) -> Any:
        started = self._clock()
        status: int | None = None
        outcome = "failed"
        try:
            raw = self._transport.post(self.endpoint, pairs)
            status = raw.status
            result = self._decode(wsfunction, raw)
            outcome = "ok"
            return result
        except errors.MoodleError as err:
            outcome = type(err).__name__
            if err.wsfunction is None:
                err.wsfunction = wsfunction
            self._scrub(err)
            raise
        finally:
            self._log.debug(
                "%s: %d fields, attempt %d, http=%s, %s, %.3f s",
                wsfunction,
                len(pairs),
                attempt,
                status,
                outcome,
                self._clock() - started,
            )

    def _scrub(self, err: errors.MoodleError) -> None:
        """Remove the token from an error's text, in case a server or proxy echoed it."""
        token = self._token

        def clean(text: str | None) -> str | None:
            return text.replace(token, "<TOKEN>") if text and token in text else text

        err.message = clean(err.message) or ""
        err.debuginfo = clean(err.debuginfo)
        # Moodle puts HTML into errorcode on a password-policy failure: these fields are not
        # always tidy codes, and a proxy may echo anything into them.
        err.errorcode = clean(err.errorcode)
        err.exception = clean(err.exception)
        err.raw = clean(err.raw)
        err.args = tuple(clean(arg) if isinstance(arg, str) else arg for arg in err.args)

    # --- decoding ---------------------------------------------------------------------------
    def _decode(self, wsfunction: str, raw: RawResponse) -> Any:
        """Return the decoded answer, or raise the error the status or body stands for."""
        failure = self._status_error(wsfunction, raw)
        if failure is None:
            failure, data = self._decode_body(wsfunction, raw)
            if failure is None:
                return data
        if raw.body:
            # Scrubbed before it is cut, so no piece of the token survives at the cut.
            text = raw.body.decode("utf-8", "replace").replace(self._token, "<TOKEN>")
            failure.raw = text[: errors.RAW_LIMIT]
        raise failure

    def _status_error(self, wsfunction: str, raw: RawResponse) -> errors.MoodleError | None:
        status = raw.status
        if 200 <= status < 300:
            return None
        retry_after_header = _header(raw.headers, "Retry-After")
        retry_after = parse_retry_after(
            retry_after_header, now=self._wall_clock(), date_header=_header(raw.headers, "Date")
        )
        if status == 429:
            wait = "" if retry_after is None else f", retry after {retry_after:g} s"
            return errors.RateLimited(
                f"HTTP {status}: the server asks us to slow down{wait}",
                retry_after=retry_after,
                wsfunction=wsfunction,
                http_status=status,
            )
        if status == 503 and retry_after_header is not None:
            return self._site_fault(wsfunction, raw, retry_after, refused_before_work=True)
        cls: type[errors.MoodleError] = errors.HttpError
        if status >= 500 and status not in _FATAL_5XX:
            if _is_page(raw):
                return self._site_fault(wsfunction, raw, None, refused_before_work=False)
            cls, message = errors.ServerError, f"HTTP {status}: server error"
        elif status >= 500:
            message = f"HTTP {status} from {self.endpoint}"
        elif status == 413:
            cls = errors.RequestTooLarge
            message = "HTTP 413: the request body is larger than the server accepts"
        elif 300 <= status < 400:
            location = _header(raw.headers, "Location")
            target = f" to {strip_query(location)}" if location else ""
            message = f"HTTP {status}: redirected{target}; configure the final https URL"
        else:
            message = f"HTTP {status} from {self.endpoint} (wrong URL, or a proxy refusing us?)"
        return cls(message, wsfunction=wsfunction, http_status=status)

    def _site_fault(
        self,
        wsfunction: str,
        raw: RawResponse,
        retry_after: float | None,
        *,
        refused_before_work: bool,
    ) -> errors.SiteUnavailable:
        """A page or a 503 in place of Moodle's JSON: what the site said, as plain text."""
        text = errors.plain_text(raw.body.decode("utf-8", "replace"))
        outage = errors.page_outage(text) if _is_page(raw) else None
        if outage is None:
            outage = errors.Outage.HTML_PAGE if _is_page(raw) else errors.Outage.UNAVAILABLE
        until = None if retry_after is None else self._wall_clock() + retry_after
        return errors.SiteUnavailable(
            text or f"HTTP {raw.status} with an empty answer",
            outage=outage,
            refused_before_work=refused_before_work,
            until=until,
            retry_after=retry_after,
            wsfunction=wsfunction,
            http_status=raw.status,
        )

    def _decode_body(
        self, wsfunction: str, raw: RawResponse
    ) -> tuple[errors.MoodleError | None, Any]:
        """Return ``(None, value)`` for a JSON answer, ``(error, None)`` otherwise."""
        status = raw.status
        body = raw.body
        if not body.strip():
            return errors.BadResponse(
                "empty answer where JSON was expected", wsfunction=wsfunction, http_status=status
            ), None
        if _is_page(raw):
            return self._site_fault(wsfunction, raw, None, refused_before_work=False), None
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            position = f" at character {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
            # Returned, not raised here: the decode error holds the whole body as context.
            return errors.BadResponse(
                f"invalid JSON{position} in a {len(body)}-byte answer (truncated?)",
                wsfunction=wsfunction,
                http_status=status,
            ), None
        if isinstance(data, dict) and "exception" in data:
            return errors.error_from_body(data, wsfunction=wsfunction, http_status=status), None
        return None, data

    # --- request size -----------------------------------------------------------------------
    def chunks(
        self,
        items: Iterable[T],
        item_params: Callable[[T], Any],
        *,
        others: Mapping[str, Any] | None = None,
        limit: int | None = None,
    ) -> Iterator[list[T]]:
        """Split ``items`` lazily into consecutive chunks, each fitting one request.

        ``item_params(item)`` is the item as one element of the call's list parameter (what
        :func:`~moodle_bridge.moodle.encoding.encode_params` flattens); ``others`` are the
        call's other parameters and ``limit`` caps the items per chunk. Greedy filling gives
        the fewest chunks, since chunks are consecutive and sizes add up. An item too large
        even alone comes alone: :meth:`call` then refuses it with RequestTooLarge.
        """
        room = self.field_budget - FIXED_FIELDS - field_count(others or {})
        chunk: list[T] = []
        used = 0
        for item in items:
            size = value_field_count(item_params(item))
            if chunk and (used + size > room or len(chunk) == limit):
                yield chunk
                chunk, used = [], 0
            chunk.append(item)
            used += size
        if chunk:
            yield chunk

    # --- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close the transport if this client created it."""
        if self._owns_transport and isinstance(self._transport, Transport):
            self._transport.close()

    def __enter__(self) -> MoodleClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
