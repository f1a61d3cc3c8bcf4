/* panic.c - the one place weft aborts: a broken invariant (WEFT_PANIC).
 * The message goes to stderr in a single write(2) so that it is not mixed
 * with other threads' output, then abort() leaves a core for the debugger.
 */
#include "assert.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void weft__panic(const char *file, int line, const char *fmt, ...)
{
    char buf[1024], name[32] = "?";
    int n;
    va_list ap;

    pthread_getname_np(pthread_self(), name, sizeof name);
    n = snprintf(buf, sizeof buf, "weft: panic at %s:%d in thread %s: ",
                 file, line, name);
    if (n < 0 || n >= (int)sizeof buf)
        n = 0;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m > 0)
        n += m < (int)(sizeof buf - (size_t)n - 1) ? m : (int)(sizeof buf - (size_t)n - 2);
    buf[n++] = '\n';
    ssize_t w = write(2, buf, (size_t)n);
    (void)w;
    abort();
}
