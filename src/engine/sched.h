/* sched.h - the engine's step scheduler: the requests generating at once
 * share forward passes instead of taking turns.
 *
 * Each request (a member, one KV slot) hands over its tokens a piece at a
 * time: a prompt chunk of up to n_batch tokens, or one decode token, and
 * waits. A step gathers every member's waiting decode token and, on a
 * backend that runs everything on one stream, at most one prompt chunk
 * too, as one batch (backend.h's m40_batch), so a long prompt holds the
 * others up for one chunk at a time. On a backend whose decode steps run
 * beside prompt chunks (concurrent_decode: CUDA's two lanes), prompt chunks
 * run on their own, one at a time, beside the decode steps. Whoever waits
 * runs the step its piece is in (no scheduler thread): a step starts once
 * every decoding member's token is in, or when the longest waiter has
 * waited 5 ms. A member is decoding from the end of its prompt (or its
 * first decode token) until it leaves or starts another prompt.
 *
 * Chunk boundaries depend only on the prompt (n_batch tokens from position
 * 0) and the backend's batch invariance makes each row's result its own,
 * so what a request generates does not depend on what else runs.
 *
 * Owns: the waiting pieces and the step's batch buffers. Touches: the
 * backend, from the thread that runs a step.
 */
#ifndef M40_ENGINE_SCHED_H
#define M40_ENGINE_SCHED_H

#include <stdint.h>

#include "backend/backend.h"
#include "engine/engine.h"
#include "util/err.h"

typedef struct m40_sched m40_sched;

/* One request, from join to leave. */
typedef struct m40_sched_member {
    int decoding; /* its prompt is in, or it handed over a decode token: steps wait for its next */
} m40_sched_member;

int m40_sched_create(m40_sched **out, m40_backend *be, int32_t n_slots, int32_t n_ctx,
                     int32_t n_batch, int32_t n_vocab, m40_err *err);
void m40_sched_destroy(m40_sched *s);

void m40_sched_join(m40_sched *s, m40_sched_member *m);
void m40_sched_leave(m40_sched *s, m40_sched_member *m);

/* Runs ids[0..n) of `slot` at positions pos.. (refused alone, before it can
 * share a step, when a token, the slot or a position is out of range): n > 1 is a prompt (fed in
 * n_batch chunks, each a step of its own), n == 1 a decode token. The last
 * token gives its logits to logits[n_vocab] or, with `argmax` not NULL, the
 * backend's greedy pick to *argmax (only on a backend with has_greedy). */
int m40_sched_run(m40_sched *s, m40_sched_member *m, int32_t slot, const int32_t *ids, int32_t n,
                  int32_t pos, float *logits, int32_t *argmax, m40_err *err);

/* The same, with every token's logits in logits[n][n_vocab]: each chunk
 * of n_batch is a step of its own (scoring text: perplexity). */
int m40_sched_run_every(m40_sched *s, m40_sched_member *m, int32_t slot, const int32_t *ids,
                        int32_t n, int32_t pos, float *logits, m40_err *err);
/* The totals so far. */
m40_step_stats m40_sched_stats_get(m40_sched *s);

#endif /* M40_ENGINE_SCHED_H */
