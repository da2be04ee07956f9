/* bpe.c - byte-level BPE encoding (llama.cpp's llm_tokenizer_bpe_session).
 *
 * The pre-tokenizer cuts the fragment into words. Each word's bytes are
 * mapped to GPT-2's byte alphabet; with ignore_merges (Llama 3, tekken) a
 * word that is itself a token is emitted whole. Otherwise every byte starts
 * as a symbol and the adjacent pair with the lowest merge rank (ties:
 * leftmost) is merged until no pair has a rank. A final symbol that is not
 * a token falls back to its single-byte tokens, as llama.cpp does.
 *
 * Owns: its per-call symbol, heap and word buffers. Touches: nothing else.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

typedef struct bpe_sym {
    int32_t prev, next;
    uint32_t start, n; /* bytes of the encoded word; n == 0 once merged away */
    int32_t id;        /* token of the symbol's text, or -1 */
} bpe_sym;

typedef struct bpe_bigram {
    int32_t rank, left, right, result;
    uint32_t size;
} bpe_bigram;

typedef struct bpe_ctx {
    const m40_tokenizer *tok;
    char *word; /* the encoded word */
    size_t cap_word;
    bpe_sym *sym;
    size_t cap_sym;
    bpe_bigram *heap;
    size_t n_heap, cap_heap;
    char *line; /* "left right" for merges kept by text */
    size_t cap_line;
} bpe_ctx;

/* Heap order: lower rank first, then the leftmost pair. */
static int before(const bpe_bigram *a, const bpe_bigram *b) {
    if (a->rank != b->rank)
        return a->rank < b->rank;
    return a->left < b->left;
}

static int heap_push(bpe_ctx *c, bpe_bigram g) {
    if (c->n_heap == c->cap_heap) {
        size_t cap = c->cap_heap ? c->cap_heap * 2 : 64;
        bpe_bigram *h = realloc(c->heap, cap * sizeof *h);
        if (!h)
            return -1;
        c->heap = h;
        c->cap_heap = cap;
    }
    size_t i = c->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&g, &c->heap[p]))
            break;
        c->heap[i] = c->heap[p];
        i = p;
    }
    c->heap[i] = g;
    return 0;
}

static bpe_bigram heap_pop(bpe_ctx *c) {
    bpe_bigram top = c->heap[0], last = c->heap[--c->n_heap];
    size_t i = 0, n = c->n_heap;
    for (;;) {
        size_t l = 2 * i + 1, best = i;
        const bpe_bigram *bv = &last;
        if (l < n && before(&c->heap[l], bv)) {
            best = l;
            bv = &c->heap[l];
        }
        if (l + 1 < n && before(&c->heap[l + 1], bv))
            best = l + 1;
        if (best == i)
            break;
        c->heap[i] = c->heap[best];
        i = best;
    }
    if (n)
        c->heap[i] = last;
    return top;
}

/* Rank of a merge kept by its text ("left right"), or -1. */
static int32_t rank_by_text(bpe_ctx *c, const bpe_sym *l, const bpe_sym *r) {
    const m40_tokenizer *tok = c->tok;
    size_t n = (size_t)l->n + 1 + r->n;
    if (n > c->cap_line) {
        char *p = realloc(c->line, n);
        if (!p)
            return -2;
        c->line = p;
        c->cap_line = n;
    }
    memcpy(c->line, c->word + l->start, l->n);
    c->line[l->n] = ' ';
    memcpy(c->line + l->n + 1, c->word + r->start, r->n);
    int32_t k = m40_strmap_find(&tok->merge_lines, c->line, n);
    return k < 0 ? -1 : tok->merge_line_rank[k];
}

static int add_bigram(bpe_ctx *c, int32_t left, int32_t right) {
    if (left < 0 || right < 0)
        return 0;
    const bpe_sym *l = &c->sym[left], *r = &c->sym[right];
    bpe_bigram g = {-1, left, right, -1, l->n + r->n};
    if (l->id >= 0 && r->id >= 0) {
        uint64_t key = ((uint64_t)l->id << 32) | (uint32_t)r->id;
        if (!m40_pairmap_find(&c->tok->merges, key, &g.rank, &g.result))
            g.rank = -1;
    }
    /* A merge may name a string that is not a token; those are kept by
     * text (rare: well-formed vocabularies have none). */
    if (g.rank < 0 && c->tok->merge_lines.count) {
        g.rank = rank_by_text(c, l, r);
        if (g.rank == -2)
            return -1;
        if (g.rank >= 0)
            g.result = m40_strmap_find(&c->tok->token_map, c->word + l->start, g.size);
    }
    return g.rank < 0 ? 0 : heap_push(c, g);
}

/* One final symbol: its token, or the tokens of its single bytes. */
static int emit_symbol(const bpe_ctx *c, const bpe_sym *s, m40_tokens *out, m40_err *err) {
    if (s->id >= 0)
        return m40_tokens_push(out, s->id, err);
    for (uint32_t k = 0; k < s->n; k++) {
        int32_t id = m40_strmap_find(&c->tok->token_map, c->word + s->start + k, 1);
        if (id >= 0 && m40_tokens_push(out, id, err))
            return -1;
    }
    return 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

/* Maps the word's bytes to the GPT-2 alphabet, one symbol per byte. */
static int load_word(bpe_ctx *c, const unsigned char *w, size_t len, size_t *n_bytes) {
    const m40_tokenizer *tok = c->tok;
    if (grow((void **)&c->word, &c->cap_word, 2 * len, 1) ||
        grow((void **)&c->sym, &c->cap_sym, len, sizeof *c->sym))
        return -1;
    size_t off = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char b = w[i];
        memcpy(c->word + off, tok->byte_utf8[b], tok->byte_utf8_len[b]);
        c->sym[i] = (bpe_sym){(int32_t)i - 1, i + 1 == len ? -1 : (int32_t)i + 1, (uint32_t)off,
                              tok->byte_utf8_len[b], tok->byte_token[b]};
        off += tok->byte_utf8_len[b];
    }
    *n_bytes = off;
    return 0;
}

static int merge_word(bpe_ctx *c, size_t n, m40_err *err) {
    c->n_heap = 0;
    for (size_t i = 1; i < n; i++) {
        if (add_bigram(c, (int32_t)i - 1, (int32_t)i))
            return m40_errf(err, "BPE: out of memory");
    }
    while (c->n_heap) {
        bpe_bigram g = heap_pop(c);
        bpe_sym *l = &c->sym[g.left], *r = &c->sym[g.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != g.size)
            continue; /* stale: one side has changed since */
        l->n += r->n;
        l->id = g.result;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            c->sym[r->next].prev = g.left;
        if (add_bigram(c, l->prev, g.left) || add_bigram(c, g.left, l->next))
            return m40_errf(err, "BPE: out of memory");
    }
    return 0;
}

static int encode_word(bpe_ctx *c, const unsigned char *w, size_t len, m40_tokens *out,
                       m40_err *err) {
    size_t n_bytes;
    if (load_word(c, w, len, &n_bytes))
        return m40_errf(err, "BPE: out of memory");
    if (c->tok->ignore_merges) {
        int32_t id = m40_strmap_find(&c->tok->token_map, c->word, n_bytes);
        if (id >= 0)
            return m40_tokens_push(out, id, err);
    }
    if (merge_word(c, len, err))
        return -1;
    for (int32_t i = 0; i != -1; i = c->sym[i].next) {
        if (emit_symbol(c, &c->sym[i], out, err))
            return -1;
    }
    return 0;
}

int m40_bpe_encode(const m40_tokenizer *tok, const char *text, size_t len, m40_pretok_scratch *ps,
                   m40_tokens *out, m40_err *err) {
    if (m40_pretok_run(tok->pretok, text, len, ps, err))
        return -1;
    bpe_ctx c = {0};
    c.tok = tok;
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < ps->n_words; k++) {
        const m40_span *w = &ps->words[k];
        rc = encode_word(&c, ps->text + w->start, w->end - w->start, out, err);
    }
    free(c.word);
    free(c.sym);
    free(c.heap);
    free(c.line);
    return rc;
}
