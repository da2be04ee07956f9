/* cmd_perplexity.c - `m40-llm perplexity`: how well a model predicts a
 * text, as llama-perplexity measures it (engine/perplexity.h).
 *
 *   m40-llm perplexity -m GGUF -f TEXT [-c N] [--chunks N] [backend flags]
 *
 * Prints the running estimate after each window, "[1]12.3456,[2]...", then
 * "Final estimate: PPL = X +/- Y" (llama-perplexity's lines, so results
 * can be compared with the same -c on the same file). -c is the window
 * (default 512, llama-perplexity's usual); the text needs 2 windows.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "engine/perplexity.h"
#include "util/log.h"

#define PPL_DEFAULT_CTX 512

typedef struct ppl_args {
    const char *model, *file;
    int chunks;
    m40_engine_options eo;
} ppl_args;

static void ppl_usage(FILE *out) {
    fprintf(out, "usage: m40-llm perplexity -m GGUF -f TEXT [options]\n"
                 "  -m, --model GGUF   the model (default: the default model)\n"
                 "  -f, --file TEXT    the text to score (UTF-8)\n"
                 "  --chunks N         score at most N windows (default: all)\n"
                 "  (-c sets the window; default 512)\n" M40_CLI_BACKEND_HELP);
}

/* 0: parsed, 1: --help given, -1: bad usage (printed). */
static int parse_args(ppl_args *a, int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = v ? m40_cli_backend_flag(&a->eo.backend, s, v) : 0;
        if (r < 0)
            return -1;
        if (r > 0) {
            i++;
        } else if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            ppl_usage(stdout);
            return 1;
        } else if ((!strcmp(s, "-m") || !strcmp(s, "--model")) && v) {
            a->model = m40_cli_resolve_model(argv[++i]);
        } else if ((!strcmp(s, "-f") || !strcmp(s, "--file")) && v) {
            a->file = argv[++i];
        } else if (!strcmp(s, "--chunks") && v) {
            if (m40_cli_parse_int("--chunks", argv[++i], &a->chunks))
                return -1;
        } else {
            m40_cli_error("perplexity: unknown or incomplete option \"%s\"", s);
            ppl_usage(stderr);
            return -1;
        }
    }
    if (!a->file) {
        m40_cli_error("perplexity: give the text with -f FILE");
        return -1;
    }
    return 0;
}

static int print_progress(void *user, int32_t window, double ppl) {
    (void)user;
    printf("[%d]%.4f,", window, ppl);
    fflush(stdout);
    return 0;
}

static int run(ppl_args *a) {
    char defbuf[PATH_MAX];
    if (!a->model && !(a->model = m40_cli_default_model(defbuf, sizeof defbuf))) {
        m40_cli_error("no -m given and the default model (%s) is missing: run "
                      "scripts/get-default-model.sh",
                      M40_CLI_DEFAULT_MODEL);
        return M40_EXIT_FAIL;
    }
    size_t len = 0;
    char *text = m40_cli_read_file(a->file, &len);
    if (!text)
        return M40_EXIT_FAIL;
    m40_log_set_level(M40_LOG_WARN);
    a->eo.model_path = a->model;
    m40_cli_progress progress;
    m40_cli_progress_attach(&progress, &a->eo.backend);
    char notice[640];
    m40_engine *e = NULL;
    m40_tokens ids = {0};
    m40_perplexity res;
    m40_err err = {0};
    int rc = m40_engine_open(&e, &a->eo, notice, sizeof notice, &err);
    if (rc == 0 && notice[0])
        fprintf(stderr, "m40-llm: %s\n", notice);
    if (rc == 0)
        rc = m40_tokenize(m40_engine_tokenizer(e), text, len, M40_TOKENIZE_ADD_SPECIAL, &ids, &err);
    free(text);
    int32_t n_ctx = rc == 0 ? m40_engine_n_ctx(e) : 0;
    if (rc == 0) {
        printf("perplexity: %zu tokens, windows of %d, %s\n", ids.n, n_ctx,
               m40_backend_describe(m40_engine_backend(e)));
        fflush(stdout);
        rc = m40_perplexity_run(e, ids.ids, ids.n, n_ctx, a->chunks, print_progress, NULL, &res,
                                &err);
    }
    if (rc == 0)
        printf("\nFinal estimate: PPL = %.4f +/- %.5f (%d windows, %lld tokens scored)\n", res.ppl,
               res.ppl_err, res.n_windows, (long long)res.n_scored);
    else
        m40_cli_error("%s", err.msg);
    m40_tokens_free(&ids);
    m40_engine_close(e);
    return rc ? M40_EXIT_FAIL : M40_EXIT_OK;
}

int m40_cmd_perplexity(int argc, char **argv) {
    ppl_args a;
    memset(&a, 0, sizeof a);
    a.eo.backend.device = M40_DEVICE_AUTO;
    a.eo.backend.gpu = -1;
    a.eo.backend.n_ctx = PPL_DEFAULT_CTX;
    int r = parse_args(&a, argc, argv);
    if (r != 0)
        return r > 0 ? M40_EXIT_OK : M40_EXIT_USAGE;
    return run(&a);
}
