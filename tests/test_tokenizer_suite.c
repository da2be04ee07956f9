/* test_tokenizer_suite.c - llama.cpp's tokenizer suite, every case.
 *
 *   test_tokenizer_suite VOCAB_DIR
 *
 * VOCAB_DIR is tests/fixtures/vocab (llama.cpp's ggml-vocab-*.gguf with
 * their .inp/.out files). For each vocabulary every case must encode
 * (without BOS, without parsing special tokens, as llama.cpp's
 * test-tokenizer-0) to exactly the ids of its .out line, and decoding those
 * ids (no space clean-up) must give back the input; for SentencePiece the
 * one leading space its prefix adds is stripped by the decoder itself.
 * A missing directory is a failure, never a skip.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tokenizer/tokenizer.h"

static const char *const k_vocabs[] = {"llama-spm", "llama-bpe", "qwen2", "gpt-2"};

/* Cases are separated by "\n__ggml_vocab_test__\n"; a trailing separator
 * ends the last case (llama.cpp's read_tests). */
static size_t split_cases(char *inp, size_t len, char **cases, size_t *lens, size_t max) {
    static const char sep[] = "\n__ggml_vocab_test__\n";
    size_t n = 0, pos = 0, sl = sizeof sep - 1;
    while (pos < len && n < max) {
        char *next = NULL;
        for (size_t i = pos; i + sl <= len; i++) {
            if (!memcmp(inp + i, sep, sl)) {
                next = inp + i;
                break;
            }
        }
        cases[n] = inp + pos;
        lens[n] = next ? (size_t)(next - (inp + pos)) : len - pos;
        n++;
        if (!next)
            break;
        pos = (size_t)(next - inp) + sl;
    }
    return n;
}

static void print_escaped(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            fputs("\\n", stderr);
        else if (c == '\t')
            fputs("\\t", stderr);
        else if (c < 0x20)
            fprintf(stderr, "\\x%02x", c);
        else
            fputc(c, stderr);
    }
}

static void print_ids(const char *label, const m40_token *ids, size_t n) {
    fprintf(stderr, "  %s:", label);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %d", ids[i]);
    fputc('\n', stderr);
}

/* Parses one .out line (space-separated ids) into want. */
static size_t parse_ids(char **line, m40_token *want, size_t max) {
    size_t n = 0;
    char *p = *line;
    while (*p && *p != '\n') {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) {
            p++;
            continue;
        }
        if (n < max)
            want[n++] = (m40_token)v;
        p = end;
    }
    *line = *p ? p + 1 : p;
    return n;
}

static int run_case(const m40_tokenizer *tok, const char *name, size_t k, const char *in,
                    size_t in_len, const m40_token *want, size_t n_want, m40_tokens *got) {
    m40_err err = {0};
    int ok = m40_tokenize(tok, in, in_len, 0, got, &err) == 0;
    if (!ok)
        fprintf(stderr, "%s case %zu: tokenize failed: %s\n", name, k, err.msg);
    int same =
        ok && got->n == n_want && (n_want == 0 || !memcmp(got->ids, want, n_want * sizeof *want));
    if (ok && !same) {
        fprintf(stderr, "%s case %zu: '", name, k);
        print_escaped(in, in_len);
        fprintf(stderr, "'\n");
        print_ids("want", want, n_want);
        print_ids("got ", got->ids, got->n);
    }
    CHECK(same);
    char *text = NULL;
    size_t len = 0;
    int dec =
        ok && m40_detokenize(tok, got->ids, got->n, M40_DETOK_NO_CLEANUP, &text, &len, &err) == 0;
    int round = dec && len == in_len && (in_len == 0 || !memcmp(text, in, in_len));
    if (ok && !round) {
        fprintf(stderr, "%s case %zu: decode gives '", name, k);
        print_escaped(text ? text : "", text ? len : 0);
        fprintf(stderr, "' for '");
        print_escaped(in, in_len);
        fprintf(stderr, "'\n");
    }
    CHECK(round);
    free(text);
    return same && round;
}

static void run_vocab(const char *dir, const char *name) {
    char path[1024], inp_path[1100], out_path[1100];
    snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf", dir, name);
    snprintf(inp_path, sizeof inp_path, "%s.inp", path);
    snprintf(out_path, sizeof out_path, "%s.out", path);
    m40_err err = {0};
    m40_tokenizer *tok = m40_tokenizer_load_gguf(path, &err);
    if (!tok)
        fprintf(stderr, "%s\n", err.msg);
    CHECK(tok != NULL);
    size_t inp_len = 0, out_len = 0;
    char *inp = check_read_file(inp_path, &inp_len), *out = check_read_file(out_path, &out_len);
    CHECK(inp && out);
    if (tok && inp && out) {
        enum { MAX_CASES = 1024, MAX_IDS = 4096 };
        static char *cases[MAX_CASES];
        static size_t lens[MAX_CASES];
        static m40_token want[MAX_IDS];
        size_t n = split_cases(inp, inp_len, cases, lens, MAX_CASES), passed = 0;
        size_t n_lines = 0;
        for (const char *p = out; *p; p++)
            n_lines += *p == '\n';
        CHECK(n > 0 && n == n_lines);
        char *line = out;
        m40_tokens got = {0};
        for (size_t k = 0; k < n; k++) {
            size_t n_want = parse_ids(&line, want, MAX_IDS);
            passed += (size_t)run_case(tok, name, k, cases[k], lens[k], want, n_want, &got);
        }
        m40_tokens_free(&got);
        printf("%-10s %zu passed, %zu failed\n", name, passed, n - passed);
    }
    free(inp);
    free(out);
    m40_tokenizer_free(tok);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_tokenizer_suite VOCAB_DIR\n");
        return 2;
    }
    char probe[1024];
    snprintf(probe, sizeof probe, "%s/ggml-vocab-%s.gguf", argv[1], k_vocabs[0]);
    FILE *f = fopen(probe, "rb");
    if (!f) {
        fprintf(stderr,
                "vocab fixtures missing: %s not found (they live in ../shared/fixtures/vocab)\n",
                probe);
        CHECK(f != NULL);
        return check_report();
    }
    fclose(f);
    for (size_t i = 0; i < sizeof k_vocabs / sizeof k_vocabs[0]; i++)
        run_vocab(argv[1], k_vocabs[i]);
    return check_report();
}
