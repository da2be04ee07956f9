/* test_tokenizer_spm_chunks.c - SPM's chunked merging changes no id.
 *
 *   test_tokenizer_spm_chunks VOCAB_DIR
 *
 * spm.c merges a fragment chunk by chunk, cutting before each U+2581 that
 * follows another character, when no token could span such a cut (true of
 * Llama's vocabulary). This white-box test encodes a few hundred kilobytes
 * of mixed text both ways (the flag flipped in the tokenizer's insides)
 * and requires identical ids.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tokenizer/tok_internal.h"

static const char *const k_pieces[] = {
    "The quick brown fox jumps over the lazy dog. ",
    "  double  spaces  ",
    "\n\n",
    "\t",
    "int main(void) { return 0; }\n",
    "我想在苹果公司工作。",
    "Привет, мир! ",
    "3.14159 ",
    "\xF0\x9F\x9A\x80 ",
    "caf\xC3\xA9 ",
    "don't ",
    "\xE2\x96\x81literal\xE2\x96\x81",
    "\xFF\xFE",
};

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_tokenizer_spm_chunks VOCAB_DIR\n");
        return 2;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/ggml-vocab-llama-spm.gguf", argv[1]);
    m40_err err = {0};
    m40_tokenizer *tok = m40_tokenizer_load_gguf(path, &err);
    if (!tok)
        fprintf(stderr, "%s (vocab fixtures live in tests/fixtures/vocab)\n", err.msg);
    CHECK(tok != NULL);
    if (!tok)
        return check_report();
    CHECK(tok->spm_split == 1);

    size_t cap = 300 * 1024, n = 0;
    char *text = malloc(cap);
    uint32_t x = 12345;
    while (text) {
        x = x * 1103515245u + 12345u;
        const char *p = k_pieces[(x >> 16) % (sizeof k_pieces / sizeof k_pieces[0])];
        size_t l = strlen(p);
        if (n + l > cap)
            break;
        memcpy(text + n, p, l);
        n += l;
    }
    CHECK(text != NULL);
    m40_tokens a = {0}, b = {0};
    CHECK(m40_tokenize(tok, text, n, 0, &a, &err) == 0);
    tok->spm_split = 0;
    CHECK(m40_tokenize(tok, text, n, 0, &b, &err) == 0);
    CHECK(a.n == b.n && a.n > 0 && !memcmp(a.ids, b.ids, a.n * sizeof *a.ids));
    printf("%zu bytes -> %zu tokens, chunked and whole alike\n", n, a.n);
    m40_tokens_free(&a);
    m40_tokens_free(&b);
    free(text);
    m40_tokenizer_free(tok);
    return check_report();
}
