/* futex.c - the futex system call, the one primitive every OS-thread wait in
 * weft ends in (through park).  Linux only; a port to another OS replaces
 * this file (with __ulock on macOS, WaitOnAddress on Windows).
 *
 * Deadlines are absolute CLOCK_MONOTONIC times, handed to the kernel as they
 * are with FUTEX_WAIT_BITSET, so a wait interrupted and restarted never
 * stretches its deadline.
 */
#include "platform.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif

/* ThreadSanitizer defers a signal that arrives outside a call it
 * intercepts until the thread's next intercepted call, and the raw futex
 * system call is not one: a thread woken by a signal here and going back
 * to sleep would never run the handler (a watched SIGINT would never be
 * counted).  Making any intercepted call runs it; this one only reads the
 * signal mask. */
void weft__tsan_deliver_signals(void)
{
#ifdef WEFT_TSAN
    sigset_t s;
    (void)pthread_sigmask(SIG_BLOCK, NULL, &s);
#endif
}

/* ThreadSanitizer runs a deferred handler only when a call it intercepts
 * returns, and with SA_RESTART the kernel silently restarts the raw futex
 * wait the signal interrupted: the handler would never run.  So under it,
 * weft's handlers leave SA_RESTART out, and weft's own waits retry EINTR
 * themselves (they all do). */
int weft__sa_restart(void)
{
#ifdef WEFT_TSAN
    return 0;
#else
    return SA_RESTART;
#endif
}

int weft__futex_wait(_Atomic uint32_t *addr, uint32_t expected,
                     int64_t deadline)
{
    struct timespec ts, *tsp = NULL;

    if (deadline >= 0) {
        ts.tv_sec = deadline / 1000000000;
        ts.tv_nsec = deadline % 1000000000;
        tsp = &ts;
    }
    long r = syscall(SYS_futex, (uint32_t *)addr,
                     FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected, tsp,
                     NULL, FUTEX_BITSET_MATCH_ANY);
    if (r == 0)
        return 0;
    switch (errno) {
    case EAGAIN:
        return -EAGAIN;
    case ETIMEDOUT:
        return -ETIMEDOUT;
    case EINTR:
        weft__tsan_deliver_signals();
        return -EINTR;
    default:
        return 0; /* treat as spurious; the caller re-checks */
    }
}

int weft__futex_wake(_Atomic uint32_t *addr, int n)
{
    long r = syscall(SYS_futex, (uint32_t *)addr,
                     FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n, NULL, NULL, 0);
    return r < 0 ? 0 : (int)r;
}
