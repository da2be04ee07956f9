/* json_schema.c - JSON Schema to GBNF (json_schema.h).
 *
 * Each schema node becomes a rule (s1, s2, ... named after the property
 * they come from where there is one); the JSON primitives are rules of
 * their own, written once at the end. A $ref names its definition's rule,
 * which is written the first time it is referenced, so recursive schemas
 * are recursive rules.
 *
 * An object's properties come in the schema's order. Property j may be the
 * first one written only if every property before it is optional; after
 * it, rule rest_k writes property k (if required; maybe, if optional) and
 * then rest_(k+1): n properties cost n rules, not n^2 alternatives.
 */
#include "grammar/json_schema.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/strbuf.h"
#include "util/utf8.h"

#define MAX_DEPTH 64
#define MAX_COUNT 1000 /* minItems, maxItems, minLength, maxLength */

/* The JSON primitives every converted schema's grammar ends with (and
 * json_object's). */
#define M40_JSON_PRIMITIVES                                                                        \
    "ws ::= [ \\t\\n]{0,32}\n"                                                                     \
    "char ::= [^\"\\\\\\x00-\\x1f] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4} )\n"         \
    "string ::= \"\\\"\" char* \"\\\"\"\n"                                                         \
    "integer ::= \"-\"? ( \"0\" | [1-9] [0-9]{0,15} )\n"                                           \
    "number ::= \"-\"? ( \"0\" | [1-9] [0-9]{0,15} ) ( \".\" [0-9]{1,16} )? ( [eE] [-+]? "         \
    "[0-9]{1,3} )?\n"                                                                              \
    "boolean ::= \"true\" | \"false\"\n"                                                           \
    "null ::= \"null\"\n"                                                                          \
    "value ::= object | array | string | number | boolean | null\n"                                \
    "object ::= \"{\" ws ( string ws \":\" ws value ws ( \",\" ws string ws \":\" ws value ws )* " \
    ")? \"}\"\n"                                                                                   \
    "array ::= \"[\" ws ( value ws ( \",\" ws value ws )* )? \"]\"\n"

static const char k_primitives[] = M40_JSON_PRIMITIVES;

const char *m40_json_object_gbnf(void) {
    static const char g[] = "root ::= object\n" M40_JSON_PRIMITIVES;
    return g;
}

/* bytes as a GBNF string literal, quotes included */
static void sb_literal(m40_strbuf *b, const char *s, size_t n) {
    m40_strbuf_str(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"')
            m40_strbuf_str(b, "\\\"");
        else if (c == '\\')
            m40_strbuf_str(b, "\\\\");
        else if (c < 0x20)
            m40_strbuf_fmt(b, "\\x%02X", c);
        else
            m40_strbuf_add(b, (const char *)&c, 1);
    }
    m40_strbuf_str(b, "\"");
}

typedef struct conv {
    const cJSON *root;
    m40_strbuf out; /* the rules */
    unsigned id;    /* rules made so far */
    struct {
        const cJSON *node;
        char name[64];
    } refs[256]; /* definitions given a rule */
    int n_refs;
    char path[256];
    m40_err *err;
} conv;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int
fail(conv *c, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return m40_errk(c->err, M40_ERR_BAD_INPUT, "json_schema: %s%s%s", c->path,
                    c->path[0] ? ": " : "", msg);
}

/* A fresh rule name, after `hint` (sanitized) where there is one. */
static void new_name(conv *c, const char *hint, char *name, size_t cap) {
    char h[32];
    size_t n = 0;
    for (const char *p = hint; p && *p && n < sizeof h - 1; p++) {
        char ch = *p;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
            h[n++] = ch;
        else if (n && h[n - 1] != '-')
            h[n++] = '-';
    }
    h[n] = '\0';
    snprintf(name, cap, "%s%ss%u", h, n ? "-" : "", ++c->id);
}

/* Appends `part` (".items", ".age", ...) or "[i]" to the path; returns
 * where to cut it back. */
static size_t path_push(conv *c, const char *part) {
    size_t at = strlen(c->path);
    snprintf(c->path + at, sizeof c->path - at, "%s", part);
    return at;
}

static size_t path_index(conv *c, int i) {
    size_t at = strlen(c->path);
    snprintf(c->path + at, sizeof c->path - at, "[%d]", i);
    return at;
}

static size_t path_key(conv *c, const char *key) {
    size_t at = path_push(c, ".");
    path_push(c, key);
    return at;
}

static int gen(conv *c, const cJSON *s, const char *hint, char *name, size_t cap, int depth);

/* Keywords this converter knows: enforced, or annotations it may ignore. */
static const char *const k_known[] = {
    "type",        "properties",  "required",  "additionalProperties",
    "items",       "prefixItems", "minItems",  "maxItems",
    "minLength",   "maxLength",   "enum",      "const",
    "anyOf",       "oneOf",       "allOf",     "$ref",
    "$defs",       "definitions", "minimum",   "title",
    "description", "default",     "examples",  "format",
    "$schema",     "$id",         "$comment",  "strict",
    "nullable",    "readOnly",    "writeOnly", "deprecated",
    "name"};

static int check_keywords(conv *c, const cJSON *s) {
    for (const cJSON *k = s->child; k; k = k->next) {
        size_t i = 0;
        while (i < sizeof k_known / sizeof k_known[0] && strcmp(k->string, k_known[i]))
            i++;
        if (i == sizeof k_known / sizeof k_known[0])
            return fail(c, "unsupported keyword '%s' (docs/grammar.md lists what is)", k->string);
    }
    return 0;
}

static int count_of(conv *c, const cJSON *s, const char *key, int dflt, int *v) {
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(s, key);
    if (!n) {
        *v = dflt;
        return 0;
    }
    if (!cJSON_IsNumber(n) || n->valuedouble < 0 || n->valuedouble != floor(n->valuedouble))
        return fail(c, "'%s' must be a non-negative integer", key);
    if (n->valuedouble > MAX_COUNT)
        return fail(c, "'%s' above %d", key, MAX_COUNT);
    *v = (int)n->valuedouble;
    return 0;
}

/* " {min,max}" (max < 0: unbounded) as GBNF. */
static void sb_count(m40_strbuf *b, int min, int max) {
    if (max < 0)
        m40_strbuf_fmt(b, "{%d,}", min);
    else
        m40_strbuf_fmt(b, "{%d,%d}", min, max);
}

static int gen_ref(conv *c, const char *ref, char *name, size_t cap, int depth) {
    const char *key = NULL;
    const cJSON *defs = NULL;
    if (!strncmp(ref, "#/$defs/", 8))
        key = ref + 8, defs = cJSON_GetObjectItemCaseSensitive(c->root, "$defs");
    else if (!strncmp(ref, "#/definitions/", 14))
        key = ref + 14, defs = cJSON_GetObjectItemCaseSensitive(c->root, "definitions");
    else if (!strcmp(ref, "#"))
        defs = NULL;
    else
        return fail(c, "$ref '%s': only '#', '#/$defs/NAME' and '#/definitions/NAME' are supported",
                    ref);
    const cJSON *target = key ? cJSON_GetObjectItemCaseSensitive(defs, key) : c->root;
    if (!target)
        return fail(c, "$ref '%s' names no definition", ref);
    for (int i = 0; i < c->n_refs; i++) {
        if (c->refs[i].node == target) {
            snprintf(name, cap, "%s", c->refs[i].name);
            return 0;
        }
    }
    if (c->n_refs == (int)(sizeof c->refs / sizeof c->refs[0]))
        return fail(c, "more than %d definitions", c->n_refs);
    /* the rule is named before its body is made: a reference back to it
     * inside (recursion) finds it */
    int i = c->n_refs++;
    c->refs[i].node = target;
    new_name(c, key ? key : "root", c->refs[i].name, sizeof c->refs[i].name);
    char body[64];
    if (gen(c, target, key, body, sizeof body, depth + 1))
        return -1;
    m40_strbuf_fmt(&c->out, "%s ::= %s\n", c->refs[i].name, body);
    snprintf(name, cap, "%s", c->refs[i].name);
    return 0;
}

static int gen_object(conv *c, const cJSON *s, const char *rule, int depth) {
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(s, "required");
    const cJSON *addl = cJSON_GetObjectItemCaseSensitive(s, "additionalProperties");
    if (props && !cJSON_IsObject(props))
        return fail(c, "'properties' must be an object");
    if (req && !cJSON_IsArray(req))
        return fail(c, "'required' must be an array");
    for (const cJSON *r = req ? req->child : NULL; r; r = r->next) {
        if (!cJSON_IsString(r))
            return fail(c, "'required' must list property names");
        if (!cJSON_GetObjectItemCaseSensitive(props, r->valuestring))
            return fail(c, "required property '%s' is not in 'properties'", r->valuestring);
    }
    int n = cJSON_GetArraySize(props);
    if (n == 0) {
        if (addl && cJSON_IsObject(addl)) { /* a map of strings to addl */
            char v[64];
            size_t at = path_push(c, ".additionalProperties");
            int rc = gen(c, addl, "value", v, sizeof v, depth + 1);
            c->path[at] = '\0';
            if (rc)
                return -1;
            m40_strbuf_fmt(
                &c->out,
                "%s ::= \"{\" ws ( string ws \":\" ws %s ws ( \",\" ws string ws \":\" ws %s ws "
                ")* )? \"}\"\n",
                rule, v, v);
        } else if (cJSON_IsFalse(addl)) {
            m40_strbuf_fmt(&c->out, "%s ::= \"{\" ws \"}\"\n", rule);
        } else {
            m40_strbuf_fmt(&c->out, "%s ::= object\n", rule);
        }
        return 0;
    }
    /* kv[j]: property j's key, colon and value */
    char(*kv)[64] = calloc((size_t)n, sizeof *kv);
    int *required = calloc((size_t)n, sizeof *required);
    if (!kv || !required) {
        free(kv);
        free(required);
        return m40_errf(c->err, "json_schema: out of memory");
    }
    int j = 0, rc = 0;
    for (const cJSON *p = props->child; p && rc == 0; p = p->next, j++) {
        for (const cJSON *r = req ? req->child : NULL; r; r = r->next)
            required[j] |= cJSON_IsString(r) && !strcmp(r->valuestring, p->string);
        char v[64];
        size_t at = path_key(c, p->string);
        rc = gen(c, p, p->string, v, sizeof v, depth + 1);
        c->path[at] = '\0';
        if (rc)
            break;
        new_name(c, p->string, kv[j], sizeof kv[j]);
        /* the key as JSON text, quoted and escaped as a JSON writer does */
        cJSON *ks = cJSON_CreateString(p->string);
        char *kt = ks ? cJSON_PrintUnformatted(ks) : NULL;
        cJSON_Delete(ks);
        if (!kt) {
            rc = m40_errf(c->err, "json_schema: out of memory");
            break;
        }
        if (m40_utf8_invalid_at(kt, strlen(kt)) >= 0) {
            free(kt);
            rc = fail(c, "a property name is not valid UTF-8");
            break;
        }
        m40_strbuf_fmt(&c->out, "%s ::= ", kv[j]);
        sb_literal(&c->out, kt, strlen(kt));
        free(kt);
        m40_strbuf_fmt(&c->out, " ws \":\" ws %s\n", v);
    }
    char(*rest)[64] = rc == 0 ? calloc((size_t)n + 1, sizeof *rest) : NULL;
    if (rc == 0 && !rest)
        rc = m40_errf(c->err, "json_schema: out of memory");
    if (rc == 0) {
        /* rest[k]: properties k.. after one has been written, each after a
         * comma; rest[n] is nothing */
        for (int k = n - 1; k >= 1; k--) {
            new_name(c, "rest", rest[k], sizeof rest[k]);
            m40_strbuf_fmt(&c->out, "%s ::= %s\",\" ws %s ws%s %s\n", rest[k],
                           required[k] ? "" : "( ", kv[k], required[k] ? "" : " )?", rest[k + 1]);
        }
        /* property k may come first if all before it are optional */
        m40_strbuf_fmt(&c->out, "%s ::= \"{\" ws ( ", rule);
        int all_optional = 1;
        for (int k = 0; k < n; k++) {
            m40_strbuf_fmt(&c->out, "%s%s ws %s", k ? " | " : "", kv[k], rest[k + 1]);
            if (required[k]) {
                all_optional = 0;
                break;
            }
        }
        m40_strbuf_fmt(&c->out, " )%s \"}\"\n", all_optional ? "?" : "");
    }
    free(rest);
    free(kv);
    free(required);
    return rc;
}

static int gen_array(conv *c, const cJSON *s, const char *rule, int depth) {
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(s, "items");
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(s, "prefixItems");
    int min = 0, max = -1;
    if (count_of(c, s, "minItems", 0, &min) || count_of(c, s, "maxItems", -1, &max))
        return -1;
    if (max >= 0 && max < min)
        return fail(c, "maxItems is below minItems");
    if (prefix && !cJSON_IsArray(prefix))
        return fail(c, "'prefixItems' must be an array");
    int np = cJSON_GetArraySize(prefix);
    char it[64] = "value";
    if (items && cJSON_IsFalse(items)) {
        it[0] = '\0'; /* nothing after the prefix */
    } else if (items) {
        size_t at = path_push(c, ".items");
        int rc = gen(c, items, "item", it, sizeof it, depth + 1);
        c->path[at] = '\0';
        if (rc)
            return -1;
    }
    /* the sequence: prefix items in order, then items; element i (from 0)
     * is preceded by "," ws when i > 0, and followed by ws */
    char(*pre)[64] = np ? calloc((size_t)np, sizeof *pre) : NULL;
    if (np && !pre)
        return m40_errf(c->err, "json_schema: out of memory");
    int i = 0;
    for (const cJSON *p = prefix ? prefix->child : NULL; p; p = p->next, i++) {
        size_t at = path_push(c, ".prefixItems");
        path_index(c, i);
        int rc = gen(c, p, "item", pre[i], sizeof pre[i], depth + 1);
        c->path[at] = '\0';
        if (rc) {
            free(pre);
            return -1;
        }
    }
    /* prefix items beyond min are optional: a nest of ( ... )? */
    m40_strbuf_fmt(&c->out, "%s ::= \"[\" ws ", rule);
    int open = 0;
    for (i = 0; i < np && (max < 0 || i < max); i++) {
        if (i >= min) {
            m40_strbuf_str(&c->out, "( ");
            open++;
        }
        m40_strbuf_fmt(&c->out, "%s%s ws ", i ? "\",\" ws " : "", pre[i]);
    }
    free(pre);
    int more_min = min > np ? min - np : 0;
    int more_max = max < 0 ? -1 : max > np ? max - np : 0;
    if (it[0] && more_max != 0) {
        if (np == 0) {
            /* the first item has no comma before it */
            if (more_min == 0)
                m40_strbuf_str(&c->out, "( ");
            m40_strbuf_fmt(&c->out, "%s ws ( \",\" ws %s ws )", it, it);
            sb_count(&c->out, more_min ? more_min - 1 : 0, more_max < 0 ? -1 : more_max - 1);
            if (more_min == 0)
                m40_strbuf_str(&c->out, " )?");
        } else {
            m40_strbuf_fmt(&c->out, "( \",\" ws %s ws )", it);
            sb_count(&c->out, more_min, more_max);
        }
    } else if (more_min > 0) {
        return fail(c, "minItems %d asks for more items than prefixItems allows", min);
    }
    for (; open > 0; open--)
        m40_strbuf_str(&c->out, " )?");
    m40_strbuf_str(&c->out, " \"]\"\n");
    return 0;
}

static int gen_typed(conv *c, const cJSON *s, const char *type, const char *rule, int depth) {
    if (!strcmp(type, "object"))
        return gen_object(c, s, rule, depth);
    if (!strcmp(type, "array"))
        return gen_array(c, s, rule, depth);
    if (!strcmp(type, "string")) {
        int min = 0, max = -1;
        if (count_of(c, s, "minLength", 0, &min) || count_of(c, s, "maxLength", -1, &max))
            return -1;
        if (max >= 0 && max < min)
            return fail(c, "maxLength is below minLength");
        if (min == 0 && max < 0) {
            m40_strbuf_fmt(&c->out, "%s ::= string\n", rule);
        } else {
            m40_strbuf_fmt(&c->out, "%s ::= \"\\\"\" char", rule);
            sb_count(&c->out, min, max);
            m40_strbuf_str(&c->out, " \"\\\"\"\n");
        }
        return 0;
    }
    const cJSON *minimum = cJSON_GetObjectItemCaseSensitive(s, "minimum");
    if (!strcmp(type, "integer")) {
        if (minimum && (!cJSON_IsNumber(minimum) || minimum->valuedouble != 0))
            return fail(c, "'minimum' other than 0 is not supported (only non-negative integers)");
        m40_strbuf_fmt(&c->out, "%s ::= %s\n", rule,
                       minimum ? "( \"0\" | [1-9] [0-9]{0,15} )" : "integer");
        return 0;
    }
    if (minimum)
        return fail(c, "'minimum' is supported on integers only (as 0)");
    if (!strcmp(type, "number") || !strcmp(type, "boolean") || !strcmp(type, "null")) {
        m40_strbuf_fmt(&c->out, "%s ::= %s\n", rule, type);
        return 0;
    }
    return fail(c, "unknown type '%s'", type);
}

/* One literal per JSON value (enum and const). */
static int gen_values(conv *c, const cJSON *vals, int n_is_array, const char *rule) {
    m40_strbuf_fmt(&c->out, "%s ::= ", rule);
    int i = 0;
    for (const cJSON *v = n_is_array ? vals->child : vals; v; v = n_is_array ? v->next : NULL) {
        char *t = cJSON_PrintUnformatted(v);
        if (!t)
            return m40_errf(c->err, "json_schema: out of memory");
        if (m40_utf8_invalid_at(t, strlen(t)) >= 0) {
            free(t);
            return fail(c, "a value of 'enum' or 'const' is not valid UTF-8");
        }
        m40_strbuf_str(&c->out, i++ ? " | " : "");
        sb_literal(&c->out, t, strlen(t));
        free(t);
    }
    if (i == 0)
        return fail(c, "'enum' is empty");
    m40_strbuf_str(&c->out, "\n");
    return 0;
}

static int gen(conv *c, const cJSON *s, const char *hint, char *name, size_t cap, int depth) {
    if (depth > MAX_DEPTH)
        return fail(c, "nested deeper than %d", MAX_DEPTH);
    if (cJSON_IsTrue(s)) {
        snprintf(name, cap, "value");
        return 0;
    }
    if (cJSON_IsFalse(s))
        return fail(c, "the schema false matches nothing");
    if (!cJSON_IsObject(s))
        return fail(c, "a schema must be an object or a boolean");
    if (check_keywords(c, s))
        return -1;
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(s, "$ref");
    if (ref) {
        if (!cJSON_IsString(ref))
            return fail(c, "'$ref' must be a string");
        return gen_ref(c, ref->valuestring, name, cap, depth);
    }
    char rule[64];
    new_name(c, hint, rule, sizeof rule);
    snprintf(name, cap, "%s", rule);
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(s, "enum");
    const cJSON *cn = cJSON_GetObjectItemCaseSensitive(s, "const");
    if (en) {
        if (!cJSON_IsArray(en))
            return fail(c, "'enum' must be an array");
        return gen_values(c, en, 1, rule);
    }
    if (cn)
        return gen_values(c, cn, 0, rule);
    const char *combos[] = {"anyOf", "oneOf", "allOf"};
    for (int k = 0; k < 3; k++) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(s, combos[k]);
        if (!list)
            continue;
        if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0)
            return fail(c, "'%s' must be a non-empty array", combos[k]);
        if (k == 2 && cJSON_GetArraySize(list) != 1)
            return fail(c, "'allOf' with more than one schema is not supported");
        char(*alt)[64] = calloc((size_t)cJSON_GetArraySize(list), sizeof *alt);
        if (!alt)
            return m40_errf(c->err, "json_schema: out of memory");
        int i = 0, rc = 0;
        for (const cJSON *a = list->child; a && rc == 0; a = a->next, i++) {
            size_t at = path_key(c, combos[k]);
            path_index(c, i);
            rc = gen(c, a, hint, alt[i], sizeof alt[i], depth + 1);
            c->path[at] = '\0';
        }
        if (rc == 0) {
            m40_strbuf_fmt(&c->out, "%s ::= ", rule);
            for (int j = 0; j < i; j++)
                m40_strbuf_fmt(&c->out, "%s%s", j ? " | " : "", alt[j]);
            m40_strbuf_str(&c->out, "\n");
        }
        free(alt);
        return rc;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(s, "type");
    if (!type) { /* no type: what the other keywords say, else anything */
        if (cJSON_GetObjectItemCaseSensitive(s, "properties"))
            return gen_typed(c, s, "object", rule, depth);
        if (cJSON_GetObjectItemCaseSensitive(s, "items") ||
            cJSON_GetObjectItemCaseSensitive(s, "prefixItems"))
            return gen_typed(c, s, "array", rule, depth);
        m40_strbuf_fmt(&c->out, "%s ::= value\n", rule);
        return 0;
    }
    if (cJSON_IsString(type))
        return gen_typed(c, s, type->valuestring, rule, depth);
    if (!cJSON_IsArray(type) || cJSON_GetArraySize(type) == 0)
        return fail(c, "'type' must be a string or a non-empty array of strings");
    m40_strbuf_fmt(&c->out, "%s ::= ", rule);
    int i = 0;
    char(*alt)[64] = calloc((size_t)cJSON_GetArraySize(type), sizeof *alt);
    if (!alt)
        return m40_errf(c->err, "json_schema: out of memory");
    for (const cJSON *t = type->child; t; t = t->next, i++) {
        if (!cJSON_IsString(t)) {
            free(alt);
            return fail(c, "'type' must list strings");
        }
        new_name(c, t->valuestring, alt[i], sizeof alt[i]);
        m40_strbuf_fmt(&c->out, "%s%s", i ? " | " : "", alt[i]);
    }
    m40_strbuf_str(&c->out, "\n");
    i = 0;
    int rc = 0;
    for (const cJSON *t = type->child; t && rc == 0; t = t->next, i++)
        rc = gen_typed(c, s, t->valuestring, alt[i], depth);
    free(alt);
    return rc;
}

int m40_json_schema_to_gbnf(const cJSON *schema, char **out, m40_err *err) {
    return m40_json_schema_to_gbnf_rule(schema, "root", out, err);
}

int m40_json_schema_to_gbnf_rule(const cJSON *schema, const char *rule, char **out, m40_err *err) {
    *out = NULL;
    conv *c = calloc(1, sizeof *c);
    if (!c)
        return m40_errf(err, "json_schema: out of memory");
    c->root = schema;
    c->err = err;
    char top[64];
    int rc = gen(c, schema, "root", top, sizeof top, 0);
    if (rc == 0) {
        m40_strbuf_fmt(&c->out, "%s ::= %s\n", rule, top);
        m40_strbuf_str(&c->out, k_primitives);
        if (c->out.oom)
            rc = m40_errf(err, "json_schema: out of memory");
    }
    if (rc == 0)
        *out = c->out.s;
    else
        free(c->out.s);
    free(c);
    return rc;
}
