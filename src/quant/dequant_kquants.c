/* dequant_kquants.c - dequantizers of the 256-element super-block formats:
 * Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K.
 *
 * Each super-block has a FP16 scale d (and for Q2_K/Q4_K/Q5_K a FP16 dmin)
 * and small per-sub-block integer scales. The per-sub-block float scale is
 * formed first (d * sc), then multiplied by the quant, exactly as GGML's
 * dequantize_row_* does, so the results match GGML and gguf bit for bit.
 * docs/ggml-formats.md draws where each element's bits live.
 */
#include "quant/quant_impl.h"

/* Q2_K: 16 sub-blocks of 16. Element e's 2 bits sit in byte
 * 32*(e/128) + e%32 of qs at shift 2*((e%128)/32); its sub-block is e/16,
 * whose scale byte holds the 4-bit scale (low) and 4-bit min (high). */
void m40_dequant_q2_k(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, src += M40_Q2_K_BYTES, dst += M40_QK_K) {
        const float d = m40_load_f16(src + M40_Q2_K_D);
        const float dmin = m40_load_f16(src + M40_Q2_K_DMIN);
        const uint8_t *scales = src;
        for (int e0 = 0; e0 < M40_QK_K; e0 += 16) {
            const uint8_t sc = scales[e0 / 16];
            const float dl = d * (float)(sc & 0xF);
            const float ml = dmin * (float)(sc >> 4);
            const uint8_t *q = src + M40_Q2_K_QS + 32 * (e0 / 128) + e0 % 32;
            const int shift = 2 * ((e0 % 128) / 32);
            for (int l = 0; l < 16; l++)
                dst[e0 + l] = dl * (float)((q[l] >> shift) & 3) - ml;
        }
    }
}

/* The 16 signed 6-bit scales of a Q3_K block: the low 4 bits of scale j
 * are nibble (j / 8) of byte j % 8, its top 2 bits are bits 2*(j/4) .. +1
 * of byte 8 + j % 4; stored with a +32 bias. */
static void q3_k_scales(const uint8_t *b, int out[16]) {
    for (int j = 0; j < 16; j++) {
        const int lo = j < 8 ? (b[j] & 0xF) : (b[j - 8] >> 4);
        const int hi = (b[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = (lo | (hi << 4)) - 32;
    }
}

/* Q3_K: like Q2_K's 2-bit layout plus a high bit per element in hmask:
 * byte e%32, bit e/32. A set high bit means "no -4 offset". */
void m40_dequant_q3_k(const uint8_t *src, float *dst, int64_t nb) {
    int sc[16];
    for (int64_t i = 0; i < nb; i++, src += M40_Q3_K_BYTES, dst += M40_QK_K) {
        const float d = m40_load_f16(src + M40_Q3_K_D);
        const uint8_t *hmask = src;
        q3_k_scales(src + M40_Q3_K_SCALES, sc);
        for (int e0 = 0; e0 < M40_QK_K; e0 += 16) {
            const float dl = d * (float)sc[e0 / 16];
            const uint8_t *q = src + M40_Q3_K_QS + 32 * (e0 / 128) + e0 % 32;
            const uint8_t *hm = hmask + e0 % 32;
            const int shift = 2 * ((e0 % 128) / 32);
            const uint8_t bit = (uint8_t)(1u << (e0 / 32));
            for (int l = 0; l < 16; l++) {
                const int v = ((q[l] >> shift) & 3) - ((hm[l] & bit) ? 0 : 4);
                dst[e0 + l] = dl * (float)v;
            }
        }
    }
}

/* Q4_K: 8 sub-blocks of 32. Byte l of the 32-byte chunk c holds element
 * 64c + l (low nibble, sub-block 2c) and 64c + 32 + l (high, 2c + 1). */
void m40_dequant_q4_k(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, src += M40_Q4_K_BYTES, dst += M40_QK_K) {
        const float d = m40_load_f16(src);
        const float dmin = m40_load_f16(src + M40_Q4_K_DMIN);
        const uint8_t *scales = src + M40_Q4_K_SCALES;
        for (int c = 0; c < 4; c++) {
            uint8_t sc, m;
            m40_k4_scale_min(2 * c, scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            m40_k4_scale_min(2 * c + 1, scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            const uint8_t *q = src + M40_Q4_K_QS + 32 * c;
            float *y = dst + 64 * c;
            for (int l = 0; l < 32; l++) {
                y[l] = d1 * (float)(q[l] & 0xF) - m1;
                y[l + 32] = d2 * (float)(q[l] >> 4) - m2;
            }
        }
    }
}

/* Q5_K: Q4_K's nibbles plus a fifth bit per element in qh: byte l, bit 2c
 * for the low-nibble element of chunk c, bit 2c + 1 for the high one. */
void m40_dequant_q5_k(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, src += M40_Q5_K_BYTES, dst += M40_QK_K) {
        const float d = m40_load_f16(src);
        const float dmin = m40_load_f16(src + M40_Q5_K_DMIN);
        const uint8_t *scales = src + M40_Q5_K_SCALES;
        const uint8_t *qh = src + M40_Q5_K_QH;
        for (int c = 0; c < 4; c++) {
            uint8_t sc, m;
            m40_k4_scale_min(2 * c, scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            m40_k4_scale_min(2 * c + 1, scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            const uint8_t *ql = src + M40_Q5_K_QS + 32 * c;
            const uint8_t u1 = (uint8_t)(1u << (2 * c)), u2 = (uint8_t)(2u << (2 * c));
            float *y = dst + 64 * c;
            for (int l = 0; l < 32; l++) {
                y[l] = d1 * (float)((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
                y[l + 32] = d2 * (float)((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
            }
        }
    }
}

/* Q6_K: 16 sub-blocks of 16 with int8 scales. Per half h (128 elements),
 * ql byte l / l+32 hold elements l, l+32 (low nibbles) and l+64, l+96
 * (high nibbles); qh byte l holds their top 2 bits at shifts 0, 2, 4, 6. */
void m40_dequant_q6_k(const uint8_t *src, float *dst, int64_t nb) {
    float ds[16];
    for (int64_t i = 0; i < nb; i++, src += M40_Q6_K_BYTES, dst += M40_QK_K) {
        const float d = m40_load_f16(src + M40_Q6_K_D);
        const int8_t *sc = (const int8_t *)(src + M40_Q6_K_SCALES);
        for (int j = 0; j < 16; j++)
            ds[j] = d * (float)sc[j];
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = src + 64 * h;
            const uint8_t *qh = src + M40_Q6_K_QH + 32 * h;
            const float *s = ds + 8 * h;
            float *y = dst + 128 * h;
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = s[is] * (float)q1;
                y[l + 32] = s[is + 2] * (float)q2;
                y[l + 64] = s[is + 4] * (float)q3;
                y[l + 96] = s[is + 6] * (float)q4;
            }
        }
    }
}

/* Q8_K: a FP32 scale and 256 int8 quants; bsums only serve dot products. */
void m40_dequant_q8_k(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, src += M40_Q8_K_BYTES, dst += M40_QK_K) {
        float d;
        memcpy(&d, src, 4);
        const int8_t *qs = (const int8_t *)(src + M40_Q8_K_QS);
        for (int j = 0; j < M40_QK_K; j++)
            dst[j] = d * (float)qs[j];
    }
}
