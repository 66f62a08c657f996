"""LedgerEntry-pull benchmark: a first and a repeated pull over ~100,000 pending enrolments.

Usage: ``python bench/bench_pull.py [--people 25000] [--courses 4] [--completed 0.3]``.

Setup (deterministic, and a shortcut allowed for a benchmark only): one emulator in this process
holds ``people`` users, each enrolled (``enrol_manual_enrol_users`` as the admin, in full
batches) in ``courses`` courses that have a self-completion criterion; a seeded random share
``completed`` of the enrolments is completed (criterion and course completion written straight
into the emulator's tables, at a known time). The bridge's state database is built to match
(owned accounts and the bridge's enrolments, recorded through the store's own API, as a sync
would have). The emulator is then served over HTTP on 127.0.0.1 and each pull runs in its own
child process, so its CPU time and peak memory are the client's alone. Figures are printed and
written to ``bench/results/pull.json``.

The emulator's HTTP server writes a reply's headers and body in two writes on a kept-alive
connection without TCP_NODELAY, so every call waits out a delayed ACK (~40 ms on Linux): that
measures the loopback stack, not the bridge. By default the benchmark serves the same emulator
with TCP_NODELAY set on each connection, as production web servers do; ``--as-shipped`` serves
it through ``moodle_bridge.emulator.server.running`` unchanged.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
UNIT = "BENCH"
#: 13 digits + a 5-digit sequence: an 18-digit NIP-shaped username and idnumber.
NIP_FORMAT = "1980010120051%05d"
#: Course shortname -> (competency, from, to, JP).
COURSES = {
    "BENCH-K1": ("TEK-A", 1, 2, 12),
    "BENCH-K2": ("TEK-B", 1, 2, 8),
    "BENCH-K3": ("TEK-C", 1, 2, 20),
    "BENCH-K4": ("TEK-D", 1, 2, 5),
    "BENCH-K5": ("TEK-E", 1, 2, 10),
    "BENCH-K6": ("TEK-F", 1, 2, 15),
}
#: enrol_manual_enrol_users items per request: 5 fields each within the 4,990-field budget.
ENROL_BATCH = 998
#: When the seeded completions happened: a fixed day, so runs compare.
COMPLETED_AT = int(dt.datetime(2026, 6, 1, 9, tzinfo=dt.UTC).timestamp())


def catalogue(names: list[str]) -> dict[str, Any]:
    from moodle_bridge.mappings import CourseOffer

    return {
        name: CourseOffer(
            COURSES[name][0], COURSES[name][1], COURSES[name][2], name, COURSES[name][3]
        )
        for name in names
    }


# --- the child: one pull ------------------------------------------------------------------------
def pull_step(url: str, token: str, state: Path, names: list[str], workers: int) -> dict[str, Any]:
    """Run one pull in this process and return its figures (called in a child process)."""
    from moodle_bridge.completions import PullOptions, pull_completions
    from moodle_bridge.moodle.client import MoodleClient
    from moodle_bridge.store import Store

    offers = catalogue(names)
    cpu = time.process_time()
    started = time.perf_counter()
    with MoodleClient(url, token) as client, Store.open(state / "state.sqlite3") as store:
        report = pull_completions(
            client, store, offers, as_of=dt.date.today(), options=PullOptions(workers=workers)
        )
        ledger = len(store.completions())
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "client_cpu_seconds": round(time.process_time() - cpu, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "people_asked": report.people_asked,
        "enrolments_pending": report.enrolments_pending,
        "new_completions": report.new_completions,
        "ledger_entries": ledger,
        "failures": len(report.failures),
        "stopped": report.stopped,
        "calls": dict(sorted(report.calls.items())),
        "calls_total": sum(report.calls.values()),
    }


def run_pull(url: str, token: str, state: Path, names: list[str], workers: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--step",
            "pull",
            "--url",
            url,
            "--token",
            token,
            "--state",
            str(state),
            "--names",
            ",".join(names),
            "--workers",
            str(workers),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    return dict(json.loads(out))


# --- the parent: setup and serving --------------------------------------------------------------
def admin_call(emulator: Any, wsfunction: str, fields: list[tuple[str, str]]) -> Any:
    reply = emulator.handle(
        [
            ("wstoken", emulator.token_for("admin")),
            ("wsfunction", wsfunction),
            ("moodlewsrestformat", "json"),
            *fields,
        ]
    )
    answer = json.loads(reply.body)
    if isinstance(answer, dict) and "exception" in answer:
        raise RuntimeError(f"{wsfunction}: {answer}")
    return answer


def build(people: int, names: list[str], completed: float, seed: int, state: Path) -> Any:
    """The emulated site and the matching state database; returns the emulator."""
    from moodle_bridge.emulator import Emulator, default_seed
    from moodle_bridge.emulator.completion import (
        COMPLETION_CRITERIA_TYPE_SELF,
        mark_course_completed,
        mark_criteria_complete,
    )
    from moodle_bridge.store import Changes, EnrolmentRow, NewAccount, Store

    emulator = Emulator(default_seed())
    world = emulator.world
    created = admin_call(
        emulator,
        "core_course_create_courses",
        [
            (f"courses[{k}][{key}]", value)
            for k, name in enumerate(names)
            for key, value in (
                ("fullname", f"Pelatihan {name}"),
                ("shortname", name),
                ("categoryid", "1"),
            )
        ],
    )
    course_ids = {c["shortname"]: int(c["id"]) for c in created}
    next_criterion = 1 + max(
        (
            c["id"]
            for course in world.courses.values()
            for c in course.get("completion_criteria", [])
        ),
        default=0,
    )
    for offset, name in enumerate(names):
        course = world.courses[course_ids[name]]
        course["completion_criteria"] = [
            {
                "id": next_criterion + offset,
                "module": None,
                "criteriatype": COMPLETION_CRITERIA_TYPE_SELF,
                "moduleinstance": None,
            }
        ]
        course["completion_aggregation"] = [{"criteriatype": None, "method": 1}]
    emulator.run_setup(
        {
            "action": "create_users_bulk",
            "count": people,
            "first": 1,
            "username_format": NIP_FORMAT,
            "firstname": "Pegawai",
            "lastname_format": "Bench%05d",
            "email_format": "p%05d@kemenag.example",
            "timecreated": COMPLETED_AT - 86400 * 200,
        }
    )
    by_username = {u["username"]: uid for uid, u in world.users.items()}
    nips = [NIP_FORMAT % n for n in range(1, people + 1)]
    userids = [by_username[nip] for nip in nips]
    pairs = [(uid, name) for uid in userids for name in names]
    for start in range(0, len(pairs), ENROL_BATCH):
        admin_call(
            emulator,
            "enrol_manual_enrol_users",
            [
                (f"enrolments[{k}][{key}]", value)
                for k, (uid, name) in enumerate(pairs[start : start + ENROL_BATCH])
                for key, value in (
                    ("roleid", "5"),
                    ("userid", str(uid)),
                    ("courseid", str(course_ids[name])),
                )
            ],
        )
    rng = random.Random(seed)
    done = rng.sample(range(len(pairs)), round(completed * len(pairs)))
    for index in done:
        uid, name = pairs[index]
        course = world.courses[course_ids[name]]
        mark_criteria_complete(world, course, course["completion_criteria"][0], uid, COMPLETED_AT)
        mark_course_completed(world, uid, course["id"], COMPLETED_AT)
    with Store.open(state / "state.sqlite3") as store:
        store.record_accounts(
            NewAccount(nip, uid, nip, UNIT, None) for nip, uid in zip(nips, userids, strict=True)
        )
        store.record_courses(course_ids)
        run = store.begin_run("bench-setup", UNIT)
        batch = store.journal_batch(run, "enrol_enrol", {"bench": len(pairs)})
        rows = [EnrolmentRow(nip, name, False) for nip in nips for name in names]
        store.confirm_batch(batch, None, Changes(enrolments=rows))
        store.finish_run(run, "ok")
    emulator.calls.clear()
    return emulator, len(pairs), len(done)


@contextlib.contextmanager
def serving_nodelay(emulator: Any) -> Iterator[Any]:
    """``moodle_bridge.emulator.server.running``, with TCP_NODELAY on every connection."""
    from moodle_bridge.emulator.server import EmulatorHTTPServer

    class NoDelayServer(EmulatorHTTPServer):
        def get_request(self) -> tuple[socket.socket, Any]:
            conn, addr = super().get_request()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return conn, addr

    server = NoDelayServer(emulator)
    thread = threading.Thread(target=server.serve_forever, name="moodle-emulator", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def bench(
    people: int, courses: int, completed: float, seed: int, workers: int, as_shipped: bool
) -> dict[str, Any]:
    from moodle_bridge.emulator.server import running

    names = sorted(COURSES)[:courses]
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        started = time.perf_counter()
        emulator, enrolments, done = build(people, names, completed, seed, state)
        setup_seconds = round(time.perf_counter() - started, 1)
        token = emulator.token_for("bridge")
        steps = {}
        serve = running if as_shipped else serving_nodelay
        with serve(emulator) as server:
            for label in ("first_pull", "repeated_pull"):
                before = len(emulator.calls)
                figures = run_pull(server.url, token, state, names, workers)
                figures["calls_served"] = dict(
                    sorted(Counter(name for name, _ in emulator.calls[before:]).items())
                )
                steps[label] = figures
    first = steps["first_pull"]
    pending = int(first["enrolments_pending"])
    return {
        "people": people,
        "courses_per_person": courses,
        "enrolments_pending": enrolments,
        "completed_in_moodle": done,
        "setup_seconds": setup_seconds,
        "workers": workers,
        "server_tcp_nodelay": not as_shipped,
        **steps,
        "first_pull_calls_per_1000_pending": (
            round(1000 * int(first["calls_total"]) / pending, 1) if pending else None
        ),
        "first_pull_client_cpu_ms_per_person": (
            round(1000 * float(first["client_cpu_seconds"]) / people, 3) if people else None
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=25000)
    parser.add_argument("--courses", type=int, default=4, choices=range(1, len(COURSES) + 1))
    parser.add_argument("--completed", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "pull.json")
    parser.add_argument(
        "--as-shipped", action="store_true", help="serve without TCP_NODELAY (see above)"
    )
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--names", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step == "pull":
        names = args.names.split(",")
        print(json.dumps(pull_step(args.url, args.token, args.state, names, args.workers)))
        return
    figures = bench(
        args.people, args.courses, args.completed, args.seed, args.workers, args.as_shipped
    )
    print(json.dumps(figures, indent=2))
    command = (
        f"python bench/bench_pull.py --people {args.people} --courses {args.courses} "
        f"--completed {args.completed} --seed {args.seed} --workers {args.workers}"
        + (" --as-shipped" if args.as_shipped else "")
    )
    record = {
        "benchmark": "pull",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}",
        "command": command,
        "emulator": "in the benchmark's process, served over HTTP on 127.0.0.1; each pull in "
        "its own child process (client CPU and peak RSS are the client's alone)",
        "results": figures,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
