/* test_lock.c - weft_lock: acquire, try, deadlines, ownership errors,
 * mutual exclusion, hand-off to a long-parked waiter. */
#include "support.h"

#include <stdatomic.h>

#include "platform/platform.h"

START_TEST(static_init_is_unlocked)
{
    static weft_lock l = WEFT_LOCK_INIT;
    ck_assert(!weft_lock_locked(&l));
    ck_assert_rc(weft_lock_acquire(&l, WEFT_FOREVER), 0);
    ck_assert(weft_lock_locked(&l));
    ck_assert(weft_lock_held(&l));
    ck_assert_rc(weft_lock_release(&l), 0);
    ck_assert(!weft_lock_locked(&l));
    ck_assert_rc(weft_lock_fini(&l), 0);
}
END_TEST

START_TEST(try_fails_when_held_elsewhere)
{
    weft_lock l;
    weft_lock_init(&l);
    ck_assert_rc(weft_lock_try(&l), 0);
    ck_assert_rc(weft_lock_release(&l), 0);
    ck_assert_rc(weft_lock_try(&l), 0);
    ck_assert_rc(weft_lock_release(&l), 0);
}
END_TEST

static int try_from_other(void *p)
{
    return weft_lock_try(p);
}

START_TEST(try_from_other_thread_is_eagain)
{
    weft_lock l = WEFT_LOCK_INIT;
    ck_assert_rc(weft_lock_acquire(&l, WEFT_FOREVER), 0);
    ck_assert_rc(tt_join(tt_start(try_from_other, &l)), -EAGAIN);
    ck_assert_rc(weft_lock_release(&l), 0);
    ck_assert_rc(tt_join(tt_start(try_from_other, &l)), 0);
}
END_TEST

START_TEST(reacquire_by_owner_is_edeadlk)
{
    weft_lock l = WEFT_LOCK_INIT;
    ck_assert_rc(weft_lock_acquire(&l, WEFT_FOREVER), 0);
    ck_assert_rc(weft_lock_acquire(&l, WEFT_FOREVER), -EDEADLK);
    ck_assert_rc(weft_lock_try(&l), -EDEADLK);
    ck_assert(weft_lock_held(&l));
    ck_assert_rc(weft_lock_release(&l), 0);
}
END_TEST

START_TEST(release_unlocked_is_eperm)
{
    weft_lock l = WEFT_LOCK_INIT;
    ck_assert_rc(weft_lock_release(&l), -EPERM);
    ck_assert(!weft_lock_locked(&l));
    /* Still usable afterwards. */
    ck_assert_rc(weft_lock_acquire(&l, WEFT_FOREVER), 0);
    ck_assert_rc(weft_lock_release(&l), 0);
}
END_TEST

static int release_from_other(void *p)
{
    return weft_lock_release(p);
}

START_TEST(release_by_non_owner_is_eperm)
{
    weft_lock l = WEFT_LOCK_INIT;
    ck_assert_rc(weft_lock_acquire(&l, WEFT_FOREVER), 0);
    ck_assert_rc(tt_join(tt_start(release_from_other, &l)), -EPERM);
    ck_assert(weft_lock_locked(&l));
    ck_assert(weft_lock_held(&l));
    ck_assert_rc(weft_lock_release(&l), 0);
}
END_TEST

START_TEST(fini_of_held_lock_is_ebusy)
{
    weft_lock l = WEFT_LOCK_INIT;
    ck_assert_rc(weft_lock_acquire(&l, WEFT_FOREVER), 0);
    ck_assert_rc(weft_lock_fini(&l), -EBUSY);
    ck_assert_rc(weft_lock_release(&l), 0);
    ck_assert_rc(weft_lock_fini(&l), 0);
}
END_TEST

static int acquire_with_deadline(void *p)
{
    weft_lock *l = p;
    int64_t t0 = weft_now();
    int rc = weft_lock_acquire(l, weft_deadline_in(MS(50)));
    ck_assert_elapsed(t0, MS(50), MS(2000));
    return rc;
}

START_TEST(acquire_times_out_at_deadline)
{
    weft_lock l = WEFT_LOCK_INIT;
    ck_assert_rc(weft_lock_acquire(&l, WEFT_FOREVER), 0);
    ck_assert_rc(tt_join(tt_start(acquire_with_deadline, &l)), -ETIMEDOUT);
    ck_assert(weft_lock_held(&l));
    ck_assert_rc(weft_lock_release(&l), 0);
    /* The timed-out waiter left nothing behind: the lock is clean. */
    ck_assert_rc(weft_lock_fini(&l), 0);
}
END_TEST

static int acquire_now(void *p)
{
    return weft_lock_acquire(p, WEFT_NOW);
}

START_TEST(deadline_now_does_not_wait)
{
    weft_lock l = WEFT_LOCK_INIT;
    ck_assert_rc(weft_lock_acquire(&l, WEFT_FOREVER), 0);
    int64_t t0 = weft_now();
    ck_assert_rc(tt_join(tt_start(acquire_now, &l)), -ETIMEDOUT);
    ck_assert_elapsed(t0, 0, MS(1000));
    ck_assert_rc(weft_lock_release(&l), 0);
}
END_TEST

struct handoff {
    weft_lock l;
    weft_event parked;
    atomic_int got;
};

static int wait_forever(void *p)
{
    struct handoff *h = p;
    weft_event_set(&h->parked);
    int rc = weft_lock_acquire(&h->l, WEFT_FOREVER);
    if (rc == 0) {
        atomic_store(&h->got, 1);
        rc = weft_lock_release(&h->l);
    }
    return rc;
}

START_TEST(blocked_waiter_gets_lock_on_release)
{
    struct handoff h = {WEFT_LOCK_INIT, WEFT_EVENT_INIT, 0};
    ck_assert_rc(weft_lock_acquire(&h.l, WEFT_FOREVER), 0);
    tt *t = tt_start(wait_forever, &h);
    ck_assert_rc(weft_event_wait(&h.parked, WEFT_FOREVER), 0);
    ck_assert_int_eq(atomic_load(&h.got), 0);
    ck_assert_rc(weft_lock_release(&h.l), 0);
    ck_assert_rc(tt_join(t), 0);
    ck_assert_int_eq(atomic_load(&h.got), 1);
    ck_assert_rc(weft_lock_fini(&h.l), 0);
}
END_TEST

/* Mutual exclusion: a plain (non-atomic) counter incremented under the lock
 * by several threads ends exact, and no two threads are ever inside at once. */
struct excl {
    weft_lock l;
    long counter;
    atomic_int inside;
    atomic_int overlap;
    long iters;
};

static int excl_worker(void *p)
{
    struct excl *x = *(struct excl **)p;
    for (long i = 0; i < x->iters; i++) {
        int rc = weft_lock_acquire(&x->l, WEFT_FOREVER);
        if (rc)
            return rc;
        if (atomic_fetch_add(&x->inside, 1) != 0)
            atomic_store(&x->overlap, 1);
        x->counter++;
        atomic_fetch_sub(&x->inside, 1);
        rc = weft_lock_release(&x->l);
        if (rc)
            return rc;
    }
    return 0;
}

START_TEST(mutual_exclusion_counts_exact)
{
    struct excl x = {.l = WEFT_LOCK_INIT, .iters = 20000 * test_scale()};
    struct excl *args[4] = {&x, &x, &x, &x};
    ck_assert_int_eq(tt_run_n(4, excl_worker, args, sizeof args[0]), 0);
    ck_assert_int_eq(x.counter, 4 * x.iters);
    ck_assert_int_eq(atomic_load(&x.overlap), 0);
    ck_assert_rc(weft_lock_fini(&x.l), 0);
}
END_TEST

/* With no spinning at all, every contended acquire goes through the park
 * path (and its "the lock came free before I slept" retry): still exact,
 * still no livelock. */
START_TEST(contention_without_spinning)
{
    weft__lock_spin_iters = 0;
    weft__park_spin_iters = 0;
    struct excl x = {.l = WEFT_LOCK_INIT, .iters = 20000 * test_scale()};
    struct excl *args[3] = {&x, &x, &x};
    ck_assert_int_eq(tt_run_n(3, excl_worker, args, sizeof args[0]), 0);
    ck_assert_int_eq(x.counter, 3 * x.iters);
    ck_assert_int_eq(atomic_load(&x.overlap), 0);
    ck_assert_rc(weft_lock_fini(&x.l), 0);
}
END_TEST

/* A waiter whose deadline passes while others hammer the lock leaves
 * cleanly; the hammering threads keep going and the counts stay exact. */
static int excl_timed_worker(void *p)
{
    struct excl *x = *(struct excl **)p;
    for (long i = 0; i < x->iters; i++) {
        int rc;
        while ((rc = weft_lock_acquire(&x->l, weft_deadline_in(1000))) ==
               -ETIMEDOUT)
            ;
        if (rc)
            return rc;
        x->counter++;
        rc = weft_lock_release(&x->l);
        if (rc)
            return rc;
    }
    return 0;
}

START_TEST(timeouts_under_contention_lose_nothing)
{
    struct excl x = {.l = WEFT_LOCK_INIT, .iters = 5000 * test_scale()};
    struct excl *args[4] = {&x, &x, &x, &x};
    ck_assert_int_eq(tt_run_n(4, excl_timed_worker, args, sizeof args[0]), 0);
    ck_assert_int_eq(x.counter, 4 * x.iters);
    ck_assert_rc(weft_lock_fini(&x.l), 0);
}
END_TEST

/* Starvation: one thread re-takes the lock in a tight loop; a second one
 * that asks for it must get it, by hand-off, long before the hog gives up. */
struct starve {
    weft_lock l;
    atomic_int stop;
    atomic_long hog_rounds;
};

static int hog(void *p)
{
    struct starve *s = p;
    while (!atomic_load(&s->stop)) {
        if (weft_lock_acquire(&s->l, WEFT_FOREVER))
            return -1;
        for (volatile int i = 0; i < 200; i++)
            ;
        atomic_fetch_add(&s->hog_rounds, 1);
        if (weft_lock_release(&s->l))
            return -1;
    }
    return 0;
}

START_TEST(long_waiter_is_not_starved)
{
    struct starve s = {WEFT_LOCK_INIT, 0, 0};
    tt *t = tt_start(hog, &s);
    while (atomic_load(&s.hog_rounds) < 1000)
        ;
    /* The hog keeps going for at most 2 seconds (bounded); we must get the
     * lock well within that, every time. */
    for (int i = 0; i < 20; i++) {
        ck_assert_rc(weft_lock_acquire(&s.l, weft_deadline_in(MS(2000) * test_slow())), 0);
        ck_assert_rc(weft_lock_release(&s.l), 0);
    }
    atomic_store(&s.stop, 1);
    ck_assert_rc(tt_join(t), 0);
}
END_TEST

static Suite *lock_suite(void)
{
    Suite *s = suite_create("lock");
    TCase *c = tcase_create("lock");
    tcase_set_timeout(c, 20);
    tcase_add_test(c, static_init_is_unlocked);
    tcase_add_test(c, try_fails_when_held_elsewhere);
    tcase_add_test(c, try_from_other_thread_is_eagain);
    tcase_add_test(c, reacquire_by_owner_is_edeadlk);
    tcase_add_test(c, release_unlocked_is_eperm);
    tcase_add_test(c, release_by_non_owner_is_eperm);
    tcase_add_test(c, fini_of_held_lock_is_ebusy);
    tcase_add_test(c, acquire_times_out_at_deadline);
    tcase_add_test(c, deadline_now_does_not_wait);
    tcase_add_test(c, blocked_waiter_gets_lock_on_release);
    tcase_add_test(c, mutual_exclusion_counts_exact);
    tcase_add_test(c, contention_without_spinning);
    tcase_add_test(c, timeouts_under_contention_lose_nothing);
    tcase_add_test(c, long_waiter_is_not_starved);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(lock_suite)
