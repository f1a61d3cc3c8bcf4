/* test_context.c - the context switch (src/platform/context.h), whichever
 * backend is linked: x86-64 or aarch64 assembly, or ucontext.
 *
 * What is checked: ping-pong through shared memory between the main
 * context and made ones; made-to-made switches; callee-saved registers
 * (C locals the compiler keeps in callee-saved registers, and an inline-asm
 * check of rbx/r12-r15, or x19-x28 and d8-d15); per-context MXCSR and x87
 * control word on x86-64; the ABI's stack alignment at fn entry and aligned
 * SSE stores on the new stack; deep recursion; a million switches (timed,
 * not asserted); mmap'd and malloc'd stacks; a context resumed on another
 * OS thread; the panic when fn returns; and the same through
 * weft__context_switch_ret, the variant that resumes through `ret`.
 *
 * Being the platform layer's own test, this file may test architecture
 * specifics (#if __x86_64__ / __aarch64__), unlike tests of the layers above.
 *
 * Sanitizers.  The switch itself has no sanitizer hooks (STYLE.md 3.7: they
 * belong in the C wrapper around it, later the green layer's); the wrapper
 * here, tswitch(), calls AddressSanitizer's
 * __sanitizer_start/finish_switch_fiber and ThreadSanitizer's
 * __tsan_switch_to_fiber around every switch, as the scheduler will.
 *
 * Without Check.  A cross build (aarch64 under qemu-user) has no Check
 * library for its target, so with -DWEFT_NO_CHECK this file carries a tiny
 * stand-in for the part of Check's API it uses: each test still runs in
 * its own forked process with a timeout, and the output ends with Check's
 * summary line and "N passed, N failed", so tools/run-tests.sh reads it
 * the same way.  (Rejected: a second, Check-free copy of the tests - two
 * copies drift; and installing the arm64 Check through multiarch - it
 * changes the machine's package setup for one test file.)
 */
#ifdef WEFT_NO_CHECK
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the Check stand-in (only what this file uses) -------------------- */
typedef struct TTest {
    const char *name;
    void (*fn)(int);
} TTest;

#define START_TEST(tname)                                                    \
    static void tname##_fn(int _i);                                          \
    static const TTest tname##_ttest = {#tname, tname##_fn};                 \
    static const TTest *tname = &tname##_ttest;                              \
    static void tname##_fn(int _i)
#define END_TEST

#define ck_assert_msg(cond, ...)                                             \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                  \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
            exit(1);                                                         \
        }                                                                    \
    } while (0)
#define ck_assert(cond) ck_assert_msg(cond, "assertion failed: %s", #cond)
#define ck_assert_ptr_nonnull(p) ck_assert((p) != NULL)

enum { NC_MAX = 64 };
typedef struct TCase {
    const TTest *test[NC_MAX];
    int signal[NC_MAX];
    int n;
    int timeout;
} TCase;
typedef struct Suite {
    TCase *tc;
} Suite;

static Suite *suite_create(const char *name)
{
    static Suite s;
    (void)name;
    return &s;
}

static TCase *tcase_create(const char *name)
{
    static TCase tc = {.timeout = 4};
    (void)name;
    return &tc;
}

static void tcase_set_timeout(TCase *tc, double s)
{
    tc->timeout = (int)s;
}

static void tcase_add_test_raise_signal(TCase *tc, const TTest *t, int sig)
{
    if (tc->n == NC_MAX)
        abort();
    tc->test[tc->n] = t;
    tc->signal[tc->n++] = sig;
}

static void tcase_add_test(TCase *tc, const TTest *t)
{
    tcase_add_test_raise_signal(tc, t, 0);
}

static void suite_add_tcase(Suite *s, TCase *tc)
{
    s->tc = tc;
}

static long env_long(const char *name, long dflt)
{
    const char *s = getenv(name);
    long v = s ? strtol(s, NULL, 10) : 0;
    return v > 0 ? v : dflt;
}

static long test_scale(void)
{
    return env_long("WEFT_TEST_SCALE", 1);
}

/* Run each test in a child with an alarm; a test passes when the child
 * exits 0 (or dies of the signal it was registered to raise). */
static int nocheck_main(Suite *s)
{
    TCase *tc = s->tc;
    int failed = 0;
    long mult = env_long("CK_TIMEOUT_MULTIPLIER", 1);

    for (int i = 0; i < tc->n; i++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0) {
            alarm((unsigned)(tc->timeout * mult));
            tc->test[i]->fn(0);
            exit(0);
        }
        int st = 0;
        while (waitpid(pid, &st, 0) < 0)
            ;
        int ok = tc->signal[i] ? WIFSIGNALED(st) && WTERMSIG(st) == tc->signal[i]
                               : WIFEXITED(st) && WEXITSTATUS(st) == 0;
        if (!ok) {
            failed++;
            printf("%s: failed (%s %d)\n", tc->test[i]->name,
                   WIFSIGNALED(st) ? "signal" : "exit status",
                   WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        }
    }
    printf("%d%%: Checks: %d, Failures: %d, Errors: 0\n",
           tc->n ? 100 * (tc->n - failed) / tc->n : 100, tc->n, failed);
    printf("%d passed, %d failed\n", tc->n - failed, failed);
    return failed ? 1 : 0;
}
#define TEST_MAIN(make_suite)                                                \
    int main(void) { return nocheck_main(make_suite()); }

#else
#include "support.h"
#endif

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "platform/context.h"

#if defined(__SANITIZE_ADDRESS__)
#define T_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define T_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define T_TSAN 1
#endif
#endif
#ifdef T_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef T_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#define NOINLINE __attribute__((noinline))

/* ---- the test's switch wrapper ----------------------------------------
 * A tctx is a context plus what the sanitizers need to know about it: its
 * stack (AddressSanitizer; the main context's is learnt at the first switch
 * back from it), its fiber (ThreadSanitizer) and AddressSanitizer's saved
 * fake stack.  Made contexts run t_entry, which calls body(self, arg) and,
 * when body returns, switches to exit_to for good. */
typedef struct tctx tctx;
struct tctx {
    weft__context ctx;
    const void *lo; /* the stack, for AddressSanitizer */
    size_t size;
    void *fiber;    /* ThreadSanitizer's fiber */
    void *fake;     /* AddressSanitizer's fake stack, while switched out */
    void (*body)(tctx *self, void *arg);
    void *arg;
    tctx *exit_to;  /* where t_entry goes when body returns */
    int done;
};

/* The context that switched last on this OS thread: the one whose stack
 * AddressSanitizer reports in finish_switch_fiber. */
static _Thread_local tctx *t_prev;
static tctx t_main; /* the test's main context (the process's own stack) */

static void t_init_main(tctx *m)
{
    memset(m, 0, sizeof *m);
#ifdef T_TSAN
    m->fiber = __tsan_get_current_fiber();
#endif
}

/* Just before switching from `from` to `to` (AddressSanitizer's half);
 * last: from never runs again.  Not inlined, so that it computes t_prev's
 * (thread-local) address afresh: a context may resume on another thread
 * (a compiler may keep a TLS address in a register across the switch). */
static NOINLINE void t_asan_before(tctx *from, tctx *to, int last)
{
    t_prev = from;
#ifdef T_ASAN
    __sanitizer_start_switch_fiber(last ? NULL : &from->fake, to->lo,
                                   to->size);
#else
    (void)last;
    (void)to;
#endif
}

/* First thing in `self` after being switched to (AddressSanitizer's half). */
static NOINLINE void t_asan_after(tctx *self)
{
#ifdef T_ASAN
    const void *lo;
    size_t size;
    __sanitizer_finish_switch_fiber(self->fake, &lo, &size);
    if (t_prev) {
        t_prev->lo = lo;
        t_prev->size = size;
    }
#else
    (void)self;
#endif
}

/* ThreadSanitizer's half must be called in the very function that makes
 * the switch, right before it: ThreadSanitizer keeps a shadow call stack
 * per fiber, and a helper that returned after __tsan_switch_to_fiber would
 * pop its frame from the other fiber's stack (clang's runtime then
 * crashes).  Hence a macro, not a function. */
#ifdef T_TSAN
#define T_TSAN_SWITCH(to) __tsan_switch_to_fiber((to)->fiber, 0)
#else
#define T_TSAN_SWITCH(to) ((void)0)
#endif

/* The switch tswitch makes: weft__context_switch, or the variant that
 * resumes through `ret` (t_switch_ret; both save the same frame, so a
 * context saved by one may be resumed by the other). */
static void (*t_switch_fn)(weft__context *, weft__context *) =
    weft__context_switch;

static void tswitch(tctx *from, tctx *to)
{
    t_asan_before(from, to, 0);
    T_TSAN_SWITCH(to);
    t_switch_fn(&from->ctx, &to->ctx);
    t_asan_after(from);
}

static void t_entry(void *p)
{
    tctx *self = p;
    t_asan_after(self);
    self->body(self, self->arg);
    self->done = 1;
    t_asan_before(self, self->exit_to, 1);
    T_TSAN_SWITCH(self->exit_to);
    weft__context_switch(&self->ctx, &self->exit_to->ctx);
    abort(); /* a finished context was resumed */
}

/* Make c run body(c, arg) on [lo, lo+size); it ends by going to exit_to. */
static void t_make(tctx *c, void *lo, size_t size,
                   void (*body)(tctx *, void *), void *arg, tctx *exit_to)
{
    memset(c, 0, sizeof *c);
    c->lo = lo;
    c->size = size;
    c->body = body;
    c->arg = arg;
    c->exit_to = exit_to;
#ifdef T_TSAN
    c->fiber = __tsan_create_fiber(0);
#endif
    weft__context_make(&c->ctx, lo, size, t_entry, c);
}

/* Make c run fn(arg) directly (no t_entry): fn must call t_asan_after(c). */
static void t_make_raw(tctx *c, void *lo, size_t size, void (*fn)(void *),
                       void *arg)
{
    memset(c, 0, sizeof *c);
    c->lo = lo;
    c->size = size;
#ifdef T_TSAN
    c->fiber = __tsan_create_fiber(0);
#endif
    weft__context_make(&c->ctx, lo, size, fn, arg);
}

/* Release c's fiber; c must not be running. */
static void t_free(tctx *c)
{
#ifdef T_TSAN
    __tsan_destroy_fiber(c->fiber);
#else
    (void)c;
#endif
}

/* ---- stacks ------------------------------------------------------------ */

enum { PAGE = 4096 };

/* A stack of `size` bytes (a multiple of PAGE) with a PROT_NONE guard page
 * below it, as the green layer's stacks will have. */
static void *stack_new(size_t size)
{
    char *p = mmap(NULL, size + PAGE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE,
                   -1, 0);
    ck_assert_msg(p != MAP_FAILED, "mmap of a %zu-byte stack failed", size);
    ck_assert(mprotect(p, PAGE, PROT_NONE) == 0);
    return p + PAGE;
}

static void stack_free(void *lo, size_t size)
{
    munmap((char *)lo - PAGE, size + PAGE);
}

enum { STACK = 256 * 1024 };

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- backend ------------------------------------------------------------ */

START_TEST(t_backend)
{
    const char *want =
#if defined(WEFT_CONTEXT_UCONTEXT)
        "ucontext";
#elif defined(__x86_64__)
        "x86_64";
#elif defined(__aarch64__)
        "aarch64";
#endif
    const char *name = weft__context_backend();
    ck_assert_ptr_nonnull(name);
    ck_assert_msg(strcmp(name, want) == 0, "backend %s, want %s", name, want);
}
END_TEST

/* ---- ping-pong: main -> a -> b -> main, values through shared memory --- */

typedef struct pp {
    tctx a, b;
    long v;
    long rounds;
    int stop;
} pp;

static void pp_a(tctx *self, void *arg)
{
    pp *s = arg;
    for (long i = 0;; i++) {
        if (s->stop) {
            tswitch(self, &s->b); /* let b finish; it exits back here */
            return;
        }
        ck_assert_msg(s->v == 3 * i, "a: v %ld, want %ld", s->v, 3 * i);
        s->v++;
        tswitch(self, &s->b);
    }
}

static void pp_b(tctx *self, void *arg)
{
    pp *s = arg;
    for (long i = 0;; i++) {
        if (s->stop)
            return;
        ck_assert_msg(s->v == 3 * i + 1, "b: v %ld, want %ld", s->v, 3 * i + 1);
        s->v++;
        tswitch(self, &t_main);
    }
}

/* Ping-pong between main and two made contexts for rounds rounds. */
static void check_pingpong(long rounds)
{
    static pp s;

    memset(&s, 0, sizeof s);
    void *sa = stack_new(STACK), *sb = stack_new(STACK);

    t_init_main(&t_main);
    t_make(&s.a, sa, STACK, pp_a, &s, &t_main);
    t_make(&s.b, sb, STACK, pp_b, &s, &s.a);
    s.rounds = rounds;
    for (long i = 0; i < s.rounds; i++) {
        ck_assert(s.v == 3 * i);
        tswitch(&t_main, &s.a);
        ck_assert_msg(s.v == 3 * i + 2, "main: v %ld, want %ld", s.v, 3 * i + 2);
        s.v++;
    }
    s.stop = 1;
    tswitch(&t_main, &s.a);
    ck_assert(s.a.done && s.b.done);
    t_free(&s.a);
    t_free(&s.b);
    stack_free(sa, STACK);
    stack_free(sb, STACK);
}

START_TEST(t_pingpong)
{
    check_pingpong(100000 * test_scale());
}
END_TEST

/* ---- made context to made context: a ring of 8 ------------------------- */

enum { RING = 8 };
typedef struct ring {
    tctx c[RING];
    int log[4 * RING];
    int n;
    int laps;
} ring;

static void ring_body(tctx *self, void *arg)
{
    ring *r = arg;
    int i = (int)(self - r->c);
    for (int lap = 0; lap < r->laps; lap++) {
        r->log[r->n++] = i;
        tswitch(self, i + 1 < RING ? &r->c[i + 1] : &t_main);
    }
}

static void check_ring(void)
{
    static ring r;

    memset(&r, 0, sizeof r);
    void *st[RING];

    t_init_main(&t_main);
    r.laps = 3;
    for (int i = 0; i < RING; i++) {
        st[i] = stack_new(STACK);
        /* Each finishes into the next; the last into main. */
        t_make(&r.c[i], st[i], STACK, ring_body, &r,
               i + 1 < RING ? &r.c[i + 1] : &t_main);
    }
    for (int lap = 0; lap < r.laps; lap++) {
        tswitch(&t_main, &r.c[0]);
        ck_assert_msg(r.n == (lap + 1) * RING, "lap %d: %d entries", lap, r.n);
    }
    /* One more lap: each body returns and t_entry goes to the next. */
    tswitch(&t_main, &r.c[0]);
    for (int i = 0; i < r.laps * RING; i++)
        ck_assert_msg(r.log[i] == i % RING, "log[%d] = %d", i, r.log[i]);
    for (int i = 0; i < RING; i++) {
        ck_assert(r.c[i].done);
        t_free(&r.c[i]);
        stack_free(st[i], STACK);
    }
}

START_TEST(t_made_to_made)
{
    check_ring();
}
END_TEST

/* ---- callee-saved registers: C locals ----------------------------------
 * Many values live across the switch; with optimisation the compiler keeps
 * them in callee-saved registers (and spills the rest to the stack, which
 * checks the stack too).  do_switch == 0 computes the same without
 * switching, for the expected value. */

static NOINLINE void opaque(void)
{
    __asm__ volatile("" ::: "memory");
}

static NOINLINE unsigned long locals_across(tctx *from, tctx *to,
                                            unsigned long seed, int do_switch)
{
    unsigned long a = seed * 3 + 1, b = a ^ 0x5a5a, c = b * 7 + a;
    unsigned long d = c - b * 3, e = d ^ (a << 3), f = e + c * 11;
    unsigned long g = f - d * 5, h = g ^ (b >> 2), i = h + e * 13;
    unsigned long j = i - g * 17;
    double x = (double)(seed & 0xffff) * 0.5, y = x * 1.25 + 3, z = y / 7;

    if (do_switch)
        tswitch(from, to);
    else
        opaque();
    return a + 2 * b + 3 * c + 5 * d + 7 * e + 11 * f + 13 * g + 17 * h +
           19 * i + 23 * j + (unsigned long)(x * 8) + (unsigned long)(y * 16) +
           (unsigned long)(z * 1024);
}

typedef struct loc {
    tctx a;
    int rounds;
    int bad;
} loc;

static void loc_body(tctx *self, void *arg)
{
    loc *s = arg;
    for (int r = 0; r < s->rounds; r++) {
        unsigned long seed = 0x9e3779b97f4a7c15UL * (unsigned long)(r + 1);
        if (locals_across(self, &t_main, seed, 1) !=
            locals_across(NULL, NULL, seed, 0))
            s->bad++;
    }
}

static void check_locals(void)
{
    static loc s;

    memset(&s, 0, sizeof s);
    void *st = stack_new(STACK);

    t_init_main(&t_main);
    s.rounds = 1000;
    t_make(&s.a, st, STACK, loc_body, &s, &t_main);
    for (int r = 0; r <= s.rounds; r++) {
        unsigned long seed = 0xc2b2ae3d27d4eb4fUL ^ (unsigned long)r;
        ck_assert(locals_across(&t_main, &s.a, seed, 1) ==
                  locals_across(NULL, NULL, seed, 0));
    }
    ck_assert(s.a.done);
    ck_assert_msg(s.bad == 0, "%d rounds lost locals in the made context",
                  s.bad);
    t_free(&s.a);
    stack_free(st, STACK);
}

START_TEST(t_locals_survive)
{
    check_locals();
}
END_TEST


/* weft__context_switch_ret, the variant for symmetric switches (green
 * threads switching directly to each other): the ping-pong, the ring of
 * made contexts and the C locals, all through it, while each made context
 * still ends through weft__context_switch (t_entry), so contexts saved by
 * one are resumed by the other. */
START_TEST(t_switch_ret)
{
    t_switch_fn = weft__context_switch_ret;
    check_pingpong(10000);
    check_ring();
    check_locals();
}
END_TEST

/* ---- callee-saved registers: inline assembly ---------------------------
 * regs_switch loads known values into every callee-saved register the
 * switch must keep (rbx, r12-r15 on x86-64; x19-x28 and d8-d15 on
 * aarch64), calls weft__context_switch from assembly so the compiler
 * cannot save them for us, and stores what the registers hold when the
 * switch returns.  The other side does the same with other values. */

#if defined(__x86_64__)
enum { NREGS = 5 };

static void regs_switch(tctx *from, tctx *to, uint64_t seed,
                        uint64_t out[NREGS])
{
    weft__context *f = &from->ctx, *t = &to->ctx;
    uint64_t *o = out, s = seed;

    t_asan_before(from, to, 0);
    T_TSAN_SWITCH(to);
    /* Step below any red zone and align rsp before the call. */
    __asm__ volatile(
        "mov %%rsp, %%rax\n\t"
        "sub $128, %%rsp\n\t"
        "and $-16, %%rsp\n\t"
        "push %%rax\n\t"
        "push %[o]\n\t"
        "mov %[s], %%rbx\n\t"
        "lea 1(%%rbx), %%r12\n\t"
        "lea 2(%%rbx), %%r13\n\t"
        "lea 3(%%rbx), %%r14\n\t"
        "lea 4(%%rbx), %%r15\n\t"
        "call weft__context_switch@PLT\n\t"
        "pop %%rax\n\t"
        "mov %%rbx, 0(%%rax)\n\t"
        "mov %%r12, 8(%%rax)\n\t"
        "mov %%r13, 16(%%rax)\n\t"
        "mov %%r14, 24(%%rax)\n\t"
        "mov %%r15, 32(%%rax)\n\t"
        "pop %%rsp\n\t"
        : [o] "+d"(o), [s] "+c"(s), "+D"(f), "+S"(t)
        :
        : "rax", "rbx", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
          "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
          "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",
          "xmm15", "memory", "cc");
    t_asan_after(from);
}

static uint64_t regs_want(uint64_t seed, int i)
{
    return seed + (uint64_t)i;
}
#elif defined(__aarch64__)
enum { NREGS = 18 };

static void regs_switch(tctx *from, tctx *to, uint64_t seed,
                        uint64_t out[NREGS])
{
    t_asan_before(from, to, 0);
    T_TSAN_SWITCH(to);
    /* Set only after the calls above, which may clobber x0-x3. */
    register weft__context *x0 __asm__("x0") = &from->ctx;
    register weft__context *x1 __asm__("x1") = &to->ctx;
    register uint64_t *x2 __asm__("x2") = out;
    register uint64_t x3 __asm__("x3") = seed;
    /* Every caller-saved register must be in the clobber list, x18
     * included: gcc's -fipa-ra sees that this function's body never
     * touches a register left out and lets callers keep values there
     * across the call - while the other context changes it. */
    __asm__ volatile(
        "str x2, [sp, #-16]!\n\t"
        "mov x19, x3\n\t"
        "add x20, x19, #1\n\t"
        "add x21, x19, #2\n\t"
        "add x22, x19, #3\n\t"
        "add x23, x19, #4\n\t"
        "add x24, x19, #5\n\t"
        "add x25, x19, #6\n\t"
        "add x26, x19, #7\n\t"
        "add x27, x19, #8\n\t"
        "add x28, x19, #9\n\t"
        "fmov d8, x19\n\t"
        "fmov d9, x20\n\t"
        "fmov d10, x21\n\t"
        "fmov d11, x22\n\t"
        "fmov d12, x23\n\t"
        "fmov d13, x24\n\t"
        "fmov d14, x25\n\t"
        "fmov d15, x26\n\t"
        "bl weft__context_switch\n\t"
        "ldr x9, [sp], #16\n\t"
        "stp x19, x20, [x9, #0]\n\t"
        "stp x21, x22, [x9, #16]\n\t"
        "stp x23, x24, [x9, #32]\n\t"
        "stp x25, x26, [x9, #48]\n\t"
        "stp x27, x28, [x9, #64]\n\t"
        "stp d8, d9, [x9, #80]\n\t"
        "stp d10, d11, [x9, #96]\n\t"
        "stp d12, d13, [x9, #112]\n\t"
        "stp d14, d15, [x9, #128]\n\t"
        : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3)
        :
        : "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13",
          "x14", "x15", "x16", "x17", "x18", "x19", "x20", "x21", "x22", "x23",
          "x24", "x25", "x26", "x27", "x28", "x30", "v0", "v1", "v2", "v3",
          "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13",
          "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22",
          "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31",
          "memory", "cc");
    t_asan_after(from);
}

/* x19..x28 hold seed+0..9; d8..d15 the bits of seed+0..7. */
static uint64_t regs_want(uint64_t seed, int i)
{
    return seed + (uint64_t)(i < 10 ? i : i - 10);
}
#else
/* Another architecture (ucontext backend): no register-level check. */
enum { NREGS = 1 };

static void regs_switch(tctx *from, tctx *to, uint64_t seed,
                        uint64_t out[NREGS])
{
    tswitch(from, to);
    out[0] = seed;
}

static uint64_t regs_want(uint64_t seed, int i)
{
    return seed + (uint64_t)i;
}
#endif

typedef struct rg {
    tctx a;
    int rounds;
    int bad;
} rg;

static void rg_body(tctx *self, void *arg)
{
    rg *s = arg;
    uint64_t out[NREGS];
    for (int r = 0; r < s->rounds; r++) {
        uint64_t seed = 0xa5a5000000000000ULL + (uint64_t)r * 0x100;
        regs_switch(self, &t_main, seed, out);
        for (int i = 0; i < NREGS; i++)
            s->bad += out[i] != regs_want(seed, i);
    }
}

START_TEST(t_regs_survive)
{
    static rg s;
    uint64_t out[NREGS];
    void *st = stack_new(STACK);

    t_init_main(&t_main);
    s.rounds = 200;
    t_make(&s.a, st, STACK, rg_body, &s, &t_main);
    for (int r = 0; r <= s.rounds; r++) {
        uint64_t seed = 0x1234000000000000ULL + (uint64_t)r * 0x100;
        regs_switch(&t_main, &s.a, seed, out);
        for (int i = 0; i < NREGS; i++)
            ck_assert_msg(out[i] == regs_want(seed, i),
                          "round %d: register %d is %#llx, want %#llx", r, i,
                          (unsigned long long)out[i],
                          (unsigned long long)regs_want(seed, i));
    }
    ck_assert(s.a.done);
    ck_assert_msg(s.bad == 0, "%d registers lost in the made context", s.bad);
    t_free(&s.a);
    stack_free(st, STACK);
}
END_TEST

/* ---- floating point in C across switches ------------------------------- */

static NOINLINE double fp_across(tctx *from, tctx *to, double seed)
{
    double a = seed + 0.25, b = a * 1.5, c = b - 0.125, d = c * c;
    double e = d / 3, f = e + a, g = f * b, h = g - c;
    tswitch(from, to);
    return a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g + 8 * h;
}

static double fp_want(double seed)
{
    volatile double s = seed;
    double a = s + 0.25, b = a * 1.5, c = b - 0.125, d = c * c;
    double e = d / 3, f = e + a, g = f * b, h = g - c;
    return a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g + 8 * h;
}

typedef struct fpx {
    tctx a;
    int rounds;
    int bad;
} fpx;

static void fp_body(tctx *self, void *arg)
{
    fpx *s = arg;
    for (int r = 0; r < s->rounds; r++)
        s->bad += fp_across(self, &t_main, 1000.0 + r) != fp_want(1000.0 + r);
}

START_TEST(t_fp_survive)
{
    static fpx s;
    void *st = stack_new(STACK);

    t_init_main(&t_main);
    s.rounds = 500;
    t_make(&s.a, st, STACK, fp_body, &s, &t_main);
    for (int r = 0; r <= s.rounds; r++)
        ck_assert(fp_across(&t_main, &s.a, -7.0 * r) == fp_want(-7.0 * r));
    ck_assert(s.a.done);
    ck_assert_msg(s.bad == 0, "%d values lost in the made context", s.bad);
    t_free(&s.a);
    stack_free(st, STACK);
}
END_TEST

/* ---- MXCSR and x87 control word are per-context (x86-64) --------------- */

#if defined(__x86_64__)
static unsigned get_mxcsr(void)
{
    unsigned v;
    __asm__ volatile("stmxcsr %0" : "=m"(v));
    return v;
}

static void set_mxcsr(unsigned v)
{
    __asm__ volatile("ldmxcsr %0" ::"m"(v));
}

static unsigned short get_x87cw(void)
{
    unsigned short v;
    __asm__ volatile("fnstcw %0" : "=m"(v));
    return v;
}

static void set_x87cw(unsigned short v)
{
    __asm__ volatile("fldcw %0" ::"m"(v));
}

/* Rounding-control fields: MXCSR bits 13-14, x87 CW bits 10-11; in both,
 * 0 nearest, 1 down, 2 up, 3 toward zero. */
#define MX_RC(v) (((v) >> 13) & 3)
#define CW_RC(v) (((v) >> 10) & 3)
static unsigned with_mx_rc(unsigned v, unsigned rc)
{
    return (v & ~0x6000u) | rc << 13;
}
static unsigned short with_cw_rc(unsigned short v, unsigned rc)
{
    return (unsigned short)((v & ~0xC00u) | rc << 10);
}

/* 1/3 in double (SSE, MXCSR) and long double (x87, control word). */
static double third_sse(void)
{
    volatile double one = 1, three = 3;
    return one / three;
}
static long double third_x87(void)
{
    volatile long double one = 1, three = 3;
    return one / three;
}

typedef struct fpu {
    tctx a;
    int rounds;
    int bad_inherit, bad;
} fpu;

static void fpu_body(tctx *self, void *arg)
{
    fpu *s = arg;
    /* Made after main set "down"/"up": starts with main's settings. */
    s->bad_inherit = MX_RC(get_mxcsr()) != 1 || CW_RC(get_x87cw()) != 2;
    set_mxcsr(with_mx_rc(get_mxcsr(), 2));  /* SSE: up */
    set_x87cw(with_cw_rc(get_x87cw(), 1));  /* x87: down */
    double q = third_sse();
    long double lq = third_x87();
    for (int r = 0; r < s->rounds; r++) {
        tswitch(self, &t_main);
        s->bad += MX_RC(get_mxcsr()) != 2 || CW_RC(get_x87cw()) != 1 ||
                  third_sse() != q || third_x87() != lq;
    }
}

START_TEST(t_fpu_control_per_context)
{
    static fpu s;
    unsigned mx0 = get_mxcsr();
    unsigned short cw0 = get_x87cw();
    void *st = stack_new(STACK);

    t_init_main(&t_main);
    set_mxcsr(with_mx_rc(mx0, 1));  /* SSE: down */
    set_x87cw(with_cw_rc(cw0, 2));  /* x87: up */
    double q = third_sse();
    long double lq = third_x87();
    s.rounds = 100;
    t_make(&s.a, st, STACK, fpu_body, &s, &t_main);
    /* Changing main's after make must not change what a starts with. */
    set_mxcsr(with_mx_rc(mx0, 3));
    set_x87cw(with_cw_rc(cw0, 3));
    for (int r = 0; r <= s.rounds; r++) {
        set_mxcsr(with_mx_rc(mx0, 1));
        set_x87cw(with_cw_rc(cw0, 2));
        tswitch(&t_main, &s.a);
        ck_assert_msg(MX_RC(get_mxcsr()) == 1, "main's MXCSR RC %u",
                      MX_RC(get_mxcsr()));
        ck_assert_msg(CW_RC(get_x87cw()) == 2, "main's x87 RC %u",
                      CW_RC(get_x87cw()));
        ck_assert(third_sse() == q && third_x87() == lq);
    }
    set_mxcsr(mx0);
    set_x87cw(cw0);
    ck_assert(s.a.done);
    ck_assert_msg(s.bad_inherit == 0,
                  "a made context did not start with its creator's FP control");
    ck_assert_msg(s.bad == 0, "%d rounds lost the made context's FP control",
                  s.bad);
    t_free(&s.a);
    stack_free(st, STACK);
}
END_TEST
#endif

/* ---- stack alignment at fn entry --------------------------------------
 * align_fn is entered straight from the trampoline.  Its frame address is
 * where the ABI puts the saved frame pointer: 16-aligned exactly when fn
 * was entered as the ABI says (x86-64: rsp % 16 == 8 before push rbp).
 * Then aligned vector stores to stack locals (movaps/movapd on x86-64) and
 * printf of doubles (glibc saves xmm registers with movaps) must work. */

typedef double v2d __attribute__((vector_size(16)));

typedef struct al {
    tctx a;
    uintptr_t frame, local;
    double sum;
    char text[64];
} al;

static NOINLINE double vec_on_stack(double x)
{
    volatile v2d v = {x, x + 1}; /* a 16-aligned stack slot */
    v2d w = v;
    w = w * w;
    return w[0] + w[1];
}

static NOINLINE void align_fn(void *arg)
{
    al *s = arg;
    _Alignas(16) char local[16];
    t_asan_after(&s->a);
    s->frame = (uintptr_t)__builtin_frame_address(0);
    s->local = (uintptr_t)local;
    s->sum = vec_on_stack(2.0);
    snprintf(s->text, sizeof s->text, "%.1f %.2f", 1.5, s->sum);
    t_asan_before(&s->a, &t_main, 1);
    T_TSAN_SWITCH(&t_main);
    weft__context_switch(&s->a.ctx, &t_main.ctx);
    abort();
}

START_TEST(t_stack_alignment)
{
    static al s;
    enum { SZ = 64 * 1024 };
    char *st = stack_new(SZ + 64);

    t_init_main(&t_main);
    /* Every misalignment of the top, and some of the bottom. */
    for (int top = 0; top < 16; top++) {
        for (int bottom = 0; bottom < 16; bottom += 5) {
            memset(&s, 0, sizeof s);
            t_make_raw(&s.a, st + bottom, (size_t)SZ - (size_t)bottom - (size_t)top,
                       align_fn, &s);
            tswitch(&t_main, &s.a);
            ck_assert_msg(s.frame % 16 == 0,
                          "top-%d: fn's frame at %#lx is not 16-aligned", top,
                          (unsigned long)s.frame);
            ck_assert(s.local % 16 == 0);
            ck_assert(s.frame > (uintptr_t)st + (uintptr_t)bottom &&
                      s.frame < (uintptr_t)st + SZ - (uintptr_t)top);
            ck_assert(s.sum == 4.0 + 9.0);
            ck_assert_msg(strcmp(s.text, "1.5 13.00") == 0, "printed %s",
                          s.text);
            t_free(&s.a);
        }
    }
    stack_free(st, SZ + 64);
}
END_TEST

/* ---- deep recursion on a made stack ------------------------------------ */

typedef struct deep {
    tctx a;
    int depth;
    unsigned long sum;
    uintptr_t deepest;
} deep;

static NOINLINE unsigned long recurse(deep *s, int depth)
{
    volatile unsigned char buf[64];
    buf[depth % 64] = (unsigned char)depth;
    if (depth == 0) {
        /* The frame, not buf: with detect_stack_use_after_return,
         * AddressSanitizer puts locals on a fake stack in the heap. */
        s->deepest = (uintptr_t)__builtin_frame_address(0);
        tswitch(&s->a, &t_main); /* switch out from the deepest frame */
        return 1;
    }
    unsigned long r = recurse(s, depth - 1);
    return r + buf[depth % 64];
}

static void deep_body(tctx *self, void *arg)
{
    deep *s = arg;
    s->sum = recurse(s, s->depth);
}

START_TEST(t_deep_recursion)
{
    static deep s;
    enum { SZ = 16 * 1024 * 1024 };
    char *st = stack_new(SZ);
    unsigned long want = 1;

    t_init_main(&t_main);
    s.depth = 20000;
    for (int d = 1; d <= s.depth; d++)
        want += (unsigned char)d;
    t_make(&s.a, st, SZ, deep_body, &s, &t_main);
    tswitch(&t_main, &s.a);
    ck_assert(!s.a.done);
    ck_assert_msg(s.deepest > (uintptr_t)st &&
                      s.deepest < (uintptr_t)st + SZ - (uintptr_t)s.depth * 64,
                  "deepest frame at %#lx, stack [%p, +%d)",
                  (unsigned long)s.deepest, (void *)st, SZ);
    tswitch(&t_main, &s.a);
    ck_assert(s.a.done);
    ck_assert_msg(s.sum == want, "sum %lu, want %lu", s.sum, want);
    t_free(&s.a);
    stack_free(st, SZ);
}
END_TEST

/* ---- a million switches, timed ----------------------------------------- */

typedef struct mil {
    tctx a;
    int stop;
    long n;
} mil;

static void mil_body(tctx *self, void *arg)
{
    mil *s = arg;
    while (!s->stop) {
        s->n++;
        tswitch(self, &t_main);
    }
}

START_TEST(t_million_switches)
{
    static mil s;
    void *st = stack_new(STACK);
    long rounds = 500000 * test_scale(); /* two switches per round */

    t_init_main(&t_main);
    t_make(&s.a, st, STACK, mil_body, &s, &t_main);
    int64_t t0 = now_ns();
    for (long i = 0; i < rounds; i++)
        tswitch(&t_main, &s.a);
    int64_t t1 = now_ns();
    ck_assert(s.n == rounds);
    s.stop = 1;
    tswitch(&t_main, &s.a);
    ck_assert(s.a.done);
    printf("context: %ld switches (%s backend): %.1f ns per switch\n",
           2 * rounds, weft__context_backend(),
           (double)(t1 - t0) / (double)(2 * rounds));
    t_free(&s.a);
    stack_free(st, STACK);
}
END_TEST

/* ---- the stack is really the one given: mmap'd and malloc'd ------------ */

typedef struct where {
    tctx a;
    uintptr_t local;
    int steps;
} where;

static void where_body(tctx *self, void *arg)
{
    where *s = arg;
    char local[32];
    for (int i = 0; i < 10; i++) {
        local[i] = (char)i;
        /* the frame: locals may be on AddressSanitizer's fake stack */
        s->local = (uintptr_t)__builtin_frame_address(0);
        s->steps++;
        tswitch(self, &t_main);
    }
    s->steps += local[9];
}

START_TEST(t_mmap_stack)
{
    static where s;
    size_t sz = 1024 * 1024;
    char *st = stack_new(sz);

    t_init_main(&t_main);
    t_make(&s.a, st, sz, where_body, &s, &t_main);
    for (int i = 0; i < 10; i++) {
        tswitch(&t_main, &s.a);
        ck_assert(s.steps == i + 1);
        ck_assert_msg(s.local >= (uintptr_t)st && s.local < (uintptr_t)st + sz,
                      "the context's local at %#lx is outside its stack",
                      (unsigned long)s.local);
        /* it runs near the top of its stack */
        ck_assert(s.local > (uintptr_t)st + sz - 16 * 1024);
    }
    tswitch(&t_main, &s.a);
    ck_assert(s.a.done && s.steps == 19);
    t_free(&s.a);
    stack_free(st, sz);
}
END_TEST

START_TEST(t_malloc_stack)
{
    static where s;
    size_t sz = 128 * 1024;
    char *st = malloc(sz);

    ck_assert_ptr_nonnull(st);
    t_init_main(&t_main);
    t_make(&s.a, st, sz, where_body, &s, &t_main);
    for (int i = 0; i < 10; i++) {
        tswitch(&t_main, &s.a);
        ck_assert(s.local >= (uintptr_t)st && s.local < (uintptr_t)st + sz);
    }
    tswitch(&t_main, &s.a);
    ck_assert(s.a.done && s.steps == 19);
    t_free(&s.a);
    free(st);
}
END_TEST

/* ---- switching a context to itself returns at once -------------------- */

START_TEST(t_switch_to_self)
{
    weft__context self;
    volatile int n = 0;

    memset(&self, 0, sizeof self);
    for (int i = 0; i < 3; i++) {
        weft__context_switch(&self, &self);
        n++;
    }
    ck_assert(n == 3);
}
END_TEST

/* ---- a context resumed on another OS thread ---------------------------- */

typedef struct xt {
    tctx a;
    tctx other;   /* the second thread's main context */
    pthread_t first, second;
    int ok_first, ok_second;
} xt;

/* pthread_self is declared const, so the compiler may reuse its value
 * across the switch in xt_body - which is wrong once the context moved to
 * another thread (the same holds for addresses of _Thread_local variables:
 * see "Context switch" in docs/ARCHITECTURE.md).  Calling it through a
 * volatile pointer forces a fresh call. */
static pthread_t (*volatile self_fn)(void) = pthread_self;

static void xt_body(tctx *self, void *arg)
{
    xt *s = arg;
    volatile int mark = 42;
    s->ok_first = pthread_equal(self_fn(), s->first);
    tswitch(self, &t_main);
    /* Now on the second thread, with the same stack and locals. */
    s->ok_second = pthread_equal(self_fn(), s->second) && mark == 42;
    self->exit_to = &s->other;
}

static void *xt_thread(void *arg)
{
    xt *s = arg;
    s->second = pthread_self(); /* pthread_create may not have stored it */
    t_init_main(&s->other);
    tswitch(&s->other, &s->a);
    return NULL;
}

START_TEST(t_resume_on_other_thread)
{
    static xt s;
    void *st = stack_new(STACK);

    t_init_main(&t_main);
    s.first = pthread_self();
    t_make(&s.a, st, STACK, xt_body, &s, &t_main);
    tswitch(&t_main, &s.a);
    ck_assert(s.ok_first && !s.a.done);
    /* pthread_create/join order the context's state between the threads. */
    pthread_t th;
    ck_assert(pthread_create(&th, NULL, xt_thread, &s) == 0);
    ck_assert(pthread_join(th, NULL) == 0);
    ck_assert(s.a.done);
    ck_assert_msg(s.ok_second, "the context did not resume intact on the "
                               "second thread");
    t_free(&s.a);
    stack_free(st, STACK);
}
END_TEST

/* ---- fn returning panics ------------------------------------------------ */

static tctx ret_ctx;

static void returning_fn(void *arg)
{
    (void)arg;
    t_asan_after(&ret_ctx);
    /* returns into the trampoline: a bug, reported with abort() */
}

START_TEST(t_fn_return_aborts)
{
    void *st = stack_new(STACK);

    t_init_main(&t_main);
    t_make_raw(&ret_ctx, st, STACK, returning_fn, NULL);
    tswitch(&t_main, &ret_ctx);
    ck_assert_msg(0, "the switch came back after fn returned");
}
END_TEST

static Suite *context_suite(void)
{
    Suite *s = suite_create("context");
    TCase *tc = tcase_create("context");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, t_backend);
    tcase_add_test(tc, t_pingpong);
    tcase_add_test(tc, t_made_to_made);
    tcase_add_test(tc, t_locals_survive);
    tcase_add_test(tc, t_switch_ret);
    tcase_add_test(tc, t_regs_survive);
    tcase_add_test(tc, t_fp_survive);
#if defined(__x86_64__)
    tcase_add_test(tc, t_fpu_control_per_context);
#endif
    tcase_add_test(tc, t_stack_alignment);
    tcase_add_test(tc, t_deep_recursion);
    tcase_add_test(tc, t_million_switches);
    tcase_add_test(tc, t_mmap_stack);
    tcase_add_test(tc, t_malloc_stack);
    tcase_add_test(tc, t_switch_to_self);
    tcase_add_test(tc, t_resume_on_other_thread);
    tcase_add_test_raise_signal(tc, t_fn_return_aborts, SIGABRT);
    suite_add_tcase(s, tc);
    return s;
}

TEST_MAIN(context_suite)
