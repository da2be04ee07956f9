#!/usr/bin/env python3
"""test_ncu_step.py - scripts/ncu-step.py against a small ncu CSV.

Two decode steps of 8 rows and a prompt forward between them, in ncu's
CSV (a line per kernel and metric, durations in "ns" or "us", numbers
with thousands separators): the script must cut the steps at each
argmax, pick the last step whose mat-vecs took 8 inputs, keep a
mat-vec's matrices apart by grid, and convert the units."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pycheck import check, report, run_script  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                      "ncu-step.py")
HEADER = ('"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream",'
          '"Block Size","Grid Size","Device","CC","Section Name","Metric Name","Metric Unit",'
          '"Metric Value"')


def rows(kid, name, grid, dur, unit):
    pre = f'"{kid}","1","m40-llm","h","{name}","1","13","(128, 1, 1)","({grid}, 1, 1)","0","9.0","m"'
    return [f'{pre},"gpu__time_duration.sum","{unit}","{dur}"',
            f'{pre},"launch__grid_size","","{grid}"']


def csv_text(steps):
    lines = ["==PROF== Connected to process 1", HEADER]
    kid = 0
    for step in steps:
        for name, grid, dur, unit in step:
            lines += rows(kid, name, grid, dur, unit)
            kid += 1
    return "\n".join(lines) + "\n"


def run(text, *args):
    return run_script(SCRIPT, text, *args)


def main():
    decode = [("m40_rmsnorm_f32", "8", "4,000", "ns"),
              ("m40_gemvb_q4_0r8_nb8", "1,536", "30,000", "ns"),
              ("m40_gemvb_q4_0r8_nb8", "512", "20,000", "ns"),
              ("m40_gemvb_q4_0r8_nb8", "512", "22,000", "ns"),
              ("m40_argmax_f32", "8", "14", "us")]
    prompt = [("m40_gemv_q4_0r_rpb8", "512", "16,000", "ns"), ("m40_argmax_f32", "1", "15", "us")]
    last = [(n, g, d.replace("30,000", "40,000"), u) for n, g, d, u in decode]
    r = run(csv_text([decode, prompt, last]))
    check(r.returncode == 0, "it runs: " + r.stderr)
    out = r.stdout
    check("3 steps, 2 with 8 inputs a mat-vec" in out, "steps counted: " + out)
    check("one step: 5 launches, 100.0 us of kernels" in out, "the last 8-input step: " + out)
    check("| m40_gemvb_q4_0r8_nb8 | 1 | 40.0 | 40.0% | 40.00 | 1536 |" in out,
          "qkv's grid apart, ns to us: " + out)
    check("| m40_gemvb_q4_0r8_nb8 | 2 | 42.0 | 42.0% | 21.00 | 512 |" in out,
          "two launches of one grid summed: " + out)
    check("| m40_argmax_f32 | 1 | 14.0 | 14.0% | 14.00 | 8 |" in out, "us kept as us: " + out)
    check(out.index("| 512 |") < out.index("| 1536 |") < out.index("m40_argmax"),
          "the largest share first: " + out)
    r = run(csv_text([prompt]), "--inputs", "8")
    check(r.returncode != 0 and "0 with 8 inputs" in r.stdout, "no such step: an error")
    bad = csv_text([[("m40_argmax_f32", "8", "1", "fortnight")]])
    r = run(bad)
    check(r.returncode != 0 and "fortnight" in r.stderr, "an unknown unit is an error")
    report()


main()
