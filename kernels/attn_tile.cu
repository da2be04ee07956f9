/* attn_tile.cu - prefill attention in one pass over the keys per tile of
 * queries (flash-attention's scheme in FP32 on Maxwell): the split-K
 * kernel (attention.cu) reads a layer's keys and values once per query,
 * which at long contexts makes a prompt's attention quadratic in memory
 * traffic; a tile of queries here reads each key and value once from the
 * cache into shared memory and uses it for every row of the tile, and
 * each lane computes an 8-row block of scores and of the output from
 * registers (an SGEMM's register tiling, twice).
 *
 * Block (tile x, KV head g), 128 threads: the tile's rows are r = tq *
 * group + j (query x*bq + tq, head g*group + j), at most 32 (bq = 32 /
 * group queries). Warp w owns rows 8w .. 8w + 7 whole: its lanes split
 * the tile's keys for the scores and the head's dimensions for the
 * output, so a row's softmax meets within one warp (a butterfly of 32)
 * and its weights go through shared memory only to its own warp. Why this
 * shape: the shared-memory pipe bounds the kernel (ncu, H100: ~85% busy),
 * and a warp's 16-byte load there took 2 wavefronts where its lanes read
 * 4 distinct float4s and 4 where they read 8 (ncu, per instruction).
 * Here a score's operands are the warp's 8 rows of Q^T (two float4s
 * every lane reads: a broadcast) and each lane's own keys (32 consecutive
 * float4s, 4 wavefronts), and an output's are a key's 8 weights (two
 * broadcast float4s) and each lane's own columns of V: about 6 wavefronts
 * per 32 FMAs of a lane in both products, where threads holding 4 x 4
 * blocks of rows by keys, each row shared by 16 threads of 4 warps, took
 * 8 and met the rows' maxima and sums across warps (measured:
 * docs/long-context.md). Keys are taken
 * KEYS (128; 64 for head dim 256) at a time on a grid fixed from
 * position 0: for each key tile,
 *   1. scores S[8][KEYS] per warp = Q K^T: K in slices of 16 dimensions
 *      through shared memory (decoded from the cache's type, kv_cache.cuh;
 *      the next slice's loads in flight while this one is used); lane l
 *      keeps S of the warp's rows for keys KL*l .. KL*l + KL-1 (KL = KEYS
 *      / 32), each a dot product in dimension order; then times scale,
 *      Gemma 2's soft-cap, and -inf outside the row's causal window
 *      (positions <= its own, and within the last `window`; a tile inside
 *      every window of the warp's rows skips the test);
 *   2. per row, m' = max(m, max_j s_j), p_j = e^(s_j - m'), l = l e^(m -
 *      m') + sum_j p_j (e^x by the SFU's 2^x: m40_tile_exp), the lanes'
 *      maxima and sums met by a butterfly, and the row's output scaled by
 *      e^(m - m'); the weights P go to the warp's part of shared memory;
 *   3. O += P V: V in slices of VS keys through shared memory; lane l
 *      adds to its columns of the warp's rows (m40_tile_cols: positions
 *      4l (+ 128 c) of the stage's V rows when head_dim is a multiple of
 *      128, 2l, 2l + 1 of 64, l + 32 c otherwise; m40_tile_dim names their
 *      dimensions), key by key in order.
 * A key tile none of a row's keys are in leaves that row exactly as it was
 * (factor 1, weights 0, and 0 * v adds nothing: every position up to the
 * tile's last query is written, positions past it are read as 0), and a
 * row's arithmetic is the same in every slot of the tile, so a query's
 * result does not depend on which other queries share its tile: the bits
 * depend on the query and its cache alone. (So long as the values are
 * finite: a V element that overflowed FP16 to inf would turn its tile's
 * rows that do not see it into NaN, where the CPU's sum skips it;
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
/* Keys per tile: 128 (each lane's scores 8 rows by 4 keys), 64 for head
 * dim 256 (8 by 2), whose Q^T leaves no room for more. */
#define M40_TILE_KEYS(HD) ((HD) <= 128 ? 128 : 64)
/* Keys per split (ops.h's M40_ATTN_TILE_SPLIT: the same value), a
 * multiple of M40_TILE_KEYS */
#define M40_TILE_SPLIT 2048

/* Dimensions per K slice and keys per V slice of a head_dim. */
#define M40_TILE_DS(HD) 16
#define M40_TILE_VS(HD) ((HD) <= 128 ? 16 : 4)
#define M40_TILE_STAGE(HD)                                        \
    (M40_TILE_DS(HD) * M40_TILE_KEYS(HD) > M40_TILE_VS(HD) * (HD) \
         ? M40_TILE_DS(HD) * M40_TILE_KEYS(HD)                    \
         : M40_TILE_VS(HD) * (HD))
/* A warp's weights P [KEYS][8 rows], key k at k * 8 + (k / KL) * 4 (KL =
 * KEYS / 32 keys a lane): the 4-float skew per lane puts 8 lanes' 16-byte
 * stores in different banks; a key's 8 weights are two float4s that
 * every lane reads at once (a broadcast). */
#define M40_TILE_PW(HD) (M40_TILE_KEYS(HD) * 8 + 32 * 4)
/* Q^T [HD][32], the stage (a K or V slice), 4 warps' P, and the rows'
 * last and first visible keys [2][32] */
#define M40_TILE_SMEM_FLOATS(HD) \
    ((HD)*M40_TILE_ROWS + M40_TILE_STAGE(HD) + 4 * M40_TILE_PW(HD) + 2 * M40_TILE_ROWS)

/* A slice's pieces of 8 elements: slice `sl` of key tile kb is K
 * dimensions sl*DS .. for the tile's KEYS keys when sl < HD / DS, else V
 * rows of keys kb + (sl - HD/DS) * VS .. . Piece c of a K slice is key c %
 * KEYS, dimensions 8 * (c / KEYS) ..; of a V slice, key c / (HD / 8),
 * dimensions 8 * (c % (HD / 8)) .. . Keys past kmax read as 0. */
template <int HD, int KV_TYPE> struct m40_tile_stage {
    static constexpr int DS = M40_TILE_DS(HD), VS = M40_TILE_VS(HD), KEYS = M40_TILE_KEYS(HD);
    static constexpr int KP = DS * KEYS / 8, VP = VS * HD / 8;
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
                key = c % KEYS, d = sl * DS + 8 * (c / KEYS);
            else
                key = (sl - HD / DS) * VS + c / (HD / 8), d = 8 * (c % (HD / 8));
            const int p = kb + key;
            if (c < (is_k ? KP : VP) && p <= kmax)
                r[it].fetch(is_k ? k : v, row0 + (long long)p * kv_dim + d);
            else
                r[it].zero();
        }
    }
    /* into stage: K as [DS][KEYS] (dimension-major), V as [VS][HD] */
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
                const int key = c % KEYS, d0 = 8 * (c / KEYS);
#pragma unroll
                for (int e = 0; e < 8; e++)
                    stage[(d0 + e) * KEYS + key] = f[e];
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
 * instructions a weight, and a key tile computes 32 a lane. */
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

/* A lane's output columns: positions VW * lane + 32 * VW * c + e of a V
 * row in the stage (c < HD / (32 VW), e < VW; VW = 4 when head_dim is a
 * multiple of 128, 2 of 64, else 1 and the last chunk only for the lanes
 * it reaches); DL of them. */
template <int HD> struct m40_tile_cols {
    static constexpr int VW = HD % 128 == 0 ? 4 : HD % 64 == 0 ? 2 : 1;
    static constexpr int NC = (HD + 32 * VW - 1) / (32 * VW), DL = NC * VW;
    static __device__ __forceinline__ int pos(int lane, int e) {
        return VW * lane + 32 * VW * (e / VW) + e % VW;
    }
};

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
    typedef m40_tile_cols<HD> cols;
    constexpr int DS = stage_t::DS, VS = stage_t::VS, KEYS = stage_t::KEYS;
    constexpr int NK = HD / DS, NV = KEYS / VS;
    constexpr int KL = KEYS / 32; /* a lane's keys of a tile: KL * lane .. */
    constexpr int DL = cols::DL;  /* a lane's output columns */
    extern __shared__ float smem[];
    float *q_t = smem;                    /* [HD][32]: Q^T */
    float *st = q_t + HD * M40_TILE_ROWS; /* a K slice [DS][KEYS] or V slice [VS][HD] */
    const int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float *p_w = st + M40_TILE_STAGE(HD) + w * M40_TILE_PW(HD); /* this warp's P */
    int *row_last = (int *)(st + M40_TILE_STAGE(HD) + 4 * M40_TILE_PW(HD));
    int *row_first = row_last + M40_TILE_ROWS;
    const int g = blockIdx.y, t0 = blockIdx.x * bq, sp = blockIdx.z, n_split = gridDim.z;
    const int group = n_head / n_head_kv, kv_dim = n_head_kv * HD;
    const int nq = min(bq, n_q - t0), R = nq * group;
    const long long row0 = (long long)g * HD; /* head g's offset in a cache row */

    for (int i = threadIdx.x; i < HD * M40_TILE_ROWS; i += 128) {
        const int r = i % M40_TILE_ROWS, d = i / M40_TILE_ROWS;
        q_t[i] = r < R ? q[(long long)(t0 + r / group) * q_stride +
                           (long long)(g * group + r % group) * HD + d]
                       : 0.0f;
    }
    /* the keys any row of the tile sees */
    int kmin = 0x7fffffff, kmax = -1;
    for (int tq = 0; tq < nq; tq++) {
        const int pq = pos_q[t0 + tq];
        kmax = max(kmax, pq);
        kmin = min(kmin, window > 0 ? max(0, pq + 1 - window) : 0);
    }
    /* the warp's rows 8w .. 8w + 7: each one's window, and the keys all its
     * rows that exist see (first_hi .. last_lo); a padding row is never
     * written, whatever it computes */
    int last_lo, first_hi;
    {
        const int r = 8 * w + (lane & 7);
        const int last = r < R ? pos_q[t0 + r / group] : -1; /* a padding row sees nothing */
        const int first = window > 0 ? max(0, last + 1 - window) : 0;
        if (lane < 8) {
            row_last[r] = last;
            row_first[r] = first;
        }
        last_lo = r < R ? last : 0x7fffffff;
        first_hi = r < R ? first : 0;
#pragma unroll
        for (int off = 1; off < 8; off <<= 1) {
            last_lo = min(last_lo, __shfl_xor_sync(0xffffffffu, last_lo, off));
            first_hi = max(first_hi, __shfl_xor_sync(0xffffffffu, first_hi, off));
        }
    }
    float m[8], l[8], o[8][DL];
#pragma unroll
    for (int i = 0; i < 8; i++) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
#pragma unroll
        for (int e = 0; e < DL; e++)
            o[i][e] = 0.0f;
    }

    /* this block's split of the keys: [sp * M40_TILE_SPLIT, + M40_TILE_SPLIT),
     * key tiles on the same grid as the splits' bounds */
    const int kb0 = max(kmin / KEYS * KEYS, sp * M40_TILE_SPLIT);
    const int kend = min(kmax, sp * M40_TILE_SPLIT + M40_TILE_SPLIT - 1);
    stage_t sg;
    if (kb0 <= kend)
        sg.fetch(k, v, row0, kv_dim, kb0, 0, kmax);
    for (int kb = kb0; kb <= kend; kb += KEYS) {
        /* 1. scores: s[i][j] = q_(8w+i) . k_(kb + KL*lane + j) */
        float s[8][KL];
#pragma unroll
        for (int i = 0; i < 8; i++)
#pragma unroll
            for (int j = 0; j < KL; j++)
                s[i][j] = 0.0f;
#pragma unroll 1
        for (int sl = 0; sl < NK; sl++) {
            __syncthreads(); /* the stage is free */
            sg.put(st, sl);
            __syncthreads();
            sg.fetch(k, v, row0, kv_dim, kb, sl + 1, kmax); /* the next slice: K, or V's first */
            const float *qd = q_t + sl * DS * M40_TILE_ROWS + 8 * w;
#pragma unroll 8
            for (int d = 0; d < DS; d++) {
                const float4 a0 = *(const float4 *)(qd + d * M40_TILE_ROWS);
                const float4 a1 = *(const float4 *)(qd + d * M40_TILE_ROWS + 4);
                const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
                float bv[KL];
                if (KL == 4) {
                    const float4 b = *(const float4 *)(st + d * KEYS + 4 * lane);
                    bv[0] = b.x, bv[1 % KL] = b.y, bv[2 % KL] = b.z, bv[3 % KL] = b.w;
                } else {
                    const float2 b = *(const float2 *)(st + d * KEYS + 2 * lane);
                    bv[0] = b.x, bv[1 % KL] = b.y;
                }
#pragma unroll
                for (int i = 0; i < 8; i++)
#pragma unroll
                    for (int j = 0; j < KL; j++)
                        s[i][j] += av[i] * bv[j];
            }
        }
        /* 2. the online softmax step of each row, its 32 lanes meeting by
         * a butterfly */
        const bool open = kb >= first_hi && kb + KEYS - 1 <= last_lo;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            float mx = -INFINITY;
            if (open) { /* every key of the tile in all the warp's rows' windows */
#pragma unroll
                for (int j = 0; j < KL; j++) {
                    s[i][j] = m40_tile_score(s[i][j], scale, softcap);
                    mx = fmaxf(mx, s[i][j]);
                }
            } else {
                const int last = row_last[8 * w + i], first = row_first[8 * w + i];
#pragma unroll
                for (int j = 0; j < KL; j++) {
                    const int p = kb + KL * lane + j;
                    s[i][j] = p <= last && p >= first ? m40_tile_score(s[i][j], scale, softcap)
                                                      : -INFINITY;
                    mx = fmaxf(mx, s[i][j]);
                }
            }
#pragma unroll
            for (int off = 16; off > 0; off >>= 1)
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
            const float mnew = fmaxf(m[i], mx);
            float alpha = 1.0f, sum = 0.0f;
            if (mnew != -INFINITY) {
                alpha = m40_tile_exp(m[i] - mnew); /* m -inf: 0 */
#pragma unroll
                for (int j = 0; j < KL; j++) {
                    s[i][j] = m40_tile_exp(s[i][j] - mnew); /* masked: 0 */
                    sum += s[i][j];
                }
            } else {
#pragma unroll
                for (int j = 0; j < KL; j++)
                    s[i][j] = 0.0f;
            }
#pragma unroll
            for (int off = 16; off > 0; off >>= 1)
                sum += __shfl_xor_sync(0xffffffffu, sum, off);
            l[i] = l[i] * alpha + sum;
            m[i] = mnew;
#pragma unroll
            for (int e = 0; e < DL; e++)
                o[i][e] *= alpha;
        }
        /* the weights into the warp's P: key KL*lane + j's 8 rows */
#pragma unroll
        for (int j = 0; j < KL; j++) {
            float *pk = p_w + (KL * lane + j) * 8 + 4 * lane;
            *(float4 *)pk = make_float4(s[0][j], s[1][j], s[2][j], s[3][j]);
            *(float4 *)(pk + 4) = make_float4(s[4][j], s[5][j], s[6][j], s[7][j]);
        }
        /* 3. O += P V: V in slices of VS keys; each lane adds to its
         * columns of the warp's 8 rows, key by key in order */
#pragma unroll 1
        for (int vs = 0; vs < NV; vs++) {
            __syncthreads(); /* the stage is free, the weights written */
            sg.put(st, NK + vs);
            __syncthreads();
            if (vs + 1 < NV)
                sg.fetch(k, v, row0, kv_dim, kb, NK + vs + 1, kmax);
            else if (kb + KEYS <= kend)
                sg.fetch(k, v, row0, kv_dim, kb + KEYS, 0, kmax);
#pragma unroll
            for (int kk = 0; kk < VS; kk++) {
                const int key = vs * VS + kk;
                const float *pk = p_w + key * 8 + (key / KL) * 4;
                const float4 w0 = *(const float4 *)pk, w1 = *(const float4 *)(pk + 4);
                const float pw[8] = {w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w};
                const float *vr = st + kk * HD;
                float vv[DL];
#pragma unroll
                for (int c = 0; c < cols::NC; c++) {
                    const int p0 = cols::pos(lane, c * cols::VW);
                    if (cols::VW == 4) {
                        const float4 x = *(const float4 *)(vr + p0);
                        vv[4 * c] = x.x, vv[(4 * c + 1) % DL] = x.y;
                        vv[(4 * c + 2) % DL] = x.z, vv[(4 * c + 3) % DL] = x.w;
                    } else if (cols::VW == 2) {
                        const float2 x = *(const float2 *)(vr + p0);
                        vv[2 * c] = x.x, vv[(2 * c + 1) % DL] = x.y;
                    } else {
                        vv[c] = p0 < HD ? vr[p0] : 0.0f;
                    }
                }
#pragma unroll
                for (int i = 0; i < 8; i++)
#pragma unroll
                    for (int e = 0; e < DL; e++)
                        o[i][e] += pw[i] * vv[e];
            }
        }
    }
    /* the rows' partials for the combine step (attention.cu), a row
     * without keys here as an empty split (m -inf, l 0, o 0) */
#pragma unroll
    for (int i = 0; i < 8; i++) {
        const int r = 8 * w + i;
        if (r < R) {
            const long long row =
                ((long long)(t0 + r / group) * n_head + g * group + r % group) * n_split + sp;
            float *dst = o_part + row * HD;
#pragma unroll
            for (int e = 0; e < DL; e++) {
                const int p = cols::pos(lane, e);
                if (p < HD)
                    dst[m40_tile_dim<HD>(p)] = o[i][e];
            }
            if (lane == 0) {
                ml_part[2 * row] = m[i];
                ml_part[2 * row + 1] = l[i];
            }
        }
    }
}

/* Three blocks an SM (at most 168 registers a thread; 125-167 used on
 * sm_52, no spills there or in the H100's JIT): each lane holds 8 rows of
 * scores and of the output. The kernel's warps wait on shared memory, not
 * on occupancy (ncu, H100, the layout before this one: 4 blocks an SM
 * gained under 1% over 3). The M40's 96 KiB of shared memory hold 2
 * blocks of head dim 128 (42 KiB each) whatever the registers. */
#define M40_TILE_BOUNDS(HD) __launch_bounds__(128, (HD) <= 128 ? 3 : 1)

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
