/* executor.h - the executor core, and the two kinds of worker it runs on.
 *
 * src/future/executor.c is the whole executor: queue, idle workers,
 * submit, shutdown.  A kind (thread_pool.c, green_executor.c) only knows
 * how to start a worker running weft__executor_worker(ex) and how to join
 * it: the worker's loop is the same code for OS threads and green threads,
 * because everything it waits on goes through park.
 */
#ifndef WEFT_EXECUTOR_INTERNAL_H
#define WEFT_EXECUTOR_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "park/park.h"
#include "weft/executor.h"

struct weft__executor_kind {
    const char *name;          /* "ThreadPoolExecutor", "GreenExecutor" */
    /* Start a worker running weft__executor_worker(ex), named name; store
     * a handle for join.  0 or a negative code. */
    int (*start)(weft_executor *ex, const char *name, void **handle);
    /* Join a handle from start: 0, -ETIMEDOUT (the handle stays valid),
     * -ECANCELED. */
    int (*join)(void *handle, int64_t deadline);
    /* Let others run between tasks (green threads), or NULL. */
    int (*yield)(void);
    /* OS threads: subject to the exit policy (weft/executor.h, "Exit"). */
    bool os_threads;
};

/* Create an executor of a kind; opts may be NULL.  default_workers is the
 * max_workers used when opts leave it 0. */
int weft__executor_create(weft_executor **out,
                          const struct weft__executor_kind *kind,
                          int default_workers,
                          const weft_executor_opts *opts);

/* The loop every worker runs (its argument is ex); returns 0. */
int weft__executor_worker(void *ex);

/* Options the kinds read when they start a worker; constant. */
bool weft__executor_daemon(const weft_executor *ex);
size_t weft__executor_stack_size(const weft_executor *ex);
int weft__executor_max_workers(const weft_executor *ex);

#endif
