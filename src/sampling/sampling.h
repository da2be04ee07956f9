/* sampling.h - turning a row of logits into the next token.
 *
 * The chain, in llama.cpp's default order:
 *   logit bias -> repetition / presence / frequency penalties over the last
 *   `penalty_last_n` accepted tokens -> (temperature <= 0: argmax, done) ->
 *   top-k -> top-p -> min-p -> temperature -> softmax -> draw with the
 *   seeded RNG (rng.h).
 * Each stage is off at its neutral value (top_k 0, top_p 1, min_p 0,
 * penalties 1 / 0 / 0). The same seed, parameters and logits give the same
 * tokens on every run.
 *
 * Owns: its parameters, RNG, history of accepted tokens and candidate
 * scratch. Touches: the caller's logits, read-only. Knows nothing of models,
 * tokenizers or backends.
 */
#ifndef M40_SAMPLING_SAMPLING_H
#define M40_SAMPLING_SAMPLING_H

#include <stddef.h>
#include <stdint.h>

#include "sampling/rng.h"
#include "util/err.h"

typedef struct m40_logit_bias {
    int32_t token;
    float bias; /* added to the logit; -INFINITY bans the token */
} m40_logit_bias;

typedef struct m40_sampler_params {
    float temperature;       /* <= 0: greedy (argmax after bias and penalties) */
    int32_t top_k;           /* keep the k most likely; 0: off */
    float top_p;             /* keep the smallest set with mass >= p; 1: off */
    float min_p;             /* keep p >= min_p * p_max; 0: off */
    float repeat_penalty;    /* divide positive / multiply negative logits; 1: off */
    float presence_penalty;  /* subtract once per seen token; 0: off */
    float frequency_penalty; /* subtract per occurrence; 0: off */
    int32_t penalty_last_n;  /* window of accepted tokens the penalties see */
    uint64_t seed;
    const m40_logit_bias *bias; /* copied at init */
    size_t n_bias;
} m40_sampler_params;

/* llama.cpp's defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05,
 * penalties off with a window of 64, seed 0. */
m40_sampler_params m40_sampler_default_params(void);

typedef struct m40_candidate {
    int32_t id;
    float logit;
} m40_candidate;

typedef struct m40_sampler {
    m40_sampler_params params; /* params.bias points at `bias` below */
    m40_logit_bias *bias;
    int32_t n_vocab;
    m40_rng rng;
    int32_t *history; /* ring buffer of the last penalty_last_n accepted tokens */
    int32_t history_len, history_pos;
    m40_candidate *cand; /* n_vocab scratch entries */
    float *probs;        /* n_vocab scratch */
    uint16_t *counts;    /* n_vocab occurrence counts within the window (saturating) */
} m40_sampler;

/* Validates params (ranges, bias token ids) against n_vocab and allocates
 * the scratch. */
int m40_sampler_init(m40_sampler *s, const m40_sampler_params *params, int32_t n_vocab,
                     m40_err *err);
void m40_sampler_free(m40_sampler *s);

/* Records a token as part of the context the penalties see (prompt tokens
 * and generated tokens alike). Ids outside the vocabulary are ignored. */
void m40_sampler_accept(m40_sampler *s, int32_t token);

/* Clears the history and reseeds the RNG (a new request on the same slot). */
void m40_sampler_reset(m40_sampler *s);

/* Samples the next token from `logits` (n_vocab floats; not modified).
 * Fails only when every token is banned or a logit is NaN. */
int m40_sampler_sample(m40_sampler *s, const float *logits, int32_t *token, m40_err *err);

/* The same with only the tokens t where allowed[t] != 0 (a grammar's mask,
 * applied after bias and penalties); allowed NULL: every token. */
int m40_sampler_sample_masked(m40_sampler *s, const float *logits, const uint8_t *allowed,
                              int32_t *token, m40_err *err);

#endif /* M40_SAMPLING_SAMPLING_H */
