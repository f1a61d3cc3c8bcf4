/* once.c - weft_once: run a function exactly once; late callers wait.
 *
 * Design.  state goes 0 (new) -> 1 (running) -> 2 (done), and never back.
 * The first caller wins the 0 -> 1 CAS and runs fn with no lock held; the
 * others park on wq until the runner stores rc, sets state 2 and wakes
 * them all under the guard.  A waiter re-checks state under the guard
 * before it queues, so the final wake-all either finds it queued or comes
 * before its check: no lost wake-up (event.c's argument).  The done path is
 * one acquire load.
 *   (Rejected: a per-once futex word, as glibc's pthread_once.  Waiting must
 *   go through the park layer to work for green threads.)
 *
 * Invariants.  rc is written once, by the runner, before state becomes 2
 * (release); it is read only after state == 2 was seen (acquire), or after
 * a wake-up by the runner.  runner is the runner's identity while state is
 * 1 (for the -EDEADLK check), NULL otherwise.  wq holds only waiters that
 * saw state == 1 under the guard.  nwait counts the waiters that queued and
 * were neither woken nor gone (one whose park was cancelled as the runner
 * popped its entry still has to take the guard to leave), so that fini,
 * which takes the guard and so also waits out a runner still waking the
 * waiters, returns 0 only once nobody touches the once any more.  wq and
 * nwait are guarded by wq's guard.
 */
#include <errno.h>

#include "../park/park.h"
#include "weft/sync.h"

#define NEW 0u
#define RUNNING 1u
#define DONE 2u

/* We won the race: run fn and publish its result. */
static int run(weft_once *self, int (*fn)(void *), void *arg,
               weft__waiter *me)
{
    int rc;

    atomic_store_explicit(&self->runner, me, memory_order_relaxed);
    rc = fn(arg);
    weft__waitq_lock(&self->wq);
    self->rc = rc;
    atomic_store_explicit(&self->runner, NULL, memory_order_relaxed);
    atomic_store_explicit(&self->state, DONE, memory_order_release);
    self->nwait -= (uint32_t)weft__wake_all(&self->wq, 0);
    weft__waitq_unlock(&self->wq);
    return rc;
}

/* Somebody else runs fn: wait until it is done. */
static int await_done(weft_once *self, weft__waiter *me)
{
    weft__wait_entry e;
    int rc;

    if (atomic_load_explicit(&self->runner, memory_order_relaxed) == me)
        return -EDEADLK;
    weft__waitq_lock(&self->wq);
    if (atomic_load_explicit(&self->state, memory_order_acquire) == DONE) {
        weft__waitq_unlock(&self->wq);
        return self->rc;
    }
    self->nwait++;
    rc = weft__wait_on(&self->wq, &e, false, WEFT_FOREVER, "once", self);
    if (rc != 0) {
        self->nwait--;
        weft__waitq_unlock(&self->wq);
        return rc;
    }
    return self->rc; /* woken: the runner counted us out */
}

int weft_once_call(weft_once *self, int (*fn)(void *arg), void *arg)
{
    uint32_t s = atomic_load_explicit(&self->state, memory_order_acquire);
    weft__waiter *me;

    if (s == DONE)
        return self->rc;
    me = weft__self();
    if (s == NEW &&
        atomic_compare_exchange_strong_explicit(&self->state, &s, RUNNING,
                                                memory_order_acquire,
                                                memory_order_acquire))
        return run(self, fn, arg, me);
    if (s == DONE)
        return self->rc;
    return await_done(self, me);
}

int weft_once_fini(weft_once *self)
{
    int busy;

    weft__waitq_lock(&self->wq);
    busy = atomic_load_explicit(&self->state, memory_order_relaxed) ==
               RUNNING ||
           self->nwait != 0;
    weft__waitq_unlock(&self->wq);
    return busy ? -EBUSY : 0;
}

bool weft_once_done(const weft_once *self)
{
    return atomic_load_explicit(&((weft_once *)self)->state,
                                memory_order_acquire) == DONE;
}
