/* jinja_json.c - Python's json.dumps for template values: the `tojson`
 * filter as transformers defines it,
 *     json.dumps(x, ensure_ascii=False, indent=indent, separators=...,
 *                sort_keys=False)
 * byte for byte: separators (', ', ': ') without indent and (',', ': ')
 * with it, float repr, NaN/Infinity, non-string keys coerced as Python does.
 *
 * Owns: the JSON writer. Touches: the arena only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/jinja_internal.h"

static void dump_string(jx_ctx *c, jx_buf *b, const char *s, size_t n, int ascii) {
    jx_heap *h = &c->h;
    m40_jx_buf_putc(h, b, '"');
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        uint32_t cp = m40_jx_utf8_next(s, n, &i);
        char esc[16];
        switch (cp) {
            case '"':
                m40_jx_buf_put(h, b, "\\\"", 2);
                continue;
            case '\\':
                m40_jx_buf_put(h, b, "\\\\", 2);
                continue;
            case '\b':
                m40_jx_buf_put(h, b, "\\b", 2);
                continue;
            case '\f':
                m40_jx_buf_put(h, b, "\\f", 2);
                continue;
            case '\n':
                m40_jx_buf_put(h, b, "\\n", 2);
                continue;
            case '\r':
                m40_jx_buf_put(h, b, "\\r", 2);
                continue;
            case '\t':
                m40_jx_buf_put(h, b, "\\t", 2);
                continue;
            default:
                break;
        }
        if (cp < 0x20 || (ascii && cp >= 0x7F)) {
            if (cp > 0xFFFF) {
                uint32_t v = cp - 0x10000;
                snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xD800 + (v >> 10),
                         0xDC00 + (v & 0x3FF));
            } else {
                snprintf(esc, sizeof esc, "\\u%04x", cp);
            }
            m40_jx_buf_puts(h, b, esc);
        } else {
            m40_jx_buf_put(h, b, s + start, i - start);
        }
    }
    m40_jx_buf_putc(h, b, '"');
}

static void float_str(double f, char *out, size_t cap) {
    if (isnan(f))
        snprintf(out, cap, "NaN");
    else if (isinf(f))
        snprintf(out, cap, f < 0 ? "-Infinity" : "Infinity");
    else
        m40_jx_float_repr(f, out, cap);
}

static void newline_indent(jx_ctx *c, jx_buf *b, const jx_dump_opts *o, int level) {
    m40_jx_buf_putc(&c->h, b, '\n');
    for (int i = 0; i < level; i++)
        m40_jx_buf_put(&c->h, b, o->indent, o->indent_n);
}

/* A dict key as json.dumps coerces it, or throws TypeError. */
static jx_val key_string(jx_ctx *c, jx_val k, int line) {
    char tmp[48];
    switch (k.t) {
        case JX_STR:
            return k;
        case JX_FLOAT:
            float_str(k.u.f, tmp, sizeof tmp);
            return m40_jx_str_copy(&c->h, tmp, strlen(tmp));
        case JX_BOOL:
            return m40_jx_cstr(k.u.b ? "true" : "false");
        case JX_NONE:
            return m40_jx_cstr("null");
        case JX_INT:
            snprintf(tmp, sizeof tmp, "%lld", (long long)k.u.i);
            return m40_jx_str_copy(&c->h, tmp, strlen(tmp));
        default:
            m40_jx_throw(&c->h, line, "keys must be str, int, float, bool or None, not %s",
                         m40_jx_type_name(k));
    }
}

static void dump(jx_ctx *c, jx_buf *b, jx_val v, const jx_dump_opts *o, int level, int line);

static void dump_list(jx_ctx *c, jx_buf *b, const jx_list *l, const jx_dump_opts *o, int level,
                      int line) {
    jx_heap *h = &c->h;
    if (l->n == 0) {
        m40_jx_buf_put(h, b, "[]", 2);
        return;
    }
    m40_jx_buf_putc(h, b, '[');
    if (o->has_indent)
        newline_indent(c, b, o, level + 1);
    for (size_t i = 0; i < l->n; i++) {
        if (i) {
            m40_jx_buf_put(h, b, o->item_sep, o->item_sep_n);
            if (o->has_indent)
                newline_indent(c, b, o, level + 1);
        }
        dump(c, b, l->v[i], o, level + 1, line);
    }
    if (o->has_indent)
        newline_indent(c, b, o, level);
    m40_jx_buf_putc(h, b, ']');
}

/* sort_keys: Python sorts the (key, value) pairs, so keys compare with <. */
static size_t *sorted_order(jx_ctx *c, const jx_dict *d, const jx_val *keys, int line) {
    size_t *ord = m40_jx_alloc(&c->h, (d->n ? d->n : 1) * sizeof *ord);
    for (size_t i = 0; i < d->n; i++) {
        size_t j = i;
        while (j > 0 && m40_jx_less(c, keys[i], keys[ord[j - 1]], line)) {
            ord[j] = ord[j - 1];
            j--;
        }
        ord[j] = i;
    }
    return ord;
}

static void dump_dict(jx_ctx *c, jx_buf *b, const jx_dict *d, const jx_dump_opts *o, int level,
                      int line) {
    jx_heap *h = &c->h;
    if (d->n == 0) {
        m40_jx_buf_put(h, b, "{}", 2);
        return;
    }
    size_t *ord = o->sort_keys ? sorted_order(c, d, d->k, line) : NULL;
    m40_jx_buf_putc(h, b, '{');
    if (o->has_indent)
        newline_indent(c, b, o, level + 1);
    for (size_t i = 0; i < d->n; i++) {
        size_t k = ord ? ord[i] : i;
        if (i) {
            m40_jx_buf_put(h, b, o->item_sep, o->item_sep_n);
            if (o->has_indent)
                newline_indent(c, b, o, level + 1);
        }
        jx_val ks = key_string(c, d->k[k], line);
        dump_string(c, b, ks.u.s.p, ks.u.s.n, o->ensure_ascii);
        m40_jx_buf_put(h, b, o->key_sep, o->key_sep_n);
        dump(c, b, d->v[k], o, level + 1, line);
    }
    if (o->has_indent)
        newline_indent(c, b, o, level);
    m40_jx_buf_putc(h, b, '}');
}

static void dump(jx_ctx *c, jx_buf *b, jx_val v, const jx_dump_opts *o, int level, int line) {
    char tmp[48];
    if (level > 500)
        m40_jx_throw(&c->h, line, "Circular reference detected");
    switch (v.t) {
        case JX_NONE:
            m40_jx_buf_put(&c->h, b, "null", 4);
            return;
        case JX_BOOL:
            m40_jx_buf_puts(&c->h, b, v.u.b ? "true" : "false");
            return;
        case JX_INT:
            snprintf(tmp, sizeof tmp, "%lld", (long long)v.u.i);
            m40_jx_buf_puts(&c->h, b, tmp);
            return;
        case JX_FLOAT:
            float_str(v.u.f, tmp, sizeof tmp);
            m40_jx_buf_puts(&c->h, b, tmp);
            return;
        case JX_STR:
            dump_string(c, b, v.u.s.p, v.u.s.n, o->ensure_ascii);
            return;
        case JX_LIST:
            if (v.sub == JX_LIST_GEN)
                break;
            dump_list(c, b, v.u.l, o, level, line);
            return;
        case JX_DICT:
            dump_dict(c, b, v.u.d, o, level, line);
            return;
        default:
            break;
    }
    m40_jx_throw(&c->h, line, "Object of type %s is not JSON serializable", m40_jx_type_name(v));
}

void m40_jx_dumps(jx_ctx *c, jx_buf *b, jx_val v, const jx_dump_opts *o, int line) {
    dump(c, b, v, o, 0, line);
}
