/* kv_quant.cu - the KV cache append for Q8_0 and Q4_0 caches.
 *
 * m40_kv_store_quant: for each token t, its k and v heads (in the fused
 * q|k|v row x[t], k already RoPE'd in place by m40_rope_store) go to the
 * cache at position pos[t], quantized a block of 32 at a time with the
 * CPU's quantizer's arithmetic (quant/quantize_legacy.c, GGML's
 * quantize_row_*_ref), so the stored bytes are the CPU reference's:
 *   Q8_0: d = amax / 127, id = 1/d (0 when d is 0), q = round(x * id)
 *         (halves away from zero)
 *   Q4_0: m = the element of largest magnitude (the first of ties), d =
 *         m / -8, id as above, q = min(15, trunc(x * id + 8.5))
 * The products and sums are rounded one operation at a time (__fmul_rn,
 * __fadd_rn): a fused multiply-add would round once and could differ.
 * Launch: grid (n_tokens, 2 * kv_dim / 32), block 32: one warp per block,
 * lane j holds element j. Blocks [0, kv_dim/32) are k's, the rest v's.
 * With slot != NULL token t's cache starts slot[t] * slot_stride elements
 * past k_cache and v_cache (rows of different sequences).
 */
#include <stdint.h>

#include "common.cuh"
#include "kv_cache.cuh"

/* The element of largest magnitude, with its sign, to every lane: the
 * lowest lane among equals (the CPU's first). */
static __device__ __forceinline__ float m40_kvq_signed_absmax(float x) {
    float a = x == x ? fabsf(x) : 0.0f; /* a NaN is never the largest, as on the CPU */
    int at = threadIdx.x;
    for (int off = 16; off > 0; off >>= 1) {
        float a2 = __shfl_xor_sync(0xffffffffu, a, off);
        int at2 = __shfl_xor_sync(0xffffffffu, at, off);
        if (a2 > a || (a2 == a && at2 < at))
            a = a2, at = at2;
    }
    /* all zeros: the CPU's +0 (its running value starts there), whatever
     * sign the first zero has */
    const float m = __shfl_sync(0xffffffffu, x, at);
    return a > 0.0f ? m : 0.0f;
}

static __device__ __forceinline__ float m40_kvq_absmax(float x) {
    float a = fabsf(x);
    for (int off = 16; off > 0; off >>= 1)
        a = fmaxf(a, __shfl_xor_sync(0xffffffffu, a, off));
    return a;
}

M40_KERNEL void m40_kv_store_quant(const float *x, const int *pos, const int *slot,
                                   long long slot_stride, void *k_cache, void *v_cache, int n_head,
                                   int n_head_kv, int head_dim, int row_stride, int kv_type) {
    const int t = blockIdx.x, b = blockIdx.y, j = threadIdx.x;
    const int kv_dim = n_head_kv * head_dim, nb = kv_dim / 32;
    const int is_v = b >= nb, e = (b - (is_v ? nb : 0)) * 32; /* the block's first element */
    const float v =
        x[(long long)t * row_stride + (long long)(n_head + is_v * n_head_kv) * head_dim + e + j];
    const long long first = (slot ? slot[t] * slot_stride : 0) + (long long)pos[t] * kv_dim + e;
    unsigned char *blk = (unsigned char *)(is_v ? v_cache : k_cache) + m40_kv_bytes(first, kv_type);
    if (kv_type == M40_KV_Q8_0) {
        const float d = m40_kvq_absmax(v) / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        float r = fminf(fmaxf(__fmul_rn(v, id), -128.0f), 127.0f);
        blk[2 + j] = (unsigned char)(signed char)(int)roundf(r);
        if (j == 0)
            *(unsigned short *)blk = __half_as_ushort(__float2half_rn(d));
        return;
    }
    /* Q4_0: lane j < 16 packs element j (low nibble) with element j + 16 */
    const float d = m40_kvq_signed_absmax(v) / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    float q = __fadd_rn(__fmul_rn(v, id), 8.5f);
    q = fminf(fmaxf(q, 0.0f), 15.0f); /* NaN -> 0, as the CPU's clamp */
    const int qi = (int)q;
    const int hi = __shfl_down_sync(0xffffffffu, qi, 16);
    if (j < 16)
        blk[2 + j] = (unsigned char)(qi | (hi << 4));
    if (j == 0)
        *(unsigned short *)blk = __half_as_ushort(__float2half_rn(d));
}
