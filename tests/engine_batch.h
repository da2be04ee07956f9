/* engine_batch.h - the engine's batching checks, shared by test_engine.c
 * (CPU, in CI) and tests/gpu/test_gpu_engine.c (CUDA, in the GPU bundle).
 *
 * check_batched_equals_alone: 8 requests at once (prompts of mixed
 * lengths, greedy and seeded sampling) each give byte for byte the text
 * they give alone, and the engine's steps carried several requests'
 * tokens at once.
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
        if (i % 2) { /* every other request samples, with its own seed */
            r->p.sampling.temperature = 0.9f;
            r->p.sampling.seed = 100 + (uint64_t)i;
        }
        run_request(r);
        CHECK(r->rc == 0 && r->out.len > 0);
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
    m40_engine_close(e);
}

#endif /* M40_TESTS_ENGINE_BATCH_H */
