/* chat.c - the public chat-template API: compile a template once, render
 * it per conversation with transformers' variables, convert cJSON input to
 * template values, and the ChatML fallback.
 *
 * Owns: m40_chat_template (one arena holding the AST) and the render
 * setup. Touches: cJSON input (read only), malloc for the returned text.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat.h"
#include "chat/jinja_internal.h"

struct m40_chat_template {
    jx_template t;
};

static const char k_chatml[] =
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const char *m40_chat_fallback_template(void) {
    return k_chatml;
}

const char *m40_chat_fallback_name(void) {
    return "ChatML";
}

m40_chat_limits m40_chat_default_limits(void) {
    m40_chat_limits l = {
        .max_output = 16u << 20,
        .max_memory = 512u << 20,
        .max_iterations = 10000000u,
        .max_depth = 1000,
    };
    return l;
}

int m40_chat_template_compile(const char *src, size_t len, m40_chat_template **out, m40_err *err) {
    *out = NULL;
    m40_chat_template *ct = calloc(1, sizeof *ct);
    if (!ct)
        return m40_errf(err, "chat template: out of memory");
    jx_template *t = &ct->t;
    t->heap.err = err;
    /* the AST is a small multiple of the source; this only stops runaways */
    t->heap.arena.limit = ((size_t)64 << 20) + (len < ((size_t)1 << 26) ? len * 64 : len);
    if (setjmp(t->heap.jb)) {
        m40_jx_arena_free(&t->heap.arena);
        free(ct);
        return -1;
    }
    jx_toks toks = {0};
    m40_jx_lex(&t->heap, src ? src : "", src ? len : 0, &toks);
    m40_jx_parse(t, &toks);
    *out = ct;
    return 0;
}

void m40_chat_template_free(m40_chat_template *t) {
    if (!t)
        return;
    m40_jx_arena_free(&t->t.heap.arena);
    free(t);
}

/* JSON numbers: integral values that fit are ints, as json.loads would
 * make "3" (cJSON does not keep "3.0" apart from "3"; see the docs). */
static jx_val number_from_json(double d) {
    if (isfinite(d) && d == floor(d) && fabs(d) < 9.007199254740992e15)
        return m40_jx_int((int64_t)d);
    return m40_jx_float(d);
}

static jx_val from_json(jx_ctx *c, const cJSON *j) {
    if (cJSON_IsString(j)) {
        const char *s = j->valuestring ? j->valuestring : "";
        return m40_jx_str_copy(&c->h, s, strlen(s));
    }
    if (cJSON_IsNumber(j))
        return number_from_json(j->valuedouble);
    if (cJSON_IsBool(j))
        return m40_jx_bool(cJSON_IsTrue(j));
    if (cJSON_IsArray(j)) {
        jx_val l = m40_jx_list_new(&c->h, (size_t)cJSON_GetArraySize(j), 0);
        for (const cJSON *e = j->child; e; e = e->next)
            m40_jx_list_push(&c->h, l.u.l, from_json(c, e));
        return l;
    }
    if (cJSON_IsObject(j)) {
        /* duplicate keys: the last value wins in the first position, as
         * in a Python dict built by json.loads */
        jx_val d = m40_jx_dict_new(&c->h, (size_t)cJSON_GetArraySize(j));
        for (const cJSON *e = j->child; e; e = e->next) {
            const char *k = e->string ? e->string : "";
            m40_jx_dict_set(&c->h, d.u.d, m40_jx_str_copy(&c->h, k, strlen(k)), from_json(c, e));
        }
        return d;
    }
    return m40_jx_none();
}

static void set_var(jx_ctx *c, const char *name, jx_val v) {
    m40_jx_dict_set(&c->h, &c->globals->vars, m40_jx_str_copy(&c->h, name, strlen(name)), v);
}

static void fill_limits(jx_limits *l, const m40_chat_limits *in) {
    m40_chat_limits d = m40_chat_default_limits();
    l->max_output = in && in->max_output ? in->max_output : d.max_output;
    l->max_memory = in && in->max_memory ? in->max_memory : d.max_memory;
    l->max_iterations = in && in->max_iterations ? in->max_iterations : d.max_iterations;
    l->max_depth = in && in->max_depth ? in->max_depth : d.max_depth;
}

/* Runs the render inside its own setjmp; returns 0 or -1. */
static int render_in(jx_ctx *c, const m40_chat_template *t, const cJSON *messages,
                     const m40_chat_options *o, jx_buf *out) {
    if (setjmp(c->h.jb))
        return -1;
    c->globals = m40_jx_alloc(&c->h, sizeof *c->globals);
    m40_jx_install_globals(c, c->globals);
    set_var(c, "messages",
            messages ? from_json(c, messages) : m40_jx_undef("'messages' is undefined"));
    set_var(c, "tools", m40_jx_none());
    set_var(c, "documents", m40_jx_none());
    set_var(c, "add_generation_prompt", m40_jx_bool(o && o->add_generation_prompt));
    if (o && o->extra_vars) {
        if (!cJSON_IsObject(o->extra_vars))
            m40_jx_throw(&c->h, 0, "extra variables must be a JSON object");
        for (const cJSON *e = o->extra_vars->child; e; e = e->next)
            set_var(c, e->string ? e->string : "", from_json(c, e));
    }
    return m40_jx_render(c, &t->t, out);
}

int m40_chat_template_render(const m40_chat_template *t, const cJSON *messages,
                             const m40_chat_options *opts, char **out, size_t *out_len,
                             m40_err *err) {
    *out = NULL;
    if (out_len)
        *out_len = 0;
    jx_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return m40_errf(err, "chat template: out of memory");
    fill_limits(&c->lim, opts ? opts->limits : NULL);
    c->h.err = err;
    c->h.arena.limit = c->lim.max_memory;
    c->has_now = opts && opts->fixed_now;
    c->now = opts ? opts->now_utc : 0;
    jx_buf buf = {.limit = c->lim.max_output};
    int rc = render_in(c, t, messages, opts, &buf);
    if (rc == 0) {
        char *s = malloc(buf.n + 1);
        if (!s) {
            rc = m40_errf(err, "chat template: out of memory");
        } else {
            if (buf.n)
                memcpy(s, buf.p, buf.n);
            s[buf.n] = '\0';
            *out = s;
            if (out_len)
                *out_len = buf.n;
        }
    }
    m40_jx_arena_free(&c->h.arena);
    free(c);
    return rc;
}

int m40_chat_apply(const char *tmpl, const cJSON *messages, int add_generation_prompt,
                   const cJSON *extra_vars, char **out, size_t *out_len, m40_err *err) {
    m40_chat_template *t;
    *out = NULL;
    if (m40_chat_template_compile(tmpl, tmpl ? strlen(tmpl) : 0, &t, err))
        return -1;
    m40_chat_options o = {.add_generation_prompt = add_generation_prompt, .extra_vars = extra_vars};
    int rc = m40_chat_template_render(t, messages, &o, out, out_len, err);
    m40_chat_template_free(t);
    return rc;
}
