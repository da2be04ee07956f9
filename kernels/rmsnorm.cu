/* rmsnorm.cu - y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w, per row.
 *
 * x, y: [rows][n] FP32 (y may alias x); w: [n] FP32.
 * Launch: gridDim rows, blockDim 256. Each block sums its row's squares
 * (FP32, per-thread partial sums, then warp shuffles and shared memory).
 */
#include "common.cuh"

M40_KERNEL void m40_rmsnorm_f32(float *y, const float *x, const float *w, int n, float eps) {
    __shared__ float warp_sums[32];
    const float *xr = x + (long long)blockIdx.x * n;
    float *yr = y + (long long)blockIdx.x * n;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        ss += xr[i] * xr[i];
    ss = m40_warp_sum(ss);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0)
        warp_sums[warp] = ss;
    __syncthreads();
    if (warp == 0) {
        int n_warps = (blockDim.x + 31) >> 5;
        ss = lane < n_warps ? warp_sums[lane] : 0.0f;
        ss = m40_warp_sum(ss);
        if (lane == 0)
            warp_sums[0] = ss;
    }
    __syncthreads();
    float scale = rsqrtf(warp_sums[0] / (float)n + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        yr[i] = xr[i] * scale * w[i];
}
