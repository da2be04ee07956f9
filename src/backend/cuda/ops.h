/* ops.h - host-side launchers of the kernels in kernels/, one per op.
 *
 * Each launcher checks its shapes, picks the grid the kernel file documents
 * and enqueues the kernel on ops->stream (it does not wait). Buffers
 * are device pointers; shapes are as in the kernel files and in the CPU
 * reference (src/backend/cpu/ops.h), which the GPU tests compare against.
 *
 * Owns: the table of kernel handles. Touches: ops->stream and the cuBLAS
 * handle; device memory only through the pointers passed in.
 */
#ifndef M40_BACKEND_CUDA_OPS_H
#define M40_BACKEND_CUDA_OPS_H

#include <stdint.h>

#include "backend/cuda/gpu.h"
#include "model/config.h"
#include "quant/ggml_types.h"

typedef m40_cu_deviceptr m40_dptr;

/* A weight matrix (or vector) in VRAM. `repacked`: Q4_0/Q8_0/Q6_K rewritten by
 * m40_cuda_repack into aligned quants + scales (kernels/repack.cu); then
 * row_bytes is unused and the matrix must be addressed as a whole. */
typedef struct m40_dweight {
    uint32_t type;
    int cols, rows;
    int64_t row_bytes;
    int repacked;
    m40_dptr ptr; /* 0 when absent */
} m40_dweight;

enum {
    M40_GEMV_GENERIC = 0,  /* any type, byte loads */
    M40_GEMV_VEC = 1,      /* wide loads: F32/F16/BF16, Q4_1..Q6_K (ops.c vec_align) */
    M40_GEMV_REPACKED = 2, /* Q4_0/Q8_0/Q6_K after m40_cuda_repack */
    M40_GEMV_FAMILIES = 3,
    M40_GEMV_MAX_LG = 3, /* 8 rows per block */
    M40_GEMVB_MAX = 8,   /* most inputs of one batched mat-vec launch */
};

typedef struct m40_cuda_ops {
    m40_gpu *gpu;
    m40_cu_stream stream; /* where the launchers enqueue: the gpu's, unless changed */
    /* Mat-vec kernels per family, weight type and log2 of the rows each
     * 128-thread block computes (gemv.cu's `_rpb<N>` variants); NULL where
     * no such variant exists. The launcher picks the largest variant that
     * still gives the GPU enough blocks (m40_cuda_gemv). */
    m40_cu_function gemv[M40_GEMV_FAMILIES][M40_GGML_TYPE_COUNT][M40_GEMV_MAX_LG + 1];
    /* Batched mat-vec kernels (gemv_batch.cu) per type and batch 2..8; NULL:
     * the batch runs as one single-row product per input (so does a type's
     * weight whose single-row kernel is not the one its batched kernels
     * share a loop with: ops.c's k_batched). */
    m40_cu_function gemvb[M40_GGML_TYPE_COUNT][M40_GEMVB_MAX + 1];
    /* the repacked types' batched kernels in their 8-rows-a-block shape
     * (gemv_batch.cu's m40_gemvb_<type>r8_nb<NB>; gemvb holds the 4-row
     * one): the same bits, fewer instructions, more registers */
    m40_cu_function gemvb8[M40_GGML_TYPE_COUNT][M40_GEMVB_MAX + 1];
    /* ... and in their 16-row shape (m40_gemvb_<type>r16_nb<NB>, 256
     * threads: two groups of 8 rows sharing x's loads) */
    m40_cu_function gemvb16[M40_GGML_TYPE_COUNT][M40_GEMVB_MAX + 1];
    /* rows a block of the repacked batched kernels: 4, 8 or 16; 0 after
     * init, the launcher's choice by the GPU (ops.c, repacked_rows) */
    int gemvb_rows;
    /* The other batched kernels, per family of the single-row loop they
     * share and type: one kernel for every batch of 2..8, told n at launch
     * (gemv_batch.cu's m40_gemvb_<type>[_v]_n); NULL: one single-row product
     * per input. */
    m40_cu_function gemvb_n[M40_GEMV_FAMILIES][M40_GGML_TYPE_COUNT];
    /* most inputs per batched launch: M40_GEMVB_MAX after init; larger
     * batches run in nearly equal pieces (m40_cuda_gemv_batch) */
    int gemvb_piece;
    m40_cu_function dequant_rows[M40_GGML_TYPE_COUNT]; /* NULL: type not handled */
    m40_cu_function dequant_repacked[M40_GGML_TYPE_COUNT];
    m40_cu_function repack, repack_q6_k;
    m40_cu_function rmsnorm, head_norm, rope_table, rope_store, swiglu;
    m40_cu_function attn_partial, attn_combine, argmax, sgemm_nt, add_bias, kv_store_quant;
    m40_cu_function geglu, scale, softcap, add, moe_route, copy_rows, moe_combine;
    /* prompt attention per tile of queries (attn_tile.cu), per cache type
     * (M40_CUDA_KV_*) and head_dim 64/80/96/128/256 */
    m40_cu_function attn_tile[4][5];
    /* the split kernel's 8-elements-a-load form (attention.cu) per cache
     * type (F16, Q8_0, Q4_0), head_dim 64/128/256 and most query heads per
     * KV head 1/2/4/8 */
    m40_cu_function attn_vec[3][3][4];
    /* 1: every cache through the per-element kernel (init: unless
     * M40_CUDA_VEC_BY_DEFAULT) */
    int attn_scalar;
    /* 1: the split kernels' grid runs the KV heads of a split side by side
     * (blocks next to each other in launch order read one stretch of the
     * cache's rows), 0: the splits of a head (init: 1; bench_kernels
     * measures both, docs/long-context.md). The order of launch only: the
     * bits are the same. */
    int attn_heads_inner;
} m40_cuda_ops;

/* Looks up every kernel in the gpu's module. */
int m40_cuda_ops_init(m40_cuda_ops *ops, m40_gpu *gpu, m40_err *err);

/* True when the GPU has a mat-vec and dequantize kernel for `type`. */
int m40_cuda_type_supported(const m40_cuda_ops *ops, uint32_t type);

/* y[w.rows] = W x (+ bias[rows] when bias != 0) (+ res[rows] when res != 0;
 * res may be y: the fused residual add); cols a multiple of 32, x 16-byte
 * aligned. Picks the fastest kernel the weight's layout allows. */
int m40_cuda_gemv(m40_cuda_ops *ops, const m40_dweight *w, m40_dptr y, m40_dptr x, m40_dptr bias,
                  m40_dptr res, m40_err *err);

/* The same product through one named mat-vec kernel of gemv.cu that
 * computes `rpb` rows per 128-thread block (kernel microbenchmarks). */
int m40_cuda_gemv_kernel(m40_cuda_ops *ops, m40_cu_function fn, int rpb, const m40_dweight *w,
                         m40_dptr y, m40_dptr x, m40_dptr bias, m40_dptr res, m40_err *err);

/* y[c][ldy] (first w.rows) = W x[c] (+ bias) (+ y[c] when accumulate), for
 * the n inputs x[c] (ldx floats apart, ldx a multiple of 4): the weights
 * read once per piece of up to M40_GEMVB_MAX inputs where gemv_batch.cu has
 * the type's kernel, else n single-row products. Either way y[c] is bit for
 * bit what m40_cuda_gemv gives for x[c] alone (batch invariance). */
int m40_cuda_gemv_batch(m40_cuda_ops *ops, const m40_dweight *w, m40_dptr y, int ldy, m40_dptr x,
                        int ldx, int n, m40_dptr bias, int accumulate, m40_err *err);

/* dst[i][cols] = row (ids ? ids[i] : r0 + i) of W, as FP32. */
int m40_cuda_dequant_rows(m40_cuda_ops *ops, const m40_dweight *w, m40_dptr dst, m40_dptr ids,
                          int r0, int n_rows, m40_err *err);

/* True when w has a repacked layout: Q4_0, Q8_0 or Q6_K with a multiple
 * of 8 rows (kernels/repack.cu interleaves rows by 8). */
int m40_cuda_can_repack(const m40_dweight *w);

/* Repacks w (in place; `tmp` must hold its bytes) and sets w->repacked;
 * a matrix that cannot be repacked is left as it is. */
int m40_cuda_repack(m40_cuda_ops *ops, m40_dweight *w, m40_dptr tmp, m40_err *err);

/* y[rows][n] = rmsnorm(x[rows][n]) * w[n]. */
int m40_cuda_rmsnorm(m40_cuda_ops *ops, m40_dptr y, m40_dptr x, m40_dptr w, int rows, int n,
                     float eps, m40_err *err);

/* In each of the T rows of x (ld floats apart), the n_head q heads and the
 * n_head_kv k heads that start it (head_dim floats each) become
 * rmsnorm(head) * wq[head_dim] (q) or * wk[head_dim] (k), in place. */
int m40_cuda_head_norm(m40_cuda_ops *ops, m40_dptr x, m40_dptr wq, m40_dptr wk, int T, int ld,
                       int n_head, int n_head_kv, int head_dim, float eps, m40_err *err);

/* The KV cache's element kinds, as kernels/kv_cache.cuh numbers them (and
 * backend.h's m40_kv_type). */
#define M40_CUDA_KV_F16  0
#define M40_CUDA_KV_F32  1
#define M40_CUDA_KV_Q8_0 2
#define M40_CUDA_KV_Q4_0 3

/* YaRN's ramp (yarn, and the pairs low..high of m40_rope_yarn_range) and
 * the attention factor that scales cos and sin (YaRN, LongRoPE; else 1). */
typedef struct m40_cuda_rope_ext {
    int yarn;
    double low, high, mscale;
} m40_cuda_rope_ext;

/* cs[n_tokens][rope_dim/2] (float2) for positions pos[n_tokens]; ext NULL:
 * plain RoPE (rope.cu). */
int m40_cuda_rope_table(m40_cuda_ops *ops, m40_dptr cs, m40_dptr pos, int n_tokens, int rope_dim,
                        float freq_base, float freq_scale, m40_dptr freq_factors,
                        const m40_cuda_rope_ext *ext, m40_err *err);

/* RoPE and the KV cache append in one launch (rope.cu): in the fused q|k|v
 * rows x[n_tokens][row_stride] (n_head q heads, n_head_kv k heads, n_head_kv
 * v heads of head_dim), q heads are rotated by the table in place, k heads
 * rotated into k_cache and v heads copied into v_cache at positions pos[]
 * of one layer's cache [n_ctx][n_head_kv * head_dim] of kv_type (0 FP16,
 * 1 FP32; x's k and v heads are left as they were), or quantized (2 Q8_0,
 * 3 Q4_0: k heads rotated in place in x, then a second launch,
 * kv_quant.cu, stores k and v a block of 32 at a time). */
int m40_cuda_rope_store(m40_cuda_ops *ops, m40_dptr x, m40_dptr cs, m40_dptr pos, m40_dptr k_cache,
                        m40_dptr v_cache, int n_tokens, int n_head, int n_head_kv, int head_dim,
                        int rope_dim, m40_rope_style style, int row_stride, int kv_type,
                        m40_err *err);

/* m40_cuda_rope_store for decode rows of different sequences: token t's
 * k and v go to the cache at slot[t] * slot_stride elements past k_cache
 * and v_cache (one layer of slot 0). */
int m40_cuda_rope_store_rows(m40_cuda_ops *ops, m40_dptr x, m40_dptr cs, m40_dptr pos,
                             m40_dptr slot, long long slot_stride, m40_dptr k_cache,
                             m40_dptr v_cache, int n_tokens, int n_head, int n_head_kv,
                             int head_dim, int rope_dim, m40_rope_style style, int row_stride,
                             int kv_type, m40_err *err);

/* y[rows][width] = silu(gate) * up, gate and up rows in_stride floats apart. */
int m40_cuda_swiglu(m40_cuda_ops *ops, m40_dptr y, m40_dptr gate, m40_dptr up, int rows, int width,
                    int in_stride, m40_err *err);
/* The same with GELU's tanh form (Gemma; geglu.cu). */
int m40_cuda_geglu(m40_cuda_ops *ops, m40_dptr y, m40_dptr gate, m40_dptr up, int rows, int width,
                   int in_stride, m40_err *err);
/* x[n] *= s (Gemma's embedding scale; scale.cu). */
int m40_cuda_scale(m40_cuda_ops *ops, m40_dptr x, int n, float s, m40_err *err);
/* x[n] = cap * tanh(x / cap) (Gemma 2's logits; softcap.cu). */
int m40_cuda_softcap(m40_cuda_ops *ops, m40_dptr x, int n, float cap, m40_err *err);
/* y[n] = a[n] + b[n] (the residual add after a post-norm; add.cu). */
int m40_cuda_add(m40_cuda_ops *ops, m40_dptr y, m40_dptr a, m40_dptr b, int n, m40_err *err);

/* A mixture of experts (moe_route.cu, copy_rows.cu, moe_combine.cu): the
 * router's logits[n_tokens][n_expert] (overwritten) become each token's k
 * picks ids[n_tokens][k] and their weights w[n_tokens][k]; rows of width
 * floats copied as dst[dst_idx[i]] = src[src_idx[i]] (an index 0: i); and
 * x[t] += sum_j w[t][j] y[t][j] (y [n_tokens][k][d]). */
int m40_cuda_moe_route(m40_cuda_ops *ops, m40_dptr ids, m40_dptr w, m40_dptr logits, int n_tokens,
                       int n_expert, int k, m40_err *err);
int m40_cuda_copy_rows(m40_cuda_ops *ops, m40_dptr dst, m40_dptr dst_idx, m40_dptr src,
                       m40_dptr src_idx, int n, int width, m40_err *err);
int m40_cuda_moe_combine(m40_cuda_ops *ops, m40_dptr x, m40_dptr y, m40_dptr w, int n_tokens, int k,
                         int d, m40_err *err);

/* y[n_rows][ld] += bias[n] on the first n of each row. */
int m40_cuda_add_bias(m40_cuda_ops *ops, m40_dptr y, m40_dptr bias, int n, int n_rows, int ld,
                      m40_err *err);

/* Scratch the attention needs for n_q queries over at most n_pos positions:
 * floats of o_part and of ml_part. */
#define M40_ATTN_CHUNK            256  /* positions per split, prefill */
#define M40_ATTN_CHUNK_DECODE     32   /* the shortest split m40_cuda_attn_decode_chunk picks */
#define M40_ATTN_CHUNK_DECODE_MAX 4096 /* and the longest */
/* the most SMs the split policy counts (more SMs, more splits: a scratch
 * sized for this many holds any GPU's) */
#define M40_ATTN_DECODE_MAX_SMS 256
/* threads of a combine block (kernels/attention.cu's, the same value) */
#define M40_ATTN_COMBINE_THREADS 512
/* prompt chunks whose n_batch block holds this many tokens or more take
 * the tiled kernel (forward.c) when it is on by default: shorter ones
 * would give it too few blocks (one per 32 query heads) to fill the GPU */
#define M40_TILED_MIN_T 16
/* Whether the tiled prompt attention and the split kernel's
 * eight-elements-a-load form are on without a switch (split-attn and
 * scalar-attn turn them off): on since test_gpu_ops' parity grid passed
 * on an H100 and both measured faster there (docs/long-context.md). */
#define M40_CUDA_TILED_BY_DEFAULT 1
#define M40_CUDA_VEC_BY_DEFAULT   1
/* What a decode query's split length depends on besides its position:
 * the model's heads and the GPU's number of SMs. */
typedef struct m40_cuda_attn_dims {
    int n_head, n_head_kv, head_dim, sm_count;
} m40_cuda_attn_dims;
/* Positions per split for one query over n_pos positions: the shortest
 * power of two from M40_ATTN_CHUNK_DECODE whose splits of every KV head
 * fill the GPU about once (short splits at short contexts, long ones at
 * long contexts), decided for the power-of-two bucket n_pos is in
 * (bench_kernels --attn; docs/long-context.md). */
int m40_cuda_attn_decode_chunk(const m40_cuda_attn_dims *d, int n_pos);
int m40_cuda_attn_splits(int n_pos, int chunk);
size_t m40_cuda_attn_scratch_floats(int n_q, int n_head, int head_dim, int n_pos, int chunk);

/* What differs between layers' attention beyond the shapes: the score
 * scale, a sliding window (the last `window` positions; 0: all) and a
 * soft-cap of the scores (0: none). NULL where a launcher takes one: scale
 * 1/sqrt(head_dim), neither of the others. */
typedef struct m40_cuda_attn_layer {
    float scale;
    int window;
    float softcap;
} m40_cuda_attn_layer;

/* out[n_q][n_head*hd] = causal attention of q (n_q rows of n_head*hd,
 * q_stride floats apart; query t sees positions 0..pos_q[t], none of which
 * exceeds max_pos) over one layer's cache of kv_type (as m40_cuda_rope_store's),
 * `chunk` positions per split.
 * scratch: m40_cuda_attn_scratch_floats(n_q, n_head, hd, max_pos + 1,
 * chunk) floats. A
 * max_pos beyond the queries' positions only adds empty splits (a CUDA
 * graph sizes the grid for a range of positions this way). */
int m40_cuda_attention(m40_cuda_ops *ops, m40_dptr out, m40_dptr q, int q_stride, m40_dptr k_cache,
                       m40_dptr v_cache, m40_dptr pos_q, int n_q, int max_pos, int chunk,
                       int n_head, int n_head_kv, int head_dim, int kv_type,
                       const m40_cuda_attn_layer *layer, m40_dptr scratch, m40_err *err);

/* The same as m40_cuda_attention for a prompt chunk, in one pass over the
 * keys per tile of queries (attn_tile.cu: each key and value read once per
 * tile of 32 query heads instead of once per query, scores and outputs
 * register-tiled), the context split every M40_ATTN_TILE_SPLIT keys from
 * position 0 (so a long one fills the GPU) and combined as the split
 * kernel's. Scratch: m40_cuda_attn_tiled_scratch_floats(n_q, n_head, hd,
 * max_pos + 1) floats (no more than m40_cuda_attn_scratch_floats' with
 * M40_ATTN_CHUNK). Shapes it takes: m40_cuda_attention_tiled_fits
 * (head_dim 64, 80, 96, 128 or 256, at most 32 query heads per KV head). */
#define M40_ATTN_TILE_SPLIT 2048 /* kernels/attn_tile.cu's M40_TILE_SPLIT */
int m40_cuda_attention_tiled_fits(int n_head, int n_head_kv, int head_dim);
size_t m40_cuda_attn_tiled_scratch_floats(int n_q, int n_head, int head_dim, int n_pos);
int m40_cuda_attention_tiled(m40_cuda_ops *ops, m40_dptr out, m40_dptr q, int q_stride,
                             m40_dptr k_cache, m40_dptr v_cache, m40_dptr pos_q, int n_q,
                             int max_pos, int n_head, int n_head_kv, int head_dim, int kv_type,
                             const m40_cuda_attn_layer *layer, m40_dptr scratch, m40_err *err);

/* Decode rows of different sequences: query t reads the cache of slot
 * slot[t] (slot[t] * slot_stride elements past k_cache, v_cache) with its
 * own split length chunk_q[t] (m40_cuda_attn_decode_chunk of its position
 * + 1, what it would use alone); `chunk` is the largest of them and
 * max_pos bounds every row's position. Scratch: attn_scratch_floats(n_q,
 * n_head, hd, ..) with m40_cuda_attn_decode_splits(max_pos + 1) splits. */
int m40_cuda_attention_rows(m40_cuda_ops *ops, m40_dptr out, m40_dptr q, int q_stride,
                            m40_dptr k_cache, m40_dptr v_cache, m40_dptr slot,
                            long long slot_stride, m40_dptr pos_q, m40_dptr chunk_q, int n_q,
                            int max_pos, int chunk, int n_head, int n_head_kv, int head_dim,
                            int kv_type, const m40_cuda_attn_layer *layer, m40_dptr scratch,
                            m40_err *err);

/* The most splits a decode query at a position below n_pos has. */
int m40_cuda_attn_decode_splits(const m40_cuda_attn_dims *d, int n_pos);

/* out[0] = argmax x[n] (int32, ties to the lowest index). */
int m40_cuda_argmax(m40_cuda_ops *ops, m40_dptr out, m40_dptr x, int n, m40_err *err);

/* out[r] = argmax of row r of x[rows][n], each as m40_cuda_argmax. */
int m40_cuda_argmax_rows(m40_cuda_ops *ops, m40_dptr out, m40_dptr x, int n, int rows,
                         m40_err *err);

/* c[m][ldc] (+)= a[m][k] b[n][k]^T with our tiled kernel. */
int m40_cuda_sgemm_nt(m40_cuda_ops *ops, m40_dptr c, m40_dptr a, m40_dptr b, int m, int n, int k,
                      int ldc, int accumulate, m40_err *err);

#endif /* M40_BACKEND_CUDA_OPS_H */
