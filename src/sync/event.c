/* event.c - weft_event: a level-triggered flag with waiters.
 *
 * Design: flag is read without the guard on the fast paths (is_set, wait on
 * a set event).  set stores the flag and wakes every waiter under the
 * guard; a waiter checks the flag again under the guard before it queues,
 * so a set either comes before that check (the waiter sees the flag) or
 * after the waiter is queued (set wakes it): no lost wake-up.
 * Invariants: wq holds only waiters that saw flag == 0 under the guard.
 */
#include <errno.h>

#include "../park/park.h"
#include "weft/sync.h"

void weft_event_init(weft_event *self)
{
    atomic_init(&self->flag, 0);
    self->wq = (weft__waitq)WEFT__WAITQ_INIT;
}

int weft_event_fini(weft_event *self)
{
    int busy;
    weft__waitq_lock(&self->wq);
    busy = !weft__waitq_empty(&self->wq);
    weft__waitq_unlock(&self->wq);
    return busy ? -EBUSY : 0;
}

void weft_event_set(weft_event *self)
{
    if (atomic_load_explicit(&self->flag, memory_order_acquire))
        return;
    weft__waitq_lock(&self->wq);
    atomic_store_explicit(&self->flag, 1, memory_order_release);
    weft__wake_all(&self->wq, 0);
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
    rc = weft__wait_on(&self->wq, &e, false, deadline, "event", self);
    if (rc != 0)
        weft__waitq_unlock(&self->wq);
    return rc;
}
