/* park.h - the park layer: the one way anything in weft waits.
 *
 * Every blocking operation of every primitive ends in the same three steps:
 *
 *     weft__waitq_lock(wq);              // the primitive's own wait queue
 *     ...check the primitive's state; it says "wait"...
 *     weft__wait_prepare(w);             // w = weft__self()
 *     weft__waitq_push(wq, &e, w);       // e: a wait entry on our stack
 *     weft__waitq_unlock(wq);
 *     rc = weft__park(w, deadline);      // 0, -ETIMEDOUT or -ECANCELED
 *     ...if rc != 0: weft__waitq_lock(wq); weft__waitq_remove(wq, &e); ...
 *
 * and every waking operation pops entries off a wait queue and calls
 * weft__wake(e, result) on them while holding that queue's lock.
 *
 * Waiters and entries are apart.  A waiter (weft__waiter) is an OS thread
 * or a green thread: something that can block and be unblocked.  A wait
 * entry (weft__wait_entry) links one waiter into one wait queue.  A waiter
 * may have entries in several queues at once (wait for the first of several
 * futures, select over queues); the first waker to claim it wins, and the
 * others see their claim fail and move on to the next entry, so a wake-one
 * is never spent on a waiter that has already left.
 *
 * The claim protocol.  A prepared waiter has claim == NULL and state
 * WAITING.  Exactly one party moves claim away from NULL with a CAS, and
 * only that party may finish the wait:
 *   - a waker: claim = the entry it woke; it writes e->result, then swaps
 *     state to WOKEN and calls ops->unblock(w, previous state);
 *   - the waiter itself when its deadline passes: claim = CLAIM_TIMEOUT;
 *   - a canceller (weft__waiter_cancel): claim = CLAIM_CANCEL; it sets
 *     state = WOKEN and unblocks.
 * A waiter that finds its own claim CAS lost waits for state == WOKEN
 * before it returns, so it never leaves while a waker still writes to its
 * entry.  All writes to an entry happen under its queue's lock, and a
 * waiter that timed out takes that lock to unlink its entry, so a waker
 * that popped the entry and lost the claim has finished with it by then.
 *
 * The interface a kind of waiter implements (struct weft__park_ops):
 *   block(w, deadline)  called by the waiter itself (the running OS thread or
 *                       green thread) after preparing and enqueueing; return
 *                       once state != WAITING, or once the deadline passes,
 *                       or spuriously.  OS threads spin briefly, then sleep on
 *                       the futex word w->state.  A green thread will switch
 *                       to its scheduler, leaving a timer for the deadline;
 *                       its worker keeps running other green threads.
 *   unblock(w, prev)    called by the single claimer, from any thread, after
 *                       it swapped state to WOKEN; prev is the state it
 *                       replaced.  Make w run again: an OS thread needs a
 *                       futex wake only if prev was SLEEPING (it announces
 *                       that before sleeping; a waiter still spinning sees
 *                       WOKEN by itself); a green thread will be pushed onto
 *                       a run queue, idempotently against its deadline timer.
 * Nothing above this layer knows which kind it is talking to.
 */
#ifndef WEFT_PARK_H
#define WEFT_PARK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/sync.h"
#include "weft/time.h"

typedef struct weft__waiter weft__waiter;
typedef struct weft__wait_entry weft__wait_entry;

struct weft__park_ops {
    void (*block)(weft__waiter *w, int64_t deadline);
    void (*unblock)(weft__waiter *w, uint32_t prev_state);
};

enum {
    WEFT__W_IDLE = 0,     /* not waiting */
    WEFT__W_WAITING = 1,  /* prepared: entries may be queued */
    WEFT__W_WOKEN = 2,    /* claimed by a waker or canceller */
    WEFT__W_SLEEPING = 3, /* still waiting, and its backend is asleep */
};

enum {
    WEFT__WAITER_OS = 0,
    WEFT__WAITER_GREEN = 1,
};

struct weft__waiter {
    _Atomic uint32_t state;               /* WEFT__W_*; the OS futex word */
    _Atomic(void *) claim;                /* see the claim protocol */
    _Atomic uint32_t cancel;              /* cancellation requested */
    uint32_t kind;                        /* WEFT__WAITER_*; constant */
    const struct weft__park_ops *ops;     /* constant */
    void *owner;                          /* the weft_thread or green thread */
    /* For the dump and the deadlock report (src/debug/).  Written by the
     * waiter itself with relaxed stores (no read-modify-write: the park
     * fast path's cost is unchanged), read by any thread with atomic loads,
     * so a dump taken while the waiter runs is race-free. */
    _Atomic(const char *) wait_what;      /* "lock", "queue get", ... */
    _Atomic(const void *) wait_obj;       /* the primitive waited on */
    _Atomic int64_t wait_since;           /* monotonic ns, or 0: recorded
                                             lazily, where the wait reads
                                             the clock anyway (a timed
                                             park; an OS thread about to
                                             sleep on its futex), so 0 for
                                             a wait that ended at once or
                                             a green thread parked without
                                             a deadline */
    _Atomic int64_t wait_deadline;        /* the current park's deadline
                                             (WEFT_FOREVER: none) */
    uint32_t spin;                        /* OS threads: cpu_relax
                                             iterations before sleeping
                                             in the next parks (0: the
                                             default); set by the waiter
                                             itself, around waits that
                                             expect a quick hand-off */
    void *task;                           /* the executor task (a
                                             weft_future) this waiter runs
                                             now, or NULL; written and read
                                             only by the waiter itself
                                             (src/future/executor.c) */
    _Atomic uint32_t wait_count;          /* bumped by each prepare: a
                                             waiter seen parked twice with
                                             the same count never left
                                             that wait in between */
};

struct weft__wait_entry {
    weft__wait_entry *next, *prev;        /* guarded by wq->guard */
    weft__waitq *wq;                      /* set at push; constant after */
    weft__waiter *waiter;                 /* constant while queued */
    bool linked;                          /* guarded by wq->guard */
    int result;                           /* written by the claiming waker */
    int64_t since;                        /* first enqueue time (lock fairness) */
    uintptr_t data;                       /* primitive-specific, e.g. an item */
};

/* ---- waiters ---------------------------------------------------------- */

/* The calling thread's waiter: its green thread's if one is running on it,
 * otherwise the OS thread's own (created at first use, in TLS).  Its address
 * is also the caller's identity for lock ownership. */
extern _Thread_local weft__waiter *weft__tls_self
    __attribute__((tls_model("initial-exec")));
weft__waiter *weft__self_slow(void);
static inline weft__waiter *weft__self(void)
{
    weft__waiter *w = weft__tls_self;
    return __builtin_expect(w != 0, 1) ? w : weft__self_slow();
}

/* The main thread's own (OS) waiter once it has made one, else NULL; for
 * the deadlock check (src/debug/), which must see the main thread even if
 * it was never adopted.  Valid while the process runs. */
weft__waiter *weft__main_waiter(void);

/* Install the waiter that weft__self returns on this OS thread (the green
 * scheduler calls this at each switch; NULL restores the OS thread's own).
 * Inline: a switch in and out of a green thread sets it twice, and the
 * scheduler passes the OS thread's own waiter (from weft__self at worker
 * start) rather than NULL, so neither call leaves this header.  Only for
 * code that does not migrate between OS threads (the worker's own loop):
 * the TLS address may be kept across a switch. */
void weft__set_self_os(void);
static inline void weft__set_self(weft__waiter *w)
{
    if (__builtin_expect(w != 0, 1))
        weft__tls_self = w;
    else
        weft__set_self_os();
}

/* Initialise a waiter of a given kind (the OS one is made by weft__self). */
void weft__waiter_init(weft__waiter *w, uint32_t kind,
                       const struct weft__park_ops *ops, void *owner);

/* Reset a waiter for reuse (a recycled green thread): not waiting, not
 * cancelled, claim at its idle marker.  Nobody may be claiming it. */
void weft__waiter_reset(weft__waiter *w);

/* Arm w for a new wait: claim = NULL, state = WAITING.  Must come before the
 * first weft__waitq_push of this wait. */
void weft__wait_prepare(weft__waiter *w, const char *what, const void *obj);

/* Park the calling waiter until claimed or until deadline.  0 when woken
 * (weft__woken_by(w) tells by which entry), -ETIMEDOUT, or -ECANCELED (the
 * waiter was cancelled; also returned at once if cancellation was already
 * requested when park began).  On -ETIMEDOUT/-ECANCELED the caller must
 * unlink its entries (weft__waitq_remove under each queue's lock). */
int weft__park(weft__waiter *w, int64_t deadline);

/* End a prepared wait without parking, after the caller unlinked every one
 * of its entries itself (it found it need not wait after all).  Returns 0,
 * or, if a waker or canceller claimed the waiter first, what park would
 * have returned (0 for a waker: its entry's result is then valid). */
int weft__wait_abandon(weft__waiter *w);

/* The entry that woke w (valid after weft__park returned 0). */
weft__wait_entry *weft__woken_by(weft__waiter *w);

/* Request cancellation of w: its current park (if any) returns -ECANCELED,
 * as does every later one until weft__waiter_uncancel.  Any thread. */
void weft__waiter_cancel(weft__waiter *w);
void weft__waiter_uncancel(weft__waiter *w);
bool weft__waiter_cancelled(const weft__waiter *w);

/* ---- wait queues ------------------------------------------------------ */

/* The queue's guard: a small futex mutex, held only for a few instructions
 * and never while parked.  It may block the OS thread (a green thread's
 * worker) for that short time, as Go's runtime locks do. */
void weft__waitq_lock(weft__waitq *wq);
void weft__waitq_unlock(weft__waitq *wq);

/* FUTEX_WAKE one sleeper on word, now if this thread holds no guard, else
 * when it drops its last one (waitq.c, "Wake-ups after the guard"). */
void weft__wake_word(_Atomic uint32_t *word);

/* The rest need the guard held.  push (at the tail) and pop (the head)
 * are inline: a message handed to a parked green thread does one of each,
 * and the calls were a tenth of their instructions. */
static inline void weft__waitq_push(weft__waitq *wq, weft__wait_entry *e,
                                    weft__waiter *w)
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
                            weft__waiter *w);

static inline weft__wait_entry *weft__waitq_pop(weft__waitq *wq)
{
    weft__wait_entry *e = wq->head;

    if (e == NULL)
        return NULL;
    wq->head = e->next;
    if (e->next)
        e->next->prev = NULL;
    else
        wq->tail = NULL;
    e->next = NULL; /* prev is already NULL: e was the head */
    e->linked = false;
    wq->len--;
    return e;
}

/* Unlink e if it is still linked; returns whether it was. */
bool weft__waitq_remove(weft__waitq *wq, weft__wait_entry *e);
static inline bool weft__waitq_empty(const weft__waitq *wq)
{
    return wq->head == 0;
}

/* Claim e's waiter and wake it with result.  The caller holds e->wq's guard
 * and has already unlinked e (weft__waitq_pop).  Returns false if the waiter
 * had already been claimed (timed out, cancelled, woken through another
 * entry): the caller then wakes the next entry instead. */
bool weft__wake(weft__wait_entry *e, int result);

/* Pop and wake entries until one claim succeeds.  Returns the woken entry's
 * waiter count (1) or 0 if the queue ran out.  Guard held. */
int weft__wake_one(weft__waitq *wq, int result);
/* Pop and wake every entry; returns how many were woken.  Guard held. */
int weft__wake_all(weft__waitq *wq, int result);

/* The common single-queue wait.  Called with wq's guard held, after the
 * caller decided to wait: prepares the caller's waiter, queues e (at the
 * front if front is true), drops the guard and parks.  Returns 0 when woken
 * (e->result holds what the waker passed), with the guard NOT held; or
 * -ETIMEDOUT / -ECANCELED with the guard HELD again and e unlinked, so the
 * caller can repair its state before unlocking. */
int weft__wait_on(weft__waitq *wq, weft__wait_entry *e, bool front,
                  int64_t deadline, const char *what, const void *obj);

/* The same, for a primitive that keeps several wait queues under one guard
 * (the queue's getters, putters and joiners): e goes on wq, and the guard
 * held, dropped and re-taken is guard's, not wq's. */
int weft__wait_on_under(weft__waitq *guard, weft__waitq *wq,
                        weft__wait_entry *e, bool front, int64_t deadline,
                        const char *what, const void *obj);


#endif
