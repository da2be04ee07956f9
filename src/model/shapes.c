/* shapes.c - see shapes.h. Numbers are the published configs of each model
 * (their config.json / GGUF metadata). */
#include "model/shapes.h"

#include <string.h>

#define LLAMA(layers, d, ff, heads, kv_heads, vocab, ctx, base, eps, tied)                      \
    {                                                                                           \
        .arch = M40_ARCH_LLAMA, .n_layer = layers, .n_embd = d, .n_ff = ff, .n_head = heads,    \
        .n_head_kv = kv_heads, .head_dim = (d) / (heads), .n_vocab = vocab, .n_ctx_train = ctx, \
        .rms_eps = eps, .rope_freq_base = base, .rope_freq_scale = 1.0f,                        \
        .rope_dim = (d) / (heads), .rope_style = M40_ROPE_NORM, .tied_embeddings = tied         \
    }

/* Mixtral: llama whose MLPs are `experts` experts as wide as ff, `used` of
 * them per token. */
#define MIXTRAL(layers, d, ff, heads, kv_heads, vocab, ctx, base, experts, used)                \
    {                                                                                           \
        .arch = M40_ARCH_LLAMA, .n_layer = layers, .n_embd = d, .n_ff = ff, .n_head = heads,    \
        .n_head_kv = kv_heads, .head_dim = (d) / (heads), .n_vocab = vocab, .n_ctx_train = ctx, \
        .rms_eps = 1e-5f, .rope_freq_base = base, .rope_freq_scale = 1.0f,                      \
        .rope_dim = (d) / (heads), .rope_style = M40_ROPE_NORM, .n_expert = experts,            \
        .n_expert_used = used, .n_ff_exp = ff                                                   \
    }

/* Phi-3 / Phi-4: NeoX RoPE, q/k/v and gate/up in fused matrices, untied
 * output. */
#define PHI3(layers, d, ff, heads, kv_heads, vocab, ctx, base)                                  \
    {                                                                                           \
        .arch = M40_ARCH_PHI3, .n_layer = layers, .n_embd = d, .n_ff = ff, .n_head = heads,     \
        .n_head_kv = kv_heads, .head_dim = (d) / (heads), .n_vocab = vocab, .n_ctx_train = ctx, \
        .rms_eps = 1e-5f, .rope_freq_base = base, .rope_freq_scale = 1.0f,                      \
        .rope_dim = (d) / (heads), .rope_style = M40_ROPE_NEOX, .fused_proj = 1                 \
    }

/* Qwen2 and Qwen3: NeoX RoPE, rms_eps 1e-6; qwen2 has Q/K/V biases, qwen3
 * per-head q/k norms (and heads that may be wider than d / n_head). */
#define QWEN(a, layers, d, ff, heads, kv_heads, hd, vocab, ctx, tied)                            \
    {                                                                                            \
        .arch = a, .n_layer = layers, .n_embd = d, .n_ff = ff, .n_head = heads,                  \
        .n_head_kv = kv_heads, .head_dim = hd, .n_vocab = vocab, .n_ctx_train = ctx,             \
        .rms_eps = 1e-6f, .rope_freq_base = 1000000.0f, .rope_freq_scale = 1.0f, .rope_dim = hd, \
        .rope_style = M40_ROPE_NEOX, .has_qkv_bias = (a) == M40_ARCH_QWEN2,                      \
        .has_qk_norm = (a) == M40_ARCH_QWEN3, .tied_embeddings = tied                            \
    }

/* Gemma 3 (text): qwen3's head norms and NeoX RoPE (base 1e6 on the global
 * layers, times `scale`: the 4B-27B models' linear factor 8 is 0.125; 10000
 * on the sliding ones), rms_eps 1e-6, tied embeddings, and the fields
 * read_gemma3 (model.c) sets from the family's rules. */
#define GEMMA3(layers, d, ff, heads, kv_heads, hd, vocab, ctx, window, scale)                     \
    {                                                                                             \
        .arch = M40_ARCH_GEMMA3, .n_layer = layers, .n_embd = d, .n_ff = ff, .n_head = heads,     \
        .n_head_kv = kv_heads, .head_dim = hd, .n_vocab = vocab, .n_ctx_train = ctx,              \
        .rms_eps = 1e-6f, .rope_freq_base = 1000000.0f, .rope_freq_scale = scale, .rope_dim = hd, \
        .rope_style = M40_ROPE_NEOX, .has_qk_norm = 1, .tied_embeddings = 1, .has_post_norms = 1, \
        .ffn_act = M40_ACT_GELU_TANH, .swa_window = window, .swa_period = 6,                      \
        .rope_freq_base_swa = 10000.0f                                                            \
    }

/* Gemma 2: Gemma 3's layout without the head norms, every other layer
 * sliding (one RoPE base), scores and logits soft-capped (the real models:
 * at 50 and 30). */
#define GEMMA2(layers, d, ff, heads, kv_heads, hd, vocab, ctx, window, acap, fcap)             \
    {                                                                                          \
        .arch = M40_ARCH_GEMMA2, .n_layer = layers, .n_embd = d, .n_ff = ff, .n_head = heads,  \
        .n_head_kv = kv_heads, .head_dim = hd, .n_vocab = vocab, .n_ctx_train = ctx,           \
        .rms_eps = 1e-6f, .rope_freq_base = 10000.0f, .rope_freq_scale = 1.0f, .rope_dim = hd, \
        .rope_style = M40_ROPE_NEOX, .tied_embeddings = 1, .has_post_norms = 1,                \
        .ffn_act = M40_ACT_GELU_TANH, .swa_window = window, .swa_period = 2,                   \
        .rope_freq_base_swa = 10000.0f, .attn_softcap = acap, .final_softcap = fcap            \
    }

/* mini-phi3 with LongRoPE: factors for an original context of 64 and the
 * attention factor sqrt(1 + ln(1024 / 64) / ln 64), as Phi-3's converter
 * writes it; `window` as the 128k files' (0: none). */
#define MINI_PHI3_LONGROPE(window)                                                                \
    {                                                                                             \
        .arch = M40_ARCH_PHI3, .n_layer = 2, .n_embd = 256, .n_ff = 512, .n_head = 4,             \
        .n_head_kv = 2, .head_dim = 64, .n_vocab = 0, .n_ctx_train = 1024, .rms_eps = 1e-5f,      \
        .rope_freq_base = 10000.0f, .rope_freq_scale = 1.0f, .rope_dim = 64,                      \
        .rope_style = M40_ROPE_NEOX, .fused_proj = 1, .rope_longrope = 1, .rope_orig_ctx = 64.0f, \
        .rope_mscale = 1.2909944f, .swa_window = window                                           \
    }

/* Qwen3-MoE: qwen3 with every MLP a mixture of `experts` experts of width
 * ff_exp, `used` of them per token. */
#define QWEN3MOE(layers, d, ff, heads, kv_heads, hd, vocab, ctx, experts, used, ff_exp)            \
    {                                                                                              \
        .arch = M40_ARCH_QWEN3MOE, .n_layer = layers, .n_embd = d, .n_ff = ff, .n_head = heads,    \
        .n_head_kv = kv_heads, .head_dim = hd, .n_vocab = vocab, .n_ctx_train = ctx,               \
        .rms_eps = 1e-6f, .rope_freq_base = 1000000.0f, .rope_freq_scale = 1.0f, .rope_dim = hd,   \
        .rope_style = M40_ROPE_NEOX, .has_qk_norm = 1, .n_expert = experts, .n_expert_used = used, \
        .n_ff_exp = ff_exp                                                                         \
    }

static const m40_shape k_shapes[] = {
    {"tiny", "2 layers, d=64, 4 heads over 2 KV heads: for tests",
     LLAMA(2, 64, 128, 4, 2, 0, 512, 10000.0f, 1e-5f, 0)},
    {"mini", "2 layers, d=256 (rows fit K-quant blocks), GQA 4/2: for tests",
     LLAMA(2, 256, 512, 4, 2, 0, 1024, 10000.0f, 1e-5f, 0)},
    {"mini-qwen2", "mini with Qwen2's NeoX RoPE and QKV biases: for tests",
     QWEN(M40_ARCH_QWEN2, 2, 256, 512, 4, 2, 64, 0, 1024, 1)},
    {"mini-qwen3",
     "mini with Qwen3's per-head q/k RMSNorm, NeoX RoPE, heads wider than d / n_head: for tests",
     QWEN(M40_ARCH_QWEN3, 2, 256, 512, 4, 2, 128, 0, 1024, 1)},
    {"mini-qwen3-yarn",
     "mini-qwen3 with YaRN RoPE scaling (factor 4 over an original context of 64): for tests",
     {.arch = M40_ARCH_QWEN3,
      .n_layer = 2,
      .n_embd = 256,
      .n_ff = 512,
      .n_head = 4,
      .n_head_kv = 2,
      .head_dim = 128,
      .n_vocab = 0,
      .n_ctx_train = 1024,
      .rms_eps = 1e-6f,
      .rope_freq_base = 10000.0f,
      .rope_freq_scale = 0.25f,
      .rope_dim = 128,
      .rope_style = M40_ROPE_NEOX,
      .has_qk_norm = 1,
      .rope_yarn = 1,
      .rope_orig_ctx = 64.0f}},
    {"mini-gemma3",
     "6 layers (5 sliding, window 6, then a global one), d=256, 2 heads of 256 over 1 KV "
     "head: Gemma 3's layout for tests",
     GEMMA3(6, 256, 512, 2, 1, 256, 0, 1024, 6, 1.0f)},
    {"mini-gemma3-scaled",
     "mini-gemma3 with the larger models' linear RoPE scaling (factor 8 on the global "
     "layers): for tests",
     GEMMA3(6, 256, 512, 2, 1, 256, 0, 1024, 6, 0.125f)},
    {"mini-qwen3moe", "mini-qwen3 with a mixture of 8 experts of width 128, 2 per token: for tests",
     QWEN3MOE(2, 256, 512, 4, 2, 128, 0, 1024, 8, 2, 128)},
    {"mini-mixtral",
     "mini with a mixture of 4 experts of width 128, 2 per token (Mixtral's layout): "
     "for tests",
     MIXTRAL(2, 256, 128, 4, 2, 0, 1024, 10000.0f, 4, 2)},
    {"mini-phi3", "mini with Phi-3's fused attn_qkv and gate/up and NeoX RoPE: for tests",
     PHI3(2, 256, 512, 4, 2, 0, 1024, 10000.0f)},
    {"mini-phi3-longrope",
     "mini-phi3 with LongRoPE factors (original context 64, attention factor 1.29): for tests",
     MINI_PHI3_LONGROPE(0)},
    {"mini-phi3-longrope-swa",
     "mini-phi3-longrope with the 128k files' sliding window (262144: longer than any "
     "test's context, so the same text as without it): for tests",
     MINI_PHI3_LONGROPE(1 << 18)},
    {"mini-gemma2",
     "4 layers (sliding and global in turn, window 6), d=256, 2 heads of 256 over 1 KV head, "
     "scores and logits soft-capped at 0.05 and 0.5 (so the caps bite on random weights): "
     "Gemma 2's layout for tests",
     GEMMA2(4, 256, 512, 2, 1, 256, 0, 1024, 6, 0.05f, 0.5f)},
    {"smollm2-135m", "SmolLM2-135M (tied embeddings)",
     LLAMA(30, 576, 1536, 9, 3, 49152, 8192, 100000.0f, 1e-5f, 1)},
    {"llama3.2-1b", "Llama-3.2-1B shape with an untied output (as anchors.md)",
     LLAMA(16, 2048, 8192, 32, 8, 128256, 131072, 500000.0f, 1e-5f, 0)},
    {"llama2-7b", "Llama-2-7B", LLAMA(32, 4096, 11008, 32, 32, 32000, 4096, 10000.0f, 1e-5f, 0)},
    {"llama3-8b", "Llama-3-8B", LLAMA(32, 4096, 14336, 32, 8, 128256, 8192, 500000.0f, 1e-5f, 0)},
    {"mistral-7b", "Mistral-7B-v0.2",
     LLAMA(32, 4096, 14336, 32, 8, 32000, 32768, 1000000.0f, 1e-5f, 0)},
    {"qwen2.5-0.5b", "Qwen2.5-0.5B (NeoX RoPE, QKV biases, tied embeddings)",
     QWEN(M40_ARCH_QWEN2, 24, 896, 4864, 14, 2, 64, 151936, 32768, 1)},
    {"qwen3-8b", "Qwen3-8B (per-head q/k RMSNorm, NeoX RoPE, GQA 32/8)",
     QWEN(M40_ARCH_QWEN3, 36, 4096, 12288, 32, 8, 128, 151936, 40960, 0)},
    {"qwen3moe-30b-a3b", "Qwen3-30B-A3B (128 experts of 768, 8 per token; 3B active)",
     QWEN3MOE(48, 2048, 6144, 32, 4, 128, 151936, 40960, 128, 8, 768)},
    {"mixtral-8x7b", "Mixtral-8x7B (8 experts of 14336, 2 per token; 13B active)",
     MIXTRAL(32, 4096, 14336, 32, 8, 32000, 32768, 1000000.0f, 8, 2)},
    {"phi4", "Phi-4 (14B; GQA 40/10)", PHI3(40, 5120, 17920, 40, 10, 100352, 16384, 250000.0f)},
    {"gemma2-9b", "Gemma 2 9B (window 4096 on every other layer)",
     GEMMA2(42, 3584, 14336, 16, 8, 256, 256000, 8192, 4096, 50.0f, 30.0f)},
    {"gemma3-270m", "Gemma 3 270M (text; window 512 on 5 layers of 6)",
     GEMMA3(18, 640, 2048, 4, 1, 256, 262144, 32768, 512, 1.0f)},
    {"gemma3-12b", "Gemma 3 12B (text; window 1024 on 5 layers of 6, linear RoPE x8 on the rest)",
     GEMMA3(48, 3840, 15360, 16, 8, 256, 262144, 131072, 1024, 0.125f)},
};

const m40_shape *m40_shape_find(const char *name) {
    for (size_t i = 0; i < sizeof k_shapes / sizeof k_shapes[0]; i++) {
        if (!strcmp(k_shapes[i].name, name))
            return &k_shapes[i];
    }
    return NULL;
}

const m40_shape *m40_shapes(int *count) {
    *count = (int)(sizeof k_shapes / sizeof k_shapes[0]);
    return k_shapes;
}
