/* copy_rows.cu - dst[dst_idx[i]] = src[src_idx[i]] for rows of `width`
 * floats, i < n (an index list NULL: i itself). A mixture of experts
 * gathers the tokens routed to one expert into a block of rows and puts
 * the expert's outputs back where each (token, pick) keeps its own.
 * Launch: grid (ceil(width / 256), n), block 256.
 */
#include "common.cuh"

M40_KERNEL void m40_copy_rows(float *dst, const int *dst_idx, const float *src, const int *src_idx,
                              int n, int width) {
    int i = blockIdx.y, c = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n || c >= width)
        return;
    long long d = dst_idx ? dst_idx[i] : i, s = src_idx ? src_idx[i] : i;
    dst[d * width + c] = src[s * width + c];
}
