/* ggml_types.c - see ggml_types.h. Block sizes are GGML's (ggml-common.h):
 * QK4_0 = QK4_1 = QK5_0 = QK5_1 = QK8_0 = QK8_1 = 32, QK_K = 256. */
#include "quant/ggml_types.h"

static const m40_ggml_type_info k_types[M40_GGML_TYPE_COUNT] = {
    [M40_GGML_F32] = {"f32", 1, 4},
    [M40_GGML_F16] = {"f16", 1, 2},
    [M40_GGML_Q4_0] = {"q4_0", 32, 2 + 16},                 /* d (f16), 32 nibbles */
    [M40_GGML_Q4_1] = {"q4_1", 32, 2 + 2 + 16},             /* d, m, 32 nibbles */
    [M40_GGML_Q5_0] = {"q5_0", 32, 2 + 4 + 16},             /* d, high bits, nibbles */
    [M40_GGML_Q5_1] = {"q5_1", 32, 2 + 2 + 4 + 16},         /* d, m, high bits, nibbles */
    [M40_GGML_Q8_0] = {"q8_0", 32, 2 + 32},                 /* d, 32 int8 */
    [M40_GGML_Q8_1] = {"q8_1", 32, 2 + 2 + 32},             /* d, s, 32 int8 */
    [M40_GGML_Q2_K] = {"q2_K", 256, 16 + 64 + 2 + 2},       /* scales, qs, d, dmin */
    [M40_GGML_Q3_K] = {"q3_K", 256, 32 + 64 + 12 + 2},      /* hmask, qs, scales, d */
    [M40_GGML_Q4_K] = {"q4_K", 256, 2 + 2 + 12 + 128},      /* d, dmin, scales, qs */
    [M40_GGML_Q5_K] = {"q5_K", 256, 2 + 2 + 12 + 32 + 128}, /* d, dmin, scales, qh, qs */
    [M40_GGML_Q6_K] = {"q6_K", 256, 128 + 64 + 16 + 2},     /* ql, qh, scales, d */
    [M40_GGML_Q8_K] = {"q8_K", 256, 4 + 256 + 32},          /* d (f32), qs, bsums */
    [M40_GGML_IQ2_XXS] = {"iq2_xxs", 256, 2 + 64},          /* d, grid indices + signs */
    [M40_GGML_IQ2_XS] = {"iq2_xs", 256, 2 + 64 + 8},        /* d, qs, scales */
    [M40_GGML_IQ3_XXS] = {"iq3_xxs", 256, 2 + 96},          /* d, qs + scales/signs */
    [M40_GGML_IQ1_S] = {"iq1_s", 256, 2 + 32 + 16},         /* d, qs, qh */
    [M40_GGML_IQ4_NL] = {"iq4_nl", 32, 2 + 16},             /* d, 32 level indices */
    [M40_GGML_IQ3_S] = {"iq3_s", 256, 2 + 64 + 8 + 32 + 4}, /* d, qs, qh, signs, scales */
    [M40_GGML_IQ2_S] = {"iq2_s", 256, 2 + 64 + 8 + 8},      /* d, qs, qh, scales */
    [M40_GGML_IQ4_XS] = {"iq4_xs", 256, 2 + 2 + 4 + 128},   /* d, scales_h, scales_l, qs */
    [M40_GGML_I8] = {"i8", 1, 1},
    [M40_GGML_I16] = {"i16", 1, 2},
    [M40_GGML_I32] = {"i32", 1, 4},
    [M40_GGML_I64] = {"i64", 1, 8},
    [M40_GGML_F64] = {"f64", 1, 8},
    [M40_GGML_IQ1_M] = {"iq1_m", 256, 32 + 16 + 8}, /* qs, qh, scales (d in them) */
    [M40_GGML_BF16] = {"bf16", 1, 2},
};

const m40_ggml_type_info *m40_ggml_type_get(uint32_t type) {
    if (type >= M40_GGML_TYPE_COUNT || !k_types[type].name)
        return NULL;
    return &k_types[type];
}

const char *m40_ggml_type_name(uint32_t type) {
    const m40_ggml_type_info *t = m40_ggml_type_get(type);
    return t ? t->name : "unknown";
}

size_t m40_ggml_row_bytes(uint32_t type, uint64_t n) {
    const m40_ggml_type_info *t = m40_ggml_type_get(type);
    if (!t || t->block_elems == 0 || n % t->block_elems != 0)
        return 0;
    uint64_t blocks = n / t->block_elems;
    if (blocks > SIZE_MAX / t->block_bytes)
        return 0;
    return (size_t)(blocks * t->block_bytes);
}
