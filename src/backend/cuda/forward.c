/* forward.c - the llama-family forward pass on the GPU.
 *
 * The same steps as the CPU reference (src/backend/cpu/forward.c), as
 * kernel launches on one stream:
 *
 *   ids[T], pos[T] --upload--> (the only host -> device copy of a step)
 *   x[T][d]   = dequant_rows(token_embd, ids)
 *   cs[T][rope_dim/2] = rope_table(pos)                  once per step
 *   for each layer:
 *     xb = rmsnorm(x) * attn_norm
 *     q, k, v = xb W{q,k,v} (+ bias)       T = 1: gemv; T > 1: dequant + SGEMM
 *     rope_apply(q), rope_apply(k)
 *     kv_store(k, v) into cache[slot][layer] at pos   (FP16)
 *     att = attention(q, cache, pos)                  (split over the context)
 *     x += att Wo
 *     xb = rmsnorm(x) * ffn_norm
 *     x += (swiglu(xb Wgate, xb Wup)) Wdown
 *   logits[n_vocab] = rmsnorm(x[T-1]) Wout  --download--> host (or argmax: 4 bytes)
 *
 * Prefill products (T > 1) follow the precision policy: each weight matrix
 * is dequantized, a chunk of rows at a time, into an FP32 scratch and
 * multiplied in FP32 (cublasSgemm, or our tiled kernel with cuBLAS off).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/ops.h"
#include "gguf/gguf.h"
#include "quant/fp16.h"
#include "util/log.h"

typedef m40_dweight dweight;

typedef struct dlayer {
    dweight attn_norm, wq, wk, wv, wo, bq, bk, bv, ffn_norm, gate, up, down;
} dlayer;

struct m40_cuda {
    m40_gpu gpu;
    m40_cuda_ops ops;
    const m40_model *model;
    m40_backend_options opt;
    char desc[192];
    int kv_dim, q_dim, wide;
    m40_dptr weights; /* one allocation holding every tensor */
    size_t weights_bytes;
    dweight tok_embd, output_norm, output, rope_freqs;
    dlayer *layers;
    m40_dptr k_cache, v_cache; /* [n_slots][n_layer][n_ctx][kv_dim] FP16 */
    size_t kv_bytes;
    /* activations and scratch (one allocation) */
    m40_dptr scratch;
    size_t scratch_bytes;
    m40_dptr x, xb, q, k, v, att, hb, hb2, logits, attn_tmp, deq, ids, pos, cs, argmax;
    size_t deq_floats;
    int32_t *host_pos;
};

/* ---- launch helpers ----------------------------------------------------- */

/* y[T][w.rows] = x[T][w.cols] W^T (+ bias). */
static int matmul(m40_cuda *cu, m40_dptr y, const dweight *w, const dweight *bias, m40_dptr x,
                  int T, m40_err *err) {
    m40_cuda_ops *ops = &cu->ops;
    if (T == 1)
        return m40_cuda_gemv(ops, w, y, x, bias ? bias->ptr : 0, err);
    int chunk = (int)(cu->deq_floats / (size_t)w->cols);
    if (chunk > w->rows)
        chunk = w->rows;
    m40_cublas *blas = &cu->gpu.blas;
    for (int r0 = 0; r0 < w->rows; r0 += chunk) {
        int n = w->rows - r0 < chunk ? w->rows - r0 : chunk;
        if (m40_cuda_dequant_rows(ops, w, cu->deq, 0, r0, n, err))
            return -1;
        m40_dptr c = y + (size_t)r0 * sizeof(float);
        if (m40_cublas_active(blas)) {
            /* Row-major Y[T][rows] is column-major rows x T: Y = W X^T with
             * W (n x cols, row-major = cols x n column-major, transposed). */
            const float one = 1.0f, zero = 0.0f;
            int st =
                blas->sgemm(blas->handle, M40_CUBLAS_OP_T, M40_CUBLAS_OP_N, n, T, w->cols, &one,
                            (const float *)(uintptr_t)cu->deq, w->cols, (const float *)(uintptr_t)x,
                            w->cols, &zero, (float *)(uintptr_t)c, w->rows);
            if (st != 0)
                return m40_errf(err, "cublasSgemm failed (status %d)", st);
        } else if (m40_cuda_sgemm_nt(ops, c, x, cu->deq, T, n, w->cols, w->rows, 0, err)) {
            return -1;
        }
    }
    if (bias && bias->ptr)
        return m40_cuda_add_bias(ops, y, bias->ptr, w->rows, T, err);
    return 0;
}

static m40_dptr cache_at(const m40_cuda *cu, m40_dptr cache, int slot, int layer) {
    const m40_model_config *c = &cu->model->cfg;
    size_t per_layer = (size_t)cu->opt.n_ctx * cu->kv_dim * sizeof(uint16_t);
    return cache + ((size_t)slot * c->n_layer + layer) * per_layer;
}

static m40_dptr row_at(m40_dptr base, int row, int width) {
    return base + (size_t)row * width * sizeof(float);
}

/* ---- one forward chunk ---------------------------------------------------- */

static int layer_forward(m40_cuda *cu, int l, int slot, int T, int max_pos, m40_err *err) {
    const m40_model_config *c = &cu->model->cfg;
    const dlayer *L = &cu->layers[l];
    m40_cuda_ops *ops = &cu->ops;
    const int d = c->n_embd;
    m40_dptr kc = cache_at(cu, cu->k_cache, slot, l), vc = cache_at(cu, cu->v_cache, slot, l);
    return m40_cuda_rmsnorm(ops, cu->xb, cu->x, L->attn_norm.ptr, T, d, c->rms_eps, err) ||
                   matmul(cu, cu->q, &L->wq, &L->bq, cu->xb, T, err) ||
                   matmul(cu, cu->k, &L->wk, &L->bk, cu->xb, T, err) ||
                   matmul(cu, cu->v, &L->wv, &L->bv, cu->xb, T, err) ||
                   m40_cuda_rope_apply(ops, cu->q, cu->cs, T, c->n_head, c->head_dim, c->rope_dim,
                                       c->rope_style, cu->q_dim, err) ||
                   m40_cuda_rope_apply(ops, cu->k, cu->cs, T, c->n_head_kv, c->head_dim,
                                       c->rope_dim, c->rope_style, cu->kv_dim, err) ||
                   m40_cuda_kv_store(ops, kc, vc, cu->k, cu->v, cu->pos, cu->kv_dim, T, err) ||
                   m40_cuda_attention(ops, cu->att, cu->q, kc, vc, cu->pos, T, max_pos, c->n_head,
                                      c->n_head_kv, c->head_dim, cu->attn_tmp, err) ||
                   matmul(cu, cu->xb, &L->wo, NULL, cu->att, T, err) ||
                   m40_cuda_add(ops, cu->x, cu->x, cu->xb, T * d, err) ||
                   m40_cuda_rmsnorm(ops, cu->xb, cu->x, L->ffn_norm.ptr, T, d, c->rms_eps, err) ||
                   matmul(cu, cu->hb, &L->gate, NULL, cu->xb, T, err) ||
                   matmul(cu, cu->hb2, &L->up, NULL, cu->xb, T, err) ||
                   m40_cuda_swiglu(ops, cu->hb, cu->hb, cu->hb2, T * c->n_ff, err) ||
                   matmul(cu, cu->xb, &L->down, NULL, cu->hb, T, err) ||
                   m40_cuda_add(ops, cu->x, cu->x, cu->xb, T * d, err)
               ? -1
               : 0;
}

/* Runs T tokens and leaves the last token's logits in cu->logits. */
static int forward_chunk(m40_cuda *cu, int slot, const int32_t *tokens, int T, int pos0,
                         int want_logits, m40_err *err) {
    const m40_model_config *c = &cu->model->cfg;
    m40_cuda_ops *ops = &cu->ops;
    const int d = c->n_embd;
    for (int t = 0; t < T; t++)
        cu->host_pos[t] = pos0 + t;
    if (m40_gpu_upload(&cu->gpu, cu->ids, tokens, (size_t)T * sizeof(int32_t), err) ||
        m40_gpu_upload(&cu->gpu, cu->pos, cu->host_pos, (size_t)T * sizeof(int32_t), err) ||
        m40_cuda_dequant_rows(ops, &cu->tok_embd, cu->x, cu->ids, 0, T, err) ||
        m40_cuda_rope_table(ops, cu->cs, cu->pos, T, c->rope_dim, c->rope_freq_base,
                            c->rope_freq_scale, cu->rope_freqs.ptr, err))
        return -1;
    for (int l = 0; l < c->n_layer; l++) {
        if (layer_forward(cu, l, slot, T, pos0 + T - 1, err))
            return m40_err_wrap(err, "layer %d", l);
    }
    if (!want_logits)
        return 0;
    return m40_cuda_rmsnorm(ops, cu->xb, row_at(cu->x, T - 1, d), cu->output_norm.ptr, 1, d,
                            c->rms_eps, err) ||
                   matmul(cu, cu->logits, &cu->output, NULL, cu->xb, 1, err)
               ? -1
               : 0;
}

static int run(m40_cuda *cu, int32_t slot, const int32_t *tokens, int32_t n, int32_t pos0,
               m40_err *err) {
    const m40_model_config *c = &cu->model->cfg;
    if (m40_gpu_make_current(&cu->gpu, err))
        return -1;
    if (slot < 0 || slot >= cu->opt.n_slots)
        return m40_errf(err, "cuda forward: slot %d outside 0..%d", slot, cu->opt.n_slots - 1);
    if (n <= 0 || pos0 < 0 || n > cu->opt.n_ctx - pos0)
        return m40_errf(err, "cuda forward: %d tokens at position %d do not fit a context of %d", n,
                        pos0, cu->opt.n_ctx);
    for (int32_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= c->n_vocab)
            return m40_errf(err, "cuda forward: token id %d outside the vocabulary of %d",
                            tokens[i], c->n_vocab);
    }
    for (int32_t done = 0; done < n;) {
        int32_t T = n - done < cu->opt.n_batch ? n - done : cu->opt.n_batch;
        if (forward_chunk(cu, slot, tokens + done, T, pos0 + done, done + T == n, err))
            return -1;
        done += T;
    }
    return 0;
}

int m40_cuda_forward(m40_cuda *cu, int32_t slot, const int32_t *tokens, int32_t n, int32_t pos0,
                     float *logits, m40_err *err) {
    if (run(cu, slot, tokens, n, pos0, err))
        return -1;
    return m40_gpu_sync(&cu->gpu, err) ||
                   m40_gpu_download(&cu->gpu, logits, cu->logits,
                                    (size_t)cu->model->cfg.n_vocab * sizeof(float), err)
               ? -1
               : 0;
}

int m40_cuda_forward_greedy(m40_cuda *cu, int32_t slot, const int32_t *tokens, int32_t n,
                            int32_t pos0, int32_t *token, m40_err *err) {
    if (run(cu, slot, tokens, n, pos0, err) ||
        m40_cuda_argmax(&cu->ops, cu->argmax, cu->logits, cu->model->cfg.n_vocab, err))
        return -1;
    return m40_gpu_sync(&cu->gpu, err) ||
                   m40_gpu_download(&cu->gpu, token, cu->argmax, sizeof *token, err)
               ? -1
               : 0;
}

/* ---- set-up ------------------------------------------------------------- */

static size_t align256(size_t n) {
    return (n + 255) & ~(size_t)255;
}

/* Device layout of the weights: every GGUF tensor at its file offset within
 * the data section, so one upload of the data section places them all. */
static dweight dev_weight(const m40_cuda *cu, const m40_weight *w) {
    dweight d = {0};
    if (!w->data)
        return d;
    const char *base =
        (const char *)m40_gguf_file_data(cu->model->gguf) + m40_gguf_data_offset(cu->model->gguf);
    d.type = w->type;
    d.cols = (int)w->cols;
    d.rows = (int)w->rows;
    d.row_bytes = (int64_t)w->row_bytes;
    d.ptr = cu->weights + (size_t)((const char *)w->data - base);
    return d;
}

static void bind_weights(m40_cuda *cu) {
    const m40_model *m = cu->model;
    cu->tok_embd = dev_weight(cu, &m->tok_embd);
    cu->output_norm = dev_weight(cu, &m->output_norm);
    cu->output = dev_weight(cu, &m->output);
    cu->rope_freqs = dev_weight(cu, &m->rope_freqs);
    for (int l = 0; l < m->cfg.n_layer; l++) {
        const m40_layer *L = &m->layers[l];
        dlayer *D = &cu->layers[l];
        D->attn_norm = dev_weight(cu, &L->attn_norm);
        D->wq = dev_weight(cu, &L->wq);
        D->wk = dev_weight(cu, &L->wk);
        D->wv = dev_weight(cu, &L->wv);
        D->wo = dev_weight(cu, &L->wo);
        D->bq = dev_weight(cu, &L->bq);
        D->bk = dev_weight(cu, &L->bk);
        D->bv = dev_weight(cu, &L->bv);
        D->ffn_norm = dev_weight(cu, &L->ffn_norm);
        D->gate = dev_weight(cu, &L->w_gate);
        D->up = dev_weight(cu, &L->w_up);
        D->down = dev_weight(cu, &L->w_down);
    }
}

/* Rewrites every Q4_0 / Q8_0 matrix into the aligned layout the fast
 * kernels read (kernels/repack.cu), through one scratch buffer as large as
 * the largest such matrix. A tied output shares token_embd's bytes, so it
 * is repacked once. */
static int repack_weights(m40_cuda *cu, m40_err *err) {
    int n_layer = cu->model->cfg.n_layer;
    size_t max_bytes = 0, n_list = 0;
    dweight **list = calloc((size_t)n_layer * 7 + 2, sizeof *list);
    if (!list)
        return m40_errf(err, "out of memory");
    list[n_list++] = &cu->tok_embd;
    if (cu->output.ptr != cu->tok_embd.ptr)
        list[n_list++] = &cu->output;
    for (int l = 0; l < n_layer; l++) {
        dlayer *D = &cu->layers[l];
        dweight *mats[] = {&D->wq, &D->wk, &D->wv, &D->wo, &D->gate, &D->up, &D->down};
        for (int i = 0; i < 7; i++)
            list[n_list++] = mats[i];
    }
    for (size_t i = 0; i < n_list; i++) {
        size_t b = (size_t)list[i]->row_bytes * (size_t)list[i]->rows;
        if (m40_cuda_can_repack(list[i]->type) && b > max_bytes)
            max_bytes = b;
    }
    int rc = 0;
    if (max_bytes) {
        m40_dptr tmp = 0;
        rc = m40_gpu_alloc(&cu->gpu, &tmp, max_bytes, err);
        for (size_t i = 0; rc == 0 && i < n_list; i++)
            rc = m40_cuda_repack(&cu->ops, list[i], tmp, err);
        if (rc == 0)
            rc = m40_gpu_sync(&cu->gpu, err); /* repacks read tmp: finish before freeing it */
        m40_gpu_free(&cu->gpu, tmp);
    }
    if (cu->output.ptr == cu->tok_embd.ptr)
        cu->output.repacked = cu->tok_embd.repacked;
    free(list);
    return rc;
}

static int check_types(m40_cuda *cu, m40_err *err) {
    const m40_gguf *g = cu->model->gguf;
    for (size_t i = 0; i < m40_gguf_tensor_count(g); i++) {
        const m40_gguf_tensor *t = m40_gguf_tensor_at(g, i);
        if (t->n_dims >= 2 && !m40_cuda_type_supported(&cu->ops, t->type))
            return m40_errf(err, "tensor '%.*s' has type %s, which the CUDA backend cannot run",
                            (int)t->name.len, t->name.ptr, m40_ggml_type_name(t->type));
    }
    return 0;
}

/* Scratch layout; returns the total bytes and fills the offsets when
 * base != 0. */
static size_t layout_scratch(m40_cuda *cu, m40_dptr base) {
    const m40_model_config *c = &cu->model->cfg;
    size_t B = (size_t)cu->opt.n_batch, off = 0;
    m40_dptr *slots[] = {&cu->x,   &cu->xb,  &cu->q,   &cu->k,      &cu->v,
                         &cu->att, &cu->hb,  &cu->hb2, &cu->logits, &cu->attn_tmp,
                         &cu->deq, &cu->ids, &cu->pos, &cu->cs,     &cu->argmax};
    size_t floats[] = {
        B * c->n_embd,
        B * cu->wide,
        B * cu->q_dim,
        B * cu->kv_dim,
        B * cu->kv_dim,
        B * cu->q_dim,
        B * c->n_ff,
        B * c->n_ff,
        (size_t)c->n_vocab,
        m40_cuda_attn_scratch_floats((int)B, c->n_head, c->head_dim, cu->opt.n_ctx),
        cu->deq_floats,
        B,               /* ids (int32) */
        B,               /* pos (int32) */
        B * c->rope_dim, /* (cos, sin) pairs */
        1,
    };
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        if (base)
            *slots[i] = base + off;
        off += align256(floats[i] * sizeof(float));
    }
    return off;
}

/* Sets the sizes (weights, KV, scratch) for cu->model and cu->opt. */
static void plan_sizes(m40_cuda *cu) {
    const m40_model *m = cu->model;
    const m40_model_config *c = &m->cfg;
    const m40_gguf *g = m->gguf;
    cu->kv_dim = c->n_head_kv * c->head_dim;
    cu->q_dim = c->n_head * c->head_dim;
    cu->wide = c->n_embd > cu->q_dim ? c->n_embd : cu->q_dim;
    cu->weights_bytes = (size_t)(m40_gguf_file_size(g) - m40_gguf_data_offset(g));
    cu->kv_bytes =
        2 * (size_t)cu->opt.n_slots * c->n_layer * cu->opt.n_ctx * cu->kv_dim * sizeof(uint16_t);
    /* Prefill dequantizes 64 MiB of weight rows at a time. */
    cu->deq_floats = (size_t)16 << 20;
    cu->scratch_bytes = layout_scratch(cu, 0);
}

m40_cuda_vram m40_cuda_vram_plan(const m40_model *model, const m40_backend_options *opts) {
    m40_cuda cu;
    memset(&cu, 0, sizeof cu);
    cu.model = model;
    cu.opt = *opts;
    plan_sizes(&cu);
    m40_cuda_vram v = {cu.weights_bytes, cu.kv_bytes, cu.scratch_bytes};
    return v;
}

static int alloc_all(m40_cuda *cu, m40_err *err) {
    size_t need = cu->weights_bytes + cu->kv_bytes + cu->scratch_bytes;
    size_t free_b = cu->gpu.info.vram_free;
    double mib = 1024.0 * 1024.0;
    if (need > free_b)
        return m40_errf(err,
                        "model does not fit on %s: needs %.0f MiB (weights %.0f, KV %.0f, "
                        "scratch %.0f), %.0f MiB free; try a smaller --ctx-size",
                        cu->gpu.info.name, need / mib, cu->weights_bytes / mib, cu->kv_bytes / mib,
                        cu->scratch_bytes / mib, free_b / mib);
    if (m40_gpu_alloc(&cu->gpu, &cu->weights, cu->weights_bytes, err) ||
        m40_gpu_alloc(&cu->gpu, &cu->k_cache, cu->kv_bytes / 2, err) ||
        m40_gpu_alloc(&cu->gpu, &cu->v_cache, cu->kv_bytes / 2, err) ||
        m40_gpu_alloc(&cu->gpu, &cu->scratch, cu->scratch_bytes, err))
        return -1;
    layout_scratch(cu, cu->scratch);
    return 0;
}

/* Copies the data section up in pieces, drawing a progress bar. */
static int upload_weights(m40_cuda *cu, m40_err *err) {
    const m40_gguf *g = cu->model->gguf;
    const char *src = (const char *)m40_gguf_file_data(g) + m40_gguf_data_offset(g);
    size_t total = cu->weights_bytes, piece = (size_t)64 << 20;
    int bar = !cu->opt.quiet;
    for (size_t done = 0; done < total; done += piece) {
        size_t n = total - done < piece ? total - done : piece;
        if (m40_gpu_upload(&cu->gpu, cu->weights + done, src + done, n, err))
            return m40_err_wrap(err, "uploading weights");
        if (bar) {
            int pct = (int)((done + n) * 100 / total);
            fprintf(stderr, "\rm40-llm: uploading weights [%-40.*s] %3d%%", pct * 40 / 100,
                    "########################################", pct);
        }
    }
    if (bar)
        fputc('\n', stderr);
    return 0;
}

int m40_cuda_create(m40_cuda **out, const m40_model *model, const m40_backend_options *opts,
                    m40_err *err) {
    *out = NULL;
    const m40_model_config *c = &model->cfg;
    if (opts->n_ctx <= 0 || opts->n_slots <= 0 || opts->n_batch <= 0)
        return m40_errf(err, "cuda backend: n_ctx, n_slots and n_batch must be positive");
    m40_cuda *cu = calloc(1, sizeof *cu);
    if (!cu)
        return m40_errf(err, "out of memory");
    cu->model = model;
    cu->opt = *opts;
    plan_sizes(cu);
    cu->layers = calloc((size_t)c->n_layer, sizeof *cu->layers);
    cu->host_pos = calloc((size_t)opts->n_batch, sizeof *cu->host_pos);
    m40_gpu_options go = {.gpu = opts->gpu, .cublas = M40_CUBLAS_AUTO};
    if (!cu->layers || !cu->host_pos) {
        m40_cuda_destroy(cu);
        return m40_errf(err, "out of memory");
    }
    if (m40_cublas_policy_from_env(&go.cublas, err) || m40_gpu_open(&cu->gpu, &go, err) ||
        m40_cuda_ops_init(&cu->ops, &cu->gpu, err) || check_types(cu, err) || alloc_all(cu, err) ||
        upload_weights(cu, err)) {
        m40_cuda_destroy(cu);
        return -1;
    }
    bind_weights(cu);
    if (repack_weights(cu, err)) {
        m40_cuda_destroy(cu);
        return -1;
    }
    snprintf(cu->desc, sizeof cu->desc, "%s (sm_%d%d), cuBLAS %s", cu->gpu.info.name,
             cu->gpu.info.cc_major, cu->gpu.info.cc_minor,
             m40_cublas_active(&cu->gpu.blas) ? "on" : "off");
    if (!opts->quiet)
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
        m40_gpu_free(&cu->gpu, cu->weights);
        m40_gpu_free(&cu->gpu, cu->k_cache);
        m40_gpu_free(&cu->gpu, cu->v_cache);
        m40_gpu_free(&cu->gpu, cu->scratch);
        m40_gpu_close(&cu->gpu);
    }
    free(cu->layers);
    free(cu->host_pos);
    free(cu);
}

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
    size_t bytes = (size_t)cu->kv_dim * sizeof(uint16_t), off = (size_t)pos * bytes;
    uint16_t *h = malloc(2 * bytes);
    if (!h)
        return m40_errf(err, "out of memory");
    int rc =
        m40_gpu_sync(&cu->gpu, err) ||
        m40_gpu_download(&cu->gpu, h, cache_at(cu, cu->k_cache, slot, layer) + off, bytes, err) ||
        m40_gpu_download(&cu->gpu, h + cu->kv_dim, cache_at(cu, cu->v_cache, slot, layer) + off,
                         bytes, err);
    for (int i = 0; rc == 0 && i < cu->kv_dim; i++) {
        k[i] = m40_fp16_to_fp32(h[i]);
        v[i] = m40_fp16_to_fp32(h[cu->kv_dim + i]);
    }
    free(h);
    return rc ? -1 : 0;
}
