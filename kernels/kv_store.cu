/* kv_store.cu - append keys and values to the FP16 KV cache.
 *
 * k_cache, v_cache: one layer of one sequence, [n_ctx][kv_dim] FP16 (stored
 * as raw 16-bit words; Maxwell has no half arithmetic, only conversions).
 * k, v: n_tokens rows of kv_dim FP32, `in_stride` floats apart (they are
 * slices of the fused q|k|v projection); token t goes to position pos[t].
 * FP32 -> FP16 rounds to nearest even (as the CPU reference does); with
 * kv_f32 (--cache-type f32) the cache holds the FP32 values as they are.
 * Launch: 1-D over n_tokens * kv_dim threads.
 */
#include <cuda_fp16.h>
#include <stdint.h>

#include "common.cuh"

M40_KERNEL void m40_kv_store(void *k_cache, void *v_cache, const float *k, const float *v,
                             const int *pos, int kv_dim, int n_tokens, int in_stride, int kv_f32) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n_tokens * kv_dim)
        return;
    int t = idx / kv_dim, i = idx % kv_dim;
    long long dst = (long long)pos[t] * kv_dim + i;
    long long src = (long long)t * in_stride + i;
    if (kv_f32) {
        ((float *)k_cache)[dst] = k[src];
        ((float *)v_cache)[dst] = v[src];
    } else {
        ((uint16_t *)k_cache)[dst] = __half_as_ushort(__float2half_rn(k[src]));
        ((uint16_t *)v_cache)[dst] = __half_as_ushort(__float2half_rn(v[src]));
    }
}
