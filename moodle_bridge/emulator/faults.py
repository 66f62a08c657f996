"""Fault injection for tests: the emulator served over HTTP on 127.0.0.1, with failures.

:class:`FaultyEmulatorServer` is an :class:`~moodle_bridge.emulator.server.EmulatorHTTPServer`
whose request handler, before or after the emulator serves a request, may inject one fault
drawn at random (from a seeded :class:`random.Random`) at the rate a :class:`FaultPlan` sets:

========================  ========================================================  =========
kind                      what the client sees                                      committed
========================  ========================================================  =========
``server_error``          HTTP 500, 502, 503 or 504 (no ``Retry-After``)           no
``rate_limited``          HTTP 429 with a small ``Retry-After`` (0 or 1 s)          no
``timeout``               no answer within the read timeout (the answer is held     yes
                          back for ``FaultPlan.timeout_delay`` seconds)
``reset_before``          the connection is reset before the emulator sees it       no
``reset_after``           the emulator serves (and commits) the request, then the   yes
                          connection is reset without an answer
``html_page``             an HTML error page, status 200 or 502, ``text/html``      no
``truncated_json``        the emulator's JSON answer cut in half (with a matching   yes
                          ``Content-Length``, as a proxy that cut the body would)
``database_down``         Moodle's answer while its database is down: HTTP 200,     no
                          JSON ``dbconnectionfailed`` (recorded from a real site)
``maintenance``           Moodle in CLI maintenance mode: HTTP 503, ``Retry-After``  no
                          and its HTML page (recorded)
``commit_then_fail``      the emulator serves (and commits) the request, then      yes
                          answers ``dbconnectionfailed``: the database went away
                          between the commit and the answer
========================  ========================================================  =========

The last three are faults of the site itself (:data:`SITE_KINDS`), answered with the bodies a
real Moodle 4.5 sent (``data/fault_responses.json``): injected, never looked up. A plan draws
from the first seven by default. Besides random faults, a test arms an :class:`Outage`, a
stretch of one site fault (the database down for N requests from request K, or from the first
request a trigger accepts; maintenance for N seconds), with :meth:`FaultyEmulatorServer.arm`.

``timeout_delay`` must exceed the client's ``[moodle] read_timeout``: configure a short one in
the test's settings file. The counters (:attr:`FaultyEmulatorServer.injected`,
:attr:`~FaultyEmulatorServer.requests` ...) say what was done, for assertions on retries.
"""

from __future__ import annotations

import contextlib
import enum
import json
import random
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from moodle_bridge.emulator.core import Emulator, Reply
from moodle_bridge.emulator.server import LOOPBACK, REST_PATH, EmulatorHTTPServer, _Handler

__all__ = [
    "COMMITTED",
    "PATH_KINDS",
    "SITE_KINDS",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "FaultyEmulatorServer",
    "Outage",
    "running_with_faults",
]


class FaultKind(enum.StrEnum):
    """The failures the server can inject."""

    SERVER_ERROR = "server_error"
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    RESET_BEFORE = "reset_before"
    RESET_AFTER = "reset_after"
    HTML_PAGE = "html_page"
    TRUNCATED_JSON = "truncated_json"
    DATABASE_DOWN = "database_down"
    MAINTENANCE = "maintenance"
    COMMIT_THEN_FAIL = "commit_then_fail"


#: Faults on the way to the site (network, proxies): what a plan draws from by default.
PATH_KINDS: tuple[FaultKind, ...] = (
    FaultKind.SERVER_ERROR,
    FaultKind.RATE_LIMITED,
    FaultKind.TIMEOUT,
    FaultKind.RESET_BEFORE,
    FaultKind.RESET_AFTER,
    FaultKind.HTML_PAGE,
    FaultKind.TRUNCATED_JSON,
)
#: Faults of the Moodle site itself, answered with what a real one answered.
SITE_KINDS: tuple[FaultKind, ...] = (
    FaultKind.DATABASE_DOWN,
    FaultKind.MAINTENANCE,
    FaultKind.COMMIT_THEN_FAIL,
)

#: Kinds after which the emulator has served the request (a write is done; the client does
#: not know it).
COMMITTED: frozenset[FaultKind] = frozenset(
    {
        FaultKind.TIMEOUT,
        FaultKind.RESET_AFTER,
        FaultKind.TRUNCATED_JSON,
        FaultKind.COMMIT_THEN_FAIL,
    }
)


@cache
def _recorded(name: str) -> tuple[int, dict[str, str], str]:
    """Status, headers and body a real Moodle answered in case ``name`` of the fault data."""
    text = resources.files("moodle_bridge.emulator").joinpath("data/fault_responses.json")
    case = json.loads(text.read_text("utf-8"))["cases"][name]
    return int(case["http_status"]), dict(case["headers"]), str(case["body"])


_HTML = (
    "<!DOCTYPE html>\n<html><head><title>{status} - Site under maintenance</title></head>"
    "<body><h1>Bad Gateway</h1><p>The site is being upgraded; try again shortly.</p>"
    "</body></html>\n"
)


@dataclass
class FaultPlan:
    """Which faults to inject, how often, and on which requests.

    Each request that ``functions`` admits (all when None) gets a fault with probability
    ``rate``, of a kind drawn uniformly from ``kinds``, until ``limit`` faults have been injected
    (no limit when None): ``rate=1.0, limit=K`` faults the first K admitted requests. The plan
    may be changed while the server runs (e.g. ``rate = 0`` to heal the site); the random
    sequence comes from ``seed``. A ``maintenance`` fault says ``Retry-After:
    maintenance_retry_after`` (a real Moodle says 300).
    """

    rate: float = 0.05
    kinds: tuple[FaultKind, ...] = PATH_KINDS
    seed: int = 0
    limit: int | None = None
    functions: Collection[str] | None = None
    statuses: tuple[int, ...] = (500, 502, 503, 504)
    html_statuses: tuple[int, ...] = (200, 502)
    retry_after: tuple[str, ...] = ("0", "1")
    timeout_delay: float = 1.0
    maintenance_retry_after: str = "300"

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            msg = f"rate must be between 0 and 1, not {self.rate}"
            raise ValueError(msg)
        self.kinds = tuple(FaultKind(kind) for kind in self.kinds)
        if self.rate and not self.kinds:
            msg = "kinds is empty but rate is not 0"
            raise ValueError(msg)
        if self.limit is not None and self.limit < 0:
            msg = f"limit must be 0 or more, not {self.limit}"
            raise ValueError(msg)
        if self.timeout_delay <= 0:
            msg = "timeout_delay must be positive"
            raise ValueError(msg)


@dataclass(frozen=True)
class Fault:
    """One fault chosen for one request."""

    kind: FaultKind
    status: int = 0
    retry_after: str = ""


@dataclass
class Outage:
    """A stretch of one site fault, armed on a server with :meth:`FaultyEmulatorServer.arm`.

    It starts at the first admitted request (``functions``; all when None) that comes after
    ``after`` admitted requests and that ``when`` (given the request's web-service function)
    accepts, and lasts ``requests`` admitted requests or ``seconds`` on the server's clock.
    ``Outage(FaultKind.DATABASE_DOWN, requests=20, after=300)``: the database is down for 20
    requests from the 301st; ``Outage(FaultKind.MAINTENANCE, seconds=30)``: maintenance for 30 s
    from the next request; ``Outage(FaultKind.COMMIT_THEN_FAIL, requests=1,
    functions={"core_user_create_users"})``: the next create batch is committed, then answered
    ``dbconnectionfailed``. ``hits`` counts the requests it failed.
    """

    kind: FaultKind
    requests: int | None = None
    seconds: float | None = None
    after: int = 0
    when: Callable[[str], bool] | None = None
    functions: Collection[str] | None = None
    retry_after: str = "300"
    hits: int = 0
    started_at: float | None = None
    _seen: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        self.kind = FaultKind(self.kind)
        if self.kind not in SITE_KINDS:
            msg = f"an outage is one of {', '.join(SITE_KINDS)}, not {self.kind}"
            raise ValueError(msg)
        if (self.requests is None) == (self.seconds is None):
            msg = "give an outage either requests or seconds"
            raise ValueError(msg)
        if min(self.requests or 0, self.seconds or 0, self.after) < 0:
            msg = "an outage's requests, seconds and after must not be negative"
            raise ValueError(msg)

    def fault_for(self, wsfunction: str, now: float) -> Fault | None:
        """Count one request; the fault it gets from this outage, or None."""
        if self.functions is not None and wsfunction not in self.functions:
            return None
        if self.started_at is None:
            self._seen += 1
            if self._seen <= self.after or (self.when is not None and not self.when(wsfunction)):
                return None
            self.started_at = now
        if self.over(now):
            return None
        self.hits += 1
        return Fault(self.kind, retry_after=self.retry_after)

    def over(self, now: float) -> bool:
        """Whether the outage has run its course (False before it started)."""
        if self.started_at is None:
            return False
        if self.requests is not None:
            return self.hits >= self.requests
        return now - self.started_at >= (self.seconds or 0.0)


def _wsfunction(body: str, query: str) -> str:
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "wsfunction":
            return value
    # Only the function name is wanted: stop at it rather than decode a 5000-field body.
    start = 0
    while start <= len(body):
        end = body.find("&", start)
        end = len(body) if end < 0 else end
        pair = body[start:end]
        if pair.startswith("wsfunction="):
            return dict(parse_qsl(pair, keep_blank_values=True)).get("wsfunction", "")
        start = end + 1
    return ""


class _FaultyHandler(_Handler):
    server: FaultyEmulatorServer

    def _serve(self, body: str) -> None:
        parts = urlsplit(self.path)
        if parts.path != REST_PATH:
            super()._serve(body)
            return
        fault = self.server.choose(_wsfunction(body, parts.query))
        if fault is None:
            self._reply(self.server.emulator.handle_form(body, parts.query))
            return
        kind = fault.kind
        if kind is FaultKind.DATABASE_DOWN:
            self._recorded("database_down")
        elif kind is FaultKind.COMMIT_THEN_FAIL:
            self.server.emulator.handle_form(body, parts.query)
            self._recorded("database_down")
        elif kind is FaultKind.MAINTENANCE:
            self._recorded("cli_maintenance_mode", {"Retry-After": fault.retry_after})
        elif kind is FaultKind.SERVER_ERROR:
            self._reply(Reply(fault.status, "text/plain; charset=utf-8", f"HTTP {fault.status}\n"))
        elif kind is FaultKind.RATE_LIMITED:
            self._reply(
                Reply(
                    429,
                    "text/plain; charset=utf-8",
                    "Too many requests\n",
                    {"Retry-After": fault.retry_after},
                )
            )
        elif kind is FaultKind.HTML_PAGE:
            self._reply(
                Reply(fault.status, "text/html; charset=utf-8", _HTML.format(status=fault.status))
            )
        elif kind is FaultKind.RESET_BEFORE:
            self._reset()
        elif kind is FaultKind.RESET_AFTER:
            self.server.emulator.handle_form(body, parts.query)
            self._reset()
        elif kind is FaultKind.TRUNCATED_JSON:
            reply = self.server.emulator.handle_form(body, parts.query)
            data = reply.body
            self._reply(Reply(reply.status, reply.content_type, data[: len(data) // 2]))
        else:  # FaultKind.TIMEOUT
            reply = self.server.emulator.handle_form(body, parts.query)
            time.sleep(self.server.plan.timeout_delay)
            # The client gave up long ago: answer into a closed socket, then hang up.
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._reply(reply)

    def _recorded(self, name: str, headers: dict[str, str] | None = None) -> None:
        status, recorded, body = _recorded(name)
        content_type = next(v for k, v in recorded.items() if k.lower() == "content-type")
        self._reply(Reply(status, content_type, body, dict(headers or {})))

    def _reset(self) -> None:
        """Drop the connection with a TCP RST (SO_LINGER 0), sending no answer."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    def finish(self) -> None:
        # After a reset the socket is closed: flushing or closing its files would raise.
        with contextlib.suppress(OSError, ValueError):
            super().finish()


class FaultyEmulatorServer(EmulatorHTTPServer):
    """An emulator server on 127.0.0.1 that injects the faults of a :class:`FaultPlan`."""

    def __init__(
        self,
        emulator: Emulator,
        plan: FaultPlan,
        port: int = 0,
        host: str = LOOPBACK,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(emulator, port, host)
        # EmulatorHTTPServer binds its own handler class; requests are handled by this one.
        self.RequestHandlerClass = _FaultyHandler
        self.plan = plan
        #: Measures the outages given in seconds; a test may pass a clock it moves itself.
        self.clock = clock
        #: Armed outages, in the order they were armed; the first that applies wins.
        self.outages: list[Outage] = []
        self._rng = random.Random(plan.seed)
        self._lock = threading.Lock()
        #: Requests to the REST endpoint, faulted or not.
        self.requests = 0
        #: The same, by web-service function.
        self.requests_by_function: Counter[str] = Counter()
        #: Faults injected, by kind.
        self.injected: Counter[FaultKind] = Counter()
        #: Faults injected, by (web-service function, kind).
        self.injected_by_function: Counter[tuple[str, FaultKind]] = Counter()

    @property
    def faults(self) -> int:
        """How many faults were injected in all."""
        return sum(self.injected.values())

    def arm(self, outage: Outage) -> Outage:
        """Add ``outage`` (it takes precedence over the plan's random faults); returns it."""
        with self._lock:
            self.outages.append(outage)
        return outage

    def disarm(self) -> None:
        """Forget every armed outage: the site is well again (unless the plan says otherwise)."""
        with self._lock:
            self.outages.clear()

    def choose(self, wsfunction: str) -> Fault | None:
        """Count a request and decide its fault (None: serve it normally)."""
        plan = self.plan
        with self._lock:
            self.requests += 1
            self.requests_by_function[wsfunction] += 1
            now = self.clock()
            for outage in self.outages:
                armed = outage.fault_for(wsfunction, now)
                if armed is not None:
                    return self._count(wsfunction, armed)
            if plan.functions is not None and wsfunction not in plan.functions:
                return None
            if plan.limit is not None and self.faults >= plan.limit:
                return None
            if not plan.rate or self._rng.random() >= plan.rate:
                return None
            kind = self._rng.choice(plan.kinds)
            status = 0
            retry_after = ""
            if kind is FaultKind.SERVER_ERROR:
                status = self._rng.choice(plan.statuses)
            elif kind is FaultKind.HTML_PAGE:
                status = self._rng.choice(plan.html_statuses)
            elif kind is FaultKind.RATE_LIMITED:
                retry_after = self._rng.choice(plan.retry_after)
            elif kind is FaultKind.MAINTENANCE:
                retry_after = plan.maintenance_retry_after
            return self._count(wsfunction, Fault(kind, status, retry_after))

    def _count(self, wsfunction: str, fault: Fault) -> Fault:
        self.injected[fault.kind] += 1
        self.injected_by_function[wsfunction, fault.kind] += 1
        return fault

    def reset_counters(self) -> None:
        """Forget the requests and faults counted so far."""
        with self._lock:
            self.requests = 0
            self.requests_by_function.clear()
            self.injected.clear()
            self.injected_by_function.clear()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Injected resets and timeouts break connections on purpose: not worth a traceback.
        # Anything else (an emulator bug) is printed as usual.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


@contextlib.contextmanager
def running_with_faults(
    emulator: Emulator,
    plan: FaultPlan | None = None,
    port: int = 0,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[FaultyEmulatorServer]:
    """Serve ``emulator`` on 127.0.0.1 with ``plan``'s faults for the ``with`` block."""
    server = FaultyEmulatorServer(
        emulator, plan if plan is not None else FaultPlan(), port, clock=clock
    )
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="faulty-emulator", daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
