/* perplexity.c - see perplexity.h. */
#include "engine/perplexity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double m40_nll_of(const float *logits, int32_t n_vocab, m40_token token) {
    double max = logits[0];
    for (int32_t i = 1; i < n_vocab; i++)
        max = logits[i] > max ? logits[i] : max;
    double sum = 0.0;
    for (int32_t i = 0; i < n_vocab; i++)
        sum += exp((double)logits[i] - max);
    return -((double)logits[token] - max - log(sum));
}

/* Runs one window and adds its scored tokens' NLL (and NLL^2) to the sums. */
static int score_window(m40_engine_seq *seq, m40_token *win, int32_t n_ctx, m40_token bos,
                        int32_t n_vocab, float *logits, double *sum, double *sum2, m40_err *err) {
    m40_token first = win[0];
    if (bos != M40_TOKEN_NULL)
        win[0] = bos;
    int rc = m40_engine_seq_logits(seq, win, n_ctx, 0, logits, err);
    win[0] = first;
    if (rc)
        return -1;
    for (int32_t j = n_ctx / 2; j < n_ctx - 1; j++) {
        double v = m40_nll_of(logits + (size_t)j * (size_t)n_vocab, n_vocab, win[j + 1]);
        *sum += v;
        *sum2 += v * v;
    }
    return 0;
}

int m40_perplexity_run(m40_engine *e, const m40_token *tokens, size_t n, int32_t n_ctx,
                       int32_t max_windows, m40_ppl_progress_fn progress, void *user,
                       m40_perplexity *out, m40_err *err) {
    memset(out, 0, sizeof *out);
    if (n_ctx < 4 || n_ctx > m40_engine_n_ctx(e))
        return m40_errk(err, M40_ERR_BAD_INPUT,
                        "perplexity: a window of %d tokens (at least 4, at most the context, %d)",
                        n_ctx, m40_engine_n_ctx(e));
    if (n < 2 * (size_t)n_ctx)
        return m40_errk(err, M40_ERR_BAD_INPUT,
                        "perplexity: the text has %zu tokens; a window of %d needs at least %d", n,
                        n_ctx, 2 * n_ctx);
    const m40_tokenizer *tok = m40_engine_tokenizer(e);
    const int32_t n_vocab = m40_engine_model(e)->cfg.n_vocab;
    m40_token bos = m40_tokenizer_add_bos(tok) ? m40_tokenizer_bos(tok) : M40_TOKEN_NULL;
    int32_t n_windows = (int32_t)(n / (size_t)n_ctx);
    if (max_windows > 0 && max_windows < n_windows)
        n_windows = max_windows;
    float *logits = malloc((size_t)n_ctx * (size_t)n_vocab * sizeof *logits);
    m40_token *win = malloc((size_t)n_ctx * sizeof *win);
    m40_engine_seq *seq = NULL;
    if (!logits || !win) {
        free(logits), free(win);
        return m40_errf(err, "out of memory for %d x %d logits", n_ctx, n_vocab);
    }
    int rc = m40_engine_seq_begin(e, 0, &seq, err);
    double sum = 0.0, sum2 = 0.0;
    const int64_t per_window = n_ctx - 1 - n_ctx / 2;
    for (int32_t w = 0; rc == 0 && w < n_windows; w++) {
        memcpy(win, tokens + (size_t)w * (size_t)n_ctx, (size_t)n_ctx * sizeof *win);
        rc = score_window(seq, win, n_ctx, bos, n_vocab, logits, &sum, &sum2, err);
        if (rc)
            break;
        out->n_windows = w + 1;
        out->n_scored += per_window;
        if (progress && progress(user, w + 1, exp(sum / (double)out->n_scored)))
            break;
    }
    m40_engine_seq_end(seq);
    free(logits), free(win);
    if (rc)
        return m40_err_wrap(err, "perplexity window %d", out->n_windows + 1);
    double cnt = (double)out->n_scored, mean = sum / cnt, var = sum2 / cnt - mean * mean;
    out->nll = mean;
    out->ppl = exp(mean);
    out->ppl_err = cnt > 1 && var > 0 ? sqrt(var / (cnt - 1)) * out->ppl : 0.0;
    return 0;
}
