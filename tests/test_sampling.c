/* test_sampling.c - the sampler chain, stage by stage, and its RNG. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "sampling/sampling.h"

/* Known-answer vectors for xoshiro256** seeded through splitmix64, from an
 * independent Python implementation of the published algorithms
 * (scripts/reference/rng_vectors.py). */
static void test_rng_known_answers(void) {
    static const uint64_t seed0[4] = {0x99ec5f36cb75f2b4ull, 0xbf6e1f784956452aull,
                                      0x1a5f849d4933e6e0ull, 0x6aa594f1262d2d2cull};
    static const uint64_t seed42[4] = {0x15780b2e0c2ec716ull, 0x6104d9866d113a7eull,
                                       0xae17533239e499a1ull, 0xecb8ad4703b360a1ull};
    m40_rng r;
    m40_rng_seed(&r, 0);
    for (int i = 0; i < 4; i++)
        CHECK(m40_rng_next(&r) == seed0[i]);
    m40_rng_seed(&r, 42);
    for (int i = 0; i < 4; i++)
        CHECK(m40_rng_next(&r) == seed42[i]);
    for (int i = 0; i < 1000; i++) {
        double u = m40_rng_uniform(&r);
        CHECK(u >= 0.0 && u < 1.0);
    }
}

static m40_sampler make(m40_sampler_params p, int n_vocab) {
    m40_sampler s;
    m40_err e = {0};
    if (m40_sampler_init(&s, &p, n_vocab, &e))
        fprintf(stderr, "init: %s\n", e.msg);
    return s;
}

static int32_t sample(m40_sampler *s, const float *logits) {
    int32_t t = -1;
    m40_err e = {0};
    if (m40_sampler_sample(s, logits, &t, &e))
        fprintf(stderr, "sample: %s\n", e.msg);
    return t;
}

static void test_greedy_is_argmax(void) {
    m40_sampler_params p = m40_sampler_default_params();
    p.temperature = 0.0f;
    m40_sampler s = make(p, 5);
    float logits[5] = {0.1f, 2.0f, -1.0f, 1.9f, 2.0f};
    CHECK(sample(&s, logits) == 1); /* tie between 1 and 4: the lower id */
    logits[3] = 5.0f;
    CHECK(sample(&s, logits) == 3);
    m40_sampler_free(&s);
}

static void test_logit_bias(void) {
    m40_logit_bias bias[] = {{1, -INFINITY}, {2, 10.0f}};
    m40_sampler_params p = m40_sampler_default_params();
    p.temperature = 0.0f;
    p.bias = bias;
    p.n_bias = 2;
    m40_sampler s = make(p, 3);
    float logits[3] = {1.0f, 5.0f, 0.0f};
    CHECK(sample(&s, logits) == 2);
    m40_sampler_free(&s);

    /* Banning everything is an error, not a token. */
    m40_logit_bias ban[] = {{0, -INFINITY}, {1, -INFINITY}};
    p.bias = ban;
    p.n_bias = 2;
    p.temperature = 1.0f;
    s = make(p, 2);
    float two[2] = {1.0f, 2.0f};
    int32_t t;
    m40_err e = {0};
    CHECK(m40_sampler_sample(&s, two, &t, &e) == -1);
    CHECK_CONTAINS(e.msg, "every token is banned");
    m40_sampler_free(&s);
}

static void test_penalties_math(void) {
    m40_sampler_params p = m40_sampler_default_params();
    p.temperature = 0.0f;
    p.repeat_penalty = 2.0f;
    p.frequency_penalty = 0.5f;
    p.presence_penalty = 0.25f;
    p.penalty_last_n = 3;
    m40_sampler s = make(p, 4);
    /* token 0 seen twice, token 1 once; token 2 falls out of the window */
    m40_sampler_accept(&s, 2);
    m40_sampler_accept(&s, 0);
    m40_sampler_accept(&s, 1);
    m40_sampler_accept(&s, 0);
    CHECK(s.counts[0] == 2 && s.counts[1] == 1 && s.counts[2] == 0);
    /* logit 4 for token 0 -> 4/2 - 2*0.5 - 0.25 = 0.75
     * logit -1 for token 1 -> -1*2 - 0.5 - 0.25 = -2.75
     * token 2 (1.0) and 3 (0.5) are untouched: token 2 wins */
    float logits[4] = {4.0f, -1.0f, 1.0f, 0.5f};
    CHECK(sample(&s, logits) == 2);
    float just_below[4] = {4.0f, -1.0f, 0.74f, 0.5f};
    CHECK(sample(&s, just_below) == 0); /* 0.75 beats 0.74 */
    m40_sampler_free(&s);
}

static void test_top_k_one_is_greedy(void) {
    m40_sampler_params p = m40_sampler_default_params();
    p.temperature = 1.5f;
    p.top_k = 1;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    m40_sampler s = make(p, 1000);
    float *logits = malloc(1000 * sizeof *logits);
    for (int i = 0; i < 1000; i++)
        logits[i] = sinf((float)i);
    int best = 0;
    for (int i = 1; i < 1000; i++)
        if (logits[i] > logits[best])
            best = i;
    for (int i = 0; i < 20; i++)
        CHECK(sample(&s, logits) == best);
    free(logits);
    m40_sampler_free(&s);
}

/* Draws many samples and returns the frequency of each of 4 tokens. */
static void frequencies(m40_sampler_params p, const float *logits, double *freq, int draws) {
    m40_sampler s = make(p, 4);
    int counts[4] = {0};
    for (int i = 0; i < draws; i++) {
        int32_t t = sample(&s, logits);
        if (t >= 0 && t < 4)
            counts[t]++;
    }
    for (int i = 0; i < 4; i++)
        freq[i] = (double)counts[i] / draws;
    m40_sampler_free(&s);
}

static void test_distribution(void) {
    m40_sampler_params p = m40_sampler_default_params();
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = 7;
    float logits[4] = {logf(0.1f), logf(0.2f), logf(0.3f), logf(0.4f)};
    double f[4];
    frequencies(p, logits, f, 200000);
    CHECK(fabs(f[0] - 0.1) < 0.01 && fabs(f[1] - 0.2) < 0.01);
    CHECK(fabs(f[2] - 0.3) < 0.01 && fabs(f[3] - 0.4) < 0.01);

    /* temperature 0.5 squares the odds: p ~ {1,4,9,16}/30 */
    p.temperature = 0.5f;
    frequencies(p, logits, f, 200000);
    CHECK(fabs(f[0] - 1.0 / 30) < 0.01 && fabs(f[3] - 16.0 / 30) < 0.01);
}

static void test_top_p_and_min_p(void) {
    m40_sampler_params p = m40_sampler_default_params();
    p.temperature = 1.0f;
    p.top_k = 0;
    p.min_p = 0.0f;
    p.top_p = 0.65f; /* 0.4 + 0.3 >= 0.65: tokens 3 and 2 only */
    float logits[4] = {logf(0.1f), logf(0.2f), logf(0.3f), logf(0.4f)};
    double f[4];
    frequencies(p, logits, f, 50000);
    CHECK(f[0] == 0.0 && f[1] == 0.0);
    CHECK(fabs(f[3] - 0.4 / 0.7) < 0.015);

    p.top_p = 1.0f;
    p.min_p = 0.6f; /* keep p >= 0.24: tokens 3 and 2 */
    frequencies(p, logits, f, 50000);
    CHECK(f[0] == 0.0 && f[1] == 0.0 && f[2] > 0.3);
}

static void test_same_seed_same_tokens(void) {
    m40_sampler_params p = m40_sampler_default_params();
    p.seed = 1234;
    p.top_k = 0;
    float logits[64];
    for (int i = 0; i < 64; i++)
        logits[i] = cosf((float)i * 0.37f);
    m40_sampler a = make(p, 64), b = make(p, 64);
    int same = 1;
    int32_t first[50];
    for (int i = 0; i < 50; i++) {
        first[i] = sample(&a, logits);
        same &= first[i] == sample(&b, logits);
    }
    CHECK(same);
    m40_sampler_reset(&a);
    int replay = 1;
    for (int i = 0; i < 50; i++)
        replay &= first[i] == sample(&a, logits);
    CHECK(replay);
    m40_sampler_free(&a);
    m40_sampler_free(&b);

    p.seed = 1235;
    m40_sampler c = make(p, 64);
    int differs = 0;
    for (int i = 0; i < 50; i++)
        differs |= first[i] != sample(&c, logits);
    CHECK(differs);
    m40_sampler_free(&c);
}

static void test_bad_params(void) {
    m40_sampler s;
    m40_err e = {0};
    m40_sampler_params p = m40_sampler_default_params();
    p.top_p = 0.0f;
    CHECK(m40_sampler_init(&s, &p, 10, &e) == -1);
    CHECK_CONTAINS(e.msg, "top_p");
    CHECK(e.kind == M40_ERR_BAD_INPUT); /* the request's fault: a 400 */
    p = m40_sampler_default_params();
    p.top_k = -1;
    CHECK(m40_sampler_init(&s, &p, 10, &e) == -1);
    p = m40_sampler_default_params();
    m40_logit_bias out_of_range = {10, 1.0f};
    p.bias = &out_of_range;
    p.n_bias = 1;
    CHECK(m40_sampler_init(&s, &p, 10, &e) == -1);
    CHECK_CONTAINS(e.msg, "outside the vocabulary");
    CHECK(e.kind == M40_ERR_BAD_INPUT);
    p = m40_sampler_default_params();
    CHECK(m40_sampler_init(&s, &p, 0, &e) == -1);
    CHECK(e.kind == M40_ERR_INTERNAL); /* the caller's bug, not a request's */

    p = m40_sampler_default_params();
    CHECK(m40_sampler_init(&s, &p, 3, &e) == 0);
    float nan_logits[3] = {0.0f, NAN, 1.0f};
    int32_t t;
    CHECK(m40_sampler_sample(&s, nan_logits, &t, &e) == -1);
    CHECK_CONTAINS(e.msg, "NaN");
    CHECK(e.kind == M40_ERR_INTERNAL);
    m40_sampler_free(&s);
}

int main(void) {
    test_rng_known_answers();
    test_greedy_is_argmax();
    test_logit_bias();
    test_penalties_math();
    test_top_k_one_is_greedy();
    test_distribution();
    test_top_p_and_min_p();
    test_same_seed_same_tokens();
    test_bad_params();
    return check_report();
}
