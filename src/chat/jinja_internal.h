/* jinja_internal.h - the Jinja subset's shared types: arena, values, tokens,
 * AST and the render context. Only src/chat/ includes this header; the
 * public interface is chat.h.
 *
 * Design (why it looks like this):
 *  - Everything a compile or a render allocates comes from one arena that is
 *    freed at once, so no value has an individual owner and nothing leaks
 *    when an error unwinds.
 *  - Errors unwind with longjmp to the entry point (m40_jx_parse /
 *    m40_jx_render), which owns the arena and the jmp_buf. Between the
 *    setjmp and any longjmp nothing outside the arena is allocated, so a
 *    throw never leaks. The public functions still return -1 + m40_err.
 *  - Values mirror the Python objects jinja2 sees: none, bool, int, float,
 *    str, list/tuple, dict (insertion-ordered), plus Undefined, namespace,
 *    callables (macros, builtins, bound methods) and the loop object.
 *
 * Owns: these types. Touches: nothing outside src/chat/; chat knows nothing
 * of backends, engine or server.
 */
#ifndef M40_CHAT_JINJA_INTERNAL_H
#define M40_CHAT_JINJA_INTERNAL_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* ---- arena ------------------------------------------------------------ */

typedef struct jx_chunk jx_chunk;

typedef struct jx_arena {
    jx_chunk *head;
    size_t total; /* bytes taken from malloc so far */
    size_t limit; /* 0: no limit */
} jx_arena;

/* The unwinding heap shared by the parser and the renderer: the arena, the
 * place errors jump to, and the line errors are reported against. */
typedef struct jx_heap {
    jx_arena arena;
    jmp_buf jb;
    m40_err *err;
    int line;
} jx_heap;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4), noreturn))
#endif
void m40_jx_throw(jx_heap *h, int line, const char *fmt, ...);
/* Like m40_jx_throw but the message is taken verbatim (raise_exception). */
#if defined(__GNUC__)
__attribute__((noreturn))
#endif
void m40_jx_throw_msg(jx_heap *h, int line, const char *msg, size_t n);
/* Throws a message that already names its line (a deferred error). */
#if defined(__GNUC__)
__attribute__((noreturn))
#endif
void m40_jx_rethrow(jx_heap *h, const char *msg);

void *m40_jx_alloc(jx_heap *h, size_t n); /* zeroed; throws at the limit */
void *m40_jx_grow(jx_heap *h, void *old, size_t old_n, size_t new_n);
char *m40_jx_strndup(jx_heap *h, const char *s, size_t n); /* NUL-terminated */
void m40_jx_arena_free(jx_arena *a);

/* A growable byte buffer in the arena (output, captures, string builders).
 * `limit` (0: none) bounds its size: the render's output limit. */
typedef struct jx_buf {
    char *p;
    size_t n, cap, limit;
} jx_buf;

void m40_jx_buf_put(jx_heap *h, jx_buf *b, const char *s, size_t n);
void m40_jx_buf_puts(jx_heap *h, jx_buf *b, const char *s);
void m40_jx_buf_putc(jx_heap *h, jx_buf *b, char c);
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void m40_jx_buf_printf(jx_heap *h, jx_buf *b, const char *fmt, ...);

/* ---- values ----------------------------------------------------------- */

typedef enum jx_type {
    JX_UNDEF = 0,
    JX_NONE,
    JX_BOOL,
    JX_INT,
    JX_FLOAT,
    JX_STR,
    JX_LIST,
    JX_DICT,
    JX_NS,
    JX_FUNC,
    JX_LOOP,
} jx_type;

/* jx_val.sub for lists: how Python would print them. */
enum { JX_LIST_PLAIN = 0, JX_LIST_TUPLE, JX_LIST_ITEMS, JX_LIST_KEYS, JX_LIST_VALUES, JX_LIST_GEN };
/* jx_val.sub for undefined: plain, "missing argument" marker, or a
 * sandbox refusal (SecurityError in jinja2). */
enum { JX_UNDEF_PLAIN = 0, JX_UNDEF_MISSING, JX_UNDEF_UNSAFE };

typedef struct jx_list jx_list;
typedef struct jx_dict jx_dict;
typedef struct jx_func jx_func;
typedef struct jx_loop jx_loop;

typedef struct jx_val {
    uint8_t t;
    uint8_t sub;
    union {
        int b;
        int64_t i;
        double f;
        struct {
            const char *p;
            size_t n;
        } s;
        jx_list *l;
        jx_dict *d; /* JX_DICT and JX_NS */
        jx_func *fn;
        jx_loop *loop;
        const char *hint; /* JX_UNDEF: the UndefinedError message, or NULL */
    } u;
} jx_val;

/* JX_LIST_GEN: what jinja2's generator filters (map, select, unique, ...)
 * return. Materialized, but it behaves as a generator where that is
 * observable: always truthy, no len(), not indexable, not JSON. */
static inline int m40_jx_is_gen(jx_val v) {
    return v.t == JX_LIST && v.sub == JX_LIST_GEN;
}

struct jx_list {
    jx_val *v;
    size_t n, cap;
    /* JX_LIST_GEN only: the error its filter raised, which jinja2 (lazy)
     * raises only when the generator is iterated; NULL if none */
    const char *deferred_error;
};

struct jx_dict {
    jx_val *k, *v;
    size_t n, cap;
};

/* ---- tokens ----------------------------------------------------------- */

typedef enum jx_tok_type {
    JT_EOF = 0,
    JT_DATA,
    JT_VAR_BEGIN,
    JT_VAR_END,
    JT_BLOCK_BEGIN,
    JT_BLOCK_END,
    JT_NAME,
    JT_STRING,
    JT_INT,
    JT_FLOAT,
    /* operators */
    JT_ADD,
    JT_SUB,
    JT_DIV,
    JT_FLOORDIV,
    JT_MUL,
    JT_MOD,
    JT_POW,
    JT_TILDE,
    JT_LBRACKET,
    JT_RBRACKET,
    JT_LPAREN,
    JT_RPAREN,
    JT_LBRACE,
    JT_RBRACE,
    JT_EQ,
    JT_NE,
    JT_GT,
    JT_GTEQ,
    JT_LT,
    JT_LTEQ,
    JT_ASSIGN,
    JT_DOT,
    JT_COLON,
    JT_PIPE,
    JT_COMMA,
    JT_SEMICOLON,
} jx_tok_type;

typedef struct jx_tok {
    uint8_t type;
    int line;
    const char *p; /* name text, data text or decoded string */
    size_t n;
    jx_val val; /* JT_INT / JT_FLOAT */
} jx_tok;

typedef struct jx_toks {
    jx_tok *v;
    size_t n, cap;
} jx_toks;

/* Tokenizes a template as jinja2's lexer does with trim_blocks and
 * lstrip_blocks on; throws TemplateSyntaxError-like errors. */
void m40_jx_lex(jx_heap *h, const char *src, size_t n, jx_toks *out);
const char *m40_jx_tok_describe(const jx_tok *t);

/* ---- AST -------------------------------------------------------------- */

typedef enum jx_kind {
    /* expressions */
    JN_CONST = 1,
    JN_NAME,
    JN_NSREF, /* assignment target ns.attr */
    JN_GETATTR,
    JN_GETITEM,
    JN_SLICE,
    JN_CALL,
    JN_FILTER,
    JN_TEST,
    JN_NOT,
    JN_NEG,
    JN_POS,
    JN_BINOP,
    JN_AND,
    JN_OR,
    JN_CONCAT,
    JN_COMPARE,
    JN_CONDEXPR,
    JN_LIST,
    JN_TUPLE,
    JN_DICT,
    /* statements */
    JN_TEXT,
    JN_OUTPUT,
    JN_IF,
    JN_FOR,
    JN_SET,
    JN_SET_BLOCK,
    JN_MACRO,
    JN_CALLBLOCK,
    JN_FILTERBLOCK,
    JN_BREAK,
    JN_CONTINUE,
    JN_WITH,
    JN_SCOPE,
} jx_kind;

/* JN_BINOP ops and JN_COMPARE ops */
enum {
    JX_OP_ADD = 1,
    JX_OP_SUB,
    JX_OP_MUL,
    JX_OP_DIV,
    JX_OP_FLOORDIV,
    JX_OP_MOD,
    JX_OP_POW,
    JX_OP_EQ,
    JX_OP_NE,
    JX_OP_LT,
    JX_OP_LTEQ,
    JX_OP_GT,
    JX_OP_GTEQ,
    JX_OP_IN,
    JX_OP_NOTIN,
};

/* Macro node flags: which implicit names the body uses (jinja2 decides the
 * same way: a macro accepts extra arguments only if its body reads
 * varargs / kwargs, and a caller only if it reads caller). */
enum { JX_MACRO_VARARGS = 1, JX_MACRO_KWARGS = 2, JX_MACRO_CALLER = 4 };

typedef struct jx_node jx_node;

/* One node shape for everything; which fields mean what is listed per kind
 * in jinja_parse.c's header comment. */
struct jx_node {
    uint8_t kind;
    uint8_t op;
    uint8_t flag;
    int line;
    int ix;      /* JN_FILTER / JN_TEST: builtin index, -1 unknown */
    int depth;   /* expression nesting below this node (parse-time bound) */
    jx_val val;  /* constant, or a name / attribute / filter name */
    jx_val val2; /* JN_NSREF: attribute name */
    jx_node *a, *b, *c;
    jx_node *dyn_args, *dyn_kwargs;
    jx_node **kids; /* args, items, body */
    size_t nkids;
    jx_node **kids2; /* kwarg values, dict values, else body, defaults */
    size_t nkids2;
    jx_val *names; /* kwarg names, macro parameters */
    size_t nnames;
    uint8_t *ops; /* JN_COMPARE: one op per kid */
};

typedef struct jx_template {
    jx_heap heap; /* owns every node */
    jx_node **body;
    size_t nbody;
} jx_template;

/* Parses tokens into t->body; throws on syntax errors. */
void m40_jx_parse(jx_template *t, const jx_toks *toks);

/* ---- render context --------------------------------------------------- */

typedef struct jx_scope {
    struct jx_scope *parent;
    jx_dict vars;
} jx_scope;

typedef struct jx_limits {
    size_t max_output;
    size_t max_memory;
    uint64_t max_iterations;
    int max_depth;
} jx_limits;

typedef struct jx_ctx {
    jx_heap h; /* render arena; errors unwind here */
    const jx_template *tmpl;
    jx_buf *out;
    jx_limits lim;
    uint64_t iterations;
    int depth;
    int has_now;
    int64_t now; /* strftime_now's clock, seconds since the epoch, UTC */
    jx_scope *globals;
} jx_ctx;

/* Arguments of a call, a filter or a test (after the subject). */
typedef struct jx_args {
    jx_val *pos;
    size_t npos;
    jx_val *kwn; /* names (strings) */
    jx_val *kwv;
    size_t nkw;
    int line;
} jx_args;

typedef jx_val (*jx_builtin_fn)(jx_ctx *c, jx_val self, const jx_args *a);

typedef enum jx_func_kind { JXF_BUILTIN = 1, JXF_MACRO, JXF_LOOP } jx_func_kind;

struct jx_func {
    uint8_t kind;
    const char *name;
    jx_builtin_fn fn;    /* JXF_BUILTIN: a global or a bound method */
    jx_val self;         /* bound receiver */
    const jx_node *node; /* JXF_MACRO: macro or call block */
    jx_scope *closure;
    jx_val caller; /* a macro invoked from a call block gets this */
};

struct jx_loop {
    jx_list *items;
    size_t i;
    int depth0;
    int has_changed;
    jx_val last_changed;
    const jx_node *node; /* recursive loops re-enter this for node */
    jx_scope *scope;
};

/* ---- values (jinja_value.c) ------------------------------------------ */

static inline jx_val m40_jx_none(void) {
    jx_val v = {.t = JX_NONE};
    return v;
}
static inline jx_val m40_jx_bool(int b) {
    jx_val v = {.t = JX_BOOL};
    v.u.b = b != 0;
    return v;
}
static inline jx_val m40_jx_int(int64_t i) {
    jx_val v = {.t = JX_INT};
    v.u.i = i;
    return v;
}
static inline jx_val m40_jx_float(double f) {
    jx_val v = {.t = JX_FLOAT};
    v.u.f = f;
    return v;
}
static inline jx_val m40_jx_strv(const char *p, size_t n) {
    jx_val v = {.t = JX_STR};
    v.u.s.p = p ? p : ""; /* never NULL: memcmp/memchr need a pointer */
    v.u.s.n = n;
    return v;
}
static inline jx_val m40_jx_undef(const char *hint) {
    jx_val v = {.t = JX_UNDEF};
    v.u.hint = hint;
    return v;
}
static inline jx_val m40_jx_missing(void) {
    jx_val v = {.t = JX_UNDEF, .sub = JX_UNDEF_MISSING};
    return v;
}
static inline int m40_jx_is_missing(jx_val v) {
    return v.t == JX_UNDEF && v.sub == JX_UNDEF_MISSING;
}

jx_val m40_jx_str_copy(jx_heap *h, const char *p, size_t n);
jx_val m40_jx_cstr(const char *s); /* static storage */
jx_val m40_jx_list_new(jx_heap *h, size_t cap, int sub);
void m40_jx_list_push(jx_heap *h, jx_list *l, jx_val v);
jx_val m40_jx_dict_new(jx_heap *h, size_t cap);
/* Sets d[k] = v with Python's key equality (1 == 1.0 == True); an existing
 * key keeps its position. */
void m40_jx_dict_set(jx_heap *h, jx_dict *d, jx_val k, jx_val v);
/* Returns the value's address or NULL. */
jx_val *m40_jx_dict_find(const jx_dict *d, jx_val k);
jx_val *m40_jx_dict_find_str(const jx_dict *d, const char *s, size_t n);
int m40_jx_hashable(jx_val v);

int m40_jx_truthy(jx_val v);
int m40_jx_eq(jx_val a, jx_val b);
int m40_jx_is_number(jx_val v); /* bool, int, float */
double m40_jx_as_double(jx_val v);
int m40_jx_str_eq(jx_val v, const char *s);
const char *m40_jx_type_name(jx_val v);   /* Python's type(x).__name__ */
const char *m40_jx_object_repr(jx_val v); /* jinja2's object_type_repr */

/* Python's str() and repr(), appended to b. */
void m40_jx_write_str(jx_heap *h, jx_buf *b, jx_val v);
void m40_jx_write_repr(jx_heap *h, jx_buf *b, jx_val v);
jx_val m40_jx_to_str(jx_heap *h, jx_val v); /* str(v) as a value */
void m40_jx_float_repr(double f, char *out, size_t cap);

/* ---- JSON (jinja_json.c) -------------------------------------------- */

typedef struct jx_dump_opts {
    int ensure_ascii;
    int sort_keys;
    int has_indent;
    const char *indent; /* already expanded to a string */
    size_t indent_n;
    const char *item_sep, *key_sep;
    size_t item_sep_n, key_sep_n;
} jx_dump_opts;

/* json.dumps(v, **opts), appended to b; throws TypeError-like errors. */
void m40_jx_dumps(jx_ctx *c, jx_buf *b, jx_val v, const jx_dump_opts *o, int line);

/* ---- unicode (jinja_unicode.c) ------------------------------------- */

/* Decodes one UTF-8 sequence at s[*i] (invalid bytes decode as themselves,
 * like surrogateescape would) and advances *i. */
uint32_t m40_jx_utf8_next(const char *s, size_t n, size_t *i);
size_t m40_jx_utf8_put(char *out, uint32_t cp);  /* returns bytes (1..4) */
size_t m40_jx_utf8_len(const char *s, size_t n); /* code points */
int m40_jx_isspace(uint32_t cp);                 /* Python str.isspace */
int m40_jx_isprintable(uint32_t cp);             /* Python str.isprintable */
int m40_jx_isalpha(uint32_t cp);
int m40_jx_isdigit(uint32_t cp);
int m40_jx_islinebreak(uint32_t cp); /* str.splitlines boundaries */
uint32_t m40_jx_upper(uint32_t cp);
uint32_t m40_jx_lower(uint32_t cp);
int m40_jx_iscased(uint32_t cp);
int m40_jx_islower_cp(uint32_t cp);
int m40_jx_isupper_cp(uint32_t cp);
/* Offsets of code point index ci (clamped to the string's length). */
size_t m40_jx_utf8_offset(const char *s, size_t n, size_t ci);

/* ---- evaluation (jinja_eval.c) -------------------------------------- */

/* Renders t with the variables in ctx->globals into *out. Returns 0 or -1
 * (ctx->h.err filled). */
int m40_jx_render(jx_ctx *c, const jx_template *t, jx_buf *out);

jx_val m40_jx_getattr(jx_ctx *c, jx_val obj, jx_val name, int line);
jx_val m40_jx_getitem(jx_ctx *c, jx_val obj, jx_val key, int line);
jx_val m40_jx_call(jx_ctx *c, jx_val fn, const jx_args *a, int line);
/* Python iteration: list of the items (dict keys, str characters);
 * undefined iterates as empty; throws for non-iterables. */
jx_list *m40_jx_iterate(jx_ctx *c, jx_val v, int line);
/* len(); throws for values without one. */
int64_t m40_jx_len(jx_ctx *c, jx_val v, int line);
/* Throws UndefinedError if v is undefined (used wherever jinja2's
 * Undefined would raise). */
void m40_jx_check_defined(jx_ctx *c, jx_val v, int line);
void m40_jx_count_iteration(jx_ctx *c, int line);

/* ---- operators (jinja_ops.c) ---------------------------------------- */

jx_val m40_jx_binop(jx_ctx *c, int op, jx_val a, jx_val b, int line);
jx_val m40_jx_compare(jx_ctx *c, int op, jx_val a, jx_val b, int line);
jx_val m40_jx_neg(jx_ctx *c, jx_val a, int line, int negate);
int m40_jx_contains(jx_ctx *c, jx_val container, jx_val item, int line);
/* Python's a < b for sortable values; throws TypeError otherwise. */
int m40_jx_less(jx_ctx *c, jx_val a, jx_val b, int line);
jx_val m40_jx_percent_format(jx_ctx *c, jx_val fmt, jx_val args, int line);

/* ---- builtins (jinja_filters.c, jinja_methods.c) -------------------- */

int m40_jx_filter_index(const char *name, size_t n);
int m40_jx_test_index(const char *name, size_t n);
jx_val m40_jx_filter_call(jx_ctx *c, int ix, jx_val v, const jx_args *a, int line);
int m40_jx_test_call(jx_ctx *c, int ix, jx_val v, const jx_args *a, int line);
/* Binds a call's arguments to parameter names (Python's rules); missing
 * parameters are set to m40_jx_missing(). */
void m40_jx_bind(jx_ctx *c, const jx_args *a, const char *fname, const char *const *names,
                 size_t nnames, jx_val *out);

/* Attribute lookup on builtin types: a bound method, or 0 if none. */
int m40_jx_method(jx_ctx *c, jx_val self, const char *name, size_t n, jx_val *out);
/* Installs range, dict, namespace, raise_exception, strftime_now. */
void m40_jx_install_globals(jx_ctx *c, jx_scope *s);

/* str.replace (count < 0: all) and str.splitlines() without line ends. */
jx_val m40_jx_str_replace(jx_ctx *c, jx_val s, jx_val old, jx_val new_, int64_t count);
jx_list *m40_jx_splitlines(jx_ctx *c, jx_val s);
/* Python's str.strip family; chars NULL means whitespace. */
jx_val m40_jx_strip(jx_ctx *c, jx_val s, const jx_val *chars, int left, int right);

#endif /* M40_CHAT_JINJA_INTERNAL_H */
