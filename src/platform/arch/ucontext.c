/* ucontext.c - the portable fallback context switch, over glibc's
 * getcontext/makecontext/swapcontext, for targets without a switch.S and
 * for checking the assembly backends against a second implementation.
 *
 * Design: a weft__context holds a whole ucontext_t (about 1 KiB), and the
 * switch is swapcontext.  That saves and restores the signal mask with an
 * rt_sigprocmask system call on every switch (~50x the cost of the
 * assembly switch), which is why it is only the fallback; it is chosen at
 * build time (`make CONTEXT=ucontext`, which also defines
 * WEFT_CONTEXT_UCONTEXT so that context.h declares the matching struct).
 * (Rejected: sigsetjmp/siglongjmp with a hand-made first frame, as
 * libdill's fallback does - it needs a per-architecture trick anyway,
 * which is what the switch.S files are.)
 *
 * makecontext passes only int arguments, so fn and arg, both 64-bit
 * pointers, are each split into two unsigned halves and joined again in
 * the trampoline.  The FP state (MXCSR and the x87 control word on
 * x86-64) is part of the ucontext, so it is per-context as in the
 * assembly backend, and a made context starts with its creator's, taken
 * by getcontext at weft__context_make.
 *
 * Locking: none; see context.h.
 */
#ifndef WEFT_CONTEXT_UCONTEXT
#error "ucontext.c is the CONTEXT=ucontext backend: build it with -DWEFT_CONTEXT_UCONTEXT"
#endif

#include "lib/assert.h"
#include "platform/context.h"

#include <stdint.h>
#include <ucontext.h>

static void trampoline(unsigned fn_hi, unsigned fn_lo, unsigned arg_hi,
                       unsigned arg_lo)
{
    uintptr_t f = (uintptr_t)(((uint64_t)fn_hi << 32) | fn_lo);
    uintptr_t a = (uintptr_t)(((uint64_t)arg_hi << 32) | arg_lo);
    void (*fn)(void *) = (void (*)(void *))f;

    fn((void *)a);
    WEFT_PANIC("a context's function returned (it must switch away for good)");
}

void weft__context_make(weft__context *ctx, void *lo, size_t size,
                        void (*fn)(void *), void *arg)
{
    uint64_t f = (uint64_t)(uintptr_t)fn, a = (uint64_t)(uintptr_t)arg;

    /* getcontext only fails on an invalid pointer, and makecontext cannot
     * report failure at all. */
    int rc = getcontext(&ctx->uc);
    WEFT_ASSERT(rc == 0);
    ctx->uc.uc_stack.ss_sp = lo;
    ctx->uc.uc_stack.ss_size = size;
    ctx->uc.uc_stack.ss_flags = 0;
    ctx->uc.uc_link = NULL; /* the trampoline never returns */
    makecontext(&ctx->uc, (void (*)(void))trampoline, 4, (unsigned)(f >> 32),
                (unsigned)f, (unsigned)(a >> 32), (unsigned)a);
}

void weft__context_switch(weft__context *from, weft__context *to)
{
    int rc = swapcontext(&from->uc, &to->uc);
    WEFT_ASSERT(rc == 0);
}

const char *weft__context_backend(void)
{
    return "ucontext";
}
