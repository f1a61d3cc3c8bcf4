/* queue_internal.h - the storage behind weft_queue: a growable ring for
 * LIFO queues and large bounded FIFO ones (ring.c) and a binary heap for
 * priority queues (heap.c), behind one small inline interface (store_*)
 * that queue.c uses; and the lock-free stores of the other FIFO queues
 * (fast.c, seg.c), which fast.c drives.
 *
 * The locked storage is plain data: it does no locking of its own.  Every
 * function of it needs the owning queue's guard held (queue.c says which).
 * The push fast paths are inline; only growth (an allocation) goes out of
 * line, so a put that fits costs a few instructions.  The lock-free stores
 * say their own rules (fast.c, seg.c).
 */
#ifndef WEFT_QUEUE_INTERNAL_H
#define WEFT_QUEUE_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/assert.h"
#include "../park/park.h"
#include "weft/green.h"
#include "weft/queue.h"

/* ---- ring (FIFO and LIFO) --------------------------------------------- */

/* Items live in buf[(head + i) & (cap - 1)] for i in [0, len): the oldest
 * at head, the newest at head + len - 1.  cap is a power of two (or 0 before
 * the first allocation), so wrapping is a mask. */
typedef struct weft__ring {
    void **buf;
    size_t cap;
    size_t head;
    size_t len;
} weft__ring;

/* Allocate room for at least cap items.  0 or -ENOMEM. */
int weft__ring_init(weft__ring *r, size_t cap);
void weft__ring_fini(weft__ring *r);
/* Double the capacity, keeping the order.  0 or -ENOMEM (r unchanged). */
int weft__ring_grow(weft__ring *r);

static inline int weft__ring_push(weft__ring *r, void *item)
{
    if (WEFT_UNLIKELY(r->len == r->cap)) {
        int rc = weft__ring_grow(r);
        if (rc != 0)
            return rc;
    }
    r->buf[(r->head + r->len) & (r->cap - 1)] = item;
    r->len++;
    return 0;
}

/* The oldest item (FIFO).  Needs len > 0. */
static inline void *weft__ring_pop_front(weft__ring *r)
{
    void *item = r->buf[r->head];
    r->head = (r->head + 1) & (r->cap - 1);
    r->len--;
    return item;
}

/* The newest item (LIFO).  Needs len > 0. */
static inline void *weft__ring_pop_back(weft__ring *r)
{
    r->len--;
    return r->buf[(r->head + r->len) & (r->cap - 1)];
}

/* ---- heap (priority) -------------------------------------------------- */

/* A min-heap on (prio, seq).  seq grows with every push, so items of equal
 * priority come out in the order they went in: the heap is stable although
 * a binary heap alone is not. */
typedef struct weft__heap_node {
    int64_t prio;
    uint64_t seq;
    void *item;
} weft__heap_node;

typedef struct weft__heap {
    weft__heap_node *v;
    size_t cap;
    size_t len;
    uint64_t next_seq;
} weft__heap;

int weft__heap_init(weft__heap *h, size_t cap);
void weft__heap_fini(weft__heap *h);
/* 0 or -ENOMEM (h unchanged). */
int weft__heap_push(weft__heap *h, void *item, int64_t prio);
/* The least (prio, seq).  Needs len > 0. */
void *weft__heap_pop(weft__heap *h, int64_t *prio);

/* ---- the storage of one queue ----------------------------------------- */

typedef struct weft__qstore {
    weft_queue_kind kind;  /* constant */
    union {
        weft__ring ring;   /* FIFO, LIFO */
        weft__heap heap;   /* PRIORITY */
    } u;
} weft__qstore;

static inline size_t store_len(const weft__qstore *s)
{
    return s->kind == WEFT_QUEUE_PRIORITY ? s->u.heap.len : s->u.ring.len;
}

/* 0 or -ENOMEM.  Cannot fail when an item was popped since the last growth
 * (neither storage ever shrinks). */
static inline int store_push(weft__qstore *s, void *item, int64_t prio)
{
    if (s->kind == WEFT_QUEUE_PRIORITY)
        return weft__heap_push(&s->u.heap, item, prio);
    return weft__ring_push(&s->u.ring, item);
}

/* The next item in get order.  Needs store_len(s) > 0. */
static inline void *store_pop(weft__qstore *s, int64_t *prio)
{
    switch (s->kind) {
    case WEFT_QUEUE_FIFO:
        *prio = 0;
        return weft__ring_pop_front(&s->u.ring);
    case WEFT_QUEUE_LIFO:
        *prio = 0;
        return weft__ring_pop_back(&s->u.ring);
    default:
        return weft__heap_pop(&s->u.heap, prio);
    }
}

/* ---- the lock-free stores of FIFO queues (fast.c, seg.c) -------------- */

/* Bounded FIFO queues keep their items in a Vyukov ring (fast.c), unbounded
 * ones in a list of segments (seg.c).  Both are driven by one waiting
 * layer (fast.c), which sees a store through the state below: tail and
 * head are indices whose bit 63 closes the store to puts (gets), and
 * weft__fq_count turns an index into the number of positions before it,
 * so counts, size and shutdown are the same code for both. */
#define WEFT__FQ_CLOSED (UINT64_C(1) << 63)

/* One cell of the ring: seq says whose turn it is (see fast.c). */
typedef struct weft__fcell {
    _Atomic uint64_t seq;
    void *item;                /* ordered by seq's release/acquire */
} weft__fcell;

/* One slot of a segment (seg.c). */
typedef struct weft__sslot {
    void *item;                /* written before state 1, read after it */
    _Atomic uint32_t state;    /* 0 empty, 1 item published, 2 item read */
} weft__sslot;

/* A segment: seg_cap slots, linked to the next one by the put that takes
 * its last slot.  The slots start on a cache line of their own. */
typedef struct weft__seg {
    _Atomic(struct weft__seg *) next;
    struct weft__seg *pend_next; /* on the pending list (seg.c) */
    char pad[64 - 2 * sizeof(void *)];
    weft__sslot slots[];
} weft__seg;

/* Each hot word has a cache line of its own: producers write tail (and
 * tail_seg), consumers write head (and head_seg, tail_seen), task_done
 * writes done; the line holding the waiter mirrors and the constants is
 * read by everybody and written only when someone parks.  (A queue
 * allocates it with 64-byte alignment.) */
typedef struct weft__fq {
    _Alignas(64) _Atomic uint64_t tail; /* next put index; bit 63: closed */
    _Atomic(weft__seg *) tail_seg;      /* seg: the segment of tail */
    weft__seg *_Atomic spare;           /* seg: one consumed segment kept */
    weft__seg *_Atomic pending;         /* seg: consumed, a get not done */
    _Alignas(64) _Atomic uint64_t head; /* next get index; bit 63: closed */
    _Atomic(weft__seg *) head_seg;      /* seg: the segment of head */
    _Atomic uint64_t tail_seen;         /* seg: tail as a get last read it */
    _Alignas(64) _Atomic uint64_t done; /* task_done calls + withdrawn items */
    _Alignas(64) _Atomic uint32_t nget; /* getters parked or parking */
    _Atomic uint32_t nput;              /* putters parked or parking */
    _Atomic uint32_t njoin;             /* joiners parked or parking */
    _Atomic int64_t woke_ns;            /* when serve last woke a waiter */
    unsigned seg_shift;                 /* constant: 0 for the ring */
    uint64_t seg_cap;                   /* constant: (1 << seg_shift) - 1 */
    uint64_t cap;                       /* constant (ring): cells; maxsize,
                                           or 2 for maxsize 1 (one) */
    uint64_t mask;                      /* constant (ring): cap - 1 if pow2 */
    int pow2;                           /* constant (ring) */
    int one;                            /* constant (ring): maxsize 1 */
    weft__fcell *cells;                 /* constant pointer (ring) */
} weft__fq;

/* Rings are used for bounded FIFO queues of maxsize 1 up to this size (the
 * cells are allocated up front, so larger bounds keep the growable locked
 * storage).  Maxsize 1 gets two cells and a put that also checks the
 * previous position's cell (fast.c, "Maxsize 1"): with one cell a full
 * cell's seq would equal a free one's. */
#define WEFT__FRING_MAX ((size_t)1 << 16)

/* Segments of unbounded FIFO queues hold (1 << WEFT__SEG_SHIFT) - 1 items
 * (16 KiB each); tests make smaller ones through weft__queue_create_seg. */
#define WEFT__SEG_SHIFT 10u
#define WEFT__SEG_SHIFT_MIN 1u
#define WEFT__SEG_SHIFT_MAX 20u

/* The number of positions before index idx (closed bit cleared).  A ring
 * index is a position; a segment index is lap << seg_shift | offset, where
 * offset seg_cap (one past the last slot) means that the segment's last
 * slot was taken and the index is moving on to the next segment. */
static inline uint64_t weft__fq_count(const weft__fq *r, uint64_t idx)
{
    if (r->seg_shift == 0)
        return idx;
    return (idx >> r->seg_shift) * r->seg_cap +
           (idx & ((UINT64_C(1) << r->seg_shift) - 1));
}

/* The segment store (seg.c).  put: 0, -EPIPE (tail closed) or -ENOMEM (a
 * segment could not be allocated; nothing changed).  get: 0, -EAGAIN (no
 * put has taken our position yet) or -EPIPE (head closed).  take: like get
 * but ignores a closed head; only for take_undelivered (guard held, head
 * closed, a position left before tail).  Both may wait a few instructions
 * for a thread that took a position to finish with it. */
int weft__seg_init(weft__fq *r, unsigned shift);
void weft__seg_fini(weft__fq *r, void (*free_item)(void *item));
int weft__seg_put(weft__fq *r, void *item);
int weft__seg_get(weft__fq *r, void **item);
void *weft__seg_take(weft__fq *r);

/* ---- the queue -------------------------------------------------------- */

enum { WEFT__Q_OPEN = 0, WEFT__Q_SHUT_GRACEFUL = 1, WEFT__Q_SHUT_IMMEDIATE = 2 };

struct weft_queue {
    weft__waitq getters;      /* its guard is the queue's lock */
    weft__qstore store;       /* guarded by getters.guard; unused with ring */
    size_t maxsize;           /* constant; 0 means unbounded */
    size_t unfinished;        /* guarded by getters.guard; unused with ring */
    _Atomic int shut;         /* WEFT__Q_*; written under the guard */
    weft__waitq putters;      /* guarded by getters.guard */
    weft__waitq joiners;      /* guarded by getters.guard */
    weft__fq *fast;           /* constant: non-NULL for the lock-free path */
    _Atomic size_t len;       /* store_len mirrored for the peek before a
                                 yield (weft__queue_yield): written under
                                 the guard after every change of the
                                 storage, read without it; a hint only,
                                 unused with q->fast */
    _Atomic uint32_t yield_skip; /* waits to park without yielding first
                                    (weft__queue_yield); a hint only */
};

/* ---- a green thread yields once before it parks ------------------------
 *
 * A green thread that finds the queue empty (full) and would park first
 * yields its worker once, and parks only if the queue is still empty
 * (full) when it runs again.  A partner on the same worker (the usual case
 * of green threads talking through a queue: a ping-pong, a pipeline) then
 * fills (empties) it in between, and neither side parks: a message costs
 * the two queue operations and one yield switch instead of a park (prepare,
 * queue the entry, commit the park with a CAS after the switch) plus its
 * wake-up (the claim CAS, the run_state CAS, the push into runnext): three
 * locked instructions and ~100 instructions fewer per message in the green
 * queue ping-pong (bench_green; 498 -> 392 on the locked queue).  This is
 * the green thread's form of the short spin an OS thread makes before it
 * sleeps (fast.c, spin_until; the park layer's os_block): a green thread
 * must not spin, since the thread it waits for may need its worker, but a
 * yield lets exactly that thread run.
 *   The queue (layer 4) calls weft_green_yield, layer 5's public call,
 * because the park layer has no "yield" of its own; the waiter's kind,
 * which park.h exposes, says when to.  (A yield in struct weft__park_ops,
 * a no-op for OS threads, would keep the layering; it is not there yet.)
 *   Nothing here is needed for correctness: the yield comes before the
 * usual path, which decides everything under its own rules (the guard, or
 * fast.c's protocol).  A yield that did not pay (still empty or full
 * after it, or nothing else to run: then weft_green_yield returns at once)
 * makes the next WEFT__QUEUE_YIELD_SKIP waits on this queue park at once,
 * so a queue whose waiters really wait (long waits, a partner on another
 * worker or an OS thread) pays one wasted yield per that many waits, and
 * its waiters are not delayed behind the whole run queue each time (a
 * yield goes to the back of the ring, where a woken thread would have gone
 * to runnext).  yield_skip is a relaxed hint: racing updates lose counts,
 * never correctness.
 *   (Rejected: a yield on every wait - a consumer fed by an OS thread, with
 * CPU-bound green threads on its worker, would wait for all of them on
 * every get before parking; and a loop of yields until ready - a busy
 * wait that the monitor would take for a hog.)
 * Not for WEFT_NOW or the _nowait calls, which never wait. */
#define WEFT__QUEUE_YIELD_SKIP 16u

/* Yield the worker if the caller is a green thread and this queue's recent
 * yields paid.  Returns whether it yielded (the caller then looks again and
 * reports a miss with weft__queue_yield_missed if it still must wait). */
static inline bool weft__queue_yield(weft_queue *q)
{
    uint32_t skip;

    if (weft__self()->kind != WEFT__WAITER_GREEN)
        return false;
    skip = atomic_load_explicit(&q->yield_skip, memory_order_relaxed);
    if (WEFT_UNLIKELY(skip != 0)) {
        atomic_store_explicit(&q->yield_skip, skip - 1, memory_order_relaxed);
        return false;
    }
    (void)weft_green_yield(); /* 0: the caller is a green thread */
    return true;
}

static inline void weft__queue_yield_missed(weft_queue *q)
{
    atomic_store_explicit(&q->yield_skip, WEFT__QUEUE_YIELD_SKIP,
                          memory_order_relaxed);
}

/* What a parked putter offers or a parked getter receives; it lives on the
 * parked thread's stack and is written only under the guard.  done says
 * that a waker moved the item (the ring path's hand-off), so that a waiter
 * whose deadline passed at the same instant still reports success. */
struct weft__qslot {
    void *item;
    int64_t prio;
    int done;
};

/* The lock-free path (fast.c).  Same contracts as the public calls.  init
 * makes a ring for maxsize items (maxsize cells; two for maxsize 1);
 * init_seg a segment store whose segments hold (1 << shift) - 1 items. */
int weft__queue_fast_init(weft_queue *q, size_t maxsize);
int weft__queue_fast_init_seg(weft_queue *q, unsigned shift);
void weft__queue_fast_fini(weft_queue *q, void (*free_item)(void *item));
int weft__queue_fast_put(weft_queue *q, void *item, int64_t deadline,
                         int nowait_rc);
int weft__queue_fast_get(weft_queue *q, void **item, int64_t deadline,
                         int nowait_rc);
size_t weft__queue_fast_size(const weft_queue *q);
int weft__queue_fast_task_done(weft_queue *q);
int weft__queue_fast_join(weft_queue *q, int64_t deadline);
size_t weft__queue_fast_unfinished(const weft_queue *q);
void weft__queue_fast_shutdown(weft_queue *q, bool immediate);
size_t weft__queue_fast_take_undelivered(weft_queue *q, void **out,
                                         size_t cap);

/* An unbounded FIFO queue whose segments hold (1 << shift) - 1 items
 * (WEFT__SEG_SHIFT_MIN to _MAX; else -EINVAL), for tests that want to cross
 * segment boundaries often.  weft_queue_create uses WEFT__SEG_SHIFT. */
int weft__queue_create_seg(weft_queue **out, unsigned shift);

#endif
