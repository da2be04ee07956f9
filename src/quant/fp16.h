/* fp16.h - IEEE binary16 (FP16) and bfloat16 (BF16) <-> binary32 (FP32).
 *
 * The scalar conversions are static inline so the block (de)quantizers can
 * call them per element without a function call. They are exact and match
 * GGML (ggml-impl.h) bit for bit on every input:
 *   - FP16 -> FP32 and BF16 -> FP32 are exact (every FP16/BF16 value is an
 *     FP32 value), subnormals included. An FP16 NaN keeps its sign and
 *     payload and comes out quiet (what GGML's float multiply and F16C do).
 *     A BF16 NaN is passed through unchanged (a plain shift, as GGML).
 *   - FP32 -> FP16 rounds to nearest, ties to even; FP16 subnormals are
 *     produced, values from 65520 up become inf, NaN becomes 0x7e00 with the
 *     sign kept (GGML's canonical quiet NaN).
 *   - FP32 -> BF16 rounds to nearest, ties to even, with no flush of
 *     subnormals; NaN keeps its top bits and gets the quiet bit (GGML).
 *
 * Owns: nothing (pure functions). Touches: nothing.
 */
#ifndef M40_QUANT_FP16_H
#define M40_QUANT_FP16_H

#include <stdint.h>
#include <string.h>

static inline uint32_t m40_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float m40_f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Without branches, so a row's loop (m40_fp16_to_fp32_row) vectorizes: the
 * three cases are computed and one is kept by masks (a conditional would
 * let the compiler move the subnormal case's subtraction into a branch,
 * and a branch does not vectorize). */
static inline float m40_fp16_to_fp32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t em = (uint32_t)(h & 0x7fffu) << 13; /* exponent and mantissa, FP32's places */
    const uint32_t exp = em & 0x0f800000u;
    const uint32_t is_sub = 0u - (uint32_t)(exp == 0);               /* zero or subnormal */
    const uint32_t is_special = 0u - (uint32_t)(exp == 0x0f800000u); /* inf or NaN */
    /* normal: the exponent rebiased from 15 to 127 */
    const uint32_t normal = em + ((127u - 15u) << 23);
    /* exponent 31: inf, or NaN made quiet */
    const uint32_t special = em | 0x7f800000u | ((uint32_t)((em & 0x007fe000u) != 0) << 22);
    /* zero or subnormal: mant * 2^-24 as (2^-14 + mant * 2^-24) - 2^-14, exact */
    const uint32_t sub = m40_f32_bits(m40_f32_from_bits(em | (113u << 23)) - 0x1p-14f);
    return m40_f32_from_bits(sign | (sub & is_sub) | (special & is_special) |
                             (normal & ~(is_sub | is_special)));
}

static inline uint16_t m40_fp32_to_fp16(float f) {
    const uint32_t x = m40_f32_bits(f);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    const uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) /* NaN */
        return sign | 0x7e00u;
    if (ax >= 0x477ff000u) /* >= 65520 (half-way past the largest FP16) */
        return sign | 0x7c00u;
    if (ax < 0x38800000u) {
        /* below 2^-14: an FP16 subnormal (or zero). Count in units of 2^-24
         * by shifting the FP32 significand right and round to even. */
        const uint32_t e = ax >> 23;
        if (e < 102) /* below 2^-25: rounds to zero */
            return sign;
        const uint32_t m = (ax & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126 - e; /* 14 .. 24 */
        const uint32_t q = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1);
        /* up when above half, or at half with q odd: rem + odd > half */
        return (uint16_t)(sign | (q + ((rem + (q & 1u)) > (1u << (shift - 1)))));
    }
    /* normal: rebias the exponent, drop 13 mantissa bits rounding to even; a
     * carry out of the mantissa correctly bumps the exponent */
    const uint32_t r = ax - ((127u - 15u) << 23);
    const uint32_t q = r >> 13;
    return (uint16_t)(sign | (q + (((r & 0x1fffu) + (q & 1u)) > 0x1000u)));
}

static inline float m40_bf16_to_fp32(uint16_t h) {
    return m40_f32_from_bits((uint32_t)h << 16);
}

static inline uint16_t m40_fp32_to_bf16(float f) {
    const uint32_t x = m40_f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it NaN, make it quiet */
        return (uint16_t)((x >> 16) | 0x40u);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

/* Row conversions. `src` and `dst` may be unaligned (they are read and
 * written with memcpy), which GGUF tensor data inside a mapped file can be. */
void m40_fp16_to_fp32_row(const void *src, float *dst, int64_t n);
void m40_fp32_to_fp16_row(const float *src, void *dst, int64_t n);
void m40_bf16_to_fp32_row(const void *src, float *dst, int64_t n);
void m40_fp32_to_bf16_row(const float *src, void *dst, int64_t n);

#endif /* M40_QUANT_FP16_H */
