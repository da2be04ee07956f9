#!/usr/bin/env python3
"""plot-decode-context.py - t/s against context length, as a PNG.

Usage: plot-decode-context.py CSV PNG
CSV columns: device,model,context,tps (one row per `m40-llm bench -d N` run;
context 0 is the plain tg/pp test), and optionally kv (the cache type) and
test ("pp" or "tg"): with a test column the prompt and decode speeds get a
panel each, and every (model, kv) pair a line. Needs matplotlib (pip
install matplotlib).
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TITLES = {"tg": "decode tokens/s", "pp": "prompt tokens/s (512 a chunk)"}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    panels = {}
    with open(sys.argv[1], newline="") as f:
        for row in csv.DictReader(f):
            key = f"{row['model']} ({row['device']})"
            if row.get("kv"):
                key = f"{row['model']}, {row['kv']} KV ({row['device']})"
            series = panels.setdefault(row.get("test") or "tg", {})
            series.setdefault(key, []).append((int(row["context"]), float(row["tps"])))
    names = sorted(panels, key=lambda t: t != "tg")
    fig, axes = plt.subplots(1, len(names), figsize=(7 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        for key, points in panels[name].items():
            points.sort()
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=key)
        ax.set_xscale("symlog", linthresh=512)
        ax.set_xlabel("context already in the KV cache (positions)")
        ax.set_ylabel(TITLES.get(name, name))
        ax.set_title(f"m40-llm {TITLES.get(name, name)} against context length")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=100)


if __name__ == "__main__":
    main()
