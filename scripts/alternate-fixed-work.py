#!/usr/bin/env python3
"""Compare two builds of examples/fixed_work alternately on one core.

usage: alternate-fixed-work.py OLD NEW [ROUNDS] [BATCHES] [CORE]

Each round runs copy, push and pop (64-byte and IMIX) once per build, the
order of the builds swapped every round, and times each run. Prints per
case the median [min-max] Mpps of each build, new/old of the medians, the
paired (round by round) new/old median, and the same for the ratio to the
`copy` run of the same round and build (the `vs_copy` of `xconnect bench`).
"""
import statistics as st
import subprocess
import sys
import time

old, new = sys.argv[1], sys.argv[2]
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 60
batches = sys.argv[4] if len(sys.argv) > 4 else "300000"
core = sys.argv[5] if len(sys.argv) > 5 else "1"
cases = [(c, s) for s in ("64", "imix") for c in ("copy", "push", "pop")]
mpps = {}
for r in range(rounds):
    for c, s in cases:
        for name, b in [("old", old), ("new", new)][:: 1 if r % 2 == 0 else -1]:
            t = time.perf_counter()
            out = subprocess.run(["taskset", "-c", core, b, c, batches, s],
                                 capture_output=True, text=True, check=True).stdout
            dt = time.perf_counter() - t
            mpps.setdefault((c, s, name), []).append(int(out.split()[0]) / dt / 1e6)


def fm(v):
    return f"{st.median(v):.3f} [{min(v):.3f}-{max(v):.3f}]"


print(f"{rounds} rounds of {batches} batches, core {core}")
for c, s in cases:
    o, n = mpps[(c, s, "old")], mpps[(c, s, "new")]
    line = (f"{c}/{s}: Mpps old {fm(o)} new {fm(n)} new/old {st.median(n) / st.median(o):.3f}"
            f" paired {fm([b / a for a, b in zip(o, n)])}")
    if c != "copy":
        vo = [x / y for x, y in zip(o, mpps[("copy", s, "old")])]
        vn = [x / y for x, y in zip(n, mpps[("copy", s, "new")])]
        line += (f" | vs_copy old {st.median(vo):.3f} new {st.median(vn):.3f}"
                 f" paired {fm([b / a for a, b in zip(vo, vn)])}")
    print(line)
