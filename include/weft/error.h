/* weft/error.h - the one error convention of the whole API.
 *
 * Every weft function that can fail returns an int: 0 on success, or a
 * negative errno-style code on failure.  Results travel through
 * out-parameters.  errno is never used as the channel, and the library never
 * prints or exits because of an error.
 *
 * The codes, and what they mean everywhere in weft:
 *
 *   -EAGAIN      a non-blocking form (_try, _nowait) would have had to wait
 *   -ETIMEDOUT   the deadline passed before the call could complete
 *   -ECANCELED   the calling green thread was cancelled (a blocking call in a
 *                cancelled green thread returns this at its next park)
 *   -EPIPE       the queue (or other channel) has been shut down
 *   -EPERM       the caller does not hold what it is releasing or waiting
 *                with (a lock, an rlock, a condition's lock)
 *   -EDEADLK     the call would wait for itself forever (joining oneself,
 *                re-acquiring a non-recursive lock one already holds)
 *   -EINVAL      an argument is out of range (parties <= 0, negative count)
 *   -EOVERFLOW   a count would exceed its bound (a bounded semaphore
 *                released too many times, task_done called too often, an
 *                rlock's recursion count at its limit)
 *   -EBUSY       the object is in use and cannot be destroyed or reset
 *   -ENOMEM      memory or another resource ran out
 *   -EAGAIN      is also what thread creation returns when the OS refuses
 *   WEFT_EBROKEN a barrier or an executor is broken; every waiter on it
 *                fails with this until it is reset (a barrier), or for good
 *                (an executor whose initializer failed)
 *   WEFT_EFAILED the work behind a future failed: weft_future_error gives
 *                the task's own code and message
 *   WEFT_EWORKER a process-pool worker died (killed by a signal, exited)
 *                while it ran the task; the message says how
 *
 * weft_strerror(code) gives a message for any code, weft's own or errno's;
 * weft_errname(code) gives its symbolic name ("ETIMEDOUT").
 */
#ifndef WEFT_ERROR_H
#define WEFT_ERROR_H

#include <errno.h>

#ifdef __cplusplus
extern "C" {
#endif

/* weft's own codes live below -4000, far from any errno value. */
#define WEFT_EBROKEN (-4001)
#define WEFT_EFAILED (-4002)
#define WEFT_EWORKER (-4003)

/* The X-macro table of every code weft returns: name, value, message.  It
 * generates weft_strerror and weft_errname, and docs/ERRORS.md is written
 * from it. */
#define WEFT_ERRNO_MAP(X)                                                    \
    X(EAGAIN, -EAGAIN, "operation would block")                             \
    X(ETIMEDOUT, -ETIMEDOUT, "deadline passed")                             \
    X(ECANCELED, -ECANCELED, "cancelled")                                   \
    X(EPIPE, -EPIPE, "shut down")                                           \
    X(EPERM, -EPERM, "not held by the caller")                              \
    X(EDEADLK, -EDEADLK, "would wait for itself forever")                   \
    X(EINVAL, -EINVAL, "invalid argument")                                  \
    X(EOVERFLOW, -EOVERFLOW, "count would exceed its bound")                \
    X(EBUSY, -EBUSY, "in use")                                              \
    X(ENOMEM, -ENOMEM, "out of memory")                                     \
    X(ESRCH, -ESRCH, "no such thread")                                      \
    X(WEFT_EBROKEN, WEFT_EBROKEN, "broken (barrier aborted; executor initializer failed)") \
    X(WEFT_EFAILED, WEFT_EFAILED, "the task failed")                        \
    X(WEFT_EWORKER, WEFT_EWORKER, "the worker process died")

/* A message for code (0, a negative weft code or a negative errno).  Never
 * NULL; the string is static.  Any thread. */
const char *weft_strerror(int code);

/* The symbolic name of code ("ETIMEDOUT", "WEFT_EBROKEN", any errno value
 * the C library names: "ENOENT"), or "UNKNOWN". */
const char *weft_errname(int code);

#ifdef __cplusplus
}
#endif
#endif
