/* jinja_parse.c - tokens to AST, following jinja2 3.1's Parser rule for
 * rule so precedence and the odd corners match:
 *
 *   condexpr: or ("if" or ("else" condexpr)?)*
 *   or / and / not / compare (== != < <= > >= in, not in, chained)
 *   math1 (+ -)  >  concat (~)  >  math2 (* / // %)  >  pow (**)  >
 *   unary (- +)  >  primary + postfix (.x [i] (args)) + filters/tests
 *
 * Node fields by kind (see jx_node):
 *   CONST val | NAME val=name | NSREF val=ns val2=attr
 *   GETATTR a val=attr | GETITEM a b | SLICE a b c (NULL = omitted)
 *   CALL a=callee kids=args names/kids2=kwargs dyn_args dyn_kwargs
 *   FILTER/TEST a=subject (FILTER a=NULL: the block body) val=name ix, args
 *   as CALL | NOT/NEG/POS a | BINOP op a b | AND/OR a b | CONCAT kids
 *   COMPARE a kids ops | CONDEXPR a=test b=then c=else | LIST/TUPLE kids
 *   DICT kids=keys kids2=values
 *   TEXT val | OUTPUT a | IF a kids kids2=else | FOR a=target b=iter c=test
 *   kids kids2=else flag=recursive | SET a=target b=value | SET_BLOCK a c=filter
 *   kids | MACRO val names kids2=defaults kids flag | CALLBLOCK a=call names
 *   kids2=defaults kids | FILTERBLOCK c kids | WITH names kids2 kids |
 *   SCOPE kids | BREAK | CONTINUE
 *
 * Unknown filters and tests are errors at parse time, except inside `if`
 * statements and inline if-expressions, where jinja2 3.x defers the error
 * until the filter actually runs; the same rule is applied here.
 *
 * Owns: the AST. Touches: the template arena only.
 */
#include <stdio.h>
#include <string.h>

#include "chat/jinja_internal.h"

#define JX_MAX_PARSE_DEPTH 200
/* Left-associative chains (a + b + c ..., x.a.b.c ..., x|f|g ...) are parsed
 * by loops but nest in the tree; this bounds the tree so evaluating it and
 * walking it stay within a small stack. */
#define JX_MAX_AST_DEPTH 400

typedef struct nodevec {
    jx_node **v;
    size_t n, cap;
} nodevec;

typedef struct parser {
    jx_heap *h;
    const jx_tok *t;
    size_t n, i;
    int depth;
    int loop_depth;
    /* open blocks and the end tags they wait for, for error messages */
    const char *tags[JX_MAX_PARSE_DEPTH + 1];
    const char *const *ends[JX_MAX_PARSE_DEPTH + 1];
    int ntags;
} parser;

static jx_node *parse_expression(parser *p, int with_condexpr);
static jx_node *parse_tuple(parser *p, int simplified, int with_condexpr,
                            const char *const *extra_end, int explicit_parens, int with_ns);
static jx_node *parse_unary(parser *p, int with_filter);
static jx_node *parse_postfix(parser *p, jx_node *node);
static jx_node *parse_primary(parser *p, int with_ns);
static jx_node **parse_statements(parser *p, const char *const *ends, int drop, size_t *n);

/* ---- token helpers ---------------------------------------------------- */

static const jx_tok *cur(const parser *p) {
    return &p->t[p->i];
}

static const jx_tok *look(const parser *p) {
    return &p->t[p->i + 1 < p->n ? p->i + 1 : p->n - 1];
}

static const jx_tok *next(parser *p) {
    const jx_tok *t = cur(p);
    if (p->i + 1 < p->n)
        p->i++;
    return t;
}

static int is_name(const jx_tok *t, const char *name) {
    size_t k = strlen(name);
    return t->type == JT_NAME && t->n == k && memcmp(t->p, name, k) == 0;
}

static int skip_name(parser *p, const char *name) {
    if (!is_name(cur(p), name))
        return 0;
    next(p);
    return 1;
}

static int skip_type(parser *p, int type) {
    if (cur(p)->type != type)
        return 0;
    next(p);
    return 1;
}

#if defined(__GNUC__)
__attribute__((noreturn))
#endif
static void
fail_unexpected(parser *p, const jx_tok *t, const char *want) {
    if (t->type == JT_NAME)
        m40_jx_throw(p->h, t->line, "expected token '%s', got '%.*s'", want, (int)t->n, t->p);
    if (t->type == JT_EOF)
        m40_jx_throw(p->h, t->line, "unexpected end of template, expected '%s'.", want);
    m40_jx_throw(p->h, t->line, "expected token '%s', got '%s'", want, m40_jx_tok_describe(t));
}

static const jx_tok *expect(parser *p, int type) {
    if (cur(p)->type != type) {
        jx_tok want = {.type = (uint8_t)type};
        fail_unexpected(p, cur(p), m40_jx_tok_describe(&want));
    }
    return next(p);
}

static const jx_tok *expect_name(parser *p, const char *name) {
    if (!is_name(cur(p), name))
        fail_unexpected(p, cur(p), name);
    return next(p);
}

static jx_node *mk(parser *p, int kind, int line) {
    jx_node *n = m40_jx_alloc(p->h, sizeof *n);
    n->kind = (uint8_t)kind;
    n->line = line;
    n->ix = -1;
    return n;
}

static void push(parser *p, nodevec *v, jx_node *n) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        v->v = m40_jx_grow(p->h, v->v, v->n * sizeof(jx_node *), cap * sizeof(jx_node *));
        v->cap = cap;
    }
    v->v[v->n++] = n;
}

static jx_val tok_str(const jx_tok *t) {
    return m40_jx_strv(t->p, t->n);
}

static int kid_depth(const jx_node *k) {
    return k ? k->depth : 0;
}

/* Computes n's depth from its children and enforces the bound. */
static jx_node *fin(parser *p, jx_node *n) {
    int d = kid_depth(n->a);
    const jx_node *more[] = {n->b, n->c, n->dyn_args, n->dyn_kwargs};
    for (size_t i = 0; i < 4; i++)
        if (kid_depth(more[i]) > d)
            d = kid_depth(more[i]);
    for (size_t i = 0; i < n->nkids; i++)
        if (kid_depth(n->kids[i]) > d)
            d = kid_depth(n->kids[i]);
    for (size_t i = 0; i < n->nkids2; i++)
        if (kid_depth(n->kids2[i]) > d)
            d = kid_depth(n->kids2[i]);
    n->depth = d + 1;
    if (n->depth > JX_MAX_AST_DEPTH)
        m40_jx_throw(p->h, n->line, "expression nested too deeply");
    return n;
}

static void enter(parser *p, int line) {
    if (++p->depth > JX_MAX_PARSE_DEPTH)
        m40_jx_throw(p->h, line, "template nested too deeply");
}

/* ---- expressions ------------------------------------------------------ */

typedef struct callargs {
    nodevec args, kwv;
    jx_val *kwn;
    size_t nkw, capkw;
    jx_node *dyn_args, *dyn_kwargs;
} callargs;

static void parse_call_args(parser *p, callargs *ca) {
    const jx_tok *open = expect(p, JT_LPAREN);
    memset(ca, 0, sizeof *ca);
    int require_comma = 0;
    while (cur(p)->type != JT_RPAREN) {
        if (require_comma) {
            expect(p, JT_COMMA);
            if (cur(p)->type == JT_RPAREN)
                break;
        }
        if (cur(p)->type == JT_MUL) {
            if (ca->dyn_args || ca->dyn_kwargs)
                m40_jx_throw(p->h, open->line, "invalid syntax for function call expression");
            next(p);
            ca->dyn_args = parse_expression(p, 1);
        } else if (cur(p)->type == JT_POW) {
            if (ca->dyn_kwargs)
                m40_jx_throw(p->h, open->line, "invalid syntax for function call expression");
            next(p);
            ca->dyn_kwargs = parse_expression(p, 1);
        } else if (cur(p)->type == JT_NAME && look(p)->type == JT_ASSIGN) {
            if (ca->dyn_kwargs)
                m40_jx_throw(p->h, open->line, "invalid syntax for function call expression");
            jx_val key = tok_str(next(p));
            next(p);
            if (ca->nkw == ca->capkw) {
                size_t cap = ca->capkw ? ca->capkw * 2 : 4;
                ca->kwn =
                    m40_jx_grow(p->h, ca->kwn, ca->nkw * sizeof(jx_val), cap * sizeof(jx_val));
                ca->capkw = cap;
            }
            ca->kwn[ca->nkw++] = key;
            push(p, &ca->kwv, parse_expression(p, 1));
        } else {
            if (ca->dyn_args || ca->dyn_kwargs || ca->nkw)
                m40_jx_throw(p->h, open->line, "invalid syntax for function call expression");
            push(p, &ca->args, parse_expression(p, 1));
        }
        require_comma = 1;
    }
    expect(p, JT_RPAREN);
}

static void attach_args(jx_node *n, callargs *ca) {
    n->kids = ca->args.v;
    n->nkids = ca->args.n;
    n->kids2 = ca->kwv.v;
    n->nkids2 = ca->kwv.n;
    n->names = ca->kwn;
    n->nnames = ca->nkw;
    n->dyn_args = ca->dyn_args;
    n->dyn_kwargs = ca->dyn_kwargs;
}

/* name or dotted.name after `|` or `is` */
static jx_val dotted_name(parser *p) {
    const jx_tok *t = expect(p, JT_NAME);
    const char *start = t->p;
    size_t n = t->n;
    if (cur(p)->type != JT_DOT)
        return m40_jx_strv(start, n);
    jx_buf b = {0};
    m40_jx_buf_put(p->h, &b, start, n);
    while (skip_type(p, JT_DOT)) {
        const jx_tok *k = expect(p, JT_NAME);
        m40_jx_buf_putc(p->h, &b, '.');
        m40_jx_buf_put(p->h, &b, k->p, k->n);
    }
    return m40_jx_strv(b.p, b.n);
}

static jx_node *parse_filter(parser *p, jx_node *node, int start_inline) {
    while (cur(p)->type == JT_PIPE || start_inline) {
        if (!start_inline)
            next(p);
        int line = cur(p)->line;
        jx_node *f = mk(p, JN_FILTER, line);
        f->val = dotted_name(p);
        f->ix = m40_jx_filter_index(f->val.u.s.p, f->val.u.s.n);
        if (cur(p)->type == JT_LPAREN) {
            callargs ca;
            parse_call_args(p, &ca);
            attach_args(f, &ca);
        }
        f->a = node;
        node = fin(p, f);
        start_inline = 0;
    }
    return node;
}

static jx_node *parse_test(parser *p, jx_node *node) {
    const jx_tok *is = next(p);
    int negated = skip_name(p, "not");
    jx_node *t = mk(p, JN_TEST, is->line);
    t->val = dotted_name(p);
    t->ix = m40_jx_test_index(t->val.u.s.p, t->val.u.s.n);
    t->a = node;
    const jx_tok *c = cur(p);
    if (c->type == JT_LPAREN) {
        callargs ca;
        parse_call_args(p, &ca);
        attach_args(t, &ca);
    } else if ((c->type == JT_NAME || c->type == JT_STRING || c->type == JT_INT ||
                c->type == JT_FLOAT || c->type == JT_LPAREN || c->type == JT_LBRACKET ||
                c->type == JT_LBRACE) &&
               !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and")) {
        if (is_name(c, "is"))
            m40_jx_throw(p->h, c->line, "You cannot chain multiple tests with is");
        jx_node *arg = parse_postfix(p, parse_primary(p, 0));
        t->kids = m40_jx_alloc(p->h, sizeof(jx_node *));
        t->kids[0] = arg;
        t->nkids = 1;
    }
    fin(p, t);
    if (!negated)
        return t;
    jx_node *n = mk(p, JN_NOT, is->line);
    n->a = t;
    return fin(p, n);
}

static jx_node *parse_filter_expr(parser *p, jx_node *node) {
    for (;;) {
        if (cur(p)->type == JT_PIPE) {
            node = parse_filter(p, node, 0);
        } else if (is_name(cur(p), "is")) {
            node = parse_test(p, node);
        } else if (cur(p)->type == JT_LPAREN) {
            jx_node *c = mk(p, JN_CALL, cur(p)->line);
            callargs ca;
            parse_call_args(p, &ca);
            attach_args(c, &ca);
            c->a = node;
            node = fin(p, c);
        } else {
            return node;
        }
    }
}

static jx_node *parse_subscribed(parser *p) {
    int line = cur(p)->line;
    jx_node *args[3] = {NULL, NULL, NULL};
    if (cur(p)->type == JT_COLON) {
        next(p);
    } else {
        jx_node *node = parse_expression(p, 1);
        if (cur(p)->type != JT_COLON)
            return node;
        next(p);
        args[0] = node;
    }
    if (cur(p)->type != JT_COLON && cur(p)->type != JT_RBRACKET && cur(p)->type != JT_COMMA)
        args[1] = parse_expression(p, 1);
    if (cur(p)->type == JT_COLON) {
        next(p);
        if (cur(p)->type != JT_RBRACKET && cur(p)->type != JT_COMMA)
            args[2] = parse_expression(p, 1);
    }
    jx_node *s = mk(p, JN_SLICE, line);
    s->a = args[0];
    s->b = args[1];
    s->c = args[2];
    return fin(p, s);
}

static jx_node *parse_subscript(parser *p, jx_node *node) {
    const jx_tok *t = next(p);
    if (t->type == JT_DOT) {
        const jx_tok *attr = next(p);
        if (attr->type == JT_NAME) {
            jx_node *g = mk(p, JN_GETATTR, t->line);
            g->a = node;
            g->val = tok_str(attr);
            return fin(p, g);
        }
        if (attr->type != JT_INT)
            m40_jx_throw(p->h, attr->line, "expected name or number");
        jx_node *g = mk(p, JN_GETITEM, t->line);
        g->a = node;
        g->b = mk(p, JN_CONST, attr->line);
        g->b->val = attr->val;
        return fin(p, g);
    }
    nodevec args = {0};
    while (cur(p)->type != JT_RBRACKET) {
        if (args.n)
            expect(p, JT_COMMA);
        push(p, &args, parse_subscribed(p));
    }
    expect(p, JT_RBRACKET);
    jx_node *g = mk(p, JN_GETITEM, t->line);
    g->a = node;
    if (args.n == 1) {
        g->b = args.v[0];
    } else {
        g->b = mk(p, JN_TUPLE, t->line);
        g->b->kids = args.v;
        g->b->nkids = args.n;
        fin(p, g->b);
    }
    return fin(p, g);
}

static jx_node *parse_postfix(parser *p, jx_node *node) {
    for (;;) {
        int t = cur(p)->type;
        if (t == JT_DOT || t == JT_LBRACKET) {
            node = parse_subscript(p, node);
        } else if (t == JT_LPAREN) {
            jx_node *c = mk(p, JN_CALL, cur(p)->line);
            callargs ca;
            parse_call_args(p, &ca);
            attach_args(c, &ca);
            c->a = node;
            node = fin(p, c);
        } else {
            return node;
        }
    }
}

static jx_node *parse_list(parser *p) {
    const jx_tok *t = expect(p, JT_LBRACKET);
    nodevec items = {0};
    while (cur(p)->type != JT_RBRACKET) {
        if (items.n)
            expect(p, JT_COMMA);
        if (cur(p)->type == JT_RBRACKET)
            break;
        push(p, &items, parse_expression(p, 1));
    }
    expect(p, JT_RBRACKET);
    jx_node *n = mk(p, JN_LIST, t->line);
    n->kids = items.v;
    n->nkids = items.n;
    return fin(p, n);
}

static jx_node *parse_dict(parser *p) {
    const jx_tok *t = expect(p, JT_LBRACE);
    nodevec keys = {0}, vals = {0};
    while (cur(p)->type != JT_RBRACE) {
        if (keys.n)
            expect(p, JT_COMMA);
        if (cur(p)->type == JT_RBRACE)
            break;
        push(p, &keys, parse_expression(p, 1));
        expect(p, JT_COLON);
        push(p, &vals, parse_expression(p, 1));
    }
    expect(p, JT_RBRACE);
    jx_node *n = mk(p, JN_DICT, t->line);
    n->kids = keys.v;
    n->nkids = keys.n;
    n->kids2 = vals.v;
    n->nkids2 = vals.n;
    return fin(p, n);
}

static jx_node *parse_primary(parser *p, int with_ns) {
    const jx_tok *t = cur(p);
    jx_node *n;
    switch (t->type) {
        case JT_NAME:
            next(p);
            n = mk(p, JN_CONST, t->line);
            if (is_name(t, "true") || is_name(t, "True")) {
                n->val = m40_jx_bool(1);
            } else if (is_name(t, "false") || is_name(t, "False")) {
                n->val = m40_jx_bool(0);
            } else if (is_name(t, "none") || is_name(t, "None")) {
                n->val = m40_jx_none();
            } else if (with_ns && cur(p)->type == JT_DOT) {
                next(p);
                n->kind = JN_NSREF;
                n->val = tok_str(t);
                n->val2 = tok_str(expect(p, JT_NAME));
            } else {
                n->kind = JN_NAME;
                n->val = tok_str(t);
            }
            return n;
        case JT_STRING: {
            next(p);
            n = mk(p, JN_CONST, t->line);
            if (cur(p)->type != JT_STRING) {
                n->val = tok_str(t);
                return n;
            }
            jx_buf b = {0};
            m40_jx_buf_put(p->h, &b, t->p, t->n);
            while (cur(p)->type == JT_STRING) {
                m40_jx_buf_put(p->h, &b, cur(p)->p, cur(p)->n);
                next(p);
            }
            n->val = m40_jx_strv(b.p ? b.p : "", b.n);
            return n;
        }
        case JT_INT:
        case JT_FLOAT:
            next(p);
            n = mk(p, JN_CONST, t->line);
            n->val = t->val;
            return n;
        case JT_LPAREN:
            next(p);
            n = parse_tuple(p, 0, 1, NULL, 1, 0);
            expect(p, JT_RPAREN);
            return n;
        case JT_LBRACKET:
            return parse_list(p);
        case JT_LBRACE:
            return parse_dict(p);
        default:
            if (t->type == JT_EOF)
                m40_jx_throw(p->h, t->line, "unexpected end of template");
            m40_jx_throw(p->h, t->line, "unexpected '%s'", m40_jx_tok_describe(t));
    }
}

static jx_node *parse_unary(parser *p, int with_filter) {
    const jx_tok *t = cur(p);
    enter(p, t->line);
    jx_node *node;
    if (t->type == JT_SUB || t->type == JT_ADD) {
        next(p);
        node = mk(p, t->type == JT_SUB ? JN_NEG : JN_POS, t->line);
        node->a = parse_unary(p, 0);
        fin(p, node);
    } else {
        node = parse_primary(p, 0);
    }
    node = parse_postfix(p, node);
    if (with_filter)
        node = parse_filter_expr(p, node);
    p->depth--;
    return node;
}

static jx_node *binop(parser *p, int op, jx_node *a, jx_node *b, int line) {
    jx_node *n = mk(p, JN_BINOP, line);
    n->op = (uint8_t)op;
    n->a = a;
    n->b = b;
    return fin(p, n);
}

static jx_node *parse_pow(parser *p) {
    int line = cur(p)->line;
    jx_node *left = parse_unary(p, 1);
    while (cur(p)->type == JT_POW) {
        next(p);
        left = binop(p, JX_OP_POW, left, parse_unary(p, 1), line);
        line = cur(p)->line;
    }
    return left;
}

static jx_node *parse_math2(parser *p) {
    int line = cur(p)->line;
    jx_node *left = parse_pow(p);
    for (;;) {
        int t = cur(p)->type;
        int op = t == JT_MUL        ? JX_OP_MUL
                 : t == JT_DIV      ? JX_OP_DIV
                 : t == JT_FLOORDIV ? JX_OP_FLOORDIV
                 : t == JT_MOD      ? JX_OP_MOD
                                    : 0;
        if (!op)
            return left;
        next(p);
        left = binop(p, op, left, parse_pow(p), line);
        line = cur(p)->line;
    }
}

static jx_node *parse_concat(parser *p) {
    int line = cur(p)->line;
    jx_node *first = parse_math2(p);
    if (cur(p)->type != JT_TILDE)
        return first;
    nodevec args = {0};
    push(p, &args, first);
    while (skip_type(p, JT_TILDE))
        push(p, &args, parse_math2(p));
    jx_node *n = mk(p, JN_CONCAT, line);
    n->kids = args.v;
    n->nkids = args.n;
    return fin(p, n);
}

static jx_node *parse_math1(parser *p) {
    int line = cur(p)->line;
    jx_node *left = parse_concat(p);
    while (cur(p)->type == JT_ADD || cur(p)->type == JT_SUB) {
        int op = next(p)->type == JT_ADD ? JX_OP_ADD : JX_OP_SUB;
        left = binop(p, op, left, parse_concat(p), line);
        line = cur(p)->line;
    }
    return left;
}

static int compare_op(parser *p) {
    switch (cur(p)->type) {
        case JT_EQ:
            return JX_OP_EQ;
        case JT_NE:
            return JX_OP_NE;
        case JT_LT:
            return JX_OP_LT;
        case JT_LTEQ:
            return JX_OP_LTEQ;
        case JT_GT:
            return JX_OP_GT;
        case JT_GTEQ:
            return JX_OP_GTEQ;
        default:
            break;
    }
    if (is_name(cur(p), "in"))
        return JX_OP_IN;
    if (is_name(cur(p), "not") && is_name(look(p), "in"))
        return JX_OP_NOTIN;
    return 0;
}

static jx_node *parse_compare(parser *p) {
    int line = cur(p)->line;
    jx_node *expr = parse_math1(p);
    nodevec operands = {0};
    uint8_t ops[64];
    size_t nops = 0;
    int op;
    while ((op = compare_op(p)) != 0) {
        next(p);
        if (op == JX_OP_NOTIN)
            next(p);
        if (nops == sizeof ops)
            m40_jx_throw(p->h, line, "comparison chain too long");
        ops[nops++] = (uint8_t)op;
        push(p, &operands, parse_math1(p));
        line = cur(p)->line;
    }
    if (!nops)
        return expr;
    jx_node *n = mk(p, JN_COMPARE, line);
    n->a = expr;
    n->kids = operands.v;
    n->nkids = operands.n;
    n->ops = m40_jx_alloc(p->h, nops);
    memcpy(n->ops, ops, nops);
    return fin(p, n);
}

static jx_node *parse_not(parser *p) {
    if (is_name(cur(p), "not")) {
        const jx_tok *t = next(p);
        enter(p, t->line);
        jx_node *n = mk(p, JN_NOT, t->line);
        n->a = parse_not(p);
        p->depth--;
        return fin(p, n);
    }
    return parse_compare(p);
}

static jx_node *parse_and(parser *p) {
    int line = cur(p)->line;
    jx_node *left = parse_not(p);
    while (skip_name(p, "and")) {
        jx_node *n = mk(p, JN_AND, line);
        n->a = left;
        n->b = parse_not(p);
        left = fin(p, n);
        line = cur(p)->line;
    }
    return left;
}

static jx_node *parse_or(parser *p) {
    int line = cur(p)->line;
    jx_node *left = parse_and(p);
    while (skip_name(p, "or")) {
        jx_node *n = mk(p, JN_OR, line);
        n->a = left;
        n->b = parse_and(p);
        left = fin(p, n);
        line = cur(p)->line;
    }
    return left;
}

static jx_node *parse_condexpr(parser *p) {
    int line = cur(p)->line;
    jx_node *expr1 = parse_or(p);
    while (skip_name(p, "if")) {
        jx_node *n = mk(p, JN_CONDEXPR, line);
        n->a = parse_or(p);
        n->b = expr1;
        if (skip_name(p, "else"))
            n->c = parse_condexpr(p);
        expr1 = fin(p, n);
        line = cur(p)->line;
    }
    return expr1;
}

static jx_node *parse_expression(parser *p, int with_condexpr) {
    enter(p, cur(p)->line);
    jx_node *n = with_condexpr ? parse_condexpr(p) : parse_or(p);
    p->depth--;
    return n;
}

static int is_tuple_end(parser *p, const char *const *extra_end) {
    int t = cur(p)->type;
    if (t == JT_VAR_END || t == JT_BLOCK_END || t == JT_RPAREN)
        return 1;
    for (; extra_end && *extra_end; extra_end++)
        if (is_name(cur(p), *extra_end))
            return 1;
    return 0;
}

static jx_node *parse_tuple(parser *p, int simplified, int with_condexpr,
                            const char *const *extra_end, int explicit_parens, int with_ns) {
    int line = cur(p)->line;
    nodevec args = {0};
    int is_tuple = 0;
    for (;;) {
        if (args.n)
            expect(p, JT_COMMA);
        if (is_tuple_end(p, extra_end))
            break;
        push(p, &args, simplified ? parse_primary(p, with_ns) : parse_expression(p, with_condexpr));
        if (cur(p)->type == JT_COMMA)
            is_tuple = 1;
        else
            break;
        line = cur(p)->line;
    }
    if (!is_tuple) {
        if (args.n)
            return args.v[0];
        if (!explicit_parens) {
            const jx_tok *t = cur(p);
            if (t->type == JT_NAME)
                m40_jx_throw(p->h, t->line, "Expected an expression, got '%.*s'", (int)t->n, t->p);
            m40_jx_throw(p->h, t->line, "Expected an expression, got '%s'", m40_jx_tok_describe(t));
        }
    }
    jx_node *n = mk(p, JN_TUPLE, line);
    n->kids = args.v;
    n->nkids = args.n;
    return fin(p, n);
}

/* ---- statements ------------------------------------------------------- */

static void check_target(parser *p, jx_node *t) {
    if (t->kind == JN_NAME || t->kind == JN_NSREF)
        return;
    if (t->kind == JN_TUPLE) {
        for (size_t i = 0; i < t->nkids; i++)
            check_target(p, t->kids[i]);
        return;
    }
    m40_jx_throw(p->h, t->line, "can't assign to this expression");
}

static jx_node *parse_assign_target(parser *p, const char *const *extra_end, int with_ns) {
    jx_node *t = parse_tuple(p, 1, 1, extra_end, 0, with_ns);
    check_target(p, t);
    return t;
}

static jx_val parse_name_only(parser *p) {
    const jx_tok *t = expect(p, JT_NAME);
    return tok_str(t);
}

static jx_node *parse_set(parser *p) {
    int line = next(p)->line;
    jx_node *target = parse_assign_target(p, NULL, 1);
    if (skip_type(p, JT_ASSIGN)) {
        jx_node *n = mk(p, JN_SET, line);
        n->a = target;
        n->b = parse_tuple(p, 0, 1, NULL, 0, 0);
        return n;
    }
    static const char *const ends[] = {"endset", NULL};
    jx_node *n = mk(p, JN_SET_BLOCK, line);
    n->a = target;
    n->c = parse_filter(p, NULL, 0);
    /* the body is captured into a string; a loop's break can't cross it */
    int saved = p->loop_depth;
    p->loop_depth = 0;
    n->kids = parse_statements(p, ends, 1, &n->nkids);
    p->loop_depth = saved;
    return n;
}

/* Does a statement list define a macro (a closure over its scope)? */
static int defines_macro(jx_node **body, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const jx_node *s = body[i];
        if (s->kind == JN_MACRO)
            return 1;
        if (s->kind >= JN_TEXT &&
            (defines_macro(s->kids, s->nkids) || defines_macro(s->kids2, s->nkids2)))
            return 1;
    }
    return 0;
}

static jx_node *parse_for(parser *p) {
    static const char *const in_end[] = {"in", NULL};
    static const char *const rec_end[] = {"recursive", NULL};
    static const char *const body_end[] = {"endfor", "else", NULL};
    static const char *const else_end[] = {"endfor", NULL};
    int line = expect_name(p, "for")->line;
    jx_node *n = mk(p, JN_FOR, line);
    n->a = parse_assign_target(p, in_end, 0);
    expect_name(p, "in");
    n->b = parse_tuple(p, 0, 0, rec_end, 0, 0);
    if (skip_name(p, "if"))
        n->c = parse_expression(p, 1);
    n->flag = (uint8_t)skip_name(p, "recursive");
    p->loop_depth++;
    n->kids = parse_statements(p, body_end, 0, &n->nkids);
    p->loop_depth--;
    if (is_name(next(p), "else"))
        n->kids2 = parse_statements(p, else_end, 1, &n->nkids2);
    /* without closures over it, one scope can serve every iteration */
    n->op = (uint8_t)!defines_macro(n->kids, n->nkids);
    return n;
}

static jx_node *parse_if(parser *p) {
    static const char *const body_end[] = {"elif", "else", "endif", NULL};
    static const char *const else_end[] = {"endif", NULL};
    jx_node *result = mk(p, JN_IF, expect_name(p, "if")->line);
    jx_node *node = result;
    for (;;) {
        node->a = parse_tuple(p, 0, 0, NULL, 0, 0);
        node->kids = parse_statements(p, body_end, 0, &node->nkids);
        const jx_tok *t = next(p);
        if (is_name(t, "elif")) {
            jx_node *e = mk(p, JN_IF, cur(p)->line);
            node->kids2 = m40_jx_alloc(p->h, sizeof(jx_node *));
            node->kids2[0] = e;
            node->nkids2 = 1;
            node = e;
            continue;
        }
        if (is_name(t, "else"))
            node->kids2 = parse_statements(p, else_end, 1, &node->nkids2);
        return result;
    }
}

/* Does the subtree read the name (as jinja2's find_undeclared would)? */
static int reads_name(const jx_node *n, const char *name) {
    if (!n)
        return 0;
    if (n->kind == JN_NAME && m40_jx_str_eq(n->val, name))
        return 1;
    if (reads_name(n->a, name) || reads_name(n->b, name) || reads_name(n->c, name) ||
        reads_name(n->dyn_args, name) || reads_name(n->dyn_kwargs, name))
        return 1;
    for (size_t i = 0; i < n->nkids; i++)
        if (reads_name(n->kids[i], name))
            return 1;
    for (size_t i = 0; i < n->nkids2; i++)
        if (reads_name(n->kids2[i], name))
            return 1;
    return 0;
}

static int body_reads(jx_node **body, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (reads_name(body[i], name))
            return 1;
    return 0;
}

static void parse_signature(parser *p, jx_node *n) {
    nodevec defaults = {0};
    jx_val *names = NULL;
    size_t nn = 0, cap = 0;
    expect(p, JT_LPAREN);
    while (cur(p)->type != JT_RPAREN) {
        if (nn)
            expect(p, JT_COMMA);
        jx_val name = parse_name_only(p);
        if (skip_type(p, JT_ASSIGN))
            push(p, &defaults, parse_expression(p, 1));
        else if (defaults.n)
            m40_jx_throw(p->h, cur(p)->line, "non-default argument follows default argument");
        if (nn == cap) {
            cap = cap ? cap * 2 : 4;
            names = m40_jx_grow(p->h, names, nn * sizeof(jx_val), cap * sizeof(jx_val));
        }
        names[nn++] = name;
    }
    expect(p, JT_RPAREN);
    n->names = names;
    n->nnames = nn;
    n->kids2 = defaults.v;
    n->nkids2 = defaults.n;
}

static void macro_flags(jx_node *n) {
    int explicit_caller = 0;
    for (size_t i = 0; i < n->nnames; i++)
        if (m40_jx_str_eq(n->names[i], "caller"))
            explicit_caller = 1;
    if (body_reads(n->kids, n->nkids, "varargs"))
        n->flag |= JX_MACRO_VARARGS;
    if (body_reads(n->kids, n->nkids, "kwargs"))
        n->flag |= JX_MACRO_KWARGS;
    if (!explicit_caller && body_reads(n->kids, n->nkids, "caller"))
        n->flag |= JX_MACRO_CALLER;
}

static jx_node *parse_macro(parser *p) {
    static const char *const ends[] = {"endmacro", NULL};
    jx_node *n = mk(p, JN_MACRO, next(p)->line);
    n->val = parse_name_only(p);
    parse_signature(p, n);
    int saved = p->loop_depth;
    p->loop_depth = 0;
    n->kids = parse_statements(p, ends, 1, &n->nkids);
    p->loop_depth = saved;
    macro_flags(n);
    return n;
}

static jx_node *parse_call_block(parser *p) {
    static const char *const ends[] = {"endcall", NULL};
    jx_node *n = mk(p, JN_CALLBLOCK, next(p)->line);
    if (cur(p)->type == JT_LPAREN)
        parse_signature(p, n);
    jx_node *call = parse_expression(p, 1);
    if (call->kind != JN_CALL)
        m40_jx_throw(p->h, n->line, "expected call");
    n->a = call;
    int saved = p->loop_depth;
    p->loop_depth = 0;
    n->kids = parse_statements(p, ends, 1, &n->nkids);
    p->loop_depth = saved;
    macro_flags(n);
    return n;
}

static jx_node *parse_filter_block(parser *p) {
    static const char *const ends[] = {"endfilter", NULL};
    jx_node *n = mk(p, JN_FILTERBLOCK, next(p)->line);
    n->c = parse_filter(p, NULL, 1);
    int saved = p->loop_depth;
    p->loop_depth = 0;
    n->kids = parse_statements(p, ends, 1, &n->nkids);
    p->loop_depth = saved;
    return n;
}

static jx_node *parse_with(parser *p) {
    static const char *const ends[] = {"endwith", NULL};
    jx_node *n = mk(p, JN_WITH, next(p)->line);
    nodevec vals = {0};
    jx_val *names = NULL;
    size_t nn = 0, cap = 0;
    while (cur(p)->type != JT_BLOCK_END) {
        if (nn)
            expect(p, JT_COMMA);
        jx_val name = parse_name_only(p);
        expect(p, JT_ASSIGN);
        push(p, &vals, parse_expression(p, 1));
        if (nn == cap) {
            cap = cap ? cap * 2 : 4;
            names = m40_jx_grow(p->h, names, nn * sizeof(jx_val), cap * sizeof(jx_val));
        }
        names[nn++] = name;
    }
    n->names = names;
    n->nnames = nn;
    n->kids2 = vals.v;
    n->nkids2 = vals.n;
    n->kids = parse_statements(p, ends, 1, &n->nkids);
    return n;
}

static jx_node *parse_print(parser *p, nodevec *extra) {
    int line = next(p)->line;
    jx_node *first = NULL;
    while (cur(p)->type != JT_BLOCK_END) {
        if (first)
            expect(p, JT_COMMA);
        jx_node *o = mk(p, JN_OUTPUT, line);
        o->a = parse_expression(p, 1);
        if (!first)
            first = o;
        else
            push(p, extra, o);
    }
    return first;
}

#if defined(__GNUC__)
__attribute__((noreturn))
#endif
static void
fail_tag(parser *p, const jx_tok *t, int eof) {
    char msg[400];
    size_t k = 0;
    if (eof)
        k += (size_t)snprintf(msg, sizeof msg, "Unexpected end of template.");
    else
        k += (size_t)snprintf(msg, sizeof msg, "Encountered unknown tag '%.*s'.", (int)t->n, t->p);
    if (p->ntags > 0 && k < sizeof msg) {
        const char *const *e = p->ends[p->ntags - 1];
        k += (size_t)snprintf(msg + k, sizeof msg - k,
                              " Jinja was looking for the following tags: ");
        for (int i = 0; e[i] && k < sizeof msg; i++)
            k += (size_t)snprintf(msg + k, sizeof msg - k, "%s'%s'", i ? " or " : "", e[i]);
        if (k < sizeof msg)
            k += (size_t)snprintf(msg + k, sizeof msg - k,
                                  ". The innermost block that needs to be closed is '%s'.",
                                  p->tags[p->ntags - 1]);
    }
    m40_jx_throw(p->h, t->line, "%s", msg);
}

static const char *const k_unsupported_tags[] = {"block", "extends",    "include", "import",
                                                 "from",  "autoescape", "do",      NULL};

/* One `{% ... %}` statement; the cursor is on its name. Returns NULL for
 * statements that produce nothing. */
static jx_node *parse_statement(parser *p, nodevec *extra) {
    const jx_tok *t = cur(p);
    if (t->type != JT_NAME)
        m40_jx_throw(p->h, t->line, "tag name expected");
    if (is_name(t, "for"))
        return parse_for(p);
    if (is_name(t, "if"))
        return parse_if(p);
    if (is_name(t, "set"))
        return parse_set(p);
    if (is_name(t, "macro"))
        return parse_macro(p);
    if (is_name(t, "call"))
        return parse_call_block(p);
    if (is_name(t, "filter"))
        return parse_filter_block(p);
    if (is_name(t, "with"))
        return parse_with(p);
    if (is_name(t, "print"))
        return parse_print(p, extra);
    if (is_name(t, "generation")) {
        /* transformers' AssistantTracker: renders its body unchanged */
        static const char *const ends[] = {"endgeneration", NULL};
        jx_node *n = mk(p, JN_SCOPE, next(p)->line);
        int saved = p->loop_depth;
        p->loop_depth = 0;
        n->kids = parse_statements(p, ends, 1, &n->nkids);
        p->loop_depth = saved;
        return n;
    }
    if (is_name(t, "break") || is_name(t, "continue")) {
        if (p->loop_depth == 0)
            m40_jx_throw(p->h, t->line, "'%.*s' outside of a loop", (int)t->n, t->p);
        return mk(p, is_name(next(p), "break") ? JN_BREAK : JN_CONTINUE, t->line);
    }
    for (int i = 0; k_unsupported_tags[i]; i++)
        if (is_name(t, k_unsupported_tags[i]))
            m40_jx_throw(p->h, t->line, "the '%s' tag is not supported in chat templates",
                         k_unsupported_tags[i]);
    fail_tag(p, t, 0);
}

static int at_end_tag(parser *p, const char *const *ends) {
    for (; ends && *ends; ends++)
        if (is_name(cur(p), *ends))
            return 1;
    return 0;
}

/* jinja2's subparse: data, {{ }} and statements until one of `ends`. */
static jx_node **subparse(parser *p, const char *const *ends, size_t *count) {
    nodevec body = {0};
    for (;;) {
        const jx_tok *t = cur(p);
        if (t->type == JT_DATA) {
            jx_node *n = mk(p, JN_TEXT, t->line);
            n->val = tok_str(t);
            push(p, &body, n);
            next(p);
        } else if (t->type == JT_VAR_BEGIN) {
            next(p);
            jx_node *n = mk(p, JN_OUTPUT, t->line);
            n->a = parse_tuple(p, 0, 1, NULL, 0, 0);
            expect(p, JT_VAR_END);
            push(p, &body, n);
        } else if (t->type == JT_BLOCK_BEGIN) {
            next(p);
            if (ends && at_end_tag(p, ends))
                break;
            enter(p, t->line);
            nodevec extra = {0};
            jx_node *n = parse_statement(p, &extra);
            p->depth--;
            if (n)
                push(p, &body, n);
            for (size_t i = 0; i < extra.n; i++)
                push(p, &body, extra.v[i]);
            expect(p, JT_BLOCK_END);
        } else if (t->type == JT_EOF) {
            if (ends)
                fail_tag(p, t, 1);
            break;
        } else {
            m40_jx_throw(p->h, t->line, "unexpected '%s'", m40_jx_tok_describe(t));
        }
    }
    *count = body.n;
    return body.v;
}

static jx_node **parse_statements(parser *p, const char *const *ends, int drop, size_t *n) {
    skip_type(p, JT_COLON);
    expect(p, JT_BLOCK_END);
    if (p->ntags >= JX_MAX_PARSE_DEPTH)
        m40_jx_throw(p->h, cur(p)->line, "template nested too deeply");
    /* the open tag is the one the end* tag closes: endfor -> for */
    const char *tag = ends[0];
    for (int i = 0; ends[i]; i++)
        if (strncmp(ends[i], "end", 3) == 0)
            tag = ends[i] + 3;
    p->tags[p->ntags] = tag;
    p->ends[p->ntags] = ends;
    p->ntags++;
    jx_node **body = subparse(p, ends, n);
    p->ntags--;
    if (drop)
        next(p);
    return body;
}

/* ---- unknown filters and tests --------------------------------------- */

static void check_node(parser *p, const jx_node *n, int soft);

static void check_list(parser *p, jx_node **v, size_t n, int soft) {
    for (size_t i = 0; i < n; i++)
        check_node(p, v[i], soft);
}

static void check_node(parser *p, const jx_node *n, int soft) {
    if (!n)
        return;
    switch (n->kind) {
        case JN_FILTER:
        case JN_TEST:
            if (n->ix < 0 && !soft)
                m40_jx_throw(p->h, n->line, "unknown %s '%.*s'",
                             n->kind == JN_FILTER ? "filter" : "test", (int)n->val.u.s.n,
                             n->val.u.s.p);
            break;
        case JN_IF:
        case JN_CONDEXPR:
            soft = 1;
            break;
        case JN_FOR:
            check_node(p, n->b, soft);
            check_node(p, n->c, 0);
            check_list(p, n->kids, n->nkids, 0);
            check_list(p, n->kids2, n->nkids2, 0);
            return;
        case JN_MACRO:
        case JN_SET_BLOCK:
        case JN_FILTERBLOCK:
        case JN_WITH:
        case JN_SCOPE:
            check_node(p, n->c, soft);
            check_list(p, n->kids2, n->nkids2, soft);
            check_list(p, n->kids, n->nkids, 0);
            return;
        case JN_CALLBLOCK:
            check_node(p, n->a, soft);
            check_list(p, n->kids2, n->nkids2, soft);
            check_list(p, n->kids, n->nkids, 0);
            return;
        default:
            break;
    }
    check_node(p, n->a, soft);
    check_node(p, n->b, soft);
    check_node(p, n->c, soft);
    check_node(p, n->dyn_args, soft);
    check_node(p, n->dyn_kwargs, soft);
    check_list(p, n->kids, n->nkids, soft);
    check_list(p, n->kids2, n->nkids2, soft);
}

void m40_jx_parse(jx_template *t, const jx_toks *toks) {
    parser p = {.h = &t->heap, .t = toks->v, .n = toks->n};
    t->body = subparse(&p, NULL, &t->nbody);
    check_list(&p, t->body, t->nbody, 0);
}
