/* quantize_legacy.c - quantizers of the 32-element formats: Q4_0, Q4_1,
 * Q5_0, Q5_1, Q8_0, Q8_1.
 *
 * Same bytes as GGML's quantize_row_*_ref (and the gguf package's
 * quantize): the scale and every quant come from the same float
 * operations in the same order. The one deliberate difference is safety on
 * inputs GGML leaves undefined (NaN, inf, a scale that overflows 1/d): the
 * float -> integer conversions here clamp first, so no input is undefined
 * behaviour; on finite, sane inputs the clamps never bind.
 */
#include <float.h>
#include <math.h>

#include "quant/quant_impl.h"

/* min(trunc(v), hi) for v >= 0, and 0 for v < 0 or NaN: GGML's
 * MIN(hi, (int8_t)v) on the values it can see, without its undefined cases. */
static inline int trunc_clamp(float v, float hi) {
    v = v > 0.0f ? v : 0.0f;
    v = v < hi ? v : hi;
    return (int)v;
}

/* roundf(v) (halves away from zero) clamped to int8, without a libm call in
 * the inner loop. v - trunc(v) is exact for |v| < 2^23. */
static inline int round_int8(float v) {
    v = v > -128.0f ? v : -128.0f;
    v = v < 127.0f ? v : 127.0f;
    const int t = (int)v;
    const float f = v - (float)t;
    return t + (f >= 0.5f) - (f <= -0.5f); /* no branch: f is random */
}

/* The value of largest magnitude (the first one, if several tie), with its
 * sign: Q4_0 and Q5_0 map it to the most negative quant. */
static inline float signed_absmax(const float *x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static inline void min_max(const float *x, int n, float *mn, float *mx) {
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < lo)
            lo = x[j];
        if (x[j] > hi)
            hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

void m40_quant_q4_0(const float *x, uint8_t *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += M40_QK, y += M40_Q4_0_BYTES) {
        const float d = signed_absmax(x, M40_QK) / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        m40_store_f16(y, d);
        for (int j = 0; j < M40_QK / 2; j++) {
            const int q0 = trunc_clamp(x[j] * id + 8.5f, 15.0f);
            const int q1 = trunc_clamp(x[j + M40_QK / 2] * id + 8.5f, 15.0f);
            y[M40_Q4_0_QS + j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void m40_quant_q4_1(const float *x, uint8_t *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += M40_QK, y += M40_Q4_1_BYTES) {
        float mn, mx;
        min_max(x, M40_QK, &mn, &mx);
        const float d = (mx - mn) / 15;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        m40_store_f16(y, d);
        m40_store_f16(y + M40_Q4_1_M, mn);
        for (int j = 0; j < M40_QK / 2; j++) {
            const int q0 = trunc_clamp((x[j] - mn) * id + 0.5f, 15.0f);
            const int q1 = trunc_clamp((x[j + M40_QK / 2] - mn) * id + 0.5f, 15.0f);
            y[M40_Q4_1_QS + j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* Stores 32 5-bit quants: low nibbles as in Q4, fifth bits in qh bit j. */
static inline void store_q5(const int q[M40_QK], uint8_t *qh_dst, uint8_t *qs) {
    uint32_t qh = 0;
    for (int j = 0; j < M40_QK / 2; j++) {
        const int q0 = q[j], q1 = q[j + M40_QK / 2];
        qs[j] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
        qh |= (uint32_t)(q0 >> 4) << j;
        qh |= (uint32_t)(q1 >> 4) << (j + M40_QK / 2);
    }
    memcpy(qh_dst, &qh, 4);
}

void m40_quant_q5_0(const float *x, uint8_t *y, int64_t nb) {
    int q[M40_QK];
    for (int64_t i = 0; i < nb; i++, x += M40_QK, y += M40_Q5_0_BYTES) {
        const float d = signed_absmax(x, M40_QK) / -16;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        m40_store_f16(y, d);
        for (int j = 0; j < M40_QK; j++)
            q[j] = trunc_clamp(x[j] * id + 16.5f, 31.0f);
        store_q5(q, y + M40_Q5_0_QH, y + M40_Q5_0_QS);
    }
}

void m40_quant_q5_1(const float *x, uint8_t *y, int64_t nb) {
    int q[M40_QK];
    for (int64_t i = 0; i < nb; i++, x += M40_QK, y += M40_Q5_1_BYTES) {
        float mn, mx;
        min_max(x, M40_QK, &mn, &mx);
        const float d = (mx - mn) / 31;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        m40_store_f16(y, d);
        m40_store_f16(y + M40_Q5_1_M, mn);
        for (int j = 0; j < M40_QK; j++)
            q[j] = trunc_clamp((x[j] - mn) * id + 0.5f, 31.0f);
        store_q5(q, y + M40_Q5_1_QH, y + M40_Q5_1_QS);
    }
}

static inline float absmax(const float *x, int n) {
    float amax = 0.0f;
    for (int j = 0; j < n; j++) {
        const float a = fabsf(x[j]);
        amax = amax > a ? amax : a;
    }
    return amax;
}

void m40_quant_q8_0(const float *x, uint8_t *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += M40_QK, y += M40_Q8_0_BYTES) {
        const float d = absmax(x, M40_QK) / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        m40_store_f16(y, d);
        for (int j = 0; j < M40_QK; j++)
            y[M40_Q8_0_QS + j] = (uint8_t)(int8_t)round_int8(x[j] * id);
    }
}

void m40_quant_q8_1(const float *x, uint8_t *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += M40_QK, y += M40_Q8_1_BYTES) {
        const float d = absmax(x, M40_QK) / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        m40_store_f16(y, d);
        for (int j = 0; j < M40_QK; j++) {
            const int q = round_int8(x[j] * id);
            y[M40_Q8_1_QS + j] = (uint8_t)(int8_t)q;
            sum += q;
        }
        m40_store_f16(y + M40_Q8_1_S, (float)sum * d);
    }
}
