/* offload.c - the offload pool: runs calls that block an OS thread (a
 * regular-file read, getaddrinfo, a long computation) on pool threads while
 * the caller, green or OS thread, parks.
 *
 * Design (Tokio's spawn_blocking, libuv's and nginx's thread pools).  A job
 * lives on the caller's stack: the function, its argument, its result, a
 * state and a wait queue for the caller.  weft_offload appends it to the
 * pool's FIFO and wakes one idle pool thread, or starts a new one while
 * fewer than max (WEFT_OFFLOAD_THREADS, default 64) exist; then it parks on
 * the job until the job is done.  A pool thread takes the oldest job, marks
 * it RUNNING, calls it with no lock held, stores the result, marks it DONE
 * and wakes its caller; with no job it waits idle_ns (WEFT_OFFLOAD_IDLE_MS,
 * default 5 s) for one, then exits, so an idle process keeps no pool
 * threads.  Threads start lazily: a process that never offloads has none.
 *   (Rejected: a weft_queue of job pointers - a caller that times out must
 *   take its job back out of the queue before its stack frame goes, which a
 *   FIFO queue cannot do; and a fixed pool started up front, as libuv does.)
 * Deadline and cancellation count only while the job is QUEUED: the caller
 * unlinks it and returns -ETIMEDOUT/-ECANCELED, and fn never runs.  Once fn
 * has started, the caller waits for it whatever happens (an OS thread cannot
 * be stopped safely in the middle of a call): a cancellation that arrives
 * meanwhile is set aside (weft__waiter_uncancel) and restored before the
 * call returns, so the caller's next blocking call sees it.
 * Invariants: a job is on the list iff QUEUED; nthreads counts the pool
 * threads that have not decided to exit; a job's caller returns only after
 * taking the guard once the job is DONE, so the pool thread that woke it has
 * finished with the job's wait queue.
 * Locking: P.guard (the guard of a wait queue: a futex mutex, never held
 * across fn or a park) guards everything in P but the atomics, and every
 * job's state, result, link and wait queue.  Idle pool threads wait on
 * P.idle and callers on their job's queue, both under P.guard
 * (weft__wait_on_under).
 */
#include "io/offload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "debug/debug.h"
#include "park/park.h"
#include "thread/thread.h"
#include "weft/error.h"
#include "weft/io.h"
#include "weft/log.h"
#include "weft/thread.h"
#include "weft/time.h"

#define DEFAULT_THREADS 64
#define MAX_THREADS 1024
#define DEFAULT_IDLE_MS 5000

enum { QUEUED = 0, RUNNING = 1, DONE = 2 };

typedef struct job {
    int (*fn)(void *arg);
    void *arg;
    int result;
    int state;
    struct job *next;
    weft__waitq done;  /* its caller waits here, under P.guard */
} job;

static struct {
    weft__waitq guard;   /* only its guard is used */
    weft__waitq idle;    /* idle pool threads; under guard */
    job *head, *tail;
    int max;             /* 0: configuration not read yet */
    int64_t idle_ns;
    int nthreads;
    int running;         /* fn calls in progress */
    unsigned long seq;   /* for thread names */
    _Atomic int nthreads_pub, peak;
} P; /* zero: both wait queues empty, nothing configured */

static long env_long(const char *name, long dflt, long lo, long hi)
{
    const char *s = getenv(name);
    char *end;
    long v;

    if (s == NULL || *s == '\0')
        return dflt;
    v = strtol(s, &end, 10);
    return *end == '\0' && v >= lo && v <= hi ? v : dflt;
}

/* The deadlock check's probe: jobs queued or running (an offloaded call
 * will wake its caller). */
static long in_flight(void)
{
    long n;

    weft__waitq_lock(&P.guard);
    n = P.running;
    for (job *j = P.head; j != NULL; j = j->next)
        n++;
    weft__waitq_unlock(&P.guard);
    return n;
}

/* Guard held. */
static void configure(void)
{
    if (P.max != 0)
        return;
    weft__debug_set_offload_probe(in_flight);
    P.max = (int)env_long("WEFT_OFFLOAD_THREADS", DEFAULT_THREADS, 1,
                          MAX_THREADS);
    P.idle_ns = env_long("WEFT_OFFLOAD_IDLE_MS", DEFAULT_IDLE_MS, 1,
                         86400000L) * WEFT_NSEC_PER_MSEC;
}

/* Guard held: take j off the list (it is QUEUED). */
static void unlink_job(job *j)
{
    job **p = &P.head, *prev = NULL;

    while (*p != j) {
        prev = *p;
        p = &(*p)->next;
    }
    *p = j->next;
    if (P.tail == j)
        P.tail = prev;
}

/* Guard held on entry and on return. */
static job *next_job(weft__wait_entry *e)
{
    job *j;
    int rc;

    while ((j = P.head) == NULL) {
        rc = weft__wait_on_under(&P.guard, &P.idle, e, false,
                                 weft_deadline_in(P.idle_ns), "offload idle",
                                 &P);
        if (rc == 0)
            weft__waitq_lock(&P.guard);
        else if (P.head == NULL)
            return NULL; /* idle long enough (or cancelled): exit */
    }
    P.head = j->next;
    if (P.head == NULL)
        P.tail = NULL;
    return j;
}

static int pool_main(void *arg)
{
    weft__wait_entry e;
    job *j;

    (void)arg;
    weft__waitq_lock(&P.guard);
    while ((j = next_job(&e)) != NULL) {
        int (*fn)(void *) = j->fn;
        void *a = j->arg;
        int r, now_running;

        j->state = RUNNING;
        now_running = ++P.running;
        if (now_running > atomic_load(&P.peak))
            atomic_store(&P.peak, now_running);
        weft__waitq_unlock(&P.guard);
        r = fn(a);
        weft__waitq_lock(&P.guard);
        P.running--;
        j->result = r;
        j->state = DONE;
        (void)weft__wake_one(&j->done, 0);
    }
    P.nthreads--;
    atomic_store(&P.nthreads_pub, P.nthreads);
    weft__waitq_unlock(&P.guard);
    return 0;
}

/* Start one pool thread (counted in nthreads by the caller). */
static int start_thread(unsigned long seq)
{
    weft_thread_opts o = {NULL, 1, 0};
    weft_thread *t;
    char name[32];
    int rc;

    snprintf(name, sizeof name, "weft-offload-%lu", seq);
    o.name = name;
    rc = weft_thread_start(&t, pool_main, NULL, &o);
    if (rc == 0) {
        weft__thread_mark_system(t); /* not a user thread for the check */
        (void)weft_thread_detach(t);
    }
    return rc;
}

/* Guard held, j queued and no idle thread took it: start a thread if the
 * bound allows.  Returns with the guard held; an error only if j is left
 * with no thread at all to run it. */
static int grow(job *j)
{
    unsigned long seq;
    int rc;

    if (P.nthreads >= P.max)
        return 0;
    P.nthreads++;
    atomic_store(&P.nthreads_pub, P.nthreads);
    seq = ++P.seq;
    weft__waitq_unlock(&P.guard);
    rc = start_thread(seq);
    weft__waitq_lock(&P.guard);
    if (rc == 0)
        return 0;
    P.nthreads--;
    atomic_store(&P.nthreads_pub, P.nthreads);
    if (P.nthreads > 0 || j->state != QUEUED)
        return 0; /* another thread will come to it */
    weft_warning("offload: cannot start a pool thread (%s)",
                 weft_strerror(rc));
    return rc;
}

int weft_offload(int (*fn)(void *arg), void *arg, int *result,
                 int64_t deadline)
{
    job j = {fn, arg, 0, QUEUED, NULL, WEFT__WAITQ_INIT};
    weft__waiter *self = weft__self();
    weft__wait_entry e;
    bool cancelled = false;
    int rc;

    if (fn == NULL)
        return -EINVAL;
    if (weft__waiter_cancelled(self))
        return -ECANCELED;
    if (deadline >= 0 && weft_now() >= deadline)
        return -ETIMEDOUT; /* fn would not start in time */
    weft__waitq_lock(&P.guard);
    configure();
    if (P.tail)
        P.tail->next = &j;
    else
        P.head = &j;
    P.tail = &j;
    if (weft__wake_one(&P.idle, 0) == 0 && (rc = grow(&j)) != 0) {
        unlink_job(&j);
        weft__waitq_unlock(&P.guard);
        return rc;
    }
    while (j.state != DONE) {
        rc = weft__wait_on_under(&P.guard, &j.done, &e, false,
                                 j.state == QUEUED ? deadline : WEFT_FOREVER,
                                 "offload", (const void *)fn);
        if (rc == 0) {
            weft__waitq_lock(&P.guard);
            continue;
        }
        if (j.state == QUEUED) { /* fn never ran and never will */
            unlink_job(&j);
            weft__waitq_unlock(&P.guard);
            if (cancelled)
                weft__waiter_cancel(self);
            return rc;
        }
        if (rc == -ECANCELED) { /* fn runs: wait for it all the same */
            cancelled = true;
            weft__waiter_uncancel(self);
        }
    }
    weft__waitq_unlock(&P.guard);
    if (cancelled)
        weft__waiter_cancel(self);
    if (result != NULL)
        *result = j.result;
    return 0;
}

int weft__offload_threads(void)
{
    return atomic_load(&P.nthreads_pub);
}

int weft__offload_peak(void)
{
    return atomic_load(&P.peak);
}

int weft__offload_max(void)
{
    int m;

    weft__waitq_lock(&P.guard);
    configure();
    m = P.max;
    weft__waitq_unlock(&P.guard);
    return m;
}
