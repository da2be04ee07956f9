/* kernels_blob.h - the fatbin of kernels/ embedded in this binary.
 *
 * A CUDA build (-DM40_CUDA=ON) compiles every .cu file of kernels/ into one fatbin
 * and links its bytes in (kernels_blob.S); a CPU-only build links
 * kernels_none.c, where the size is 0.
 *
 * Owns: nothing (read-only data). Touches: nothing.
 */
#ifndef M40_BACKEND_CUDA_KERNELS_BLOB_H
#define M40_BACKEND_CUDA_KERNELS_BLOB_H

#include <stdint.h>

extern const unsigned char m40_kernels_fatbin[];
extern const uint64_t m40_kernels_fatbin_size;

#endif /* M40_BACKEND_CUDA_KERNELS_BLOB_H */
