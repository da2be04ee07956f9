/* softcap.cu - x[i] = cap * tanh(x[i] / cap) for i < n: Gemma 2's final
 * logit soft-cap (the attention scores' cap is applied inside
 * attention.cu). Launch: 1-D, grid-stride over n.
 */
#include "common.cuh"

M40_KERNEL void m40_softcap_f32(float *x, int n, float cap) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        x[i] = cap * tanhf(x[i] / cap);
}
