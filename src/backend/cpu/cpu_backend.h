/* cpu_backend.h - the reference forward pass on the CPU.
 *
 * Runs the llama-family forward (forward.c) over weights in their GGUF type,
 * dequantizing one row at a time, with an FP16 KV cache and FP32 math,
 * threaded with OpenMP. Every other backend is checked against this one.
 *
 * Owns: the KV cache (n_slots sequences x n_ctx positions) and activation
 * buffers. Touches: the model's weights, read-only.
 */
#ifndef M40_BACKEND_CPU_CPU_BACKEND_H
#define M40_BACKEND_CPU_CPU_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "util/err.h"

typedef struct m40_cpu m40_cpu;

typedef struct m40_cpu_options {
    int32_t n_ctx;     /* positions per sequence (KV capacity) */
    int32_t n_slots;   /* sequences decoded side by side */
    int32_t n_batch;   /* most tokens one forward call takes (prefill chunk) */
    int32_t n_threads; /* 0: OpenMP's default */
    uint32_t k_type;   /* GGML type of the cached keys: F16 (default), F32, Q8_0, Q4_0 */
    uint32_t v_type;   /* and of the values (--cache-type-k / -v) */
    /* weights read into memory so far (bytes), NULL: no reports */
    void (*progress)(void *user, uint64_t done, uint64_t total);
    void *progress_user;
} m40_cpu_options;

/* Allocates the KV cache and activations and reads every weight page of
 * the mapped file once (reporting progress), so the first request does not
 * pay for the disk. */
int m40_cpu_create(m40_cpu **out, const m40_model *model, const m40_cpu_options *opts,
                   m40_err *err);
void m40_cpu_destroy(m40_cpu *cpu);

/* Runs tokens[0..n) of sequence `slot` at positions pos0 .. pos0+n-1, writing
 * their keys and values into the slot's cache, and leaves the logits of the
 * last token in logits[n_vocab]. Positions before pos0 must have been run
 * already. n may exceed n_batch (it is processed in chunks). */
int m40_cpu_forward(m40_cpu *cpu, int32_t slot, const int32_t *tokens, int32_t n, int32_t pos0,
                    float *logits, m40_err *err);

/* One forward over n tokens of several sequences: token i at position
 * pos[i] of slot slots[i]; the logits of the tokens with want[i] set go, in
 * token order, to logits[][n_vocab]. The caller (backend.c) has checked
 * the batch (backend.h's rules); n may exceed n_batch. Each token's result
 * is what m40_cpu_forward gives it: every token's arithmetic is its own. */
int m40_cpu_forward_batch(m40_cpu *cpu, int32_t n, const int32_t *tokens, const int32_t *slots,
                          const int32_t *pos, const uint8_t *want, float *logits);

/* Threads the forward uses. */
int m40_cpu_threads(const m40_cpu *cpu);

/* Bytes of the KV cache and of the activation buffers. */
void m40_cpu_memory(const m40_cpu *cpu, size_t *kv, size_t *scratch);

/* Bytes one position of a slot takes in the cache (every layer's K and V
 * row). */
size_t m40_cpu_kv_pos_bytes(const m40_cpu *cpu);
/* Copies positions [0, n) of slot's K/V to `host` (to_host) or back from
 * it. host holds n_host >= n positions as backend.h's m40_backend_kv_save
 * lays them out: per layer, n_host K rows then n_host V rows. */
void m40_cpu_kv_copy(m40_cpu *cpu, int32_t slot, int32_t n, void *host, int32_t n_host,
                     int to_host);

#endif /* M40_BACKEND_CPU_CPU_BACKEND_H */
