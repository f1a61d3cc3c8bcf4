/* green_executor.c - the executor on green threads.
 *
 * The same executor as the thread pool (src/future/executor.c): only the
 * workers differ, green threads on weft's scheduler (started with it if it
 * is not running).  Default size: the number of cores, since a green
 * worker that waits parks and costs its worker nothing; raise it for tasks
 * that mostly wait (each green worker is a few KiB).
 */
#include <unistd.h>

#include "future/executor.h"
#include "weft/green.h"

static int start(weft_executor *ex, const char *name, void **handle)
{
    weft_green_opts o = {name, weft__executor_stack_size(ex)};
    weft_green *g = NULL;
    int rc = weft_green_spawn(&g, weft__executor_worker, ex, &o);
    if (rc == 0)
        *handle = g;
    return rc;
}

static int join(void *handle, int64_t deadline)
{
    return weft_green_join(handle, NULL, deadline);
}

static const struct weft__executor_kind green_kind = {
    .name = "GreenExecutor",
    .start = start,
    .join = join,
    .yield = weft_green_yield,
    .os_threads = false,
};

int weft_green_executor_create(weft_executor **out,
                               const weft_executor_opts *opts)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return weft__executor_create(out, &green_kind, cores < 1 ? 1 : (int)cores,
                                 opts);
}
