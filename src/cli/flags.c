/* flags.c - what the subcommands share when they read their arguments:
 * numbers, the backend flags (one parser for generate, serve, bench and
 * info), files, and the load progress they draw.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "quant/ggml_types.h"
#include "util/clock.h"
#include "util/file.h"

char *m40_cli_read_file(const char *path, size_t *len) {
    m40_err err = {0};
    char *buf;
    if (m40_read_file(path, &buf, len, &err)) {
        m40_cli_error("%s", err.msg);
        return NULL;
    }
    return buf;
}

int m40_cli_parse_device(const char *value, m40_device_kind *out) {
    static const struct {
        const char *name;
        m40_device_kind kind;
    } k_devices[] = {{"auto", M40_DEVICE_AUTO}, {"cpu", M40_DEVICE_CPU}, {"cuda", M40_DEVICE_CUDA}};
    for (size_t i = 0; i < sizeof k_devices / sizeof k_devices[0]; i++) {
        if (!strcmp(value, k_devices[i].name)) {
            *out = k_devices[i].kind;
            return 0;
        }
    }
    m40_cli_error("--device must be auto, cpu or cuda, not \"%s\"", value);
    return -1;
}

int m40_cli_parse_kv_type(const char *value, m40_kv_type *out) {
    static const struct {
        const char *name;
        m40_kv_type type;
    } k_types[] = {
        {"f16", M40_KV_F16}, {"f32", M40_KV_F32}, {"q8_0", M40_KV_Q8_0}, {"q4_0", M40_KV_Q4_0}};
    for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++) {
        if (!strcmp(value, k_types[i].name)) {
            *out = k_types[i].type;
            return 0;
        }
    }
    m40_cli_error("--cache-type must be f16, f32, q8_0 or q4_0, not \"%s\"", value);
    return -1;
}

int m40_cli_parse_int(const char *flag, const char *value, int *out) {
    char *end = NULL;
    if (!value || !*value) {
        m40_cli_error("%s needs a value", flag);
        return -1;
    }
    long v = strtol(value, &end, 10);
    if (*end != '\0' || v < 0 || v > 1000000000L) {
        m40_cli_error("%s: \"%s\" is not a non-negative integer", flag, value);
        return -1;
    }
    *out = (int)v;
    return 0;
}

void m40_cli_kv_label(const m40_backend_options *o, char *buf, size_t cap) {
    uint32_t k = m40_kv_ggml_type(o->kv_type);
    uint32_t v = m40_kv_ggml_type(o->kv_v_set ? o->kv_type_v : o->kv_type);
    if (k == v)
        snprintf(buf, cap, "%s", m40_ggml_type_name(k));
    else
        snprintf(buf, cap, "K %s, V %s", m40_ggml_type_name(k), m40_ggml_type_name(v));
}

int m40_cli_backend_flag(m40_backend_options *o, const char *flag, const char *value) {
#define IS(x) (!strcmp(flag, x))
    if (IS("--device"))
        return m40_cli_parse_device(value, &o->device) ? -1 : 1;
    if (IS("--gpu"))
        return m40_cli_parse_int(flag, value, &o->gpu) ? -1 : 1;
    if (IS("-c") || IS("--ctx-size")) { /* 0: the model's trained context */
        if (m40_cli_parse_int(flag, value, &o->n_ctx))
            return -1;
        if (o->n_ctx == 0)
            o->n_ctx = M40_CTX_TRAINED;
        return 1;
    }
    if (IS("-b") || IS("--batch-size")) {
        if (m40_cli_parse_int(flag, value, &o->n_batch))
            return -1;
        if (o->n_batch < 1) {
            m40_cli_error("%s must be at least 1", flag);
            return -1;
        }
        return 1;
    }
    if (IS("--cache-type") || IS("-ctk") || IS("--cache-type-k")) {
        if (m40_cli_parse_kv_type(value, &o->kv_type))
            return -1;
        if (IS("--cache-type")) /* both */
            o->kv_v_set = 0;
        return 1;
    }
    if (IS("-ctv") || IS("--cache-type-v")) {
        o->kv_v_set = 1;
        return m40_cli_parse_kv_type(value, &o->kv_type_v) ? -1 : 1;
    }
    if (IS("-t") || IS("--threads"))
        return m40_cli_parse_int(flag, value, &o->n_threads) ? -1 : 1;
#undef IS
    return 0;
}

/* ---- load progress ---------------------------------------------------------- */

#define PROGRESS_MIN_BYTES ((uint64_t)256 << 20) /* smaller loads are quick: no report */

void m40_cli_progress_attach(m40_cli_progress *p, m40_backend_options *o) {
    memset(p, 0, sizeof *p);
    p->tty = isatty(STDERR_FILENO);
    p->t0 = m40_clock_s();
    o->progress = m40_cli_progress_draw;
    o->progress_user = p;
}

void m40_cli_progress_draw(void *user, uint64_t done, uint64_t total) {
    m40_cli_progress *p = user;
    if (total < PROGRESS_MIN_BYTES)
        return;
    double gib = (double)total / (1024.0 * 1024.0 * 1024.0);
    int pct = (int)(done * 100 / total);
    if (p->tty) {
        /* one line, redrawn in place */
        fprintf(stderr, "\rm40-llm: loading weights [%-40.*s] %3d%% of %.2f GiB", pct * 40 / 100,
                "########################################", pct, gib);
        if (done == total)
            fprintf(stderr, " (%.1f s)\n", m40_clock_s() - p->t0);
    } else if (done == 0 || pct / 25 > p->last / 25 || done == total) {
        /* a log: a line at the start, each quarter, and the end */
        if (done == total)
            fprintf(stderr, "m40-llm: loading weights: 100%% of %.2f GiB (%.1f s)\n", gib,
                    m40_clock_s() - p->t0);
        else
            fprintf(stderr, "m40-llm: loading weights: %d%% of %.2f GiB\n", pct / 25 * 25, gib);
    }
    p->last = pct;
    fflush(stderr);
}
