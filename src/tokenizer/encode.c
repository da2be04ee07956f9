/* encode.c - m40_tokenize(): special tokens, BOS/EOS, dispatch to SPM/BPE.
 *
 * Special-token partition, as llama.cpp's tokenizer_st_partition: taking
 * the special tokens longest first, each one's occurrences are cut out of
 * the still-raw text, left to right, never overlapping what an earlier
 * (longer) token took. Instead of re-scanning the text once per special
 * token, we find every occurrence of every special token in one pass over
 * a byte trie, then replay llama.cpp's order over that list; the result is
 * the same fragments. lstrip/rstrip tokens eat the whitespace beside them.
 *
 * Owns: the per-call partition arrays. Touches: nothing else.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

void m40_tokens_free(m40_tokens *t) {
    free(t->ids);
    memset(t, 0, sizeof *t);
}

int m40_tokens_push(m40_tokens *t, m40_token id, m40_err *err) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        m40_token *p = realloc(t->ids, cap * sizeof *p);
        if (!p)
            return m40_errf(err, "tokenize: out of memory for %zu tokens", cap);
        t->ids = p;
        t->cap = cap;
    }
    t->ids[t->n++] = id;
    return 0;
}

/* --- partition ---------------------------------------------------------- */

typedef struct occurrence {
    int32_t rank; /* position in the longest-first special list */
    uint32_t pos;
} occurrence;

/* A piece of the input: raw text [start, start+len) or a token. */
typedef struct fragment {
    m40_token token; /* M40_TOKEN_NULL for raw text */
    size_t start, len;
} fragment;

typedef struct partition {
    fragment *frag;
    size_t n, cap;
} partition;

static int frag_push(partition *p, m40_token token, size_t start, size_t len) {
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        fragment *f = realloc(p->frag, cap * sizeof *f);
        if (!f)
            return -1;
        p->frag = f;
        p->cap = cap;
    }
    p->frag[p->n++] = (fragment){token, start, len};
    return 0;
}

static int cmp_occ(const void *a, const void *b) {
    const occurrence *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int is_active(const m40_tokenizer *tok, int32_t id, int parse_special) {
    /* Control and unknown tokens only with parse_special; user-defined
     * ones always (llama.cpp, after Hugging Face tokenizers). */
    return parse_special || !(tok->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN));
}

/* Every occurrence of every active special token. */
static int find_occurrences(const m40_tokenizer *tok, const unsigned char *s, size_t len,
                            int parse_special, occurrence **occ, size_t *n_occ) {
    size_t n = 0, cap = 0;
    occurrence *o = NULL;
    for (size_t i = 0; i < len; i++) {
        int32_t node = tok->trie[0].first_child;
        for (size_t j = i; j < len && node >= 0; j++) {
            while (node >= 0 && tok->trie[node].byte != s[j])
                node = tok->trie[node].next_sibling;
            if (node < 0)
                break;
            int32_t id = tok->trie[node].token;
            if (id >= 0 && is_active(tok, id, parse_special)) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 16;
                    occurrence *p = realloc(o, cap * sizeof *p);
                    if (!p) {
                        free(o);
                        return -1;
                    }
                    o = p;
                }
                o[n++] = (occurrence){tok->special_rank[id], (uint32_t)i};
            }
            node = tok->trie[node].first_child;
        }
    }
    *occ = o;
    *n_occ = n;
    return 0;
}

static int is_space(unsigned char c) {
    return c == ' ' || (c >= '\t' && c <= '\r'); /* C-locale isspace */
}

enum { FREE = 0, TAKEN = 1, TOKEN_START = 2 };

/* Replays llama.cpp's order over the occurrences, marking taken bytes. */
static void claim(const m40_tokenizer *tok, const unsigned char *s, size_t len, const occurrence *o,
                  size_t n, unsigned char *mark, m40_token *tok_at) {
    size_t last_end = 0;
    for (size_t k = 0; k < n; k++) {
        if (k == 0 || o[k].rank != o[k - 1].rank)
            last_end = 0; /* a new token: its search starts over */
        int32_t id = tok->special[o[k].rank];
        size_t p = o[k].pos, tl = tok->text[id].len;
        if (p < last_end)
            continue; /* overlaps this token's previous match */
        int free_span = 1;
        for (size_t q = p; q < p + tl && free_span; q++)
            free_span = mark[q] == FREE;
        if (!free_span)
            continue; /* not inside one raw fragment */
        memset(mark + p, TAKEN, tl);
        mark[p] = TOKEN_START;
        tok_at[p] = id;
        last_end = p + tl;
        if (tok->attr[id] & TOK_ATTR_LSTRIP) {
            for (size_t q = p; q > 0 && mark[q - 1] == FREE && is_space(s[q - 1]); q--)
                mark[q - 1] = TAKEN;
        }
        if (tok->attr[id] & TOK_ATTR_RSTRIP) {
            for (size_t q = p + tl; q < len && mark[q] == FREE && is_space(s[q]); q++)
                mark[q] = TAKEN;
        }
    }
}

/* Splits text into raw fragments and special tokens, in order. */
static int partition_text(const m40_tokenizer *tok, const char *text, size_t len, int parse_special,
                          partition *part, m40_err *err) {
    const unsigned char *s = (const unsigned char *)text;
    occurrence *occ = NULL;
    size_t n_occ = 0;
    if (len == 0)
        return 0;
    if (tok->n_special && find_occurrences(tok, s, len, parse_special, &occ, &n_occ))
        return m40_errf(err, "tokenize: out of memory");
    if (n_occ == 0) {
        free(occ);
        return frag_push(part, M40_TOKEN_NULL, 0, len) ? m40_errf(err, "out of memory") : 0;
    }
    qsort(occ, n_occ, sizeof *occ, cmp_occ);
    unsigned char *mark = calloc(len, 1);
    m40_token *tok_at = malloc(len * sizeof *tok_at);
    int rc = 0;
    if (!mark || !tok_at) {
        rc = m40_errf(err, "tokenize: out of memory for %zu bytes", len);
        goto done;
    }
    claim(tok, s, len, occ, n_occ, mark, tok_at);
    for (size_t i = 0; i < len && rc == 0;) {
        if (mark[i] == TOKEN_START) {
            rc = frag_push(part, tok_at[i], i, tok->text[tok_at[i]].len);
            i += tok->text[tok_at[i]].len;
        } else if (mark[i] == TAKEN) {
            i++; /* stripped whitespace */
        } else {
            size_t j = i;
            while (j < len && mark[j] == FREE)
                j++;
            rc = frag_push(part, M40_TOKEN_NULL, i, j - i);
            i = j;
        }
    }
    if (rc)
        rc = m40_errf(err, "tokenize: out of memory");
done:
    free(occ);
    free(mark);
    free(tok_at);
    return rc;
}

/* --- encode -------------------------------------------------------------- */

/* SPM: ' ' -> U+2581, a space first where llama.cpp adds one. */
static int spm_fragment(const m40_tokenizer *tok, const char *text, size_t len, int prefix,
                        char **buf, size_t *cap, m40_tokens *out, m40_err *err) {
    if (len > (SIZE_MAX - 3) / 3)
        return m40_errk(err, M40_ERR_BAD_INPUT, "tokenize: input too long");
    size_t need = 3 * (len + 1);
    if (need > *cap) {
        char *p = realloc(*buf, need);
        if (!p)
            return m40_errf(err, "tokenize: out of memory for %zu bytes", need);
        *buf = p;
        *cap = need;
    }
    size_t n = 0;
    if (prefix) {
        memcpy(*buf, "\xE2\x96\x81", 3);
        n = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(*buf + n, "\xE2\x96\x81", 3);
            n += 3;
        } else {
            (*buf)[n++] = text[i];
        }
    }
    return m40_spm_encode(tok, *buf, n, out, err);
}

static int encode_fragments(const m40_tokenizer *tok, const char *text, const partition *part,
                            unsigned flags, m40_tokens *out, m40_err *err) {
    int add = (flags & M40_TOKENIZE_ADD_SPECIAL) != 0;
    int rc = 0;
    char *buf = NULL;
    size_t cap = 0;
    m40_pretok_scratch ps;
    memset(&ps, 0, sizeof ps);
    if (add && tok->add_bos)
        rc = m40_tokens_push(out, tok->bos, err);
    int prev_special = 1; /* SPM: the first raw fragment gets the prefix */
    for (size_t k = 0; rc == 0 && k < part->n; k++) {
        const fragment *f = &part->frag[k];
        if (f->token != M40_TOKEN_NULL) {
            rc = m40_tokens_push(out, f->token, err);
            prev_special = 1;
        } else if (tok->kind == M40_TOKENIZER_SPM) {
            rc = spm_fragment(tok, text + f->start, f->len, tok->add_space_prefix && prev_special,
                              &buf, &cap, out, err);
            prev_special = 0;
        } else {
            rc = m40_bpe_encode(tok, text + f->start, f->len, &ps, out, err);
        }
    }
    if (rc == 0 && add && tok->add_eos)
        rc = m40_tokens_push(out, tok->eos, err);
    free(buf);
    m40_pretok_scratch_free(&ps);
    return rc;
}

int m40_tokenize(const m40_tokenizer *tok, const char *text, size_t len, unsigned flags,
                 m40_tokens *out, m40_err *err) {
    out->n = 0;
    if (len && !text)
        return m40_errf(err, "tokenize: no text");
    if (len > (size_t)INT32_MAX)
        return m40_errk(err, M40_ERR_BAD_INPUT,
                        "tokenize: input of %zu bytes is too long (limit 2 GiB)", len);
    partition part = {0};
    int rc = partition_text(tok, text, len, (flags & M40_TOKENIZE_PARSE_SPECIAL) != 0, &part, err);
    if (rc == 0)
        rc = encode_fragments(tok, text, &part, flags, out, err);
    free(part.frag);
    if (rc)
        out->n = 0;
    return rc;
}
