/* test_gpu_ops.c - each kernel against the CPU reference (src/backend/cpu/ops.c).
 *
 * rmsnorm, the per-head q/k norm, rope (normal and NeoX, with and without frequency factors),
 * swiglu, argmax, the KV store plus attention over a grid of head sizes,
 * GQA ratios and context lengths (query tokens at several positions, so
 * prefill's causal mask is covered too), and the tiled SGEMM. Tolerances
 * are relative to the magnitude of the result; FP16 storage is exact on
 * both sides (same rounding), so differences come only from FP32
 * summation order and transcendental functions.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backend/cpu/ops.h"
#include "model/model.h"
#include "quant/fp16.h"
#include "quant/quant.h"
#include "backend/cuda/ops.h"
#include "check.h"
#include "gpu_test.h"

static m40_gpu g_gpu;
static m40_cuda_ops g_ops;

/* Device copies of host arrays, freed at the end of each test. */
static m40_dptr g_allocs[64];
static int g_n_allocs;

static m40_dptr dev(const void *host, size_t bytes) {
    m40_err err = {0};
    m40_dptr p = 0;
    if (m40_gpu_alloc(&g_gpu, &p, bytes ? bytes : 4, &err) ||
        (host && m40_gpu_upload(&g_gpu, p, host, bytes, &err))) {
        fprintf(stderr, "%s\n", err.msg);
        return 0;
    }
    if (g_n_allocs < 64)
        g_allocs[g_n_allocs++] = p;
    return p;
}

static void free_all(void) {
    for (int i = 0; i < g_n_allocs; i++)
        m40_gpu_free(&g_gpu, g_allocs[i]);
    g_n_allocs = 0;
}

static int fetch(void *host, m40_dptr p, size_t bytes) {
    m40_err err = {0};
    if (m40_gpu_sync(&g_gpu, &err) || m40_gpu_download(&g_gpu, host, p, bytes, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return 0;
}

static void fill(float *x, size_t n, unsigned seed, float scale) {
    for (size_t i = 0; i < n; i++)
        x[i] = gpu_test_rand(&seed) * scale;
}

/* max |a - b| / max(max |b|, tiny) */
static double rel_diff(const float *a, const float *b, size_t n) {
    double worst = 0.0, mag = 1e-30;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)a[i] - (double)b[i]));
        mag = fmax(mag, fabs((double)b[i]));
    }
    return worst / mag;
}

#define CHECK_CLOSE(what, a, b, n, tol)                                                    \
    do {                                                                                   \
        double d_ = rel_diff((a), (b), (n));                                               \
        if (d_ > (tol))                                                                    \
            fprintf(stderr, "%s: relative diff %.3g > %.3g\n", (what), d_, (double)(tol)); \
        CHECK(d_ <= (tol));                                                                \
    } while (0)

static void test_rmsnorm(void) {
    enum { ROWS = 3, N = 576 };
    static float x[ROWS * N], w[N], want[ROWS * N], got[ROWS * N];
    fill(x, ROWS * N, 1, 3.0f);
    fill(w, N, 2, 1.0f);
    for (int r = 0; r < ROWS; r++)
        m40_op_rmsnorm(want + r * N, x + r * N, w, N, 1e-5f);
    m40_dptr dx = dev(x, sizeof x), dw = dev(w, sizeof w), dy = dev(NULL, sizeof got);
    m40_err err = {0};
    CHECK(m40_cuda_rmsnorm(&g_ops, dy, dx, dw, ROWS, N, 1e-5f, &err) == 0);
    CHECK(fetch(got, dy, sizeof got) == 0);
    CHECK_CLOSE("rmsnorm", got, want, ROWS * N, 1e-5);
    free_all();
}

/* The batched mat-vec (m40_cuda_gemv_batch, n inputs at once) against n
 * single-row products, each on its own input: equal bit for bit, with and
 * without the fused residual add, for n = 1..11 (pieces of 2..8); a
 * repacked matrix in every shape of its batched kernels (4, 8 and 16 rows
 * a block; 16: two groups of 8, the second past the last row where rows
 * is an odd multiple of 8). */
static void check_gemv_batch(const m40_dweight *w, const char *what) {
    enum { N = 11 };
    const int rows = w->rows, cols = w->cols;
    float *x = malloc((size_t)N * cols * sizeof *x), *res = malloc((size_t)N * rows * sizeof *res);
    float *want = malloc((size_t)N * rows * sizeof *want), *got = malloc((size_t)N * rows * 4);
    m40_err err = {0};
    CHECK(x && res && want && got);
    if (!x || !res || !want || !got)
        goto done;
    fill(x, (size_t)N * cols, 21, 3.0f);
    fill(res, (size_t)N * rows, 22, 2.0f);
    m40_dptr dx = dev(x, (size_t)N * cols * sizeof *x);
    for (int acc = 0; acc <= 1; acc++) {
        m40_dptr ref = dev(res, (size_t)N * rows * sizeof *res);
        for (int c = 0; c < N; c++) {
            m40_dptr yc = ref + (size_t)c * rows * sizeof(float);
            CHECK(m40_cuda_gemv(&g_ops, w, yc, dx + (size_t)c * cols * sizeof(float), 0,
                                acc ? yc : 0, &err) == 0);
        }
        CHECK(fetch(want, ref, (size_t)N * rows * sizeof *want) == 0);
        /* a repacked weight in each of its shapes: 4, 8 and 16 rows a block */
        for (int run = 0; run < N * (w->repacked ? 3 : 1); run++) {
            const int n = 1 + run % N, shape = w->repacked ? 4 << run / N : 0;
            m40_dptr dy = dev(res, (size_t)N * rows * sizeof *res);
            g_ops.gemvb_rows = shape;
            CHECK(m40_cuda_gemv_batch(&g_ops, w, dy, rows, dx, cols, n, 0, acc, &err) == 0);
            g_ops.gemvb_rows = 0;
            CHECK(fetch(got, dy, (size_t)n * rows * sizeof *got) == 0);
            int bad = -1;
            for (int i = 0; bad < 0 && i < n * rows; i++)
                bad = memcmp(&got[i], &want[i], sizeof *got) ? i : -1;
            if (bad >= 0)
                fprintf(stderr,
                        "%s: batch of %d%s, %d rows a block: input %d row %d: %.9g, alone %.9g\n",
                        what, n, acc ? " (+=)" : "", shape, bad / rows, bad % rows, got[bad],
                        want[bad]);
            CHECK(bad < 0);
        }
    }
done:
    free(x), free(res), free(want), free(got);
}

/* Random blocks of a type that has no quantizer here (IQ4_NL, IQ4_XS):
 * random indices and sub-block scales, and each block's FP16 d (its first
 * two bytes in both) a small normal number. */
static void random_blocks(uint32_t type, unsigned char *raw, size_t bytes) {
    unsigned seed = 31;
    size_t bb = m40_ggml_type_get(type)->block_bytes;
    for (size_t i = 0; i < bytes; i++)
        raw[i] = (unsigned char)((gpu_test_rand(&seed) + 1.0f) * 127.5f);
    for (size_t b = 0; b + bb <= bytes; b += bb) {
        uint16_t d = m40_fp32_to_fp16(0.002f * (1.0f + gpu_test_rand(&seed)));
        raw[b] = (unsigned char)(d & 0xFF), raw[b + 1] = (unsigned char)(d >> 8);
    }
}

/* Prefill's dequantize (m40_cuda_dequant_rows) of rows 5.. and of rows
 * picked by id (the embedding lookup) against the CPU's dequantized rows
 * wf[rows][cols]: equal within FP32 rounding (the GPU may fuse d * q - m). */
static void check_dequant_rows(const m40_dweight *w, const float *wf, const char *what) {
    enum { N = 4 };
    const int cols = w->cols, ids[N] = {w->rows - 1, 0, 7, 7};
    float *got = malloc((size_t)N * cols * sizeof *got), *want = malloc((size_t)N * cols * 4);
    m40_err err = {0};
    CHECK(got && want);
    for (int byid = 0; got && want && byid <= 1; byid++) {
        m40_dptr dst = dev(NULL, (size_t)N * cols * sizeof *got), did = dev(ids, sizeof ids);
        CHECK(m40_cuda_dequant_rows(&g_ops, w, dst, byid ? did : 0, 5, N, &err) == 0);
        CHECK(fetch(got, dst, (size_t)N * cols * sizeof *got) == 0);
        for (int i = 0; i < N; i++)
            memcpy(want + (size_t)i * cols, wf + (size_t)(byid ? ids[i] : 5 + i) * cols,
                   (size_t)cols * sizeof *want);
        char name[96];
        snprintf(name, sizeof name, "%s: dequant rows%s", what, byid ? " by id" : "");
        CHECK_CLOSE(name, got, want, (size_t)N * cols, 1e-6);
    }
    free(got), free(want);
}

/* rmsnorm of each q and k head of qkv rows in place (qwen3), v untouched:
 * T rows of 3 q heads, 2 k heads and 2 v heads (padding after them). */
static void test_head_norm(int head_dim) {
    enum { T = 3, HQ = 3, HKV = 2 };
    const int ld = (HQ + 2 * HKV) * head_dim + 8;
    static float x[T * ((HQ + 2 * HKV) * 256 + 8)], want[T * ((HQ + 2 * HKV) * 256 + 8)],
        got[T * ((HQ + 2 * HKV) * 256 + 8)], wq[256], wk[256];
    fill(x, (size_t)T * ld, 41, 2.0f);
    fill(wq, (size_t)head_dim, 42, 1.0f);
    fill(wk, (size_t)head_dim, 43, 1.0f);
    memcpy(want, x, sizeof(float) * T * ld);
    for (int t = 0; t < T; t++) {
        for (int h = 0; h < HQ + HKV; h++) {
            float *p = want + (size_t)t * ld + (size_t)h * head_dim;
            m40_op_rmsnorm(p, p, h < HQ ? wq : wk, head_dim, 1e-6f);
        }
    }
    m40_dptr dx = dev(x, sizeof(float) * T * ld), dq = dev(wq, sizeof wq), dk = dev(wk, sizeof wk);
    m40_err err = {0};
    CHECK(m40_cuda_head_norm(&g_ops, dx, dq, dk, T, ld, HQ, HKV, head_dim, 1e-6f, &err) == 0);
    CHECK(fetch(got, dx, sizeof(float) * T * ld) == 0);
    char what[64];
    snprintf(what, sizeof what, "head_norm hd=%d", head_dim);
    CHECK_CLOSE(what, got, want, (size_t)T * ld, 1e-6);
    int rest_kept = 1; /* v heads and the padding */
    for (int t = 0; t < T; t++)
        for (int i = (HQ + HKV) * head_dim; i < ld; i++)
            rest_kept &= got[t * ld + i] == x[t * ld + i];
    CHECK(rest_kept);
    free_all();
}

/* The decode mat-vec of every weight type (each family: generic, wide
 * loads, repacked) against the CPU: y = W x + res, res aliasing y as the
 * fused residual add does. rows = 300 leaves a partial last block for
 * every rows-per-block variant; cols = 8192 makes each thread loop over
 * several 32-element groups (or 16-byte chunks) of a row. Then the
 * batched products and the dequantize of the same matrix. With `repack`,
 * the matrix is repacked when its rows are a multiple of 8 (296: 37
 * groups of 8, an odd number of 8-row blocks), and left as it is, still
 * right, when they are not (300). */
static void test_gemv(uint32_t type, int repack, int rows, int cols) {
    enum { ROWS = 300, MAX_COLS = 8192 };
    size_t rb = m40_ggml_row_bytes(type, (uint64_t)cols);
    static float wf[ROWS * MAX_COLS], x[MAX_COLS], res[ROWS], want[ROWS], got[ROWS];
    unsigned char *raw = malloc(rb * ROWS);
    CHECK(rows <= ROWS);
    m40_err err = {0};
    CHECK(raw != NULL);
    if (!raw)
        return;
    fill(wf, (size_t)rows * cols, 11, 1.0f);
    fill(x, cols, 12, 3.0f);
    fill(res, rows, 14, 2.0f);
    if (!m40_quant_can_quantize(type))
        random_blocks(type, raw, rb * rows);
    for (int r = 0; r < rows; r++) {
        CHECK(m40_quant_can_quantize(type) == 0 ||
              m40_quantize_row(type, wf + (size_t)r * cols, raw + r * rb, cols, &err) == 0);
        CHECK(m40_dequantize_row(type, raw + r * rb, wf + (size_t)r * cols, cols, &err) == 0);
        double s = 0.0;
        for (int c = 0; c < cols; c++)
            s += (double)wf[(size_t)r * cols + c] * x[c];
        want[r] = (float)s + res[r];
    }
    m40_dweight w = {type, cols, rows, (int64_t)rb, 0, dev(raw, rb * rows)};
    m40_dptr dx = dev(x, (size_t)cols * sizeof *x), dy = dev(res, rows * sizeof *res);
    if (repack)
        CHECK(m40_cuda_repack(&g_ops, &w, dev(NULL, rb * rows), &err) == 0 &&
              w.repacked == (rows % 8 == 0));
    CHECK(m40_cuda_gemv(&g_ops, &w, dy, dx, 0, dy, &err) == 0);
    char what[64];
    snprintf(what, sizeof what, "gemv %s%s, %d x %d", m40_ggml_type_name(type),
             w.repacked ? " repacked" : "", rows, cols);
    CHECK(fetch(got, dy, rows * sizeof *got) == 0);
    CHECK_CLOSE(what, got, want, (size_t)rows, 1e-5);
    check_gemv_batch(&w, what);
    check_dequant_rows(&w, wf, what);
    free(raw);
    free_all();
}

/* RoPE and the cache append (m40_rope_store) against the CPU: rows of H q
 * heads, one k head and one v head; the q heads rotated in place, the k
 * head rotated into the cache and the v head copied there at each token's
 * position, FP16 (the CPU's rotation, then the CPU's rounding). */
static void test_rope_case(int head_dim, int rope_dim, m40_rope_style style, int with_factors,
                           const m40_rope_ext *ext) {
    enum { T = 5, H = 3, N_CTX = 4096 };
    int stride = (H + 2) * head_dim, pos[T] = {0, 1, 17, 511, 4095};
    static float x[T * (H + 2) * 128], want[T * (H + 2) * 128], got[T * (H + 2) * 128];
    static uint16_t kc[N_CTX * 128], vc[N_CTX * 128];
    float ff[64];
    fill(x, (size_t)T * stride, 3, 1.0f);
    for (int j = 0; j < rope_dim / 2; j++)
        ff[j] = 1.0f + (float)j * 0.25f;
    memcpy(want, x, sizeof(float) * T * stride);
    for (int t = 0; t < T; t++) /* the q heads and the k head */
        m40_op_rope_ext(want + t * stride, H + 1, head_dim, rope_dim, pos[t], 10000.0f, 0.5f,
                        with_factors ? ff : NULL, style, ext);
    /* the same YaRN ramp and attention factor for the GPU's table */
    m40_cuda_rope_ext gext = {ext ? ext->yarn : 0, 0.0, 0.0, ext ? ext->mscale : 1.0};
    if (ext && ext->yarn)
        m40_rope_yarn_range(rope_dim, ext->orig_ctx, 10000.0, ext->beta_fast, ext->beta_slow,
                            &gext.low, &gext.high);
    m40_dptr dx = dev(x, sizeof(float) * T * stride), dpos = dev(pos, sizeof pos);
    m40_dptr dff = with_factors ? dev(ff, sizeof ff) : 0;
    m40_dptr dcs = dev(NULL, sizeof(float) * T * rope_dim);
    m40_dptr dkc = dev(NULL, (size_t)N_CTX * head_dim * 2),
             dvc = dev(NULL, (size_t)N_CTX * head_dim * 2);
    m40_err err = {0};
    CHECK(m40_cuda_rope_table(&g_ops, dcs, dpos, T, rope_dim, 10000.0f, 0.5f, dff,
                              ext ? &gext : NULL, &err) == 0);
    CHECK(m40_cuda_rope_store(&g_ops, dx, dcs, dpos, dkc, dvc, T, H, 1, head_dim, rope_dim, style,
                              stride, 0, &err) == 0);
    CHECK(fetch(got, dx, sizeof(float) * T * stride) == 0);
    CHECK(fetch(kc, dkc, (size_t)N_CTX * head_dim * 2) == 0);
    CHECK(fetch(vc, dvc, (size_t)N_CTX * head_dim * 2) == 0);
    char what[64];
    snprintf(what, sizeof what, "rope hd=%d rd=%d style=%d ff=%d yarn=%d", head_dim, rope_dim,
             style, with_factors, ext ? ext->yarn : -1);
    double worst_q = 0.0, worst_k = 0.0, mag = 1e-30;
    int v_exact = 1, kv_untouched = 1;
    for (int t = 0; t < T; t++) {
        const float *w = want + t * stride, *g = got + t * stride, *xin = x + t * stride;
        for (int i = 0; i < H * head_dim; i++) {
            worst_q = fmax(worst_q, fabs((double)g[i] - w[i]));
            mag = fmax(mag, fabs((double)w[i]));
        }
        for (int i = 0; i < head_dim; i++) {
            const float *wk = w + H * head_dim, *xv = xin + (H + 1) * head_dim;
            size_t at = (size_t)pos[t] * head_dim + (size_t)i;
            worst_k = fmax(worst_k, fabs((double)m40_fp16_to_fp32(kc[at]) - wk[i]));
            v_exact &= vc[at] == m40_fp32_to_fp16(xv[i]);
            kv_untouched &=
                g[H * head_dim + i] == xin[H * head_dim + i] && g[(H + 1) * head_dim + i] == xv[i];
        }
    }
    if (worst_q > 1e-6 * mag || worst_k > 1e-3 * mag || !v_exact || !kv_untouched)
        fprintf(stderr, "%s: q %.3g, k %.3g of %.3g, v exact %d, k/v rows untouched %d\n", what,
                worst_q, worst_k, mag, v_exact, kv_untouched);
    CHECK(worst_q <= 1e-6 * mag);
    CHECK(worst_k <= 1e-3 * mag); /* one FP16 rounding step */
    CHECK(v_exact);
    CHECK(kv_untouched);
    free_all();
}

static void test_swiglu_and_argmax(void) {
    enum { N = 100003 };
    static float g[N], u[N], want[N], got[N];
    fill(g, N, 4, 8.0f);
    fill(u, N, 5, 2.0f);
    m40_op_swiglu(want, g, u, N);
    m40_dptr dg = dev(g, sizeof g), du = dev(u, sizeof u), dy = dev(NULL, sizeof got);
    m40_err err = {0};
    CHECK(m40_cuda_swiglu(&g_ops, dy, dg, du, 1, N, N, &err) == 0);
    CHECK(fetch(got, dy, sizeof got) == 0);
    CHECK_CLOSE("swiglu", got, want, N, 1e-6);

    /* argmax with a planted maximum, then a tie resolved to the lower index */
    g[77777] = 100.0f;
    int idx = -1;
    m40_dptr dx = dev(g, sizeof g), dout = dev(NULL, sizeof idx);
    CHECK(m40_cuda_argmax(&g_ops, dout, dx, N, &err) == 0);
    CHECK(fetch(&idx, dout, sizeof idx) == 0);
    CHECK(idx == 77777);
    g[1234] = 100.0f;
    m40_dptr dx2 = dev(g, sizeof g);
    CHECK(m40_cuda_argmax(&g_ops, dout, dx2, N, &err) == 0);
    CHECK(fetch(&idx, dout, sizeof idx) == 0);
    CHECK(idx == 1234);
    free_all();
}

/* Attention of n_q query tokens at the last n_q positions of a context of
 * n_ctx, against the CPU reference, with the cache written by rope_store
 * (FP16, or FP32 with kv_f32). */
static void attention_case_kv(int head_dim, int ratio, int n_ctx, int n_q, int kv_f32) {
    const int n_head_kv = 2, n_head = n_head_kv * ratio, kv_dim = n_head_kv * head_dim;
    const int q_dim = n_head * head_dim;
    size_t kv_n = (size_t)n_ctx * kv_dim;
    float *k = malloc(kv_n * 4), *v = malloc(kv_n * 4), *q = malloc((size_t)n_q * q_dim * 4);
    float *want = malloc((size_t)n_q * q_dim * 4), *got = malloc((size_t)n_q * q_dim * 4);
    float *scores = malloc((size_t)n_ctx * 4);
    uint16_t *kh = malloc(kv_n * 2), *vh = malloc(kv_n * 2);
    int *pos_all = malloc((size_t)n_ctx * sizeof(int)), *pos_q = malloc((size_t)n_q * sizeof(int));
    fill(k, kv_n, 6 + (unsigned)n_ctx, 2.0f);
    fill(v, kv_n, 7 + (unsigned)n_ctx, 1.0f);
    fill(q, (size_t)n_q * q_dim, 8 + (unsigned)head_dim, 2.0f);
    for (size_t i = 0; i < kv_n; i++) {
        kh[i] = m40_fp32_to_fp16(k[i]);
        vh[i] = m40_fp32_to_fp16(v[i]);
    }
    for (int p = 0; p < n_ctx; p++)
        pos_all[p] = p;
    for (int t = 0; t < n_q; t++) {
        pos_q[t] = n_ctx - n_q + t;
        m40_op_attention_kv(want + (size_t)t * q_dim, q + (size_t)t * q_dim,
                            kv_f32 ? (const void *)k : kh, kv_f32 ? (const void *)v : vh, kv_f32,
                            pos_q[t] + 1, (size_t)kv_dim, n_head, n_head_kv, head_dim, scores);
    }
    m40_err err = {0};
    /* the cache is written as the forward writes it: rows of k then v
     * heads, no rotation (rope_dim 0), no q heads */
    float *kv_rows = malloc(kv_n * 2 * 4);
    for (int p = 0; p < n_ctx; p++) {
        memcpy(kv_rows + (size_t)p * 2 * kv_dim, k + (size_t)p * kv_dim, (size_t)kv_dim * 4);
        memcpy(kv_rows + (size_t)p * 2 * kv_dim + kv_dim, v + (size_t)p * kv_dim,
               (size_t)kv_dim * 4);
    }
    m40_dptr dkv = dev(kv_rows, kv_n * 2 * 4), dpos = dev(pos_all, n_ctx * 4);
    free(kv_rows);
    size_t elem = kv_f32 ? 4 : 2;
    m40_dptr dkc = dev(NULL, kv_n * elem), dvc = dev(NULL, kv_n * elem);
    m40_dptr dq = dev(q, (size_t)n_q * q_dim * 4), dpq = dev(pos_q, (size_t)n_q * 4);
    m40_dptr dout = dev(NULL, (size_t)n_q * q_dim * 4);
    /* the chunk the forward uses: short for one query, long for many */
    const m40_cuda_attn_dims dims = {n_head, n_head_kv, head_dim, g_gpu.info.sm_count};
    int chunk = n_q == 1 ? m40_cuda_attn_decode_chunk(&dims, n_ctx) : M40_ATTN_CHUNK;
    m40_dptr dscr =
        dev(NULL, m40_cuda_attn_scratch_floats(n_q, n_head, head_dim, n_ctx, chunk) * 4);
    CHECK(m40_cuda_rope_store(&g_ops, dkv, 0, dpos, dkc, dvc, n_ctx, 0, n_head_kv, head_dim, 0,
                              M40_ROPE_NORM, 2 * kv_dim, kv_f32, &err) == 0);
    CHECK(m40_cuda_attention(&g_ops, dout, dq, q_dim, dkc, dvc, dpq, n_q, n_ctx - 1, chunk, n_head,
                             n_head_kv, head_dim, kv_f32, NULL, dscr, &err) == 0);
    if (err.msg[0])
        fprintf(stderr, "%s\n", err.msg);
    CHECK(fetch(got, dout, (size_t)n_q * q_dim * 4) == 0);
    /* the cache must hold exactly the CPU's FP16 values (or the FP32 ones) */
    void *kc = malloc(kv_n * elem);
    CHECK(fetch(kc, dkc, kv_n * elem) == 0);
    CHECK(memcmp(kc, kv_f32 ? (const void *)k : kh, kv_n * elem) == 0);
    char what[96];
    snprintf(what, sizeof what, "attention hd=%d ratio=%d ctx=%d n_q=%d kv %s", head_dim, ratio,
             n_ctx, n_q, kv_f32 ? "f32" : "f16");
    CHECK_CLOSE(what, got, want, (size_t)n_q * q_dim, 2e-5);
    /* a prompt's queries through the tiled kernel too (the tiled-attn switch) */
    if (n_q > 1 && m40_cuda_attention_tiled_fits(n_head, n_head_kv, head_dim)) {
        float *nan = malloc((size_t)n_q * q_dim * 4); /* what it does not write stays NaN */
        for (size_t i = 0; nan && i < (size_t)n_q * q_dim; i++)
            nan[i] = NAN;
        CHECK(nan && m40_gpu_upload(&g_gpu, dout, nan, (size_t)n_q * q_dim * 4, &err) == 0);
        free(nan);
        CHECK(m40_cuda_attention_tiled(&g_ops, dout, dq, q_dim, dkc, dvc, dpq, n_q, n_ctx - 1,
                                       n_head, n_head_kv, head_dim, kv_f32, NULL, dscr, &err) == 0);
        if (err.msg[0])
            fprintf(stderr, "%s\n", err.msg);
        CHECK(fetch(got, dout, (size_t)n_q * q_dim * 4) == 0);
        char tiled[112];
        snprintf(tiled, sizeof tiled, "%s, tiled", what);
        CHECK_CLOSE(tiled, got, want, (size_t)n_q * q_dim, 2e-5);
    }
    free_all();
    free(k), free(v), free(q), free(want), free(got), free(scores), free(kh), free(vh);
    free(pos_all), free(pos_q), free(kc);
}

/* The tiled kernel with a sliding window and a soft-cap (Gemma's layers)
 * against the CPU's span attention: n_q queries at the end of a context of
 * n_ctx, an FP16 cache filled directly. */
static void tiled_window_case(int head_dim, int ratio, int n_ctx, int n_q, int window,
                              float softcap) {
    const int n_head_kv = 2, n_head = n_head_kv * ratio, kv_dim = n_head_kv * head_dim;
    const int q_dim = n_head * head_dim;
    const size_t kv_n = (size_t)n_ctx * kv_dim, out_n = (size_t)n_q * q_dim;
    float *k = malloc(kv_n * 4), *v = malloc(kv_n * 4), *q = malloc(out_n * 4);
    float *want = malloc(out_n * 4), *got = malloc(out_n * 4), *scores = malloc((size_t)n_ctx * 4);
    uint16_t *kh = malloc(kv_n * 2), *vh = malloc(kv_n * 2);
    int *pos_q = malloc((size_t)n_q * sizeof(int));
    fill(k, kv_n, 16, 2.0f);
    fill(v, kv_n, 17, 1.0f);
    fill(q, out_n, 18, 2.0f);
    for (size_t i = 0; i < kv_n; i++)
        kh[i] = m40_fp32_to_fp16(k[i]), vh[i] = m40_fp32_to_fp16(v[i]);
    const float scale = 0.7f / sqrtf((float)head_dim);
    m40_kv_view view = {kh, vh, M40_GGML_F16, M40_GGML_F16, (size_t)kv_dim * 2, (size_t)kv_dim * 2};
    for (int t = 0; t < n_q; t++) {
        pos_q[t] = n_ctx - n_q + t;
        int n_pos = pos_q[t] + 1, first = n_pos > window ? n_pos - window : 0;
        m40_op_attention_span(want + (size_t)t * q_dim, q + (size_t)t * q_dim, &view, first, n_pos,
                              n_head, n_head_kv, head_dim, scale, softcap, scores);
    }
    for (size_t i = 0; i < out_n; i++)
        got[i] = NAN;
    m40_dptr dkc = dev(kh, kv_n * 2), dvc = dev(vh, kv_n * 2), dq = dev(q, out_n * 4);
    m40_dptr dpq = dev(pos_q, (size_t)n_q * 4), dout = dev(got, out_n * 4);
    m40_dptr dscr = dev(NULL, m40_cuda_attn_tiled_scratch_floats(n_q, n_head, head_dim, n_ctx) * 4);
    m40_cuda_attn_layer layer = {scale, window, softcap};
    m40_err err = {0};
    CHECK(m40_cuda_attention_tiled(&g_ops, dout, dq, q_dim, dkc, dvc, dpq, n_q, n_ctx - 1, n_head,
                                   n_head_kv, head_dim, M40_CUDA_KV_F16, &layer, dscr, &err) == 0);
    if (err.msg[0])
        fprintf(stderr, "%s\n", err.msg);
    CHECK(fetch(got, dout, out_n * 4) == 0);
    char what[112];
    snprintf(what, sizeof what, "tiled attention hd=%d ratio=%d ctx=%d n_q=%d window=%d cap=%g",
             head_dim, ratio, n_ctx, n_q, window, (double)softcap);
    CHECK_CLOSE(what, got, want, out_n, 2e-5);
    free_all();
    free(k), free(v), free(q), free(want), free(got), free(scores), free(kh), free(vh), free(pos_q);
}

static void attention_case(int head_dim, int ratio, int n_ctx, int n_q) {
    attention_case_kv(head_dim, ratio, n_ctx, n_q, 0);
}

/* The attention parity grid's one case: n_q queries at the end of a
 * context of n_ctx over 2 KV heads of head_dim (ratio query heads each), a
 * cache of `type` (F16, F32, Q8_0 or Q4_0, its rows as the CPU stores
 * them), a sliding `window` (0: none) and a soft-cap (0: none), against the
 * CPU's span attention on the same cache. Every path the backend has:
 * the split kernel (its 16-byte-load form where it applies, and the
 * per-element one), and for several queries the tiled kernel. The cache
 * holds 64 rows of NaN past the context, and the tiled output starts as
 * NaN: a kernel that reads past its queries' last position or leaves a row
 * unwritten fails. */
static void attn_grid_case(int head_dim, int ratio, int n_ctx, int n_q, int window, float softcap,
                           uint32_t type) {
    const int n_head_kv = 2, n_head = n_head_kv * ratio, kv_dim = n_head_kv * head_dim;
    const int q_dim = n_head * head_dim, n_rows = n_ctx + 64;
    const size_t out_n = (size_t)n_q * q_dim, kv_n = (size_t)n_ctx * kv_dim;
    const size_t row = m40_ggml_row_bytes(type, kv_dim), cache_bytes = (size_t)n_rows * row;
    const int kvt = type == M40_GGML_F32    ? M40_CUDA_KV_F32
                    : type == M40_GGML_Q8_0 ? M40_CUDA_KV_Q8_0
                    : type == M40_GGML_Q4_0 ? M40_CUDA_KV_Q4_0
                                            : M40_CUDA_KV_F16;
    float *k = malloc(kv_n * 4), *v = malloc(kv_n * 4), *q = malloc(out_n * 4);
    float *want = malloc(out_n * 4), *got = malloc(out_n * 4), *scores = malloc((size_t)n_ctx * 4);
    unsigned char *kc = malloc(cache_bytes), *vc = malloc(cache_bytes);
    int *pos_q = malloc((size_t)n_q * sizeof(int));
    m40_err err = {0};
    fill(k, kv_n, 21 + (unsigned)n_ctx, 2.0f);
    fill(v, kv_n, 22 + (unsigned)head_dim, 1.0f);
    fill(q, out_n, 23 + (unsigned)ratio, 2.0f);
    memset(kc, 0xff, cache_bytes); /* NaN in every type past the context */
    memset(vc, 0xff, cache_bytes);
    int ok = 1;
    for (int p = 0; p < n_ctx; p++)
        ok &=
            m40_quantize_row(type, k + (size_t)p * kv_dim, kc + (size_t)p * row, kv_dim, &err) ==
                0 &&
            m40_quantize_row(type, v + (size_t)p * kv_dim, vc + (size_t)p * row, kv_dim, &err) == 0;
    CHECK(ok);
    const float scale = 0.8f / sqrtf((float)head_dim);
    m40_kv_view view = {kc, vc, type, type, row, row};
    for (int t = 0; t < n_q; t++) {
        pos_q[t] = n_ctx - n_q + t;
        int n_pos = pos_q[t] + 1, first = window > 0 && n_pos > window ? n_pos - window : 0;
        m40_op_attention_span(want + (size_t)t * q_dim, q + (size_t)t * q_dim, &view, first, n_pos,
                              n_head, n_head_kv, head_dim, scale, softcap, scores);
    }
    m40_dptr dkc = dev(kc, cache_bytes), dvc = dev(vc, cache_bytes), dq = dev(q, out_n * 4);
    m40_dptr dpq = dev(pos_q, (size_t)n_q * 4), dout = dev(NULL, out_n * 4);
    const m40_cuda_attn_dims dims = {n_head, n_head_kv, head_dim, g_gpu.info.sm_count};
    const int chunk = n_q == 1 ? m40_cuda_attn_decode_chunk(&dims, n_ctx) : M40_ATTN_CHUNK;
    m40_dptr dscr =
        dev(NULL, m40_cuda_attn_scratch_floats(n_q, n_head, head_dim, n_ctx, chunk) * 4);
    const m40_cuda_attn_layer layer = {scale, window, softcap};
    char what[160];
    for (int path = 0; path < 3; path++) {
        if (path == 2 && (n_q == 1 || !m40_cuda_attention_tiled_fits(n_head, n_head_kv, head_dim)))
            continue;
        for (size_t i = 0; i < out_n; i++)
            got[i] = NAN;
        CHECK(m40_gpu_upload(&g_gpu, dout, got, out_n * 4, &err) == 0);
        g_ops.attn_scalar = path == 1;
        int rc =
            path == 2
                ? m40_cuda_attention_tiled(&g_ops, dout, dq, q_dim, dkc, dvc, dpq, n_q, n_ctx - 1,
                                           n_head, n_head_kv, head_dim, kvt, &layer, dscr, &err)
                : m40_cuda_attention(&g_ops, dout, dq, q_dim, dkc, dvc, dpq, n_q, n_ctx - 1, chunk,
                                     n_head, n_head_kv, head_dim, kvt, &layer, dscr, &err);
        g_ops.attn_scalar = 0;
        if (rc)
            fprintf(stderr, "%s\n", err.msg);
        CHECK(rc == 0 && fetch(got, dout, out_n * 4) == 0);
        snprintf(what, sizeof what,
                 "attention (%s) %s hd=%d ratio=%d ctx=%d n_q=%d window=%d cap=%g",
                 path == 0   ? "split"
                 : path == 1 ? "split, per element"
                             : "tiled",
                 m40_ggml_type_name(type), head_dim, ratio, n_ctx, n_q, window, (double)softcap);
        CHECK_CLOSE(what, got, want, out_n, 2e-5);
    }
    free_all();
    free(k), free(v), free(q), free(want), free(got), free(scores), free(kc), free(vc), free(pos_q);
}

static void test_attention_grid(void) {
    /* rope_store writes the cache: one query (decode), and prompts */
    static const int dims[] = {64, 80, 128}, ratios[] = {1, 4, 8};
    static const int ctxs[] = {1, 7, 64, 513, 4096};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 5; c++)
                attention_case(dims[a], ratios[b], ctxs[c], 1);
    attention_case(64, 4, 300, 300);
    attention_case(128, 8, 520, 9);
    attention_case(80, 1, 77, 77);
    attention_case(256, 2, 200, 37);
    attention_case(128, 1, 1100, 512);
    tiled_window_case(64, 4, 300, 100, 6, 0.0f);
    tiled_window_case(256, 2, 520, 64, 200, 0.5f);
    tiled_window_case(128, 1, 96, 96, 40, 50.0f);
    attention_case_kv(128, 4, 513, 1, 1);
    attention_case_kv(80, 1, 4096, 1, 1);
    attention_case_kv(64, 8, 300, 300, 1);

    /* The parity grid (issue 18): head dims 64/80/128/256 (and phi3's 96),
     * 1/4/8 query heads per KV head, contexts to 32768, windows on and
     * off, every cache type. */
    static const uint32_t types[] = {M40_GGML_F16, M40_GGML_F32, M40_GGML_Q8_0, M40_GGML_Q4_0};
    static const int gdims[] = {64, 80, 128, 256};
    static const int gctx[] = {1, 33, 513, 4096};
    for (int ty = 0; ty < 4; ty++) {
        const uint32_t t = types[ty];
        for (int a = 0; a < 4; a++) {
            if (gdims[a] % 32 && (t == M40_GGML_Q8_0 || t == M40_GGML_Q4_0))
                continue; /* a quantized cache's rows are whole blocks: 2 heads of 80 are 5 */
            for (int b = 0; b < 3; b++) {
                for (int c = 0; c < 4; c++)
                    attn_grid_case(gdims[a], ratios[b], gctx[c], 1, 0, 0.0f, t);
                attn_grid_case(gdims[a], ratios[b], 32768, 1, 0, 0.0f, t);
                attn_grid_case(gdims[a], ratios[b], 4096, 1, 1000, 0.0f, t);
                attn_grid_case(gdims[a], ratios[b], 700, 70, 0, 0.0f, t);
                attn_grid_case(gdims[a], ratios[b], 700, 70, 100, 0.0f, t);
            }
            attn_grid_case(gdims[a], 4, 32768, 40, 0, 0.0f, t);
            attn_grid_case(gdims[a], 4, 32768, 40, 4096, 0.0f, t);
            attn_grid_case(gdims[a], 2, 2000, 100, 0, 30.0f, t);
            /* prompt queries on both sides of the tiled kernel's first
             * split boundary (M40_ATTN_TILE_SPLIT), and a window that
             * leaves a tile's first split partly or wholly unseen */
            attn_grid_case(gdims[a], 4, 2100, 100, 0, 0.0f, t);
            attn_grid_case(gdims[a], 1, 4200, 100, 2100, 0.0f, t);
        }
    }
    attn_grid_case(96, 3, 1000, 130, 0, 0.0f, M40_GGML_F16);
    attn_grid_case(96, 1, 4096, 1, 0, 0.0f, M40_GGML_Q8_0);
    attn_grid_case(64, 7, 900, 65, 0, 0.0f, M40_GGML_F16); /* a group that does not divide 32 */
    attn_grid_case(64, 16, 600, 20, 0, 0.0f, M40_GGML_F16);
}

static void test_sgemm(int m, int n, int k) {
    float *a = malloc((size_t)m * k * 4), *b = malloc((size_t)n * k * 4);
    float *want = malloc((size_t)m * n * 4), *got = malloc((size_t)m * n * 4);
    fill(a, (size_t)m * k, 9, 1.0f);
    fill(b, (size_t)n * k, 10, 1.0f);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int p = 0; p < k; p++)
                s += (double)a[(size_t)i * k + p] * b[(size_t)j * k + p];
            want[(size_t)i * n + j] = (float)s;
        }
    m40_err err = {0};
    m40_dptr da = dev(a, (size_t)m * k * 4), db = dev(b, (size_t)n * k * 4);
    m40_dptr dc = dev(NULL, (size_t)m * n * 4);
    CHECK(m40_cuda_sgemm_nt(&g_ops, dc, da, db, m, n, k, n, 0, &err) == 0);
    CHECK(fetch(got, dc, (size_t)m * n * 4) == 0);
    char what[64];
    snprintf(what, sizeof what, "sgemm %dx%dx%d", m, n, k);
    CHECK_CLOSE(what, got, want, (size_t)m * n, 1e-5);
    free_all();
    free(a), free(b), free(want), free(got);
}

int main(void) {
    gpu_test_open(&g_gpu);
    m40_err err = {0};
    if (m40_cuda_ops_init(&g_ops, &g_gpu, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        CHECK(0);
        m40_gpu_close(&g_gpu);
        return check_report();
    }
    test_rmsnorm();
    test_head_norm(64);
    test_head_norm(128);
    test_head_norm(256);
    const uint32_t gemv_types[] = {
        M40_GGML_F32,     M40_GGML_F16,    M40_GGML_BF16,  M40_GGML_Q4_0,    M40_GGML_Q8_0,
        M40_GGML_Q4_1,    M40_GGML_Q5_0,   M40_GGML_Q5_1,  M40_GGML_Q4_K,    M40_GGML_Q5_K,
        M40_GGML_Q6_K,    M40_GGML_Q2_K,   M40_GGML_Q3_K,  M40_GGML_IQ4_NL,  M40_GGML_IQ4_XS,
        M40_GGML_IQ2_XXS, M40_GGML_IQ2_XS, M40_GGML_IQ2_S, M40_GGML_IQ3_XXS, M40_GGML_IQ3_S};
    for (size_t i = 0; i < sizeof gemv_types / sizeof gemv_types[0]; i++) {
        test_gemv(gemv_types[i], 0, 300, 512);
        test_gemv(gemv_types[i], 0, 300, 8192);
    }
    const uint32_t repack_types[] = {M40_GGML_Q4_0, M40_GGML_Q8_0, M40_GGML_Q6_K};
    for (int i = 0; i < 3; i++) {
        test_gemv(repack_types[i], 1, 296, 512);
        test_gemv(repack_types[i], 1, 296, 8192);
        test_gemv(repack_types[i], 1, 300, 512); /* not repacked: 300 % 8 != 0 */
    }
    test_rope_case(64, 64, M40_ROPE_NORM, 0, NULL);
    test_rope_case(64, 64, M40_ROPE_NEOX, 0, NULL);
    test_rope_case(128, 128, M40_ROPE_NORM, 1, NULL);
    test_rope_case(80, 64, M40_ROPE_NEOX, 1, NULL);
    /* YaRN (factor 4 over 64 positions, llama.cpp's betas) and LongRoPE's
     * attention factor with its per-dimension divisors */
    const m40_rope_ext yarn = {1, 64.0f, 32.0f, 1.0f, 1.1386f};
    const m40_rope_ext longrope = {0, 64.0f, 0.0f, 0.0f, 1.29f};
    test_rope_case(64, 64, M40_ROPE_NEOX, 0, &yarn);
    test_rope_case(128, 128, M40_ROPE_NEOX, 1, &longrope);
    test_swiglu_and_argmax();
    test_attention_grid();
    test_sgemm(1, 1, 32);
    test_sgemm(7, 130, 576);
    test_sgemm(512, 300, 1536);
    m40_gpu_close(&g_gpu);
    return check_report();
}
