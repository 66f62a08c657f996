"""Fixtures shared by the test suites: an emulated Moodle served on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from moodle_bridge.emulator import Emulator, default_seed
from moodle_bridge.emulator.server import EmulatorHTTPServer, running

#: A token whose every appearance in output would be a leak.
SECRET_TOKEN = "tok-SECRET-5f3a9c77e1"


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(default_seed())


@pytest.fixture
def served(emulator: Emulator) -> Iterator[EmulatorHTTPServer]:
    with running(emulator) as server:
        yield server
