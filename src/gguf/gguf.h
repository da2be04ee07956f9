/* gguf.h - reading GGUF files: zero-copy views over a validated mapping.
 *
 * m40_gguf_open maps a file read-only (open + fstat + mmap; nothing is read
 * into RAM, so a 13 GB model opens with a few pages resident) and
 * m40_gguf_open_memory parses a caller's buffer without copying it. Either
 * way the whole structure is parsed and validated once, at open: every
 * length, count, type, shape and tensor extent is checked against the file,
 * and a bad file fails with one line naming the problem and the key or
 * tensor (docs/gguf.md lists the checks). After a successful open no
 * accessor can read outside the mapping.
 *
 * GGUF v2 and v3, little-endian only. Strings in the file are NOT
 * NUL-terminated: names, keys and string values are m40_gguf_str views
 * (pointer + length) into the mapping, valid until m40_gguf_close.
 * Lookups by key or tensor name are O(1) (hash tables built at open); the
 * i-th element of any array, strings and nested arrays included, is O(1).
 *
 * Owns: the mapping (for m40_gguf_open), the kv and tensor tables and their
 * indexes. Touches: nothing else; knows nothing of models or architectures
 * (src/model/ checks which keys and tensors an architecture needs).
 */
#ifndef M40_GGUF_GGUF_H
#define M40_GGUF_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define M40_GGUF_MAGIC             "GGUF"
#define M40_GGUF_HEADER_BYTES      24 /* magic, version, tensor count, kv count */
#define M40_GGUF_DEFAULT_ALIGNMENT 32
#define M40_GGUF_MAX_DIMS          4
#define M40_GGUF_MAX_NAME          64    /* bytes in a tensor name (GGUF spec) */
#define M40_GGUF_MAX_KEY           65535 /* bytes in a key (GGUF spec) */
#define M40_GGUF_MAX_DEPTH         8     /* arrays nested in arrays, levels */

/* Metadata value types, as stored in the file. */
typedef enum m40_gguf_type {
    M40_GGUF_UINT8 = 0,
    M40_GGUF_INT8 = 1,
    M40_GGUF_UINT16 = 2,
    M40_GGUF_INT16 = 3,
    M40_GGUF_UINT32 = 4,
    M40_GGUF_INT32 = 5,
    M40_GGUF_FLOAT32 = 6,
    M40_GGUF_BOOL = 7,
    M40_GGUF_STRING = 8,
    M40_GGUF_ARRAY = 9,
    M40_GGUF_UINT64 = 10,
    M40_GGUF_INT64 = 11,
    M40_GGUF_FLOAT64 = 12,
    M40_GGUF_TYPE_COUNT = 13,
    M40_GGUF_ANY = 0xffffffffu /* m40_gguf_get_array: any element type */
} m40_gguf_type;

/* A byte string inside the mapping; not NUL-terminated. */
typedef struct m40_gguf_str {
    const char *ptr;
    size_t len;
} m40_gguf_str;

/* A metadata value (a kv's value or an array element). Made only by the
 * reader; valid until m40_gguf_close. Multi-byte scalars at `data` may be
 * unaligned: read them with m40_gguf_value_scalar or memcpy. */
typedef struct m40_gguf_value {
    uint32_t type;          /* m40_gguf_type */
    uint32_t elem_type;     /* arrays: the elements' type; otherwise 0 */
    uint64_t count;         /* arrays: number of elements; otherwise 1 */
    const void *data;       /* scalar: its bytes; string: its bytes; array: first element */
    uint64_t size;          /* bytes at data (string: its length) */
    const uint64_t *index_; /* private: element offsets of string / nested arrays */
} m40_gguf_value;

/* A scalar value; the member named after the value's type is set. */
typedef union m40_gguf_scalar {
    uint8_t u8;
    int8_t i8;
    uint16_t u16;
    int16_t i16;
    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    int64_t i64;
    float f32;
    double f64;
    bool b;
} m40_gguf_scalar;

/* One tensor, as validated at open. ne[0] is the innermost dimension (a row's
 * length, as in GGML); ne[i] for i >= n_dims is 1. */
typedef struct m40_gguf_tensor {
    m40_gguf_str name;
    uint32_t n_dims; /* 1..4 */
    uint32_t type;   /* m40_ggml_type (quant/ggml_types.h), always sizable */
    uint64_t ne[M40_GGUF_MAX_DIMS];
    uint64_t n_elems; /* product of ne, <= INT64_MAX */
    uint64_t n_bytes; /* bytes of data */
    uint64_t offset;  /* from the start of the data section */
    const void *data; /* into the mapping: data section + offset */
} m40_gguf_tensor;

typedef struct m40_gguf m40_gguf;

/* Opens and validates a GGUF file. Errors name the path. */
int m40_gguf_open(m40_gguf **out, const char *path, m40_err *err);

/* Parses and validates `size` bytes at `data`, which the caller keeps alive
 * and unchanged until m40_gguf_close (nothing is copied). */
int m40_gguf_open_memory(m40_gguf **out, const void *data, size_t size, m40_err *err);

/* Unmaps and frees; NULL is allowed. Every view from `g` dies with it. */
void m40_gguf_close(m40_gguf *g);

/* File facts. data_offset is where the (aligned) data section starts; in a
 * file without tensors it may equal or exceed file_size. */
uint32_t m40_gguf_version(const m40_gguf *g);
uint32_t m40_gguf_alignment(const m40_gguf *g);
uint64_t m40_gguf_file_size(const m40_gguf *g);
uint64_t m40_gguf_data_offset(const m40_gguf *g);
const void *m40_gguf_file_data(const m40_gguf *g); /* the first byte of the file */
/* The GGML type most of the file's matrices (tensors of 2 or more
 * dimensions) have, the first such type on a tie; F32 when none: what a
 * listing calls the file's quantization. */
uint32_t m40_gguf_main_type(const m40_gguf *g);
size_t m40_gguf_kv_count(const m40_gguf *g);
size_t m40_gguf_tensor_count(const m40_gguf *g);

/* GGUF's name of a value type ("uint32", "string", ...; "unknown"), and the
 * bytes of a fixed-size type (0 for STRING, ARRAY and unknown ids). */
const char *m40_gguf_type_name(uint32_t type);
size_t m40_gguf_type_size(uint32_t type);

/* True when the view holds exactly the bytes of the C string `s`. */
bool m40_gguf_str_eq(m40_gguf_str view, const char *s);

/* --- kvs by index ------------------------------------------------------ */

/* Index of `key`, or -1. The _n form takes a key that need not be
 * NUL-terminated. */
int64_t m40_gguf_find_kv(const m40_gguf *g, const char *key);
int64_t m40_gguf_find_kv_n(const m40_gguf *g, const char *key, size_t len);

/* Key, type and value of kv `i` (i < kv_count; otherwise an empty view,
 * M40_GGUF_TYPE_COUNT and NULL). */
m40_gguf_str m40_gguf_kv_key(const m40_gguf *g, size_t i);
uint32_t m40_gguf_kv_type(const m40_gguf *g, size_t i);
const m40_gguf_value *m40_gguf_kv_value(const m40_gguf *g, size_t i);

/* --- kvs by key: fail when the key is missing or has another type -------- */

int m40_gguf_get_u8(const m40_gguf *g, const char *key, uint8_t *out, m40_err *err);
int m40_gguf_get_i8(const m40_gguf *g, const char *key, int8_t *out, m40_err *err);
int m40_gguf_get_u16(const m40_gguf *g, const char *key, uint16_t *out, m40_err *err);
int m40_gguf_get_i16(const m40_gguf *g, const char *key, int16_t *out, m40_err *err);
int m40_gguf_get_u32(const m40_gguf *g, const char *key, uint32_t *out, m40_err *err);
int m40_gguf_get_i32(const m40_gguf *g, const char *key, int32_t *out, m40_err *err);
int m40_gguf_get_u64(const m40_gguf *g, const char *key, uint64_t *out, m40_err *err);
int m40_gguf_get_i64(const m40_gguf *g, const char *key, int64_t *out, m40_err *err);
int m40_gguf_get_f32(const m40_gguf *g, const char *key, float *out, m40_err *err);
int m40_gguf_get_f64(const m40_gguf *g, const char *key, double *out, m40_err *err);
int m40_gguf_get_bool(const m40_gguf *g, const char *key, bool *out, m40_err *err);
int m40_gguf_get_str(const m40_gguf *g, const char *key, m40_gguf_str *out, m40_err *err);

/* Any integer type with a non-negative value (GGUF writers store counts as
 * uint32 or uint64; the spec asks readers to take both). */
int m40_gguf_get_uint(const m40_gguf *g, const char *key, uint64_t *out, m40_err *err);
/* FLOAT32 or FLOAT64. */
int m40_gguf_get_float(const m40_gguf *g, const char *key, double *out, m40_err *err);

/* An array whose elements have type `elem_type` (M40_GGUF_ANY: any). For a
 * fixed-size element type, out->data holds out->count packed elements. */
int m40_gguf_get_array(const m40_gguf *g, const char *key, uint32_t elem_type, m40_gguf_value *out,
                       m40_err *err);

/* --- values -------------------------------------------------------------- */

/* Reads a scalar (any type but STRING and ARRAY). */
int m40_gguf_value_scalar(const m40_gguf_value *v, m40_gguf_scalar *out, m40_err *err);
/* The bytes of a STRING value. */
int m40_gguf_value_str(const m40_gguf_value *v, m40_gguf_str *out, m40_err *err);
/* Element i of an ARRAY value, in O(1) for every element type. */
int m40_gguf_array_elem(const m40_gguf_value *arr, uint64_t i, m40_gguf_value *out, m40_err *err);
/* String i of an array of strings, in O(1). */
int m40_gguf_array_str(const m40_gguf_value *arr, uint64_t i, m40_gguf_str *out, m40_err *err);

/* --- tensors ------------------------------------------------------------- */

/* Tensor i (in file order), or NULL when i >= tensor_count. */
const m40_gguf_tensor *m40_gguf_tensor_at(const m40_gguf *g, size_t i);
/* Index of the tensor named `name`, or -1. */
int64_t m40_gguf_find_tensor(const m40_gguf *g, const char *name);
int64_t m40_gguf_find_tensor_n(const m40_gguf *g, const char *name, size_t len);
/* The tensor named `name`, or NULL. */
const m40_gguf_tensor *m40_gguf_get_tensor(const m40_gguf *g, const char *name);

#endif /* M40_GGUF_GGUF_H */
