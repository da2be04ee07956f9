#!/usr/bin/env python3
"""ncu-stalls.py - where a kernel's warps wait, from Nsight Compute's source page.

    ncu ... --section WarpStateStats --section SourceCounters -o REP BIN ...
    ncu --import REP.ncu-rep --page source --csv --print-source sass > stalls.csv
    scripts/ncu-stalls.py stalls.csv [--top N]

prints the N instructions (default 25) with the most warp-state samples, each
with its share of all samples and its SASS, then the sample columns summed over
the kernel, largest first: which stall reasons (long scoreboard, math pipe
throttle, ...) the warps were sampled in. Column names differ between ncu
versions, so the script takes any column whose name mentions sampling or a
stall; it prints the header and fails when it finds none.
"""
import argparse
import csv
import sys


def number(text):
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    with open(args.csv, newline="") as f:
        lines = [line for line in f if not line.startswith("==")]  # ncu's notes are not rows
    rows = list(csv.reader(lines))
    # the header is the first row with a Source column: ncu 2025 puts a
    # "Kernel Name" row before it
    at, src = 0, None
    for i, r in enumerate(rows):
        names = [h.strip().lower() for h in r]
        if "source" in names:
            at, src = i, names.index("source")
            break
    if len(rows) < at + 2:
        sys.exit(f"ncu-stalls: {args.csv}: no table")
    head = rows[at]
    body = [r for r in rows[at + 1:] if len(r) == len(head)]
    cols = [i for i, h in enumerate(head) if "sampl" in h.lower() or "stall" in h.lower()]
    if src is None or not cols:
        sys.exit(f"ncu-stalls: no Source or sampling columns in: {head}")
    # the column of all samples: the first that says so, else the first
    total = next((i for i in cols if "all" in head[i].lower()), cols[0])
    samples = [(number(r[total]) or 0.0, r) for r in body]
    whole = sum(s for s, _ in samples) or 1.0
    print(f"{len(samples)} instructions, {whole:.0f} samples ({head[total]})")
    for s, r in sorted(samples, key=lambda x: -x[0])[: args.top]:
        addr = r[0] if head[0].lower().startswith("address") else ""
        print(f"{100 * s / whole:5.1f}%  {addr:>6}  {r[src].strip()}")
    sums = []
    for i in cols:
        vals = [number(r[i]) for r in body]
        if any(v is not None for v in vals):
            sums.append((sum(v for v in vals if v is not None), head[i]))
    print("summed over the kernel:")
    for v, name in sorted(sums, reverse=True):
        print(f"  {v:12.0f}  {name}")


if __name__ == "__main__":
    main()
