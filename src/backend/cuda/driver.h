/* driver.h - the CUDA driver API, loaded at run time.
 *
 * m40-llm never links against CUDA. libcuda.so.1 (installed with the NVIDIA
 * driver) is opened with dlopen and the handful of entry points we use are
 * looked up by their versioned names, so one binary builds on a machine
 * without CUDA and runs on CPU-only machines, M40 boxes (CUDA 12 drivers) and
 * newer GPUs (CUDA 13 drivers) alike.
 *
 * The types below mirror cuda.h's ABI (same sizes, same enum values) under
 * our own names, so cuda.h is never needed to build.
 *
 * Owns: the dlopen handle of libcuda and the function table.
 * Touches: nothing else; device choice lives in device.h, contexts in cuda.h.
 */
#ifndef M40_BACKEND_CUDA_DRIVER_H
#define M40_BACKEND_CUDA_DRIVER_H

#include <stddef.h>

#include "util/err.h"

typedef int m40_cu_result; /* CUresult: 0 is CUDA_SUCCESS */
typedef int m40_cu_device; /* CUdevice: an ordinal */
typedef struct m40_cu_ctx_st *m40_cu_context;
typedef struct m40_cu_mod_st *m40_cu_module;
typedef struct m40_cu_func_st *m40_cu_function;
typedef struct m40_cu_stream_st *m40_cu_stream;
typedef struct m40_cu_graph_st *m40_cu_graph;
typedef struct m40_cu_graph_exec_st *m40_cu_graph_exec;
typedef unsigned long long m40_cu_deviceptr; /* CUdeviceptr on 64-bit hosts */

enum {
    M40_CU_SUCCESS = 0,
    M40_CU_ERROR_NO_DEVICE = 100,
    /* CUdevice_attribute values used here (stable since CUDA 6). */
    M40_CU_ATTR_MULTIPROCESSOR_COUNT = 16,
    M40_CU_ATTR_PCI_BUS_ID = 33,
    M40_CU_ATTR_CC_MAJOR = 75,
    M40_CU_ATTR_CC_MINOR = 76,
    /* CUstreamCaptureMode: only this thread's unsafe calls are checked. */
    M40_CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1,
    /* CUstream_flags: no implicit ordering with the legacy NULL stream. */
    M40_CU_STREAM_NON_BLOCKING = 1,
};

typedef struct m40_cuda_driver {
    void *lib;          /* dlopen handle of libcuda.so.1 */
    int driver_version; /* e.g. 12040 for CUDA 12.4, 13000 for 13.0 */

    m40_cu_result (*cuInit)(unsigned flags);
    m40_cu_result (*cuDriverGetVersion)(int *version);
    m40_cu_result (*cuGetErrorString)(m40_cu_result r, const char **s);
    m40_cu_result (*cuDeviceGetCount)(int *count);
    m40_cu_result (*cuDeviceGet)(m40_cu_device *dev, int ordinal);
    m40_cu_result (*cuDeviceGetName)(char *name, int len, m40_cu_device dev);
    m40_cu_result (*cuDeviceGetAttribute)(int *value, int attr, m40_cu_device dev);
    m40_cu_result (*cuDeviceTotalMem)(size_t *bytes, m40_cu_device dev);
    m40_cu_result (*cuDevicePrimaryCtxRetain)(m40_cu_context *ctx, m40_cu_device dev);
    m40_cu_result (*cuDevicePrimaryCtxRelease)(m40_cu_device dev);
    m40_cu_result (*cuCtxSetCurrent)(m40_cu_context ctx);
    m40_cu_result (*cuCtxSynchronize)(void);
    m40_cu_result (*cuMemGetInfo)(size_t *free_bytes, size_t *total_bytes);
    m40_cu_result (*cuMemAlloc)(m40_cu_deviceptr *ptr, size_t bytes);
    m40_cu_result (*cuMemFree)(m40_cu_deviceptr ptr);
    m40_cu_result (*cuMemcpyHtoD)(m40_cu_deviceptr dst, const void *src, size_t bytes);
    m40_cu_result (*cuMemcpyDtoH)(void *dst, m40_cu_deviceptr src, size_t bytes);
    m40_cu_result (*cuMemcpyDtoD)(m40_cu_deviceptr dst, m40_cu_deviceptr src, size_t bytes);
    m40_cu_result (*cuMemsetD8)(m40_cu_deviceptr dst, unsigned char value, size_t count);
    m40_cu_result (*cuModuleLoadData)(m40_cu_module *mod, const void *image);
    m40_cu_result (*cuModuleUnload)(m40_cu_module mod);
    m40_cu_result (*cuModuleGetFunction)(m40_cu_function *f, m40_cu_module mod, const char *name);
    m40_cu_result (*cuLaunchKernel)(m40_cu_function f, unsigned gx, unsigned gy, unsigned gz,
                                    unsigned bx, unsigned by, unsigned bz, unsigned shmem,
                                    m40_cu_stream stream, void **params, void **extra);
    m40_cu_result (*cuStreamCreate)(m40_cu_stream *stream, unsigned flags);
    m40_cu_result (*cuStreamDestroy)(m40_cu_stream stream);
    m40_cu_result (*cuStreamSynchronize)(m40_cu_stream stream);
    m40_cu_result (*cuStreamCreateWithPriority)(m40_cu_stream *stream, unsigned flags,
                                                int priority);
    m40_cu_result (*cuCtxGetStreamPriorityRange)(int *least, int *greatest);
    m40_cu_result (*cuMemcpyHtoDAsync)(m40_cu_deviceptr dst, const void *src, size_t bytes,
                                       m40_cu_stream stream);
    m40_cu_result (*cuMemcpyDtoHAsync)(void *dst, m40_cu_deviceptr src, size_t bytes,
                                       m40_cu_stream stream);
    m40_cu_result (*cuMemcpyDtoDAsync)(m40_cu_deviceptr dst, m40_cu_deviceptr src, size_t bytes,
                                       m40_cu_stream stream);

    /* Optional entry points (NULL when the driver lacks them): CUDA graphs,
     * used to replay a decode step with one launch (CUDA 11.4 and later). */
    m40_cu_result (*cuStreamBeginCapture)(m40_cu_stream stream, int mode);
    m40_cu_result (*cuStreamEndCapture)(m40_cu_stream stream, m40_cu_graph *graph);
    m40_cu_result (*cuGraphInstantiateWithFlags)(m40_cu_graph_exec *exec, m40_cu_graph graph,
                                                 unsigned long long flags);
    m40_cu_result (*cuGraphLaunch)(m40_cu_graph_exec exec, m40_cu_stream stream);
    m40_cu_result (*cuGraphExecDestroy)(m40_cu_graph_exec exec);
    m40_cu_result (*cuGraphDestroy)(m40_cu_graph graph);
} m40_cuda_driver;

/* True when every optional graph entry point was found. */
int m40_cuda_driver_has_graphs(const m40_cuda_driver *drv);

/* Opens `libname` (NULL: "libcuda.so.1"), resolves every entry point and
 * calls cuInit(0). On failure the message says why CUDA is unusable (no
 * driver installed, a symbol missing, cuInit's error) and drv is left
 * zeroed; a library whose cuInit failed is left loaded (driver.c says
 * why). */
int m40_cuda_driver_load(m40_cuda_driver *drv, const char *libname, m40_err *err);

/* Closes the library; safe on a zeroed or failed driver. */
void m40_cuda_driver_unload(m40_cuda_driver *drv);

/* The process-wide driver, loaded on first call. Returns NULL and fills err
 * when the driver cannot be loaded (the same message on every call). */
const m40_cuda_driver *m40_cuda_driver_get(m40_err *err);

/* Turns a failed driver call into an error message naming the call:
 * returns 0 when r is success, else fills err with "<what>: <CUDA error>"
 * and returns -1. */
int m40_cu_check(const m40_cuda_driver *drv, m40_cu_result r, const char *what, m40_err *err);

#endif /* M40_BACKEND_CUDA_DRIVER_H */
