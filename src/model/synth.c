/* synth.c - see synth.h. */
#include "model/synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"
#include "model/shapes.h"
#include "quant/quant.h"
#include "sampling/rng.h"

/* One tensor to generate: its shape, type and how its values are drawn. */
typedef struct gen_tensor {
    char name[64];
    uint32_t type;
    int64_t cols, rows; /* rows of all mats together */
    int64_t mats;       /* > 1: a 3-D tensor of mats matrices of rows / mats rows */
    size_t row_bytes;
    float center, spread; /* values uniform in center +- spread */
    uint64_t seed;        /* per tensor; each row reseeds from it */
} gen_tensor;

uint32_t m40_synth_fallback_type(uint32_t type, int64_t cols) {
    if (cols % 256 == 0)
        return type;
    switch (type) {
        case M40_GGML_Q4_K:
            return M40_GGML_Q5_0;
        case M40_GGML_Q5_K:
            return M40_GGML_Q5_1;
        case M40_GGML_Q6_K:
            return M40_GGML_Q8_0;
        case M40_GGML_Q2_K:
        case M40_GGML_Q3_K:
            return M40_GGML_Q4_0;
        default:
            return type;
    }
}

/* llama.cpp's general.file_type for a whole-model type (mix_m: its _M
 * mix). */
static uint32_t file_type_of(uint32_t type, int mix_m) {
    if (mix_m)
        return type == M40_GGML_Q4_K ? 15 : 17; /* Q4_K_M, Q5_K_M */
    switch (type) {
        case M40_GGML_F32:
            return 0;
        case M40_GGML_F16:
            return 1;
        case M40_GGML_Q4_0:
            return 2;
        case M40_GGML_Q4_1:
            return 3;
        case M40_GGML_Q8_0:
            return 7;
        case M40_GGML_Q5_0:
            return 8;
        case M40_GGML_Q5_1:
            return 9;
        case M40_GGML_Q4_K:
            return 14; /* Q4_K_S */
        case M40_GGML_Q5_K:
            return 16; /* Q5_K_S */
        case M40_GGML_Q6_K:
            return 18;
        case M40_GGML_BF16:
            return 32;
        default:
            return 0;
    }
}

/* The output projection of a quantized model is Q6_K, as llama-quantize
 * makes it for 4- and 5-bit types (it carries the logits). */
static uint32_t output_type_of(uint32_t type) {
    switch (type) {
        case M40_GGML_Q4_0:
        case M40_GGML_Q4_1:
        case M40_GGML_Q5_0:
        case M40_GGML_Q5_1:
        case M40_GGML_Q4_K:
        case M40_GGML_Q5_K:
            return M40_GGML_Q6_K;
        default:
            return type;
    }
}

/* The matrix types of llama-quantize's _M mixes of a K type (Q4_K_M,
 * Q5_K_M; not Falcon, not 8 experts): attn_v and ffn_down in Q6_K on the
 * layers that get more bits (the first and last eighth, and every third
 * one between), a fused attn_qkv one step up (Q5_K, Q6_K), the rest in
 * the base type (the output in Q6_K, output_type_of). */
typedef struct mix {
    uint32_t base, v, down, qkv;
} mix;

static int more_bits(int i, int n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static mix mix_for_layer(uint32_t type, int mix_m, int layer, int n_layer) {
    mix m = {type, type, type, type};
    if (!mix_m)
        return m;
    if (more_bits(layer, n_layer))
        m.v = m.down = M40_GGML_Q6_K;
    m.qkv = type == M40_GGML_Q4_K ? M40_GGML_Q5_K : M40_GGML_Q6_K;
    return m;
}

/* ---- tensor data, produced while the file is written ---------------------- */

typedef struct fill_ctx {
    const gen_tensor *t;
    unsigned char *rows; /* scratch for whole rows covering one request */
    size_t rows_cap;
} fill_ctx;

static void gen_row(const gen_tensor *t, int64_t r, float *vals, void *out) {
    m40_rng rng;
    m40_rng_seed(&rng, t->seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(r + 1)));
    for (int64_t i = 0; i < t->cols; i++)
        vals[i] = t->center + t->spread * (float)(2.0 * m40_rng_uniform(&rng) - 1.0);
    m40_quantize_row(t->type, vals, out, t->cols, NULL); /* type checked up front */
}

/* Bytes [offset, offset+len) of a tensor: the rows that cover them are
 * generated in parallel (each row from its own seed, so the result does not
 * depend on the thread count or the chunking), then the slice is copied. */
static int fill_tensor(void *user, void *buf, size_t len, uint64_t offset, m40_err *err) {
    fill_ctx *f = user;
    const gen_tensor *t = f->t;
    int64_t r0 = (int64_t)(offset / t->row_bytes);
    int64_t r1 = (int64_t)((offset + len - 1) / t->row_bytes) + 1;
    size_t need = (size_t)(r1 - r0) * t->row_bytes;
    if (need > f->rows_cap) {
        unsigned char *p = realloc(f->rows, need);
        if (!p)
            return m40_errf(err, "out of memory generating %s", t->name);
        f->rows = p;
        f->rows_cap = need;
    }
    int failed = 0;
#pragma omp parallel
    {
        float *vals = malloc((size_t)t->cols * sizeof *vals);
        if (!vals) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t r = r0; r < r1; r++) {
            if (vals)
                gen_row(t, r, vals, f->rows + (size_t)(r - r0) * t->row_bytes);
        }
        free(vals);
    }
    if (failed)
        return m40_errf(err, "out of memory generating %s", t->name);
    memcpy(buf, f->rows + (offset - (uint64_t)r0 * t->row_bytes), len);
    return 0;
}

/* ---- the model's tensors -------------------------------------------------- */

typedef struct plan {
    gen_tensor *t;
    int n, cap;
    fill_ctx *fills;
} plan;

static int plan_add(plan *p, const char *name, uint32_t type, int64_t cols, int64_t rows,
                    float center, float spread, uint64_t seed, m40_err *err) {
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 64;
        gen_tensor *t = realloc(p->t, (size_t)cap * sizeof *t);
        if (!t)
            return m40_errf(err, "out of memory");
        p->t = t;
        p->cap = cap;
    }
    gen_tensor *t = &p->t[p->n];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = m40_synth_fallback_type(type, cols);
    t->cols = cols;
    t->rows = rows;
    t->mats = 1;
    t->row_bytes = m40_ggml_row_bytes(t->type, (uint64_t)cols);
    if (t->row_bytes == 0)
        return m40_errf(err, "%s: %lld columns do not fit type %s", name, (long long)cols,
                        m40_ggml_type_name(t->type));
    t->center = center;
    t->spread = spread;
    t->seed = seed ^ ((uint64_t)(p->n + 1) * 0xd1b54a32d192ed03ull);
    p->n++;
    return 0;
}

static int plan_model(plan *p, const m40_model_config *c, uint32_t type, int mix_m, int untied,
                      uint64_t seed, m40_err *err) {
    const float w = 0.035f; /* uniform +-0.035: std 0.02, as initializers use */
    int64_t d = c->n_embd, q = (int64_t)c->n_head * c->head_dim;
    int64_t kv = (int64_t)c->n_head_kv * c->head_dim;
    if (plan_add(p, "token_embd.weight", type, d, c->n_vocab, 0.0f, w, seed, err) ||
        plan_add(p, "output_norm.weight", M40_GGML_F32, d, 1, 1.0f, 0.1f, seed, err))
        return -1;
    if ((!c->tied_embeddings || untied) &&
        plan_add(p, "output.weight", output_type_of(type), d, c->n_vocab, 0.0f, w, seed, err))
        return -1;
    /* LongRoPE's divisors: long ones of 2..6, short ones near 1 */
    if (c->rope_longrope && (plan_add(p, "rope_factors_long.weight", M40_GGML_F32, c->rope_dim / 2,
                                      1, 4.0f, 2.0f, seed, err) ||
                             plan_add(p, "rope_factors_short.weight", M40_GGML_F32, c->rope_dim / 2,
                                      1, 1.1f, 0.1f, seed, err)))
        return -1;
    for (int l = 0; l < c->n_layer; l++) {
        char n[64];
        mix m = mix_for_layer(type, mix_m, l, c->n_layer);
#define ADD(suffix, ty, cols, rows, center, spread)                    \
    do {                                                               \
        snprintf(n, sizeof n, "blk.%d.%s", l, suffix);                 \
        if (plan_add(p, n, ty, cols, rows, center, spread, seed, err)) \
            return -1;                                                 \
    } while (0)
        ADD("attn_norm.weight", M40_GGML_F32, d, 1, 1.0f, 0.1f);
        if (c->fused_proj) { /* phi3: q, k, v stacked in one matrix */
            ADD("attn_qkv.weight", m.qkv, d, q + 2 * kv, 0.0f, w);
        } else {
            ADD("attn_q.weight", m.base, d, q, 0.0f, w);
            ADD("attn_k.weight", m.base, d, kv, 0.0f, w);
            ADD("attn_v.weight", m.v, d, kv, 0.0f, w);
        }
        if (c->has_qkv_bias) {
            ADD("attn_q.bias", M40_GGML_F32, q, 1, 0.0f, 0.1f);
            ADD("attn_k.bias", M40_GGML_F32, kv, 1, 0.0f, 0.1f);
            ADD("attn_v.bias", M40_GGML_F32, kv, 1, 0.0f, 0.1f);
        }
        if (c->has_qk_norm) {
            ADD("attn_q_norm.weight", M40_GGML_F32, c->head_dim, 1, 1.0f, 0.1f);
            ADD("attn_k_norm.weight", M40_GGML_F32, c->head_dim, 1, 1.0f, 0.1f);
        }
        ADD("attn_output.weight", m.base, q, d, 0.0f, w);
        ADD("ffn_norm.weight", M40_GGML_F32, d, 1, 1.0f, 0.1f);
        if (c->n_expert > 0) { /* the router (F32, as real files have it) and the experts */
            int64_t e = c->n_expert, f = c->n_ff_exp;
            ADD("ffn_gate_inp.weight", M40_GGML_F32, d, e, 0.0f, 0.1f);
            ADD("ffn_gate_exps.weight", m.base, d, e * f, 0.0f, w);
            p->t[p->n - 1].mats = e;
            ADD("ffn_up_exps.weight", m.base, d, e * f, 0.0f, w);
            p->t[p->n - 1].mats = e;
            ADD("ffn_down_exps.weight", m.down, f, e * d, 0.0f, w);
            p->t[p->n - 1].mats = e;
        } else if (c->fused_proj) { /* phi3: gate and up stacked in ffn_up */
            ADD("ffn_up.weight", m.base, d, 2 * (int64_t)c->n_ff, 0.0f, w);
            ADD("ffn_down.weight", m.down, c->n_ff, d, 0.0f, w);
        } else {
            ADD("ffn_gate.weight", m.base, d, c->n_ff, 0.0f, w);
            ADD("ffn_up.weight", m.base, d, c->n_ff, 0.0f, w);
            ADD("ffn_down.weight", m.down, c->n_ff, d, 0.0f, w);
        }
        if (c->has_post_norms) {
            ADD("post_attention_norm.weight", M40_GGML_F32, d, 1, 1.0f, 0.1f);
            ADD("post_ffw_norm.weight", M40_GGML_F32, d, 1, 1.0f, 0.1f);
        }
#undef ADD
    }
    return 0;
}

static int add_tensors(m40_gguf_writer *wr, plan *p, m40_err *err) {
    p->fills = calloc((size_t)p->n, sizeof *p->fills);
    if (!p->fills)
        return m40_errf(err, "out of memory");
    for (int i = 0; i < p->n; i++) {
        gen_tensor *t = &p->t[i];
        int64_t mats = t->mats > 1 ? t->mats : 1;
        uint64_t ne[3] = {(uint64_t)t->cols, (uint64_t)(t->rows / mats), (uint64_t)mats};
        uint32_t n_dims = mats > 1 ? 3 : t->rows > 1 ? 2 : 1;
        p->fills[i].t = t;
        if (m40_gguf_writer_add_tensor_fn(wr, t->name, t->type, n_dims, ne, fill_tensor,
                                          &p->fills[i], err))
            return -1;
    }
    return 0;
}

/* ---- metadata ------------------------------------------------------------- */

static int add_hparams(m40_gguf_writer *wr, const m40_model_config *c, const char *shape,
                       uint32_t type, int mix_m, m40_err *err) {
    const char *a = m40_arch_name(c->arch);
    char key[96], name[96];
    snprintf(name, sizeof name, "m40-llm synth %s %s%s", shape, m40_ggml_type_name(type),
             mix_m ? "_M" : "");
#define KEY(suffix) (snprintf(key, sizeof key, "%s.%s", a, suffix), key)
    return m40_gguf_writer_add_str(wr, "general.architecture", a, err) ||
                   m40_gguf_writer_add_str(wr, "general.name", name, err) ||
                   m40_gguf_writer_add_u32(wr, "general.file_type", file_type_of(type, mix_m),
                                           err) ||
                   m40_gguf_writer_add_u32(wr, "general.quantization_version", 2, err) ||
                   m40_gguf_writer_add_u32(wr, KEY("context_length"), (uint32_t)c->n_ctx_train,
                                           err) ||
                   m40_gguf_writer_add_u32(wr, KEY("embedding_length"), (uint32_t)c->n_embd, err) ||
                   m40_gguf_writer_add_u32(wr, KEY("block_count"), (uint32_t)c->n_layer, err) ||
                   m40_gguf_writer_add_u32(wr, KEY("feed_forward_length"), (uint32_t)c->n_ff,
                                           err) ||
                   m40_gguf_writer_add_u32(wr, KEY("attention.head_count"), (uint32_t)c->n_head,
                                           err) ||
                   m40_gguf_writer_add_u32(wr, KEY("attention.head_count_kv"),
                                           (uint32_t)c->n_head_kv, err) ||
                   m40_gguf_writer_add_f32(wr, KEY("rope.freq_base"), c->rope_freq_base, err) ||
                   (c->rope_yarn &&
                    (m40_gguf_writer_add_str(wr, KEY("rope.scaling.type"), "yarn", err) ||
                     m40_gguf_writer_add_f32(wr, KEY("rope.scaling.factor"),
                                             1.0f / c->rope_freq_scale, err) ||
                     m40_gguf_writer_add_u32(wr, KEY("rope.scaling.original_context_length"),
                                             (uint32_t)c->rope_orig_ctx, err))) ||
                   (!c->rope_yarn && !c->rope_longrope && c->rope_freq_scale != 1.0f &&
                    (m40_gguf_writer_add_str(wr, KEY("rope.scaling.type"), "linear", err) ||
                     m40_gguf_writer_add_f32(wr, KEY("rope.scaling.factor"),
                                             1.0f / c->rope_freq_scale, err))) ||
                   (c->rope_longrope &&
                    (m40_gguf_writer_add_u32(wr, KEY("rope.scaling.original_context_length"),
                                             (uint32_t)c->rope_orig_ctx, err) ||
                     m40_gguf_writer_add_f32(wr, KEY("rope.scaling.attn_factor"), c->rope_mscale,
                                             err))) ||
                   m40_gguf_writer_add_f32(wr, KEY("attention.layer_norm_rms_epsilon"), c->rms_eps,
                                           err) ||
                   m40_gguf_writer_add_u32(wr, KEY("rope.dimension_count"), (uint32_t)c->rope_dim,
                                           err) ||
                   m40_gguf_writer_add_u32(wr, KEY("vocab_size"), (uint32_t)c->n_vocab, err) ||
                   (c->swa_window > 0 &&
                    m40_gguf_writer_add_u32(wr, KEY("attention.sliding_window"),
                                            (uint32_t)c->swa_window, err)) ||
                   (c->n_expert > 0 &&
                    (m40_gguf_writer_add_u32(wr, KEY("expert_count"), (uint32_t)c->n_expert, err) ||
                     m40_gguf_writer_add_u32(wr, KEY("expert_used_count"),
                                             (uint32_t)c->n_expert_used, err) ||
                     /* Mixtral files leave it out: llama's experts are n_ff wide */
                     (c->arch != M40_ARCH_LLAMA &&
                      m40_gguf_writer_add_u32(wr, KEY("expert_feed_forward_length"),
                                              (uint32_t)c->n_ff_exp, err)))) ||
                   (c->attn_softcap > 0.0f &&
                    m40_gguf_writer_add_f32(wr, KEY("attn_logit_softcapping"), c->attn_softcap,
                                            err)) ||
                   (c->final_softcap > 0.0f &&
                    m40_gguf_writer_add_f32(wr, KEY("final_logit_softcapping"), c->final_softcap,
                                            err)) ||
                   /* heads wider than n_embd / n_head (Qwen3-0.6B's 128 for 64) say so */
                   (c->head_dim != c->n_embd / c->n_head &&
                    (m40_gguf_writer_add_u32(wr, KEY("attention.key_length"), (uint32_t)c->head_dim,
                                             err) ||
                     m40_gguf_writer_add_u32(wr, KEY("attention.value_length"),
                                             (uint32_t)c->head_dim, err)))
               ? -1
               : 0;
#undef KEY
}

/* Copies one kv (scalar, string, array of scalars or of strings). */
static int copy_kv(m40_gguf_writer *wr, const m40_gguf *g, size_t i, m40_err *err) {
    m40_gguf_str k = m40_gguf_kv_key(g, i);
    char key[256];
    if (k.len >= sizeof key)
        return m40_errf(err, "vocab key too long");
    memcpy(key, k.ptr, k.len);
    key[k.len] = '\0';
    const m40_gguf_value *v = m40_gguf_kv_value(g, i);
    if (v->type == M40_GGUF_STRING)
        return m40_gguf_writer_add_str_n(wr, key, v->data, (size_t)v->size, err);
    if (v->type != M40_GGUF_ARRAY) {
        m40_gguf_scalar s;
        if (m40_gguf_value_scalar(v, &s, err))
            return -1;
        switch (v->type) {
            case M40_GGUF_UINT8:
                return m40_gguf_writer_add_u8(wr, key, s.u8, err);
            case M40_GGUF_INT8:
                return m40_gguf_writer_add_i8(wr, key, s.i8, err);
            case M40_GGUF_UINT16:
                return m40_gguf_writer_add_u16(wr, key, s.u16, err);
            case M40_GGUF_INT16:
                return m40_gguf_writer_add_i16(wr, key, s.i16, err);
            case M40_GGUF_UINT32:
                return m40_gguf_writer_add_u32(wr, key, s.u32, err);
            case M40_GGUF_INT32:
                return m40_gguf_writer_add_i32(wr, key, s.i32, err);
            case M40_GGUF_UINT64:
                return m40_gguf_writer_add_u64(wr, key, s.u64, err);
            case M40_GGUF_INT64:
                return m40_gguf_writer_add_i64(wr, key, s.i64, err);
            case M40_GGUF_FLOAT32:
                return m40_gguf_writer_add_f32(wr, key, s.f32, err);
            case M40_GGUF_FLOAT64:
                return m40_gguf_writer_add_f64(wr, key, s.f64, err);
            case M40_GGUF_BOOL:
                return m40_gguf_writer_add_bool(wr, key, s.b, err);
            default:
                return m40_errf(err, "vocab key %s has an unknown type", key);
        }
    }
    if (v->elem_type == M40_GGUF_STRING) {
        if (m40_gguf_writer_begin_array(wr, key, M40_GGUF_STRING, v->count, err))
            return -1;
        for (uint64_t j = 0; j < v->count; j++) {
            m40_gguf_str s;
            if (m40_gguf_array_str(v, j, &s, err) ||
                m40_gguf_writer_push_str(wr, s.ptr, s.len, err))
                return -1;
        }
        return m40_gguf_writer_end_array(wr, err);
    }
    if (v->elem_type == M40_GGUF_ARRAY)
        return m40_errf(err, "vocab key %s holds nested arrays, which synth does not copy", key);
    return m40_gguf_writer_add_array(wr, key, v->elem_type, v->data, v->count, err);
}

/* Copies every tokenizer.* kv of the vocab file; returns its token count. */
static int copy_vocab(m40_gguf_writer *wr, const char *path, int32_t *n_vocab, m40_err *err) {
    m40_gguf *g;
    if (m40_gguf_open(&g, path, err))
        return -1;
    m40_gguf_value tokens;
    int rc = m40_gguf_get_array(g, "tokenizer.ggml.tokens", M40_GGUF_STRING, &tokens, err);
    if (rc == 0 && (tokens.count < 1 || tokens.count > (1u << 24)))
        rc = m40_errf(err, "tokenizer.ggml.tokens has %llu entries",
                      (unsigned long long)tokens.count);
    if (rc == 0)
        *n_vocab = (int32_t)tokens.count;
    for (size_t i = 0; rc == 0 && i < m40_gguf_kv_count(g); i++) {
        m40_gguf_str k = m40_gguf_kv_key(g, i);
        if (k.len > 10 && memcmp(k.ptr, "tokenizer.", 10) == 0)
            rc = copy_kv(wr, g, i, err);
    }
    m40_gguf_close(g);
    return rc ? m40_err_wrap(err, "vocab %s", path) : 0;
}

/* A minimal SentencePiece-style vocabulary: <unk>, <s>, </s>, the 256 byte
 * tokens, then filler pieces, so byte fallback can spell any text. */
static int synth_vocab(m40_gguf_writer *wr, int32_t n_vocab, m40_err *err) {
    if (n_vocab < 259)
        return m40_errf(err, "a synthetic vocabulary needs at least 259 tokens, not %d", n_vocab);
    float *scores = malloc((size_t)n_vocab * sizeof *scores);
    int32_t *types = malloc((size_t)n_vocab * sizeof *types);
    int rc = -1;
    if (!scores || !types) {
        m40_errf(err, "out of memory");
        goto done;
    }
    if (m40_gguf_writer_add_str(wr, "tokenizer.ggml.model", "llama", err) ||
        m40_gguf_writer_begin_array(wr, "tokenizer.ggml.tokens", M40_GGUF_STRING, (uint64_t)n_vocab,
                                    err))
        goto done;
    for (int32_t i = 0; i < n_vocab; i++) {
        char piece[32];
        if (i == 0)
            snprintf(piece, sizeof piece, "<unk>");
        else if (i == 1)
            snprintf(piece, sizeof piece, "<s>");
        else if (i == 2)
            snprintf(piece, sizeof piece, "</s>");
        else if (i < 259)
            snprintf(piece, sizeof piece, "<0x%02X>", i - 3);
        else
            snprintf(piece, sizeof piece, "\xe2\x96\x81t%d", i);
        types[i] = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1;
        scores[i] = i < 259 ? 0.0f : -(float)i;
        if (m40_gguf_writer_push_str(wr, piece, strlen(piece), err))
            goto done;
    }
    if (m40_gguf_writer_end_array(wr, err) ||
        m40_gguf_writer_add_array(wr, "tokenizer.ggml.scores", M40_GGUF_FLOAT32, scores,
                                  (uint64_t)n_vocab, err) ||
        m40_gguf_writer_add_array(wr, "tokenizer.ggml.token_type", M40_GGUF_INT32, types,
                                  (uint64_t)n_vocab, err) ||
        m40_gguf_writer_add_u32(wr, "tokenizer.ggml.unknown_token_id", 0, err) ||
        m40_gguf_writer_add_u32(wr, "tokenizer.ggml.bos_token_id", 1, err) ||
        m40_gguf_writer_add_u32(wr, "tokenizer.ggml.eos_token_id", 2, err) ||
        m40_gguf_writer_add_bool(wr, "tokenizer.ggml.add_bos_token", true, err))
        goto done;
    rc = 0;
done:
    free(scores);
    free(types);
    return rc;
}

int m40_synth_write(const m40_synth_options *opt, m40_synth_report *report, m40_err *err) {
    const m40_shape *shape = m40_shape_find(opt->shape);
    if (!shape)
        return m40_errf(err, "unknown shape \"%s\"", opt->shape);
    if (!m40_quant_can_quantize(opt->type))
        return m40_errf(err, "synth cannot write weights of type %s",
                        m40_ggml_type_name(opt->type));
    if (opt->mix_m && opt->type != M40_GGML_Q4_K && opt->type != M40_GGML_Q5_K)
        return m40_errf(err, "the _M mix is of q4_K or q5_K, not of %s",
                        m40_ggml_type_name(opt->type));
    m40_model_config c = shape->cfg;
    m40_gguf_writer *wr = NULL;
    plan p = {0};
    int rc = -1;
    if (m40_gguf_writer_new(&wr, err))
        return -1;
    /* The vocabulary size is a hyperparameter (vocab_size, the embedding's
     * rows) but comes from the vocab file when one is given: count its
     * tokens before writing anything. */
    int32_t n_vocab = opt->n_vocab > 0 ? opt->n_vocab : (c.n_vocab > 0 ? c.n_vocab : 512);
    if (opt->vocab_path) {
        m40_gguf *g;
        m40_gguf_value tokens;
        if (m40_gguf_open(&g, opt->vocab_path, err))
            goto done;
        int got = m40_gguf_get_array(g, "tokenizer.ggml.tokens", M40_GGUF_STRING, &tokens, err);
        if (got == 0)
            n_vocab = (int32_t)tokens.count;
        m40_gguf_close(g);
        if (got)
            goto done;
    }
    c.n_vocab = n_vocab;
    int32_t vocab_count = 0;
    if (add_hparams(wr, &c, shape->name, opt->type, opt->mix_m, err) ||
        (opt->vocab_path ? copy_vocab(wr, opt->vocab_path, &vocab_count, err)
                         : synth_vocab(wr, n_vocab, err)) ||
        plan_model(&p, &c, opt->type, opt->mix_m, opt->untied, opt->seed, err) ||
        add_tensors(wr, &p, err))
        goto done;
    if (m40_gguf_writer_write_file(wr, opt->out_path, err))
        goto done;
    if (report) {
        report->n_params = 0;
        for (int i = 0; i < p.n; i++)
            report->n_params += (uint64_t)(p.t[i].cols * p.t[i].rows);
        report->file_bytes = m40_gguf_writer_size(wr);
        report->n_vocab = n_vocab;
    }
    rc = 0;
done:
    if (p.fills) {
        for (int i = 0; i < p.n; i++)
            free(p.fills[i].rows);
    }
    free(p.fills);
    free(p.t);
    m40_gguf_writer_free(wr);
    return rc;
}
