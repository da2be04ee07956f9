/* cmd_info.c - `m40-llm info`: what this binary is and what it can use.
 *
 *   m40-llm info [--device auto|cpu|cuda] [--gpu N]
 *
 * Prints the build facts, every CUDA device with its compute capability and
 * VRAM, which device would be used and whether cuBLAS is. With
 * --device cuda, CUDA being unusable is an error (exit 1, one line on
 * stderr saying why); otherwise it is reported and info succeeds.
 */
#include <stdio.h>
#include <string.h>

#include "backend/cuda/gpu.h"
#include "buildinfo.h"
#include "cli/cli.h"

typedef enum device_choice { DEVICE_AUTO, DEVICE_CPU, DEVICE_CUDA } device_choice;

static void info_usage(FILE *out) {
    fprintf(out, "usage: m40-llm info [--device auto|cpu|cuda] [--gpu N]\n"
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

static int probe_cuda(int gpu_ordinal, m40_err *err) {
    const m40_cuda_driver *drv = m40_cuda_driver_get(err);
    if (!drv)
        return -1;
    print_driver_version(drv->driver_version);
    m40_gpu_info devs[M40_GPU_MAX];
    if (print_devices(drv, devs, err) < 0)
        return -1;
    return print_selected(gpu_ordinal, err);
}

int m40_cmd_info(int argc, char **argv) {
    device_choice device = DEVICE_AUTO;
    int gpu_ordinal = -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            info_usage(stdout);
            return M40_EXIT_OK;
        } else if (!strcmp(a, "--device") && i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(v, "auto"))
                device = DEVICE_AUTO;
            else if (!strcmp(v, "cpu"))
                device = DEVICE_CPU;
            else if (!strcmp(v, "cuda"))
                device = DEVICE_CUDA;
            else {
                m40_cli_error("--device must be auto, cpu or cuda, not \"%s\"", v);
                return M40_EXIT_USAGE;
            }
        } else if (!strcmp(a, "--gpu") && i + 1 < argc) {
            if (m40_cli_parse_int("--gpu", argv[++i], &gpu_ordinal))
                return M40_EXIT_USAGE;
        } else {
            m40_cli_error("info: unknown or incomplete option \"%s\"", a);
            info_usage(stderr);
            return M40_EXIT_USAGE;
        }
    }

    printf("m40-llm %s (git %s)\n", m40_version, m40_git_hash);
    printf("kernels: %s\n", m40_kernels_targets);
    if (device == DEVICE_CPU) {
        printf("CUDA: not probed (--device cpu)\n");
        return M40_EXIT_OK;
    }
    m40_err err = {{0}};
    if (probe_cuda(gpu_ordinal, &err) == 0)
        return M40_EXIT_OK;
    printf("CUDA: unusable: %s\n", err.msg);
    if (device == DEVICE_CUDA) {
        m40_cli_error("CUDA requested but unusable: %s", err.msg);
        return M40_EXIT_FAIL;
    }
    return M40_EXIT_OK;
}
