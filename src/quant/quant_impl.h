/* quant_impl.h - internals shared by the block (de)quantizer files.
 *
 * Each format has one function per direction that handles `nb` whole blocks;
 * quant.c checks arguments and dispatches to them, so these functions do no
 * checking of their own. Blocks are byte arrays read and written through
 * the little-endian field helpers below, never through struct overlays, so
 * any alignment works.
 *
 * Owns: nothing. Touches: nothing.
 */
#ifndef M40_QUANT_QUANT_IMPL_H
#define M40_QUANT_QUANT_IMPL_H

#include <stdint.h>
#include <string.h>

#include "quant/fp16.h"

#define M40_QK   32  /* elements in a legacy block (QK4_0 ... QK8_1) */
#define M40_QK_K 256 /* elements in a k-quant super-block (QK_K) */

/* Byte offsets of the fields inside each block and block sizes, as in
 * ggml-common.h (ggml_types.c has the same sizes; test_quant checks that
 * they agree). Fields not listed start at offset 0. */
enum {
    /* Q4_0: d | qs[16] */
    M40_Q4_0_QS = 2,
    M40_Q4_0_BYTES = 18,
    /* Q4_1: d | m | qs[16] */
    M40_Q4_1_M = 2,
    M40_Q4_1_QS = 4,
    M40_Q4_1_BYTES = 20,
    /* Q5_0: d | qh[4] | qs[16] */
    M40_Q5_0_QH = 2,
    M40_Q5_0_QS = 6,
    M40_Q5_0_BYTES = 22,
    /* Q5_1: d | m | qh[4] | qs[16] */
    M40_Q5_1_M = 2,
    M40_Q5_1_QH = 4,
    M40_Q5_1_QS = 8,
    M40_Q5_1_BYTES = 24,
    /* Q8_0: d | qs[32] */
    M40_Q8_0_QS = 2,
    M40_Q8_0_BYTES = 34,
    /* Q8_1: d | s | qs[32] */
    M40_Q8_1_S = 2,
    M40_Q8_1_QS = 4,
    M40_Q8_1_BYTES = 36,
    /* Q2_K: scales[16] | qs[64] | d | dmin */
    M40_Q2_K_QS = 16,
    M40_Q2_K_D = 80,
    M40_Q2_K_DMIN = 82,
    M40_Q2_K_BYTES = 84,
    /* Q3_K: hmask[32] | qs[64] | scales[12] | d */
    M40_Q3_K_QS = 32,
    M40_Q3_K_SCALES = 96,
    M40_Q3_K_D = 108,
    M40_Q3_K_BYTES = 110,
    /* Q4_K: d | dmin | scales[12] | qs[128] */
    M40_Q4_K_DMIN = 2,
    M40_Q4_K_SCALES = 4,
    M40_Q4_K_QS = 16,
    M40_Q4_K_BYTES = 144,
    /* Q5_K: d | dmin | scales[12] | qh[32] | qs[128] */
    M40_Q5_K_DMIN = 2,
    M40_Q5_K_SCALES = 4,
    M40_Q5_K_QH = 16,
    M40_Q5_K_QS = 48,
    M40_Q5_K_BYTES = 176,
    /* Q6_K: ql[128] | qh[64] | scales[16] (int8) | d */
    M40_Q6_K_QH = 128,
    M40_Q6_K_SCALES = 192,
    M40_Q6_K_D = 208,
    M40_Q6_K_BYTES = 210,
    /* Q8_K: d (f32) | qs[256] (int8) | bsums[16] (int16) */
    M40_Q8_K_QS = 4,
    M40_Q8_K_BSUMS = 260,
    M40_Q8_K_BYTES = 292,
    /* IQ4_NL: d | qs[16] (indices into the format's 16 levels) */
    M40_IQ4_NL_QS = 2,
    M40_IQ4_NL_BYTES = 18,
    /* IQ4_XS: d | scales_h (u16) | scales_l[4] | qs[128] */
    M40_IQ4_XS_SCALES_H = 2,
    M40_IQ4_XS_SCALES_L = 4,
    M40_IQ4_XS_QS = 8,
    M40_IQ4_XS_BYTES = 136,
    /* IQ2_XXS: d | per 32 elements 4 grid-row indices (bytes) and a u32 of
     * four 7-bit sign indices and a 4-bit scale (bits 28..31) */
    M40_IQ2_XXS_QS = 2,
    M40_IQ2_XXS_BYTES = 66,
    /* IQ2_XS: d | qs[32] (u16: 9-bit grid row, 7-bit sign index) | scales[8] */
    M40_IQ2_XS_QS = 2,
    M40_IQ2_XS_SCALES = 66,
    M40_IQ2_XS_BYTES = 74,
    /* IQ2_S: d | qs[32] | signs[32] | qh[8] (2 high index bits each) | scales[8] */
    M40_IQ2_S_QS = 2,
    M40_IQ2_S_SIGNS = 34,
    M40_IQ2_S_QH = 66,
    M40_IQ2_S_SCALES = 74,
    M40_IQ2_S_BYTES = 82,
    /* IQ3_XXS: d | qs[64] (grid rows) | per 32 elements a u32 as IQ2_XXS's */
    M40_IQ3_XXS_QS = 2,
    M40_IQ3_XXS_AUX = 66,
    M40_IQ3_XXS_BYTES = 98,
    /* IQ3_S: d | qs[64] | qh[8] (1 high index bit each) | signs[32] | scales[4] */
    M40_IQ3_S_QS = 2,
    M40_IQ3_S_QH = 66,
    M40_IQ3_S_SIGNS = 74,
    M40_IQ3_S_SCALES = 106,
    M40_IQ3_S_BYTES = 110,
    /* bits per level code in a grid row (iq_grids.c) */
    M40_IQ2_GRID_BITS = 2,
    M40_IQ3_GRID_BITS = 3,
};

/* The IQ2/IQ3 grids (iq_grids.c, generated): one word of level codes per
 * row, and each family's code -> magnitude map. */
extern const uint16_t m40_iq2xxs_grid[256], m40_iq2xs_grid[512], m40_iq2s_grid[1024];
extern const uint16_t m40_iq3xxs_grid[256], m40_iq3s_grid[512];
extern const uint8_t m40_iq2_levels[3], m40_iq3xxs_levels[8], m40_iq3s_levels[8];

static inline float m40_load_f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return m40_fp16_to_fp32(h);
}

static inline unsigned m40_load_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static inline void m40_store_f16(uint8_t *p, float v) {
    const uint16_t h = m40_fp32_to_fp16(v);
    memcpy(p, &h, 2);
}

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block, from
 * the 12 packed bytes: sub-blocks 0-3 keep their low 6 bits in bytes 0-7,
 * sub-blocks 4-7 keep 4 bits in bytes 8-11 and their top 2 bits in the
 * spare top bits of bytes 0-7 (GGML's get_scale_min_k4). */
static inline void m40_k4_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* Dequantizers: nb blocks at src -> nb * block_elems floats at dst. */
void m40_dequant_q4_0(const uint8_t *src, float *dst, int64_t nb);
void m40_dequant_q4_1(const uint8_t *src, float *dst, int64_t nb);
void m40_dequant_q5_0(const uint8_t *src, float *dst, int64_t nb);
void m40_dequant_q5_1(const uint8_t *src, float *dst, int64_t nb);
void m40_dequant_q8_0(const uint8_t *src, float *dst, int64_t nb);
void m40_dequant_q8_1(const uint8_t *src, float *dst, int64_t nb);
void m40_dequant_q2_k(const uint8_t *src, float *dst, int64_t nb);
void m40_dequant_q3_k(const uint8_t *src, float *dst, int64_t nb);
void m40_dequant_q4_k(const uint8_t *src, float *dst, int64_t nb);
void m40_dequant_q5_k(const uint8_t *src, float *dst, int64_t nb);
void m40_dequant_q6_k(const uint8_t *src, float *dst, int64_t nb);
void m40_dequant_q8_k(const uint8_t *src, float *dst, int64_t nb);
void m40_dequant_iq4_nl(const uint8_t *src, float *dst, int64_t nb);
void m40_dequant_iq4_xs(const uint8_t *src, float *dst, int64_t nb);
void m40_dequant_iq2_xxs(const uint8_t *src, float *dst, int64_t nb);
void m40_dequant_iq2_xs(const uint8_t *src, float *dst, int64_t nb);
void m40_dequant_iq2_s(const uint8_t *src, float *dst, int64_t nb);
void m40_dequant_iq3_xxs(const uint8_t *src, float *dst, int64_t nb);
void m40_dequant_iq3_s(const uint8_t *src, float *dst, int64_t nb);

/* Quantizers: nb * block_elems floats at src -> nb blocks at dst. */
void m40_quant_q4_0(const float *src, uint8_t *dst, int64_t nb);
void m40_quant_q4_1(const float *src, uint8_t *dst, int64_t nb);
void m40_quant_q5_0(const float *src, uint8_t *dst, int64_t nb);
void m40_quant_q5_1(const float *src, uint8_t *dst, int64_t nb);
void m40_quant_q8_0(const float *src, uint8_t *dst, int64_t nb);
void m40_quant_q8_1(const float *src, uint8_t *dst, int64_t nb);
void m40_quant_q2_k(const float *src, uint8_t *dst, int64_t nb);
void m40_quant_q3_k(const float *src, uint8_t *dst, int64_t nb);
void m40_quant_q4_k(const float *src, uint8_t *dst, int64_t nb);
void m40_quant_q5_k(const float *src, uint8_t *dst, int64_t nb);
void m40_quant_q6_k(const float *src, uint8_t *dst, int64_t nb);
void m40_quant_q8_k(const float *src, uint8_t *dst, int64_t nb);

#endif /* M40_QUANT_QUANT_IMPL_H */
