/* attn_tile.cu - prefill attention in one pass over the keys per tile of
 * queries (flash-attention's scheme in FP32 on Maxwell): the split-K
 * kernel (attention.cu) reads a layer's keys and values once per query,
 * which at long contexts makes a prompt's attention quadratic in memory
 * traffic; a tile of queries here reads each key and value once from the
 * cache into shared memory and uses it for every row of the tile.
 *
 * Block (tile x, KV head g): queries x*bq .. (at most bq), all `group`
 * query heads of KV head g: rows r = tq * group + j (query tq of the tile,
 * head g * group + j), at most 32 (16 when head_dim > 128). Keys are taken
 * bk at a time (32; 16 when head_dim > 128) on a grid fixed from position
 * 0: for each key tile,
 *   1. the K rows go to shared memory (decoded from the cache's type,
 *      kv_cache.cuh), padded to head_dim + 1 floats so a warp reading one
 *      column hits 32 banks;
 *   2. each (row, key) score, one thread's sequential dot product, times
 *      scale, then Gemma 2's soft-cap; -inf outside the row's causal
 *      window (positions <= its own, and within the last `window`);
 *   3. per row (one warp: lane = key), the running max m and sum l:
 *      m' = max(m, max_j s_j), p_j = e^(s_j - m'), l = l e^(m - m') +
 *      sum_j p_j, and the row's output accumulators scale by e^(m - m');
 *   4. the V rows replace the K rows, and each row's output dimension
 *      (lane = dimension) adds sum_j p_j v_j in key order.
 * A key tile none of a row's keys are in leaves that row exactly as it was
 * (factor 1, and its sums skip the keys it does not see), so a query's
 * result does not depend on which other queries share its tile, and tiles
 * start on the same key grid for every query: the bits depend on the query
 * and its cache alone.
 * The output is o / l per row: out [n_q][n_head * head_dim].
 * Launch: grid (ceil(n_q / bq), n_head_kv), block 128, dynamic shared
 * memory (bq * group * head_dim + bk * (head_dim + 1) + bq * group * bk)
 * floats (the host checks the shapes: m40_cuda_attention_tiled_fits).
 */
#include "common.cuh"
#include "kv_cache.cuh"

#define M40_TILE_ROWS_PER_WARP 8 /* 32 rows over the block's 4 warps */
#define M40_TILE_DIMS_PER_LANE 8 /* head_dim 256 over a warp */

static __device__ __forceinline__ float m40_tile_warp_max(float v) {
    for (int off = 16; off > 0; off >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}

template <int KV_TYPE>
static __device__ __forceinline__ void
m40_attn_tile_t(float *out, const float *q, const void *k, const void *v, const int *pos_q, int n_q,
                int q_stride, int n_head, int n_head_kv, int hd, int bq, int bk, float scale,
                int window, float softcap) {
    extern __shared__ float smem[];
    const int g = blockIdx.y, t0 = blockIdx.x * bq;
    const int group = n_head / n_head_kv, kv_dim = n_head_kv * hd, ld = hd + 1;
    const int nq = min(bq, n_q - t0), R = nq * group;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n_warps = blockDim.x >> 5;
    float *q_s = smem;                   /* [R][hd] */
    float *kv_s = q_s + bq * group * hd; /* [bk][ld]: a key tile's K, then its V */
    float *p_s = kv_s + bk * ld;         /* [R][bk]: scores, then weights */

    for (int i = threadIdx.x; i < R * hd; i += blockDim.x) {
        const int r = i / hd, d = i % hd;
        q_s[i] =
            q[(long long)(t0 + r / group) * q_stride + (long long)(g * group + r % group) * hd + d];
    }
    /* the keys any row of the tile sees */
    int kmin = 0x7fffffff, kmax = -1;
    for (int tq = 0; tq < nq; tq++) {
        const int pq = pos_q[t0 + tq];
        kmax = max(kmax, pq);
        kmin = min(kmin, window > 0 ? max(0, pq + 1 - window) : 0);
    }
    float m[M40_TILE_ROWS_PER_WARP], l[M40_TILE_ROWS_PER_WARP];
    float o[M40_TILE_ROWS_PER_WARP][M40_TILE_DIMS_PER_LANE];
#pragma unroll
    for (int ri = 0; ri < M40_TILE_ROWS_PER_WARP; ri++) {
        m[ri] = -INFINITY;
        l[ri] = 0.0f;
#pragma unroll
        for (int e = 0; e < M40_TILE_DIMS_PER_LANE; e++)
            o[ri][e] = 0.0f;
    }

    for (int kb = kmin / bk * bk; kb <= kmax; kb += bk) {
        __syncthreads(); /* the last tile's V and weights are read */
        for (int i = threadIdx.x; i < bk * hd; i += blockDim.x) {
            const int jj = i / hd, d = i % hd, p = kb + jj;
            kv_s[jj * ld + d] =
                p <= kmax ? m40_kv_get(k, (long long)p * kv_dim + g * hd + d, KV_TYPE) : 0.0f;
        }
        __syncthreads();
        for (int i = threadIdx.x; i < R * bk; i += blockDim.x) {
            const int r = i / bk, jj = i % bk, p = kb + jj;
            const int pq = pos_q[t0 + r / group];
            const int first = window > 0 ? max(0, pq + 1 - window) : 0;
            float s = -INFINITY;
            if (p <= pq && p >= first) {
                const float *qr = q_s + r * hd, *kr = kv_s + jj * ld;
                float dot = 0.0f;
                for (int d = 0; d < hd; d++)
                    dot += qr[d] * kr[d];
                const float x = dot * scale;
                s = softcap > 0.0f ? softcap * tanhf(x / softcap) : x;
            }
            p_s[r * bk + jj] = s;
        }
        __syncthreads();
        /* the V rows in place of the K rows, and each row's softmax step */
        for (int i = threadIdx.x; i < bk * hd; i += blockDim.x) {
            const int jj = i / hd, d = i % hd, p = kb + jj;
            kv_s[jj * ld + d] =
                p <= kmax ? m40_kv_get(v, (long long)p * kv_dim + g * hd + d, KV_TYPE) : 0.0f;
        }
#pragma unroll
        for (int ri = 0; ri < M40_TILE_ROWS_PER_WARP; ri++) {
            const int r = warp + n_warps * ri;
            if (r < R) { /* the same r for the whole warp */
                const float s = lane < bk ? p_s[r * bk + lane] : -INFINITY;
                const float mnew = fmaxf(m[ri], m40_tile_warp_max(s));
                float alpha = 1.0f, pj = 0.0f;
                if (mnew != -INFINITY) {
                    alpha = expf(m[ri] - mnew);
                    pj = lane < bk ? expf(s - mnew) : 0.0f;
                }
                l[ri] = l[ri] * alpha + m40_warp_sum(pj);
                m[ri] = mnew;
                if (lane < bk)
                    p_s[r * bk + lane] = pj;
#pragma unroll
                for (int e = 0; e < M40_TILE_DIMS_PER_LANE; e++)
                    o[ri][e] *= alpha;
            }
        }
        __syncthreads();
#pragma unroll
        for (int ri = 0; ri < M40_TILE_ROWS_PER_WARP; ri++) {
            const int r = warp + n_warps * ri;
            if (r < R) {
                /* only the keys the row sees: a masked key's weight is 0,
                 * but 0 times an inf or NaN value is not */
                const int pq = pos_q[t0 + r / group];
                const int first = window > 0 ? max(0, pq + 1 - window) : 0;
                const int j0 = max(first - kb, 0), j1 = min(pq - kb + 1, bk);
                const float *pr = p_s + r * bk;
#pragma unroll
                for (int e = 0; e < M40_TILE_DIMS_PER_LANE; e++) {
                    const int d = lane + 32 * e;
                    if (d < hd) {
                        float acc = o[ri][e];
                        for (int jj = j0; jj < j1; jj++)
                            acc += pr[jj] * kv_s[jj * ld + d];
                        o[ri][e] = acc;
                    }
                }
            }
        }
    }
#pragma unroll
    for (int ri = 0; ri < M40_TILE_ROWS_PER_WARP; ri++) {
        const int r = warp + n_warps * ri;
        if (r < R) {
            float *dst = out + (long long)(t0 + r / group) * n_head * hd +
                         (long long)(g * group + r % group) * hd;
#pragma unroll
            for (int e = 0; e < M40_TILE_DIMS_PER_LANE; e++) {
                const int d = lane + 32 * e;
                if (d < hd)
                    dst[d] = o[ri][e] / l[ri];
            }
        }
    }
}

M40_KERNEL void m40_attn_tile(float *out, const float *q, const void *k, const void *v,
                              const int *pos_q, int n_q, int q_stride, int n_head, int n_head_kv,
                              int hd, int bq, int bk, float scale, int window, float softcap,
                              int kv_type) {
    M40_KV_DISPATCH(kv_type, m40_attn_tile_t, out, q, k, v, pos_q, n_q, q_stride, n_head, n_head_kv,
                    hd, bq, bk, scale, window, softcap)
}
