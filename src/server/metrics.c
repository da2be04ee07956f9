/* metrics.c - counters for GET /metrics (Prometheus text format 0.0.4).
 *
 * Owns: the counters and their mutex. Touches: nothing else; the queue
 * depth and busy slots are read by the caller and passed in.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"

#define MAX_SERIES 64
static const double k_ttft_buckets[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define N_BUCKETS (sizeof k_ttft_buckets / sizeof k_ttft_buckets[0])

/* A Prometheus histogram: counts per bucket (not yet cumulative). */
typedef struct histogram {
    unsigned long long bucket[N_BUCKETS + 1]; /* the last: above every bound */
    unsigned long long count;
    double sum;
} histogram;

static void observe(histogram *h, const double *bounds, size_t n, double v) {
    size_t b = 0;
    while (b < n && v > bounds[b])
        b++;
    h->bucket[b]++;
    h->count++;
    h->sum += v;
}

typedef struct series {
    char endpoint[32];
    unsigned status;
    unsigned long long count;
} series;

struct srv_metrics {
    pthread_mutex_t mu;
    series req[MAX_SERIES];
    int n_req;
    unsigned long long tokens_in, tokens_out, tokens_cached;
    histogram ttft;       /* k_ttft_buckets */
    histogram queue_wait; /* k_ttft_buckets */
    /* inter-token latency: the engine's buckets (m40_itl_bounds), no sum */
    unsigned long long itl[M40_ITL_BUCKETS + 1];
    double prefill_tps, decode_tps;
};

srv_metrics *srv_metrics_new(void) {
    srv_metrics *m = calloc(1, sizeof *m);
    if (m)
        pthread_mutex_init(&m->mu, NULL);
    return m;
}

void srv_metrics_free(srv_metrics *m) {
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void srv_metrics_request(srv_metrics *m, const char *endpoint, unsigned status) {
    pthread_mutex_lock(&m->mu);
    int i;
    for (i = 0; i < m->n_req; i++)
        if (m->req[i].status == status && !strcmp(m->req[i].endpoint, endpoint))
            break;
    if (i == m->n_req && m->n_req < MAX_SERIES) {
        snprintf(m->req[i].endpoint, sizeof m->req[i].endpoint, "%s", endpoint);
        m->req[i].status = status;
        m->n_req++;
    }
    if (i < m->n_req)
        m->req[i].count++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_generation(srv_metrics *m, const m40_gen_stats *st) {
    pthread_mutex_lock(&m->mu);
    m->tokens_in += (unsigned long long)st->n_prompt;
    m->tokens_cached += (unsigned long long)st->n_cached;
    m->tokens_out += (unsigned long long)st->n_gen;
    observe(&m->ttft, k_ttft_buckets, N_BUCKETS, st->ttft_ms / 1e3);
    for (int b = 0; b <= M40_ITL_BUCKETS; b++)
        m->itl[b] += st->itl[b];
    if (st->prefill_ms > 0)
        m->prefill_tps = (st->n_prompt - st->n_cached) * 1e3 / st->prefill_ms;
    if (st->decode_ms > 0 && st->n_gen > 1)
        m->decode_tps = (st->n_gen - 1) * 1e3 / st->decode_ms;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_queue_wait(srv_metrics *m, double seconds) {
    pthread_mutex_lock(&m->mu);
    observe(&m->queue_wait, k_ttft_buckets, N_BUCKETS, seconds);
    pthread_mutex_unlock(&m->mu);
}

/* printf onto a growing buffer; on failure the buffer is dropped (and the
 * caller answers 500). */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static void
add(char **buf, size_t *len, size_t *cap, const char *fmt, ...) {
    if (!*buf)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            free(*buf);
            *buf = NULL;
            return;
        }
        if ((size_t)n < *cap - *len) {
            *len += (size_t)n;
            return;
        }
        char *p = realloc(*buf, *cap * 2 + (size_t)n);
        if (!p) {
            free(*buf);
            *buf = NULL;
            return;
        }
        *buf = p;
        *cap = *cap * 2 + (size_t)n;
    }
}

/* The buckets of a histogram, cumulative as Prometheus wants them. */
static void add_buckets(char **b, size_t *len, size_t *cap, const char *name, const double *bounds,
                        size_t n, const unsigned long long *counts) {
    unsigned long long cum = 0;
    for (size_t i = 0; i < n; i++) {
        cum += counts[i];
        add(b, len, cap, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], cum);
    }
    add(b, len, cap, "%s_bucket{le=\"+Inf\"} %llu\n", name, cum + counts[n]);
}

static void add_histogram(char **b, size_t *len, size_t *cap, const char *name, const char *help,
                          const histogram *h) {
    add(b, len, cap, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    add_buckets(b, len, cap, name, k_ttft_buckets, N_BUCKETS, h->bucket);
    add(b, len, cap, "%s_sum %.6f\n%s_count %llu\n", name, h->sum, name, h->count);
}

/* The engine's steps: how many requests' decode tokens each carried. */
static void add_steps(char **b, size_t *len, size_t *cap, const m40_step_stats *st) {
    static const double bounds[7] = {0, 1, 2, 4, 8, 16, 32};
    add(b, len, cap,
        "# HELP m40_steps_total Forward passes run.\n"
        "# TYPE m40_steps_total counter\nm40_steps_total %llu\n"
        "# HELP m40_step_tokens_total Tokens those passes ran (prompt and decode).\n"
        "# TYPE m40_step_tokens_total counter\nm40_step_tokens_total %llu\n"
        "# HELP m40_step_batch_size Requests' decode tokens per forward pass.\n"
        "# TYPE m40_step_batch_size histogram\n",
        (unsigned long long)st->steps, (unsigned long long)st->rows);
    unsigned long long counts[8];
    for (int i = 0; i < 8; i++)
        counts[i] = (unsigned long long)st->by_decode[i];
    add_buckets(b, len, cap, "m40_step_batch_size", bounds, 7, counts);
    add(b, len, cap, "m40_step_batch_size_sum %llu\nm40_step_batch_size_count %llu\n",
        (unsigned long long)st->decode_rows, (unsigned long long)st->steps);
    add(b, len, cap,
        "# HELP m40_decode_step_seconds_total Time the passes with decode tokens took, "
        "dispatch to results.\n"
        "# TYPE m40_decode_step_seconds_total counter\nm40_decode_step_seconds_total %.6f\n"
        "# HELP m40_decode_turn_seconds Time the decode lane sat idle between two passes of "
        "the same requests (the host's turn).\n"
        "# TYPE m40_decode_turn_seconds summary\n"
        "m40_decode_turn_seconds_sum %.6f\nm40_decode_turn_seconds_count %llu\n",
        st->busy_s, st->turn_s, (unsigned long long)st->turns);
}

/* The prompt cache's host-RAM store (--cache-ram). */
static void add_store(char **b, size_t *len, size_t *cap, const m40_engine_store_stats *st) {
    add(b, len, cap,
        "# HELP m40_cache_ram_bytes Bytes the host-RAM prompt store holds.\n"
        "# TYPE m40_cache_ram_bytes gauge\nm40_cache_ram_bytes %zu\n"
        "# HELP m40_cache_ram_entries Slots' token lists (and their K/V) the store holds.\n"
        "# TYPE m40_cache_ram_entries gauge\nm40_cache_ram_entries %d\n"
        "# HELP m40_cache_ram_saved_total Slots saved to the store when a prompt displaced "
        "them.\n"
        "# TYPE m40_cache_ram_saved_total counter\nm40_cache_ram_saved_total %llu\n"
        "# HELP m40_cache_ram_restored_total Prompts that got a prefix back from the store.\n"
        "# TYPE m40_cache_ram_restored_total counter\nm40_cache_ram_restored_total %llu\n"
        "# HELP m40_cache_ram_tokens_restored_total Prompt tokens copied back, not run.\n"
        "# TYPE m40_cache_ram_tokens_restored_total counter\n"
        "m40_cache_ram_tokens_restored_total %llu\n",
        st->bytes, st->entries, (unsigned long long)st->saved, (unsigned long long)st->restored,
        (unsigned long long)st->tokens_restored);
}

char *srv_metrics_render(srv_metrics *m, int depth, int busy, const m40_step_stats *steps,
                         const m40_engine_store_stats *store) {
    size_t len = 0, cap = 4096;
    char *b = malloc(cap);
    pthread_mutex_lock(&m->mu);
    add(&b, &len, &cap,
        "# HELP m40_requests_total HTTP requests by endpoint and status.\n"
        "# TYPE m40_requests_total counter\n");
    for (int i = 0; i < m->n_req; i++)
        add(&b, &len, &cap, "m40_requests_total{endpoint=\"%s\",status=\"%u\"} %llu\n",
            m->req[i].endpoint, m->req[i].status, m->req[i].count);
    add(&b, &len, &cap,
        "# HELP m40_prompt_tokens_total Prompt tokens processed.\n"
        "# TYPE m40_prompt_tokens_total counter\nm40_prompt_tokens_total %llu\n"
        "# HELP m40_prompt_tokens_cached_total Prompt tokens the prompt cache kept (not run).\n"
        "# TYPE m40_prompt_tokens_cached_total counter\nm40_prompt_tokens_cached_total %llu\n"
        "# HELP m40_generated_tokens_total Tokens generated.\n"
        "# TYPE m40_generated_tokens_total counter\nm40_generated_tokens_total %llu\n"
        "# HELP m40_queue_depth Jobs waiting for a free slot.\n"
        "# TYPE m40_queue_depth gauge\nm40_queue_depth %d\n"
        "# HELP m40_slots_busy Slots running a job.\n"
        "# TYPE m40_slots_busy gauge\nm40_slots_busy %d\n"
        "# HELP m40_prefill_tokens_per_second Prompt speed of the last request.\n"
        "# TYPE m40_prefill_tokens_per_second gauge\nm40_prefill_tokens_per_second %.3f\n"
        "# HELP m40_decode_tokens_per_second Decode speed of the last request.\n"
        "# TYPE m40_decode_tokens_per_second gauge\nm40_decode_tokens_per_second %.3f\n",
        m->tokens_in, m->tokens_cached, m->tokens_out, depth, busy, m->prefill_tps, m->decode_tps);
    add_histogram(&b, &len, &cap, "m40_time_to_first_token_seconds",
                  "Engine call to first token (queue wait excluded).", &m->ttft);
    add_histogram(&b, &len, &cap, "m40_queue_wait_seconds",
                  "Time a request waited in the queue for a slot.", &m->queue_wait);
    add(&b, &len, &cap,
        "# HELP m40_inter_token_seconds Time from each generated token to the next.\n"
        "# TYPE m40_inter_token_seconds histogram\n");
    add_buckets(&b, &len, &cap, "m40_inter_token_seconds", m40_itl_bounds, M40_ITL_BUCKETS, m->itl);
    unsigned long long n_itl = 0;
    for (int i = 0; i <= M40_ITL_BUCKETS; i++)
        n_itl += m->itl[i];
    add(&b, &len, &cap, "m40_inter_token_seconds_count %llu\n", n_itl);
    add_steps(&b, &len, &cap, steps);
    add_store(&b, &len, &cap, store);
    pthread_mutex_unlock(&m->mu);
    return b;
}
