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
 *       (weft__sched_ready).  If it succeeds, read the waiter's state: WOKEN
 *       means a waker claimed the wait but saw the thread RUNNABLE or
 *       NOTIFIED and left it to us (below); CAS PARKED -> RUNNABLE and
 *       requeue it.
 *   wake (unblock, a timer, anything; any thread):
 *       RUNNING -> NOTIFIED (leave a token: the next block returns, or the
 *       completion of a block already under way requeues the thread),
 *       PARKED -> RUNNABLE and push it (the one CAS winner pushes),
 *       RUNNABLE or NOTIFIED: nothing, after a full fence and a second
 *       look (it still runs, or holds a token, and will read its waiter
 *       before it parks; the fence, and the commit's re-read of the waiter
 *       after its CAS, make sure that read sees our WOKEN);
 *       anything else: nothing (not a live thread).
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
 * unblock late) makes one later block return early; park loops.  Such a
 * late waker is also why the token alone is not enough: the waker of the
 * current wait may find the thread already NOTIFIED (or RUNNABLE, pushed
 * by the late one) and do nothing, trusting the thread to see WOKEN; but
 * WOKEN is another word than run_state, and "store one, read the other" on
 * both sides needs a fence on both sides.  The waker pays it only in that
 * rare case; the commit's side is its CAS, then one plain load of the
 * waiter's state.  (Found as a green executor worker parked for good with
 * its wait claimed: stress_executor hung about 1 run in 30 under ASan and
 * 1 in 10 with ucontext, after the green waker's exchange of WOKEN became
 * a plain store.  The exchange had only made the window narrower.)
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
#include "platform/platform.h"

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
        case WEFT__G_RUNNABLE:
        case WEFT__G_NOTIFIED: {
            /* Nothing to do, as long as g looks at its waiter again before
             * it parks; but that look and ours at run_state are the two
             * halves of a store-buffer race: our caller stored WOKEN and
             * we read run_state, g stores RUNNING (run, or block taking a
             * token) and later reads its state.  Both may read the old
             * value, and g parks for good (a stale token made this
             * happen: stress_executor, about 1 run in 30 under ASan).
             * So: a full fence, a second look at run_state, and the park's
             * commit re-reads the waiter after its CAS (sched.c,
             * complete): either our second look sees that CAS, or the
             * commit sees WOKEN and requeues g itself. */
            weft__full_fence();
            uint32_t again = atomic_load(&g->run_state);
            if (again == WEFT__G_RUNNABLE || again == WEFT__G_NOTIFIED)
                return;
            rs = again;
            break;
        }
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
