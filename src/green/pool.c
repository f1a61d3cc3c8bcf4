/* pool.c - weft_green_pool: eventlet's GreenPool (at most `size` tasks at
 * once, spawn parks the caller while the pool is full, resize, waitall) and
 * imap, which runs a function over inputs with that bound and hands the
 * results back in input order.
 *
 * Design.  A counter of running tasks under the guard of a park wait queue;
 * spawners that find the pool full park on `slots` (FIFO), waitall callers
 * on `idle`, both under that one guard (weft__wait_on_under).  A finishing
 * task hands its slot directly to the first parked spawner (running stays
 * the same; the woken spawner owns the slot when it returns), so a new
 * spawner can never overtake a parked one: while spawners are parked the
 * pool is full.  Tasks are detached green threads running task_main, which
 * marks the green thread as a member of its pool through a green-thread
 * key: a member that spawns into its own full pool runs the function
 * inline (eventlet's rule), since parking could wait for the very slot it
 * holds.
 *   (Rejected: a weft_sem as the slot count.  It cannot give negative free
 *   counts after a shrink, nor take the caller's membership into account,
 *   and a cancelled task could not re-take a cancellable lock to report.)
 *
 * imap keeps a ring of max(size, 1) result slots: next starts tasks (through
 * the ordinary spawn, so they count against the pool) until that many are
 * started and not handed back, then waits for the oldest.  Memory is
 * bounded by the ring, not by the number of inputs.  The iterator is
 * reference-counted (its owner plus every task in flight) so end never
 * blocks: the last task of an ended iteration frees it.
 *
 * Invariants: running >= 0 counts tasks started or being started (a slot
 * taken); slots is non-empty only while running >= size; nwait counts
 * spawners queued on slots and not yet granted or gone, nidle waitall
 * callers not yet woken or gone (as in event.c, for destroy); nimap counts
 * live iterators.  Locking: every field of the pool is guarded by guard's
 * lock; every field of an iterator (apart from constants) by its wq's
 * guard.  No guard is held across a spawn, a park or a task's function;
 * an iterator's guard is never held with the pool's.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "park/park.h"
#include "weft/group.h"

struct weft_green_pool {
    weft__waitq guard;     /* its lock guards everything; its queue unused */
    weft__waitq slots;     /* spawners parked for a slot */
    weft__waitq idle;      /* waitall callers */
    int size;
    int running;
    uint32_t nwait;
    uint32_t nidle;
    long failures;
    long nimap;
};

struct task {
    weft_green_pool *p;
    weft_green_fn fn;
    void *arg;
};

/* Which pool the running green thread is a task of. */
static weft_green_key member_key;
static weft_once member_once = WEFT_ONCE_INIT;

static int make_key(void *unused)
{
    (void)unused;
    return weft_green_key_create(&member_key, NULL);
}

int weft_green_pool_create(weft_green_pool **out, int size)
{
    weft_green_pool *p;
    int rc;

    if (out == NULL || size < 0)
        return -EINVAL;
    rc = weft_once_call(&member_once, make_key, NULL);
    if (rc != 0)
        return rc;
    p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    p->guard = (weft__waitq)WEFT__WAITQ_INIT;
    p->slots = (weft__waitq)WEFT__WAITQ_INIT;
    p->idle = (weft__waitq)WEFT__WAITQ_INIT;
    p->size = size;
    *out = p;
    return 0;
}

int weft_green_pool_destroy(weft_green_pool *p)
{
    bool busy;

    if (p == NULL)
        return -EINVAL;
    /* Taking the guard waits out a task still unlocking it. */
    weft__waitq_lock(&p->guard);
    busy = p->running != 0 || p->nwait != 0 || p->nidle != 0 ||
           p->nimap != 0;
    weft__waitq_unlock(&p->guard);
    if (busy)
        return -EBUSY;
    free(p);
    return 0;
}

/* Guard held: give free slots to parked spawners, oldest first.  Only a
 * wake-up that claimed its waiter hands a slot over. */
static void grant_locked(weft_green_pool *p)
{
    weft__wait_entry *e;

    while (p->running < p->size && (e = weft__waitq_pop(&p->slots)) != NULL) {
        if (weft__wake(e, 0)) {
            p->running++;
            p->nwait--;
        }
    }
}

/* Give back a slot (a task returned, or its spawn failed). */
static void release_slot(weft_green_pool *p, int task_rc)
{
    weft__waitq_lock(&p->guard);
    if (task_rc != 0)
        p->failures++;
    p->running--;
    grant_locked(p);
    if (p->running == 0)
        p->nidle -= (uint32_t)weft__wake_all(&p->idle, 0);
    weft__waitq_unlock(&p->guard);
}

static int task_main(void *arg)
{
    struct task t = *(struct task *)arg;
    int rc;

    free(arg);
    weft_green_key_set(member_key, t.p);
    rc = t.fn(t.arg);
    weft_green_key_set(member_key, NULL);
    release_slot(t.p, rc);
    /* The pool may be freed from here on. */
    return rc;
}

static bool caller_is_member(weft_green_pool *p)
{
    return weft_green_current() != NULL &&
           weft_green_key_get(member_key) == p;
}

/* The slow path of taking a slot: the pool is full. */
static int take_slot_slow(weft_green_pool *p, int64_t deadline)
{
    weft__wait_entry e;
    int rc;

    if (deadline == WEFT_NOW) {
        weft__waitq_unlock(&p->guard);
        return -ETIMEDOUT;
    }
    p->nwait++;
    rc = weft__wait_on_under(&p->guard, &p->slots, &e, false, deadline,
                             "green pool spawn", p);
    if (rc == 0)
        return 0; /* the slot was handed to us (running counts it) */
    p->nwait--;
    weft__waitq_unlock(&p->guard);
    return rc;
}

int weft_green_pool_spawn(weft_green_pool *p, weft_green_fn fn, void *arg,
                          int64_t deadline)
{
    struct task *t;
    int rc;

    if (p == NULL || fn == NULL)
        return -EINVAL;
    weft__waitq_lock(&p->guard);
    if (p->running < p->size) {
        p->running++;
        weft__waitq_unlock(&p->guard);
    } else if (caller_is_member(p)) {
        weft__waitq_unlock(&p->guard);
        rc = fn(arg);
        if (rc != 0) {
            weft__waitq_lock(&p->guard);
            p->failures++;
            weft__waitq_unlock(&p->guard);
        }
        return 0;
    } else {
        rc = take_slot_slow(p, deadline);
        if (rc != 0)
            return rc;
    }
    t = malloc(sizeof *t);
    if (t == NULL) {
        release_slot(p, 0);
        return -ENOMEM;
    }
    t->p = p;
    t->fn = fn;
    t->arg = arg;
    rc = weft_green_spawn(NULL, task_main, t, NULL);
    if (rc != 0) {
        free(t);
        release_slot(p, 0);
    }
    return rc;
}

/* One counter of the pool, read under its guard. */
static long read_count(weft_green_pool *p, int which)
{
    long v;

    if (p == NULL)
        return 0;
    weft__waitq_lock(&p->guard);
    switch (which) {
    case 0: v = p->running; break;
    case 1: v = (long)p->size - p->running; break;
    case 2: v = p->nwait; break;
    case 3: v = p->failures; break;
    default: v = p->size; break;
    }
    weft__waitq_unlock(&p->guard);
    return v;
}

int weft_green_pool_running(weft_green_pool *p)
{
    return (int)read_count(p, 0);
}

int weft_green_pool_free_count(weft_green_pool *p)
{
    return (int)read_count(p, 1);
}

int weft_green_pool_waiting(weft_green_pool *p)
{
    return (int)read_count(p, 2);
}

long weft_green_pool_failures(weft_green_pool *p)
{
    return read_count(p, 3);
}

int weft_green_pool_size(weft_green_pool *p)
{
    return (int)read_count(p, 4);
}

int weft_green_pool_resize(weft_green_pool *p, int n)
{
    if (p == NULL || n < 0)
        return -EINVAL;
    weft__waitq_lock(&p->guard);
    p->size = n;
    grant_locked(p);
    weft__waitq_unlock(&p->guard);
    return 0;
}

int weft_green_pool_waitall(weft_green_pool *p, int64_t deadline)
{
    weft__wait_entry e;
    int rc;

    if (p == NULL)
        return -EINVAL;
    if (caller_is_member(p))
        return -EDEADLK;
    weft__waitq_lock(&p->guard);
    if (p->running == 0) {
        weft__waitq_unlock(&p->guard);
        return 0;
    }
    if (deadline == WEFT_NOW) {
        weft__waitq_unlock(&p->guard);
        return -ETIMEDOUT;
    }
    p->nidle++;
    rc = weft__wait_on_under(&p->guard, &p->idle, &e, false, deadline,
                             "green pool waitall", p);
    if (rc == 0)
        return 0; /* the last task counted us out */
    p->nidle--;
    if (p->running == 0)
        rc = 0; /* it emptied as we gave up: that wins */
    weft__waitq_unlock(&p->guard);
    return rc;
}

/* ---- imap ------------------------------------------------------------- */

struct islot {
    weft_green_imap *it;       /* constant */
    void *input;               /* written by next before the spawn */
    void *output;              /* guarded by it->wq */
    int rc;                    /* guarded by it->wq */
    bool ready;                /* guarded by it->wq */
};

struct weft_green_imap {
    weft__waitq wq;            /* guard, and the consumer parked in next */
    weft_green_pool *p;        /* constant */
    weft_green_map_fn fn;      /* constant */
    void *const *inputs;       /* constant */
    size_t n, window;          /* constant */
    struct islot *ring;        /* window slots; slot i % window for input i */
    size_t started, consumed;  /* written by the one thread in next */
    int refs;                  /* guarded: the owner (until end) + tasks */
    bool in_next;              /* guarded */
};

static void imap_free(weft_green_imap *it)
{
    weft_green_pool *p = it->p;

    free(it->ring);
    free(it);
    weft__waitq_lock(&p->guard);
    p->nimap--;
    weft__waitq_unlock(&p->guard);
}

/* Drop one reference; the last frees the iterator. */
static void imap_unref_locked_and_unlock(weft_green_imap *it)
{
    bool last = --it->refs == 0;

    weft__waitq_unlock(&it->wq);
    if (last)
        imap_free(it);
}

static int imap_main(void *arg)
{
    struct islot *s = arg;
    weft_green_imap *it = s->it;
    void *out = NULL;
    int rc = it->fn(s->input, &out);

    weft__waitq_lock(&it->wq);
    s->output = out;
    s->rc = rc;
    s->ready = true;
    weft__wake_all(&it->wq, 0);
    imap_unref_locked_and_unlock(it);
    return 0; /* the task's code travels through the slot */
}

int weft_green_imap_start(weft_green_imap **out, weft_green_pool *p,
                          weft_green_map_fn fn, void *const *inputs,
                          size_t n)
{
    weft_green_imap *it;

    if (out == NULL || p == NULL || fn == NULL || (inputs == NULL && n > 0))
        return -EINVAL;
    it = calloc(1, sizeof *it);
    if (it == NULL)
        return -ENOMEM;
    weft__waitq_lock(&p->guard);
    it->window = p->size > 0 ? (size_t)p->size : 1;
    p->nimap++;
    weft__waitq_unlock(&p->guard);
    if (it->window > n && n > 0)
        it->window = n;
    it->ring = calloc(it->window, sizeof *it->ring);
    if (it->ring == NULL) {
        it->p = p;
        imap_free(it);
        return -ENOMEM;
    }
    for (size_t i = 0; i < it->window; i++)
        it->ring[i].it = it;
    it->wq = (weft__waitq)WEFT__WAITQ_INIT;
    it->p = p;
    it->fn = fn;
    it->inputs = inputs;
    it->n = n;
    it->refs = 1;
    *out = it;
    return 0;
}

/* Start tasks until the window is full or the inputs run out. */
static int imap_fill(weft_green_imap *it, int64_t deadline)
{
    while (it->started < it->n && it->started - it->consumed < it->window) {
        struct islot *s = &it->ring[it->started % it->window];
        int rc;

        s->input = it->inputs[it->started];
        weft__waitq_lock(&it->wq);
        s->ready = false;
        it->refs++;
        weft__waitq_unlock(&it->wq);
        rc = weft_green_pool_spawn(it->p, imap_main, s, deadline);
        if (rc != 0) {
            weft__waitq_lock(&it->wq);
            it->refs--; /* never 0 here: the owner holds one */
            weft__waitq_unlock(&it->wq);
            return rc;
        }
        it->started++;
    }
    return 0;
}

/* Wait for the oldest started slot and hand it back. */
static int imap_take(weft_green_imap *it, void **output, int *task_rc,
                     int64_t deadline)
{
    struct islot *s = &it->ring[it->consumed % it->window];
    weft__wait_entry e;
    int rc;

    weft__waitq_lock(&it->wq);
    while (!s->ready) {
        if (deadline == WEFT_NOW) {
            weft__waitq_unlock(&it->wq);
            return -ETIMEDOUT;
        }
        rc = weft__wait_on(&it->wq, &e, false, deadline, "green imap", it);
        if (rc != 0) {
            weft__waitq_unlock(&it->wq);
            return rc;
        }
        weft__waitq_lock(&it->wq);
    }
    if (output)
        *output = s->output;
    if (task_rc)
        *task_rc = s->rc;
    s->ready = false;
    weft__waitq_unlock(&it->wq);
    it->consumed++;
    return 0;
}

int weft_green_imap_next(weft_green_imap *it, void **output, int *task_rc,
                         int64_t deadline)
{
    int rc;

    if (it == NULL)
        return -EINVAL;
    weft__waitq_lock(&it->wq);
    if (it->in_next) {
        weft__waitq_unlock(&it->wq);
        return -EBUSY;
    }
    it->in_next = true;
    weft__waitq_unlock(&it->wq);

    if (it->consumed == it->n)
        rc = -EPIPE;
    else {
        rc = imap_fill(it, deadline);
        /* A spawn that timed out still leaves the oldest task to wait
         * for, if one was started. */
        if (rc == 0 || (it->started > it->consumed &&
                        (rc == -ETIMEDOUT || rc == -ECANCELED)))
            rc = imap_take(it, output, task_rc, deadline);
    }

    weft__waitq_lock(&it->wq);
    it->in_next = false;
    weft__waitq_unlock(&it->wq);
    return rc;
}

int weft_green_imap_end(weft_green_imap *it)
{
    if (it == NULL)
        return -EINVAL;
    weft__waitq_lock(&it->wq);
    if (it->in_next) {
        weft__waitq_unlock(&it->wq);
        return -EBUSY;
    }
    it->in_next = true; /* a late next on a freed iterator is misuse, but
                           one racing with end must not get in */
    imap_unref_locked_and_unlock(it);
    return 0;
}

int weft_green_pool_imap(weft_green_pool *p, weft_green_map_fn fn,
                         void *const *inputs, size_t n, void **outputs,
                         int *rcs, int64_t deadline)
{
    weft_green_imap *it;
    int first = 0, rc;
    size_t i = 0;

    if (outputs == NULL && n > 0)
        return -EINVAL;
    rc = weft_green_imap_start(&it, p, fn, inputs, n);
    if (rc != 0)
        return rc;
    for (; i < n; i++) {
        int trc = 0;
        rc = weft_green_imap_next(it, &outputs[i], &trc, deadline);
        if (rc != 0)
            break;
        if (rcs)
            rcs[i] = trc;
        if (trc != 0 && first == 0)
            first = trc;
    }
    weft_green_imap_end(it);
    if (i < n) {
        for (; rcs && i < n; i++)
            rcs[i] = rc;
        return rc;
    }
    return first;
}
