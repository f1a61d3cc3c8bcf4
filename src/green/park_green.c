/* park_green.c - the park backend for green threads: block switches the
 * worker to the next green thread queued there (or to its scheduler),
 * unblock makes the green thread runnable again.
 *
 * The race this closes (docs/ARCHITECTURE.md, "Green threads"): a waker may
 * claim a green thread at any moment between its decision to wait and its
 * stack being fully saved, and no worker may resume a context that is still
 * being saved.  Protocol on run_state (atomic; the transitions that race
 * are read-modify-writes):
 *
 *   block (the green thread, inside weft__park):
 *       if run_state is NOTIFIED (a wake-up came since it last ran): store
 *       RUNNING and return at once; park re-checks its waiter and finds
 *       WOKEN.  Else (RUNNING) add the deadline to the worker's timer heap
 *       and switch out (weft__green_switch_out: directly to the next green
 *       thread queued on the worker, or to the scheduler), still RUNNING.
 *   whatever runs next on that worker, after the switch completed (the
 *   context is saved) - the scheduler, or the green thread switched to
 *   directly, before anything else on its own stack (sched.c, "the direct
 *   switch"):
 *       CAS RUNNING -> PARKED; if that fails, a wake-up left a token
 *       (NOTIFIED) during the switch: store RUNNABLE and requeue the thread
 *       (weft__sched_ready).
 *   wake (unblock, a timer, anything; any thread):
 *       RUNNING -> NOTIFIED (leave a token: the next block returns, or the
 *       completion of a block already under way requeues the thread),
 *       PARKED -> RUNNABLE and push it (the one CAS winner pushes),
 *       anything else: nothing (already runnable or holding a token, or
 *       not a live thread).
 *
 * Every wake-up goes through this one CAS loop, so exactly one party pushes
 * a parked green thread and a wake-up is never lost: it either finds the
 * thread PARKED or leaves a token that block or its completion consumes.
 * NOTIFIED is left by no waker, so block and the completion may overwrite
 * it with a plain store.  This is the park-token design of Go's notesleep
 * and Rust's thread::park.  (Rejected: the first plan - unblock ignores a
 * RUNNING thread and the scheduler re-reads the waiter's state after
 * committing PARKED, Dekker style.  It is equivalent for park, but ties the
 * scheduler to the waiter's state word; with a token, timers and any future
 * waker use the same operation.  Also rejected, and used until the direct
 * switch: a PARKING state entered by CAS in block - the completion's CAS
 * decides the same race alone, and a locked instruction per park, ~5 ns
 * here, was the price of the second one.)
 * A spurious token (a waker that claimed an earlier wait and reached its
 * unblock late) makes one later block return early; park loops.
 *
 * Lifetime.  A claimer calls unblock after it swapped the waiter's state to
 * WOKEN, and the green thread may see WOKEN, return and exit before that
 * call runs.  So green-thread structs are type-stable: they are never given
 * back to malloc, only recycled through a pool (green.c), and a late wake on
 * a recycled struct is at worst one spurious wake-up of another green thread
 * (or nothing, for a struct in the pool: FREE is ignored).
 * Locking: none beyond the atomics; the push takes the sched lock only for
 * the global queue.
 */
#include "green.h"

#include "lib/assert.h"

static weft_green *of(weft__waiter *w)
{
    return (weft_green *)w->owner;
}

/* Inline into green_unblock: a wake-up is one CAS and a push, and the
 * extra call was a tenth of its instructions. */
static inline __attribute__((always_inline)) void wake(weft_green *g)
{
    uint32_t rs = atomic_load(&g->run_state);

    for (;;) {
        switch (rs) {
        case WEFT__G_RUNNING:
            if (atomic_compare_exchange_weak(&g->run_state, &rs,
                                             WEFT__G_NOTIFIED))
                return;
            break;
        case WEFT__G_PARKED:
            if (atomic_compare_exchange_weak(&g->run_state, &rs,
                                             WEFT__G_RUNNABLE)) {
                weft__sched_ready(g);
                return;
            }
            break;
        default:
            return;
        }
    }
}

void weft__green_wake(weft_green *g)
{
    wake(g);
}

static void green_block(weft__waiter *w, int64_t deadline)
{
    weft_green *g = of(w);
    /* Acquire: a token's waker stored WOKEN before it, which park then
     * finds. */
    uint32_t rs = atomic_load_explicit(&g->run_state, memory_order_acquire);

    if (rs == WEFT__G_NOTIFIED) {
        atomic_store_explicit(&g->run_state, WEFT__G_RUNNING,
                              memory_order_relaxed);
        return;
    }
    WEFT_ASSERT(rs == WEFT__G_RUNNING);
    if (deadline >= 0)
        weft__timer_add(weft__worker_self(), g, deadline);
    weft__green_switch_out(g, WEFT__SW_PARK);
    /* Running again, perhaps on another worker.  Only a timed block added
     * an entry (and every earlier one removed its own). */
    if (deadline >= 0)
        weft__timer_remove(g);
}

static void green_unblock(weft__waiter *w, uint32_t prev)
{
    (void)prev;
    wake(of(w));
}

const struct weft__park_ops weft__green_park_ops = {green_block,
                                                    green_unblock};
