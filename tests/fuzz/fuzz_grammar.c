/* fuzz_grammar.c - libFuzzer target for the grammar compiler, the JSON
 * Schema converter and the matcher (src/grammar/).
 *
 * An input is a grammar, optionally followed by a NUL byte and a text. A
 * grammar that starts with '{', '[' or a JSON literal is read as a JSON
 * schema and converted first; anything else is GBNF. A grammar that
 * compiles is run over the text byte by byte and, at every step, masked
 * against a small vocabulary (ASCII letters, JSON punctuation, UTF-8
 * pieces and cut characters). Checked invariants: a failure leaves a
 * one-line message starting "grammar" or "json_schema"; a mask allows a
 * token exactly when feeding its bytes succeeds (probed for every token);
 * a byte the grammar refuses leaves the state as it was; the states stay
 * bounded (an error, never a crash, past the limit). A broken invariant
 * traps, which libFuzzer reports.
 *
 * Built with -DM40_FUZZ_REPLAY it is a plain program instead: it runs the
 * same function over the files and directories named on its command line
 * (tests/grammar.cmake runs it over the seed corpus in every build).
 */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/grammar.h"
#include "grammar/json_schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)         \
    do {                      \
        if (!(cond))          \
            __builtin_trap(); \
    } while (0)

static const char *const k_pieces[] = {"a",
                                       "b",
                                       "ab",
                                       "x",
                                       "0",
                                       "1",
                                       "12",
                                       "-",
                                       ".",
                                       "e",
                                       "{",
                                       "}",
                                       "[",
                                       "]",
                                       "\"",
                                       ":",
                                       ",",
                                       " ",
                                       "\n",
                                       "\\",
                                       "true",
                                       "null",
                                       "{\"",
                                       "\":",
                                       "\",\"",
                                       "\xc3\xa9",
                                       "\xc3",
                                       "\xa9",
                                       "\xe4\xb8\xad",
                                       "\xf0\x9f\x98\x80",
                                       "\xff",
                                       "yes",
                                       "no",
                                       "",
                                       NULL};
enum { N_PIECES = sizeof k_pieces / sizeof k_pieces[0] };

static void check_error(const m40_err *err) {
    REQUIRE(err->msg[0] != '\0');
    REQUIRE(strchr(err->msg, '\n') == NULL);
    REQUIRE(!strncmp(err->msg, "grammar", 7) || !strncmp(err->msg, "json_schema", 11));
}

/* Runs the text through g, checking the mask against single-token probes. */
static void run(const m40_grammar *g, const m40_grammar_vocab *v, const uint8_t *text, size_t len) {
    m40_grammar_state *s = NULL;
    m40_err err = {0};
    if (m40_grammar_state_create(g, &s, &err)) {
        check_error(&err);
        return;
    }
    uint8_t allowed[N_PIECES];
    for (size_t at = 0; at <= len && at < 64; at++) {
        int32_t n = 0;
        if (m40_grammar_state_mask(s, v, allowed, &n, &err)) {
            check_error(&err);
            break;
        }
        int32_t count = 0;
        for (int t = 0; t < N_PIECES; t++) {
            count += allowed[t];
            if (!k_pieces[t] || !*k_pieces[t]) {
                REQUIRE(!allowed[t]);
                continue;
            }
            /* a fresh state fed the same prefix, then the piece */
            m40_grammar_state *p = NULL;
            if (m40_grammar_state_create(g, &p, &err)) {
                check_error(&err);
                continue;
            }
            m40_err e2 = {0};
            int ok = m40_grammar_state_accept(p, (const char *)text, at, &e2) == 0 &&
                     m40_grammar_state_accept(p, k_pieces[t], strlen(k_pieces[t]), &e2) == 0;
            if (!ok)
                check_error(&e2);
            if (!ok && strstr(e2.msg, "outgrew"))
                ok = allowed[t]; /* a probe past the state limit proves nothing */
            REQUIRE(ok == allowed[t]);
            m40_grammar_state_free(p);
        }
        REQUIRE(count == n);
        if (at == len)
            break;
        /* a refused byte leaves the state as it was: the next mask is the same */
        if (m40_grammar_state_accept(s, (const char *)text + at, 1, &err)) {
            check_error(&err);
            int32_t n2 = 0;
            uint8_t again[N_PIECES];
            if (m40_grammar_state_mask(s, v, again, &n2, &err) == 0)
                REQUIRE(n2 == n && !memcmp(again, allowed, sizeof again));
            break;
        }
    }
    (void)m40_grammar_state_complete(s);
    (void)m40_grammar_state_can_continue(s);
    m40_grammar_state_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t glen = nul ? (size_t)(nul - data) : size;
    const uint8_t *text = nul ? nul + 1 : data + size;
    size_t tlen = nul ? size - glen - 1 : 0;
    /* exactly glen bytes, unterminated, so ASan sees any read past them */
    char *src = malloc(glen ? glen : 1);
    REQUIRE(src != NULL);
    memcpy(src, data, glen);
    m40_err err = {0};
    char *gbnf = NULL;
    const char *gtext = src;
    size_t gsize = glen;
    int schema = glen > 0 && (src[0] == '{' || src[0] == '[' || src[0] == 't' || src[0] == 'f');
    if (schema) {
        cJSON *j = cJSON_ParseWithLength(src, glen);
        if (!j) {
            free(src);
            return 0;
        }
        if (m40_json_schema_to_gbnf(j, &gbnf, &err)) {
            REQUIRE(gbnf == NULL);
            check_error(&err);
        } else {
            REQUIRE(gbnf != NULL);
            gtext = gbnf;
            gsize = strlen(gbnf);
        }
        cJSON_Delete(j);
    }
    if (!schema || gbnf) {
        m40_grammar *g = NULL;
        if (m40_grammar_parse(gtext, gsize, &g, &err)) {
            REQUIRE(g == NULL);
            check_error(&err);
            REQUIRE(!gbnf); /* the converter's grammars always compile */
        } else {
            size_t lens[N_PIECES];
            for (int t = 0; t < N_PIECES; t++)
                lens[t] = k_pieces[t] ? strlen(k_pieces[t]) : 0;
            m40_grammar_vocab *v = NULL;
            REQUIRE(m40_grammar_vocab_create(k_pieces, lens, N_PIECES, &v, &err) == 0);
            run(g, v, text, tlen);
            m40_grammar_vocab_free(v);
            m40_grammar_free(g);
        }
    }
    free(gbnf);
    free(src);
    return 0;
}

#ifdef M40_FUZZ_REPLAY
#include "replay.h"
#endif
