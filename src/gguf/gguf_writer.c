/* gguf_writer.c - see gguf_writer.h.
 *
 * kvs are serialized into `meta` the moment they are added, so writing is a
 * straight copy; a kv that fails half-way is rolled back to the mark taken
 * before it, leaving the writer as it was. Tensor infos are produced at
 * write time because their offsets depend on the final alignment.
 *
 * Owns: struct m40_gguf_writer and everything it points to except borrowed
 * tensor data. Touches: the output file or buffer.
 */
#include "gguf/gguf_writer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "quant/ggml_types.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF writer assumes a little-endian host"
#endif

#define FILL_CHUNK ((size_t)1 << 20)

typedef struct bytebuf {
    uint8_t *p;
    size_t len, cap;
} bytebuf;

typedef enum src_kind { SRC_BORROWED, SRC_OWNED, SRC_FN } src_kind;

typedef struct wtensor {
    char name[M40_GGUF_MAX_NAME + 1];
    size_t name_len;
    uint32_t type, n_dims;
    uint64_t ne[M40_GGUF_MAX_DIMS];
    uint64_t n_bytes;
    src_kind kind;
    const void *data; /* SRC_BORROWED and SRC_OWNED */
    void *owned;      /* SRC_OWNED: freed with the writer */
    m40_gguf_fill_fn fill;
    void *user;
} wtensor;

typedef struct key_ref {
    size_t off, len; /* the key's bytes inside meta */
} key_ref;

typedef struct open_array {
    uint32_t elem_type;
    uint64_t count, done;
} open_array;

/* Where to roll back to when a kv fails half-way. */
typedef struct kv_mark {
    size_t meta_len, n_keys;
} kv_mark;

struct m40_gguf_writer {
    bytebuf meta; /* serialized kvs */
    key_ref *keys;
    size_t n_keys, keys_cap; /* n_keys is the kv count */
    uint32_t alignment;
    bool has_align_kv;
    size_t align_val_off; /* the general.alignment value inside meta */
    open_array stack[M40_GGUF_MAX_DEPTH];
    int depth;    /* open arrays */
    kv_mark mark; /* of the kv whose array is open */
    wtensor *tensors;
    size_t n_tensors, tensors_cap;
};

/* --- buffers ------------------------------------------------------------- */

/* Grows an array of `elem` bytes to hold at least `need` elements. */
static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem)
            return -1;
        c *= 2;
    }
    void *q = realloc(*p, c * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int put(m40_gguf_writer *w, const void *d, size_t n, m40_err *err) {
    bytebuf *b = &w->meta;
    if (n > SIZE_MAX - b->len || grow((void **)&b->p, &b->cap, b->len + n, 1))
        return m40_errf(err, "out of memory for metadata");
    if (n)
        memcpy(b->p + b->len, d, n);
    b->len += n;
    return 0;
}

static int put_u32(m40_gguf_writer *w, uint32_t v, m40_err *err) {
    return put(w, &v, sizeof v, err);
}

static int put_u64(m40_gguf_writer *w, uint64_t v, m40_err *err) {
    return put(w, &v, sizeof v, err);
}

static int put_str(m40_gguf_writer *w, const char *s, size_t len, m40_err *err) {
    return put_u64(w, len, err) || put(w, s, len, err) ? -1 : 0;
}

/* --- lifecycle ----------------------------------------------------------- */

int m40_gguf_writer_new(m40_gguf_writer **out, m40_err *err) {
    *out = calloc(1, sizeof **out);
    if (!*out)
        return m40_errf(err, "out of memory");
    (*out)->alignment = M40_GGUF_DEFAULT_ALIGNMENT;
    return 0;
}

void m40_gguf_writer_free(m40_gguf_writer *w) {
    if (!w)
        return;
    for (size_t i = 0; i < w->n_tensors; i++)
        free(w->tensors[i].owned);
    free(w->tensors);
    free(w->keys);
    free(w->meta.p);
    free(w);
}

/* --- kvs ----------------------------------------------------------------- */

static kv_mark take_mark(const m40_gguf_writer *w) {
    return (kv_mark){w->meta.len, w->n_keys};
}

static int roll_back(m40_gguf_writer *w, kv_mark m) {
    w->meta.len = m.meta_len;
    w->n_keys = m.n_keys;
    w->depth = 0;
    return -1;
}

static const char *current_key(const m40_gguf_writer *w, int *len) {
    const key_ref *k = &w->keys[w->n_keys - 1];
    *len = k->len > 96 ? 96 : (int)k->len;
    return (const char *)w->meta.p + k->off;
}

/* Writes the key and the value type of a new kv after checking the key. */
static int begin_kv(m40_gguf_writer *w, const char *key, uint32_t type, m40_err *err) {
    if (!key)
        return m40_errf(err, "NULL key");
    if (w->depth > 0) {
        int n;
        const char *k = current_key(w, &n);
        return m40_errf(err, "cannot add key '%s' while the array of key '%.*s' is open", key, n,
                        k);
    }
    size_t len = strlen(key);
    if (len > M40_GGUF_MAX_KEY)
        return m40_errf(err, "key of %zu bytes is longer than GGUF's limit of %d", len,
                        M40_GGUF_MAX_KEY);
    for (size_t i = 0; i < w->n_keys; i++) {
        if (w->keys[i].len == len && memcmp(w->meta.p + w->keys[i].off, key, len) == 0)
            return m40_errf(err, "duplicate key '%s'", key);
    }
    if (grow((void **)&w->keys, &w->keys_cap, w->n_keys + 1, sizeof *w->keys))
        return m40_errf(err, "out of memory for keys");
    kv_mark m = take_mark(w);
    size_t off = w->meta.len + 8;
    if (put_str(w, key, len, err) || put_u32(w, type, err))
        return roll_back(w, m);
    w->keys[w->n_keys++] = (key_ref){off, len};
    return 0;
}

static int check_user_key(const char *key, m40_err *err) {
    if (key && strcmp(key, "general.alignment") == 0)
        return m40_errf(err, "set 'general.alignment' with m40_gguf_writer_set_alignment");
    return 0;
}

static int add_scalar(m40_gguf_writer *w, const char *key, uint32_t type, const void *v,
                      m40_err *err) {
    kv_mark m = take_mark(w);
    if (check_user_key(key, err) || begin_kv(w, key, type, err))
        return -1;
    if (put(w, v, m40_gguf_type_size(type), err))
        return roll_back(w, m);
    return 0;
}

int m40_gguf_writer_add_u8(m40_gguf_writer *w, const char *key, uint8_t v, m40_err *err) {
    return add_scalar(w, key, M40_GGUF_UINT8, &v, err);
}

int m40_gguf_writer_add_i8(m40_gguf_writer *w, const char *key, int8_t v, m40_err *err) {
    return add_scalar(w, key, M40_GGUF_INT8, &v, err);
}

int m40_gguf_writer_add_u16(m40_gguf_writer *w, const char *key, uint16_t v, m40_err *err) {
    return add_scalar(w, key, M40_GGUF_UINT16, &v, err);
}

int m40_gguf_writer_add_i16(m40_gguf_writer *w, const char *key, int16_t v, m40_err *err) {
    return add_scalar(w, key, M40_GGUF_INT16, &v, err);
}

int m40_gguf_writer_add_u32(m40_gguf_writer *w, const char *key, uint32_t v, m40_err *err) {
    return add_scalar(w, key, M40_GGUF_UINT32, &v, err);
}

int m40_gguf_writer_add_i32(m40_gguf_writer *w, const char *key, int32_t v, m40_err *err) {
    return add_scalar(w, key, M40_GGUF_INT32, &v, err);
}

int m40_gguf_writer_add_u64(m40_gguf_writer *w, const char *key, uint64_t v, m40_err *err) {
    return add_scalar(w, key, M40_GGUF_UINT64, &v, err);
}

int m40_gguf_writer_add_i64(m40_gguf_writer *w, const char *key, int64_t v, m40_err *err) {
    return add_scalar(w, key, M40_GGUF_INT64, &v, err);
}

int m40_gguf_writer_add_f32(m40_gguf_writer *w, const char *key, float v, m40_err *err) {
    return add_scalar(w, key, M40_GGUF_FLOAT32, &v, err);
}

int m40_gguf_writer_add_f64(m40_gguf_writer *w, const char *key, double v, m40_err *err) {
    return add_scalar(w, key, M40_GGUF_FLOAT64, &v, err);
}

int m40_gguf_writer_add_bool(m40_gguf_writer *w, const char *key, bool v, m40_err *err) {
    uint8_t b = v ? 1 : 0;
    return add_scalar(w, key, M40_GGUF_BOOL, &b, err);
}

int m40_gguf_writer_add_str_n(m40_gguf_writer *w, const char *key, const char *s, size_t len,
                              m40_err *err) {
    kv_mark m = take_mark(w);
    if (!s && len)
        return m40_errf(err, "key '%s': NULL string", key ? key : "(null)");
    if (check_user_key(key, err) || begin_kv(w, key, M40_GGUF_STRING, err))
        return -1;
    if (put_str(w, s, len, err))
        return roll_back(w, m);
    return 0;
}

int m40_gguf_writer_add_str(m40_gguf_writer *w, const char *key, const char *s, m40_err *err) {
    return m40_gguf_writer_add_str_n(w, key, s, s ? strlen(s) : 0, err);
}

int m40_gguf_writer_add_array(m40_gguf_writer *w, const char *key, uint32_t elem_type,
                              const void *elems, uint64_t count, m40_err *err) {
    if (m40_gguf_type_size(elem_type) == 0)
        return m40_errf(err, "key '%s': add_array takes a fixed-size element type, not %s",
                        key ? key : "(null)", m40_gguf_type_name(elem_type));
    kv_mark m = take_mark(w);
    if (m40_gguf_writer_begin_array(w, key, elem_type, count, err))
        return -1;
    if (m40_gguf_writer_push_elems(w, elems, count, err) || m40_gguf_writer_end_array(w, err))
        return roll_back(w, m);
    return 0;
}

int m40_gguf_writer_add_str_array(m40_gguf_writer *w, const char *key, const char *const *strs,
                                  uint64_t count, m40_err *err) {
    kv_mark m = take_mark(w);
    if (m40_gguf_writer_begin_array(w, key, M40_GGUF_STRING, count, err))
        return -1;
    for (uint64_t i = 0; i < count; i++) {
        const char *s = strs[i] ? strs[i] : "";
        if (m40_gguf_writer_push_str(w, s, strlen(s), err))
            return roll_back(w, m);
    }
    if (m40_gguf_writer_end_array(w, err))
        return roll_back(w, m);
    return 0;
}

int m40_gguf_writer_set_alignment(m40_gguf_writer *w, uint32_t alignment, m40_err *err) {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0)
        return m40_errf(err, "invalid alignment %" PRIu32 " (must be a non-zero power of two)",
                        alignment);
    if (!w->has_align_kv) {
        kv_mark m = take_mark(w);
        if (begin_kv(w, "general.alignment", M40_GGUF_UINT32, err))
            return -1;
        w->align_val_off = w->meta.len;
        if (put_u32(w, alignment, err))
            return roll_back(w, m);
        w->has_align_kv = true;
    } else {
        memcpy(w->meta.p + w->align_val_off, &alignment, sizeof alignment);
    }
    w->alignment = alignment;
    return 0;
}

/* --- arrays -------------------------------------------------------------- */

static open_array *top(m40_gguf_writer *w) {
    return w->depth > 0 ? &w->stack[w->depth - 1] : NULL;
}

/* The open array, when it can take `n` more elements of `type` (M40_GGUF_ANY:
 * of any scalar type). */
static open_array *room_for(m40_gguf_writer *w, uint32_t type, uint64_t n, m40_err *err) {
    open_array *a = top(w);
    if (!a) {
        m40_errf(err, "no array is open");
        return NULL;
    }
    int kl;
    const char *k = current_key(w, &kl);
    if (type == M40_GGUF_ANY ? m40_gguf_type_size(a->elem_type) == 0 : a->elem_type != type) {
        m40_errf(err, "key '%.*s': cannot push %s into an array of %s", kl, k,
                 type == M40_GGUF_ANY ? "scalars" : m40_gguf_type_name(type),
                 m40_gguf_type_name(a->elem_type));
        return NULL;
    }
    if (n > a->count - a->done) {
        m40_errf(err, "key '%.*s': more than the %" PRIu64 " elements the array was begun with", kl,
                 k, a->count);
        return NULL;
    }
    return a;
}

int m40_gguf_writer_begin_array(m40_gguf_writer *w, const char *key, uint32_t elem_type,
                                uint64_t count, m40_err *err) {
    if (elem_type >= M40_GGUF_TYPE_COUNT)
        return m40_errf(err, "array of unknown value type %" PRIu32, elem_type);
    if (key) {
        if (check_user_key(key, err))
            return -1;
        kv_mark m = take_mark(w);
        if (begin_kv(w, key, M40_GGUF_ARRAY, err))
            return -1;
        w->mark = m;
    } else {
        if (w->depth >= M40_GGUF_MAX_DEPTH)
            return m40_errf(err, "arrays nested deeper than %d levels", M40_GGUF_MAX_DEPTH);
        open_array *parent = room_for(w, M40_GGUF_ARRAY, 1, err);
        if (!parent)
            return -1;
        parent->done++;
    }
    if (put_u32(w, elem_type, err) || put_u64(w, count, err))
        return roll_back(w, w->mark);
    w->stack[w->depth++] = (open_array){elem_type, count, 0};
    return 0;
}

static int check_bools(const uint8_t *b, uint64_t n, m40_err *err) {
    for (uint64_t i = 0; i < n; i++) {
        if (b[i] > 1)
            return m40_errf(err, "bool element %" PRIu64 " is %u, not 0 or 1", i, b[i]);
    }
    return 0;
}

int m40_gguf_writer_push_elems(m40_gguf_writer *w, const void *elems, uint64_t count,
                               m40_err *err) {
    open_array *a = room_for(w, M40_GGUF_ANY, count, err);
    if (!a)
        return -1;
    size_t esize = m40_gguf_type_size(a->elem_type);
    if (count > SIZE_MAX / esize)
        return m40_errf(err, "array of %" PRIu64 " elements is too large", count);
    if (count && !elems)
        return m40_errf(err, "NULL elements");
    if (a->elem_type == M40_GGUF_BOOL && check_bools(elems, count, err))
        return -1;
    if (put(w, elems, (size_t)count * esize, err))
        return -1;
    a->done += count;
    return 0;
}

int m40_gguf_writer_push(m40_gguf_writer *w, const void *value, m40_err *err) {
    return m40_gguf_writer_push_elems(w, value, 1, err);
}

int m40_gguf_writer_push_str(m40_gguf_writer *w, const char *s, size_t len, m40_err *err) {
    open_array *a = room_for(w, M40_GGUF_STRING, 1, err);
    if (!a)
        return -1;
    if (!s && len)
        return m40_errf(err, "NULL string");
    if (put_str(w, s, len, err))
        return -1;
    a->done++;
    return 0;
}

int m40_gguf_writer_end_array(m40_gguf_writer *w, m40_err *err) {
    open_array *a = top(w);
    if (!a)
        return m40_errf(err, "no array is open");
    if (a->done != a->count) {
        int kl;
        const char *k = current_key(w, &kl);
        return m40_errf(err, "key '%.*s': array has %" PRIu64 " of its %" PRIu64 " elements", kl, k,
                        a->done, a->count);
    }
    w->depth--;
    return 0;
}

/* --- tensors ------------------------------------------------------------- */

/* Checks a tensor as the reader will and fills in everything but its data. */
static int check_tensor(const m40_gguf_writer *w, wtensor *t, const char *name, uint32_t type,
                        uint32_t n_dims, const uint64_t *ne, m40_err *err) {
    if (!name)
        return m40_errf(err, "NULL tensor name");
    size_t len = strlen(name);
    if (len > M40_GGUF_MAX_NAME)
        return m40_errf(err, "tensor '%s': name of %zu bytes is longer than GGUF's limit of %d",
                        name, len, M40_GGUF_MAX_NAME);
    for (size_t i = 0; i < w->n_tensors; i++) {
        if (strcmp(w->tensors[i].name, name) == 0)
            return m40_errf(err, "duplicate tensor name '%s'", name);
    }
    const m40_ggml_type_info *ti = m40_ggml_type_get(type);
    if (!ti)
        return m40_errf(err, "tensor '%s': unknown ggml type %" PRIu32, name, type);
    if (ti->block_elems == 0)
        return m40_errf(err, "tensor '%s': ggml type %s is not supported by m40-llm", name,
                        ti->name);
    if (n_dims == 0 || n_dims > M40_GGUF_MAX_DIMS || !ne)
        return m40_errf(err, "tensor '%s': %" PRIu32 " dimensions (must be 1 to %d)", name, n_dims,
                        M40_GGUF_MAX_DIMS);
    uint64_t n = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] == 0)
            return m40_errf(err, "tensor '%s': dimension %" PRIu32 " is 0", name, d);
        if (__builtin_mul_overflow(n, ne[d], &n) || n > (uint64_t)INT64_MAX)
            return m40_errf(err, "tensor '%s': element count overflows int64", name);
    }
    if (ne[0] % ti->block_elems != 0)
        return m40_errf(err,
                        "tensor '%s': row length ne0 = %" PRIu64
                        " is not a multiple of %s's block size %" PRIu32,
                        name, ne[0], ti->name, ti->block_elems);
    uint64_t bytes;
    if (__builtin_mul_overflow(n / ti->block_elems, (uint64_t)ti->block_bytes, &bytes) ||
        bytes > SIZE_MAX)
        return m40_errf(err, "tensor '%s': byte size overflows", name);
    memset(t, 0, sizeof *t);
    memcpy(t->name, name, len + 1);
    t->name_len = len;
    t->type = type;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < M40_GGUF_MAX_DIMS; d++)
        t->ne[d] = d < n_dims ? ne[d] : 1;
    t->n_bytes = bytes;
    return 0;
}

static int append_tensor(m40_gguf_writer *w, const wtensor *t, m40_err *err) {
    if (grow((void **)&w->tensors, &w->tensors_cap, w->n_tensors + 1, sizeof *w->tensors))
        return m40_errf(err, "out of memory for tensors");
    w->tensors[w->n_tensors++] = *t;
    return 0;
}

static int check_size(const wtensor *t, const void *data, uint64_t size, m40_err *err) {
    if (size != t->n_bytes)
        return m40_errf(err, "tensor '%s': %" PRIu64 " bytes given, its shape in %s takes %" PRIu64,
                        t->name, size, m40_ggml_type_name(t->type), t->n_bytes);
    if (!data)
        return m40_errf(err, "tensor '%s': NULL data", t->name);
    return 0;
}

int m40_gguf_writer_add_tensor(m40_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                               const uint64_t *ne, const void *data, uint64_t size, m40_err *err) {
    wtensor t;
    if (check_tensor(w, &t, name, type, n_dims, ne, err) || check_size(&t, data, size, err))
        return -1;
    t.kind = SRC_BORROWED;
    t.data = data;
    return append_tensor(w, &t, err);
}

int m40_gguf_writer_add_tensor_copy(m40_gguf_writer *w, const char *name, uint32_t type,
                                    uint32_t n_dims, const uint64_t *ne, const void *data,
                                    uint64_t size, m40_err *err) {
    wtensor t;
    if (check_tensor(w, &t, name, type, n_dims, ne, err) || check_size(&t, data, size, err))
        return -1;
    t.kind = SRC_OWNED;
    t.owned = malloc((size_t)size);
    if (!t.owned)
        return m40_errf(err, "tensor '%s': out of memory copying %" PRIu64 " bytes", name, size);
    memcpy(t.owned, data, (size_t)size);
    t.data = t.owned;
    if (append_tensor(w, &t, err)) {
        free(t.owned);
        return -1;
    }
    return 0;
}

int m40_gguf_writer_add_tensor_fn(m40_gguf_writer *w, const char *name, uint32_t type,
                                  uint32_t n_dims, const uint64_t *ne, m40_gguf_fill_fn fill,
                                  void *user, m40_err *err) {
    wtensor t;
    if (check_tensor(w, &t, name, type, n_dims, ne, err))
        return -1;
    if (!fill)
        return m40_errf(err, "tensor '%s': NULL fill function", name);
    t.kind = SRC_FN;
    t.fill = fill;
    t.user = user;
    return append_tensor(w, &t, err);
}

/* --- layout -------------------------------------------------------------- */

static uint64_t align_up(uint64_t v, uint64_t a) {
    return (v + a - 1) / a * a;
}

static uint64_t infos_bytes(const m40_gguf_writer *w) {
    uint64_t n = 0;
    for (size_t i = 0; i < w->n_tensors; i++)
        n += 8 + w->tensors[i].name_len + 4 + 8 * (uint64_t)w->tensors[i].n_dims + 4 + 8;
    return n;
}

static uint64_t data_bytes(const m40_gguf_writer *w) {
    uint64_t n = 0;
    for (size_t i = 0; i < w->n_tensors; i++)
        n += align_up(w->tensors[i].n_bytes, w->alignment);
    return n;
}

uint64_t m40_gguf_writer_size(const m40_gguf_writer *w) {
    uint64_t head = M40_GGUF_HEADER_BYTES + w->meta.len + infos_bytes(w);
    return align_up(head, w->alignment) + data_bytes(w);
}

/* --- output -------------------------------------------------------------- */

/* Where bytes go: a FILE, or a buffer already sized to the whole file. */
typedef struct sink {
    FILE *f;
    uint8_t *mem;
    uint64_t pos;
    const char *path;
    m40_err *err;
} sink;

static int sink_put(sink *s, const void *d, size_t n) {
    if (n == 0)
        return 0;
    if (s->f) {
        if (fwrite(d, 1, n, s->f) != n)
            return m40_errf(s->err, "%s: write failed: %s", s->path, strerror(errno));
    } else {
        memcpy(s->mem + s->pos, d, n);
    }
    s->pos += n;
    return 0;
}

static int sink_pad(sink *s, uint64_t alignment) {
    static const uint8_t zeros[4096];
    uint64_t n = align_up(s->pos, alignment) - s->pos;
    while (n > 0) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        if (sink_put(s, zeros, k))
            return -1;
        n -= k;
    }
    return 0;
}

static int sink_u32(sink *s, uint32_t v) {
    return sink_put(s, &v, sizeof v);
}

static int sink_u64(sink *s, uint64_t v) {
    return sink_put(s, &v, sizeof v);
}

static int write_infos(const m40_gguf_writer *w, sink *s) {
    uint64_t offset = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        if (sink_u64(s, t->name_len) || sink_put(s, t->name, t->name_len) || sink_u32(s, t->n_dims))
            return -1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            if (sink_u64(s, t->ne[d]))
                return -1;
        }
        if (sink_u32(s, t->type) || sink_u64(s, offset))
            return -1;
        offset += align_up(t->n_bytes, w->alignment);
    }
    return 0;
}

static int write_filled(const wtensor *t, sink *s) {
    uint8_t *chunk = malloc(FILL_CHUNK);
    if (!chunk)
        return m40_errf(s->err, "tensor '%s': out of memory for a fill buffer", t->name);
    int rc = 0;
    for (uint64_t off = 0; off < t->n_bytes && rc == 0; off += FILL_CHUNK) {
        size_t n = t->n_bytes - off < FILL_CHUNK ? (size_t)(t->n_bytes - off) : FILL_CHUNK;
        if (t->fill(t->user, chunk, n, off, s->err))
            rc = m40_err_wrap(s->err, "tensor '%s'", t->name);
        else
            rc = sink_put(s, chunk, n);
    }
    free(chunk);
    return rc;
}

static int write_all(const m40_gguf_writer *w, sink *s) {
    if (w->depth > 0) {
        const key_ref *k = &w->keys[w->n_keys - 1];
        return m40_errf(s->err, "the array of key '%.*s' is still open",
                        k->len > 96 ? 96 : (int)k->len, (const char *)w->meta.p + k->off);
    }
    if (sink_put(s, M40_GGUF_MAGIC, 4) || sink_u32(s, 3) || sink_u64(s, w->n_tensors) ||
        sink_u64(s, w->n_keys) || sink_put(s, w->meta.p, w->meta.len) || write_infos(w, s) ||
        sink_pad(s, w->alignment))
        return -1;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        int rc = t->kind == SRC_FN ? write_filled(t, s) : sink_put(s, t->data, (size_t)t->n_bytes);
        if (rc || sink_pad(s, w->alignment))
            return -1;
    }
    return 0;
}

int m40_gguf_writer_write_memory(m40_gguf_writer *w, void **out, size_t *size, m40_err *err) {
    *out = NULL;
    *size = 0;
    uint64_t total = m40_gguf_writer_size(w);
    if (total > SIZE_MAX)
        return m40_errf(err, "file of %" PRIu64 " bytes does not fit in memory", total);
    sink s = {.mem = malloc(total ? (size_t)total : 1), .err = err};
    if (!s.mem)
        return m40_errf(err, "out of memory for a %" PRIu64 "-byte file", total);
    if (write_all(w, &s)) {
        free(s.mem);
        return -1;
    }
    *out = s.mem;
    *size = (size_t)total;
    return 0;
}

/* Writes to a temporary file beside `path` and renames it over `path`, so
 * a failed write never leaves a partial file behind. */
int m40_gguf_writer_write_file(m40_gguf_writer *w, const char *path, m40_err *err) {
    size_t len = strlen(path);
    char *tmp = malloc(len + 8);
    if (!tmp)
        return m40_errf(err, "out of memory");
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".XXXXXX", 8);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int rc = m40_errf(err, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    fchmod(fd, 0644); /* mkstemp's 0600 is for secrets; a model is not one */
    sink s = {.f = fdopen(fd, "wb"), .path = path, .err = err};
    int rc;
    if (!s.f) {
        rc = m40_errf(err, "%s: %s", path, strerror(errno));
        close(fd);
    } else {
        rc = write_all(w, &s);
        if (fclose(s.f) != 0 && rc == 0)
            rc = m40_errf(err, "%s: write failed: %s", path, strerror(errno));
    }
    if (rc == 0 && rename(tmp, path) != 0)
        rc = m40_errf(err, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    return rc;
}
