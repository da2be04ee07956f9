/* file.h - reading a whole file into memory (prompts, JSON, templates,
 * test fixtures). Model files are never read this way: gguf.c maps them.
 *
 * Owns: nothing. Touches: the file system, read-only.
 */
#ifndef M40_UTIL_FILE_H
#define M40_UTIL_FILE_H

#include <stddef.h>

#include "util/err.h"

/* Reads the file at `path` into *out, a malloc'd buffer of *len bytes plus a
 * terminating NUL (so text can be used as a C string; the bytes may hold
 * NULs of their own). len may be NULL. Works on pipes and other files whose
 * size is not known in advance. On failure *out is NULL and err names the
 * path and the reason. */
int m40_read_file(const char *path, char **out, size_t *len, m40_err *err);

#endif /* M40_UTIL_FILE_H */
