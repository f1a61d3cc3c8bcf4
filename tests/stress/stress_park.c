/* stress_park.c - the park layer under load: the wait queue's guard (its
 * unlock is a plain store; a contender that sleeps counts itself in a table
 * shared by guards, waitq.c), and the wake-up paths that differ by kind of
 * waiter (a green waiter's WOKEN is stored, an OS waiter's exchanged,
 * park.c) with OS threads and green threads mixed on both sides of maxsize-1
 * queues, cancellation racing hand-overs, and deadlines.  Every count is
 * exact; a lost wake-up shows as a test that hangs until its timeout.  Sizes
 * scale with WEFT_TEST_SCALE. */
#include "support.h"

#include <stdatomic.h>
#include <string.h>

#include "green/green.h"
#include "park/park.h"

/* ---- the guard ------------------------------------------------------------ */

/* A few guards, each on its own 4 KiB: waitq.c hashes a guard's address in
 * 64-byte lines into 64 sleeper counters, so all of these share one
 * counter - the collision case, where an unlock sees another guard's
 * sleeper. */
struct guarded {
    weft__waitq wq;
    long count; /* plain: guarded by wq's guard */
    char pad[4096 - sizeof(weft__waitq) - sizeof(long)];
};

static struct guarded guards[2] __attribute__((aligned(4096)));

struct hammer {
    struct guarded *g;
    long k;        /* lock/unlock rounds */
    int hold_every; /* every this many rounds, hold the guard a while */
};

/* Busy for ns nanoseconds: holding the guard this long makes the other
 * threads exhaust their spin and sleep on it. */
static void busy(int64_t ns)
{
    int64_t end = weft_now() + ns;
    while (weft_now() < end)
        ;
}

static int hammer_fn(void *p)
{
    struct hammer *h = p;

    for (long i = 0; i < h->k; i++) {
        weft__waitq_lock(&h->g->wq);
        h->g->count++;
        if (h->hold_every > 0 && i % h->hold_every == 0)
            busy(20000);
        weft__waitq_unlock(&h->g->wq);
    }
    return 0;
}

static void hammer(int nguards, int per_guard, long k)
{
    struct hammer h[8];
    int n = nguards * per_guard;

    ck_assert_int_le(n, 8);
    for (int i = 0; i < nguards; i++) {
        guards[i].wq = (weft__waitq)WEFT__WAITQ_INIT;
        guards[i].count = 0;
    }
    for (int i = 0; i < n; i++)
        h[i] = (struct hammer){&guards[i % nguards], k, 500};
    ck_assert_int_eq(tt_run_n(n, hammer_fn, h, sizeof h[0]), 0);
    for (int i = 0; i < nguards; i++) {
        ck_assert_int_eq(guards[i].count, per_guard * k);
        ck_assert_uint_eq(atomic_load(&guards[i].wq.guard), 0);
    }
}

START_TEST(guard_hammer_counts_exactly)
{
    hammer(1, 4, 100000 * test_scale());
}
END_TEST

START_TEST(guards_sharing_a_sleeper_counter_lose_no_wakeup)
{
    hammer(2, 3, 60000 * test_scale());
}
END_TEST

/* One thread holds the guard well past the others' spin; the contender
 * must be woken by the plain-store unlock every time. */
struct sleeper {
    weft__waitq wq;
    _Atomic long round;   /* the holder's round, announced */
    _Atomic long trying;  /* the contender is about to lock in this round */
    _Atomic long got;     /* the contender took the guard in this round */
    long rounds;
};

static int sleeper_fn(void *p)
{
    struct sleeper *s = p;

    for (long r = 1; r <= s->rounds; r++) {
        while (atomic_load(&s->round) < r)
            ;
        atomic_store(&s->trying, r);
        weft__waitq_lock(&s->wq);
        atomic_store(&s->got, r);
        weft__waitq_unlock(&s->wq);
    }
    return 0;
}

START_TEST(guard_sleeper_is_woken_by_unlock)
{
    static struct sleeper s;
    s.wq = (weft__waitq)WEFT__WAITQ_INIT;
    s.rounds = 200 * test_scale();
    tt *t = tt_start(sleeper_fn, &s);

    for (long r = 1; r <= s.rounds; r++) {
        weft__waitq_lock(&s.wq);
        atomic_store(&s.round, r);
        while (atomic_load(&s.trying) < r)
            ;
        busy(300000); /* well past the spin: it most likely sleeps */
        weft__waitq_unlock(&s.wq);
        while (atomic_load(&s.got) < r) /* hangs if the wake-up was lost */
            ;
    }
    ck_assert_int_eq(tt_join(t), 0);
}
END_TEST

/* ---- mixed ping-pong through maxsize-1 queues ----------------------------- */

struct pair {
    weft_queue *ping, *pong;
    long n;
    _Atomic long seen;
};

static int pinger(void *p)
{
    struct pair *x = p;
    void *item;

    for (long i = 1; i <= x->n; i++) {
        if (weft_queue_put(x->ping, (void *)i, WEFT_FOREVER) != 0)
            return -1;
        if (weft_queue_get(x->pong, &item, WEFT_FOREVER) != 0)
            return -2;
        if (item != (void *)(i + 1))
            return -3;
        atomic_fetch_add(&x->seen, 1);
    }
    return 0;
}

static int ponger(void *p)
{
    struct pair *x = p;
    void *item;

    for (long i = 1; i <= x->n; i++) {
        if (weft_queue_get(x->ping, &item, WEFT_FOREVER) != 0)
            return -1;
        if (item != (void *)i)
            return -2;
        if (weft_queue_put(x->pong, (void *)(i + 1), WEFT_FOREVER) != 0)
            return -3;
    }
    return 0;
}

static void pair_init(struct pair *x, long n)
{
    memset(x, 0, sizeof *x);
    x->n = n;
    ck_assert_rc(weft_queue_create(&x->ping, WEFT_QUEUE_FIFO, 1), 0);
    ck_assert_rc(weft_queue_create(&x->pong, WEFT_QUEUE_FIFO, 1), 0);
}

static void pair_fini(struct pair *x)
{
    ck_assert_int_eq(atomic_load(&x->seen), x->n);
    ck_assert_rc(weft_queue_destroy(x->ping, NULL), 0);
    ck_assert_rc(weft_queue_destroy(x->pong, NULL), 0);
}

/* Pairs green-green, green-OS and OS-green at once: a green waiter woken by
 * an OS thread (the stored WOKEN and a push from outside the workers), an
 * OS waiter woken by a green thread (the exchange and a futex wake), and
 * green threads waking each other on the same worker. */
static void mixed_pingpong(int workers)
{
    enum { P = 3 };
    static struct pair x[P];
    weft_green *a, *b, *c, *d;
    tt *os1, *os2;
    int r;
    long n = 20000 * test_scale();

    ck_assert_rc(weft_runtime_start(workers), 0);
    for (int i = 0; i < P; i++)
        pair_init(&x[i], n);
    ck_assert_rc(weft_green_spawn(&a, pinger, &x[0], NULL), 0);
    ck_assert_rc(weft_green_spawn(&b, ponger, &x[0], NULL), 0);
    ck_assert_rc(weft_green_spawn(&c, pinger, &x[1], NULL), 0);
    os1 = tt_start(ponger, &x[1]);
    os2 = tt_start(pinger, &x[2]);
    ck_assert_rc(weft_green_spawn(&d, ponger, &x[2], NULL), 0);
    weft_green *g[4] = {a, b, c, d};
    for (int i = 0; i < 4; i++) {
        ck_assert_rc(weft_green_join(g[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 0);
    }
    ck_assert_int_eq(tt_join(os1), 0);
    ck_assert_int_eq(tt_join(os2), 0);
    for (int i = 0; i < P; i++)
        pair_fini(&x[i]);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}

START_TEST(mixed_pingpong_one_worker)
{
    mixed_pingpong(1);
}
END_TEST

START_TEST(mixed_pingpong_two_workers)
{
    mixed_pingpong(2);
}
END_TEST

/* ---- cancellation racing a hand-over --------------------------------------- */

/* A green getter parks on an empty queue; an OS thread puts one item while
 * another cancels the getter.  Either the getter has the item, or it saw
 * -ECANCELED and the item is still in the queue: never both, never
 * neither, and the getter always returns. */
struct cancel_race {
    weft_queue *q;
    _Atomic(weft_green *) who;
    _Atomic long round;      /* the getter's round, announced */
    _Atomic long ready;      /* the getter is about to get in this round */
    _Atomic long done;       /* the getter returned in this round */
    _Atomic int rc;
    long rounds;
};

static int cancel_getter(void *p)
{
    struct cancel_race *c = p;
    void *item;

    for (long r = 1; r <= c->rounds; r++) {
        while (atomic_load(&c->round) < r)
            weft_green_yield();
        atomic_store(&c->ready, r);
        int rc = weft_queue_get(c->q, &item, WEFT_FOREVER);
        if (rc == 0 && item != (void *)r)
            rc = -1000;
        atomic_store(&c->rc, rc);
        atomic_store(&c->done, r);
    }
    return 0;
}

static int cancel_putter(void *p)
{
    struct cancel_race *c = p;

    for (long r = 1; r <= c->rounds; r++) {
        while (atomic_load(&c->ready) < r)
            ;
        if (weft_queue_put(c->q, (void *)r, WEFT_FOREVER) != 0)
            return -1;
        while (atomic_load(&c->done) < r)
            ;
    }
    return 0;
}

START_TEST(cancel_racing_handover_to_green_getter)
{
    static struct cancel_race c;
    weft_green *g;
    void *item;
    long got = 0, cancelled = 0;

    memset(&c, 0, sizeof c);
    c.rounds = 2000 * test_scale();
    ck_assert_rc(weft_runtime_start(1), 0);
    ck_assert_rc(weft_queue_create(&c.q, WEFT_QUEUE_FIFO, 1), 0);
    ck_assert_rc(weft_green_spawn(&g, cancel_getter, &c, NULL), 0);
    tt *putter = tt_start(cancel_putter, &c);
    for (long r = 1; r <= c.rounds; r++) {
        atomic_store(&c.round, r);
        while (atomic_load(&c.ready) < r)
            ;
        ck_assert_rc(weft_green_cancel(g), 0);
        while (atomic_load(&c.done) < r)
            ;
        int rc = atomic_load(&c.rc);
        if (rc == 0) {
            got++;
            /* A late cancellation: the getter is still cancelled. */
        } else {
            ck_assert_rc(rc, -ECANCELED);
            cancelled++;
        }
        /* The item is in the queue exactly when the getter did not take
         * it; the putter may still be on its way with it. */
        if (rc != 0)
            ck_assert_rc(weft_queue_get(c.q, &item, weft_deadline_in(
                                                        MS(10000))),
                         0);
        ck_assert_rc(weft_queue_get_nowait(c.q, &item), -EAGAIN);
        /* Clear the cancellation for the next round (the getter is
         * between rounds, spinning on round). */
        weft__waiter_uncancel(&g->waiter);
    }
    ck_assert_int_eq(tt_join(putter), 0);
    ck_assert_rc(weft_green_join(g, NULL, WEFT_FOREVER), 0);
    ck_assert_int_eq(got + cancelled, c.rounds);
    ck_assert_rc(weft_queue_destroy(c.q, NULL), 0);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

/* ---- deadlines ---------------------------------------------------------------- */

/* Green getters with deadlines on an empty queue, beside an OS getter on
 * the same queue: each times out, not early; then a put reaches a timed
 * green getter before its deadline. */
struct timed {
    weft_queue *q;
    int64_t wait;
    int rc;
    int64_t took;
};

static int timed_get(void *p)
{
    struct timed *t = p;
    void *item;
    int64_t t0 = weft_now();

    t->rc = weft_queue_get(t->q, &item, weft_deadline_in(t->wait));
    t->took = weft_now() - t0;
    if (t->rc == 0 && item != (void *)7)
        t->rc = -1000;
    return 0;
}

START_TEST(deadlines_delivered_to_green_and_os_getters)
{
    weft_queue *q;
    weft_green *g[4];
    struct timed t[5];

    ck_assert_rc(weft_runtime_start(2), 0);
    ck_assert_rc(weft_queue_create(&q, WEFT_QUEUE_FIFO, 1), 0);
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 5; i++)
            t[i] = (struct timed){q, MS(10 + 5 * i), 1, 0};
        for (int i = 0; i < 4; i++)
            ck_assert_rc(weft_green_spawn(&g[i], timed_get, &t[i], NULL), 0);
        tt *os = tt_start(timed_get, &t[4]);
        for (int i = 0; i < 4; i++)
            ck_assert_rc(weft_green_join(g[i], NULL, WEFT_FOREVER), 0);
        ck_assert_int_eq(tt_join(os), 0);
        for (int i = 0; i < 5; i++) {
            ck_assert_rc(t[i].rc, -ETIMEDOUT);
            ck_assert_msg(t[i].took >= t[i].wait, "getter %d after %lld ns",
                          i, (long long)t[i].took);
            ck_assert_msg(t[i].took <= t[i].wait + MS(2000) * test_slow(),
                          "getter %d after %lld ns", i, (long long)t[i].took);
        }
    }
    /* Woken before the deadline: the item, not a timeout. */
    t[0] = (struct timed){q, MS(10000), 1, 0};
    ck_assert_rc(weft_green_spawn(&g[0], timed_get, &t[0], NULL), 0);
    ck_assert_rc(weft_queue_put(q, (void *)7, WEFT_FOREVER), 0);
    ck_assert_rc(weft_green_join(g[0], NULL, WEFT_FOREVER), 0);
    ck_assert_rc(t[0].rc, 0);
    ck_assert_int_lt(t[0].took, MS(10000));
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

/* ---- a stale token racing a real wake-up ------------------------------------ */

/* A waker that claimed a green thread's earlier wait may reach its unblock
 * late, when the thread has seen WOKEN and gone on: it leaves a token
 * (NOTIFIED) that the thread's next block consumes.  The waker of that
 * next wait then finds NOTIFIED and leaves the wake-up to the thread,
 * which must still see the WOKEN stored by that waker (park_green.c: a
 * fence on the waker's side, a re-read after the park's commit).  Here
 * each green thread leaves itself such a token (weft__green_wake on a
 * running thread is what the late waker does) before every wait, while an
 * OS thread wakes it; a lost wake-up hangs the test until its timeout. */
struct stale {
    weft_sem go, back;
    long rounds;
};

static int stale_green(void *p)
{
    struct stale *x = p;

    for (long r = 0; r < x->rounds; r++) {
        weft__green_wake(weft_green_current()); /* the late waker's token */
        if (weft_sem_acquire(&x->go, WEFT_FOREVER) != 0 ||
            weft_sem_release(&x->back, 1) != 0)
            return -1;
    }
    return 0;
}

static int stale_os(void *p)
{
    struct stale *x = p;

    for (long r = 0; r < x->rounds; r++)
        if (weft_sem_release(&x->go, 1) != 0 ||
            weft_sem_acquire(&x->back, WEFT_FOREVER) != 0)
            return -1;
    return 0;
}

START_TEST(stale_token_racing_a_real_wakeup)
{
    enum { P = 2 };
    static struct stale x[P];
    weft_green *g[P];
    tt *t[P];
    int r;

    ck_assert_rc(weft_runtime_start(2), 0);
    for (int i = 0; i < P; i++) {
        x[i].rounds = 100000 * test_scale();
        ck_assert_rc(weft_sem_init(&x[i].go, 0), 0);
        ck_assert_rc(weft_sem_init(&x[i].back, 0), 0);
        ck_assert_rc(weft_green_spawn(&g[i], stale_green, &x[i], NULL), 0);
        t[i] = tt_start(stale_os, &x[i]);
    }
    for (int i = 0; i < P; i++) {
        ck_assert_rc(weft_green_join(g[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 0);
        ck_assert_int_eq(tt_join(t[i]), 0);
        ck_assert_rc(weft_sem_fini(&x[i].go), 0);
        ck_assert_rc(weft_sem_fini(&x[i].back), 0);
    }
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
static Suite *park_stress_suite(void)
{
    Suite *s = suite_create("park_stress");
    add(s, "guard_hammer", guard_hammer_counts_exactly);
    add(s, "guard_shared_counter",
        guards_sharing_a_sleeper_counter_lose_no_wakeup);
    add(s, "guard_sleeper", guard_sleeper_is_woken_by_unlock);
    add(s, "mixed_one", mixed_pingpong_one_worker);
    add(s, "mixed_two", mixed_pingpong_two_workers);
    add(s, "cancel_race", cancel_racing_handover_to_green_getter);
    add(s, "deadlines", deadlines_delivered_to_green_and_os_getters);
    add(s, "stale_token", stale_token_racing_a_real_wakeup);
    return s;
}

TEST_MAIN(park_stress_suite)
