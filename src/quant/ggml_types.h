/* ggml_types.h - GGML tensor types: ids, names, block geometry.
 *
 * The ids are GGML's (they are what GGUF files store in each tensor info),
 * so they must never be renumbered. A "block" is GGML's unit of storage:
 * `block_elems` consecutive elements of a row stored in `block_bytes` bytes
 * (1 and sizeof(element) for the plain types). Layouts of each block are in
 * src/quant/ (one file per family) and docs/ggml-formats.md.
 *
 * Owns: the type table. Touches: nothing.
 */
#ifndef M40_QUANT_GGML_TYPES_H
#define M40_QUANT_GGML_TYPES_H

#include <stddef.h>
#include <stdint.h>

typedef enum m40_ggml_type {
    M40_GGML_F32 = 0,
    M40_GGML_F16 = 1,
    M40_GGML_Q4_0 = 2,
    M40_GGML_Q4_1 = 3,
    /* 4 and 5 were Q4_2 and Q4_3, removed from GGML */
    M40_GGML_Q5_0 = 6,
    M40_GGML_Q5_1 = 7,
    M40_GGML_Q8_0 = 8,
    M40_GGML_Q8_1 = 9,
    M40_GGML_Q2_K = 10,
    M40_GGML_Q3_K = 11,
    M40_GGML_Q4_K = 12,
    M40_GGML_Q5_K = 13,
    M40_GGML_Q6_K = 14,
    M40_GGML_Q8_K = 15,
    M40_GGML_IQ2_XXS = 16,
    M40_GGML_IQ2_XS = 17,
    M40_GGML_IQ3_XXS = 18,
    M40_GGML_IQ1_S = 19,
    M40_GGML_IQ4_NL = 20,
    M40_GGML_IQ3_S = 21,
    M40_GGML_IQ2_S = 22,
    M40_GGML_IQ4_XS = 23,
    M40_GGML_I8 = 24,
    M40_GGML_I16 = 25,
    M40_GGML_I32 = 26,
    M40_GGML_I64 = 27,
    M40_GGML_F64 = 28,
    M40_GGML_IQ1_M = 29,
    M40_GGML_BF16 = 30,
    M40_GGML_TYPE_COUNT = 31 /* ids at or above this are unknown to m40-llm */
} m40_ggml_type;

typedef struct m40_ggml_type_info {
    const char *name;     /* GGML's name, e.g. "q4_0"; NULL for an unused id */
    uint32_t block_elems; /* elements per block (0 would mean: size unknown) */
    uint32_t block_bytes; /* bytes per block; 0 likewise */
} m40_ggml_type_info;

/* The table entry for `type`, or NULL for an id m40-llm does not know
 * (including the removed ids 4 and 5). Every entry is sized, so a file
 * of any known type parses; which types m40-llm can compute with is
 * quant.h's m40_quant_can_dequantize. */
const m40_ggml_type_info *m40_ggml_type_get(uint32_t type);

/* GGML's name of `type`, or "unknown". */
const char *m40_ggml_type_name(uint32_t type);

/* Bytes a row of `n` elements takes, or 0 when n is not a whole number of
 * blocks or the type cannot be sized. */
size_t m40_ggml_row_bytes(uint32_t type, uint64_t n);

#endif /* M40_QUANT_GGML_TYPES_H */
