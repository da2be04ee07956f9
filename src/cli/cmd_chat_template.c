/* cmd_chat_template.c - `m40-llm chat-template`: render a conversation with
 * a model's chat template and print the prompt exactly (no newline added).
 *
 *   m40-llm chat-template (-m MODEL.gguf | --template FILE) --messages FILE.json
 *                         [--add-generation-prompt] [--var NAME=VALUE ...]
 *                         [--var NAME:json=JSON ...]
 *
 * With -m the template is the GGUF's tokenizer.chat_template (ChatML, with a
 * note on stderr, when the model has none) and bos_token / eos_token are the
 * texts of the model's BOS / EOS tokens. The messages file holds a JSON
 * array of messages, or an object whose "messages" member is that array and
 * whose other members become template variables (tools, ...). --var sets a
 * string variable; NAME:json=VALUE a JSON one (VALUE may be @FILE).
 *
 * Owns: argument parsing and printing. Touches: libm40 (chat, gguf).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat.h"
#include "cli/cli.h"
#include "gguf/gguf.h"

static void chat_usage(FILE *out) {
    fprintf(
        out,
        "usage: m40-llm chat-template (-m MODEL.gguf | --template FILE) --messages FILE.json\n"
        "                             [--add-generation-prompt] [--var NAME=VALUE ...]\n"
        "  -m MODEL.gguf            use the model's tokenizer.chat_template, bos/eos tokens\n"
        "  --template FILE          use the Jinja template in FILE\n"
        "  --messages FILE.json     a JSON array of messages, or an object with \"messages\"\n"
        "                           (its other members become template variables)\n"
        "  --add-generation-prompt  end with the assistant turn's header\n"
        "  --var NAME=VALUE         set a string variable (bos_token, date_string, ...)\n"
        "  --var NAME:json=JSON     set a JSON variable (tools:json=@tools.json reads a file)\n");
}

static cJSON *parse_json_arg(const char *what, const char *text) {
    char *owned = NULL;
    size_t len;
    if (text[0] == '@') {
        owned = m40_cli_read_file(text + 1, &len);
        if (!owned)
            return NULL;
        text = owned;
    }
    cJSON *j = cJSON_Parse(text);
    if (!j)
        m40_cli_error("%s: invalid JSON", what);
    free(owned);
    return j;
}

/* --var NAME=VALUE or NAME:json=VALUE into vars; 0 or -1 (printed). */
static int add_var(cJSON *vars, const char *spec) {
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec) {
        m40_cli_error("--var wants NAME=VALUE, not \"%s\"", spec);
        return -1;
    }
    size_t name_len = (size_t)(eq - spec);
    int is_json = name_len > 5 && memcmp(eq - 5, ":json", 5) == 0;
    if (is_json)
        name_len -= 5;
    char name[256];
    if (name_len >= sizeof name) {
        m40_cli_error("--var: name too long");
        return -1;
    }
    memcpy(name, spec, name_len);
    name[name_len] = '\0';
    cJSON *v = is_json ? parse_json_arg(name, eq + 1) : cJSON_CreateString(eq + 1);
    if (!v)
        return -1;
    cJSON_DeleteItemFromObjectCaseSensitive(vars, name);
    cJSON_AddItemToObject(vars, name, v);
    return 0;
}

/* Text of token `id_key`'s id in the vocabulary, as a JSON string in vars. */
static void add_token_text(const m40_gguf *g, cJSON *vars, const char *id_key, const char *var) {
    m40_err err = {0};
    uint64_t id;
    m40_gguf_value tokens;
    m40_gguf_str s;
    if (m40_gguf_get_uint(g, id_key, &id, &err) ||
        m40_gguf_get_array(g, "tokenizer.ggml.tokens", M40_GGUF_STRING, &tokens, &err) ||
        id >= tokens.count || m40_gguf_array_str(&tokens, id, &s, &err))
        return;
    char *text = malloc(s.len + 1);
    if (!text)
        return;
    memcpy(text, s.ptr, s.len);
    text[s.len] = '\0';
    if (!cJSON_GetObjectItemCaseSensitive(vars, var))
        cJSON_AddStringToObject(vars, var, text);
    free(text);
}

/* The model's template (malloc'ed) and bos/eos variables. */
static char *template_from_model(const char *path, cJSON *vars) {
    m40_err err = {0};
    m40_gguf *g;
    if (m40_gguf_open(&g, path, &err)) {
        m40_cli_error("%s", err.msg);
        return NULL;
    }
    m40_gguf_str s;
    char *tmpl;
    if (m40_gguf_find_kv(g, "tokenizer.chat_template") < 0) {
        fprintf(stderr, "m40-llm: no chat template in the model; using %s\n",
                m40_chat_fallback_name());
        tmpl = strdup(m40_chat_fallback_template());
    } else if (m40_gguf_get_str(g, "tokenizer.chat_template", &s, &err)) {
        m40_cli_error("%s", err.msg);
        m40_gguf_close(g);
        return NULL;
    } else {
        tmpl = malloc(s.len + 1);
        if (tmpl) {
            memcpy(tmpl, s.ptr, s.len);
            tmpl[s.len] = '\0';
        }
    }
    add_token_text(g, vars, "tokenizer.ggml.bos_token_id", "bos_token");
    add_token_text(g, vars, "tokenizer.ggml.eos_token_id", "eos_token");
    m40_gguf_close(g);
    if (!tmpl)
        m40_cli_error("out of memory");
    return tmpl;
}

/* Messages file: an array, or an object with "messages" whose other
 * members join vars (without overriding --var). Returns the messages. */
static cJSON *load_messages(const char *path, cJSON *vars, cJSON **root) {
    size_t len;
    char *text = m40_cli_read_file(path, &len);
    if (!text)
        return NULL;
    *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!*root) {
        m40_cli_error("%s: invalid JSON", path);
        return NULL;
    }
    if (cJSON_IsArray(*root))
        return *root;
    cJSON *msgs = cJSON_GetObjectItemCaseSensitive(*root, "messages");
    if (!cJSON_IsObject(*root) || !cJSON_IsArray(msgs)) {
        m40_cli_error("%s: expected an array of messages or an object with \"messages\"", path);
        return NULL;
    }
    for (cJSON *e = (*root)->child; e; e = e->next) {
        if (e == msgs || !e->string || cJSON_GetObjectItemCaseSensitive(vars, e->string))
            continue;
        cJSON_AddItemToObject(vars, e->string, cJSON_Duplicate(e, 1));
    }
    return msgs;
}

typedef struct chat_args {
    const char *model, *template_path, *messages;
    int add_gen;
} chat_args;

/* Parses argv; returns -1 to continue, else an exit status. */
static int parse_args(int argc, char **argv, chat_args *a, cJSON *vars) {
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        int has_next = i + 1 < argc;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            chat_usage(stdout);
            return M40_EXIT_OK;
        } else if ((!strcmp(s, "-m") || !strcmp(s, "--model")) && has_next) {
            a->model = argv[++i];
        } else if (!strcmp(s, "--template") && has_next) {
            a->template_path = argv[++i];
        } else if (!strcmp(s, "--messages") && has_next) {
            a->messages = argv[++i];
        } else if (!strcmp(s, "--add-generation-prompt")) {
            a->add_gen = 1;
        } else if (!strcmp(s, "--var") && has_next) {
            if (add_var(vars, argv[++i]))
                return M40_EXIT_USAGE;
        } else {
            m40_cli_error("chat-template: unknown or incomplete option \"%s\"", s);
            chat_usage(stderr);
            return M40_EXIT_USAGE;
        }
    }
    if ((a->model != NULL) == (a->template_path != NULL) || !a->messages) {
        m40_cli_error("chat-template needs one of -m or --template, and --messages");
        chat_usage(stderr);
        return M40_EXIT_USAGE;
    }
    return -1;
}

static int render_and_print(const char *tmpl, const cJSON *msgs, const cJSON *vars, int add_gen) {
    m40_err err = {0};
    m40_chat_template *t;
    if (m40_chat_template_compile(tmpl, strlen(tmpl), &t, &err)) {
        m40_cli_error("%s", err.msg);
        return M40_EXIT_FAIL;
    }
    m40_chat_options o = {.add_generation_prompt = add_gen, .extra_vars = vars};
    char *out;
    size_t n;
    int rc = m40_chat_template_render(t, msgs, &o, &out, &n, &err);
    m40_chat_template_free(t);
    if (rc) {
        m40_cli_error("%s", err.msg);
        return M40_EXIT_FAIL;
    }
    int bad = fwrite(out, 1, n, stdout) != n || fflush(stdout) != 0;
    free(out);
    if (bad) {
        m40_cli_error("writing the prompt failed");
        return M40_EXIT_FAIL;
    }
    return M40_EXIT_OK;
}

int m40_cmd_chat_template(int argc, char **argv) {
    chat_args a = {0};
    cJSON *vars = cJSON_CreateObject(), *root = NULL;
    char *tmpl = NULL;
    int rc = vars ? parse_args(argc, argv, &a, vars) : M40_EXIT_FAIL;
    if (rc >= 0)
        goto done;
    rc = M40_EXIT_FAIL;
    /* variables: --var first, then the messages file, then the model */
    const cJSON *msgs = load_messages(a.messages, vars, &root);
    if (!msgs)
        goto done;
    if (a.model) {
        tmpl = template_from_model(a.model, vars);
    } else {
        size_t len;
        tmpl = m40_cli_read_file(a.template_path, &len);
    }
    if (!tmpl)
        goto done;
    rc = render_and_print(tmpl, msgs, vars, a.add_gen);
done:
    free(tmpl);
    cJSON_Delete(root);
    cJSON_Delete(vars);
    return rc;
}
