#!/usr/bin/env python3
"""sass-count.py - instructions per weight and input in a mat-vec's main loop.

    scripts/sass-count.py [--cuobjdump PATH] FATBIN [REGEX]

Disassembles the sm_52 SASS of the kernels in FATBIN (the build's
m40_kernels.fatbin) whose names match REGEX (default: the mat-vec kernels)
and finds each one's main loop: the backward branch whose body holds the
most FFMAs. One trip of that loop handles E elements of R rows for NB
inputs (NB from the kernel's name: _nb<NB>, or 1 for a single-row _rpb
kernel), so

    instructions per weight per input = loop instructions / (E R NB)

E is 32 for the generic kernels (one FFMA per weight and input, so R =
FFMAs / (32 NB)). The repacked Q4_0/Q8_0 loop (gemv_common.cuh) gives each
of P threads 32/P elements of a block (E = 32/P; P is --parts, by default
the M40_GEMV_PARTS the source defines), R from the name (_rpb<R>; _r8_
and _r16_, whose threads each take 8 rows: M40_GEMVB_R8, else M40_GEMVB_R); the
repacked Q6_K loop (_q6_kr) is the same shape with 4 parts, E = 8. The Q4_K loop
of the same shape (m40_gemv_q4_k_v, m40_gemvb_q4_k) decodes each weight
with one PRMT, so E = PRMTs / R (the loop body may hold several trips).

which is the number issue #16 asks to be at most 1.5 at NB = 8: on a
Maxwell SM an FFMA and a decode instruction cost the same issue slot.
Standard library only.
"""
import argparse
import bisect
import re
import subprocess
import sys


def inputs_of(name, nb_max):
    """Inputs per launch: NB of a batched kernel (_nb<NB>), the most of a
    kernel told its batch at launch (_n: counted with every input there),
    1 of a single-row one (_rpb<N>), None otherwise."""
    m = re.search(r"_nb(\d+)$", name)
    if m:
        return int(m.group(1))
    if re.search(r"_n$", name):
        return nb_max
    return 1 if re.search(r"_rpb\d+$", name) else None


def define(src, name):
    return int(re.search(r"#define " + name + r" +(\d+)", src).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cuobjdump", default="cuobjdump")
    ap.add_argument("fatbin")
    ap.add_argument("regex", nargs="?", default=r"m40_gemvb?_")
    ap.add_argument("--parts", type=int, default=None)
    a = ap.parse_args()
    kernels = __file__.rsplit("/scripts/", 1)[0] + "/kernels/"
    if a.parts is None:
        a.parts = define(open(kernels + "gemv_common.cuh").read(), "M40_GEMV_PARTS")
    batch_src = open(kernels + "gemv_batch.cu").read()
    nb_max = define(batch_src, "M40_GEMVB_MAX_NB")
    out = subprocess.run([a.cuobjdump, "-sass", a.fatbin], capture_output=True, text=True,
                         check=True).stdout
    for func in re.split(r"\n\s+Function : ", out)[1:]:
        name = func.split("\n", 1)[0].strip()
        if not re.search(a.regex, name):
            continue
        ins = []
        for line in func.split("\n"):
            m = re.match(r"\s+/\*([0-9a-f]{4,})\*/\s+\{?\s*(@!?P\d\s+)?([A-Z0-9_.]+)(.*)", line)
            if m:
                ins.append((int(m.group(1), 16), m.group(3).split(".")[0], m.group(4)))
        addrs = [addr for addr, _, _ in ins]
        best = None
        for i, (addr, op, rest) in enumerate(ins):
            m = re.search(r"0x([0-9a-f]+)", rest)
            if op == "BRA" and m and int(m.group(1), 16) < addr:
                # a target may be a control word's address: the next instruction
                body = ins[bisect.bisect_left(addrs, int(m.group(1), 16)):i + 1]
                n_ffma = sum(1 for x in body if x[1] == "FFMA")
                if best is None or n_ffma > best[0]:
                    best = (n_ffma, body)
        nb = inputs_of(name, nb_max)
        if not best or not nb:
            print(f"{name}: no main loop found")
            continue
        n_ffma, body = best
        # weights a thread takes per row and trip (E) and rows (R): from the
        # name or the source where they say, else R from the FFMAs (one per
        # weight and input; a share may begin with an FMUL, which it misses)
        m = re.search(r"_rpb(\d+)$", name)
        if re.search(r"_q[48]_0r(8|16)?_|_q6_kr(8|16)?_", name):
            e = 8 if "_q6_kr" in name else 32 // a.parts  # Q6_K: always 4 parts
            r8 = "r8_nb" in name or "r16_nb" in name
            r = int(m.group(1)) if m else define(batch_src, "M40_GEMVB_R8" if r8 else "M40_GEMVB_R")
        elif re.search(r"_q4_k_(nb|v_rpb)", name):
            # one PRMT decodes each weight of the loop body, which may hold
            # several trips (M40_GEMVB_R_Q4_K: 8 rows up to 4 inputs, 4 above)
            r = int(m.group(1)) if m else (8 if nb <= 4 else 4)
            e = sum(1 for x in body if x[1] == "PRMT") // r
        else:
            e = 8 if re.search(r"_b?f16_v_", name) else 32  # a 16-byte chunk, or a group
            if m:
                r = int(m.group(1))
            elif re.search(r"_n$", name):
                r = define(batch_src, "M40_GEMVB_R_HALF" if e == 8 else "M40_GEMVB_R_GROUP")
            else:
                r = max(1, n_ffma // (e * nb))
        ops = {}
        for _, op, _ in body:
            ops[op] = ops.get(op, 0) + 1
        top = ", ".join(f"{k} {v}" for k, v in sorted(ops.items(), key=lambda x: -x[1])[:6])
        per = len(body) / (e * r * nb)
        print(f"{name}: R={r} NB={nb} E={e}: loop {len(body)} instructions, "
              f"{per:.2f} per weight per input ({top})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
