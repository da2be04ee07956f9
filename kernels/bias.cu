/* bias.cu - y[t][r] += bias[r] for every row t: the Q/K/V biases (Qwen2)
 * after a batched projection. Launch: 1-D over n_rows * n threads.
 */
#include "common.cuh"

M40_KERNEL void m40_add_bias_f32(float *y, const float *bias, int n, int n_rows) {
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx < (long long)n * n_rows)
        y[idx] += bias[idx % n];
}
