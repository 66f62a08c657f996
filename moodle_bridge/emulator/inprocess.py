"""The emulator as a transport: a :class:`MoodleClient` that calls it directly, no sockets.

For unit tests of code above the client (stages, the runner, the engine's phases): the form
is encoded and decoded exactly as over HTTP, so the emulator sees what PHP would.
"""

from __future__ import annotations

from urllib.parse import urlencode

from moodle_bridge.emulator.core import Emulator
from moodle_bridge.moodle.transport import RawResponse

__all__ = ["InProcessTransport"]


class InProcessTransport:
    """A :class:`~moodle_bridge.moodle.transport.SupportsPost` served by ``emulator``."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def post(self, url: str, pairs: list[tuple[str, str]]) -> RawResponse:
        """Hand the url-encoded form to the emulator and return its answer."""
        reply = self.emulator.handle_form(urlencode(pairs))
        return RawResponse(
            reply.status, reply.content_type, reply.body.encode("utf-8"), dict(reply.headers)
        )
