/* switch.S (aarch64) - the context switch for green threads, AAPCS64.
 *
 * C prototypes (src/platform/context.h, which also holds the contract):
 *   void weft__context_switch(weft__context *from, weft__context *to);
 *   void weft__context_switch_ret(weft__context *from, weft__context *to);
 *   void weft__context_make(weft__context *ctx, void *lo, size_t size,
 *                           void (*fn)(void *), void *arg);
 *   const char *weft__context_backend(void);
 * A weft__context is { void *sp; }: the address of the saved frame.
 *
 * Frame layout, bytes from the saved sp (the WEFT_CTX_* offsets in
 * context.h, checked there against struct weft__context_frame):
 *
 *     +0   x19, x20         made context: fn, arg
 *     +16  x21, x22
 *     +32  x23, x24
 *     +48  x25, x26
 *     +64  x27, x28
 *     +80  x29 (fp), x30 (lr)   made context: 0, the trampoline
 *     +96  d8,  d9
 *     +112 d10, d11
 *     +128 d12, d13
 *     +144 d14, d15
 *     size 160 (a multiple of 16)
 *
 * ABI reference: Procedure Call Standard for the Arm 64-bit Architecture
 * (AAPCS64), "General-purpose registers" (x19-x28 callee-saved, x29 the
 * frame pointer, x30 the link register), "SIMD and Floating-Point
 * registers" (only the low 64 bits of v8-v15, i.e. d8-d15, are
 * callee-saved), "Universal stack constraints" (sp % 16 == 0 at every
 * public interface, and the hardware may check it on every sp-based
 * access).
 *
 * Pitfalls:
 *  - sp must stay 16-byte aligned at all times (SCTLR_EL1.SA0 traps a
 *    misaligned sp-relative access), so the frame is a multiple of 16 and
 *    weft__context_make rounds the top of the stack down to 16.
 *  - There is no red zone in the Linux AAPCS64 ABI: nothing is ever stored
 *    below sp (sp is lowered first), since a signal handler would overwrite
 *    it.
 *  - x18 is the platform register; Linux treats it as a caller-saved
 *    temporary, so it is not saved (x0-x17 and the rest of v0-v31 are
 *    caller-saved too: the C caller has already spilled what it needs).
 *  - The switch resumes with `br x30`, not `ret`: the return address is
 *    just a saved register (a made context's x30 is the trampoline), and
 *    `ret` would be predicted from the return stack, whose top is the
 *    caller on the stack we are leaving, so it would mispredict on every
 *    switch; `br` is predicted by the branch's own history, as x86-64's
 *    `jmp *%rcx` is (Boost.Context's jump_fcontext also ends in `br`).
 *    For a symmetric switch (both sides called it from the same call site,
 *    as green threads switching directly to each other do) the return
 *    stack is right instead, and `br` leaves it one entry off for every
 *    return that follows: weft__context_switch_ret ends in `ret` for those.
 *  - FPCR/FPSR are not switched (DESIGN.md lists only d8-d15): the rounding
 *    mode is per OS thread on aarch64, not per context.
 *  - BTI/PAC.  The switch's `br x30` lands on return addresses and the
 *    trampoline, which carry no BTI landing pad, so BTI is NOT supported:
 *    the object carries no GNU property note, so a linked program never
 *    claims BTI (and the loader does not enforce it).
 *    PAC return signing in C callers is unaffected: x30 holds the plain
 *    return address at the `bl` into the switch and is restored bit for
 *    bit.  .note.GNU-stack keeps the stack non-executable.
 *  - The trampoline is the outermost frame: `.cfi_undefined x30` and x29 = 0
 *    stop debuggers and frame-pointer walkers there.
 */
#include "../../context.h"

        .text

/* The two halves every switch shares: save the callee-saved state and
 * store sp in from->sp; load to->sp and the state saved there, x30 (the
 * address to resume at) included.  (Assembler macros, so that the frame's
 * offsets are written once for the two entry points below.) */
        .macro  SAVE_FROM_X0
        sub     sp, sp, #WEFT_CTX_FRAME_SIZE
        .cfi_adjust_cfa_offset WEFT_CTX_FRAME_SIZE
        stp     x19, x20, [sp, #WEFT_CTX_X19]
        stp     x21, x22, [sp, #WEFT_CTX_X21]
        stp     x23, x24, [sp, #WEFT_CTX_X23]
        stp     x25, x26, [sp, #WEFT_CTX_X25]
        stp     x27, x28, [sp, #WEFT_CTX_X27]
        stp     x29, x30, [sp, #WEFT_CTX_X29]
        stp     d8,  d9,  [sp, #WEFT_CTX_D8]
        stp     d10, d11, [sp, #WEFT_CTX_D10]
        stp     d12, d13, [sp, #WEFT_CTX_D12]
        stp     d14, d15, [sp, #WEFT_CTX_D14]
        mov     x9, sp
        str     x9, [x0]                /* from->sp */
        .endm

        .macro  RESTORE_FROM_X1
        ldr     x9, [x1]                /* to->sp: now on the other stack */
        mov     sp, x9
        ldp     x19, x20, [sp, #WEFT_CTX_X19]
        ldp     x21, x22, [sp, #WEFT_CTX_X21]
        ldp     x23, x24, [sp, #WEFT_CTX_X23]
        ldp     x25, x26, [sp, #WEFT_CTX_X25]
        ldp     x27, x28, [sp, #WEFT_CTX_X27]
        ldp     x29, x30, [sp, #WEFT_CTX_X29]
        ldp     d8,  d9,  [sp, #WEFT_CTX_D8]
        ldp     d10, d11, [sp, #WEFT_CTX_D10]
        ldp     d12, d13, [sp, #WEFT_CTX_D12]
        ldp     d14, d15, [sp, #WEFT_CTX_D14]
        add     sp, sp, #WEFT_CTX_FRAME_SIZE
        .cfi_adjust_cfa_offset -WEFT_CTX_FRAME_SIZE
        .endm

/* void weft__context_switch(weft__context *from [x0], weft__context *to [x1]) */
        .globl  weft__context_switch
        .type   weft__context_switch, %function
        .p2align 4
weft__context_switch:
        .cfi_startproc
        SAVE_FROM_X0
        RESTORE_FROM_X1
        br      x30                     /* not `ret`: see the header */
        .cfi_endproc
        .size   weft__context_switch, .-weft__context_switch

/* void weft__context_switch_ret(weft__context *from [x0], weft__context *to [x1])
 * The same switch, resuming through `ret`: for a symmetric switch (both
 * contexts entered it from the same call site, as green threads switching
 * directly to each other do), where the return stack predicts `ret` and
 * every return after it (see the header). */
        .globl  weft__context_switch_ret
        .type   weft__context_switch_ret, %function
        .p2align 4
weft__context_switch_ret:
        .cfi_startproc
        SAVE_FROM_X0
        RESTORE_FROM_X1
        ret
        .cfi_endproc
        .size   weft__context_switch_ret, .-weft__context_switch_ret

/* void weft__context_make(weft__context *ctx [x0], void *lo [x1],
 *                         size_t size [x2], void (*fn)(void *) [x3],
 *                         void *arg [x4])
 * top = (lo + size) & ~15; the frame is [top - 160, top), so the first
 * switch leaves sp = top, 16-aligned, when it branches to the trampoline. */
        .globl  weft__context_make
        .type   weft__context_make, %function
        .p2align 4
weft__context_make:
        .cfi_startproc
        add     x9, x1, x2
        and     x9, x9, #~15            /* x9 = top */
        sub     x9, x9, #WEFT_CTX_FRAME_SIZE    /* x9 = frame */
        stp     x3, x4, [x9, #WEFT_CTX_X19]     /* fn, arg */
        stp     xzr, xzr, [x9, #WEFT_CTX_X21]
        stp     xzr, xzr, [x9, #WEFT_CTX_X23]
        stp     xzr, xzr, [x9, #WEFT_CTX_X25]
        stp     xzr, xzr, [x9, #WEFT_CTX_X27]
        adr     x10, weft__context_trampoline
        stp     xzr, x10, [x9, #WEFT_CTX_X29]   /* fp = 0, lr = trampoline */
        stp     xzr, xzr, [x9, #WEFT_CTX_D8]
        stp     xzr, xzr, [x9, #WEFT_CTX_D10]
        stp     xzr, xzr, [x9, #WEFT_CTX_D12]
        stp     xzr, xzr, [x9, #WEFT_CTX_D14]
        str     x9, [x0]                /* ctx->sp */
        ret
        .cfi_endproc
        .size   weft__context_make, .-weft__context_make

/* Entered by the first switch's `br` with x19 = fn, x20 = arg,
 * sp % 16 == 0, x29 = 0.  Calls fn(arg); fn must never return, so a return
 * is a bug in the caller of weft__context_make: panic with a message. */
        .type   weft__context_trampoline, %function
        .p2align 4
weft__context_trampoline:
        .cfi_startproc
        .cfi_undefined x30
        mov     x0, x20
        blr     x19
        adrp    x0, .Lfile
        add     x0, x0, :lo12:.Lfile
        mov     w1, #__LINE__
        adrp    x2, .Lmsg
        add     x2, x2, :lo12:.Lmsg
        bl      weft__panic
        brk     #1
        .cfi_endproc
        .size   weft__context_trampoline, .-weft__context_trampoline

/* const char *weft__context_backend(void) */
        .globl  weft__context_backend
        .type   weft__context_backend, %function
        .p2align 4
weft__context_backend:
        .cfi_startproc
        adrp    x0, .Lname
        add     x0, x0, :lo12:.Lname
        ret
        .cfi_endproc
        .size   weft__context_backend, .-weft__context_backend

        .section .rodata.str1.1, "aMS", %progbits, 1
.Lname: .asciz  "aarch64"
.Lfile: .asciz  __FILE__
.Lmsg:  .asciz  "a context's function returned (it must switch away for good)"

        .section .note.GNU-stack, "", %progbits
