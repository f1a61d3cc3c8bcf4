/* barrier.c - weft_barrier: a cyclic barrier for a fixed number of parties.
 *
 * Design.  All state sits behind wq's guard.  Arrivals count up in count;
 * the arrival index is the arrival order within the cycle (the first to
 * arrive gets 0, the last parties-1), as in CPython's implementation.  The
 * last to arrive runs the action with the guard DROPPED (the action is user
 * code: it may take long, log, or look at the barrier) and marks the cycle
 * closing meanwhile; then it ends the cycle for everyone.
 *
 * Generations.  Each cycle has a generation number, bumped whenever a cycle
 * ends (released, broken or reset).  The waker writes each parked waiter's
 * outcome into its entry (e->data) under the guard, whether or not its wake
 * succeeds, so a waiter never needs to compare generations: a thread that
 * passed the barrier and at once arrives in the next cycle is a new entry
 * with a new outcome.  Only the action runner, which has no entry while it
 * runs the action, compares generations to learn whether an abort or reset
 * ended its cycle meanwhile.
 *
 * Timeouts and cancellation.  A waiter whose park ends by deadline or
 * cancellation looks at its entry under the guard: if the cycle's outcome
 * was already written there (the cycle ended at the same moment), it takes
 * that outcome, so all parties of a cycle agree; if the cycle is closing
 * (every party has arrived and the last one runs the action), it waits for
 * the outcome after all, with no deadline and deaf to cancellation
 * (wait_cycle_end), because in Python the action runs under the barrier's
 * lock and a timed-out waiter cannot even look before the action is done,
 * and breaking the barrier then would fail an action that succeeded;
 * otherwise it breaks the barrier for everyone and returns -ETIMEDOUT or
 * -ECANCELED.  A cancellation swallowed that way stays pending for the
 * waiter's next park.  Surplus arrivals (more parties than declared, while
 * the cycle closes) wait the same way for the cycle to end, as Python's
 * wait blocks on the lock and then in _enter without a timeout, and then
 * arrive in the next cycle with their deadline, which may have passed by
 * then: timing out there breaks the barrier like any timeout.
 *   (Rejected: a Python-like state machine with "draining" and "resetting"
 *   states in which arrivals wait for the previous cycle to empty out.  With
 *   outcomes written into the entries, nobody has to wait for stragglers.)
 *
 * Invariants (guarded by wq's guard).  0 <= count <= parties.  While the
 * cycle is open (not closing), every arrival except the one running the
 * action has an entry on wq, so count == number of entries.  broken implies
 * count == 0 and wq holds no entry of a broken cycle.  Arrivals that find
 * the cycle closing (more parties than declared) wait for it to end and
 * then arrive again.  acting counts threads running an action; it outlives
 * closing when an abort or reset ends the cycle under a running action, and
 * keeps destroy from freeing the barrier under that thread; nwait counts
 * waiters that queued and were neither woken nor gone (a waiter whose park
 * ended as its wake-up came still has to take the guard to leave), for the
 * same reason.
 */
#include <errno.h>
#include <stdlib.h>

#include "../park/park.h"
#include "weft/error.h"
#include "weft/sync.h"

/* An entry's data: what ended its cycle. */
#define OUTCOME_PENDING 0
#define OUTCOME_PASSED 1
#define OUTCOME_BROKEN 2
#define OUTCOME_RETRY 3 /* a surplus arrival: arrive again */

struct weft_barrier {
    weft__waitq wq;
    int parties;                 /* constant */
    weft_barrier_action action;  /* constant */
    void *arg;                   /* constant */
    _Atomic int count;           /* guarded by wq; atomic for n_waiting */
    _Atomic bool broken;         /* guarded by wq; atomic for broken() */
    bool closing;                /* guarded by wq: this cycle's action runs */
    int acting;                  /* guarded by wq: action runners inside */
    int nwait;                   /* guarded by wq: queued, not yet gone */
    uint64_t gen;                /* guarded by wq */
};

int weft_barrier_create(weft_barrier **out, int parties,
                        weft_barrier_action action, void *arg)
{
    weft_barrier *self;

    if (parties < 1)
        return -EINVAL;
    self = calloc(1, sizeof *self);
    if (!self)
        return -ENOMEM;
    self->wq = (weft__waitq)WEFT__WAITQ_INIT;
    self->parties = parties;
    self->action = action;
    self->arg = arg;
    atomic_init(&self->count, 0);
    atomic_init(&self->broken, false);
    *out = self;
    return 0;
}

int weft_barrier_destroy(weft_barrier *self)
{
    bool busy;

    weft__waitq_lock(&self->wq);
    busy = atomic_load(&self->count) != 0 || self->acting != 0 ||
           self->nwait != 0;
    weft__waitq_unlock(&self->wq);
    if (busy)
        return -EBUSY;
    free(self);
    return 0;
}

/* End the current cycle: wake every parked entry with outcome and open a
 * new cycle.  Guard held. */
static void end_cycle(weft_barrier *self, uintptr_t outcome)
{
    weft__wait_entry *e;

    while ((e = weft__waitq_pop(&self->wq)) != NULL) {
        /* Written even if the wake fails: a waiter that timed out at this
         * moment reads it under the guard. */
        e->data = e->data == OUTCOME_RETRY ? OUTCOME_RETRY : outcome;
        if (weft__wake(e, 0))
            self->nwait--;
    }
    atomic_store(&self->count, 0);
    self->closing = false;
    self->gen++;
}

static void break_locked(weft_barrier *self)
{
    atomic_store(&self->broken, true);
    end_cycle(self, OUTCOME_BROKEN);
}

/* The last arrival: run the action with the guard dropped, then end the
 * cycle.  Guard held on entry; released on return. */
static int last_arrival(weft_barrier *self, int index)
{
    uint64_t gen = self->gen;
    int rc = 0;

    if (self->action) {
        self->closing = true;
        self->acting++;
        weft__waitq_unlock(&self->wq);
        rc = self->action(self->arg);
        weft__waitq_lock(&self->wq);
        self->acting--;
        if (self->gen != gen) {
            /* Aborted or reset while the action ran. */
            weft__waitq_unlock(&self->wq);
            return WEFT_EBROKEN;
        }
    }
    if (rc != 0) {
        break_locked(self);
        weft__waitq_unlock(&self->wq);
        return rc;
    }
    end_cycle(self, OUTCOME_PASSED);
    weft__waitq_unlock(&self->wq);
    return index;
}

/* Wait until the current cycle ends, with no deadline and ignoring
 * cancellation (a cancellation that arrives meanwhile stays pending for the
 * caller's next park): only for a cycle that is closing, whose action
 * runner is bound to end it.  e->data is the entry's kind (PENDING or
 * RETRY); end_cycle writes the outcome there.  The entry goes at the front,
 * as it keeps the place it had.  Guard held on entry and on return. */
static void wait_cycle_end(weft_barrier *self, weft__wait_entry *e,
                           bool front)
{
    weft__waiter *me = weft__self();
    uint64_t gen = self->gen;
    uint32_t cancelled = atomic_exchange(&me->cancel, 0);

    while (self->gen == gen) {
        self->nwait++;
        if (weft__wait_on(&self->wq, e, front, WEFT_FOREVER, "barrier",
                          self) == 0) {
            /* Only end_cycle wakes barrier entries. */
            weft__waitq_lock(&self->wq);
            continue;
        }
        /* Cancelled again: guard held, e unlinked. */
        self->nwait--;
        cancelled = atomic_exchange(&me->cancel, 0) | 1u;
    }
    if (cancelled)
        atomic_store(&me->cancel, 1);
}

int weft_barrier_wait(weft_barrier *self, int64_t deadline)
{
    weft__wait_entry e;
    int index, rc;

    weft__waitq_lock(&self->wq);
    for (;;) {
        if (atomic_load(&self->broken)) {
            weft__waitq_unlock(&self->wq);
            return WEFT_EBROKEN;
        }
        if (!self->closing)
            break;
        /* A surplus arrival while the action runs: wait for that cycle to
         * end, then arrive in the next one. */
        e.data = OUTCOME_RETRY;
        wait_cycle_end(self, &e, false);
    }
    index = atomic_load(&self->count);
    atomic_store(&self->count, index + 1);
    if (index == self->parties - 1)
        return last_arrival(self, index);

    e.data = OUTCOME_PENDING;
    self->nwait++;
    rc = weft__wait_on(&self->wq, &e, false, deadline, "barrier", self);
    if (rc != 0) {
        self->nwait--;
        /* Guard held, entry unlinked.  If the cycle ended just now, its
         * outcome is ours; if it is closing, we wait for its outcome;
         * otherwise our leaving breaks it. */
        if (e.data == OUTCOME_PENDING && self->closing)
            wait_cycle_end(self, &e, true);
        if (e.data == OUTCOME_PENDING)
            break_locked(self);
        else
            rc = e.data == OUTCOME_PASSED ? index : WEFT_EBROKEN;
        weft__waitq_unlock(&self->wq);
        return rc;
    }
    return e.data == OUTCOME_PASSED ? index : WEFT_EBROKEN;
}

void weft_barrier_abort(weft_barrier *self)
{
    weft__waitq_lock(&self->wq);
    break_locked(self);
    weft__waitq_unlock(&self->wq);
}

void weft_barrier_reset(weft_barrier *self)
{
    weft__waitq_lock(&self->wq);
    end_cycle(self, OUTCOME_BROKEN);
    atomic_store(&self->broken, false);
    weft__waitq_unlock(&self->wq);
}

int weft_barrier_parties(const weft_barrier *self)
{
    return self->parties;
}

/* The number of parties that have arrived in the current cycle and not yet
 * been released (while the action runs, that includes its runner). */
int weft_barrier_n_waiting(const weft_barrier *self)
{
    return atomic_load(&((weft_barrier *)self)->count);
}

bool weft_barrier_broken(const weft_barrier *self)
{
    return atomic_load(&((weft_barrier *)self)->broken);
}
