# Sources of src/sampling/.
set(M40_SAMPLING_SOURCES sampling/rng.c sampling/sampling.c)
