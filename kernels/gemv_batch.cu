/* gemv_batch.cu - mat-vec for a batch of decode rows: Y = X W^T, B rows.
 *
 * y[c][ldy] (first `rows` columns) = W x[c] (+ bias) (+ res[c]) for the NB
 * input rows x[c] (ldx floats apart, 16-byte aligned) of a decode step,
 * one weight matrix read once for all of them. NB is the kernel's batch
 * (`_nb<NB>` in its name, 2..8); the launcher (src/backend/cuda/ops.c)
 * cuts a batch into nearly equal pieces of at most M40_GEMVB_PIECE (4:
 * faster on the H100 than one launch of 8, docs/batching.md).
 *
 * Batch invariance. Output c of these kernels is, bit for bit, what the
 * single-row kernel of gemv.cu gives for x[c] alone: thread t of the
 * 128-thread block accumulates the same 32-element groups t, t+128, ...
 * in the same order, each group's dot product is the same chain of FMAs
 * in element order from 0 (then scaled once, as m40_gemv_<type>r does),
 * and the block sums its threads' partials through the same warp
 * shuffles and the same shared-memory order (m40_gemvb_store). How many
 * rows a block takes or how many inputs a launch has never enters a
 * row's arithmetic, so a request's logits do not depend on what else runs.
 *
 * Types: repacked Q4_0 and Q8_0 (m40_gemvb_<type>r_nb<NB>). Every other
 * type runs a single-row product per input (the same kernel as alone, so
 * the same bits): batched kernels of the wide-load types (2 rows per
 * block, x reloaded per row) lost to single-row products on the H100
 * (docs/batching.md), and were removed.
 *
 * Cost (why this shape). On Maxwell a batch is bound by instruction issue:
 * each weight must be decoded once and then cost one FFMA per input.
 * Repacked: per 32-element group a thread decodes R rows' quants into
 * registers (R = rows per block) and walks the group four elements at a
 * time: it loads those four x values of each of the NB inputs (one 16-byte
 * load each, shared by the R rows) and decodes four weights of each row
 * (one PRMT + FADD each, shared by the NB inputs). Per weight and input
 * that is one FFMA, 1/NB of a decode and 1/(4 R) of a load
 * (scripts/sass-count.py; docs/performance.md has the counts).
 */
#include "common.cuh"
#include "quant_decode.cuh"

#define M40_GEMVB_WARPS 4 /* 128 threads: thread t is partial t, as in gemv.cu */

/* Block-wide reduction of the partial sums acc[r][c] into y[c][row0 + r]:
 * per (row, input) the same steps as gemv.cu's m40_gemv_store. */
template <int R, int NB>
static __device__ __forceinline__ void m40_gemvb_store(float (*acc)[NB], float *y, int ldy,
                                                       const float *bias, const float *res,
                                                       int row0, int rows) {
    __shared__ float red[R * NB][M40_GEMVB_WARPS];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
#pragma unroll
    for (int r = 0; r < R; r++) {
#pragma unroll
        for (int c = 0; c < NB; c++) {
            float s = m40_warp_sum(acc[r][c]);
            if (lane == 0)
                red[r * NB + c][warp] = s;
        }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < R * NB; i += blockDim.x) {
        int r = i / NB, c = i % NB, row = row0 + r;
        if (row >= rows)
            continue;
        float s = 0.0f;
        for (int k = 0; k < M40_GEMVB_WARPS; k++)
            s += red[i][k];
        if (bias)
            s += bias[row];
        if (res)
            s += res[(long long)c * ldy + row];
        y[(long long)c * ldy + row] = s;
    }
}

/* Four unscaled values, elements 4j .. 4j+3 of a repacked Q4_0 block whose
 * quant words are q[0..3] (m40_q4_0r_block's order: word k's low nibbles
 * are elements 4k.., its high nibbles 16+4k..). */
static __device__ __forceinline__ void m40_q4_0r_four(const uint32_t *q, int j, float *v) {
    uint32_t u = j < 4 ? q[j] & 0x0F0F0F0Fu : (q[j - 4] >> 4) & 0x0F0F0F0Fu;
#pragma unroll
    for (int k = 0; k < 4; k++)
        v[k] = m40_byte_to_f(u, k) - 8388616.0f; /* nibble - 8 */
}

/* The same for repacked Q8_0 (words q[0..7], word j = elements 4j..4j+3). */
static __device__ __forceinline__ void m40_q8_0r_four(const uint32_t *q, int j, float *v) {
    uint32_t u = q[j] ^ 0x80808080u;
#pragma unroll
    for (int k = 0; k < 4; k++)
        v[k] = m40_byte_to_f(u, k) - 8388736.0f; /* int8 + 128 - 128 */
}

/* The loop for repacked Q4_0 / Q8_0 (QW quant words per block: 4 or 8). */
template <int QW, int R, int NB>
static __device__ __forceinline__ void
m40_gemvb_repacked(float *y, const uint8_t *w, const float *x, const float *bias, const float *res,
                   int rows, int cols, int ldy, int ldx) {
    const int row0 = blockIdx.x * R;
    const unsigned nb = (unsigned)cols / 32, n_blocks = (unsigned)rows * nb;
    const uint4 *q = (const uint4 *)w;
    const unsigned short *sc = (const unsigned short *)(w + (size_t)n_blocks * QW * 4);
    float acc[R][NB];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int c = 0; c < NB; c++)
            acc[r][c] = 0.0f;
    for (unsigned b = threadIdx.x; b < nb; b += blockDim.x) {
        uint32_t qw[R][QW];
        float d[R], s[R][NB];
        unsigned last = (unsigned)(rows - 1) * nb + b;
#pragma unroll
        for (int r = 0; r < R; r++) {
            unsigned i = min((unsigned)(row0 + r) * nb + b, last);
#pragma unroll
            for (int k = 0; k < QW / 4; k++) {
                uint4 p = __ldg(q + (size_t)i * (QW / 4) + k);
                qw[r][4 * k] = p.x, qw[r][4 * k + 1] = p.y;
                qw[r][4 * k + 2] = p.z, qw[r][4 * k + 3] = p.w;
            }
            d[r] = __half2float(__ushort_as_half(__ldg(sc + i)));
#pragma unroll
            for (int c = 0; c < NB; c++)
                s[r][c] = 0.0f;
        }
#pragma unroll
        for (int j = 0; j < 8; j++) {
            float4 xa[NB];
#pragma unroll
            for (int c = 0; c < NB; c++)
                xa[c] = __ldg((const float4 *)(x + (long long)c * ldx + b * 32) + j);
#pragma unroll
            for (int r = 0; r < R; r++) {
                float v[4];
                if (QW == 4)
                    m40_q4_0r_four(qw[r], j, v);
                else
                    m40_q8_0r_four(qw[r], j, v);
#pragma unroll
                for (int c = 0; c < NB; c++) {
                    s[r][c] = fmaf(v[0], xa[c].x, s[r][c]);
                    s[r][c] = fmaf(v[1], xa[c].y, s[r][c]);
                    s[r][c] = fmaf(v[2], xa[c].z, s[r][c]);
                    s[r][c] = fmaf(v[3], xa[c].w, s[r][c]);
                }
            }
        }
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int c = 0; c < NB; c++)
                acc[r][c] = fmaf(d[r], s[r][c], acc[r][c]);
    }
    m40_gemvb_store<R, NB>(acc, y, ldy, bias, res, row0, rows);
}

/* Rows per block of the repacked kernels for a batch of NB: 8 while the
 * partials and accumulators (R NB of each) leave room, 5 above a batch of
 * 4 (255 registers, no spills; 5 rows cost fewer instructions per weight
 * than 4: scripts/sass-count.py). */
#define M40_GEMVB_R(NB) ((NB) <= 4 ? 8 : 5)

/* Every batched kernel's parameters: one list, which the launcher's
 * argument list (ops.c, gemv_piece) matches for every family. */
#define M40_GEMVB_KERNEL(name)                                                               \
    M40_KERNEL void name(float *y, const uint8_t *w, const float *x, const float *bias,      \
                         const float *res, int rows, int cols, long long row_bytes, int ldy, \
                         int ldx)

/* DEF(type, arg, NB) for each batch a launch takes, 2..M40_GEMVB_MAX (8). */
#define M40_GEMVB_EACH_NB(DEF, type, arg) \
    DEF(type, arg, 2)                     \
    DEF(type, arg, 3)                     \
    DEF(type, arg, 4)                     \
    DEF(type, arg, 5)                     \
    DEF(type, arg, 6)                     \
    DEF(type, arg, 7)                     \
    DEF(type, arg, 8)

#define M40_DEFINE_GEMVB_REPACKED(type, QW, NB)                                                \
    M40_GEMVB_KERNEL(m40_gemvb_##type##r_nb##NB) {                                             \
        (void)row_bytes; /* the repacked layout is addressed as a whole */                     \
        m40_gemvb_repacked<QW, M40_GEMVB_R(NB), NB>(y, w, x, bias, res, rows, cols, ldy, ldx); \
    }

M40_GEMVB_EACH_NB(M40_DEFINE_GEMVB_REPACKED, q4_0, 4)
M40_GEMVB_EACH_NB(M40_DEFINE_GEMVB_REPACKED, q8_0, 8)
