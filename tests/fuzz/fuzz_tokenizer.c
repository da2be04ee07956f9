/* fuzz_tokenizer.c - libFuzzer target for encoding and decoding.
 *
 * Arbitrary bytes in. The first byte picks the options (parse_special,
 * add_special, which BPE vocabulary), the rest is the text. It is encoded
 * with one SPM vocabulary (llama-spm) and one BPE vocabulary (qwen2, whose
 * regexes run through PCRE2, or llama-bpe, whose splitter is hand-written),
 * loaded once from M40_VOCAB_DIR. Each encode must give ids inside the
 * vocabulary or a one-line error; the ids must decode whole, and streamed
 * one at a time, without crashing; every streamed piece must be valid
 * UTF-8 and their concatenation must equal the whole decode whenever that
 * is valid UTF-8. A violation traps (libFuzzer reports it as a crash).
 *
 * Built with -DM40_FUZZ_REPLAY it is a plain program instead: it runs the
 * harness over each file given (whole, and each llama.cpp suite case in
 * it), so every build exercises it (test fuzz_tokenizer_replay).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

#ifndef M40_VOCAB_DIR
#define M40_VOCAB_DIR "tests/fixtures/vocab"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static m40_tokenizer *g_tok[3]; /* llama-spm, qwen2, llama-bpe */

static m40_tokenizer *load(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf", M40_VOCAB_DIR, name);
    m40_err err = {0};
    m40_tokenizer *tok = m40_tokenizer_load_gguf(path, &err);
    if (!tok) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", err.msg);
        abort();
    }
    return tok;
}

static void load_all(void) {
    if (g_tok[0])
        return;
    g_tok[0] = load("llama-spm");
    g_tok[1] = load("qwen2");
    g_tok[2] = load("llama-bpe");
}

/* Strict UTF-8 check, independent of the tokenizer's own. */
static int valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n)
            return 0;
        uint32_t cp = len == 1 ? c : c & (0xFFu >> (len + 1));
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

#define REQUIRE(cond)                                                                  \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "fuzz_tokenizer: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            __builtin_trap();                                                          \
        }                                                                              \
    } while (0)

/* Streams ids and checks every piece; returns the concatenation. */
static char *stream(const m40_tokenizer *tok, const m40_tokens *ids, size_t *len) {
    m40_detok_stream s;
    m40_detok_stream_init(&s, tok, 0);
    size_t cap = 64, n = 0;
    char *out = malloc(cap);
    m40_err err = {0};
    REQUIRE(out != NULL);
    for (size_t i = 0; i <= ids->n; i++) {
        const char *p;
        size_t pn;
        int rc = i < ids->n ? m40_detok_stream_feed(&s, ids->ids[i], &p, &pn, &err)
                            : m40_detok_stream_flush(&s, &p, &pn, &err);
        REQUIRE(rc == 0);
        REQUIRE(valid_utf8((const unsigned char *)p, pn));
        while (n + pn > cap) {
            cap *= 2;
            out = realloc(out, cap);
            REQUIRE(out != NULL);
        }
        memcpy(out + n, p, pn);
        n += pn;
    }
    m40_detok_stream_free(&s);
    *len = n;
    return out;
}

static void check_decode(const m40_tokenizer *tok, const m40_tokens *ids) {
    m40_err err = {0};
    char *whole = NULL;
    size_t whole_len = 0;
    REQUIRE(m40_detokenize(tok, ids->ids, ids->n, M40_DETOK_NO_CLEANUP, &whole, &whole_len, &err) ==
            0);
    size_t streamed_len;
    char *streamed = stream(tok, ids, &streamed_len);
    if (valid_utf8((const unsigned char *)whole, whole_len))
        REQUIRE(streamed_len == whole_len && !memcmp(streamed, whole, whole_len));
    free(whole);
    free(streamed);
    /* The other decode flavours must not crash either. */
    char *t = NULL;
    size_t tl;
    REQUIRE(m40_detokenize(tok, ids->ids, ids->n,
                           M40_DETOK_RENDER_SPECIAL | M40_DETOK_REMOVE_SPECIAL, &t, &tl,
                           &err) == 0);
    free(t);
}

static void run(const m40_tokenizer *tok, const char *text, size_t len, unsigned flags) {
    m40_tokens ids = {0};
    m40_err err = {0};
    if (m40_tokenize(tok, text, len, flags, &ids, &err) != 0) {
        /* A clear error: one line, something said. */
        REQUIRE(err.msg[0] != '\0' && !strchr(err.msg, '\n'));
        m40_tokens_free(&ids);
        return;
    }
    for (size_t i = 0; i < ids.n; i++)
        REQUIRE(ids.ids[i] >= 0 && (size_t)ids.ids[i] < m40_tokenizer_n_tokens(tok));
    check_decode(tok, &ids);
    m40_tokens_free(&ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    load_all();
    if (size == 0)
        return 0;
    unsigned opt = data[0];
    unsigned flags =
        ((opt & 1) ? M40_TOKENIZE_PARSE_SPECIAL : 0) | ((opt & 2) ? M40_TOKENIZE_ADD_SPECIAL : 0);
    const char *text = (const char *)data + 1;
    run(g_tok[0], text, size - 1, flags);
    run(g_tok[(opt & 4) ? 2 : 1], text, size - 1, flags);
    return 0;
}

#ifdef M40_FUZZ_REPLAY
#include "util/file.h"

/* Runs one text under every option byte. */
static void replay_text(const char *s, size_t n) {
    uint8_t *buf = malloc(n + 1);
    if (!buf)
        abort();
    memcpy(buf + 1, s, n);
    for (unsigned opt = 0; opt < 8; opt++) {
        buf[0] = (uint8_t)opt;
        LLVMFuzzerTestOneInput(buf, n + 1);
    }
    free(buf);
}

int main(int argc, char **argv) {
    static const char sep[] = "\n__ggml_vocab_test__\n";
    size_t runs = 0;
    for (int i = 1; i < argc; i++) {
        m40_err err = {0};
        char *buf;
        size_t n;
        if (m40_read_file(argv[i], &buf, &n, &err)) {
            fprintf(stderr, "fuzz_tokenizer: %s\n", err.msg);
            return 1;
        }
        replay_text(buf, n);
        runs++;
        for (size_t pos = 0; pos < n; runs++) {
            char *next = memmem(buf + pos, n - pos, sep, sizeof sep - 1);
            size_t len = next ? (size_t)(next - (buf + pos)) : n - pos;
            replay_text(buf + pos, len);
            pos = next ? (size_t)(next - buf) + sizeof sep - 1 : n;
        }
        free(buf);
    }
    for (int k = 0; k < 3; k++)
        m40_tokenizer_free(g_tok[k]);
    printf("%zu inputs replayed\n", runs);
    return 0;
}
#endif
