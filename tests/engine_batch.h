/* engine_batch.h - the engine's batching checks, shared by test_engine.c
 * (CPU, in CI) and tests/gpu/test_gpu_engine.c (CUDA, in the GPU bundle).
 *
 * check_batched_equals_alone: 8 requests at once (prompts of mixed
 * lengths, greedy and seeded sampling) each give byte for byte the text
 * they give alone, and the engine's steps carried several requests'
 * tokens at once; alone, a request's host turns are counted between its
 * own decode steps only.
 *
 * check_prompt_cache: a prompt that shares a prefilled prefix (a system
 * prompt) with what its slot ran last gives byte for byte the text it
 * gives without the cache, having run only the rest of itself; with
 * generated_too, also when the prefix holds the slot's generated tokens
 * (those were computed by decode steps: exact on the CPU only).
 *
 * check_prompt_store: with the host-RAM store (--cache-ram), a slot's
 * tokens that another prompt displaced come back from host memory for the
 * prompt that continues them, and the text is again byte for byte the
 * text without any cache.
 */
#ifndef M40_TESTS_ENGINE_BATCH_H
#define M40_TESTS_ENGINE_BATCH_H

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/engine.h"

typedef struct text_buf {
    char s[4096];
    size_t len;
} text_buf;

static int collect(void *user, const char *text, size_t len) {
    text_buf *b = user;
    if (b->len + len >= sizeof b->s)
        return 1;
    memcpy(b->s + b->len, text, len);
    b->len += len;
    b->s[b->len] = '\0';
    return 0;
}

static m40_gen_params greedy(int max_tokens) {
    m40_gen_params p = m40_gen_default_params();
    p.sampling.temperature = 0.0f;
    p.max_tokens = max_tokens;
    p.ignore_eos = 1;
    return p;
}

#define N_REQ 8

typedef struct request {
    m40_engine *e;
    int32_t slot;
    char prompt[64];
    m40_gen_params p;
    text_buf out;
    int rc;
    m40_err err;
    pthread_barrier_t *go;
} request;

static void *run_request(void *arg) {
    request *r = arg;
    if (r->go)
        pthread_barrier_wait(r->go);
    r->out.len = 0;
    r->out.s[0] = '\0';
    r->rc = m40_engine_generate(r->e, r->slot, r->prompt, strlen(r->prompt), &r->p, collect,
                                &r->out, NULL, &r->err);
    return NULL;
}

static void check_batched_equals_alone(const char *path, m40_device_kind device) {
    m40_engine_options eo = {
        .model_path = path,
        .backend = {.device = device, .gpu = -1, .n_ctx = 128, .n_slots = N_REQ, .n_batch = 8}};
    m40_engine *e = NULL;
    m40_err err = {0};
    CHECK(m40_engine_open(&e, &eo, NULL, 0, &err) == 0);
    if (!e)
        return;
    static request alone[N_REQ], together[N_REQ];
    for (int i = 0; i < N_REQ; i++) {
        request *r = &alone[i];
        memset(r, 0, sizeof *r);
        r->e = e;
        r->slot = i;
        /* prompts of 3 to 40 bytes: some a chunk, some several */
        int len = 3 + (i * 37) % 38;
        for (int k = 0; k < len; k++)
            r->prompt[k] = (char)('a' + (i * 5 + k * 3) % 26);
        r->p = greedy(16 + 3 * i);
        r->p.cache_prompt = 0; /* the same work alone and together */
        if (i % 2) {           /* every other request samples, with its own seed */
            r->p.sampling.temperature = 0.9f;
            r->p.sampling.seed = 100 + (uint64_t)i;
        }
        m40_step_stats before = m40_engine_step_stats(e);
        run_request(r);
        CHECK(r->rc == 0 && r->out.len > 0);
        /* alone, a request's decode steps are one token each, and a host's
         * turn lies between each two of them, none before the first (its
         * prompt ran since the last request's last step) */
        m40_step_stats after = m40_engine_step_stats(e);
        uint64_t solo = after.by_decode[1] - before.by_decode[1];
        CHECK(solo > 1 && after.turns - before.turns == solo - 1);
    }
    m40_step_stats before = m40_engine_step_stats(e);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, N_REQ);
    pthread_t th[N_REQ];
    for (int i = 0; i < N_REQ; i++) {
        together[i] = alone[i];
        together[i].go = &go;
        CHECK(pthread_create(&th[i], NULL, run_request, &together[i]) == 0);
    }
    for (int i = 0; i < N_REQ; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    for (int i = 0; i < N_REQ; i++) {
        const request *a = &alone[i], *t = &together[i];
        CHECK(t->rc == 0);
        CHECK(a->out.len == t->out.len && memcmp(a->out.s, t->out.s, a->out.len) == 0);
        if (t->rc)
            fprintf(stderr, "request %d: %s\n", i, t->err.msg);
    }
    /* the requests shared steps: some carried several decode tokens */
    m40_step_stats after = m40_engine_step_stats(e);
    uint64_t shared = 0;
    for (int b = 2; b < 8; b++)
        shared += after.by_decode[b] - before.by_decode[b];
    CHECK(shared > 0);
    CHECK(after.decode_rows - before.decode_rows > after.steps - before.steps);
    /* the decode steps took time, and between two steps of the same
     * requests the host's turns were counted */
    CHECK(after.busy_s > before.busy_s);
    CHECK(after.turns > before.turns && after.turn_s > before.turn_s);
    m40_engine_close(e);
}

/* Greedy text of prompt on slot 0 (cache_prompt as given); *cached gets
 * the prompt tokens the cache kept. */
static void cached_run(m40_engine *e, const char *prompt, int cache, text_buf *out,
                       int32_t *cached) {
    m40_gen_params p = greedy(12);
    p.cache_prompt = cache;
    m40_gen_stats st;
    m40_err err = {0};
    out->len = 0;
    out->s[0] = '\0';
    CHECK(m40_engine_generate(e, 0, prompt, strlen(prompt), &p, collect, out, &st, &err) == 0);
    *cached = st.n_cached;
}

static void check_prompt_cache(const char *path, m40_device_kind device, int generated_too) {
    m40_engine_options eo = {
        .model_path = path,
        .backend = {.device = device, .gpu = -1, .n_ctx = 256, .n_slots = 1, .n_batch = 8}};
    m40_engine *e = NULL;
    m40_err err = {0};
    CHECK(m40_engine_open(&e, &eo, NULL, 0, &err) == 0);
    if (!e)
        return;
    static const char sys[] = "You are a careful assistant. Answer briefly. ";
    char a[256], b[256];
    snprintf(a, sizeof a, "%sQ1: what is two plus two?", sys);
    snprintf(b, sizeof b, "%sQ2: name a color of the sky.", sys);
    static text_buf a0, b0, a1, b1;
    int32_t n;
    cached_run(e, a, 0, &a0, &n);
    CHECK(n == 0);
    cached_run(e, b, 0, &b0, &n);
    CHECK(n == 0);
    cached_run(e, a, 1, &a1, &n); /* the slot holds b: the system prompt is shared */
    CHECK(n > 8);
    CHECK(a1.len == a0.len && !memcmp(a1.s, a0.s, a0.len));
    cached_run(e, b, 1, &b1, &n);
    CHECK(n > 8);
    CHECK(b1.len == b0.len && !memcmp(b1.s, b0.s, b0.len));
    cached_run(e, b, 1, &b1, &n); /* the same prompt again: all but its end kept */
    CHECK(b1.len == b0.len && !memcmp(b1.s, b0.s, b0.len));
    if (generated_too) {
        /* turn 2 of a chat: the prompt holds turn 1's answer, whose K/V the
         * slot computed while generating it */
        static char c[sizeof a + sizeof a0.s + 64];
        static text_buf c0, c1;
        snprintf(c, sizeof c, "%s%s Q3: and three plus three?", a, a0.s);
        cached_run(e, c, 0, &c0, &n);
        cached_run(e, a, 1, &a1, &n); /* the slot: a and its answer */
        cached_run(e, c, 1, &c1, &n);
        CHECK(n > (int32_t)strlen(sys) / 8);
        CHECK(c1.len == c0.len && !memcmp(c1.s, c0.s, c0.len));
    }
    /* a sequence driven by its caller (bench, perplexity) leaves nothing to
     * reuse */
    m40_engine_seq *q = NULL;
    CHECK(m40_engine_seq_begin(e, 0, &q, &err) == 0);
    m40_engine_seq_end(q);
    cached_run(e, a, 1, &a1, &n);
    CHECK(n == 0 && a1.len == a0.len && !memcmp(a1.s, a0.s, a0.len));
    m40_engine_close(e);
}

/* Greedy text of prompt on slot 0 with the cache; *restored gets the
 * prompt tokens copied back from the host-RAM store. */
static void stored_run(m40_engine *e, const char *prompt, text_buf *out, int32_t *cached,
                       int32_t *restored) {
    m40_gen_params p = greedy(12);
    m40_gen_stats st;
    m40_err err = {0};
    out->len = 0;
    out->s[0] = '\0';
    int rc = m40_engine_generate(e, 0, prompt, strlen(prompt), &p, collect, out, &st, &err);
    CHECK(rc == 0);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    *cached = st.n_cached;
    *restored = st.n_restored;
}

/* Two long questions after one system prompt take turns on one slot:
 * each displaces the other, which goes to the store and comes back. */
static void check_prompt_store(const char *path, m40_device_kind device, int generated_too) {
    m40_engine_options eo = {
        .model_path = path,
        .backend = {.device = device, .gpu = -1, .n_ctx = 1024, .n_slots = 1, .n_batch = 8},
        .cache_ram = (size_t)64 << 20};
    m40_engine *e = NULL;
    m40_err err = {0};
    CHECK(m40_engine_open(&e, &eo, NULL, 0, &err) == 0);
    if (!e)
        return;
    static char a[1024], b[1024], c[sizeof a + sizeof(text_buf) + 64];
    static const char sys[] = "You are a careful assistant. Answer briefly. ";
    int len = snprintf(a, sizeof a, "%sQ1:", sys);
    for (int i = 0; i < 24; i++) /* long enough to be worth a copy */
        len += snprintf(a + len, sizeof a - (size_t)len, " two plus %d,", i);
    len = snprintf(b, sizeof b, "%sQ2:", sys);
    for (int i = 0; i < 24; i++)
        len += snprintf(b + len, sizeof b - (size_t)len, " a color %d,", i);
    static text_buf a0, b0, a1, b1, c0, c1;
    int32_t n, r;
    cached_run(e, a, 0, &a0, &n); /* the texts without any cache */
    snprintf(c, sizeof c, "%s%s Q3: and three plus three?", a, a0.s); /* a's next turn */
    cached_run(e, c, 0, &c0, &n);
    cached_run(e, b, 0, &b0, &n);  /* the slot holds b now */
    stored_run(e, a, &a1, &n, &r); /* b goes to the store; a keeps only sys */
    CHECK(r == 0 && n > 0 && n < 100 && a1.len == a0.len && !memcmp(a1.s, a0.s, a0.len));
    stored_run(e, b, &b1, &n, &r); /* a goes to the store, b comes back (all but 2) */
    CHECK(r > 100 && n == r && b1.len == b0.len && !memcmp(b1.s, b0.s, b0.len));
    stored_run(e, a, &a1, &n, &r); /* b is in the store already; a comes back */
    CHECK(r > 100 && n == r && a1.len == a0.len && !memcmp(a1.s, a0.s, a0.len));
    int32_t a_prompt = r + 2;
    m40_engine_store_stats st = m40_engine_store_stats_get(e);
    CHECK(st.saved == 2 && st.restored == 2 && st.entries == 2 && st.bytes > 0);
    if (generated_too) {
        /* c continues a and its answer, which the store's copy of a holds
         * (K/V computed by decode steps: exact on the CPU only); at least
         * a's prompt comes back (the answer's text may tokenize otherwise
         * than the tokens generated) */
        stored_run(e, b, &b1, &n, &r);
        stored_run(e, c, &c1, &n, &r);
        CHECK(r >= a_prompt && c1.len == c0.len && !memcmp(c1.s, c0.s, c0.len));
    }
    m40_engine_close(e);
}

#endif /* M40_TESTS_ENGINE_BATCH_H */
