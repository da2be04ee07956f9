/* strbuf.h - a growing NUL-terminated string that remembers running out
 * of memory, so a builder appends without checking each call and checks
 * `oom` once at the end.
 *
 * Owns: its bytes (s, malloc'd; the caller takes or frees them). Touches:
 * nothing else.
 */
#ifndef M40_UTIL_STRBUF_H
#define M40_UTIL_STRBUF_H

#include <stddef.h>

typedef struct m40_strbuf {
    char *s; /* NULL until the first append; then always NUL-terminated */
    size_t len, cap;
    int oom; /* an append failed: s holds what came before it */
} m40_strbuf;

void m40_strbuf_add(m40_strbuf *b, const char *s, size_t n);
void m40_strbuf_str(m40_strbuf *b, const char *s);

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void m40_strbuf_fmt(m40_strbuf *b, const char *fmt, ...);

#endif /* M40_UTIL_STRBUF_H */
