/* gen_args.h - the flags `generate` and `chat` share (cmd_generate.c
 * parses them): the model, the backend, sampling, stops, grammars. */
#ifndef M40_CLI_GEN_ARGS_H
#define M40_CLI_GEN_ARGS_H

#include <stdint.h>

#include "engine/engine.h"

#define MAX_STOPS  16
#define MAX_BIASES 64

typedef struct gen_args {
    const char *model, *prompt, *prompt_file, *system;
    const char *grammar, *grammar_file, *json_schema, *json_schema_file; /* at most one */
    char *prompt_buf;   /* --prompt-file contents (owned) */
    char *template_buf; /* --chat-template-file contents (owned; eo.chat_template) */
    m40_engine_options eo;
    m40_gen_params gp;
    const char *stops[MAX_STOPS];
    m40_logit_bias biases[MAX_BIASES];
    int chat, seed_given, verbose;
} gen_args;

/* Defaults (llama.cpp's sampling, the device auto). */
void m40_gen_args_init(gen_args *a);

/* Frees what parsing read from files. */
void m40_gen_args_free(gen_args *a);

/* Parses argv into a; `cmd` names the command in messages ("generate",
 * "chat"). 0 done, 1 --help printed, -1 a bad flag (reported). */
int m40_gen_args_parse(gen_args *a, int argc, char **argv, const char *cmd);

/* The grammar of --grammar, --grammar-file, --json-schema or
 * --json-schema-file (*out NULL and 0 when none is given); -1 reported. */
int m40_gen_args_grammar(const gen_args *a, m40_grammar **out);

/* The model to load: -m, else the default model (NULL, reported, when it
 * is missing); buf holds the default's path. */
const char *m40_gen_args_model(gen_args *a, char *buf, size_t cap);

/* A seed from the clock and pid, for runs without --seed. */
/* Appends {"role": role, "content": content} to a messages array; -1 when
 * out of memory (nothing appended). */
struct cJSON;
int m40_cli_add_message(struct cJSON *msgs, const char *role, const char *content);

uint64_t m40_gen_random_seed(void);

#endif /* M40_CLI_GEN_ARGS_H */
