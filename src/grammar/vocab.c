/* vocab.c - the tokens' bytes as a trie, and the walk that finds which
 * tokens may come next.
 *
 * The walk is depth-first from the trie's root with the state's set of
 * stacks: each edge is one byte, one m40_grammar_step (a hash lookup once
 * the transition is known), and a subtree is left as soon as its prefix
 * leaves no stack. Tokens that share a prefix share its steps, so inside a
 * JSON string (where nearly every token may come) a step costs about one
 * lookup per trie node, and in a number or after a `{` the walk stops at
 * the first byte of nearly every token.
 */
#include <stdlib.h>
#include <string.h>

#include "grammar/grammar_internal.h"

#define NONE UINT32_MAX

void m40_grammar_vocab_free(m40_grammar_vocab *v) {
    if (!v)
        return;
    free(v->first_child);
    free(v->next_sibling);
    free(v->byte);
    free(v->first_tok);
    free(v->tok_next);
    free(v);
}

int32_t m40_grammar_vocab_n_tokens(const m40_grammar_vocab *v) {
    return v->n_tokens;
}

static int add_node(m40_grammar_vocab *v, uint32_t *cap, uint8_t byte, uint32_t *id) {
    if (v->n_nodes == *cap) {
        uint32_t n = *cap * 2;
        uint32_t *fc = realloc(v->first_child, n * sizeof *fc);
        if (fc)
            v->first_child = fc;
        uint32_t *ns = realloc(v->next_sibling, n * sizeof *ns);
        if (ns)
            v->next_sibling = ns;
        uint8_t *by = realloc(v->byte, n);
        if (by)
            v->byte = by;
        int32_t *ft = realloc(v->first_tok, n * sizeof *ft);
        if (ft)
            v->first_tok = ft;
        if (!fc || !ns || !by || !ft)
            return -1;
        *cap = n;
    }
    uint32_t i = v->n_nodes++;
    v->first_child[i] = NONE;
    v->next_sibling[i] = NONE;
    v->byte[i] = byte;
    v->first_tok[i] = -1;
    *id = i;
    return 0;
}

int m40_grammar_vocab_create(const char *const *pieces, const size_t *lens, int32_t n_tokens,
                             m40_grammar_vocab **out, m40_err *err) {
    *out = NULL;
    if (n_tokens <= 0)
        return m40_errf(err, "grammar: a vocabulary of %d tokens", (int)n_tokens);
    m40_grammar_vocab *v = calloc(1, sizeof *v);
    uint32_t cap = 1024;
    if (v) {
        v->n_tokens = n_tokens;
        v->first_child = malloc(cap * sizeof *v->first_child);
        v->next_sibling = malloc(cap * sizeof *v->next_sibling);
        v->byte = malloc(cap);
        v->first_tok = malloc(cap * sizeof *v->first_tok);
        v->tok_next = malloc((size_t)n_tokens * sizeof *v->tok_next);
    }
    uint32_t root = 0, at_root[256]; /* the root's children by byte */
    memset(at_root, 0xFF, sizeof at_root);
    if (!v || !v->first_child || !v->next_sibling || !v->byte || !v->first_tok || !v->tok_next ||
        add_node(v, &cap, 0, &root))
        goto oom;
    for (int32_t t = 0; t < n_tokens; t++) {
        v->tok_next[t] = -1;
        const uint8_t *p = (const uint8_t *)pieces[t];
        size_t len = p ? lens[t] : 0;
        if (len == 0)
            continue;
        uint32_t node = at_root[p[0]];
        if (node == NONE) {
            if (add_node(v, &cap, p[0], &node))
                goto oom;
            v->next_sibling[node] = v->first_child[root];
            v->first_child[root] = node;
            at_root[p[0]] = node;
        }
        for (size_t i = 1; i < len; i++) {
            uint32_t c = v->first_child[node];
            while (c != NONE && v->byte[c] != p[i])
                c = v->next_sibling[c];
            if (c == NONE) {
                if (add_node(v, &cap, p[i], &c))
                    goto oom;
                v->next_sibling[c] = v->first_child[node];
                v->first_child[node] = c;
            }
            node = c;
        }
        v->tok_next[t] = v->first_tok[node];
        v->first_tok[node] = t;
    }
    *out = v;
    return 0;
oom:
    m40_grammar_vocab_free(v);
    return m40_errf(err, "grammar: out of memory for the vocabulary trie");
}

/* The walk (below) of set `set` into allowed[]. */
static int walk(m40_grammar_state *s, const m40_grammar_vocab *v, int32_t set, uint8_t *allowed,
                int32_t *n_allowed, m40_err *err);

int m40_grammar_state_mask(m40_grammar_state *s, const m40_grammar_vocab *v, uint8_t *allowed,
                           int32_t *n_allowed, m40_err *err) {
    m40_grammar_mask_cache *c = m40_grammar_masks(s);
    int32_t set = m40_grammar_current(s);
    if (c->vocab != v) { /* another vocabulary: nothing kept applies */
        for (int i = 0; i < M40_GRAMMAR_MASKS; i++) {
            c->set[i] = -1;
            free(c->allowed[i]);
            c->allowed[i] = NULL;
        }
        c->vocab = v;
    }
    for (int i = 0; i < M40_GRAMMAR_MASKS; i++) {
        if (c->set[i] == set) {
            memcpy(allowed, c->allowed[i], (size_t)v->n_tokens);
            *n_allowed = c->n_allowed[i];
            return 0;
        }
    }
    if (walk(s, v, set, allowed, n_allowed, err))
        return -1;
    int i = c->next;
    if (!c->allowed[i])
        c->allowed[i] = malloc((size_t)v->n_tokens);
    if (c->allowed[i]) { /* no memory: no copy kept, nothing lost */
        memcpy(c->allowed[i], allowed, (size_t)v->n_tokens);
        c->set[i] = set;
        c->n_allowed[i] = *n_allowed;
        c->next = (i + 1) % M40_GRAMMAR_MASKS;
    }
    return 0;
}

static int walk(m40_grammar_state *s, const m40_grammar_vocab *v, int32_t set0, uint8_t *allowed,
                int32_t *n_allowed, m40_err *err) {
    memset(allowed, 0, (size_t)v->n_tokens);
    *n_allowed = 0;
    /* (node, set) pairs still to visit: at most one per trie node */
    uint32_t *st_node = malloc((size_t)v->n_nodes * sizeof *st_node);
    int32_t *st_set = malloc((size_t)v->n_nodes * sizeof *st_set);
    if (!st_node || !st_set) {
        free(st_node);
        free(st_set);
        return m40_errf(err, "grammar: out of memory");
    }
    uint32_t depth = 1;
    st_node[0] = 0;
    st_set[0] = set0;
    int rc = 0;
    while (depth && rc == 0) {
        depth--;
        uint32_t node = st_node[depth];
        int32_t set = st_set[depth];
        for (uint32_t c = v->first_child[node]; c != NONE; c = v->next_sibling[c]) {
            int32_t to = m40_grammar_step(s, set, v->byte[c], err);
            if (to == -1)
                continue;
            if (to < 0) {
                rc = -1;
                break;
            }
            for (int32_t t = v->first_tok[c]; t >= 0; t = v->tok_next[t]) {
                allowed[t] = 1;
                (*n_allowed)++;
            }
            if (v->first_child[c] != NONE) {
                st_node[depth] = c;
                st_set[depth] = to;
                depth++;
            }
        }
    }
    free(st_node);
    free(st_set);
    return rc;
}
