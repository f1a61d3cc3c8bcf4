/* sem.c - weft_sem: counting and bounded semaphores.
 *
 * Design.  One 64-bit atomic word, state, holds both the free permits (the
 * low WEFT_SEM_PERMIT_BITS bits) and the number of registered waiters (the
 * bits above): waiters that, under the guard, found no permit and queued
 * themselves on wq, and have not yet been served or left.  acquire's fast
 * path is a CAS that takes a permit and never touches wq.  A waiter that
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
 * Why one word.  A semaphore may be fini'd and freed as soon as its last
 * acquire has returned (a completion semaphore on the waiting thread's
 * stack), so release must not touch the semaphore once the permit it
 * published may have been taken, except under the guard, which fini takes
 * and so waits out.  release's lock-free path is therefore a single CAS
 * that adds the permits only if the word shows no registered waiter; that
 * CAS is its last access.  If the word shows a waiter, release adds nothing
 * there and takes the guard instead.
 *   (Rejected: a separate waiter count read after adding the permits, the
 *   first design: between the add and the read a fast-path acquirer could
 *   take the permit, fini and free the semaphore.  Also rejected: adding
 *   the permits unconditionally and draining them to waiters under the
 *   guard when the old word showed any: the permits would sit in the word
 *   meanwhile, where barging acquirers take them ahead of the parked.)
 *
 * No lost wake-up.  A waiter registers (adds one to the waiter part) under
 * the guard, with a CAS that expects zero permits, and queues itself before
 * it drops the guard; a lock-free release adds permits with a CAS that
 * expects zero waiters.  Both are read-modify-writes of the same word, so
 * one comes first: if the release's, the waiter's CAS fails, it sees the
 * permit and takes it instead of parking; if the waiter's, the release's
 * CAS fails (or is never tried), it sees the waiter and takes the guarded
 * path, which hands its permits to the queued waiters first.
 *
 * Deregistration.  A served waiter is counted out by its server, under the
 * guard, in the same atomic add that puts the rest of the release into the
 * word; a waiter that timed out or was cancelled counts itself out under
 * the guard (the waker that popped its entry and lost the claim kept its
 * permit).  So fini, which takes the guard and checks for registered
 * waiters, returns 0 only when nobody is queued, nobody is still leaving,
 * and no release is still handing permits over.
 *
 * Bounded semaphores.  Every release checks permits + n against the bound
 * before it changes anything (the lock-free CAS re-checks on every retry),
 * so a refused release changes nothing.  The guarded path checks once, on
 * the word it read under the guard: while that word shows registered
 * waiters no lock-free release can add permits (only a guard holder can
 * lower the waiter count, and the guarded release keeps its served waiters
 * registered until its final add), so permits can only fall until that add
 * and the check stays true.
 *
 * Invariants.  permits <= WEFT_SEM_VALUE_MAX and, when bounded, <= bound.
 * When no thread holds the guard, wq is empty or permits == 0 (permits are
 * added lock-free only when nobody is registered, and under the guard only
 * once the queue ran out), and wq holds at most as many entries as there
 * are registered waiters.  The waiter part changes only under the guard;
 * the permit part changes anywhere, always by CAS or atomic add.  wq is
 * guarded by wq's guard.  bound is constant after init.
 */
#include <errno.h>

#include "../lib/assert.h"
#include "../park/park.h"
#include "weft/sync.h"

#define RESULT_PERMIT 1 /* woken owning a permit */

#define PERMIT_MASK ((uint64_t)WEFT_SEM_VALUE_MAX)
#define ONE_WAITER (UINT64_C(1) << WEFT_SEM_PERMIT_BITS)
#define WAITERS_MAX (UINT64_MAX >> WEFT_SEM_PERMIT_BITS)

static uint64_t permits(uint64_t s)
{
    return s & PERMIT_MASK;
}

static uint64_t waiters(uint64_t s)
{
    return s >> WEFT_SEM_PERMIT_BITS;
}

/* The most permits the word may hold. */
static uint64_t limit(const weft_sem *self)
{
    return self->bound >= 0 ? (uint64_t)self->bound : PERMIT_MASK;
}

static int init(weft_sem *self, int64_t value, int64_t bound)
{
    if (value < 0 || value > WEFT_SEM_VALUE_MAX)
        return -EINVAL;
    atomic_init(&self->state, (uint64_t)value);
    self->bound = bound;
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
    busy = !weft__waitq_empty(&self->wq) ||
           waiters(atomic_load(&self->state)) != 0;
    weft__waitq_unlock(&self->wq);
    return busy ? -EBUSY : 0;
}

/* Take a permit if one is free. */
static bool take(weft_sem *self)
{
    uint64_t s = atomic_load_explicit(&self->state, memory_order_relaxed);
    while (permits(s) > 0)
        if (atomic_compare_exchange_weak_explicit(&self->state, &s, s - 1,
                                                  memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    return false;
}

static int acquire_slow(weft_sem *self, int64_t deadline)
{
    weft__wait_entry e;
    uint64_t s;
    int rc;

    weft__waitq_lock(&self->wq);
    s = atomic_load_explicit(&self->state, memory_order_relaxed);
    for (;;) {
        if (permits(s) > 0) {
            /* Free permits mean nobody is queued (see Invariants), so
             * taking one jumps ahead of no one. */
            WEFT_ASSERT(weft__waitq_empty(&self->wq));
            if (atomic_compare_exchange_weak_explicit(
                    &self->state, &s, s - 1, memory_order_acquire,
                    memory_order_relaxed)) {
                weft__waitq_unlock(&self->wq);
                return 0;
            }
            continue;
        }
        if (waiters(s) == WAITERS_MAX) {
            /* More parked waiters than the word can count. */
            weft__waitq_unlock(&self->wq);
            return -ENOMEM;
        }
        /* Register, if the permit part is still zero; see "No lost
         * wake-up". */
        if (atomic_compare_exchange_weak(&self->state, &s, s + ONE_WAITER))
            break;
    }
    rc = weft__wait_on(&self->wq, &e, false, deadline, "semaphore", self);
    if (rc == 0)
        return 0; /* woken: the waker handed us a permit and counts us out */
    /* Timed out or cancelled: no permit was handed to us (a waker that
     * popped our entry lost the claim and kept its permit).  Count
     * ourselves out; the guard is held again. */
    atomic_fetch_sub(&self->state, ONE_WAITER);
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

/* Add n permits to the word, starting from s (a recent read of it), if it
 * shows no registered waiter.  Returns 0 when added, -EOVERFLOW (nothing
 * changed) if permits + n would exceed lim, or 1 if the word shows a
 * waiter.  On 0 the caller must not touch self again unless it holds the
 * guard: the permits may already be taken and the semaphore freed. */
static int add_free(weft_sem *self, uint64_t s, int64_t n, uint64_t lim)
{
    while (waiters(s) == 0) {
        if ((uint64_t)n > lim - permits(s))
            return -EOVERFLOW;
        if (atomic_compare_exchange_weak_explicit(&self->state, &s,
                                                  s + (uint64_t)n,
                                                  memory_order_release,
                                                  memory_order_relaxed))
            return 0;
    }
    return 1;
}

/* The guarded release, for when waiters are registered: check, then hand
 * permits to parked waiters first (FIFO) and put only the rest into the
 * word, counting the served waiters out in the same atomic add. */
static int release_locked(weft_sem *self, int64_t n, uint64_t lim)
{
    weft__wait_entry *e;
    int64_t served = 0;
    uint64_t s;
    int rc;

    weft__waitq_lock(&self->wq);
    s = atomic_load(&self->state);
    if (waiters(s) == 0) {
        /* They all left meanwhile, and none can register while we hold
         * the guard. */
        rc = add_free(self, s, n, lim);
        WEFT_ASSERT(rc <= 0);
        weft__waitq_unlock(&self->wq);
        return rc;
    }
    if ((uint64_t)n > lim - permits(s)) {
        weft__waitq_unlock(&self->wq);
        return -EOVERFLOW;
    }
    /* From here until our add below the word shows registered waiters,
     * so permits can only fall: the check above stays true. */
    while (served < n && (e = weft__waitq_pop(&self->wq)) != NULL)
        if (weft__wake(e, RESULT_PERMIT))
            served++;
    /* Unsigned wrap-around: adds n - served permits and subtracts served
     * waiters, who are all still counted in the word. */
    atomic_fetch_add(&self->state,
                     (uint64_t)(n - served) - (uint64_t)served * ONE_WAITER);
    weft__waitq_unlock(&self->wq);
    return 0;
}

int weft_sem_release(weft_sem *self, int64_t n)
{
    uint64_t lim;
    int rc;

    if (n < 1)
        return -EINVAL;
    lim = limit(self);
    rc = add_free(self, atomic_load_explicit(&self->state, memory_order_relaxed),
                  n, lim);
    if (rc <= 0)
        return rc; /* self may be gone already: see "Why one word" */
    return release_locked(self, n, lim);
}

int64_t weft_sem_value(const weft_sem *self)
{
    return (int64_t)permits(atomic_load_explicit(
        &((weft_sem *)self)->state, memory_order_relaxed));
}
