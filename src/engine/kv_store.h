/* kv_store.h - the prompt cache's host-RAM store (llama.cpp's --cache-ram).
 *
 * A slot keeps the K/V of the tokens it ran last, so the next prompt on it
 * runs only what it does not share with them (engine.h, cache_prompt).
 * When a prompt that shares little with a slot displaces its tokens (one
 * more chat than there are slots), the slot's tokens and the backend's
 * copy of their K/V (m40_backend_kv_save) come here, into host memory; a
 * later prompt that starts with more of an entry's tokens than its slot
 * holds gets that prefix copied back instead of running it again.
 *
 * The store holds at most `budget` bytes (K/V copies and token lists); the
 * least recently used entries leave first. An entry whose tokens begin a
 * newer entry's leaves too: the newer one holds all it did.
 *
 * Owns: the entries. Thread-safe: one mutex, held while an entry is copied
 * back, so no entry leaves while it is being read.
 */
#ifndef M40_ENGINE_KV_STORE_H
#define M40_ENGINE_KV_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tokenizer.h"
#include "util/err.h"

typedef struct m40_kv_store m40_kv_store;

/* budget: bytes (SIZE_MAX: no limit). */
int m40_kv_store_create(m40_kv_store **out, size_t budget, m40_err *err);
void m40_kv_store_destroy(m40_kv_store *s);

/* Adds tokens[0..n) (copied) and their K/V copy `kv` of kv_bytes, which the
 * store takes over (and frees at once when it keeps nothing). Returns 1 when
 * kept, 0 when not: larger than the budget, a prefix of an entry it holds
 * (that entry is used again instead), or out of memory. */
int m40_kv_store_put(m40_kv_store *s, const m40_token *tokens, int32_t n, void *kv,
                     size_t kv_bytes);

/* Receives the chosen entry's K/V copy (n_saved positions) to copy its first
 * n positions back. */
typedef int (*m40_kv_store_copy_fn)(void *user, const void *kv, int32_t n_saved, int32_t n,
                                    m40_err *err);

/* Finds the entry sharing the longest prefix with ids[0..n_ids), counting
 * at most `limit` tokens; when that prefix is longer than `better_than`,
 * hands the entry to `copy` and writes its first len tokens to
 * tokens_out[len] (the caller's record of what its slot now holds). An
 * entry copied back whole leaves the store (the slot holds it now).
 * Returns len, 0 when nothing beats better_than, -1 when copy failed. */
int32_t m40_kv_store_restore(m40_kv_store *s, const m40_token *ids, int32_t n_ids, int32_t limit,
                             int32_t better_than, m40_kv_store_copy_fn copy, void *user,
                             m40_token *tokens_out, m40_err *err);

typedef struct m40_kv_store_stats {
    size_t bytes, budget;
    int32_t entries;
    uint64_t saved;    /* entries put (and kept) */
    uint64_t restored; /* prompts that got a prefix back */
    uint64_t tokens_restored;
    uint64_t evicted; /* entries that left for room or as a newer entry's prefix */
} m40_kv_store_stats;
m40_kv_store_stats m40_kv_store_get_stats(m40_kv_store *s);

#endif /* M40_ENGINE_KV_STORE_H */
