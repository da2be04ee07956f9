/* models_dir.c - model names: `-m NAME` found in a models folder, and
 * `m40-llm list`, what that folder holds (issue 20).
 *
 * The folder is $M40LLM_MODELS, else ~/.cache/m40-llm/models. `-m X`
 * takes X as a path when a file is there, else looks for X and X.gguf in
 * the folder; `list` shows each .gguf there with its size, architecture,
 * main weight type and whether it fits a GPU's free memory.
 *
 * Owns: the lookup and the listing. Touches: the file system, stdout.
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "cli/cli.h"
#include "gguf/gguf.h"
#include "quant/ggml_types.h"

const char *m40_cli_models_dir(char *buf, size_t cap) {
    const char *env = getenv("M40LLM_MODELS");
    if (env && *env) {
        snprintf(buf, cap, "%s", env);
        return buf;
    }
    const char *home = getenv("HOME");
    int n = snprintf(buf, cap, "%s/.cache/m40-llm/models", home && *home ? home : ".");
    return n > 0 && (size_t)n < cap ? buf : NULL;
}

const char *m40_cli_resolve_model(const char *arg) {
    static char buf[PATH_MAX * 2];
    const size_t cap = sizeof buf;
    if (!arg || access(arg, F_OK) == 0)
        return arg;
    char dir[PATH_MAX];
    if (strchr(arg, '/') || !m40_cli_models_dir(dir, sizeof dir))
        return arg;
    static const char *const suffixes[] = {"", ".gguf"};
    for (size_t i = 0; i < 2; i++) {
        int n = snprintf(buf, cap, "%s/%s%s", dir, arg, suffixes[i]);
        if (n > 0 && (size_t)n < cap && access(buf, F_OK) == 0)
            return buf;
    }
    return arg; /* not a name here either: the load says the file is missing */
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int m40_cmd_list(int argc, char **argv) {
    if (argc > 0 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
        printf("usage: m40-llm list\n"
               "the models in $M40LLM_MODELS (else ~/.cache/m40-llm/models): name (for -m),\n"
               "size, architecture, main weight type, and whether it fits a GPU's free memory\n");
        return M40_EXIT_OK;
    }
    if (argc > 0) {
        m40_cli_error("list: unknown option \"%s\"", argv[0]);
        return M40_EXIT_USAGE;
    }
    char dir[PATH_MAX];
    DIR *d = m40_cli_models_dir(dir, sizeof dir) ? opendir(dir) : NULL;
    if (!d) {
        printf("no models folder at %s (set M40LLM_MODELS or put .gguf files there)\n", dir);
        return M40_EXIT_OK;
    }
    char *names[1024];
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < sizeof names / sizeof names[0];) {
        size_t len = strlen(e->d_name);
        if (len > 5 && !strcmp(e->d_name + len - 5, ".gguf") && (names[n] = strdup(e->d_name)))
            n++;
    }
    closedir(d);
    qsort(names, n, sizeof names[0], by_name);
    m40_gpu_report gpus;
    m40_err err = {0};
    int have_gpu = m40_backend_probe_gpus(-1, &gpus, &err) == 0 && gpus.n_gpus > 0;
    printf("%-40s %9s  %-10s %-8s %s\n", "NAME", "SIZE", "ARCH", "TYPE", "GPU");
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX * 2], name[256];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        snprintf(name, sizeof name, "%.*s", (int)(strlen(names[i]) - 5), names[i]);
        m40_gguf *g = NULL;
        if (m40_gguf_open(&g, path, &err)) {
            printf("%-40s %9s  unreadable: %s\n", name, "-", err.msg);
            free(names[i]);
            continue;
        }
        m40_gguf_str arch = {"?", 1};
        if (m40_gguf_find_kv(g, "general.architecture") >= 0)
            m40_gguf_get_str(g, "general.architecture", &arch, NULL);
        uint64_t bytes = m40_gguf_file_size(g);
        const char *fits = "-";
        if (have_gpu) /* the weights and a margin for a short context */
            fits = (double)bytes * 1.1 < (double)gpus.gpus[gpus.selected].vram_free ? "fits"
                                                                                    : "too big";
        printf("%-40s %7.2f G  %-10.*s %-8s %s\n", name, (double)bytes / (1u << 30),
               (int)(arch.len > 10 ? 10 : arch.len), arch.ptr,
               m40_ggml_type_name(m40_gguf_main_type(g)), fits);
        m40_gguf_close(g);
        free(names[i]);
    }
    if (!n)
        printf("(no .gguf files in %s)\n", dir);
    return M40_EXIT_OK;
}
