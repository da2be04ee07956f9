/* gemv.cu - matrix-vector product for decode: y = W x (+ bias).
 *
 * W is a weight matrix in its GGUF type, rows of `cols` elements, each row
 * `row_bytes` long; x[cols] and y[rows] are FP32. One warp computes one row:
 * its lanes take the row's 32-element groups in turn, decode each group in
 * registers (quant_decode.cuh) and accumulate in FP32, then the warp sums
 * across lanes. Launch: blockDim 128 (4 warps), gridDim ceil(rows / 4).
 * One kernel per weight type: m40_gemv_<type>.
 */
#include "common.cuh"
#include "quant_decode.cuh"

#define M40_GEMV_WARPS 4

#define M40_DEFINE_GEMV(type)                                                                      \
    M40_KERNEL void m40_gemv_##type(float *y, const uint8_t *w, const float *x, const float *bias, \
                                    int rows, int cols, long long row_bytes) {                     \
        int row = blockIdx.x * M40_GEMV_WARPS + (threadIdx.x >> 5);                                \
        int lane = threadIdx.x & 31;                                                               \
        if (row >= rows)                                                                           \
            return;                                                                                \
        const uint8_t *wr = w + (long long)row * row_bytes;                                        \
        float acc = 0.0f, v[32];                                                                   \
        for (int g = lane; g < cols / 32; g += 32) {                                               \
            decode32_##type(wr, g, v);                                                             \
            const float *xg = x + g * 32;                                                          \
            for (int i = 0; i < 32; i++)                                                           \
                acc += v[i] * __ldg(xg + i);                                                       \
        }                                                                                          \
        acc = m40_warp_sum(acc);                                                                   \
        if (lane == 0)                                                                             \
            y[row] = acc + (bias ? bias[row] : 0.0f);                                              \
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
