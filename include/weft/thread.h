/* weft/thread.h - OS threads, thread-local data and timers (Python's
 * threading.Thread, threading.local and threading.Timer, in C form).
 *
 * A thread runs fn(arg); fn returns 0 for success or a non-zero code (by
 * convention a negative weft/errno code) for failure.  That int is the
 * thread's result: join hands it back.  A thread whose fn returns non-zero
 * is reported to the failure hook (Python's threading.excepthook); the
 * default hook logs one line through weft's logger naming the thread and
 * the code.
 *
 * Exit policy (Python's, made explicit).  A thread is non-daemon unless
 * told otherwise, and inherits the daemon flag of the thread that starts it
 * (the main thread is non-daemon; a thread weft did not start counts as a
 * daemon, as Python's dummy threads do).  When the process exits normally
 * (main returns or exit() is called, from any thread), weft first waits for
 * every non-daemon thread it started that is still running, detached ones
 * included, so their work is not cut off; daemon threads are abandoned and
 * die with the process.  The thread calling exit() is not waited for, nor
 * are threads weft did not start.  This runs as an atexit handler
 * registered at the first weft_thread_start, so handlers registered before
 * that run after the wait.  Call weft_thread_join_all() yourself to bound
 * the wait.
 *
 * fork.  In a child, only the forking thread exists: every other handle
 * is marked ended (join returns at once with an unspecified result), and
 * the forking thread becomes the main thread.
 *
 * Handles.  weft_thread_start returns a handle that must eventually be
 * released with weft_thread_join (which consumes it) or weft_thread_detach;
 * exactly one thread may do so.  fn must return (pthread_exit from fn is
 * not supported: the thread would never count as ended).
 * Handles obtained from weft_thread_current, weft_thread_main or
 * weft_thread_enumerate are borrowed: they stay valid while the thread is
 * alive (and, for enumerate, until weft_thread_release).
 */
#ifndef WEFT_THREAD_H
#define WEFT_THREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_thread weft_thread;
typedef int (*weft_thread_fn)(void *arg);

/* Longest name kept; the OS thread name is cut to 15 bytes by Linux. */
#define WEFT_THREAD_NAME_MAX 64

typedef struct weft_thread_opts {
    const char *name;     /* NULL: "Thread-N" */
    int daemon;           /* -1: inherit from the creator (the default);
                             0: non-daemon; 1: daemon */
    size_t stack_size;    /* 0: weft_thread_stack_size(); else >= 32 KiB */
} weft_thread_opts;

/* Zero opts would mean daemon 0; use this to inherit, as Python does. */
#define WEFT_THREAD_OPTS_DEFAULT {NULL, -1, 0}

/* Start a thread running fn(arg).  opts may be NULL.  -EINVAL (stack too
 * small), -EAGAIN (the OS refused a thread), -ENOMEM. */
int weft_thread_start(weft_thread **out, weft_thread_fn fn, void *arg,
                      const weft_thread_opts *opts);

/* Wait until the thread ends (fn returned, the failure hook and its TLS
 * destructors ran) or deadline passes.  On 0, *result (if not NULL) gets
 * fn's return value and the handle is released.  -ETIMEDOUT leaves the
 * handle valid for another join.  -EDEADLK when joining oneself, -EINVAL on
 * a detached or already joined thread (seen through a borrowed handle) and
 * on threads weft did not start.  Blocks; cancellation point. */
int weft_thread_join(weft_thread *t, int *result, int64_t deadline);

/* Release the handle without waiting; the thread cleans up after itself.
 * -EINVAL as for join. */
int weft_thread_detach(weft_thread *t);

bool weft_thread_is_alive(const weft_thread *t);
bool weft_thread_is_daemon(const weft_thread *t);
const char *weft_thread_name(const weft_thread *t);
/* Rename (names are cut to WEFT_THREAD_NAME_MAX - 1 bytes); also renames
 * the OS thread if weft started it and it is running (the main thread and
 * adopted threads keep their OS names).  Any thread.  -EINVAL on NULL,
 * -ENOMEM.  Earlier names stay valid while the handle lives. */
int weft_thread_set_name(weft_thread *t, const char *name);
/* weft's id: unique for the life of the process, never 0 or reused. */
uint64_t weft_thread_id(const weft_thread *t);
/* The kernel's thread id (gettid), 0 before start or after exit. */
long weft_thread_native_id(const weft_thread *t);

/* The calling thread.  Threads weft did not start (the main thread, threads
 * from pthread_create) get a handle at first use, named "MainThread" or
 * "Dummy-N", daemon, not joinable.  Never NULL. */
weft_thread *weft_thread_current(void);
weft_thread *weft_thread_main(void);
/* weft_thread_id(weft_thread_current()) without the handle. */
uint64_t weft_thread_get_ident(void);

/* The live threads: started by weft and not yet ended, plus the main thread
 * and adopted foreign threads.  Fills up to cap handles (each must be given
 * back with weft_thread_release) and returns how many threads are alive,
 * which may exceed cap. */
int weft_thread_enumerate(weft_thread **out, int cap);
void weft_thread_release(weft_thread *t);
int weft_thread_active_count(void);

/* Wait for every live non-daemon thread weft started (other than the
 * caller), including ones started meanwhile, until deadline: what weft does
 * at exit.  Handles are not consumed.  0, -ETIMEDOUT or -ECANCELED. */
int weft_thread_join_all(int64_t deadline);

/* The default stack size for threads started later; 0 restores the
 * system's.  Returns the previous value through *old if not NULL.  -EINVAL
 * below 32 KiB. */
int weft_thread_stack_size(size_t size, size_t *old);

/* The failure hook: called on the failing thread after fn returned
 * rc != 0, before its TLS destructors run.  NULL restores the default (one
 * log line at level ERROR: "thread <name> failed: <ERRNAME> (<message>)",
 * or the number instead of the name for codes weft does not know).
 * Returns the previous hook; the first call returns the default itself, so
 * a custom hook can chain to it. */
typedef void (*weft_thread_failure_hook)(weft_thread *t, int rc);
weft_thread_failure_hook weft_thread_set_failure_hook(weft_thread_failure_hook h);

/* ---- thread-local data ------------------------------------------------ */

/* A key names one slot in every thread.  A thread's value starts NULL;
 * when the thread ends, dtor (if any) is called with each non-NULL value it
 * left (in up to 4 rounds, as POSIX does, if destructors set values again).
 * Keys are cheap; up to WEFT_TLS_KEYS_MAX may exist at once.  A key is a
 * small value: copy it freely.  An all-zero key is never valid. */
typedef struct weft_tls_key {
    unsigned idx;             /* private: the slot */
    unsigned gen;             /* private: the slot's generation */
} weft_tls_key;

#define WEFT_TLS_KEYS_MAX 256

/* -EAGAIN when every key is taken.  Any thread. */
int weft_tls_key_create(weft_tls_key *key, void (*dtor)(void *value));
/* The slot is freed for reuse; destructors are not run for it again, and
 * values left under it are never returned (freeing them is the caller's
 * business, as with pthread_key_delete).  -EINVAL if already deleted. */
int weft_tls_key_delete(weft_tls_key key);
/* The calling thread's value: NULL if never set or the key is deleted. */
void *weft_tls_get(weft_tls_key key);
/* -EINVAL on a deleted key, -ENOMEM. */
int weft_tls_set(weft_tls_key key, void *value);

/* ---- Timer ------------------------------------------------------------ */

/* Run fn(arg) once after a delay unless cancelled first (Python's
 * threading.Timer): a thread that waits, then calls fn.  Opaque. */
typedef struct weft_timer weft_timer;

/* Start the countdown at once; fn runs at deadline. */
int weft_timer_start(weft_timer **out, int64_t deadline,
                     void (*fn)(void *arg), void *arg);
/* Stop it if fn has not started: 0 if cancelled in time (or already
 * cancelled), -EAGAIN if fn has already started or finished.  Exactly one of
 * fn and a successful cancel happens.  Any thread; never blocks. */
int weft_timer_cancel(weft_timer *t);
/* Wait for the timer's thread to end (fn done or cancelled) and free the
 * timer.  -ETIMEDOUT leaves it valid.  Every timer must be joined once; a
 * timer's fn must not join its own timer (-EDEADLK). */
int weft_timer_join(weft_timer *t, int64_t deadline);
/* Did fn run (or is it running)? */
bool weft_timer_fired(const weft_timer *t);

#ifdef __cplusplus
}
#endif
#endif
