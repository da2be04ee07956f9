/* driver.c - see driver.h. */
#include "backend/cuda/driver.h"

#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

/* One entry point: where it goes in the table and the exported name. The
 * `_v2` names are the ones cuda.h maps the plain names to since CUDA 4/7;
 * every driver since keeps exporting them, CUDA 13's included. */
typedef struct sym {
    size_t offset;
    const char *name;
} sym;

#define SYM(field, exported) \
    { offsetof(m40_cuda_driver, field), exported }

static const sym k_syms[] = {
    SYM(cuInit, "cuInit"),
    SYM(cuDriverGetVersion, "cuDriverGetVersion"),
    SYM(cuGetErrorString, "cuGetErrorString"),
    SYM(cuDeviceGetCount, "cuDeviceGetCount"),
    SYM(cuDeviceGet, "cuDeviceGet"),
    SYM(cuDeviceGetName, "cuDeviceGetName"),
    SYM(cuDeviceGetAttribute, "cuDeviceGetAttribute"),
    SYM(cuDeviceTotalMem, "cuDeviceTotalMem_v2"),
    SYM(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"),
    SYM(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2"),
    SYM(cuCtxSetCurrent, "cuCtxSetCurrent"),
    SYM(cuCtxSynchronize, "cuCtxSynchronize"),
    SYM(cuMemGetInfo, "cuMemGetInfo_v2"),
    SYM(cuMemAlloc, "cuMemAlloc_v2"),
    SYM(cuMemFree, "cuMemFree_v2"),
    SYM(cuMemcpyHtoD, "cuMemcpyHtoD_v2"),
    SYM(cuMemcpyDtoH, "cuMemcpyDtoH_v2"),
    SYM(cuMemcpyDtoD, "cuMemcpyDtoD_v2"),
    SYM(cuMemsetD8, "cuMemsetD8_v2"),
    SYM(cuModuleLoadData, "cuModuleLoadData"),
    SYM(cuModuleUnload, "cuModuleUnload"),
    SYM(cuModuleGetFunction, "cuModuleGetFunction"),
    SYM(cuLaunchKernel, "cuLaunchKernel"),
    SYM(cuStreamCreate, "cuStreamCreate"),
    SYM(cuStreamDestroy, "cuStreamDestroy_v2"),
    SYM(cuStreamSynchronize, "cuStreamSynchronize"),
    SYM(cuStreamCreateWithPriority, "cuStreamCreateWithPriority"),
    SYM(cuCtxGetStreamPriorityRange, "cuCtxGetStreamPriorityRange"),
    SYM(cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"),
    SYM(cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2"),
    SYM(cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2"),
};

/* Looked up but allowed to be missing; the plain names are the fallbacks
 * of drivers older than the `_v2` export. */
static const sym k_optional[] = {
    SYM(cuStreamBeginCapture, "cuStreamBeginCapture_v2"),
    SYM(cuStreamBeginCapture, "cuStreamBeginCapture"),
    SYM(cuStreamEndCapture, "cuStreamEndCapture"),
    SYM(cuGraphInstantiateWithFlags, "cuGraphInstantiateWithFlags"),
    SYM(cuGraphLaunch, "cuGraphLaunch"),
    SYM(cuGraphExecDestroy, "cuGraphExecDestroy"),
    SYM(cuGraphDestroy, "cuGraphDestroy"),
};

int m40_cuda_driver_has_graphs(const m40_cuda_driver *drv) {
    return drv->cuStreamBeginCapture && drv->cuStreamEndCapture &&
           drv->cuGraphInstantiateWithFlags && drv->cuGraphLaunch && drv->cuGraphExecDestroy &&
           drv->cuGraphDestroy;
}

int m40_cuda_driver_load(m40_cuda_driver *drv, const char *libname, m40_err *err) {
    memset(drv, 0, sizeof *drv);
    if (!libname)
        libname = "libcuda.so.1";
    void *lib = dlopen(libname, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        return m40_errf(err, "CUDA driver not found (%s): %s", libname,
                        why ? why : "dlopen failed");
    }
    for (size_t i = 0; i < sizeof k_syms / sizeof k_syms[0]; i++) {
        void *fn = dlsym(lib, k_syms[i].name);
        if (!fn) {
            dlclose(lib);
            memset(drv, 0, sizeof *drv);
            return m40_errf(err, "CUDA driver %s lacks %s (driver too old?)", libname,
                            k_syms[i].name);
        }
        /* The table is a struct of function pointers; storing through a
         * void * slot keeps this loop free of one cast per entry. */
        memcpy((char *)drv + k_syms[i].offset, &fn, sizeof fn);
    }
    for (size_t i = 0; i < sizeof k_optional / sizeof k_optional[0]; i++) {
        void *fn = NULL, *have = NULL;
        memcpy(&have, (char *)drv + k_optional[i].offset, sizeof have);
        if (!have && (fn = dlsym(lib, k_optional[i].name)) != NULL)
            memcpy((char *)drv + k_optional[i].offset, &fn, sizeof fn);
    }
    drv->lib = lib;
    m40_cu_result r = drv->cuInit(0);
    if (r != M40_CU_SUCCESS) {
        /* The library stays loaded: a failed cuInit keeps what it
         * allocated, pointed to from the library's own data, and unmapping
         * that would make those blocks a leak (LeakSanitizer reports them
         * on a machine with a driver and no GPU). */
        m40_cu_check(drv, r, "cuInit", err);
        memset(drv, 0, sizeof *drv);
        return -1;
    }
    if (m40_cu_check(drv, drv->cuDriverGetVersion(&drv->driver_version), "cuDriverGetVersion",
                     err)) {
        m40_cuda_driver_unload(drv);
        return -1;
    }
    return 0;
}

void m40_cuda_driver_unload(m40_cuda_driver *drv) {
    if (drv->lib)
        dlclose(drv->lib);
    memset(drv, 0, sizeof *drv);
}

static m40_cuda_driver g_driver;
static m40_err g_driver_err;
static int g_driver_rc;
static pthread_once_t g_driver_once = PTHREAD_ONCE_INIT;

static void load_global_driver(void) {
    g_driver_rc = m40_cuda_driver_load(&g_driver, NULL, &g_driver_err);
}

const m40_cuda_driver *m40_cuda_driver_get(m40_err *err) {
    pthread_once(&g_driver_once, load_global_driver);
    if (g_driver_rc != 0) {
        m40_errf(err, "%s", g_driver_err.msg);
        return NULL;
    }
    return &g_driver;
}

int m40_cu_check(const m40_cuda_driver *drv, m40_cu_result r, const char *what, m40_err *err) {
    if (r == M40_CU_SUCCESS)
        return 0;
    const char *s = NULL;
    if (drv && drv->cuGetErrorString && drv->cuGetErrorString(r, &s) != M40_CU_SUCCESS)
        s = NULL;
    if (r == M40_CU_ERROR_NO_DEVICE)
        return m40_errf(err, "%s: no CUDA-capable device is detected (CUDA error %d)", what, r);
    return m40_errf(err, "%s: %s (CUDA error %d)", what, s ? s : "unknown error", r);
}
