/* buildinfo.h - facts fixed when this binary was configured.
 *
 * Owns: read-only strings. Touches: nothing.
 */
#ifndef M40_BUILDINFO_H
#define M40_BUILDINFO_H

extern const char m40_version[];  /* "0.1.0" */
extern const char m40_git_hash[]; /* short commit hash, or "unknown" */
/* The kernels embedded in this binary: "sm_52 SASS + compute_52 PTX (nvcc
 * 11.8)" or "none (CPU-only build)". */
extern const char m40_kernels_targets[];

#endif /* M40_BUILDINFO_H */
