/* ops.c - see ops.h. */
#include "backend/cuda/ops.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* GGML type -> the suffix of its kernels in gemv.cu and dequant.cu. */
static const struct {
    uint32_t type;
    const char *suffix;
} k_type_kernels[] = {
    {M40_GGML_F32, "f32"},         {M40_GGML_F16, "f16"},       {M40_GGML_BF16, "bf16"},
    {M40_GGML_Q4_0, "q4_0"},       {M40_GGML_Q4_1, "q4_1"},     {M40_GGML_Q5_0, "q5_0"},
    {M40_GGML_Q5_1, "q5_1"},       {M40_GGML_Q8_0, "q8_0"},     {M40_GGML_Q4_K, "q4_k"},
    {M40_GGML_Q5_K, "q5_k"},       {M40_GGML_Q6_K, "q6_k"},     {M40_GGML_Q2_K, "q2_k"},
    {M40_GGML_Q3_K, "q3_k"},       {M40_GGML_IQ4_NL, "iq4_nl"}, {M40_GGML_IQ4_XS, "iq4_xs"},
    {M40_GGML_IQ2_XXS, "iq2_xxs"}, {M40_GGML_IQ2_XS, "iq2_xs"}, {M40_GGML_IQ2_S, "iq2_s"},
    {M40_GGML_IQ3_XXS, "iq3_xxs"}, {M40_GGML_IQ3_S, "iq3_s"},
};

/* The mat-vec variants the launcher may use, by family: what follows the
 * type in the kernel's name (m40_gemv_<type><infix>_rpb<N>) and the rows
 * per block on offer (log2). Chosen with bench_kernels (docs/performance.md):
 * 8 rows per block beat 4 by up to 35% for the repacked and generic kernels
 * on the H100 when the grid keeps enough blocks (16 won only on some shapes
 * and lost more on others); F16/BF16 peak at 2 rows. */
static const struct {
    int family;
    const char *infix;
    int min_lg, max_lg;
    uint32_t only; /* M40_GGML_TYPE_COUNT: every type */
} k_gemv_variants[] = {
    {M40_GEMV_GENERIC, "", 2, 3, M40_GGML_TYPE_COUNT},
    {M40_GEMV_VEC, "_v", 1, 1, M40_GGML_F16},
    {M40_GEMV_VEC, "_v", 1, 1, M40_GGML_BF16},
    {M40_GEMV_VEC, "_v", 2, 3, M40_GGML_Q4_K},
    {M40_GEMV_VEC, "_v", 2, 3, M40_GGML_Q5_K},
    {M40_GEMV_VEC, "_v", 2, 3, M40_GGML_Q4_1},
    {M40_GEMV_VEC, "_v", 2, 3, M40_GGML_Q5_0},
    {M40_GEMV_VEC, "_v", 2, 3, M40_GGML_Q5_1},
    {M40_GEMV_VEC, "_v", 2, 3, M40_GGML_Q6_K},
    {M40_GEMV_REPACKED, "r", 2, 3, M40_GGML_Q4_0},
    {M40_GEMV_REPACKED, "r", 2, 3, M40_GGML_Q8_0},
    {M40_GEMV_REPACKED, "r", 2, 3, M40_GGML_Q6_K},
};

/* The types with batched mat-vec kernels (gemv_batch.cu), and the family
 * of single-row kernels each one's loop is shared with: a batch may use
 * them only where a row alone would run that family, or its bits would
 * differ from the row's alone. */
static const struct {
    uint32_t type;
    const char *name;
    int family;
} k_batched[] = {
    {M40_GGML_Q4_0, "q4_0r", M40_GEMV_REPACKED},
    {M40_GGML_Q8_0, "q8_0r", M40_GEMV_REPACKED},
    {M40_GGML_Q6_K, "q6_kr", M40_GEMV_REPACKED},
    {M40_GGML_Q4_K, "q4_k", M40_GEMV_VEC},
};

/* The other batched kernels (gemv_batch.cu's m40_gemvb_<type>[_v]_n, one
 * for every batch), and the family of single-row kernels each shares its
 * loop with: the wide-load one (infix "_v") where the type has one (the
 * launcher takes it for every aligned matrix, which every matrix of these
 * types is), the generic one for the rest. */
static const struct {
    uint32_t type;
    int family;
} k_batched_n[] = {
    {M40_GGML_F16, M40_GEMV_VEC},         {M40_GGML_BF16, M40_GEMV_VEC},
    {M40_GGML_Q4_1, M40_GEMV_VEC},        {M40_GGML_Q5_0, M40_GEMV_VEC},
    {M40_GGML_Q5_1, M40_GEMV_VEC},        {M40_GGML_Q5_K, M40_GEMV_VEC},
    {M40_GGML_Q6_K, M40_GEMV_VEC},        {M40_GGML_Q4_0, M40_GEMV_GENERIC},
    {M40_GGML_Q8_0, M40_GEMV_GENERIC},    {M40_GGML_Q2_K, M40_GEMV_GENERIC},
    {M40_GGML_Q3_K, M40_GEMV_GENERIC},    {M40_GGML_IQ4_NL, M40_GEMV_GENERIC},
    {M40_GGML_IQ4_XS, M40_GEMV_GENERIC},  {M40_GGML_IQ2_XXS, M40_GEMV_GENERIC},
    {M40_GGML_IQ2_XS, M40_GEMV_GENERIC},  {M40_GGML_IQ2_S, M40_GEMV_GENERIC},
    {M40_GGML_IQ3_XXS, M40_GEMV_GENERIC}, {M40_GGML_IQ3_S, M40_GEMV_GENERIC},
};

/* The head dims with a tiled prompt-attention kernel (attn_tile.cu). */
static const int k_tile_dims[5] = {64, 80, 96, 128, 256};

/* The suffix of type's kernels (k_type_kernels), "" if none. */
static const char *type_suffix(uint32_t type) {
    for (size_t i = 0; i < sizeof k_type_kernels / sizeof k_type_kernels[0]; i++) {
        if (k_type_kernels[i].type == type)
            return k_type_kernels[i].suffix;
    }
    return "";
}

static int get_fn(m40_gpu *gpu, const char *name, m40_cu_function *fn, m40_err *err) {
    return m40_gpu_function(gpu, name, fn, err);
}

static int load_gemv(m40_cuda_ops *ops, m40_gpu *gpu, m40_err *err) {
    for (size_t v = 0; v < sizeof k_gemv_variants / sizeof k_gemv_variants[0]; v++) {
        for (size_t i = 0; i < sizeof k_type_kernels / sizeof k_type_kernels[0]; i++) {
            uint32_t t = k_type_kernels[i].type;
            if (k_gemv_variants[v].only != M40_GGML_TYPE_COUNT && k_gemv_variants[v].only != t)
                continue;
            for (int lg = k_gemv_variants[v].min_lg; lg <= k_gemv_variants[v].max_lg; lg++) {
                char name[64];
                snprintf(name, sizeof name, "m40_gemv_%s%s_rpb%d", k_type_kernels[i].suffix,
                         k_gemv_variants[v].infix, 1 << lg);
                if (get_fn(gpu, name, &ops->gemv[k_gemv_variants[v].family][t][lg], err))
                    return -1;
            }
        }
    }
    /* the batched kernels, batches 2..M40_GEMVB_MAX */
    for (size_t i = 0; i < sizeof k_batched / sizeof k_batched[0]; i++) {
        for (int n = 2; n <= M40_GEMVB_MAX; n++) {
            char name[64];
            snprintf(name, sizeof name, "m40_gemvb_%s_nb%d", k_batched[i].name, n);
            if (get_fn(gpu, name, &ops->gemvb[k_batched[i].type][n], err))
                return -1;
            if (k_batched[i].family != M40_GEMV_REPACKED)
                continue;
            snprintf(name, sizeof name, "m40_gemvb_%s8_nb%d", k_batched[i].name, n);
            if (get_fn(gpu, name, &ops->gemvb8[k_batched[i].type][n], err))
                return -1;
            snprintf(name, sizeof name, "m40_gemvb_%s16_nb%d", k_batched[i].name, n);
            if (get_fn(gpu, name, &ops->gemvb16[k_batched[i].type][n], err))
                return -1;
        }
    }
    for (size_t i = 0; i < sizeof k_batched_n / sizeof k_batched_n[0]; i++) {
        uint32_t t = k_batched_n[i].type;
        int f = k_batched_n[i].family;
        char name[64];
        snprintf(name, sizeof name, "m40_gemvb_%s%s_n", type_suffix(t),
                 f == M40_GEMV_VEC ? "_v" : "");
        if (get_fn(gpu, name, &ops->gemvb_n[f][t], err))
            return -1;
    }
    /* F32 rows: one warp per row, 4 rows per block */
    return get_fn(gpu, "m40_gemv_f32_v", &ops->gemv[M40_GEMV_VEC][M40_GGML_F32][2], err);
}

int m40_cuda_ops_init(m40_cuda_ops *ops, m40_gpu *gpu, m40_err *err) {
    memset(ops, 0, sizeof *ops);
    ops->gpu = gpu;
    ops->stream = gpu->stream;
    ops->gemvb_piece = M40_GEMVB_MAX;
    ops->attn_scalar = !M40_CUDA_VEC_BY_DEFAULT;
    ops->attn_heads_inner = 1;
    if (load_gemv(ops, gpu, err))
        return -1;
    for (size_t i = 0; i < sizeof k_type_kernels / sizeof k_type_kernels[0]; i++) {
        char name[64];
        uint32_t t = k_type_kernels[i].type;
        snprintf(name, sizeof name, "m40_dequant_rows_%s", k_type_kernels[i].suffix);
        if (get_fn(gpu, name, &ops->dequant_rows[t], err))
            return -1;
    }
    if (get_fn(gpu, "m40_dequant_rows_q4_0r", &ops->dequant_repacked[M40_GGML_Q4_0], err) ||
        get_fn(gpu, "m40_dequant_rows_q8_0r", &ops->dequant_repacked[M40_GGML_Q8_0], err) ||
        get_fn(gpu, "m40_dequant_rows_q6_kr", &ops->dequant_repacked[M40_GGML_Q6_K], err) ||
        get_fn(gpu, "m40_repack_q", &ops->repack, err) ||
        get_fn(gpu, "m40_repack_q6_k", &ops->repack_q6_k, err))
        return -1;
    const struct {
        const char *name;
        m40_cu_function *fn;
    } named[] = {
        {"m40_rmsnorm_f32", &ops->rmsnorm},
        {"m40_head_norm_f32", &ops->head_norm},
        {"m40_rope_table", &ops->rope_table},
        {"m40_rope_store", &ops->rope_store},
        {"m40_swiglu_f32", &ops->swiglu},
        {"m40_attn_partial", &ops->attn_partial},
        {"m40_attn_combine", &ops->attn_combine},
        {"m40_argmax_f32", &ops->argmax},
        {"m40_sgemm_nt", &ops->sgemm_nt},
        {"m40_add_bias_f32", &ops->add_bias},
        {"m40_kv_store_quant", &ops->kv_store_quant},
        {"m40_geglu_f32", &ops->geglu},
        {"m40_scale_f32", &ops->scale},
        {"m40_softcap_f32", &ops->softcap},
        {"m40_add_f32", &ops->add},
        {"m40_moe_route", &ops->moe_route},
        {"m40_copy_rows", &ops->copy_rows},
        {"m40_moe_combine", &ops->moe_combine},
    };
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        if (get_fn(gpu, named[i].name, named[i].fn, err))
            return -1;
    }
    /* by M40_CUDA_KV_* (F16, F32, Q8_0, Q4_0) */
    static const char *const tile_types[4] = {"f16", "f32", "q8_0", "q4_0"};
    for (int t = 0; t < 4; t++)
        for (int h = 0; h < 5; h++) {
            char name[64];
            snprintf(name, sizeof name, "m40_attn_tile_%s_h%d", tile_types[t], k_tile_dims[h]);
            if (get_fn(gpu, name, &ops->attn_tile[t][h], err))
                return -1;
        }
    static const char *const vec_types[3] = {"f16", "q8_0", "q4_0"};
    for (int t = 0; t < 3; t++)
        for (int h = 0; h < 3; h++)
            for (int g = 0; g < 4; g++) {
                char name[64];
                snprintf(name, sizeof name, "m40_attn_vec_%s_h%d_g%d", vec_types[t], 64 << h,
                         1 << g);
                if (get_fn(gpu, name, &ops->attn_vec[t][h][g], err))
                    return -1;
            }
    return 0;
}

int m40_cuda_type_supported(const m40_cuda_ops *ops, uint32_t type) {
    return type < M40_GGML_TYPE_COUNT && ops->gemv[M40_GEMV_GENERIC][type][2] &&
           ops->dequant_rows[type];
}

static int launch(m40_cuda_ops *ops, m40_cu_function fn, unsigned gx, unsigned gy, unsigned gz,
                  unsigned threads, unsigned shmem, void **args, m40_err *err) {
    return m40_gpu_launch_on(ops->gpu, ops->stream, fn, gx, gy, gz, threads, shmem, args, err);
}

static int launch_1d(m40_cuda_ops *ops, m40_cu_function fn, unsigned blocks, unsigned threads,
                     unsigned shmem, void **args, m40_err *err) {
    return launch(ops, fn, blocks, 1, 1, threads, shmem, args, err);
}

static unsigned blocks_for(long long n, unsigned threads) {
    return (unsigned)((n + threads - 1) / threads);
}

static int need_type(const m40_cuda_ops *ops, uint32_t type, m40_err *err) {
    if (!m40_cuda_type_supported(ops, type))
        return m40_errf(err, "no CUDA kernel for weight type %s", m40_ggml_type_name(type));
    return 0;
}

int m40_cuda_gemv_kernel(m40_cuda_ops *ops, m40_cu_function fn, int rpb, const m40_dweight *w,
                         m40_dptr y, m40_dptr x, m40_dptr bias, m40_dptr res, m40_err *err) {
    if (w->cols % 32 != 0)
        return m40_errf(err, "gemv: %d columns is not a multiple of 32", w->cols);
    if (x % 16 != 0)
        return m40_errf(err, "gemv: x is not 16-byte aligned");
    int rows = w->rows, cols = w->cols;
    long long rb = w->row_bytes;
    m40_dptr wp = w->ptr;
    void *args[] = {&y, &wp, &x, &bias, &res, &rows, &cols, &rb};
    return launch_1d(ops, fn, blocks_for(rows, (unsigned)rpb), 128, 0, args, err);
}

/* The variant of `family` for a matrix of `rows` rows: the most rows per
 * block that still leaves 1.5 blocks per SM (fewer blocks than that left
 * SMs idle in the H200 measurements); *lg_out gets log2 of its rows. */
static m40_cu_function pick_gemv(const m40_cuda_ops *ops, int family, uint32_t type, int rows,
                                 int *lg_out) {
    int min_blocks = ops->gpu->info.sm_count * 3 / 2, lg = M40_GEMV_MAX_LG;
    while (lg >= 0 && !ops->gemv[family][type][lg])
        lg--;
    while (lg > 0 && ops->gemv[family][type][lg - 1] && (rows >> lg) < min_blocks)
        lg--;
    *lg_out = lg;
    return lg >= 0 ? ops->gemv[family][type][lg] : NULL;
}

/* The row alignment the VEC family's kernel of `type` needs: 16-byte loads,
 * except the types whose blocks allow only narrower ones (Q6_K's 210 and
 * Q5_0's 22 bytes: 2-byte loads; Q4_1's 20 and Q5_1's 24: 4-byte loads). */
static int vec_align(uint32_t type) {
    switch (type) {
        case M40_GGML_Q6_K:
        case M40_GGML_Q5_0:
            return 2;
        case M40_GGML_Q4_1:
        case M40_GGML_Q5_1:
            return 4;
        default:
            return 16;
    }
}

/* The kernel family the single-row product of w uses. */
static int gemv_family(const m40_cuda_ops *ops, const m40_dweight *w) {
    int lg;
    if (w->repacked)
        return M40_GEMV_REPACKED;
    if (pick_gemv(ops, M40_GEMV_VEC, w->type, w->rows, &lg) && w->ptr % vec_align(w->type) == 0 &&
        w->row_bytes % vec_align(w->type) == 0)
        return M40_GEMV_VEC;
    return M40_GEMV_GENERIC;
}

int m40_cuda_gemv(m40_cuda_ops *ops, const m40_dweight *w, m40_dptr y, m40_dptr x, m40_dptr bias,
                  m40_dptr res, m40_err *err) {
    if (need_type(ops, w->type, err))
        return -1;
    int family = gemv_family(ops, w), lg = 0;
    m40_cu_function fn = pick_gemv(ops, family, w->type, w->rows, &lg);
    if (!fn)
        return m40_errf(err, "no mat-vec kernel for %s", m40_ggml_type_name(w->type));
    return m40_cuda_gemv_kernel(ops, fn, 1 << lg, w, y, x, bias, res, err);
}

/* Rows a block of the repacked batched kernels for a matrix of `rows`
 * rows: ops->gemvb_rows where set (16 only so: not yet timed), else 8
 * when the matrix still gives every SM enough blocks, 4 otherwise. 8 rows
 * a block issue fewer instructions a weight and input and read each
 * input's x once for 8 rows instead of 4; at 2 resident blocks an SM, the
 * last, partly empty wave is what they risk. On a GPU of at most M40_GEMVB_R8_MAX_SMS SMs (an
 * M40's class, bound by issue) a matrix must give each SM
 * M40_GEMVB_R8_BLOCKS_PER_SM blocks (not measured: no M40 here). On an
 * H100 a 7B's 4096-row matrices give 3.9 blocks an SM, and its decode was
 * 7-11% faster with 8 rows at 8, 16 and 32 sequences, 2% slower at 4
 * (docs/performance.md, eighteenth session): larger GPUs need
 * M40_GEMVB_R8_BLOCKS_PER_SM_BIG. Smaller matrices keep 4 (unmeasured). */
#define M40_GEMVB_R8_MAX_SMS           48
#define M40_GEMVB_R8_BLOCKS_PER_SM     12
#define M40_GEMVB_R8_BLOCKS_PER_SM_BIG 3
static int repacked_rows(const m40_cuda_ops *ops, int rows) {
    if (ops->gemvb_rows == 4 || ops->gemvb_rows == 8 || ops->gemvb_rows == 16)
        return ops->gemvb_rows;
    const int sms = ops->gpu->info.sm_count;
    const int per_sm =
        sms <= M40_GEMVB_R8_MAX_SMS ? M40_GEMVB_R8_BLOCKS_PER_SM : M40_GEMVB_R8_BLOCKS_PER_SM_BIG;
    return rows / 8 >= per_sm * sms ? 8 : 4;
}

/* The batched kernel for n inputs of w: the one that shares the loop of
 * the single-row kernel a row of w alone runs (k_batched, else gemvb_n), or
 * NULL; *rpb gets the rows each of its blocks computes (gemv_batch.cu's
 * M40_GEMVB_R, M40_GEMVB_R8 (or twice it), M40_GEMVB_R_Q4_K,
 * M40_GEMVB_R_GROUP and M40_GEMVB_R_HALF). */
static m40_cu_function gemvb_kernel(const m40_cuda_ops *ops, const m40_dweight *w, int n,
                                    unsigned *rpb) {
    int family = gemv_family(ops, w);
    for (size_t i = 0; i < sizeof k_batched / sizeof k_batched[0]; i++) {
        if (k_batched[i].type == w->type && k_batched[i].family == family) {
            const int shape = family == M40_GEMV_REPACKED ? repacked_rows(ops, w->rows) : 4;
            if (shape > 4) {
                *rpb = (unsigned)shape;
                return shape == 16 ? ops->gemvb16[w->type][n] : ops->gemvb8[w->type][n];
            }
            *rpb = w->type == M40_GGML_Q4_K && n <= 4 ? 8 : 4;
            return ops->gemvb[w->type][n];
        }
    }
    int half = family == M40_GEMV_VEC && (w->type == M40_GGML_F16 || w->type == M40_GGML_BF16);
    *rpb = half ? 4 : 2;
    return ops->gemvb_n[family][w->type];
}

/* One piece of at most M40_GEMVB_MAX inputs. */
static int gemv_piece(m40_cuda_ops *ops, const m40_dweight *w, m40_dptr y, int ldy, m40_dptr x,
                      int ldx, int n, m40_dptr bias, int accumulate, m40_err *err) {
    /* a batched kernel does what the single-row kernel of the same family
     * does (gemv_batch.cu); weights without one run one single-row product
     * per input. */
    unsigned rpb = 1;
    m40_cu_function fn = n > 1 ? gemvb_kernel(ops, w, n, &rpb) : NULL;
    if (n == 1 || !fn) {
        for (int c = 0; c < n; c++) {
            m40_dptr yc = y + (size_t)c * ldy * sizeof(float);
            if (m40_cuda_gemv(ops, w, yc, x + (size_t)c * ldx * sizeof(float), bias,
                              accumulate ? yc : 0, err))
                return -1;
        }
        return 0;
    }
    int rows = w->rows, cols = w->cols;
    long long rb = w->row_bytes;
    m40_dptr wp = w->ptr, res = accumulate ? y : 0;
    void *args[] = {&y, &wp, &x, &bias, &res, &rows, &cols, &rb, &ldy, &ldx, &n};
    /* 128 threads a block, but 256 for the 16-row shape (two groups of 8) */
    return launch_1d(ops, fn, blocks_for(rows, rpb), rpb == 16 ? 256 : 128, 0, args, err);
}

int m40_cuda_gemv_batch(m40_cuda_ops *ops, const m40_dweight *w, m40_dptr y, int ldy, m40_dptr x,
                        int ldx, int n, m40_dptr bias, int accumulate, m40_err *err) {
    if (need_type(ops, w->type, err))
        return -1;
    if (n <= 0 || ldx % 4 != 0 || ldx < w->cols || ldy < w->rows || x % 16 != 0)
        return m40_errf(err, "gemv_batch: %d inputs of %d floats (x %s16-byte aligned)", n, ldx,
                        x % 16 ? "not " : "");
    /* pieces of nearly equal size: 6 inputs run as 3 + 3, not 4 + 2 */
    int piece =
        ops->gemvb_piece > 0 && ops->gemvb_piece < M40_GEMVB_MAX ? ops->gemvb_piece : M40_GEMVB_MAX;
    int pieces = (n + piece - 1) / piece;
    for (int c = 0, p = 0; p < pieces; p++) {
        int k = (n - c) / (pieces - p);
        if (gemv_piece(ops, w, y + (size_t)c * ldy * sizeof(float), ldy,
                       x + (size_t)c * ldx * sizeof(float), ldx, k, bias, accumulate, err))
            return -1;
        c += k;
    }
    return 0;
}

/* Threads a block of the dequantize kernels: dequant.cu's
 * M40_DEQUANT_THREADS, for which their shared buffer is sized. */
#define M40_DEQUANT_THREADS 128

int m40_cuda_dequant_rows(m40_cuda_ops *ops, const m40_dweight *w, m40_dptr dst, m40_dptr ids,
                          int r0, int n_rows, m40_err *err) {
    if (need_type(ops, w->type, err))
        return -1;
    if (w->cols % 32 != 0)
        return m40_errf(err, "dequant: %d columns is not a multiple of 32", w->cols);
    int cols = w->cols, rows = w->rows;
    long long rb = w->row_bytes, threads = (long long)n_rows * (cols / 32);
    m40_dptr wp = w->ptr;
    if (w->repacked) {
        void *args[] = {&dst, &wp, &rows, &cols, &ids, &r0, &n_rows};
        return launch_1d(ops, ops->dequant_repacked[w->type],
                         blocks_for(threads, M40_DEQUANT_THREADS), M40_DEQUANT_THREADS, 0, args,
                         err);
    }
    void *args[] = {&dst, &wp, &rb, &cols, &ids, &r0, &n_rows};
    return launch_1d(ops, ops->dequant_rows[w->type], blocks_for(threads, M40_DEQUANT_THREADS),
                     M40_DEQUANT_THREADS, 0, args, err);
}

int m40_cuda_can_repack(const m40_dweight *w) {
    const int per_block = w->type == M40_GGML_Q6_K ? 256 : 32;
    return (w->type == M40_GGML_Q4_0 || w->type == M40_GGML_Q8_0 || w->type == M40_GGML_Q6_K) &&
           w->rows % 8 == 0 && w->cols % per_block == 0;
}

int m40_cuda_repack(m40_cuda_ops *ops, m40_dweight *w, m40_dptr tmp, m40_err *err) {
    if (!m40_cuda_can_repack(w) || w->repacked)
        return 0;
    size_t bytes = (size_t)w->row_bytes * (size_t)w->rows;
    if (m40_gpu_copy_on(ops->gpu, ops->stream, tmp, w->ptr, bytes, err))
        return -1;
    int rows = w->rows, nb = w->cols / 32, qbytes = w->type == M40_GGML_Q4_0 ? 16 : 32;
    long long n_blocks = (long long)rows * nb;
    m40_dptr dst = w->ptr;
    const int q6 = w->type == M40_GGML_Q6_K; /* m40_repack_q6_k: no qbytes */
    void *args[] = {&dst, &tmp, &rows, &nb, &qbytes}, *args6[] = {&dst, &tmp, &rows, &nb};
    if (launch_1d(ops, q6 ? ops->repack_q6_k : ops->repack, blocks_for(n_blocks, 256), 256, 0,
                  q6 ? args6 : args, err))
        return -1;
    w->repacked = 1;
    return 0;
}

int m40_cuda_rmsnorm(m40_cuda_ops *ops, m40_dptr y, m40_dptr x, m40_dptr w, int rows, int n,
                     float eps, m40_err *err) {
    void *args[] = {&y, &x, &w, &n, &eps};
    return launch_1d(ops, ops->rmsnorm, (unsigned)rows, 1024, 0, args, err);
}

int m40_cuda_head_norm(m40_cuda_ops *ops, m40_dptr x, m40_dptr wq, m40_dptr wk, int T, int ld,
                       int n_head, int n_head_kv, int head_dim, float eps, m40_err *err) {
    if (head_dim <= 0 || head_dim > 256 || T <= 0)
        return m40_errf(err, "head_norm: head_dim %d (at most 256), %d rows", head_dim, T);
    void *args[] = {&x, &wq, &wk, &ld, &n_head, &head_dim, &eps};
    return launch(ops, ops->head_norm, (unsigned)(n_head + n_head_kv), (unsigned)T, 1, 32, 0, args,
                  err);
}

int m40_cuda_rope_table(m40_cuda_ops *ops, m40_dptr cs, m40_dptr pos, int n_tokens, int rope_dim,
                        float freq_base, float freq_scale, m40_dptr freq_factors,
                        const m40_cuda_rope_ext *ext, m40_err *err) {
    int yarn = ext ? ext->yarn : 0;
    double low = ext ? ext->low : 0.0, high = ext ? ext->high : 0.0;
    double mscale = ext ? ext->mscale : 1.0;
    void *args[] = {&cs,           &pos,  &n_tokens, &rope_dim, &freq_base, &freq_scale,
                    &freq_factors, &yarn, &low,      &high,     &mscale};
    long long threads = (long long)n_tokens * (rope_dim / 2);
    return launch_1d(ops, ops->rope_table, blocks_for(threads, 128), 128, 0, args, err);
}

int m40_cuda_rope_store_rows(m40_cuda_ops *ops, m40_dptr x, m40_dptr cs, m40_dptr pos,
                             m40_dptr slot, long long slot_stride, m40_dptr k_cache,
                             m40_dptr v_cache, int n_tokens, int n_head, int n_head_kv,
                             int head_dim, int rope_dim, m40_rope_style style, int row_stride,
                             int kv_type, m40_err *err) {
    if (rope_dim % 2 != 0 || rope_dim > head_dim || head_dim % 2 != 0 || head_dim / 2 > 1024)
        return m40_errf(err, "rope: rope_dim %d does not fit head_dim %d", rope_dim, head_dim);
    int neox = style == M40_ROPE_NEOX;
    void *args[] = {&x,      &cs,        &pos,      &slot,     &slot_stride, &k_cache,    &v_cache,
                    &n_head, &n_head_kv, &head_dim, &rope_dim, &neox,        &row_stride, &kv_type};
    if (launch(ops, ops->rope_store, (unsigned)n_tokens, (unsigned)(n_head + 2 * n_head_kv), 1,
               (unsigned)(head_dim / 2), 0, args, err))
        return -1;
    if (kv_type != M40_CUDA_KV_Q8_0 && kv_type != M40_CUDA_KV_Q4_0)
        return 0;
    if ((n_head_kv * head_dim) % 32 != 0)
        return m40_errf(err, "kv store: a quantized cache needs rows of whole blocks of 32");
    void *qargs[] = {&x,      &pos,       &slot,     &slot_stride, &k_cache, &v_cache,
                     &n_head, &n_head_kv, &head_dim, &row_stride,  &kv_type};
    return launch(ops, ops->kv_store_quant, (unsigned)n_tokens,
                  (unsigned)(2 * n_head_kv * head_dim / 32), 1, 32, 0, qargs, err);
}

int m40_cuda_rope_store(m40_cuda_ops *ops, m40_dptr x, m40_dptr cs, m40_dptr pos, m40_dptr k_cache,
                        m40_dptr v_cache, int n_tokens, int n_head, int n_head_kv, int head_dim,
                        int rope_dim, m40_rope_style style, int row_stride, int kv_type,
                        m40_err *err) {
    return m40_cuda_rope_store_rows(ops, x, cs, pos, 0, 0, k_cache, v_cache, n_tokens, n_head,
                                    n_head_kv, head_dim, rope_dim, style, row_stride, kv_type, err);
}

int m40_cuda_swiglu(m40_cuda_ops *ops, m40_dptr y, m40_dptr gate, m40_dptr up, int rows, int width,
                    int in_stride, m40_err *err) {
    void *args[] = {&y, &gate, &up, &rows, &width, &in_stride};
    return launch_1d(ops, ops->swiglu, blocks_for((long long)rows * width, 256), 256, 0, args, err);
}

int m40_cuda_geglu(m40_cuda_ops *ops, m40_dptr y, m40_dptr gate, m40_dptr up, int rows, int width,
                   int in_stride, m40_err *err) {
    void *args[] = {&y, &gate, &up, &rows, &width, &in_stride};
    return launch_1d(ops, ops->geglu, blocks_for((long long)rows * width, 256), 256, 0, args, err);
}

int m40_cuda_scale(m40_cuda_ops *ops, m40_dptr x, int n, float s, m40_err *err) {
    void *args[] = {&x, &n, &s};
    return launch_1d(ops, ops->scale, blocks_for(n, 256), 256, 0, args, err);
}

int m40_cuda_softcap(m40_cuda_ops *ops, m40_dptr x, int n, float cap, m40_err *err) {
    void *args[] = {&x, &n, &cap};
    return launch_1d(ops, ops->softcap, blocks_for(n, 256), 256, 0, args, err);
}

int m40_cuda_add(m40_cuda_ops *ops, m40_dptr y, m40_dptr a, m40_dptr b, int n, m40_err *err) {
    void *args[] = {&y, &a, &b, &n};
    return launch_1d(ops, ops->add, blocks_for(n, 256), 256, 0, args, err);
}

int m40_cuda_moe_route(m40_cuda_ops *ops, m40_dptr ids, m40_dptr w, m40_dptr logits, int n_tokens,
                       int n_expert, int k, m40_err *err) {
    if (k <= 0 || k > n_expert)
        return m40_errf(err, "moe: %d experts of %d per token", k, n_expert);
    void *args[] = {&ids, &w, &logits, &n_tokens, &n_expert, &k};
    return launch_1d(ops, ops->moe_route, blocks_for(n_tokens, 64), 64, 0, args, err);
}

int m40_cuda_copy_rows(m40_cuda_ops *ops, m40_dptr dst, m40_dptr dst_idx, m40_dptr src,
                       m40_dptr src_idx, int n, int width, m40_err *err) {
    void *args[] = {&dst, &dst_idx, &src, &src_idx, &n, &width};
    return launch(ops, ops->copy_rows, blocks_for(width, 256), (unsigned)n, 1, 256, 0, args, err);
}

int m40_cuda_moe_combine(m40_cuda_ops *ops, m40_dptr x, m40_dptr y, m40_dptr w, int n_tokens, int k,
                         int d, m40_err *err) {
    void *args[] = {&x, &y, &w, &n_tokens, &k, &d};
    return launch(ops, ops->moe_combine, blocks_for(d, 256), (unsigned)n_tokens, 1, 256, 0, args,
                  err);
}

int m40_cuda_add_bias(m40_cuda_ops *ops, m40_dptr y, m40_dptr bias, int n, int n_rows, int ld,
                      m40_err *err) {
    void *args[] = {&y, &bias, &n, &n_rows, &ld};
    return launch_1d(ops, ops->add_bias, blocks_for((long long)n * n_rows, 256), 256, 0, args, err);
}

/* Blocks per SM a decode step's split kernel should fill, about once:
 * longer splits than that leave fewer, longer blocks, shorter ones a
 * second partial wave and more partials (bench_kernels --attn, H100: the
 * best split gave 1024 blocks with one query head per KV head and 512 with
 * four, over 132 SMs; docs/long-context.md). */
static int decode_blocks_per_sm(int group) {
    return group == 1 ? 8 : 4;
}

int m40_cuda_attn_decode_chunk(const m40_cuda_attn_dims *d, int n_pos) {
    /* by the power-of-two bucket n_pos is in, as forward.c keeps its decode
     * graphs, so a row splits its context alike alone, in a graph or beside
     * other rows */
    long long end = M40_ATTN_CHUNK_DECODE;
    while (end < n_pos)
        end *= 2;
    const int group = d->n_head_kv > 0 ? d->n_head / d->n_head_kv : 1;
    /* at most M40_ATTN_DECODE_MAX_SMS counted: the scratch is sized for it */
    const int sms = d->sm_count < 1                         ? 1
                    : d->sm_count > M40_ATTN_DECODE_MAX_SMS ? M40_ATTN_DECODE_MAX_SMS
                                                            : d->sm_count;
    const long long target = (long long)sms * decode_blocks_per_sm(group);
    /* the longest split whose scores fit the kernels' 48 KiB of shared
     * memory beside the group's queries: (group * (hd + chunk)) floats */
    int cap = M40_ATTN_CHUNK_DECODE_MAX;
    while (cap > M40_ATTN_CHUNK_DECODE && (long long)group * (d->head_dim + cap) > 12288)
        cap /= 2;
    int chunk = M40_ATTN_CHUNK_DECODE;
    while (chunk < cap && (end + chunk - 1) / chunk * d->n_head_kv > target)
        chunk *= 2;
    return chunk;
}

int m40_cuda_attn_splits(int n_pos, int chunk) {
    return (n_pos + chunk - 1) / chunk;
}

size_t m40_cuda_attn_scratch_floats(int n_q, int n_head, int head_dim, int n_pos, int chunk) {
    size_t rows = (size_t)n_q * n_head * m40_cuda_attn_splits(n_pos, chunk);
    return rows * head_dim + rows * 2;
}

int m40_cuda_attn_decode_splits(const m40_cuda_attn_dims *d, int n_pos) {
    /* the chunk is one per bucket: within one, the most splits are at its
     * end (or at n_pos, in the last) */
    int most = 1;
    for (long long end = M40_ATTN_CHUNK_DECODE;; end *= 2) {
        const int n = end < n_pos ? (int)end : n_pos;
        const int s = m40_cuda_attn_splits(n, m40_cuda_attn_decode_chunk(d, n));
        most = s > most ? s : most;
        if (end >= n_pos)
            return most;
    }
}

/* The split kernel's 8-elements-a-load form for an F16, Q8_0 or Q4_0 cache
 * whose head_dim is 64, 128 or 256 with at most 8 query heads per KV head
 * (the smallest of its 1/2/4/8 forms that holds the group); NULL: the
 * per-element kernel (FP32 caches, other shapes, the scalar-attn switch). */
static m40_cu_function attn_vec_kernel(const m40_cuda_ops *ops, int head_dim, int group,
                                       int kv_type, m40_dptr k_cache, m40_dptr v_cache) {
    int t = kv_type == M40_CUDA_KV_F16    ? 0
            : kv_type == M40_CUDA_KV_Q8_0 ? 1
            : kv_type == M40_CUDA_KV_Q4_0 ? 2
                                          : -1;
    int h = head_dim == 64 ? 0 : head_dim == 128 ? 1 : head_dim == 256 ? 2 : -1;
    int g = group <= 1 ? 0 : group <= 2 ? 1 : group <= 4 ? 2 : group <= 8 ? 3 : -1;
    /* FP16 rows are read 16 bytes at a time, quantized blocks 2 */
    if (ops->attn_scalar || t < 0 || h < 0 || g < 0 || (t == 0 && (k_cache % 16 || v_cache % 16)))
        return NULL;
    return ops->attn_vec[t][h][g];
}

/* out[n_q][n_head * head_dim] from the n_split partials of each row
 * (attention.cu's step 2). */
static int combine(m40_cuda_ops *ops, m40_dptr out, m40_dptr o_part, m40_dptr ml_part, int n_q,
                   int n_head, int head_dim, int n_split, m40_err *err) {
    void *args[] = {&out, &o_part, &ml_part, &n_head, &head_dim, &n_split};
    /* rows of head_dim threads, as many as M40_ATTN_COMBINE_THREADS holds
     * (attention.cu): the same for every launch of a model, so a row's
     * order of sums never depends on the batch */
    unsigned threads = (unsigned)(M40_ATTN_COMBINE_THREADS / head_dim * head_dim + 31) / 32 * 32;
    return launch(ops, ops->attn_combine, (unsigned)n_head, (unsigned)n_q, 1, threads, 0, args,
                  err);
}

/* Both attention launchers: slot and chunk_q 0 for one sequence. */
static int attention(m40_cuda_ops *ops, m40_dptr out, m40_dptr q, int q_stride, m40_dptr k_cache,
                     m40_dptr v_cache, m40_dptr slot, long long slot_stride, m40_dptr pos_q,
                     m40_dptr chunk_q, int n_q, int n_split, int chunk, int n_head, int n_head_kv,
                     int head_dim, int kv_type, const m40_cuda_attn_layer *layer, m40_dptr scratch,
                     m40_err *err) {
    if (n_head_kv <= 0 || n_head % n_head_kv != 0 || head_dim > 256 || chunk <= 0)
        return m40_errf(err, "attention: %d heads over %d KV heads of %d dims is not supported",
                        n_head, n_head_kv, head_dim);
    int group = n_head / n_head_kv;
    unsigned shmem = (unsigned)((group * head_dim + group * chunk) * sizeof(float));
    if (shmem > 48 * 1024)
        return m40_errf(err,
                        "attention: %d query heads per KV head need %u bytes of shared "
                        "memory (48 KiB at most)",
                        group, shmem);
    m40_dptr o_part = scratch;
    m40_dptr ml_part = scratch + (size_t)n_q * n_head * n_split * head_dim * sizeof(float);
    float scale = layer ? layer->scale : 1.0f / sqrtf((float)head_dim);
    int window = layer ? layer->window : 0;
    float softcap = layer ? layer->softcap : 0.0f;
    m40_cu_function vec = attn_vec_kernel(ops, head_dim, group, kv_type, k_cache, v_cache);
    int heads_inner = ops->attn_heads_inner;
    unsigned gx = (unsigned)(heads_inner ? n_head_kv : n_split);
    unsigned gy = (unsigned)(heads_inner ? n_split : n_head_kv);
    if (vec) {
        /* its row groups' sums reuse the shared memory (attention.cu) */
        unsigned red = (unsigned)(1024 * group * sizeof(float));
        void *vargs[] = {&o_part,      &ml_part, &q,       &k_cache,  &v_cache, &slot,
                         &slot_stride, &pos_q,   &chunk_q, &q_stride, &n_head,  &n_head_kv,
                         &chunk,       &n_split, &scale,   &window,   &softcap, &heads_inner};
        if (launch(ops, vec, gx, gy, (unsigned)n_q, 128, shmem > red ? shmem : red, vargs, err))
            return -1;
    } else {
        void *pargs[] = {&o_part, &ml_part,     &q,        &k_cache, &v_cache,
                         &slot,   &slot_stride, &pos_q,    &chunk_q, &q_stride,
                         &n_head, &n_head_kv,   &head_dim, &chunk,   &n_split,
                         &scale,  &kv_type,     &window,   &softcap, &heads_inner};
        if (launch(ops, ops->attn_partial, gx, gy, (unsigned)n_q, 128, shmem, pargs, err))
            return -1;
    }
    return combine(ops, out, o_part, ml_part, n_q, n_head, head_dim, n_split, err);
}

int m40_cuda_attention(m40_cuda_ops *ops, m40_dptr out, m40_dptr q, int q_stride, m40_dptr k_cache,
                       m40_dptr v_cache, m40_dptr pos_q, int n_q, int max_pos, int chunk,
                       int n_head, int n_head_kv, int head_dim, int kv_type,
                       const m40_cuda_attn_layer *layer, m40_dptr scratch, m40_err *err) {
    int n_split = chunk > 0 ? m40_cuda_attn_splits(max_pos + 1, chunk) : 0;
    return attention(ops, out, q, q_stride, k_cache, v_cache, 0, 0, pos_q, 0, n_q, n_split, chunk,
                     n_head, n_head_kv, head_dim, kv_type, layer, scratch, err);
}

/* The tiled kernel's index for a head_dim (k_tile_dims), -1: none. */
static int tile_kernel(int head_dim) {
    for (int i = 0; i < 5; i++)
        if (k_tile_dims[i] == head_dim)
            return i;
    return -1;
}

/* Its shared memory in floats: Q^T [hd][32], the larger of a K slice
 * [16][keys] and a V slice [vs][hd], each of 4 warps' weights [keys][8]
 * with a 4-float skew per 32nd of the keys, and the rows' last and first
 * keys [2][32] (keys 128, vs 16; head dim 256: keys 64, vs 4)
 * (M40_TILE_SMEM_FLOATS in attn_tile.cu). */
static unsigned tile_smem_floats(int head_dim) {
    int keys = head_dim <= 128 ? 128 : 64, vs = head_dim <= 128 ? 16 : 4;
    int stage = 16 * keys > vs * head_dim ? 16 * keys : vs * head_dim;
    return (unsigned)(head_dim * 32 + stage + 4 * (keys * 8 + 32 * 4) + 2 * 32);
}

int m40_cuda_attention_tiled_fits(int n_head, int n_head_kv, int head_dim) {
    return n_head_kv > 0 && n_head % n_head_kv == 0 && tile_kernel(head_dim) >= 0 &&
           n_head / n_head_kv <= 32;
}

size_t m40_cuda_attn_tiled_scratch_floats(int n_q, int n_head, int head_dim, int n_pos) {
    return m40_cuda_attn_scratch_floats(n_q, n_head, head_dim, n_pos, M40_ATTN_TILE_SPLIT);
}

int m40_cuda_attention_tiled(m40_cuda_ops *ops, m40_dptr out, m40_dptr q, int q_stride,
                             m40_dptr k_cache, m40_dptr v_cache, m40_dptr pos_q, int n_q,
                             int max_pos, int n_head, int n_head_kv, int head_dim, int kv_type,
                             const m40_cuda_attn_layer *layer, m40_dptr scratch, m40_err *err) {
    if (!m40_cuda_attention_tiled_fits(n_head, n_head_kv, head_dim))
        return m40_errf(err, "tiled attention: %d heads over %d KV heads of %d dims", n_head,
                        n_head_kv, head_dim);
    if (kv_type < M40_CUDA_KV_F16 || kv_type > M40_CUDA_KV_Q4_0)
        return m40_errf(err, "tiled attention: cache type %d", kv_type);
    /* FP16 and FP32 caches are read 16 bytes at a time (a quantized one by
     * the element); every layer and slot of them starts 16-byte aligned */
    if ((kv_type == M40_CUDA_KV_F16 || kv_type == M40_CUDA_KV_F32) &&
        (k_cache % 16 || v_cache % 16))
        return m40_errf(err, "tiled attention: a cache not 16-byte aligned");
    int bq = 32 / (n_head / n_head_kv);
    float scale = layer ? layer->scale : 1.0f / sqrtf((float)head_dim);
    int window = layer ? layer->window : 0;
    float softcap = layer ? layer->softcap : 0.0f;
    int n_split = m40_cuda_attn_splits(max_pos + 1, M40_ATTN_TILE_SPLIT);
    m40_dptr o_part = scratch;
    m40_dptr ml_part = scratch + (size_t)n_q * n_head * n_split * head_dim * sizeof(float);
    void *args[] = {&o_part,   &ml_part, &q,         &k_cache, &v_cache, &pos_q,  &n_q,
                    &q_stride, &n_head,  &n_head_kv, &bq,      &scale,   &window, &softcap};
    if (launch(ops, ops->attn_tile[kv_type][tile_kernel(head_dim)], (unsigned)((n_q + bq - 1) / bq),
               (unsigned)n_head_kv, (unsigned)n_split, 128,
               tile_smem_floats(head_dim) * sizeof(float), args, err))
        return -1;
    return combine(ops, out, o_part, ml_part, n_q, n_head, head_dim, n_split, err);
}

int m40_cuda_attention_rows(m40_cuda_ops *ops, m40_dptr out, m40_dptr q, int q_stride,
                            m40_dptr k_cache, m40_dptr v_cache, m40_dptr slot,
                            long long slot_stride, m40_dptr pos_q, m40_dptr chunk_q, int n_q,
                            int max_pos, int chunk, int n_head, int n_head_kv, int head_dim,
                            int kv_type, const m40_cuda_attn_layer *layer, m40_dptr scratch,
                            m40_err *err) {
    const m40_cuda_attn_dims dims = {n_head, n_head_kv, head_dim, ops->gpu->info.sm_count};
    int n_split = m40_cuda_attn_decode_splits(&dims, max_pos + 1);
    return attention(ops, out, q, q_stride, k_cache, v_cache, slot, slot_stride, pos_q, chunk_q,
                     n_q, n_split, chunk, n_head, n_head_kv, head_dim, kv_type, layer, scratch,
                     err);
}

int m40_cuda_argmax_rows(m40_cuda_ops *ops, m40_dptr out, m40_dptr x, int n, int rows,
                         m40_err *err) {
    void *args[] = {&out, &x, &n};
    return launch_1d(ops, ops->argmax, (unsigned)rows, 1024, 0, args, err);
}

int m40_cuda_argmax(m40_cuda_ops *ops, m40_dptr out, m40_dptr x, int n, m40_err *err) {
    return m40_cuda_argmax_rows(ops, out, x, n, 1, err);
}

int m40_cuda_sgemm_nt(m40_cuda_ops *ops, m40_dptr c, m40_dptr a, m40_dptr b, int m, int n, int k,
                      int ldc, int accumulate, m40_err *err) {
    void *args[] = {&c, &a, &b, &m, &n, &k, &ldc, &accumulate};
    return launch(ops, ops->sgemm_nt, blocks_for(n, 64), blocks_for(m, 64), 1, 256, 0, args, err);
}
