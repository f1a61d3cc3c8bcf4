/* cond.c - weft_cond: a condition variable bound to one lock or rlock.
 *
 * Design.  wq is a FIFO of waiters.  wait queues its entry on wq while still
 * holding the lock, and only then releases the lock and parks.  A notifier
 * must hold the lock, so it runs either before wait queued the entry (and
 * the waiter has not yet looked away from the state) or after (and finds the
 * entry): a notify can never fall between "release" and "park".  Because
 * every notifier holds the lock, a plain wake is enough: the woken waiter
 * then competes for the lock like anyone else (no hand-off, no wait
 * morphing), and re-checks its state, as Python's documentation demands.
 *   (Rejected: wait morphing, i.e. moving woken waiters from wq straight onto
 *   the lock's queue.  It saves a futile wake-up when the notifier still holds
 *   the lock, but it ties conditions to the lock's internals and fights the
 *   lock's barging policy.)
 *
 * The order of the exit path matters.  A waiter whose park timed out or was
 * cancelled unlinks its entry from wq BEFORE re-acquiring the lock: the lock
 * acquire prepares the same waiter for a new park, and an entry still on wq
 * could then be claimed by a notify meant for the condition, waking the lock
 * wait with a foreign entry (and spending the notify on a waiter that has
 * already left).
 *
 * Invariants.  Every entry on wq belongs to a waiter that released the lock
 * (or is about to) and has not yet returned.  nwait counts the waiters that
 * queued and were neither woken nor gone: the entries on wq plus those a
 * notifier popped but could not claim (their park had just ended), which
 * still have to take the guard to leave; so fini cannot report "unused"
 * while such a waiter may still touch the condition.  lock/rlock are
 * constant after init.  wq and nwait are guarded by wq's guard; an rlock's
 * count is owner only.
 */
#include <errno.h>

#include "../park/park.h"
#include "sync.h"

void weft_cond_init(weft_cond *self, weft_lock *lock)
{
    self->lock = lock;
    self->rlock = NULL;
    self->wq = (weft__waitq)WEFT__WAITQ_INIT;
    self->nwait = 0;
}

void weft_cond_init_rlock(weft_cond *self, weft_rlock *rlock)
{
    self->lock = NULL;
    self->rlock = rlock;
    self->wq = (weft__waitq)WEFT__WAITQ_INIT;
    self->nwait = 0;
}

int weft_cond_fini(weft_cond *self)
{
    int busy;

    weft__waitq_lock(&self->wq);
    busy = self->nwait != 0;
    weft__waitq_unlock(&self->wq);
    return busy ? -EBUSY : 0;
}

/* The underlying weft_lock (an rlock's inner lock). */
static weft_lock *inner(weft_cond *self)
{
    return self->lock ? self->lock : &self->rlock->lock;
}

/* Does the caller hold the condition's lock? */
static bool held(weft_cond *self)
{
    return weft_lock_held(inner(self));
}

/* Caller holds the lock.  Releases it completely (every recursion level of
 * an rlock) and returns the level to restore afterwards. */
static uint32_t release_fully(weft_cond *self)
{
    uint32_t level = 0;

    if (self->rlock) {
        level = self->rlock->count;
        self->rlock->count = 0;
    }
    weft__lock_release_unchecked(inner(self));
    return level;
}

/* Take the lock back, whatever happened, and restore the rlock's level. */
static void reacquire(weft_cond *self, uint32_t level)
{
    weft__lock_reacquire(inner(self));
    if (self->rlock)
        self->rlock->count = level;
}

int weft_cond_wait(weft_cond *self, int64_t deadline)
{
    weft__waiter *me = weft__self();
    weft__wait_entry e;
    uint32_t level;
    int rc;

    if (!held(self))
        return -EPERM;
    /* Python's wait(0) would release and re-take the lock to no purpose: a
     * notify needs the lock, so none can arrive in between. */
    if (deadline == WEFT_NOW)
        return -ETIMEDOUT;
    weft__waitq_lock(&self->wq);
    weft__wait_prepare(me, "condition", self);
    weft__waitq_push(&self->wq, &e, me);
    self->nwait++;
    weft__waitq_unlock(&self->wq);

    level = release_fully(self);
    rc = weft__park(me, deadline);
    if (rc != 0) {
        /* See the file comment: unlink before the lock wait re-arms us. */
        weft__waitq_lock(&self->wq);
        weft__waitq_remove(&self->wq, &e);
        self->nwait--;
        weft__waitq_unlock(&self->wq);
    }
    reacquire(self, level);
    return rc;
}

int weft_cond_wait_for(weft_cond *self, weft_pred_fn pred, void *arg,
                       int64_t deadline)
{
    int rc;

    if (!held(self))
        return -EPERM;
    while (!pred(arg)) {
        rc = weft_cond_wait(self, deadline);
        if (rc == -ETIMEDOUT)
            return pred(arg) ? 0 : -ETIMEDOUT;
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Caller holds the lock (checked) and so excludes every other notifier. */
int weft_cond_notify(weft_cond *self, int n)
{
    weft__wait_entry *e;
    int woken = 0;

    if (!held(self))
        return -EPERM;
    if (n < 0)
        return -EINVAL;
    if (n == 0)
        return 0;
    weft__waitq_lock(&self->wq);
    while (woken < n && (e = weft__waitq_pop(&self->wq)) != NULL)
        woken += weft__wake(e, 0);
    self->nwait -= (uint32_t)woken;
    weft__waitq_unlock(&self->wq);
    return 0;
}

int weft_cond_notify_all(weft_cond *self)
{
    if (!held(self))
        return -EPERM;
    weft__waitq_lock(&self->wq);
    self->nwait -= (uint32_t)weft__wake_all(&self->wq, 0);
    weft__waitq_unlock(&self->wq);
    return 0;
}
