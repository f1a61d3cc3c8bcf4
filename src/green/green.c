/* green.c - the green-thread API: spawn, join, detach, exit, yield, sleep,
 * current, cancel, names and ids, green-thread-local keys.
 *
 * Design.  A green thread is a struct weft_green (green.h) with a context on
 * a pooled stack (platform/stack.h) and an embedded park waiter, so every
 * primitive waits in it through park_green.c.  Join waits on the thread's
 * `done` event, which is why it works from OS threads and green threads
 * alike - but only if the thread has not ended, and the exit sets the
 * event only if a joiner announced itself ("Join", above green_main).
 * Structs and stacks come from the calling worker's cache, without a lock
 * ("the per-worker cache"), in front of the global pools; the spawn only
 * reserves the stack, and the first run makes the context on the
 * worker's hot stack instead ("Starting").  The struct has
 * two references: the handle (dropped by a joiner
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
 * Locking: the global pool is guarded by pool_lock (a futex mutex, a leaf);
 * a worker's caches are its owner's only; the handle state, join_state and
 * refs are atomic; the rest is written before the thread is queued (the
 * queue hand-off publishes it) or by the thread itself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "green.h"
#include "lib/assert.h"
#include "platform/platform.h"
#include "weft/log.h"

#define SLAB 64
#define HALF (WEFT__GREEN_CACHE / 2)

enum { H_OWNED = 0, H_JOINED = 1, H_DETACHED = 2 };
enum { JOIN_DONE = 1, JOIN_WAITER = 2 };

struct slab {
    struct slab *next;
    weft_green g[SLAB];
};

static weft__waitq pool_lock;      /* only its guard is used */
static weft_green **pool_free;     /* guarded by pool_lock: the free
                                      structs, an array (not a list through
                                      the structs: taking a batch then
                                      chases no pointers through cold
                                      structs); room for every struct */
static size_t pool_n, pool_cap;    /* guarded by pool_lock */
static size_t nstructs;            /* guarded by pool_lock: in all slabs */
static struct slab *slabs;         /* guarded by pool_lock; never freed */
static _Atomic int walking;        /* debug walks under way */
static _Atomic uint64_t next_id = 1;

static _Atomic int nkeys;
static void (*key_dtor[WEFT__GREEN_KEYS])(void *); /* written before nkeys
                                                      is raised */

/* ---- the global struct pool ------------------------------------------- */

/* A new slab, linked into the slab list (so the walk sees it) but not into
 * pool_free: the caller takes all of its structs.  The pool's array grows
 * here to hold every struct, so that putting one back never fails.  NULL
 * without memory. */
static struct slab *new_slab(void)
{
    struct slab *s = calloc(1, sizeof *s);
    weft_green **arr = NULL;

    if (s == NULL)
        return NULL;
    for (int i = 0; i < SLAB; i++) {
        weft_green *x = &s->g[i];
        weft__waiter_init(&x->waiter, WEFT__WAITER_GREEN,
                          &weft__green_park_ops, x);
        atomic_init(&x->run_state, WEFT__G_FREE);
        weft_event_init(&x->done);
        x->heap_idx = -1;
    }
    weft__waitq_lock(&pool_lock);
    if (nstructs + SLAB > pool_cap) {
        size_t cap = pool_cap ? pool_cap * 2 : 16 * SLAB;
        arr = realloc(pool_free, cap * sizeof *arr);
        if (arr == NULL) {
            weft__waitq_unlock(&pool_lock);
            free(s);
            return NULL;
        }
        pool_free = arr;
        pool_cap = cap;
    }
    s->next = slabs;
    slabs = s;
    nstructs += SLAB;
    weft__waitq_unlock(&pool_lock);
    return s;
}

/* Up to max free structs from the global pool into v; how many. */
static int gtake_global(weft_green **v, int max)
{
    int n;

    weft__waitq_lock(&pool_lock);
    n = pool_n < (size_t)max ? (int)pool_n : max;
    pool_n -= (size_t)n;
    if (n > 0) /* pool_free is NULL before the first slab */
        memcpy(v, pool_free + pool_n, (size_t)n * sizeof *v);
    weft__waitq_unlock(&pool_lock);
    return n;
}

/* Put the n structs of v (FREE already) on the global pool at once. */
static void gput_global(weft_green **v, int n)
{
    if (n == 0)
        return;
    weft__waitq_lock(&pool_lock);
    WEFT_ASSERT(pool_n + (size_t)n <= pool_cap);
    memcpy(pool_free + pool_n, v, (size_t)n * sizeof *v);
    pool_n += (size_t)n;
    weft__waitq_unlock(&pool_lock);
}

/* One struct from the global pool (callers off a worker). */
static weft_green *galloc_global(void)
{
    weft_green *g;
    struct slab *s;

    if (gtake_global(&g, 1) == 1)
        return g;
    if ((s = new_slab()) == NULL)
        return NULL;
    weft_green *rest[SLAB - 1];
    for (int i = 1; i < SLAB; i++)
        rest[i - 1] = &s->g[i];
    gput_global(rest, SLAB - 1);
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

/* ---- the per-worker cache ---------------------------------------------
 *
 * Each worker keeps up to WEFT__GREEN_CACHE free structs and as many
 * stacks (of one size: the size of the last one cached) for itself, so
 * that a spawn and an exit on a worker take no lock: a spawn pops a struct
 * and a stack, the reap pushes the stack, the last unref pushes the struct,
 * each from the cache of the worker it runs on (owner only: nothing but
 * that worker's OS thread touches it, and no switch happens inside these
 * functions).  An empty cache takes HALF from the global pools in one lock
 * hold each; a full one gives half back the same way (the top half: no
 * copying, and the global pools hand out their most recent first, so
 * those are what the next refill anywhere takes); a worker
 * that stops, and a spare that rests, give back everything
 * (weft__green_cache_flush).  So a batch that spawns on one worker and
 * exits on another (a spare, or a thief) costs one lock hold per HALF
 * green threads per pool.  Stacks are cached apart from structs, not
 * attached to them: a green thread that exited but is not yet joined
 * holds no stack.
 *   (Rejected: a lock-free global stack of structs - the ABA problem needs
 *   tagged pointers, and every spawn would still pay a CAS.)
 * The cached structs are FREE, as in the global pool: late wakers ignore
 * them (park_green.c, "Lifetime").  The debug walk (weft__green_walk)
 * holds pool_lock to keep the structs it visits from being recycled; a
 * struct going to a cache does not take that lock, so the two meet as an
 * asymmetric Dekker pair: gfree stores FREE, light fence, reads walking;
 * the walk raises walking, heavy fence, then reads run_state.  Either the
 * walk sees FREE (and skips the struct), or gfree sees the walk and waits
 * for it by taking and dropping pool_lock before the struct can be reused
 * or its long name freed. */

/* Start fetching every cache line of g, for writing: with the assembly
 * switch its 344 bytes from any offset in a line span at most 7 lines
 * (the last may be a neighbour's; a prefetch is only a hint).  With the
 * ucontext backend the struct holds the saved machine state (~1.3 KiB)
 * and only its first 7 lines are fetched.  Written out: the loop cost ~25
 * instructions per call. */
static inline void prefetch_struct(weft_green *g)
{
    const char *p = (const char *)((uintptr_t)g & ~(uintptr_t)63);

    __builtin_prefetch(p, 1);
    __builtin_prefetch(p + 64, 1);
    __builtin_prefetch(p + 128, 1);
    __builtin_prefetch(p + 192, 1);
    __builtin_prefetch(p + 256, 1);
    __builtin_prefetch(p + 320, 1);
    __builtin_prefetch(p + 384, 1);
}

/* Owner of w: a free struct, or NULL without memory. */
static weft_green *cache_galloc(weft__worker *w)
{
    struct slab *s;
    int n = 0;

    if (WEFT_LIKELY(w->gcache_n > 0)) {
        weft_green *g = w->gcache[--w->gcache_n];
        /* The next spawn's struct: in a batch it is cold, and fetching it
         * now overlaps those misses with this spawn's work.  Every line,
         * for writing: the spawn writes all of them, the first with the
         * waiter's reset, whose sequentially consistent stores wait for
         * the line (callgrind's cache simulation, 100k batch: 5.4 of the
         * 12.7 L1 misses per green thread were the spawn's). */
        if (w->gcache_n > 0)
            prefetch_struct(w->gcache[w->gcache_n - 1]);
        return g;
    }
    n = gtake_global(w->gcache, HALF);
    if (n > 0) {
        w->gcache_n = n - 1;
        return w->gcache[n - 1];
    }
    if ((s = new_slab()) == NULL)
        return NULL;
    for (int i = 1; i < SLAB && n < WEFT__GREEN_CACHE; i++)
        w->gcache[n++] = &s->g[i];
    w->gcache_n = n;
    return &s->g[0];
}

/* Owner of w: cache g (FREE). */
static void cache_gfree(weft__worker *w, weft_green *g)
{
    if (WEFT_UNLIKELY(w->gcache_n == WEFT__GREEN_CACHE)) {
        gput_global(w->gcache + HALF, WEFT__GREEN_CACHE - HALF);
        w->gcache_n = HALF;
    }
    w->gcache[w->gcache_n++] = g;
}

/* Owner of w: a stack of size bytes (rounded) into *s.  0 or an error of
 * weft__stack_alloc. */
static int cache_stack_alloc(weft__worker *w, weft__stack *s, size_t size)
{
    size_t n;

    if (WEFT_LIKELY(w->scache_n > 0 && w->scache_size == size)) {
        *s = w->scache[--w->scache_n];
        return 0;
    }
    if (w->scache_n == 0 &&
        (n = weft__stack_alloc_n(w->scache, HALF, size)) > 0) {
        w->scache_size = size;
        w->scache_n = (int)n - 1;
        *s = w->scache[n - 1];
        return 0;
    }
    return weft__stack_alloc(s, size); /* a new one, or another size */
}

/* Owner of w: cache the stack s, recycled already (weft__stack_recycle)
 * or never run on, and zero *s; a stack of another size than the cached
 * ones goes to the pool. */
static void cache_stack_put(weft__worker *w, weft__stack *s)
{
    if (WEFT_UNLIKELY(w->scache_n > 0 && w->scache_size != s->size)) {
        weft__stack_free(s);
        return;
    }
    if (WEFT_UNLIKELY(w->scache_n == WEFT__GREEN_CACHE)) {
        weft__stack_free_n(w->scache + HALF, WEFT__GREEN_CACHE - HALF);
        w->scache_n = HALF;
    }
    w->scache_size = s->size;
    w->scache[w->scache_n++] = *s;
    s->lo = NULL;
    s->size = 0;
    s->slot = NULL;
}

/* Owner of w: cache the stack s (no code runs on it any more). */
static void cache_stack_free(weft__worker *w, weft__stack *s)
{
    weft__stack_recycle(s);
    cache_stack_put(w, s);
}

void weft__green_cache_flush(weft__worker *w)
{
    gput_global(w->gcache, w->gcache_n);
    w->gcache_n = 0;
    weft__stack_free_n(w->scache, (size_t)w->scache_n);
    w->scache_n = 0;
    weft__stack_free(&w->hot_stack); /* zeroed: nothing */
}

/* g's last reference is gone: back to the calling worker's cache, or off
 * a worker to the global pool.  The name is freed and FREE stored so that
 * the debug walk never reads a name being freed or rewritten (see the
 * cache's comment for the Dekker pair; the global path holds pool_lock,
 * which the walk holds). */
static void gfree(weft_green *g)
{
    weft__worker *w = weft__worker_self();

    if (WEFT_LIKELY(w != NULL)) {
        atomic_store_explicit(&g->run_state, WEFT__G_FREE,
                              memory_order_release);
        weft__fence_light(); /* FREE before walking; pairs with the heavy */
        /* Acquire: a 0 written by the end of a walk orders that walk's
         * reads before whatever the struct's next life writes. */
        if (WEFT_UNLIKELY(atomic_load_explicit(&walking,
                                               memory_order_acquire) != 0)) {
            weft__waitq_lock(&pool_lock); /* waits for the walk to end */
            weft__waitq_unlock(&pool_lock);
        }
        if (WEFT_UNLIKELY(g->locals != NULL || g->name != g->name_buf))
            release_extras(g);
        cache_gfree(w, g);
        return;
    }
    weft__waitq_lock(&pool_lock);
    release_extras(g);
    atomic_store(&g->run_state, WEFT__G_FREE);
    WEFT_ASSERT(pool_n < pool_cap);
    pool_free[pool_n++] = g;
    weft__waitq_unlock(&pool_lock);
}

long weft__green_walk(void (*fn)(weft_green *g, void *arg), void *arg)
{
    long n = 0;

    atomic_fetch_add(&walking, 1);
    weft__fence_heavy(); /* walking before run_state; see the cache */
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
    atomic_fetch_sub_explicit(&walking, 1, memory_order_release);
    return n;
}

static void unref(weft_green *g)
{
    if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) == 1)
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

/* Join.  done is an event only for joiners that wait: the exit sets
 * JOIN_DONE with one atomic OR and sets the event only if a joiner
 * announced itself first (JOIN_WAITER, also an OR on the same word, so one
 * of the two sees the other); a join that finds JOIN_DONE returns without
 * touching the event.  Most green threads are joined after they ended, or
 * detached, and their exit costs no lock and no wake-up.  The joiner still
 * waits on done, which the debug layer recognises as "joining g". */
static void wake_joiners(weft_green *g)
{
    weft__worker *w = weft__worker_self();

    w->wake_tail = true;
    weft_event_set(&g->done);
    w->wake_tail = false;
}

static void green_main(void *arg)
{
    weft_green *g = arg;

    weft__gctx_entered(&g->gctx);
    weft__green_resumed(); /* it may have been switched to directly */
    g->result = g->fn(g->arg);
    if (g->locals != NULL)
        run_key_dtors(g);
    atomic_store_explicit(&g->run_state, WEFT__G_DEAD, memory_order_release);
    if (atomic_fetch_or_explicit(&g->join_state, JOIN_DONE,
                                 memory_order_acq_rel) & JOIN_WAITER)
        wake_joiners(g);
    weft__green_switch_out(g, WEFT__SW_EXIT);
    WEFT_PANIC("green thread %s resumed after it exited", g->name);
}

/* Starting.  A green thread's context is made, and its stack touched, at
 * its first run, not at spawn (weft__green_start, called by the scheduler
 * or the direct switch just before they switch to a thread whose
 * switch_why is still WEFT__SW_NONE): the spawn only reserves a stack, as
 * a descriptor taken from the cache, so that running out of stacks still
 * fails the spawn.  The start then swaps that reservation for the worker's
 * hot stack, the stack of the green thread reaped last there (its top
 * lines, and the page's TLB entry, are still in the CPU), and the
 * reservation takes the hot stack's place.  So a batch of short green
 * threads runs on one stack instead of touching the top page of a stack
 * per thread twice (the context at spawn, the run much later): at 100,000
 * green threads those were two TLB misses and two cache misses per thread.
 * The reservation's memory is never touched.  Both are stacks of the one
 * pool, of the same size (else no swap), and the swap moves descriptors
 * only, on the worker's own thread: hot_stack is owner-only, and the
 * thread being started is not running anywhere, its fields owned by
 * whoever is about to run it (the queue hand-off ordered the spawner's
 * writes before).  The overflow report's names are set on the stack it
 * runs on, here; no code ran on a reserved stack, so it needs none.
 *   (Rejected: taking a stack only at the first run - the spawn could no
 *   longer fail when no stack can be had, which it must, naming the
 *   limit.) */
/* Owner of w: start fetching the struct of the green thread at the head
 * of w's ring, most often the next to run here.  In a batch that overflowed
 * the ring its lines are cold (spawned long ago: callgrind's cache
 * simulation counts ~3 L1 read misses per green thread in the start, the
 * run and the exit), and fetching them while this one runs overlaps the
 * misses.  Only a hint: the loads are relaxed, a thief may have taken the
 * entry meanwhile, and prefetching any address is harmless. */
static inline void prefetch_next(weft__worker *w)
{
    uint32_t h = atomic_load_explicit(&w->rq.head, memory_order_relaxed);
    uint32_t t = atomic_load_explicit(&w->rq.tail, memory_order_relaxed);

    if (h != t)
        prefetch_struct(atomic_load_explicit(
            &w->rq.slot[h % WEFT__RUNQ_CAP], memory_order_relaxed));
}

void weft__green_start(weft__worker *w, weft_green *g)
{
    weft__stack *h = &w->hot_stack;

    if (h->slot != NULL && h->size == g->stack.size) {
        weft__stack t = *h;
        *h = g->stack;
        g->stack = t;
    }
    weft__stack_set_owner(&g->stack, g->name, g->site);
    weft__gctx_make(&g->gctx, &g->stack, green_main, g);
    prefetch_next(w);
}

/* Owner of w: s (no code runs on it any more) becomes w's hot stack, the
 * one the next green thread to start here takes ("Starting"); the hot
 * stack it replaces (recycled already, or never run on) goes to the
 * cache.  *s is zeroed. */
static void keep_hot(weft__worker *w, weft__stack *s)
{
    weft__stack_recycle(s);
    if (w->hot_stack.slot != NULL)
        cache_stack_put(w, &w->hot_stack);
    w->hot_stack = *s;
    s->lo = NULL;
    s->size = 0;
    s->slot = NULL;
}

void weft__green_reap(weft_green *g)
{
    weft__worker *w = weft__worker_self();

    weft__gctx_destroy(&g->gctx);
    if (WEFT_UNLIKELY(g->name != g->name_buf)) /* freed with the struct */
        weft__stack_set_owner(&g->stack, NULL, NULL);
    if (WEFT_LIKELY(w != NULL))
        keep_hot(w, &g->stack);
    else
        weft__stack_free(&g->stack);
    /* Nothing of it runs any more: the deadlock check need not wait for
     * it (a DEAD thread may still be setting its done event). */
    atomic_store_explicit(&g->run_state, WEFT__G_EXITED, memory_order_release);
    unref(g);
    weft__sched_live_done(w);
}

/* Write "Green-<id>" into buf (WEFT__GREEN_NAME_BUF bytes: 6 + 20 digits
 * + NUL fit), two digits at a time, without libc. */
static void format_default(char *buf, uint64_t v)
{
    static const char pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233"
        "34353637383940414243444546474849505152535455565758596061626364656667"
        "6869707172737475767778798081828384858687888990919293949596979899";
    uint64_t p = 10;
    char *end;
    int len = 1;

    while (len < 20 && v >= p) { /* 20 digits hold any uint64_t */
        len++;
        p *= 10;
    }
    memcpy(buf, "Green-", 6);
    end = buf + 6 + len;
    *end = '\0';
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        end -= 2;
        end[0] = pairs[2 * r];
        end[1] = pairs[2 * r + 1];
    }
    if (v >= 10) {
        end[-2] = pairs[2 * v];
        end[-1] = pairs[2 * v + 1];
    } else {
        end[-1] = (char)('0' + v);
    }
}

/* Ids on a worker come from a block of ID_BLOCK taken with one atomic add
 * (no shared cache line per spawn), and the worker keeps the default name
 * of its next id written out (id_text), so that naming a green thread is a
 * 32-byte copy and a decimal increment, mostly of one digit.  Ids stay
 * unique and, per spawning worker, increasing.  Owner of w. */
#define ID_BLOCK 256

static uint64_t next_worker_id(weft__worker *w, char *name)
{
    uint64_t id;
    int i;

    if (WEFT_UNLIKELY(w->id_next == w->id_end)) {
        w->id_next = atomic_fetch_add_explicit(&next_id, ID_BLOCK,
                                               memory_order_relaxed);
        w->id_end = w->id_next + ID_BLOCK;
        format_default(w->id_text, w->id_next);
        w->id_len = (int)strlen(w->id_text);
    }
    id = w->id_next++;
    memcpy(name, w->id_text, sizeof w->id_text);
    /* Advance id_text to id_next: add one to its last digit, carrying. */
    for (i = w->id_len - 1; i >= 6 && w->id_text[i] == '9'; i--)
        w->id_text[i] = '0';
    if (WEFT_LIKELY(i >= 6)) {
        w->id_text[i]++;
    } else { /* all nines: one digit more */
        format_default(w->id_text, w->id_next);
        w->id_len++;
    }
    return id;
}

/* Name g: an explicit name is copied (inline if it fits); the default
 * "Green-<id>" is in name_buf already if written (next_worker_id), else
 * formatted by hand.  It is written at spawn, not at the first
 * weft_green_name, because the stack's overflow report (stack_guard.c, a
 * signal handler) prints the name and can format nothing.  -ENOMEM if a
 * long name cannot be copied. */
static int set_name(weft_green *g, const char *name, bool written)
{
    if (WEFT_UNLIKELY(name != NULL)) {
        size_t n = strnlen(name, 63); /* weft/green.h: 63 bytes kept */
        char *copy;
        if (n < sizeof g->name_buf) {
            memcpy(g->name_buf, name, n);
            g->name_buf[n] = '\0';
            g->name = g->name_buf;
            return 0;
        }
        copy = malloc(n + 1);
        if (copy == NULL)
            return -ENOMEM;
        memcpy(copy, name, n);
        copy[n] = '\0';
        g->name = copy;
        return 0;
    }
    if (!written)
        format_default(g->name_buf, g->id);
    g->name = g->name_buf;
    return 0;
}

/* A failed spawn gives g (still FREE) and its stack back. */
static void spawn_undo(weft__worker *w, weft_green *g)
{
    if (w != NULL)
        cache_stack_free(w, &g->stack);
    else
        weft__stack_free(&g->stack);
    gfree(g);
}

int weft_green_spawn_at(weft_green **out, weft_green_fn fn, void *arg,
                        const weft_green_opts *opts, const char *site)
{
    size_t size = opts && opts->stack_size ? opts->stack_size
                                           : weft__stack_default_size();
    weft__worker *w;
    weft_green *g;
    int rc;

    if (fn == NULL || size > WEFT__STACK_MAX_SIZE)
        return -EINVAL;
    if (opts && opts->stack_size)
        size = weft__stack_round(size); /* the default is rounded */
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
    /* On a worker its cache, without a lock; no switch happens until the
     * thread is queued, so w stays the caller's worker. */
    w = weft__worker_self();
    g = w != NULL ? cache_galloc(w) : galloc_global();
    if (g == NULL)
        return -ENOMEM;
    rc = w != NULL ? cache_stack_alloc(w, &g->stack, size)
                   : weft__stack_alloc(&g->stack, size);
    if (rc != 0) {
        weft_log(WEFT_LOG_ERROR, "green thread spawn at %s failed: %s",
                 site ? site : "?", weft__stack_last_error());
        gfree(g);
        return rc;
    }
    /* Reset the struct for its new life (kind, ops and owner stay).  The
     * stores are relaxed: the release of RUNNABLE and the queue's hand-off
     * publish them to whoever runs, wakes or joins the thread. */
    weft__waiter_reset(&g->waiter);
    atomic_store_explicit(&g->timer_worker, NULL, memory_order_relaxed);
    g->heap_idx = -1;
    if (w != NULL) {
        g->id = next_worker_id(w, g->name_buf);
    } else {
        g->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
    }
    g->fn = fn;
    g->arg = arg;
    g->result = 0;
    g->site = site;
    g->switch_why = WEFT__SW_NONE; /* "Starting": made at its first run */
    if (set_name(g, opts ? opts->name : NULL, w != NULL) != 0) {
        spawn_undo(w, g);
        return -ENOMEM;
    }
    /* The event was set only if the last life had a waiting joiner; no
     * one waits on it now (its joiners left before the struct was freed). */
    if (atomic_load_explicit(&g->join_state, memory_order_relaxed) &
        JOIN_WAITER)
        weft_event_clear(&g->done);
    atomic_store_explicit(&g->join_state, 0, memory_order_relaxed);
    atomic_store_explicit(&g->refs, out ? 2 : 1, memory_order_relaxed);
    atomic_store_explicit(&g->handle, out ? H_OWNED : H_DETACHED,
                          memory_order_relaxed);
    atomic_store_explicit(&g->run_state, WEFT__G_RUNNABLE,
                          memory_order_release);
    if (out)
        *out = g;
    weft__sched_live_add(w);
    weft__sched_spawned(g);
    return 0;
}

int weft_green_join(weft_green *g, int *result, int64_t deadline)
{
    int expect = H_OWNED;
    uint32_t st;
    int rc;

    if (g == NULL)
        return -EINVAL;
    if (g == weft_green_current())
        return -EDEADLK;
    if (atomic_load(&g->handle) != H_OWNED)
        return -EINVAL;
    /* See "Join" above green_main.  Acquire: g's result and everything
     * it did happen before. */
    st = atomic_load_explicit(&g->join_state, memory_order_acquire);
    if (!(st & JOIN_DONE)) {
        if (deadline == WEFT_NOW)
            return -ETIMEDOUT;
        st = atomic_fetch_or_explicit(&g->join_state, JOIN_WAITER,
                                      memory_order_acq_rel);
        if (!(st & JOIN_DONE)) {
            rc = weft_event_wait(&g->done, deadline);
            if (rc != 0)
                return rc;
        }
    }
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
