/* jinja_value.c - values as Python sees them: construction, lists and
 * insertion-ordered dicts, truthiness, equality, and str()/repr() exactly
 * as CPython prints them (True/None, 1.0, 1e-05, ['a', "b'c"]).
 *
 * Owns: value semantics that need no render context. Touches: the arena.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/jinja_internal.h"

jx_val m40_jx_str_copy(jx_heap *h, const char *p, size_t n) {
    return m40_jx_strv(m40_jx_strndup(h, p, n), n);
}

jx_val m40_jx_cstr(const char *s) {
    return m40_jx_strv(s, strlen(s));
}

jx_val m40_jx_list_new(jx_heap *h, size_t cap, int sub) {
    jx_val v = {.t = JX_LIST, .sub = (uint8_t)sub};
    v.u.l = m40_jx_alloc(h, sizeof *v.u.l);
    if (cap) {
        v.u.l->v = m40_jx_alloc(h, cap * sizeof(jx_val));
        v.u.l->cap = cap;
    }
    return v;
}

void m40_jx_list_push(jx_heap *h, jx_list *l, jx_val v) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        l->v = m40_jx_grow(h, l->v, l->n * sizeof(jx_val), cap * sizeof(jx_val));
        l->cap = cap;
    }
    l->v[l->n++] = v;
}

jx_val m40_jx_dict_new(jx_heap *h, size_t cap) {
    jx_val v = {.t = JX_DICT};
    v.u.d = m40_jx_alloc(h, sizeof *v.u.d);
    if (cap) {
        v.u.d->k = m40_jx_alloc(h, cap * sizeof(jx_val));
        v.u.d->v = m40_jx_alloc(h, cap * sizeof(jx_val));
        v.u.d->cap = cap;
    }
    return v;
}

int m40_jx_hashable(jx_val v) {
    switch (v.t) {
        case JX_NONE:
        case JX_BOOL:
        case JX_INT:
        case JX_FLOAT:
        case JX_STR:
        case JX_UNDEF:
        case JX_FUNC:
            return 1;
        case JX_LIST:
            if (v.sub != JX_LIST_TUPLE)
                return 0;
            for (size_t i = 0; i < v.u.l->n; i++)
                if (!m40_jx_hashable(v.u.l->v[i]))
                    return 0;
            return 1;
        default:
            return 0;
    }
}

jx_val *m40_jx_dict_find(const jx_dict *d, jx_val k) {
    for (size_t i = 0; i < d->n; i++)
        if (m40_jx_eq(d->k[i], k))
            return &d->v[i];
    return NULL;
}

jx_val *m40_jx_dict_find_str(const jx_dict *d, const char *s, size_t n) {
    for (size_t i = 0; i < d->n; i++) {
        const jx_val *k = &d->k[i];
        if (k->t == JX_STR && k->u.s.n == n && memcmp(k->u.s.p, s, n) == 0)
            return &d->v[i];
    }
    return NULL;
}

void m40_jx_dict_set(jx_heap *h, jx_dict *d, jx_val k, jx_val v) {
    jx_val *slot = m40_jx_dict_find(d, k);
    if (slot) {
        *slot = v;
        return;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        d->k = m40_jx_grow(h, d->k, d->n * sizeof(jx_val), cap * sizeof(jx_val));
        d->v = m40_jx_grow(h, d->v, d->n * sizeof(jx_val), cap * sizeof(jx_val));
        d->cap = cap;
    }
    d->k[d->n] = k;
    d->v[d->n] = v;
    d->n++;
}

int m40_jx_truthy(jx_val v) {
    switch (v.t) {
        case JX_UNDEF:
        case JX_NONE:
            return 0;
        case JX_BOOL:
            return v.u.b;
        case JX_INT:
            return v.u.i != 0;
        case JX_FLOAT:
            return v.u.f != 0.0;
        case JX_STR:
            return v.u.s.n != 0;
        case JX_LIST:
            return v.sub == JX_LIST_GEN || v.u.l->n != 0;
        case JX_DICT:
            return v.u.d->n != 0;
        default:
            return 1;
    }
}

int m40_jx_is_number(jx_val v) {
    return v.t == JX_BOOL || v.t == JX_INT || v.t == JX_FLOAT;
}

double m40_jx_as_double(jx_val v) {
    if (v.t == JX_BOOL)
        return v.u.b;
    if (v.t == JX_INT)
        return (double)v.u.i;
    return v.u.f;
}

int m40_jx_str_eq(jx_val v, const char *s) {
    size_t n = strlen(s);
    return v.t == JX_STR && v.u.s.n == n && memcmp(v.u.s.p, s, n) == 0;
}

static int num_eq(jx_val a, jx_val b) {
    if (a.t != JX_FLOAT && b.t != JX_FLOAT) {
        int64_t x = a.t == JX_BOOL ? a.u.b : a.u.i;
        int64_t y = b.t == JX_BOOL ? b.u.b : b.u.i;
        return x == y;
    }
    return m40_jx_as_double(a) == m40_jx_as_double(b);
}

static int dict_eq(const jx_dict *a, const jx_dict *b) {
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++) {
        jx_val *o = m40_jx_dict_find(b, a->k[i]);
        if (!o || !m40_jx_eq(a->v[i], *o))
            return 0;
    }
    return 1;
}

int m40_jx_eq(jx_val a, jx_val b) {
    if (m40_jx_is_number(a) && m40_jx_is_number(b))
        return num_eq(a, b);
    if (a.t != b.t)
        return 0;
    switch (a.t) {
        case JX_UNDEF:
        case JX_NONE:
            return 1;
        case JX_STR:
            return a.u.s.n == b.u.s.n && memcmp(a.u.s.p, b.u.s.p, a.u.s.n) == 0;
        case JX_LIST:
            if (a.sub == JX_LIST_GEN || b.sub == JX_LIST_GEN)
                return a.u.l == b.u.l;
            if ((a.sub == JX_LIST_TUPLE) != (b.sub == JX_LIST_TUPLE) || a.u.l->n != b.u.l->n)
                return 0;
            for (size_t i = 0; i < a.u.l->n; i++)
                if (!m40_jx_eq(a.u.l->v[i], b.u.l->v[i]))
                    return 0;
            return 1;
        case JX_DICT:
            return dict_eq(a.u.d, b.u.d);
        case JX_NS:
            return a.u.d == b.u.d;
        case JX_FUNC:
            return a.u.fn == b.u.fn;
        case JX_LOOP:
            return a.u.loop == b.u.loop;
        default:
            return 0;
    }
}

const char *m40_jx_type_name(jx_val v) {
    switch (v.t) {
        case JX_UNDEF:
            return "Undefined";
        case JX_NONE:
            return "NoneType";
        case JX_BOOL:
            return "bool";
        case JX_INT:
            return "int";
        case JX_FLOAT:
            return "float";
        case JX_STR:
            return "str";
        case JX_LIST:
            return v.sub == JX_LIST_TUPLE ? "tuple" : v.sub == JX_LIST_GEN ? "generator" : "list";
        case JX_DICT:
            return "dict";
        case JX_NS:
            return "Namespace";
        case JX_FUNC:
            return v.u.fn->kind == JXF_MACRO ? "Macro" : "function";
        case JX_LOOP:
            return "LoopContext";
        default:
            return "object";
    }
}

const char *m40_jx_object_repr(jx_val v) {
    switch (v.t) {
        case JX_NONE:
            return "None";
        case JX_BOOL:
            return "bool object";
        case JX_INT:
            return "int object";
        case JX_FLOAT:
            return "float object";
        case JX_STR:
            return "str object";
        case JX_LIST:
            return v.sub == JX_LIST_TUPLE ? "tuple object"
                   : v.sub == JX_LIST_GEN ? "generator object"
                                          : "list object";
        case JX_DICT:
            return "dict object";
        case JX_NS:
            return "jinja2.utils.Namespace object";
        case JX_FUNC:
            return v.u.fn->kind == JXF_MACRO ? "jinja2.runtime.Macro object" : "function object";
        case JX_LOOP:
            return "jinja2.runtime.LoopContext object";
        default:
            return "jinja2.runtime.Undefined object";
    }
}

/* CPython's float repr: the shortest digits that round-trip, printed
 * positionally when the decimal exponent is in [-4, 16), else as d.ddde+XX. */
void m40_jx_float_repr(double f, char *out, size_t cap) {
    if (isnan(f)) {
        snprintf(out, cap, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(out, cap, f < 0 ? "-inf" : "inf");
        return;
    }
    if (f == 0.0) {
        snprintf(out, cap, signbit(f) ? "-0.0" : "0.0");
        return;
    }
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, f);
        if (strtod(buf, NULL) == f)
            break;
    }
    /* buf: [-]d[.ddd]e[+-]XX */
    const char *p = buf;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    char digits[24];
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[nd++] = *p;
    digits[nd] = '\0';
    int exp10 = atoi(p + 1);
    int decpt = exp10 + 1;
    char *o = out;
    size_t left = cap;
#define PUT(c)          \
    do {                \
        if (left > 1) { \
            *o++ = (c); \
            left--;     \
        }               \
    } while (0)
    if (neg)
        PUT('-');
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            PUT('0');
            PUT('.');
            for (int i = 0; i < -decpt; i++)
                PUT('0');
            for (int i = 0; i < nd; i++)
                PUT(digits[i]);
        } else {
            for (int i = 0; i < decpt; i++)
                PUT(i < nd ? digits[i] : '0');
            PUT('.');
            if (decpt >= nd)
                PUT('0');
            for (int i = decpt; i < nd; i++)
                PUT(digits[i]);
        }
        *o = '\0';
    } else {
        PUT(digits[0]);
        if (nd > 1) {
            PUT('.');
            for (int i = 1; i < nd; i++)
                PUT(digits[i]);
        }
        *o = '\0';
        size_t used = (size_t)(o - out);
        snprintf(o, cap - used, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    }
#undef PUT
}

static void write_str_repr(jx_heap *h, jx_buf *b, const char *s, size_t n) {
    int has_sq = n && memchr(s, '\'', n) != NULL, has_dq = n && memchr(s, '"', n) != NULL;
    char q = (has_sq && !has_dq) ? '"' : '\'';
    m40_jx_buf_putc(h, b, q);
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        uint32_t c = m40_jx_utf8_next(s, n, &i);
        char esc[12];
        if (c == (uint32_t)q || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            m40_jx_buf_put(h, b, esc, 2);
        } else if (c == '\t' || c == '\n' || c == '\r') {
            esc[0] = '\\';
            esc[1] = c == '\t' ? 't' : c == '\n' ? 'n' : 'r';
            m40_jx_buf_put(h, b, esc, 2);
        } else if (m40_jx_isprintable(c)) {
            m40_jx_buf_put(h, b, s + start, i - start);
        } else if (c <= 0xFF) {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            m40_jx_buf_puts(h, b, esc);
        } else if (c <= 0xFFFF) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            m40_jx_buf_puts(h, b, esc);
        } else {
            snprintf(esc, sizeof esc, "\\U%08x", c);
            m40_jx_buf_puts(h, b, esc);
        }
    }
    m40_jx_buf_putc(h, b, q);
}

static void write_seq(jx_heap *h, jx_buf *b, jx_val v, int depth);

static void write_repr_d(jx_heap *h, jx_buf *b, jx_val v, int depth);

static void write_dict(jx_heap *h, jx_buf *b, const jx_dict *d, int depth) {
    m40_jx_buf_putc(h, b, '{');
    for (size_t i = 0; i < d->n; i++) {
        if (i)
            m40_jx_buf_put(h, b, ", ", 2);
        write_repr_d(h, b, d->k[i], depth + 1);
        m40_jx_buf_put(h, b, ": ", 2);
        write_repr_d(h, b, d->v[i], depth + 1);
    }
    m40_jx_buf_putc(h, b, '}');
}

static void write_seq(jx_heap *h, jx_buf *b, jx_val v, int depth) {
    const jx_list *l = v.u.l;
    static const char *const prefix[] = {"[", "(", "dict_items([", "dict_keys([", "dict_values(["};
    static const char *const suffix[] = {"]", ")", "])", "])", "])"};
    int sub = v.sub <= JX_LIST_VALUES ? v.sub : 0;
    m40_jx_buf_puts(h, b, prefix[sub]);
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            m40_jx_buf_put(h, b, ", ", 2);
        write_repr_d(h, b, l->v[i], depth + 1);
    }
    if (sub == JX_LIST_TUPLE && l->n == 1)
        m40_jx_buf_putc(h, b, ',');
    m40_jx_buf_puts(h, b, suffix[sub]);
}

static void write_repr_d(jx_heap *h, jx_buf *b, jx_val v, int depth) {
    /* Python prints a container holding itself as [...]; values here can
     * only nest that way through namespaces, so a depth cap suffices. */
    if (depth > 200)
        m40_jx_throw(h, h->line, "maximum recursion depth exceeded while getting the repr");
    switch (v.t) {
        case JX_STR:
            write_str_repr(h, b, v.u.s.p, v.u.s.n);
            return;
        case JX_UNDEF:
            m40_jx_buf_puts(h, b, "Undefined");
            return;
        case JX_LIST:
            if (v.sub == JX_LIST_GEN)
                m40_jx_buf_puts(h, b, "<generator object>");
            else
                write_seq(h, b, v, depth);
            return;
        case JX_DICT:
            write_dict(h, b, v.u.d, depth);
            return;
        case JX_NS:
            m40_jx_buf_puts(h, b, "<Namespace ");
            write_dict(h, b, v.u.d, depth);
            m40_jx_buf_putc(h, b, '>');
            return;
        default:
            m40_jx_write_str(h, b, v);
            return;
    }
}

void m40_jx_write_repr(jx_heap *h, jx_buf *b, jx_val v) {
    write_repr_d(h, b, v, 0);
}

void m40_jx_write_str(jx_heap *h, jx_buf *b, jx_val v) {
    char tmp[48];
    switch (v.t) {
        case JX_UNDEF:
            return;
        case JX_NONE:
            m40_jx_buf_put(h, b, "None", 4);
            return;
        case JX_BOOL:
            m40_jx_buf_puts(h, b, v.u.b ? "True" : "False");
            return;
        case JX_INT:
            snprintf(tmp, sizeof tmp, "%lld", (long long)v.u.i);
            m40_jx_buf_puts(h, b, tmp);
            return;
        case JX_FLOAT:
            m40_jx_float_repr(v.u.f, tmp, sizeof tmp);
            m40_jx_buf_puts(h, b, tmp);
            return;
        case JX_STR:
            m40_jx_buf_put(h, b, v.u.s.p, v.u.s.n);
            return;
        case JX_FUNC:
            if (v.u.fn->kind == JXF_MACRO) {
                m40_jx_buf_puts(h, b, "<Macro ");
                write_str_repr(h, b, v.u.fn->name, strlen(v.u.fn->name));
                m40_jx_buf_putc(h, b, '>');
            } else {
                m40_jx_buf_printf(h, b, "<built-in function %s>", v.u.fn->name);
            }
            return;
        case JX_LOOP: {
            size_t n = v.u.loop->items->n;
            m40_jx_buf_printf(h, b, "<LoopContext %zu/%zu>", v.u.loop->i + 1, n);
            return;
        }
        default:
            write_repr_d(h, b, v, 0);
            return;
    }
}

jx_val m40_jx_to_str(jx_heap *h, jx_val v) {
    if (v.t == JX_STR)
        return v;
    jx_buf b = {0};
    m40_jx_write_str(h, &b, v);
    return m40_jx_strv(b.p ? b.p : "", b.n);
}
