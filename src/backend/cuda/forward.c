/* forward.c - the llama-family forward pass on the GPU.
 *
 * The same steps as the CPU reference (src/backend/cpu/forward.c), as
 * kernel launches on one stream (d = n_embd, qkv_dim = q_dim + 2 kv_dim):
 *
 *   ids[T], pos[T] --upload--> (the only host -> device copy of a step)
 *   x[T][d]   = dequant_rows(token_embd, ids)
 *   cs[T][rope_dim/2] = rope_table(pos)                  once per step
 *   for each layer:
 *     xb[T][d]        = rmsnorm(x) * attn_norm
 *     qkv[T][qkv_dim] = xb W{q|k|v} (+ bias)  one product: Wq, Wk, Wv lie
 *                        back to back in VRAM; T = 1: gemv, T > 1: SGEMM
 *     rope_store: q heads of qkv rotated in place, k heads rotated into
 *                 cache[slot][layer] at pos, v heads copied there (FP16)
 *     att[T][q_dim] = attention(q, cache, pos)        (split over the context)
 *     x += att Wo                             the add fused into the product
 *     xb = rmsnorm(x) * ffn_norm
 *     gu[T][2 n_ff] = xb W{gate|up}           one product, as for q|k|v
 *     hb[T][n_ff]   = swiglu(gate, up)
 *     x += hb Wdown
 *   logits[n_vocab] = rmsnorm(x[T-1]) Wout  --download--> host (or argmax: 4 bytes)
 *
 * Prefill products (T > 1) follow the precision policy: each weight matrix
 * is dequantized, a chunk of rows at a time, into an FP32 scratch and
 * multiplied in FP32 (cublasSgemm, or our tiled kernel with cuBLAS off).
 *
 * Prompts and single tokens run on two lanes (see `lane` below): the
 * gpu's low-priority stream and a high-priority decode stream, each with
 * its own activations, so one request's decode step need not wait for
 * another's prompt chunk to finish.
 *
 * A decode step (T = 1) is recorded once as a CUDA graph and replayed: the
 * ~10 launches per layer then cost one launch. Everything a step varies
 * (token id, position) is read from device memory, so one graph serves
 * every step; the attention grid is sized for a power-of-two bound on the
 * context, so a graph is kept per (slot, context bucket).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/ops.h"
#include "gguf/gguf.h"
#include "quant/fp16.h"
#include "util/clock.h"
#include "util/log.h"

typedef m40_dweight dweight;

typedef struct dlayer {
    dweight attn_norm, wq, wk, wv, wo, bq, bk, bv, ffn_norm, gate, up, down;
    /* Fused views (ptr 0 when the parts' types differ): wqkv = Wq|Wk|Wv,
     * bqkv = bq|bk|bv, wgu = Wgate|Wup, each one matrix of the parts' rows
     * in a row. A repacked fused view is repacked as a whole, so its parts
     * must not be used on their own. */
    dweight wqkv, bqkv, wgu;
} dlayer;

/* A lane: a stream and the activations the forwards on it use. The prefill
 * lane (the gpu's own stream, lowest priority) runs chunks of up to n_batch
 * tokens; the decode lane (a high-priority stream with T = 1 activations and
 * its own decode graphs) runs single tokens. Two lanes let one slot's decode
 * step run while another slot's prompt chunk is on the GPU, the decode
 * step's blocks scheduled first; with opt.one_stream there is one lane for
 * both. At most one forward runs on a lane at a time (the engine's turns). */
typedef struct lane {
    m40_cuda_ops ops; /* the launchers, bound to this lane's stream */
    int batch;        /* most tokens per forward */
    /* activations and scratch, T = batch rows each (one allocation) */
    m40_dptr x, xb, qkv, att, gu, hb, logits, attn_tmp, deq, step, cs, argmax;
    m40_dptr ids, pos;  /* step = ids[batch] then pos[batch], one upload */
    size_t deq_floats;  /* 0: no prefill products on this lane */
    int32_t *host_step; /* the host side of step */
    /* decode graphs, [n_slots][n_buckets]; bucket b sizes attention for
     * positions up to 32 * 2^b */
    m40_cu_graph_exec *graphs;
} lane;

struct m40_cuda {
    m40_gpu gpu;
    const m40_model *model;
    m40_backend_options opt;
    char desc[192];
    int kv_dim, q_dim, qkv_dim, wide;
    int kv_f32;       /* opt.kv_type == M40_KV_F32 */
    size_t kv_elem;   /* bytes per cache element */
    m40_dptr weights; /* one allocation holding every tensor */
    size_t weights_bytes;
    dweight tok_embd, output_norm, output, rope_freqs;
    dlayer *layers;
    m40_dptr k_cache, v_cache; /* [n_slots][n_layer][n_ctx][kv_dim] FP16 (FP32: kv_f32) */
    size_t kv_bytes;
    m40_dptr scratch; /* every lane's activations */
    size_t scratch_bytes;
    lane lanes[2]; /* [0] prefill, [n_lanes - 1] decode */
    int n_lanes;   /* 1 with opt.one_stream */
    int n_buckets; /* decode graphs per slot, 0: no graphs */
    /* the tensors layout_weights placed, for upload_weights */
    struct {
        const m40_weight *w;
        dweight *d;
    } * placed;
    size_t n_placed;
};

/* ---- launch helpers ----------------------------------------------------- */

/* y[T][ldy] (its first w.rows columns) = x[T][w.cols] W^T (+ bias), or
 * += when `accumulate` (the residual add). */
static int matmul(m40_cuda *cu, lane *ln, m40_dptr y, int ldy, const dweight *w,
                  const dweight *bias, m40_dptr x, int T, int accumulate, m40_err *err) {
    m40_cuda_ops *ops = &ln->ops;
    if (T == 1)
        return m40_cuda_gemv(ops, w, y, x, bias ? bias->ptr : 0, accumulate ? y : 0, err);
    /* prefill products: only on the prefill lane, whose stream cuBLAS uses */
    int chunk = (int)(ln->deq_floats / (size_t)w->cols);
    if (chunk > w->rows)
        chunk = w->rows;
    m40_cublas *blas = &cu->gpu.blas;
    for (int r0 = 0; r0 < w->rows; r0 += chunk) {
        int n = w->rows - r0 < chunk ? w->rows - r0 : chunk;
        if (m40_cuda_dequant_rows(ops, w, ln->deq, 0, r0, n, err))
            return -1;
        m40_dptr c = y + (size_t)r0 * sizeof(float);
        if (m40_cublas_active(blas)) {
            /* Row-major Y[T][rows] is column-major rows x T: Y = W X^T with
             * W (n x cols, row-major = cols x n column-major, transposed). */
            const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
            int st =
                blas->sgemm(blas->handle, M40_CUBLAS_OP_T, M40_CUBLAS_OP_N, n, T, w->cols, &one,
                            (const float *)(uintptr_t)ln->deq, w->cols, (const float *)(uintptr_t)x,
                            w->cols, &beta, (float *)(uintptr_t)c, ldy);
            if (st != 0)
                return m40_errf(err, "cublasSgemm failed (status %d)", st);
        } else if (m40_cuda_sgemm_nt(ops, c, x, ln->deq, T, n, w->cols, ldy, accumulate, err)) {
            return -1;
        }
    }
    if (bias && bias->ptr)
        return m40_cuda_add_bias(ops, y, bias->ptr, w->rows, T, ldy, err);
    return 0;
}

static m40_dptr cache_at(const m40_cuda *cu, m40_dptr cache, int slot, int layer) {
    const m40_model_config *c = &cu->model->cfg;
    size_t per_layer = (size_t)cu->opt.n_ctx * cu->kv_dim * cu->kv_elem;
    return cache + ((size_t)slot * c->n_layer + layer) * per_layer;
}

static m40_dptr row_at(m40_dptr base, int row, int width) {
    return base + (size_t)row * width * sizeof(float);
}

/* ---- one forward chunk ---------------------------------------------------- */

/* qkv[T][qkv_dim] = xb Wq | xb Wk | xb Wv (+ biases): one product over the
 * fused matrix, or three into the column ranges when the types differ. */
static int project_qkv(m40_cuda *cu, lane *ln, const dlayer *L, int T, m40_err *err) {
    int ld = cu->qkv_dim;
    m40_dptr q = ln->qkv, k = q + (size_t)cu->q_dim * sizeof(float);
    m40_dptr v = k + (size_t)cu->kv_dim * sizeof(float);
    if (L->wqkv.ptr)
        return matmul(cu, ln, q, ld, &L->wqkv, L->bqkv.ptr ? &L->bqkv : NULL, ln->xb, T, 0, err);
    return matmul(cu, ln, q, ld, &L->wq, &L->bq, ln->xb, T, 0, err) ||
                   matmul(cu, ln, k, ld, &L->wk, &L->bk, ln->xb, T, 0, err) ||
                   matmul(cu, ln, v, ld, &L->wv, &L->bv, ln->xb, T, 0, err)
               ? -1
               : 0;
}

/* gu[T][2 n_ff] = xb Wgate | xb Wup, fused as above. */
static int project_gate_up(m40_cuda *cu, lane *ln, const dlayer *L, int T, m40_err *err) {
    int n_ff = cu->model->cfg.n_ff;
    if (L->wgu.ptr)
        return matmul(cu, ln, ln->gu, 2 * n_ff, &L->wgu, NULL, ln->xb, T, 0, err);
    return matmul(cu, ln, ln->gu, 2 * n_ff, &L->gate, NULL, ln->xb, T, 0, err) ||
                   matmul(cu, ln, ln->gu + (size_t)n_ff * sizeof(float), 2 * n_ff, &L->up, NULL,
                          ln->xb, T, 0, err)
               ? -1
               : 0;
}

/* Positions per attention split: for one query, short enough that a
 * decode step at a short context still spreads over the whole GPU. */
static int attn_chunk(int T, int max_pos) {
    return T == 1 ? m40_cuda_attn_decode_chunk(max_pos + 1) : M40_ATTN_CHUNK;
}

static int layer_forward(m40_cuda *cu, lane *ln, int l, int slot, int T, int max_pos,
                         m40_err *err) {
    const m40_model_config *c = &cu->model->cfg;
    const dlayer *L = &cu->layers[l];
    m40_cuda_ops *ops = &ln->ops;
    const int d = c->n_embd, n_ff = c->n_ff, ld = cu->qkv_dim;
    m40_dptr kc = cache_at(cu, cu->k_cache, slot, l), vc = cache_at(cu, cu->v_cache, slot, l);
    /* q, k and v heads lie in a row of qkv: one launch rotates q and k and
     * appends k and v to the cache */
    return m40_cuda_rmsnorm(ops, ln->xb, ln->x, L->attn_norm.ptr, T, d, c->rms_eps, err) ||
                   project_qkv(cu, ln, L, T, err) ||
                   m40_cuda_rope_store(ops, ln->qkv, ln->cs, ln->pos, kc, vc, T, c->n_head,
                                       c->n_head_kv, c->head_dim, c->rope_dim, c->rope_style, ld,
                                       cu->kv_f32, err) ||
                   m40_cuda_attention(ops, ln->att, ln->qkv, ld, kc, vc, ln->pos, T, max_pos,
                                      attn_chunk(T, max_pos), c->n_head, c->n_head_kv, c->head_dim,
                                      cu->kv_f32, ln->attn_tmp, err) ||
                   matmul(cu, ln, ln->x, d, &L->wo, NULL, ln->att, T, 1, err) ||
                   m40_cuda_rmsnorm(ops, ln->xb, ln->x, L->ffn_norm.ptr, T, d, c->rms_eps, err) ||
                   project_gate_up(cu, ln, L, T, err) ||
                   m40_cuda_swiglu(ops, ln->hb, ln->gu, ln->gu + (size_t)n_ff * sizeof(float), T,
                                   n_ff, 2 * n_ff, err) ||
                   matmul(cu, ln, ln->x, d, &L->down, NULL, ln->hb, T, 1, err)
               ? -1
               : 0;
}

/* Queues the ids and positions of T tokens up (one copy). */
static int upload_step(m40_cuda *cu, lane *ln, const int32_t *tokens, int T, int pos0,
                       m40_err *err) {
    int B = ln->batch;
    for (int t = 0; t < T; t++) {
        ln->host_step[t] = tokens[t];
        ln->host_step[B + t] = pos0 + t;
    }
    return m40_gpu_upload_on(&cu->gpu, ln->ops.stream, ln->step, ln->host_step,
                             (size_t)(B + T) * sizeof(int32_t), err);
}

/* Enqueues the forward of the T uploaded tokens (their attention reads at
 * most positions 0..max_pos) and, when want_logits, the last token's
 * logits in ln->logits. */
static int forward_body(m40_cuda *cu, lane *ln, int slot, int T, int max_pos, int want_logits,
                        m40_err *err) {
    const m40_model_config *c = &cu->model->cfg;
    m40_cuda_ops *ops = &ln->ops;
    const int d = c->n_embd;
    if (m40_cuda_dequant_rows(ops, &cu->tok_embd, ln->x, ln->ids, 0, T, err) ||
        m40_cuda_rope_table(ops, ln->cs, ln->pos, T, c->rope_dim, c->rope_freq_base,
                            c->rope_freq_scale, cu->rope_freqs.ptr, err))
        return -1;
    for (int l = 0; l < c->n_layer; l++) {
        if (layer_forward(cu, ln, l, slot, T, max_pos, err))
            return m40_err_wrap(err, "layer %d", l);
    }
    if (!want_logits)
        return 0;
    return m40_cuda_rmsnorm(ops, ln->xb, row_at(ln->x, T - 1, d), cu->output_norm.ptr, 1, d,
                            c->rms_eps, err) ||
                   matmul(cu, ln, ln->logits, c->n_vocab, &cu->output, NULL, ln->xb, 1, 0, err)
               ? -1
               : 0;
}

/* The decode graph for a token at `pos` of `slot`: logits and argmax. */
static int decode_graph(m40_cuda *cu, lane *ln, int slot, int pos, m40_cu_graph_exec *out,
                        m40_err *err) {
    int b = 0;
    while ((M40_ATTN_CHUNK_DECODE << b) < pos + 1)
        b++;
    m40_cu_graph_exec *g = &ln->graphs[(size_t)slot * cu->n_buckets + b];
    if (!*g) {
        /* bucket b: positions up to 32 * 2^b (or the context's end) */
        int max_pos = (M40_ATTN_CHUNK_DECODE << b) - 1;
        if (max_pos > cu->opt.n_ctx - 1)
            max_pos = cu->opt.n_ctx - 1;
        if (m40_gpu_capture_begin_on(&cu->gpu, ln->ops.stream, err))
            return -1;
        if (forward_body(cu, ln, slot, 1, max_pos, 1, err) ||
            m40_cuda_argmax(&ln->ops, ln->argmax, ln->logits, cu->model->cfg.n_vocab, err)) {
            m40_gpu_capture_end_on(&cu->gpu, ln->ops.stream, NULL, NULL);
            return m40_err_wrap(err, "recording the decode graph");
        }
        if (m40_gpu_capture_end_on(&cu->gpu, ln->ops.stream, g, err))
            return -1;
    }
    *out = *g;
    return 0;
}

/* Checks a forward's arguments and picks its lane: single tokens go to the
 * decode lane. */
static lane *check_run(m40_cuda *cu, int32_t slot, const int32_t *tokens, int32_t n, int32_t pos0,
                       m40_err *err) {
    const m40_model_config *c = &cu->model->cfg;
    if (m40_gpu_make_current(&cu->gpu, err))
        return NULL;
    if (slot < 0 || slot >= cu->opt.n_slots) {
        m40_errf(err, "cuda forward: slot %d outside 0..%d", slot, cu->opt.n_slots - 1);
        return NULL;
    }
    if (n <= 0 || pos0 < 0 || n > cu->opt.n_ctx - pos0) {
        m40_errk(err, M40_ERR_TOO_LONG,
                 "cuda forward: %d tokens at position %d do not fit a context of %d", n, pos0,
                 cu->opt.n_ctx);
        return NULL;
    }
    for (int32_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= c->n_vocab) {
            m40_errk(err, M40_ERR_BAD_INPUT,
                     "cuda forward: token id %d outside the vocabulary of %d", tokens[i],
                     c->n_vocab);
            return NULL;
        }
    }
    return n == 1 ? &cu->lanes[cu->n_lanes - 1] : &cu->lanes[0];
}

/* Enqueues tokens[0..n) at pos0 on ln; the last token's logits end in
 * ln->logits and, for a graphed decode step, its argmax in ln->argmax. */
static int run(m40_cuda *cu, lane *ln, int32_t slot, const int32_t *tokens, int32_t n, int32_t pos0,
               m40_err *err) {
    if (n == 1 && ln->graphs) {
        m40_cu_graph_exec g = NULL;
        return upload_step(cu, ln, tokens, 1, pos0, err) ||
                       decode_graph(cu, ln, slot, pos0, &g, err) ||
                       m40_gpu_graph_launch_on(&cu->gpu, ln->ops.stream, g, err)
                   ? -1
                   : 0;
    }
    for (int32_t done = 0; done < n;) {
        int32_t T = n - done < ln->batch ? n - done : ln->batch;
        if (upload_step(cu, ln, tokens + done, T, pos0 + done, err) ||
            forward_body(cu, ln, slot, T, pos0 + done + T - 1, done + T == n, err))
            return -1;
        done += T;
    }
    return 0;
}

int m40_cuda_forward(m40_cuda *cu, int32_t slot, const int32_t *tokens, int32_t n, int32_t pos0,
                     float *logits, m40_err *err) {
    lane *ln = check_run(cu, slot, tokens, n, pos0, err);
    if (!ln || run(cu, ln, slot, tokens, n, pos0, err))
        return -1;
    return m40_gpu_download_on(&cu->gpu, ln->ops.stream, logits, ln->logits,
                               (size_t)cu->model->cfg.n_vocab * sizeof(float), err);
}

int m40_cuda_forward_greedy(m40_cuda *cu, int32_t slot, const int32_t *tokens, int32_t n,
                            int32_t pos0, int32_t *token, m40_err *err) {
    lane *ln = check_run(cu, slot, tokens, n, pos0, err);
    if (!ln || run(cu, ln, slot, tokens, n, pos0, err))
        return -1;
    /* a decode graph ends with the argmax already */
    if (!(n == 1 && ln->graphs) &&
        m40_cuda_argmax(&ln->ops, ln->argmax, ln->logits, cu->model->cfg.n_vocab, err))
        return -1;
    return m40_gpu_download_on(&cu->gpu, ln->ops.stream, token, ln->argmax, sizeof *token, err);
}

int m40_cuda_concurrent_decode(const m40_cuda *cu) {
    return cu->n_lanes > 1;
}

/* ---- set-up ------------------------------------------------------------- */

static size_t align256(size_t n) {
    return (n + 255) & ~(size_t)255;
}

/* ---- weights in VRAM ------------------------------------------------------
 * Every tensor the model uses is uploaded in its GGUF type, 256-byte
 * aligned, in file order per layer, except that Wk and Wv follow Wq with no
 * gap (and Wup follows Wgate) when their types and row sizes match: the
 * three (two) then form one matrix with the rows of all, which one mat-vec
 * launch multiplies. Same for the Q/K/V biases. */

static size_t tensor_bytes(const m40_weight *w) {
    return w->data ? w->row_bytes * (size_t)w->rows : 0;
}

static int same_layout(const m40_weight *a, const m40_weight *b) {
    return a->data && b->data && a->type == b->type && a->cols == b->cols &&
           a->row_bytes == b->row_bytes;
}

/* Places w at *off (aligned, unless glued to the tensor before it). With
 * base != 0 fills d and records the tensor for upload_weights. */
static void place(m40_cuda *cu, m40_dptr base, size_t *off, const m40_weight *w, dweight *d,
                  int glue) {
    if (!w->data)
        return;
    if (!glue)
        *off = align256(*off);
    if (base) {
        d->type = w->type;
        d->cols = (int)w->cols;
        d->rows = (int)w->rows;
        d->row_bytes = (int64_t)w->row_bytes;
        d->ptr = base + *off;
        cu->placed[cu->n_placed].w = w;
        cu->placed[cu->n_placed].d = d;
        cu->n_placed++;
    }
    *off += tensor_bytes(w);
}

/* The n matrices parts[], placed back to back, viewed as one. */
static dweight fused_view(const dweight *const *parts, int n) {
    dweight f = *parts[0];
    for (int i = 1; i < n; i++)
        f.rows += parts[i]->rows;
    return f;
}

/* Lays the weights out from base (0: only measure); returns the bytes. */
static size_t layout_weights(m40_cuda *cu, m40_dptr base) {
    const m40_model *m = cu->model;
    size_t off = 0;
    dweight scratch_view;
    cu->n_placed = 0;
#define VIEW(field) (base ? &(field) : &scratch_view)
    place(cu, base, &off, &m->tok_embd, VIEW(cu->tok_embd), 0);
    int tied = m->output.data == m->tok_embd.data;
    if (!tied)
        place(cu, base, &off, &m->output, VIEW(cu->output), 0);
    else if (base)
        cu->output = cu->tok_embd;
    place(cu, base, &off, &m->output_norm, VIEW(cu->output_norm), 0);
    place(cu, base, &off, &m->rope_freqs, VIEW(cu->rope_freqs), 0);
    for (int l = 0; l < m->cfg.n_layer; l++) {
        const m40_layer *L = &m->layers[l];
        dlayer *D = base ? &cu->layers[l] : NULL;
        int qkv = same_layout(&L->wq, &L->wk) && same_layout(&L->wq, &L->wv);
        int biases = L->bq.data && L->bk.data && L->bv.data;
        int no_bias = !L->bq.data && !L->bk.data && !L->bv.data;
        int gu = same_layout(&L->w_gate, &L->w_up);
        place(cu, base, &off, &L->attn_norm, VIEW(D->attn_norm), 0);
        place(cu, base, &off, &L->wq, VIEW(D->wq), 0);
        place(cu, base, &off, &L->wk, VIEW(D->wk), qkv);
        place(cu, base, &off, &L->wv, VIEW(D->wv), qkv);
        place(cu, base, &off, &L->bq, VIEW(D->bq), 0);
        place(cu, base, &off, &L->bk, VIEW(D->bk), biases);
        place(cu, base, &off, &L->bv, VIEW(D->bv), biases);
        place(cu, base, &off, &L->wo, VIEW(D->wo), 0);
        place(cu, base, &off, &L->ffn_norm, VIEW(D->ffn_norm), 0);
        place(cu, base, &off, &L->w_gate, VIEW(D->gate), 0);
        place(cu, base, &off, &L->w_up, VIEW(D->up), gu);
        place(cu, base, &off, &L->w_down, VIEW(D->down), 0);
        if (!base)
            continue;
        if (qkv && (biases || no_bias)) {
            const dweight *w3[] = {&D->wq, &D->wk, &D->wv};
            D->wqkv = fused_view(w3, 3);
            if (biases) {
                D->bqkv = D->bq;
                D->bqkv.cols = D->bq.cols + D->bk.cols + D->bv.cols;
                D->bqkv.row_bytes = (int64_t)D->bqkv.cols * (int64_t)sizeof(float);
            }
        }
        if (gu) {
            const dweight *w2[] = {&D->gate, &D->up};
            D->wgu = fused_view(w2, 2);
        }
    }
#undef VIEW
    return align256(off);
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
        /* a fused view is repacked as one matrix, in place of its parts */
        if (D->wqkv.ptr) {
            list[n_list++] = &D->wqkv;
        } else {
            list[n_list++] = &D->wq;
            list[n_list++] = &D->wk;
            list[n_list++] = &D->wv;
        }
        list[n_list++] = &D->wo;
        if (D->wgu.ptr) {
            list[n_list++] = &D->wgu;
        } else {
            list[n_list++] = &D->gate;
            list[n_list++] = &D->up;
        }
        list[n_list++] = &D->down;
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
            rc = m40_cuda_repack(&cu->lanes[0].ops, list[i], tmp, err);
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
    if (cu->model->cfg.head_dim > 256)
        return m40_errk(err, M40_ERR_UNSUPPORTED,
                        "head_dim %d: the CUDA attention handles at most 256",
                        cu->model->cfg.head_dim);
    for (size_t i = 0; i < m40_gguf_tensor_count(g); i++) {
        const m40_gguf_tensor *t = m40_gguf_tensor_at(g, i);
        if (t->n_dims >= 2 && !m40_cuda_type_supported(&cu->lanes[0].ops, t->type))
            return m40_errk(err, M40_ERR_UNSUPPORTED,
                            "tensor '%.*s' has type %s, which the CUDA backend cannot run",
                            (int)t->name.len, t->name.ptr, m40_ggml_type_name(t->type));
    }
    return 0;
}

/* Attention partials of a lane: a decode step's or, on a lane that also
 * runs prompts, a prefill chunk's, the larger. */
static size_t attn_scratch_floats(const m40_cuda *cu, const lane *ln) {
    const m40_model_config *c = &cu->model->cfg;
    size_t pre = m40_cuda_attn_scratch_floats(ln->batch, c->n_head, c->head_dim, cu->opt.n_ctx,
                                              M40_ATTN_CHUNK);
    size_t dec = m40_cuda_attn_scratch_floats(1, c->n_head, c->head_dim, cu->opt.n_ctx,
                                              M40_ATTN_CHUNK_DECODE);
    return ln->batch > 1 && pre > dec ? pre : dec;
}

/* One lane's activations from base + *off (base 0: only measure). */
static void layout_lane(m40_cuda *cu, lane *ln, m40_dptr base, size_t *off) {
    const m40_model_config *c = &cu->model->cfg;
    size_t B = (size_t)ln->batch;
    m40_dptr *slots[] = {&ln->x,      &ln->xb,       &ln->qkv, &ln->att,  &ln->gu, &ln->hb,
                         &ln->logits, &ln->attn_tmp, &ln->deq, &ln->step, &ln->cs, &ln->argmax};
    size_t floats[] = {
        B * c->n_embd,
        B * cu->wide,
        B * cu->qkv_dim,
        B * cu->q_dim,
        B * 2 * c->n_ff,
        B * c->n_ff,
        (size_t)c->n_vocab,
        attn_scratch_floats(cu, ln),
        ln->deq_floats,
        2 * B,           /* ids then pos (int32) */
        B * c->rope_dim, /* (cos, sin) pairs */
        1,
    };
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        if (base)
            *slots[i] = base + *off;
        *off += align256(floats[i] * sizeof(float));
    }
    if (base) {
        ln->ids = ln->step;
        ln->pos = ln->step + B * sizeof(int32_t);
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
    cu->weights_bytes = layout_weights(cu, 0);
    cu->kv_f32 = cu->opt.kv_type == M40_KV_F32;
    cu->kv_elem = cu->kv_f32 ? sizeof(float) : sizeof(uint16_t);
    cu->kv_bytes =
        2 * (size_t)cu->opt.n_slots * c->n_layer * cu->opt.n_ctx * cu->kv_dim * cu->kv_elem;
    cu->n_lanes = cu->opt.one_stream ? 1 : 2;
    cu->lanes[0].batch = cu->opt.n_batch;
    /* Prefill dequantizes 64 MiB of weight rows at a time. */
    cu->lanes[0].deq_floats = (size_t)16 << 20;
    cu->lanes[1].batch = 1;
    cu->lanes[1].deq_floats = 0;
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
    layout_weights(cu, cu->weights);
    layout_scratch(cu, cu->scratch);
    return 0;
}

/* Copies every placed tensor up in pieces, drawing a progress bar. */
static int upload_weights(m40_cuda *cu, m40_err *err) {
    size_t total = 0, done = 0, piece = (size_t)64 << 20;
    int bar = !cu->opt.quiet;
    for (size_t i = 0; i < cu->n_placed; i++)
        total += tensor_bytes(cu->placed[i].w);
    for (size_t i = 0; i < cu->n_placed; i++) {
        const char *src = cu->placed[i].w->data;
        size_t bytes = tensor_bytes(cu->placed[i].w);
        for (size_t at = 0; at < bytes; at += piece) {
            size_t n = bytes - at < piece ? bytes - at : piece;
            if (m40_gpu_upload(&cu->gpu, cu->placed[i].d->ptr + at, src + at, n, err))
                return m40_err_wrap(err, "uploading %s", cu->placed[i].w->name);
            done += n;
            if (bar) {
                int pct = total ? (int)(done * 100 / total) : 100;
                fprintf(stderr, "\rm40-llm: uploading weights [%-40.*s] %3d%%", pct * 40 / 100,
                        "########################################", pct);
            }
        }
    }
    if (bar)
        fputc('\n', stderr);
    return 0;
}

/* The lanes' launchers and step buffers: the decode lane's on a stream of
 * its own at the highest priority. */
static int init_lanes(m40_cuda *cu, m40_err *err) {
    if (m40_cuda_ops_init(&cu->lanes[0].ops, &cu->gpu, err))
        return -1;
    if (cu->n_lanes > 1) {
        cu->lanes[1].ops = cu->lanes[0].ops;
        if (m40_gpu_stream_create(&cu->gpu, 1, &cu->lanes[1].ops.stream, err))
            return -1;
    }
    for (int i = 0; i < cu->n_lanes; i++) {
        lane *ln = &cu->lanes[i];
        ln->host_step = calloc(2 * (size_t)ln->batch, sizeof *ln->host_step);
        if (!ln->host_step)
            return m40_errf(err, "out of memory");
    }
    return 0;
}

/* Decode graphs, on the decode lane, when the driver has them and the
 * options allow. */
static int init_graphs(m40_cuda *cu, m40_err *err) {
    if (cu->opt.no_graphs || !m40_gpu_has_graphs(&cu->gpu))
        return 0;
    cu->n_buckets = 1;
    while ((M40_ATTN_CHUNK_DECODE << (cu->n_buckets - 1)) < cu->opt.n_ctx)
        cu->n_buckets++;
    lane *ln = &cu->lanes[cu->n_lanes - 1];
    ln->graphs = calloc((size_t)cu->opt.n_slots * cu->n_buckets, sizeof *ln->graphs);
    return ln->graphs ? 0 : m40_errf(err, "out of memory");
}

/* Waits for everything queued so far, the weight uploads on the legacy
 * stream included, before the non-blocking decode stream may read them. */
static int sync_all(m40_cuda *cu, m40_err *err) {
    const m40_cuda_driver *d = cu->gpu.drv;
    return m40_cu_check(d, d->cuCtxSynchronize(), "cuCtxSynchronize", err);
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
    cu->placed = calloc(4 + 12 * (size_t)c->n_layer, sizeof *cu->placed);
    m40_gpu_options go = {.gpu = opts->gpu, .cublas = M40_CUBLAS_AUTO};
    if (!cu->layers || !cu->placed) {
        m40_cuda_destroy(cu);
        return m40_errf(err, "out of memory");
    }
    if (m40_cublas_policy_from_env(&go.cublas, err) || m40_gpu_open(&cu->gpu, &go, err) ||
        init_lanes(cu, err) || check_types(cu, err) || alloc_all(cu, err) ||
        upload_weights(cu, err) || repack_weights(cu, err) || init_graphs(cu, err) ||
        sync_all(cu, err)) {
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
        for (int l = 0; l < cu->n_lanes; l++) {
            for (int i = 0; cu->lanes[l].graphs && i < cu->opt.n_slots * cu->n_buckets; i++)
                m40_gpu_graph_free(&cu->gpu, cu->lanes[l].graphs[i]);
        }
        if (cu->n_lanes > 1) /* the decode lane's own stream (NULL if never made) */
            m40_gpu_stream_destroy(&cu->gpu, cu->lanes[1].ops.stream);
        m40_gpu_free(&cu->gpu, cu->weights);
        m40_gpu_free(&cu->gpu, cu->k_cache);
        m40_gpu_free(&cu->gpu, cu->v_cache);
        m40_gpu_free(&cu->gpu, cu->scratch);
        m40_gpu_close(&cu->gpu);
    }
    for (int l = 0; l < 2; l++) {
        free(cu->lanes[l].graphs);
        free(cu->lanes[l].host_step);
    }
    free(cu->layers);
    free(cu->placed);
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
    size_t bytes = (size_t)cu->kv_dim * cu->kv_elem, off = (size_t)pos * bytes;
    unsigned char *h = malloc(2 * bytes);
    if (!h)
        return m40_errf(err, "out of memory");
    int rc =
        m40_gpu_sync(&cu->gpu, err) ||
        m40_gpu_download(&cu->gpu, h, cache_at(cu, cu->k_cache, slot, layer) + off, bytes, err) ||
        m40_gpu_download(&cu->gpu, h + bytes, cache_at(cu, cu->v_cache, slot, layer) + off, bytes,
                         err);
    for (int i = 0; rc == 0 && i < cu->kv_dim; i++) {
        if (cu->kv_f32) {
            memcpy(&k[i], h + (size_t)i * 4, 4);
            memcpy(&v[i], h + bytes + (size_t)i * 4, 4);
        } else {
            uint16_t hk, hv;
            memcpy(&hk, h + (size_t)i * 2, 2);
            memcpy(&hv, h + bytes + (size_t)i * 2, 2);
            k[i] = m40_fp16_to_fp32(hk);
            v[i] = m40_fp16_to_fp32(hv);
        }
    }
    free(h);
    return rc ? -1 : 0;
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
