/* device.c - see device.h. */
#include "backend/cuda/device.h"

#include <string.h>

static int query_one(const m40_cuda_driver *drv, int ordinal, int with_free, m40_gpu_info *g,
                     m40_err *err) {
    memset(g, 0, sizeof *g);
    g->ordinal = ordinal;
    m40_cu_device dev;
    if (m40_cu_check(drv, drv->cuDeviceGet(&dev, ordinal), "cuDeviceGet", err))
        return -1;
    if (m40_cu_check(drv, drv->cuDeviceGetName(g->name, (int)sizeof g->name, dev),
                     "cuDeviceGetName", err))
        return -1;
    g->name[sizeof g->name - 1] = '\0';
    if (m40_cu_check(drv, drv->cuDeviceGetAttribute(&g->cc_major, M40_CU_ATTR_CC_MAJOR, dev),
                     "cuDeviceGetAttribute(cc major)", err) ||
        m40_cu_check(drv, drv->cuDeviceGetAttribute(&g->cc_minor, M40_CU_ATTR_CC_MINOR, dev),
                     "cuDeviceGetAttribute(cc minor)", err) ||
        m40_cu_check(drv,
                     drv->cuDeviceGetAttribute(&g->sm_count, M40_CU_ATTR_MULTIPROCESSOR_COUNT, dev),
                     "cuDeviceGetAttribute(SM count)", err) ||
        m40_cu_check(drv, drv->cuDeviceTotalMem(&g->vram_total, dev), "cuDeviceTotalMem", err))
        return -1;
    if (!with_free)
        return 0;
    /* Free memory is a property of a context: borrow the primary one. */
    m40_cu_context ctx = NULL;
    if (m40_cu_check(drv, drv->cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain",
                     err))
        return -1;
    size_t free_b = 0, total_b = 0;
    int rc = m40_cu_check(drv, drv->cuCtxSetCurrent(ctx), "cuCtxSetCurrent", err);
    if (rc == 0)
        rc = m40_cu_check(drv, drv->cuMemGetInfo(&free_b, &total_b), "cuMemGetInfo", err);
    drv->cuCtxSetCurrent(NULL);
    drv->cuDevicePrimaryCtxRelease(dev);
    g->vram_free = free_b;
    return rc;
}

int m40_cuda_list_devices(const m40_cuda_driver *drv, m40_gpu_info *out, int max, int with_free,
                          m40_err *err) {
    int count = 0;
    m40_cu_result r = drv->cuDeviceGetCount(&count);
    if (r == M40_CU_ERROR_NO_DEVICE)
        return 0;
    if (m40_cu_check(drv, r, "cuDeviceGetCount", err))
        return -1;
    if (count > max)
        count = max;
    for (int i = 0; i < count; i++) {
        if (query_one(drv, i, with_free, &out[i], err))
            return m40_err_wrap(err, "CUDA device %d", i);
    }
    return count;
}

int m40_gpu_is_supported(const m40_gpu_info *gpu) {
    return gpu->cc_major > M40_MIN_CC_MAJOR ||
           (gpu->cc_major == M40_MIN_CC_MAJOR && gpu->cc_minor >= M40_MIN_CC_MINOR);
}

int m40_cuda_pick_device(const m40_gpu_info *devs, int n, int requested, m40_err *err) {
    if (n <= 0)
        return m40_errf(err, "no CUDA device found");
    if (requested >= 0) {
        for (int i = 0; i < n; i++) {
            if (devs[i].ordinal != requested)
                continue;
            if (!m40_gpu_is_supported(&devs[i]))
                return m40_errf(err,
                                "CUDA device %d (%s) has compute capability %d.%d; m40-llm "
                                "needs 5.2 or newer",
                                requested, devs[i].name, devs[i].cc_major, devs[i].cc_minor);
            return i;
        }
        return m40_errf(err, "CUDA device %d does not exist (%d device%s found)", requested, n,
                        n == 1 ? "" : "s");
    }
    int first_ok = -1;
    for (int i = 0; i < n; i++) {
        if (!m40_gpu_is_supported(&devs[i]))
            continue;
        if (strstr(devs[i].name, "Tesla M40"))
            return i;
        if (first_ok < 0)
            first_ok = i;
    }
    if (first_ok < 0)
        return m40_errf(err,
                        "no CUDA device of compute capability 5.2 or newer (%d found, "
                        "first: %s, cc %d.%d)",
                        n, devs[0].name, devs[0].cc_major, devs[0].cc_minor);
    return first_ok;
}
