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

typedef struct series {
    char endpoint[32];
    unsigned status;
    unsigned long long count;
} series;

struct srv_metrics {
    pthread_mutex_t mu;
    series req[MAX_SERIES];
    int n_req;
    unsigned long long tokens_in, tokens_out;
    unsigned long long ttft_count, ttft_bucket[N_BUCKETS];
    double ttft_sum;
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
    m->tokens_out += (unsigned long long)st->n_gen;
    double s = st->ttft_ms / 1e3;
    m->ttft_count++;
    m->ttft_sum += s;
    for (size_t b = 0; b < N_BUCKETS; b++)
        if (s <= k_ttft_buckets[b])
            m->ttft_bucket[b]++;
    if (st->prefill_ms > 0)
        m->prefill_tps = st->n_prompt * 1e3 / st->prefill_ms;
    if (st->decode_ms > 0 && st->n_gen > 1)
        m->decode_tps = (st->n_gen - 1) * 1e3 / st->decode_ms;
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

char *srv_metrics_render(srv_metrics *m, int depth, int busy) {
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
        "# HELP m40_generated_tokens_total Tokens generated.\n"
        "# TYPE m40_generated_tokens_total counter\nm40_generated_tokens_total %llu\n"
        "# HELP m40_queue_depth Jobs waiting for a free slot.\n"
        "# TYPE m40_queue_depth gauge\nm40_queue_depth %d\n"
        "# HELP m40_slots_busy Slots running a job.\n"
        "# TYPE m40_slots_busy gauge\nm40_slots_busy %d\n"
        "# HELP m40_prefill_tokens_per_second Prompt speed of the last request.\n"
        "# TYPE m40_prefill_tokens_per_second gauge\nm40_prefill_tokens_per_second %.3f\n"
        "# HELP m40_decode_tokens_per_second Decode speed of the last request.\n"
        "# TYPE m40_decode_tokens_per_second gauge\nm40_decode_tokens_per_second %.3f\n"
        "# HELP m40_time_to_first_token_seconds Engine call to first token (queue wait excluded).\n"
        "# TYPE m40_time_to_first_token_seconds histogram\n",
        m->tokens_in, m->tokens_out, depth, busy, m->prefill_tps, m->decode_tps);
    for (size_t i = 0; i < N_BUCKETS; i++)
        add(&b, &len, &cap, "m40_time_to_first_token_seconds_bucket{le=\"%g\"} %llu\n",
            k_ttft_buckets[i], m->ttft_bucket[i]);
    add(&b, &len, &cap,
        "m40_time_to_first_token_seconds_bucket{le=\"+Inf\"} %llu\n"
        "m40_time_to_first_token_seconds_sum %.6f\n"
        "m40_time_to_first_token_seconds_count %llu\n",
        m->ttft_count, m->ttft_sum, m->ttft_count);
    pthread_mutex_unlock(&m->mu);
    return b;
}
