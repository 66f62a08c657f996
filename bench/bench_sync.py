"""Provisioning benchmark: plan time, first sync, no-change sync, calls, peak memory.

Usage: ``python bench/bench_sync.py [--sizes 10000,232881]``. Each step runs in its own
process (so its peak memory is its own) against the emulator served over HTTP on
127.0.0.1 by a separate process. Figures are printed and written to
``bench/results/sync.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BUDGET = 4990


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def step(kind: str, roster: Path, state: Path, url: str) -> dict[str, object]:
    """Run one step in this process and return its figures (called in a child process)."""
    from moodle_bridge.moodle.client import MoodleClient
    from moodle_bridge.store import Store
    from moodle_bridge.sync.engine import Engine, SyncOptions
    from moodle_bridge.units import discover_units

    unit = discover_units().require("generic")
    started = time.perf_counter()
    cpu = time.process_time()
    with MoodleClient(url, "emulator-token-bridge") as client, \
            Store.open(state / "state.sqlite3") as store:
        report = Engine(client, store, state, SyncOptions(apply=kind != "plan")).run(
            "generic", unit, roster)
    return {
        "step": kind,
        "seconds": round(time.perf_counter() - started, 2),
        "client_cpu_seconds": round(time.process_time() - cpu, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "people": report.people,
        "planned": report.planned,
        "applied": dict(report.result.applied) if report.result else {},
        "calls": dict(report.calls),
    }


def run_step(kind: str, roster: Path, state: Path, url: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--step", kind, "--roster", str(roster), "--state",
         str(state), "--url", url],
        check=True, capture_output=True, text=True, cwd=ROOT,
    ).stdout
    return dict(json.loads(out))


def minimum_create_calls(people: int) -> int:
    """Fewest core_user_create_users calls the budget allows for ``people`` accounts."""
    from moodle_bridge.moodle.encoding import value_field_count

    # The demo's people have 6 plain fields, 4 custom fields (2 each) and createpassword.
    per_user = value_field_count({f"f{i}": "x" for i in range(7)}
                                 | {"customfields": [{"type": "t", "value": "v"}] * 4})
    return math.ceil(people * per_user / (BUDGET - 3))


def bench(size: int, workdir: Path) -> dict[str, object]:
    from moodle_bridge.samples import generate_people, write_roster_csv

    roster = workdir / f"roster-{size}.csv"
    write_roster_csv(roster, generate_people(size, 42))
    state = workdir / f"state-{size}"
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moodle_bridge", "emulator", "serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.1)
        plan = run_step("plan", roster, state, url)
        first = run_step("sync", roster, state, url)
        again = run_step("sync", roster, state, url)
    finally:
        server.terminate()
        server.wait()
    created = int(first["applied"].get("create", 0))  # type: ignore[union-attr]
    create_calls = int(first["calls"].get("core_user_create_users", 0))  # type: ignore[union-attr]
    return {
        "size": size,
        "plan": plan,
        "first_sync": first,
        "no_change_sync": again,
        "create_calls": create_calls,
        "create_calls_minimum": minimum_create_calls(created),
        "calls_per_1000_created": round(1000 * create_calls / created, 2) if created else None,
        "client_cpu_ms_per_user_created": (
            round(1000 * float(first["client_cpu_seconds"]) / created, 3) if created else None
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,232881")
    parser.add_argument("--step")
    parser.add_argument("--roster", type=Path)
    parser.add_argument("--state", type=Path)
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.step:
        print(json.dumps(step(args.step, args.roster, args.state, args.url)))
        return
    import tempfile

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            figures = bench(size, Path(tmp))
            results.append(figures)
            print(json.dumps(figures, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": "sync",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}",
        "command": "python bench/bench_sync.py --sizes " + args.sizes,
        "results": results,
    }
    (RESULTS / "sync.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
