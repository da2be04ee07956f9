/* common.cuh - what every kernel file shares.
 *
 * Rules for everything under kernels/ (see docs/architecture.md):
 * - Must compile for sm_52 (Maxwell): no half arithmetic, no dp4a, no tensor
 *   cores, no cooperative launch. FP16 is a storage type only, converted to
 *   FP32 with __half2float / __float2half_rn.
 * - One op per file; kernels are extern "C" so the host finds them by name
 *   (cuModuleGetFunction) without C++ name mangling.
 * - All files are compiled together into one fatbin (the build includes each
 *   .cu into a single translation unit), so file-local helpers must be
 *   `static __device__` or live here.
 */
#ifndef M40_KERNELS_COMMON_CUH
#define M40_KERNELS_COMMON_CUH

#define M40_KERNEL extern "C" __global__

/* Sum of v over the 32 lanes of a warp, returned to every lane. */
static __device__ __forceinline__ float m40_warp_sum(float v) {
    for (int off = 16; off > 0; off >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

#endif /* M40_KERNELS_COMMON_CUH */
