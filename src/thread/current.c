/* current.c - the calling thread's handle: weft_thread_current, the main
 * thread, and adoption of threads weft did not start.
 *
 * Design.  Each OS thread has a _Thread_local pointer to its handle.  A
 * weft thread sets it first thing in its trampoline.  A thread weft did not
 * start gets a handle at its first call that needs one (Python's dummy
 * threads): "MainThread" if it is the process's initial thread
 * (gettid() == getpid()), else "Dummy-N"; daemon, not joinable, and alive
 * until it exits.  Adoption never blocks: the handle is allocated, bound in
 * TLS and pushed onto the registry's lock-free pending stack, because the
 * logger adopts the threads that log.  An adopted thread's handle leaves the
 * registry when the thread exits, through a pthread key destructor.
 *
 * The main thread's handle exists independently of the main thread: the
 * first caller of weft_thread_main (from any thread) creates it with one
 * CAS, and the main thread binds to it when it first asks.  It has no key
 * destructor (the main thread ends with the process) and is never freed.
 *
 * Daemon flags (and so inheritance): the main thread is non-daemon, an
 * adopted thread is daemon, as in Python; a thread started by an adopted
 * thread inherits daemon from it unless opts say otherwise, exactly as a
 * Python thread started from a dummy thread does.  A library that runs weft
 * code on its own pthreads thus gets daemon threads, which never hold up
 * process exit; pass daemon = 0 to have them waited for.
 *
 * A thread on its way out.  Once a thread has let go of its handle (the
 * end of a weft thread's trampoline, an adopted thread's key destructor),
 * other pthread key destructors may still run on it and log, or ask for
 * the current thread.  Adopting it again then would register a new Dummy-N
 * whose own key destructor may never run (POSIX runs only a few destructor
 * rounds), leaving it in the registry for ever.  So letting go sets the
 * thread-local flag tls_exiting, and from then on weft_thread_current
 * returns a shared placeholder handle, "(exiting)": never registered, not
 * alive, foreign and daemon, created once and never freed.
 *
 * Locking: tls_current and tls_exiting are owner-only; main_handle and
 * exiting_handle are atomic.
 */
#include "thread.h"

#include <stdlib.h>
#include <unistd.h>

#include "../lib/assert.h"
#include "../park/park.h"
#include "../platform/platform.h"

static _Thread_local weft_thread *tls_current;
static _Thread_local bool tls_exiting;
static _Atomic(weft_thread *) main_handle;
static _Atomic(weft_thread *) exiting_handle;

/* The key whose destructor releases an adopted thread's handle; created on
 * first adoption, lock-free (a loser of the race deletes its own key). */
#define KEY_UNSET 0xffffffffu
static _Atomic unsigned adopt_key = KEY_UNSET;

static void adopted_exit(void *p);

static bool get_adopt_key(pthread_key_t *key)
{
    unsigned k = atomic_load_explicit(&adopt_key, memory_order_acquire);
    pthread_key_t mine;

    if (k == KEY_UNSET) {
        if (pthread_key_create(&mine, adopted_exit) != 0)
            return false;
        k = KEY_UNSET;
        if (atomic_compare_exchange_strong(&adopt_key, &k, (unsigned)mine))
            k = (unsigned)mine;
        else
            pthread_key_delete(mine);
    }
    *key = (pthread_key_t)k;
    return true;
}

weft_thread *weft__thread_self_or_null(void)
{
    return tls_current;
}

/* Unbinding (t == NULL) is only done by a thread on its way out. */
void weft__thread_bind(weft_thread *t)
{
    tls_current = t;
    tls_exiting = t == NULL;
    weft__self()->owner = t;
    if (t != NULL) /* for the dump and the deadlock check */
        weft__registry_set_waiter(t, weft__self());
}

/* The placeholder for threads past their handle (see the file comment).
 * Never blocks; a loser of the creation race frees its copy. */
static weft_thread *exiting_get(void)
{
    weft_thread *x = atomic_load_explicit(&exiting_handle,
                                          memory_order_acquire);
    weft_thread *expect = NULL;

    if (WEFT_LIKELY(x != NULL))
        return x;
    x = weft__thread_alloc("(exiting)", NULL, 1);
    if (x == NULL)
        WEFT_PANIC("out of memory creating the exiting-thread handle");
    x->foreign = true;
    x->daemon = true;
    atomic_store(&x->handle_state, WEFT__H_FOREIGN);
    atomic_store(&x->alive, false);
    if (!atomic_compare_exchange_strong_explicit(&exiting_handle, &expect, x,
                                                 memory_order_acq_rel,
                                                 memory_order_acquire)) {
        weft__thread_unref(x);
        return expect;
    }
    return x;
}

/* Create (or find) the main thread's handle.  Never blocks. */
static weft_thread *main_get(void)
{
    weft_thread *m = atomic_load_explicit(&main_handle, memory_order_acquire);
    weft_thread *expect = NULL;

    if (WEFT_LIKELY(m != NULL))
        return m;
    /* References: the registry's, and one that is never dropped. */
    m = weft__thread_alloc("MainThread", NULL, 2);
    if (m == NULL)
        WEFT_PANIC("out of memory creating the main thread's handle");
    m->foreign = true;
    m->daemon = false;
    atomic_store(&m->handle_state, WEFT__H_FOREIGN);
    atomic_store(&m->native_id, (long)getpid());
    if (!atomic_compare_exchange_strong_explicit(&main_handle, &expect, m,
                                                 memory_order_acq_rel,
                                                 memory_order_acquire)) {
        atomic_store(&m->refs, 1);
        weft__thread_unref(m);
        return expect;
    }
    weft__registry_add_lockfree(m);
    return m;
}

/* Adopt the calling foreign thread.  Never blocks on a weft lock. */
static weft_thread *adopt(void)
{
    pthread_key_t key;
    weft_thread *t;

    if (weft__gettid() == (long)getpid()) {
        t = main_get();
        weft__thread_bind(t);
        return t;
    }
    /* References: the registry's and the thread's own. */
    t = weft__thread_alloc(NULL, "Dummy", 2);
    if (t == NULL)
        WEFT_PANIC("out of memory adopting a thread");
    t->foreign = true;
    t->daemon = true;
    atomic_store(&t->handle_state, WEFT__H_FOREIGN);
    atomic_store(&t->native_id, weft__gettid());
    weft__registry_add_lockfree(t);
    weft__thread_bind(t);
    if (get_adopt_key(&key))
        pthread_setspecific(key, t);
    return t;
}

/* The adopted thread is exiting (pthread key destructor). */
static void adopted_exit(void *p)
{
    weft_thread *t = p;

    atomic_store(&t->native_id, 0);
    weft__registry_remove(t);
    weft_event_set(&t->done);
    if (tls_current == t)
        weft__thread_bind(NULL);
    weft__thread_unref(t);
}

weft_thread *weft_thread_current(void)
{
    weft_thread *t = tls_current;
    if (WEFT_LIKELY(t != NULL))
        return t;
    return tls_exiting ? exiting_get() : adopt();
}

weft_thread *weft_thread_main(void)
{
    return main_get();
}

const char *weft__thread_current_name(void)
{
    return weft_thread_name(weft_thread_current());
}

/* The fork child (single-threaded).  The forking thread becomes the main
 * thread, and like a main thread it is non-daemon: threads it starts from
 * now on inherit that, and the exit policy waits for them. */
void weft__thread_after_fork(weft_thread *me)
{
    atomic_store(&main_handle, me);
    if (me != NULL) {
        atomic_store(&me->native_id, weft__gettid());
        me->daemon = false;
    }
}
