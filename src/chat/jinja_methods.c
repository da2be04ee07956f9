/* jinja_methods.c - Python methods templates call on builtin values
 * (str.strip, str.split, dict.items, dict.get, ...), the loop object's
 * cycle()/changed(), and the template globals: range, dict, namespace,
 * joiner (jinja2's defaults, range capped as the sandbox caps it) and
 * transformers' raise_exception and strftime_now.
 *
 * Methods that mutate (list.append, dict.pop, ...) are refused the way
 * ImmutableSandboxedEnvironment refuses them: the attribute is an
 * undefined that raises "access to attribute ... is unsafe." when called.
 *
 * Owns: methods and globals. Touches: the render arena; the clock
 * (strftime_now) unless the caller fixed it.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "chat/jinja_internal.h"

#define MAX_RANGE 100000

static jx_heap *H(jx_ctx *c) {
    return &c->h;
}

static jx_val opt(jx_val v, jx_val dflt) {
    return m40_jx_is_missing(v) ? dflt : v;
}

static jx_val buf_val(jx_buf *b) {
    return m40_jx_strv(b->p ? b->p : "", b->n);
}

static jx_val bind_args(jx_ctx *c, const jx_args *a, const char *fname, const char *const *names,
                        size_t n, jx_val *out) {
    m40_jx_bind(c, a, fname, names, n, out);
    return m40_jx_none();
}

static jx_val need_str(jx_ctx *c, jx_val v, const char *what, int line) {
    if (v.t == JX_STR)
        return v;
    m40_jx_check_defined(c, v, line);
    m40_jx_throw(H(c), line, "%s must be str, not %s", what, m40_jx_type_name(v));
}

static int64_t need_int(jx_ctx *c, jx_val v, int line) {
    if (v.t == JX_INT)
        return v.u.i;
    if (v.t == JX_BOOL)
        return v.u.b;
    m40_jx_check_defined(c, v, line);
    m40_jx_throw(H(c), line, "'%s' object cannot be interpreted as an integer",
                 m40_jx_type_name(v));
}

static void no_args(jx_ctx *c, const jx_args *a, const char *name) {
    if (a->npos || a->nkw)
        m40_jx_throw(H(c), a->line, "%s() takes no arguments", name);
}

/* ---- str -------------------------------------------------------------- */

static int in_chars(uint32_t cp, const jx_val *chars) {
    if (!chars)
        return m40_jx_isspace(cp);
    for (size_t i = 0; i < chars->u.s.n;)
        if (m40_jx_utf8_next(chars->u.s.p, chars->u.s.n, &i) == cp)
            return 1;
    return 0;
}

jx_val m40_jx_strip(jx_ctx *c, jx_val s, const jx_val *chars, int left, int right) {
    if (chars && chars->t == JX_NONE)
        chars = NULL;
    if (chars && chars->t != JX_STR)
        m40_jx_throw(H(c), c->h.line, "strip arg must be None or str");
    size_t a = 0, b = s.u.s.n, i = 0, last_keep = 0;
    int seen = 0;
    while (i < s.u.s.n) {
        size_t at = i;
        uint32_t cp = m40_jx_utf8_next(s.u.s.p, s.u.s.n, &i);
        if (!in_chars(cp, chars)) {
            if (!seen)
                a = at;
            seen = 1;
            last_keep = i;
        }
    }
    if (!seen)
        return m40_jx_strv(s.u.s.p, 0);
    if (!left)
        a = 0;
    if (right)
        b = last_keep;
    return m40_jx_strv(s.u.s.p + a, b - a);
}

static jx_val strip_common(jx_ctx *c, jx_val self, const jx_args *a, int l, int r) {
    static const char *const names[] = {"chars"};
    jx_val arg[1];
    bind_args(c, a, "strip", names, 1, arg);
    return m40_jx_strip(c, self, m40_jx_is_missing(arg[0]) ? NULL : &arg[0], l, r);
}

static jx_val m_strip(jx_ctx *c, jx_val self, const jx_args *a) {
    return strip_common(c, self, a, 1, 1);
}
static jx_val m_lstrip(jx_ctx *c, jx_val self, const jx_args *a) {
    return strip_common(c, self, a, 1, 0);
}
static jx_val m_rstrip(jx_ctx *c, jx_val self, const jx_args *a) {
    return strip_common(c, self, a, 0, 1);
}

static int has_prefix(jx_val s, jx_val p, int suffix) {
    if (p.u.s.n > s.u.s.n)
        return 0;
    const char *at = suffix ? s.u.s.p + s.u.s.n - p.u.s.n : s.u.s.p;
    return memcmp(at, p.u.s.p, p.u.s.n) == 0;
}

static jx_val affix_common(jx_ctx *c, jx_val self, const jx_args *a, int suffix) {
    static const char *const names[] = {"prefix", "start", "end"};
    jx_val arg[3];
    bind_args(c, a, suffix ? "endswith" : "startswith", names, 3, arg);
    jx_val s = self;
    if (!m40_jx_is_missing(arg[1]) || !m40_jx_is_missing(arg[2])) {
        int64_t len = (int64_t)m40_jx_utf8_len(s.u.s.p, s.u.s.n);
        int64_t st =
            m40_jx_is_missing(arg[1]) || arg[1].t == JX_NONE ? 0 : need_int(c, arg[1], a->line);
        int64_t en =
            m40_jx_is_missing(arg[2]) || arg[2].t == JX_NONE ? len : need_int(c, arg[2], a->line);
        st = st < 0 ? (st + len < 0 ? 0 : st + len) : (st > len ? len : st);
        en = en < 0 ? (en + len < 0 ? 0 : en + len) : (en > len ? len : en);
        if (en < st)
            return m40_jx_bool(0);
        size_t o1 = m40_jx_utf8_offset(s.u.s.p, s.u.s.n, (size_t)st);
        size_t o2 = m40_jx_utf8_offset(s.u.s.p, s.u.s.n, (size_t)en);
        s = m40_jx_strv(s.u.s.p + o1, o2 - o1);
    }
    jx_val p = arg[0];
    if (p.t == JX_LIST && p.sub == JX_LIST_TUPLE) {
        for (size_t i = 0; i < p.u.l->n; i++)
            if (has_prefix(s, need_str(c, p.u.l->v[i], "prefix", a->line), suffix))
                return m40_jx_bool(1);
        return m40_jx_bool(0);
    }
    if (p.t != JX_STR) {
        m40_jx_check_defined(c, p, a->line);
        m40_jx_throw(H(c), a->line, "%s first arg must be str or a tuple of str, not %s",
                     suffix ? "endswith" : "startswith", m40_jx_type_name(p));
    }
    return m40_jx_bool(has_prefix(s, p, suffix));
}

static jx_val m_startswith(jx_ctx *c, jx_val self, const jx_args *a) {
    return affix_common(c, self, a, 0);
}
static jx_val m_endswith(jx_ctx *c, jx_val self, const jx_args *a) {
    return affix_common(c, self, a, 1);
}

static size_t find_bytes(jx_val s, jx_val sub, size_t from, int reverse, int *found) {
    *found = 0;
    if (sub.u.s.n > s.u.s.n)
        return 0;
    size_t last = s.u.s.n - sub.u.s.n;
    if (!reverse) {
        for (size_t i = from; i <= last; i++)
            if (memcmp(s.u.s.p + i, sub.u.s.p, sub.u.s.n) == 0) {
                *found = 1;
                return i;
            }
        return 0;
    }
    for (size_t i = last + 1; i > from; i--)
        if (memcmp(s.u.s.p + i - 1, sub.u.s.p, sub.u.s.n) == 0) {
            *found = 1;
            return i - 1;
        }
    return 0;
}

/* split on runs of whitespace (sep None) or on sep */
static jx_val split_common(jx_ctx *c, jx_val self, const jx_args *a, int from_right) {
    static const char *const names[] = {"sep", "maxsplit"};
    jx_val arg[2];
    bind_args(c, a, from_right ? "rsplit" : "split", names, 2, arg);
    jx_val sep = opt(arg[0], m40_jx_none());
    int64_t maxsplit = need_int(c, opt(arg[1], m40_jx_int(-1)), a->line);
    jx_val out = m40_jx_list_new(H(c), 0, 0);
    const char *p = self.u.s.p;
    size_t n = self.u.s.n;
    if (sep.t == JX_NONE) {
        /* collect whitespace-separated words, then apply maxsplit */
        size_t i = 0;
        jx_val words = m40_jx_list_new(H(c), 0, 0);
        size_t *starts = NULL, *ends = NULL, nw = 0, cap = 0;
        while (i < n) {
            size_t at = i;
            uint32_t cp = m40_jx_utf8_next(p, n, &i);
            if (m40_jx_isspace(cp))
                continue;
            size_t ws = at, we = i;
            while (i < n) {
                size_t k = i;
                if (m40_jx_isspace(m40_jx_utf8_next(p, n, &k)))
                    break;
                i = k;
                we = i;
            }
            if (nw == cap) {
                cap = cap ? cap * 2 : 8;
                starts = m40_jx_grow(H(c), starts, nw * sizeof *starts, cap * sizeof *starts);
                ends = m40_jx_grow(H(c), ends, nw * sizeof *ends, cap * sizeof *ends);
            }
            starts[nw] = ws;
            ends[nw++] = we;
        }
        (void)words;
        if (maxsplit < 0 || (uint64_t)maxsplit + 1 >= nw) {
            for (size_t k = 0; k < nw; k++)
                m40_jx_list_push(H(c), out.u.l, m40_jx_strv(p + starts[k], ends[k] - starts[k]));
            return out;
        }
        size_t keep = (size_t)maxsplit;
        if (!from_right) {
            for (size_t k = 0; k < keep; k++)
                m40_jx_list_push(H(c), out.u.l, m40_jx_strv(p + starts[k], ends[k] - starts[k]));
            size_t rest = starts[keep];
            size_t e = n;
            /* the remainder keeps inner whitespace but not trailing */
            jx_val r = m40_jx_strip(c, m40_jx_strv(p + rest, e - rest), NULL, 0, 1);
            m40_jx_list_push(H(c), out.u.l, r);
        } else {
            size_t first = nw - keep;
            jx_val r = m40_jx_strip(c, m40_jx_strv(p, ends[first - 1]), NULL, 1, 0);
            m40_jx_list_push(H(c), out.u.l, r);
            for (size_t k = first; k < nw; k++)
                m40_jx_list_push(H(c), out.u.l, m40_jx_strv(p + starts[k], ends[k] - starts[k]));
        }
        return out;
    }
    need_str(c, sep, "sep", a->line);
    if (sep.u.s.n == 0)
        m40_jx_throw(H(c), a->line, "empty separator");
    /* positions of all separators, then join according to maxsplit */
    size_t *pos = NULL, np = 0, cap = 0, from = 0;
    int found;
    for (;;) {
        size_t at = find_bytes(self, sep, from, 0, &found);
        if (!found)
            break;
        if (np == cap) {
            cap = cap ? cap * 2 : 8;
            pos = m40_jx_grow(H(c), pos, np * sizeof *pos, cap * sizeof *pos);
        }
        pos[np++] = at;
        from = at + sep.u.s.n;
    }
    size_t use = np;
    if (maxsplit >= 0 && (uint64_t)maxsplit < np)
        use = (size_t)maxsplit;
    size_t first = from_right ? np - use : 0;
    size_t start = 0;
    if (from_right && use < np) {
        /* rsplit matches from the right: recompute non-overlapping positions */
        size_t k = np;
        size_t *rp = m40_jx_alloc(H(c), (use + 1) * sizeof *rp);
        size_t got = 0, limit = n;
        while (got < use && k > 0) {
            size_t at = pos[--k];
            if (at + sep.u.s.n <= limit) {
                rp[got++] = at;
                limit = at;
            }
        }
        for (size_t i = 0; i < got; i++)
            pos[i] = rp[got - 1 - i];
        first = 0;
        use = got;
    }
    for (size_t k = first; k < first + use; k++) {
        m40_jx_list_push(H(c), out.u.l, m40_jx_strv(p + start, pos[k] - start));
        start = pos[k] + sep.u.s.n;
    }
    m40_jx_list_push(H(c), out.u.l, m40_jx_strv(p + start, n - start));
    return out;
}

static jx_val m_split(jx_ctx *c, jx_val self, const jx_args *a) {
    return split_common(c, self, a, 0);
}
static jx_val m_rsplit(jx_ctx *c, jx_val self, const jx_args *a) {
    return split_common(c, self, a, 1);
}

static jx_val m_splitlines(jx_ctx *c, jx_val self, const jx_args *a) {
    static const char *const names[] = {"keepends"};
    jx_val arg[1];
    bind_args(c, a, "splitlines", names, 1, arg);
    if (m40_jx_truthy(opt(arg[0], m40_jx_bool(0))))
        m40_jx_throw(H(c), a->line, "splitlines(keepends=True) is not supported");
    jx_val out = {.t = JX_LIST};
    out.u.l = m40_jx_splitlines(c, self);
    return out;
}

static jx_val map_cps(jx_ctx *c, jx_val s, int mode) {
    jx_buf b = {0};
    int prev_cased = 0, first = 1;
    for (size_t i = 0; i < s.u.s.n;) {
        char u[4];
        uint32_t cp = m40_jx_utf8_next(s.u.s.p, s.u.s.n, &i), o = cp;
        switch (mode) {
            case 0:
                o = m40_jx_upper(cp);
                break;
            case 1:
                o = m40_jx_lower(cp);
                break;
            case 2: /* str.title */
                if (m40_jx_isupper_cp(cp) || m40_jx_islower_cp(cp)) {
                    o = prev_cased ? m40_jx_lower(cp) : m40_jx_upper(cp);
                    prev_cased = 1;
                } else {
                    prev_cased = 0;
                }
                break;
            case 3: /* capitalize */
                o = first ? m40_jx_upper(cp) : m40_jx_lower(cp);
                break;
            default: /* swapcase */
                o = m40_jx_isupper_cp(cp) ? m40_jx_lower(cp) : m40_jx_upper(cp);
                break;
        }
        first = 0;
        m40_jx_buf_put(H(c), &b, u, m40_jx_utf8_put(u, o));
    }
    return buf_val(&b);
}

static jx_val m_upper(jx_ctx *c, jx_val self, const jx_args *a) {
    no_args(c, a, "upper");
    return map_cps(c, self, 0);
}
static jx_val m_lower(jx_ctx *c, jx_val self, const jx_args *a) {
    no_args(c, a, "lower");
    return map_cps(c, self, 1);
}
static jx_val m_title(jx_ctx *c, jx_val self, const jx_args *a) {
    no_args(c, a, "title");
    return map_cps(c, self, 2);
}
static jx_val m_capitalize(jx_ctx *c, jx_val self, const jx_args *a) {
    no_args(c, a, "capitalize");
    return map_cps(c, self, 3);
}
static jx_val m_swapcase(jx_ctx *c, jx_val self, const jx_args *a) {
    no_args(c, a, "swapcase");
    return map_cps(c, self, 4);
}

static jx_val m_replace(jx_ctx *c, jx_val self, const jx_args *a) {
    static const char *const names[] = {"old", "new", "count"};
    jx_val arg[3];
    bind_args(c, a, "replace", names, 3, arg);
    jx_val old = need_str(c, arg[0], "replace() argument 1", a->line);
    jx_val nw = need_str(c, arg[1], "replace() argument 2", a->line);
    int64_t count = need_int(c, opt(arg[2], m40_jx_int(-1)), a->line);
    return m40_jx_str_replace(c, self, old, nw, count);
}

static jx_val find_common(jx_ctx *c, jx_val self, const jx_args *a, int reverse, int raise) {
    static const char *const names[] = {"sub"};
    jx_val arg[1];
    bind_args(c, a, "find", names, 1, arg);
    jx_val sub = need_str(c, arg[0], "substring", a->line);
    int found;
    size_t at = find_bytes(self, sub, 0, reverse, &found);
    if (!found) {
        if (raise)
            m40_jx_throw(H(c), a->line, "substring not found");
        return m40_jx_int(-1);
    }
    return m40_jx_int((int64_t)m40_jx_utf8_len(self.u.s.p, at));
}

static jx_val m_find(jx_ctx *c, jx_val self, const jx_args *a) {
    return find_common(c, self, a, 0, 0);
}
static jx_val m_rfind(jx_ctx *c, jx_val self, const jx_args *a) {
    return find_common(c, self, a, 1, 0);
}
static jx_val m_sindex(jx_ctx *c, jx_val self, const jx_args *a) {
    return find_common(c, self, a, 0, 1);
}
static jx_val m_rindex(jx_ctx *c, jx_val self, const jx_args *a) {
    return find_common(c, self, a, 1, 1);
}

static jx_val m_scount(jx_ctx *c, jx_val self, const jx_args *a) {
    static const char *const names[] = {"sub"};
    jx_val arg[1];
    bind_args(c, a, "count", names, 1, arg);
    jx_val sub = need_str(c, arg[0], "substring", a->line);
    if (sub.u.s.n == 0)
        return m40_jx_int((int64_t)m40_jx_utf8_len(self.u.s.p, self.u.s.n) + 1);
    int64_t k = 0;
    size_t from = 0;
    int found;
    for (;;) {
        size_t at = find_bytes(self, sub, from, 0, &found);
        if (!found)
            break;
        k++;
        from = at + sub.u.s.n;
    }
    return m40_jx_int(k);
}

static jx_val m_join(jx_ctx *c, jx_val self, const jx_args *a) {
    static const char *const names[] = {"iterable"};
    jx_val arg[1];
    bind_args(c, a, "join", names, 1, arg);
    jx_list *l = m40_jx_iterate(c, arg[0], a->line);
    jx_buf b = {0};
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].t != JX_STR)
            m40_jx_throw(H(c), a->line, "sequence item %zu: expected str instance, %s found", i,
                         m40_jx_type_name(l->v[i]));
        if (i)
            m40_jx_buf_put(H(c), &b, self.u.s.p, self.u.s.n);
        m40_jx_buf_put(H(c), &b, l->v[i].u.s.p, l->v[i].u.s.n);
    }
    return buf_val(&b);
}

static int all_cps(jx_val s, int (*pred)(uint32_t)) {
    if (s.u.s.n == 0)
        return 0;
    for (size_t i = 0; i < s.u.s.n;)
        if (!pred(m40_jx_utf8_next(s.u.s.p, s.u.s.n, &i)))
            return 0;
    return 1;
}

static int is_alnum(uint32_t cp) {
    return m40_jx_isalpha(cp) || m40_jx_isdigit(cp);
}

static jx_val m_isdigit(jx_ctx *c, jx_val self, const jx_args *a) {
    no_args(c, a, "isdigit");
    return m40_jx_bool(all_cps(self, m40_jx_isdigit));
}
static jx_val m_isalpha(jx_ctx *c, jx_val self, const jx_args *a) {
    no_args(c, a, "isalpha");
    return m40_jx_bool(all_cps(self, m40_jx_isalpha));
}
static jx_val m_isalnum(jx_ctx *c, jx_val self, const jx_args *a) {
    no_args(c, a, "isalnum");
    return m40_jx_bool(all_cps(self, is_alnum));
}
static jx_val m_isspace(jx_ctx *c, jx_val self, const jx_args *a) {
    no_args(c, a, "isspace");
    return m40_jx_bool(all_cps(self, m40_jx_isspace));
}

static jx_val case_pred(jx_val s, int lower) {
    int cased = 0;
    for (size_t i = 0; i < s.u.s.n;) {
        uint32_t cp = m40_jx_utf8_next(s.u.s.p, s.u.s.n, &i);
        if (lower ? m40_jx_isupper_cp(cp) : m40_jx_islower_cp(cp))
            return m40_jx_bool(0);
        cased |= m40_jx_iscased(cp);
    }
    return m40_jx_bool(cased);
}

static jx_val m_islower(jx_ctx *c, jx_val self, const jx_args *a) {
    no_args(c, a, "islower");
    return case_pred(self, 1);
}
static jx_val m_isupper(jx_ctx *c, jx_val self, const jx_args *a) {
    no_args(c, a, "isupper");
    return case_pred(self, 0);
}

static jx_val affix_remove(jx_ctx *c, jx_val self, const jx_args *a, int suffix) {
    static const char *const names[] = {"affix"};
    jx_val arg[1];
    bind_args(c, a, suffix ? "removesuffix" : "removeprefix", names, 1, arg);
    jx_val p = need_str(c, arg[0], "argument", a->line);
    if (!has_prefix(self, p, suffix))
        return self;
    return m40_jx_strv(self.u.s.p + (suffix ? 0 : p.u.s.n), self.u.s.n - p.u.s.n);
}

static jx_val m_removeprefix(jx_ctx *c, jx_val self, const jx_args *a) {
    return affix_remove(c, self, a, 0);
}
static jx_val m_removesuffix(jx_ctx *c, jx_val self, const jx_args *a) {
    return affix_remove(c, self, a, 1);
}

static jx_val partition_common(jx_ctx *c, jx_val self, const jx_args *a, int reverse) {
    static const char *const names[] = {"sep"};
    jx_val arg[1];
    bind_args(c, a, reverse ? "rpartition" : "partition", names, 1, arg);
    jx_val sep = need_str(c, arg[0], "separator", a->line);
    if (sep.u.s.n == 0)
        m40_jx_throw(H(c), a->line, "empty separator");
    int found;
    size_t at = find_bytes(self, sep, 0, reverse, &found);
    jx_val t = m40_jx_list_new(H(c), 3, JX_LIST_TUPLE);
    jx_val empty = m40_jx_strv("", 0);
    if (!found) {
        m40_jx_list_push(H(c), t.u.l, reverse ? empty : self);
        m40_jx_list_push(H(c), t.u.l, empty);
        m40_jx_list_push(H(c), t.u.l, reverse ? self : empty);
        return t;
    }
    m40_jx_list_push(H(c), t.u.l, m40_jx_strv(self.u.s.p, at));
    m40_jx_list_push(H(c), t.u.l, sep);
    size_t e = at + sep.u.s.n;
    m40_jx_list_push(H(c), t.u.l, m40_jx_strv(self.u.s.p + e, self.u.s.n - e));
    return t;
}

static jx_val m_partition(jx_ctx *c, jx_val self, const jx_args *a) {
    return partition_common(c, self, a, 0);
}
static jx_val m_rpartition(jx_ctx *c, jx_val self, const jx_args *a) {
    return partition_common(c, self, a, 1);
}

/* ljust / rjust / center / zfill */
static jx_val justify(jx_ctx *c, jx_val self, const jx_args *a, int mode) {
    static const char *const names[] = {"width", "fillchar"};
    jx_val arg[2] = {m40_jx_missing(), m40_jx_missing()};
    bind_args(c, a, "justify", names, mode == 3 ? 1 : 2, arg);
    int64_t width = need_int(c, arg[0], a->line);
    jx_val fill = need_str(c, opt(arg[1], m40_jx_strv(" ", 1)), "fillchar", a->line);
    if (m40_jx_utf8_len(fill.u.s.p, fill.u.s.n) != 1)
        m40_jx_throw(H(c), a->line, "The fill character must be exactly one character long");
    int64_t len = (int64_t)m40_jx_utf8_len(self.u.s.p, self.u.s.n);
    if (width <= len)
        return self;
    if (width > (int64_t)c->lim.max_output)
        m40_jx_throw(H(c), a->line, "output limit exceeded");
    int64_t marg = width - len, left;
    if (mode == 0)
        left = 0;
    else if (mode == 1 || mode == 3)
        left = marg;
    else
        left = marg / 2 + (marg & width & 1);
    jx_buf b = {0};
    const char *s = self.u.s.p;
    size_t sn = self.u.s.n;
    if (mode == 3) {
        fill = m40_jx_strv("0", 1);
        if (sn && (s[0] == '-' || s[0] == '+')) {
            m40_jx_buf_putc(H(c), &b, s[0]);
            s++;
            sn--;
        }
    }
    for (int64_t i = 0; i < left; i++)
        m40_jx_buf_put(H(c), &b, fill.u.s.p, fill.u.s.n);
    m40_jx_buf_put(H(c), &b, s, sn);
    for (int64_t i = 0; i < marg - left; i++)
        m40_jx_buf_put(H(c), &b, fill.u.s.p, fill.u.s.n);
    return buf_val(&b);
}

static jx_val m_ljust(jx_ctx *c, jx_val self, const jx_args *a) {
    return justify(c, self, a, 0);
}
static jx_val m_rjust(jx_ctx *c, jx_val self, const jx_args *a) {
    return justify(c, self, a, 1);
}
static jx_val m_center(jx_ctx *c, jx_val self, const jx_args *a) {
    return justify(c, self, a, 2);
}
static jx_val m_zfill(jx_ctx *c, jx_val self, const jx_args *a) {
    return justify(c, self, a, 3);
}

/* str.format: {} {0} {name} with !r/!s and a format spec the value's str()
 * ignores unless it is a plain width/alignment. */
static jx_val format_field(jx_ctx *c, const jx_args *a, const char *f, size_t n, size_t *auto_ix) {
    const char *conv = memchr(f, '!', n), *spec = memchr(f, ':', n);
    if (conv && spec && conv > spec)
        conv = NULL;
    size_t name_n = conv ? (size_t)(conv - f) : spec ? (size_t)(spec - f) : n;
    jx_val v;
    if (name_n == 0) {
        if (*auto_ix >= a->npos)
            m40_jx_throw(H(c), a->line,
                         "Replacement index %zu out of range for positional args tuple", *auto_ix);
        v = a->pos[(*auto_ix)++];
    } else if (f[0] >= '0' && f[0] <= '9') {
        size_t ix = 0;
        for (size_t i = 0; i < name_n && f[i] >= '0' && f[i] <= '9'; i++)
            ix = ix * 10 + (size_t)(f[i] - '0');
        if (ix >= a->npos)
            m40_jx_throw(H(c), a->line,
                         "Replacement index %zu out of range for positional args tuple", ix);
        v = a->pos[ix];
    } else {
        v = m40_jx_missing();
        for (size_t k = 0; k < a->nkw; k++)
            if (a->kwn[k].u.s.n == name_n && memcmp(a->kwn[k].u.s.p, f, name_n) == 0)
                v = a->kwv[k];
        if (m40_jx_is_missing(v))
            m40_jx_throw(H(c), a->line, "KeyError: '%.*s'", (int)name_n, f);
    }
    jx_buf b = {0};
    if (conv && conv + 1 < f + n && conv[1] == 'r')
        m40_jx_write_repr(H(c), &b, v);
    else
        m40_jx_write_str(H(c), &b, v);
    if (!spec || spec + 1 >= f + n)
        return buf_val(&b);
    /* [[fill]align][width] for strings */
    const char *sp = spec + 1, *se = f + n;
    char fill = ' ', align = v.t == JX_STR ? '<' : '>';
    if (se - sp >= 2 && strchr("<>^", sp[1])) {
        fill = sp[0];
        align = sp[1];
        sp += 2;
    } else if (sp < se && strchr("<>^", sp[0])) {
        align = *sp++;
    }
    size_t width = 0;
    while (sp < se && *sp >= '0' && *sp <= '9' && width < 100000)
        width = width * 10 + (size_t)(*sp++ - '0');
    if (sp != se)
        m40_jx_throw(H(c), a->line, "unsupported format spec '%.*s'", (int)(se - spec - 1),
                     spec + 1);
    size_t len = m40_jx_utf8_len(b.p ? b.p : "", b.n);
    if (width <= len)
        return buf_val(&b);
    size_t pad = width - len, left = align == '<' ? 0 : align == '>' ? pad : pad / 2;
    jx_buf o = {.limit = c->lim.max_output};
    for (size_t i = 0; i < left; i++)
        m40_jx_buf_putc(H(c), &o, fill);
    m40_jx_buf_put(H(c), &o, b.p, b.n);
    for (size_t i = left; i < pad; i++)
        m40_jx_buf_putc(H(c), &o, fill);
    return buf_val(&o);
}

static jx_val m_format(jx_ctx *c, jx_val self, const jx_args *a) {
    jx_buf b = {0};
    const char *s = self.u.s.p;
    size_t n = self.u.s.n, auto_ix = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '{' && i + 1 < n && s[i + 1] == '{') {
            m40_jx_buf_putc(H(c), &b, '{');
            i++;
        } else if (s[i] == '}' && i + 1 < n && s[i + 1] == '}') {
            m40_jx_buf_putc(H(c), &b, '}');
            i++;
        } else if (s[i] == '{') {
            const char *close = memchr(s + i, '}', n - i);
            if (!close)
                m40_jx_throw(H(c), a->line, "expected '}' before end of string");
            jx_val f = format_field(c, a, s + i + 1, (size_t)(close - s - i - 1), &auto_ix);
            m40_jx_buf_put(H(c), &b, f.u.s.p, f.u.s.n);
            i = (size_t)(close - s);
        } else if (s[i] == '}') {
            m40_jx_throw(H(c), a->line, "Single '}' encountered in format string");
        } else {
            m40_jx_buf_putc(H(c), &b, s[i]);
        }
    }
    return buf_val(&b);
}

/* ---- dict, list, loop ------------------------------------------------- */

static jx_val dict_view(jx_ctx *c, jx_val self, int sub) {
    const jx_dict *d = self.u.d;
    jx_val out = m40_jx_list_new(H(c), d->n, sub);
    for (size_t i = 0; i < d->n; i++) {
        jx_val item = sub == JX_LIST_KEYS ? d->k[i] : d->v[i];
        if (sub == JX_LIST_ITEMS) {
            item = m40_jx_list_new(H(c), 2, JX_LIST_TUPLE);
            m40_jx_list_push(H(c), item.u.l, d->k[i]);
            m40_jx_list_push(H(c), item.u.l, d->v[i]);
        }
        m40_jx_list_push(H(c), out.u.l, item);
    }
    return out;
}

static jx_val m_items(jx_ctx *c, jx_val self, const jx_args *a) {
    no_args(c, a, "items");
    return dict_view(c, self, JX_LIST_ITEMS);
}
static jx_val m_keys(jx_ctx *c, jx_val self, const jx_args *a) {
    no_args(c, a, "keys");
    return dict_view(c, self, JX_LIST_KEYS);
}
static jx_val m_values(jx_ctx *c, jx_val self, const jx_args *a) {
    no_args(c, a, "values");
    return dict_view(c, self, JX_LIST_VALUES);
}

static jx_val m_get(jx_ctx *c, jx_val self, const jx_args *a) {
    if (a->nkw)
        m40_jx_throw(H(c), a->line, "get() takes no keyword arguments");
    if (a->npos < 1 || a->npos > 2)
        m40_jx_throw(H(c), a->line, "get expected 1 or 2 arguments, got %zu", a->npos);
    if (!m40_jx_hashable(a->pos[0]))
        m40_jx_throw(H(c), a->line, "unhashable type: '%s'", m40_jx_type_name(a->pos[0]));
    jx_val *v = m40_jx_dict_find(self.u.d, a->pos[0]);
    if (v)
        return *v;
    return a->npos == 2 ? a->pos[1] : m40_jx_none();
}

static jx_val m_copy(jx_ctx *c, jx_val self, const jx_args *a) {
    no_args(c, a, "copy");
    if (self.t == JX_DICT) {
        jx_val d = m40_jx_dict_new(H(c), self.u.d->n);
        for (size_t i = 0; i < self.u.d->n; i++)
            m40_jx_dict_set(H(c), d.u.d, self.u.d->k[i], self.u.d->v[i]);
        return d;
    }
    jx_val l = m40_jx_list_new(H(c), self.u.l->n, 0);
    for (size_t i = 0; i < self.u.l->n; i++)
        m40_jx_list_push(H(c), l.u.l, self.u.l->v[i]);
    return l;
}

static jx_val m_lindex(jx_ctx *c, jx_val self, const jx_args *a) {
    if (a->npos != 1 || a->nkw)
        m40_jx_throw(H(c), a->line, "index() takes exactly one argument");
    for (size_t i = 0; i < self.u.l->n; i++)
        if (m40_jx_eq(self.u.l->v[i], a->pos[0]))
            return m40_jx_int((int64_t)i);
    m40_jx_throw(H(c), a->line, "x not in list");
}

static jx_val m_lcount(jx_ctx *c, jx_val self, const jx_args *a) {
    if (a->npos != 1 || a->nkw)
        m40_jx_throw(H(c), a->line, "count() takes exactly one argument");
    int64_t k = 0;
    for (size_t i = 0; i < self.u.l->n; i++)
        k += m40_jx_eq(self.u.l->v[i], a->pos[0]);
    return m40_jx_int(k);
}

static jx_val m_cycle(jx_ctx *c, jx_val self, const jx_args *a) {
    if (a->npos == 0)
        m40_jx_throw(H(c), a->line, "no items for cycling given");
    return a->pos[self.u.loop->i % a->npos];
}

static jx_val m_changed(jx_ctx *c, jx_val self, const jx_args *a) {
    jx_loop *l = self.u.loop;
    jx_val now = m40_jx_list_new(H(c), a->npos, JX_LIST_TUPLE);
    for (size_t i = 0; i < a->npos; i++)
        m40_jx_list_push(H(c), now.u.l, a->pos[i]);
    if (l->has_changed && m40_jx_eq(l->last_changed, now))
        return m40_jx_bool(0);
    l->has_changed = 1;
    l->last_changed = now;
    return m40_jx_bool(1);
}

/* ---- lookup ----------------------------------------------------------- */

typedef struct method_entry {
    const char *name;
    jx_builtin_fn fn;
} method_entry;

static const method_entry k_str_methods[] = {
    {"startswith", m_startswith},
    {"endswith", m_endswith},
    {"strip", m_strip},
    {"lstrip", m_lstrip},
    {"rstrip", m_rstrip},
    {"split", m_split},
    {"rsplit", m_rsplit},
    {"splitlines", m_splitlines},
    {"upper", m_upper},
    {"lower", m_lower},
    {"casefold", m_lower},
    {"title", m_title},
    {"capitalize", m_capitalize},
    {"swapcase", m_swapcase},
    {"replace", m_replace},
    {"find", m_find},
    {"rfind", m_rfind},
    {"index", m_sindex},
    {"rindex", m_rindex},
    {"count", m_scount},
    {"join", m_join},
    {"format", m_format},
    {"isdigit", m_isdigit},
    {"isdecimal", m_isdigit},
    {"isnumeric", m_isdigit},
    {"isalpha", m_isalpha},
    {"isalnum", m_isalnum},
    {"isspace", m_isspace},
    {"islower", m_islower},
    {"isupper", m_isupper},
    {"removeprefix", m_removeprefix},
    {"removesuffix", m_removesuffix},
    {"partition", m_partition},
    {"rpartition", m_rpartition},
    {"ljust", m_ljust},
    {"rjust", m_rjust},
    {"center", m_center},
    {"zfill", m_zfill},
};

static const method_entry k_dict_methods[] = {
    {"items", m_items}, {"keys", m_keys}, {"values", m_values}, {"get", m_get}, {"copy", m_copy},
};

static const method_entry k_list_methods[] = {
    {"index", m_lindex},
    {"count", m_lcount},
    {"copy", m_copy},
};

static const method_entry k_loop_methods[] = {
    {"cycle", m_cycle},
    {"changed", m_changed},
};

static const char *const k_dict_unsafe[] = {"clear",      "pop",    "popitem",
                                            "setdefault", "update", NULL};
static const char *const k_list_unsafe[] = {"append", "clear",  "pop",    "reverse", "insert",
                                            "sort",   "extend", "remove", NULL};

static int lookup(const method_entry *t, size_t n, const char *name, size_t len,
                  const method_entry **out) {
    for (size_t i = 0; i < n; i++)
        if (strlen(t[i].name) == len && memcmp(t[i].name, name, len) == 0) {
            *out = &t[i];
            return 1;
        }
    return 0;
}

static int unsafe(jx_ctx *c, const char *const *names, const char *type, const char *name,
                  size_t len, jx_val *out) {
    for (; *names; names++)
        if (strlen(*names) == len && memcmp(*names, name, len) == 0) {
            char msg[128];
            snprintf(msg, sizeof msg, "access to attribute '%s' of '%s' object is unsafe.", *names,
                     type);
            *out = m40_jx_undef(m40_jx_strndup(H(c), msg, strlen(msg)));
            out->sub = JX_UNDEF_UNSAFE;
            return 1;
        }
    return 0;
}

static jx_val bound(jx_ctx *c, jx_val self, const method_entry *m) {
    jx_func *f = m40_jx_alloc(H(c), sizeof *f);
    f->kind = JXF_BUILTIN;
    f->name = m->name;
    f->fn = m->fn;
    f->self = self;
    jx_val v = {.t = JX_FUNC};
    v.u.fn = f;
    return v;
}

#define COUNT(t) (sizeof(t) / sizeof((t)[0]))

int m40_jx_method(jx_ctx *c, jx_val self, const char *name, size_t n, jx_val *out) {
    const method_entry *m = NULL;
    int ok = 0;
    switch (self.t) {
        case JX_STR:
            ok = lookup(k_str_methods, COUNT(k_str_methods), name, n, &m);
            break;
        case JX_DICT:
            ok = lookup(k_dict_methods, COUNT(k_dict_methods), name, n, &m);
            if (!ok)
                return unsafe(c, k_dict_unsafe, "dict", name, n, out);
            break;
        case JX_LIST:
            if (self.sub == JX_LIST_GEN)
                return 0; /* a generator has no list methods */
            ok = lookup(k_list_methods, self.sub == JX_LIST_TUPLE ? 2 : COUNT(k_list_methods), name,
                        n, &m);
            if (!ok && self.sub != JX_LIST_TUPLE)
                return unsafe(c, k_list_unsafe, "list", name, n, out);
            break;
        case JX_LOOP:
            ok = lookup(k_loop_methods, COUNT(k_loop_methods), name, n, &m);
            break;
        default:
            break;
    }
    if (ok)
        *out = bound(c, self, m);
    return ok;
}

/* ---- globals ---------------------------------------------------------- */

static jx_val g_range(jx_ctx *c, jx_val self, const jx_args *a) {
    (void)self;
    if (a->nkw)
        m40_jx_throw(H(c), a->line, "range() takes no keyword arguments");
    if (a->npos < 1 || a->npos > 3)
        m40_jx_throw(H(c), a->line, "range expected at most 3 arguments, got %zu", a->npos);
    int64_t start = 0, stop, step = 1;
    if (a->npos == 1) {
        stop = need_int(c, a->pos[0], a->line);
    } else {
        start = need_int(c, a->pos[0], a->line);
        stop = need_int(c, a->pos[1], a->line);
        if (a->npos == 3)
            step = need_int(c, a->pos[2], a->line);
    }
    if (step == 0)
        m40_jx_throw(H(c), a->line, "range() arg 3 must not be zero");
    /* length computed in double to avoid int64 overflow on huge ranges */
    double len = step > 0 ? ((double)stop - (double)start) / (double)step
                          : ((double)start - (double)stop) / (double)-step;
    len = len <= 0 ? 0 : ceil(len);
    if (len > MAX_RANGE)
        m40_jx_throw(H(c), a->line,
                     "Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).",
                     MAX_RANGE);
    jx_val out = m40_jx_list_new(H(c), (size_t)len, 0);
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
        m40_jx_list_push(H(c), out.u.l, m40_jx_int(i));
    return out;
}

static jx_val dict_from_args(jx_ctx *c, const jx_args *a, const char *name) {
    if (a->npos > 1)
        m40_jx_throw(H(c), a->line, "%s expected at most 1 argument, got %zu", name, a->npos);
    jx_val d = m40_jx_dict_new(H(c), 0);
    if (a->npos == 1) {
        jx_val src = a->pos[0];
        if (src.t == JX_DICT || src.t == JX_NS) {
            for (size_t i = 0; i < src.u.d->n; i++)
                m40_jx_dict_set(H(c), d.u.d, src.u.d->k[i], src.u.d->v[i]);
        } else {
            jx_list *l = m40_jx_iterate(c, src, a->line);
            for (size_t i = 0; i < l->n; i++) {
                jx_list *pair = m40_jx_iterate(c, l->v[i], a->line);
                if (pair->n != 2)
                    m40_jx_throw(H(c), a->line,
                                 "dictionary update sequence element #%zu has length %zu; 2 is "
                                 "required",
                                 i, pair->n);
                if (!m40_jx_hashable(pair->v[0]))
                    m40_jx_throw(H(c), a->line, "unhashable type: '%s'",
                                 m40_jx_type_name(pair->v[0]));
                m40_jx_dict_set(H(c), d.u.d, pair->v[0], pair->v[1]);
            }
        }
    }
    for (size_t k = 0; k < a->nkw; k++)
        m40_jx_dict_set(H(c), d.u.d, a->kwn[k], a->kwv[k]);
    return d;
}

static jx_val g_dict(jx_ctx *c, jx_val self, const jx_args *a) {
    (void)self;
    return dict_from_args(c, a, "dict");
}

static jx_val g_namespace(jx_ctx *c, jx_val self, const jx_args *a) {
    (void)self;
    jx_val d = dict_from_args(c, a, "Namespace");
    d.t = JX_NS;
    return d;
}

static jx_val g_raise_exception(jx_ctx *c, jx_val self, const jx_args *a) {
    (void)self;
    static const char *const names[] = {"message"};
    jx_val arg[1];
    m40_jx_bind(c, a, "raise_exception", names, 1, arg);
    if (m40_jx_is_missing(arg[0]))
        m40_jx_throw(H(c), a->line,
                     "raise_exception() missing 1 required positional argument: 'message'");
    jx_val msg = m40_jx_to_str(H(c), arg[0]);
    m40_jx_throw_msg(H(c), a->line, msg.u.s.p, msg.u.s.n);
}

static jx_val g_strftime_now(jx_ctx *c, jx_val self, const jx_args *a) {
    (void)self;
    static const char *const names[] = {"format"};
    jx_val arg[1];
    m40_jx_bind(c, a, "strftime_now", names, 1, arg);
    jx_val fmt = need_str(c, arg[0], "strftime() argument 1", a->line);
    if (fmt.u.s.n > 1024)
        m40_jx_throw(H(c), a->line, "strftime format too long");
    time_t t = c->has_now ? (time_t)c->now : time(NULL);
    struct tm tm;
    if (c->has_now)
        gmtime_r(&t, &tm);
    else
        localtime_r(&t, &tm);
    /* datetime.strftime handles %f, %z and %Z itself (a naive datetime has
     * no zone); the rest goes to the C library, as in CPython */
    jx_buf f = {0};
    for (size_t i = 0; i < fmt.u.s.n; i++) {
        char ch = fmt.u.s.p[i];
        if (ch == '%' && i + 1 < fmt.u.s.n) {
            char k = fmt.u.s.p[++i];
            if (k == 'f')
                m40_jx_buf_puts(H(c), &f, "000000");
            else if (k != 'z' && k != 'Z') {
                m40_jx_buf_putc(H(c), &f, '%');
                m40_jx_buf_putc(H(c), &f, k);
            }
        } else {
            m40_jx_buf_putc(H(c), &f, ch);
        }
    }
    m40_jx_buf_putc(H(c), &f, '\0');
    size_t cap = 256 + f.n * 64;
    char *out = m40_jx_alloc(H(c), cap);
    /* the format is the template's by design (strftime_now(fmt)) */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    size_t n = strftime(out, cap, f.p, &tm);
#pragma GCC diagnostic pop
    return m40_jx_str_copy(H(c), out, n);
}

static jx_val joiner_call(jx_ctx *c, jx_val self, const jx_args *a) {
    (void)c;
    (void)a;
    jx_val *used = m40_jx_dict_find_str(self.u.d, "used", 4);
    jx_val *sep = m40_jx_dict_find_str(self.u.d, "sep", 3);
    if (!m40_jx_truthy(*used)) {
        *used = m40_jx_bool(1);
        return m40_jx_strv("", 0);
    }
    return *sep;
}

static jx_val g_joiner(jx_ctx *c, jx_val self, const jx_args *a) {
    (void)self;
    static const char *const names[] = {"sep"};
    jx_val arg[1];
    m40_jx_bind(c, a, "joiner", names, 1, arg);
    jx_val state = m40_jx_dict_new(H(c), 2);
    m40_jx_dict_set(H(c), state.u.d, m40_jx_cstr("sep"), opt(arg[0], m40_jx_cstr(", ")));
    m40_jx_dict_set(H(c), state.u.d, m40_jx_cstr("used"), m40_jx_bool(0));
    static const method_entry call = {"joiner", joiner_call};
    return bound(c, state, &call);
}

static jx_val g_unsupported(jx_ctx *c, jx_val self, const jx_args *a) {
    (void)self;
    m40_jx_throw(H(c), a->line, "this global function is not supported in chat templates");
}

void m40_jx_install_globals(jx_ctx *c, jx_scope *s) {
    static const method_entry globals[] = {
        {"range", g_range},
        {"dict", g_dict},
        {"namespace", g_namespace},
        {"joiner", g_joiner},
        {"cycler", g_unsupported},
        {"lipsum", g_unsupported},
        {"raise_exception", g_raise_exception},
        {"strftime_now", g_strftime_now},
    };
    for (size_t i = 0; i < COUNT(globals); i++)
        m40_jx_dict_set(H(c), &s->vars, m40_jx_cstr(globals[i].name),
                        bound(c, m40_jx_none(), &globals[i]));
}
