/* clock.h - the monotonic clock, for timings (benchmarks, generation stats).
 *
 * Owns: nothing. Touches: the system clock, read-only.
 */
#ifndef M40_UTIL_CLOCK_H
#define M40_UTIL_CLOCK_H

/* Seconds on the monotonic clock (CLOCK_MONOTONIC): only differences mean
 * anything. */
double m40_clock_s(void);

#endif /* M40_UTIL_CLOCK_H */
