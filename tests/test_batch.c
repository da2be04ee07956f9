/* test_batch.c - one forward over a batch of several sequences (backend.h's
 * m40_batch) on the CPU, the reference for its semantics.
 *
 * - Batch invariance: three sequences started at different steps, their
 *   prompts in chunks mixed with the others' decode tokens, give logits
 *   bit for bit equal to running each sequence alone.
 * - A batch that breaks the rules (slot, token or position out of range, a
 *   slot's rows apart or not consecutive, an argmax asked of the CPU) is
 *   refused, with the error kind the server maps to a status, before
 *   anything runs.
 */
#include <stdlib.h>
#include <unistd.h>

#include "backend/backend.h"
#include "check.h"
#include "model/model.h"
#include "synth_models.h"
#include "quant/ggml_types.h"

#define N_SEQ   3
#define N_GEN   6
#define MAX_LEN 16
#define CHUNK   4 /* prompt tokens per step */

typedef struct seq {
    int32_t len;            /* prompt length */
    int32_t tok[MAX_LEN];   /* prompt, then the tokens decoded after it */
    int32_t start;          /* the step it joins the batch at */
    int32_t done;           /* tokens run so far */
    float *want[1 + N_GEN]; /* logits after the prompt and each decoded token */
} seq;

static m40_backend *make(const m40_model *m, m40_err *err) {
    m40_backend_options o = {
        .device = M40_DEVICE_CPU, .n_ctx = 32, .n_slots = N_SEQ, .n_batch = 8, .n_threads = 2};
    m40_backend *be = NULL;
    if (m40_backend_create(&be, m, &o, NULL, 0, err))
        fprintf(stderr, "%s\n", err->msg);
    return be;
}

static void init_seqs(seq *s, int32_t n_vocab) {
    static const int32_t lens[N_SEQ] = {5, 9, 3};
    uint32_t x = 7;
    for (int i = 0; i < N_SEQ; i++) {
        s[i].len = lens[i];
        s[i].start = i;
        s[i].done = 0;
        for (int t = 0; t < lens[i] + N_GEN; t++) {
            x = x * 1664525u + 1013904223u;
            s[i].tok[t] = (int32_t)(x % (uint32_t)n_vocab);
        }
    }
}

/* Each sequence alone: the prompt in one call, then one token a call. */
static int run_alone(m40_backend *be, seq *s, m40_err *err) {
    for (int i = 0; i < N_SEQ; i++) {
        if (m40_backend_forward(be, i, s[i].tok, s[i].len, 0, s[i].want[0], err))
            return -1;
        for (int k = 1; k <= N_GEN; k++) {
            int32_t p = s[i].len + k - 1;
            if (m40_backend_forward(be, i, &s[i].tok[p], 1, p, s[i].want[k], err))
                return -1;
        }
    }
    return 0;
}

/* All sequences in batches: each step takes every started sequence's next
 * piece (a prompt chunk of up to CHUNK tokens, or one decode token). */
static int run_batched(m40_backend *be, seq *s, int32_t nv, float *out, m40_err *err) {
    int32_t token[N_SEQ * CHUNK], slot[N_SEQ * CHUNK], pos[N_SEQ * CHUNK];
    uint8_t want[N_SEQ * CHUNK];
    for (int step = 0;; step++) {
        int32_t n = 0;
        int owner[N_SEQ * CHUNK];
        for (int i = 0; i < N_SEQ; i++) {
            int32_t total = s[i].len + N_GEN;
            if (step < s[i].start || s[i].done >= total)
                continue;
            int32_t take = s[i].done < s[i].len ? s[i].len - s[i].done : 1;
            if (take > CHUNK)
                take = CHUNK;
            for (int32_t t = 0; t < take; t++) {
                int32_t p = s[i].done + t;
                token[n] = s[i].tok[p];
                slot[n] = i;
                pos[n] = p;
                want[n] = t == take - 1 && p + 1 >= s[i].len;
                owner[n++] = i;
            }
            s[i].done += take;
        }
        if (n == 0)
            return 0;
        m40_batch b = {.n = n, .token = token, .slot = slot, .pos = pos, .want = want};
        if (m40_backend_forward_batch(be, &b, out, NULL, err))
            return -1;
        /* each wanted row's logits: the row after its position's prompt */
        float *l = out;
        for (int32_t r = 0; r < n; r++) {
            if (!want[r])
                continue;
            seq *q = &s[owner[r]];
            int k = pos[r] + 1 - q->len; /* 0: after the prompt */
            CHECK(memcmp(l, q->want[k], (size_t)nv * sizeof *l) == 0);
            l += nv;
        }
    }
}

static void check_refusals(m40_backend *be) {
    int32_t token[2] = {1, 2}, slot[2] = {0, 0}, pos[2] = {0, 1};
    uint8_t want[2] = {0, 1};
    float logits[1];
    m40_err err = {0};
    m40_batch b = {.n = 2, .token = token, .slot = slot, .pos = pos, .want = want};
    slot[1] = N_SEQ;
    CHECK(m40_backend_forward_batch(be, &b, logits, NULL, &err) == -1 &&
          err.kind == M40_ERR_INTERNAL);
    CHECK_CONTAINS(err.msg, "slot 3 outside");
    slot[1] = 0;
    pos[1] = 2;
    CHECK(m40_backend_forward_batch(be, &b, logits, NULL, &err) == -1);
    CHECK_CONTAINS(err.msg, "consecutive positions");
    pos[1] = 32;
    CHECK(m40_backend_forward_batch(be, &b, logits, NULL, &err) == -1 &&
          err.kind == M40_ERR_TOO_LONG);
    pos[1] = 1;
    token[0] = -1;
    CHECK(m40_backend_forward_batch(be, &b, logits, NULL, &err) == -1 &&
          err.kind == M40_ERR_BAD_INPUT);
    token[0] = 1;
    want[1] = M40_WANT_ARGMAX; /* the CPU has no argmax of its own */
    CHECK(m40_backend_forward_batch(be, &b, logits, NULL, &err) == -1 &&
          err.kind == M40_ERR_UNSUPPORTED);
    want[1] = M40_WANT_LOGITS;
    /* slot 0, slot 1, slot 0 again: a slot's rows must be together */
    int32_t t3[3] = {1, 2, 3}, s3[3] = {0, 1, 0}, p3[3] = {0, 0, 1};
    uint8_t w3[3] = {0, 0, 1};
    m40_batch apart = {.n = 3, .token = t3, .slot = s3, .pos = p3, .want = w3};
    CHECK(m40_backend_forward_batch(be, &apart, logits, NULL, &err) == -1);
    CHECK_CONTAINS(err.msg, "slot 0's rows must be together");
    b.n = 0;
    CHECK(m40_backend_forward_batch(be, &b, logits, NULL, &err) == -1);
}

static void check_model(const char *path) {
    m40_model *m = NULL;
    m40_err err = {0};
    CHECK(m40_model_load(&m, path, &err) == 0);
    if (!m)
        return;
    int32_t nv = m->cfg.n_vocab;
    seq s[N_SEQ];
    float *out = malloc((size_t)N_SEQ * nv * sizeof *out);
    init_seqs(s, nv);
    int ok = out != NULL;
    for (int i = 0; i < N_SEQ; i++)
        for (int k = 0; k <= N_GEN; k++)
            ok &= (s[i].want[k] = malloc((size_t)nv * sizeof(float))) != NULL;
    m40_backend *alone = ok ? make(m, &err) : NULL, *batched = ok ? make(m, &err) : NULL;
    CHECK(alone && batched);
    if (alone && batched) {
        CHECK(run_alone(alone, s, &err) == 0);
        CHECK(run_batched(batched, s, nv, out, &err) == 0);
        check_refusals(batched);
    }
    m40_backend_destroy(alone);
    m40_backend_destroy(batched);
    for (int i = 0; i < N_SEQ; i++)
        for (int k = 0; k <= N_GEN; k++)
            free(s[i].want[k]);
    free(out);
    m40_model_free(m);
}

int main(void) {
    static const synth_case cases[] = {{"tiny", M40_GGML_Q8_0},
                                       {"tiny", M40_GGML_F16},
                                       {"mini-qwen2", M40_GGML_Q4_K},
                                       {"mini-gemma3", M40_GGML_Q8_0}};
    if (for_each_synth(cases, sizeof cases / sizeof cases[0], 11, check_model))
        return 1;
    return check_report();
}
