/* backend.h - what the engine asks of a backend: run tokens, get logits.
 *
 * A backend holds the model's weights in its own memory (or maps them), a
 * KV cache of n_slots sequences of n_ctx positions, and runs the one
 * forward pass of its kind (cpu/forward.c, cuda/forward.c). The engine only
 * sees this table of functions.
 *
 * Owns: nothing itself; each implementation owns its state.
 * Touches: nothing; knows nothing of scheduling, the server or the CLI.
 */
#ifndef M40_BACKEND_BACKEND_H
#define M40_BACKEND_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "util/err.h"

typedef enum m40_device_kind {
    M40_DEVICE_AUTO = 0, /* CUDA when usable, otherwise the CPU (with a notice) */
    M40_DEVICE_CPU = 1,
    M40_DEVICE_CUDA = 2,
} m40_device_kind;

/* What the KV cache stores (llama.cpp's --cache-type). */
typedef enum m40_kv_type {
    M40_KV_F16 = 0, /* the precision policy's default */
    M40_KV_F32 = 1, /* twice the memory; no rounding of keys and values */
} m40_kv_type;

typedef struct m40_backend_options {
    m40_device_kind device;
    int32_t gpu;        /* CUDA ordinal, -1: automatic */
    int32_t n_ctx;      /* positions per sequence */
    int32_t n_slots;    /* sequences */
    int32_t n_batch;    /* most tokens per forward chunk */
    int32_t n_threads;  /* CPU threads, 0: default */
    int32_t quiet;      /* no load report on stderr */
    int32_t no_graphs;  /* CUDA: launch each kernel of a decode step (no graph) */
    int32_t one_stream; /* CUDA: decode steps share the prefill stream (no overlap) */
    m40_kv_type kv_type;
} m40_backend_options;

typedef struct m40_backend {
    const char *name;      /* "cpu" or "cuda" */
    char device_desc[192]; /* e.g. "NVIDIA H100 80GB HBM3 (sm_90), cuBLAS on" */
    void *impl;
    /* Runs tokens[0..n) of `slot` at positions pos0.. and writes the last
     * token's logits to logits[n_vocab] (host memory). */
    int (*forward)(void *impl, int32_t slot, const int32_t *tokens, int32_t n, int32_t pos0,
                   float *logits, m40_err *err);
    /* The same, but only the argmax of the last logits comes back (greedy
     * decoding without moving the logits); NULL when the backend has no
     * faster path than forward + a host argmax. */
    int (*forward_greedy)(void *impl, int32_t slot, const int32_t *tokens, int32_t n, int32_t pos0,
                          int32_t *token, m40_err *err);
    /* Nonzero when a single-token forward may run at the same time as a
     * forward of several tokens (on another slot, from another thread):
     * the CUDA backend runs them on separate streams. Otherwise callers
     * must run one forward at a time. */
    int concurrent_decode;
    void (*destroy)(void *impl);
} m40_backend;

/* Creates the backend `opts->device` names for `model`. AUTO tries CUDA and
 * falls back to the CPU only when CUDA is unusable, saying so in *notice
 * (a line for the user; empty otherwise). CUDA asked for and unusable is an
 * error. */
int m40_backend_create(m40_backend *be, const m40_model *model, const m40_backend_options *opts,
                       char *notice, size_t notice_cap, m40_err *err);
void m40_backend_destroy(m40_backend *be);

#endif /* M40_BACKEND_BACKEND_H */
