/* moe_combine.cu - a mixture of experts' output into the residual stream:
 *   x[t][c] += sum over j < k of w[t][j] * y[t][j][c]
 * the sum in pick order from 0, then one add to x, each product and sum
 * rounded on its own (no fused multiply-add), as the CPU's moe_block and
 * its residual add compute it.
 * x [n_tokens][d], y [n_tokens][k][d], w [n_tokens][k].
 * Launch: grid (ceil(d / 256), n_tokens), block 256.
 */
#include "common.cuh"

M40_KERNEL void m40_moe_combine(float *x, const float *y, const float *w, int n_tokens, int k,
                                int d) {
    int t = blockIdx.y, c = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n_tokens || c >= d)
        return;
    const float *yt = y + (long long)t * k * d + c;
    float out = 0.0f;
    for (int j = 0; j < k; j++)
        out = __fadd_rn(out, __fmul_rn(w[(long long)t * k + j], yt[(long long)j * d]));
    x[(long long)t * d + c] = __fadd_rn(x[(long long)t * d + c], out);
}
