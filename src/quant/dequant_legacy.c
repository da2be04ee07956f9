/* dequant_legacy.c - dequantizers of the 32-element formats: Q4_0, Q4_1,
 * Q5_0, Q5_1, Q8_0, Q8_1.
 *
 * Every value is computed with the same float operations in the same order
 * as GGML's dequantize_row_* (q*d, or q*d + m), so the results are bit for
 * bit GGML's and the gguf package's. In a 4- and 5-bit block, byte j holds
 * element j in its low nibble and element j + 16 in its high nibble.
 */
#include "quant/quant_impl.h"

void m40_dequant_q4_0(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, src += M40_Q4_0_BYTES, dst += M40_QK) {
        const float d = m40_load_f16(src);
        const uint8_t *qs = src + M40_Q4_0_QS;
        for (int j = 0; j < M40_QK / 2; j++) {
            dst[j] = (float)((qs[j] & 0xF) - 8) * d;
            dst[j + M40_QK / 2] = (float)((qs[j] >> 4) - 8) * d;
        }
    }
}

void m40_dequant_q4_1(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, src += M40_Q4_1_BYTES, dst += M40_QK) {
        const float d = m40_load_f16(src);
        const float m = m40_load_f16(src + M40_Q4_1_M);
        const uint8_t *qs = src + M40_Q4_1_QS;
        for (int j = 0; j < M40_QK / 2; j++) {
            dst[j] = (float)(qs[j] & 0xF) * d + m;
            dst[j + M40_QK / 2] = (float)(qs[j] >> 4) * d + m;
        }
    }
}

/* Bit j of qh is the fifth bit of element j. */
static inline uint32_t load_qh(const uint8_t *p) {
    uint32_t qh;
    memcpy(&qh, p, 4);
    return qh;
}

void m40_dequant_q5_0(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, src += M40_Q5_0_BYTES, dst += M40_QK) {
        const float d = m40_load_f16(src);
        const uint32_t qh = load_qh(src + M40_Q5_0_QH);
        const uint8_t *qs = src + M40_Q5_0_QS;
        for (int j = 0; j < M40_QK / 2; j++) {
            const int h0 = (int)((qh >> j) & 1u) << 4;
            const int h1 = (int)((qh >> (j + 16)) & 1u) << 4;
            dst[j] = (float)(((qs[j] & 0xF) | h0) - 16) * d;
            dst[j + M40_QK / 2] = (float)(((qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

void m40_dequant_q5_1(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, src += M40_Q5_1_BYTES, dst += M40_QK) {
        const float d = m40_load_f16(src);
        const float m = m40_load_f16(src + M40_Q5_1_M);
        const uint32_t qh = load_qh(src + M40_Q5_1_QH);
        const uint8_t *qs = src + M40_Q5_1_QS;
        for (int j = 0; j < M40_QK / 2; j++) {
            const int h0 = (int)((qh >> j) & 1u) << 4;
            const int h1 = (int)((qh >> (j + 16)) & 1u) << 4;
            dst[j] = (float)((qs[j] & 0xF) | h0) * d + m;
            dst[j + M40_QK / 2] = (float)((qs[j] >> 4) | h1) * d + m;
        }
    }
}

void m40_dequant_q8_0(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, src += M40_Q8_0_BYTES, dst += M40_QK) {
        const float d = m40_load_f16(src);
        const int8_t *qs = (const int8_t *)(src + M40_Q8_0_QS);
        for (int j = 0; j < M40_QK; j++)
            dst[j] = (float)qs[j] * d;
    }
}

/* Q8_1's s field (d * sum of quants) is a cache for dot products; the
 * values are q*d exactly as in Q8_0. */
void m40_dequant_q8_1(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, src += M40_Q8_1_BYTES, dst += M40_QK) {
        const float d = m40_load_f16(src);
        const int8_t *qs = (const int8_t *)(src + M40_Q8_1_QS);
        for (int j = 0; j < M40_QK; j++)
            dst[j] = (float)qs[j] * d;
    }
}
