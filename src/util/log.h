/* log.h - leveled logging to stderr.
 *
 * The level comes from the environment variable M40LLM_LOG (error, warn,
 * info, debug; default info). Logging is for operators watching a run; it is
 * never the way an error is reported to a caller (see err.h).
 *
 * Owns: the log level. Touches: stderr only.
 */
#ifndef M40_UTIL_LOG_H
#define M40_UTIL_LOG_H

typedef enum m40_log_level {
    M40_LOG_ERROR = 0,
    M40_LOG_WARN = 1,
    M40_LOG_INFO = 2,
    M40_LOG_DEBUG = 3,
} m40_log_level;

/* The active level (read from M40LLM_LOG on first use). */
m40_log_level m40_log_get_level(void);

/* Overrides the level (the CLI's --verbose / --quiet). */
void m40_log_set_level(m40_log_level level);

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void m40_log(m40_log_level level, const char *fmt, ...);

#define m40_log_error(...) m40_log(M40_LOG_ERROR, __VA_ARGS__)
#define m40_log_warn(...)  m40_log(M40_LOG_WARN, __VA_ARGS__)
#define m40_log_info(...)  m40_log(M40_LOG_INFO, __VA_ARGS__)
#define m40_log_debug(...) m40_log(M40_LOG_DEBUG, __VA_ARGS__)

#endif /* M40_UTIL_LOG_H */
