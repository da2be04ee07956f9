/* test_err.c - error messages: formatting, wrapping, one line, kinds. */
#include "check.h"
#include "util/err.h"

static void test_format_returns_minus_one(void) {
    m40_err e = {0};
    CHECK(m40_errf(&e, "bad magic in %s", "x.gguf") == -1);
    CHECK(strcmp(e.msg, "bad magic in x.gguf") == 0);
}

static void test_wrap_prepends_context(void) {
    m40_err e = {0};
    m40_errf(&e, "bad magic");
    CHECK(m40_err_wrap(&e, "loading %s", "m.gguf") == -1);
    CHECK(strcmp(e.msg, "loading m.gguf: bad magic") == 0);
}

static void test_newlines_are_flattened(void) {
    m40_err e = {0};
    m40_errf(&e, "line one\nline two\r");
    CHECK(strchr(e.msg, '\n') == NULL);
    CHECK(strchr(e.msg, '\r') == NULL);
}

static void test_long_messages_truncate(void) {
    m40_err e = {0};
    char big[2 * M40_ERR_MSG_MAX];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    m40_errf(&e, "%s", big);
    CHECK(strlen(e.msg) == M40_ERR_MSG_MAX - 1);
    m40_err_wrap(&e, "context");
    CHECK(strlen(e.msg) == M40_ERR_MSG_MAX - 1);
    CHECK(strncmp(e.msg, "context: ", 9) == 0);
}

/* A kind is set where the error starts, kept by wrapping, and reset by
 * m40_errf and clearing. */
static void test_kinds(void) {
    m40_err e = {0};
    CHECK(e.kind == M40_ERR_INTERNAL);
    CHECK(m40_errk(&e, M40_ERR_TOO_LONG, "%d tokens", 9000) == -1);
    CHECK(e.kind == M40_ERR_TOO_LONG && strcmp(e.msg, "9000 tokens") == 0);
    m40_err_wrap(&e, "request %d", 3);
    CHECK(e.kind == M40_ERR_TOO_LONG && strcmp(e.msg, "request 3: 9000 tokens") == 0);
    m40_errf(&e, "out of memory");
    CHECK(e.kind == M40_ERR_INTERNAL);
    m40_errk(&e, M40_ERR_BAD_INPUT, "bad");
    m40_err_clear(&e);
    CHECK(e.kind == M40_ERR_INTERNAL && e.msg[0] == '\0');
    CHECK(m40_errk(NULL, M40_ERR_BUSY, "ignored") == -1);
}

static void test_null_err_is_allowed(void) {
    CHECK(m40_errf(NULL, "ignored") == -1);
    CHECK(m40_err_wrap(NULL, "ignored") == -1);
    m40_err_clear(NULL);
}

int main(void) {
    test_format_returns_minus_one();
    test_wrap_prepends_context();
    test_newlines_are_flattened();
    test_long_messages_truncate();
    test_kinds();
    test_null_err_is_allowed();
    return check_report();
}
