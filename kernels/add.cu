/* add.cu - element-wise addition of FP32 vectors. The forward no longer
 * uses it (the residual adds are fused into the output and down
 * products); tests/gpu/test_gpu_add.c launches it by name as the smallest
 * end-to-end check of the toolchain, the fatbin and the driver.
 *
 * y[i] = a[i] + b[i] for i < n. y may alias a or b.
 * Launch: 1-D grid, any block size; a grid-stride loop covers any n.
 */
#include "common.cuh"

M40_KERNEL void m40_add_f32(float *y, const float *a, const float *b, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        y[i] = a[i] + b[i];
}
