/* cmd_info.c - `m40-llm info`: what this binary is and what it can use.
 *
 *   m40-llm info [MODEL.gguf] [--device auto|cpu|cuda] [--gpu N] [--ctx-size N]
 *
 * Prints the build facts, every CUDA device with its compute capability and
 * VRAM, which device would be used and whether cuBLAS is. With
 * --device cuda, CUDA being unusable is an error (exit 1, one line on
 * stderr saying why); otherwise it is reported and info succeeds.
 * With a model: its architecture, parameters, weight types, size, context,
 * tokenizer, chat template, and the VRAM it needs against each GPU's free
 * memory. Only the file's header is read (it is mapped, not loaded).
 */
#include <stdio.h>
#include <string.h>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/gpu.h"
#include "buildinfo.h"
#include "cli/cli.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "quant/ggml_types.h"

static void info_usage(FILE *out) {
    fprintf(out, "usage: m40-llm info [MODEL.gguf] [--device auto|cpu|cuda] [--gpu N] "
                 "[--ctx-size N]\n"
                 "  MODEL         also describe this model and the VRAM it needs\n"
                 "  --ctx-size N  context for the VRAM estimate (default: min(train, 4096))\n"
                 "  --device cuda  fail (exit 1) when no usable CUDA device exists\n"
                 "  --device cpu   skip probing CUDA\n"
                 "  --gpu N        use CUDA device N instead of choosing automatically\n");
}

static double gib(size_t bytes) {
    return (double)bytes / (1024.0 * 1024.0 * 1024.0);
}

static void print_driver_version(int v) {
    printf("CUDA driver: %d.%d\n", v / 1000, (v % 1000) / 10);
}

/* Lists devices; returns the count or -1 (err set). */
static int print_devices(const m40_cuda_driver *drv, m40_gpu_info *devs, m40_err *err) {
    int n = m40_cuda_list_devices(drv, devs, M40_GPU_MAX, 1, err);
    if (n < 0)
        return -1;
    printf("CUDA devices: %d\n", n);
    for (int i = 0; i < n; i++) {
        const m40_gpu_info *g = &devs[i];
        printf("  GPU %d: %s, cc %d.%d (sm_%d%d), %d SMs, VRAM %.1f GiB free / %.1f GiB total%s\n",
               g->ordinal, g->name, g->cc_major, g->cc_minor, g->cc_major, g->cc_minor, g->sm_count,
               gib(g->vram_free), gib(g->vram_total),
               m40_gpu_is_supported(g) ? "" : " (unsupported: needs cc >= 5.2)");
    }
    return n;
}

/* Opens the chosen device as generate would, to prove the kernels load and
 * to report cuBLAS. Returns 0 or -1 with err set. */
static int print_selected(int gpu_ordinal, m40_err *err) {
    m40_gpu_options opts = {.gpu = gpu_ordinal, .cublas = M40_CUBLAS_AUTO};
    if (m40_cublas_policy_from_env(&opts.cublas, err))
        return -1;
    m40_gpu gpu;
    if (m40_gpu_open(&gpu, &opts, err))
        return -1;
    printf("selected: GPU %d (%s), kernels loaded\n", gpu.info.ordinal, gpu.info.name);
    if (m40_cublas_active(&gpu.blas))
        printf("cuBLAS: loaded (%s, version %d)\n", gpu.blas.libname, gpu.blas.version);
    else
        printf("cuBLAS: off (%s)\n", gpu.blas.why_off);
    m40_gpu_close(&gpu);
    return 0;
}

static int probe_cuda(int gpu_ordinal, m40_gpu_info *devs, int *n_devs, m40_err *err) {
    const m40_cuda_driver *drv = m40_cuda_driver_get(err);
    if (!drv)
        return -1;
    print_driver_version(drv->driver_version);
    *n_devs = print_devices(drv, devs, err);
    if (*n_devs < 0)
        return -1;
    return print_selected(gpu_ordinal, err);
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

static int print_model(const char *path, int n_ctx, const m40_gpu_info *devs, int n_devs,
                       m40_err *err) {
    m40_model *m;
    if (m40_model_load(&m, path, err))
        return -1;
    const m40_model_config *c = &m->cfg;
    if (n_ctx <= 0)
        n_ctx = c->n_ctx_train < 4096 ? c->n_ctx_train : 4096;
    printf("model: %s\n", path);
    printf("  architecture: %s (%s RoPE%s%s)\n", m40_arch_name(c->arch),
           c->rope_style == M40_ROPE_NEOX ? "NeoX" : "normal",
           c->has_qkv_bias ? ", QKV biases" : "", c->tied_embeddings ? ", tied embeddings" : "");
    printf("  parameters: %.2f B (%.0f M)\n", (double)m->n_params / 1e9, (double)m->n_params / 1e6);
    printf("  file size: %.2f GiB (%llu bytes)\n", gib((size_t)m->file_bytes),
           (unsigned long long)m->file_bytes);
    printf("  layers %d, d %d, ffn %d, heads %d (KV %d), head dim %d, vocab %d\n", c->n_layer,
           c->n_embd, c->n_ff, c->n_head, c->n_head_kv, c->head_dim, c->n_vocab);
    printf("  context length: %d (trained), RoPE base %g\n", c->n_ctx_train,
           (double)c->rope_freq_base);
    print_type_counts(m->gguf);
    print_tokenizer(m->gguf);
    m40_backend_options opts = {.n_ctx = n_ctx, .n_slots = 1, .n_batch = 512};
    m40_cuda_vram v = m40_cuda_vram_plan(m, &opts);
    size_t need = v.weights + v.kv + v.scratch;
    printf("  VRAM needed at context %d: %.2f GiB (weights %.2f, KV %.2f FP16, scratch %.2f)\n",
           n_ctx, gib(need), gib(v.weights), gib(v.kv), gib(v.scratch));
    for (int i = 0; i < n_devs; i++)
        printf("    GPU %d %s: %.1f GiB free: %s\n", devs[i].ordinal, devs[i].name,
               gib(devs[i].vram_free), need <= devs[i].vram_free ? "fits" : "does not fit");
    m40_model_free(m);
    return 0;
}

int m40_cmd_info(int argc, char **argv) {
    m40_device_kind device = M40_DEVICE_AUTO;
    int gpu_ordinal = -1, n_ctx = 0;
    const char *model = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            info_usage(stdout);
            return M40_EXIT_OK;
        } else if (!strcmp(a, "--device") && i + 1 < argc) {
            if (m40_cli_parse_device(argv[++i], &device))
                return M40_EXIT_USAGE;
        } else if (!strcmp(a, "--gpu") && i + 1 < argc) {
            if (m40_cli_parse_int("--gpu", argv[++i], &gpu_ordinal))
                return M40_EXIT_USAGE;
        } else if ((!strcmp(a, "--ctx-size") || !strcmp(a, "-c")) && i + 1 < argc) {
            if (m40_cli_parse_int("--ctx-size", argv[++i], &n_ctx))
                return M40_EXIT_USAGE;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc) {
            model = argv[++i];
        } else if (a[0] != '-' && !model) {
            model = a;
        } else {
            m40_cli_error("info: unknown or incomplete option \"%s\"", a);
            info_usage(stderr);
            return M40_EXIT_USAGE;
        }
    }

    printf("m40-llm %s (git %s)\n", m40_version, m40_git_hash);
    printf("kernels: %s\n", m40_kernels_targets);
    m40_gpu_info devs[M40_GPU_MAX];
    int n_devs = 0, cuda_ok = 1;
    m40_err err = {0};
    if (device == M40_DEVICE_CPU) {
        printf("CUDA: not probed (--device cpu)\n");
    } else if (probe_cuda(gpu_ordinal, devs, &n_devs, &err) != 0) {
        printf("CUDA: unusable: %s\n", err.msg);
        cuda_ok = 0;
        if (n_devs < 0)
            n_devs = 0;
    }
    if (model && print_model(model, n_ctx, devs, n_devs, &err)) {
        m40_cli_error("%s", err.msg);
        return M40_EXIT_FAIL;
    }
    if (!cuda_ok && device == M40_DEVICE_CUDA) {
        m40_cli_error("CUDA requested but unusable: %s", err.msg);
        return M40_EXIT_FAIL;
    }
    return M40_EXIT_OK;
}
