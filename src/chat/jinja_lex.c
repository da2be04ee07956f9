/* jinja_lex.c - the template lexer, a transcription of jinja2 3.1's
 * Lexer.tokeniter with transformers' settings (trim_blocks=True,
 * lstrip_blocks=True, keep_trailing_newline=False):
 *
 *  - newlines (\r\n, \r, \n) become \n and one trailing newline is dropped;
 *  - `{%-` / `{{-` / `{#-` strip all whitespace before the tag, `-%}` /
 *    `-}}` / `-#}` all whitespace after it;
 *  - lstrip_blocks: before `{%` and `{#` (not `{{`), spaces and tabs from
 *    the start of the line are removed unless the tag says `{%+`;
 *  - trim_blocks: one newline right after `%}` or `#}` is removed unless
 *    the tag says `+%}`;
 *  - `{% raw %}...{% endraw %}` is data; comments vanish;
 *  - inside a tag, an end delimiter only counts while (), [], {} balance.
 *
 * Whitespace means Python's str.isspace set, as jinja2's `\s` and rstrip()
 * use it.
 *
 * Owns: tokens. Touches: the arena only.
 */
#include <stdlib.h>
#include <string.h>

#include "chat/jinja_internal.h"

#define JX_MAX_BALANCE 256

typedef struct lexer {
    jx_heap *h;
    const char *s;
    size_t n;
    size_t pos;
    int line;
    int line_starting;
    jx_toks *out;
    char bal[JX_MAX_BALANCE];
    int nbal;
} lexer;

static void advance_to(lexer *lx, size_t to) {
    for (size_t i = lx->pos; i < to; i++)
        if (lx->s[i] == '\n')
            lx->line++;
    lx->pos = to;
}

static jx_tok *emit(lexer *lx, int type, const char *p, size_t n, int line) {
    jx_toks *t = lx->out;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        t->v = m40_jx_grow(lx->h, t->v, t->n * sizeof(jx_tok), cap * sizeof(jx_tok));
        t->cap = cap;
    }
    jx_tok *k = &t->v[t->n++];
    memset(k, 0, sizeof *k);
    k->type = (uint8_t)type;
    k->p = p;
    k->n = n;
    k->line = line;
    return k;
}

/* Length of the whitespace (str.isspace) run at s[i]. */
static size_t ws_run(const char *s, size_t n, size_t i) {
    size_t j = i;
    while (j < n) {
        size_t k = j;
        uint32_t c = m40_jx_utf8_next(s, n, &k);
        if (!m40_jx_isspace(c))
            break;
        j = k;
    }
    return j - i;
}

/* Python's str.rstrip(): the end of s[a..b) without trailing whitespace. */
static size_t rstrip_end(const char *s, size_t a, size_t b) {
    size_t end = a, i = a;
    while (i < b) {
        uint32_t c = m40_jx_utf8_next(s, b, &i);
        if (!m40_jx_isspace(c))
            end = i;
    }
    return end;
}

/* OptionalLStrip: how much of the text s[a..b) before a tag survives. */
static size_t strip_before_tag(lexer *lx, size_t a, size_t b, char sign, int is_var) {
    if (sign == '-')
        return rstrip_end(lx->s, a, b);
    if (sign == '+' || is_var)
        return b;
    size_t l_pos = a;
    for (size_t i = b; i > a; i--)
        if (lx->s[i - 1] == '\n') {
            l_pos = i;
            break;
        }
    if (l_pos > a || lx->line_starting) {
        size_t ws = ws_run(lx->s, b, l_pos);
        if (ws > 0 && l_pos + ws == b)
            return l_pos;
    }
    return b;
}

static int starts(const lexer *lx, size_t i, const char *lit) {
    size_t k = strlen(lit);
    return i + k <= lx->n && memcmp(lx->s + i, lit, k) == 0;
}

/* Matches a block end (`+%}`, `-%}\s*`, `%}\n?`) at i; returns its end or 0. */
static size_t block_end_at(const lexer *lx, size_t i) {
    if (starts(lx, i, "+%}"))
        return i + 3;
    if (starts(lx, i, "-%}"))
        return i + 3 + ws_run(lx->s, lx->n, i + 3);
    if (starts(lx, i, "%}")) {
        size_t e = i + 2;
        return (e < lx->n && lx->s[e] == '\n') ? e + 1 : e;
    }
    return 0;
}

static size_t var_end_at(const lexer *lx, size_t i) {
    if (starts(lx, i, "-}}"))
        return i + 3 + ws_run(lx->s, lx->n, i + 3);
    if (starts(lx, i, "}}"))
        return i + 2;
    return 0;
}

/* `{%[-+]?\s*NAME\s*` at i; returns the offset after it or 0. */
static size_t tag_named(const lexer *lx, size_t i, const char *name, char *sign) {
    if (!starts(lx, i, "{%"))
        return 0;
    size_t j = i + 2;
    *sign = 0;
    if (j < lx->n && (lx->s[j] == '-' || lx->s[j] == '+'))
        *sign = lx->s[j++];
    j += ws_run(lx->s, lx->n, j);
    if (!starts(lx, j, name))
        return 0;
    j += strlen(name);
    return j + ws_run(lx->s, lx->n, j);
}

/* `{% raw %}`: its end (after `-%}\s*` or `%}`; no trim_blocks here, as in
 * jinja2) or 0. */
static size_t raw_begin_at(const lexer *lx, size_t i, char *sign) {
    size_t j = tag_named(lx, i, "raw", sign);
    if (!j)
        return 0;
    if (starts(lx, j, "-%}"))
        return j + 3 + ws_run(lx->s, lx->n, j + 3);
    if (starts(lx, j, "%}"))
        return j + 2;
    return 0;
}

static void lex_raw(lexer *lx) {
    for (size_t k = lx->pos; k < lx->n; k++) {
        char sign;
        size_t j = tag_named(lx, k, "endraw", &sign);
        size_t end = j ? block_end_at(lx, j) : 0;
        if (!end)
            continue;
        size_t keep = strip_before_tag(lx, lx->pos, k, sign, 0);
        if (keep > lx->pos)
            emit(lx, JT_DATA, lx->s + lx->pos, keep - lx->pos, lx->line);
        advance_to(lx, end);
        lx->line_starting = lx->s[end - 1] == '\n';
        return;
    }
    m40_jx_throw(lx->h, lx->line, "Missing end of raw directive");
}

static void lex_comment(lexer *lx) {
    size_t start = lx->pos;
    for (size_t j = start; j + 1 < lx->n; j++) {
        if (lx->s[j] != '#' || lx->s[j + 1] != '}')
            continue;
        char sign = (j > start && (lx->s[j - 1] == '-' || lx->s[j - 1] == '+')) ? lx->s[j - 1] : 0;
        size_t end = j + 2;
        if (sign == '-')
            end += ws_run(lx->s, lx->n, end);
        else if (sign == 0 && end < lx->n && lx->s[end] == '\n')
            end++;
        advance_to(lx, end);
        lx->line_starting = lx->s[end - 1] == '\n';
        return;
    }
    m40_jx_throw(lx->h, lx->line, "Missing end of comment tag");
}

static int is_digit(char c) {
    return c >= '0' && c <= '9';
}

/* (\d+_)*\d+ at i: the end of the match, or i. */
static size_t digits_us(const lexer *lx, size_t i) {
    if (i >= lx->n || !is_digit(lx->s[i]))
        return i;
    size_t q = i;
    while (q < lx->n && is_digit(lx->s[q]))
        q++;
    while (q + 1 < lx->n && lx->s[q] == '_' && is_digit(lx->s[q + 1])) {
        q++;
        while (q < lx->n && is_digit(lx->s[q]))
            q++;
    }
    return q;
}

static size_t float_at(const lexer *lx, size_t i) {
    if (i > 0 && lx->s[i - 1] == '.')
        return 0;
    size_t a = digits_us(lx, i);
    if (a == i)
        return 0;
    /* alternative 1: optional fraction, required exponent */
    size_t p = a;
    if (p < lx->n && lx->s[p] == '.') {
        size_t f = digits_us(lx, p + 1);
        if (f > p + 1)
            p = f;
    }
    for (int pass = 0; pass < 2; pass++) {
        size_t q = pass == 0 ? p : a;
        if (q < lx->n && (lx->s[q] == 'e' || lx->s[q] == 'E')) {
            q++;
            if (q < lx->n && (lx->s[q] == '+' || lx->s[q] == '-'))
                q++;
            size_t e = digits_us(lx, q);
            if (e > q)
                return e;
        }
    }
    /* alternative 2: required fraction */
    if (a < lx->n && lx->s[a] == '.') {
        size_t f = digits_us(lx, a + 1);
        if (f > a + 1)
            return f;
    }
    return 0;
}

static int digit_in_base(char c, int base) {
    int v = (c >= '0' && c <= '9')   ? c - '0'
            : (c >= 'a' && c <= 'f') ? c - 'a' + 10
            : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                     : 99;
    return v < base ? v : -1;
}

/* integer_re: 0b.., 0o.., 0x.. (with single underscores), [1-9](_?\d)*,
 * 0(_?0)*. Returns the end or 0; *base receives the base. */
static size_t integer_at(const lexer *lx, size_t i, int *base) {
    const char *s = lx->s;
    if (i >= lx->n || !is_digit(s[i]))
        return 0;
    if (s[i] == '0' && i + 1 < lx->n) {
        char p = (char)(s[i + 1] | 32);
        int b = p == 'b' ? 2 : p == 'o' ? 8 : p == 'x' ? 16 : 0;
        if (b) {
            size_t q = i + 2, last = 0;
            for (;;) {
                size_t r = q;
                if (r < lx->n && s[r] == '_')
                    r++;
                if (r < lx->n && digit_in_base(s[r], b) >= 0) {
                    q = r + 1;
                    last = q;
                } else {
                    break;
                }
            }
            if (last) {
                *base = b;
                return last;
            }
        }
    }
    *base = 10;
    char want = s[i] == '0' ? '0' : 0;
    size_t q = i + 1;
    for (;;) {
        size_t r = q;
        if (r < lx->n && s[r] == '_')
            r++;
        if (r < lx->n && (want ? s[r] == '0' : is_digit(s[r])))
            q = r + 1;
        else
            break;
    }
    return q;
}

static void lex_number(lexer *lx, size_t end, int is_float, int base, int line) {
    char tmp[128];
    size_t k = 0;
    size_t start = lx->pos + ((base != 10) ? 2 : 0);
    for (size_t i = start; i < end && k + 1 < sizeof tmp; i++)
        if (lx->s[i] != '_')
            tmp[k++] = lx->s[i];
    tmp[k] = '\0';
    jx_tok *t = emit(lx, is_float ? JT_FLOAT : JT_INT, lx->s + lx->pos, end - lx->pos, line);
    if (is_float) {
        t->val = m40_jx_float(strtod(tmp, NULL));
    } else {
        uint64_t v = 0;
        for (size_t i = 0; i < k; i++) {
            int d = digit_in_base(tmp[i], base);
            if (v > ((uint64_t)INT64_MAX - (uint64_t)d) / (uint64_t)base)
                m40_jx_throw(lx->h, line, "integer literal too large");
            v = v * (uint64_t)base + (uint64_t)d;
        }
        t->val = m40_jx_int((int64_t)v);
    }
    advance_to(lx, end);
}

static int hexval(char c) {
    return digit_in_base(c, 16);
}

/* Python's "unicode-escape" decoding of a string literal's body. */
static void decode_string(lexer *lx, const char *s, size_t n, int line, jx_tok *t) {
    char *out = m40_jx_alloc(lx->h, n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '\\' || i + 1 >= n) {
            out[k++] = s[i++];
            continue;
        }
        char e = s[i + 1];
        i += 2;
        uint32_t cp = 0;
        int digits = 0;
        switch (e) {
            case '\n':
                continue;
            case '\\':
            case '\'':
            case '"':
                out[k++] = e;
                continue;
            case 'a':
                out[k++] = 7;
                continue;
            case 'b':
                out[k++] = 8;
                continue;
            case 'f':
                out[k++] = 12;
                continue;
            case 'n':
                out[k++] = '\n';
                continue;
            case 'r':
                out[k++] = '\r';
                continue;
            case 't':
                out[k++] = '\t';
                continue;
            case 'v':
                out[k++] = 11;
                continue;
            case 'x':
                digits = 2;
                break;
            case 'u':
                digits = 4;
                break;
            case 'U':
                digits = 8;
                break;
            case 'N':
                m40_jx_throw(lx->h, line, "\\N{...} escapes are not supported");
            default:
                if (e >= '0' && e <= '7') {
                    cp = (uint32_t)(e - '0');
                    for (int j = 0; j < 2 && i < n && s[i] >= '0' && s[i] <= '7'; j++)
                        cp = cp * 8 + (uint32_t)(s[i++] - '0');
                    k += m40_jx_utf8_put(out + k, cp);
                    continue;
                }
                out[k++] = '\\';
                out[k++] = e;
                continue;
        }
        for (int j = 0; j < digits; j++) {
            int d = i < n ? hexval(s[i]) : -1;
            if (d < 0)
                m40_jx_throw(lx->h, line, "truncated \\%cXX escape", e);
            cp = cp * 16 + (uint32_t)d;
            i++;
        }
        if (cp > 0x10FFFF)
            m40_jx_throw(lx->h, line, "illegal Unicode character");
        k += m40_jx_utf8_put(out + k, cp);
    }
    out[k] = '\0';
    t->p = out;
    t->n = k;
}

static size_t string_at(const lexer *lx, size_t i) {
    char q = lx->s[i];
    if (q != '\'' && q != '"')
        return 0;
    for (size_t j = i + 1; j < lx->n; j++) {
        if (lx->s[j] == '\\')
            j++;
        else if (lx->s[j] == q)
            return j + 1;
    }
    return 0;
}

static int is_name_char(unsigned char c, int first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80 ||
           (!first && c >= '0' && c <= '9');
}

static int op_type(const lexer *lx, size_t i, size_t *len) {
    static const struct {
        const char *s;
        int t;
    } ops[] = {{"//", JT_FLOORDIV}, {"**", JT_POW},     {"==", JT_EQ},    {"!=", JT_NE},
               {">=", JT_GTEQ},     {"<=", JT_LTEQ},    {"+", JT_ADD},    {"-", JT_SUB},
               {"/", JT_DIV},       {"*", JT_MUL},      {"%", JT_MOD},    {"~", JT_TILDE},
               {"[", JT_LBRACKET},  {"]", JT_RBRACKET}, {"(", JT_LPAREN}, {")", JT_RPAREN},
               {"{", JT_LBRACE},    {"}", JT_RBRACE},   {">", JT_GT},     {"<", JT_LT},
               {"=", JT_ASSIGN},    {".", JT_DOT},      {":", JT_COLON},  {"|", JT_PIPE},
               {",", JT_COMMA},     {";", JT_SEMICOLON}};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        if (starts(lx, i, ops[k].s)) {
            *len = strlen(ops[k].s);
            return ops[k].t;
        }
    return 0;
}

static void balance(lexer *lx, char c, int line) {
    if (c == '{' || c == '(' || c == '[') {
        if (lx->nbal == JX_MAX_BALANCE)
            m40_jx_throw(lx->h, line, "brackets nested too deeply");
        lx->bal[lx->nbal++] = c == '{' ? '}' : c == '(' ? ')' : ']';
    } else if (c == '}' || c == ')' || c == ']') {
        if (lx->nbal == 0)
            m40_jx_throw(lx->h, line, "unexpected '%c'", c);
        char want = lx->bal[--lx->nbal];
        if (want != c)
            m40_jx_throw(lx->h, line, "unexpected '%c', expected '%c'", c, want);
    }
}

/* One token inside a tag at lx->pos (which is not whitespace). */
static void lex_token(lexer *lx) {
    size_t i = lx->pos, end;
    int line = lx->line, base;
    unsigned char c = (unsigned char)lx->s[i];
    if ((end = float_at(lx, i)) != 0) {
        lex_number(lx, end, 1, 10, line);
    } else if ((end = integer_at(lx, i, &base)) != 0) {
        lex_number(lx, end, 0, base, line);
    } else if (is_name_char(c, 1)) {
        end = i + 1;
        while (end < lx->n && is_name_char((unsigned char)lx->s[end], 0))
            end++;
        emit(lx, JT_NAME, lx->s + i, end - i, line);
        advance_to(lx, end);
    } else if ((end = string_at(lx, i)) != 0) {
        jx_tok *t = emit(lx, JT_STRING, NULL, 0, line);
        decode_string(lx, lx->s + i + 1, end - i - 2, line, t);
        advance_to(lx, end);
    } else {
        size_t len;
        int t = op_type(lx, i, &len);
        if (!t) {
            if (c == '\'')
                m40_jx_throw(lx->h, line, "unexpected char \"'\" at %zu", i);
            if (c >= 0x20 && c < 0x7F)
                m40_jx_throw(lx->h, line, "unexpected char '%c' at %zu", c, i);
            m40_jx_throw(lx->h, line, "unexpected char 0x%02x at %zu", c, i);
        }
        balance(lx, (char)c, line);
        emit(lx, t, lx->s + i, len, line);
        advance_to(lx, i + len);
    }
}

static void lex_tag(lexer *lx, int is_block) {
    while (lx->pos < lx->n) {
        if (lx->nbal == 0) {
            size_t end = is_block ? block_end_at(lx, lx->pos) : var_end_at(lx, lx->pos);
            if (end) {
                emit(lx, is_block ? JT_BLOCK_END : JT_VAR_END, NULL, 0, lx->line);
                advance_to(lx, end);
                lx->line_starting = lx->s[end - 1] == '\n';
                return;
            }
        }
        size_t ws = ws_run(lx->s, lx->n, lx->pos);
        if (ws) {
            advance_to(lx, lx->pos + ws);
            continue;
        }
        lex_token(lx);
    }
    /* end of input inside a tag: the parser reports what it expected */
}

/* Newline normalization and the dropped trailing newline. */
static const char *normalize(jx_heap *h, const char *src, size_t n, size_t *out_n) {
    char *s = m40_jx_alloc(h, n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '\r') {
            s[k++] = '\n';
            if (i + 1 < n && src[i + 1] == '\n')
                i++;
        } else {
            s[k++] = src[i];
        }
    }
    if (k > 0 && s[k - 1] == '\n')
        k--;
    s[k] = '\0';
    *out_n = k;
    return s;
}

static size_t find_tag(const lexer *lx, size_t from) {
    for (size_t i = from; i + 1 < lx->n; i++) {
        const char *p = memchr(lx->s + i, '{', lx->n - i - 1);
        if (!p)
            return lx->n;
        i = (size_t)(p - lx->s);
        char k = lx->s[i + 1];
        if (k == '%' || k == '{' || k == '#')
            return i;
    }
    return lx->n;
}

void m40_jx_lex(jx_heap *h, const char *src, size_t n, jx_toks *out) {
    lexer lx = {.h = h, .line = 1, .line_starting = 1, .out = out};
    lx.s = normalize(h, src, n, &lx.n);
    while (lx.pos < lx.n) {
        size_t i = find_tag(&lx, lx.pos);
        if (i >= lx.n) {
            emit(&lx, JT_DATA, lx.s + lx.pos, lx.n - lx.pos, lx.line);
            advance_to(&lx, lx.n);
            break;
        }
        char kind = lx.s[i + 1], rsign = 0;
        size_t raw_end = kind == '%' ? raw_begin_at(&lx, i, &rsign) : 0;
        char sign = (i + 2 < lx.n && (lx.s[i + 2] == '-' || lx.s[i + 2] == '+')) ? lx.s[i + 2] : 0;
        size_t keep = strip_before_tag(&lx, lx.pos, i, sign, kind == '{');
        if (keep > lx.pos)
            emit(&lx, JT_DATA, lx.s + lx.pos, keep - lx.pos, lx.line);
        advance_to(&lx, i);
        lx.line_starting = 0;
        int line = lx.line;
        if (raw_end) {
            advance_to(&lx, raw_end);
            lx.line_starting = lx.s[raw_end - 1] == '\n';
            lex_raw(&lx);
            continue;
        }
        advance_to(&lx, i + 2 + (sign ? 1 : 0));
        if (kind == '#') {
            lex_comment(&lx);
        } else {
            emit(&lx, kind == '%' ? JT_BLOCK_BEGIN : JT_VAR_BEGIN, NULL, 0, line);
            lex_tag(&lx, kind == '%');
        }
    }
    emit(&lx, JT_EOF, NULL, 0, lx.line);
}

const char *m40_jx_tok_describe(const jx_tok *t) {
    static const char *const names[] = {
        [JT_EOF] = "end of template",
        [JT_DATA] = "template data / text",
        [JT_VAR_BEGIN] = "begin of print statement",
        [JT_VAR_END] = "end of print statement",
        [JT_BLOCK_BEGIN] = "begin of statement block",
        [JT_BLOCK_END] = "end of statement block",
        [JT_NAME] = "name",
        [JT_STRING] = "string",
        [JT_INT] = "integer",
        [JT_FLOAT] = "float",
        [JT_ADD] = "+",
        [JT_SUB] = "-",
        [JT_DIV] = "/",
        [JT_FLOORDIV] = "//",
        [JT_MUL] = "*",
        [JT_MOD] = "%",
        [JT_POW] = "**",
        [JT_TILDE] = "~",
        [JT_LBRACKET] = "[",
        [JT_RBRACKET] = "]",
        [JT_LPAREN] = "(",
        [JT_RPAREN] = ")",
        [JT_LBRACE] = "{",
        [JT_RBRACE] = "}",
        [JT_EQ] = "==",
        [JT_NE] = "!=",
        [JT_GT] = ">",
        [JT_GTEQ] = ">=",
        [JT_LT] = "<",
        [JT_LTEQ] = "<=",
        [JT_ASSIGN] = "=",
        [JT_DOT] = ".",
        [JT_COLON] = ":",
        [JT_PIPE] = "|",
        [JT_COMMA] = ",",
        [JT_SEMICOLON] = ";",
    };
    if (t->type < sizeof names / sizeof names[0] && names[t->type])
        return names[t->type];
    return "token";
}
