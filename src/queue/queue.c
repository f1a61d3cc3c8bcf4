/* queue.c - weft_queue: bounded and unbounded MPMC queues with deadlines,
 * task_done/join and Python 3.13's shutdown.
 *
 * Design.  One small lock (the guard of the getters wait queue) protects
 * everything: the storage, the counters and three wait queues (getters
 * parked on an empty queue, putters parked on a full one, joiners).  A put
 * or get that can proceed takes the guard once, moves one item and drops
 * it: no syscall, no allocation unless the storage grows.
 * Items pass directly between threads when one side is parked (Go's
 * channels do the same):
 *   - a put that finds a parked getter writes the item into that getter's
 *     slot (reached through its wait entry's data) and wakes it; the
 *     storage is never touched;
 *   - a get from a full bounded queue takes its item, then moves the first
 *     parked putter's item into the room it made and wakes that putter.
 * So a woken thread never has to take the guard again to finish: it
 * returns with its work already done, and no third thread can steal the
 * item or the room between the wake-up and the woken thread running.
 *   (Rejected: a mutex with two condition variables, as CPython does.
 *   Every wake-up there is followed by the woken thread re-taking the
 *   mutex and re-checking, and a running thread can take the item first,
 *   sending the woken one back to sleep: two extra lock round trips per
 *   hand-off under load.)
 * A hand-off counts only when weft__wake returned true.  If it returns
 * false, the waiter has left (deadline or cancellation) and is blocked on
 * the guard that we hold to unlink itself; the waker offers the item to
 * the next waiter, or stores it.  A getter that times out looks at the
 * storage once more under the guard, so an item offered to it in the same
 * instant is not missed, only delivered from the storage instead.
 *
 * Invariants (at every release of the guard):
 *   - getters holds live entries only while the storage is empty: a put
 *     hands off before it stores;
 *   - putters holds live entries only while the queue is bounded and full:
 *     a get that makes room refills it from the first live putter;
 *   - after an immediate shutdown the storage holds exactly the undelivered
 *     items (get refuses them; take_undelivered hands them back), and
 *     nothing is ever added to it again;
 *   - unfinished counts successful puts minus task_done calls, minus the
 *     items an immediate shutdown withdrew (clamped at zero, as Python);
 *   - len equals store_len (it is stored after every change).
 *
 * A green thread about to wait yields once first (queue_internal.h,
 * "a green thread yields once before it parks").  Whether it would wait is
 * read without the guard, from len and shut: a stale answer only makes it
 * yield in vain or not at all, and the guarded path that follows decides.
 * Two green threads on one worker passing messages through a LIFO or
 * priority queue thus never park: each put and get takes the guard once.
 *
 * FIFO queues, bounded ones of maxsize 1 to WEFT__FRING_MAX and unbounded
 * ones, do not use any of this: they keep their items in a lock-free store
 * (fast.c's ring, seg.c's segments), and every public call below hands
 * them over to fast.c first (q->fast is set).
 *
 * Locking: every field below the constant ones is guarded by
 * getters.guard.  shut is also atomic so that is_shutdown needs no lock;
 * len and yield_skip are atomic hints read without it.
 * The other wait queues' own guards are never used.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "../lib/assert.h"
#include "../park/park.h"
#include "../platform/inflight.h"
#include "queue_internal.h"
#include "weft/queue.h"

enum {
    OPEN = WEFT__Q_OPEN,
    SHUT_GRACEFUL = WEFT__Q_SHUT_GRACEFUL,
    SHUT_IMMEDIATE = WEFT__Q_SHUT_IMMEDIATE
};

/* struct weft_queue is in queue_internal.h (fast.c shares it). */
#define slot weft__qslot

static void lock(const weft_queue *q)
{
    weft__waitq_lock((weft__waitq *)&q->getters);
}

static void unlock(const weft_queue *q)
{
    weft__waitq_unlock((weft__waitq *)&q->getters);
}

/* The storage changed: mirror its length for the peeks (guard held). */
static inline void sync_len(weft_queue *q)
{
    atomic_store_explicit(&q->len, store_len(&q->store),
                          memory_order_relaxed);
}

/* Would a get (put) wait now?  Read without the guard, for the yield
 * before waiting only: the answer may be stale. */
static inline bool get_would_wait(const weft_queue *q)
{
    return atomic_load_explicit(&q->len, memory_order_relaxed) == 0 &&
           atomic_load_explicit(&q->shut, memory_order_relaxed) == OPEN;
}

static inline bool put_would_wait(const weft_queue *q)
{
    return q->maxsize != 0 &&
           atomic_load_explicit(&q->len, memory_order_relaxed) >=
               q->maxsize &&
           atomic_load_explicit(&q->shut, memory_order_relaxed) == OPEN;
}

/* Park the caller on wq (one of q's queues) with e.  Called with the guard
 * held.  Returns 0 when woken (guard NOT held; e->result is the waker's
 * verdict), or -ETIMEDOUT/-ECANCELED with the guard held and e unlinked.
 * The guard is q's lock (the getters queue's), not wq's own. */
static int wait_in(weft_queue *q, weft__waitq *wq, weft__wait_entry *e,
                   int64_t deadline, const char *what)
{
    return weft__wait_on_under(&q->getters, wq, e, false, deadline, what, q);
}

/* ---- create / destroy ------------------------------------------------- */

/* seg_shift: the segment size of an unbounded FIFO queue (see seg.c). */
static int create(weft_queue **out, weft_queue_kind kind, size_t maxsize,
                  unsigned seg_shift)
{
    weft_queue *q;
    size_t cap = maxsize != 0 && maxsize < 64 ? maxsize : 64;
    int rc;

    if (kind != WEFT_QUEUE_FIFO && kind != WEFT_QUEUE_LIFO &&
        kind != WEFT_QUEUE_PRIORITY)
        return -EINVAL;
    q = calloc(1, sizeof *q);
    if (q == NULL)
        return -ENOMEM;
    q->store.kind = kind;
    if (kind == WEFT_QUEUE_FIFO && maxsize == 0)
        rc = weft__queue_fast_init_seg(q, seg_shift);
    else if (kind == WEFT_QUEUE_FIFO && maxsize >= 1 &&
             maxsize <= WEFT__FRING_MAX)
        rc = weft__queue_fast_init(q, maxsize);
    else if (kind == WEFT_QUEUE_PRIORITY)
        rc = weft__heap_init(&q->store.u.heap, cap);
    else
        rc = weft__ring_init(&q->store.u.ring, cap);
    if (rc != 0) {
        free(q);
        return rc;
    }
    q->getters = (weft__waitq)WEFT__WAITQ_INIT;
    q->putters = (weft__waitq)WEFT__WAITQ_INIT;
    q->joiners = (weft__waitq)WEFT__WAITQ_INIT;
    q->maxsize = maxsize;
    q->unfinished = 0;
    atomic_init(&q->shut, OPEN);
    atomic_init(&q->len, 0);
    atomic_init(&q->yield_skip, 0);
    *out = q;
    return 0;
}

int weft_queue_create(weft_queue **out, weft_queue_kind kind, size_t maxsize)
{
    return create(out, kind, maxsize, WEFT__SEG_SHIFT);
}

int weft__queue_create_seg(weft_queue **out, unsigned shift)
{
    if (shift < WEFT__SEG_SHIFT_MIN || shift > WEFT__SEG_SHIFT_MAX)
        return -EINVAL;
    return create(out, WEFT_QUEUE_FIFO, 0, shift);
}

/* Nobody may be parked: a parked thread (or one that timed out and is
 * about to take the guard to unlink itself) still holds a pointer to q.
 * A put, get or task_done of the lock-free path may still be past the
 * store that let the caller see the queue finished (fast.c, "Destroy
 * right after the last get"): wait it out first; the locked paths and
 * shutdown hold the guard, which weft_queue_waiters takes.  After a 0
 * return the caller must not use q again, so nobody can race with the
 * freeing. */
int weft_queue_destroy(weft_queue *q, void (*free_item)(void *item))
{
    bool busy;
    int64_t prio;

    if (q->fast != NULL)
        weft__inflight_wait(q);
    busy = weft_queue_waiters(q) != 0;
    if (busy)
        return -EBUSY;
    if (q->fast != NULL) {
        weft__queue_fast_fini(q, free_item);
        free(q);
        return 0;
    }
    while (store_len(&q->store) > 0) {
        void *item = store_pop(&q->store, &prio);
        if (free_item)
            free_item(item);
    }
    if (q->store.kind == WEFT_QUEUE_PRIORITY)
        weft__heap_fini(&q->store.u.heap);
    else
        weft__ring_fini(&q->store.u.ring);
    free(q);
    return 0;
}

/* ---- put -------------------------------------------------------------- */

/* Give item to the first live parked getter.  Guard held.  Returns false if
 * none was left (each popped entry whose wake failed belongs to a waiter
 * that already left, so writing its slot was harmless). */
static bool give_to_getter(weft_queue *q, void *item, int64_t prio)
{
    weft__wait_entry *e;
    struct slot *s;

    while ((e = weft__waitq_pop(&q->getters)) != NULL) {
        s = (struct slot *)e->data;
        s->item = item;
        s->prio = prio;
        if (weft__wake(e, 0))
            return true;
    }
    return false;
}

/* Put without waiting.  Guard held (and still held on return).  0, -EPIPE,
 * -EAGAIN (full) or -ENOMEM. */
static int put_locked(weft_queue *q, void *item, int64_t prio)
{
    int rc;

    if (WEFT_UNLIKELY(atomic_load_explicit(&q->shut, memory_order_relaxed)))
        return -EPIPE;
    if (WEFT_UNLIKELY(!weft__waitq_empty(&q->getters)) &&
        give_to_getter(q, item, prio)) {
        q->unfinished++;
        return 0;
    }
    if (q->maxsize != 0 && store_len(&q->store) >= q->maxsize)
        return -EAGAIN;
    rc = store_push(&q->store, item, prio);
    if (rc == 0) {
        q->unfinished++;
        sync_len(q);
    }
    return rc;
}

/* The queue is full: park until a get moves our item in, shutdown, or the
 * deadline.  Guard held; returns with it released. */
static int put_slow(weft_queue *q, void *item, int64_t prio, int64_t deadline)
{
    weft__wait_entry e;
    struct slot s = {item, prio, 0};
    int rc;

    if (deadline == WEFT_NOW) {
        unlock(q);
        return -ETIMEDOUT;
    }
    e.data = (uintptr_t)&s;
    rc = wait_in(q, &q->putters, &e, deadline, "queue put");
    if (rc == 0)
        return e.result; /* 0: a getter stored our item; or -EPIPE */
    if (rc == -ETIMEDOUT) {
        /* Room may have appeared in the instant we gave up. */
        rc = put_locked(q, item, prio);
        if (rc == -EAGAIN)
            rc = -ETIMEDOUT;
    }
    unlock(q);
    return rc;
}

/* A put to a locked queue.  Out of line, so that a put to a lock-free one
 * (weft__queue_fast_put) sets up no frame for it. */
static __attribute__((noinline)) int put_guarded(weft_queue *q, void *item,
                                                 int64_t prio,
                                                 int64_t deadline)
{
    int rc;

    if (WEFT_UNLIKELY(put_would_wait(q)) && deadline != WEFT_NOW &&
        weft__queue_yield(q) && put_would_wait(q))
        weft__queue_yield_missed(q);
    lock(q);
    rc = put_locked(q, item, prio);
    if (WEFT_LIKELY(rc != -EAGAIN)) {
        unlock(q);
        return rc;
    }
    return put_slow(q, item, prio, deadline);
}

int weft_queue_put_prio(weft_queue *q, void *item, int64_t prio,
                        int64_t deadline)
{
    if (q->fast != NULL)
        return weft__queue_fast_put(q, item, deadline, -ETIMEDOUT);
    return put_guarded(q, item, prio, deadline);
}

int weft_queue_put(weft_queue *q, void *item, int64_t deadline)
{
    return weft_queue_put_prio(q, item, 0, deadline);
}

int weft_queue_put_nowait(weft_queue *q, void *item)
{
    int rc;

    if (q->fast != NULL)
        return weft__queue_fast_put(q, item, WEFT_NOW, -EAGAIN);
    lock(q);
    rc = put_locked(q, item, 0);
    unlock(q);
    return rc;
}

/* ---- get -------------------------------------------------------------- */

/* A get has just made room in a full bounded queue: move the first live
 * parked putter's item into it.  Guard held.  The putter's slot is read
 * before the wake, since a woken putter returns at once and its slot (on
 * its stack) is gone. */
static void take_from_putter(weft_queue *q)
{
    weft__wait_entry *e;
    struct slot s;
    int rc;

    while ((e = weft__waitq_pop(&q->putters)) != NULL) {
        s = *(struct slot *)e->data;
        if (weft__wake(e, 0)) {
            rc = store_push(&q->store, s.item, s.prio);
            WEFT_ASSERT(rc == 0); /* a pop just made room */
            q->unfinished++;
            sync_len(q);
            return;
        }
    }
}

/* Get without waiting.  Guard held (and still held on return).  0, -EPIPE
 * or -EAGAIN (empty). */
static int get_locked(weft_queue *q, void **item, int64_t *prio)
{
    int shut = atomic_load_explicit(&q->shut, memory_order_relaxed);

    if (WEFT_LIKELY(store_len(&q->store) > 0 && shut != SHUT_IMMEDIATE)) {
        *item = store_pop(&q->store, prio);
        sync_len(q);
        if (WEFT_UNLIKELY(!weft__waitq_empty(&q->putters)))
            take_from_putter(q);
        return 0;
    }
    return shut != OPEN ? -EPIPE : -EAGAIN;
}

/* The queue is empty: park until a put hands us an item, shutdown, or the
 * deadline.  Guard held; returns with it released. */
static int get_slow(weft_queue *q, void **item, int64_t *prio,
                    int64_t deadline)
{
    weft__wait_entry e;
    struct slot s = {NULL, 0, 0};
    int rc;

    if (deadline == WEFT_NOW) {
        unlock(q);
        return -ETIMEDOUT;
    }
    e.data = (uintptr_t)&s;
    rc = wait_in(q, &q->getters, &e, deadline, "queue get");
    if (rc == 0) {
        if (e.result == 0) {
            *item = s.item;
            *prio = s.prio;
        }
        return e.result; /* 0, or -EPIPE */
    }
    if (rc == -ETIMEDOUT) {
        /* A put that offered us its item in the instant we gave up has
         * stored it instead: take it from there. */
        rc = get_locked(q, item, prio);
        if (rc == -EAGAIN)
            rc = -ETIMEDOUT;
    }
    unlock(q);
    return rc;
}

/* A get from a locked queue; out of line, as put_guarded.  prio non-NULL. */
static __attribute__((noinline)) int get_guarded(weft_queue *q, void **item,
                                                 int64_t *prio,
                                                 int64_t deadline)
{
    int rc;

    if (WEFT_UNLIKELY(get_would_wait(q)) && deadline != WEFT_NOW &&
        weft__queue_yield(q) && get_would_wait(q))
        weft__queue_yield_missed(q);
    lock(q);
    rc = get_locked(q, item, prio);
    if (WEFT_LIKELY(rc != -EAGAIN)) {
        unlock(q);
        return rc;
    }
    return get_slow(q, item, prio, deadline);
}

int weft_queue_get_prio(weft_queue *q, void **item, int64_t *prio,
                        int64_t deadline)
{
    if (q->fast != NULL) {
        if (prio != NULL)
            *prio = 0;
        return weft__queue_fast_get(q, item, deadline, -ETIMEDOUT);
    }
    if (prio == NULL) {
        int64_t p;
        return get_guarded(q, item, &p, deadline);
    }
    return get_guarded(q, item, prio, deadline);
}

int weft_queue_get(weft_queue *q, void **item, int64_t deadline)
{
    if (q->fast != NULL)
        return weft__queue_fast_get(q, item, deadline, -ETIMEDOUT);
    return weft_queue_get_prio(q, item, NULL, deadline);
}

int weft_queue_get_nowait(weft_queue *q, void **item)
{
    int64_t prio;
    int rc;

    if (q->fast != NULL)
        return weft__queue_fast_get(q, item, WEFT_NOW, -EAGAIN);
    lock(q);
    rc = get_locked(q, item, &prio);
    unlock(q);
    return rc;
}

/* ---- snapshots -------------------------------------------------------- */

/* These take the guard, so a thread sees its own earlier puts and gets
 * (a lock-free counter could lag a hand-off by a few instructions).  The
 * answer may still be stale by the time the caller looks at it. */
size_t weft_queue_size(const weft_queue *q)
{
    size_t n;

    if (q->fast != NULL)
        return weft__queue_fast_size(q);
    lock(q);
    n = atomic_load_explicit(&q->shut, memory_order_relaxed) ==
                SHUT_IMMEDIATE
            ? 0
            : store_len(&q->store);
    unlock(q);
    return n;
}

bool weft_queue_empty(const weft_queue *q)
{
    return weft_queue_size(q) == 0;
}

bool weft_queue_full(const weft_queue *q)
{
    return q->maxsize != 0 && weft_queue_size(q) >= q->maxsize;
}

size_t weft_queue_maxsize(const weft_queue *q)
{
    return q->maxsize;
}

size_t weft_queue_waiters(const weft_queue *q)
{
    size_t n;

    lock(q);
    n = (size_t)q->getters.len + q->putters.len + q->joiners.len;
    unlock(q);
    return n;
}

/* ---- task_done / join ------------------------------------------------- */

int weft_queue_task_done(weft_queue *q)
{
    if (q->fast != NULL)
        return weft__queue_fast_task_done(q);
    lock(q);
    if (q->unfinished == 0) {
        unlock(q);
        return -EOVERFLOW;
    }
    if (--q->unfinished == 0)
        weft__wake_all(&q->joiners, 0);
    unlock(q);
    return 0;
}

/* A joiner is woken when unfinished reaches zero after it parked; it
 * returns then even if a put has raised the count again in the meantime
 * (the tasks it waited for are all done). */
int weft_queue_join(weft_queue *q, int64_t deadline)
{
    weft__wait_entry e;
    int rc;

    if (q->fast != NULL)
        return weft__queue_fast_join(q, deadline);
    lock(q);
    if (q->unfinished == 0) {
        unlock(q);
        return 0;
    }
    if (deadline == WEFT_NOW) {
        unlock(q);
        return -ETIMEDOUT;
    }
    e.data = 0;
    rc = wait_in(q, &q->joiners, &e, deadline, "queue join");
    if (rc == 0)
        return 0;
    if (rc == -ETIMEDOUT && q->unfinished == 0)
        rc = 0;
    unlock(q);
    return rc;
}

size_t weft_queue_unfinished(const weft_queue *q)
{
    size_t n;

    if (q->fast != NULL)
        return weft__queue_fast_unfinished(q);
    lock(q);
    n = q->unfinished;
    unlock(q);
    return n;
}

/* ---- shutdown --------------------------------------------------------- */

void weft_queue_shutdown(weft_queue *q, bool immediate)
{
    int want = immediate ? SHUT_IMMEDIATE : SHUT_GRACEFUL;
    size_t n;

    lock(q);
    if (atomic_load_explicit(&q->shut, memory_order_relaxed) >= want) {
        unlock(q);
        return;
    }
    atomic_store_explicit(&q->shut, want, memory_order_seq_cst);
    if (q->fast != NULL) {
        weft__queue_fast_shutdown(q, immediate);
        unlock(q);
        return;
    }
    /* Blocked putters fail even if there is room by now (Python 3.13). */
    weft__wake_all(&q->putters, -EPIPE);
    if (immediate) {
        /* The storage now holds the undelivered items; withdraw them from
         * the unfinished tasks. */
        n = store_len(&q->store);
        q->unfinished = q->unfinished > n ? q->unfinished - n : 0;
        if (q->unfinished == 0)
            weft__wake_all(&q->joiners, 0);
    }
    if (immediate || store_len(&q->store) == 0)
        weft__wake_all(&q->getters, -EPIPE);
    unlock(q);
}

bool weft_queue_is_shutdown(const weft_queue *q)
{
    return atomic_load_explicit(&q->shut, memory_order_acquire) != OPEN;
}

size_t weft_queue_take_undelivered(weft_queue *q, void **out, size_t cap)
{
    size_t n = 0;
    int64_t prio;

    if (q->fast != NULL)
        return weft__queue_fast_take_undelivered(q, out, cap);
    lock(q);
    if (atomic_load_explicit(&q->shut, memory_order_relaxed) ==
        SHUT_IMMEDIATE)
        while (n < cap && store_len(&q->store) > 0)
            out[n++] = store_pop(&q->store, &prio);
    sync_len(q);
    unlock(q);
    return n;
}
