/* quant.h - GGML block formats on the CPU: dequantize to FP32, quantize
 * from FP32.
 *
 * A row of `n` elements of a block type is n / block_elems blocks laid end
 * to end (ggml_types.h gives the geometry; docs/ggml-formats.md the bytes).
 * Blocks are independent, so several rows stored one after another are also
 * one long row: quantize a whole tensor with one call if you like.
 *
 * Quantizers produce the same bytes as GGML's reference quantizers
 * (ggml-quants.c quantize_row_*_ref, no importance matrix) on IEEE FP32
 * without FMA contraction; dequantizers produce the same floats as GGML's
 * dequantize_row_* and as the gguf Python package. Both read and write
 * unaligned blocks (Q4_0 blocks are 18 bytes, so they are only ever 2-byte
 * aligned inside a file, and a mapped file guarantees even less).
 *
 * Source and destination must not overlap. Host byte order must be
 * little-endian (GGUF's); quant.c refuses to build otherwise.
 *
 * Owns: nothing (pure functions over caller buffers). Touches: nothing.
 */
#ifndef M40_QUANT_QUANT_H
#define M40_QUANT_QUANT_H

#include <stdbool.h>
#include <stdint.h>

#include "quant/ggml_types.h"
#include "util/err.h"

/* Whether m40_dequantize_row / m40_quantize_row handle `type`.
 * Dequantize: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K,
 * Q3_K, Q4_K, Q5_K, Q6_K, Q8_K. Quantize: the same set. */
bool m40_quant_can_dequantize(uint32_t type);
bool m40_quant_can_quantize(uint32_t type);

/* Converts the `n` elements at `src` (in `type`'s layout) to FP32 in
 * dst[0..n). n must be a whole number of blocks (0 is allowed). Fails for a
 * type it cannot handle or a bad n, writing nothing. */
int m40_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n, m40_err *err);

/* Dequantizes blocks [first_block, first_block + n_blocks) of the row that
 * starts at `row` into dst[0 .. n_blocks * block_elems): the piece of a row
 * a worker thread or a chunked prefill needs. */
int m40_dequantize_blocks(uint32_t type, const void *row, int64_t first_block, int64_t n_blocks,
                          float *dst, m40_err *err);

/* Quantizes src[0..n) into `type`'s layout at dst, which must hold
 * m40_ggml_row_bytes(type, n) bytes. n must be a whole number of blocks.
 * Inputs should be finite: NaN and inf give unspecified (but memory-safe)
 * blocks, as in GGML. */
int m40_quantize_row(uint32_t type, const float *src, void *dst, int64_t n, m40_err *err);

#endif /* M40_QUANT_QUANT_H */
