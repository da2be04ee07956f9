/* test_gpu_cublas.c - cuBLAS loads through dlopen and multiplies correctly.
 *
 * Checks the row-major contract prefill will use: with row-major A (m x k),
 * B (k x n) and C (m x n), C = A * B is computed as the column-major product
 * C^T = B^T * A^T, i.e. sgemm(N, N, n, m, k, B, ldb=n, A, lda=k, C, ldc=n).
 * The result is compared with a double-precision CPU product.
 *
 * With M40LLM_ENABLE_CUBLAS=0 cuBLAS must be off, and this test checks that
 * instead. Otherwise cuBLAS not loading is a skip, which the GPU runner
 * counts as a failure (the H100 machine and M40 boxes have it).
 */
#include <math.h>
#include <stdint.h>

#include "check.h"
#include "gpu_test.h"

static void reference(const float *a, const float *b, float *c, int m, int n, int k) {
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int p = 0; p < k; p++)
                s += (double)a[i * k + p] * (double)b[p * n + j];
            c[i * n + j] = (float)s;
        }
    }
}

static void test_sgemm(m40_gpu *gpu, int m, int n, int k) {
    size_t sa = (size_t)m * k, sb = (size_t)k * n, sc = (size_t)m * n;
    float *a = malloc(sa * 4), *b = malloc(sb * 4), *c = malloc(sc * 4), *r = malloc(sc * 4);
    m40_cu_deviceptr da = 0, db = 0, dc = 0;
    m40_err err = {0};
    CHECK(a && b && c && r);
    if (!a || !b || !c || !r)
        goto done;
    unsigned seed = 12345u + (unsigned)(m * 31 + n * 7 + k);
    for (size_t i = 0; i < sa; i++)
        a[i] = gpu_test_rand(&seed);
    for (size_t i = 0; i < sb; i++)
        b[i] = gpu_test_rand(&seed);
    reference(a, b, r, m, n, k);
    int ok = !m40_gpu_alloc(gpu, &da, sa * 4, &err) && !m40_gpu_alloc(gpu, &db, sb * 4, &err) &&
             !m40_gpu_alloc(gpu, &dc, sc * 4, &err) && !m40_gpu_upload(gpu, da, a, sa * 4, &err) &&
             !m40_gpu_upload(gpu, db, b, sb * 4, &err);
    CHECK(ok);
    if (!ok)
        goto done;
    const float one = 1.0f, zero = 0.0f;
    int st = gpu->blas.sgemm(gpu->blas.handle, M40_CUBLAS_OP_N, M40_CUBLAS_OP_N, n, m, k, &one,
                             (const float *)(uintptr_t)db, n, (const float *)(uintptr_t)da, k,
                             &zero, (float *)(uintptr_t)dc, n);
    CHECK(st == 0);
    CHECK(m40_gpu_sync(gpu, &err) == 0);
    CHECK(m40_gpu_download(gpu, c, dc, sc * 4, &err) == 0);
    double worst = 0.0;
    for (size_t i = 0; i < sc; i++)
        worst = fmax(worst, fabs((double)c[i] - (double)r[i]));
    /* FP32 accumulation over k terms of size <= 1: allow k * 2^-20. */
    double tol = (double)k * 1e-6;
    if (worst > tol)
        fprintf(stderr, "sgemm %dx%dx%d: max abs diff %g > %g\n", m, n, k, worst, tol);
    CHECK(worst <= tol);
done:
    if (err.msg[0])
        fprintf(stderr, "%s\n", err.msg);
    m40_gpu_free(gpu, da);
    m40_gpu_free(gpu, db);
    m40_gpu_free(gpu, dc);
    free(a);
    free(b);
    free(c);
    free(r);
}

int main(void) {
    m40_gpu gpu;
    gpu_test_open(&gpu);
    const char *env = getenv("M40LLM_ENABLE_CUBLAS");
    if (env && !strcmp(env, "0")) {
        CHECK(!m40_cublas_active(&gpu.blas));
        CHECK_CONTAINS(gpu.blas.why_off, "M40LLM_ENABLE_CUBLAS=0");
        m40_gpu_close(&gpu);
        return check_report();
    }
    if (!m40_cublas_active(&gpu.blas)) {
        printf("skipped: cuBLAS not loaded (%s)\n", gpu.blas.why_off);
        m40_gpu_close(&gpu);
        return GPU_TEST_SKIP;
    }
    printf("cuBLAS: %s, version %d\n", gpu.blas.libname, gpu.blas.version);
    test_sgemm(&gpu, 1, 1, 1);
    test_sgemm(&gpu, 7, 5, 3);
    test_sgemm(&gpu, 64, 96, 128);
    test_sgemm(&gpu, 33, 257, 4096);
    m40_gpu_close(&gpu);
    return check_report();
}
