#!/usr/bin/env python3
"""plot-decode-context.py - decode t/s against context length, as a PNG.

Usage: plot-decode-context.py CSV PNG
CSV columns: device,model,context,tps (one row per `m40-llm bench -d N` run;
context 0 is the plain tg128). Needs matplotlib (pip install matplotlib).
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    series = {}
    with open(sys.argv[1], newline="") as f:
        for row in csv.DictReader(f):
            key = f"{row['model']} ({row['device']})"
            series.setdefault(key, []).append((int(row["context"]), float(row["tps"])))
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, points in series.items():
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=key)
    ax.set_xscale("symlog", linthresh=512)
    ax.set_xlabel("context already in the KV cache (positions)")
    ax.set_ylabel("decode tokens/s")
    ax.set_title("m40-llm decode speed against context length")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=100)


if __name__ == "__main__":
    main()
