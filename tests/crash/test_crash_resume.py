"""A sync killed with SIGKILL at any point is finished by the next run, nobody twice.

CI runs a small size; the full proof (20,000 people with enrolments, 30 kills) is
``MOODLE_BRIDGE_CRASH_PEOPLE=20000 MOODLE_BRIDGE_CRASH_KILLS=30 pytest tests/crash``.
"""

from __future__ import annotations

import json
import os
import random
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
from moodle_bridge.samples import (
    generate_assessments,
    generate_people,
    write_assessments_csv,
    write_roster_csv,
)
from moodle_bridge.store import Store
from moodle_bridge.sync.gaps import load_unit_mappings

PEOPLE = int(os.environ.get("MOODLE_BRIDGE_CRASH_PEOPLE", "1200"))
KILLS = int(os.environ.get("MOODLE_BRIDGE_CRASH_KILLS", "5"))
UNITS = {"PENDIS": 0.7, "SETJEN": 0.3}
MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
#: Small requests: about 60 accounts each, so a run has many batches to be killed between.
CONFIG = "[moodle]\nfield_budget = 700\nworkers = 2\nmax_attempts = 2\nmax_total_wait = 1\n"


def sync(env: dict[str, str], config: Path, roster: Path,
         assessments: Path) -> subprocess.Popen[bytes]:
    """The site's own unit:PENDIS and unit:SETJEN are adopted: memberships are resumed too."""
    return subprocess.Popen(
        [sys.executable, "-m", "moodle_bridge", "--config", str(config), "sync", "--plugin",
         "generic", "--roster", str(roster), "--assessments", str(assessments), "--yes",
         "--json", "--adopt-cohorts"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def journal_size(database: Path) -> int:
    """How many batches the journal holds (0 before the first run made the database)."""
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT count(*) FROM batches").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def create_catalogue(emulator: Emulator) -> None:
    names = sorted({o.course_shortname for m in load_unit_mappings(MAPPINGS, UNITS).values()
                    for o in m.catalogue})
    pairs = [("wstoken", emulator.token_for("admin")),
             ("wsfunction", "core_course_create_courses"), ("moodlewsrestformat", "json")]
    for i, name in enumerate(names):
        pairs += [(f"courses[{i}][fullname]", name), (f"courses[{i}][shortname]", name),
                  (f"courses[{i}][categoryid]", "1"), (f"courses[{i}][enablecompletion]", "1")]
    assert emulator.handle(pairs).body.startswith("[")


def test_killed_syncs_converge_without_duplicates(served: EmulatorHTTPServer,
                                                  emulator: Emulator, tmp_path: Path):
    roster = tmp_path / "roster.csv"
    write_roster_csv(roster, generate_people(PEOPLE, 7, dirty_share=0.0, units=UNITS))
    competencies = sorted(load_unit_mappings(MAPPINGS, ["PENDIS"])["PENDIS"].competencies)
    assessments = tmp_path / "assessments.csv"
    write_assessments_csv(assessments, generate_assessments(
        generate_people(PEOPLE, 7, dirty_share=0.0, units=UNITS), competencies, 7))
    create_catalogue(emulator)
    config = tmp_path / "moodle-bridge.toml"
    config.write_text(CONFIG + f'[enrol]\nmappings_dir = "{MAPPINGS}"\n')
    env = {**os.environ, "MOODLE_BRIDGE_URL": served.url,
           "MOODLE_BRIDGE_TOKEN": emulator.token_for("bridge"),
           "MOODLE_BRIDGE_STATE_DIR": str(tmp_path / "state")}
    emulator.latency = 0.03
    rng = random.Random(11)
    database = tmp_path / "state" / "state.sqlite3"
    killed = 0
    for _ in range(KILLS):
        # Kill at a random point of the writing, whatever the machine's speed: once the
        # journal has grown by a few batches (sent or not) since this run started.
        target = journal_size(database) + rng.randint(1, 6)
        process = sync(env, config, roster, assessments)
        deadline = time.monotonic() + 120
        while process.poll() is None and journal_size(database) < target:
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.05))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
        process.wait()
    assert killed >= min(3, KILLS), "the runs finished before they were killed"

    emulator.latency = 0.0
    final = sync(env, config, roster, assessments)
    out, err = final.communicate(timeout=600)
    assert final.returncode in (0, 1), err.decode()[-2000:]

    nips = [p.nip for p in read_generic_roster(roster).people if p.active]
    world = emulator.world
    owners = Counter(user["idnumber"] for user in world.users.values()
                     if user["idnumber"] in set(nips))
    assert set(owners) == set(nips), "every person has an account"
    assert max(owners.values()) == 1, "no NIP has two accounts"
    members = {uid for cid, c in world.cohorts.items() if c["idnumber"].startswith("unit:")
               for uid in world.cohort_member_sets.get(cid, set())}
    ids = {uid for uid, user in world.users.items() if user["idnumber"] in owners}
    assert ids <= members, "everyone is in their unit cohort"

    with Store.open(tmp_path / "state" / "state.sqlite3") as store:
        made = store.enrolments()
        accounts = store.accounts()
        courses = store.courses()
    assert made, "the run enrols people by competency gap"
    # Every manual enrolment the bridge recorded is in Moodle, once: (instance, user) is unique
    # there, and the bridge's count per person and course is one. One someone else made is
    # in Moodle by another method; a cohort-mode course's is its audience cohort's member
    # (nobody links the audiences here: Moodle enrols them once an administrator does).
    manual = {iid for c in world.courses.values() for i in c["enrolment_instances"]
              if i["enrol"] == "manual" for iid in [i["id"]]}
    in_moodle = Counter((e["userid"], e["courseid"], e["enrolid"] in manual)
                        for e in world.enrolments.values())
    cohort_ids = {c["idnumber"]: cid for cid, c in world.cohorts.items()}
    assert any(e.method == "manual" for e in made.values())
    for (nip, course), row in made.items():
        user = accounts[nip].moodle_id
        if row.method == "manual":
            assert in_moodle[(user, courses[course], True)] == 1
        elif row.method == "other":
            assert in_moodle[(user, courses[course], False)] >= 1
        else:
            assert row.cohort is not None
            assert row.cohort.startswith("course:")
            assert user in world.cohort_member_sets[cohort_ids[row.cohort]]

    with sqlite3.connect(tmp_path / "state" / "state.sqlite3") as db:
        states = dict(db.execute("SELECT state, count(*) FROM batches GROUP BY state"))
    assert states.get("resolved", 0) >= 1, f"no kill left a batch to re-check: {states}"
    assert "pending" not in states, "every interrupted batch was settled"

    again = sync(env, config, roster, assessments)
    out, err = again.communicate(timeout=300)
    assert again.returncode in (0, 1), err.decode()[-2000:]
    # One call: the site's identity, checked before anything else.
    calls = json.loads(out)["calls"]
    assert calls == {"core_webservice_get_site_info": 1}, "a sync right after a sync reads once"
