/* repack.cu - rewrite Q4_0, Q8_0 and Q6_K matrices into aligned layouts at load.
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
 *
 * Q6_K (m40_repack_q6_k) becomes quant_decode.cuh's repacked Q6_K: the
 * same interleaving by 8 rows, in four arrays (ql, qh, scales, d), its
 * 6-bit values regrouped so that a thread's 8 elements of a block are one
 * ql and one qh word. One thread a 32-element block here too.
 */
#include <stdint.h>

#include "common.cuh"
#include "quant_decode.cuh" /* the repacked Q6_K's layout */

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

/* GGML's Q6_K super-block (210 bytes): ql[128], qh[64], sc[16] (int8), d
 * (f16). Element 128h + 32q + l (h < 2, q < 4, l < 32) is the nibble
 * 4 (q >> 1) of ql[64h + 32 (q & 1) + l], with bits 2q, 2q + 1 of
 * qh[32h + l] on top, scaled by sc[8h + 2q + l / 16] and d. Block b of a
 * row is elements 32 b ..; nb: blocks a row (8 a super-block). */
M40_KERNEL void m40_repack_q6_k(uint8_t *dst, const uint8_t *src, int rows, int nb) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long n_blocks = (long long)rows * nb;
    if (i >= n_blocks)
        return;
    const int row = (int)(i / nb), b = (int)(i % nb), s = b % 8, h = s / 4, q = s % 4;
    const uint8_t *sb = src + ((long long)row * (nb / 8) + b / 8) * 210;
    const uint8_t *ql = sb + 64 * h + 32 * (q & 1), *qh = sb + 128 + 32 * h;
    uint8_t v[32]; /* the block's 6-bit values */
    for (int l = 0; l < 32; l++)
        v[l] = (uint8_t)(((ql[l] >> (4 * (q >> 1))) & 15) | (((qh[l] >> (2 * q)) & 3) << 4));
    const long long gb = (long long)(row / 8) * nb + b, j = row % 8;
    uint8_t *lo = dst + (gb * 4 * 8 + j) * 4; /* ql word 0; word p is 32 p bytes on */
    for (int p = 0; p < 4; p++)
        for (int t = 0; t < 4; t++)
            lo[32 * p + t] = (uint8_t)((v[4 * p + t] & 15) | ((v[16 + 4 * p + t] & 15) << 4));
    uint8_t *hi =
        dst + n_blocks * M40_Q6_KR_QH_AT + (gb * 2 * 8 + j) * 4; /* qh word 0, then word 1 */
    for (int k = 0; k < 2; k++)
        for (int t = 0; t < 4; t++)
            hi[32 * k + t] =
                (uint8_t)((v[8 * k + t] >> 4) | ((v[16 + 8 * k + t] >> 4) << 2) |
                          ((v[8 * k + 4 + t] >> 4) << 4) | ((v[16 + 8 * k + 4 + t] >> 4) << 6));
    uint8_t *sc = dst + n_blocks * M40_Q6_KR_SC_AT + (gb * 8 + j) * 2;
    sc[0] = sb[192 + 2 * s];
    sc[1] = sb[192 + 2 * s + 1];
    if (s == 0) { /* the super-block's d, once */
        uint8_t *d = dst + n_blocks * M40_Q6_KR_D_AT +
                     (((long long)(row / 8) * (nb / 8) + b / 8) * 8 + j) * 2;
        d[0] = sb[208];
        d[1] = sb[209];
    }
}
