/* routes.c - the endpoints: request JSON in, reply JSON (or a stream) out.
 *
 * Each handler validates its request completely before it submits a job,
 * so a bad request never reaches the engine; the engine's own refusals
 * (a prompt longer than the context...) come back as 400s too. Every
 * error's status comes from its kind (util/err.h), in k_kind_http.
 *
 * Owns: request validation and response shapes (ours and OpenAI's).
 * Touches: the engine only through jobs (jobs.c), never directly.
 */
#include <math.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grammar/json_schema.h"
#include "server/server_internal.h"
#include "util/utf8.h"

/* ---- text into JSON ------------------------------------------------------ */

/* s as valid UTF-8: each byte run that can never be valid, and an
 * unfinished sequence at the end (a token boundary inside a character),
 * becomes U+FFFD, as decoders replace them; malloc'd, NULL when out of
 * memory. JSON text must be UTF-8, and a model's tokens need not be. */
static char *utf8_lossy(const char *s) {
    size_t n = strlen(s), cap = 3 * n + 1, o = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n;) {
        int k = m40_utf8_valid_prefix((const unsigned char *)s + i, n - i);
        if (k > 0) {
            memcpy(out + o, s + i, (size_t)k);
            o += (size_t)k, i += (size_t)k;
            continue;
        }
        memcpy(out + o, "\xEF\xBF\xBD", 3); /* U+FFFD */
        o += 3;
        i = k == 0 ? n : i + (size_t)-k;
    }
    out[o] = '\0';
    return out;
}

/* Whether a JSON string in body[0..n) holds the escape \u0000: cJSON would
 * end the C string there and silently drop the rest. */
static int has_nul_escape(const char *body, size_t n) {
    int in_string = 0;
    for (size_t i = 0; i < n; i++) {
        if (body[i] == '"') {
            in_string = !in_string;
        } else if (in_string && body[i] == '\\' && i + 1 < n) {
            if (body[i + 1] == 'u' && i + 5 < n && !memcmp(body + i + 2, "0000", 4))
                return 1;
            i++; /* the escaped character */
        }
    }
    return 0;
}

/* obj[key] = text (NULL: ""), made valid UTF-8. */
static void add_text(cJSON *obj, const char *key, const char *text) {
    char *t = utf8_lossy(text ? text : "");
    cJSON_AddStringToObject(obj, key, t ? t : "");
    free(t);
}

typedef enum api { API_GENERATE = 0, API_COMPLETIONS = 1, API_CHAT = 2 } api;

static atomic_ulong g_next_id = 1;
static atomic_ulong g_seed_mix = 0x9e3779b97f4a7c15UL;

char *srv_error_body(const char *message, const char *type, const char *code) {
    cJSON *root = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "type", type);
    if (code)
        cJSON_AddStringToObject(e, "code", code);
    else
        cJSON_AddNullToObject(e, "code");
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

cJSON *srv_ollama_error(const char *message) {
    cJSON *root = cJSON_CreateObject();
    if (root && !cJSON_AddStringToObject(root, "error", message)) {
        cJSON_Delete(root);
        root = NULL;
    }
    return root;
}

static void reply_json(srv_reply *r, unsigned status, cJSON *root) {
    r->status = status;
    r->body = cJSON_PrintUnformatted(root);
    r->content_type = "application/json";
    cJSON_Delete(root);
    if (!r->body) {
        r->status = 500;
        r->body = NULL;
    }
}

/* What an error of each kind answers: the one table HTTP statuses of
 * failed requests come from (404 and 405, which are about the URL, not a
 * request, are the exception below). */
static const struct kind_http {
    unsigned status;
    const char *type, *code;
    int retry_after; /* seconds; 0: no Retry-After */
} k_kind_http[] = {
    [M40_ERR_INTERNAL] = {500, "server_error", NULL, 0},
    [M40_ERR_BAD_INPUT] = {400, "invalid_request_error", NULL, 0},
    [M40_ERR_TOO_LONG] = {400, "invalid_request_error", "context_length_exceeded", 0},
    [M40_ERR_BUSY] = {503, "server_error", "queue_full", 1},
    [M40_ERR_SHUTDOWN] = {503, "server_error", "shutting_down", 0},
    [M40_ERR_UNSUPPORTED] = {400, "invalid_request_error", "unsupported", 0},
};

static const struct kind_http *kind_http(m40_err_kind kind) {
    size_t k = (size_t)kind;
    return &k_kind_http[k < sizeof k_kind_http / sizeof k_kind_http[0] ? k : 0];
}

static void reply_status(srv_reply *r, unsigned status, const char *type, const char *code,
                         const char *msg) {
    r->status = status;
    if (r->ollama) {
        cJSON *root = srv_ollama_error(msg);
        r->body = root ? cJSON_PrintUnformatted(root) : NULL;
        cJSON_Delete(root);
    } else {
        r->body = srv_error_body(msg, type, code);
    }
    r->content_type = "application/json";
}

/* A failed request's reply, from the error's kind. */
static void reply_err(srv_reply *r, const m40_err *e) {
    const struct kind_http *h = kind_http(e->kind);
    reply_status(r, h->status, h->type, h->code, e->msg);
    r->retry_after = h->retry_after;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
reply_kind(srv_reply *r, m40_err_kind kind, const char *fmt, ...) {
    m40_err e = {0};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    e.kind = kind;
    reply_err(r, &e);
}

/* 404 and 405: the URL or method is wrong, whatever the request holds. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static void
reply_url_error(srv_reply *r, unsigned status, const char *code, const char *fmt, ...) {
    char msg[M40_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reply_status(r, status, "invalid_request_error", code, msg);
}

#define BAD(r, ...) reply_kind(r, M40_ERR_BAD_INPUT, __VA_ARGS__)
#define OOM(r)      reply_kind(r, M40_ERR_INTERNAL, "out of memory")

/* ---- request fields ----------------------------------------------------- */

/* An optional number field in [lo, hi] (an integer when integral is set).
 * Returns 0 (absent or set), -1 after filling the error reply. */
static int get_num(const cJSON *o, const char *name, double lo, double hi, int integral,
                   double *out, srv_reply *r) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v)) {
        BAD(r, "'%s' must be a number", name);
        return -1;
    }
    double d = v->valuedouble;
    if (!isfinite(d) || d < lo || d > hi || (integral && d != floor(d))) {
        BAD(r, "'%s' must be %s in [%g, %g]", name, integral ? "an integer" : "a number", lo, hi);
        return -1;
    }
    *out = d;
    return 0;
}

static int get_bool(const cJSON *o, const char *name, int *out, srv_reply *r) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsBool(v)) {
        BAD(r, "'%s' must be true or false", name);
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

static int add_stop(srv_job *j, const char *s, srv_reply *r) {
    if (!*s)
        return 0;
    if (j->gp.n_stop >= SRV_MAX_STOPS) {
        BAD(r, "'stop' holds at most %d strings", SRV_MAX_STOPS);
        return -1;
    }
    if (!(j->stops[j->gp.n_stop] = strdup(s))) {
        OOM(r);
        return -1;
    }
    j->gp.n_stop++;
    j->gp.stop = (const char *const *)j->stops;
    return 0;
}

static int get_stops(const cJSON *o, srv_job *j, srv_reply *r) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "stop");
    if (!v || cJSON_IsNull(v))
        return 0;
    if (cJSON_IsString(v))
        return add_stop(j, v->valuestring, r);
    if (!cJSON_IsArray(v)) {
        BAD(r, "'stop' must be a string or an array of strings");
        return -1;
    }
    const cJSON *s;
    cJSON_ArrayForEach(s, v) {
        if (!cJSON_IsString(s)) {
            BAD(r, "'stop' must be a string or an array of strings");
            return -1;
        }
        if (add_stop(j, s->valuestring, r))
            return -1;
    }
    return 0;
}

/* One logit_bias entry: token id (a string key in OpenAI's form) and its
 * value: a number in [-100, 100] (-100: never this token, as OpenAI
 * documents it) or, in llama.cpp's array form, false (never). */
static int bias_entry(const srv_ctx *c, const char *key, const cJSON *id, const cJSON *v,
                      m40_logit_bias *out, srv_reply *r) {
    int32_t n_vocab = (int32_t)m40_tokenizer_n_tokens(m40_engine_tokenizer(c->engine));
    double tok = -1;
    if (key) {
        char *end = NULL;
        tok = strtod(key, &end);
        if (!*key || *end)
            tok = -1;
    } else if (cJSON_IsNumber(id)) {
        tok = id->valuedouble;
    }
    if (!(tok >= 0 && tok < n_vocab && tok == floor(tok))) {
        BAD(r, "'logit_bias': %s is not a token id in [0, %d)", key ? key : "an entry", n_vocab);
        return -1;
    }
    out->token = (int32_t)tok;
    if (cJSON_IsFalse(v)) {
        out->bias = -INFINITY;
    } else if (cJSON_IsNumber(v) && v->valuedouble >= -100 && v->valuedouble <= 100) {
        out->bias = v->valuedouble <= -100 ? -INFINITY : (float)v->valuedouble;
    } else {
        BAD(r, "'logit_bias' values must be numbers in [-100, 100] (or false)");
        return -1;
    }
    return 0;
}

/* logit_bias: {"id": bias, ...} (OpenAI) or [[id, bias], ...] (llama.cpp). */
static int get_logit_bias(const srv_ctx *c, const cJSON *o, srv_job *j, srv_reply *r) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "logit_bias");
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v)) {
        BAD(r, "'logit_bias' must be an object of token id: bias");
        return -1;
    }
    int n = cJSON_GetArraySize(v);
    if (n == 0)
        return 0;
    if (n > 1 << 20) {
        BAD(r, "'logit_bias' has too many entries");
        return -1;
    }
    if (!(j->bias = calloc((size_t)n, sizeof *j->bias))) {
        OOM(r);
        return -1;
    }
    const cJSON *e;
    int i = 0;
    cJSON_ArrayForEach(e, v) {
        int rc;
        if (cJSON_IsObject(v)) {
            rc = bias_entry(c, e->string, NULL, e, &j->bias[i], r);
        } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2) {
            rc = bias_entry(c, NULL, cJSON_GetArrayItem(e, 0), cJSON_GetArrayItem(e, 1),
                            &j->bias[i], r);
        } else {
            BAD(r, "'logit_bias' entries must be [token id, bias] pairs");
            rc = -1;
        }
        if (rc)
            return -1;
        i++;
    }
    j->gp.sampling.bias = j->bias;
    j->gp.sampling.n_bias = (size_t)n;
    return 0;
}

/* Fields of the OpenAI API this server does not do yet: a 400 naming the
 * field when a request asks for them, rather than a silent ignore; the
 * values that ask for nothing (logprobs false, an empty tools list,
 * response_format "text", echo false...) pass. */
static int refuse_unsupported(const cJSON *o, api kind, srv_reply *r) {
    const cJSON *v;
#define FIELD(name) ((v = cJSON_GetObjectItemCaseSensitive(o, name)) && !cJSON_IsNull(v))
    const char *what = NULL;
    if (FIELD("echo") && !cJSON_IsFalse(v) && kind != API_COMPLETIONS)
        what = "'echo' (a completions field)";
    else if (kind != API_CHAT && FIELD("tools") &&
             !(cJSON_IsArray(v) && cJSON_GetArraySize(v) == 0))
        what = "'tools' (a chat field)";
    else if (kind != API_CHAT && FIELD("tool_choice") &&
             !(cJSON_IsString(v) && !strcmp(v->valuestring, "none")))
        what = "'tool_choice' (a chat field)";
    else if (FIELD("functions") || FIELD("function_call"))
        what = "'functions' / 'function_call' (the deprecated form of 'tools')";
#undef FIELD
    if (!what)
        return 0;
    reply_kind(r, M40_ERR_UNSUPPORTED, "%s is not supported by this server yet", what);
    return -1;
}

/* The grammar the output must follow (docs/grammar.md), from one of:
 * response_format {"type": "json_object"} or {"type": "json_schema",
 * "json_schema": {"schema": {...}}} (OpenAI), json_schema {...} or grammar
 * "GBNF" (llama.cpp's server). Compiled per job: each of n choices owns
 * its own. */
static int get_grammar(const cJSON *o, srv_job *j, srv_reply *r) {
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(o, "response_format");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(o, "json_schema");
    const cJSON *gb = cJSON_GetObjectItemCaseSensitive(o, "grammar");
    const cJSON *schema = NULL;
    const char *gbnf = NULL;
    int json_object = 0, asked = 0;
    if (rf && !cJSON_IsNull(rf)) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(rf, "type");
        if (!cJSON_IsString(t)) {
            BAD(r, "'response_format' must be an object with a string 'type'");
            return -1;
        }
        if (!strcmp(t->valuestring, "json_object")) {
            json_object = 1, asked++;
        } else if (!strcmp(t->valuestring, "json_schema")) {
            const cJSON *w = cJSON_GetObjectItemCaseSensitive(rf, "json_schema");
            schema = cJSON_GetObjectItemCaseSensitive(w, "schema");
            if (!schema) {
                BAD(r, "'response_format' json_schema needs 'json_schema': {'schema': ...}");
                return -1;
            }
            asked++;
        } else if (strcmp(t->valuestring, "text")) {
            BAD(r, "'response_format' type must be 'text', 'json_object' or 'json_schema'");
            return -1;
        }
    }
    if (js && !cJSON_IsNull(js))
        schema = js, asked++;
    if (gb && !cJSON_IsNull(gb)) {
        if (!cJSON_IsString(gb)) {
            BAD(r, "'grammar' must be a string of GBNF");
            return -1;
        }
        gbnf = gb->valuestring, asked++;
    }
    if (asked == 0)
        return 0;
    if (asked > 1) {
        BAD(r, "give one of 'response_format' (json), 'json_schema' and 'grammar'");
        return -1;
    }
    m40_err err = {0};
    char *owned = NULL;
    if (json_object)
        gbnf = m40_json_object_gbnf();
    else if (schema && m40_json_schema_to_gbnf(schema, &owned, &err) == 0)
        gbnf = owned;
    int rc = gbnf ? m40_grammar_parse(gbnf, strlen(gbnf), &j->grammar, &err) : -1;
    free(owned);
    if (rc) {
        reply_kind(r, err.kind, "%s", err.msg);
        return -1;
    }
    j->gp.grammar = j->grammar;
    return 0;
}

/* The grammar of replies that are only tool calls (tool_choice "required"
 * or one function named): one call of any of the tools (or the named one),
 * several in a row when parallel_tool_calls, wrapped as the model's format
 * writes them (chat/tools.h), each {"name": N, args_key: its parameters}. */
static int tool_call_grammar(const cJSON *tools, const char *only, int parallel, m40_tool_format f,
                             srv_job *j, srv_reply *r) {
    m40_tool_wrap w = m40_chat_tools_wrap(f);
    cJSON *any = cJSON_CreateObject(), *alts = cJSON_AddArrayToObject(any, "anyOf");
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
        if (only && strcmp(name->valuestring, only))
            continue;
        cJSON *call = cJSON_CreateObject(), *props = cJSON_AddObjectToObject(call, "properties");
        cJSON_AddStringToObject(call, "type", "object");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(props, "name"), "const", name->valuestring);
        cJSON *args = params ? cJSON_Duplicate(params, 1) : cJSON_CreateObject();
        if (!params) { /* no parameters (OpenAI: an empty list): {} */
            cJSON_AddStringToObject(args, "type", "object");
            cJSON_AddFalseToObject(args, "additionalProperties");
        }
        cJSON_AddItemToObject(props, w.args_key, args);
        cJSON *req = cJSON_AddArrayToObject(call, "required");
        cJSON_AddItemToArray(req, cJSON_CreateString("name"));
        cJSON_AddItemToArray(req, cJSON_CreateString(w.args_key));
        cJSON_AddItemToArray(alts, call);
    }
    m40_err err = {0};
    char *call_gbnf = NULL;
    int rc = m40_json_schema_to_gbnf_rule(any, "call", &call_gbnf, &err);
    cJSON_Delete(any);
    if (rc) {
        reply_kind(r, err.kind, "tools: %s", err.msg);
        return -1;
    }
    /* root ::= OPEN call ( SEP call )* CLOSE, the wrappers as literals */
    cJSON *lits = cJSON_CreateArray();
    cJSON_AddItemToArray(lits, cJSON_CreateString(w.open));
    cJSON_AddItemToArray(lits, cJSON_CreateString(w.sep));
    cJSON_AddItemToArray(lits, cJSON_CreateString(w.close));
    char *l[3];
    for (int i = 0; i < 3; i++) /* JSON's string escapes are GBNF's for these */
        l[i] = cJSON_PrintUnformatted(cJSON_GetArrayItem(lits, i));
    size_t n = strlen(call_gbnf) + 256;
    for (int i = 0; i < 3; i++)
        n += l[i] ? strlen(l[i]) : 0;
    char *gbnf = malloc(n);
    if (gbnf && l[0] && l[1] && l[2])
        snprintf(gbnf, n, "root ::= %s call %s%s%s%s %s\n%s", l[0], parallel ? "( " : "",
                 parallel ? l[1] : "", parallel ? " call )*" : "", "", l[2], call_gbnf);
    rc = gbnf && l[0] && l[1] && l[2] ? m40_grammar_parse(gbnf, strlen(gbnf), &j->grammar, &err)
                                      : m40_errf(&err, "out of memory");
    for (int i = 0; i < 3; i++)
        free(l[i]);
    cJSON_Delete(lits);
    free(gbnf);
    free(call_gbnf);
    if (rc) {
        reply_kind(r, err.kind, "tools: %s", err.msg);
        return -1;
    }
    j->gp.grammar = j->grammar;
    return 0;
}

/* Chat's tools, tool_choice and parallel_tool_calls (docs/tool-calls.md). */
static int get_tools(const srv_ctx *c, const cJSON *o, srv_job *j, srv_reply *r) {
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(o, "tools");
    const cJSON *choice = cJSON_GetObjectItemCaseSensitive(o, "tool_choice");
    int parallel = 1;
    if (get_bool(o, "parallel_tool_calls", &parallel, r))
        return -1;
    if (!tools || cJSON_IsNull(tools) || (cJSON_IsArray(tools) && !cJSON_GetArraySize(tools)))
        return 0;
    if (!cJSON_IsArray(tools) || cJSON_GetArraySize(tools) > 128) {
        BAD(r, "'tools' must be an array of at most 128 functions");
        return -1;
    }
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(t, "type");
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "function") ||
            !cJSON_IsString(name) || !*name->valuestring || (params && !cJSON_IsObject(params))) {
            BAD(r, "each tool must be {\"type\": \"function\", \"function\": {\"name\": "
                   "..., \"parameters\": {...}}}");
            return -1;
        }
    }
    const char *only = NULL;
    int required = 0;
    if (cJSON_IsString(choice)) {
        if (!strcmp(choice->valuestring, "none"))
            return 0; /* no tools: the model writes text */
        required = !strcmp(choice->valuestring, "required");
        if (!required && strcmp(choice->valuestring, "auto")) {
            BAD(r, "'tool_choice' must be \"none\", \"auto\", \"required\" or a function");
            return -1;
        }
    } else if (cJSON_IsObject(choice)) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(choice, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        int found = 0;
        cJSON_ArrayForEach(t, tools) {
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(t, "function"), "name");
            found |= cJSON_IsString(name) && !strcmp(n->valuestring, name->valuestring);
        }
        if (!found) {
            BAD(r, "'tool_choice' names a function that is not in 'tools'");
            return -1;
        }
        only = name->valuestring, required = 1;
    } else if (choice && !cJSON_IsNull(choice)) {
        BAD(r, "'tool_choice' must be a string or {\"type\": \"function\", ...}");
        return -1;
    }
    if (!(j->tools = cJSON_Duplicate(tools, 1))) {
        OOM(r);
        return -1;
    }
    j->tool_calls = 1;
    j->tool_format = m40_engine_tool_format(c->engine);
    if (!required)
        return 0;
    if (j->grammar) {
        BAD(r, "a required tool call cannot be combined with 'response_format' or a grammar");
        return -1;
    }
    return tool_call_grammar(tools, only, parallel, j->tool_format, j, r);
}

/* Log-probabilities: chat's logprobs (bool) + top_logprobs (0..20),
 * completions' logprobs (0..20: how many top tokens); streamed too, each
 * chunk carrying the tokens sampled since the one before. */
static int get_logprobs(const cJSON *o, api kind, int stream, srv_job *j, srv_reply *r) {
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(o, "logprobs");
    const cJSON *top = cJSON_GetObjectItemCaseSensitive(o, "top_logprobs");
    double k = -1;
    if (kind == API_CHAT) {
        int on = 0;
        if (get_bool(o, "logprobs", &on, r))
            return -1;
        double t = 0;
        if (get_num(o, "top_logprobs", 0, M40_MAX_TOP_PROBS, 1, &t, r))
            return -1;
        if (top && !cJSON_IsNull(top) && !on) {
            BAD(r, "'top_logprobs' needs 'logprobs': true");
            return -1;
        }
        k = on ? t : -1;
    } else {
        if (top && !cJSON_IsNull(top)) {
            BAD(r, "'top_logprobs' is a chat field; completions take 'logprobs': N");
            return -1;
        }
        if (lp && !cJSON_IsNull(lp) && !cJSON_IsFalse(lp) &&
            get_num(o, "logprobs", 0, M40_MAX_TOP_PROBS, 1, &k, r))
            return -1;
        if (kind == API_GENERATE && k >= 0) {
            reply_kind(r, M40_ERR_UNSUPPORTED, "'logprobs' is not supported on /generate");
            return -1;
        }
    }
    (void)stream;
    j->gp.n_probs = (int32_t)k;
    j->logprobs_api = k < 0 ? 0 : kind == API_CHAT ? 1 : 2;
    return 0;
}

/* Sampling, length and stop fields shared by the three generation APIs. */
static int get_gen_params(const srv_ctx *c, const cJSON *o, api kind, srv_job *j, int *stream,
                          srv_reply *r) {
    m40_sampler_params *s = &j->gp.sampling;
    double d, n_ctx = c->n_ctx;
    d = 128;
    if (kind == API_GENERATE && get_num(o, "n_predict", -1, n_ctx, 1, &d, r))
        return -1;
    if (get_num(o, "max_tokens", -1, n_ctx, 1, &d, r))
        return -1;
    /* chat's newer name for it (OpenAI's SDKs send it); max_tokens given too wins */
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(o, "max_tokens");
    if ((!mt || cJSON_IsNull(mt)) && get_num(o, "max_completion_tokens", 1, n_ctx, 1, &d, r))
        return -1;
    if (d == 0) {
        BAD(r, "'max_tokens' must be at least 1 (or -1: until the context is full)");
        return -1;
    }
    j->gp.max_tokens = (int32_t)d;
    d = s->temperature;
    if (get_num(o, "temperature", 0, 100, 0, &d, r))
        return -1;
    s->temperature = (float)d;
    d = s->top_k;
    if (get_num(o, "top_k", 0, 1e9, 1, &d, r))
        return -1;
    s->top_k = (int32_t)d;
    d = s->top_p;
    if (get_num(o, "top_p", 0, 1, 0, &d, r))
        return -1;
    if (d <= 0) {
        BAD(r, "'top_p' must be in (0, 1]");
        return -1;
    }
    s->top_p = (float)d;
    d = s->min_p;
    if (get_num(o, "min_p", 0, 1, 0, &d, r))
        return -1;
    s->min_p = (float)d;
    d = s->presence_penalty;
    if (get_num(o, "presence_penalty", -2, 2, 0, &d, r))
        return -1;
    s->presence_penalty = (float)d;
    d = s->frequency_penalty;
    if (get_num(o, "frequency_penalty", -2, 2, 0, &d, r))
        return -1;
    s->frequency_penalty = (float)d;
    d = s->repeat_penalty;
    if (get_num(o, "repeat_penalty", 0.01, 100, 0, &d, r))
        return -1;
    s->repeat_penalty = (float)d;
    /* No seed: a different one per request. */
    d = -1;
    if (get_num(o, "seed", -1, 9007199254740991.0, 1, &d, r))
        return -1;
    s->seed = d >= 0 ? (uint64_t)d
                     : (uint64_t)time(NULL) ^ atomic_fetch_add(&g_seed_mix, 0x9e3779b97f4a7c15UL);
    j->gp.context_shift = c->context_shift;
    d = 0;
    if (get_num(o, "n_keep", -1, n_ctx, 1, &d, r))
        return -1;
    j->gp.n_keep = (int32_t)d;
    if (get_bool(o, "ignore_eos", &j->gp.ignore_eos, r) || get_bool(o, "stream", stream, r) ||
        get_bool(o, "cache_prompt", &j->gp.cache_prompt, r) || refuse_unsupported(o, kind, r) ||
        get_grammar(o, j, r) || (kind == API_CHAT && get_tools(c, o, j, r)) ||
        get_logit_bias(c, o, j, r) || get_logprobs(o, kind, *stream, j, r) ||
        get_bool(o, "echo", &j->echo, r))
        return -1;
    if (j->echo && (j->logprobs_api || *stream)) {
        reply_kind(r, M40_ERR_UNSUPPORTED,
                   "'echo' with 'logprobs' or 'stream' is not supported yet");
        return -1;
    }
    return get_stops(o, j, r);
}

/* The prompt of /generate and /v1/completions: a string, or an array
 * holding one string. */
static int get_prompt(const cJSON *o, srv_job *j, srv_reply *r) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "prompt");
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 1)
        v = cJSON_GetArrayItem(v, 0);
    if (!cJSON_IsString(v)) {
        BAD(r, "'prompt' must be a string");
        return -1;
    }
    j->prompt_len = strlen(v->valuestring);
    if (!(j->prompt = strdup(v->valuestring))) {
        OOM(r);
        return -1;
    }
    return 0;
}

/* A message: a string role; content a string, text parts, or (for an
 * assistant's tool calls) null; tool_calls as OpenAI writes them. */
static int check_message(const cJSON *m, srv_reply *r) {
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
    if (!cJSON_IsObject(m) || !cJSON_IsString(role)) {
        BAD(r, "each message must be an object with a string 'role'");
        return -1;
    }
    if (calls && !cJSON_IsNull(calls)) {
        const cJSON *call;
        int ok = cJSON_IsArray(calls);
        cJSON_ArrayForEach(call, calls) {
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
            ok &= cJSON_IsString(cJSON_GetObjectItemCaseSensitive(fn, "name")) &&
                  (!a || cJSON_IsString(a) || cJSON_IsObject(a));
        }
        if (!ok) {
            BAD(r, "'tool_calls' must be [{\"function\": {\"name\": ..., \"arguments\": "
                   "\"...\"}}]");
            return -1;
        }
    }
    if (cJSON_IsString(content))
        return 0;
    if (cJSON_IsArray(content)) {
        const cJSON *part;
        cJSON_ArrayForEach(part, content) {
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
            if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") ||
                !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(part, "text"))) {
                BAD(r, "content parts must be {\"type\": \"text\", \"text\": ...} (no "
                       "images or audio)");
                return -1;
            }
        }
        return 0;
    }
    if ((!content || cJSON_IsNull(content)) && cJSON_IsArray(calls) &&
        cJSON_GetArraySize(calls) > 0)
        return 0;
    BAD(r, "each message needs a string 'content' (or text parts; null only beside tool_calls)");
    return -1;
}

static int get_messages(const cJSON *o, srv_job *j, srv_reply *r) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "messages");
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0) {
        BAD(r, "'messages' must be a non-empty array");
        return -1;
    }
    const cJSON *m;
    cJSON_ArrayForEach(m, v) {
        if (check_message(m, r))
            return -1;
    }
    if (!(j->messages = cJSON_Duplicate(v, 1))) {
        OOM(r);
        return -1;
    }
    return 0;
}

/* ---- running a job ------------------------------------------------------ */

static int submit(srv_ctx *c, srv_job *j, srv_reply *r) {
    if (srv_queue_submit(&c->queue, j) == 0)
        return 0;
    reply_kind(r, M40_ERR_BUSY, "the server is busy (the request queue is full); retry later");
    return -1;
}

/* Waits (job->mu held) until the job is done, or with want_text until it
 * has text. Every quarter second it asks whether the client is still there;
 * a departed client cancels the job, which the worker then ends at its
 * next piece (or skips, if it is still queued). */
static void wait_job(srv_job *j, const srv_reply *r, int want_text) {
    while (!j->done && !(want_text && j->len > 0)) {
        srv_job_wait(j, want_text ? 0 : SIZE_MAX, 250);
        if (!j->done && !j->cancel && r->client_gone && r->client_gone(r->client_gone_arg))
            j->cancel = 1;
    }
}

/* Waits for a non-streaming job to finish. Returns with job->mu held. */
static void wait_done(srv_job *j, const srv_reply *r) {
    pthread_mutex_lock(&j->mu);
    wait_job(j, r, 0);
}

static cJSON *timings(const m40_gen_stats *st) {
    cJSON *t = cJSON_CreateObject();
    int n_dec = st->n_gen > 1 ? st->n_gen - 1 : 0;
    /* as llama.cpp's: prompt_n the tokens run, cache_n those the prompt
     * cache kept */
    int ran = st->n_prompt - st->n_cached;
    cJSON_AddNumberToObject(t, "prompt_n", ran);
    cJSON_AddNumberToObject(t, "cache_n", st->n_cached);
    cJSON_AddNumberToObject(t, "prompt_ms", st->prefill_ms);
    cJSON_AddNumberToObject(t, "prompt_per_second",
                            st->prefill_ms > 0 ? ran * 1e3 / st->prefill_ms : 0);
    cJSON_AddNumberToObject(t, "predicted_n", st->n_gen);
    cJSON_AddNumberToObject(t, "predicted_ms", st->decode_ms);
    cJSON_AddNumberToObject(t, "predicted_per_second",
                            st->decode_ms > 0 ? n_dec * 1e3 / st->decode_ms : 0);
    cJSON_AddNumberToObject(t, "ttft_ms", st->ttft_ms);
    return t;
}

static cJSON *usage(const m40_gen_stats *st) {
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", st->n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", st->n_gen);
    cJSON_AddNumberToObject(u, "total_tokens", st->n_prompt + st->n_gen);
    cJSON *d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    cJSON_AddNumberToObject(d, "cached_tokens", st->n_cached);
    return u;
}

/* The OpenAI envelope: id, object, created, model, choices[0] (returned). */
static cJSON *openai_envelope(const srv_ctx *c, const srv_reply *r, const char *object,
                              cJSON **root) {
    *root = cJSON_CreateObject();
    cJSON_AddStringToObject(*root, "id", r->id);
    cJSON_AddStringToObject(*root, "object", object);
    cJSON_AddNumberToObject(*root, "created", (double)r->created);
    cJSON_AddStringToObject(*root, "model", c->model_name);
    cJSON *choices = cJSON_AddArrayToObject(*root, "choices");
    cJSON *ch = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, ch);
    cJSON_AddNumberToObject(ch, "index", r->choice);
    return ch;
}

/* A completion's "text": with echo, the prompt before it. */
static void add_completion_text(cJSON *ch, const srv_job *j) {
    if (!j->echo) {
        add_text(ch, "text", j->text);
        return;
    }
    size_t a = j->prompt_len, b = j->text ? strlen(j->text) : 0;
    char *s = malloc(a + b + 1);
    if (s) {
        memcpy(s, j->prompt, a);
        memcpy(s + a, j->text ? j->text : "", b);
        s[a + b] = '\0';
    }
    add_text(ch, "text", s ? s : j->text);
    free(s);
}

/* A token's text for logprobs: its bytes, made valid UTF-8 for the "token"
 * string, and the raw bytes as numbers (OpenAI's "bytes"). */
static void add_token(const srv_ctx *c, cJSON *o, m40_token id) {
    const char *piece = "";
    size_t len = 0;
    m40_err err;
    if (m40_token_to_piece(m40_engine_tokenizer(c->engine), id, 1, &piece, &len, &err))
        piece = "", len = 0;
    char *s = malloc(len + 1);
    if (s) {
        memcpy(s, piece, len);
        s[len] = '\0';
    }
    add_text(o, "token", s);
    cJSON *bytes = cJSON_AddArrayToObject(o, "bytes");
    for (size_t i = 0; i < len; i++)
        cJSON_AddItemToArray(bytes, cJSON_CreateNumber((unsigned char)piece[i]));
    free(s);
}

/* The logprobs object of a finished job: chat's {"content": [...]} or the
 * completions API's {"tokens", "token_logprobs", "top_logprobs",
 * "text_offset"}; null when not asked for. */
static cJSON *logprobs_range(const srv_ctx *c, const srv_job *j, size_t from, size_t to);

static cJSON *logprobs_json(const srv_ctx *c, const srv_job *j) {
    return logprobs_range(c, j, 0, j->n_probs);
}

/* The same for tokens [from, to) (a stream chunk's): offsets count from the
 * first of them. */
static cJSON *logprobs_range(const srv_ctx *c, const srv_job *j, size_t from, size_t to) {
    if (!j->logprobs_api)
        return cJSON_CreateNull();
    cJSON *root = cJSON_CreateObject();
    if (j->logprobs_api == 1) {
        cJSON *content = cJSON_AddArrayToObject(root, "content");
        for (size_t i = from; i < to; i++) {
            const m40_token_prob *p = &j->probs[i];
            cJSON *e = cJSON_CreateObject();
            cJSON_AddItemToArray(content, e);
            add_token(c, e, p->token);
            cJSON_AddNumberToObject(e, "logprob", p->logprob);
            cJSON *tops = cJSON_AddArrayToObject(e, "top_logprobs");
            for (int32_t k = 0; k < p->n_top; k++) {
                cJSON *t = cJSON_CreateObject();
                cJSON_AddItemToArray(tops, t);
                add_token(c, t, p->top[k]);
                cJSON_AddNumberToObject(t, "logprob", p->top_logprob[k]);
            }
        }
        return root;
    }
    cJSON *tokens = cJSON_AddArrayToObject(root, "tokens");
    cJSON *lps = cJSON_AddArrayToObject(root, "token_logprobs");
    cJSON *tops = cJSON_AddArrayToObject(root, "top_logprobs");
    cJSON *offs = cJSON_AddArrayToObject(root, "text_offset");
    double off = 0;
    for (size_t i = from; i < to; i++) {
        const m40_token_prob *p = &j->probs[i];
        cJSON *tmp = cJSON_CreateObject();
        add_token(c, tmp, p->token);
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(tmp, "token"));
        cJSON_AddItemToArray(tokens, cJSON_CreateString(s ? s : ""));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber(off));
        off += (double)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(tmp, "bytes"));
        cJSON_Delete(tmp);
        cJSON_AddItemToArray(lps, cJSON_CreateNumber(p->logprob));
        cJSON *top = cJSON_CreateObject();
        cJSON_AddItemToArray(tops, top);
        for (int32_t k = 0; k < p->n_top; k++) {
            cJSON *t = cJSON_CreateObject();
            add_token(c, t, p->top[k]);
            const char *ts = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "token"));
            if (!cJSON_GetObjectItemCaseSensitive(top, ts ? ts : ""))
                cJSON_AddNumberToObject(top, ts ? ts : "", p->top_logprob[k]);
            cJSON_Delete(t);
        }
    }
    return root;
}

/* The choices of jobs 1..n-1 (of an `n` > 1 request) after job 0's, and
 * usage over all: the prompt once, every choice's tokens. */
/* A choice's finish_reason: "tool_calls" when its reply made calls. */
static const char *finish_of(const srv_job *j) {
    return j->calls ? "tool_calls" : m40_finish_name(j->st.finish);
}

/* A chat choice's message: its text, or with tools its content (null when
 * empty beside calls) and tool_calls. */
static void add_message(cJSON *ch, const srv_job *j) {
    cJSON *msg = cJSON_AddObjectToObject(ch, "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    if (!j->tool_calls) {
        add_text(msg, "content", j->text);
        return;
    }
    if (j->calls && (!j->content || !*j->content))
        cJSON_AddNullToObject(msg, "content");
    else
        add_text(msg, "content", j->content);
    if (j->calls)
        cJSON_AddItemToObject(msg, "tool_calls", cJSON_Duplicate(j->calls, 1));
}

static void more_choices(const srv_ctx *c, api kind, srv_job *const *jobs, int n, cJSON *root) {
    cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
    m40_gen_stats sum = jobs[0]->st;
    for (int i = 1; i < n; i++) {
        const srv_job *j = jobs[i];
        cJSON *ch = cJSON_CreateObject();
        cJSON_AddItemToArray(choices, ch);
        cJSON_AddNumberToObject(ch, "index", i);
        if (kind == API_COMPLETIONS)
            add_completion_text(ch, j);
        else
            add_message(ch, j);
        cJSON_AddItemToObject(ch, "logprobs", logprobs_json(c, j));
        cJSON_AddStringToObject(ch, "finish_reason", finish_of(j));
        sum.n_gen += j->st.n_gen;
    }
    cJSON_ReplaceItemInObjectCaseSensitive(root, "usage", usage(&sum));
}

static cJSON *ollama_line(const srv_ctx *c, srv_stream_fmt fmt, const char *text, size_t len,
                          const srv_job *final);

static void finished_reply(const srv_ctx *c, api kind, srv_job *const *jobs, int n, srv_reply *r) {
    const srv_job *j = jobs[0];
    if (r->ollama) { /* the whole text in ollama's final object */
        const char *t = j->text ? j->text : "";
        reply_json(r, 200, ollama_line(c, r->ollama, t, strlen(t), j));
        return;
    }
    const char *finish = finish_of(j);
    cJSON *root;
    if (kind == API_GENERATE) {
        root = cJSON_CreateObject();
        add_text(root, "text", j->text);
        cJSON_AddNumberToObject(root, "tokens_generated", j->st.n_gen);
        cJSON_AddNumberToObject(root, "tokens_prompt", j->st.n_prompt);
        cJSON_AddStringToObject(root, "finish_reason", finish);
        cJSON_AddItemToObject(root, "timings", timings(&j->st));
    } else if (kind == API_COMPLETIONS) {
        cJSON *ch = openai_envelope(c, r, "text_completion", &root);
        add_completion_text(ch, j);
        cJSON_AddItemToObject(ch, "logprobs", logprobs_json(c, j));
        cJSON_AddStringToObject(ch, "finish_reason", finish);
        cJSON_AddItemToObject(root, "usage", usage(&j->st));
    } else {
        cJSON *ch = openai_envelope(c, r, "chat.completion", &root);
        add_message(ch, j);
        cJSON_AddItemToObject(ch, "logprobs", logprobs_json(c, j));
        cJSON_AddStringToObject(ch, "finish_reason", finish);
        cJSON_AddItemToObject(root, "usage", usage(&j->st));
    }
    if (n > 1)
        more_choices(c, kind, jobs, n, root);
    reply_json(r, 200, root);
}

/* OpenAI's `n`: how many choices (1..SRV_MAX_CHOICES; /generate: 1). */
static int get_n(const cJSON *req, api kind, int *n, srv_reply *r) {
    double d = 1;
    if (get_num(req, "n", 1, SRV_MAX_CHOICES, 1, &d, r))
        return -1;
    if (d > 1 && kind == API_GENERATE) {
        BAD(r, "'n' is an OpenAI field: /generate makes one text");
        return -1;
    }
    *n = (int)d;
    return 0;
}

/* Choices 1.. of an `n` > 1 request: jobs parsed from the same request,
 * each with the next seed (a request without a seed gets a fresh one per
 * job), queued behind the first. Non-streaming: each ran in turn or beside
 * the others, as the slots allow. */
static int more_jobs(srv_ctx *c, const cJSON *req, api kind, srv_job **jobs, int n, srv_reply *r) {
    int seeded = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(req, "seed"));
    for (int i = 1; i < n; i++) {
        int stream = 0;
        srv_job *j = jobs[i] = srv_job_new(kind == API_CHAT ? SRV_JOB_CHAT : SRV_JOB_GENERATE);
        if (!j) {
            OOM(r);
            return -1;
        }
        if ((kind == API_CHAT ? get_messages(req, j, r) : get_prompt(req, j, r)) ||
            get_gen_params(c, req, kind, j, &stream, r))
            return -1;
        if (seeded)
            j->gp.sampling.seed = jobs[0]->gp.sampling.seed + (uint64_t)i;
        if (submit(c, j, r))
            return -1;
    }
    return 0;
}

/* Cancels and drops jobs[0..n) (an `n` > 1 request that failed part way). */
static void drop_jobs(srv_job **jobs, int n) {
    for (int i = 0; i < n; i++) {
        if (!jobs[i])
            continue;
        pthread_mutex_lock(&jobs[i]->mu);
        jobs[i]->cancel = 1;
        pthread_mutex_unlock(&jobs[i]->mu);
        srv_job_unref(jobs[i]);
    }
}

static void route_generation(srv_ctx *c, const cJSON *req, api kind, srv_reply *r) {
    int n = 1;
    if (get_n(req, kind, &n, r))
        return;
    srv_job *jobs[SRV_MAX_CHOICES] = {0};
    srv_job *j = jobs[0] = srv_job_new(kind == API_CHAT ? SRV_JOB_CHAT : SRV_JOB_GENERATE);
    if (!j) {
        OOM(r);
        return;
    }
    int stream = 0;
    if ((kind == API_CHAT ? get_messages(req, j, r) : get_prompt(req, j, r)) ||
        get_gen_params(c, req, kind, j, &stream, r)) {
        srv_job_unref(j);
        return;
    }
    if (submit(c, j, r) || (n > 1 && more_jobs(c, req, kind, jobs, n, r))) {
        drop_jobs(jobs, n);
        return;
    }
    snprintf(r->id, sizeof r->id, "%s-%lu", kind == API_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long)atomic_fetch_add(&g_next_id, 1));
    r->created = (long)time(NULL);
    if (stream) {
        /* Wait for the first piece (or the end), so a refused prompt is
         * still a plain 4xx rather than an error inside a 200 stream. */
        pthread_mutex_lock(&j->mu);
        wait_job(j, r, 1);
        int failed = j->done && j->rc;
        if (failed)
            reply_err(r, &j->err);
        pthread_mutex_unlock(&j->mu);
        if (failed) {
            drop_jobs(jobs, n);
            return;
        }
        r->status = 200;
        r->stream = j;
        for (int i = 1; i < n; i++) /* the other choices, streamed beside it */
            r->more[r->n_more++] = jobs[i];
        r->fmt = kind == API_GENERATE ? SRV_NDJSON : kind == API_CHAT ? SRV_SSE_CHAT : SRV_SSE_TEXT;
        r->content_type = kind == API_GENERATE ? "application/x-ndjson" : "text/event-stream";
        if (r->ollama) {
            r->fmt = r->ollama;
            r->content_type = "application/x-ndjson";
        }
        return;
    }
    /* every choice done (the first failure answers for the request) */
    int failed = -1;
    for (int i = 0; i < n; i++) {
        wait_done(jobs[i], r);
        if (jobs[i]->rc && failed < 0)
            failed = i;
        pthread_mutex_unlock(&jobs[i]->mu);
    }
    if (failed >= 0)
        reply_err(r, &jobs[failed]->err);
    else
        finished_reply(c, kind, jobs, n, r);
    for (int i = 0; i < n; i++)
        srv_job_unref(jobs[i]);
}

/* ---- ollama's shapes ------------------------------------------------------ */

/* One ollama line: model, created_at, the text (as "response", or as the
 * assistant message's content), done; the last line also the reason and
 * the counts and durations (nanoseconds) of ollama's final object. */
static cJSON *ollama_line(const srv_ctx *c, srv_stream_fmt fmt, const char *text, size_t len,
                          const srv_job *final) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model", c->model_name);
    char when[40];
    srv_rfc3339(time(NULL), when, sizeof when);
    cJSON_AddStringToObject(root, "created_at", when);
    char *t = malloc(len + 1);
    if (t) {
        memcpy(t, text, len);
        t[len] = '\0';
    }
    if (fmt == SRV_OLLAMA_CHAT) {
        cJSON *msg = cJSON_AddObjectToObject(root, "message");
        cJSON_AddStringToObject(msg, "role", "assistant");
        add_text(msg, "content", t);
    } else {
        add_text(root, "response", t);
    }
    free(t);
    cJSON_AddBoolToObject(root, "done", final != NULL);
    if (final) {
        const m40_gen_stats *st = &final->st;
        cJSON_AddStringToObject(root, "done_reason",
                                st->finish == M40_FINISH_STOP ? "stop" : "length");
        /* whole nanoseconds: ollama's clients read integers */
        cJSON_AddNumberToObject(root, "total_duration",
                                floor((st->prefill_ms + st->decode_ms) * 1e6));
        cJSON_AddNumberToObject(root, "load_duration", 0);
        cJSON_AddNumberToObject(root, "prompt_eval_count", st->n_prompt);
        cJSON_AddNumberToObject(root, "prompt_eval_duration", floor(st->prefill_ms * 1e6));
        cJSON_AddNumberToObject(root, "eval_count", st->n_gen);
        cJSON_AddNumberToObject(root, "eval_duration", floor(st->decode_ms * 1e6));
    }
    return root;
}

void srv_route_generation(srv_ctx *c, const cJSON *req, int chat, srv_reply *r) {
    route_generation(c, req, chat ? API_CHAT : API_COMPLETIONS, r);
}

/* ---- streaming chunks --------------------------------------------------- */

static int append(char **out, size_t *len, size_t *cap, const char *a, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t nc = (*len + n + 1) * 2;
        char *p = realloc(*out, nc);
        if (!p)
            return -1;
        *out = p;
        *cap = nc;
    }
    memcpy(*out + *len, a, n);
    *len += n;
    (*out)[*len] = '\0';
    return 0;
}

/* Appends `root` as one NDJSON line or one SSE event, and frees it. */
static int emit(const srv_reply *r, cJSON *root, char **out, size_t *len, size_t *cap) {
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!s)
        return -1;
    int rc;
    if (r->fmt == SRV_NDJSON || r->fmt == SRV_OLLAMA_GEN || r->fmt == SRV_OLLAMA_CHAT)
        rc = append(out, len, cap, s, strlen(s)) || append(out, len, cap, "\n", 1);
    else
        rc = append(out, len, cap, "data: ", 6) || append(out, len, cap, s, strlen(s)) ||
             append(out, len, cap, "\n\n", 2);
    free(s);
    return rc ? -1 : 0;
}

/* One OpenAI chunk: text (or delta content / role) and a finish reason. */
static cJSON *chunk(const srv_ctx *c, const srv_reply *r, const char *role, const char *text,
                    size_t len, const char *finish, cJSON *logprobs) {
    cJSON *root;
    cJSON *ch = openai_envelope(
        c, r, r->fmt == SRV_SSE_CHAT ? "chat.completion.chunk" : "text_completion", &root);
    char *t = malloc(len + 1);
    if (t) {
        memcpy(t, text, len);
        t[len] = '\0';
    }
    if (r->fmt == SRV_SSE_CHAT) {
        cJSON *d = cJSON_AddObjectToObject(ch, "delta");
        if (role)
            cJSON_AddStringToObject(d, "role", role);
        if (len || role)
            add_text(d, "content", t);
    } else {
        add_text(ch, "text", t);
    }
    cJSON_AddItemToObject(ch, "logprobs", logprobs ? logprobs : cJSON_CreateNull());
    free(t);
    if (finish)
        cJSON_AddStringToObject(ch, "finish_reason", finish);
    else
        cJSON_AddNullToObject(ch, "finish_reason");
    return root;
}

int srv_stream_format(const srv_ctx *c, const srv_reply *r, const srv_job *j, const char *text,
                      size_t len, size_t *probs_sent, int first, int final, int last, char **out,
                      size_t *out_len, size_t *out_cap) {
    if (first && r->fmt == SRV_SSE_CHAT &&
        emit(r, chunk(c, r, "assistant", "", 0, NULL, NULL), out, out_len, out_cap))
        return -1;
    /* the tokens sampled since the last chunk, sent with this one's text
     * (a token's text may come a chunk later: held for a whole character
     * or a possible stop string) */
    cJSON *lp = NULL;
    if (j->logprobs_api && r->fmt != SRV_NDJSON && (len || final) && *probs_sent < j->n_probs) {
        lp = logprobs_range(c, j, *probs_sent, j->n_probs);
        *probs_sent = j->n_probs;
    }
    if (len && (r->fmt == SRV_OLLAMA_GEN || r->fmt == SRV_OLLAMA_CHAT)) {
        cJSON_Delete(lp);
        if (emit(r, ollama_line(c, r->fmt, text, len, NULL), out, out_len, out_cap))
            return -1;
        len = 0, lp = NULL;
    }
    if (len || lp) {
        cJSON *root;
        if (r->fmt == SRV_NDJSON) {
            root = cJSON_CreateObject();
            char *t = malloc(len + 1);
            if (!t) {
                cJSON_Delete(root);
                return -1;
            }
            memcpy(t, text, len);
            t[len] = '\0';
            add_text(root, "text", t);
            free(t);
        } else {
            root = chunk(c, r, NULL, text, len, NULL, lp);
            lp = NULL;
        }
        cJSON_Delete(lp);
        if (emit(r, root, out, out_len, out_cap))
            return -1;
    }
    if (!final)
        return 0;
    if ((r->fmt == SRV_OLLAMA_GEN || r->fmt == SRV_OLLAMA_CHAT) && j->rc)
        return emit(r, srv_ollama_error(j->err.msg), out, out_len, out_cap);
    if (r->fmt == SRV_OLLAMA_GEN || r->fmt == SRV_OLLAMA_CHAT)
        return emit(r, ollama_line(c, r->fmt, "", 0, j), out, out_len, out_cap);
    if (j->rc) {
        const struct kind_http *h = kind_http(j->err.kind);
        char *e = srv_error_body(j->err.msg, h->type, h->code);
        cJSON *root = e ? cJSON_Parse(e) : NULL;
        free(e);
        if (root && emit(r, root, out, out_len, out_cap))
            return -1;
    } else if (r->fmt == SRV_NDJSON) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "finish_reason", m40_finish_name(j->st.finish));
        cJSON_AddNumberToObject(root, "tokens_generated", j->st.n_gen);
        cJSON_AddNumberToObject(root, "tokens_prompt", j->st.n_prompt);
        cJSON_AddItemToObject(root, "timings", timings(&j->st));
        if (emit(r, root, out, out_len, out_cap))
            return -1;
    } else {
        if (j->calls) { /* the calls in one delta, each whole */
            cJSON *root = chunk(c, r, NULL, "", 0, NULL, NULL);
            cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "choices"), 0);
            cJSON *calls = cJSON_Duplicate(j->calls, 1);
            cJSON *call;
            int k = 0;
            cJSON_ArrayForEach(call, calls) {
                cJSON_AddNumberToObject(call, "index", k++);
            }
            cJSON_AddItemToObject(cJSON_GetObjectItemCaseSensitive(ch, "delta"), "tool_calls",
                                  calls);
            if (emit(r, root, out, out_len, out_cap))
                return -1;
        }
        cJSON *root = chunk(c, r, NULL, "", 0, finish_of(j), NULL);
        cJSON_AddItemToObject(root, "usage", usage(&j->st));
        if (emit(r, root, out, out_len, out_cap))
            return -1;
    }
    if (last && r->fmt != SRV_NDJSON && append(out, out_len, out_cap, "data: [DONE]\n\n", 14))
        return -1;
    return 0;
}

/* ---- tokenizer and info routes ------------------------------------------ */

static void route_tokenize(srv_ctx *c, const cJSON *req, srv_reply *r) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, "content");
    if (!cJSON_IsString(v)) {
        BAD(r, "'content' must be a string");
        return;
    }
    srv_job *j = srv_job_new(SRV_JOB_TOKENIZE);
    if (!j || !(j->prompt = strdup(v->valuestring))) {
        srv_job_unref(j);
        OOM(r);
        return;
    }
    j->prompt_len = strlen(j->prompt);
    if (get_bool(req, "add_special", &j->add_special, r) ||
        get_bool(req, "parse_special", &j->parse_special, r) || submit(c, j, r)) {
        srv_job_unref(j);
        return;
    }
    wait_done(j, r);
    if (j->rc) {
        reply_err(r, &j->err);
    } else {
        cJSON *root = cJSON_CreateObject();
        cJSON *arr = cJSON_AddArrayToObject(root, "tokens");
        for (size_t i = 0; i < j->ids.n; i++)
            cJSON_AddItemToArray(arr, cJSON_CreateNumber(j->ids.ids[i]));
        reply_json(r, 200, root);
    }
    pthread_mutex_unlock(&j->mu);
    srv_job_unref(j);
}

static void route_detokenize(srv_ctx *c, const cJSON *req, srv_reply *r) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, "tokens");
    if (!cJSON_IsArray(v)) {
        BAD(r, "'tokens' must be an array of token ids");
        return;
    }
    srv_job *j = srv_job_new(SRV_JOB_DETOKENIZE);
    if (!j) {
        OOM(r);
        return;
    }
    size_t n_vocab = m40_tokenizer_n_tokens(m40_engine_tokenizer(c->engine));
    const cJSON *t;
    cJSON_ArrayForEach(t, v) {
        double d = cJSON_IsNumber(t) ? t->valuedouble : -1;
        if (d < 0 || d >= (double)n_vocab || d != floor(d)) {
            BAD(r, "'tokens' must hold token ids in [0, %zu)", n_vocab);
            srv_job_unref(j);
            return;
        }
        m40_err err;
        if (m40_tokens_push(&j->ids, (m40_token)d, &err)) {
            OOM(r);
            srv_job_unref(j);
            return;
        }
    }
    if (submit(c, j, r)) {
        srv_job_unref(j);
        return;
    }
    wait_done(j, r);
    if (j->rc) {
        reply_err(r, &j->err);
    } else {
        cJSON *root = cJSON_CreateObject();
        add_text(root, "content", j->text);
        reply_json(r, 200, root);
    }
    pthread_mutex_unlock(&j->mu);
    srv_job_unref(j);
}

static void route_models(srv_ctx *c, srv_reply *r) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(root, "data");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddItemToArray(data, m);
    cJSON_AddStringToObject(m, "id", c->model_name);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)time(NULL));
    cJSON_AddStringToObject(m, "owned_by", "m40-llm");
    cJSON *meta = cJSON_AddObjectToObject(m, "meta");
    cJSON_AddNumberToObject(meta, "n_ctx", c->n_ctx);
    reply_json(r, 200, root);
}

static void route_health(srv_ctx *c, srv_reply *r) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "status", c->ready ? "ok" : "loading");
    reply_json(r, c->ready ? 200 : 503, root);
}

static void route_metrics(srv_ctx *c, srv_reply *r) {
    int depth, busy;
    srv_queue_load(&c->queue, &depth, &busy);
    m40_step_stats steps = m40_engine_step_stats(c->engine);
    m40_engine_store_stats store = m40_engine_store_stats_get(c->engine);
    r->body = srv_metrics_render(c->metrics, depth, busy, &steps, &store);
    r->status = r->body ? 200 : 500;
    r->content_type = "text/plain; version=0.0.4";
}

/* ---- dispatch ----------------------------------------------------------- */

static void route_post(srv_ctx *c, const char *path, const char *body, size_t body_len,
                       srv_reply *r) {
    long bad = body ? m40_utf8_invalid_at(body, body_len) : -1;
    if (bad >= 0) {
        BAD(r, "the request body is not valid UTF-8 (byte %ld)", bad);
        return;
    }
    if (body && has_nul_escape(body, body_len)) {
        BAD(r, "a string in the request holds \\u0000 (NUL), which m40-llm does not take");
        return;
    }
    cJSON *req = cJSON_ParseWithLength(body ? body : "", body_len);
    if (!req || !cJSON_IsObject(req)) {
        cJSON_Delete(req);
        BAD(r, "the request body must be a JSON object");
        return;
    }
    if (!strcmp(path, "/generate") || !strcmp(path, "/completion"))
        route_generation(c, req, API_GENERATE, r);
    else if (!strcmp(path, "/v1/completions"))
        route_generation(c, req, API_COMPLETIONS, r);
    else if (!strcmp(path, "/v1/chat/completions"))
        route_generation(c, req, API_CHAT, r);
    else if (!strcmp(path, "/tokenize"))
        route_tokenize(c, req, r);
    else
        route_detokenize(c, req, r);
    cJSON_Delete(req);
}

static int is_post_path(const char *p) {
    return !strcmp(p, "/generate") || !strcmp(p, "/completion") || !strcmp(p, "/v1/completions") ||
           !strcmp(p, "/v1/chat/completions") || !strcmp(p, "/tokenize") ||
           !strcmp(p, "/detokenize");
}

static int is_get_path(const char *p) {
    return !strcmp(p, "/health") || !strcmp(p, "/v1/models") || !strcmp(p, "/metrics") ||
           srv_is_page(p);
}

int srv_is_page(const char *p) {
    return !strcmp(p, "/") || !strcmp(p, "/index.html");
}

/* The chat page (chat_page.html, embedded at build time). */
extern const char m40_chat_page[];
extern const unsigned long m40_chat_page_len;

static void route_page(srv_reply *r) {
    if (!(r->body = malloc(m40_chat_page_len + 1))) {
        OOM(r);
        return;
    }
    memcpy(r->body, m40_chat_page, m40_chat_page_len + 1);
    r->status = 200;
    r->content_type = "text/html; charset=utf-8";
}

void srv_route(srv_ctx *c, const char *method, const char *path, const char *body, size_t body_len,
               srv_reply *r) {
    int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (!strncmp(path, "/api/", 5) && srv_route_ollama(c, method, path, body, body_len, r))
        return;
    if (is_post_path(path) && !strcmp(method, "POST"))
        route_post(c, path, body, body_len, r);
    else if (is_get_path(path) && is_get) {
        if (!strcmp(path, "/health"))
            route_health(c, r);
        else if (srv_is_page(path))
            route_page(r);
        else if (!strcmp(path, "/v1/models"))
            route_models(c, r);
        else
            route_metrics(c, r);
    } else if (is_post_path(path) || is_get_path(path)) {
        reply_url_error(r, 405, "method_not_allowed", "%s is not allowed on %s", method, path);
        r->allow = is_post_path(path) ? "POST, OPTIONS" : "GET, HEAD, OPTIONS";
    } else
        reply_url_error(r, 404, "not_found", "no endpoint %s", path);
}
