/* test_real_greedy.c - a real model's greedy continuations against
 * Hugging Face transformers'.
 *
 *   test_real_greedy FIXTURE.json MODEL.gguf [cpu|cuda]
 *
 * The fixture (scripts/reference/make_gemma3_fixture.py: Gemma 3 270M,
 * Q4_K_M) holds prompts, the token ids transformers' tokenizer gives each
 * (BOS first) and the ids its greedy decoding adds. For each prompt the
 * test requires the same prompt ids from m40-llm's tokenizer and the same
 * greedy ids from m40-llm's forward, every one of them (first difference
 * printed).
 */
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "engine/engine.h"

static int ids_of(const cJSON *arr, m40_token *out, int cap) {
    int n = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, arr) {
        if (n < cap && cJSON_IsNumber(v))
            out[n++] = (m40_token)v->valuedouble;
    }
    return n;
}

static void check_case(m40_engine *e, const cJSON *c) {
    enum { CAP = 256 };
    const char *prompt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "prompt"));
    m40_token want_prompt[CAP], want_new[CAP], got[CAP];
    int np = ids_of(cJSON_GetObjectItemCaseSensitive(c, "prompt_ids"), want_prompt, CAP);
    int nn = ids_of(cJSON_GetObjectItemCaseSensitive(c, "greedy_ids"), want_new, CAP);
    CHECK(prompt && np > 0 && nn > 0);
    if (!prompt || np == 0 || nn == 0)
        return;
    m40_tokens ids = {0};
    m40_err err = {0};
    CHECK(m40_tokenize(m40_engine_tokenizer(e), prompt, strlen(prompt), M40_TOKENIZE_ADD_SPECIAL,
                       &ids, &err) == 0);
    int same_prompt = (int)ids.n == np && !memcmp(ids.ids, want_prompt, (size_t)np * sizeof *got);
    if (!same_prompt)
        fprintf(stderr, "%.20s...: %zu prompt ids, transformers %d (or they differ)\n", prompt,
                ids.n, np);
    CHECK(same_prompt);
    m40_tokens_free(&ids);
    /* greedy from transformers' prompt ids, one token at a time after it */
    m40_engine_seq *seq = NULL;
    int n = 0, ok = m40_engine_seq_begin(e, 0, &seq, &err) == 0;
    ok = ok && m40_engine_seq_step(seq, want_prompt, np, 0, &got[n++], &err) == 0;
    while (ok && n < nn) {
        ok = m40_engine_seq_step(seq, &got[n - 1], 1, np + n - 1, &got[n], &err) == 0;
        n++;
    }
    m40_engine_seq_end(seq);
    if (!ok)
        fprintf(stderr, "%s\n", err.msg);
    CHECK(ok);
    int first_diff = -1;
    for (int i = 0; ok && first_diff < 0 && i < nn; i++)
        first_diff = got[i] != want_new[i] ? i : -1;
    if (first_diff >= 0)
        fprintf(stderr, "%.20s...: greedy token %d is %d, transformers %d\n", prompt, first_diff,
                got[first_diff], want_new[first_diff]);
    else if (ok)
        printf("%.30s...: %d greedy tokens equal transformers'\n", prompt, nn);
    CHECK(ok && first_diff < 0);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_real_greedy FIXTURE.json MODEL.gguf [cpu|cuda]\n");
        return 2;
    }
    char *text = check_read_file(argv[1], NULL);
    cJSON *fx = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(fx != NULL);
    m40_engine_options eo = {.model_path = argv[2],
                             .backend = {.device = argc > 3 && !strcmp(argv[3], "cuda")
                                                       ? M40_DEVICE_CUDA
                                                       : M40_DEVICE_CPU,
                                         .gpu = -1,
                                         .n_ctx = 512}};
    m40_engine *e = NULL;
    m40_err err = {0};
    CHECK(m40_engine_open(&e, &eo, NULL, 0, &err) == 0);
    if (!e)
        fprintf(stderr, "%s\n", err.msg);
    const cJSON *c;
    int n_cases = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(fx, "cases")) {
        if (e)
            check_case(e, c);
        n_cases++;
    }
    CHECK(n_cases == 3);
    m40_engine_close(e);
    cJSON_Delete(fx);
    return check_report();
}
