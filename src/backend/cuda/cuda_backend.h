/* cuda_backend.h - the forward pass on an NVIDIA GPU (sm_52 and newer).
 *
 * Weights are uploaded once, in their GGUF type (VRAM for weights ~= file
 * size); the KV cache (FP16) and activations (FP32) live in VRAM; a forward
 * call makes no host round trip: the tokens go up, and only the logits of
 * the last token (or just the argmax, for greedy decoding) come back.
 * backend.c is this header's only user outside src/backend/cuda/.
 *
 * Files: cuda_backend.c (set-up: VRAM plan, allocation, lanes, graphs,
 * device queries), weights.c (placing, uploading and repacking the
 * weights), forward.c (the forward pass), cuda_internal.h (what they
 * share).
 *
 * Owns: the opened GPU, every device allocation. Touches: the model's
 * weights on the host, read-only, during upload.
 */
#ifndef M40_BACKEND_CUDA_CUDA_BACKEND_H
#define M40_BACKEND_CUDA_CUDA_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "backend/cuda/device.h"
#include "model/model.h"
#include "util/err.h"

typedef struct m40_cuda m40_cuda;

typedef struct m40_cuda_options {
    int32_t gpu;     /* ordinal, -1: automatic */
    int32_t n_ctx;   /* positions per sequence */
    int32_t n_slots; /* sequences */
    int32_t n_batch; /* most tokens per prompt chunk */
    /* the KV cache's GGML types: create takes F16, F32, Q8_0 or Q4_0, the
     * same for both; a plan sizes any type (for `info`) */
    uint32_t k_type, v_type;
    /* when the cache of n_ctx positions does not fit: take the largest
     * context that does (m40_cuda_n_ctx), instead of failing */
    int32_t fit_ctx;
    /* measurement switches (m40_cuda_set_switch) */
    int32_t no_graphs;   /* launch each kernel of a decode step (no CUDA graph) */
    int32_t one_stream;  /* decode steps share the prefill stream (no overlap) */
    int32_t no_batch;    /* decode rows of several sequences run one at a time */
    int32_t pieces_of_4; /* batched mat-vecs take at most 4 inputs a launch */
    /* prompt chunks' attention in one pass per tile of queries
     * (attn_tile.cu), where the shape allows: 1 ("tiled-attn") every
     * chunk, -1 ("split-attn") none, 0 M40_CUDA_TILED_BY_DEFAULT's choice */
    int32_t tiled_attn;
    /* the split kernel's eight-elements-a-load form (attention.cu): 1
     * ("vec-attn") where it applies, -1 ("scalar-attn") never, 0
     * M40_CUDA_VEC_BY_DEFAULT's choice */
    int32_t vec_attn;
    /* a prompt chunk's products: 1 ("prompt-gemv") the batched mat-vec
     * for every chunk, -1 ("prompt-gemm") dequantize + GEMM for every
     * chunk of more than one token, 0 M40_CUDA_PROMPT_GEMV's crossover
     * (forward.c); to measure where the crossover lies on a card */
    int32_t prompt_gemv;
    /* rows a block of the repacked batched mat-vecs: 4 ("batch-rows-4"),
     * 8 ("batch-rows-8") or 16 ("batch-rows-16"); 0: the launcher's choice
     * by the GPU (ops.c) */
    int32_t batch_rows;
    /* weights uploaded so far (bytes), NULL: no reports */
    void (*progress)(void *user, uint64_t done, uint64_t total);
    void *progress_user;
} m40_cuda_options;

/* Turns on the switch named name[0..len): "no-graphs", "one-stream",
 * "no-batch", "pieces-of-4", "tiled-attn", "split-attn", "vec-attn",
 * "scalar-attn", "prompt-gemv", "prompt-gemm", "batch-rows-4",
 * "batch-rows-8" or "batch-rows-16".
 * Any other name is an UNSUPPORTED error naming it. */
int m40_cuda_set_switch(m40_cuda_options *o, const char *name, size_t len, m40_err *err);

int m40_cuda_create(m40_cuda **out, const m40_model *model, const m40_cuda_options *opts,
                    m40_err *err);
void m40_cuda_destroy(m40_cuda *cu);

int m40_cuda_forward(m40_cuda *cu, int32_t slot, const int32_t *tokens, int32_t n, int32_t pos0,
                     float *logits, m40_err *err);
int m40_cuda_forward_greedy(m40_cuda *cu, int32_t slot, const int32_t *tokens, int32_t n,
                            int32_t pos0, int32_t *token, m40_err *err);

/* One decode step of n sequences at once: token[i] at position pos[i] of
 * slot[i] (n different slots). Row i's logits go to logits[i] or, where
 * that is NULL and argmax is not, only their argmax to argmax[i]. Each row's
 * results, and what it leaves in the KV cache, are bit for bit those of
 * m40_cuda_forward on that row alone (batch invariance, forward.c). */
int m40_cuda_forward_rows(m40_cuda *cu, int32_t n, const int32_t *slot, const int32_t *token,
                          const int32_t *pos, float *const *logits, int32_t *argmax, m40_err *err);

/* Nonzero when single-token forwards run on a stream of their own (the
 * decode lane, forward.c), so one may overlap a prompt forward of another
 * slot; zero with the one_stream switch. */
int m40_cuda_concurrent_decode(const m40_cuda *cu);

/* One line describing the device ("NVIDIA H100 80GB HBM3 (sm_90), cuBLAS on"). */
const char *m40_cuda_describe(const m40_cuda *cu);

/* VRAM a backend takes, by kind (bytes). */
typedef struct m40_cuda_vram {
    size_t weights, kv, scratch;
} m40_cuda_vram;
/* What m40_cuda_create would allocate for `model` under `opts`, without a
 * GPU (for `info` and the fit check). */
m40_cuda_vram m40_cuda_vram_plan(const m40_model *model, const m40_cuda_options *opts);
/* The largest context, a multiple of 256 and at most opts->n_ctx, whose
 * plan fits in free_bytes with M40_CUDA_FIT_RESERVE to spare; 0: none. */
#define M40_CUDA_FIT_RESERVE ((size_t)256 << 20)
int32_t m40_cuda_fit_ctx(const m40_model *model, const m40_cuda_options *opts, size_t free_bytes);
/* Positions per slot (opts->n_ctx, or less with fit_ctx). */
int32_t m40_cuda_n_ctx(const m40_cuda *cu);
/* What this backend allocated. */
m40_cuda_vram m40_cuda_vram_used(const m40_cuda *cu);

/* The device's copy bandwidth (device to device, read + write bytes per
 * second / 1e9), measured on two 256 MiB buffers (bench's yardstick). */
int m40_cuda_copy_bandwidth(m40_cuda *cu, double *gb_per_s, m40_err *err);

/* Reads position `pos` of layer `layer` of `slot` back from the KV cache as
 * FP32 (k and v: kv_dim floats each): a debug view for layout tests. */
int m40_cuda_debug_read_kv(m40_cuda *cu, int32_t slot, int32_t layer, int32_t pos, float *k,
                           float *v, m40_err *err);

/* Bytes one position of a slot takes in the cache (every layer's K and V
 * row). */
size_t m40_cuda_kv_pos_bytes(const m40_cuda *cu);
/* Copies positions [0, n) of slot's K/V to host memory (to_host) or back
 * from it, laid out as m40_cpu_kv_copy's: per layer, n_host K rows then
 * n_host V rows. Returns once the copy is done. */
int m40_cuda_kv_copy(m40_cuda *cu, int32_t slot, int32_t n, void *host, int32_t n_host, int to_host,
                     m40_err *err);

/* What `info` shows of CUDA: the driver, the devices, and the one a backend
 * would open (opened and closed again, kernels and cuBLAS loaded). */
typedef struct m40_cuda_probe {
    int driver_version; /* 0: no driver */
    int n_devs;         /* -1: not listed */
    m40_gpu_info devs[M40_GPU_MAX];
    int selected;  /* index into devs, -1: none opened */
    int cublas_on; /* cuBLAS loaded on the selected device */
    char cublas[384];
} m40_cuda_probe;
/* Fills p as far as it gets; -1 with the reason CUDA is unusable. */
int m40_cuda_probe_devices(int gpu, m40_cuda_probe *p, m40_err *err);

#endif /* M40_BACKEND_CUDA_CUDA_BACKEND_H */
