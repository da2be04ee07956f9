/* test_cuda_select.c - choosing a CUDA device, and failing clearly without one.
 *
 * The policy is a pure function over a device list, so it is tested here with
 * made-up lists; the last tests open the real driver and, on a machine where
 * no CUDA driver exists, assert that asking for a device fails with one line
 * saying why.
 */
#include <dlfcn.h>

#include "backend/cuda/device.h"
#include "backend/cuda/driver.h"
#include "backend/cuda/gpu.h"
#include "check.h"

static m40_gpu_info gpu(int ordinal, const char *name, int major, int minor) {
    m40_gpu_info g;
    memset(&g, 0, sizeof g);
    g.ordinal = ordinal;
    snprintf(g.name, sizeof g.name, "%s", name);
    g.cc_major = major;
    g.cc_minor = minor;
    return g;
}

static void test_prefers_tesla_m40(void) {
    m40_gpu_info devs[] = {gpu(0, "NVIDIA GeForce GTX 1080", 6, 1), gpu(1, "Tesla M40 24GB", 5, 2)};
    m40_err e = {0};
    CHECK(m40_cuda_pick_device(devs, 2, -1, &e) == 1);
}

static void test_first_supported_without_m40(void) {
    m40_gpu_info devs[] = {gpu(0, "Tesla K80", 3, 7), gpu(1, "NVIDIA H100 80GB HBM3", 9, 0),
                           gpu(2, "NVIDIA A100", 8, 0)};
    m40_err e = {0};
    CHECK(m40_cuda_pick_device(devs, 3, -1, &e) == 1);
}

static void test_skips_unsupported_m40_lookalike(void) {
    /* A name match alone is not enough: cc must be >= 5.2. */
    m40_gpu_info devs[] = {gpu(0, "Tesla M40 (fake)", 5, 0), gpu(1, "Tesla P40", 6, 1)};
    m40_err e = {0};
    CHECK(m40_cuda_pick_device(devs, 2, -1, &e) == 1);
}

static void test_explicit_gpu_overrides(void) {
    m40_gpu_info devs[] = {gpu(0, "Tesla M40 24GB", 5, 2), gpu(1, "Tesla M40 24GB", 5, 2)};
    m40_err e = {0};
    CHECK(m40_cuda_pick_device(devs, 2, 1, &e) == 1);
    CHECK(m40_cuda_pick_device(devs, 2, 0, &e) == 0);
}

static void test_explicit_gpu_missing(void) {
    m40_gpu_info devs[] = {gpu(0, "Tesla M40 24GB", 5, 2)};
    m40_err e = {0};
    CHECK(m40_cuda_pick_device(devs, 1, 3, &e) == -1);
    CHECK_CONTAINS(e.msg, "CUDA device 3 does not exist");
}

static void test_explicit_gpu_too_old(void) {
    m40_gpu_info devs[] = {gpu(0, "Tesla K80", 3, 7)};
    m40_err e = {0};
    CHECK(m40_cuda_pick_device(devs, 1, 0, &e) == -1);
    CHECK_CONTAINS(e.msg, "compute capability 3.7");
}

static void test_nothing_supported(void) {
    m40_gpu_info devs[] = {gpu(0, "Tesla K80", 3, 7), gpu(1, "GTX 750 Ti", 5, 0)};
    m40_err e = {0};
    CHECK(m40_cuda_pick_device(devs, 2, -1, &e) == -1);
    CHECK_CONTAINS(e.msg, "no CUDA device of compute capability 5.2 or newer");
}

static void test_empty_list(void) {
    m40_err e = {0};
    CHECK(m40_cuda_pick_device(NULL, 0, -1, &e) == -1);
    CHECK_CONTAINS(e.msg, "no CUDA device found");
}

static void test_missing_driver_library(void) {
    m40_cuda_driver drv;
    m40_err e = {0};
    CHECK(m40_cuda_driver_load(&drv, "libcuda-does-not-exist.so.1", &e) == -1);
    CHECK_CONTAINS(e.msg, "CUDA driver not found (libcuda-does-not-exist.so.1)");
    CHECK(drv.lib == NULL);
    m40_cuda_driver_unload(&drv); /* safe after a failed load */
}

/* The real thing: without a CUDA driver on this machine, opening a GPU must
 * fail with one line naming the reason. With a driver (a GPU machine), the
 * GPU suite covers opening; here we only check the error path is clean. */
static void test_open_without_driver(void) {
    void *probe = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (probe) {
        dlclose(probe);
        printf("note: libcuda.so.1 present; no-driver path not exercised here\n");
        return;
    }
    m40_gpu g;
    m40_gpu_options opts = {.gpu = -1, .cublas = M40_CUBLAS_AUTO};
    m40_err e = {0};
    CHECK(m40_gpu_open(&g, &opts, &e) == -1);
    CHECK_CONTAINS(e.msg, "CUDA driver not found (libcuda.so.1)");
    CHECK(strchr(e.msg, '\n') == NULL);
    CHECK(g.drv == NULL && g.mod == NULL && g.ctx == NULL);
    m40_gpu_close(&g); /* safe on the zeroed result of a failed open */
}

int main(void) {
    test_prefers_tesla_m40();
    test_first_supported_without_m40();
    test_skips_unsupported_m40_lookalike();
    test_explicit_gpu_overrides();
    test_explicit_gpu_missing();
    test_explicit_gpu_too_old();
    test_nothing_supported();
    test_empty_list();
    test_missing_driver_library();
    test_open_without_driver();
    return check_report();
}
