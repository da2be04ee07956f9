/* shapes.h - named model shapes for `m40-llm synth`.
 *
 * Each shape is the config of a real model family (layer count, widths,
 * heads, vocabulary, RoPE base), so synthetic random-weight models have the
 * exact size and compute of the real ones: benchmarks need no download.
 *
 * Owns: the shape table. Touches: nothing.
 */
#ifndef M40_MODEL_SHAPES_H
#define M40_MODEL_SHAPES_H

#include "model/config.h"

typedef struct m40_shape {
    const char *name;     /* e.g. "llama2-7b" */
    const char *describe; /* what real model it copies */
    m40_model_config cfg; /* n_vocab: the real model's vocabulary size */
} m40_shape;

/* The shape called `name`, or NULL. */
const m40_shape *m40_shape_find(const char *name);

/* The table, for listing (`synth --help`); *count is set. */
const m40_shape *m40_shapes(int *count);

#endif /* M40_MODEL_SHAPES_H */
