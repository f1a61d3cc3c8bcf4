/* bench_event.c - wake-up latency: how long after one thread sets a
 * weft_event does the thread waiting on it run again, against the same hand
 * written with pthread_cond (a flag under a mutex, signalled).
 *
 * A waiter announces that it is about to wait, and waits; the setter sees
 * the announcement, lets a chosen delay pass, reads the clock and sets the
 * event; the waiter reads the clock as soon as its wait returns.  The
 * difference is one sample.  The delay decides where the waiter is when the
 * set comes:
 *   0       it has only just started waiting (weft: spinning in the park
 *           layer; pthread_cond: on its way into the kernel);
 *   50 us   past weft's default spin budget (WEFT_SPIN_NS, 4 us): both
 *           are asleep; raise WEFT_SPIN_NS above 50000 to see the spin
 *           catch it;
 *   500 us  well past any spin budget: both are asleep in futex_wait, so
 *           this is the cost of the kernel's wake-up alone.
 * The clock is CLOCK_MONOTONIC, read on both threads (the same clock on
 * every core).  Figures: median and p99 of the samples, in microseconds.
 */
#include "bench.h"
#include "weft.h"

enum { IMPL_WEFT, IMPL_PTHREAD };
static const char *const impl_name[] = {"weft", "pthread"};

typedef struct shared {
    int impl;
    long n;
    int64_t delay_ns;
    weft_event ev;
    pthread_mutex_t m;
    pthread_cond_t c;
    int flag;                  /* guarded by m */
    _Atomic long ready;        /* the waiter is about to wait for round i */
    _Atomic long done;         /* the waiter woke in round i */
    _Atomic int64_t t_woke;
} shared;

static void *waiter(void *arg)
{
    shared *s = arg;

    for (long i = 1; i <= s->n; i++) {
        int64_t t1;
        if (s->impl == IMPL_WEFT) {
            atomic_store(&s->ready, i);
            if (weft_event_wait(&s->ev, WEFT_FOREVER) != 0)
                bench_fail("weft_event_wait failed");
            t1 = bench_now();
            weft_event_clear(&s->ev);
        } else {
            pthread_mutex_lock(&s->m);
            atomic_store(&s->ready, i);
            while (!s->flag)
                pthread_cond_wait(&s->c, &s->m);
            t1 = bench_now();
            s->flag = 0;
            pthread_mutex_unlock(&s->m);
        }
        atomic_store(&s->t_woke, t1);
        atomic_store(&s->done, i);
    }
    return NULL;
}

/* One batch of n samples into h. */
static void run(int impl, long n, int64_t delay_ns, bench_hist *h)
{
    static shared s;

    s.impl = impl;
    s.n = n;
    s.delay_ns = delay_ns;
    weft_event_init(&s.ev);
    pthread_mutex_init(&s.m, NULL);
    pthread_cond_init(&s.c, NULL);
    s.flag = 0;
    atomic_store(&s.ready, 0);
    atomic_store(&s.done, 0);
    pthread_t t = bench_start(waiter, &s);
    for (long i = 1; i <= n; i++) {
        while (atomic_load(&s.ready) != i)
            ;
        int64_t t0 = bench_now();
        while (delay_ns > 0 && bench_now() - t0 < delay_ns)
            ;
        if (impl == IMPL_WEFT) {
            t0 = bench_now();
            weft_event_set(&s.ev);
        } else {
            t0 = bench_now();
            pthread_mutex_lock(&s.m);
            s.flag = 1;
            pthread_cond_signal(&s.c);
            pthread_mutex_unlock(&s.m);
        }
        while (atomic_load(&s.done) != i)
            ;
        bench_hist_add(h, atomic_load(&s.t_woke) - t0);
    }
    bench_join(t);
    weft_event_fini(&s.ev);
    pthread_mutex_destroy(&s.m);
    pthread_cond_destroy(&s.c);
}

int main(void)
{
    static const int64_t delays[] = {0, 50000, 500000};
    static const long samples[] = {4000, 1000, 200};
    int reps = bench_reps();
    static bench_hist h[2];

    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int d = 0; d < 3; d++) {
        long n = bench_scaled(samples[d], 20) / reps + 1;
        char key[64];

        memset(h, 0, sizeof h);
        for (int r = 0; r < reps; r++)
            for (int k = 0; k < 2; k++) {
                int impl = (r + k) % 2; /* alternate who goes first */
                run(impl, n, delays[d], &h[impl]);
            }
        printf("# wake-up latency, set %lld us after the waiter began "
               "waiting, %ld samples each\n",
               (long long)(delays[d] / 1000), n * reps);
        double med[2];
        for (int impl = 0; impl < 2; impl++) {
            med[impl] = bench_hist_quantile(&h[impl], 0.5) / 1e3;
            double p99 = bench_hist_quantile(&h[impl], 0.99) / 1e3;
            printf("#   %-7s p50 %.2f us, p99 %.2f us, max %.1f us\n",
                   impl_name[impl], med[impl], p99, h[impl].max / 1e3);
            snprintf(key, sizeof key, "wakeup_%lldus_p50",
                     (long long)(delays[d] / 1000));
            bench_result(key, impl_name[impl], med[impl], "us", "lower");
            snprintf(key, sizeof key, "wakeup_%lldus_p99",
                     (long long)(delays[d] / 1000));
            bench_result(key, impl_name[impl], p99, "us", "lower");
        }
        printf("#   ratio weft/pthread p50 %.2f\n", med[0] / med[1]);
    }
    return 0;
}
