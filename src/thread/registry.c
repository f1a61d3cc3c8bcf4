/* registry.c - the set of live threads (weft_thread_enumerate), join_all,
 * and the exit policy.
 *
 * Design.  A doubly-linked list of live handles under one weft_lock, plus a
 * lock-free "pending" stack.  weft-started threads are linked under the lock
 * at start and unlinked under it when they end.  Adopted foreign threads
 * (the main thread, Dummy-N) are pushed onto the pending stack with one CAS
 * instead, because adoption happens inside the logger, which must never
 * block on a weft lock; whoever takes the lock next moves the pending
 * handles into the list before looking at it, so every operation under the
 * lock sees them.
 *   (Rejected: a lock-free list for everything.  Unlinking from the middle
 *   of a lock-free list needs hazard pointers or epochs; thread start and
 *   exit are rare enough that one short lock costs nothing.)
 *
 * Exit policy (Python's).  At the first weft_thread_start an atexit handler
 * is registered that calls weft_thread_join_all(WEFT_FOREVER): when main
 * returns or any thread calls exit(), every live non-daemon thread that weft
 * started finishes before the process goes on to exit; daemon threads are
 * abandoned.  The handler skips the calling thread (exit() may be called
 * from a weft thread, which must not wait for itself) and never waits for
 * foreign threads (the main thread and adopted threads have no end weft
 * could see).  Handlers registered with atexit before that first start run
 * after the join; ones registered later run before it.
 *
 * fork.  An atfork handler holds the registry lock across fork; in the child
 * every thread but the forking one is gone, so their handles are unlinked,
 * marked not alive and "lost" (their done events are set, and join does not
 * call pthread_join on them), and the forking thread becomes the main
 * thread, as in Python, and so non-daemon (weft__thread_after_fork).  The references their threads held died with those
 * threads, so lost handles are never freed; they are kept on the lost list
 * so that they stay reachable (leak checkers would report them otherwise).
 *
 * Invariants: a handle is in the list iff t->linked; reg_count is the
 * length of the list; alive is cleared only in registry_remove (and in the
 * fork child), under the lock.  Locking: reg_lock guards reg_first,
 * reg_last, reg_count and every handle's prev/next/linked; pending is
 * atomic.
 */
#include "thread.h"

#include <errno.h>
#include <stdlib.h>

#include "../lib/assert.h"
#include "../park/park.h"
#include "../sync/sync.h"
#include "weft/time.h"

static weft_lock reg_lock = WEFT_LOCK_INIT;
static weft_thread *reg_first, *reg_last; /* guarded by reg_lock */
static int reg_count;                     /* guarded by reg_lock */
static _Atomic(weft_thread *) pending;    /* atomic push-only stack */
static weft_thread *lost;                 /* fork child only; see below */
static weft_thread *exiting;              /* guarded by reg_lock; see
                                             weft__registry_walk */
static _Atomic bool atfork_installed;
static _Atomic bool exit_installed;

static void at_fork_prepare(void);
static void at_fork_parent(void);
static void at_fork_child(void);

static void install_atfork(void)
{
    if (!atomic_load_explicit(&atfork_installed, memory_order_acquire) &&
        !atomic_exchange(&atfork_installed, true))
        pthread_atfork(at_fork_prepare, at_fork_parent, at_fork_child);
}

static void link_tail(weft_thread *t)
{
    t->prev = reg_last;
    t->next = NULL;
    if (reg_last != NULL)
        reg_last->next = t;
    else
        reg_first = t;
    reg_last = t;
    t->linked = true;
    reg_count++;
}

static void unlink_one(weft_thread *t)
{
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        reg_first = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    else
        reg_last = t->prev;
    t->prev = t->next = NULL;
    t->linked = false;
    reg_count--;
}

/* Move the pending adoptions into the list, oldest first.  Lock held. */
static void drain(void)
{
    weft_thread *p = atomic_exchange_explicit(&pending, NULL,
                                              memory_order_acquire);
    weft_thread *rev = NULL, *next;

    for (; p != NULL; p = next) {
        next = p->pending_next;
        p->pending_next = rev;
        rev = p;
    }
    for (; rev != NULL; rev = next) {
        next = rev->pending_next;
        rev->pending_next = NULL;
        link_tail(rev);
    }
}

/* Forget the exiting threads that have set their done event: once set's
 * wake-ups are over (taking the event's guard waits out a setter still
 * inside set), such a thread wakes nobody any more.  Lock held. */
static void prune_exiting(void)
{
    weft_thread **p = &exiting, *t;

    while ((t = *p) != NULL) {
        if (!weft_event_is_set(&t->done)) {
            p = &t->exit_next;
            continue;
        }
        weft__waitq_lock(&t->done.wq);
        weft__waitq_unlock(&t->done.wq);
        *p = t->exit_next;
        t->exit_next = NULL;
        weft__thread_unref(t);
    }
}

static void reg_take(void)
{
    weft__lock_reacquire(&reg_lock);
    drain();
    if (exiting != NULL)
        prune_exiting();
}

static void reg_drop(void)
{
    weft_lock_release(&reg_lock);
}

void weft__registry_add(weft_thread *t)
{
    install_atfork();
    reg_take();
    link_tail(t);
    reg_drop();
}

void weft__registry_add_lockfree(weft_thread *t)
{
    weft_thread *head;

    install_atfork();
    head = atomic_load_explicit(&pending, memory_order_relaxed);
    do
        t->pending_next = head;
    while (!atomic_compare_exchange_weak_explicit(
        &pending, &head, t, memory_order_release, memory_order_relaxed));
}

void weft__registry_remove(weft_thread *t)
{
    bool was;

    reg_take();
    was = t->linked;
    if (was) {
        unlink_one(t);
        /* The registry's reference moves to the exiting list: the thread
         * sets its done event next (thread.c, current.c), and may wake a
         * joiner then, so until it has, the deadlock check must count it
         * as running. */
        t->exit_next = exiting;
        exiting = t;
    }
    atomic_store(&t->alive, false);
    reg_drop();
}

int weft__registry_walk(void (*fn)(weft_thread *t, void *arg), void *arg)
{
    int n = 0;

    reg_take(); /* prunes the exiting threads that are done */
    for (weft_thread *t = reg_first; t != NULL; t = t->next)
        fn(t, arg);
    for (weft_thread *t = exiting; t != NULL; t = t->exit_next)
        n++;
    reg_drop();
    return n;
}

void weft__thread_mark_system(weft_thread *t)
{
    if (t != NULL)
        atomic_store(&t->system, true);
}

void weft__registry_set_waiter(weft_thread *t, struct weft__waiter *w)
{
    atomic_store_explicit(&t->waiter, w, memory_order_release);
}

/* ---- enumerate -------------------------------------------------------- */

int weft_thread_enumerate(weft_thread **out, int cap)
{
    int n = 0;

    (void)weft_thread_main(); /* the main thread is always listed */
    reg_take();
    for (weft_thread *t = reg_first; t != NULL; t = t->next, n++) {
        if (out != NULL && n < cap) {
            weft__thread_ref(t);
            out[n] = t;
        }
    }
    reg_drop();
    return n;
}

int weft_thread_active_count(void)
{
    int n;

    (void)weft_thread_main();
    reg_take();
    n = reg_count;
    reg_drop();
    return n;
}

/* ---- join_all and the exit policy ------------------------------------- */

/* The first live non-daemon thread weft started, other than me, with a
 * reference taken; NULL if there is none. */
static weft_thread *next_to_join(weft_thread *me)
{
    weft_thread *t;

    reg_take();
    for (t = reg_first; t != NULL; t = t->next)
        if (!t->daemon && !t->foreign && t != me)
            break;
    if (t != NULL)
        weft__thread_ref(t);
    reg_drop();
    return t;
}

/* Threads leave the registry before they set done, so once a thread's done
 * event has fired it is no longer found, and each round makes progress.
 * Threads started meanwhile are waited for too. */
int weft_thread_join_all(int64_t deadline)
{
    weft_thread *me = weft__thread_self_or_null();
    weft_thread *t;
    int rc;

    while ((t = next_to_join(me)) != NULL) {
        rc = weft_event_wait(&t->done, deadline);
        weft__thread_unref(t);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void at_exit(void)
{
    weft_thread_join_all(WEFT_FOREVER);
}

void weft__registry_install_exit(void)
{
    if (!atomic_load_explicit(&exit_installed, memory_order_acquire) &&
        !atomic_exchange(&exit_installed, true))
        atexit(at_exit);
}

/* ---- fork ------------------------------------------------------------- */

static void at_fork_prepare(void)
{
    weft__lock_reacquire(&reg_lock);
}

static void at_fork_parent(void)
{
    weft_lock_release(&reg_lock);
}

/* Single-threaded: the child has only the forking thread.  Locks and
 * events that dead threads may have held or waited on are re-initialised
 * rather than released. */
static void at_fork_child(void)
{
    weft_thread *me = weft__thread_self_or_null();
    weft_thread *t, *next;

    weft_lock_init(&reg_lock);
    drain();
    /* Exiting threads are gone too, some perhaps before setting done: keep
     * them reachable with the lost ones. */
    for (t = exiting; t != NULL; t = next) {
        next = t->exit_next;
        t->exit_next = NULL;
        t->lost = true;
        weft_event_init(&t->done);
        weft_event_set(&t->done);
        t->next = lost;
        lost = t;
    }
    exiting = NULL;
    for (t = reg_first; t != NULL; t = next) {
        next = t->next;
        if (t == me)
            continue;
        unlink_one(t);
        atomic_store(&t->alive, false);
        atomic_store(&t->native_id, 0);
        t->lost = true;
        weft_lock_init(&t->os_lock);
        t->os_state = WEFT__OS_GONE;
        weft_event_init(&t->done);
        weft_event_set(&t->done);
        t->next = lost;
        lost = t;
    }
    weft__thread_after_fork(me);
}
