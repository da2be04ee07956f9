/* gemv.cu - matrix-vector product for decode: y = W x (+ bias) (+ res).
 *
 * W is a weight matrix in its GGUF type, rows of `cols` elements, each row
 * `row_bytes` long; x[cols] (16-byte aligned) and y[rows] are FP32. bias
 * and res (the residual stream, which may alias y) are optional. Weights
 * are decoded in registers (quant_decode.cuh) and accumulated in FP32; a
 * block's threads sum their partials through warp shuffles and shared
 * memory. Three families, fastest first: repacked Q4_0/Q8_0/Q6_K, 16-byte loads
 * for F16/BF16/F32, and the generic kernel m40_gemv_<type> for every type.
 * The launcher (src/backend/cuda/ops.c) picks one and sizes the grid.
 *
 * Every kernel but F32's computes RPB rows per 128-thread block, with RPB
 * (rows per block) in the kernel's name (`_rpb4`): x is the larger half of
 * the traffic for 4-bit weights (128 bytes of x per 18-byte Q4_0 block)
 * unless it is loaded once per thread and reused across the block's rows,
 * and more rows per block also put more independent loads in flight. The
 * row index is clamped instead of tested, so the loop over a block's rows
 * unrolls and its loads issue back to back; only real rows are stored.
 */
#include "common.cuh"
#include "gemv_common.cuh"
#include "quant_decode.cuh"

#define M40_GEMV_WARPS   4 /* 128-thread blocks */
#define M40_GEMV_MAX_RPB 8

/* Block-wide reduction of rpb partial sums per thread into y[row0 ..]. */
static __device__ __forceinline__ void m40_gemv_store(float *acc, int rpb, float *y,
                                                      const float *bias, const float *res, int row0,
                                                      int rows) {
    __shared__ float red[M40_GEMV_MAX_RPB][M40_GEMV_WARPS];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int r = 0; r < rpb; r++) {
        float s = m40_warp_sum(acc[r]);
        if (lane == 0)
            red[r][warp] = s;
    }
    __syncthreads();
    int r = threadIdx.x;
    if (r < rpb && row0 + r < rows) {
        float s = 0.0f;
        for (int k = 0; k < M40_GEMV_WARPS; k++)
            s += red[r][k];
        if (bias)
            s += bias[row0 + r];
        if (res)
            s += res[row0 + r];
        y[row0 + r] = s;
    }
}

/* One mat-vec loop for every row-addressed type: thread t takes 32-element
 * groups t, t+128, ... of each of the block's RPB rows, with the group's 32
 * x values (and their sum) loaded once for all of them; OPS (a type's group
 * ops, gemv_common.cuh) decodes group g of a row and takes its share of the
 * dot product. gemv_common.cuh's m40_gemv_rows_batch is this loop for a
 * batch. Kernel name: <name>_rpb<RPB>. */
#define M40_DEFINE_GEMV(name, OPS, RPB)                                                            \
    M40_KERNEL void name##_rpb##RPB(float *y, const uint8_t *w, const float *x, const float *bias, \
                                    const float *res, int rows, int cols, long long row_bytes) {   \
        int row0 = blockIdx.x * RPB;                                                               \
        float acc[RPB], v[32], xv[32], k[2];                                                       \
        for (int r = 0; r < RPB; r++)                                                              \
            acc[r] = 0.0f;                                                                         \
        for (int g = threadIdx.x; g < cols / 32; g += blockDim.x) {                                \
            m40_load_x32(x, g, xv);                                                                \
            float sx = m40_sum32(xv); /* unused (and not computed) by most types */                \
            _Pragma("unroll") for (int r = 0; r < RPB; r++) {                                      \
                int row = min(row0 + r, rows - 1);                                                 \
                OPS::decode(w + (long long)row * row_bytes, g, v, k);                              \
                acc[r] += OPS::share(k, v, xv, sx);                                                \
            }                                                                                      \
        }                                                                                          \
        m40_gemv_store(acc, RPB, y, bias, res, row0, rows);                                        \
    }

/* Generic ops, any type decode32_<type> reads (byte loads, scaled values):
 * kernels m40_gemv_<type>_rpb{4,8}. */
#define M40_DEFINE_GEMV_GENERIC(type)                   \
    M40_DEFINE_GEMV(m40_gemv_##type, m40_grp_##type, 4) \
    M40_DEFINE_GEMV(m40_gemv_##type, m40_grp_##type, 8)

M40_DEFINE_GEMV_GENERIC(f32)
M40_DEFINE_GEMV_GENERIC(f16)
M40_DEFINE_GEMV_GENERIC(bf16)
M40_DEFINE_GEMV_GENERIC(q4_0)
M40_DEFINE_GEMV_GENERIC(q4_1)
M40_DEFINE_GEMV_GENERIC(q5_0)
M40_DEFINE_GEMV_GENERIC(q5_1)
M40_DEFINE_GEMV_GENERIC(q8_0)
M40_DEFINE_GEMV_GENERIC(q4_k)
M40_DEFINE_GEMV_GENERIC(q5_k)
M40_DEFINE_GEMV_GENERIC(q6_k)
M40_DEFINE_GEMV_GENERIC(q2_k)
M40_DEFINE_GEMV_GENERIC(q3_k)
M40_DEFINE_GEMV_GENERIC(iq4_nl)
M40_DEFINE_GEMV_GENERIC(iq4_xs)
M40_DEFINE_GEMV_GENERIC(iq2_xxs)
M40_DEFINE_GEMV_GENERIC(iq2_xs)
M40_DEFINE_GEMV_GENERIC(iq2_s)
M40_DEFINE_GEMV_GENERIC(iq3_xxs)
M40_DEFINE_GEMV_GENERIC(iq3_s)

/* Q5_K with 16-byte loads (16-byte aligned rows; Q4_K: below), Q4_1, Q5_1
 * (4-byte) and Q5_0 (2-byte loads): a sub-block's 32 values come from wide
 * loads and PRMT (m40_<type>_group, quant_decode.cuh), and its scale and min
 * apply once: d*sc * (x . q) - dmin*m * sum(x). Q6_K with 2-byte loads and
 * PRMT (no byte loads, no I2F); a sub-block has two scales, one per 16
 * elements, applied to the two halves' dot products. Kernels
 * m40_gemv_<type>_v_rpb{4,8}. */
#define M40_DEFINE_GEMV_V(type)                                 \
    M40_DEFINE_GEMV(m40_gemv_##type##_v, m40_grp_##type##_v, 4) \
    M40_DEFINE_GEMV(m40_gemv_##type##_v, m40_grp_##type##_v, 8)

M40_DEFINE_GEMV_V(q5_k)
M40_DEFINE_GEMV_V(q4_1)
M40_DEFINE_GEMV_V(q5_0)
M40_DEFINE_GEMV_V(q5_1)
M40_DEFINE_GEMV_V(q6_k)

/* ---- 16-byte loads: plain types with 16-byte aligned rows ----------------
 * Thread i of the block reads 16-byte chunks i, i+128, ... of each row:
 * every warp-wide load is 512 contiguous bytes. x is read as float4. */

#define M40_DEFINE_GEMV_VEC16(type, unpack, RPB)                                                \
    M40_KERNEL void m40_gemv_##type##_v_rpb##RPB(float *y, const uint8_t *w, const float *x,    \
                                                 const float *bias, const float *res, int rows, \
                                                 int cols, long long row_bytes) {               \
        int row0 = blockIdx.x * RPB;                                                            \
        const float4 *x4 = (const float4 *)x;                                                   \
        float acc[RPB], wv[8];                                                                  \
        for (int r = 0; r < RPB; r++)                                                           \
            acc[r] = 0.0f;                                                                      \
        for (int i = threadIdx.x; i < cols / 8; i += blockDim.x) {                              \
            float4 a = __ldg(x4 + 2 * i), b = __ldg(x4 + 2 * i + 1);                            \
            uint4 p[RPB];                                                                       \
            _Pragma("unroll") for (int r = 0; r < RPB; r++) {                                   \
                int row = min(row0 + r, rows - 1);                                              \
                p[r] = __ldg((const uint4 *)(w + (long long)row * row_bytes) + i);              \
            }                                                                                   \
            _Pragma("unroll") for (int r = 0; r < RPB; r++) {                                   \
                unpack(p[r], wv);                                                               \
                acc[r] += m40_dot8(wv, a, b);                                                   \
            }                                                                                   \
        }                                                                                       \
        m40_gemv_store(acc, RPB, y, bias, res, row0, rows);                                     \
    }

M40_DEFINE_GEMV_VEC16(f16, m40_unpack8_f16, 1)
M40_DEFINE_GEMV_VEC16(f16, m40_unpack8_f16, 2)
M40_DEFINE_GEMV_VEC16(f16, m40_unpack8_f16, 4)
M40_DEFINE_GEMV_VEC16(bf16, m40_unpack8_bf16, 1)
M40_DEFINE_GEMV_VEC16(bf16, m40_unpack8_bf16, 2)
M40_DEFINE_GEMV_VEC16(bf16, m40_unpack8_bf16, 4)

/* F32: 4 weights per 16-byte load, one row per warp (4 rows per block). */
M40_KERNEL void m40_gemv_f32_v(float *y, const uint8_t *w, const float *x, const float *bias,
                               const float *res, int rows, int cols, long long row_bytes) {
    int row = blockIdx.x * M40_GEMV_WARPS + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= rows)
        return;
    const float4 *wr = (const float4 *)(w + (long long)row * row_bytes);
    const float4 *x4 = (const float4 *)x;
    float acc = 0.0f;
    for (int i = lane; i < cols / 4; i += 32) {
        float4 p = __ldg(wr + i), a = __ldg(x4 + i);
        acc += p.x * a.x + p.y * a.y + p.z * a.z + p.w * a.w;
    }
    acc = m40_warp_sum(acc);
    if (lane == 0)
        y[row] = acc + (bias ? bias[row] : 0.0f) + (res ? res[row] : 0.0f);
}

/* ---- repacked Q4_0 / Q8_0 (repack.cu) ------------------------------------
 * gemv_common.cuh's m40_gemv_repacked with one input: the batched kernels
 * (gemv_batch.cu) run the same loop, so a row alone and a row in a batch
 * give the same bits. Kernels m40_gemv_<type>r_rpb{4,8}. */

#define M40_DEFINE_GEMV_REPACKED(type, QW, RPB)                                                \
    M40_KERNEL void m40_gemv_##type##r_rpb##RPB(float *y, const uint8_t *w, const float *x,    \
                                                const float *bias, const float *res, int rows, \
                                                int cols, long long row_bytes) {               \
        (void)row_bytes; /* the repacked layout is addressed as a whole */                     \
        m40_gemv_repacked<QW, RPB, 1>(y, w, x, bias, res, rows, cols, 0, 0);                   \
    }

M40_DEFINE_GEMV_REPACKED(q4_0, 4, 4)
M40_DEFINE_GEMV_REPACKED(q4_0, 4, 8)
M40_DEFINE_GEMV_REPACKED(q8_0, 8, 4)
M40_DEFINE_GEMV_REPACKED(q8_0, 8, 8)

/* ---- repacked Q6_K (repack.cu) --------------------------------------------
 * gemv_common.cuh's m40_gemv_q6_kr with one input, for the same reason.
 * Kernels m40_gemv_q6_kr_rpb{4,8}. */
#define M40_DEFINE_GEMV_Q6_KR(RPB)                                                         \
    M40_KERNEL void m40_gemv_q6_kr_rpb##RPB(float *y, const uint8_t *w, const float *x,    \
                                            const float *bias, const float *res, int rows, \
                                            int cols, long long row_bytes) {               \
        (void)row_bytes; /* the repacked layout is addressed as a whole */                 \
        m40_gemv_q6_kr<RPB, 1>(y, w, x, bias, res, rows, cols, 0, 0);                      \
    }

M40_DEFINE_GEMV_Q6_KR(4)
M40_DEFINE_GEMV_Q6_KR(8)

/* ---- Q4_K, 16-byte aligned rows --------------------------------------------
 * gemv_common.cuh's m40_gemv_q4_k_rows with one input, for the same reason:
 * the batched Q4_K kernels run the same loop. Kernels m40_gemv_q4_k_v_rpb{4,8}. */
#define M40_DEFINE_GEMV_Q4_K(RPB)                                                           \
    M40_KERNEL void m40_gemv_q4_k_v_rpb##RPB(float *y, const uint8_t *w, const float *x,    \
                                             const float *bias, const float *res, int rows, \
                                             int cols, long long row_bytes) {               \
        m40_gemv_q4_k_rows<RPB, 1>(y, w, x, bias, res, rows, cols, row_bytes, 0, 0);        \
    }

M40_DEFINE_GEMV_Q4_K(4)
M40_DEFINE_GEMV_Q4_K(8)
