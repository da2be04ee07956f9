#!/usr/bin/env python3
"""ncu-step.py - where one decode step's time goes, from an ncu CSV.

    ncu --csv --metrics gpu__time_duration.sum,launch__grid_size ... \\
        m40-llm bench ... --batch B --no-graphs > step.csv
    scripts/ncu-step.py step.csv [--inputs 8]

Reads Nsight Compute's CSV (one line per kernel and metric), cuts the
launches into steps at each m40_argmax_f32 (a decode step's last kernel),
keeps the steps whose batched mat-vecs took --inputs inputs a launch
(kernel names ending _nb<inputs>; 1: the single-row kernels), and prints
the last such step kernel by kernel, summed by name and grid (so a
mat-vec's matrices of different heights apart): launches, us, share
of the step, us a launch. Kernels run one at a time under ncu, so the sum
is the kernels' own time; a CUDA graph replays the same step with the
gaps between launches on top (docs/performance.md compares the two).
Standard library only.
"""
import argparse
import csv
import sys

UNITS = {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3,
         "s": 1e6, "second": 1e6}


def kernels(path):
    """[(name, us, grid)] in launch order."""
    rows = {}
    with open(path, newline="") as f:
        lines = [line for line in f if line.startswith('"')]  # skip ncu's ==PROF== lines
    for r in csv.DictReader(lines):
        k = rows.setdefault(int(r["ID"]), {"name": r["Kernel Name"], "us": 0.0, "grid": ""})
        value = r["Metric Value"].replace(",", "")
        if r["Metric Name"] == "gpu__time_duration.sum":
            unit = r["Metric Unit"]
            if unit not in UNITS:
                sys.exit(f"ncu-step: a duration in {unit!r}, a unit it does not know")
            k["us"] = float(value) * UNITS[unit]
        elif r["Metric Name"] == "launch__grid_size":
            k["grid"] = value
    return [(k["name"], k["us"], k["grid"]) for _, k in sorted(rows.items())]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--inputs", type=int, default=8)
    a = ap.parse_args()
    ks = kernels(a.csv)
    steps, cur = [], []
    for k in ks:
        cur.append(k)
        if k[0] == "m40_argmax_f32":
            steps.append(cur)
            cur = []
    tag = "_nb%d" % a.inputs
    if a.inputs > 1:
        want = [s for s in steps if any(n.endswith(tag) for n, _, _ in s)]
    else:
        want = [s for s in steps if not any("_nb" in n for n, _, _ in s)]
    print(f"{len(ks)} launches, {len(steps)} steps, {len(want)} with {a.inputs} inputs a mat-vec")
    if not want:
        return 1
    step = want[-1]
    total = sum(us for _, us, _ in step)
    by = {}  # by name and grid: a mat-vec's matrices apart
    for n, us, grid in step:
        e = by.setdefault((n, grid), [0, 0.0])
        e[0] += 1
        e[1] += us
    print(f"\none step: {len(step)} launches, {total:.1f} us of kernels\n")
    print("| kernel | launches | us a step | share | us each | grid |")
    print("|---|---|---|---|---|---|")
    for (n, grid), (c, us) in sorted(by.items(), key=lambda x: -x[1][1]):
        print(f"| {n} | {c} | {us:.1f} | {100 * us / total:.1f}% | {us / c:.2f} | {grid} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
