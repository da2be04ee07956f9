/* jinja_eval.c - runs the AST: statements write to the current output
 * buffer, expressions produce values. Scoping follows jinja2's compiled
 * code: each for-loop iteration, macro call and block capture gets a fresh
 * scope whose parent is where it was written, so `{% set %}` inside a loop
 * does not survive the iteration (namespaces are how templates carry state
 * out), while `if` shares its enclosing scope.
 *
 * Attribute and item lookup follow the sandboxed environment: `a.b` tries
 * the Python attribute (a dict's items(), a str's strip()) before the key,
 * `a['b']` the key before the attribute; what is missing is Undefined,
 * which prints as nothing and is falsy but raises when used otherwise.
 *
 * Every recursion (expression, statement, macro call) counts against a
 * depth limit and every loop iteration against an iteration limit, so a
 * hostile template ends in an error, never a hang or a stack overflow.
 *
 * Owns: evaluation. Touches: the render arena.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "chat/jinja_internal.h"

enum { EX_OK = 0, EX_BREAK, EX_CONTINUE };

static jx_val eval(jx_ctx *c, const jx_node *n, jx_scope *s);
static int exec_body(jx_ctx *c, jx_node **body, size_t n, jx_scope *s);
static jx_val run_loop(jx_ctx *c, const jx_node *n, jx_scope *s, jx_val it, int depth0,
                       int capture);

/* ---- limits and errors ----------------------------------------------- */

static void enter(jx_ctx *c, int line) {
    c->h.line = line;
    if (++c->depth > c->lim.max_depth)
        m40_jx_throw(&c->h, line, "recursion limit exceeded (depth %d)", c->lim.max_depth);
}

static void leave(jx_ctx *c) {
    c->depth--;
}

void m40_jx_count_iteration(jx_ctx *c, int line) {
    if (++c->iterations > c->lim.max_iterations)
        m40_jx_throw(&c->h, line, "loop iteration limit exceeded (%llu)",
                     (unsigned long long)c->lim.max_iterations);
}

void m40_jx_check_defined(jx_ctx *c, jx_val v, int line) {
    if (v.t != JX_UNDEF)
        return;
    m40_jx_throw(&c->h, line, "%s", v.u.hint ? v.u.hint : "undefined value");
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static jx_val
undef_fmt(jx_ctx *c, const char *fmt, ...) {
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return m40_jx_undef(m40_jx_strndup(&c->h, msg, strlen(msg)));
}

/* repr(x) clipped for messages */
static const char *short_repr(jx_ctx *c, jx_val v) {
    jx_buf b = {0};
    m40_jx_write_repr(&c->h, &b, v);
    if (b.n > 80)
        b.n = 80;
    return m40_jx_strndup(&c->h, b.p ? b.p : "", b.n);
}

static jx_val undef_attr(jx_ctx *c, jx_val obj, jx_val name) {
    if (name.t != JX_STR)
        return undef_fmt(c, "%s has no element %s", m40_jx_object_repr(obj), short_repr(c, name));
    return undef_fmt(c, "'%s' has no attribute %s", m40_jx_object_repr(obj), short_repr(c, name));
}

/* ---- scopes ----------------------------------------------------------- */

static jx_scope *scope_new(jx_ctx *c, jx_scope *parent) {
    jx_scope *s = m40_jx_alloc(&c->h, sizeof *s);
    s->parent = parent;
    return s;
}

static jx_val *scope_find(jx_scope *s, const char *p, size_t n) {
    for (; s; s = s->parent) {
        jx_val *v = m40_jx_dict_find_str(&s->vars, p, n);
        if (v)
            return v;
    }
    return NULL;
}

static void scope_set(jx_ctx *c, jx_scope *s, jx_val name, jx_val v) {
    m40_jx_dict_set(&c->h, &s->vars, name, v);
}

/* ---- lookups ---------------------------------------------------------- */

static jx_val loop_attr(jx_ctx *c, jx_val lv, jx_val name, int *found) {
    const jx_loop *l = lv.u.loop;
    int64_t i = (int64_t)l->i, n = (int64_t)l->items->n;
    *found = 1;
    if (m40_jx_str_eq(name, "index"))
        return m40_jx_int(i + 1);
    if (m40_jx_str_eq(name, "index0"))
        return m40_jx_int(i);
    if (m40_jx_str_eq(name, "first"))
        return m40_jx_bool(i == 0);
    if (m40_jx_str_eq(name, "last"))
        return m40_jx_bool(i == n - 1);
    if (m40_jx_str_eq(name, "length"))
        return m40_jx_int(n);
    if (m40_jx_str_eq(name, "revindex"))
        return m40_jx_int(n - i);
    if (m40_jx_str_eq(name, "revindex0"))
        return m40_jx_int(n - i - 1);
    if (m40_jx_str_eq(name, "depth"))
        return m40_jx_int(l->depth0 + 1);
    if (m40_jx_str_eq(name, "depth0"))
        return m40_jx_int(l->depth0);
    if (m40_jx_str_eq(name, "previtem"))
        return i > 0 ? l->items->v[i - 1] : m40_jx_undef("there is no previous item");
    if (m40_jx_str_eq(name, "nextitem"))
        return i + 1 < n ? l->items->v[i + 1] : m40_jx_undef("there is no next item");
    jx_val m;
    if (m40_jx_method(c, lv, name.u.s.p, name.u.s.n, &m))
        return m;
    *found = 0;
    return m40_jx_undef(NULL);
}

jx_val m40_jx_getattr(jx_ctx *c, jx_val obj, jx_val name, int line) {
    jx_val m, *v;
    int found;
    switch (obj.t) {
        case JX_UNDEF:
            m40_jx_check_defined(c, obj, line);
            break;
        case JX_DICT:
            if (m40_jx_method(c, obj, name.u.s.p, name.u.s.n, &m))
                return m;
            if ((v = m40_jx_dict_find(obj.u.d, name)) != NULL)
                return *v;
            break;
        case JX_NS:
            if ((v = m40_jx_dict_find(obj.u.d, name)) != NULL)
                return *v;
            break;
        case JX_LOOP: {
            jx_val r = loop_attr(c, obj, name, &found);
            if (found)
                return r;
            break;
        }
        default:
            if (m40_jx_method(c, obj, name.u.s.p, name.u.s.n, &m))
                return m;
            break;
    }
    return undef_attr(c, obj, name);
}

static int64_t as_index(jx_val k) {
    return k.t == JX_BOOL ? k.u.b : k.u.i;
}

jx_val m40_jx_getitem(jx_ctx *c, jx_val obj, jx_val key, int line) {
    jx_val *v;
    switch (obj.t) {
        case JX_UNDEF:
            m40_jx_check_defined(c, obj, line);
            break;
        case JX_DICT:
            if (m40_jx_hashable(key) && (v = m40_jx_dict_find(obj.u.d, key)) != NULL)
                return *v;
            break;
        case JX_LIST:
            if ((key.t == JX_INT || key.t == JX_BOOL) && obj.sub != JX_LIST_GEN) {
                int64_t i = as_index(key), n = (int64_t)obj.u.l->n;
                if (i < 0)
                    i += n;
                if (i >= 0 && i < n)
                    return obj.u.l->v[i];
                return undef_attr(c, obj, key);
            }
            break;
        case JX_STR:
            if (key.t == JX_INT || key.t == JX_BOOL) {
                int64_t i = as_index(key);
                int64_t n = (int64_t)m40_jx_utf8_len(obj.u.s.p, obj.u.s.n);
                if (i < 0)
                    i += n;
                if (i < 0 || i >= n)
                    return undef_attr(c, obj, key);
                size_t a = m40_jx_utf8_offset(obj.u.s.p, obj.u.s.n, (size_t)i);
                size_t b = a;
                m40_jx_utf8_next(obj.u.s.p, obj.u.s.n, &b);
                return m40_jx_strv(obj.u.s.p + a, b - a);
            }
            break;
        default:
            break;
    }
    if (key.t == JX_STR && obj.t != JX_UNDEF)
        return m40_jx_getattr(c, obj, key, line);
    return undef_attr(c, obj, key);
}

/* PySlice_AdjustIndices for one bound. */
static int64_t slice_bound(jx_ctx *c, jx_val v, int64_t len, int64_t step, int is_start, int line) {
    if (v.t == JX_NONE || v.t == JX_UNDEF) {
        if (v.t == JX_UNDEF && v.sub != JX_UNDEF_MISSING)
            m40_jx_check_defined(c, v, line);
        if (step < 0)
            return is_start ? len - 1 : -1;
        return is_start ? 0 : len;
    }
    if (v.t != JX_INT && v.t != JX_BOOL)
        m40_jx_throw(&c->h, line,
                     "slice indices must be integers or None or have an __index__ method");
    int64_t i = as_index(v);
    if (i < 0) {
        i += len;
        if (i < 0)
            i = step < 0 ? -1 : 0;
    } else if (i >= len) {
        i = step < 0 ? len - 1 : len;
    }
    return i;
}

static jx_val do_slice(jx_ctx *c, jx_val obj, const jx_node *sl, jx_scope *s) {
    jx_val a = sl->a ? eval(c, sl->a, s) : m40_jx_missing();
    jx_val b = sl->b ? eval(c, sl->b, s) : m40_jx_missing();
    jx_val st = sl->c ? eval(c, sl->c, s) : m40_jx_missing();
    m40_jx_check_defined(c, obj, sl->line);
    int64_t step = 1;
    if (!m40_jx_is_missing(st) && st.t != JX_NONE) {
        if (st.t != JX_INT && st.t != JX_BOOL)
            m40_jx_throw(&c->h, sl->line,
                         "slice indices must be integers or None or have an __index__ method");
        step = as_index(st);
        if (step == 0)
            m40_jx_throw(&c->h, sl->line, "slice step cannot be zero");
    }
    if ((obj.t != JX_LIST && obj.t != JX_STR) || m40_jx_is_gen(obj))
        return undef_fmt(c, "%s has no element %s", m40_jx_object_repr(obj), "slice");
    size_t *offs = NULL;
    int64_t len;
    if (obj.t == JX_LIST) {
        len = (int64_t)obj.u.l->n;
    } else {
        /* code point offsets, so slicing counts characters like Python */
        len = (int64_t)m40_jx_utf8_len(obj.u.s.p, obj.u.s.n);
        offs = m40_jx_alloc(&c->h, ((size_t)len + 1) * sizeof *offs);
        size_t i = 0;
        for (int64_t k = 0; k < len; k++) {
            offs[k] = i;
            m40_jx_utf8_next(obj.u.s.p, obj.u.s.n, &i);
        }
        offs[len] = obj.u.s.n;
    }
    int64_t start = slice_bound(c, a, len, step, 1, sl->line);
    int64_t stop = slice_bound(c, b, len, step, 0, sl->line);
    if (obj.t == JX_LIST) {
        jx_val out = m40_jx_list_new(&c->h, 0, obj.sub == JX_LIST_TUPLE ? JX_LIST_TUPLE : 0);
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
            m40_jx_list_push(&c->h, out.u.l, obj.u.l->v[i]);
        return out;
    }
    if (step == 1)
        return start < stop ? m40_jx_strv(obj.u.s.p + offs[start], offs[stop] - offs[start])
                            : m40_jx_cstr("");
    jx_buf out = {0};
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
        m40_jx_buf_put(&c->h, &out, obj.u.s.p + offs[i], offs[i + 1] - offs[i]);
    return m40_jx_strv(out.p ? out.p : "", out.n);
}

/* ---- iteration -------------------------------------------------------- */

jx_list *m40_jx_iterate(jx_ctx *c, jx_val v, int line) {
    jx_val out;
    switch (v.t) {
        case JX_LIST:
            if (v.u.l->deferred_error)
                m40_jx_rethrow(&c->h, v.u.l->deferred_error);
            return v.u.l;
        case JX_UNDEF:
            return m40_jx_list_new(&c->h, 0, 0).u.l;
        case JX_DICT:
            out = m40_jx_list_new(&c->h, v.u.d->n, 0);
            for (size_t i = 0; i < v.u.d->n; i++)
                m40_jx_list_push(&c->h, out.u.l, v.u.d->k[i]);
            return out.u.l;
        case JX_STR: {
            out = m40_jx_list_new(&c->h, v.u.s.n, 0);
            size_t i = 0;
            while (i < v.u.s.n) {
                size_t a = i;
                m40_jx_utf8_next(v.u.s.p, v.u.s.n, &i);
                m40_jx_list_push(&c->h, out.u.l, m40_jx_strv(v.u.s.p + a, i - a));
            }
            return out.u.l;
        }
        default:
            m40_jx_throw(&c->h, line, "'%s' object is not iterable", m40_jx_type_name(v));
    }
}

int64_t m40_jx_len(jx_ctx *c, jx_val v, int line) {
    switch (v.t) {
        case JX_UNDEF:
            return 0;
        case JX_STR:
            return (int64_t)m40_jx_utf8_len(v.u.s.p, v.u.s.n);
        case JX_LIST:
            if (v.sub == JX_LIST_GEN)
                break;
            return (int64_t)v.u.l->n;
        case JX_DICT:
            return (int64_t)v.u.d->n;
        case JX_LOOP:
            return (int64_t)v.u.loop->items->n;
        default:
            break;
    }
    m40_jx_throw(&c->h, line, "object of type '%s' has no len()", m40_jx_type_name(v));
}

/* ---- calls ------------------------------------------------------------ */

static jx_val capture(jx_ctx *c, jx_node **body, size_t n, jx_scope *s) {
    jx_buf *saved = c->out;
    jx_buf b = {.limit = c->lim.max_output};
    c->out = &b;
    exec_body(c, body, n, s);
    c->out = saved;
    return m40_jx_strv(b.p ? b.p : "", b.n);
}

static const char *macro_name(const jx_func *f) {
    return f->node->kind == JN_CALLBLOCK ? "caller" : f->name;
}

static void bind_macro_params(jx_ctx *c, const jx_func *f, const jx_args *a, jx_scope *ms,
                              int *kw_used) {
    const jx_node *m = f->node;
    size_t np = m->nnames, nd = m->nkids2;
    for (size_t i = 0; i < np; i++) {
        jx_val v = m40_jx_missing();
        if (i < a->npos) {
            v = a->pos[i];
        } else {
            for (size_t k = 0; k < a->nkw; k++)
                if (!kw_used[k] && m40_jx_eq(a->kwn[k], m->names[i])) {
                    v = a->kwv[k];
                    kw_used[k] = 1;
                    break;
                }
        }
        if (m40_jx_is_missing(v)) {
            /* defaults belong to the last nd parameters and may read the
             * parameters bound before them */
            if (i + nd >= np)
                v = eval(c, m->kids2[i + nd - np], ms);
            else
                v = undef_fmt(c, "parameter '%.*s' was not provided", (int)m->names[i].u.s.n,
                              m->names[i].u.s.p);
        }
        scope_set(c, ms, m->names[i], v);
    }
}

static jx_val call_macro(jx_ctx *c, const jx_func *f, const jx_args *a, int line) {
    const jx_node *m = f->node;
    jx_scope *ms = scope_new(c, f->closure);
    int *kw_used = m40_jx_alloc(&c->h, (a->nkw + 1) * sizeof *kw_used);
    bind_macro_params(c, f, a, ms, kw_used);
    if (m->flag & JX_MACRO_CALLER) {
        jx_val caller = m40_jx_undef("No caller defined");
        for (size_t k = 0; k < a->nkw; k++)
            if (!kw_used[k] && m40_jx_str_eq(a->kwn[k], "caller")) {
                caller = a->kwv[k];
                kw_used[k] = 1;
            }
        scope_set(c, ms, m40_jx_cstr("caller"), caller);
    }
    jx_val kwargs = m40_jx_dict_new(&c->h, 0);
    for (size_t k = 0; k < a->nkw; k++) {
        if (kw_used[k])
            continue;
        if (!(m->flag & JX_MACRO_KWARGS))
            m40_jx_throw(&c->h, line, "macro '%s' takes no keyword argument '%.*s'", macro_name(f),
                         (int)a->kwn[k].u.s.n, a->kwn[k].u.s.p);
        m40_jx_dict_set(&c->h, kwargs.u.d, a->kwn[k], a->kwv[k]);
    }
    if (m->flag & JX_MACRO_KWARGS)
        scope_set(c, ms, m40_jx_cstr("kwargs"), kwargs);
    if (a->npos > m->nnames && !(m->flag & JX_MACRO_VARARGS))
        m40_jx_throw(&c->h, line, "macro '%s' takes not more than %zu argument(s)", macro_name(f),
                     m->nnames);
    if (m->flag & JX_MACRO_VARARGS) {
        jx_val va = m40_jx_list_new(&c->h, 0, JX_LIST_TUPLE);
        for (size_t i = m->nnames; i < a->npos; i++)
            m40_jx_list_push(&c->h, va.u.l, a->pos[i]);
        scope_set(c, ms, m40_jx_cstr("varargs"), va);
    }
    return capture(c, m->kids, m->nkids, ms);
}

jx_val m40_jx_call(jx_ctx *c, jx_val fn, const jx_args *a, int line) {
    enter(c, line);
    jx_val r;
    if (fn.t == JX_FUNC && fn.u.fn->kind == JXF_MACRO) {
        r = call_macro(c, fn.u.fn, a, line);
    } else if (fn.t == JX_FUNC) {
        r = fn.u.fn->fn(c, fn.u.fn->self, a);
    } else if (fn.t == JX_LOOP) {
        const jx_loop *l = fn.u.loop;
        if (!l->node->flag)
            m40_jx_throw(&c->h, line,
                         "The loop must have the 'recursive' marker to be called recursively.");
        if (a->npos != 1 || a->nkw)
            m40_jx_throw(&c->h, line, "loop() takes exactly one argument");
        r = run_loop(c, l->node, l->scope, a->pos[0], l->depth0 + 1, 1);
    } else {
        m40_jx_check_defined(c, fn, line);
        m40_jx_throw(&c->h, line, "'%s' object is not callable", m40_jx_type_name(fn));
    }
    leave(c);
    return r;
}

/* Evaluates a node's arguments (positional, keyword, *args, **kwargs). */
static void eval_args(jx_ctx *c, const jx_node *n, jx_scope *s, jx_args *a, size_t extra_kw) {
    jx_list *dyn = NULL;
    jx_dict *dynkw = NULL;
    if (n->dyn_args) {
        jx_val v = eval(c, n->dyn_args, s);
        dyn = m40_jx_iterate(c, v, n->line);
    }
    if (n->dyn_kwargs) {
        jx_val v = eval(c, n->dyn_kwargs, s);
        if (v.t != JX_DICT)
            m40_jx_throw(&c->h, n->line, "argument after ** must be a mapping, not %s",
                         m40_jx_type_name(v));
        dynkw = v.u.d;
    }
    size_t np = n->nkids + (dyn ? dyn->n : 0);
    size_t nk = n->nnames + (dynkw ? dynkw->n : 0) + extra_kw;
    a->pos = m40_jx_alloc(&c->h, (np + 1) * sizeof(jx_val));
    a->kwn = m40_jx_alloc(&c->h, (nk + 1) * sizeof(jx_val));
    a->kwv = m40_jx_alloc(&c->h, (nk + 1) * sizeof(jx_val));
    a->npos = a->nkw = 0;
    a->line = n->line;
    for (size_t i = 0; i < n->nkids; i++)
        a->pos[a->npos++] = eval(c, n->kids[i], s);
    for (size_t i = 0; dyn && i < dyn->n; i++)
        a->pos[a->npos++] = dyn->v[i];
    for (size_t i = 0; i < n->nnames; i++) {
        a->kwn[a->nkw] = n->names[i];
        a->kwv[a->nkw++] = eval(c, n->kids2[i], s);
    }
    for (size_t i = 0; dynkw && i < dynkw->n; i++) {
        if (dynkw->k[i].t != JX_STR)
            m40_jx_throw(&c->h, n->line, "keywords must be strings");
        a->kwn[a->nkw] = dynkw->k[i];
        a->kwv[a->nkw++] = dynkw->v[i];
    }
}

/* ---- expressions ------------------------------------------------------ */

static jx_val eval_filter(jx_ctx *c, const jx_node *n, jx_scope *s, jx_val hole) {
    jx_val v = n->a ? eval(c, n->a, s) : hole;
    jx_args a;
    eval_args(c, n, s, &a, 0);
    if (n->ix < 0)
        m40_jx_throw(&c->h, n->line, "unknown filter '%.*s'", (int)n->val.u.s.n, n->val.u.s.p);
    c->h.line = n->line;
    return m40_jx_filter_call(c, n->ix, v, &a, n->line);
}

/* A filter chain whose innermost subject is a captured block body. */
static jx_val apply_filter_chain(jx_ctx *c, const jx_node *chain, jx_scope *s, jx_val body) {
    if (!chain)
        return body;
    jx_val v = body;
    /* the chain is nested outermost-first; walk to the innermost */
    const jx_node *stack[64];
    int k = 0;
    for (const jx_node *f = chain; f; f = f->a) {
        if (k == 64)
            m40_jx_throw(&c->h, chain->line, "filter chain too long");
        stack[k++] = f;
    }
    for (int i = k - 1; i >= 0; i--) {
        const jx_node *f = stack[i];
        jx_args a;
        eval_args(c, f, s, &a, 0);
        if (f->ix < 0)
            m40_jx_throw(&c->h, f->line, "unknown filter '%.*s'", (int)f->val.u.s.n, f->val.u.s.p);
        v = m40_jx_filter_call(c, f->ix, v, &a, f->line);
    }
    return v;
}

static jx_val eval_test(jx_ctx *c, const jx_node *n, jx_scope *s) {
    jx_val v = eval(c, n->a, s);
    jx_args a;
    eval_args(c, n, s, &a, 0);
    if (n->ix < 0)
        m40_jx_throw(&c->h, n->line, "unknown test '%.*s'", (int)n->val.u.s.n, n->val.u.s.p);
    c->h.line = n->line;
    return m40_jx_bool(m40_jx_test_call(c, n->ix, v, &a, n->line));
}

static jx_val eval_compare(jx_ctx *c, const jx_node *n, jx_scope *s) {
    jx_val left = eval(c, n->a, s), r = m40_jx_bool(1);
    for (size_t i = 0; i < n->nkids; i++) {
        jx_val right = eval(c, n->kids[i], s);
        r = m40_jx_compare(c, n->ops[i], left, right, n->line);
        if (!m40_jx_truthy(r))
            return r;
        left = right;
    }
    return r;
}

static jx_val eval_concat(jx_ctx *c, const jx_node *n, jx_scope *s) {
    jx_buf b = {0};
    for (size_t i = 0; i < n->nkids; i++)
        m40_jx_write_str(&c->h, &b, eval(c, n->kids[i], s));
    return m40_jx_strv(b.p ? b.p : "", b.n);
}

static jx_val eval_seq(jx_ctx *c, const jx_node *n, jx_scope *s, int sub) {
    jx_val l = m40_jx_list_new(&c->h, n->nkids, sub);
    for (size_t i = 0; i < n->nkids; i++)
        m40_jx_list_push(&c->h, l.u.l, eval(c, n->kids[i], s));
    return l;
}

static jx_val eval_dict(jx_ctx *c, const jx_node *n, jx_scope *s) {
    jx_val d = m40_jx_dict_new(&c->h, n->nkids);
    for (size_t i = 0; i < n->nkids; i++) {
        jx_val k = eval(c, n->kids[i], s);
        jx_val v = eval(c, n->kids2[i], s);
        if (!m40_jx_hashable(k))
            m40_jx_throw(&c->h, n->line, "unhashable type: '%s'", m40_jx_type_name(k));
        m40_jx_dict_set(&c->h, d.u.d, k, v);
    }
    return d;
}

static jx_val eval_name(jx_ctx *c, const jx_node *n, jx_scope *s) {
    jx_val *v = scope_find(s, n->val.u.s.p, n->val.u.s.n);
    if (v)
        return *v;
    return undef_fmt(c, "'%.*s' is undefined", (int)n->val.u.s.n, n->val.u.s.p);
}

static jx_val eval_call(jx_ctx *c, const jx_node *n, jx_scope *s) {
    jx_val fn = eval(c, n->a, s);
    jx_args a;
    eval_args(c, n, s, &a, 0);
    return m40_jx_call(c, fn, &a, n->line);
}

static jx_val eval_condexpr(jx_ctx *c, const jx_node *n, jx_scope *s) {
    if (m40_jx_truthy(eval(c, n->a, s)))
        return eval(c, n->b, s);
    if (n->c)
        return eval(c, n->c, s);
    char msg[160];
    snprintf(msg, sizeof msg,
             "the inline if-expression on line %d evaluated to false and no else section was "
             "defined.",
             n->line);
    return m40_jx_undef(m40_jx_strndup(&c->h, msg, strlen(msg)));
}

static jx_val eval_inner(jx_ctx *c, const jx_node *n, jx_scope *s) {
    jx_val l;
    switch (n->kind) {
        case JN_CONST:
            return n->val;
        case JN_NAME:
            return eval_name(c, n, s);
        case JN_GETATTR:
            l = eval(c, n->a, s);
            return m40_jx_getattr(c, l, n->val, n->line);
        case JN_GETITEM:
            l = eval(c, n->a, s);
            if (n->b->kind == JN_SLICE)
                return do_slice(c, l, n->b, s);
            return m40_jx_getitem(c, l, eval(c, n->b, s), n->line);
        case JN_CALL:
            return eval_call(c, n, s);
        case JN_FILTER:
            return eval_filter(c, n, s, m40_jx_undef(NULL));
        case JN_TEST:
            return eval_test(c, n, s);
        case JN_NOT:
            return m40_jx_bool(!m40_jx_truthy(eval(c, n->a, s)));
        case JN_NEG:
        case JN_POS:
            return m40_jx_neg(c, eval(c, n->a, s), n->line, n->kind == JN_NEG);
        case JN_BINOP:
            l = eval(c, n->a, s);
            return m40_jx_binop(c, n->op, l, eval(c, n->b, s), n->line);
        case JN_AND:
            l = eval(c, n->a, s);
            return m40_jx_truthy(l) ? eval(c, n->b, s) : l;
        case JN_OR:
            l = eval(c, n->a, s);
            return m40_jx_truthy(l) ? l : eval(c, n->b, s);
        case JN_CONCAT:
            return eval_concat(c, n, s);
        case JN_COMPARE:
            return eval_compare(c, n, s);
        case JN_CONDEXPR:
            return eval_condexpr(c, n, s);
        case JN_LIST:
            return eval_seq(c, n, s, JX_LIST_PLAIN);
        case JN_TUPLE:
            return eval_seq(c, n, s, JX_LIST_TUPLE);
        case JN_DICT:
            return eval_dict(c, n, s);
        case JN_SLICE:
            m40_jx_throw(&c->h, n->line, "a slice can only be used as a subscript");
        default:
            m40_jx_throw(&c->h, n->line, "internal error: not an expression (%d)", n->kind);
    }
}

static jx_val eval(jx_ctx *c, const jx_node *n, jx_scope *s) {
    enter(c, n->line);
    jx_val v = eval_inner(c, n, s);
    leave(c);
    return v;
}

/* ---- statements ------------------------------------------------------- */

static void assign(jx_ctx *c, const jx_node *t, jx_val v, jx_scope *s) {
    if (t->kind == JN_NAME) {
        scope_set(c, s, t->val, v);
        return;
    }
    if (t->kind == JN_NSREF) {
        jx_val *ns = scope_find(s, t->val.u.s.p, t->val.u.s.n);
        if (!ns || ns->t != JX_NS)
            m40_jx_throw(&c->h, t->line, "cannot assign attribute on non-namespace object");
        m40_jx_dict_set(&c->h, ns->u.d, t->val2, v);
        return;
    }
    /* tuple unpacking */
    jx_list *items = m40_jx_iterate(c, v, t->line);
    if (items->n < t->nkids)
        m40_jx_throw(&c->h, t->line, "not enough values to unpack (expected %zu, got %zu)",
                     t->nkids, items->n);
    if (items->n > t->nkids)
        m40_jx_throw(&c->h, t->line, "too many values to unpack (expected %zu)", t->nkids);
    for (size_t i = 0; i < t->nkids; i++)
        assign(c, t->kids[i], items->v[i], s);
}

static jx_val run_loop(jx_ctx *c, const jx_node *n, jx_scope *s, jx_val it, int depth0,
                       int capture_out) {
    jx_list *items = m40_jx_iterate(c, it, n->line);
    if (n->c) {
        /* `for x in xs if cond`: filter first, so loop.length and
         * loop.index count only the kept items */
        jx_val kept = m40_jx_list_new(&c->h, 0, 0);
        jx_scope *ts = scope_new(c, s);
        for (size_t i = 0; i < items->n; i++) {
            m40_jx_count_iteration(c, n->line);
            ts->vars.n = 0;
            assign(c, n->a, items->v[i], ts);
            if (m40_jx_truthy(eval(c, n->c, ts)))
                m40_jx_list_push(&c->h, kept.u.l, items->v[i]);
        }
        items = kept.u.l;
    }
    jx_buf *saved = c->out;
    jx_buf b = {.limit = c->lim.max_output};
    if (capture_out)
        c->out = &b;
    jx_loop *lp = m40_jx_alloc(&c->h, sizeof *lp);
    lp->items = items;
    lp->depth0 = depth0;
    lp->node = n;
    lp->scope = s;
    jx_val loopv = {.t = JX_LOOP};
    loopv.u.loop = lp;
    static const char loop_name[] = "loop";
    /* a fresh scope per iteration, as jinja2's compiled loop has; reused
     * when the body defines no macro that could keep it alive */
    jx_scope *is = NULL;
    for (size_t i = 0; i < items->n; i++) {
        m40_jx_count_iteration(c, n->line);
        if (!is || !n->op)
            is = scope_new(c, s);
        is->vars.n = 0;
        lp->i = i;
        assign(c, n->a, items->v[i], is);
        scope_set(c, is, m40_jx_strv(loop_name, 4), loopv);
        if (exec_body(c, n->kids, n->nkids, is) == EX_BREAK)
            break;
    }
    if (items->n == 0 && n->nkids2)
        exec_body(c, n->kids2, n->nkids2, s);
    c->out = saved;
    return capture_out ? m40_jx_strv(b.p ? b.p : "", b.n) : m40_jx_none();
}

static jx_val make_macro(jx_ctx *c, const jx_node *n, jx_scope *s, const char *name) {
    jx_func *f = m40_jx_alloc(&c->h, sizeof *f);
    f->kind = JXF_MACRO;
    f->name = name;
    f->node = n;
    f->closure = s;
    jx_val v = {.t = JX_FUNC};
    v.u.fn = f;
    return v;
}

static void exec_callblock(jx_ctx *c, const jx_node *n, jx_scope *s) {
    const jx_node *call = n->a;
    jx_val fn = eval(c, call->a, s);
    jx_args a;
    eval_args(c, call, s, &a, 1);
    a.kwn[a.nkw] = m40_jx_cstr("caller");
    a.kwv[a.nkw++] = make_macro(c, n, s, "caller");
    jx_val r = m40_jx_call(c, fn, &a, n->line);
    m40_jx_write_str(&c->h, c->out, r);
}

static int exec_with(jx_ctx *c, const jx_node *n, jx_scope *s) {
    jx_scope *ws = scope_new(c, s);
    for (size_t i = 0; i < n->nnames; i++)
        scope_set(c, ws, n->names[i], eval(c, n->kids2[i], s));
    return exec_body(c, n->kids, n->nkids, ws);
}

static int exec(jx_ctx *c, const jx_node *n, jx_scope *s) {
    jx_val v;
    switch (n->kind) {
        case JN_TEXT:
            m40_jx_buf_put(&c->h, c->out, n->val.u.s.p, n->val.u.s.n);
            return EX_OK;
        case JN_OUTPUT:
            v = eval(c, n->a, s);
            m40_jx_write_str(&c->h, c->out, v);
            return EX_OK;
        case JN_IF:
            if (m40_jx_truthy(eval(c, n->a, s)))
                return exec_body(c, n->kids, n->nkids, s);
            return exec_body(c, n->kids2, n->nkids2, s);
        case JN_FOR:
            run_loop(c, n, s, eval(c, n->b, s), 0, 0);
            return EX_OK;
        case JN_SET:
            assign(c, n->a, eval(c, n->b, s), s);
            return EX_OK;
        case JN_SET_BLOCK:
            v = capture(c, n->kids, n->nkids, scope_new(c, s));
            assign(c, n->a, apply_filter_chain(c, n->c, s, v), s);
            return EX_OK;
        case JN_MACRO:
            v = make_macro(c, n, s, m40_jx_strndup(&c->h, n->val.u.s.p, n->val.u.s.n));
            scope_set(c, s, n->val, v);
            return EX_OK;
        case JN_CALLBLOCK:
            exec_callblock(c, n, s);
            return EX_OK;
        case JN_FILTERBLOCK:
            v = capture(c, n->kids, n->nkids, scope_new(c, s));
            m40_jx_write_str(&c->h, c->out, apply_filter_chain(c, n->c, s, v));
            return EX_OK;
        case JN_BREAK:
            return EX_BREAK;
        case JN_CONTINUE:
            return EX_CONTINUE;
        case JN_WITH:
            return exec_with(c, n, s);
        case JN_SCOPE:
            return exec_body(c, n->kids, n->nkids, scope_new(c, s));
        default:
            m40_jx_throw(&c->h, n->line, "internal error: not a statement (%d)", n->kind);
    }
}

static int exec_body(jx_ctx *c, jx_node **body, size_t n, jx_scope *s) {
    for (size_t i = 0; i < n; i++) {
        enter(c, body[i]->line);
        int rc = exec(c, body[i], s);
        leave(c);
        if (rc != EX_OK)
            return rc;
    }
    return EX_OK;
}

int m40_jx_render(jx_ctx *c, const jx_template *t, jx_buf *out) {
    c->tmpl = t;
    c->out = out;
    if (setjmp(c->h.jb))
        return -1;
    exec_body(c, t->body, t->nbody, c->globals);
    return 0;
}
