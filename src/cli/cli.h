/* cli.h - the m40-llm subcommands.
 *
 * Each subcommand is one file (cmd_<name>.c) with one entry point that takes
 * the arguments after its name and returns the process exit status. Errors
 * are printed here, at the edge, as one line on stderr: "m40-llm: <why>".
 *
 * Owns: argument parsing and terminal output. Touches: libm40 through its
 * headers only.
 */
#ifndef M40_CLI_CLI_H
#define M40_CLI_CLI_H

#include "backend/backend.h"

#include <stddef.h>
#include <stdint.h>

/* Exit statuses: 0 success, 1 the command failed, 2 bad usage. */
enum { M40_EXIT_OK = 0, M40_EXIT_FAIL = 1, M40_EXIT_USAGE = 2 };

int m40_cmd_info(int argc, char **argv);
int m40_cmd_synth(int argc, char **argv);
int m40_cmd_generate(int argc, char **argv);
int m40_cmd_chat(int argc, char **argv);
int m40_cmd_bench(int argc, char **argv);
int m40_cmd_tokenize(int argc, char **argv);
int m40_cmd_chat_template(int argc, char **argv);
int m40_cmd_serve(int argc, char **argv);
int m40_cmd_list(int argc, char **argv);
int m40_cmd_perplexity(int argc, char **argv);

/* Prints "m40-llm: <message>" on stderr. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
void m40_cli_error(const char *fmt, ...);

/* Reads a whole file (util/file.h) into a NUL-terminated malloc'd buffer;
 * NULL, after printing why, when it cannot. len may be NULL. */
char *m40_cli_read_file(const char *path, size_t *len);

/* Fills toks[n] with token ids spread over the vocabulary, the same for a
 * seed every run: bench's prompts (cmd_bench.c, bench_contend.c). */
void m40_cli_bench_tokens(int32_t *toks, int n, int n_vocab, uint32_t seed);

/* ---- flags.c ------------------------------------------------------------- */

/* The backend flags of every command that runs a model, parsed by one
 * function. Returns 1 when `flag` is one of them (its value is consumed
 * into o), 0 when it is not, -1 on a bad value (the error printed). */
int m40_cli_backend_flag(m40_backend_options *o, const char *flag, const char *value);
/* "f16", or "K q8_0, V f16" when the two differ: the cache's types. */
void m40_cli_kv_label(const m40_backend_options *o, char *buf, size_t cap);
/* Their lines of --help. */
#define M40_CLI_BACKEND_HELP                                                            \
    "  --device auto|cpu|cuda  where to run (default auto: CUDA when usable)\n"         \
    "  --gpu N                 CUDA device ordinal (default: a Tesla M40, else the "    \
    "first)\n"                                                                          \
    "  -c, --ctx-size N        context length (default: min(trained, 4096); 0: the\n"   \
    "                          trained context, on CUDA as much of it as fits)\n"       \
    "  -b, --batch-size N      most prompt tokens per forward (default 512)\n"          \
    "  --cache-type T          KV cache type of keys and values: f16 (default), f32,\n" \
    "                          q8_0, q4_0 (on CUDA one type for keys and values)\n"     \
    "  -ctk, --cache-type-k T  the keys' type; -ctv, --cache-type-v T: the values'\n"   \
    "  -t, --threads N         CPU threads (default: all)\n"

/* Load progress on stderr, for loads of 256 MiB of weights or more: a bar
 * redrawn in place on a terminal, a line each quarter otherwise. Attach it
 * to the options before the engine or backend is created; it must outlive
 * the creation. */
typedef struct m40_cli_progress {
    int tty;   /* stderr is a terminal */
    int last;  /* percent at the last report */
    double t0; /* when loading started */
} m40_cli_progress;
void m40_cli_progress_attach(m40_cli_progress *p, m40_backend_options *o);
void m40_cli_progress_draw(void *user, uint64_t done, uint64_t total);

/* Parses --device's value (auto, cpu, cuda); prints the error and returns
 * -1 for anything else. */
int m40_cli_parse_device(const char *value, m40_device_kind *out);
/* A --cache-type / -k / -v value: f16, f32, q8_0, q4_0 (llama.cpp's names). */
int m40_cli_parse_kv_type(const char *value, m40_kv_type *out);

/* Parses a non-negative int flag value; returns -1 (after printing an error
 * naming the flag) when it is not one. */
int m40_cli_parse_int(const char *flag, const char *value, int *out);

/* The default model (scripts/get-default-model.sh puts it there). */
#define M40_CLI_DEFAULT_MODEL "models/SmolLM2-135M-Instruct.Q4_1.gguf"

/* M40_CLI_DEFAULT_MODEL under the current directory or under any parent of
 * the binary's directory (a build tree inside the checkout): the path
 * (maybe in buf), or NULL when it is nowhere. */
const char *m40_cli_default_model(char *buf, size_t cap);

/* The models folder: $M40LLM_MODELS, else ~/.cache/m40-llm/models (in buf). */
const char *m40_cli_models_dir(char *buf, size_t cap);
/* `-m`'s value as a file: arg itself when a file is there (or it has a
 * '/'), else NAME or NAME.gguf in the models folder, else arg (the load
 * then says what is missing). The path may live in a static buffer: one
 * model per command. */
const char *m40_cli_resolve_model(const char *arg);

#endif /* M40_CLI_CLI_H */
