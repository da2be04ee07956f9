/* cuda_backend.h - the forward pass on an NVIDIA GPU (sm_52 and newer).
 *
 * Weights are uploaded once, in their GGUF type (VRAM for weights ~= file
 * size); the KV cache (FP16) and activations (FP32) live in VRAM; a forward
 * call makes no host round trip: the tokens go up, and only the logits of
 * the last token (or just the argmax, for greedy decoding) come back.
 *
 * Owns: the opened GPU, every device allocation. Touches: the model's
 * weights on the host, read-only, during upload.
 */
#ifndef M40_BACKEND_CUDA_CUDA_BACKEND_H
#define M40_BACKEND_CUDA_CUDA_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "model/model.h"
#include "util/err.h"

typedef struct m40_cuda m40_cuda;

int m40_cuda_create(m40_cuda **out, const m40_model *model, const m40_backend_options *opts,
                    m40_err *err);
void m40_cuda_destroy(m40_cuda *cu);

int m40_cuda_forward(m40_cuda *cu, int32_t slot, const int32_t *tokens, int32_t n, int32_t pos0,
                     float *logits, m40_err *err);
int m40_cuda_forward_greedy(m40_cuda *cu, int32_t slot, const int32_t *tokens, int32_t n,
                            int32_t pos0, int32_t *token, m40_err *err);

/* Nonzero when single-token forwards run on a stream of their own (the
 * decode lane, forward.c), so one may overlap a prompt forward of another
 * slot; zero with the one_stream option. */
int m40_cuda_concurrent_decode(const m40_cuda *cu);

/* One line describing the device ("NVIDIA H100 80GB HBM3 (sm_90), cuBLAS on"). */
const char *m40_cuda_describe(const m40_cuda *cu);

/* VRAM a backend takes, by kind (bytes). */
typedef struct m40_cuda_vram {
    size_t weights, kv, scratch;
} m40_cuda_vram;
/* What m40_cuda_create would allocate for `model` under `opts`, without a
 * GPU (for `info` and the fit check). */
m40_cuda_vram m40_cuda_vram_plan(const m40_model *model, const m40_backend_options *opts);

/* The device's copy bandwidth (device to device, read + write bytes per
 * second / 1e9), measured on two 256 MiB buffers (bench's yardstick). */
int m40_cuda_copy_bandwidth(m40_cuda *cu, double *gb_per_s, m40_err *err);

/* Reads position `pos` of layer `layer` of `slot` back from the KV cache as
 * FP32 (k and v: kv_dim floats each): a debug view for layout tests. */
int m40_cuda_debug_read_kv(m40_cuda *cu, int32_t slot, int32_t layer, int32_t pos, float *k,
                           float *v, m40_err *err);

#endif /* M40_BACKEND_CUDA_CUDA_BACKEND_H */
