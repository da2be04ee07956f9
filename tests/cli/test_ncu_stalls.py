#!/usr/bin/env python3
"""test_ncu_stalls.py - scripts/ncu-stalls.py against a small ncu source page.

ncu's CSV of a kernel's SASS with its warp-state samples (a note line
and a "Kernel Name" row before the header, numbers with thousands separators): the script must
rank the instructions by their share of all samples, sum each sampling
or stall column over the kernel, largest first, and fail with the
header it saw when a page has no sampling columns."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pycheck import check, report, run_script  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                      "ncu-stalls.py")
PAGE = """==PROF== Connected to process 1
"Kernel Name","m40_gemvb_q4_0r8_nb8",
"Address","Source","Warp Stall Sampling (All Samples)","Warp Stall Sampling (Not-issued Samples)","stall_long_sb","Instructions Executed"
"0x0","LDG.E.128 R4, [R2.64]","1,200","1,000","900","32"
"0x10","FFMA R8, R4, R5, R8","300","100","0","32"
"0x20","PRMT R9, R6, 0x7604, R9","500","200","10","32"
"""


def run(text, *args):
    return run_script(SCRIPT, text, *args)


def main():
    r = run(PAGE)
    check(r.returncode == 0, "it runs: " + r.stderr)
    out = r.stdout
    check("3 instructions, 2000 samples" in out, "all samples counted: " + out)
    check(" 60.0%     0x0  LDG.E.128 R4, [R2.64]" in out, "the load first, its share: " + out)
    check(out.index("LDG") < out.index("PRMT") < out.index("FFMA"), "ranked by samples: " + out)
    check(out.index("(All Samples)\n") < out.index("(Not-issued Samples)\n")
          < out.index("stall_long_sb\n"), "the sums largest first: " + out)
    check("          1300  Warp Stall Sampling (Not-issued Samples)" in out, "a column summed: " + out)
    r = run(PAGE, "--top", "1")
    check(r.returncode == 0 and "PRMT" not in r.stdout, "--top 1 keeps one instruction")
    r = run('"Address","Source","Instructions Executed"\n"0x0","EXIT","1"\n')
    check(r.returncode != 0 and "Instructions Executed" in r.stderr,
          "no sampling columns: an error naming the header")
    report()


main()
