/* rng.h - the seeded random number generator behind sampling.
 *
 * xoshiro256** (Blackman and Vigna, 2018), seeded by expanding the 64-bit
 * seed with splitmix64. Integer-only, so a seed gives the same stream on
 * every machine and compiler. Documented in docs/sampling.md.
 *
 * Owns: nothing beyond the state struct. Touches: nothing.
 */
#ifndef M40_SAMPLING_RNG_H
#define M40_SAMPLING_RNG_H

#include <stdint.h>

typedef struct m40_rng {
    uint64_t s[4];
} m40_rng;

/* Seeds the generator: s[i] = successive splitmix64 outputs from `seed`. */
void m40_rng_seed(m40_rng *rng, uint64_t seed);

/* The next 64 random bits. */
uint64_t m40_rng_next(m40_rng *rng);

/* A uniform double in [0, 1) with 53 random bits. */
double m40_rng_uniform(m40_rng *rng);

#endif /* M40_SAMPLING_RNG_H */
