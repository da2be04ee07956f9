/* test_cuda_launch.c - the CUDA launcher's choices, without a GPU.
 *
 *   test_cuda_launch CUOBJDUMP FATBIN GEMV_BATCH_CU
 *
 * The kernels a CUDA backend asks the driver for are looked up by name at
 * start-up, and which one a product launches, on how many blocks, is
 * decided in ops.c. Both can be checked on a machine without a GPU: a
 * fake driver answers cuModuleGetFunction from the names of the kernels
 * in the build's fatbin (listed by cuobjdump) and records every
 * cuLaunchKernel instead of running it. So this test says:
 *   - every kernel m40_cuda_ops_init asks for is in the fatbin;
 *   - a batch of decode rows runs one batched kernel per piece of at most
 *     8 inputs for every weight type but F32 (gemv_batch.cu), the kernel
 *     that shares the loop of the type's single-row kernel, on the grid
 *     its rows per block need (as gemv_batch.cu defines them, read from
 *     GEMV_BATCH_CU: ops.c mirrors them), told how many inputs it has;
 *   - F32 rows run one single-row product per input.
 * Whether the kernels compute the right bits is test_gpu_ops' to say.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/ops.h"
#include "check.h"
#include "quant/ggml_types.h"

enum { MAX_NAMES = 1024, MAX_LAUNCHES = 64 };

static char *g_names[MAX_NAMES];
static int g_n_names;

typedef struct launch {
    int fn; /* index into g_names */
    unsigned blocks, threads;
    int n; /* a `_n` kernel's last argument, its inputs */
} launch;

static launch g_launches[MAX_LAUNCHES];
static int g_n_launches;

/* Every kernel name in the fatbin, from `cuobjdump -res-usage`. */
static int read_names(const char *cuobjdump, const char *fatbin) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' -res-usage '%s'", cuobjdump, fatbin);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[1024];
    while (fgets(line, sizeof line, p) && g_n_names < MAX_NAMES) {
        char name[256];
        if (sscanf(line, " Function %255[A-Za-z0-9_]:", name) == 1)
            g_names[g_n_names++] = strdup(name);
    }
    return pclose(p) == 0 && g_n_names > 0 ? 0 : -1;
}

/* The rows per block gemv_batch.cu defines: M40_GEMVB_R (repacked),
 * M40_GEMVB_R_GROUP and M40_GEMVB_R_HALF. */
static int g_r_repacked, g_r_group, g_r_half;

static int read_rows_per_block(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char name[64];
        int v;
        if (sscanf(line, "#define %63s %d", name, &v) != 2)
            continue;
        if (strcmp(name, "M40_GEMVB_R") == 0)
            g_r_repacked = v;
        else if (strcmp(name, "M40_GEMVB_R_GROUP") == 0)
            g_r_group = v;
        else if (strcmp(name, "M40_GEMVB_R_HALF") == 0)
            g_r_half = v;
    }
    fclose(f);
    return g_r_repacked > 0 && g_r_group > 0 && g_r_half > 0 ? 0 : -1;
}

static const char *fn_name(int fn) {
    return fn >= 0 && fn < g_n_names ? g_names[fn] : "?";
}

/* ---- the fake driver --------------------------------------------------------- */

static m40_cu_result fake_get_function(m40_cu_function *f, m40_cu_module mod, const char *name) {
    (void)mod;
    for (int i = 0; i < g_n_names; i++) {
        if (strcmp(g_names[i], name) == 0) {
            *f = (m40_cu_function)(uintptr_t)(i + 1);
            return M40_CU_SUCCESS;
        }
    }
    return 500; /* CUDA_ERROR_NOT_FOUND */
}

static m40_cu_result fake_launch(m40_cu_function f, unsigned gx, unsigned gy, unsigned gz,
                                 unsigned bx, unsigned by, unsigned bz, unsigned shmem,
                                 m40_cu_stream stream, void **params, void **extra) {
    (void)gy, (void)gz, (void)by, (void)bz, (void)shmem, (void)stream, (void)extra;
    if (g_n_launches == MAX_LAUNCHES)
        return 1;
    launch *l = &g_launches[g_n_launches++];
    l->fn = (int)(uintptr_t)f - 1;
    l->blocks = gx;
    l->threads = bx;
    const char *name = fn_name(l->fn);
    size_t len = strlen(name);
    /* the batched kernels' parameters: y, w, x, bias, res, rows, cols,
     * row_bytes, ldy, ldx, n */
    l->n = len > 2 && strcmp(name + len - 2, "_n") == 0 ? *(const int *)params[10] : 0;
    return M40_CU_SUCCESS;
}

static m40_cu_result fake_error_string(m40_cu_result r, const char **s) {
    (void)r;
    *s = "fake driver error";
    return M40_CU_SUCCESS;
}

static m40_cuda_driver g_drv;
static m40_gpu g_gpu;
static m40_cuda_ops g_ops;

static int open_fake(void) {
    g_drv.cuModuleGetFunction = fake_get_function;
    g_drv.cuLaunchKernel = fake_launch;
    g_drv.cuGetErrorString = fake_error_string;
    g_gpu.drv = &g_drv;
    g_gpu.info.sm_count = 24; /* a Tesla M40 */
    m40_err err = {0};
    int rc = m40_cuda_ops_init(&g_ops, &g_gpu, &err);
    if (rc)
        fprintf(stderr, "m40_cuda_ops_init: %s\n", err.msg);
    return rc;
}

/* ---- the launcher's choices ----------------------------------------------------- */

/* A weight of `type`, rows x cols, at an aligned (never dereferenced)
 * device address. */
static m40_dweight weight(uint32_t type, int rows, int cols) {
    m40_dweight w = {.type = type, .cols = cols, .rows = rows, .ptr = 1u << 20};
    w.row_bytes = (int64_t)m40_ggml_row_bytes(type, (uint64_t)cols);
    return w;
}

/* n inputs of w through m40_cuda_gemv_batch; the launches it made. */
static int run_batch(const m40_dweight *w, int n) {
    g_n_launches = 0;
    m40_err err = {0};
    m40_dptr y = 1u << 24, x = 1u << 26;
    int rc = m40_cuda_gemv_batch(&g_ops, w, y, w->rows, x, w->cols, n, 0, 0, &err);
    if (rc)
        fprintf(stderr, "gemv_batch: %s\n", err.msg);
    CHECK(rc == 0);
    return g_n_launches;
}

/* A type whose batched kernel takes any batch (m40_gemvb_<kernel>_n):
 * 8 inputs are one launch on rows / rpb blocks, told 8; 11 are two
 * pieces, 6 and 5 (nearly equal). */
static void check_batched(uint32_t type, const char *kernel, unsigned rpb) {
    m40_dweight w = weight(type, 300, 512);
    char want[96];
    snprintf(want, sizeof want, "m40_gemvb_%s_n", kernel);
    CHECK(run_batch(&w, 8) == 1);
    const launch *l = &g_launches[0];
    if (strcmp(fn_name(l->fn), want) != 0)
        fprintf(stderr, "%s: launched %s, expected %s\n", m40_ggml_type_name(type), fn_name(l->fn),
                want);
    CHECK(strcmp(fn_name(l->fn), want) == 0);
    CHECK(l->blocks == (300 + rpb - 1) / rpb && l->threads == 128 && l->n == 8);
    CHECK(run_batch(&w, 11) == 2);
    CHECK(g_launches[0].n == 5 && g_launches[1].n == 6);
    CHECK(strcmp(fn_name(g_launches[1].fn), want) == 0);
    /* one input is the single-row kernel of the same family */
    CHECK(run_batch(&w, 1) == 1);
    CHECK(strncmp(fn_name(g_launches[0].fn), "m40_gemv_", 9) == 0);
}

static void test_every_type_batched(void) {
    check_batched(M40_GGML_F16, "f16_v", (unsigned)g_r_half);
    check_batched(M40_GGML_BF16, "bf16_v", (unsigned)g_r_half);
    const struct {
        uint32_t type;
        const char *kernel;
    } group[] = {
        {M40_GGML_Q4_1, "q4_1_v"},
        {M40_GGML_Q5_0, "q5_0_v"},
        {M40_GGML_Q5_1, "q5_1_v"},
        {M40_GGML_Q5_K, "q5_k_v"},
        {M40_GGML_Q6_K, "q6_k_v"},
        /* Q4_0 and Q8_0 not repacked run the generic family */
        {M40_GGML_Q4_0, "q4_0"},
        {M40_GGML_Q8_0, "q8_0"},
        {M40_GGML_Q2_K, "q2_k"},
        {M40_GGML_Q3_K, "q3_k"},
        {M40_GGML_IQ4_NL, "iq4_nl"},
        {M40_GGML_IQ4_XS, "iq4_xs"},
        {M40_GGML_IQ2_XXS, "iq2_xxs"},
        {M40_GGML_IQ2_XS, "iq2_xs"},
        {M40_GGML_IQ2_S, "iq2_s"},
        {M40_GGML_IQ3_XXS, "iq3_xxs"},
        {M40_GGML_IQ3_S, "iq3_s"},
    };
    for (size_t i = 0; i < sizeof group / sizeof group[0]; i++)
        check_batched(group[i].type, group[i].kernel, (unsigned)g_r_group);
}

/* Repacked Q4_0 and Q4_K keep their kernels per batch (`_nb<NB>`). */
static void test_per_batch_kernels(void) {
    m40_dweight w = weight(M40_GGML_Q4_0, 296, 512);
    w.repacked = 1;
    CHECK(run_batch(&w, 8) == 1);
    CHECK(strcmp(fn_name(g_launches[0].fn), "m40_gemvb_q4_0r_nb8") == 0);
    CHECK(g_launches[0].blocks == 296 / (unsigned)g_r_repacked);
    w = weight(M40_GGML_Q4_K, 300, 512);
    CHECK(run_batch(&w, 3) == 1);
    CHECK(strcmp(fn_name(g_launches[0].fn), "m40_gemvb_q4_k_nb3") == 0);
    CHECK(g_launches[0].blocks == (300 + 7) / 8); /* M40_GEMVB_R_Q4_K(3) */
}

/* F32 rows have no batched kernel: a single-row product per input. */
static void test_f32_one_by_one(void) {
    m40_dweight w = weight(M40_GGML_F32, 300, 512);
    CHECK(run_batch(&w, 5) == 5);
    for (int i = 0; i < 5; i++)
        CHECK(strcmp(fn_name(g_launches[i].fn), "m40_gemv_f32_v") == 0);
}

/* A matrix whose rows are not aligned for the wide loads runs the generic
 * single-row kernels, and so one of them per input: Q6_K has no batched
 * kernel of the generic family. */
static void test_unaligned_rows_one_by_one(void) {
    m40_dweight w = weight(M40_GGML_Q6_K, 300, 512);
    w.ptr += 3; /* odd: not even 2-byte aligned */
    CHECK(run_batch(&w, 3) == 3);
    CHECK(strcmp(fn_name(g_launches[0].fn), "m40_gemv_q6_k_rpb4") == 0 ||
          strcmp(fn_name(g_launches[0].fn), "m40_gemv_q6_k_rpb8") == 0);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: test_cuda_launch CUOBJDUMP FATBIN GEMV_BATCH_CU\n");
        return 2;
    }
    CHECK(read_names(argv[1], argv[2]) == 0);
    CHECK(read_rows_per_block(argv[3]) == 0);
    int opened = open_fake() == 0;
    CHECK(opened);
    if (opened) {
        test_every_type_batched();
        test_per_batch_kernels();
        test_f32_one_by_one();
        test_unaligned_rows_one_by_one();
    }
    for (int i = 0; i < g_n_names; i++)
        free(g_names[i]);
    return check_report();
}
