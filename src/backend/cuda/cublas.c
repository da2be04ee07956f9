/* cublas.c - see cublas.h. */
#include "backend/cuda/cublas.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tried in order: the sonames of the CUDA versions that can drive an M40
 * (12, 11) or that newer boxes carry (13), then the unversioned name, then
 * the usual toolkit location, which is often not on the loader's path. */
static const char *const k_cublas_names[] = {
    "libcublas.so.12",
    "libcublas.so.13",
    "libcublas.so.11",
    "libcublas.so",
    "/usr/local/cuda/lib64/libcublas.so.13",
    "/usr/local/cuda/lib64/libcublas.so.12",
    "/usr/local/cuda/lib64/libcublas.so",
};

int m40_cublas_policy_from_env(m40_cublas_policy *policy, m40_err *err) {
    const char *s = getenv("M40LLM_ENABLE_CUBLAS");
    if (!s || !*s) {
        *policy = M40_CUBLAS_AUTO;
        return 0;
    }
    if (!strcmp(s, "0")) {
        *policy = M40_CUBLAS_OFF;
        return 0;
    }
    if (!strcmp(s, "1")) {
        *policy = M40_CUBLAS_REQUIRED;
        return 0;
    }
    return m40_errf(err, "M40LLM_ENABLE_CUBLAS must be 0 or 1, not \"%s\"", s);
}

static void *open_first(char *libname, size_t cap) {
    for (size_t i = 0; i < sizeof k_cublas_names / sizeof k_cublas_names[0]; i++) {
        void *lib = dlopen(k_cublas_names[i], RTLD_NOW | RTLD_LOCAL);
        if (lib) {
            snprintf(libname, cap, "%s", k_cublas_names[i]);
            return lib;
        }
    }
    return NULL;
}

static int bind_sym(void *lib, const char *name, void *slot) {
    void *fn = dlsym(lib, name);
    if (!fn)
        return -1;
    memcpy(slot, &fn, sizeof fn);
    return 0;
}

/* Loads and creates a handle; on failure fills why_off and leaves blas
 * without a library. */
static int try_load(m40_cublas *blas, m40_cu_stream stream) {
    blas->lib = open_first(blas->libname, sizeof blas->libname);
    if (!blas->lib) {
        snprintf(blas->why_off, sizeof blas->why_off,
                 "libcublas not found (tried libcublas.so.12, .so.13, .so.11, "
                 "/usr/local/cuda/lib64)");
        return -1;
    }
    if (bind_sym(blas->lib, "cublasCreate_v2", &blas->create) ||
        bind_sym(blas->lib, "cublasDestroy_v2", &blas->destroy) ||
        bind_sym(blas->lib, "cublasGetVersion_v2", &blas->get_version) ||
        bind_sym(blas->lib, "cublasSetStream_v2", &blas->set_stream) ||
        bind_sym(blas->lib, "cublasSgemm_v2", &blas->sgemm)) {
        snprintf(blas->why_off, sizeof blas->why_off, "%s lacks a cuBLAS v2 entry point",
                 blas->libname);
        return -1;
    }
    int st = blas->create(&blas->handle);
    if (st != 0) {
        blas->handle = NULL;
        snprintf(blas->why_off, sizeof blas->why_off, "cublasCreate failed (status %d)", st);
        return -1;
    }
    if (blas->get_version(blas->handle, &blas->version) != 0)
        blas->version = 0;
    st = blas->set_stream(blas->handle, stream);
    if (st != 0) {
        snprintf(blas->why_off, sizeof blas->why_off, "cublasSetStream failed (status %d)", st);
        return -1;
    }
    return 0;
}

int m40_cublas_load(m40_cublas *blas, m40_cublas_policy policy, m40_cu_stream stream,
                    m40_err *err) {
    memset(blas, 0, sizeof *blas);
    if (policy == M40_CUBLAS_OFF) {
        snprintf(blas->why_off, sizeof blas->why_off, "disabled by M40LLM_ENABLE_CUBLAS=0");
        return 0;
    }
    if (try_load(blas, stream) == 0)
        return 0;
    char why[sizeof blas->why_off];
    memcpy(why, blas->why_off, sizeof why);
    m40_cublas_unload(blas);
    memcpy(blas->why_off, why, sizeof why);
    if (policy == M40_CUBLAS_REQUIRED)
        return m40_errf(err, "M40LLM_ENABLE_CUBLAS=1 but cuBLAS is unusable: %s", why);
    return 0;
}

int m40_cublas_active(const m40_cublas *blas) {
    return blas->lib != NULL && blas->handle != NULL;
}

void m40_cublas_unload(m40_cublas *blas) {
    if (blas->handle && blas->destroy)
        blas->destroy(blas->handle);
    if (blas->lib)
        dlclose(blas->lib);
    memset(blas, 0, sizeof *blas);
}
