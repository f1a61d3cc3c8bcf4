/* bench_switch.c - the raw context switch: weft__context_switch against
 * glibc's swapcontext, both ping-ponging between the main context and one
 * made context on one thread.
 *
 * The figure is nanoseconds per switch (a round trip is two switches).  No
 * scheduler, no sanitizer hooks: this is the floor that a green-thread
 * yield builds on (DESIGN.md quotes ~7 ns for an assembly switch against
 * ~340 ns for swapcontext, which makes a system call per switch).  When the
 * library is built with CONTEXT=ucontext, "weft" is swapcontext too, behind
 * one more call.  The comparison with Boost.Context (jump_fcontext and
 * boost::context::fiber) comes with the green layer's benchmarks.
 *
 * Both run in the same process, alternating which goes first (bench.h).
 */
#include <sys/mman.h>
#include <ucontext.h>

#include "bench.h"
#include "platform/context.h"

enum { STACK = 64 * 1024 };

/* ---- weft ---------------------------------------------------------------- */

static weft__context w_main, w_peer;
static long w_count;

static void w_peer_fn(void *arg)
{
    (void)arg;
    for (;;) {
        w_count++;
        weft__context_switch(&w_peer, &w_main);
    }
}

/* ns per switch over n round trips.  The peer is never finished: a fresh
 * one is made on the same stack for each run. */
static double run_weft(char *stack, long n)
{
    weft__context_make(&w_peer, stack, STACK, w_peer_fn, NULL);
    w_count = 0;
    int64_t t0 = bench_now();
    for (long i = 0; i < n; i++)
        weft__context_switch(&w_main, &w_peer);
    int64_t t1 = bench_now();
    if (w_count != n)
        bench_fail("weft: the peer ran the wrong number of times");
    return (double)(t1 - t0) / (double)(2 * n);
}

/* ---- ucontext -------------------------------------------------------------- */

static ucontext_t u_main, u_peer;
static long u_count;

static void u_peer_fn(void)
{
    for (;;) {
        u_count++;
        swapcontext(&u_peer, &u_main);
    }
}

static double run_ucontext(char *stack, long n)
{
    if (getcontext(&u_peer) != 0)
        bench_fail("getcontext failed");
    u_peer.uc_stack.ss_sp = stack;
    u_peer.uc_stack.ss_size = STACK;
    u_peer.uc_link = NULL;
    makecontext(&u_peer, u_peer_fn, 0);
    u_count = 0;
    int64_t t0 = bench_now();
    for (long i = 0; i < n; i++)
        swapcontext(&u_main, &u_peer);
    int64_t t1 = bench_now();
    if (u_count != n)
        bench_fail("ucontext: the peer ran the wrong number of times");
    return (double)(t1 - t0) / (double)(2 * n);
}

int main(void)
{
    int reps = bench_reps();
    long n_weft = bench_scaled(5000000, 1000);
    long n_uc = bench_scaled(500000, 1000);
    double *vw = calloc((size_t)reps, sizeof *vw);
    double *vu = calloc((size_t)reps, sizeof *vu);
    char *stack = mmap(NULL, STACK, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);

    if (!vw || !vu || stack == MAP_FAILED)
        bench_fail("out of memory");
    printf("# context switch: main <-> one made context, one thread; "
           "ns per switch\n");
    printf("# weft backend: %s; %ld round trips (weft), %ld (ucontext)\n",
           weft__context_backend(), n_weft, n_uc);
    run_weft(stack, n_weft / 10); /* warm up */
    run_ucontext(stack, n_uc / 10);
    for (int r = 0; r < reps; r++) {
        if (r % 2 == 0) {
            vw[r] = run_weft(stack, n_weft);
            vu[r] = run_ucontext(stack, n_uc);
        } else {
            vu[r] = run_ucontext(stack, n_uc);
            vw[r] = run_weft(stack, n_weft);
        }
    }
    double w = bench_report("switch", "weft", vw, reps, "ns", "lower");
    double u = bench_report("switch", "ucontext", vu, reps, "ns", "lower");
    printf("# weft / ucontext = %.3f\n", w / u);
    munmap(stack, STACK);
    free(vw);
    free(vu);
    return 0;
}
