#!/usr/bin/env python3
"""Compare two builds of examples/fixed_work alternately on one core.

usage: alternate-fixed-work.py OLD NEW [ROUNDS] [BATCHES] [CORE]
       alternate-fixed-work.py --sliced OLD NEW [RUNS] [SLICES] [BATCHES] [CORE] [CASES]

The first form runs copy, push and pop (64-byte and IMIX) once per build
per round, the order of the builds swapped every round, and times each
run. Prints per case the median [min-max] Mpps of each build, new/old of
the medians, the paired (round by round) new/old median, and the same for
the ratio to the `copy` run of the same round and build (the `vs_copy` of
`xconnect bench`).

The second form runs `fixed_work sliced` for CASES (comma-separated;
default the l3 cases l3v4,l3v6: the bench's 1M/200k-route tables, built
once per run; push and pop work too, 64-byte frames): each run times
SLICES slices of copy then the case, BATCHES batches each, and reports the
median vs_copy of its slices; runs alternate between the builds. Prints
per case the median [min-max] over runs of each build's vs_copy and the
paired new/old.
"""
import statistics as st
import subprocess
import sys
import time


def fm(v):
    return f"{st.median(v):.3f} [{min(v):.3f}-{max(v):.3f}]"


def sliced(argv):
    old, new = argv[0], argv[1]
    runs = int(argv[2]) if len(argv) > 2 else 12
    slices = argv[3] if len(argv) > 3 else "15"
    batches = argv[4] if len(argv) > 4 else "20000"
    core = argv[5] if len(argv) > 5 else "1"
    cases = argv[6].split(",") if len(argv) > 6 else ["l3v4", "l3v6"]
    print(f"{runs} runs per build of {slices} slices of {batches} batches, core {core}")
    for case in cases:
        got = {"old": [], "new": []}
        for r in range(runs):
            for name, b in [("old", old), ("new", new)][:: 1 if r % 2 == 0 else -1]:
                out = subprocess.run(["taskset", "-c", core, b, "sliced", case, slices, batches],
                                     capture_output=True, text=True, check=True).stdout
                got[name].append(st.median(float(l.split()[0]) for l in out.splitlines()))
        o, n = got["old"], got["new"]
        print(f"{case}: vs_copy old {fm(o)} new {fm(n)} new/old {st.median(n) / st.median(o):.3f}"
              f" paired {fm([b / a for a, b in zip(o, n)])}")


def whole(argv):
    old, new = argv[0], argv[1]
    rounds = int(argv[2]) if len(argv) > 2 else 60
    batches = argv[3] if len(argv) > 3 else "300000"
    core = argv[4] if len(argv) > 4 else "1"
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


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--sliced":
        sliced(sys.argv[2:])
    else:
        whole(sys.argv[1:])
