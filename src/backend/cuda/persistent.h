/* persistent.h - the persistent decode kernel prototype (build option
 * M40_PERSISTENT): what the host hands kernels/persistent.cu, and the host
 * side that prepares and launches it (persistent.c).
 *
 * One launch runs every layer of a decode step (T = 1): blocks stay
 * resident and step through the phases of each layer, meeting at a grid
 * barrier (an atomic counter; sm_52 has no cooperative launch) between
 * phases. RMSNorm is folded into the products that read it, RoPE and the
 * KV store into the q|k|v product, SwiGLU into the gate|up product, so a
 * layer is 6 phases instead of 11 launches. Prototype limits: Q4_0 or
 * Q8_0 layer matrices (repacked, one type for all), fused q|k|v and
 * gate|up, no biases, NORM-style RoPE. docs/performance.md has the result.
 *
 * This header is read by both compilers: plain C, device pointers as
 * 64-bit integers.
 *
 * Owns: the layer table and barrier words in VRAM (persistent.c). Touches:
 * the decode lane's activations and the KV cache, through the pointers.
 */
#ifndef M40_BACKEND_CUDA_PERSISTENT_H
#define M40_BACKEND_CUDA_PERSISTENT_H

/* One layer's tensors in VRAM. */
typedef struct m40_pl_layer {
    unsigned long long wqkv, wo, wgu, wdown; /* repacked, fused */
    unsigned long long attn_norm, ffn_norm;  /* FP32 [n_embd] */
} m40_pl_layer;

/* The kernel's one argument (by value). */
typedef struct m40_pl_params {
    unsigned long long layers;           /* m40_pl_layer[n_layer] */
    unsigned long long x;                /* FP32 [n_embd]: embedding in, residual out */
    unsigned long long q;                /* FP32 [q_dim], RoPE'd */
    unsigned long long att;              /* FP32 [q_dim] */
    unsigned long long hb;               /* FP32 [n_ff] */
    unsigned long long o_part, ml_part;  /* attention partials (attention.cu) */
    unsigned long long cs;               /* float2 [rope_dim / 2] (rope.cu's table) */
    unsigned long long pos;              /* int [1]: the token's position */
    unsigned long long bar;              /* unsigned [2]: barrier count, generation */
    unsigned long long k_cache, v_cache; /* [n_slots][n_layer][n_ctx][kv_dim] */
    int n_layer, n_embd, n_ff, n_head, n_head_kv, hd, rope_dim;
    int slot, n_ctx, kv_f32, chunk, n_split;
    float eps, scale;
} m40_pl_params;

#ifndef __CUDACC__
#include <stdint.h>

#include "backend/cuda/gpu.h"
#include "util/err.h"

/* The host side: the kernel for one weight type, its grid, and the layer
 * table and barrier words in VRAM. */
typedef struct m40_pl {
    m40_cu_function fn;
    unsigned grid; /* blocks: SMs x blocks per SM */
    unsigned max_shmem;
    m40_cu_deviceptr table; /* m40_pl_layer[n_layer], then the 2 barrier words */
    int n_layer;
} m40_pl;

/* Loads the kernel for `type` (Q4_0 or Q8_0, repacked), sizes the grid
 * (blocks_per_sm <= 0: as many as fit with max_shmem bytes of dynamic
 * shared memory) and uploads the layer table. Fails with the reason when
 * this build has no prototype (M40_PERSISTENT off) or the type has none. */
int m40_pl_create(m40_pl *pl, m40_gpu *gpu, uint32_t type, const m40_pl_layer *layers, int n_layer,
                  int blocks_per_sm, unsigned max_shmem, m40_err *err);
/* Enqueues the layers of one decode step on `stream` (p->layers and p->bar
 * are filled in here). */
int m40_pl_launch(m40_pl *pl, m40_gpu *gpu, m40_cu_stream stream, m40_pl_params *p, unsigned shmem,
                  m40_err *err);
void m40_pl_destroy(m40_pl *pl, m40_gpu *gpu);
#endif

#endif /* M40_BACKEND_CUDA_PERSISTENT_H */
