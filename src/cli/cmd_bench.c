/* cmd_bench.c - `m40-llm bench`: prefill and decode speed, like llama-bench.
 *
 *   m40-llm bench -m MODEL [-p 512] [-n 128] [-r 3] [--device ...] [--json]
 *
 * pp<P>: one forward over P tokens (prefill). tg<N>: N single-token forwards
 * after an empty context (decode). Both run through the engine's greedy
 * step, the path generation takes (on CUDA only the argmax crosses to the
 * host, as in a real greedy decode). Each test runs
 * once untimed (warm-up: the driver's JIT, caches), then r timed times;
 * the table shows mean +- standard deviation of tokens per second, and for
 * decode the weight bytes read per second (file size x t/s).
 * --contend N and --batch B1,B2,... measure other things: see
 * bench_contend.c and bench_batch.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench_batch.h"
#include "cli/bench_contend.h"
#include "cli/cli.h"
#include "engine/engine.h"
#include "util/clock.h"
#include "util/log.h"

/* The CUDA measurement switches bench takes as flags (--NAME), in the
 * order they are handed to the backend (backend.h's `switches`). */
static const char *const k_switches[] = {
    "no-graphs",    "one-stream",   "no-batch",     "pieces-of-4", "tiled-attn",
    "split-attn",   "scalar-attn",  "vec-attn",     "prompt-gemv", "prompt-gemm",
    "batch-rows-4", "batch-rows-8", "batch-rows-16"};
#define N_SWITCHES (sizeof k_switches / sizeof k_switches[0])

/* Bit of switch `name` in bench_args.switch_set, or 0 for no such switch. */
static unsigned switch_bit(const char *name) {
    for (size_t i = 0; i < N_SWITCHES; i++)
        if (!strcmp(name, k_switches[i]))
            return 1u << i;
    return 0;
}

typedef struct bench_args {
    const char *model;
    int pp, tg, reps, json, depth, contend, pp_given;
    unsigned switch_set;          /* switch_bit of each switch given */
    char switches[160];           /* what bo.switches points into */
    int batch[32], n_batch_sizes; /* --batch */
    m40_backend_options bo;       /* the backend flags (cli.h); n_ctx and n_batch 0: derived */
} bench_args;

/* "1,2,4,8": at most 32 sizes of 1..M40_BENCH_MAX_BATCH. */
static int parse_sizes(bench_args *a, const char *v) {
    a->n_batch_sizes = 0;
    for (const char *p = v; *p;) {
        char *end;
        long n = strtol(p, &end, 10);
        if (end == p || n < 1 || n > M40_BENCH_MAX_BATCH || a->n_batch_sizes == 32 ||
            (*end && *end != ',')) {
            m40_cli_error("bench: --batch takes up to 32 sizes of 1..%d, like 1,2,4,8, not \"%s\"",
                          M40_BENCH_MAX_BATCH, v);
            return -1;
        }
        a->batch[a->n_batch_sizes++] = (int)n;
        p = *end ? end + 1 : end;
    }
    if (a->n_batch_sizes == 0) {
        m40_cli_error("bench: --batch needs sizes, like 1,2,4,8");
        return -1;
    }
    return 0;
}

void m40_cli_bench_tokens(int32_t *toks, int n, int n_vocab, uint32_t seed) {
    uint32_t x = seed;
    for (int i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        toks[i] = (int32_t)(x % (uint32_t)n_vocab);
    }
}

/* Context already in the cache when pp or tg starts (-d): filled untimed,
 * once (the tests write only positions past it). */
static int g_depth, g_filled;

/* Begins a sequence on slot 0 with the -d context in its cache. */
static int begin_at_depth(m40_engine *e, const int32_t *toks, m40_engine_seq **s, m40_err *err) {
    int32_t next;
    if (m40_engine_seq_begin(e, 0, s, err))
        return -1;
    if (g_depth > 0 && !g_filled) {
        if (m40_engine_seq_step(*s, toks, g_depth, 0, &next, err)) {
            m40_engine_seq_end(*s);
            return -1;
        }
        g_filled = 1;
    }
    return 0;
}

static int run_pp(m40_engine *e, const int32_t *toks, int n, double *secs, m40_err *err) {
    int32_t next;
    m40_engine_seq *s;
    if (begin_at_depth(e, toks, &s, err))
        return -1;
    double t0 = m40_clock_s();
    int rc = m40_engine_seq_step(s, toks, n, g_depth, &next, err);
    *secs = m40_clock_s() - t0;
    m40_engine_seq_end(s);
    return rc;
}

static int run_tg(m40_engine *e, const int32_t *toks, int n, double *secs, m40_err *err) {
    int32_t next, tok = toks[0];
    m40_engine_seq *s;
    if (begin_at_depth(e, toks, &s, err))
        return -1;
    int rc = 0;
    double t0 = m40_clock_s();
    for (int i = 0; rc == 0 && i < n; i++) {
        rc = m40_engine_seq_step(s, &tok, 1, g_depth + i, &next, err);
        tok = next;
    }
    *secs = m40_clock_s() - t0;
    m40_engine_seq_end(s);
    return rc;
}

typedef int (*bench_fn)(m40_engine *, const int32_t *, int, double *, m40_err *);

/* Runs a test reps+1 times (the first is warm-up); mean and sd of t/s. */
static int measure(m40_engine *e, bench_fn fn, const int32_t *toks, int n, int reps, double *mean,
                   double *sd, m40_err *err) {
    double sum = 0.0, sq = 0.0, secs;
    if (fn(e, toks, n, &secs, err))
        return -1;
    for (int r = 0; r < reps; r++) {
        if (fn(e, toks, n, &secs, err))
            return -1;
        double tps = n / secs;
        sum += tps;
        sq += tps * tps;
    }
    *mean = sum / reps;
    *sd = reps > 1 ? sqrt(fmax(0.0, (sq - sum * sum / reps) / (reps - 1))) : 0.0;
    return 0;
}

static int parse(bench_args *a, int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            printf("usage: m40-llm bench -m MODEL [-p 512] [-n 128] [-d 0] [-r 3] [options]\n"
                   "  -p N         prompt tokens (pp test; 0: none)\n"
                   "  -n N         tokens decoded (tg test; 0: none)\n"
                   "  -d N         pp and tg after N tokens of context (filled once, untimed)\n"
                   "  -r N         timed repetitions (after one warm-up run)\n"
                   "  --json       one JSON object per test\n"
                   "  --no-graphs  CUDA: launch each kernel of a decode step (no CUDA graph)\n"
                   "  --one-stream CUDA: decode steps share the prefill stream\n"
                   "  --no-batch   CUDA: decode rows of several sequences run one at a time\n"
                   "  --pieces-of-4  CUDA: batched mat-vecs take at most 4 inputs a launch\n"
                   "  --tiled-attn CUDA: every prompt chunk's attention per tile of queries\n"
                   "  --split-attn CUDA: no prompt chunk's attention per tile of queries\n"
                   "  --vec-attn   CUDA: the split attention kernel's 8-elements-a-load form\n"
                   "  --scalar-attn CUDA: never that form (the per-element kernel)\n"
                   "  --prompt-gemv CUDA: every prompt chunk's products by the batched mat-vec\n"
                   "  --prompt-gemm CUDA: every prompt chunk's by dequantize + GEMM\n"
                   "  --batch-rows-4, --batch-rows-8, --batch-rows-16  CUDA: rows a block\n"
                   "               of the repacked batched mat-vecs (default: by the GPU's SM\n"
                   "               count; 16: two groups of 8 sharing x, not yet timed)\n"
                   "  --contend N  decode latency of one request while another prefills N\n"
                   "               tokens (two slots; -n: decode steps timed alone)\n"
                   "  --batch B1,B2,...  (-npl) aggregate prompt and decode t/s of B sequences\n"
                   "               at once, each from its own thread, -p (default 128 here)\n"
                   "               and -n tokens each (llama-batched-bench; -npp, -ntg "
                   "too)\n" M40_CLI_BACKEND_HELP
                   "  (-c defaults to what the test needs, -b to -p, or 512)\n");
            return 1;
        } else if (!strcmp(f, "--json")) {
            a->json = 1;
            continue;
        } else if (!strncmp(f, "--", 2) && switch_bit(f + 2)) {
            a->switch_set |= switch_bit(f + 2);
            continue;
        }
        if (!v) {
            m40_cli_error("bench: %s needs a value", f);
            return -1;
        }
        i++;
        int r = m40_cli_backend_flag(&a->bo, f, v);
        if (r < 0)
            return -1;
        if (r > 0)
            continue;
        if (!strcmp(f, "-m") || !strcmp(f, "--model"))
            a->model = m40_cli_resolve_model(v);
        else if (!strcmp(f, "-p") || !strcmp(f, "--n-prompt") || !strcmp(f, "-npp")) {
            if (m40_cli_parse_int(f, v, &a->pp))
                return -1;
            a->pp_given = 1;
        } else if (!strcmp(f, "--batch") || !strcmp(f, "-npl")) {
            if (parse_sizes(a, v))
                return -1;
        } else if (!strcmp(f, "-n") || !strcmp(f, "--n-gen") || !strcmp(f, "-ntg")) {
            if (m40_cli_parse_int(f, v, &a->tg))
                return -1;
        } else if (!strcmp(f, "-r") || !strcmp(f, "--repetitions")) {
            if (m40_cli_parse_int(f, v, &a->reps) || a->reps < 1) {
                m40_cli_error("bench: -r must be at least 1");
                return -1;
            }
        } else if (!strcmp(f, "-d") || !strcmp(f, "--depth")) {
            if (m40_cli_parse_int(f, v, &a->depth) || a->depth < 0) {
                m40_cli_error("bench: -d must be 0 or more");
                return -1;
            }
        } else if (!strcmp(f, "--contend")) {
            if (m40_cli_parse_int(f, v, &a->contend) || a->contend < 32) {
                m40_cli_error("bench: --contend needs a prompt of at least 32 tokens");
                return -1;
            }
        } else {
            m40_cli_error("bench: unknown option \"%s\"", f);
            return -1;
        }
    }
    if (!a->model) {
        m40_cli_error("bench: -m MODEL is required");
        return -1;
    }
    if ((a->switch_set & switch_bit("prompt-gemv")) &&
        (a->switch_set & switch_bit("prompt-gemm"))) {
        m40_cli_error("bench: --prompt-gemv and --prompt-gemm exclude each other");
        return -1;
    }
    const unsigned rows_set =
        a->switch_set &
        (switch_bit("batch-rows-4") | switch_bit("batch-rows-8") | switch_bit("batch-rows-16"));
    if (rows_set & (rows_set - 1)) { /* more than one bit */
        m40_cli_error(
            "bench: --batch-rows-4, --batch-rows-8 and --batch-rows-16 exclude each other");
        return -1;
    }
    /* the CUDA measurement switches (backend.h) */
    size_t len = 0;
    for (size_t i = 0; i < N_SWITCHES && len < sizeof a->switches; i++)
        if (a->switch_set & (1u << i))
            len +=
                (size_t)snprintf(a->switches + len, sizeof a->switches - len, ",%s", k_switches[i]);
    a->bo.switches = a->switches[0] ? a->switches + 1 : NULL;
    return 0;
}

/* What bench reports besides speed: load time and, on CUDA, the VRAM taken
 * and the device's copy bandwidth (0 when not measured). */
typedef struct bench_env {
    double load_s, copy_gbps;
    m40_backend_memory mem;
} bench_env;

static void print_row(const bench_args *a, const m40_model *m, const m40_backend *be,
                      const bench_env *env, const char *test, double mean, double sd, int decode) {
    double gib = (double)m->file_bytes / (1024.0 * 1024.0 * 1024.0);
    /* the bytes a token reads: a mixture of experts reads k of its experts */
    double bw = decode ? (double)m40_model_active_bytes(m) * mean / 1e9 : 0.0;
    double share = env->copy_gbps > 0.0 ? 100.0 * bw / env->copy_gbps : 0.0;
    if (a->json) {
        printf("{\"model\": \"%s\", \"size_bytes\": %llu, \"params\": %llu, \"backend\": \"%s\", "
               "\"device\": \"%s\", \"test\": \"%s\", \"tps_mean\": %.3f, \"tps_sd\": %.3f, "
               "\"decode_gb_per_s\": %.1f, \"copy_gb_per_s\": %.1f, \"copy_share_pct\": %.1f, "
               "\"load_s\": %.3f, \"vram_weights_bytes\": %zu, \"vram_kv_bytes\": %zu, "
               "\"vram_scratch_bytes\": %zu}\n",
               a->model, (unsigned long long)m->file_bytes, (unsigned long long)m->n_params,
               m40_backend_name(be), m40_backend_describe(be), test, mean, sd, bw, env->copy_gbps,
               share, env->load_s, env->mem.weights, env->mem.kv, env->mem.scratch);
        return;
    }
    printf("| %-28.28s | %8.2f GiB | %7.2f B | %-5s | %-13s | %10.2f +- %-7.2f |", a->model, gib,
           (double)m->n_params / 1e9, m40_backend_name(be), test, mean, sd);
    if (decode && share > 0.0)
        printf(" %7.1f GB/s (%3.0f%%) |", bw, share);
    else if (decode)
        printf(" %7.1f GB/s        |", bw);
    else
        printf(" %19s |", "");
    printf("\n");
}

static int run_contend(const bench_args *a) {
    m40_contend_args c = {.model = a->model,
                          .prompt = a->contend,
                          .decode = a->tg > 0 ? a->tg : 64,
                          .json = a->json,
                          .backend = a->bo};
    if (c.backend.n_batch <= 0)
        c.backend.n_batch = 512;
    return m40_bench_contend(&c);
}

static int run_batch(const bench_args *a) {
    m40_batch_args b = {.model = a->model,
                        .n_sizes = a->n_batch_sizes,
                        .n_prompt = a->pp_given ? a->pp : 128,
                        .n_gen = a->tg,
                        .reps = a->reps,
                        .json = a->json,
                        .backend = a->bo};
    memcpy(b.sizes, a->batch, sizeof b.sizes);
    if (b.n_prompt < 1 || b.n_gen < 1) {
        m40_cli_error("bench: --batch needs -p and -n of at least 1");
        return M40_EXIT_USAGE;
    }
    if (b.backend.n_batch <= 0)
        b.backend.n_batch = 512;
    return m40_bench_batch(&b);
}

static void print_header(m40_backend *be, const bench_env *env) {
    printf("device: %s (load %.2f s)\n", m40_backend_describe(be), env->load_s);
    if (env->copy_gbps > 0.0)
        printf("VRAM: weights %.0f MiB, KV %.0f MiB, scratch %.0f MiB; device copy bandwidth "
               "%.0f GB/s (decode rows: weights read per second, share of that)\n",
               env->mem.weights / 1048576.0, env->mem.kv / 1048576.0, env->mem.scratch / 1048576.0,
               env->copy_gbps);
    printf("| %-28s | %12s | %9s | %-5s | %-13s | %21s | %19s |\n", "model", "size", "params",
           "bknd", "test", "t/s", "weights read");
    printf("|------------------------------|--------------|-----------|-------|---------------|---"
           "--------------------|---------------------|\n");
}

/* The pp and tg rows on an open engine. */
static int run_tests(const bench_args *a, m40_engine *e, const bench_env *env, m40_err *err) {
    const m40_model *m = m40_engine_model(e);
    m40_backend *be = m40_engine_backend(e);
    int n_max = a->pp > a->tg ? a->pp : a->tg;
    int n_toks = n_max > a->depth ? n_max : a->depth;
    int32_t *toks = malloc((size_t)(n_toks > 0 ? n_toks : 1) * sizeof *toks);
    if (!toks)
        return m40_errf(err, "out of memory");
    m40_cli_bench_tokens(toks, n_toks, m->cfg.n_vocab, 12345);
    if (!a->json)
        print_header(be, env);
    g_depth = a->depth;
    g_filled = 0;
    double mean, sd;
    char test[32];
    int rc = 0;
    if (a->pp > 0 && (rc = measure(e, run_pp, toks, a->pp, a->reps, &mean, &sd, err)) == 0) {
        if (a->depth > 0)
            snprintf(test, sizeof test, "pp%d@d%d", a->pp, a->depth);
        else
            snprintf(test, sizeof test, "pp%d", a->pp);
        print_row(a, m, be, env, test, mean, sd, 0);
    }
    if (rc == 0 && a->tg > 0 &&
        (rc = measure(e, run_tg, toks, a->tg, a->reps, &mean, &sd, err)) == 0) {
        if (a->depth > 0)
            snprintf(test, sizeof test, "tg%d@d%d", a->tg, a->depth);
        else
            snprintf(test, sizeof test, "tg%d", a->tg);
        print_row(a, m, be, env, test, mean, sd, 1);
    }
    free(toks);
    return rc;
}

int m40_cmd_bench(int argc, char **argv) {
    bench_args a = {.pp = 512, .tg = 128, .reps = 3, .bo = {.device = M40_DEVICE_AUTO, .gpu = -1}};
    int r = parse(&a, argc, argv);
    if (r)
        return r > 0 ? M40_EXIT_OK : M40_EXIT_USAGE;
    m40_log_set_level(M40_LOG_WARN);
    if (a.contend > 0)
        return run_contend(&a);
    if (a.n_batch_sizes > 0)
        return run_batch(&a);
    int n_max = a.pp > a.tg ? a.pp : a.tg;
    m40_engine_options eo = {.model_path = a.model, .backend = a.bo};
    eo.backend.n_slots = 1;
    if (eo.backend.n_ctx <= 0)
        eo.backend.n_ctx = a.depth + (n_max > 0 ? n_max : 1) + 1;
    if (eo.backend.n_batch <= 0) /* -d fills its context in prefill chunks */
        eo.backend.n_batch = a.pp > 0 ? a.pp : a.depth > 0 ? 512 : 1;
    m40_cli_progress progress;
    m40_cli_progress_attach(&progress, &eo.backend);
    m40_err err = {0};
    m40_engine *e;
    char notice[640];
    double t_load = m40_clock_s();
    if (m40_engine_open(&e, &eo, notice, sizeof notice, &err)) {
        m40_cli_error("%s", err.msg);
        return M40_EXIT_FAIL;
    }
    bench_env env = {.load_s = m40_clock_s() - t_load};
    if (notice[0])
        fprintf(stderr, "m40-llm: %s\n", notice);
    m40_backend *be = m40_engine_backend(e);
    env.mem = m40_backend_memory_used(be);
    int rc = m40_backend_copy_bandwidth(be, &env.copy_gbps, &err) || run_tests(&a, e, &env, &err);
    if (rc)
        m40_cli_error("%s", err.msg);
    m40_engine_close(e);
    return rc ? M40_EXIT_FAIL : M40_EXIT_OK;
}
