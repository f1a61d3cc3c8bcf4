/* weft/future.h - futures, and waiting on several of them (Python's
 * concurrent.futures.Future, wait and as_completed, in C form).
 *
 * A future is the result of a piece of work that may not have run yet.  Its
 * state moves one way only:
 *
 *     PENDING --set_running--> RUNNING --set_result--> FINISHED
 *        |                        \------set_error---> FAILED
 *        +--cancel--> CANCELLED   (and PENDING may go straight to
 *                                  FINISHED or FAILED)
 *
 * FINISHED, FAILED and CANCELLED are "done", and final.  cancel succeeds
 * only while the future is PENDING: work that has started is never
 * interrupted by cancel (an executor may offer more; the process pool
 * kills a running task's worker, see weft/process.h).
 *
 * A value is a void * (for the thread and green executors, whatever the
 * task stored) with an optional size and an optional free function: a value
 * set with weft_future_set_result_owned belongs to the future and is freed
 * with it (the process pool hands back bytes this way).  An error is a code
 * (negative, weft/error.h) and a message.
 *
 * Errors the caller never reads are not lost.  A future that FAILED and is
 * destroyed without anyone having asked for its error (weft_future_result,
 * weft_future_error, weft_future_error_message) is reported through the
 * logger at its destruction, naming the code and the message; Python drops
 * such an exception silently.
 *
 * Lifetime.  Futures are reference counted.  Whoever creates one, or gets
 * one from an executor, holds one reference and gives it back with
 * weft_future_release; executors hold their own until the work is done.
 *
 * Done-callbacks run exactly once each, in the order added: in the thread
 * (OS or green) that completes the future, after waiters have been woken,
 * or at once in the adding thread if the future is already done.  A
 * callback that returns non-zero is logged and the others still run.
 *
 * Waiting works the same from OS threads and green threads: a green thread
 * parks, its worker runs others.  Every wait takes a deadline and returns
 * -ECANCELED if the waiting green thread is cancelled.
 */
#ifndef WEFT_FUTURE_H
#define WEFT_FUTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_future weft_future;

typedef enum weft_future_state {
    WEFT_FUTURE_PENDING = 0,
    WEFT_FUTURE_RUNNING = 1,
    WEFT_FUTURE_FINISHED = 2,
    WEFT_FUTURE_FAILED = 3,
    WEFT_FUTURE_CANCELLED = 4,
} weft_future_state;

/* A new PENDING future with one reference.  0, -EINVAL, -ENOMEM. */
int weft_future_create(weft_future **out);

/* Take another reference (returns f), give one back.  The last release
 * frees the future, its owned value and its message; releasing NULL does
 * nothing. */
weft_future *weft_future_retain(weft_future *f);
void weft_future_release(weft_future *f);

/* The state now; "now" may be stale the moment it returns unless done. */
weft_future_state weft_future_get_state(const weft_future *f);
bool weft_future_done(const weft_future *f);
bool weft_future_running(const weft_future *f);
bool weft_future_cancelled(const weft_future *f);
/* The name of a state: "pending", "running", "finished", ... */
const char *weft_future_state_name(weft_future_state s);

/* Cancel a PENDING future: 0 (it is CANCELLED now, or was already), or
 * -EBUSY if it is running or finished or failed (nothing changes). */
int weft_future_cancel(weft_future *f);

/* Wait until f is done.  0, -ETIMEDOUT, -ECANCELED (the waiting green
 * thread was cancelled). */
int weft_future_wait(weft_future *f, int64_t deadline);

/* Wait until f is done and give its outcome:
 *   0             FINISHED; *value (if value is not NULL) is its value
 *   WEFT_EFAILED  FAILED; weft_future_error gives the code and message
 *   -ECANCELED    the future was CANCELLED (weft_future_cancelled tells it
 *                 from the waiting green thread being cancelled)
 *   -ETIMEDOUT    not done by the deadline
 * The value stays the future's: it lives as long as the future. */
int weft_future_result(weft_future *f, void **value, int64_t deadline);

/* The size that came with the value (0 when none was given); valid once
 * FINISHED. */
size_t weft_future_result_size(const weft_future *f);

/* Wait until f is done and give its error: 0 with *code = 0 and *message =
 * NULL if it FINISHED, with the failure's code and message if it FAILED
 * (the message lives as long as the future; never NULL for a failure).
 * -ECANCELED if CANCELLED, -ETIMEDOUT.  code and message may be NULL. */
int weft_future_error(weft_future *f, int *code, const char **message,
                      int64_t deadline);

/* ---- the executor's side ------------------------------------------- */

/* PENDING -> RUNNING.  0; -ECANCELED if the future was cancelled (do not
 * run the work; the future stays CANCELLED); -EINVAL if it is not PENDING. */
int weft_future_set_running(weft_future *f);

/* Complete f (PENDING or RUNNING) with a value, waking every waiter and
 * running the callbacks.  -EINVAL if it is already done (Python's
 * InvalidStateError): nothing changes, and an owned value is NOT freed. */
int weft_future_set_result(weft_future *f, void *value);
int weft_future_set_result_owned(weft_future *f, void *value, size_t size,
                                 void (*free_fn)(void *value));

/* Fail f (PENDING or RUNNING) with code (negative; 0 or positive is
 * -EINVAL) and a message made from fmt (NULL: weft_strerror(code)).
 * -EINVAL if it is already done. */
int weft_future_set_error(weft_future *f, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- callbacks ------------------------------------------------------ */

typedef int (*weft_future_callback)(weft_future *f, void *arg);

/* Call cb(f, arg) once f is done (at once, here, if it is done already).
 * 0, -EINVAL, -ENOMEM. */
int weft_future_add_done_callback(weft_future *f, weft_future_callback cb,
                                  void *arg);

/* ---- waiting on several --------------------------------------------- */

typedef enum weft_wait_mode {
    WEFT_FIRST_COMPLETED = 1, /* any one done */
    WEFT_FIRST_FAILURE = 2,   /* any one FAILED, or else all done */
    WEFT_ALL_COMPLETED = 3,   /* all done */
} weft_wait_mode;

/* Wait on fs[0..n) (NULLs are not allowed; a future may appear twice)
 * until mode's condition holds.  Whatever the outcome, done[i] (if done is
 * not NULL) says whether fs[i] is done and *ndone (if not NULL) how many
 * are.  0 when the condition holds (n == 0 holds at once), -ETIMEDOUT,
 * -ECANCELED, -EINVAL, -ENOMEM. */
int weft_futures_wait(weft_future *const *fs, size_t n, weft_wait_mode mode,
                      bool *done, size_t *ndone, int64_t deadline);

/* As-completed: hand back the futures of fs[0..n) in the order they get
 * done (those already done first, in input order). */
typedef struct weft_as_completed weft_as_completed;

/* Start watching fs[0..n); the iterator holds a reference to each, so the
 * array may go.  0, -EINVAL, -ENOMEM. */
int weft_as_completed_start(weft_as_completed **out, weft_future *const *fs,
                            size_t n);

/* The next future to be done (a borrowed pointer: valid while the caller
 * holds its own reference, or until weft_as_completed_end).  0; -EPIPE when
 * all n were handed back; -ETIMEDOUT / -ECANCELED (nothing consumed, call
 * again); -EBUSY if another thread is in next on the same iterator. */
int weft_as_completed_next(weft_as_completed *it, weft_future **f,
                           int64_t deadline);

/* Stop watching and free the iterator.  Never blocks.  0, -EBUSY if a
 * thread is in next, -EINVAL. */
int weft_as_completed_end(weft_as_completed *it);

#ifdef __cplusplus
}
#endif
#endif
