/* attention.cu - causal attention over the KV cache, split over the
 * context (flash-decoding), for one or many query tokens.
 *
 * Queries q: n_q rows of n_head * hd FP32, q_stride floats apart (slices
 * of the fused q|k|v projection), already RoPE'd; query t sees cache
 * positions 0 .. pos_q[t]. Cache k, v: one layer of one sequence,
 * [n_ctx][kv_dim] of kv_type (kv_cache.cuh: FP16, FP32, Q8_0, Q4_0), KV
 * head g at offset g * hd. Query head h uses KV head h / (n_head /
 * n_head_kv) (GQA), so one block handles all query heads
 * of a KV head and loads each K/V element once for the whole group.
 *
 * Step 1, m40_attn_partial: block (s, g, t) takes positions
 *   [s * chunk, min((s+1) * chunk, pos_q[t] + 1)) (on a sliding layer,
 *   window > 0, none before pos_q[t] + 1 - window; a split left empty
 *   gives m = -inf, l = 0, o = 0) and writes, for each head
 *   of group g: the running max m, the sum l of exp(score - m), and the
 *   unnormalized output o = sum exp(score - m) v. A score is q.k * scale,
 *   then, with softcap > 0 (Gemma 2), softcap * tanh(score / softcap).
 *   Launch: grid (n_head_kv, n_split, n_q) (heads_inner; else (n_split,
 *   n_head_kv, n_q)), block 128, dynamic shared
 *   memory (group * hd + group * chunk) floats. Decode rows of different
 *   sequences (slot_q != NULL) read the cache slot_q[t] * slot_stride
 *   elements on and split it every chunk_q[t] positions (chunk, the
 *   largest, sizes shared memory): each row exactly as it would run alone.
 *   The host picks the chunk:
 *   short for a decode step (one query: the grid must still fill the GPU
 *   at short contexts), long for prefill (many queries: partials stay small).
 * Step 2, m40_attn_combine: out = sum_s e^(m_s - M) o_s / sum_s e^(m_s - M) l_s.
 *   Launch: grid (n_head, n_q), block (M40_ATTN_COMBINE_THREADS / hd) * hd
 *   threads rounded up to whole warps (each row of hd threads sums every
 *   R-th split: a decode step's 64-128 splits in a few rounds of loads).
 * Partials: o_part [n_q][n_head][n_split][hd], ml_part [n_q][n_head][n_split][2].
 */
#include <cuda_fp16.h>
#include <stdint.h>

#include "common.cuh"
#include "kv_cache.cuh"

#define M40_ATTN_MAX_HD 256 /* head_dim limit (the host checks it) */

/* Split s of query t: the cache positions [*start, *end) it covers (none,
 * start >= end, past the query's position), the row's split length
 * chunk_q[t] (else chunk) and, for decode rows of several sequences
 * (slot_q), the row's slot of the caches k and v. On a sliding layer
 * (window > 0) no position before pos_q[t] + 1 - window. */
template <int KV_TYPE>
static __device__ __forceinline__ void
m40_attn_split_bounds(int s, int t, const void **k, const void **v, const int *slot_q,
                      long long slot_stride, const int *pos_q, const int *chunk_q, int chunk,
                      int window, int *start, int *end) {
    const int my_chunk = chunk_q ? chunk_q[t] : chunk;
    if (slot_q) {
        const long long off = m40_kv_bytes((long long)slot_q[t] * slot_stride, KV_TYPE);
        *k = (const char *)*k + off;
        *v = (const char *)*v + off;
    }
    const int first = window > 0 ? max(0, pos_q[t] + 1 - window) : 0;
    *start = max(s * my_chunk, first);
    *end = min(pos_q[t] + 1, s * my_chunk + my_chunk);
}

/* Softmax pieces of block (s, g, t), one warp per query head j of the
 * group: the scores sc[j][0 .. len) become e^(score - m), and ml_part gets
 * the running max m and the sum l of them (m = -inf, l = 0 for len 0). */
static __device__ __forceinline__ void m40_attn_softmax_pieces(float *sc, int chunk, int len,
                                                               float *ml_part, int s, int g, int t,
                                                               int group, int n_head, int n_split) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n_warps = blockDim.x >> 5;
    for (int j = warp; j < group; j += n_warps) {
        float *sj = sc + j * chunk;
        float m = -INFINITY;
        for (int p = lane; p < len; p += 32)
            m = fmaxf(m, sj[p]);
        for (int off = 16; off > 0; off >>= 1)
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
        float l = 0.0f;
        for (int p = lane; p < len; p += 32) {
            const float e = expf(sj[p] - m);
            sj[p] = e;
            l += e;
        }
        l = m40_warp_sum(l);
        if (lane == 0) {
            const long long at = (((long long)t * n_head + g * group + j) * n_split + s) * 2;
            ml_part[at] = m;
            ml_part[at + 1] = l;
        }
    }
}

/* Block (s, g, t): split s of KV head g's query heads for query t. One
 * body per cache type (KV_TYPE, kv_cache.cuh), so each type's loops read
 * their elements without a test per element; the kernel picks one. */
template <int KV_TYPE>
static __device__ __forceinline__ void
m40_attn_partial_t(float *o_part, float *ml_part, const float *q, const void *k, const void *v,
                   const int *slot_q, long long slot_stride, const int *pos_q, const int *chunk_q,
                   int q_stride, int n_head, int n_head_kv, int hd, int chunk, int n_split,
                   float scale, int window, float softcap, int heads_inner) {
    const int kv_type = KV_TYPE;
    extern __shared__ float smem[];
    /* heads_inner: the grid is (n_head_kv, n_split, n_q) */
    const int s = heads_inner ? blockIdx.y : blockIdx.x, g = heads_inner ? blockIdx.x : blockIdx.y;
    const int t = blockIdx.z;
    const int group = n_head / n_head_kv, kv_dim = n_head_kv * hd;
    int start, end;
    m40_attn_split_bounds<KV_TYPE>(s, t, &k, &v, slot_q, slot_stride, pos_q, chunk_q, chunk, window,
                                   &start, &end);
    const int len = end - start;
    float *q_s = smem;             /* [group][hd] */
    float *sc = smem + group * hd; /* [group][chunk] */

    for (int i = threadIdx.x; i < group * hd; i += blockDim.x)
        q_s[i] = q[(long long)t * q_stride + (long long)g * group * hd + i];
    __syncthreads();

    /* Scores: one position per warp and step. The lanes read the position's
     * K row together (lane l takes dims l, l + 32, ...: coalesced), keep it
     * in registers and score it against every query head of the group. */
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n_warps = blockDim.x >> 5;
    /* Two positions per step, so two rows' loads are in flight at once. */
    for (int p0 = start + warp; p0 < end; p0 += 2 * n_warps) {
        float kr[2][M40_ATTN_MAX_HD / 32];
#pragma unroll
        for (int u = 0; u < 2; u++) {
            int p = min(p0 + u * n_warps, end - 1); /* a repeat of a real row past the end */
            long long kp = (long long)p * kv_dim + g * hd;
#pragma unroll
            for (int i = 0; i < M40_ATTN_MAX_HD / 32; i++)
                kr[u][i] = lane + 32 * i < hd ? m40_kv_get(k, kp + lane + 32 * i, kv_type) : 0.0f;
        }
        for (int j = 0; j < group; j++) {
            const float *qj = q_s + j * hd;
#pragma unroll
            for (int u = 0; u < 2; u++) {
                float dot = 0.0f;
#pragma unroll
                for (int i = 0; i < M40_ATTN_MAX_HD / 32; i++)
                    if (lane + 32 * i < hd)
                        dot += qj[lane + 32 * i] * kr[u][i];
                dot = m40_warp_sum(dot);
                int p = p0 + u * n_warps;
                if (lane == 0 && p < end) {
                    float x = dot * scale; /* then Gemma 2's cap, as the CPU's */
                    sc[j * chunk + (p - start)] = softcap > 0.0f ? softcap * tanhf(x / softcap) : x;
                }
            }
        }
    }
    __syncthreads();

    m40_attn_softmax_pieces(sc, chunk, len, ml_part, s, g, t, group, n_head, n_split);
    __syncthreads();

    /* Unnormalized output: one (head, dim) pair per thread; V rows are read
     * along dims, so neighbouring threads read neighbouring halves. */
    for (int i = threadIdx.x; i < group * hd; i += blockDim.x) {
        int j = i / hd, e = i % hd;
        const float *sj = sc + j * chunk;
        long long vp = (long long)start * kv_dim + g * hd + e;
        float acc = 0.0f;
#pragma unroll 8
        for (int p = 0; p < len; p++)
            acc += sj[p] * m40_kv_get(v, vp + (long long)p * kv_dim, kv_type);
        o_part[(((long long)t * n_head + g * group + j) * n_split + s) * hd + e] = acc;
    }
}

M40_KERNEL void m40_attn_partial(float *o_part, float *ml_part, const float *q, const void *k,
                                 const void *v, const int *slot_q, long long slot_stride,
                                 const int *pos_q, const int *chunk_q, int q_stride, int n_head,
                                 int n_head_kv, int hd, int chunk, int n_split, float scale,
                                 int kv_type, int window, float softcap, int heads_inner) {
    M40_KV_DISPATCH(kv_type, m40_attn_partial_t, o_part, ml_part, q, k, v, slot_q, slot_stride,
                    pos_q, chunk_q, q_stride, n_head, n_head_kv, hd, chunk, n_split, scale, window,
                    softcap, heads_inner)
}

/* Step 2's block (h, t): head h of query t, R = blockDim.x / hd rows of
 * hd threads (the host launches R * hd <= M40_ATTN_COMBINE_THREADS,
 * rounded up to whole warps); thread (r, e) sums dimension e over the
 * splits s = r, r + R, ... in order and row 0 adds the R sums in order.
 * The weights e^(m_s - M) are computed once per split into shared memory,
 * M40_ATTN_COMBINE_PIECE splits at a time. A split whose weight is 0 (past
 * the query's last position, or underflowed) adds nothing, so a row's
 * bits depend on its own splits alone, not on n_split (a batch or a CUDA
 * graph sizes it for its longest row). */
#define M40_ATTN_COMBINE_THREADS 512
#define M40_ATTN_COMBINE_PIECE   1024

/* The block's maximum or sum of v (every thread gets it); the sum in a
 * fixed order: lanes by butterfly, then the warps' sums in warp order. */
static __device__ float m40_block_reduce(float v, float *red, int is_max) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = (blockDim.x + 31) >> 5;
    for (int off = 16; off > 0; off >>= 1) {
        const float o = __shfl_xor_sync(0xffffffffu, v, off);
        v = is_max ? fmaxf(v, o) : v + o;
    }
    __syncthreads(); /* red may still be read from the last call */
    if (lane == 0)
        red[warp] = v;
    __syncthreads();
    float all = red[0];
    for (int w = 1; w < n_warps; w++)
        all = is_max ? fmaxf(all, red[w]) : all + red[w];
    return all;
}

M40_KERNEL void m40_attn_combine(float *out, const float *o_part, const float *ml_part, int n_head,
                                 int hd, int n_split) {
    __shared__ float w_s[M40_ATTN_COMBINE_PIECE];
    __shared__ float red[M40_ATTN_COMBINE_THREADS];
    const int h = blockIdx.x, t = blockIdx.y, tid = threadIdx.x, nt = blockDim.x;
    const int R = nt / hd, r = tid / hd, e = tid % hd;
    const long long row = (long long)t * n_head + h;
    const float *ml = ml_part + row * n_split * 2;
    const float *o = o_part + row * n_split * hd;

    float m = -INFINITY;
    for (int s = tid; s < n_split; s += nt)
        m = fmaxf(m, ml[2 * s]);
    const float M = m40_block_reduce(m, red, 1);
    float l = 0.0f;
    for (int s = tid; s < n_split; s += nt)
        if (ml[2 * s] != -INFINITY) /* a split past this query's last position */
            l += expf(ml[2 * s] - M) * ml[2 * s + 1];
    const float L = m40_block_reduce(l, red, 0);

    float acc = 0.0f;
    for (int base = 0; base < n_split; base += M40_ATTN_COMBINE_PIECE) {
        const int n = min(M40_ATTN_COMBINE_PIECE, n_split - base);
        __syncthreads(); /* the last piece's weights are read */
        for (int i = tid; i < n; i += nt) {
            const float mi = ml[2 * (base + i)];
            w_s[i] = mi == -INFINITY ? 0.0f : expf(mi - M);
        }
        __syncthreads();
        if (r < R) {
            const float *os = o + (long long)base * hd + e;
#pragma unroll 4
            for (int i = r; i < n; i += R) {
                const float w = w_s[i], v = os[(long long)i * hd];
                if (w != 0.0f)
                    acc += w * v;
            }
        }
    }
    __syncthreads(); /* red's last reader is done */
    red[tid] = acc;
    __syncthreads();
    if (r == 0) {
        float sum = red[e];
        for (int k = 1; k < R; k++)
            sum += red[k * hd + e];
        out[row * hd + e] = sum / L;
    }
}

/* The split kernel's step 1 reading eight elements a lane-load: a K or V
 * row of HD elements is HD / 8 lanes' pieces (FP16: one 16-byte load; Q8_0
 * and Q4_0: the block's scale and four 2-byte loads of quants, where the
 * per-element loop above issues two loads per element), so a warp takes 32
 * / (HD / 8) rows a load and each lane keeps 2U loads in flight (this
 * step's and the next's). Same grid,
 * arguments, split bounds and partial outputs as m40_attn_partial, for HD
 * 64, 128 or 256 and at most G query heads per KV head; shared memory: the
 * larger of (group * HD + group * chunk) and 1024 * group floats.
 * A row's score for a head is the sum of its lanes' 8-product dots, over
 * the row's lanes in an order fixed by HD and G (m40_lanes_sum_g: the G
 * heads' sums share their exchanges), its output the sum over the block's
 * row groups, in order, of each group's position-order sums: nothing in a
 * query's arithmetic depends on another query. The block is 4 warps (128
 * threads), as for m40_attn_partial: the strides below count on it. */
#define M40_ATTN_VEC_U 4

/* Sums of G values d[0..G) over the L lanes of a row (lanes li = 0..L-1 of
 * an aligned group of L; G <= L, both powers of two), all G at once: at
 * each of the offsets L/2 .. L/G a lane keeps half of what it holds (the
 * upper half where its bit of the offset is set) and adds its partner's
 * copy of that half, so G sums take G - 1 exchanges instead of G log2 L;
 * then a butterfly over the remaining offsets. Lane li returns head
 * li / (L / G)'s sum. Both partners of an exchange add the same two
 * numbers, so every lane of a head's lanes holds the same bits, and the
 * order of a head's sum depends on G and L alone. */
template <int G, int L>
static __device__ __forceinline__ float m40_lanes_sum_g(const float *d_in, int li) {
    float d[G];
#pragma unroll
    for (int i = 0; i < G; i++)
        d[i] = d_in[i];
#pragma unroll
    for (int n = G, off = L / 2; n > 1; n >>= 1, off >>= 1) {
        const bool up = (li & off) != 0;
#pragma unroll
        for (int i = 0; i < n / 2; i++) {
            const float keep = up ? d[n / 2 + i] : d[i], send = up ? d[i] : d[n / 2 + i];
            d[i] = keep + __shfl_xor_sync(0xffffffffu, send, off);
        }
    }
#pragma unroll
    for (int off = L / (2 * G); off > 0; off >>= 1)
        d[0] += __shfl_xor_sync(0xffffffffu, d[0], off);
    return d[0];
}

template <int HD, int G, int KV>
static __device__ __forceinline__ void
m40_attn_vec_t(float *o_part, float *ml_part, const float *q, const void *k, const void *v,
               const int *slot_q, long long slot_stride, const int *pos_q, const int *chunk_q,
               int q_stride, int n_head, int n_head_kv, int chunk, int n_split, float scale,
               int window, float softcap, int heads_inner) {
    constexpr int LPR = HD / 8, RPW = 32 / LPR, RG = 128 / LPR, U = M40_ATTN_VEC_U;
    extern __shared__ float smem[];
    /* heads_inner: the grid is (n_head_kv, n_split, n_q) */
    const int s = heads_inner ? blockIdx.y : blockIdx.x, g = heads_inner ? blockIdx.x : blockIdx.y;
    const int t = blockIdx.z;
    const int group = n_head / n_head_kv, kv_dim = n_head_kv * HD;
    int start, end;
    m40_attn_split_bounds<KV>(s, t, &k, &v, slot_q, slot_stride, pos_q, chunk_q, chunk, window,
                              &start, &end);
    const int len = end - start;
    float *q_s = smem;             /* [group][HD] */
    float *sc = smem + group * HD; /* [group][chunk] */

    for (int i = threadIdx.x; i < group * HD; i += blockDim.x)
        q_s[i] = q[(long long)t * q_stride + (long long)g * group * HD + i];
    __syncthreads();

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int li = lane % LPR; /* the lane's 8 elements of a row: li * 8 .. */
    const long long col = (long long)g * HD + li * 8;
    /* Scores: rows p0 + u * RPW + lane / LPR, U loads in flight, and the
     * next step's U loads issued before this step's arithmetic (with few
     * blocks an SM, as a GQA model's long context gets, the loads would
     * otherwise wait for the dots and the dots for the loads). A row past
     * the end repeats the last one (never stored). The last step loads no
     * next rows; what it copies into kr then is never read. (Copying
     * under a test made sm_52 spill more in the 64-register kernels.) */
    const int k_step = 4 * RPW * U;
    m40_kv8<KV> kr[U];
    if (start + warp * RPW * U < end) {
#pragma unroll
        for (int u = 0; u < U; u++)
            kr[u].fetch(k, (long long)min(start + warp * RPW * U + u * RPW + lane / LPR, end - 1) *
                                   kv_dim +
                               col);
    }
    for (int p0 = start + warp * RPW * U; p0 < end; p0 += k_step) {
        m40_kv8<KV> kn[U];
        if (p0 + k_step < end) {
#pragma unroll
            for (int u = 0; u < U; u++)
                kn[u].fetch(
                    k, (long long)min(p0 + k_step + u * RPW + lane / LPR, end - 1) * kv_dim + col);
        }
        /* d[u][j]: this lane's 8-element piece of row u's dot with head j */
        float d[U][G];
#pragma unroll
        for (int j = 0; j < G; j++) {
            float4 qa = make_float4(0.0f, 0.0f, 0.0f, 0.0f), qb = qa;
            if (j < group) {
                qa = *(const float4 *)(q_s + j * HD + li * 8);
                qb = *(const float4 *)(q_s + j * HD + li * 8 + 4);
            }
#pragma unroll
            for (int u = 0; u < U; u++) {
                float kf[8];
                kr[u].get(kf);
                float dot = qa.x * kf[0];
                dot += qa.y * kf[1];
                dot += qa.z * kf[2];
                dot += qa.w * kf[3];
                dot += qb.x * kf[4];
                dot += qb.y * kf[5];
                dot += qb.z * kf[6];
                dot += qb.w * kf[7];
                d[u][j] = dot;
            }
        }
        /* Each row's G dots summed over its LPR lanes at once: lane li ends
         * with head li / (LPR / G)'s score (m40_lanes_sum_g). */
        const int hl = LPR / G, h = li / hl;
#pragma unroll
        for (int u = 0; u < U; u++) {
            const float dot = m40_lanes_sum_g<G, LPR>(d[u], li);
            const int p = p0 + u * RPW + lane / LPR;
            if (li % hl == 0 && h < group && p < end) {
                const float x = dot * scale;
                sc[h * chunk + (p - start)] = softcap > 0.0f ? softcap * tanhf(x / softcap) : x;
            }
        }
#pragma unroll
        for (int u = 0; u < U; u++)
            kr[u] = kn[u];
    }
    __syncthreads();

    m40_attn_softmax_pieces(sc, chunk, len, ml_part, s, g, t, group, n_head, n_split);
    __syncthreads();

    /* Output: row group rg = threadIdx / LPR sums positions start + rg,
     * start + rg + RG, ... over its lane's 8 dimensions, every head. */
    const int rg = threadIdx.x / LPR;
    float acc[G][8];
#pragma unroll
    for (int j = 0; j < G; j++)
#pragma unroll
        for (int e = 0; e < 8; e++)
            acc[j][e] = 0.0f;
    m40_kv8<KV> vr[U];
    if (start + rg < end) {
#pragma unroll
        for (int u = 0; u < U; u++)
            vr[u].fetch(v, (long long)min(start + rg + u * RG, end - 1) * kv_dim + col);
    }
    for (int p0 = start + rg; p0 < end; p0 += RG * U) {
        m40_kv8<KV> vn[U]; /* the next step's rows, as for the scores */
        if (p0 + RG * U < end) {
#pragma unroll
            for (int u = 0; u < U; u++)
                vn[u].fetch(v, (long long)min(p0 + RG * U + u * RG, end - 1) * kv_dim + col);
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int p = p0 + u * RG;
            if (p < end) {
                float vf[8];
                vr[u].get(vf);
#pragma unroll
                for (int j = 0; j < G; j++) {
                    if (j < group) {
                        const float w = sc[j * chunk + (p - start)];
#pragma unroll
                        for (int e = 0; e < 8; e++)
                            acc[j][e] += w * vf[e];
                    }
                }
            }
        }
#pragma unroll
        for (int u = 0; u < U; u++)
            vr[u] = vn[u];
    }
    __syncthreads();   /* every weight is read: the row groups' sums go where they were */
    float *red = smem; /* [RG][group][HD] */
#pragma unroll
    for (int j = 0; j < G; j++)
        if (j < group) {
            float *r = red + (rg * group + j) * HD + li * 8;
            *(float4 *)r = make_float4(acc[j][0], acc[j][1], acc[j][2], acc[j][3]);
            *(float4 *)(r + 4) = make_float4(acc[j][4], acc[j][5], acc[j][6], acc[j][7]);
        }
    __syncthreads();
    for (int i = threadIdx.x; i < group * HD; i += blockDim.x) {
        float o = 0.0f;
#pragma unroll
        for (int r = 0; r < RG; r++)
            o += red[r * group * HD + i];
        const int j = i / HD, e = i % HD;
        o_part[(((long long)t * n_head + g * group + j) * n_split + s) * HD + e] = o;
    }
}

/* m40_attn_vec<type>_h<HD>_g<G>: the kernels the host picks from (ops.c),
 * bounded to 8 blocks an SM (64 registers) where the host's split rule
 * counts on 8 (one query head per KV head), to 4 for larger groups. */
#define M40_ATTN_VEC(NAME, KV, HD, G)                                                             \
    M40_KERNEL void __launch_bounds__(128, (G) <= 1 ? 8 : 4) m40_attn_vec##NAME##_h##HD##_g##G(   \
        float *o_part, float *ml_part, const float *q, const void *k, const void *v,              \
        const int *slot_q, long long slot_stride, const int *pos_q, const int *chunk_q,           \
        int q_stride, int n_head, int n_head_kv, int chunk, int n_split, float scale, int window, \
        float softcap, int heads_inner) {                                                         \
        m40_attn_vec_t<HD, G, KV>(o_part, ml_part, q, k, v, slot_q, slot_stride, pos_q, chunk_q,  \
                                  q_stride, n_head, n_head_kv, chunk, n_split, scale, window,     \
                                  softcap, heads_inner);                                          \
    }
#define M40_ATTN_VEC_TYPE(NAME, KV) \
    M40_ATTN_VEC(NAME, KV, 64, 1)   \
    M40_ATTN_VEC(NAME, KV, 64, 2)   \
    M40_ATTN_VEC(NAME, KV, 64, 4)   \
    M40_ATTN_VEC(NAME, KV, 64, 8)   \
    M40_ATTN_VEC(NAME, KV, 128, 1)  \
    M40_ATTN_VEC(NAME, KV, 128, 2)  \
    M40_ATTN_VEC(NAME, KV, 128, 4)  \
    M40_ATTN_VEC(NAME, KV, 128, 8)  \
    M40_ATTN_VEC(NAME, KV, 256, 1)  \
    M40_ATTN_VEC(NAME, KV, 256, 2)  \
    M40_ATTN_VEC(NAME, KV, 256, 4)  \
    M40_ATTN_VEC(NAME, KV, 256, 8)
M40_ATTN_VEC_TYPE(_f16, M40_KV_F16)
M40_ATTN_VEC_TYPE(_q8_0, M40_KV_Q8_0)
M40_ATTN_VEC_TYPE(_q4_0, M40_KV_Q4_0)
