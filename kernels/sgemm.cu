/* sgemm.cu - FP32 matrix product for prefill when cuBLAS is off
 * (M40LLM_ENABLE_CUBLAS=0 or no cuBLAS on the machine).
 *
 * C[m][n] (+)= A[m][k] * B[n][k]^T, all row-major, C rows ldc apart:
 * A holds the activations (one row per token), B a dequantized chunk of
 * weight rows, so C[t][r] = dot(A[t], B[r]) as the CPU's matmul computes.
 * Each 256-thread block computes a 64 x 64 tile of C; each thread a 4 x 4
 * patch, stepping through k in slices of 16 staged in shared memory.
 * Launch: grid (ceil(n / 64), ceil(m / 64)), block 256.
 */
#include "common.cuh"

#define M40_TILE 64
#define M40_TK   16

M40_KERNEL void m40_sgemm_nt(float *c, const float *a, const float *b, int m, int n, int k, int ldc,
                             int accumulate) {
    /* Stored k-major (+1 padding) so the inner loop reads rows of 64. */
    __shared__ float as[M40_TK][M40_TILE + 1];
    __shared__ float bs[M40_TK][M40_TILE + 1];
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const int row0 = blockIdx.y * M40_TILE, col0 = blockIdx.x * M40_TILE;
    float acc[4][4] = {{0}};

    for (int k0 = 0; k0 < k; k0 += M40_TK) {
        /* 256 threads load 64 x 16 of A and of B: 4 elements each. */
        for (int i = threadIdx.x; i < M40_TILE * M40_TK; i += 256) {
            int r = i / M40_TK, kk = i % M40_TK;
            int ar = row0 + r, bc = col0 + r, kg = k0 + kk;
            as[kk][r] = (ar < m && kg < k) ? a[(long long)ar * k + kg] : 0.0f;
            bs[kk][r] = (bc < n && kg < k) ? b[(long long)bc * k + kg] : 0.0f;
        }
        __syncthreads();
        for (int kk = 0; kk < M40_TK; kk++) {
            float av[4], bv[4];
            for (int i = 0; i < 4; i++) {
                av[i] = as[kk][ty * 4 + i];
                bv[i] = bs[kk][tx * 4 + i];
            }
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    acc[i][j] += av[i] * bv[j];
        }
        __syncthreads();
    }
    for (int i = 0; i < 4; i++) {
        int r = row0 + ty * 4 + i;
        if (r >= m)
            continue;
        for (int j = 0; j < 4; j++) {
            int col = col0 + tx * 4 + j;
            if (col < n) {
                float *dst = c + (long long)r * ldc + col;
                *dst = accumulate ? *dst + acc[i][j] : acc[i][j];
            }
        }
    }
}
