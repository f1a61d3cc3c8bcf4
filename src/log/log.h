/* log.h - the logger's internal interface (the public one is weft/log.h). */
#ifndef WEFT_LOG_INTERNAL_H
#define WEFT_LOG_INTERNAL_H

#include <stddef.h>

/* Write len bytes, as they are (no prefix, no level filter), to the
 * logger's destination (stderr unless weft_log_set_fd/set_file chose
 * another): for the dump on SIGQUIT (src/debug/), which is many lines at
 * once.  Any thread; never blocks on a weft lock. */
void weft__log_write_raw(const char *buf, size_t len);

#endif
