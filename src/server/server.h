/* server.h - `m40-llm serve`: an HTTP server on the engine's decode path.
 *
 * Threads. libmicrohttpd runs one thread per connection; those threads
 * parse requests and write responses but never touch the engine. One engine
 * worker thread per KV slot (--parallel N, jobs.c) takes jobs from a bounded
 * queue (opts.queue long) and runs them on its slot, so N requests generate
 * at once; their forward steps are batched by the engine (engine.h). A full
 * queue answers 503 with Retry-After.
 * A connection waits on its job's condition variable and forwards text as
 * the worker produces it; a streaming client that goes away cancels its
 * job (the engine's text callback returns non-zero).
 *
 * Endpoints (docs/server-api.md): POST /generate, /v1/completions,
 * /v1/chat/completions, /tokenize, /detokenize; GET /v1/models, /health,
 * /metrics; OPTIONS (CORS preflight).
 *
 * Owns: the HTTP daemon, the job queue and worker, metrics. Touches: the
 * GPU only through the engine, and the engine only from the worker thread.
 * Never prints or exits; errors are -1 + m40_err.
 */
#ifndef M40_SERVER_SERVER_H
#define M40_SERVER_SERVER_H

#include <stddef.h>

#include "engine/engine.h"
#include "util/err.h"

typedef struct m40_server_options {
    const char *host;                /* IPv4/IPv6 address or name (default 127.0.0.1) */
    int port;                        /* 0: any free port (m40_server_port tells which) */
    int queue;                       /* jobs waiting for the worker; more get 503 */
    const char *api_key;             /* NULL: no check */
    const char *const *cors_origins; /* allowed Origin values ("*": any) */
    size_t n_cors;
    const char *model_name; /* the id /v1/models reports */
    size_t max_body;        /* bytes; 0: 1 MiB */
    int timeout;            /* seconds a connection may sit idle (no bytes either way while
                               the server waits for the client); 0: 60 */
    int context_shift;      /* a full context drops old tokens instead of stopping (n_keep) */
} m40_server_options;

typedef struct m40_server m40_server;

/* Whether the server could listen on host (an IPv4 or IPv6 address, or a
 * name: its first address) and port: resolves it and binds once, so a bad
 * --host or a busy port fails before a model loads. */
int m40_server_check_listen(const char *host, int port, m40_err *err);

/* Starts the worker and the HTTP daemon; the engine stays the caller's and
 * must outlive the server. */
int m40_server_start(m40_server **out, m40_engine *e, const m40_server_options *opts, m40_err *err);
/* The port actually bound. */
int m40_server_port(const m40_server *s);
/* Stops accepting, cancels queued and running jobs, joins every thread and
 * frees the server. */
void m40_server_stop(m40_server *s);

#endif /* M40_SERVER_SERVER_H */
