/* test_rlock.c - weft_rlock: re-entry, levels, ownership errors, deadlines,
 * overflow, cancellation and mutual exclusion. */
#include "support.h"

#include <sched.h>
#include <stdatomic.h>

#include "park/park.h"

START_TEST(static_init_is_unlocked)
{
    static weft_rlock r = WEFT_RLOCK_INIT;
    ck_assert(!weft_rlock_locked(&r));
    ck_assert_uint_eq(weft_rlock_level(&r), 0);
    ck_assert_rc(weft_rlock_acquire(&r, WEFT_FOREVER), 0);
    ck_assert(weft_rlock_locked(&r));
    ck_assert_uint_eq(weft_rlock_level(&r), 1);
    ck_assert_rc(weft_rlock_release(&r), 0);
    ck_assert(!weft_rlock_locked(&r));
    ck_assert_rc(weft_rlock_fini(&r), 0);
}
END_TEST

START_TEST(init_function_gives_unlocked)
{
    weft_rlock r;
    weft_rlock_init(&r);
    ck_assert(!weft_rlock_locked(&r));
    ck_assert_rc(weft_rlock_try(&r), 0);
    ck_assert_rc(weft_rlock_release(&r), 0);
    ck_assert_rc(weft_rlock_fini(&r), 0);
}
END_TEST

START_TEST(owner_reacquires_and_counts_levels)
{
    weft_rlock r = WEFT_RLOCK_INIT;
    for (uint32_t i = 1; i <= 5; i++) {
        ck_assert_rc(weft_rlock_acquire(&r, WEFT_NOW), 0);
        ck_assert_uint_eq(weft_rlock_level(&r), i);
    }
    ck_assert_rc(weft_rlock_try(&r), 0);
    ck_assert_uint_eq(weft_rlock_level(&r), 6);
    for (uint32_t i = 6; i >= 1; i--) {
        ck_assert(weft_rlock_locked(&r));
        ck_assert_rc(weft_rlock_release(&r), 0);
        ck_assert_uint_eq(weft_rlock_level(&r), i - 1);
    }
    ck_assert(!weft_rlock_locked(&r));
    ck_assert_rc(weft_rlock_release(&r), -EPERM);
}
END_TEST

START_TEST(release_unowned_is_eperm)
{
    weft_rlock r = WEFT_RLOCK_INIT;
    ck_assert_rc(weft_rlock_release(&r), -EPERM);
    ck_assert(!weft_rlock_locked(&r));
    ck_assert_rc(weft_rlock_acquire(&r, WEFT_FOREVER), 0);
    ck_assert_rc(weft_rlock_release(&r), 0);
}
END_TEST

static int release_other(void *p)
{
    return weft_rlock_release(p);
}
static int try_other(void *p)
{
    return weft_rlock_try(p);
}
static int acquire_now_other(void *p)
{
    return weft_rlock_acquire(p, WEFT_NOW);
}
static int level_other(void *p)
{
    return (int)weft_rlock_level(p);
}

START_TEST(release_by_non_owner_is_eperm)
{
    weft_rlock r = WEFT_RLOCK_INIT;
    ck_assert_rc(weft_rlock_acquire(&r, WEFT_FOREVER), 0);
    ck_assert_rc(weft_rlock_acquire(&r, WEFT_FOREVER), 0);
    ck_assert_rc(tt_join(tt_start(release_other, &r)), -EPERM);
    ck_assert_uint_eq(weft_rlock_level(&r), 2);
    ck_assert_rc(weft_rlock_release(&r), 0);
    ck_assert_rc(weft_rlock_release(&r), 0);
}
END_TEST

START_TEST(other_thread_cannot_take_it)
{
    weft_rlock r = WEFT_RLOCK_INIT;
    ck_assert_rc(weft_rlock_acquire(&r, WEFT_FOREVER), 0);
    ck_assert_rc(tt_join(tt_start(try_other, &r)), -EAGAIN);
    ck_assert_rc(tt_join(tt_start(acquire_now_other, &r)), -ETIMEDOUT);
    ck_assert_int_eq(tt_join(tt_start(level_other, &r)), 0);
    ck_assert_rc(weft_rlock_release(&r), 0);
    ck_assert_rc(tt_join(tt_start(try_other, &r)), 0);
    /* That thread exited holding it: it is still locked, not by us. */
    ck_assert(weft_rlock_locked(&r));
    ck_assert_uint_eq(weft_rlock_level(&r), 0);
    ck_assert_rc(weft_rlock_release(&r), -EPERM);
}
END_TEST

static int acquire_50ms(void *p)
{
    int64_t t0 = weft_now();
    int rc = weft_rlock_acquire(p, weft_deadline_in(MS(50)));
    ck_assert_elapsed(t0, MS(50), MS(2000));
    return rc;
}

START_TEST(acquire_times_out_at_deadline)
{
    weft_rlock r = WEFT_RLOCK_INIT;
    ck_assert_rc(weft_rlock_acquire(&r, WEFT_FOREVER), 0);
    ck_assert_rc(tt_join(tt_start(acquire_50ms, &r)), -ETIMEDOUT);
    ck_assert_uint_eq(weft_rlock_level(&r), 1);
    ck_assert_rc(weft_rlock_release(&r), 0);
    ck_assert_rc(weft_rlock_fini(&r), 0);
}
END_TEST

START_TEST(overflow_at_max_level)
{
    weft_rlock r = WEFT_RLOCK_INIT;
    ck_assert_rc(weft_rlock_acquire(&r, WEFT_FOREVER), 0);
    r.count = UINT32_MAX; /* reaching it honestly takes 4 billion calls */
    ck_assert_rc(weft_rlock_acquire(&r, WEFT_FOREVER), -EOVERFLOW);
    ck_assert_rc(weft_rlock_try(&r), -EOVERFLOW);
    ck_assert_uint_eq(weft_rlock_level(&r), UINT32_MAX);
    ck_assert_rc(weft_rlock_release(&r), 0);
    ck_assert_uint_eq(weft_rlock_level(&r), UINT32_MAX - 1);
    ck_assert_rc(weft_rlock_acquire(&r, WEFT_FOREVER), 0);
    r.count = 1;
    ck_assert_rc(weft_rlock_release(&r), 0);
    ck_assert(!weft_rlock_locked(&r));
}
END_TEST

START_TEST(fini_of_held_rlock_is_ebusy)
{
    weft_rlock r = WEFT_RLOCK_INIT;
    ck_assert_rc(weft_rlock_acquire(&r, WEFT_FOREVER), 0);
    ck_assert_rc(weft_rlock_fini(&r), -EBUSY);
    ck_assert_rc(weft_rlock_release(&r), 0);
    ck_assert_rc(weft_rlock_fini(&r), 0);
}
END_TEST

struct waitr {
    weft_rlock r;
    atomic_int started;
    atomic_int got;
    _Atomic(weft__waiter *) who;
};

static int wait_forever(void *p)
{
    struct waitr *w = p;
    atomic_store(&w->who, weft__self());
    atomic_store(&w->started, 1);
    int rc = weft_rlock_acquire(&w->r, WEFT_FOREVER);
    if (rc)
        return rc;
    atomic_store(&w->got, 1);
    rc = weft_rlock_acquire(&w->r, WEFT_FOREVER); /* re-entry works too */
    rc |= weft_rlock_release(&w->r);
    rc |= weft_rlock_release(&w->r);
    return rc;
}

START_TEST(waiter_gets_it_only_after_full_release)
{
    struct waitr w = {.r = WEFT_RLOCK_INIT};
    ck_assert_rc(weft_rlock_acquire(&w.r, WEFT_FOREVER), 0);
    ck_assert_rc(weft_rlock_acquire(&w.r, WEFT_FOREVER), 0);
    tt *t = tt_start(wait_forever, &w);
    while (!atomic_load(&w.started))
        sched_yield();
    ck_assert_rc(weft_rlock_release(&w.r), 0);
    /* One level is still held: the waiter cannot have it. */
    ck_assert_int_eq(atomic_load(&w.got), 0);
    ck_assert(weft_rlock_locked(&w.r));
    ck_assert_rc(weft_rlock_release(&w.r), 0);
    ck_assert_rc(tt_join(t), 0);
    ck_assert_int_eq(atomic_load(&w.got), 1);
    ck_assert(!weft_rlock_locked(&w.r));
}
END_TEST

START_TEST(cancelled_waiter_returns_ecanceled)
{
    struct waitr w = {.r = WEFT_RLOCK_INIT};
    ck_assert_rc(weft_rlock_acquire(&w.r, WEFT_FOREVER), 0);
    tt *t = tt_start(wait_forever, &w);
    while (!atomic_load(&w.started))
        sched_yield();
    weft__waiter_cancel(atomic_load(&w.who));
    ck_assert_rc(tt_join(t), -ECANCELED);
    ck_assert_int_eq(atomic_load(&w.got), 0);
    ck_assert_uint_eq(weft_rlock_level(&w.r), 1);
    ck_assert_rc(weft_rlock_release(&w.r), 0);
    ck_assert_rc(weft_rlock_fini(&w.r), 0);
}
END_TEST

struct excl {
    weft_rlock r;
    long counter;
    atomic_int inside;
    atomic_int overlap;
    long iters;
};

static int excl_worker(void *p)
{
    struct excl *x = *(struct excl **)p;
    for (long i = 0; i < x->iters; i++) {
        if (weft_rlock_acquire(&x->r, WEFT_FOREVER) ||
            weft_rlock_acquire(&x->r, WEFT_FOREVER))
            return -1;
        if (atomic_fetch_add(&x->inside, 1) != 0)
            atomic_store(&x->overlap, 1);
        x->counter++;
        atomic_fetch_sub(&x->inside, 1);
        if (weft_rlock_release(&x->r))
            return -1;
        if (weft_rlock_level(&x->r) != 1)
            return -1;
        if (weft_rlock_release(&x->r))
            return -1;
    }
    return 0;
}

START_TEST(mutual_exclusion_counts_exact)
{
    struct excl x = {.r = WEFT_RLOCK_INIT, .iters = 10000 * test_scale()};
    struct excl *args[4] = {&x, &x, &x, &x};
    ck_assert_int_eq(tt_run_n(4, excl_worker, args, sizeof args[0]), 0);
    ck_assert_int_eq(x.counter, 4 * x.iters);
    ck_assert_int_eq(atomic_load(&x.overlap), 0);
    ck_assert_rc(weft_rlock_fini(&x.r), 0);
}
END_TEST

static Suite *rlock_suite(void)
{
    Suite *s = suite_create("rlock");
    TCase *c = tcase_create("rlock");
    tcase_set_timeout(c, 20);
    tcase_add_test(c, static_init_is_unlocked);
    tcase_add_test(c, init_function_gives_unlocked);
    tcase_add_test(c, owner_reacquires_and_counts_levels);
    tcase_add_test(c, release_unowned_is_eperm);
    tcase_add_test(c, release_by_non_owner_is_eperm);
    tcase_add_test(c, other_thread_cannot_take_it);
    tcase_add_test(c, acquire_times_out_at_deadline);
    tcase_add_test(c, overflow_at_max_level);
    tcase_add_test(c, fini_of_held_rlock_is_ebusy);
    tcase_add_test(c, waiter_gets_it_only_after_full_release);
    tcase_add_test(c, cancelled_waiter_returns_ecanceled);
    tcase_add_test(c, mutual_exclusion_counts_exact);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(rlock_suite)
