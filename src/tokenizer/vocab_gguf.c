/* vocab_gguf.c - the thin adapter: GGUF tokenizer.ggml.* -> m40_vocab_data.
 *
 * Reads the keys llama.cpp reads (key names as in its llama-arch.cpp,
 * including the historical "seperator" spelling), checks their types and
 * that the per-token arrays are as long as the token list, and hands plain
 * arrays to m40_tokenizer_create(). The strings are views into the GGUF
 * mapping, which stays open only until the tokenizer has copied them.
 *
 * Owns: the temporary view arrays. Touches: the GGUF reader (src/gguf/),
 * read-only.
 */
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

typedef struct gguf_vocab {
    m40_vocab_data d;
    m40_tok_str *tokens;
    m40_tok_str *merges;
    float *scores;
    int32_t *types;
    char model[64], pre[64], name[256];
} gguf_vocab;

static void gv_free(gguf_vocab *v) {
    free(v->tokens);
    free(v->merges);
    free(v->scores);
    free(v->types);
}

/* An optional string key into buf; returns 1 if present, 0 if absent. */
static int opt_str(const m40_gguf *g, const char *key, char *buf, size_t cap, m40_err *err) {
    if (m40_gguf_find_kv(g, key) < 0)
        return 0;
    m40_gguf_str s;
    if (m40_gguf_get_str(g, key, &s, err))
        return -1;
    if (s.len >= cap)
        return m40_errf(err, "%s is too long (%zu bytes)", key, s.len);
    memcpy(buf, s.ptr, s.len);
    buf[s.len] = '\0';
    if (strlen(buf) != s.len)
        return m40_errf(err, "%s contains a NUL byte", key);
    return 1;
}

static int opt_id(const m40_gguf *g, const char *key, int64_t *out, m40_err *err) {
    *out = M40_VOCAB_ABSENT;
    if (m40_gguf_find_kv(g, key) < 0)
        return 0;
    uint64_t v;
    if (m40_gguf_get_uint(g, key, &v, err))
        return -1;
    /* Ids past the vocabulary are ignored by the core, as by llama.cpp. */
    *out = v > (uint64_t)INT32_MAX ? (int64_t)INT32_MAX : (int64_t)v;
    return 0;
}

static int opt_bool(const m40_gguf *g, const char *key, int *out, m40_err *err) {
    *out = M40_VOCAB_ABSENT;
    if (m40_gguf_find_kv(g, key) < 0)
        return 0;
    bool b;
    if (m40_gguf_get_bool(g, key, &b, err))
        return -1;
    *out = b ? 1 : 0;
    return 0;
}

/* A string array as m40_tok_str views: 1 present, 0 absent, -1 error. */
static int str_array(const m40_gguf *g, const char *key, m40_tok_str **out, size_t *n,
                     m40_err *err) {
    *out = NULL;
    *n = 0;
    if (m40_gguf_find_kv(g, key) < 0)
        return 0;
    m40_gguf_value arr;
    if (m40_gguf_get_array(g, key, M40_GGUF_STRING, &arr, err))
        return -1;
    if (arr.count > (uint64_t)INT32_MAX)
        return m40_errf(err, "%s has too many entries (%llu)", key, (unsigned long long)arr.count);
    *out = malloc((arr.count ? arr.count : 1) * sizeof **out);
    if (!*out)
        return m40_errf(err, "%s: out of memory", key);
    for (uint64_t i = 0; i < arr.count; i++) {
        m40_gguf_str s;
        if (m40_gguf_array_str(&arr, i, &s, err))
            return m40_err_wrap(err, "%s[%llu]", key, (unsigned long long)i);
        (*out)[i].ptr = s.ptr;
        (*out)[i].len = s.len;
    }
    *n = (size_t)arr.count;
    return 1;
}

/* scores: float32 (or int32, which llama.cpp also takes), >= n entries. */
static int read_scores(const m40_gguf *g, gguf_vocab *v, size_t n, m40_err *err) {
    const char *key = "tokenizer.ggml.scores";
    if (m40_gguf_find_kv(g, key) < 0)
        return 0;
    m40_gguf_value arr;
    if (m40_gguf_get_array(g, key, M40_GGUF_ANY, &arr, err))
        return -1;
    if (arr.elem_type != M40_GGUF_FLOAT32 && arr.elem_type != M40_GGUF_INT32)
        return m40_errf(err, "%s has elements of type %s, not float32", key,
                        m40_gguf_type_name(arr.elem_type));
    if (arr.count < n)
        return m40_errf(err, "%s has %llu entries for %zu tokens", key,
                        (unsigned long long)arr.count, n);
    v->scores = malloc(n * sizeof *v->scores);
    if (!v->scores)
        return m40_errf(err, "%s: out of memory", key);
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = (const unsigned char *)arr.data + 4 * i;
        if (arr.elem_type == M40_GGUF_FLOAT32) {
            memcpy(&v->scores[i], p, 4);
        } else {
            int32_t x;
            memcpy(&x, p, 4);
            v->scores[i] = (float)x;
        }
    }
    v->d.scores = v->scores;
    return 0;
}

static int read_types(const m40_gguf *g, gguf_vocab *v, size_t n, m40_err *err) {
    const char *key = "tokenizer.ggml.token_type";
    if (m40_gguf_find_kv(g, key) < 0)
        return 0;
    m40_gguf_value arr;
    if (m40_gguf_get_array(g, key, M40_GGUF_INT32, &arr, err))
        return -1;
    if (arr.count < n)
        return m40_errf(err, "%s has %llu entries for %zu tokens", key,
                        (unsigned long long)arr.count, n);
    v->types = malloc(n * sizeof *v->types);
    if (!v->types)
        return m40_errf(err, "%s: out of memory", key);
    memcpy(v->types, arr.data, n * sizeof *v->types);
    v->d.token_types = v->types;
    return 0;
}

static int read_vocab(const m40_gguf *g, gguf_vocab *v, m40_err *err) {
    v->d = m40_vocab_data_empty();
    int rc = opt_str(g, "tokenizer.ggml.model", v->model, sizeof v->model, err);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return m40_errf(err, "tokenizer.ggml.model is missing (no tokenizer in this file)");
    v->d.model = v->model;
    if ((rc = opt_str(g, "tokenizer.ggml.pre", v->pre, sizeof v->pre, err)) < 0)
        return -1;
    v->d.pre = rc ? v->pre : NULL;
    if ((rc = opt_str(g, "general.name", v->name, sizeof v->name, err)) < 0)
        m40_err_clear(err); /* a name we cannot use only disables name rules */
    v->d.name = rc > 0 ? v->name : NULL;

    size_t n;
    if ((rc = str_array(g, "tokenizer.ggml.tokens", &v->tokens, &n, err)) < 0)
        return -1;
    if (rc == 0)
        return m40_errf(err, "tokenizer.ggml.tokens is missing");
    v->d.tokens = v->tokens;
    v->d.n_tokens = n;
    if (read_scores(g, v, n, err) || read_types(g, v, n, err))
        return -1;
    if (str_array(g, "tokenizer.ggml.merges", &v->merges, &v->d.n_merges, err) < 0)
        return -1;
    v->d.merges = v->merges;

    if (opt_id(g, "tokenizer.ggml.bos_token_id", &v->d.bos_id, err) ||
        opt_id(g, "tokenizer.ggml.eos_token_id", &v->d.eos_id, err) ||
        opt_id(g, "tokenizer.ggml.eot_token_id", &v->d.eot_id, err) ||
        opt_id(g, "tokenizer.ggml.eom_token_id", &v->d.eom_id, err) ||
        opt_id(g, "tokenizer.ggml.unknown_token_id", &v->d.unk_id, err) ||
        opt_id(g, "tokenizer.ggml.seperator_token_id", &v->d.sep_id, err) ||
        opt_id(g, "tokenizer.ggml.padding_token_id", &v->d.pad_id, err) ||
        opt_bool(g, "tokenizer.ggml.add_bos_token", &v->d.add_bos, err) ||
        opt_bool(g, "tokenizer.ggml.add_eos_token", &v->d.add_eos, err) ||
        opt_bool(g, "tokenizer.ggml.add_space_prefix", &v->d.add_space_prefix, err))
        return -1;
    return 0;
}

m40_tokenizer *m40_tokenizer_load_gguf(const char *path, m40_err *err) {
    m40_gguf *g = NULL;
    if (m40_gguf_open(&g, path, err))
        return NULL;
    gguf_vocab v;
    memset(&v, 0, sizeof v);
    m40_tokenizer *tok = NULL;
    if (read_vocab(g, &v, err) == 0)
        tok = m40_tokenizer_create(&v.d, err);
    if (!tok)
        m40_err_wrap(err, "%s", path);
    gv_free(&v);
    m40_gguf_close(g);
    return tok;
}
