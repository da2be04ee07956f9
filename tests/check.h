/* check.h - the smallest test harness that does the job.
 *
 * CHECK(cond) records a failure with file:line and carries on; a test's main
 * returns check_report(), which prints "N passed, M failed" and is non-zero
 * when anything failed. Tests are plain executables run by CTest.
 */
#ifndef M40_TESTS_CHECK_H
#define M40_TESTS_CHECK_H

#include <stdio.h>
#include <string.h>

#include "util/file.h"

static int check_passed_;
static int check_failed_;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            check_passed_++;                                                         \
        } else {                                                                     \
            check_failed_++;                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

/* Checks that `haystack` contains `needle`, printing both when not. */
#define CHECK_CONTAINS(haystack, needle)                                                  \
    do {                                                                                  \
        const char *h_ = (haystack), *n_ = (needle);                                      \
        if (h_ && strstr(h_, n_)) {                                                       \
            check_passed_++;                                                              \
        } else {                                                                          \
            check_failed_++;                                                              \
            fprintf(stderr, "%s:%d: expected \"%s\" in \"%s\"\n", __FILE__, __LINE__, n_, \
                    h_ ? h_ : "(null)");                                                  \
        }                                                                                 \
    } while (0)

static inline int check_report(void) {
    printf("%d passed, %d failed\n", check_passed_, check_failed_);
    return check_failed_ ? 1 : 0;
}

/* A fixture or output file, whole and NUL-terminated (util/file.h), or NULL
 * after printing why. len may be NULL. */
static inline char *check_read_file(const char *path, size_t *len) {
    m40_err err = {0};
    char *buf;
    if (m40_read_file(path, &buf, len, &err))
        fprintf(stderr, "%s\n", err.msg);
    return buf;
}

#endif /* M40_TESTS_CHECK_H */
