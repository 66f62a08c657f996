"""A sync killed with SIGKILL at any point is finished by the next run, nobody twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from moodle_bridge.emulator import Emulator
from moodle_bridge.emulator.server import EmulatorHTTPServer
from moodle_bridge.roster.generic import read_generic_roster
from moodle_bridge.samples import generate_people, write_roster_csv

PEOPLE = 1200
#: Small requests: about 60 accounts each, so a run has many batches to be killed between.
CONFIG = "[moodle]\nfield_budget = 700\nworkers = 2\nmax_attempts = 2\nmax_total_wait = 1\n"
KILL_AFTER = (0.4, 0.9, 1.5, 2.2, 3.0)


def sync(env: dict[str, str], config: Path, roster: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "moodle_bridge", "--config", str(config), "sync", "--unit",
         "generic", "--roster", str(roster), "--yes", "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def test_killed_syncs_converge_without_duplicates(served: EmulatorHTTPServer,
                                                  emulator: Emulator, tmp_path: Path):
    roster = tmp_path / "roster.csv"
    write_roster_csv(roster, generate_people(PEOPLE, 7, dirty_share=0.0,
                                             units={"PENDIS": 0.7, "SETJEN": 0.3}))
    config = tmp_path / "moodle-bridge.toml"
    config.write_text(CONFIG)
    env = {**os.environ, "MOODLE_BRIDGE_URL": served.url,
           "MOODLE_BRIDGE_TOKEN": emulator.token_for("bridge"),
           "MOODLE_BRIDGE_STATE_DIR": str(tmp_path / "state")}
    emulator.latency = 0.03
    killed = 0
    for delay in KILL_AFTER:
        process = sync(env, config, roster)
        time.sleep(delay)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
        process.wait()
    assert killed >= 3, "the runs finished before they could be killed: raise the latency"

    emulator.latency = 0.0
    final = sync(env, config, roster)
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err.decode()

    nips = [p.nip for p in read_generic_roster(roster).people if p.active]
    owners = Counter(user["idnumber"] for user in emulator.world.users.values()
                     if user["idnumber"] in set(nips))
    assert set(owners) == set(nips), "every person has an account"
    assert max(owners.values()) == 1, "no NIP has two accounts"
    members = {uid for cid, c in emulator.world.cohorts.items()
               if c["idnumber"].startswith("unit:")
               for uid in emulator.world.cohort_member_sets.get(cid, set())}
    ids = {uid for uid, user in emulator.world.users.items() if user["idnumber"] in owners}
    assert ids <= members, "everyone is in their unit cohort"

    with sqlite3.connect(tmp_path / "state" / "state.sqlite3") as db:
        states = dict(db.execute("SELECT state, count(*) FROM batches GROUP BY state"))
    assert states.get("resolved", 0) >= 1, f"no kill left a batch to re-check: {states}"
    assert "pending" not in states, "every interrupted batch was settled"

    again = sync(env, config, roster)
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err.decode()
    assert b'"calls": {}' in out, "a sync right after a sync makes no call"
