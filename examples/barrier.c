/* barrier.c - threads released together by a barrier (seed 004: "Often
 * used to initialize a bunch of threads before letting them all operate").
 *
 * Each of N threads spends a different time getting ready, then waits at a
 * barrier.  The last to arrive runs the barrier's action once (it prints
 * "all N ready"), and only then does any thread go on.  Every thread notes
 * when it arrived and when it was released: no thread is released before the
 * last one arrived, and the arrival indexes 0..N-1 are each handed out once.
 * The barrier is cyclic: the same threads then meet at it twice more.
 *
 * Usage: barrier [threads]   (default 5)
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "weft.h"

#define ROUNDS 3

struct shared {
    weft_barrier *b;
    int n;
    int64_t arrived[64][ROUNDS], released[64][ROUNDS];
    int index[64][ROUNDS];
    atomic_int actions;
};

struct me {
    struct shared *s;
    int id;
};

static int all_ready(void *arg)
{
    struct shared *s = arg;
    int round = atomic_fetch_add(&s->actions, 1);
    printf("round %d: all %d ready (action ran in %s)\n", round + 1, s->n,
           weft_thread_name(weft_thread_current()));
    return 0;
}

static int runner(void *arg)
{
    struct me *m = arg;
    struct shared *s = m->s;
    for (int r = 0; r < ROUNDS; r++) {
        /* Getting ready takes a different time for each thread. */
        weft_sleep_until(weft_deadline_ms(5 * (m->id + 1) + 10 * r));
        s->arrived[m->id][r] = weft_now();
        int idx = weft_barrier_wait(s->b, WEFT_FOREVER);
        if (idx < 0)
            return idx;
        s->released[m->id][r] = weft_now();
        s->index[m->id][r] = idx;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct shared s;
    struct me mes[64];
    weft_thread *ts[64];
    int n = argc > 1 ? atoi(argv[1]) : 5;

    if (n < 1 || n > 64)
        return 2;
    s.n = n;
    if (weft_barrier_create(&s.b, n, all_ready, &s) != 0)
        return 1;
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "runner-%d", i);
        weft_thread_opts o = {name, 0, 0};
        mes[i] = (struct me){&s, i};
        if (weft_thread_start(&ts[i], runner, &mes[i], &o) != 0)
            return 1;
    }
    int failed = 0;
    for (int i = 0; i < n; i++) {
        int rc;
        weft_thread_join(ts[i], &rc, WEFT_FOREVER);
        failed += rc != 0;
    }
    bool ok = failed == 0 && atomic_load(&s.actions) == ROUNDS;
    for (int r = 0; r < ROUNDS && ok; r++) {
        int64_t last_arrival = 0, first_release = INT64_MAX;
        unsigned long long seen = 0;
        for (int i = 0; i < n; i++) {
            if (s.arrived[i][r] > last_arrival)
                last_arrival = s.arrived[i][r];
            if (s.released[i][r] < first_release)
                first_release = s.released[i][r];
            seen |= 1ull << s.index[i][r];
        }
        bool together = first_release >= last_arrival;
        bool indexes = seen == (n == 64 ? ~0ull : (1ull << n) - 1);
        printf("round %d: last arrival to first release %+.3f ms, "
               "indexes %s\n",
               r + 1, (double)(first_release - last_arrival) / 1e6,
               indexes ? "0..n-1 once each" : "WRONG");
        ok = ok && together && indexes;
    }
    printf("barrier: %s\n", ok ? "every thread released together, every round"
                               : "FAILED");
    weft_barrier_destroy(s.b);
    return ok ? 0 : 1;
}
