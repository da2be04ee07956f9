/* swiglu.cu - the MLP's gate: y[t][i] = silu(gate[t][i]) * up[t][i],
 * silu(g) = g / (1 + e^-g).
 *
 * y: [rows][width] contiguous. gate, up: rows `in_stride` floats apart (the
 * fused gate|up projection puts both halves in one [rows][2 * n_ff] buffer:
 * up = gate + n_ff, in_stride = 2 * n_ff). y may alias gate when
 * in_stride == width. Launch: 1-D, grid-stride over rows * width.
 */
#include "common.cuh"

M40_KERNEL void m40_swiglu_f32(float *y, const float *gate, const float *up, int rows, int width,
                               int in_stride) {
    int n = rows * width;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int t = i / width, j = i % width;
        float g = gate[(long long)t * in_stride + j];
        y[i] = g / (1.0f + expf(-g)) * up[(long long)t * in_stride + j];
    }
}
