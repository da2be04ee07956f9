/* geglu.cu - Gemma's MLP gate: y[t][i] = gelu(gate[t][i]) * up[t][i] with
 * GELU's tanh form, gelu(g) = g/2 (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))),
 * in the CPU's order of operations (cpu/ops.c m40_op_geglu).
 *
 * Shapes and strides as swiglu.cu's: y [rows][width] contiguous; gate and
 * up rows `in_stride` floats apart (the fused gate|up buffer). Launch:
 * 1-D, grid-stride over rows * width.
 */
#include "common.cuh"

M40_KERNEL void m40_geglu_f32(float *y, const float *gate, const float *up, int rows, int width,
                              int in_stride) {
    const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
    int n = rows * width;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int t = i / width, j = i % width;
        float g = gate[(long long)t * in_stride + j];
        y[i] = 0.5f * g * (1.0f + tanhf(k * (g + 0.044715f * g * g * g))) *
               up[(long long)t * in_stride + j];
    }
}
