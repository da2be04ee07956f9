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
#include "quant_decode.cuh"

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

/* ---- row-addressed types: a group of 32, decoded once, then shared -------
 *
 * gemv.cu's generic and wide-load kernels (M40_DEFINE_GEMV) take a row's
 * dot product 32 elements at a time: thread t takes groups t, t + 128, ...
 * and adds each group's share to its accumulator. A type's group ops are
 * a struct of two functions, so that a row alone (gemv.cu) and a row in a
 * batch (m40_gemv_rows_batch below) run the very same arithmetic:
 *   decode(row, g, v, k): group g of the row into v[32], and up to two
 *     constants (scales) into k[2];
 *   share(k, v, xv, sx): the group's share of the dot product with x's 32
 *     values xv (whose sum, in index order, is sx).
 * A batch decodes a group once and takes its share with each input. */

/* Generic: any type decode32_<type> reads (byte loads, scaled values). */
#define M40_GROUP_OPS_GENERIC(type)                                                        \
    struct m40_grp_##type {                                                                \
        static __device__ __forceinline__ void decode(const uint8_t *row, int g, float *v, \
                                                      float *k) {                          \
            (void)k;                                                                       \
            decode32_##type(row, g, v);                                                    \
        }                                                                                  \
        static __device__ __forceinline__ float share(const float *k, const float *v,      \
                                                      const float *xv, float sx) {         \
            (void)k, (void)sx;                                                             \
            return m40_dot<32>(v, xv);                                                     \
        }                                                                                  \
    };

/* Q5_K, Q4_1, Q5_0, Q5_1 with wide loads (m40_<type>_group): unscaled
 * values, a scale and a min applied once: d*sc * (x . q) - dmin*m * sum(x). */
#define M40_GROUP_OPS_KSM(type)                                                            \
    struct m40_grp_##type##_v {                                                            \
        static __device__ __forceinline__ void decode(const uint8_t *row, int g, float *v, \
                                                      float *k) {                          \
            m40_##type##_group(row, g, v, &k[0], &k[1]);                                   \
        }                                                                                  \
        static __device__ __forceinline__ float share(const float *k, const float *v,      \
                                                      const float *xv, float sx) {         \
            return m40_share_sm(k[0], k[1], v, xv, sx);                                    \
        }                                                                                  \
    };

M40_GROUP_OPS_GENERIC(f32)
M40_GROUP_OPS_GENERIC(f16)
M40_GROUP_OPS_GENERIC(bf16)
M40_GROUP_OPS_GENERIC(q4_0)
M40_GROUP_OPS_GENERIC(q4_1)
M40_GROUP_OPS_GENERIC(q5_0)
M40_GROUP_OPS_GENERIC(q5_1)
M40_GROUP_OPS_GENERIC(q8_0)
M40_GROUP_OPS_GENERIC(q4_k)
M40_GROUP_OPS_GENERIC(q5_k)
M40_GROUP_OPS_GENERIC(q6_k)
M40_GROUP_OPS_GENERIC(q2_k)
M40_GROUP_OPS_GENERIC(q3_k)
M40_GROUP_OPS_GENERIC(iq4_nl)
M40_GROUP_OPS_GENERIC(iq4_xs)
M40_GROUP_OPS_GENERIC(iq2_xxs)
M40_GROUP_OPS_GENERIC(iq2_xs)
M40_GROUP_OPS_GENERIC(iq2_s)
M40_GROUP_OPS_GENERIC(iq3_xxs)
M40_GROUP_OPS_GENERIC(iq3_s)

M40_GROUP_OPS_KSM(q5_k)
M40_GROUP_OPS_KSM(q4_1)
M40_GROUP_OPS_KSM(q5_0)
M40_GROUP_OPS_KSM(q5_1)

/* Q6_K with 2-byte loads: two scales, one per 16 elements. */
struct m40_grp_q6_k_v {
    static __device__ __forceinline__ void decode(const uint8_t *row, int g, float *v, float *k) {
        m40_q6_k_group(row, g, v, &k[0], &k[1]);
    }
    static __device__ __forceinline__ float share(const float *k, const float *v, const float *xv,
                                                  float sx) {
        (void)sx;
        return m40_share_q6_k(k[0], k[1], v, xv);
    }
};

/* ---- F16 / BF16 rows, 16-byte loads ------------------------------------------
 * gemv.cu's wide-load F16/BF16 kernels: thread i takes 16-byte chunks i,
 * i + 128, ... of a row (8 weights) and adds their dot product with x's 8
 * values (a product, then FMAs in order) to its accumulator. */

/* 8 weights of a 16-byte chunk as FP32. */
static __device__ __forceinline__ void m40_unpack8_f16(uint4 p, float *o) {
    o[0] = m40_h_lo(p.x), o[1] = m40_h_hi(p.x), o[2] = m40_h_lo(p.y), o[3] = m40_h_hi(p.y);
    o[4] = m40_h_lo(p.z), o[5] = m40_h_hi(p.z), o[6] = m40_h_lo(p.w), o[7] = m40_h_hi(p.w);
}
static __device__ __forceinline__ void m40_unpack8_bf16(uint4 p, float *o) {
    uint32_t u[4] = {p.x, p.y, p.z, p.w};
    for (int i = 0; i < 4; i++) {
        o[2 * i] = __uint_as_float(u[i] << 16);
        o[2 * i + 1] = __uint_as_float(u[i] & 0xFFFF0000u);
    }
}

static __device__ __forceinline__ float m40_dot8(const float *w, float4 a, float4 b) {
    float s = w[0] * a.x;
    s = fmaf(w[1], a.y, s), s = fmaf(w[2], a.z, s), s = fmaf(w[3], a.w, s);
    s = fmaf(w[4], b.x, s), s = fmaf(w[5], b.y, s), s = fmaf(w[6], b.z, s);
    return fmaf(w[7], b.w, s);
}

/* ---- repacked Q4_0 / Q8_0: one loop for a row alone and for a batch ----
 *
 * Batch invariance is structural: the single-row kernels (gemv.cu) are
 * this loop with NB = 1, the batched ones (gemv_batch.cu) the same loop
 * with NB inputs, and nothing about one input's arithmetic depends on NB
 * or on the other inputs. A row's output is:
 *   - thread t of the 128-thread block takes part p = t & 3 of 32-element
 *     blocks t/4, t/4 + 32, ...: elements 4p..4p+3 and 16+4p..16+4p+3,
 *     which are the nibbles of quant word p in Q4_0 (GGML's byte order,
 *     kept by repack.cu) and quant words p and p + 4 in Q8_0;
 *   - per block it dequantizes those 8 weights, scale included, exactly
 *     (m40_byte_at_2p15: each weight is GGML's (q - offset) d, the same
 *     value), and adds their products with x to its accumulator (a chain
 *     of FMAs in that element order);
 *   - the block's threads sum their accumulators, a warp's as
 *     m40_warp_sum would (m40_warp_sum_scatter), then the warps' through
 *     shared memory (m40_gemv_store_rows), then bias, then res.
 *
 * Why four threads per block of 32, not one: lane l of a warp reads x at
 * block l/4, part l%4, so a warp's 16-byte loads of x touch 8 cache lines
 * (every 32-byte sector whole) instead of 32 lines at a 128-byte stride
 * with one thread per block. With several inputs x is most of the loads,
 * and 32 lines per load held the batched kernels to 1.3-1.9x the speed of
 * single products on the H100; with 4 threads per block they reach
 * 2.6-3.4x at 8 inputs, and 2 threads per block (16 lines) sit in between
 * (docs/batching.md). The cost is more address arithmetic per weight.
 *
 * Per 8 weights of a row a thread decodes once (PRMT + FMA per weight,
 * the scale applied in the FMA) and spends 8 FMAs per input. The rows of
 * a block are adjacent in repack.cu's interleaved layout, so a thread
 * reads one quant word of all of them, and all their scales, with 16-byte
 * loads: in the sm_52 SASS, Q4_0 at 8 inputs takes 1.58 instructions per
 * weight and input with 4 rows a block, 1.46 with 8, one row alone 4.0
 * (docs/batching.md, "Weights scaled as they are decoded"). */

/* acc[R][NB] = 0: a block's accumulators, per row and input. */
template <int R, int NB> static __device__ __forceinline__ void m40_acc_zero(float (*acc)[NB]) {
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int c = 0; c < NB; c++)
            acc[r][c] = 0.0f;
}

/* The smallest power of two >= n (n <= 64). */
static constexpr __host__ __device__ int m40_pow2_at_least(int n) {
    return n <= 1 ? 1 : 2 * m40_pow2_at_least((n + 1) / 2);
}

/* Warp sums of N values per lane, scattered: value i's sum over the 32
 * lanes ends in the lanes whose bits say i (below), at the cost of one
 * shuffle and one add per value per halving instead of five each.
 *
 * At the step of offset o (16, 8, ..., while a lane holds more than one
 * value) the lane keeps one half of its values, the upper one if its lane
 * bit o is set, and adds its partner's (lane ^ o) copy of that half: the
 * partner keeps the other half. Once one value is left, the remaining
 * offsets are m40_warp_sum's. Every value's sum is therefore the same
 * xor-butterfly tree as m40_warp_sum's, with each add's operands the same
 * pair (IEEE addition is commutative), so the bits are m40_warp_sum's: the
 * order of a row's sums does not depend on how many values share the warp.
 *
 * v[N2] (N2 = a power of two, the values past the real ones are padding:
 * a value is only ever added to its own copies) is consumed; on return
 * v[0 .. N2/32) (at least one) hold the sums of values base + j, with
 * base returned. */
template <int N2> static __device__ __forceinline__ int m40_warp_sum_scatter(float *v) {
    const int lane = threadIdx.x & 31;
    int base = 0, n = N2;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        if (n > 1) {
            const bool upper = (lane & o) != 0;
            const int h = n / 2;
#pragma unroll
            for (int i = 0; i < N2 / 2; i++) {
                if (i < h) {
                    float keep = upper ? v[i + h] : v[i], send = upper ? v[i] : v[i + h];
                    v[i] = keep + __shfl_xor_sync(0xffffffffu, send, o);
                }
            }
            base += upper ? h : 0;
            n = h;
        } else {
            v[0] += __shfl_xor_sync(0xffffffffu, v[0], o);
        }
    }
    return base;
}

/* Block-wide reduction of acc[r][c] into y[c * ldy + row0 + r], per row
 * and input: warp sums (m40_warp_sum_scatter), then the 4 warps' sums in
 * order, + bias, + res. */
template <int R, int NB, int G = 1>
static __device__ __forceinline__ void m40_gemv_store_rows(float (*acc)[NB], float *y, int ldy,
                                                           const float *bias, const float *res,
                                                           int row0, int rows, int n = NB) {
    constexpr int N = R * NB, N2 = m40_pow2_at_least(N), PER = N2 > 32 ? N2 / 32 : 1;
    /* G groups of 128 threads, each with its own R rows (row0 is the
     * group's): group g's warps are warps 4g .. 4g + 3. The launch must
     * give exactly 128 G threads (ops.c): more would index past red_g. */
    __shared__ float red_g[G][N][4];
    float(*red)[4] = red_g[threadIdx.x >> 7];
    const int warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
    float v[N2];
#pragma unroll
    for (int i = 0; i < N2; i++)
        v[i] = i < N ? acc[i / NB][i % NB] : 0.0f;
    const int base = m40_warp_sum_scatter<N2>(v);
    /* with fewer than 32 values, 32 / N2 lanes hold each: the first writes */
    if (N2 >= 32 || (lane & (32 / N2 - 1)) == 0) {
#pragma unroll
        for (int j = 0; j < PER; j++)
            if (base + j < N)
                red[base + j][warp] = v[j];
    }
    __syncthreads();
    for (int i = threadIdx.x & 127; i < N; i += 128) {
        int r = i / NB, c = i % NB, row = row0 + r;
        if (row >= rows || c >= n) /* n: the inputs there are, NB at most */
            continue;
        float s = 0.0f;
        for (int k = 0; k < 4; k++)
            s += red[i][k];
        if (bias)
            s += bias[row];
        if (res)
            s += res[(long long)c * ldy + row];
        y[(long long)c * ldy + row] = s;
    }
}

/* Threads per 32-element block of the repacked loop: 2 (16 elements each)
 * or 4 (8 each); fixed for the whole build, as the order of a row's sums
 * depends on it (docs/batching.md compares the two). */
#ifndef M40_GEMV_PARTS
#define M40_GEMV_PARTS 4
#endif

/* 1: the batched repacked loop loads its weights two trips ahead, not one
 * (m40_gemv_repacked; an experiment, off) */
#ifndef M40_GEMV_W_AHEAD2
#define M40_GEMV_W_AHEAD2 0
#endif

/* R 16-bit values at p (16-byte aligned for R = 8, 8-byte for R = 4), two
 * a word, into w[0 .. R/2): one load. */
template <int R>
static __device__ __forceinline__ void m40_load_halves(const unsigned short *p, uint32_t *w) {
    static_assert(R == 4 || R == 8, "a block's rows are half or all of a group of 8");
    if (R == 8) {
        const uint4 t = __ldg((const uint4 *)p);
        w[0] = t.x, w[1] = t.y, w[R / 2 - 2] = t.z, w[R / 2 - 1] = t.w;
    } else {
        const uint2 t = __ldg((const uint2 *)p);
        w[0] = t.x, w[R / 2 - 1] = t.y;
    }
}

/* The quant words (u) and f16 scales (hs) of block b of the block's R
 * rows, R = 4 or 8 adjacent rows of one group of 8 in repack.cu's
 * interleaved layout: q points at this thread's first word of block 0 of
 * the first of them, s at that row's scale of block 0. A word of all R
 * rows is R consecutive words (R/4 16-byte loads), their R scales 2R
 * consecutive bytes (one load). In Q8_0 the second half's words are 4
 * words (32 words of the layout) after the first's. */
template <int QW, int R, int WPH>
static __device__ __forceinline__ void m40_repacked_load(const uint32_t *q, const unsigned short *s,
                                                         unsigned b, uint32_t (*u)[2 * WPH],
                                                         unsigned short *hs) {
    static_assert(R == 4 || R == 8, "a block's rows are half or all of a group of 8");
    constexpr int NW = QW == 4 ? WPH : 2 * WPH; /* words per row this thread reads */
    const uint32_t *qb = q + b * (QW * 8);
#pragma unroll
    for (int k = 0; k < NW; k++) {
        const uint4 *src = (const uint4 *)(qb + 8 * (k < WPH ? k : 4 + k - WPH));
#pragma unroll
        for (int h = 0; h < R / 4; h++) {
            uint4 t = __ldg(src + h);
            u[4 * h][k] = t.x, u[4 * h + 1][k] = t.y, u[4 * h + 2][k] = t.z, u[4 * h + 3][k] = t.w;
        }
    }
    uint32_t sw[R / 2]; /* two scales a word */
    m40_load_halves<R>(s + b * 8, sw);
#pragma unroll
    for (int r = 0; r < R; r++)
        hs[r] = (unsigned short)(sw[r / 2] >> (16 * (r % 2)));
}

/* x of inputs 0..NB-1 for block b: this thread's 2H elements of each
 * (part p), in element order. */
template <int NB, int H>
static __device__ __forceinline__ void m40_repacked_x(const float *x, int ldx, unsigned b,
                                                      unsigned p, float (*xv)[2 * H]) {
    constexpr int WPH = H / 4;
#pragma unroll
    for (int c = 0; c < NB; c++) {
        const float4 *x4 = (const float4 *)(x + (long long)c * ldx + b * 32 + H * p);
#pragma unroll
        for (int k = 0; k < 2 * WPH; k++) {
            /* k < WPH: first half; then the same offsets 16 elements on */
            float4 a = __ldg(x4 + (k < WPH ? k : 4 + k - WPH));
            xv[c][4 * k] = a.x, xv[c][4 * k + 1] = a.y;
            xv[c][4 * k + 2] = a.z, xv[c][4 * k + 3] = a.w;
        }
    }
}

/* Each weight scaled as it is decoded (m40_byte_at_2p15): the product is
 * exact, so a row's sum is of the dequantized weights themselves, and the
 * block's scale costs no FMA per input. d, c_lo, c_hi of the R rows from
 * their f16 scales hs. */
template <int QW, int R>
static __device__ __forceinline__ void m40_repacked_scales(const unsigned short *hs, float *d,
                                                           float *c_lo, float *c_hi) {
#pragma unroll
    for (int r = 0; r < R; r++) {
        d[r] = __half2float(__ushort_as_half(hs[r]));
        c_lo[r] = d[r] * (QW == 4 ? -32776.0f : -32896.0f); /* -(2^15 + 8), -(2^15 + 128) */
        c_hi[r] = d[r] * -2056.0f;                          /* -(2^11 + 8): Q4_0 only */
    }
}

/* One trip's arithmetic: the R rows' weights decoded from their quant
 * words u and multiplied into acc with x. */
template <int QW, int R, int NB, int H>
static __device__ __forceinline__ void
m40_repacked_fma(float (*acc)[NB], const uint32_t (*u)[H / 2], const float *d, const float *c_lo,
                 const float *c_hi, const float (*xv)[2 * H]) {
    constexpr int WPH = H / 4;
#pragma unroll
    for (int r = 0; r < R; r++) {
        float v[2 * H];
#pragma unroll
        for (int k = 0; k < WPH; k++) {
            if (QW == 4) {
                /* the high nibbles stay in place (16 n in a byte) */
                uint32_t lo = u[r][k] & 0x0F0F0F0Fu, hi = u[r][k] & 0xF0F0F0F0u;
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    v[4 * k + j] = fmaf(m40_byte_at_2p15(lo, j), d[r], c_lo[r]);
                    v[H + 4 * k + j] = fmaf(m40_byte_at_2p11(hi, j), d[r], c_hi[r]);
                }
            } else {
                /* flipping the sign bit maps int8 -128..127 to 0..255 */
                uint32_t lo = u[r][k] ^ 0x80808080u, hi = u[r][WPH + k] ^ 0x80808080u;
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    v[4 * k + j] = fmaf(m40_byte_at_2p15(lo, j), d[r], c_lo[r]);
                    v[H + 4 * k + j] = fmaf(m40_byte_at_2p15(hi, j), d[r], c_lo[r]);
                }
            }
        }
#pragma unroll
        for (int c = 0; c < NB; c++)
#pragma unroll
            for (int i = 0; i < 2 * H; i++)
                acc[r][c] = fmaf(v[i], xv[c][i], acc[r][c]);
    }
}

/* y[c][ldy] (first `rows`) = W x[c] (+ bias) (+ res[c]) for NB inputs x[c]
 * (ldx floats apart, 16-byte aligned): group g of block b (128 threads
 * each, G a block) computes rows (b G + g) R .. (b G + g) R + R - 1. QW =
 * quant words per block (4: Q4_0, 8: Q8_0).
 *
 * With P = M40_GEMV_PARTS threads per block of 32 and H = 16 / P, thread t
 * of a group takes part p = t % P of blocks t / P, t / P + 128 / P, ...:
 * elements [H p, H p + H) and [16 + H p, 16 + H p + H), in that order. In
 * Q4_0 those are the low, then the high nibbles of quant words H/4 p ..
 * (GGML's byte order, kept by repack.cu); in Q8_0 words H/4 p .. and
 * 4 + H/4 p ... */
template <int QW, int R, int NB, int G = 1>
static __device__ __forceinline__ void m40_gemv_repacked(float *y, const uint8_t *w, const float *x,
                                                         const float *bias, const float *res,
                                                         int rows, int cols, int ldy, int ldx) {
    constexpr int P = M40_GEMV_PARTS, H = 16 / P, WPH = H / 4;
    /* G groups of 128 threads a block (blockDim.x = 128 G), each with R
     * rows of its own over the same columns: what one 128-thread block
     * does alone, thread for thread, so the bits are the same for every G.
     * The groups' warps of one part of the columns load the same x at
     * nearly the same time, so one read from L2 serves G R rows. */
    const unsigned tid = threadIdx.x & 127;
    const int row0 = (blockIdx.x * G + (threadIdx.x >> 7)) * R;
    const unsigned nb = (unsigned)cols / 32, n_blocks = (unsigned)rows * nb;
    const unsigned p = tid % P;
    /* this thread's first word and the first row's scale, both of block 0
     * (rows % 8 == 0 for a repacked matrix, so every group's R rows lie in
     * one group of 8; a group past the last row, in the last block, reads
     * the last R rows and stores nothing) */
    const int rload = min(row0, rows - R);
    const unsigned group = (unsigned)rload / 8, sub = (unsigned)rload % 8;
    const uint32_t *q = (const uint32_t *)w + ((size_t)group * nb * QW + WPH * p) * 8 + sub;
    const unsigned short *s =
        (const unsigned short *)(w + (size_t)n_blocks * QW * 4) + (size_t)group * nb * 8 + sub;
    float acc[R][NB];
    m40_acc_zero<R, NB>(acc);
    /* the weights of the next block are loaded before this one's are
     * used (the last trip reloads its own): with few blocks per SM, one
     * trip's arithmetic hides the next trip's loads. AHEAD trips ahead:
     * 1, or 2 with M40_GEMV_W_AHEAD2 (an experiment, off: for a JIT that
     * places the one-ahead load late in the trip; docs/batching.md,
     * "Where the 8-input kernel waits"), batches only. */
    constexpr int AHEAD = M40_GEMV_W_AHEAD2 && NB > 1 ? 2 : 1;
    const unsigned step = 128 / P;
    uint32_t u[AHEAD][R][2 * WPH];
    unsigned short hs[AHEAD][R];
    unsigned b = tid / P;
#pragma unroll
    for (int a = 0; a < AHEAD; a++)
        m40_repacked_load<QW, R, WPH>(q, s, min(b + a * step, nb - 1), u[a], hs[a]);
    for (; b < nb; b += step) {
        uint32_t un[R][2 * WPH];
        unsigned short hn[R];
        float d[R], c_lo[R], c_hi[R], xv[NB][2 * H];
        m40_repacked_x<NB, H>(x, ldx, b, p, xv);
        m40_repacked_load<QW, R, WPH>(q, s, min(b + AHEAD * step, nb - 1), un, hn);
        m40_repacked_scales<QW, R>(hs[0], d, c_lo, c_hi);
        m40_repacked_fma<QW, R, NB, H>(acc, u[0], d, c_lo, c_hi, xv);
#pragma unroll
        for (int r = 0; r < R; r++) {
#pragma unroll
            for (int a = 0; a < AHEAD; a++)
                hs[a][r] = a + 1 < AHEAD ? hs[a + 1][r] : hn[r];
#pragma unroll
            for (int k = 0; k < 2 * WPH; k++)
#pragma unroll
                for (int a = 0; a < AHEAD; a++)
                    u[a][r][k] = a + 1 < AHEAD ? u[a + 1][r][k] : un[r][k];
        }
    }
    m40_gemv_store_rows<R, NB, G>(acc, y, ldy, bias, res, row0, rows);
}

/* ---- repacked Q6_K: the same loop and shape ------------------------------
 *
 * m40_gemv_repacked's loop on quant_decode.cuh's repacked Q6_K: thread t
 * of a group takes part p = t & 3 of blocks t/4, t/4 + 32, ..., elements
 * 4p..4p+3 and 16+4p..16+4p+3, and adds their products with x to its
 * accumulator in that order; the groups and the block reduce as there.
 * Each weight is GGML's dequantized value (d sc)(q - 32), exactly, in
 * three instructions: PRMT puts q under 2^15, fma(2^15 + q, dsc, -2^15 dsc)
 * gives q dsc (dsc = d sc has at most 18 significant bits, q 6), then
 * adding -32 dsc gives (q - 32) dsc (23 bits). One FMA cannot do both:
 * -(2^15 + 32) dsc needs 29 bits. Per trip a thread loads, for its R rows,
 * one ql and one qh word each, their scales and their super-block's d:
 * 16-byte loads, 2 to 6 of them. Kernels m40_gemv_q6_kr_rpb{4,8} (gemv.cu)
 * and m40_gemvb_q6_kr{,8,16}_nb<NB> (gemv_batch.cu). */

/* What a thread reads of one block of its R rows. */
template <int R> struct m40_q6_kr_words {
    uint32_t ql[R], qh[R];
    uint32_t sc[R / 2], d[R / 2]; /* two rows' int8 pairs / f16 a word */
};

template <int R>
static __device__ __forceinline__ void m40_q6_kr_load(const m40_q6_kr_arrays &a, size_t qlw,
                                                      size_t qhw, size_t scw, size_t dw, unsigned b,
                                                      m40_q6_kr_words<R> &o) {
    static_assert(R == 4 || R == 8, "a block's rows are half or all of a group of 8");
#pragma unroll
    for (int h = 0; h < R / 4; h++) {
        const uint4 l = __ldg((const uint4 *)(a.ql + qlw + (size_t)b * 32) + h);
        const uint4 e = __ldg((const uint4 *)(a.qh + qhw + (size_t)b * 16) + h);
        o.ql[4 * h] = l.x, o.ql[4 * h + 1] = l.y, o.ql[4 * h + 2] = l.z, o.ql[4 * h + 3] = l.w;
        o.qh[4 * h] = e.x, o.qh[4 * h + 1] = e.y, o.qh[4 * h + 2] = e.z, o.qh[4 * h + 3] = e.w;
    }
    m40_load_halves<R>(a.sc + scw + (size_t)b * 8, o.sc);
    m40_load_halves<R>(a.d + dw + (size_t)(b / 8) * 8, o.d);
}

template <int R, int NB, int G = 1>
static __device__ __forceinline__ void m40_gemv_q6_kr(float *y, const uint8_t *w, const float *x,
                                                      const float *bias, const float *res, int rows,
                                                      int cols, int ldy, int ldx) {
    const unsigned tid = threadIdx.x & 127;
    const int row0 = (blockIdx.x * G + (threadIdx.x >> 7)) * R;
    const unsigned nb = (unsigned)cols / 32, p = tid & 3;
    /* as m40_gemv_repacked: a group past the last row reads the last R
     * rows and stores nothing */
    const int rload = min(row0, rows - R);
    const size_t group = (unsigned)rload / 8, sub = (unsigned)rload % 8;
    const m40_q6_kr_arrays a = m40_q6_kr_layout(w, (unsigned)rows, nb);
    /* word offsets of this thread's words of block 0 of the first row */
    const size_t qlw = (group * nb * 4 + p) * 8 + sub, qhw = (group * nb * 2 + p / 2) * 8 + sub;
    const size_t scw = group * nb * 8 + sub, dw = group * (nb / 8) * 8 + sub;
    float acc[R][NB];
    m40_acc_zero<R, NB>(acc);
    /* the next block's words are loaded before this one's are used */
    m40_q6_kr_words<R> cur, nxt;
    unsigned b = tid / 4;
    m40_q6_kr_load<R>(a, qlw, qhw, scw, dw, min(b, nb - 1), cur);
    for (; b < nb; b += 32) {
        float xv[NB][8];
#pragma unroll
        for (int c = 0; c < NB; c++) {
            const float4 *x4 = (const float4 *)(x + (long long)c * ldx + b * 32 + 4 * p);
            const float4 lo = __ldg(x4), hi = __ldg(x4 + 4); /* elements 4p.., 16 + 4p.. */
            xv[c][0] = lo.x, xv[c][1] = lo.y, xv[c][2] = lo.z, xv[c][3] = lo.w;
            xv[c][4] = hi.x, xv[c][5] = hi.y, xv[c][6] = hi.z, xv[c][7] = hi.w;
        }
        m40_q6_kr_load<R>(a, qlw, qhw, scw, dw, min(b + 32, nb - 1), nxt);
#pragma unroll
        for (int r = 0; r < R; r++) {
            const uint32_t dh = cur.d[r / 2] >> (16 * (r % 2));
            const float d = __half2float(__ushort_as_half((unsigned short)dh));
            const float s0 = d * m40_i8_to_f(cur.sc[r / 2], 2 * (r % 2));
            const float s1 = d * m40_i8_to_f(cur.sc[r / 2], 2 * (r % 2) + 1);
            const float c0 = s0 * -32768.0f, c1 = s1 * -32768.0f; /* -2^15 dsc */
            const float e0 = s0 * -32.0f, e1 = s1 * -32.0f;
            uint32_t lo, hi;
            m40_q6_kr_part(cur.ql[r], cur.qh[r], p, &lo, &hi);
            float v[8];
#pragma unroll
            for (int j = 0; j < 4; j++) {
                v[j] = fmaf(m40_byte_at_2p15(lo, j), s0, c0) + e0;
                v[4 + j] = fmaf(m40_byte_at_2p15(hi, j), s1, c1) + e1;
            }
#pragma unroll
            for (int c = 0; c < NB; c++)
#pragma unroll
                for (int i = 0; i < 8; i++)
                    acc[r][c] = fmaf(v[i], xv[c][i], acc[r][c]);
        }
        cur = nxt;
    }
    m40_gemv_store_rows<R, NB, G>(acc, y, ldy, bias, res, row0, rows);
}

/* ---- Q4_K: the same shape for a row alone and for a batch ----------------
 *
 * As m40_gemv_repacked, on GGML's own Q4_K rows (row_bytes apart, 16-byte
 * aligned, 144-byte super-blocks of 8 sub-blocks of 32). A 128-thread block
 * walks a row 8 super-blocks at a time; in each, warp w takes sub-blocks w
 * and w + 4 of the 8 super-blocks (lanes 4k..4k+3: super-block k), so which
 * sub-block a thread decodes, and so where its scale and min sit among the
 * 12 scale bytes, is the same across a warp. Thread part p = t & 3 takes
 * elements 8p..8p+7 of each: the low nibbles of 8 quant bytes for an even
 * sub-block, the high ones for an odd one. Per sub-block and input it adds
 * the dot product of its 8 unscaled values with x (FMAs in element order
 * from 0) times d * scale, then the sum of its 8 x values (in order) times
 * -dmin * min, to its accumulator: sub-block w first, then w + 4; the
 * block reduces as above. A row's arithmetic does not depend on NB, so the
 * single-row kernel (gemv.cu's m40_gemv_q4_k_v) is this loop with one
 * input and the batched one (gemv_batch.cu) the same with NB. */

/* Scale and min (6 bits each, GGML's get_scale_min_k4) of sub-block s of a
 * super-block whose 12 scale bytes are the words w0, w1, w2, as floats. */
template <bool HIGH>
static __device__ __forceinline__ void m40_q4_k_scale_min(uint32_t w0, uint32_t w1, uint32_t w2,
                                                          unsigned shift, float *sc, float *mn) {
    uint32_t a, m;
    if (!HIGH) { /* s < 4: bytes s and s + 4, low 6 bits; shift = 8 s */
        a = (w0 >> shift) & 63u;
        m = (w1 >> shift) & 63u;
    } else { /* s >= 4: byte s + 4's nibbles, top 2 bits of bytes s - 4 and s */
        uint32_t c = w2 >> shift;
        a = (c & 15u) | ((w0 >> (shift + 2)) & 0x30u);
        m = ((c >> 4) & 15u) | ((w1 >> (shift + 2)) & 0x30u);
    }
    /* 0..63 to float exactly, without I2F: in the mantissa of 2^23 */
    *sc = __uint_as_float(0x4B000000u | a) - 8388608.0f;
    *mn = __uint_as_float(0x4B000000u | m) - 8388608.0f;
}

/* The 8 unscaled values of a part: low nibbles of q (HIGH false) or high
 * nibbles in place, read under the exponent of 2^19 (m40_byte_to_f19). */
template <bool HIGH> static __device__ __forceinline__ void m40_q4_k_part(uint2 q, float *v) {
    const uint32_t w[2] = {q.x, q.y};
#pragma unroll
    for (int k = 0; k < 2; k++) {
#pragma unroll
        for (int j = 0; j < 4; j++)
            v[4 * k + j] = HIGH ? m40_byte_to_f19(w[k] & 0xF0F0F0F0u, j) - 524288.0f
                                : m40_byte_to_f(w[k] & 0x0F0F0F0Fu, j) - 8388608.0f;
    }
}

/* x[c][e0 .. e0 + 7] into xv[c] and their sum, in order, into sx[c]. */
template <int NB>
static __device__ __forceinline__ void m40_load_x8(const float *x, int ldx, unsigned e0,
                                                   float (*xv)[8], float *sx) {
#pragma unroll
    for (int c = 0; c < NB; c++) {
        const float4 *x4 = (const float4 *)(x + (long long)c * ldx + e0);
        float4 a = __ldg(x4), e = __ldg(x4 + 1);
        xv[c][0] = a.x, xv[c][1] = a.y, xv[c][2] = a.z, xv[c][3] = a.w;
        xv[c][4] = e.x, xv[c][5] = e.y, xv[c][6] = e.z, xv[c][7] = e.w;
        sx[c] = 0.0f;
#pragma unroll
        for (int i = 0; i < 8; i++)
            sx[c] += xv[c][i];
    }
}

/* Q4_K's "middle way" (docs/batching.md): each value scaled as it is
 * decoded, q d*sc exactly (m40_byte_at_2p15 and _2p11: d*sc is an FP16
 * times 6 bits), its products added to the accumulator directly, the min
 * as before. The default since the nineteenth session (H100, 7B shapes:
 * 8 inputs 8-10% faster, one row within 1%); 0 builds the loop before it
 * (the dot product of unscaled values, then the scale), whose bits
 * differ. Either is the same for a row alone and in a batch. */
#ifndef M40_Q4_K_SCALED_DECODE
#define M40_Q4_K_SCALED_DECODE 1
#endif

/* Experiment (off unless built with M40_Q4_K_FOLD_MIN=1, on top of the
 * scaled decode): each value decoded whole, q d*sc - dmin*m, one rounding
 * of the exact difference, i.e. GGML's dequantized weight itself; a row's
 * sum is then of weights times x alone, with no sum of x per sub-block
 * and no min term per input. Fewer instructions at 8 inputs on sm_52
 * (docs/batching.md); other bits than the default, for a row alone and in
 * a batch alike. */
#ifndef M40_Q4_K_FOLD_MIN
#define M40_Q4_K_FOLD_MIN 0
#endif

/* The 8 values of a part scaled by dsc: q dsc, exact. */
template <bool HIGH>
static __device__ __forceinline__ void m40_q4_k_part_scaled(uint2 q, float dsc, float *v) {
    const uint32_t w[2] = {q.x, q.y};
    const float c = dsc * (HIGH ? -2048.0f : -32768.0f); /* -2^11 dsc, -2^15 dsc */
#pragma unroll
    for (int k = 0; k < 2; k++) {
#pragma unroll
        for (int j = 0; j < 4; j++)
            v[4 * k + j] = HIGH ? fmaf(m40_byte_at_2p11(w[k] & 0xF0F0F0F0u, j), dsc, c)
                                : fmaf(m40_byte_at_2p15(w[k] & 0x0F0F0F0Fu, j), dsc, c);
    }
}

/* One sub-block (w, or w + 4 when SC_HIGH) of each of the R rows, for NB
 * inputs; NIB_HIGH: an odd sub-block (high nibbles). */
template <bool SC_HIGH, bool NIB_HIGH, int R, int NB>
static __device__ __forceinline__ void m40_q4_k_sub(const uint4 *hd, const uint2 *q, unsigned shift,
                                                    float (*xv)[8], const float *sx,
                                                    float (*acc)[NB]) {
#pragma unroll
    for (int r = 0; r < R; r++) {
        float sc, mn, v[8];
        m40_q4_k_scale_min<SC_HIGH>(hd[r].y, hd[r].z, hd[r].w, shift, &sc, &mn);
        const float dsc = m40_h_lo(hd[r].x) * sc, ndmn = -(m40_h_hi(hd[r].x) * mn);
#if M40_Q4_K_SCALED_DECODE
        m40_q4_k_part_scaled<NIB_HIGH>(q[r], dsc, v);
        if (M40_Q4_K_FOLD_MIN) {
#pragma unroll
            for (int i = 0; i < 8; i++)
                v[i] += ndmn; /* q dsc is exact: one rounding, as GGML's dequantize */
        }
#pragma unroll
        for (int c = 0; c < NB; c++) {
            float a = acc[r][c];
#pragma unroll
            for (int i = 0; i < 8; i++)
                a = fmaf(v[i], xv[c][i], a);
            acc[r][c] = M40_Q4_K_FOLD_MIN ? a : fmaf(ndmn, sx[c], a);
        }
#else
        m40_q4_k_part<NIB_HIGH>(q[r], v);
#pragma unroll
        for (int c = 0; c < NB; c++)
            acc[r][c] = fmaf(ndmn, sx[c], fmaf(dsc, m40_dot<8>(v, xv[c]), acc[r][c]));
#endif
    }
}

/* Sub-blocks wp and wp + 4 of super-block sb of the R rows (header hd,
 * quants q0 and q1), for NB inputs. */
template <bool NIB_HIGH, int R, int NB>
static __device__ __forceinline__ void
m40_q4_k_pair(const float *x, int ldx, unsigned e0, const uint4 *hd, const uint2 *q0,
              const uint2 *q1, unsigned shift, float (*acc)[NB]) {
    float xv[NB][8], sx[NB];
    m40_load_x8<NB>(x, ldx, e0, xv, sx);
    m40_q4_k_sub<false, NIB_HIGH, R, NB>(hd, q0, shift, xv, sx, acc);
    m40_load_x8<NB>(x, ldx, e0 + 128, xv, sx);
    m40_q4_k_sub<true, NIB_HIGH, R, NB>(hd, q1, shift, xv, sx, acc);
}

template <int R, int NB>
static __device__ __forceinline__ void
m40_gemv_q4_k_rows(float *y, const uint8_t *w, const float *x, const float *bias, const float *res,
                   int rows, int cols, long long row_bytes, int ldy, int ldx) {
    const int row0 = blockIdx.x * R;
    const unsigned nsb = (unsigned)cols / 256, p = threadIdx.x & 3;
    const unsigned k = (threadIdx.x >> 2) & 7,
                   wp = threadIdx.x >> 5; /* warp: sub-blocks wp, wp+4 */
    /* byte offsets of the block's rows, clamped to the last row (32-bit:
     * a matrix is under 4 GiB) */
    unsigned roff[R];
#pragma unroll
    for (int r = 0; r < R; r++)
        roff[r] = (unsigned)min(row0 + r, rows - 1) * (unsigned)row_bytes;
    float acc[R][NB];
    m40_acc_zero<R, NB>(acc);
    /* sub-block wp's pair of quant bytes is (wp >> 1), nibbles by wp & 1;
     * sub-block wp + 4's is pair 2 + (wp >> 1), the same nibbles */
    const unsigned qlo = 16 + (wp >> 1) * 32 + 8 * p, shift = 8 * wp;
    for (unsigned sb = k; sb < nsb; sb += 8) {
        const uint8_t *base = w + sb * 144;
        uint4 hd[R];
        uint2 q0[R], q1[R];
#pragma unroll
        for (int r = 0; r < R; r++) {
            hd[r] = __ldg((const uint4 *)(base + roff[r]));
            q0[r] = __ldg((const uint2 *)(base + roff[r] + qlo));
            q1[r] = __ldg((const uint2 *)(base + roff[r] + qlo + 64));
        }
        /* warp-uniform: odd sub-blocks (odd warps) read high nibbles */
        const unsigned e0 = sb * 256 + wp * 32 + 8 * p;
        if (wp & 1)
            m40_q4_k_pair<true, R, NB>(x, ldx, e0, hd, q0, q1, shift, acc);
        else
            m40_q4_k_pair<false, R, NB>(x, ldx, e0, hd, q0, q1, shift, acc);
    }
    m40_gemv_store_rows<R, NB>(acc, y, ldy, bias, res, row0, rows);
}

/* ---- row-addressed types in a batch ---------------------------------------
 *
 * The loops of gemv.cu's M40_DEFINE_GEMV (group ops) and wide-load F16/BF16
 * kernels with n inputs (2 <= n <= NBMAX, a kernel argument: one kernel
 * serves every batch, the inputs past n are skipped by a uniform branch).
 * Input c's arithmetic is a row alone's: the same thread takes the same
 * groups (chunks) in the same order, adds the same share to an
 * accumulator that starts at 0, and m40_gemv_store_rows sums the threads'
 * accumulators with the bits of gemv.cu's m40_gemv_store (the same
 * butterfly, then the 4 warps in order, bias, res). What a batch saves: a
 * group of R rows is read and decoded once for all the inputs, and x's
 * group once for the R rows. */

/* Input c's shares of group g of the R rows (decoded into v, k). */
template <class OPS, int R, int NBMAX>
static __device__ __forceinline__ void m40_rows_batch_input(const float (*v)[32],
                                                            const float (*k)[2], const float *xv,
                                                            int c, float (*acc)[NBMAX]) {
    float sx = m40_sum32(xv); /* unused (and not computed) by most types */
#pragma unroll
    for (int r = 0; r < R; r++)
        acc[r][c] += OPS::share(k[r], v[r], xv, sx);
}

template <class OPS, int R, int NBMAX>
static __device__ __forceinline__ void
m40_gemv_rows_batch(float *y, const uint8_t *w, const float *x, const float *bias, const float *res,
                    int rows, int cols, long long row_bytes, int ldy, int ldx, int n) {
    const int row0 = blockIdx.x * R;
    const uint8_t *wr[R]; /* the block's rows, clamped to the last */
#pragma unroll
    for (int r = 0; r < R; r++)
        wr[r] = w + (long long)min(row0 + r, rows - 1) * row_bytes;
    float acc[R][NBMAX];
    m40_acc_zero<R, NBMAX>(acc);
    for (int g = threadIdx.x; g < cols / 32; g += blockDim.x) {
        float v[R][32], k[R][2];
#pragma unroll
        for (int r = 0; r < R; r++)
            OPS::decode(wr[r], g, v[r], k[r]);
#pragma unroll
        for (int c = 0; c < NBMAX; c++) {
            if (c < n) {
                float xv[32];
                m40_load_x32(x + (long long)c * ldx, g, xv);
                m40_rows_batch_input<OPS, R, NBMAX>(v, k, xv, c, acc);
            }
        }
    }
    m40_gemv_store_rows<R, NBMAX>(acc, y, ldy, bias, res, row0, rows, n);
}

/* F16 (BF16 false) or BF16 rows, 16-byte aligned. */
template <int R, int NBMAX, bool BF16>
static __device__ __forceinline__ void
m40_gemv_half_batch(float *y, const uint8_t *w, const float *x, const float *bias, const float *res,
                    int rows, int cols, long long row_bytes, int ldy, int ldx, int n) {
    const int row0 = blockIdx.x * R;
    const uint4 *wr[R];
#pragma unroll
    for (int r = 0; r < R; r++)
        wr[r] = (const uint4 *)(w + (long long)min(row0 + r, rows - 1) * row_bytes);
    float acc[R][NBMAX];
    m40_acc_zero<R, NBMAX>(acc);
    for (int i = threadIdx.x; i < cols / 8; i += blockDim.x) {
        float wv[R][8];
#pragma unroll
        for (int r = 0; r < R; r++) {
            uint4 p = __ldg(wr[r] + i);
            if (BF16)
                m40_unpack8_bf16(p, wv[r]);
            else
                m40_unpack8_f16(p, wv[r]);
        }
#pragma unroll
        for (int c = 0; c < NBMAX; c++) {
            if (c < n) {
                const float4 *x4 = (const float4 *)(x + (long long)c * ldx);
                float4 a = __ldg(x4 + 2 * i), b = __ldg(x4 + 2 * i + 1);
#pragma unroll
                for (int r = 0; r < R; r++)
                    acc[r][c] += m40_dot8(wv[r], a, b);
            }
        }
    }
    m40_gemv_store_rows<R, NBMAX>(acc, y, ldy, bias, res, row0, rows, n);
}

#endif /* M40_KERNELS_GEMV_COMMON_CUH */
