/* ollama.c - the ollama API's model endpoints on the same server (issue 20):
 *
 *   GET  /api/version   {"version"}: m40-llm's
 *   GET  /api/tags      {"models": [the served model]}
 *   POST /api/show      {"model"} -> details, model_info, template
 *   GET  /api/ps        {"models": [the served model, loaded]}
 *
 *   POST /api/generate  {"model", "prompt", "system", "raw", "stream", "options"}
 *   POST /api/chat      {"model", "messages", "stream", "options"}
 *
 * Clients that speak ollama (its Python client, chat front ends) ask the
 * model endpoints first to find what they can run. The server holds one
 * model, so every name refers to it (the one listed is the file's name).
 * Generation is translated into the OpenAI-shaped request routes.c
 * already runs (the same validation, queue and sampling), answered in
 * ollama's shapes: NDJSON lines when streaming (ollama streams unless
 * "stream": false), one final object otherwise. Errors are ollama's
 * shape, {"error": "message"}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "buildinfo.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "quant/ggml_types.h"
#include "server/server_internal.h"

static void reply(srv_reply *r, unsigned status, cJSON *root) {
    r->status = status;
    r->body = root ? cJSON_PrintUnformatted(root) : NULL;
    r->content_type = "application/json";
    cJSON_Delete(root);
}

static void reply_error(srv_reply *r, unsigned status, const char *msg) {
    reply(r, status, srv_ollama_error(msg));
}

/* "135.0M", "7.2B": ollama's parameter_size. */
static void param_size(uint64_t n, char *out, size_t cap) {
    if (n >= 1000000000ull)
        snprintf(out, cap, "%.1fB", (double)n / 1e9);
    else
        snprintf(out, cap, "%.1fM", (double)n / 1e6);
}

/* The type most of the model's matrices have, in capitals ("Q4_K"). */
static void quant_level(const m40_gguf *g, char *out, size_t cap) {
    snprintf(out, cap, "%s", m40_ggml_type_name(m40_gguf_main_type(g)));
    for (char *p = out; *p; p++)
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
}

static cJSON *details(const m40_model *m) {
    char size[32], quant[32];
    param_size(m->n_params, size, sizeof size);
    quant_level(m->gguf, quant, sizeof quant);
    const char *arch = m40_arch_name(m->cfg.arch);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "parent_model", "");
    cJSON_AddStringToObject(d, "format", "gguf");
    cJSON_AddStringToObject(d, "family", arch);
    cJSON *fam = cJSON_AddArrayToObject(d, "families");
    cJSON_AddItemToArray(fam, cJSON_CreateString(arch));
    cJSON_AddStringToObject(d, "parameter_size", size);
    cJSON_AddStringToObject(d, "quantization_level", quant);
    return d;
}

void srv_rfc3339(time_t t, char *out, size_t cap) {
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* One model entry of /api/tags and /api/ps: a digest of what identifies
 * the file here (ollama's is a SHA-256 of the blob; clients only show it). */
static cJSON *model_entry(const srv_ctx *c, int loaded) {
    const m40_model *m = m40_engine_model(c->engine);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", c->model_name);
    cJSON_AddStringToObject(e, "model", c->model_name);
    char when[40], digest[40];
    srv_rfc3339(loaded ? time(NULL) + 365L * 24 * 3600 : c->started, when, sizeof when);
    cJSON_AddStringToObject(e, loaded ? "expires_at" : "modified_at", when);
    cJSON_AddNumberToObject(e, "size", (double)m->file_bytes);
    uint64_t h = 0xCBF29CE484222325ull ^ m->file_bytes ^ m->n_params;
    for (const char *p = c->model_name; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001B3ull;
    snprintf(digest, sizeof digest, "%016llx", (unsigned long long)h);
    cJSON_AddStringToObject(e, "digest", digest);
    cJSON_AddItemToObject(e, "details", details(m));
    if (loaded) {
        cJSON_AddNumberToObject(e, "size_vram", 0);
        cJSON_AddNumberToObject(e, "context_length", c->n_ctx);
    }
    return e;
}

static void route_tags(const srv_ctx *c, srv_reply *r, int loaded) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "models"), model_entry(c, loaded));
    reply(r, 200, root);
}

static void route_show(const srv_ctx *c, const char *body, size_t len, srv_reply *r) {
    cJSON *req = cJSON_ParseWithLength(body ? body : "", len);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(req, "model");
    if (!cJSON_IsString(name))
        name = cJSON_GetObjectItemCaseSensitive(req, "name"); /* the older field */
    if (!cJSON_IsObject(req) || !cJSON_IsString(name)) {
        cJSON_Delete(req);
        reply_error(r, 400, "the body must be {\"model\": NAME}");
        return;
    }
    cJSON_Delete(req);
    const m40_model *m = m40_engine_model(c->engine);
    const m40_model_config *cfg = &m->cfg;
    const char *arch = m40_arch_name(cfg->arch);
    cJSON *root = cJSON_CreateObject();
    char line[300], key[96];
    snprintf(line, sizeof line, "# m40-llm serves %s\nFROM %s\n", c->model_name, c->model_name);
    cJSON_AddStringToObject(root, "modelfile", line);
    cJSON_AddStringToObject(root, "parameters", "");
    m40_gguf_str tmpl = {"", 0};
    if (m40_gguf_find_kv(m->gguf, "tokenizer.chat_template") >= 0)
        m40_gguf_get_str(m->gguf, "tokenizer.chat_template", &tmpl, NULL);
    cJSON *t = cJSON_CreateString("");
    if (t && tmpl.len) {
        char *s = malloc(tmpl.len + 1);
        if (s) {
            memcpy(s, tmpl.ptr, tmpl.len);
            s[tmpl.len] = '\0';
            cJSON_SetValuestring(t, s);
            free(s);
        }
    }
    cJSON_AddItemToObject(root, "template", t);
    cJSON_AddItemToObject(root, "details", details(m));
    cJSON *info = cJSON_AddObjectToObject(root, "model_info");
    cJSON_AddStringToObject(info, "general.architecture", arch);
    cJSON_AddNumberToObject(info, "general.parameter_count", (double)m->n_params);
    snprintf(key, sizeof key, "%s.context_length", arch);
    cJSON_AddNumberToObject(info, key, cfg->n_ctx_train);
    snprintf(key, sizeof key, "%s.embedding_length", arch);
    cJSON_AddNumberToObject(info, key, cfg->n_embd);
    snprintf(key, sizeof key, "%s.block_count", arch);
    cJSON_AddNumberToObject(info, key, cfg->n_layer);
    cJSON *caps = cJSON_AddArrayToObject(root, "capabilities");
    cJSON_AddItemToArray(caps, cJSON_CreateString("completion"));
    char when[40];
    srv_rfc3339(c->started, when, sizeof when);
    cJSON_AddStringToObject(root, "modified_at", when);
    reply(r, 200, root);
}

/* ollama's options -> the OpenAI-shaped request's fields (those ollama has
 * and m40-llm samples with; the rest, such as num_thread or mirostat, are
 * ignored as ollama ignores what a runner lacks). */
static const char *const k_options[][2] = {
    {"temperature", "temperature"},
    {"top_k", "top_k"},
    {"top_p", "top_p"},
    {"min_p", "min_p"},
    {"repeat_penalty", "repeat_penalty"},
    {"presence_penalty", "presence_penalty"},
    {"frequency_penalty", "frequency_penalty"},
    {"seed", "seed"},
    {"num_predict", "max_tokens"},
    {"stop", "stop"},
};

/* The OpenAI-shaped request for an ollama generate or chat body, or NULL
 * after filling r with the error. */
static cJSON *translate(const srv_ctx *c, const cJSON *in, int chat, srv_reply *r) {
    if (!cJSON_IsObject(in)) {
        reply_error(r, 400, "the request body must be a JSON object");
        return NULL;
    }
    static const char *const unsupported[] = {"images",  "tools",  "template",
                                              "context", "suffix", "think"};
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(in, unsupported[i]);
        if (v && !cJSON_IsNull(v) && !cJSON_IsFalse(v) &&
            !(cJSON_IsString(v) && !*v->valuestring) &&
            !(cJSON_IsArray(v) && cJSON_GetArraySize(v) == 0)) {
            char msg[96];
            snprintf(msg, sizeof msg, "'%s' is not supported by this server yet", unsupported[i]);
            reply_error(r, 400, msg);
            return NULL;
        }
    }
    cJSON *out = cJSON_CreateObject();
    const cJSON *stream = cJSON_GetObjectItemCaseSensitive(in, "stream");
    cJSON_AddBoolToObject(out, "stream", !cJSON_IsFalse(stream)); /* ollama streams by default */
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive(in, "options");
    if (opts && !cJSON_IsNull(opts) && !cJSON_IsObject(opts)) {
        cJSON_Delete(out);
        reply_error(r, 400, "'options' must be an object");
        return NULL;
    }
    for (size_t i = 0; opts && i < sizeof k_options / sizeof k_options[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(opts, k_options[i][0]);
        if (!v || cJSON_IsNull(v))
            continue;
        cJSON *copy = cJSON_Duplicate(v, 1);
        /* num_predict: -1 and -2 (fill the context) are both "no limit" */
        if (!strcmp(k_options[i][0], "num_predict") && cJSON_IsNumber(v) && v->valuedouble < 0)
            cJSON_SetNumberValue(copy, -1);
        cJSON_AddItemToObject(out, k_options[i][1], copy);
    }
    /* llama.cpp's cache_prompt passes through (ollama keeps its cache
     * without asking) */
    const cJSON *cp = cJSON_GetObjectItemCaseSensitive(in, "cache_prompt");
    if (cp)
        cJSON_AddItemToObject(out, "cache_prompt", cJSON_Duplicate(cp, 1));
    /* format: "json" (any JSON object, as ollama's json grammar) or a JSON
     * schema: OpenAI's response_format (docs/grammar.md) */
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(in, "format");
    if (cJSON_IsString(format) && !strcmp(format->valuestring, "json")) {
        cJSON *rf = cJSON_AddObjectToObject(out, "response_format");
        cJSON_AddStringToObject(rf, "type", "json_object");
    } else if (cJSON_IsObject(format)) {
        cJSON *rf = cJSON_AddObjectToObject(out, "response_format");
        cJSON_AddStringToObject(rf, "type", "json_schema");
        cJSON *w = cJSON_AddObjectToObject(rf, "json_schema");
        cJSON_AddItemToObject(w, "schema", cJSON_Duplicate(format, 1));
    } else if (format && !cJSON_IsNull(format) &&
               !(cJSON_IsString(format) && !*format->valuestring)) {
        cJSON_Delete(out);
        reply_error(r, 400, "'format' must be \"json\" or a JSON schema object");
        return NULL;
    }
    const cJSON *nctx = opts ? cJSON_GetObjectItemCaseSensitive(opts, "num_ctx") : NULL;
    if (cJSON_IsNumber(nctx) && nctx->valuedouble > c->n_ctx) {
        char msg[128];
        snprintf(msg, sizeof msg, "num_ctx %g is more than the server's context (%d, -c)",
                 nctx->valuedouble, c->n_ctx);
        cJSON_Delete(out);
        reply_error(r, 400, msg);
        return NULL;
    }
    if (chat) {
        const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(in, "messages");
        if (msgs)
            cJSON_AddItemToObject(out, "messages", cJSON_Duplicate(msgs, 1));
        return out;
    }
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(in, "prompt");
    const cJSON *system = cJSON_GetObjectItemCaseSensitive(in, "system");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(in, "raw"))) {
        if (prompt)
            cJSON_AddItemToObject(out, "prompt", cJSON_Duplicate(prompt, 1));
        return out;
    }
    /* not raw: the prompt goes through the model's chat template as the
     * user's turn, after the system prompt if any (ollama's default) */
    cJSON *msgs = cJSON_AddArrayToObject(out, "messages");
    if (cJSON_IsString(system) && *system->valuestring) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "system");
        cJSON_AddItemToObject(m, "content", cJSON_Duplicate(system, 1));
        cJSON_AddItemToArray(msgs, m);
    }
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddItemToObject(m, "content", prompt ? cJSON_Duplicate(prompt, 1) : cJSON_CreateNull());
    cJSON_AddItemToArray(msgs, m);
    return out;
}

/* /api/generate and /api/chat: translated, then run by routes.c in
 * ollama's shapes. */
static void route_generate(srv_ctx *c, const char *body, size_t len, int chat, srv_reply *r) {
    cJSON *in = cJSON_ParseWithLength(body ? body : "", len);
    cJSON *req = translate(c, in, chat, r);
    cJSON_Delete(in);
    if (!req)
        return;
    /* raw /api/generate is a plain completion; the rest are chats */
    int as_chat = chat || cJSON_GetObjectItemCaseSensitive(req, "messages") != NULL;
    r->ollama = chat ? SRV_OLLAMA_CHAT : SRV_OLLAMA_GEN;
    srv_route_generation(c, req, as_chat, r);
    cJSON_Delete(req);
}

int srv_route_ollama(srv_ctx *c, const char *method, const char *path, const char *body, size_t len,
                     srv_reply *r) {
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
    if (!strcmp(path, "/api/version") && get) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "version", m40_version);
        reply(r, 200, root);
    } else if (!strcmp(path, "/api/tags") && get) {
        route_tags(c, r, 0);
    } else if (!strcmp(path, "/api/ps") && get) {
        route_tags(c, r, 1);
    } else if (!strcmp(path, "/api/show") && post) {
        route_show(c, body, len, r);
    } else if ((!strcmp(path, "/api/generate") || !strcmp(path, "/api/chat")) && post) {
        route_generate(c, body, len, !strcmp(path, "/api/chat"), r);
    } else if (!strcmp(path, "/api/version") || !strcmp(path, "/api/tags") ||
               !strcmp(path, "/api/ps")) {
        reply_error(r, 405, "method not allowed");
        r->allow = "GET, HEAD";
    } else if (!strcmp(path, "/api/show") || !strcmp(path, "/api/generate") ||
               !strcmp(path, "/api/chat")) {
        reply_error(r, 405, "method not allowed");
        r->allow = "POST";
    } else {
        return 0;
    }
    return 1;
}
