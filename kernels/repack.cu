/* repack.cu - rewrite Q4_0 and Q8_0 matrices into an aligned layout at load.
 *
 * GGML stores a Q4_0 block as 18 bytes (f16 scale + 16 bytes of nibbles) and
 * a Q8_0 block as 34 bytes, so blocks are only 2-byte aligned and a lane
 * cannot read one with a 16-byte load. Repacked, a matrix of R rows of NB
 * blocks keeps its size but becomes two arrays:
 *   quants [R][NB][Q]   (Q = 16 for Q4_0, 32 for Q8_0; 16-byte aligned)
 *   scales [R][NB]      (f16), right after the quants
 * Launch: 1-D over R * NB threads; src is a copy of the original bytes.
 */
#include <stdint.h>

#include "common.cuh"

M40_KERNEL void m40_repack_q(uint8_t *dst, const uint8_t *src, long long n_blocks, int qbytes) {
    long long b = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= n_blocks)
        return;
    const uint8_t *blk = src + b * (2 + qbytes);
    uint8_t *q = dst + b * qbytes;
    for (int i = 0; i < qbytes; i++)
        q[i] = blk[2 + i];
    uint8_t *s = dst + n_blocks * qbytes + b * 2;
    s[0] = blk[0];
    s[1] = blk[1];
}
