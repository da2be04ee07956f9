/* spm.c - SentencePiece-style encoding (llama.cpp's llm_tokenizer_spm).
 *
 * The fragment (spaces already U+2581, prefix already added by encode.c)
 * is cut into UTF-8 characters by their lead byte; every adjacent pair
 * whose concatenation is a token goes into a max-heap keyed by that
 * token's score (ties: leftmost first). The best pair is merged, its new
 * neighbours are tried, until no pair is a token. Each remaining piece is
 * a token, or falls back to one byte token per byte.
 *
 * Speed, same result: when no token has a U+2581 after anything but
 * U+2581 (m40_tokenizer.spm_split, true of Llama's vocabulary), no merge
 * can cross the start of a U+2581 that follows another character, so the
 * fragment is merged chunk by chunk between such points. The greedy order
 * restricted to one chunk is the global order, so the ids are the same;
 * the heaps stay small and cache-resident.
 *
 * llama.cpp keeps a rev_merge map to re-split pieces that are not tokens;
 * it never fires (a piece grows only by merging into a token, so a piece
 * that is not a token is a single character that never merged), so we go
 * straight to the byte fallback, which gives the same ids.
 *
 * Owns: its per-call symbol and heap arrays. Touches: nothing else.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

typedef struct spm_sym {
    int32_t prev, next;
    uint32_t start, n; /* bytes of the fragment; n == 0 once merged away */
} spm_sym;

typedef struct spm_bigram {
    float score;
    int32_t left, right;
    uint32_t size;
} spm_bigram;

typedef struct spm_ctx {
    const m40_tokenizer *tok;
    const char *text;
    spm_sym *sym;
    spm_bigram *heap;
    size_t n_heap, cap_heap;
} spm_ctx;

/* Heap order: higher score first, then the leftmost pair. */
static int before(const spm_bigram *a, const spm_bigram *b) {
    if (a->score != b->score)
        return a->score > b->score;
    return a->left < b->left;
}

static int heap_push(spm_ctx *c, spm_bigram g) {
    if (c->n_heap == c->cap_heap) {
        size_t cap = c->cap_heap ? c->cap_heap * 2 : 64;
        spm_bigram *h = realloc(c->heap, cap * sizeof *h);
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

static spm_bigram heap_pop(spm_ctx *c) {
    spm_bigram top = c->heap[0], last = c->heap[--c->n_heap];
    size_t i = 0, n = c->n_heap;
    for (;;) {
        size_t l = 2 * i + 1, best = i;
        const spm_bigram *bv = &last;
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

static int try_bigram(spm_ctx *c, int32_t left, int32_t right) {
    if (left < 0 || right < 0)
        return 0;
    uint32_t size = c->sym[left].n + c->sym[right].n;
    int32_t id = m40_strmap_find(&c->tok->token_map, c->text + c->sym[left].start, size);
    if (id < 0)
        return 0;
    spm_bigram g = {c->tok->scores[id], left, right, size};
    return heap_push(c, g);
}

/* One piece: its token, or one byte token per byte. */
static int emit_piece(const spm_ctx *c, const spm_sym *s, m40_tokens *out, m40_err *err) {
    const char *p = c->text + s->start;
    int32_t id = m40_strmap_find(&c->tok->token_map, p, s->n);
    if (id >= 0)
        return m40_tokens_push(out, id, err);
    for (uint32_t k = 0; k < s->n; k++) {
        unsigned char b = (unsigned char)p[k];
        if (c->tok->byte_token[b] < 0)
            return m40_errf(err, "no byte token for 0x%02X in the vocabulary (byte fallback)", b);
        if (m40_tokens_push(out, c->tok->byte_token[b], err))
            return -1;
    }
    return 0;
}

static int is_space_sym(const spm_ctx *c, const spm_sym *s) {
    return s->n == 3 && !memcmp(c->text + s->start, "\xE2\x96\x81", 3);
}

/* Merges symbols [a, b) as one independent chain and emits them. */
static int spm_chunk(spm_ctx *c, size_t a, size_t b, m40_tokens *out, m40_err *err) {
    c->sym[a].prev = -1;
    c->sym[b - 1].next = -1;
    c->n_heap = 0;
    for (size_t i = a + 1; i < b; i++) {
        if (try_bigram(c, (int32_t)i - 1, (int32_t)i))
            return m40_errf(err, "SPM: out of memory");
    }
    while (c->n_heap) {
        spm_bigram g = heap_pop(c);
        spm_sym *l = &c->sym[g.left], *r = &c->sym[g.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != g.size)
            continue; /* stale: one side has changed since */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            c->sym[r->next].prev = g.left;
        if (try_bigram(c, l->prev, g.left) || try_bigram(c, g.left, l->next))
            return m40_errf(err, "SPM: out of memory");
    }
    for (int32_t i = (int32_t)a; i != -1; i = c->sym[i].next) {
        if (emit_piece(c, &c->sym[i], out, err))
            return -1;
    }
    return 0;
}

static int spm_run(spm_ctx *c, size_t len, m40_tokens *out, m40_err *err) {
    size_t n = 0;
    for (size_t off = 0; off < len; n++) {
        size_t l = m40_utf8_len((unsigned char)c->text[off]);
        if (l > len - off)
            l = len - off;
        c->sym[n] = (spm_sym){(int32_t)n - 1, (int32_t)n + 1, (uint32_t)off, (uint32_t)l};
        off += l;
    }
    size_t a = 0;
    for (size_t i = 1; i < n && c->tok->spm_split; i++) {
        if (is_space_sym(c, &c->sym[i]) && !is_space_sym(c, &c->sym[i - 1])) {
            if (spm_chunk(c, a, i, out, err))
                return -1;
            a = i;
        }
    }
    return n ? spm_chunk(c, a, n, out, err) : 0;
}

int m40_spm_encode(const m40_tokenizer *tok, const char *text, size_t len, m40_tokens *out,
                   m40_err *err) {
    if (len == 0)
        return 0;
    if (len > INT32_MAX)
        return m40_errf(err, "SPM: fragment of %zu bytes is too long", len);
    spm_ctx c = {tok, text, malloc(len * sizeof(spm_sym)), NULL, 0, 0};
    if (!c.sym)
        return m40_errf(err, "SPM: out of memory for %zu bytes", len);
    int rc = spm_run(&c, len, out, err);
    free(c.sym);
    free(c.heap);
    return rc;
}
