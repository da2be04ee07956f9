/* gguf.c - GGUF reader: map, parse once, validate everything, index.
 *
 * The parser walks the file front to back with a cursor that never moves
 * past the end: every read asks for its bytes first, and every count or
 * length taken from the file is checked against the bytes that are left
 * before it is used for arithmetic or allocation. Allocations are sized from
 * counts that already passed that check, so they are bounded by a small
 * multiple of the file's size.
 *
 * Owns: struct m40_gguf (mapping, kv and tensor tables, hash indexes, the
 * element-offset pool of string and nested arrays). Touches: nothing else.
 */
#include "gguf/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "quant/ggml_types.h"

/* Values are read with memcpy in host order; GGUF is little-endian. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF reader assumes a little-endian host"
#endif

#define NO_INDEX UINT64_MAX

/* Smallest encodings, used to bound counts before allocating: a kv is a key
 * length (8) + type (4) + at least a 1-byte value (a string value is 8); a
 * tensor info is a name length (8) + n_dims (4) + one dim (8) + type (4) +
 * offset (8). */
#define MIN_KV_BYTES       (8 + 4 + 1)
#define MIN_TENSOR_BYTES   (8 + 4 + 8 + 4 + 8)
#define MIN_STRING_BYTES   8
#define MIN_ARRAY_BYTES    (4 + 8)
#define ARRAY_HEADER_BYTES (4 + 8)
#define MAX_PRINTED_NAME   96 /* bytes of a key or name quoted in a message */

/* An open-addressing index from names to table positions; slots hold
 * position + 1 (0 is empty). Names are read back through the table itself:
 * `items` + i * `stride` + `name_off` is the m40_gguf_str of entry i. */
typedef struct name_index {
    size_t *slots;
    size_t mask;
    const char *items;
    size_t stride, name_off;
} name_index;

typedef struct kv_entry {
    m40_gguf_str key;
    m40_gguf_value val;
    uint64_t index_base; /* position of val's element offsets in the pool */
} kv_entry;

struct m40_gguf {
    const uint8_t *base;
    uint64_t size;
    void *map; /* from mmap (m40_gguf_open), else NULL */
    uint32_t version, alignment;
    uint64_t data_offset;
    size_t n_kv, n_tensors;
    kv_entry *kvs;
    m40_gguf_tensor *tensors;
    name_index kv_index, tensor_index;
    /* Element offsets of every string array and array of arrays, at any
     * depth, so that indexing them is O(1). A string array of n elements owns
     * n entries (offset of element i from the array's first element); an
     * array of arrays owns 2n (offset, then the distance from this array's
     * first entry to the child's first entry, or NO_INDEX). */
    uint64_t *pool;
    size_t pool_len, pool_cap;
};

typedef struct parser {
    m40_gguf *g;
    uint64_t pos;
    m40_err *err;
    char what[160]; /* what is being read, for messages: "key 'x'" */
} parser;

/* --- small helpers ------------------------------------------------------- */

static const char *const k_type_names[M40_GGUF_TYPE_COUNT] = {
    "uint8", "int8",   "uint16", "int16",  "uint32", "int32",   "float32",
    "bool",  "string", "array",  "uint64", "int64",  "float64",
};

static const uint8_t k_type_sizes[M40_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *m40_gguf_type_name(uint32_t type) {
    return type < M40_GGUF_TYPE_COUNT ? k_type_names[type] : "unknown";
}

size_t m40_gguf_type_size(uint32_t type) {
    return type < M40_GGUF_TYPE_COUNT ? k_type_sizes[type] : 0;
}

bool m40_gguf_str_eq(m40_gguf_str view, const char *s) {
    size_t n = strlen(s);
    return view.len == n && (n == 0 || memcmp(view.ptr, s, n) == 0);
}

static int printed_len(uint64_t len) {
    return (int)(len < MAX_PRINTED_NAME ? len : MAX_PRINTED_NAME);
}

static uint32_t load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint64_t load_u64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint32_t bswap32(uint32_t v) {
    return (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
}

static bool is_pow2(uint64_t v) {
    return v != 0 && (v & (v - 1)) == 0;
}

/* --- name index ---------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static int index_init(name_index *ix, size_t n, const void *items, size_t stride, size_t name_off) {
    size_t cap = 8;
    while (cap < 2 * n)
        cap *= 2;
    ix->slots = calloc(cap, sizeof *ix->slots);
    if (!ix->slots)
        return -1;
    ix->mask = cap - 1;
    ix->items = items;
    ix->stride = stride;
    ix->name_off = name_off;
    return 0;
}

static const m40_gguf_str *index_name(const name_index *ix, size_t i) {
    return (const m40_gguf_str *)(const void *)(ix->items + i * ix->stride + ix->name_off);
}

/* Position of `name`, or -1. With `insert_pos` >= 0 a missing name is added
 * at that position (and -1 returned); a present one is left alone. */
static int64_t index_lookup(const name_index *ix, const char *name, size_t len,
                            int64_t insert_pos) {
    if (!ix->slots)
        return -1;
    size_t h = (size_t)hash_bytes(name, len) & ix->mask;
    for (;; h = (h + 1) & ix->mask) {
        size_t slot = ix->slots[h];
        if (slot == 0) {
            if (insert_pos >= 0)
                ix->slots[h] = (size_t)insert_pos + 1;
            return -1;
        }
        const m40_gguf_str *s = index_name(ix, slot - 1);
        if (s->len == len && (len == 0 || memcmp(s->ptr, name, len) == 0))
            return (int64_t)(slot - 1);
    }
}

/* --- cursor -------------------------------------------------------------- */

static uint64_t bytes_left(const parser *p) {
    return p->g->size - p->pos;
}

static int truncated(parser *p, uint64_t need) {
    return m40_errf(p->err,
                    "%s: file truncated at offset %" PRIu64 " (needs %" PRIu64
                    " bytes, file is %" PRIu64 " bytes)",
                    p->what, p->pos, need, p->g->size);
}

static int take(parser *p, uint64_t n, const uint8_t **out) {
    if (n > bytes_left(p))
        return truncated(p, n);
    *out = p->g->base + p->pos;
    p->pos += n;
    return 0;
}

static int read_u32(parser *p, uint32_t *v) {
    const uint8_t *b = NULL;
    if (take(p, 4, &b))
        return -1;
    *v = load_u32(b);
    return 0;
}

static int read_u64(parser *p, uint64_t *v) {
    const uint8_t *b = NULL;
    if (take(p, 8, &b))
        return -1;
    *v = load_u64(b);
    return 0;
}

/* A GGUF string: u64 length, then that many bytes. */
static int read_string(parser *p, m40_gguf_str *out) {
    uint64_t at = p->pos, len;
    if (read_u64(p, &len))
        return -1;
    if (len > bytes_left(p))
        return m40_errf(p->err,
                        "%s: string of %" PRIu64 " bytes at offset %" PRIu64
                        " runs past the end of the file (%" PRIu64 " bytes)",
                        p->what, len, at, p->g->size);
    const uint8_t *b = NULL;
    take(p, len, &b);
    out->ptr = (const char *)b;
    out->len = (size_t)len;
    return 0;
}

/* --- header -------------------------------------------------------------- */

static int too_short(parser *p) {
    return m40_errf(p->err, "truncated header: file is %" PRIu64 " bytes, a GGUF header takes %d",
                    p->g->size, M40_GGUF_HEADER_BYTES);
}

static int check_magic(parser *p) {
    const uint8_t *m = p->g->base;
    if (p->g->size < 4)
        return too_short(p);
    if (memcmp(m, "GGUF", 4) == 0)
        return 0;
    if (memcmp(m, "FUGG", 4) == 0)
        return m40_errf(p->err, "big-endian GGUF is unsupported (byte-swapped magic 'FUGG')");
    return m40_errf(p->err,
                    "bad magic %02x %02x %02x %02x (expected 'GGUF' = 47 47 55 46): "
                    "not a GGUF file",
                    m[0], m[1], m[2], m[3]);
}

static int check_version(parser *p, uint32_t v) {
    if (v == 2 || v == 3)
        return 0;
    uint32_t swapped = bswap32(v);
    if (swapped >= 1 && swapped <= 3)
        return m40_errf(p->err,
                        "big-endian GGUF is unsupported (version field 0x%08" PRIx32
                        " is a byte-swapped %" PRIu32 ")",
                        v, swapped);
    return m40_errf(p->err, "unsupported GGUF version %" PRIu32 " (m40-llm reads versions 2 and 3)",
                    v);
}

/* Rejects counts the file cannot hold before anything is allocated for
 * them: every kv and tensor info takes a minimum number of bytes. */
static int check_counts(parser *p, uint64_t n_kv, uint64_t n_tensors) {
    uint64_t left = bytes_left(p);
    if (n_kv > left / MIN_KV_BYTES)
        return m40_errf(p->err,
                        "header claims %" PRIu64 " metadata kvs, more than the %" PRIu64
                        " bytes after the header can hold (a kv takes at least %d)",
                        n_kv, left, MIN_KV_BYTES);
    left -= n_kv * MIN_KV_BYTES;
    if (n_tensors > left / MIN_TENSOR_BYTES)
        return m40_errf(p->err,
                        "header claims %" PRIu64 " tensors, more than the %" PRIu64
                        " bytes after the header can hold (a tensor info takes at least %d)",
                        n_tensors, bytes_left(p), MIN_TENSOR_BYTES);
    return 0;
}

static int parse_header(parser *p, uint64_t *n_kv, uint64_t *n_tensors) {
    snprintf(p->what, sizeof p->what, "header");
    if (check_magic(p))
        return -1;
    if (p->g->size < 8)
        return too_short(p);
    p->g->version = load_u32(p->g->base + 4);
    if (check_version(p, p->g->version))
        return -1;
    if (p->g->size < M40_GGUF_HEADER_BYTES)
        return too_short(p);
    *n_tensors = load_u64(p->g->base + 8);
    *n_kv = load_u64(p->g->base + 16);
    p->pos = M40_GGUF_HEADER_BYTES;
    return check_counts(p, *n_kv, *n_tensors);
}

/* --- metadata values ----------------------------------------------------- */

static int pool_reserve(parser *p, uint64_t n, uint64_t *base) {
    m40_gguf *g = p->g;
    /* n was bounded by the bytes left in the file, so this cannot overflow
     * on any file that fits in the address space. */
    if (n > SIZE_MAX / sizeof *g->pool - g->pool_len)
        return m40_errf(p->err, "%s: array index too large", p->what);
    size_t need = g->pool_len + (size_t)n;
    if (need > g->pool_cap) {
        size_t cap = g->pool_cap ? g->pool_cap : 1024;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 / sizeof *g->pool ? need : cap * 2;
        uint64_t *pool = realloc(g->pool, cap * sizeof *pool);
        if (!pool)
            return m40_errf(p->err, "%s: out of memory indexing arrays", p->what);
        g->pool = pool;
        g->pool_cap = cap;
    }
    *base = g->pool_len;
    g->pool_len = need;
    return 0;
}

static int check_bools(parser *p, const uint8_t *b, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        if (b[i] > 1)
            return m40_errf(p->err, "%s: bool value %u at offset %" PRIu64 " is neither 0 nor 1",
                            p->what, b[i], (uint64_t)(b + i - p->g->base));
    }
    return 0;
}

static int parse_array(parser *p, int depth, m40_gguf_value *out, uint64_t *index_base);

/* Elements of fixed size: one bounds check covers them all. */
static int parse_fixed_elems(parser *p, m40_gguf_value *out) {
    size_t esize = m40_gguf_type_size(out->elem_type);
    if (out->count > bytes_left(p) / esize)
        return m40_errf(p->err,
                        "%s: array of %" PRIu64 " %s elements at offset %" PRIu64
                        " runs past the end of the file (%" PRIu64 " bytes)",
                        p->what, out->count, m40_gguf_type_name(out->elem_type), p->pos,
                        p->g->size);
    const uint8_t *b = NULL;
    take(p, out->count * esize, &b);
    if (out->elem_type == M40_GGUF_BOOL && check_bools(p, b, out->count))
        return -1;
    return 0;
}

/* Strings or arrays: walk each one, recording where it starts. */
static int parse_var_elems(parser *p, int depth, m40_gguf_value *out, uint64_t *index_base) {
    bool strings = out->elem_type == M40_GGUF_STRING;
    uint64_t min = strings ? MIN_STRING_BYTES : MIN_ARRAY_BYTES, stride = strings ? 1 : 2;
    if (out->count > bytes_left(p) / min)
        return m40_errf(p->err,
                        "%s: array of %" PRIu64 " %s elements at offset %" PRIu64
                        " runs past the end of the file (%" PRIu64 " bytes)",
                        p->what, out->count, m40_gguf_type_name(out->elem_type), p->pos,
                        p->g->size);
    if (out->count == 0)
        return 0;
    uint64_t base = 0, start = p->pos;
    if (pool_reserve(p, out->count * stride, &base))
        return -1;
    *index_base = base;
    for (uint64_t i = 0; i < out->count; i++) {
        /* Store through g->pool each time: a nested array may grow it. */
        p->g->pool[base + i * stride] = p->pos - start;
        if (strings) {
            m40_gguf_str s;
            if (read_string(p, &s))
                return -1;
            continue;
        }
        m40_gguf_value child;
        uint64_t child_base = NO_INDEX;
        if (parse_array(p, depth + 1, &child, &child_base))
            return -1;
        p->g->pool[base + i * stride + 1] = child_base == NO_INDEX ? NO_INDEX : child_base - base;
    }
    return 0;
}

/* An array value: element type, count, elements. depth is 1 for an array
 * stored directly in a kv. */
static int parse_array(parser *p, int depth, m40_gguf_value *out, uint64_t *index_base) {
    if (depth > M40_GGUF_MAX_DEPTH)
        return m40_errf(p->err, "%s: arrays nested deeper than %d levels", p->what,
                        M40_GGUF_MAX_DEPTH);
    memset(out, 0, sizeof *out);
    out->type = M40_GGUF_ARRAY;
    if (read_u32(p, &out->elem_type) || read_u64(p, &out->count))
        return -1;
    if (out->elem_type >= M40_GGUF_TYPE_COUNT)
        return m40_errf(p->err, "%s: array of unknown value type %" PRIu32, p->what,
                        out->elem_type);
    uint64_t start = p->pos;
    *index_base = NO_INDEX;
    int rc = m40_gguf_type_size(out->elem_type) ? parse_fixed_elems(p, out)
                                                : parse_var_elems(p, depth, out, index_base);
    if (rc)
        return -1;
    out->data = p->g->base + start;
    out->size = p->pos - start;
    return 0;
}

static int parse_value(parser *p, uint32_t type, m40_gguf_value *out, uint64_t *index_base) {
    memset(out, 0, sizeof *out);
    *index_base = NO_INDEX;
    if (type == M40_GGUF_ARRAY)
        return parse_array(p, 1, out, index_base);
    out->type = type;
    out->count = 1;
    if (type == M40_GGUF_STRING) {
        m40_gguf_str s;
        if (read_string(p, &s))
            return -1;
        out->data = s.ptr;
        out->size = s.len;
        return 0;
    }
    size_t size = m40_gguf_type_size(type);
    if (size == 0)
        return m40_errf(p->err, "%s: unknown value type %" PRIu32, p->what, type);
    const uint8_t *b = NULL;
    if (take(p, size, &b))
        return -1;
    if (type == M40_GGUF_BOOL && check_bools(p, b, 1))
        return -1;
    out->data = b;
    out->size = size;
    return 0;
}

/* --- kvs ----------------------------------------------------------------- */

static int parse_kv(parser *p, size_t i) {
    kv_entry *kv = &p->g->kvs[i];
    snprintf(p->what, sizeof p->what, "kv #%zu", i);
    if (read_string(p, &kv->key))
        return -1;
    if (kv->key.len > M40_GGUF_MAX_KEY)
        return m40_errf(p->err, "kv #%zu: key of %zu bytes is longer than GGUF's limit of %d", i,
                        kv->key.len, M40_GGUF_MAX_KEY);
    snprintf(p->what, sizeof p->what, "key '%.*s'", printed_len(kv->key.len), kv->key.ptr);
    int64_t dup = index_lookup(&p->g->kv_index, kv->key.ptr, kv->key.len, (int64_t)i);
    if (dup >= 0)
        return m40_errf(p->err, "duplicate key '%.*s' (kvs #%" PRId64 " and #%zu)",
                        printed_len(kv->key.len), kv->key.ptr, dup, i);
    uint32_t type;
    if (read_u32(p, &type))
        return -1;
    return parse_value(p, type, &kv->val, &kv->index_base);
}

static int parse_kvs(parser *p, uint64_t n_kv) {
    m40_gguf *g = p->g;
    g->kvs = calloc(n_kv ? (size_t)n_kv : 1, sizeof *g->kvs);
    if (!g->kvs ||
        index_init(&g->kv_index, (size_t)n_kv, g->kvs, sizeof *g->kvs, offsetof(kv_entry, key)))
        return m40_errf(p->err, "out of memory for %" PRIu64 " kvs", n_kv);
    for (size_t i = 0; i < n_kv; i++) {
        if (parse_kv(p, i))
            return -1;
    }
    g->n_kv = (size_t)n_kv;
    return 0;
}

static int read_alignment(parser *p) {
    m40_gguf *g = p->g;
    g->alignment = M40_GGUF_DEFAULT_ALIGNMENT;
    int64_t i = m40_gguf_find_kv(g, "general.alignment");
    if (i < 0)
        return 0;
    const m40_gguf_value *v = &g->kvs[i].val;
    if (v->type != M40_GGUF_UINT32)
        return m40_errf(p->err, "key 'general.alignment' has type %s, expected uint32",
                        m40_gguf_type_name(v->type));
    uint32_t a = load_u32(v->data);
    if (!is_pow2(a))
        return m40_errf(p->err,
                        "invalid alignment %" PRIu32
                        " in key 'general.alignment' (must be a non-zero power of two)",
                        a);
    g->alignment = a;
    return 0;
}

/* --- tensors ------------------------------------------------------------- */

static const char *format_dims(const m40_gguf_tensor *t, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t d = 0; d < t->n_dims && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%" PRIu64, d ? ", " : "[", t->ne[d]);
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
    return buf;
}

/* Type, dims, element count and byte size of a tensor already read. */
static int check_shape(parser *p, m40_gguf_tensor *t) {
    const m40_ggml_type_info *ti = m40_ggml_type_get(t->type);
    if (!ti)
        return m40_errf(p->err, "%s: unknown ggml type %" PRIu32, p->what, t->type);
    if (ti->block_elems == 0)
        return m40_errf(p->err,
                        "%s: ggml type %s (%" PRIu32
                        ") is not supported by m40-llm (its block size is unknown)",
                        p->what, ti->name, t->type);
    char dims[128];
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (t->ne[d] == 0)
            return m40_errf(p->err, "%s: dimension %" PRIu32 " of %s is 0", p->what, d,
                            format_dims(t, dims, sizeof dims));
        if (__builtin_mul_overflow(n, t->ne[d], &n) || n > (uint64_t)INT64_MAX)
            return m40_errf(p->err, "%s: element count of dims %s overflows int64", p->what,
                            format_dims(t, dims, sizeof dims));
    }
    if (t->ne[0] % ti->block_elems != 0)
        return m40_errf(p->err,
                        "%s: row length ne0 = %" PRIu64
                        " is not a multiple of %s's block size %" PRIu32,
                        p->what, t->ne[0], ti->name, ti->block_elems);
    uint64_t bytes;
    if (__builtin_mul_overflow(n / ti->block_elems, (uint64_t)ti->block_bytes, &bytes) ||
        bytes > SIZE_MAX)
        return m40_errf(p->err, "%s: byte size of dims %s in %s overflows 64 bits", p->what,
                        format_dims(t, dims, sizeof dims), ti->name);
    t->n_elems = n;
    t->n_bytes = bytes;
    return 0;
}

static int parse_tensor_info(parser *p, size_t i) {
    m40_gguf_tensor *t = &p->g->tensors[i];
    snprintf(p->what, sizeof p->what, "tensor #%zu", i);
    if (read_string(p, &t->name))
        return -1;
    if (t->name.len > M40_GGUF_MAX_NAME)
        return m40_errf(p->err,
                        "tensor #%zu: name '%.*s' of %zu bytes is longer than GGUF's limit of %d",
                        i, printed_len(t->name.len), t->name.ptr, t->name.len, M40_GGUF_MAX_NAME);
    snprintf(p->what, sizeof p->what, "tensor '%.*s'", (int)t->name.len, t->name.ptr);
    int64_t dup = index_lookup(&p->g->tensor_index, t->name.ptr, t->name.len, (int64_t)i);
    if (dup >= 0)
        return m40_errf(p->err, "duplicate tensor name '%.*s' (tensors #%" PRId64 " and #%zu)",
                        (int)t->name.len, t->name.ptr, dup, i);
    if (read_u32(p, &t->n_dims))
        return -1;
    if (t->n_dims == 0 || t->n_dims > M40_GGUF_MAX_DIMS)
        return m40_errf(p->err, "%s: %" PRIu32 " dimensions (must be 1 to %d)", p->what, t->n_dims,
                        M40_GGUF_MAX_DIMS);
    for (int d = 0; d < M40_GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (read_u64(p, &t->ne[d]))
            return -1;
    }
    if (read_u32(p, &t->type) || read_u64(p, &t->offset))
        return -1;
    return check_shape(p, t);
}

static int parse_tensor_infos(parser *p, uint64_t n_tensors) {
    m40_gguf *g = p->g;
    g->tensors = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *g->tensors);
    if (!g->tensors || index_init(&g->tensor_index, (size_t)n_tensors, g->tensors,
                                  sizeof *g->tensors, offsetof(m40_gguf_tensor, name)))
        return m40_errf(p->err, "out of memory for %" PRIu64 " tensors", n_tensors);
    g->n_tensors = (size_t)n_tensors;
    for (size_t i = 0; i < g->n_tensors; i++) {
        if (parse_tensor_info(p, i))
            return -1;
    }
    return 0;
}

/* Alignment of each offset and the extent of each tensor's data. */
static int place_tensors(parser *p) {
    m40_gguf *g = p->g;
    for (size_t i = 0; i < g->n_tensors; i++) {
        m40_gguf_tensor *t = &g->tensors[i];
        int nl = (int)t->name.len;
        if (t->offset % g->alignment != 0)
            return m40_errf(p->err,
                            "tensor '%.*s': offset %" PRIu64
                            " is not a multiple of the alignment %" PRIu32,
                            nl, t->name.ptr, t->offset, g->alignment);
        /* start and n_bytes are each compared with the room left, so no sum
         * below can wrap. */
        if (t->offset > g->size || g->data_offset > g->size - t->offset)
            return m40_errf(p->err,
                            "tensor '%.*s': offset %" PRIu64 " in the data section (at %" PRIu64
                            ") is past the end of the file (%" PRIu64 " bytes)",
                            nl, t->name.ptr, t->offset, g->data_offset, g->size);
        uint64_t start = g->data_offset + t->offset;
        if (t->n_bytes > g->size - start)
            return m40_errf(p->err,
                            "tensor '%.*s': data [offset %" PRIu64 ", %" PRIu64
                            " bytes) runs past the end of the file (%" PRIu64 " bytes)",
                            nl, t->name.ptr, start, t->n_bytes, g->size);
        t->data = g->base + start;
    }
    return 0;
}

typedef struct extent {
    uint64_t start, end;
    size_t idx;
} extent;

static int cmp_extent(const void *a, const void *b) {
    const extent *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Sorted by start, a tensor overlaps an earlier one exactly when it starts
 * before the furthest end seen so far. */
static int check_overlaps(parser *p) {
    m40_gguf *g = p->g;
    if (g->n_tensors < 2)
        return 0;
    extent *ex = malloc(g->n_tensors * sizeof *ex);
    if (!ex)
        return m40_errf(p->err, "out of memory checking %zu tensors", g->n_tensors);
    for (size_t i = 0; i < g->n_tensors; i++)
        ex[i] = (extent){g->tensors[i].offset, g->tensors[i].offset + g->tensors[i].n_bytes, i};
    qsort(ex, g->n_tensors, sizeof *ex, cmp_extent);
    size_t far = 0;
    int rc = 0;
    for (size_t i = 1; i < g->n_tensors && rc == 0; i++) {
        if (ex[i].start < ex[far].end) {
            const m40_gguf_tensor *a = &g->tensors[ex[far].idx], *b = &g->tensors[ex[i].idx];
            rc = m40_errf(p->err,
                          "tensors '%.*s' [%" PRIu64 ", %" PRIu64 ") and '%.*s' [%" PRIu64
                          ", %" PRIu64 ") overlap (offsets in the data section)",
                          (int)a->name.len, a->name.ptr, ex[far].start, ex[far].end,
                          (int)b->name.len, b->name.ptr, ex[i].start, ex[i].end);
        }
        if (ex[i].end > ex[far].end)
            far = i;
    }
    free(ex);
    return rc;
}

/* --- open / close -------------------------------------------------------- */

static int parse(m40_gguf *g, m40_err *err) {
    parser p = {.g = g, .err = err};
    uint64_t n_kv = 0, n_tensors = 0;
    if (parse_header(&p, &n_kv, &n_tensors) || parse_kvs(&p, n_kv) || read_alignment(&p) ||
        parse_tensor_infos(&p, n_tensors))
        return -1;
    /* pos <= size, so this only overflows for files near 2^64 bytes. */
    uint64_t a = g->alignment;
    if (p.pos > UINT64_MAX - (a - 1))
        return m40_errf(err, "data section offset overflows");
    g->data_offset = (p.pos + a - 1) / a * a;
    if (place_tensors(&p) || check_overlaps(&p))
        return -1;
    for (size_t i = 0; i < g->n_kv; i++) {
        kv_entry *kv = &g->kvs[i];
        kv->val.index_ = kv->index_base == NO_INDEX ? NULL : g->pool + kv->index_base;
    }
    return 0;
}

int m40_gguf_open_memory(m40_gguf **out, const void *data, size_t size, m40_err *err) {
    *out = NULL;
    if (!data && size)
        return m40_errf(err, "no buffer for %zu bytes", size);
    m40_gguf *g = calloc(1, sizeof *g);
    if (!g)
        return m40_errf(err, "out of memory");
    g->base = data ? data : (const uint8_t *)"";
    g->size = size;
    if (parse(g, err)) {
        m40_gguf_close(g);
        return -1;
    }
    *out = g;
    return 0;
}

static int map_file(const char *path, void **map, uint64_t *size, m40_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return m40_errf(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = m40_errf(err, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = m40_errf(err, "%s: not a regular file", path);
    else if ((uint64_t)st.st_size > SIZE_MAX)
        rc = m40_errf(err, "%s: too large to map", path);
    *size = rc ? 0 : (uint64_t)st.st_size;
    *map = NULL;
    if (rc == 0 && *size > 0) {
        /* Read-only and private: pages come from the page cache on demand,
         * so only what the parser touches (the metadata) becomes resident. */
        void *m = mmap(NULL, (size_t)*size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED)
            rc = m40_errf(err, "%s: cannot mmap %" PRIu64 " bytes: %s", path, *size,
                          strerror(errno));
        else
            *map = m;
    }
    close(fd);
    return rc;
}

int m40_gguf_open(m40_gguf **out, const char *path, m40_err *err) {
    *out = NULL;
    void *map = NULL;
    uint64_t size = 0;
    if (map_file(path, &map, &size, err))
        return -1;
    m40_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        if (map)
            munmap(map, (size_t)size);
        return m40_errf(err, "%s: out of memory", path);
    }
    g->map = map;
    g->base = map ? map : (const uint8_t *)"";
    g->size = size;
    if (parse(g, err)) {
        m40_gguf_close(g);
        return m40_err_wrap(err, "%s", path);
    }
    *out = g;
    return 0;
}

void m40_gguf_close(m40_gguf *g) {
    if (!g)
        return;
    if (g->map)
        munmap(g->map, (size_t)g->size);
    free(g->kvs);
    free(g->tensors);
    free(g->kv_index.slots);
    free(g->tensor_index.slots);
    free(g->pool);
    free(g);
}

/* --- file facts ---------------------------------------------------------- */

uint32_t m40_gguf_version(const m40_gguf *g) {
    return g->version;
}

uint32_t m40_gguf_alignment(const m40_gguf *g) {
    return g->alignment;
}

uint64_t m40_gguf_file_size(const m40_gguf *g) {
    return g->size;
}

uint32_t m40_gguf_main_type(const m40_gguf *g) {
    size_t counts[M40_GGML_TYPE_COUNT] = {0}, best = 0;
    uint32_t type = M40_GGML_F32;
    for (size_t i = 0; i < m40_gguf_tensor_count(g); i++) {
        const m40_gguf_tensor *t = m40_gguf_tensor_at(g, i);
        if (t->n_dims >= 2 && t->type < M40_GGML_TYPE_COUNT && ++counts[t->type] > best)
            best = counts[t->type], type = t->type;
    }
    return type;
}

uint64_t m40_gguf_data_offset(const m40_gguf *g) {
    return g->data_offset;
}

const void *m40_gguf_file_data(const m40_gguf *g) {
    return g->base;
}

size_t m40_gguf_kv_count(const m40_gguf *g) {
    return g->n_kv;
}

size_t m40_gguf_tensor_count(const m40_gguf *g) {
    return g->n_tensors;
}

/* --- kvs ----------------------------------------------------------------- */

int64_t m40_gguf_find_kv_n(const m40_gguf *g, const char *key, size_t len) {
    return index_lookup(&g->kv_index, key, len, -1);
}

int64_t m40_gguf_find_kv(const m40_gguf *g, const char *key) {
    return m40_gguf_find_kv_n(g, key, strlen(key));
}

m40_gguf_str m40_gguf_kv_key(const m40_gguf *g, size_t i) {
    return i < g->n_kv ? g->kvs[i].key : (m40_gguf_str){"", 0};
}

uint32_t m40_gguf_kv_type(const m40_gguf *g, size_t i) {
    return i < g->n_kv ? g->kvs[i].val.type : M40_GGUF_TYPE_COUNT;
}

const m40_gguf_value *m40_gguf_kv_value(const m40_gguf *g, size_t i) {
    return i < g->n_kv ? &g->kvs[i].val : NULL;
}

static const m40_gguf_value *find_value(const m40_gguf *g, const char *key, m40_err *err) {
    int64_t i = m40_gguf_find_kv(g, key);
    if (i < 0) {
        m40_errf(err, "key '%s' not found", key);
        return NULL;
    }
    return &g->kvs[i].val;
}

/* The value of `key` when it has exactly `type`, copied into out. */
static int get_typed(const m40_gguf *g, const char *key, uint32_t type, void *out, m40_err *err) {
    const m40_gguf_value *v = find_value(g, key, err);
    if (!v)
        return -1;
    if (v->type != type)
        return m40_errf(err, "key '%s' has type %s, expected %s", key, m40_gguf_type_name(v->type),
                        m40_gguf_type_name(type));
    memcpy(out, v->data, m40_gguf_type_size(type));
    return 0;
}

int m40_gguf_get_u8(const m40_gguf *g, const char *key, uint8_t *out, m40_err *err) {
    return get_typed(g, key, M40_GGUF_UINT8, out, err);
}

int m40_gguf_get_i8(const m40_gguf *g, const char *key, int8_t *out, m40_err *err) {
    return get_typed(g, key, M40_GGUF_INT8, out, err);
}

int m40_gguf_get_u16(const m40_gguf *g, const char *key, uint16_t *out, m40_err *err) {
    return get_typed(g, key, M40_GGUF_UINT16, out, err);
}

int m40_gguf_get_i16(const m40_gguf *g, const char *key, int16_t *out, m40_err *err) {
    return get_typed(g, key, M40_GGUF_INT16, out, err);
}

int m40_gguf_get_u32(const m40_gguf *g, const char *key, uint32_t *out, m40_err *err) {
    return get_typed(g, key, M40_GGUF_UINT32, out, err);
}

int m40_gguf_get_i32(const m40_gguf *g, const char *key, int32_t *out, m40_err *err) {
    return get_typed(g, key, M40_GGUF_INT32, out, err);
}

int m40_gguf_get_u64(const m40_gguf *g, const char *key, uint64_t *out, m40_err *err) {
    return get_typed(g, key, M40_GGUF_UINT64, out, err);
}

int m40_gguf_get_i64(const m40_gguf *g, const char *key, int64_t *out, m40_err *err) {
    return get_typed(g, key, M40_GGUF_INT64, out, err);
}

int m40_gguf_get_f32(const m40_gguf *g, const char *key, float *out, m40_err *err) {
    return get_typed(g, key, M40_GGUF_FLOAT32, out, err);
}

int m40_gguf_get_f64(const m40_gguf *g, const char *key, double *out, m40_err *err) {
    return get_typed(g, key, M40_GGUF_FLOAT64, out, err);
}

int m40_gguf_get_bool(const m40_gguf *g, const char *key, bool *out, m40_err *err) {
    uint8_t b = 0;
    if (get_typed(g, key, M40_GGUF_BOOL, &b, err))
        return -1;
    *out = b != 0;
    return 0;
}

int m40_gguf_get_str(const m40_gguf *g, const char *key, m40_gguf_str *out, m40_err *err) {
    const m40_gguf_value *v = find_value(g, key, err);
    if (!v)
        return -1;
    return m40_gguf_value_str(v, out, err) ? m40_err_wrap(err, "key '%s'", key) : 0;
}

static bool is_int_type(uint32_t t) {
    return t <= M40_GGUF_INT32 || (t >= M40_GGUF_UINT64 && t <= M40_GGUF_INT64);
}

static bool is_signed_type(uint32_t t) {
    return t == M40_GGUF_INT8 || t == M40_GGUF_INT16 || t == M40_GGUF_INT32 || t == M40_GGUF_INT64;
}

int m40_gguf_get_uint(const m40_gguf *g, const char *key, uint64_t *out, m40_err *err) {
    const m40_gguf_value *v = find_value(g, key, err);
    if (!v)
        return -1;
    if (!is_int_type(v->type))
        return m40_errf(err, "key '%s' has type %s, expected an integer", key,
                        m40_gguf_type_name(v->type));
    /* Little-endian: the bytes, zero-extended, are the value of an unsigned
     * type and of a non-negative signed one; the top bit is the sign. */
    size_t size = (size_t)v->size;
    uint64_t u = 0;
    memcpy(&u, v->data, size);
    if (is_signed_type(v->type) && (u >> (8 * size - 1)) != 0)
        return m40_errf(err, "key '%s' is negative, expected a non-negative integer", key);
    *out = u;
    return 0;
}

int m40_gguf_get_float(const m40_gguf *g, const char *key, double *out, m40_err *err) {
    const m40_gguf_value *v = find_value(g, key, err);
    if (!v)
        return -1;
    m40_gguf_scalar s;
    if (v->type == M40_GGUF_FLOAT32) {
        m40_gguf_value_scalar(v, &s, NULL);
        *out = s.f32;
        return 0;
    }
    if (v->type == M40_GGUF_FLOAT64) {
        m40_gguf_value_scalar(v, &s, NULL);
        *out = s.f64;
        return 0;
    }
    return m40_errf(err, "key '%s' has type %s, expected float32 or float64", key,
                    m40_gguf_type_name(v->type));
}

int m40_gguf_get_array(const m40_gguf *g, const char *key, uint32_t elem_type, m40_gguf_value *out,
                       m40_err *err) {
    const m40_gguf_value *v = find_value(g, key, err);
    if (!v)
        return -1;
    if (v->type != M40_GGUF_ARRAY)
        return m40_errf(err, "key '%s' has type %s, expected an array", key,
                        m40_gguf_type_name(v->type));
    if (elem_type != M40_GGUF_ANY && v->elem_type != elem_type)
        return m40_errf(err, "key '%s' is an array of %s, expected an array of %s", key,
                        m40_gguf_type_name(v->elem_type), m40_gguf_type_name(elem_type));
    *out = *v;
    return 0;
}

/* --- values -------------------------------------------------------------- */

int m40_gguf_value_scalar(const m40_gguf_value *v, m40_gguf_scalar *out, m40_err *err) {
    size_t size = m40_gguf_type_size(v->type);
    if (size == 0)
        return m40_errf(err, "value is a %s, not a scalar", m40_gguf_type_name(v->type));
    memset(out, 0, sizeof *out);
    if (v->type == M40_GGUF_BOOL)
        out->b = *(const uint8_t *)v->data != 0;
    else
        memcpy(out, v->data, size); /* every member starts at the union's start */
    return 0;
}

int m40_gguf_value_str(const m40_gguf_value *v, m40_gguf_str *out, m40_err *err) {
    if (v->type != M40_GGUF_STRING)
        return m40_errf(err, "value has type %s, expected string", m40_gguf_type_name(v->type));
    out->ptr = v->data;
    out->len = (size_t)v->size;
    return 0;
}

int m40_gguf_array_elem(const m40_gguf_value *arr, uint64_t i, m40_gguf_value *out, m40_err *err) {
    if (arr->type != M40_GGUF_ARRAY)
        return m40_errf(err, "value has type %s, expected array", m40_gguf_type_name(arr->type));
    if (i >= arr->count)
        return m40_errf(err, "array index %" PRIu64 " out of range (%" PRIu64 " elements)", i,
                        arr->count);
    const uint8_t *data = arr->data;
    size_t esize = m40_gguf_type_size(arr->elem_type);
    memset(out, 0, sizeof *out);
    if (esize) {
        *out = (m40_gguf_value){arr->elem_type, 0, 1, data + i * esize, esize, NULL};
        return 0;
    }
    if (arr->elem_type == M40_GGUF_STRING) {
        const uint8_t *e = data + arr->index_[i];
        *out = (m40_gguf_value){M40_GGUF_STRING, 0, 1, e + 8, load_u64(e), NULL};
        return 0;
    }
    /* An array of arrays: element i spans up to the next element's start. */
    uint64_t off = arr->index_[2 * i];
    uint64_t end = i + 1 < arr->count ? arr->index_[2 * i + 2] : arr->size;
    uint64_t child = arr->index_[2 * i + 1];
    const uint8_t *e = data + off;
    out->type = M40_GGUF_ARRAY;
    out->elem_type = load_u32(e);
    out->count = load_u64(e + 4);
    out->data = e + ARRAY_HEADER_BYTES;
    out->size = end - off - ARRAY_HEADER_BYTES;
    out->index_ = child == NO_INDEX ? NULL : arr->index_ + child;
    return 0;
}

int m40_gguf_array_str(const m40_gguf_value *arr, uint64_t i, m40_gguf_str *out, m40_err *err) {
    if (arr->type != M40_GGUF_ARRAY || arr->elem_type != M40_GGUF_STRING)
        return m40_errf(err, "value is not an array of strings");
    m40_gguf_value v = {0};
    if (m40_gguf_array_elem(arr, i, &v, err))
        return -1;
    return m40_gguf_value_str(&v, out, err);
}

/* --- tensors ------------------------------------------------------------- */

const m40_gguf_tensor *m40_gguf_tensor_at(const m40_gguf *g, size_t i) {
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

int64_t m40_gguf_find_tensor_n(const m40_gguf *g, const char *name, size_t len) {
    return index_lookup(&g->tensor_index, name, len, -1);
}

int64_t m40_gguf_find_tensor(const m40_gguf *g, const char *name) {
    return m40_gguf_find_tensor_n(g, name, strlen(name));
}

const m40_gguf_tensor *m40_gguf_get_tensor(const m40_gguf *g, const char *name) {
    int64_t i = m40_gguf_find_tensor(g, name);
    return i < 0 ? NULL : &g->tensors[i];
}
