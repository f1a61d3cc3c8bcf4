/* fast.c - the lock-free path of FIFO queues (bounded ones of maxsize 1 to
 * WEFT__FRING_MAX, and unbounded ones): puts and gets that can proceed
 * touch no lock, and the queue's guard and wait queues are used only by a
 * side that must wait (empty or full), by its waker, and for shutdown,
 * join and take_undelivered.
 *
 * Two stores, one protocol.  Everything below the store (waiting, serving
 * parked waiters, shutdown, counts, take_undelivered) is written once
 * against tail and head indices with a closed bit, weft__fq_count (index
 * to positions) and the st_* calls (try to put or get now).  A bounded
 * queue's store is the ring described next; an unbounded queue's is
 * seg.c's list of segments, which is never full (so its puts never wait
 * and nput stays 0) and whose get, once it has taken a position, waits the
 * few instructions its put needs to publish instead of reporting empty.
 *   (Rejected: a second copy of this file for segments, or a table of
 *   function pointers.  The first doubles the subtle part; the second
 *   costs an indirect call per operation for a choice made at creation:
 *   one predictable branch on seg_shift does the same.)
 *
 * Design of the ring.  The items live in a bounded MPMC ring with a sequence number per
 * cell (Dmitry Vyukov's bounded queue).  Cell i of lap L is free for the
 * put at position p = L * cap + i when seq == p, and holds that put's item
 * for the get at p when seq == p + 1; the get frees it for the next lap
 * with seq = p + cap.  A put claims its position by a CAS on tail, then
 * writes the item and publishes it with a release store of seq; a get
 * claims by a CAS on head, reads, and frees.  Producers and consumers thus
 * share only the cells: with one producer and one consumer each CAS hits a
 * line its thread owns, and the two meet only on the cell lines.
 *   (Rejected: a ring under two locks, one per side, as an SPSC ring with
 *   cached indices behind a lock per side.  Every locked instruction
 *   drains the store buffer, which holds the previous item's stores to a
 *   line the other side has just read, so it waits for a cache line
 *   transfer (about 500 ns between the vCPUs here): with two per operation
 *   a prototype did 10 M items/s where this ring's single CAS does 20.  A
 *   plain SPSC ring, with no locked instruction, is far faster but not
 *   MPMC; the CAS is what MPMC costs here.)
 *
 * Maxsize 1.  Vyukov's ring needs two cells at least (with one, "full for
 * lap L" and "free for lap L + 1" are the same seq), so a queue of maxsize 1
 * has two cells (cap = 2) and one = 1, and its put at p also needs the
 * cell of p - 1 freed by its get (seq == p + 1; the cell of p - 1 for p = 0
 * is cell 1, whose initial seq 1 reads as freed).  By induction at most
 * one position is then ever filled: the put at p - 1 went ahead only once
 * the get at p - 2 had freed its cell, and so on.  The check reads a line
 * the put already reads (both cells share it).  A put that read a stale
 * tail fails its CAS as on any ring, so the check errs only towards "full"
 * for the few instructions of a get in progress (see Linearizability).
 * The waiting protocol below is unchanged: the store that makes room for
 * a parked putter at p is still a get's free of a cell - the get of p - 1
 * freeing cell p - 1 - followed by its light fence and its load of nput,
 * and the putter's retry after its heavy fence reads that cell.  The retry
 * also reads cell p, freed earlier by the get of p - 2; that store
 * happens before the get of p - 1's fence (the put of p - 1 read it with
 * acquire before it published, and the get of p - 1 read that publication
 * with acquire), so a retry that comes after that fence sees it too (the
 * heavy fence is a full barrier on every CPU, and x86-64 and ARMv8 are
 * multi-copy atomic); and a get that does see nput serves the putter under
 * the guard, in a thread that has seen both frees.  Either way no putter
 * parks on a ring with room.  The item slot is ordered as on any ring: a
 * put writes cell p only after its acquire load saw the get of p - 2 free
 * it.
 *   (Rejected: keeping maxsize 1 on the locked queue, as until the green
 *   queue ping-pong was profiled: a put and a get there took ~100
 *   instructions each against ~50 here, and their two guards were two of
 *   the five locked instructions per message.)
 *
 * Waiting.  A side that finds the ring empty (full) spins a few
 * microseconds (a green thread yields once instead: queue_internal.h, "a
 * green thread yields once before it parks"; the yield, like the spin,
 * only delays what follows and takes part in no ordering), then takes the
 * guard, announces itself in nget (nput), makes a heavy fence, tries the
 * ring once more and only then parks on getters (putters).  The other
 * side, after publishing (freeing) a cell, makes a light fence and reads
 * nget (nput): so either the parking side's last try sees the cell, or
 * the publishing side sees the count and takes the guard to serve the
 * waiter (platform.h's asymmetric fences: the hot path pays a compiler
 * barrier, the side that is about to sleep pays a membarrier).  nget/nput
 * mirror the length of the wait queue plus the one thread registering,
 * and change only under the guard.  A side that has
 * just woken a parked one polls longer before it parks itself (see
 * spin_until), or the two fall into a convoy of sleeping and waking.
 * Parked waiters are served in order with the item moved for them, as the
 * locked queues do: a put that sees a parked getter takes the oldest item
 * out of the ring for the first one, writes it into its slot and wakes it;
 * a get that freed a cell moves the first parked putter's item into the
 * ring.  If a thread that did not park took the item (or the room) first,
 * the waiter goes back to the front of its queue.  A waker whose wake
 * fails (the waiter's deadline passed at that instant) still completes
 * the move and marks the slot done: the waiter, blocked on the guard to
 * unlink itself, sees that and reports success.
 *
 * Shutdown.  Bit 63 of tail (head) closes the ring to puts (gets): a CAS
 * from an open value fails once the bit is set, so every position claimed
 * was claimed before the shutdown.  Graceful closes tail; immediate closes
 * tail, then head, and the undelivered items are exactly the positions in
 * [head, tail): take_undelivered moves them out under the guard, waiting
 * the few instructions a put that claimed its position before the close
 * needs to publish it.  A put that finds tail closed by an immediate
 * shutdown closes head itself before failing, so no get can succeed after
 * a put has seen the shutdown.  Shutdown wakes every parked waiter to look
 * again; a getter still parks after a graceful one while a put that
 * claimed its position before it has not published, and is woken with
 * -EPIPE by whoever sees the ring drained.
 *
 * Counts.  Successful puts are tail's position (every put goes through the
 * ring), so unfinished = tail - done, where done counts task_done calls
 * plus the items an immediate shutdown withdrew; a put costs no extra
 * counter.
 *
 * Linearizability.  A put (get) that claimed its position but has not yet
 * published (freed) its cell makes the ring look empty (full) at that
 * position for a few instructions: another thread may then wait, or get
 * -EAGAIN, although a later put (get) has already returned.  Waiting
 * threads are served as soon as the cell is published.
 *
 * Destroy right after the last get.  From the store that publishes its
 * cell (frees it, counts a task done) on, a put (get, task_done) lets a
 * consumer in that may take the item, see the queue finished and destroy
 * it, while the put still reads nget and may serve waiters.  So each such
 * window is named in the OS thread's in-flight slot
 * (src/platform/inflight.h) from before its publishing store to its last
 * touch, and destroy waits until no slot names the queue.  A window never
 * contains a yield or a park: the slow paths leave before they wait and
 * enter again after, out of line (enter_fresh and friends), so that the
 * slot is found afresh on whatever OS thread a green thread resumed on.
 *
 * Locking: tail, head, done and the cells (segments) are atomic (items are
 * ordered by seq, or by a slot's state); nget, nput, njoin are atomic and
 * written only under the guard (getters.guard, the queue's lock), as are
 * the wait queues.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "../platform/inflight.h"
#include "../platform/platform.h"
#include "queue_internal.h"

#define CLOSED WEFT__FQ_CLOSED
/* See spin_until. */
#define WAKE_WINDOW_NS INT64_C(50000)
#define POS(x) ((x) & ~CLOSED)

/* The number of positions before index x (of either store). */
static inline uint64_t cnt(const weft__fq *r, uint64_t x)
{
    return weft__fq_count(r, POS(x));
}

static void lock(const weft_queue *q)
{
    weft__waitq_lock((weft__waitq *)&q->getters);
}

static void unlock(const weft_queue *q)
{
    weft__waitq_unlock((weft__waitq *)&q->getters);
}

static weft__fcell *cell_at(const weft__fq *r, uint64_t pos)
{
    return &r->cells[r->pow2 ? pos & r->mask : pos % r->cap];
}

/* ---- the ring itself -------------------------------------------------- */

/* Room for a put at pos of the ring: its cell is free for this lap (the
 * get of pos - cap is done) and, with maxsize 1, the get of pos - 1 is done
 * too (see "Maxsize 1" at the top).  Acquire on the cell pairs with the
 * get's release of it: its read of the old item comes before our write. */
static inline bool ring_room(const weft__fq *r, const weft__fcell *c,
                             uint64_t pos)
{
    return atomic_load_explicit(&c->seq, memory_order_acquire) == pos &&
           (!r->one || atomic_load_explicit(&r->cells[(pos - 1) & 1].seq,
                                            memory_order_acquire) == pos + 1);
}

/* 0, -EAGAIN (full at our position) or -EPIPE (closed). */
static inline int ring_put(weft__fq *r, void *item)
{
    uint64_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed);

    for (;;) {
        weft__fcell *c;
        int64_t dif;

        if (WEFT_UNLIKELY(pos & CLOSED))
            return -EPIPE;
        c = cell_at(r, pos);
        dif = (int64_t)(atomic_load_explicit(&c->seq, memory_order_acquire) -
                        pos);
        if (WEFT_LIKELY(dif == 0)) {
            /* Maxsize 1: the get of pos - 1 must be done too (a put of a
             * stale pos fails its CAS below, so "full" here is at worst
             * early by a concurrent get's few instructions). */
            if (WEFT_UNLIKELY(r->one) &&
                atomic_load_explicit(&r->cells[(pos - 1) & 1].seq,
                                     memory_order_acquire) != pos + 1)
                return -EAGAIN;
            if (atomic_compare_exchange_weak_explicit(
                    &r->tail, &pos, pos + 1, memory_order_relaxed,
                    memory_order_relaxed)) {
                c->item = item;
                atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
                return 0;
            }
        } else if (dif < 0) {
            return -EAGAIN;
        } else {
            pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
        }
    }
}

/* 0, -EAGAIN (empty at our position) or -EPIPE (closed: immediate). */
static inline int ring_get(weft__fq *r, void **item)
{
    uint64_t pos = atomic_load_explicit(&r->head, memory_order_relaxed);

    for (;;) {
        weft__fcell *c;
        int64_t dif;

        if (WEFT_UNLIKELY(pos & CLOSED))
            return -EPIPE;
        c = cell_at(r, pos);
        dif = (int64_t)(atomic_load_explicit(&c->seq, memory_order_acquire) -
                        (pos + 1));
        if (WEFT_LIKELY(dif == 0)) {
            if (atomic_compare_exchange_weak_explicit(
                    &r->head, &pos, pos + 1, memory_order_relaxed,
                    memory_order_relaxed)) {
                *item = c->item;
                atomic_store_explicit(&c->seq, pos + r->cap,
                                      memory_order_release);
                return 0;
            }
        } else if (dif < 0) {
            return -EAGAIN;
        } else {
            pos = atomic_load_explicit(&r->head, memory_order_relaxed);
        }
    }
}

/* ---- the store: the ring, or seg.c's segments ------------------------- */

/* 0, -EAGAIN (full at our position), -EPIPE (closed) or -ENOMEM (seg). */
static inline int st_put(weft__fq *r, void *item)
{
    if (r->seg_shift != 0)
        return weft__seg_put(r, item);
    return ring_put(r, item);
}

/* 0, -EAGAIN (empty at our position) or -EPIPE (closed: immediate). */
static inline int st_get(weft__fq *r, void **item)
{
    if (r->seg_shift != 0)
        return weft__seg_get(r, item);
    return ring_get(r, item);
}

/* Would a put (get) at the current position proceed or fail at once?  For
 * spinning: reads only, so the spinner does not steal the line.  A segment
 * store is never full; its get can proceed once a put took the position. */
static bool put_ready(const weft__fq *r)
{
    uint64_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
    return (pos & CLOSED) || r->seg_shift != 0 ||
           ring_room(r, cell_at(r, pos), pos);
}

static bool get_ready(const weft__fq *r)
{
    uint64_t pos = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t t;

    if (pos & CLOSED)
        return true;
    if (r->seg_shift == 0 &&
        atomic_load_explicit(&cell_at(r, pos)->seq, memory_order_relaxed) ==
            pos + 1)
        return true;
    t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    return (t & CLOSED) || (r->seg_shift != 0 && cnt(r, pos) < cnt(r, t));
}

/* Graceful shutdown and every claimed position consumed: get is -EPIPE. */
static bool drained(const weft__fq *r)
{
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    return (t & CLOSED) && cnt(r, h) >= cnt(r, t);
}

/* Spin for about the park layer's spin budget until ready(r).  Then, if
 * a waiter was served within the last WAKE_WINDOW_NS, keep polling, with
 * sched_yield between looks, until that window ends: the thread just woken
 * takes tens of microseconds to run (a halted vCPU), and a side that
 * parks meanwhile only starts a convoy in which each side sleeps while the
 * other works, two wake-ups per ring's worth of items.  Yielding rather
 * than pausing leaves the CPU to the woken thread if it has to run here.
 * The window never runs past the caller's deadline.  OS threads only
 * (see before_wait). */
static __attribute__((noinline)) void spin_until(
    const weft__fq *r, bool (*ready)(const weft__fq *), int64_t deadline)
{
    unsigned n = weft__park_spin_iters;
    int64_t until;

    for (unsigned i = 0; i < n; i++) {
        if (ready(r))
            return;
        weft__cpu_relax();
    }
    until = atomic_load_explicit(&r->woke_ns, memory_order_relaxed) +
            WAKE_WINDOW_NS;
    if (deadline != WEFT_FOREVER && deadline < until)
        until = deadline;
    while (weft__clock_now() < until) {
        if (ready(r))
            return;
        sched_yield();
    }
}

/* A put (get) has just found the store full (empty) and may wait: an OS
 * thread spins (spin_until), a green thread yields once instead
 * (weft__queue_yield).  A green thread must not spin: the other side may
 * be waiting for this worker; a yield lets it run.  Returns whether the
 * caller yielded: if its next try still fails, it reports the miss
 * (weft__queue_yield_missed). */
static inline bool before_wait(weft_queue *q,
                               bool (*ready)(const weft__fq *),
                               int64_t deadline)
{
    if (weft__self()->kind != WEFT__WAITER_OS)
        return weft__queue_yield(q);
    spin_until(q->fast, ready, deadline);
    return false;
}

/* ---- serving parked waiters (the waker's side) ------------------------ */

/* A put published a cell and saw nget != 0, or a get freed one and saw
 * nput != 0.  Under the guard, move the oldest item to the first parked
 * getter and the first parked putter's item into the room, as long as
 * either makes progress (each move may enable the other; a running thread
 * that took the item or the room first sends the waiter back to the front
 * of its queue). */
static __attribute__((noinline)) int serve(weft_queue *q)
{
    weft__fq *r = q->fast;
    weft__wait_entry *e;
    struct weft__qslot *s;
    bool progress, woke = false;
    void *item;

    lock(q);
    do {
        progress = false;
        if ((e = weft__waitq_pop(&q->getters)) != NULL) {
            if (st_get(r, &item) == 0) {
                s = (struct weft__qslot *)e->data;
                s->item = item;
                s->done = 1;
                (void)weft__wake(e, 0); /* false: it sees done */
                progress = true;
            } else {
                weft__waitq_push_front(&q->getters, e, e->waiter);
            }
        }
        if ((e = weft__waitq_pop(&q->putters)) != NULL) {
            s = (struct weft__qslot *)e->data;
            if (st_put(r, s->item) == 0) {
                s->done = 1;
                (void)weft__wake(e, 0);
                progress = true;
            } else {
                weft__waitq_push_front(&q->putters, e, e->waiter);
            }
        }
        woke = woke || progress;
    } while (progress);
    if (woke)
        atomic_store_explicit(&r->woke_ns, weft__clock_now(),
                              memory_order_relaxed);
    /* After a graceful shutdown, the item a put that claimed its position
     * before the shutdown published may have gone to a running getter:
     * once nothing is left, the parked getters must learn that. */
    if (!weft__waitq_empty(&q->getters) && drained(r))
        weft__wake_all(&q->getters, -EPIPE);
    atomic_store_explicit(&r->nget, q->getters.len, memory_order_relaxed);
    atomic_store_explicit(&r->nput, q->putters.len, memory_order_relaxed);
    unlock(q);
    weft__inflight_leave(); /* the caller's window: see after_put */
    return 0; /* so that after_put and after_get can tail-call serve */
}

/* After a successful put (get): serve a parked getter (putter) if any.  The
 * light fence orders our cell store before the load of the count; see the
 * top of the file.  Ends the caller's in-flight window (serve ends it when
 * called).  Returns 0, the put's (get's) result. */
static inline int after_put(weft_queue *q)
{
    weft__fence_light();
    if (WEFT_UNLIKELY(atomic_load_explicit(&q->fast->nget,
                                           memory_order_relaxed) != 0))
        return serve(q);
    weft__inflight_leave();
    return 0;
}

static inline int after_get(weft_queue *q)
{
    weft__fence_light();
    if (WEFT_UNLIKELY(atomic_load_explicit(&q->fast->nput,
                                           memory_order_relaxed) != 0))
        return serve(q);
    weft__inflight_leave();
    return 0;
}

/* The in-flight window for code that may have yielded or parked since its
 * function began, out of line so that the slot is looked up afresh: a
 * green thread may resume on another OS thread, and a compiler may keep
 * the thread pointer in a register across a call. */
static __attribute__((noinline)) void enter_fresh(weft_queue *q)
{
    weft__inflight_enter(q);
}

static __attribute__((noinline)) void leave_fresh(void)
{
    weft__inflight_leave();
}

static __attribute__((noinline)) int after_put_fresh(weft_queue *q)
{
    return after_put(q);
}

static __attribute__((noinline)) int after_get_fresh(weft_queue *q)
{
    return after_get(q);
}

/* A put failed because tail is closed.  If the shutdown is immediate,
 * make sure head is closed too before we report it (see the top). */
static int put_closed(weft_queue *q)
{
    /* The acquire load pairs with shutdown's close of tail, which it made
     * after raising q->shut: so we see the shut level that closed it. */
    (void)atomic_load_explicit(&q->fast->tail, memory_order_acquire);
    if (atomic_load_explicit(&q->shut, memory_order_acquire) ==
        WEFT__Q_SHUT_IMMEDIATE)
        atomic_fetch_or_explicit(&q->fast->head, CLOSED,
                                 memory_order_acq_rel);
    return -EPIPE;
}

/* ---- put -------------------------------------------------------------- */

/* The ring was full after put_slow's spin (yield): park until a get moves
 * our item in, shutdown, or the deadline.  Each try that may publish is an
 * in-flight window (see the top), left before every park. */
static __attribute__((noinline)) int put_park(weft_queue *q, void *item,
                                              int64_t deadline)
{
    weft__fq *r = q->fast;
    weft__wait_entry e;
    struct weft__qslot s = {item, 0, 0};
    bool front = false;
    int rc;

    for (;;) {
        lock(q);
        atomic_store_explicit(&r->nput, q->putters.len + 1,
                              memory_order_relaxed);
        weft__fence_heavy();
        enter_fresh(q);
        rc = st_put(r, item);
        if (rc != -EAGAIN) {
            atomic_store_explicit(&r->nput, q->putters.len,
                                  memory_order_relaxed);
            unlock(q);
            break;
        }
        leave_fresh();
        e.data = (uintptr_t)&s;
        rc = weft__wait_on_under(&q->getters, &q->putters, &e, front,
                                 deadline, "queue put", q);
        if (rc == 0) {
            if (s.done)
                return 0; /* a get moved our item in and woke us */
            /* Shutdown woke us (-EPIPE in e.result): see the ring say so. */
            front = true;
            enter_fresh(q);
            rc = st_put(r, item);
            if (rc != -EAGAIN)
                break;
            leave_fresh();
            continue;
        }
        /* -ETIMEDOUT or -ECANCELED: guard held, e unlinked. */
        atomic_store_explicit(&r->nput, q->putters.len, memory_order_relaxed);
        unlock(q);
        if (s.done)
            return 0; /* moved in at the instant we gave up */
        if (rc == -ETIMEDOUT) {
            /* Room may have appeared in the instant we gave up. */
            int rc2;
            enter_fresh(q);
            rc2 = st_put(r, item);
            if (rc2 == 0)
                return after_put_fresh(q);
            leave_fresh();
            if (rc2 == -EPIPE)
                return put_closed(q);
        }
        return rc;
    }
    if (rc == 0)
        return after_put_fresh(q);
    leave_fresh();
    return put_closed(q);
}

/* The ring was full: unless WEFT_NOW, spin (a green thread: yield), try
 * again, then park.  Out of line, and apart from put_park, so that
 * neither the put's fast path nor a yield that pays sets up put_park's
 * frame. */
static __attribute__((noinline)) int put_slow(weft_queue *q, void *item,
                                              int64_t deadline, int nowait_rc)
{
    bool yielded;
    int rc;

    if (deadline == WEFT_NOW)
        return nowait_rc;
    yielded = before_wait(q, put_ready, deadline);
    enter_fresh(q);
    rc = st_put(q->fast, item);
    if (WEFT_LIKELY(rc == 0))
        return after_put_fresh(q);
    leave_fresh();
    if (rc == -EPIPE)
        return put_closed(q);
    if (yielded)
        weft__queue_yield_missed(q);
    return put_park(q, item, deadline);
}

/* A put to segments (never full), out of line: see weft__queue_fast_put.
 * Called in the window, which it ends. */
static __attribute__((noinline)) int put_seg(weft_queue *q, void *item)
{
    int rc = weft__seg_put(q->fast, item);

    if (WEFT_LIKELY(rc == 0))
        return after_put(q);
    weft__inflight_leave();
    return rc == -EPIPE ? put_closed(q) : rc;
}

/* A ring put that succeeds at once makes tail calls only, so it sets up no
 * frame (the saved registers were a tenth of its instructions): the
 * segments' put, whose call needs q kept across it, is out of line.  The
 * in-flight window opens before the try and closes in after_put, or
 * before a slow path that may wait. */
int weft__queue_fast_put(weft_queue *q, void *item, int64_t deadline,
                         int nowait_rc)
{
    weft__fq *r = q->fast;
    int rc;

    weft__inflight_enter(q);
    if (r->seg_shift != 0)
        return put_seg(q, item);
    rc = ring_put(r, item);
    if (WEFT_LIKELY(rc == 0))
        return after_put(q);
    weft__inflight_leave();
    if (rc == -EPIPE)
        return put_closed(q);
    return put_slow(q, item, deadline, nowait_rc);
}

/* ---- get -------------------------------------------------------------- */

/* The ring was empty after get_slow's spin (yield): park until a put moves
 * an item to us, shutdown, or the deadline; -EPIPE once it is drained.
 * Windows as in put_park. */
static __attribute__((noinline)) int get_park(weft_queue *q, void **item,
                                              int64_t deadline)
{
    weft__fq *r = q->fast;
    weft__wait_entry e;
    struct weft__qslot s = {NULL, 0, 0};
    bool front = false;
    int rc;

    for (;;) {
        lock(q);
        atomic_store_explicit(&r->nget, q->getters.len + 1,
                              memory_order_relaxed);
        weft__fence_heavy();
        enter_fresh(q);
        rc = st_get(r, item);
        if (rc != -EAGAIN || drained(r)) {
            atomic_store_explicit(&r->nget, q->getters.len,
                                  memory_order_relaxed);
            unlock(q);
            if (rc == -EAGAIN) {
                leave_fresh();
                return -EPIPE;
            }
            break;
        }
        leave_fresh();
        e.data = (uintptr_t)&s;
        rc = weft__wait_on_under(&q->getters, &q->getters, &e, front,
                                 deadline, "queue get", q);
        if (rc == 0) {
            if (s.done) {
                *item = s.item; /* a put moved it to us */
                return 0;
            }
            /* Shutdown woke us: drain what is left, or fail. */
            front = true;
            enter_fresh(q);
            rc = st_get(r, item);
            if (rc != -EAGAIN)
                break;
            leave_fresh();
            if (drained(r))
                return -EPIPE;
            continue;
        }
        atomic_store_explicit(&r->nget, q->getters.len, memory_order_relaxed);
        unlock(q);
        if (s.done) {
            *item = s.item;
            return 0;
        }
        if (rc == -ETIMEDOUT) {
            /* An item may have come in the instant we gave up. */
            enter_fresh(q);
            rc = st_get(r, item);
            if (rc == 0)
                break;
            leave_fresh();
            if (rc == -EPIPE || drained(r))
                return -EPIPE;
            return -ETIMEDOUT;
        }
        return rc;
    }
    if (rc == 0)
        return after_get_fresh(q);
    leave_fresh();
    return -EPIPE;
}

/* A get found the ring empty (st_get said -EAGAIN): -EPIPE if it is for
 * good, else unless WEFT_NOW spin (a green thread: yield), try again, then
 * park.  Out of line and apart from get_park, as put_slow.  Called out of
 * any window. */
static __attribute__((noinline)) int get_slow(weft_queue *q, void **item,
                                              int64_t deadline, int nowait_rc)
{
    bool yielded;
    int rc;

    /* drained() only where we would park: before the yield, it would cost
     * every get that yields (a ping-pong's every get); a yield or spin
     * before we see the ring drained costs only time (get_ready is true
     * once tail is closed, so an OS thread does not spin then). */
    if (deadline == WEFT_NOW)
        return drained(q->fast) ? -EPIPE : nowait_rc;
    yielded = before_wait(q, get_ready, deadline);
    enter_fresh(q);
    rc = st_get(q->fast, item);
    if (WEFT_LIKELY(rc == 0))
        return after_get_fresh(q);
    leave_fresh();
    if (rc == -EPIPE || drained(q->fast))
        return -EPIPE;
    if (yielded)
        weft__queue_yield_missed(q);
    return get_park(q, item, deadline);
}

/* A get from segments, out of line as put_seg; called in the window. */
static __attribute__((noinline)) int get_seg(weft_queue *q, void **item,
                                             int64_t deadline, int nowait_rc)
{
    int rc = weft__seg_get(q->fast, item);

    if (WEFT_LIKELY(rc == 0))
        return after_get(q);
    weft__inflight_leave();
    if (rc == -EPIPE)
        return -EPIPE;
    return get_slow(q, item, deadline, nowait_rc);
}

/* Tail calls only, as weft__queue_fast_put, and the same window. */
int weft__queue_fast_get(weft_queue *q, void **item, int64_t deadline,
                         int nowait_rc)
{
    weft__fq *r = q->fast;
    int rc;

    weft__inflight_enter(q);
    if (r->seg_shift != 0)
        return get_seg(q, item, deadline, nowait_rc);
    rc = ring_get(r, item);
    if (WEFT_LIKELY(rc == 0))
        return after_get(q);
    weft__inflight_leave();
    if (rc == -EPIPE)
        return -EPIPE;
    return get_slow(q, item, deadline, nowait_rc);
}

/* ---- create / destroy / snapshots ------------------------------------- */

/* The state both stores share, zeroed; NULL when out of memory. */
static weft__fq *fq_new(void)
{
    weft__fq *r = aligned_alloc(64, sizeof *r);

    if (r == NULL)
        return NULL;
    memset(r, 0, sizeof *r);
    atomic_init(&r->tail, 0);
    atomic_init(&r->head, 0);
    atomic_init(&r->done, 0);
    atomic_init(&r->nget, 0);
    atomic_init(&r->nput, 0);
    atomic_init(&r->njoin, 0);
    atomic_init(&r->woke_ns, 0);
    return r;
}

int weft__queue_fast_init(weft_queue *q, size_t maxsize)
{
    weft__fq *r;
    size_t cap = maxsize == 1 ? 2 : maxsize; /* "Maxsize 1" at the top */
    size_t bytes = (cap * sizeof(weft__fcell) + 63) / 64 * 64;

    r = fq_new();
    if (r == NULL)
        return -ENOMEM;
    r->cells = aligned_alloc(64, bytes);
    if (r->cells == NULL) {
        free(r);
        return -ENOMEM;
    }
    r->cap = cap;
    r->one = maxsize == 1;
    r->pow2 = (cap & (cap - 1)) == 0;
    r->mask = cap - 1;
    for (size_t i = 0; i < cap; i++) {
        atomic_init(&r->cells[i].seq, i);
        r->cells[i].item = NULL;
    }
    q->fast = r;
    return 0;
}

int weft__queue_fast_init_seg(weft_queue *q, unsigned shift)
{
    weft__fq *r = fq_new();

    if (r == NULL)
        return -ENOMEM;
    if (weft__seg_init(r, shift) != 0) {
        free(r);
        return -ENOMEM;
    }
    q->fast = r;
    return 0;
}

/* Nobody uses q any more (destroy checked), so every claimed position has
 * been published. */
void weft__queue_fast_fini(weft_queue *q, void (*free_item)(void *item))
{
    weft__fq *r = q->fast;
    uint64_t h = POS(atomic_load_explicit(&r->head, memory_order_acquire));
    uint64_t t = POS(atomic_load_explicit(&r->tail, memory_order_acquire));

    if (r->seg_shift != 0) {
        weft__seg_fini(r, free_item);
        free(r);
        q->fast = NULL;
        return;
    }
    if (free_item)
        for (; h < t; h++)
            free_item(cell_at(r, h)->item);
    free(r->cells);
    free(r);
    q->fast = NULL;
}

/* head is read first, so a concurrent get cannot make the difference
 * negative; a concurrent put may count, capped at the bound (ring). */
size_t weft__queue_fast_size(const weft_queue *q)
{
    const weft__fq *r = q->fast;
    uint64_t h, t;

    if (atomic_load_explicit(&q->shut, memory_order_acquire) ==
        WEFT__Q_SHUT_IMMEDIATE)
        return 0;
    h = cnt(r, atomic_load_explicit(&r->head, memory_order_acquire));
    t = cnt(r, atomic_load_explicit(&r->tail, memory_order_acquire));
    if (t <= h)
        return 0;
    if (r->seg_shift == 0 && t - h > q->maxsize)
        return q->maxsize;
    return (size_t)(t - h);
}

/* ---- task_done / join ------------------------------------------------- */

size_t weft__queue_fast_unfinished(const weft_queue *q)
{
    const weft__fq *r = q->fast;
    uint64_t d = atomic_load_explicit(&r->done, memory_order_acquire);
    uint64_t t = cnt(r, atomic_load_explicit(&r->tail, memory_order_acquire));
    return t > d ? (size_t)(t - d) : 0;
}

/* done never passes tail: a task_done that would make it do so is
 * -EOVERFLOW.  tail only grows, so a stale tail only errs towards
 * -EOVERFLOW for a put that has not returned yet. */
int weft__queue_fast_task_done(weft_queue *q)
{
    weft__fq *r = q->fast;
    uint64_t d = atomic_load_explicit(&r->done, memory_order_relaxed);
    uint64_t t;

    /* From the CAS on, a join may return and its caller destroy q: the
     * rest is an in-flight window (see the top). */
    weft__inflight_enter(q);
    do {
        t = cnt(r, atomic_load_explicit(&r->tail, memory_order_acquire));
        if (d >= t) {
            weft__inflight_leave();
            return -EOVERFLOW;
        }
    } while (!atomic_compare_exchange_weak_explicit(
        &r->done, &d, d + 1, memory_order_acq_rel, memory_order_relaxed));
    weft__fence_light();
    if (d + 1 == t &&
        atomic_load_explicit(&r->njoin, memory_order_relaxed) != 0) {
        lock(q);
        if (weft__queue_fast_unfinished(q) == 0) {
            weft__wake_all(&q->joiners, 0);
            atomic_store_explicit(&r->njoin, q->joiners.len,
                                  memory_order_relaxed);
        }
        unlock(q);
    }
    weft__inflight_leave();
    return 0;
}

/* Same contract as the locked queue's join: woken when unfinished reaches
 * zero after we registered. */
int weft__queue_fast_join(weft_queue *q, int64_t deadline)
{
    weft__fq *r = q->fast;
    weft__wait_entry e;
    int rc;

    if (weft__queue_fast_unfinished(q) == 0)
        return 0;
    if (deadline == WEFT_NOW)
        return -ETIMEDOUT;
    lock(q);
    atomic_store_explicit(&r->njoin, q->joiners.len + 1, memory_order_relaxed);
    weft__fence_heavy();
    if (weft__queue_fast_unfinished(q) == 0) {
        atomic_store_explicit(&r->njoin, q->joiners.len, memory_order_relaxed);
        unlock(q);
        return 0;
    }
    e.data = 0;
    rc = weft__wait_on_under(&q->getters, &q->joiners, &e, false, deadline,
                             "queue join", q);
    if (rc == 0)
        return 0;
    atomic_store_explicit(&r->njoin, q->joiners.len, memory_order_relaxed);
    if (rc == -ETIMEDOUT && weft__queue_fast_unfinished(q) == 0)
        rc = 0;
    unlock(q);
    return rc;
}

/* ---- shutdown --------------------------------------------------------- */

/* Subtract the n items an immediate shutdown withdrew from the unfinished
 * tasks, clamped at zero (done never passes tail). */
static void withdraw(weft__fq *r, uint64_t t, uint64_t n)
{
    uint64_t d = atomic_load_explicit(&r->done, memory_order_relaxed);
    uint64_t nd;

    do {
        nd = d + n < t ? d + n : t;
        if (nd < d)
            nd = d;
    } while (!atomic_compare_exchange_weak_explicit(
        &r->done, &d, nd, memory_order_acq_rel, memory_order_relaxed));
}

/* Called with the guard held and q->shut already raised to its new value. */
void weft__queue_fast_shutdown(weft_queue *q, bool immediate)
{
    weft__fq *r = q->fast;
    uint64_t h, t;

    t = cnt(r, atomic_fetch_or_explicit(&r->tail, CLOSED,
                                        memory_order_acq_rel));
    if (immediate) {
        h = cnt(r, atomic_fetch_or_explicit(&r->head, CLOSED,
                                            memory_order_acq_rel));
        withdraw(r, t, t > h ? t - h : 0);
        if (weft__queue_fast_unfinished(q) == 0) {
            weft__wake_all(&q->joiners, 0);
            atomic_store_explicit(&r->njoin, q->joiners.len,
                                  memory_order_relaxed);
        }
    }
    /* Every waiter retries and sees the ring closed (getters after a
     * graceful shutdown first drain what is left). */
    weft__wake_all(&q->putters, -EPIPE);
    atomic_store_explicit(&r->nput, q->putters.len, memory_order_relaxed);
    weft__wake_all(&q->getters, -EPIPE);
    atomic_store_explicit(&r->nget, q->getters.len, memory_order_relaxed);
}

/* Only after an immediate shutdown: head is closed, so nothing moves it
 * but this, under the guard. */
size_t weft__queue_fast_take_undelivered(weft_queue *q, void **out,
                                         size_t cap)
{
    weft__fq *r = q->fast;
    size_t n = 0;
    uint64_t h, t;

    lock(q);
    if (atomic_load_explicit(&q->shut, memory_order_relaxed) !=
        WEFT__Q_SHUT_IMMEDIATE) {
        unlock(q);
        return 0;
    }
    h = cnt(r, atomic_load_explicit(&r->head, memory_order_acquire));
    t = cnt(r, atomic_load_explicit(&r->tail, memory_order_acquire));
    if (r->seg_shift != 0) {
        for (; n < cap && h < t; h++)
            out[n++] = weft__seg_take(r);
        unlock(q);
        return n;
    }
    while (n < cap && h < t) {
        weft__fcell *c = cell_at(r, h);
        unsigned spins = 0;
        /* A put that claimed h before the close publishes it within a few
         * instructions (unless its thread was preempted). */
        while (atomic_load_explicit(&c->seq, memory_order_acquire) != h + 1) {
            if (++spins % 1024 == 0)
                sched_yield();
            else
                weft__cpu_relax();
        }
        out[n++] = c->item;
        atomic_store_explicit(&c->seq, h + r->cap, memory_order_release);
        h++;
        atomic_store_explicit(&r->head, h | CLOSED, memory_order_release);
    }
    unlock(q);
    return n;
}
