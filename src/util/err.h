/* err.h - error reporting by return code plus message.
 *
 * Every fallible function in m40-llm returns an int (0 on success, -1 on
 * failure) and takes an `m40_err *` as its last argument. On failure it fills
 * the message: one line, no trailing newline, naming what went wrong and the
 * thing (file, key, tensor, device) it went wrong on. Library code never
 * prints an error and never exits; the caller decides what to do.
 *
 * Owns: the m40_err type. Touches: nothing else.
 */
#ifndef M40_UTIL_ERR_H
#define M40_UTIL_ERR_H

#include <stddef.h>

#define M40_ERR_MSG_MAX 512

typedef struct m40_err {
    char msg[M40_ERR_MSG_MAX];
} m40_err;

/* Formats the message into err (if err is not NULL) and returns -1, so a
 * caller can write `return m40_errf(err, "bad magic in %s", path);`. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
int m40_errf(m40_err *err, const char *fmt, ...);

/* Prepends "prefix: " to an existing message and returns -1. Used to add
 * context while an error travels up ("loading model.gguf: bad magic"). */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
int m40_err_wrap(m40_err *err, const char *fmt, ...);

/* Clears the message (an empty message means "no error"). */
void m40_err_clear(m40_err *err);

#endif /* M40_UTIL_ERR_H */
