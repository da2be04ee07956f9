/* gpu.h - one opened CUDA device: context, stream, our kernels, cuBLAS.
 *
 * Opening picks the device (device.h), makes its primary context current on
 * the calling thread, loads the kernels embedded in this binary (one fatbin
 * with sm_52 SASS and compute_52 PTX; newer GPUs JIT the PTX), creates the
 * stream every kernel runs on and loads cuBLAS according to the policy.
 * Asking for CUDA when it is unusable is an error with a one-line reason;
 * nothing here falls back to the CPU.
 *
 * Owns: the retained primary context, the module, the stream, the cuBLAS
 * handle. Touches: the process-wide driver (driver.h), read-only.
 */
#ifndef M40_BACKEND_CUDA_GPU_H
#define M40_BACKEND_CUDA_GPU_H

#include <stddef.h>

#include "backend/cuda/cublas.h"
#include "backend/cuda/device.h"
#include "backend/cuda/driver.h"
#include "util/err.h"

typedef struct m40_gpu {
    const m40_cuda_driver *drv;
    m40_gpu_info info;  /* the chosen device */
    m40_cu_device dev;  /* its driver handle */
    m40_cu_context ctx; /* retained primary context, current on the opening thread */
    m40_cu_module mod;  /* the embedded kernels */
    m40_cu_stream stream;
    m40_cublas blas; /* in use or not: blas.why_off says why not */
} m40_gpu;

typedef struct m40_gpu_options {
    int gpu;                  /* ordinal, or -1 for automatic choice */
    m40_cublas_policy cublas; /* from M40LLM_ENABLE_CUBLAS by default */
} m40_gpu_options;

/* Opens the device chosen by opts. On failure gpu is zeroed and err holds
 * one line saying why CUDA is unusable. */
int m40_gpu_open(m40_gpu *gpu, const m40_gpu_options *opts, m40_err *err);

/* Releases everything m40_gpu_open acquired; safe on a zeroed struct. */
void m40_gpu_close(m40_gpu *gpu);

/* Makes the gpu's context current on the calling thread. Driver contexts
 * are current per thread: a backend created on one thread and driven from
 * another (the server's worker) must call this first. */
int m40_gpu_make_current(m40_gpu *gpu, m40_err *err);

/* Looks up a kernel of the embedded module by its extern "C" name. */
int m40_gpu_function(m40_gpu *gpu, const char *name, m40_cu_function *fn, m40_err *err);

/* Launches fn on the gpu's stream with a 1-D grid of `blocks` x `threads`.
 * `args` is the array of pointers to each kernel argument, as cuLaunchKernel
 * takes it. Does not wait. */
int m40_gpu_launch_1d(m40_gpu *gpu, m40_cu_function fn, unsigned blocks, unsigned threads,
                      unsigned shmem, void **args, m40_err *err);

/* Launches fn on the gpu's stream with grid (gx, gy, gz) of `threads`-wide
 * 1-D blocks and `shmem` bytes of dynamic shared memory. */
int m40_gpu_launch(m40_gpu *gpu, m40_cu_function fn, unsigned gx, unsigned gy, unsigned gz,
                   unsigned threads, unsigned shmem, void **args, m40_err *err);

/* Waits for the gpu's stream and reports any asynchronous kernel error. */
int m40_gpu_sync(m40_gpu *gpu, m40_err *err);

/* CUDA graphs: the launches made on the gpu's stream between capture_begin
 * and capture_end are recorded instead of run, and capture_end turns them
 * into an executable graph that graph_launch replays with one call. A
 * failed recording must still be ended (capture_end with exec NULL drops
 * it) so the stream runs normally again. m40_gpu_has_graphs says whether
 * the driver offers graphs at all. */
int m40_gpu_has_graphs(const m40_gpu *gpu);
int m40_gpu_capture_begin(m40_gpu *gpu, m40_err *err);
int m40_gpu_capture_end(m40_gpu *gpu, m40_cu_graph_exec *exec, m40_err *err);
int m40_gpu_graph_launch(m40_gpu *gpu, m40_cu_graph_exec exec, m40_err *err);
void m40_gpu_graph_free(m40_gpu *gpu, m40_cu_graph_exec exec);

/* ---- other streams ---------------------------------------------------------
 * The gpu's own stream is an ordinary (blocking) stream at the lowest
 * priority. A second stream lets work overlap it: the CUDA backend runs
 * decode steps on a high-priority one while a long prompt's prefill runs on
 * the gpu's stream, so the block scheduler serves the decode step first.
 * Such a stream is non-blocking (the synchronous copies above, which go
 * through the legacy NULL stream, do not wait for it, nor it for them), so
 * the work on it must use the `_on` calls below, all stream-ordered. */
int m40_gpu_stream_create(m40_gpu *gpu, int high_priority, m40_cu_stream *stream, m40_err *err);
void m40_gpu_stream_destroy(m40_gpu *gpu, m40_cu_stream stream);
int m40_gpu_launch_on(m40_gpu *gpu, m40_cu_stream stream, m40_cu_function fn, unsigned gx,
                      unsigned gy, unsigned gz, unsigned threads, unsigned shmem, void **args,
                      m40_err *err);
int m40_gpu_sync_on(m40_gpu *gpu, m40_cu_stream stream, m40_err *err);
/* Queues a copy of host bytes (copied out of `src` before it returns). */
int m40_gpu_upload_on(m40_gpu *gpu, m40_cu_stream stream, m40_cu_deviceptr dst, const void *src,
                      size_t bytes, m40_err *err);
/* Waits for the stream's earlier work, then copies device bytes down. */
int m40_gpu_download_on(m40_gpu *gpu, m40_cu_stream stream, void *dst, m40_cu_deviceptr src,
                        size_t bytes, m40_err *err);
int m40_gpu_copy_on(m40_gpu *gpu, m40_cu_stream stream, m40_cu_deviceptr dst, m40_cu_deviceptr src,
                    size_t bytes, m40_err *err);
int m40_gpu_capture_begin_on(m40_gpu *gpu, m40_cu_stream stream, m40_err *err);
int m40_gpu_capture_end_on(m40_gpu *gpu, m40_cu_stream stream, m40_cu_graph_exec *exec,
                           m40_err *err);
int m40_gpu_graph_launch_on(m40_gpu *gpu, m40_cu_stream stream, m40_cu_graph_exec exec,
                            m40_err *err);

/* Device memory helpers (bytes), each a thin checked driver call. */
int m40_gpu_alloc(m40_gpu *gpu, m40_cu_deviceptr *ptr, size_t bytes, m40_err *err);
void m40_gpu_free(m40_gpu *gpu, m40_cu_deviceptr ptr);
int m40_gpu_upload(m40_gpu *gpu, m40_cu_deviceptr dst, const void *src, size_t bytes, m40_err *err);
int m40_gpu_download(m40_gpu *gpu, void *dst, m40_cu_deviceptr src, size_t bytes, m40_err *err);

#endif /* M40_BACKEND_CUDA_GPU_H */
