/* repack.cu - rewrite Q4_0 and Q8_0 matrices into an aligned layout at load.
 *
 * GGML stores a Q4_0 block as 18 bytes (f16 scale + 16 bytes of nibbles) and
 * a Q8_0 block as 34 bytes, so blocks are only 2-byte aligned and a lane
 * cannot read one with a 16-byte load. Repacked, a matrix of R rows (a
 * multiple of 8) of NB blocks keeps its size but becomes two arrays, each
 * interleaving the rows of a group of 8 (rows 8g .. 8g + 7):
 *   quants [R/8][NB][QW][8]  32-bit words (QW = 4 for Q4_0, 8 for Q8_0):
 *                            word k of block b of row 8g + j
 *   scales [R/8][NB][8]      f16, right after the quants
 * so a mat-vec thread that needs word k of block b of 8 (or 4) adjacent
 * rows reads them with two (one) 16-byte loads, and their scales with one,
 * instead of 8 (4) loads of 4 bytes and 8 (4) of 2 (gemv_common.cuh).
 * Launch: 1-D over R * NB threads, one a block; src is a copy of the
 * original bytes.
 */
#include <stdint.h>

#include "common.cuh"

M40_KERNEL void m40_repack_q(uint8_t *dst, const uint8_t *src, int rows, int nb, int qbytes) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long n_blocks = (long long)rows * nb;
    if (i >= n_blocks)
        return;
    const int qw = qbytes / 4, row = (int)(i / nb), b = (int)(i % nb);
    /* block b of row `row` in the interleaved order: its group's block b */
    const long long gb = (long long)(row / 8) * nb + b, j = row % 8;
    const uint8_t *blk = src + i * (2 + qbytes);
    uint8_t *q = dst + (gb * qw * 8 + j) * 4; /* word 0; word k is 32 k bytes on */
    for (int k = 0; k < qw; k++)
        for (int t = 0; t < 4; t++)
            q[32 * k + t] = blk[2 + 4 * k + t];
    uint8_t *s = dst + n_blocks * qbytes + (gb * 8 + j) * 2;
    s[0] = blk[0];
    s[1] = blk[1];
}
