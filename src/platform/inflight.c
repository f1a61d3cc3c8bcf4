/* inflight.c - the per-OS-thread in-flight slots (inflight.h says why).
 *
 * Slots come in chunks of CHUNK, the first one static, the rest allocated
 * on demand and linked at the end of the list; no chunk is ever freed, so
 * a scan may walk the list with no lock.  hw is one past the highest slot
 * index ever handed out: a scan stops there, so it costs one load per
 * thread that ever ran at the same time as others, not per chunk.  A
 * thread takes the lowest free slot (CAS on used) at its first enter and
 * registers a pthread key whose destructor clears the slot and frees it;
 * a thread that enters again from a later destructor takes a slot again
 * (pthread runs the destructors once more).  The main thread's slot is
 * never freed (exit runs no destructors): harmless.
 *
 * fork: the child keeps only the calling thread, but the parent's other
 * threads' slots stay marked used, and one might name an object whose
 * release that thread was making at the fork: the child's handler clears
 * every slot but its own.
 *
 * A window opened inside another (a release whose wake-up releases an
 * internal lock) takes the next entry of the slot; the scan looks at all
 * of them.  A slot's obj[] is scanned at any time, depth only by its owner.
 *
 * The wait spins (the window is a handful of instructions, or a wake-up
 * under a primitive's guard), yielding the CPU after a while in case the
 * thread in the window was preempted on this very core.
 */
#include "inflight.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "../lib/assert.h"
#include "platform.h"

#define CHUNK 64
#define SPIN_BEFORE_YIELD 128

struct chunk {
    weft__inflight slot[CHUNK];
    _Atomic(struct chunk *) next;
};

_Thread_local weft__inflight *weft__tls_inflight
    __attribute__((tls_model("initial-exec")));

static struct chunk first;
static _Atomic uint32_t hw; /* one past the highest index handed out */
static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void clear(weft__inflight *s)
{
    for (int k = 0; k < WEFT__INFLIGHT_DEPTH; k++)
        atomic_store_explicit(&s->obj[k], NULL, memory_order_release);
    s->depth = 0;
}

static void release_slot(void *p)
{
    weft__inflight *s = p;

    clear(s);
    if (weft__tls_inflight == s)
        weft__tls_inflight = NULL;
    atomic_store_explicit(&s->used, 0, memory_order_release);
}

static void after_fork_child(void)
{
    weft__inflight *mine = weft__tls_inflight;
    uint32_t n = atomic_load_explicit(&hw, memory_order_acquire);
    struct chunk *c = &first;

    for (uint32_t i = 0; i < n && c != NULL; i++) {
        weft__inflight *s = &c->slot[i % CHUNK];
        if (s != mine) {
            clear(s);
            atomic_store_explicit(&s->used, 0, memory_order_relaxed);
        }
        if (i % CHUNK == CHUNK - 1)
            c = atomic_load_explicit(&c->next, memory_order_acquire);
    }
}

static void init_once(void)
{
    if (pthread_key_create(&key, release_slot) != 0)
        WEFT_PANIC("in-flight slots: no pthread key left");
    if (pthread_atfork(NULL, NULL, after_fork_child) != 0)
        WEFT_PANIC("in-flight slots: pthread_atfork failed");
}

/* Raise hw to at least n. */
static void raise_hw(uint32_t n)
{
    uint32_t h = atomic_load_explicit(&hw, memory_order_relaxed);

    while (h < n && !atomic_compare_exchange_weak_explicit(
                        &hw, &h, n, memory_order_release,
                        memory_order_relaxed))
        ;
}

static weft__inflight *take_slot(void)
{
    struct chunk *c = &first;

    for (uint32_t base = 0;; base += CHUNK) {
        for (uint32_t i = 0; i < CHUNK; i++) {
            uint32_t z = 0;
            if (atomic_load_explicit(&c->slot[i].used,
                                     memory_order_relaxed) == 0 &&
                atomic_compare_exchange_strong_explicit(
                    &c->slot[i].used, &z, 1, memory_order_acquire,
                    memory_order_relaxed)) {
                raise_hw(base + i + 1);
                return &c->slot[i];
            }
        }
        struct chunk *next = atomic_load_explicit(&c->next,
                                                  memory_order_acquire);
        if (next == NULL) {
            struct chunk *fresh = aligned_alloc(64, sizeof *fresh);
            if (fresh == NULL)
                WEFT_PANIC("in-flight slots: out of memory for %u threads",
                           (unsigned)(base + CHUNK + 1));
            for (uint32_t i = 0; i < CHUNK; i++) {
                for (int k = 0; k < WEFT__INFLIGHT_DEPTH; k++)
                    atomic_init(&fresh->slot[i].obj[k], NULL);
                fresh->slot[i].depth = 0;
                atomic_init(&fresh->slot[i].used, 0);
            }
            atomic_init(&fresh->next, NULL);
            if (atomic_compare_exchange_strong_explicit(
                    &c->next, &next, fresh, memory_order_acq_rel,
                    memory_order_acquire))
                next = fresh;
            else
                free(fresh); /* another thread linked one first */
        }
        c = next;
    }
}

void weft__inflight_too_deep(void)
{
    WEFT_PANIC("in-flight slots: more than %d windows open at once",
               WEFT__INFLIGHT_DEPTH);
}

weft__inflight *weft__inflight_slow(void)
{
    weft__inflight *s;

    pthread_once(&once, init_once);
    s = take_slot();
    weft__tls_inflight = s;
    (void)pthread_setspecific(key, s);
    return s;
}

void weft__inflight_wait(const void *obj)
{
    uint32_t n = atomic_load_explicit(&hw, memory_order_acquire);
    struct chunk *c = &first;

    for (uint32_t i = 0; i < n && c != NULL; i++) {
        weft__inflight *s = &c->slot[i % CHUNK];

        for (int k = 0; k < WEFT__INFLIGHT_DEPTH; k++) {
            unsigned spins = 0;
            while (atomic_load_explicit(&s->obj[k], memory_order_acquire) ==
                   obj) {
                if (++spins < SPIN_BEFORE_YIELD)
                    weft__cpu_relax();
                else
                    sched_yield();
            }
        }
        if (i % CHUNK == CHUNK - 1)
            c = atomic_load_explicit(&c->next, memory_order_acquire);
    }
}
