/* future.c - a future: one result that work hands over to whoever waits.
 *
 * Design.  A future is a state word, a wait queue of the threads parked in
 * result/wait, and what completion hands over (a value or an error), the
 * done-callbacks and the watchers (src/future/future.h).  Everything but
 * the state is written only under the wait queue's guard, and completion
 * happens once: the thread that moves the state to a done value under the
 * guard is the only one that ever writes the outcome.  Readers check the
 * state without the guard (acquire) and, once it is done, read the outcome
 * freely: it never changes again.  So a result() on a done future takes no
 * lock at all, and a completion that nobody waits for takes the guard once
 * and wakes nobody.
 *
 * Rejected: a weft_event per future plus a mutex for the outcome.  Two
 * locks per completion, and the callbacks and watchers would need a third
 * place; one guard does it all.
 *
 * Callbacks run after the guard is dropped (a callback may well wait on or
 * release the very future it is told about), in the order they were added,
 * each exactly once: completion takes the whole list under the guard, and
 * an add that finds the future done runs its callback at once instead of
 * queueing it.
 *
 * Unread failures.  error_read is set by every call that hands a failure
 * to the caller (result, error); the last release of a FAILED future whose
 * failure nobody read logs it, so no error disappears unseen.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "future/future.h"
#include "lib/assert.h"
#include "platform/platform.h"
#include "weft/error.h"
#include "weft/log.h"

struct weft__future_cb {
    weft__future_cb *next;
    weft_future_callback fn;
    void *arg;
};

void weft__future_init(weft_future *f)
{
    memset(f, 0, sizeof *f);
    atomic_init(&f->state, WEFT_FUTURE_PENDING);
    atomic_init(&f->refs, 1);
    f->wq = (weft__waitq)WEFT__WAITQ_INIT;
}

int weft_future_create(weft_future **out)
{
    if (out == NULL)
        return -EINVAL;
    weft_future *f = malloc(sizeof *f);
    if (f == NULL)
        return -ENOMEM;
    weft__future_init(f);
    *out = f;
    return 0;
}

weft_future *weft_future_retain(weft_future *f)
{
    if (f != NULL)
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

static void report_unread(weft_future *f)
{
    weft_warning("a future failed and nobody read its error: %s (%s)",
                 f->message != NULL ? f->message : "?",
                 weft_errname(f->code));
}

void weft_future_release(weft_future *f)
{
    if (f == NULL)
        return;
    uint32_t before = atomic_fetch_sub_explicit(&f->refs, 1,
                                                memory_order_acq_rel);
    WEFT_ASSERT(before > 0);
    if (before != 1)
        return;
    /* Nobody else holds it: no waiter, no watcher (they hold references),
     * no completion in progress (the completer holds one too). */
    uint32_t s = atomic_load_explicit(&f->state, memory_order_acquire);
    if (s == WEFT_FUTURE_FAILED &&
        !atomic_load_explicit(&f->error_read, memory_order_relaxed))
        report_unread(f);
    if (s == WEFT_FUTURE_FINISHED && f->free_fn != NULL)
        f->free_fn(f->value);
    if (s == WEFT_FUTURE_FAILED)
        free(f->message);
    for (weft__future_cb *c = f->cbs; c != NULL;) {
        weft__future_cb *next = c->next;
        free(c);
        c = next;
    }
    free(f->task_msg);
    free(f);
}

weft_future_state weft_future_get_state(const weft_future *f)
{
    return (weft_future_state)atomic_load_explicit(&f->state,
                                                   memory_order_acquire);
}

bool weft_future_done(const weft_future *f)
{
    return weft__future_state_done(weft_future_get_state(f));
}

bool weft_future_running(const weft_future *f)
{
    return weft_future_get_state(f) == WEFT_FUTURE_RUNNING;
}

bool weft_future_cancelled(const weft_future *f)
{
    return weft_future_get_state(f) == WEFT_FUTURE_CANCELLED;
}

const char *weft_future_state_name(weft_future_state s)
{
    switch (s) {
    case WEFT_FUTURE_PENDING: return "pending";
    case WEFT_FUTURE_RUNNING: return "running";
    case WEFT_FUTURE_FINISHED: return "finished";
    case WEFT_FUTURE_FAILED: return "failed";
    case WEFT_FUTURE_CANCELLED: return "cancelled";
    }
    return "invalid";
}

/* ---- completion --------------------------------------------------------- */

/* With the guard held and the outcome written: publish the done state,
 * wake the parked, notify the watchers, and take the callbacks, which the
 * caller runs once the guard is dropped. */
static weft__future_cb *publish_locked(weft_future *f, uint32_t state)
{
    atomic_store_explicit(&f->state, state, memory_order_release);
    weft__wake_all(&f->wq, 0);
    while (f->watchers != NULL) {
        weft__future_watch *w = f->watchers;
        f->watchers = w->next;
        if (w->next != NULL)
            w->next->prev = NULL;
        w->linked = false;
        w->notify(w, f);
    }
    /* The list is newest first: turn it round, to run oldest first. */
    weft__future_cb *cbs = NULL;
    while (f->cbs != NULL) {
        weft__future_cb *c = f->cbs;
        f->cbs = c->next;
        c->next = cbs;
        cbs = c;
    }
    return cbs;
}

static void run_callback(weft_future *f, weft__future_cb *c)
{
    int rc = c->fn(f, c->arg);
    if (rc != 0)
        weft_error("a future's done-callback failed: %s (%s)",
                   weft_strerror(rc), weft_errname(rc));
}

static void run_callbacks(weft_future *f, weft__future_cb *c)
{
    while (c != NULL) {
        weft__future_cb *next = c->next;
        run_callback(f, c);
        free(c);
        c = next;
    }
}

/* Complete f with state and the outcome given, unless it is done already
 * (-EINVAL; nothing is taken over).  The caller holds a reference, so the
 * callbacks may release others. */
static int complete(weft_future *f, uint32_t state, void *value,
                    size_t size, void (*free_fn)(void *), int code,
                    char *message)
{
    weft__waitq_lock(&f->wq);
    uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
    if (weft__future_state_done(s)) {
        weft__waitq_unlock(&f->wq);
        return -EINVAL;
    }
    if (state == WEFT_FUTURE_FAILED) {
        f->code = code;
        f->message = message;
    } else {
        f->value = value;
        f->size = size;
        f->free_fn = free_fn;
    }
    weft__future_cb *cbs = publish_locked(f, state);
    weft__waitq_unlock(&f->wq);
    if (cbs != NULL)
        run_callbacks(f, cbs);
    return 0;
}

int weft_future_set_result(weft_future *f, void *value)
{
    if (f == NULL)
        return -EINVAL;
    return complete(f, WEFT_FUTURE_FINISHED, value, 0, NULL, 0, NULL);
}

int weft_future_set_result_owned(weft_future *f, void *value, size_t size,
                                 void (*free_fn)(void *))
{
    if (f == NULL)
        return -EINVAL;
    return complete(f, WEFT_FUTURE_FINISHED, value, size, free_fn, 0, NULL);
}

static char *format_message(int code, const char *fmt, va_list ap)
{
    char *msg = NULL;
    if (fmt == NULL || vasprintf(&msg, fmt, ap) < 0) {
        msg = strdup(weft_strerror(code));
    }
    return msg; /* NULL only when memory ran out; see message_of */
}

/* The message shown for a failure whose own text could not be kept. */
static const char no_memory_message[] = "(message lost: out of memory)";

int weft__future_fail_with(weft_future *f, int code, char *message)
{
    int rc = complete(f, WEFT_FUTURE_FAILED, NULL, 0, NULL, code, message);
    if (rc != 0)
        free(message);
    return rc;
}

int weft_future_set_error(weft_future *f, int code, const char *fmt, ...)
{
    if (f == NULL || code >= 0)
        return -EINVAL;
    if (weft_future_done(f))
        return -EINVAL;
    va_list ap;
    va_start(ap, fmt);
    char *msg = format_message(code, fmt, ap);
    va_end(ap);
    return weft__future_fail_with(f, code, msg);
}

int weft_future_set_running(weft_future *f)
{
    if (f == NULL)
        return -EINVAL;
    uint32_t want = WEFT_FUTURE_PENDING;
    /* A CAS, not the guard: cancel also moves PENDING away with the guard
     * held, and both sides only ever leave PENDING, so the CAS decides. */
    if (atomic_compare_exchange_strong_explicit(
            &f->state, &want, WEFT_FUTURE_RUNNING, memory_order_acq_rel,
            memory_order_acquire))
        return 0;
    return want == WEFT_FUTURE_CANCELLED ? -ECANCELED : -EINVAL;
}

int weft_future_cancel(weft_future *f)
{
    if (f == NULL)
        return -EINVAL;
    weft__waitq_lock(&f->wq);
    uint32_t want = WEFT_FUTURE_PENDING;
    if (!atomic_compare_exchange_strong_explicit(
            &f->state, &want, WEFT_FUTURE_CANCELLED, memory_order_acq_rel,
            memory_order_acquire)) {
        weft__waitq_unlock(&f->wq);
        return want == WEFT_FUTURE_CANCELLED ? 0 : -EBUSY;
    }
    weft__future_cb *cbs = publish_locked(f, WEFT_FUTURE_CANCELLED);
    weft__waitq_unlock(&f->wq);
    if (cbs != NULL) {
        weft_future_retain(f);
        run_callbacks(f, cbs);
        weft_future_release(f);
    }
    return 0;
}

/* ---- waiting ------------------------------------------------------------ */

int weft_future_wait(weft_future *f, int64_t deadline)
{
    if (f == NULL)
        return -EINVAL;
    if (weft_future_done(f))
        return 0;
    weft__waitq_lock(&f->wq);
    if (weft_future_done(f)) {
        weft__waitq_unlock(&f->wq);
        return 0;
    }
    weft__wait_entry e;
    /* A task's result usually comes from a worker that is running it
     * right now: spin longer before sleeping (platform.h, "hand-off"). */
    weft__waiter *self = weft__self();
    uint32_t spin = self->spin;
    self->spin = weft__handoff_spin_iters;
    int rc = weft__wait_on(&f->wq, &e, false, deadline, "future", f);
    self->spin = spin;
    if (rc != 0)
        weft__waitq_unlock(&f->wq);
    /* Woken only by completion, which set the state before waking. */
    return rc;
}

int weft_future_result(weft_future *f, void **value, int64_t deadline)
{
    int rc = weft_future_wait(f, deadline);
    if (rc != 0)
        return rc;
    switch (weft_future_get_state(f)) {
    case WEFT_FUTURE_FINISHED:
        if (value != NULL)
            *value = f->value;
        return 0;
    case WEFT_FUTURE_FAILED:
        weft__future_mark_read(f);
        return WEFT_EFAILED;
    default:
        return -ECANCELED;
    }
}

size_t weft_future_result_size(const weft_future *f)
{
    return weft_future_get_state(f) == WEFT_FUTURE_FINISHED ? f->size : 0;
}

int weft_future_error(weft_future *f, int *code, const char **message,
                      int64_t deadline)
{
    int rc = weft_future_wait(f, deadline);
    if (rc != 0)
        return rc;
    uint32_t s = weft_future_get_state(f);
    if (s == WEFT_FUTURE_CANCELLED)
        return -ECANCELED;
    if (code != NULL)
        *code = s == WEFT_FUTURE_FAILED ? f->code : 0;
    if (message != NULL)
        *message = s != WEFT_FUTURE_FAILED ? NULL
                   : f->message != NULL    ? f->message
                                           : no_memory_message;
    if (s == WEFT_FUTURE_FAILED)
        weft__future_mark_read(f);
    return 0;
}

/* ---- callbacks and watchers --------------------------------------------- */

int weft_future_add_done_callback(weft_future *f, weft_future_callback cb,
                                  void *arg)
{
    if (f == NULL || cb == NULL)
        return -EINVAL;
    weft__future_cb *c = malloc(sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    c->fn = cb;
    c->arg = arg;
    weft__waitq_lock(&f->wq);
    if (!weft_future_done(f)) {
        c->next = f->cbs;
        f->cbs = c;
        weft__waitq_unlock(&f->wq);
        return 0;
    }
    weft__waitq_unlock(&f->wq);
    run_callback(f, c);
    free(c);
    return 0;
}

bool weft__future_watch_add(weft_future *f, weft__future_watch *w)
{
    weft__waitq_lock(&f->wq);
    if (weft_future_done(f)) {
        weft__waitq_unlock(&f->wq);
        return false;
    }
    w->prev = NULL;
    w->next = f->watchers;
    if (w->next != NULL)
        w->next->prev = w;
    f->watchers = w;
    w->linked = true;
    weft__waitq_unlock(&f->wq);
    return true;
}

void weft__future_watch_remove(weft_future *f, weft__future_watch *w)
{
    weft__waitq_lock(&f->wq);
    if (w->linked) {
        if (w->prev != NULL)
            w->prev->next = w->next;
        else
            f->watchers = w->next;
        if (w->next != NULL)
            w->next->prev = w->prev;
        w->linked = false;
    }
    weft__waitq_unlock(&f->wq);
}
