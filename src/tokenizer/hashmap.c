/* hashmap.c - see hashmap.h. */
#include "tokenizer/hashmap.h"

#include <stdlib.h>
#include <string.h>

static uint64_t mix64(uint64_t x) {
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    return x;
}

/* Eight bytes at a time: token texts are short and this runs once per
 * lookup on the encoder's hot path. Quality only needs to be good enough
 * for linear probing at load factor 1/2. */
uint64_t m40_hash_bytes(const void *data, size_t len) {
    const unsigned char *p = data;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (len * 0xff51afd7ed558ccdull);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = mix64(h ^ w) + 0x9E3779B97F4A7C15ull;
        p += 8;
        len -= 8;
    }
    if (len) {
        uint64_t w = 0;
        memcpy(&w, p, len);
        h = mix64(h ^ w ^ ((uint64_t)len << 56));
    }
    return mix64(h);
}

static size_t capacity_for(size_t max_keys) {
    size_t cap = 16;
    while (cap < max_keys * 2)
        cap *= 2;
    return cap;
}

int m40_strmap_init(m40_strmap *m, const m40_tok_str *keys, size_t max_keys, m40_err *err) {
    memset(m, 0, sizeof *m);
    if (max_keys > SIZE_MAX / 8 || max_keys > (size_t)INT32_MAX)
        return m40_errf(err, "hash map: %zu keys is too many", max_keys);
    size_t cap = capacity_for(max_keys);
    m->slots = malloc(cap * sizeof *m->slots);
    m->hashes = malloc(cap * sizeof *m->hashes);
    if (!m->slots || !m->hashes) {
        m40_strmap_free(m);
        return m40_errf(err, "hash map: out of memory for %zu slots", cap);
    }
    memset(m->slots, 0xFF, cap * sizeof *m->slots);
    m->keys = keys;
    m->mask = cap - 1;
    return 0;
}

void m40_strmap_free(m40_strmap *m) {
    free(m->slots);
    free(m->hashes);
    memset(m, 0, sizeof *m);
}

int32_t m40_strmap_insert(m40_strmap *m, int32_t i) {
    const m40_tok_str *k = &m->keys[i];
    uint64_t h = m40_hash_bytes(k->ptr, k->len);
    uint32_t h32 = (uint32_t)h;
    for (size_t s = (size_t)h & m->mask;; s = (s + 1) & m->mask) {
        int32_t j = m->slots[s];
        if (j < 0) {
            m->slots[s] = i;
            m->hashes[s] = h32;
            m->count++;
            return -1;
        }
        if (m->hashes[s] == h32 && m->keys[j].len == k->len &&
            memcmp(m->keys[j].ptr, k->ptr, k->len) == 0)
            return j;
    }
}

int32_t m40_strmap_find(const m40_strmap *m, const char *str, size_t len) {
    if (!m->slots)
        return -1;
    uint64_t h = m40_hash_bytes(str, len);
    uint32_t h32 = (uint32_t)h;
    for (size_t s = (size_t)h & m->mask;; s = (s + 1) & m->mask) {
        int32_t j = m->slots[s];
        if (j < 0)
            return -1;
        if (m->hashes[s] == h32 && m->keys[j].len == len && memcmp(m->keys[j].ptr, str, len) == 0)
            return j;
    }
}

int m40_pairmap_init(m40_pairmap *m, size_t max_keys, m40_err *err) {
    memset(m, 0, sizeof *m);
    if (max_keys > SIZE_MAX / 32)
        return m40_errf(err, "pair map: %zu keys is too many", max_keys);
    size_t cap = capacity_for(max_keys);
    m->keys = malloc(cap * sizeof *m->keys);
    m->a = malloc(cap * sizeof *m->a);
    m->b = malloc(cap * sizeof *m->b);
    if (!m->keys || !m->a || !m->b) {
        m40_pairmap_free(m);
        return m40_errf(err, "pair map: out of memory for %zu slots", cap);
    }
    memset(m->keys, 0xFF, cap * sizeof *m->keys);
    m->mask = cap - 1;
    return 0;
}

void m40_pairmap_free(m40_pairmap *m) {
    free(m->keys);
    free(m->a);
    free(m->b);
    memset(m, 0, sizeof *m);
}

int m40_pairmap_insert(m40_pairmap *m, uint64_t key, int32_t a, int32_t b) {
    for (size_t s = (size_t)mix64(key) & m->mask;; s = (s + 1) & m->mask) {
        if (m->keys[s] == UINT64_MAX) {
            m->keys[s] = key;
            m->a[s] = a;
            m->b[s] = b;
            m->count++;
            return 1;
        }
        if (m->keys[s] == key)
            return 0;
    }
}

int m40_pairmap_find(const m40_pairmap *m, uint64_t key, int32_t *a, int32_t *b) {
    if (!m->keys)
        return 0;
    for (size_t s = (size_t)mix64(key) & m->mask;; s = (s + 1) & m->mask) {
        if (m->keys[s] == key) {
            *a = m->a[s];
            *b = m->b[s];
            return 1;
        }
        if (m->keys[s] == UINT64_MAX)
            return 0;
    }
}
