/* jobs.c - the bounded job queue and the engine workers.
 *
 * One worker thread per KV slot (--parallel N): each takes the next job
 * from the queue and runs it on its own slot, so up to N requests generate
 * at once. Their forward steps are batched inside the engine
 * (m40_engine_generate: every decode token waiting, and a prompt chunk, in
 * one forward); everything else (sampling, detokenizing, stop strings)
 * runs on the workers in parallel. Connections only submit jobs and wait.
 *
 * Owns: the queue, the worker threads, each job's text buffer. Touches:
 * the engine (worker threads only); never HTTP.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/server_internal.h"
#include "util/clock.h"

srv_job *srv_job_new(srv_job_kind kind) {
    srv_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->kind = kind;
    j->refs = 1;
    j->gp = m40_gen_default_params();
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    return j;
}

void srv_job_unref(srv_job *j) {
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left > 0)
        return;
    free(j->prompt);
    cJSON_Delete(j->messages);
    cJSON_Delete(j->tools);
    free(j->probe);
    free(j->content);
    cJSON_Delete(j->calls);
    for (size_t i = 0; i < SRV_MAX_STOPS; i++)
        free(j->stops[i]);
    m40_tokens_free(&j->ids);
    free(j->text);
    free(j->bias);
    m40_grammar_free(j->grammar);
    free(j->probs);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

const char *srv_job_stream_text(const srv_job *j, size_t *len) {
    if (j->tool_calls && !j->done) {
        *len = j->visible;
        return j->text;
    }
    if (j->tool_calls && j->content) {
        *len = strlen(j->content);
        return j->content;
    }
    *len = j->len;
    return j->text;
}

/* How much of the text a stream may send so far (mu held). */
static size_t streamable(const srv_job *j) {
    size_t len;
    srv_job_stream_text(j, &len);
    return len;
}

void srv_job_wait(srv_job *j, size_t have, int timeout_ms) {
    if (j->done || streamable(j) > have)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (!j->done && streamable(j) <= have) {
        if (pthread_cond_timedwait(&j->cv, &j->mu, &ts) == ETIMEDOUT)
            break;
    }
}

/* Appends to the job's text (mu held). */
static int job_append(srv_job *j, const char *text, size_t len) {
    if (j->len + len + 1 > j->cap) {
        size_t cap = (j->len + len + 1) * 2;
        char *p = realloc(j->text, cap);
        if (!p)
            return -1;
        j->text = p;
        j->cap = cap;
    }
    memcpy(j->text + j->len, text, len);
    j->len += len;
    j->text[j->len] = '\0';
    return 0;
}

/* The engine's text callback: hand the piece to the waiting connection;
 * non-zero (cancel) once the connection is gone or the server stops. */
static int on_text(void *user, const char *text, size_t len) {
    srv_job *j = user;
    pthread_mutex_lock(&j->mu);
    int rc = j->cancel || job_append(j, text, len) != 0;
    if (!rc && j->tool_calls) { /* what may stream before a call could start */
        size_t v = m40_chat_tools_hold(j->tool_format, j->text, j->len);
        j->visible = v > j->visible ? v : j->visible;
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return rc;
}

/* The engine's per-token probabilities (logprobs): kept in order. */
static int on_prob(void *user, const m40_token_prob *p) {
    srv_job *j = user;
    pthread_mutex_lock(&j->mu);
    int rc = j->cancel;
    if (!rc && j->n_probs == j->cap_probs) {
        size_t cap = j->cap_probs ? 2 * j->cap_probs : 64;
        m40_token_prob *np = realloc(j->probs, cap * sizeof *np);
        if (np)
            j->probs = np, j->cap_probs = cap;
        else
            rc = 1;
    }
    if (!rc)
        j->probs[j->n_probs++] = *p;
    pthread_mutex_unlock(&j->mu);
    return rc;
}

/* Runs the prompt (its tokens when the queue already made them to pick
 * the slot: job_probe, the same tokens the text would give). */
static int run_generate(srv_queue *q, int slot, srv_job *j, const char *prompt, size_t len,
                        m40_err *err) {
    if (j->gp.n_probs >= 0) {
        j->gp.on_prob = on_prob;
        j->gp.prob_user = j;
    }
    if (j->probe)
        return m40_engine_generate_ids(q->engine, slot, j->probe, j->n_probe, &j->gp, on_text, j,
                                       &j->st, err);
    return m40_engine_generate(q->engine, slot, prompt, len, &j->gp, on_text, j, &j->st, err);
}

static int run_chat(srv_queue *q, int slot, srv_job *j, m40_err *err) {
    char *prompt = NULL;
    size_t len = 0;
    int fallback = 0;
    if (!j->probe &&
        m40_engine_chat_prompt(q->engine, j->messages, j->tools, 1, &prompt, &len, &fallback, err))
        return -1;
    /* As `generate --chat`: the template writes special tokens as text, and
     * one that writes BOS itself must not get a second. */
    j->gp.parse_special = 1;
    if (prompt && m40_engine_starts_with_bos(q->engine, prompt, len))
        j->gp.add_special = 0;
    int rc = run_generate(q, slot, j, prompt, len, err);
    free(prompt);
    if (rc == 0 && j->tool_calls) { /* the reply's calls and content */
        pthread_mutex_lock(&j->mu);
        rc = m40_chat_tools_parse(j->tool_format, j->text ? j->text : "", j->len, &j->content,
                                  &j->calls, err);
        pthread_mutex_unlock(&j->mu);
    }
    return rc;
}

static int run_tokenize(srv_queue *q, srv_job *j, m40_err *err) {
    unsigned flags = (j->add_special ? M40_TOKENIZE_ADD_SPECIAL : 0) |
                     (j->parse_special ? M40_TOKENIZE_PARSE_SPECIAL : 0);
    m40_tokens out = {0};
    if (m40_tokenize(m40_engine_tokenizer(q->engine), j->prompt, j->prompt_len, flags, &out, err)) {
        m40_tokens_free(&out);
        return -1;
    }
    pthread_mutex_lock(&j->mu);
    m40_tokens_free(&j->ids);
    j->ids = out;
    pthread_mutex_unlock(&j->mu);
    return 0;
}

static int run_detokenize(srv_queue *q, srv_job *j, m40_err *err) {
    char *text = NULL;
    size_t len = 0;
    if (m40_detokenize(m40_engine_tokenizer(q->engine), j->ids.ids, j->ids.n, 0, &text, &len, err))
        return -1;
    int rc = on_text(j, text, len) ? m40_errf(err, "out of memory") : 0;
    free(text);
    return rc;
}

/* Runs a job; its outcome is set by finish_job once the worker is idle
 * again (so a client that sends its next request on seeing the reply finds
 * the slot free to pick). */
static int run_job(srv_queue *q, int slot, srv_job *j, m40_err *errp) {
    m40_err err = {0};
    int rc;
    switch (j->kind) {
        case SRV_JOB_CHAT:
            rc = run_chat(q, slot, j, &err);
            break;
        case SRV_JOB_TOKENIZE:
            rc = run_tokenize(q, j, &err);
            break;
        case SRV_JOB_DETOKENIZE:
            rc = run_detokenize(q, j, &err);
            break;
        default:
            rc = run_generate(q, slot, j, j->prompt, j->prompt_len, &err);
            break;
    }
    if (!rc && (j->kind == SRV_JOB_GENERATE || j->kind == SRV_JOB_CHAT))
        srv_metrics_generation(q->metrics, &j->st);
    /* cut short because the server is stopping: the same 503 as a job that
     * never started (a stream just ends; its status is long sent) */
    pthread_mutex_lock(&q->mu);
    int stopping = q->stopping;
    pthread_mutex_unlock(&q->mu);
    if (!rc && stopping && j->st.finish == M40_FINISH_CANCEL) {
        rc = -1;
        m40_errk(&err, M40_ERR_SHUTDOWN, "the server is shutting down");
    }
    *errp = err;
    return rc;
}

static void finish_job(srv_job *j, int rc, const m40_err *err) {
    pthread_mutex_lock(&j->mu);
    j->rc = rc;
    if (rc)
        j->err = *err;
    j->done = 1;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* The slot a job should run on, among the idle workers (q->mu held), as
 * llama.cpp picks one: the slot whose prompt cache holds the longest
 * prefix of the job's prompt, if that is at least half of it; else the
 * slot idle the longest (so one conversation does not evict another's
 * cache while an unused slot waits). Ties: the lowest slot. */
static int pick_slot(srv_queue *q, const srv_job *j) {
    int best = -1, best_similar = 0;
    int32_t best_match = -1;
    double best_idle = 0;
    for (int i = 0; i < q->n_workers; i++) {
        const srv_worker *v = &q->workers[i];
        if (v->current)
            continue;
        int32_t m = j->probe ? m40_engine_slot_match(q->engine, v->slot, j->probe, j->n_probe) : 0;
        int similar = j->n_probe > 0 && 2 * (size_t)m >= j->n_probe;
        int better = best < 0 || similar > best_similar ||
                     (similar && best_similar && m > best_match) ||
                     (!similar && !best_similar && v->idle_since < best_idle);
        if (better)
            best = v->slot, best_similar = similar, best_match = m, best_idle = v->idle_since;
    }
    return best;
}

/* Whether worker w takes the queue's head job now (q->mu held): the first
 * worker to look picks the job's slot once and wakes the others, and only
 * the picked one takes it. */
static int takes_head(srv_queue *q, const srv_worker *w) {
    srv_job *j = q->head;
    if (!j)
        return 0;
    if (j->pick < 0 || q->workers[j->pick].current) {
        j->pick = pick_slot(q, j);
        if (j->pick != w->slot)
            pthread_cond_broadcast(&q->cv);
    }
    return j->pick == w->slot;
}

static void *worker_main(void *arg) {
    srv_worker *w = arg;
    srv_queue *q = w->q;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->stopping && !takes_head(q, w))
            pthread_cond_wait(&q->cv, &q->mu);
        if (q->stopping)
            break;
        srv_job *j = q->head;
        q->head = j->next;
        if (!q->head)
            q->tail = NULL;
        q->depth--;
        q->busy++;
        w->current = j;
        pthread_mutex_unlock(&q->mu);

        srv_metrics_queue_wait(q->metrics, (m40_clock_s() * 1e3 - j->t_submit_ms) / 1e3);
        pthread_mutex_lock(&j->mu);
        j->started = 1;
        int skip = j->cancel; /* its client left while it waited */
        pthread_mutex_unlock(&j->mu);
        int rc = 0;
        m40_err err = {0};
        if (skip)
            j->st.finish = M40_FINISH_CANCEL;
        else
            rc = run_job(q, w->slot, j, &err);
        pthread_mutex_lock(&q->mu);
        q->busy--;
        w->current = NULL;
        w->idle_since = m40_clock_s() * 1e3;
        pthread_cond_broadcast(&q->cv); /* a queued job may pick this slot */
        pthread_mutex_unlock(&q->mu);
        finish_job(j, rc, &err);
        srv_job_unref(j);
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

int srv_queue_start(srv_queue *q, m40_engine *e, int cap, srv_metrics *m, m40_err *err) {
    memset(q, 0, sizeof *q);
    int n = m40_engine_n_slots(e) > 0 ? m40_engine_n_slots(e) : 1;
    q->workers = calloc((size_t)n, sizeof *q->workers);
    if (!q->workers)
        return m40_errf(err, "out of memory");
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->cap = cap > 0 ? cap : 64;
    q->engine = e;
    q->metrics = m;
    q->n_workers = n;
    for (int i = 0; i < n; i++) {
        srv_worker *w = &q->workers[i];
        w->q = q;
        w->slot = i;
        if (pthread_create(&w->thread, NULL, worker_main, w)) {
            srv_queue_stop(q);
            srv_queue_destroy(q);
            return m40_errf(err, "cannot start engine worker thread %d", i);
        }
        w->started = 1;
    }
    return 0;
}

/* Marks a job finished as cancelled (the server is stopping). */
static void job_abandon(srv_job *j) {
    pthread_mutex_lock(&j->mu);
    j->cancel = 1;
    j->done = 1;
    j->rc = -1;
    m40_errk(&j->err, M40_ERR_SHUTDOWN, "the server is shutting down");
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

void srv_queue_stop(srv_queue *q) {
    if (!q->workers)
        return;
    pthread_mutex_lock(&q->mu);
    q->stopping = 1;
    for (int i = 0; i < q->n_workers; i++) {
        srv_job *cur = q->workers[i].current;
        if (cur) { /* a running job stops at its next piece */
            pthread_mutex_lock(&cur->mu);
            cur->cancel = 1;
            pthread_mutex_unlock(&cur->mu);
        }
    }
    srv_job *j = q->head;
    q->head = q->tail = NULL;
    q->depth = 0;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    while (j) {
        srv_job *next = j->next;
        job_abandon(j);
        srv_job_unref(j);
        j = next;
    }
    for (int i = 0; i < q->n_workers; i++) {
        if (q->workers[i].started)
            pthread_join(q->workers[i].thread, NULL);
        q->workers[i].started = 0;
    }
}

void srv_queue_destroy(srv_queue *q) {
    if (!q->workers)
        return;
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q->workers);
    q->workers = NULL;
}

/* The job's prompt as tokens, to pick its slot by (jobs that generate;
 * rendered and tokenized as the worker will; nothing when that fails: the
 * worker reports it). */
static void job_probe(srv_queue *q, srv_job *j) {
    j->pick = -1;
    if (j->kind != SRV_JOB_CHAT && j->kind != SRV_JOB_GENERATE)
        return;
    m40_err err = {0};
    char *rendered = NULL;
    size_t len = j->prompt_len;
    const char *text = j->prompt;
    unsigned flags = (j->gp.add_special ? M40_TOKENIZE_ADD_SPECIAL : 0) |
                     (j->gp.parse_special ? M40_TOKENIZE_PARSE_SPECIAL : 0);
    if (j->kind == SRV_JOB_CHAT) {
        int fallback;
        if (m40_engine_chat_prompt(q->engine, j->messages, j->tools, 1, &rendered, &len, &fallback,
                                   &err))
            return;
        text = rendered;
        flags = M40_TOKENIZE_PARSE_SPECIAL |
                (m40_engine_starts_with_bos(q->engine, rendered, len) || !j->gp.add_special
                     ? 0
                     : M40_TOKENIZE_ADD_SPECIAL);
    }
    m40_tokens ids = {0};
    if (text && m40_tokenize(m40_engine_tokenizer(q->engine), text, len, flags, &ids, &err) == 0) {
        j->probe = ids.ids;
        j->n_probe = ids.n;
    } else {
        m40_tokens_free(&ids);
    }
    free(rendered);
}

int srv_queue_submit(srv_queue *q, srv_job *j) {
    if (q->n_workers > 1) /* one slot: nothing to choose */
        job_probe(q, j);
    else
        j->pick = -1;
    pthread_mutex_lock(&q->mu);
    if (q->stopping || q->depth >= q->cap) {
        pthread_mutex_unlock(&q->mu);
        return -1;
    }
    pthread_mutex_lock(&j->mu);
    j->refs++;
    pthread_mutex_unlock(&j->mu);
    j->next = NULL;
    j->t_submit_ms = m40_clock_s() * 1e3;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    q->depth++;
    pthread_cond_broadcast(&q->cv); /* every idle worker: the job picks one */
    pthread_mutex_unlock(&q->mu);
    return 0;
}

void srv_queue_load(srv_queue *q, int *depth, int *busy) {
    pthread_mutex_lock(&q->mu);
    *depth = q->depth;
    *busy = q->busy;
    pthread_mutex_unlock(&q->mu);
}
