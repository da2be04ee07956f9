/* test_cpu_ops.c - the CPU reference operations, checked by hand-worked
 * values and by properties that any correct implementation must have. */
#include <math.h>

#include "backend/cpu/ops.h"
#include "check.h"
#include "quant/fp16.h"

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

int main(void) {
    test_rmsnorm();
    test_rope();
    test_softmax_swiglu_add();
    test_attention();
    return check_report();
}
