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

#include <stddef.h>
#include <stdint.h>

#include "../lib/assert.h"
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

#endif
