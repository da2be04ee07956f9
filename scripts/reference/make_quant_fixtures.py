#!/usr/bin/env python3
"""Reference fixtures for src/quant/ (tests/test_quant.c), computed outside m40-llm.

Writes tests/fixtures/quant/*.bin. Nothing here uses m40-llm's own C code: the
expected bytes and floats come from

  * the gguf Python package (gguf.quants, NumPy), for every dequantization it
    implements (IQ4_NL, IQ4_XS and the IQ2/IQ3 grid formats included) and for quantization of F32,
    F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 (the types it can quantize);
  * GGML's own C reference quantizers (quantize_row_*_ref in ggml-quants.c),
    called through ctypes from a libggml-base.so that you build yourself (see
    below), for the types gguf cannot quantize: Q8_1, Q2_K, Q3_K, Q4_K, Q5_K,
    Q6_K, Q8_K. Without --ggml-lib those fixtures are not written. Where both
    references exist the script asserts they agree byte for byte, and it
    checks gguf's dequantized floats against GGML's dequantize_row_*;
  * a two-line NumPy formula (d * q) for the dequantization of Q8_1 and Q8_K,
    which gguf does not implement (its Q8_1 block size is also out of date:
    GGML stores d and s as FP16, 36 bytes a block).

Usage (versions pinned in requirements.txt beside this file):

    python3 -m venv /tmp/quantvenv
    /tmp/quantvenv/bin/pip install -r scripts/reference/requirements.txt
    # GGML's C reference, from the llama.cpp vendored in llama-cpp-python's sdist
    pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d /tmp/lcp
    tar xzf /tmp/lcp/llama_cpp_python-0.3.36.tar.gz -C /tmp/lcp
    cd /tmp/lcp/llama_cpp_python-0.3.36/vendor/llama.cpp
    touch ggml/ggml.pc.in   # the sdist leaves this template out
    cmake -S ggml -B /tmp/lcp/ggml-build -G Ninja -DCMAKE_BUILD_TYPE=Release \\
          -DGGML_NATIVE=OFF -DGGML_CPU=OFF -DBUILD_SHARED_LIBS=ON
    cmake --build /tmp/lcp/ggml-build --target ggml-base
    cd -
    /tmp/quantvenv/bin/python scripts/reference/make_quant_fixtures.py \\
        --ggml-lib /tmp/lcp/ggml-build/src/libggml-base.so

GGML_NATIVE=OFF matters: with -march=native the compiler may fuse a*b+c into
an FMA inside the reference's scale searches and produce different bytes.

File format (all little-endian), one file per fixture:

    offset  size        field
    0       8           magic b"M40QFIX1"
    8       4  u32      GGML type id
    12      4  u32      n, the number of elements
    16      4  u32      flags: bit 0 = an input array is present,
                        bit 1 = the expected floats are present
    20      4  u32      quant_src: how the bytes were made: 0 random valid
                        blocks, 1 gguf.quants.quantize(input),
                        2 GGML quantize_row_*_ref(input)
    24      4  u32      dequant_src: 0 none, 1 gguf.quants.dequantize,
                        2 NumPy d*q
    28      4  u32      nbytes, the size of the quantized data
    32      4*n f32     input (only when flags bit 0)
    ...     nbytes      quantized data (n elements in the type's blocks)
    ...     4*n f32     expected dequantization of those bytes (only when
                        flags bit 1)

Fixture names: <type>_quant.bin (input -> reference bytes -> floats) and
<type>_rand.bin (random valid blocks, no input -> floats). The _quant
fixtures of the searching quantizers (Q2_K .. Q6_K) have a 16384-element
input and leave the floats out to keep the directory small; their
dequantization is covered bit for bit by the _rand fixtures.
"""
import argparse
import ctypes
import struct
import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

SEED = 20250611
MAGIC = b"M40QFIX1"

QK_K = 256
# (block elements, block bytes), as GGML's ggml-common.h.
GEOMETRY = {
    T.F32: (1, 4), T.F16: (1, 2), T.BF16: (1, 2),
    T.Q4_0: (32, 18), T.Q4_1: (32, 20), T.Q5_0: (32, 22), T.Q5_1: (32, 24),
    T.Q8_0: (32, 34), T.Q8_1: (32, 36),
    T.Q2_K: (256, 84), T.Q3_K: (256, 110), T.Q4_K: (256, 144),
    T.Q5_K: (256, 176), T.Q6_K: (256, 210), T.Q8_K: (256, 292),
    # last, so that adding them left every earlier fixture's random draws as
    # they were: their fixtures are random blocks -> gguf.quants.dequantize
    T.IQ4_NL: (32, 18), T.IQ4_XS: (256, 136),
    # the grid formats (their grids: src/quant/iq_grids.c), after those
    T.IQ2_XXS: (256, 66), T.IQ2_XS: (256, 74), T.IQ2_S: (256, 82),
    T.IQ3_XXS: (256, 98), T.IQ3_S: (256, 110),
}
# Byte offsets of the FP16 scale fields in each block (random blocks get
# chosen values there so the floats stay in a sane range).
F16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q8_1: [0, 2], T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2],
    T.Q5_K: [0, 2], T.Q6_K: [208], T.IQ4_NL: [0], T.IQ4_XS: [0],
    T.IQ2_XXS: [0], T.IQ2_XS: [0], T.IQ2_S: [0], T.IQ3_XXS: [0], T.IQ3_S: [0],
}
GGUF_QUANTIZES = {T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0}
GGML_REF_NAMES = {
    T.Q4_0: "q4_0", T.Q4_1: "q4_1", T.Q5_0: "q5_0", T.Q5_1: "q5_1", T.Q8_0: "q8_0",
    T.Q8_1: "q8_1", T.Q2_K: "q2_K", T.Q3_K: "q3_K", T.Q4_K: "q4_K", T.Q5_K: "q5_K",
    T.Q6_K: "q6_K", T.Q8_K: "q8_K",
}
NUMPY_DEQUANT = {T.Q8_1, T.Q8_K}
# Quantizers with a scale search get a longer input: a search decides
# between candidates whose errors can differ in the last bits, and only many
# super-blocks make it likely that a quantizer which evaluates one
# expression in a different order (and so rounds differently) loses a tie.
SEARCH_TYPES = {T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K}
EXTRA_ROWS = 30


def make_input(rng):
    """2 rows x 512: N(0, 0.02) weights with outliers, plus special blocks.

    Row 0 keeps normal data with an all-zero 32-block (a zero sub-block
    inside a k-quant super-block). Row 1's first super-block is a gallery of
    awkward 32-blocks; its second super-block is all zero.
    """
    x = (rng.standard_normal((2, 512)) * 0.02).astype(np.float32)
    flat = x.reshape(-1)
    out = rng.choice(512, 6, replace=False)
    flat[out] *= 25.0                                   # outliers in row 0
    flat[96:128] = 0.0                                  # all-zero block
    r1 = flat[512:]
    r1[0:32] = 0.0                                      # all-zero block
    r1[32:64] = rng.uniform(0.01, 0.05, 32)             # all positive
    r1[64:96] = -rng.uniform(0.01, 0.05, 32)            # all negative
    r1[96:128] = 0.03                                   # constant
    r1[128:160] = rng.standard_normal(32) * 1e-5        # FP16-subnormal scales
    r1[160:192] = rng.standard_normal(32) * 50.0        # large values
    r1[192:224] = np.round(rng.standard_normal(32) * 4) / 8  # many exact ties
    r1[224:256] = rng.standard_normal(32) * 0.02
    r1[224] = 3.0                                       # a lone outlier
    r1[256:512] = 0.0                                   # all-zero super-block
    return x.astype(np.float32)


def extra_rows(rng, rows):
    """More 512-element rows, alternating weight-like distributions."""
    out = []
    for r in range(rows):
        kind = r % 3
        if kind == 0:       # Gaussian with a few outliers
            v = rng.standard_normal(512) * 0.02
            v[rng.choice(512, 4, replace=False)] *= 15.0
        elif kind == 1:     # heavy tails
            v = rng.standard_t(3, 512) * 0.01
        else:               # Laplace, shifted (non-zero mean exercises mins)
            v = rng.laplace(0.005, 0.015, 512)
        out.append(v)
    return np.array(out, dtype=np.float32)


def f16_specials_input(base):
    """The shared input with FP16/BF16 rounding edge cases in its first slots."""
    x = base.copy().reshape(-1)
    specials = [0.0, -0.0, np.inf, -np.inf, 65504.0, 65519.0, 65520.0, -70000.0,
                2.0 ** -24, 2.0 ** -25, 3 * 2.0 ** -25, 2.0 ** -26, 6.0e-5, 1.0e-7,
                1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, 1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8,
                3.4e38, 1.0e-40]
    x[: len(specials)] = np.array(specials, dtype=np.float32)
    return x.reshape(base.shape)


def random_blocks(rng, qtype, n):
    """Random but valid blocks: random quant bits, chosen scale fields."""
    elems, size = GEOMETRY[qtype]
    nb = n // elems
    raw = rng.integers(0, 256, (nb, size), dtype=np.uint8)
    if qtype == T.Q8_K:
        d = (rng.standard_normal(nb) * 0.01).astype(np.float32)
        d[0] = 0.0
        d[1] = -d[1]
        raw[:, 0:4] = d.view(np.uint8).reshape(nb, 4)
        return raw
    for off in F16_FIELDS[qtype]:
        v = (rng.standard_normal(nb) * 0.01).astype(np.float16)
        v[0] = 0.0                                      # a zero scale
        v[1] = np.frombuffer(b"\x03\x00", np.float16)[0]  # subnormal
        v[2] = -abs(v[2])                               # negative
        v[3] = np.float16(-0.0)
        raw[:, off:off + 2] = v.view(np.uint8).reshape(nb, 2)
    return raw


def random_plain(rng, qtype, n):
    if qtype == T.F32:
        v = (rng.standard_normal(n) * 3).astype(np.float32)
        v[:8] = [0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-40, 3.4e38, np.float32(np.nan)]
        return v.view(np.uint8)
    bits = rng.integers(0, 65536, n, dtype=np.uint16)
    if qtype == T.F16:
        # no NaNs: NumPy and GGML (x86 F16C) differ on a NaN's quiet bit, so
        # the C tests check FP16 NaNs by property instead
        nan = ((bits & 0x7C00) == 0x7C00) & ((bits & 0x03FF) != 0)
        bits[nan] &= 0xFC00
        bits[:6] = [0x0000, 0x8000, 0x7C00, 0xFC00, 0x0001, 0x7BFF]
    return bits.view(np.uint8)


def numpy_dequant(qtype, raw):
    """d * q for the two formats gguf cannot dequantize."""
    raw = raw.reshape(-1, GEOMETRY[qtype][1])
    if qtype == T.Q8_1:
        d = raw[:, 0:2].copy().view(np.float16).astype(np.float32)
        q = raw[:, 4:36].copy().view(np.int8).astype(np.float32)
    else:
        d = raw[:, 0:4].copy().view(np.float32)
        q = raw[:, 4:260].copy().view(np.int8).astype(np.float32)
    return (q * d).reshape(-1).astype(np.float32)


class Ggml:
    """GGML's C reference (de)quantizers from a libggml-base.so."""

    def __init__(self, path):
        self.lib = ctypes.CDLL(path)

    def quantize(self, qtype, x):
        fn = getattr(self.lib, f"quantize_row_{GGML_REF_NAMES[qtype]}_ref")
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        fn.restype = None
        x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
        elems, size = GEOMETRY[qtype]
        out = np.zeros(x.size // elems * size, dtype=np.uint8)
        fn(x.ctypes.data, out.ctypes.data, x.size)
        return out

    def dequantize(self, qtype, raw, n):
        name = GGML_REF_NAMES[qtype]
        if qtype == T.Q8_1:
            return None  # GGML has no dequantize_row_q8_1
        fn = getattr(self.lib, f"dequantize_row_{name}")
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        fn.restype = None
        raw = np.ascontiguousarray(raw, dtype=np.uint8)
        out = np.zeros(n, dtype=np.float32)
        fn(raw.ctypes.data, out.ctypes.data, n)
        return out


def dequantize(qtype, raw, n):
    if qtype in NUMPY_DEQUANT:
        return numpy_dequant(qtype, raw), 2
    out = quants.dequantize(raw.reshape(1, -1), qtype).astype(np.float32).reshape(-1)
    assert out.size == n
    return out, 1


def write_fixture(path, qtype, n, x, raw, quant_src, deq, deq_src):
    raw = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1)
    elems, size = GEOMETRY[qtype]
    assert raw.size == n // elems * size, (qtype.name, raw.size)
    flags = (1 if x is not None else 0) | (2 if deq is not None else 0)
    with open(path, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<6I", int(qtype), n, flags, quant_src, deq_src, raw.size))
        if x is not None:
            f.write(np.ascontiguousarray(x, dtype="<f4").tobytes())
        f.write(raw.tobytes())
        if deq is not None:
            f.write(np.ascontiguousarray(deq, dtype="<f4").tobytes())


def same_bits(a, b):
    return np.array_equal(np.asarray(a, np.float32).view(np.uint32),
                          np.asarray(b, np.float32).view(np.uint32))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[2]
                                         / "tests" / "fixtures" / "quant"))
    ap.add_argument("--ggml-lib", help="path to libggml-base.so (GGML's C reference)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ggml = Ggml(args.ggml_lib) if args.ggml_lib else None

    rng = np.random.default_rng(SEED)
    base = make_input(rng)
    longer = np.concatenate([base, extra_rows(rng, EXTRA_ROWS)])
    written = []
    for qtype in GEOMETRY:
        name = qtype.name.lower().replace("_k", "_K")
        # input -> reference bytes -> reference floats
        x = f16_specials_input(base) if qtype in (T.F16, T.BF16) else base
        if qtype in SEARCH_TYPES:
            x = longer
        n = x.size
        raw, src = None, 0
        if qtype in GGUF_QUANTIZES:
            with np.errstate(over="ignore"):
                raw = quants.quantize(x, qtype).view(np.uint8).reshape(-1)
            src = 1
            if ggml and qtype in GGML_REF_NAMES:
                assert np.array_equal(raw, ggml.quantize(qtype, x)), f"gguf != GGML: {name}"
        elif ggml:
            raw, src = ggml.quantize(qtype, x), 2
        if raw is not None:
            deq, dsrc = dequantize(qtype, raw, n)
            if qtype in SEARCH_TYPES:
                deq, dsrc = None, 0
            write_fixture(out / f"{name}_quant.bin", qtype, n, x, raw, src, deq, dsrc)
            written.append(f"{name}_quant.bin")
        # random valid blocks -> reference floats
        rn = 2048 if GEOMETRY[qtype][0] == QK_K else base.size
        if GEOMETRY[qtype][0] == 1:
            rraw = random_plain(rng, qtype, rn)
        else:
            rraw = random_blocks(rng, qtype, rn).reshape(-1)
        deq, dsrc = dequantize(qtype, rraw, rn)
        if ggml and qtype in GGML_REF_NAMES:
            ref = ggml.dequantize(qtype, rraw, rn)
            assert ref is None or same_bits(ref, deq), f"gguf != GGML dequant: {name}"
        write_fixture(out / f"{name}_rand.bin", qtype, rn, None, rraw, 0, deq, dsrc)
        written.append(f"{name}_rand.bin")
    total = sum((out / w).stat().st_size for w in written)
    print(f"wrote {len(written)} fixtures ({total} bytes) to {out}")
    if not ggml:
        print("note: no --ggml-lib, so no _quant fixtures for q8_1 and the k-quants",
              file=sys.stderr)


if __name__ == "__main__":
    main()
