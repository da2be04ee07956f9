/* server.c - HTTP plumbing on libmicrohttpd: request bodies, API key, CORS,
 * replies and streams; srv_route (routes.c) decides what to answer.
 *
 * libmicrohttpd runs a thread per connection, so a handler may block while
 * its job waits in the queue or runs, and a stream's reader blocks until
 * the worker produces the next piece. When a streaming client goes away
 * libmicrohttpd frees the response; its free callback cancels the job.
 *
 * Owns: the daemon, per-connection state, stream state. Touches: the
 * engine never (only jobs.c's workers do); the engine pointer is handed
 * to the queue.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netdb.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "server/server_internal.h"

struct m40_server {
    srv_ctx ctx;
    struct MHD_Daemon *daemon;
    m40_server_options opts;
    int port;
    atomic_int active; /* requests begun and not yet completed (sent or dropped) */
};

/* A request's body as it arrives. */
typedef struct conn_state {
    char *body;
    size_t len, cap;
    int too_big;
} conn_state;

/* A streaming reply: the job and what of its text went out already. */
/* One streamed choice: its job and how far the stream has sent it. */
typedef struct stream_choice {
    srv_job *job;
    size_t consumed;   /* text bytes already in a chunk */
    size_t probs_sent; /* logprobs entries already in a chunk */
    int first, finished;
} stream_choice;

/* A streamed reply: one choice, or `n` of them whose chunks interleave,
 * each with its index; the end marker after the last to finish. */
typedef struct stream_state {
    m40_server *s;
    srv_reply meta; /* fmt, id, created (no body) */
    stream_choice ch[SRV_MAX_CHOICES];
    int n, n_finished;
    char *out; /* formatted bytes not yet handed to libmicrohttpd */
    size_t out_len, out_off, out_cap;
} stream_state;

/* The endpoint label for /metrics: known paths as they are, others "other". */
static const char *endpoint_label(const char *url) {
    static const char *const known[] = {"/generate",       "/completion",
                                        "/v1/completions", "/v1/chat/completions",
                                        "/tokenize",       "/detokenize",
                                        "/health",         "/v1/models",
                                        "/metrics",        "/"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(url, known[i]))
            return known[i];
    return "other";
}

/* The request's Origin when --cors-origin allows it, else NULL. */
static const char *cors_allowed(const m40_server *s, struct MHD_Connection *conn) {
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    if (!origin)
        return NULL;
    for (size_t i = 0; i < s->opts.n_cors; i++)
        if (!strcmp(s->opts.cors_origins[i], "*") || !strcmp(s->opts.cors_origins[i], origin))
            return origin;
    return NULL;
}

/* a == b over n bytes, in a time that does not depend on where they differ. */
static int same_bytes(const char *a, const char *b, size_t n) {
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)a[i] ^ (unsigned char)b[i];
    return diff == 0;
}

/* Whether the request carries the key: "Authorization: Bearer KEY", the
 * scheme in any case (RFC 9110), the key compared in constant time for its
 * length (a wrong length fails without looking at the bytes). */
static int auth_ok(const m40_server *s, struct MHD_Connection *conn) {
    if (!s->opts.api_key)
        return 1;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
        return 0;
    const char *tok = h + 6;
    while (*tok == ' ' || *tok == '\t')
        tok++;
    size_t n = strlen(tok), want = strlen(s->opts.api_key);
    return n == want && same_bytes(tok, s->opts.api_key, n);
}

/* Whether the client closed its end: a peek that reads end-of-file (or
 * fails for good). Safe here: with a thread per connection, only this
 * connection's thread reads its socket. */
static int client_gone(void *arg) {
    struct MHD_Connection *conn = arg;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return 0;
    char c;
    ssize_t n = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* ---- streams ------------------------------------------------------------ */

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    stream_state *st = cls;
    for (;;) {
        if (st->out_off < st->out_len) {
            size_t n = st->out_len - st->out_off;
            if (n > max)
                n = max;
            memcpy(buf, st->out + st->out_off, n);
            st->out_off += n;
            return (ssize_t)n;
        }
        st->out_len = st->out_off = 0;
        if (st->n_finished == st->n)
            return MHD_CONTENT_READER_END_OF_STREAM;
        int rc = 0, waited = 0;
        for (int i = 0; i < st->n && !rc; i++) {
            stream_choice *c = &st->ch[i];
            if (c->finished)
                continue;
            srv_job *j = c->job;
            pthread_mutex_lock(&j->mu);
            /* one choice: wait for it here; several: wait on the first
             * unfinished one, briefly, so the others are not held up */
            if (!waited) {
                srv_job_wait(j, c->consumed, st->n == 1 ? 250 : 20);
                waited = 1;
            }
            int done = j->done;
            size_t have;
            const char *src = srv_job_stream_text(j, &have);
            have = have > c->consumed ? have : c->consumed;
            if (have > c->consumed || done) {
                st->meta.choice = i;
                rc = srv_stream_format(
                    &st->s->ctx, &st->meta, j, have > c->consumed ? src + c->consumed : "",
                    have - c->consumed, &c->probs_sent, c->first, done,
                    done && st->n_finished == st->n - 1, &st->out, &st->out_len, &st->out_cap);
                c->first = 0;
                c->consumed = have;
                c->finished = done;
                st->n_finished += done;
            }
            pthread_mutex_unlock(&j->mu);
        }
        if (rc)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

/* libmicrohttpd is done with the stream: finished, or the client left (then
 * the job is cancelled and the worker moves on at its next piece). */
static void stream_free(void *cls) {
    stream_state *st = cls;
    for (int i = 0; i < st->n; i++) {
        pthread_mutex_lock(&st->ch[i].job->mu);
        st->ch[i].job->cancel = 1;
        pthread_mutex_unlock(&st->ch[i].job->mu);
        srv_job_unref(st->ch[i].job);
    }
    free(st->out);
    free(st);
}

/* ---- replies ------------------------------------------------------------ */

static struct MHD_Response *make_response(m40_server *s, srv_reply *r) {
    if (r->stream) {
        stream_state *st = calloc(1, sizeof *st);
        if (!st)
            return NULL;
        st->s = s;
        st->meta = *r;
        st->meta.stream = NULL;
        st->meta.n_more = 0;
        st->n = 1 + r->n_more;
        for (int i = 0; i < st->n; i++)
            st->ch[i] = (stream_choice){.job = i ? r->more[i - 1] : r->stream, .first = 1};
        struct MHD_Response *resp =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, st, stream_free);
        if (!resp) {
            free(st);
        } else { /* the response owns the jobs now */
            r->stream = NULL;
            r->n_more = 0;
        }
        return resp;
    }
    static const char k_oom[] =
        "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"code\":null}}";
    if (!r->body) {
        r->content_type = "application/json";
        return MHD_create_response_from_buffer(sizeof k_oom - 1, (void *)k_oom,
                                               MHD_RESPMEM_PERSISTENT);
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(r->body), r->body, MHD_RESPMEM_MUST_FREE);
    if (resp)
        r->body = NULL;
    return resp;
}

/* A header-name list as Access-Control-Request-Headers carries it: token
 * characters, commas and spaces only (nothing that could break a header). */
static int header_list_ok(const char *v) {
    for (; *v; v++) {
        unsigned char c = (unsigned char)*v;
        if (!(isalnum(c) || c == '-' || c == '_' || c == ',' || c == ' ' || c == '.'))
            return 0;
    }
    return 1;
}

static enum MHD_Result send_reply(m40_server *s, struct MHD_Connection *conn, const char *url,
                                  srv_reply *r, const char *origin) {
    struct MHD_Response *resp = make_response(s, r);
    free(r->body);
    srv_job_unref(r->stream);
    for (int i = 0; i < r->n_more; i++) /* a stream that could not start */
        srv_job_unref(r->more[i]);
    if (!resp)
        return MHD_NO;
    if (r->content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    if (r->fmt && r->fmt != SRV_NDJSON)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    if (r->retry_after) {
        char v[16];
        snprintf(v, sizeof v, "%d", r->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, v);
    }
    if (origin) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Origin");
    }
    if (r->status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (r->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->status == 204) {
        /* a preflight from an allowed origin may send any headers it asks
         * for (the openai JS SDK's x-stainless-*): echo the request's list */
        const char *asked = origin ? MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                                 "Access-Control-Request-Headers")
                                   : NULL;
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        MHD_add_response_header(
            resp, "Access-Control-Allow-Headers",
            asked && *asked && header_list_ok(asked) ? asked : "Authorization, Content-Type");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    }
    enum MHD_Result ret = MHD_queue_response(conn, r->status, resp);
    MHD_destroy_response(resp);
    srv_metrics_request(s->ctx.metrics, endpoint_label(url), r->status);
    return ret;
}

static void set_error(srv_reply *r, unsigned status, const char *msg, const char *type,
                      const char *code) {
    r->status = status;
    r->body = srv_error_body(msg, type, code);
    r->content_type = "application/json";
}

/* Collects the body (up to max_body; past it, the rest is read and dropped
 * so the 413 can still be sent). Returns 0 when more is coming. */
static int collect_body(m40_server *s, conn_state *cs, const char *data, size_t n) {
    if (cs->too_big)
        return 0;
    if (cs->len + n > s->opts.max_body) {
        cs->too_big = 1;
        free(cs->body);
        cs->body = NULL;
        cs->len = cs->cap = 0;
        return 0;
    }
    if (cs->len + n + 1 > cs->cap) {
        size_t cap = (cs->len + n + 1) * 2;
        char *p = realloc(cs->body, cap);
        if (!p)
            return -1;
        cs->body = p;
        cs->cap = cap;
    }
    memcpy(cs->body + cs->len, data, n);
    cs->len += n;
    cs->body[cs->len] = '\0';
    return 0;
}

/* The longest URL and the most header bytes a request may have: past them
 * a JSON 414 or 431. The connection's memory limit (M40_CONN_MEMORY) is
 * well above both, so libmicrohttpd passes such requests on rather than
 * answering with its own HTML page (it still does past that limit). */
#define M40_MAX_URL     8192
#define M40_MAX_HEADERS 16384
#define M40_CONN_MEMORY (96u << 10)

/* Adds a header's (or query argument's) name and value lengths, and a few
 * bytes for their separators, to *cls (a size_t). */
static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value) {
    (void)kind;
    *(size_t *)cls += strlen(key) + (value ? strlen(value) : 0) + 4;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    (void)version;
    m40_server *s = cls;
    conn_state *cs = *con_cls;
    if (!cs) { /* headers only so far */
        cs = calloc(1, sizeof *cs);
        if (!cs)
            return MHD_NO;
        *con_cls = cs;
        atomic_fetch_add(&s->active, 1);
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (collect_body(s, cs, upload_data, *upload_data_size))
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    srv_reply r;
    memset(&r, 0, sizeof r);
    const char *origin = cors_allowed(s, conn);
    size_t header_bytes = 0, url_bytes = strlen(url); /* the path; the query's pairs apart */
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_header, &header_bytes);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, count_header, &url_bytes);
    if (url_bytes > M40_MAX_URL) {
        set_error(&r, 414, "the URL is too long", "invalid_request_error", "uri_too_long");
    } else if (header_bytes > M40_MAX_HEADERS) {
        set_error(&r, 431, "the request's headers are too large", "invalid_request_error",
                  "headers_too_large");
    } else if (!strcmp(method, "OPTIONS")) {
        r.status = 204;
        r.body = calloc(1, 1);
    } else if (cs->too_big) {
        set_error(&r, 413, "the request body is too large", "invalid_request_error",
                  "body_too_large");
    } else if (strcmp(url, "/health") && !srv_is_page(url) && !auth_ok(s, conn)) {
        set_error(&r, 401, "invalid or missing API key (Authorization: Bearer KEY)",
                  "authentication_error", "invalid_api_key");
    } else {
        r.client_gone = client_gone;
        r.client_gone_arg = conn;
        srv_route(&s->ctx, method, url, cs->body, cs->len, &r);
    }
    return send_reply(s, conn, url, &r, origin);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode code) {
    m40_server *s = cls;
    (void)conn;
    (void)code;
    conn_state *cs = *con_cls;
    if (cs) {
        free(cs->body);
        free(cs);
        *con_cls = NULL;
        atomic_fetch_sub(&s->active, 1);
    }
}

/* ---- lifetime ----------------------------------------------------------- */

/* The address to listen on: host as an IPv4 or IPv6 address, or a name
 * (the first address it resolves to), with the port. */
static int resolve_listen(const char *host, int port, struct sockaddr_storage *sa, m40_err *err) {
    if (port < 0 || port > 65535)
        return m40_errf(err, "cannot listen on port %d (0..65535)", port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || !res)
        return m40_errf(err, "cannot listen on %s:%d (not an address or a name of this host: %s)",
                        host, port, gai_strerror(rc));
    memset(sa, 0, sizeof *sa);
    memcpy(sa, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (sa->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
    else if (sa->ss_family == AF_INET)
        ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
    else
        return m40_errf(err, "cannot listen on %s: not an IP address", host);
    return 0;
}

int m40_server_check_listen(const char *host, int port, m40_err *err) {
    struct sockaddr_storage sa;
    if (resolve_listen(host, port, &sa, err))
        return -1;
    /* bind once now, so a busy port or a foreign address fails before the
     * model loads (the daemon binds again when it starts) */
    int fd = socket(sa.ss_family, SOCK_STREAM, 0), one = 1;
    if (fd < 0)
        return m40_errf(err, "cannot listen on %s:%d: %s", host, port, strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t len =
        sa.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    int ok = bind(fd, (struct sockaddr *)&sa, len) == 0;
    int e = errno;
    close(fd);
    if (!ok)
        return m40_errf(err, "cannot listen on %s:%d: %s", host, port, strerror(e));
    return 0;
}

int m40_server_start(m40_server **out, m40_engine *e, const m40_server_options *opts,
                     m40_err *err) {
    *out = NULL;
    m40_server *s = calloc(1, sizeof *s);
    if (!s)
        return m40_errf(err, "out of memory");
    s->opts = *opts;
    if (!s->opts.host)
        s->opts.host = "127.0.0.1";
    if (!s->opts.max_body)
        s->opts.max_body = 1u << 20;
    if (s->opts.timeout <= 0)
        s->opts.timeout = 60;
    if (!s->opts.model_name)
        s->opts.model_name = "m40-llm";
    struct sockaddr_storage sa;
    if (resolve_listen(s->opts.host, s->opts.port, &sa, err)) {
        free(s);
        return -1;
    }
    s->ctx.engine = e;
    s->ctx.model_name = s->opts.model_name;
    s->ctx.n_ctx = m40_engine_n_ctx(e);
    s->ctx.context_shift = s->opts.context_shift;
    s->ctx.started = time(NULL);
    if (!(s->ctx.metrics = srv_metrics_new())) {
        free(s);
        return m40_errf(err, "out of memory");
    }
    if (srv_queue_start(&s->ctx.queue, e, s->opts.queue, s->ctx.metrics, err)) {
        srv_metrics_free(s->ctx.metrics);
        free(s);
        return -1;
    }
    s->daemon = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
            (sa.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
        (uint16_t)s->opts.port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        /* Idle connections (a request sent in part, a body shorter than its
         * Content-Length, keep-alive between requests) close after
         * opts.timeout; a request waiting for its job or streaming is busy
         * in its handler, which no timeout cuts. 1024 connections: 300
         * half-sent requests do not lock others out (issue 19). */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)M40_CONN_MEMORY, MHD_OPTION_CONNECTION_LIMIT,
        1024u, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->opts.timeout, MHD_OPTION_END);
    if (!s->daemon) {
        srv_queue_stop(&s->ctx.queue);
        srv_queue_destroy(&s->ctx.queue);
        srv_metrics_free(s->ctx.metrics);
        m40_errf(err, "cannot listen on %s:%d (in use, or not an address of this host)",
                 s->opts.host, s->opts.port);
        free(s);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : s->opts.port;
    s->ctx.ready = 1;
    *out = s;
    return 0;
}

int m40_server_port(const m40_server *s) {
    return s->port;
}

void m40_server_stop(m40_server *s) {
    if (!s)
        return;
    s->ctx.ready = 0;
    /* Jobs first: every waiting connection then sees its job done and
     * answers, so stopping the daemon (which joins them) cannot hang. */
    srv_queue_stop(&s->ctx.queue);
    /* No new connections; then give the requests that were answered just
     * now (503s, the last bytes of streams) up to 5 s to go out before the
     * daemon closes every connection. */
    MHD_socket lsock = MHD_quiesce_daemon(s->daemon);
    for (int i = 0; i < 500 && atomic_load(&s->active) > 0; i++)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    MHD_stop_daemon(s->daemon);
    if (lsock != MHD_INVALID_SOCKET)
        close(lsock);
    srv_queue_destroy(&s->ctx.queue);
    srv_metrics_free(s->ctx.metrics);
    free(s);
}
