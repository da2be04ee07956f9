/* test_quant.c - GGML block formats against independent references.
 *
 * Usage: test_quant FIXTURE_DIR (tests/fixtures/quant, made by
 * scripts/reference/make_quant_fixtures.py from the gguf Python package and
 * GGML's C reference quantizers; the file format is described there).
 *
 * For every fixture with expected floats: our dequantization of the
 * reference bytes must equal them bit for bit (the float operations are the
 * same ones in the same order, so no tolerance is needed), also when the
 * bytes sit at an odd address and when decoded a block range at a time. For
 * every _quant fixture (bytes from gguf's or GGML's reference quantizer):
 * our quantization of the same input must give the same bytes. Then round-trip error bounds on a
 * larger input, FP16/BF16 edge cases and the argument checks.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "check.h"
#include "quant/fp16.h"
#include "quant/quant.h"
#include "quant/quant_impl.h"

/* The kernels' copy of the IQ grids, read here as plain C arrays. */
#define __device__
#include "../kernels/iq_grids.cuh"
#undef __device__

/* ---------------------------------------------------------------- fixtures */

typedef struct fixture {
    uint32_t type, n, flags, quant_src, dequant_src, nbytes;
    float *input;   /* n floats, or NULL */
    uint8_t *bytes; /* nbytes */
    float *expect;  /* n floats, or NULL */
} fixture;

static void fixture_free(fixture *f) {
    free(f->input);
    free(f->bytes);
    free(f->expect);
    memset(f, 0, sizeof *f);
}

static int read_exact(FILE *fp, void *dst, size_t n) {
    return fread(dst, 1, n, fp) == n ? 0 : -1;
}

/* Loads dir/name; prints why and returns -1 when it cannot. */
static int fixture_load(const char *dir, const char *name, fixture *f) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "missing fixture %s (run scripts/reference/make_quant_fixtures.py)\n",
                path);
        return -1;
    }
    char magic[8];
    uint32_t h[6];
    int rc = -1;
    if (read_exact(fp, magic, 8) || memcmp(magic, "M40QFIX1", 8) || read_exact(fp, h, sizeof h))
        goto done;
    f->type = h[0], f->n = h[1], f->flags = h[2], f->quant_src = h[3], f->dequant_src = h[4];
    f->nbytes = h[5];
    if (f->n == 0 || f->n > (1u << 24) || f->nbytes > (1u << 26))
        goto done;
    f->bytes = malloc(f->nbytes);
    if (f->flags & 1)
        f->input = malloc((size_t)f->n * sizeof(float));
    if (f->flags & 2)
        f->expect = malloc((size_t)f->n * sizeof(float));
    if (!f->bytes || ((f->flags & 1) && !f->input) || ((f->flags & 2) && !f->expect))
        goto done;
    if ((f->input && read_exact(fp, f->input, (size_t)f->n * sizeof(float))) ||
        read_exact(fp, f->bytes, f->nbytes) ||
        (f->expect && read_exact(fp, f->expect, (size_t)f->n * sizeof(float))) || fgetc(fp) != EOF)
        goto done;
    rc = 0;
done:
    fclose(fp);
    if (rc) {
        fprintf(stderr, "bad fixture %s\n", path);
        fixture_free(f);
    }
    return rc;
}

/* Compares float bit patterns (so -0 != 0 and NaN payloads count), printing
 * the first difference. */
static int same_floats(const char *what, const float *got, const float *want, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t a, b;
        memcpy(&a, &got[i], 4);
        memcpy(&b, &want[i], 4);
        if (a != b) {
            fprintf(stderr, "%s: element %zu is %.9g (0x%08x), want %.9g (0x%08x)\n", what, i,
                    (double)got[i], a, (double)want[i], b);
            return 0;
        }
    }
    return 1;
}

static int same_bytes(const char *what, const uint8_t *got, const uint8_t *want, size_t n,
                      size_t block_bytes) {
    for (size_t i = 0; i < n; i++) {
        if (got[i] != want[i]) {
            fprintf(stderr, "%s: byte %zu (block %zu, offset %zu) is 0x%02x, want 0x%02x\n", what,
                    i, i / block_bytes, i % block_bytes, got[i], want[i]);
            return 0;
        }
    }
    return 1;
}

static void check_dequant(const fixture *f, const char *name) {
    const m40_ggml_type_info *t = m40_ggml_type_get(f->type);
    CHECK(t != NULL);
    if (!t)
        return;
    CHECK(m40_ggml_row_bytes(f->type, f->n) == f->nbytes);
    float *got = malloc((size_t)f->n * sizeof(float));
    uint8_t *odd = malloc((size_t)f->nbytes + 1);
    m40_err err = {0};
    CHECK(got && odd);
    if (!got || !odd)
        goto done;

    /* whole row */
    CHECK(m40_dequantize_row(f->type, f->bytes, got, f->n, &err) == 0);
    CHECK(same_floats(name, got, f->expect, f->n));

    /* from an odd address (blocks in a file have no alignment) */
    memcpy(odd + 1, f->bytes, f->nbytes);
    memset(got, 0, (size_t)f->n * sizeof(float));
    CHECK(m40_dequantize_row(f->type, odd + 1, got, f->n, &err) == 0);
    CHECK(same_floats(name, got, f->expect, f->n));

    /* a block range at a time: ranges of 1, 2, 3, ... blocks */
    const int64_t nb = f->n / t->block_elems;
    memset(got, 0, (size_t)f->n * sizeof(float));
    int ok = 1;
    for (int64_t b = 0, len = 1; b < nb; b += len, len++) {
        const int64_t cnt = b + len <= nb ? len : nb - b;
        ok &= m40_dequantize_blocks(f->type, f->bytes, b, cnt, got + b * t->block_elems, &err) == 0;
    }
    CHECK(ok);
    CHECK(same_floats(name, got, f->expect, f->n));
done:
    free(got);
    free(odd);
}

static void check_quant(const fixture *f, const char *name) {
    const m40_ggml_type_info *t = m40_ggml_type_get(f->type);
    uint8_t *got = calloc(1, (size_t)f->nbytes + 1);
    m40_err err = {0};
    CHECK(got != NULL);
    if (!got || !t)
        goto done;
    CHECK(m40_quantize_row(f->type, f->input, got, f->n, &err) == 0);
    CHECK(same_bytes(name, got, f->bytes, f->nbytes, t->block_bytes));
    /* and into an odd address */
    memset(got, 0, (size_t)f->nbytes + 1);
    CHECK(m40_quantize_row(f->type, f->input, got + 1, f->n, &err) == 0);
    CHECK(same_bytes(name, got + 1, f->bytes, f->nbytes, t->block_bytes));
done:
    free(got);
}

static const char *const k_types_tested[] = {
    "f32",  "f16",  "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0",
    "q8_1", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "q8_K",
};
#define N_TYPES (sizeof k_types_tested / sizeof k_types_tested[0])

/* Types m40-llm dequantizes but does not quantize: a _rand fixture only. */
static const char *const k_dequant_only[] = {"iq4_nl", "iq4_xs",  "iq2_xxs", "iq2_xs",
                                             "iq2_s",  "iq3_xxs", "iq3_s"};

/* Every type has a _rand fixture (random valid blocks) and a _quant fixture
 * (reference quantizer output); the _quant ones must come from a reference
 * quantizer, not random bytes, or the quantize check would be empty. */
static void test_fixtures(const char *dir) {
    for (size_t i = 0; i < N_TYPES; i++) {
        static const char *const kinds[] = {"rand", "quant"};
        for (int k = 0; k < 2; k++) {
            char name[64];
            snprintf(name, sizeof name, "%s_%s.bin", k_types_tested[i], kinds[k]);
            fixture f;
            CHECK(fixture_load(dir, name, &f) == 0);
            if (!f.bytes)
                continue;
            CHECK(strcmp(m40_ggml_type_name(f.type), k_types_tested[i]) == 0);
            /* every _rand fixture has floats; a _quant one may leave them out */
            CHECK(f.expect != NULL || k == 1);
            if (f.expect)
                check_dequant(&f, name);
            if (k == 1) {
                CHECK(f.input != NULL && f.quant_src != 0);
                if (f.input)
                    check_quant(&f, name);
            }
            fixture_free(&f);
        }
    }
    /* random valid blocks -> the gguf package's floats, bit for bit */
    for (size_t i = 0; i < sizeof k_dequant_only / sizeof k_dequant_only[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s_rand.bin", k_dequant_only[i]);
        fixture f;
        CHECK(fixture_load(dir, name, &f) == 0);
        if (!f.bytes)
            continue;
        CHECK(strcmp(m40_ggml_type_name(f.type), k_dequant_only[i]) == 0);
        CHECK(f.expect != NULL && f.dequant_src == 1);
        if (f.expect)
            check_dequant(&f, name);
        fixture_free(&f);
    }
}

/* -------------------------------------------------------------- round trip */

/* A small deterministic generator (splitmix64) and Box-Muller normals, so
 * the round-trip input does not depend on the C library. */
static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_uniform(uint64_t *s) {
    return ((double)(rng_next(s) >> 11) + 0.5) * 0x1p-53;
}

static void fill_weights(float *x, int64_t n, uint64_t seed) {
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i++) {
        const double u = rng_uniform(&s), v = rng_uniform(&s);
        x[i] = (float)(0.02 * sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
    }
    for (int64_t i = 0; i < n; i += 997) /* sparse outliers, as real weights have */
        x[i] *= 12.0f;
}

typedef struct rt_case {
    uint32_t type;
    double max_rel_rms; /* bound on RMS(error) / RMS(input) */
} rt_case;

/* Bounds sit about 25% above what the GGML reference quantizers reach on
 * this input (measured: f16 0.0002, bf16 0.0016, q8_0 0.0064, q5_0 0.049,
 * q5_1 0.040, q4_0 0.098, q4_1 0.082, q8_K 0.0125 (one scale per 256 with
 * outliers), q6_K 0.020, q5_K 0.038, q4_K 0.075, q3_K 0.158, q2_K 0.297),
 * so a quantizer that is merely "not broken" but clearly worse than GGML's
 * fails too. */
static const rt_case k_round_trip[] = {
    {M40_GGML_F32, 0.0},     {M40_GGML_F16, 0.00025}, {M40_GGML_BF16, 0.0021},
    {M40_GGML_Q8_0, 0.0080}, {M40_GGML_Q8_1, 0.0080}, {M40_GGML_Q5_0, 0.062},
    {M40_GGML_Q5_1, 0.050},  {M40_GGML_Q4_0, 0.123},  {M40_GGML_Q4_1, 0.103},
    {M40_GGML_Q8_K, 0.016},  {M40_GGML_Q6_K, 0.025},  {M40_GGML_Q5_K, 0.048},
    {M40_GGML_Q4_K, 0.094},  {M40_GGML_Q3_K, 0.198},  {M40_GGML_Q2_K, 0.372},
};

static void test_round_trip(void) {
    const int64_t n = 64 * 256;
    float *x = malloc((size_t)n * sizeof(float));
    float *y = malloc((size_t)n * sizeof(float));
    uint8_t *q = malloc((size_t)n * 4);
    CHECK(x && y && q);
    if (!x || !y || !q)
        goto done;
    fill_weights(x, n, 1234);
    for (size_t c = 0; c < sizeof k_round_trip / sizeof k_round_trip[0]; c++) {
        const rt_case *rc = &k_round_trip[c];
        m40_err err = {0};
        CHECK(m40_quantize_row(rc->type, x, q, n, &err) == 0);
        CHECK(m40_dequantize_row(rc->type, q, y, n, &err) == 0);
        double se = 0, sx = 0;
        for (int64_t i = 0; i < n; i++) {
            se += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
            sx += (double)x[i] * x[i];
        }
        const double rel = sqrt(se / sx);
        printf("round trip %-5s relative RMS error %.5f (bound %.5f)\n",
               m40_ggml_type_name(rc->type), rel, rc->max_rel_rms);
        if (!(rel <= rc->max_rel_rms))
            fprintf(stderr, "round trip %s: relative RMS error %.5f above %.5f\n",
                    m40_ggml_type_name(rc->type), rel, rc->max_rel_rms);
        CHECK(rel <= rc->max_rel_rms);
    }
done:
    free(x);
    free(y);
    free(q);
}

/* ------------------------------------------------------------- fp16, bf16 */

static uint32_t bits(float f) {
    return m40_f32_bits(f);
}

static void test_fp16_to_fp32(void) {
    CHECK(bits(m40_fp16_to_fp32(0x0000)) == 0x00000000u);
    CHECK(bits(m40_fp16_to_fp32(0x8000)) == 0x80000000u); /* -0 */
    CHECK(m40_fp16_to_fp32(0x3c00) == 1.0f);
    CHECK(m40_fp16_to_fp32(0xc000) == -2.0f);
    CHECK(m40_fp16_to_fp32(0x7bff) == 65504.0f);
    CHECK(m40_fp16_to_fp32(0x0400) == 0x1p-14f);        /* smallest normal */
    CHECK(m40_fp16_to_fp32(0x0001) == 0x1p-24f);        /* smallest subnormal */
    CHECK(m40_fp16_to_fp32(0x03ff) == 1023 * 0x1p-24f); /* largest subnormal */
    CHECK(m40_fp16_to_fp32(0x8001) == -0x1p-24f);
    CHECK(bits(m40_fp16_to_fp32(0x7c00)) == 0x7f800000u); /* inf */
    CHECK(bits(m40_fp16_to_fp32(0xfc00)) == 0xff800000u);
    /* NaN stays NaN, keeps sign and payload, comes out quiet */
    CHECK(bits(m40_fp16_to_fp32(0x7e00)) == 0x7fc00000u);
    CHECK(bits(m40_fp16_to_fp32(0x7c01)) == 0x7fc02000u);
    CHECK(bits(m40_fp16_to_fp32(0xfd55)) == (0xff800000u | 0x00400000u | (0x155u << 13)));
}

/* Every FP16 value converts to FP32 and back to itself (NaNs: to a NaN). */
static void test_fp16_exhaustive(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = m40_fp16_to_fp32((uint16_t)h);
        const uint16_t back = m40_fp32_to_fp16(f);
        const int is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (is_nan ? (back & 0x7fff) != 0x7e00 || (back & 0x8000) != (h & 0x8000) : back != h)
            bad++;
    }
    CHECK(bad == 0);
}

/* Every FP16 value's FP32 bits, the scalar and the row conversion alike,
 * against the format's definition: (-1)^s 2^(e-15) (1 + m/1024), or
 * m 2^-24 when e is 0; e 31 is inf, or a NaN whose payload moves up 13
 * bits with the quiet bit set. */
static void test_fp16_to_fp32_definition(void) {
    static uint16_t h[65536];
    static float row[65536];
    for (uint32_t i = 0; i < 65536; i++)
        h[i] = (uint16_t)i;
    m40_fp16_to_fp32_row(h, row, 65536);
    int bad = 0;
    for (uint32_t i = 0; i < 65536; i++) {
        const uint32_t s = i >> 15, e = (i >> 10) & 31, m = i & 1023;
        uint32_t want;
        if (e == 31) {
            want = (s << 31) | 0x7f800000u | (m << 13) | (m ? 0x00400000u : 0u);
        } else {
            const double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, (int)e - 25);
            want = bits((float)(s ? -v : v)); /* exact: 11 significant bits */
        }
        bad += bits(m40_fp16_to_fp32((uint16_t)i)) != want || bits(row[i]) != want;
    }
    CHECK(bad == 0);
}

static void test_fp32_to_fp16(void) {
    CHECK(m40_fp32_to_fp16(0.0f) == 0x0000);
    CHECK(m40_fp32_to_fp16(-0.0f) == 0x8000);
    CHECK(m40_fp32_to_fp16(1.0f) == 0x3c00);
    CHECK(m40_fp32_to_fp16(65504.0f) == 0x7bff);
    CHECK(m40_fp32_to_fp16(65519.996f) == 0x7bff); /* just below the half-way point */
    CHECK(m40_fp32_to_fp16(65520.0f) == 0x7c00);   /* ties to even: to inf */
    CHECK(m40_fp32_to_fp16(1e6f) == 0x7c00);
    CHECK(m40_fp32_to_fp16(-1e6f) == 0xfc00);
    CHECK(m40_fp32_to_fp16(3.4e38f) == 0x7c00);
    CHECK(m40_fp32_to_fp16(m40_f32_from_bits(0x7f800000u)) == 0x7c00);
    CHECK(m40_fp32_to_fp16(m40_f32_from_bits(0xff800000u)) == 0xfc00);
    CHECK(m40_fp32_to_fp16(m40_f32_from_bits(0x7fc00000u)) == 0x7e00); /* NaN */
    CHECK(m40_fp32_to_fp16(m40_f32_from_bits(0xff800001u)) == 0xfe00); /* -sNaN */
    /* ties to even among normals: 1 + 2^-11 is half-way between 1 and the
     * next FP16 (1 + 2^-10) and goes to 1 (even); 1 + 3*2^-11 goes up */
    CHECK(m40_fp32_to_fp16(1.0f + 0x1p-11f) == 0x3c00);
    CHECK(m40_fp32_to_fp16(1.0f + 3 * 0x1p-11f) == 0x3c02);
    CHECK(m40_fp32_to_fp16(1.0f + 0x1p-11f + 0x1p-20f) == 0x3c01); /* above half: up */
    /* rounding that carries into the exponent */
    CHECK(m40_fp32_to_fp16(2047.9f) == 0x6800); /* 2048 */
    /* subnormals */
    CHECK(m40_fp32_to_fp16(0x1p-24f) == 0x0001);
    CHECK(m40_fp32_to_fp16(0x1p-25f) == 0x0000);     /* tie: to even (0) */
    CHECK(m40_fp32_to_fp16(3 * 0x1p-25f) == 0x0002); /* tie: to even (2) */
    CHECK(m40_fp32_to_fp16(0x1p-25f + 0x1p-40f) == 0x0001);
    CHECK(m40_fp32_to_fp16(0x1p-26f) == 0x0000);
    CHECK(m40_fp32_to_fp16(-0x1p-24f) == 0x8001);
    CHECK(m40_fp32_to_fp16(1023.5f * 0x1p-24f) == 0x0400); /* rounds up to the smallest normal */
    CHECK(m40_fp32_to_fp16(1e-40f) == 0x0000);             /* FP32 subnormal */
    CHECK(m40_fp32_to_fp16(0x1p-14f) == 0x0400);
}

static void test_bf16(void) {
    CHECK(m40_bf16_to_fp32(0x3f80) == 1.0f);
    CHECK(bits(m40_bf16_to_fp32(0x8000)) == 0x80000000u);
    CHECK(bits(m40_bf16_to_fp32(0x0001)) == 0x00010000u); /* subnormal, exact */
    CHECK(bits(m40_bf16_to_fp32(0x7f81)) == 0x7f810000u); /* NaN passes through */
    CHECK(m40_fp32_to_bf16(1.0f) == 0x3f80);
    CHECK(m40_fp32_to_bf16(-0.0f) == 0x8000);
    CHECK(m40_fp32_to_bf16(m40_f32_from_bits(0x3f808000u)) == 0x3f80); /* tie: to even */
    CHECK(m40_fp32_to_bf16(m40_f32_from_bits(0x3f818000u)) == 0x3f82); /* tie: to even */
    CHECK(m40_fp32_to_bf16(m40_f32_from_bits(0x3f808001u)) == 0x3f81); /* above half */
    CHECK(m40_fp32_to_bf16(m40_f32_from_bits(0x7f7fffffu)) == 0x7f80); /* FLT_MAX: inf */
    CHECK(m40_fp32_to_bf16(m40_f32_from_bits(0x7f800000u)) == 0x7f80);
    CHECK(m40_fp32_to_bf16(m40_f32_from_bits(0x00018000u)) == 0x0002); /* subnormal, kept */
    CHECK(m40_fp32_to_bf16(m40_f32_from_bits(0x7f800001u)) == 0x7fc0); /* sNaN: quiet */
    CHECK(m40_fp32_to_bf16(m40_f32_from_bits(0xffc12345u)) == 0xffc1); /* NaN: no rounding */
}

/* An oracle for FP32 -> FP16/BF16 that shares nothing with the bit tricks
 * of fp16.h: binary-search the ordered non-negative codes 0..max_finite
 * for the last one not above |f|, then pick the nearer neighbour in
 * double, ties to the even code. The code after max_finite is inf, worth
 * inf_at for rounding (the value the next binade would start at). */
typedef float (*decode_fn)(uint16_t);

static uint16_t oracle_round(float f, decode_fn dec, uint32_t max_finite, double inf_at) {
    const double a = fabs((double)f);
    uint32_t lo = 0, hi = max_finite;
    while (lo < hi) {
        const uint32_t mid = (lo + hi + 1) / 2;
        if ((double)dec((uint16_t)mid) <= a)
            lo = mid;
        else
            hi = mid - 1;
    }
    const double below = a - (double)dec((uint16_t)lo);
    const double above = (lo == max_finite ? inf_at : (double)dec((uint16_t)(lo + 1))) - a;
    const uint32_t c = below < above ? lo : below > above ? lo + 1 : lo + (lo & 1u);
    return (uint16_t)((signbit(f) ? 0x8000u : 0u) | c);
}

static int sweep_against_oracle(const char *what, uint16_t (*enc)(float), decode_fn dec,
                                uint32_t max_finite, double inf_at) {
    int bad = 0;
    /* a stride through all FP32 bit patterns (NaNs skipped) */
    for (uint64_t u = 0; u < (1ull << 32); u += 4099) {
        const float f = m40_f32_from_bits((uint32_t)u);
        if (isnan(f))
            continue;
        bad += enc(f) != oracle_round(f, dec, max_finite, inf_at);
    }
    /* every half-way point between neighbouring codes, and one FP32 ulp
     * either side of it (exact in FP32: one more bit than the code has) */
    for (uint32_t c = 0; c <= max_finite; c++) {
        const double hi = c == max_finite ? inf_at : (double)dec((uint16_t)(c + 1));
        const float mid = (float)(((double)dec((uint16_t)c) + hi) / 2);
        const float probes[3] = {mid, nextafterf(mid, 0.0f), nextafterf(mid, INFINITY)};
        for (int k = 0; k < 3; k++) {
            bad += enc(probes[k]) != oracle_round(probes[k], dec, max_finite, inf_at);
            bad += enc(-probes[k]) != oracle_round(-probes[k], dec, max_finite, inf_at);
        }
    }
    if (bad)
        fprintf(stderr, "%s: %d conversions differ from the oracle\n", what, bad);
    return bad == 0;
}

static void test_rounding_sweeps(void) {
    CHECK(sweep_against_oracle("fp32->fp16", m40_fp32_to_fp16, m40_fp16_to_fp32, 0x7bff, 65536.0));
    CHECK(sweep_against_oracle("fp32->bf16", m40_fp32_to_bf16, m40_bf16_to_fp32, 0x7f7f, 0x1p128));
}

static void test_row_converters_unaligned(void) {
    const float in[5] = {1.0f, -2.5f, 65504.0f, 0x1p-24f, -0.0f};
    const uint16_t want[5] = {0x3c00, 0xc100, 0x7bff, 0x0001, 0x8000};
    uint8_t buf[11];
    float back[5];
    m40_fp32_to_fp16_row(in, buf + 1, 5);
    int ok = 1;
    for (int i = 0; i < 5; i++) {
        uint16_t h;
        memcpy(&h, buf + 1 + 2 * i, 2);
        ok &= h == want[i];
    }
    CHECK(ok);
    m40_fp16_to_fp32_row(buf + 1, back, 5);
    CHECK(memcmp(back, in, sizeof in) == 0);
    m40_fp32_to_bf16_row(in, buf + 1, 5);
    m40_bf16_to_fp32_row(buf + 1, back, 5);
    CHECK(back[0] == 1.0f && back[1] == -2.5f && back[3] == 0x1p-24f);
}

/* ------------------------------------------------------- format invariants */

/* quant_impl.h's block sizes agree with the type table. */
static void test_block_sizes(void) {
    static const struct {
        uint32_t type;
        uint32_t bytes;
    } k[] = {
        {M40_GGML_Q4_0, M40_Q4_0_BYTES},     {M40_GGML_Q4_1, M40_Q4_1_BYTES},
        {M40_GGML_Q5_0, M40_Q5_0_BYTES},     {M40_GGML_Q5_1, M40_Q5_1_BYTES},
        {M40_GGML_Q8_0, M40_Q8_0_BYTES},     {M40_GGML_Q8_1, M40_Q8_1_BYTES},
        {M40_GGML_Q2_K, M40_Q2_K_BYTES},     {M40_GGML_Q3_K, M40_Q3_K_BYTES},
        {M40_GGML_Q4_K, M40_Q4_K_BYTES},     {M40_GGML_Q5_K, M40_Q5_K_BYTES},
        {M40_GGML_Q6_K, M40_Q6_K_BYTES},     {M40_GGML_Q8_K, M40_Q8_K_BYTES},
        {M40_GGML_IQ4_NL, M40_IQ4_NL_BYTES}, {M40_GGML_IQ4_XS, M40_IQ4_XS_BYTES},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        CHECK(m40_ggml_type_get(k[i].type)->block_bytes == k[i].bytes);
}

/* Q8_1's s is d * sum(q); Q8_K's bsums are sums of 16 quants. */
static void test_q8_sums(void) {
    float x[256];
    uint8_t q[292 * 1];
    fill_weights(x, 256, 77);
    m40_err err = {0};
    CHECK(m40_quantize_row(M40_GGML_Q8_1, x, q, 32, &err) == 0);
    int sum = 0;
    float amax = 0;
    for (int j = 0; j < 32; j++) {
        sum += (int8_t)q[M40_Q8_1_QS + j];
        amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
    }
    /* GGML forms s from the FP32 scale, before d is rounded to FP16 */
    const float d = amax / 127;
    CHECK(m40_load_f16(q) == m40_fp16_to_fp32(m40_fp32_to_fp16(d)));
    CHECK(m40_load_f16(q + M40_Q8_1_S) == m40_fp16_to_fp32(m40_fp32_to_fp16((float)sum * d)));

    CHECK(m40_quantize_row(M40_GGML_Q8_K, x, q, 256, &err) == 0);
    int ok = 1;
    for (int j = 0; j < 16; j++) {
        int s = 0;
        int16_t b;
        for (int i = 0; i < 16; i++)
            s += (int8_t)q[M40_Q8_K_QS + 16 * j + i];
        memcpy(&b, q + M40_Q8_K_BSUMS + 2 * j, 2);
        ok &= b == s;
    }
    CHECK(ok);
}

/* Blocks are independent: quantizing two rows in one call is quantizing
 * each row. */
static void test_rows_are_independent(void) {
    const int64_t n = 512;
    float x[1024];
    uint8_t a[2 * 2 * 210], b[2 * 2 * 210];
    m40_err err = {0};
    fill_weights(x, 1024, 9);
    CHECK(m40_quantize_row(M40_GGML_Q6_K, x, a, 2 * n, &err) == 0);
    CHECK(m40_quantize_row(M40_GGML_Q6_K, x, b, n, &err) == 0);
    CHECK(m40_quantize_row(M40_GGML_Q6_K, x + n, b + 2 * 210, n, &err) == 0);
    CHECK(memcmp(a, b, sizeof a) == 0);
}

/* ------------------------------------------------------------- arguments */

static void test_errors(void) {
    float x[512] = {0};
    uint8_t q[2048] = {0};
    m40_err err = {0};

    CHECK(m40_dequantize_row(M40_GGML_Q4_K, q, x, 100, &err) == -1);
    CHECK_CONTAINS(err.msg, "q4_K");
    CHECK_CONTAINS(err.msg, "100 elements");
    CHECK_CONTAINS(err.msg, "256");
    CHECK(m40_quantize_row(M40_GGML_Q4_0, x, q, 33, &err) == -1);
    CHECK_CONTAINS(err.msg, "q4_0");
    CHECK(m40_quantize_row(M40_GGML_Q8_0, x, q, -32, &err) == -1);
    CHECK(m40_dequantize_row(M40_GGML_IQ1_S, q, x, 256, &err) == -1);
    CHECK_CONTAINS(err.msg, "iq1_s");
    CHECK_CONTAINS(err.msg, "not supported");
    CHECK(m40_quantize_row(M40_GGML_I32, x, q, 4, &err) == -1);
    CHECK_CONTAINS(err.msg, "i32");
    CHECK(m40_dequantize_row(4, q, x, 32, &err) == -1); /* removed Q4_2 */
    CHECK(m40_dequantize_row(999, q, x, 32, &err) == -1);
    CHECK_CONTAINS(err.msg, "unknown");
    CHECK(m40_dequantize_blocks(M40_GGML_Q8_0, q, -1, 1, x, &err) == -1);
    CHECK(m40_dequantize_blocks(M40_GGML_Q8_0, q, 0, -1, x, &err) == -1);
    CHECK(m40_dequantize_blocks(M40_GGML_IQ1_M, q, 0, 1, x, &err) == -1);
    CHECK(m40_quantize_row(M40_GGML_IQ4_XS, x, q, 256, &err) == -1); /* dequantize only */
    CHECK(m40_dequantize_row(M40_GGML_Q4_K, q, x, 0, &err) == 0);    /* empty is fine */
    CHECK(m40_quantize_row(M40_GGML_Q4_K, x, q, 0, &err) == 0);
    CHECK(m40_dequantize_row(M40_GGML_Q8_0, q, x, 32, NULL) == 0);
    CHECK(m40_dequantize_row(M40_GGML_Q8_0, q, x, 31, NULL) == -1); /* NULL err allowed */

    CHECK(m40_quant_can_quantize(M40_GGML_Q4_K));
    CHECK(m40_quant_can_dequantize(M40_GGML_Q3_K));
    CHECK(!m40_quant_can_dequantize(M40_GGML_IQ1_S));
    CHECK(!m40_quant_can_quantize(M40_GGML_TYPE_COUNT));
    CHECK(!m40_quant_can_quantize(UINT32_MAX));
}

/* Non-finite input is GGML's undefined territory; ours must at least stay
 * memory-safe and free of undefined behaviour (run under UBSan in CI). */
static void test_non_finite_input_is_safe(void) {
    float x[256], y[256];
    uint8_t q[256 * 4]; /* F32 is the largest */
    m40_err err = {0};
    fill_weights(x, 256, 5);
    x[3] = m40_f32_from_bits(0x7fc00000u);
    x[40] = m40_f32_from_bits(0x7f800000u);
    x[41] = 1e-45f;
    for (size_t c = 0; c < sizeof k_round_trip / sizeof k_round_trip[0]; c++) {
        const uint32_t type = k_round_trip[c].type;
        CHECK(m40_quantize_row(type, x, q, 256, &err) == 0);
        CHECK(m40_dequantize_row(type, q, y, 256, &err) == 0);
    }
    /* a block of denormals whose scale overflows 1/d */
    for (int i = 0; i < 256; i++)
        x[i] = (i % 2 ? 1 : -1) * 3e-45f;
    for (size_t c = 0; c < sizeof k_round_trip / sizeof k_round_trip[0]; c++) {
        const uint32_t type = k_round_trip[c].type;
        CHECK(m40_quantize_row(type, x, q, 256, &err) == 0);
        CHECK(m40_dequantize_row(type, q, y, 256, &err) == 0);
    }
}

/* kernels/iq_grids.cuh holds the CPU's IQ grids and levels, number for
 * number (the CUDA decoders read that copy). */
static void test_kernel_grids(void) {
#define SAME(a, b) CHECK(sizeof(a) == sizeof(b) && memcmp(a, b, sizeof(a)) == 0)
    SAME(m40_d_iq2xxs_grid, m40_iq2xxs_grid);
    SAME(m40_d_iq2xs_grid, m40_iq2xs_grid);
    SAME(m40_d_iq2s_grid, m40_iq2s_grid);
    SAME(m40_d_iq3xxs_grid, m40_iq3xxs_grid);
    SAME(m40_d_iq3s_grid, m40_iq3s_grid);
    SAME(m40_d_iq2_levels, m40_iq2_levels);
    SAME(m40_d_iq3xxs_levels, m40_iq3xxs_levels);
    SAME(m40_d_iq3s_levels, m40_iq3s_levels);
#undef SAME
}

/* The CUDA mat-vecs' decode (kernels/quant_decode.cuh, m40_byte_at_2p15
 * and m40_byte_at_2p11): a quant byte b put in bits 8..15 of a float of
 * 2^15 (ulp 2^-8) reads 2^15 + b, a high nibble in place (16 n) under 2^11
 * (ulp 2^-12) reads 2^11 + n, and one FMA with the scale s and c = -(2^k +
 * offset) s gives (b - offset) s with no rounding: GGML's dequantized
 * weight. Its value, that is: a zero may come out +0 where GGML's is -0,
 * which == does not tell apart, and neither does any sum but one of zeros.
 * Checked for every finite FP16 scale, Q4_0's nibbles and Q8_0's bytes. */
static void test_scaled_decode_is_exact(void) {
    long bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00)
            continue; /* inf, NaN */
        const float d = m40_fp16_to_fp32((uint16_t)h);
        const float c8 = d * -32896.0f, c4lo = d * -32776.0f, c4hi = d * -2056.0f;
        for (uint32_t b = 0; b < 256; b++) {
            const float m = m40_f32_from_bits(0x47000000u | b << 8);
            bad += fmaf(m, d, c8) != (float)((int)b - 128) * d;
        }
        for (uint32_t n = 0; n < 16; n++) {
            const float lo = m40_f32_from_bits(0x47000000u | n << 8);
            const float hi = m40_f32_from_bits(0x45000000u | (16 * n) << 8);
            const float want = (float)((int)n - 8) * d;
            bad += fmaf(lo, d, c4lo) != want;
            bad += fmaf(hi, d, c4hi) != want;
        }
    }
    if (bad)
        fprintf(stderr, "scaled decode: %ld results differ from the exact product\n", bad);
    CHECK(bad == 0);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_quant FIXTURE_DIR (tests/fixtures/quant)\n");
        return 2;
    }
    struct stat st;
    if (stat(argv[1], &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "test_quant: fixture directory %s not found\n", argv[1]);
        CHECK(!"fixture directory exists");
        return check_report();
    }
    test_fixtures(argv[1]);
    test_kernel_grids();
    test_round_trip();
    test_fp16_to_fp32();
    test_fp16_exhaustive();
    test_fp16_to_fp32_definition();
    test_fp32_to_fp16();
    test_bf16();
    test_rounding_sweeps();
    test_row_converters_unaligned();
    test_block_sizes();
    test_q8_sums();
    test_rows_are_independent();
    test_errors();
    test_non_finite_input_is_safe();
    test_scaled_decode_is_exact();
    return check_report();
}
