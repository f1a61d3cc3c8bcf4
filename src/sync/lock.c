/* lock.c - weft_lock: a mutual-exclusion lock with an owner.
 *
 * Design.  Two words: locked (1 while held) and waiters (the bits QUEUED,
 * WOKEN and VACANT below).  Acquire is one CAS on locked; release is a
 * plain store of 0 followed by a look at waiters - no atomic
 * read-modify-write, which on the machines we run on halves the cost of an
 * uncontended lock/unlock (one locked instruction is ~5.5 ns).  The store
 * and the look are ordered against a parker's "set QUEUED, then look at
 * locked" by an asymmetric fence (src/platform/fence.c): the releaser's
 * side is a compiler barrier, the parker pays a membarrier(2).  So either
 * the releaser sees waiters == QUEUED and wakes someone, or the parker sees
 * the lock free and does not sleep: no lost wake-up.
 *   (Rejected: LOCKED and WAITERS bits in one word, cleared by a CAS in
 *   release - correct and simple, but two locked instructions per pair made
 *   it no faster than pthread_mutex.)
 *
 * A contender first spins on locked (a release by a thread on another core
 * is usually a few hundred nanoseconds away, while sleeping and being woken
 * costs tens of microseconds), then parks on wq.
 *
 * The flyer.  A release that finds QUEUED wakes the first waiter to compete
 * (barging: running threads may take the lock first).  Under steady
 * contention the woken waiter usually loses to a holder that re-takes the
 * lock at once, and re-parking then cost it a membarrier - an interrupt of
 * the holder's CPU, ~8 us of the holder's time in a VM - and the holder's
 * next release woke it straight away again: measured, 50,000 such cycles a
 * second held a two-thread counter to a third of the uncontended rate.  So,
 * as with Go's mutexWoken: while a woken waiter (the flyer) is on its way,
 * WOKEN is set and releases wake nobody (release only wakes when waiters
 * is QUEUED alone, the same one load and compare as before).  A flyer that
 * loses does not re-park: it naps unqueued for NAP_NS (a timed park) and
 * looks at the lock again, keeping WOKEN, so it needs no fence, and the
 * holder runs undisturbed between its looks.  The flyer's duty is to look
 * at locked until it either takes the lock or re-parks with the fence, so
 * no release it let pass is lost: a lock freed for good is found at the end
 * of the nap at the latest (about as long as a wake-up through the kernel
 * takes here).  A flyer that takes the lock leaves the slot VACANT (WOKEN
 * stays, if nobody is queued): the next contender whose spin fails takes
 * the slot over and flies at once, again without a fence.  So two threads
 * trading a hot lock pay neither membarrier nor futex wake; measured, the
 * two-thread counter rose from ~1.5x to ~2.3-2.8x pthread_mutex.
 *   (Rejected: keeping QUEUED set while the woken waiter competes, so that
 *   it re-parks without the fence.  Correct (the guard orders the re-park
 *   against every release, all of which take the slow path meanwhile), but
 *   the holder's next release wakes it again at once: the waiter never
 *   sleeps and the holder pays a guard and a wake per cycle.  Rejected too:
 *   re-parking the loser straight onto its futex (no spin in park): the
 *   membarrier itself outlasts the holder's next release.)
 *
 * Fairness.  A waiter parked for more than WEFT_LOCK_HANDOFF_NS is handed
 * the lock directly: the releaser re-takes the lock and passes it to that
 * waiter, which returns owning it, so nobody is kept out for much longer
 * than that (the starvation mode of Go's sync.Mutex and CPython's PyMutex).
 * A flyer that has waited FLY_NS (a quarter of that) since it first queued
 * re-parks at the front, marked (e.data) for the hand-off at the next
 * release; its naps end no later than then.  A woken waiter that parks
 * again goes back to the front of the queue, keeping the time it first
 * queued.
 *   (Rejected: strict FIFO hand-off on every release.  It forces a sleep and
 *   a wake-up between every two critical sections, cutting the throughput of
 *   a contended lock by an order of magnitude.)
 *
 * Freed right after a release.  The release's look at waiters (and its
 * slow path) comes after the store of 0 that lets another thread take the
 * lock, drop it, fini it and free it - the reference count kept inside the
 * object it guards, which POSIX and C++ allow.  So the release names the
 * lock in its OS thread's in-flight slot for that window
 * (src/platform/inflight.h), and weft_lock_fini waits until no slot names
 * it: two stores to a thread-owned line per release, no locked
 * instruction.
 *   (Rejected: telling users not to free until every release has
 *   returned - they cannot know it - and a release by CAS, which still
 *   touches the wait queue after its CAS in the contended case.)
 *
 * Invariants.  waiters is written only under wq's guard.  QUEUED is set
 * whenever wq is not empty.  VACANT is set only with WOKEN and only while
 * wq is empty (a parker that finds it takes the slot instead of queueing).
 * WOKEN without VACANT means at least one flyer exists: it was set by the
 * release that woke one (only if WOKEN was clear) or by the contender that
 * took the slot, and every flyer that stops flying rewrites waiters (land,
 * park_on_lock, bail_out).  So a release that skips the wake (it saw WOKEN)
 * leaves the look at locked to a flyer, or to nobody only when nobody is
 * queued.  Why a flyer's re-park is safe: it stores QUEUED (WOKEN gone),
 * pays the heavy fence, then loads locked; a release stores locked = 0,
 * light fence, loads waiters; the fences make one of the two see the
 * other's store - either the release sees QUEUED alone and wakes, or the
 * flyer sees the release's 0 and withdraws.  A flyer that bails out
 * (deadline, cancellation) does the same look when anyone is queued and
 * wakes the queue for a release it may have let pass.  owner is the
 * holder's waiter (weft__self) while locked, written by the holder (or, for
 * a hand-off, by the releaser for the new holder); it is NULL while the
 * lock is free.  A thread that parked or flew is counted in contenders
 * until it returns.
 */
#include <errno.h>

#include "../lib/assert.h"
#include "../park/park.h"
#include "../platform/inflight.h"
#include "../platform/platform.h"
#include "sync.h"

#define RESULT_RETRY 0   /* woken to compete for the lock */
#define RESULT_HANDOFF 1 /* woken owning the lock */

/* The bits of waiters (see "The flyer" above). */
#define QUEUED 1u /* wq may hold parked waiters */
#define WOKEN 2u  /* releases need not wake: a flyer will look at locked */
#define VACANT 4u /* with WOKEN: nobody flies; wq is empty */

/* A flyer that has waited this long parks and asks for the hand-off.  A
 * quarter of the hand-off time, because a nap can end late: a thread woken
 * by its timer may wait for a CPU the holder (or, on a shared machine,
 * another process) occupies, and naps of over a millisecond were seen under
 * load; with half, the median of the benchmark's per-run worst wait was
 * 1.5-1.7 ms in such runs, with a quarter 0.3-1.0 ms. */
#define FLY_NS (WEFT_LOCK_HANDOFF_NS / 4)

/* How long a flyer sleeps between two looks at the lock.  The kernel's
 * timer slack (50 us by default for an OS thread) comes on top, so a lock
 * freed for good waits about as long for its flyer as a futex wake-up takes
 * here.  On the two-thread counter 10, 20 and 50 us measured alike within
 * this machine's noise (each 1.5-2x the throughput of re-parking). */
#define NAP_NS 20000

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
 * error, which fini reports when it can.  A vacant flyer's slot is left
 * behind by a flyer that took the lock; it is not a user. */
int weft_lock_fini(weft_lock *self)
{
    bool busy;

    /* Wait out a release still past its store of 0 (the acquire load
     * first, so that we see the slot of the release we saw). */
    (void)atomic_load_explicit(&self->locked, memory_order_acquire);
    weft__inflight_wait(self);
    weft__waitq_lock(&self->wq);
    uint32_t w = atomic_load(&self->waiters);
    busy = atomic_load(&self->locked) || (w != 0 && w != (WOKEN | VACANT)) ||
           atomic_load(&self->contenders) || !weft__waitq_empty(&self->wq);
    if (!busy)
        atomic_store(&self->waiters, 0);
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

/* Guard held: set waiters to bits, plus QUEUED if anyone is queued. */
static void set_waiters(weft_lock *self, uint32_t bits)
{
    if (!weft__waitq_empty(&self->wq))
        bits |= QUEUED;
    atomic_store_explicit(&self->waiters, bits, memory_order_relaxed);
}

/* Guard held: clear QUEUED if nobody is queued any more. */
static void update_waiters(weft_lock *self)
{
    set_waiters(self, atomic_load_explicit(&self->waiters,
                                           memory_order_relaxed) &
                          (WOKEN | VACANT));
}

/* Guard held, and the caller flies no more: if nobody is queued, leave the
 * slot vacant (releases keep skipping, and nothing needs a fence); else
 * clear WOKEN, so that releases wake the queue again.  Returns whether
 * waiters were queued (then the caller owes the check of a parker: heavy
 * fence, then a look at locked), */
static bool end_flight(weft_lock *self)
{
    if (weft__waitq_empty(&self->wq)) {
        atomic_store_explicit(&self->waiters, WOKEN | VACANT,
                              memory_order_relaxed);
        return false;
    }
    atomic_store_explicit(&self->waiters, QUEUED, memory_order_relaxed);
    return true;
}

/* Queue e for me and park.  Returns 0 when woken (see e->result), 1 when
 * the lock turned out to be free before we slept (try again), 2 when we
 * took over a vacant flyer's slot instead (fly), or -ETIMEDOUT /
 * -ECANCELED with e unlinked.  front: we fly now, and queue at the front
 * (the place we had). */
static int park_on_lock(weft_lock *self, weft__wait_entry *e, bool front,
                        int64_t deadline, weft__waiter *me)
{
    int rc;

    weft__waitq_lock(&self->wq);
    uint32_t w = atomic_load_explicit(&self->waiters, memory_order_relaxed);
    if ((w & VACANT) && !front) {
        /* WOKEN has been set since the slot was left, so every release
         * since skipped the wake; we fly now and will look at locked. */
        WEFT_ASSERT(weft__waitq_empty(&self->wq));
        atomic_store_explicit(&self->waiters, WOKEN, memory_order_relaxed);
        weft__waitq_unlock(&self->wq);
        return 2;
    }
    /* Another flyer's WOKEN stays (it will look at locked, and rewrite
     * waiters when it stops flying); a flyer that parks gives up its own,
     * and a vacant slot goes.  Dropping WOKEN is always safe: releases only
     * wake more. */
    uint32_t keep = !front && (w & (WOKEN | VACANT)) == WOKEN ? WOKEN : 0;
    atomic_store_explicit(&self->waiters, QUEUED | keep,
                          memory_order_relaxed);
    weft__wait_prepare(me, "lock", self);
    if (front)
        weft__waitq_push_front(&self->wq, e, me);
    else
        weft__waitq_push(&self->wq, e, me);
    weft__waitq_unlock(&self->wq);

    /* Pairs with the light fence in release: after it, a releaser either
     * sees waiters == QUEUED, or we see its store of locked = 0. */
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

/* The lock has just been released and waiters was seen QUEUED alone: wake
 * the first waiter (it flies), or hand it the lock if it has waited long. */
__attribute__((noinline, cold)) static void release_slow(weft_lock *self)
{
    weft__wait_entry *e;
    int64_t now = 0;

    weft__waitq_lock(&self->wq);
    if (atomic_load_explicit(&self->waiters, memory_order_relaxed) & WOKEN) {
        /* Another releaser woke a flyer since we looked. */
        weft__waitq_unlock(&self->wq);
        return;
    }
    while ((e = weft__waitq_pop(&self->wq)) != NULL) {
        if (now == 0)
            now = weft__clock_now();
        if (!e->data && now - e->since < WEFT_LOCK_HANDOFF_NS) {
            if (weft__wake(e, RESULT_RETRY)) {
                set_waiters(self, WOKEN);
                break;
            }
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

/* A flyer that took the lock ends its flight.  No fence: we hold the lock,
 * so our own release, which reads waiters after this, is the next one. */
static void land(weft_lock *self)
{
    weft__waitq_lock(&self->wq);
    (void)end_flight(self);
    weft__waitq_unlock(&self->wq);
}

/* A flyer leaves without the lock (deadline, cancellation).  Releases
 * skipped waking the queue while it flew; if anyone is queued, look at
 * locked as a parker does, and wake for the release we may have missed. */
static void bail_out(weft_lock *self)
{
    weft__waitq_lock(&self->wq);
    bool queued = end_flight(self);
    weft__waitq_unlock(&self->wq);
    if (queued) {
        weft__fence_heavy();
        if (atomic_load_explicit(&self->locked, memory_order_relaxed) == 0)
            release_slow(self);
    }
}

/* A flyer sleeps for a while, unqueued: 0 when the nap is over, or
 * -ETIMEDOUT (the caller's deadline) / -ECANCELED. */
static int nap(weft_lock *self, weft__waiter *me, int64_t deadline,
               int64_t now, int64_t since)
{
    int64_t until = now + NAP_NS;
    int rc;

    if (until > since + FLY_NS)
        until = since + FLY_NS;
    if (deadline >= 0 && deadline <= until)
        until = deadline;
    weft__wait_prepare(me, "lock", self);
    rc = weft__park(me, until);
    if (rc == -ETIMEDOUT && until != deadline)
        rc = 0;
    return rc;
}

/* Spin, then park, until we own the lock or the deadline passes.  A thread
 * that parks once is counted in contenders until it leaves, for fini (a
 * flyer, or a waiter that timed out and has yet to take the guard to unlink
 * itself, still holds a pointer to the lock); one that only spins costs no
 * extra atomic operation. */
__attribute__((noinline, cold)) static int
acquire_slow(weft_lock *self, int64_t deadline, weft__waiter *me)
{
    weft__wait_entry e;
    bool flying = false, counted = false;
    int rc;

    if (atomic_load_explicit(&self->owner, memory_order_relaxed) == me)
        return -EDEADLK;
    if (deadline == WEFT_NOW)
        return -ETIMEDOUT;
    e.since = 0;
    e.data = 0;
    for (;;) {
        if (spin_for_lock(self)) {
            if (flying)
                land(self);
            rc = 0;
            break;
        }
        if (!counted) {
            atomic_fetch_add_explicit(&self->contenders, 1,
                                      memory_order_relaxed);
            counted = true;
            e.since = weft__clock_now();
        }
        if (flying) {
            int64_t now = weft__clock_now();
            if (now - e.since < FLY_NS) {
                rc = nap(self, me, deadline, now, e.since);
                if (rc == 0)
                    continue;
                bail_out(self);
                break;
            }
            /* Waited long: queue at the front, where the next release
             * hands us the lock. */
            e.data = 1;
        }
        rc = park_on_lock(self, &e, flying, deadline, me);
        if (rc < 0 || (rc == 0 && e.result == RESULT_HANDOFF))
            break;
        /* Woken to compete, or we took the vacant slot: we fly.  The lock
         * came free: we spin again, as at first. */
        flying = rc != 1;
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

/* From the store of 0 on, another thread may take the lock, release it,
 * fini it and free it: the in-flight slot (src/platform/inflight.h) makes
 * weft_lock_fini wait until we are past our last touch. */
static inline void unlock(weft_lock *self)
{
    weft__inflight_enter(self);
    atomic_store_explicit(&self->owner, NULL, memory_order_relaxed);
    atomic_store_explicit(&self->locked, 0, memory_order_release);
    weft__fence_light();
    if (WEFT_UNLIKELY(atomic_load_explicit(&self->waiters,
                                           memory_order_relaxed) == QUEUED))
        release_slow(self);
    weft__inflight_leave();
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
