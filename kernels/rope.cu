/* rope.cu - rotary position embedding.
 *
 * Two steps, so the expensive part runs once per forward step instead of
 * once per layer and head:
 *  m40_rope_table: cs[t][j] = (cos, sin) of
 *      angle = pos[t] * freq_scale * base^(-2j / rope_dim) / factor[j]
 *    for pair j < rope_dim/2, computed in double precision (angles reach
 *    thousands of radians; FP32 would lose ~1e-3 of them). factor[j] is
 *    freq_factors[j] (Llama 3's rope_freqs) or 1.
 *    Launch: 1-D over n_tokens * rope_dim/2 threads.
 *  m40_rope_apply: rotates x[t][h*head_dim ...] in place by cs[t][j]. NORM
 *    style pairs (2j, 2j+1), NEOX pairs (j, j + rope_dim/2); dims past
 *    rope_dim are untouched. x rows are `row_stride` floats apart.
 *    Launch: gridDim (n_tokens, n_head), blockDim rope_dim/2.
 */
#include "common.cuh"

M40_KERNEL void m40_rope_table(float2 *cs, const int *pos, int n_tokens, int rope_dim,
                               float freq_base, float freq_scale, const float *freq_factors) {
    int half = rope_dim / 2;
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n_tokens * half)
        return;
    int t = idx / half, j = idx % half;
    double inv_freq = pow((double)freq_base, -2.0 * j / rope_dim);
    double angle = (double)pos[t] * (double)freq_scale * inv_freq;
    if (freq_factors)
        angle /= (double)freq_factors[j];
    double s, c;
    sincos(angle, &s, &c);
    cs[idx] = make_float2((float)c, (float)s);
}

M40_KERNEL void m40_rope_apply(float *x, const float2 *cs, int head_dim, int rope_dim, int neox,
                               int row_stride) {
    int t = blockIdx.x, h = blockIdx.y, j = threadIdx.x, half = rope_dim / 2;
    if (j >= half)
        return;
    float *hx = x + (long long)t * row_stride + (long long)h * head_dim;
    float2 r = cs[t * half + j];
    int i0 = neox ? j : 2 * j, i1 = neox ? j + half : 2 * j + 1;
    float a = hx[i0], b = hx[i1];
    hx[i0] = a * r.x - b * r.y;
    hx[i1] = a * r.y + b * r.x;
}
