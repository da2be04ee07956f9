/* test_model.c - config and weights from GGUF, and what a bad model gets.
 *
 * Models are made in memory by synth's writer path (written to a temp file
 * by m40_synth_write, then edited with the GGUF writer where a test needs a
 * broken one): a good model loads with the shape's config; a missing key,
 * a missing tensor, a wrong shape, an unsupported architecture or a wrong
 * tensor type is an error naming the key or tensor.
 */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "backend/backend.h"
#include "check.h"
#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"
#include "model/model.h"
#include "model/shapes.h"
#include "model/synth.h"
#include "quant/ggml_types.h"
#include "quant/quant.h"

static char g_dir[] = "/tmp/m40-test-model-XXXXXX";

static const char *path_in_dir(const char *name) {
    static char buf[256];
    snprintf(buf, sizeof buf, "%s/%s", g_dir, name);
    return buf;
}

static int synth(const char *shape, uint32_t type, const char *out) {
    m40_synth_options o = {.shape = shape, .type = type, .out_path = out, .seed = 1};
    m40_err err = {0};
    if (m40_synth_write(&o, NULL, &err)) {
        fprintf(stderr, "synth: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static void test_good_models_load(void) {
    static const char *shapes[] = {
        "tiny",        "mini",          "mini-qwen2",   "mini-qwen3", "mini-gemma3",
        "mini-gemma2", "mini-qwen3moe", "mini-mixtral", "mini-phi3",  "mini-gemma3-scaled"};
    for (int i = 0; i < 10; i++) {
        char out[256];
        snprintf(out, sizeof out, "%s", path_in_dir(shapes[i]));
        CHECK(synth(shapes[i], M40_GGML_Q8_0, out) == 0);
        m40_model *m = NULL;
        m40_err err = {0};
        CHECK(m40_model_load(&m, out, &err) == 0);
        if (!m) {
            fprintf(stderr, "%s: %s\n", shapes[i], err.msg);
            continue;
        }
        const m40_model_config *want = &m40_shape_find(shapes[i])->cfg;
        CHECK(m->cfg.arch == want->arch);
        CHECK(m->cfg.n_layer == want->n_layer && m->cfg.n_embd == want->n_embd);
        CHECK(m->cfg.n_head == want->n_head && m->cfg.n_head_kv == want->n_head_kv);
        CHECK(m->cfg.head_dim == want->head_dim && m->cfg.n_ff == want->n_ff);
        CHECK(m->cfg.rope_style == want->rope_style);
        CHECK(m->cfg.has_qkv_bias == want->has_qkv_bias);
        CHECK(m->cfg.has_qk_norm == want->has_qk_norm);
        /* qwen3: per-head norms bound, and heads wider than d / n_head read
         * from attention.key_length */
        CHECK(!want->has_qk_norm || (m->layers[0].q_norm.data && m->layers[0].k_norm.data &&
                                     m->layers[0].q_norm.cols == want->head_dim));
        CHECK(want->has_qk_norm || (!m->layers[0].q_norm.data && !m->layers[0].k_norm.data));
        CHECK(m->cfg.tied_embeddings == want->tied_embeddings);
        CHECK(m->cfg.tied_embeddings ? m->output.data == m->tok_embd.data
                                     : m->output.data != m->tok_embd.data);
        CHECK(m->cfg.n_vocab == 512); /* synth's default vocabulary for test shapes */
        /* a dense MLP, or the router and the experts' stacks (3-D tensors) */
        const m40_layer *last = &m->layers[want->n_layer - 1];
        CHECK(m->cfg.n_expert == want->n_expert && m->cfg.n_expert_used == want->n_expert_used &&
              m->cfg.n_ff_exp == want->n_ff_exp);
        CHECK(want->n_expert ? !last->w_down.data && last->router.rows == want->n_expert &&
                                   last->gate_exps.rows == want->n_expert * want->n_ff_exp &&
                                   last->down_exps.rows == want->n_expert * want->n_embd &&
                                   last->down_exps.cols == want->n_ff_exp
                             : last->w_down.rows == want->n_embd && !last->router.data);
        CHECK(!want->has_qkv_bias || m->layers[0].bq.data != NULL);
        /* gemma3: the window from the file, the family's rules for the rest */
        CHECK(m->cfg.swa_window == want->swa_window &&
              m->cfg.has_post_norms == want->has_post_norms);
        CHECK(m->cfg.ffn_act == want->ffn_act);
        CHECK(!want->swa_window || (m->cfg.swa_period == want->swa_period &&
                                    m->cfg.rope_freq_base_swa == want->rope_freq_base_swa));
        CHECK(m->cfg.embd_scale == (want->has_post_norms ? 16.0f : 1.0f)); /* gemma: sqrt(256) */
        CHECK(m->cfg.attn_softcap == want->attn_softcap &&
              m->cfg.final_softcap == want->final_softcap);
        CHECK(m->cfg.attn_scale == 1.0f / sqrtf((float)want->head_dim));
        /* RoPE scaling: linear (Gemma 3's larger models) as written */
        CHECK(m->cfg.rope_freq_scale == want->rope_freq_scale);
        /* gemma alone gives its sliding layers a RoPE of their own */
        CHECK(m->cfg.swa_own_rope == (want->has_post_norms && want->swa_window > 0));
        /* a decode step reads every weight, or of the experts k of n */
        uint64_t stacks = 0;
        for (int l = 0; want->n_expert && l < want->n_layer; l++)
            stacks += m->layers[l].gate_exps.row_bytes * (uint64_t)m->layers[l].gate_exps.rows +
                      m->layers[l].up_exps.row_bytes * (uint64_t)m->layers[l].up_exps.rows +
                      m->layers[l].down_exps.row_bytes * (uint64_t)m->layers[l].down_exps.rows;
        CHECK(m40_model_active_bytes(m) ==
              m->file_bytes - stacks +
                  stacks / (want->n_expert ? want->n_expert : 1) * (uint64_t)want->n_expert_used);
        CHECK(want->n_expert ? m40_model_active_bytes(m) < m->file_bytes
                             : m40_model_active_bytes(m) == m->file_bytes);
        CHECK(!!m->layers[0].attn_post_norm.data == want->has_post_norms &&
              !!m->layers[5 % want->n_layer].ffn_post_norm.data == want->has_post_norms);
        for (int l = 0; l < want->n_layer; l++) /* mini-gemma3: layer 5 global; gemma2: odd */
            CHECK(m40_layer_is_swa(&m->cfg, l) ==
                  (want->swa_window > 0 && (want->arch == M40_ARCH_GEMMA2 ? l % 2 == 0 : l != 5)));
        m40_model_free(m);
    }
}

/* What rewrite changes: the kv or tensor named `drop` left out, the string
 * kv `set_key` set to `set_val`, the 2-D tensor `reshape` transposed, and
 * every tensor whose name ends in `retype_suffix` made a zero tensor of
 * type `retype`. */
typedef struct edit {
    const char *drop, *set_key, *set_val, *reshape, *retype_suffix;
    uint32_t retype;
    /* retyped tensors: random blocks with a small FP16 d instead of zeros;
     * as_f32: those blocks dequantized, stored as F32 */
    int random, as_f32;
} edit;

/* Deterministic random blocks of `type` (each block's first two bytes,
 * its FP16 d in every IQ format, set to 0.01). */
static void random_blocks(uint32_t type, uint8_t *raw, size_t bytes) {
    uint64_t s = 0x9E3779B97F4A7C15ull ^ type;
    for (size_t i = 0; i < bytes; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        raw[i] = (uint8_t)(s >> 56);
    }
    size_t bb = m40_ggml_type_get(type)->block_bytes;
    for (size_t b = 0; b + bb <= bytes; b += bb)
        raw[b] = 0x1F, raw[b + 1] = 0x21; /* 0x211F: 0.0100 */
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Rewrites `src` into `dst` with the edits e; returns 0 on success. */
static int rewrite(const char *src, const char *dst, const edit *e) {
    static uint8_t zeros[1 << 20];
    const char *drop = e->drop, *set_key = e->set_key, *set_val = e->set_val;
    const char *reshape = e->reshape;
    m40_gguf *g = NULL;
    m40_gguf_writer *w = NULL;
    m40_err err = {0};
    int rc = -1;
    if (m40_gguf_open(&g, src, &err) || m40_gguf_writer_new(&w, &err))
        goto done;
    for (size_t i = 0; i < m40_gguf_kv_count(g); i++) {
        m40_gguf_str k = m40_gguf_kv_key(g, i);
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)k.len, k.ptr);
        if (drop && !strcmp(key, drop))
            continue;
        const m40_gguf_value *v = m40_gguf_kv_value(g, i);
        int r;
        if (set_key && !strcmp(key, set_key))
            r = m40_gguf_writer_add_str(w, key, set_val, &err);
        else if (v->type == M40_GGUF_STRING)
            r = m40_gguf_writer_add_str_n(w, key, v->data, (size_t)v->size, &err);
        else if (v->type == M40_GGUF_ARRAY && v->elem_type == M40_GGUF_STRING) {
            r = m40_gguf_writer_begin_array(w, key, M40_GGUF_STRING, v->count, &err);
            for (uint64_t j = 0; r == 0 && j < v->count; j++) {
                m40_gguf_str s;
                r = m40_gguf_array_str(v, j, &s, &err) ||
                    m40_gguf_writer_push_str(w, s.ptr, s.len, &err);
            }
            r = r || m40_gguf_writer_end_array(w, &err);
        } else if (v->type == M40_GGUF_ARRAY)
            r = m40_gguf_writer_add_array(w, key, v->elem_type, v->data, v->count, &err);
        else if (v->type == M40_GGUF_UINT32) {
            uint32_t u;
            memcpy(&u, v->data, 4);
            r = m40_gguf_writer_add_u32(w, key, u, &err);
        } else if (v->type == M40_GGUF_FLOAT32) {
            float f;
            memcpy(&f, v->data, 4);
            r = m40_gguf_writer_add_f32(w, key, f, &err);
        } else if (v->type == M40_GGUF_BOOL) {
            r = m40_gguf_writer_add_bool(w, key, *(const uint8_t *)v->data != 0, &err);
        } else {
            r = -1;
        }
        if (r)
            goto done;
    }
    for (size_t i = 0; i < m40_gguf_tensor_count(g); i++) {
        const m40_gguf_tensor *t = m40_gguf_tensor_at(g, i);
        char name[80];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        if (drop && !strcmp(name, drop))
            continue;
        uint64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        uint32_t nd = t->n_dims;
        if (reshape && !strcmp(name, reshape) && nd == 2) {
            /* same bytes, rows and columns swapped: a transposed weight */
            uint64_t tmp = ne[0];
            ne[0] = ne[1];
            ne[1] = tmp;
        }
        uint32_t type = t->type;
        const void *data = t->data;
        uint64_t bytes = t->n_bytes;
        if (e->retype_suffix && ends_with(name, e->retype_suffix)) {
            type = e->retype;
            data = zeros;
            bytes = m40_ggml_row_bytes(type, ne[0]) * ne[1] * ne[2] * ne[3];
            if (bytes == 0 || bytes > sizeof zeros / 4)
                goto done;
            if (e->random) {
                static uint8_t blocks[1 << 18];
                static float f32[1 << 18];
                random_blocks(type, blocks, bytes);
                data = blocks;
                if (e->as_f32) {
                    int64_t n = (int64_t)(ne[0] * ne[1] * ne[2] * ne[3]);
                    if (n > (int64_t)(sizeof f32 / sizeof f32[0]) ||
                        m40_dequantize_row(type, blocks, f32, n, &err))
                        goto done;
                    type = M40_GGML_F32, data = f32, bytes = (uint64_t)n * sizeof(float);
                }
            }
        }
        if (m40_gguf_writer_add_tensor(w, name, type, nd, ne, data, bytes, &err))
            goto done;
    }
    rc = m40_gguf_writer_write_file(w, dst, &err);
done:
    if (rc)
        fprintf(stderr, "rewrite: %s\n", err.msg);
    m40_gguf_writer_free(w);
    m40_gguf_close(g);
    return rc;
}

static void expect_load_error(const char *file, const char *want) {
    m40_model *m = NULL;
    m40_err err = {0};
    CHECK(m40_model_load(&m, file, &err) == -1);
    CHECK(m == NULL);
    CHECK_CONTAINS(err.msg, want);
}

static void test_bad_models(void) {
    char good[256], bad[256];
    snprintf(good, sizeof good, "%s", path_in_dir("good.gguf"));
    snprintf(bad, sizeof bad, "%s", path_in_dir("bad.gguf"));
    CHECK(synth("mini", M40_GGML_F16, good) == 0);

    CHECK(rewrite(good, bad, &(edit){.drop = "llama.block_count"}) == 0);
    expect_load_error(bad, "missing required key llama.block_count");

    CHECK(rewrite(good, bad, &(edit){.drop = "blk.1.ffn_up.weight"}) == 0);
    expect_load_error(bad, "missing tensor 'blk.1.ffn_up.weight'");

    CHECK(rewrite(good, bad, &(edit){.drop = "general.architecture"}) == 0);
    expect_load_error(bad, "missing required key general.architecture");

    CHECK(rewrite(good, bad, &(edit){.set_key = "general.architecture", .set_val = "gptneox"}) ==
          0);
    expect_load_error(bad,
                      "architecture \"gptneox\" is not supported (supported: llama, qwen2, qwen3, "
                      "qwen3moe, gemma2, gemma3, phi3)");

    CHECK(rewrite(good, bad, &(edit){.reshape = "blk.0.ffn_down.weight"}) == 0);
    expect_load_error(bad, "tensor 'blk.0.ffn_down.weight' has shape [256, 512");

    /* types the file format sizes but m40-llm cannot compute with: every
     * one named, with its count and first tensor, before anything binds */
    CHECK(rewrite(good, bad,
                  &(edit){.retype_suffix = "ffn_down.weight", .retype = M40_GGML_IQ1_S}) == 0);
    expect_load_error(bad, "tensor type m40-llm cannot run: iq1_s x 2 (first: "
                           "blk.0.ffn_down.weight)");
    char bad2[256];
    snprintf(bad2, sizeof bad2, "%s", path_in_dir("bad2.gguf"));
    CHECK(rewrite(bad, bad2, &(edit){.retype_suffix = "attn_q.weight", .retype = M40_GGML_IQ1_M}) ==
          0);
    expect_load_error(bad2, "tensor types m40-llm cannot run: iq1_s x 2 (first: "
                            "blk.0.ffn_down.weight), iq1_m x 2 (first: blk.0.attn_q.weight)");
    /* the architecture is named first: nothing else matters then */
    CHECK(rewrite(bad2, bad, &(edit){.set_key = "general.architecture", .set_val = "gptneox"}) ==
          0);
    expect_load_error(bad, "architecture \"gptneox\" is not supported");

    /* qwen2 needs its biases */
    char qgood[256];
    snprintf(qgood, sizeof qgood, "%s", path_in_dir("qwen.gguf"));
    CHECK(synth("mini-qwen2", M40_GGML_F16, qgood) == 0);
    CHECK(rewrite(qgood, bad, &(edit){.drop = "blk.0.attn_k.bias"}) == 0);
    expect_load_error(bad, "missing tensor 'blk.0.attn_k.bias'");

    /* qwen3moe needs its expert counts, and 3-D expert tensors */
    char mgood[256];
    snprintf(mgood, sizeof mgood, "%s", path_in_dir("moe.gguf"));
    CHECK(synth("mini-qwen3moe", M40_GGML_Q8_0, mgood) == 0);
    CHECK(rewrite(mgood, bad, &(edit){.drop = "qwen3moe.expert_used_count"}) == 0);
    expect_load_error(bad, "missing required key qwen3moe.expert_used_count");
    CHECK(rewrite(mgood, bad, &(edit){.drop = "blk.1.ffn_up_exps.weight"}) == 0);
    expect_load_error(bad, "missing tensor 'blk.1.ffn_up_exps.weight'");

    /* gemma3 needs its window and its post-norms */
    char ggood[256];
    snprintf(ggood, sizeof ggood, "%s", path_in_dir("gemma3.gguf"));
    CHECK(synth("mini-gemma3", M40_GGML_F16, ggood) == 0);
    CHECK(rewrite(ggood, bad, &(edit){.drop = "gemma3.attention.sliding_window"}) == 0);
    expect_load_error(bad, "missing required key gemma3.attention.sliding_window");
    CHECK(rewrite(ggood, bad, &(edit){.drop = "blk.3.post_ffw_norm.weight"}) == 0);
    expect_load_error(bad, "missing tensor 'blk.3.post_ffw_norm.weight'");

    expect_load_error(path_in_dir("does-not-exist.gguf"), "does-not-exist.gguf");
}

/* CPU logits of tokens 1..5 of the model at path, or -1. */
static int cpu_logits(const char *path, float *out, int n_vocab) {
    m40_model *m = NULL;
    m40_backend *cpu = NULL;
    m40_err err = {0};
    m40_backend_options o = {.device = M40_DEVICE_CPU, .n_ctx = 16, .n_slots = 1, .n_batch = 8};
    static const int32_t toks[5] = {1, 2, 3, 4, 5};
    int rc = m40_model_load(&m, path, &err) || m->cfg.n_vocab != n_vocab ||
             m40_backend_create(&cpu, m, &o, NULL, 0, &err) ||
             m40_backend_forward(cpu, 0, toks, 5, 0, out, &err);
    if (rc)
        fprintf(stderr, "%s: %s\n", path, err.msg);
    m40_backend_destroy(cpu);
    m40_model_free(m);
    return rc ? -1 : 0;
}

/* The IQ grid formats run on the CPU: a model whose ffn_up matrices are
 * random blocks of such a type gives, bit for bit, the logits of the same
 * model with those blocks dequantized to F32 (the CPU dequantizes every
 * row before its dot products, so nothing but the dequantization could
 * differ; test_quant checks that against the gguf package), and not the
 * logits of the model it was made from. */
static void test_iq_weights_run(void) {
    static const uint32_t types[] = {M40_GGML_IQ2_XXS, M40_GGML_IQ2_XS, M40_GGML_IQ2_S,
                                     M40_GGML_IQ3_XXS, M40_GGML_IQ3_S};
    char good[256], iq[256], f32[256];
    snprintf(good, sizeof good, "%s", path_in_dir("iq-base.gguf"));
    snprintf(iq, sizeof iq, "%s", path_in_dir("iq.gguf"));
    snprintf(f32, sizeof f32, "%s", path_in_dir("iq-f32.gguf"));
    CHECK(synth("mini", M40_GGML_F16, good) == 0);
    enum { NV = 512 };
    static float a[NV], b[NV], base[NV];
    CHECK(cpu_logits(good, base, NV) == 0);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        edit e = {.retype_suffix = "ffn_up.weight", .retype = types[i], .random = 1};
        CHECK(rewrite(good, iq, &e) == 0);
        e.as_f32 = 1;
        CHECK(rewrite(good, f32, &e) == 0);
        CHECK(cpu_logits(iq, a, NV) == 0 && cpu_logits(f32, b, NV) == 0);
        int finite = 1;
        for (int j = 0; j < NV; j++)
            finite &= isfinite(a[j]) != 0;
        CHECK(finite);
        CHECK(memcmp(a, base, sizeof a) != 0); /* the IQ blocks did replace ffn_up */
        if (memcmp(a, b, sizeof a))
            fprintf(stderr, "%s: logits differ from the F32 copy's\n",
                    m40_ggml_type_name(types[i]));
        CHECK(memcmp(a, b, sizeof a) == 0);
    }
}

int main(void) {
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_good_models_load();
    test_bad_models();
    test_iq_weights_run();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", g_dir);
    return check_report();
}
