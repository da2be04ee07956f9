/* jinja_arena.c - the arena every compile and render allocates from, the
 * error unwinding (longjmp to the entry point), and growable buffers.
 *
 * A memory limit on the arena is how a hostile template (string doubling in
 * a loop, huge repetitions) fails with an error instead of exhausting the
 * machine.
 *
 * Owns: jx_arena, jx_buf. Touches: malloc/free only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/jinja_internal.h"

struct jx_chunk {
    jx_chunk *next;
    size_t cap, used;
    max_align_t data[];
};

#define JX_CHUNK_MIN (64u * 1024u)

void m40_jx_throw(jx_heap *h, int line, const char *fmt, ...) {
    char msg[M40_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (h->err) {
        if (line > 0)
            m40_errk(h->err, M40_ERR_BAD_INPUT, "chat template line %d: %s", line, msg);
        else
            m40_errk(h->err, M40_ERR_BAD_INPUT, "chat template: %s", msg);
    }
    longjmp(h->jb, 1);
}

void m40_jx_throw_msg(jx_heap *h, int line, const char *msg, size_t n) {
    /* The message may hold newlines; m40_err messages are one line. */
    char one[M40_ERR_MSG_MAX];
    size_t k = n < sizeof one - 1 ? n : sizeof one - 1;
    for (size_t i = 0; i < k; i++)
        one[i] = (msg[i] == '\n' || msg[i] == '\r') ? ' ' : msg[i];
    one[k] = '\0';
    m40_jx_throw(h, line, "%s", one);
}

void m40_jx_rethrow(jx_heap *h, const char *msg) {
    if (h->err)
        m40_errk(h->err, M40_ERR_BAD_INPUT, "%s", msg);
    longjmp(h->jb, 1);
}

static size_t align_up(size_t n) {
    size_t a = sizeof(max_align_t);
    return (n + a - 1) / a * a;
}

void *m40_jx_alloc(jx_heap *h, size_t n) {
    jx_arena *a = &h->arena;
    size_t need = align_up(n ? n : 1);
    if (need < n)
        m40_jx_throw(h, h->line, "memory limit exceeded");
    jx_chunk *c = a->head;
    if (!c || c->cap - c->used < need) {
        size_t cap = need > JX_CHUNK_MIN ? need : JX_CHUNK_MIN;
        if (a->limit && (a->total + cap > a->limit || cap > a->limit))
            m40_jx_throw(h, h->line, "memory limit exceeded (%zu bytes)", a->limit);
        jx_chunk *nc = malloc(sizeof *nc + cap);
        if (!nc)
            m40_jx_throw(h, h->line, "out of memory");
        nc->cap = cap;
        nc->used = 0;
        /* A big one-off block goes behind the current chunk, so the current
         * chunk's free space stays usable for small allocations. */
        if (c && cap == need && c->cap - c->used > 256) {
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            a->head = nc;
        }
        a->total += cap;
        c = nc;
    }
    void *p = (char *)c->data + c->used;
    c->used += need;
    memset(p, 0, n);
    return p;
}

void *m40_jx_grow(jx_heap *h, void *old, size_t old_n, size_t new_n) {
    void *p = m40_jx_alloc(h, new_n);
    if (old && old_n)
        memcpy(p, old, old_n < new_n ? old_n : new_n);
    return p;
}

char *m40_jx_strndup(jx_heap *h, const char *s, size_t n) {
    char *p = m40_jx_alloc(h, n + 1);
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void m40_jx_arena_free(jx_arena *a) {
    jx_chunk *c = a->head;
    while (c) {
        jx_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}

void m40_jx_buf_put(jx_heap *h, jx_buf *b, const char *s, size_t n) {
    if (n == 0)
        return;
    if (b->limit && (n > b->limit || b->n > b->limit - n))
        m40_jx_throw(h, h->line, "output limit exceeded (%zu bytes)", b->limit);
    if (b->cap - b->n < n) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->n < n) {
            if (cap > SIZE_MAX / 2)
                m40_jx_throw(h, h->line, "memory limit exceeded");
            cap *= 2;
        }
        b->p = m40_jx_grow(h, b->p, b->n, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

void m40_jx_buf_puts(jx_heap *h, jx_buf *b, const char *s) {
    m40_jx_buf_put(h, b, s, strlen(s));
}

void m40_jx_buf_putc(jx_heap *h, jx_buf *b, char c) {
    m40_jx_buf_put(h, b, &c, 1);
}

void m40_jx_buf_printf(jx_heap *h, jx_buf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    if ((size_t)k < sizeof tmp) {
        m40_jx_buf_put(h, b, tmp, (size_t)k);
        return;
    }
    char *big = m40_jx_alloc(h, (size_t)k + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)k + 1, fmt, ap);
    va_end(ap);
    m40_jx_buf_put(h, b, big, (size_t)k);
}
