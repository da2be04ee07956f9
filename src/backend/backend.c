/* backend.c - see backend.h: picks and wraps the CPU or CUDA backend. */
#include "backend/backend.h"

#include <stdio.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"

static int cpu_forward(void *impl, int32_t slot, const int32_t *tokens, int32_t n, int32_t pos0,
                       float *logits, m40_err *err) {
    return m40_cpu_forward(impl, slot, tokens, n, pos0, logits, err);
}

static void cpu_destroy(void *impl) {
    m40_cpu_destroy(impl);
}

static int cuda_forward(void *impl, int32_t slot, const int32_t *tokens, int32_t n, int32_t pos0,
                        float *logits, m40_err *err) {
    return m40_cuda_forward(impl, slot, tokens, n, pos0, logits, err);
}

static int cuda_forward_greedy(void *impl, int32_t slot, const int32_t *tokens, int32_t n,
                               int32_t pos0, int32_t *token, m40_err *err) {
    return m40_cuda_forward_greedy(impl, slot, tokens, n, pos0, token, err);
}

static void cuda_destroy(void *impl) {
    m40_cuda_destroy(impl);
}

static int create_cpu(m40_backend *be, const m40_model *model, const m40_backend_options *opts,
                      m40_err *err) {
    m40_cpu_options co = {.n_ctx = opts->n_ctx,
                          .n_slots = opts->n_slots,
                          .n_batch = opts->n_batch,
                          .n_threads = opts->n_threads,
                          .kv_f32 = opts->kv_type == M40_KV_F32};
    m40_cpu *cpu;
    if (m40_cpu_create(&cpu, model, &co, err))
        return -1;
    be->name = "cpu";
    snprintf(be->device_desc, sizeof be->device_desc, "CPU, %d threads", m40_cpu_threads(cpu));
    be->impl = cpu;
    be->forward = cpu_forward;
    be->forward_greedy = NULL;
    be->destroy = cpu_destroy;
    return 0;
}

static int create_cuda(m40_backend *be, const m40_model *model, const m40_backend_options *opts,
                       m40_err *err) {
    m40_cuda *cu;
    if (m40_cuda_create(&cu, model, opts, err))
        return -1;
    be->name = "cuda";
    snprintf(be->device_desc, sizeof be->device_desc, "%s", m40_cuda_describe(cu));
    be->impl = cu;
    be->forward = cuda_forward;
    be->forward_greedy = cuda_forward_greedy;
    be->concurrent_decode = m40_cuda_concurrent_decode(cu);
    be->destroy = cuda_destroy;
    return 0;
}

int m40_backend_create(m40_backend *be, const m40_model *model, const m40_backend_options *opts,
                       char *notice, size_t notice_cap, m40_err *err) {
    memset(be, 0, sizeof *be);
    if (notice_cap)
        notice[0] = '\0';
    switch (opts->device) {
        case M40_DEVICE_CPU:
            return create_cpu(be, model, opts, err);
        case M40_DEVICE_CUDA:
            if (create_cuda(be, model, opts, err))
                return m40_err_wrap(err, "CUDA backend");
            return 0;
        case M40_DEVICE_AUTO:
            break;
    }
    m40_err cuda_err = {0};
    if (create_cuda(be, model, opts, &cuda_err) == 0)
        return 0;
    /* AUTO: the CPU is the fallback, and the user is told so, with why. */
    if (notice_cap)
        snprintf(notice, notice_cap, "running on the CPU (slow): CUDA is unusable: %s",
                 cuda_err.msg);
    return create_cpu(be, model, opts, err);
}

void m40_backend_destroy(m40_backend *be) {
    if (be->destroy && be->impl)
        be->destroy(be->impl);
    memset(be, 0, sizeof *be);
}
