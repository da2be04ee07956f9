/* ops.c - see ops.h. */
#include "backend/cpu/ops.h"

#include "model/model.h"
#include "quant/fp16.h"
#include "quant/ggml_types.h"
#include "quant/quant.h"

#include <math.h>
#include <string.h>

void m40_op_rmsnorm(float *out, const float *x, const float *w, int32_t n, float eps) {
    double ss = 0.0;
    for (int32_t i = 0; i < n; i++)
        ss += (double)x[i] * (double)x[i];
    float scale = (float)(1.0 / sqrt(ss / n + (double)eps));
    for (int32_t i = 0; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

void m40_op_rope_ext(float *x, int32_t n_head, int32_t head_dim, int32_t rope_dim, int32_t pos,
                     float freq_base, float freq_scale, const float *freq_factors,
                     m40_rope_style style, const m40_rope_ext *ext) {
    int32_t half = rope_dim / 2;
    const int yarn = ext && ext->yarn;
    double low = 0.0, high = 0.0, mscale = ext ? ext->mscale : 1.0;
    if (yarn)
        m40_rope_yarn_range(rope_dim, ext->orig_ctx, freq_base, ext->beta_fast, ext->beta_slow,
                            &low, &high);
    for (int32_t j = 0; j < half; j++) {
        double inv_freq = pow((double)freq_base, -2.0 * j / rope_dim);
        double angle = (double)pos * freq_scale * inv_freq;
        if (yarn) { /* extrapolated (unscaled) share r of the angle */
            double y = (j - low) / (high - low > 0.001 ? high - low : 0.001);
            double r = 1.0 - (y < 0.0 ? 0.0 : y > 1.0 ? 1.0 : y);
            angle = (double)pos * inv_freq * (freq_scale * (1.0 - r) + r);
        }
        if (freq_factors)
            angle /= freq_factors[j];
        float c = (float)(cos(angle) * mscale), s = (float)(sin(angle) * mscale);
        /* NORM rotates neighbours; NEOX rotates element j with j + half. */
        int32_t i0 = style == M40_ROPE_NEOX ? j : 2 * j;
        int32_t i1 = style == M40_ROPE_NEOX ? j + half : 2 * j + 1;
        for (int32_t h = 0; h < n_head; h++) {
            float *hx = x + (size_t)h * head_dim;
            float a = hx[i0], b = hx[i1];
            hx[i0] = a * c - b * s;
            hx[i1] = a * s + b * c;
        }
    }
}

void m40_op_rope(float *x, int32_t n_head, int32_t head_dim, int32_t rope_dim, int32_t pos,
                 float freq_base, float freq_scale, const float *freq_factors,
                 m40_rope_style style) {
    m40_op_rope_ext(x, n_head, head_dim, rope_dim, pos, freq_base, freq_scale, freq_factors, style,
                    NULL);
}

void m40_op_softmax(float *x, int32_t n) {
    float max = x[0];
    for (int32_t i = 1; i < n; i++)
        max = x[i] > max ? x[i] : max;
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (int32_t i = 0; i < n; i++)
        x[i] *= inv;
}

void m40_op_swiglu(float *out, const float *gate, const float *up, int32_t n) {
    for (int32_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void m40_op_geglu(float *out, const float *gate, const float *up, int32_t n) {
    const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
    for (int32_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = 0.5f * g * (1.0f + tanhf(k * (g + 0.044715f * g * g * g))) * up[i];
    }
}

void m40_op_add(float *y, const float *a, const float *b, int32_t n) {
    for (int32_t i = 0; i < n; i++)
        y[i] = a[i] + b[i];
}

/* Positions whose q . k run side by side in m40_op_attention_span. */
#define ATT_LANES 8

/* dot[j] = q . k_j for the n (<= ATT_LANES) keys rows[j][head_dim]: each a
 * product and a sum per element, in element order from 0, as a single
 * dot product would run. A full set of ATT_LANES chains interleaves (a
 * constant count, kept in registers), so their adds overlap instead of
 * each waiting for the one before; a span's last few run one by one. */
static void dots(float *dot, const float *q, const float (*rows)[M40_OP_MAX_HEAD_DIM], int n,
                 int32_t head_dim) {
    float d[ATT_LANES] = {0};
    if (n == ATT_LANES) {
        for (int32_t i = 0; i < head_dim; i++)
            for (int j = 0; j < ATT_LANES; j++)
                d[j] += q[i] * rows[j][i];
    } else {
        for (int j = 0; j < n; j++)
            for (int32_t i = 0; i < head_dim; i++)
                d[j] += q[i] * rows[j][i];
    }
    memcpy(dot, d, (size_t)n * sizeof *dot);
}

void m40_op_attention_span(float *out, const float *q, const m40_kv_view *kv, int32_t first,
                           int32_t n_pos, int32_t n_head, int32_t n_head_kv, int32_t head_dim,
                           float scale, float softcap, float *scores) {
    int32_t group = n_head / n_head_kv, n = n_pos - first;
    float row[M40_OP_MAX_HEAD_DIM], keys[ATT_LANES][M40_OP_MAX_HEAD_DIM];
    /* byte offset of KV head g within a position's row */
    size_t k_head = m40_ggml_row_bytes(kv->k_type, head_dim);
    size_t v_head = m40_ggml_row_bytes(kv->v_type, head_dim);
    for (int32_t h = 0; h < n_head; h++) {
        const float *qh = q + (size_t)h * head_dim;
        int32_t g = h / group;
        for (int32_t t0 = first; t0 < n_pos; t0 += ATT_LANES) {
            int m = n_pos - t0 < ATT_LANES ? (int)(n_pos - t0) : ATT_LANES;
            for (int j = 0; j < m; j++) {
                const unsigned char *kr =
                    (const unsigned char *)kv->k + (size_t)(t0 + j) * kv->k_row;
                m40_dequantize_row(kv->k_type, kr + (size_t)g * k_head, keys[j], head_dim, NULL);
            }
            float dot[ATT_LANES];
            dots(dot, qh, (const float(*)[M40_OP_MAX_HEAD_DIM])keys, m, head_dim);
            for (int j = 0; j < m; j++) {
                float sc = dot[j] * scale;
                scores[t0 + j - first] = softcap > 0.0f ? softcap * tanhf(sc / softcap) : sc;
            }
        }
        m40_op_softmax(scores, n);
        float *oh = out + (size_t)h * head_dim;
        memset(oh, 0, (size_t)head_dim * sizeof *oh);
        for (int32_t t = first; t < n_pos; t++) {
            const unsigned char *vr = (const unsigned char *)kv->v + (size_t)t * kv->v_row;
            m40_dequantize_row(kv->v_type, vr + (size_t)g * v_head, row, head_dim, NULL);
            float p = scores[t - first];
            for (int32_t i = 0; i < head_dim; i++)
                oh[i] += p * row[i];
        }
    }
}

void m40_op_attention_kv(float *out, const float *q, const void *k, const void *v, int kv_f32,
                         int32_t n_pos, size_t kv_stride, int32_t n_head, int32_t n_head_kv,
                         int32_t head_dim, float *scores) {
    uint32_t type = kv_f32 ? M40_GGML_F32 : M40_GGML_F16;
    size_t row = kv_stride * (kv_f32 ? sizeof(float) : sizeof(uint16_t));
    m40_kv_view view = {k, v, type, type, row, row};
    m40_op_attention_span(out, q, &view, 0, n_pos, n_head, n_head_kv, head_dim,
                          1.0f / sqrtf((float)head_dim), 0.0f, scores);
}

void m40_op_attention(float *out, const float *q, const uint16_t *k, const uint16_t *v,
                      int32_t n_pos, size_t kv_stride, int32_t n_head, int32_t n_head_kv,
                      int32_t head_dim, float *scores) {
    m40_op_attention_kv(out, q, k, v, 0, n_pos, kv_stride, n_head, n_head_kv, head_dim, scores);
}
