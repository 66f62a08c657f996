"""Fixtures shared by the test suites: an emulated Moodle served on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from moodle_bridge.emulator import Emulator, default_seed
from moodle_bridge.emulator.server import EmulatorHTTPServer, running
from moodle_bridge.i18n import ENV_VAR, use_language

#: A token whose every appearance in output would be a leak.
SECRET_TOKEN = "tok-SECRET-5f3a9c77e1"


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests read English unless they ask for another language: the machine's locale must not
    change what they see, and a CLI run in another language must not leak into the next test
    (the language is the process's)."""
    monkeypatch.setenv(ENV_VAR, "en")
    yield
    use_language("en")


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(default_seed())


@pytest.fixture
def served(emulator: Emulator) -> Iterator[EmulatorHTTPServer]:
    with running(emulator) as server:
        yield server
