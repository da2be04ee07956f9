/* dequant_iq.c - dequantization of the 4-bit "non-linear" formats IQ4_NL
 * and IQ4_XS (ggml-common.h's block_iq4_nl, block_iq4_xs).
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
