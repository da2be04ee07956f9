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
 *     head_norm: each q and k head of qkv RMSNormed in place (qwen3 only)
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
 *
 * The weights' places (dlayer) come from weights.c, the buffers and lanes
 * from cuda_backend.c; this file only runs the pass.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"

/* ---- launch helpers ----------------------------------------------------- */

/* What one enqueued forward covers: T tokens of one slot at consecutive
 * positions (a prompt chunk, or a decode step when T = 1), or, with
 * `rows`, T decode rows of T different slots (ln->slots, ln->chunks). No
 * token's position exceeds max_pos. */
typedef struct pass {
    int T, slot, rows, max_pos;
    /* a prompt chunk's n_batch block (from position 0) holds `block` tokens
     * up to its end: short ones take the mat-vec path (matmul) and the
     * split attention kernel (run); 0 for decode steps and rows */
    int block;
} pass;

/* A prompt chunk takes the batched mat-vec instead of dequantize + GEMM
 * when the prompt's n_batch block it ends in holds at most this many
 * tokens: the dequantize of every matrix is a fixed cost per chunk that a
 * few tokens' mat-vecs undercut. On an M40, by its paper figures, the
 * paths cross near 150 tokens (~106 ms + 2.45 ms a token against ~3.15
 * ms; docs/batching.md). On an H100 (nineteenth session, 7B; dequantize
 * through shared memory) the GEMM costs ~30 ms + 0.24 ms a token and the
 * mat-vec 0.57 (Q4_0), 0.63 (Q8_0) and 0.83 ms (Q4_K_M) a token: they
 * cross near 90, 75 and 50 tokens there (docs/performance.md). 128 is
 * the M40's choice; on the big cards it costs a 128-token chunk ~10 ms.
 * Deciding by that block's length rather than the chunk's own makes a
 * chunk shortened by the prompt cache take the path the uncached chunk
 * takes, so a cached prefix still gives the same bits. */
#define M40_CUDA_PROMPT_GEMV 128

/* y[T][ldy] (its first w.rows columns) = x[T][w.cols] W^T (+ bias), or
 * += when `accumulate` (the residual add). A single token or decode rows
 * take the mat-vec kernels, row by row bit for bit what each row alone
 * gives; a prompt chunk dequantizes and multiplies (SGEMM). */
static int matmul(m40_cuda *cu, lane *ln, m40_dptr y, int ldy, const dweight *w,
                  const dweight *bias, m40_dptr x, const pass *p, int accumulate, m40_err *err) {
    m40_cuda_ops *ops = &ln->ops;
    int T = p->T;
    int gemv = cu->opt.prompt_gemv ? cu->opt.prompt_gemv > 0 : p->block <= M40_CUDA_PROMPT_GEMV;
    if (T == 1 || p->rows || gemv)
        return m40_cuda_gemv_batch(ops, w, y, ldy, x, w->cols, T, bias ? bias->ptr : 0, accumulate,
                                   err);
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

m40_dptr m40_cuda_cache_at(const m40_cuda *cu, m40_dptr cache, int slot, int layer) {
    const m40_model_config *c = &cu->model->cfg;
    size_t per_layer = (size_t)cu->opt.n_ctx * cu->kv_row;
    return cache + ((size_t)slot * c->n_layer + layer) * per_layer;
}

/* Elements from one slot's cache to the next's. */
static long long slot_stride(const m40_cuda *cu) {
    return (long long)cu->model->cfg.n_layer * cu->opt.n_ctx * cu->kv_dim;
}

static m40_dptr row_at(m40_dptr base, int row, int width) {
    return base + (size_t)row * width * sizeof(float);
}

/* ---- one forward chunk ---------------------------------------------------- */

/* qkv[T][qkv_dim] = xb Wq | xb Wk | xb Wv (+ biases): one product over the
 * fused matrix, or three into the column ranges when the types differ. */
static int project_qkv(m40_cuda *cu, lane *ln, const dlayer *L, const pass *p, m40_err *err) {
    int ld = cu->qkv_dim;
    m40_dptr q = ln->qkv, k = q + (size_t)cu->q_dim * sizeof(float);
    m40_dptr v = k + (size_t)cu->kv_dim * sizeof(float);
    if (L->wqkv.ptr)
        return matmul(cu, ln, q, ld, &L->wqkv, L->bqkv.ptr ? &L->bqkv : NULL, ln->xb, p, 0, err);
    return matmul(cu, ln, q, ld, &L->wq, &L->bq, ln->xb, p, 0, err) ||
                   matmul(cu, ln, k, ld, &L->wk, &L->bk, ln->xb, p, 0, err) ||
                   matmul(cu, ln, v, ld, &L->wv, &L->bv, ln->xb, p, 0, err)
               ? -1
               : 0;
}

/* gu[T][2 n_ff] = xb Wgate | xb Wup, fused as above. */
static int project_gate_up(m40_cuda *cu, lane *ln, const dlayer *L, const pass *p, m40_err *err) {
    int n_ff = cu->model->cfg.n_ff;
    if (L->wgu.ptr)
        return matmul(cu, ln, ln->gu, 2 * n_ff, &L->wgu, NULL, ln->xb, p, 0, err);
    return matmul(cu, ln, ln->gu, 2 * n_ff, &L->gate, NULL, ln->xb, p, 0, err) ||
                   matmul(cu, ln, ln->gu + (size_t)n_ff * sizeof(float), 2 * n_ff, &L->up, NULL,
                          ln->xb, p, 0, err)
               ? -1
               : 0;
}

/* What a decode query's split length depends on (ops.h). */
static m40_cuda_attn_dims attn_dims(const m40_cuda *cu) {
    const m40_model_config *c = &cu->model->cfg;
    return (m40_cuda_attn_dims){c->n_head, c->n_head_kv, c->head_dim, cu->gpu.info.sm_count};
}

/* Positions per attention split: for one query, short enough that a
 * decode step at a short context still spreads over the whole GPU. */
static int attn_chunk(const m40_cuda *cu, int T, int max_pos) {
    const m40_cuda_attn_dims d = attn_dims(cu);
    return T == 1 ? m40_cuda_attn_decode_chunk(&d, max_pos + 1) : M40_ATTN_CHUNK;
}

/* RoPE, the KV cache append and attention: att[T][q_dim] from qkv. Decode
 * rows each use their own slot's cache and their own split length. */
static int attend(m40_cuda *cu, lane *ln, int l, const pass *p, m40_err *err) {
    const m40_model_config *c = &cu->model->cfg;
    m40_cuda_ops *ops = &ln->ops;
    const int ld = cu->qkv_dim, kvt = cu->kv_type;
    /* a sliding layer: the last swa_window positions, and for gemma its own
     * RoPE table; Gemma 2's score cap; the model's score scale */
    const int swa = m40_layer_is_swa(c, l);
    const m40_dptr cs = m40_layer_own_rope(c, l) ? ln->cs_swa : ln->cs;
    const m40_cuda_attn_layer al = {c->attn_scale, swa ? c->swa_window : 0, c->attn_softcap};
    m40_dptr kc = m40_cuda_cache_at(cu, cu->k_cache, p->rows ? 0 : p->slot, l),
             vc = m40_cuda_cache_at(cu, cu->v_cache, p->rows ? 0 : p->slot, l);
    /* q, k and v heads lie in a row of qkv: one launch rotates q and k and
     * appends k and v to the cache */
    const m40_cuda_attn_dims dims = attn_dims(cu);
    if (p->rows)
        return m40_cuda_rope_store_rows(ops, ln->qkv, cs, ln->pos, ln->slots, slot_stride(cu), kc,
                                        vc, p->T, c->n_head, c->n_head_kv, c->head_dim, c->rope_dim,
                                        c->rope_style, ld, kvt, err) ||
                       m40_cuda_attention_rows(
                           ops, ln->att, ln->qkv, ld, kc, vc, ln->slots, slot_stride(cu), ln->pos,
                           ln->chunks, p->T, p->max_pos,
                           m40_cuda_attn_decode_chunk(&dims, p->max_pos + 1), c->n_head,
                           c->n_head_kv, c->head_dim, kvt, &al, ln->attn_tmp, err)
                   ? -1
                   : 0;
    if (m40_cuda_rope_store(ops, ln->qkv, cs, ln->pos, kc, vc, p->T, c->n_head, c->n_head_kv,
                            c->head_dim, c->rope_dim, c->rope_style, ld, kvt, err))
        return -1;
    /* with M40_CUDA_TILED_BY_DEFAULT, a prompt chunk whose n_batch block
     * holds M40_TILED_MIN_T tokens or more: one pass over the keys per
     * tile of queries (the split-attn switch: never; tiled-attn: every
     * chunk). Deciding by the block, as the mat-vec path does, keeps a
     * prompt's bits whatever part of it the prompt cache already holds,
     * and whatever else runs. */
    int min_block = cu->opt.tiled_attn > 0                                 ? 0
                    : cu->opt.tiled_attn == 0 && M40_CUDA_TILED_BY_DEFAULT ? M40_TILED_MIN_T
                                                                           : 0x7fffffff;
    if (p->T > 1 && p->block >= min_block &&
        m40_cuda_attention_tiled_fits(c->n_head, c->n_head_kv, c->head_dim))
        return m40_cuda_attention_tiled(ops, ln->att, ln->qkv, ld, kc, vc, ln->pos, p->T,
                                        p->max_pos, c->n_head, c->n_head_kv, c->head_dim, kvt, &al,
                                        ln->attn_tmp, err);
    return m40_cuda_attention(ops, ln->att, ln->qkv, ld, kc, vc, ln->pos, p->T, p->max_pos,
                              attn_chunk(cu, p->T, p->max_pos), c->n_head, c->n_head_kv,
                              c->head_dim, kvt, &al, ln->attn_tmp, err);
}

/* x[T][d] += w in (the residual add fused into the product), or, with
 * post-norms (gemma), x += rmsnorm(w in) * post: the product into xb, its
 * norm in place, then the add. */
static int add_output(m40_cuda *cu, lane *ln, const dweight *w, m40_dptr in, const dweight *post,
                      const pass *p, m40_err *err) {
    const m40_model_config *c = &cu->model->cfg;
    const int d = c->n_embd, T = p->T;
    if (!c->has_post_norms)
        return matmul(cu, ln, ln->x, d, w, NULL, in, p, 1, err);
    return matmul(cu, ln, ln->xb, d, w, NULL, in, p, 0, err) ||
                   m40_cuda_rmsnorm(&ln->ops, ln->xb, ln->xb, post->ptr, T, d, c->rms_eps, err) ||
                   m40_cuda_add(&ln->ops, ln->x, ln->x, ln->xb, T * d, err)
               ? -1
               : 0;
}

/* hb[T][n_ff] = act(gate) * up from the fused gate|up buffer: SiLU, or
 * GELU's tanh form (gemma). */
static int gate(m40_cuda *cu, lane *ln, int T, m40_err *err) {
    const int n_ff = cu->model->cfg.n_ff;
    m40_dptr up = ln->gu + (size_t)n_ff * sizeof(float);
    if (cu->model->cfg.ffn_act == M40_ACT_GELU_TANH)
        return m40_cuda_geglu(&ln->ops, ln->hb, ln->gu, up, T, n_ff, 2 * n_ff, err);
    return m40_cuda_swiglu(&ln->ops, ln->hb, ln->gu, up, T, n_ff, 2 * n_ff, err);
}

/* Expert e's rows of a stack of n_expert matrices of `rows` rows each (in
 * their GGUF layout: a row range is a pointer offset). */
static dweight expert_view(const dweight *stack, int e, int rows) {
    dweight v = *stack;
    v.ptr += (m40_dptr)((int64_t)e * rows * stack->row_bytes);
    v.rows = rows;
    return v;
}

/* The MLP of a mixture of experts, x[T][d] += sum_j w_j expert_j(xb), as
 * the CPU's moe_block: the router's logits and the routing run on the GPU
 * (moe_route.cu); the picks come back to the host, which groups the
 * (token, pick) pairs by expert; each expert that has tokens runs once
 * over its tokens' rows (gathered; a decode step's single row is a
 * mat-vec reading only that expert's rows), its outputs go to their
 * pairs' places, and moe_combine.cu adds them up in pick order. The
 * read-back makes a decode step of such a model ungraphable
 * (init_graphs). */
static int moe_mlp(m40_cuda *cu, lane *ln, const dlayer *L, const pass *p, m40_err *err) {
    const m40_model_config *c = &cu->model->cfg;
    m40_cuda_ops *ops = &ln->ops;
    const int T = p->T, d = c->n_embd, ne = c->n_expert, k = c->n_expert_used, f = c->n_ff_exp;
    const int pairs = T * k;
    if (matmul(cu, ln, ln->m_logits, ne, &L->router, NULL, ln->xb, p, 0, err) ||
        m40_cuda_moe_route(ops, ln->m_ids, ln->m_w, ln->m_logits, T, ne, k, err) ||
        m40_gpu_download_on(&cu->gpu, ops->stream, ln->h_ids, ln->m_ids,
                            (size_t)pairs * sizeof *ln->h_ids, err))
        return -1;
    /* pairs by expert (counting sort): h_idx[0..pairs) the token of each,
     * h_idx[pairs..) its row in m_all (token * k + pick) */
    int32_t *start = ln->h_start, *src = ln->h_idx, *dst = ln->h_idx + pairs;
    memset(start, 0, (size_t)(ne + 1) * sizeof *start);
    for (int i = 0; i < pairs; i++) {
        if (ln->h_ids[i] < 0 || ln->h_ids[i] >= ne)
            return m40_errf(err, "moe: routing picked expert %d of %d", ln->h_ids[i], ne);
        start[ln->h_ids[i] + 1]++;
    }
    for (int e = 0; e < ne; e++)
        start[e + 1] += start[e];
    for (int i = 0; i < pairs; i++) {
        int at = start[ln->h_ids[i]]++;
        src[at] = i / k;
        dst[at] = i;
    }
    for (int e = ne; e > 0; e--) /* back to each expert's first entry */
        start[e] = start[e - 1];
    start[0] = 0;
    if (m40_gpu_upload_on(&cu->gpu, ops->stream, ln->m_idx, ln->h_idx,
                          2 * (size_t)pairs * sizeof *ln->h_idx, err))
        return -1;
    for (int e = 0; e < ne; e++) {
        const int n = start[e + 1] - start[e];
        if (n == 0)
            continue;
        const m40_dptr src_idx = ln->m_idx + (size_t)start[e] * sizeof(int32_t);
        const m40_dptr dst_idx = ln->m_idx + ((size_t)pairs + (size_t)start[e]) * sizeof(int32_t);
        const dweight gate = expert_view(&L->gate_exps, e, f), up = expert_view(&L->up_exps, e, f);
        const dweight down = expert_view(&L->down_exps, e, d);
        const pass pe = {
            .T = n, .slot = p->slot, .rows = p->rows, .max_pos = p->max_pos, .block = p->block};
        if (m40_cuda_copy_rows(ops, ln->m_g, 0, ln->xb, src_idx, n, d, err) ||
            matmul(cu, ln, ln->m_gate, f, &gate, NULL, ln->m_g, &pe, 0, err) ||
            matmul(cu, ln, ln->m_up, f, &up, NULL, ln->m_g, &pe, 0, err) ||
            m40_cuda_swiglu(ops, ln->m_gate, ln->m_gate, ln->m_up, n, f, f, err) ||
            matmul(cu, ln, ln->m_y, d, &down, NULL, ln->m_gate, &pe, 0, err) ||
            m40_cuda_copy_rows(ops, ln->m_all, dst_idx, ln->m_y, 0, n, d, err))
            return m40_err_wrap(err, "expert %d", e);
    }
    return m40_cuda_moe_combine(ops, ln->x, ln->m_all, ln->m_w, T, k, d, err);
}

static int layer_forward(m40_cuda *cu, lane *ln, int l, const pass *p, m40_err *err) {
    const m40_model_config *c = &cu->model->cfg;
    const dlayer *L = &cu->layers[l];
    m40_cuda_ops *ops = &ln->ops;
    const int d = c->n_embd, T = p->T;
    return m40_cuda_rmsnorm(ops, ln->xb, ln->x, L->attn_norm.ptr, T, d, c->rms_eps, err) ||
                   project_qkv(cu, ln, L, p, err) ||
                   (c->has_qk_norm &&
                    m40_cuda_head_norm(ops, ln->qkv, L->q_norm.ptr, L->k_norm.ptr, T, cu->qkv_dim,
                                       c->n_head, c->n_head_kv, c->head_dim, c->rms_eps, err)) ||
                   attend(cu, ln, l, p, err) ||
                   add_output(cu, ln, &L->wo, ln->att, &L->attn_post_norm, p, err) ||
                   m40_cuda_rmsnorm(ops, ln->xb, ln->x, L->ffn_norm.ptr, T, d, c->rms_eps, err) ||
                   (c->n_expert > 0
                        ? moe_mlp(cu, ln, L, p, err)
                        : project_gate_up(cu, ln, L, p, err) || gate(cu, ln, T, err) ||
                              add_output(cu, ln, &L->down, ln->hb, &L->ffn_post_norm, p, err))
               ? -1
               : 0;
}

/* Queues the ids and positions of T tokens up (one copy). */
static int upload_step(m40_cuda *cu, lane *ln, const int32_t *tokens, int T, int pos0,
                       m40_err *err) {
    int R = ln->rows;
    for (int t = 0; t < T; t++) {
        ln->host_step[t] = tokens[t];
        ln->host_step[R + t] = pos0 + t;
    }
    return m40_gpu_upload_on(&cu->gpu, ln->ops.stream, ln->step, ln->host_step,
                             (size_t)(R + T) * sizeof(int32_t), err);
}

/* Enqueues the forward of the uploaded tokens and, when want_logits, the
 * logits: of the last token in ln->logits, or of every decode row in
 * ln->logits[T][n_vocab] with their argmax in ln->argmax[T]. */
static int forward_body(m40_cuda *cu, lane *ln, const pass *p, int want_logits, m40_err *err) {
    const m40_model_config *c = &cu->model->cfg;
    m40_cuda_ops *ops = &ln->ops;
    const int d = c->n_embd, T = p->T;
    /* YaRN and LongRoPE as the CPU applies them (cpu/forward.c) */
    m40_cuda_rope_ext ext = {c->rope_yarn, 0.0, 0.0, c->rope_mscale};
    if (c->rope_yarn)
        m40_rope_yarn_range(c->rope_dim, c->rope_orig_ctx, c->rope_freq_base, c->yarn_beta_fast,
                            c->yarn_beta_slow, &ext.low, &ext.high);
    /* embeddings (times sqrt(d) for gemma); the RoPE tables: the sliding
     * layers' with their own base, unscaled, without YaRN (cpu/forward.c) */
    if (m40_cuda_dequant_rows(ops, &cu->tok_embd, ln->x, ln->ids, 0, T, err) ||
        (c->embd_scale != 1.0f && m40_cuda_scale(ops, ln->x, T * d, c->embd_scale, err)) ||
        m40_cuda_rope_table(ops, ln->cs, ln->pos, T, c->rope_dim, c->rope_freq_base,
                            c->rope_freq_scale, cu->rope_freqs.ptr,
                            c->rope_yarn || c->rope_longrope ? &ext : NULL, err) ||
        (c->swa_own_rope && c->swa_window > 0 &&
         m40_cuda_rope_table(ops, ln->cs_swa, ln->pos, T, c->rope_dim, c->rope_freq_base_swa, 1.0f,
                             cu->rope_freqs.ptr, NULL, err)))
        return -1;
    for (int l = 0; l < c->n_layer; l++) {
        if (layer_forward(cu, ln, l, p, err))
            return m40_err_wrap(err, "layer %d", l);
    }
    if (!want_logits)
        return 0;
    if (p->rows)
        return m40_cuda_rmsnorm(ops, ln->xb, ln->x, cu->output_norm.ptr, T, d, c->rms_eps, err) ||
                       matmul(cu, ln, ln->logits, c->n_vocab, &cu->output, NULL, ln->xb, p, 0,
                              err) ||
                       (c->final_softcap > 0.0f &&
                        m40_cuda_softcap(ops, ln->logits, T * c->n_vocab, c->final_softcap, err)) ||
                       m40_cuda_argmax_rows(ops, ln->argmax, ln->logits, c->n_vocab, T, err)
                   ? -1
                   : 0;
    pass last = {.T = 1, .slot = p->slot, .max_pos = p->max_pos};
    return m40_cuda_rmsnorm(ops, ln->xb, row_at(ln->x, T - 1, d), cu->output_norm.ptr, 1, d,
                            c->rms_eps, err) ||
                   matmul(cu, ln, ln->logits, c->n_vocab, &cu->output, NULL, ln->xb, &last, 0,
                          err) ||
                   (c->final_softcap > 0.0f && /* Gemma 2's logit cap */
                    m40_cuda_softcap(ops, ln->logits, c->n_vocab, c->final_softcap, err))
               ? -1
               : 0;
}

/* The context bucket of a decode step reaching position `pos`: bucket b
 * sizes attention for positions up to 32 * 2^b (or the context's end);
 * *max_pos gets that bound. */
static int bucket_of(const m40_cuda *cu, int pos, int *max_pos) {
    int b = 0;
    while ((M40_ATTN_CHUNK_DECODE << b) < pos + 1)
        b++;
    *max_pos = (M40_ATTN_CHUNK_DECODE << b) - 1;
    if (*max_pos > cu->opt.n_ctx - 1)
        *max_pos = cu->opt.n_ctx - 1;
    return b;
}

/* Records p's forward (logits and argmax) into *g on first use. */
static int graph_for(m40_cuda *cu, lane *ln, const pass *p, m40_cu_graph_exec *g, m40_err *err) {
    if (*g)
        return 0;
    if (m40_gpu_capture_begin_on(&cu->gpu, ln->ops.stream, err))
        return -1;
    if (forward_body(cu, ln, p, 1, err) ||
        (!p->rows &&
         m40_cuda_argmax(&ln->ops, ln->argmax, ln->logits, cu->model->cfg.n_vocab, err))) {
        m40_gpu_capture_end_on(&cu->gpu, ln->ops.stream, NULL, NULL);
        return m40_err_wrap(err, "recording the decode graph");
    }
    return m40_gpu_capture_end_on(&cu->gpu, ln->ops.stream, g, err);
}

/* The decode graph for a token at `pos` of `slot`: logits and argmax. */
static int decode_graph(m40_cuda *cu, lane *ln, int slot, int pos, m40_cu_graph_exec *out,
                        m40_err *err) {
    pass p = {.T = 1, .slot = slot};
    int b = bucket_of(cu, pos, &p.max_pos);
    m40_cu_graph_exec *g = &ln->graphs[(size_t)slot * cu->n_buckets + b];
    if (graph_for(cu, ln, &p, g, err))
        return -1;
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
        /* the length of the n_batch block (from position 0) this chunk ends in */
        const int end = pos0 + done + T, block = (end - 1) % cu->opt.n_batch + 1;
        pass p = {.T = T, .slot = slot, .max_pos = pos0 + done + T - 1, .block = block};
        if (upload_step(cu, ln, tokens + done, T, pos0 + done, err) ||
            forward_body(cu, ln, &p, done + T == n, err))
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

/* ---- decode rows of several sequences ------------------------------------- */

/* Enqueues one decode step of B (2..n_dec) rows: uploads the rows' ids,
 * positions, slots and split lengths, then runs the graph of (B, the
 * bucket of the furthest position), or the launches without graphs. */
static int run_rows(m40_cuda *cu, lane *ln, int B, const int32_t *slot, const int32_t *token,
                    const int32_t *pos, m40_err *err) {
    int R = ln->rows, furthest = 0;
    const m40_cuda_attn_dims dims = attn_dims(cu);
    for (int i = 0; i < B; i++) {
        ln->host_step[i] = token[i];
        ln->host_step[R + i] = pos[i];
        ln->host_step[2 * R + i] = slot[i];
        /* the split length this row would use alone (attn_chunk) */
        ln->host_step[3 * R + i] = m40_cuda_attn_decode_chunk(&dims, pos[i] + 1);
        furthest = pos[i] > furthest ? pos[i] : furthest;
    }
    if (m40_gpu_upload_on(&cu->gpu, ln->ops.stream, ln->step, ln->host_step,
                          (size_t)4 * R * sizeof(int32_t), err))
        return -1;
    pass p = {.T = B, .rows = 1, .max_pos = furthest};
    if (!ln->row_graphs)
        return forward_body(cu, ln, &p, 1, err);
    int b = bucket_of(cu, furthest, &p.max_pos);
    m40_cu_graph_exec *g = &ln->row_graphs[(size_t)(B - 2) * cu->n_buckets + b];
    return graph_for(cu, ln, &p, g, err) ||
                   m40_gpu_graph_launch_on(&cu->gpu, ln->ops.stream, *g, err)
               ? -1
               : 0;
}

/* Brings rows' results back: logits in as few copies as the destinations
 * allow (consecutive rows into consecutive buffers: one copy), argmax in
 * one. */
static int fetch_rows(m40_cuda *cu, lane *ln, int B, float *const *logits, int32_t *argmax,
                      m40_err *err) {
    const size_t nv = (size_t)cu->model->cfg.n_vocab;
    for (int i = 0, j; i < B; i = j) {
        for (j = i + 1; j < B && logits[i] && logits[j] == logits[j - 1] + nv;)
            j++;
        if (logits[i] && m40_gpu_download_on(&cu->gpu, ln->ops.stream, logits[i],
                                             ln->logits + (size_t)i * nv * sizeof(float),
                                             (size_t)(j - i) * nv * sizeof(float), err))
            return -1;
    }
    return argmax ? m40_gpu_download_on(&cu->gpu, ln->ops.stream, argmax, ln->argmax,
                                        (size_t)B * sizeof *argmax, err)
                  : m40_gpu_sync_on(&cu->gpu, ln->ops.stream, err);
}

/* One row alone: the single-sequence path (its graphs, its kernels). */
static int run_one_row(m40_cuda *cu, int32_t slot, int32_t token, int32_t pos, float *logits,
                       int32_t *argmax, m40_err *err) {
    if (logits)
        return m40_cuda_forward(cu, slot, &token, 1, pos, logits, err);
    int32_t ignored;
    return m40_cuda_forward_greedy(cu, slot, &token, 1, pos, argmax ? argmax : &ignored, err);
}

/* Rows must name different slots, in range, at positions in the context,
 * with tokens in the vocabulary. */
static int check_rows(const m40_cuda *cu, int32_t n, const int32_t *slot, const int32_t *token,
                      const int32_t *pos, m40_err *err) {
    for (int32_t i = 0; i < n; i++) {
        if (slot[i] < 0 || slot[i] >= cu->opt.n_slots)
            return m40_errf(err, "cuda forward: slot %d outside 0..%d", slot[i],
                            cu->opt.n_slots - 1);
        if (pos[i] < 0 || pos[i] >= cu->opt.n_ctx)
            return m40_errk(err, M40_ERR_TOO_LONG,
                            "cuda forward: position %d does not fit a context of %d", pos[i],
                            cu->opt.n_ctx);
        if (token[i] < 0 || token[i] >= cu->model->cfg.n_vocab)
            return m40_errk(err, M40_ERR_BAD_INPUT,
                            "cuda forward: token id %d outside the vocabulary of %d", token[i],
                            cu->model->cfg.n_vocab);
        for (int32_t j = 0; j < i; j++) {
            if (slot[j] == slot[i])
                return m40_errf(err, "cuda forward: two decode rows of slot %d", slot[i]);
        }
    }
    return 0;
}

int m40_cuda_forward_rows(m40_cuda *cu, int32_t n, const int32_t *slot, const int32_t *token,
                          const int32_t *pos, float *const *logits, int32_t *argmax, m40_err *err) {
    if (m40_gpu_make_current(&cu->gpu, err) || check_rows(cu, n, slot, token, pos, err))
        return -1;
    lane *ln = &cu->lanes[cu->n_lanes - 1];
    int most = ln->n_dec > 1 ? ln->n_dec : 1;
    /* pieces of nearly equal size when there are more rows than a forward takes */
    int pieces = (n + most - 1) / most;
    for (int i = 0, k = 0; k < pieces; k++) {
        int B = (n - i) / (pieces - k);
        int32_t *am = argmax ? argmax + i : NULL;
        if (B == 1 ? run_one_row(cu, slot[i], token[i], pos[i], logits[i], am, err)
                   : run_rows(cu, ln, B, slot + i, token + i, pos + i, err) ||
                         fetch_rows(cu, ln, B, logits + i, am, err))
            return -1;
        i += B;
    }
    return 0;
}
