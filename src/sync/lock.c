/* lock.c - weft_lock: a mutual-exclusion lock with an owner.
 *
 * Design.  Two words: locked (1 while held) and waiters (1 while wq may hold
 * parked waiters).  Acquire is one CAS on locked; release is a plain store
 * of 0 followed by a look at waiters - no atomic read-modify-write, which
 * on the machines we run on halves the cost of an uncontended lock/unlock
 * (one locked instruction is ~5.5 ns).  The store and the look are ordered
 * against a waiter's "set waiters, then look at locked" by an asymmetric
 * fence (src/platform/fence.c): the releaser's side is a compiler barrier,
 * the waiter, about to sleep anyway, pays a membarrier(2).  So either the
 * releaser sees waiters == 1 and wakes someone, or the waiter sees the lock
 * free and does not sleep: no lost wake-up.
 *   (Rejected: LOCKED and WAITERS bits in one word, cleared by a CAS in
 *   release - correct and simple, but two locked instructions per pair made
 *   it no faster than pthread_mutex.)
 *
 * A contender first spins on locked (a release by a thread on another core
 * is usually a few hundred nanoseconds away, while sleeping and being woken
 * costs tens of microseconds), then parks on wq.
 *
 * Fairness.  Release wakes the first parked waiter and lets it compete with
 * running threads (barging), which keeps throughput high under contention.
 * A waiter parked for more than WEFT_LOCK_HANDOFF_NS is instead handed the
 * lock directly: the releaser re-takes the lock and passes it to that waiter,
 * which returns owning it, so nobody is kept out for much longer than that
 * (the starvation mode of Go's sync.Mutex and CPython's PyMutex).  A woken
 * waiter that loses the race goes back to the front of the queue, keeping
 * the time it first queued.
 *   (Rejected: strict FIFO hand-off on every release.  It forces a sleep and
 *   a wake-up between every two critical sections, cutting the throughput of
 *   a contended lock by an order of magnitude.)
 *
 * Invariants.  waiters is written only under wq's guard; it is 1 whenever wq
 * is not empty.  owner is the holder's waiter (weft__self) while locked,
 * written by the holder (or, for a hand-off, by the releaser for the new
 * holder); it is NULL while the lock is free.
 */
#include <errno.h>

#include "../lib/assert.h"
#include "../park/park.h"
#include "../platform/platform.h"
#include "sync.h"

#define RESULT_RETRY 0   /* woken to compete for the lock */
#define RESULT_HANDOFF 1 /* woken owning the lock */

void weft_lock_init(weft_lock *self)
{
    atomic_init(&self->locked, 0);
    atomic_init(&self->waiters, 0);
    atomic_init(&self->contenders, 0);
    atomic_init(&self->owner, NULL);
    self->wq = (weft__waitq)WEFT__WAITQ_INIT;
}

/* Busy while held, or while a thread that parked on it is still inside
 * acquire (see acquire_slow).  Taking the guard also waits out a releaser
 * still inside release_slow.  A thread that is only spinning cannot be seen:
 * destroying a lock while another thread is inside acquire is the caller's
 * error, which fini reports when it can. */
int weft_lock_fini(weft_lock *self)
{
    bool busy;

    weft__waitq_lock(&self->wq);
    busy = atomic_load(&self->locked) || atomic_load(&self->waiters) ||
           atomic_load(&self->contenders) || !weft__waitq_empty(&self->wq);
    weft__waitq_unlock(&self->wq);
    return busy ? -EBUSY : 0;
}

static bool try_lock(weft_lock *self)
{
    uint32_t z = 0;
    return atomic_load_explicit(&self->locked, memory_order_relaxed) == 0 &&
           atomic_compare_exchange_strong_explicit(&self->locked, &z, 1,
                                                   memory_order_acquire,
                                                   memory_order_relaxed);
}

/* Spin for the lock with exponential back-off: polling the lock word
 * pulls its cache line away from the holder, so poll less and less often. */
static bool spin_for_lock(weft_lock *self)
{
    unsigned spun = 0, pause = 1;

    /* Always try once, even with no spin budget. */
    while (!try_lock(self)) {
        if (spun >= weft__lock_spin_iters)
            return false;
        for (unsigned i = 0; i < pause; i++)
            weft__cpu_relax();
        spun += pause;
        if (pause < 16)
            pause <<= 1;
    }
    return true;
}

/* Guard held: clear waiters if nobody is queued any more. */
static void update_waiters(weft_lock *self)
{
    if (weft__waitq_empty(&self->wq))
        atomic_store_explicit(&self->waiters, 0, memory_order_relaxed);
}

/* Queue e for me and park.  Returns 0 when woken (see e->result), 1 when
 * the lock turned out to be free before we slept (try again), or
 * -ETIMEDOUT / -ECANCELED with e unlinked. */
static int park_on_lock(weft_lock *self, weft__wait_entry *e, bool front,
                        int64_t deadline, weft__waiter *me)
{
    int rc;

    weft__waitq_lock(&self->wq);
    atomic_store_explicit(&self->waiters, 1, memory_order_relaxed);
    weft__wait_prepare(me, "lock", self);
    if (front)
        weft__waitq_push_front(&self->wq, e, me);
    else
        weft__waitq_push(&self->wq, e, me);
    weft__waitq_unlock(&self->wq);

    /* Pairs with the light fence in release: after it, a releaser either
     * sees waiters == 1, or we see its store of locked = 0. */
    weft__fence_heavy();
    if (atomic_load_explicit(&self->locked, memory_order_relaxed) == 0) {
        weft__waitq_lock(&self->wq);
        bool withdrawn = weft__waitq_remove(&self->wq, e);
        update_waiters(self);
        weft__waitq_unlock(&self->wq);
        if (withdrawn) {
            rc = weft__wait_abandon(me);
            return rc == 0 ? 1 : rc;
        }
        /* A releaser popped e already: its wake-up is on the way. */
    }
    rc = weft__park(me, deadline);
    if (rc != 0) {
        weft__waitq_lock(&self->wq);
        weft__waitq_remove(&self->wq, e);
        update_waiters(self);
        weft__waitq_unlock(&self->wq);
    }
    return rc;
}

/* Spin, then park, until we own the lock or the deadline passes.  A thread
 * that parks once is counted in contenders until it leaves, for fini (a
 * waiter woken to compete, or one that timed out and has yet to take the
 * guard to unlink itself, still holds a pointer to the lock); one that only
 * spins costs no extra atomic operation. */
__attribute__((noinline, cold)) static int
acquire_slow(weft_lock *self, int64_t deadline, weft__waiter *me)
{
    weft__wait_entry e;
    bool front = false, counted = false;
    int rc;

    if (atomic_load_explicit(&self->owner, memory_order_relaxed) == me)
        return -EDEADLK;
    if (deadline == WEFT_NOW)
        return -ETIMEDOUT;
    e.since = 0;
    for (;;) {
        if (spin_for_lock(self)) {
            rc = 0;
            break;
        }
        if (!counted) {
            atomic_fetch_add_explicit(&self->contenders, 1,
                                      memory_order_relaxed);
            counted = true;
            e.since = weft__clock_now();
        }
        rc = park_on_lock(self, &e, front, deadline, me);
        if (rc < 0 || (rc == 0 && e.result == RESULT_HANDOFF))
            break;
        /* Woken to compete, or the lock came free: if we lose again we go
         * back to the front, keeping our place and our since. */
        front = rc == 0;
    }
    if (counted)
        atomic_fetch_sub_explicit(&self->contenders, 1, memory_order_release);
    return rc < 0 ? rc : 0;
}

int weft_lock_acquire(weft_lock *self, int64_t deadline)
{
    weft__waiter *me = weft__self();
    uint32_t z = 0;
    int rc = 0;

    if (WEFT_UNLIKELY(!atomic_compare_exchange_strong_explicit(
            &self->locked, &z, 1, memory_order_acquire,
            memory_order_relaxed)))
        rc = acquire_slow(self, deadline, me);
    if (rc == 0)
        atomic_store_explicit(&self->owner, me, memory_order_relaxed);
    return rc;
}

int weft_lock_try(weft_lock *self)
{
    weft__waiter *me = weft__self();

    if (try_lock(self)) {
        atomic_store_explicit(&self->owner, me, memory_order_relaxed);
        return 0;
    }
    if (atomic_load_explicit(&self->owner, memory_order_relaxed) == me)
        return -EDEADLK;
    return -EAGAIN;
}

/* The lock has just been released and waiters was seen set: wake the first
 * waiter, handing it the lock if it has waited long. */
__attribute__((noinline, cold)) static void release_slow(weft_lock *self)
{
    weft__wait_entry *e;
    int64_t now = 0;

    weft__waitq_lock(&self->wq);
    while ((e = weft__waitq_pop(&self->wq)) != NULL) {
        if (now == 0)
            now = weft__clock_now();
        if (now - e->since < WEFT_LOCK_HANDOFF_NS) {
            if (weft__wake(e, RESULT_RETRY))
                break;
            continue; /* that waiter left: wake the next */
        }
        /* Hand-off: take the lock back and pass it on. */
        if (!try_lock(self)) {
            /* Someone barged in; its release will come back here. */
            weft__waitq_push_front(&self->wq, e, e->waiter);
            break;
        }
        atomic_store_explicit(&self->owner, e->waiter, memory_order_relaxed);
        if (weft__wake(e, RESULT_HANDOFF))
            break;
        atomic_store_explicit(&self->owner, NULL, memory_order_relaxed);
        atomic_store_explicit(&self->locked, 0, memory_order_release);
    }
    update_waiters(self);
    weft__waitq_unlock(&self->wq);
}

static inline void unlock(weft_lock *self)
{
    atomic_store_explicit(&self->owner, NULL, memory_order_relaxed);
    atomic_store_explicit(&self->locked, 0, memory_order_release);
    weft__fence_light();
    if (WEFT_UNLIKELY(atomic_load_explicit(&self->waiters,
                                           memory_order_relaxed)))
        release_slow(self);
}

int weft_lock_release(weft_lock *self)
{
    if (WEFT_UNLIKELY(atomic_load_explicit(&self->owner,
                                           memory_order_relaxed) !=
                      weft__self()))
        return -EPERM;
    unlock(self);
    return 0;
}

bool weft_lock_locked(const weft_lock *self)
{
    return atomic_load_explicit(&((weft_lock *)self)->locked,
                                memory_order_relaxed) != 0;
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
    unlock(self);
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
