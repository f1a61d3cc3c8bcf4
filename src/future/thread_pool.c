/* thread_pool.c - the executor on OS threads (Python's ThreadPoolExecutor).
 *
 * Only how a worker starts and is joined lives here; the executor itself
 * is src/future/executor.c.  Workers are weft threads (weft/thread.h), so
 * they have names, count in weft_thread_enumerate and follow the exit
 * policy: non-daemon unless the executor was created with daemon set.
 * Default size: Python's, min(32, cores + 4), as most tasks given to a
 * thread pool wait on I/O.
 */
#include <unistd.h>

#include "future/executor.h"
#include "weft/thread.h"

static int start(weft_executor *ex, const char *name, void **handle)
{
    weft_thread_opts o = WEFT_THREAD_OPTS_DEFAULT;
    o.name = name;
    o.daemon = weft__executor_daemon(ex) ? 1 : 0;
    o.stack_size = weft__executor_stack_size(ex);
    weft_thread *t = NULL;
    int rc = weft_thread_start(&t, weft__executor_worker, ex, &o);
    if (rc == 0)
        *handle = t;
    return rc;
}

static int join(void *handle, int64_t deadline)
{
    return weft_thread_join(handle, NULL, deadline);
}

static const struct weft__executor_kind thread_kind = {
    .name = "ThreadPoolExecutor",
    .start = start,
    .join = join,
    .os_threads = true,
};

int weft_thread_pool_create(weft_executor **out,
                            const weft_executor_opts *opts)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        cores = 1;
    int dflt = (int)(cores + 4 < 32 ? cores + 4 : 32);
    return weft__executor_create(out, &thread_kind, dflt, opts);
}
