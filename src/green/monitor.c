/* monitor.c - the monitor thread: one OS thread that wakes about every
 * millisecond while the green runtime is busy, so that a worker held by one
 * green thread hands its queue to a spare worker, and serves the debug
 * layer (weft__debug_poll) at every round.
 *
 * Design (Go's sysmon).  The thread sleeps on a futex word with a deadline
 * between rounds: ROUND_NS while some worker runs a green thread or work is
 * queued, doubling up to IDLE_NS while the runtime is idle or not running,
 * so an idle process is woken twenty times a second at most.  A kick (the
 * runtime starting, the SIGQUIT handler of the debug layer) stores 1 in the
 * word and wakes it: async-signal-safe, and the next round runs at once.
 * Each round asks the scheduler (weft__sched_watch, sched.c) to look for
 * hogged workers with the current switch interval, then calls
 * weft__debug_poll.  The monitor is a daemon weft thread named
 * "weft-monitor", started by the runtime (or by the debug layer alone) and
 * never stopped: after weft_runtime_shutdown it keeps sleeping IDLE_NS at a
 * time and finds no workers to watch.
 *   (Rejected: a timer signal (SIGALRM) per round - it would interrupt
 *   system calls all over the program; and a monitor started and stopped
 *   with every runtime - the debug layer needs it without one.)
 *
 * The switch interval (weft_runtime_set_switch_interval) is an atomic read
 * at every round; 0 means not yet read from WEFT_SWITCH_INTERVAL_MS.
 * Locking: start is a futex mutex (a wait queue's guard) serialising
 * weft__monitor_ensure; word, started and interval are atomic.
 */
#include "green/monitor.h"

#include <errno.h>
#include <stdlib.h>

#include "debug/debug.h"
#include "green.h"
#include "park/park.h"
#include "platform/platform.h"
#include "thread/thread.h"
#include "weft/log.h"
#include "weft/thread.h"
#include "weft/time.h"

#define ROUND_NS (1 * WEFT_NSEC_PER_MSEC)
#define IDLE_NS (50 * WEFT_NSEC_PER_MSEC)
#define DEFAULT_INTERVAL_NS (10 * WEFT_NSEC_PER_MSEC)
#define MIN_INTERVAL_NS (1 * WEFT_NSEC_PER_MSEC)
#define MAX_INTERVAL_NS (3600 * WEFT_NSEC_PER_SEC)

static struct {
    weft__waitq start;        /* only its guard is used */
    _Atomic uint32_t word;    /* futex word: 1 = kicked */
    _Atomic int started;
    weft_thread *th;          /* guarded by start; never joined */
    _Atomic int64_t interval; /* ns; 0: not read from the environment yet */
} M;

/* ---- the switch interval --------------------------------------------- */

static bool interval_ok(int64_t ns)
{
    return ns >= MIN_INTERVAL_NS && ns <= MAX_INTERVAL_NS;
}

int weft_runtime_set_switch_interval(int64_t ns)
{
    if (!interval_ok(ns))
        return -EINVAL;
    atomic_store(&M.interval, ns);
    return 0;
}

int64_t weft_runtime_switch_interval(void)
{
    int64_t ns = atomic_load(&M.interval), zero = 0;
    const char *s;

    if (ns != 0)
        return ns;
    ns = DEFAULT_INTERVAL_NS;
    s = getenv("WEFT_SWITCH_INTERVAL_MS");
    if (s != NULL && *s != '\0') {
        char *end;
        long long ms = strtoll(s, &end, 10);
        if (*end == '\0' && ms > 0 && ms <= MAX_INTERVAL_NS / WEFT_NSEC_PER_MSEC)
            ns = ms * WEFT_NSEC_PER_MSEC;
        else
            weft_warning("WEFT_SWITCH_INTERVAL_MS=%s is not a number of "
                         "milliseconds from 1 to 3600000: using 10",
                         s);
    }
    /* A set that came first wins. */
    if (!atomic_compare_exchange_strong(&M.interval, &zero, ns))
        return zero;
    return ns;
}

/* ---- the thread ------------------------------------------------------- */

static int monitor_main(void *arg)
{
    int64_t delay = ROUND_NS, now;
    bool busy;

    (void)arg;
    for (;;) {
        now = weft__clock_now();
        (void)weft__futex_wait(&M.word, 0, now + delay);
        if (atomic_exchange(&M.word, 0) != 0)
            delay = ROUND_NS; /* kicked: something is starting */
        now = weft__clock_now();
        busy = weft__sched_watch(now, weft_runtime_switch_interval());
        busy |= weft__sched_poll_stale(now);
        weft__debug_poll(now);
        if (busy)
            delay = ROUND_NS;
        else if ((delay *= 2) > IDLE_NS)
            delay = IDLE_NS;
    }
    return 0;
}

int weft__monitor_ensure(void)
{
    weft_thread_opts o = {"weft-monitor", 1, 0};
    int rc = 0;

    if (atomic_load_explicit(&M.started, memory_order_acquire))
        return 0;
    weft__waitq_lock(&M.start);
    if (!atomic_load(&M.started)) {
        rc = weft_thread_start(&M.th, monitor_main, NULL, &o);
        if (rc == 0)
            weft__thread_mark_system(M.th);
        if (rc == 0)
            atomic_store_explicit(&M.started, 1, memory_order_release);
    }
    weft__waitq_unlock(&M.start);
    return rc;
}

void weft__monitor_kick(void)
{
    if (!atomic_load(&M.started))
        return;
    atomic_store(&M.word, 1);
    weft__futex_wake(&M.word, 1);
}
