/* kernels_none.c - the kernel blob of a CPU-only build: empty.
 * m40_gpu_open sees size 0 and says the binary was built without kernels. */
#include "backend/cuda/kernels_blob.h"

const unsigned char m40_kernels_fatbin[1] = {0};
const uint64_t m40_kernels_fatbin_size = 0;
