/* timer.c - weft_timer: run a function once after a delay unless cancelled
 * (Python's threading.Timer).
 *
 * Design.  One weft thread per timer, as Python does: it waits on the
 * timer's cancel event until the deadline, then tries to fire.  Whether fn
 * runs is decided by one CAS on state: the timer thread moves it WAITING ->
 * FIRED before calling fn, weft_timer_cancel moves it WAITING -> CANCELLED
 * (and then sets the event so the thread stops waiting at once).  Exactly
 * one of the two CASes succeeds, so a cancel that returns 0 guarantees fn
 * never runs, and one that returns -EAGAIN means fn has started.
 *   (Rejected: a shared timer thread with a heap of deadlines.  It is the
 *   better design for many timers, and the green scheduler will have one;
 *   a thread per timer keeps Python's semantics, e.g. the timer's thread
 *   shows up in enumerate and inherits the daemon flag.)
 *
 * Invariants: state leaves WAITING exactly once.  The timer is freed only by
 * a successful join, after its thread has ended and, if it was cancelled,
 * after the canceller has left weft_event_set: the timer thread may see the
 * event set and end while the canceller is still inside set (waking it,
 * dropping the event's guard), so join waits for the event and then calls
 * weft_event_fini, which takes the guard and so waits out that setter.
 *   (Rejected: a reference count on the timer shared by cancel and join.
 *   It would make every cancel pay for the rare race, and the event's own
 *   fini already gives the guarantee.)
 * Locking: state is atomic; the rest is constant after start.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "../lib/assert.h"
#include "weft/sync.h"
#include "weft/thread.h"
#include "weft/time.h"

enum { WAITING = 0, FIRED = 1, CANCELLED = 2 };

struct weft_timer {
    weft_thread *th;          /* creator only (start, join) */
    _Atomic int state;        /* atomic; WAITING, FIRED or CANCELLED */
    weft_event cancel;        /* set by a successful cancel */
    int64_t deadline;         /* constant */
    void (*fn)(void *arg);    /* constant */
    void *arg;                /* constant */
};

static int timer_main(void *p)
{
    weft_timer *t = p;
    int expect = WAITING;

    /* 0: cancelled (state is already CANCELLED); -ETIMEDOUT: time to fire,
     * unless a cancel wins the CAS below. */
    (void)weft_event_wait(&t->cancel, t->deadline);
    if (atomic_compare_exchange_strong(&t->state, &expect, FIRED))
        t->fn(t->arg);
    return 0;
}

int weft_timer_start(weft_timer **out, int64_t deadline,
                     void (*fn)(void *arg), void *arg)
{
    weft_timer *t;
    int rc;

    if (out == NULL || fn == NULL)
        return -EINVAL;
    t = calloc(1, sizeof *t);
    if (t == NULL)
        return -ENOMEM;
    atomic_init(&t->state, WAITING);
    weft_event_init(&t->cancel);
    t->deadline = deadline;
    t->fn = fn;
    t->arg = arg;
    rc = weft_thread_start(&t->th, timer_main, t, NULL);
    if (rc != 0) {
        free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int weft_timer_cancel(weft_timer *t)
{
    int expect = WAITING;

    if (t == NULL)
        return -EINVAL;
    if (atomic_compare_exchange_strong(&t->state, &expect, CANCELLED)) {
        weft_event_set(&t->cancel);
        return 0;
    }
    return expect == CANCELLED ? 0 : -EAGAIN;
}

int weft_timer_join(weft_timer *t, int64_t deadline)
{
    int rc;

    if (t == NULL)
        return -EINVAL;
    rc = weft_thread_join(t->th, NULL, deadline);
    if (rc != 0)
        return rc;
    if (atomic_load(&t->state) == CANCELLED) {
        /* A canceller may be between its CAS and weft_event_set, or still
         * inside set.  Both are short and never block on anything we hold,
         * so wait for them without the caller's deadline (the thread is
         * joined already: join must not fail from here on). */
        (void)weft_event_wait(&t->cancel, WEFT_FOREVER);
    }
    /* Nobody waits on the event any more (the thread has ended, and our
     * own wait has returned), so fini cannot be busy: it only waits for a
     * setter still holding the event's guard. */
    rc = weft_event_fini(&t->cancel);
    WEFT_ASSERT(rc == 0);
    free(t);
    return 0;
}

bool weft_timer_fired(const weft_timer *t)
{
    return t != NULL &&
           atomic_load(&((weft_timer *)t)->state) == FIRED;
}
