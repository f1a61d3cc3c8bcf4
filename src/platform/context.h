/* context.h - the context switch that green threads are built on: save the
 * running machine context, resume another, and make a fresh one that starts
 * a function on a stack of its own.
 *
 * Design.  A context is only a saved stack pointer.  weft__context_switch is
 * an ordinary call, so the compiler has already saved every caller-saved
 * register; the switch pushes what the ABI says a callee must preserve (plus
 * the FP control state, below) as one frame on the stack it leaves, stores
 * the stack pointer into *from, loads *to's stack pointer and pops that
 * stack's frame.  A made context holds a hand-written frame whose return
 * address is a trampoline that calls fn(arg).  (Rejected: ucontext's
 * swapcontext as the main path - it saves the whole signal mask with a
 * system call per switch, ~50x slower; it stays as the fallback backend.
 * Rejected: Photon-style inline switches that clobber every register at the
 * call site - faster, but a compiler-specific trick we can adopt later
 * behind this same API.)
 *
 * Backends.  Exactly one is linked, chosen by the build's file list
 * (docs/ARCHITECTURE.md, "Context switch"); each must define the three
 * functions declared below and nothing else:
 *   src/platform/arch/x86_64/switch.S   x86-64 System V   ("x86_64")
 *   src/platform/arch/aarch64/switch.S  AArch64 AAPCS64   ("aarch64")
 *   src/platform/arch/ucontext.c        any glibc target  ("ucontext";
 *                                        built with -DWEFT_CONTEXT_UCONTEXT,
 *                                        which selects the struct below)
 *
 * What is saved (DESIGN.md, layer 1):
 *   x86-64   rbx, rbp, r12-r15, rsp, the return address, MXCSR and the x87
 *            control word.  No xmm register is callee-saved in the SysV ABI.
 *   aarch64  x19-x28, x29 (fp), x30 (lr), sp, d8-d15 (the low 64 bits of
 *            v8-v15 are all AAPCS64 asks a callee to keep).  FPCR/FPSR are
 *            not switched: a context that changes the rounding mode on
 *            aarch64 changes it for whatever runs next on that thread.
 * A made context starts with the creator's MXCSR and x87 control word as
 * they were at weft__context_make (as a new pthread inherits its creator's
 * floating-point environment); the ucontext backend behaves the same.
 *
 * The frame offsets below are the one definition of the layout: the .S
 * files include this header (the C part is hidden from the assembler by
 * __ASSEMBLER__) and the C structs further down _Static_assert against
 * them, so the assembly and any C that inspects a frame cannot drift apart.
 *
 * Locking: none.  A context belongs to whoever runs on it; switching to a
 * context that is running (on this or another OS thread) is undefined.  A
 * context may be resumed on a different OS thread than the one that saved
 * it (the M:N scheduler needs this); the caller provides the happens-before
 * edge (a lock or an atomic hand-off) between the save and the resume.
 */
#ifndef WEFT_PLATFORM_CONTEXT_H
#define WEFT_PLATFORM_CONTEXT_H

/* ---- frame layout, in bytes from the saved stack pointer ---------------- */

#if defined(__x86_64__)
/* The switch subtracts WEFT_CTX_FRAME_RA from rsp (just below the return
 * address the call pushed) and stores into that space. */
#define WEFT_CTX_MXCSR 0   /* 4 bytes: SSE control/status */
#define WEFT_CTX_X87CW 4   /* 2 bytes: x87 control word (2 bytes padding) */
#define WEFT_CTX_R15 8
#define WEFT_CTX_R14 16
#define WEFT_CTX_R13 24    /* made context: arg */
#define WEFT_CTX_R12 32    /* made context: fn */
#define WEFT_CTX_RBX 40
#define WEFT_CTX_RBP 48
#define WEFT_CTX_FRAME_RA 56   /* the return address; also the frame's
                                * size below it */
#define WEFT_CTX_FRAME_SIZE 64 /* frame including the return address */
#elif defined(__aarch64__)
#define WEFT_CTX_X19 0     /* made context: fn */
#define WEFT_CTX_X20 8     /* made context: arg */
#define WEFT_CTX_X21 16
#define WEFT_CTX_X23 32
#define WEFT_CTX_X25 48
#define WEFT_CTX_X27 64
#define WEFT_CTX_X29 80    /* x29 (fp) at 80, x30 (lr) at 88 */
#define WEFT_CTX_X30 88
#define WEFT_CTX_D8 96     /* d8..d15 at 96, 104, ..., 152 */
#define WEFT_CTX_D10 112
#define WEFT_CTX_D12 128
#define WEFT_CTX_D14 144
#define WEFT_CTX_FRAME_SIZE 160 /* a multiple of 16: sp stays aligned */
#endif

/* Smallest stack weft__context_make accepts: the initial frame, alignment
 * slack and the trampoline's own call.  Real green threads need far more. */
#define WEFT_CONTEXT_MIN_STACK 256

#ifndef __ASSEMBLER__

#include <stddef.h>
#include <stdint.h>

#ifdef WEFT_CONTEXT_UCONTEXT
#include <ucontext.h>

/* ucontext backend: the whole saved machine state lives in the struct. */
struct weft__context {
    ucontext_t uc;
};
#else
/* Assembly backends: the state lives on the context's own stack; this is
 * its address (the lowest byte of the saved frame).  NULL until made or
 * saved into. */
struct weft__context {
    void *sp;
};
_Static_assert(offsetof(struct weft__context, sp) == 0,
               "switch.S reads the stack pointer at offset 0");
#endif
typedef struct weft__context weft__context;

#if !defined(WEFT_CONTEXT_UCONTEXT) && defined(__x86_64__)
/* The saved frame as C sees it, for the asserts (and for debuggers). */
typedef struct weft__context_frame {
    uint32_t mxcsr;
    uint16_t x87_cw;
    uint16_t pad;
    uint64_t r15, r14, r13, r12, rbx, rbp;
    void *ret; /* where the switch returns: the caller, or the trampoline */
} weft__context_frame;
_Static_assert(offsetof(weft__context_frame, mxcsr) == WEFT_CTX_MXCSR, "");
_Static_assert(offsetof(weft__context_frame, x87_cw) == WEFT_CTX_X87CW, "");
_Static_assert(offsetof(weft__context_frame, r15) == WEFT_CTX_R15, "");
_Static_assert(offsetof(weft__context_frame, r14) == WEFT_CTX_R14, "");
_Static_assert(offsetof(weft__context_frame, r13) == WEFT_CTX_R13, "");
_Static_assert(offsetof(weft__context_frame, r12) == WEFT_CTX_R12, "");
_Static_assert(offsetof(weft__context_frame, rbx) == WEFT_CTX_RBX, "");
_Static_assert(offsetof(weft__context_frame, rbp) == WEFT_CTX_RBP, "");
_Static_assert(offsetof(weft__context_frame, ret) == WEFT_CTX_FRAME_RA, "");
_Static_assert(sizeof(weft__context_frame) == WEFT_CTX_FRAME_SIZE, "");
#elif !defined(WEFT_CONTEXT_UCONTEXT) && defined(__aarch64__)
typedef struct weft__context_frame {
    uint64_t x[10];  /* x19..x28 */
    uint64_t x29;    /* frame pointer */
    uint64_t x30;    /* lr: where the switch returns */
    uint64_t d[8];   /* d8..d15, as raw bits */
} weft__context_frame;
_Static_assert(offsetof(weft__context_frame, x[0]) == WEFT_CTX_X19, "");
_Static_assert(offsetof(weft__context_frame, x[1]) == WEFT_CTX_X20, "");
_Static_assert(offsetof(weft__context_frame, x[2]) == WEFT_CTX_X21, "");
_Static_assert(offsetof(weft__context_frame, x[4]) == WEFT_CTX_X23, "");
_Static_assert(offsetof(weft__context_frame, x[6]) == WEFT_CTX_X25, "");
_Static_assert(offsetof(weft__context_frame, x[8]) == WEFT_CTX_X27, "");
_Static_assert(offsetof(weft__context_frame, x29) == WEFT_CTX_X29, "");
_Static_assert(offsetof(weft__context_frame, x30) == WEFT_CTX_X30, "");
_Static_assert(offsetof(weft__context_frame, d[0]) == WEFT_CTX_D8, "");
_Static_assert(offsetof(weft__context_frame, d[2]) == WEFT_CTX_D10, "");
_Static_assert(offsetof(weft__context_frame, d[4]) == WEFT_CTX_D12, "");
_Static_assert(offsetof(weft__context_frame, d[6]) == WEFT_CTX_D14, "");
_Static_assert(sizeof(weft__context_frame) == WEFT_CTX_FRAME_SIZE, "");
_Static_assert(WEFT_CTX_FRAME_SIZE % 16 == 0, "AAPCS64: sp % 16 == 0");
#elif !defined(WEFT_CONTEXT_UCONTEXT)
#error "no assembly context switch for this architecture: build with CONTEXT=ucontext"
#endif

/* Save the running context into *from and resume *to.  Returns (into
 * from's caller) when something later switches back to from.  to must have
 * been made with weft__context_make or saved by an earlier switch, and must
 * not be running anywhere.  from and to may be the same context (the call
 * then returns at once).  Not async-signal-safe with respect to the
 * contexts involved.  Sanitizer fiber annotations are the caller's job
 * (STYLE.md 3.7: they go in the C wrapper around the switch). */
void weft__context_switch(weft__context *from, weft__context *to);

/* The same switch for a symmetric pair: both contexts call it from the
 * same call site (two green threads switching directly to each other).
 * The assembly backends resume `to` through a return instruction there,
 * which the CPU's return stack then predicts, with every return after it;
 * weft__context_switch resumes through an indirect jump, which predicts
 * better when the two sides called from different places (a green thread
 * and its scheduler).  Same contract otherwise.  swapcontext has no such
 * choice: the ucontext backend uses the one switch for both. */
#ifdef WEFT_CONTEXT_UCONTEXT
#define weft__context_switch_ret weft__context_switch
#else
void weft__context_switch_ret(weft__context *from, weft__context *to);
#endif

/* Make ctx start fn(arg) on the stack [lo, lo+size) at the first switch to
 * it.  size >= WEFT_CONTEXT_MIN_STACK; lo and size need no alignment: the
 * top is rounded down so that fn is entered as the ABI requires (x86-64:
 * rsp % 16 == 8 at fn's first instruction; aarch64: sp % 16 == 0).  fn must
 * never return; it ends by switching away for good.  If it does return, the
 * process panics (weft__panic: a message on stderr, then abort).  Writes
 * only ctx and the top of the stack; making a context never runs fn. */
void weft__context_make(weft__context *ctx, void *lo, size_t size,
                        void (*fn)(void *), void *arg);

/* The backend's name, "x86_64", "aarch64" or "ucontext", for reports. */
const char *weft__context_backend(void);

#endif /* !__ASSEMBLER__ */

#endif
