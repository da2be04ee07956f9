/* bench_contend.h - `m40-llm bench --contend N`, see bench_contend.c.
 *
 * Owns: nothing past the call. Touches: stdout (its report).
 */
#ifndef M40_CLI_BENCH_CONTEND_H
#define M40_CLI_BENCH_CONTEND_H

#include "backend/backend.h"

typedef struct m40_contend_args {
    const char *model;
    int prompt;                  /* N: the prompt prefilled beside the decoding request */
    int decode;                  /* tokens decoded alone, for the baseline */
    int json;                    /* one JSON object instead of the text report */
    m40_backend_options backend; /* n_ctx, n_slots, n_batch filled in here */
} m40_contend_args;

/* Runs the measurement and prints it; returns an M40_EXIT_* code. */
int m40_bench_contend(const m40_contend_args *a);

#endif /* M40_CLI_BENCH_CONTEND_H */
