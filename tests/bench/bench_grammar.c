/* bench_grammar.c - what a grammar costs per generated token.
 *
 *   bench_grammar VOCAB.gguf...
 *
 * For each vocabulary (a model's GGUF or one of llama.cpp's vocab files):
 * builds the grammar trie, then walks a JSON document that a JSON schema
 * allows, token by token as the tokenizer splits it, timing the mask of
 * allowed tokens before each token (what the engine does per step) and the
 * step that takes the token. Prints a markdown row per vocabulary: the
 * trie's build time and nodes, the first mask (nothing remembered yet), the
 * mean and the largest of the others. One thread. Not a test:
 * docs/grammar.md keeps the numbers.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "grammar/json_schema.h"
#include "util/clock.h"

static const char k_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\"},"
    "\"email\":{\"type\":\"string\"},\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
    "\"address\":{\"type\":\"object\",\"properties\":{\"street\":{\"type\":\"string\"},"
    "\"city\":{\"type\":\"string\"},\"zip\":{\"type\":\"string\"}},\"required\":[\"street\","
    "\"city\"]},\"score\":{\"type\":\"number\"},\"active\":{\"type\":\"boolean\"},"
    "\"role\":{\"enum\":[\"admin\",\"user\",\"guest\"]}},"
    "\"required\":[\"name\",\"age\",\"tags\",\"address\",\"active\",\"role\"]}";

static const char k_doc[] =
    "{\n  \"name\": \"Ann Marie O'Neill\",\n  \"age\": 31,\n  \"email\": \"ann@example.org\",\n"
    "  \"tags\": [\"climbing\", \"jazz piano\", \"Ruby on Rails\", \"日本語\"],\n"
    "  \"address\": {\"street\": \"12 Long Road, Flat 3\", \"city\": \"Dublin\", \"zip\": "
    "\"D02 X285\"},\n  \"score\": 98.25,\n  \"active\": true,\n  \"role\": \"admin\"\n}";

static int bench_one(const char *path, const m40_grammar *g) {
    m40_err err = {0};
    m40_tokenizer *tok = m40_tokenizer_load_gguf(path, &err);
    if (!tok) {
        fprintf(stderr, "bench_grammar: %s: %s\n", path, err.msg);
        return -1;
    }
    double t0 = (m40_clock_s() * 1e3);
    m40_grammar_vocab *v = NULL;
    m40_token *eog = NULL;
    int32_t n_eog = 0;
    if (m40_grammar_vocab_of(tok, &v, &eog, &n_eog, &err)) {
        fprintf(stderr, "bench_grammar: %s\n", err.msg);
        m40_tokenizer_free(tok);
        return -1;
    }
    double build_ms = (m40_clock_s() * 1e3) - t0;
    m40_tokens ids = {0};
    int rc = m40_tokenize(tok, k_doc, strlen(k_doc), 0, &ids, &err);
    m40_grammar_state *s = NULL;
    if (rc == 0)
        rc = m40_grammar_state_create(g, &s, &err);
    uint8_t *allowed = malloc((size_t)m40_grammar_vocab_n_tokens(v));
    double first = 0, sum = 0, worst = 0;
    long total_allowed = 0;
    for (size_t i = 0; rc == 0 && allowed && i < ids.n; i++) {
        int32_t n_allowed;
        double a = (m40_clock_s() * 1e3);
        rc = m40_grammar_state_mask(s, v, allowed, &n_allowed, &err);
        double ms = (m40_clock_s() * 1e3) - a;
        if (rc == 0 && !allowed[ids.ids[i]]) {
            fprintf(stderr, "bench_grammar: token %zu (%d) of the document is not allowed\n", i,
                    (int)ids.ids[i]);
            rc = -1;
        }
        const char *piece;
        size_t len;
        if (rc == 0)
            rc = m40_token_to_piece(tok, ids.ids[i], 0, &piece, &len, &err) ||
                 m40_grammar_state_accept(s, piece, len, &err);
        total_allowed += n_allowed;
        if (i == 0)
            first = ms;
        else
            sum += ms, worst = ms > worst ? ms : worst;
    }
    if (rc == 0 && !m40_grammar_state_complete(s)) {
        fprintf(stderr, "bench_grammar: the document is not whole\n");
        rc = -1;
    }
    if (rc == 0) {
        const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        printf("| %s | %d | %.1f | %zu | %.2f | %.3f | %.3f | %.0f |\n", name,
               (int)m40_grammar_vocab_n_tokens(v), build_ms, ids.n, first,
               ids.n > 1 ? sum / (double)(ids.n - 1) : 0.0, worst,
               (double)total_allowed / (double)ids.n);
    } else if (err.msg[0]) {
        fprintf(stderr, "bench_grammar: %s\n", err.msg);
    }
    free(allowed);
    m40_grammar_state_free(s);
    m40_tokens_free(&ids);
    free(eog);
    m40_grammar_vocab_free(v);
    m40_tokenizer_free(tok);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_grammar VOCAB.gguf...\n");
        return 2;
    }
    cJSON *schema = cJSON_Parse(k_schema);
    char *gbnf = NULL;
    m40_grammar *g = NULL;
    m40_err err = {0};
    if (!schema || m40_json_schema_to_gbnf(schema, &gbnf, &err) ||
        m40_grammar_parse(gbnf, strlen(gbnf), &g, &err)) {
        fprintf(stderr, "bench_grammar: %s\n", err.msg);
        return 1;
    }
    printf("| vocabulary | tokens | trie build ms | document tokens | first mask ms | mean mask "
           "ms | largest mask ms | allowed tokens per step (mean) "
           "|\n|---|---|---|---|---|---|---|---|\n");
    int rc = 0;
    for (int i = 1; i < argc; i++)
        rc |= bench_one(argv[i], g);
    m40_grammar_free(g);
    free(gbnf);
    cJSON_Delete(schema);
    return rc ? 1 : 0;
}
