/* inflight.h - a per-OS-thread slot naming the object whose call is still
 * touching it after it has let other threads in, so that the object's
 * fini can wait that call out before the storage is freed.
 *
 * The problem.  A lock's release stores "free", then looks at the lock's
 * waiter bits (one plain store and one load, no read-modify-write: see
 * src/sync/lock.c).  Between the two, another thread may take the lock,
 * release it, call fini and free it - legitimately: the releaser's call
 * happens-before nothing the other thread can observe.  POSIX and C++ both
 * require mutexes to allow this (the reference-count-inside-the-object
 * pattern, glibc bug 13690), and so do our queues (a consumer that got the
 * last item destroys the queue while the put that delivered it still looks
 * at the getter count).  A read-modify-write release would not close it
 * either: its slow path touches the waiter queue after the release.
 *
 * The slot.  Such a call names its object in the calling OS thread's slot
 * before it publishes (weft__inflight_enter) and clears it after its last
 * touch (weft__inflight_leave); the object's fini calls
 * weft__inflight_wait, which scans every slot and waits while one names
 * the object.  The call's window never parks or switches green threads, so
 * one slot per OS thread is enough, and a green thread that migrates takes
 * no slot with it.  Cost on the hot path: two stores to a line the thread
 * owns, and a TLS load.
 *
 * Why it is enough.  Enter is a release store made before the publishing
 * store (itself a release), so a thread that saw the publication (an
 * acquire load or CAS of the lock word) and then scans sees the slot's
 * entry or a later value of it.  Every store to a slot is a release and
 * the scan loads with acquire, so a scan that sees the slot cleared, or
 * naming another object, sees everything the call did before it.
 *
 * Slots live in chunks that are never freed (a scan never meets freed
 * memory); a thread takes a free one at its first enter and gives it back
 * at exit (a pthread key's destructor).  A forked child frees the slots of
 * the threads that did not follow it.
 */
#ifndef WEFT_PLATFORM_INFLIGHT_H
#define WEFT_PLATFORM_INFLIGHT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Windows nest (a release's wake-up may release an internal lock): up to
 * WEFT__INFLIGHT_DEPTH at once, innermost last. */
#define WEFT__INFLIGHT_DEPTH 4

typedef struct weft__inflight {
    _Atomic(const void *) obj[WEFT__INFLIGHT_DEPTH]; /* in flight, or NULL */
    uint32_t depth;               /* windows open; the owner's alone */
    _Atomic uint32_t used;        /* 1 while a thread owns the slot */
} __attribute__((aligned(64))) weft__inflight;

extern _Thread_local weft__inflight *weft__tls_inflight
    __attribute__((tls_model("initial-exec")));
weft__inflight *weft__inflight_slow(void);
_Noreturn void weft__inflight_too_deep(void);

/* Name obj in the calling OS thread's slot, before the store that lets
 * other threads in. */
static inline void weft__inflight_enter(const void *obj)
{
    weft__inflight *s = weft__tls_inflight;
    uint32_t d;

    if (__builtin_expect(s == 0, 0))
        s = weft__inflight_slow();
    d = s->depth;
    if (__builtin_expect(d >= WEFT__INFLIGHT_DEPTH, 0))
        weft__inflight_too_deep();
    s->depth = d + 1;
    atomic_store_explicit(&s->obj[d], obj, memory_order_release);
}

/* After the call's last touch of the object: closes the innermost window. */
static inline void weft__inflight_leave(void)
{
    weft__inflight *s = weft__tls_inflight;
    uint32_t d = --s->depth;

    atomic_store_explicit(&s->obj[d], NULL, memory_order_release);
}

/* Return once no OS thread has obj in flight (for fini and destroy). */
void weft__inflight_wait(const void *obj);

#endif
