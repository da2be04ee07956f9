/* kv_cache.cuh - the KV cache's element types, shared by the kernels that
 * write it (rope.cu, kv_quant.cu) and read it (attention.cu).
 *
 * A cache is rows of kv_dim elements (one per position) of one type, its
 * code that of m40_kv_type (backend.h): 0 FP16, 1 FP32, 2 Q8_0, 3 Q4_0.
 * The quantized types are GGML's blocks of 32 (kv_dim is a multiple of
 * 32, so rows are whole blocks and element i lies in block i / 32):
 *   Q8_0: 34 bytes, FP16 scale d, then 32 int8 quants: x = d * q
 *   Q4_0: 18 bytes, FP16 scale d, then 16 bytes: element j < 16 in the low
 *         nibble of byte j, element j + 16 in its high nibble: x = d * (q - 8)
 * Blocks are 2-byte aligned, so the scale is read as one 16-bit word.
 */
#ifndef M40_KERNELS_KV_CACHE_CUH
#define M40_KERNELS_KV_CACHE_CUH

#include <cuda_fp16.h>

#define M40_KV_F16  0
#define M40_KV_F32  1
#define M40_KV_Q8_0 2
#define M40_KV_Q4_0 3

/* Bytes of the first n elements of a cache (n a multiple of 32 for the
 * quantized types). */
static __device__ __forceinline__ long long m40_kv_bytes(long long n, int kv_type) {
    return kv_type == M40_KV_F32    ? n * 4
           : kv_type == M40_KV_Q8_0 ? n / 32 * 34
           : kv_type == M40_KV_Q4_0 ? n / 32 * 18
                                    : n * 2;
}

static __device__ __forceinline__ float m40_kv_half(const unsigned char *p) {
    return __half2float(__ushort_as_half(*(const unsigned short *)p));
}

/* Element i of a cache. */
static __device__ __forceinline__ float m40_kv_get(const void *cache, long long i, int kv_type) {
    const unsigned char *c = (const unsigned char *)cache;
    if (kv_type == M40_KV_F32)
        return ((const float *)cache)[i];
    if (kv_type == M40_KV_F16)
        return __half2float(__ushort_as_half(((const unsigned short *)cache)[i]));
    const int j = (int)(i & 31);
    if (kv_type == M40_KV_Q8_0) {
        const unsigned char *b = c + (i >> 5) * 34;
        return m40_kv_half(b) * (float)(signed char)b[2 + j];
    }
    const unsigned char *b = c + (i >> 5) * 18;
    const int q = j < 16 ? (b[2 + j] & 15) : (b[2 + j - 16] >> 4);
    return m40_kv_half(b) * (float)(q - 8);
}

/* Elements i .. i+7 of a cache (i a multiple of 8) in flight: fetch issues
 * the loads, get gives them as FP32 once they land (the arithmetic of
 * m40_kv_get); zero stands for 8 elements of 0 (its raw bits, so get
 * needs no test). */
template <int KV> struct m40_kv8;
template <> struct m40_kv8<M40_KV_F32> {
    float4 a, b;
    __device__ __forceinline__ void zero() {
        a = b = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
    __device__ __forceinline__ void fetch(const void *c, long long i) {
        a = __ldg((const float4 *)((const float *)c + i));
        b = __ldg((const float4 *)((const float *)c + i) + 1);
    }
    __device__ __forceinline__ void get(float *f) const {
        f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w;
        f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
    }
};
template <> struct m40_kv8<M40_KV_F16> {
    uint4 w;
    __device__ __forceinline__ void zero() {
        w = make_uint4(0u, 0u, 0u, 0u); /* FP16 +0 */
    }
    __device__ __forceinline__ void fetch(const void *c, long long i) {
        w = __ldg((const uint4 *)((const unsigned short *)c + i));
    }
    __device__ __forceinline__ void get(float *f) const {
        const unsigned u[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
        for (int k = 0; k < 4; k++) {
            f[2 * k] = __half2float(__ushort_as_half((unsigned short)(u[k] & 0xffffu)));
            f[2 * k + 1] = __half2float(__ushort_as_half((unsigned short)(u[k] >> 16)));
        }
    }
};
template <> struct m40_kv8<M40_KV_Q8_0> {
    unsigned short d, q[4];
    __device__ __forceinline__ void zero() {
        d = q[0] = q[1] = q[2] = q[3] = 0; /* scale +0 */
    }
    __device__ __forceinline__ void fetch(const void *c, long long i) {
        const unsigned short *b =
            (const unsigned short *)((const unsigned char *)c + (i >> 5) * 34);
        const int j0 = (int)(i & 31); /* 0, 8, 16 or 24: quants at byte 2 + j0 */
        d = __ldg(b);
#pragma unroll
        for (int k = 0; k < 4; k++)
            q[k] = __ldg(b + 1 + j0 / 2 + k);
    }
    __device__ __forceinline__ void get(float *f) const {
        const float s = __half2float(__ushort_as_half(d));
#pragma unroll
        for (int k = 0; k < 4; k++) {
            f[2 * k] = s * (float)(signed char)(q[k] & 0xff);
            f[2 * k + 1] = s * (float)(signed char)(q[k] >> 8);
        }
    }
};
template <> struct m40_kv8<M40_KV_Q4_0> {
    unsigned short d, q[4];
    int hi; /* elements 16..31 of the block: the high nibbles */
    __device__ __forceinline__ void zero() {
        d = q[0] = q[1] = q[2] = q[3] = 0; /* scale +0 */
        hi = 0;
    }
    __device__ __forceinline__ void fetch(const void *c, long long i) {
        const unsigned short *b =
            (const unsigned short *)((const unsigned char *)c + (i >> 5) * 18);
        const int j0 = (int)(i & 31);
        hi = j0 >= 16;
        d = __ldg(b);
#pragma unroll
        for (int k = 0; k < 4; k++)
            q[k] = __ldg(b + 1 + (j0 & 15) / 2 + k);
    }
    __device__ __forceinline__ void get(float *f) const {
        const float s = __half2float(__ushort_as_half(d));
        const int sh = hi ? 4 : 0;
#pragma unroll
        for (int k = 0; k < 4; k++) {
            f[2 * k] = s * (float)((int)((q[k] >> sh) & 15) - 8);
            f[2 * k + 1] = s * (float)((int)((q[k] >> (8 + sh)) & 15) - 8);
        }
    }
};

/* Calls fn<T>(args...) with T the cache type kv_type names (F16 for any
 * other value): a kernel that takes the type at run time keeps one body
 * per type, each reading its elements without a test per element. */
#define M40_KV_DISPATCH(kv_type, fn, ...) \
    switch (kv_type) {                    \
        case M40_KV_F32:                  \
            fn<M40_KV_F32>(__VA_ARGS__);  \
            break;                        \
        case M40_KV_Q8_0:                 \
            fn<M40_KV_Q8_0>(__VA_ARGS__); \
            break;                        \
        case M40_KV_Q4_0:                 \
            fn<M40_KV_Q4_0>(__VA_ARGS__); \
            break;                        \
        default:                          \
            fn<M40_KV_F16>(__VA_ARGS__);  \
    }

#endif /* M40_KERNELS_KV_CACHE_CUH */
