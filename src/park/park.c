/* park.c - waiters, the claim protocol and the OS-thread park backend.
 *
 * Design: see park.h.  An OS thread's waiter lives in its TLS; its state
 * word is also its futex word, so a wake is one CAS, one store and one
 * FUTEX_WAKE.  Before sleeping, the waiter spins for weft__park_spin_iters
 * iterations re-reading state: waking a sleeping thread on another core
 * costs tens of microseconds on the machines we run on, and most waits in
 * a ping-pong end within a microsecond or two.
 *   (Rejected: a per-primitive futex word, as glibc does.  It cannot serve a
 *   waiter that waits on several things at once, and a green thread cannot
 *   sleep on a futex without stopping its worker.)
 * Invariants: a waiter's claim is non-NULL exactly when its wait is over;
 * state becomes WOKEN only after claim was set, by the claimer.
 */
#include "park.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "../lib/assert.h"
#include "../platform/platform.h"

/* Claim markers that are not entries. */
static char claim_timeout_marker, claim_cancel_marker, claim_idle_marker;
#define CLAIM_TIMEOUT ((void *)&claim_timeout_marker)
#define CLAIM_CANCEL ((void *)&claim_cancel_marker)
/* claim is NULL only while a wait is armed: a waiter that never waited holds
 * this marker, one whose wait ended holds whatever ended it.  So a claimer's
 * CAS from NULL can only succeed after prepare stored state = WAITING. */
#define CLAIM_IDLE ((void *)&claim_idle_marker)


/* ---- the OS-thread backend -------------------------------------------- */

/* Spin while WAITING; then announce SLEEPING and sleep on the futex, so
 * that a waker makes the wake system call only for a waiter that sleeps. */
static void os_block(weft__waiter *w, int64_t deadline)
{
    uint32_t s;

    unsigned spin = w->spin != 0 ? w->spin : weft__park_spin_iters;
    for (unsigned i = 0; i < spin; i++) {
        if (atomic_load_explicit(&w->state, memory_order_acquire) ==
            WEFT__W_WOKEN)
            return;
        weft__spin_step(i);
    }
    s = WEFT__W_WAITING;
    if (atomic_compare_exchange_strong(&w->state, &s, WEFT__W_SLEEPING) ||
        s == WEFT__W_SLEEPING) {
        if (atomic_load_explicit(&w->wait_since, memory_order_relaxed) == 0)
            /* a system call follows: the clock is noise */
            atomic_store_explicit(&w->wait_since, weft__clock_now(),
                                  memory_order_relaxed);
        weft__futex_wait(&w->state, WEFT__W_SLEEPING, deadline);
    }
}

static void os_unblock(weft__waiter *w, uint32_t prev)
{
    if (prev == WEFT__W_SLEEPING)
        weft__wake_word(&w->state); /* after the guard: waitq.c */
}

static const struct weft__park_ops os_ops = {os_block, os_unblock};

static _Thread_local weft__waiter tls_os_waiter;
_Thread_local weft__waiter *weft__tls_self
    __attribute__((tls_model("initial-exec")));

/* The process's initial thread's waiter, for the deadlock check: the main
 * thread often waits (joins) without ever being adopted as "MainThread",
 * and a check that could not see it might take it for absent.  Recorded
 * once, by the main thread itself; main_pid tells a forked child (whose
 * main thread is another) not to trust it. */
static _Atomic(weft__waiter *) main_waiter;
static _Atomic long main_pid;

weft__waiter *weft__self_slow(void)
{
    weft__waiter_init(&tls_os_waiter, WEFT__WAITER_OS, &os_ops, NULL);
    weft__tls_self = &tls_os_waiter;
    if (weft__gettid() == (long)getpid()) {
        atomic_store(&main_pid, (long)getpid());
        atomic_store(&main_waiter, &tls_os_waiter);
    }
    return weft__tls_self;
}

weft__waiter *weft__main_waiter(void)
{
    weft__waiter *w = atomic_load(&main_waiter);

    return w != NULL && atomic_load(&main_pid) == (long)getpid() ? w : NULL;
}

void weft__set_self_os(void)
{
    weft__tls_self = tls_os_waiter.ops ? &tls_os_waiter : weft__self_slow();
}

/* ---- waiters ---------------------------------------------------------- */

void weft__waiter_init(weft__waiter *w, uint32_t kind,
                       const struct weft__park_ops *ops, void *owner)
{
    atomic_init(&w->state, WEFT__W_IDLE);
    atomic_init(&w->claim, CLAIM_IDLE);
    atomic_init(&w->cancel, 0);
    w->kind = kind;
    w->ops = ops;
    w->owner = owner;
    atomic_init(&w->wait_what, NULL);
    atomic_init(&w->wait_obj, NULL);
    atomic_init(&w->wait_since, 0);
    atomic_init(&w->wait_deadline, WEFT_FOREVER);
    atomic_init(&w->wait_count, 0);
    w->spin = 0;
    w->task = NULL;
}

void weft__waiter_reset(weft__waiter *w)
{
    atomic_store(&w->state, WEFT__W_IDLE);
    atomic_store(&w->claim, CLAIM_IDLE);
    atomic_store(&w->cancel, 0);
    w->spin = 0;
    w->task = NULL;
}

/* The dump's fields of a wait that ended (the waiter's own stores). */
static void clear_what(weft__waiter *w)
{
    atomic_store_explicit(&w->wait_what, NULL, memory_order_relaxed);
    atomic_store_explicit(&w->wait_obj, NULL, memory_order_relaxed);
}

/* Inline into weft__wait_on_under (the usual wait) and the other callers
 * alike: the calls were a tenth of a green queue hand-off's instructions. */
#define ALWAYS_INLINE inline __attribute__((always_inline))

static ALWAYS_INLINE void prepare(weft__waiter *w, const char *what,
                                  const void *obj)
{
    /* The dump's fields first, all relaxed stores of the waiter's own line
     * (no read-modify-write): the release store of claim below publishes
     * them, so a reader that loads claim == NULL with acquire sees this
     * wait's count (the deadlock check relies on that). */
    atomic_store_explicit(
        &w->wait_count,
        atomic_load_explicit(&w->wait_count, memory_order_relaxed) + 1,
        memory_order_relaxed);
    atomic_store_explicit(&w->wait_what, what, memory_order_relaxed);
    atomic_store_explicit(&w->wait_obj, obj, memory_order_relaxed);
    /* Recorded lazily (park.h): a clock read here was one vDSO call on
     * every wait, ~20 ns of a ~115 ns green queue ping-pong. */
    atomic_store_explicit(&w->wait_since, 0, memory_order_relaxed);
    /* state before claim: a claimer (a canceller needs no guard) that wins
     * the claim CAS must find this wait's WAITING in its exchange, never a
     * previous wait's IDLE, or it would skip the wake-up and this store would
     * then overwrite its WOKEN. */
    atomic_store_explicit(&w->state, WEFT__W_WAITING, memory_order_relaxed);
    atomic_store_explicit(&w->claim, NULL, memory_order_release);
}

void weft__wait_prepare(weft__waiter *w, const char *what, const void *obj)
{
    prepare(w, what, obj);
}

/* Wait, without any deadline, for the claimer that beat us to finish. */
static void await_claimer(weft__waiter *w)
{
    while (atomic_load_explicit(&w->state, memory_order_acquire) !=
           WEFT__W_WOKEN)
        w->ops->block(w, WEFT_FOREVER);
}

static ALWAYS_INLINE int finish(weft__waiter *w)
{
    void *c = atomic_load_explicit(&w->claim, memory_order_acquire);
    atomic_store_explicit(&w->state, WEFT__W_IDLE, memory_order_relaxed);
    clear_what(w);
    return c == CLAIM_CANCEL ? -ECANCELED : 0;
}

/* Whether deadline has passed; the clock read also stamps wait_since the
 * first time (a timed wait reads the clock anyway). */
static bool passed(weft__waiter *w, int64_t deadline)
{
    int64_t now = weft__clock_now();

    if (atomic_load_explicit(&w->wait_since, memory_order_relaxed) == 0)
        atomic_store_explicit(&w->wait_since, now, memory_order_relaxed);
    return now >= deadline;
}

static ALWAYS_INLINE int park(weft__waiter *w, int64_t deadline)
{
    void *expect;

    /* For the deadlock check: stored before the backend commits the park
     * (an OS thread's SLEEPING, a green thread's PARKED), which a reader
     * loads first. */
    atomic_store_explicit(&w->wait_deadline, deadline, memory_order_relaxed);
    /* prepare's stores (state, claim) before our load of cancel: the light
     * half of a Dekker pair with weft__waiter_cancel, which needs no guard
     * (see there). */
    weft__fence_light();
    for (;;) {
        if (atomic_load_explicit(&w->state, memory_order_acquire) ==
            WEFT__W_WOKEN)
            return finish(w);
        if (atomic_load_explicit(&w->cancel, memory_order_acquire)) {
            expect = NULL;
            if (atomic_compare_exchange_strong(&w->claim, &expect,
                                               CLAIM_CANCEL)) {
                atomic_store_explicit(&w->state, WEFT__W_IDLE,
                                      memory_order_relaxed);
                clear_what(w);
                return -ECANCELED;
            }
            await_claimer(w);
            return finish(w);
        }
        if (deadline >= 0 && passed(w, deadline)) {
            expect = NULL;
            if (atomic_compare_exchange_strong(&w->claim, &expect,
                                               CLAIM_TIMEOUT)) {
                atomic_store_explicit(&w->state, WEFT__W_IDLE,
                                      memory_order_relaxed);
                clear_what(w);
                return -ETIMEDOUT;
            }
            await_claimer(w);
            return finish(w);
        }
        w->ops->block(w, deadline);
    }
}

int weft__park(weft__waiter *w, int64_t deadline)
{
    return park(w, deadline);
}

int weft__wait_abandon(weft__waiter *w)
{
    void *expect = NULL;

    if (atomic_compare_exchange_strong(&w->claim, &expect, CLAIM_TIMEOUT)) {
        atomic_store_explicit(&w->state, WEFT__W_IDLE, memory_order_relaxed);
        clear_what(w);
        return 0;
    }
    await_claimer(w);
    return finish(w);
}

weft__wait_entry *weft__woken_by(weft__waiter *w)
{
    void *c = atomic_load_explicit(&w->claim, memory_order_acquire);
    return (c == CLAIM_CANCEL || c == CLAIM_TIMEOUT || c == CLAIM_IDLE) ? NULL
                                                                      : c;
}

void weft__waiter_cancel(weft__waiter *w)
{
    void *expect = NULL;

    atomic_store_explicit(&w->cancel, 1, memory_order_release);
    /* Dekker with weft__park: it stores state and claim, then (light fence)
     * loads cancel; we store cancel, then (heavy fence) load state and CAS
     * claim.  Without the fences both loads may see the old values (a store
     * waits in its CPU's buffer), the canceller finds no wait to claim, the
     * waiter finds no cancellation, and a green thread sleeps on, cancelled
     * (found by a stress test of groups: 1 run in 15).  The heavy side is a
     * membarrier(2), paid by cancellation, which is rare; the light side is
     * a compiler barrier on every park. */
    weft__fence_heavy();
    uint32_t s = atomic_load_explicit(&w->state, memory_order_acquire);
    if (s != WEFT__W_WAITING && s != WEFT__W_SLEEPING)
        return;
    /* Read ops first: once state is WOKEN the waiter may leave. */
    const struct weft__park_ops *ops = w->ops;
    if (atomic_compare_exchange_strong(&w->claim, &expect, CLAIM_CANCEL))
        ops->unblock(w, atomic_exchange(&w->state, WEFT__W_WOKEN));
}

void weft__waiter_uncancel(weft__waiter *w)
{
    atomic_store_explicit(&w->cancel, 0, memory_order_release);
}

bool weft__waiter_cancelled(const weft__waiter *w)
{
    return atomic_load_explicit(&w->cancel, memory_order_acquire) != 0;
}

/* ---- waking ----------------------------------------------------------- */

bool weft__wake(weft__wait_entry *e, int result)
{
    weft__waiter *w = e->waiter;
    void *expect = NULL;

    if (!atomic_compare_exchange_strong_explicit(&w->claim, &expect, e,
                                                 memory_order_acq_rel,
                                                 memory_order_acquire))
        return false;
    e->result = result;
    /* Read ops first: once state is WOKEN the waiter may return and its
     * thread may exit.  unblock gets w only to wake it (an OS thread's
     * futex word; a green thread's run-queue link, which outlives the
     * wait), never to follow its other fields. */
    const struct weft__park_ops *ops = w->ops;
    if (w->kind == WEFT__WAITER_GREEN) {
        /* A green waiter's state is WAITING until we store WOKEN: only an
         * OS thread's block moves it (to SLEEPING), and the waiter itself
         * writes it again only after it saw WOKEN.  So a release store
         * does what the exchange does, without a locked instruction. */
        atomic_store_explicit(&w->state, WEFT__W_WOKEN, memory_order_release);
        ops->unblock(w, WEFT__W_WAITING);
        return true;
    }
    ops->unblock(w, atomic_exchange_explicit(&w->state, WEFT__W_WOKEN,
                                             memory_order_acq_rel));
    return true;
}

int weft__wake_one(weft__waitq *wq, int result)
{
    weft__wait_entry *e;

    while ((e = weft__waitq_pop(wq)) != NULL)
        if (weft__wake(e, result))
            return 1;
    return 0;
}

int weft__wake_all(weft__waitq *wq, int result)
{
    weft__wait_entry *e;
    int n = 0;

    while ((e = weft__waitq_pop(wq)) != NULL)
        n += weft__wake(e, result);
    return n;
}

int weft__wait_on_under(weft__waitq *guard, weft__waitq *wq,
                        weft__wait_entry *e, bool front, int64_t deadline,
                        const char *what, const void *obj)
{
    weft__waiter *w = weft__self();
    int rc;

    prepare(w, what, obj);
    if (front)
        weft__waitq_push_front(wq, e, w);
    else
        weft__waitq_push(wq, e, w);
    weft__waitq_unlock(guard);
    rc = park(w, deadline);
    if (rc != 0) {
        weft__waitq_lock(guard);
        weft__waitq_remove(wq, e);
    }
    return rc;
}

int weft__wait_on(weft__waitq *wq, weft__wait_entry *e, bool front,
                  int64_t deadline, const char *what, const void *obj)
{
    return weft__wait_on_under(wq, wq, e, front, deadline, what, obj);
}
