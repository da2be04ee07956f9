/* gemv.cu - matrix-vector product for decode: y = W x (+ bias).
 *
 * W is a weight matrix in its GGUF type, rows of `cols` elements, each row
 * `row_bytes` long; x[cols] (16-byte aligned) and y[rows] are FP32. Weights
 * are decoded in registers (quant_decode.cuh) and accumulated in FP32; a
 * block's threads sum their partials through warp shuffles and shared
 * memory. Three families, fastest first: repacked Q4_0/Q8_0, 16-byte loads
 * for F16/BF16/F32, and the generic kernel m40_gemv_<type> for every type.
 * The launcher (src/backend/cuda/ops.c) picks one and sizes the grid.
 */
#include "common.cuh"
#include "quant_decode.cuh"

#define M40_GEMV_WARPS 4
#define M40_GEMV_RPW   4 /* rows per block in the 16-byte and repacked kernels */

/* Block-wide reduction of M40_GEMV_RPW partial sums per thread into y. */

static __device__ __forceinline__ void m40_gemv_store(float *acc, int rpb, float *y,
                                                      const float *bias, int row0, int rows) {
    __shared__ float red[M40_GEMV_RPW][M40_GEMV_WARPS];
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
        y[row0 + r] = s + (bias ? bias[row0 + r] : 0.0f);
    }
}

/* Generic kernel, any type decode32_<type> reads: a 128-thread block
 * computes M40_GEMV_RPW rows; thread t takes 32-element groups t, t+128, ...
 * of each row and loads the group's 32 x values once for all the rows. */
#define M40_DEFINE_GEMV(type)                                                                      \
    M40_KERNEL void m40_gemv_##type(float *y, const uint8_t *w, const float *x, const float *bias, \
                                    int rows, int cols, long long row_bytes) {                     \
        int row0 = blockIdx.x * M40_GEMV_RPW;                                                      \
        float acc[M40_GEMV_RPW] = {0.0f}, v[32], xv[32];                                           \
        for (int g = threadIdx.x; g < cols / 32; g += blockDim.x) {                                \
            for (int i = 0; i < 32; i++)                                                           \
                xv[i] = __ldg(x + g * 32 + i);                                                     \
            for (int r = 0; r < M40_GEMV_RPW; r++) {                                               \
                if (row0 + r < rows) {                                                             \
                    decode32_##type(w + (long long)(row0 + r) * row_bytes, g, v);                  \
                    float part = 0.0f;                                                             \
                    for (int i = 0; i < 32; i++)                                                   \
                        part += v[i] * xv[i];                                                      \
                    acc[r] += part;                                                                \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        m40_gemv_store(acc, M40_GEMV_RPW, y, bias, row0, rows);                                    \
    }

M40_DEFINE_GEMV(f32)
M40_DEFINE_GEMV(f16)
M40_DEFINE_GEMV(bf16)
M40_DEFINE_GEMV(q4_0)
M40_DEFINE_GEMV(q4_1)
M40_DEFINE_GEMV(q5_0)
M40_DEFINE_GEMV(q5_1)
M40_DEFINE_GEMV(q8_0)
M40_DEFINE_GEMV(q4_k)
M40_DEFINE_GEMV(q5_k)
M40_DEFINE_GEMV(q6_k)

/* ---- 16-byte loads: plain types with 16-byte aligned rows ----------------
 * Lane l reads bytes [16 (l + 32k), +16) of the row: each warp-wide load is
 * 512 contiguous bytes. x is read as float4 (it is 16-byte aligned). */

static __device__ __forceinline__ float m40_h_lo(uint32_t u) {
    return __half2float(__ushort_as_half((unsigned short)(u & 0xFFFF)));
}
static __device__ __forceinline__ float m40_h_hi(uint32_t u) {
    return __half2float(__ushort_as_half((unsigned short)(u >> 16)));
}

static __device__ __forceinline__ float m40_dot8(float w0, float w1, float w2, float w3, float w4,
                                                 float w5, float w6, float w7, float4 a, float4 b) {
    return w0 * a.x + w1 * a.y + w2 * a.z + w3 * a.w + w4 * b.x + w5 * b.y + w6 * b.z + w7 * b.w;
}

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

/* Each 128-thread block computes M40_GEMV_VEC_RPB rows; its threads take the
 * rows' 16-byte chunks in turn (chunk i by thread i mod 128), so every load
 * of the block is contiguous. One row per block measured faster on the H100
 * than four (more blocks in flight beat the saved x reads: x is only twice
 * the weights' traffic here). Launch: blockDim 128, gridDim
 * ceil(rows / M40_GEMV_VEC_RPB). */
#define M40_GEMV_VEC_RPB 1
#define M40_DEFINE_GEMV_VEC16(name, unpack)                                                       \
    M40_KERNEL void name(float *y, const uint8_t *w, const float *x, const float *bias, int rows, \
                         int cols, long long row_bytes) {                                         \
        int row0 = blockIdx.x * M40_GEMV_VEC_RPB;                                                 \
        const float4 *x4 = (const float4 *)x;                                                     \
        float acc[M40_GEMV_RPW] = {0.0f}, wv[8];                                                  \
        for (int i = threadIdx.x; i < cols / 8; i += blockDim.x) {                                \
            float4 a = __ldg(x4 + 2 * i), b = __ldg(x4 + 2 * i + 1);                              \
            for (int r = 0; r < M40_GEMV_VEC_RPB; r++) {                                          \
                if (row0 + r < rows) {                                                            \
                    const uint4 *wr = (const uint4 *)(w + (long long)(row0 + r) * row_bytes);     \
                    unpack(__ldg(wr + i), wv);                                                    \
                    acc[r] +=                                                                     \
                        m40_dot8(wv[0], wv[1], wv[2], wv[3], wv[4], wv[5], wv[6], wv[7], a, b);   \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
        m40_gemv_store(acc, M40_GEMV_VEC_RPB, y, bias, row0, rows);                               \
    }

M40_DEFINE_GEMV_VEC16(m40_gemv_f16_v, m40_unpack8_f16)
M40_DEFINE_GEMV_VEC16(m40_gemv_bf16_v, m40_unpack8_bf16)

/* F32: 4 weights per 16-byte load, one row per warp. */
M40_KERNEL void m40_gemv_f32_v(float *y, const uint8_t *w, const float *x, const float *bias,
                               int rows, int cols, long long row_bytes) {
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
        y[row] = acc + (bias ? bias[row] : 0.0f);
}

/* ---- repacked Q4_0 / Q8_0 (repack.cu) ------------------------------------
 * As the 16-byte kernels above: a 128-thread block computes M40_GEMV_RPW
 * rows, thread t takes 32-element blocks t, t+128, ... of each row, loads
 * the 32 x values of a block once for all the rows (x traffic would
 * otherwise exceed the weights': 128 bytes of x per 16 bytes of Q4_0), and
 * multiplies each block's partial sum by its scale once. Each block's quants
 * are one (Q4_0) or two (Q8_0) 16-byte loads. Launch: blockDim 128,
 * gridDim ceil(rows / M40_GEMV_RPW). */

#define M40_DEFINE_GEMV_REPACKED(type)                                                          \
    M40_KERNEL void m40_gemv_##type##r(float *y, const uint8_t *w, const float *x,              \
                                       const float *bias, int rows, int cols) {                 \
        int row0 = blockIdx.x * M40_GEMV_RPW;                                                   \
        int nb = cols / 32;                                                                     \
        long long n_blocks = (long long)rows * nb;                                              \
        float acc[M40_GEMV_RPW] = {0.0f}, v[32], xv[32];                                        \
        for (int b = threadIdx.x; b < nb; b += blockDim.x) {                                    \
            const float4 *x4 = (const float4 *)(x + b * 32);                                    \
            for (int k = 0; k < 8; k++) {                                                       \
                float4 a = __ldg(x4 + k);                                                       \
                xv[4 * k] = a.x, xv[4 * k + 1] = a.y, xv[4 * k + 2] = a.z, xv[4 * k + 3] = a.w; \
            }                                                                                   \
            for (int r = 0; r < M40_GEMV_RPW; r++) {                                            \
                if (row0 + r < rows) {                                                          \
                    float d =                                                                   \
                        decode32_##type##r_raw(w, n_blocks, (long long)(row0 + r) * nb + b, v); \
                    float part = 0.0f;                                                          \
                    for (int i = 0; i < 32; i++)                                                \
                        part += v[i] * xv[i];                                                   \
                    acc[r] += d * part;                                                         \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
        m40_gemv_store(acc, M40_GEMV_RPW, y, bias, row0, rows);                                 \
    }

M40_DEFINE_GEMV_REPACKED(q4_0)
M40_DEFINE_GEMV_REPACKED(q8_0)
