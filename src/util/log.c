/* log.c - see log.h. */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_level = -1; /* -1: not read from the environment yet */

static m40_log_level level_from_env(void) {
    const char *s = getenv("M40LLM_LOG");
    if (!s || !*s)
        return M40_LOG_INFO;
    if (!strcmp(s, "error"))
        return M40_LOG_ERROR;
    if (!strcmp(s, "warn"))
        return M40_LOG_WARN;
    if (!strcmp(s, "debug"))
        return M40_LOG_DEBUG;
    return M40_LOG_INFO;
}

m40_log_level m40_log_get_level(void) {
    if (g_level < 0)
        g_level = (int)level_from_env();
    return (m40_log_level)g_level;
}

void m40_log_set_level(m40_log_level level) {
    g_level = (int)level;
}

void m40_log(m40_log_level level, const char *fmt, ...) {
    static const char *const names[] = {"error", "warn", "info", "debug"};
    if (level > m40_log_get_level())
        return;
    fprintf(stderr, "m40-llm: %s: ", names[level]);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
