/* add.cu - element-wise addition of FP32 vectors (the residual add).
 *
 * y[i] = a[i] + b[i] for i < n. y may alias a or b (in-place residual).
 * Launch: 1-D grid, any block size; a grid-stride loop covers any n.
 */
#include "common.cuh"

M40_KERNEL void m40_add_f32(float *y, const float *a, const float *b, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        y[i] = a[i] + b[i];
}
