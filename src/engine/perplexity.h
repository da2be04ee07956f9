/* perplexity.h - how well a model predicts a text, measured as
 * llama.cpp's llama-perplexity does, so the two can be compared on the
 * same file.
 *
 * The text's tokens (BOS first where the vocabulary adds one) are cut into
 * windows of n_ctx tokens from the start; whatever is left after the last
 * whole window is not used. Each window runs from position 0 on a fresh
 * context, its first token replaced by BOS when the vocabulary adds one,
 * and only its second half is scored: for each position j from n_ctx / 2
 * to n_ctx - 2, the negative log-likelihood of token j + 1 under the
 * logits at j (so every scored token has at least n_ctx / 2 tokens of
 * context). Perplexity is exp(mean NLL); its error is exp(mean) times the
 * standard error of the mean NLL, llama.cpp's "+/-".
 *
 * Owns: nothing past a call. Touches: the engine (slot 0's KV entries).
 */
#ifndef M40_ENGINE_PERPLEXITY_H
#define M40_ENGINE_PERPLEXITY_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "util/err.h"

typedef struct m40_perplexity {
    int32_t n_windows; /* windows scored */
    int64_t n_scored;  /* tokens scored: n_windows * (n_ctx - 1 - n_ctx / 2) */
    double nll;        /* mean negative log-likelihood, nats per token */
    double ppl;        /* exp(nll) */
    double ppl_err;    /* exp(nll) times the standard error of nll (0: one token) */
} m40_perplexity;

/* Called after each window with the estimate so far (window counts from
 * 1); nonzero stops after it. */
typedef int (*m40_ppl_progress_fn)(void *user, int32_t window, double ppl);

/* Scores tokens[0..n) (already tokenized, BOS included when the vocabulary
 * adds one) in windows of n_ctx (at most the engine's context, at least 4)
 * on slot 0; max_windows > 0 stops after that many. Fails, before running
 * anything, when the text has fewer than 2 n_ctx tokens, as llama.cpp does. */
int m40_perplexity_run(m40_engine *e, const m40_token *tokens, size_t n, int32_t n_ctx,
                       int32_t max_windows, m40_ppl_progress_fn progress, void *user,
                       m40_perplexity *out, m40_err *err);

/* -log softmax(logits[n_vocab])[token], computed in double. */
double m40_nll_of(const float *logits, int32_t n_vocab, m40_token token);

#endif /* M40_ENGINE_PERPLEXITY_H */
