/* file.c - see file.h. */
#include "util/file.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int m40_read_file(const char *path, char **out, size_t *len, m40_err *err) {
    *out = NULL;
    if (len)
        *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return m40_errf(err, "cannot open %s: %s", path, strerror(errno));
    size_t cap = (size_t)1 << 16, n = 0;
    char *buf = malloc(cap);
    /* Read until EOF, doubling the buffer; one byte stays free for the NUL. */
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (n < cap - 1)
            break; /* EOF or an error: ferror tells which */
        char *p = cap <= SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
        if (!p) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = p;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf)
        return m40_errf(err, "%s: out of memory", path);
    if (bad) {
        free(buf);
        return m40_errf(err, "cannot read %s", path);
    }
    buf[n] = '\0';
    *out = buf;
    if (len)
        *len = n;
    return 0;
}
