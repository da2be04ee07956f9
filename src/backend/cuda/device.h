/* device.h - which CUDA devices exist, and which one we use.
 *
 * Listing asks the driver; picking is a pure function over that list so the
 * policy ("prefer a Tesla M40, else the first device of compute capability
 * 5.2 or newer, unless --gpu N says otherwise") is testable without a GPU.
 *
 * Owns: m40_gpu_info. Touches: the driver (driver.h) for listing only.
 */
#ifndef M40_BACKEND_CUDA_DEVICE_H
#define M40_BACKEND_CUDA_DEVICE_H

#include <stddef.h>

#include "backend/cuda/driver.h"
#include "util/err.h"

#define M40_GPU_MAX      16
#define M40_MIN_CC_MAJOR 5
#define M40_MIN_CC_MINOR 2

typedef struct m40_gpu_info {
    int ordinal;       /* CUDA device ordinal (what --gpu takes) */
    char name[128];    /* e.g. "Tesla M40 24GB" */
    int cc_major;      /* compute capability, e.g. 5 */
    int cc_minor;      /* e.g. 2 */
    int sm_count;      /* streaming multiprocessors */
    size_t vram_total; /* bytes */
    size_t vram_free;  /* bytes; 0 when unknown (needs a context to ask) */
} m40_gpu_info;

/* Fills up to `max` entries (ordinal order) and returns how many, or -1 with
 * err set. With `with_free` the free VRAM of each device is asked through its
 * primary context (retained and released again). Zero devices is not an
 * error here; picking from an empty list is. */
int m40_cuda_list_devices(const m40_cuda_driver *drv, m40_gpu_info *out, int max, int with_free,
                          m40_err *err);

/* True when the device's compute capability is at least 5.2. */
int m40_gpu_is_supported(const m40_gpu_info *gpu);

/* Picks a device from a list. requested >= 0 is an explicit ordinal (--gpu N)
 * and must exist and be supported; requested < 0 means automatic: the first
 * supported device whose name contains "Tesla M40", else the first supported
 * device. Returns the index into `devs`, or -1 with a one-line reason. */
int m40_cuda_pick_device(const m40_gpu_info *devs, int n, int requested, m40_err *err);

#endif /* M40_BACKEND_CUDA_DEVICE_H */
