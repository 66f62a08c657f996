"""Completion-pull benchmark: the report path against the per-person path, ~100,000 pending.

Usage: ``python bench/bench_pull.py [--people 25000] [--courses 4] [--completed 0.3]``.

Setup (deterministic, and a shortcut allowed for a benchmark only): one emulator in this process
holds ``people`` users, each enrolled (``enrol_manual_enrol_users`` as the admin, in full
batches) in ``courses`` courses that have a self-completion criterion; a seeded random share
``completed`` of the enrolments is completed (criterion and course completion written straight
into the emulator's tables, three days ago). The site's completion report is the one the
README asks for (Course participants; course short name, username, completed, time completed;
conditions Completed = Yes and Time completed in the last 30 days; shared with the bridge's
user). The bridge's state database is built to match (owned accounts and the bridge's
enrolments, recorded through the store's own API, as a sync would have) and copied, so both
paths start from the same state.

Each path then pulls twice (a first pull and a repeated one) through ``pull_completions``, in
this process, over an in-process transport that hands each request to the emulator (no HTTP:
the figures that matter are calls and Moodle's time, and the machine is shared). Moodle's time
is estimated per call from the contract README's measurements on a real Moodle 4.5.6 (2
cores): ``core_enrol_get_users_courses`` 35 ms for one course to 146 ms for 30 (linear in
between), ``core_completion_get_course_completion_status`` 25 ms,
``core_reportbuilder_retrieve_report`` 1.4 ms per row returned, and 35 ms (the cheapest call
measured) for any call below that. Target (issue 11): the report path's calls and Moodle time
at most one tenth of the per-person path's. Figures are printed and written to
``bench/results/pull.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import tempfile
import time
from collections import Counter
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
BRIDGE_USERID = 3
REPORT_COLUMNS = (
    "course:shortname",
    "user:username",
    "completion:completed",
    "completion:timecompleted",
)
REPORT_CONDITIONS = {
    "completion:completed_operator": 1,
    "completion:timecompleted_operator": 4,
    "completion:timecompleted_value": 30,
    "completion:timecompleted_unit": 1,
}

# Moodle's time per call, in milliseconds (contract README, "Measured on that site").
MS_FLOOR = 35.0
MS_USERS_COURSES_1, MS_USERS_COURSES_30 = 35.0, 146.0
MS_STATUS = 25.0
MS_PER_REPORT_ROW = 1.4


def catalogue(names: list[str]) -> dict[str, Any]:
    from moodle_bridge.mappings import CourseOffer

    return {
        name: CourseOffer(
            COURSES[name][0], COURSES[name][1], COURSES[name][2], name, COURSES[name][3]
        )
        for name in names
    }


def moodle_ms(wsfunction: str, answer: Any) -> float:
    """Moodle's time for one call, from what it answered."""
    if wsfunction == "core_enrol_get_users_courses":
        courses = max(len(answer), 1) if isinstance(answer, list) else 1
        per_course = (MS_USERS_COURSES_30 - MS_USERS_COURSES_1) / 29
        return MS_USERS_COURSES_1 + (courses - 1) * per_course
    if wsfunction == "core_completion_get_course_completion_status":
        return MS_STATUS
    if wsfunction == "core_reportbuilder_retrieve_report" and isinstance(answer, dict):
        rows = len(answer.get("data", {}).get("rows", []))
        return max(MS_FLOOR, rows * MS_PER_REPORT_ROW)
    return MS_FLOOR


class InProcess:
    """A transport that hands each request to the emulator, and prices the call."""

    def __init__(self, emulator: Any) -> None:
        self.emulator = emulator
        self.moodle_ms: Counter[str] = Counter()
        self.report_rows = 0

    def post(self, url: str, pairs: list[tuple[str, str]]) -> Any:
        from moodle_bridge.moodle.transport import RawResponse

        reply = self.emulator.handle(pairs)
        wsfunction = next(value for key, value in pairs if key == "wsfunction")
        answer = json.loads(reply.body)
        self.moodle_ms[wsfunction] += moodle_ms(wsfunction, answer)
        if wsfunction == "core_reportbuilder_retrieve_report":
            self.report_rows += len(answer.get("data", {}).get("rows", []))
        return RawResponse(reply.status, reply.content_type, reply.body.encode(), reply.headers)


def pull(emulator: Any, state: Path, names: list[str], *, use_report: bool) -> dict[str, Any]:
    """One pull through an in-process transport; its figures."""
    from moodle_bridge.completions import PullOptions, pull_completions
    from moodle_bridge.moodle.client import MoodleClient
    from moodle_bridge.store import Store

    transport = InProcess(emulator)
    cpu = time.process_time()
    started = time.perf_counter()
    with (
        MoodleClient("http://127.0.0.1:1", emulator.token_for("bridge"), transport=transport) as c,
        Store.open(state / "state.sqlite3") as store,
    ):
        report = pull_completions(
            c, store, catalogue(names), options=PullOptions(workers=1, use_report=use_report)
        )
        ledger = len(store.completions())
    moodle_seconds = sum(transport.moodle_ms.values()) / 1000
    return {
        "path": report.path,
        "fallback": report.fallback,
        "seconds": round(time.perf_counter() - started, 2),
        "cpu_seconds_client_and_emulator": round(time.process_time() - cpu, 2),
        "people_asked": report.people_asked,
        "enrolments_pending": report.enrolments_pending,
        "report_pages": report.report_pages,
        "report_rows": transport.report_rows,
        "new_completions": report.new_completions,
        "ledger_entries": ledger,
        "failures": len(report.failures),
        "stopped": report.stopped,
        "calls": dict(sorted(report.calls.items())),
        "calls_total": sum(report.calls.values()),
        "moodle_seconds": round(moodle_seconds, 1),
        "moodle_seconds_by_function": {
            name: round(ms / 1000, 1) for name, ms in sorted(transport.moodle_ms.items())
        },
    }


def build(people: int, names: list[str], completed: float, seed: int, state: Path) -> Any:
    """The emulated site and the matching state database; returns the emulator."""
    from moodle_bridge.emulator import Emulator, default_seed
    from moodle_bridge.emulator.completion import (
        add_self_completion,
        mark_course_completed,
        mark_criteria_complete,
    )
    from moodle_bridge.emulator.reportbuilder import add_report
    from moodle_bridge.store import Changes, EnrolmentRow, NewAccount, Store

    emulator = Emulator(default_seed())
    world = emulator.world
    now = int(time.time())
    completed_at = now - now % 60 - 3 * 86_400
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
    for courseid in course_ids.values():
        add_self_completion(emulator, courseid)
    world.reports.clear()
    add_report(
        emulator,
        "Bridge course completions",
        REPORT_COLUMNS,
        conditions=REPORT_CONDITIONS,
        audience=[BRIDGE_USERID],
    )
    emulator.run_setup(
        {
            "action": "create_users_bulk",
            "count": people,
            "first": 1,
            "username_format": NIP_FORMAT,
            "firstname": "Pegawai",
            "lastname_format": "Bench%05d",
            "email_format": "p%05d@kemenag.example",
            "timecreated": now - 86400 * 200,
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
        mark_criteria_complete(world, course, course["completion_criteria"][0], uid, completed_at)
        mark_course_completed(world, uid, course["id"], completed_at)
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


def ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def bench(people: int, courses: int, completed: float, seed: int) -> dict[str, Any]:
    names = sorted(COURSES)[:courses]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "built").mkdir()
        started = time.perf_counter()
        emulator, enrolments, done = build(people, names, completed, seed, base / "built")
        setup_seconds = round(time.perf_counter() - started, 1)
        steps: dict[str, dict[str, Any]] = {}
        for path, use_report in (("per_person", False), ("report", True)):
            state = base / path
            shutil.copytree(base / "built", state)
            for label in ("first_pull", "repeated_pull"):
                steps[f"{path}_{label}"] = pull(emulator, state, names, use_report=use_report)
    person, report = steps["per_person_first_pull"], steps["report_first_pull"]
    calls_ratio = ratio(report["calls_total"], person["calls_total"])
    time_ratio = ratio(report["moodle_seconds"], person["moodle_seconds"])
    pending = int(person["enrolments_pending"])
    return {
        "people": people,
        "courses_per_person": courses,
        "enrolments_pending": enrolments,
        "completed_in_moodle": done,
        "setup_seconds": setup_seconds,
        "workers": 1,
        **steps,
        "first_pull_per_1000_pending": {
            "per_person_calls": round(1000 * person["calls_total"] / pending, 1),
            "per_person_moodle_seconds": round(1000 * person["moodle_seconds"] / pending, 2),
            "report_calls": round(1000 * report["calls_total"] / pending, 2),
            "report_moodle_seconds": round(1000 * report["moodle_seconds"] / pending, 2),
        },
        "report_over_per_person": {"calls": calls_ratio, "moodle_time": time_ratio},
        "target_met": bool(
            calls_ratio is not None
            and time_ratio is not None
            and calls_ratio <= 0.1
            and time_ratio <= 0.1
        ),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=25000)
    parser.add_argument("--courses", type=int, default=4, choices=range(1, len(COURSES) + 1))
    parser.add_argument("--completed", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "pull.json")
    args = parser.parse_args()
    figures = bench(args.people, args.courses, args.completed, args.seed)
    print(json.dumps(figures, indent=2))
    record = {
        "benchmark": "pull",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}",
        "command": f"python bench/bench_pull.py --people {args.people} --courses "
        f"{args.courses} --completed {args.completed} --seed {args.seed}",
        "emulator": "in the benchmark's process, called through an in-process transport (no "
        "HTTP); Moodle time priced per call at the contract README's measured rates",
        "cost_model_ms": {
            "core_enrol_get_users_courses": f"{MS_USERS_COURSES_1} (1 course) to "
            f"{MS_USERS_COURSES_30} (30 courses), linear",
            "core_completion_get_course_completion_status": MS_STATUS,
            "core_reportbuilder_retrieve_report": f"{MS_PER_REPORT_ROW} per row, at least "
            f"{MS_FLOOR}",
            "any other call": MS_FLOOR,
        },
        "results": figures,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
