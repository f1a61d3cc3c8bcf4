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
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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
