/* pollset_epoll.c - the poller backend on Linux: one epoll instance,
 * edge-triggered, and an eventfd in it to interrupt a blocked wait.
 *
 * The eventfd is registered (level-triggered) with a token no descriptor
 * can have (all ones) and drained only by a blocking wait.  An interrupt that finds no
 * thread blocked is kept in the eventfd's counter and makes the next wait
 * return at once: spurious returns are harmless, lost ones are not.
 *
 * Waits with a deadline use epoll_pwait2 (nanosecond timeout; Linux 5.11)
 * and fall back to epoll_wait rounded up to the next millisecond where the
 * kernel lacks it, so a timer is never fired early.
 */
#include <errno.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "platform/platform.h"
#include "platform/pollset.h"
#include "weft/time.h"

#define INTERRUPT_TOKEN UINT64_MAX
#define BATCH 256

static _Atomic int epfd = -1;
static _Atomic int evfd = -1;
static _Atomic int no_pwait2;

int weft__pollset_open(void)
{
    static _Atomic uint32_t opening;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = INTERRUPT_TOKEN};
    int ep, efd, rc = 0;

    if (atomic_load(&epfd) >= 0)
        return 0;
    /* Serialise creators with a tiny futex lock: this runs once. */
    while (atomic_exchange(&opening, 1) != 0)
        (void)weft__futex_wait(&opening, 1, WEFT_FOREVER);
    if (atomic_load(&epfd) < 0) {
        ep = epoll_create1(EPOLL_CLOEXEC);
        efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (ep < 0 || efd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) != 0) {
            rc = -errno;
            if (ep >= 0)
                close(ep);
            if (efd >= 0)
                close(efd);
        } else {
            atomic_store(&evfd, efd);
            atomic_store(&epfd, ep); /* published last */
        }
    }
    atomic_store(&opening, 0);
    (void)weft__futex_wake(&opening, 1);
    return rc;
}

int weft__pollset_add(int fd, uint64_t token)
{
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.u64 = token,
    };

    if (epoll_ctl(atomic_load(&epfd), EPOLL_CTL_ADD, fd, &ev) == 0)
        return 0;
    if (errno == EEXIST) /* a dup of a registered description: re-arm */
        return epoll_ctl(atomic_load(&epfd), EPOLL_CTL_MOD, fd, &ev) == 0
                   ? 0 : -errno;
    return -errno;
}

void weft__pollset_del(int fd)
{
    (void)epoll_ctl(atomic_load(&epfd), EPOLL_CTL_DEL, fd, NULL);
}

static int wait_until(struct epoll_event *e, int max, int64_t deadline)
{
    struct timespec ts;
    int64_t left, ms;
    int n;

    if (deadline == WEFT_FOREVER)
        return epoll_wait(atomic_load(&epfd), e, max, -1);
    left = deadline - weft__clock_now();
    if (left < 0)
        left = 0;
    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        ts.tv_sec = left / 1000000000;
        ts.tv_nsec = left % 1000000000;
        n = epoll_pwait2(atomic_load(&epfd), e, max, &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        atomic_store(&no_pwait2, 1);
    }
    ms = (left + 999999) / 1000000;
    return epoll_wait(atomic_load(&epfd), e, max, ms > 1000000 ? 1000000
                                                               : (int)ms);
}

int weft__pollset_wait(weft__pollev *ev, int max, int64_t deadline)
{
    struct epoll_event e[BATCH];
    uint64_t junk;
    int n, k = 0;

    if (max > BATCH)
        max = BATCH;
    n = wait_until(e, max, deadline);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        if (e[i].data.u64 == INTERRUPT_TOKEN) {
            /* Only a blocking wait consumes an interrupt: one taken by a
             * passing non-blocking poll would leave the blocked thread
             * asleep (epoll puts it back to sleep when it finds the ready
             * list empty). */
            if (deadline != WEFT_NOW)
                while (read(atomic_load(&evfd), &junk, sizeof junk) > 0)
                    ;
            continue;
        }
        ev[k].token = e[i].data.u64;
        ev[k].events = 0;
        if (e[i].events & (EPOLLIN | EPOLLRDHUP))
            ev[k].events |= WEFT__PE_IN;
        if (e[i].events & EPOLLOUT)
            ev[k].events |= WEFT__PE_OUT;
        if (e[i].events & (EPOLLERR | EPOLLHUP))
            ev[k].events |= WEFT__PE_ERR;
        k++;
    }
    return k;
}

void weft__pollset_interrupt(void)
{
    uint64_t one = 1;
    int fd = atomic_load(&evfd);

    if (fd >= 0)
        (void)!write(fd, &one, sizeof one);
}
