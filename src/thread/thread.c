/* thread.c - weft_thread: starting, joining and naming OS threads, the
 * default stack size and the failure hook (Python's threading.Thread and
 * threading.excepthook).
 *
 * Design.  A thread is a joinable pthread running trampoline(), which runs
 * fn, calls the failure hook if fn returned non-zero, runs the thread's TLS
 * destructors, leaves the registry and finally sets the handle's done
 * event.  Joining waits on that event through the park layer, so a join has
 * a deadline and (in a green thread, later) is cancellable; only once the
 * event has fired does join call pthread_join, which then returns at once
 * (the thread is past everything but its last few instructions) and frees
 * the OS thread deterministically, so a program that starts and joins many
 * threads never piles up dead stacks.  detach calls pthread_detach.
 *   (Rejected: pthread_join as the wait.  It has no deadline and cannot be
 *   cancelled, and a green thread cannot call it without stopping its
 *   worker.  Rejected too: always-detached pthreads: then join returns
 *   while the OS thread may still hold its stack, which makes thread counts
 *   and leak checks at exit racy.)
 *
 * Handles are reference counted: the creator's reference (consumed by join
 * or detach), the registry's (dropped when the thread ends), the running
 * thread's own (dropped as its last act), and one per weft_thread_enumerate
 * result.  Nothing is freed while any of them is held.
 *
 * Invariants.  handle_state moves STARTING -> OWNED -> JOINED | DETACHED
 * exactly once each, by CAS, so concurrent join/detach calls cannot both
 * consume the creator's reference.  alive is true from weft_thread_start
 * until the thread has left the registry; done is set after that, on every
 * path out of the registry (the thread's end, a failed pthread_create, an
 * adopted thread's exit, the fork child for lost threads), because
 * join_all waits on done for any handle it found there.
 *
 * Renaming.  weft's name is an atomic pointer to an immutable string (see
 * struct weft__tname).  The OS name is changed under the handle's os_lock,
 * and only while os_state is RUNNING (pt_self is then a live thread): the
 * thread sets RUNNING at its start and GONE before it leaves, both under
 * that lock, so a rename from another thread never touches a pthread that
 * has been joined or has exited detached.  Threads weft did not start (the
 * main thread, adopted ones) keep their OS name: renaming the main thread
 * would rename the process in ps.
 *
 * The rest of the module: registry.c keeps the live set, join_all and the
 * exit policy (an atexit handler, registered at the first start, that waits
 * for every non-daemon thread except the caller of exit; its comment has
 * the details); current.c keeps weft_thread_current, the main thread and
 * the adoption of foreign threads; tls.c and timer.c are self-contained.
 *
 * Locking: os_lock guards os_state and pt_self; everything else is atomic or
 * constant (see struct weft_thread in thread.h).
 */
#include "thread.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/assert.h"
#include "../park/park.h"
#include "../platform/platform.h"
#include "../sync/sync.h"
#include "weft/error.h"
#include "weft/log.h"

#define STACK_MIN ((size_t)32 * 1024)

static _Atomic uint64_t next_id = 1;      /* weft_thread_id values */
static _Atomic unsigned next_name = 1;    /* the N of Thread-N and Dummy-N */
static _Atomic size_t default_stack;      /* 0: the system's */

static void default_failure_hook(weft_thread *t, int rc);
static _Atomic(weft_thread_failure_hook) failure_hook = default_failure_hook;

/* ---- handles ---------------------------------------------------------- */

static struct weft__tname *tname_new(const char *s)
{
    size_t n = strnlen(s, WEFT_THREAD_NAME_MAX - 1);
    struct weft__tname *nm = malloc(sizeof *nm + n + 1);

    if (nm == NULL)
        return NULL;
    nm->next = NULL;
    memcpy(nm->s, s, n);
    nm->s[n] = '\0';
    return nm;
}

weft_thread *weft__thread_alloc(const char *name, const char *prefix,
                                int refs)
{
    char buf[WEFT_THREAD_NAME_MAX];
    weft_thread *t = calloc(1, sizeof *t);

    if (t == NULL)
        return NULL;
    if (name == NULL) {
        snprintf(buf, sizeof buf, "%s-%u", prefix,
                 atomic_fetch_add(&next_name, 1));
        name = buf;
    }
    struct weft__tname *nm = tname_new(name);
    if (nm == NULL) {
        free(t);
        return NULL;
    }
    atomic_init(&t->refs, refs);
    t->id = atomic_fetch_add(&next_id, 1);
    atomic_init(&t->name, nm);
    atomic_init(&t->retired, NULL);
    atomic_init(&t->native_id, 0);
    atomic_init(&t->alive, true);
    atomic_init(&t->handle_state, WEFT__H_STARTING);
    weft_event_init(&t->done);
    weft_lock_init(&t->os_lock);
    t->os_state = WEFT__OS_NEW;
    return t;
}

void weft__thread_ref(weft_thread *t)
{
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void weft__thread_unref(weft_thread *t)
{
    struct weft__tname *nm, *next;

    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
        return;
    WEFT_ASSERT(!t->linked);
    free(atomic_load_explicit(&t->name, memory_order_relaxed));
    for (nm = atomic_load(&t->retired); nm != NULL; nm = next) {
        next = nm->next;
        free(nm);
    }
    free(t);
}

void weft_thread_release(weft_thread *t)
{
    if (t != NULL)
        weft__thread_unref(t);
}

/* ---- the running thread ----------------------------------------------- */

/* Apply t's current weft name to its OS thread if that thread is running.
 * Any thread; takes t->os_lock. */
static void os_rename(weft_thread *t)
{
    char buf[16];

    weft__lock_reacquire(&t->os_lock);
    if (t->os_state == WEFT__OS_RUNNING) {
        const char *s = atomic_load(&t->name)->s;
        if (pthread_equal(t->pt_self, pthread_self())) {
            weft__set_os_thread_name(s);
        } else {
            strncpy(buf, s, sizeof buf - 1);
            buf[sizeof buf - 1] = '\0';
            pthread_setname_np(t->pt_self, buf);
        }
    }
    weft_lock_release(&t->os_lock);
}

static void os_begin(weft_thread *t)
{
    weft__lock_reacquire(&t->os_lock);
    t->pt_self = pthread_self();
    t->os_state = WEFT__OS_RUNNING;
    weft__set_os_thread_name(atomic_load(&t->name)->s);
    weft_lock_release(&t->os_lock);
}

static void os_end(weft_thread *t)
{
    weft__lock_reacquire(&t->os_lock);
    t->os_state = WEFT__OS_GONE;
    weft_lock_release(&t->os_lock);
}

/* The body of every weft thread.  Order matters: the hook and the TLS
 * destructors run while the thread still counts as alive, and done is set
 * only after the thread has left the registry, so a join_all that saw the
 * thread in the registry is woken, and one that did not is not needed. */
static void *trampoline(void *p)
{
    weft_thread *t = p;
    int rc;

    weft__thread_bind(t);
    atomic_store(&t->native_id, weft__gettid());
    os_begin(t);
    rc = t->fn(t->arg);
    if (rc != 0)
        atomic_load(&failure_hook)(t, rc);
    weft__tls_thread_exit();
    t->result = rc;
    os_end(t);
    atomic_store(&t->native_id, 0);
    weft__registry_remove(t);
    weft_event_set(&t->done);
    weft__thread_bind(NULL);
    weft__thread_unref(t);
    return NULL;
}

/* ---- start, join, detach ---------------------------------------------- */

static int check_opts(const weft_thread_opts *opts, size_t *stack,
                      int *daemon)
{
    *stack = atomic_load(&default_stack);
    *daemon = -1;
    if (opts == NULL)
        return 0;
    if (opts->daemon < -1 || opts->daemon > 1)
        return -EINVAL;
    *daemon = opts->daemon;
    if (opts->stack_size != 0) {
        if (opts->stack_size < STACK_MIN)
            return -EINVAL;
        *stack = opts->stack_size;
    }
    return 0;
}

static int spawn(weft_thread *t, size_t stack)
{
    pthread_attr_t attr;
    int err;

    if (pthread_attr_init(&attr) != 0)
        return -ENOMEM;
    err = stack ? pthread_attr_setstacksize(&attr, stack) : 0;
    if (err == 0)
        err = pthread_create(&t->pt, &attr, trampoline, t);
    pthread_attr_destroy(&attr);
    if (err == EINVAL)
        return -EINVAL;
    if (err == ENOMEM)
        return -ENOMEM;
    return err ? -EAGAIN : 0;
}

int weft_thread_start(weft_thread **out, weft_thread_fn fn, void *arg,
                      const weft_thread_opts *opts)
{
    size_t stack;
    int daemon, rc;

    if (out == NULL || fn == NULL)
        return -EINVAL;
    rc = check_opts(opts, &stack, &daemon);
    if (rc != 0)
        return rc;
    if (daemon < 0)
        daemon = weft_thread_current()->daemon;
    /* References: the creator's, the registry's, the thread's own. */
    weft_thread *t = weft__thread_alloc(opts ? opts->name : NULL, "Thread", 3);
    if (t == NULL)
        return -ENOMEM;
    t->fn = fn;
    t->arg = arg;
    t->daemon = daemon != 0;
    weft__registry_install_exit();
    weft__registry_add(t);
    rc = spawn(t, stack);
    if (rc != 0) {
        /* It never ran: leave the registry and set done as trampoline
         * would (a join_all may have found it in the registry meanwhile
         * and be waiting on done, holding its own reference); then drop
         * the registry's, its own and the creator's references. */
        weft__registry_remove(t);
        weft_event_set(&t->done);
        weft__thread_unref(t);
        weft__thread_unref(t);
        return rc;
    }
    atomic_store_explicit(&t->handle_state, WEFT__H_OWNED,
                          memory_order_release);
    *out = t;
    return 0;
}

int weft_thread_join(weft_thread *t, int *result, int64_t deadline)
{
    int rc;

    if (t == NULL)
        return -EINVAL;
    if (t == weft_thread_current())
        return -EDEADLK;
    if (t->foreign)
        return -EINVAL;
    if (atomic_load_explicit(&t->handle_state, memory_order_acquire) !=
        WEFT__H_OWNED)
        return -EINVAL;
    rc = weft_event_wait(&t->done, deadline);
    if (rc != 0)
        return rc;
    int expect = WEFT__H_OWNED;
    if (!atomic_compare_exchange_strong(&t->handle_state, &expect,
                                        WEFT__H_JOINED))
        return -EINVAL;
    /* The thread has set done: it only has its last unref and return left,
     * so this returns almost at once and frees the OS thread. */
    if (!t->lost)
        pthread_join(t->pt, NULL);
    if (result != NULL)
        *result = t->result;
    weft__thread_unref(t);
    return 0;
}

int weft_thread_detach(weft_thread *t)
{
    int expect = WEFT__H_OWNED;

    if (t == NULL || t->foreign)
        return -EINVAL;
    if (!atomic_compare_exchange_strong_explicit(
            &t->handle_state, &expect, WEFT__H_DETACHED,
            memory_order_acq_rel, memory_order_acquire))
        return -EINVAL;
    if (!t->lost)
        pthread_detach(t->pt);
    weft__thread_unref(t);
    return 0;
}

/* ---- queries ---------------------------------------------------------- */

bool weft_thread_is_alive(const weft_thread *t)
{
    return t != NULL && atomic_load(&((weft_thread *)t)->alive);
}

bool weft_thread_is_daemon(const weft_thread *t)
{
    return t != NULL && t->daemon;
}

const char *weft_thread_name(const weft_thread *t)
{
    if (t == NULL)
        return "";
    return atomic_load_explicit(&((weft_thread *)t)->name,
                                memory_order_acquire)->s;
}

int weft_thread_set_name(weft_thread *t, const char *name)
{
    struct weft__tname *nm, *old, *head;

    if (t == NULL || name == NULL)
        return -EINVAL;
    nm = tname_new(name);
    if (nm == NULL)
        return -ENOMEM;
    old = atomic_exchange_explicit(&t->name, nm, memory_order_acq_rel);
    head = atomic_load_explicit(&t->retired, memory_order_relaxed);
    do
        old->next = head;
    while (!atomic_compare_exchange_weak_explicit(
        &t->retired, &head, old, memory_order_release, memory_order_relaxed));
    if (!t->foreign)
        os_rename(t);
    return 0;
}

uint64_t weft_thread_id(const weft_thread *t)
{
    return t != NULL ? t->id : 0;
}

long weft_thread_native_id(const weft_thread *t)
{
    return t != NULL ? atomic_load(&((weft_thread *)t)->native_id) : 0;
}

uint64_t weft_thread_get_ident(void)
{
    return weft_thread_current()->id;
}

/* ---- settings --------------------------------------------------------- */

int weft_thread_stack_size(size_t size, size_t *old)
{
    size_t prev;

    if (size != 0 && size < STACK_MIN)
        return -EINVAL;
    prev = atomic_exchange(&default_stack, size);
    if (old != NULL)
        *old = prev;
    return 0;
}

/* The default hook: one ERROR line naming the thread and the code. */
static void default_failure_hook(weft_thread *t, int rc)
{
    const char *name = weft_errname(rc);

    if (strcmp(name, "UNKNOWN") == 0)
        weft_log(WEFT_LOG_ERROR, "thread %s failed: %d (%s)",
                 weft_thread_name(t), rc, weft_strerror(rc));
    else
        weft_log(WEFT_LOG_ERROR, "thread %s failed: %s (%s)",
                 weft_thread_name(t), name, weft_strerror(rc));
}

/* The first call returns the default hook itself, so a custom hook can
 * chain to it and a later call can put it back. */
weft_thread_failure_hook weft_thread_set_failure_hook(weft_thread_failure_hook h)
{
    return atomic_exchange(&failure_hook, h ? h : default_failure_hook);
}
