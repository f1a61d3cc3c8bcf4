/* counter.c - the seed's Counter: threads increment a shared counter that
 * guards itself with a lock.
 *
 * Python's version (seed 004) starts two workers that each increment twice,
 * logging while they wait for and take the lock; main then joins every
 * thread but itself, found through threading.enumerate().  weft does the
 * same, then scales up: 8 threads x 100,000 increments of a plain long,
 * guarded by a weft_lock, must end exactly at 800,000.
 *
 * Usage: counter [threads] [increments]   (WEFT_LOG_LEVEL=debug shows the
 * lock traffic of the first part.)
 */
#include <stdio.h>
#include <stdlib.h>

#include "weft.h"

typedef struct counter {
    weft_lock lock;
    long value; /* guarded by lock */
} counter;

static void counter_increment(counter *c)
{
    weft_debug("Waiting for lock");
    weft_lock_acquire(&c->lock, WEFT_FOREVER);
    weft_debug("Acquired lock");
    c->value = c->value + 1;
    weft_lock_release(&c->lock);
}

struct job {
    counter *c;
    long times;
    unsigned seed;
    bool pause;
};

static int worker(void *arg)
{
    struct job *j = arg;
    for (long i = 0; i < j->times; i++) {
        if (j->pause) {
            int ms = (int)(rand_r(&j->seed) % 50);
            weft_debug("Sleeping %0.02f", ms / 1000.0);
            weft_sleep_until(weft_deadline_ms(ms));
        }
        counter_increment(j->c);
    }
    weft_debug("Done");
    return 0;
}

/* List the live threads, as the seed does through threading.enumerate(). */
static void show_threads(void)
{
    weft_thread *all[80];
    int n = weft_thread_enumerate(all, 80);
    printf("%d live threads:", n);
    for (int i = 0; i < n && i < 80; i++) {
        printf(" %s", weft_thread_name(all[i]));
        weft_thread_release(all[i]);
    }
    printf("\n");
}

static int run(counter *c, struct job *jobs, int n, long times, bool pause)
{
    weft_thread *ts[64];
    char name[32];

    for (int i = 0; i < n; i++) {
        jobs[i] = (struct job){c, times, (unsigned)i + 1, pause};
        snprintf(name, sizeof name, "worker-%d", i + 1);
        weft_thread_opts o = WEFT_THREAD_OPTS_DEFAULT;
        o.name = name;
        int rc = weft_thread_start(&ts[i], worker, &jobs[i], &o);
        if (rc != 0) {
            fprintf(stderr, "start: %s\n", weft_strerror(rc));
            return rc;
        }
    }
    if (pause)
        show_threads();
    weft_debug("Waiting for worker threads");
    for (int i = 0; i < n; i++)
        weft_thread_join(ts[i], NULL, WEFT_FOREVER);
    return 0;
}

int main(int argc, char **argv)
{
    int nthreads = argc > 1 ? atoi(argv[1]) : 8;
    long times = argc > 2 ? atol(argv[2]) : 100000;
    counter c = {WEFT_LOCK_INIT, 0};
    struct job jobs[64];

    if (nthreads < 1 || nthreads > 64 || times < 1) {
        fprintf(stderr, "usage: counter [threads 1-64] [increments]\n");
        return 2;
    }

    /* Part 1: the seed, two workers, two increments each, random pauses. */
    if (run(&c, jobs, 2, 2, true) != 0)
        return 1;
    printf("Counter: %ld\n", c.value);

    /* Part 2: many threads, many increments, one exact total. */
    c.value = 0;
    int64_t t0 = weft_now();
    if (run(&c, jobs, nthreads, times, false) != 0)
        return 1;
    double ms = (double)(weft_now() - t0) / 1e6;
    printf("Counter: %ld (expected %ld) from %d threads in %.1f ms\n",
           c.value, (long)nthreads * times, nthreads, ms);
    return c.value == (long)nthreads * times ? 0 : 1;
}
