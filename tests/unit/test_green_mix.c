/* test_green_mix.c - OS threads and green threads mixed on every primitive:
 * lock, rlock, cond, sem, event, barrier, once, rwlock and queue, each with
 * both kinds contending at once and exact counts; a green thread waiting on
 * an event an OS thread sets; an OS thread joining a green thread; both
 * sides of a queue.  Nothing in src/sync or src/queue knows green threads
 * exist: this is the test that the park backend is all they need. */
#include "support.h"

#include <stdatomic.h>

#define NOS 3
#define NGREEN 6

/* Run fn(arg) on NOS OS threads and NGREEN green threads at once; returns
 * how many returned non-zero. */
static int run_mixed(int (*fn)(void *), void *arg)
{
    tt *t[NOS];
    weft_green *g[NGREEN];
    int bad = 0, r;

    for (int i = 0; i < NGREEN; i++)
        ck_assert_rc(weft_green_spawn(&g[i], fn, arg, NULL), 0);
    for (int i = 0; i < NOS; i++)
        t[i] = tt_start(fn, arg);
    for (int i = 0; i < NOS; i++)
        bad += tt_join(t[i]) != 0;
    for (int i = 0; i < NGREEN; i++) {
        ck_assert_rc(weft_green_join(g[i], &r, WEFT_FOREVER), 0);
        bad += r != 0;
    }
    return bad;
}

static long iters(void)
{
    return 2000 * test_scale();
}

/* ---- lock / rlock ------------------------------------------------------ */

struct counted {
    weft_lock l;
    weft_rlock rl;
    long n;
};

static int lock_body(void *p)
{
    struct counted *c = p;
    for (long i = 0; i < iters(); i++) {
        if (weft_lock_acquire(&c->l, WEFT_FOREVER) != 0)
            return 1;
        c->n++;
        if (i % 16 == 0 && weft_green_current())
            weft_green_yield(); /* hold it across a switch */
        weft_lock_release(&c->l);
    }
    return 0;
}

START_TEST(lock_mixed)
{
    struct counted c = {.l = WEFT_LOCK_INIT};
    ck_assert_int_eq(run_mixed(lock_body, &c), 0);
    ck_assert_int_eq(c.n, (NOS + NGREEN) * iters());
}
END_TEST

static int rlock_body(void *p)
{
    struct counted *c = p;
    for (long i = 0; i < iters(); i++) {
        if (weft_rlock_acquire(&c->rl, WEFT_FOREVER) != 0 ||
            weft_rlock_acquire(&c->rl, WEFT_FOREVER) != 0)
            return 1;
        c->n++;
        if (i % 16 == 0 && weft_green_current())
            weft_green_yield();
        weft_rlock_release(&c->rl);
        weft_rlock_release(&c->rl);
    }
    return 0;
}

START_TEST(rlock_mixed)
{
    struct counted c = {.rl = WEFT_RLOCK_INIT};
    ck_assert_int_eq(run_mixed(rlock_body, &c), 0);
    ck_assert_int_eq(c.n, (NOS + NGREEN) * iters());
}
END_TEST

/* ---- cond: a ticket hand-off between all threads ------------------------ */

struct ticket {
    weft_lock l;
    weft_cond c;
    long turn;    /* whose turn: turn % parties */
    long done;
};

struct tk_arg {
    struct ticket *t;
    int me, parties;
};

static int cond_body(void *p)
{
    struct tk_arg *a = p;
    struct ticket *t = a->t;
    long rounds = 50 * test_scale();
    for (long i = 0; i < rounds; i++) {
        weft_lock_acquire(&t->l, WEFT_FOREVER);
        while (t->turn % a->parties != a->me)
            if (weft_cond_wait(&t->c, WEFT_FOREVER) != 0)
                return 1;
        t->turn++;
        t->done++;
        weft_cond_notify_all(&t->c);
        weft_lock_release(&t->l);
    }
    return 0;
}

START_TEST(cond_mixed)
{
    struct ticket t = {.l = WEFT_LOCK_INIT};
    struct tk_arg a[4];
    tt *os[2];
    weft_green *g[2];
    int r;
    weft_cond_init(&t.c, &t.l);
    for (int i = 0; i < 4; i++)
        a[i] = (struct tk_arg){&t, i, 4};
    /* parties 0 and 2 are OS threads, 1 and 3 green: strict alternation */
    ck_assert_rc(weft_green_spawn(&g[0], cond_body, &a[1], NULL), 0);
    ck_assert_rc(weft_green_spawn(&g[1], cond_body, &a[3], NULL), 0);
    os[0] = tt_start(cond_body, &a[0]);
    os[1] = tt_start(cond_body, &a[2]);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(tt_join(os[i]), 0);
        ck_assert_rc(weft_green_join(g[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 0);
    }
    ck_assert_int_eq(t.done, 4 * 50 * test_scale());
}
END_TEST

/* ---- semaphore ----------------------------------------------------------- */

struct semx {
    weft_sem s;
    _Atomic int inside, max;
};

static int sem_body(void *p)
{
    struct semx *x = p;
    for (long i = 0; i < iters() / 4; i++) {
        if (weft_sem_acquire(&x->s, WEFT_FOREVER) != 0)
            return 1;
        int in = atomic_fetch_add(&x->inside, 1) + 1;
        int m = atomic_load(&x->max);
        while (in > m && !atomic_compare_exchange_weak(&x->max, &m, in))
            ;
        if (weft_green_current())
            weft_green_yield();
        atomic_fetch_sub(&x->inside, 1);
        weft_sem_release(&x->s, 1);
    }
    return 0;
}

START_TEST(sem_mixed)
{
    struct semx x = {.s = WEFT_BOUNDED_SEM_INIT(2)};
    ck_assert_int_eq(run_mixed(sem_body, &x), 0);
    ck_assert_int_le(x.max, 2);
    ck_assert_int_eq(weft_sem_value(&x.s), 2);
}
END_TEST

/* ---- event: green waits, OS sets; OS waits, green sets ------------------ */

static int ev_wait(void *p)
{
    return weft_event_wait(p, weft_deadline_in(MS(10000)));
}

static int ev_set(void *p)
{
    weft_event_set(p);
    return 0;
}

START_TEST(event_mixed)
{
    weft_event e = WEFT_EVENT_INIT, f = WEFT_EVENT_INIT;
    weft_green *g[4];
    int r;
    for (int i = 0; i < 4; i++)
        ck_assert_rc(weft_green_spawn(&g[i], ev_wait, &e, NULL), 0);
    tt *os = tt_start(ev_wait, &f);
    weft_event_set(&e); /* an OS thread wakes green threads */
    for (int i = 0; i < 4; i++) {
        ck_assert_rc(weft_green_join(g[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 0);
    }
    ck_assert_rc(weft_green_spawn(&g[0], ev_set, &f, NULL), 0);
    ck_assert_int_eq(tt_join(os), 0); /* a green thread wakes an OS one */
    ck_assert_rc(weft_green_join(g[0], &r, WEFT_FOREVER), 0);
}
END_TEST

/* ---- barrier --------------------------------------------------------------- */

static int barrier_body(void *p)
{
    for (int i = 0; i < 20; i++) {
        int rc = weft_barrier_wait(p, weft_deadline_in(MS(20000)));
        if (rc < 0)
            return 1;
    }
    return 0;
}

START_TEST(barrier_mixed)
{
    weft_barrier *b;
    ck_assert_rc(weft_barrier_create(&b, NOS + NGREEN, NULL, NULL), 0);
    ck_assert_int_eq(run_mixed(barrier_body, b), 0);
    ck_assert_rc(weft_barrier_destroy(b), 0);
}
END_TEST

/* ---- once ------------------------------------------------------------------ */

static _Atomic int once_runs;
static weft_once once = WEFT_ONCE_INIT;

static int once_fn(void *p)
{
    (void)p;
    if (weft_green_current())
        weft_green_yield(); /* others arrive and wait meanwhile */
    atomic_fetch_add(&once_runs, 1);
    return 0;
}

static int once_body(void *p)
{
    (void)p;
    if (weft_once_call(&once, once_fn, NULL) != 0)
        return 1;
    return atomic_load(&once_runs) == 1 ? 0 : 2;
}

START_TEST(once_mixed)
{
    ck_assert_int_eq(run_mixed(once_body, NULL), 0);
    ck_assert_int_eq(once_runs, 1);
}
END_TEST

/* ---- rwlock ---------------------------------------------------------------- */

struct rwx {
    weft_rwlock *rw;
    long value;
    _Atomic int readers, writers;
};

static int rw_body(void *p)
{
    struct rwx *x = p;
    for (long i = 0; i < iters() / 4; i++) {
        if (i % 4 == 0) {
            if (weft_rwlock_write_acquire(x->rw, WEFT_FOREVER) != 0)
                return 1;
            if (atomic_fetch_add(&x->writers, 1) != 0 ||
                atomic_load(&x->readers) != 0)
                return 2;
            x->value++;
            if (weft_green_current())
                weft_green_yield();
            atomic_fetch_sub(&x->writers, 1);
            weft_rwlock_write_release(x->rw);
        } else {
            if (weft_rwlock_read_acquire(x->rw, WEFT_FOREVER) != 0)
                return 3;
            atomic_fetch_add(&x->readers, 1);
            if (atomic_load(&x->writers) != 0)
                return 4;
            if (weft_green_current())
                weft_green_yield();
            atomic_fetch_sub(&x->readers, 1);
            weft_rwlock_read_release(x->rw);
        }
    }
    return 0;
}

START_TEST(rwlock_mixed)
{
    struct rwx x = {0};
    ck_assert_rc(weft_rwlock_create(&x.rw), 0);
    ck_assert_int_eq(run_mixed(rw_body, &x), 0);
    long per = (iters() / 4 + 3) / 4;
    ck_assert_int_eq(x.value, (NOS + NGREEN) * per);
    ck_assert_rc(weft_rwlock_destroy(x.rw), 0);
}
END_TEST

/* ---- queue: both sides of one bounded queue are mixed ------------------- */

struct qx {
    weft_queue *q;
    _Atomic long got_sum, got_n;
    _Atomic int who; /* producers take ids */
};

static int q_producer(void *p)
{
    struct qx *x = p;
    long n = iters();
    for (long i = 1; i <= n; i++)
        if (weft_queue_put(x->q, (void *)(intptr_t)i, WEFT_FOREVER) != 0)
            return 1;
    return 0;
}

static int q_consumer(void *p)
{
    struct qx *x = p;
    void *item;
    for (;;) {
        int rc = weft_queue_get(x->q, &item, WEFT_FOREVER);
        if (rc == -EPIPE)
            return 0;
        if (rc != 0)
            return 1;
        atomic_fetch_add(&x->got_sum, (long)(intptr_t)item);
        atomic_fetch_add(&x->got_n, 1);
    }
}

START_TEST(queue_both_sides_mixed)
{
    struct qx x = {0};
    weft_green *gp[2], *gc[2];
    tt *op[2], *oc[2];
    int r;
    ck_assert_rc(weft_queue_create(&x.q, WEFT_QUEUE_FIFO, 8), 0);
    for (int i = 0; i < 2; i++) {
        ck_assert_rc(weft_green_spawn(&gc[i], q_consumer, &x, NULL), 0);
        oc[i] = tt_start(q_consumer, &x);
        ck_assert_rc(weft_green_spawn(&gp[i], q_producer, &x, NULL), 0);
        op[i] = tt_start(q_producer, &x);
    }
    for (int i = 0; i < 2; i++) {
        ck_assert_rc(weft_green_join(gp[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 0);
        ck_assert_int_eq(tt_join(op[i]), 0);
    }
    weft_queue_shutdown(x.q, false);
    for (int i = 0; i < 2; i++) {
        ck_assert_rc(weft_green_join(gc[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 0);
        ck_assert_int_eq(tt_join(oc[i]), 0);
    }
    long n = iters();
    ck_assert_int_eq(x.got_n, 4 * n);
    ck_assert_int_eq(x.got_sum, 4 * n * (n + 1) / 2);
    ck_assert_rc(weft_queue_destroy(x.q, NULL), 0);
}
END_TEST

/* ---- an OS thread joins a green thread ------------------------------------- */

static int slow_green(void *p)
{
    weft_sleep_until(weft_deadline_in(MS(20)));
    return (int)(intptr_t)p;
}

static int os_joiner(void *p)
{
    int r = -1;
    int rc = weft_green_join(p, &r, weft_deadline_in(MS(10000)));
    return rc != 0 ? rc : r;
}

START_TEST(os_thread_joins_green_thread)
{
    weft_green *g;
    ck_assert_rc(weft_green_spawn(&g, slow_green, (void *)9, NULL), 0);
    tt *t = tt_start(os_joiner, g);
    ck_assert_int_eq(tt_join(t), 9);
}
END_TEST

static void setup(void)
{
    ck_assert_rc(weft_runtime_start(2), 0);
}

static Suite *green_mix_suite(void)
{
    Suite *s = suite_create("green_mix");
    TCase *c = tcase_create("mix");
    tcase_set_timeout(c, 60);
    tcase_add_checked_fixture(c, setup, NULL);
    tcase_add_test(c, lock_mixed);
    tcase_add_test(c, rlock_mixed);
    tcase_add_test(c, cond_mixed);
    tcase_add_test(c, sem_mixed);
    tcase_add_test(c, event_mixed);
    tcase_add_test(c, barrier_mixed);
    tcase_add_test(c, once_mixed);
    tcase_add_test(c, rwlock_mixed);
    tcase_add_test(c, queue_both_sides_mixed);
    tcase_add_test(c, os_thread_joins_green_thread);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(green_mix_suite)
