/* gpu.c - see gpu.h. */
#include "backend/cuda/gpu.h"

#include <string.h>

#include "backend/cuda/kernels_blob.h"
#include "util/log.h"

static int open_device(m40_gpu *gpu, const m40_gpu_options *opts, m40_err *err) {
    m40_gpu_info devs[M40_GPU_MAX];
    int n = m40_cuda_list_devices(gpu->drv, devs, M40_GPU_MAX, 0, err);
    if (n < 0)
        return -1;
    int pick = m40_cuda_pick_device(devs, n, opts->gpu, err);
    if (pick < 0)
        return -1;
    gpu->info = devs[pick];
    const m40_cuda_driver *d = gpu->drv;
    if (m40_cu_check(d, d->cuDeviceGet(&gpu->dev, gpu->info.ordinal), "cuDeviceGet", err))
        return -1;
    if (m40_cu_check(d, d->cuDevicePrimaryCtxRetain(&gpu->ctx, gpu->dev),
                     "cuDevicePrimaryCtxRetain", err)) {
        gpu->ctx = NULL;
        return -1;
    }
    if (m40_cu_check(d, d->cuCtxSetCurrent(gpu->ctx), "cuCtxSetCurrent", err))
        return -1;
    size_t total = 0;
    if (m40_cu_check(d, d->cuMemGetInfo(&gpu->info.vram_free, &total), "cuMemGetInfo", err))
        return -1;
    return 0;
}

static int load_kernels(m40_gpu *gpu, m40_err *err) {
    if (m40_kernels_fatbin_size == 0)
        return m40_errf(err, "this m40-llm was built without CUDA kernels (configure with "
                             "-DM40_CUDA=ON after scripts/setup-cuda.sh)");
    /* The first load on a GPU newer than sm_52 JIT-compiles the compute_52
     * PTX; the driver caches the result (~/.nv/ComputeCache). */
    const m40_cuda_driver *d = gpu->drv;
    if (m40_cu_check(d, d->cuModuleLoadData(&gpu->mod, m40_kernels_fatbin),
                     "loading the embedded kernels (cuModuleLoadData)", err)) {
        gpu->mod = NULL;
        return -1;
    }
    return 0;
}

int m40_gpu_open(m40_gpu *gpu, const m40_gpu_options *opts, m40_err *err) {
    memset(gpu, 0, sizeof *gpu);
    gpu->drv = m40_cuda_driver_get(err);
    if (!gpu->drv)
        return -1;
    if (open_device(gpu, opts, err) || load_kernels(gpu, err))
        goto fail;
    const m40_cuda_driver *d = gpu->drv;
    if (m40_cu_check(d, d->cuStreamCreate(&gpu->stream, 0), "cuStreamCreate", err)) {
        gpu->stream = NULL;
        goto fail;
    }
    if (m40_cublas_load(&gpu->blas, opts->cublas, gpu->stream, err))
        goto fail;
    m40_log_debug("CUDA device %d: %s (sm_%d%d), cuBLAS %s", gpu->info.ordinal, gpu->info.name,
                  gpu->info.cc_major, gpu->info.cc_minor,
                  m40_cublas_active(&gpu->blas) ? "on" : "off");
    return 0;
fail:
    m40_gpu_close(gpu);
    return -1;
}

void m40_gpu_close(m40_gpu *gpu) {
    const m40_cuda_driver *d = gpu->drv;
    if (d && gpu->ctx)
        d->cuCtxSetCurrent(gpu->ctx); /* closing may happen on another thread */
    if (d) {
        m40_cublas_unload(&gpu->blas);
        if (gpu->stream)
            d->cuStreamDestroy(gpu->stream);
        if (gpu->mod)
            d->cuModuleUnload(gpu->mod);
        if (gpu->ctx) {
            d->cuCtxSetCurrent(NULL);
            d->cuDevicePrimaryCtxRelease(gpu->dev);
        }
    }
    memset(gpu, 0, sizeof *gpu);
}

int m40_gpu_make_current(m40_gpu *gpu, m40_err *err) {
    return m40_cu_check(gpu->drv, gpu->drv->cuCtxSetCurrent(gpu->ctx), "cuCtxSetCurrent", err);
}

int m40_gpu_function(m40_gpu *gpu, const char *name, m40_cu_function *fn, m40_err *err) {
    if (m40_cu_check(gpu->drv, gpu->drv->cuModuleGetFunction(fn, gpu->mod, name),
                     "cuModuleGetFunction", err))
        return m40_err_wrap(err, "kernel %s", name);
    return 0;
}

int m40_gpu_launch_on(m40_gpu *gpu, m40_cu_stream stream, m40_cu_function fn, unsigned gx,
                      unsigned gy, unsigned gz, unsigned threads, unsigned shmem, void **args,
                      m40_err *err) {
    m40_cu_result r =
        gpu->drv->cuLaunchKernel(fn, gx, gy, gz, threads, 1, 1, shmem, stream, args, NULL);
    return m40_cu_check(gpu->drv, r, "cuLaunchKernel", err);
}

int m40_gpu_launch(m40_gpu *gpu, m40_cu_function fn, unsigned gx, unsigned gy, unsigned gz,
                   unsigned threads, unsigned shmem, void **args, m40_err *err) {
    return m40_gpu_launch_on(gpu, gpu->stream, fn, gx, gy, gz, threads, shmem, args, err);
}

int m40_gpu_launch_1d(m40_gpu *gpu, m40_cu_function fn, unsigned blocks, unsigned threads,
                      unsigned shmem, void **args, m40_err *err) {
    return m40_gpu_launch(gpu, fn, blocks, 1, 1, threads, shmem, args, err);
}

int m40_gpu_sync_on(m40_gpu *gpu, m40_cu_stream stream, m40_err *err) {
    return m40_cu_check(gpu->drv, gpu->drv->cuStreamSynchronize(stream), "cuStreamSynchronize",
                        err);
}

int m40_gpu_sync(m40_gpu *gpu, m40_err *err) {
    return m40_gpu_sync_on(gpu, gpu->stream, err);
}

int m40_gpu_stream_create(m40_gpu *gpu, int high_priority, m40_cu_stream *stream, m40_err *err) {
    const m40_cuda_driver *d = gpu->drv;
    int least = 0, greatest = 0;
    *stream = NULL;
    if (m40_cu_check(d, d->cuCtxGetStreamPriorityRange(&least, &greatest),
                     "cuCtxGetStreamPriorityRange", err) ||
        m40_cu_check(d,
                     d->cuStreamCreateWithPriority(stream, M40_CU_STREAM_NON_BLOCKING,
                                                   high_priority ? greatest : least),
                     "cuStreamCreateWithPriority", err)) {
        *stream = NULL;
        return -1;
    }
    return 0;
}

void m40_gpu_stream_destroy(m40_gpu *gpu, m40_cu_stream stream) {
    if (stream)
        gpu->drv->cuStreamDestroy(stream);
}

int m40_gpu_upload_on(m40_gpu *gpu, m40_cu_stream stream, m40_cu_deviceptr dst, const void *src,
                      size_t bytes, m40_err *err) {
    return m40_cu_check(gpu->drv, gpu->drv->cuMemcpyHtoDAsync(dst, src, bytes, stream),
                        "cuMemcpyHtoDAsync", err);
}

int m40_gpu_download_on(m40_gpu *gpu, m40_cu_stream stream, void *dst, m40_cu_deviceptr src,
                        size_t bytes, m40_err *err) {
    return m40_cu_check(gpu->drv, gpu->drv->cuMemcpyDtoHAsync(dst, src, bytes, stream),
                        "cuMemcpyDtoHAsync", err) ||
                   m40_gpu_sync_on(gpu, stream, err)
               ? -1
               : 0;
}

int m40_gpu_copy_on(m40_gpu *gpu, m40_cu_stream stream, m40_cu_deviceptr dst, m40_cu_deviceptr src,
                    size_t bytes, m40_err *err) {
    return m40_cu_check(gpu->drv, gpu->drv->cuMemcpyDtoDAsync(dst, src, bytes, stream),
                        "cuMemcpyDtoDAsync", err);
}

int m40_gpu_alloc(m40_gpu *gpu, m40_cu_deviceptr *ptr, size_t bytes, m40_err *err) {
    *ptr = 0;
    if (m40_cu_check(gpu->drv, gpu->drv->cuMemAlloc(ptr, bytes), "cuMemAlloc", err)) {
        *ptr = 0;
        return m40_err_wrap(err, "allocating %zu bytes of VRAM", bytes);
    }
    return 0;
}

void m40_gpu_free(m40_gpu *gpu, m40_cu_deviceptr ptr) {
    if (ptr)
        gpu->drv->cuMemFree(ptr);
}

int m40_gpu_upload(m40_gpu *gpu, m40_cu_deviceptr dst, const void *src, size_t bytes,
                   m40_err *err) {
    return m40_cu_check(gpu->drv, gpu->drv->cuMemcpyHtoD(dst, src, bytes), "cuMemcpyHtoD", err);
}

int m40_gpu_download(m40_gpu *gpu, void *dst, m40_cu_deviceptr src, size_t bytes, m40_err *err) {
    return m40_cu_check(gpu->drv, gpu->drv->cuMemcpyDtoH(dst, src, bytes), "cuMemcpyDtoH", err);
}

int m40_gpu_has_graphs(const m40_gpu *gpu) {
    return gpu->drv && m40_cuda_driver_has_graphs(gpu->drv);
}

int m40_gpu_capture_begin_on(m40_gpu *gpu, m40_cu_stream stream, m40_err *err) {
    if (!m40_gpu_has_graphs(gpu))
        return m40_errf(err, "this CUDA driver has no graph support");
    return m40_cu_check(
        gpu->drv, gpu->drv->cuStreamBeginCapture(stream, M40_CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
        "cuStreamBeginCapture", err);
}

int m40_gpu_capture_begin(m40_gpu *gpu, m40_err *err) {
    return m40_gpu_capture_begin_on(gpu, gpu->stream, err);
}

int m40_gpu_capture_end_on(m40_gpu *gpu, m40_cu_stream stream, m40_cu_graph_exec *exec,
                           m40_err *err) {
    const m40_cuda_driver *d = gpu->drv;
    m40_cu_graph graph = NULL;
    m40_cu_result r = d->cuStreamEndCapture(stream, &graph);
    int rc = 0;
    if (!exec) { /* dropping a failed recording */
        if (graph)
            d->cuGraphDestroy(graph);
        return 0;
    }
    *exec = NULL;
    rc = m40_cu_check(d, r, "cuStreamEndCapture", err);
    if (rc == 0 && m40_cu_check(d, d->cuGraphInstantiateWithFlags(exec, graph, 0),
                                "cuGraphInstantiateWithFlags", err)) {
        *exec = NULL;
        rc = -1;
    }
    if (graph)
        d->cuGraphDestroy(graph);
    return rc;
}

int m40_gpu_capture_end(m40_gpu *gpu, m40_cu_graph_exec *exec, m40_err *err) {
    return m40_gpu_capture_end_on(gpu, gpu->stream, exec, err);
}

int m40_gpu_graph_launch_on(m40_gpu *gpu, m40_cu_stream stream, m40_cu_graph_exec exec,
                            m40_err *err) {
    return m40_cu_check(gpu->drv, gpu->drv->cuGraphLaunch(exec, stream), "cuGraphLaunch", err);
}

int m40_gpu_graph_launch(m40_gpu *gpu, m40_cu_graph_exec exec, m40_err *err) {
    return m40_gpu_graph_launch_on(gpu, gpu->stream, exec, err);
}

void m40_gpu_graph_free(m40_gpu *gpu, m40_cu_graph_exec exec) {
    if (exec)
        gpu->drv->cuGraphExecDestroy(exec);
}
