/* queue_internal.h - the storage behind weft_queue: a growable ring for
 * FIFO and LIFO queues (ring.c) and a binary heap for priority queues
 * (heap.c), behind one small inline interface (store_*) that queue.c uses.
 *
 * Storage is plain data: it does no locking of its own.  Every function
 * here needs the owning queue's guard held (queue.c says which).  The push
 * fast paths are inline; only growth (an allocation) goes out of line, so a
 * put that fits costs a few instructions.
 */
#ifndef WEFT_QUEUE_INTERNAL_H
#define WEFT_QUEUE_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/assert.h"
#include "../park/park.h"
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

/* ---- the lock-free ring of bounded FIFO queues (fast.c) ---------------- */

/* One cell of the ring: seq says whose turn it is (see fast.c). */
typedef struct weft__fcell {
    _Atomic uint64_t seq;
    void *item;                /* ordered by seq's release/acquire */
} weft__fcell;

/* Each hot word has a cache line of its own: producers write tail,
 * consumers write head, task_done writes done; the line holding the
 * waiter mirrors and the constants is read by everybody and written only
 * when someone parks.  (A queue allocates it with 64-byte alignment.) */
typedef struct weft__fring {
    _Alignas(64) _Atomic uint64_t tail; /* next put position; bit 63: closed */
    _Alignas(64) _Atomic uint64_t head; /* next get position; bit 63: closed */
    _Alignas(64) _Atomic uint64_t done; /* task_done calls + withdrawn items */
    _Alignas(64) _Atomic uint32_t nget; /* getters parked or parking */
    _Atomic uint32_t nput;              /* putters parked or parking */
    _Atomic uint32_t njoin;             /* joiners parked or parking */
    _Atomic int64_t woke_ns;            /* when serve last woke a waiter */
    uint64_t cap;                       /* constant: maxsize */
    uint64_t mask;                      /* constant: cap - 1 if a power of 2 */
    int pow2;                           /* constant */
    weft__fcell *cells;                 /* constant pointer */
} weft__fring;

/* Rings are used for bounded FIFO queues of maxsize 2 up to this size (the
 * cells are allocated up front, so larger bounds keep the growable locked
 * storage; with one cell a full cell's seq would equal a free one's). */
#define WEFT__FRING_MAX ((size_t)1 << 16)

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
    weft__fring *ring;        /* constant: non-NULL for the lock-free path */
};

/* What a parked putter offers or a parked getter receives; it lives on the
 * parked thread's stack and is written only under the guard.  done says
 * that a waker moved the item (the ring path's hand-off), so that a waiter
 * whose deadline passed at the same instant still reports success. */
struct weft__qslot {
    void *item;
    int64_t prio;
    int done;
};

/* The lock-free path (fast.c).  Same contracts as the public calls. */
int weft__queue_fast_init(weft_queue *q, size_t cap);
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

#endif
