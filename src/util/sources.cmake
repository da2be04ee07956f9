# Sources of src/util/: errors, logging, the clock, whole-file reads, growing strings,
# strict UTF-8.
set(M40_UTIL_SOURCES util/clock.c util/err.c util/file.c util/log.c util/strbuf.c
    util/utf8.c)
