/* runq.c - per-worker run queue: the owner pushes and pops without locks,
 * thieves take half.
 *
 * Design: Go's runq.  A fixed ring of WEFT__RUNQ_CAP slots; head is advanced
 * with a CAS by the owner (pop) and by thieves (steal), tail is stored by
 * the owner alone (push), so a push is a load, a store and a store-release,
 * with no read-modify-write.  A thief copies up to half of the ring into its
 * own (empty) ring and then claims them with one CAS on the victim's head; if
 * the CAS fails it discarded nothing but copies and retries.  A full ring
 * moves half of itself to the global queue (weft__runq_take_half), so a
 * push never fails for long.  The owner's push and pop are inline in
 * green.h: a direct switch between green threads does one of each, and
 * the two calls were an eighth of its instructions.  One exception to the
 * owner's CAS: a lone regular worker pops in a direct switch with a plain
 * store of head (sched.c, ring_pop_direct), because its only possible
 * thief, a spare, steals through the steal gate that the direct switch
 * holds.  The "runnext" slot lives in the worker (owner only, not
 * stealable, as Tokio's LIFO slot).
 *   (Rejected: a locked deque per worker - every push and pop would pay a
 *   locked instruction; and a Chase-Lev deque - its owner pops LIFO, which
 *   breaks the one-worker FIFO order tests rely on.)
 * Invariants: head <= tail <= head + WEFT__RUNQ_CAP (mod 2^32); the slots in
 * [head, tail) hold queued green threads.
 * Locking: lock-free; slots are atomics so that a thief's speculative copy
 * is not a data race.
 */
#include "green.h"

#include "lib/assert.h"

#define CAP WEFT__RUNQ_CAP

weft_green *weft__runq_take_half(weft__runq *q, weft_green *g,
                                 weft_green **last, int *n)
{
    weft_green *batch[CAP / 2 + 1];
    uint32_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    uint32_t k;

    for (;;) {
        k = (t - h) / 2;
        if (k == 0) { /* thieves emptied it meanwhile: g alone */
            g->sched_next = NULL;
            *last = g;
            *n = 1;
            return g;
        }
        for (uint32_t i = 0; i < k; i++)
            batch[i] = atomic_load_explicit(&q->slot[(h + i) % CAP],
                                            memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&q->head, &h, h + k,
                                                  memory_order_release,
                                                  memory_order_acquire))
            break;
    }
    batch[k] = g;
    for (uint32_t i = 0; i < k; i++)
        batch[i]->sched_next = batch[i + 1];
    g->sched_next = NULL;
    *last = g;
    *n = (int)k + 1;
    return batch[0];
}

weft_green *weft__runq_steal(weft__runq *mine, weft__runq *victim)
{
    uint32_t mt = atomic_load_explicit(&mine->tail, memory_order_relaxed);
    uint32_t h, t, k;

    WEFT_ASSERT(mt == atomic_load_explicit(&mine->head,
                                           memory_order_relaxed));
    for (;;) {
        h = atomic_load_explicit(&victim->head, memory_order_acquire);
        t = atomic_load_explicit(&victim->tail, memory_order_acquire);
        k = t - h;
        k -= k / 2;
        if (k == 0)
            return NULL;
        if (k > CAP / 2)
            continue; /* read head and tail at different times */
        for (uint32_t i = 0; i < k; i++)
            atomic_store_explicit(
                &mine->slot[(mt + i) % CAP],
                atomic_load_explicit(&victim->slot[(h + i) % CAP],
                                     memory_order_relaxed),
                memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&victim->head, &h, h + k,
                                                  memory_order_acq_rel,
                                                  memory_order_acquire))
            break;
    }
    /* Run the last one now; publish the rest. */
    k--;
    weft_green *g = atomic_load_explicit(&mine->slot[(mt + k) % CAP],
                                         memory_order_relaxed);
    if (k > 0)
        atomic_store_explicit(&mine->tail, mt + k, memory_order_release);
    return g;
}

uint32_t weft__runq_len(weft__runq *q)
{
    uint32_t h = atomic_load_explicit(&q->head, memory_order_seq_cst);
    uint32_t t = atomic_load_explicit(&q->tail, memory_order_seq_cst);
    uint32_t n = t - h;
    return n > CAP ? 0 : n;
}
