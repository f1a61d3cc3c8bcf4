/* thread.h - the thread layer's internal interface: the handle's layout
 * (shared by thread.c, registry.c and current.c), the registry, adoption of
 * foreign threads, and what the logger and tls.c need.
 *
 * Lock order: registry lock before a handle's os_lock (no path takes both
 * today).  Neither is ever held while logging, while calling user code, or
 * while parked on anything else.
 */
#ifndef WEFT_THREAD_INTERNAL_H
#define WEFT_THREAD_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "weft/sync.h"
#include "weft/thread.h"

struct weft__waiter; /* src/park/park.h */

/* One name a handle has had.  Names are immutable once published, and a
 * handle keeps every name it ever had until it is freed, so a reader that
 * loaded the name pointer (the logger, weft_thread_name) never sees the
 * string freed under it, without taking any lock. */
struct weft__tname {
    struct weft__tname *next;             /* retired list; set before push */
    char s[];
};

/* What the creator's reference is doing (handle_state). */
enum {
    WEFT__H_STARTING = 0, /* pthread_create not yet returned */
    WEFT__H_OWNED = 1,    /* the creator (or whoever it gave it to) holds it */
    WEFT__H_JOINED = 2,   /* consumed by join */
    WEFT__H_DETACHED = 3, /* consumed by detach */
    WEFT__H_FOREIGN = 4,  /* main or adopted: there is no creator reference */
};

/* Whether the OS thread behind a weft-started handle may be renamed. */
enum {
    WEFT__OS_NEW = 0,     /* not yet running */
    WEFT__OS_RUNNING = 1, /* pt_self is valid */
    WEFT__OS_GONE = 2,    /* the thread is past its last use of its name */
};

struct weft_thread {
    _Atomic int refs;                     /* atomic; 0 frees */
    uint64_t id;                          /* constant */
    bool foreign;                         /* constant: main or adopted */
    bool daemon;                          /* constant (but cleared for the
                                             forking thread in the fork
                                             child, single-threaded) */
    weft_thread_fn fn;                    /* constant */
    void *arg;                            /* constant */
    _Atomic(struct weft__tname *) name;   /* atomic; see weft__tname */
    _Atomic(struct weft__tname *) retired;/* atomic push-only stack */
    _Atomic long native_id;               /* atomic; 0 when not running */
    _Atomic bool alive;                   /* atomic; cleared under reg lock */
    _Atomic int handle_state;             /* atomic; WEFT__H_* */
    int result;                           /* written before done is set */
    pthread_t pt;                         /* written by the creator before
                                             handle_state leaves STARTING */
    bool lost;                            /* the thread was left behind by
                                             fork(): do not pthread_join it
                                             (written in the atfork child) */
    weft_event done;                      /* set once the thread has ended */
    /* OS naming (weft-started threads only). */
    weft_lock os_lock;
    int os_state;                         /* guarded by os_lock */
    pthread_t pt_self;                    /* guarded by os_lock */
    /* Registry links. */
    weft_thread *prev, *next;             /* guarded by the registry lock */
    bool linked;                          /* guarded by the registry lock */
    weft_thread *pending_next;            /* written before the push */
    /* For the debug layer (src/debug/). */
    _Atomic(struct weft__waiter *) waiter;/* the thread's own park waiter,
                                             stored by the thread when it
                                             binds to the handle; valid
                                             while linked (a thread leaves
                                             the registry before its TLS
                                             goes) */
    _Atomic bool system;                  /* a runtime thread (monitor,
                                             offload): never counted as a
                                             possible waker by the
                                             deadlock check */
    weft_thread *exit_next;               /* exiting list; guarded by the
                                             registry lock */
};

/* ---- handles (thread.c) ----------------------------------------------- */

/* A new handle with refs references, named name (or "<prefix>-N"). */
weft_thread *weft__thread_alloc(const char *name, const char *prefix,
                                int refs);
void weft__thread_ref(weft_thread *t);
void weft__thread_unref(weft_thread *t);

/* ---- the registry (registry.c) ---------------------------------------- */

/* Link t into the live set (takes the lock). */
void weft__registry_add(weft_thread *t);
/* Link t without any lock: for adoption, which must never block (the
 * logger adopts).  The next registry operation moves it into the list. */
void weft__registry_add_lockfree(weft_thread *t);
/* Unlink t, clear alive, and drop the registry's reference.  Idempotent. */
void weft__registry_remove(weft_thread *t);
/* The debug layer's view of the registry: call fn(t, arg) for every live
 * thread with the registry lock held (fn must copy what it needs and must
 * not block or take the registry lock); returns how many threads have left
 * the registry but may still be running their last steps (setting their
 * done event, which can wake a joiner): the deadlock check counts those as
 * possible wakers. */
int weft__registry_walk(void (*fn)(weft_thread *t, void *arg), void *arg);
/* Mark t as a runtime thread (see weft_thread.system). */
void weft__thread_mark_system(weft_thread *t);
/* Record the calling thread's own waiter in t (weft__thread_bind). */
void weft__registry_set_waiter(weft_thread *t, struct weft__waiter *w);

/* Register the at-exit join (once; called at the first thread start). */
void weft__registry_install_exit(void);

/* ---- the calling thread (current.c) ----------------------------------- */

/* The calling thread's handle if it has one, without adopting. */
weft_thread *weft__thread_self_or_null(void);
/* Bind the calling OS thread to t.  t == NULL unbinds a thread on its way
 * out: weft_thread_current then returns the "(exiting)" placeholder. */
void weft__thread_bind(weft_thread *t);
/* The atfork child hook: the forking thread becomes the main thread. */
void weft__thread_after_fork(weft_thread *me);

/* The calling thread's name, for the logger: never blocks, never takes a
 * weft lock (a foreign thread is adopted lock-free at first use), and the
 * string stays valid while the calling thread runs. */
const char *weft__thread_current_name(void);

/* ---- thread-local data (tls.c) ---------------------------------------- */

/* Run the calling thread's TLS destructors (POSIX rounds) and free its
 * values.  Called by a weft thread after fn and the failure hook; foreign
 * threads get the same through a pthread key destructor. */
void weft__tls_thread_exit(void);

#endif
