/* gbnf.c - GBNF text to the compiled grammar of grammar_internal.h.
 *
 * A recursive-descent parser over the text that builds each rule's
 * alternatives as runs of elements, then flattens them and checks what the
 * matcher relies on: every used rule defined, a `root`, no left recursion
 * (a rule that can reach itself before reading a character would expand
 * forever). The syntax is llama.cpp's: a rule ends at the end of its line
 * unless inside parentheses; `|` continues a rule on the same line and may
 * be followed by a line break.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/grammar_internal.h"
#include "util/utf8.h"

/* Bounds that keep a hostile grammar from exhausting memory. */
#define MAX_ELEMENTS (1u << 20)
#define MAX_RULES    (1u << 16)
#define MAX_REPEAT   10000

typedef struct seq {
    m40_gel *el;
    uint32_t n, cap;
} seq;

typedef struct brule {
    char *name;
    int defined;
    seq *alts;
    uint32_t n_alts, cap_alts;
    uint32_t n_anon; /* groups and repetitions made inside it, for their names */
} brule;

typedef struct builder {
    const char *src, *p, *end;
    brule *rules;
    uint32_t n_rules, cap_rules;
    m40_grange *rng;
    uint32_t n_rng, cap_rng;
    uint32_t n_el; /* elements so far, for the bound */
    m40_err *err;
} builder;

static int line_of(const builder *b, const char *at) {
    int line = 1;
    for (const char *q = b->src; q < at && q < b->end; q++)
        line += *q == '\n';
    return line;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int
fail(builder *b, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return m40_errk(b->err, M40_ERR_BAD_INPUT, "grammar: line %d: %s", line_of(b, b->p), msg);
}

static int oom(builder *b) {
    return m40_errf(b->err, "grammar: out of memory");
}

/* ---- rules and elements ---------------------------------------------- */

static int add_rule(builder *b, const char *name, size_t len, uint32_t *id) {
    if (b->n_rules >= MAX_RULES)
        return fail(b, "more than %u rules", MAX_RULES);
    if (m40_grammar_grow((void **)&b->rules, &b->cap_rules, b->n_rules + 1, sizeof *b->rules))
        return oom(b);
    brule *r = &b->rules[b->n_rules];
    memset(r, 0, sizeof *r);
    r->name = malloc(len + 1);
    if (!r->name)
        return oom(b);
    memcpy(r->name, name, len);
    r->name[len] = '\0';
    *id = b->n_rules++;
    return 0;
}

static int rule_named(builder *b, const char *name, size_t len, uint32_t *id) {
    for (uint32_t i = 0; i < b->n_rules; i++) {
        if (strlen(b->rules[i].name) == len && !memcmp(b->rules[i].name, name, len)) {
            *id = i;
            return 0;
        }
    }
    return add_rule(b, name, len, id);
}

/* A rule for a group or repetition inside rule `parent`: "parent_N". */
static int add_anon(builder *b, uint32_t parent, uint32_t *id) {
    char name[160];
    int n =
        snprintf(name, sizeof name, "%.120s_%u", b->rules[parent].name, ++b->rules[parent].n_anon);
    if (add_rule(b, name, (size_t)n, id))
        return -1;
    b->rules[*id].defined = 1;
    return 0;
}

static int add_alt(builder *b, uint32_t r, uint32_t *a) {
    brule *ru = &b->rules[r];
    if (m40_grammar_grow((void **)&ru->alts, &ru->cap_alts, ru->n_alts + 1, sizeof *ru->alts))
        return oom(b);
    memset(&ru->alts[ru->n_alts], 0, sizeof *ru->alts);
    *a = ru->n_alts++;
    return 0;
}

static int push(builder *b, uint32_t r, uint32_t a, m40_gel e) {
    if (++b->n_el > MAX_ELEMENTS)
        return fail(b, "the grammar is too large (over %u elements)", MAX_ELEMENTS);
    seq *s = &b->rules[r].alts[a];
    if (m40_grammar_grow((void **)&s->el, &s->cap, s->n + 1, sizeof *s->el))
        return oom(b);
    s->el[s->n++] = e;
    return 0;
}

static m40_gel ref(uint32_t rule) {
    m40_gel e = {M40_GEL_REF, 0, rule, 0};
    return e;
}

static int add_range(builder *b, uint32_t lo, uint32_t hi) {
    if (m40_grammar_grow((void **)&b->rng, &b->cap_rng, b->n_rng + 1, sizeof *b->rng))
        return oom(b);
    b->rng[b->n_rng].lo = lo;
    b->rng[b->n_rng].hi = hi;
    b->n_rng++;
    return 0;
}

static int push_char(builder *b, uint32_t r, uint32_t a, uint32_t cp) {
    m40_gel e = {M40_GEL_CHARS, 0, b->n_rng, 1};
    if (add_range(b, cp, cp))
        return -1;
    return push(b, r, a, e);
}

/* ---- characters -------------------------------------------------------- */

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* One UTF-8 character of the source (strict UTF-8, as the matcher reads
 * the model's bytes: a literal no text could match is refused here). */
static int source_char(builder *b, uint32_t *cp) {
    int n = m40_utf8_next((const unsigned char *)b->p, (size_t)(b->end - b->p), cp);
    if (n <= 0)
        return fail(b, "invalid UTF-8");
    b->p += n;
    return 0;
}

/* One character of a literal or class: an escape or a UTF-8 character. */
static int parse_char(builder *b, uint32_t *cp) {
    if (b->p >= b->end)
        return fail(b, "unexpected end of the grammar");
    if (*b->p != '\\')
        return source_char(b, cp);
    if (b->p + 1 >= b->end)
        return fail(b, "unexpected end of the grammar after '\\'");
    char c = b->p[1];
    b->p += 2;
    int digits = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 0;
    if (digits) {
        uint32_t v = 0;
        for (int i = 0; i < digits; i++) {
            int h = b->p < b->end ? hexval(*b->p) : -1;
            if (h < 0)
                return fail(b, "\\%c needs %d hex digits", c, digits);
            v = v << 4 | (uint32_t)h;
            b->p++;
        }
        if (v > 0x10FFFF)
            return fail(b, "\\%c%X is beyond U+10FFFF", c, v);
        *cp = v;
        return 0;
    }
    switch (c) {
        case 'n':
            *cp = '\n';
            return 0;
        case 'r':
            *cp = '\r';
            return 0;
        case 't':
            *cp = '\t';
            return 0;
        case '\\':
        case '"':
        case '\'':
        case '[':
        case ']':
        case '-':
        case '^':
        case '/':
            *cp = (unsigned char)c;
            return 0;
        default:
            return fail(b, "unknown escape '\\%c'", c);
    }
}

/* ---- syntax ------------------------------------------------------------ */

static int is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* Spaces, tabs and comments; line breaks too when `newlines`. */
static void skip(builder *b, int newlines) {
    while (b->p < b->end) {
        char c = *b->p;
        if (c == ' ' || c == '\t' || c == '\r' || (c == '\n' && newlines)) {
            b->p++;
        } else if (c == '#') {
            while (b->p < b->end && *b->p != '\n')
                b->p++;
        } else {
            break;
        }
    }
}

static int parse_alternates(builder *b, uint32_t r, int nested);

static int parse_class(builder *b, uint32_t r, uint32_t a) {
    b->p++; /* [ */
    m40_gel e = {M40_GEL_CHARS, 0, b->n_rng, 0};
    if (b->p < b->end && *b->p == '^') {
        e.neg = 1;
        b->p++;
    }
    while (b->p < b->end && *b->p != ']') {
        uint32_t lo, hi;
        if (parse_char(b, &lo))
            return -1;
        hi = lo;
        if (b->p + 1 < b->end && *b->p == '-' && b->p[1] != ']') {
            b->p++;
            if (parse_char(b, &hi))
                return -1;
            if (hi < lo)
                return fail(b, "a character range runs backwards");
        }
        if (add_range(b, lo, hi))
            return -1;
        e.n++;
    }
    if (b->p >= b->end)
        return fail(b, "unterminated character class");
    b->p++; /* ] */
    return push(b, r, a, e);
}

static int parse_literal(builder *b, uint32_t r, uint32_t a) {
    b->p++; /* " */
    while (b->p < b->end && *b->p != '"') {
        uint32_t cp;
        if (parse_char(b, &cp) || push_char(b, r, a, cp))
            return -1;
    }
    if (b->p >= b->end)
        return fail(b, "unterminated string literal");
    b->p++;
    return 0;
}

static int parse_count(builder *b, int *v) {
    if (b->p >= b->end || *b->p < '0' || *b->p > '9')
        return fail(b, "expected a number in { }");
    long n = 0;
    while (b->p < b->end && *b->p >= '0' && *b->p <= '9') {
        n = n * 10 + (*b->p - '0');
        if (n > MAX_REPEAT)
            return fail(b, "a repetition count above %d", MAX_REPEAT);
        b->p++;
    }
    *v = (int)n;
    return 0;
}

/* Applies {min,max} (max < 0: unbounded) to the elements of alternative a
 * from `last` on: they become one element (a rule of their own if several),
 * written min times, then a rule for the optional rest. */
static int repeat(builder *b, uint32_t r, uint32_t a, uint32_t last, int min, int max) {
    seq *s = &b->rules[r].alts[a];
    if (s->n == last)
        return fail(b, "a repetition needs something before it");
    m40_gel item;
    if (s->n - last > 1) {
        uint32_t g, ga;
        if (add_anon(b, r, &g) || add_alt(b, g, &ga))
            return -1;
        s = &b->rules[r].alts[a];
        for (uint32_t i = last; i < s->n; i++) {
            if (push(b, g, ga, b->rules[r].alts[a].el[i]))
                return -1;
            s = &b->rules[r].alts[a];
        }
        item = ref(g);
    } else {
        item = s->el[last];
    }
    b->n_el -= s->n - last;
    s->n = last;
    for (int i = 0; i < min; i++)
        if (push(b, r, a, item))
            return -1;
    if (max == min)
        return 0;
    /* unbounded: R ::= item R | <empty>; else a chain of max - min rules,
     * R_k ::= item R_(k-1) | <empty> */
    int links = max < 0 ? 1 : max - min;
    uint32_t prev = 0;
    for (int k = 0; k < links; k++) {
        uint32_t rr, a1, a2;
        if (add_anon(b, r, &rr) || add_alt(b, rr, &a1) || add_alt(b, rr, &a2))
            return -1;
        (void)a2; /* the empty alternative */
        if (push(b, rr, a1, item))
            return -1;
        if (max < 0 ? push(b, rr, a1, ref(rr)) : k > 0 ? push(b, rr, a1, ref(prev)) : 0)
            return -1;
        prev = rr;
    }
    return push(b, r, a, ref(prev));
}

static int parse_repetition(builder *b, uint32_t r, uint32_t a, uint32_t last) {
    char c = *b->p++;
    int min = 0, max = -1;
    if (c == '+') {
        min = 1;
    } else if (c == '?') {
        max = 1;
    } else if (c == '{') {
        skip(b, 0);
        if (parse_count(b, &min))
            return -1;
        skip(b, 0);
        max = min;
        if (b->p < b->end && *b->p == ',') {
            b->p++;
            skip(b, 0);
            max = -1;
            if (b->p < b->end && *b->p != '}') {
                if (parse_count(b, &max))
                    return -1;
                if (max < min)
                    return fail(b, "{%d,%d}: the maximum is below the minimum", min, max);
            }
            skip(b, 0);
        }
        if (b->p >= b->end || *b->p != '}')
            return fail(b, "expected '}'");
        b->p++;
    }
    return repeat(b, r, a, last, min, max);
}

static int parse_sequence(builder *b, uint32_t r, uint32_t a, int nested) {
    uint32_t last = UINT32_MAX; /* where the latest item's elements start */
    while (b->p < b->end) {
        char c = *b->p;
        uint32_t start = b->rules[r].alts[a].n;
        if (c == '"') {
            if (parse_literal(b, r, a))
                return -1;
        } else if (c == '[') {
            if (parse_class(b, r, a))
                return -1;
        } else if (c == '.') {
            b->p++;
            m40_gel any = {M40_GEL_CHARS, 1, 0, 0};
            if (push(b, r, a, any))
                return -1;
        } else if (c == '(') {
            b->p++;
            skip(b, 1);
            uint32_t g;
            if (add_anon(b, r, &g) || parse_alternates(b, g, 1))
                return -1;
            if (b->p >= b->end || *b->p != ')')
                return fail(b, "expected ')'");
            b->p++;
            if (push(b, r, a, ref(g)))
                return -1;
        } else if (is_name_char(c)) {
            const char *name = b->p;
            while (b->p < b->end && is_name_char(*b->p))
                b->p++;
            uint32_t id;
            if (rule_named(b, name, (size_t)(b->p - name), &id) || push(b, r, a, ref(id)))
                return -1;
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            if (last == UINT32_MAX)
                return fail(b, "'%c' needs something before it", c);
            if (parse_repetition(b, r, a, last))
                return -1;
            skip(b, nested);
            continue;
        } else {
            break;
        }
        last = start;
        skip(b, nested);
    }
    return 0;
}

static int parse_alternates(builder *b, uint32_t r, int nested) {
    uint32_t a;
    if (add_alt(b, r, &a) || parse_sequence(b, r, a, nested))
        return -1;
    while (b->p < b->end && *b->p == '|') {
        b->p++;
        skip(b, 1);
        if (add_alt(b, r, &a) || parse_sequence(b, r, a, nested))
            return -1;
    }
    return 0;
}

static int parse_rules(builder *b) {
    skip(b, 1);
    while (b->p < b->end) {
        const char *name = b->p;
        while (b->p < b->end && is_name_char(*b->p))
            b->p++;
        if (b->p == name)
            return fail(b, "expected a rule name, found '%c'", *b->p);
        uint32_t r;
        if (rule_named(b, name, (size_t)(b->p - name), &r))
            return -1;
        if (b->rules[r].defined)
            return fail(b, "rule '%s' is defined twice", b->rules[r].name);
        b->rules[r].defined = 1;
        skip(b, 0);
        if (b->end - b->p < 3 || memcmp(b->p, "::=", 3) != 0)
            return fail(b, "expected '::=' after '%s'", b->rules[r].name);
        b->p += 3;
        skip(b, 1);
        if (parse_alternates(b, r, 0))
            return -1;
        skip(b, 0);
        if (b->p < b->end && *b->p != '\n')
            return fail(b, "unexpected '%c'", *b->p);
        skip(b, 1);
    }
    return 0;
}

/* ---- checks on the compiled grammar ------------------------------------ */

/* Rules that can match the empty text. */
static void find_nullable(const m40_grammar *g, uint8_t *nullable) {
    memset(nullable, 0, g->n_rules);
    for (int changed = 1; changed;) {
        changed = 0;
        for (uint32_t r = 0; r < g->n_rules; r++) {
            for (uint32_t k = g->alt_off[r]; k < g->alt_off[r + 1] && !nullable[r]; k++) {
                const m40_gel *e = &g->el[g->alt[k]];
                while (e->kind == M40_GEL_REF && nullable[e->v])
                    e++;
                if (e->kind == M40_GEL_END) {
                    nullable[r] = 1;
                    changed = 1;
                }
            }
        }
    }
}

/* A rule that reaches itself before any character (through references at
 * the start of an alternative, past nullable ones): the matcher would
 * expand it forever. Depth-first search with an explicit stack. */
static int find_left_recursion(const m40_grammar *g, const uint8_t *nullable, uint32_t *which) {
    uint8_t *color = calloc(g->n_rules, 1); /* 0 new, 1 on the path, 2 done */
    uint32_t *stack_r = malloc(g->n_rules * sizeof *stack_r);
    uint32_t *stack_k = malloc(g->n_rules * sizeof *stack_k); /* next alternative */
    uint32_t *stack_e = malloc(g->n_rules * sizeof *stack_e); /* element in it */
    int found = -1;
    if (!color || !stack_r || !stack_k || !stack_e)
        goto out;
    found = 0;
    for (uint32_t s = 0; s < g->n_rules && !found; s++) {
        if (color[s])
            continue;
        uint32_t depth = 0;
        stack_r[0] = s, stack_k[0] = g->alt_off[s], stack_e[0] = 0;
        color[s] = 1;
        depth = 1;
        while (depth && !found) {
            uint32_t r = stack_r[depth - 1], k = stack_k[depth - 1];
            if (k >= g->alt_off[r + 1]) {
                color[r] = 2;
                depth--;
                continue;
            }
            const m40_gel *e = &g->el[g->alt[k] + stack_e[depth - 1]];
            if (e->kind != M40_GEL_REF) {
                stack_k[depth - 1]++, stack_e[depth - 1] = 0;
                continue;
            }
            /* the reference at e is reached before any character; after
             * it, the next element only if it is nullable */
            if (nullable[e->v])
                stack_e[depth - 1]++;
            else
                stack_k[depth - 1]++, stack_e[depth - 1] = 0;
            if (color[e->v] == 1) {
                *which = e->v;
                found = 1;
            } else if (color[e->v] == 0) {
                color[e->v] = 1;
                stack_r[depth] = e->v, stack_k[depth] = g->alt_off[e->v], stack_e[depth] = 0;
                depth++;
            }
        }
    }
out:
    free(color);
    free(stack_r);
    free(stack_k);
    free(stack_e);
    return found;
}

/* ---- flattening -------------------------------------------------------- */

static int flatten(builder *b, m40_grammar *g) {
    uint32_t n_alt = 0, n_el = 0;
    for (uint32_t r = 0; r < b->n_rules; r++) {
        n_alt += b->rules[r].n_alts;
        for (uint32_t a = 0; a < b->rules[r].n_alts; a++)
            n_el += b->rules[r].alts[a].n + 1;
    }
    g->el = malloc((size_t)n_el * sizeof *g->el);
    g->alt = malloc(((size_t)n_alt + 1) * sizeof *g->alt);
    g->alt_off = malloc(((size_t)b->n_rules + 1) * sizeof *g->alt_off);
    if (!g->el || !g->alt || !g->alt_off)
        return oom(b);
    uint32_t k = 0, at = 0;
    for (uint32_t r = 0; r < b->n_rules; r++) {
        g->alt_off[r] = k;
        for (uint32_t a = 0; a < b->rules[r].n_alts; a++) {
            const seq *s = &b->rules[r].alts[a];
            g->alt[k++] = at;
            if (s->n)
                memcpy(g->el + at, s->el, s->n * sizeof *s->el);
            at += s->n;
            memset(&g->el[at++], 0, sizeof *g->el); /* END */
        }
    }
    g->alt_off[b->n_rules] = k;
    g->n_el = n_el;
    g->n_rules = b->n_rules;
    g->rng = b->rng;
    g->n_rng = b->n_rng;
    b->rng = NULL;
    return 0;
}

static void builder_free(builder *b) {
    for (uint32_t r = 0; r < b->n_rules; r++) {
        for (uint32_t a = 0; a < b->rules[r].n_alts; a++)
            free(b->rules[r].alts[a].el);
        free(b->rules[r].alts);
        free(b->rules[r].name);
    }
    free(b->rules);
    free(b->rng);
}

int m40_grammar_parse(const char *text, size_t len, m40_grammar **out, m40_err *err) {
    *out = NULL;
    builder b;
    memset(&b, 0, sizeof b);
    b.src = b.p = text;
    b.end = text + len;
    b.err = err;
    m40_grammar *g = calloc(1, sizeof *g);
    if (!g)
        return m40_errf(err, "grammar: out of memory");
    int rc = parse_rules(&b);
    uint32_t root = UINT32_MAX;
    for (uint32_t r = 0; rc == 0 && r < b.n_rules; r++) {
        if (!b.rules[r].defined)
            rc = m40_errk(err, M40_ERR_BAD_INPUT, "grammar: rule '%s' is used but not defined",
                          b.rules[r].name);
        else if (!strcmp(b.rules[r].name, "root"))
            root = r;
    }
    if (rc == 0 && root == UINT32_MAX)
        rc = m40_errk(err, M40_ERR_BAD_INPUT, "grammar: no 'root' rule");
    if (rc == 0)
        rc = flatten(&b, g);
    if (rc == 0) {
        g->root = root;
        uint8_t *nullable = malloc(g->n_rules);
        uint32_t which = 0;
        int lr = -1;
        if (nullable) {
            find_nullable(g, nullable);
            lr = find_left_recursion(g, nullable, &which);
        }
        free(nullable);
        if (lr < 0)
            rc = m40_errf(err, "grammar: out of memory");
        else if (lr)
            rc = m40_errk(err, M40_ERR_BAD_INPUT,
                          "grammar: rule '%s' is left-recursive (it can reach itself before "
                          "reading a character)",
                          b.rules[which].name);
    }
    builder_free(&b);
    if (rc) {
        m40_grammar_free(g);
        return -1;
    }
    *out = g;
    return 0;
}

void m40_grammar_free(m40_grammar *g) {
    if (!g)
        return;
    free(g->el);
    free(g->rng);
    free(g->alt);
    free(g->alt_off);
    free(g);
}
