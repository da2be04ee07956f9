/* sampling.c - see sampling.h. */
#include "sampling/sampling.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

m40_sampler_params m40_sampler_default_params(void) {
    m40_sampler_params p;
    memset(&p, 0, sizeof p);
    p.temperature = 0.8f;
    p.top_k = 40;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    p.repeat_penalty = 1.0f;
    p.penalty_last_n = 64;
    return p;
}

static int check_params(const m40_sampler_params *p, int32_t n_vocab, m40_err *err) {
    if (n_vocab <= 0)
        return m40_errf(err, "sampler: vocabulary size %d is not positive", (int)n_vocab);
    if (isnan(p->temperature))
        return m40_errk(err, M40_ERR_BAD_INPUT, "sampler: temperature is NaN");
    if (p->top_k < 0)
        return m40_errk(err, M40_ERR_BAD_INPUT, "sampler: top_k %d is negative", (int)p->top_k);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return m40_errk(err, M40_ERR_BAD_INPUT, "sampler: top_p %g is outside (0, 1]",
                        (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return m40_errk(err, M40_ERR_BAD_INPUT, "sampler: min_p %g is outside [0, 1]",
                        (double)p->min_p);
    if (!(p->repeat_penalty > 0.0f) || isinf(p->repeat_penalty))
        return m40_errk(err, M40_ERR_BAD_INPUT,
                        "sampler: repeat_penalty %g must be positive and finite",
                        (double)p->repeat_penalty);
    if (!isfinite(p->presence_penalty) || !isfinite(p->frequency_penalty))
        return m40_errk(err, M40_ERR_BAD_INPUT,
                        "sampler: presence and frequency penalties must be finite");
    if (p->penalty_last_n < 0)
        return m40_errk(err, M40_ERR_BAD_INPUT, "sampler: penalty_last_n %d is negative",
                        (int)p->penalty_last_n);
    for (size_t i = 0; i < p->n_bias; i++) {
        if (p->bias[i].token < 0 || p->bias[i].token >= n_vocab)
            return m40_errk(err, M40_ERR_BAD_INPUT,
                            "sampler: logit bias for token %d, outside the vocabulary of %d",
                            (int)p->bias[i].token, (int)n_vocab);
        if (isnan(p->bias[i].bias) || p->bias[i].bias == INFINITY)
            return m40_errk(err, M40_ERR_BAD_INPUT,
                            "sampler: logit bias for token %d must be a number or -inf",
                            (int)p->bias[i].token);
    }
    return 0;
}

int m40_sampler_init(m40_sampler *s, const m40_sampler_params *params, int32_t n_vocab,
                     m40_err *err) {
    memset(s, 0, sizeof *s);
    if (check_params(params, n_vocab, err))
        return -1;
    s->params = *params;
    s->n_vocab = n_vocab;
    size_t nv = (size_t)n_vocab;
    s->cand = malloc(nv * sizeof *s->cand);
    s->probs = malloc(nv * sizeof *s->probs);
    s->counts = calloc(nv, sizeof *s->counts);
    s->history = malloc((params->penalty_last_n > 0 ? (size_t)params->penalty_last_n : 1) *
                        sizeof *s->history);
    s->bias = params->n_bias ? malloc(params->n_bias * sizeof *s->bias) : NULL;
    if (!s->cand || !s->probs || !s->counts || !s->history || (params->n_bias && !s->bias)) {
        m40_sampler_free(s);
        return m40_errf(err, "sampler: out of memory for a vocabulary of %d", (int)n_vocab);
    }
    if (params->n_bias)
        memcpy(s->bias, params->bias, params->n_bias * sizeof *s->bias);
    s->params.bias = s->bias;
    m40_rng_seed(&s->rng, params->seed);
    return 0;
}

void m40_sampler_free(m40_sampler *s) {
    free(s->cand);
    free(s->probs);
    free(s->counts);
    free(s->history);
    free(s->bias);
    memset(s, 0, sizeof *s);
}

void m40_sampler_reset(m40_sampler *s) {
    memset(s->counts, 0, (size_t)s->n_vocab * sizeof *s->counts);
    s->history_len = 0;
    s->history_pos = 0;
    m40_rng_seed(&s->rng, s->params.seed);
}

void m40_sampler_accept(m40_sampler *s, int32_t token) {
    int32_t window = s->params.penalty_last_n;
    if (token < 0 || token >= s->n_vocab || window == 0)
        return;
    if (s->history_len == window) {
        /* Full: the oldest entry leaves the window. */
        s->counts[s->history[s->history_pos]]--;
    } else {
        s->history_len++;
    }
    s->history[s->history_pos] = token;
    s->history_pos = (s->history_pos + 1) % window;
    if (s->counts[token] < UINT16_MAX)
        s->counts[token]++;
}

/* Copies the logits into the candidate list, adding bias and penalties. */
static void apply_mask(m40_sampler *s, const uint8_t *allowed);

static int load_candidates(m40_sampler *s, const float *logits, const uint8_t *allowed,
                           m40_err *err) {
    const m40_sampler_params *p = &s->params;
    for (int32_t i = 0; i < s->n_vocab; i++) {
        if (isnan(logits[i]))
            return m40_errf(err, "sampler: logit of token %d is NaN", (int)i);
        s->cand[i].id = i;
        s->cand[i].logit = logits[i];
    }
    for (size_t i = 0; i < p->n_bias; i++)
        s->cand[p->bias[i].token].logit += p->bias[i].bias;
    int penalize =
        p->repeat_penalty != 1.0f || p->presence_penalty != 0.0f || p->frequency_penalty != 0.0f;
    if (!penalize || s->history_len == 0) {
        apply_mask(s, allowed);
        return 0;
    }
    for (int32_t i = 0; i < s->n_vocab; i++) {
        unsigned c = s->counts[i];
        if (c == 0)
            continue;
        float *l = &s->cand[i].logit;
        /* As llama.cpp: shrink the logit towards "less likely" whichever its
         * sign, then subtract the OpenAI-style presence/frequency terms. */
        *l = *l > 0.0f ? *l / p->repeat_penalty : *l * p->repeat_penalty;
        *l -= (float)c * p->frequency_penalty + p->presence_penalty;
    }
    apply_mask(s, allowed);
    return 0;
}

/* Bans the tokens `allowed` does not allow (a grammar's mask). */
static void apply_mask(m40_sampler *s, const uint8_t *allowed) {
    if (!allowed)
        return;
    for (int32_t i = 0; i < s->n_vocab; i++)
        if (!allowed[i])
            s->cand[i].logit = -INFINITY;
}

/* Order: higher logit first; ties by lower id, so results never depend on
 * the sort algorithm. */
static int cand_before(const m40_candidate *a, const m40_candidate *b) {
    if (a->logit != b->logit)
        return a->logit > b->logit;
    return a->id < b->id;
}

static int cand_cmp(const void *pa, const void *pb) {
    const m40_candidate *a = pa, *b = pb;
    if (cand_before(a, b))
        return -1;
    return cand_before(b, a) ? 1 : 0;
}

static void swap_cand(m40_candidate *a, m40_candidate *b) {
    m40_candidate t = *a;
    *a = *b;
    *b = t;
}

/* Restores the heap below j: cand[0..k) is a min-heap by cand_before, so
 * the worst of the kept candidates sits at the root. */
static void sift_down(m40_candidate *cand, int32_t k, int32_t j) {
    for (;;) {
        int32_t l = 2 * j + 1, r = l + 1, worst = j;
        if (l < k && cand_before(&cand[worst], &cand[l]))
            worst = l;
        if (r < k && cand_before(&cand[worst], &cand[r]))
            worst = r;
        if (worst == j)
            return;
        swap_cand(&cand[j], &cand[worst]);
        j = worst;
    }
}

/* Moves the k best of cand[0..n) to the front, sorted, in O(n log k). */
static void select_top_k(m40_candidate *cand, int32_t n, int32_t k) {
    for (int32_t i = k / 2 - 1; i >= 0; i--)
        sift_down(cand, k, i);
    for (int32_t i = k; i < n; i++) {
        if (cand_before(&cand[i], &cand[0])) {
            swap_cand(&cand[i], &cand[0]);
            sift_down(cand, k, 0);
        }
    }
    qsort(cand, (size_t)k, sizeof *cand, cand_cmp);
}

/* probs[i] = softmax(cand[i].logit / temp) over the first n (sorted, so the
 * first is the maximum). */
static void softmax(const m40_candidate *cand, int32_t n, float temp, float *probs) {
    double max = cand[0].logit, sum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        double e = exp(((double)cand[i].logit - max) / temp);
        probs[i] = (float)e;
        sum += e;
    }
    for (int32_t i = 0; i < n; i++)
        probs[i] = (float)(probs[i] / sum);
}

static int32_t argmax(const m40_candidate *cand, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++) {
        if (cand_before(&cand[i], &cand[best]))
            best = i;
    }
    return best;
}

int m40_sampler_sample(m40_sampler *s, const float *logits, int32_t *token, m40_err *err) {
    return m40_sampler_sample_masked(s, logits, NULL, token, err);
}

int m40_sampler_sample_masked(m40_sampler *s, const float *logits, const uint8_t *allowed,
                              int32_t *token, m40_err *err) {
    const m40_sampler_params *p = &s->params;
    if (load_candidates(s, logits, allowed, err))
        return -1;
    m40_candidate *cand = s->cand;
    int32_t n = s->n_vocab;
    if (p->temperature <= 0.0f) {
        int32_t best = argmax(cand, n);
        if (cand[best].logit == -INFINITY)
            return m40_errk(err, M40_ERR_BAD_INPUT, "sampler: every token is banned");
        *token = cand[best].id;
        return 0;
    }
    if (p->top_k > 0 && p->top_k < n) {
        select_top_k(cand, n, p->top_k);
        n = p->top_k;
    } else {
        qsort(cand, (size_t)n, sizeof *cand, cand_cmp);
    }
    while (n > 0 && cand[n - 1].logit == -INFINITY)
        n--; /* banned tokens never survive */
    if (n == 0)
        return m40_errk(err, M40_ERR_BAD_INPUT, "sampler: every token is banned");

    softmax(cand, n, 1.0f, s->probs);
    if (p->top_p < 1.0f) {
        double mass = 0.0;
        for (int32_t i = 0; i < n; i++) {
            mass += s->probs[i];
            if (mass >= p->top_p) {
                n = i + 1;
                break;
            }
        }
    }
    if (p->min_p > 0.0f) {
        float floor_p = p->min_p * s->probs[0];
        int32_t keep = 1;
        while (keep < n && s->probs[keep] >= floor_p)
            keep++;
        n = keep;
    }

    softmax(cand, n, p->temperature, s->probs);
    double u = m40_rng_uniform(&s->rng), acc = 0.0;
    for (int32_t i = 0; i < n; i++) {
        acc += s->probs[i];
        if (u < acc) {
            *token = cand[i].id;
            return 0;
        }
    }
    *token = cand[n - 1].id; /* u landed in the rounding slack past the sum */
    return 0;
}
