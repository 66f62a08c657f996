"""Gap-engine benchmark: plan courses for N synthetic ASN with ~12 required competencies each.

Usage: ``python bench/bench_gaps.py [--size 232881] [--seed 7] [--read]``. People come from
:func:`moodle_bridge.samples.generate_people` (clean rows, the default unit mix) and are
planned against the shipped sample mappings of every unit (``mappings/``). Assessments are
synthetic and deterministic: about 1.3 per required competency (so repeated assessments and
ties are exercised), around the required level, with ~3% of competencies never assessed, in
random order (built in that order, as a file reader builds its rows);
~2% of people have completions and ~3% current enrolments. Inputs are built before the clock
starts; the figures (engine time, peak memory of the process, counts) are printed and written
to ``bench/results/gaps.json``.

``--read`` also writes the assessments to a CSV file and measures, each in its own process,
reading it and planning as a run does: with every row in a list (what
``UnitMapper.read_assessments`` returns) and keeping only the latest per person and competency
while reading (:func:`~moodle_bridge.roster.assessment.collect_latest`). Their figures (peak
RSS over the roster's, read and plan seconds) go under ``read_and_plan``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from random import Random
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from moodle_bridge.gap_engine import CompletedCourse, CurrentEnrolment, plan_gaps  # noqa: E402
from moodle_bridge.mappings import Mappings, load_mappings  # noqa: E402
from moodle_bridge.roster.assessment import AssessmentLike, collect_latest  # noqa: E402
from moodle_bridge.roster.sources import read_rows  # noqa: E402
from moodle_bridge.samples import DEFAULT_UNITS, generate_people  # noqa: E402
from moodle_bridge.units import discover_units  # noqa: E402

RESULTS = ROOT / "bench" / "results"
AS_OF = dt.date(2026, 11, 27)


class Person(NamedTuple):
    nip: str
    unit: str
    jabatan: str
    active: bool


class Assessment(NamedTuple):
    nip: str
    competency: str
    level: int
    date: dt.date
    row: int


def peak_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def status_mib(field: str) -> float:
    """A size from ``/proc/self/status`` (Linux): ``VmRSS`` now, ``VmHWM`` its peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    raise LookupError(field)


def reset_peak() -> None:
    """Restart ``VmHWM`` from the current RSS (a child's ``ru_maxrss`` starts at its parent's)."""
    Path("/proc/self/clear_refs").write_text("5")


def build_inputs(
    size: int, seed: int
) -> tuple[
    list[Person],
    list[Assessment],
    dict[str, Mappings],
    list[CompletedCourse],
    list[CurrentEnrolment],
    dict[str, int],
]:
    mappings = {unit: load_mappings(ROOT / "mappings", unit) for unit in DEFAULT_UNITS}
    rng = Random(seed)
    people = roster(size, seed)
    specs: list[tuple[str, str, int, dt.date, int]] = []
    completions: list[CompletedCourse] = []
    enrolments: list[CurrentEnrolment] = []
    used: dict[str, int] = {}
    days = [dt.date(2023, 1, 1) + dt.timedelta(days=d) for d in range(0, 1000, 7)]
    row = 1
    for p in people:
        m = mappings[p.unit]
        standard = m.standard_for(p.jabatan)
        if standard is None:
            continue
        for req in standard.requirements:
            r = rng.random()
            if r < 0.03:
                continue  # never assessed
            level = max(1, min(5, req.level - rng.choice((-1, 0, 0, 1, 1, 1, 2, 2, 3))))
            specs.append((p.nip, req.competency, level, rng.choice(days), row))
            row += 1
            if r < 0.33:  # a second assessment of the same competency
                level2 = max(1, min(5, level + rng.choice((-1, 0, 1))))
                specs.append((p.nip, req.competency, level2, rng.choice(days), row))
                row += 1
            if r > 0.995:
                offers = m.offers(req.competency, level)
                if offers:
                    completions.append(
                        CompletedCourse(p.nip, offers[0].course_shortname, dt.date(2026, 6, 1))
                    )
            elif 0.97 < r <= 0.975:
                offers = m.offers(req.competency, level)
                if offers:
                    enrolments.append(
                        CurrentEnrolment(p.nip, offers[0].course_shortname, dt.date(2026, 3, 1))
                    )
                    used[p.nip] = used.get(p.nip, 0) + 1
        if rng.random() < 0.1:
            used[p.nip] = used.get(p.nip, 0) + rng.randint(1, 3)
    # Rows in no particular order (the worst case for "latest per person"), built in that
    # order with their own NIP strings, as a file reader would build them.
    rng.shuffle(specs)
    assessments = [Assessment(str(int(n)), c, lv, d, r) for n, c, lv, d, r in specs]
    del specs
    return people, assessments, mappings, completions, enrolments, used


def roster(size: int, seed: int) -> list[Person]:
    return [
        Person(r.nip, r.unit, r.jabatan, r.status.upper() in ("", "AKTIF"))
        for r in generate_people(size, seed, dirty_share=0.0)
    ]


def write_assessments(path: Path, assessments: list[Assessment]) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(("nip", "kompetensi", "level", "tanggal"))
        for a in assessments:
            writer.writerow((a.nip, a.competency, a.level, a.date.isoformat()))


def read_and_plan(path: Path, reader: str, size: int, seed: int) -> dict[str, object]:
    """In a child process: read ``path`` (``list`` or ``latest``) and plan its people."""
    mappings = {unit: load_mappings(ROOT / "mappings", unit) for unit in DEFAULT_UNITS}
    people = roster(size, seed)
    reset_peak()
    before = status_mib("VmRSS")
    started = time.perf_counter()
    mapper = discover_units().require("generic")
    found: Iterable[AssessmentLike]
    if reader == "list":
        found, _ = mapper.read_assessments(path)
        kept = len(found)
    else:
        rows = (mapper.map_assessment_row(path.name, row) for row in read_rows(path))
        latest, _ = collect_latest(rows)
        found, kept = latest, len(latest)
    read_seconds = time.perf_counter() - started
    started = time.perf_counter()
    plan = plan_gaps(people, found, mappings, as_of=AS_OF)
    return {
        "reader": reader,
        "assessments_kept": kept,
        "read_seconds": round(read_seconds, 2),
        "plan_seconds": round(time.perf_counter() - started, 2),
        "rss_mib_roster": before,
        "peak_rss_mib": status_mib("VmHWM"),
        "read_and_plan_extra_rss_mib": round(status_mib("VmHWM") - before, 1),
        "chosen": plan.summary().get("chosen", 0),
    }


def read_and_plan_both(assessments: list[Assessment], size: int, seed: int) -> list[object]:
    """Write the assessments to a file; read and plan it with each reader, in a fresh process."""
    figures: list[object] = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "assessments.csv"
        write_assessments(path, assessments)
        for reader in ("list", "latest"):
            command = [sys.executable, __file__, "--size", str(size), "--seed", str(seed)]
            command += ["--child-read", reader, "--file", str(path)]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            figures.append(json.loads(done.stdout))
    return figures


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=232881)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--read", action="store_true", help="also read a file and plan")
    parser.add_argument("--child-read", choices=("list", "latest"), help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_read:
        figures = read_and_plan(args.file, args.child_read, args.size, args.seed)
        print(json.dumps(figures))
        return figures
    result = measure(args.size, args.seed, read=args.read)
    print(json.dumps(result, indent=2))
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "gaps.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def measure(size: int, seed: int, *, read: bool) -> dict[str, object]:
    started = time.perf_counter()
    people, assessments, mappings, completions, enrolments, used = build_inputs(size, seed)
    build_seconds = time.perf_counter() - started
    inputs_peak = peak_mib()

    started = time.perf_counter()
    cpu = time.process_time()
    plan = plan_gaps(
        people,
        assessments,
        mappings,
        as_of=AS_OF,
        completions=completions,
        enrolments=enrolments,
        used_this_year=used,
    )
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu
    required = sum(s.required for s in plan.stats.values())
    result: dict[str, object] = {
        "size": size,
        "seed": seed,
        "as_of": AS_OF.isoformat(),
        "engine_seconds": round(seconds, 2),
        "engine_cpu_seconds": round(cpu_seconds, 2),
        "input_build_seconds": round(build_seconds, 2),
        "peak_rss_mib_inputs": inputs_peak,
        "peak_rss_mib": peak_mib(),
        # Peak growth while planning, over the inputs (the bench's own lists dominate the rest).
        "engine_extra_rss_mib": round(peak_mib() - inputs_peak, 1),
        "people": len(people),
        "assessments": len(assessments),
        "completions": len(completions),
        "enrolments": len(enrolments),
        "required_competencies": required,
        "required_per_person": round(required / max(1, len(plan.people)), 2),
        "course_windows": len(plan.courses),
        "full_windows": sum(1 for c in plan.courses if c.capacity is not None and c.free == 0),
        "outcomes": plan.summary(),
        "target_seconds": 30,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
    }
    if read:
        del plan, people, mappings, completions, enrolments, used
        result["read_and_plan"] = read_and_plan_both(assessments, size, seed)
    return result


if __name__ == "__main__":
    main()
