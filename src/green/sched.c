/* sched.c - the M:N scheduler: worker OS threads, their loop, the global
 * queue, and how idle workers sleep and are woken.
 *
 * Design (Go's scheduler, simplified; ../shared/reference/runtime-anchors.md).
 * One worker OS thread per core by default.  Each worker runs a scheduler
 * loop on its own OS stack and switches to one green thread at a time; a
 * green thread switches back to park, yield or exit.  Where a worker finds
 * work, in order:
 *   1. every 61st round, the global queue first (so a worker busy with its
 *      own queue still serves wake-ups from OS threads);
 *   2. its runnext slot: the green thread most recently woken on this
 *      worker (a message ping-pong between two green threads runs without
 *      touching the ring), at most 3 times in a row so that two threads that
 *      wake each other forever do not starve the ring;
 *   3. its ring (runq.c), FIFO; then runnext;
 *   4. the global queue (a batch: its fair share, into the ring);
 *   5. stealing half of another worker's ring, for up to SPIN_NS (less
 *      while green threads wait for I/O: SPIN_IO_NS);
 *   6. sleep on its futex word until woken or its earliest timer is due.
 * The global queue takes what OS threads spawn or wake and a full ring's
 * overflow; it is a linked list under the sched lock with an atomic length
 * so that an empty check takes no lock.
 *
 * The direct switch (Boost.Fiber's and libaco's way; section "the direct
 * switch" below).  A green thread that yields or parks does find_work's
 * cheap part itself - runnext within the streak limit, the ring, runnext -
 * and switches straight to the green thread it found: one context switch
 * per hand-over instead of two plus the scheduler loop.  Everything else
 * still goes through the scheduler's context: every GLOBAL_EVERY-th round
 * (the global queue, the busy worker's poll), a due timer, nothing queued
 * locally (global queue, netpoller, stealing, idle), a spare at the steal
 * gate, spare workers themselves, and exit (the stack is freed there).  A
 * yield that finds nothing else queued locally just goes on running.
 * The switching thread must not become visible to other workers before
 * its registers are saved, so what the scheduler did after a switch - push
 * a yielder, commit a park (RUNNING -> PARKED, or requeue it if a waker left
 * a token meanwhile) - is done by whatever runs next on the worker: the
 * scheduler, or the thread switched to, first thing on its own stack
 * (weft__green_resumed).  The worker's prev names the thread whose switch
 * is to be completed; switch_why says how.
 *   (Rejected: publishing the yielder before the switch with a "saving"
 *   flag that a thief or waker would spin on - every resume anywhere would
 *   pay a check, and a preempted switcher would stall other workers.)
 *
 * Waking idle workers (Go's wakep).  Whoever makes work runnable (spawn,
 * wake-up, a yield that overflows) calls wakep: if some worker is spinning
 * (looking for work) nothing more is needed; else it wakes ONE idle worker
 * and counts it as spinning.  A spinning worker that finds work stops
 * spinning, and if it was the last spinner, calls wakep itself, so wake-ups
 * spread one worker at a time and never wake them all.  Lost wake-ups are
 * excluded Dekker style: a producer publishes its work, then (full fence)
 * reads nidle and nspinning; a worker going to sleep first registers as
 * idle (nidle++), then (full fence) re-checks every queue, so at least one
 * of the two sees the other.
 *
 * The netpoller (src/io/poller.c).  A worker collects I/O events without
 * waiting when its queues are empty (before it spins), and every
 * GLOBAL_EVERY rounds while busy if BUSY_POLL_NS have passed since it last
 * did, so that I/O is served while CPU work keeps every worker busy.  An
 * idle worker, if anyone waits for I/O and no other worker does so
 * already, blocks in the poller instead of on its futex word, until its
 * earliest timer; wakep interrupts it through the poller (Go's netpoll
 * break).
 *
 * Spare workers and the hand-off (Go's sysmon retaking a P; the section
 * "spare workers" at the end).  The monitor thread (monitor.c) calls
 * weft__sched_watch about every millisecond; a worker whose tick has stood
 * still for a switch interval while it runs a green thread (a selfish loop,
 * or a blocking system call: the two look the same) and work waits for it
 * is hogged.  If only its ring holds waiting work and a regular worker is
 * idle or spinning, wakep is enough (that worker steals the ring); else
 * the monitor wakes a spare worker - an OS thread of its
 * own, in S.workers after the regular ones, at most SP.max of them - which
 * takes the hogged worker's queue (its ring by stealing, its runnext through
 * the steal gate, its due timers) and runs it; the kernel shares the cores
 * between the two.  A spare runs until the hog ends (its patron's tick
 * moves) or it finds nothing to do, then moves what it still holds to the
 * global queue and rests on its futex word.  A spare can be hogged in turn
 * and get a spare of its own; regular workers never steal from spares.
 *   (Rejected: detaching the queue from the hogged OS thread as Go detaches
 *   a P - here the ring and the scheduler loop are one thread's, and the
 *   hogged thread comes back to its loop at any moment.)
 *
 * Invariants: a green thread is in at most one queue (ring, runnext or
 * global) and only while RUNNABLE, and never before its context is saved
 * (the push of a yielder and the commit of a park happen after the switch,
 * on the next context); w->prev is non-NULL only between a green thread's
 * switch and the first steps of the context that resumes; nidle counts the
 * workers on the idle list; nspinning counts workers with spinning set plus
 * credits handed out by wakep and not yet taken.
 * Locking: S.lock (a futex mutex) guards the global queue and the idle
 * list; a worker's own fields are owner-only except as marked in green.h
 * ("owner" is the worker's OS thread, whichever of its contexts - the
 * scheduler or a green thread - is running).
 * SP.lock guards the spares' bookkeeping and the monitor's view of every
 * worker.  Lock order: SP.lock before a worker's timer lock before S.lock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "green.h"
#include "green/monitor.h"
#include "io/poller.h"
#include "lib/assert.h"
#include "thread/thread.h"
#include "platform/platform.h"
#include "weft/log.h"
#include "weft/thread.h"

#define GLOBAL_EVERY 61
#define RUNNEXT_STREAK 3
#define SPIN_NS 20000
/* While green threads wait for I/O, an idle worker is about to block in
 * the poller, where readiness reaches it directly: spinning longer only
 * burns the CPU the peers of those sockets need. */
#define SPIN_IO_NS 3000
#define MAX_WORKERS 1024
#define BUSY_POLL_NS 50000 /* a busy worker collects I/O events this often */
#define STALE_POLL_NS 1000000 /* the monitor collects them if nobody has */

static struct {
    weft__waitq lock;              /* the sched lock; only its guard is used */
    weft_green *gq_head, *gq_tail; /* guarded by lock */
    _Atomic long gq_len;           /* written under lock; read anywhere */
    weft__worker *idle;            /* guarded by lock */
    _Atomic int nidle;
    _Atomic int nspinning;
    _Atomic int stopping;
    _Atomic int poll_blocked;      /* an idle worker blocks in the poller */
    weft__worker *workers;         /* constant while running */
    _Atomic int nworkers;          /* 0 when not running */
    /* Start/stop and live green threads. */
    weft_lock run_lock;            /* serialises start and shutdown */
    weft_lock live_lock;
    weft_cond live_cond;
    _Atomic long live;             /* green threads spawned, not reaped */
} S = {
    .run_lock = WEFT_LOCK_INIT,
    .live_lock = WEFT_LOCK_INIT,
    .live_cond = WEFT_COND_INIT(&S.live_lock),
};

static _Thread_local weft__worker *tls_worker
    __attribute__((tls_model("initial-exec")));

weft__worker *weft__worker_self(void)
{
    return tls_worker;
}

int weft__green_worker_id(void)
{
    weft__worker *w = weft__worker_self();
    return w ? w->id : -1;
}

int weft_runtime_workers(void)
{
    return atomic_load(&S.nworkers);
}

/* ---- the global queue ------------------------------------------------- */

static void lock_sched(void)
{
    weft__waitq_lock(&S.lock);
}

static void unlock_sched(void)
{
    weft__waitq_unlock(&S.lock);
}

/* Append the chain first..last (n long, linked through sched_next). */
static void global_put(weft_green *first, weft_green *last, int n)
{
    /* The link is written under the lock, like every other access to the
     * queue's links: a worker that took this green thread off the queue
     * earlier read it under the lock, and the lock is what orders the two
     * for ThreadSanitizer (the chain through the run queues and the park
     * is real but was not always seen). */
    lock_sched();
    last->sched_next = NULL;
    if (S.gq_tail)
        S.gq_tail->sched_next = first;
    else
        S.gq_head = first;
    S.gq_tail = last;
    atomic_store(&S.gq_len, atomic_load(&S.gq_len) + n);
    unlock_sched();
}

/* Take one green thread to run and move up to its fair share more into
 * w's ring.  Owner of w. */
static weft_green *global_get(weft__worker *w, long max)
{
    weft_green *g, *x;
    long n, k;

    if (atomic_load(&S.gq_len) == 0)
        return NULL;
    lock_sched();
    n = atomic_load(&S.gq_len);
    if (n == 0) {
        unlock_sched();
        return NULL;
    }
    k = n / atomic_load(&S.nworkers) + 1;
    if (k > n)
        k = n;
    if (k > max)
        k = max;
    g = S.gq_head;
    S.gq_head = g->sched_next;
    for (long i = 1; i < k; i++) {
        x = S.gq_head;
        if (!weft__runq_push(&w->rq, x))
            break;
        S.gq_head = x->sched_next;
        n--;
    }
    n--;
    if (S.gq_head == NULL)
        S.gq_tail = NULL;
    atomic_store(&S.gq_len, n);
    unlock_sched();
    return g;
}

/* ---- waking idle workers ---------------------------------------------- */

static void wakep(void)
{
    weft__worker *v;
    int zero = 0;

    weft__full_fence(); /* the caller's push before our loads */
    if (atomic_load(&S.nidle) == 0 || atomic_load(&S.nspinning) != 0)
        return;
    if (!atomic_compare_exchange_strong(&S.nspinning, &zero, 1))
        return;
    lock_sched();
    v = S.idle;
    if (v) {
        S.idle = v->idle_next;
        v->idle = false;
        v->credit = true;
        atomic_fetch_sub(&S.nidle, 1);
    }
    unlock_sched();
    if (v == NULL) {
        atomic_fetch_sub(&S.nspinning, 1);
        return;
    }
    atomic_store(&v->sleep_word, 0);
    weft__futex_wake(&v->sleep_word, 1);
    weft__full_fence(); /* sleep_word before in_poll; see idle_sleep */
    if (atomic_load(&v->in_poll))
        weft__poller_interrupt();
}

/* wakep for a caller on worker w (or NULL): with one regular worker, and
 * that worker the caller, no worker can be idle (spares never are on the
 * idle list), so wakep would only pay its full fence to find nidle == 0. */
static inline void wakep_from(weft__worker *w)
{
    if (w != NULL && !w->spare &&
        atomic_load_explicit(&S.nworkers, memory_order_relaxed) == 1)
        return;
    wakep();
}

void weft__sched_need_poller(void)
{
    /* A worker woken as a spinner finds no work and, going idle again,
     * sees that someone waits on the poller and blocks in it; a busy
     * worker collects events every BUSY_POLL_NS anyway. */
    if (atomic_load(&S.nworkers) != 0 && !atomic_load(&S.poll_blocked))
        wakep();
}

bool weft__sched_poll_stale(int64_t now)
{
    if (atomic_load(&S.nworkers) == 0 || !weft__poller_wanted() ||
        atomic_load(&S.poll_blocked) ||
        now - weft__poller_last_poll() <= STALE_POLL_NS)
        return false;
    (void)weft__poller_poll(WEFT_NOW);
    return true;
}

static void stop_spinning(weft__worker *w, bool found)
{
    if (!w->spinning)
        return;
    w->spinning = false;
    /* The last spinner found work: there may be more; let another look. */
    if (atomic_fetch_sub(&S.nspinning, 1) == 1 && found)
        wakep();
}

/* ---- queuing ---------------------------------------------------------- */

/* runnext is the owner's: plain loads and stores (release/acquire cost
 * nothing on x86-64), never a read-modify-write.  See "spare workers" for
 * how a spare may take it all the same. */
static inline weft_green *rn_load(weft__worker *w)
{
    return atomic_load_explicit(&w->runnext, memory_order_acquire);
}

static inline void rn_store(weft__worker *w, weft_green *g)
{
    atomic_store_explicit(&w->runnext, g, memory_order_release);
}

/* Owner only: one more scheduling round (read by the monitor). */
static inline uint32_t bump_tick(weft__worker *w)
{
    uint32_t t = atomic_load_explicit(&w->tick, memory_order_relaxed) + 1;
    atomic_store_explicit(&w->tick, t, memory_order_relaxed);
    return t;
}

/* Owner of w: push g at the tail of w's ring, spilling half to the global
 * queue when it is full. */
static void push_local(weft__worker *w, weft_green *g)
{
    weft_green *first, *last;
    int n;

    if (WEFT_LIKELY(weft__runq_push(&w->rq, g)))
        return;
    first = weft__runq_take_half(&w->rq, g, &last, &n);
    global_put(first, last, n);
}

void weft__sched_spawned(weft_green *g)
{
    weft__worker *w = weft__worker_self();

    if (w != NULL)
        push_local(w, g);
    else
        global_put(g, g, 1);
    wakep_from(w);
}

/* Owner of w, from a green thread running on it: the steal gate's owner
 * side.  A spare may be taking runnext right now (w is hogged); announce the
 * update (rn_busy), then look for a thief: if one is at work, queue g
 * globally instead of waiting for it. */
static inline void ready_in_green(weft__worker *w, weft_green *g)
{
    weft_green *old;

    atomic_store_explicit(&w->rn_busy, 1, memory_order_relaxed);
    weft__fence_light(); /* rn_busy before stealing; pairs with the heavy */
    if (WEFT_UNLIKELY(atomic_load_explicit(&w->stealing,
                                           memory_order_acquire) != 0)) {
        atomic_store_explicit(&w->rn_busy, 0, memory_order_release);
        global_put(g, g, 1);
        return;
    }
    old = rn_load(w);
    rn_store(w, g);
    atomic_store_explicit(&w->rn_busy, 0, memory_order_release);
    if (old != NULL)
        push_local(w, old);
}

void weft__sched_ready(weft_green *g)
{
    /* tls_worker, not weft__worker_self: nothing here switches, so the
     * thread-local's address cannot go stale (see weft__green_resumed). */
    weft__worker *w = tls_worker;
    weft_green *old;

    if (w == NULL) {
        global_put(g, g, 1);
    } else if (atomic_load_explicit(&w->current, memory_order_relaxed) !=
               NULL) {
        if (WEFT_UNLIKELY(w->wake_tail))
            push_local(w, g); /* a joiner woken by an exit: see green.c */
        else
            ready_in_green(w, g);
    } else { /* the scheduler itself: no thief touches runnext meanwhile */
        if ((old = rn_load(w)) != NULL)
            push_local(w, old);
        rn_store(w, g);
        if (w->collecting) {
            w->readied++; /* poll() decides whom to wake, once */
            return;
        }
    }
    wakep_from(w);
}

static inline void live_return(weft__worker *w);

/* ---- finding work ----------------------------------------------------- */

static bool work_anywhere(void)
{
    int n = atomic_load(&S.nworkers);

    if (atomic_load(&S.gq_len) > 0 || atomic_load(&S.stopping))
        return true;
    for (int i = 0; i < n; i++)
        if (weft__runq_len(&S.workers[i].rq) > 0)
            return true;
    return false;
}

static weft_green *steal_round(weft__worker *w)
{
    int n = atomic_load(&S.nworkers);
    weft_green *g;

    w->rand = w->rand * 6364136223846793005ULL + 1442695040888963407ULL;
    int start = (int)((w->rand >> 33) % (uint64_t)n);
    for (int i = 0; i < n; i++) {
        weft__worker *v = &S.workers[(start + i) % n];
        if (v == w)
            continue;
        if ((g = weft__runq_steal(&w->rq, &v->rq)) != NULL)
            return g;
    }
    return global_get(w, WEFT__RUNQ_CAP / 2);
}

/* Look for work on other workers for up to SPIN_NS. */
static weft_green *spin(weft__worker *w)
{
    int n = atomic_load(&S.nworkers);
    int64_t until = 0;
    weft_green *g;

    if (n == 1)
        return global_get(w, WEFT__RUNQ_CAP / 2);
    if (!w->spinning) {
        int busy = n - atomic_load(&S.nidle);
        if (2 * atomic_load(&S.nspinning) < busy) {
            w->spinning = true;
            atomic_fetch_add(&S.nspinning, 1);
        }
    }
    for (int round = 0;; round++) {
        if ((g = steal_round(w)) != NULL) {
            stop_spinning(w, true);
            return g;
        }
        if (atomic_load(&S.stopping))
            break;
        if ((round & 15) == 0) {
            int64_t now = weft__clock_now();
            if (until == 0)
                until = now + (weft__poller_wanted() ? SPIN_IO_NS : SPIN_NS);
            else if (now >= until)
                break;
            if (atomic_load(&w->tnext) <= now)
                break; /* a timer is due */
        }
        weft__cpu_relax();
    }
    stop_spinning(w, false);
    return NULL;
}

/* Collect I/O events on w until deadline (WEFT_NOW: without waiting).
 * The green threads they wake go to w's own queues, and w runs the first
 * itself: only if there are more does it wake another worker (once; that
 * one wakes the next if it finds work), so that a single connection's
 * request does not cost a second worker's wake-up and spin (Go's
 * injectglist does the same).  Whether any green thread became runnable. */
static bool poll(weft__worker *w, int64_t deadline)
{
    int n;

    w->collecting = true;
    w->readied = 0;
    (void)weft__poller_poll(deadline);
    w->collecting = false;
    n = w->readied;
    if (n > 1)
        wakep();
    return n > 0;
}

/* The idle worker that watches the poller: block in it until an event, a
 * timer or a wake-up.  wakep stores sleep_word = 0 and then reads in_poll;
 * we store in_poll = 1 and then read sleep_word (full fences between), so
 * either it interrupts the poller or we do not block in it. */
static void poll_sleep(weft__worker *w, int64_t deadline)
{
    atomic_store(&w->in_poll, 1);
    weft__full_fence();
    while (atomic_load(&w->sleep_word) == 1 && !atomic_load(&S.stopping)) {
        if (deadline >= 0 && weft__clock_now() >= deadline)
            break;
        if (poll(w, deadline))
            break; /* green threads became runnable here */
    }
    atomic_store(&w->in_poll, 0);
}

/* Collect I/O events without waiting; whether any came. */
static bool poll_now(weft__worker *w)
{
    if (!weft__poller_wanted())
        return false;
    w->polled_at = weft__clock_now();
    return poll(w, WEFT_NOW);
}

static void idle_sleep(weft__worker *w)
{
    int64_t next = atomic_load(&w->tnext);
    int64_t deadline = next == INT64_MAX ? WEFT_FOREVER : next;

    lock_sched();
    if (atomic_load(&S.gq_len) > 0 || atomic_load(&S.stopping)) {
        unlock_sched();
        return;
    }
    w->idle = true;
    w->credit = false;
    w->idle_next = S.idle;
    S.idle = w;
    atomic_store(&w->sleep_word, 1);
    atomic_fetch_add(&S.nidle, 1);
    unlock_sched();
    weft__full_fence(); /* registered as idle before re-checking */
    if (!work_anywhere()) {
        if (weft__poller_wanted() &&
            !atomic_exchange(&S.poll_blocked, 1)) {
            poll_sleep(w, deadline);
            atomic_store(&S.poll_blocked, 0);
        } else {
            while (atomic_load(&w->sleep_word) == 1) {
                if (deadline >= 0 && weft__clock_now() >= deadline)
                    break;
                weft__futex_wait(&w->sleep_word, 1, deadline);
            }
        }
    }
    lock_sched();
    if (w->idle) { /* nobody woke us: take ourselves off the list */
        weft__worker **p = &S.idle;
        while (*p != w)
            p = &(*p)->idle_next;
        *p = w->idle_next;
        w->idle = false;
        atomic_fetch_sub(&S.nidle, 1);
    } else if (w->credit) { /* wakep counted us as spinning */
        w->credit = false;
        w->spinning = true;
    }
    unlock_sched();
}

/* The next green thread for w to run, or NULL when the runtime stops. */
static weft_green *find_work(weft__worker *w)
{
    weft_green *g;

    for (;;) {
        uint32_t tick = bump_tick(w);
        if (atomic_load_explicit(&w->tnext, memory_order_relaxed) !=
            INT64_MAX)
            weft__timer_run(w, weft__clock_now());
        if (tick % GLOBAL_EVERY == 0) {
            if ((g = global_get(w, 1)) != NULL)
                break;
            /* A busy worker still collects I/O events now and then. */
            if (weft__poller_wanted() &&
                weft__clock_now() - w->polled_at > BUSY_POLL_NS)
                (void)poll_now(w);
        }
        if ((g = rn_load(w)) != NULL &&
            w->runnext_streak < RUNNEXT_STREAK) {
            rn_store(w, NULL);
            w->runnext_streak++;
            break;
        }
        w->runnext_streak = 0;
        if ((g = weft__runq_pop(&w->rq)) != NULL)
            break;
        if ((g = rn_load(w)) != NULL) {
            rn_store(w, NULL);
            break;
        }
        if ((g = global_get(w, WEFT__RUNQ_CAP / 2)) != NULL)
            break;
        if (poll_now(w))
            continue; /* woken green threads are in our queues */
        /* Out of work here: the live count's credit goes back before we
         * spin or sleep, so that shutdown sees the count reach zero. */
        live_return(w);
        if ((g = spin(w)) != NULL)
            break;
        if (atomic_load(&S.stopping))
            return NULL; /* shutdown waited for every green thread */
        /* A sleeping worker is never counted as spinning: with one worker
         * spin() does not clear it, and a credit left set would make every
         * later wakep a no-op (a spare that took the work first leaves the
         * credited worker with nothing to find). */
        stop_spinning(w, false);
        idle_sleep(w);
    }
    stop_spinning(w, true);
    return g;
}

/* ---- running green threads -------------------------------------------- */

static void wait_thief(weft__worker *w);

/* Do what p switched out of its worker for, now that its context is saved
 * (p->switch_why, see "the direct switch"): called by whatever ran next on
 * w after p - its scheduler (run), or the green thread p switched to
 * directly (weft__green_resumed).  Owner of w. */
static inline __attribute__((always_inline)) void complete(weft__worker *w,
                                                           weft_green *p)
{
    uint32_t rs = WEFT__G_RUNNING;

    switch (p->switch_why) {
    case WEFT__SW_PARK:
        /* The context is saved: from now on a waker may resume it.  A
         * token left during the switch (park_green.c) requeues it. */
        if (!atomic_compare_exchange_strong(&p->run_state, &rs,
                                            WEFT__G_PARKED)) {
            WEFT_ASSERT(rs == WEFT__G_NOTIFIED);
            atomic_store_explicit(&p->run_state, WEFT__G_RUNNABLE,
                                  memory_order_release);
            weft__sched_ready(p);
        } else if (WEFT_UNLIKELY(atomic_load(&p->waiter.state) ==
                                 WEFT__W_WOKEN)) {
            /* Claimed by a waker that saw p RUNNABLE or NOTIFIED and left
             * the wake-up to p (park_green.c): the CAS above (sequentially
             * consistent) and this load are our half of its fence pair.
             * Whoever moves PARKED first pushes. */
            rs = WEFT__G_PARKED;
            if (atomic_compare_exchange_strong(&p->run_state, &rs,
                                               WEFT__G_RUNNABLE))
                weft__sched_ready(p);
        }
        break;
    case WEFT__SW_YIELD:
        /* A token (NOTIFIED) may be dropped here: yield is never called
         * between a park's last check of its waiter and its block. */
        atomic_store_explicit(&p->run_state, WEFT__G_RUNNABLE,
                              memory_order_release); /* as in RUNNING */
        push_local(w, p);
        break;
    case WEFT__SW_EXIT:
        /* Only ever through the scheduler: the stack it frees must not be
         * the one this code runs on. */
        WEFT_ASSERT(atomic_load_explicit(&w->current,
                                         memory_order_relaxed) == NULL);
        weft__green_reap(p);
        break;
    default:
        WEFT_PANIC("green thread %s switched out for no reason", p->name);
    }
}

/* Run g until a green thread switches back to the scheduler (g, or one that
 * g or its successors switched to directly), then do what that one switched
 * back for.  Always inlined into the two scheduler loops: a call around the
 * context switch adds a return that the CPU's return predictor, misled by
 * the switch, mispredicts every time (~7 ns per yield here). */
static inline __attribute__((always_inline)) void run(weft__worker *w,
                                                      weft_green *g)
{
    weft_green *p;

    /* Release, not seq_cst (an xchg on x86-64, ~5 ns): every other access
     * to run_state is a read-modify-write of this one location, whose
     * modification order is total whatever the memory order.  The one
     * Dekker pair on it (a late waker that finds the thread RUNNABLE or
     * NOTIFIED against the park's commit, park_green.c and complete) does
     * not involve this store: each side there has its own full fence or
     * CAS.  Release keeps the queue hand-off's writes ordered before it
     * for a waker that reads RUNNING.  The loads of stealing and current
     * that the steal gate pairs with this are acquire: free on x86-64,
     * and on aarch64 they keep the reads that follow from passing them. */
    atomic_store_explicit(&g->run_state, WEFT__G_RUNNING,
                          memory_order_release);
    atomic_store_explicit(&w->current, g, memory_order_release);
    weft__set_self(&g->waiter);
    if (g->switch_why == WEFT__SW_NONE) /* its first run (green.c) */
        weft__green_start(w, g);
    weft__gctx_switch(&w->sched, &g->gctx, 0);
    weft__set_self(w->os_self); /* this loop never changes OS thread */
    /* The steal gate: back in the scheduler, runnext is ours again unless
     * a spare is taking it; then wait for it to finish. */
    atomic_store_explicit(&w->current, NULL, memory_order_relaxed);
    weft__fence_light();
    if (WEFT_UNLIKELY(atomic_load_explicit(&w->stealing,
                                           memory_order_acquire) != 0))
        wait_thief(w);
    p = w->prev;
    w->prev = NULL;
    WEFT_ASSERT(p != NULL);
    complete(w, p);
}

/* ---- the direct switch ------------------------------------------------- */

/* Owner of w, inside pick_direct's half of the steal gate (rn_busy set,
 * stealing seen clear): pop the head of w's ring.  With one regular worker
 * the only thief a ring can have is a spare, and a spare steals its
 * patron's ring only through the gate (steal_patron_ring), so here no
 * thief can move head: a load and a release store do, without the CAS
 * (a locked instruction, ~5.5 ns here: a third of a yield).  With more
 * workers, regular thieves steal without the gate (a membarrier per steal
 * would be dear), and the owner keeps Go's CAS. */
static inline weft_green *ring_pop_direct(weft__worker *w)
{
    weft__runq *q = &w->rq;
    uint32_t h, t;
    weft_green *g;

    if (atomic_load_explicit(&S.nworkers, memory_order_relaxed) != 1)
        return weft__runq_pop(q);
    h = atomic_load_explicit(&q->head, memory_order_relaxed);
    t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    if (h == t)
        return NULL;
    g = atomic_load_explicit(&q->slot[h % WEFT__RUNQ_CAP],
                             memory_order_relaxed);
    /* Release: a thief (later, through the gate) that reads the new head
     * with acquire finds the slot read done. */
    atomic_store_explicit(&q->head, h + 1, memory_order_release);
    return g;
}

/* A green thread g that yields or parks on w (owner: g runs there) picks
 * the next green thread itself, as find_work would, and switches to it
 * without passing through the scheduler's context; NULL sends it through
 * the scheduler instead, which is kept for everything but the common case:
 * a spare worker, every GLOBAL_EVERY-th round (the global queue and the
 * netpoller), a timer that is due, a spare at the steal gate, nothing
 * queued locally (idle, the global queue, stealing) and exit (the stack is
 * freed from the scheduler).  For a yield with nothing else queued here
 * it returns g: go on running (the scheduler would push g and pop it at
 * once).
 *
 * On success it has done run()'s part for the next thread (RUNNING,
 * current, weft__self) and leaves rn_busy set: the steal gate then sees the
 * owner "updating runnext" until the next thread has run
 * weft__green_resumed, so a spare in the gate never reads current while
 * it still names g, which is switching away (and could be recycled once
 * pushed).  Owner of w, in g. */
static weft_green *pick_direct(weft__worker *w, weft_green *g, int why)
{
    uint32_t tick = atomic_load_explicit(&w->tick, memory_order_relaxed) + 1;
    int64_t next = atomic_load_explicit(&w->tnext, memory_order_relaxed);
    weft_green *n;

    if (tick % GLOBAL_EVERY == 0 ||
        (next != INT64_MAX && next <= weft__clock_now()))
        return NULL; /* find_work has more to do this round */
    atomic_store_explicit(&w->rn_busy, 1, memory_order_relaxed);
    weft__fence_light(); /* rn_busy before stealing; pairs with the heavy */
    if (WEFT_UNLIKELY(atomic_load_explicit(&w->stealing,
                                           memory_order_acquire) != 0))
        goto through_sched;
    /* find_work's local order: runnext (streak permitting), ring, runnext. */
    if ((n = rn_load(w)) != NULL && w->runnext_streak < RUNNEXT_STREAK) {
        rn_store(w, NULL);
        w->runnext_streak++;
    } else {
        w->runnext_streak = 0;
        if ((n = ring_pop_direct(w)) == NULL && (n = rn_load(w)) != NULL)
            rn_store(w, NULL);
    }
    if (n == NULL) {
        if (why != WEFT__SW_YIELD)
            goto through_sched;
        n = g;
    }
    atomic_store_explicit(&w->tick, tick, memory_order_relaxed);
    if (n == g) {
        atomic_store_explicit(&w->rn_busy, 0, memory_order_release);
        return g;
    }
    atomic_store_explicit(&n->run_state, WEFT__G_RUNNING,
                          memory_order_release); /* as in run() */
    atomic_store_explicit(&w->current, n, memory_order_release);
    weft__set_self(&n->waiter);
    return n;
through_sched:
    atomic_store_explicit(&w->rn_busy, 0, memory_order_release);
    return NULL;
}

/* Called in a green thread right after it resumed (and as its first act
 * when it starts): if the thread before it on this worker switched to it
 * directly, complete that one's switch (push it, or commit its park).  The
 * worker is looked up afresh: the caller may have moved. */
static inline __attribute__((always_inline)) void resumed(void)
{
    weft__worker *w = weft__worker_self();
    weft_green *p = w->prev;

    if (p == NULL)
        return; /* resumed by the scheduler, which completed it already */
    w->prev = NULL;
    /* Now current is this thread and the gate may be entered: a spare that
     * waited for rn_busy sees a consistent worker. */
    atomic_store_explicit(&w->rn_busy, 0, memory_order_release);
    complete(w, p);
}

void weft__green_resumed(void)
{
    resumed();
}

void weft__green_switch_out(weft_green *g, int why)
{
    /* tls_worker inline: read before the switch, and resumed() below looks
     * the worker up afresh through the out-of-line call. */
    weft__worker *w = tls_worker;
    weft_green *n = NULL;

    WEFT_ASSERT(w != NULL &&
                atomic_load_explicit(&w->current, memory_order_relaxed) == g);
    g->switch_why = why;
    if (why != WEFT__SW_EXIT && !w->spare) {
        n = pick_direct(w, g, why);
        if (n == g)
            return; /* a yield with nothing else to run here */
    }
    w->prev = g;
    /* The direct switch has one call site, so the thread it resumes saved
     * itself from here too (or is new): its return addresses are the ones
     * the return predictor holds.  Nothing below reads a TLS address
     * computed above: g may come back on another worker. */
    if (n != NULL) {
        if (n->switch_why == WEFT__SW_NONE) /* its first run (green.c) */
            weft__green_start(w, n);
        weft__gctx_switch_peer(&g->gctx, &n->gctx);
    } else {
        weft__gctx_switch(&g->gctx, &w->sched, why == WEFT__SW_EXIT);
    }
    resumed();
}

static int worker_main(void *arg)
{
    weft__worker *w = arg;
    weft_green *g;

    tls_worker = w;
    w->os_self = weft__self(); /* no green thread has run here yet */
    (void)weft__stack_thread_init();
    weft__gctx_init_self(&w->sched);
    while ((g = find_work(w)) != NULL)
        run(w, g);
    live_return(w); /* returned when it ran out of work; to be sure */
    weft__green_cache_flush(w); /* before S.workers is freed */
    tls_worker = NULL;
    return 0;
}

/* ---- live green threads -----------------------------------------------
 *
 * S.live counts the green threads spawned and not yet reaped, which
 * shutdown waits to see reach zero, plus the credit each worker holds:
 * a spawn on a worker takes one from its credit (LIVE_BATCH more with one
 * atomic add when it has none), a reap there gives one back (LIVE_BATCH
 * back with one atomic subtract past 2 * LIVE_BATCH), and a worker that
 * runs out of work, stops or rests returns all of it (live_return).  So
 * a spawn and a reap on a worker make no read-modify-write of the shared
 * line - whose locked instruction, after the spawn's writes to a cold
 * struct, also waited for all of those to reach the cache.
 * Invariant: S.live = live green threads + the workers' credits, each
 * credit >= 0; so S.live >= live, it is zero only when both are, and
 * only live_return (or a thread off a worker) can bring it to zero, which
 * is where shutdown is notified.  Once every worker has run out of work
 * (the last reap was followed by that worker's find_work, which returns
 * its credit before it spins), S.live is exact.  weft__sched_live may
 * read up to 2 * LIVE_BATCH per worker too many (used only for the
 * ThreadSanitizer bound on live fibers, which keeps that much margin).
 * Credits are owner-only (plain fields of the worker, like its caches). */
#define LIVE_BATCH 64

static void live_sub(long n)
{
    if (atomic_fetch_sub(&S.live, n) == n) {
        weft_lock_acquire(&S.live_lock, WEFT_FOREVER);
        weft_cond_notify_all(&S.live_cond);
        weft_lock_release(&S.live_lock);
    }
}

/* Owner of w: give w's credit back (w runs out of work, stops or rests). */
static inline void live_return(weft__worker *w)
{
    long n = w->live_credit;

    if (n != 0) {
        w->live_credit = 0;
        live_sub(n);
    }
}

void weft__sched_live_add(weft__worker *w)
{
    if (w == NULL) {
        atomic_fetch_add(&S.live, 1);
        return;
    }
    if (WEFT_UNLIKELY(w->live_credit == 0)) {
        atomic_fetch_add(&S.live, LIVE_BATCH);
        w->live_credit = LIVE_BATCH;
    }
    w->live_credit--;
}

long weft__sched_live(void)
{
    return atomic_load(&S.live);
}

void weft__sched_live_done(weft__worker *w)
{
    if (w == NULL) {
        live_sub(1);
        return;
    }
    if (WEFT_UNLIKELY(++w->live_credit > 2 * LIVE_BATCH)) {
        /* Leaves LIVE_BATCH of credit counted: S.live stays above zero. */
        w->live_credit -= LIVE_BATCH;
        atomic_fetch_sub(&S.live, LIVE_BATCH);
    }
}

/* ---- start and shutdown ----------------------------------------------- */

static int env_workers(void)
{
    const char *s = getenv("WEFT_WORKERS");
    long n = s ? strtol(s, NULL, 10) : 0;

    if (n > 0 && n <= MAX_WORKERS)
        return (int)n;
    return weft__cpu_count();
}

static void spares_stop(void);
static void spares_start(int n, int max);
static int env_spares(int n);

static void stop_workers(int n)
{
    spares_stop();
    atomic_store(&S.stopping, 1);
    for (int i = 0; i < n; i++) {
        atomic_store(&S.workers[i].sleep_word, 0);
        weft__futex_wake(&S.workers[i].sleep_word, 1);
    }
    weft__poller_interrupt();
    for (int i = 0; i < n; i++)
        if (S.workers[i].th != NULL)
            (void)weft_thread_join(S.workers[i].th, NULL, WEFT_FOREVER);
    for (int i = 0; i < n; i++)
        weft__timer_fini(&S.workers[i]);
    atomic_store(&S.nworkers, 0);
    free(S.workers);
    S.workers = NULL;
    S.idle = NULL;
    atomic_store(&S.nidle, 0);
    atomic_store(&S.nspinning, 0);
    atomic_store(&S.stopping, 0);
}

/* run_lock held. */
static int start_locked(int n)
{
    weft_thread_opts o = {NULL, 1, 0};
    char name[32];
    int rc;

    if (n == 0)
        n = env_workers();
    /* Room for the spare workers after the regular ones. */
    S.workers = calloc((size_t)(n + env_spares(n)), sizeof *S.workers);
    if (S.workers == NULL)
        return -ENOMEM;
    for (int i = 0; i < n; i++) {
        S.workers[i].id = i;
        S.workers[i].rand = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
        weft__timer_init(&S.workers[i]);
    }
    (void)weft__stack_install_overflow_handler();
    /* Published before the threads start: they read it. */
    atomic_store(&S.nworkers, n);
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "green-worker-%d", i);
        o.name = name;
        rc = weft_thread_start(&S.workers[i].th, worker_main, &S.workers[i],
                               &o);
        if (rc != 0) {
            stop_workers(i);
            return rc;
        }
    }
    spares_start(n, env_spares(n));
    return 0;
}

int weft_runtime_start(int workers)
{
    int rc;

    if (workers < 0 || workers > MAX_WORKERS)
        return -EINVAL;
    if (weft_green_current() != NULL)
        return -EBUSY; /* a green thread exists: so does the runtime */
    weft_lock_acquire(&S.run_lock, WEFT_FOREVER);
    rc = atomic_load(&S.nworkers) ? -EBUSY : start_locked(workers);
    weft_lock_release(&S.run_lock);
    return rc;
}

int weft__sched_ensure(void)
{
    int rc = 0;

    if (WEFT_LIKELY(atomic_load_explicit(&S.nworkers,
                                         memory_order_acquire) != 0))
        return 0;
    weft_lock_acquire(&S.run_lock, WEFT_FOREVER);
    if (atomic_load(&S.nworkers) == 0)
        rc = start_locked(0);
    weft_lock_release(&S.run_lock);
    return rc;
}

int weft_runtime_shutdown(int64_t deadline)
{
    int rc = 0;

    if (weft_green_current() != NULL)
        return -EDEADLK;
    rc = weft_lock_acquire(&S.run_lock, deadline);
    if (rc != 0)
        return rc;
    if (atomic_load(&S.nworkers) == 0) {
        weft_lock_release(&S.run_lock);
        return -ESRCH;
    }
    rc = weft_lock_acquire(&S.live_lock, deadline);
    if (rc == 0) {
        while (rc == 0 && atomic_load(&S.live) > 0)
            rc = weft_cond_wait(&S.live_cond, deadline);
        if (atomic_load(&S.live) == 0)
            rc = 0;
        weft_lock_release(&S.live_lock);
    }
    if (rc == 0)
        stop_workers(atomic_load(&S.nworkers));
    weft_lock_release(&S.run_lock);
    return rc;
}

/* ---- spare workers and the hand-off ------------------------------------ */

/* The steal gate.  runnext belongs to its owner, which stores and loads it
 * without read-modify-writes; a spare may take it only while the owner runs
 * a green thread, and only like this (an asymmetric Dekker pair, with the
 * spare paying the membarrier):
 *   spare:  CAS stealing 0 -> 1; heavy fence; if current != NULL: wait for
 *           rn_busy == 0, take runnext; stealing = 0 (wake the owner if it
 *           waits: 2).
 *   owner back in its scheduler (run): current = NULL; light fence; if
 *           stealing != 0, wait until it is 0 (wait_thief).
 *   owner in a green thread (ready_in_green): rn_busy = 1; light fence; if
 *           stealing != 0 queue globally instead; else update runnext;
 *           rn_busy = 0.
 *   owner in a direct switch (pick_direct): rn_busy = 1; light fence; if
 *           stealing != 0 go through the scheduler (which waits) instead;
 *           else take the next thread (runnext or ring), set current to it
 *           and switch; the next thread clears rn_busy once it runs
 *           (weft__green_resumed).  So a spare that entered the gate and
 *           waited for rn_busy == 0 - take_runnext and warn_hog both do -
 *           sees current naming a thread that stays on the worker until the
 *           gate is left, as it would without direct switches.
 * Either the spare sees current == NULL (and leaves runnext alone) or the
 * owner sees stealing and waits; either the spare sees rn_busy and waits
 * for the update to end or the owner sees stealing and keeps off runnext.
 * The owner's fast paths gain two plain stores and a load, no locked
 * instruction.  (Rejected: Go's CAS on runnext by its owner too - a locked
 * instruction on every wake-up and every take, ~5 ns each here, paid for a
 * case that arises only when a worker is hogged.) */
static void wait_thief(weft__worker *w)
{
    for (int i = 0; i < 256; i++) {
        if (atomic_load_explicit(&w->stealing, memory_order_acquire) == 0)
            return;
        weft__cpu_relax();
    }
    for (;;) {
        uint32_t st = atomic_load_explicit(&w->stealing, memory_order_acquire);
        if (st == 0)
            return;
        if (st == 1 && !atomic_compare_exchange_strong(&w->stealing, &st, 2))
            continue;
        (void)weft__futex_wait(&w->stealing, 2, WEFT_FOREVER);
    }
}

/* Enter v's gate from another thread: false if someone else holds it.
 * Inside, while v's current is set, v's owner stays in that green thread
 * (it waits at the gate when it comes back), so its struct and runnext may
 * be read; leaving releases, so the owner's next steps happen after. */
static bool gate_enter(weft__worker *v)
{
    uint32_t zero = 0;

    if (!atomic_compare_exchange_strong(&v->stealing, &zero, 1))
        return false;
    weft__fence_heavy();
    return true;
}

static void gate_leave(weft__worker *v)
{
    if (atomic_exchange(&v->stealing, 0) == 2)
        weft__futex_wake(&v->stealing, 1);
}

/* A spare takes v's runnext (or NULL). */
static weft_green *take_runnext(weft__worker *v)
{
    weft_green *g = NULL;

    if (rn_load(v) == NULL || !gate_enter(v))
        return NULL; /* nothing, or another spare is at it */
    if (atomic_load_explicit(&v->current, memory_order_acquire) != NULL) {
        while (atomic_load_explicit(&v->rn_busy, memory_order_acquire) != 0)
            weft__cpu_relax();
        if ((g = rn_load(v)) != NULL)
            rn_store(v, NULL);
    }
    gate_leave(v);
    return g;
}

/* A spare w steals half of its patron v's ring, through the gate: the
 * owner of a lone regular worker pops its ring without a CAS in a direct
 * switch (ring_pop_direct), which is safe only if no thief moves head
 * meanwhile.  Inside the gate with current set and rn_busy clear, the
 * owner is in no direct switch and enters none until the gate is left
 * (it sees stealing and goes through its scheduler, whose pop keeps the
 * CAS).  With current clear the owner is in its scheduler: not hogged, it
 * runs its ring itself. */
static weft_green *steal_patron_ring(weft__worker *w, weft__worker *v)
{
    weft_green *g = NULL;

    if (weft__runq_len(&v->rq) == 0 || !gate_enter(v))
        return NULL; /* nothing, or another spare is at it */
    if (atomic_load_explicit(&v->current, memory_order_acquire) != NULL) {
        while (atomic_load_explicit(&v->rn_busy, memory_order_acquire) != 0)
            weft__cpu_relax();
        g = weft__runq_steal(&w->rq, &v->rq);
    }
    gate_leave(v);
    return g;
}

/* The spares: slots S.workers[SP.nworkers .. SP.nworkers + SP.started).
 * Locking: lock guards running, nworkers, max, started and the monitor's
 * fields (mon_*) of every worker; a spare's patron, patron_tick and
 * spare_active are written by the monitor under lock (activation) and by
 * the spare itself (retiring), read by both; stop is atomic. */
static struct {
    weft__waitq lock;              /* only its guard is used */
    bool running;                  /* S.workers is valid */
    int nworkers, max, started;
    _Atomic int nstarted, nactive; /* for tests and the busy answer */
    _Atomic int stop;
    _Atomic int full_warned;       /* the bound was hit: logged once */
} SP;

#define MAX_SPARES 1024

/* WEFT_MAX_SPARES, else 4 per worker and at least 8: enough for every one
 * of a few selfish green threads per worker to get an OS thread. */
static int env_spares(int n)
{
    const char *s = getenv("WEFT_MAX_SPARES");
    long v;

    if (s != NULL && *s != '\0') {
        v = strtol(s, NULL, 10);
        if (v >= 0 && v <= MAX_SPARES)
            return (int)v;
    }
    v = 4L * n;
    if (v < 8)
        v = 8;
    return v > MAX_SPARES ? MAX_SPARES : (int)v;
}

static bool patron_hogged(weft__worker *w, weft__worker *p)
{
    return p != NULL &&
           atomic_load_explicit(&p->current, memory_order_relaxed) != NULL &&
           atomic_load_explicit(&p->tick, memory_order_relaxed) ==
               atomic_load_explicit(&w->patron_tick, memory_order_relaxed);
}

/* A spare's next green thread while its patron stays hogged, or NULL: rest.
 * Its own queue first, then its patron's (ring, runnext, due timers), then
 * the global queue. */
static weft_green *spare_find_work(weft__worker *w)
{
    weft__worker *p = atomic_load(&w->patron);
    weft_green *g;
    int64_t now;

    bump_tick(w);
    if (atomic_load(&SP.stop) || !patron_hogged(w, p))
        return NULL;
    now = weft__clock_now();
    weft__timer_run(w, now);
    weft__timer_run(p, now); /* what fires comes to this spare's runnext */
    if ((g = weft__runq_pop(&w->rq)) != NULL)
        return g;
    if ((g = rn_load(w)) != NULL) {
        rn_store(w, NULL);
        return g;
    }
    if ((g = steal_patron_ring(w, p)) != NULL)
        return g;
    if ((g = take_runnext(p)) != NULL)
        return g;
    if ((g = global_get(w, WEFT__RUNQ_CAP / 2)) != NULL)
        return g;
    /* Green threads whose I/O is ready are work too: the hogged workers
     * do not collect events. */
    if (poll(w, WEFT_NOW)) {
        if ((g = rn_load(w)) != NULL) {
            rn_store(w, NULL);
            return g;
        }
        return weft__runq_pop(&w->rq);
    }
    return NULL;
}

/* A spare going to rest: what it still holds goes to the global queue
 * (regular workers do not steal from spares). */
static void spare_retire(weft__worker *w)
{
    weft_green *first = NULL, *last = NULL, *g;
    int n = 0;

    if ((g = rn_load(w)) != NULL) {
        rn_store(w, NULL);
        first = last = g;
        n++;
    }
    while ((g = weft__runq_pop(&w->rq)) != NULL) {
        if (last)
            last->sched_next = g;
        else
            first = g;
        last = g;
        n++;
    }
    if (n > 0) {
        global_put(first, last, n);
        wakep();
    }
    atomic_store(&w->patron, NULL);
    atomic_store(&w->sleep_word, 1);   /* before it can be activated again */
    atomic_store(&w->spare_active, 0);
    atomic_fetch_sub(&SP.nactive, 1);
}

/* Rest until activated or stopped.  A resting spare is no worker
 * (tls_worker is NULL), so the timers it still fires - those of green
 * threads that parked while it ran them - wake them onto the global
 * queue. */
static void spare_rest(weft__worker *w)
{
    while (atomic_load(&w->sleep_word) == 1 && !atomic_load(&SP.stop)) {
        int64_t next = atomic_load(&w->tnext);
        (void)weft__futex_wait(&w->sleep_word, 1,
                               next == INT64_MAX ? WEFT_FOREVER : next);
        if (atomic_load(&w->tnext) != INT64_MAX)
            weft__timer_run(w, weft__clock_now());
    }
}

static int spare_main(void *arg)
{
    weft__worker *w = arg;
    weft_green *g;

    w->os_self = weft__self();
    (void)weft__stack_thread_init();
    weft__gctx_init_self(&w->sched);
    for (;;) {
        spare_rest(w);
        if (atomic_load(&SP.stop))
            break;
        tls_worker = w;
        while ((g = spare_find_work(w)) != NULL)
            run(w, g);
        live_return(w);
        weft__green_cache_flush(w); /* a resting spare holds nothing */
        tls_worker = NULL;
        spare_retire(w);
    }
    return 0;
}

/* SP.lock held: send spare h to help w. */
static void spare_activate(weft__worker *h, weft__worker *w)
{
    atomic_store(&h->patron, w);
    atomic_store(&h->patron_tick, w->mon_tick);
    atomic_store(&h->spare_active, 1);
    atomic_fetch_add(&SP.nactive, 1);
    atomic_store(&h->sleep_word, 0);
    weft__futex_wake(&h->sleep_word, 1);
}

/* SP.lock held: a resting spare, or a new one, already sent to help w;
 * false at the bound. */
static bool spare_send(weft__worker *w)
{
    weft_thread_opts o = {NULL, 1, 0};
    char name[32];
    weft__worker *h;

    for (int i = 0; i < SP.started; i++) {
        h = &S.workers[SP.nworkers + i];
        if (atomic_load(&h->spare_active) == 0) {
            spare_activate(h, w);
            w->mon_helper = h;
            return true;
        }
    }
    if (SP.started >= SP.max)
        return false;
    h = &S.workers[SP.nworkers + SP.started];
    memset(h, 0, sizeof *h);
    h->id = SP.nworkers + SP.started;
    h->spare = true;
    h->rand = 0x9e3779b97f4a7c15ULL * (uint64_t)(h->id + 1);
    weft__timer_init(h);
    atomic_store(&h->sleep_word, 1);
    spare_activate(h, w); /* the new thread starts at work */
    snprintf(name, sizeof name, "green-spare-%d", SP.started);
    o.name = name;
    if (weft_thread_start(&h->th, spare_main, h, &o) != 0) {
        atomic_store(&h->spare_active, 0);
        atomic_fetch_sub(&SP.nactive, 1);
        weft__timer_fini(h);
        return false;
    }
    weft__thread_mark_system(h->th); /* not a user thread for the check */
    SP.started++;
    atomic_fetch_add(&SP.nstarted, 1);
    w->mon_helper = h;
    return true;
}

/* Does work wait for w, hogged? */
static bool work_waits(weft__worker *w, int64_t now)
{
    return weft__runq_len(&w->rq) > 0 || rn_load(w) != NULL ||
           atomic_load(&w->tnext) <= now ||
           (atomic_load(&S.gq_len) > 0 && atomic_load(&S.nidle) == 0);
}

/* Only w's ring (which any regular worker may steal) holds waiting work. */
static bool only_ring_waits(weft__worker *w, int64_t now)
{
    return rn_load(w) == NULL && atomic_load(&w->tnext) > now &&
           atomic_load(&S.gq_len) == 0;
}

/* SP.lock held: update the monitor's view of w; true if it runs a green
 * thread. */
static bool observe(weft__worker *w, int64_t now, int64_t interval)
{
    uint32_t t = atomic_load_explicit(&w->tick, memory_order_relaxed);
    weft_green *g = atomic_load_explicit(&w->current, memory_order_acquire);

    if (g == NULL || t != w->mon_tick || w->mon_since == 0) {
        w->mon_tick = t;
        w->mon_since = now;
        w->mon_hog = false;
        w->mon_warned = false;
        return g != NULL;
    }
    w->mon_hog = now - w->mon_since >= interval;
    return true;
}

/* SP.lock held: the warning for w's hog episode.  The green thread's name,
 * id and site are constant while it lives, but it may end (and its struct
 * be recycled) at any moment: they are copied inside w's gate, where the
 * owner cannot leave it, and logged after. */
static void warn_hog(weft__worker *w, int64_t now)
{
    char name[WEFT__GREEN_NAME_BUF * 2];
    const char *site = NULL;
    uint64_t id = 0;
    weft_green *g;
    bool same;

    if (!gate_enter(w))
        return; /* a spare is at it: next round */
    /* A direct switch in progress names its next thread only once rn_busy
     * is clear (see pick_direct). */
    while (atomic_load_explicit(&w->rn_busy, memory_order_acquire) != 0)
        weft__cpu_relax();
    g = atomic_load_explicit(&w->current, memory_order_acquire);
    same = g != NULL &&
           atomic_load_explicit(&w->tick, memory_order_relaxed) == w->mon_tick;
    if (same) {
        snprintf(name, sizeof name, "%s", g->name);
        site = g->site;
        id = g->id;
    }
    gate_leave(w);
    if (!same)
        return;
    w->mon_warned = true;
    weft_warning("green thread %s (id %llu, spawned at %s) has held %s %d "
                 "for %lld ms without yielding (a long computation or a "
                 "blocking call) while other work waits; a spare worker "
                 "takes its queue",
                 name, (unsigned long long)id, site ? site : "?",
                 w->spare ? "spare worker" : "worker", w->id,
                 (long long)((now - w->mon_since) / WEFT_NSEC_PER_MSEC));
}

bool weft__sched_watch(int64_t now, int64_t interval)
{
    bool busy = false;
    int total;

    weft__waitq_lock(&SP.lock);
    if (!SP.running) {
        weft__waitq_unlock(&SP.lock);
        return false;
    }
    total = SP.nworkers + SP.started;
    for (int i = 0; i < total; i++)
        busy |= observe(&S.workers[i], now, interval);
    for (int i = 0; i < total; i++) {
        weft__worker *w = &S.workers[i], *h = w->mon_helper;
        if (!w->mon_hog || !work_waits(w, now))
            continue;
        if (!w->mon_warned)
            warn_hog(w, now);
        if (!w->spare && only_ring_waits(w, now) &&
            (atomic_load(&S.nidle) > 0 || atomic_load(&S.nspinning) > 0)) {
            wakep(); /* an idle regular worker can steal it all */
            continue;
        }
        if (h != NULL && atomic_load(&h->spare_active) &&
            atomic_load(&h->patron) == w && !h->mon_hog)
            continue; /* its spare is at work */
        if (!spare_send(w) && !atomic_exchange(&SP.full_warned, 1))
            weft_warning("all %d spare workers are busy (WEFT_MAX_SPARES): "
                         "green threads queued behind worker %d wait",
                         SP.max, w->id);
    }
    busy |= atomic_load(&S.gq_len) > 0 || atomic_load(&SP.nactive) > 0;
    weft__waitq_unlock(&SP.lock);
    return busy;
}

/* run_lock held, the regular workers running. */
static void spares_start(int n, int max)
{
    weft__waitq_lock(&SP.lock);
    SP.nworkers = n;
    SP.max = max;
    SP.started = 0;
    SP.running = true;
    weft__waitq_unlock(&SP.lock);
    if (weft__monitor_ensure() != 0)
        weft_warning("the monitor thread did not start: a green thread that "
                     "never yields will hold up its worker's queue");
    weft__monitor_kick();
}

/* run_lock held, no green thread alive: stop and join every spare. */
static void spares_stop(void)
{
    int n, started;

    weft__waitq_lock(&SP.lock);
    n = SP.nworkers;
    started = SP.started;
    SP.running = false; /* the monitor keeps off S.workers from now on */
    SP.started = 0;
    weft__waitq_unlock(&SP.lock);
    if (started == 0)
        return;
    atomic_store(&SP.stop, 1);
    for (int i = 0; i < started; i++) {
        atomic_store(&S.workers[n + i].sleep_word, 0);
        weft__futex_wake(&S.workers[n + i].sleep_word, 1);
    }
    for (int i = 0; i < started; i++) {
        (void)weft_thread_join(S.workers[n + i].th, NULL, WEFT_FOREVER);
        weft__timer_fini(&S.workers[n + i]);
    }
    atomic_store(&SP.nstarted, 0);
    atomic_store(&SP.nactive, 0);
    atomic_store(&SP.full_warned, 0);
    atomic_store(&SP.stop, 0);
}

int weft__sched_spares_started(void)
{
    return atomic_load(&SP.nstarted);
}

int weft__sched_spares_active(void)
{
    return atomic_load(&SP.nactive);
}

int weft__sched_spares_max(void)
{
    int m;

    weft__waitq_lock(&SP.lock);
    m = SP.running ? SP.max : 0;
    weft__waitq_unlock(&SP.lock);
    return m;
}

/* ---- for the debug layer ---------------------------------------------- */

/* The facts the deadlock check needs from the scheduler.  idle: every
 * worker registered idle, none spinning or credited, the global queue
 * empty (a ring is empty then too: a worker re-checks every ring after it
 * registers idle), up to the races the caller's second look covers.
 * worker_fn tells the workers' handles apart in the thread registry (a
 * constant: no shared state is read for it). */
void weft__sched_get_facts(weft__sched_facts *f)
{
    int n = atomic_load(&S.nworkers);

    f->idle = n > 0 && atomic_load(&S.nidle) == n &&
              atomic_load(&S.nspinning) == 0 && atomic_load(&S.gq_len) == 0 &&
              atomic_load(&SP.nactive) == 0;
    f->worker_fn = worker_main;
}
