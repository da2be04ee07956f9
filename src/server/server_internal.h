/* server_internal.h - what the server's files share: the job queue that
 * feeds the engine workers (one thread per KV slot, --parallel), the
 * metrics, and the route helpers.
 *
 * Owns: nothing by itself (declarations only). Touches: the engine only
 * from jobs.c's worker threads; HTTP only from server.c and routes.c.
 */
#ifndef M40_SERVER_INTERNAL_H
#define M40_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "engine/engine.h"
#include "server/server.h"

#define SRV_MAX_STOPS 16

typedef enum srv_job_kind {
    SRV_JOB_GENERATE = 0, /* prompt text -> continuation */
    SRV_JOB_CHAT = 1,     /* messages -> chat template -> continuation */
    SRV_JOB_TOKENIZE = 2,
    SRV_JOB_DETOKENIZE = 3,
} srv_job_kind;

/* One request for the engine. Shared by the connection that made it and
 * the worker (refs counts them); the last to let go frees it. Everything
 * below `mu` is guarded by it. */
/* The most choices (`n`) one request may ask for. */
#define SRV_MAX_CHOICES 16

typedef struct srv_job {
    srv_job_kind kind;
    char *prompt; /* GENERATE: the prompt; TOKENIZE: the content (owned) */
    size_t prompt_len;
    cJSON *messages; /* CHAT (owned) */
    cJSON *tools;    /* CHAT: the request's tools, NULL: none (owned) */
    int tool_calls;  /* replies are read for tool calls, in tool_format */
    m40_tool_format tool_format;
    size_t visible; /* with tool_calls: text that may stream as content */
    char *content;  /* with tool_calls, once done: the reply's text outside calls */
    cJSON *calls;   /* with tool_calls, once done: the calls (OpenAI shape), or NULL */
    m40_gen_params gp;
    char *stops[SRV_MAX_STOPS]; /* gp.stop points here (owned) */
    m40_logit_bias *bias;       /* gp.sampling.bias points here (owned) */
    m40_grammar *grammar;       /* gp.grammar points here (owned) */
    int logprobs_api;           /* logprobs asked for: 1 chat form, 2 completions form */
    int echo;                   /* completions: the prompt before the text */
    m40_token_prob *probs;      /* each sampled token's, with gp.n_probs >= 0 (owned) */
    size_t n_probs, cap_probs;
    int add_special, parse_special; /* TOKENIZE flags */
    m40_tokens ids;                 /* DETOKENIZE input; TOKENIZE output */
    double t_submit_ms;
    m40_token *probe; /* the prompt's tokens, to pick a slot by (owned; NULL: none) */
    size_t n_probe;
    int pick; /* the slot chosen for it at the queue's head; -1: not yet */
    struct srv_job *next;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    char *text; /* text produced so far (owned) */
    size_t len, cap;
    int done, rc, cancel;
    int started; /* the worker took it */
    m40_gen_stats st;
    m40_err err; /* why it failed (rc != 0); its kind picks the HTTP status */
} srv_job;

/* ---- jobs.c: the bounded queue and the engine workers --------------------- */

/* One engine worker: a thread that owns KV slot `slot`. */
typedef struct srv_worker {
    struct srv_queue *q;
    int slot;
    pthread_t thread;
    int started;
    srv_job *current;  /* the job it runs (q->mu guards this) */
    double idle_since; /* when it last finished a job (ms; q->mu guards this) */
} srv_worker;

typedef struct srv_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    srv_job *head, *tail;
    int depth, cap;
    int busy; /* workers running a job */
    int stopping;
    srv_worker *workers; /* one per slot */
    int n_workers;
    m40_engine *engine;
    struct srv_metrics *metrics;
} srv_queue;

/* Starts one worker per engine slot (--parallel). */
int srv_queue_start(srv_queue *q, m40_engine *e, int cap, struct srv_metrics *m, m40_err *err);
/* Cancels queued and running jobs, joins the workers; later submits fail.
 * srv_queue_destroy frees the rest once no connection can submit. */
void srv_queue_stop(srv_queue *q);
void srv_queue_destroy(srv_queue *q);
/* Hands the job to the worker (which takes a reference). Returns -1 when
 * the queue is full or stopping. */
int srv_queue_submit(srv_queue *q, srv_job *job);
void srv_queue_load(srv_queue *q, int *depth, int *busy);

srv_job *srv_job_new(srv_job_kind kind);
void srv_job_unref(srv_job *job);
/* Waits until the job is done, it has text past `have`, or `stop` is set;
 * waits at most timeout_ms. Called with job->mu held. */
void srv_job_wait(srv_job *job, size_t have, int timeout_ms);
/* The text a stream of the job may send so far (job->mu held): all of it;
 * with tools, while it runs, only what cannot be the start of a call, and
 * once done the content the calls were taken out of. *len: its length. */
const char *srv_job_stream_text(const srv_job *job, size_t *len);

/* ---- metrics.c --------------------------------------------------------- */

typedef struct srv_metrics srv_metrics;
srv_metrics *srv_metrics_new(void);
void srv_metrics_free(srv_metrics *m);
void srv_metrics_request(srv_metrics *m, const char *endpoint, unsigned status);
void srv_metrics_generation(srv_metrics *m, const m40_gen_stats *st);
void srv_metrics_queue_wait(srv_metrics *m, double seconds);
/* Prometheus text exposition (malloc'd), with the engine's step counts. */
char *srv_metrics_render(srv_metrics *m, int depth, int busy, const m40_step_stats *steps,
                         const m40_engine_store_stats *store);

/* ---- routes.c: one handler per endpoint ------------------------------- */

typedef struct srv_ctx {
    m40_engine *engine;
    srv_queue queue;
    srv_metrics *metrics;
    const char *model_name;
    int n_ctx;
    int context_shift; /* --context-shift: every request's default */
    time_t started;    /* when the server started (ollama's modified_at) */
    atomic_int ready;  /* read by connection threads */
} srv_ctx;

/* What a route answers: a status and a body, or a stream (a job whose
 * text the connection forwards as it comes, formatted as `stream_fmt`). */
typedef enum srv_stream_fmt {
    SRV_NDJSON = 1,
    SRV_SSE_TEXT = 2,
    SRV_SSE_CHAT = 3,
    SRV_OLLAMA_GEN = 4,  /* ollama's /api/generate lines */
    SRV_OLLAMA_CHAT = 5, /* ollama's /api/chat lines */
} srv_stream_fmt;

typedef struct srv_reply {
    unsigned status;
    char *body; /* malloc'd */
    const char *content_type;
    int retry_after;                    /* seconds; 0: no header */
    const char *allow;                  /* 405: the methods the path takes (the Allow header) */
    srv_job *stream;                    /* non-NULL: stream this job (reference owned) */
    srv_job *more[SRV_MAX_CHOICES - 1]; /* and these, choices 1.. of `n` (owned) */
    int n_more;
    int choice;            /* the choice index a chunk carries (streams of several) */
    srv_stream_fmt ollama; /* SRV_OLLAMA_*: answer in ollama's shapes (set by ollama.c) */
    srv_stream_fmt fmt;
    char id[48];
    long created;
    /* Set by server.c: whether the client has hung up (polled while a
     * request waits for its job, so a departed client cancels it). */
    int (*client_gone)(void *arg);
    void *client_gone_arg;
} srv_reply;

/* routes.c: a generation request in OpenAI's chat (chat) or completions
 * shape, answered in r->ollama's shapes when that is set (ollama.c
 * translates its requests into these). */
void srv_route_generation(srv_ctx *c, const cJSON *req, int chat, srv_reply *r);

/* Whether a path is the chat page's (served without the API key: the page
 * asks for it). */
int srv_is_page(const char *path);

/* ollama.c: t as RFC 3339 in UTC ("2026-12-05T17:30:00Z"), ollama's
 * timestamps. */
void srv_rfc3339(time_t t, char *out, size_t cap);

/* ollama.c: the ollama API's model endpoints; 0 when path is none of
 * them (srv_route then answers), 1 with r filled. */
int srv_route_ollama(srv_ctx *c, const char *method, const char *path, const char *body, size_t len,
                     srv_reply *r);

/* Runs the route for method + path with the request body; fills r. */
void srv_route(srv_ctx *c, const char *method, const char *path, const char *body, size_t body_len,
               srv_reply *r);
/* The OpenAI-shaped error body {"error": {...}} (malloc'd). */
char *srv_error_body(const char *message, const char *type, const char *code);
/* ollama's error shape, {"error": message} (a new object, NULL when out of
 * memory). */
struct cJSON *srv_ollama_error(const char *message);
/* The next formatted stream bytes for a piece of text (or the final
 * chunk(s) when final is set) appended to *out (malloc'd, grown); with
 * last, the stream's end marker after them (the last choice to finish). */
int srv_stream_format(const srv_ctx *c, const srv_reply *r, const srv_job *job, const char *text,
                      size_t len, size_t *probs_sent, int first, int final, int last, char **out,
                      size_t *out_len, size_t *out_cap);

#endif /* M40_SERVER_INTERNAL_H */
