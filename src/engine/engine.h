/* engine.h - a loaded model ready to generate: the one generation loop the
 * CLI and the server share.
 *
 * The engine owns the model, its tokenizer and a backend with n_slots KV
 * slots. m40_engine_generate runs one request on one slot: tokenize, prefill,
 * then sample / decode until a stop rule fires, handing text to a callback
 * as it becomes final (whole UTF-8 characters, never the start of a stop
 * string that may still match). Stop rules: an end-of-generation token (EOS,
 * EOT...), a stop string (matched across token boundaries), max_tokens, a
 * full context, or the callback asking to cancel.
 *
 * Several threads may generate at once, each on its own slot: their
 * forward steps are batched (sched.h: each step runs every waiting decode
 * token and a prompt chunk), and what each request generates does not
 * depend on the others.
 *
 * Owns: model, tokenizer, backend, per-slot state, the step scheduler.
 * Touches: nothing of HTTP or the terminal.
 */
#ifndef M40_ENGINE_ENGINE_H
#define M40_ENGINE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "chat/tools.h"
#include "engine/kv_store.h"
#include "grammar/grammar.h"
#include "model/model.h"
#include "sampling/sampling.h"
#include "tokenizer/tokenizer.h"
#include "util/err.h"

typedef struct m40_engine_options {
    const char *model_path;
    /* a chat template (Jinja text) used instead of the model's
     * tokenizer.chat_template (llama.cpp's --chat-template-file); NULL: the
     * model's. Copied and compiled at open: a bad one fails there. */
    const char *chat_template;
    /* n_ctx 0: min(trained context, 4096); M40_CTX_TRAINED: the trained
     * context, or on CUDA the largest that fits (m40_engine_n_ctx) */
    m40_backend_options backend;
    /* the prompt cache's host-RAM store (kv_store.h, llama.cpp's
     * --cache-ram): bytes of evicted slots' K/V kept in host memory for
     * later prompts that start with their tokens; 0: none, SIZE_MAX: no
     * limit */
    size_t cache_ram;
} m40_engine_options;

typedef struct m40_engine m40_engine;

/* Loads the model and tokenizer and creates the backend. `notice` (if not
 * NULL) receives a line for the user when the device was chosen for them
 * (AUTO fell back to the CPU). */
int m40_engine_open(m40_engine **out, const m40_engine_options *opts, char *notice,
                    size_t notice_cap, m40_err *err);
void m40_engine_close(m40_engine *e);

const m40_model *m40_engine_model(const m40_engine *e);
const m40_tokenizer *m40_engine_tokenizer(const m40_engine *e);
/* The engine's backend, for what the engine does not wrap: its description,
 * memory and device measurements (backend.h). */
m40_backend *m40_engine_backend(m40_engine *e);
int32_t m40_engine_n_ctx(const m40_engine *e);
int32_t m40_engine_n_slots(const m40_engine *e);

/* A sequence its caller drives token by token (bench): one slot, taking
 * part in the engine's steps from begin to end as a generating request
 * does, so steps wait for its next token as for theirs. */
typedef struct m40_engine_seq m40_engine_seq;
int m40_engine_seq_begin(m40_engine *e, int32_t slot, m40_engine_seq **out, m40_err *err);
/* Runs ids[0..n) at positions pos.. on the sequence's slot, beside other
 * threads' steps exactly as generation does (prompt chunks of n_batch
 * tokens), and gives the greedy next token. */
int m40_engine_seq_step(m40_engine_seq *s, const m40_token *ids, int32_t n, int32_t pos,
                        m40_token *next, m40_err *err);
/* Runs ids[0..n) at positions pos.. on the sequence's slot and gives every
 * token's logits, logits[n][n_vocab] (scoring text: perplexity.h). Each
 * n_batch chunk is a step of its own, which other requests' steps wait for. */
int m40_engine_seq_logits(m40_engine_seq *s, const m40_token *ids, int32_t n, int32_t pos,
                          float *logits, m40_err *err);
void m40_engine_seq_end(m40_engine_seq *s);

/* One m40_engine_seq_step of a sequence begun and ended around it. */
int m40_engine_step_greedy(m40_engine *e, int32_t slot, const m40_token *ids, int32_t n,
                           int32_t pos, m40_token *next, m40_err *err);

/* What the steps so far did (engine/sched.h): forward passes, the tokens
 * they ran, and how many requests' decode tokens each carried. */
typedef struct m40_step_stats {
    uint64_t steps;       /* forward passes */
    uint64_t rows;        /* tokens they ran */
    uint64_t decode_rows; /* of which decode tokens (one per request a step) */
    /* steps by the decode tokens in them: [0] none (a prompt chunk alone),
     * [1] 1, [2] 2, [3] 3-4, [4] 5-8, [5] 9-16, [6] 17-32, [7] more */
    uint64_t by_decode[8];
    /* Time, host-measured: busy_s, the steps with decode tokens from
     * dispatch to results (upload, the forward, the download); turn_s over
     * `turns`, the decode lane idle between two such steps of the same
     * members, each of whose next token came in after the step before had
     * ended: the host's turn (tokens handed back, the members' own work,
     * the next step gathered), which a GPU does nothing in. */
    double busy_s, turn_s;
    uint64_t turns;
} m40_step_stats;
m40_step_stats m40_engine_step_stats(m40_engine *e);

/* One sampled token's log-probability under the model (the log-softmax of
 * the raw logits, before bias, penalties or temperature), and the n_top
 * most likely tokens' (most likely first; ties by lower id). */
#define M40_MAX_TOP_PROBS 20
typedef struct m40_token_prob {
    m40_token token;
    float logprob;
    int32_t n_top;
    m40_token top[M40_MAX_TOP_PROBS];
    float top_logprob[M40_MAX_TOP_PROBS];
} m40_token_prob;

/* Receives each sampled token's probabilities (gen params' n_probs >= 0),
 * in order, before its text; returns non-zero to cancel. */
typedef int (*m40_prob_fn)(void *user, const m40_token_prob *p);

typedef struct m40_gen_params {
    m40_sampler_params sampling;
    int32_t n_probs;     /* < 0: none; else on_prob gets each token and its top n_probs */
    m40_prob_fn on_prob; /* with n_probs >= 0 */
    void *prob_user;
    int32_t max_tokens;      /* < 0: until the context is full */
    const char *const *stop; /* stop strings (not included in the output) */
    size_t n_stop;
    int parse_special; /* special tokens' texts in the prompt become tokens */
    int add_special;   /* add BOS (and EOS) as the vocabulary asks */
    int ignore_eos;    /* keep going past end-of-generation tokens */
    /* the output must be a sentence of this grammar (constrained sampling:
     * only tokens that continue it are sampled, end-of-generation only once
     * it is whole, and it ends when nothing may follow); NULL: free text.
     * Not owned; shared read-only by any number of requests. */
    const m40_grammar *grammar;
    /* the prompt cache (llama.cpp's cache_prompt; default on): the K/V the
     * slot holds of the longest prefix this prompt shares with the tokens
     * it ran last is kept, and only the rest of the prompt runs */
    int cache_prompt;
    /* when the context fills: keep the first n_keep tokens (-1: the whole
     * prompt), drop the oldest half of the rest and go on (llama.cpp's
     * --context-shift); off: stop with M40_FINISH_CONTEXT */
    int context_shift;
    int32_t n_keep;
} m40_gen_params;

/* The tokens' bytes as a grammar trie (grammar.h): control, unknown and
 * unused tokens have none, so no grammar allows them; *eog (malloc'd,
 * *n_eog entries) lists the end-of-generation tokens, which the engine
 * allows once a grammar's text is whole. */
int m40_grammar_vocab_of(const m40_tokenizer *tok, m40_grammar_vocab **out, m40_token **eog,
                         int32_t *n_eog, m40_err *err);

/* Defaults: llama.cpp's sampling defaults, 128 tokens, add_special and
 * cache_prompt on. */
m40_gen_params m40_gen_default_params(void);

typedef enum m40_finish {
    M40_FINISH_STOP = 0,    /* EOS/EOT or a stop string */
    M40_FINISH_LENGTH = 1,  /* max_tokens */
    M40_FINISH_CONTEXT = 2, /* the context is full */
    M40_FINISH_CANCEL = 3,  /* the callback asked to stop */
} m40_finish;

/* "stop", "length", "length" (context full, as OpenAI reports it), "cancelled" */
const char *m40_finish_name(m40_finish f);

/* Upper bounds (seconds) of the inter-token latency buckets. */
#define M40_ITL_BUCKETS 10
extern const double m40_itl_bounds[M40_ITL_BUCKETS];

typedef struct m40_gen_stats {
    int32_t n_prompt;   /* prompt tokens */
    int32_t n_cached;   /* of which the slot already held (the prompt cache) */
    int32_t n_restored; /* of those, copied back from the host-RAM store */
    int32_t n_shifts;   /* times the context filled and was shifted */
    int32_t n_gen;      /* tokens sampled (the stop token included) */
    double prefill_ms;  /* prompt forward */
    double decode_ms;   /* all single-token forwards and sampling */
    double ttft_ms;     /* start of the call to the first token */
    /* the time from each token to the next, counted by bucket: itl[b]
     * counts gaps <= m40_itl_bounds[b] (and above the bucket before), the
     * last entry the longer ones */
    uint32_t itl[M40_ITL_BUCKETS + 1];
    m40_finish finish;
} m40_gen_stats;

/* Receives final text; returns non-zero to cancel the generation. */
typedef int (*m40_text_fn)(void *user, const char *text, size_t len);

/* Renders `messages` (a cJSON array of OpenAI-style messages: role,
 * content as a string or text parts, assistants' tool_calls, tool results)
 * with the model's chat template (tokenizer.chat_template), or with
 * ChatML when the model has none (*used_fallback is then set). `tools`
 * (OpenAI's array, or NULL) go to a template that renders them, else into
 * a system message (chat/tools.h). bos_token and eos_token are set from
 * the vocabulary. *out is malloc'd. */
struct cJSON;
int m40_engine_chat_prompt(const m40_engine *e, const struct cJSON *messages,
                           const struct cJSON *tools, int add_generation_prompt, char **out,
                           size_t *out_len, int *used_fallback, m40_err *err);

/* How many of ids[0..n) the slot's prompt cache holds (the common prefix
 * with what it ran last), to pick a slot for a prompt. Only for a slot no
 * call is running on. */
int32_t m40_engine_slot_match(const m40_engine *e, int32_t slot, const m40_token *ids, size_t n);

/* What the host-RAM store holds and has done (kv_store.h; all zero
 * without one). */
typedef m40_kv_store_stats m40_engine_store_stats;
m40_engine_store_stats m40_engine_store_stats_get(m40_engine *e);

/* The format the model's replies write tool calls in (chat/tools.h). */
m40_tool_format m40_engine_tool_format(const m40_engine *e);

/* Whether text starts with the BOS token's text (a chat template that
 * writes BOS itself: then no BOS should be added when tokenizing it). */
int m40_engine_starts_with_bos(const m40_engine *e, const char *text, size_t len);

/* Generates a continuation of `prompt` on `slot` (0 <= slot < n_slots).
 * The slot's K/V past the longest prefix the prompt shares with what the
 * slot ran last is discarded (all of it without cache_prompt). Several threads may generate
 * at once, each on its own slot: their forward steps share batches (a
 * prompt in n_batch chunks, each beside the others' decode tokens), while
 * sampling and detokenizing run in parallel; the text is the same bytes as
 * the request alone would give. One slot must not be used by two calls at
 * once. */
int m40_engine_generate(m40_engine *e, int32_t slot, const char *prompt, size_t prompt_len,
                        const m40_gen_params *p, m40_text_fn on_text, void *user,
                        m40_gen_stats *stats, m40_err *err);

/* The same from token ids (no tokenization, no BOS added). */
int m40_engine_generate_ids(m40_engine *e, int32_t slot, const m40_token *ids, size_t n_ids,
                            const m40_gen_params *p, m40_text_fn on_text, void *user,
                            m40_gen_stats *stats, m40_err *err);

#endif /* M40_ENGINE_ENGINE_H */
