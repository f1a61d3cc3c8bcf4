/* weft/log.h - a thread-aware logger shared by every thread.
 *
 * A line looks like
 *     2026-11-22T10:04:05.123456Z INFO     [worker-2] connected to 127.0.0.1:80
 * timestamp (UTC, wall clock, microseconds), level (padded to 8 columns),
 * the name of the thread (later: of the green thread) that logged it, and
 * the message.  A thread weft did not start is named as
 * weft_thread_current() names it (MainThread, Dummy-N).  Each line is
 * formatted into one buffer and written with a single write(2), so lines from
 * different threads never interleave (lines are cut at WEFT_LOG_LINE_MAX).
 * The destination is stderr unless set to a file descriptor or a path
 * (opened with O_APPEND).  Any thread, any time; never blocks on a weft lock.
 */
#ifndef WEFT_LOG_H
#define WEFT_LOG_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum weft_log_level {
    WEFT_LOG_DEBUG = 10,
    WEFT_LOG_INFO = 20,
    WEFT_LOG_WARNING = 30,
    WEFT_LOG_ERROR = 40,
    WEFT_LOG_CRITICAL = 50,
    WEFT_LOG_OFF = 100,
} weft_log_level;

#define WEFT_LOG_LINE_MAX 4096

/* Lines below level are dropped (default WEFT_LOG_INFO, or the level named
 * by the WEFT_LOG_LEVEL environment variable: debug, info, warning, error,
 * critical, off).  Returns the previous level.  Any value from 0 to
 * WEFT_LOG_OFF is a level; one outside that range is refused: the level
 * stays as it was, and that level is returned. */
weft_log_level weft_log_set_level(weft_log_level level);
weft_log_level weft_log_get_level(void);

/* Write to fd (the logger does not close it; -1 restores stderr).  0 or
 * -EINVAL (fd < -1 or not open).  Closes a file set_file had opened. */
int weft_log_set_fd(int fd);
/* Append to the file at path, creating it (mode 0644); the logger owns and
 * closes it when the destination changes again.  0 or a negative errno from
 * open. */
int weft_log_set_file(const char *path);

/* Log one line at level.  A trailing newline in fmt is not doubled. */
void weft_log(weft_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void weft_vlog(weft_log_level level, const char *fmt, va_list ap);

#define weft_debug(...) weft_log(WEFT_LOG_DEBUG, __VA_ARGS__)
#define weft_info(...) weft_log(WEFT_LOG_INFO, __VA_ARGS__)
#define weft_warning(...) weft_log(WEFT_LOG_WARNING, __VA_ARGS__)
#define weft_error(...) weft_log(WEFT_LOG_ERROR, __VA_ARGS__)
#define weft_critical(...) weft_log(WEFT_LOG_CRITICAL, __VA_ARGS__)

/* The name for a level ("INFO").  A value between two named levels takes
 * the name of the one below it (35 is "WARNING"); below DEBUG is "DEBUG". */
const char *weft_log_level_name(weft_log_level level);

#ifdef __cplusplus
}
#endif
#endif
