/* test_perplexity.c - engine/perplexity.h on a synth model, CPU.
 *
 * - m40_nll_of is -log softmax: two equal logits give log 2; a token far
 *   ahead of the others costs almost nothing; large logits do not overflow.
 * - m40_perplexity_run gives what the method in perplexity.h gives when
 *   written out here against the backend directly: windows of n_ctx from
 *   the start, BOS in front of each when the vocabulary adds one, the
 *   second half scored. Bit for bit: the same logits (batch invariance,
 *   whatever the engine's prompt chunks) and the same sums in the same
 *   order. The window longer than n_batch runs in several chunks.
 * - Too short a text, or a window wider than the context, is refused
 *   before anything runs; --chunks stops early; progress sees each window.
 */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "engine/engine.h"
#include "engine/perplexity.h"
#include "model/model.h"
#include "model/synth.h"
#include "quant/ggml_types.h"

enum { N_CTX = 24, N_BATCH = 16, N_TOKENS = 4 * N_CTX + 7 };

static void test_nll_of(void) {
    const float two[2] = {1.5f, 1.5f}, sure[3] = {40.0f, 0.0f, -3.0f}, big[2] = {1e30f, 1e30f};
    CHECK(fabs(m40_nll_of(two, 2, 1) - log(2.0)) < 1e-12);
    CHECK(m40_nll_of(sure, 3, 0) >= 0.0 && m40_nll_of(sure, 3, 0) < 1e-15);
    CHECK(fabs(m40_nll_of(sure, 3, 2) - (43.0 + log(1.0 + exp(-40.0) + exp(-43.0)))) < 1e-9);
    CHECK(fabs(m40_nll_of(big, 2, 0) - log(2.0)) < 1e-12);
}

/* The method written out: every window's logits from one CPU batch. */
static double reference_ppl(const char *path, const int32_t *tokens, int n_windows, int32_t bos,
                            int64_t *scored) {
    m40_model *m = NULL;
    m40_backend *be = NULL;
    m40_err err = {0};
    m40_backend_options o = {
        .device = M40_DEVICE_CPU, .n_ctx = N_CTX, .n_slots = 1, .n_batch = N_CTX, .n_threads = 2};
    if (m40_model_load(&m, path, &err) || m40_backend_create(&be, m, &o, NULL, 0, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        m40_model_free(m);
        return -1.0;
    }
    const int nv = m->cfg.n_vocab;
    float *logits = malloc((size_t)N_CTX * nv * sizeof *logits);
    int32_t win[N_CTX], slot[N_CTX] = {0}, pos[N_CTX];
    uint8_t want[N_CTX];
    double sum = 0.0;
    *scored = 0;
    for (int w = 0; logits && w < n_windows; w++) {
        for (int i = 0; i < N_CTX; i++) {
            win[i] = tokens[w * N_CTX + i];
            pos[i] = i;
            want[i] = M40_WANT_LOGITS;
        }
        if (bos >= 0)
            win[0] = bos;
        m40_batch b = {.n = N_CTX, .token = win, .slot = slot, .pos = pos, .want = want};
        CHECK(m40_backend_forward_batch(be, &b, logits, NULL, &err) == 0);
        for (int j = N_CTX / 2; j < N_CTX - 1; j++, (*scored)++)
            sum += m40_nll_of(logits + (size_t)j * nv, nv, tokens[w * N_CTX + j + 1]);
    }
    free(logits);
    m40_backend_destroy(be);
    m40_model_free(m);
    return exp(sum / (double)*scored);
}

typedef struct seen {
    int calls, last_window;
    double last_ppl;
} seen;

static int on_window(void *user, int32_t window, double ppl) {
    seen *s = user;
    s->calls++;
    CHECK(window == s->last_window + 1);
    s->last_window = window;
    s->last_ppl = ppl;
    return 0;
}

static void test_run(const char *path) {
    m40_engine_options eo = {
        .model_path = path,
        .backend = {.device = M40_DEVICE_CPU, .n_ctx = N_CTX, .n_batch = N_BATCH, .n_threads = 2}};
    m40_engine *e = NULL;
    m40_err err = {0};
    CHECK(m40_engine_open(&e, &eo, NULL, 0, &err) == 0);
    if (!e) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    const m40_tokenizer *tok = m40_engine_tokenizer(e);
    const int nv = m40_engine_model(e)->cfg.n_vocab;
    int32_t tokens[N_TOKENS];
    unsigned r = 12345;
    for (int i = 0; i < N_TOKENS; i++) {
        r = r * 1103515245u + 12345u;
        tokens[i] = (int32_t)((r >> 8) % (unsigned)nv);
    }
    int32_t bos = m40_tokenizer_add_bos(tok) ? m40_tokenizer_bos(tok) : -1;
    m40_perplexity res;
    seen s = {0};
    CHECK(m40_perplexity_run(e, tokens, N_TOKENS, N_CTX, 0, on_window, &s, &res, &err) == 0);
    int64_t scored = 0;
    double want = reference_ppl(path, tokens, 4, bos, &scored);
    CHECK(res.n_windows == 4 && res.n_scored == scored && scored == 4 * (N_CTX - 1 - N_CTX / 2));
    if (res.ppl != want)
        fprintf(stderr, "perplexity %.17g, written out %.17g\n", res.ppl, want);
    CHECK(res.ppl == want && want > 1.0);
    CHECK(fabs(res.nll - log(res.ppl)) < 1e-12 && res.ppl_err > 0.0);
    CHECK(s.calls == 4 && s.last_ppl == res.ppl);

    /* the tokens' order matters: the same tokens shuffled score otherwise */
    int32_t swapped[N_TOKENS];
    memcpy(swapped, tokens, sizeof tokens);
    for (int i = 0; i + 1 < N_TOKENS; i += 2) {
        int32_t t = swapped[i];
        swapped[i] = swapped[i + 1];
        swapped[i + 1] = t;
    }
    m40_perplexity other;
    CHECK(m40_perplexity_run(e, swapped, N_TOKENS, N_CTX, 0, NULL, NULL, &other, &err) == 0);
    CHECK(other.ppl != res.ppl);

    /* at most 2 windows */
    CHECK(m40_perplexity_run(e, tokens, N_TOKENS, N_CTX, 2, NULL, NULL, &other, &err) == 0);
    CHECK(other.n_windows == 2 && other.n_scored == 2 * (N_CTX - 1 - N_CTX / 2));

    /* refusals, before anything runs */
    CHECK(m40_perplexity_run(e, tokens, 2 * N_CTX - 1, N_CTX, 0, NULL, NULL, &other, &err) != 0);
    CHECK_CONTAINS(err.msg, "the text has 47 tokens; a window of 24 needs at least 48");
    CHECK(err.kind == M40_ERR_BAD_INPUT);
    CHECK(m40_perplexity_run(e, tokens, N_TOKENS, N_CTX + 1, 0, NULL, NULL, &other, &err) != 0);
    CHECK_CONTAINS(err.msg, "a window of 25 tokens (at least 4, at most the context, 24)");
    m40_engine_close(e);
}

int main(void) {
    test_nll_of();
    char dir[] = "/tmp/m40-test-ppl-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char path[256];
    snprintf(path, sizeof path, "%s/tiny.gguf", dir);
    m40_synth_options so = {.shape = "tiny", .type = M40_GGML_Q8_0, .out_path = path, .seed = 9};
    m40_err err = {0};
    CHECK(m40_synth_write(&so, NULL, &err) == 0);
    test_run(path);
    unlink(path);
    rmdir(dir);
    return check_report();
}
