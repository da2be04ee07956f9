/* gemv_batch.cu - mat-vec for a batch of decode rows: Y = X W^T, B rows.
 *
 * y[c][ldy] (first `rows` columns) = W x[c] (+ bias) (+ res[c]) for the NB
 * input rows x[c] (ldx floats apart, 16-byte aligned) of a decode step,
 * one weight matrix read once for all of them. NB is the kernel's batch
 * (`_nb<NB>` in its name, 2..8); the launcher (src/backend/cuda/ops.c)
 * cuts a larger batch into nearly equal pieces of at most M40_GEMVB_PIECE.
 *
 * Batch invariance. The loops are gemv_common.cuh's, the very loops of
 * the single-row kernels (gemv.cu) with NB inputs instead of one: input c's arithmetic (which
 * thread sums which weights, in which order, and how the threads' sums meet) does not depend on NB,
 * on the rows per block or on the other inputs, so a request's logits do not depend on what else
 * runs.
 *
 * Types: repacked Q4_0, Q8_0 and Q6_K (m40_gemvb_<type>r[8|16]_nb<NB>) and Q4_K on its
 * own rows (m40_gemvb_q4_k_nb<NB>, gemv_common.cuh's m40_gemv_q4_k_rows, the
 * loop of gemv.cu's m40_gemv_q4_k_v); every other type but F32 with one
 * kernel for any batch (m40_gemvb_<type>[_v]_n, at the end), the loop of
 * its single-row kernel. F32 rows run one single-row product per input
 * (the same kernel as alone, so the same bits).
 *
 * Cost (why this shape). On Maxwell a batch is bound by instruction issue:
 * each weight must be decoded once and then cost one FFMA per input. Per
 * 8 weights of a row a thread decodes once (PRMT + FFMA per weight, the
 * scale applied there) and spends 8 FFMAs per input; its x loads (two
 * 16-byte loads per input) serve the R rows of the block
 * (scripts/sass-count.py; docs/performance.md has the counts).
 */
#include "gemv_common.cuh"

/* Rows per block of the repacked kernels: two shapes of every batch, the
 * same arithmetic (a row's sums do not depend on the rows beside it), for
 * the launcher to choose by the GPU (ops.c, repacked_rows).
 *
 * 8 rows (m40_gemvb_<type>r8_nb<NB>): each 16-byte load of x serves 8 rows,
 * so 8 inputs take 1.46 sm_52 instructions a weight and input (4 rows:
 * 1.58), in ~220 registers. That is the shape for a GPU bound by
 * instruction issue with many blocks per SM to run, an M40's 24 SMs.
 *
 * 4 rows (m40_gemvb_<type>r_nb<NB>): ~100-130 registers, 4 blocks an SM,
 * for matrices too small to give every SM a few blocks of 8 rows. Since
 * the scale is applied in the decode, 8 rows won on the H100 as well (7B
 * decode of 8 sequences 8% faster; docs/performance.md).
 *
 * 16 rows (m40_gemvb_<type>r16_nb<NB>, 256 threads): two 128-thread groups
 * of 8 rows each over the same columns, thread for thread the 8-row
 * kernel, so that the two groups' loads of x hit the same lines at nearly
 * the same time: one read of x from L2 for 16 rows. At 8 inputs x is
 * most of what a block reads (docs/batching.md, "Timed at last"). Not
 * yet timed; the launcher takes it only when told (--batch-rows-16). */
#define M40_GEMVB_R  4
#define M40_GEMVB_R8 8

/* Rows per block of the Q4_K kernels: 8 up to 4 inputs, 4 above (8 rows
 * of 8 inputs need more than 255 registers). */
#define M40_GEMVB_R_Q4_K(NB) ((NB) <= 4 ? 8 : 4)

/* Every batched kernel's parameters: one list, which the launcher's
 * argument list (ops.c, gemv_piece) matches for every family. */
#define M40_GEMVB_KERNEL(name)                                                               \
    M40_KERNEL void name(float *y, const uint8_t *w, const float *x, const float *bias,      \
                         const float *res, int rows, int cols, long long row_bytes, int ldy, \
                         int ldx, int n)

/* DEF(type, arg, NB) for each batch a launch takes, 2..M40_GEMVB_MAX (8). */
#define M40_GEMVB_EACH_NB(DEF, type, arg) \
    DEF(type, arg, 2)                     \
    DEF(type, arg, 3)                     \
    DEF(type, arg, 4)                     \
    DEF(type, arg, 5)                     \
    DEF(type, arg, 6)                     \
    DEF(type, arg, 7)                     \
    DEF(type, arg, 8)

#define M40_DEFINE_GEMVB_REPACKED(type, QW, NB)                                               \
    M40_GEMVB_KERNEL(m40_gemvb_##type##r_nb##NB) {                                            \
        (void)row_bytes, (void)n; /* the layout is addressed as a whole; n is NB */           \
        m40_gemv_repacked<QW, M40_GEMVB_R, NB>(y, w, x, bias, res, rows, cols, ldy, ldx);     \
    }                                                                                         \
    M40_GEMVB_KERNEL(m40_gemvb_##type##r8_nb##NB) {                                           \
        (void)row_bytes, (void)n;                                                             \
        m40_gemv_repacked<QW, M40_GEMVB_R8, NB>(y, w, x, bias, res, rows, cols, ldy, ldx);    \
    }                                                                                         \
    M40_GEMVB_KERNEL(m40_gemvb_##type##r16_nb##NB) {                                          \
        (void)row_bytes, (void)n; /* 256 threads: two groups of 8 rows */                     \
        m40_gemv_repacked<QW, M40_GEMVB_R8, NB, 2>(y, w, x, bias, res, rows, cols, ldy, ldx); \
    }

M40_GEMVB_EACH_NB(M40_DEFINE_GEMVB_REPACKED, q4_0, 4)
M40_GEMVB_EACH_NB(M40_DEFINE_GEMVB_REPACKED, q8_0, 8)

/* Repacked Q6_K (gemv_common.cuh's m40_gemv_q6_kr), the same three shapes:
 * m40_gemvb_q6_kr{,8,16}_nb<NB>. */
#define M40_DEFINE_GEMVB_Q6_KR(type, unused, NB)                                       \
    M40_GEMVB_KERNEL(m40_gemvb_q6_kr_nb##NB) {                                         \
        (void)row_bytes, (void)n;                                                      \
        m40_gemv_q6_kr<M40_GEMVB_R, NB>(y, w, x, bias, res, rows, cols, ldy, ldx);     \
    }                                                                                  \
    M40_GEMVB_KERNEL(m40_gemvb_q6_kr8_nb##NB) {                                        \
        (void)row_bytes, (void)n;                                                      \
        m40_gemv_q6_kr<M40_GEMVB_R8, NB>(y, w, x, bias, res, rows, cols, ldy, ldx);    \
    }                                                                                  \
    M40_GEMVB_KERNEL(m40_gemvb_q6_kr16_nb##NB) {                                       \
        (void)row_bytes, (void)n;                                                      \
        m40_gemv_q6_kr<M40_GEMVB_R8, NB, 2>(y, w, x, bias, res, rows, cols, ldy, ldx); \
    }

M40_GEMVB_EACH_NB(M40_DEFINE_GEMVB_Q6_KR, q6_k, 0)

/* Q4_K on GGML's rows (16-byte aligned): m40_gemvb_q4_k_nb<NB>. */
#define M40_DEFINE_GEMVB_Q4_K(type, unused, NB)                                                 \
    M40_GEMVB_KERNEL(m40_gemvb_q4_k_nb##NB) {                                                   \
        (void)n; /* NB */                                                                       \
        m40_gemv_q4_k_rows<M40_GEMVB_R_Q4_K(NB), NB>(y, w, x, bias, res, rows, cols, row_bytes, \
                                                     ldy, ldx);                                 \
    }

M40_GEMVB_EACH_NB(M40_DEFINE_GEMVB_Q4_K, q4_k, 0)

/* ---- every other type: one kernel for batches of 2..8 ------------------------
 * m40_gemvb_<type>_v_n for the types with wide-load single-row kernels
 * (Q5_K, Q4_1, Q5_0, Q5_1, Q6_K not repacked, F16, BF16; their rows are always aligned
 * for them) and m40_gemvb_<type>_n for those without (gemv.cu's generic
 * family: Q2_K, Q3_K, the IQ types, and Q4_0/Q8_0 matrices that were not
 * repacked); F32 rows run alone. n inputs given at launch: gemv_common.cuh's m40_gemv_rows_batch
 * and m40_gemv_half_batch, the loops of those single-row kernels. Two rows a block for the group
 * ops (a row's 32 decoded values stay in registers while each input takes its share), four for
 * F16/BF16 (8 values a row). */
#define M40_GEMVB_R_GROUP 2
#define M40_GEMVB_R_HALF  4

#define M40_DEFINE_GEMVB_GROUP(name, OPS)                              \
    M40_GEMVB_KERNEL(name) {                                           \
        m40_gemv_rows_batch<OPS, M40_GEMVB_R_GROUP, M40_GEMVB_MAX_NB>( \
            y, w, x, bias, res, rows, cols, row_bytes, ldy, ldx, n);   \
    }
#define M40_GEMVB_MAX_NB 8 /* ops.h's M40_GEMVB_MAX */

#define M40_DEFINE_GEMVB_GENERIC(type) M40_DEFINE_GEMVB_GROUP(m40_gemvb_##type##_n, m40_grp_##type)
#define M40_DEFINE_GEMVB_V(type)       M40_DEFINE_GEMVB_GROUP(m40_gemvb_##type##_v_n, m40_grp_##type##_v)

M40_DEFINE_GEMVB_GENERIC(q4_0)
M40_DEFINE_GEMVB_GENERIC(q8_0)
M40_DEFINE_GEMVB_GENERIC(q2_k)
M40_DEFINE_GEMVB_GENERIC(q3_k)
M40_DEFINE_GEMVB_GENERIC(iq4_nl)
M40_DEFINE_GEMVB_GENERIC(iq4_xs)
M40_DEFINE_GEMVB_GENERIC(iq2_xxs)
M40_DEFINE_GEMVB_GENERIC(iq2_xs)
M40_DEFINE_GEMVB_GENERIC(iq2_s)
M40_DEFINE_GEMVB_GENERIC(iq3_xxs)
M40_DEFINE_GEMVB_GENERIC(iq3_s)

M40_DEFINE_GEMVB_V(q5_k)
M40_DEFINE_GEMVB_V(q4_1)
M40_DEFINE_GEMVB_V(q5_0)
M40_DEFINE_GEMVB_V(q5_1)
M40_DEFINE_GEMVB_V(q6_k)

M40_GEMVB_KERNEL(m40_gemvb_f16_v_n) {
    m40_gemv_half_batch<M40_GEMVB_R_HALF, M40_GEMVB_MAX_NB, false>(y, w, x, bias, res, rows, cols,
                                                                   row_bytes, ldy, ldx, n);
}
M40_GEMVB_KERNEL(m40_gemvb_bf16_v_n) {
    m40_gemv_half_batch<M40_GEMVB_R_HALF, M40_GEMVB_MAX_NB, true>(y, w, x, bias, res, rows, cols,
                                                                  row_bytes, ldy, ldx, n);
}
