/* main.c - the m40-llm command line: dispatches to one subcommand. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buildinfo.h"
#include "cli/cli.h"
#include "util/file.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command k_commands[] = {
    {"generate", m40_cmd_generate, "generate text from a prompt (streams to stdout)"},
    {"info", m40_cmd_info, "build facts, CUDA devices and cuBLAS status; a model's facts"},
    {"bench", m40_cmd_bench, "prefill and decode speed (like llama-bench)"},
    {"synth", m40_cmd_synth, "write a random-weight model of a named shape (GGUF)"},
    {"tokenize", m40_cmd_tokenize, "text -> token ids (llama-tokenize), or run a tokenizer suite"},
    {"chat-template", m40_cmd_chat_template, "render messages with a chat template"},
    {"serve", m40_cmd_serve, "HTTP server: /generate, OpenAI /v1/completions and chat"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: m40-llm <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
        fprintf(out, "  %-10s %s\n", k_commands[i].name, k_commands[i].summary);
    fprintf(out, "\n'm40-llm <command> --help' describes a command's options.\n"
                 "Environment: M40LLM_LOG=error|warn|info|debug, "
                 "M40LLM_ENABLE_CUBLAS=0|1.\n");
}

void m40_cli_error(const char *fmt, ...) {
    fputs("m40-llm: ", stderr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

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
    if (!strcmp(value, "f16")) {
        *out = M40_KV_F16;
        return 0;
    }
    if (!strcmp(value, "f32")) {
        *out = M40_KV_F32;
        return 0;
    }
    m40_cli_error("--cache-type must be f16 or f32, not \"%s\"", value);
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

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return M40_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        usage(stdout);
        return M40_EXIT_OK;
    }
    if (!strcmp(name, "--version")) {
        printf("m40-llm %s (git %s)\n", m40_version, m40_git_hash);
        return M40_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++) {
        if (!strcmp(name, k_commands[i].name))
            return k_commands[i].run(argc - 2, argv + 2);
    }
    m40_cli_error("unknown command \"%s\" (try m40-llm --help)", name);
    return M40_EXIT_USAGE;
}
