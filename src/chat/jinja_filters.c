/* jinja_filters.c - jinja2's builtin filters and tests (those chat
 * templates use), with transformers' `tojson`. Each follows the Python
 * source of jinja2 3.1 (filters.py, tests.py): argument names, defaults
 * and quirks ("42.7"|int is 42, unique is case-insensitive by default,
 * `title` splits on [-\s({[<] not on every non-letter).
 *
 * Filters that return generators in jinja2 (map, select, reject,
 * selectattr, rejectattr, unique, reverse) return lists here, so `|length`
 * works on them where jinja2 raises (a documented difference).
 *
 * Owns: the filter and test tables. Touches: the render arena.
 */
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/jinja_internal.h"

typedef jx_val (*filter_fn)(jx_ctx *c, jx_val v, const jx_args *a);
typedef int (*test_fn)(jx_ctx *c, jx_val v, const jx_args *a);

#define S(x) m40_jx_cstr(x)

static jx_heap *H(jx_ctx *c) {
    return &c->h;
}

void m40_jx_bind(jx_ctx *c, const jx_args *a, const char *fname, const char *const *names,
                 size_t nnames, jx_val *out) {
    for (size_t i = 0; i < nnames; i++)
        out[i] = m40_jx_missing();
    if (a->npos > nnames)
        m40_jx_throw(H(c), a->line, "%s() takes at most %zu argument(s) (%zu given)", fname, nnames,
                     a->npos);
    for (size_t i = 0; i < a->npos; i++)
        out[i] = a->pos[i];
    for (size_t k = 0; k < a->nkw; k++) {
        size_t i = 0;
        while (i < nnames && !m40_jx_str_eq(a->kwn[k], names[i]))
            i++;
        if (i == nnames)
            m40_jx_throw(H(c), a->line, "%s() got an unexpected keyword argument '%.*s'", fname,
                         (int)a->kwn[k].u.s.n, a->kwn[k].u.s.p);
        if (!m40_jx_is_missing(out[i]))
            m40_jx_throw(H(c), a->line, "%s() got multiple values for argument '%s'", fname,
                         names[i]);
        out[i] = a->kwv[k];
    }
}

static jx_val opt(jx_val v, jx_val dflt) {
    return m40_jx_is_missing(v) ? dflt : v;
}

static jx_val soft_str(jx_ctx *c, jx_val v) {
    return m40_jx_to_str(H(c), v);
}

static jx_val buf_val(jx_buf *b) {
    return m40_jx_strv(b->p ? b->p : "", b->n);
}

static int64_t need_int(jx_ctx *c, jx_val v, const char *what, int line) {
    if (v.t == JX_INT)
        return v.u.i;
    if (v.t == JX_BOOL)
        return v.u.b;
    m40_jx_check_defined(c, v, line);
    m40_jx_throw(H(c), line, "%s must be an integer, not %s", what, m40_jx_type_name(v));
}

static jx_val new_list(jx_ctx *c) {
    return m40_jx_list_new(H(c), 0, 0);
}

static jx_val as_gen(jx_val l) {
    l.sub = JX_LIST_GEN;
    return l;
}

/* ---- attribute getters (make_attrgetter) ------------------------------ */

static jx_val attr_path(jx_ctx *c, jx_val item, jx_val attr, int line) {
    if (attr.t != JX_STR)
        return m40_jx_getitem(c, item, attr, line);
    const char *p = attr.u.s.p, *end = p + attr.u.s.n;
    while (p <= end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        const char *e = dot ? dot : end;
        int digits = e > p;
        for (const char *q = p; q < e; q++)
            digits &= *q >= '0' && *q <= '9';
        jx_val key = m40_jx_strv(p, (size_t)(e - p));
        if (digits && e - p < 18)
            key = m40_jx_int(strtoll(m40_jx_strndup(H(c), p, (size_t)(e - p)), NULL, 10));
        item = m40_jx_getitem(c, item, key, line);
        if (!dot)
            break;
        p = dot + 1;
    }
    return item;
}

static jx_val lower_if_str(jx_ctx *c, jx_val v) {
    if (v.t != JX_STR)
        return v;
    jx_buf b = {0};
    for (size_t i = 0; i < v.u.s.n;) {
        char u[4];
        uint32_t cp = m40_jx_utf8_next(v.u.s.p, v.u.s.n, &i);
        m40_jx_buf_put(H(c), &b, u, m40_jx_utf8_put(u, m40_jx_lower(cp)));
    }
    return buf_val(&b);
}

/* key for sort/unique/min/max: attribute (comma-separated for sort) and
 * case folding */
static jx_val sort_key(jx_ctx *c, jx_val item, jx_val attr, int fold, int multi, int line) {
    if (m40_jx_is_missing(attr) || attr.t == JX_NONE)
        return fold ? lower_if_str(c, item) : item;
    if (multi && attr.t == JX_STR && memchr(attr.u.s.p, ',', attr.u.s.n)) {
        jx_val t = m40_jx_list_new(H(c), 0, JX_LIST_TUPLE);
        const char *p = attr.u.s.p, *end = p + attr.u.s.n;
        while (p <= end) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *e = comma ? comma : end;
            jx_val k = attr_path(c, item, m40_jx_strv(p, (size_t)(e - p)), line);
            m40_jx_list_push(H(c), t.u.l, fold ? lower_if_str(c, k) : k);
            if (!comma)
                break;
            p = comma + 1;
        }
        return t;
    }
    jx_val k = attr_path(c, item, attr, line);
    return fold ? lower_if_str(c, k) : k;
}

/* Stable merge sort of items by keys (Python's sorted is stable, also with
 * reverse=True). */
static void merge_sort(jx_ctx *c, jx_val *items, jx_val *keys, size_t n, int rev, int line,
                       jx_val *ti, jx_val *tk) {
    if (n < 2)
        return;
    size_t m = n / 2;
    merge_sort(c, items, keys, m, rev, line, ti, tk);
    merge_sort(c, items + m, keys + m, n - m, rev, line, ti, tk);
    size_t i = 0, j = m, k = 0;
    while (i < m && j < n) {
        int take_right =
            rev ? m40_jx_less(c, keys[i], keys[j], line) : m40_jx_less(c, keys[j], keys[i], line);
        if (take_right) {
            ti[k] = items[j];
            tk[k++] = keys[j++];
        } else {
            ti[k] = items[i];
            tk[k++] = keys[i++];
        }
    }
    while (i < m) {
        ti[k] = items[i];
        tk[k++] = keys[i++];
    }
    while (j < n) {
        ti[k] = items[j];
        tk[k++] = keys[j++];
    }
    memcpy(items, ti, n * sizeof *items);
    memcpy(keys, tk, n * sizeof *keys);
}

static jx_val sorted_by(jx_ctx *c, const jx_list *l, jx_val *keys, int rev, int line) {
    size_t n = l->n;
    jx_val out = m40_jx_list_new(H(c), n, 0);
    if (n)
        memcpy(out.u.l->v, l->v, n * sizeof(jx_val));
    out.u.l->n = n;
    jx_val *ti = m40_jx_alloc(H(c), (n + 1) * sizeof(jx_val));
    jx_val *tk = m40_jx_alloc(H(c), (n + 1) * sizeof(jx_val));
    merge_sort(c, out.u.l->v, keys, n, rev, line, ti, tk);
    return out;
}

/* ---- string filters --------------------------------------------------- */

static jx_val map_case(jx_ctx *c, jx_val s, int upper) {
    jx_buf b = {0};
    for (size_t i = 0; i < s.u.s.n;) {
        char u[4];
        uint32_t cp = m40_jx_utf8_next(s.u.s.p, s.u.s.n, &i);
        cp = upper ? m40_jx_upper(cp) : m40_jx_lower(cp);
        m40_jx_buf_put(H(c), &b, u, m40_jx_utf8_put(u, cp));
    }
    return buf_val(&b);
}

static jx_val f_upper(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)a;
    return map_case(c, soft_str(c, v), 1);
}

static jx_val f_lower(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)a;
    return map_case(c, soft_str(c, v), 0);
}

static jx_val f_capitalize(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)a;
    jx_val s = soft_str(c, v);
    jx_buf b = {0};
    int first = 1;
    for (size_t i = 0; i < s.u.s.n;) {
        char u[4];
        uint32_t cp = m40_jx_utf8_next(s.u.s.p, s.u.s.n, &i);
        cp = first ? m40_jx_upper(cp) : m40_jx_lower(cp);
        first = 0;
        m40_jx_buf_put(H(c), &b, u, m40_jx_utf8_put(u, cp));
    }
    return buf_val(&b);
}

/* jinja2's do_title: words start after runs of [-\s({\[<]. */
static jx_val f_title(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)a;
    jx_val s = soft_str(c, v);
    jx_buf b = {0};
    int start = 1;
    for (size_t i = 0; i < s.u.s.n;) {
        char u[4];
        uint32_t cp = m40_jx_utf8_next(s.u.s.p, s.u.s.n, &i);
        int sep =
            cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || m40_jx_isspace(cp);
        uint32_t o = sep ? cp : start ? m40_jx_upper(cp) : m40_jx_lower(cp);
        start = sep;
        m40_jx_buf_put(H(c), &b, u, m40_jx_utf8_put(u, o));
    }
    return buf_val(&b);
}

static jx_val f_trim(jx_ctx *c, jx_val v, const jx_args *a) {
    static const char *const names[] = {"chars"};
    jx_val arg[1];
    m40_jx_bind(c, a, "do_trim", names, 1, arg);
    jx_val s = soft_str(c, v);
    if (m40_jx_is_missing(arg[0]) || arg[0].t == JX_NONE)
        return m40_jx_strip(c, s, NULL, 1, 1);
    return m40_jx_strip(c, s, &arg[0], 1, 1);
}

static jx_val str_replace(jx_ctx *c, jx_val s, jx_val old, jx_val new, int64_t count) {
    jx_buf b = {0};
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, i = 0;
    int64_t done = 0;
    if (old.u.s.n == 0) {
        /* Python inserts `new` before every character and at the end */
        while (count < 0 || done < count) {
            m40_jx_buf_put(H(c), &b, new.u.s.p, new.u.s.n);
            done++;
            if (i >= n)
                break;
            size_t start = i;
            m40_jx_utf8_next(p, n, &i);
            m40_jx_buf_put(H(c), &b, p + start, i - start);
        }
        m40_jx_buf_put(H(c), &b, p + i, n - i);
        return buf_val(&b);
    }
    while (i < n) {
        if ((count < 0 || done < count) && i + old.u.s.n <= n &&
            memcmp(p + i, old.u.s.p, old.u.s.n) == 0) {
            m40_jx_buf_put(H(c), &b, new.u.s.p, new.u.s.n);
            i += old.u.s.n;
            done++;
        } else {
            m40_jx_buf_putc(H(c), &b, p[i++]);
        }
    }
    return buf_val(&b);
}

jx_val m40_jx_str_replace(jx_ctx *c, jx_val s, jx_val old, jx_val new, int64_t count) {
    return str_replace(c, s, old, new, count);
}

static jx_val f_replace(jx_ctx *c, jx_val v, const jx_args *a) {
    static const char *const names[] = {"old", "new", "count"};
    jx_val arg[3];
    m40_jx_bind(c, a, "do_replace", names, 3, arg);
    if (m40_jx_is_missing(arg[0]) || m40_jx_is_missing(arg[1]))
        m40_jx_throw(H(c), a->line, "do_replace() missing required arguments 'old' and 'new'");
    jx_val cnt = opt(arg[2], m40_jx_none());
    int64_t count = cnt.t == JX_NONE ? -1 : need_int(c, cnt, "count", a->line);
    return str_replace(c, soft_str(c, v), soft_str(c, arg[0]), soft_str(c, arg[1]), count);
}

static jx_val f_string(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)a;
    return soft_str(c, v);
}

static jx_val f_safe(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)a;
    return soft_str(c, v);
}

static jx_val f_escape(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)a;
    jx_val s = soft_str(c, v);
    jx_buf b = {0};
    for (size_t i = 0; i < s.u.s.n; i++) {
        char ch = s.u.s.p[i];
        switch (ch) {
            case '&':
                m40_jx_buf_puts(H(c), &b, "&amp;");
                break;
            case '<':
                m40_jx_buf_puts(H(c), &b, "&lt;");
                break;
            case '>':
                m40_jx_buf_puts(H(c), &b, "&gt;");
                break;
            case '"':
                m40_jx_buf_puts(H(c), &b, "&#34;");
                break;
            case '\'':
                m40_jx_buf_puts(H(c), &b, "&#39;");
                break;
            default:
                m40_jx_buf_putc(H(c), &b, ch);
        }
    }
    return buf_val(&b);
}

/* str.splitlines() pieces of s, without their line ends. */
static jx_list *split_lines(jx_ctx *c, jx_val s) {
    jx_val out = new_list(c);
    size_t i = 0, start = 0, n = s.u.s.n;
    while (i < n) {
        size_t at = i;
        uint32_t cp = m40_jx_utf8_next(s.u.s.p, n, &i);
        if (!m40_jx_islinebreak(cp))
            continue;
        m40_jx_list_push(H(c), out.u.l, m40_jx_strv(s.u.s.p + start, at - start));
        if (cp == '\r' && i < n && s.u.s.p[i] == '\n')
            i++;
        start = i;
    }
    if (start < n)
        m40_jx_list_push(H(c), out.u.l, m40_jx_strv(s.u.s.p + start, n - start));
    return out.u.l;
}

jx_list *m40_jx_splitlines(jx_ctx *c, jx_val s) {
    return split_lines(c, s);
}

static jx_val f_indent(jx_ctx *c, jx_val v, const jx_args *a) {
    static const char *const names[] = {"width", "first", "blank"};
    jx_val arg[3];
    m40_jx_bind(c, a, "do_indent", names, 3, arg);
    jx_val width = opt(arg[0], m40_jx_int(4));
    jx_val ind;
    if (width.t == JX_STR) {
        ind = width;
    } else {
        int64_t w = need_int(c, width, "width", a->line);
        jx_buf ib = {.limit = c->lim.max_output};
        for (int64_t i = 0; i < w; i++)
            m40_jx_buf_putc(H(c), &ib, ' ');
        ind = buf_val(&ib);
    }
    int first = m40_jx_truthy(opt(arg[1], m40_jx_bool(0)));
    int blank = m40_jx_truthy(opt(arg[2], m40_jx_bool(0)));
    m40_jx_check_defined(c, v, a->line);
    if (v.t != JX_STR) /* jinja2 does s += "\n" */
        m40_jx_throw(H(c), a->line, "unsupported operand type(s) for +=: '%s' and 'str'",
                     m40_jx_type_name(v));
    jx_val s = v;
    jx_buf t = {0};
    m40_jx_buf_put(H(c), &t, s.u.s.p, s.u.s.n);
    m40_jx_buf_putc(H(c), &t, '\n'); /* jinja2's quirk for splitlines */
    jx_list *lines = split_lines(c, buf_val(&t));
    jx_buf b = {.limit = c->lim.max_output};
    if (first)
        m40_jx_buf_put(H(c), &b, ind.u.s.p, ind.u.s.n);
    for (size_t i = 0; i < lines->n; i++) {
        jx_val ln = lines->v[i];
        if (i > 0) {
            m40_jx_buf_putc(H(c), &b, '\n');
            if (blank || ln.u.s.n)
                m40_jx_buf_put(H(c), &b, ind.u.s.p, ind.u.s.n);
        }
        m40_jx_buf_put(H(c), &b, ln.u.s.p, ln.u.s.n);
    }
    return buf_val(&b);
}

static jx_val f_center(jx_ctx *c, jx_val v, const jx_args *a) {
    static const char *const names[] = {"width"};
    jx_val arg[1];
    m40_jx_bind(c, a, "do_center", names, 1, arg);
    jx_val s = soft_str(c, v);
    int64_t width = need_int(c, opt(arg[0], m40_jx_int(80)), "width", a->line);
    int64_t len = (int64_t)m40_jx_utf8_len(s.u.s.p, s.u.s.n);
    if (width <= len)
        return s;
    if (width > (int64_t)c->lim.max_output)
        m40_jx_throw(H(c), a->line, "output limit exceeded");
    int64_t marg = width - len, left = marg / 2 + (marg & width & 1);
    jx_buf b = {0};
    for (int64_t i = 0; i < left; i++)
        m40_jx_buf_putc(H(c), &b, ' ');
    m40_jx_buf_put(H(c), &b, s.u.s.p, s.u.s.n);
    for (int64_t i = 0; i < marg - left; i++)
        m40_jx_buf_putc(H(c), &b, ' ');
    return buf_val(&b);
}

static jx_val f_truncate(jx_ctx *c, jx_val v, const jx_args *a) {
    static const char *const names[] = {"length", "killwords", "end", "leeway"};
    jx_val arg[4];
    m40_jx_bind(c, a, "do_truncate", names, 4, arg);
    int64_t length = need_int(c, opt(arg[0], m40_jx_int(255)), "length", a->line);
    int killwords = m40_jx_truthy(opt(arg[1], m40_jx_bool(0)));
    jx_val end = soft_str(c, opt(arg[2], S("...")));
    jx_val lw = opt(arg[3], m40_jx_none());
    int64_t leeway = lw.t == JX_NONE ? 5 : need_int(c, lw, "leeway", a->line);
    int64_t endlen = (int64_t)m40_jx_utf8_len(end.u.s.p, end.u.s.n);
    if (length < endlen)
        m40_jx_throw(H(c), a->line, "expected length >= %lld, got %lld", (long long)endlen,
                     (long long)length);
    if (leeway < 0)
        m40_jx_throw(H(c), a->line, "expected leeway >= 0, got %lld", (long long)leeway);
    /* jinja2 measures and returns the value itself when it is short */
    if (m40_jx_len(c, v, a->line) <= length + leeway)
        return v;
    if (v.t != JX_STR)
        m40_jx_throw(H(c), a->line, "'%s' object has no attribute 'rsplit'", m40_jx_type_name(v));
    jx_val s = v;
    size_t cut = m40_jx_utf8_offset(s.u.s.p, s.u.s.n, (size_t)(length - endlen));
    if (!killwords) {
        size_t k = cut;
        while (k > 0 && s.u.s.p[k - 1] != ' ')
            k--;
        if (k > 0)
            cut = k - 1;
    }
    jx_buf b = {0};
    m40_jx_buf_put(H(c), &b, s.u.s.p, cut);
    m40_jx_buf_put(H(c), &b, end.u.s.p, end.u.s.n);
    return buf_val(&b);
}

static jx_val f_wordcount(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)a;
    jx_val s = soft_str(c, v);
    int64_t words = 0;
    int in_word = 0;
    for (size_t i = 0; i < s.u.s.n;) {
        uint32_t cp = m40_jx_utf8_next(s.u.s.p, s.u.s.n, &i);
        int w = cp == '_' || m40_jx_isdigit(cp) || m40_jx_isalpha(cp);
        if (w && !in_word)
            words++;
        in_word = w;
    }
    return m40_jx_int(words);
}

static jx_val f_format(jx_ctx *c, jx_val v, const jx_args *a) {
    if (a->npos && a->nkw)
        m40_jx_throw(H(c), a->line,
                     "can't handle positional and keyword arguments at the same time");
    jx_val args;
    if (a->nkw) {
        args = m40_jx_dict_new(H(c), a->nkw);
        for (size_t i = 0; i < a->nkw; i++)
            m40_jx_dict_set(H(c), args.u.d, a->kwn[i], a->kwv[i]);
    } else {
        args = m40_jx_list_new(H(c), a->npos, JX_LIST_TUPLE);
        for (size_t i = 0; i < a->npos; i++)
            m40_jx_list_push(H(c), args.u.l, a->pos[i]);
    }
    return m40_jx_percent_format(c, soft_str(c, v), args, a->line);
}

/* ---- conversions ------------------------------------------------------ */

/* Python int(str, base); returns 0 when s is not an integer literal. */
static int parse_pyint(jx_val s, int base, int64_t *out) {
    const char *p = s.u.s.p, *e = p + s.u.s.n;
    while (p < e && (*p == ' ' || (*p >= 9 && *p <= 13)))
        p++;
    while (e > p && (e[-1] == ' ' || (e[-1] >= 9 && e[-1] <= 13)))
        e--;
    int neg = 0;
    if (p < e && (*p == '+' || *p == '-'))
        neg = *p++ == '-';
    if (e - p >= 2 && p[0] == '0') {
        char k = (char)(p[1] | 32);
        if ((base == 16 && k == 'x') || (base == 8 && k == 'o') || (base == 2 && k == 'b'))
            p += 2;
    }
    if (p == e)
        return 0;
    uint64_t v = 0;
    int prev_us = 1;
    for (; p < e; p++) {
        if (*p == '_') {
            if (prev_us)
                return 0;
            prev_us = 1;
            continue;
        }
        int d = (*p >= '0' && *p <= '9')               ? *p - '0'
                : (*p | 32) >= 'a' && (*p | 32) <= 'z' ? (*p | 32) - 'a' + 10
                                                       : 99;
        if (d >= base)
            return 0;
        if (v > ((uint64_t)INT64_MAX - (uint64_t)d) / (uint64_t)base)
            return 0;
        v = v * (uint64_t)base + (uint64_t)d;
        prev_us = 0;
    }
    if (prev_us)
        return 0;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 1;
}

/* Python float(str): decimal literals, inf, nan; no hex floats. */
static int parse_pyfloat(jx_ctx *c, jx_val s, double *out) {
    const char *p = s.u.s.p, *e = p + s.u.s.n;
    while (p < e && m40_jx_isspace((unsigned char)*p))
        p++;
    while (e > p && m40_jx_isspace((unsigned char)e[-1]))
        e--;
    if (p == e || e - p > 400)
        return 0;
    char *tmp = m40_jx_alloc(H(c), (size_t)(e - p) + 1);
    size_t k = 0;
    for (const char *q = p; q < e; q++) {
        if (*q == '_') {
            if (q == p || q + 1 == e || !(q[-1] >= '0' && q[-1] <= '9') ||
                !(q[1] >= '0' && q[1] <= '9'))
                return 0;
            continue;
        }
        if (*q == 'x' || *q == 'X' || *q == 'p' || *q == 'P')
            return 0;
        tmp[k++] = *q;
    }
    tmp[k] = '\0';
    char *end;
    double d = strtod(tmp, &end);
    if (end != tmp + k)
        return 0;
    *out = d;
    return 1;
}

static int to_float(jx_ctx *c, jx_val v, double *out) {
    if (m40_jx_is_number(v)) {
        *out = m40_jx_as_double(v);
        return 1;
    }
    if (v.t == JX_STR)
        return parse_pyfloat(c, v, out);
    return 0;
}

static jx_val float_to_int(jx_ctx *c, double d, int line) {
    if (isnan(d))
        m40_jx_throw(H(c), line, "cannot convert float NaN to integer");
    if (isinf(d))
        m40_jx_throw(H(c), line, "cannot convert float infinity to integer");
    if (d >= 9.2233720368547758e18 || d < -9.2233720368547758e18)
        m40_jx_throw(H(c), line, "integer overflow (values beyond 64 bits are not supported)");
    return m40_jx_int((int64_t)d);
}

static jx_val f_int(jx_ctx *c, jx_val v, const jx_args *a) {
    static const char *const names[] = {"default", "base"};
    jx_val arg[2];
    m40_jx_bind(c, a, "do_int", names, 2, arg);
    jx_val dflt = opt(arg[0], m40_jx_int(0));
    int64_t base = need_int(c, opt(arg[1], m40_jx_int(10)), "base", a->line);
    m40_jx_check_defined(c, v, a->line); /* int(Undefined) raises */
    int64_t iv;
    double d;
    if (v.t == JX_STR) {
        if (base >= 2 && base <= 36 && parse_pyint(v, (int)base, &iv))
            return m40_jx_int(iv);
    } else if (v.t == JX_INT || v.t == JX_BOOL) {
        return m40_jx_int(v.t == JX_BOOL ? v.u.b : v.u.i);
    } else if (v.t == JX_FLOAT) {
        return float_to_int(c, v.u.f, a->line);
    }
    if (to_float(c, v, &d))
        return float_to_int(c, d, a->line);
    return dflt;
}

static jx_val f_float(jx_ctx *c, jx_val v, const jx_args *a) {
    static const char *const names[] = {"default"};
    jx_val arg[1];
    m40_jx_bind(c, a, "do_float", names, 1, arg);
    m40_jx_check_defined(c, v, a->line); /* float(Undefined) raises */
    double d;
    if (to_float(c, v, &d))
        return m40_jx_float(d);
    return opt(arg[0], m40_jx_float(0.0));
}

static jx_val f_abs(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)a;
    if (v.t == JX_FLOAT)
        return m40_jx_float(fabs(v.u.f));
    if (v.t == JX_INT || v.t == JX_BOOL) {
        int64_t i = v.t == JX_BOOL ? v.u.b : v.u.i;
        if (i == INT64_MIN)
            m40_jx_throw(H(c), a->line, "integer overflow");
        return m40_jx_int(i < 0 ? -i : i);
    }
    m40_jx_check_defined(c, v, a->line);
    m40_jx_throw(H(c), a->line, "bad operand type for abs(): '%s'", m40_jx_type_name(v));
}

static jx_val f_round(jx_ctx *c, jx_val v, const jx_args *a) {
    static const char *const names[] = {"precision", "method"};
    jx_val arg[2];
    m40_jx_bind(c, a, "do_round", names, 2, arg);
    int64_t prec = need_int(c, opt(arg[0], m40_jx_int(0)), "precision", a->line);
    jx_val method = opt(arg[1], S("common"));
    int common = m40_jx_str_eq(method, "common"), ceil_ = m40_jx_str_eq(method, "ceil");
    if (!common && !ceil_ && !m40_jx_str_eq(method, "floor"))
        m40_jx_throw(H(c), a->line, "method must be common, ceil or floor");
    m40_jx_check_defined(c, v, a->line);
    if (!m40_jx_is_number(v))
        m40_jx_throw(H(c), a->line, "type %s doesn't define __round__ method", m40_jx_type_name(v));
    if (common && v.t != JX_FLOAT && prec >= 0)
        return m40_jx_int(v.t == JX_BOOL ? v.u.b : v.u.i);
    double d = m40_jx_as_double(v), scale = pow(10.0, (double)(prec > 300 ? 300 : prec));
    if (!common)
        return m40_jx_float((ceil_ ? ceil(d * scale) : floor(d * scale)) / scale);
    if (prec > 0 && prec < 300) {
        /* Python rounds the exact binary value to prec decimals, half to
         * even; printf does the same. */
        char tmp[400];
        snprintf(tmp, sizeof tmp, "%.*f", (int)prec, d);
        return m40_jx_float(strtod(tmp, NULL));
    }
    return m40_jx_float(rint(d * scale) / scale);
}

/* ---- sequences -------------------------------------------------------- */

static jx_val f_length(jx_ctx *c, jx_val v, const jx_args *a) {
    return m40_jx_int(m40_jx_len(c, v, a->line));
}

static jx_val f_list(jx_ctx *c, jx_val v, const jx_args *a) {
    jx_list *l = m40_jx_iterate(c, v, a->line);
    jx_val out = m40_jx_list_new(H(c), l->n, 0);
    for (size_t i = 0; i < l->n; i++)
        m40_jx_list_push(H(c), out.u.l, l->v[i]);
    return out;
}

static jx_val f_first(jx_ctx *c, jx_val v, const jx_args *a) {
    jx_list *l = m40_jx_iterate(c, v, a->line);
    return l->n ? l->v[0] : m40_jx_undef("No first item, sequence was empty.");
}

static jx_val f_last(jx_ctx *c, jx_val v, const jx_args *a) {
    jx_list *l = m40_jx_iterate(c, v, a->line);
    return l->n ? l->v[l->n - 1] : m40_jx_undef("No last item, sequence was empty.");
}

static jx_val f_reverse(jx_ctx *c, jx_val v, const jx_args *a) {
    if (v.t == JX_STR) {
        jx_list *chars = m40_jx_iterate(c, v, a->line);
        jx_buf b = {0};
        for (size_t i = chars->n; i > 0; i--)
            m40_jx_buf_put(H(c), &b, chars->v[i - 1].u.s.p, chars->v[i - 1].u.s.n);
        return buf_val(&b);
    }
    if (v.t != JX_LIST && v.t != JX_DICT && v.t != JX_UNDEF)
        m40_jx_throw(H(c), a->line, "argument must be iterable");
    jx_list *l = m40_jx_iterate(c, v, a->line);
    jx_val out = m40_jx_list_new(H(c), l->n, 0);
    for (size_t i = l->n; i > 0; i--)
        m40_jx_list_push(H(c), out.u.l, l->v[i - 1]);
    /* reversed() of a list is an iterator; a generator is listed first */
    return m40_jx_is_gen(v) ? out : as_gen(out);
}

static jx_val f_join(jx_ctx *c, jx_val v, const jx_args *a) {
    static const char *const names[] = {"d", "attribute"};
    jx_val arg[2];
    m40_jx_bind(c, a, "do_join", names, 2, arg);
    jx_val sep = soft_str(c, opt(arg[0], S("")));
    jx_val attr = opt(arg[1], m40_jx_none());
    jx_list *l = m40_jx_iterate(c, v, a->line);
    jx_buf b = {0};
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            m40_jx_buf_put(H(c), &b, sep.u.s.p, sep.u.s.n);
        jx_val item = attr.t == JX_NONE ? l->v[i] : attr_path(c, l->v[i], attr, a->line);
        m40_jx_write_str(H(c), &b, item);
    }
    return buf_val(&b);
}

static jx_val f_items(jx_ctx *c, jx_val v, const jx_args *a) {
    jx_val out = new_list(c);
    if (v.t == JX_UNDEF)
        return out;
    if (v.t != JX_DICT)
        m40_jx_throw(H(c), a->line, "Can only get item pairs from a mapping.");
    for (size_t i = 0; i < v.u.d->n; i++) {
        jx_val t = m40_jx_list_new(H(c), 2, JX_LIST_TUPLE);
        m40_jx_list_push(H(c), t.u.l, v.u.d->k[i]);
        m40_jx_list_push(H(c), t.u.l, v.u.d->v[i]);
        m40_jx_list_push(H(c), out.u.l, t);
    }
    return as_gen(out);
}

static jx_val f_default(jx_ctx *c, jx_val v, const jx_args *a) {
    static const char *const names[] = {"default_value", "boolean"};
    jx_val arg[2];
    m40_jx_bind(c, a, "do_default", names, 2, arg);
    jx_val dflt = opt(arg[0], S(""));
    int boolean = m40_jx_truthy(opt(arg[1], m40_jx_bool(0)));
    if (v.t == JX_UNDEF || (boolean && !m40_jx_truthy(v)))
        return dflt;
    return v;
}

static jx_val f_tojson(jx_ctx *c, jx_val v, const jx_args *a) {
    static const char *const names[] = {"ensure_ascii", "indent", "separators", "sort_keys"};
    jx_val arg[4];
    m40_jx_bind(c, a, "tojson", names, 4, arg);
    jx_dump_opts o = {0};
    o.ensure_ascii = m40_jx_truthy(opt(arg[0], m40_jx_bool(0)));
    o.sort_keys = m40_jx_truthy(opt(arg[3], m40_jx_bool(0)));
    jx_val indent = opt(arg[1], m40_jx_none());
    if (indent.t == JX_STR) {
        o.has_indent = 1;
        o.indent = indent.u.s.p;
        o.indent_n = indent.u.s.n;
    } else if (indent.t != JX_NONE) {
        int64_t w = need_int(c, indent, "indent", a->line);
        if (w > 1000)
            m40_jx_throw(H(c), a->line, "indent too large");
        char *sp = m40_jx_alloc(H(c), (size_t)(w > 0 ? w : 0) + 1);
        for (int64_t i = 0; i < w; i++)
            sp[i] = ' ';
        o.has_indent = 1;
        o.indent = sp;
        o.indent_n = (size_t)(w > 0 ? w : 0);
    }
    o.item_sep = o.has_indent ? "," : ", ";
    o.key_sep = ": ";
    jx_val seps = opt(arg[2], m40_jx_none());
    if (seps.t != JX_NONE) {
        if (seps.t != JX_LIST || seps.u.l->n != 2 || seps.u.l->v[0].t != JX_STR ||
            seps.u.l->v[1].t != JX_STR)
            m40_jx_throw(H(c), a->line, "separators must be a pair of strings");
        o.item_sep = m40_jx_strndup(H(c), seps.u.l->v[0].u.s.p, seps.u.l->v[0].u.s.n);
        o.key_sep = m40_jx_strndup(H(c), seps.u.l->v[1].u.s.p, seps.u.l->v[1].u.s.n);
        o.item_sep_n = seps.u.l->v[0].u.s.n;
        o.key_sep_n = seps.u.l->v[1].u.s.n;
    } else {
        o.item_sep_n = strlen(o.item_sep);
        o.key_sep_n = strlen(o.key_sep);
    }
    jx_buf b = {.limit = c->lim.max_output};
    m40_jx_dumps(c, &b, v, &o, a->line);
    return buf_val(&b);
}

static jx_val f_attr(jx_ctx *c, jx_val v, const jx_args *a) {
    static const char *const names[] = {"name"};
    jx_val arg[1];
    m40_jx_bind(c, a, "do_attr", names, 1, arg);
    if (arg[0].t != JX_STR)
        m40_jx_throw(H(c), a->line, "attribute name must be a string");
    /* Python getattr only: unlike `x.name`, no fallback to x['name'] */
    jx_val m;
    if (v.t == JX_DICT || v.t == JX_STR || v.t == JX_LIST) {
        if (m40_jx_method(c, v, arg[0].u.s.p, arg[0].u.s.n, &m))
            return m;
        return m40_jx_undef(NULL);
    }
    return m40_jx_getattr(c, v, arg[0], a->line);
}

/* map(attribute=..., default=...) or map('filter', args...) */
static jx_val f_map(jx_ctx *c, jx_val v, const jx_args *a) {
    jx_list *l = m40_jx_iterate(c, v, a->line);
    jx_val out = m40_jx_list_new(H(c), l->n, 0);
    if (a->npos == 0) {
        jx_val attr = m40_jx_missing(), dflt = m40_jx_none();
        for (size_t k = 0; k < a->nkw; k++) {
            if (m40_jx_str_eq(a->kwn[k], "attribute"))
                attr = a->kwv[k];
            else if (m40_jx_str_eq(a->kwn[k], "default"))
                dflt = a->kwv[k];
            else
                m40_jx_throw(H(c), a->line, "Unexpected keyword argument '%.*s'",
                             (int)a->kwn[k].u.s.n, a->kwn[k].u.s.p);
        }
        if (m40_jx_is_missing(attr))
            m40_jx_throw(H(c), a->line, "map requires a filter argument");
        for (size_t i = 0; i < l->n; i++) {
            jx_val r = attr_path(c, l->v[i], attr, a->line);
            if (r.t == JX_UNDEF && dflt.t != JX_NONE)
                r = dflt;
            m40_jx_list_push(H(c), out.u.l, r);
        }
        return as_gen(out);
    }
    jx_val name = a->pos[0];
    int ix = name.t == JX_STR ? m40_jx_filter_index(name.u.s.p, name.u.s.n) : -1;
    if (ix < 0)
        m40_jx_throw(H(c), a->line, "No filter named '%.*s'.",
                     name.t == JX_STR ? (int)name.u.s.n : 1, name.t == JX_STR ? name.u.s.p : "?");
    jx_args sub = *a;
    sub.pos++;
    sub.npos--;
    for (size_t i = 0; i < l->n; i++) {
        m40_jx_count_iteration(c, a->line);
        m40_jx_list_push(H(c), out.u.l, m40_jx_filter_call(c, ix, l->v[i], &sub, a->line));
    }
    return as_gen(out);
}

/* select / reject / selectattr / rejectattr */
static jx_val select_common(jx_ctx *c, jx_val v, const jx_args *a, int attr_form, int want) {
    jx_list *l = m40_jx_iterate(c, v, a->line);
    size_t off = 0;
    jx_val attr = m40_jx_none();
    if (attr_form) {
        if (a->npos < 1)
            m40_jx_throw(H(c), a->line, "Missing parameter for attribute name");
        attr = a->pos[0];
        off = 1;
    }
    int ix = -1;
    jx_args sub = *a;
    if (a->npos > off) {
        jx_val name = a->pos[off];
        ix = name.t == JX_STR ? m40_jx_test_index(name.u.s.p, name.u.s.n) : -1;
        if (ix < 0)
            m40_jx_throw(H(c), a->line, "No test named '%.*s'.",
                         name.t == JX_STR ? (int)name.u.s.n : 1,
                         name.t == JX_STR ? name.u.s.p : "?");
        sub.pos += off + 1;
        sub.npos -= off + 1;
    }
    jx_val out = new_list(c);
    for (size_t i = 0; i < l->n; i++) {
        m40_jx_count_iteration(c, a->line);
        jx_val item = attr_form ? attr_path(c, l->v[i], attr, a->line) : l->v[i];
        int ok = ix < 0 ? m40_jx_truthy(item) : m40_jx_test_call(c, ix, item, &sub, a->line);
        if (ok == want)
            m40_jx_list_push(H(c), out.u.l, l->v[i]);
    }
    return as_gen(out);
}

static jx_val f_select(jx_ctx *c, jx_val v, const jx_args *a) {
    return select_common(c, v, a, 0, 1);
}

static jx_val f_reject(jx_ctx *c, jx_val v, const jx_args *a) {
    return select_common(c, v, a, 0, 0);
}

static jx_val f_selectattr(jx_ctx *c, jx_val v, const jx_args *a) {
    return select_common(c, v, a, 1, 1);
}

static jx_val f_rejectattr(jx_ctx *c, jx_val v, const jx_args *a) {
    return select_common(c, v, a, 1, 0);
}

static jx_val f_unique(jx_ctx *c, jx_val v, const jx_args *a) {
    static const char *const names[] = {"case_sensitive", "attribute"};
    jx_val arg[2];
    m40_jx_bind(c, a, "do_unique", names, 2, arg);
    int fold = !m40_jx_truthy(opt(arg[0], m40_jx_bool(0)));
    jx_list *l = m40_jx_iterate(c, v, a->line);
    jx_val out = new_list(c), seen = new_list(c);
    for (size_t i = 0; i < l->n; i++) {
        m40_jx_count_iteration(c, a->line);
        jx_val k = sort_key(c, l->v[i], arg[1], fold, 0, a->line);
        if (!m40_jx_hashable(k))
            m40_jx_throw(H(c), a->line, "unhashable type: '%s'", m40_jx_type_name(k));
        int dup = 0;
        for (size_t j = 0; j < seen.u.l->n && !dup; j++)
            dup = m40_jx_eq(seen.u.l->v[j], k);
        if (!dup) {
            m40_jx_list_push(H(c), seen.u.l, k);
            m40_jx_list_push(H(c), out.u.l, l->v[i]);
        }
    }
    return as_gen(out);
}

static jx_val f_sort(jx_ctx *c, jx_val v, const jx_args *a) {
    static const char *const names[] = {"reverse", "case_sensitive", "attribute"};
    jx_val arg[3];
    m40_jx_bind(c, a, "do_sort", names, 3, arg);
    int rev = m40_jx_truthy(opt(arg[0], m40_jx_bool(0)));
    int fold = !m40_jx_truthy(opt(arg[1], m40_jx_bool(0)));
    jx_list *l = m40_jx_iterate(c, v, a->line);
    jx_val *keys = m40_jx_alloc(H(c), (l->n + 1) * sizeof(jx_val));
    for (size_t i = 0; i < l->n; i++)
        keys[i] = sort_key(c, l->v[i], arg[2], fold, 1, a->line);
    return sorted_by(c, l, keys, rev, a->line);
}

static jx_val f_dictsort(jx_ctx *c, jx_val v, const jx_args *a) {
    static const char *const names[] = {"case_sensitive", "by", "reverse"};
    jx_val arg[3];
    m40_jx_bind(c, a, "do_dictsort", names, 3, arg);
    int fold = !m40_jx_truthy(opt(arg[0], m40_jx_bool(0)));
    jx_val by = opt(arg[1], S("key"));
    int rev = m40_jx_truthy(opt(arg[2], m40_jx_bool(0)));
    int pos = m40_jx_str_eq(by, "key") ? 0 : m40_jx_str_eq(by, "value") ? 1 : -1;
    if (pos < 0)
        m40_jx_throw(H(c), a->line, "You can only sort by either \"key\" or \"value\"");
    m40_jx_check_defined(c, v, a->line); /* value.items() on Undefined raises */
    jx_val items = f_items(c, v, a);
    jx_list *l = items.u.l;
    jx_val *keys = m40_jx_alloc(H(c), (l->n + 1) * sizeof(jx_val));
    for (size_t i = 0; i < l->n; i++) {
        jx_val k = l->v[i].u.l->v[pos];
        keys[i] = fold ? lower_if_str(c, k) : k;
    }
    return sorted_by(c, l, keys, rev, a->line);
}

static jx_val min_max(jx_ctx *c, jx_val v, const jx_args *a, int want_max) {
    static const char *const names[] = {"case_sensitive", "attribute"};
    jx_val arg[2];
    m40_jx_bind(c, a, want_max ? "do_max" : "do_min", names, 2, arg);
    int fold = !m40_jx_truthy(opt(arg[0], m40_jx_bool(0)));
    jx_list *l = m40_jx_iterate(c, v, a->line);
    if (l->n == 0)
        return m40_jx_undef("No aggregated item, sequence was empty.");
    size_t best = 0;
    jx_val bk = sort_key(c, l->v[0], arg[1], fold, 0, a->line);
    for (size_t i = 1; i < l->n; i++) {
        jx_val k = sort_key(c, l->v[i], arg[1], fold, 0, a->line);
        if (want_max ? m40_jx_less(c, bk, k, a->line) : m40_jx_less(c, k, bk, a->line)) {
            best = i;
            bk = k;
        }
    }
    return l->v[best];
}

static jx_val f_max(jx_ctx *c, jx_val v, const jx_args *a) {
    return min_max(c, v, a, 1);
}

static jx_val f_min(jx_ctx *c, jx_val v, const jx_args *a) {
    return min_max(c, v, a, 0);
}

static jx_val f_sum(jx_ctx *c, jx_val v, const jx_args *a) {
    static const char *const names[] = {"attribute", "start"};
    jx_val arg[2];
    m40_jx_bind(c, a, "do_sum", names, 2, arg);
    jx_val attr = opt(arg[0], m40_jx_none());
    jx_val acc = opt(arg[1], m40_jx_int(0));
    jx_list *l = m40_jx_iterate(c, v, a->line);
    for (size_t i = 0; i < l->n; i++) {
        jx_val item = attr.t == JX_NONE ? l->v[i] : attr_path(c, l->v[i], attr, a->line);
        acc = m40_jx_binop(c, JX_OP_ADD, acc, item, a->line);
    }
    return acc;
}

static jx_val f_batch(jx_ctx *c, jx_val v, const jx_args *a) {
    static const char *const names[] = {"linecount", "fill_with"};
    jx_val arg[2];
    m40_jx_bind(c, a, "do_batch", names, 2, arg);
    int64_t n = need_int(c, arg[0], "linecount", a->line);
    if (n <= 0)
        m40_jx_throw(H(c), a->line, "linecount must be positive");
    jx_list *l = m40_jx_iterate(c, v, a->line);
    jx_val out = new_list(c), cur = new_list(c);
    for (size_t i = 0; i < l->n; i++) {
        if ((int64_t)cur.u.l->n == n) {
            m40_jx_list_push(H(c), out.u.l, cur);
            cur = new_list(c);
        }
        m40_jx_list_push(H(c), cur.u.l, l->v[i]);
    }
    if (cur.u.l->n) {
        if (!m40_jx_is_missing(arg[1]) && arg[1].t != JX_NONE)
            while ((int64_t)cur.u.l->n < n)
                m40_jx_list_push(H(c), cur.u.l, arg[1]);
        m40_jx_list_push(H(c), out.u.l, cur);
    }
    return as_gen(out);
}

/* ---- tests ------------------------------------------------------------ */

static jx_val test_arg(jx_ctx *c, const jx_args *a, const char *name) {
    if (a->npos < 1)
        m40_jx_throw(H(c), a->line, "test %s() missing 1 required positional argument", name);
    return a->pos[0];
}

static int mod2(jx_ctx *c, jx_val v, const jx_args *a, int want) {
    jx_val r = m40_jx_binop(c, JX_OP_MOD, v, m40_jx_int(2), a->line);
    return m40_jx_eq(r, m40_jx_int(want));
}

static int t_odd(jx_ctx *c, jx_val v, const jx_args *a) {
    return mod2(c, v, a, 1);
}

static int t_even(jx_ctx *c, jx_val v, const jx_args *a) {
    return mod2(c, v, a, 0);
}

static int t_divisibleby(jx_ctx *c, jx_val v, const jx_args *a) {
    jx_val r = m40_jx_binop(c, JX_OP_MOD, v, test_arg(c, a, "divisibleby"), a->line);
    return m40_jx_eq(r, m40_jx_int(0));
}

static int t_defined(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)c, (void)a;
    return v.t != JX_UNDEF;
}

static int t_undefined(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)c, (void)a;
    return v.t == JX_UNDEF;
}

static int t_none(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)c, (void)a;
    return v.t == JX_NONE;
}

static int t_boolean(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)c, (void)a;
    return v.t == JX_BOOL;
}

static int t_false(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)c, (void)a;
    return v.t == JX_BOOL && !v.u.b;
}

static int t_true(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)c, (void)a;
    return v.t == JX_BOOL && v.u.b;
}

static int t_integer(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)c, (void)a;
    return v.t == JX_INT;
}

static int t_float(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)c, (void)a;
    return v.t == JX_FLOAT;
}

static int t_number(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)c, (void)a;
    return m40_jx_is_number(v);
}

static int t_string(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)c, (void)a;
    return v.t == JX_STR;
}

static int t_mapping(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)c, (void)a;
    return v.t == JX_DICT;
}

static int t_sequence(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)c, (void)a;
    return v.t == JX_STR || (v.t == JX_LIST && !m40_jx_is_gen(v)) || v.t == JX_DICT ||
           v.t == JX_UNDEF;
}

static int t_iterable(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)c, (void)a;
    return v.t == JX_STR || v.t == JX_LIST || v.t == JX_DICT || v.t == JX_UNDEF || v.t == JX_LOOP;
}

static int t_callable(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)c, (void)a;
    return v.t == JX_FUNC || v.t == JX_LOOP || v.t == JX_UNDEF;
}

static int case_test(jx_ctx *c, jx_val v, int want_lower) {
    jx_val s = soft_str(c, v);
    int cased = 0;
    for (size_t i = 0; i < s.u.s.n;) {
        uint32_t cp = m40_jx_utf8_next(s.u.s.p, s.u.s.n, &i);
        if (want_lower ? m40_jx_isupper_cp(cp) : m40_jx_islower_cp(cp))
            return 0;
        cased |= m40_jx_iscased(cp);
    }
    return cased;
}

static int t_lower(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)a;
    return case_test(c, v, 1);
}

static int t_upper(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)a;
    return case_test(c, v, 0);
}

static int t_sameas(jx_ctx *c, jx_val v, const jx_args *a) {
    jx_val o = test_arg(c, a, "sameas");
    if (v.t != o.t)
        return 0;
    switch (v.t) {
        case JX_NONE:
        case JX_UNDEF:
            return 1;
        case JX_BOOL:
        case JX_INT:
        case JX_FLOAT:
            return m40_jx_eq(v, o);
        case JX_STR:
            return v.u.s.p == o.u.s.p && v.u.s.n == o.u.s.n;
        default:
            return v.u.l == o.u.l;
    }
}

static int t_escaped(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)c, (void)v, (void)a;
    return 0;
}

static int t_in(jx_ctx *c, jx_val v, const jx_args *a) {
    return m40_jx_contains(c, test_arg(c, a, "in"), v, a->line);
}

static int cmp_test(jx_ctx *c, jx_val v, const jx_args *a, int op) {
    return m40_jx_truthy(m40_jx_compare(c, op, v, test_arg(c, a, "compare"), a->line));
}

static int t_eq(jx_ctx *c, jx_val v, const jx_args *a) {
    return cmp_test(c, v, a, JX_OP_EQ);
}
static int t_ne(jx_ctx *c, jx_val v, const jx_args *a) {
    return cmp_test(c, v, a, JX_OP_NE);
}
static int t_gt(jx_ctx *c, jx_val v, const jx_args *a) {
    return cmp_test(c, v, a, JX_OP_GT);
}
static int t_ge(jx_ctx *c, jx_val v, const jx_args *a) {
    return cmp_test(c, v, a, JX_OP_GTEQ);
}
static int t_lt(jx_ctx *c, jx_val v, const jx_args *a) {
    return cmp_test(c, v, a, JX_OP_LT);
}
static int t_le(jx_ctx *c, jx_val v, const jx_args *a) {
    return cmp_test(c, v, a, JX_OP_LTEQ);
}

static int t_filter(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)c, (void)a;
    return v.t == JX_STR && m40_jx_filter_index(v.u.s.p, v.u.s.n) >= 0;
}

static int t_test(jx_ctx *c, jx_val v, const jx_args *a) {
    (void)c, (void)a;
    return v.t == JX_STR && m40_jx_test_index(v.u.s.p, v.u.s.n) >= 0;
}

/* ---- tables ------------------------------------------------------------ */

typedef struct filter_entry {
    const char *name;
    filter_fn fn; /* NULL: a jinja2 filter this subset does not implement */
    int lazy;     /* a generator in jinja2: errors surface on iteration */
} filter_entry;

static const filter_entry k_filters[] = {
    {"abs", f_abs, 0},
    {"attr", f_attr, 0},
    {"batch", f_batch, 1},
    {"capitalize", f_capitalize, 0},
    {"center", f_center, 0},
    {"count", f_length, 0},
    {"d", f_default, 0},
    {"default", f_default, 0},
    {"dictsort", f_dictsort, 0},
    {"e", f_escape, 0},
    {"escape", f_escape, 0},
    {"filesizeformat", NULL, 0},
    {"first", f_first, 0},
    {"float", f_float, 0},
    {"forceescape", f_escape, 0},
    {"format", f_format, 0},
    {"groupby", NULL, 0},
    {"indent", f_indent, 0},
    {"int", f_int, 0},
    {"items", f_items, 1},
    {"join", f_join, 0},
    {"last", f_last, 0},
    {"length", f_length, 0},
    {"list", f_list, 0},
    {"lower", f_lower, 0},
    {"map", f_map, 1},
    {"max", f_max, 0},
    {"min", f_min, 0},
    {"pprint", NULL, 0},
    {"random", NULL, 0},
    {"reject", f_reject, 1},
    {"rejectattr", f_rejectattr, 1},
    {"replace", f_replace, 0},
    {"reverse", f_reverse, 0},
    {"round", f_round, 0},
    {"safe", f_safe, 0},
    {"select", f_select, 1},
    {"selectattr", f_selectattr, 1},
    {"slice", NULL, 0},
    {"sort", f_sort, 0},
    {"string", f_string, 0},
    {"striptags", NULL, 0},
    {"sum", f_sum, 0},
    {"title", f_title, 0},
    {"tojson", f_tojson, 0},
    {"trim", f_trim, 0},
    {"truncate", f_truncate, 0},
    {"unique", f_unique, 1},
    {"upper", f_upper, 0},
    {"urlencode", NULL, 0},
    {"urlize", NULL, 0},
    {"wordcount", f_wordcount, 0},
    {"wordwrap", NULL, 0},
    {"xmlattr", NULL, 0},
};

typedef struct test_entry {
    const char *name;
    test_fn fn;
} test_entry;

static const test_entry k_tests[] = {
    {"odd", t_odd},
    {"even", t_even},
    {"divisibleby", t_divisibleby},
    {"defined", t_defined},
    {"undefined", t_undefined},
    {"filter", t_filter},
    {"test", t_test},
    {"none", t_none},
    {"boolean", t_boolean},
    {"false", t_false},
    {"true", t_true},
    {"integer", t_integer},
    {"float", t_float},
    {"lower", t_lower},
    {"upper", t_upper},
    {"string", t_string},
    {"mapping", t_mapping},
    {"number", t_number},
    {"sequence", t_sequence},
    {"iterable", t_iterable},
    {"callable", t_callable},
    {"sameas", t_sameas},
    {"escaped", t_escaped},
    {"in", t_in},
    {"==", t_eq},
    {"eq", t_eq},
    {"equalto", t_eq},
    {"!=", t_ne},
    {"ne", t_ne},
    {">", t_gt},
    {"gt", t_gt},
    {"greaterthan", t_gt},
    {"ge", t_ge},
    {">=", t_ge},
    {"<", t_lt},
    {"lt", t_lt},
    {"lessthan", t_lt},
    {"<=", t_le},
    {"le", t_le},
};

static int name_is(const char *entry, const char *name, size_t n) {
    return strlen(entry) == n && memcmp(entry, name, n) == 0;
}

int m40_jx_filter_index(const char *name, size_t n) {
    for (size_t i = 0; i < sizeof k_filters / sizeof k_filters[0]; i++)
        if (name_is(k_filters[i].name, name, n))
            return (int)i;
    return -1;
}

int m40_jx_test_index(const char *name, size_t n) {
    for (size_t i = 0; i < sizeof k_tests / sizeof k_tests[0]; i++)
        if (name_is(k_tests[i].name, name, n))
            return (int)i;
    return -1;
}

/* Runs a generator filter; an error it raises is kept in the returned
 * generator and raised when (if) it is iterated, as jinja2 would. */
static jx_val call_lazy(jx_ctx *c, const filter_entry *f, jx_val v, const jx_args *a) {
    jmp_buf saved;
    memcpy(saved, c->h.jb, sizeof saved);
    m40_err *saved_err = c->h.err;
    m40_err *local = m40_jx_alloc(H(c), sizeof *local);
    jx_buf *out = c->out;
    int depth = c->depth;
    c->h.err = local;
    if (setjmp(c->h.jb) == 0) {
        jx_val r = f->fn(c, v, a);
        memcpy(c->h.jb, saved, sizeof saved);
        c->h.err = saved_err;
        return r;
    }
    memcpy(c->h.jb, saved, sizeof saved);
    c->h.err = saved_err;
    c->out = out;
    c->depth = depth;
    jx_val g = m40_jx_list_new(H(c), 0, JX_LIST_GEN);
    g.u.l->deferred_error = m40_jx_strndup(H(c), local->msg, strlen(local->msg));
    return g;
}

jx_val m40_jx_filter_call(jx_ctx *c, int ix, jx_val v, const jx_args *a, int line) {
    const filter_entry *f = &k_filters[ix];
    if (!f->fn)
        m40_jx_throw(H(c), line, "filter '%s' is not supported in chat templates", f->name);
    jx_args local = *a;
    local.line = line;
    if (f->lazy)
        return call_lazy(c, f, v, &local);
    return f->fn(c, v, &local);
}

int m40_jx_test_call(jx_ctx *c, int ix, jx_val v, const jx_args *a, int line) {
    jx_args local = *a;
    local.line = line;
    return k_tests[ix].fn(c, v, &local);
}
