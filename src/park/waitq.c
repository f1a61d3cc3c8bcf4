/* waitq.c - wait queues: an intrusive FIFO of wait entries and the small
 * mutex that guards it.
 *
 * The guard is a futex mutex (0 free, 1 held): one CAS to take it and a
 * plain release store to drop it.  It guards a handful of pointer updates,
 * so a contender spins a little before sleeping.  It is held only for those
 * few instructions and never across a park, so it cannot deadlock against
 * the waits it protects.
 *
 * Sleepers are counted apart from the guard word, in a small table of
 * counters hashed by the guard's address (sleepers_of), so that the unlock
 * needs no read-modify-write to learn whether to wake anyone: an asymmetric
 * Dekker pair (platform.h) with the sleeper paying the membarrier:
 *     unlock:  guard = 0; light fence; if sleepers_of(guard) != 0: wake one
 *     sleeper: sleepers_of(guard)++; heavy fence; then CAS 0 -> 1 or
 *              FUTEX_WAIT while guard == 1; sleepers_of(guard)--
 * Either the unlock sees the count, or the sleeper's CAS (or the futex's
 * own check of the word) sees the guard free.  A counter shared by two
 * guards (a hash collision) costs the other guard's unlocks a spurious
 * FUTEX_WAKE while someone sleeps, never a lost one.  Without membarrier
 * the light fence is a full one and this is as dear as the exchange.
 *   (Rejected, and used until the green queue ping-pong was measured: the
 *   three-state mutex of Drepper's "Futexes Are Tricky" (2 = held with
 *   sleepers), whose unlock is an exchange - a locked instruction, ~5.5 ns
 *   here, paid by every guard's every unlock, twice per message of a queue
 *   ping-pong, to serve a sleeper that is rare: a guard is held for a few
 *   instructions and contenders spin first.)
 *
 * Wake-ups after the guard.  Wakers run under the guard, and waking an OS
 * thread that sleeps on its futex is a system call of several
 * microseconds: made under the guard, it kept every other waker and
 * waiter of the primitive spinning, then sleeping, on the guard.  So
 * weft__wake_word (the OS park backend's wake) only notes the futex word
 * while this thread holds a guard, and the last unlock makes the calls.
 * Safe because the claim and the WOKEN state are already published: the
 * waiter cannot miss its wake-up, only get it a little later; and a late
 * FUTEX_WAKE on a word whose thread has gone is at worst a spurious
 * wake-up, as for the guard itself below.
 *
 * Invariants: head == NULL iff tail == NULL iff len == 0; an entry is on at
 * most one queue, and e->linked says whether it is on e->wq.
 */
#include <stddef.h>

#include "../lib/assert.h"
#include "../platform/platform.h"
#include "park.h"

#define GUARD_SPIN 100
#define SLEEP_SLOTS 64

/* The sleeper counts (see the top of this file), each on its own cache
 * line: a sleeper's increment must not slow the unlocks of the guards that
 * hash to its neighbours. */
static struct {
    _Atomic uint32_t n;
    char pad[64 - sizeof(uint32_t)];
} sleepers[SLEEP_SLOTS];

static inline _Atomic uint32_t *sleepers_of(const weft__waitq *wq)
{
    /* A guard per 64 bytes at most: neighbouring lines, other slots. */
    return &sleepers[((uintptr_t)wq >> 6) % SLEEP_SLOTS].n;
}

static void guard_lock_slow(weft__waitq *wq)
{
    _Atomic uint32_t *n = sleepers_of(wq);
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
    /* Announce a sleeper, then (heavy fence) look at the guard: an unlock
     * that our look misses comes after the fence and sees the count. */
    atomic_fetch_add_explicit(n, 1, memory_order_relaxed);
    weft__fence_heavy();
    for (;;) {
        c = 0;
        if (atomic_compare_exchange_strong_explicit(&wq->guard, &c, 1,
                                                    memory_order_acquire,
                                                    memory_order_relaxed))
            break;
        weft__futex_wait(&wq->guard, c, WEFT_FOREVER);
    }
    atomic_fetch_sub_explicit(n, 1, memory_order_relaxed);
}

/* Futex wake-ups of sleeping OS waiters, put off until this thread holds
 * no guard (see the top of this file).  A guard is always dropped on the
 * OS thread that took it (nothing parks or switches while holding one),
 * so a per-OS-thread count is exact. */
#define DEFERRED_MAX 8
struct deferred {
    unsigned held;                     /* guards this thread holds */
    unsigned n;
    _Atomic uint32_t *word[DEFERRED_MAX];
};
static _Thread_local struct deferred deferred
    __attribute__((tls_model("initial-exec")));

void weft__wake_word(_Atomic uint32_t *word)
{
    struct deferred *d = &deferred;
    if (d->held > 0 && d->n < DEFERRED_MAX)
        d->word[d->n++] = word;
    else
        weft__futex_wake(word, 1);
}

static void flush_deferred(struct deferred *d)
{
    /* Taken one at a time: a wake-up could in principle run code that
     * takes a guard again (it does not today), which would append. */
    while (d->n > 0)
        weft__futex_wake(d->word[--d->n], 1);
}

void weft__waitq_lock(weft__waitq *wq)
{
    uint32_t c = 0;
    deferred.held++;
    if (WEFT_LIKELY(atomic_compare_exchange_strong_explicit(
            &wq->guard, &c, 1, memory_order_acquire, memory_order_relaxed)))
        return;
    guard_lock_slow(wq);
}

/* The FUTEX_WAKE after the store may reach a guard whose primitive was
 * finalised and freed in between (the store let its fini in): at worst a
 * spurious wake-up of whatever now sleeps at that address, which every
 * futex user tolerates (glibc's mutexes have the same window). */
void weft__waitq_unlock(weft__waitq *wq)
{
    atomic_store_explicit(&wq->guard, 0, memory_order_release);
    weft__fence_light(); /* the store before the count; see the top */
    if (WEFT_UNLIKELY(atomic_load_explicit(sleepers_of(wq),
                                           memory_order_relaxed) != 0))
        weft__futex_wake(&wq->guard, 1);
    struct deferred *d = &deferred;
    if (--d->held == 0 && WEFT_UNLIKELY(d->n > 0))
        flush_deferred(d);
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

bool weft__waitq_remove(weft__waitq *wq, weft__wait_entry *e)
{
    if (!e->linked)
        return false;
    WEFT_ASSERT(e->wq == wq);
    unlink_entry(wq, e);
    return true;
}
