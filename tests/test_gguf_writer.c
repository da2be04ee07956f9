/* test_gguf_writer.c - GGUF writer -> reader round trips, and the writer's
 * refusals.
 *
 * Every kv type, nested arrays, and tensors of every type m40-llm can size
 * are written, read back with the reader and compared byte for byte, at the
 * default alignment and at 64.
 *
 * `test_gguf_writer --write-seeds DIR` writes the fuzz seed corpus
 * (tests/fuzz/seeds/gguf) instead of testing.
 */
#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"
#include "quant/ggml_types.h"

/* --- helpers ------------------------------------------------------------- */

static m40_gguf_writer *new_writer(void) {
    m40_gguf_writer *w = NULL;
    m40_err e = {0};
    CHECK(m40_gguf_writer_new(&w, &e) == 0);
    return w;
}

/* Writes w to memory and opens it; *buf must be freed after closing. */
static m40_gguf *round_trip(m40_gguf_writer *w, void **buf) {
    size_t size = 0;
    m40_err e = {0};
    *buf = NULL;
    if (m40_gguf_writer_write_memory(w, buf, &size, &e) != 0) {
        fprintf(stderr, "write: %s\n", e.msg);
        CHECK(0);
        return NULL;
    }
    CHECK(size == m40_gguf_writer_size(w));
    m40_gguf *g = NULL;
    if (m40_gguf_open_memory(&g, *buf, size, &e) != 0) {
        fprintf(stderr, "open: %s\n", e.msg);
        CHECK(0);
    }
    return g;
}

static bool str_is(m40_gguf_str s, const char *want, size_t len) {
    return s.len == len && memcmp(s.ptr, want, len) == 0;
}

/* A deterministic byte pattern that differs per tensor. */
static void fill_pattern(uint8_t *p, size_t n, uint32_t seed) {
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

/* --- kvs ----------------------------------------------------------------- */

static void add_every_scalar(m40_gguf_writer *w) {
    m40_err e = {0};
    CHECK(m40_gguf_writer_add_u8(w, "t.u8", 255, &e) == 0);
    CHECK(m40_gguf_writer_add_i8(w, "t.i8", -128, &e) == 0);
    CHECK(m40_gguf_writer_add_u16(w, "t.u16", 65535, &e) == 0);
    CHECK(m40_gguf_writer_add_i16(w, "t.i16", -32768, &e) == 0);
    CHECK(m40_gguf_writer_add_u32(w, "t.u32", 0xfffffffeu, &e) == 0);
    CHECK(m40_gguf_writer_add_i32(w, "t.i32", INT32_MIN, &e) == 0);
    CHECK(m40_gguf_writer_add_f32(w, "t.f32", -1.5f, &e) == 0);
    CHECK(m40_gguf_writer_add_bool(w, "t.true", true, &e) == 0);
    CHECK(m40_gguf_writer_add_bool(w, "t.false", false, &e) == 0);
    CHECK(m40_gguf_writer_add_str(w, "t.str", "hello", &e) == 0);
    CHECK(m40_gguf_writer_add_str(w, "t.empty", "", &e) == 0);
    CHECK(m40_gguf_writer_add_str_n(w, "t.nul", "a\0b", 3, &e) == 0);
    CHECK(m40_gguf_writer_add_u64(w, "t.u64", UINT64_MAX, &e) == 0);
    CHECK(m40_gguf_writer_add_i64(w, "t.i64", INT64_MIN, &e) == 0);
    CHECK(m40_gguf_writer_add_f64(w, "t.f64", DBL_MAX, &e) == 0);
}

static void test_every_scalar_type(void) {
    m40_gguf_writer *w = new_writer();
    add_every_scalar(w);
    void *buf;
    m40_gguf *g = round_trip(w, &buf);
    m40_err e = {0};
    if (g) {
        uint8_t u8 = 0;
        int8_t i8 = 0;
        uint16_t u16 = 0;
        int16_t i16 = 0;
        uint32_t u32 = 0;
        int32_t i32 = 0;
        uint64_t u64 = 0;
        int64_t i64 = 0;
        float f32 = 0;
        double f64 = 0;
        bool b1 = false, b0 = true;
        m40_gguf_str s;
        CHECK(m40_gguf_version(g) == 3);
        CHECK(m40_gguf_kv_count(g) == 15);
        CHECK(m40_gguf_tensor_count(g) == 0);
        CHECK(m40_gguf_alignment(g) == 32);
        CHECK(m40_gguf_get_u8(g, "t.u8", &u8, &e) == 0 && u8 == 255);
        CHECK(m40_gguf_get_i8(g, "t.i8", &i8, &e) == 0 && i8 == -128);
        CHECK(m40_gguf_get_u16(g, "t.u16", &u16, &e) == 0 && u16 == 65535);
        CHECK(m40_gguf_get_i16(g, "t.i16", &i16, &e) == 0 && i16 == -32768);
        CHECK(m40_gguf_get_u32(g, "t.u32", &u32, &e) == 0 && u32 == 0xfffffffeu);
        CHECK(m40_gguf_get_i32(g, "t.i32", &i32, &e) == 0 && i32 == INT32_MIN);
        CHECK(m40_gguf_get_u64(g, "t.u64", &u64, &e) == 0 && u64 == UINT64_MAX);
        CHECK(m40_gguf_get_i64(g, "t.i64", &i64, &e) == 0 && i64 == INT64_MIN);
        CHECK(m40_gguf_get_f32(g, "t.f32", &f32, &e) == 0 && f32 == -1.5f);
        CHECK(m40_gguf_get_f64(g, "t.f64", &f64, &e) == 0 && f64 == DBL_MAX);
        CHECK(m40_gguf_get_bool(g, "t.true", &b1, &e) == 0 && b1);
        CHECK(m40_gguf_get_bool(g, "t.false", &b0, &e) == 0 && !b0);
        CHECK(m40_gguf_get_str(g, "t.str", &s, &e) == 0 && str_is(s, "hello", 5));
        CHECK(m40_gguf_get_str(g, "t.empty", &s, &e) == 0 && s.len == 0);
        CHECK(m40_gguf_get_str(g, "t.nul", &s, &e) == 0 && str_is(s, "a\0b", 3));

        /* By index: keys, types and values in the order written. */
        static const uint32_t types[15] = {
            M40_GGUF_UINT8,  M40_GGUF_INT8,    M40_GGUF_UINT16, M40_GGUF_INT16, M40_GGUF_UINT32,
            M40_GGUF_INT32,  M40_GGUF_FLOAT32, M40_GGUF_BOOL,   M40_GGUF_BOOL,  M40_GGUF_STRING,
            M40_GGUF_STRING, M40_GGUF_STRING,  M40_GGUF_UINT64, M40_GGUF_INT64, M40_GGUF_FLOAT64};
        for (size_t i = 0; i < 15; i++)
            CHECK(m40_gguf_kv_type(g, i) == types[i]);
        CHECK(m40_gguf_str_eq(m40_gguf_kv_key(g, 0), "t.u8"));
        CHECK(m40_gguf_find_kv(g, "t.f64") == 14);
        CHECK(m40_gguf_find_kv(g, "t.missing") == -1);
        CHECK(m40_gguf_kv_value(g, 15) == NULL);
        m40_gguf_scalar sc;
        CHECK(m40_gguf_value_scalar(m40_gguf_kv_value(g, 5), &sc, &e) == 0 && sc.i32 == INT32_MIN);
        CHECK(m40_gguf_value_scalar(m40_gguf_kv_value(g, 7), &sc, &e) == 0 && sc.b);
        CHECK(m40_gguf_value_scalar(m40_gguf_kv_value(g, 9), &sc, &e) != 0);
        CHECK_CONTAINS(e.msg, "value is a string, not a scalar");

        /* Lenient integer / float getters. */
        CHECK(m40_gguf_get_uint(g, "t.u32", &u64, &e) == 0 && u64 == 0xfffffffeu);
        CHECK(m40_gguf_get_uint(g, "t.u8", &u64, &e) == 0 && u64 == 255);
        CHECK(m40_gguf_get_uint(g, "t.i8", &u64, &e) != 0);
        CHECK_CONTAINS(e.msg, "key 't.i8' is negative, expected a non-negative integer");
        CHECK(m40_gguf_get_uint(g, "t.str", &u64, &e) != 0);
        CHECK_CONTAINS(e.msg, "key 't.str' has type string, expected an integer");
        CHECK(m40_gguf_get_float(g, "t.f32", &f64, &e) == 0 && f64 == -1.5);
        CHECK(m40_gguf_get_float(g, "t.u8", &f64, &e) != 0);

        /* Type mismatches and missing keys fail cleanly. */
        CHECK(m40_gguf_get_u32(g, "t.str", &u32, &e) != 0);
        CHECK_CONTAINS(e.msg, "key 't.str' has type string, expected uint32");
        CHECK(m40_gguf_get_u32(g, "t.u64", &u32, &e) != 0);
        CHECK_CONTAINS(e.msg, "key 't.u64' has type uint64, expected uint32");
        CHECK(m40_gguf_get_str(g, "t.u8", &s, &e) != 0);
        CHECK_CONTAINS(e.msg, "key 't.u8': value has type uint8, expected string");
        CHECK(m40_gguf_get_f32(g, "nope", &f32, &e) != 0);
        CHECK_CONTAINS(e.msg, "key 'nope' not found");
    }
    m40_gguf_close(g);
    free(buf);
    m40_gguf_writer_free(w);
}

static void add_flat_arrays(m40_gguf_writer *w) {
    m40_err e = {0};
    const uint8_t u8s[] = {1, 2, 255};
    const int8_t i8s[] = {-1, 0, 127};
    const uint16_t u16s[] = {1, 65535};
    const int16_t i16s[] = {-300, 300};
    const uint32_t u32s[] = {7, 8, 9, 10};
    const int32_t i32s[] = {-5, 1, 2, 3, 4};
    const float f32s[] = {0.5f, -2.0f, 1e30f};
    const uint8_t bools[] = {1, 0, 1, 1};
    const uint64_t u64s[] = {UINT64_MAX, 0};
    const int64_t i64s[] = {INT64_MIN, INT64_MAX};
    const double f64s[] = {1.0 / 3.0};
    const char *strs[] = {"alpha", "", "\xc4\xa0t", "gamma"};
    CHECK(m40_gguf_writer_add_array(w, "a.u8", M40_GGUF_UINT8, u8s, 3, &e) == 0);
    CHECK(m40_gguf_writer_add_array(w, "a.i8", M40_GGUF_INT8, i8s, 3, &e) == 0);
    CHECK(m40_gguf_writer_add_array(w, "a.u16", M40_GGUF_UINT16, u16s, 2, &e) == 0);
    CHECK(m40_gguf_writer_add_array(w, "a.i16", M40_GGUF_INT16, i16s, 2, &e) == 0);
    CHECK(m40_gguf_writer_add_array(w, "a.u32", M40_GGUF_UINT32, u32s, 4, &e) == 0);
    CHECK(m40_gguf_writer_add_array(w, "a.i32", M40_GGUF_INT32, i32s, 5, &e) == 0);
    CHECK(m40_gguf_writer_add_array(w, "a.f32", M40_GGUF_FLOAT32, f32s, 3, &e) == 0);
    CHECK(m40_gguf_writer_add_array(w, "a.bool", M40_GGUF_BOOL, bools, 4, &e) == 0);
    CHECK(m40_gguf_writer_add_str_array(w, "a.str", strs, 4, &e) == 0);
    CHECK(m40_gguf_writer_add_array(w, "a.u64", M40_GGUF_UINT64, u64s, 2, &e) == 0);
    CHECK(m40_gguf_writer_add_array(w, "a.i64", M40_GGUF_INT64, i64s, 2, &e) == 0);
    CHECK(m40_gguf_writer_add_array(w, "a.f64", M40_GGUF_FLOAT64, f64s, 1, &e) == 0);
    CHECK(m40_gguf_writer_add_array(w, "a.empty", M40_GGUF_UINT32, NULL, 0, &e) == 0);
    CHECK(m40_gguf_writer_add_str_array(w, "a.nostr", NULL, 0, &e) == 0);
}

/* The array of `key` holds exactly `n` elements equal to `want`. */
static void check_fixed_array(const m40_gguf *g, const char *key, uint32_t type, const void *want,
                              uint64_t n) {
    m40_gguf_value v;
    m40_err e = {0};
    CHECK(m40_gguf_get_array(g, key, type, &v, &e) == 0);
    size_t es = m40_gguf_type_size(type);
    CHECK(v.type == M40_GGUF_ARRAY && v.elem_type == type && v.count == n && v.size == n * es);
    CHECK(n == 0 || memcmp(v.data, want, n * es) == 0);
    for (uint64_t i = 0; i < n; i++) {
        m40_gguf_value el;
        m40_gguf_scalar s;
        CHECK(m40_gguf_array_elem(&v, i, &el, &e) == 0 && el.type == type);
        CHECK(m40_gguf_value_scalar(&el, &s, &e) == 0);
        if (type != M40_GGUF_BOOL)
            CHECK(memcmp(&s, (const uint8_t *)want + i * es, es) == 0);
        else
            CHECK(s.b == (((const uint8_t *)want)[i] != 0));
    }
}

static void test_flat_arrays(void) {
    m40_gguf_writer *w = new_writer();
    add_flat_arrays(w);
    void *buf;
    m40_gguf *g = round_trip(w, &buf);
    m40_err e = {0};
    if (g) {
        const uint8_t u8s[] = {1, 2, 255};
        const int8_t i8s[] = {-1, 0, 127};
        const uint16_t u16s[] = {1, 65535};
        const int16_t i16s[] = {-300, 300};
        const uint32_t u32s[] = {7, 8, 9, 10};
        const int32_t i32s[] = {-5, 1, 2, 3, 4};
        const float f32s[] = {0.5f, -2.0f, 1e30f};
        const uint8_t bools[] = {1, 0, 1, 1};
        const uint64_t u64s[] = {UINT64_MAX, 0};
        const int64_t i64s[] = {INT64_MIN, INT64_MAX};
        const double f64s[] = {1.0 / 3.0};
        check_fixed_array(g, "a.u8", M40_GGUF_UINT8, u8s, 3);
        check_fixed_array(g, "a.i8", M40_GGUF_INT8, i8s, 3);
        check_fixed_array(g, "a.u16", M40_GGUF_UINT16, u16s, 2);
        check_fixed_array(g, "a.i16", M40_GGUF_INT16, i16s, 2);
        check_fixed_array(g, "a.u32", M40_GGUF_UINT32, u32s, 4);
        check_fixed_array(g, "a.i32", M40_GGUF_INT32, i32s, 5);
        check_fixed_array(g, "a.f32", M40_GGUF_FLOAT32, f32s, 3);
        check_fixed_array(g, "a.bool", M40_GGUF_BOOL, bools, 4);
        check_fixed_array(g, "a.u64", M40_GGUF_UINT64, u64s, 2);
        check_fixed_array(g, "a.i64", M40_GGUF_INT64, i64s, 2);
        check_fixed_array(g, "a.f64", M40_GGUF_FLOAT64, f64s, 1);
        check_fixed_array(g, "a.empty", M40_GGUF_UINT32, NULL, 0);

        m40_gguf_value v;
        m40_gguf_str s;
        CHECK(m40_gguf_get_array(g, "a.str", M40_GGUF_STRING, &v, &e) == 0 && v.count == 4);
        CHECK(m40_gguf_array_str(&v, 0, &s, &e) == 0 && str_is(s, "alpha", 5));
        CHECK(m40_gguf_array_str(&v, 1, &s, &e) == 0 && s.len == 0);
        CHECK(m40_gguf_array_str(&v, 2, &s, &e) == 0 && str_is(s, "\xc4\xa0t", 3));
        CHECK(m40_gguf_array_str(&v, 3, &s, &e) == 0 && str_is(s, "gamma", 5));
        CHECK(m40_gguf_array_str(&v, 4, &s, &e) != 0);
        CHECK_CONTAINS(e.msg, "array index 4 out of range (4 elements)");
        CHECK(m40_gguf_get_array(g, "a.nostr", M40_GGUF_ANY, &v, &e) == 0 && v.count == 0);

        CHECK(m40_gguf_get_array(g, "a.u32", M40_GGUF_STRING, &v, &e) != 0);
        CHECK_CONTAINS(e.msg, "key 'a.u32' is an array of uint32, expected an array of string");
        CHECK(m40_gguf_get_array(g, "a.u32", M40_GGUF_ANY, &v, &e) == 0);
        CHECK(m40_gguf_array_str(&v, 0, &s, &e) != 0);
        CHECK_CONTAINS(e.msg, "not an array of strings");
        CHECK(m40_gguf_get_u32(g, "a.u32", &(uint32_t){0}, &e) != 0);
        CHECK_CONTAINS(e.msg, "key 'a.u32' has type array, expected uint32");
    }
    m40_gguf_close(g);
    free(buf);
    m40_gguf_writer_free(w);
}

/* [[1, 2], [3], []] of uint32, [["x", "yy"], ["zzz"]], and one chain nested
 * M40_GGUF_MAX_DEPTH deep whose innermost array holds the byte 42. */
static void add_nested_arrays(m40_gguf_writer *w) {
    m40_err e = {0};
    const uint32_t a[] = {1, 2}, b[] = {3};
    CHECK(m40_gguf_writer_begin_array(w, "n.u32", M40_GGUF_ARRAY, 3, &e) == 0);
    CHECK(m40_gguf_writer_begin_array(w, NULL, M40_GGUF_UINT32, 2, &e) == 0);
    CHECK(m40_gguf_writer_push_elems(w, a, 2, &e) == 0);
    CHECK(m40_gguf_writer_end_array(w, &e) == 0);
    CHECK(m40_gguf_writer_begin_array(w, NULL, M40_GGUF_UINT32, 1, &e) == 0);
    CHECK(m40_gguf_writer_push(w, b, &e) == 0);
    CHECK(m40_gguf_writer_end_array(w, &e) == 0);
    CHECK(m40_gguf_writer_begin_array(w, NULL, M40_GGUF_UINT32, 0, &e) == 0);
    CHECK(m40_gguf_writer_end_array(w, &e) == 0);
    CHECK(m40_gguf_writer_end_array(w, &e) == 0);

    CHECK(m40_gguf_writer_begin_array(w, "n.str", M40_GGUF_ARRAY, 2, &e) == 0);
    CHECK(m40_gguf_writer_begin_array(w, NULL, M40_GGUF_STRING, 2, &e) == 0);
    CHECK(m40_gguf_writer_push_str(w, "x", 1, &e) == 0);
    CHECK(m40_gguf_writer_push_str(w, "yy", 2, &e) == 0);
    CHECK(m40_gguf_writer_end_array(w, &e) == 0);
    CHECK(m40_gguf_writer_begin_array(w, NULL, M40_GGUF_STRING, 1, &e) == 0);
    CHECK(m40_gguf_writer_push_str(w, "zzz", 3, &e) == 0);
    CHECK(m40_gguf_writer_end_array(w, &e) == 0);
    CHECK(m40_gguf_writer_end_array(w, &e) == 0);

    CHECK(m40_gguf_writer_begin_array(w, "n.deep", M40_GGUF_ARRAY, 1, &e) == 0);
    for (int d = 2; d < M40_GGUF_MAX_DEPTH; d++)
        CHECK(m40_gguf_writer_begin_array(w, NULL, M40_GGUF_ARRAY, 1, &e) == 0);
    CHECK(m40_gguf_writer_begin_array(w, NULL, M40_GGUF_UINT8, 1, &e) == 0);
    CHECK(m40_gguf_writer_push(w, &(uint8_t){42}, &e) == 0);
    for (int d = 0; d < M40_GGUF_MAX_DEPTH; d++)
        CHECK(m40_gguf_writer_end_array(w, &e) == 0);
}

static void test_nested_arrays(void) {
    m40_gguf_writer *w = new_writer();
    add_nested_arrays(w);
    CHECK(m40_gguf_writer_add_u8(w, "after", 9, &(m40_err){0}) == 0);
    void *buf;
    m40_gguf *g = round_trip(w, &buf);
    m40_err e = {0};
    if (g) {
        m40_gguf_value outer, inner, el;
        m40_gguf_scalar s;
        m40_gguf_str str;
        CHECK(m40_gguf_get_array(g, "n.u32", M40_GGUF_ARRAY, &outer, &e) == 0 && outer.count == 3);
        CHECK(m40_gguf_array_elem(&outer, 0, &inner, &e) == 0);
        CHECK(inner.type == M40_GGUF_ARRAY && inner.elem_type == M40_GGUF_UINT32);
        CHECK(inner.count == 2 && inner.size == 8);
        CHECK(m40_gguf_array_elem(&inner, 1, &el, &e) == 0);
        CHECK(m40_gguf_value_scalar(&el, &s, &e) == 0 && s.u32 == 2);
        CHECK(m40_gguf_array_elem(&outer, 1, &inner, &e) == 0 && inner.count == 1);
        CHECK(m40_gguf_array_elem(&inner, 0, &el, &e) == 0);
        CHECK(m40_gguf_value_scalar(&el, &s, &e) == 0 && s.u32 == 3);
        CHECK(m40_gguf_array_elem(&outer, 2, &inner, &e) == 0 && inner.count == 0);
        CHECK(inner.size == 0);

        CHECK(m40_gguf_get_array(g, "n.str", M40_GGUF_ARRAY, &outer, &e) == 0 && outer.count == 2);
        CHECK(m40_gguf_array_elem(&outer, 1, &inner, &e) == 0 && inner.count == 1);
        CHECK(m40_gguf_array_str(&inner, 0, &str, &e) == 0 && str_is(str, "zzz", 3));
        CHECK(m40_gguf_array_elem(&outer, 0, &inner, &e) == 0 && inner.count == 2);
        CHECK(m40_gguf_array_str(&inner, 1, &str, &e) == 0 && str_is(str, "yy", 2));
        CHECK(m40_gguf_array_str(&inner, 0, &str, &e) == 0 && str_is(str, "x", 1));

        CHECK(m40_gguf_get_array(g, "n.deep", M40_GGUF_ARRAY, &outer, &e) == 0);
        int depth = 1;
        while (outer.elem_type == M40_GGUF_ARRAY) {
            CHECK(m40_gguf_array_elem(&outer, 0, &inner, &e) == 0);
            outer = inner;
            depth++;
        }
        CHECK(depth == M40_GGUF_MAX_DEPTH);
        CHECK(m40_gguf_array_elem(&outer, 0, &el, &e) == 0);
        CHECK(m40_gguf_value_scalar(&el, &s, &e) == 0 && s.u8 == 42);
        uint8_t after = 0;
        CHECK(m40_gguf_get_u8(g, "after", &after, &e) == 0 && after == 9);
    }
    m40_gguf_close(g);
    free(buf);
    m40_gguf_writer_free(w);
}

/* A tokenizer-sized string array: indexing must be O(1), so reading all
 * of it is linear. */
static void test_large_string_array(void) {
    enum { N = 150000 };
    m40_gguf_writer *w = new_writer();
    m40_err e = {0};
    char tok[32];
    CHECK(m40_gguf_writer_begin_array(w, "tokenizer.ggml.tokens", M40_GGUF_STRING, N, &e) == 0);
    for (int i = 0; i < N; i++) {
        int n = snprintf(tok, sizeof tok, "tok%d", i);
        m40_gguf_writer_push_str(w, tok, (size_t)n, &e);
    }
    CHECK(m40_gguf_writer_end_array(w, &e) == 0);
    void *buf;
    m40_gguf *g = round_trip(w, &buf);
    if (g) {
        m40_gguf_value v;
        m40_gguf_str s;
        CHECK(m40_gguf_get_array(g, "tokenizer.ggml.tokens", M40_GGUF_STRING, &v, &e) == 0);
        CHECK(v.count == N);
        int bad = 0;
        for (int i = N - 1; i >= 0; i--) {
            int n = snprintf(tok, sizeof tok, "tok%d", i);
            if (m40_gguf_array_str(&v, (uint64_t)i, &s, &e) != 0 || !str_is(s, tok, (size_t)n))
                bad++;
        }
        CHECK(bad == 0);
    }
    m40_gguf_close(g);
    free(buf);
    m40_gguf_writer_free(w);
}

/* --- tensors ------------------------------------------------------------- */

typedef struct tensor_case {
    char name[32];
    uint32_t type, n_dims;
    uint64_t ne[4];
    uint8_t *data;
    size_t size;
} tensor_case;

/* One 2-D tensor per sizable type (two blocks per row, three rows), plus
 * 1-, 3- and 4-D F32 tensors. Returns the count. */
static size_t make_tensor_cases(tensor_case *tc, size_t cap) {
    size_t n = 0;
    for (uint32_t type = 0; type < M40_GGML_TYPE_COUNT && n < cap; type++) {
        const m40_ggml_type_info *ti = m40_ggml_type_get(type);
        if (!ti || ti->block_elems == 0)
            continue;
        tensor_case *t = &tc[n++];
        snprintf(t->name, sizeof t->name, "t.%s", ti->name);
        t->type = type;
        t->n_dims = 2;
        t->ne[0] = 2 * ti->block_elems;
        t->ne[1] = 3;
        t->size = m40_ggml_row_bytes(type, t->ne[0]) * 3;
    }
    static const uint64_t shapes[3][4] = {{7, 1, 1, 1}, {5, 3, 2, 1}, {2, 3, 4, 5}};
    for (int s = 0; s < 3 && n < cap; s++) {
        tensor_case *t = &tc[n++];
        snprintf(t->name, sizeof t->name, "shape.%d", s);
        t->type = M40_GGML_F32;
        t->n_dims = (uint32_t)(s == 0 ? 1 : s + 2);
        memcpy(t->ne, shapes[s], sizeof t->ne);
        t->size = 4 * t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    }
    for (size_t i = 0; i < n; i++) {
        tc[i].data = malloc(tc[i].size);
        fill_pattern(tc[i].data, tc[i].size, (uint32_t)i + 1);
    }
    return n;
}

static void check_tensor_case(const m40_gguf *g, const tensor_case *t, size_t index) {
    const m40_gguf_tensor *r = m40_gguf_get_tensor(g, t->name);
    CHECK(r != NULL);
    if (!r)
        return;
    CHECK(m40_gguf_find_tensor(g, t->name) == (int64_t)index);
    CHECK(m40_gguf_tensor_at(g, index) == r);
    CHECK(m40_gguf_str_eq(r->name, t->name));
    CHECK(r->type == t->type && r->n_dims == t->n_dims);
    uint64_t n = 1;
    for (int d = 0; d < 4; d++) {
        uint64_t want = d < (int)t->n_dims ? t->ne[d] : 1;
        CHECK(r->ne[d] == want);
        n *= want;
    }
    CHECK(r->n_elems == n && r->n_bytes == t->size);
    uint32_t a = m40_gguf_alignment(g);
    CHECK(r->offset % a == 0);
    const uint8_t *base = m40_gguf_file_data(g);
    CHECK((const uint8_t *)r->data == base + m40_gguf_data_offset(g) + r->offset);
    CHECK(memcmp(r->data, t->data, t->size) == 0);
}

static void tensor_round_trip(uint32_t alignment) {
    tensor_case tc[40];
    size_t n = make_tensor_cases(tc, 40);
    CHECK(n == 32); /* 29 ggml types (every one is sized) + 3 shapes */
    m40_gguf_writer *w = new_writer();
    m40_err e = {0};
    CHECK(m40_gguf_writer_add_str(w, "general.architecture", "test", &e) == 0);
    if (alignment != M40_GGUF_DEFAULT_ALIGNMENT)
        CHECK(m40_gguf_writer_set_alignment(w, alignment, &e) == 0);
    for (size_t i = 0; i < n; i++) {
        /* Alternate borrowed and copied data: both must come out the same. */
        int rc = i % 2 ? m40_gguf_writer_add_tensor_copy(w, tc[i].name, tc[i].type, tc[i].n_dims,
                                                         tc[i].ne, tc[i].data, tc[i].size, &e)
                       : m40_gguf_writer_add_tensor(w, tc[i].name, tc[i].type, tc[i].n_dims,
                                                    tc[i].ne, tc[i].data, tc[i].size, &e);
        if (rc)
            fprintf(stderr, "%s: %s\n", tc[i].name, e.msg);
        CHECK(rc == 0);
    }
    void *buf;
    m40_gguf *g = round_trip(w, &buf);
    if (g) {
        CHECK(m40_gguf_alignment(g) == alignment);
        CHECK(m40_gguf_tensor_count(g) == n);
        CHECK(m40_gguf_data_offset(g) % alignment == 0);
        uint32_t a = 0;
        if (alignment != M40_GGUF_DEFAULT_ALIGNMENT)
            CHECK(m40_gguf_get_u32(g, "general.alignment", &a, &e) == 0 && a == alignment);
        else
            CHECK(m40_gguf_find_kv(g, "general.alignment") == -1);
        for (size_t i = 0; i < n; i++)
            check_tensor_case(g, &tc[i], i);
        CHECK(m40_gguf_get_tensor(g, "t.nope") == NULL);
        CHECK(m40_gguf_tensor_at(g, n) == NULL);
    }
    m40_gguf_close(g);
    free(buf);
    m40_gguf_writer_free(w);
    for (size_t i = 0; i < n; i++)
        free(tc[i].data);
}

static void test_tensors_alignment_32(void) {
    tensor_round_trip(32);
}

static void test_tensors_alignment_64(void) {
    tensor_round_trip(64);
}

static void test_set_alignment_twice_updates(void) {
    m40_gguf_writer *w = new_writer();
    m40_err e = {0};
    CHECK(m40_gguf_writer_set_alignment(w, 64, &e) == 0);
    CHECK(m40_gguf_writer_add_u8(w, "x", 1, &e) == 0);
    CHECK(m40_gguf_writer_set_alignment(w, 256, &e) == 0);
    float f[3] = {1, 2, 3};
    CHECK(m40_gguf_writer_add_tensor(w, "a", M40_GGML_F32, 1, (uint64_t[]){3}, f, 12, &e) == 0);
    CHECK(m40_gguf_writer_add_tensor(w, "b", M40_GGML_F32, 1, (uint64_t[]){3}, f, 12, &e) == 0);
    void *buf;
    m40_gguf *g = round_trip(w, &buf);
    if (g) {
        CHECK(m40_gguf_alignment(g) == 256 && m40_gguf_kv_count(g) == 2);
        CHECK(m40_gguf_find_kv(g, "general.alignment") == 0);
        CHECK(m40_gguf_data_offset(g) == 256);
        CHECK(m40_gguf_get_tensor(g, "b")->offset == 256);
        CHECK(m40_gguf_file_size(g) == 768);
    }
    m40_gguf_close(g);
    free(buf);
    m40_gguf_writer_free(w);
}

/* Data produced by a callback in chunks: offset-dependent, so a chunk
 * written twice or out of order shows. */
static int fill_index(void *user, void *buf, size_t len, uint64_t offset, m40_err *err) {
    (void)err;
    size_t *calls = user;
    (*calls)++;
    uint8_t *p = buf;
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)((offset + i) * 7 + ((offset + i) >> 12));
    return 0;
}

static int fill_fail(void *user, void *buf, size_t len, uint64_t offset, m40_err *err) {
    (void)user, (void)buf, (void)len;
    return m40_errf(err, "generator failed at %llu", (unsigned long long)offset);
}

static void test_tensor_from_callback(void) {
    m40_gguf_writer *w = new_writer();
    m40_err e = {0};
    size_t calls = 0;
    const uint64_t ne[2] = {1024, 700}; /* 2.8 MB of F32: three 1 MiB chunks */
    CHECK(m40_gguf_writer_add_tensor_fn(w, "gen", M40_GGML_F32, 2, ne, fill_index, &calls, &e) ==
          0);
    void *buf;
    m40_gguf *g = round_trip(w, &buf);
    CHECK(calls == 3);
    if (g) {
        const m40_gguf_tensor *t = m40_gguf_get_tensor(g, "gen");
        CHECK(t && t->n_bytes == 1024 * 700 * 4);
        int bad = 0;
        const uint8_t *p = t ? t->data : NULL;
        for (uint64_t i = 0; p && i < t->n_bytes; i++)
            bad += p[i] != (uint8_t)(i * 7 + (i >> 12));
        CHECK(bad == 0);
    }
    m40_gguf_close(g);
    free(buf);
    m40_gguf_writer_free(w);

    w = new_writer();
    CHECK(m40_gguf_writer_add_tensor_fn(w, "bad", M40_GGML_F32, 1, ne, fill_fail, NULL, &e) == 0);
    size_t size;
    CHECK(m40_gguf_writer_write_memory(w, &buf, &size, &e) != 0 && buf == NULL);
    CHECK_CONTAINS(e.msg, "tensor 'bad': generator failed at 0");
    m40_gguf_writer_free(w);
}

/* --- files --------------------------------------------------------------- */

static char *temp_path(const char *name) {
    const char *dir = getenv("TMPDIR");
    static char path[4096];
    snprintf(path, sizeof path, "%s/m40_gguf_%ld_%s", dir && *dir ? dir : "/tmp", (long)getpid(),
             name);
    return path;
}

static void test_write_file_matches_memory(void) {
    m40_gguf_writer *w = new_writer();
    m40_err e = {0};
    add_every_scalar(w);
    add_flat_arrays(w);
    add_nested_arrays(w);
    CHECK(m40_gguf_writer_set_alignment(w, 64, &e) == 0);
    tensor_case tc[40];
    size_t n = make_tensor_cases(tc, 40);
    for (size_t i = 0; i < n; i++)
        CHECK(m40_gguf_writer_add_tensor(w, tc[i].name, tc[i].type, tc[i].n_dims, tc[i].ne,
                                         tc[i].data, tc[i].size, &e) == 0);
    const char *path = temp_path("roundtrip.gguf");
    FILE *old = fopen(path, "wb"); /* an existing file is replaced */
    if (old) {
        fputs("old", old);
        fclose(old);
    }
    CHECK(m40_gguf_writer_write_file(w, path, &e) == 0);
    void *mem = NULL;
    size_t mem_size = 0, file_size = 0;
    CHECK(m40_gguf_writer_write_memory(w, &mem, &mem_size, &e) == 0);
    uint8_t *file = (uint8_t *)check_read_file(path, &file_size);
    CHECK(file && file_size == mem_size && memcmp(file, mem, mem_size) == 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644);

    m40_gguf *g = NULL;
    CHECK(m40_gguf_open(&g, path, &e) == 0);
    if (g) {
        CHECK(m40_gguf_file_size(g) == mem_size && m40_gguf_alignment(g) == 64);
        for (size_t i = 0; i < n; i++)
            check_tensor_case(g, &tc[i], i);
        uint64_t u64 = 0;
        CHECK(m40_gguf_get_u64(g, "t.u64", &u64, &e) == 0 && u64 == UINT64_MAX);
    }
    m40_gguf_close(g);
    unlink(path);
    free(file);
    free(mem);
    for (size_t i = 0; i < n; i++)
        free(tc[i].data);
    m40_gguf_writer_free(w);
}

static void test_failed_write_leaves_old_file(void) {
    m40_gguf_writer *w = new_writer();
    m40_err e = {0};
    CHECK(m40_gguf_writer_add_tensor_fn(w, "bad", M40_GGML_F32, 1, (uint64_t[]){8}, fill_fail, NULL,
                                        &e) == 0);
    const char *path = temp_path("keep.gguf");
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs("keep", f);
        fclose(f);
    }
    CHECK(m40_gguf_writer_write_file(w, path, &e) != 0);
    CHECK_CONTAINS(e.msg, "generator failed");
    size_t size = 0;
    uint8_t *b = (uint8_t *)check_read_file(path, &size);
    CHECK(b && size == 4 && memcmp(b, "keep", 4) == 0);
    free(b);
    unlink(path);
    CHECK(m40_gguf_writer_write_file(w, "/nonexistent-dir/x.gguf", &e) != 0);
    CHECK_CONTAINS(e.msg, "/nonexistent-dir/x.gguf");
    m40_gguf_writer_free(w);
}

/* --- refusals ------------------------------------------------------------ */

static void test_writer_refuses_bad_kvs(void) {
    m40_gguf_writer *w = new_writer();
    m40_err e = {0};
    CHECK(m40_gguf_writer_add_u32(w, "k", 1, &e) == 0);
    CHECK(m40_gguf_writer_add_str(w, "k", "again", &e) != 0);
    CHECK_CONTAINS(e.msg, "duplicate key 'k'");
    CHECK(m40_gguf_writer_add_u32(w, "general.alignment", 64, &e) != 0);
    CHECK_CONTAINS(e.msg, "m40_gguf_writer_set_alignment");
    CHECK(m40_gguf_writer_set_alignment(w, 48, &e) != 0);
    CHECK_CONTAINS(e.msg, "invalid alignment 48");
    CHECK(m40_gguf_writer_set_alignment(w, 0, &e) != 0);
    CHECK_CONTAINS(e.msg, "invalid alignment 0");
    const uint8_t bad_bools[] = {0, 2};
    CHECK(m40_gguf_writer_add_array(w, "b", M40_GGUF_BOOL, bad_bools, 2, &e) != 0);
    CHECK_CONTAINS(e.msg, "bool element 1 is 2");
    CHECK(m40_gguf_writer_add_array(w, "s", M40_GGUF_STRING, NULL, 0, &e) != 0);
    CHECK_CONTAINS(e.msg, "fixed-size element type, not string");

    char *long_key = malloc(M40_GGUF_MAX_KEY + 2);
    memset(long_key, 'k', M40_GGUF_MAX_KEY + 1);
    long_key[M40_GGUF_MAX_KEY + 1] = '\0';
    CHECK(m40_gguf_writer_add_u8(w, long_key, 1, &e) != 0);
    CHECK_CONTAINS(e.msg, "key of 65536 bytes is longer than GGUF's limit of 65535");
    free(long_key);

    /* Arrays: wrong element type, too many or too few elements, depth. */
    CHECK(m40_gguf_writer_begin_array(w, "arr", M40_GGUF_UINT16, 2, &e) == 0);
    CHECK(m40_gguf_writer_push_str(w, "x", 1, &e) != 0);
    CHECK_CONTAINS(e.msg, "key 'arr': cannot push string into an array of uint16");
    CHECK(m40_gguf_writer_add_u8(w, "other", 1, &e) != 0);
    CHECK_CONTAINS(e.msg, "while the array of key 'arr' is open");
    size_t size;
    void *buf;
    CHECK(m40_gguf_writer_write_memory(w, &buf, &size, &e) != 0);
    CHECK_CONTAINS(e.msg, "the array of key 'arr' is still open");
    CHECK(m40_gguf_writer_end_array(w, &e) != 0);
    CHECK_CONTAINS(e.msg, "key 'arr': array has 0 of its 2 elements");
    CHECK(m40_gguf_writer_push_elems(w, (uint16_t[]){1, 2, 3}, 3, &e) != 0);
    CHECK_CONTAINS(e.msg, "more than the 2 elements");
    CHECK(m40_gguf_writer_push_elems(w, (uint16_t[]){1, 2}, 2, &e) == 0);
    CHECK(m40_gguf_writer_end_array(w, &e) == 0);
    CHECK(m40_gguf_writer_end_array(w, &e) != 0);
    CHECK_CONTAINS(e.msg, "no array is open");
    CHECK(m40_gguf_writer_begin_array(w, NULL, M40_GGUF_UINT8, 1, &e) != 0);
    CHECK_CONTAINS(e.msg, "no array is open");

    CHECK(m40_gguf_writer_begin_array(w, "deep", M40_GGUF_ARRAY, 1, &e) == 0);
    for (int d = 2; d <= M40_GGUF_MAX_DEPTH; d++)
        CHECK(m40_gguf_writer_begin_array(w, NULL, M40_GGUF_ARRAY, 1, &e) == 0);
    CHECK(m40_gguf_writer_begin_array(w, NULL, M40_GGUF_ARRAY, 1, &e) != 0);
    CHECK_CONTAINS(e.msg, "arrays nested deeper than 8 levels");
    m40_gguf_writer_free(w);
}

static void test_failed_kv_rolls_back(void) {
    m40_gguf_writer *w = new_writer();
    m40_err e = {0};
    CHECK(m40_gguf_writer_add_u8(w, "a", 1, &e) == 0);
    CHECK(m40_gguf_writer_add_array(w, "b", M40_GGUF_BOOL, (uint8_t[]){1, 5}, 2, &e) != 0);
    CHECK(m40_gguf_writer_add_u8(w, "c", 3, &e) == 0);
    void *buf;
    m40_gguf *g = round_trip(w, &buf);
    if (g) {
        CHECK(m40_gguf_kv_count(g) == 2);
        CHECK(m40_gguf_find_kv(g, "b") == -1 && m40_gguf_find_kv(g, "c") == 1);
    }
    m40_gguf_close(g);
    free(buf);
    m40_gguf_writer_free(w);
}

static void test_writer_refuses_bad_tensors(void) {
    m40_gguf_writer *w = new_writer();
    m40_err e = {0};
    uint8_t data[4096] = {0};
    const uint64_t ne32[1] = {32}, ne33[1] = {33}, ne0[2] = {32, 0};
    const uint64_t huge[3] = {UINT64_C(1) << 32, UINT64_C(1) << 32, 2};
    CHECK(m40_gguf_writer_add_tensor(w, "ok", M40_GGML_Q8_0, 1, ne32, data, 34, &e) == 0);
    CHECK(m40_gguf_writer_add_tensor(w, "ok", M40_GGML_F32, 1, ne32, data, 128, &e) != 0);
    CHECK_CONTAINS(e.msg, "duplicate tensor name 'ok'");
    CHECK(m40_gguf_writer_add_tensor(w, "q", M40_GGML_Q4_0, 1, ne33, data, 18, &e) != 0);
    CHECK_CONTAINS(e.msg,
                   "tensor 'q': row length ne0 = 33 is not a multiple of q4_0's block size 32");
    CHECK(m40_gguf_writer_add_tensor(w, "iq", M40_GGML_IQ2_XXS, 1, ne32, data, 1, &e) != 0);
    CHECK_CONTAINS(e.msg, "tensor 'iq': row length ne0 = 32 is not a multiple of iq2_xxs's block "
                          "size 256");
    CHECK(m40_gguf_writer_add_tensor(w, "u", 4, 1, ne32, data, 1, &e) != 0);
    CHECK_CONTAINS(e.msg, "tensor 'u': unknown ggml type 4");
    CHECK(m40_gguf_writer_add_tensor(w, "d0", M40_GGML_F32, 0, ne32, data, 128, &e) != 0);
    CHECK_CONTAINS(e.msg, "tensor 'd0': 0 dimensions (must be 1 to 4)");
    CHECK(m40_gguf_writer_add_tensor(w, "d5", M40_GGML_F32, 5, huge, data, 128, &e) != 0);
    CHECK_CONTAINS(e.msg, "tensor 'd5': 5 dimensions");
    CHECK(m40_gguf_writer_add_tensor(w, "z", M40_GGML_F32, 2, ne0, data, 0, &e) != 0);
    CHECK_CONTAINS(e.msg, "tensor 'z': dimension 1 is 0");
    CHECK(m40_gguf_writer_add_tensor(w, "big", M40_GGML_F32, 3, huge, data, 0, &e) != 0);
    CHECK_CONTAINS(e.msg, "tensor 'big': element count overflows int64");
    CHECK(m40_gguf_writer_add_tensor(w, "sz", M40_GGML_F32, 1, ne32, data, 127, &e) != 0);
    CHECK_CONTAINS(e.msg, "tensor 'sz': 127 bytes given, its shape in f32 takes 128");
    char name[80];
    memset(name, 'n', 65);
    name[65] = '\0';
    CHECK(m40_gguf_writer_add_tensor(w, name, M40_GGML_F32, 1, ne32, data, 128, &e) != 0);
    CHECK_CONTAINS(e.msg, "name of 65 bytes is longer than GGUF's limit of 64");
    name[64] = '\0';
    CHECK(m40_gguf_writer_add_tensor(w, name, M40_GGML_F32, 1, ne32, data, 128, &e) == 0);
    m40_gguf_writer_free(w);
}

/* --- fuzz seeds ---------------------------------------------------------- */

static int save(m40_gguf_writer *w, const char *dir, const char *name, int version) {
    void *buf = NULL;
    size_t size = 0;
    m40_err e = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = m40_gguf_writer_write_memory(w, &buf, &size, &e);
    FILE *f = rc == 0 ? fopen(path, "wb") : NULL;
    if (f) {
        ((uint8_t *)buf)[4] = (uint8_t)version;
        rc = fwrite(buf, 1, size, f) == size ? 0 : -1;
        fclose(f);
        printf("%s: %zu bytes\n", path, size);
    } else {
        fprintf(stderr, "%s: %s\n", path, rc ? e.msg : "cannot create");
        rc = -1;
    }
    free(buf);
    m40_gguf_writer_free(w);
    return rc;
}

/* A small model: a few kvs, tensors of several types, some alignment. */
static m40_gguf_writer *seed_model(uint32_t alignment, const uint32_t *types, size_t n_types) {
    m40_gguf_writer *w = new_writer();
    m40_err e = {0};
    static uint8_t data[8192];
    fill_pattern(data, sizeof data, 7);
    m40_gguf_writer_add_str(w, "general.architecture", "llama", &e);
    m40_gguf_writer_add_u32(w, "llama.block_count", 1, &e);
    m40_gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f, &e);
    if (alignment != M40_GGUF_DEFAULT_ALIGNMENT)
        m40_gguf_writer_set_alignment(w, alignment, &e);
    for (size_t i = 0; i < n_types; i++) {
        const m40_ggml_type_info *ti = m40_ggml_type_get(types[i]);
        uint64_t ne[2] = {ti->block_elems, 2};
        char name[64];
        snprintf(name, sizeof name, "blk.%zu.attn_q.weight", i);
        m40_gguf_writer_add_tensor(w, name, types[i], 2, ne, data,
                                   m40_ggml_row_bytes(types[i], ne[0]) * 2, &e);
    }
    return w;
}

static m40_gguf_writer *seed_vocab(void) {
    m40_gguf_writer *w = new_writer();
    m40_err e = {0};
    const char *toks[] = {"<unk>", "<s>", "</s>", "a", "b", "ab", "\xc4\xa0the", ""};
    const int32_t types[] = {2, 3, 3, 1, 1, 1, 1, 1};
    const float scores[] = {0, 0, 0, -1, -2, -3, -4, -5};
    const char *merges[] = {"a b", "\xc4\xa0 t"};
    m40_gguf_writer_add_str(w, "general.architecture", "llama", &e);
    m40_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama", &e);
    m40_gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", toks, 8, &e);
    m40_gguf_writer_add_array(w, "tokenizer.ggml.scores", M40_GGUF_FLOAT32, scores, 8, &e);
    m40_gguf_writer_add_array(w, "tokenizer.ggml.token_type", M40_GGUF_INT32, types, 8, &e);
    m40_gguf_writer_add_str_array(w, "tokenizer.ggml.merges", merges, 2, &e);
    m40_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1, &e);
    m40_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", true, &e);
    return w;
}

static int write_seeds(const char *dir) {
    static const uint32_t plain[] = {M40_GGML_F32, M40_GGML_F16, M40_GGML_BF16, M40_GGML_I8,
                                     M40_GGML_I16, M40_GGML_I32, M40_GGML_I64,  M40_GGML_F64};
    static const uint32_t quant[] = {M40_GGML_Q4_0, M40_GGML_Q4_1, M40_GGML_Q5_0, M40_GGML_Q5_1,
                                     M40_GGML_Q8_0, M40_GGML_Q8_1, M40_GGML_Q2_K, M40_GGML_Q3_K,
                                     M40_GGML_Q4_K, M40_GGML_Q5_K, M40_GGML_Q6_K, M40_GGML_Q8_K};
    int rc = 0;
    m40_gguf_writer *w = new_writer();
    add_every_scalar(w);
    rc |= save(w, dir, "scalars.gguf", 3);
    w = new_writer();
    add_flat_arrays(w);
    rc |= save(w, dir, "arrays.gguf", 3);
    w = new_writer();
    add_nested_arrays(w);
    rc |= save(w, dir, "nested.gguf", 3);
    rc |= save(seed_vocab(), dir, "vocab.gguf", 3);
    rc |= save(seed_vocab(), dir, "vocab-v2.gguf", 2);
    rc |= save(seed_model(32, plain, 8), dir, "model-plain.gguf", 3);
    rc |= save(seed_model(64, quant, 6), dir, "model-quant-a64.gguf", 3);
    rc |= save(seed_model(32, quant + 6, 6), dir, "model-kquant.gguf", 3);
    rc |= save(seed_model(8, plain, 2), dir, "model-a8.gguf", 3);
    rc |= save(new_writer(), dir, "empty.gguf", 3);
    return rc ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0)
        return write_seeds(argv[2]);
    test_every_scalar_type();
    test_flat_arrays();
    test_nested_arrays();
    test_large_string_array();
    test_tensors_alignment_32();
    test_tensors_alignment_64();
    test_set_alignment_twice_updates();
    test_tensor_from_callback();
    test_write_file_matches_memory();
    test_failed_write_leaves_old_file();
    test_writer_refuses_bad_kvs();
    test_failed_kv_rolls_back();
    test_writer_refuses_bad_tensors();
    return check_report();
}
