/* rope.cu - rotary position embedding, and the KV cache append it feeds.
 *
 * Two steps, so the expensive part runs once per forward step instead of
 * once per layer and head:
 *  m40_rope_table: cs[t][j] = (cos, sin) of
 *      angle = pos[t] * freq_scale * base^(-2j / rope_dim) / factor[j]
 *    for pair j < rope_dim/2, computed in double precision (angles reach
 *    thousands of radians; FP32 would lose ~1e-3 of them). factor[j] is
 *    freq_factors[j] (Llama 3's rope_freqs, LongRoPE's factors) or 1.
 *    With yarn, pair j's angle is pos * inv_freq * (freq_scale (1 - r) + r),
 *    r = 1 - clamp((j - low) / max(high - low, 0.001), 0, 1) (YaRN's ramp:
 *    model.h's m40_rope_yarn_range gives low and high); cos and sin are
 *    then scaled by mscale (YaRN's and LongRoPE's attention factor, else
 *    1). The CPU's table (cpu/ops.c m40_op_rope_ext) computes the same in
 *    the same double-precision steps.
 *    Launch: 1-D over n_tokens * rope_dim/2 threads.
 *  m40_rope_store: for each token t, the heads of its fused q|k|v row
 *    x[t] (n_head q heads, then n_head_kv k heads, then n_head_kv v heads,
 *    head_dim floats each; rows `row_stride` floats apart): q heads are
 *    rotated in place by cs[t][j], k heads rotated into the KV cache at
 *    position pos[t], v heads copied there. One launch does what RoPE and
 *    the cache append did in two (a decode step's kernels are a few us of
 *    latency each, not work). NORM style pairs (2j, 2j+1), NEOX pairs
 *    (j, j + rope_dim/2); dims past rope_dim are not rotated. The cache is
 *    one layer of one sequence, [n_ctx][n_head_kv * head_dim], FP16 (stored
 *    as raw 16-bit words, rounded to nearest even as the CPU reference
 *    does; Maxwell has no half arithmetic, only conversions) or FP32
 *    (kv_type, kv_cache.cuh). A Q8_0 or Q4_0 cache is written by
 *    m40_kv_store_quant (kv_quant.cu) instead: then k heads are rotated in
 *    place, as q heads are, and v heads left where they are.
 *    Launch: gridDim (n_tokens, n_head + 2 n_head_kv), blockDim head_dim/2:
 *    thread j takes one pair of a head. With slot != NULL the tokens are
 *    decode rows of different sequences: token t's cache starts slot[t] *
 *    slot_stride elements past k_cache and v_cache (one layer of slot 0).
 */
#include <cuda_fp16.h>
#include <stdint.h>

#include "common.cuh"
#include "kv_cache.cuh"

M40_KERNEL void m40_rope_table(float2 *cs, const int *pos, int n_tokens, int rope_dim,
                               float freq_base, float freq_scale, const float *freq_factors,
                               int yarn, double low, double high, double mscale) {
    int half = rope_dim / 2;
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n_tokens * half)
        return;
    int t = idx / half, j = idx % half;
    double inv_freq = pow((double)freq_base, -2.0 * j / rope_dim);
    double angle = (double)pos[t] * (double)freq_scale * inv_freq;
    if (yarn) { /* the extrapolated (unscaled) share r of the angle */
        double y = (j - low) / (high - low > 0.001 ? high - low : 0.001);
        double r = 1.0 - (y < 0.0 ? 0.0 : y > 1.0 ? 1.0 : y);
        angle = (double)pos[t] * inv_freq * ((double)freq_scale * (1.0 - r) + r);
    }
    if (freq_factors)
        angle /= (double)freq_factors[j];
    double s, c;
    sincos(angle, &s, &c);
    cs[idx] = make_float2((float)(c * mscale), (float)(s * mscale));
}

static __device__ __forceinline__ void m40_cache_put(void *cache, long long i, float v,
                                                     int kv_type) {
    if (kv_type == M40_KV_F32)
        ((float *)cache)[i] = v;
    else
        ((uint16_t *)cache)[i] = __half_as_ushort(__float2half_rn(v));
}

M40_KERNEL void m40_rope_store(float *x, const float2 *cs, const int *pos, const int *slot,
                               long long slot_stride, void *k_cache, void *v_cache, int n_head,
                               int n_head_kv, int head_dim, int rope_dim, int neox, int row_stride,
                               int kv_type) {
    int t = blockIdx.x, h = blockIdx.y, j = threadIdx.x, half = rope_dim / 2;
    if (j >= head_dim / 2)
        return;
    float *hx = x + (long long)t * row_stride + (long long)h * head_dim;
    int kv = h - n_head; /* < 0: a q head; < n_head_kv: a k head; else a v head */
    int i0 = 2 * j, i1 = 2 * j + 1;
    if (kv < n_head_kv && j < half) {
        i0 = neox ? j : 2 * j;
        i1 = neox ? j + half : 2 * j + 1;
    } else if (kv < n_head_kv) {
        i0 = rope_dim + 2 * (j - half); /* past rope_dim: not rotated */
        i1 = i0 + 1;
    }
    float a = hx[i0], b = hx[i1];
    if (kv < n_head_kv && j < half) {
        float2 r = cs[t * half + j];
        float a2 = a * r.x - b * r.y;
        b = a * r.y + b * r.x;
        a = a2;
    }
    const int quantized = kv_type == M40_KV_Q8_0 || kv_type == M40_KV_Q4_0;
    if (kv < 0 || (quantized && kv < n_head_kv)) {
        hx[i0] = a;
        hx[i1] = b;
        return;
    }
    if (quantized) /* a v head: m40_kv_store_quant reads it from x */
        return;
    long long at = (slot ? slot[t] * slot_stride : 0) + (long long)pos[t] * n_head_kv * head_dim +
                   (long long)(kv % n_head_kv) * head_dim;
    void *cache = kv < n_head_kv ? k_cache : v_cache;
    m40_cache_put(cache, at + i0, a, kv_type);
    m40_cache_put(cache, at + i1, b, kv_type);
}
