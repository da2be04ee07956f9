/* cmd_generate.c - `m40-llm generate`: text from a prompt, streamed.
 *
 *   m40-llm generate [-m MODEL] (-p PROMPT | --prompt-file F) [-n N] [options]
 *
 * The continuation streams to stdout as it is decoded; a timing summary goes
 * to stderr. Sampling flags follow llama.cpp's names and defaults
 * (--temperature 0 is greedy). With -m omitted the default model is used
 * (scripts/get-default-model.sh puts it in models/).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/gen_args.h"
#include "engine/engine.h"
#include "grammar/json_schema.h"
#include "util/file.h"
#include "util/log.h"

static void generate_usage(FILE *out, const char *cmd) {
    if (!strcmp(cmd, "chat"))
        fprintf(out, "usage: m40-llm chat [-m MODEL] [--system TEXT] [options]\n"
                     "  an interactive chat with the model's template: type a message, Enter\n"
                     "  sends it; /reset starts over, /system TEXT sets the system prompt\n"
                     "  (and starts over), /exit or Ctrl-D quits, Ctrl-C stops a reply\n"
                     "  -m, --model FILE        GGUF model or a name in the models folder\n"
                     "  --system TEXT           a system message first\n");
    else
        fprintf(out, "usage: m40-llm generate [-m MODEL] (-p PROMPT | --prompt-file FILE) "
                     "[options]\n"
                     "  -m, --model FILE        GGUF model (default: " M40_CLI_DEFAULT_MODEL ")\n"
                     "  -p, --prompt TEXT       the prompt\n"
                     "  --prompt-file FILE      read the prompt from a file\n");
    fprintf(out,
            "  --chat-template-file F  a Jinja chat template instead of the model's\n"
            "  -n, --n-predict N       tokens to generate (default 128; -1: until the context "
            "is full)\n" M40_CLI_BACKEND_HELP "  --temperature, --temp X 0 = greedy (default 0.8)\n"
            "  --top-k N               (default 40; 0 = off)\n"
            "  --top-p X               (default 0.95; 1 = off)\n"
            "  --min-p X               (default 0.05; 0 = off)\n"
            "  --repeat-penalty X      (default 1 = off)\n"
            "  --repeat-last-n N       tokens the penalties look back over (default 64)\n"
            "  --presence-penalty X    (default 0)\n"
            "  --frequency-penalty X   (default 0)\n"
            "  --logit-bias ID=BIAS    add BIAS to token ID's logit (-inf bans it); repeatable\n"
            "  --seed N                sampling seed (default: random, printed at the end)\n"
            "  --stop TEXT             stop when TEXT is generated; repeatable\n"
            "  --ignore-eos            do not stop at end-of-generation tokens\n"
            "  --context-shift         a full context drops its oldest half (after --keep\n"
            "                          tokens) and generation goes on\n"
            "  --keep N                tokens --context-shift keeps (default 0; -1: the prompt)\n"
            "  --grammar GBNF          the output must be a sentence of this grammar\n"
            "  --grammar-file FILE     the same, read from FILE\n"
            "  -j, --json-schema JSON  the output must be a JSON document valid against it\n"
            "  -jf, --json-schema-file FILE  the same, read from FILE (docs/grammar.md)\n"
            "  --no-bos                do not add BOS even if the model asks for it\n"
            "  --parse-special         special tokens written in the prompt become tokens\n"
            "  --chat                  wrap the prompt in the model's chat template (as a user "
            "message)\n"
            "  --system TEXT           with --chat: a system message first\n"
            "  -v, --verbose           log loading details\n");
}

static int parse_float(const char *flag, const char *v, float *out) {
    char *end;
    float f = strtof(v, &end);
    if (*v == '\0' || *end != '\0') {
        m40_cli_error("%s: \"%s\" is not a number", flag, v);
        return -1;
    }
    *out = f;
    return 0;
}

static int parse_bias(gen_args *a, const char *v) {
    size_t n = a->gp.sampling.n_bias;
    if (n >= MAX_BIASES) {
        m40_cli_error("--logit-bias: at most %d", MAX_BIASES);
        return -1;
    }
    char *end;
    long id = strtol(v, &end, 10);
    if (end == v || *end != '=' || id < 0 || id > INT_MAX) {
        m40_cli_error("--logit-bias: \"%s\" is not ID=BIAS", v);
        return -1;
    }
    const char *b = end + 1;
    float bias;
    if (!strcmp(b, "-inf"))
        bias = -__builtin_inff();
    else if (parse_float("--logit-bias", b, &bias))
        return -1;
    a->biases[n].token = (int32_t)id;
    a->biases[n].bias = bias;
    a->gp.sampling.bias = a->biases;
    a->gp.sampling.n_bias = n + 1;
    return 0;
}

/* Flags that take a value. Returns 1 when `flag` was one of them (and
 * consumed v), 0 when it is not, -1 on a bad value. */
static int value_flag(gen_args *a, const char *flag, const char *v) {
    m40_sampler_params *s = &a->gp.sampling;
    int n, r = m40_cli_backend_flag(&a->eo.backend, flag, v);
    if (r)
        return r;
#define IS(x) (!strcmp(flag, x))
    if (IS("-m") || IS("--model"))
        a->model = m40_cli_resolve_model(v);
    else if (IS("-p") || IS("--prompt"))
        a->prompt = v;
    else if (IS("--prompt-file"))
        a->prompt_file = v;
    else if (IS("--system"))
        a->system = v;
    else if (IS("--chat-template-file")) {
        m40_err err = {0};
        free(a->template_buf);
        a->template_buf = NULL;
        if (m40_read_file(v, &a->template_buf, NULL, &err)) {
            m40_cli_error("--chat-template-file: %s", err.msg);
            return -1;
        }
        a->eo.chat_template = a->template_buf;
    } else if (IS("--keep")) {
        if (!strcmp(v, "-1"))
            a->gp.n_keep = -1;
        else if (m40_cli_parse_int(flag, v, &a->gp.n_keep))
            return -1;
    } else if (IS("--grammar"))
        a->grammar = v;
    else if (IS("--grammar-file"))
        a->grammar_file = v;
    else if (IS("-j") || IS("--json-schema"))
        a->json_schema = v;
    else if (IS("-jf") || IS("--json-schema-file"))
        a->json_schema_file = v;
    else if (IS("-n") || IS("--n-predict")) {
        if (!strcmp(v, "-1"))
            a->gp.max_tokens = -1;
        else if (m40_cli_parse_int(flag, v, &a->gp.max_tokens))
            return -1;
    } else if (IS("--temperature") || IS("--temp"))
        return parse_float(flag, v, &s->temperature) ? -1 : 1;
    else if (IS("--top-k"))
        return m40_cli_parse_int(flag, v, &s->top_k) ? -1 : 1;
    else if (IS("--top-p"))
        return parse_float(flag, v, &s->top_p) ? -1 : 1;
    else if (IS("--min-p"))
        return parse_float(flag, v, &s->min_p) ? -1 : 1;
    else if (IS("--repeat-penalty"))
        return parse_float(flag, v, &s->repeat_penalty) ? -1 : 1;
    else if (IS("--repeat-last-n"))
        return m40_cli_parse_int(flag, v, &s->penalty_last_n) ? -1 : 1;
    else if (IS("--presence-penalty"))
        return parse_float(flag, v, &s->presence_penalty) ? -1 : 1;
    else if (IS("--frequency-penalty"))
        return parse_float(flag, v, &s->frequency_penalty) ? -1 : 1;
    else if (IS("--logit-bias"))
        return parse_bias(a, v) ? -1 : 1;
    else if (IS("--seed")) {
        if (m40_cli_parse_int(flag, v, &n))
            return -1;
        s->seed = (uint64_t)n;
        a->seed_given = 1;
    } else if (IS("--stop")) {
        if (a->gp.n_stop >= MAX_STOPS || !*v) {
            m40_cli_error("--stop: at most %d non-empty strings", MAX_STOPS);
            return -1;
        }
        a->stops[a->gp.n_stop++] = v;
        a->gp.stop = a->stops;
    } else
        return 0;
#undef IS
    return 1;
}

int m40_gen_args_parse(gen_args *a, int argc, char **argv, const char *cmd) {
    for (int i = 0; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            generate_usage(stdout, cmd);
            return 1;
        } else if (!strcmp(f, "--chat")) {
            a->chat = 1;
        } else if (!strcmp(f, "--ignore-eos")) {
            a->gp.ignore_eos = 1;
        } else if (!strcmp(f, "--context-shift")) {
            a->gp.context_shift = 1;
        } else if (!strcmp(f, "--no-bos")) {
            a->gp.add_special = 0;
        } else if (!strcmp(f, "--parse-special")) {
            a->gp.parse_special = 1;
        } else if (!strcmp(f, "-v") || !strcmp(f, "--verbose")) {
            a->verbose = 1;
        } else {
            if (i + 1 >= argc) {
                m40_cli_error("%s: unknown or incomplete option \"%s\"", cmd, f);
                return -1;
            }
            int r = value_flag(a, f, argv[i + 1]);
            if (r == 0)
                m40_cli_error("%s: unknown option \"%s\" (m40-llm %s --help)", cmd, f, cmd);
            if (r <= 0)
                return -1;
            i++;
        }
    }
    return 0;
}

static int print_text(void *user, const char *text, size_t len) {
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

/* The prompt as the model's chat template renders it: an optional system
 * message, then the prompt as the user's message. */
static int chat_prompt(m40_engine *e, const gen_args *a, const char *prompt, char **out,
                       m40_err *err) {
    cJSON *msgs = cJSON_CreateArray();
    int rc = -1;
    if (!msgs)
        return m40_errf(err, "out of memory");
    if ((a->system && m40_cli_add_message(msgs, "system", a->system)) ||
        m40_cli_add_message(msgs, "user", prompt)) {
        m40_errf(err, "out of memory");
        goto done;
    }
    size_t len;
    int fallback = 0;
    rc = m40_engine_chat_prompt(e, msgs, NULL, 1, out, &len, &fallback, err);
    if (rc == 0 && fallback)
        fprintf(stderr, "m40-llm: the model has no chat template; using ChatML\n");
done:
    cJSON_Delete(msgs);
    return rc;
}

int m40_cli_add_message(cJSON *msgs, const char *role, const char *content) {
    cJSON *m = cJSON_CreateObject();
    if (!m || !cJSON_AddStringToObject(m, "role", role) ||
        !cJSON_AddStringToObject(m, "content", content)) {
        cJSON_Delete(m);
        return -1;
    }
    cJSON_AddItemToArray(msgs, m);
    return 0;
}

uint64_t m40_gen_random_seed(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid()) & 0x7fffffffu;
}

/* Compiled before the model loads, so a bad one fails at once. */
int m40_gen_args_grammar(const gen_args *a, m40_grammar **out) {
    *out = NULL;
    const char *text = a->grammar ? a->grammar : a->json_schema;
    const char *file = a->grammar_file ? a->grammar_file : a->json_schema_file;
    int schema = a->json_schema || a->json_schema_file;
    if ((a->grammar != NULL) + (a->grammar_file != NULL) + (a->json_schema != NULL) +
            (a->json_schema_file != NULL) >
        1) {
        m40_cli_error("generate: give one of --grammar, --grammar-file, --json-schema and "
                      "--json-schema-file");
        return -1;
    }
    if (!text && !file)
        return 0;
    m40_err err = {0};
    char *buf = NULL, *gbnf = NULL;
    int rc = 0;
    if (file && m40_read_file(file, &buf, NULL, &err)) {
        m40_cli_error("cannot read %s: %s", file, err.msg);
        return -1;
    }
    if (file)
        text = buf;
    if (schema) {
        cJSON *j = cJSON_Parse(text);
        if (!j) {
            m40_cli_error("--json-schema: not valid JSON");
            rc = -1;
        } else if (m40_json_schema_to_gbnf(j, &gbnf, &err)) {
            m40_cli_error("%s", err.msg);
            rc = -1;
        }
        cJSON_Delete(j);
        text = gbnf;
    }
    if (rc == 0 && m40_grammar_parse(text, strlen(text), out, &err)) {
        m40_cli_error("%s", err.msg);
        rc = -1;
    }
    free(buf);
    free(gbnf);
    return rc;
}

const char *m40_gen_args_model(gen_args *a, char *buf, size_t cap) {
    if (!a->model) {
        a->model = m40_cli_default_model(buf, cap);
        if (!a->model)
            m40_cli_error("no -m given and the default model (%s) is missing: run "
                          "scripts/get-default-model.sh",
                          M40_CLI_DEFAULT_MODEL);
    }
    return a->model;
}

static int run(gen_args *a) {
    char defbuf[PATH_MAX];
    if (!m40_gen_args_model(a, defbuf, sizeof defbuf))
        return M40_EXIT_FAIL;
    const char *prompt = a->prompt;
    m40_err err = {0};
    if (a->prompt_file) {
        if (m40_read_file(a->prompt_file, &a->prompt_buf, NULL, &err)) {
            m40_cli_error("cannot read --prompt-file: %s", err.msg);
            return M40_EXIT_FAIL;
        }
        prompt = a->prompt_buf;
    }
    if (!prompt) {
        m40_cli_error("generate: give a prompt with -p or --prompt-file");
        return M40_EXIT_USAGE;
    }
    m40_grammar *grammar = NULL;
    if (m40_gen_args_grammar(a, &grammar))
        return M40_EXIT_USAGE;
    a->gp.grammar = grammar;
    if (!a->seed_given)
        a->gp.sampling.seed = m40_gen_random_seed();
    if (!a->verbose)
        m40_log_set_level(M40_LOG_WARN);
    a->eo.model_path = a->model;
    m40_cli_progress progress;
    m40_cli_progress_attach(&progress, &a->eo.backend);
    char notice[640];
    m40_engine *e;
    if (m40_engine_open(&e, &a->eo, notice, sizeof notice, &err)) {
        m40_cli_error("%s", err.msg);
        m40_grammar_free(grammar);
        return M40_EXIT_FAIL;
    }
    if (notice[0])
        fprintf(stderr, "m40-llm: %s\n", notice);
    char *chat_text = NULL;
    size_t prompt_len = strlen(prompt);
    if (a->chat) {
        if (chat_prompt(e, a, prompt, &chat_text, &err)) {
            m40_cli_error("%s", err.msg);
            m40_engine_close(e);
            m40_grammar_free(grammar);
            return M40_EXIT_FAIL;
        }
        prompt = chat_text;
        prompt_len = strlen(chat_text);
        /* The template writes the special tokens as text; a template that
         * writes BOS itself must not get a second one. */
        a->gp.parse_special = 1;
        if (m40_engine_starts_with_bos(e, prompt, prompt_len))
            a->gp.add_special = 0;
    }
    m40_gen_stats st;
    int rc = m40_engine_generate(e, 0, prompt, prompt_len, &a->gp, print_text, NULL, &st, &err);
    free(chat_text);
    fputc('\n', stdout);
    fflush(stdout);
    if (rc) {
        m40_cli_error("%s", err.msg);
    } else {
        int n_dec = st.n_gen > 1 ? st.n_gen - 1 : 0;
        fprintf(stderr,
                "m40-llm: %s | prompt %d tokens, %.1f t/s | generated %d tokens, %.1f t/s | "
                "first token %.0f ms | finish: %s | seed %llu\n",
                m40_backend_describe(m40_engine_backend(e)), st.n_prompt,
                st.prefill_ms > 0 ? st.n_prompt * 1e3 / st.prefill_ms : 0.0, st.n_gen,
                st.decode_ms > 0 ? n_dec * 1e3 / st.decode_ms : 0.0, st.ttft_ms,
                m40_finish_name(st.finish), (unsigned long long)a->gp.sampling.seed);
    }
    m40_engine_close(e);
    m40_grammar_free(grammar);
    return rc ? M40_EXIT_FAIL : M40_EXIT_OK;
}

void m40_gen_args_init(gen_args *a) {
    memset(a, 0, sizeof *a);
    a->gp = m40_gen_default_params();
    a->eo.backend.device = M40_DEVICE_AUTO;
    a->eo.backend.gpu = -1;
}

void m40_gen_args_free(gen_args *a) {
    free(a->prompt_buf);
    free(a->template_buf);
}

int m40_cmd_generate(int argc, char **argv) {
    gen_args a;
    m40_gen_args_init(&a);
    int r = m40_gen_args_parse(&a, argc, argv, "generate");
    if (r == 0 && a.system && !a.chat) {
        m40_cli_error("generate: --system needs --chat");
        r = -1;
    }
    int rc = r > 0 ? M40_EXIT_OK : r < 0 ? M40_EXIT_USAGE : run(&a);
    m40_gen_args_free(&a);
    return rc;
}
