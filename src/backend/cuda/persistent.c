/* persistent.c - see persistent.h: the host side of the persistent decode
 * kernel prototype. */
#include "backend/cuda/persistent.h"

#include <string.h>

#include "quant/ggml_types.h"

int m40_pl_create(m40_pl *pl, m40_gpu *gpu, uint32_t type, const m40_pl_layer *layers, int n_layer,
                  int blocks_per_sm, unsigned max_shmem, m40_err *err) {
    memset(pl, 0, sizeof *pl);
#ifndef M40_PERSISTENT
    (void)gpu, (void)type, (void)layers, (void)n_layer, (void)blocks_per_sm, (void)max_shmem;
    return m40_errf(err, "this m40-llm was built without the persistent decode prototype "
                         "(configure with -DM40_PERSISTENT=ON)");
#else
    const char *name = type == M40_GGML_Q4_0   ? "m40_decode_layers_q4_0r"
                       : type == M40_GGML_Q8_0 ? "m40_decode_layers_q8_0r"
                                               : NULL;
    if (!name)
        return m40_errf(err, "the persistent decode prototype runs Q4_0 and Q8_0 layers, not %s",
                        m40_ggml_type_name(type));
    const m40_cuda_driver *d = gpu->drv;
    if (!d->cuOccupancyMaxActiveBlocksPerMultiprocessor)
        return m40_errf(err, "this CUDA driver has no occupancy calculator");
    if (m40_gpu_function(gpu, name, &pl->fn, err))
        return -1;
    int fit = 0;
    if (m40_cu_check(d,
                     d->cuOccupancyMaxActiveBlocksPerMultiprocessor(&fit, pl->fn, 128, max_shmem),
                     "cuOccupancyMaxActiveBlocksPerMultiprocessor", err))
        return -1;
    if (fit < 1)
        return m40_errf(err, "the persistent decode kernel does not fit an SM");
    int per_sm = blocks_per_sm > 0 && blocks_per_sm < fit ? blocks_per_sm : fit;
    pl->grid = (unsigned)(gpu->info.sm_count * per_sm);
    pl->max_shmem = max_shmem;
    pl->n_layer = n_layer;
    size_t table = (size_t)n_layer * sizeof *layers;
    unsigned zero[2] = {0, 0};
    if (m40_gpu_alloc(gpu, &pl->table, table + sizeof zero, err) ||
        m40_gpu_upload(gpu, pl->table, layers, table, err) ||
        m40_gpu_upload(gpu, pl->table + table, zero, sizeof zero, err)) {
        m40_pl_destroy(pl, gpu);
        return -1;
    }
    return 0;
#endif
}

int m40_pl_launch(m40_pl *pl, m40_gpu *gpu, m40_cu_stream stream, m40_pl_params *p, unsigned shmem,
                  m40_err *err) {
    if (shmem > pl->max_shmem)
        return m40_errf(err, "persistent decode: %u bytes of shared memory, sized for %u", shmem,
                        pl->max_shmem);
    p->layers = pl->table;
    p->bar = pl->table + (size_t)pl->n_layer * sizeof(m40_pl_layer);
    void *args[] = {p};
    return m40_gpu_launch_on(gpu, stream, pl->fn, pl->grid, 1, 1, 128, shmem, args, err);
}

void m40_pl_destroy(m40_pl *pl, m40_gpu *gpu) {
    m40_gpu_free(gpu, pl->table);
    memset(pl, 0, sizeof *pl);
}
