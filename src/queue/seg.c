/* seg.c - the lock-free store of unbounded FIFO queues: a list of
 * fixed-size segments that grows at the tail and is freed at the head,
 * driven by fast.c's waiting layer exactly as the bounded ring is.
 *
 * Design.  A segment holds seg_cap = 2^shift - 1 slots.  tail and head are
 * indices lap << shift | offset: a put takes the position at tail by a CAS
 * on tail (a get, at head, by a CAS on head) and only then touches the
 * segment, which tail_seg (head_seg) names.  Offset seg_cap is not a slot:
 * the put that takes a segment's last slot moves tail there, installs the
 * next segment (tail_seg, then tail past the gap, then the old segment's
 * next) and only then writes its item; puts that see the gap wait for it
 * (a few instructions).  The get that takes the last slot does the same on
 * the head side with the old segment's next.  A put allocates the next
 * segment before it takes the last slot, so that -ENOMEM leaves nothing
 * half done.  A get takes a position only below tail (read through
 * tail_seen, a copy of tail on the consumers' line, so that a get behind
 * a backlog does not read the producers' line), then waits for that put
 * to publish its item (its state, release/acquire): like the ring, a store
 * whose put has taken a position but not published it looks non-empty,
 * and the get finishes a few instructions after the put.
 *   (Rejected: a get that looks at the slot before taking it, as the
 *   ring's does.  A segment may be freed as soon as its last reader is
 *   done, so a thread must not touch a segment until it owns a position
 *   in it: a get that read head_seg and was then preempted could read a
 *   freed segment.  The index CAS is what makes the pointer it read
 *   trustworthy: it succeeds only if head has not moved, and head_seg
 *   changes only after head has moved out of the segment.  Rejected too:
 *   keeping every segment until the queue is destroyed, which holds the
 *   largest backlog ever queued for the queue's whole life.)
 *
 * Reclamation.  A get marks its slot read with a plain release store,
 * its last touch of the segment.  The get of the last slot (no get takes a
 * slot of the segment after it, though others may still be finishing)
 * then looks at every other slot: if all are read, nobody touches the
 * segment again (every put finished with it before publishing, every get
 * before marking), and it becomes the queue's spare (the older spare is
 * freed), so a steady stream reuses one segment instead of calling malloc
 * and free per segment.  If a get is still busy (preempted, or waiting for
 * its put), the segment goes on the pending list, which the next
 * segment's last get looks at again, and destroy frees what is left.
 *   (Rejected: crossbeam's SegQueue scheme, where each get marks its slot
 *   with a fetch_or and the get that finds the destroy bit carries on
 *   freeing.  It frees at once, but a second locked instruction per get
 *   cost a third of the 1P/1C throughput here: 52 against 75 M items/s.)
 *
 * Invariants: head <= tail as positions; head_seg is the segment of head
 * except while head is in the gap (tail_seg likewise); a segment that a
 * thread can reach from head_seg, tail_seg or spare is not freed; segments
 * behind head_seg are the spare, freed, or on the pending list.
 *
 * Locking: none of its own.  tail, head and the segment pointers are
 * atomic; a slot's item is ordered by its state; the get that
 * takes a position is the only reader of its slot.  take (take_undelivered)
 * runs under the queue's guard with head closed, so it is the only thread
 * moving head.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "../platform/platform.h"
#include "queue_internal.h"

#define CLOSED WEFT__FQ_CLOSED
#define POS(x) ((x) & ~CLOSED)
/* A slot's state. */
#define SLOT_EMPTY 0u
#define SLOT_WRITTEN 1u
#define SLOT_READ 2u

/* Wait for another thread a few instructions away from its next store;
 * yield now and then in case the scheduler took its CPU. */
static void backoff(unsigned *spins)
{
    if (++*spins % 1024 == 0)
        sched_yield();
    else
        weft__cpu_relax();
}

static size_t seg_bytes(const weft__fq *r)
{
    size_t bytes = sizeof(weft__seg) + r->seg_cap * sizeof(weft__sslot);
    return (bytes + 63) / 64 * 64;
}

/* An empty segment: the spare if there is one, else a new one.  NULL when
 * out of memory. */
static weft__seg *seg_new(weft__fq *r)
{
    weft__seg *s = atomic_exchange_explicit(&r->spare, NULL,
                                            memory_order_acquire);
    size_t bytes = seg_bytes(r);

    if (s == NULL) {
        s = aligned_alloc(64, bytes);
        if (s == NULL)
            return NULL;
    }
    memset(s, 0, bytes);
    return s;
}

/* Nobody can reach s any more: keep it as the spare, freeing the older
 * spare.  (The release orders every use of s before its reuse.) */
static void seg_retire(weft__fq *r, weft__seg *s)
{
    free(atomic_exchange_explicit(&r->spare, s, memory_order_acq_rel));
}

int weft__seg_init(weft__fq *r, unsigned shift)
{
    weft__seg *s;

    r->seg_shift = shift;
    r->seg_cap = (UINT64_C(1) << shift) - 1;
    atomic_init(&r->spare, NULL);
    atomic_init(&r->pending, NULL);
    s = seg_new(r);
    if (s == NULL)
        return -ENOMEM;
    atomic_init(&r->tail_seg, s);
    atomic_init(&r->head_seg, s);
    atomic_init(&r->tail_seen, 0);
    return 0;
}

/* Nobody uses the queue any more, so every position taken has been
 * published and every segment behind head_seg has been freed. */
void weft__seg_fini(weft__fq *r, void (*free_item)(void *item))
{
    uint64_t idx = POS(atomic_load_explicit(&r->head, memory_order_acquire));
    uint64_t end = POS(atomic_load_explicit(&r->tail, memory_order_acquire));
    weft__seg *s = atomic_load_explicit(&r->head_seg, memory_order_acquire);

    for (; idx < end; idx++) {
        uint64_t off = idx & r->seg_cap;
        if (off == r->seg_cap)
            s = atomic_load_explicit(&s->next, memory_order_acquire);
        else if (free_item)
            free_item(s->slots[off].item);
    }
    s = atomic_load_explicit(&r->head_seg, memory_order_acquire);
    while (s != NULL) {
        weft__seg *next = atomic_load_explicit(&s->next, memory_order_acquire);
        free(s);
        s = next;
    }
    free(atomic_load_explicit(&r->spare, memory_order_acquire));
    s = atomic_load_explicit(&r->pending, memory_order_acquire);
    while (s != NULL) {
        weft__seg *next = s->pend_next;
        free(s);
        s = next;
    }
}

/* ---- put -------------------------------------------------------------- */

int weft__seg_put(weft__fq *r, void *item)
{
    uint64_t idx = atomic_load_explicit(&r->tail, memory_order_acquire);
    weft__seg *next = NULL;
    unsigned spins = 0;

    for (;;) {
        uint64_t off = idx & r->seg_cap;
        weft__seg *s;

        if (WEFT_UNLIKELY(idx & CLOSED)) {
            if (next != NULL)
                seg_retire(r, next);
            return -EPIPE;
        }
        if (WEFT_UNLIKELY(off == r->seg_cap)) {
            /* The put of the last slot is installing the next segment. */
            backoff(&spins);
            idx = atomic_load_explicit(&r->tail, memory_order_acquire);
            continue;
        }
        if (WEFT_UNLIKELY(off + 1 == r->seg_cap) && next == NULL) {
            next = seg_new(r);
            if (next == NULL)
                return -ENOMEM;
        }
        /* Ordered after idx's load: if idx is still tail at the CAS, s is
         * its segment (tail_seg moves only after tail left the segment). */
        s = atomic_load_explicit(&r->tail_seg, memory_order_acquire);
        if (atomic_compare_exchange_weak_explicit(&r->tail, &idx, idx + 1,
                                                  memory_order_acquire,
                                                  memory_order_acquire)) {
            weft__sslot *slot = &s->slots[off];

            if (WEFT_UNLIKELY(off + 1 == r->seg_cap)) {
                atomic_store_explicit(&r->tail_seg, next,
                                      memory_order_release);
                atomic_fetch_add_explicit(&r->tail, 1, memory_order_release);
                atomic_store_explicit(&s->next, next, memory_order_release);
                next = NULL;
            }
            slot->item = item;
            atomic_store_explicit(&slot->state, SLOT_WRITTEN,
                                  memory_order_release);
            if (WEFT_UNLIKELY(next != NULL))
                seg_retire(r, next); /* allocated for a slot another took */
            return 0;
        }
    }
}

/* ---- get -------------------------------------------------------------- */

/* Has every get that took a slot of s, but the last, read its item?  The
 * acquire loads order their reads before our reuse of s. */
static bool all_read(const weft__fq *r, weft__seg *s)
{
    for (uint64_t i = 0; i + 1 < r->seg_cap; i++)
        if (atomic_load_explicit(&s->slots[i].state, memory_order_acquire) !=
            SLOT_READ)
            return false;
    return true;
}

static void pend(weft__fq *r, weft__seg *s)
{
    weft__seg *old = atomic_load_explicit(&r->pending, memory_order_relaxed);

    do
        s->pend_next = old;
    while (!atomic_compare_exchange_weak_explicit(
        &r->pending, &old, s, memory_order_release, memory_order_relaxed));
}

/* The get of s's last slot has read its item, so no get will take a slot
 * of s again: retire s if every other get is done with it, else leave it
 * on the pending list, which the next call looks at again.  (The list is
 * pushed one at a time and emptied whole, so it has no ABA problem.) */
static void seg_reclaim(weft__fq *r, weft__seg *s)
{
    weft__seg *p = atomic_exchange_explicit(&r->pending, NULL,
                                            memory_order_acquire);

    while (p != NULL) {
        weft__seg *next = p->pend_next;
        if (all_read(r, p))
            seg_retire(r, p);
        else
            pend(r, p);
        p = next;
    }
    if (all_read(r, s))
        seg_retire(r, s);
    else
        pend(r, s);
}

/* We own position off of segment s: move head on if it was the last slot,
 * wait for the put to publish, read the item, and mark the slot read (our
 * last touch of s), or reclaim s if it was the last slot. */
static void *finish_get(weft__fq *r, weft__seg *s, uint64_t off)
{
    weft__sslot *slot = &s->slots[off];
    bool last = off + 1 == r->seg_cap;
    unsigned spins = 0;
    void *item;

    if (WEFT_UNLIKELY(last)) {
        weft__seg *next;
        while ((next = atomic_load_explicit(&s->next,
                                            memory_order_acquire)) == NULL)
            backoff(&spins);
        atomic_store_explicit(&r->head_seg, next, memory_order_release);
        atomic_fetch_add_explicit(&r->head, 1, memory_order_release);
    }
    while (WEFT_UNLIKELY(atomic_load_explicit(&slot->state,
                                              memory_order_acquire) ==
                         SLOT_EMPTY))
        backoff(&spins);
    item = slot->item;
    if (WEFT_UNLIKELY(last))
        seg_reclaim(r, s);
    else
        atomic_store_explicit(&slot->state, SLOT_READ, memory_order_release);
    return item;
}

int weft__seg_get(weft__fq *r, void **item)
{
    uint64_t idx = atomic_load_explicit(&r->head, memory_order_acquire);
    unsigned spins = 0;

    for (;;) {
        uint64_t off = idx & r->seg_cap;
        weft__seg *s;

        if (WEFT_UNLIKELY(idx & CLOSED))
            return -EPIPE;
        if (WEFT_UNLIKELY(off == r->seg_cap)) {
            /* The get of the last slot is moving head to the next one. */
            backoff(&spins);
            idx = atomic_load_explicit(&r->head, memory_order_acquire);
            continue;
        }
        /* Only a position some put has taken (idx is not in the gap, so
         * comparing indices compares positions). */
        if (idx >= atomic_load_explicit(&r->tail_seen, memory_order_relaxed)) {
            uint64_t t = POS(atomic_load_explicit(&r->tail,
                                                  memory_order_acquire));
            if (idx >= t)
                return -EAGAIN;
            atomic_store_explicit(&r->tail_seen, t, memory_order_relaxed);
        }
        s = atomic_load_explicit(&r->head_seg, memory_order_acquire);
        if (atomic_compare_exchange_weak_explicit(&r->head, &idx, idx + 1,
                                                  memory_order_acquire,
                                                  memory_order_acquire)) {
            *item = finish_get(r, s, off);
            return 0;
        }
    }
}

/* Guard held, head closed and below tail: the next undelivered item. */
void *weft__seg_take(weft__fq *r)
{
    uint64_t idx = atomic_load_explicit(&r->head, memory_order_acquire);
    unsigned spins = 0;

    for (;;) {
        uint64_t off = idx & r->seg_cap; /* the closed bit stays in idx */
        weft__seg *s;

        if (off == r->seg_cap) {
            /* A get that took the last slot before the close. */
            backoff(&spins);
            idx = atomic_load_explicit(&r->head, memory_order_acquire);
            continue;
        }
        s = atomic_load_explicit(&r->head_seg, memory_order_acquire);
        if (atomic_compare_exchange_weak_explicit(&r->head, &idx, idx + 1,
                                                  memory_order_acquire,
                                                  memory_order_acquire))
            return finish_get(r, s, off);
    }
}
