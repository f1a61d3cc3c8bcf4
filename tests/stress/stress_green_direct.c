/* stress_green_direct.c - the direct switch between green threads (a yield
 * or a park that hands its worker straight to the next green thread queued
 * there, sched.c "the direct switch") under load: many green threads
 * yielding on one and two workers, message ping-pong through queues and
 * events with wake-ups that cross workers, a token passed around a ring of
 * parked green threads while idle workers steal, timed waits racing their
 * wake-ups (the timer path goes through the scheduler), and a hog that
 * brings in a spare worker while the others switch directly.  Every count
 * is exact; sizes scale with WEFT_TEST_SCALE. */
#include "support.h"

#include <stdatomic.h>

#include "green/green.h"

/* ---- yields ------------------------------------------------------------- */

struct yielders {
    _Atomic long total;
    _Atomic int arrived;
    int n;      /* green threads */
    long k;     /* yields each */
};

static int yielder(void *p)
{
    struct yielders *y = p;
    long mine = 0;

    atomic_fetch_add(&y->arrived, 1);
    while (atomic_load(&y->arrived) < y->n)
        if (weft_green_yield() != 0)
            return -1;
    for (long i = 0; i < y->k; i++) {
        if (weft_green_yield() != 0)
            return -1;
        mine++;
        atomic_fetch_add(&y->total, 1);
    }
    return mine == y->k ? 0 : 1;
}

static void run_yielders(int workers, int n, long k)
{
    struct yielders y = {.n = n, .k = k};
    weft_green **g = calloc((size_t)n, sizeof *g);
    int r;

    ck_assert_ptr_nonnull(g);
    ck_assert_rc(weft_runtime_start(workers), 0);
    for (int i = 0; i < n; i++)
        ck_assert_rc(weft_green_spawn(&g[i], yielder, &y, NULL), 0);
    for (int i = 0; i < n; i++) {
        ck_assert_rc(weft_green_join(g[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 0);
    }
    ck_assert_int_eq(atomic_load(&y.total), (long)n * k);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
    free(g);
}

START_TEST(yield_one_worker)
{
    run_yielders(1, 100, 2000 * test_scale());
}
END_TEST

START_TEST(yield_two_workers)
{
    run_yielders(2, 100, 2000 * test_scale());
}
END_TEST

/* One worker, three green threads: the yields keep strict turns (spawn
 * order is run order).  The switch interval is raised so that no spare
 * worker can take part even on a loaded machine. */
static _Atomic int turn_log[3 * 3000];
static _Atomic int turn_at;

static int turn_taker(void *p)
{
    int id = (int)(intptr_t)p;

    for (int i = 0; i < 3000; i++) {
        atomic_store(&turn_log[atomic_fetch_add(&turn_at, 1)], id);
        weft_green_yield();
    }
    return 0;
}

/* Spawns from a green thread, so that the three are queued on the one
 * worker in order before any of them runs (spawns from an OS thread go
 * through the global queue, which the worker may drain one at a time). */
static int turn_driver(void *p)
{
    weft_green *g[3];

    (void)p;
    for (int i = 0; i < 3; i++)
        if (weft_green_spawn(&g[i], turn_taker, (void *)(intptr_t)i,
                             NULL) != 0)
            return 1;
    for (int i = 0; i < 3; i++)
        if (weft_green_join(g[i], NULL, WEFT_FOREVER) != 0)
            return 2;
    return 0;
}

START_TEST(yield_one_worker_round_robin)
{
    weft_green *d;
    int r;

    ck_assert_rc(weft_runtime_set_switch_interval(3600 * WEFT_NSEC_PER_SEC),
                 0);
    ck_assert_rc(weft_runtime_start(1), 0);
    ck_assert_rc(weft_green_spawn(&d, turn_driver, NULL, NULL), 0);
    ck_assert_rc(weft_green_join(d, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 0);
    ck_assert_int_eq(atomic_load(&turn_at), 3 * 3000);
    for (int i = 0; i < 3 * 3000; i++)
        ck_assert_int_eq(atomic_load(&turn_log[i]), i % 3);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

/* ---- ping-pong ------------------------------------------------------------ */

struct pair {
    weft_queue *ping, *pong;
    weft_event ev[2];       /* the event variant: set by the other side */
    long n;
    _Atomic long seen;
};

static int q_ponger(void *p)
{
    struct pair *x = p;
    void *item;

    for (long i = 0; i < x->n; i++) {
        if (weft_queue_get(x->ping, &item, WEFT_FOREVER) != 0)
            return 1;
        if (weft_queue_put(x->pong, item, WEFT_FOREVER) != 0)
            return 2;
    }
    return 0;
}

static int q_pinger(void *p)
{
    struct pair *x = p;
    void *item;

    for (long i = 0; i < x->n; i++) {
        if (weft_queue_put(x->ping, (void *)(intptr_t)(i + 1),
                           WEFT_FOREVER) != 0)
            return 1;
        if (weft_queue_get(x->pong, &item, WEFT_FOREVER) != 0)
            return 2;
        if (item != (void *)(intptr_t)(i + 1))
            return 3;
        atomic_fetch_add(&x->seen, 1);
        if (i % 7 == 0)
            weft_green_yield(); /* mix yields in with the parks */
    }
    return 0;
}

/* Each side waits for its own event and sets the other's: every message
 * is a park and a wake-up, and with two workers often a cross-worker one. */
static int e_side(void *p, int me)
{
    struct pair *x = p;

    for (long i = 0; i < x->n; i++) {
        if (me == 0) {
            weft_event_set(&x->ev[1]);
            if (weft_event_wait(&x->ev[0], WEFT_FOREVER) != 0)
                return 1;
            weft_event_clear(&x->ev[0]);
            atomic_fetch_add(&x->seen, 1);
        } else {
            if (weft_event_wait(&x->ev[1], WEFT_FOREVER) != 0)
                return 1;
            weft_event_clear(&x->ev[1]);
            weft_event_set(&x->ev[0]);
        }
    }
    return 0;
}

static int e_side0(void *p)
{
    return e_side(p, 0);
}

static int e_side1(void *p)
{
    return e_side(p, 1);
}

static void run_pairs(int workers, bool events, bool os_side)
{
    enum { P = 8 };
    static struct pair x[P];
    weft_green *a[P], *b[P] = {0};
    tt *t[P] = {0};
    long n = 5000 * test_scale();
    int r;

    ck_assert_rc(weft_runtime_start(workers), 0);
    for (int i = 0; i < P; i++) {
        memset(&x[i], 0, sizeof x[i]);
        x[i].n = n;
        weft_event_init(&x[i].ev[0]);
        weft_event_init(&x[i].ev[1]);
        ck_assert_rc(weft_queue_create(&x[i].ping, WEFT_QUEUE_FIFO, 1), 0);
        ck_assert_rc(weft_queue_create(&x[i].pong, WEFT_QUEUE_FIFO, 1), 0);
    }
    for (int i = 0; i < P; i++) {
        ck_assert_rc(weft_green_spawn(&a[i], events ? e_side0 : q_pinger,
                                      &x[i], NULL), 0);
        /* The last pair's partner may be an OS thread. */
        if (os_side && i == P - 1)
            t[i] = tt_start(events ? e_side1 : q_ponger, &x[i]);
        else
            ck_assert_rc(weft_green_spawn(&b[i], events ? e_side1 : q_ponger,
                                          &x[i], NULL), 0);
    }
    for (int i = 0; i < P; i++) {
        ck_assert_rc(weft_green_join(a[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 0);
        if (t[i] != NULL)
            ck_assert_int_eq(tt_join(t[i]), 0);
        else {
            ck_assert_rc(weft_green_join(b[i], &r, WEFT_FOREVER), 0);
            ck_assert_int_eq(r, 0);
        }
        ck_assert_int_eq(atomic_load(&x[i].seen), n);
        ck_assert_rc(weft_queue_destroy(x[i].ping, NULL), 0);
        ck_assert_rc(weft_queue_destroy(x[i].pong, NULL), 0);
        ck_assert_rc(weft_event_fini(&x[i].ev[0]), 0);
        ck_assert_rc(weft_event_fini(&x[i].ev[1]), 0);
    }
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}

START_TEST(queue_pingpong_one_worker)
{
    run_pairs(1, false, false);
}
END_TEST

START_TEST(queue_pingpong_two_workers)
{
    run_pairs(2, false, true);
}
END_TEST

START_TEST(event_pingpong_two_workers)
{
    run_pairs(2, true, true);
}
END_TEST

/* ---- a token around a ring, with stealing --------------------------------- */

struct ring {
    int n;
    long laps;
    weft_sem *s;            /* s[i]: green thread i may go */
    _Atomic long hops;
};

struct ring_arg {
    struct ring *ring;
    int i;
};

static int ring_node(void *p)
{
    struct ring_arg *a = p;
    struct ring *rg = a->ring;
    int next = (a->i + 1) % rg->n;

    for (long lap = 0; lap < rg->laps; lap++) {
        if (weft_sem_acquire(&rg->s[a->i], WEFT_FOREVER) != 0)
            return 1;
        atomic_fetch_add(&rg->hops, 1);
        if ((lap + a->i) % 3 == 0)
            weft_green_yield();
        if (weft_sem_release(&rg->s[next], 1) != 0)
            return 2;
    }
    return 0;
}

/* Several tokens circulate at once, so at any moment some nodes are
 * runnable on a worker's queue (taken directly or stolen by the other
 * worker) while the rest park and are woken from either worker. */
START_TEST(token_ring_with_stealing)
{
    enum { N = 64, TOKENS = 8 };
    static struct ring_arg args[N];
    static weft_sem sems[N];
    struct ring rg = {.n = N, .laps = 500 * test_scale(), .s = sems};
    weft_green *g[N];
    int r;

    ck_assert_rc(weft_runtime_start(2), 0);
    for (int i = 0; i < N; i++)
        ck_assert_rc(weft_sem_init(&sems[i], i % (N / TOKENS) == 0 ? 1 : 0),
                     0);
    for (int i = 0; i < N; i++) {
        args[i].ring = &rg;
        args[i].i = i;
        ck_assert_rc(weft_green_spawn(&g[i], ring_node, &args[i], NULL), 0);
    }
    for (int i = 0; i < N; i++) {
        ck_assert_rc(weft_green_join(g[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 0);
    }
    ck_assert_int_eq(atomic_load(&rg.hops), (long)N * rg.laps);
    /* Every token came back to where it started. */
    for (int i = 0; i < N; i++) {
        ck_assert_rc(weft_sem_acquire(&sems[i], WEFT_NOW),
                     i % (N / TOKENS) == 0 ? 0 : -ETIMEDOUT);
        ck_assert_rc(weft_sem_fini(&sems[i]), 0);
    }
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

/* ---- timed waits racing their wake-ups ------------------------------------ */

struct timed {
    weft_sem s;
    long n;
    _Atomic long got, timed_out, given;
};

/* Takers wait with short deadlines, so timers fire (through the
 * scheduler) while givers' wake-ups switch to them directly. */
static int timed_taker(void *p)
{
    struct timed *x = p;

    for (long i = 0; i < x->n; i++) {
        int rc = weft_sem_acquire(&x->s, weft_deadline_in(20000));
        if (rc == 0)
            atomic_fetch_add(&x->got, 1);
        else if (rc == -ETIMEDOUT)
            atomic_fetch_add(&x->timed_out, 1);
        else
            return 1;
    }
    return 0;
}

static int timed_giver(void *p)
{
    struct timed *x = p;

    for (long i = 0; i < x->n; i++) {
        if (weft_sem_release(&x->s, 1) != 0)
            return 1;
        atomic_fetch_add(&x->given, 1);
        weft_green_yield();
    }
    return 0;
}

START_TEST(timed_waits_race_wakeups)
{
    enum { T = 6, G = 3 };
    struct timed x = {.n = 2000 * test_scale()};
    weft_green *g[T + G];
    long left = 0;
    int r;

    ck_assert_rc(weft_sem_init(&x.s, 0), 0);
    ck_assert_rc(weft_runtime_start(2), 0);
    for (int i = 0; i < T + G; i++)
        ck_assert_rc(weft_green_spawn(&g[i], i < T ? timed_taker : timed_giver,
                                      &x, NULL), 0);
    for (int i = 0; i < T + G; i++) {
        ck_assert_rc(weft_green_join(g[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 0);
    }
    while (weft_sem_acquire(&x.s, WEFT_NOW) == 0)
        left++;
    ck_assert_int_eq(atomic_load(&x.got) + atomic_load(&x.timed_out),
                     (long)T * x.n);
    ck_assert_int_eq(atomic_load(&x.given), (long)G * x.n);
    ck_assert_int_eq(atomic_load(&x.got) + left, (long)G * x.n);
    ck_assert_rc(weft_sem_fini(&x.s), 0);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

/* ---- a hog, a spare, and direct switches ---------------------------------- */

static _Atomic int hog_stop;

static int hog(void *p)
{
    (void)p;
    int64_t end = weft_now() + MS(200);

    /* Holds its worker without yielding: the monitor sends a spare, which
     * steals the queue (ring and runnext) that the others switch through. */
    while (!atomic_load(&hog_stop) && weft_now() < end)
        ;
    return 0;
}

START_TEST(hog_and_spare_with_direct_switches)
{
    struct yielders y = {.n = 16, .k = 3000 * test_scale()};
    enum { P = 4 };
    static struct pair x[P];
    weft_green *g[16], *a[P], *b[P], *h;
    int r;

    ck_assert_rc(weft_runtime_set_switch_interval(MS(2)), 0);
    ck_assert_rc(weft_runtime_start(1), 0);
    for (int i = 0; i < P; i++) {
        memset(&x[i], 0, sizeof x[i]);
        x[i].n = 3000 * test_scale();
        ck_assert_rc(weft_queue_create(&x[i].ping, WEFT_QUEUE_FIFO, 1), 0);
        ck_assert_rc(weft_queue_create(&x[i].pong, WEFT_QUEUE_FIFO, 1), 0);
    }
    for (int i = 0; i < 16; i++)
        ck_assert_rc(weft_green_spawn(&g[i], yielder, &y, NULL), 0);
    for (int i = 0; i < P; i++) {
        ck_assert_rc(weft_green_spawn(&a[i], q_pinger, &x[i], NULL), 0);
        ck_assert_rc(weft_green_spawn(&b[i], q_ponger, &x[i], NULL), 0);
    }
    ck_assert_rc(weft_green_spawn(&h, hog, NULL, NULL), 0);
    for (int i = 0; i < 16; i++) {
        ck_assert_rc(weft_green_join(g[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 0);
    }
    for (int i = 0; i < P; i++) {
        ck_assert_rc(weft_green_join(a[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 0);
        ck_assert_rc(weft_green_join(b[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 0);
        ck_assert_int_eq(atomic_load(&x[i].seen), x[i].n);
        ck_assert_rc(weft_queue_destroy(x[i].ping, NULL), 0);
        ck_assert_rc(weft_queue_destroy(x[i].pong, NULL), 0);
    }
    atomic_store(&hog_stop, 1);
    ck_assert_rc(weft_green_join(h, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(atomic_load(&y.total), (long)y.n * y.k);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

/* Several hog episodes on a lone worker: each brings a spare, which steals
 * the ring through the steal gate while the yielders, between episodes,
 * pop it without a CAS in their direct switches (sched.c,
 * ring_pop_direct).  Exact counts; a slot popped twice or lost would show
 * as a wrong total, a crash or a hang. */
static int episodic_hog(void *p)
{
    (void)p;
    for (int e = 0; e < 25; e++) {
        int64_t end = weft_now() + MS(8);
        while (weft_now() < end)
            ;
        if (weft_green_yield() != 0)
            return -1;
    }
    return 0;
}

START_TEST(repeated_hogs_steal_a_lone_workers_ring)
{
    struct yielders y = {.n = 12, .k = 100000 * test_scale()};
    weft_green *g[12], *h;
    int r;

    ck_assert_rc(weft_runtime_set_switch_interval(MS(2)), 0);
    ck_assert_rc(weft_runtime_start(1), 0);
    for (int i = 0; i < y.n; i++)
        ck_assert_rc(weft_green_spawn(&g[i], yielder, &y, NULL), 0);
    ck_assert_rc(weft_green_spawn(&h, episodic_hog, NULL, NULL), 0);
    for (int i = 0; i < y.n; i++) {
        ck_assert_rc(weft_green_join(g[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 0);
    }
    ck_assert_rc(weft_green_join(h, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 0);
    ck_assert_int_eq(atomic_load(&y.total), (long)y.n * y.k);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

static void add(Suite *s, const char *name, const TTest *t)
{
    TCase *c = tcase_create(name);
    tcase_set_timeout(c, 120);
    tcase_add_test(c, t);
    suite_add_tcase(s, c);
}

/* One case per test, so CK_RUN_CASE can run one alone. */
static Suite *green_direct_suite(void)
{
    Suite *s = suite_create("green_direct");
    add(s, "yield_1w", yield_one_worker);
    add(s, "yield_2w", yield_two_workers);
    add(s, "yield_rr", yield_one_worker_round_robin);
    add(s, "queue_1w", queue_pingpong_one_worker);
    add(s, "queue_2w", queue_pingpong_two_workers);
    add(s, "event_2w", event_pingpong_two_workers);
    add(s, "ring", token_ring_with_stealing);
    add(s, "timed", timed_waits_race_wakeups);
    add(s, "hog", hog_and_spare_with_direct_switches);
    add(s, "hogs_ring", repeated_hogs_steal_a_lone_workers_ring);
    return s;
}

TEST_MAIN(green_direct_suite)
