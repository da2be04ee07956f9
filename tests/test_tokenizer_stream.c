/* test_tokenizer_stream.c - the incremental detokenizer never breaks UTF-8.
 *
 *   test_tokenizer_stream VOCAB_DIR
 *
 * For each of llama.cpp's test vocabularies and for multi-byte text (emoji
 * with joiners and modifiers, CJK, Cyrillic, combining marks, Devanagari):
 *  - the real encoding fed one id at a time decodes to exactly the text;
 *  - hundreds of random splits of the text into byte-level tokens (chunks
 *    of 1..6 bytes, each a vocabulary token when one matches, else one
 *    byte token per byte) decode to exactly the text;
 *  - every piece the stream returns is valid UTF-8 on its own;
 *  - bytes that can never be valid come out as U+FFFD, held bytes at the
 *    end too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tokenizer/tokenizer.h"

static const char *const k_texts[] = {
    "\xF0\x9F\x9A\x80\xF0\x9F\x94\xA5 launch "
    "\xF0\x9F\x98\xB6\xE2\x80\x8D\xF0\x9F\x8C\xAB\xEF\xB8\x8F"
    " \xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD \xE2\x9C\x85",           /* emoji */
    "我想在苹果公司工作。東京は日本の首都です。",               /* CJK */
    "Привет, мир! Съешь же ещё этих мягких французских булок.", /* Cyrillic */
    "e\xCC\x81 a\xCC\x88 n\xCC\x83 \xC7\xB9\xCC\xA4 Z\xCC\xB7\xCC\x9B\xCD\x91"
    "a\xCC\xB4lgo",                /* marks */
    "नमस्ते दुनिया, 안녕하세요 세계", /* Devanagari, Hangul */
    "mixed: caf\xC3\xA9 \xE2\x82\xAC"
    "5 \xF0\x9F\x98\x81 \xE6\x97\xA5\xE6\x9C\xAC ok",
};

/* Strict UTF-8 check, written independently of the tokenizer's own. */
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

typedef struct collected {
    char buf[4096];
    size_t n;
    int all_valid;
} collected;

static void collect(collected *c, const char *p, size_t n) {
    if (!valid_utf8((const unsigned char *)p, n))
        c->all_valid = 0;
    if (c->n + n <= sizeof c->buf) {
        memcpy(c->buf + c->n, p, n);
        c->n += n;
    }
}

/* Streams ids; returns 1 when the concatenation equals want[0..n). */
static int stream_equals(const m40_tokenizer *tok, const m40_token *ids, size_t n_ids,
                         const char *want, size_t n) {
    m40_detok_stream s;
    m40_detok_stream_init(&s, tok, 0);
    collected c = {{0}, 0, 1};
    m40_err err = {0};
    int ok = 1;
    for (size_t i = 0; i < n_ids && ok; i++) {
        const char *p;
        size_t len;
        ok = m40_detok_stream_feed(&s, ids[i], &p, &len, &err) == 0;
        if (ok)
            collect(&c, p, len);
    }
    const char *p;
    size_t len;
    ok = ok && m40_detok_stream_flush(&s, &p, &len, &err) == 0;
    if (ok)
        collect(&c, p, len);
    m40_detok_stream_free(&s);
    CHECK(c.all_valid);
    return ok && c.n == n && !memcmp(c.buf, want, n);
}

static uint64_t g_rng = 88172645463325252ull;
static uint32_t rnd(uint32_t n) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)((g_rng >> 11) % n);
}

/* The vocabulary's token for one input byte. */
static m40_token byte_token(const m40_tokenizer *tok, unsigned char b) {
    if (m40_tokenizer_kind_of(tok) == M40_TOKENIZER_SPM) {
        char hex[8];
        snprintf(hex, sizeof hex, "<0x%02X>", b);
        return m40_tokenizer_find(tok, hex, 6);
    }
    /* GPT-2 alphabet: printable Latin-1 keeps its code point. */
    unsigned cp = b;
    if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)) {
        cp = 256;
        for (unsigned x = 0; x < b; x++)
            cp += !((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE);
    }
    char u[2] = {(char)(cp < 0x80 ? cp : 0xC0 | (cp >> 6)), (char)(0x80 | (cp & 0x3F))};
    return m40_tokenizer_find(tok, u, cp < 0x80 ? 1 : 2);
}

/* A chunk as one token if the vocabulary has it (SPM: spaces as U+2581;
 * BPE: bytes in the GPT-2 alphabet), else M40_TOKEN_NULL. */
static m40_token chunk_token(const m40_tokenizer *tok, const char *s, size_t n) {
    char buf[64];
    size_t k = 0;
    int spm = m40_tokenizer_kind_of(tok) == M40_TOKENIZER_SPM;
    for (size_t i = 0; i < n && k + 3 < sizeof buf; i++) {
        unsigned char b = (unsigned char)s[i];
        if (spm) {
            if (b == ' ') {
                memcpy(buf + k, "\xE2\x96\x81", 3);
                k += 3;
            } else {
                buf[k++] = (char)b;
            }
        } else {
            size_t len;
            const char *t = m40_tokenizer_token_text(tok, byte_token(tok, b), &len);
            if (!t)
                return M40_TOKEN_NULL;
            memcpy(buf + k, t, len);
            k += len;
        }
    }
    return m40_tokenizer_find(tok, buf, k);
}

static void random_splits(const m40_tokenizer *tok, const char *text) {
    size_t n = strlen(text), fails = 0;
    m40_token ids[1024];
    for (int iter = 0; iter < 300; iter++) {
        size_t n_ids = 0;
        for (size_t i = 0; i < n;) {
            size_t len = 1 + rnd(6);
            if (len > n - i)
                len = n - i;
            m40_token t = rnd(2) ? chunk_token(tok, text + i, len) : M40_TOKEN_NULL;
            /* A leading-space piece first would be stripped: use bytes. */
            if (t != M40_TOKEN_NULL && !(i == 0 && text[0] == ' ')) {
                ids[n_ids++] = t;
            } else {
                for (size_t k = 0; k < len; k++)
                    ids[n_ids++] = byte_token(tok, (unsigned char)text[i + k]);
            }
            i += len;
        }
        fails += !stream_equals(tok, ids, n_ids, text, n);
    }
    if (fails)
        fprintf(stderr, "%zu of 300 random splits of '%s' decoded wrong\n", fails, text);
    CHECK(fails == 0);
}

static void whole_encoding(const m40_tokenizer *tok, const char *text) {
    m40_tokens ids = {0};
    m40_err err = {0};
    CHECK(m40_tokenize(tok, text, strlen(text), 0, &ids, &err) == 0);
    int ok = stream_equals(tok, ids.ids, ids.n, text, strlen(text));
    if (!ok)
        fprintf(stderr, "streaming the encoding of '%s' did not give it back\n", text);
    CHECK(ok);
    m40_tokens_free(&ids);
}

/* Never-valid bytes become U+FFFD; a held tail at the end too. */
static void invalid_bytes(const m40_tokenizer *tok) {
    m40_token ids[] = {byte_token(tok, 0xE2), byte_token(tok, 0x82), byte_token(tok, 'A'),
                       byte_token(tok, 0xFF), byte_token(tok, 0xF0), byte_token(tok, 0x9F)};
    const char want[] = "\xEF\xBF\xBD"
                        "A"
                        "\xEF\xBF\xBD"
                        "\xEF\xBF\xBD";
    CHECK(stream_equals(tok, ids, 6, want, sizeof want - 1));
}

int main(int argc, char **argv) {
    static const char *const vocabs[] = {"llama-spm", "llama-bpe", "qwen2", "gpt-2"};
    if (argc < 2) {
        fprintf(stderr, "usage: test_tokenizer_stream VOCAB_DIR\n");
        return 2;
    }
    for (size_t v = 0; v < sizeof vocabs / sizeof vocabs[0]; v++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf", argv[1], vocabs[v]);
        m40_err err = {0};
        m40_tokenizer *tok = m40_tokenizer_load_gguf(path, &err);
        if (!tok)
            fprintf(stderr, "%s (vocab fixtures live in tests/fixtures/vocab)\n", err.msg);
        CHECK(tok != NULL);
        if (!tok)
            continue;
        for (size_t t = 0; t < sizeof k_texts / sizeof k_texts[0]; t++) {
            whole_encoding(tok, k_texts[t]);
            random_splits(tok, k_texts[t]);
        }
        invalid_bytes(tok);
        m40_tokenizer_free(tok);
    }
    return check_report();
}
