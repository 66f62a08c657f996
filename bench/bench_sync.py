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


def step(kind: str, roster: Path, state: Path, url: str,
         assessments: Path | None = None) -> dict[str, object]:
    """Run one step in this process and return its figures (called in a child process)."""
    import datetime as dt

    from moodle_bridge.moodle.client import MoodleClient
    from moodle_bridge.store import Store
    from moodle_bridge.sync.engine import Engine, SyncOptions
    from moodle_bridge.sync.gaps import GapInputs
    from moodle_bridge.units import discover_units

    gaps = (GapInputs(assessments, ROOT / "mappings", dt.date.today())
            if assessments is not None else None)

    unit = discover_units().require("generic")
    started = time.perf_counter()
    cpu = time.process_time()
    with MoodleClient(url, "emulator-token-bridge") as client, \
            Store.open(state / "state.sqlite3") as store:
        report = Engine(client, store, state, SyncOptions(apply=kind != "plan")).run(
            "generic", unit, roster, gaps=gaps)
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


def run_step(kind: str, roster: Path, state: Path, url: str,
             assessments: Path | None = None) -> dict[str, object]:
    extra = ["--assessments", str(assessments)] if assessments is not None else []
    out = subprocess.run(
        [sys.executable, __file__, "--step", kind, "--roster", str(roster), "--state",
         str(state), "--url", url, *extra],
        capture_output=True, text=True, cwd=ROOT,
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return dict(json.loads(out.stdout))


def minimum_create_calls(people: int) -> int:
    """Fewest core_user_create_users calls the budget allows for ``people`` accounts."""
    from moodle_bridge.moodle.encoding import value_field_count

    # The demo's people have 6 plain fields, 4 custom fields (2 each) and createpassword.
    per_user = value_field_count({f"f{i}": "x" for i in range(7)}
                                 | {"customfields": [{"type": "t", "value": "v"}] * 4})
    return math.ceil(people * per_user / (BUDGET - 3))


def write_churned(roster: Path, out: Path, share: float = 0.01) -> int:
    """Copy ``roster`` with ``share`` of its rows changed (a new satker): the nightly churn."""
    import csv

    with roster.open(encoding="utf-8", newline="") as source:
        rows = list(csv.reader(source))
    every = max(1, round(1 / share))
    changed = 0
    for row in rows[1::every]:
        if len(row) >= 5:
            row[4] = "Satker Baru Hasil Mutasi"
            changed += 1
    with out.open("w", encoding="utf-8", newline="") as target:
        csv.writer(target).writerows(rows)
    return changed


def write_assessments(path: Path, size: int) -> None:
    from moodle_bridge.mappings import load_mappings
    from moodle_bridge.samples import (
        generate_assessments,
        generate_people,
        write_assessments_csv,
    )

    codes = sorted(load_mappings(ROOT / "mappings", "PENDIS").competencies)
    write_assessments_csv(path, generate_assessments(generate_people(size, 42), codes, 42))


def create_catalogue_courses(url: str) -> None:
    """The administrators' part: create every catalogue course in the emulator."""
    from moodle_bridge.moodle.client import MoodleClient
    from moodle_bridge.sync.gaps import load_all_mappings

    names = sorted({o.course_shortname for m in load_all_mappings(ROOT / "mappings").values()
                    for o in m.catalogue})
    with MoodleClient(url, "emulator-token-admin") as admin:
        admin.call("core_course_create_courses", {"courses": [
            {"fullname": n, "shortname": n, "categoryid": 1, "enablecompletion": 1}
            for n in names]})


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
        churned = workdir / f"roster-{size}-churn.csv"
        changed = write_churned(roster, churned)
        churn = run_step("sync", churned, state, url)
        assessments = workdir / f"assessments-{size}.csv"
        write_assessments(assessments, size)
        create_catalogue_courses(url)
        gaps = run_step("sync", churned, state, url, assessments)
        gaps_again = run_step("sync", churned, state, url, assessments)
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
        "churn_rows_changed": changed,
        "churn_sync": churn,
        "gaps_sync": gaps,
        "gaps_no_change_sync": gaps_again,
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
    parser.add_argument("--assessments", type=Path)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(step(args.step, args.roster, args.state, args.url, args.assessments)))
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
