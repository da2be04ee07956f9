/* argmax.cu - greedy sampling on the GPU: out[0] = index of the largest x.
 * Ties go to the lowest index (as the CPU sampler). NaN never wins.
 * Launch: one block of 1024 threads per row of x[rows][n] (out[rows]).
 */
#include "common.cuh"

static __device__ __forceinline__ void m40_better(float *v, int *i, float v2, int i2) {
    if (v2 > *v || (v2 == *v && i2 < *i)) {
        *v = v2;
        *i = i2;
    }
}

M40_KERNEL void m40_argmax_f32(int *out, const float *x, int n) {
    x += (long long)blockIdx.x * n;
    out += blockIdx.x;
    __shared__ float sv[32];
    __shared__ int si[32];
    float best = -INFINITY;
    int idx = 0x7fffffff;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        m40_better(&best, &idx, x[i], i);
    for (int off = 16; off > 0; off >>= 1)
        m40_better(&best, &idx, __shfl_xor_sync(0xffffffffu, best, off),
                   __shfl_xor_sync(0xffffffffu, idx, off));
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0) {
        sv[warp] = best;
        si[warp] = idx;
    }
    __syncthreads();
    if (warp == 0) {
        int n_warps = blockDim.x >> 5;
        best = lane < n_warps ? sv[lane] : -INFINITY;
        idx = lane < n_warps ? si[lane] : 0x7fffffff;
        for (int off = 16; off > 0; off >>= 1)
            m40_better(&best, &idx, __shfl_xor_sync(0xffffffffu, best, off),
                       __shfl_xor_sync(0xffffffffu, idx, off));
        if (lane == 0)
            out[0] = idx == 0x7fffffff ? 0 : idx;
    }
}
