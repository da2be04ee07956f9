/* cmd_info.c - `m40-llm info`: what this binary is and what it can use.
 *
 *   m40-llm info [MODEL.gguf] [--device auto|cpu|cuda] [--gpu N] [-c N] [--cache-type T]
 *
 * Prints the build facts, every CUDA device with its compute capability and
 * VRAM, which device would be used and whether cuBLAS is. With
 * --device cuda, CUDA being unusable is an error (exit 1, one line on
 * stderr saying why); otherwise it is reported and info succeeds.
 * With a model: its architecture, parameters, weight types, size,
 * tokenizer, chat template, whether m40-llm can run it (naming what it
 * cannot: then info fails, after printing the rest), and for one it can,
 * the context and the VRAM it needs against each GPU's free memory. Only
 * the file's header is read (it is mapped, not loaded).
 */
#include <stdio.h>
#include <string.h>

#include "backend/backend.h"
#include "buildinfo.h"
#include "cli/cli.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "quant/ggml_types.h"

static void info_usage(FILE *out) {
    fprintf(out, "usage: m40-llm info [MODEL.gguf] [options]\n"
                 "  MODEL         also describe this model and the VRAM it needs\n"
                 "  --device cuda  fail (exit 1) when no usable CUDA device exists\n"
                 "  --device cpu   skip probing CUDA\n"
                 "  --gpu N        use CUDA device N instead of choosing automatically\n"
                 "  -c, --ctx-size N, --cache-type[-k|-v] T, -b N: the VRAM estimate's context\n"
                 "                 (default: min(trained, 4096); 0: trained), KV type and\n"
                 "                 prompt chunk\n");
}

static double gib(size_t bytes) {
    return (double)bytes / (1024.0 * 1024.0 * 1024.0);
}

/* Prints what the probe learnt (as far as it got). */
static void print_gpus(const m40_gpu_report *r) {
    if (r->driver_version > 0)
        printf("CUDA driver: %d.%d\n", r->driver_version / 1000, (r->driver_version % 1000) / 10);
    if (r->n_gpus < 0)
        return;
    printf("CUDA devices: %d\n", r->n_gpus);
    for (int i = 0; i < r->n_gpus; i++) {
        const m40_gpu_summary *g = &r->gpus[i];
        printf("  GPU %d: %s, cc %d.%d (sm_%d%d), %d SMs, VRAM %.1f GiB free / %.1f GiB total%s\n",
               g->ordinal, g->name, g->cc_major, g->cc_minor, g->cc_major, g->cc_minor, g->sm_count,
               gib(g->vram_free), gib(g->vram_total),
               g->supported ? "" : " (unsupported: needs cc >= 5.2)");
    }
    if (r->selected < 0)
        return;
    printf("selected: GPU %d (%s), kernels loaded\n", r->gpus[r->selected].ordinal,
           r->gpus[r->selected].name);
    printf("cuBLAS: %s (%s)\n", r->cublas_on ? "loaded" : "off", r->cublas);
}

/* "q4_0 x 224, q6_K x 1, f32 x 65" */
static void print_type_counts(const m40_gguf *g) {
    size_t counts[M40_GGML_TYPE_COUNT] = {0};
    for (size_t i = 0; i < m40_gguf_tensor_count(g); i++)
        counts[m40_gguf_tensor_at(g, i)->type]++;
    const char *sep = "";
    printf("  weight types: ");
    for (uint32_t t = 0; t < M40_GGML_TYPE_COUNT; t++) {
        if (counts[t]) {
            printf("%s%s x %zu", sep, m40_ggml_type_name(t), counts[t]);
            sep = ", ";
        }
    }
    printf("\n");
}

static void print_tokenizer(const m40_gguf *g) {
    m40_gguf_str kind = {"none", 4};
    m40_gguf_value tokens = {0};
    if (m40_gguf_find_kv(g, "tokenizer.ggml.model") >= 0)
        m40_gguf_get_str(g, "tokenizer.ggml.model", &kind, NULL);
    if (m40_gguf_find_kv(g, "tokenizer.ggml.tokens") >= 0)
        m40_gguf_get_array(g, "tokenizer.ggml.tokens", M40_GGUF_STRING, &tokens, NULL);
    const char *family = m40_gguf_str_eq(kind, "llama")  ? " (SentencePiece)"
                         : m40_gguf_str_eq(kind, "gpt2") ? " (byte-level BPE)"
                                                         : "";
    printf("  tokenizer: %.*s%s, %llu tokens\n", (int)kind.len, kind.ptr, family,
           (unsigned long long)tokens.count);
    printf("  chat template: %s\n",
           m40_gguf_find_kv(g, "tokenizer.chat_template") >= 0 ? "present" : "absent");
}

/* What the header says, whatever m40-llm can run: the architecture's
 * name, parameters, size, weight types, tokenizer, chat template. */
static void print_header(const char *path, const m40_gguf *g) {
    m40_gguf_str arch = {"(none)", 6};
    if (m40_gguf_find_kv(g, "general.architecture") >= 0)
        m40_gguf_get_str(g, "general.architecture", &arch, NULL);
    uint64_t n_params = 0;
    for (size_t i = 0; i < m40_gguf_tensor_count(g); i++)
        n_params += m40_gguf_tensor_at(g, i)->n_elems;
    printf("model: %s\n", path);
    printf("  architecture: %.*s\n", (int)(arch.len > 64 ? 64 : arch.len), arch.ptr);
    printf("  parameters: %.2f B (%.0f M)\n", (double)n_params / 1e9, (double)n_params / 1e6);
    printf("  file size: %.2f GiB (%llu bytes)\n", gib((size_t)m40_gguf_file_size(g)),
           (unsigned long long)m40_gguf_file_size(g));
    print_type_counts(g);
    print_tokenizer(g);
}

/* What the loaded model's config says, and the VRAM it needs. */
static void print_config(const m40_model *m, const m40_backend_options *bo,
                         const m40_gpu_report *r) {
    const m40_model_config *c = &m->cfg;
    m40_backend_options opts = *bo;
    if (opts.n_ctx == M40_CTX_TRAINED)
        opts.n_ctx = c->n_ctx_train;
    else if (opts.n_ctx <= 0)
        opts.n_ctx = c->n_ctx_train < 4096 ? c->n_ctx_train : 4096;
    if (opts.n_batch <= 0)
        opts.n_batch = 512;
    opts.n_slots = 1;
    printf("  details: %s RoPE%s%s%s%s", c->rope_style == M40_ROPE_NEOX ? "NeoX" : "normal",
           c->has_qkv_bias  ? ", QKV biases"
           : c->has_qk_norm ? ", q/k head norms"
                            : "",
           c->tied_embeddings ? ", tied embeddings" : "", c->has_post_norms ? ", post-norms" : "",
           c->ffn_act == M40_ACT_GELU_TANH ? ", GELU" : "");
    if (c->swa_window > 0 && c->swa_period > 0)
        printf(", sliding window %d (one layer in %d global)", c->swa_window, c->swa_period);
    else if (c->swa_window > 0)
        printf(", sliding window %d on every layer", c->swa_window);
    if (c->fused_proj)
        printf(", fused q/k/v and gate/up");
    if (c->n_expert > 0)
        printf(", %d experts of width %d, %d per token", c->n_expert, c->n_ff_exp,
               c->n_expert_used);
    if (c->attn_softcap > 0.0f || c->final_softcap > 0.0f)
        printf(", soft-caps %g / %g", (double)c->attn_softcap, (double)c->final_softcap);
    printf("\n");
    printf("  layers %d, d %d, ffn %d, heads %d (KV %d), head dim %d, vocab %d\n", c->n_layer,
           c->n_embd, c->n_ff, c->n_head, c->n_head_kv, c->head_dim, c->n_vocab);
    printf("  context length: %d (trained), RoPE base %g", c->n_ctx_train,
           (double)c->rope_freq_base);
    if (c->rope_yarn)
        printf(", YaRN x%g over %g", 1.0 / (double)c->rope_freq_scale, (double)c->rope_orig_ctx);
    else if (c->rope_longrope)
        printf(", LongRoPE over %g (attention factor %g)", (double)c->rope_orig_ctx,
               (double)c->rope_mscale);
    else if (c->rope_freq_scale != 1.0f)
        printf(", linear scaling x%g", 1.0 / (double)c->rope_freq_scale);
    printf("\n");
    m40_backend_memory v = m40_backend_plan_vram(m, &opts);
    char kv_label[32];
    m40_cli_kv_label(&opts, kv_label, sizeof kv_label);
    size_t need = v.weights + v.kv + v.scratch;
    printf("  VRAM needed at context %d: %.2f GiB (weights %.2f, KV %.2f %s, scratch %.2f)\n",
           opts.n_ctx, gib(need), gib(v.weights), gib(v.kv), kv_label, gib(v.scratch));
    for (int i = 0; i < r->n_gpus; i++) {
        size_t free_b = r->gpus[i].vram_free;
        printf("    GPU %d %s: %.1f GiB free: %s", r->gpus[i].ordinal, r->gpus[i].name, gib(free_b),
               need <= free_b ? "fits" : "does not fit");
        int32_t fit = need <= free_b ? opts.n_ctx : m40_backend_fit_ctx(m, &opts, free_b);
        if (fit < opts.n_ctx)
            printf(fit > 0 ? "; the largest context that fits: %d" : "; not even context %d",
                   fit > 0 ? fit : 256);
        printf("\n");
    }
}

/* The header, whether m40-llm can run the file (`supported:`), and when it
 * can, the config and VRAM. A file it cannot run is an error after that
 * line, naming what is not supported. */
static int print_model(const char *path, const m40_backend_options *bo, const m40_gpu_report *r,
                       m40_err *err) {
    m40_gguf *g = NULL;
    m40_model *m = NULL;
    if (m40_gguf_open(&g, path, err))
        return -1;
    print_header(path, g);
    int rc = m40_model_check_support(g, err);
    printf("  supported: %s%s\n", rc ? "no: " : "yes", rc ? err->msg : "");
    if (rc == 0)
        rc = m40_model_from_gguf(&m, g, err);
    if (rc == 0)
        print_config(m, bo, r);
    m40_model_free(m);
    m40_gguf_close(g);
    return rc ? m40_err_wrap(err, "%s", path) : 0;
}

int m40_cmd_info(int argc, char **argv) {
    m40_backend_options bo = {.device = M40_DEVICE_AUTO, .gpu = -1};
    const char *model = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            info_usage(stdout);
            return M40_EXIT_OK;
        }
        int r = i + 1 < argc ? m40_cli_backend_flag(&bo, a, argv[i + 1]) : 0;
        if (r < 0)
            return M40_EXIT_USAGE;
        if (r > 0) {
            i++;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc) {
            model = m40_cli_resolve_model(argv[++i]);
        } else if (a[0] != '-' && !model) {
            model = m40_cli_resolve_model(a);
        } else {
            m40_cli_error("info: unknown or incomplete option \"%s\"", a);
            info_usage(stderr);
            return M40_EXIT_USAGE;
        }
    }

    printf("m40-llm %s (git %s)\n", m40_version, m40_git_hash);
    printf("kernels: %s\n", m40_kernels_targets);
    m40_gpu_report gpus = {.n_gpus = -1, .selected = -1};
    int cuda_ok = 1;
    m40_err err = {0};
    if (bo.device == M40_DEVICE_CPU) {
        printf("CUDA: not probed (--device cpu)\n");
    } else {
        cuda_ok = m40_backend_probe_gpus(bo.gpu, &gpus, &err) == 0;
        print_gpus(&gpus);
        if (!cuda_ok)
            printf("CUDA: unusable: %s\n", err.msg);
    }
    m40_err model_err = {0};
    if (model && print_model(model, &bo, &gpus, &model_err)) {
        m40_cli_error("%s", model_err.msg);
        return M40_EXIT_FAIL;
    }
    if (!cuda_ok && bo.device == M40_DEVICE_CUDA) {
        m40_cli_error("CUDA requested but unusable: %s", err.msg);
        return M40_EXIT_FAIL;
    }
    return M40_EXIT_OK;
}
