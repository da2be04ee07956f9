/* test_cpu_ops.c - the CPU reference operations, checked by hand-worked
 * values and by properties that any correct implementation must have. */
#include <math.h>
#include <stdlib.h>

#include "backend/cpu/ops.h"
#include "check.h"
#include "quant/fp16.h"
#include "quant/ggml_types.h"
#include "quant/quant.h"

static int close_to(float a, float b, float tol) {
    return fabsf(a - b) <= tol;
}

static void test_rmsnorm(void) {
    /* x = (3, 4): mean square 12.5, scale 1/sqrt(12.5 + eps) */
    float x[2] = {3.0f, 4.0f}, w[2] = {1.0f, 2.0f}, y[2];
    m40_op_rmsnorm(y, x, w, 2, 0.0f);
    CHECK(close_to(y[0], 3.0f / sqrtf(12.5f), 1e-6f));
    CHECK(close_to(y[1], 8.0f / sqrtf(12.5f), 1e-6f));
    m40_op_rmsnorm(x, x, w, 2, 0.0f); /* in place */
    CHECK(close_to(x[0], y[0], 0.0f) && close_to(x[1], y[1], 0.0f));
}

static void test_rope(void) {
    /* Position 0 is the identity; any position keeps each pair's norm. */
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[8];
    memcpy(y, x, sizeof x);
    m40_op_rope(y, 2, 4, 4, 0, 10000.0f, 1.0f, NULL, M40_ROPE_NORM);
    CHECK(memcmp(x, y, sizeof x) == 0);
    m40_op_rope(y, 2, 4, 4, 7, 10000.0f, 1.0f, NULL, M40_ROPE_NORM);
    CHECK(close_to(hypotf(y[0], y[1]), hypotf(1, 2), 1e-5f));
    CHECK(close_to(hypotf(y[6], y[7]), hypotf(7, 8), 1e-5f));
    /* pair 0 turns by exactly pos radians: (1, 0) at pos 1 -> (cos 1, sin 1) */
    float n[4] = {1, 0, 0, 0};
    m40_op_rope(n, 1, 4, 4, 1, 10000.0f, 1.0f, NULL, M40_ROPE_NORM);
    CHECK(close_to(n[0], cosf(1.0f), 1e-6f) && close_to(n[1], sinf(1.0f), 1e-6f));
    /* NeoX pairs element 0 with element 2 (rope_dim 4) */
    float z[4] = {1, 0, 0, 0};
    m40_op_rope(z, 1, 4, 4, 1, 10000.0f, 1.0f, NULL, M40_ROPE_NEOX);
    CHECK(close_to(z[0], cosf(1.0f), 1e-6f) && close_to(z[2], sinf(1.0f), 1e-6f));
    CHECK(z[1] == 0.0f);
    /* pair 1: angle = pos * base^(-2/4) = 1/100 at base 10000; frequency
     * factor 2 halves it; freq_scale 0.5 halves it again */
    float f[4] = {0, 0, 1, 0}, ff[2] = {1.0f, 2.0f};
    m40_op_rope(f, 1, 4, 4, 1, 10000.0f, 0.5f, ff, M40_ROPE_NORM);
    CHECK(close_to(f[2], cosf(0.0025f), 1e-7f) && close_to(f[3], sinf(0.0025f), 1e-7f));
    /* dims past rope_dim stay */
    float p[4] = {1, 2, 3, 4};
    m40_op_rope(p, 1, 4, 2, 5, 10000.0f, 1.0f, NULL, M40_ROPE_NORM);
    CHECK(p[2] == 3.0f && p[3] == 4.0f);
}

static void test_softmax_swiglu_add(void) {
    float x[3] = {1.0f, 2.0f, 3.0f};
    m40_op_softmax(x, 3);
    CHECK(close_to(x[0] + x[1] + x[2], 1.0f, 1e-6f));
    CHECK(close_to(x[2] / x[1], expf(1.0f), 1e-5f));
    float big[2] = {1000.0f, 1000.0f}; /* no overflow */
    m40_op_softmax(big, 2);
    CHECK(big[0] == 0.5f && big[1] == 0.5f);
    float g[2] = {0.0f, 2.0f}, u[2] = {5.0f, 3.0f}, y[2];
    m40_op_swiglu(y, g, u, 2);
    CHECK(y[0] == 0.0f && close_to(y[1], 2.0f / (1.0f + expf(-2.0f)) * 3.0f, 1e-6f));
    m40_op_add(y, g, u, 2);
    CHECK(y[0] == 5.0f && y[1] == 5.0f);
}

static void test_attention(void) {
    /* One position: the output is that position's value, for every head.
     * 4 query heads over 2 KV heads of dim 2. */
    uint16_t k[4], v[4];
    float kv_k[4] = {1, 0, 0, 1}, kv_v[4] = {0.5f, -1.0f, 2.0f, 0.25f};
    for (int i = 0; i < 4; i++) {
        k[i] = m40_fp32_to_fp16(kv_k[i]);
        v[i] = m40_fp32_to_fp16(kv_v[i]);
    }
    float q[8] = {1, 2, 3, 4, 5, 6, 7, 8}, out[8], scores[2];
    m40_op_attention(out, q, k, v, 1, 4, 4, 2, 2, scores);
    CHECK(out[0] == 0.5f && out[1] == -1.0f && out[2] == 0.5f && out[3] == -1.0f);
    CHECK(out[4] == 2.0f && out[5] == 0.25f && out[6] == 2.0f && out[7] == 0.25f);

    /* Two positions, one head of dim 2: weights softmax(q.k / sqrt 2) */
    uint16_t k2[4], v2[4];
    float kk[4] = {1, 0, 0, 1}, vv[4] = {1, 0, 0, 1};
    for (int i = 0; i < 4; i++) {
        k2[i] = m40_fp32_to_fp16(kk[i]);
        v2[i] = m40_fp32_to_fp16(vv[i]);
    }
    float q2[2] = {2.0f, 0.0f}, o2[2], sc2[2];
    m40_op_attention(o2, q2, k2, v2, 2, 2, 1, 1, 2, sc2);
    float s0 = 2.0f / sqrtf(2.0f), w0 = 1.0f / (1.0f + expf(-s0));
    CHECK(close_to(o2[0], w0, 1e-6f) && close_to(o2[1], 1.0f - w0, 1e-6f));
}

/* The attention over a span, as its specification says it: per head, each
 * position's score is one dot product of q with the position's decoded key,
 * a product and a sum per element in element order from 0, scaled (and
 * soft-capped); softmax; then the values weighted and summed in position
 * order. m40_op_attention_span runs several positions' dot products side
 * by side; each must still have exactly these bits. */
static void attention_spec(float *out, const float *q, const m40_kv_view *kv, int32_t first,
                           int32_t n_pos, int32_t n_head, int32_t n_head_kv, int32_t hd,
                           float scale, float softcap) {
    static float scores[64], row[M40_OP_MAX_HEAD_DIM];
    size_t kh = m40_ggml_row_bytes(kv->k_type, hd), vh = m40_ggml_row_bytes(kv->v_type, hd);
    for (int32_t h = 0; h < n_head; h++) {
        int32_t g = h / (n_head / n_head_kv);
        for (int32_t t = first; t < n_pos; t++) {
            const unsigned char *kr = (const unsigned char *)kv->k + (size_t)t * kv->k_row;
            CHECK(m40_dequantize_row(kv->k_type, kr + (size_t)g * kh, row, hd, NULL) == 0);
            float dot = 0.0f;
            for (int32_t i = 0; i < hd; i++)
                dot += q[h * hd + i] * row[i];
            float sc = dot * scale;
            scores[t - first] = softcap > 0.0f ? softcap * tanhf(sc / softcap) : sc;
        }
        m40_op_softmax(scores, n_pos - first);
        float *o = out + h * hd;
        for (int32_t i = 0; i < hd; i++)
            o[i] = 0.0f;
        for (int32_t t = first; t < n_pos; t++) {
            const unsigned char *vr = (const unsigned char *)kv->v + (size_t)t * kv->v_row;
            CHECK(m40_dequantize_row(kv->v_type, vr + (size_t)g * vh, row, hd, NULL) == 0);
            for (int32_t i = 0; i < hd; i++)
                o[i] += scores[t - first] * row[i];
        }
    }
}

/* Random keys and values of every cache type, head dims 64 to 256 (80
 * only where the type's blocks divide it), spans
 * of 1 to 21 positions and a sliding window's later start: the op's bits
 * are the specification's. */
static void test_attention_span_bits(void) {
    enum { H = 4, HKV = 2, MAX_POS = 21, MAX_HD = 256 };
    static unsigned char k[MAX_POS * HKV * MAX_HD * 4], v[MAX_POS * HKV * MAX_HD * 4];
    static float q[H * MAX_HD], vals[HKV * MAX_HD], got[H * MAX_HD], want[H * MAX_HD],
        scores[MAX_POS];
    const uint32_t types[] = {M40_GGML_F16, M40_GGML_F32, M40_GGML_Q8_0, M40_GGML_Q4_0};
    const int32_t dims[] = {64, 80, 128, 256};
    unsigned seed = 7;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
            int32_t hd = dims[di];
            if (m40_ggml_row_bytes(types[ti], (uint64_t)hd) == 0)
                continue; /* 80 is not a whole number of 32-element blocks */
            size_t row = m40_ggml_row_bytes(types[ti], (uint64_t)HKV * hd);
            for (int32_t t = 0; t < MAX_POS; t++) {
                for (int c = 0; c < 2; c++) {
                    for (int i = 0; i < HKV * hd; i++) {
                        seed = seed * 1103515245u + 12345u;
                        vals[i] = (float)((seed >> 8) & 0xFFFF) / 32768.0f - 1.0f;
                    }
                    CHECK(m40_quantize_row(types[ti], vals, (c ? v : k) + (size_t)t * row, HKV * hd,
                                           NULL) == 0);
                }
            }
            for (int i = 0; i < H * hd; i++)
                q[i] = (float)((i * 37) % 23) / 7.0f - 1.5f;
            m40_kv_view kv = {k, v, types[ti], types[ti], row, row};
            int bad = 0;
            for (int32_t n = 1; n <= MAX_POS; n++) {
                for (int32_t first = 0; first < n; first += 5) {
                    float cap = n % 2 ? 0.0f : 0.5f;
                    float scale = 1.0f / sqrtf((float)hd);
                    m40_op_attention_span(got, q, &kv, first, n, H, HKV, hd, scale, cap, scores);
                    attention_spec(want, q, &kv, first, n, H, HKV, hd, scale, cap);
                    bad += memcmp(got, want, (size_t)H * hd * sizeof *got) != 0;
                }
            }
            if (bad)
                fprintf(stderr, "attention span %s hd %d: %d spans differ from the spec\n",
                        m40_ggml_type_name(types[ti]), hd, bad);
            CHECK(bad == 0);
        }
    }
}

int main(void) {
    test_rmsnorm();
    test_rope();
    test_softmax_swiglu_add();
    test_attention();
    test_attention_span_bits();
    return check_report();
}
