/* jinja_ops.c - Python's operators on template values: + - * / // % **,
 * comparisons (with Python's cross-type rules and TypeError messages),
 * membership, unary minus and printf-style `str % args`.
 *
 * Integers are 64-bit; where Python would grow a big integer this raises
 * "integer overflow" instead (a documented gap).
 *
 * Owns: operator semantics. Touches: the render arena.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "chat/jinja_internal.h"

static const char *op_symbol(int op) {
    static const char *const s[] = {
        [JX_OP_ADD] = "+",       [JX_OP_SUB] = "-", [JX_OP_MUL] = "*",        [JX_OP_DIV] = "/",
        [JX_OP_FLOORDIV] = "//", [JX_OP_MOD] = "%", [JX_OP_POW] = "**",       [JX_OP_EQ] = "==",
        [JX_OP_NE] = "!=",       [JX_OP_LT] = "<",  [JX_OP_LTEQ] = "<=",      [JX_OP_GT] = ">",
        [JX_OP_GTEQ] = ">=",     [JX_OP_IN] = "in", [JX_OP_NOTIN] = "not in",
    };
    return (op > 0 && op <= JX_OP_NOTIN) ? s[op] : "?";
}

#if defined(__GNUC__)
__attribute__((noreturn))
#endif
static void
unsupported(jx_ctx *c, int op, jx_val a, jx_val b, int line) {
    m40_jx_throw(&c->h, line, "unsupported operand type(s) for %s: '%s' and '%s'",
                 op == JX_OP_POW ? "** or pow()" : op_symbol(op), m40_jx_type_name(a),
                 m40_jx_type_name(b));
}

static int64_t ival(jx_val v) {
    return v.t == JX_BOOL ? v.u.b : v.u.i;
}

static int is_intlike(jx_val v) {
    return v.t == JX_INT || v.t == JX_BOOL;
}

#if defined(__GNUC__)
__attribute__((noreturn))
#endif
static void
overflow(jx_ctx *c, int line) {
    m40_jx_throw(&c->h, line, "integer overflow (values beyond 64 bits are not supported)");
}

static jx_val int_pow(jx_ctx *c, int64_t base, int64_t e, int line) {
    if (e < 0) {
        if (base == 0)
            m40_jx_throw(&c->h, line, "0.0 cannot be raised to a negative power");
        return m40_jx_float(pow((double)base, (double)e));
    }
    int64_t r = 1;
    while (e > 0) {
        if (e & 1)
            if (__builtin_mul_overflow(r, base, &r))
                overflow(c, line);
        e >>= 1;
        if (e && __builtin_mul_overflow(base, base, &base))
            overflow(c, line);
    }
    return m40_jx_int(r);
}

/* CPython's float_floor_div / float_rem. */
static void float_divmod(double vx, double wx, double *floordiv, double *rem) {
    double mod = fmod(vx, wx);
    double div = (vx - mod) / wx;
    if (mod != 0.0) {
        if ((wx < 0) != (mod < 0)) {
            mod += wx;
            div -= 1.0;
        }
    } else {
        mod = copysign(0.0, wx);
    }
    double fd;
    if (div != 0.0) {
        fd = floor(div);
        if (div - fd > 0.5)
            fd += 1.0;
    } else {
        fd = copysign(0.0, vx / wx);
    }
    *floordiv = fd;
    *rem = mod;
}

static jx_val int_arith(jx_ctx *c, int op, int64_t x, int64_t y, int line) {
    int64_t r;
    switch (op) {
        case JX_OP_ADD:
            if (__builtin_add_overflow(x, y, &r))
                overflow(c, line);
            return m40_jx_int(r);
        case JX_OP_SUB:
            if (__builtin_sub_overflow(x, y, &r))
                overflow(c, line);
            return m40_jx_int(r);
        case JX_OP_MUL:
            if (__builtin_mul_overflow(x, y, &r))
                overflow(c, line);
            return m40_jx_int(r);
        case JX_OP_DIV:
            if (y == 0)
                m40_jx_throw(&c->h, line, "division by zero");
            return m40_jx_float((double)x / (double)y);
        case JX_OP_FLOORDIV:
        case JX_OP_MOD: {
            if (y == 0)
                m40_jx_throw(&c->h, line, "integer division or modulo by zero");
            if (x == INT64_MIN && y == -1) {
                if (op == JX_OP_MOD)
                    return m40_jx_int(0);
                overflow(c, line);
            }
            int64_t q = x / y, m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) {
                q -= 1;
                m += y;
            }
            return m40_jx_int(op == JX_OP_MOD ? m : q);
        }
        default:
            return int_pow(c, x, y, line);
    }
}

static jx_val float_arith(jx_ctx *c, int op, double x, double y, int line) {
    double fd, rem;
    switch (op) {
        case JX_OP_ADD:
            return m40_jx_float(x + y);
        case JX_OP_SUB:
            return m40_jx_float(x - y);
        case JX_OP_MUL:
            return m40_jx_float(x * y);
        case JX_OP_DIV:
            if (y == 0.0)
                m40_jx_throw(&c->h, line, "float division by zero");
            return m40_jx_float(x / y);
        case JX_OP_FLOORDIV:
        case JX_OP_MOD:
            if (y == 0.0)
                m40_jx_throw(&c->h, line,
                             op == JX_OP_MOD ? "float modulo" : "float floor division by zero");
            float_divmod(x, y, &fd, &rem);
            return m40_jx_float(op == JX_OP_MOD ? rem : fd);
        default:
            if (x == 0.0 && y < 0)
                m40_jx_throw(&c->h, line, "0.0 cannot be raised to a negative power");
            if (x < 0 && y != floor(y))
                m40_jx_throw(&c->h, line, "complex results are not supported");
            return m40_jx_float(pow(x, y));
    }
}

static jx_val repeat(jx_ctx *c, jx_val seq, int64_t times, int line) {
    if (times < 0)
        times = 0;
    if (seq.t == JX_STR) {
        if (seq.u.s.n && (uint64_t)times > (SIZE_MAX / 2) / seq.u.s.n)
            m40_jx_throw(&c->h, line, "memory limit exceeded");
        jx_buf b = {.limit = c->lim.max_output};
        for (int64_t i = 0; i < times; i++)
            m40_jx_buf_put(&c->h, &b, seq.u.s.p, seq.u.s.n);
        return m40_jx_strv(b.p ? b.p : "", b.n);
    }
    const jx_list *l = seq.u.l;
    if (l->n && (uint64_t)times > c->lim.max_iterations / l->n)
        m40_jx_throw(&c->h, line, "memory limit exceeded");
    jx_val out = m40_jx_list_new(&c->h, (size_t)times * l->n, seq.sub == JX_LIST_TUPLE);
    for (int64_t i = 0; i < times; i++)
        for (size_t k = 0; k < l->n; k++)
            m40_jx_list_push(&c->h, out.u.l, l->v[k]);
    return out;
}

static jx_val concat_seq(jx_ctx *c, jx_val a, jx_val b) {
    if (a.t == JX_STR) {
        char *p = m40_jx_alloc(&c->h, a.u.s.n + b.u.s.n + 1);
        if (a.u.s.n)
            memcpy(p, a.u.s.p, a.u.s.n);
        if (b.u.s.n)
            memcpy(p + a.u.s.n, b.u.s.p, b.u.s.n);
        return m40_jx_strv(p, a.u.s.n + b.u.s.n);
    }
    jx_val out = m40_jx_list_new(&c->h, a.u.l->n + b.u.l->n, a.sub == JX_LIST_TUPLE);
    for (size_t i = 0; i < a.u.l->n; i++)
        m40_jx_list_push(&c->h, out.u.l, a.u.l->v[i]);
    for (size_t i = 0; i < b.u.l->n; i++)
        m40_jx_list_push(&c->h, out.u.l, b.u.l->v[i]);
    return out;
}

static int same_seq_type(jx_val a, jx_val b) {
    if (a.t != b.t)
        return 0;
    if (a.t == JX_STR)
        return 1;
    return a.t == JX_LIST && a.sub != JX_LIST_GEN && b.sub != JX_LIST_GEN &&
           (a.sub == JX_LIST_TUPLE) == (b.sub == JX_LIST_TUPLE);
}

jx_val m40_jx_binop(jx_ctx *c, int op, jx_val a, jx_val b, int line) {
    m40_jx_check_defined(c, a, line);
    m40_jx_check_defined(c, b, line);
    if (m40_jx_is_number(a) && m40_jx_is_number(b)) {
        if (is_intlike(a) && is_intlike(b))
            return int_arith(c, op, ival(a), ival(b), line);
        return float_arith(c, op, m40_jx_as_double(a), m40_jx_as_double(b), line);
    }
    if (op == JX_OP_ADD) {
        if (same_seq_type(a, b))
            return concat_seq(c, a, b);
        if (a.t == JX_STR || (a.t == JX_LIST && !m40_jx_is_gen(a)))
            m40_jx_throw(&c->h, line, "can only concatenate %s (not \"%s\") to %s",
                         m40_jx_type_name(a), m40_jx_type_name(b), m40_jx_type_name(a));
    }
    if (op == JX_OP_MUL) {
        int a_seq = a.t == JX_STR || (a.t == JX_LIST && !m40_jx_is_gen(a));
        jx_val seq = a_seq ? a : b;
        jx_val n = a_seq ? b : a;
        if (seq.t == JX_STR || (seq.t == JX_LIST && !m40_jx_is_gen(seq))) {
            if (is_intlike(n))
                return repeat(c, seq, ival(n), line);
            m40_jx_throw(&c->h, line, "can't multiply sequence by non-int of type '%s'",
                         m40_jx_type_name(n));
        }
    }
    if (op == JX_OP_MOD && a.t == JX_STR)
        return m40_jx_percent_format(c, a, b, line);
    unsupported(c, op, a, b, line);
}

jx_val m40_jx_neg(jx_ctx *c, jx_val a, int line, int negate) {
    m40_jx_check_defined(c, a, line);
    if (is_intlike(a)) {
        int64_t v = ival(a);
        if (negate && v == INT64_MIN)
            overflow(c, line);
        return m40_jx_int(negate ? -v : v);
    }
    if (a.t == JX_FLOAT)
        return m40_jx_float(negate ? -a.u.f : a.u.f);
    m40_jx_throw(&c->h, line, "bad operand type for unary %c: '%s'", negate ? '-' : '+',
                 m40_jx_type_name(a));
}

/* Python's three-way ordering; throws TypeError for unorderable pairs. */
static int cmp3(jx_ctx *c, jx_val a, jx_val b, int op, int line) {
    if (m40_jx_is_number(a) && m40_jx_is_number(b)) {
        if (is_intlike(a) && is_intlike(b))
            return (ival(a) > ival(b)) - (ival(a) < ival(b));
        double x = m40_jx_as_double(a), y = m40_jx_as_double(b);
        return (x > y) - (x < y);
    }
    if (a.t == JX_STR && b.t == JX_STR) {
        size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
        int r = n ? memcmp(a.u.s.p, b.u.s.p, n) : 0;
        if (r)
            return r < 0 ? -1 : 1;
        return (a.u.s.n > b.u.s.n) - (a.u.s.n < b.u.s.n);
    }
    if (same_seq_type(a, b)) {
        const jx_list *x = a.u.l, *y = b.u.l;
        for (size_t i = 0; i < x->n && i < y->n; i++)
            if (!m40_jx_eq(x->v[i], y->v[i]))
                return cmp3(c, x->v[i], y->v[i], op, line);
        return (x->n > y->n) - (x->n < y->n);
    }
    m40_jx_throw(&c->h, line, "'%s' not supported between instances of '%s' and '%s'",
                 op_symbol(op), m40_jx_type_name(a), m40_jx_type_name(b));
}

int m40_jx_less(jx_ctx *c, jx_val a, jx_val b, int line) {
    return cmp3(c, a, b, JX_OP_LT, line) < 0;
}

int m40_jx_contains(jx_ctx *c, jx_val container, jx_val item, int line) {
    switch (container.t) {
        case JX_STR:
            if (item.t != JX_STR) {
                m40_jx_check_defined(c, item, line);
                m40_jx_throw(&c->h, line, "'in <string>' requires string as left operand, not %s",
                             m40_jx_type_name(item));
            }
            if (item.u.s.n == 0)
                return 1;
            if (item.u.s.n > container.u.s.n)
                return 0;
            for (size_t i = 0; i + item.u.s.n <= container.u.s.n; i++)
                if (memcmp(container.u.s.p + i, item.u.s.p, item.u.s.n) == 0)
                    return 1;
            return 0;
        case JX_LIST:
            if (container.u.l->deferred_error)
                m40_jx_rethrow(&c->h, container.u.l->deferred_error);
            for (size_t i = 0; i < container.u.l->n; i++)
                if (m40_jx_eq(container.u.l->v[i], item))
                    return 1;
            return 0;
        case JX_DICT:
            if (!m40_jx_hashable(item))
                m40_jx_throw(&c->h, line, "unhashable type: '%s'", m40_jx_type_name(item));
            return m40_jx_dict_find(container.u.d, item) != NULL;
        case JX_UNDEF:
            return 0;
        default:
            m40_jx_throw(&c->h, line, "argument of type '%s' is not iterable",
                         m40_jx_type_name(container));
    }
}

jx_val m40_jx_compare(jx_ctx *c, int op, jx_val a, jx_val b, int line) {
    switch (op) {
        case JX_OP_EQ:
            return m40_jx_bool(m40_jx_eq(a, b));
        case JX_OP_NE:
            return m40_jx_bool(!m40_jx_eq(a, b));
        case JX_OP_IN:
            return m40_jx_bool(m40_jx_contains(c, b, a, line));
        case JX_OP_NOTIN:
            return m40_jx_bool(!m40_jx_contains(c, b, a, line));
        default:
            break;
    }
    m40_jx_check_defined(c, a, line);
    m40_jx_check_defined(c, b, line);
    int r = cmp3(c, a, b, op, line);
    switch (op) {
        case JX_OP_LT:
            return m40_jx_bool(r < 0);
        case JX_OP_LTEQ:
            return m40_jx_bool(r <= 0);
        case JX_OP_GT:
            return m40_jx_bool(r > 0);
        default:
            return m40_jx_bool(r >= 0);
    }
}

/* ---- printf-style formatting ------------------------------------------ */

typedef struct pspec {
    int left, plus, space, zero, alt;
    int width, prec;
    char type;
} pspec;

static void pad_put(jx_ctx *c, jx_buf *out, const pspec *sp, const char *s, size_t n) {
    size_t cps = m40_jx_utf8_len(s, n);
    size_t w = sp->width > 0 ? (size_t)sp->width : 0;
    if (!sp->left)
        for (size_t i = cps; i < w; i++)
            m40_jx_buf_putc(&c->h, out, ' ');
    m40_jx_buf_put(&c->h, out, s, n);
    if (sp->left)
        for (size_t i = cps; i < w; i++)
            m40_jx_buf_putc(&c->h, out, ' ');
}

/* A number's digits without sign, as printf would write them. */
static void number_digits(const pspec *sp, jx_val v, char *out, size_t cap, int *neg) {
    int prec = sp->prec > 200 ? 200 : sp->prec;
    if (strchr("diuxXoc", sp->type)) {
        long long iv = is_intlike(v) ? (long long)ival(v) : (long long)v.u.f;
        unsigned long long mag = iv < 0 ? 0ull - (unsigned long long)iv : (unsigned long long)iv;
        *neg = iv < 0;
        if (sp->type == 'x')
            snprintf(out, cap, "%s%llx", sp->alt ? "0x" : "", mag);
        else if (sp->type == 'X')
            snprintf(out, cap, "%s%llX", sp->alt ? "0X" : "", mag);
        else if (sp->type == 'o')
            snprintf(out, cap, "%s%llo", sp->alt ? "0o" : "", mag);
        else
            snprintf(out, cap, "%llu", mag);
        return;
    }
    double d = m40_jx_as_double(v);
    *neg = signbit(d) != 0 && !isnan(d);
    d = fabs(d);
    int p = prec >= 0 ? prec : 6;
    switch (sp->type) {
        case 'e':
            snprintf(out, cap, "%.*e", p, d);
            break;
        case 'E':
            snprintf(out, cap, "%.*E", p, d);
            break;
        case 'g':
            snprintf(out, cap, "%.*g", p, d);
            break;
        case 'G':
            snprintf(out, cap, "%.*G", p, d);
            break;
        case 'F':
            snprintf(out, cap, "%.*F", p, d);
            break;
        default:
            snprintf(out, cap, "%.*f", p, d);
            break;
    }
}

static void format_one(jx_ctx *c, jx_buf *out, const pspec *sp, jx_val v, int line) {
    if (sp->type == 's' || sp->type == 'r' || sp->type == 'a') {
        jx_buf b = {0};
        if (sp->type == 's')
            m40_jx_write_str(&c->h, &b, v);
        else
            m40_jx_write_repr(&c->h, &b, v);
        size_t n = b.n;
        if (sp->prec >= 0)
            n = m40_jx_utf8_offset(b.p ? b.p : "", b.n, (size_t)sp->prec);
        pad_put(c, out, sp, b.p ? b.p : "", n);
        return;
    }
    m40_jx_check_defined(c, v, line);
    if (!m40_jx_is_number(v))
        m40_jx_throw(&c->h, line, "%%%c format: a real number is required, not %s", sp->type,
                     m40_jx_type_name(v));
    if (sp->type == 'c') {
        char u[8];
        int64_t cp = is_intlike(v) ? ival(v) : 0;
        if (cp < 0 || cp > 0x10FFFF)
            m40_jx_throw(&c->h, line, "%%c arg not in range(0x110000)");
        pad_put(c, out, sp, u, m40_jx_utf8_put(u, (uint32_t)cp));
        return;
    }
    char digits[480];
    int neg = 0;
    number_digits(sp, v, digits, sizeof digits, &neg);
    const char *sign = neg ? "-" : sp->plus ? "+" : sp->space ? " " : "";
    size_t nd = strlen(digits), ns = strlen(sign);
    size_t w = sp->width > 200 ? 200 : (size_t)sp->width;
    size_t pad = w > nd + ns ? w - nd - ns : 0;
    if (!sp->left && !sp->zero)
        for (size_t i = 0; i < pad; i++)
            m40_jx_buf_putc(&c->h, out, ' ');
    m40_jx_buf_puts(&c->h, out, sign);
    if (!sp->left && sp->zero)
        for (size_t i = 0; i < pad; i++)
            m40_jx_buf_putc(&c->h, out, '0');
    m40_jx_buf_put(&c->h, out, digits, nd);
    if (sp->left)
        for (size_t i = 0; i < pad; i++)
            m40_jx_buf_putc(&c->h, out, ' ');
}

static int parse_num(const char *s, size_t n, size_t *i) {
    int v = 0;
    while (*i < n && s[*i] >= '0' && s[*i] <= '9') {
        if (v < 100000)
            v = v * 10 + (s[*i] - '0');
        (*i)++;
    }
    return v;
}

jx_val m40_jx_percent_format(jx_ctx *c, jx_val fmtv, jx_val args, int line) {
    const char *s = fmtv.u.s.p;
    size_t n = fmtv.u.s.n, ai = 0;
    const jx_list *tuple = (args.t == JX_LIST && args.sub == JX_LIST_TUPLE) ? args.u.l : NULL;
    size_t nargs = tuple ? tuple->n : 1;
    jx_buf out = {0};
    for (size_t i = 0; i < n;) {
        if (s[i] != '%') {
            m40_jx_buf_putc(&c->h, &out, s[i++]);
            continue;
        }
        i++;
        pspec sp = {.prec = -1};
        jx_val v = m40_jx_missing();
        if (i < n && s[i] == '(') {
            size_t start = ++i;
            while (i < n && s[i] != ')')
                i++;
            if (i >= n)
                m40_jx_throw(&c->h, line, "incomplete format key");
            if (args.t != JX_DICT)
                m40_jx_throw(&c->h, line, "format requires a mapping");
            jx_val *f = m40_jx_dict_find_str(args.u.d, s + start, i - start);
            if (!f)
                m40_jx_throw(&c->h, line, "KeyError: '%.*s'", (int)(i - start), s + start);
            v = *f;
            i++;
        }
        for (; i < n && strchr("-+ 0#", s[i]); i++) {
            sp.left |= s[i] == '-';
            sp.plus |= s[i] == '+';
            sp.space |= s[i] == ' ';
            sp.zero |= s[i] == '0';
            sp.alt |= s[i] == '#';
        }
        sp.width = parse_num(s, n, &i);
        if (i < n && s[i] == '.') {
            i++;
            sp.prec = parse_num(s, n, &i);
        }
        while (i < n && (s[i] == 'l' || s[i] == 'h' || s[i] == 'L'))
            i++;
        if (i >= n)
            m40_jx_throw(&c->h, line, "incomplete format");
        sp.type = s[i++];
        if (sp.type == '%') {
            m40_jx_buf_putc(&c->h, &out, '%');
            continue;
        }
        if (!strchr("sradiuxXoceEfFgG", sp.type))
            m40_jx_throw(&c->h, line, "unsupported format character '%c'", sp.type);
        if (m40_jx_is_missing(v)) {
            if (ai >= nargs)
                m40_jx_throw(&c->h, line, "not enough arguments for format string");
            v = tuple ? tuple->v[ai] : args;
            ai++;
        }
        format_one(c, &out, &sp, v, line);
    }
    if (args.t != JX_DICT && ai < nargs)
        m40_jx_throw(&c->h, line, "not all arguments converted during string formatting");
    return m40_jx_strv(out.p ? out.p : "", out.n);
}
