"""Serve the emulator over real HTTP on the loopback interface."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from moodle_bridge.emulator.core import Emulator, Reply

REST_PATH = "/webservice/rest/server.php"
LOOPBACK = "127.0.0.1"


class _Handler(BaseHTTPRequestHandler):
    server: EmulatorHTTPServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes; with Nagle's algorithm and the client's delayed
    # ACK every kept-alive request would stall about 40 ms.
    disable_nagle_algorithm = True

    def _reply(self, reply: Reply) -> None:
        data = reply.body.encode("utf-8")
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _serve(self, body: str) -> None:
        parts = urlsplit(self.path)
        if parts.path != REST_PATH:
            self._reply(
                Reply(404, "text/html; charset=utf-8", "<html><body>Not found</body></html>")
            )
            return
        self._reply(self.server.emulator.handle_form(body, parts.query))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._serve(self.rfile.read(length).decode("utf-8", errors="replace"))

    def do_GET(self) -> None:
        self._serve("")

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines carry query strings (tokens, in GET requests): never log them.
        return


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server bound to an :class:`Emulator`."""

    daemon_threads = True

    def __init__(self, emulator: Emulator, port: int = 0, host: str = LOOPBACK) -> None:
        super().__init__((host, port), _Handler)
        self.emulator = emulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-request (killed, timed out) is normal here: say nothing.
        Anything else is a bug of the emulator and is raised in the server thread's log."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        """The site URL to configure a client with."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


@contextlib.contextmanager
def running(emulator: Emulator, port: int = 0) -> Iterator[EmulatorHTTPServer]:
    """Serve ``emulator`` on 127.0.0.1 in a background thread for the ``with`` block."""
    server = EmulatorHTTPServer(emulator, port)
    thread = threading.Thread(target=server.serve_forever, name="moodle-emulator", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
