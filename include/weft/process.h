/* weft/process.h - a process pool whose workers may crash (Python's
 * ProcessPoolExecutor and multiprocessing.Pool, without their failure
 * modes).
 *
 * Tasks.  A task is a C function registered by name in the parent with
 * weft_process_register.  It takes bytes and returns bytes:
 *
 *     static int square(const void *in, size_t len, weft_bytes *out)
 *     {
 *         weft_bytes_reader r;
 *         int64_t x;
 *         weft_bytes_reader_init(&r, in, len);
 *         if (weft_bytes_get_i64(&r, &x) != 0)
 *             return weft_process_fail(-EINVAL, "want an int64");
 *         return weft_bytes_put_i64(out, x * x);
 *     }
 *     ...
 *     weft_process_register("square", square);
 *
 * It returns 0 (its result is what it appended to out) or a negative code
 * (its future FAILS with that code and the message set by
 * weft_process_fail, if any); a positive return counts as WEFT_EFAILED.
 *
 * Where workers come from.  Each pool starts a forkserver: a fresh copy of
 * the program (/proc/self/exe, executed anew, single-threaded) whose weft
 * constructor runs the server loop instead of returning to main.  The
 * forkserver forks one worker per request.  So a pool can be created by a
 * program that already runs threads, even threads holding locks: no worker
 * is ever forked from the threaded parent.  Consequences for a task:
 *   - it runs the program's code from a fresh start: main never ran, and
 *     the program's own constructors may not have either; a task sees only
 *     its bytes and what the pool's initializer set up;
 *   - a task function is found in the worker by its module (the program or
 *     a shared library loaded at start-up) and its offset in that module,
 *     so functions of a library loaded later with dlopen cannot be tasks;
 *   - the program must be the same file as when it started (/proc/self/exe
 *     is used, so renaming it is fine, replacing it is not).
 *
 * Crashes.  A worker that is killed by any signal, that exits, or that
 * overruns its task's timeout fails THAT task alone: WEFT_EWORKER (crash or
 * exit) or -ETIMEDOUT (timeout; the worker is killed with SIGKILL), with a
 * message naming the task, the worker's pid and the signal or exit code,
 * e.g. "task 'crash' failed: worker 1234 killed by signal 11 (SIGSEGV)".
 * The worker is replaced and every other task goes on; a task that had
 * been sent to that worker behind the one it ran (see below) had not
 * started, and runs in another worker.  The parent never
 * waits on a dead worker: the forkserver reports each worker's exit, and
 * timeouts are measured in the parent on the monotonic clock.
 *
 * Sent tasks.  While tasks wait, a busy worker is sent its next task
 * ahead, behind the one it runs (at most two per worker, as CPython's
 * ProcessPoolExecutor keeps a call queued ahead), so that it starts it as
 * soon as it finishes.  A task is RUNNING (weft_future_running) from the
 * moment it is sent, even before its worker starts it.  Its timeout
 * counts from when it starts: when it is sent to a worker with nothing
 * else to do, or when the task before it on that worker reports.
 *
 * Cancelling.  weft_future_cancel cancels a task that has not been sent to
 * a worker (it is then never sent); once sent it fails with -EBUSY, as
 * for any running future.  weft_process_pool_kill_task kills the worker
 * running a task (the task fails with -ECANCELED; the worker is
 * replaced); for a task sent but not yet started it fails the task at
 * once and lets the worker finish the task it runs, then kills it when it
 * reaches the killed one.
 *
 * Shutdown, as in weft/executor.h: after shutdown, submit returns -EPIPE;
 * queued tasks still run unless WEFT_SHUTDOWN_CANCEL_PENDING is given;
 * without WEFT_SHUTDOWN_NOWAIT the call waits, up to its deadline, until
 * every worker and the forkserver have exited and been reaped.  Destroy
 * leaves no process and no zombie behind.
 *
 * Every wait (submit on a full queue, shutdown, the futures) parks, so a
 * pool can be used from OS threads and green threads alike.  Each pool has
 * one internal OS thread that watches the workers' sockets and deadlines.
 */
#ifndef WEFT_PROCESS_H
#define WEFT_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "weft/executor.h" /* WEFT_SHUTDOWN_* */
#include "weft/future.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- bytes ------------------------------------------------------------
 * A growable byte buffer, and a reader over bytes.  The put/get pairs use
 * the machine's byte order (parent and worker are the same program on the
 * same machine). */
typedef struct weft_bytes {
    unsigned char *data; /* malloc'ed; NULL while empty */
    size_t len, cap;
} weft_bytes;

#define WEFT_BYTES_INIT {NULL, 0, 0}

void weft_bytes_init(weft_bytes *b);
void weft_bytes_fini(weft_bytes *b); /* frees data; b is empty again */
void weft_bytes_clear(weft_bytes *b); /* len = 0, keeps the memory */
/* Append: 0 or -ENOMEM (b unchanged). */
int weft_bytes_append(weft_bytes *b, const void *p, size_t n);
int weft_bytes_put_i64(weft_bytes *b, int64_t v);
int weft_bytes_put_u64(weft_bytes *b, uint64_t v);
int weft_bytes_put_f64(weft_bytes *b, double v);
/* A string: its length (u32), its bytes and a NUL, so that get_str can
 * hand back a pointer usable as a C string.  -EINVAL if s is NULL or
 * longer than 4 GiB. */
int weft_bytes_put_str(weft_bytes *b, const char *s);
/* A blob: its length (u64) and its bytes. */
int weft_bytes_put_blob(weft_bytes *b, const void *p, size_t n);

typedef struct weft_bytes_reader {
    const unsigned char *p;
    size_t len, pos;
} weft_bytes_reader;

void weft_bytes_reader_init(weft_bytes_reader *r, const void *p, size_t len);
/* Read the next value: 0, or -EINVAL if the bytes left are too few or
 * malformed (the reader does not move).  get_str and get_blob point into
 * the reader's bytes. */
int weft_bytes_get_i64(weft_bytes_reader *r, int64_t *v);
int weft_bytes_get_u64(weft_bytes_reader *r, uint64_t *v);
int weft_bytes_get_f64(weft_bytes_reader *r, double *v);
int weft_bytes_get_str(weft_bytes_reader *r, const char **s, size_t *len);
int weft_bytes_get_blob(weft_bytes_reader *r, const void **p, size_t *len);
size_t weft_bytes_reader_left(const weft_bytes_reader *r);

/* ---- tasks ------------------------------------------------------------ */

typedef int (*weft_process_fn)(const void *in, size_t len, weft_bytes *out);

/* Register fn under name (at most 63 bytes) in this process, before the
 * pools that run it are created or after: each task message names the
 * function.  0; -EINVAL (NULL, empty or long name; fn not in a loaded
 * module); -EBUSY (name already registered to another function; the same
 * pair again is 0); -ENOMEM.  Any thread. */
int weft_process_register(const char *name, weft_process_fn fn);

/* Inside a task or initializer: set the failure message (made from fmt)
 * and return code, so a task can say  return weft_process_fail(-ENOENT,
 * "no key %s", k);  Outside a worker it only returns code. */
int weft_process_fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* True in a worker process (inside a task or initializer). */
bool weft_process_in_worker(void);

/* ---- the pool ---------------------------------------------------------- */

typedef struct weft_process_pool weft_process_pool;

typedef struct weft_process_pool_opts {
    int max_workers;            /* 0: the number of cores */
    const char *initializer;    /* a registered name, run once per worker
                                   before its first task; NULL: none */
    const void *initarg;        /* its input bytes (copied) */
    size_t initarg_len;
    int max_tasks_per_worker;   /* 0: unlimited; else a worker exits after
                                   this many tasks and a new one replaces
                                   it (a map chunk counts as one); it is
                                   never sent more than that */
    int64_t task_timeout_ns;    /* 0: none; else each task's default
                                   limit, from when the task starts (see
                                   "Sent tasks" above) */
    size_t queue_capacity;      /* 0: unbounded; else submit parks while
                                   this many tasks wait for a worker */
} weft_process_pool_opts;

/* Create a pool and its forkserver (no worker starts before the first
 * submit).  opts may be NULL.  0; -EINVAL (negative counts, an unknown
 * initializer); -ENOMEM; -EAGAIN (a process or thread could not start);
 * another negative errno if the forkserver could not be spawned. */
int weft_process_pool_create(weft_process_pool **out,
                             const weft_process_pool_opts *opts);

/* Queue the task registered as name with input in[0..len) (copied).
 * *out (if not NULL) gets its future with one reference for the caller:
 * it FINISHES with the output bytes (weft_future_result's value, size from
 * weft_future_result_size; owned by the future) or FAILS (see the top).
 * timeout_ns: -1 none, 0 the pool's default, else the limit for this
 * task.  Parks while a bounded queue is full.  0; -EPIPE after shutdown;
 * WEFT_EBROKEN (the initializer failed); -ENOENT (no task of that name;
 * nothing queued); -ETIMEDOUT; -ECANCELED; -EINVAL; -ENOMEM. */
int weft_process_pool_submit(weft_process_pool *p, const char *name,
                             const void *in, size_t len, int64_t timeout_ns,
                             weft_future **out, int64_t deadline);

/* Kill the worker running f's task: the task fails with -ECANCELED and the
 * worker is replaced; a task sent behind it is not lost (it runs in
 * another worker), except in one race: if the worker finishes f's task
 * and starts that one in the microseconds before the kill lands, the kill
 * hits it and it fails with WEFT_EWORKER ("killed by signal 9"), never
 * running twice.  (The same holds for a timeout.)  A task not yet sent is cancelled as weft_future_cancel
 * does.  A task sent but not yet started fails with -ECANCELED at once;
 * its worker finishes the task it runs and is killed (and replaced) when
 * it reaches f's task.  0; -EBUSY (f is already done, or its result has
 * arrived); -ESRCH (f is not a task of p); -EINVAL. */
int weft_process_pool_kill_task(weft_process_pool *p, weft_future *f);

/* Shut down (see the top).  0; -ETIMEDOUT (processes still running at the
 * deadline; the shutdown itself has happened); -ECANCELED. */
int weft_process_pool_shutdown(weft_process_pool *p, unsigned flags,
                               int64_t deadline);

/* Shut down (waiting, forever) and free.  Futures handed out stay valid.
 * 0, -EINVAL. */
int weft_process_pool_destroy(weft_process_pool *p);

/* Counts and facts, approximate the moment they return. */
int weft_process_pool_workers(weft_process_pool *p); /* alive workers */
size_t weft_process_pool_pending(weft_process_pool *p); /* not yet sent */
bool weft_process_pool_broken(weft_process_pool *p);
/* The forkserver's pid (0 once it has been reaped). */
pid_t weft_process_pool_forkserver_pid(weft_process_pool *p);

/* ---- map --------------------------------------------------------------
 * Run the task name over inputs[0..n), chunk inputs per message to a
 * worker, with at most max_in_flight chunks submitted and not yet handed
 * back (0: twice the pool's max_workers), results in input order. */
typedef struct weft_process_input {
    const void *data;
    size_t len;
} weft_process_input;

typedef struct weft_process_map weft_process_map;

/* chunk 0 means 1.  The inputs are not copied: they must live until the
 * map ends.  0, -EINVAL, -ENOENT (unknown name), -ENOMEM. */
int weft_process_map_start(weft_process_map **out, weft_process_pool *p,
                           const char *name, const weft_process_input *inputs,
                           size_t n, size_t chunk, size_t max_in_flight);

/* The next result in input order: 0 with *task_rc (the input's code: 0,
 * or its failure's, WEFT_EWORKER / -ETIMEDOUT for every input of a chunk
 * whose worker died), *data and *len (its output, or its failure message as a
 * NUL-terminated string), valid until the next call or the end.  -EPIPE
 * at the end; -ETIMEDOUT / -ECANCELED: nothing consumed, call again;
 * -EPIPE / WEFT_EBROKEN from submitting if the pool shut down or broke;
 * -EBUSY if another thread is in next.  Pointers may be NULL. */
int weft_process_map_next(weft_process_map *m, int *task_rc,
                          const void **data, size_t *len, int64_t deadline);

/* Cancel what was not sent, drop the rest, free.  Never blocks.  0,
 * -EBUSY (a thread is in next), -EINVAL. */
int weft_process_map_end(weft_process_map *m);

#ifdef __cplusplus
}
#endif
#endif
