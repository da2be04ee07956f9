/* scale.cu - x[i] *= s for i < n: Gemma's embeddings times sqrt(d)
 * (the model's embd_scale), after the lookup.
 * Launch: 1-D, grid-stride over n.
 */
#include "common.cuh"

M40_KERNEL void m40_scale_f32(float *x, int n, float s) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        x[i] *= s;
}
