/* grammar_internal.h - the compiled form of a grammar, which the parser
 * (gbnf.c) writes and the matcher (match.c) reads.
 *
 * Every alternative of every rule is a run of elements in el[] ending with
 * an END element. A rule's alternatives start at el[alt[alt_off[r]]],
 * ..., el[alt[alt_off[r + 1] - 1]]. Groups and repetitions are rules of
 * their own (x* is R ::= x R | <empty>), so an element is only ever one
 * character class or one reference.
 */
#ifndef M40_GRAMMAR_GRAMMAR_INTERNAL_H
#define M40_GRAMMAR_GRAMMAR_INTERNAL_H

#include <stdint.h>
#include <stdlib.h>

#include "grammar/grammar.h"

enum { M40_GEL_END = 0, M40_GEL_REF = 1, M40_GEL_CHARS = 2 };

typedef struct m40_gel {
    uint8_t kind;
    uint8_t neg; /* CHARS: matches code points outside the ranges */
    uint32_t v;  /* REF: the rule; CHARS: its first range in rng[] */
    uint32_t n;  /* CHARS: how many ranges */
} m40_gel;

/* Code point ranges, inclusive. */
typedef struct m40_grange {
    uint32_t lo, hi;
} m40_grange;

struct m40_grammar {
    m40_gel *el;
    uint32_t n_el;
    m40_grange *rng;
    uint32_t n_rng;
    uint32_t *alt;     /* first element of each alternative */
    uint32_t *alt_off; /* n_rules + 1 offsets into alt[] */
    uint32_t n_rules;
    uint32_t root;
};

/* Grows *p (elements of `size` bytes, *cap of them) to hold `need`,
 * doubling from 64; -1 when out of memory (*p is then as it was). */
static inline int m40_grammar_grow(void **p, uint32_t *cap, uint32_t need, size_t size) {
    if (need <= *cap)
        return 0;
    uint32_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, (size_t)n * size);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

/* Whether element e (CHARS) matches code point cp. */
static inline int m40_gel_match(const struct m40_grammar *g, const m40_gel *e, uint32_t cp) {
    int in = 0;
    for (uint32_t i = 0; i < e->n && !in; i++)
        in = cp >= g->rng[e->v + i].lo && cp <= g->rng[e->v + i].hi;
    return in != e->neg;
}

/* The vocabulary trie (vocab.c): node 0 is the empty prefix; a node's
 * children are a sibling list; tokens whose bytes end at a node are a list
 * through tok_next. */
struct m40_grammar_vocab {
    int32_t n_tokens;
    uint32_t n_nodes;
    uint32_t *first_child, *next_sibling; /* UINT32_MAX: none */
    uint8_t *byte;                        /* the byte that leads to the node */
    int32_t *first_tok;                   /* -1: none */
    int32_t *tok_next;                    /* per token */
};

/* The masks of the sets seen last (vocab.c): a text inside a JSON string
 * comes back to the same set after nearly every token, and its mask is a
 * copy instead of a walk. */
#define M40_GRAMMAR_MASKS 4
typedef struct m40_grammar_mask_cache {
    const struct m40_grammar_vocab *vocab; /* the masks are of this vocabulary */
    int32_t set[M40_GRAMMAR_MASKS];        /* -1: empty */
    int32_t n_allowed[M40_GRAMMAR_MASKS];
    uint8_t *allowed[M40_GRAMMAR_MASKS];
    int next; /* the entry to replace next */
} m40_grammar_mask_cache;
m40_grammar_mask_cache *m40_grammar_masks(m40_grammar_state *s);

/* The state's set after one more byte from set `set` (match.c): a set id,
 * -1 when no stack accepts the byte, -2 on an error (out of memory, too
 * many states: the message is in err). */
int32_t m40_grammar_step(m40_grammar_state *s, int32_t set, uint8_t byte, m40_err *err);
/* The state's current set. */
int32_t m40_grammar_current(const m40_grammar_state *s);

#endif /* M40_GRAMMAR_GRAMMAR_INTERNAL_H */
