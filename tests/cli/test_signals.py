"""Ctrl-C and SIGTERM end a command with 130 and 143 and one line, whatever it was doing.

Each command runs in its own process (signals need one) against a "site" on 127.0.0.1 that
accepts connections and never answers, so the signal always lands in the middle of a call to
Moodle; the demo and the emulator are interrupted while they run on their own.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from moodle_bridge.cli.failures import INTERRUPTED
from moodle_bridge.moodle.client import MoodleClient
from moodle_bridge.store import NewAccount, Store
from tests.cli.conftest import NIP, Workspace

TOKEN = "tok-signals-0123456789"
SIGNALS = {"SIGINT": (signal.SIGINT, 130), "SIGTERM": (signal.SIGTERM, 143)}
#: Long enough for any machine to reach the point where the test interrupts it.
PATIENCE = 120
ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
    b"Connection: close\r\n\r\n[]"
)


class SilentSite:
    """A listening socket on 127.0.0.1 that accepts connections and never answers."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.connected = threading.Event()
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.held.append(connection)
            self.connected.set()

    def answer(self) -> None:
        """Answer every call waiting so far with an empty list, and hang up.

        The signal reaches a process before this answer does, so a call in flight in a worker
        thread (the completion pull asks from a pool, and waits for the calls in flight) ends
        quietly instead of timing out with a warning.
        """
        for connection in self.held:
            with contextlib.suppress(OSError):
                connection.sendall(ANSWER)
                connection.close()

    def close(self) -> None:
        for connection in self.held:
            connection.close()
        self.socket.close()


@pytest.fixture
def site() -> Iterator[SilentSite]:
    silent = SilentSite()
    yield silent
    silent.close()


def start(workspace: Workspace, *args: str, url: str = "") -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOODLE_BRIDGE_")}
    env.update(MOODLE_BRIDGE_TOKEN=TOKEN, PYTHONUNBUFFERED="1")
    if url:
        env["MOODLE_BRIDGE_URL"] = url
    return subprocess.Popen(
        [sys.executable, "-m", "moodle_bridge", "--config", str(workspace.config), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_like_a_terminal,
    )  # fmt: skip


def _like_a_terminal() -> None:
    """Ctrl-C as a terminal delivers it: a suite started in the background (``cmd &``, nohup)
    ignores SIGINT, the child would inherit that, and Python would then never raise
    KeyboardInterrupt in it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the command never got there"
        time.sleep(0.05)


def interrupt(
    process: subprocess.Popen[str], signum: int, code: int, then: Callable[[], None] = lambda: None
) -> str:
    process.send_signal(signum)
    then()
    stdout, stderr = process.communicate(timeout=PATIENCE)
    assert process.returncode == code, (stdout, stderr)
    assert "Traceback" not in stderr
    assert stderr.splitlines() == [f"moodle-bridge: {INTERRUPTED}"], stderr
    return stdout


def with_pending_enrolment(workspace: Workspace) -> None:
    """A state holding one enrolment the bridge made and has not asked about yet."""
    database = workspace.state / "state.sqlite3"
    with Store.open(database) as store:
        store.record_accounts([NewAccount(NIP, 10, NIP, "PENDIS", "h")])
    db = sqlite3.connect(database)
    db.execute(
        "INSERT INTO enrolments (nip, course, suspended, updated_at) VALUES (?, 'C-1', 0, 0)",
        (NIP,),
    )
    db.commit()
    db.close()


def with_a_run(workspace: Workspace) -> int:
    """A state holding one finished run (that suspended nobody); its id."""
    with Store.open(workspace.state / "state.sqlite3") as store:
        run_id = store.begin_run("sync", "generic", str(workspace.roster))
        store.finish_run(run_id, "ok", {}, 0)
    return run_id


#: Commands that wait for Moodle when the signal comes.
WAITING = {
    "doctor": ["doctor"],
    "plan": ["plan", "--plugin", "generic", "--roster", "{roster}"],
    "sync": ["sync", "--plugin", "generic", "--roster", "{roster}", "--yes"],
    "completions pull": ["completions", "pull"],
    "run": ["run", "--manifest", "{manifest}", "--yes"],
    "runs revert": ["runs", "revert", "{run}", "--yes"],
}


@pytest.mark.parametrize("name", sorted(SIGNALS))
@pytest.mark.parametrize("command", sorted(WAITING))
def test_a_command_waiting_for_moodle(
    workspace: Workspace, site: SilentSite, command: str, name: str
):
    signum, code = SIGNALS[name]
    # One worker and one attempt: the call in flight is the only one.
    workspace.settings("[moodle]\nworkers = 1\nmax_attempts = 1\nread_timeout = 5\n")
    if command == "completions pull":
        with_pending_enrolment(workspace)
    run_id = with_a_run(workspace) if command == "runs revert" else 0
    fields = {"roster": workspace.roster, "manifest": workspace.manifest(), "run": run_id}
    args = [arg.format(**fields) for arg in WAITING[command]]
    process = start(workspace, *args, url=site.url)
    wait_for(site.connected.is_set, process)
    interrupt(process, signum, code, then=site.answer)


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_the_demo(workspace: Workspace, name: str):
    signum, code = SIGNALS[name]
    folder = workspace.root / "demo"
    process = start(workspace, "demo", "--dir", str(folder))
    # The state exists once the demo's first plan has begun.
    wait_for((folder / "state" / "state.sqlite3").exists, process)
    interrupt(process, signum, code)


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_the_emulator_serving_the_catalogue(workspace: Workspace, name: str):
    signum, code = SIGNALS[name]
    process = start(workspace, "emulator", "serve", "--port", "0", "--catalogue")
    assert process.stdout is not None
    lines = [process.stdout.readline() for _ in range(2)]
    assert "catalogue courses created" in lines[0], lines
    url = lines[1].rsplit(" ", 1)[-1].strip()
    # The catalogue's courses are there, as the demo makes them.
    with MoodleClient(url, "emulator-token-admin") as admin:
        for shortname in ("MAN-INTEG-12", "PENDIS-PAI-12"):
            found = admin.call(
                "core_course_get_courses_by_field", {"field": "shortname", "value": shortname}
            )
            assert [c["shortname"] for c in found["courses"]] == [shortname], json.dumps(found)
    interrupt(process, signum, code)
