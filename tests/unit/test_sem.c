/* test_sem.c - weft_sem: values, bounds, every error, deadlines, waking
 * exactly n waiters, hand-off against barging, cancellation, and freeing a
 * semaphore while its releaser is still returning. */
#include "support.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

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

START_TEST(unbounded_refuses_to_exceed_value_max)
{
    weft_sem s = WEFT_SEM_INIT(WEFT_SEM_VALUE_MAX - 1);
    ck_assert_rc(weft_sem_release(&s, 2), -EOVERFLOW);
    ck_assert_rc(weft_sem_release(&s, INT64_MAX), -EOVERFLOW);
    ck_assert_int_eq(weft_sem_value(&s), WEFT_SEM_VALUE_MAX - 1);
    ck_assert_rc(weft_sem_release(&s, 1), 0);
    ck_assert_int_eq(weft_sem_value(&s), WEFT_SEM_VALUE_MAX);
    ck_assert_rc(weft_sem_release(&s, 1), -EOVERFLOW);
    ck_assert_rc(weft_sem_try(&s), 0);
    ck_assert_int_eq(weft_sem_value(&s), WEFT_SEM_VALUE_MAX - 1);
    ck_assert_rc(weft_sem_fini(&s), 0);
}
END_TEST

START_TEST(initial_value_above_max_is_einval)
{
    weft_sem s;
    ck_assert_rc(weft_sem_init(&s, WEFT_SEM_VALUE_MAX + 1), -EINVAL);
    ck_assert_rc(weft_sem_init(&s, INT64_MAX), -EINVAL);
    ck_assert_rc(weft_sem_init_bounded(&s, WEFT_SEM_VALUE_MAX + 1), -EINVAL);
    ck_assert_rc(weft_sem_init_bounded(&s, WEFT_SEM_VALUE_MAX), 0);
    ck_assert_int_eq(weft_sem_value(&s), WEFT_SEM_VALUE_MAX);
    ck_assert_rc(weft_sem_release(&s, 1), -EOVERFLOW);
    ck_assert_rc(weft_sem_init(&s, WEFT_SEM_VALUE_MAX), 0);
    ck_assert_int_eq(weft_sem_value(&s), WEFT_SEM_VALUE_MAX);
}
END_TEST

/* White box: the waiter part of the state word is full, so one more waiter
 * cannot be counted and is refused rather than parked uncounted. */
START_TEST(waiter_count_full_is_enomem)
{
    weft_sem s = WEFT_SEM_INIT(0);
    uint64_t full = UINT64_MAX >> WEFT_SEM_PERMIT_BITS;
    atomic_store(&s.state, full << WEFT_SEM_PERMIT_BITS);
    ck_assert_rc(weft_sem_acquire(&s, weft_deadline_in(MS(10))), -ENOMEM);
    ck_assert_rc(weft_sem_acquire(&s, WEFT_NOW), -ETIMEDOUT);
    ck_assert_uint_eq(atomic_load(&s.state), full << WEFT_SEM_PERMIT_BITS);
    ck_assert_rc(weft_sem_fini(&s), -EBUSY); /* counted waiters */
    atomic_store(&s.state, 0);
    ck_assert_rc(weft_sem_fini(&s), 0);
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
    /* All three parked: read the private queue length under its guard. */
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

/* Regression: a semaphore may be freed as soon as its last acquire has
 * returned and fini has said 0, even though the thread whose release let
 * that acquire through may still be inside weft_sem_release (think of a
 * completion semaphore on the waiting thread's stack).  Each round the
 * owner allocates a fresh semaphore, hands it to the releaser, takes the
 * permit, finis, poisons and frees the semaphore; under SAN=address any
 * touch of the semaphore by release after its permit was published is
 * reported as heap-use-after-free.
 *
 * Two ways of opening the releaser's window wide enough to be seen:
 *   - in parallel, with a random delay on each side, so that the release
 *     sweeps across the owner's fast and slow acquire paths;
 *   - the releaser pinned to one CPU at SCHED_IDLE, next to a "preempter"
 *     that sleeps a few tens of microseconds and spins a few: each time it
 *     wakes it preempts the releaser at once, at a random point of its
 *     loop, and keeps it off the CPU while the owner (on another CPU, if
 *     there is one) spins on try, finis and frees.  The sleeps are a source
 *     of preemption points, not synchronisation: every interleaving is
 *     correct, only the chance of meeting the bug depends on them.  Run
 *     only with two CPUs or more, so that the owner never has to wait for
 *     the idle-priority releaser to get its CPU back.
 * Neither way made the old code (which read a separate waiter count after
 * its CAS) fail within seconds on a two-CPU machine: its window was a few
 * instructions wide.  The test states the contract; it catches a
 * regression only with luck, or a wider window than that one. */
struct uaf {
    _Atomic(weft_sem *) slot;
    atomic_int stop;
    bool pinned;
    cpu_set_t cpu; /* the releaser's and the preempter's */
};

static void jitter(unsigned *seed)
{
    for (volatile int i = rand_r(seed) % 64; i > 0; i--)
        ;
}

static int uaf_releaser(void *p)
{
    struct uaf *u = p;
    unsigned seed = 12345;
    if (u->pinned) {
        struct sched_param sp = {0};
        if (sched_setaffinity(0, sizeof u->cpu, &u->cpu) != 0 ||
            sched_setscheduler(0, SCHED_IDLE, &sp) != 0)
            return 2;
    }
    for (;;) {
        weft_sem *s;
        while (atomic_load_explicit(&u->slot, memory_order_relaxed) == NULL)
            if (atomic_load(&u->stop))
                return 0;
        s = atomic_exchange(&u->slot, NULL);
        if (!u->pinned)
            jitter(&seed);
        if (weft_sem_release(s, 1) != 0)
            return 1;
    }
}

static int uaf_preempter(void *p)
{
    struct uaf *u = p;
    unsigned seed = 4242;
    if (sched_setaffinity(0, sizeof u->cpu, &u->cpu) != 0)
        return 2;
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    while (!atomic_load(&u->stop)) {
        struct timespec ts = {0, 20000 + rand_r(&seed) % 40000};
        nanosleep(&ts, NULL);
        for (volatile int i = rand_r(&seed) % 4000; i > 0; i--)
            ;
    }
    return 0;
}

static void run_uaf(bool pinned, long rounds)
{
    struct uaf u = {.pinned = pinned};
    unsigned seed = 777;
    cpu_set_t all;
    tt *pre = NULL;
    ck_assert_int_eq(sched_getaffinity(0, sizeof all, &all), 0);
    if (pinned && CPU_COUNT(&all) < 2)
        return;
    if (pinned) {
        /* The releaser and preempter on the last CPU we may use; the
         * owner stays free to run on the others. */
        int last = -1;
        for (int i = 0; i < CPU_SETSIZE; i++)
            if (CPU_ISSET(i, &all))
                last = i;
        CPU_ZERO(&u.cpu);
        CPU_SET(last, &u.cpu);
        pre = tt_start(uaf_preempter, &u);
    }
    tt *t = tt_start(uaf_releaser, &u);
    for (long i = 0; i < rounds; i++) {
        weft_sem *s = malloc(sizeof *s);
        ck_assert_ptr_nonnull(s);
        ck_assert_rc(weft_sem_init(s, 0), 0);
        atomic_store(&u.slot, s);
        if (pinned) {
            while (weft_sem_try(s) != 0)
                sched_yield();
        } else {
            jitter(&seed);
            ck_assert_rc(weft_sem_acquire(s, WEFT_FOREVER), 0);
        }
        ck_assert_rc(weft_sem_fini(s), 0);
        memset(s, 0xa5, sizeof *s);
        free(s);
    }
    atomic_store(&u.stop, 1);
    ck_assert_rc(tt_join(t), 0);
    if (pre)
        ck_assert_rc(tt_join(pre), 0);
}

START_TEST(freed_right_after_acquire_while_releaser_returns)
{
    run_uaf(false, 50000 * test_scale());
    run_uaf(true, 20000 * test_scale());
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
    tcase_add_test(c, unbounded_refuses_to_exceed_value_max);
    tcase_add_test(c, initial_value_above_max_is_einval);
    tcase_add_test(c, waiter_count_full_is_enomem);
    tcase_add_test(c, acquire_times_out_at_deadline);
    tcase_add_test(c, release_wakes_a_blocked_waiter);
    tcase_add_test(c, release_n_wakes_exactly_n);
    tcase_add_test(c, bounded_release_hands_to_waiters_within_bound);
    tcase_add_test(c, cancelled_waiter_returns_ecanceled);
    tcase_add_test(c, bounded_concurrent_releases_never_exceed_bound);
    tcase_add_test(c, parked_waiter_is_not_starved);
    tcase_add_test(c, freed_right_after_acquire_while_releaser_returns);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(sem_suite)
