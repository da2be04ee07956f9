/* dequant.cu - weight rows decoded to FP32: embedding lookup and the
 * dequantize-then-SGEMM prefill path.
 *
 * dst[i][cols] = row r_i of W as FP32, where r_i = ids[i] when ids is not
 * NULL (embedding: one row per token), else r0 + i (a chunk of a weight
 * matrix for prefill). One thread decodes one 32-element group.
 * Launch: 1-D, n_rows * cols / 32 threads in all (any block size).
 * One kernel per weight type: m40_dequant_rows_<type>.
 */
#include "common.cuh"
#include "quant_decode.cuh"

#define M40_DEFINE_DEQUANT_ROWS(type)                                                          \
    M40_KERNEL void m40_dequant_rows_##type(float *dst, const uint8_t *w, long long row_bytes, \
                                            int cols, const int *ids, int r0, int n_rows) {    \
        long long groups_per_row = cols / 32;                                                  \
        long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;                      \
        if (idx >= groups_per_row * n_rows)                                                    \
            return;                                                                            \
        int i = (int)(idx / groups_per_row);                                                   \
        long long g = idx % groups_per_row;                                                    \
        long long r = ids ? ids[i] : r0 + i;                                                   \
        float v[32];                                                                           \
        decode32_##type(w + r * row_bytes, g, v);                                              \
        float *out = dst + (long long)i * cols + g * 32;                                       \
        for (int k = 0; k < 32; k++)                                                           \
            out[k] = v[k];                                                                     \
    }

M40_DEFINE_DEQUANT_ROWS(f32)
M40_DEFINE_DEQUANT_ROWS(f16)
M40_DEFINE_DEQUANT_ROWS(bf16)
M40_DEFINE_DEQUANT_ROWS(q4_0)
M40_DEFINE_DEQUANT_ROWS(q4_1)
M40_DEFINE_DEQUANT_ROWS(q5_0)
M40_DEFINE_DEQUANT_ROWS(q5_1)
M40_DEFINE_DEQUANT_ROWS(q8_0)
M40_DEFINE_DEQUANT_ROWS(q4_k)
M40_DEFINE_DEQUANT_ROWS(q5_k)
M40_DEFINE_DEQUANT_ROWS(q6_k)
M40_DEFINE_DEQUANT_ROWS(q2_k)
M40_DEFINE_DEQUANT_ROWS(q3_k)
M40_DEFINE_DEQUANT_ROWS(iq4_nl)
M40_DEFINE_DEQUANT_ROWS(iq4_xs)
M40_DEFINE_DEQUANT_ROWS(iq2_xxs)
M40_DEFINE_DEQUANT_ROWS(iq2_xs)
M40_DEFINE_DEQUANT_ROWS(iq2_s)
M40_DEFINE_DEQUANT_ROWS(iq3_xxs)
M40_DEFINE_DEQUANT_ROWS(iq3_s)

/* Repacked Q4_0 / Q8_0 / Q6_K (repack.cu): the same job over the interleaved
 * layout; `rows` is the matrix's total row count (it locates the scales). */
#define M40_DEFINE_DEQUANT_ROWS_REPACKED(type)                                                   \
    M40_KERNEL void m40_dequant_rows_##type##r(float *dst, const uint8_t *w, int rows, int cols, \
                                               const int *ids, int r0, int n_rows) {             \
        int nb = cols / 32;                                                                      \
        long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;                        \
        if (idx >= (long long)nb * n_rows)                                                       \
            return;                                                                              \
        int i = (int)(idx / nb), g = (int)(idx % nb);                                            \
        long long r = ids ? ids[i] : r0 + i;                                                     \
        float v[32];                                                                             \
        decode32_##type##r(w, rows, nb, (unsigned)r, g, v);                                      \
        float *out = dst + (long long)i * cols + g * 32;                                         \
        for (int k = 0; k < 32; k++)                                                             \
            out[k] = v[k];                                                                       \
    }

M40_DEFINE_DEQUANT_ROWS_REPACKED(q4_0)
M40_DEFINE_DEQUANT_ROWS_REPACKED(q8_0)
M40_DEFINE_DEQUANT_ROWS_REPACKED(q6_k)
