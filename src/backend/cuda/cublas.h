/* cublas.h - cuBLAS, loaded at run time and optional.
 *
 * Prefill multiplies FP32 matrices with cublasSgemm when cuBLAS is there and
 * allowed; otherwise our own GEMM kernel runs. The library is found with
 * dlopen under the names an M40 box (libcublas.so.12), a newer box
 * (libcublas.so.13) or a plain toolkit install (libcublas.so,
 * /usr/local/cuda/lib64) use. M40LLM_ENABLE_CUBLAS=0 turns it off;
 * =1 makes a failure to load it an error; unset means "use it if it loads".
 *
 * The calls are made on the CUDA context current on the calling thread (the
 * primary context of our device), which is the one cuBLAS's runtime uses.
 *
 * Owns: the dlopen handle and the cuBLAS handle. Touches: nothing else.
 */
#ifndef M40_BACKEND_CUDA_CUBLAS_H
#define M40_BACKEND_CUDA_CUBLAS_H

#include "backend/cuda/driver.h"
#include "util/err.h"

enum { M40_CUBLAS_OP_N = 0, M40_CUBLAS_OP_T = 1 };

typedef enum m40_cublas_policy {
    M40_CUBLAS_AUTO = 0,     /* use it when it loads (the default) */
    M40_CUBLAS_OFF = 1,      /* M40LLM_ENABLE_CUBLAS=0 */
    M40_CUBLAS_REQUIRED = 2, /* M40LLM_ENABLE_CUBLAS=1 */
} m40_cublas_policy;

typedef struct m40_cublas {
    void *lib;         /* dlopen handle; NULL when cuBLAS is not in use */
    void *handle;      /* cublasHandle_t */
    int version;       /* e.g. 120401 or 130000 */
    char libname[128]; /* what was loaded */
    char why_off[320]; /* when not in use: why (for `info` and the load log) */

    int (*create)(void **handle);
    int (*destroy)(void *handle);
    int (*get_version)(void *handle, int *version);
    int (*set_stream)(void *handle, m40_cu_stream stream);
    int (*sgemm)(void *handle, int transa, int transb, int m, int n, int k, const float *alpha,
                 const float *a, int lda, const float *b, int ldb, const float *beta, float *c,
                 int ldc);
} m40_cublas;

/* Reads M40LLM_ENABLE_CUBLAS. An unknown value is an error. */
int m40_cublas_policy_from_env(m40_cublas_policy *policy, m40_err *err);

/* Tries to load cuBLAS under `policy` and bind it to `stream`. A context must
 * be current. Returns 0 whether or not cuBLAS ended up in use (why_off says
 * why not), and -1 only when policy is REQUIRED and loading failed. */
int m40_cublas_load(m40_cublas *blas, m40_cublas_policy policy, m40_cu_stream stream, m40_err *err);

/* True when cuBLAS is loaded and has a handle. */
int m40_cublas_active(const m40_cublas *blas);

/* Destroys the handle and closes the library; safe on a zeroed struct. */
void m40_cublas_unload(m40_cublas *blas);

#endif /* M40_BACKEND_CUDA_CUBLAS_H */
