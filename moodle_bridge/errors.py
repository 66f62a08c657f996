"""The error tree of moodle_bridge.

Callers decide what to do with ``isinstance`` on three markers:

* :class:`Retriable` - the same request may succeed later (network, 5xx, 429, timeouts);
  its :class:`SiteUnavailable` says the Moodle site itself is away (database down,
  maintenance, upgrade, an HTML page instead of JSON): never the fault of a record;
* :class:`RecordError` - Moodle rejected what we sent about one record: skip or bisect it;
* :class:`Fatal` - nothing else will work either (bad token, missing capability or function):
  stop the run.

Every Moodle error carries ``wsfunction``, ``errorcode``, Moodle's message, the HTTP status and,
where known, the record it concerns. None of them ever holds the token: the transport never
hands it to an exception, and ``__str__`` is built from the fields listed here only.
Messages built from Moodle's answers are plain text (:func:`plain_text`); the answer itself,
token removed, is kept in ``raw`` for the run report.
"""

from __future__ import annotations

import enum
import html
import re
import time
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: Most characters of a reason shown to people.
REASON_LIMIT = 200
#: Most characters of Moodle's answer kept on an error (``raw``) for the run report.
RAW_LIMIT = 4096


class BridgeError(Exception):
    """Base of every error moodle_bridge raises on purpose."""


class ConfigError(BridgeError):
    """The configuration (URL, token, files, options) is unusable."""


class MoodleError(BridgeError):
    """An error reported by Moodle or met while talking to it."""

    def __init__(
        self,
        message: str,
        *,
        wsfunction: str | None = None,
        errorcode: str | None = None,
        exception: str | None = None,
        http_status: int | None = None,
        debuginfo: str | None = None,
        raw: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.wsfunction = wsfunction
        self.errorcode = errorcode
        self.exception = exception
        self.http_status = http_status
        self.debuginfo = debuginfo
        #: The record the error concerns, once known (see :meth:`with_record`).
        self.record: Any = None
        #: Moodle's answer as received (token removed, at most RAW_LIMIT characters), when
        #: there was one: for the run report, never for a person-facing line.
        self.raw = raw

    def with_record(self, record: Any) -> MoodleError:
        """Return this error with the record it concerns attached (the same object)."""
        self.record = record
        return self

    def __str__(self) -> str:
        parts = [self.message]
        if self.wsfunction:
            parts.append(f"function={self.wsfunction}")
        if self.errorcode:
            parts.append(f"errorcode={self.errorcode}")
        if self.http_status is not None:
            parts.append(f"http={self.http_status}")
        if self.debuginfo:
            parts.append(f"debuginfo={self.debuginfo}")
        return " | ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class Retriable(MoodleError):
    """The request may succeed if sent again later."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class Fatal(MoodleError):
    """The run cannot go on: every further call would fail the same way."""


class RecordError(MoodleError):
    """Moodle refused the data of a request; other records may still go through."""


# --- retriable ------------------------------------------------------------------------------
class NetworkError(Retriable):
    """The connection failed, was reset, or timed out."""


class ServerError(Retriable):
    """An HTTP 5xx answer, or an HTML page where JSON was expected (maintenance, proxies)."""


class RateLimited(Retriable):
    """HTTP 429 (or 503 with Retry-After): slow down and try again."""


class BadResponse(Retriable):
    """An empty, truncated or otherwise undecodable body."""


class Outage(enum.StrEnum):
    """What kind of outage a :class:`SiteUnavailable` reports."""

    DATABASE = "database"
    MAINTENANCE = "maintenance"
    UPGRADE = "upgrade"
    BUSY = "busy"
    UNAVAILABLE = "unavailable"
    HTML_PAGE = "html_page"


_OUTAGE_SUMMARIES: dict[Outage, str] = {
    Outage.DATABASE: "database unavailable",
    Outage.MAINTENANCE: "site in maintenance",
    Outage.UPGRADE: "site being upgraded",
    Outage.BUSY: "site busy (a lock wait timed out)",
    Outage.UNAVAILABLE: "site unavailable",
    Outage.HTML_PAGE: "site answered with an HTML page instead of JSON",
}


class SiteUnavailable(ServerError):
    """The Moodle site itself is away: its database, maintenance, an upgrade, a lock...

    Never the fault of the records sent: retry later, never bisect. ``outage`` says what kind
    of outage it is; ``until`` (Unix time) when the site said when to come back
    (``Retry-After``). ``refused_before_work`` is True when Moodle refused the call before
    running any of it (maintenance, upgrade): a write may then be sent again as it is. When it
    is False, a write's outcome is unknown (the database may have gone away after the commit)
    and must be settled by reading back.

    A :class:`ServerError` (itself :class:`Retriable`), so code that handles server errors
    keeps handling these.
    """

    def __init__(
        self,
        message: str,
        *,
        outage: Outage,
        refused_before_work: bool = False,
        until: float | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.outage = outage
        self.refused_before_work = refused_before_work
        self.until = until

    def summary(self, zone: str | tzinfo | None = None) -> str:
        """One short line for people: "database unavailable", "site in maintenance until
        about 14:05"... Times are given in ``zone`` (a name such as ``Asia/Jakarta``), or in
        the machine's local time when None (or an unknown name)."""
        text = _OUTAGE_SUMMARIES[self.outage]
        if self.until is None:
            return text
        return f"{text} until about {_clock_time(self.until, zone)}"

    def __str__(self) -> str:
        # One line: summary first, then Moodle's reason and the call's coordinates.
        return " ".join(f"{self.summary()}: {super().__str__()}".split())


# --- fatal ------------------------------------------------------------------------------------
class InvalidToken(Fatal):
    """The token is unknown, expired, or not valid for this site."""


class AccessDenied(Fatal):
    """The function is not in the token's service, or access is otherwise refused."""


class MissingCapability(Fatal):
    """The token's user lacks a capability the function needs."""


class FunctionNotFound(Fatal):
    """Moodle has no such function at all."""


class TlsError(Fatal):
    """The server's certificate could not be verified (give the CA bundle of a private CA)."""


class HttpError(Fatal):
    """A non-retriable HTTP status (4xx other than 429): wrong URL or a proxy refusing us."""


# --- record errors ------------------------------------------------------------------------------
class InvalidParameter(RecordError):
    """Moodle's opaque ``invalidparameter``: a value failed validation (cause unknown)."""


class InvalidRecord(RecordError):
    """A referenced record (user, course, cohort) does not exist."""


class MoodleException(RecordError):
    """Any other Moodle exception about the data sent."""


class RequestTooLarge(RecordError):
    """A call would carry more form fields than the request budget allows."""


class TruncatedRequest(RecordError):
    """Moodle answered for fewer items than were sent: PHP dropped form fields."""


#: Moodle ``errorcode`` -> exception class. Anything not listed is a :class:`MoodleException`.
ERRORCODE_CLASSES: dict[str, type[MoodleError]] = {
    "invalidtoken": InvalidToken,
    "accessexception": AccessDenied,
    "servicerequireslogin": AccessDenied,
    "usernotfullysetup": AccessDenied,
    "nopermissions": MissingCapability,
    # Older spelling used by some functions, and "the web-service user may not assign this
    # role": both fail every record alike, so they stop the run rather than skip a record.
    "nopermission": MissingCapability,
    "wsusercannotassign": MissingCapability,
    "invalidparameter": InvalidParameter,
    "invalidrecord": InvalidRecord,
    "invalidrecordunknown": InvalidRecord,
}

#: ``invalidrecord`` about the table of web-service functions means the function does not exist.
FUNCTION_TABLE_MESSAGE = "external_functions"


def error_from_body(
    body: dict[str, Any], *, wsfunction: str | None, http_status: int | None
) -> MoodleError:
    """Build the exception for a Moodle error body ``{"exception", "errorcode", "message"}``.

    A failure of :data:`SITE_FAILURES` becomes a :class:`SiteUnavailable`; the message is
    Moodle's, as plain text (:func:`plain_text`).
    """
    errorcode = body.get("errorcode")
    code = errorcode if isinstance(errorcode, str) else None
    exception = str(body.get("exception")) if body.get("exception") else None
    debuginfo = str(body["debuginfo"]) if body.get("debuginfo") else None
    original = str(body.get("message") or "Moodle reported an error")
    message = plain_text(original) or "Moodle reported an error"
    fields: dict[str, Any] = {
        "wsfunction": wsfunction,
        "errorcode": code,
        "exception": exception,
        "http_status": http_status,
        "debuginfo": debuginfo,
    }
    failure = site_failure(code, exception, debuginfo)
    if failure is not None:
        return SiteUnavailable(
            message,
            outage=failure.outage,
            refused_before_work=failure.refused_before_work,
            **fields,
        )
    cls: type[MoodleError]
    if code == "invalidrecord" and FUNCTION_TABLE_MESSAGE in original:
        cls = FunctionNotFound
    elif code is not None and code in ERRORCODE_CLASSES:
        cls = ERRORCODE_CLASSES[code]
    else:
        cls = MoodleException
    return cls(message, **fields)


# --- faults of the site, not of a record --------------------------------------------------------
#: Signals that are not errorcodes: how a site fault looks at the HTTP level.
HTML_PAGE = "(an HTML page instead of JSON)"
RETRY_AFTER_503 = "(HTTP 503 with Retry-After)"

#: What a database driver says (in ``debuginfo``, with debugging on) when the connection went
#: away during the request: PostgreSQL, MySQL/MariaDB.
CONNECTION_LOST = (
    "server closed the connection unexpectedly",
    "terminating connection due to administrator command",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "could not connect to server",
    "no connection to the server",
    "connection refused",
    "ssl syscall error",
    "mysql server has gone away",
    "lost connection to mysql server",
)
#: ... and when another transaction held what the request needed.
LOCK_CONFLICT = (
    "deadlock detected",
    "could not serialize access",
    "canceling statement due to lock timeout",
    "deadlock found when trying to get lock",
    "lock wait timeout exceeded",
)


@dataclass(frozen=True)
class SiteFailure:
    """One way Moodle says that the site, not the data sent, failed.

    ``signal`` is an ``errorcode`` (or :data:`HTML_PAGE`, :data:`RETRY_AFTER_503`);
    ``exception`` the PHP class that carries it, for bodies without an errorcode. When
    ``evidence`` is given the code is ambiguous and counts only when ``debuginfo`` contains
    one of those phrases (so never on a production site, which sends no debuginfo).
    ``page_phrases`` recognise the same failure on an HTML page. ``why`` is the reason.
    """

    signal: str
    outage: Outage
    refused_before_work: bool
    why: str
    exception: str | None = None
    evidence: tuple[str, ...] = ()
    page_phrases: tuple[str, ...] = ()


#: Moodle's site-level failures: each is the site's, never a record's. Read from Moodle 4.5's
#: lib/dmllib.php, lib/setup.php, webservice/lib.php, lib/modinfolib.php, lang/en/error.php.
#: Deliberately left out: ``dmlreadexception`` and ``dmlwriteexception`` without evidence
#: (a value too long for its column fails the same way, and only debuginfo tells them apart),
#: ``dmltransactionexception`` (misuse of transactions in code, not an outage) and
#: ``invalidrecord`` (a missing row: about the data sent).
SITE_FAILURES: tuple[SiteFailure, ...] = (
    SiteFailure(
        "dbconnectionfailed",
        Outage.DATABASE,
        False,
        "dml_connection_exception: Moodle could not reach its database (restart, failover, "
        "overload). The same request succeeds once it is back; a write may have been "
        "committed before the connection went.",
        exception="dml_connection_exception",
        page_phrases=("database connection failed",),
    ),
    SiteFailure(
        "dmlreadexception",
        Outage.DATABASE,
        False,
        "dml_read_exception whose debuginfo says the database connection was lost mid-request.",
        evidence=CONNECTION_LOST,
    ),
    SiteFailure(
        "dmlwriteexception",
        Outage.DATABASE,
        False,
        "dml_write_exception whose debuginfo says the database connection was lost "
        "mid-request: the write may or may not have been committed.",
        evidence=CONNECTION_LOST,
    ),
    SiteFailure(
        "dmlreadexception",
        Outage.BUSY,
        False,
        "dml_read_exception whose debuginfo reports a deadlock or lock timeout: another "
        "transaction held the rows; Moodle rolled this one back.",
        evidence=LOCK_CONFLICT,
    ),
    SiteFailure(
        "dmlwriteexception",
        Outage.BUSY,
        False,
        "dml_write_exception whose debuginfo reports a deadlock or lock timeout: another "
        "transaction held the rows; Moodle rolled this one back.",
        evidence=LOCK_CONFLICT,
    ),
    SiteFailure(
        "sessionwaiterr",
        Outage.BUSY,
        False,
        "dml_sessionwait_exception: the session lock was not granted in time because other "
        "requests held it; nothing about the data sent.",
        exception="dml_sessionwait_exception",
    ),
    SiteFailure(
        "locktimeout",
        Outage.BUSY,
        False,
        "Moodle's lock API gave up waiting (e.g. core_modinfo's course-cache lock while "
        "another request rebuilds the cache): contention on the site.",
    ),
    SiteFailure(
        "sitemaintenance",
        Outage.MAINTENANCE,
        True,
        "Web-service authentication refuses every call while maintenance mode is on, before "
        "the function runs.",
        page_phrases=("maintenance",),
    ),
    SiteFailure(
        "upgraderunning",
        Outage.UPGRADE,
        True,
        "lib/setup.php refuses every request while an upgrade runs, before any function code.",
        page_phrases=("being upgraded",),
    ),
    SiteFailure(
        RETRY_AFTER_503,
        Outage.UNAVAILABLE,
        True,
        "The web server refuses the request before Moodle runs it (CLI maintenance mode "
        "answers 503 + Retry-After with an HTML page; so does a proxy draining the site).",
    ),
    SiteFailure(
        HTML_PAGE,
        Outage.HTML_PAGE,
        False,
        "Moodle answers web services in JSON even for errors; a page means the request never "
        "reached the web-service layer (an early error in setup, PHP output, a proxy).",
    ),
)


def site_failure(
    errorcode: str | None, exception: str | None = None, debuginfo: str | None = None
) -> SiteFailure | None:
    """The :data:`SITE_FAILURES` entry a Moodle error body matches, or None."""
    short_exception = (exception or "").rsplit("\\", 1)[-1]
    evidence_text = (debuginfo or "").lower()
    for failure in SITE_FAILURES:
        named = errorcode == failure.signal or (
            errorcode is None
            and failure.exception is not None
            and short_exception == failure.exception
        )
        if not named:
            continue
        if not failure.evidence or any(p in evidence_text for p in failure.evidence):
            return failure
    return None


def page_outage(text: str) -> Outage | None:
    """The outage an HTML page (as plain text) names, or None when it names none."""
    lowered = text.lower()
    for failure in SITE_FAILURES:
        if any(phrase in lowered for phrase in failure.page_phrases):
            return failure.outage
    return None


# --- text for people ----------------------------------------------------------------------------
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_INVISIBLE = re.compile(r"<(style|script)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_BLOCK = re.compile(
    r"</?(?:p|div|br|hr|h[1-6]|li|ul|ol|table|tr|td|th|title|head|body|html|pre|section|"
    r"header|footer|main|article|blockquote)\b[^>]*>",
    re.IGNORECASE,
)
_TAG = re.compile(r"</?[A-Za-z!][^>]*>")
_BREAK = "\x00"


def plain_text(text: str, limit: int = REASON_LIMIT) -> str:
    """``text`` (Moodle's message, or a whole HTML page) as one short line for people.

    Tags, comments, styles and scripts go; entities are decoded; each block (paragraph,
    heading, title...) becomes a sentence, a repeated one (a page's title and heading) once;
    whitespace is collapsed; the result is cut to ``limit`` characters with "...".
    """
    text = _INVISIBLE.sub(_BREAK, _COMMENT.sub(_BREAK, text))
    text = _TAG.sub("", _BLOCK.sub(_BREAK, text))
    sentences: list[str] = []
    for block in text.split(_BREAK):
        sentence = " ".join(html.unescape(block).split())
        if sentence and (not sentences or sentences[-1].rstrip(".") != sentence.rstrip(".")):
            sentences.append(sentence)
    line = " ".join(
        f"{s}." if s[-1].isalnum() and i < len(sentences) - 1 else s
        for i, s in enumerate(sentences)
    )
    if len(line) <= limit:
        return line
    cut = line[: max(limit - 3, 0)]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" .,;:") + "..."


def _clock_time(when: float, zone: str | tzinfo | None) -> str:
    """``when`` as HH:MM (rounded up to the minute) in ``zone``, with the date if not today."""
    local: tzinfo | None
    try:
        local = ZoneInfo(zone) if isinstance(zone, str) else zone
    except (ZoneInfoNotFoundError, ValueError):
        local = None
    # "Until about" must not name a minute that comes before the time itself.
    moment = datetime.fromtimestamp(when + 59, local).replace(second=0, microsecond=0)
    today = datetime.fromtimestamp(time.time(), local).date()
    return moment.strftime("%H:%M" if moment.date() == today else "%Y-%m-%d %H:%M")
