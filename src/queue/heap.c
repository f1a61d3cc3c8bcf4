/* heap.c - the binary min-heap that stores priority queues.
 *
 * Design: an array heap keyed by (prio, seq), where seq is a counter taken
 * at each push.  The pair is unique, so the order is total, and items of
 * equal priority leave in the order they came (Python makes its users store
 * (prio, seq, item) tuples for this; we keep seq ourselves).  The array
 * doubles when full and never shrinks (see ring.c for why).
 *   (Rejected: a pairing heap or skew heap of nodes.  They allocate per item
 *   and chase pointers; the array heap touches log n adjacent lines.)
 * Invariants: v[i] <= v[2i+1] and v[i] <= v[2i+2] on (prio, seq); len <=
 * cap; next_seq is greater than every seq in the heap.
 * Locking: none of its own; the owning queue's guard is held for every
 * call.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "queue_internal.h"

#define HEAP_MIN_CAP 16

static bool less(const weft__heap_node *a, const weft__heap_node *b)
{
    return a->prio < b->prio || (a->prio == b->prio && a->seq < b->seq);
}

int weft__heap_init(weft__heap *h, size_t cap)
{
    h->cap = cap < HEAP_MIN_CAP ? HEAP_MIN_CAP : cap;
    h->len = 0;
    h->next_seq = 0;
    h->v = malloc(h->cap * sizeof *h->v);
    if (h->v == NULL) {
        h->cap = 0;
        return -ENOMEM;
    }
    return 0;
}

void weft__heap_fini(weft__heap *h)
{
    free(h->v);
    h->v = NULL;
    h->cap = h->len = 0;
}

static int grow(weft__heap *h)
{
    size_t ncap;
    weft__heap_node *nv;

    if (h->cap > SIZE_MAX / 2 / sizeof *h->v)
        return -ENOMEM;
    ncap = h->cap ? h->cap * 2 : HEAP_MIN_CAP;
    nv = realloc(h->v, ncap * sizeof *nv);
    if (nv == NULL)
        return -ENOMEM;
    h->v = nv;
    h->cap = ncap;
    return 0;
}

/* Sift the new node up from the end: move parents down into the hole
 * instead of swapping, one write per level. */
int weft__heap_push(weft__heap *h, void *item, int64_t prio)
{
    weft__heap_node n;
    size_t i, parent;

    if (WEFT_UNLIKELY(h->len == h->cap)) {
        int rc = grow(h);
        if (rc != 0)
            return rc;
    }
    n.prio = prio;
    n.seq = h->next_seq++;
    n.item = item;
    i = h->len++;
    while (i > 0) {
        parent = (i - 1) / 2;
        if (!less(&n, &h->v[parent]))
            break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = n;
    return 0;
}

/* Take the root, then sift the last node down from the root's hole. */
void *weft__heap_pop(weft__heap *h, int64_t *prio)
{
    weft__heap_node top = h->v[0], last;
    size_t i = 0, child;

    WEFT_ASSERT(h->len > 0);
    last = h->v[--h->len];
    for (;;) {
        child = 2 * i + 1;
        if (child >= h->len)
            break;
        if (child + 1 < h->len && less(&h->v[child + 1], &h->v[child]))
            child++;
        if (!less(&h->v[child], &last))
            break;
        h->v[i] = h->v[child];
        i = child;
    }
    if (h->len > 0)
        h->v[i] = last;
    *prio = top.prio;
    return top.item;
}
