"""A summary a person sees without logging in: by webhook (a chat bot) and by email.

Sent only when a run needs a human, and holding counts, never people: no NIP, name or email of
anyone in a roster. It is built from the masked reports scripts read (``--json``), and every
free text in it (a guard's reason, a stop line) is masked again on the way in.

The text a person reads (the subject and the lines) is in the run's language
(:mod:`moodle_bridge.i18n`); the data beside it keeps English keys, codes and ``meaning`` for
scripts, and the free texts as the run made them.

The webhook goes out through ``urllib.request`` of the standard library, not through
:mod:`moodle_bridge.moodle.transport`: that module is the one door to *Moodle* (its session
carries the site's CA bundle, pool size and the token's redaction rules) and the only importer
of ``requests``; one small JSON POST to another host needs none of that, and keeping it apart
means no setting of the notification can ever reach a request that carries the token.

Nothing here prints: :func:`deliver` returns what could not be delivered, and the CLI shows it
as a warning without changing the run's exit code.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

from moodle_bridge import __version__
from moodle_bridge.completions import PullReport
from moodle_bridge.config import (
    EmailSettings,
    NotifySettings,
    WebhookSettings,
    load_smtp_password,
)
from moodle_bridge.errors import BridgeError, ConfigError
from moodle_bridge.exitcodes import ExitCode
from moodle_bridge.i18n import N_, _
from moodle_bridge.logs import mask

__all__ = [
    "NotifyError",
    "Part",
    "Summary",
    "deliver",
    "pull_part",
    "send_email",
    "send_webhook",
    "sync_part",
]

#: What each exit code means, for the reader of a summary (README, "Exit codes"); the data keeps
#: these English words, the text translates them.
MEANINGS: Mapping[int, str] = {
    ExitCode.OK: N_("everything done"),
    ExitCode.RECORD_ERRORS: N_("done, with errors in some records"),
    ExitCode.USAGE: N_("a usage or configuration error"),
    ExitCode.GUARD: N_("stopped by a safety guard before writing"),
    ExitCode.FATAL: N_("stopped by a fatal error"),
    ExitCode.INTERRUPTED: N_("interrupted"),
    ExitCode.TERMINATED: N_("stopped by SIGTERM"),
}
_UNKNOWN = N_("unknown")

#: Ctrl-C is pressed by the person at the terminal: they already know.
_QUIET_CODES: frozenset[int] = frozenset({ExitCode.OK, ExitCode.INTERRUPTED})

#: Counts of a sync's report that tell a person something went wrong.
_SYNC_PROBLEMS = ("row_errors", "row_warnings", "record_errors", "missing_courses")
# Translators: what is counted in a summary, after its count ("3 refused roster rows").
_NAMES = {
    "row_errors": N_("refused roster rows"),
    "row_warnings": N_("roster warnings"),
    "record_errors": N_("records Moodle refused"),
    "missing_courses": N_("courses missing in Moodle"),
    "untied_rows": N_("rows with no readable NIP"),
    "failures": N_("people or report pages that could not be read"),
    "enrolments_pending": N_("enrolments waiting for a completion"),
    "people_asked": N_("people asked"),
    "report_pages": N_("report pages read"),
    "new_completions": N_("new completions"),
}
#: How a completion pull read Moodle (``PullReport.path``), as its part's note says it.
_PULL_PATHS = {
    "report": N_("read from the completion report"),
    "per-person": N_("read person by person"),
    "report+per-person": N_("read from the completion report, then person by person"),
    "none": N_("no enrolment waiting for a completion"),
}


class NotifyError(BridgeError):
    """A summary could not be delivered on one channel. The message names the channel and
    the host, never a URL (it may hold a secret), a password or a person."""


@dataclass(frozen=True)
class Part:
    """One run inside a summary: a sync of one source, or a completion pull."""

    name: str
    exit_code: int
    plugin: str | None = None
    scope: tuple[str, ...] = ()
    run_id: int | None = None
    #: Counts per planned and per applied action (zeros left out).
    planned: Mapping[str, int] = field(default_factory=dict)
    applied: Mapping[str, int] = field(default_factory=dict)
    #: Counts of what needs looking at: refused rows, warnings, records Moodle refused...
    problems: Mapping[str, int] = field(default_factory=dict)
    guard: str | None = None
    stopped: str | None = None
    #: Where the full report is (on the machine that ran it).
    report_file: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Summary:
    """What one command tells a person: its exit code and its runs."""

    command: str
    exit_code: int
    parts: tuple[Part, ...] = ()
    #: The one line a command that failed as a whole printed (a bad roster file, a lost site).
    stopped: str | None = None
    host: str = field(default_factory=socket.gethostname)

    @property
    def needs_human(self) -> bool:
        """Exit code 1 or more, Ctrl-C aside: a guard trip (proposed suspensions) exits 3 and a
        stopped run 4, so the exit code says it all."""
        return self.exit_code not in _QUIET_CODES

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-able data (no personal data in it)."""
        return {
            "tool": "moodle-bridge",
            "version": __version__,
            "host": self.host,
            "command": self.command,
            "exit_code": self.exit_code,
            "meaning": MEANINGS.get(self.exit_code, _UNKNOWN),
            "stopped": self.stopped,
            "runs": [{**asdict(p), "scope": list(p.scope)} for p in self.parts],
        }

    @property
    def subject(self) -> str:
        """One line: the command, the host and the exit code with its meaning."""
        meaning = MEANINGS.get(self.exit_code, _UNKNOWN)
        # Translators: the subject of the mail and the first line of the chat message;
        # {command} is the command as typed ("sync", "completions pull").
        subject = _("moodle-bridge {command} on {host}: exit code {code} ({meaning})")
        return subject.format(
            command=self.command, host=self.host, code=self.exit_code, meaning=_(meaning)
        )

    def text(self) -> str:
        """The summary as a person reads it in a chat or a mail, in the run's language."""
        lines = [self.subject + "."]
        if self.stopped:
            lines.append(_("Stopped: {reason}").format(reason=self.stopped))
        for part in self.parts:
            lines += _part_lines(part)
        return "\n".join(lines)


def _counts(counts: Mapping[str, int]) -> str:
    """``3 refused roster rows, 12 update``: an action is translated by the label the plan's
    lines give it (its code is its message id), any other count by :data:`_NAMES`."""
    said = []
    for name, n in counts.items():
        label = _NAMES.get(name, name)
        said.append(f"{n} {_(label)}")
    return ", ".join(said)


def _part_lines(part: Part) -> list[str]:
    where = part.name
    if part.scope:
        # Translators: continues a run's name in a summary: "pendis (units PENDIS, SETJEN)".
        where += _(" (units {units})").format(units=", ".join(part.scope))
    if part.run_id is not None:
        # Translators: continues a run's name in a summary: "pendis (units PENDIS), run 31".
        where += _(", run {run}").format(run=part.run_id)
    lines = ["- " + _("{run}: exit code {code}").format(run=where, code=part.exit_code)]
    lines += [f"  {part.note}"] if part.note else []
    counted = (
        (_("planned: {counts}"), part.planned),
        (_("applied: {counts}"), part.applied),
        (_("to look at: {counts}"), part.problems),
    )
    lines += ["  " + label.format(counts=_counts(counts)) for label, counts in counted if counts]
    said = (
        (_("safety guard: {text}"), part.guard),
        (_("stopped: {text}"), part.stopped),
        (_("report: {text}"), part.report_file),
    )
    lines += ["  " + label.format(text=text) for label, text in said if text]
    return lines


def _nonzero(counts: Mapping[str, Any]) -> dict[str, int]:
    return {name: int(n) for name, n in counts.items() if n}


def _masked(text: Any) -> str | None:
    return mask(str(text)) if text else None


def sync_part(report: Mapping[str, Any], report_file: str | None = None) -> Part:
    """A part from a sync's report as ``SyncReport.to_dict()`` gives it (NIPs masked); only
    its counts and its free texts, masked, are kept."""
    problems = {name: len(report.get(name) or ()) for name in _SYNC_PROBLEMS}
    problems["untied_rows"] = int(report.get("untied_rows") or 0)
    plugin = report.get("plugin") or None
    return Part(
        name=str(report.get("source") or plugin or report.get("command", "")),
        exit_code=int(report["exit_code"]),
        plugin=plugin,
        scope=tuple(report.get("scope") or ()),
        run_id=report.get("run_id"),
        planned=_nonzero(report.get("planned") or {}),
        applied=_nonzero(report.get("applied") or {}),
        problems=_nonzero(problems),
        guard=_masked(report.get("guard")),
        stopped=_masked(report.get("stopped")),
        report_file=report_file,
        note=_("declined at the confirmation prompt") if report.get("declined") else None,
    )


def pull_part(report: PullReport, exit_code: int, units: Sequence[str] = ()) -> Part:
    """A part from a completion pull: its counts, failures counted, never listed."""
    found = {
        "enrolments_pending": report.enrolments_pending,
        "people_asked": report.people_asked,
        "report_pages": report.report_pages,
        "new_completions": report.new_completions,
    }
    return Part(
        name="completions",
        exit_code=exit_code,
        scope=tuple(units),
        applied=_nonzero(found),
        problems=_nonzero({"failures": len(report.failures)}),
        stopped=_masked(report.stopped),
        note=_(_PULL_PATHS[report.path]) if report.path in _PULL_PATHS else report.path,
    )


# --- delivery ------------------------------------------------------------------------------------
class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would carry the extra headers (a receiver's secret) to wherever it points:
    it is a failure of delivery instead."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> None:
        return None


def send_webhook(settings: WebhookSettings, summary: Summary) -> None:
    """POST the summary as JSON: ``text`` (what a chat shows, as Slack-style incoming webhooks
    of Mattermost, Rocket.Chat or Google Chat read it) and ``summary`` (the data).

    Raises NotifyError unless the receiver answers 2xx.
    """
    host = urlsplit(settings.url).hostname or "?"
    body = json.dumps(
        {"text": summary.text(), "summary": summary.to_dict()}, ensure_ascii=False
    ).encode("utf-8")
    try:
        context = ssl.create_default_context(
            cafile=str(settings.ca_bundle) if settings.ca_bundle else None
        )
    except OSError as exc:
        msg = f"the webhook's CA bundle {settings.ca_bundle} cannot be used: {_why(exc)}"
        raise NotifyError(msg) from None
    opener = urllib.request.build_opener(
        _NoRedirects(), urllib.request.HTTPSHandler(context=context)
    )
    try:
        request = urllib.request.Request(settings.url, data=body, method="POST")
        for name, value in settings.headers.items():
            request.add_header(name, value)
        request.add_header("Content-Type", "application/json; charset=utf-8")
        request.add_header("User-Agent", f"moodle-bridge/{__version__}")
        with opener.open(request, timeout=settings.timeout) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        msg = f"the webhook at {host} answered HTTP {exc.code}"
        raise NotifyError(msg) from None
    except (OSError, ValueError, http.client.HTTPException) as exc:
        msg = f"the webhook at {host} could not be reached: {_why(exc)}"
        raise NotifyError(msg) from None
    if not 200 <= status < 300:
        msg = f"the webhook at {host} answered HTTP {status}"
        raise NotifyError(msg)


def send_email(settings: EmailSettings, summary: Summary, env: Mapping[str, str]) -> None:
    """Mail the summary as plain text to ``settings.to``.

    With ``starttls`` the connection is upgraded before anything else is said, and a server
    that cannot upgrade is a failure (the password never travels in clear). Raises NotifyError.
    """
    where = f"{settings.host}:{settings.smtp_port}"
    try:
        message = _message(settings, summary)
        password = load_smtp_password(env, settings.password_file) if settings.user else None
        context = ssl.create_default_context()
        server = (
            smtplib.SMTP_SSL(
                settings.host, settings.smtp_port, timeout=settings.timeout, context=context
            )
            if settings.security == "ssl"
            else smtplib.SMTP(settings.host, settings.smtp_port, timeout=settings.timeout)
        )
        with server:
            if settings.security == "starttls":
                server.starttls(context=context)
            if settings.user and password is not None:
                server.login(settings.user, password)
            server.send_message(message)
    except ConfigError as exc:
        msg = f"the mail to {where} was not sent: {exc}"
        raise NotifyError(msg) from None
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        msg = f"the mail server {where} refused or failed: {_why(exc)}"
        raise NotifyError(msg) from None


def _message(settings: EmailSettings, summary: Summary) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = summary.subject
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.to)
    message["Date"] = email.utils.formatdate(localtime=True)
    message["Message-ID"] = email.utils.make_msgid(domain=summary.host or None)
    message.set_content(summary.text() + "\n")
    return message


def _why(exc: BaseException) -> str:
    """A short, masked reason: what the server or the network said, never a URL."""
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc.reason, str):
        return _why(exc.reason)
    if isinstance(exc, smtplib.SMTPResponseException):
        said = exc.smtp_error
        if isinstance(said, bytes):
            said = said.decode("utf-8", "replace")
        return mask(f"{exc.smtp_code} {said}".strip())
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return "the server does not offer STARTTLS"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return mask(exc.strerror)
    if isinstance(exc, (ValueError, http.client.HTTPException)):
        # What these say quotes the request (a URL's path, a header's value): its secret.
        return f"{type(exc).__name__} (check the address and the headers in the settings)"
    return mask(str(exc)) or type(exc).__name__


def deliver(
    settings: NotifySettings, summary: Summary, env: Mapping[str, str]
) -> list[NotifyError]:
    """Send ``summary`` on every configured channel when it needs a human; return what could
    not be delivered (each channel is tried whatever the other did). Never raises."""
    if not summary.needs_human:
        return []
    problems: list[NotifyError] = []
    webhook, mail = settings.webhook, settings.email
    if webhook is not None:
        problems += _attempt("the webhook", lambda: send_webhook(webhook, summary))
    if mail is not None:
        problems += _attempt("the mail", lambda: send_email(mail, summary, env))
    return problems


def _attempt(channel: str, send: Callable[[], None]) -> list[NotifyError]:
    """What went wrong sending on one channel: a notification never changes how the command
    ends, whatever the channel raised."""
    try:
        send()
    except NotifyError as exc:
        return [exc]
    except Exception as exc:  # any failure of a channel is only a warning
        return [NotifyError(f"{channel} was not sent: {type(exc).__name__}")]
    return []
