/* test_gpu_add.c - kernels/add.cu on the GPU equals the CPU, exactly.
 *
 * FP32 addition is exact to compare (one rounding, same on both sides), so
 * any difference is a bug: wrong indexing, a missed tail, a bad launch.
 * Sizes cover one element, a partial block, several blocks, more elements
 * than threads in the grid (the grid-stride loop), and in-place use.
 */
#include <math.h>

#include "check.h"
#include "gpu_test.h"

static int run_add(m40_gpu *gpu, m40_cu_function fn, int n, int blocks, int in_place) {
    size_t bytes = (size_t)n * sizeof(float);
    float *a = malloc(bytes), *b = malloc(bytes), *y = malloc(bytes);
    m40_cu_deviceptr da = 0, db = 0, dy = 0;
    m40_err err = {0};
    int rc = -1;
    if (!a || !b || !y)
        goto done;
    unsigned seed = 0x9e3779b9u ^ (unsigned)n;
    for (int i = 0; i < n; i++) {
        a[i] = gpu_test_rand(&seed) * 100.0f;
        b[i] = gpu_test_rand(&seed);
    }
    if (m40_gpu_alloc(gpu, &da, bytes, &err) || m40_gpu_alloc(gpu, &db, bytes, &err) ||
        m40_gpu_alloc(gpu, &dy, bytes, &err) || m40_gpu_upload(gpu, da, a, bytes, &err) ||
        m40_gpu_upload(gpu, db, b, bytes, &err))
        goto done;
    m40_cu_deviceptr out = in_place ? da : dy;
    void *args[] = {&out, &da, &db, &n};
    if (m40_gpu_launch_1d(gpu, fn, (unsigned)blocks, 128, 0, args, &err) ||
        m40_gpu_sync(gpu, &err) || m40_gpu_download(gpu, y, out, bytes, &err))
        goto done;
    int mismatches = 0;
    for (int i = 0; i < n; i++) {
        if (y[i] != a[i] + b[i] && mismatches++ < 5)
            fprintf(stderr, "n=%d i=%d: gpu %.9g cpu %.9g\n", n, i, y[i], a[i] + b[i]);
    }
    rc = mismatches == 0 ? 0 : -1;
done:
    if (err.msg[0])
        fprintf(stderr, "n=%d: %s\n", n, err.msg);
    m40_gpu_free(gpu, da);
    m40_gpu_free(gpu, db);
    m40_gpu_free(gpu, dy);
    free(a);
    free(b);
    free(y);
    return rc;
}

int main(void) {
    m40_gpu gpu;
    gpu_test_open(&gpu);
    m40_cu_function fn;
    m40_err err = {0};
    CHECK(m40_gpu_function(&gpu, "m40_add_f32", &fn, &err) == 0);
    if (err.msg[0]) {
        fprintf(stderr, "%s\n", err.msg);
        m40_gpu_close(&gpu);
        return check_report();
    }
    static const int sizes[][2] = {{1, 1}, {127, 1}, {128, 1}, {1000, 8}, {1 << 20, 64}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        CHECK(run_add(&gpu, fn, sizes[i][0], sizes[i][1], 0) == 0);
        CHECK(run_add(&gpu, fn, sizes[i][0], sizes[i][1], 1) == 0);
    }
    /* A missing kernel name is an error naming it, not a crash. */
    m40_cu_function none;
    CHECK(m40_gpu_function(&gpu, "m40_no_such_kernel", &none, &err) == -1);
    CHECK_CONTAINS(err.msg, "m40_no_such_kernel");
    m40_gpu_close(&gpu);
    return check_report();
}
