/* dequant.cu - weight rows decoded to FP32: embedding lookup and the
 * dequantize-then-SGEMM prefill path.
 *
 * dst[i][cols] = row r_i of W as FP32, where r_i = ids[i] when ids is not
 * NULL (embedding: one row per token), else r0 + i (a chunk of a weight
 * matrix for prefill). One thread decodes one 32-element group; group idx
 * (row i, group g of it) lands at dst + 32 idx, so a block's groups fill
 * one contiguous run of dst, which it writes through shared memory
 * (m40_dequant_out).
 * Launch: 1-D, n_rows * cols / 32 threads in all, M40_DEQUANT_THREADS a
 * block (ops.c). One kernel per weight type: m40_dequant_rows_<type>.
 */
#include "common.cuh"
#include "quant_decode.cuh"

#define M40_DEQUANT_THREADS 128

/* The block's decoded groups (v: this thread's, valid when `have`) to dst,
 * whose group `first` is the block's first; n_groups: all the launch's.
 * Written straight from registers, a warp's store would put 4 bytes into
 * each of 32 lines 128 bytes apart; staged in shared memory (a row of 33
 * floats a thread: no bank conflicts either way) each store of a warp
 * writes 128 contiguous bytes. The prompt path's dequantize of a 7B (26 GB
 * of FP32) ran at about 210 GB/s on an H100 the scattered way. */
static __device__ __forceinline__ void
m40_dequant_out(float *dst, long long first, long long n_groups, const float *v, bool have) {
    __shared__ float buf[M40_DEQUANT_THREADS * 33];
    const int t = threadIdx.x;
    if (have) {
#pragma unroll
        for (int k = 0; k < 32; k++)
            buf[t * 33 + k] = v[k];
    }
    __syncthreads();
    const long long left = n_groups - first;
    const int n = 32 * (int)(left < M40_DEQUANT_THREADS ? left : M40_DEQUANT_THREADS);
    float *out = dst + first * 32;
    for (int e = t; e < n; e += M40_DEQUANT_THREADS)
        out[e] = buf[(e >> 5) * 33 + (e & 31)];
}

#define M40_DEFINE_DEQUANT_ROWS(type)                                                          \
    M40_KERNEL void m40_dequant_rows_##type(float *dst, const uint8_t *w, long long row_bytes, \
                                            int cols, const int *ids, int r0, int n_rows) {    \
        const long long groups_per_row = cols / 32, n_groups = groups_per_row * n_rows;        \
        const long long first = (long long)blockIdx.x * M40_DEQUANT_THREADS;                   \
        const long long idx = first + threadIdx.x;                                             \
        float v[32];                                                                           \
        if (idx < n_groups) {                                                                  \
            const int i = (int)(idx / groups_per_row);                                         \
            const long long r = ids ? ids[i] : r0 + i;                                         \
            decode32_##type(w + r * row_bytes, idx % groups_per_row, v);                       \
        }                                                                                      \
        m40_dequant_out(dst, first, n_groups, v, idx < n_groups);                              \
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
        const int nb = cols / 32;                                                                \
        const long long n_groups = (long long)nb * n_rows;                                       \
        const long long first = (long long)blockIdx.x * M40_DEQUANT_THREADS;                     \
        const long long idx = first + threadIdx.x;                                               \
        float v[32];                                                                             \
        if (idx < n_groups) {                                                                    \
            const int i = (int)(idx / nb), g = (int)(idx % nb);                                  \
            const long long r = ids ? ids[i] : r0 + i;                                           \
            decode32_##type##r(w, rows, nb, (unsigned)r, g, v);                                  \
        }                                                                                        \
        m40_dequant_out(dst, first, n_groups, v, idx < n_groups);                                \
    }

M40_DEFINE_DEQUANT_ROWS_REPACKED(q4_0)
M40_DEFINE_DEQUANT_ROWS_REPACKED(q8_0)
M40_DEFINE_DEQUANT_ROWS_REPACKED(q6_k)
