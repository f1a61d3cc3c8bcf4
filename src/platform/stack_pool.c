/* stack_pool.c - green-thread stacks carved from large mappings, pooled by
 * size class for reuse (the interface and the layout are in stack.h).
 *
 * Design.  Each size class (a usable size, rounded to pages) owns chunks:
 * one anonymous mapping of up to 256 slots (about 16 MiB), each slot a guard
 * page and a stack.  A stack is taken, in order of preference, from the
 * class's warm list (freed stacks that kept their pages: reuse costs no page
 * fault, and LIFO order hands back the most recently used, cache-hot stack),
 * its cold list (freed stacks whose pages were given back: beyond the pool
 * bound a free gives back its stack's pages and, in one go, enough warm
 * neighbours' to make room for the next frees - an eighth of the bound,
 * coalesced into one madvise per run of adjacent slots - instead of one
 * system call per free; by default the bound is the recent peak of live
 * stacks, halving once a second down to the last second's peak, and what
 * it no longer covers is given back in the same bulk way), its unguarded
 * list (slots whose guard could not be installed yet), the current chunk's
 * never-used slots, or a new chunk.  A slot's guard is installed the first
 * time the slot is handed out, outside the lock.
 *   (Rejected: one mmap per stack with an mprotect'd guard, as libdill,
 *   libmill and State Threads do - two VMAs per stack cap a process near
 *   32,000 stacks at the default vm.max_map_count.  Rejected: unmapping a
 *   chunk once all its stacks are free - the overflow handler reads the
 *   chunk table without a lock, so removing entries would need deferred
 *   reclamation, and a MAP_NORESERVE range whose pages were given back
 *   costs no memory, only address space, of which x86-64 has 128 TiB.)
 *
 * The chunk table is append-only: chunk i is written completely, then
 * published with a release store of table[i] and of nchunks; the overflow
 * handler reads them with acquire loads, so it sees only complete chunks and
 * needs no lock (it may run while another thread holds the pool lock).
 * A chunk's geometry never changes after publication.  A slot's owner names
 * are atomics because the handler reads them.
 *
 * Invariants: every slot is in exactly one state: FRESH (in its chunk's
 * never-used range), IN_USE, WARM / COLD / UNGUARDED (on that list of its
 * class), or RELEASING (being given back by a free, between two lock
 * holds).  stats.in_use counts IN_USE slots (RELEASING ones too until
 * they are pooled); stats.pooled counts WARM + COLD + UNGUARDED;
 * warm_bytes = class size summed over WARM slots.
 *
 * Locking: `lock` (a futex mutex: the platform layer sits below park) guards
 * the classes, their lists, every slot's `next`, `state` and `guarded`
 * fields while the slot is pooled, chunk `fresh` indexes, the stats and
 * the bound's bookkeeping (live_bytes, the peaks, the decay clock).  It
 * is never held across a system call except mmap of a new chunk and the
 * explicit weft__stack_trim.  A slot handed out is its owner's alone until
 * freed, so the owner sets `guarded` without the lock (the free that
 * follows takes the lock and publishes it).
 */
#include "stack.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "lib/assert.h"
#include "platform.h"

#ifdef WEFT__STACK_ASAN /* stack.h */
#define STACK_ASAN 1
#endif
#ifdef STACK_ASAN
#include <sanitizer/asan_interface.h>
#endif

enum { FRESH, IN_USE, WARM, COLD, UNGUARDED, RELEASING };
/* (live_bytes sums IN_USE slots' sizes only; RELEASING ones left it when
 * they were freed.) */

#define CHUNK_TARGET_BYTES ((size_t)16 << 20)
#define CHUNK_MAX_SLOTS 256u
#define BATCH 256u /* stacks given back at most by one free past the bound */
#define POOL_FLOOR ((size_t)256 << 20) /* the default bound's floor */
#define DECAY_NS 1000000000 /* the peak halves once a second at most */
#define TABLE_MAX 65536u /* chunks; each is at least one of the kernel's
                            65,530 default mappings anyway */

struct chunk;

struct weft__stack_slot {
    _Atomic(const char *) name;    /* owner's; read by the handler */
    _Atomic(const char *) site;    /* owner's; read by the handler */
    struct weft__stack_slot *next; /* guarded by lock (on a list) */
    struct chunk *chunk;           /* immutable */
    unsigned char state;           /* guarded by lock */
    unsigned char guarded;         /* guarded by lock; owner while IN_USE */
};

struct sclass;

struct chunk {
    uintptr_t base;      /* immutable after publication */
    size_t len;          /* immutable: nslots * slot_bytes */
    size_t slot_bytes;   /* immutable: page + size */
    size_t size;         /* immutable: usable bytes per stack */
    unsigned nslots;     /* immutable */
    unsigned fresh;      /* guarded by lock: slots [fresh, nslots) unused */
    struct sclass *cls;  /* immutable */
    struct weft__stack_slot slots[];
};

/* A size class.  All fields guarded by lock. */
struct sclass {
    size_t size;
    unsigned chunk_slots;
    struct weft__stack_slot *warm, *cold, *unguarded;
    struct chunk *cur; /* the chunk with never-used slots, or NULL */
    struct sclass *next;
};

static _Atomic uint32_t lock; /* 0 free, 1 held, 2 held with sleepers */

static struct sclass *classes;             /* guarded by lock */
static size_t warm_bytes;                  /* guarded by lock */
static size_t pool_limit = POOL_FLOOR;     /* guarded by lock */
static bool follow_peak = true;            /* guarded by lock */
static size_t live_bytes;                  /* guarded by lock: IN_USE and
                                              RELEASING stacks' sizes */
static size_t peak_bytes;                  /* guarded by lock: recent peak
                                              of live_bytes */
static size_t period_peak;                 /* guarded by lock: peak of
                                              live_bytes since the last
                                              decay */
static int64_t peak_at;                    /* guarded by lock: last decay */
static unsigned frees;                     /* guarded by lock: frees since
                                              the clock was last read */
static weft__stack_stats stats;            /* guarded by lock (guard_vmas
                                              unused here) */

static _Atomic(struct chunk *) table[TABLE_MAX]; /* append-only */
static _Atomic size_t nchunks;                   /* published count */

static _Atomic size_t default_size = WEFT__STACK_DEFAULT_SIZE;

/* A three-state futex mutex (Drepper, "Futexes are tricky", mutex 2):
 * uncontended lock and unlock are one atomic each. */
static void pool_lock_slow(void)
{
    uint32_t c = atomic_exchange(&lock, 2);
    while (c != 0) {
        weft__futex_wait(&lock, 2, -1);
        c = atomic_exchange(&lock, 2);
    }
}

static void pool_lock(void)
{
    uint32_t c = 0;
    if (!atomic_compare_exchange_strong(&lock, &c, 1))
        pool_lock_slow();
}

static void pool_unlock(void)
{
    if (atomic_fetch_sub(&lock, 1) != 1) {
        atomic_store(&lock, 0);
        weft__futex_wake(&lock, 1);
    }
}

/* Round size up to the page size; 0 if it is 0 or too large. */
static size_t round_size(size_t size)
{
    size_t page = weft__stack_page();
    if (size == 0 || size > WEFT__STACK_MAX_SIZE)
        return 0;
    return (size + page - 1) & ~(page - 1);
}

static inline char *slot_lo(const struct weft__stack_slot *sl)
{
    const struct chunk *c = sl->chunk;
    size_t i = (size_t)(sl - c->slots);
    return (char *)(c->base + i * c->slot_bytes + (c->slot_bytes - c->size));
}

static void push(struct weft__stack_slot **list, struct weft__stack_slot *sl,
                 unsigned char state)
{
    sl->state = state;
    sl->next = *list;
    *list = sl;
}

static struct weft__stack_slot *pop(struct weft__stack_slot **list)
{
    struct weft__stack_slot *sl = *list;
    if (sl)
        *list = sl->next;
    return sl;
}

/* Caller holds lock.  NULL if malloc fails. */
static struct sclass *find_class(size_t size)
{
    struct sclass *k;
    for (k = classes; k; k = k->next)
        if (k->size == size)
            return k;
    k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    size_t slot_bytes = size + weft__stack_page();
    size_t n = CHUNK_TARGET_BYTES / slot_bytes;
    k->size = size;
    k->chunk_slots = n < 1 ? 1 : n > CHUNK_MAX_SLOTS ? CHUNK_MAX_SLOTS
                                                     : (unsigned)n;
    k->next = classes;
    classes = k;
    return k;
}

/* Caller holds lock.  Map a chunk for class k, publish it and make it k's
 * current chunk.  0, -ENOMEM or -EAGAIN (message set). */
static int new_chunk(struct sclass *k)
{
    size_t n = atomic_load_explicit(&nchunks, memory_order_relaxed);
    size_t slot_bytes = k->size + weft__stack_page();
    size_t len = slot_bytes * k->chunk_slots;
    int rc;

    if (n == TABLE_MAX) {
        weft__stack_set_error("weft's stack chunk table is full (%u "
                              "mappings of stacks)", TABLE_MAX);
        return -ENOMEM;
    }
    rc = weft__stack_map_check(0, len);
    if (rc != 0)
        return rc;
    void *base = mmap(NULL, len, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                      -1, 0);
    if (base == MAP_FAILED)
        return weft__stack_map_check(errno, len);
    /* Transparent huge pages would make one touched page of a stack cost
     * 2 MiB; MAP_STACK implies this since Linux 6.7, older kernels need
     * it said.  Failure only costs memory, so it is ignored. */
    (void)madvise(base, len, MADV_NOHUGEPAGE);

    struct chunk *c = calloc(1, sizeof *c + k->chunk_slots * sizeof c->slots[0]);
    if (!c) {
        munmap(base, len);
        weft__stack_set_error("out of memory for a stack chunk's header");
        return -ENOMEM;
    }
    c->base = (uintptr_t)base;
    c->len = len;
    c->slot_bytes = slot_bytes;
    c->size = k->size;
    c->nslots = k->chunk_slots;
    c->cls = k;
    for (unsigned i = 0; i < c->nslots; i++)
        c->slots[i].chunk = c;
    atomic_store_explicit(&table[n], c, memory_order_release);
    atomic_store_explicit(&nchunks, n + 1, memory_order_release);
    k->cur = c;
    stats.chunks++;
    stats.reserved_bytes += len;
    return 0;
}

/* Caller holds lock.  Take a slot of class k (state set to IN_USE), or
 * return a negative code with the message set. */
static int take(struct sclass *k, struct weft__stack_slot **out)
{
    struct weft__stack_slot *sl;

    if ((sl = pop(&k->warm)) != NULL) {
        warm_bytes -= k->size;
        stats.pooled_warm--;
        stats.pooled--;
    } else if ((sl = pop(&k->cold)) != NULL || (sl = pop(&k->unguarded))) {
        stats.pooled--;
    } else {
        if (!k->cur || k->cur->fresh == k->cur->nslots) {
            int rc = new_chunk(k);
            if (rc != 0)
                return rc;
        }
        sl = &k->cur->slots[k->cur->fresh++];
        if (k->cur->fresh == k->cur->nslots)
            k->cur = NULL;
    }
    sl->state = IN_USE;
    sl->next = NULL;
    stats.in_use++;
    live_bytes += k->size;
    if (live_bytes > period_peak) {
        period_peak = live_bytes;
        if (live_bytes > peak_bytes)
            peak_bytes = live_bytes;
    }
    *out = sl;
    return 0;
}

/* Caller holds lock.  The bytes of warm pooled stacks kept: the fixed
 * bound, or with the default setting the larger of the floor and the
 * recent peak of live stacks (a program that had 100,000 stacks live a
 * moment ago will most likely have them again: keeping their pages spares
 * every next user a page fault, and every free a madvise). */
static size_t bound(void)
{
    return follow_peak && peak_bytes > pool_limit ? peak_bytes : pool_limit;
}

/* Install the guard of a slot just taken, outside the lock; on failure the
 * slot goes back to its class's unguarded list. */
static int guard_slot(struct weft__stack_slot *sl)
{
    int rc = weft__stack_guard_page(slot_lo(sl) - weft__stack_page());
    if (rc == 0) {
        sl->guarded = 1;
        return 0;
    }
    pool_lock();
    push(&sl->chunk->cls->unguarded, sl, UNGUARDED);
    stats.in_use--;
    stats.pooled++;
    live_bytes -= sl->chunk->size;
    pool_unlock();
    return rc;
}

int weft__stack_alloc(weft__stack *s, size_t size)
{
    struct weft__stack_slot *sl;
    size_t rounded = round_size(size);
    int rc;

    if (!s || rounded == 0)
        return -EINVAL;
    /* The caller is about to run green code, most likely: make sure the
     * overflow report can run on this thread.  Decide the guard kind before
     * the lock, since that reads the environment. */
    rc = weft__stack_thread_init();
    if (rc != 0) {
        weft__stack_set_error("no memory for an alternate signal stack");
        return rc;
    }
    (void)weft__stack_guard_kind_now();

    pool_lock();
    struct sclass *k = find_class(rounded);
    if (!k) {
        pool_unlock();
        weft__stack_set_error("out of memory for a stack size class");
        return -ENOMEM;
    }
    rc = take(k, &sl);
    bool guarded = rc == 0 && sl->guarded;
    pool_unlock();
    if (rc != 0)
        return rc;
    if (!guarded && (rc = guard_slot(sl)) != 0)
        return rc;
    s->lo = slot_lo(sl);
    s->size = rounded;
    s->slot = sl;
    return 0;
}

/* Order slots by address, for coalescing. */
static int by_address(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(struct weft__stack_slot *const *)a;
    uintptr_t y = (uintptr_t)*(struct weft__stack_slot *const *)b;
    return (x > y) - (x < y);
}

/* Give the pages of n RELEASING slots of one class back, then pool them as
 * cold.  Called without the lock.  Slots next to each other in one chunk
 * are given back with one madvise over the run, guard pages between them
 * included: MADV_DONTNEED leaves guard markers (MADV_GUARD_INSTALL) in
 * place and is harmless on a PROT_NONE guard, and no slot of the run is in
 * use.  (Slot structs lie in their chunk's array in address order, so
 * sorting the pointers sorts the stacks.) */
static void release_cold(struct weft__stack_slot **batch, size_t n)
{
    qsort(batch, n, sizeof *batch, by_address);
    for (size_t i = 0; i < n;) {
        struct chunk *c = batch[i]->chunk;
        size_t j = i + 1;
        while (j < n && batch[j] == batch[j - 1] + 1)
            j++; /* same chunk: slots[] is one array */
        char *lo = slot_lo(batch[i]);
        char *hi = slot_lo(batch[j - 1]) + c->size;
        (void)madvise(lo, (size_t)(hi - lo), MADV_DONTNEED);
        i = j;
    }
    pool_lock();
    for (size_t i = 0; i < n; i++) {
        WEFT_ASSERT(batch[i]->state == RELEASING);
        push(&batch[i]->chunk->cls->cold, batch[i], COLD);
        stats.in_use--;
        stats.pooled++;
    }
    pool_unlock();
}

/* Lock held; released here.  sl (of class k) does not fit under the pool
 * bound: give its pages back, and with them those of enough of k's warm
 * stacks to bring warm_bytes down by an eighth of the bound (at most BATCH
 * stacks), so that the next frees fit again and a burst of frees past the
 * bound makes one system call per run of adjacent stacks rather than one
 * per free.  The warm stacks taken are the most recently freed (the head of
 * the LIFO list), which in a burst are neighbours of sl.  A bound below 8
 * stacks releases sl alone, as before batching. */
static void release_batch(struct sclass *k, struct weft__stack_slot *sl)
{
    struct weft__stack_slot *batch[BATCH];
    size_t lim = bound(), n = 0, low = lim - lim / 8;
    struct weft__stack_slot *w;

    sl->state = RELEASING;
    batch[n++] = sl;
    while (n < BATCH && lim / 8 >= k->size && warm_bytes > low &&
           (w = pop(&k->warm)) != NULL) {
        w->state = RELEASING;
        warm_bytes -= k->size;
        stats.pooled_warm--;
        stats.pooled--;
        stats.in_use++; /* RELEASING counts as in use until pooled */
        batch[n++] = w;
    }
    pool_unlock();
    release_cold(batch, n);
}

/* Forget a stack's owner and, under AddressSanitizer, unpoison it: frames
 * that never returned (a green thread switched away for good) leave their
 * redzones poisoned, and the next owner must not trip on them.  Returns
 * the slot, checked against the stack's geometry. */
static struct weft__stack_slot *scrub(weft__stack *s)
{
    struct weft__stack_slot *sl = s->slot;

    WEFT_ASSERT(s->lo == slot_lo(sl) && s->size == sl->chunk->size);
    atomic_store_explicit(&sl->name, NULL, memory_order_relaxed);
    atomic_store_explicit(&sl->site, NULL, memory_order_relaxed);
#ifdef STACK_ASAN
    __asan_unpoison_memory_region(s->lo, s->size);
#endif
    return sl;
}

#ifdef STACK_ASAN
void weft__stack_recycle(weft__stack *s)
{
    if (s && s->slot)
        __asan_unpoison_memory_region(s->lo, s->size);
}
#endif

/* Lock held.  Every DECAY_NS (looked at every 64th free: the clock is
 * not read on every free; a batch counts as many), the peak halves, but
 * never below the peak of the period that just ended: a program that
 * bursts to N live stacks again and again keeps N stacks' pages, and once
 * the bursts stop the pages are given back over a few seconds of
 * activity. */
static void decay(unsigned n)
{
    int64_t now;

    frees += n;
    if (!follow_peak || frees < 64)
        return;
    frees = 0;
    now = weft__clock_now();
    if (now - peak_at < DECAY_NS)
        return;
    peak_at = now;
    peak_bytes = period_peak > peak_bytes / 2 ? period_peak : peak_bytes / 2;
    period_peak = live_bytes;
}

/* Lock held; released here.  While the warm stacks exceed the bound (it
 * just decayed, or a fixed bound was lowered), give back their pages in
 * batches of up to BATCH, one madvise per run of adjacent slots. */
static void settle(void)
{
    struct weft__stack_slot *batch[BATCH];

    while (warm_bytes > bound()) {
        size_t n = 0;
        for (struct sclass *k = classes; k && n < BATCH; k = k->next) {
            struct weft__stack_slot *w;
            while (n < BATCH && warm_bytes > bound() &&
                   (w = pop(&k->warm)) != NULL) {
                w->state = RELEASING;
                warm_bytes -= k->size;
                stats.pooled_warm--;
                stats.pooled--;
                stats.in_use++; /* RELEASING counts as in use */
                batch[n++] = w;
            }
        }
        if (n == 0)
            break; /* cannot happen: warm_bytes sums the warm lists */
        pool_unlock();
        release_cold(batch, n);
        pool_lock();
    }
    pool_unlock();
}

void weft__stack_free(weft__stack *s)
{
    struct weft__stack_slot *sl = s ? s->slot : NULL;
    if (!sl)
        return;
    size_t size = s->size;
    char *lo = s->lo;
    (void)scrub(s);
    s->lo = NULL;
    s->size = 0;
    s->slot = NULL;

    pool_lock();
    if (sl->state != IN_USE)
        WEFT_PANIC("stack %p freed twice (state %d)", (void *)lo, sl->state);
    struct sclass *k = sl->chunk->cls;
    live_bytes -= size;
    decay(1);
    if (warm_bytes + size <= bound()) {
        warm_bytes += size;
        push(&k->warm, sl, WARM);
        stats.in_use--;
        stats.pooled++;
        stats.pooled_warm++;
        settle();
        return;
    }
    release_batch(k, sl);
}

void weft__stack_free_n(weft__stack *s, size_t n)
{
    struct weft__stack_slot *batch[BATCH];
    size_t nb = 0, nwarm = 0, lim;

    pool_lock();
    lim = bound(); /* frees do not raise it */
    for (size_t i = 0; i < n; i++) {
        struct weft__stack_slot *sl = s[i].slot;
        if (!sl)
            continue;
        if (sl->state != IN_USE)
            WEFT_PANIC("stack %p freed twice (state %d)", s[i].lo,
                       sl->state);
        size_t size = s[i].size;
        WEFT_ASSERT(size == sl->chunk->size);
        s[i].lo = NULL;
        s[i].size = 0;
        s[i].slot = NULL;
        live_bytes -= size;
        if (warm_bytes + size <= lim) {
            warm_bytes += size;
            push(&sl->chunk->cls->warm, sl, WARM);
            nwarm++;
            continue;
        }
        sl->state = RELEASING; /* still counted in use until pooled */
        batch[nb++] = sl;
        if (nb == BATCH) {
            pool_unlock();
            release_cold(batch, nb);
            nb = 0;
            pool_lock();
        }
    }
    stats.in_use -= nwarm;
    stats.pooled += nwarm;
    stats.pooled_warm += nwarm;
    decay((unsigned)n);
    if (nb != 0) {
        pool_unlock();
        release_cold(batch, nb);
        pool_lock();
    }
    settle(); /* the bound may just have decayed */
}

size_t weft__stack_alloc_n(weft__stack *s, size_t n, size_t size)
{
    size_t rounded = round_size(size), got = 0;
    struct sclass *k;

    if (!s || rounded == 0 || weft__stack_thread_init() != 0)
        return 0;
    pool_lock();
    for (k = classes; k && k->size != rounded; k = k->next)
        ;
    while (k && got < n) {
        struct weft__stack_slot *sl;
        if ((sl = pop(&k->warm)) != NULL) {
            warm_bytes -= k->size;
            stats.pooled_warm--;
        } else if ((sl = pop(&k->cold)) == NULL) {
            break;
        }
        sl->state = IN_USE;
        s[got].lo = slot_lo(sl);
        s[got].size = rounded;
        s[got].slot = sl;
        got++;
    }
    stats.pooled -= got;
    stats.in_use += got;
    live_bytes += got * rounded;
    if (live_bytes > period_peak) {
        period_peak = live_bytes;
        if (live_bytes > peak_bytes)
            peak_bytes = live_bytes;
    }
    pool_unlock();
    return got;
}

size_t weft__stack_round(size_t size)
{
    return round_size(size);
}

void weft__stack_set_owner(weft__stack *s, const char *name,
                           const char *spawn_site)
{
    if (!s || !s->slot)
        return;
    atomic_store_explicit(&s->slot->name, name, memory_order_release);
    atomic_store_explicit(&s->slot->site, spawn_site, memory_order_release);
}

size_t weft__stack_default_size(void)
{
    return atomic_load_explicit(&default_size, memory_order_relaxed);
}

int weft__stack_set_default_size(size_t size)
{
    size_t rounded = round_size(size);
    if (rounded == 0)
        return -EINVAL;
    atomic_store_explicit(&default_size, rounded, memory_order_relaxed);
    return 0;
}

void weft__stack_get_stats(weft__stack_stats *out)
{
    pool_lock();
    *out = stats;
    out->bound = bound();
    out->peak_bytes = peak_bytes;
    pool_unlock();
    out->guard_vmas = weft__stack_guard_vmas();
}

size_t weft__stack_set_pool_limit(size_t bytes)
{
    pool_lock();
    size_t old = follow_peak ? WEFT__STACK_POOL_AUTO : pool_limit;
    follow_peak = bytes == WEFT__STACK_POOL_AUTO;
    pool_limit = follow_peak ? POOL_FLOOR : bytes;
    settle(); /* a lower bound gives back the excess now */
    return old;
}

size_t weft__stack_trim(void)
{
    size_t n = 0;
    pool_lock();
    for (struct sclass *k = classes; k; k = k->next) {
        struct weft__stack_slot *sl;
        while ((sl = pop(&k->warm)) != NULL) {
            (void)madvise(slot_lo(sl), k->size, MADV_DONTNEED);
            push(&k->cold, sl, COLD);
            warm_bytes -= k->size;
            stats.pooled_warm--;
            n++;
        }
    }
    pool_unlock();
    return n;
}

int weft__stack_find_guard(uintptr_t addr, const char **name,
                           const char **site, size_t *size)
{
    size_t n = atomic_load_explicit(&nchunks, memory_order_acquire);
    size_t page = weft__stack_page();

    for (size_t i = 0; i < n; i++) {
        struct chunk *c = atomic_load_explicit(&table[i], memory_order_acquire);
        if (!c || addr < c->base || addr - c->base >= c->len)
            continue;
        size_t off = addr - c->base;
        if (off % c->slot_bytes >= page)
            return 0; /* inside a stack, not a guard */
        struct weft__stack_slot *sl = &c->slots[off / c->slot_bytes];
        *name = atomic_load_explicit(&sl->name, memory_order_acquire);
        *site = atomic_load_explicit(&sl->site, memory_order_acquire);
        *size = c->size;
        return 1;
    }
    return 0;
}
