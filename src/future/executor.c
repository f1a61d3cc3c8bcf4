/* executor.c - the executor: a FIFO of tasks and the workers that run them.
 *
 * Design.  A task is its future (src/future/future.h embeds fn, arg and a
 * queue link), so a submission is one allocation.  One guard (ex->idle's)
 * covers the queue, the idle workers and the counters.  A worker that finds
 * the queue empty parks on ex->idle, at the front: the most recently busy
 * worker is the first one handed work (warm caches; the others stay parked
 * and cost nothing).  submit hands its task straight to a parked worker
 * through the wait entry (e->data) when there is one, so a task never
 * waits in the queue while a worker sleeps; otherwise it queues the task
 * and, if fewer than max_workers run, starts one more (lazily, as Python's
 * _adjust_thread_count: idle workers are reused before a new one starts).
 *
 * Rejected: a weft_queue between submitters and workers.  It works, but it
 * cannot hand a task to a parked worker and count idle workers under one
 * lock, so the "start a worker only if none is idle" rule needs a second
 * lock or a racy count.
 *
 * The spinner and the inbox.  A thread-pool worker that finds no work
 * does not park at once: if no other worker is doing so, it becomes the
 * executor's spinning worker (ex->spinning) and polls, without the guard,
 * for up to the hand-off spin budget (about 50 us), as Go's scheduler
 * keeps one M spinning.  Only one spins: on two cores a second spinner
 * would take the submitter's core.  While a worker spins, or once every
 * worker has started and none is parked, submit pushes its task on a
 * lock-free stack (ex->inbox) instead of taking the guard, which the
 * submitter otherwise fights the workers for on every task; whoever takes
 * the guard next (the spinner, a worker in take, a submit, a shutdown)
 * moves the inbox, oldest first, to the queue's tail.  So tasks that come
 * one after another reach the spinner with no lock, hand-over or futex
 * wake-up, and a burst is taken in batches.  (Before the spinner, each
 * task of a burst was handed to a worker parked in a hand-off spin, one
 * guard round trip and one wake per task: a batch of 100,000 ran at
 * 0.7x Go's worker pool; see docs/BENCHMARKS.md.)  Three Dekker pairs
 * keep the inbox from losing work: a worker about to park raises parked
 * and then looks at the inbox, a submitter pushes and then looks at
 * parked; the spinner lowers spinning and then takes the guard and
 * drains, a submitter pushes and then looks at spinning; shutdown sets
 * closed and then drains, a submitter pushes and then looks at closed.  A
 * submitter that sees its push might be missed takes the guard and
 * settles: it hands the work to a parked worker, starts one, or (closed)
 * takes its task back out and refuses it, unless a worker already took
 * it.  Only submits that want the future use the inbox (the caller's
 * reference keeps the task valid while it settles), and only with an
 * unbounded queue.
 *
 * Shutdown sets a flag under the guard; parked workers are woken with no
 * task and exit once the queue is empty (or at once after cancelling it),
 * parked submitters get -EPIPE.  Waiting for the workers joins their
 * handles (ex->handles, guarded), so destroy frees ex only once no worker
 * can touch it.
 *
 * Broken.  A worker whose initializer fails marks ex broken: the queued
 * tasks fail with WEFT_EBROKEN, later submits return it, and the other
 * workers exit.
 *
 * References.  A queued or running task holds one reference to its future
 * (the executor's); the submitter gets another.  The worker drops the
 * executor's after completing the future.
 *
 * Lock order: ex->idle's guard, then a future's guard (cancel at shutdown
 * is done after dropping ours, so in practice they do not nest).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "future/executor.h"
#include "future/future.h"
#include "lib/assert.h"
#include "platform/platform.h"
#include "thread/thread.h"
#include "weft/error.h"
#include "weft/green.h"
#include "weft/log.h"

/* The fields fall in four groups, each on its own cache lines, so that
 * the submitter's per-task accesses (the flags it reads, the inbox it
 * pushes on) do not share a line with the workers' per-task writes (busy,
 * returning) or with the guard. */
#define LINE 64

struct weft_executor {
    /* Constant after create. */
    const struct weft__executor_kind *kind;
    int max_workers;
    size_t capacity;            /* 0: unbounded */
    char *prefix;
    int (*initializer)(void *);
    void *initarg;
    bool daemon;
    size_t stack_size;

    /* The guard and what it guards. */
    weft__waitq idle;           /* parked idle workers; its guard guards
                                   everything down to next_live */
    weft__waitq room;           /* submitters parked on a full queue */
    weft__waitq exited;         /* shutdown waiting for workers to exit */
    weft_future *head, *tail;   /* queued tasks, FIFO */
    _Atomic size_t pending;     /* tasks in the queue: written under the
                                   guard (pend_add), read by the spinner
                                   without it */
    int workers;                /* started and not yet exited */
    bool shutdown;
    bool broken;
    int broken_code;            /* the initializer's code */
    void **handles;             /* [max_workers]: workers not yet joined */
    int nstarted;               /* names: <prefix>_<nstarted> */
    weft_executor *next_live;   /* the exit policy's list (live_guard) */

    /* Read by every submit; written rarely. */
    _Alignas(LINE) _Atomic bool closed; /* shutdown or broken (set under
                                   the guard): the inbox is closed too */
    _Atomic bool all_started;   /* workers == max_workers */
    _Atomic int spinning;       /* 1 while a worker polls for work instead
                                   of parking (take_spin): raised under the
                                   guard, lowered by the spinner without
                                   it */
    _Atomic int parked;         /* workers parked, or about to park, on
                                   idle: raised under the guard, lowered
                                   by the worker once woken */
    _Atomic bool cancelling;    /* shutdown cancels pending work: also the
                                   tasks a worker took ahead (take) */

    /* Pushed on by submits, taken by workers. */
    _Alignas(LINE) _Atomic(weft_future *) inbox; /* submitted without the
                                   guard, newest first; moved to the queue
                                   (drain) under the guard by whoever takes
                                   it next */

    /* Written by workers around every task. */
    _Alignas(LINE) _Atomic int busy; /* workers starting or running a task:
                                   raised under the guard (a task handed
                                   over or popped, a worker reserved),
                                   lowered without it by the worker just
                                   before it completes its task, so that a
                                   submit that the completion lets through
                                   queues its task for this worker instead
                                   of starting another */
    _Atomic int returning;      /* workers between completing a task and
                                   taking the guard in take(): raised
                                   without the guard, lowered under it */
    char pad[LINE - 2 * sizeof(int)];
};

/* Tasks a green worker runs in a row before it yields. */
#define TASK_BUDGET 64
/* take() hands a worker up to 1 + STASH_MAX tasks when more than
 * STASH_QUEUE per worker wait. */
#define STASH_MAX 3
#define STASH_QUEUE 8

/* ---- the exit policy ---------------------------------------------------- */

/* Non-daemon thread pools still live, so that process exit can shut them
 * down before weft's thread registry waits for their workers (it waits
 * for every non-daemon thread; an idle worker would otherwise hold the
 * exit forever).  Our atexit handler is registered after the registry's,
 * so it runs first. */
static weft__waitq live_guard = WEFT__WAITQ_INIT;
static weft_executor *live_head;
static _Atomic bool exit_registered;
static _Atomic int pool_seq;

static void at_exit(void)
{
    weft__waitq_lock(&live_guard);
    weft_executor *ex = live_head;
    live_head = NULL;
    weft__waitq_unlock(&live_guard);
    /* Let queued work finish and join the workers, as Python's exit
     * handler joins its pools' threads.  Called from a worker (exit() in a
     * task), the wait is refused with -EDEADLK after the shutdown itself. */
    for (; ex != NULL; ex = ex->next_live)
        weft_executor_shutdown(ex, 0, WEFT_FOREVER);
}

static void live_add(weft_executor *ex)
{
    weft__registry_install_exit();
    if (!atomic_exchange(&exit_registered, true))
        atexit(at_exit);
    weft__waitq_lock(&live_guard);
    ex->next_live = live_head;
    live_head = ex;
    weft__waitq_unlock(&live_guard);
}

static void live_remove(weft_executor *ex)
{
    weft__waitq_lock(&live_guard);
    for (weft_executor **p = &live_head; *p != NULL; p = &(*p)->next_live) {
        if (*p == ex) {
            *p = ex->next_live;
            break;
        }
    }
    weft__waitq_unlock(&live_guard);
}

/* ---- create ------------------------------------------------------------- */

int weft__executor_create(weft_executor **out,
                          const struct weft__executor_kind *kind,
                          int default_workers,
                          const weft_executor_opts *opts)
{
    weft_executor_opts none = {0};
    if (opts == NULL)
        opts = &none;
    if (out == NULL || opts->max_workers < 0)
        return -EINVAL;
    weft_executor *ex = aligned_alloc(LINE, sizeof *ex);
    if (ex == NULL)
        return -ENOMEM;
    memset(ex, 0, sizeof *ex);
    ex->kind = kind;
    ex->idle = (weft__waitq)WEFT__WAITQ_INIT;
    ex->room = (weft__waitq)WEFT__WAITQ_INIT;
    ex->exited = (weft__waitq)WEFT__WAITQ_INIT;
    ex->max_workers = opts->max_workers > 0 ? opts->max_workers
                                            : default_workers;
    ex->capacity = opts->queue_capacity;
    ex->initializer = opts->initializer;
    ex->initarg = opts->initarg;
    ex->daemon = opts->daemon;
    ex->stack_size = opts->stack_size;
    ex->handles = calloc((size_t)ex->max_workers, sizeof *ex->handles);
    if (opts->name_prefix != NULL)
        ex->prefix = strdup(opts->name_prefix);
    else if (asprintf(&ex->prefix, "%s-%d", kind->name,
                      atomic_fetch_add(&pool_seq, 1)) < 0)
        ex->prefix = NULL;
    if (ex->handles == NULL || ex->prefix == NULL) {
        free(ex->handles);
        free(ex->prefix);
        free(ex);
        return -ENOMEM;
    }
    if (kind->os_threads && !ex->daemon)
        live_add(ex);
    *out = ex;
    return 0;
}

bool weft__executor_daemon(const weft_executor *ex)
{
    return ex->daemon;
}
size_t weft__executor_stack_size(const weft_executor *ex)
{
    return ex->stack_size;
}

/* ---- the worker --------------------------------------------------------- */

/* Change the queue's length.  Guard held (the only writers), so a load and
 * a store suffice; the spinner reads it without the guard. */
static void pend_add(weft_executor *ex, long d)
{
    size_t n = atomic_load_explicit(&ex->pending, memory_order_relaxed);
    atomic_store_explicit(&ex->pending, n + (size_t)d, memory_order_relaxed);
}

/* Pop the head of the queue.  Guard held; the queue is not empty. */
static weft_future *pop_locked(weft_executor *ex)
{
    weft_future *f = ex->head;
    ex->head = f->qnext;
    if (ex->head == NULL)
        ex->tail = NULL;
    f->qnext = NULL;
    pend_add(ex, -1);
    if (ex->capacity != 0)
        weft__wake_one(&ex->room, 0);
    return f;
}

/* Move the inbox to the tail of the queue, oldest first.  Guard held. */
static void drain_locked(weft_executor *ex)
{
    weft_future *f = atomic_exchange_explicit(&ex->inbox, NULL,
                                              memory_order_acquire);
    if (f == NULL)
        return;
    weft_future *rev = NULL, *last = f;
    size_t n = 0;
    while (f != NULL) { /* newest first: reverse */
        weft_future *next = f->qnext;
        f->qnext = rev;
        rev = f;
        f = next;
        n++;
    }
    if (ex->tail != NULL)
        ex->tail->qnext = rev;
    else
        ex->head = rev;
    ex->tail = last;
    pend_add(ex, (long)n);
}

/* Hand the head of the queue to a parked worker, if there is one (guard
 * held, queue not empty). */
static void hand_next_locked(weft_executor *ex)
{
    weft__wait_entry *e;
    while ((e = weft__waitq_pop(&ex->idle)) != NULL) {
        /* Unlinked before the wake: the woken worker reads qnext. */
        weft_future *t = pop_locked(ex);
        e->data = (uintptr_t)t;
        if (weft__wake(e, 0)) {
            atomic_fetch_add_explicit(&ex->busy, 1, memory_order_relaxed);
            return;
        }
        t->qnext = ex->head; /* that worker had left: put t back */
        ex->head = t;
        if (ex->tail == NULL)
            ex->tail = t;
        pend_add(ex, 1);
    }
}

/* Poll for work without the guard, as the executor's spinning worker
 * (spinning raised by the caller), until work or a shutdown shows or the
 * hand-off budget runs out; then lower spinning.  The caller takes the
 * guard and looks at the queue and the inbox next: a submitter that pushed
 * and then saw spinning still raised (both sequentially consistent) relies
 * on that look. */
static void take_spin(weft_executor *ex)
{
    for (unsigned i = 0; i < weft__handoff_spin_iters; i++) {
        if (atomic_load_explicit(&ex->inbox, memory_order_relaxed) != NULL ||
            atomic_load_explicit(&ex->pending, memory_order_relaxed) != 0 ||
            atomic_load_explicit(&ex->closed, memory_order_relaxed))
            break;
        weft__spin_step(i);
    }
    atomic_store(&ex->spinning, 0);
}

/* The next task for a worker, parking while there is none; NULL when the
 * worker should exit (shut down and drained, or broken).  back: the worker
 * comes back from a task and counted itself in ex->returning. */
static weft_future *take(weft_executor *ex, bool back)
{
    bool spun = false;
    weft__waitq_lock(&ex->idle);
    if (back)
        atomic_fetch_sub_explicit(&ex->returning, 1, memory_order_relaxed);
    for (;;) {
        drain_locked(ex);
        if (ex->head != NULL && !ex->broken) {
            atomic_fetch_add_explicit(&ex->busy, 1, memory_order_relaxed);
            weft_future *f = pop_locked(ex);
            /* A long queue: take a few more at once, one lock for several
             * tasks (the queue is shared by the submitters and every
             * worker); short queues are left for the other workers. */
            weft_future *last = f;
            for (int k = 0; k < STASH_MAX && ex->head != NULL &&
                            ex->pending > STASH_QUEUE * (size_t)ex->workers;
                 k++) {
                last->qnext = pop_locked(ex);
                last = last->qnext;
            }
            /* More work queued: wake one more worker for it, which will
             * do the same, so a burst queued while the others slept (see
             * returning) still spreads over every worker. */
            if (ex->head != NULL)
                hand_next_locked(ex);
            weft__waitq_unlock(&ex->idle);
            return f;
        }
        if (ex->shutdown || ex->broken) {
            weft__waitq_unlock(&ex->idle);
            return NULL;
        }
        /* No work.  One worker of a thread pool polls for it a while
         * before parking (Go's spinning M): tasks that come one after
         * another then reach it through the inbox, without the guard, a
         * hand-over or a futex wake-up, and a burst is taken in batches.
         * The others park at once: a second spinner would only take a core
         * from the submitter.  Green workers never spin (they would hold
         * their OS thread). */
        if (!spun && ex->kind->os_threads &&
            atomic_load_explicit(&ex->spinning, memory_order_relaxed) == 0) {
            atomic_store_explicit(&ex->spinning, 1, memory_order_relaxed);
            weft__waitq_unlock(&ex->idle);
            spun = true;
            take_spin(ex);
            weft__waitq_lock(&ex->idle);
            continue;
        }
        /* Dekker with submit's fast path: announce the park, then look at
         * the inbox once more; submit pushes, then looks at parked.  One
         * of the two sees the other (both sequentially consistent). */
        atomic_fetch_add(&ex->parked, 1);
        if (atomic_load(&ex->inbox) != NULL) {
            atomic_fetch_sub(&ex->parked, 1);
            continue;
        }
        weft__wait_entry e;
        e.data = 0;
        /* Workers are never cancelled (nothing hands out their handles),
         * and they wait without a deadline, so the wait ends only by a
         * wake: with a task (busy already counted by the waker) or
         * without one (shutdown). */
        int rc = weft__wait_on(&ex->idle, &e, true, WEFT_FOREVER,
                               "executor idle", ex);
        WEFT_ASSERT(rc == 0);
        atomic_fetch_sub(&ex->parked, 1);
        if (e.data != 0)
            return (weft_future *)e.data;
        weft__waitq_lock(&ex->idle);
    }
}

/* Lower busy and count the worker as on its way back to take(). */
static void coming_back(weft_executor *ex)
{
    atomic_fetch_add_explicit(&ex->returning, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&ex->busy, 1, memory_order_relaxed);
}

/* Run f; last: no more stashed tasks follow, so the worker is about to
 * come back to take(). */
static void run(weft_executor *ex, weft_future *f, bool last)
{
    if (weft_future_set_running(f) != 0) {
        if (last)
            coming_back(ex);
        weft_future_release(f); /* cancelled while queued */
        return;
    }
    weft__waiter *self = weft__self();
    self->task = f;
    void *result = NULL;
    int rc = f->fn(f->arg, &result);
    self = weft__self();
    self->task = NULL;
    if (last)
        coming_back(ex);
    if (rc == 0) {
        weft_future_set_result(f, result);
    } else {
        char *msg = f->task_msg;
        f->task_msg = NULL;
        if (msg == NULL)
            msg = strdup(weft_strerror(rc));
        weft__future_fail_with(f, rc < 0 ? rc : -rc, msg);
    }
    weft_future_release(f);
}

/* Fail every queued task with WEFT_EBROKEN.  Guard held on entry, dropped
 * on return. */
static void fail_queue_unlock(weft_executor *ex)
{
    atomic_store(&ex->closed, true);
    drain_locked(ex);
    weft_future *f = ex->head;
    ex->head = ex->tail = NULL;
    atomic_store_explicit(&ex->pending, 0, memory_order_relaxed);
    weft__wake_all(&ex->room, WEFT_EBROKEN);
    weft__wake_all(&ex->idle, 0);
    int code = ex->broken_code;
    weft__waitq_unlock(&ex->idle);
    while (f != NULL) {
        weft_future *next = f->qnext;
        char *msg = NULL;
        if (asprintf(&msg, "the executor is broken: a worker's initializer "
                           "failed with %s (%s)",
                     weft_strerror(code), weft_errname(code)) < 0)
            msg = NULL;
        weft__future_fail_with(f, WEFT_EBROKEN, msg);
        weft_future_release(f);
        f = next;
    }
}

int weft__executor_worker(void *arg)
{
    weft_executor *ex = arg;
    if (ex->initializer != NULL) {
        int rc = ex->initializer(ex->initarg);
        if (rc != 0) {
            weft_error("%s: a worker's initializer failed: %s (%s); the "
                       "executor is broken",
                       ex->prefix, weft_strerror(rc), weft_errname(rc));
            weft__waitq_lock(&ex->idle);
            if (!ex->broken) {
                ex->broken = true;
                ex->broken_code = rc;
            }
            fail_queue_unlock(ex);
            atomic_fetch_sub_explicit(&ex->busy, 1, memory_order_relaxed);
            weft__waitq_lock(&ex->idle);
            goto out;
        }
    }
    atomic_fetch_sub_explicit(&ex->busy, 1, memory_order_relaxed);
    weft_future *f;
    unsigned ran = 0;
    bool back = false;
    while ((f = take(ex, back)) != NULL) {
        back = true;
        /* take() may hand over a few tasks at once (a stash linked by
         * qnext): run them in order; shutdown may cancel them meanwhile. */
        for (bool stashed = false; f != NULL; stashed = true) {
            weft_future *next = f->qnext;
            f->qnext = NULL;
            if (stashed &&
                atomic_load_explicit(&ex->cancelling, memory_order_relaxed))
                weft_future_cancel(f); /* still PENDING: queued, in effect */
            run(ex, f, next == NULL);
            f = next;
        }
        /* A green worker that always finds work never parks: let the
         * other green threads of its OS thread run now and then (Tokio's
         * cooperative budget), rather than hog it until the monitor
         * notices. */
        if (++ran % TASK_BUDGET == 0 && ex->kind->yield != NULL)
            ex->kind->yield();
    }
    weft__waitq_lock(&ex->idle);
out:
    ex->workers--;
    atomic_store(&ex->all_started, false);
    if (ex->workers == 0)
        weft__wake_all(&ex->exited, 0);
    weft__waitq_unlock(&ex->idle);
    return 0;
}

/* ---- submit ------------------------------------------------------------- */

/* Take f back out of the queue if it is still there.  Guard held. */
static bool unlink_locked(weft_executor *ex, weft_future *f)
{
    weft_future *prev = NULL;
    for (weft_future *t = ex->head; t != NULL; prev = t, t = t->qnext) {
        if (t != f)
            continue;
        if (prev != NULL)
            prev->qnext = f->qnext;
        else
            ex->head = f->qnext;
        if (ex->tail == f)
            ex->tail = prev;
        f->qnext = NULL;
        pend_add(ex, -1);
        return true;
    }
    return false;
}

/* Start a worker for the slot the caller reserved (workers and busy
 * already counted).  On failure, undo the count and, if no worker is left
 * to run them, take back f (it is still queued: nobody else pops while
 * the queue has no worker). */
static int start_worker(weft_executor *ex, weft_future *f)
{
    char name[WEFT_THREAD_NAME_MAX];
    weft__waitq_lock(&ex->idle);
    int n = ++ex->nstarted;
    weft__waitq_unlock(&ex->idle);
    snprintf(name, sizeof name, "%s_%d", ex->prefix, n - 1);
    void *h = NULL;
    int rc = ex->kind->start(ex, name, &h);
    weft__waitq_lock(&ex->idle);
    if (rc == 0) {
        for (int i = 0; i < ex->max_workers; i++) {
            if (ex->handles[i] == NULL) {
                ex->handles[i] = h;
                break;
            }
        }
        weft__waitq_unlock(&ex->idle);
        return 0;
    }
    ex->workers--;
    atomic_store(&ex->all_started, false);
    atomic_fetch_sub_explicit(&ex->busy, 1, memory_order_relaxed);
    if (ex->workers > 0) {
        weft__waitq_unlock(&ex->idle);
        weft_warning("%s: could not start another worker: %s", ex->prefix,
                     weft_strerror(rc));
        return 0;
    }
    /* No worker at all: unlink f, which must still be queued. */
    unlink_locked(ex, f);
    if (ex->workers == 0)
        weft__wake_all(&ex->exited, 0);
    weft__waitq_unlock(&ex->idle);
    return rc;
}

/* Hand the queue's head to a parked worker (guard held), unless a worker
 * is on its way back from a task or spinning: it will find the queue's
 * work within a few instructions, while a parked worker may be asleep in
 * the kernel (a futex wake-up costs tens of microseconds; Go's scheduler
 * likewise wakes no one while a spinning M exists).  The spinner lowers
 * spinning before it takes the guard, so if it did so before our critical
 * section we see it lowered, and otherwise it sees the queue. */
static void hand_unless_coming_locked(weft_executor *ex)
{
    if (ex->head != NULL &&
        atomic_load_explicit(&ex->returning, memory_order_relaxed) == 0 &&
        atomic_load_explicit(&ex->spinning, memory_order_relaxed) == 0)
        hand_next_locked(ex);
}

/* Queue f (guard held), parking while a bounded queue is full, and hand
 * the queue's head to a parked worker if one may.  Returns with the guard
 * held on success: 0 if work is left waiting in the queue, 1 if not (a
 * worker has it); with the guard dropped on failure (a negative code). */
static int enqueue_locked(weft_executor *ex, weft_future *f,
                          int64_t deadline)
{
    for (;;) {
        drain_locked(ex); /* older than f */
        if (ex->broken) {
            weft__waitq_unlock(&ex->idle);
            return WEFT_EBROKEN;
        }
        if (ex->shutdown) {
            weft__waitq_unlock(&ex->idle);
            return -EPIPE;
        }
        /* Room, or a parked worker (then the queue is empty in effect:
         * workers park only when they find it so). */
        if (ex->capacity == 0 || ex->pending < ex->capacity ||
            !weft__waitq_empty(&ex->idle))
            break;
        weft__wait_entry me;
        int rc = weft__wait_on_under(&ex->idle, &ex->room, &me, false,
                                     deadline, "executor submit", ex);
        if (rc != 0) {
            weft__waitq_unlock(&ex->idle);
            return rc;
        }
        weft__waitq_lock(&ex->idle);
    }
    f->qnext = NULL;
    if (ex->tail != NULL)
        ex->tail->qnext = f;
    else
        ex->head = f;
    ex->tail = f;
    pend_add(ex, 1);
    hand_unless_coming_locked(ex);
    return ex->head == NULL ? 1 : 0;
}

/* Whether work waits with every worker busy and room for one more: then
 * reserve the slot (counted in workers and busy) and return true; the
 * caller starts the worker (start_worker) after dropping the guard.  Guard
 * held. */
static bool reserve_worker_locked(weft_executor *ex)
{
    /* None is parked (the work would have been handed over) and none is
     * about to look (it would have lowered busy). */
    if (ex->head == NULL ||
        atomic_load_explicit(&ex->busy, memory_order_relaxed) <
            ex->workers ||
        ex->workers >= ex->max_workers)
        return false;
    ex->workers++;
    atomic_store(&ex->all_started, ex->workers == ex->max_workers);
    atomic_fetch_add_explicit(&ex->busy, 1, memory_order_relaxed);
    return true;
}

/* A green thread that submits a burst never parks, and the workers it
 * wakes may be queued behind it on its own OS thread: yield now and then
 * (the same budget as a worker's). */
static void yield_now_and_then(void)
{
    static _Thread_local unsigned submits;
    if (++submits % TASK_BUDGET == 0 &&
        weft__self()->kind == WEFT__WAITER_GREEN)
        weft_green_yield();
}

/* Whether a task pushed on the inbox now is sure to be taken without our
 * help: a worker spinning (it takes the guard and drains after it stops
 * spinning), or every worker started and none parked (each comes back to
 * take() and drains).  Not if the executor is closed. */
static bool inbox_covered(weft_executor *ex)
{
    if (atomic_load(&ex->closed))
        return false;
    return atomic_load(&ex->spinning) != 0 ||
           (atomic_load(&ex->all_started) && atomic_load(&ex->parked) == 0);
}

/* The fast path of submit, while a worker spins or every worker is busy:
 * push f on the inbox without the guard; the workers drain it into the
 * queue.  If that no longer holds after the push (a worker parked or
 * stopped spinning meanwhile: the Dekker pairs with take and take_spin),
 * or the executor closed, take the guard and settle: hand the work to a
 * parked worker, reserve a new worker (*start), or refuse f if it is still
 * queued after a shutdown (a worker that already took it runs it; a
 * shutdown that cancelled or failed it has said so in its future).  The
 * caller holds a reference to f, so f stays valid throughout.  0 or a
 * refusal code. */
static int submit_fast(weft_executor *ex, weft_future *f, bool *start)
{
    weft_future *old = atomic_load_explicit(&ex->inbox,
                                            memory_order_relaxed);
    do {
        f->qnext = old;
    } while (!atomic_compare_exchange_weak(&ex->inbox, &old, f));
    if (inbox_covered(ex))
        return 0;
    int rc = 0;
    weft__waitq_lock(&ex->idle);
    drain_locked(ex);
    if (ex->shutdown || ex->broken) {
        if (unlink_locked(ex, f))
            rc = ex->broken ? WEFT_EBROKEN : -EPIPE;
    } else {
        hand_unless_coming_locked(ex);
        *start = reserve_worker_locked(ex);
    }
    weft__waitq_unlock(&ex->idle);
    return rc;
}

int weft_executor_submit(weft_executor *ex, weft_task_fn fn, void *arg,
                         weft_future **out, int64_t deadline)
{
    if (ex == NULL || fn == NULL)
        return -EINVAL;
    weft_future *f = malloc(sizeof *f);
    if (f == NULL)
        return -ENOMEM;
    weft__future_init(f);
    f->fn = fn;
    f->arg = arg;
    f->exec = ex;
    /* The caller's reference before the task is visible to a worker,
     * which may run it and drop the executor's at once. */
    if (out != NULL)
        atomic_store_explicit(&f->refs, 2, memory_order_relaxed);
    bool start = false;
    if (out != NULL && ex->capacity == 0 && inbox_covered(ex)) {
        int frc = submit_fast(ex, f, &start);
        if (frc < 0) {
            free(f);
            return frc;
        }
    } else {
        weft__waitq_lock(&ex->idle);
        int rc = enqueue_locked(ex, f, deadline);
        if (rc < 0) {
            free(f);
            return rc;
        }
        start = reserve_worker_locked(ex);
        weft__waitq_unlock(&ex->idle);
    }
    if (out != NULL)
        *out = f;
    yield_now_and_then();
    if (start) {
        int src = start_worker(ex, f);
        if (src != 0) {
            if (out != NULL) {
                *out = NULL;
                weft_future_release(f);
            }
            weft_future_release(f);
            return src;
        }
    }
    return 0;
}

/* ---- task messages ------------------------------------------------------ */

int weft_task_fail(int code, const char *fmt, ...)
{
    if (code >= 0 || fmt == NULL)
        return code;
    weft_future *f = weft__self()->task;
    if (f == NULL)
        return code;
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (msg != NULL) {
        free(f->task_msg);
        f->task_msg = msg;
    }
    return code;
}

/* ---- shutdown ----------------------------------------------------------- */

/* Whether the caller is running a task of ex (it must not wait for ex's
 * workers: it is one of them). */
static bool called_from_worker(weft_executor *ex)
{
    weft_future *t = weft__self()->task;
    return t != NULL && t->exec == ex;
}

static int join_workers(weft_executor *ex, int64_t deadline)
{
    for (;;) {
        void *h = NULL;
        int slot = -1;
        weft__waitq_lock(&ex->idle);
        for (int i = 0; i < ex->max_workers && h == NULL; i++) {
            if (ex->handles[i] != NULL) {
                h = ex->handles[i];
                ex->handles[i] = NULL;
                slot = i;
            }
        }
        if (h == NULL) {
            /* Every handle is joined (or being joined by another
             * shutdown); wait until no worker is left at all. */
            while (ex->workers > 0) {
                weft__wait_entry e;
                /* exited is kept under idle's guard (the exiting worker
                 * wakes it holding that guard), so that is the guard the
                 * wait drops. */
                int rc = weft__wait_on_under(&ex->idle, &ex->exited, &e,
                                             false, deadline,
                                             "executor shutdown", ex);
                if (rc != 0) {
                    weft__waitq_unlock(&ex->idle);
                    return rc;
                }
                weft__waitq_lock(&ex->idle);
            }
            weft__waitq_unlock(&ex->idle);
            return 0;
        }
        weft__waitq_unlock(&ex->idle);
        int rc = ex->kind->join(h, deadline);
        if (rc != 0) {
            weft__waitq_lock(&ex->idle);
            ex->handles[slot] = h;
            weft__waitq_unlock(&ex->idle);
            return rc;
        }
    }
}

int weft_executor_shutdown(weft_executor *ex, unsigned flags,
                           int64_t deadline)
{
    if (ex == NULL)
        return -EINVAL;
    weft_future *cancelled = NULL;
    weft__waitq_lock(&ex->idle);
    ex->shutdown = true;
    /* Closed first, then drained: a submit whose push comes after the
     * drain sees closed (both sequentially consistent) and settles. */
    atomic_store(&ex->closed, true);
    drain_locked(ex);
    if (flags & WEFT_SHUTDOWN_CANCEL_PENDING) {
        atomic_store_explicit(&ex->cancelling, true, memory_order_relaxed);
        cancelled = ex->head;
        ex->head = ex->tail = NULL;
        atomic_store_explicit(&ex->pending, 0, memory_order_relaxed);
    }
    weft__wake_all(&ex->idle, 0);
    weft__wake_all(&ex->room, -EPIPE);
    weft__waitq_unlock(&ex->idle);
    while (cancelled != NULL) {
        weft_future *next = cancelled->qnext;
        weft_future_cancel(cancelled);
        weft_future_release(cancelled);
        cancelled = next;
    }
    if (flags & WEFT_SHUTDOWN_NOWAIT)
        return 0;
    if (called_from_worker(ex))
        return -EDEADLK;
    return join_workers(ex, deadline);
}

int weft_executor_destroy(weft_executor *ex)
{
    if (ex == NULL)
        return -EINVAL;
    if (called_from_worker(ex))
        return -EDEADLK;
    int rc = weft_executor_shutdown(ex, 0, WEFT_FOREVER);
    if (rc != 0)
        return rc;
    if (ex->kind->os_threads && !ex->daemon)
        live_remove(ex);
    /* The last worker woke us holding ex->idle's guard, and join proved
     * it has returned; take the guard once more so that no waker is still
     * inside it. */
    weft__waitq_lock(&ex->idle);
    weft__waitq_unlock(&ex->idle);
    free(ex->handles);
    free(ex->prefix);
    free(ex);
    return 0;
}

int weft_executor_workers(weft_executor *ex)
{
    weft__waitq_lock(&ex->idle);
    int n = ex->workers;
    weft__waitq_unlock(&ex->idle);
    return n;
}

size_t weft_executor_pending(weft_executor *ex)
{
    weft__waitq_lock(&ex->idle);
    drain_locked(ex);
    size_t n = ex->pending;
    weft__waitq_unlock(&ex->idle);
    return n;
}

bool weft_executor_broken(weft_executor *ex)
{
    weft__waitq_lock(&ex->idle);
    bool b = ex->broken;
    weft__waitq_unlock(&ex->idle);
    return b;
}

int weft__executor_max_workers(const weft_executor *ex)
{
    return ex->max_workers;
}
