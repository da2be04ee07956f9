/* fuzz_gguf.c - libFuzzer target for the GGUF reader.
 *
 * Each input is parsed with m40_gguf_open_memory; when it opens, every kv
 * (every array element at every depth) and every tensor's data is read, and
 * the reader's invariants are checked: lookups find what the tables hold,
 * tensor data lies inside the input, and a failure leaves a one-line
 * message. A broken invariant traps, which libFuzzer reports as a crash.
 *
 * Built with -DM40_FUZZ_REPLAY it is a plain program instead: it runs the
 * same function over the files and directories named on its command line
 * (tests/gguf.cmake runs it over the seed corpus in every build).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)         \
    do {                      \
        if (!(cond))          \
            __builtin_trap(); \
    } while (0)

static volatile uint64_t g_sink; /* keeps the reads from being optimized away */

static uint64_t touch(const void *p, uint64_t n) {
    const uint8_t *b = p;
    return n ? (uint64_t)b[0] + b[n - 1] + n : 0;
}

static uint64_t walk_value(const m40_gguf_value *v, int depth) {
    REQUIRE(depth <= M40_GGUF_MAX_DEPTH);
    m40_gguf_scalar s;
    m40_gguf_str str;
    if (v->type == M40_GGUF_STRING) {
        REQUIRE(m40_gguf_value_str(v, &str, NULL) == 0);
        return touch(str.ptr, str.len);
    }
    if (v->type != M40_GGUF_ARRAY) {
        REQUIRE(m40_gguf_value_scalar(v, &s, NULL) == 0);
        return s.u64 + touch(v->data, v->size);
    }
    uint64_t h = touch(v->data, v->size);
    for (uint64_t i = 0; i < v->count; i++) {
        m40_gguf_value e;
        REQUIRE(m40_gguf_array_elem(v, i, &e, NULL) == 0);
        REQUIRE(e.type == v->elem_type);
        /* Every element lies inside its array's bytes. */
        REQUIRE((const uint8_t *)e.data >= (const uint8_t *)v->data);
        REQUIRE((const uint8_t *)e.data + e.size <= (const uint8_t *)v->data + v->size);
        if (v->elem_type == M40_GGUF_STRING)
            REQUIRE(m40_gguf_array_str(v, i, &str, NULL) == 0 && str.ptr == e.data);
        h += walk_value(&e, depth + 1);
    }
    m40_gguf_value past;
    REQUIRE(m40_gguf_array_elem(v, v->count, &past, NULL) != 0);
    return h;
}

static uint64_t walk(const m40_gguf *g, const uint8_t *data, size_t size) {
    uint64_t h = m40_gguf_version(g) + m40_gguf_alignment(g) + m40_gguf_data_offset(g);
    REQUIRE(m40_gguf_file_size(g) == size);
    for (size_t i = 0; i < m40_gguf_kv_count(g); i++) {
        m40_gguf_str key = m40_gguf_kv_key(g, i);
        REQUIRE(m40_gguf_find_kv_n(g, key.ptr, key.len) == (int64_t)i);
        const m40_gguf_value *v = m40_gguf_kv_value(g, i);
        REQUIRE(v && v->type == m40_gguf_kv_type(g, i));
        h += touch(key.ptr, key.len) + walk_value(v, 0);
    }
    for (size_t i = 0; i < m40_gguf_tensor_count(g); i++) {
        const m40_gguf_tensor *t = m40_gguf_tensor_at(g, i);
        REQUIRE(m40_gguf_find_tensor_n(g, t->name.ptr, t->name.len) == (int64_t)i);
        REQUIRE(t->n_dims >= 1 && t->n_dims <= M40_GGUF_MAX_DIMS && t->n_bytes > 0);
        const uint8_t *p = t->data;
        REQUIRE(p >= data && p - data + t->n_bytes <= size);
        REQUIRE((uint64_t)(p - data) == m40_gguf_data_offset(g) + t->offset);
        h += touch(p, t->n_bytes) + t->n_elems;
    }
    REQUIRE(m40_gguf_tensor_at(g, m40_gguf_tensor_count(g)) == NULL);
    REQUIRE(m40_gguf_kv_value(g, m40_gguf_kv_count(g)) == NULL);
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    m40_gguf *g = NULL;
    m40_err err = {0};
    if (m40_gguf_open_memory(&g, data, size, &err) != 0) {
        REQUIRE(g == NULL && err.msg[0] != '\0' && strchr(err.msg, '\n') == NULL);
        return 0;
    }
    g_sink = walk(g, data, size);
    m40_gguf_close(g);
    return 0;
}

#ifdef M40_FUZZ_REPLAY
#include "replay.h"
#endif
