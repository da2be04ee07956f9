/* engine.c - see engine.h. */
#include "engine/engine.h"

#include <pthread.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "chat/chat.h"
#include "chat/tools.h"
#include "engine/kv_store.h"
#include "engine/sched.h"
#include "gguf/gguf.h"
#include "grammar/grammar.h"
#include "util/clock.h"

struct m40_engine {
    m40_model *model;
    m40_tokenizer *tok;
    m40_backend *be;
    int32_t n_ctx, n_slots, n_batch;
    float *logits; /* [n_slots][n_vocab]: each slot samples from its own */
    /* Callers generating on different slots from different threads share
     * forward passes: each step runs every waiting decode token (and a
     * prompt chunk) at once (sched.h). */
    m40_sched *sched;
    /* the tokens' bytes as a trie for grammars, made on first use */
    pthread_mutex_t gvocab_lock;
    m40_grammar_vocab *gvocab;
    m40_token *eog; /* the end-of-generation tokens */
    int32_t n_eog;
    char *chat_template; /* the options' template (owned), or NULL: the model's */
    /* what the template does with tools (chat/tools.h), found once at open */
    int renders_tools;
    m40_tool_format tool_format;
    /* the prompt cache: per slot, the tokens whose K/V the slot holds, in
     * order from position 0 ([n_slots][n_ctx]; each slot's are touched only
     * by the one call running on it) */
    m40_token *slot_tokens;
    int32_t *slot_n;
    /* the host-RAM store of slots' K/V that prompts displaced; NULL: none */
    m40_kv_store *store;
};

/* ---- set-up ------------------------------------------------------------- */

static void find_tools_format(m40_engine *e);

int m40_engine_open(m40_engine **out, const m40_engine_options *opts, char *notice,
                    size_t notice_cap, m40_err *err) {
    *out = NULL;
    m40_engine *e = calloc(1, sizeof *e);
    if (!e)
        return m40_errf(err, "out of memory");
    pthread_mutex_init(&e->gvocab_lock, NULL);
    if (opts->chat_template) {
        m40_chat_template *t = NULL;
        if (!(e->chat_template = strdup(opts->chat_template))) {
            m40_errf(err, "out of memory");
            goto fail;
        }
        if (m40_chat_template_compile(e->chat_template, strlen(e->chat_template), &t, err))
            goto fail;
        m40_chat_template_free(t);
    }
    if (m40_model_load(&e->model, opts->model_path, err))
        goto fail;
    e->tok = m40_tokenizer_load_gguf(opts->model_path, err);
    if (!e->tok) {
        m40_err_wrap(err, "%s", opts->model_path);
        goto fail;
    }
    if ((int64_t)m40_tokenizer_n_tokens(e->tok) > e->model->cfg.n_vocab) {
        m40_errf(err, "%s: the tokenizer has %zu tokens but the model only %d logits",
                 opts->model_path, m40_tokenizer_n_tokens(e->tok), e->model->cfg.n_vocab);
        goto fail;
    }
    m40_backend_options bo = opts->backend;
    if (bo.n_ctx == 0)
        bo.n_ctx = e->model->cfg.n_ctx_train < 4096 ? e->model->cfg.n_ctx_train : 4096;
    if (bo.n_slots <= 0)
        bo.n_slots = 1;
    if (bo.n_batch <= 0)
        bo.n_batch = 512;
    find_tools_format(e);
    if (opts->cache_ram > 0 && m40_kv_store_create(&e->store, opts->cache_ram, err))
        goto fail;
    if (m40_backend_create(&e->be, e->model, &bo, notice, notice_cap, err))
        goto fail;
    e->n_ctx = m40_backend_n_ctx(e->be); /* M40_CTX_TRAINED: what the backend took */
    e->n_slots = bo.n_slots;
    e->n_batch = bo.n_batch;
    e->logits = malloc((size_t)bo.n_slots * (size_t)e->model->cfg.n_vocab * sizeof *e->logits);
    e->slot_tokens = malloc((size_t)bo.n_slots * (size_t)e->n_ctx * sizeof *e->slot_tokens);
    e->slot_n = calloc((size_t)bo.n_slots, sizeof *e->slot_n);
    if (!e->logits || !e->slot_tokens || !e->slot_n) {
        m40_errf(err, "out of memory");
        goto fail;
    }
    if (m40_sched_create(&e->sched, e->be, bo.n_slots, e->n_ctx, bo.n_batch, e->model->cfg.n_vocab,
                         err))
        goto fail;
    *out = e;
    return 0;
fail:
    m40_engine_close(e);
    return -1;
}

void m40_engine_close(m40_engine *e) {
    if (!e)
        return;
    m40_sched_destroy(e->sched);
    m40_backend_destroy(e->be);
    m40_tokenizer_free(e->tok);
    m40_model_free(e->model);
    free(e->logits);
    free(e->slot_tokens);
    free(e->slot_n);
    m40_kv_store_destroy(e->store);
    m40_grammar_vocab_free(e->gvocab);
    free(e->eog);
    free(e->chat_template);
    pthread_mutex_destroy(&e->gvocab_lock);
    free(e);
}

int m40_grammar_vocab_of(const m40_tokenizer *tok, m40_grammar_vocab **out, m40_token **eog,
                         int32_t *n_eog, m40_err *err) {
    *out = NULL;
    *eog = NULL;
    *n_eog = 0;
    int32_t n = (int32_t)m40_tokenizer_n_tokens(tok);
    const char **pieces = calloc((size_t)n, sizeof *pieces);
    size_t *lens = calloc((size_t)n, sizeof *lens);
    m40_token *ends = calloc((size_t)n, sizeof *ends);
    int32_t n_ends = 0;
    int rc = pieces && lens && ends ? 0 : m40_errf(err, "out of memory");
    for (int32_t t = 0; rc == 0 && t < n; t++) {
        if (m40_tokenizer_is_eog(tok, t))
            ends[n_ends++] = t;
        m40_token_type ty = m40_tokenizer_token_type(tok, t);
        if (ty == M40_TOKEN_TYPE_CONTROL || ty == M40_TOKEN_TYPE_UNKNOWN ||
            ty == M40_TOKEN_TYPE_UNUSED)
            continue;
        rc = m40_token_to_piece(tok, t, 0, &pieces[t], &lens[t], err);
    }
    if (rc == 0)
        rc = m40_grammar_vocab_create(pieces, lens, n, out, err);
    if (rc == 0) {
        *eog = ends;
        *n_eog = n_ends;
        ends = NULL;
    }
    free(pieces);
    free(lens);
    free(ends);
    return rc;
}

/* The grammar trie and end-of-generation tokens, made by the first request
 * with a grammar (under the lock). */
static int grammar_vocab(m40_engine *e, m40_err *err) {
    pthread_mutex_lock(&e->gvocab_lock);
    int rc = e->gvocab ? 0 : m40_grammar_vocab_of(e->tok, &e->gvocab, &e->eog, &e->n_eog, err);
    pthread_mutex_unlock(&e->gvocab_lock);
    return rc;
}

const m40_model *m40_engine_model(const m40_engine *e) {
    return e->model;
}
const m40_tokenizer *m40_engine_tokenizer(const m40_engine *e) {
    return e->tok;
}
m40_backend *m40_engine_backend(m40_engine *e) {
    return e->be;
}
int32_t m40_engine_n_slots(const m40_engine *e) {
    return e->n_slots;
}

m40_step_stats m40_engine_step_stats(m40_engine *e) {
    return m40_sched_stats_get(e->sched);
}

int32_t m40_engine_n_ctx(const m40_engine *e) {
    return e->n_ctx;
}

m40_gen_params m40_gen_default_params(void) {
    m40_gen_params p;
    memset(&p, 0, sizeof p);
    p.sampling = m40_sampler_default_params();
    p.max_tokens = 128;
    p.add_special = 1;
    p.n_probs = -1;
    p.cache_prompt = 1;
    return p;
}

const char *m40_finish_name(m40_finish f) {
    switch (f) {
        case M40_FINISH_STOP:
            return "stop";
        case M40_FINISH_LENGTH:
            return "length";
        case M40_FINISH_CONTEXT:
            return "length";
        case M40_FINISH_CANCEL:
            return "cancelled";
    }
    return "stop";
}

/* ---- output: stop strings across token boundaries ------------------------ */

/* Text waits in `pend` while its tail could still be the start of a stop
 * string; everything before that is final and goes to the callback. */
typedef struct out_filter {
    const char *const *stop;
    size_t n_stop;
    char *pend;
    size_t len, cap;
    m40_text_fn fn;
    void *user;
    int cancelled;
} out_filter;

static void emit(out_filter *f, size_t n) {
    if (n == 0)
        return; /* also: pend may still be NULL (nothing pushed yet) */
    if (f->fn && !f->cancelled && f->fn(f->user, f->pend, n))
        f->cancelled = 1;
    memmove(f->pend, f->pend + n, f->len - n);
    f->len -= n;
}

/* The longest tail of pend that is a proper prefix of a stop string. */
static size_t held_tail(const out_filter *f) {
    size_t hold = 0;
    for (size_t i = 0; i < f->n_stop; i++) {
        size_t sl = strlen(f->stop[i]);
        for (size_t k = sl > 0 ? sl - 1 : 0; k > hold; k--) {
            if (k <= f->len && memcmp(f->pend + f->len - k, f->stop[i], k) == 0) {
                hold = k;
                break;
            }
        }
    }
    return hold;
}

/* Adds text; returns 1 when a stop string completed (the text before it is
 * emitted, the rest dropped), 0 otherwise, -1 when out of memory. */
static int filter_push(out_filter *f, const char *text, size_t n) {
    if (f->len + n > f->cap) {
        size_t cap = (f->len + n) * 2 + 64;
        char *p = realloc(f->pend, cap);
        if (!p)
            return -1;
        f->pend = p;
        f->cap = cap;
    }
    if (n)
        memcpy(f->pend + f->len, text, n); /* pend may be NULL when n is 0 */
    f->len += n;
    size_t cut = f->len + 1;
    for (size_t i = 0; i < f->n_stop; i++) {
        size_t sl = strlen(f->stop[i]);
        for (size_t at = 0; sl && at + sl <= f->len && at < cut; at++) {
            if (memcmp(f->pend + at, f->stop[i], sl) == 0) {
                cut = at;
                break;
            }
        }
    }
    if (cut <= f->len) {
        emit(f, cut);
        f->len = 0;
        return 1;
    }
    emit(f, f->len - held_tail(f));
    return 0;
}

/* ---- the generation loop ------------------------------------------------- */

static double now_ms(void) {
    return m40_clock_s() * 1e3;
}

const double m40_itl_bounds[M40_ITL_BUCKETS] = {0.005, 0.01, 0.02, 0.05, 0.1,
                                                0.2,   0.5,  1.0,  2.0,  5.0};

static void count_gap(m40_gen_stats *st, double gap_ms) {
    int b = 0;
    while (b < M40_ITL_BUCKETS && gap_ms / 1e3 > m40_itl_bounds[b])
        b++;
    st->itl[b]++;
}

static int greedy_on_device(const m40_engine *e, const m40_sampler_params *s) {
    return m40_backend_has_greedy(e->be) && s->temperature <= 0.0f && s->repeat_penalty == 1.0f &&
           s->presence_penalty == 0.0f && s->frequency_penalty == 0.0f && s->n_bias == 0;
}

/* Runs tokens at pos on the slot (sched.h: beside whatever else runs) and
 * picks the next token: the backend's argmax for plain greedy decoding on a
 * backend that has one, the sampler on the slot's logits otherwise (with
 * only the tokens `allowed` allows, when not NULL: a grammar's). Which of
 * the two depends only on the request, so its tokens do too. */
static int step_ex(m40_engine *e, m40_sched_member *mem, m40_sampler *smp, int32_t slot,
                   const m40_token *ids, int32_t n, int32_t pos, int want_logits,
                   const uint8_t *allowed, m40_token *next, m40_err *err) {
    float *logits = e->logits + (size_t)slot * (size_t)e->model->cfg.n_vocab;
    if (!want_logits && !allowed && greedy_on_device(e, &smp->params))
        return m40_sched_run(e->sched, mem, slot, ids, n, pos, NULL, next, err);
    if (m40_sched_run(e->sched, mem, slot, ids, n, pos, logits, NULL, err))
        return -1;
    return m40_sampler_sample_masked(smp, logits, allowed, next, err);
}

static int step(m40_engine *e, m40_sched_member *mem, m40_sampler *smp, int32_t slot,
                const m40_token *ids, int32_t n, int32_t pos, m40_token *next, m40_err *err) {
    return step_ex(e, mem, smp, slot, ids, n, pos, 0, NULL, next, err);
}

/* tok's log-probability in logits[n] and the top k (k <= M40_MAX_TOP_PROBS)
 * into p: log-softmax in double, the max subtracted first. */
static void token_probs(const float *logits, int32_t n, m40_token tok, int32_t k,
                        m40_token_prob *p) {
    float max = logits[0];
    for (int32_t i = 1; i < n; i++)
        max = logits[i] > max ? logits[i] : max;
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++)
        sum += exp((double)logits[i] - max);
    double lse = (double)max + log(sum);
    p->token = tok;
    p->logprob = (float)((double)logits[tok] - lse);
    p->n_top = 0;
    k = k < M40_MAX_TOP_PROBS ? k : M40_MAX_TOP_PROBS;
    for (int32_t i = 0; i < n && k > 0; i++) {
        /* insertion into the sorted top list: higher logit first, then lower id */
        int32_t at = p->n_top;
        while (at > 0 && logits[i] > logits[p->top[at - 1]])
            at--;
        if (at >= k)
            continue;
        int32_t last = p->n_top < k ? p->n_top : k - 1;
        for (int32_t j = last; j > at; j--)
            p->top[j] = p->top[j - 1];
        p->top[at] = i;
        if (p->n_top < k)
            p->n_top++;
    }
    for (int32_t j = 0; j < p->n_top; j++)
        p->top_logprob[j] = (float)((double)logits[p->top[j]] - lse);
}

struct m40_engine_seq {
    m40_engine *e;
    int32_t slot;
    m40_sched_member mem;
    m40_sampler smp; /* greedy, for a backend that cannot pick the token itself */
    int has_smp;
};

int m40_engine_seq_begin(m40_engine *e, int32_t slot, m40_engine_seq **out, m40_err *err) {
    *out = NULL;
    if (slot < 0 || slot >= e->n_slots)
        return m40_errf(err, "slot %d outside 0..%d", slot, e->n_slots - 1);
    m40_engine_seq *s = calloc(1, sizeof *s);
    if (!s)
        return m40_errf(err, "out of memory");
    s->e = e;
    s->slot = slot;
    e->slot_n[slot] = 0; /* its caller writes the slot's K/V as it likes */
    /* no sampler to set up when the backend picks the token */
    if (!m40_backend_has_greedy(e->be)) {
        m40_sampler_params sp = m40_sampler_default_params();
        sp.temperature = 0.0f;
        sp.repeat_penalty = 1.0f;
        sp.presence_penalty = sp.frequency_penalty = 0.0f;
        if (m40_sampler_init(&s->smp, &sp, e->model->cfg.n_vocab, err)) {
            free(s);
            return -1;
        }
        s->has_smp = 1;
    }
    m40_sched_join(e->sched, &s->mem);
    *out = s;
    return 0;
}

int m40_engine_seq_step(m40_engine_seq *s, const m40_token *ids, int32_t n, int32_t pos,
                        m40_token *next, m40_err *err) {
    if (!s->has_smp)
        return m40_sched_run(s->e->sched, &s->mem, s->slot, ids, n, pos, NULL, next, err);
    return step(s->e, &s->mem, &s->smp, s->slot, ids, n, pos, next, err);
}

int m40_engine_seq_logits(m40_engine_seq *s, const m40_token *ids, int32_t n, int32_t pos,
                          float *logits, m40_err *err) {
    return m40_sched_run_every(s->e->sched, &s->mem, s->slot, ids, n, pos, logits, err);
}

void m40_engine_seq_end(m40_engine_seq *s) {
    if (!s)
        return;
    m40_sched_leave(s->e->sched, &s->mem);
    if (s->has_smp)
        m40_sampler_free(&s->smp);
    free(s);
}

int m40_engine_step_greedy(m40_engine *e, int32_t slot, const m40_token *ids, int32_t n,
                           int32_t pos, m40_token *next, m40_err *err) {
    m40_engine_seq *s;
    if (m40_engine_seq_begin(e, slot, &s, err))
        return -1;
    int rc = m40_engine_seq_step(s, ids, n, pos, next, err);
    m40_engine_seq_end(s);
    return rc;
}

typedef struct gen_state {
    m40_sampler smp;
    int32_t n_prompt;      /* the prompt's tokens (context shift's n_keep -1) */
    m40_grammar_state *gs; /* with a grammar: the text's state against it */
    uint8_t *allowed;      /* with a grammar: n_vocab, the tokens it allows next */
    m40_detok_stream detok;
    out_filter out;
    m40_sched_member mem; /* its place among the requests running at once */
} gen_state;

/* With a grammar: which tokens may come next, into g->allowed (its text's
 * continuations, and the end-of-generation tokens once the text is a whole
 * sentence); *done when the text is whole and nothing may follow it, which
 * ends the generation. */
static int grammar_next(m40_engine *e, gen_state *g, const m40_gen_params *p, int *done,
                        m40_err *err) {
    *done = 0;
    if (!g->gs)
        return 0;
    int complete = m40_grammar_state_complete(g->gs);
    if (complete && !m40_grammar_state_can_continue(g->gs)) {
        *done = 1;
        return 0;
    }
    int32_t n;
    if (m40_grammar_state_mask(g->gs, e->gvocab, g->allowed, &n, err))
        return -1;
    for (int32_t i = 0; complete && !p->ignore_eos && i < e->n_eog; i++, n++)
        g->allowed[e->eog[i]] = 1;
    if (n == 0)
        return m40_errk(err, M40_ERR_BAD_INPUT,
                        "grammar: no token of the vocabulary can continue the text");
    return 0;
}

/* The context is full at pos: keeps the first n_keep tokens (the whole
 * prompt with n_keep < 0), drops half of the rest, the oldest, and runs
 * what remains after the kept ones again, so generation goes on at the
 * returned position (0: nothing can be dropped). llama.cpp shifts the
 * cache instead, rotating the kept keys to their new positions; running
 * them again costs a prompt chunk each time the context fills, but needs
 * no kernel and leaves every position's K/V exactly as a prompt of those
 * tokens would (the prompt cache keeps the first ones). */
static int32_t context_shift(m40_engine *e, gen_state *g, int32_t slot, const m40_gen_params *p,
                             int32_t pos, m40_err *err) {
    m40_token *cached = e->slot_tokens + (size_t)slot * (size_t)e->n_ctx;
    int32_t keep = p->n_keep < 0 ? g->n_prompt : p->n_keep;
    if (keep < 0 || keep > pos - 2)
        return 0;
    int32_t drop = (pos - keep) / 2;
    memmove(cached + keep, cached + keep + drop, (size_t)(pos - keep - drop) * sizeof *cached);
    int32_t n = pos - drop;
    e->slot_n[slot] = keep; /* past keep, the K/V is rewritten now */
    float *logits = e->logits + (size_t)slot * (size_t)e->model->cfg.n_vocab;
    if (m40_sched_run(e->sched, &g->mem, slot, cached + keep, n - keep, keep, logits, NULL, err))
        return -1;
    e->slot_n[slot] = n;
    return n;
}

/* With a grammar: the sampled token's bytes move its state on. */
static int grammar_take(m40_engine *e, gen_state *g, m40_token tok, m40_err *err) {
    const char *piece;
    size_t len;
    if (!g->gs)
        return 0;
    if (m40_token_to_piece(e->tok, tok, 0, &piece, &len, err))
        return -1;
    return m40_grammar_state_accept(g->gs, piece, len, err);
}

/* The host-RAM store keeps a slot's tokens when a prompt would overwrite
 * at least this many of them: fewer cost little to run again (a chat's
 * next turn overwrites none or one), while a copy moves the whole slot. */
#define M40_STORE_MIN_TOKENS 64

typedef struct restore_ctx {
    m40_backend *be;
    int32_t slot;
} restore_ctx;

static int restore_copy(void *user, const void *kv, int32_t n_saved, int32_t n, m40_err *err) {
    const restore_ctx *r = user;
    return m40_backend_kv_restore(r->be, r->slot, kv, n_saved, n, err);
}

/* The host-RAM store (kv_store.h), before a prompt runs on a slot that keeps
 * *keep of its tokens: the slot's tokens go to the store when the prompt
 * would overwrite many of them; then, if an entry shares more of the
 * prompt than *keep, its prefix is copied back into the slot and *keep
 * grows to it. What the prompt then runs is as without the store: the
 * restored K/V is, bit for bit, what a slot computed for those tokens. */
static int store_swap(m40_engine *e, int32_t slot, const m40_token *ids, int32_t n_ids,
                      int32_t *keep, m40_gen_stats *st, m40_err *err) {
    m40_token *cached = e->slot_tokens + (size_t)slot * (size_t)e->n_ctx;
    int32_t held = e->slot_n[slot];
    if (held - *keep >= M40_STORE_MIN_TOKENS) {
        size_t bytes = m40_backend_kv_bytes(e->be, held);
        void *kv = malloc(bytes);
        if (kv && m40_backend_kv_save(e->be, slot, held, kv, err)) {
            free(kv);
            return -1;
        }
        if (kv) /* no memory for the copy: the slot's tokens are just lost */
            m40_kv_store_put(e->store, cached, held, kv, bytes);
    }
    restore_ctx r = {e->be, slot};
    int32_t got =
        m40_kv_store_restore(e->store, ids, n_ids, n_ids - 2, *keep, restore_copy, &r, cached, err);
    if (got < 0) {
        e->slot_n[slot] = 0; /* the copy may have overwritten part of it */
        return -1;
    }
    if (got > 0) {
        *keep = got;
        st->n_restored = got;
    }
    return 0;
}

static int run_loop(m40_engine *e, int32_t slot, const m40_token *ids, size_t n_ids,
                    const m40_gen_params *p, gen_state *g, m40_gen_stats *st, double t_start,
                    m40_err *err) {
    if (n_ids == 0)
        return m40_errk(err, M40_ERR_BAD_INPUT, "the prompt is empty");
    if (n_ids >= (size_t)e->n_ctx)
        return m40_errk(err, M40_ERR_TOO_LONG, "the prompt has %zu tokens; the context holds %d",
                        n_ids, e->n_ctx);
    st->n_prompt = g->n_prompt = (int32_t)n_ids;
    for (size_t i = 0; i < n_ids; i++)
        m40_sampler_accept(&g->smp, ids[i]);
    /* the prompt cache: the slot already holds the K/V of the longest
     * common prefix of this prompt and what it ran last. The prompt's last
     * two tokens always run again: the last for its logits, and two so the
     * rest is a prompt chunk, computed as without the cache (one token
     * alone would be a decode step, whose sums round differently on CUDA) */
    m40_token *cached = e->slot_tokens + (size_t)slot * (size_t)e->n_ctx;
    int32_t keep = 0;
    while (p->cache_prompt && keep < e->slot_n[slot] && (size_t)keep + 2 < n_ids &&
           cached[keep] == ids[keep])
        keep++;
    if (e->store && p->cache_prompt && store_swap(e, slot, ids, (int32_t)n_ids, &keep, st, err))
        return -1;
    e->slot_n[slot] = keep; /* what follows is about to be overwritten */
    st->n_cached = keep;
    m40_token tok;
    double t0 = now_ms();
    const int probs = p->n_probs >= 0 && p->on_prob;
    const float *logits = e->logits + (size_t)slot * (size_t)e->model->cfg.n_vocab;
    int done;
    if (grammar_next(e, g, p, &done, err))
        return -1;
    if (done) { /* the grammar's only sentence is the empty text */
        st->finish = M40_FINISH_STOP;
        return 0;
    }
    const uint8_t *allowed = g->allowed;
    if (step_ex(e, &g->mem, &g->smp, slot, ids + keep, (int32_t)n_ids - keep, keep, probs, allowed,
                &tok, err))
        return -1;
    memcpy(cached + keep, ids + keep, (n_ids - (size_t)keep) * sizeof *ids);
    e->slot_n[slot] = (int32_t)n_ids;
    double t1 = now_ms();
    st->prefill_ms = t1 - t0;
    st->ttft_ms = t1 - t_start;
    int32_t pos = (int32_t)n_ids;
    int stop_string = 0; /* text after a matched stop string is dropped */
    st->finish = M40_FINISH_LENGTH;
    double t_tok = t1; /* when the latest token was picked */
    for (int go = p->max_tokens != 0; go;) {
        st->n_gen++;
        m40_sampler_accept(&g->smp, tok);
        if (probs) { /* the logits that picked tok are still in the slot's row */
            m40_token_prob tp;
            token_probs(logits, e->model->cfg.n_vocab, tok, p->n_probs, &tp);
            if (p->on_prob(p->prob_user, &tp)) {
                st->finish = M40_FINISH_CANCEL;
                break;
            }
        }
        if (!p->ignore_eos && m40_tokenizer_is_eog(e->tok, tok)) {
            st->finish = M40_FINISH_STOP;
            break;
        }
        if (grammar_take(e, g, tok, err))
            return -1;
        const char *text;
        size_t len;
        if (m40_detok_stream_feed(&g->detok, tok, &text, &len, err))
            return -1;
        int hit = filter_push(&g->out, text, len);
        if (hit < 0)
            return m40_errf(err, "out of memory");
        if (hit) {
            st->finish = M40_FINISH_STOP;
            stop_string = 1;
            break;
        }
        if (g->out.cancelled) {
            st->finish = M40_FINISH_CANCEL;
            break;
        }
        if (p->max_tokens >= 0 && st->n_gen >= p->max_tokens) {
            st->finish = M40_FINISH_LENGTH;
            break;
        }
        if (pos >= e->n_ctx) {
            int shifted = p->context_shift ? context_shift(e, g, slot, p, pos, err) : 0;
            if (shifted < 0)
                return -1;
            if (!shifted) {
                st->finish = M40_FINISH_CONTEXT;
                break;
            }
            pos = shifted;
            st->n_shifts++;
        }
        if (grammar_next(e, g, p, &done, err))
            return -1;
        if (done) {
            st->finish = M40_FINISH_STOP;
            break;
        }
        m40_token fed = tok;
        if (step_ex(e, &g->mem, &g->smp, slot, &tok, 1, pos, probs, allowed, &tok, err))
            return -1;
        cached[pos] = fed;
        e->slot_n[slot] = pos + 1;
        double t = now_ms();
        count_gap(st, t - t_tok); /* the previous token to this one */
        t_tok = t;
        pos++;
    }
    st->decode_ms = now_ms() - t1;
    if (stop_string || st->finish == M40_FINISH_CANCEL)
        return 0;
    /* Bytes the detokenizer still holds (an unfinished UTF-8 sequence), then
     * whatever was held back as a possible stop-string start, are final. */
    const char *text;
    size_t len;
    if (m40_detok_stream_flush(&g->detok, &text, &len, err))
        return -1;
    int hit = filter_push(&g->out, text, len);
    if (hit < 0)
        return m40_errf(err, "out of memory");
    if (hit)
        st->finish = M40_FINISH_STOP;
    emit(&g->out, g->out.len);
    return 0;
}

int m40_engine_generate_ids(m40_engine *e, int32_t slot, const m40_token *ids, size_t n_ids,
                            const m40_gen_params *p, m40_text_fn on_text, void *user,
                            m40_gen_stats *stats, m40_err *err) {
    double t_start = now_ms();
    m40_gen_stats st;
    memset(&st, 0, sizeof st);
    gen_state g;
    memset(&g, 0, sizeof g);
    if (m40_sampler_init(&g.smp, &p->sampling, e->model->cfg.n_vocab, err))
        return -1;
    if (p->grammar) {
        if (grammar_vocab(e, err) || m40_grammar_state_create(p->grammar, &g.gs, err) ||
            !(g.allowed = calloc((size_t)e->model->cfg.n_vocab, 1))) {
            if (g.gs && !g.allowed)
                m40_errf(err, "out of memory");
            m40_grammar_state_free(g.gs);
            m40_sampler_free(&g.smp);
            return -1;
        }
    }
    m40_detok_stream_init(&g.detok, e->tok, M40_DETOK_KEEP_LEADING_SPACE);
    g.out.stop = p->stop;
    g.out.n_stop = p->n_stop;
    g.out.fn = on_text;
    g.out.user = user;
    m40_sched_join(e->sched, &g.mem);
    int rc = run_loop(e, slot, ids, n_ids, p, &g, &st, t_start, err);
    m40_sched_leave(e->sched, &g.mem);
    m40_detok_stream_free(&g.detok);
    m40_sampler_free(&g.smp);
    m40_grammar_state_free(g.gs);
    free(g.allowed);
    free(g.out.pend);
    if (stats)
        *stats = st;
    return rc;
}

int m40_engine_generate(m40_engine *e, int32_t slot, const char *prompt, size_t prompt_len,
                        const m40_gen_params *p, m40_text_fn on_text, void *user,
                        m40_gen_stats *stats, m40_err *err) {
    m40_tokens ids = {0};
    unsigned flags = (p->add_special ? M40_TOKENIZE_ADD_SPECIAL : 0) |
                     (p->parse_special ? M40_TOKENIZE_PARSE_SPECIAL : 0);
    if (m40_tokenize(e->tok, prompt, prompt_len, flags, &ids, err)) {
        m40_tokens_free(&ids);
        return -1;
    }
    int rc = m40_engine_generate_ids(e, slot, ids.ids, ids.n, p, on_text, user, stats, err);
    m40_tokens_free(&ids);
    return rc;
}

/* ---- chat ------------------------------------------------------------------ */

/* Adds {"name": text of token id} to vars when the vocabulary has the id. */
static void add_token_var(cJSON *vars, const char *name, const m40_tokenizer *tok, m40_token id) {
    size_t len;
    const char *text = id == M40_TOKEN_NULL ? NULL : m40_tokenizer_token_text(tok, id, &len);
    char *copy = text ? malloc(len + 1) : NULL;
    if (!copy)
        return;
    memcpy(copy, text, len);
    copy[len] = '\0';
    cJSON_AddStringToObject(vars, name, copy);
    free(copy);
}

/* The model's chat template (malloc'd, NUL-terminated; *out NULL when the
 * model has none). */
static int template_source(const m40_engine *e, char **out, m40_err *err) {
    *out = NULL;
    if (e->chat_template)
        return (*out = strdup(e->chat_template)) ? 0 : m40_errf(err, "out of memory");
    m40_gguf_str tmpl = {NULL, 0};
    const m40_gguf *g = e->model->gguf;
    if (m40_gguf_find_kv(g, "tokenizer.chat_template") < 0)
        return 0;
    if (m40_gguf_get_str(g, "tokenizer.chat_template", &tmpl, err))
        return -1;
    if (!(*out = malloc(tmpl.len + 1)))
        return m40_errf(err, "out of memory");
    memcpy(*out, tmpl.ptr, tmpl.len);
    (*out)[tmpl.len] = '\0';
    return 0;
}

int32_t m40_engine_slot_match(const m40_engine *e, int32_t slot, const m40_token *ids, size_t n) {
    if (slot < 0 || slot >= e->n_slots)
        return 0;
    const m40_token *cached = e->slot_tokens + (size_t)slot * (size_t)e->n_ctx;
    int32_t k = 0;
    while (k < e->slot_n[slot] && (size_t)k < n && cached[k] == ids[k])
        k++;
    return k;
}

m40_engine_store_stats m40_engine_store_stats_get(m40_engine *e) {
    m40_engine_store_stats none = {0};
    return e->store ? m40_kv_store_get_stats(e->store) : none;
}

/* What the chat template does with tools: read once, at open (a template
 * that cannot be read counts as none here; rendering reports it). */
static void find_tools_format(m40_engine *e) {
    char *src = NULL;
    m40_err err = {0};
    if (template_source(e, &src, &err))
        src = NULL;
    m40_chat_tools_of(src, &e->renders_tools, &e->tool_format);
    free(src);
}

m40_tool_format m40_engine_tool_format(const m40_engine *e) {
    return e->tool_format;
}

int m40_engine_chat_prompt(const m40_engine *e, const struct cJSON *messages,
                           const struct cJSON *tools, int add_generation_prompt, char **out,
                           size_t *out_len, int *used_fallback, m40_err *err) {
    char *src = NULL;
    if (template_source(e, &src, err))
        return -1;
    *used_fallback = src == NULL;
    int renders = e->renders_tools;
    cJSON *vars = cJSON_CreateObject();
    cJSON *msgs = NULL;
    int rc = vars ? m40_chat_tools_prepare(messages, tools, renders, &msgs, err)
                  : m40_errf(err, "out of memory");
    if (rc == 0) {
        add_token_var(vars, "bos_token", e->tok, m40_tokenizer_bos(e->tok));
        add_token_var(vars, "eos_token", e->tok, m40_tokenizer_eos(e->tok));
        if (renders && cJSON_GetArraySize(tools) > 0)
            cJSON_AddItemToObject(vars, "tools", cJSON_Duplicate(tools, 1));
        rc = m40_chat_apply(src ? src : m40_chat_fallback_template(), msgs, add_generation_prompt,
                            vars, out, out_len, err);
    }
    cJSON_Delete(msgs);
    cJSON_Delete(vars);
    free(src);
    return rc;
}

int m40_engine_starts_with_bos(const m40_engine *e, const char *text, size_t len) {
    m40_token bos = m40_tokenizer_bos(e->tok);
    size_t blen;
    const char *btext = bos == M40_TOKEN_NULL ? NULL : m40_tokenizer_token_text(e->tok, bos, &blen);
    return btext && blen > 0 && len >= blen && memcmp(text, btext, blen) == 0;
}
