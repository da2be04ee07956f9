/* model.c - see model.h: GGUF file -> config + weight views, all checked. */
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "quant/quant.h"

const char *m40_arch_name(m40_arch arch) {
    switch (arch) {
        case M40_ARCH_QWEN2:
            return "qwen2";
        case M40_ARCH_QWEN3:
            return "qwen3";
        case M40_ARCH_GEMMA3:
            return "gemma3";
        case M40_ARCH_GEMMA2:
            return "gemma2";
        case M40_ARCH_QWEN3MOE:
            return "qwen3moe";
        case M40_ARCH_PHI3:
            return "phi3";
        case M40_ARCH_LLAMA:
            break;
    }
    return "llama";
}

/* ---- hyperparameters ---------------------------------------------------- */

typedef struct loader {
    m40_model *m;
    const m40_gguf *g;
    const char *arch; /* "llama", "qwen2", "qwen3", "qwen3moe", "gemma2", "gemma3", "phi3" */
    char key[128];
} loader;

static const char *arch_key(loader *ld, const char *suffix) {
    snprintf(ld->key, sizeof ld->key, "%s.%s", ld->arch, suffix);
    return ld->key;
}

/* A positive integer hyperparameter within [1, max]. With `fallback` >= 0
 * the key may be absent. */
static int get_count(loader *ld, const char *suffix, int64_t fallback, int64_t max, int32_t *out,
                     m40_err *err) {
    const char *key = arch_key(ld, suffix);
    uint64_t v;
    if (m40_gguf_find_kv(ld->g, key) < 0) {
        if (fallback < 0)
            return m40_errf(err, "missing required key %s", key);
        *out = (int32_t)fallback;
        return 0;
    }
    if (m40_gguf_get_uint(ld->g, key, &v, err))
        return -1;
    if (v < 1 || v > (uint64_t)max)
        return m40_errf(err, "%s = %llu is outside 1..%lld", key, (unsigned long long)v,
                        (long long)max);
    *out = (int32_t)v;
    return 0;
}

static int get_real(loader *ld, const char *suffix, double fallback, float *out, m40_err *err) {
    const char *key = arch_key(ld, suffix);
    double v = fallback;
    if (m40_gguf_find_kv(ld->g, key) >= 0 && m40_gguf_get_float(ld->g, key, &v, err))
        return -1;
    if (!isfinite(v) || v <= 0.0)
        return m40_errf(err, "%s = %g must be a positive number", key, v);
    *out = (float)v;
    return 0;
}

static int read_rope_scaling(loader *ld, m40_model_config *c, m40_err *err) {
    c->rope_freq_scale = 1.0f;
    const char *key = arch_key(ld, "rope.scaling.type");
    if (m40_gguf_find_kv(ld->g, key) < 0)
        return 0;
    m40_gguf_str type;
    if (m40_gguf_get_str(ld->g, key, &type, err))
        return -1;
    if (m40_gguf_str_eq(type, "none"))
        return 0;
    int yarn = m40_gguf_str_eq(type, "yarn");
    if (!yarn && !m40_gguf_str_eq(type, "linear"))
        return m40_errk(err, M40_ERR_UNSUPPORTED,
                        "%s = \"%.*s\" is not supported (only linear, yarn or none)", key,
                        (int)type.len, type.ptr);
    float factor = 1.0f;
    if (get_real(ld, "rope.scaling.factor", 1.0, &factor, err))
        return -1;
    if (!(factor >= 1.0f && factor <= 1024.0f))
        return m40_errf(err, "%s factor %g outside 1..1024", key, (double)factor);
    c->rope_freq_scale = 1.0f / factor;
    if (!yarn)
        return 0;
    /* YaRN as llama.cpp reads it: the original context is required; the
     * ramp's turn counts default to 32 and 1, the attention factor to 1 */
    int32_t orig = 0;
    float attn = 1.0f;
    c->rope_yarn = 1;
    if (get_count(ld, "rope.scaling.original_context_length", -1, 1 << 24, &orig, err) ||
        get_real(ld, "rope.scaling.yarn_beta_fast", 32.0, &c->yarn_beta_fast, err) ||
        get_real(ld, "rope.scaling.yarn_beta_slow", 1.0, &c->yarn_beta_slow, err) ||
        get_real(ld, "rope.scaling.attn_factor", 1.0, &attn, err))
        return -1;
    c->rope_orig_ctx = (float)orig;
    c->rope_mscale = attn * (1.0f + 0.1f * logf(factor));
    return 0;
}

/* What Gemma 2 and 3 share, as llama.cpp reads them: the window from the
 * GGUF, one layer in `period` global, embeddings times sqrt(d), post-norms,
 * a GELU gate, and the score scale 1/sqrt(head_dim), except 1/sqrt(d /
 * n_head) for the 27B (n_layer_27b layers). */
static int read_gemma(loader *ld, m40_model_config *c, int period, int n_layer_27b, m40_err *err) {
    if (get_count(ld, "attention.sliding_window", -1, 1 << 24, &c->swa_window, err))
        return -1;
    c->swa_period = period;
    c->swa_own_rope = 1;
    c->embd_scale = sqrtf((float)c->n_embd);
    c->has_post_norms = 1;
    c->ffn_act = M40_ACT_GELU_TANH;
    if (c->n_layer == n_layer_27b)
        c->attn_scale = 1.0f / sqrtf((float)(c->n_embd / c->n_head));
    return 0;
}

/* Gemma 3 (text): five sliding layers in six, with a RoPE base of 10000
 * (scale 1) on those, a constant of the family in llama.cpp too; 27B: 62
 * layers. */
static int read_gemma3(loader *ld, m40_model_config *c, m40_err *err) {
    if (read_gemma(ld, c, 6, 62, err))
        return -1;
    c->rope_freq_base_swa = 10000.0f;
    return 0;
}

/* A mixture of experts (qwen3moe; llama with expert_count: Mixtral): how
 * many, how many per token, and their hidden width (ff_default when the
 * file has no expert_feed_forward_length, -1: required). */
static int read_experts(loader *ld, m40_model_config *c, int ff_default, m40_err *err) {
    if (get_count(ld, "expert_count", -1, 4096, &c->n_expert, err) ||
        get_count(ld, "expert_used_count", -1, 4096, &c->n_expert_used, err) ||
        get_count(ld, "expert_feed_forward_length", ff_default, 1 << 20, &c->n_ff_exp, err))
        return -1;
    if (c->n_expert_used > c->n_expert)
        return m40_errf(err, "%d experts used per token of %d", c->n_expert_used, c->n_expert);
    return 0;
}

/* Gemma 2: every other layer sliding (layers 0, 2, ...) with the global
 * RoPE base, and the two soft-caps from the GGUF (50 and 30 by default, as
 * in llama.cpp); 27B: 46 layers. */
static int read_gemma2(loader *ld, m40_model_config *c, m40_err *err) {
    return read_gemma(ld, c, 2, 46, err) ||
                   get_real(ld, "attn_logit_softcapping", 50.0, &c->attn_softcap, err) ||
                   get_real(ld, "final_logit_softcapping", 30.0, &c->final_softcap, err)
               ? -1
               : 0;
}

/* Phi-3 / Phi-4: fused projections; a window on every layer when the file
 * has one (Phi-3-mini-4k: 2047); LongRoPE (the 128k models: Phi-3.5,
 * Phi-4-mini) when the file has rope_factors_long and _short, with the
 * original context and the attention factor from its keys. */
static int read_phi3(loader *ld, m40_model_config *c, m40_err *err) {
    c->fused_proj = 1;
    if (m40_gguf_get_tensor(ld->g, "rope_factors_long.weight")) {
        int32_t orig = 0;
        c->rope_longrope = 1;
        if (get_count(ld, "rope.scaling.original_context_length", -1, 1 << 24, &orig, err) ||
            get_real(ld, "rope.scaling.attn_factor", 1.0, &c->rope_mscale, err))
            return -1;
        c->rope_orig_ctx = (float)orig;
    }
    if (get_count(ld, "attention.sliding_window", 0, 1 << 24, &c->swa_window, err))
        return -1;
    c->swa_period = 0; /* every layer */
    return 0;
}

static int read_config(loader *ld, m40_err *err) {
    m40_model_config *c = &ld->m->cfg;
    if (get_count(ld, "block_count", -1, 4096, &c->n_layer, err) ||
        get_count(ld, "embedding_length", -1, 1 << 17, &c->n_embd, err) ||
        get_count(ld, "feed_forward_length", -1, 1 << 20, &c->n_ff, err) ||
        get_count(ld, "attention.head_count", -1, 4096, &c->n_head, err) ||
        get_count(ld, "attention.head_count_kv", c->n_head, 4096, &c->n_head_kv, err) ||
        get_count(ld, "context_length", 4096, 1 << 24, &c->n_ctx_train, err))
        return -1;
    if (c->n_head % c->n_head_kv != 0)
        return m40_errf(err, "%d attention heads are not a multiple of %d KV heads", c->n_head,
                        c->n_head_kv);
    if (c->n_embd % c->n_head != 0 &&
        m40_gguf_find_kv(ld->g, arch_key(ld, "attention.key_length")) < 0)
        return m40_errf(err, "embedding length %d is not a multiple of %d heads", c->n_embd,
                        c->n_head);
    if (get_count(ld, "attention.key_length", c->n_embd / c->n_head, 4096, &c->head_dim, err) ||
        get_count(ld, "rope.dimension_count", c->head_dim, 4096, &c->rope_dim, err))
        return -1;
    if (c->rope_dim > c->head_dim || c->rope_dim % 2 != 0)
        return m40_errf(err, "RoPE dimension %d must be even and at most the head size %d",
                        c->rope_dim, c->head_dim);
    if (get_real(ld, "attention.layer_norm_rms_epsilon", 1e-5, &c->rms_eps, err) ||
        get_real(ld, "rope.freq_base", 10000.0, &c->rope_freq_base, err) ||
        read_rope_scaling(ld, c, err))
        return -1;
    c->rope_style = c->arch == M40_ARCH_LLAMA ? M40_ROPE_NORM : M40_ROPE_NEOX;
    c->has_qkv_bias = c->arch == M40_ARCH_QWEN2;
    c->has_qk_norm =
        c->arch == M40_ARCH_QWEN3 || c->arch == M40_ARCH_QWEN3MOE || c->arch == M40_ARCH_GEMMA3;
    c->embd_scale = 1.0f;
    c->attn_scale = 1.0f / sqrtf((float)c->head_dim);
    c->ffn_act = M40_ACT_SILU;
    c->rope_freq_base_swa = c->rope_freq_base;
    if (c->arch == M40_ARCH_GEMMA2)
        return read_gemma2(ld, c, err);
    if (c->arch == M40_ARCH_QWEN3MOE)
        return read_experts(ld, c, -1, err);
    if (c->arch == M40_ARCH_PHI3)
        return read_phi3(ld, c, err);
    /* Mixtral is a llama whose MLPs are experts as wide as feed_forward_length */
    if (c->arch == M40_ARCH_LLAMA && m40_gguf_find_kv(ld->g, arch_key(ld, "expert_count")) >= 0)
        return read_experts(ld, c, c->n_ff, err);
    return c->arch == M40_ARCH_GEMMA3 ? read_gemma3(ld, c, err) : 0;
}

/* ---- tensors ------------------------------------------------------------ */

/* YaRN's correction dim: the pair index whose wavelength fits n_rot turns
 * into the original context. */
static double yarn_corr_dim(int32_t rope_dim, double orig_ctx, double base, double n_rot) {
    return rope_dim * log(orig_ctx / (n_rot * 2.0 * M_PI)) / (2.0 * log(base));
}

void m40_rope_yarn_range(int32_t rope_dim, double orig_ctx, double base, double beta_fast,
                         double beta_slow, double *low, double *high) {
    double lo = floor(yarn_corr_dim(rope_dim, orig_ctx, base, beta_fast));
    double hi = ceil(yarn_corr_dim(rope_dim, orig_ctx, base, beta_slow));
    *low = lo > 0.0 ? lo : 0.0;
    *high = hi < rope_dim - 1 ? hi : rope_dim - 1;
}

uint64_t m40_model_active_bytes(const m40_model *m) {
    const m40_model_config *c = &m->cfg;
    uint64_t experts = 0;
    for (int32_t l = 0; c->n_expert > 0 && l < c->n_layer; l++) {
        const m40_layer *L = &m->layers[l];
        experts += (uint64_t)L->gate_exps.row_bytes * (uint64_t)L->gate_exps.rows +
                   (uint64_t)L->up_exps.row_bytes * (uint64_t)L->up_exps.rows +
                   (uint64_t)L->down_exps.row_bytes * (uint64_t)L->down_exps.rows;
    }
    if (experts == 0 || experts > m->file_bytes)
        return m->file_bytes;
    return m->file_bytes - experts + experts / (uint64_t)c->n_expert * (uint64_t)c->n_expert_used;
}

const float *m40_model_rope_factors(const m40_model *m, int32_t n_ctx) {
    if (m->cfg.rope_longrope)
        return n_ctx > m->cfg.rope_orig_ctx ? m->rope_long.data : m->rope_short.data;
    return m->rope_freqs.data;
}

/* Binds a tensor to `w`, checking its shape is [cols] (rows == 0) or
 * [cols, rows], and that the CPU can read its type. Absent and optional:
 * leaves w->data NULL. With mats > 1 the tensor is 3-D, mats matrices
 * [cols, rows] back to back (MoE experts), bound as one 2-D weight of
 * mats * rows rows. */
static int bind_tensor(loader *ld, m40_weight *w, const char *name, int64_t cols, int64_t rows,
                       int64_t mats, int optional, m40_err *err) {
    memset(w, 0, sizeof *w);
    const m40_gguf_tensor *t = m40_gguf_get_tensor(ld->g, name);
    if (!t) {
        if (optional)
            return 0;
        return m40_errf(err, "missing tensor '%s' (required for %s)", name, ld->arch);
    }
    int64_t want_dims = mats > 1 ? 3 : rows ? 2 : 1;
    int shape_ok = (int64_t)t->ne[0] == cols && (int64_t)t->ne[1] == (rows ? rows : 1) &&
                   (int64_t)t->ne[2] == mats && t->ne[3] == 1;
    if (!shape_ok) {
        char want[64];
        if (want_dims == 3)
            snprintf(want, sizeof want, "%lld, %lld, %lld", (long long)cols, (long long)rows,
                     (long long)mats);
        else if (want_dims == 2)
            snprintf(want, sizeof want, "%lld, %lld", (long long)cols, (long long)rows);
        else
            snprintf(want, sizeof want, "%lld", (long long)cols);
        return m40_errf(err,
                        "tensor '%s' has shape [%llu, %llu, %llu, %llu]; the config needs "
                        "[%s] (%lld-D)",
                        name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                        (unsigned long long)t->ne[2], (unsigned long long)t->ne[3], want,
                        (long long)want_dims);
    }
    if (!m40_quant_can_dequantize(t->type))
        return m40_errk(err, M40_ERR_UNSUPPORTED,
                        "tensor '%s' has type %s, which m40-llm cannot read", name,
                        m40_ggml_type_name(t->type));
    w->name = name;
    w->type = t->type;
    w->cols = cols;
    w->rows = (rows ? rows : 1) * mats;
    w->data = t->data;
    w->row_bytes = m40_ggml_row_bytes(t->type, (uint64_t)cols);
    return 0;
}

static int bind_weight(loader *ld, m40_weight *w, const char *name, int64_t cols, int64_t rows,
                       int optional, m40_err *err) {
    return bind_tensor(ld, w, name, cols, rows, 1, optional, err);
}

static int bind_stack(loader *ld, m40_weight *w, const char *name, int64_t cols, int64_t rows,
                      int64_t mats, m40_err *err) {
    return bind_tensor(ld, w, name, cols, rows, mats, 0, err);
}

/* Norms, biases and RoPE factors are read as plain float arrays. */
static int require_f32(const m40_weight *w, m40_err *err) {
    if (w->data && w->type != M40_GGML_F32)
        return m40_errf(err, "tensor '%s' must be f32, not %s", w->name,
                        m40_ggml_type_name(w->type));
    return 0;
}

/* Tensor names live in the model's name pool: "blk.%d.%s". */
static const char *layer_name(char *pool, int layer, const char *suffix) {
    snprintf(pool, 64, "blk.%d.%s", layer, suffix);
    return pool;
}

typedef struct layer_names {
    char attn_norm[64], wq[64], wk[64], wv[64], wo[64], bq[64], bk[64], bv[64];
    char q_norm[64], k_norm[64], ffn_norm[64], gate[64], up[64], down[64];
    char attn_post_norm[64], ffn_post_norm[64];
    char router[64], gate_exps[64], up_exps[64], down_exps[64];
} layer_names;

/* Rows [row0, row0 + rows) of w as a weight of its own (a view into the
 * same mapping): the parts of a fused matrix. */
static void row_range(const m40_weight *w, int64_t row0, int64_t rows, m40_weight *out) {
    *out = *w;
    out->rows = rows;
    out->data = (const uint8_t *)w->data + (size_t)row0 * w->row_bytes;
}

/* The MLP of layer l: dense (gate, up, down), phi3's fused gate and up, or
 * experts (router and the three stacks). */
static int bind_mlp(loader *ld, int l, layer_names *nm, m40_err *err) {
    const m40_model_config *c = &ld->m->cfg;
    m40_layer *L = &ld->m->layers[l];
    int64_t d = c->n_embd;
    if (c->fused_proj) { /* ffn_up: gate's rows, then up's */
        m40_weight both;
        if (bind_weight(ld, &both, layer_name(nm->up, l, "ffn_up.weight"), d, 2 * (int64_t)c->n_ff,
                        0, err) ||
            bind_weight(ld, &L->w_down, layer_name(nm->down, l, "ffn_down.weight"), c->n_ff, d, 0,
                        err))
            return -1;
        row_range(&both, 0, c->n_ff, &L->w_gate);
        row_range(&both, c->n_ff, c->n_ff, &L->w_up);
        return 0;
    }
    if (c->n_expert == 0)
        return bind_weight(ld, &L->w_gate, layer_name(nm->gate, l, "ffn_gate.weight"), d, c->n_ff,
                           0, err) ||
                       bind_weight(ld, &L->w_up, layer_name(nm->up, l, "ffn_up.weight"), d, c->n_ff,
                                   0, err) ||
                       bind_weight(ld, &L->w_down, layer_name(nm->down, l, "ffn_down.weight"),
                                   c->n_ff, d, 0, err)
                   ? -1
                   : 0;
    return bind_weight(ld, &L->router, layer_name(nm->router, l, "ffn_gate_inp.weight"), d,
                       c->n_expert, 0, err) ||
                   bind_stack(ld, &L->gate_exps,
                              layer_name(nm->gate_exps, l, "ffn_gate_exps.weight"), d, c->n_ff_exp,
                              c->n_expert, err) ||
                   bind_stack(ld, &L->up_exps, layer_name(nm->up_exps, l, "ffn_up_exps.weight"), d,
                              c->n_ff_exp, c->n_expert, err) ||
                   bind_stack(ld, &L->down_exps,
                              layer_name(nm->down_exps, l, "ffn_down_exps.weight"), c->n_ff_exp, d,
                              c->n_expert, err)
               ? -1
               : 0;
}

/* wq, wk, wv: three tensors, or row ranges of phi3's attn_qkv. */
static int bind_qkv(loader *ld, int l, layer_names *nm, m40_err *err) {
    const m40_model_config *c = &ld->m->cfg;
    m40_layer *L = &ld->m->layers[l];
    int64_t d = c->n_embd, q = (int64_t)c->n_head * c->head_dim;
    int64_t kv = (int64_t)c->n_head_kv * c->head_dim;
    if (c->fused_proj) {
        m40_weight all;
        if (bind_weight(ld, &all, layer_name(nm->wq, l, "attn_qkv.weight"), d, q + 2 * kv, 0, err))
            return -1;
        row_range(&all, 0, q, &L->wq);
        row_range(&all, q, kv, &L->wk);
        row_range(&all, q + kv, kv, &L->wv);
        return 0;
    }
    return bind_weight(ld, &L->wq, layer_name(nm->wq, l, "attn_q.weight"), d, q, 0, err) ||
                   bind_weight(ld, &L->wk, layer_name(nm->wk, l, "attn_k.weight"), d, kv, 0, err) ||
                   bind_weight(ld, &L->wv, layer_name(nm->wv, l, "attn_v.weight"), d, kv, 0, err)
               ? -1
               : 0;
}

static int bind_layer(loader *ld, int l, layer_names *nm, m40_err *err) {
    const m40_model_config *c = &ld->m->cfg;
    m40_layer *L = &ld->m->layers[l];
    int64_t d = c->n_embd, q = (int64_t)c->n_head * c->head_dim;
    int64_t kv = (int64_t)c->n_head_kv * c->head_dim;
    int bias = !c->has_qkv_bias; /* optional unless the arch has them */
    int qk_norm = !c->has_qk_norm, post = !c->has_post_norms;
    if (bind_weight(ld, &L->attn_norm, layer_name(nm->attn_norm, l, "attn_norm.weight"), d, 0, 0,
                    err) ||
        bind_qkv(ld, l, nm, err) ||
        bind_weight(ld, &L->wo, layer_name(nm->wo, l, "attn_output.weight"), q, d, 0, err) ||
        bind_weight(ld, &L->bq, layer_name(nm->bq, l, "attn_q.bias"), q, 0, bias, err) ||
        bind_weight(ld, &L->bk, layer_name(nm->bk, l, "attn_k.bias"), kv, 0, bias, err) ||
        bind_weight(ld, &L->bv, layer_name(nm->bv, l, "attn_v.bias"), kv, 0, bias, err) ||
        bind_weight(ld, &L->q_norm, layer_name(nm->q_norm, l, "attn_q_norm.weight"), c->head_dim, 0,
                    qk_norm, err) ||
        bind_weight(ld, &L->k_norm, layer_name(nm->k_norm, l, "attn_k_norm.weight"), c->head_dim, 0,
                    qk_norm, err) ||
        bind_weight(ld, &L->ffn_norm, layer_name(nm->ffn_norm, l, "ffn_norm.weight"), d, 0, 0,
                    err) ||
        bind_mlp(ld, l, nm, err) ||
        bind_weight(ld, &L->attn_post_norm,
                    layer_name(nm->attn_post_norm, l, "post_attention_norm.weight"), d, 0, post,
                    err) ||
        bind_weight(ld, &L->ffn_post_norm, layer_name(nm->ffn_post_norm, l, "post_ffw_norm.weight"),
                    d, 0, post, err))
        return -1;
    const m40_weight *f32s[] = {&L->attn_norm,    &L->ffn_norm, &L->bq,     &L->bk,
                                &L->bv,           &L->q_norm,   &L->k_norm, &L->attn_post_norm,
                                &L->ffn_post_norm};
    for (size_t i = 0; i < sizeof f32s / sizeof f32s[0]; i++) {
        if (require_f32(f32s[i], err))
            return -1;
    }
    return 0;
}

static int bind_tensors(loader *ld, m40_err *err) {
    m40_model *m = ld->m;
    m40_model_config *c = &m->cfg;
    const m40_gguf_tensor *emb = m40_gguf_get_tensor(ld->g, "token_embd.weight");
    if (!emb)
        return m40_errf(err, "missing tensor 'token_embd.weight' (required for %s)", ld->arch);
    if (emb->ne[1] < 1 || emb->ne[1] > (1u << 24))
        return m40_errf(err, "tensor 'token_embd.weight' has %llu rows; expected a vocabulary",
                        (unsigned long long)emb->ne[1]);
    c->n_vocab = (int32_t)emb->ne[1];
    if (bind_weight(ld, &m->tok_embd, "token_embd.weight", c->n_embd, c->n_vocab, 0, err) ||
        bind_weight(ld, &m->output_norm, "output_norm.weight", c->n_embd, 0, 0, err) ||
        bind_weight(ld, &m->output, "output.weight", c->n_embd, c->n_vocab, 1, err) ||
        bind_weight(ld, &m->rope_freqs, "rope_freqs.weight", c->rope_dim / 2, 0, 1, err) ||
        bind_weight(ld, &m->rope_long, "rope_factors_long.weight", c->rope_dim / 2, 0,
                    !c->rope_longrope, err) ||
        bind_weight(ld, &m->rope_short, "rope_factors_short.weight", c->rope_dim / 2, 0,
                    !c->rope_longrope, err) ||
        require_f32(&m->output_norm, err) || require_f32(&m->rope_freqs, err) ||
        require_f32(&m->rope_long, err) || require_f32(&m->rope_short, err))
        return -1;
    if (!m->output.data) {
        m->output = m->tok_embd; /* tied embeddings */
        c->tied_embeddings = 1;
    }
    m->layers = calloc((size_t)c->n_layer, sizeof *m->layers);
    m->names = calloc((size_t)c->n_layer, sizeof(layer_names));
    if (!m->layers || !m->names)
        return m40_errf(err, "out of memory for %d layers", c->n_layer);
    for (int l = 0; l < c->n_layer; l++) {
        if (bind_layer(ld, l, &((layer_names *)m->names)[l], err))
            return -1;
    }
    return 0;
}

static int read_arch(loader *ld, m40_err *err) {
    m40_gguf_str a;
    if (m40_gguf_find_kv(ld->g, "general.architecture") < 0)
        return m40_errf(err, "missing required key general.architecture");
    if (m40_gguf_get_str(ld->g, "general.architecture", &a, err))
        return -1;
    if (m40_gguf_str_eq(a, "llama")) {
        ld->m->cfg.arch = M40_ARCH_LLAMA;
    } else if (m40_gguf_str_eq(a, "qwen2")) {
        ld->m->cfg.arch = M40_ARCH_QWEN2;
    } else if (m40_gguf_str_eq(a, "qwen3")) {
        ld->m->cfg.arch = M40_ARCH_QWEN3;
    } else if (m40_gguf_str_eq(a, "gemma3")) {
        ld->m->cfg.arch = M40_ARCH_GEMMA3;
    } else if (m40_gguf_str_eq(a, "gemma2")) {
        ld->m->cfg.arch = M40_ARCH_GEMMA2;
    } else if (m40_gguf_str_eq(a, "qwen3moe")) {
        ld->m->cfg.arch = M40_ARCH_QWEN3MOE;
    } else if (m40_gguf_str_eq(a, "phi3")) {
        ld->m->cfg.arch = M40_ARCH_PHI3;
    } else {
        return m40_errk(err, M40_ERR_UNSUPPORTED,
                        "architecture \"%.*s\" is not supported (supported: llama, qwen2, qwen3, "
                        "qwen3moe, gemma2, gemma3, phi3)",
                        (int)(a.len > 64 ? 64 : a.len), a.ptr);
    }
    ld->arch = m40_arch_name(ld->m->cfg.arch);
    return 0;
}

/* "iq1_s x 160 (first: blk.0.attn_q.weight), iq1_m x 2 (...)" for the
 * tensor types m40-llm cannot read; returns how many types. */
static int unreadable_types(const m40_gguf *g, char *buf, size_t cap) {
    size_t count[M40_GGML_TYPE_COUNT] = {0}, first[M40_GGML_TYPE_COUNT] = {0};
    for (size_t i = 0; i < m40_gguf_tensor_count(g); i++) {
        uint32_t t = m40_gguf_tensor_at(g, i)->type; /* < TYPE_COUNT: gguf.c checked */
        if (!m40_quant_can_dequantize(t) && count[t]++ == 0)
            first[t] = i;
    }
    int n = 0;
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t t = 0; t < M40_GGML_TYPE_COUNT; t++) {
        if (!count[t])
            continue;
        const m40_gguf_tensor *ft = m40_gguf_tensor_at(g, first[t]);
        int k = snprintf(buf + used, cap - used, "%s%s x %zu (first: %.*s)", n ? ", " : "",
                         m40_ggml_type_name(t), count[t],
                         (int)(ft->name.len > 64 ? 64 : ft->name.len), ft->name.ptr);
        n++;
        if (k < 0 || (size_t)k >= cap - used)
            break; /* the message is cut; the count still says there are more */
        used += (size_t)k;
    }
    return n;
}

int m40_model_check_support(const m40_gguf *g, m40_err *err) {
    m40_model scratch = {0};
    loader ld = {.m = &scratch, .g = g};
    if (read_arch(&ld, err))
        return -1;
    char types[512];
    int n = unreadable_types(g, types, sizeof types);
    if (n)
        return m40_errk(err, M40_ERR_UNSUPPORTED, "tensor type%s m40-llm cannot run: %s",
                        n > 1 ? "s" : "", types);
    return 0;
}

int m40_model_from_gguf(m40_model **out, m40_gguf *g, m40_err *err) {
    *out = NULL;
    if (m40_model_check_support(g, err))
        return -1;
    m40_model *m = calloc(1, sizeof *m);
    if (!m)
        return m40_errf(err, "out of memory");
    loader ld = {.m = m, .g = g};
    if (read_arch(&ld, err) || read_config(&ld, err) || bind_tensors(&ld, err)) {
        m40_model_free(m); /* does not close g: the caller still owns it */
        return -1;
    }
    for (size_t i = 0; i < m40_gguf_tensor_count(g); i++)
        m->n_params += m40_gguf_tensor_at(g, i)->n_elems;
    m->file_bytes = m40_gguf_file_size(g);
    m->gguf = g;
    *out = m;
    return 0;
}

int m40_model_load(m40_model **out, const char *path, m40_err *err) {
    *out = NULL;
    m40_gguf *g = NULL;
    if (m40_gguf_open(&g, path, err))
        return -1;
    if (m40_model_from_gguf(out, g, err)) {
        m40_gguf_close(g);
        return m40_err_wrap(err, "%s", path);
    }
    (*out)->owns_gguf = 1;
    return 0;
}

void m40_model_free(m40_model *m) {
    if (!m)
        return;
    if (m->owns_gguf)
        m40_gguf_close(m->gguf);
    free(m->layers);
    free(m->names);
    free(m);
}
