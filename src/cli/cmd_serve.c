/* cmd_serve.c - `m40-llm serve`: the HTTP server (src/server/) on a model.
 *
 *   m40-llm serve [-m MODEL] [--host 127.0.0.1] [--port 8080] [options]
 *
 * Loads the model, starts the server, then waits for SIGINT or SIGTERM and
 * shuts down gracefully (exit 0). The signals are blocked in every thread
 * and taken with sigwait here, so no handler runs inside the server.
 */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "engine/engine.h"
#include "server/server.h"
#include "util/file.h"
#include "util/log.h"

#define MAX_CORS 16

typedef struct serve_args {
    m40_engine_options eo;
    m40_server_options so;
    const char *cors[MAX_CORS];
    int verbose;
    const char *key_file; /* --api-key-file */
    char *key_buf;        /* the key read from it (owned) */
    char *template_buf;   /* --chat-template-file's text (owned) */
} serve_args;

static void serve_usage(FILE *out) {
    fprintf(out,
            "usage: m40-llm serve [-m MODEL] [options]\n"
            "  -m, --model FILE        GGUF model (default: " M40_CLI_DEFAULT_MODEL ")\n"
            "  --host ADDR             address (IPv4, IPv6) or name to listen on (default\n"
            "                          127.0.0.1)\n"
            "  --port N                TCP port (default 8080; 0: any free port)\n"
            "  --parallel N            requests generating at once, one KV slot each (default 1)\n"
            "  --queue N               requests that may wait; more get 503 (default "
            "64)\n"
            "  -to, --timeout N        close a connection idle N seconds (a request sent\n"
            "                          in part, keep-alive; default 60)\n" M40_CLI_BACKEND_HELP
            "  --api-key KEY           require Authorization: Bearer KEY (not on /health)\n"
            "  --api-key-file FILE     the key from FILE's first line (not visible in ps);\n"
            "                          without either flag, M40LLM_API_KEY if set\n"
            "  --cors-origin ORIGIN    allow this browser Origin (\"*\": any); repeatable\n"
            "  --chat-template-file F  use this Jinja chat template instead of the model's\n"
            "  -cram, --cache-ram N    MiB of host RAM for the K/V of chats that other prompts\n"
            "                          pushed out of their slots (default 8192; -1: no limit;\n"
            "                          0: none)\n"
            "  --context-shift         a full context drops the oldest half (after a request's\n"
            "                          n_keep tokens) and goes on, instead of stopping\n"
            "  --one-stream            CUDA: prompt chunks and decode steps share one stream,\n"
            "                          a step's chunk first (a measurement switch)\n"
            "  -v, --verbose           log loading details\n"
            "API: docs/server-api.md\n");
}

/* A flag with a value: 1 consumed, 0 unknown, -1 bad value. */
static int value_flag(serve_args *a, const char *f, const char *v) {
    m40_backend_options *b = &a->eo.backend;
    int r = m40_cli_backend_flag(b, f, v);
    if (r)
        return r;
#define IS(x) (!strcmp(f, x))
    if (IS("-m") || IS("--model"))
        a->eo.model_path = m40_cli_resolve_model(v);
    else if (IS("--host"))
        a->so.host = v;
    else if (IS("--port"))
        return m40_cli_parse_int(f, v, &a->so.port) ? -1 : 1;
    else if (IS("--parallel"))
        return m40_cli_parse_int(f, v, &b->n_slots) ? -1 : 1;
    else if (IS("--queue"))
        return m40_cli_parse_int(f, v, &a->so.queue) ? -1 : 1;
    else if (IS("-cram") || IS("--cache-ram")) {
        int mib = -1;
        if (strcmp(v, "-1") && m40_cli_parse_int(f, v, &mib))
            return -1;
        a->eo.cache_ram = mib < 0 ? SIZE_MAX : (size_t)mib << 20;
    } else if (IS("-to") || IS("--timeout")) {
        if (m40_cli_parse_int(f, v, &a->so.timeout))
            return -1;
        if (a->so.timeout < 1 || a->so.timeout > 86400) {
            m40_cli_error("%s must be 1..86400 seconds", f);
            return -1;
        }
    } else if (IS("--api-key"))
        a->so.api_key = v;
    else if (IS("--api-key-file"))
        a->key_file = v;
    else if (IS("--chat-template-file")) {
        m40_err err = {0};
        free(a->template_buf);
        if (m40_read_file(v, &a->template_buf, NULL, &err)) {
            m40_cli_error("--chat-template-file: %s", err.msg);
            return -1;
        }
        a->eo.chat_template = a->template_buf;
    } else if (IS("--cors-origin")) {
        if (a->so.n_cors >= MAX_CORS) {
            m40_cli_error("--cors-origin: at most %d", MAX_CORS);
            return -1;
        }
        a->cors[a->so.n_cors++] = v;
        a->so.cors_origins = a->cors;
    } else
        return 0;
#undef IS
    return 1;
}

/* A key must be sendable in a Bearer header: visible ASCII, no spaces. */
static int key_ok(const char *k, const char *from) {
    if (!*k) {
        m40_cli_error("%s: the API key is empty", from);
        return 0;
    }
    for (const char *c = k; *c; c++) {
        if (*c <= ' ' || *c > '~') {
            m40_cli_error("%s: the API key holds a space or a non-printable byte", from);
            return 0;
        }
    }
    return 1;
}

/* The key: --api-key, else --api-key-file's first line, else
 * M40LLM_API_KEY; none: no key. */
static int resolve_api_key(serve_args *a) {
    if (a->so.api_key && a->key_file) {
        m40_cli_error("--api-key and --api-key-file: give one");
        return -1;
    }
    if (a->key_file) {
        m40_err err = {0};
        size_t len = 0;
        if (m40_read_file(a->key_file, &a->key_buf, &len, &err)) {
            m40_cli_error("--api-key-file: %s", err.msg);
            return -1;
        }
        a->key_buf[strcspn(a->key_buf, "\r\n")] = '\0'; /* the first line */
        a->so.api_key = a->key_buf;
        return key_ok(a->so.api_key, "--api-key-file") ? 0 : -1;
    }
    if (!a->so.api_key) {
        const char *env = getenv("M40LLM_API_KEY");
        if (env && *env)
            a->so.api_key = env;
        return !a->so.api_key || key_ok(a->so.api_key, "M40LLM_API_KEY") ? 0 : -1;
    }
    return key_ok(a->so.api_key, "--api-key") ? 0 : -1;
}

static int parse_args(serve_args *a, int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            serve_usage(stdout);
            return 1;
        }
        if (!strcmp(f, "-v") || !strcmp(f, "--verbose")) {
            a->verbose = 1;
            continue;
        }
        if (!strcmp(f, "--context-shift")) {
            a->so.context_shift = 1;
            continue;
        }
        if (!strcmp(f, "--one-stream")) { /* the backend refuses it if it has no such switch */
            a->eo.backend.switches = "one-stream";
            continue;
        }
        if (i + 1 >= argc) {
            m40_cli_error("serve: unknown or incomplete option \"%s\"", f);
            return -1;
        }
        int r = value_flag(a, f, argv[i + 1]);
        if (r == 0)
            m40_cli_error("serve: unknown option \"%s\" (m40-llm serve --help)", f);
        if (r <= 0)
            return -1;
        i++;
    }
    if (a->so.port > 65535) {
        m40_cli_error("--port must be at most 65535");
        return -1;
    }
    if (a->eo.backend.n_slots < 1 || a->so.queue < 1) {
        m40_cli_error("--parallel and --queue must be at least 1");
        return -1;
    }
    return resolve_api_key(a);
}

static int serve(serve_args *a) {
    char defbuf[PATH_MAX];
    if (!a->eo.model_path) {
        a->eo.model_path = m40_cli_default_model(defbuf, sizeof defbuf);
        if (!a->eo.model_path) {
            m40_cli_error("no -m given and the default model (%s) is missing: run "
                          "scripts/get-default-model.sh",
                          M40_CLI_DEFAULT_MODEL);
            return M40_EXIT_FAIL;
        }
    }
    const char *slash = strrchr(a->eo.model_path, '/');
    a->so.model_name = slash ? slash + 1 : a->eo.model_path;
    if (!a->verbose)
        m40_log_set_level(M40_LOG_WARN);
    m40_cli_progress progress;
    m40_cli_progress_attach(&progress, &a->eo.backend);

    /* Block the shutdown signals before any thread starts, so every thread
     * inherits the mask and only sigwait below ever sees them. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    m40_err err = {0};
    if (m40_server_check_listen(a->so.host, a->so.port, &err)) {
        m40_cli_error("%s", err.msg);
        return M40_EXIT_FAIL;
    }
    char notice[640];
    m40_engine *e;
    if (m40_engine_open(&e, &a->eo, notice, sizeof notice, &err)) {
        m40_cli_error("%s", err.msg);
        return M40_EXIT_FAIL;
    }
    if (notice[0])
        fprintf(stderr, "m40-llm: %s\n", notice);
    m40_server *srv;
    if (m40_server_start(&srv, e, &a->so, &err)) {
        m40_cli_error("%s", err.msg);
        m40_engine_close(e);
        return M40_EXIT_FAIL;
    }
    /* an IPv6 address goes in brackets in a URL */
    int v6 = strchr(a->so.host, ':') != NULL;
    char kv_label[32];
    m40_cli_kv_label(&a->eo.backend, kv_label, sizeof kv_label);
    fprintf(stderr,
            "m40-llm: serving %s on http://%s%s%s:%d (%s, context %d x %d slots, KV %.0f MiB "
            "%s)\n",
            a->so.model_name, v6 ? "[" : "", a->so.host, v6 ? "]" : "", m40_server_port(srv),
            m40_backend_describe(m40_engine_backend(e)), m40_engine_n_ctx(e), m40_engine_n_slots(e),
            (double)m40_backend_memory_used(m40_engine_backend(e)).kv / (1024.0 * 1024.0),
            kv_label);
    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "m40-llm: %s: shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    m40_server_stop(srv);
    m40_engine_close(e);
    return M40_EXIT_OK;
}

int m40_cmd_serve(int argc, char **argv) {
    serve_args a;
    memset(&a, 0, sizeof a);
    a.eo.backend.device = M40_DEVICE_AUTO;
    a.eo.backend.gpu = -1;
    a.eo.backend.n_slots = 1;
    a.eo.cache_ram = (size_t)8192 << 20; /* llama.cpp's default */
    a.so.host = "127.0.0.1";
    a.so.port = 8080;
    a.so.queue = 64;
    int r = parse_args(&a, argc, argv);
    if (r == 0)
        r = serve(&a);
    else
        r = r > 0 ? M40_EXIT_OK : M40_EXIT_USAGE;
    free(a.key_buf);
    free(a.template_buf);
    return r;
}
