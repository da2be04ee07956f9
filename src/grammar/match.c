/* match.c - a text's state against a compiled grammar.
 *
 * A stack is a list of places in the grammar: its top is the next element
 * to match, below it where to go on once the top's alternative ends. Stacks
 * are hash-consed nodes (el, next): pushing makes or finds one node, and
 * two equal stacks are the same node id, so sharing tails costs nothing.
 * A node whose top is a reference is expanded into the alternatives of the
 * rule it names (recursively, until every top is a character class or the
 * stack is empty); an expansion is computed once per node and kept.
 *
 * A set (the state of a text) is a sorted list of expanded stacks plus the
 * bytes of a UTF-8 character begun but not finished; sets are interned too,
 * and each (set, byte) transition is remembered, so a state walks bytes at
 * the cost of a hash lookup once a transition has been seen (the trie walk
 * of vocab.c sees the same few sets again and again inside a JSON string).
 *
 * All of it grows with the text's ambiguity, so it is bounded: past
 * MAX_NODES or MAX_SETS a step fails with an error.
 */
#include <stdlib.h>
#include <string.h>

#include "grammar/grammar_internal.h"

#define MAX_NODES (1u << 22)
#define MAX_SETS  (1u << 20)
#define EMPTY_EL  UINT32_MAX /* node 0, the empty stack: the text may end */
/* Sets below this id get a table of their 256 transitions (1 KiB each),
 * the rest a hash lookup; UNKNOWN marks a transition not yet made. */
#define MAX_DIRECT 8192
#define UNKNOWN    INT32_MIN

typedef struct gnode {
    uint32_t el;   /* the top: an element index, EMPTY_EL for node 0 */
    uint32_t next; /* the stack below it (node 0 at the bottom) */
} gnode;

typedef struct gset {
    uint32_t off, n; /* items[off .. off + n): sorted node ids */
    uint32_t partial;
    uint16_t need;  /* continuation bytes still to come of a UTF-8 character */
    uint16_t total; /* that character's length in bytes (0: none begun) */
} gset;

/* An open-addressing table from 64-bit keys to 32-bit values. */
typedef struct htab {
    uint64_t *key; /* key + 1; 0: an empty slot */
    uint32_t *val;
    uint32_t cap, n;
} htab;

struct m40_grammar_state {
    const m40_grammar *g;
    gnode *nodes;
    uint32_t n_nodes, cap_nodes;
    htab node_ix;                /* (el, next) -> node */
    uint32_t *exp_off, *exp_len; /* per node, its expansion in exp[]; UINT32_MAX: not yet */
    uint32_t *exp;
    uint32_t n_exp, cap_exp;
    uint32_t *mark; /* per node, the expansion that last visited it */
    uint32_t stamp;
    gset *sets;
    uint32_t n_sets, cap_sets;
    uint32_t *items;
    uint32_t n_items, cap_items;
    htab set_ix;      /* hash of a set -> candidates, checked by content */
    htab trans_ix;    /* (set, byte) -> set + 1, or 0 for no way on (sets >= MAX_DIRECT) */
    int32_t **direct; /* per set below MAX_DIRECT: its 256 transitions, or NULL */
    uint32_t cap_direct;
    uint32_t *tmp, *work;
    uint32_t n_tmp, cap_tmp, n_work, cap_work;
    int32_t cur;
    m40_grammar_mask_cache masks;
};

m40_grammar_mask_cache *m40_grammar_masks(m40_grammar_state *s) {
    return &s->masks;
}

static uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* ---- the hash tables (several values may share a key in set_ix) ------- */

static int htab_grow(htab *t) {
    uint32_t cap = t->cap ? t->cap * 2 : 1024;
    uint64_t *key = calloc(cap, sizeof *key);
    uint32_t *val = malloc((size_t)cap * sizeof *val);
    if (!key || !val) {
        free(key);
        free(val);
        return -1;
    }
    for (uint32_t i = 0; i < t->cap; i++) {
        if (!t->key[i])
            continue;
        uint32_t h = (uint32_t)mix(t->key[i] - 1) & (cap - 1);
        while (key[h])
            h = (h + 1) & (cap - 1);
        key[h] = t->key[i];
        val[h] = t->val[i];
    }
    free(t->key);
    free(t->val);
    t->key = key;
    t->val = val;
    t->cap = cap;
    return 0;
}

/* The first slot of key k at or after the probe position *h (start with
 * *h = UINT32_MAX): its index, or -1 at the first empty slot. */
static int64_t htab_next(const htab *t, uint64_t k, uint32_t *h) {
    if (!t->cap)
        return -1;
    *h = *h == UINT32_MAX ? (uint32_t)mix(k) & (t->cap - 1) : (*h + 1) & (t->cap - 1);
    for (;; *h = (*h + 1) & (t->cap - 1)) {
        if (!t->key[*h])
            return -1;
        if (t->key[*h] == k + 1)
            return *h;
    }
}

static int htab_put(htab *t, uint64_t k, uint32_t v) {
    if ((t->n + 1) * 2 > t->cap && htab_grow(t))
        return -1;
    uint32_t h = (uint32_t)mix(k) & (t->cap - 1);
    while (t->key[h])
        h = (h + 1) & (t->cap - 1);
    t->key[h] = k + 1;
    t->val[h] = v;
    t->n++;
    return 0;
}

static void htab_free(htab *t) {
    free(t->key);
    free(t->val);
}

/* ---- nodes -------------------------------------------------------------- */

static int too_many(m40_err *err) {
    return m40_errk(err, M40_ERR_BAD_INPUT,
                    "grammar: the text's states outgrew the limit (the grammar is too ambiguous)");
}

/* Keeps the per-node arrays as long as nodes[]. */
static int node_arrays(m40_grammar_state *s, uint32_t need) {
    uint32_t cap = s->cap_nodes;
    if (m40_grammar_grow((void **)&s->nodes, &s->cap_nodes, need, sizeof *s->nodes))
        return -1;
    if (s->cap_nodes == cap)
        return 0;
    uint32_t **arrays[] = {&s->exp_off, &s->exp_len, &s->mark};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) {
        uint32_t *p = realloc(*arrays[i], (size_t)s->cap_nodes * sizeof *p);
        if (!p)
            return -1;
        *arrays[i] = p;
    }
    return 0;
}

static int64_t node_intern(m40_grammar_state *s, uint32_t el, uint32_t next, m40_err *err) {
    uint64_t k = (uint64_t)el << 32 | next;
    uint32_t h = UINT32_MAX;
    int64_t at = htab_next(&s->node_ix, k, &h);
    if (at >= 0)
        return s->node_ix.val[at];
    if (s->n_nodes >= MAX_NODES)
        return too_many(err);
    uint32_t id = s->n_nodes;
    if (node_arrays(s, id + 1) || htab_put(&s->node_ix, k, id))
        return m40_errf(err, "grammar: out of memory");
    s->nodes[id].el = el;
    s->nodes[id].next = next;
    s->exp_off[id] = UINT32_MAX;
    s->exp_len[id] = 0;
    s->mark[id] = 0;
    s->n_nodes++;
    return id;
}

/* The node for "go on after element el": el's successor on top of next,
 * or next itself when el ends its alternative (a tail call keeps stacks
 * from growing through right recursion such as R ::= x R). */
static int64_t node_after(m40_grammar_state *s, uint32_t el, uint32_t next, m40_err *err) {
    if (s->g->el[el + 1].kind == M40_GEL_END)
        return next;
    return node_intern(s, el + 1, next, err);
}

static int push_u32(uint32_t **p, uint32_t *n, uint32_t *cap, uint32_t v) {
    if (m40_grammar_grow((void **)p, cap, *n + 1, sizeof **p))
        return -1;
    (*p)[(*n)++] = v;
    return 0;
}

/* Node id's stacks with a character class or nothing on top, in exp[]. */
static int expand(m40_grammar_state *s, uint32_t id, m40_err *err) {
    if (s->exp_off[id] != UINT32_MAX)
        return 0;
    const m40_grammar *g = s->g;
    uint32_t start = s->n_exp, stamp = ++s->stamp;
    s->n_work = 0;
    if (push_u32(&s->work, &s->n_work, &s->cap_work, id))
        return m40_errf(err, "grammar: out of memory");
    while (s->n_work) {
        uint32_t n = s->work[--s->n_work];
        if (s->mark[n] == stamp)
            continue;
        s->mark[n] = stamp;
        uint32_t el = s->nodes[n].el, next = s->nodes[n].next;
        const m40_gel *e = el == EMPTY_EL ? NULL : &g->el[el];
        if (!e || e->kind == M40_GEL_CHARS) {
            if (push_u32(&s->exp, &s->n_exp, &s->cap_exp, n))
                return m40_errf(err, "grammar: out of memory");
        } else if (e->kind == M40_GEL_END) {
            if (push_u32(&s->work, &s->n_work, &s->cap_work, next))
                return m40_errf(err, "grammar: out of memory");
        } else {
            int64_t cont = node_after(s, el, next, err);
            if (cont < 0)
                return -1;
            for (uint32_t k = g->alt_off[e->v]; k < g->alt_off[e->v + 1]; k++) {
                int64_t c = node_intern(s, g->alt[k], (uint32_t)cont, err);
                if (c < 0 || push_u32(&s->work, &s->n_work, &s->cap_work, (uint32_t)c))
                    return c < 0 ? -1 : m40_errf(err, "grammar: out of memory");
            }
        }
    }
    s->exp_off[id] = start;
    s->exp_len[id] = s->n_exp - start;
    return 0;
}

/* ---- sets --------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Sorts and dedups v[0..*n). */
static void sort_unique(uint32_t *v, uint32_t *n) {
    qsort(v, *n, sizeof *v, cmp_u32);
    uint32_t w = 0;
    for (uint32_t i = 0; i < *n; i++)
        if (w == 0 || v[w - 1] != v[i])
            v[w++] = v[i];
    *n = w;
}

static uint64_t set_hash(const uint32_t *v, uint32_t n, uint32_t partial, uint32_t need,
                         uint32_t total) {
    uint64_t h = mix((uint64_t)partial << 16 | need << 8 | total);
    for (uint32_t i = 0; i < n; i++)
        h = mix(h ^ v[i]);
    return h;
}

/* The set of nodes v[0..n) (sorted, unique; not in items[]) with a UTF-8
 * prefix. */
static int64_t set_intern(m40_grammar_state *s, const uint32_t *v, uint32_t n, uint32_t partial,
                          uint32_t need, uint32_t total, m40_err *err) {
    uint64_t h = set_hash(v, n, partial, need, total);
    uint32_t probe = UINT32_MAX;
    for (int64_t at; (at = htab_next(&s->set_ix, h, &probe)) >= 0;) {
        const gset *c = &s->sets[s->set_ix.val[at]];
        if (c->n == n && c->partial == partial && c->need == need && c->total == total &&
            !memcmp(s->items + c->off, v, n * sizeof *v))
            return s->set_ix.val[at];
    }
    if (s->n_sets >= MAX_SETS)
        return too_many(err);
    uint32_t off = s->n_items;
    if (m40_grammar_grow((void **)&s->items, &s->cap_items, off + n, sizeof *s->items) ||
        m40_grammar_grow((void **)&s->sets, &s->cap_sets, s->n_sets + 1, sizeof *s->sets))
        return m40_errf(err, "grammar: out of memory");
    memcpy(s->items + off, v, n * sizeof *v);
    s->n_items += n;
    gset *c = &s->sets[s->n_sets];
    c->off = off, c->n = n, c->partial = partial;
    c->need = (uint16_t)need, c->total = (uint16_t)total;
    if (htab_put(&s->set_ix, h, s->n_sets))
        return m40_errf(err, "grammar: out of memory");
    return s->n_sets++;
}

/* The set after code point cp from the stacks of set `from`. */
static int64_t advance_cp(m40_grammar_state *s, uint32_t from, uint32_t cp, m40_err *err) {
    s->n_tmp = 0;
    for (uint32_t i = 0; i < s->sets[from].n; i++) {
        uint32_t n = s->items[s->sets[from].off + i];
        const gnode nd = s->nodes[n];
        if (nd.el == EMPTY_EL || !m40_gel_match(s->g, &s->g->el[nd.el], cp))
            continue;
        int64_t after = node_after(s, nd.el, nd.next, err);
        if (after < 0 || expand(s, (uint32_t)after, err))
            return -2;
        uint32_t off = s->exp_off[after], len = s->exp_len[after];
        if (m40_grammar_grow((void **)&s->tmp, &s->cap_tmp, s->n_tmp + len, sizeof *s->tmp)) {
            m40_errf(err, "grammar: out of memory");
            return -2;
        }
        memcpy(s->tmp + s->n_tmp, s->exp + off, len * sizeof *s->tmp);
        s->n_tmp += len;
    }
    if (!s->n_tmp)
        return -1;
    sort_unique(s->tmp, &s->n_tmp);
    int64_t id = set_intern(s, s->tmp, s->n_tmp, 0, 0, 0, err);
    return id < 0 ? -2 : id;
}

/* Whether character class e takes some code point in [lo, hi]. */
static int class_takes_some(const m40_grammar *g, const m40_gel *e, uint32_t lo, uint32_t hi) {
    for (uint32_t r = 0; r < e->n; r++) {
        const m40_grange x = g->rng[e->v + r];
        if (!e->neg && x.lo <= hi && x.hi >= lo)
            return 1;
        if (e->neg && x.lo <= lo && x.hi >= hi)
            return 0; /* one excluded range covers all of [lo, hi] */
    }
    return e->neg;
}

/* Whether some stack of set `from` takes a code point in [lo, hi]: the
 * bytes of a character begun so far can still lead somewhere. */
static int takes_some(const m40_grammar_state *s, uint32_t from, uint32_t lo, uint32_t hi) {
    for (uint32_t i = 0; i < s->sets[from].n; i++) {
        const gnode nd = s->nodes[s->items[s->sets[from].off + i]];
        if (nd.el != EMPTY_EL && class_takes_some(s->g, &s->g->el[nd.el], lo, hi))
            return 1;
    }
    return 0;
}

/* The smallest code point a UTF-8 sequence of `total` bytes may encode
 * (anything less is an overlong form, which is not UTF-8). */
static uint32_t min_cp(uint32_t total) {
    return total == 2 ? 0x80 : total == 3 ? 0x800 : 0x10000;
}

static int64_t step_byte(m40_grammar_state *s, uint32_t from, uint8_t b, m40_err *err) {
    const gset c = s->sets[from];
    uint32_t partial, need, total;
    if (c.need == 0) {
        if (b < 0x80)
            return advance_cp(s, from, b, err);
        if (b >= 0xC2 && b <= 0xDF)
            partial = b & 0x1Fu, total = 2;
        else if (b >= 0xE0 && b <= 0xEF)
            partial = b & 0x0Fu, total = 3;
        else if (b >= 0xF0 && b <= 0xF4)
            partial = b & 0x07u, total = 4;
        else
            return -1; /* never the start of a character */
        need = total - 1;
    } else {
        if ((b & 0xC0) != 0x80)
            return -1;
        partial = c.partial << 6 | (b & 0x3Fu);
        need = c.need - 1u;
        total = c.total;
    }
    /* the code points the bytes so far can still become */
    uint32_t lo = partial << (6 * need), hi = lo | ((1u << (6 * need)) - 1);
    lo = lo > min_cp(total) ? lo : min_cp(total);
    hi = hi < 0x10FFFF ? hi : 0x10FFFF;
    if (lo > hi || (lo >= 0xD800 && hi <= 0xDFFF))
        return -1; /* overlong, past U+10FFFF, or a surrogate */
    if (need == 0)
        return advance_cp(s, from, partial, err);
    if (!takes_some(s, from, lo, hi))
        return -1;
    if (m40_grammar_grow((void **)&s->tmp, &s->cap_tmp, c.n, sizeof *s->tmp)) {
        m40_errf(err, "grammar: out of memory");
        return -2;
    }
    memcpy(s->tmp, s->items + c.off, c.n * sizeof *s->tmp);
    int64_t id = set_intern(s, s->tmp, c.n, partial, need, total, err);
    return id < 0 ? -2 : id;
}

/* Set `set`'s table of transitions, made on its first transition: the
 * walk of vocab.c takes thousands of bytes from the same few sets. */
static int32_t *direct_of(m40_grammar_state *s, uint32_t set) {
    if (set >= MAX_DIRECT)
        return NULL;
    if (set >= s->cap_direct) {
        uint32_t cap = s->cap_direct ? s->cap_direct : 64;
        while (cap <= set)
            cap *= 2;
        int32_t **d = realloc(s->direct, cap * sizeof *d);
        if (!d)
            return NULL;
        memset(d + s->cap_direct, 0, (cap - s->cap_direct) * sizeof *d);
        s->direct = d;
        s->cap_direct = cap;
    }
    if (!s->direct[set] && (s->direct[set] = malloc(256 * sizeof **s->direct)))
        for (int i = 0; i < 256; i++)
            s->direct[set][i] = UNKNOWN;
    return s->direct[set];
}

int32_t m40_grammar_step(m40_grammar_state *s, int32_t set, uint8_t byte, m40_err *err) {
    int32_t *d = (uint32_t)set < s->cap_direct ? s->direct[set] : NULL;
    if (d && d[byte] != UNKNOWN)
        return d[byte];
    uint64_t k = (uint64_t)(uint32_t)set << 8 | byte;
    if (!d) {
        uint32_t h = UINT32_MAX;
        int64_t at = htab_next(&s->trans_ix, k, &h);
        if (at >= 0)
            return (int32_t)s->trans_ix.val[at] - 1;
    }
    int64_t to = step_byte(s, (uint32_t)set, byte, err);
    if (to < -1)
        return -2;
    if ((d = direct_of(s, (uint32_t)set)) != NULL) {
        d[byte] = (int32_t)to;
    } else if (htab_put(&s->trans_ix, k, (uint32_t)(to + 1))) {
        m40_errf(err, "grammar: out of memory");
        return -2;
    }
    return (int32_t)to;
}

int32_t m40_grammar_current(const m40_grammar_state *s) {
    return s->cur;
}

/* ---- the public state ------------------------------------------------- */

int m40_grammar_state_create(const m40_grammar *g, m40_grammar_state **out, m40_err *err) {
    *out = NULL;
    m40_grammar_state *s = calloc(1, sizeof *s);
    if (!s)
        return m40_errf(err, "grammar: out of memory");
    s->g = g;
    int64_t empty = node_intern(s, EMPTY_EL, 0, err);
    int rc = empty == 0 ? 0 : -1;
    uint32_t n_init = 0, *init = NULL, cap_init = 0;
    for (uint32_t k = g->alt_off[g->root]; rc == 0 && k < g->alt_off[g->root + 1]; k++) {
        int64_t n = node_intern(s, g->alt[k], 0, err);
        if (n < 0 || expand(s, (uint32_t)n, err)) {
            rc = -1;
            break;
        }
        for (uint32_t i = 0; i < s->exp_len[n] && rc == 0; i++)
            if (push_u32(&init, &n_init, &cap_init, s->exp[s->exp_off[n] + i]))
                rc = m40_errf(err, "grammar: out of memory");
    }
    if (rc == 0) {
        sort_unique(init, &n_init);
        int64_t id = set_intern(s, init, n_init, 0, 0, 0, err);
        rc = id < 0 ? -1 : 0;
        s->cur = (int32_t)id;
    }
    free(init);
    if (rc) {
        m40_grammar_state_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void m40_grammar_state_free(m40_grammar_state *s) {
    if (!s)
        return;
    free(s->nodes);
    htab_free(&s->node_ix);
    free(s->exp_off);
    free(s->exp_len);
    free(s->exp);
    free(s->mark);
    free(s->sets);
    free(s->items);
    htab_free(&s->set_ix);
    htab_free(&s->trans_ix);
    for (uint32_t i = 0; i < s->cap_direct; i++)
        free(s->direct[i]);
    free(s->direct);
    free(s->tmp);
    free(s->work);
    for (int i = 0; i < M40_GRAMMAR_MASKS; i++)
        free(s->masks.allowed[i]);
    free(s);
}

int m40_grammar_state_accept(m40_grammar_state *s, const char *bytes, size_t len, m40_err *err) {
    int32_t t = s->cur;
    for (size_t i = 0; i < len; i++) {
        t = m40_grammar_step(s, t, (uint8_t)bytes[i], err);
        if (t == -1)
            return m40_errk(err, M40_ERR_BAD_INPUT,
                            "grammar: byte %zu (0x%02X) of the text cannot continue it", i,
                            (unsigned)(uint8_t)bytes[i]);
        if (t < 0)
            return -1;
    }
    s->cur = t;
    return 0;
}

int m40_grammar_state_complete(const m40_grammar_state *s) {
    const gset *c = &s->sets[s->cur];
    return c->need == 0 && c->n > 0 && s->items[c->off] == 0;
}

int m40_grammar_state_can_continue(const m40_grammar_state *s) {
    const gset *c = &s->sets[s->cur];
    return c->need > 0 || c->n > 1 || (c->n == 1 && s->items[c->off] != 0);
}
