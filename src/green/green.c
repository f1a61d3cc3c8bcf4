/* green.c - the green-thread API: spawn, join, detach, exit, yield, sleep,
 * current, cancel, names and ids, green-thread-local keys.
 *
 * Design.  A green thread is a struct weft_green (green.h) with a context on
 * a pooled stack (platform/stack.h) and an embedded park waiter, so every
 * primitive waits in it through park_green.c.  Join waits on the thread's
 * `done` event, which is why it works from OS threads and green threads
 * alike.  The struct has two references: the handle (dropped by a joiner
 * that succeeded, or by detach) and the running thread (dropped by the
 * scheduler after the thread switched away for the last time: its stack is
 * freed there, never on itself).  At zero the struct goes back to a pool
 * of type-stable structs, never to malloc, because a waker may still call
 * unblock on it late (park_green.c, "Lifetime").  Structs are carved from
 * slabs that stay reachable from a global list, so a green thread parked
 * forever at exit is not reported as a leak.
 *   (Rejected: malloc/free per green thread with a count of wakers in
 *   flight - every wake-up would pay two more atomic operations.)
 * Invariants: refs > 0 while the handle is held or the thread has not been
 * reaped; a struct in the pool has run_state FREE, which every waker
 * ignores; waiter.kind/ops/owner never change once a struct exists.
 * Locking: the pool is guarded by pool_lock (a futex mutex, a leaf); the
 * handle state and refs are atomic; the rest is written before the thread
 * is queued (the queue hand-off publishes it) or by the thread itself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "green.h"
#include "lib/assert.h"
#include "weft/log.h"

#define SLAB 64

enum { H_OWNED = 0, H_JOINED = 1, H_DETACHED = 2 };

struct slab {
    struct slab *next;
    weft_green g[SLAB];
};

static weft__waitq pool_lock;      /* only its guard is used */
static weft_green *pool_free;      /* guarded by pool_lock */
static struct slab *slabs;         /* guarded by pool_lock; never freed */
static _Atomic uint64_t next_id = 1;

static _Atomic int nkeys;
static void (*key_dtor[WEFT__GREEN_KEYS])(void *); /* written before nkeys
                                                      is raised */

/* ---- the struct pool -------------------------------------------------- */

static weft_green *galloc(void)
{
    weft_green *g;
    struct slab *s;

    weft__waitq_lock(&pool_lock);
    g = pool_free;
    if (g != NULL)
        pool_free = g->pool_next;
    weft__waitq_unlock(&pool_lock);
    if (g != NULL)
        return g;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    for (int i = 0; i < SLAB; i++) {
        weft_green *x = &s->g[i];
        weft__waiter_init(&x->waiter, WEFT__WAITER_GREEN,
                          &weft__green_park_ops, x);
        atomic_init(&x->run_state, WEFT__G_FREE);
        x->heap_idx = -1;
        x->pool_next = i + 1 < SLAB ? &s->g[i + 1] : NULL;
    }
    weft__waitq_lock(&pool_lock);
    s->next = slabs;
    slabs = s;
    s->g[SLAB - 1].pool_next = pool_free;
    pool_free = &s->g[1];
    weft__waitq_unlock(&pool_lock);
    return &s->g[0];
}

/* Give back what a life of g allocated besides its stack: a long name's
 * copy and the locals (already freed at exit unless the thread never ran
 * to its end). */
static void release_extras(weft_green *g)
{
    if (g->name != NULL && g->name != g->name_buf)
        free((char *)g->name);
    g->name = NULL;
    free(g->locals);
    g->locals = NULL;
}

/* The name is freed and FREE stored under pool_lock, which the debug
 * walk holds (weft__green_walk): so a struct the walk saw alive keeps its
 * name until the walk ends.  pool_lock was taken here already; the walk
 * costs spawn and exit nothing. */
static void gfree(weft_green *g)
{
    free(g->locals);
    g->locals = NULL;
    weft__waitq_lock(&pool_lock);
    release_extras(g);
    atomic_store(&g->run_state, WEFT__G_FREE);
    g->pool_next = pool_free;
    pool_free = g;
    weft__waitq_unlock(&pool_lock);
}

long weft__green_walk(void (*fn)(weft_green *g, void *arg), void *arg)
{
    long n = 0;

    weft__waitq_lock(&pool_lock);
    for (struct slab *s = slabs; s != NULL; s = s->next) {
        for (int i = 0; i < SLAB; i++) {
            weft_green *g = &s->g[i];
            /* Acquire: spawn stores RUNNABLE after writing id, name and
             * site (a struct between galloc and that store is still
             * FREE, and is skipped). */
            if (atomic_load_explicit(&g->run_state, memory_order_acquire) ==
                WEFT__G_FREE)
                continue;
            fn(g, arg);
            n++;
        }
    }
    weft__waitq_unlock(&pool_lock);
    return n;
}

static void unref(weft_green *g)
{
    if (atomic_fetch_sub(&g->refs, 1) == 1)
        gfree(g);
}

/* ---- life of a green thread ------------------------------------------- */

static void run_key_dtors(weft_green *g)
{
    int n = atomic_load(&nkeys);

    /* As pthreads: a destructor may set values again; a few passes.  A
     * value set in the last pass is dropped with the array. */
    for (int pass = 0; pass < 4 && g->locals != NULL; pass++) {
        bool any = false;
        for (int i = 0; i < n; i++) {
            void *v = g->locals[i];
            if (v != NULL && key_dtor[i] != NULL) {
                g->locals[i] = NULL;
                key_dtor[i](v);
                any = true;
            }
        }
        if (!any)
            break;
    }
    free(g->locals);
    g->locals = NULL;
}

static void green_main(void *arg)
{
    weft_green *g = arg;

    weft__gctx_entered(&g->gctx);
    weft__green_resumed(); /* it may have been switched to directly */
    g->result = g->fn(g->arg);
    run_key_dtors(g);
    atomic_store(&g->run_state, WEFT__G_DEAD);
    weft_event_set(&g->done);
    weft__green_switch_out(g, WEFT__SW_EXIT);
    WEFT_PANIC("green thread %s resumed after it exited", g->name);
}

void weft__green_reap(weft_green *g)
{
    weft__gctx_destroy(&g->gctx);
    weft__stack_free(&g->stack);
    /* Nothing of it runs any more: the deadlock check need not wait for
     * it (a DEAD thread may still be setting its done event). */
    atomic_store_explicit(&g->run_state, WEFT__G_EXITED, memory_order_release);
    unref(g);
    weft__sched_live_done();
}

/* Name g: an explicit name is copied (inline if it fits); the default
 * "Green-<id>" is written by hand into name_buf.  It is written at spawn,
 * not at the first weft_green_name, because the stack's overflow report
 * (stack_guard.c, a signal handler) prints the name and can format
 * nothing; the hand-written conversion costs ~30 instructions where
 * snprintf cost ~30% of a whole spawn.  -ENOMEM if a long name cannot be
 * copied. */
static int set_name(weft_green *g, const char *name)
{
    static const char prefix[] = "Green-";
    char digits[20];
    uint64_t v = g->id;
    int n = 0, at = (int)sizeof prefix - 1;

    if (name != NULL) {
        size_t len = strnlen(name, 63); /* weft/green.h: 63 bytes kept */
        char *copy;
        if (len < sizeof g->name_buf) {
            memcpy(g->name_buf, name, len);
            g->name_buf[len] = '\0';
            g->name = g->name_buf;
            return 0;
        }
        copy = malloc(len + 1);
        if (copy == NULL)
            return -ENOMEM;
        memcpy(copy, name, len);
        copy[len] = '\0';
        g->name = copy;
        return 0;
    }
    memcpy(g->name_buf, prefix, sizeof prefix - 1);
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        g->name_buf[at++] = digits[--n];
    g->name_buf[at] = '\0';
    g->name = g->name_buf;
    return 0;
}

int weft_green_spawn_at(weft_green **out, weft_green_fn fn, void *arg,
                        const weft_green_opts *opts, const char *site)
{
    size_t size = opts && opts->stack_size ? opts->stack_size
                                           : weft__stack_default_size();
    weft_green *g;
    int rc;

    if (fn == NULL || size > WEFT__STACK_MAX_SIZE)
        return -EINVAL;
    rc = weft__sched_ensure();
    if (rc != 0)
        return rc;
    if (WEFT_UNLIKELY(weft__sched_live() >= weft__gctx_limit())) {
        weft_log(WEFT_LOG_ERROR, "green thread spawn at %s failed: %ld "
                 "green threads live, the most this build allows "
                 "(ThreadSanitizer's thread limit)", site ? site : "?",
                 weft__gctx_limit());
        return -EAGAIN;
    }
    g = galloc();
    if (g == NULL)
        return -ENOMEM;
    rc = weft__stack_alloc(&g->stack, size);
    if (rc != 0) {
        weft_log(WEFT_LOG_ERROR, "green thread spawn at %s failed: %s",
                 site ? site : "?", weft__stack_last_error());
        gfree(g);
        return rc;
    }
    /* Reset the waiter for its new life; kind, ops and owner stay. */
    weft__waiter_reset(&g->waiter);
    atomic_store(&g->timer_worker, NULL);
    g->heap_idx = -1;
    g->id = atomic_fetch_add(&next_id, 1);
    g->fn = fn;
    g->arg = arg;
    g->result = 0;
    g->site = site;
    g->switch_why = 0;
    g->locals = NULL;
    if (set_name(g, opts ? opts->name : NULL) != 0) {
        weft__stack_free(&g->stack);
        gfree(g);
        return -ENOMEM;
    }
    weft_event_init(&g->done);
    atomic_store(&g->refs, out ? 2 : 1);
    atomic_store(&g->handle, out ? H_OWNED : H_DETACHED);
    weft__stack_set_owner(&g->stack, g->name, site);
    weft__gctx_make(&g->gctx, &g->stack, green_main, g);
    atomic_store(&g->run_state, WEFT__G_RUNNABLE);
    if (out)
        *out = g;
    weft__sched_live_add();
    weft__sched_spawned(g);
    return 0;
}

int weft_green_join(weft_green *g, int *result, int64_t deadline)
{
    int expect = H_OWNED;
    int rc;

    if (g == NULL)
        return -EINVAL;
    if (g == weft_green_current())
        return -EDEADLK;
    if (atomic_load(&g->handle) != H_OWNED)
        return -EINVAL;
    rc = weft_event_wait(&g->done, deadline);
    if (rc != 0)
        return rc;
    if (!atomic_compare_exchange_strong(&g->handle, &expect, H_JOINED))
        return -EINVAL;
    if (result)
        *result = g->result;
    unref(g);
    return 0;
}

int weft_green_detach(weft_green *g)
{
    int expect = H_OWNED;

    if (g == NULL ||
        !atomic_compare_exchange_strong(&g->handle, &expect, H_DETACHED))
        return -EINVAL;
    unref(g);
    return 0;
}

/* ---- the running green thread ----------------------------------------- */

/* Not inlined: the answer changes at switches (weft__tls_self is set by
 * the scheduler), and a caller must not keep a cached TLS address. */
__attribute__((noinline)) weft_green *weft_green_current(void)
{
    weft__waiter *w = weft__tls_self;

    return w != NULL && w->kind == WEFT__WAITER_GREEN ? w->owner : NULL;
}

int weft_green_yield(void)
{
    weft_green *g = weft_green_current();

    if (g == NULL)
        return -EPERM;
    weft__green_switch_out(g, WEFT__SW_YIELD);
    return 0;
}

int weft_green_sleep_until(int64_t deadline)
{
    return weft_sleep_until(deadline);
}

int weft_green_cancel(weft_green *g)
{
    if (g == NULL)
        return -EINVAL;
    weft__waiter_cancel(&g->waiter);
    return 0;
}

const char *weft_green_name(const weft_green *g)
{
    if (g == NULL)
        g = weft_green_current();
    return g ? g->name : NULL;
}

uint64_t weft_green_id(const weft_green *g)
{
    if (g == NULL)
        g = weft_green_current();
    return g ? g->id : 0;
}

/* ---- green-thread-local keys ------------------------------------------ */

int weft_green_key_create(weft_green_key *key, void (*destructor)(void *))
{
    static weft__waitq key_lock;
    int i;

    if (key == NULL)
        return -EINVAL;
    weft__waitq_lock(&key_lock);
    i = atomic_load(&nkeys);
    if (i < WEFT__GREEN_KEYS) {
        key_dtor[i] = destructor;
        atomic_store(&nkeys, i + 1);
    }
    weft__waitq_unlock(&key_lock);
    if (i >= WEFT__GREEN_KEYS)
        return -EAGAIN;
    key->index = i;
    return 0;
}

void *weft_green_key_get(weft_green_key key)
{
    weft_green *g = weft_green_current();

    if (g == NULL || key.index < 0 || key.index >= atomic_load(&nkeys) ||
        g->locals == NULL)
        return NULL;
    return g->locals[key.index];
}

int weft_green_key_set(weft_green_key key, void *value)
{
    weft_green *g = weft_green_current();

    if (g == NULL)
        return -EPERM;
    if (key.index < 0 || key.index >= atomic_load(&nkeys))
        return -EINVAL;
    if (g->locals == NULL) {
        if (value == NULL)
            return 0; /* unset is already NULL: nothing to allocate */
        g->locals = calloc(WEFT__GREEN_KEYS, sizeof *g->locals);
        if (g->locals == NULL)
            return -ENOMEM;
    }
    g->locals[key.index] = value;
    return 0;
}
