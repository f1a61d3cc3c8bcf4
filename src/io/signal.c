/* signal.c - weft/signal.h: signals received as blocking calls, woken
 * through the netpoller by a self-pipe.
 *
 * Design.  The handler of a watched signal counts the delivery
 * (pending[signo]++, a lock-free atomic) and then writes one byte to a
 * non-blocking pipe; the counts are the truth, the pipe only tells the
 * poller (a full pipe loses bytes, never deliveries).  The pipe is an
 * internal descriptor of the poller (weft__io_set_hook): whichever worker
 * collects its edge drains it and wakes every waiter of S.waiters, and the
 * waiters, green threads or OS threads alike, wait there through the park
 * layer like on any primitive.  No delivery is missed: a waiter looks at
 * the counts and queues itself under the wait queue's guard; the handler
 * counts before it writes, and the hook drains before it takes the guard
 * to wake, so either the waiter sees the count, or it is queued when the
 * hook wakes the queue; and a write after the drain makes a new edge.
 * While anyone waits, the poller is "wanted" (weft__poller_waiter_add), so
 * an idle worker blocks in it; the first wait starts the green runtime if
 * it is not running, since its workers are the ones that poll.  A waiter
 * consumes one delivery with a CAS on its count, so each delivery goes to
 * one waiter; every waiter is woken and looks.
 * (Rejected: signalfd.  It receives only signals blocked in every thread,
 * and a library cannot block signals in threads it did not start: one
 * thread with the signal unblocked would take the default action.  Also
 * rejected: waiters parking on the pipe itself.  An OS thread polls a
 * level, and another waiter's drain could hide the byte it was woken for.)
 *
 * Locking: S.lock serialises watch and unwatch (old actions, the pipe's
 * creation); S.waiters' guard guards the waiters; watched and pending are
 * atomics read by waiters and the handler.  The pipe lives until the
 * process exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "green/green.h"
#include "io/io.h"
#include "io/poller.h"
#include "park/park.h"
#include "platform/platform.h"
#include "weft/io.h"
#include "weft/signal.h"
#include "weft/sync.h"

#define NSIGS 65 /* Linux: 1..64 */

static struct {
    weft_lock lock;
    int rfd;                      /* guarded by lock (set once) */
    _Atomic int wfd;              /* read by the handler */
    struct sigaction old[NSIGS];  /* guarded by lock */
    _Atomic int watched[NSIGS];
    _Atomic long pending[NSIGS];
    weft__waitq waiters;          /* its guard guards it */
} S = {.lock = WEFT_LOCK_INIT, .rfd = -1, .wfd = -1};

static void on_signal(int signo)
{
    int saved = errno;
    char b = (char)signo;

    atomic_fetch_add(&S.pending[signo], 1);
    (void)!write(atomic_load(&S.wfd), &b, 1);
    errno = saved;
}

static bool valid(int signo)
{
    return signo > 0 && signo < NSIGS && signo != SIGKILL &&
           signo != SIGSTOP;
}

/* The poller saw the pipe become readable: drain it, wake every waiter. */
static void on_pipe(void)
{
    char junk[64];

    while (read(S.rfd, junk, sizeof junk) > 0)
        ;
    weft__waitq_lock(&S.waiters);
    (void)weft__wake_all(&S.waiters, 0);
    weft__waitq_unlock(&S.waiters);
}

/* lock held */
static int make_pipe(void)
{
    int p[2], rc;

    if (S.rfd >= 0)
        return 0;
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
        return -errno;
    rc = weft__io_set_hook(p[0], on_pipe);
    if (rc != 0) {
        close(p[0]);
        close(p[1]);
        return rc;
    }
    S.rfd = p[0];
    atomic_store(&S.wfd, p[1]);
    return 0;
}

int weft_signal_watch(int signo)
{
    struct sigaction sa;
    int rc;

    if (!valid(signo))
        return -EINVAL;
    weft_lock_acquire(&S.lock, WEFT_FOREVER);
    if (atomic_load(&S.watched[signo])) {
        rc = -EALREADY;
    } else if ((rc = make_pipe()) == 0) {
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sa.sa_flags = weft__sa_restart();
        sigfillset(&sa.sa_mask);
        atomic_store(&S.pending[signo], 0);
        atomic_store(&S.watched[signo], 1);
        if (sigaction(signo, &sa, &S.old[signo]) != 0) {
            rc = -errno;
            atomic_store(&S.watched[signo], 0);
        }
    }
    weft_lock_release(&S.lock);
    return rc;
}

int weft_signal_unwatch(int signo)
{
    int rc = 0;

    if (!valid(signo))
        return -EINVAL;
    weft_lock_acquire(&S.lock, WEFT_FOREVER);
    if (!atomic_load(&S.watched[signo])) {
        rc = -EINVAL;
    } else {
        (void)sigaction(signo, &S.old[signo], NULL);
        atomic_store(&S.watched[signo], 0);
        atomic_store(&S.pending[signo], 0);
    }
    weft_lock_release(&S.lock);
    /* A waiter whose set holds no watched signal any more returns. */
    weft__waitq_lock(&S.waiters);
    (void)weft__wake_all(&S.waiters, 0);
    weft__waitq_unlock(&S.waiters);
    return rc;
}

long weft_signal_pending(int signo)
{
    if (!valid(signo) || !atomic_load(&S.watched[signo]))
        return 0;
    return atomic_load(&S.pending[signo]);
}

/* Consume one pending delivery of a watched signal in set: its number, or
 * 0 if none. */
static int take(const sigset_t *set)
{
    for (int s = 1; s < NSIGS; s++) {
        if (!atomic_load(&S.watched[s]) || sigismember(set, s) != 1)
            continue;
        long v = atomic_load(&S.pending[s]);
        while (v > 0)
            if (atomic_compare_exchange_weak(&S.pending[s], &v, v - 1))
                return s;
    }
    return 0;
}

static bool any_watched(const sigset_t *set)
{
    for (int s = 1; s < NSIGS; s++)
        if (atomic_load(&S.watched[s]) && sigismember(set, s) == 1)
            return true;
    return false;
}

int weft_signal_wait(const sigset_t *set, int64_t deadline)
{
    weft__wait_entry e;
    int rc, s;

    if (set == NULL || !any_watched(set))
        return -EINVAL;
    rc = weft__sched_ensure();
    if (rc != 0)
        return rc;
    for (;;) {
        weft__waitq_lock(&S.waiters);
        if ((s = take(set)) != 0 || !any_watched(set)) {
            weft__waitq_unlock(&S.waiters);
            return s != 0 ? s : -EINVAL; /* -EINVAL: unwatched meanwhile */
        }
        weft__poller_waiter_add(1);
        if (weft_green_current() == NULL)
            weft__sched_need_poller();
        rc = weft__wait_on(&S.waiters, &e, false, deadline, "signal", set);
        weft__poller_waiter_add(-1);
        if (rc != 0) {
            weft__waitq_unlock(&S.waiters);
            return rc;
        }
    }
}
