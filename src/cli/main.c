/* main.c - the m40-llm command line: dispatches to one subcommand. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buildinfo.h"
#include "cli/cli.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command k_commands[] = {
    {"generate", m40_cmd_generate, "generate text from a prompt (streams to stdout)"},
    {"chat", m40_cmd_chat, "chat with a model in the terminal (its chat template, history)"},
    {"info", m40_cmd_info, "build facts, CUDA devices and cuBLAS status; a model's facts"},
    {"bench", m40_cmd_bench, "prefill and decode speed (like llama-bench)"},
    {"synth", m40_cmd_synth, "write a random-weight model of a named shape (GGUF)"},
    {"tokenize", m40_cmd_tokenize, "text -> token ids (llama-tokenize), or run a tokenizer suite"},
    {"chat-template", m40_cmd_chat_template, "render messages with a chat template"},
    {"serve", m40_cmd_serve, "HTTP server: /generate, OpenAI /v1/completions and chat"},
    {"perplexity", m40_cmd_perplexity, "how well a model predicts a text (llama-perplexity)"},
    {"list", m40_cmd_list, "the models in the models folder (-m takes their names)"},
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
