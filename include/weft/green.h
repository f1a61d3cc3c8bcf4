/* weft/green.h - green threads: cheap threads scheduled M:N over a pool of
 * worker OS threads (one per core by default).
 *
 * Every primitive and queue of weft/sync.h and weft/queue.h works in a green
 * thread exactly as in an OS thread, and the two kinds mix freely: a green
 * thread may wait on an event an OS thread sets, an OS thread may join a
 * green thread, both sides of a queue may be either.  A blocking call in a
 * green thread parks the green thread, not its worker: the worker runs other
 * green threads meanwhile.  A call that blocks in the kernel (read(2) on a
 * regular file, getaddrinfo, a foreign library's mutex) does hold its
 * worker; see the monitor below, and weft_offload (weft/io.h) for such
 * calls.
 *
 * Scheduling is cooperative: a green thread runs until it blocks, yields,
 * sleeps or returns.  A monitor thread watches the workers: when one has
 * run the same green thread for longer than the switch interval (10 ms by
 * default) while other green threads wait in its queue - a loop that never
 * yields, or a call stuck in the kernel - it logs a warning naming that
 * green thread and where it was spawned, and a spare worker (an extra OS
 * thread, at most WEFT_MAX_SPARES of them: default 4 per worker, at least 8)
 * takes the waiting green threads and runs them; the kernel then shares the
 * cores.  Spares go back to rest when the hog ends.  Nothing interrupts the
 * hogging green thread itself.
 *
 * The runtime starts lazily at the first spawn with WEFT_WORKERS workers
 * (environment; default: the number of CPUs), or explicitly with
 * weft_runtime_start.  With one worker, scheduling is deterministic: green
 * threads spawned or yielding on the worker run in the order they were
 * queued (FIFO), as do those spawned from OS threads among themselves (a
 * worker takes a batch of the latter when its own queue runs dry, and one
 * every 61 scheduling rounds), so tests are reproducible.
 *
 * Conventions as everywhere in weft (weft.h): 0 or a negative errno code;
 * the deadline is the last argument.
 */
#ifndef WEFT_GREEN_H
#define WEFT_GREEN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_green weft_green;
typedef int (*weft_green_fn)(void *arg);

typedef struct weft_green_opts {
    const char *name;   /* copied (at most 63 bytes kept); NULL: "Green-<id>" */
    size_t stack_size;  /* 0: the default (64 KiB); rounded up to pages;
                           at most 1 GiB */
} weft_green_opts;

/* Start fn(arg) in a new green thread.  opts may be NULL.  With out == NULL
 * the green thread starts detached.  Any thread (OS or green).  Starts the
 * runtime if it is not running.  Returns 0, -EINVAL (fn NULL, stack too
 * large), -ENOMEM, or -EAGAIN (a kernel limit on stacks: the log says which).
 * Use the macro weft_green_spawn: it records the spawn site (file:line) for
 * the stack overflow report. */
int weft_green_spawn_at(weft_green **out, weft_green_fn fn, void *arg,
                        const weft_green_opts *opts, const char *site);
#define WEFT__STR2(x) #x
#define WEFT__STR(x) WEFT__STR2(x)
#define weft_green_spawn(out, fn, arg, opts)                                 \
    weft_green_spawn_at((out), (fn), (arg), (opts),                          \
                        __FILE__ ":" WEFT__STR(__LINE__))

/* Wait until g has returned, then store its result (if result != NULL) and
 * free g: on 0 the handle is consumed.  From OS and green threads; blocks,
 * cancellable.  -ETIMEDOUT (g still valid: join again or detach), -ECANCELED,
 * -EDEADLK (g is the caller), -EINVAL (g NULL).  Only one thread may join a
 * given handle. */
int weft_green_join(weft_green *g, int *result, int64_t deadline);

/* Give up the handle: g is freed when it returns.  0 or -EINVAL. */
int weft_green_detach(weft_green *g);

/* Let the other runnable green threads of this worker run, then continue.
 * -EPERM on an OS thread (there is nothing to yield to). */
int weft_green_yield(void);

/* Sleep until deadline; same as weft_sleep_until (which also parks a green
 * thread rather than its worker).  0, or -ECANCELED. */
int weft_green_sleep_until(int64_t deadline);

/* The calling green thread, or NULL on an OS thread. */
weft_green *weft_green_current(void);

/* Cancel g: its current blocking call (if any) and every later one return
 * -ECANCELED (a join, a lock acquire, a queue get, a sleep...).  A green
 * thread that is running sees it at its next blocking call.  Any thread;
 * g must still be a valid handle.  0 or -EINVAL. */
int weft_green_cancel(weft_green *g);

/* Name and id (ids are unique, from 1).  NULL g: the current green thread
 * (name NULL / id 0 on an OS thread). */
const char *weft_green_name(const weft_green *g);
uint64_t weft_green_id(const weft_green *g);

/* Start the runtime with workers worker threads (0: WEFT_WORKERS or the CPU
 * count).  -EBUSY if it is already running, -EINVAL if workers < 0 or more
 * than 1024, -EAGAIN/-ENOMEM if a worker thread cannot start. */
int weft_runtime_start(int workers);

/* The number of workers of the running runtime, 0 if none. */
int weft_runtime_workers(void);

/* The switch interval: how long a green thread may hold its worker while
 * others wait before the monitor hands the others to a spare worker (as
 * Python's sys.setswitchinterval, in ns).  Default 10 ms, or
 * WEFT_SWITCH_INTERVAL_MS from the environment.  set: 0, or -EINVAL unless
 * 1 ms <= ns <= 1 hour (the monitor looks every millisecond).  Any thread,
 * any time, with or without a runtime. */
int weft_runtime_set_switch_interval(int64_t ns);
int64_t weft_runtime_switch_interval(void);

/* Wait until every green thread has returned (detached ones included), then
 * stop the workers.  The runtime may be started again afterwards.  0,
 * -ETIMEDOUT (green threads still run; the runtime keeps running), -EDEADLK
 * when called from a green thread, -ESRCH if it is not running.  Only from
 * OS threads. */
int weft_runtime_shutdown(int64_t deadline);

/* Green-thread-local data: like weft_tls keys, but per green thread.  A
 * key's destructor runs (in the green thread) on its non-NULL value when
 * the green thread returns.  At most 64 keys; -EAGAIN beyond.  get/set on
 * an OS thread: NULL / -EPERM.  A green thread's slots are allocated at its
 * first set, which can therefore fail with -ENOMEM. */
typedef struct weft_green_key {
    int index; /* private */
} weft_green_key;
int weft_green_key_create(weft_green_key *key, void (*destructor)(void *));
void *weft_green_key_get(weft_green_key key);
int weft_green_key_set(weft_green_key key, void *value);

#ifdef __cplusplus
}
#endif
#endif
