/* bench_contend.c - decode latency of one request while another's long
 * prompt is prefilled (`m40-llm bench --contend N`).
 *
 * One engine, two slots. Alone: slot 0 decodes `decode` greedy tokens (ms per
 * token), and slot 1 prefills N tokens (seconds). Together: a thread
 * prefills the N tokens on slot 1 while the main thread keeps decoding on
 * slot 0, one token per m40_engine_step_greedy call, the turns generation
 * takes. Reported: the prefill's time beside the decoding, and the decode
 * steps that ended while it ran: how many, their median, p90 and worst
 * latency. Run it with --one-stream (every forward takes its turn on one
 * stream: a decode step waits for the prompt chunk in flight) and without
 * (decode steps on their own high-priority stream), or with a smaller -b.
 */
#include "cli/bench_contend.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "engine/engine.h"
#include "util/clock.h"

/* Positions slot 0 decodes at: after a short prompt, wrapping before the
 * context's end (the cache contents do not matter to the timing). */
#define DECODE_POS0 16

typedef struct prefill_job {
    m40_engine *e;
    const int32_t *ids;
    int n, rc;
    double t0; /* set before the thread starts: the decode loop reads it */
    double t1; /* read after the join */
    m40_err err;
    int done; /* under mu */
    pthread_mutex_t mu;
} prefill_job;

static void *prefill_thread(void *arg) {
    prefill_job *j = arg;
    int32_t next;
    j->rc = m40_engine_step_greedy(j->e, 1, j->ids, j->n, 0, &next, &j->err);
    j->t1 = m40_clock_s();
    pthread_mutex_lock(&j->mu);
    j->done = 1;
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

static int job_done(prefill_job *j) {
    pthread_mutex_lock(&j->mu);
    int d = j->done;
    pthread_mutex_unlock(&j->mu);
    return d;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Decodes one token on slot 0 at *pos (wrapping), returning its seconds. */
static int decode_one(m40_engine *e, int32_t *tok, int32_t *pos, int n_ctx, double *secs,
                      m40_err *err) {
    if (*pos >= n_ctx - 1)
        *pos = DECODE_POS0;
    double t0 = m40_clock_s();
    int32_t next;
    if (m40_engine_step_greedy(e, 0, tok, 1, *pos, &next, err))
        return -1;
    *secs = m40_clock_s() - t0;
    *tok = next;
    (*pos)++;
    return 0;
}

typedef struct contend_result {
    double decode_ms_alone, prefill_s_alone, prefill_s_beside;
    int n_steps;
    double p50_ms, p90_ms, max_ms, mean_ms;
} contend_result;

static int measure(m40_engine *e, const m40_contend_args *a, const int32_t *ids, int n_ctx,
                   contend_result *r, m40_err *err) {
    int32_t tok = ids[0], pos = DECODE_POS0, next;
    double secs, sum = 0.0;
    /* warm-up: JIT, decode graphs, cuBLAS; slot 0's short prompt */
    if (m40_engine_step_greedy(e, 0, ids, DECODE_POS0, 0, &next, err) ||
        m40_engine_step_greedy(e, 1, ids, a->prompt, 0, &next, err))
        return -1;
    for (int i = 0; i < 8; i++) {
        if (decode_one(e, &tok, &pos, n_ctx, &secs, err))
            return -1;
    }
    for (int i = 0; i < a->decode; i++) {
        if (decode_one(e, &tok, &pos, n_ctx, &secs, err))
            return -1;
        sum += secs;
    }
    r->decode_ms_alone = 1e3 * sum / a->decode;
    double t0 = m40_clock_s();
    if (m40_engine_step_greedy(e, 1, ids, a->prompt, 0, &next, err))
        return -1;
    r->prefill_s_alone = m40_clock_s() - t0;

    size_t cap = 1024, n = 0;
    double *lat = malloc(cap * sizeof *lat);
    if (!lat)
        return m40_errf(err, "out of memory");
    prefill_job j = {.e = e, .ids = ids, .n = a->prompt};
    pthread_mutex_init(&j.mu, NULL);
    pthread_t th;
    j.t0 = m40_clock_s();
    if (pthread_create(&th, NULL, prefill_thread, &j)) {
        pthread_mutex_destroy(&j.mu);
        free(lat);
        return m40_errf(err, "cannot start the prefill thread");
    }
    int rc = 0;
    while (rc == 0 && !job_done(&j)) {
        double s0 = m40_clock_s();
        rc = decode_one(e, &tok, &pos, n_ctx, &secs, err);
        /* only steps that started after the prefill did and ended before it
         * finished are inside the contention window */
        if (rc == 0 && !job_done(&j) && s0 >= j.t0) {
            if (n == cap) {
                double *p = realloc(lat, 2 * cap * sizeof *lat);
                if (!p) {
                    rc = m40_errf(err, "out of memory");
                    break;
                }
                lat = p;
                cap *= 2;
            }
            lat[n++] = secs;
        }
    }
    pthread_join(th, NULL);
    pthread_mutex_destroy(&j.mu);
    if (rc == 0 && j.rc) {
        *err = j.err;
        rc = -1;
    }
    if (rc == 0) {
        r->prefill_s_beside = j.t1 - j.t0;
        r->n_steps = (int)n;
        qsort(lat, n, sizeof *lat, cmp_double);
        double s = 0.0;
        for (size_t i = 0; i < n; i++)
            s += lat[i];
        r->mean_ms = n ? 1e3 * s / (double)n : 0.0;
        r->p50_ms = n ? 1e3 * lat[n / 2] : 0.0;
        r->p90_ms = n ? 1e3 * lat[(n * 9) / 10 < n ? (n * 9) / 10 : n - 1] : 0.0;
        r->max_ms = n ? 1e3 * lat[n - 1] : 0.0;
    }
    free(lat);
    return rc;
}

static void report(const m40_contend_args *a, m40_engine *e, const contend_result *r) {
    const m40_backend *be = m40_engine_backend(e);
    const char *mode = m40_backend_concurrent_decode(be) ? "two streams" : "one stream";
    if (a->json) {
        printf("{\"model\": \"%s\", \"device\": \"%s\", \"mode\": \"%s\", \"prompt\": %d, "
               "\"n_batch\": %d, \"decode_ms_alone\": %.3f, \"prefill_s_alone\": %.3f, "
               "\"prefill_s_beside\": %.3f, \"decode_steps_beside\": %d, "
               "\"decode_ms_mean\": %.3f, \"decode_ms_p50\": %.3f, \"decode_ms_p90\": %.3f, "
               "\"decode_ms_max\": %.3f}\n",
               a->model, m40_backend_describe(be), mode, a->prompt, a->backend.n_batch,
               r->decode_ms_alone, r->prefill_s_alone, r->prefill_s_beside, r->n_steps, r->mean_ms,
               r->p50_ms, r->p90_ms, r->max_ms);
        return;
    }
    printf("device: %s; %s, prompt chunks of %d\n", m40_backend_describe(be), mode,
           a->backend.n_batch);
    printf("alone:  decode %.2f ms/token (%.1f t/s); prefill of %d tokens %.3f s (%.0f t/s)\n",
           r->decode_ms_alone, 1e3 / r->decode_ms_alone, a->prompt, r->prefill_s_alone,
           a->prompt / r->prefill_s_alone);
    printf("beside: prefill %.3f s (%.0f t/s); %d decode steps during it: mean %.2f ms "
           "(%.1f t/s), median %.2f, p90 %.2f, worst %.2f ms\n",
           r->prefill_s_beside, a->prompt / r->prefill_s_beside, r->n_steps, r->mean_ms,
           r->mean_ms > 0.0 ? 1e3 / r->mean_ms : 0.0, r->p50_ms, r->p90_ms, r->max_ms);
}

int m40_bench_contend(const m40_contend_args *a) {
    m40_engine_options eo = {.model_path = a->model, .backend = a->backend};
    eo.backend.n_slots = 2;
    eo.backend.n_ctx = a->prompt + a->decode + 64;
    m40_contend_args args = *a;
    args.backend = eo.backend;
    m40_cli_progress progress;
    m40_cli_progress_attach(&progress, &eo.backend);
    m40_err err = {0};
    m40_engine *e = NULL;
    char notice[640];
    if (m40_engine_open(&e, &eo, notice, sizeof notice, &err)) {
        m40_cli_error("%s", err.msg);
        return M40_EXIT_FAIL;
    }
    if (notice[0])
        fprintf(stderr, "m40-llm: %s\n", notice);
    int n_vocab = m40_engine_model(e)->cfg.n_vocab;
    int32_t *ids = malloc((size_t)a->prompt * sizeof *ids);
    int rc = M40_EXIT_OK;
    if (!ids) {
        m40_cli_error("out of memory");
        rc = M40_EXIT_FAIL;
    } else {
        m40_cli_bench_tokens(ids, a->prompt, n_vocab, 777);
        contend_result r;
        memset(&r, 0, sizeof r);
        if (measure(e, &args, ids, eo.backend.n_ctx, &r, &err)) {
            m40_cli_error("%s", err.msg);
            rc = M40_EXIT_FAIL;
        } else {
            report(&args, e, &r);
        }
    }
    free(ids);
    m40_engine_close(e);
    return rc;
}
