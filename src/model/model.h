/* model.h - a loaded model: config plus zero-copy views of its weights.
 *
 * m40_model_load opens a GGUF file (mmap, validated by src/gguf/), reads the
 * config from `<arch>.*` keys and maps GGUF tensor names to the slots below,
 * checking every shape against the config. Weights stay in their file type
 * and in the mapping: nothing is dequantized or copied here.
 *
 * Tensor names (GGUF): token_embd.weight, output_norm.weight, output.weight
 * (absent: tied to token_embd), rope_freqs.weight (optional), and per block
 * N: blk.N.attn_norm.weight, blk.N.attn_{q,k,v,output}.weight,
 * blk.N.attn_{q,k,v}.bias (qwen2), blk.N.attn_{q,k}_norm.weight (qwen3),
 * blk.N.ffn_norm.weight,
 * blk.N.ffn_{gate,up,down}.weight.
 *
 * Owns: the GGUF handle and the layer array. Touches: nothing else.
 */
#ifndef M40_MODEL_MODEL_H
#define M40_MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "model/config.h"
#include "util/err.h"

/* A 1-D or 2-D weight as stored in the file. For a matrix, `cols` (GGML's
 * ne0) is the length of a row and `rows` (ne1) the number of rows: y = W x
 * takes x[cols] to y[rows]. */
typedef struct m40_weight {
    const char *name; /* NUL-terminated, owned by the model */
    uint32_t type;    /* m40_ggml_type */
    int64_t cols;     /* ne0 */
    int64_t rows;     /* ne1 (1 for vectors) */
    const void *data; /* into the file mapping; NULL when absent */
    size_t row_bytes; /* bytes per row in `type` */
} m40_weight;

typedef struct m40_layer {
    m40_weight attn_norm;      /* [d] F32 */
    m40_weight wq;             /* rows n_head*head_dim, cols d */
    m40_weight wk, wv;         /* rows n_head_kv*head_dim, cols d */
    m40_weight wo;             /* rows d, cols n_head*head_dim */
    m40_weight bq, bk, bv;     /* qwen2 biases, F32; data NULL otherwise */
    m40_weight q_norm;         /* qwen3: [head_dim] F32, each q head's RMSNorm weight */
    m40_weight k_norm;         /* qwen3: [head_dim] F32, each k head's */
    m40_weight attn_post_norm; /* gemma: [d] F32, RMSNorm weight of the attention output */
    m40_weight ffn_post_norm;  /* gemma: [d] F32, of the MLP output */
    m40_weight ffn_norm;       /* [d] F32 */
    m40_weight w_gate, w_up;   /* rows n_ff, cols d (dense MLP) */
    m40_weight w_down;         /* rows d, cols n_ff */
    /* MoE (n_expert > 0) instead of the three above: the router, and each
     * expert's matrices stacked (GGUF's 3-D tensors viewed as 2-D): expert
     * e's gate and up rows are e*n_ff_exp .. +n_ff_exp, its down rows
     * e*d .. +d */
    m40_weight router;             /* rows n_expert, cols d */
    m40_weight gate_exps, up_exps; /* rows n_expert*n_ff_exp, cols d */
    m40_weight down_exps;          /* rows n_expert*d, cols n_ff_exp */
} m40_layer;

typedef struct m40_gguf m40_gguf;

typedef struct m40_model {
    m40_gguf *gguf; /* the open file */
    int owns_gguf;  /* m40_model_load opened it: m40_model_free closes it */
    m40_model_config cfg;
    m40_weight tok_embd;              /* rows n_vocab, cols d */
    m40_weight output_norm;           /* [d] F32 */
    m40_weight output;                /* rows n_vocab, cols d; == tok_embd when tied */
    m40_weight rope_freqs;            /* [rope_dim/2] F32, optional (Llama 3.1+) */
    m40_weight rope_long, rope_short; /* [rope_dim/2] F32, phi3 LongRoPE only */
    m40_layer *layers;                /* n_layer entries */
    void *names;                      /* per-layer tensor names (m40_weight.name points here) */
    uint64_t n_params;                /* elements over all tensors */
    uint64_t file_bytes;
} m40_model;

/* Opens `path`, validates it and binds every weight. Errors name the file
 * and the key or tensor at fault. */
int m40_model_load(m40_model **out, const char *path, m40_err *err);

/* Whether m40-llm can run the model in g, from its header alone: its
 * architecture and every tensor's type. 0, or -1 with err (kind
 * M40_ERR_UNSUPPORTED) naming the architecture, or each type it cannot
 * run with how many tensors have it and the first one's name. Loading
 * checks this first, so a refused file is refused with the whole list. */
int m40_model_check_support(const m40_gguf *g, m40_err *err);

/* The same over an already open GGUF, which the caller keeps owning. */
int m40_model_from_gguf(m40_model **out, m40_gguf *g, m40_err *err);

/* The per-dimension RoPE divisors for a context of n_ctx positions:
 * rope_freqs (Llama 3.1+), LongRoPE's long factors past the original
 * context and its short ones within it, or NULL. */
const float *m40_model_rope_factors(const m40_model *m, int32_t n_ctx);

/* The bytes of weights one token's decode step reads: the whole file but
 * for a mixture of experts, whose experts count n_expert_used of
 * n_expert (bench's bandwidth figures; issue 17's MoE goal). */
uint64_t m40_model_active_bytes(const m40_model *m);

/* YaRN's ramp over the rope_dim/2 RoPE pairs: pairs up to *low keep their
 * original (extrapolated) angle, pairs from *high on are scaled by
 * freq_scale, those between mix the two linearly; one rule for both
 * backends' tables. */
void m40_rope_yarn_range(int32_t rope_dim, double orig_ctx, double base, double beta_fast,
                         double beta_slow, double *low, double *high);

void m40_model_free(m40_model *m);

#endif /* M40_MODEL_MODEL_H */
