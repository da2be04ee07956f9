/* swiglu.cu - the MLP's gate: y[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + e^-g).
 * y may alias gate or up. Launch: 1-D, grid-stride over n.
 */
#include "common.cuh"

M40_KERNEL void m40_swiglu_f32(float *y, const float *gate, const float *up, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        float g = gate[i];
        y[i] = g / (1.0f + expf(-g)) * up[i];
    }
}
