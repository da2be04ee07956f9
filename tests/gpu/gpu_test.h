/* gpu_test.h - opening the GPU in a GPU test.
 *
 * A GPU test that finds no usable device must say so and never pass: it
 * prints "skipped: no CUDA device (<why>)" and exits 77. The GPU runner
 * (dist/gpu/run-tests.sh) treats that, like any non-zero exit, as a failure.
 */
#ifndef M40_TESTS_GPU_TEST_H
#define M40_TESTS_GPU_TEST_H

#include <stdio.h>
#include <stdlib.h>

#include "backend/cuda/gpu.h"

#define GPU_TEST_SKIP 77

/* Opens the device chosen automatically, with the cuBLAS policy of the
 * environment. Exits 77 with the skip line when that fails. */
static inline void gpu_test_open(m40_gpu *gpu) {
    m40_gpu_options opts = {.gpu = -1, .cublas = M40_CUBLAS_AUTO};
    m40_err err = {0};
    if (m40_cublas_policy_from_env(&opts.cublas, &err) || m40_gpu_open(gpu, &opts, &err)) {
        printf("skipped: no CUDA device (%s)\n", err.msg);
        exit(GPU_TEST_SKIP);
    }
    printf("device: GPU %d %s (sm_%d%d), cuBLAS %s\n", gpu->info.ordinal, gpu->info.name,
           gpu->info.cc_major, gpu->info.cc_minor, m40_cublas_active(&gpu->blas) ? "on" : "off");
}

/* Deterministic pseudo-random floats in [-1, 1) (xorshift32). */
static inline float gpu_test_rand(unsigned *state) {
    unsigned x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return (float)(x >> 8) / 8388608.0f - 1.0f;
}

#endif /* M40_TESTS_GPU_TEST_H */
