/* green.h - the green layer's internal interface: the green thread, the
 * worker, the run queue, the timer heap, the switch wrapper and the park
 * backend, shared by the files of src/green/.
 *
 * Files: green.c (the API: spawn, join, exit, yield, names, locals),
 * sched.c (workers, their loop, the global queue, idle and wake-up, the
 * direct switch between green threads),
 * runq.c (per-worker run queue), timer.c (per-worker timer heap),
 * park_green.c (block/unblock for park), switch.c (the context switch with
 * the sanitizer and Valgrind annotations: the only file with #ifs for them),
 * monitor.c (the monitor thread; the hand-off to spare workers it triggers
 * is in sched.c).
 *
 * run_state of a green thread (atomic; see park_green.c for the protocol):
 *   RUNNABLE  on a run queue (or about to be pushed by whoever made it so)
 *   RUNNING   running on a worker (or switching out of it)
 *   NOTIFIED  running, and a wake-up came while it was not parked: its next
 *             block returns at once, or the completion of a park already
 *             switching out requeues it (a park token)
 *   PARKING   no longer entered (kept for the debug layer's table): a
 *             green thread switching out to park stays RUNNING until
 *             whatever runs next on its worker (the scheduler or the green
 *             thread it switched to directly) commits PARKED, once its
 *             context is saved
 *   PARKED    switched out; the first waker (or its timer) makes it RUNNABLE
 *             and pushes it
 *   DEAD      returned; the scheduler frees its stack after switching away
 *   EXITED    reaped (stack freed, no code of it left to run), its handle
 *             not yet joined or detached; wakers ignore it
 *   FREE      in the struct pool (green.c); wakers ignore it
 *
 * Lock order: the spare lock (sched.c) before a worker's timer lock before
 * the sched lock (a timer that fires wakes a green thread, and that may wake
 * an idle worker); the sched lock, the struct pool's lock and the key lock
 * are leaves.  None is held
 * across a switch or a park.
 */
#ifndef WEFT_GREEN_INTERNAL_H
#define WEFT_GREEN_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "park/park.h"
#include "platform/context.h"
#include "platform/stack.h"
#include "weft/green.h"
#include "weft/sync.h"
#include "weft/thread.h"

enum {
    WEFT__G_RUNNABLE = 0,
    WEFT__G_RUNNING = 1,
    WEFT__G_NOTIFIED = 2,
    WEFT__G_PARKING = 3,
    WEFT__G_PARKED = 4,
    WEFT__G_DEAD = 5,
    WEFT__G_FREE = 6, /* in the struct pool */
    WEFT__G_EXITED = 7,
};

/* Why a green thread switched out (written by the green thread before the
 * switch, read after it by whatever ran next on the worker: the scheduler,
 * or the next green thread when the switch was direct).  NONE (set at
 * spawn): it never ran, and its context is not made yet - whoever is about
 * to switch to it first calls weft__green_start (green.c, "Starting"). */
enum {
    WEFT__SW_NONE = 0,
    WEFT__SW_PARK = 1,
    WEFT__SW_YIELD = 2,
    WEFT__SW_EXIT = 3,
};

/* Inline room for a name: "Green-" and a 20-digit id fit, as do most
 * explicit names; a longer explicit name is copied to the heap. */
#define WEFT__GREEN_NAME_BUF 32
#define WEFT__GREEN_KEYS 64
/* Free green structs, and stacks, a worker keeps for itself (each). */
#define WEFT__GREEN_CACHE 64

/* A context plus what the sanitizers need to know about it (switch.c). */
typedef struct weft__gctx {
    weft__context ctx;
    const void *lo;  /* its stack, for AddressSanitizer (the scheduler's
                        is learnt at the first switch back from it) */
    size_t size;
    void *fiber;     /* ThreadSanitizer's fiber */
    void *fake;      /* AddressSanitizer's fake stack while switched out */
    unsigned vg_id;  /* Valgrind's stack id */
} weft__gctx;

typedef struct weft__worker weft__worker;

struct weft_green {
    weft__waiter waiter;           /* owner = this; see park_green.c */
    _Atomic uint32_t run_state;    /* atomic; WEFT__G_* */
    int switch_why;                /* written by the green thread, read
                                      after the switch on the same worker
                                      (see WEFT__SW_*) */
    weft__gctx gctx;               /* owner: whoever runs it */
    weft__stack stack;             /* freed by the scheduler after exit */
    weft_green *sched_next;        /* global queue link; guarded by the
                                      sched lock */
    /* Timer (timer.c). */
    _Atomic(weft__worker *) timer_worker; /* whose heap holds the entry;
                                             atomic */
    int64_t timer_when;            /* guarded by timer_worker's lock */
    int heap_idx;                  /* guarded by timer_worker's lock; -1 */
    /* Lifetime. */
    _Atomic int refs;              /* handle + running; 0: back to pool */
    _Atomic int handle;            /* 0 owned, 1 joined, 2 detached */
    /* Join (green.c, "join"): JOIN_DONE once fn has returned, JOIN_WAITER
     * once a joiner may wait on done, which is set only then. */
    _Atomic uint32_t join_state;
    weft_event done;               /* set at exit if a joiner waits */
    int result;                    /* written before done is set */
    weft_green_fn fn;              /* constant while alive */
    void *arg;
    uint64_t id;                   /* constant while alive */
    const char *site;              /* spawn site, static string */
    const char *name;              /* name_buf, or a malloc'd copy of an
                                      explicit name too long for it (freed
                                      when the struct goes back to the
                                      pool); constant while alive */
    void **locals;                 /* WEFT__GREEN_KEYS slots, allocated at
                                      the first key set (most green threads
                                      never set one); the thread's own */
    char name_buf[WEFT__GREEN_NAME_BUF]; /* "Green-<id>" or a short name */
};

/* ---- run queue (runq.c) ----------------------------------------------- */

#define WEFT__RUNQ_CAP 256

typedef struct weft__runq {
    _Atomic uint32_t head;         /* CAS by the owner and by thieves */
    _Atomic uint32_t tail;         /* stored by the owner only */
    _Atomic(weft_green *) slot[WEFT__RUNQ_CAP];
} weft__runq;

/* Owner only.  Push g at the tail; false if the ring is full.  A load, a
 * store and a store-release: thieves only ever move head. */
static inline bool weft__runq_push(weft__runq *q, weft_green *g)
{
    uint32_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);

    if (t - h >= WEFT__RUNQ_CAP)
        return false;
    atomic_store_explicit(&q->slot[t % WEFT__RUNQ_CAP], g,
                          memory_order_relaxed);
    atomic_store_explicit(&q->tail, t + 1, memory_order_release);
    return true;
}

/* Owner only.  Pop the head, or NULL.  The CAS stays: a thief may claim
 * the same head at once (runq.c). */
static inline weft_green *weft__runq_pop(weft__runq *q)
{
    uint32_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);

    while (h != t) {
        weft_green *g = atomic_load_explicit(&q->slot[h % WEFT__RUNQ_CAP],
                                             memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&q->head, &h, h + 1,
                                                  memory_order_release,
                                                  memory_order_acquire))
            return g;
    }
    return NULL;
}
/* Owner only, ring full: take half of it plus g, linked through
 * sched_next, oldest first; returns the first, *last the last, *n count. */
weft_green *weft__runq_take_half(weft__runq *q, weft_green *g,
                                 weft_green **last, int *n);
/* Thief (the owner of mine, whose ring is empty): move half of victim's
 * ring into mine and return one of them to run now, or NULL. */
weft_green *weft__runq_steal(weft__runq *mine, weft__runq *victim);
/* Approximate length; any thread. */
uint32_t weft__runq_len(weft__runq *q);

/* ---- workers and the scheduler (sched.c) ------------------------------ */

struct weft__worker {
    int id;
    weft__gctx sched;              /* the scheduler's context; owner only */
    weft__runq rq;
    /* Most recently woken.  Stored and loaded by the owner alone (no
     * read-modify-write); a spare takes it only through the steal gate
     * (sched.c, "spare workers"): atomic so that doing so is no race. */
    _Atomic(weft_green *) runnext;
    int runnext_streak;            /* owner only */
    /* The green thread that switched away last, until whatever ran next
     * here (the scheduler, or the green thread it switched to directly)
     * has completed its switch (sched.c, "the direct switch").  Owner
     * only: written and read on this worker's OS thread alone. */
    weft_green *prev;
    /* The green thread running, or NULL in the scheduler: stored by the
     * owner (release), read by the monitor and by thieves. */
    _Atomic(weft_green *) current;
    weft__waiter *os_self;         /* owner only: the worker thread's own
                                      waiter, restored after each switch */
    /* Scheduling rounds: stored by the owner alone (relaxed, no RMW), read
     * by the monitor, which calls a worker hogged when its tick stands
     * still while current is set. */
    _Atomic uint32_t tick;
    uint64_t rand;                 /* owner only */
    bool spinning;                 /* owner only */
    /* Timers (timer.c). */
    weft__waitq tlock;             /* guards heap, n, cap (a futex mutex) */
    weft_green **heap;
    int n, cap;
    _Atomic int64_t tnext;         /* earliest deadline or INT64_MAX */
    /* Idle. */
    _Atomic uint32_t sleep_word;   /* futex word: 1 while asleep */
    _Atomic uint32_t in_poll;      /* 1 while blocked in the poller instead
                                      of on sleep_word (sched.c) */
    int64_t polled_at;             /* owner only: last non-blocking poll */
    bool collecting;               /* owner only: in a poll's dispatch */
    int readied;                   /* owner only: green threads it made
                                      runnable */
    bool idle;                     /* guarded by the sched lock */
    bool credit;                   /* guarded by the sched lock: woken as
                                      a spinner by wakep */
    weft__worker *idle_next;       /* guarded by the sched lock */
    weft_thread *th;
    /* Hand-off (sched.c, "spare workers").  stealing: 0, 1 while a spare
     * takes runnext (set by CAS by the spare), 2 once the owner waits for
     * it to finish; rn_busy: 1 while the owner, in a green thread, updates
     * runnext.  The two make an asymmetric Dekker pair: the owner pays a
     * compiler barrier, the spare a membarrier(2). */
    _Atomic uint32_t stealing;
    _Atomic uint32_t rn_busy;
    bool spare;                    /* constant: a spare worker */
    _Atomic int spare_active;      /* a spare's: 1 while helping */
    _Atomic(weft__worker *) patron; /* a spare's: the worker it helps */
    _Atomic uint32_t patron_tick;  /* the patron's tick when it was seen
                                      hogged; the hog ends when it moves */
    /* The monitor's view of this worker: guarded by the spare lock. */
    uint32_t mon_tick;
    int64_t mon_since;             /* when mon_tick was first seen */
    bool mon_hog;                  /* hogged at the last round */
    bool mon_warned;               /* this episode's warning was logged */
    weft__worker *mon_helper;      /* the spare last sent to help it */
    /* The cache of free green structs and of stacks (green.c, "the
     * per-worker cache"): owner only, no lock. */
    int gcache_n;
    int scache_n;
    /* Owner only: set while an exiting green thread wakes its joiners,
     * which then queue at the ring's tail, not in runnext (sched.c,
     * weft__sched_ready; green.c, "Join"). */
    bool wake_tail;
    size_t scache_size;            /* the size of every cached stack */
    /* The stack of the green thread reaped last here (or a zeroed one):
     * its top is in the cache, and the next green thread to start here
     * runs on it (green.c, "Starting").  Owner only. */
    weft__stack hot_stack;
    /* Green-thread ids (green.c, next_worker_id): owner only. */
    uint64_t id_next, id_end;      /* the block being handed out */
    int id_len;                    /* strlen(id_text) */
    char id_text[WEFT__GREEN_NAME_BUF]; /* "Green-<id_next>" */
    weft_green *gcache[WEFT__GREEN_CACHE];
    weft__stack scache[WEFT__GREEN_CACHE];
    long live_credit;              /* owner only: sched.c, "live green
                                      threads" */
};

/* The worker the calling OS thread is, or NULL.  Not inlined and not
 * const: a green thread may move between workers at any switch. */
weft__worker *weft__worker_self(void) __attribute__((noinline));

/* Start the runtime if needed (0 or an error from weft_runtime_start). */
int weft__sched_ensure(void);
/* A new green thread is ready: queue it (local tail on a worker, else the
 * global queue) and wake a worker if needed. */
void weft__sched_spawned(weft_green *g);
/* g became RUNNABLE through a wake-up: push it (runnext on a worker, else
 * the global queue) and wake a worker if needed. */
void weft__sched_ready(weft_green *g);
/* A waiter that only the poller can wake has appeared outside a worker
 * (an OS thread waiting for a signal): make sure an idle worker watches
 * the poller.  Any thread. */
void weft__sched_need_poller(void);
/* Called by green.c: one more / one fewer green thread alive; w is the
 * caller's worker (owner) or NULL (sched.c, "live green threads"). */
void weft__sched_live_add(weft__worker *w);
void weft__sched_live_done(weft__worker *w);
long weft__sched_live(void);
/* Switch the running green thread g out of its worker, for reason why:
 * directly to the next green thread queued there when find_work would
 * pick one at once, else to the worker's scheduler; returns when g runs
 * again (maybe on another worker).  A yield with nothing else queued on
 * the worker may return at once. */
void weft__green_switch_out(weft_green *g, int why);
/* The first call of a green thread after weft__gctx_entered: completes
 * the switch of the green thread that started it directly, if one did. */
void weft__green_resumed(void);
/* Owner of w, about to switch to g for the first time (g->switch_why is
 * WEFT__SW_NONE): put g on w's hot stack and make its context. */
void weft__green_start(weft__worker *w, weft_green *g);
/* The scheduler ran g up to its exit: free its stack, drop its ref. */
void weft__green_reap(weft_green *g);
/* The worker w stops (or a spare rests): give its cached green structs
 * and stacks back to the global pools.  On w's OS thread, after the last
 * green thread ran there. */
void weft__green_cache_flush(weft__worker *w);
/* For tests: the id (0..n-1) of the worker running the caller, or -1
 * (spares have ids n and up). */
int weft__green_worker_id(void);

/* ---- the monitor's side of the scheduler (sched.c) -------------------- */

/* One round of the monitor (monitor.c) at time now: find workers running
 * one green thread for longer than interval ns while work waits for them,
 * log a warning per episode, and send a spare worker to each.  Returns
 * true while the runtime is busy (some worker runs a green thread or work
 * is queued), so the monitor knows to keep its rounds frequent. */
bool weft__sched_watch(int64_t now, int64_t interval);
/* Called by the monitor at each round: if green threads wait for I/O and
 * no worker has collected events for STALE_POLL_NS (every worker busy with
 * a hog) nor blocks in the poller, collect them here (the woken go to the
 * global queue, where spares find them; Go's sysmon does this).  Whether
 * it did. */
bool weft__sched_poll_stale(int64_t now);
/* For tests: spare workers started (alive) and helping now. */
int weft__sched_spares_started(void);
int weft__sched_spares_active(void);
/* The bound on spare workers of the running runtime (0 if none). */
int weft__sched_spares_max(void);

/* For the debug layer (src/debug/): whether every worker is idle (asleep
 * or about to sleep) with no green thread queued anywhere -- a hint only,
 * the answer may change at once; the deadlock check requires it before and
 * after its snapshots -- and the workers' thread function, which tells
 * their handles apart.  Any thread; reads atomics only. */
typedef struct weft__sched_facts {
    bool idle;
    weft_thread_fn worker_fn;
} weft__sched_facts;
void weft__sched_get_facts(weft__sched_facts *f);

/* For the debug layer: call fn(g, arg) for every green thread not in the
 * struct pool (spawned and not yet recycled: run_state is neither FREE nor
 * about to be), with the pool's lock held, so that none of them is recycled
 * and none of its constant fields (id, name, site) changes during the
 * call.  fn must copy what it needs, must not block or spawn, and reads
 * the changing fields (run_state, the waiter's) with atomic loads.
 * Returns how many it visited. */
long weft__green_walk(void (*fn)(weft_green *g, void *arg), void *arg);

/* ---- timers (timer.c) ------------------------------------------------- */

void weft__timer_init(weft__worker *w);
void weft__timer_fini(weft__worker *w);
/* On w's owner thread: add g's deadline to w's heap. */
void weft__timer_add(weft__worker *w, weft_green *g, int64_t when);
/* Any thread: remove g's entry wherever it is (no-op if none). */
void weft__timer_remove(weft_green *g);
/* On w's owner thread: wake every green thread whose deadline passed. */
void weft__timer_run(weft__worker *w, int64_t now);

/* ---- park backend (park_green.c) -------------------------------------- */

extern const struct weft__park_ops weft__green_park_ops;
/* Make g runnable if it is parked (or leave it a token if it is running).
 * Any thread; idempotent. */
void weft__green_wake(weft_green *g);

/* ---- switch (switch.c) ------------------------------------------------ */

/* The running OS thread's own context (a worker's scheduler). */
void weft__gctx_init_self(weft__gctx *c);
/* A new context that runs fn(arg) on stack s. */
void weft__gctx_make(weft__gctx *c, weft__stack *s, void (*fn)(void *),
                     void *arg);
/* Release what make allocated; c must not be running. */
void weft__gctx_destroy(weft__gctx *c);
/* Switch from `from` (running) to `to`; last: from never runs again. */
void weft__gctx_switch(weft__gctx *from, weft__gctx *to, int last);
/* The same for the direct switch between two green threads (sched.c, its
 * one caller): `to` was saved by this same call, unless it never ran. */
void weft__gctx_switch_peer(weft__gctx *from, weft__gctx *to);
/* How many green threads may live at once: unlimited, except under
 * ThreadSanitizer, whose fibers count against its limit of 8,128 threads
 * (spawn then fails with -EAGAIN rather than letting TSan kill the
 * process). */
long weft__gctx_limit(void);
/* The first call in a made context's function. */
void weft__gctx_entered(weft__gctx *self);

#endif
