/* cuda_backend.c - see cuda_backend.h: the CUDA backend's set-up and
 * tear-down (the VRAM plan, one allocation each for weights, KV cache and
 * activations, the lanes and their streams, decode graphs) and the device
 * queries bench and info use. The weights are placed by weights.c, the
 * forward pass runs in forward.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "quant/ggml_types.h"
#include "quant/quant.h"
#include "util/clock.h"
#include "util/log.h"

int m40_cuda_set_switch(m40_cuda_options *o, const char *name, size_t len, m40_err *err) {
    if (len == 9 && !memcmp(name, "no-graphs", 9))
        o->no_graphs = 1;
    else if (len == 10 && !memcmp(name, "one-stream", 10))
        o->one_stream = 1;
    else if (len == 8 && !memcmp(name, "no-batch", 8))
        o->no_batch = 1;
    else if (len == 11 && !memcmp(name, "pieces-of-4", 11))
        o->pieces_of_4 = 1;
    else if (len == 10 && !memcmp(name, "tiled-attn", 10))
        o->tiled_attn = 1;
    else if (len == 10 && !memcmp(name, "split-attn", 10))
        o->tiled_attn = -1;
    else if (len == 11 && !memcmp(name, "scalar-attn", 11))
        o->vec_attn = -1;
    else if (len == 8 && !memcmp(name, "vec-attn", 8))
        o->vec_attn = 1;
    else if (len == 11 && !memcmp(name, "prompt-gemv", 11))
        o->prompt_gemv = 1;
    else if (len == 11 && !memcmp(name, "prompt-gemm", 11))
        o->prompt_gemv = -1;
    else if (len == 12 && !memcmp(name, "batch-rows-4", 12))
        o->batch_rows = 4;
    else if (len == 12 && !memcmp(name, "batch-rows-8", 12))
        o->batch_rows = 8;
    else if (len == 13 && !memcmp(name, "batch-rows-16", 13))
        o->batch_rows = 16;
    else
        return m40_errk(err, M40_ERR_UNSUPPORTED,
                        "the cuda backend has no switch \"%.*s\" (it has no-graphs, one-stream, "
                        "no-batch, pieces-of-4, tiled-attn, split-attn, vec-attn, scalar-attn, "
                        "prompt-gemv, prompt-gemm, batch-rows-4, batch-rows-8, batch-rows-16)",
                        (int)len, name);
    return 0;
}

/* ---- sizes ----------------------------------------------------------------- */

/* Attention partials of a lane: a decode step's or, on a lane that also
 * runs prompts, a prefill chunk's, the larger. */
static size_t attn_scratch_floats(const m40_cuda *cu, const lane *ln) {
    const m40_model_config *c = &cu->model->cfg;
    size_t pre = m40_cuda_attn_scratch_floats(ln->batch, c->n_head, c->head_dim, cu->opt.n_ctx,
                                              M40_ATTN_CHUNK);
    size_t dec = m40_cuda_attn_scratch_floats(1, c->n_head, c->head_dim, cu->opt.n_ctx,
                                              M40_ATTN_CHUNK_DECODE);
    /* decode rows: each split as it would be alone (m40_cuda_attention_rows);
     * sized for the most SMs the split policy counts, as plan_sizes runs
     * before the GPU is open (and the measure must equal the layout) */
    const m40_cuda_attn_dims dims = {c->n_head, c->n_head_kv, c->head_dim, M40_ATTN_DECODE_MAX_SMS};
    size_t rows = (size_t)ln->n_dec * c->n_head *
                  m40_cuda_attn_decode_splits(&dims, cu->opt.n_ctx) * (c->head_dim + 2);
    size_t most = ln->batch > 1 && pre > dec ? pre : dec;
    return rows > most ? rows : most;
}

/* One lane's activations from base + *off (base 0: only measure). */
static void layout_lane(m40_cuda *cu, lane *ln, m40_dptr base, size_t *off) {
    const m40_model_config *c = &cu->model->cfg;
    size_t B = (size_t)ln->rows, n_out = ln->n_dec > 1 ? (size_t)ln->n_dec : 1;
    m40_dptr *slots[] = {&ln->x,      &ln->xb,       &ln->qkv,   &ln->att,  &ln->gu,  &ln->hb,
                         &ln->logits, &ln->attn_tmp, &ln->deq,   &ln->step, &ln->cs,  &ln->argmax,
                         &ln->cs_swa, &ln->m_logits, &ln->m_ids, &ln->m_w,  &ln->m_g, &ln->m_gate,
                         &ln->m_up,   &ln->m_y,      &ln->m_all, &ln->m_idx};
    /* a mixture of experts' buffers (forward.c moe_mlp), 4-byte elements */
    const size_t ne = c->n_expert > 0 ? (size_t)c->n_expert : 0;
    const size_t k = ne ? (size_t)c->n_expert_used : 0, f = ne ? (size_t)c->n_ff_exp : 0;
    const size_t dm = ne ? (size_t)c->n_embd : 0;
    size_t floats[] = {
        B * c->n_embd,
        B * cu->wide,
        B * cu->qkv_dim,
        B * cu->q_dim,
        c->n_expert > 0 ? 0 : B * 2 * c->n_ff, /* gate|up: experts have their own */
        c->n_expert > 0 ? 0 : B * c->n_ff,
        n_out * c->n_vocab,
        attn_scratch_floats(cu, ln),
        ln->deq_floats,
        4 * B,           /* ids, pos, slots, chunks (int32) */
        B * c->rope_dim, /* (cos, sin) pairs */
        n_out,
        c->swa_window > 0 ? B * c->rope_dim : 0, /* the sliding layers' pairs */
        B * ne,
        B * k,
        B * k,
        B * dm,
        B * f,
        B * f,
        B * dm,
        B * k * dm,
        2 * B * k,
    };
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        if (base)
            *slots[i] = base + *off;
        *off += m40_cuda_align256(floats[i] * sizeof(float));
    }
    if (base) {
        ln->ids = ln->step;
        ln->pos = ln->step + B * sizeof(int32_t);
        ln->slots = ln->step + 2 * B * sizeof(int32_t);
        ln->chunks = ln->step + 3 * B * sizeof(int32_t);
    }
}

/* Every lane's activations; returns the total bytes and fills the
 * pointers when base != 0. */
static size_t layout_scratch(m40_cuda *cu, m40_dptr base) {
    size_t off = 0;
    for (int i = 0; i < cu->n_lanes; i++)
        layout_lane(cu, &cu->lanes[i], base, &off);
    return off;
}

/* Sets the sizes (weights, KV, lanes, scratch) for cu->model and cu->opt. */
static void plan_sizes(m40_cuda *cu) {
    const m40_model *m = cu->model;
    const m40_model_config *c = &m->cfg;
    cu->kv_dim = c->n_head_kv * c->head_dim;
    cu->q_dim = c->n_head * c->head_dim;
    cu->qkv_dim = cu->q_dim + 2 * cu->kv_dim;
    cu->wide = c->n_embd > cu->q_dim ? c->n_embd : cu->q_dim;
    cu->weights_bytes = m40_cuda_layout_weights(cu, 0);
    uint32_t kt = cu->opt.k_type;
    cu->kv_type = kt == M40_GGML_F32    ? M40_CUDA_KV_F32
                  : kt == M40_GGML_Q8_0 ? M40_CUDA_KV_Q8_0
                  : kt == M40_GGML_Q4_0 ? M40_CUDA_KV_Q4_0
                                        : M40_CUDA_KV_F16;
    cu->kv_row = m40_ggml_row_bytes(kt, (uint64_t)cu->kv_dim);
    cu->kv_bytes = (size_t)cu->opt.n_slots * c->n_layer * cu->opt.n_ctx *
                   (m40_ggml_row_bytes(cu->opt.k_type, (uint64_t)cu->kv_dim) +
                    m40_ggml_row_bytes(cu->opt.v_type, (uint64_t)cu->kv_dim));
    cu->n_lanes = cu->opt.one_stream ? 1 : 2;
    cu->lanes[0].batch = cu->opt.n_batch;
    /* Prefill dequantizes 64 MiB of weight rows at a time. */
    cu->lanes[0].deq_floats = (size_t)16 << 20;
    cu->lanes[1].batch = 1;
    cu->lanes[1].deq_floats = 0;
    /* the decode lane (the only one with one_stream) also runs decode rows
     * of several sequences, unless no-batch asks for one at a time */
    lane *dl = &cu->lanes[cu->n_lanes - 1];
    dl->n_dec = cu->opt.no_batch ? 0 : cu->opt.n_slots;
    if (dl->n_dec > M40_CUDA_MAX_DECODE)
        dl->n_dec = M40_CUDA_MAX_DECODE;
    for (int i = 0; i < 2; i++)
        cu->lanes[i].rows =
            cu->lanes[i].batch > cu->lanes[i].n_dec ? cu->lanes[i].batch : cu->lanes[i].n_dec;
    cu->scratch_bytes = layout_scratch(cu, 0);
}

m40_cuda_vram m40_cuda_vram_plan(const m40_model *model, const m40_cuda_options *opts) {
    m40_cuda cu;
    memset(&cu, 0, sizeof cu);
    cu.model = model;
    cu.opt = *opts;
    plan_sizes(&cu);
    return m40_cuda_vram_used(&cu);
}

static size_t plan_total(const m40_model *model, const m40_cuda_options *opts, int32_t n_ctx) {
    m40_cuda_options o = *opts;
    o.n_ctx = n_ctx;
    m40_cuda_vram v = m40_cuda_vram_plan(model, &o);
    return v.weights + v.kv + v.scratch;
}

int32_t m40_cuda_fit_ctx(const m40_model *model, const m40_cuda_options *opts, size_t free_bytes) {
    if (free_bytes <= M40_CUDA_FIT_RESERVE)
        return 0;
    size_t room = free_bytes - M40_CUDA_FIT_RESERVE;
    /* the plan grows with the context: the largest k with k * 256 fitting */
    int32_t lo = 0, hi = opts->n_ctx / 256;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo + 1) / 2;
        if (plan_total(model, opts, mid * 256) <= room)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo * 256;
}

int32_t m40_cuda_n_ctx(const m40_cuda *cu) {
    return cu->opt.n_ctx;
}

/* ---- set-up and tear-down ---------------------------------------------------- */

/* Checks the plan against the free VRAM before allocating anything: with
 * fit_ctx a context too large for it shrinks to the largest that fits;
 * otherwise the error says what that is. */
static int check_fit(m40_cuda *cu, m40_err *err) {
    size_t need = cu->weights_bytes + cu->kv_bytes + cu->scratch_bytes;
    size_t free_b = cu->gpu.info.vram_free;
    if (need <= free_b)
        return 0;
    int32_t fit = m40_cuda_fit_ctx(cu->model, &cu->opt, free_b);
    if (cu->opt.fit_ctx && fit > 0) {
        cu->opt.n_ctx = fit;
        plan_sizes(cu);
        return 0;
    }
    double mib = 1024.0 * 1024.0;
    char hint[96];
    if (fit > 0)
        snprintf(hint, sizeof hint, "the largest context that fits is --ctx-size %d", fit);
    else
        snprintf(hint, sizeof hint, "not even a context of 256 fits");
    return m40_errf(err,
                    "model does not fit on %s at context %d: needs %.0f MiB (weights %.0f, KV "
                    "%.0f, scratch %.0f), %.0f MiB free; %s",
                    cu->gpu.info.name, cu->opt.n_ctx, need / mib, cu->weights_bytes / mib,
                    cu->kv_bytes / mib, cu->scratch_bytes / mib, free_b / mib, hint);
}

static int alloc_all(m40_cuda *cu, m40_err *err) {
    if (m40_gpu_alloc(&cu->gpu, &cu->weights, cu->weights_bytes, err) ||
        m40_gpu_alloc(&cu->gpu, &cu->k_cache, cu->kv_bytes / 2, err) ||
        m40_gpu_alloc(&cu->gpu, &cu->v_cache, cu->kv_bytes / 2, err) ||
        m40_gpu_alloc(&cu->gpu, &cu->scratch, cu->scratch_bytes, err))
        return -1;
    /* the layouts must come out as long as the sizes plan_sizes measured
     * with them (before the GPU was open): a buffer that grew in between
     * would end past its allocation */
    size_t w = m40_cuda_layout_weights(cu, cu->weights), s = layout_scratch(cu, cu->scratch);
    if (w != cu->weights_bytes || s != cu->scratch_bytes)
        return m40_errf(err,
                        "cuda: laid out %zu bytes of weights and %zu of scratch where %zu and %zu "
                        "were planned (a bug: please report it)",
                        w, s, cu->weights_bytes, cu->scratch_bytes);
    return 0;
}

/* The lanes' launchers and step buffers: the decode lane's on a stream of
 * its own at the highest priority. */
static int init_lanes(m40_cuda *cu, m40_err *err) {
    if (m40_cuda_ops_init(&cu->lanes[0].ops, &cu->gpu, err))
        return -1;
    if (cu->opt.pieces_of_4)
        cu->lanes[0].ops.gemvb_piece = 4;
    cu->lanes[0].ops.gemvb_rows = cu->opt.batch_rows;
    if (cu->opt.vec_attn)
        cu->lanes[0].ops.attn_scalar = cu->opt.vec_attn < 0;
    if (cu->n_lanes > 1) {
        cu->lanes[1].ops = cu->lanes[0].ops;
        if (m40_gpu_stream_create(&cu->gpu, 1, &cu->lanes[1].ops.stream, err))
            return -1;
    }
    if (m40_gpu_stream_create(&cu->gpu, 0, &cu->copy_stream, err))
        return -1;
    for (int i = 0; i < cu->n_lanes; i++) {
        lane *ln = &cu->lanes[i];
        ln->host_step = calloc(4 * (size_t)ln->rows, sizeof *ln->host_step);
        if (cu->model->cfg.n_expert > 0) { /* moe_mlp's host side */
            size_t pairs = (size_t)ln->rows * (size_t)cu->model->cfg.n_expert_used;
            ln->h_ids = calloc(pairs, sizeof *ln->h_ids);
            ln->h_start = calloc((size_t)cu->model->cfg.n_expert + 1, sizeof *ln->h_start);
            ln->h_idx = calloc(2 * pairs, sizeof *ln->h_idx);
            if (!ln->h_ids || !ln->h_start || !ln->h_idx)
                return m40_errf(err, "out of memory");
        }
        if (!ln->host_step)
            return m40_errf(err, "out of memory");
    }
    return 0;
}

/* Decode graphs, on the decode lane, when the driver has them and the
 * options allow. */
static int init_graphs(m40_cuda *cu, m40_err *err) {
    /* a mixture of experts reads its picks back on the host within each
     * layer (forward.c moe_mlp), which a graph cannot hold */
    if (cu->opt.no_graphs || !m40_gpu_has_graphs(&cu->gpu) || cu->model->cfg.n_expert > 0)
        return 0;
    cu->n_buckets = 1;
    while ((M40_ATTN_CHUNK_DECODE << (cu->n_buckets - 1)) < cu->opt.n_ctx)
        cu->n_buckets++;
    lane *ln = &cu->lanes[cu->n_lanes - 1];
    ln->graphs = calloc((size_t)cu->opt.n_slots * cu->n_buckets, sizeof *ln->graphs);
    if (ln->n_dec > 1)
        ln->row_graphs = calloc((size_t)(ln->n_dec - 1) * cu->n_buckets, sizeof *ln->row_graphs);
    return ln->graphs && (ln->n_dec <= 1 || ln->row_graphs) ? 0 : m40_errf(err, "out of memory");
}

/* Waits for everything queued so far, the weight uploads on the legacy
 * stream included, before the non-blocking decode stream may read them. */
static int sync_all(m40_cuda *cu, m40_err *err) {
    const m40_cuda_driver *d = cu->gpu.drv;
    return m40_cu_check(d, d->cuCtxSynchronize(), "cuCtxSynchronize", err);
}

int m40_cuda_create(m40_cuda **out, const m40_model *model, const m40_cuda_options *opts,
                    m40_err *err) {
    *out = NULL;
    const m40_model_config *c = &model->cfg;
    if (opts->n_ctx <= 0 || opts->n_slots <= 0 || opts->n_batch <= 0)
        return m40_errf(err, "cuda backend: n_ctx, n_slots and n_batch must be positive");
    uint32_t kt = opts->k_type;
    if (kt != opts->v_type ||
        (kt != M40_GGML_F16 && kt != M40_GGML_F32 && kt != M40_GGML_Q8_0 && kt != M40_GGML_Q4_0))
        return m40_errk(err, M40_ERR_UNSUPPORTED,
                        "the CUDA backend keeps its KV cache in f16, f32, q8_0 or q4_0, the same "
                        "for keys and values");
    if ((kt == M40_GGML_Q8_0 || kt == M40_GGML_Q4_0) && c->head_dim % 32 != 0)
        return m40_errk(err, M40_ERR_UNSUPPORTED,
                        "a %s KV cache needs head_dim a multiple of 32, not %d",
                        m40_ggml_type_name(kt), c->head_dim);
    m40_cuda *cu = calloc(1, sizeof *cu);
    if (!cu)
        return m40_errf(err, "out of memory");
    cu->model = model;
    cu->opt = *opts;
    plan_sizes(cu);
    cu->layers = calloc((size_t)c->n_layer, sizeof *cu->layers);
    /* at most 4 model-wide tensors and 20 per layer (m40_cuda_layout_weights) */
    cu->placed = calloc(4 + 20 * (size_t)c->n_layer, sizeof *cu->placed);
    m40_gpu_options go = {.gpu = opts->gpu, .cublas = M40_CUBLAS_AUTO};
    if (!cu->layers || !cu->placed) {
        m40_cuda_destroy(cu);
        return m40_errf(err, "out of memory");
    }
    if (m40_cublas_policy_from_env(&go.cublas, err) || m40_gpu_open(&cu->gpu, &go, err) ||
        init_lanes(cu, err) || m40_cuda_check_model(cu, err) || check_fit(cu, err) ||
        alloc_all(cu, err) || m40_cuda_upload_weights(cu, err) ||
        m40_cuda_repack_weights(cu, err) || init_graphs(cu, err) || sync_all(cu, err)) {
        m40_cuda_destroy(cu);
        return -1;
    }
    snprintf(cu->desc, sizeof cu->desc, "%s (sm_%d%d), cuBLAS %s", cu->gpu.info.name,
             cu->gpu.info.cc_major, cu->gpu.info.cc_minor,
             m40_cublas_active(&cu->gpu.blas) ? "on" : "off");
    m40_log_info("CUDA %s: weights %.0f MiB, KV %.0f MiB, scratch %.0f MiB", cu->desc,
                 cu->weights_bytes / 1048576.0, cu->kv_bytes / 1048576.0,
                 cu->scratch_bytes / 1048576.0);
    *out = cu;
    return 0;
}

void m40_cuda_destroy(m40_cuda *cu) {
    if (!cu)
        return;
    if (cu->gpu.drv) {
        m40_gpu_make_current(&cu->gpu, NULL);
        for (int l = 0; l < cu->n_lanes; l++) {
            lane *ln = &cu->lanes[l];
            for (int i = 0; ln->graphs && i < cu->opt.n_slots * cu->n_buckets; i++)
                m40_gpu_graph_free(&cu->gpu, ln->graphs[i]);
            for (int i = 0; ln->row_graphs && i < (ln->n_dec - 1) * cu->n_buckets; i++)
                m40_gpu_graph_free(&cu->gpu, ln->row_graphs[i]);
        }
        if (cu->n_lanes > 1) /* the decode lane's own stream (NULL if never made) */
            m40_gpu_stream_destroy(&cu->gpu, cu->lanes[1].ops.stream);
        m40_gpu_stream_destroy(&cu->gpu, cu->copy_stream);
        m40_gpu_free(&cu->gpu, cu->weights);
        m40_gpu_free(&cu->gpu, cu->k_cache);
        m40_gpu_free(&cu->gpu, cu->v_cache);
        m40_gpu_free(&cu->gpu, cu->scratch);
        m40_gpu_close(&cu->gpu);
    }
    for (int l = 0; l < 2; l++) {
        free(cu->lanes[l].graphs);
        free(cu->lanes[l].row_graphs);
        free(cu->lanes[l].host_step);
        free(cu->lanes[l].h_ids);
        free(cu->lanes[l].h_start);
        free(cu->lanes[l].h_idx);
    }
    free(cu->layers);
    free(cu->placed);
    free(cu);
}

/* ---- queries ------------------------------------------------------------------ */

const char *m40_cuda_describe(const m40_cuda *cu) {
    return cu->desc;
}

int m40_cuda_debug_read_kv(m40_cuda *cu, int32_t slot, int32_t layer, int32_t pos, float *k,
                           float *v, m40_err *err) {
    const m40_model_config *c = &cu->model->cfg;
    if (slot < 0 || slot >= cu->opt.n_slots || layer < 0 || layer >= c->n_layer || pos < 0 ||
        pos >= cu->opt.n_ctx)
        return m40_errf(err, "debug_read_kv: slot %d layer %d pos %d out of range", slot, layer,
                        pos);
    if (m40_gpu_make_current(&cu->gpu, err))
        return -1;
    size_t bytes = cu->kv_row, off = (size_t)pos * bytes;
    unsigned char *h = malloc(2 * bytes);
    if (!h)
        return m40_errf(err, "out of memory");
    /* the row as the CPU decodes its own cache's (quant.h) */
    int rc = m40_gpu_sync(&cu->gpu, err) ||
             m40_gpu_download(&cu->gpu, h, m40_cuda_cache_at(cu, cu->k_cache, slot, layer) + off,
                              bytes, err) ||
             m40_gpu_download(&cu->gpu, h + bytes,
                              m40_cuda_cache_at(cu, cu->v_cache, slot, layer) + off, bytes, err) ||
             m40_dequantize_row(cu->opt.k_type, h, k, cu->kv_dim, err) ||
             m40_dequantize_row(cu->opt.k_type, h + bytes, v, cu->kv_dim, err);
    free(h);
    return rc ? -1 : 0;
}

size_t m40_cuda_kv_pos_bytes(const m40_cuda *cu) {
    return (size_t)cu->model->cfg.n_layer * 2 * cu->kv_row;
}

/* The copies run on a stream of their own and are waited for, so a
 * restored prefix is in place before the slot's next forward, and no lane
 * (another thread's decode step, maybe capturing a graph) waits for them
 * or takes them in. The slot is idle: its last forward has been waited
 * for, and nothing reads or writes its rows meanwhile. */
int m40_cuda_kv_copy(m40_cuda *cu, int32_t slot, int32_t n, void *host, int32_t n_host, int to_host,
                     m40_err *err) {
    size_t row = cu->kv_row;
    unsigned char *h = host;
    if (m40_gpu_make_current(&cu->gpu, err))
        return -1;
    for (int32_t layer = 0; layer < cu->model->cfg.n_layer; layer++) {
        m40_dptr k = m40_cuda_cache_at(cu, cu->k_cache, slot, layer);
        m40_dptr v = m40_cuda_cache_at(cu, cu->v_cache, slot, layer);
        unsigned char *hk = h, *hv = h + (size_t)n_host * row;
        size_t bytes = (size_t)n * row;
        m40_cu_stream st = cu->copy_stream;
        int rc = to_host ? m40_gpu_download_on(&cu->gpu, st, hk, k, bytes, err) ||
                               m40_gpu_download_on(&cu->gpu, st, hv, v, bytes, err)
                         : m40_gpu_upload_on(&cu->gpu, st, k, hk, bytes, err) ||
                               m40_gpu_upload_on(&cu->gpu, st, v, hv, bytes, err);
        if (rc)
            return -1;
        h += 2 * (size_t)n_host * row;
    }
    return m40_gpu_sync_on(&cu->gpu, cu->copy_stream, err);
}

int m40_cuda_copy_bandwidth(m40_cuda *cu, double *gb_per_s, m40_err *err) {
    size_t bytes = (size_t)256 << 20;
    m40_dptr a = 0, b = 0;
    const m40_cuda_driver *d = cu->gpu.drv;
    *gb_per_s = 0.0;
    if (m40_gpu_make_current(&cu->gpu, err) || m40_gpu_alloc(&cu->gpu, &a, bytes, err) ||
        m40_gpu_alloc(&cu->gpu, &b, bytes, err)) {
        m40_gpu_free(&cu->gpu, a);
        return -1;
    }
    double best = 0.0;
    int rc = 0;
    for (int i = 0; rc == 0 && i < 6; i++) {
        double t0 = m40_clock_s();
        rc = m40_cu_check(d, d->cuMemcpyDtoD(b, a, bytes), "cuMemcpyDtoD", err) ||
             m40_cu_check(d, d->cuCtxSynchronize(), "cuCtxSynchronize", err);
        double s = m40_clock_s() - t0;
        double gbps = s > 0.0 ? 2.0 * (double)bytes / s / 1e9 : 0.0; /* read + write */
        if (i > 0 && gbps > best)
            best = gbps; /* the first copy is a warm-up */
    }
    m40_gpu_free(&cu->gpu, a);
    m40_gpu_free(&cu->gpu, b);
    *gb_per_s = best;
    return rc ? -1 : 0;
}

m40_cuda_vram m40_cuda_vram_used(const m40_cuda *cu) {
    m40_cuda_vram v = {cu->weights_bytes, cu->kv_bytes, cu->scratch_bytes};
    return v;
}

int m40_cuda_concurrent_decode(const m40_cuda *cu) {
    return cu->n_lanes > 1;
}

/* ---- what info shows ---------------------------------------------------------- */

int m40_cuda_probe_devices(int gpu, m40_cuda_probe *p, m40_err *err) {
    memset(p, 0, sizeof *p);
    p->n_devs = -1;
    p->selected = -1;
    const m40_cuda_driver *drv = m40_cuda_driver_get(err);
    if (!drv)
        return -1;
    p->driver_version = drv->driver_version;
    int n = m40_cuda_list_devices(drv, p->devs, M40_GPU_MAX, 1, err);
    if (n < 0)
        return -1;
    p->n_devs = n;
    /* open it as a backend would: proves the kernels load, tells cuBLAS */
    m40_gpu_options go = {.gpu = gpu, .cublas = M40_CUBLAS_AUTO};
    m40_gpu g;
    if (m40_cublas_policy_from_env(&go.cublas, err) || m40_gpu_open(&g, &go, err))
        return -1;
    for (int i = 0; i < n; i++) {
        if (p->devs[i].ordinal == g.info.ordinal)
            p->selected = i;
    }
    p->cublas_on = m40_cublas_active(&g.blas);
    if (p->cublas_on)
        snprintf(p->cublas, sizeof p->cublas, "%s, version %d", g.blas.libname, g.blas.version);
    else
        snprintf(p->cublas, sizeof p->cublas, "%s", g.blas.why_off);
    m40_gpu_close(&g);
    return 0;
}
