/* quant.c - the public entry points of quant.h: argument checks, then
 * dispatch to one block function per type (dequant_*.c, quantize_*.c).
 *
 * Owns: the table of per-type block functions. Touches: nothing else.
 */
#include "quant/quant.h"

#include <inttypes.h>

#include "quant/quant_impl.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "m40-llm's block formats assume a little-endian host (as GGUF files are)"
#endif

typedef void (*dequant_fn)(const uint8_t *src, float *dst, int64_t nb);
typedef void (*quant_fn)(const float *src, uint8_t *dst, int64_t nb);

/* The plain types go through the same table: one "block" is one element. */
static void dequant_f32(const uint8_t *src, float *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void quant_f32(const float *src, uint8_t *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void dequant_f16(const uint8_t *src, float *dst, int64_t n) {
    m40_fp16_to_fp32_row(src, dst, n);
}

static void quant_f16(const float *src, uint8_t *dst, int64_t n) {
    m40_fp32_to_fp16_row(src, dst, n);
}

static void dequant_bf16(const uint8_t *src, float *dst, int64_t n) {
    m40_bf16_to_fp32_row(src, dst, n);
}

static void quant_bf16(const float *src, uint8_t *dst, int64_t n) {
    m40_fp32_to_bf16_row(src, dst, n);
}

typedef struct codec {
    dequant_fn dequant;
    quant_fn quant;
} codec;

static const codec k_codecs[M40_GGML_TYPE_COUNT] = {
    [M40_GGML_F32] = {dequant_f32, quant_f32},
    [M40_GGML_F16] = {dequant_f16, quant_f16},
    [M40_GGML_BF16] = {dequant_bf16, quant_bf16},
    [M40_GGML_Q4_0] = {m40_dequant_q4_0, m40_quant_q4_0},
    [M40_GGML_Q4_1] = {m40_dequant_q4_1, m40_quant_q4_1},
    [M40_GGML_Q5_0] = {m40_dequant_q5_0, m40_quant_q5_0},
    [M40_GGML_Q5_1] = {m40_dequant_q5_1, m40_quant_q5_1},
    [M40_GGML_Q8_0] = {m40_dequant_q8_0, m40_quant_q8_0},
    [M40_GGML_Q8_1] = {m40_dequant_q8_1, m40_quant_q8_1},
    [M40_GGML_Q2_K] = {m40_dequant_q2_k, m40_quant_q2_k},
    [M40_GGML_Q3_K] = {m40_dequant_q3_k, m40_quant_q3_k},
    [M40_GGML_Q4_K] = {m40_dequant_q4_k, m40_quant_q4_k},
    [M40_GGML_Q5_K] = {m40_dequant_q5_k, m40_quant_q5_k},
    [M40_GGML_Q6_K] = {m40_dequant_q6_k, m40_quant_q6_k},
    [M40_GGML_Q8_K] = {m40_dequant_q8_k, m40_quant_q8_k},
    /* no quantizer yet: GGML's searches a scale per block */
    [M40_GGML_IQ4_NL] = {m40_dequant_iq4_nl, NULL},
    [M40_GGML_IQ4_XS] = {m40_dequant_iq4_xs, NULL},
    [M40_GGML_IQ2_XXS] = {m40_dequant_iq2_xxs, NULL},
    [M40_GGML_IQ2_XS] = {m40_dequant_iq2_xs, NULL},
    [M40_GGML_IQ2_S] = {m40_dequant_iq2_s, NULL},
    [M40_GGML_IQ3_XXS] = {m40_dequant_iq3_xxs, NULL},
    [M40_GGML_IQ3_S] = {m40_dequant_iq3_s, NULL},
};

static const codec *codec_get(uint32_t type) {
    return type < M40_GGML_TYPE_COUNT ? &k_codecs[type] : NULL;
}

bool m40_quant_can_dequantize(uint32_t type) {
    const codec *c = codec_get(type);
    return c && c->dequant;
}

bool m40_quant_can_quantize(uint32_t type) {
    const codec *c = codec_get(type);
    return c && c->quant;
}

/* Checks that `type` is one `what` handles and that n elements are a whole
 * number of blocks; returns the number of blocks, or -1 with err set. */
static int64_t check_row(const char *what, uint32_t type, int64_t n, bool supported, m40_err *err) {
    const m40_ggml_type_info *t = m40_ggml_type_get(type);
    if (!t || !supported) {
        m40_errf(err, "%s: type %s (%" PRIu32 ") is not supported", what, m40_ggml_type_name(type),
                 type);
        return -1;
    }
    if (n < 0 || n % t->block_elems != 0) {
        m40_errf(err,
                 "%s %s: %" PRId64 " elements is not a whole number of %" PRIu32 "-element blocks",
                 what, t->name, n, t->block_elems);
        return -1;
    }
    return n / t->block_elems;
}

int m40_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n, m40_err *err) {
    const int64_t nb = check_row("dequantize", type, n, m40_quant_can_dequantize(type), err);
    if (nb < 0)
        return -1;
    if (nb > 0)
        k_codecs[type].dequant(src, dst, nb);
    return 0;
}

int m40_dequantize_blocks(uint32_t type, const void *row, int64_t first_block, int64_t n_blocks,
                          float *dst, m40_err *err) {
    const m40_ggml_type_info *t = m40_ggml_type_get(type);
    if (!t || !m40_quant_can_dequantize(type))
        return m40_errf(err, "dequantize: type %s (%" PRIu32 ") is not supported",
                        m40_ggml_type_name(type), type);
    if (first_block < 0 || n_blocks < 0)
        return m40_errf(err,
                        "dequantize %s: bad block range (first %" PRId64 ", count %" PRId64 ")",
                        t->name, first_block, n_blocks);
    if (n_blocks > 0) {
        const uint8_t *src = (const uint8_t *)row + (size_t)first_block * t->block_bytes;
        k_codecs[type].dequant(src, dst, n_blocks);
    }
    return 0;
}

int m40_quantize_row(uint32_t type, const float *src, void *dst, int64_t n, m40_err *err) {
    const int64_t nb = check_row("quantize", type, n, m40_quant_can_quantize(type), err);
    if (nb < 0)
        return -1;
    if (nb > 0)
        k_codecs[type].quant(src, dst, nb);
    return 0;
}
