/* tools.c - see tools.h. */
#include "chat/tools.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/strbuf.h"

static const char k_hermes_open[] = "<tool_call>", k_hermes_close[] = "</tool_call>";
static const char k_mistral_open[] = "[TOOL_CALLS]", k_python_tag[] = "<|python_tag|>";

void m40_chat_tools_of(const char *src, int *renders_tools, m40_tool_format *format) {
    *renders_tools = src && strstr(src, "tools") && strstr(src, "tool_calls");
    *format = M40_TOOLS_HERMES;
    if (!*renders_tools || strstr(src, k_hermes_open))
        return;
    if (strstr(src, k_mistral_open))
        *format = M40_TOOLS_MISTRAL;
    else if (strstr(src, k_python_tag) || strstr(src, "ipython"))
        *format = M40_TOOLS_LLAMA3;
}

m40_tool_wrap m40_chat_tools_wrap(m40_tool_format f) {
    m40_tool_wrap w = {"<tool_call>\n", "\n</tool_call>\n<tool_call>\n", "\n</tool_call>",
                       "arguments"};
    if (f == M40_TOOLS_LLAMA3)
        w = (m40_tool_wrap){"", "; ", "", "parameters"};
    else if (f == M40_TOOLS_MISTRAL)
        w = (m40_tool_wrap){"[", ", ", "]", "arguments"};
    return w;
}

/* ---- preparing the messages ---------------------------------------------- */

/* A message's content as one string: a string as is, text parts joined,
 * null or absent as "". */
static char *content_text(const cJSON *m) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
    m40_strbuf b = {0};
    m40_strbuf_add(&b, "", 0);
    if (cJSON_IsString(c)) {
        m40_strbuf_str(&b, c->valuestring);
    } else if (cJSON_IsArray(c)) {
        const cJSON *part;
        cJSON_ArrayForEach(part, c) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
            if (cJSON_IsString(t))
                m40_strbuf_str(&b, t->valuestring);
        }
    }
    return b.oom ? (free(b.s), NULL) : b.s;
}

/* A call's arguments as JSON text (given as a string of JSON, or as a
 * value). */
static char *args_text(const cJSON *fn) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
    if (cJSON_IsString(a))
        return strdup(a->valuestring);
    return a ? cJSON_PrintUnformatted(a) : strdup("{}");
}

static int set_string(cJSON *o, const char *key, const char *v) {
    cJSON *s = cJSON_CreateString(v);
    if (!s)
        return -1;
    if (cJSON_GetObjectItemCaseSensitive(o, key))
        cJSON_ReplaceItemInObjectCaseSensitive(o, key, s);
    else
        cJSON_AddItemToObject(o, key, s);
    return 0;
}

/* The system text that describes the tools to a template that does not. */
static void describe_tools(m40_strbuf *b, const cJSON *tools) {
    m40_strbuf_str(b,
                   "# Tools\n\nYou can call functions to help with the request. Their signatures, "
                   "one JSON object a line, are between <tools> and </tools>:\n<tools>\n");
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        char *j = cJSON_PrintUnformatted(t);
        if (!j) {
            b->oom = 1;
            return;
        }
        m40_strbuf_str(b, j);
        m40_strbuf_str(b, "\n");
        free(j);
    }
    m40_strbuf_str(b,
                   "</tools>\n\nTo call a function, answer with its name and arguments as a JSON "
                   "object between <tool_call> and </tool_call> tags:\n<tool_call>\n{\"name\": "
                   "\"function name\", \"arguments\": {\"argument\": \"value\"}}\n</tool_call>");
}

static int prepare_one(const cJSON *m, int renders, cJSON *out) {
    cJSON *c = cJSON_Duplicate(m, 1);
    if (!c)
        return -1;
    cJSON_AddItemToArray(out, c);
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
    char *text = content_text(m);
    if (!text || set_string(c, "content", text)) {
        free(text);
        return -1;
    }
    int is_tool = cJSON_IsString(role) && !strcmp(role->valuestring, "tool");
    int rc = 0;
    if (renders) {
        /* arguments as objects, as transformers passes them to templates */
        cJSON *cc = cJSON_GetObjectItemCaseSensitive(c, "tool_calls");
        cJSON *call;
        cJSON_ArrayForEach(call, cc) {
            cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
            cJSON *a = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
            cJSON *parsed = cJSON_IsString(a) ? cJSON_Parse(a->valuestring) : NULL;
            if (parsed)
                cJSON_ReplaceItemInObjectCaseSensitive(fn, "arguments", parsed);
        }
    } else if (is_tool) {
        m40_strbuf b = {0};
        m40_strbuf_str(&b, "<tool_response>\n");
        m40_strbuf_str(&b, text);
        m40_strbuf_str(&b, "\n</tool_response>");
        rc = b.oom || set_string(c, "role", "user") || set_string(c, "content", b.s) ? -1 : 0;
        free(b.s);
    } else if (cJSON_IsArray(calls) && cJSON_GetArraySize(calls) > 0) {
        m40_strbuf b = {0};
        m40_strbuf_str(&b, text);
        const cJSON *call;
        cJSON_ArrayForEach(call, calls) {
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
            cJSON *ns = cJSON_CreateString(cJSON_IsString(name) ? name->valuestring : "");
            char *nj = ns ? cJSON_PrintUnformatted(ns) : NULL;
            char *args = args_text(fn);
            cJSON_Delete(ns);
            if (!nj || !args) {
                b.oom = 1;
            } else {
                m40_strbuf_str(&b,
                               b.len ? "\n<tool_call>\n{\"name\": " : "<tool_call>\n{\"name\": ");
                m40_strbuf_str(&b, nj);
                m40_strbuf_str(&b, ", \"arguments\": ");
                m40_strbuf_str(&b, args);
                m40_strbuf_str(&b, "}\n</tool_call>");
            }
            free(nj);
            free(args);
        }
        rc = b.oom || set_string(c, "content", b.s) ? -1 : 0;
        cJSON_DeleteItemFromObjectCaseSensitive(c, "tool_calls");
        free(b.s);
    }
    free(text);
    return rc;
}

int m40_chat_tools_prepare(const cJSON *messages, const cJSON *tools, int renders_tools,
                           cJSON **out, m40_err *err) {
    *out = cJSON_CreateArray();
    int rc = *out ? 0 : -1;
    const cJSON *first = cJSON_GetArrayItem(messages, 0);
    const cJSON *role0 = cJSON_GetObjectItemCaseSensitive(first, "role");
    int has_system = cJSON_IsString(role0) && !strcmp(role0->valuestring, "system");
    int describe = !renders_tools && cJSON_GetArraySize(tools) > 0;
    if (rc == 0 && describe && !has_system) {
        cJSON *sys = cJSON_CreateObject();
        if (!sys || !cJSON_AddStringToObject(sys, "role", "system") ||
            !cJSON_AddStringToObject(sys, "content", ""))
            rc = -1;
        else
            cJSON_AddItemToArray(*out, sys);
        if (rc)
            cJSON_Delete(sys);
    }
    const cJSON *m;
    cJSON_ArrayForEach(m, messages) {
        if (rc == 0)
            rc = prepare_one(m, renders_tools, *out);
    }
    if (rc == 0 && describe) { /* the tools after the system message's own text */
        cJSON *sys = cJSON_GetArrayItem(*out, 0);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(sys, "content");
        m40_strbuf b = {0};
        if (cJSON_IsString(c) && *c->valuestring) {
            m40_strbuf_str(&b, c->valuestring);
            m40_strbuf_str(&b, "\n\n");
        }
        describe_tools(&b, tools);
        rc = b.oom || set_string(sys, "content", b.s) ? -1 : 0;
        free(b.s);
    }
    if (rc) {
        cJSON_Delete(*out);
        *out = NULL;
        return m40_errf(err, "chat tools: out of memory");
    }
    return 0;
}

/* ---- reading calls from a reply ------------------------------------------ */

/* A call in OpenAI's shape from a parsed {"name", "arguments"/"parameters"}
 * object, or NULL when it is not one. Its id hashes the call and its index:
 * the same reply gives the same ids. */
static cJSON *openai_call(const cJSON *o, int index) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(o, "arguments");
    if (!args)
        args = cJSON_GetObjectItemCaseSensitive(o, "parameters");
    if (!cJSON_IsObject(o) || !cJSON_IsString(name) || !*name->valuestring)
        return NULL;
    char *a = cJSON_IsString(args) ? strdup(args->valuestring)
              : args               ? cJSON_PrintUnformatted(args)
                                   : strdup("{}");
    if (!a)
        return NULL;
    uint64_t h = 1469598103934665603ull ^ (uint64_t)index;
    for (const char *p = name->valuestring; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    for (const char *p = a; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    char id[32];
    snprintf(id, sizeof id, "call_%016llx", (unsigned long long)h);
    cJSON *c = cJSON_CreateObject(), *fn = cJSON_CreateObject();
    if (!c || !fn) {
        cJSON_Delete(c);
        cJSON_Delete(fn);
        free(a);
        return NULL;
    }
    cJSON_AddStringToObject(c, "id", id);
    cJSON_AddStringToObject(c, "type", "function");
    cJSON_AddStringToObject(fn, "name", name->valuestring);
    cJSON_AddStringToObject(fn, "arguments", a);
    cJSON_AddItemToObject(c, "function", fn);
    free(a);
    return c;
}

static const char *skip_blanks(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r'))
        p++;
    return p;
}

/* Adds the call parsed from [p, end) (one JSON object, blanks around it) to
 * calls; 0 when it is one. */
static int take_call(const char *p, const char *end, cJSON *calls) {
    p = skip_blanks(p, end);
    const char *stop = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(p, (size_t)(end - p), &stop, 0);
    cJSON *c =
        o && skip_blanks(stop, end) == end ? openai_call(o, cJSON_GetArraySize(calls)) : NULL;
    cJSON_Delete(o);
    if (!c)
        return -1;
    cJSON_AddItemToArray(calls, c);
    return 0;
}

static void hermes(const char *text, size_t len, m40_strbuf *content, cJSON *calls) {
    const char *p = text, *end = text + len;
    const size_t ol = sizeof k_hermes_open - 1, cl = sizeof k_hermes_close - 1;
    for (;;) {
        const char *open = memmem(p, (size_t)(end - p), k_hermes_open, ol);
        if (!open) {
            m40_strbuf_add(content, p, (size_t)(end - p));
            return;
        }
        m40_strbuf_add(content, p, (size_t)(open - p));
        const char *body = open + ol;
        const char *close = memmem(body, (size_t)(end - body), k_hermes_close, cl);
        const char *body_end = close ? close : end;
        const char *next = close ? close + cl : end;
        if (take_call(body, body_end, calls))
            m40_strbuf_add(content, open, (size_t)(next - open)); /* not a call: text */
        p = next;
    }
}

static void llama3(const char *text, size_t len, m40_strbuf *content, cJSON *calls) {
    const char *end = text + len, *p = skip_blanks(text, end);
    const size_t tl = sizeof k_python_tag - 1;
    if ((size_t)(end - p) >= tl && !memcmp(p, k_python_tag, tl))
        p = skip_blanks(p + tl, end);
    /* one or more objects, separated by ';' or blanks */
    int n0 = cJSON_GetArraySize(calls);
    while (p < end && *p == '{') {
        const char *stop = NULL;
        cJSON *o = cJSON_ParseWithLengthOpts(p, (size_t)(end - p), &stop, 0);
        cJSON *c = o ? openai_call(o, cJSON_GetArraySize(calls)) : NULL;
        cJSON_Delete(o);
        if (!c)
            break;
        cJSON_AddItemToArray(calls, c);
        p = skip_blanks(stop, end);
        if (p < end && *p == ';')
            p = skip_blanks(p + 1, end);
    }
    if (p == end && cJSON_GetArraySize(calls) > n0)
        return;
    while (cJSON_GetArraySize(calls) > n0) /* not all calls: all text */
        cJSON_DeleteItemFromArray(calls, n0);
    m40_strbuf_add(content, text, len);
}

static void mistral(const char *text, size_t len, m40_strbuf *content, cJSON *calls) {
    const char *end = text + len;
    const size_t ml = sizeof k_mistral_open - 1;
    const char *at = memmem(text, len, k_mistral_open, ml), *list = NULL;
    if (at) {
        list = skip_blanks(at + ml, end);
    } else {
        const char *p = skip_blanks(text, end);
        if (end - p >= 2 && p[0] == '[' && skip_blanks(p + 1, end) < end &&
            *skip_blanks(p + 1, end) == '{')
            at = text, list = p;
    }
    cJSON *arr = list ? cJSON_ParseWithLength(list, (size_t)(end - list)) : NULL;
    int ok = cJSON_IsArray(arr) && cJSON_GetArraySize(arr) > 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, arr) {
        cJSON *c = ok ? openai_call(o, cJSON_GetArraySize(calls)) : NULL;
        if (!c)
            ok = 0;
        else
            cJSON_AddItemToArray(calls, c);
    }
    cJSON_Delete(arr);
    if (ok) {
        m40_strbuf_add(content, text, (size_t)(at - text));
    } else {
        while (cJSON_GetArraySize(calls) > 0)
            cJSON_DeleteItemFromArray(calls, 0);
        m40_strbuf_add(content, text, len);
    }
}

int m40_chat_tools_parse(m40_tool_format f, const char *text, size_t len, char **content,
                         cJSON **calls, m40_err *err) {
    *content = NULL;
    *calls = cJSON_CreateArray();
    m40_strbuf b = {0};
    m40_strbuf_add(&b, "", 0);
    if (*calls) {
        if (f == M40_TOOLS_LLAMA3)
            llama3(text, len, &b, *calls);
        else if (f == M40_TOOLS_MISTRAL)
            mistral(text, len, &b, *calls);
        else
            hermes(text, len, &b, *calls);
    }
    if (!*calls || b.oom) {
        cJSON_Delete(*calls);
        *calls = NULL;
        free(b.s);
        return m40_errf(err, "chat tools: out of memory");
    }
    while (b.len && (b.s[b.len - 1] == ' ' || b.s[b.len - 1] == '\n' || b.s[b.len - 1] == '\t'))
        b.s[--b.len] = '\0';
    if (cJSON_GetArraySize(*calls) == 0) {
        cJSON_Delete(*calls);
        *calls = NULL;
    }
    *content = b.s;
    return 0;
}

/* Where `marker` starts in text, or where a beginning of it ends the text;
 * len when neither. */
static size_t marker_at(const char *text, size_t len, const char *marker) {
    size_t ml = strlen(marker);
    const char *at = memmem(text, len, marker, ml);
    if (at)
        return (size_t)(at - text);
    for (size_t k = ml - 1; k > 0; k--)
        if (k <= len && !memcmp(text + len - k, marker, k))
            return len - k;
    return len;
}

size_t m40_chat_tools_hold(m40_tool_format f, const char *text, size_t len) {
    const char *p = skip_blanks(text, text + len);
    if (f == M40_TOOLS_HERMES)
        return marker_at(text, len, k_hermes_open);
    if (p == text + len)
        return 0; /* blanks so far: what comes next decides */
    if (f == M40_TOOLS_LLAMA3) {
        size_t rest = (size_t)(text + len - p), tl = sizeof k_python_tag - 1;
        if (*p == '{' || !memcmp(p, k_python_tag, rest < tl ? rest : tl))
            return 0;
        return len;
    }
    if (*p == '[')
        return 0;
    return marker_at(text, len, k_mistral_open);
}
