/* backend.c - see backend.h: picks the CPU or CUDA backend, translates the
 * generic options into its own, and dispatches every call through the
 * table below. The one file that includes both implementations' headers.
 */
#include "backend/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "quant/ggml_types.h"

struct m40_backend {
    const char *name; /* "cpu" or "cuda" */
    char desc[192];
    void *impl;
    int concurrent_decode;
    int32_t n_slots, n_ctx, n_vocab; /* what a batch is checked against */
    int (*forward)(void *impl, int32_t slot, const int32_t *tokens, int32_t n, int32_t pos0,
                   float *logits, m40_err *err);
    /* NULL: a batch runs as one forward per slot (forward_runs) */
    int (*forward_batch)(void *impl, const m40_batch *b, float *logits);
    /* with forward_batch NULL: one step for the batch's decode rows (a
     * slot's only row, wanted), the rest as forward_runs; NULL: all so */
    int (*forward_rows)(void *impl, int32_t n, const int32_t *slot, const int32_t *token,
                        const int32_t *pos, float *const *logits, int32_t *argmax, m40_err *err);
    /* NULL: nothing faster than forward + a host argmax */
    int (*forward_greedy)(void *impl, int32_t slot, const int32_t *tokens, int32_t n, int32_t pos0,
                          int32_t *token, m40_err *err);
    m40_backend_memory (*memory)(const void *impl);
    /* NULL: no device memory to measure */
    int (*copy_bandwidth)(void *impl, double *gb_per_s, m40_err *err);
    /* NULL: no KV view */
    int (*read_kv)(void *impl, int32_t slot, int32_t layer, int32_t pos, float *k, float *v,
                   m40_err *err);
    size_t kv_pos_bytes; /* one position of a slot, every layer's K and V */
    /* copies positions [0, n) of slot's K/V to or from host memory */
    int (*kv_copy)(void *impl, int32_t slot, int32_t n, void *host, int32_t n_host, int to_host,
                   m40_err *err);
    void (*destroy)(void *impl);
};

/* Hands each name of a comma-separated switch list to `set` (the
 * backend's own parser). */
static int parse_switches(const char *list, void *opts,
                          int (*set)(void *opts, const char *name, size_t len, m40_err *err),
                          m40_err *err) {
    for (const char *p = list; p && *p;) {
        size_t len = strcspn(p, ",");
        if (len && set(opts, p, len, err))
            return -1;
        p += len + (p[len] == ',');
    }
    return 0;
}

/* ---- CPU -------------------------------------------------------------------- */

static int cpu_forward(void *impl, int32_t slot, const int32_t *tokens, int32_t n, int32_t pos0,
                       float *logits, m40_err *err) {
    return m40_cpu_forward(impl, slot, tokens, n, pos0, logits, err);
}

static int cpu_forward_batch(void *impl, const m40_batch *b, float *logits) {
    return m40_cpu_forward_batch(impl, b->n, b->token, b->slot, b->pos, b->want, logits);
}

static m40_backend_memory cpu_memory(const void *impl) {
    m40_backend_memory m = {0, 0, 0};
    m40_cpu_memory(impl, &m.kv, &m.scratch);
    return m; /* the weights stay in the file's mapping */
}

static int cpu_kv_copy(void *impl, int32_t slot, int32_t n, void *host, int32_t n_host, int to_host,
                       m40_err *err) {
    (void)err;
    m40_cpu_kv_copy(impl, slot, n, host, n_host, to_host);
    return 0;
}

static void cpu_destroy(void *impl) {
    m40_cpu_destroy(impl);
}

static int cpu_switch(void *opts, const char *name, size_t len, m40_err *err) {
    (void)opts;
    return m40_errk(err, M40_ERR_UNSUPPORTED, "the cpu backend has no switch \"%.*s\"", (int)len,
                    name);
}

uint32_t m40_kv_ggml_type(m40_kv_type t) {
    switch (t) {
        case M40_KV_F32:
            return M40_GGML_F32;
        case M40_KV_Q8_0:
            return M40_GGML_Q8_0;
        case M40_KV_Q4_0:
            return M40_GGML_Q4_0;
        case M40_KV_F16:
            break;
    }
    return M40_GGML_F16;
}

static m40_kv_type kv_type_v(const m40_backend_options *opts) {
    return opts->kv_v_set ? opts->kv_type_v : opts->kv_type;
}

static int create_cpu(m40_backend *be, const m40_model *model, const m40_backend_options *opts,
                      m40_err *err) {
    m40_cpu_options co = {.n_ctx = opts->n_ctx,
                          .n_slots = opts->n_slots,
                          .n_batch = opts->n_batch,
                          .n_threads = opts->n_threads,
                          .k_type = m40_kv_ggml_type(opts->kv_type),
                          .v_type = m40_kv_ggml_type(kv_type_v(opts)),
                          .progress = opts->progress,
                          .progress_user = opts->progress_user};
    m40_cpu *cpu;
    if (parse_switches(opts->switches, &co, cpu_switch, err) ||
        m40_cpu_create(&cpu, model, &co, err))
        return -1;
    be->name = "cpu";
    snprintf(be->desc, sizeof be->desc, "CPU, %d threads", m40_cpu_threads(cpu));
    be->impl = cpu;
    be->forward = cpu_forward;
    be->forward_batch = cpu_forward_batch;
    be->memory = cpu_memory;
    be->kv_pos_bytes = m40_cpu_kv_pos_bytes(cpu);
    be->kv_copy = cpu_kv_copy;
    be->destroy = cpu_destroy;
    return 0;
}

/* ---- CUDA ------------------------------------------------------------------- */

static int cuda_forward(void *impl, int32_t slot, const int32_t *tokens, int32_t n, int32_t pos0,
                        float *logits, m40_err *err) {
    return m40_cuda_forward(impl, slot, tokens, n, pos0, logits, err);
}

static int cuda_forward_greedy(void *impl, int32_t slot, const int32_t *tokens, int32_t n,
                               int32_t pos0, int32_t *token, m40_err *err) {
    return m40_cuda_forward_greedy(impl, slot, tokens, n, pos0, token, err);
}

static int cuda_forward_rows(void *impl, int32_t n, const int32_t *slot, const int32_t *token,
                             const int32_t *pos, float *const *logits, int32_t *argmax,
                             m40_err *err) {
    return m40_cuda_forward_rows(impl, n, slot, token, pos, logits, argmax, err);
}

static m40_backend_memory from_vram(m40_cuda_vram v) {
    m40_backend_memory m = {v.weights, v.kv, v.scratch};
    return m;
}

static m40_backend_memory cuda_memory(const void *impl) {
    return from_vram(m40_cuda_vram_used(impl));
}

static int cuda_copy_bandwidth(void *impl, double *gb_per_s, m40_err *err) {
    return m40_cuda_copy_bandwidth(impl, gb_per_s, err);
}

static int cuda_read_kv(void *impl, int32_t slot, int32_t layer, int32_t pos, float *k, float *v,
                        m40_err *err) {
    return m40_cuda_debug_read_kv(impl, slot, layer, pos, k, v, err);
}

static int cuda_kv_copy(void *impl, int32_t slot, int32_t n, void *host, int32_t n_host,
                        int to_host, m40_err *err) {
    return m40_cuda_kv_copy(impl, slot, n, host, n_host, to_host, err);
}

static void cuda_destroy(void *impl) {
    m40_cuda_destroy(impl);
}

static int cuda_switch(void *opts, const char *name, size_t len, m40_err *err) {
    return m40_cuda_set_switch(opts, name, len, err);
}

static int cuda_options(m40_cuda_options *co, const m40_backend_options *opts, m40_err *err) {
    *co = (m40_cuda_options){.gpu = opts->gpu,
                             .n_ctx = opts->n_ctx,
                             .n_slots = opts->n_slots,
                             .n_batch = opts->n_batch,
                             .k_type = m40_kv_ggml_type(opts->kv_type),
                             .v_type = m40_kv_ggml_type(kv_type_v(opts)),
                             .progress = opts->progress,
                             .progress_user = opts->progress_user};
    return parse_switches(opts->switches, co, cuda_switch, err);
}

static int create_cuda(m40_backend *be, const m40_model *model, const m40_backend_options *opts,
                       int fit_ctx, m40_err *err) {
    m40_cuda_options co;
    m40_cuda *cu;
    if (cuda_options(&co, opts, err))
        return -1;
    co.fit_ctx = fit_ctx;
    if (m40_cuda_create(&cu, model, &co, err))
        return -1;
    be->name = "cuda";
    be->n_ctx = m40_cuda_n_ctx(cu);
    snprintf(be->desc, sizeof be->desc, "%s", m40_cuda_describe(cu));
    be->impl = cu;
    be->concurrent_decode = m40_cuda_concurrent_decode(cu);
    be->forward = cuda_forward;
    be->forward_greedy = cuda_forward_greedy;
    be->forward_rows = cuda_forward_rows;
    be->memory = cuda_memory;
    be->copy_bandwidth = cuda_copy_bandwidth;
    be->read_kv = cuda_read_kv;
    be->kv_pos_bytes = m40_cuda_kv_pos_bytes(be->impl);
    be->kv_copy = cuda_kv_copy;
    be->destroy = cuda_destroy;
    return 0;
}

m40_backend_memory m40_backend_plan_vram(const m40_model *model, const m40_backend_options *opts) {
    m40_cuda_options co;
    m40_err ignored = {0};
    cuda_options(&co, opts, &ignored); /* switches do not change the sizes */
    return from_vram(m40_cuda_vram_plan(model, &co));
}

int32_t m40_backend_fit_ctx(const m40_model *model, const m40_backend_options *opts,
                            size_t free_bytes) {
    m40_cuda_options co;
    m40_err ignored = {0};
    cuda_options(&co, opts, &ignored);
    return m40_cuda_fit_ctx(model, &co, free_bytes);
}

int m40_backend_probe_gpus(int gpu, m40_gpu_report *r, m40_err *err) {
    m40_cuda_probe *p = malloc(sizeof *p);
    if (!p)
        return m40_errf(err, "out of memory");
    int rc = m40_cuda_probe_devices(gpu, p, err);
    memset(r, 0, sizeof *r);
    r->driver_version = p->driver_version;
    r->n_gpus = p->n_devs;
    r->selected = p->selected;
    r->cublas_on = p->cublas_on;
    snprintf(r->cublas, sizeof r->cublas, "%s", p->cublas);
    for (int i = 0; i < p->n_devs && i < M40_BACKEND_MAX_GPUS; i++) {
        const m40_gpu_info *d = &p->devs[i];
        m40_gpu_summary *s = &r->gpus[i];
        s->ordinal = d->ordinal;
        snprintf(s->name, sizeof s->name, "%s", d->name);
        s->cc_major = d->cc_major;
        s->cc_minor = d->cc_minor;
        s->sm_count = d->sm_count;
        s->vram_free = d->vram_free;
        s->vram_total = d->vram_total;
        s->supported = m40_gpu_is_supported(d);
    }
    free(p);
    return rc;
}

/* ---- the door ----------------------------------------------------------------- */

int m40_backend_create(m40_backend **out, const m40_model *model, const m40_backend_options *opts,
                       char *notice, size_t notice_cap, m40_err *err) {
    *out = NULL;
    if (notice_cap)
        notice[0] = '\0';
    /* the trained context: all of it on the CPU, as much as fits on CUDA */
    m40_backend_options o = *opts;
    int fit_ctx = o.n_ctx == M40_CTX_TRAINED;
    if (fit_ctx)
        o.n_ctx = model->cfg.n_ctx_train;
    if (o.n_ctx <= 0)
        return m40_errk(err, M40_ERR_BAD_INPUT,
                        "the model does not say its trained context; give --ctx-size N");
    m40_backend *be = calloc(1, sizeof *be);
    if (!be)
        return m40_errf(err, "out of memory");
    be->n_ctx = o.n_ctx; /* CUDA's fit may take less */
    int rc = 0;
    switch (o.device) {
        case M40_DEVICE_CPU:
            rc = create_cpu(be, model, &o, err);
            break;
        case M40_DEVICE_CUDA:
            rc = create_cuda(be, model, &o, fit_ctx, err) ? m40_err_wrap(err, "CUDA backend") : 0;
            break;
        case M40_DEVICE_AUTO: {
            m40_err cuda_err = {0};
            if (create_cuda(be, model, &o, fit_ctx, &cuda_err) == 0)
                break;
            /* the CPU is the fallback, and the user is told so, with why */
            if (notice_cap)
                snprintf(notice, notice_cap, "running on the CPU (slow): the CUDA backend: %s",
                         cuda_err.msg);
            be->n_ctx = o.n_ctx;
            rc = create_cpu(be, model, &o, err);
            break;
        }
    }
    if (rc) {
        free(be);
        return -1;
    }
    if (be->n_ctx < o.n_ctx && notice_cap)
        snprintf(notice, notice_cap,
                 "the trained context (%d) does not fit the GPU's free memory: context %d, the "
                 "largest that does",
                 o.n_ctx, be->n_ctx);
    be->n_slots = o.n_slots;
    be->n_vocab = model->cfg.n_vocab;
    *out = be;
    return 0;
}

void m40_backend_destroy(m40_backend *be) {
    if (!be)
        return;
    if (be->destroy && be->impl)
        be->destroy(be->impl);
    free(be);
}

int32_t m40_backend_n_ctx(const m40_backend *be) {
    return be->n_ctx;
}

const char *m40_backend_name(const m40_backend *be) {
    return be->name;
}

const char *m40_backend_describe(const m40_backend *be) {
    return be->desc;
}

int m40_backend_forward(m40_backend *be, int32_t slot, const int32_t *tokens, int32_t n,
                        int32_t pos0, float *logits, m40_err *err) {
    return be->forward(be->impl, slot, tokens, n, pos0, logits, err);
}

/* The rules of backend.h's m40_batch, checked before anything runs. */
static int check_batch(const m40_backend *be, const m40_batch *b, m40_err *err) {
    if (b->n <= 0)
        return m40_errf(err, "batch: %d rows", b->n);
    unsigned char *seen = calloc((size_t)be->n_slots, 1);
    if (!seen)
        return m40_errf(err, "out of memory");
    int rc = 0;
    for (int32_t i = 0; rc == 0 && i < b->n; i++) {
        int32_t s = b->slot[i], p = b->pos[i];
        int same = i > 0 && b->slot[i - 1] == s;
        if (s < 0 || s >= be->n_slots)
            rc = m40_errf(err, "batch row %d: slot %d outside 0..%d", i, s, be->n_slots - 1);
        else if (b->token[i] < 0 || b->token[i] >= be->n_vocab)
            rc = m40_errk(err, M40_ERR_BAD_INPUT,
                          "batch row %d: token id %d outside the vocabulary of %d", i, b->token[i],
                          be->n_vocab);
        else if (p < 0 || p >= be->n_ctx)
            rc =
                m40_errk(err, M40_ERR_TOO_LONG,
                         "batch row %d: position %d does not fit a context of %d", i, p, be->n_ctx);
        else if (same ? p != b->pos[i - 1] + 1 : seen[s])
            rc = m40_errf(err,
                          "batch row %d: slot %d's rows must be together, at consecutive "
                          "positions",
                          i, s);
        else if (b->want[i] > M40_WANT_ARGMAX ||
                 (b->want[i] == M40_WANT_ARGMAX && !be->forward_greedy))
            rc = m40_errk(err, M40_ERR_UNSUPPORTED, "batch row %d: the %s backend cannot give %s",
                          i, be->name, b->want[i] == M40_WANT_ARGMAX ? "an argmax" : "that");
        else
            seen[s] = 1;
    }
    free(seen);
    return rc;
}

/* A batch as one forward call per slot's rows (cut after each wanted row),
 * the calls that running each sequence alone in the same pieces makes: for
 * a backend without a batched forward. */
static int forward_runs(m40_backend *be, const m40_batch *b, float *logits, int32_t *argmax,
                        m40_err *err) {
    float *spare = NULL; /* a run whose logits nobody wants writes here */
    int rc = 0;
    for (int32_t i = 0, j; rc == 0 && i < b->n; i = j + 1) {
        for (j = i; j + 1 < b->n && b->slot[j + 1] == b->slot[i] && !b->want[j];)
            j++;
        int32_t slot = b->slot[i], n = j - i + 1, pos = b->pos[i];
        if (b->want[j] == M40_WANT_ARGMAX) {
            rc = be->forward_greedy(be->impl, slot, b->token + i, n, pos, argmax++, err);
            continue;
        }
        float *out = logits;
        if (b->want[j] == M40_WANT_LOGITS) {
            logits += be->n_vocab;
        } else {
            if (!spare && !(spare = malloc((size_t)be->n_vocab * sizeof *spare))) {
                rc = m40_errf(err, "out of memory");
                break;
            }
            out = spare;
        }
        rc = be->forward(be->impl, slot, b->token + i, n, pos, out, err);
    }
    free(spare);
    return rc ? -1 : 0;
}

/* The decode rows of a batch (each a slot's only row, and wanted) in one
 * forward_rows step; every other slot's rows as forward_runs runs them. */
typedef struct rows_plan {
    int32_t *slot, *token, *pos, *argmax;
    float **logits;
    int32_t **argmax_to; /* where row k's argmax goes (NULL: it gives logits) */
} rows_plan;

static int forward_with_rows(m40_backend *be, const m40_batch *b, float *logits, int32_t *argmax,
                             m40_err *err) {
    size_t n = (size_t)b->n;
    rows_plan r = {malloc(n * sizeof(int32_t)), malloc(n * sizeof(int32_t)),
                   malloc(n * sizeof(int32_t)), malloc(n * sizeof(int32_t)),
                   malloc(n * sizeof(float *)), malloc(n * sizeof(int32_t *))};
    int rc = r.slot && r.token && r.pos && r.argmax && r.logits && r.argmax_to
                 ? 0
                 : m40_errf(err, "out of memory");
    int32_t k = 0;
    for (int32_t i = 0, j; rc == 0 && i < b->n; i = j + 1) {
        for (j = i; j + 1 < b->n && b->slot[j + 1] == b->slot[i];)
            j++;
        if (j == i && b->want[i] != M40_WANT_NONE) {
            r.slot[k] = b->slot[i], r.token[k] = b->token[i], r.pos[k] = b->pos[i];
            r.logits[k] = b->want[i] == M40_WANT_LOGITS ? logits : NULL;
            r.argmax_to[k] = b->want[i] == M40_WANT_ARGMAX ? argmax : NULL;
            k++;
        } else {
            m40_batch run = {j - i + 1, b->token + i, b->slot + i, b->pos + i, b->want + i};
            rc = forward_runs(be, &run, logits, argmax, err);
        }
        for (int32_t t = i; t <= j; t++) { /* past this run's outputs */
            if (b->want[t] == M40_WANT_LOGITS)
                logits += be->n_vocab;
            else if (b->want[t] == M40_WANT_ARGMAX)
                argmax++;
        }
    }
    if (rc == 0 && k > 0)
        rc = be->forward_rows(be->impl, k, r.slot, r.token, r.pos, r.logits, r.argmax, err);
    for (int32_t t = 0; rc == 0 && t < k; t++) {
        if (r.argmax_to[t])
            *r.argmax_to[t] = r.argmax[t];
    }
    free(r.slot), free(r.token), free(r.pos), free(r.argmax), free(r.logits), free(r.argmax_to);
    return rc ? -1 : 0;
}

int m40_backend_forward_batch(m40_backend *be, const m40_batch *b, float *logits, int32_t *argmax,
                              m40_err *err) {
    if (check_batch(be, b, err))
        return -1;
    if (!be->forward_batch && be->forward_rows)
        return forward_with_rows(be, b, logits, argmax, err);
    if (!be->forward_batch)
        return forward_runs(be, b, logits, argmax, err);
    return be->forward_batch(be->impl, b, logits); /* no has_greedy: no argmax rows */
}

int m40_backend_has_greedy(const m40_backend *be) {
    return be->forward_greedy != NULL;
}

int m40_backend_forward_greedy(m40_backend *be, int32_t slot, const int32_t *tokens, int32_t n,
                               int32_t pos0, int32_t *token, m40_err *err) {
    if (!be->forward_greedy)
        return m40_errk(err, M40_ERR_UNSUPPORTED, "the %s backend has no greedy forward", be->name);
    return be->forward_greedy(be->impl, slot, tokens, n, pos0, token, err);
}

int m40_backend_concurrent_decode(const m40_backend *be) {
    return be->concurrent_decode;
}

m40_backend_memory m40_backend_memory_used(const m40_backend *be) {
    return be->memory(be->impl);
}

int m40_backend_copy_bandwidth(m40_backend *be, double *gb_per_s, m40_err *err) {
    *gb_per_s = 0.0;
    return be->copy_bandwidth ? be->copy_bandwidth(be->impl, gb_per_s, err) : 0;
}

int m40_backend_read_kv(m40_backend *be, int32_t slot, int32_t layer, int32_t pos, float *k,
                        float *v, m40_err *err) {
    if (!be->read_kv)
        return m40_errk(err, M40_ERR_UNSUPPORTED, "the %s backend has no KV view", be->name);
    return be->read_kv(be->impl, slot, layer, pos, k, v, err);
}

size_t m40_backend_kv_bytes(const m40_backend *be, int32_t n) {
    return n > 0 ? (size_t)n * be->kv_pos_bytes : 0;
}

static int check_kv_copy(const m40_backend *be, int32_t slot, int32_t n, int32_t n_host,
                         m40_err *err) {
    if (slot < 0 || slot >= be->n_slots || n < 0 || n > n_host || n_host > be->n_ctx)
        return m40_errf(err, "kv copy: slot %d, %d of %d positions out of range (%d slots of %d)",
                        slot, n, n_host, be->n_slots, be->n_ctx);
    return 0;
}

int m40_backend_kv_save(m40_backend *be, int32_t slot, int32_t n, void *dst, m40_err *err) {
    if (check_kv_copy(be, slot, n, n, err))
        return -1;
    return be->kv_copy(be->impl, slot, n, dst, n, 1, err);
}

int m40_backend_kv_restore(m40_backend *be, int32_t slot, const void *src, int32_t n_saved,
                           int32_t n, m40_err *err) {
    if (check_kv_copy(be, slot, n, n_saved, err))
        return -1;
    return be->kv_copy(be->impl, slot, n, (void *)src, n_saved, 0, err);
}
