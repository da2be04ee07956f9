/* dequant_iq.c - dequantization of GGML's "IQ" formats: the 4-bit
 * non-linear IQ4_NL and IQ4_XS, and the grid formats IQ2_XXS, IQ2_XS,
 * IQ2_S, IQ3_XXS and IQ3_S (ggml-common.h's block_iq*).
 *
 * Both store 4-bit indices into one fixed table of 16 levels, spaced more
 * densely near zero than a uniform grid (the levels are a constant of the
 * format, kvalues_iq4nl in GGML). A 32-element group's index j < 16 sits in
 * the low nibble of byte j, element j + 16 in its high nibble, as in Q4_0.
 * IQ4_NL: one FP16 scale per 32 elements. IQ4_XS: one FP16 scale per 256
 * and a 6-bit signed scale per 32 (low 4 bits in scales_l, high 2 bits in
 * scales_h), biased by 32. The float arithmetic is GGML's, in its order:
 * d * (scale - 32), then that times the level.
 */
#include "quant/quant_impl.h"

static const int8_t k_levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                    1,    13,   25,  38,  53,  69,  89,  113};

/* 32 elements of indices qs[16] scaled by d. */
static void iq4_group(const uint8_t *qs, float d, float *dst) {
    for (int j = 0; j < 16; j++) {
        dst[j] = d * (float)k_levels[qs[j] & 0x0F];
        dst[j + 16] = d * (float)k_levels[qs[j] >> 4];
    }
}

void m40_dequant_iq4_nl(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, src += M40_IQ4_NL_BYTES, dst += M40_QK)
        iq4_group(src + M40_IQ4_NL_QS, m40_load_f16(src), dst);
}

void m40_dequant_iq4_xs(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, src += M40_IQ4_XS_BYTES, dst += M40_QK_K) {
        const float d = m40_load_f16(src);
        const unsigned scales_h = m40_load_u16(src + M40_IQ4_XS_SCALES_H);
        const uint8_t *scales_l = src + M40_IQ4_XS_SCALES_L;
        for (int g = 0; g < M40_QK_K / 32; g++) {
            int ls =
                ((scales_l[g / 2] >> (4 * (g % 2))) & 0x0F) | (((scales_h >> (2 * g)) & 3) << 4);
            iq4_group(src + M40_IQ4_XS_QS + 16 * g, d * (float)(ls - 32), dst + 32 * g);
        }
    }
}

/* ---- the grid formats ------------------------------------------------------
 * A super-block of 256 elements stores, per 8 (IQ2) or 4 (IQ3) elements, the
 * index of a row of a fixed grid of small positive magnitudes (iq_grids.c),
 * per 8 elements their signs, and per 16 or 32 elements a 4-bit scale under
 * the FP16 d. Signs come either as 8 bits, or as a 7-bit index whose eighth
 * sign makes the count of negatives even (k_signs). The float arithmetic is
 * the gguf package's reference, in its order: the group's scale db (e.g.
 * d * (0.5 + s) * 0.25), then db times the magnitude, then the sign. */

/* Eight signs (bit j: element j negative) of a 7-bit sign index: the index
 * and, as bit 7, the parity of its bits. */
static unsigned k_signs(unsigned idx) {
    unsigned p = idx ^ (idx >> 4);
    p ^= p >> 2;
    p ^= p >> 1;
    return (idx & 0x7F) | ((p & 1) << 7);
}

/* n elements from grid row `row` (codes of `bits` bits, levels lv) times
 * db, negated where bit j of signs is set. */
static void grid_row(uint16_t row, int n, int bits, const uint8_t *lv, float db, unsigned signs,
                     float *dst) {
    for (int j = 0; j < n; j++) {
        float v = db * (float)lv[(row >> (bits * j)) & ((1u << bits) - 1)];
        dst[j] = (signs >> j) & 1 ? -v : v;
    }
}

/* IQ2_XS and IQ2_S: the 4-bit scale of entry i (8 elements), one per two
 * entries, low nibble first. */
static float iq2_entry_scale(const uint8_t *scales, float d, int i) {
    unsigned s = (scales[i / 4] >> (4 * ((i / 2) & 1))) & 0x0F;
    return d * (0.5f + (float)s) * 0.25f;
}

static uint32_t load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

void m40_dequant_iq2_xxs(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, src += M40_IQ2_XXS_BYTES) {
        const float d = m40_load_f16(src);
        for (int g = 0; g < M40_QK_K / 32; g++, dst += 32) {
            const uint8_t *idx = src + M40_IQ2_XXS_QS + 8 * g;
            const uint32_t aux = load_u32(idx + 4);
            const float db = d * (0.5f + (float)(aux >> 28)) * 0.25f;
            for (int l = 0; l < 4; l++)
                grid_row(m40_iq2xxs_grid[idx[l]], 8, M40_IQ2_GRID_BITS, m40_iq2_levels, db,
                         k_signs((aux >> (7 * l)) & 0x7F), dst + 8 * l);
        }
    }
}

void m40_dequant_iq2_xs(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, src += M40_IQ2_XS_BYTES) {
        const float d = m40_load_f16(src);
        for (int e = 0; e < M40_QK_K / 8; e++, dst += 8) {
            const unsigned q = m40_load_u16(src + M40_IQ2_XS_QS + 2 * e);
            grid_row(m40_iq2xs_grid[q & 511], 8, M40_IQ2_GRID_BITS, m40_iq2_levels,
                     iq2_entry_scale(src + M40_IQ2_XS_SCALES, d, e), k_signs(q >> 9), dst);
        }
    }
}

void m40_dequant_iq2_s(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, src += M40_IQ2_S_BYTES) {
        const float d = m40_load_f16(src);
        for (int e = 0; e < M40_QK_K / 8; e++, dst += 8) {
            const unsigned hi = (src[M40_IQ2_S_QH + e / 4] >> (2 * (e % 4))) & 3;
            grid_row(m40_iq2s_grid[src[M40_IQ2_S_QS + e] | (hi << 8)], 8, M40_IQ2_GRID_BITS,
                     m40_iq2_levels, iq2_entry_scale(src + M40_IQ2_S_SCALES, d, e),
                     src[M40_IQ2_S_SIGNS + e], dst);
        }
    }
}

void m40_dequant_iq3_xxs(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, src += M40_IQ3_XXS_BYTES) {
        const float d = m40_load_f16(src);
        for (int g = 0; g < M40_QK_K / 32; g++) {
            const uint32_t aux = load_u32(src + M40_IQ3_XXS_AUX + 4 * g);
            const float db = d * (0.5f + (float)(aux >> 28)) * 0.5f;
            for (int l = 0; l < 4; l++, dst += 8) {
                /* 8 elements: two grid rows of 4, one sign index */
                const uint8_t *qs = src + M40_IQ3_XXS_QS + 8 * g + 2 * l;
                const unsigned signs = k_signs((aux >> (7 * l)) & 0x7F);
                grid_row(m40_iq3xxs_grid[qs[0]], 4, M40_IQ3_GRID_BITS, m40_iq3xxs_levels, db, signs,
                         dst);
                grid_row(m40_iq3xxs_grid[qs[1]], 4, M40_IQ3_GRID_BITS, m40_iq3xxs_levels, db,
                         signs >> 4, dst + 4);
            }
        }
    }
}

void m40_dequant_iq3_s(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, src += M40_IQ3_S_BYTES) {
        const float d = m40_load_f16(src);
        for (int g = 0; g < M40_QK_K / 32; g++) {
            const unsigned s = (src[M40_IQ3_S_SCALES + g / 2] >> (4 * (g % 2))) & 0x0F;
            const float db = d * (float)(1 + 2 * s);
            for (int r = 0; r < 8; r++, dst += 4) {
                const int e = 8 * g + r; /* grid row e: elements 4e .. 4e + 3 */
                const unsigned hi = (src[M40_IQ3_S_QH + e / 8] >> (e % 8)) & 1;
                const unsigned signs = src[M40_IQ3_S_SIGNS + e / 2] >> (4 * (e % 2));
                grid_row(m40_iq3s_grid[src[M40_IQ3_S_QS + e] | (hi << 8)], 4, M40_IQ3_GRID_BITS,
                         m40_iq3s_levels, db, signs, dst);
            }
        }
    }
}
