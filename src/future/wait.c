/* wait.c - waiting on several futures: wait (first completed, first
 * failure, all) and as-completed.
 *
 * Design.  Both hang one watcher (src/future/future.h) on every future not
 * yet done; a future's completion calls the watcher's notify under that
 * future's guard.  The waiting thread itself parks on a wait queue of its
 * own (the set's), whose guard ranks below every future's guard: notify
 * takes it, a waiter holding it never takes a future's.  So the waiter
 * parks once however many futures it watches, and only the completion
 * that meets its condition wakes it (Python installs the same kind of
 * waiter on every future).  Before the set goes away the waiter takes its
 * watchers off the futures still running, under each one's guard, so no
 * notify can be in flight on a dead set.
 *
 * Rejected: a done-callback per future.  Callbacks cannot be removed, so a
 * wait that timed out would leave them behind on futures that may live
 * much longer, and they run after the future's guard is dropped, which
 * would need the set to be reference counted.
 */
#include <stdlib.h>
#include <string.h>

#include "future/future.h"
#include "weft/error.h"

/* ---- wait --------------------------------------------------------------- */

struct wait_set {
    weft__waitq wq;          /* the waiter; its guard guards the rest */
    size_t left;             /* watched futures not yet done */
    bool failed;             /* one of them FAILED */
    bool met;                /* the condition holds */
    weft_wait_mode mode;
};

static void wait_notify(weft__future_watch *w, weft_future *f)
{
    struct wait_set *s = w->ctx;
    weft__waitq_lock(&s->wq);
    s->left--;
    if (atomic_load_explicit(&f->state, memory_order_relaxed) ==
        WEFT_FUTURE_FAILED)
        s->failed = true;
    if (!s->met && (s->mode == WEFT_FIRST_COMPLETED || s->left == 0 ||
                    (s->mode == WEFT_FIRST_FAILURE && s->failed))) {
        s->met = true;
        weft__wake_all(&s->wq, 0);
    }
    weft__waitq_unlock(&s->wq);
}

/* Whether the condition holds for what is done already, before watching. */
static bool met_at_once(weft_future *const *fs, size_t n,
                        weft_wait_mode mode)
{
    size_t done = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t st = weft_future_get_state(fs[i]);
        if (!weft__future_state_done(st))
            continue;
        done++;
        if (mode == WEFT_FIRST_COMPLETED)
            return true;
        if (mode == WEFT_FIRST_FAILURE && st == WEFT_FUTURE_FAILED)
            return true;
    }
    return done == n;
}

static void report(weft_future *const *fs, size_t n, bool *done,
                   size_t *ndone)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool d = weft_future_done(fs[i]);
        k += d;
        if (done != NULL)
            done[i] = d;
    }
    if (ndone != NULL)
        *ndone = k;
}

int weft_futures_wait(weft_future *const *fs, size_t n, weft_wait_mode mode,
                      bool *done, size_t *ndone, int64_t deadline)
{
    if ((fs == NULL && n > 0) ||
        (mode != WEFT_FIRST_COMPLETED && mode != WEFT_FIRST_FAILURE &&
         mode != WEFT_ALL_COMPLETED))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (fs[i] == NULL)
            return -EINVAL;
    int rc = 0;
    if (n == 0 || met_at_once(fs, n, mode) || deadline == WEFT_NOW) {
        rc = n == 0 || met_at_once(fs, n, mode) ? 0 : -ETIMEDOUT;
        report(fs, n, done, ndone);
        return rc;
    }
    weft__future_watch *ws = calloc(n, sizeof *ws);
    if (ws == NULL)
        return -ENOMEM;
    struct wait_set s = {WEFT__WAITQ_INIT, 0, false, false, mode};
    /* Count first, so that a notify from a future added early cannot see
     * left reach 0 while later futures are still being added. */
    s.left = n;
    for (size_t i = 0; i < n; i++) {
        ws[i].notify = wait_notify;
        ws[i].ctx = &s;
        ws[i].index = i;
        if (!weft__future_watch_add(fs[i], &ws[i])) {
            /* Done already: account for it as its notify would have. */
            wait_notify(&ws[i], fs[i]);
        }
    }
    weft__waitq_lock(&s.wq);
    while (!s.met) {
        weft__wait_entry e;
        rc = weft__wait_on(&s.wq, &e, false, deadline, "futures wait", fs);
        if (rc != 0)
            break;
        weft__waitq_lock(&s.wq);
    }
    weft__waitq_unlock(&s.wq);
    if (rc != 0 && s.met)
        rc = 0;
    for (size_t i = 0; i < n; i++)
        weft__future_watch_remove(fs[i], &ws[i]);
    /* A notify that ran before its remove may still hold our guard. */
    weft__waitq_lock(&s.wq);
    weft__waitq_unlock(&s.wq);
    free(ws);
    report(fs, n, done, ndone);
    return rc;
}

/* ---- as-completed ------------------------------------------------------- */

struct weft_as_completed {
    weft__waitq wq;               /* next's waiter; guards the rest */
    size_t n;
    weft_future **fs;             /* references held */
    weft__future_watch *ws;       /* [n] */
    size_t *ready;                /* ring of done indexes, FIFO */
    size_t rhead, rcount;         /* ready ring: first, how many */
    size_t handed;                /* handed back by next */
    bool in_next;
};

static void ready_push_locked(weft_as_completed *it, size_t index)
{
    it->ready[(it->rhead + it->rcount) % it->n] = index;
    it->rcount++;
}

static void ac_notify(weft__future_watch *w, weft_future *f)
{
    weft_as_completed *it = w->ctx;
    (void)f;
    weft__waitq_lock(&it->wq);
    ready_push_locked(it, w->index);
    weft__wake_one(&it->wq, 0);
    weft__waitq_unlock(&it->wq);
}

int weft_as_completed_start(weft_as_completed **out, weft_future *const *fs,
                            size_t n)
{
    if (out == NULL || (fs == NULL && n > 0))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (fs[i] == NULL)
            return -EINVAL;
    weft_as_completed *it = calloc(1, sizeof *it);
    if (it == NULL)
        return -ENOMEM;
    it->wq = (weft__waitq)WEFT__WAITQ_INIT;
    it->n = n;
    size_t m = n > 0 ? n : 1;
    it->fs = calloc(m, sizeof *it->fs);
    it->ws = calloc(m, sizeof *it->ws);
    it->ready = calloc(m, sizeof *it->ready);
    if (it->fs == NULL || it->ws == NULL || it->ready == NULL) {
        free(it->fs);
        free(it->ws);
        free(it->ready);
        free(it);
        return -ENOMEM;
    }
    /* Those done already come first, in input order; the rest as their
     * notifies arrive.  The guard is held across the whole pass so that a
     * notify racing it queues behind the already-done ones. */
    for (size_t i = 0; i < n; i++)
        it->fs[i] = weft_future_retain(fs[i]);
    weft__waitq_lock(&it->wq);
    for (size_t i = 0; i < n; i++) {
        if (weft_future_done(fs[i]))
            ready_push_locked(it, i);
        else
            it->ws[i].ctx = it; /* to watch: decided once, here */
    }
    weft__waitq_unlock(&it->wq);
    for (size_t i = 0; i < n; i++) {
        if (it->ws[i].ctx == NULL)
            continue; /* queued above */
        it->ws[i].notify = ac_notify;
        it->ws[i].index = i;
        if (!weft__future_watch_add(fs[i], &it->ws[i])) {
            weft__waitq_lock(&it->wq);
            ready_push_locked(it, i); /* done in between */
            weft__waitq_unlock(&it->wq);
        }
    }
    *out = it;
    return 0;
}

int weft_as_completed_next(weft_as_completed *it, weft_future **f,
                           int64_t deadline)
{
    if (it == NULL || f == NULL)
        return -EINVAL;
    weft__waitq_lock(&it->wq);
    if (it->in_next) {
        weft__waitq_unlock(&it->wq);
        return -EBUSY;
    }
    if (it->handed == it->n) {
        weft__waitq_unlock(&it->wq);
        return -EPIPE;
    }
    it->in_next = true;
    while (it->rcount == 0) {
        weft__wait_entry e;
        int rc = weft__wait_on(&it->wq, &e, false, deadline,
                               "as_completed", it);
        if (rc != 0) {
            it->in_next = false;
            weft__waitq_unlock(&it->wq);
            return rc;
        }
        weft__waitq_lock(&it->wq);
    }
    size_t i = it->ready[it->rhead];
    it->rhead = (it->rhead + 1) % it->n;
    it->rcount--;
    it->handed++;
    it->in_next = false;
    weft__waitq_unlock(&it->wq);
    *f = it->fs[i];
    return 0;
}

int weft_as_completed_end(weft_as_completed *it)
{
    if (it == NULL)
        return -EINVAL;
    weft__waitq_lock(&it->wq);
    bool busy = it->in_next;
    weft__waitq_unlock(&it->wq);
    if (busy)
        return -EBUSY;
    for (size_t i = 0; i < it->n; i++)
        if (it->ws[i].notify != NULL)
            weft__future_watch_remove(it->fs[i], &it->ws[i]);
    weft__waitq_lock(&it->wq);
    weft__waitq_unlock(&it->wq);
    for (size_t i = 0; i < it->n; i++)
        weft_future_release(it->fs[i]);
    free(it->fs);
    free(it->ws);
    free(it->ready);
    free(it);
    return 0;
}
