/* waitq.c - wait queues: an intrusive FIFO of wait entries and the small
 * mutex that guards it.
 *
 * The guard is a three-state futex mutex (0 free, 1 held, 2 held with
 * sleepers), the design of Drepper's "Futexes Are Tricky" and of musl's
 * internal locks: one CAS to take it, one exchange to drop it, a futex call
 * only when someone sleeps.  It guards a handful of pointer updates, so a
 * contender spins a little before sleeping.  It is held only for those few
 * instructions and never across a park, so it cannot deadlock against the
 * waits it protects.
 * Invariants: head == NULL iff tail == NULL iff len == 0; an entry is on at
 * most one queue, and e->linked says whether it is on e->wq.
 */
#include <stddef.h>

#include "../lib/assert.h"
#include "../platform/platform.h"
#include "park.h"

#define GUARD_SPIN 100

static void guard_lock_slow(weft__waitq *wq)
{
    uint32_t c;

    for (int i = 0; i < GUARD_SPIN; i++) {
        c = 0;
        if (atomic_load_explicit(&wq->guard, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_weak_explicit(&wq->guard, &c, 1,
                                                  memory_order_acquire,
                                                  memory_order_relaxed))
            return;
        weft__cpu_relax();
    }
    /* Mark contended, and sleep until we take it in the contended state. */
    while (atomic_exchange_explicit(&wq->guard, 2, memory_order_acquire) != 0)
        weft__futex_wait(&wq->guard, 2, WEFT_FOREVER);
}

void weft__waitq_lock(weft__waitq *wq)
{
    uint32_t c = 0;
    if (WEFT_LIKELY(atomic_compare_exchange_strong_explicit(
            &wq->guard, &c, 1, memory_order_acquire, memory_order_relaxed)))
        return;
    guard_lock_slow(wq);
}

/* The FUTEX_WAKE after the exchange may reach a guard whose primitive was
 * finalised and freed in between (the exchange let its fini in): at worst
 * a spurious wake-up of whatever now sleeps at that address, which every
 * futex user tolerates (glibc's mutexes have the same window). */
void weft__waitq_unlock(weft__waitq *wq)
{
    if (atomic_exchange_explicit(&wq->guard, 0, memory_order_release) == 2)
        weft__futex_wake(&wq->guard, 1);
}

void weft__waitq_push(weft__waitq *wq, weft__wait_entry *e, weft__waiter *w)
{
    e->waiter = w;
    e->wq = wq;
    e->next = NULL;
    e->prev = wq->tail;
    if (wq->tail)
        wq->tail->next = e;
    else
        wq->head = e;
    wq->tail = e;
    wq->len++;
    e->linked = true;
}

void weft__waitq_push_front(weft__waitq *wq, weft__wait_entry *e,
                            weft__waiter *w)
{
    e->waiter = w;
    e->wq = wq;
    e->prev = NULL;
    e->next = wq->head;
    if (wq->head)
        wq->head->prev = e;
    else
        wq->tail = e;
    wq->head = e;
    wq->len++;
    e->linked = true;
}

static void unlink_entry(weft__waitq *wq, weft__wait_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        wq->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        wq->tail = e->prev;
    e->next = e->prev = NULL;
    e->linked = false;
    WEFT_ASSERT(wq->len > 0);
    wq->len--;
}

weft__wait_entry *weft__waitq_pop(weft__waitq *wq)
{
    weft__wait_entry *e = wq->head;
    if (e)
        unlink_entry(wq, e);
    return e;
}

bool weft__waitq_remove(weft__waitq *wq, weft__wait_entry *e)
{
    if (!e->linked)
        return false;
    WEFT_ASSERT(e->wq == wq);
    unlink_entry(wq, e);
    return true;
}
