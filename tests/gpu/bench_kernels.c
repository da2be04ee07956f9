/* bench_kernels.c - kernel microbenchmarks for the GPU bundle.
 *
 *   bench_kernels [--quick | --batch | --attn | --tile]
 *
 * Prints markdown tables (docs/performance.md keeps the results):
 *  - the device's copy bandwidth (device to device), the yardstick for
 *    every memory-bound kernel below;
 *  - batched decode mat-vec (2 to 8 inputs) against one product per
 *    input (--batch: only this and the copy bandwidth);
 *  - decode mat-vec per weight type, kernel variant (rows per block) and
 *    Llama-2-7B / 1B-class matrix shape, in GB/s of weights read;
 *  - attention decode by context length, head layout, cache type and
 *    split length (--attn: only this and the copy bandwidth);
 *  - prompt attention (the tiled kernel and its combine step) of a
 *    512-token chunk by depth, in ms per layer and the FP32 rate of its
 *    multiply-adds (--tile: only this and the copy bandwidth);
 *  - prefill GEMM (dequantized FP32, 512 tokens) with cuBLAS and our kernel;
 *  - RMSNorm and RoPE;
 *  - one Llama-2-7B layer's parts, a decode step against a 512-token
 *    prefill.
 * Kernels are timed back to back inside a CUDA graph (as a decode step runs
 * them), so launch gaps are the GPU's, not the host's. Weights are random
 * bytes: the kernels' speed does not depend on the values. Not a test: it
 * asserts nothing and is not run by the test runner.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/ops.h"
#include "gpu_test.h"
#include "quant/ggml_types.h"
#include "util/clock.h"

static m40_gpu g_gpu;
static m40_cuda_ops g_ops;
static int g_quick;

static void die(const m40_err *err) {
    fprintf(stderr, "bench_kernels: %s\n", err->msg);
    exit(1);
}

static m40_dptr dalloc(size_t bytes) {
    m40_err err = {0};
    m40_dptr p = 0;
    if (m40_gpu_alloc(&g_gpu, &p, bytes, &err))
        die(&err);
    return p;
}

/* Sets `bytes` of VRAM at p to `byte` (0x3c: floats of 0.0115; in a K or
 * V cache, 0x11 / 0x22 are finite FP16 values and small quant scales). */
static void dfill(m40_dptr p, unsigned char byte, size_t bytes) {
    m40_err err = {0};
    const m40_cuda_driver *d = g_gpu.drv;
    if (m40_cu_check(d, d->cuMemsetD8(p, byte, bytes), "cuMemsetD8", &err))
        die(&err);
}

/* Fills VRAM with pseudo-random bytes (uploaded in 16 MiB pieces). */
static void fill_random(m40_dptr p, size_t bytes, unsigned seed) {
    size_t piece = (size_t)16 << 20;
    uint32_t *h = malloc(piece);
    m40_err err = {0};
    if (!h) {
        fprintf(stderr, "bench_kernels: out of memory\n");
        exit(1);
    }
    for (size_t at = 0; at < bytes; at += piece) {
        size_t n = bytes - at < piece ? bytes - at : piece;
        for (size_t i = 0; i < (n + 3) / 4; i++) {
            seed ^= seed << 13, seed ^= seed >> 17, seed ^= seed << 5;
            h[i] = seed;
        }
        if (m40_gpu_upload(&g_gpu, p + at, h, n, &err))
            die(&err);
    }
    free(h);
}

/* One timed operation: enqueues its launches on the gpu's stream. */
typedef int (*op_fn)(void *ctx, m40_err *err);

/* Seconds per call of op: `reps` calls recorded in a graph (plain launches
 * when the driver has no graphs or use_graph is 0: cuBLAS, long kernels),
 * one warm-up run, then the best of 3. */
static double time_op_with(op_fn op, void *ctx, int reps, int use_graph) {
    m40_err err = {0};
    m40_cu_graph_exec g = NULL;
    int graphs = use_graph && m40_gpu_has_graphs(&g_gpu);
    if (graphs) {
        if (m40_gpu_capture_begin(&g_gpu, &err))
            die(&err);
        for (int i = 0; i < reps; i++) {
            if (op(ctx, &err)) {
                m40_gpu_capture_end(&g_gpu, NULL, NULL);
                die(&err);
            }
        }
        if (m40_gpu_capture_end(&g_gpu, &g, &err))
            die(&err);
    }
    double best = 1e30;
    for (int run = 0; run < 4; run++) {
        double t0 = m40_clock_s();
        if (graphs) {
            if (m40_gpu_graph_launch(&g_gpu, g, &err))
                die(&err);
        } else {
            for (int i = 0; i < reps; i++)
                if (op(ctx, &err))
                    die(&err);
        }
        if (m40_gpu_sync(&g_gpu, &err))
            die(&err);
        double t = (m40_clock_s() - t0) / reps;
        if (run > 0 && t < best)
            best = t;
    }
    m40_gpu_graph_free(&g_gpu, g);
    return best;
}

static double time_op(op_fn op, void *ctx, int reps) {
    return time_op_with(op, ctx, reps, 1);
}

/* ---- copy bandwidth ------------------------------------------------------ */

static void bench_copy(void) {
    size_t bytes = (size_t)1 << 30;
    m40_dptr a = dalloc(bytes), b = dalloc(bytes);
    m40_err err = {0};
    const m40_cuda_driver *d = g_gpu.drv;
    double best = 1e30;
    for (int i = 0; i < 4; i++) {
        double t0 = m40_clock_s();
        if (m40_cu_check(d, d->cuMemcpyDtoD(b, a, bytes), "cuMemcpyDtoD", &err) ||
            m40_cu_check(d, d->cuCtxSynchronize(), "cuCtxSynchronize", &err))
            die(&err);
        double t = m40_clock_s() - t0;
        if (i > 0 && t < best)
            best = t;
    }
    /* a copy reads and writes every byte */
    printf("## copy bandwidth\n\ncuMemcpyDtoD of 1 GiB: %.0f GB/s (read + write)\n\n",
           2.0 * bytes / best / 1e9);
    m40_gpu_free(&g_gpu, a);
    m40_gpu_free(&g_gpu, b);
}

/* ---- decode mat-vec ------------------------------------------------------ */

typedef struct gemv_ctx {
    m40_cu_function fn;
    int rpb;
    m40_dweight w;
    m40_dptr y, x;
} gemv_ctx;

static int op_gemv(void *p, m40_err *err) {
    gemv_ctx *c = p;
    return m40_cuda_gemv_kernel(&g_ops, c->fn, c->rpb, &c->w, c->y, c->x, 0, 0, err);
}

static void bench_gemv(void) {
    static const struct {
        uint32_t type;
        const char *suffix;
    } types[] = {{M40_GGML_F16, "f16"},   {M40_GGML_Q8_0, "q8_0"}, {M40_GGML_Q4_0, "q4_0"},
                 {M40_GGML_Q4_K, "q4_k"}, {M40_GGML_Q6_K, "q6_k"}, {M40_GGML_Q4_1, "q4_1"},
                 {M40_GGML_Q5_K, "q5_k"}};
    static const struct {
        const char *name;
        int rows, cols;
    } shapes[] = {
        {"7B wo", 4096, 4096},       {"7B qkv", 12288, 4096},    {"7B gate+up", 22016, 4096},
        {"7B down", 4096, 11008},    {"7B output", 32000, 4096}, {"1B qkv", 3072, 2048},
        {"1B gate+up", 16384, 2048}, {"1B down", 2048, 8192},
    };
    size_t max_bytes = (size_t)32000 * 4096 * 2;
    m40_dptr w = dalloc(max_bytes), tmp = dalloc(max_bytes), x = dalloc(11008 * 4),
             y = dalloc(32000 * 4);
    fill_random(x, 11008 * 4, 3);
    printf("## decode mat-vec (GB/s of weights read; us per call)\n\n");
    printf("| type | kernel | shape | rows x cols | MiB | us | GB/s "
           "|\n|---|---|---|---|---|---|---|\n");
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        uint32_t type = types[t].type;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            if (g_quick && s != 1 && s != 3)
                continue;
            m40_dweight dw = {.type = type,
                              .cols = shapes[s].cols,
                              .rows = shapes[s].rows,
                              .row_bytes =
                                  (int64_t)m40_ggml_row_bytes(type, (uint64_t)shapes[s].cols),
                              .ptr = w};
            size_t bytes = (size_t)dw.row_bytes * (size_t)dw.rows;
            char names[8][32];
            fill_random(w, bytes, 11 + (unsigned)s);
            /* every variant this layout can run */
            m40_cu_function fns[8];
            int rpbs[8], n = 0, family = M40_GEMV_GENERIC;
            m40_err err = {0};
            if (m40_cuda_can_repack(&dw)) {
                if (m40_cuda_repack(&g_ops, &dw, tmp, &err))
                    die(&err);
                family = M40_GEMV_REPACKED;
            }
            for (int f = family; f <= (family == M40_GEMV_REPACKED ? family : M40_GEMV_VEC); f++)
                for (int lg = 0; lg <= M40_GEMV_MAX_LG; lg++)
                    if (g_ops.gemv[f][type][lg]) {
                        fns[n] = g_ops.gemv[f][type][lg];
                        rpbs[n] = 1 << lg;
                        snprintf(names[n], sizeof names[n], "%s rpb%d",
                                 f == M40_GEMV_REPACKED ? "repacked"
                                 : f == M40_GEMV_VEC    ? "vector-load"
                                                        : "generic",
                                 1 << lg);
                        n++;
                    }
            for (int v = 0; v < n; v++) {
                gemv_ctx c = {.fn = fns[v], .rpb = rpbs[v], .w = dw, .y = y, .x = x};
                double sec = time_op(op_gemv, &c, 50);
                printf("| %s | %s | %s | %d x %d | %.1f | %.2f | %.0f |\n",
                       m40_ggml_type_name(type), names[v], shapes[s].name, dw.rows, dw.cols,
                       bytes / 1048576.0, sec * 1e6, bytes / sec / 1e9);
            }
        }
    }
    printf("\n");
    m40_gpu_free(&g_gpu, w);
    m40_gpu_free(&g_gpu, tmp);
    m40_gpu_free(&g_gpu, x);
    m40_gpu_free(&g_gpu, y);
}

/* ---- batched decode mat-vec ------------------------------------------------
 * m40_cuda_gemv_batch over n inputs at once against n single-row products:
 * what one weight read buys per input. "GB/s" counts the weights once;
 * "x reuse" is single-row time x n over batched time (n: perfect). */

typedef struct gemvb_ctx {
    m40_dweight w;
    m40_dptr y, x;
    int n, single;
} gemvb_ctx;

static int op_gemvb(void *p, m40_err *err) {
    gemvb_ctx *c = p;
    if (!c->single)
        return m40_cuda_gemv_batch(&g_ops, &c->w, c->y, c->w.rows, c->x, c->w.cols, c->n, 0, 0,
                                   err);
    for (int i = 0; i < c->n; i++) {
        if (m40_cuda_gemv(&g_ops, &c->w, c->y + (size_t)i * c->w.rows * sizeof(float),
                          c->x + (size_t)i * c->w.cols * sizeof(float), 0, 0, err))
            return -1;
    }
    return 0;
}

static void bench_gemv_batch(void) {
    static const uint32_t types[] = {M40_GGML_Q4_0, M40_GGML_Q8_0, M40_GGML_Q4_K,
                                     M40_GGML_Q5_K, M40_GGML_Q6_K, M40_GGML_F16};
    static const struct {
        const char *name;
        int rows, cols;
    } shapes[] = {{"7B qkv", 12288, 4096}, {"7B down", 4096, 11008}, {"7B gate/up", 22016, 4096}};
    static const int ns[] = {2, 3, 4, 5, 6, 8};
    size_t max_bytes = (size_t)22016 * 4096 * 2;
    m40_dptr w = dalloc(max_bytes), tmp = dalloc(max_bytes), x = dalloc(8 * 11008 * 4),
             y = dalloc(8 * 22016 * 4);
    fill_random(x, 8 * 11008 * 4, 5);
    printf("## batched decode mat-vec (us per call; GB/s of weights read once)\n\n");
    printf("(repacked types: \"us batched\" with 4 rows a block, \"8 rows\" with 8, \"16 "
           "rows\" with two groups of 8; GB/s and x reuse of the fastest)\n\n");
    printf("| type | shape | inputs | us batched | us 8 rows | us 16 rows | us one by one | GB/s "
           "batched | x reuse |\n|---|---|---|---|---|---|---|---|---|\n");
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            gemvb_ctx c = {
                .w = {.type = types[t],
                      .cols = shapes[s].cols,
                      .rows = shapes[s].rows,
                      .row_bytes = (int64_t)m40_ggml_row_bytes(types[t], (uint64_t)shapes[s].cols),
                      .ptr = w},
                .y = y,
                .x = x};
            size_t bytes = (size_t)c.w.row_bytes * (size_t)c.w.rows;
            m40_err err = {0};
            fill_random(w, bytes, 17 + (unsigned)s);
            if (m40_cuda_can_repack(&c.w) && m40_cuda_repack(&g_ops, &c.w, tmp, &err))
                die(&err);
            for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
                c.n = ns[k];
                c.single = 0;
                g_ops.gemvb_rows = 4;
                double tb = time_op(op_gemvb, &c, 20), best = tb;
                char r8[16] = "-", r16[16] = "-";
                if (c.w.repacked) {
                    g_ops.gemvb_rows = 8;
                    double t8 = time_op(op_gemvb, &c, 20);
                    g_ops.gemvb_rows = 16;
                    double t16 = time_op(op_gemvb, &c, 20);
                    snprintf(r8, sizeof r8, "%.1f", t8 * 1e6);
                    snprintf(r16, sizeof r16, "%.1f", t16 * 1e6);
                    best = t8 < best ? t8 : best;
                    best = t16 < best ? t16 : best;
                }
                g_ops.gemvb_rows = 0;
                c.single = 1;
                double t1 = time_op(op_gemvb, &c, 20);
                printf("| %s | %s | %d | %.1f | %s | %s | %.1f | %.0f | %.2f |\n",
                       m40_ggml_type_name(types[t]), shapes[s].name, c.n, tb * 1e6, r8, r16,
                       t1 * 1e6, bytes / best / 1e9, t1 / best);
            }
        }
    }
    printf("\n");
    m40_gpu_free(&g_gpu, w);
    m40_gpu_free(&g_gpu, tmp);
    m40_gpu_free(&g_gpu, x);
    m40_gpu_free(&g_gpu, y);
}

/* ---- attention decode ----------------------------------------------------- */

/* A decode step reads each layer's cache once, so the table cycles through
 * enough layers' caches that none of them is still in L2 when it comes
 * round again (a single 4096-position layer would fit there). */
#define ATTN_MIN_BYTES  ((size_t)1 << 30)
#define ATTN_MAX_LAYERS 32

/* The head layouts and cache types the attention tables run over (the
 * prompt table takes the first two of each). */
typedef struct attn_layout {
    const char *name;
    int n_head, n_head_kv, hd;
} attn_layout;
static const attn_layout k_layouts[] = {{"Llama-2-7B (32/32 x 128)", 32, 32, 128},
                                        {"Llama-3-8B (32/8 x 128)", 32, 8, 128},
                                        {"1B (32/8 x 64)", 32, 8, 64}};
/* each cache type's kernel number and its GGML type (row sizes) */
typedef struct kv_kind {
    const char *name;
    int type;
    uint32_t ggml;
} kv_kind;
static const kv_kind k_kv_kinds[] = {{"f16", M40_CUDA_KV_F16, M40_GGML_F16},
                                     {"q8_0", M40_CUDA_KV_Q8_0, M40_GGML_Q8_0},
                                     {"q4_0", M40_CUDA_KV_Q4_0, M40_GGML_Q4_0}};
#define N_LAYOUTS  (sizeof k_layouts / sizeof k_layouts[0])
#define N_KV_KINDS (sizeof k_kv_kinds / sizeof k_kv_kinds[0])

typedef struct attn_ctx {
    m40_dptr out, q, pos, scratch;
    m40_dptr kc[ATTN_MAX_LAYERS], vc[ATTN_MAX_LAYERS];
    int n_layers, layer, n_pos, n_head, n_head_kv, hd, chunk, kv_type;
} attn_ctx;

static int op_attn(void *p, m40_err *err) {
    attn_ctx *c = p;
    int l = c->layer++ % c->n_layers;
    return m40_cuda_attention(&g_ops, c->out, c->q, c->n_head * c->hd, c->kc[l], c->vc[l], c->pos,
                              1, c->n_pos - 1, c->chunk, c->n_head, c->n_head_kv, c->hd, c->kv_type,
                              NULL, c->scratch, err);
}

static void bench_attention(void) {
    static const int ctxs[] = {512, 4096, 16384, 32768};
    static const int chunks[] = {32, 64, 128, 256, 512, 1024};
    int max_ctx = 32768;
    printf("## attention decode (one query; us per layer, GB/s of KV read; the host's "
           "chunk for the context is marked *)\n\n");
    printf("| heads | cache | context | chunk | us, splits of a head side by side | us, heads of "
           "a split side by side | GB/s (the latter) |\n|---|---|---|---|---|---|---|\n");
    for (size_t l = 0; l < N_LAYOUTS; l++) {
        for (size_t ty = 0; ty < N_KV_KINDS; ty++) {
            if (g_quick && ty > 0)
                break;
            attn_ctx c = {.n_head = k_layouts[l].n_head,
                          .n_head_kv = k_layouts[l].n_head_kv,
                          .hd = k_layouts[l].hd,
                          .kv_type = k_kv_kinds[ty].type};
            size_t kv_dim = (size_t)c.n_head_kv * c.hd;
            const m40_cuda_attn_dims dims = {c.n_head, c.n_head_kv, c.hd, g_gpu.info.sm_count};
            size_t cache = m40_ggml_row_bytes(k_kv_kinds[ty].ggml, (uint64_t)max_ctx * kv_dim);
            c.n_layers = (int)((ATTN_MIN_BYTES + 2 * cache - 1) / (2 * cache));
            c.n_layers = c.n_layers > ATTN_MAX_LAYERS ? ATTN_MAX_LAYERS : c.n_layers;
            m40_err err = {0};
            for (int i = 0; i < c.n_layers; i++) {
                c.kc[i] = dalloc(cache);
                c.vc[i] = dalloc(cache);
                dfill(c.kc[i], 0x11, cache);
                dfill(c.vc[i], 0x22, cache);
            }
            c.q = dalloc((size_t)c.n_head * c.hd * 4);
            c.out = dalloc((size_t)c.n_head * c.hd * 4);
            dfill(c.q, 0x3c, (size_t)c.n_head * c.hd * 4);
            c.pos = dalloc(4);
            c.scratch =
                dalloc(m40_cuda_attn_scratch_floats(1, c.n_head, c.hd, max_ctx, chunks[0]) * 4);
            for (size_t i = 0; i < sizeof ctxs / sizeof ctxs[0]; i++) {
                c.n_pos = ctxs[i];
                int32_t p = c.n_pos - 1;
                if (m40_gpu_upload(&g_gpu, c.pos, &p, 4, &err))
                    die(&err);
                for (size_t ch = 0; ch < sizeof chunks / sizeof chunks[0]; ch++) {
                    c.chunk = chunks[ch];
                    /* the grid's two orders (ops.h's attn_heads_inner) */
                    double us[2];
                    for (int order = 0; order < 2; order++) {
                        g_ops.attn_heads_inner = order;
                        c.layer = 0;
                        us[order] = time_op(op_attn, &c, 4 * c.n_layers) * 1e6;
                    }
                    g_ops.attn_heads_inner = 1;
                    double bytes = 2.0 * (double)m40_ggml_row_bytes(k_kv_kinds[ty].ggml,
                                                                    (uint64_t)c.n_pos * kv_dim);
                    printf("| %s | %s | %d | %d%s | %.1f | %.1f | %.0f |\n", k_layouts[l].name,
                           k_kv_kinds[ty].name, c.n_pos, c.chunk,
                           c.chunk == m40_cuda_attn_decode_chunk(&dims, c.n_pos) ? "*" : "", us[0],
                           us[1], bytes / (us[1] * 1e-6) / 1e9);
                }
            }
            for (int i = 0; i < c.n_layers; i++) {
                m40_gpu_free(&g_gpu, c.kc[i]);
                m40_gpu_free(&g_gpu, c.vc[i]);
            }
            m40_dptr all[] = {c.q, c.out, c.pos, c.scratch};
            for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
                m40_gpu_free(&g_gpu, all[i]);
        }
    }
    printf("\n");
}

/* ---- prompt attention by depth ------------------------------------------- */

typedef struct tile_ctx {
    m40_dptr out, q, pos, scratch, kc, vc;
    int n_q, max_pos, n_head, n_head_kv, hd, kv_type;
} tile_ctx;

static int op_tile(void *p, m40_err *err) {
    tile_ctx *c = p;
    return m40_cuda_attention_tiled(&g_ops, c->out, c->q, c->n_head * c->hd, c->kc, c->vc, c->pos,
                                    c->n_q, c->max_pos, c->n_head, c->n_head_kv, c->hd, c->kv_type,
                                    NULL, c->scratch, err);
}

/* A 512-token chunk's attention at depths 0 to 32k: what bench -p 512 -d
 * N adds per layer over depth 0. "TFLOP/s" counts the scores' and the
 * weighted sum's multiply-adds the causal mask leaves (2 flops each). */
static void bench_tile(void) {
    static const int depths[] = {0, 4096, 16384, 32768};
    const int n_q = 512, max_ctx = 32768 + n_q;
    printf("## prompt attention (%d queries, tiled kernel + combine; ms per layer)\n\n", n_q);
    printf("| heads | cache | depth | ms | TFLOP/s |\n|---|---|---|---|---|\n");
    for (size_t l = 0; l < 2; l++) {        /* the 7B and 8B layouts */
        for (size_t ty = 0; ty < 2; ty++) { /* f16 and q8_0 */
            tile_ctx c = {.n_q = n_q,
                          .n_head = k_layouts[l].n_head,
                          .n_head_kv = k_layouts[l].n_head_kv,
                          .hd = k_layouts[l].hd,
                          .kv_type = k_kv_kinds[ty].type};
            size_t q_dim = (size_t)c.n_head * c.hd, kv_dim = (size_t)c.n_head_kv * c.hd;
            size_t cache = m40_ggml_row_bytes(k_kv_kinds[ty].ggml, (uint64_t)max_ctx * kv_dim);
            m40_err err = {0};
            c.kc = dalloc(cache);
            c.vc = dalloc(cache);
            c.q = dalloc((size_t)n_q * q_dim * 4);
            c.out = dalloc((size_t)n_q * q_dim * 4);
            c.pos = dalloc((size_t)n_q * 4);
            c.scratch =
                dalloc(m40_cuda_attn_tiled_scratch_floats(n_q, c.n_head, c.hd, max_ctx) * 4);
            dfill(c.kc, 0x11, cache);
            dfill(c.vc, 0x22, cache);
            dfill(c.q, 0x3c, (size_t)n_q * q_dim * 4);
            int32_t *pos = malloc((size_t)n_q * 4);
            if (!pos) {
                fprintf(stderr, "bench_kernels: out of memory\n");
                exit(1);
            }
            for (size_t i = 0; i < sizeof depths / sizeof depths[0]; i++) {
                for (int t = 0; t < n_q; t++)
                    pos[t] = depths[i] + t;
                if (m40_gpu_upload(&g_gpu, c.pos, pos, (size_t)n_q * 4, &err))
                    die(&err);
                c.max_pos = depths[i] + n_q - 1;
                double s = time_op_with(op_tile, &c, 3, 0);
                /* keys seen: depth + t + 1 for query t */
                double keys = (double)n_q * depths[i] + (double)n_q * (n_q + 1) / 2.0;
                double flops = 4.0 * keys * c.n_head * c.hd;
                printf("| %s | %s | %d | %.3f | %.1f |\n", k_layouts[l].name, k_kv_kinds[ty].name,
                       depths[i], s * 1e3, flops / s / 1e12);
            }
            free(pos);
            m40_dptr all[] = {c.kc, c.vc, c.q, c.out, c.pos, c.scratch};
            for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
                m40_gpu_free(&g_gpu, all[i]);
        }
    }
    printf("\n");
}

/* ---- prefill GEMM, RMSNorm, RoPE ----------------------------------------- */

typedef struct gemm_ctx {
    m40_dptr a, b, c;
    int m, n, k;
} gemm_ctx;

static int op_sgemm_ours(void *p, m40_err *err) {
    gemm_ctx *g = p;
    return m40_cuda_sgemm_nt(&g_ops, g->c, g->a, g->b, g->m, g->n, g->k, g->n, 0, err);
}

static int op_sgemm_cublas(void *p, m40_err *err) {
    gemm_ctx *g = p;
    m40_cublas *blas = &g_gpu.blas;
    const float one = 1.0f, zero = 0.0f;
    int st = blas->sgemm(blas->handle, M40_CUBLAS_OP_T, M40_CUBLAS_OP_N, g->n, g->m, g->k, &one,
                         (const float *)(uintptr_t)g->b, g->k, (const float *)(uintptr_t)g->a, g->k,
                         &zero, (float *)(uintptr_t)g->c, g->n);
    return st ? m40_errf(err, "cublasSgemm: status %d", st) : 0;
}

typedef struct small_ctx {
    m40_dptr y, x, w, cs, pos, kc, vc;
    int n, rows;
} small_ctx;

static int op_rmsnorm(void *p, m40_err *err) {
    small_ctx *c = p;
    return m40_cuda_rmsnorm(&g_ops, c->y, c->x, c->w, c->rows, c->n, 1e-5f, err);
}

static int op_rope(void *p, m40_err *err) {
    small_ctx *c = p;
    /* 40 q heads, 4 k and 4 v heads of 128 into a cache, rows of 48 heads */
    return m40_cuda_rope_store(&g_ops, c->y, c->cs, c->pos, c->kc, c->vc, c->rows, 40, 4, 128, 128,
                               M40_ROPE_NORM, 48 * 128, 0, err);
}

static void bench_prefill_and_small(void) {
    gemm_ctx g = {.m = 512, .n = 4096, .k = 4096};
    g.a = dalloc((size_t)g.m * g.k * 4);
    g.b = dalloc((size_t)g.n * g.k * 4);
    g.c = dalloc((size_t)g.m * g.n * 4);
    m40_err err = {0};
    dfill(g.a, 0x3c, (size_t)g.m * g.k * 4);
    dfill(g.b, 0x3c, (size_t)g.n * g.k * 4);
    double flop = 2.0 * g.m * g.n * g.k;
    printf("## prefill GEMM (FP32, 512 tokens x 4096 x 4096)\n\n| kernel | ms | TFLOP/s |\n"
           "|---|---|---|\n");
    double sec = time_op_with(op_sgemm_ours, &g, 5, 0);
    printf("| ours (m40_sgemm_nt) | %.3f | %.2f |\n", sec * 1e3, flop / sec / 1e12);
    if (m40_cublas_active(&g_gpu.blas)) {
        sec = time_op_with(op_sgemm_cublas, &g, 5, 0);
        printf("| cublasSgemm | %.3f | %.2f |\n", sec * 1e3, flop / sec / 1e12);
    } else {
        printf("| cublasSgemm | off | - |\n");
    }
    m40_gpu_free(&g_gpu, g.a);
    m40_gpu_free(&g_gpu, g.b);
    m40_gpu_free(&g_gpu, g.c);

    small_ctx c = {.n = 4096, .rows = 1};
    c.x = dalloc(512 * 4096 * 4);
    c.y = dalloc(512 * 48 * 128 * 4);
    c.w = dalloc(4096 * 4);
    c.cs = dalloc(512 * 64 * 8);
    c.pos = dalloc(512 * 4);
    c.kc = dalloc(512 * 4 * 128 * 2);
    c.vc = dalloc(512 * 4 * 128 * 2);
    int pos[512];
    for (int i = 0; i < 512; i++)
        pos[i] = i;
    if (m40_gpu_upload(&g_gpu, c.pos, pos, sizeof pos, &err))
        die(&err);
    dfill(c.x, 0x3c, 512 * 4096 * 4);
    dfill(c.w, 0x3c, 4096 * 4);
    dfill(c.cs, 0x3c, 512 * 64 * 8);
    printf("\n## small ops (us per call)\n\n| op | tokens | us |\n|---|---|---|\n");
    for (int rows = 1; rows <= 512; rows *= 512) {
        c.rows = rows;
        printf("| rmsnorm d=4096 | %d | %.2f |\n", rows, time_op(op_rmsnorm, &c, 50) * 1e6);
        printf("| rope + kv store, 40 q + 4 k + 4 v heads x 128 | %d | %.2f |\n", rows,
               time_op(op_rope, &c, 50) * 1e6);
    }
    printf("\n");
    m40_dptr all[] = {c.x, c.y, c.w, c.cs, c.pos, c.kc, c.vc};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        m40_gpu_free(&g_gpu, all[i]);
}

/* ---- one layer's parts, decode vs prefill -------------------------------- */

/* Llama-2-7B layer, Q4_0 weights (repacked), 512-token prefill vs one
 * decode step at position 511: where a layer's time goes in each. */
typedef struct layer_ctx {
    int T;
    m40_dweight wqkv, wo, wgu, wdown;
    m40_dptr x, xb, qkv, att, gu, hb, norm, cs, pos, kc, vc, attn_tmp, deq;
    int part;
} layer_ctx;

enum { LP_NORM, LP_QKV, LP_ROPE, LP_ATTN, LP_WO, LP_GU, LP_SWIGLU, LP_DOWN, LP_COUNT };
static const char *const k_part_names[LP_COUNT] = {
    "rmsnorm",           "q|k|v projection",   "rope + kv store", "attention",
    "output projection", "gate|up projection", "swiglu",          "down projection"};

/* y[T][w.rows] = x W^T: the mat-vec for one token, dequantize + SGEMM for
 * more (cuBLAS when on), as the forward does. */
static int lp_matmul(layer_ctx *c, const m40_dweight *w, m40_dptr y, m40_dptr x, m40_err *err) {
    if (c->T == 1)
        return m40_cuda_gemv(&g_ops, w, y, x, 0, 0, err);
    if (m40_cuda_dequant_rows(&g_ops, w, c->deq, 0, 0, w->rows, err))
        return -1;
    if (!m40_cublas_active(&g_gpu.blas))
        return m40_cuda_sgemm_nt(&g_ops, y, x, c->deq, c->T, w->rows, w->cols, w->rows, 0, err);
    m40_cublas *b = &g_gpu.blas;
    const float one = 1.0f, zero = 0.0f;
    int st = b->sgemm(b->handle, M40_CUBLAS_OP_T, M40_CUBLAS_OP_N, w->rows, c->T, w->cols, &one,
                      (const float *)(uintptr_t)c->deq, w->cols, (const float *)(uintptr_t)x,
                      w->cols, &zero, (float *)(uintptr_t)y, w->rows);
    return st ? m40_errf(err, "cublasSgemm: status %d", st) : 0;
}

static int op_layer_part(void *p, m40_err *err) {
    layer_ctx *c = p;
    const int d = 4096, n_ff = 11008, ld = 3 * 4096, T = c->T;
    switch (c->part) {
        case LP_NORM:
            return m40_cuda_rmsnorm(&g_ops, c->xb, c->x, c->norm, T, d, 1e-5f, err);
        case LP_QKV:
            return lp_matmul(c, &c->wqkv, c->qkv, c->xb, err);
        case LP_ROPE:
            return m40_cuda_rope_store(&g_ops, c->qkv, c->cs, c->pos, c->kc, c->vc, T, 32, 32, 128,
                                       128, M40_ROPE_NORM, ld, 0, err);
        case LP_ATTN: {
            const m40_cuda_attn_dims dims = {32, 32, 128, g_gpu.info.sm_count};
            int chunk = T == 1 ? m40_cuda_attn_decode_chunk(&dims, 512) : M40_ATTN_CHUNK;
            return m40_cuda_attention(&g_ops, c->att, c->qkv, ld, c->kc, c->vc, c->pos, T, 511,
                                      chunk, 32, 32, 128, 0, NULL, c->attn_tmp, err);
        }
        case LP_WO:
            return lp_matmul(c, &c->wo, c->xb, c->att, err);
        case LP_GU:
            return lp_matmul(c, &c->wgu, c->gu, c->xb, err);
        case LP_SWIGLU:
            return m40_cuda_swiglu(&g_ops, c->hb, c->gu, c->gu + (size_t)n_ff * 4, T, n_ff,
                                   2 * n_ff, err);
        default:
            return lp_matmul(c, &c->wdown, c->xb, c->hb, err);
    }
}

static m40_dweight lp_weight(int rows, int cols, m40_dptr tmp) {
    m40_dweight w = {.type = M40_GGML_Q4_0,
                     .cols = cols,
                     .rows = rows,
                     .row_bytes = (int64_t)m40_ggml_row_bytes(M40_GGML_Q4_0, (uint64_t)cols)};
    size_t bytes = (size_t)w.row_bytes * (size_t)rows;
    w.ptr = dalloc(bytes);
    fill_random(w.ptr, bytes, (unsigned)rows);
    m40_err err = {0};
    if (m40_cuda_repack(&g_ops, &w, tmp, &err))
        die(&err);
    return w;
}

static void bench_layer_parts(void) {
    const int d = 4096, n_ff = 11008, B = 512;
    m40_err err = {0};
    m40_dptr tmp = dalloc((size_t)2 * n_ff * d);
    layer_ctx c = {0};
    c.wqkv = lp_weight(3 * d, d, tmp);
    c.wo = lp_weight(d, d, tmp);
    c.wgu = lp_weight(2 * n_ff, d, tmp);
    c.wdown = lp_weight(d, n_ff, tmp);
    m40_dptr *bufs[] = {&c.x, &c.xb, &c.qkv, &c.att, &c.gu, &c.hb, &c.norm, &c.cs};
    size_t floats[] = {(size_t)B * d,        (size_t)B * d,    (size_t)B * 3 * d, (size_t)B * d,
                       (size_t)B * 2 * n_ff, (size_t)B * n_ff, (size_t)d,         (size_t)B * 128};
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        *bufs[i] = dalloc(floats[i] * 4);
        dfill(*bufs[i], 0x3c, floats[i] * 4);
    }
    c.kc = dalloc((size_t)B * d * 2);
    c.vc = dalloc((size_t)B * d * 2);
    c.attn_tmp = dalloc(m40_cuda_attn_scratch_floats(B, 32, 128, B, M40_ATTN_CHUNK) * 4 +
                        m40_cuda_attn_scratch_floats(1, 32, 128, B, 32) * 4);
    c.deq = dalloc((size_t)2 * n_ff * d * 4);
    int32_t pos[512];
    for (int i = 0; i < B; i++)
        pos[i] = i;
    c.pos = dalloc(sizeof pos);
    if (m40_gpu_upload(&g_gpu, c.pos, pos, sizeof pos, &err))
        die(&err);
    double t1[LP_COUNT], tb[LP_COUNT], sum1 = 0.0, sumb = 0.0;
    for (int p = 0; p < LP_COUNT; p++) {
        c.part = p;
        c.T = B;
        /* position 511 for the decode step: its pos entry */
        tb[p] = time_op_with(op_layer_part, &c, 3, 0);
        m40_dptr saved = c.pos;
        c.pos = saved + (size_t)(B - 1) * 4;
        c.T = 1;
        t1[p] = time_op(op_layer_part, &c, 20);
        c.pos = saved;
        sum1 += t1[p];
        sumb += tb[p];
    }
    printf("## one Llama-2-7B layer (Q4_0): decode step vs 512-token prefill\n\n"
           "cuBLAS %s for the prefill products.\n\n"
           "| part | decode us | share | prefill us | per token us | share |\n"
           "|---|---|---|---|---|---|\n",
           m40_cublas_active(&g_gpu.blas) ? "on" : "off");
    for (int p = 0; p < LP_COUNT; p++)
        printf("| %s | %.2f | %.0f%% | %.1f | %.3f | %.0f%% |\n", k_part_names[p], t1[p] * 1e6,
               100.0 * t1[p] / sum1, tb[p] * 1e6, tb[p] * 1e6 / B, 100.0 * tb[p] / sumb);
    printf("| **layer** | %.2f | | %.1f | %.3f | |\n\n", sum1 * 1e6, sumb * 1e6, sumb * 1e6 / B);
    m40_dptr all[] = {tmp,  c.wqkv.ptr, c.wo.ptr, c.wgu.ptr,  c.wdown.ptr, c.x,
                      c.xb, c.qkv,      c.att,    c.gu,       c.hb,        c.norm,
                      c.cs, c.kc,       c.vc,     c.attn_tmp, c.deq,       c.pos};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        m40_gpu_free(&g_gpu, all[i]);
}

int main(int argc, char **argv) {
    g_quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int batch_only = argc > 1 && strcmp(argv[1], "--batch") == 0;
    int attn_only = argc > 1 && strcmp(argv[1], "--attn") == 0;
    int tile_only = argc > 1 && strcmp(argv[1], "--tile") == 0;
    gpu_test_open(&g_gpu);
    m40_err err = {0};
    if (m40_cuda_ops_init(&g_ops, &g_gpu, &err))
        die(&err);
    printf("graphs: %s\n\n", m40_gpu_has_graphs(&g_gpu) ? "yes" : "no (plain launches)");
    bench_copy();
    if (tile_only) {
        bench_tile();
        m40_gpu_close(&g_gpu);
        return 0;
    }
    if (attn_only) {
        bench_attention();
        m40_gpu_close(&g_gpu);
        return 0;
    }
    bench_gemv_batch();
    if (batch_only) {
        m40_gpu_close(&g_gpu);
        return 0;
    }
    bench_gemv();
    bench_attention();
    bench_tile();
    bench_prefill_and_small();
    bench_layer_parts();
    m40_gpu_close(&g_gpu);
    return 0;
}
