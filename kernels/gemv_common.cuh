/* gemv_common.cuh - what the single-row (gemv.cu) and batched
 * (gemv_batch.cu) mat-vec kernels share: the per-group arithmetic. Both
 * must compute a row's output with the very same operations in the same
 * order (batch invariance), so the dot products, the sums and the way a
 * group's dot product is scaled live here once, written with explicit
 * fmaf where a product meets a sum: the compiler may not fuse a multiply
 * and an add differently in the two kernels.
 */
#ifndef M40_KERNELS_GEMV_COMMON_CUH
#define M40_KERNELS_GEMV_COMMON_CUH

#include "common.cuh"

/* The dot product of N weights and N x values, summed in index order. */
template <int N> static __device__ __forceinline__ float m40_dot(const float *v, const float *xv) {
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < N; i++)
        s = fmaf(v[i], xv[i], s);
    return s;
}

/* x[32 g .. 32 g + 31] into registers (x is 16-byte aligned). */
static __device__ __forceinline__ void m40_load_x32(const float *x, int g, float *xv) {
    const float4 *x4 = (const float4 *)(x + g * 32);
#pragma unroll
    for (int k = 0; k < 8; k++) {
        float4 a = __ldg(x4 + k);
        xv[4 * k] = a.x, xv[4 * k + 1] = a.y, xv[4 * k + 2] = a.z, xv[4 * k + 3] = a.w;
    }
}

/* The sum of x[32 g .. 32 g + 31], in index order. */
static __device__ __forceinline__ float m40_sum32(const float *xv) {
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 32; i++)
        s += xv[i];
    return s;
}

/* A K-quant (or Q4_1/Q5_x) group's share of a row's dot product: its
 * scale times the dot product of its unscaled values, minus its min times
 * the sum of x (dmn is 0 for Q5_0). */
static __device__ __forceinline__ float m40_share_sm(float dsc, float dmn, const float *v,
                                                     const float *xv, float sx) {
    return fmaf(dsc, m40_dot<32>(v, xv), -(dmn * sx));
}

/* A Q6_K group's share: two halves of 16 with a scale each. */
static __device__ __forceinline__ float m40_share_q6_k(float s0, float s1, const float *v,
                                                       const float *xv) {
    return fmaf(s1, m40_dot<16>(v + 16, xv + 16), s0 * m40_dot<16>(v, xv));
}

#endif /* M40_KERNELS_GEMV_COMMON_CUH */
