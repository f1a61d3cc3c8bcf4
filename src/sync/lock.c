/* lock.c - weft_lock: a mutual-exclusion lock with an owner.
 *
 * Design.  state holds two bits: LOCKED, and WAITERS (some waiter is, or
 * may be, parked on wq).  The fast path is one CAS that sets LOCKED, and the
 * uncontended release one CAS that clears it; neither touches wq.  A
 * contender first spins on state (a release by a thread on another core is
 * usually only a few hundred nanoseconds away, while sleeping and being
 * woken costs tens of microseconds), then parks on wq.
 *
 * Fairness.  Release wakes the first parked waiter and lets it compete with
 * running threads (barging), which keeps throughput high under contention.
 * A waiter that was parked for more than WEFT_LOCK_HANDOFF_NS is instead
 * handed the lock directly: the releaser keeps LOCKED set and the waiter
 * returns owning it, so nobody is kept out for much more than that (the
 * starvation mode of Go's sync.Mutex and CPython's PyMutex).  A woken
 * waiter that loses the race goes back to the front of the queue, keeping
 * the time it first queued.
 *   (Rejected: strict FIFO hand-off on every release.  It forces a sleep and
 *   a wake-up between every two critical sections, cutting the throughput
 *   of a contended lock by an order of magnitude.)
 *
 * Invariants.  WAITERS is set and cleared only under wq's guard, and it is
 * set whenever wq is not empty.  owner is the holder's waiter (weft__self)
 * while LOCKED is set by an acquire, written by the holder only.
 */
#include <errno.h>

#include "../lib/assert.h"
#include "../park/park.h"
#include "../platform/platform.h"
#include "sync.h"

#define LOCKED 1u
#define WAITERS 2u

#define RESULT_RETRY 0   /* woken to compete for the lock */
#define RESULT_HANDOFF 1 /* woken owning the lock */

void weft_lock_init(weft_lock *self)
{
    atomic_init(&self->state, 0);
    atomic_init(&self->owner, NULL);
    self->wq = (weft__waitq)WEFT__WAITQ_INIT;
}

int weft_lock_fini(weft_lock *self)
{
    if (atomic_load(&self->state) != 0)
        return -EBUSY;
    return 0;
}

static bool try_set_locked(weft_lock *self)
{
    uint32_t s = atomic_load_explicit(&self->state, memory_order_relaxed);
    while (!(s & LOCKED))
        if (atomic_compare_exchange_weak_explicit(&self->state, &s,
                                                  s | LOCKED,
                                                  memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    return false;
}

static bool spin_for_lock(weft_lock *self)
{
    for (unsigned i = 0; i < weft__spin_limit; i++) {
        if (!(atomic_load_explicit(&self->state, memory_order_relaxed) &
              LOCKED) &&
            try_set_locked(self))
            return true;
        weft__cpu_relax();
    }
    return false;
}

/* Park until we own the lock or the deadline passes.  me is the caller. */
static int acquire_slow(weft_lock *self, int64_t deadline, weft__waiter *me)
{
    weft__wait_entry e;
    bool requeue = false;
    int rc;

    if (atomic_load_explicit(&self->owner, memory_order_relaxed) == me)
        return -EDEADLK;
    if (deadline == WEFT_NOW)
        return -ETIMEDOUT;
    e.since = 0;
    for (;;) {
        if (spin_for_lock(self))
            return 0;
        weft__waitq_lock(&self->wq);
        uint32_t s = atomic_load_explicit(&self->state, memory_order_relaxed);
        if (!(s & LOCKED)) {
            bool got = try_set_locked(self);
            weft__waitq_unlock(&self->wq);
            if (got)
                return 0;
            continue;
        }
        /* Make the holder's release take the slow path; if the lock changed
         * meanwhile, look again. */
        if (!(s & WAITERS) &&
            !atomic_compare_exchange_strong_explicit(&self->state, &s,
                                                     s | WAITERS,
                                                     memory_order_relaxed,
                                                     memory_order_relaxed)) {
            weft__waitq_unlock(&self->wq);
            continue;
        }
        if (e.since == 0)
            e.since = weft__clock_now();
        rc = weft__wait_on(&self->wq, &e, requeue, deadline, "lock", self);
        if (rc != 0) {
            if (weft__waitq_empty(&self->wq))
                atomic_fetch_and_explicit(&self->state, ~WAITERS,
                                          memory_order_relaxed);
            weft__waitq_unlock(&self->wq);
            return rc;
        }
        if (e.result == RESULT_HANDOFF)
            return 0;
        requeue = true;
    }
}

int weft_lock_acquire(weft_lock *self, int64_t deadline)
{
    weft__waiter *me = weft__self();
    uint32_t s = 0;
    int rc = 0;

    if (WEFT_UNLIKELY(!atomic_compare_exchange_strong_explicit(
            &self->state, &s, LOCKED, memory_order_acquire,
            memory_order_relaxed)) &&
        !try_set_locked(self))
        rc = acquire_slow(self, deadline, me);
    if (rc == 0)
        atomic_store_explicit(&self->owner, me, memory_order_relaxed);
    return rc;
}

int weft_lock_try(weft_lock *self)
{
    weft__waiter *me = weft__self();

    if (try_set_locked(self)) {
        atomic_store_explicit(&self->owner, me, memory_order_relaxed);
        return 0;
    }
    if (atomic_load_explicit(&self->owner, memory_order_relaxed) == me)
        return -EDEADLK;
    return -EAGAIN;
}

/* Wake the first waiter: hand it the lock if it has waited long, otherwise
 * unlock and let it compete. */
static void release_slow(weft_lock *self)
{
    weft__wait_entry *e;
    int64_t now = 0;

    weft__waitq_lock(&self->wq);
    while ((e = weft__waitq_pop(&self->wq)) != NULL) {
        if (now == 0)
            now = weft__clock_now();
        if (now - e->since >= WEFT_LOCK_HANDOFF_NS) {
            /* The lock stays LOCKED and passes to e's waiter. */
            atomic_store_explicit(&self->owner, e->waiter,
                                  memory_order_relaxed);
            if (weft__wake(e, RESULT_HANDOFF))
                goto out;
            atomic_store_explicit(&self->owner, NULL, memory_order_relaxed);
            continue;
        }
        atomic_fetch_and_explicit(&self->state, ~LOCKED,
                                  memory_order_release);
        if (weft__wake(e, RESULT_RETRY))
            goto out;
        /* That waiter left; the lock is already free, but a parked waiter
         * still needs a wake-up: re-take the lock unless someone barged. */
        if (!try_set_locked(self))
            goto out;
    }
    /* Nobody left to wake. */
    atomic_fetch_and_explicit(&self->state, ~LOCKED, memory_order_release);
out:
    if (weft__waitq_empty(&self->wq))
        atomic_fetch_and_explicit(&self->state, ~WAITERS,
                                  memory_order_relaxed);
    weft__waitq_unlock(&self->wq);
}

int weft_lock_release(weft_lock *self)
{
    uint32_t s = LOCKED;

    if (WEFT_UNLIKELY(atomic_load_explicit(&self->owner,
                                           memory_order_relaxed) !=
                      weft__self()))
        return -EPERM;
    atomic_store_explicit(&self->owner, NULL, memory_order_relaxed);
    if (WEFT_LIKELY(atomic_compare_exchange_strong_explicit(
            &self->state, &s, 0, memory_order_release, memory_order_relaxed)))
        return 0;
    release_slow(self);
    return 0;
}

bool weft_lock_locked(const weft_lock *self)
{
    return (atomic_load_explicit(&((weft_lock *)self)->state,
                                 memory_order_relaxed) &
            LOCKED) != 0;
}

bool weft_lock_held(const weft_lock *self)
{
    return atomic_load_explicit(&((weft_lock *)self)->owner,
                                memory_order_relaxed) == weft__self();
}

/* For condition variables: release and re-acquire without the ownership
 * checks, and without cancellation (a condition must get its lock back). */
void weft__lock_release_unchecked(weft_lock *self)
{
    uint32_t s = LOCKED;
    atomic_store_explicit(&self->owner, NULL, memory_order_relaxed);
    if (!atomic_compare_exchange_strong_explicit(&self->state, &s, 0,
                                                 memory_order_release,
                                                 memory_order_relaxed))
        release_slow(self);
}

void weft__lock_reacquire(weft_lock *self)
{
    weft__waiter *me = weft__self();
    uint32_t cancelled = atomic_exchange(&me->cancel, 0);
    int rc;

    while ((rc = weft_lock_acquire(self, WEFT_FOREVER)) == -ECANCELED)
        cancelled = atomic_exchange(&me->cancel, 0) | 1u;
    WEFT_ASSERT(rc == 0);
    if (cancelled)
        atomic_store(&me->cancel, 1);
}
