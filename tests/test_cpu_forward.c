/* test_cpu_forward.c - properties of the CPU reference forward pass.
 *
 * On synth models (tiny: llama, mini-qwen2: NeoX RoPE + biases, mini-qwen3:
 * per-head q/k norms and heads wider than d / n_head, mini-gemma3: a
 * sliding window of 6 shorter than the prompt, post-norms, GELU;
 * mini-gemma2: soft-capped scores and logits; mini-mixtral: llama with 4
 * experts, 2 per token; mini-phi3: fused q/k/v and gate/up; mini-qwen3moe:
 * 8 experts,
 * 2 per token):
 * - running a prompt in one call, in chunks (n_batch 3), or one token at a
 *   time gives the same logits, bit for bit (each output element is one
 *   thread's fixed-order sum, whatever the batch);
 * - 1 thread and 2 threads give the same logits, bit for bit;
 * - slots are independent;
 * - bad input (token ids, positions past the context, a bad slot) is an
 *   error of its kind, and the logits are finite;
 * - through backend.h the CPU reports itself, its memory, no device
 *   bandwidth and no KV view, and refuses measurement switches it lacks.
 * Agreement with an independent implementation is test_reference.c's job.
 */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "backend/backend.h"
#include "check.h"
#include "model/model.h"
#include "synth_models.h"
#include "quant/ggml_types.h"

#define N_TOK 11

static m40_backend *make_kv2(const m40_model *m, int n_batch, int threads, m40_kv_type k,
                             m40_kv_type v, m40_err *err) {
    m40_backend_options o = {.device = M40_DEVICE_CPU,
                             .n_ctx = 32,
                             .n_slots = 2,
                             .n_batch = n_batch,
                             .n_threads = threads,
                             .kv_type = k,
                             .kv_type_v = v,
                             .kv_v_set = 1};
    m40_backend *cpu = NULL;
    if (m40_backend_create(&cpu, m, &o, NULL, 0, err))
        return NULL;
    return cpu;
}

static m40_backend *make_kv(const m40_model *m, int n_batch, int threads, m40_kv_type kv) {
    m40_err err = {0};
    m40_backend *cpu = make_kv2(m, n_batch, threads, kv, kv, &err);
    if (!cpu)
        fprintf(stderr, "create: %s\n", err.msg);
    return cpu;
}

static m40_backend *make(const m40_model *m, int n_batch, int threads) {
    return make_kv(m, n_batch, threads, M40_KV_F16);
}

/* Other KV cache types (--cache-type-k / -v): the batching properties hold
 * bit for bit (a position's row is stored the same whatever the chunk),
 * and the logits stay within `bound` of the largest |logit| of the FP16
 * cache's (`f16`), but not equal. FP32 stores values unrounded; q8_0 keeps
 * 8 bits a value (each value within 1/254 of its block's largest), q4_0
 * 4 bits (within 1/16): errors that reach the logits through attention.
 * The bounds are for these random, untrained synth models (q4_0 reaches
 * 0.31 on one), whose logits swing more than a trained model's; the
 * ordering f32 < q8_0 < q4_0 is checked by the caller. A quantized cache
 * needs heads of whole 32-value blocks, else it is refused as
 * UNSUPPORTED. Returns the error over the largest |logit| (0: refused). */
static double check_kv(const m40_model *m, const int32_t *toks, const float *f16, m40_kv_type k,
                       m40_kv_type v, double bound) {
    int nv = m->cfg.n_vocab;
    float *a = malloc(nv * 4), *c = malloc(nv * 4);
    m40_err err = {0};
    m40_backend *whole = make_kv2(m, 64, 2, k, v, &err);
    if (m->cfg.head_dim % 32 != 0 && (k >= M40_KV_Q8_0 || v >= M40_KV_Q8_0)) {
        CHECK(!whole && err.kind == M40_ERR_UNSUPPORTED);
        CHECK_CONTAINS(err.msg, "head_dim");
        free(a), free(c);
        return 0.0;
    }
    double rel = 0.0;
    m40_backend *single = make_kv2(m, 64, 1, k, v, &err);
    CHECK(whole && single && a && c);
    if (whole && single && a && c) {
        CHECK(m40_backend_forward(whole, 0, toks, N_TOK, 0, a, &err) == 0);
        for (int i = 0; i < N_TOK; i++)
            CHECK(m40_backend_forward(single, 1, &toks[i], 1, i, c, &err) == 0);
        CHECK(memcmp(a, c, nv * 4) == 0);
        double worst = 0.0, mag = 1e-30;
        for (int i = 0; i < nv; i++) {
            worst = fmax(worst, fabs((double)a[i] - f16[i]));
            mag = fmax(mag, fabs((double)f16[i]));
        }
        if (getenv("M40_TEST_VERBOSE"))
            fprintf(stderr, "kv %d/%d: %.2e of the largest logit\n", k, v, worst / mag);
        CHECK(worst > 0.0 && worst < bound * mag);
        rel = worst / mag;
    }
    m40_backend_destroy(whole);
    m40_backend_destroy(single);
    free(a), free(c);
    return rel;
}

/* What backend.h says of a CPU backend besides its forward. */
static void check_door(const m40_model *m, m40_backend *cpu) {
    m40_err err = {0};
    CHECK(strcmp(m40_backend_name(cpu), "cpu") == 0);
    CHECK_CONTAINS(m40_backend_describe(cpu), "CPU, 2 threads");
    CHECK(!m40_backend_has_greedy(cpu) && !m40_backend_concurrent_decode(cpu));
    int32_t tok = 1, next;
    CHECK(m40_backend_forward_greedy(cpu, 0, &tok, 1, 0, &next, &err) == -1);
    CHECK(err.kind == M40_ERR_UNSUPPORTED);
    m40_backend_memory mem = m40_backend_memory_used(cpu);
    size_t kv_dim = (size_t)m->cfg.n_head_kv * m->cfg.head_dim;
    /* K and V, FP16, 2 slots x n_layer x 32 positions */
    CHECK(mem.kv == 2 * 2 * (size_t)m->cfg.n_layer * 32 * kv_dim * 2);
    CHECK(mem.scratch > 0 && mem.weights == 0);
    double gbps = -1.0;
    CHECK(m40_backend_copy_bandwidth(cpu, &gbps, &err) == 0 && gbps == 0.0);
    float k[512], v[512];
    CHECK(m40_backend_read_kv(cpu, 0, 0, 0, k, v, &err) == -1);
    CHECK(err.kind == M40_ERR_UNSUPPORTED);

    m40_backend_options o = {
        .device = M40_DEVICE_CPU, .n_ctx = 32, .n_slots = 1, .n_batch = 8, .switches = "no-graphs"};
    m40_backend *be = NULL;
    CHECK(m40_backend_create(&be, m, &o, NULL, 0, &err) == -1 && be == NULL);
    CHECK_CONTAINS(err.msg, "no switch \"no-graphs\"");
    CHECK(err.kind == M40_ERR_UNSUPPORTED);
}

static void check_model(const char *path) {
    m40_model *m = NULL;
    m40_err err = {0};
    CHECK(m40_model_load(&m, path, &err) == 0);
    if (!m) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    int nv = m->cfg.n_vocab;
    int32_t toks[N_TOK] = {1, 7, 300, 42, 511, 3, 99, 100, 101, 5, 260};
    float *a = malloc(nv * 4), *b = malloc(nv * 4), *c = malloc(nv * 4), *d = malloc(nv * 4);
    m40_backend *whole = make(m, 64, 2), *chunked = make(m, 3, 2), *single = make(m, 64, 1);
    CHECK(whole && chunked && single);
    if (!whole || !chunked || !single)
        goto done;
    CHECK(m40_backend_forward(whole, 0, toks, N_TOK, 0, a, &err) == 0);
    CHECK(m40_backend_forward(chunked, 0, toks, N_TOK, 0, b, &err) == 0);
    for (int i = 0; i < N_TOK; i++)
        CHECK(m40_backend_forward(single, 1, &toks[i], 1, i, c, &err) == 0);
    CHECK(memcmp(a, b, nv * 4) == 0);
    CHECK(memcmp(a, c, nv * 4) == 0);
    int finite = 1;
    for (int i = 0; i < nv; i++)
        finite &= isfinite(a[i]) != 0;
    CHECK(finite);
    double e32 = check_kv(m, toks, a, M40_KV_F32, M40_KV_F32, 1e-2);
    double e8 = check_kv(m, toks, a, M40_KV_Q8_0, M40_KV_Q8_0, 5e-2);
    double e4 = check_kv(m, toks, a, M40_KV_Q4_0, M40_KV_Q4_0, 0.5);
    check_kv(m, toks, a, M40_KV_Q8_0, M40_KV_Q4_0, 0.5);
    CHECK(e8 == 0.0 || (e32 < e8 && e8 < e4)); /* 0: the shape refuses quantized caches */

    /* slot 1 of `whole` gets other tokens; slot 0 continues unchanged */
    int32_t other[3] = {9, 8, 7};
    CHECK(m40_backend_forward(whole, 1, other, 3, 0, d, &err) == 0);
    int32_t next = 17;
    CHECK(m40_backend_forward(whole, 0, &next, 1, N_TOK, d, &err) == 0);
    CHECK(m40_backend_forward(single, 1, &next, 1, N_TOK, c, &err) == 0);
    CHECK(memcmp(c, d, nv * 4) == 0);

    /* errors */
    int32_t bad = nv;
    CHECK(m40_backend_forward(whole, 0, &bad, 1, 0, d, &err) == -1);
    CHECK_CONTAINS(err.msg, "outside the vocabulary");
    CHECK(err.kind == M40_ERR_BAD_INPUT);
    CHECK(m40_backend_forward(whole, 0, toks, 2, 31, d, &err) == -1);
    CHECK_CONTAINS(err.msg, "do not fit a context of 32");
    CHECK(err.kind == M40_ERR_TOO_LONG);
    CHECK(m40_backend_forward(whole, 2, toks, 1, 0, d, &err) == -1);
    CHECK_CONTAINS(err.msg, "slot 2");
    CHECK(err.kind == M40_ERR_INTERNAL);
    check_door(m, whole);
done:
    m40_backend_destroy(whole);
    m40_backend_destroy(chunked);
    m40_backend_destroy(single);
    free(a), free(b), free(c), free(d);
    m40_model_free(m);
}

/* Phi-3's 128k files give every layer a window of 262144: a window longer
 * than the context must change nothing, the layers' RoPE included (its
 * LongRoPE factors and attention factor; gemma's sliding layers alone
 * rotate with a RoPE of their own). */
static void test_window_past_the_context(void) {
    static const synth_case pair[] = {{"mini-phi3-longrope", M40_GGML_F32},
                                      {"mini-phi3-longrope-swa", M40_GGML_F32}};
    enum { N = 80 }; /* past the original context of 64: the long factors */
    static float logits[2][512];
    char dir[] = "/tmp/m40-test-window-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    for (int i = 0; i < 2; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/m%d.gguf", dir, i);
        m40_synth_options so = {
            .shape = pair[i].shape, .type = pair[i].type, .out_path = path, .seed = 9};
        m40_err err = {0};
        m40_model *m = NULL;
        m40_backend *be = NULL;
        m40_backend_options o = {
            .device = M40_DEVICE_CPU, .n_ctx = 128, .n_slots = 1, .n_batch = 32, .n_threads = 2};
        int32_t toks[N];
        for (int t = 0; t < N; t++)
            toks[t] = (int32_t)((t * 37 + 11) % 500);
        int ok = m40_synth_write(&so, NULL, &err) == 0 && m40_model_load(&m, path, &err) == 0 &&
                 m->cfg.n_vocab <= 512 && m40_backend_create(&be, m, &o, NULL, 0, &err) == 0 &&
                 m40_backend_forward(be, 0, toks, N, 0, logits[i], &err) == 0;
        if (!ok)
            fprintf(stderr, "%s: %s\n", pair[i].shape, err.msg);
        CHECK(ok);
        CHECK(i == 0 || m->cfg.swa_window == 1 << 18);
        m40_backend_destroy(be);
        m40_model_free(m);
        unlink(path);
    }
    rmdir(dir);
    CHECK(memcmp(logits[0], logits[1], sizeof logits[0]) == 0);
}

int main(void) {
    test_window_past_the_context();
    static const synth_case cases[] = {
        {"tiny", M40_GGML_Q4_0},          {"tiny", M40_GGML_F16},
        {"mini-qwen2", M40_GGML_Q6_K},    {"mini-qwen3", M40_GGML_Q8_0},
        {"mini-gemma3", M40_GGML_Q4_K},   {"mini-gemma2", M40_GGML_Q8_0},
        {"mini-qwen3moe", M40_GGML_Q4_0}, {"mini-mixtral", M40_GGML_Q4_K},
        {"mini-phi3", M40_GGML_Q8_0}};
    if (for_each_synth(cases, sizeof cases / sizeof cases[0], 3, check_model))
        return 1;
    return check_report();
}
