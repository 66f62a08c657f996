"""Outages armed on the faulty emulator server: when they start, how long they last."""

from __future__ import annotations

import pytest

from moodle_bridge.emulator import Emulator, default_seed
from moodle_bridge.emulator.faults import (
    COMMITTED,
    SITE_KINDS,
    FaultKind,
    FaultPlan,
    FaultyEmulatorServer,
    Outage,
)

CREATE = "core_user_create_users"
LOOKUP = "core_user_get_users_by_field"


@pytest.fixture
def clock() -> list[float]:
    """The server's clock, which only the test moves: ``clock[0] += seconds``."""
    return [1000.0]


@pytest.fixture
def server(clock: list[float]):
    made = FaultyEmulatorServer(
        Emulator(default_seed()), FaultPlan(rate=0.0), clock=lambda: clock[0]
    )
    yield made
    made.server_close()


def kinds(server: FaultyEmulatorServer, functions: list[str]) -> list[str | None]:
    found = [server.choose(name) for name in functions]
    return [fault.kind if fault else None for fault in found]


def test_database_down_for_n_requests_from_request_k(server: FaultyEmulatorServer):
    outage = server.arm(Outage(FaultKind.DATABASE_DOWN, requests=3, after=2))
    got = kinds(server, [LOOKUP] * 7)
    down = FaultKind.DATABASE_DOWN
    assert got == [None, None, down, down, down, None, None]
    assert outage.hits == 3
    assert server.injected == {down: 3}


def test_an_outage_from_a_trigger_counts_only_its_functions(server: FaultyEmulatorServer):
    creates: list[str] = []

    def third_create(name: str) -> bool:
        creates.append(name)
        return len(creates) == 3

    server.arm(
        Outage(FaultKind.COMMIT_THEN_FAIL, requests=1, when=third_create, functions={CREATE})
    )
    got = kinds(server, [CREATE, LOOKUP, CREATE, CREATE, LOOKUP, CREATE])
    assert got == [None, None, None, FaultKind.COMMIT_THEN_FAIL, None, None]
    assert FaultKind.COMMIT_THEN_FAIL in COMMITTED


def test_maintenance_for_n_seconds_on_the_servers_clock(
    server: FaultyEmulatorServer, clock: list[float]
):
    outage = server.arm(Outage(FaultKind.MAINTENANCE, seconds=30, retry_after="5"))
    first = server.choose(LOOKUP)
    assert first is not None
    assert (first.kind, first.retry_after) == (FaultKind.MAINTENANCE, "5")
    clock[0] += 29.9
    assert server.choose(CREATE) is not None
    clock[0] += 0.1
    assert server.choose(CREATE) is None
    assert outage.over(clock[0])
    assert outage.hits == 2


def test_outages_take_precedence_over_the_plan_and_disarm_heals(server: FaultyEmulatorServer):
    server.plan = FaultPlan(rate=1.0, kinds=(FaultKind.SERVER_ERROR,))
    server.arm(Outage(FaultKind.DATABASE_DOWN, requests=1))
    assert kinds(server, [LOOKUP, LOOKUP]) == [FaultKind.DATABASE_DOWN, FaultKind.SERVER_ERROR]
    server.plan = FaultPlan(rate=0.0)
    server.arm(Outage(FaultKind.DATABASE_DOWN, requests=5))
    server.disarm()
    assert kinds(server, [LOOKUP]) == [None]


def test_the_plan_draws_site_kinds_at_a_rate_with_its_maintenance_retry_after(
    server: FaultyEmulatorServer,
):
    server.plan = FaultPlan(rate=1.0, kinds=(FaultKind.MAINTENANCE,), maintenance_retry_after="1")
    fault = server.choose(LOOKUP)
    assert fault is not None
    assert fault.retry_after == "1"
    assert FaultPlan().kinds == tuple(k for k in FaultKind if k not in SITE_KINDS)


@pytest.mark.parametrize(
    "options",
    [
        {"kind": FaultKind.TIMEOUT, "requests": 1},
        {"kind": FaultKind.DATABASE_DOWN},
        {"kind": FaultKind.DATABASE_DOWN, "requests": 1, "seconds": 1.0},
        {"kind": FaultKind.DATABASE_DOWN, "requests": -1},
    ],
)
def test_bad_outages_are_refused(options: dict[str, object]):
    with pytest.raises(ValueError, match="outage"):
        Outage(**options)  # type: ignore[arg-type]
