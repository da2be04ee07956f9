/* bench_tokenizer.c - encode speed on one core, per vocabulary.
 *
 *   bench_tokenizer [VOCAB_DIR] [MEGABYTES]
 *
 * Generates MEGABYTES (default 1) of mixed text deterministically (English
 * prose, C code, Chinese and Japanese, emoji, numbers, Cyrillic), encodes
 * it with each of llama.cpp's test vocabularies (plain text, no special
 * tokens parsed) and prints MB/s: the best of three runs, one thread. Also
 * times decoding. Not a test: scripts/bench-tokenizer.sh runs it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"
#include "util/clock.h"

#ifndef M40_VOCAB_DIR
#define M40_VOCAB_DIR "tests/fixtures/vocab"
#endif

static const char *const k_pieces[] = {
    "The quick brown fox jumps over the lazy dog. ",
    "It was the best of times, it was the worst of times; nobody said it'd be easy. ",
    "Tokenizers split text into words, then words into sub-word units by merging pairs. ",
    "We've measured 1234567 tokens at 98.6% accuracy on 2024-05-17, costing $3,141.59. ",
    "\n\n",
    ("int main(int argc, char **argv) {\n    for (int i = 0; i < argc; i++)\n        "
     "printf(\"%s\\n\", argv[i]);\n    return 0;\n}\n"),
    "def f(x):\n    return [y ** 2 for y in range(x) if y % 3 == 0]  # squares\n",
    "我想在苹果公司工作，因为那里的工程师非常优秀。",
    "東京は日本の首都です。今日はいい天気ですね。",
    "🚀🔥 launch day! 😶‍🌫️ feeling cloudy 👍🏽 ✅ ",
    "Привет, мир! Это тест токенизатора на русском языке. ",
    "3.14159265358979 2.71828 1e-9 0xDEADBEEF 42 ",
    "    indented line with\ttabs\tand   spaces   \n",
    "Ünïcödé àccents: café, naïve, résumé, façade. ",
};

static uint64_t g_rng = 0x2545F4914F6CDD1Dull;
static uint32_t next_rand(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}

static char *make_text(size_t size) {
    char *t = malloc(size + 256);
    if (!t)
        return NULL;
    size_t n = 0, k = sizeof k_pieces / sizeof k_pieces[0];
    while (n < size) {
        const char *p = k_pieces[next_rand() % k];
        size_t l = strlen(p);
        if (n + l > size)
            break;
        memcpy(t + n, p, l);
        n += l;
        if (next_rand() % 4 == 0)
            n += (size_t)snprintf(t + n, 32, "%u ", next_rand() % 100000);
    }
    t[n] = '\0';
    return t;
}

static int bench(const char *dir, const char *name, const char *text, size_t len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf", dir, name);
    m40_err err = {0};
    double t0 = m40_clock_s();
    m40_tokenizer *tok = m40_tokenizer_load_gguf(path, &err);
    double t_load = m40_clock_s() - t0;
    if (!tok) {
        fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
        return -1;
    }
    m40_tokens ids = {0};
    double best = 1e30, best_dec = 1e30;
    for (int run = 0; run < 3; run++) {
        t0 = m40_clock_s();
        if (m40_tokenize(tok, text, len, 0, &ids, &err)) {
            fprintf(stderr, "bench_tokenizer: %s: %s\n", name, err.msg);
            m40_tokenizer_free(tok);
            return -1;
        }
        double t = m40_clock_s() - t0;
        best = t < best ? t : best;
        char *out = NULL;
        size_t out_len = 0;
        t0 = m40_clock_s();
        if (m40_detokenize(tok, ids.ids, ids.n, M40_DETOK_NO_CLEANUP, &out, &out_len, &err) == 0) {
            t = m40_clock_s() - t0;
            best_dec = t < best_dec ? t : best_dec;
        }
        free(out);
    }
    double mb = (double)len / (1024.0 * 1024.0);
    printf("%-10s %-4s encode %7.2f MB/s  (%zu tokens, %.2f bytes/token)  decode %7.1f MB/s  "
           "load %.2f s\n",
           name, m40_tokenizer_kind_of(tok) == M40_TOKENIZER_SPM ? "SPM" : "BPE", mb / best, ids.n,
           (double)len / (double)(ids.n ? ids.n : 1), mb / best_dec, t_load);
    m40_tokens_free(&ids);
    m40_tokenizer_free(tok);
    return 0;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : M40_VOCAB_DIR;
    double mbytes = argc > 2 ? atof(argv[2]) : 1.0;
    if (mbytes <= 0 || mbytes > 1024) {
        fprintf(stderr, "usage: bench_tokenizer [VOCAB_DIR] [MEGABYTES (0..1024]]\n");
        return 2;
    }
    size_t size = (size_t)(mbytes * 1024 * 1024);
    char *text = make_text(size);
    if (!text)
        return 1;
    size_t len = strlen(text);
    printf("text: %zu bytes of mixed prose, code, CJK, emoji, numbers; best of 3, one thread\n",
           len);
    static const char *const names[] = {"llama-spm", "llama-bpe", "qwen2", "gpt-2"};
    int rc = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        rc |= bench(dir, names[i], text, len) != 0;
    free(text);
    return rc;
}
