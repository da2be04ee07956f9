/* head_norm.cu - an RMSNorm over each attention head of q and k (qwen3).
 *
 * x: [T][ld] FP32 rows of the fused projection (qkv), normalized in place:
 * a row's heads h = 0 .. n_head + n_head_kv - 1 lie back to back from its
 * start (q heads, then k heads; v follows and is left alone), each
 * head_dim floats. Head h of a row becomes x / sqrt(mean(x^2) + eps) * w,
 * with w = wq[head_dim] for a q head and wk[head_dim] for a k head.
 * Launch: grid (n_head + n_head_kv, T), one warp per head; head_dim is at
 * most 32 * M40_HEAD_NORM_PER_LANE (256, the attention's limit too).
 * Each head is its own block, so a token's result does not depend on the
 * other tokens of the launch (batch invariance).
 */
#include "common.cuh"

#define M40_HEAD_NORM_PER_LANE 8

M40_KERNEL void m40_head_norm_f32(float *x, const float *wq, const float *wk, int ld, int n_head,
                                  int head_dim, float eps) {
    const int h = blockIdx.x, lane = threadIdx.x;
    float *xh = x + (long long)blockIdx.y * ld + (long long)h * head_dim;
    const float *w = h < n_head ? wq : wk;
    float v[M40_HEAD_NORM_PER_LANE], ss = 0.0f;
#pragma unroll
    for (int k = 0; k < M40_HEAD_NORM_PER_LANE; k++) {
        int i = lane + 32 * k;
        v[k] = i < head_dim ? xh[i] : 0.0f;
        ss = fmaf(v[k], v[k], ss);
    }
    float scale = rsqrtf(m40_warp_sum(ss) / (float)head_dim + eps);
#pragma unroll
    for (int k = 0; k < M40_HEAD_NORM_PER_LANE; k++) {
        int i = lane + 32 * k;
        if (i < head_dim)
            xh[i] = v[k] * scale * __ldg(w + i);
    }
}
