"""Developer aid: replay the contract and print which cases match (python -m tests.contract.status [filter...])."""
import json, sys, collections
from tests.contract.replay import replay
out = replay()
per = collections.defaultdict(lambda: [0, 0])
bad = []
for o in out:
    f = o.case_id.split('#')[0]
    ok = json.dumps(o.expected) == json.dumps(o.actual)
    per[f][0] += ok; per[f][1] += 1
    if not ok: bad.append(o)
for f, (a, b) in per.items(): print(f"{a:3}/{b:3} {f}")
print("TOTAL", sum(a for a, b in per.values()), len(out))
want = sys.argv[1:]
for o in bad:
    if any(w in o.case_id for w in want):
        print("=====", o.case_id)
        print("EXPECTED", json.dumps(o.expected, indent=1)[:3000])
        print("ACTUAL  ", json.dumps(o.actual, indent=1)[:3000])
