/* err.h - error reporting by return code plus message.
 *
 * Every fallible function in m40-llm returns an int (0 on success, -1 on
 * failure) and takes an `m40_err *` as its last argument. On failure it fills
 * the message: one line, no trailing newline, naming what went wrong and the
 * thing (file, key, tensor, device) it went wrong on. Library code never
 * prints an error and never exits; the caller decides what to do.
 *
 * An error also has a kind, set where it starts: the caller's input is bad,
 * too long for the context, the callee is busy or stopping, or asked for
 * what this build or model does not do. Anything not marked is INTERNAL
 * (memory, I/O, a device, a bug). Callers choose by kind, never by
 * message text: the server maps kinds to HTTP statuses in one table
 * (server/routes.c). Wrapping keeps the kind.
 *
 * Owns: the m40_err type. Touches: nothing else.
 */
#ifndef M40_UTIL_ERR_H
#define M40_UTIL_ERR_H

#include <stddef.h>

#define M40_ERR_MSG_MAX 512

typedef enum m40_err_kind {
    M40_ERR_INTERNAL = 0,    /* not the caller's fault: memory, I/O, a device, a bug */
    M40_ERR_BAD_INPUT = 1,   /* the caller's request, file or value is invalid */
    M40_ERR_TOO_LONG = 2,    /* more tokens than the context holds */
    M40_ERR_BUSY = 3,        /* cannot take more now (a full queue): retry later */
    M40_ERR_SHUTDOWN = 4,    /* stopping: takes nothing more */
    M40_ERR_UNSUPPORTED = 5, /* valid, but not something this build or model does */
} m40_err_kind;

/* `m40_err e = {0};` is an empty message of kind INTERNAL. */
typedef struct m40_err {
    char msg[M40_ERR_MSG_MAX];
    m40_err_kind kind;
} m40_err;

/* Formats the message into err (if err is not NULL), marks it INTERNAL and
 * returns -1, so a caller can write `return m40_errf(err, "no memory");`. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
int m40_errf(m40_err *err, const char *fmt, ...);

/* The same with a kind: `return m40_errk(err, M40_ERR_BAD_INPUT, ...);`. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
int m40_errk(m40_err *err, m40_err_kind kind, const char *fmt, ...);

/* Prepends "prefix: " to an existing message and returns -1. Used to add
 * context while an error travels up ("loading model.gguf: bad magic"). */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
int m40_err_wrap(m40_err *err, const char *fmt, ...);

/* Clears the message (an empty message means "no error") and the kind. */
void m40_err_clear(m40_err *err);

#endif /* M40_UTIL_ERR_H */
