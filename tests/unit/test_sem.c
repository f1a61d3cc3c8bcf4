/* test_sem.c - weft_sem: values, bounds, every error, deadlines, waking
 * exactly n waiters, hand-off against barging, cancellation. */
#include "support.h"

#include <sched.h>
#include <stdatomic.h>

#include "park/park.h"

START_TEST(negative_initial_value_is_einval)
{
    weft_sem s;
    ck_assert_rc(weft_sem_init(&s, -1), -EINVAL);
    ck_assert_rc(weft_sem_init_bounded(&s, -5), -EINVAL);
    ck_assert_rc(weft_sem_init(&s, 0), 0);
    ck_assert_int_eq(weft_sem_value(&s), 0);
    ck_assert_rc(weft_sem_init_bounded(&s, 3), 0);
    ck_assert_int_eq(weft_sem_value(&s), 3);
}
END_TEST

START_TEST(static_init_counts_down)
{
    static weft_sem s = WEFT_SEM_INIT(2);
    ck_assert_int_eq(weft_sem_value(&s), 2);
    ck_assert_rc(weft_sem_try(&s), 0);
    ck_assert_rc(weft_sem_acquire(&s, WEFT_NOW), 0);
    ck_assert_int_eq(weft_sem_value(&s), 0);
    ck_assert_rc(weft_sem_try(&s), -EAGAIN);
    ck_assert_rc(weft_sem_acquire(&s, WEFT_NOW), -ETIMEDOUT);
    ck_assert_int_eq(weft_sem_value(&s), 0);
    ck_assert_rc(weft_sem_release(&s, 1), 0);
    ck_assert_int_eq(weft_sem_value(&s), 1);
    ck_assert_rc(weft_sem_fini(&s), 0);
}
END_TEST

START_TEST(release_n_adds_n)
{
    weft_sem s = WEFT_SEM_INIT(0);
    ck_assert_rc(weft_sem_release(&s, 5), 0);
    ck_assert_int_eq(weft_sem_value(&s), 5);
    for (int i = 0; i < 5; i++)
        ck_assert_rc(weft_sem_acquire(&s, WEFT_FOREVER), 0);
    ck_assert_rc(weft_sem_try(&s), -EAGAIN);
}
END_TEST

START_TEST(release_below_one_is_einval)
{
    weft_sem s = WEFT_SEM_INIT(1);
    ck_assert_rc(weft_sem_release(&s, 0), -EINVAL);
    ck_assert_rc(weft_sem_release(&s, -3), -EINVAL);
    ck_assert_int_eq(weft_sem_value(&s), 1);
    weft_sem b = WEFT_BOUNDED_SEM_INIT(1);
    ck_assert_rc(weft_sem_release(&b, 0), -EINVAL);
    ck_assert_int_eq(weft_sem_value(&b), 1);
}
END_TEST

START_TEST(bounded_refuses_to_exceed_bound)
{
    weft_sem s;
    ck_assert_rc(weft_sem_init_bounded(&s, 2), 0);
    ck_assert_rc(weft_sem_release(&s, 1), -EOVERFLOW);
    ck_assert_int_eq(weft_sem_value(&s), 2);
    ck_assert_rc(weft_sem_acquire(&s, WEFT_FOREVER), 0);
    ck_assert_rc(weft_sem_acquire(&s, WEFT_FOREVER), 0);
    ck_assert_rc(weft_sem_release(&s, 3), -EOVERFLOW); /* nothing changed */
    ck_assert_int_eq(weft_sem_value(&s), 0);
    ck_assert_rc(weft_sem_release(&s, 2), 0);
    ck_assert_int_eq(weft_sem_value(&s), 2);
    ck_assert_rc(weft_sem_release(&s, 1), -EOVERFLOW);
}
END_TEST

START_TEST(bounded_zero_stays_bounded)
{
    weft_sem s = WEFT_BOUNDED_SEM_INIT(0);
    ck_assert_rc(weft_sem_release(&s, 1), -EOVERFLOW);
    ck_assert_int_eq(weft_sem_value(&s), 0);
    ck_assert_rc(weft_sem_try(&s), -EAGAIN);
}
END_TEST

START_TEST(unbounded_refuses_int64_overflow)
{
    weft_sem s = WEFT_SEM_INIT(INT64_MAX - 1);
    ck_assert_rc(weft_sem_release(&s, 2), -EOVERFLOW);
    ck_assert_int_eq(weft_sem_value(&s), INT64_MAX - 1);
    ck_assert_rc(weft_sem_release(&s, 1), 0);
    ck_assert_int_eq(weft_sem_value(&s), INT64_MAX);
}
END_TEST

static int acquire_50ms(void *p)
{
    int64_t t0 = weft_now();
    int rc = weft_sem_acquire(p, weft_deadline_in(MS(50)));
    ck_assert_elapsed(t0, MS(50), MS(2000));
    return rc;
}

START_TEST(acquire_times_out_at_deadline)
{
    weft_sem s = WEFT_SEM_INIT(0);
    ck_assert_rc(tt_join(tt_start(acquire_50ms, &s)), -ETIMEDOUT);
    ck_assert_int_eq(weft_sem_value(&s), 0);
    ck_assert_rc(weft_sem_fini(&s), 0); /* nothing left behind */
    ck_assert_rc(weft_sem_release(&s, 1), 0);
    ck_assert_rc(weft_sem_try(&s), 0);
}
END_TEST

struct sw {
    weft_sem s;
    atomic_int done;
    _Atomic(weft__waiter *) who;
};

static int wait_forever(void *p)
{
    struct sw *w = p;
    atomic_store(&w->who, weft__self());
    int rc = weft_sem_acquire(&w->s, WEFT_FOREVER);
    if (rc == 0)
        atomic_fetch_add(&w->done, 1);
    return rc;
}

/* Spin until the semaphore has at least one parked waiter. */
static void until_waiting(weft_sem *s)
{
    while (weft_sem_fini(s) != -EBUSY)
        sched_yield();
}

START_TEST(release_wakes_a_blocked_waiter)
{
    struct sw w = {.s = WEFT_SEM_INIT(0)};
    tt *t = tt_start(wait_forever, &w);
    until_waiting(&w.s);
    ck_assert_rc(weft_sem_fini(&w.s), -EBUSY);
    ck_assert_rc(weft_sem_release(&w.s, 1), 0);
    ck_assert_rc(tt_join(t), 0);
    ck_assert_int_eq(weft_sem_value(&w.s), 0); /* handed over, not kept */
    ck_assert_rc(weft_sem_fini(&w.s), 0);
}
END_TEST

START_TEST(release_n_wakes_exactly_n)
{
    struct sw w = {.s = WEFT_SEM_INIT(0)};
    tt *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = tt_start(wait_forever, &w);
    /* All three parked: nwait is private, read it the way fini does. */
    for (;;) {
        weft__waitq_lock(&w.s.wq);
        uint32_t n = w.s.wq.len;
        weft__waitq_unlock(&w.s.wq);
        if (n == 3)
            break;
        sched_yield();
    }
    ck_assert_rc(weft_sem_release(&w.s, 2), 0);
    while (atomic_load(&w.done) < 2)
        sched_yield();
    ck_assert_int_eq(weft_sem_value(&w.s), 0);
    ck_assert_rc(weft_sem_fini(&w.s), -EBUSY); /* the third still waits */
    ck_assert_int_eq(atomic_load(&w.done), 2);
    ck_assert_rc(weft_sem_release(&w.s, 3), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_rc(tt_join(t[i]), 0);
    ck_assert_int_eq(weft_sem_value(&w.s), 2);
}
END_TEST

START_TEST(bounded_release_hands_to_waiters_within_bound)
{
    struct sw w;
    ck_assert_rc(weft_sem_init_bounded(&w.s, 1), 0);
    atomic_init(&w.done, 0);
    ck_assert_rc(weft_sem_acquire(&w.s, WEFT_FOREVER), 0);
    tt *t = tt_start(wait_forever, &w);
    until_waiting(&w.s);
    ck_assert_rc(weft_sem_release(&w.s, 2), -EOVERFLOW);
    ck_assert_int_eq(atomic_load(&w.done), 0); /* nobody was woken */
    ck_assert_rc(weft_sem_release(&w.s, 1), 0);
    ck_assert_rc(tt_join(t), 0);
    ck_assert_int_eq(weft_sem_value(&w.s), 0);
}
END_TEST

START_TEST(cancelled_waiter_returns_ecanceled)
{
    struct sw w = {.s = WEFT_SEM_INIT(0)};
    tt *t = tt_start(wait_forever, &w);
    until_waiting(&w.s);
    weft__waiter_cancel(atomic_load(&w.who));
    ck_assert_rc(tt_join(t), -ECANCELED);
    ck_assert_int_eq(weft_sem_value(&w.s), 0);
    ck_assert_rc(weft_sem_fini(&w.s), 0);
    /* A permit released now is not lost to the departed waiter. */
    ck_assert_rc(weft_sem_release(&w.s, 1), 0);
    ck_assert_int_eq(weft_sem_value(&w.s), 1);
}
END_TEST

/* Concurrent releases of a bounded semaphore: exactly bound of them fit. */
static int release_one(void *p)
{
    return weft_sem_release(*(weft_sem **)p, 1) == 0 ? 0 : 1;
}

START_TEST(bounded_concurrent_releases_never_exceed_bound)
{
    for (int round = 0; round < 50; round++) {
        weft_sem s = WEFT_BOUNDED_SEM_INIT(4);
        for (int i = 0; i < 4; i++)
            ck_assert_rc(weft_sem_try(&s), 0);
        weft_sem *args[8];
        for (int i = 0; i < 8; i++)
            args[i] = &s;
        /* tt_run_n counts non-zero results: the refused releases. */
        ck_assert_int_eq(tt_run_n(8, release_one, args, sizeof args[0]), 4);
        ck_assert_int_eq(weft_sem_value(&s), 4);
    }
}
END_TEST

/* A hog takes and gives back the only permit in a tight loop; a waiter
 * that parks must still get it, by hand-off, quickly. */
struct hog {
    weft_sem s;
    atomic_int stop;
    atomic_long rounds;
};

static int hog(void *p)
{
    struct hog *h = p;
    while (!atomic_load(&h->stop)) {
        if (weft_sem_acquire(&h->s, WEFT_FOREVER))
            return -1;
        for (volatile int i = 0; i < 200; i++)
            ;
        atomic_fetch_add(&h->rounds, 1);
        if (weft_sem_release(&h->s, 1))
            return -1;
    }
    return 0;
}

START_TEST(parked_waiter_is_not_starved)
{
    struct hog h = {.s = WEFT_SEM_INIT(1)};
    tt *t = tt_start(hog, &h);
    while (atomic_load(&h.rounds) < 1000)
        sched_yield();
    for (int i = 0; i < 20; i++) {
        ck_assert_rc(weft_sem_acquire(&h.s, weft_deadline_in(MS(2000))), 0);
        ck_assert_rc(weft_sem_release(&h.s, 1), 0);
    }
    atomic_store(&h.stop, 1);
    ck_assert_rc(tt_join(t), 0);
    ck_assert_int_eq(weft_sem_value(&h.s), 1);
}
END_TEST

static Suite *sem_suite(void)
{
    Suite *s = suite_create("sem");
    TCase *c = tcase_create("sem");
    tcase_set_timeout(c, 20);
    tcase_add_test(c, negative_initial_value_is_einval);
    tcase_add_test(c, static_init_counts_down);
    tcase_add_test(c, release_n_adds_n);
    tcase_add_test(c, release_below_one_is_einval);
    tcase_add_test(c, bounded_refuses_to_exceed_bound);
    tcase_add_test(c, bounded_zero_stays_bounded);
    tcase_add_test(c, unbounded_refuses_int64_overflow);
    tcase_add_test(c, acquire_times_out_at_deadline);
    tcase_add_test(c, release_wakes_a_blocked_waiter);
    tcase_add_test(c, release_n_wakes_exactly_n);
    tcase_add_test(c, bounded_release_hands_to_waiters_within_bound);
    tcase_add_test(c, cancelled_waiter_returns_ecanceled);
    tcase_add_test(c, bounded_concurrent_releases_never_exceed_bound);
    tcase_add_test(c, parked_waiter_is_not_starved);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(sem_suite)
