/* ring.c - the growable ring buffer that stores FIFO and LIFO queues.
 *
 * Design: one power-of-two array used as a ring, so FIFO pops at the head
 * and LIFO pops at the tail, both O(1) without moving items.  It doubles
 * when full and never shrinks: a queue that once held n items is likely to
 * hold n again, and not shrinking lets a get that has just made room take a
 * blocked putter's item without any allocation (which cannot fail).
 *   (Rejected: a linked list of nodes.  It allocates on every put, and the
 *   allocator's lock would sit on the hot path of every queue.)
 * Invariants: cap is 0 or a power of two; len <= cap; head < cap when cap
 * is not 0.
 * Locking: none of its own; the owning queue's guard is held for every
 * call.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "queue_internal.h"

#define RING_MIN_CAP 16

static size_t round_pow2(size_t n)
{
    size_t c = RING_MIN_CAP;
    while (c < n && c <= SIZE_MAX / 2)
        c *= 2;
    return c;
}

int weft__ring_init(weft__ring *r, size_t cap)
{
    r->cap = round_pow2(cap);
    r->head = 0;
    r->len = 0;
    r->buf = malloc(r->cap * sizeof *r->buf);
    if (r->buf == NULL) {
        r->cap = 0;
        return -ENOMEM;
    }
    return 0;
}

void weft__ring_fini(weft__ring *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = r->len = r->head = 0;
}

/* Copy the items, oldest first, to the start of a twice larger array; the
 * new array is contiguous, so head becomes 0. */
int weft__ring_grow(weft__ring *r)
{
    size_t ncap, first;
    void **nbuf;

    if (r->cap > SIZE_MAX / 2 / sizeof *r->buf)
        return -ENOMEM;
    ncap = r->cap ? r->cap * 2 : RING_MIN_CAP;
    nbuf = malloc(ncap * sizeof *nbuf);
    if (nbuf == NULL)
        return -ENOMEM;
    first = r->cap - r->head;
    if (first > r->len)
        first = r->len;
    if (r->len > 0) {
        memcpy(nbuf, r->buf + r->head, first * sizeof *nbuf);
        memcpy(nbuf + first, r->buf, (r->len - first) * sizeof *nbuf);
    }
    free(r->buf);
    r->buf = nbuf;
    r->cap = ncap;
    r->head = 0;
    return 0;
}
