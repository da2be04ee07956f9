/* test_gguf.c - GGUF reader: one test per validation failure (each checks
 * the message), every truncation of a valid file, files through mmap
 * (including a sparse 13 GB one), and the real vocabulary files.
 *
 * Bad files are assembled byte by byte in memory (or written with the
 * writer and then corrupted), and copied into a buffer of exactly their size
 * so that AddressSanitizer sees any read past the end.
 *
 * Usage: test_gguf VOCAB_DIR   (tests/fixtures/vocab; tests/gguf.cmake)
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"
#include "quant/ggml_types.h"

/* --- a byte builder ------------------------------------------------------ */

typedef struct bb {
    uint8_t *p;
    size_t len, cap;
} bb;

static void bb_bytes(bb *b, const void *d, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void bb_u8(bb *b, uint8_t v) {
    bb_bytes(b, &v, 1);
}

static void bb_u32(bb *b, uint32_t v) {
    bb_bytes(b, &v, 4);
}

static void bb_u64(bb *b, uint64_t v) {
    bb_bytes(b, &v, 8);
}

static void bb_str(bb *b, const char *s) {
    bb_u64(b, strlen(s));
    bb_bytes(b, s, strlen(s));
}

static void bb_zeros(bb *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        bb_u8(b, 0);
}

static void bb_pad(bb *b, size_t alignment) {
    bb_zeros(b, (alignment - b->len % alignment) % alignment);
}

static void bb_header(bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    bb_bytes(b, "GGUF", 4);
    bb_u32(b, version);
    bb_u64(b, n_tensors);
    bb_u64(b, n_kv);
}

static void bb_kv_u32(bb *b, const char *key, uint32_t v) {
    bb_str(b, key);
    bb_u32(b, M40_GGUF_UINT32);
    bb_u32(b, v);
}

static void bb_kv_str(bb *b, const char *key, const char *v) {
    bb_str(b, key);
    bb_u32(b, M40_GGUF_STRING);
    bb_str(b, v);
}

static void bb_tensor(bb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                      uint64_t offset) {
    bb_str(b, name);
    bb_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++)
        bb_u64(b, ne[d]);
    bb_u32(b, type);
    bb_u64(b, offset);
}

/* A file of one tensor `w` (header, no kvs, its info, padding, `data` bytes
 * of data) for the tensor checks. */
static bb one_tensor(uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t offset,
                     size_t data) {
    bb b = {0};
    bb_header(&b, 3, 1, 0);
    bb_tensor(&b, "w", n_dims, ne, type, offset);
    bb_pad(&b, 32);
    bb_zeros(&b, data);
    return b;
}

/* --- opening ------------------------------------------------------------- */

static m40_err g_err;

/* Opens (and closes) an exact-size copy of `size` bytes; on failure the
 * message is in g_err. */
static bool try_open(const void *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);
    if (size)
        memcpy(copy, data, size);
    m40_gguf *g = NULL;
    m40_err_clear(&g_err);
    int rc = m40_gguf_open_memory(&g, copy, size, &g_err);
    CHECK((rc == 0) == (g != NULL));
    m40_gguf_close(g);
    free(copy);
    return rc == 0;
}

/* Opens b (then frees it) expecting a failure; returns the message. */
static const char *open_fails(bb *b) {
    bool ok = try_open(b->p, b->len);
    free(b->p);
    *b = (bb){0};
    CHECK(!ok);
    CHECK(strchr(g_err.msg, '\n') == NULL);
    return ok ? "(opened)" : g_err.msg;
}

static bool opens(bb *b) {
    bool ok = try_open(b->p, b->len);
    free(b->p);
    *b = (bb){0};
    if (!ok)
        fprintf(stderr, "unexpected failure: %s\n", g_err.msg);
    return ok;
}

/* --- header -------------------------------------------------------------- */

static void test_bad_magic(void) {
    bb b = {0};
    bb_bytes(&b, "GGML", 4);
    bb_u32(&b, 3);
    bb_u64(&b, 0);
    bb_u64(&b, 0);
    CHECK_CONTAINS(open_fails(&b), "bad magic 47 47 4d 4c (expected 'GGUF' = 47 47 55 46)");
    bb_bytes(&b,
             "\x7f"
             "ELF",
             4);
    CHECK_CONTAINS(open_fails(&b), "not a GGUF file");
}

static void test_big_endian_rejected(void) {
    bb b = {0};
    bb_bytes(&b, "GGUF", 4);
    bb_bytes(&b, "\0\0\0\3", 4); /* version 3, big-endian */
    bb_zeros(&b, 16);
    CHECK_CONTAINS(open_fails(&b),
                   "big-endian GGUF is unsupported (version field 0x03000000 is a byte-swapped 3)");
    bb_bytes(&b, "FUGG", 4); /* the magic written as a big-endian u32 */
    bb_bytes(&b, "\0\0\0\3", 4);
    bb_zeros(&b, 16);
    CHECK_CONTAINS(open_fails(&b), "big-endian GGUF is unsupported (byte-swapped magic 'FUGG')");
}

static void test_unsupported_versions(void) {
    bb b = {0};
    bb_header(&b, 1, 0, 0);
    CHECK_CONTAINS(open_fails(&b), "unsupported GGUF version 1");
    bb_header(&b, 4, 0, 0);
    CHECK_CONTAINS(open_fails(&b), "unsupported GGUF version 4 (m40-llm reads versions 2 and 3)");
    bb_header(&b, 0, 0, 0);
    CHECK_CONTAINS(open_fails(&b), "unsupported GGUF version 0");
}

static void test_version_2_opens(void) {
    bb b = {0};
    bb_header(&b, 2, 0, 1);
    bb_kv_str(&b, "general.architecture", "llama");
    m40_gguf *g = NULL;
    m40_err e = {0};
    CHECK(m40_gguf_open_memory(&g, b.p, b.len, &e) == 0);
    if (g) {
        CHECK(m40_gguf_version(g) == 2 && m40_gguf_kv_count(g) == 1);
        /* No tensors and no padding after the kvs (like the vocab files):
         * the data section starts at or past the end, and that is fine. */
        CHECK(m40_gguf_data_offset(g) >= m40_gguf_file_size(g));
        CHECK(m40_gguf_data_offset(g) % 32 == 0);
    }
    m40_gguf_close(g);
    free(b.p);
}

static void test_truncated_header(void) {
    bb b = {0};
    bb_header(&b, 3, 0, 0);
    b.len = 10;
    CHECK_CONTAINS(open_fails(&b), "truncated header: file is 10 bytes, a GGUF header takes 24");
    CHECK_CONTAINS(open_fails(&b), "truncated header: file is 0 bytes");
    m40_gguf *g = (m40_gguf *)1;
    CHECK(m40_gguf_open_memory(&g, NULL, 5, &g_err) != 0 && g == NULL);
    CHECK_CONTAINS(g_err.msg, "no buffer for 5 bytes");
}

/* Counts are checked against the file before anything is allocated for
 * them (under ASan, an attempt to allocate 2^60 entries would abort). */
static void test_huge_counts_rejected(void) {
    bb b = {0};
    bb_header(&b, 3, 0, UINT64_C(1) << 60);
    bb_kv_u32(&b, "a", 1);
    CHECK_CONTAINS(open_fails(&b), "header claims 1152921504606846976 metadata kvs, more than the "
                                   "17 bytes after the header can hold");
    bb_header(&b, 3, UINT64_C(1) << 60, 0);
    bb_zeros(&b, 100);
    CHECK_CONTAINS(open_fails(&b), "header claims 1152921504606846976 tensors");
    bb_header(&b, 3, UINT64_MAX, UINT64_MAX);
    CHECK_CONTAINS(open_fails(&b), "metadata kvs, more than");
}

/* --- kvs ----------------------------------------------------------------- */

static void test_string_lengths_past_end(void) {
    bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_u64(&b, 1000); /* key length */
    bb_bytes(&b, "general.name", 12);
    CHECK_CONTAINS(open_fails(&b), "kv #0: string of 1000 bytes at offset 24 runs past the end of "
                                   "the file (44 bytes)");
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "general.name");
    bb_u32(&b, M40_GGUF_STRING);
    bb_u64(&b, UINT64_C(1) << 63);
    bb_bytes(&b, "abc", 3);
    CHECK_CONTAINS(open_fails(&b),
                   "key 'general.name': string of 9223372036854775808 bytes at offset 48 runs "
                   "past the end of the file");
}

static void test_array_lengths_past_end(void) {
    bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "a");
    bb_u32(&b, M40_GGUF_ARRAY);
    bb_u32(&b, M40_GGUF_UINT32);
    bb_u64(&b, UINT64_C(1) << 62); /* 2^64 bytes: must not wrap to 0 */
    bb_u32(&b, 7);
    CHECK_CONTAINS(open_fails(&b), "key 'a': array of 4611686018427387904 uint32 elements at "
                                   "offset 49 runs past the end of the file (53 bytes)");
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "tokens");
    bb_u32(&b, M40_GGUF_ARRAY);
    bb_u32(&b, M40_GGUF_STRING);
    bb_u64(&b, 1000);
    bb_str(&b, "one");
    CHECK_CONTAINS(open_fails(&b), "key 'tokens': array of 1000 string elements");
    /* A plausible count whose last string runs past the end. */
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "tokens");
    bb_u32(&b, M40_GGUF_ARRAY);
    bb_u32(&b, M40_GGUF_STRING);
    bb_u64(&b, 2);
    bb_str(&b, "one");
    bb_u64(&b, 50);
    bb_zeros(&b, 10);
    CHECK_CONTAINS(open_fails(&b), "key 'tokens': string of 50 bytes at offset 65 runs past");
}

static void test_unknown_value_types(void) {
    bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, 13);
    bb_u32(&b, 0);
    CHECK_CONTAINS(open_fails(&b), "key 'k': unknown value type 13");
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, M40_GGUF_ARRAY);
    bb_u32(&b, 99);
    bb_u64(&b, 1);
    bb_u32(&b, 0);
    CHECK_CONTAINS(open_fails(&b), "key 'k': array of unknown value type 99");
}

/* `levels` arrays, each holding the next; the innermost holds one byte. */
static void bb_nested(bb *b, int levels) {
    bb_header(b, 3, 0, 1);
    bb_str(b, "deep");
    bb_u32(b, M40_GGUF_ARRAY);
    for (int d = 1; d < levels; d++) {
        bb_u32(b, M40_GGUF_ARRAY);
        bb_u64(b, 1);
    }
    bb_u32(b, M40_GGUF_UINT8);
    bb_u64(b, 1);
    bb_u8(b, 5);
}

static void test_nesting_depth_bounded(void) {
    bb b = {0};
    bb_nested(&b, M40_GGUF_MAX_DEPTH);
    CHECK(opens(&b));
    bb_nested(&b, M40_GGUF_MAX_DEPTH + 1);
    CHECK_CONTAINS(open_fails(&b), "key 'deep': arrays nested deeper than 8 levels");
    bb_nested(&b, 100000); /* no recursion 100000 deep */
    CHECK_CONTAINS(open_fails(&b), "arrays nested deeper than 8 levels");
}

static void test_bool_not_0_or_1(void) {
    bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "b");
    bb_u32(&b, M40_GGUF_BOOL);
    bb_u8(&b, 2);
    CHECK_CONTAINS(open_fails(&b), "key 'b': bool value 2 at offset 37 is neither 0 nor 1");
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "bs");
    bb_u32(&b, M40_GGUF_ARRAY);
    bb_u32(&b, M40_GGUF_BOOL);
    bb_u64(&b, 3);
    bb_bytes(&b, "\1\0\xff", 3);
    CHECK_CONTAINS(open_fails(&b), "key 'bs': bool value 255");
}

static void test_duplicate_keys(void) {
    bb b = {0};
    bb_header(&b, 3, 0, 3);
    bb_kv_u32(&b, "llama.block_count", 1);
    bb_kv_str(&b, "general.name", "x");
    bb_kv_u32(&b, "llama.block_count", 2);
    CHECK_CONTAINS(open_fails(&b), "duplicate key 'llama.block_count' (kvs #0 and #2)");
}

static void test_key_too_long(void) {
    bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_u64(&b, 65536);
    bb_zeros(&b, 65536);
    bb_u32(&b, M40_GGUF_UINT8);
    bb_u8(&b, 0);
    CHECK_CONTAINS(open_fails(&b),
                   "kv #0: key of 65536 bytes is longer than GGUF's limit of 65535");
}

/* Finds `key` in a written file and returns the offset of its value. */
static size_t value_offset(const uint8_t *p, size_t n, const char *key) {
    size_t kl = strlen(key);
    for (size_t i = 8; i + kl + 4 <= n; i++) {
        uint64_t len;
        memcpy(&len, p + i - 8, 8);
        if (len == kl && memcmp(p + i, key, kl) == 0)
            return i + kl + 4;
    }
    return 0;
}

static void test_invalid_alignment(void) {
    bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_kv_u32(&b, "general.alignment", 0);
    CHECK_CONTAINS(open_fails(&b), "invalid alignment 0 in key 'general.alignment' (must be a "
                                   "non-zero power of two)");
    bb_header(&b, 3, 0, 1);
    bb_kv_str(&b, "general.alignment", "32");
    CHECK_CONTAINS(open_fails(&b), "key 'general.alignment' has type string, expected uint32");

    /* A valid file from the writer, its alignment patched to 48. */
    m40_gguf_writer *w = NULL;
    m40_err e = {0};
    float f[8] = {0};
    CHECK(m40_gguf_writer_new(&w, &e) == 0);
    CHECK(m40_gguf_writer_set_alignment(w, 64, &e) == 0);
    CHECK(m40_gguf_writer_add_tensor(w, "w", M40_GGML_F32, 1, (uint64_t[]){8}, f, 32, &e) == 0);
    void *buf = NULL;
    size_t size = 0;
    CHECK(m40_gguf_writer_write_memory(w, &buf, &size, &e) == 0);
    size_t at = value_offset(buf, size, "general.alignment");
    CHECK(at != 0);
    CHECK(try_open(buf, size));
    uint32_t bad = 48;
    memcpy((uint8_t *)buf + at, &bad, 4);
    CHECK(!try_open(buf, size));
    CHECK_CONTAINS(g_err.msg, "invalid alignment 48 in key 'general.alignment'");
    free(buf);
    m40_gguf_writer_free(w);
}

/* --- tensors ------------------------------------------------------------- */

static void test_tensor_dims_count(void) {
    const uint64_t ne[5] = {32, 1, 1, 1, 1};
    bb b = one_tensor(0, ne, M40_GGML_F32, 0, 128);
    CHECK_CONTAINS(open_fails(&b), "tensor 'w': 0 dimensions (must be 1 to 4)");
    b = one_tensor(5, ne, M40_GGML_F32, 0, 128);
    CHECK_CONTAINS(open_fails(&b), "tensor 'w': 5 dimensions (must be 1 to 4)");
    b = one_tensor(4, ne, M40_GGML_F32, 0, 128);
    CHECK(opens(&b));
}

static void test_tensor_element_count_overflow(void) {
    const uint64_t ne[3] = {UINT64_C(1) << 32, UINT64_C(1) << 32, 2}; /* 2^65 */
    bb b = one_tensor(3, ne, M40_GGML_F32, 0, 0);
    CHECK_CONTAINS(open_fails(&b), "tensor 'w': element count of dims [4294967296, 4294967296, "
                                   "2] overflows int64");
    const uint64_t big[1] = {UINT64_C(1) << 63}; /* fits u64, not GGML's int64 */
    b = one_tensor(1, big, M40_GGML_I8, 0, 0);
    CHECK_CONTAINS(open_fails(&b), "overflows int64");
}

static void test_tensor_byte_size_overflow(void) {
    const uint64_t ne[2] = {UINT64_C(1) << 31, UINT64_C(1) << 31}; /* 2^62 f64 = 2^65 bytes */
    bb b = one_tensor(2, ne, M40_GGML_F64, 0, 0);
    CHECK_CONTAINS(open_fails(&b), "tensor 'w': byte size of dims [2147483648, 2147483648] in "
                                   "f64 overflows 64 bits");
}

static void test_tensor_zero_dim(void) {
    const uint64_t ne[2] = {32, 0};
    bb b = one_tensor(2, ne, M40_GGML_F32, 0, 0);
    CHECK_CONTAINS(open_fails(&b), "tensor 'w': dimension 1 of [32, 0] is 0");
}

static void test_unknown_tensor_type(void) {
    const uint64_t ne[1] = {32};
    bb b = one_tensor(1, ne, 31, 0, 128);
    CHECK_CONTAINS(open_fails(&b), "tensor 'w': unknown ggml type 31");
    b = one_tensor(1, ne, 4, 0, 128); /* Q4_2, removed from GGML */
    CHECK_CONTAINS(open_fails(&b), "tensor 'w': unknown ggml type 4");
    b = one_tensor(1, ne, 0x80000000u, 0, 128);
    CHECK_CONTAINS(open_fails(&b), "unknown ggml type 2147483648");
}

/* Every type GGML has is sized, the IQ family too (their block sizes are
 * constants of the format), so a file of types m40-llm cannot compute with
 * still opens: the model layer names them (test_model). Too few bytes
 * for the type's blocks is still an error. */
static void test_iq_types_sized(void) {
    static const struct {
        uint32_t type;
        uint64_t bytes; /* of 256 elements: one block */
    } iq[] = {{M40_GGML_IQ2_XXS, 66}, {M40_GGML_IQ2_XS, 74}, {M40_GGML_IQ3_XXS, 98},
              {M40_GGML_IQ1_S, 50},   {M40_GGML_IQ3_S, 110}, {M40_GGML_IQ2_S, 82},
              {M40_GGML_IQ1_M, 56},   {M40_GGML_IQ4_XS, 136}};
    const uint64_t ne[1] = {256};
    for (size_t i = 0; i < sizeof iq / sizeof iq[0]; i++) {
        bb b = one_tensor(1, ne, iq[i].type, 0, (size_t)iq[i].bytes);
        m40_gguf *g = NULL;
        CHECK(m40_gguf_open_memory(&g, b.p, b.len, &g_err) == 0);
        CHECK(g && m40_gguf_tensor_at(g, 0)->n_bytes == iq[i].bytes);
        m40_gguf_close(g);
        free(b.p);
        b = one_tensor(1, ne, iq[i].type, 0, (size_t)iq[i].bytes - 1);
        CHECK_CONTAINS(open_fails(&b), "tensor 'w'");
    }
}

static void test_row_not_whole_blocks(void) {
    const uint64_t ne[2] = {48, 2};
    bb b = one_tensor(2, ne, M40_GGML_Q4_0, 0, 1024);
    CHECK_CONTAINS(open_fails(&b),
                   "tensor 'w': row length ne0 = 48 is not a multiple of q4_0's block size 32");
    const uint64_t ne_k[2] = {32, 8}; /* 256 elements in all, but rows of 32 */
    b = one_tensor(2, ne_k, M40_GGML_Q4_K, 0, 1024);
    CHECK_CONTAINS(open_fails(&b),
                   "row length ne0 = 32 is not a multiple of q4_K's block size 256");
}

static void test_offset_not_aligned(void) {
    const uint64_t ne[1] = {8};
    bb b = one_tensor(1, ne, M40_GGML_F32, 16, 64);
    CHECK_CONTAINS(open_fails(&b), "tensor 'w': offset 16 is not a multiple of the alignment 32");
}

static void test_tensor_data_past_end(void) {
    const uint64_t ne[1] = {32}; /* 128 bytes; the info ends at 57, data at 64 */
    bb b = one_tensor(1, ne, M40_GGML_F32, 0, 100);
    CHECK_CONTAINS(open_fails(&b), "tensor 'w': data [offset 64, 128 bytes) runs past the end of "
                                   "the file (164 bytes)");
    b = one_tensor(1, ne, M40_GGML_F32, 4096, 128);
    CHECK_CONTAINS(open_fails(&b), "tensor 'w': offset 4096 in the data section (at 64) is past "
                                   "the end of the file (192 bytes)");
    b = one_tensor(1, ne, M40_GGML_F32, UINT64_MAX - 31, 128); /* start would wrap */
    CHECK_CONTAINS(open_fails(&b), "is past the end of the file");
    /* The data section itself is missing (truncated after the infos). */
    b = one_tensor(1, ne, M40_GGML_F32, 0, 0);
    b.len = 60;
    CHECK_CONTAINS(open_fails(&b), "tensor 'w': offset 0 in the data section (at 64) is past the "
                                   "end of the file (60 bytes)");
}

static void test_tensors_overlap(void) {
    bb b = {0};
    bb_header(&b, 3, 3, 0);
    bb_tensor(&b, "a", 1, (uint64_t[]){64}, M40_GGML_F32, 0);  /* [0, 256) */
    bb_tensor(&b, "c", 1, (uint64_t[]){8}, M40_GGML_F32, 256); /* [256, 288) */
    bb_tensor(&b, "b", 1, (uint64_t[]){8}, M40_GGML_F32, 224); /* [224, 256) inside a */
    bb_pad(&b, 32);
    bb_zeros(&b, 320);
    CHECK_CONTAINS(open_fails(&b), "tensors 'a' [0, 256) and 'b' [224, 256) overlap");
    /* Same start, and back to back (which is fine). */
    bb_header(&b, 3, 2, 0);
    bb_tensor(&b, "x", 1, (uint64_t[]){8}, M40_GGML_F32, 32);
    bb_tensor(&b, "y", 1, (uint64_t[]){16}, M40_GGML_F16, 32);
    bb_pad(&b, 32);
    bb_zeros(&b, 64);
    CHECK_CONTAINS(open_fails(&b), "tensors 'x' [32, 64) and 'y' [32, 64) overlap");
    bb_header(&b, 3, 2, 0);
    bb_tensor(&b, "x", 1, (uint64_t[]){8}, M40_GGML_F32, 32);
    bb_tensor(&b, "y", 1, (uint64_t[]){16}, M40_GGML_F16, 0);
    bb_pad(&b, 32);
    bb_zeros(&b, 64);
    CHECK(opens(&b));
}

static void test_duplicate_tensor_names(void) {
    bb b = {0};
    bb_header(&b, 3, 2, 0);
    bb_tensor(&b, "blk.0.attn_q.weight", 1, (uint64_t[]){8}, M40_GGML_F32, 0);
    bb_tensor(&b, "blk.0.attn_q.weight", 1, (uint64_t[]){8}, M40_GGML_F32, 32);
    bb_pad(&b, 32);
    bb_zeros(&b, 64);
    CHECK_CONTAINS(open_fails(&b),
                   "duplicate tensor name 'blk.0.attn_q.weight' (tensors #0 and #1)");
}

static void test_tensor_name_too_long(void) {
    char name[70];
    memset(name, 'x', 65);
    name[65] = '\0';
    bb b = {0};
    bb_header(&b, 3, 1, 0);
    bb_tensor(&b, name, 1, (uint64_t[]){8}, M40_GGML_F32, 0);
    bb_pad(&b, 32);
    bb_zeros(&b, 32);
    CHECK_CONTAINS(open_fails(&b), "of 65 bytes is longer than GGUF's limit of 64");
}

static void test_truncated_tensor_info(void) {
    bb b = {0};
    bb_header(&b, 3, 1, 0);
    bb_str(&b, "blk.0.attn_q.weight");
    bb_u32(&b, 4);
    bb_u64(&b, 8);
    bb_u64(&b, 8); /* two of the four dims */
    CHECK_CONTAINS(open_fails(&b), "tensor 'blk.0.attn_q.weight': file truncated at offset 71 "
                                   "(needs 8 bytes, file is 71 bytes)");
}

/* --- truncation ---------------------------------------------------------- */

/* A small file with every part: kvs of several types, a string array,
 * nested arrays, two tensors; it ends with tensor data (no padding). */
static void *small_valid_file(size_t *size) {
    m40_gguf_writer *w = NULL;
    m40_err e = {0};
    const char *toks[] = {"a", "bc", ""};
    const int32_t types[] = {1, 2, 3};
    uint8_t q8[2 * 34];
    float f32[8];
    memset(q8, 0x11, sizeof q8);
    memset(f32, 0x22, sizeof f32);
    m40_gguf_writer_new(&w, &e);
    m40_gguf_writer_add_str(w, "general.architecture", "llama", &e);
    m40_gguf_writer_add_u32(w, "llama.block_count", 2, &e);
    m40_gguf_writer_add_bool(w, "flag", true, &e);
    m40_gguf_writer_add_f64(w, "pi", 3.14159, &e);
    m40_gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", toks, 3, &e);
    m40_gguf_writer_add_array(w, "tokenizer.ggml.token_type", M40_GGUF_INT32, types, 3, &e);
    m40_gguf_writer_begin_array(w, "nested", M40_GGUF_ARRAY, 2, &e);
    m40_gguf_writer_begin_array(w, NULL, M40_GGUF_STRING, 1, &e);
    m40_gguf_writer_push_str(w, "s", 1, &e);
    m40_gguf_writer_end_array(w, &e);
    m40_gguf_writer_begin_array(w, NULL, M40_GGUF_UINT16, 1, &e);
    m40_gguf_writer_push(w, &(uint16_t){7}, &e);
    m40_gguf_writer_end_array(w, &e);
    m40_gguf_writer_end_array(w, &e);
    m40_gguf_writer_add_tensor(w, "q", M40_GGML_Q8_0, 2, (uint64_t[]){32, 2}, q8, sizeof q8, &e);
    m40_gguf_writer_add_tensor(w, "f", M40_GGML_F32, 1, (uint64_t[]){8}, f32, sizeof f32, &e);
    void *buf = NULL;
    *size = 0;
    CHECK(m40_gguf_writer_write_memory(w, &buf, size, &e) == 0);
    m40_gguf_writer_free(w);
    return buf;
}

static void test_every_truncation_fails(void) {
    size_t size = 0;
    uint8_t *file = small_valid_file(&size);
    CHECK(file && size > 200);
    CHECK(try_open(file, size));
    int bad = 0;
    for (size_t n = 0; n < size; n++) {
        if (try_open(file, n)) {
            fprintf(stderr, "prefix of %zu bytes opened\n", n);
            bad++;
            continue;
        }
        const char *m = g_err.msg;
        if (!strstr(m, "truncated") && !strstr(m, "past the end") && !strstr(m, "can hold")) {
            fprintf(stderr, "prefix of %zu bytes: unexpected message: %s\n", n, m);
            bad++;
        }
    }
    CHECK(bad == 0);
    free(file);
}

/* --- files --------------------------------------------------------------- */

static const char *temp_path(const char *name) {
    const char *dir = getenv("TMPDIR");
    static char path[4096];
    snprintf(path, sizeof path, "%s/m40_gguf_%ld_%s", dir && *dir ? dir : "/tmp", (long)getpid(),
             name);
    return path;
}

static void test_open_file_errors(void) {
    m40_gguf *g = NULL;
    m40_err e = {0};
    CHECK(m40_gguf_open(&g, "/nonexistent/model.gguf", &e) != 0 && g == NULL);
    CHECK_CONTAINS(e.msg, "/nonexistent/model.gguf: cannot open: No such file or directory");
    CHECK(m40_gguf_open(&g, "/tmp", &e) != 0);
    CHECK_CONTAINS(e.msg, "/tmp: not a regular file");
    const char *path = temp_path("empty.gguf");
    FILE *f = fopen(path, "wb");
    if (f)
        fclose(f);
    CHECK(m40_gguf_open(&g, path, &e) != 0);
    CHECK_CONTAINS(e.msg, path);
    CHECK_CONTAINS(e.msg, ": truncated header: file is 0 bytes");
    path = temp_path("bad.gguf");
    f = fopen(path, "wb");
    if (f) {
        fwrite("GGUF\1\0\0\0", 1, 8, f);
        fclose(f);
    }
    CHECK(m40_gguf_open(&g, path, &e) != 0);
    CHECK_CONTAINS(e.msg, "bad.gguf: unsupported GGUF version 1");
    unlink(path);
    unlink(temp_path("empty.gguf"));
    m40_gguf_close(NULL);
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    }
    if (f)
        fclose(f);
    return kib;
}

/* A 13 GB model (one sparse F32 tensor): opening maps it without reading
 * it, so the resident set barely moves. */
static void test_large_sparse_file_small_rss(void) {
    const uint64_t ne[2] = {4096, 800000}; /* 13.1e9 bytes of F32 */
    bb b = {0};
    bb_header(&b, 3, 1, 1);
    bb_kv_str(&b, "general.architecture", "llama");
    bb_tensor(&b, "token_embd.weight", 2, ne, M40_GGML_F32, 0);
    bb_pad(&b, 32);
    const char *path = temp_path("sparse.gguf");
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    CHECK(fd >= 0);
    uint64_t total = b.len + ne[0] * ne[1] * 4;
    bool ok =
        fd >= 0 && write(fd, b.p, b.len) == (ssize_t)b.len && ftruncate(fd, (off_t)total) == 0;
    if (fd >= 0)
        close(fd);
    CHECK(ok);
    long before = rss_kib();
    m40_gguf *g = NULL;
    m40_err e = {0};
    CHECK(ok && m40_gguf_open(&g, path, &e) == 0);
    long after = rss_kib();
    if (g) {
        const m40_gguf_tensor *t = m40_gguf_get_tensor(g, "token_embd.weight");
        CHECK(m40_gguf_file_size(g) == total);
        CHECK(t && t->n_bytes == UINT64_C(13107200000));
        CHECK(t && (const uint8_t *)t->data + t->n_bytes ==
                       (const uint8_t *)m40_gguf_file_data(g) + total);
    }
    printf("13 GB file: RSS %ld -> %ld KiB\n", before, after);
    CHECK(before > 0 && after - before < 8 * 1024);
    m40_gguf_close(g);
    unlink(path);
    free(b.p);
}

/* --- the real vocabulary files ------------------------------------------- */

typedef struct vocab_case {
    const char *file, *arch, *model;
    uint64_t n_tokens;
    const char *token1; /* the token with id 1 */
} vocab_case;

static const vocab_case k_vocab[] = {
    {"ggml-vocab-gpt-2.gguf", "gpt2", "gpt2", 50257, "\""},
    {"ggml-vocab-llama-bpe.gguf", "llama", "gpt2", 128256, "\""},
    {"ggml-vocab-llama-spm.gguf", "llama", "llama", 32000, "<s>"},
    {"ggml-vocab-qwen2.gguf", "qwen2", "gpt2", 151936, "\""},
};

static void check_vocab_file(const char *dir, const vocab_case *vc) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, vc->file);
    m40_gguf *g = NULL;
    m40_err e = {0};
    if (m40_gguf_open(&g, path, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        CHECK(0);
        return;
    }
    m40_gguf_str s;
    m40_gguf_value tokens, types;
    CHECK(m40_gguf_version(g) == 3 && m40_gguf_tensor_count(g) == 0);
    CHECK(m40_gguf_get_str(g, "general.architecture", &s, &e) == 0 && m40_gguf_str_eq(s, vc->arch));
    CHECK(m40_gguf_get_str(g, "tokenizer.ggml.model", &s, &e) == 0 &&
          m40_gguf_str_eq(s, vc->model));
    CHECK(m40_gguf_get_array(g, "tokenizer.ggml.tokens", M40_GGUF_STRING, &tokens, &e) == 0);
    CHECK(tokens.count == vc->n_tokens);
    CHECK(m40_gguf_array_str(&tokens, 1, &s, &e) == 0 && m40_gguf_str_eq(s, vc->token1));
    CHECK(m40_gguf_get_array(g, "tokenizer.ggml.token_type", M40_GGUF_INT32, &types, &e) == 0);
    CHECK(types.count == vc->n_tokens && types.size == 4 * vc->n_tokens);
    uint64_t bytes = 0;
    for (uint64_t i = 0; i < tokens.count; i++) {
        if (m40_gguf_array_str(&tokens, i, &s, &e) != 0)
            break;
        bytes += s.len;
    }
    CHECK(bytes > tokens.count && bytes < m40_gguf_file_size(g));
    uint32_t bos = UINT32_MAX;
    CHECK(m40_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &bos, &e) == 0 && bos < vc->n_tokens);
    printf("%s: %s/%s, %" PRIu64 " tokens, %zu kvs\n", vc->file, vc->arch, vc->model, tokens.count,
           m40_gguf_kv_count(g));
    m40_gguf_close(g);
}

static void test_vocab_fixtures(const char *dir) {
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d) {
        fprintf(stderr,
                "vocab fixtures not found at '%s': they live in tests/fixtures/vocab "
                "(pass the directory as the first argument)\n",
                dir ? dir : "(no argument)");
        CHECK(0);
        return;
    }
    int found = 0;
    for (struct dirent *ent; (ent = readdir(d)) != NULL;) {
        size_t n = strlen(ent->d_name);
        if (n < 5 || strcmp(ent->d_name + n - 5, ".gguf") != 0)
            continue;
        for (size_t i = 0; i < sizeof k_vocab / sizeof k_vocab[0]; i++) {
            if (strcmp(ent->d_name, k_vocab[i].file) == 0) {
                check_vocab_file(dir, &k_vocab[i]);
                found++;
            }
        }
    }
    closedir(d);
    CHECK(found == (int)(sizeof k_vocab / sizeof k_vocab[0]));
}

int main(int argc, char **argv) {
    test_bad_magic();
    test_big_endian_rejected();
    test_unsupported_versions();
    test_version_2_opens();
    test_truncated_header();
    test_huge_counts_rejected();
    test_string_lengths_past_end();
    test_array_lengths_past_end();
    test_unknown_value_types();
    test_nesting_depth_bounded();
    test_bool_not_0_or_1();
    test_duplicate_keys();
    test_key_too_long();
    test_invalid_alignment();
    test_tensor_dims_count();
    test_tensor_element_count_overflow();
    test_tensor_byte_size_overflow();
    test_tensor_zero_dim();
    test_unknown_tensor_type();
    test_iq_types_sized();
    test_row_not_whole_blocks();
    test_offset_not_aligned();
    test_tensor_data_past_end();
    test_tensors_overlap();
    test_duplicate_tensor_names();
    test_tensor_name_too_long();
    test_truncated_tensor_info();
    test_every_truncation_fails();
    test_open_file_errors();
    test_large_sparse_file_small_rss();
    test_vocab_fixtures(argc > 1 ? argv[1] : NULL);
    return check_report();
}
