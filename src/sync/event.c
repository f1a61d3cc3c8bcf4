/* event.c - weft_event: a level-triggered flag with waiters.
 *
 * Design: flag is read without the guard on the fast paths (is_set, wait on
 * a set event).  set stores the flag and wakes every waiter under the
 * guard; a waiter checks the flag again under the guard before it queues,
 * so a set either comes before that check (the waiter sees the flag) or
 * after the waiter is queued (set wakes it): no lost wake-up.
 *
 * Freeing.  An event is often a completion signal that the waiter frees as
 * soon as its wait returns, while the setter may still be inside set (in
 * wake_all or dropping the guard).  fini takes the guard, so it returns only
 * after any setter has let go of it; and nwait counts the waiters that
 * queued and were neither woken nor gone: a waiter whose park ended by
 * deadline or cancellation at the moment a setter popped its entry (the
 * setter lost the claim and did not count it out) still has to take the
 * guard to leave, and fini reports -EBUSY until it has.  So "fini returned
 * 0" means nobody touches the event any more.
 *   (Rejected: a reference count taken by set.  It would put an atomic
 *   read-modify-write on every set and still need the guard to wait for the
 *   last reference.)
 *
 * Invariants: wq holds only waiters that saw flag == 0 under the guard;
 * nwait >= the number of entries on wq.  wq and nwait are guarded by wq's
 * guard; flag is atomic.
 */
#include <errno.h>

#include "../park/park.h"
#include "weft/sync.h"

void weft_event_init(weft_event *self)
{
    atomic_init(&self->flag, 0);
    self->wq = (weft__waitq)WEFT__WAITQ_INIT;
    self->nwait = 0;
}

/* Taking the guard is what waits out a setter still inside set. */
int weft_event_fini(weft_event *self)
{
    int busy;
    weft__waitq_lock(&self->wq);
    busy = self->nwait != 0 || !weft__waitq_empty(&self->wq);
    weft__waitq_unlock(&self->wq);
    return busy ? -EBUSY : 0;
}

void weft_event_set(weft_event *self)
{
    if (atomic_load_explicit(&self->flag, memory_order_acquire))
        return;
    weft__waitq_lock(&self->wq);
    atomic_store_explicit(&self->flag, 1, memory_order_release);
    self->nwait -= (uint32_t)weft__wake_all(&self->wq, 0);
    weft__waitq_unlock(&self->wq);
}

void weft_event_clear(weft_event *self)
{
    atomic_store_explicit(&self->flag, 0, memory_order_release);
}

bool weft_event_is_set(const weft_event *self)
{
    return atomic_load_explicit(&((weft_event *)self)->flag,
                                memory_order_acquire) != 0;
}

int weft_event_wait(weft_event *self, int64_t deadline)
{
    weft__wait_entry e;
    int rc;

    if (atomic_load_explicit(&self->flag, memory_order_acquire))
        return 0;
    if (deadline == WEFT_NOW)
        return -ETIMEDOUT;
    weft__waitq_lock(&self->wq);
    if (atomic_load_explicit(&self->flag, memory_order_acquire)) {
        weft__waitq_unlock(&self->wq);
        return 0;
    }
    self->nwait++;
    rc = weft__wait_on(&self->wq, &e, false, deadline, "event", self);
    if (rc == 0)
        return 0; /* woken: the setter counted us out */
    /* Guard held, e unlinked.  As Python's wait returns the flag: a set
     * that came as the deadline passed (or as we were cancelled) wins. */
    self->nwait--;
    if (atomic_load_explicit(&self->flag, memory_order_acquire))
        rc = 0;
    weft__waitq_unlock(&self->wq);
    return rc;
}
