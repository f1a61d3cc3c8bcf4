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
 *   5. stealing half of another worker's ring, for up to SPIN_NS;
 *   6. sleep on its futex word until woken or its earliest timer is due.
 * The global queue takes what OS threads spawn or wake and a full ring's
 * overflow; it is a linked list under the sched lock with an atomic length
 * so that an empty check takes no lock.
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
 * break).  The monitor will read each worker's `tick` and `current` to
 * spot a worker stuck on one green thread.

 * Invariants: a green thread is in at most one queue (ring, runnext or
 * global) and only while RUNNABLE; nidle counts the workers on the idle
 * list; nspinning counts workers with spinning set plus credits handed out
 * by wakep and not yet taken.
 * Locking: S.lock (a futex mutex) guards the global queue and the idle
 * list; a worker's own fields are owner-only except as marked in green.h.
 * Lock order: a worker's timer lock before S.lock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "green.h"
#include "io/poller.h"
#include "lib/assert.h"
#include "platform/platform.h"
#include "weft/thread.h"

#define GLOBAL_EVERY 61
#define RUNNEXT_STREAK 3
#define SPIN_NS 20000
#define MAX_WORKERS 1024
#define BUSY_POLL_NS 50000 /* a busy worker collects I/O events this often */

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

static _Thread_local weft__worker *tls_worker;

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
    last->sched_next = NULL;
    lock_sched();
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
    wakep();
}

void weft__sched_ready(weft_green *g)
{
    weft__worker *w = weft__worker_self();

    if (w == NULL) {
        global_put(g, g, 1);
    } else {
        if (w->runnext != NULL)
            push_local(w, w->runnext);
        w->runnext = g;
    }
    wakep();
}

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
                until = now + SPIN_NS;
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
        if (weft__poller_poll(deadline) > 0)
            break; /* green threads may have become runnable here */
    }
    atomic_store(&w->in_poll, 0);
}

/* Collect I/O events without waiting; whether any came. */
static bool poll_now(weft__worker *w)
{
    if (!weft__poller_wanted())
        return false;
    w->polled_at = weft__clock_now();
    return weft__poller_poll(WEFT_NOW) > 0;
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
        w->tick++;
        if (atomic_load_explicit(&w->tnext, memory_order_relaxed) !=
            INT64_MAX)
            weft__timer_run(w, weft__clock_now());
        if (w->tick % GLOBAL_EVERY == 0) {
            if ((g = global_get(w, 1)) != NULL)
                break;
            /* A busy worker still collects I/O events now and then. */
            if (weft__poller_wanted() &&
                weft__clock_now() - w->polled_at > BUSY_POLL_NS)
                (void)poll_now(w);
        }
        if (w->runnext != NULL && w->runnext_streak < RUNNEXT_STREAK) {
            g = w->runnext;
            w->runnext = NULL;
            w->runnext_streak++;
            break;
        }
        w->runnext_streak = 0;
        if ((g = weft__runq_pop(&w->rq)) != NULL)
            break;
        if ((g = w->runnext) != NULL) {
            w->runnext = NULL;
            break;
        }
        if ((g = global_get(w, WEFT__RUNQ_CAP / 2)) != NULL)
            break;
        if (poll_now(w))
            continue; /* woken green threads are in our queues */
        if ((g = spin(w)) != NULL)
            break;
        if (atomic_load(&S.stopping))
            return NULL; /* shutdown waited for every green thread */
        idle_sleep(w);
    }
    stop_spinning(w, true);
    return g;
}

/* ---- running green threads -------------------------------------------- */

/* Run g until it switches back, then do what it switched back for. */
static void run(weft__worker *w, weft_green *g)
{
    uint32_t rs = WEFT__G_PARKING;

    /* Release, not seq_cst (an xchg on x86-64, ~5 ns): every other access
     * to run_state is a read-modify-write of this one location, whose
     * modification order is total whatever the memory order, and no party
     * reads another location after it and relies on it (the park token
     * needs no Dekker pair: block's CAS and a waker's CAS decide between
     * them on run_state alone).  Release keeps the queue hand-off's
     * writes ordered before it for a waker that reads RUNNING. */
    atomic_store_explicit(&g->run_state, WEFT__G_RUNNING,
                          memory_order_release);
    w->current = g;
    weft__set_self(&g->waiter);
    weft__gctx_switch(&w->sched, &g->gctx, 0);
    weft__set_self(w->os_self); /* this loop never changes OS thread */
    w->current = NULL;
    switch (g->switch_why) {
    case WEFT__SW_PARK:
        /* The context is saved: from now on a waker may resume it. */
        if (!atomic_compare_exchange_strong(&g->run_state, &rs,
                                            WEFT__G_PARKED)) {
            WEFT_ASSERT(rs == WEFT__G_RUNNABLE);
            weft__sched_ready(g);
        }
        break;
    case WEFT__SW_YIELD:
        /* A token (NOTIFIED) may be dropped here: yield is never called
         * between a park's last check of its waiter and its block. */
        atomic_store_explicit(&g->run_state, WEFT__G_RUNNABLE,
                              memory_order_release); /* as in RUNNING */
        push_local(w, g);
        break;
    case WEFT__SW_EXIT:
        weft__green_reap(g);
        break;
    default:
        WEFT_PANIC("green thread %s switched out for no reason", g->name);
    }
}

void weft__green_switch_out(weft_green *g, int why)
{
    weft__worker *w = weft__worker_self();

    WEFT_ASSERT(w != NULL && w->current == g);
    g->switch_why = why;
    weft__gctx_switch(&g->gctx, &w->sched, why == WEFT__SW_EXIT);
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
    tls_worker = NULL;
    return 0;
}

/* ---- live green threads ----------------------------------------------- */

void weft__sched_live_add(void)
{
    atomic_fetch_add(&S.live, 1);
}

long weft__sched_live(void)
{
    return atomic_load(&S.live);
}

void weft__sched_live_done(void)
{
    if (atomic_fetch_sub(&S.live, 1) == 1) {
        weft_lock_acquire(&S.live_lock, WEFT_FOREVER);
        weft_cond_notify_all(&S.live_cond);
        weft_lock_release(&S.live_lock);
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

static void stop_workers(int n)
{
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
    S.workers = calloc((size_t)n, sizeof *S.workers);
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
