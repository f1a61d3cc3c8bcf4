/* weft/executor.h - executors that run tasks and hand back futures
 * (Python's ThreadPoolExecutor, and the same interface over green threads).
 *
 * A task is fn(arg, &result): it returns 0 and stores its result (or
 * leaves it NULL), or returns a negative code for failure, optionally with
 * a message (weft_task_fail).  Its future (weft/future.h) FINISHES with the
 * result or FAILS with the code and message.
 *
 * Two executors share this interface:
 *   - the thread pool: up to max_workers OS threads (Python's default,
 *     min(32, cores + 4)), started lazily, one per submission that finds no
 *     idle worker, so idle workers are reused before a new one starts;
 *   - the green executor: up to max_workers green threads on weft's
 *     scheduler (weft/green.h; started with weft_runtime_start if needed).
 * Both take work from one queue, FIFO; a submission that finds a worker
 * parked idle hands the task straight to it.
 *
 * Shutdown (Python's shutdown(wait, cancel_futures)).  After shutdown,
 * submit returns -EPIPE.  Tasks already queued still run unless
 * WEFT_SHUTDOWN_CANCEL_PENDING is given, which cancels them (their futures
 * are CANCELLED, so nothing is lost silently).  Without
 * WEFT_SHUTDOWN_NOWAIT the call waits, up to its deadline, for every worker
 * to finish and exit.  Shutting down twice is allowed.
 *
 * Initializer.  If opts.initializer is given, each worker runs it once
 * before its first task.  If it fails, the executor is BROKEN (Python's
 * BrokenThreadPool): every queued task fails with WEFT_EBROKEN and a
 * message naming the initializer's code, and submit returns WEFT_EBROKEN.
 *
 * Exit.  A thread pool's workers are non-daemon threads unless opts.daemon
 * is set.  At process exit (weft/thread.h, exit policy) weft shuts down
 * every non-daemon pool still running, letting queued work finish, and
 * waits for its workers, as Python does; a daemon pool is abandoned, so a
 * pool nobody shut down never holds the process at exit.
 */
#ifndef WEFT_EXECUTOR_H
#define WEFT_EXECUTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/future.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_executor weft_executor;

typedef int (*weft_task_fn)(void *arg, void **result);

/* Inside a task: fail it with code and a message made from fmt.  Returns
 * code, so a task can say  return weft_task_fail(-ENOENT, "no %s", name);
 * Outside a task (or with code >= 0) it only returns code. */
int weft_task_fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

typedef struct weft_executor_opts {
    int max_workers;            /* 0: min(32, cores + 4) for threads,
                                   cores for green threads */
    const char *name_prefix;    /* workers are "<prefix>_<n>"; NULL:
                                   "ThreadPoolExecutor-<k>" or
                                   "GreenExecutor-<k>" */
    int (*initializer)(void *arg); /* run once per worker; may be NULL */
    void *initarg;
    size_t queue_capacity;      /* 0: unbounded; else submit parks while
                                   this many tasks wait to start */
    bool daemon;                /* thread pool: daemon workers */
    size_t stack_size;          /* 0: the default (thread or green) */
} weft_executor_opts;

/* Create an executor; opts may be NULL (all defaults).  No worker starts
 * before the first submit.  0, -EINVAL (max_workers < 0), -ENOMEM. */
int weft_thread_pool_create(weft_executor **out,
                            const weft_executor_opts *opts);
int weft_green_executor_create(weft_executor **out,
                               const weft_executor_opts *opts);

/* Queue fn(arg).  *out (if out is not NULL) gets the future, holding one
 * reference for the caller; with out NULL the task runs unobserved (a
 * failure is then logged when its future goes).  Parks while a bounded
 * queue is full.  0; -EPIPE after shutdown; WEFT_EBROKEN; -ETIMEDOUT;
 * -ECANCELED; -EINVAL; -ENOMEM; -EAGAIN (the OS refused a first worker
 * and none runs). */
int weft_executor_submit(weft_executor *ex, weft_task_fn fn, void *arg,
                         weft_future **out, int64_t deadline);

enum {
    WEFT_SHUTDOWN_NOWAIT = 1u << 0,         /* do not wait for workers */
    WEFT_SHUTDOWN_CANCEL_PENDING = 1u << 1, /* cancel queued tasks */
};

/* Shut down (see above).  0; -ETIMEDOUT (workers still running at the
 * deadline; the shutdown itself has happened); -EDEADLK if a worker of ex
 * waits for ex's workers (it would wait for itself); -ECANCELED. */
int weft_executor_shutdown(weft_executor *ex, unsigned flags,
                           int64_t deadline);

/* Shut down (waiting, forever) and free.  Futures already handed out stay
 * valid.  0, -EDEADLK (from a worker of ex), -EINVAL. */
int weft_executor_destroy(weft_executor *ex);

/* Counts, approximate the moment they return. */
int weft_executor_workers(weft_executor *ex);  /* started, not yet exited */
size_t weft_executor_pending(weft_executor *ex); /* queued, not started */
bool weft_executor_broken(weft_executor *ex);

/* ---- map ------------------------------------------------------------- */

/* map: run fn over inputs with at most max_in_flight tasks submitted and
 * not yet handed back, results in input order.  Inputs are pulled lazily:
 * from an array, or from next(state, &input), which returns 0 with an
 * input or -EPIPE at the end (any other code ends the map with that code
 * after the inputs before it). */
typedef struct weft_map weft_map;
typedef int (*weft_input_fn)(void *state, void **input);

/* max_in_flight 0: twice the executor's max_workers.  0, -EINVAL,
 * -ENOMEM. */
int weft_map_start(weft_map **out, weft_executor *ex, weft_task_fn fn,
                   weft_input_fn next, void *state, size_t max_in_flight);
int weft_map_start_array(weft_map **out, weft_executor *ex, weft_task_fn fn,
                         void *const *inputs, size_t n,
                         size_t max_in_flight);

/* The next result in input order: 0 with *result and the task's code in
 * *task_rc (0, or its failure code; the map goes on after a failure).
 * -EPIPE at the end (or the input function's code, once, if it failed);
 * -ETIMEDOUT / -ECANCELED: nothing consumed, call again; -EPIPE /
 * WEFT_EBROKEN from submitting if the executor shut down or broke; -EBUSY
 * if another thread is in next.  result and task_rc may be NULL. */
int weft_map_next(weft_map *m, void **result, int *task_rc,
                  int64_t deadline);

/* End the map: cancel the tasks not started, drop the results not handed
 * back, free it.  Never blocks.  0, -EBUSY (a thread is in next),
 * -EINVAL. */
int weft_map_end(weft_map *m);

#ifdef __cplusplus
}
#endif
#endif
