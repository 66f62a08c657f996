"""Provisioning benchmark: plan time, first sync, no-change sync, calls, peak memory; and the
bridge against a plain batched loop on a Moodle with the contract's costs.

Usage: ``python bench/bench_sync.py [--sizes 10000,232881]``. Each step runs in its own
process (so its peak memory is its own) against the emulator served over HTTP on
127.0.0.1 by a separate process. The steps with assessments: a first one, then the
administrator links the audience cohorts it names and a run joins their people (not measured),
then ``gaps_no_change_sync``, a nightly run where nothing changed (``gaps_unchanged``: the gap
engine was skipped).

``python bench/bench_sync.py --compare 4000 [--workers 2,4] [--speed 1]``: a first load of
that many people, at each worker count, by ``moodle-bridge sync`` (the real CLI) and by a plain
batched loop (the same users in batches of the same size, each batch's unit-cohort memberships
sent right after it, nothing else), each against a fresh emulator with the contract cost model
(:mod:`moodle_bridge.emulator.cost`, 2 simulated cores). Figures are printed and written to
``bench/results/sync.json`` (``results`` for ``--sizes``, ``comparison`` for ``--compare``;
a run keeps the other part).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BUDGET = 4990


def serve(cost: str | None, cores: int, speed: float, large_site: bool) -> None:
    """Serve a fresh emulator on 127.0.0.1 until stdin closes (called in a child process).

    Prints its URL; each line read is an administrator's request to link audience cohorts
    (a JSON object, cohort idnumber -> course shortname), answered with how many were linked.
    When stdin closes, prints what the simulated server spent (as JSON).
    """
    from moodle_bridge.demo import link_audiences
    from moodle_bridge.emulator import Emulator, default_seed
    from moodle_bridge.emulator.cost import simulated_cost
    from moodle_bridge.emulator.server import running

    model = (simulated_cost(cost, cores=cores, speed=speed, large_site=large_site)
             if cost else None)
    emulator = Emulator(default_seed(), cost=model)
    with running(emulator) as server:
        print(server.url, flush=True)
        for line in sys.stdin:
            print(link_audiences(emulator, json.loads(line)), flush=True)
    stats: dict[str, object] = {"calls": len(emulator.calls)}
    if model is not None:
        stats |= {
            "cores": model.cores,
            "busy_core_seconds": round(model.busy_seconds, 2),
            "peak_cores": model.peak,
        }
    print(json.dumps(stats), flush=True)


@dataclass
class Served:
    """An emulator served by a child process: its URL, and the server's figures (busy
    core-seconds...), filled in when the process ends."""

    url: str
    process: subprocess.Popen[str]
    stats: dict[str, Any] = field(default_factory=dict)

    def link_audiences(self, awaiting: dict[str, str]) -> int:
        """Link each audience cohort to its course, as the administrator does after a sync
        names them (:func:`moodle_bridge.demo.link_audiences`, in the server's process)."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps(awaiting) + "\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())


@contextlib.contextmanager
def emulator_process(
    cost: str | None = None, cores: int = 2, speed: float = 1.0, large_site: bool = False
) -> Iterator[Served]:
    """A fresh emulator served by a child process."""
    extra = ["--cost", cost, "--cores", str(cores), "--speed", str(speed)] if cost else []
    extra += ["--large-site"] if large_site else []
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", *extra],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    assert server.stdin is not None
    assert server.stdout is not None
    served = Served(server.stdout.readline().strip(), server)
    try:
        yield served
        server.stdin.close()
        served.stats.update(json.loads(server.stdout.readline()))
    finally:
        server.kill()
        server.wait()


def step(kind: str, roster: Path, state: Path, url: str,
         assessments: Path | None = None) -> dict[str, object]:
    """Run one step in this process and return its figures (called in a child process)."""
    import datetime as dt

    from moodle_bridge.moodle.client import MoodleClient
    from moodle_bridge.store import Store
    from moodle_bridge.sync.engine import Engine, Source, SyncOptions
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
            Source("generic", unit, roster, gaps))
    figures: dict[str, object] = {
        "step": kind,
        "seconds": round(time.perf_counter() - started, 2),
        "client_cpu_seconds": round(time.process_time() - cpu, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "people": report.people,
        "planned": report.planned,
        "applied": dict(report.result.applied) if report.result else {},
        "calls": dict(report.calls),
    }
    if gaps is not None:
        figures["gaps_unchanged"] = report.gaps_unchanged
        # For the bench (it links them, as the administrator would), not for the results.
        figures["awaiting_link"] = report.plan.awaiting_link if report.plan is not None else {}
    return figures


def run_step(kind: str, roster: Path, state: Path, url: str,
             assessments: Path | None = None) -> dict[str, Any]:
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


def first_load_plan(roster: Path) -> Any:
    """The bridge's own plan of a first load of ``roster`` (its creates and memberships), so
    the plain loop sends exactly the same users with exactly the same fields."""
    from moodle_bridge.sync.desired import AccountPolicy, build_desired
    from moodle_bridge.sync.planner import Rules, plan
    from moodle_bridge.units import discover_units

    unit = discover_units().require("generic")
    desired = build_desired(unit.read_roster(roster).people, unit, AccountPolicy())
    return plan(desired, {}, {}, Rules(frozenset(desired.units), int(time.time())))


def plain_loop(url: str, roster: Path, workers: int, budget: int = BUDGET) -> dict[str, Any]:
    """Create the unit cohorts, then the users in batches of the bridge's size, ``workers`` at
    a time, each batch's memberships sent right after it: no journal, no state, no checks.

    Timed from the first call to the last answer (the plan is made before the clock starts).
    """
    from moodle_bridge.moodle import cohorts
    from moodle_bridge.moodle.client import MoodleClient
    from moodle_bridge.sync.journal import find_cohorts
    from moodle_bridge.sync.stages.accounts import user_fields
    from moodle_bridge.workers import run_parallel

    work = first_load_plan(roster)

    def user(create: Any) -> dict[str, Any]:
        return {**user_fields(create.record), "createpassword": True}

    with MoodleClient(url, "emulator-token-bridge", field_budget=budget) as client:
        chunks = list(client.chunks(work.creates, user))
        started = time.perf_counter()
        # Like the bridge, join only cohorts of its own: a cohort the site already has is
        # someone else's (it may be linked to courses) and is left alone.
        existing = set(find_cohorts(client, work.cohorts_to_create))
        made = cohorts.create_cohorts(client, [
            cohorts.NewCohort(name=name, idnumber=idnumber)
            for idnumber, name in sorted(work.cohorts_to_create.items())
            if idnumber not in existing])
        cohort_ids = {c.idnumber: c.id for c in made}
        member_calls: list[int] = []
        cohorts_of: dict[str, list[str]] = {}
        for member in work.member_adds:
            if member.cohort in cohort_ids:
                cohorts_of.setdefault(member.nip, []).append(member.cohort)

        def batch(chunk: list[Any]) -> None:
            created = client.call(
                "core_user_create_users", {"users": [user(c) for c in chunk]}, retry_writes=False
            )
            members = [
                cohorts.CohortMemberRef.by_ids(cohort_ids[cohort], int(answer["id"]))
                for c, answer in zip(chunk, created, strict=True)
                for cohort in cohorts_of.get(c.nip, ())
            ]
            if members:
                cohorts.add_cohort_members(client, members)
                member_calls.append(len(members))

        run_parallel(chunks, batch, workers)
        seconds = time.perf_counter() - started
    created = len(work.creates)
    return {
        "seconds": round(seconds, 2),
        "created": created,
        "memberships": sum(len(v) for v in cohorts_of.values()),
        "calls": len(work.cohorts_to_create) + 1 + len(chunks) + len(member_calls),
        "users_per_second": round(created / seconds, 1),
    }


def bridge_sync(url: str, roster: Path, state: Path, workers: int) -> dict[str, Any]:
    """``moodle-bridge sync --yes --json`` in its own process, timed from start to exit."""
    env = {
        **os.environ,
        "MOODLE_BRIDGE_URL": url,
        "MOODLE_BRIDGE_TOKEN": "emulator-token-bridge",
        "MOODLE_BRIDGE_STATE_DIR": str(state),
        "MOODLE_BRIDGE_WORKERS": str(workers),
    }
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "moodle_bridge", "sync", "--unit", "generic", "--roster",
         str(roster), "--yes", "--json"],
        capture_output=True, text=True, cwd=state.parent, env=env, stdin=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - started
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:] or out.stdout[-3000:])
    report = json.loads(out.stdout)
    created = int(report["applied"].get("create", 0))
    return {
        "seconds": round(seconds, 2),
        "engine_seconds": report["seconds"],
        "created": created,
        "memberships": int(report["applied"].get("cohort_add", 0)),
        "calls": sum(report["calls"].values()),
        "users_per_second": round(created / seconds, 1),
    }


def compare(people: int, workers: int, workdir: Path, speed: float, repeat: int,
            large_site: bool = False) -> dict[str, Any]:
    """The bridge and the plain loop, ``repeat`` times each, alternating, each against a fresh
    emulator with the contract cost model; the median run of each is kept."""
    from moodle_bridge.samples import generate_people, write_roster_csv

    roster = workdir / f"roster-clean-{people}.csv"
    if not roster.exists():
        # No dirty rows: both sides must do exactly the same work, without refusals.
        write_roster_csv(roster, generate_people(people, 42, dirty_share=0.0))
    runs: dict[str, list[dict[str, Any]]] = {"bridge": [], "plain_loop": []}
    for attempt in range(repeat):
        for name in runs:
            with emulator_process("contract", speed=speed, large_site=large_site) as served:
                if name == "bridge":
                    state = workdir / f"state-{workers}-{attempt}"
                    figures = bridge_sync(served.url, roster, state, workers)
                else:
                    figures = plain_loop(served.url, roster, workers)
            figures["moodle"] = served.stats
            runs[name].append(figures)
    kept = {
        name: sorted(found, key=lambda f: f["users_per_second"])[len(found) // 2]
        for name, found in runs.items()
    }
    for figures in kept.values():
        wall = figures["seconds"] * speed
        figures["moodle"]["core_utilisation"] = round(
            figures["moodle"]["busy_core_seconds"] / (figures["moodle"]["cores"] * wall), 2)
    bridge, loop = kept["bridge"], kept["plain_loop"]
    return {
        "people": people,
        "workers": workers,
        "speed": speed,
        "large_site": large_site,
        "runs": repeat,
        "bridge": bridge,
        "plain_loop": loop,
        "ratio": round(bridge["users_per_second"] / loop["users_per_second"], 3),
        "ratio_spread": [
            round(min(b["users_per_second"] for b in runs["bridge"])
                  / max(p["users_per_second"] for p in runs["plain_loop"]), 3),
            round(max(b["users_per_second"] for b in runs["bridge"])
                  / min(p["users_per_second"] for p in runs["plain_loop"]), 3),
        ],
        "ratio_engine": round(
            (bridge["created"] / bridge["engine_seconds"]) / loop["users_per_second"], 3),
    }


def settle_audiences(
    served: Served, first: dict[str, Any], again: Callable[[], dict[str, Any]]
) -> int:
    """Link the audience cohorts ``first`` left waiting, as the administrator would, and run
    again until none waits (the bridge remembers its gap digest only then): what makes the
    next run a real no-change night. Returns how many were linked."""
    linked = 0
    awaiting = first.pop("awaiting_link")
    for _ in range(3):
        if not awaiting:
            return linked
        linked += served.link_audiences(awaiting)
        awaiting = again().pop("awaiting_link")
    raise RuntimeError(f"audience cohorts still wait for a link: {sorted(awaiting)}")


def bench(size: int, workdir: Path) -> dict[str, object]:
    from moodle_bridge.samples import generate_people, write_roster_csv

    roster = workdir / f"roster-{size}.csv"
    write_roster_csv(roster, generate_people(size, 42))
    state = workdir / f"state-{size}"
    with emulator_process() as served:
        url = served.url
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
        linked = settle_audiences(served, gaps, lambda: run_step(
            "sync", churned, state, url, assessments))
        gaps_again = run_step("sync", churned, state, url, assessments)
        gaps_again.pop("awaiting_link")
    created = int(first["applied"].get("create", 0))
    create_calls = int(first["calls"].get("core_user_create_users", 0))
    return {
        "size": size,
        "plan": plan,
        "first_sync": first,
        "no_change_sync": again,
        "churn_rows_changed": changed,
        "churn_sync": churn,
        "gaps_sync": gaps,
        "audiences_linked": linked,
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
    parser.add_argument("--compare", type=int, metavar="PEOPLE",
                        help="compare the bridge with a plain batched loop at this size")
    parser.add_argument("--workers", default="2,4")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="simulated Moodle speed (2: twice as fast as the contract's site)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--large-site", action="store_true",
                        help="a site of 150,000 accounts without the lower(email) index")
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--cost")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--step")
    parser.add_argument("--roster", type=Path)
    parser.add_argument("--state", type=Path)
    parser.add_argument("--url")
    parser.add_argument("--assessments", type=Path)
    args = parser.parse_args()
    if args.serve:
        serve(args.cost, args.cores, args.speed, args.large_site)
        return
    if args.step:
        print(json.dumps(step(args.step, args.roster, args.state, args.url, args.assessments)))
        return
    import tempfile

    path = RESULTS / "sync.json"
    record = json.loads(path.read_text()) if path.exists() else {"benchmark": "sync"}
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    with tempfile.TemporaryDirectory() as tmp:
        if args.compare:
            comparisons = []
            for workers in (int(w) for w in args.workers.split(",")):
                figures = compare(args.compare, workers, Path(tmp), args.speed, args.repeat,
                                  args.large_site)
                comparisons.append(figures)
                print(json.dumps(figures, indent=2))
            record["comparison"] = {
                "date": time.strftime("%Y-%m-%d"),
                "machine": machine,
                "command": f"python bench/bench_sync.py --compare {args.compare} --workers "
                           f"{args.workers} --speed {args.speed:g} --repeat {args.repeat}"
                           + (" --large-site" if args.large_site else ""),
                "results": comparisons,
            }
        else:
            results = []
            for size in (int(s) for s in args.sizes.split(",")):
                figures = bench(size, Path(tmp))
                results.append(figures)
                print(json.dumps(figures, indent=2))
            record |= {
                "date": time.strftime("%Y-%m-%d"),
                "machine": machine,
                "command": "python bench/bench_sync.py --sizes " + args.sizes,
                "results": results,
            }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
