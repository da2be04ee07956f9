/* synth.h - write a random-weight model of a named shape as a GGUF file.
 *
 * For benchmarks and tests without downloads: the file has the shape's
 * exact tensors and metadata (llama.cpp loads it), deterministic random
 * weights for a seed, and a tokenizer copied from a given GGUF (or a
 * minimal SentencePiece-style byte vocabulary when none is given).
 * Quantization runs on all cores, row by row, while the file streams out.
 *
 * Owns: nothing after it returns. Touches: the output path, the vocab file
 * (read-only).
 */
#ifndef M40_MODEL_SYNTH_H
#define M40_MODEL_SYNTH_H

#include <stdint.h>

#include "util/err.h"

typedef struct m40_synth_options {
    const char *shape;      /* a name from shapes.h */
    uint32_t type;          /* weight type of the matrices (m40_ggml_type) */
    const char *vocab_path; /* GGUF to copy tokenizer.* from, or NULL */
    const char *out_path;
    uint64_t seed;
    int32_t n_vocab; /* >0: vocabulary size without vocab_path (default: the shape's) */
    int32_t untied;  /* force a separate output.weight on tied shapes */
    int32_t mix_m;   /* with q4_K or q5_K: llama-quantize's _M mix (Q4_K_M, Q5_K_M) */
} m40_synth_options;

typedef struct m40_synth_report {
    uint64_t n_params;
    uint64_t file_bytes;
    int32_t n_vocab;
} m40_synth_report;

int m40_synth_write(const m40_synth_options *opt, m40_synth_report *report, m40_err *err);

/* The type a matrix of row length `cols` gets when `type` is asked for:
 * K-quants need rows of 256, and fall back as llama-quantize does
 * (q4_K -> q5_0, q5_K -> q5_1, q6_K -> q8_0), except that q2_K and q3_K
 * fall back to q4_0 (llama-quantize picks iq4_nl, which has no quantizer
 * here). */
uint32_t m40_synth_fallback_type(uint32_t type, int64_t cols);

#endif /* M40_MODEL_SYNTH_H */
