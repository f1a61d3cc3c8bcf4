/* switch.S (x86-64) - the context switch for green threads, System V ABI.
 *
 * C prototypes (src/platform/context.h, which also holds the contract):
 *   void weft__context_switch(weft__context *from, weft__context *to);
 *   void weft__context_switch_ret(weft__context *from, weft__context *to);
 *   void weft__context_make(weft__context *ctx, void *lo, size_t size,
 *                           void (*fn)(void *), void *arg);
 *   const char *weft__context_backend(void);
 * A weft__context is { void *sp; }: the address of the saved frame.
 *
 * Frame layout, bytes from the saved rsp (the WEFT_CTX_* offsets in
 * context.h, checked there against struct weft__context_frame):
 *
 *     +0   MXCSR            (4 bytes)   stmxcsr / ldmxcsr
 *     +4   x87 control word (2 bytes)   fnstcw / fldcw; 2 bytes padding
 *     +8   r15
 *     +16  r14
 *     +24  r13              made context: arg
 *     +32  r12              made context: fn
 *     +40  rbx
 *     +48  rbp              made context: 0 (ends frame-pointer walks)
 *     +56  return address   pushed by the caller's `call`; made context:
 *                           the trampoline
 *
 * The caller's `call` leaves rsp % 16 == 8; subtracting 56 makes the saved
 * rsp 16-byte aligned, and loading the return address then `add 64;
 * jmp *%rcx` undoes it exactly (rsp as after a `ret`).
 *
 * Why `jmp *%rcx` and not `ret`: the CPU predicts a `ret` from its return
 * stack buffer, whose top is the address the last `call` on the stack we
 * are LEAVING pushed, so a `ret` onto the other stack mispredicts whenever
 * the two contexts entered the switch from different call sites (a green
 * thread's park against its scheduler's run loop, say).  An indirect jump is
 * predicted by the branch target buffer from this jump's own history
 * (Boost.Context's jump_fcontext ends the same way).  Measured with
 * bench/micro/bench_switch: 11.6 -> 5.5 ns per switch; a green yield
 * 40.4 -> 31.5 ns.  rcx is caller-saved and dead at that point.
 * The reverse holds for a symmetric switch (both sides called the switch
 * from the same call site, as green threads switching directly to each
 * other do): there the return stack's top is right, and the `jmp` leaves
 * it one entry off for every return that follows; weft__context_switch_ret
 * is the same switch ending in `ret`, for those.

 * ABI reference: System V AMD64 psABI 1.0, section 3.2.1 (registers: rbx,
 * rbp, r12-r15 are callee-saved; "the control bits of the MXCSR register
 * and the x87 control word are callee-saved"; everything else, every xmm
 * register included, is caller-saved, so the compiler has already spilled
 * what it needs before calling us) and 3.2.2 (the stack: rsp + 8 is a
 * multiple of 16 when control is transferred to a function's entry point).
 *
 * Pitfalls:
 *  - Red zone.  Nothing here is stored below rsp: rsp is lowered first.  A
 *    signal handler runs on the current stack and would overwrite anything
 *    below rsp (the 128-byte red zone is only safe for leaf code, and a
 *    signal can land between the two halves of a switch).
 *  - Alignment at fn entry.  The made frame is placed so that after the
 *    jump into the trampoline rsp % 16 == 0; the trampoline's `call *%r12`
 *    then enters fn with rsp % 16 == 8, as if called normally.  Getting this
 *    wrong shows up only later, as a crash in movaps inside printf.
 *  - MXCSR/x87 are per-context, so a green thread that changes the rounding
 *    mode does not change it for the others.  A made context starts with
 *    the values its creator had at weft__context_make.  The status flags in
 *    MXCSR travel with the control bits (one ldmxcsr restores both).
 *  - CET.  A switch leaves its caller's return address on the shadow
 *    stack unpopped and resumes the other context at an address the shadow
 *    stack never saw, and the jump targets carry no endbr64, so shadow
 *    stacks and IBT are NOT supported: this object carries no GNU property
 *    note, so a linked program never claims IBT/SHSTK and the loader keeps
 *    them off (with IBT off, neither the indirect call to these functions
 *    nor the switch's indirect jump is checked).  .note.GNU-stack keeps the
 *    stack non-executable.
 *  - The trampoline has no return address above it; `.cfi_undefined rip`
 *    tells debuggers and unwinders that this is the outermost frame.
 */
#include "../../context.h"

        .text

/* The two halves every switch shares: save the callee-saved state below
 * the return address the caller's `call` pushed and store rsp in from->sp;
 * load to->sp and the state saved there.  After RESTORE, rsp points at the
 * return address to resume at.  (Assembler macros, so that the frame's
 * offsets are written once for the two entry points below.) */
        .macro  SAVE_FROM_RDI
        subq    $WEFT_CTX_FRAME_RA, %rsp
        .cfi_adjust_cfa_offset WEFT_CTX_FRAME_RA
        stmxcsr WEFT_CTX_MXCSR(%rsp)
        fnstcw  WEFT_CTX_X87CW(%rsp)
        movq    %r15, WEFT_CTX_R15(%rsp)
        movq    %r14, WEFT_CTX_R14(%rsp)
        movq    %r13, WEFT_CTX_R13(%rsp)
        movq    %r12, WEFT_CTX_R12(%rsp)
        movq    %rbx, WEFT_CTX_RBX(%rsp)
        movq    %rbp, WEFT_CTX_RBP(%rsp)
        movq    %rsp, (%rdi)            /* from->sp */
        .endm

        .macro  RESTORE_FROM_RSI
        movq    (%rsi), %rsp            /* to->sp: now on the other stack */
        ldmxcsr WEFT_CTX_MXCSR(%rsp)
        fldcw   WEFT_CTX_X87CW(%rsp)
        movq    WEFT_CTX_R15(%rsp), %r15
        movq    WEFT_CTX_R14(%rsp), %r14
        movq    WEFT_CTX_R13(%rsp), %r13
        movq    WEFT_CTX_R12(%rsp), %r12
        movq    WEFT_CTX_RBX(%rsp), %rbx
        movq    WEFT_CTX_RBP(%rsp), %rbp
        .endm

/* void weft__context_switch(weft__context *from [rdi], weft__context *to [rsi]) */
        .globl  weft__context_switch
        .type   weft__context_switch, @function
        .p2align 4
weft__context_switch:
        .cfi_startproc
        SAVE_FROM_RDI
        RESTORE_FROM_RSI
        movq    WEFT_CTX_FRAME_RA(%rsp), %rcx   /* where to resume */
        .cfi_register rip, rcx
        addq    $WEFT_CTX_FRAME_SIZE, %rsp      /* pop frame and address */
        .cfi_adjust_cfa_offset -WEFT_CTX_FRAME_SIZE
        jmp     *%rcx
        .cfi_endproc
        .size   weft__context_switch, .-weft__context_switch

/* void weft__context_switch_ret(weft__context *from [rdi], weft__context *to [rsi])
 * The same switch, resuming through `ret`.  For a symmetric switch - both
 * contexts entered this function from the same call site, as two green
 * threads switching to each other directly do - the return stack's top is
 * exactly the address `to` resumes at, and every return on the way out of
 * the callers is predicted too; after weft__context_switch's `jmp` the
 * return stack keeps the leaving side's entry, and each of those returns
 * mispredicts instead (measured: a direct green yield 29-36 ns through
 * `jmp`, 16-19 ns through `ret`). */
        .globl  weft__context_switch_ret
        .type   weft__context_switch_ret, @function
        .p2align 4
weft__context_switch_ret:
        .cfi_startproc
        SAVE_FROM_RDI
        RESTORE_FROM_RSI
        addq    $WEFT_CTX_FRAME_RA, %rsp        /* pop the frame */
        .cfi_adjust_cfa_offset -WEFT_CTX_FRAME_RA
        ret
        .cfi_endproc
        .size   weft__context_switch_ret, .-weft__context_switch_ret

/* void weft__context_make(weft__context *ctx [rdi], void *lo [rsi],
 *                         size_t size [rdx], void (*fn)(void *) [rcx],
 *                         void *arg [r8])
 * top = (lo + size) & ~15.  [top-16, top) holds two zero words (where a
 * return address and saved rbp would sit above the trampoline, so stack
 * walkers find zeros there); the frame sits right below them, so after
 * the first switch's jump rsp = top - 16, which is 16-aligned. */
        .globl  weft__context_make
        .type   weft__context_make, @function
        .p2align 4
weft__context_make:
        .cfi_startproc
        leaq    (%rsi,%rdx), %rax
        andq    $-16, %rax              /* rax = top */
        xorl    %edx, %edx
        movq    %rdx, -8(%rax)
        movq    %rdx, -16(%rax)
        subq    $(16 + WEFT_CTX_FRAME_SIZE), %rax       /* rax = frame */
        stmxcsr WEFT_CTX_MXCSR(%rax)    /* inherit the creator's FP control */
        fnstcw  WEFT_CTX_X87CW(%rax)
        movw    %dx, WEFT_CTX_X87CW+2(%rax)
        movq    %rdx, WEFT_CTX_R15(%rax)
        movq    %rdx, WEFT_CTX_R14(%rax)
        movq    %r8, WEFT_CTX_R13(%rax)
        movq    %rcx, WEFT_CTX_R12(%rax)
        movq    %rdx, WEFT_CTX_RBX(%rax)
        movq    %rdx, WEFT_CTX_RBP(%rax)
        leaq    weft__context_trampoline(%rip), %rcx
        movq    %rcx, WEFT_CTX_FRAME_RA(%rax)
        movq    %rax, (%rdi)            /* ctx->sp */
        ret
        .cfi_endproc
        .size   weft__context_make, .-weft__context_make

/* Entered by the first switch's jump with r12 = fn, r13 = arg,
 * rsp % 16 == 0.  Calls fn(arg); fn must never return, so a return is a
 * bug in the caller of weft__context_make: panic with a message. */
        .type   weft__context_trampoline, @function
        .p2align 4
weft__context_trampoline:
        .cfi_startproc
        .cfi_undefined rip
        movq    %r13, %rdi
        call    *%r12
        leaq    .Lfile(%rip), %rdi
        movl    $__LINE__, %esi
        leaq    .Lmsg(%rip), %rdx
        xorl    %eax, %eax              /* variadic: no vector args */
        call    weft__panic@PLT
        ud2
        .cfi_endproc
        .size   weft__context_trampoline, .-weft__context_trampoline

/* const char *weft__context_backend(void) */
        .globl  weft__context_backend
        .type   weft__context_backend, @function
        .p2align 4
weft__context_backend:
        .cfi_startproc
        leaq    .Lname(%rip), %rax
        ret
        .cfi_endproc
        .size   weft__context_backend, .-weft__context_backend

        .section .rodata.str1.1, "aMS", @progbits, 1
.Lname: .asciz  "x86_64"
.Lfile: .asciz  __FILE__
.Lmsg:  .asciz  "a context's function returned (it must switch away for good)"

        .section .note.GNU-stack, "", @progbits
