/* bench_batch.c - aggregate speed of several sequences at once
 * (`m40-llm bench --batch 1,2,4,8`), as llama.cpp's batched-bench measures
 * it.
 *
 * For each B: B sequences on slots 0..B-1, each from a thread of its own
 * (as the server's workers run), each with a prompt of P tokens (-p) and N
 * decoded tokens (-n). The threads meet at a barrier before the prompts,
 * after them and after the decoding, so the two phases are timed apart:
 * PP = B * P / prompt time, TG = B * N / decode time (all sequences
 * together; per sequence, TG / B). Each B runs once untimed (warm-up:
 * JIT, decode graphs) and then r times; the table shows the means, and
 * the engine's steps during the decode phase: how many decode tokens each
 * carried on average (B when every step batched every sequence), how long
 * a step took from dispatch to results, and the host's turn between two
 * steps (the GPU idle while the tokens go back and the next step gathers).
 */
#include "cli/bench_batch.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "engine/engine.h"
#include "util/clock.h"

typedef struct batch_run {
    m40_engine *e;
    int n_seq, n_prompt, n_gen;
    int32_t *prompts; /* [n_seq][n_prompt] */
    pthread_barrier_t bar;
    double t[3];       /* after each barrier: prompts start, decoding starts, all done */
    m40_step_stats st; /* at the start of the decoding */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int gate; /* under mu: 0 wait, 1 go, -1 give up (a thread did not start) */
    int rc;
    m40_err err;
} batch_run;

typedef struct seq_job {
    batch_run *run;
    int i;
} seq_job;

/* The barrier's three meetings; thread 0 notes the time and, before the
 * decoding, the engine's step counts. */
static void meet(batch_run *r, int i, int k) {
    pthread_barrier_wait(&r->bar);
    if (i == 0) {
        r->t[k] = m40_clock_s();
        if (k == 1)
            r->st = m40_engine_step_stats(r->e);
    }
}

static void fail(batch_run *r, const m40_err *err) {
    pthread_mutex_lock(&r->mu);
    if (r->rc == 0)
        r->err = *err;
    r->rc = -1;
    pthread_mutex_unlock(&r->mu);
}

/* Whether every thread started (they all meet at the barrier then). */
static int wait_gate(batch_run *r) {
    pthread_mutex_lock(&r->mu);
    while (r->gate == 0)
        pthread_cond_wait(&r->cv, &r->mu);
    int go = r->gate > 0;
    pthread_mutex_unlock(&r->mu);
    return go;
}

static void open_gate(batch_run *r, int go) {
    pthread_mutex_lock(&r->mu);
    r->gate = go ? 1 : -1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void *seq_thread(void *arg) {
    seq_job *j = arg;
    batch_run *r = j->run;
    if (!wait_gate(r))
        return NULL;
    m40_err err = {0};
    m40_engine_seq *s = NULL;
    int32_t next = 0;
    int rc = m40_engine_seq_begin(r->e, j->i, &s, &err);
    meet(r, j->i, 0);
    if (rc == 0)
        rc = m40_engine_seq_step(s, r->prompts + (size_t)j->i * r->n_prompt, r->n_prompt, 0, &next,
                                 &err);
    meet(r, j->i, 1);
    for (int k = 0; rc == 0 && k < r->n_gen; k++) {
        int32_t tok = next;
        rc = m40_engine_seq_step(s, &tok, 1, r->n_prompt + k, &next, &err);
    }
    m40_engine_seq_end(s); /* before the last meeting: no step waits for it */
    meet(r, j->i, 2);
    if (rc)
        fail(r, &err);
    return NULL;
}

/* What one run measured: prompt and decode t/s; of the decode phase's
 * steps, decode tokens a step, ms a step, ms of the host's turn between
 * two steps. */
enum { M_PP, M_TG, M_ROWS, M_STEP_MS, M_TURN_MS, M_N };

/* One timed run of n_seq sequences; fills m[M_N]. */
static int run_once(batch_run *r, double m[M_N]) {
    pthread_t th[M40_BENCH_MAX_BATCH];
    seq_job jobs[M40_BENCH_MAX_BATCH];
    r->rc = 0;
    r->gate = 0;
    pthread_barrier_init(&r->bar, NULL, (unsigned)r->n_seq);
    int started = 0;
    for (int i = 0; i < r->n_seq; i++) {
        jobs[i] = (seq_job){r, i};
        if (pthread_create(&th[i], NULL, seq_thread, &jobs[i]) != 0)
            break;
        started++;
    }
    open_gate(r, started == r->n_seq);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&r->bar);
    if (started < r->n_seq)
        return m40_errf(&r->err, "cannot start %d threads", r->n_seq);
    if (r->rc)
        return -1;
    m40_step_stats end = m40_engine_step_stats(r->e);
    uint64_t steps = end.steps - r->st.steps, rows = end.decode_rows - r->st.decode_rows;
    uint64_t turns = end.turns - r->st.turns;
    m[M_PP] = (double)r->n_seq * r->n_prompt / (r->t[1] - r->t[0]);
    m[M_TG] = (double)r->n_seq * r->n_gen / (r->t[2] - r->t[1]);
    m[M_ROWS] = steps ? (double)rows / (double)steps : 0.0;
    m[M_STEP_MS] = steps ? 1e3 * (end.busy_s - r->st.busy_s) / (double)steps : 0.0;
    m[M_TURN_MS] = turns ? 1e3 * (end.turn_s - r->st.turn_s) / (double)turns : 0.0;
    return 0;
}

static int measure(batch_run *r, int reps, double out[M_N]) {
    double m[M_N];
    for (int i = 0; i < M_N; i++)
        out[i] = 0.0;
    if (run_once(r, m)) /* warm-up */
        return -1;
    for (int k = 0; k < reps; k++) {
        if (run_once(r, m))
            return -1;
        for (int i = 0; i < M_N; i++)
            out[i] += m[i] / reps;
    }
    return 0;
}

int m40_bench_batch(const m40_batch_args *a) {
    int max_b = 0;
    for (int i = 0; i < a->n_sizes; i++)
        max_b = a->sizes[i] > max_b ? a->sizes[i] : max_b;
    m40_engine_options eo = {.model_path = a->model, .backend = a->backend};
    eo.backend.n_slots = max_b;
    eo.backend.n_ctx = a->n_prompt + a->n_gen + 1;
    m40_cli_progress progress;
    m40_cli_progress_attach(&progress, &eo.backend);
    m40_err err = {0};
    char notice[640];
    batch_run r = {.n_prompt = a->n_prompt, .n_gen = a->n_gen};
    if (m40_engine_open(&r.e, &eo, notice, sizeof notice, &err)) {
        m40_cli_error("%s", err.msg);
        return M40_EXIT_FAIL;
    }
    if (notice[0])
        fprintf(stderr, "m40-llm: %s\n", notice);
    int rc = M40_EXIT_OK;
    r.prompts = malloc((size_t)max_b * a->n_prompt * sizeof *r.prompts);
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    const char *desc = m40_backend_describe(m40_engine_backend(r.e));
    if (!r.prompts) {
        m40_cli_error("out of memory");
        rc = M40_EXIT_FAIL;
        goto done;
    }
    int n_vocab = m40_engine_model(r.e)->cfg.n_vocab;
    for (int i = 0; i < max_b; i++)
        m40_cli_bench_tokens(r.prompts + (size_t)i * a->n_prompt, a->n_prompt, n_vocab,
                             1000u + (uint32_t)i);
    if (!a->json) {
        printf("device: %s; prompt %d, generate %d tokens per sequence, mean of %d runs\n", desc,
               a->n_prompt, a->n_gen, a->reps);
        printf("| %4s | %12s | %12s | %14s | %17s | %8s | %8s |\n", "B", "PP t/s", "TG t/s",
               "TG t/s each", "decode rows/step", "step ms", "turn ms");
        printf("|------|--------------|--------------|----------------|-------------------|"
               "----------|----------|\n");
    }
    for (int i = 0; i < a->n_sizes; i++) {
        double m[M_N];
        r.n_seq = a->sizes[i];
        if (measure(&r, a->reps, m)) {
            m40_cli_error("%s", r.err.msg);
            rc = M40_EXIT_FAIL;
            break;
        }
        if (a->json)
            printf("{\"model\": \"%s\", \"device\": \"%s\", \"batch\": %d, \"n_prompt\": %d, "
                   "\"n_gen\": %d, \"pp_tps\": %.3f, \"tg_tps\": %.3f, \"tg_tps_per_seq\": %.3f, "
                   "\"decode_rows_per_step\": %.3f, \"step_ms\": %.4f, \"turn_ms\": %.4f}\n",
                   a->model, desc, r.n_seq, a->n_prompt, a->n_gen, m[M_PP], m[M_TG],
                   m[M_TG] / r.n_seq, m[M_ROWS], m[M_STEP_MS], m[M_TURN_MS]);
        else
            printf("| %4d | %12.2f | %12.2f | %14.2f | %17.2f | %8.3f | %8.3f |\n", r.n_seq,
                   m[M_PP], m[M_TG], m[M_TG] / r.n_seq, m[M_ROWS], m[M_STEP_MS], m[M_TURN_MS]);
        fflush(stdout);
    }
done:
    pthread_cond_destroy(&r.cv);
    pthread_mutex_destroy(&r.mu);
    free(r.prompts);
    m40_engine_close(r.e);
    return rc;
}
