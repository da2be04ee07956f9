/* test_file.c - m40_read_file (util/file.h): the whole file, any size,
 * NUL-terminated, and an error naming the path when it cannot be read. */
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "util/file.h"

static char g_dir[] = "/tmp/m40-test-file-XXXXXX";

/* Writes n bytes (byte i = i * 7 + 1 mod 256, so NULs appear) to name. */
static void write_pattern(const char *path, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    for (size_t i = 0; f && i < n; i++)
        fputc((int)((i * 7 + 1) & 0xff), f);
    if (f)
        fclose(f);
}

static int same_pattern(const char *buf, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)buf[i] != ((i * 7 + 1) & 0xff))
            return 0;
    }
    return buf[n] == '\0';
}

/* Sizes around the first read's 64 KiB buffer (one byte kept for the NUL)
 * and far past it. */
static void test_sizes(void) {
    const size_t sizes[] = {0, 1, 65534, 65535, 65536, 65537, 300001};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/f%zu", g_dir, i);
        write_pattern(path, sizes[i]);
        m40_err err = {0};
        char *buf = NULL;
        size_t len = 12345;
        CHECK(m40_read_file(path, &buf, &len, &err) == 0);
        CHECK(buf != NULL && len == sizes[i] && same_pattern(buf, len));
        free(buf);
        unlink(path);
    }
}

static void test_len_optional(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/text", g_dir);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        fputs("hello\n", f);
        fclose(f);
    }
    m40_err err = {0};
    char *buf = NULL;
    CHECK(m40_read_file(path, &buf, NULL, &err) == 0);
    CHECK(buf && strcmp(buf, "hello\n") == 0);
    free(buf);
    unlink(path);
}

static void test_errors_name_the_path(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/missing", g_dir);
    m40_err err = {0};
    char *buf = (char *)&err; /* must be reset to NULL */
    size_t len = 7;
    CHECK(m40_read_file(path, &buf, &len, &err) == -1);
    CHECK(buf == NULL && len == 0);
    CHECK_CONTAINS(err.msg, path);
    CHECK_CONTAINS(err.msg, "No such file");
    /* a directory opens but cannot be read */
    m40_err_clear(&err);
    CHECK(m40_read_file(g_dir, &buf, &len, &err) == -1);
    CHECK(buf == NULL);
    CHECK_CONTAINS(err.msg, g_dir);
}

int main(void) {
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_sizes();
    test_len_optional();
    test_errors_name_the_path();
    rmdir(g_dir);
    return check_report();
}
