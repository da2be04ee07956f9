/* ops.h - the transformer's operations on FP32 vectors, on the CPU.
 *
 * These are the reference semantics every backend is checked against, so
 * they are written for clarity: plain loops, double accumulation where a
 * sum runs long. Shapes are in each comment; all arrays are dense row-major.
 *
 * Owns: nothing (pure functions). Touches: only the arrays passed in.
 */
#ifndef M40_BACKEND_CPU_OPS_H
#define M40_BACKEND_CPU_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "model/config.h"

/* out[n] = x[n] / sqrt(mean(x^2) + eps) * w[n]. out may alias x. */
void m40_op_rmsnorm(float *out, const float *x, const float *w, int32_t n, float eps);

/* What long-context RoPE adds (GGML's rope_ext): with `yarn`, YaRN (Qwen2.5/3
 * "yarn" scaling, as GGML's rope_yarn and transformers' "yarn" rope type
 * compute it): the dims that turn fewer than beta_slow times over the
 * original context are interpolated (angle times freq_scale), those that
 * turn more than beta_fast times keep their angle, with a linear ramp
 * between. Always: cos and sin times mscale (YaRN: attn_factor (1 + 0.1
 * ln(1 / freq_scale)); LongRoPE: its attention factor). */
typedef struct m40_rope_ext {
    int32_t yarn;
    float orig_ctx, beta_fast, beta_slow, mscale;
} m40_rope_ext;

/* Rotates each of the n_head heads of x[n_head * head_dim] in place for
 * position `pos`: pair j (of rope_dim/2) turns by
 *   angle = pos * freq_scale * base^(-2j / rope_dim) / factor[j]
 * where factor is freq_factors[j] or 1 when freq_factors is NULL (Llama 3's
 * rope_freqs.weight, phi3's LongRoPE factors), with ext (non-NULL) as
 * m40_rope_ext says. Which elements form pair j depends on `style`.
 * Dims past rope_dim are left as they are. */
void m40_op_rope_ext(float *x, int32_t n_head, int32_t head_dim, int32_t rope_dim, int32_t pos,
                     float freq_base, float freq_scale, const float *freq_factors,
                     m40_rope_style style, const m40_rope_ext *ext);

/* m40_op_rope_ext without the extensions. */
void m40_op_rope(float *x, int32_t n_head, int32_t head_dim, int32_t rope_dim, int32_t pos,
                 float freq_base, float freq_scale, const float *freq_factors,
                 m40_rope_style style);

/* x[n] = softmax(x[n]), in place. */
void m40_op_softmax(float *x, int32_t n);

/* out[n] = silu(gate[n]) * up[n], silu(g) = g / (1 + e^-g). out may alias. */
void m40_op_swiglu(float *out, const float *gate, const float *up, int32_t n);

/* out[n] = gelu(gate[n]) * up[n] with GELU's tanh form:
 * gelu(g) = g/2 (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))). out may alias. */
void m40_op_geglu(float *out, const float *gate, const float *up, int32_t n);

/* y[n] = a[n] + b[n]. y may alias a or b. */
void m40_op_add(float *y, const float *a, const float *b, int32_t n);

/* Causal attention of one query position over cached keys and values.
 *   q[n_head * head_dim]         the query (already RoPE'd), FP32
 *   k, v: n_pos rows of kv_stride halves; head g of position t starts at
 *         k[t * kv_stride + g * head_dim] (FP16 storage, FP32 math;
 *         conversions in quant/fp16.h)
 *   out[n_head * head_dim]
 *   scores[n_pos]                scratch
 * Query head h reads KV head h / (n_head / n_head_kv) (GQA). Scale is
 * 1/sqrt(head_dim). */
void m40_op_attention(float *out, const float *q, const uint16_t *k, const uint16_t *v,
                      int32_t n_pos, size_t kv_stride, int32_t n_head, int32_t n_head_kv,
                      int32_t head_dim, float *scores);
/* The same over a cache of FP32 (kv_f32) or FP16 elements. */
void m40_op_attention_kv(float *out, const float *q, const void *k, const void *v, int kv_f32,
                         int32_t n_pos, size_t kv_stride, int32_t n_head, int32_t n_head_kv,
                         int32_t head_dim, float *scores);
/* A slot's layer of the KV cache as the attention reads it: position t's
 * keys at k + t k_row bytes, stored as GGML type k_type (F32, F16, Q8_0,
 * Q4_0; a quantized row's heads start on block boundaries), values alike. */
typedef struct m40_kv_view {
    const void *k, *v;
    uint32_t k_type, v_type;
    size_t k_row, v_row;
} m40_kv_view;

/* The most head_dim the attention ops take (a head's row is decoded into a
 * buffer of that size on the stack). */
#define M40_OP_MAX_HEAD_DIM 512

/* The same over positions first .. n_pos - 1 only (a sliding window; the
 * view still starts at position 0) of a cache of any m40_kv_view type,
 * scores scaled by `scale` and, with softcap > 0, soft-capped:
 * s -> softcap tanh(s / softcap). Each head's key and value rows are
 * decoded to FP32 (quant.h) before the FP32 math. */
void m40_op_attention_span(float *out, const float *q, const m40_kv_view *kv, int32_t first,
                           int32_t n_pos, int32_t n_head, int32_t n_head_kv, int32_t head_dim,
                           float scale, float softcap, float *scores);

#endif /* M40_BACKEND_CPU_OPS_H */
