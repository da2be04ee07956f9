/* err.c - see err.h. */
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Keeps messages on one line: a newline inside a message would break the
 * "one line, then exit non-zero" contract of the CLI. */
static void flatten_newlines(char *s) {
    for (; *s; s++) {
        if (*s == '\n' || *s == '\r')
            *s = ' ';
    }
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 0)))
#endif
static int
set(m40_err *err, m40_err_kind kind, const char *fmt, va_list ap) {
    if (!err)
        return -1;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    flatten_newlines(err->msg);
    err->kind = kind;
    return -1;
}

int m40_errf(m40_err *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set(err, M40_ERR_INTERNAL, fmt, ap);
    va_end(ap);
    return -1;
}

int m40_errk(m40_err *err, m40_err_kind kind, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set(err, kind, fmt, ap);
    va_end(ap);
    return -1;
}

int m40_err_wrap(m40_err *err, const char *fmt, ...) {
    if (!err)
        return -1;
    char prefix[M40_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Build "prefix: old" by hand: both parts are bounded and truncation at
     * the buffer's end is intended. */
    char old[M40_ERR_MSG_MAX];
    memcpy(old, err->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    size_t cap = sizeof err->msg - 1, used = 0;
    const char *parts[3] = {prefix, ": ", old};
    for (int i = 0; i < 3; i++) {
        size_t len = strlen(parts[i]);
        if (len > cap - used)
            len = cap - used;
        memcpy(err->msg + used, parts[i], len);
        used += len;
    }
    err->msg[used] = '\0';
    flatten_newlines(err->msg);
    return -1;
}

void m40_err_clear(m40_err *err) {
    if (err) {
        err->msg[0] = '\0';
        err->kind = M40_ERR_INTERNAL;
    }
}
