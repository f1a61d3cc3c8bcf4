/* green.h - the green layer's internal interface: the green thread, the
 * worker, the run queue, the timer heap, the switch wrapper and the park
 * backend, shared by the files of src/green/.
 *
 * Files: green.c (the API: spawn, join, exit, yield, names, locals),
 * sched.c (workers, their loop, the global queue, idle and wake-up),
 * runq.c (per-worker run queue), timer.c (per-worker timer heap),
 * park_green.c (block/unblock for park), switch.c (the context switch with
 * the sanitizer and Valgrind annotations: the only file with #ifs for them).
 *
 * run_state of a green thread (atomic; see park_green.c for the protocol):
 *   RUNNABLE  on a run queue (or about to be pushed by whoever made it so)
 *   RUNNING   running on a worker
 *   NOTIFIED  running, and a wake-up came while it was not parked: its next
 *             block returns at once (a park token)
 *   PARKING   switching out to park; its worker will commit PARKED
 *   PARKED    switched out; the first waker (or its timer) makes it RUNNABLE
 *             and pushes it
 *   DEAD      returned; the scheduler frees its stack after switching away
 *
 * Lock order: a worker's timer lock before the sched lock (a timer that
 * fires wakes a green thread, and that may wake an idle worker); the sched
 * lock, the struct pool's lock and the key lock are leaves.  None is held
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
};

/* Why a green thread switched to its scheduler (written by the green
 * thread before the switch, read by the scheduler after it). */
enum {
    WEFT__SW_PARK = 1,
    WEFT__SW_YIELD = 2,
    WEFT__SW_EXIT = 3,
};

/* Inline room for a name: "Green-" and a 20-digit id fit, as do most
 * explicit names; a longer explicit name is copied to the heap. */
#define WEFT__GREEN_NAME_BUF 32
#define WEFT__GREEN_KEYS 64

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
    int switch_why;                /* written by the green thread, read by
                                      its scheduler after the switch */
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
    weft_event done;               /* set when fn has returned */
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
    weft_green *pool_next;         /* struct pool link; guarded by its lock */
    char name_buf[WEFT__GREEN_NAME_BUF]; /* "Green-<id>" or a short name */
};

/* ---- run queue (runq.c) ----------------------------------------------- */

#define WEFT__RUNQ_CAP 256

typedef struct weft__runq {
    _Atomic uint32_t head;         /* CAS by the owner and by thieves */
    _Atomic uint32_t tail;         /* stored by the owner only */
    _Atomic(weft_green *) slot[WEFT__RUNQ_CAP];
} weft__runq;

/* Owner only.  Push g at the tail; false if the ring is full. */
bool weft__runq_push(weft__runq *q, weft_green *g);
/* Owner only.  Pop the head, or NULL. */
weft_green *weft__runq_pop(weft__runq *q);
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
    weft_green *runnext;           /* owner only: most recently woken */
    int runnext_streak;            /* owner only */
    weft_green *current;           /* owner only */
    weft__waiter *os_self;         /* owner only: the worker thread's own
                                      waiter, restored after each switch */
    uint32_t tick;                 /* owner only */
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
    bool idle;                     /* guarded by the sched lock */
    bool credit;                   /* guarded by the sched lock: woken as
                                      a spinner by wakep */
    weft__worker *idle_next;       /* guarded by the sched lock */
    weft_thread *th;
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
/* Called by green.c: one more / one fewer green thread alive. */
void weft__sched_live_add(void);
void weft__sched_live_done(void);
long weft__sched_live(void);
/* Switch from the running green thread g to its worker's scheduler, for
 * reason why; returns when g runs again (maybe on another worker). */
void weft__green_switch_out(weft_green *g, int why);
/* The scheduler ran g up to its exit: free its stack, drop its ref. */
void weft__green_reap(weft_green *g);
/* For tests: the id (0..n-1) of the worker running the caller, or -1. */
int weft__green_worker_id(void);

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
/* How many green threads may live at once: unlimited, except under
 * ThreadSanitizer, whose fibers count against its limit of 8,128 threads
 * (spawn then fails with -EAGAIN rather than letting TSan kill the
 * process). */
long weft__gctx_limit(void);
/* The first call in a made context's function. */
void weft__gctx_entered(weft__gctx *self);

#endif
