/* fuzz_jinja.c - libFuzzer target for the chat-template interpreter.
 *
 * An input is a template, optionally followed by a NUL byte and a JSON
 * messages array (a small default conversation otherwise). It is compiled
 * and rendered with small limits (64 KiB of output, 32 MiB of memory,
 * 20000 loop iterations, depth 300), so runaway templates must end in an
 * error. Checked invariants: a failure leaves a one-line message starting
 * "chat template"; a success returns a NUL-terminated string within the
 * output limit. A broken invariant traps, which libFuzzer reports.
 *
 * Built with -DM40_FUZZ_REPLAY it is a plain program instead: it runs the
 * same function over the files and directories named on its command line
 * (tests/chat.cmake runs it over the seed corpus in every build).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)         \
    do {                      \
        if (!(cond))          \
            __builtin_trap(); \
    } while (0)

static const char k_default_messages[] =
    "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
    "{\"role\":\"user\",\"content\":\"Hi \\u00e9\"},"
    "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":\"abcdefghi\","
    "\"function\":{\"name\":\"f\",\"arguments\":{\"x\":1}}}]},"
    "{\"role\":\"tool\",\"content\":\"42\"},{\"role\":\"user\",\"content\":\"ok\"}]";

static const char k_vars[] =
    "{\"bos_token\":\"<s>\",\"eos_token\":\"</s>\",\"tools\":[{\"type\":\"function\","
    "\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\",\"properties\":"
    "{\"x\":{\"type\":\"integer\"}}}}}],\"n\":3,\"f\":0.5}";

static void check_error(const m40_err *err) {
    REQUIRE(err->msg[0] != '\0');
    REQUIRE(strchr(err->msg, '\n') == NULL);
    REQUIRE(strncmp(err->msg, "chat template", 13) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t tlen = nul ? (size_t)(nul - data) : size;
    cJSON *msgs = NULL;
    if (nul && size - tlen > 1)
        msgs = cJSON_ParseWithLength((const char *)nul + 1, size - tlen - 1);
    if (!msgs)
        msgs = cJSON_Parse(k_default_messages);
    cJSON *vars = cJSON_Parse(k_vars);

    m40_err err = {0};
    m40_chat_template *t = NULL;
    /* exactly tlen bytes, unterminated, so ASan sees any read past them */
    char *tmpl = malloc(tlen ? tlen : 1);
    REQUIRE(tmpl != NULL);
    memcpy(tmpl, data, tlen);
    if (m40_chat_template_compile(tmpl, tlen, &t, &err) != 0) {
        REQUIRE(t == NULL);
        check_error(&err);
    } else {
        m40_chat_limits lim = {.max_output = 1 << 16,
                               .max_memory = 32u << 20,
                               .max_iterations = 20000,
                               .max_depth = 300};
        m40_chat_options o = {.add_generation_prompt = (int)(size & 1),
                              .extra_vars = vars,
                              .limits = &lim,
                              .fixed_now = 1,
                              .now_utc = 1721995200};
        char *out = NULL;
        size_t n = 0;
        if (m40_chat_template_render(t, msgs, &o, &out, &n, &err) == 0) {
            REQUIRE(out != NULL && out[n] == '\0' && n <= lim.max_output);
        } else {
            REQUIRE(out == NULL);
            check_error(&err);
        }
        free(out);
        m40_chat_template_free(t);
    }
    free(tmpl);
    cJSON_Delete(msgs);
    cJSON_Delete(vars);
    return 0;
}

#ifdef M40_FUZZ_REPLAY
#include "replay.h"
#endif
