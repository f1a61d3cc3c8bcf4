/* timer.c - per-worker timer heaps: the deadlines of parked green threads
 * (sleeps and timed waits).
 *
 * Design.  A binary min-heap of green threads per worker, keyed by
 * timer_when, the green thread's index kept in it (heap_idx) so an entry can
 * be removed in O(log n) when the wait ends early.  A green thread adds its
 * deadline to the heap of the worker it parks on; it removes the entry when
 * it runs again, wherever that is (it may have moved to another worker), so
 * a heap holds no stale entries and never grows beyond the green threads
 * parked with deadlines.  The owner worker fires expired entries from its
 * scheduler loop (weft__timer_run) and sleeps no later than the earliest one
 * when idle.  (Go does the same with per-P heaps; rejected: Tokio's timer
 * wheel - better for huge numbers of timers, but more code, and a heap is
 * what the anchors with deadlines on every call use.)
 *
 * Firing wakes the green thread (weft__green_wake: PARKED -> RUNNABLE, the
 * same CAS as any waker) while holding the heap's lock and clears
 * timer_worker after it; a green thread that runs again loads timer_worker
 * and, if it is set, takes that lock to remove its entry.  So once a green
 * thread has seen timer_worker == NULL no worker touches it for this timer
 * any more: it may return and be freed.  weft__park then finds its
 * deadline passed and takes the timeout claim itself.
 * Invariants: g->heap_idx is g's index in timer_worker's heap, or -1;
 * tnext is the heap's earliest deadline (INT64_MAX when empty).
 * Locking: heap, n, cap, timer_when and heap_idx are guarded by the
 * worker's tlock (a futex mutex held for a few instructions);
 * timer_worker and tnext are atomic.  Lock order: tlock before the sched
 * lock (a wake-up may wake an idle worker).
 */
#include "green.h"

#include <stdlib.h>

#include "lib/assert.h"

void weft__timer_init(weft__worker *w)
{
    atomic_init(&w->tlock.guard, 0);
    w->tlock.len = 0;
    w->tlock.head = w->tlock.tail = NULL;
    w->heap = NULL;
    w->n = w->cap = 0;
    atomic_init(&w->tnext, INT64_MAX);
}

void weft__timer_fini(weft__worker *w)
{
    free(w->heap);
    w->heap = NULL;
    w->n = w->cap = 0;
}

static void place(weft__worker *w, int i, weft_green *g)
{
    w->heap[i] = g;
    g->heap_idx = i;
}

static void sift_up(weft__worker *w, int i)
{
    weft_green *g = w->heap[i];
    while (i > 0) {
        int p = (i - 1) / 2;
        if (w->heap[p]->timer_when <= g->timer_when)
            break;
        place(w, i, w->heap[p]);
        i = p;
    }
    place(w, i, g);
}

static void sift_down(weft__worker *w, int i)
{
    weft_green *g = w->heap[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= w->n)
            break;
        if (c + 1 < w->n && w->heap[c + 1]->timer_when < w->heap[c]->timer_when)
            c++;
        if (g->timer_when <= w->heap[c]->timer_when)
            break;
        place(w, i, w->heap[c]);
        i = c;
    }
    place(w, i, g);
}

static void publish_next(weft__worker *w)
{
    atomic_store_explicit(&w->tnext, w->n ? w->heap[0]->timer_when : INT64_MAX,
                          memory_order_release);
}

/* Guard held: remove the entry at index i. */
static void remove_at(weft__worker *w, int i)
{
    weft_green *g = w->heap[i];
    w->n--;
    if (i != w->n) {
        place(w, i, w->heap[w->n]);
        sift_down(w, i);
        sift_up(w, w->heap[i]->heap_idx);
    }
    g->heap_idx = -1;
}

void weft__timer_add(weft__worker *w, weft_green *g, int64_t when)
{
    weft__waitq_lock(&w->tlock);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 64;
        weft_green **h = realloc(w->heap, (size_t)cap * sizeof *h);
        if (h == NULL)
            WEFT_PANIC("out of memory growing a timer heap");
        w->heap = h;
        w->cap = cap;
    }
    g->timer_when = when;
    place(w, w->n++, g);
    sift_up(w, w->n - 1);
    publish_next(w);
    atomic_store_explicit(&g->timer_worker, w, memory_order_release);
    weft__waitq_unlock(&w->tlock);
}

void weft__timer_remove(weft_green *g)
{
    weft__worker *w =
        atomic_load_explicit(&g->timer_worker, memory_order_acquire);

    if (w == NULL)
        return;
    weft__waitq_lock(&w->tlock);
    if (g->heap_idx >= 0) {
        remove_at(w, g->heap_idx);
        publish_next(w);
    }
    atomic_store_explicit(&g->timer_worker, NULL, memory_order_release);
    weft__waitq_unlock(&w->tlock);
}

void weft__timer_run(weft__worker *w, int64_t now)
{
    if (atomic_load_explicit(&w->tnext, memory_order_acquire) > now)
        return;
    weft__waitq_lock(&w->tlock);
    while (w->n > 0 && w->heap[0]->timer_when <= now) {
        weft_green *g = w->heap[0];
        remove_at(w, 0);
        weft__green_wake(g);
        atomic_store_explicit(&g->timer_worker, NULL, memory_order_release);
    }
    publish_next(w);
    weft__waitq_unlock(&w->tlock);
}
