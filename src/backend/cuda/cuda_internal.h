/* cuda_internal.h - what the CUDA backend's files share: its state (the
 * weights in VRAM, the KV cache, the lanes) and the functions one file
 * calls in another. Only the .c files of src/backend/cuda/ include it.
 *
 *   cuda_backend.c  set-up and tear-down: sizes, allocation, lanes, graphs
 *   weights.c       where each weight lives in VRAM; upload; repacking
 *   forward.c       the forward pass over those weights
 *
 * Owns: nothing by itself (declarations only).
 */
#ifndef M40_BACKEND_CUDA_CUDA_INTERNAL_H
#define M40_BACKEND_CUDA_CUDA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/ops.h"

typedef m40_dweight dweight;

typedef struct dlayer {
    dweight attn_norm, wq, wk, wv, wo, bq, bk, bv, ffn_norm, gate, up, down;
    dweight q_norm, k_norm; /* qwen3: [head_dim] F32 each (ptr 0 otherwise) */
    /* gemma: RMSNorm weights of the attention and MLP outputs, applied
     * before each residual add (ptr 0 otherwise) */
    dweight attn_post_norm, ffn_post_norm;
    /* a mixture of experts instead of gate/up/down (ptr 0 otherwise): the
     * router [n_expert][d], and the experts' matrices stacked, expert e's
     * rows e * n_ff_exp .. (down: e * d ..), in their GGUF layout */
    dweight router, gate_exps, up_exps, down_exps;
    /* Fused views (ptr 0 when the parts' types differ): wqkv = Wq|Wk|Wv,
     * bqkv = bq|bk|bv, wgu = Wgate|Wup, each one matrix of the parts' rows
     * in a row. A repacked fused view is repacked as a whole, so its parts
     * must not be used on their own. */
    dweight wqkv, bqkv, wgu;
} dlayer;

/* A lane: a stream and the activations the forwards on it use. The prefill
 * lane (the gpu's own stream, lowest priority) runs chunks of up to n_batch
 * tokens; the decode lane (a high-priority stream with T = 1 activations and
 * its own decode graphs) runs single tokens. Two lanes let one slot's decode
 * step run while another slot's prompt chunk is on the GPU, the decode
 * step's blocks scheduled first; with opt.one_stream there is one lane for
 * both. At most one forward runs on a lane at a time (the engine's turns). */
typedef struct lane {
    m40_cuda_ops ops; /* the launchers, bound to this lane's stream */
    int batch;        /* most tokens of one sequence per forward (a prompt chunk) */
    int n_dec;        /* most decode rows of different sequences per forward (0: none) */
    int rows;         /* the activations' rows: the larger of the two */
    /* activations and scratch, `rows` rows each (one allocation); logits
     * and argmax have a row per decode row (one when n_dec is 0) */
    m40_dptr x, xb, qkv, att, gu, hb, logits, attn_tmp, deq, step, cs, argmax;
    m40_dptr cs_swa; /* the RoPE table of sliding layers (their own base; gemma) */
    /* a mixture of experts (forward.c moe_mlp; 0 without): router logits
     * [rows][n_expert], picks and weights [rows][k], the rows routed to
     * one expert [rows][d], its gate and up [rows][n_ff_exp], its outputs
     * [rows][d], every pick's output [rows][k][d], and the index lists
     * that gather and place them [2][rows * k] */
    m40_dptr m_logits, m_ids, m_w, m_g, m_gate, m_up, m_y, m_all, m_idx;
    /* their host side: the picks, experts' first entries [n_expert + 1],
     * and the two index lists */
    int32_t *h_ids, *h_start, *h_idx;
    /* step = ids[rows], pos[rows], slots[rows], chunks[rows]: one upload */
    m40_dptr ids, pos, slots, chunks;
    size_t deq_floats;  /* 0: no prefill products on this lane */
    int32_t *host_step; /* the host side of step */
    /* decode graphs, [n_slots][n_buckets]; bucket b sizes attention for
     * positions up to 32 * 2^b */
    m40_cu_graph_exec *graphs;
    /* graphs of decode rows, [n_dec - 1][n_buckets]: index B - 2 for B rows */
    m40_cu_graph_exec *row_graphs;
} lane;

/* Decode rows one forward takes at most (a larger batch runs in pieces). */
#define M40_CUDA_MAX_DECODE 32

struct m40_cuda {
    m40_gpu gpu;
    const m40_model *model;
    m40_cuda_options opt;
    char desc[192];
    int kv_dim, q_dim, qkv_dim, wide;
    int kv_type;      /* M40_CUDA_KV_* (ops.h) of opt.k_type */
    size_t kv_row;    /* bytes of one position's row of kv_dim elements */
    m40_dptr weights; /* one allocation holding every tensor */
    size_t weights_bytes;
    dweight tok_embd, output_norm, output, rope_freqs;
    dlayer *layers;
    m40_dptr k_cache, v_cache; /* [n_slots][n_layer][n_ctx] rows of kv_row bytes (kv_type) */
    size_t kv_bytes;
    m40_dptr scratch; /* every lane's activations */
    size_t scratch_bytes;
    lane lanes[2]; /* [0] prefill, [n_lanes - 1] decode */
    int n_lanes;   /* 1 with opt.one_stream */
    /* a non-blocking stream of its own for saving and restoring a slot's
     * K/V (m40_cuda_kv_copy), so the copies never join a lane's work or a
     * graph being captured on one */
    m40_cu_stream copy_stream;
    int n_buckets; /* decode graphs per slot, 0: no graphs */
    /* the tensors m40_cuda_layout_weights placed, for the upload */
    struct {
        const m40_weight *w;
        dweight *d;
    } * placed;
    size_t n_placed;
};

/* Rounds up to the 256-byte alignment every VRAM region starts at. */
static inline size_t m40_cuda_align256(size_t n) {
    return (n + 255) & ~(size_t)255;
}

/* ---- weights.c ----------------------------------------------------------- */

/* Lays the weights out from base (0: only measure); returns the bytes. */
size_t m40_cuda_layout_weights(m40_cuda *cu, m40_dptr base);
/* Refuses a model the kernels cannot run (a weight type, the head size). */
int m40_cuda_check_model(m40_cuda *cu, m40_err *err);
/* Copies every placed tensor up, reporting progress (opt.progress). */
int m40_cuda_upload_weights(m40_cuda *cu, m40_err *err);
/* Rewrites Q4_0 / Q8_0 matrices into the fast kernels' layout. */
int m40_cuda_repack_weights(m40_cuda *cu, m40_err *err);

/* ---- forward.c ----------------------------------------------------------- */

/* Layer `layer` of `slot` in a cache (k_cache or v_cache). */
m40_dptr m40_cuda_cache_at(const m40_cuda *cu, m40_dptr cache, int slot, int layer);

#endif /* M40_BACKEND_CUDA_CUDA_INTERNAL_H */
