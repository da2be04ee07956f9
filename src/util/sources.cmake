# Sources of src/util/: errors, logging, the clock, whole-file reads.
set(M40_UTIL_SOURCES util/clock.c util/err.c util/file.c util/log.c)
