/* bias.cu - y[t][r] += bias[r] for r < n and every row t: the Q/K/V biases
 * (Qwen2) after a batched projection. Rows of y are `ld` floats apart.
 * Launch: 1-D over n_rows * n threads.
 */
#include "common.cuh"

M40_KERNEL void m40_add_bias_f32(float *y, const float *bias, int n, int n_rows, int ld) {
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx < (long long)n * n_rows)
        y[(idx / n) * ld + idx % n] += bias[idx % n];
}
