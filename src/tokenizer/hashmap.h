/* hashmap.h - the two lookup tables the tokenizers live on.
 *
 *  m40_strmap: byte string -> index into a caller-owned key array (token
 *              text -> token id; merge line -> rank). Open addressing,
 *              keys are (ptr, len) so embedded NULs are fine.
 *  m40_pairmap: 64-bit key -> two int32 values (a (left id, right id)
 *              merge -> its rank and the id of the merged text).
 *
 * Owns: its slot arrays. Touches: the key array it was given (read-only).
 */
#ifndef M40_TOKENIZER_HASHMAP_H
#define M40_TOKENIZER_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tokenizer.h"
#include "util/err.h"

uint64_t m40_hash_bytes(const void *data, size_t len);

typedef struct m40_strmap {
    const m40_tok_str *keys; /* keys[i] for every inserted index i */
    int32_t *slots;          /* key index, -1 when empty */
    uint32_t *hashes;        /* low 32 bits of the key's hash, per slot */
    size_t mask;             /* capacity - 1 (capacity is a power of two) */
    size_t count;
} m40_strmap;

/* Sized for up to max_keys keys (load factor <= 1/2). */
int m40_strmap_init(m40_strmap *m, const m40_tok_str *keys, size_t max_keys, m40_err *err);
void m40_strmap_free(m40_strmap *m);
/* Inserts key index i; returns -1 when inserted, or the index already
 * holding an equal key (nothing inserted). */
int32_t m40_strmap_insert(m40_strmap *m, int32_t i);
/* Index of the key equal to s[0..len), or -1. */
int32_t m40_strmap_find(const m40_strmap *m, const char *s, size_t len);

typedef struct m40_pairmap {
    uint64_t *keys; /* UINT64_MAX when empty */
    int32_t *a, *b;
    size_t mask;
    size_t count;
} m40_pairmap;

int m40_pairmap_init(m40_pairmap *m, size_t max_keys, m40_err *err);
void m40_pairmap_free(m40_pairmap *m);
/* Inserts unless present (the first insert wins); returns 1 if inserted. */
int m40_pairmap_insert(m40_pairmap *m, uint64_t key, int32_t a, int32_t b);
/* Returns 1 and fills *a, *b when found. */
int m40_pairmap_find(const m40_pairmap *m, uint64_t key, int32_t *a, int32_t *b);

#endif /* M40_TOKENIZER_HASHMAP_H */
