/* poll.c - the monitor's entry into the debug layer (weft__debug_poll) and
 * the dump on SIGQUIT.
 *
 * Design.  The SIGQUIT handler only sets a flag and kicks the monitor
 * (both async-signal-safe); the monitor's next round, in weft__debug_poll,
 * takes the snapshot and writes the dump to the logger's destination
 * (stderr by default; the library never writes stdout).  Doing the work in
 * the handler is out of the question: the snapshot takes locks and
 * allocates.  (Rejected: a dedicated thread blocked in sigwait.  It needs
 * SIGQUIT blocked in every other thread, which a library cannot arrange.)
 * Rounds are serialised by the busy flag, taken with a CAS: a call that
 * finds a round running returns at once, so the monitor and a test may
 * both call poll.
 * Locking: busy (atomic) guards the deadlock check's round state;
 * sigquit_lock (a weft lock) serialises installing and removing the
 * handler and guards old_action.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "debug/debug.h"
#include "green/monitor.h"
#include "log/log.h"
#include "weft/debug.h"
#include "weft/log.h"
#include "weft/sync.h"
#include "weft/time.h"

static _Atomic int busy;                   /* a round is running */
static _Atomic long polls;                 /* rounds run */
static _Atomic int sigquit_pending;        /* lock-free: set by the handler */
static weft_lock sigquit_lock = WEFT_LOCK_INIT;
static bool installed;                     /* guarded by sigquit_lock */
static struct sigaction old_action;        /* guarded by sigquit_lock */

static bool take_busy(void)
{
    int z = 0;

    return atomic_compare_exchange_strong_explicit(
        &busy, &z, 1, memory_order_acquire, memory_order_relaxed);
}

static void drop_busy(void)
{
    atomic_store_explicit(&busy, 0, memory_order_release);
}

static void dump_to_log(void)
{
    weft__dbg_snap s;
    char *text;

    (void)weft__dbg_snap_take(&s);
    text = weft__dbg_format_dump(&s);
    weft__dbg_snap_free(&s);
    if (text == NULL) {
        weft_log(WEFT_LOG_ERROR, "SIGQUIT: out of memory for the dump");
        return;
    }
    weft__log_write_raw(text, strlen(text));
    free(text);
}

void weft__debug_poll(int64_t now)
{
    if (!take_busy())
        return;
    atomic_fetch_add_explicit(&polls, 1, memory_order_relaxed);
    if (atomic_exchange(&sigquit_pending, 0))
        dump_to_log();
    (void)weft__debug_deadlock_round_locked(now);
    drop_busy();
}

long weft__debug_polls(void)
{
    return atomic_load_explicit(&polls, memory_order_relaxed);
}

int weft__debug_deadlock_round(int64_t now)
{
    int rc;

    if (!take_busy())
        return -EBUSY;
    rc = weft__debug_deadlock_round_locked(now);
    drop_busy();
    return rc;
}

void weft__debug_deadlock_reset(void)
{
    while (!take_busy())
        ; /* a round is short; tests only */
    weft__debug_deadlock_reset_locked();
    drop_busy();
}

/* Async-signal-safe: a lock-free atomic store and the monitor's kick. */
static void on_sigquit(int sig)
{
    int saved = errno;

    (void)sig;
    atomic_store(&sigquit_pending, 1);
    weft__monitor_kick();
    errno = saved;
}

int weft_dump_on_sigquit(int on)
{
    struct sigaction sa;
    int rc = 0;

    weft_lock_acquire(&sigquit_lock, WEFT_FOREVER);
    if (on && !installed) {
        rc = weft__monitor_ensure();
        if (rc == 0) {
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = on_sigquit;
            sigemptyset(&sa.sa_mask);
            sa.sa_flags = SA_RESTART;
            if (sigaction(SIGQUIT, &sa, &old_action) != 0)
                rc = -errno;
            else
                installed = true;
        }
    } else if (!on && installed) {
        if (sigaction(SIGQUIT, &old_action, NULL) != 0)
            rc = -errno;
        else
            installed = false;
    }
    weft_lock_release(&sigquit_lock);
    return rc;
}
