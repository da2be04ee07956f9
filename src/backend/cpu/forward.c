/* forward.c - the llama-family forward pass on the CPU, end to end.
 *
 * Read this file top to bottom to follow one forward call:
 *
 *   tokens[T] --embedding--> x[T][d]  (times sqrt(d): gemma)
 *   for each layer:
 *       xb = rmsnorm(x) * attn_norm
 *       q = xb Wq (+bq), k = xb Wk (+bk), v = xb Wv (+bv)     (qwen2 biases)
 *       each head of q and k: rmsnorm(head) * q_norm / k_norm  (qwen3, gemma3)
 *       rope(q, k) at each token's position (sliding layers: their own base)
 *       K/V cache[slot][layer][pos] = k, v   (FP16)
 *       att = softmax(q k^T * attn_scale) v over positions <= pos (causal,
 *             GQA; on a sliding layer only the last swa_window of them;
 *             gemma2 soft-caps the scores: c tanh(s / c))
 *       x += att Wo                 (gemma: x += rmsnorm(att Wo) * attn_post_norm)
 *       xb = rmsnorm(x) * ffn_norm
 *       x += (act(xb Wgate) * (xb Wup)) Wdown   act: silu, or gelu (gemma);
 *                                   gemma: the sum normed by ffn_post_norm first;
 *            MoE: p = softmax(xb Wrouter), the top n_expert_used experts e
 *            by p, x += sum of p_e / (sum of their p) * expert e's MLP(xb)
 *   logits = rmsnorm(x[T-1]) * output_norm  Wout   (gemma2: soft-capped)
 *
 * d = n_embd, hd = head_dim, T = tokens in this call (<= n_batch; longer
 * calls are cut into chunks). The T tokens may belong to several sequences
 * (a batch): token t has its own slot and position, and everything but the
 * K/V store and the attention is the same for all of them. Weights stay in their GGUF type: a
 * matrix product dequantizes one weight row at a time into FP32 and dots it with every token's
 * input, so no FP32 copy of the model ever exists. Math is FP32 (double for the long sums in
 * rmsnorm/softmax); the KV cache is FP16. Each output element is computed by exactly one thread in
 * a fixed order, so results do not depend on the thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/ops.h"
#include "gguf/gguf.h"
#include "quant/fp16.h"
#include "quant/quant.h"

struct m40_cpu {
    const m40_model *model;
    m40_cpu_options opt;
    int32_t kv_dim; /* n_head_kv * head_dim */
    int32_t q_dim;  /* n_head * head_dim */
    int32_t n_threads;
    void *k_cache;       /* [n_slots][n_layer][n_ctx] rows of kv_dim in opt.k_type (k_row bytes) */
    void *v_cache;       /* same shape */
    size_t k_row, v_row; /* bytes per cached position (a kv_dim row in k_type / v_type) */
    size_t kv_bytes, scratch_bytes; /* what the cache and the buffers below take */
    float *x;                       /* [n_batch][d]    residual stream */
    float *xb;                      /* [n_batch][max(d, q_dim)] normed input / projections */
    float *q;                       /* [n_batch][q_dim] */
    float *k, *v;                   /* [n_batch][kv_dim] */
    float *att;                     /* [n_batch][q_dim] attention output */
    float *hb, *hb2;                /* [n_batch][max(n_ff, n_ff_exp)]  MLP gate and up */
    float *router;                  /* [n_batch][n_expert] MoE: router probabilities */
    float *moe_y, *moe_out;         /* [d] each, MoE: one expert's output, a token's sum */
    float *scores;                  /* [n_threads][n_ctx] attention scratch */
    float *rowbuf;                  /* [n_threads][max_cols] one dequantized weight row */
    int32_t max_cols;
    int32_t *row_slot, *row_pos; /* [n_batch] each token's slot and position */
    uint8_t *want;               /* [n_batch] whose logits a single-slot forward wants */
};

/* ---- helpers ---------------------------------------------------------- */

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static float dot(const float *a, const float *b, int64_t n) {
    /* Eight independent partial sums: lets the compiler vectorize without
     * -ffast-math, and keeps the order fixed. */
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += a[i + j] * b[i + j];
    float s = 0.0f;
    for (; i < n; i++)
        s += a[i] * b[i];
    return s + ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

static const void *weight_row(const m40_weight *w, int64_t r) {
    return (const char *)w->data + (size_t)r * w->row_bytes;
}

/* y[T][n] = x[T][w.cols] times rows row0 .. row0 + n of W, transposed (+
 * bias). Dequantizes each weight row once per call and reuses it for all T
 * tokens; each output element is one thread's dot product. The model
 * loader checked every weight's type is one dequantize_row handles, so it
 * cannot fail here. */
static void matmul_rows(m40_cpu *cpu, float *y, const m40_weight *w, int64_t row0, int64_t n,
                        const m40_weight *bias, const float *x, int32_t T) {
    const int64_t cols = w->cols;
#pragma omp parallel for schedule(static) num_threads(cpu->n_threads)
    for (int64_t r = 0; r < n; r++) {
        float *row = cpu->rowbuf + (size_t)thread_id() * cpu->max_cols;
        m40_dequantize_row(w->type, weight_row(w, row0 + r), row, cols, NULL);
        float b = bias && bias->data ? ((const float *)bias->data)[row0 + r] : 0.0f;
        for (int32_t t = 0; t < T; t++)
            y[(size_t)t * n + r] = dot(row, x + (size_t)t * cols, cols) + b;
    }
}

/* y[T][w.rows] = x[T][w.cols] W^T (+ bias): every row. */
static void matmul(m40_cpu *cpu, float *y, const m40_weight *w, const m40_weight *bias,
                   const float *x, int32_t T) {
    matmul_rows(cpu, y, w, 0, w->rows, bias, x, T);
}

/* Position pos of a layer of a slot in a cache of `row`-byte rows. */
static void *kv_at(const m40_cpu *cpu, void *cache, size_t row, int32_t slot, int32_t layer,
                   int32_t pos) {
    size_t rows = ((size_t)slot * cpu->model->cfg.n_layer + (size_t)layer) * cpu->opt.n_ctx;
    return (unsigned char *)cache + (rows + (size_t)pos) * row;
}

/* ---- one layer ---------------------------------------------------------- */

/* x += xb, the block's output [T][d]; gemma norms xb first (post_norm). */
static void add_output(m40_cpu *cpu, const m40_model_config *c, const m40_weight *post_norm,
                       int32_t T) {
    const int32_t d = c->n_embd;
    if (c->has_post_norms) {
        for (int32_t t = 0; t < T; t++)
            m40_op_rmsnorm(cpu->xb + (size_t)t * d, cpu->xb + (size_t)t * d, post_norm->data, d,
                           c->rms_eps);
    }
    m40_op_add(cpu->x, cpu->x, cpu->xb, T * d);
}

/* The T tokens' slots and positions are cpu->row_slot and row_pos. */
static void attention_block(m40_cpu *cpu, const m40_layer *L, int32_t layer, int32_t T) {
    const m40_model_config *c = &cpu->model->cfg;
    const int32_t d = c->n_embd, hd = c->head_dim;
    const float *freq_factors = m40_model_rope_factors(cpu->model, cpu->opt.n_ctx);
    const int swa = m40_layer_is_swa(c, layer), own = m40_layer_own_rope(c, layer);
    const float base = own ? c->rope_freq_base_swa : c->rope_freq_base;
    const float scale = own ? 1.0f : c->rope_freq_scale;
    const m40_rope_ext ext_params = {c->rope_yarn, c->rope_orig_ctx, c->yarn_beta_fast,
                                     c->yarn_beta_slow, c->rope_mscale};
    const m40_rope_ext *ext = (c->rope_yarn || c->rope_longrope) && !own ? &ext_params : NULL;

    for (int32_t t = 0; t < T; t++)
        m40_op_rmsnorm(cpu->xb + (size_t)t * d, cpu->x + (size_t)t * d, L->attn_norm.data, d,
                       c->rms_eps);
    matmul(cpu, cpu->q, &L->wq, &L->bq, cpu->xb, T);
    matmul(cpu, cpu->k, &L->wk, &L->bk, cpu->xb, T);
    matmul(cpu, cpu->v, &L->wv, &L->bv, cpu->xb, T);

    for (int32_t t = 0; t < T; t++) {
        float *qt = cpu->q + (size_t)t * cpu->q_dim, *kt = cpu->k + (size_t)t * cpu->kv_dim;
        float *vt = cpu->v + (size_t)t * cpu->kv_dim;
        if (c->has_qk_norm) { /* qwen3, gemma3: each head normed on its own, before RoPE */
            for (int32_t h = 0; h < c->n_head; h++)
                m40_op_rmsnorm(qt + h * hd, qt + h * hd, L->q_norm.data, hd, c->rms_eps);
            for (int32_t h = 0; h < c->n_head_kv; h++)
                m40_op_rmsnorm(kt + h * hd, kt + h * hd, L->k_norm.data, hd, c->rms_eps);
        }
        int32_t slot = cpu->row_slot[t], pos = cpu->row_pos[t];
        m40_op_rope_ext(qt, c->n_head, hd, c->rope_dim, pos, base, scale, freq_factors,
                        c->rope_style, ext);
        m40_op_rope_ext(kt, c->n_head_kv, hd, c->rope_dim, pos, base, scale, freq_factors,
                        c->rope_style, ext);
        /* stored in the cache's types (create checked they can be) */
        m40_quantize_row(cpu->opt.k_type, kt,
                         kv_at(cpu, cpu->k_cache, cpu->k_row, slot, layer, pos), cpu->kv_dim, NULL);
        m40_quantize_row(cpu->opt.v_type, vt,
                         kv_at(cpu, cpu->v_cache, cpu->v_row, slot, layer, pos), cpu->kv_dim, NULL);
    }

    /* Token t sees positions 0 .. pos[t] of its own slot (causal; on a
     * sliding layer the last swa_window of them); the cache holds them all
     * by now, this chunk's included. One item per token and head, so a
     * decode step's single token keeps every thread busy (a head's result
     * is the same whichever thread computes it). */
    const int32_t group = c->n_head / c->n_head_kv;
    const size_t k_head = m40_ggml_row_bytes(cpu->opt.k_type, (uint64_t)hd);
    const size_t v_head = m40_ggml_row_bytes(cpu->opt.v_type, (uint64_t)hd);
#pragma omp parallel for schedule(dynamic) num_threads(cpu->n_threads)
    for (int64_t i = 0; i < (int64_t)T * c->n_head; i++) {
        const int32_t t = (int32_t)(i / c->n_head), h = (int32_t)(i % c->n_head), g = h / group;
        float *scores = cpu->scores + (size_t)thread_id() * cpu->opt.n_ctx;
        int32_t slot = cpu->row_slot[t], n_pos = cpu->row_pos[t] + 1;
        int32_t first = swa && n_pos > c->swa_window ? n_pos - c->swa_window : 0;
        /* head h's KV head g: a view of its columns of every position */
        m40_kv_view kv = {
            (const unsigned char *)kv_at(cpu, cpu->k_cache, cpu->k_row, slot, layer, 0) +
                (size_t)g * k_head,
            (const unsigned char *)kv_at(cpu, cpu->v_cache, cpu->v_row, slot, layer, 0) +
                (size_t)g * v_head,
            cpu->opt.k_type,
            cpu->opt.v_type,
            cpu->k_row,
            cpu->v_row};
        const size_t at = (size_t)t * cpu->q_dim + (size_t)h * hd;
        m40_op_attention_span(cpu->att + at, cpu->q + at, &kv, first, n_pos, 1, 1, hd,
                              c->attn_scale, c->attn_softcap, scores);
    }

    matmul(cpu, cpu->xb, &L->wo, NULL, cpu->att, T);
    add_output(cpu, c, &L->attn_post_norm, T);
}

/* p[n] = softmax(p[n]) in place, and the k indices of the largest in
 * pick[k], largest first (a tie: the lower index). */
static void route(float *p, int32_t n, int32_t k, int32_t *pick) {
    m40_op_softmax(p, n);
    for (int32_t j = 0; j < k; j++) {
        int32_t best = -1;
        for (int32_t i = 0; i < n; i++) {
            int taken = 0;
            for (int32_t m = 0; m < j; m++)
                taken |= pick[m] == i;
            if (!taken && (best < 0 || p[i] > p[best]))
                best = i;
        }
        pick[j] = best;
    }
}

/* The MoE MLP of the T tokens' normed inputs xb into xb (each token on its
 * own: its experts, then their outputs summed by weight in pick order). */
static void moe_block(m40_cpu *cpu, const m40_layer *L, int32_t T) {
    const m40_model_config *c = &cpu->model->cfg;
    const int32_t d = c->n_embd, ne = c->n_expert, k = c->n_expert_used, f = c->n_ff_exp;
    int32_t pick[64]; /* n_expert_used <= 64: cpu_create checked */
    matmul(cpu, cpu->router, &L->router, NULL, cpu->xb, T);
    for (int32_t t = 0; t < T; t++) {
        float *p = cpu->router + (size_t)t * ne, *xt = cpu->xb + (size_t)t * d;
        route(p, ne, k, pick);
        float total = 0.0f;
        for (int32_t j = 0; j < k; j++)
            total += p[pick[j]];
        float *out = cpu->moe_out;
        memset(out, 0, (size_t)d * sizeof *out);
        for (int32_t j = 0; j < k; j++) {
            int32_t e = pick[j];
            matmul_rows(cpu, cpu->hb, &L->gate_exps, (int64_t)e * f, f, NULL, xt, 1);
            matmul_rows(cpu, cpu->hb2, &L->up_exps, (int64_t)e * f, f, NULL, xt, 1);
            m40_op_swiglu(cpu->hb, cpu->hb, cpu->hb2, f);
            matmul_rows(cpu, cpu->moe_y, &L->down_exps, (int64_t)e * d, d, NULL, cpu->hb, 1);
            float wgt = p[e] / total;
            for (int32_t i = 0; i < d; i++)
                out[i] += wgt * cpu->moe_y[i];
        }
        memcpy(xt, out, (size_t)d * sizeof *out);
    }
}

static void mlp_block(m40_cpu *cpu, const m40_layer *L, int32_t T) {
    const m40_model_config *c = &cpu->model->cfg;
    const int32_t d = c->n_embd;
    for (int32_t t = 0; t < T; t++)
        m40_op_rmsnorm(cpu->xb + (size_t)t * d, cpu->x + (size_t)t * d, L->ffn_norm.data, d,
                       c->rms_eps);
    if (c->n_expert > 0) {
        moe_block(cpu, L, T);
    } else {
        matmul(cpu, cpu->hb, &L->w_gate, NULL, cpu->xb, T);
        matmul(cpu, cpu->hb2, &L->w_up, NULL, cpu->xb, T);
        if (c->ffn_act == M40_ACT_GELU_TANH)
            m40_op_geglu(cpu->hb, cpu->hb, cpu->hb2, T * c->n_ff);
        else
            m40_op_swiglu(cpu->hb, cpu->hb, cpu->hb2, T * c->n_ff);
        matmul(cpu, cpu->xb, &L->w_down, NULL, cpu->hb, T);
    }
    add_output(cpu, c, &L->ffn_post_norm, T);
}

/* ---- the forward call --------------------------------------------------- */

/* Runs tokens[0..T) at cpu->row_slot / row_pos and writes the logits of
 * the tokens with want[t] set (want NULL: none), in token order, to
 * logits[][n_vocab]. */
static void forward_chunk(m40_cpu *cpu, const int32_t *tokens, int32_t T, const uint8_t *want,
                          float *logits) {
    const m40_model *m = cpu->model;
    const int32_t d = m->cfg.n_embd;

    for (int32_t t = 0; t < T; t++) {
        float *xt = cpu->x + (size_t)t * d;
        m40_dequantize_row(m->tok_embd.type, weight_row(&m->tok_embd, tokens[t]), xt, d, NULL);
        for (int32_t i = 0; m->cfg.embd_scale != 1.0f && i < d; i++)
            xt[i] *= m->cfg.embd_scale;
    }

    for (int32_t l = 0; l < m->cfg.n_layer; l++) {
        attention_block(cpu, &m->layers[l], l, T);
        mlp_block(cpu, &m->layers[l], T);
    }

    /* only the wanted tokens' logits: their normed rows side by side in xb */
    int32_t n_want = 0;
    for (int32_t t = 0; want && t < T; t++) {
        if (want[t])
            m40_op_rmsnorm(cpu->xb + (size_t)n_want++ * d, cpu->x + (size_t)t * d,
                           m->output_norm.data, d, m->cfg.rms_eps);
    }
    if (n_want)
        matmul(cpu, logits, &m->output, NULL, cpu->xb, n_want);
    const float cap = m->cfg.final_softcap; /* gemma2 */
    for (size_t i = 0; cap > 0.0f && i < (size_t)n_want * (size_t)m->cfg.n_vocab; i++)
        logits[i] = cap * tanhf(logits[i] / cap);
}

int m40_cpu_forward(m40_cpu *cpu, int32_t slot, const int32_t *tokens, int32_t n, int32_t pos0,
                    float *logits, m40_err *err) {
    const m40_model_config *c = &cpu->model->cfg;
    if (slot < 0 || slot >= cpu->opt.n_slots)
        return m40_errf(err, "cpu forward: slot %d outside 0..%d", slot, cpu->opt.n_slots - 1);
    if (n <= 0 || pos0 < 0 || n > cpu->opt.n_ctx - pos0)
        return m40_errk(err, M40_ERR_TOO_LONG,
                        "cpu forward: %d tokens at position %d do not fit a context of %d", n, pos0,
                        cpu->opt.n_ctx);
    for (int32_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= c->n_vocab)
            return m40_errk(err, M40_ERR_BAD_INPUT,
                            "cpu forward: token id %d outside the vocabulary of %d", tokens[i],
                            c->n_vocab);
    }
    for (int32_t done = 0; done < n;) {
        int32_t T = n - done < cpu->opt.n_batch ? n - done : cpu->opt.n_batch;
        for (int32_t t = 0; t < T; t++) {
            cpu->row_slot[t] = slot;
            cpu->row_pos[t] = pos0 + done + t;
            cpu->want[t] = done + t == n - 1; /* the last token's logits */
        }
        forward_chunk(cpu, tokens + done, T, cpu->want, logits);
        done += T;
    }
    return 0;
}

int m40_cpu_forward_batch(m40_cpu *cpu, int32_t n, const int32_t *tokens, const int32_t *slots,
                          const int32_t *pos, const uint8_t *want, float *logits) {
    size_t n_vocab = (size_t)cpu->model->cfg.n_vocab;
    for (int32_t done = 0; done < n;) {
        int32_t T = n - done < cpu->opt.n_batch ? n - done : cpu->opt.n_batch;
        memcpy(cpu->row_slot, slots + done, (size_t)T * sizeof *slots);
        memcpy(cpu->row_pos, pos + done, (size_t)T * sizeof *pos);
        forward_chunk(cpu, tokens + done, T, want + done, logits);
        for (int32_t t = 0; t < T; t++)
            logits += want[done + t] ? n_vocab : 0;
        done += T;
    }
    return 0;
}

/* ---- set-up ------------------------------------------------------------- */

int m40_cpu_threads(const m40_cpu *cpu) {
    return cpu->n_threads;
}

void m40_cpu_memory(const m40_cpu *cpu, size_t *kv, size_t *scratch) {
    *kv = cpu->kv_bytes;
    *scratch = cpu->scratch_bytes;
}

size_t m40_cpu_kv_pos_bytes(const m40_cpu *cpu) {
    return (size_t)cpu->model->cfg.n_layer * (cpu->k_row + cpu->v_row);
}

void m40_cpu_kv_copy(m40_cpu *cpu, int32_t slot, int32_t n, void *host, int32_t n_host,
                     int to_host) {
    unsigned char *h = host;
    for (int32_t layer = 0; layer < cpu->model->cfg.n_layer; layer++) {
        unsigned char *k = kv_at(cpu, cpu->k_cache, cpu->k_row, slot, layer, 0);
        unsigned char *v = kv_at(cpu, cpu->v_cache, cpu->v_row, slot, layer, 0);
        unsigned char *hk = h, *hv = h + (size_t)n_host * cpu->k_row;
        if (to_host) {
            memcpy(hk, k, (size_t)n * cpu->k_row);
            memcpy(hv, v, (size_t)n * cpu->v_row);
        } else {
            memcpy(k, hk, (size_t)n * cpu->k_row);
            memcpy(v, hv, (size_t)n * cpu->v_row);
        }
        h += (size_t)n_host * (cpu->k_row + cpu->v_row);
    }
}

/* Reads one byte of every page of every tensor, so the mapping is in memory
 * before the first request (which would otherwise wait for the disk
 * without a word), reporting the bytes read every 64 MiB. */
static void touch_weights(const m40_cpu *cpu) {
    const m40_gguf *g = cpu->model->gguf;
    const uint64_t piece = (uint64_t)64 << 20;
    uint64_t total = 0, done = 0, reported = 0;
    for (size_t i = 0; i < m40_gguf_tensor_count(g); i++)
        total += m40_gguf_tensor_at(g, i)->n_bytes;
    if (cpu->opt.progress)
        cpu->opt.progress(cpu->opt.progress_user, 0, total);
    volatile unsigned char sink = 0;
    for (size_t i = 0; i < m40_gguf_tensor_count(g); i++) {
        const m40_gguf_tensor *t = m40_gguf_tensor_at(g, i);
        const unsigned char *p = t->data;
        for (uint64_t at = 0; at < t->n_bytes; at += 4096) {
            sink ^= p[at];
            uint64_t now = done + (t->n_bytes - at > 4096 ? at + 4096 : t->n_bytes);
            if (cpu->opt.progress && (now - reported >= piece || now == total)) {
                cpu->opt.progress(cpu->opt.progress_user, now, total);
                reported = now;
            }
        }
        done += t->n_bytes;
    }
    (void)sink;
}

/* n floats of activations, counted in scratch_bytes; sets *failed when
 * out of memory. */
static float *alloc_floats(m40_cpu *cpu, size_t n, int *failed) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p)
        *failed = 1;
    cpu->scratch_bytes += n * sizeof(float);
    return p;
}

int m40_cpu_create(m40_cpu **out, const m40_model *model, const m40_cpu_options *opts,
                   m40_err *err) {
    *out = NULL;
    const m40_model_config *c = &model->cfg;
    if (opts->n_ctx <= 0 || opts->n_slots <= 0 || opts->n_batch <= 0 || opts->n_threads < 0)
        return m40_errf(err, "cpu backend: n_ctx, n_slots and n_batch must be positive");
    if (c->n_expert_used > 64)
        return m40_errf(err, "cpu backend: %d experts per token (at most 64)", c->n_expert_used);
    if (c->head_dim > M40_OP_MAX_HEAD_DIM)
        return m40_errk(err, M40_ERR_UNSUPPORTED, "cpu backend: head_dim %d (at most %d)",
                        c->head_dim, M40_OP_MAX_HEAD_DIM);
    const uint32_t kv_types[2] = {opts->k_type, opts->v_type};
    for (int i = 0; i < 2; i++) {
        uint32_t t = kv_types[i];
        if (t != M40_GGML_F32 && t != M40_GGML_F16 && t != M40_GGML_Q8_0 && t != M40_GGML_Q4_0)
            return m40_errk(err, M40_ERR_UNSUPPORTED,
                            "cpu backend: a KV cache of %s (f32, f16, q8_0 or q4_0)",
                            m40_ggml_type_name(t));
        /* a quantized row must hold whole blocks per head */
        if (m40_ggml_type_get(t)->block_elems > 1 &&
            c->head_dim % (int32_t)m40_ggml_type_get(t)->block_elems != 0)
            return m40_errk(err, M40_ERR_UNSUPPORTED,
                            "cpu backend: a %s KV cache needs head_dim a multiple of %u, not %d",
                            m40_ggml_type_name(t), m40_ggml_type_get(t)->block_elems, c->head_dim);
    }
    m40_cpu *cpu = calloc(1, sizeof *cpu);
    if (!cpu)
        return m40_errf(err, "cpu backend: out of memory");
    cpu->model = model;
    cpu->opt = *opts;
    cpu->kv_dim = c->n_head_kv * c->head_dim;
    cpu->q_dim = c->n_head * c->head_dim;
#ifdef _OPENMP
    cpu->n_threads = opts->n_threads > 0 ? opts->n_threads : omp_get_max_threads();
#else
    cpu->n_threads = 1;
#endif
    int32_t wide = c->n_embd > cpu->q_dim ? c->n_embd : cpu->q_dim;
    int32_t ff = c->n_ff > c->n_ff_exp ? c->n_ff : c->n_ff_exp;
    cpu->max_cols = wide > ff ? wide : ff;
    size_t B = (size_t)opts->n_batch;
    size_t kv_rows = (size_t)opts->n_slots * c->n_layer * opts->n_ctx;
    int failed = 0;
    cpu->k_row = m40_ggml_row_bytes(opts->k_type, (uint64_t)cpu->kv_dim);
    cpu->v_row = m40_ggml_row_bytes(opts->v_type, (uint64_t)cpu->kv_dim);
    cpu->k_cache = calloc(kv_rows, cpu->k_row);
    cpu->v_cache = calloc(kv_rows, cpu->v_row);
    failed |= !cpu->k_cache || !cpu->v_cache;
    cpu->kv_bytes = kv_rows * (cpu->k_row + cpu->v_row);
    cpu->x = alloc_floats(cpu, B * c->n_embd, &failed);
    cpu->xb = alloc_floats(cpu, B * wide, &failed);
    cpu->q = alloc_floats(cpu, B * cpu->q_dim, &failed);
    cpu->k = alloc_floats(cpu, B * cpu->kv_dim, &failed);
    cpu->v = alloc_floats(cpu, B * cpu->kv_dim, &failed);
    cpu->att = alloc_floats(cpu, B * cpu->q_dim, &failed);
    cpu->hb = alloc_floats(cpu, B * ff, &failed);
    cpu->hb2 = alloc_floats(cpu, B * ff, &failed);
    cpu->router = alloc_floats(cpu, B * (size_t)c->n_expert, &failed);
    cpu->moe_y = alloc_floats(cpu, (size_t)c->n_embd, &failed);
    cpu->moe_out = alloc_floats(cpu, (size_t)c->n_embd, &failed);
    cpu->scores = alloc_floats(cpu, (size_t)cpu->n_threads * opts->n_ctx, &failed);
    cpu->rowbuf = alloc_floats(cpu, (size_t)cpu->n_threads * cpu->max_cols, &failed);
    cpu->row_slot = calloc(B, sizeof *cpu->row_slot);
    cpu->row_pos = calloc(B, sizeof *cpu->row_pos);
    cpu->want = calloc(B, sizeof *cpu->want);
    failed |= !cpu->row_slot || !cpu->row_pos || !cpu->want;
    if (failed) {
        m40_cpu_destroy(cpu);
        return m40_errf(err, "cpu backend: out of memory for a KV cache of %zu MiB",
                        cpu->kv_bytes >> 20);
    }
    touch_weights(cpu);
    *out = cpu;
    return 0;
}

void m40_cpu_destroy(m40_cpu *cpu) {
    if (!cpu)
        return;
    free(cpu->k_cache);
    free(cpu->v_cache);
    free(cpu->x);
    free(cpu->xb);
    free(cpu->q);
    free(cpu->k);
    free(cpu->v);
    free(cpu->att);
    free(cpu->hb);
    free(cpu->hb2);
    free(cpu->router);
    free(cpu->moe_y);
    free(cpu->moe_out);
    free(cpu->scores);
    free(cpu->rowbuf);
    free(cpu->row_slot);
    free(cpu->row_pos);
    free(cpu->want);
    free(cpu);
}
