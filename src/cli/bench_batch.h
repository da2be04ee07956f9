/* bench_batch.h - `m40-llm bench --batch B1,B2,...`, see bench_batch.c.
 *
 * Owns: nothing past the call. Touches: stdout (its table).
 */
#ifndef M40_CLI_BENCH_BATCH_H
#define M40_CLI_BENCH_BATCH_H

#include "backend/backend.h"

#define M40_BENCH_MAX_BATCH 256

typedef struct m40_batch_args {
    const char *model;
    int sizes[32]; /* sequences at once, one table row each */
    int n_sizes;
    int n_prompt, n_gen, reps, json;
    m40_backend_options backend; /* n_ctx and n_slots filled in here */
} m40_batch_args;

/* Runs the measurement and prints it; returns an M40_EXIT_* code. */
int m40_bench_batch(const m40_batch_args *a);

#endif /* M40_CLI_BENCH_BATCH_H */
