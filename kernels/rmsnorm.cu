/* rmsnorm.cu - y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w, per row.
 *
 * x, y: [rows][n] FP32 (y may alias x); w: [n] FP32.
 * Launch: gridDim rows, blockDim M40_RMSNORM_THREADS (1024). A decode step
 * normalizes one row, so the kernel's latency is what counts: each thread
 * loads its (up to 8) elements at once and keeps them in registers for the
 * second pass, instead of a loop of dependent loads read twice. Rows longer
 * than 8 x 1024 take a plain loop for the rest.
 */
#include "common.cuh"

#define M40_RMSNORM_PER_THREAD 8

M40_KERNEL void m40_rmsnorm_f32(float *y, const float *x, const float *w, int n, float eps) {
    __shared__ float warp_sums[32];
    const float *xr = x + (long long)blockIdx.x * n;
    float *yr = y + (long long)blockIdx.x * n;
    const int tid = threadIdx.x, nt = blockDim.x, held = M40_RMSNORM_PER_THREAD * nt;
    float v[M40_RMSNORM_PER_THREAD], ss = 0.0f;
#pragma unroll
    for (int k = 0; k < M40_RMSNORM_PER_THREAD; k++) {
        int i = tid + k * nt;
        v[k] = i < n ? __ldg(xr + i) : 0.0f;
    }
#pragma unroll
    for (int k = 0; k < M40_RMSNORM_PER_THREAD; k++)
        ss += v[k] * v[k];
    for (int i = held + tid; i < n; i += nt)
        ss += xr[i] * xr[i];
    ss = m40_warp_sum(ss);
    int warp = tid >> 5, lane = tid & 31;
    if (lane == 0)
        warp_sums[warp] = ss;
    __syncthreads();
    if (warp == 0) {
        int n_warps = (nt + 31) >> 5;
        ss = lane < n_warps ? warp_sums[lane] : 0.0f;
        ss = m40_warp_sum(ss);
        if (lane == 0)
            warp_sums[0] = ss;
    }
    __syncthreads();
    float scale = rsqrtf(warp_sums[0] / (float)n + eps);
    /* the tail is read again before any write of this row (y may alias x) */
    for (int i = held + tid; i < n; i += nt)
        yr[i] = xr[i] * scale * w[i];
#pragma unroll
    for (int k = 0; k < M40_RMSNORM_PER_THREAD; k++) {
        int i = tid + k * nt;
        if (i < n)
            yr[i] = v[k] * scale * __ldg(w + i);
    }
}
