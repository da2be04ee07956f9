/* gguf_writer.h - building GGUF v3 files.
 *
 * Add kvs and tensors in the order they should appear, then write once, to
 * a path (streamed with fwrite, front to back) or to a malloc'd buffer. The
 * metadata is serialized into memory as it is added (it is small: a
 * tokenizer's 150k strings are a few MB); tensor data is not. A tensor's
 * bytes come from a pointer the caller keeps alive until the write (never
 * duplicated), a copy the writer owns, or a callback that produces them in
 * chunks during the write (for multi-GB synthetic models).
 *
 * Layout written: header, kvs, tensor infos, zero padding to the alignment,
 * then each tensor's data padded with zeros to the alignment; offsets are
 * assigned in the order tensors were added. Everything the reader
 * (gguf.h) rejects is refused here when it is added, with the same kind of
 * message, so a written file always opens.
 *
 * Owns: the serialized metadata, the tensor list and copied tensor data.
 * Touches: the caller's tensor buffers (read-only, during write).
 */
#ifndef M40_GGUF_GGUF_WRITER_H
#define M40_GGUF_GGUF_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf/gguf.h"
#include "util/err.h"

typedef struct m40_gguf_writer m40_gguf_writer;

/* Produces bytes [offset, offset + len) of a tensor's data into buf. */
typedef int (*m40_gguf_fill_fn)(void *user, void *buf, size_t len, uint64_t offset, m40_err *err);

int m40_gguf_writer_new(m40_gguf_writer **out, m40_err *err);
void m40_gguf_writer_free(m40_gguf_writer *w); /* NULL is allowed */

/* Sets the alignment (a non-zero power of two; default 32) and stores it as
 * the uint32 kv `general.alignment` (added at this point on the first call,
 * updated in place on later ones). That key cannot be added otherwise. */
int m40_gguf_writer_set_alignment(m40_gguf_writer *w, uint32_t alignment, m40_err *err);

/* --- kvs: each key once; keys are at most 65535 bytes ---------------------- */

int m40_gguf_writer_add_u8(m40_gguf_writer *w, const char *key, uint8_t v, m40_err *err);
int m40_gguf_writer_add_i8(m40_gguf_writer *w, const char *key, int8_t v, m40_err *err);
int m40_gguf_writer_add_u16(m40_gguf_writer *w, const char *key, uint16_t v, m40_err *err);
int m40_gguf_writer_add_i16(m40_gguf_writer *w, const char *key, int16_t v, m40_err *err);
int m40_gguf_writer_add_u32(m40_gguf_writer *w, const char *key, uint32_t v, m40_err *err);
int m40_gguf_writer_add_i32(m40_gguf_writer *w, const char *key, int32_t v, m40_err *err);
int m40_gguf_writer_add_u64(m40_gguf_writer *w, const char *key, uint64_t v, m40_err *err);
int m40_gguf_writer_add_i64(m40_gguf_writer *w, const char *key, int64_t v, m40_err *err);
int m40_gguf_writer_add_f32(m40_gguf_writer *w, const char *key, float v, m40_err *err);
int m40_gguf_writer_add_f64(m40_gguf_writer *w, const char *key, double v, m40_err *err);
int m40_gguf_writer_add_bool(m40_gguf_writer *w, const char *key, bool v, m40_err *err);
int m40_gguf_writer_add_str(m40_gguf_writer *w, const char *key, const char *s, m40_err *err);
/* A string of `len` bytes (may hold NULs). */
int m40_gguf_writer_add_str_n(m40_gguf_writer *w, const char *key, const char *s, size_t len,
                              m40_err *err);
/* `count` packed elements of a fixed-size type (not STRING or ARRAY; BOOL
 * elements are bytes 0 or 1). */
int m40_gguf_writer_add_array(m40_gguf_writer *w, const char *key, uint32_t elem_type,
                              const void *elems, uint64_t count, m40_err *err);
/* `count` NUL-terminated strings. */
int m40_gguf_writer_add_str_array(m40_gguf_writer *w, const char *key, const char *const *strs,
                                  uint64_t count, m40_err *err);

/* --- arrays built element by element (nested arrays) ---------------------
 *
 * begin_array with a key starts a kv whose value is an array of `count`
 * elements of `elem_type`; with key NULL it starts the next element of the
 * open array, which must be an array of arrays. Elements are then pushed
 * until `count` are written, and end_array closes the innermost array.
 * Nesting is limited to M40_GGUF_MAX_DEPTH levels, like the reader's. */
int m40_gguf_writer_begin_array(m40_gguf_writer *w, const char *key, uint32_t elem_type,
                                uint64_t count, m40_err *err);
/* One scalar element; `value` points at a value of the open array's type
 * (a uint8_t 0 or 1 for BOOL). */
int m40_gguf_writer_push(m40_gguf_writer *w, const void *value, m40_err *err);
/* `count` packed scalar elements. */
int m40_gguf_writer_push_elems(m40_gguf_writer *w, const void *elems, uint64_t count, m40_err *err);
int m40_gguf_writer_push_str(m40_gguf_writer *w, const char *s, size_t len, m40_err *err);
int m40_gguf_writer_end_array(m40_gguf_writer *w, m40_err *err);

/* --- tensors ---------------------------------------------------------------
 *
 * `ne` has n_dims (1..4) entries, ne[0] innermost; `type` must be a ggml
 * type m40-llm can size, with ne[0] a whole number of blocks; names are at
 * most 64 bytes and unique. `size` must equal the tensor's byte size. */

/* The caller keeps `data` alive and unchanged until the write is done. */
int m40_gguf_writer_add_tensor(m40_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                               const uint64_t *ne, const void *data, uint64_t size, m40_err *err);
/* Copies `data` now. */
int m40_gguf_writer_add_tensor_copy(m40_gguf_writer *w, const char *name, uint32_t type,
                                    uint32_t n_dims, const uint64_t *ne, const void *data,
                                    uint64_t size, m40_err *err);
/* Calls fill(user, ...) during the write, in chunks of at most 1 MiB, in
 * order of offset; a failing fill fails the write. */
int m40_gguf_writer_add_tensor_fn(m40_gguf_writer *w, const char *name, uint32_t type,
                                  uint32_t n_dims, const uint64_t *ne, m40_gguf_fill_fn fill,
                                  void *user, m40_err *err);

/* --- output ---------------------------------------------------------------- */

/* Bytes the file will have. */
uint64_t m40_gguf_writer_size(const m40_gguf_writer *w);

/* Writes the file (replacing `path`); on failure nothing is left at path. */
int m40_gguf_writer_write_file(m40_gguf_writer *w, const char *path, m40_err *err);

/* Writes into a new malloc'd buffer that the caller frees with free(). */
int m40_gguf_writer_write_memory(m40_gguf_writer *w, void **out, size_t *size, m40_err *err);

#endif /* M40_GGUF_GGUF_WRITER_H */
