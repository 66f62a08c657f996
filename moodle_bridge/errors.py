"""The error tree of moodle_bridge.

Callers decide what to do with ``isinstance`` on three markers:

* :class:`Retriable` - the same request may succeed later (network, 5xx, 429, timeouts);
* :class:`RecordError` - Moodle rejected what we sent about one record: skip or bisect it;
* :class:`Fatal` - nothing else will work either (bad token, missing capability or function):
  stop the run.

Every Moodle error carries ``wsfunction``, ``errorcode``, Moodle's message, the HTTP status and,
where known, the record it concerns. None of them ever holds the token: the transport never
hands it to an exception, and ``__str__`` is built from the fields listed here only.
"""

from __future__ import annotations

from typing import Any


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
        record: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.wsfunction = wsfunction
        self.errorcode = errorcode
        self.exception = exception
        self.http_status = http_status
        self.debuginfo = debuginfo
        self.record = record

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
    "sitemaintenance": ServerError,
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
    """Build the exception for a Moodle error body ``{"exception", "errorcode", "message"}``."""
    errorcode = body.get("errorcode")
    message = str(body.get("message") or "Moodle reported an error")
    cls: type[MoodleError]
    if errorcode == "invalidrecord" and FUNCTION_TABLE_MESSAGE in message:
        cls = FunctionNotFound
    elif isinstance(errorcode, str) and errorcode in ERRORCODE_CLASSES:
        cls = ERRORCODE_CLASSES[errorcode]
    else:
        cls = MoodleException
    debuginfo = body.get("debuginfo")
    return cls(
        message,
        wsfunction=wsfunction,
        errorcode=errorcode if isinstance(errorcode, str) else None,
        exception=str(body.get("exception")) if body.get("exception") else None,
        http_status=http_status,
        debuginfo=str(debuginfo) if debuginfo else None,
    )
