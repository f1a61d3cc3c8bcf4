/* sem.c - weft_sem: counting and bounded semaphores.
 *
 * Design.  value counts the free permits.  acquire's fast path is a CAS
 * that decrements a positive value and never touches wq.  A waiter that
 * finds no permit parks on wq (FIFO), and releases hand permits DIRECTLY to
 * parked waiters, under the guard: a woken waiter returns owning its permit
 * and never has to compete for it again, so running threads that take
 * permits on the fast path cannot starve a parked one (they can only take
 * permits that no parked waiter was due).
 *   (Rejected: waking a waiter to retry the CAS, as lock.c does.  A woken
 *   semaphore waiter would lose to barging acquirers with nothing like the
 *   lock's hand-off timer to rescue it, and a lost retry costs a full
 *   park/unpark cycle.)
 *
 * No lost wake-up.  nwait counts waiters that registered under the guard
 * and have not yet been served or left.  A waiter increments nwait, THEN
 * reads value; an unbounded release adds to value, THEN reads nwait (all
 * sequentially consistent).  So either the waiter sees the permit, or the
 * release sees the waiter and takes the guard to hand the permit over
 * (drain).  Releases that see nwait > 0 beforehand go straight to the
 * guarded path, which hands permits over without ever putting them in
 * value, where a barging acquirer could take them.
 *
 * Bounded semaphores.  Their release always takes the guard, checks
 * value + n against the bound and only then changes anything, so concurrent
 * releases are serialised and a refused one changes nothing.  Within the
 * guard a permit may be briefly "in hand" (taken from value by drain while
 * it looks for a waiter that has not timed out); since all increments of a
 * bounded semaphore hold the guard, no release can see that dip in value.
 *
 * Invariants.  value >= 0 and, when bounded, value <= bound.  When no thread
 * holds the guard or is on its way to drain, wq is empty or value == 0.
 * nwait and wq are changed only under the guard (nwait is atomic for the
 * lock-free reads of release).  bound is constant after init.
 */
#include <errno.h>

#include "../park/park.h"
#include "weft/sync.h"

#define RESULT_PERMIT 1 /* woken owning a permit */

static int init(weft_sem *self, int64_t value, int64_t bound)
{
    if (value < 0)
        return -EINVAL;
    atomic_init(&self->value, value);
    self->bound = bound;
    atomic_init(&self->nwait, 0);
    self->wq = (weft__waitq)WEFT__WAITQ_INIT;
    return 0;
}

int weft_sem_init(weft_sem *self, int64_t value)
{
    return init(self, value, -1);
}

int weft_sem_init_bounded(weft_sem *self, int64_t value)
{
    return init(self, value, value);
}

int weft_sem_fini(weft_sem *self)
{
    int busy;

    weft__waitq_lock(&self->wq);
    busy = !weft__waitq_empty(&self->wq) || atomic_load(&self->nwait) != 0;
    weft__waitq_unlock(&self->wq);
    return busy ? -EBUSY : 0;
}

/* Take a permit if one is free. */
static bool take(weft_sem *self)
{
    int64_t v = atomic_load_explicit(&self->value, memory_order_relaxed);
    while (v > 0)
        if (atomic_compare_exchange_weak_explicit(&self->value, &v, v - 1,
                                                  memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    return false;
}

/* Pop waiters until one accepts the wake-up (and with it a permit); a
 * waiter that timed out or was cancelled meanwhile is skipped.  Guard held.
 * Returns false if the queue ran out. */
static bool hand_one(weft_sem *self)
{
    weft__wait_entry *e;

    while ((e = weft__waitq_pop(&self->wq)) != NULL) {
        if (weft__wake(e, RESULT_PERMIT)) {
            atomic_fetch_sub(&self->nwait, 1);
            return true;
        }
    }
    return false;
}

/* Move free permits from value to parked waiters until either runs out.
 * Guard held.  Restores the invariant "wq empty or value == 0". */
static void drain(weft_sem *self)
{
    while (!weft__waitq_empty(&self->wq) && take(self)) {
        if (!hand_one(self)) {
            /* Every queued waiter had left: the permit goes back. */
            atomic_fetch_add(&self->value, 1);
            return;
        }
    }
}

static int acquire_slow(weft_sem *self, int64_t deadline)
{
    weft__wait_entry e;
    int rc;

    weft__waitq_lock(&self->wq);
    atomic_fetch_add(&self->nwait, 1);
    /* Serve the waiters ahead of us first: a permit that appeared while they
     * were parked is theirs. */
    drain(self);
    if (weft__waitq_empty(&self->wq) && take(self)) {
        atomic_fetch_sub(&self->nwait, 1);
        weft__waitq_unlock(&self->wq);
        return 0;
    }
    rc = weft__wait_on(&self->wq, &e, false, deadline, "semaphore", self);
    if (rc == 0)
        return 0; /* woken: the waker handed us a permit and counted us out */
    /* Timed out or cancelled: no permit was handed to us (a waker that
     * popped our entry lost the claim and kept its permit). */
    atomic_fetch_sub(&self->nwait, 1);
    weft__waitq_unlock(&self->wq);
    return rc;
}

int weft_sem_acquire(weft_sem *self, int64_t deadline)
{
    if (take(self))
        return 0;
    if (deadline == WEFT_NOW)
        return -ETIMEDOUT;
    return acquire_slow(self, deadline);
}

int weft_sem_try(weft_sem *self)
{
    return take(self) ? 0 : -EAGAIN;
}

/* The guarded release: check, then hand permits to parked waiters first
 * and put only the rest into value. */
static int release_locked(weft_sem *self, int64_t n)
{
    int64_t v;

    weft__waitq_lock(&self->wq);
    v = atomic_load(&self->value);
    if (self->bound >= 0 ? n > self->bound - v : n > INT64_MAX - v) {
        weft__waitq_unlock(&self->wq);
        return -EOVERFLOW;
    }
    while (n > 0 && hand_one(self))
        n--;
    if (n > 0)
        atomic_fetch_add(&self->value, n);
    weft__waitq_unlock(&self->wq);
    return 0;
}

int weft_sem_release(weft_sem *self, int64_t n)
{
    int64_t v;

    if (n < 1)
        return -EINVAL;
    if (self->bound >= 0 || atomic_load(&self->nwait) != 0)
        return release_locked(self, n);
    /* Unbounded, nobody parked: add without the guard. */
    v = atomic_load(&self->value);
    do {
        if (n > INT64_MAX - v)
            return -EOVERFLOW;
    } while (!atomic_compare_exchange_weak(&self->value, &v, v + n));
    /* A waiter may have registered meanwhile; see "No lost wake-up". */
    if (atomic_load(&self->nwait) != 0) {
        weft__waitq_lock(&self->wq);
        drain(self);
        weft__waitq_unlock(&self->wq);
    }
    return 0;
}

int64_t weft_sem_value(const weft_sem *self)
{
    return atomic_load_explicit(&((weft_sem *)self)->value,
                                memory_order_relaxed);
}
