/* green_selfish.c - the seed's selfish green threads: five counters in loops
 * that never yield, and every one of them advances.
 *
 * With eventlet the first greenlet to run keeps the only OS thread forever:
 * the others never count and the program never ends.  With weft the
 * monitor notices a worker held by one green thread while others wait in
 * its queue, logs a warning naming it, and hands the waiting ones to spare
 * workers, so each selfish loop ends up on an OS thread of its own and the
 * kernel shares the cores.  The main thread lets them run, then tells them
 * to stop through an atomic flag (the loops read it; they still never
 * yield), joins them and prints every counter.  Also with WEFT_WORKERS=1.
 *
 * Usage: green_selfish [ms]   (default 1000)
 * Exits 0 when every counter advanced.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "weft.h"

#define N 5

static atomic_bool stop;
static _Atomic unsigned long long counter[N];

static int selfish(void *arg)
{
    _Atomic unsigned long long *c = arg;

    /* Never yields, never blocks: only the flag ends it. */
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    return 0;
}

int main(int argc, char **argv)
{
    long ms = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
    weft_green *g[N];
    char name[24];
    int advanced = 0;

    if (ms <= 0) {
        fprintf(stderr, "usage: %s [ms]\n", argv[0]);
        return 2;
    }
    for (int i = 0; i < N; i++) {
        weft_green_opts o = {name, 0};
        snprintf(name, sizeof name, "selfish-%d", i + 1);
        if (weft_green_spawn(&g[i], selfish, &counter[i], &o) != 0) {
            fprintf(stderr, "spawn failed\n");
            return 1;
        }
    }
    printf("%d selfish green threads on %d worker(s), running for %ld ms\n",
           N, weft_runtime_workers(), ms);
    fflush(stdout);
    (void)weft_sleep_until(weft_deadline_in(ms * WEFT_NSEC_PER_MSEC));
    atomic_store(&stop, true);
    for (int i = 0; i < N; i++) {
        if (weft_green_join(g[i], NULL, WEFT_FOREVER) != 0) {
            fprintf(stderr, "join failed\n");
            return 1;
        }
    }
    for (int i = 0; i < N; i++) {
        unsigned long long v = atomic_load(&counter[i]);
        printf("selfish-%d counted to %llu\n", i + 1, v);
        advanced += v > 0;
    }
    printf("%d of %d counters advanced; every green thread stopped when told\n",
           advanced, N);
    if (weft_runtime_shutdown(weft_deadline_in(5 * WEFT_NSEC_PER_SEC)) != 0)
        return 1;
    return advanced == N ? 0 : 1;
}
