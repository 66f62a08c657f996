"""Build the demo dashboard from a synthetic ledger and screenshot it into docs/dashboard.png.

    .venv/bin/python docs/make_dashboard_screenshot.py [--out docs/dashboard.png] [--keep DIR]

Everyone is invented (moodle_bridge.samples); completions are drawn from the repository's
PENDIS catalogue (mappings/), spread over the year with the peaks training units see
(after the budget opens in spring, and before the year closes). Needs /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from moodle_bridge.mappings import load_mappings
from moodle_bridge.reports import build_reports
from moodle_bridge.reports.ledger import WIB
from moodle_bridge.roster.person import Person
from moodle_bridge.samples import generate_people
from moodle_bridge.store import Completion, Enrolment

ROOT = Path(__file__).resolve().parent.parent
UNIT = "PENDIS"
YEAR = 2026
AS_OF = dt.datetime(YEAR, 11, 16, 7, 0, tzinfo=WIB)
#: Relative weight of completions per month, January..November (the report is made mid-November).
MONTH_WEIGHTS = (2, 4, 7, 9, 8, 4, 5, 8, 10, 9, 3)


def synthetic(
    size: int = 4000, seed: int = 2026
) -> tuple[
    list[Person], list[Completion], dict[tuple[str, str], Enrolment], dict[str, int], dict[str, int]
]:
    rng = random.Random(seed)
    mappings = load_mappings(ROOT / "mappings", UNIT)
    people = [
        Person(
            nip=row.nip,
            display_name=row.nama,
            firstname=row.nama.split()[0],
            lastname=row.nama.split()[-1],
            unit=row.unit,
            satker=row.satker,
            jabatan=row.jabatan,
        )
        for row in generate_people(size, seed, dirty_share=0.0, units={UNIT: 1.0})
    ]
    offers = list(mappings.catalogue)
    completions: list[Completion] = []
    enrolments: dict[tuple[str, str], Enrolment] = {}
    open_by_competency: dict[str, int] = {}
    open_gaps: dict[str, int] = {}
    for person in people:
        # Most people take 0-3 trainings; a few take more.
        count = rng.choices((0, 1, 2, 3, 4), weights=(22, 33, 27, 13, 5))[0]
        taken = rng.sample(offers, k=count)
        for offer in taken:
            month = rng.choices(range(1, 12), weights=MONTH_WEIGHTS)[0]
            day = dt.datetime(YEAR, month, rng.randint(1, 28), rng.randint(8, 20), tzinfo=WIB)
            if offer.window_start is not None and day.date() < offer.window_start:
                continue
            start = day - dt.timedelta(days=rng.randint(10, 45))
            enrolments[(person.nip, offer.course_shortname)] = Enrolment(
                person.nip, offer.course_shortname, False, int(start.timestamp())
            )
            completions.append(
                Completion(
                    person.nip,
                    offer.course_shortname,
                    int(day.timestamp()),
                    offer.jp,
                    offer.competency,
                    offer.to_level,
                )
            )
        # Enrolled but not finished yet, and gaps still open.
        for offer in rng.sample(offers, k=rng.choices((0, 1, 2), weights=(50, 35, 15))[0]):
            key = (person.nip, offer.course_shortname)
            enrolments.setdefault(key, Enrolment(person.nip, offer.course_shortname, False))
            open_by_competency[offer.competency] = open_by_competency.get(offer.competency, 0) + 1
            open_gaps[person.nip] = open_gaps.get(person.nip, 0) + 1
    return people, completions, enrolments, open_gaps, open_by_competency


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    parser.add_argument("--keep", type=Path, help="write the reports here and keep them")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    people, completions, enrolments, open_gaps, open_by = synthetic()
    mappings = {UNIT: load_mappings(ROOT / "mappings", UNIT)}
    with tempfile.TemporaryDirectory() as temp:
        out_dir = args.keep or Path(temp) / "reports"
        files = build_reports(
            people,
            completions,
            unit=UNIT,
            year=YEAR,
            out_dir=out_dir,
            mappings=mappings,
            open_gaps=open_gaps,
            enrolments=enrolments,
            open_by_competency=open_by,
            generated=AS_OF,
        )
        profile = Path(temp) / "profile"
        result = subprocess.run(
            [
                args.chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                "--window-size=1280,2000",
                f"--screenshot={args.out.resolve()}",
                files.dashboard_html.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0 or not args.out.is_file():
            sys.stderr.write(result.stderr)
            return 1
    args.out.chmod(0o644)  # a documentation image, not a report: no personal data in it
    sys.stdout.write(f"{args.out} ({files.people} people, {files.trainings} trainings)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
