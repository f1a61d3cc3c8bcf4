/* bench_cond.c - condition ping-pong: two threads hand a turn back and forth
 * through one lock and one condition, weft_cond against pthread_cond.
 *
 * Each thread loops: take the lock, wait until the turn is its own, give
 * the turn to the other, notify, release.  One round trip is two hand-offs
 * (A to B and back), so every round trip is two waits that really wait and
 * two notifies that really wake someone: the figure is round trips per
 * second, and its inverse is twice the wake-up path of the condition.
 * Both implementations run in the same process, alternating which goes
 * first (see bench.h).
 */
#include "bench.h"
#include "weft.h"

enum { IMPL_WEFT, IMPL_PTHREAD };
static const char *const impl_name[] = {"weft", "pthread"};

typedef struct shared {
    int impl;
    long n;
    weft_lock wl;
    weft_cond wc;
    pthread_mutex_t pm;
    pthread_cond_t pc;
    int turn;                  /* guarded by the lock under test */
    bench_gate gate;
} shared;

typedef struct player {
    shared *s;
    int me;
    int64_t t_start, t_end;
} player;

static void *play(void *arg)
{
    player *p = arg;
    shared *s = p->s;

    bench_gate_wait(&s->gate);
    p->t_start = bench_now();
    for (long i = 0; i < s->n; i++) {
        if (s->impl == IMPL_WEFT) {
            if (weft_lock_acquire(&s->wl, WEFT_FOREVER) != 0)
                bench_fail("weft_lock_acquire failed");
            while (s->turn != p->me)
                if (weft_cond_wait(&s->wc, WEFT_FOREVER) != 0)
                    bench_fail("weft_cond_wait failed");
            s->turn = !p->me;
            if (weft_cond_notify(&s->wc, 1) != 0)
                bench_fail("weft_cond_notify failed");
            weft_lock_release(&s->wl);
        } else {
            pthread_mutex_lock(&s->pm);
            while (s->turn != p->me)
                pthread_cond_wait(&s->pc, &s->pm);
            s->turn = !p->me;
            pthread_cond_signal(&s->pc);
            pthread_mutex_unlock(&s->pm);
        }
    }
    p->t_end = bench_now();
    return NULL;
}

/* Round trips per second of one run. */
static double run(int impl, long n)
{
    static shared s;
    player p[2];
    pthread_t t[2];

    s.impl = impl;
    s.n = n;
    weft_lock_init(&s.wl);
    weft_cond_init(&s.wc, &s.wl);
    pthread_mutex_init(&s.pm, NULL);
    pthread_cond_init(&s.pc, NULL);
    s.turn = 0;
    bench_gate_init(&s.gate, 2);
    for (int i = 0; i < 2; i++) {
        p[i].s = &s;
        p[i].me = i;
        t[i] = bench_start(play, &p[i]);
    }
    for (int i = 0; i < 2; i++)
        bench_join(t[i]);
    int64_t start = p[0].t_start < p[1].t_start ? p[0].t_start : p[1].t_start;
    int64_t end = p[0].t_end > p[1].t_end ? p[0].t_end : p[1].t_end;
    if (weft_cond_fini(&s.wc) != 0 || weft_lock_fini(&s.wl) != 0)
        bench_fail("weft cond or lock still busy after the run");
    pthread_mutex_destroy(&s.pm);
    pthread_cond_destroy(&s.pc);
    return (double)n / ((double)(end - start) / 1e9);
}

int main(void)
{
    int reps = bench_reps();
    long n = bench_scaled(10000, 100);
    double v[2][64];

    if (reps > 64)
        reps = 64;
    setvbuf(stdout, NULL, _IOLBF, 0);
    run(IMPL_WEFT, n / 10); /* warm up */
    run(IMPL_PTHREAD, n / 10);
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < 2; k++) {
            int impl = (r + k) % 2;
            v[impl][r] = run(impl, n) / 1e3;
        }
    printf("# condition ping-pong, 2 threads, %ld round trips per run\n", n);
    double mw = bench_report("cond_pingpong", impl_name[0], v[0], reps,
                             "k-rt/s", "higher");
    double mp = bench_report("cond_pingpong", impl_name[1], v[1], reps,
                             "k-rt/s", "higher");
    printf("#   ratio weft/pthread rate %.2f\n", mw / mp);
    return 0;
}
