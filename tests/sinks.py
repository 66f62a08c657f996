"""Receivers for the notifications, on 127.0.0.1: a webhook (HTTP) and a mail server (SMTP).

The SMTP sink is a few lines of the protocol rather than a dependency (aiosmtpd): the bridge
needs only what ``smtplib`` says to a plain server (EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT),
and a sink of its own lets a test see the credentials and refuse on purpose.
"""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import json
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast


@dataclass
class Posted:
    """One request the webhook received."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Webhook:
    """What the webhook received, and how it answers (``status``)."""

    url: str
    status: int = 200
    received: list[Posted] = field(default_factory=list)
    #: Where a 3xx answer points (``Location``).
    location: str | None = None


@contextlib.contextmanager
def webhook(status: int = 200) -> Iterator[Webhook]:
    """An HTTP server on 127.0.0.1 that records every POST and answers ``status``."""
    holder: list[Webhook] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hook = holder[0]
            length = int(self.headers.get("Content-Length", "0"))
            hook.received.append(Posted(self.path, dict(self.headers), self.rfile.read(length)))
            self.send_response(hook.status)
            if hook.location:
                self.send_header("Location", hook.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        # A followed redirect arrives as a GET: record it too, so a test can see it happen.
        do_GET = do_POST

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(Webhook(f"http://127.0.0.1:{server.server_address[1]}/hook/s3cr3t", status))
    with _serving(server):
        yield holder[0]


@dataclass
class Mail:
    """One message the SMTP sink accepted."""

    sender: str
    recipients: list[str]
    data: bytes
    #: (user, password) when the client logged in.
    login: tuple[str, str] | None

    @property
    def message(self) -> EmailMessage:
        return cast(EmailMessage, email.message_from_bytes(self.data, policy=email.policy.default))

    @property
    def body(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return cast(str, part.get_content())


@dataclass
class Smtp:
    """What the SMTP sink accepted, and whether it refuses messages (``refuse``)."""

    host: str
    port: int
    mails: list[Mail] = field(default_factory=list)
    refuse: bool = False


class _TcpServer(socketserver.ThreadingTCPServer):
    # A client that never says QUIT must not keep the test waiting at shutdown.
    daemon_threads = True


@contextlib.contextmanager
def smtp_sink() -> Iterator[Smtp]:
    """A plain SMTP server on 127.0.0.1 that keeps every message (no STARTTLS offered)."""
    holder: list[Smtp] = []

    class Handler(socketserver.StreamRequestHandler):
        def reply(self, line: str) -> None:
            self.wfile.write(f"{line}\r\n".encode())

        def handle(self) -> None:
            sink = holder[0]
            sender, recipients, login = "", [], None
            self.reply("220 sink ESMTP")
            while line := self.rfile.readline().decode("utf-8", "replace").rstrip("\r\n"):
                verb, _, rest = line.partition(" ")
                verb = verb.upper()
                if verb == "EHLO":
                    self.reply("250-sink\r\n250-AUTH PLAIN\r\n250 8BITMIME")
                elif verb == "AUTH":
                    _, user, password = base64.b64decode(rest.split()[1]).decode().split("\0")
                    login = (user, password)
                    self.reply("235 2.7.0 Authentication successful")
                elif verb == "MAIL":
                    sender = rest.split(":", 1)[1].split()[0].strip("<>")
                    self.reply("250 OK")
                elif verb == "RCPT":
                    recipients.append(rest.split(":", 1)[1].strip().strip("<>"))
                    self.reply("250 OK")
                elif verb == "DATA":
                    self.reply("354 go ahead")
                    data = self._data()
                    if sink.refuse:
                        self.reply("554 5.7.1 refused by policy")
                    else:
                        sink.mails.append(Mail(sender, recipients, data, login))
                        self.reply("250 queued")
                    sender, recipients = "", []
                elif verb == "QUIT":
                    self.reply("221 bye")
                    return
                else:
                    self.reply("250 OK")

        def _data(self) -> bytes:
            lines = []
            while (raw := self.rfile.readline()) not in (b".\r\n", b""):
                lines.append(raw[1:] if raw.startswith(b"..") else raw)
            return b"".join(lines)

    server = _TcpServer(("127.0.0.1", 0), Handler)
    holder.append(Smtp("127.0.0.1", server.server_address[1]))
    with _serving(server):
        yield holder[0]


@contextlib.contextmanager
def _serving(server: socketserver.BaseServer) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
