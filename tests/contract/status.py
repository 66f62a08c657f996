"""Developer aid: replay the contract and print which cases match.

Usage: ``python -m tests.contract.status [substring ...]``; failing cases whose id contains a
substring are printed in full.
"""

import collections
import json
import sys

from tests.contract.replay import replay


def main(filters: list[str]) -> None:
    outcomes = replay()
    per_file: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    failing = []
    for outcome in outcomes:
        counts = per_file[outcome.case_id.split("#")[0]]
        ok = json.dumps(outcome.expected) == json.dumps(outcome.actual)
        counts[0] += ok
        counts[1] += 1
        if not ok:
            failing.append(outcome)
    for name, (passed, total) in per_file.items():
        print(f"{passed:3}/{total:3} {name}")
    print("TOTAL", sum(p for p, _ in per_file.values()), len(outcomes))
    for outcome in failing:
        if any(f in outcome.case_id for f in filters):
            print("=====", outcome.case_id)
            print("EXPECTED", json.dumps(outcome.expected, indent=1)[:3000])
            print("ACTUAL  ", json.dumps(outcome.actual, indent=1)[:3000])


if __name__ == "__main__":
    main(sys.argv[1:])
