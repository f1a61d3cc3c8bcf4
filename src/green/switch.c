/* switch.c - the green layer's context switch: weft__context_switch wrapped
 * in the annotations that AddressSanitizer, ThreadSanitizer and Valgrind
 * need to follow a stack switch.
 *
 * Design.  Every switch in the green layer goes through weft__gctx_switch,
 * and every made context's function starts with weft__gctx_entered, so the
 * annotations sit in this one file (its #ifs are the only sanitizer #ifs of
 * the layer).  The pattern is the one of tests/unit/test_context.c:
 *   AddressSanitizer: __sanitizer_start_switch_fiber before the switch
 *     (passing NULL for the fake-stack save on a context's last switch, so
 *     ASan frees it) and __sanitizer_finish_switch_fiber after it, in the
 *     context that resumes; finish tells the bounds of the stack we came
 *     from, which is how a worker's own stack (the scheduler's) is learnt.
 *   ThreadSanitizer: __tsan_switch_to_fiber immediately before the switch
 *     IN THE SAME FUNCTION that calls weft__context_switch (TSan keeps a
 *     shadow call stack per fiber; a helper that returned after switching
 *     fibers would pop the other fiber's frame - clang's runtime crashes).
 *     Flag 0: the switch synchronises, which is true (the run queue hand-off
 *     orders the save before the resume).
 *   Valgrind: each green stack is registered while it is in use.
 * Two switches: weft__gctx_switch (to or from a scheduler) and
 * weft__gctx_switch_peer (a green thread directly to another, both from the
 * same call site: context.h says why that one resumes through `ret`); the
 * annotations are the same for both.
 * Invariant (AddressSanitizer builds): t_prev is the context that last
 * switched away on this OS thread; it is read through noinline functions
 * because a context may resume on another OS thread (a cached TLS address
 * would be the old thread's).
 * Locking: none; a context belongs to whoever runs it.
 */
#include "green.h"

#include <limits.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define G_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define G_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define G_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define G_TSAN 1
#endif
#endif
#ifdef G_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef G_TSAN
#include <sanitizer/tsan_interface.h>
#endif
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define G_VALGRIND 1
#endif
#endif

#ifdef G_ASAN
static _Thread_local weft__gctx *t_prev;
#endif

long weft__gctx_limit(void)
{
#ifdef G_TSAN
    return 7000; /* TSan counts each fiber as a thread; it dies at 8,128 */
#else
    return LONG_MAX;
#endif
}

void weft__gctx_init_self(weft__gctx *c)
{
    memset(c, 0, sizeof *c);
#ifdef G_TSAN
    c->fiber = __tsan_get_current_fiber();
#endif
}

void weft__gctx_make(weft__gctx *c, weft__stack *s, void (*fn)(void *),
                     void *arg)
{
    memset(c, 0, sizeof *c);
    c->lo = s->lo;
    c->size = s->size;
#ifdef G_TSAN
    c->fiber = __tsan_create_fiber(0);
#endif
#ifdef G_VALGRIND
    c->vg_id = VALGRIND_STACK_REGISTER(s->lo, (char *)s->lo + s->size);
#endif
    weft__context_make(&c->ctx, s->lo, s->size, fn, arg);
}

void weft__gctx_destroy(weft__gctx *c)
{
#ifdef G_TSAN
    if (c->fiber)
        __tsan_destroy_fiber(c->fiber);
    c->fiber = NULL;
#endif
#ifdef G_VALGRIND
    VALGRIND_STACK_DEREGISTER(c->vg_id);
#endif
}

#ifdef G_ASAN
/* AddressSanitizer's first half; also records `from` for the resuming
 * side.  Not inlined: it must compute t_prev's address afresh. */
static __attribute__((noinline)) void before(weft__gctx *from,
                                             weft__gctx *to, int last)
{
    t_prev = from;
    __sanitizer_start_switch_fiber(last ? NULL : &from->fake, to->lo,
                                   to->size);
}

/* AddressSanitizer's second half, in the context that resumed. */
static __attribute__((noinline)) void after(weft__gctx *self)
{
    const void *lo;
    size_t size;
    __sanitizer_finish_switch_fiber(self->fake, &lo, &size);
    if (t_prev != NULL && t_prev->lo == NULL) {
        t_prev->lo = lo;
        t_prev->size = size;
    }
}
#else
/* Without AddressSanitizer nothing reads t_prev: no calls at all (two
 * fewer calls and returns per switch). */
static inline void before(weft__gctx *from, weft__gctx *to, int last)
{
    (void)from;
    (void)to;
    (void)last;
}

static inline void after(weft__gctx *self)
{
    (void)self;
}
#endif

void weft__gctx_switch(weft__gctx *from, weft__gctx *to, int last)
{
    before(from, to, last);
#ifdef G_TSAN
    __tsan_switch_to_fiber(to->fiber, 0);
#endif
    weft__context_switch(&from->ctx, &to->ctx);
    after(from);
}

/* As weft__gctx_switch, through the return-predicted switch: every caller
 * comes from the one call site in sched.c (a direct switch between green
 * threads), so the context it resumes was saved from that same site. */
void weft__gctx_switch_peer(weft__gctx *from, weft__gctx *to)
{
    before(from, to, 0);
#ifdef G_TSAN
    __tsan_switch_to_fiber(to->fiber, 0);
#endif
    weft__context_switch_ret(&from->ctx, &to->ctx);
    after(from);
}

void weft__gctx_entered(weft__gctx *self)
{
    after(self);
}
