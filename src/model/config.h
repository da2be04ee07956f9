/* config.h - a model's hyperparameters and architecture flags.
 *
 * Filled from a GGUF file's `<arch>.*` keys (model.c). Architecture
 * differences are flags here, never copies of the forward pass:
 *   llama (Llama 2/3, Mistral, TinyLlama, SmolLM2): normal RoPE, no biases;
 *   with expert_count (Mixtral), its MLPs are experts as qwen3moe's, as
 *   wide as feed_forward_length;
 *   qwen2: NeoX RoPE, Q/K/V biases;
 *   qwen3: NeoX RoPE, no biases, an RMSNorm over each head of q and of k
 *   (before RoPE), with weights of their own;
 *   qwen3moe: qwen3 whose MLP is a mixture of experts: a router picks
 *   n_expert_used of n_expert small MLPs per token (softmax, top-k, the
 *   picked weights renormalized) and sums their outputs by those weights;
 *   gemma2: embeddings scaled by sqrt(d), RMSNorms of the attention and MLP
 *   outputs before each residual add, a GELU (tanh) gate, sliding-window
 *   attention on every other layer, and tanh soft-capping of the attention
 *   scores and of the logits;
 *   phi3 (Phi-3, Phi-4): NeoX RoPE, q/k/v in one matrix (attn_qkv) and gate
 *   and up in another (ffn_up), bound as row ranges of them; a sliding
 *   window on every layer when the file gives one;
 *   gemma3 (text): qwen3's head norms, plus embeddings scaled by sqrt(d),
 *   RMSNorms of the attention and MLP outputs before each residual add, a
 *   GELU (tanh) gate, and sliding-window attention on five layers of six,
 *   whose RoPE has a base of its own.
 * Tied embeddings (no output.weight) are a flag too.
 *
 * Owns: the config struct. Touches: nothing.
 */
#ifndef M40_MODEL_CONFIG_H
#define M40_MODEL_CONFIG_H

#include <stdint.h>

typedef enum m40_arch {
    M40_ARCH_LLAMA = 0,
    M40_ARCH_QWEN2 = 1,
    M40_ARCH_QWEN3 = 2,
    M40_ARCH_GEMMA3 = 3,
    M40_ARCH_GEMMA2 = 4,
    M40_ARCH_QWEN3MOE = 5,
    M40_ARCH_PHI3 = 6,
} m40_arch;

/* The MLP gate's activation: silu(gate) * up, or gelu(gate) * up with
 * GELU's tanh form (PyTorch's gelu "tanh", GGML's ggml_gelu). */
typedef enum m40_ffn_act {
    M40_ACT_SILU = 0,
    M40_ACT_GELU_TANH = 1,
} m40_ffn_act;

/* Which elements RoPE rotates together in a head of `rope_dim` dims:
 * NORM pairs (2i, 2i+1) (GGML's mode 0, used by llama GGUFs, whose Q/K rows
 * the converter permuted for it); NEOX pairs (i, i + rope_dim/2) (mode 2). */
typedef enum m40_rope_style {
    M40_ROPE_NORM = 0,
    M40_ROPE_NEOX = 2,
} m40_rope_style;

typedef struct m40_model_config {
    m40_arch arch;
    int32_t n_layer;       /* transformer blocks */
    int32_t n_embd;        /* d: residual stream width */
    int32_t n_ff;          /* MLP hidden width */
    int32_t n_head;        /* query heads */
    int32_t n_head_kv;     /* key/value heads (GQA when < n_head) */
    int32_t head_dim;      /* n_embd / n_head unless the file says otherwise */
    int32_t n_vocab;       /* rows of the embedding matrix */
    int32_t n_ctx_train;   /* context length the model was trained for */
    float rms_eps;         /* RMSNorm epsilon */
    float rope_freq_base;  /* theta base, e.g. 10000, 500000 */
    float rope_freq_scale; /* linear scaling: positions multiplied by this (1 = none) */
    /* Long-context RoPE: YaRN (rope.scaling.type "yarn"; rope_freq_scale is
     * 1 / factor) with the ramp's turn counts, or phi3's LongRoPE (per-dim
     * factors, long past the original context, short within it); both scale
     * cos and sin by rope_mscale */
    int32_t rope_yarn, rope_longrope;
    float rope_orig_ctx, yarn_beta_fast, yarn_beta_slow, rope_mscale;
    int32_t rope_dim; /* dims of each head that RoPE rotates (usually head_dim) */
    m40_rope_style rope_style;
    int32_t has_qkv_bias;    /* qwen2 */
    int32_t has_qk_norm;     /* qwen3: per-head RMSNorm of q and k */
    int32_t tied_embeddings; /* output projection is token_embd */
    float embd_scale;        /* token embeddings are multiplied by this (gemma: sqrt(d)) */
    float attn_scale;        /* scores are q.k times this: 1/sqrt(head_dim) but where noted */
    m40_ffn_act ffn_act;     /* the gate's activation */
    int32_t has_post_norms;  /* gemma: RMSNorm of attention and MLP outputs, before the add */
    int32_t swa_window;      /* sliding layers see the last swa_window positions (0: none) */
    int32_t swa_period;      /* layer l is global when (l + 1) % swa_period == 0 */
    /* gemma: the sliding layers' own RoPE, base rope_freq_base_swa,
     * unscaled, without YaRN or LongRoPE (swa_own_rope); other models'
     * sliding layers (phi3) rotate as their global ones do */
    int32_t swa_own_rope;
    float rope_freq_base_swa;
    float attn_softcap;    /* scores become c tanh(s / c) before the softmax (0: none) */
    float final_softcap;   /* logits become c tanh(l / c) (0: none) */
    int32_t n_expert;      /* MoE: experts per layer (0: a dense MLP) */
    int32_t n_expert_used; /* MoE: experts each token runs */
    int32_t n_ff_exp;      /* MoE: each expert's hidden width */
    int32_t fused_proj;    /* phi3: attn_qkv holds q, k, v and ffn_up gate, up (stacked rows) */
} m40_model_config;

/* Whether layer l attends over a sliding window (else over everything). */
static inline int m40_layer_is_swa(const m40_model_config *c, int l) {
    return c->swa_window > 0 && (c->swa_period <= 0 || (l + 1) % c->swa_period != 0);
}

/* Whether layer l rotates with the sliding layers' own RoPE (gemma). */
static inline int m40_layer_own_rope(const m40_model_config *c, int l) {
    return c->swa_own_rope && m40_layer_is_swa(c, l);
}

/* The architecture's name as GGUF spells it ("llama", "qwen2", "qwen3",
 * "gemma3"). */
const char *m40_arch_name(m40_arch arch);

#endif /* M40_MODEL_CONFIG_H */
