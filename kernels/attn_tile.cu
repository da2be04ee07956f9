/* attn_tile.cu - prefill attention in one pass over the keys per tile of
 * queries (flash-attention's scheme in FP32 on Maxwell): the split-K
 * kernel (attention.cu) reads a layer's keys and values once per query,
 * which at long contexts makes a prompt's attention quadratic in memory
 * traffic; a tile of queries here reads each key and value once from the
 * cache into shared memory and uses it for every row of the tile, and
 * each thread computes a 4 x 4 block of scores and a 4-row block of the
 * output from registers (an SGEMM's register tiling, twice).
 *
 * Block (tile x, KV head g), 128 threads: the tile's rows are r = tq *
 * group + j (query x*bq + tq, head g*group + j), at most 32 (bq = 32 /
 * group queries); thread (ty, tx) owns rows ty, ty + 8, ty + 16, ty + 24
 * (ty 0..7, tx 0..15). A warp holds 8 ty by 4 tx (m40_tile_lanes). The
 * shared-memory pipe bounds the kernel (ncu, H100: ~85% busy), and a
 * 16-byte load there took 2 wavefronts where a warp's lanes read 4
 * distinct float4s and 4 where they read 8, whatever the lanes' order
 * (three orders measured). Per key, O += P V loads V's columns (2 loads)
 * and P's rows (a quarter of one): 4 tx a warp puts the V loads, the most
 * frequent, at 4 distinct float4s (P's, at 8, cost the extra); the scores
 * load as many of each either way. Head dim 256 keeps 2 ty by 16 tx: its
 * shared memory is full (48 KiB) without the rows' exchange below. Q^T's
 * columns are in slot order (slot ty*4 + i holds row ty + 8i), so a
 * thread's 4 rows are one float4. Keys are taken 64 at a time on a grid
 * fixed from position 0: for each key tile,
 *   1. scores S[32][64] = Q K^T: K in slices of DS dimensions through
 *      shared memory (decoded from the cache's type, kv_cache.cuh; the
 *      next slice's loads in flight while this one is used); thread
 *      (ty, tx) keeps S of its rows for keys tx*4 .. tx*4+3, each a dot
 *      product in dimension order; then times scale, Gemma 2's soft-cap,
 *      and -inf outside the row's causal window (positions <= its own,
 *      and within the last `window` (a tile inside every window of the
 *      thread's rows skips the test);
 *   2. per row, the 16 threads that share it find the tile's max and sum:
 *      m' = max(m, max_j s_j), p_j = e^(s_j - m'), l = l e^(m - m') +
 *      sum_j p_j (e^x by the SFU's 2^x: m40_tile_exp), and scale the
 *      row's output by e^(m - m'); the weights P go to shared memory. The
 *      4 threads of a row in a warp meet by a butterfly, then the four
 *      warps' parts through shared memory (the max at once, the sum after
 *      the next barrier), in warp order; with 16 tx a warp, one butterfly
 *      of 16;
 *   3. O += P V: V in slices of VS keys through shared memory; thread
 *      (ty, tx) adds to its rows' columns (those at positions tx*4 + 64*c
 *      .. +3 of the stage's V rows when head_dim is a multiple of 64, whose
 *      dimensions m40_tile_dim names; tx + 16*c otherwise), key by key in
 *      order.
 * A key tile none of a row's keys are in leaves that row exactly as it was
 * (factor 1, weights 0, and 0 * v adds nothing: every position up to the
 * tile's last query is written, positions past it are read as 0), so a
 * query's result does not depend on which other queries share its tile:
 * the bits depend on the query and its cache alone. (So long as the values
 * are finite: a V element that overflowed FP16 to inf would turn its
 * tile's rows that do not see it into NaN, where the CPU's sum skips it;
 * checking every weight would double the inner loop.)
 * Long contexts are split: block z takes the keys of split z only,
 * [z * M40_TILE_SPLIT, (z + 1) * M40_TILE_SPLIT), and writes each row's
 * running max m, sum l and unnormalized O as split z's partials, in the
 * split kernel's layout (attention.cu), whose combine step makes the
 * output; a row none of whose keys lie in the split writes an empty one
 * (m = -inf), which the combine skips. One tile of queries alone would
 * otherwise walk the whole context: a 512-token chunk at a 32k depth is
 * 16 tiles per KV head, fewer blocks than the GPU holds at once, each
 * 33k keys long. The splits are fixed from position 0, like the key
 * tiles, so a query's bits still depend on the query and its cache alone.
 * Launch: m40_attn_tile_<kv>_h<HD> (kv: f16, f32, q8_0, q4_0), grid
 * (ceil(n_q / bq), n_head_kv, n_split), block 128, dynamic shared memory
 * M40_TILE_SMEM_FLOATS(HD) floats (the host mirrors it: ops.c
 * tile_smem_floats); o_part [n_q][n_head][n_split][HD], ml_part [n_q]
 * [n_head][n_split][2].
 */
#include "common.cuh"
#include "kv_cache.cuh"

#define M40_TILE_ROWS 32
#define M40_TILE_KEYS 64
/* Keys per split (ops.h's M40_ATTN_TILE_SPLIT: the same value), a
 * multiple of M40_TILE_KEYS */
#define M40_TILE_SPLIT 2048

/* Dimensions per K slice and keys per V slice of a head_dim. */
#define M40_TILE_DS(HD) ((HD) % 32 == 0 ? 32 : 16)
#define M40_TILE_VS(HD) ((HD) <= 128 ? 16 : 8)
#define M40_TILE_STAGE(HD)                                                                      \
    (M40_TILE_DS(HD) * M40_TILE_KEYS > M40_TILE_VS(HD) * (HD) ? M40_TILE_DS(HD) * M40_TILE_KEYS \
                                                              : M40_TILE_VS(HD) * (HD))
/* Threads of a warp that share a row (tx a warp): 4, but 16 for head
 * dim 256 (above); and the warps a row's 16 threads span. */
#define M40_TILE_XW(HD)    ((HD) <= 128 ? 4 : 16)
#define M40_TILE_PARTS(HD) (16 / M40_TILE_XW(HD))
/* P's row stride: 68 floats puts a warp's 8 rows' float4s in different
 * banks; 64 for head dim 256, whose shared memory has no room for it. */
#define M40_TILE_PS(HD) ((HD) <= 128 ? M40_TILE_KEYS + 4 : M40_TILE_KEYS)
/* Q^T [HD][32], the stage (a K or V slice), P [32][PS], and with 4 tx a
 * warp the parts' row maxima and sums [2][4][32] */
#define M40_TILE_SMEM_FLOATS(HD)                                                 \
    ((HD)*M40_TILE_ROWS + M40_TILE_STAGE(HD) + M40_TILE_ROWS * M40_TILE_PS(HD) + \
     (M40_TILE_PARTS(HD) > 1 ? 2 * M40_TILE_PARTS(HD) * M40_TILE_ROWS : 0))

/* A slice's pieces of 8 elements: slice `sl` of key tile kb is K
 * dimensions sl*DS .. for the tile's 64 keys when sl < HD / DS, else V
 * rows of keys kb + (sl - HD/DS) * VS .. . Piece c of a K slice is key c %
 * 64, dimensions 8 * (c / 64) ..; of a V slice, key c / (HD / 8),
 * dimensions 8 * (c % (HD / 8)) .. . Keys past kmax read as 0. */
template <int HD, int KV_TYPE> struct m40_tile_stage {
    static constexpr int DS = M40_TILE_DS(HD), VS = M40_TILE_VS(HD);
    static constexpr int KP = DS * M40_TILE_KEYS / 8, VP = VS * HD / 8;
    static constexpr int IT = ((KP > VP ? KP : VP) + 127) / 128;
    m40_kv8<KV_TYPE> r[IT];

    __device__ __forceinline__ void fetch(const void *k, const void *v, long long row0, int kv_dim,
                                          int kb, int sl, int kmax) {
        const bool is_k = sl < HD / DS;
#pragma unroll
        for (int it = 0; it < IT; it++) {
            const int c = threadIdx.x + 128 * it;
            int key, d;
            if (is_k)
                key = c % M40_TILE_KEYS, d = sl * DS + 8 * (c / M40_TILE_KEYS);
            else
                key = (sl - HD / DS) * VS + c / (HD / 8), d = 8 * (c % (HD / 8));
            const int p = kb + key;
            if (c < (is_k ? KP : VP) && p <= kmax)
                r[it].fetch(is_k ? k : v, row0 + (long long)p * kv_dim + d);
            else
                r[it].zero();
        }
    }
    /* into stage: K as [DS][64] (dimension-major), V as [VS][HD] */
    __device__ __forceinline__ void put(float *stage, int sl) const {
        const bool is_k = sl < HD / DS;
#pragma unroll
        for (int it = 0; it < IT; it++) {
            const int c = threadIdx.x + 128 * it;
            if (c >= (is_k ? KP : VP))
                continue;
            float f[8];
            r[it].get(f);
            if (is_k) {
                const int key = c % M40_TILE_KEYS, d0 = 8 * (c / M40_TILE_KEYS);
#pragma unroll
                for (int e = 0; e < 8; e++)
                    stage[(d0 + e) * M40_TILE_KEYS + key] = f[e];
            } else if (HD % 64 == 0) {
                /* key c / (HD/8), dims 8 cc .. 8 cc + 7 (cc = c % (HD/8)) at
                 * positions 4 cc .. and HD/2 + 4 cc .. of the key's row
                 * (m40_tile_dim): a warp's two stores each fill a run of
                 * 128-byte lines, where 8 floats a thread in a row left
                 * every store two-way conflicted */
                float *row = stage + (c / (HD / 8)) * HD + 4 * (c % (HD / 8));
                *(float4 *)row = make_float4(f[0], f[1], f[2], f[3]);
                *(float4 *)(row + HD / 2) = make_float4(f[4], f[5], f[6], f[7]);
            } else { /* key c / (HD/8), dims 8 * (c % (HD/8)) .. in order */
                *(float4 *)(stage + 8 * c) = make_float4(f[0], f[1], f[2], f[3]);
                *(float4 *)(stage + 8 * c + 4) = make_float4(f[4], f[5], f[6], f[7]);
            }
        }
    }
};

/* e^x as 2^(x log2 e) by the SFU's ex2.approx.ftz alone (relative error
 * about 2^-22; 2^-inf is 0, and results below 2^-126 flush to 0, weights
 * no sum can tell from 0): expf's exact range reduction costs eight
 * instructions a weight, and a key tile computes 20 a thread. */
static __device__ __forceinline__ float m40_tile_exp(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x * 1.44269504f));
    return y;
}

/* A visible score: times scale, then Gemma 2's soft-cap if any. */
static __device__ __forceinline__ float m40_tile_score(float s, float scale, float softcap) {
    const float x = s * scale;
    return softcap > 0.0f ? softcap * tanhf(x / softcap) : x;
}

/* A thread's (ty, tx) and the part of a row's 16 threads its warp holds
 * (the warp with 4 tx a warp; always 0 with 16). */
template <int XW>
static __device__ __forceinline__ void m40_tile_lanes(int *ty, int *tx, int *part) {
    const int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (XW == 4) {
        *ty = lane >> 2;
        *tx = 4 * w + (lane & 3);
        *part = w;
    } else {
        *ty = threadIdx.x >> 4;
        *tx = threadIdx.x & 15;
        *part = 0;
    }
}

/* Where in a V row of the stage the thread's output column e lies (HD /
 * 16 of them): float4s at tx*4 + 64k when head_dim is a multiple of 64,
 * else one float at tx + 16e. */
template <int HD> static __device__ __forceinline__ int m40_tile_pos(int tx, int e) {
    return HD % 64 == 0 ? tx * 4 + 64 * (e / 4) + e % 4 : tx + 16 * e;
}

/* The head dimension at position p of a V row (the stage's put): the
 * first halves of the rows' 8-dimension pieces, then the second halves,
 * when head_dim is a multiple of 64; else the dimensions in order. */
template <int HD> static __device__ __forceinline__ int m40_tile_dim(int p) {
    return HD % 64 == 0 ? 8 * ((p % (HD / 2)) / 4) + 4 * (p / (HD / 2)) + p % 4 : p;
}

template <int HD, int KV_TYPE>
static __device__ __forceinline__ void
m40_attn_tile_t(float *o_part, float *ml_part, const float *q, const void *k, const void *v,
                const int *pos_q, int n_q, int q_stride, int n_head, int n_head_kv, int bq,
                float scale, int window, float softcap) {
    typedef m40_tile_stage<HD, KV_TYPE> stage_t;
    constexpr int DS = stage_t::DS, VS = stage_t::VS, NK = HD / DS, NV = M40_TILE_KEYS / VS;
    constexpr int CO = HD / 16; /* output columns a thread owns */
    constexpr int XW = M40_TILE_XW(HD), PS = M40_TILE_PS(HD);
    extern __shared__ float smem[];
    float *q_t = smem;                    /* [HD][32]: Q^T, columns in slot order */
    float *st = q_t + HD * M40_TILE_ROWS; /* a K slice [DS][64] or V slice [VS][HD] */
    float *p_s = st + M40_TILE_STAGE(HD); /* [32][PS]: the tile's weights */
    constexpr int NP = M40_TILE_PARTS(HD);
    float *red_m = p_s + M40_TILE_ROWS * PS, *red_l = red_m + NP * M40_TILE_ROWS; /* [NP][32] */
    const int g = blockIdx.y, t0 = blockIdx.x * bq, sp = blockIdx.z, n_split = gridDim.z;
    const int group = n_head / n_head_kv, kv_dim = n_head_kv * HD;
    const int nq = min(bq, n_q - t0), R = nq * group;
    int ty, tx, part;
    m40_tile_lanes<XW>(&ty, &tx, &part);
    const long long row0 = (long long)g * HD; /* head g's offset in a cache row */

    for (int i = threadIdx.x; i < HD * M40_TILE_ROWS; i += 128) {
        const int slot = i % M40_TILE_ROWS, d = i / M40_TILE_ROWS;
        const int r = slot / 4 + 8 * (slot % 4);
        q_t[i] = r < R ? q[(long long)(t0 + r / group) * q_stride +
                           (long long)(g * group + r % group) * HD + d]
                       : 0.0f;
    }
    /* the keys any row of the tile sees, and each of this thread's rows' */
    int kmin = 0x7fffffff, kmax = -1;
    for (int tq = 0; tq < nq; tq++) {
        const int pq = pos_q[t0 + tq];
        kmax = max(kmax, pq);
        kmin = min(kmin, window > 0 ? max(0, pq + 1 - window) : 0);
    }
    int last[4], first[4];
    int last_lo = 0x7fffffff, first_hi = 0; /* keys all four rows see: first_hi..last_lo */
    float m[4], l[4], o[4][CO];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int r = ty + 8 * i;
        last[i] = r < R ? pos_q[t0 + r / group] : -1; /* a padding row sees nothing */
        first[i] = window > 0 ? max(0, last[i] + 1 - window) : 0;
        last_lo = min(last_lo, last[i]);
        first_hi = max(first_hi, first[i]);
        m[i] = -INFINITY;
        l[i] = 0.0f;
#pragma unroll
        for (int e = 0; e < CO; e++)
            o[i][e] = 0.0f;
    }

    /* this block's split of the keys: [sp * M40_TILE_SPLIT, + M40_TILE_SPLIT),
     * key tiles on the same grid as the splits' bounds */
    const int kb0 = max(kmin / M40_TILE_KEYS * M40_TILE_KEYS, sp * M40_TILE_SPLIT);
    const int kend = min(kmax, sp * M40_TILE_SPLIT + M40_TILE_SPLIT - 1);
    stage_t sg;
    if (kb0 <= kend)
        sg.fetch(k, v, row0, kv_dim, kb0, 0, kmax);
    for (int kb = kb0; kb <= kend; kb += M40_TILE_KEYS) {
        /* 1. scores */
        float s[4][4];
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int j = 0; j < 4; j++)
                s[i][j] = 0.0f;
#pragma unroll 1
        for (int sl = 0; sl < NK; sl++) {
            __syncthreads(); /* the stage is free */
            sg.put(st, sl);
            __syncthreads();
            sg.fetch(k, v, row0, kv_dim, kb, sl + 1, kmax); /* the next slice: K, or V's first */
            const float *qd = q_t + sl * DS * M40_TILE_ROWS + ty * 4; /* rows ty + 8i */
#pragma unroll 8
            for (int d = 0; d < DS; d++) {
                const float4 a = *(const float4 *)(qd + d * M40_TILE_ROWS);
                const float4 b = *(const float4 *)(st + d * M40_TILE_KEYS + tx * 4);
                const float av[4] = {a.x, a.y, a.z, a.w}, bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
                for (int i = 0; i < 4; i++)
#pragma unroll
                    for (int j = 0; j < 4; j++)
                        s[i][j] += av[i] * bv[j];
            }
        }
        /* 2. the online softmax step of each row */
        float mx[4];
        if (kb >= first_hi && kb + M40_TILE_KEYS - 1 <= last_lo) {
            /* every key of the tile in all four rows' windows: no mask */
#pragma unroll
            for (int i = 0; i < 4; i++) {
                mx[i] = -INFINITY;
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    s[i][j] = m40_tile_score(s[i][j], scale, softcap);
                    mx[i] = fmaxf(mx[i], s[i][j]);
                }
            }
        } else {
#pragma unroll
            for (int i = 0; i < 4; i++) {
                mx[i] = -INFINITY;
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    const int p = kb + tx * 4 + j;
                    s[i][j] = p <= last[i] && p >= first[i]
                                  ? m40_tile_score(s[i][j], scale, softcap)
                                  : -INFINITY;
                    mx[i] = fmaxf(mx[i], s[i][j]);
                }
            }
        }
#pragma unroll
        for (int i = 0; i < 4; i++) {
#pragma unroll
            for (int off = XW / 2; off > 0; off >>= 1)
                mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], off));
            if (NP > 1 && tx % XW == 0)
                red_m[part * M40_TILE_ROWS + ty + 8 * i] = mx[i];
        }
        if (NP > 1) {
            __syncthreads(); /* every part's maxima written */
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int p = 0; p < NP; p++)
                    mx[i] = fmaxf(mx[i], red_m[p * M40_TILE_ROWS + ty + 8 * i]);
        }
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const float mnew = fmaxf(m[i], mx[i]);
            float alpha = 1.0f, sum = 0.0f;
            if (mnew != -INFINITY) {
                alpha = m40_tile_exp(m[i] - mnew); /* m -inf: 0 */
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    s[i][j] = m40_tile_exp(s[i][j] - mnew); /* masked: 0 */
                    sum += s[i][j];
                }
            } else {
#pragma unroll
                for (int j = 0; j < 4; j++)
                    s[i][j] = 0.0f;
            }
#pragma unroll
            for (int off = XW / 2; off > 0; off >>= 1)
                sum += __shfl_xor_sync(0xffffffffu, sum, off);
            if (NP > 1 && tx % XW == 0)
                red_l[part * M40_TILE_ROWS + ty + 8 * i] = sum;
            /* with parts the sum is added after the next barrier */
            l[i] = NP > 1 ? l[i] * alpha : l[i] * alpha + sum;
            m[i] = mnew;
#pragma unroll
            for (int e = 0; e < CO; e++)
                o[i][e] *= alpha;
            *(float4 *)(p_s + (ty + 8 * i) * PS + tx * 4) =
                make_float4(s[i][0], s[i][1], s[i][2], s[i][3]);
        }
        /* 3. O += P V */
#pragma unroll 1
        for (int vs = 0; vs < NV; vs++) {
            __syncthreads(); /* the stage is free, the weights (and sums) written */
            sg.put(st, NK + vs);
            __syncthreads();
            if (NP > 1 && vs == 0) {
                /* the rows' sums over the parts, in part order (read
                 * before any thread can pass the next tile's barriers) */
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    float t = red_l[ty + 8 * i];
#pragma unroll
                    for (int p = 1; p < NP; p++)
                        t += red_l[p * M40_TILE_ROWS + ty + 8 * i];
                    l[i] += t;
                }
            }
            if (vs + 1 < NV)
                sg.fetch(k, v, row0, kv_dim, kb, NK + vs + 1, kmax);
            else if (kb + M40_TILE_KEYS <= kend)
                sg.fetch(k, v, row0, kv_dim, kb + M40_TILE_KEYS, 0, kmax);
#pragma unroll
            for (int k4 = 0; k4 < VS; k4 += 4) {
                float pw[4][4];
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    const float4 w = *(const float4 *)(p_s + (ty + 8 * i) * PS + vs * VS + k4);
                    pw[i][0] = w.x, pw[i][1] = w.y, pw[i][2] = w.z, pw[i][3] = w.w;
                }
#pragma unroll
                for (int kk = 0; kk < 4; kk++) {
                    const float *vr = st + (k4 + kk) * HD;
                    float vv[CO];
                    if (HD % 64 == 0) {
#pragma unroll
                        for (int e = 0; e < CO; e += 4) {
                            const float4 w = *(const float4 *)(vr + m40_tile_pos<HD>(tx, e));
                            vv[e] = w.x, vv[e + 1] = w.y, vv[e + 2] = w.z, vv[e + 3] = w.w;
                        }
                    } else {
#pragma unroll
                        for (int e = 0; e < CO; e++)
                            vv[e] = vr[m40_tile_pos<HD>(tx, e)];
                    }
#pragma unroll
                    for (int i = 0; i < 4; i++)
#pragma unroll
                        for (int e = 0; e < CO; e++)
                            o[i][e] += pw[i][kk] * vv[e];
                }
            }
        }
    }
    /* the rows' partials for the combine step (attention.cu), a row
     * without keys here as an empty split (m -inf, l 0, o 0) */
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int r = ty + 8 * i;
        if (r < R) {
            const long long row =
                ((long long)(t0 + r / group) * n_head + g * group + r % group) * n_split + sp;
            float *dst = o_part + row * HD;
#pragma unroll
            for (int e = 0; e < CO; e++)
                dst[m40_tile_dim<HD>(m40_tile_pos<HD>(tx, e))] = o[i][e];
            if (tx == 0) {
                ml_part[2 * row] = m[i];
                ml_part[2 * row + 1] = l[i];
            }
        }
    }
}

/* Four blocks an SM where 128 registers a thread suffice (4 blocks of 128
 * threads in 64K registers): the kernel's warps wait on shared memory
 * (ncu, H100: 168 registers, 3 blocks, "short scoreboard" the main stall).
 * Measured on an H100, pp512 at 16k: 1174.9 t/s before, 1184.9 with the
 * warp layout above, 1196.6 with both; a small gain (docs/long-context.md).
 * Head dim 256 would spill; the M40's 96 KiB of shared memory hold 2
 * blocks of head dim 128 whatever the registers. */
#define M40_TILE_BOUNDS(HD) __launch_bounds__(128, (HD) <= 128 ? 4 : 1)

/* m40_attn_tile_<kv>_h<HD>: one kernel per cache type and head_dim the
 * host may pick (ops.c), so each type's loop gets the registers it needs
 * (one kernel for the four types took the most any of them needed, and
 * spilled in all). */
#define M40_ATTN_TILE_KV(HD, NAME, KV)                                                             \
    M40_KERNEL void M40_TILE_BOUNDS(HD) m40_attn_tile_##NAME##_h##HD(                              \
        float *o_part, float *ml_part, const float *q, const void *k, const void *v,               \
        const int *pos_q, int n_q, int q_stride, int n_head, int n_head_kv, int bq, float scale,   \
        int window, float softcap) {                                                               \
        m40_attn_tile_t<HD, KV>(o_part, ml_part, q, k, v, pos_q, n_q, q_stride, n_head, n_head_kv, \
                                bq, scale, window, softcap);                                       \
    }
#define M40_ATTN_TILE(HD)                   \
    M40_ATTN_TILE_KV(HD, f16, M40_KV_F16)   \
    M40_ATTN_TILE_KV(HD, f32, M40_KV_F32)   \
    M40_ATTN_TILE_KV(HD, q8_0, M40_KV_Q8_0) \
    M40_ATTN_TILE_KV(HD, q4_0, M40_KV_Q4_0)
M40_ATTN_TILE(64)
M40_ATTN_TILE(80)
M40_ATTN_TILE(96)
M40_ATTN_TILE(128)
M40_ATTN_TILE(256)
