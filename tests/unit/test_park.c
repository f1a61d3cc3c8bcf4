/* test_park.c - the park layer itself: the claim protocol, waits on
 * several queues at once, deadlines, cancellation, wake-one never spent on
 * a waiter that left. */
#include "support.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "park/park.h"
#include "platform/platform.h"

START_TEST(park_times_out_at_deadline)
{
    weft__waiter *me = weft__self();
    weft__wait_prepare(me, "test", NULL);
    int64_t t0 = weft_now();
    ck_assert_rc(weft__park(me, weft_deadline_in(MS(30))), -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(30), MS(2000));
    ck_assert_ptr_null(weft__woken_by(me));
}
END_TEST

START_TEST(park_with_past_deadline_returns_at_once)
{
    weft__waiter *me = weft__self();
    weft__wait_prepare(me, "test", NULL);
    ck_assert_rc(weft__park(me, WEFT_NOW), -ETIMEDOUT);
    weft__wait_prepare(me, "test", NULL);
    ck_assert_rc(weft__park(me, weft_now() - 1000), -ETIMEDOUT);
}
END_TEST

START_TEST(self_is_stable_per_thread)
{
    ck_assert_ptr_eq(weft__self(), weft__self());
    ck_assert_ptr_nonnull(weft__self()->ops);
}
END_TEST

static int other_self(void *p)
{
    return weft__self() == p ? -1 : 0;
}

START_TEST(self_differs_between_threads)
{
    ck_assert_int_eq(tt_join(tt_start(other_self, weft__self())), 0);
}
END_TEST

struct one {
    weft__waitq wq;
    weft_event queued;
    int rc, result;
    uintptr_t data;
};

static int wait_one(void *p)
{
    struct one *o = p;
    weft__wait_entry e;
    e.data = 0;
    weft__waitq_lock(&o->wq);
    weft__wait_prepare(weft__self(), "test", o);
    weft__waitq_push(&o->wq, &e, weft__self());
    weft__waitq_unlock(&o->wq);
    weft_event_set(&o->queued);
    o->rc = weft__park(weft__self(), weft_deadline_in(MS(10000)));
    if (o->rc == 0) {
        ck_assert_ptr_eq(weft__woken_by(weft__self()), &e);
        o->result = e.result;
        o->data = e.data;
    } else {
        weft__waitq_lock(&o->wq);
        weft__waitq_remove(&o->wq, &e);
        weft__waitq_unlock(&o->wq);
    }
    return 0;
}

START_TEST(wake_passes_result_and_data)
{
    struct one o = {WEFT__WAITQ_INIT, WEFT_EVENT_INIT, 1, 0, 0};
    tt *t = tt_start(wait_one, &o);
    ck_assert_rc(weft_event_wait(&o.queued, WEFT_FOREVER), 0);
    weft__waitq_lock(&o.wq);
    weft__wait_entry *e = weft__waitq_pop(&o.wq);
    ck_assert_ptr_nonnull(e);
    e->data = 0xfeed;
    ck_assert(weft__wake(e, 42));
    weft__waitq_unlock(&o.wq);
    tt_join(t);
    ck_assert_rc(o.rc, 0);
    ck_assert_int_eq(o.result, 42);
    ck_assert_int_eq(o.data, 0xfeed);
}
END_TEST

START_TEST(cancel_wakes_parked_waiter)
{
    struct one o = {WEFT__WAITQ_INIT, WEFT_EVENT_INIT, 1, 0, 0};
    tt *t = tt_start(wait_one, &o);
    ck_assert_rc(weft_event_wait(&o.queued, WEFT_FOREVER), 0);
    /* The waiter is queued (maybe not yet asleep); find it through its
     * entry and cancel it. */
    weft__waitq_lock(&o.wq);
    weft__waiter *w = o.wq.head->waiter;
    weft__waitq_unlock(&o.wq);
    weft__waiter_cancel(w);
    tt_join(t);
    ck_assert_rc(o.rc, -ECANCELED);
    ck_assert(weft__waitq_empty(&o.wq));
}
END_TEST

START_TEST(cancelled_waiter_fails_every_park_until_uncancelled)
{
    weft__waiter *me = weft__self();
    weft__waiter_cancel(me);
    ck_assert(weft__waiter_cancelled(me));
    for (int i = 0; i < 3; i++) {
        weft__wait_prepare(me, "test", NULL);
        ck_assert_rc(weft__park(me, WEFT_FOREVER), -ECANCELED);
    }
    weft__waiter_uncancel(me);
    ck_assert(!weft__waiter_cancelled(me));
    weft__wait_prepare(me, "test", NULL);
    ck_assert_rc(weft__park(me, WEFT_NOW), -ETIMEDOUT);
}
END_TEST

START_TEST(wake_after_timeout_fails_and_goes_to_next)
{
    /* Two entries of two different waiters in one queue; the first has
     * already timed out (its claim is taken) but its entry is still linked:
     * wake_one must skip it and wake the second. */
    weft__waitq wq = WEFT__WAITQ_INIT;
    weft__waiter gone, alive;
    weft__wait_entry e1, e2;
    weft__waiter_init(&gone, WEFT__WAITER_OS, weft__self()->ops, NULL);
    weft__waiter_init(&alive, WEFT__WAITER_OS, weft__self()->ops, NULL);
    weft__wait_prepare(&gone, "test", NULL);
    weft__wait_prepare(&alive, "test", NULL);
    weft__waitq_lock(&wq);
    weft__waitq_push(&wq, &e1, &gone);
    weft__waitq_push(&wq, &e2, &alive);
    weft__waitq_unlock(&wq);
    /* "gone" times out: the deadline claim, as park does. */
    ck_assert_rc(weft__park(&gone, WEFT_NOW), -ETIMEDOUT);
    weft__waitq_lock(&wq);
    ck_assert_int_eq(weft__wake_one(&wq, 7), 1);
    ck_assert(weft__waitq_empty(&wq));
    weft__waitq_unlock(&wq);
    ck_assert_ptr_eq(weft__woken_by(&alive), &e2);
    ck_assert_int_eq(e2.result, 7);
    ck_assert_rc(weft__park(&alive, WEFT_FOREVER), 0); /* returns at once */
}
END_TEST

START_TEST(waiter_on_two_queues_is_woken_once)
{
    /* One waiter queued on two queues: the first wake wins, the second
     * fails and reports that nobody was woken. */
    weft__waitq a = WEFT__WAITQ_INIT, b = WEFT__WAITQ_INIT;
    weft__waiter *me = weft__self();
    weft__wait_entry ea, eb;
    weft__wait_prepare(me, "select", NULL);
    weft__waitq_lock(&a);
    weft__waitq_push(&a, &ea, me);
    weft__waitq_unlock(&a);
    weft__waitq_lock(&b);
    weft__waitq_push(&b, &eb, me);
    weft__waitq_unlock(&b);

    weft__waitq_lock(&b);
    ck_assert_int_eq(weft__wake_one(&b, 2), 1);
    weft__waitq_unlock(&b);
    weft__waitq_lock(&a);
    ck_assert_int_eq(weft__wake_one(&a, 1), 0);
    weft__waitq_unlock(&a);

    ck_assert_rc(weft__park(me, WEFT_FOREVER), 0);
    ck_assert_ptr_eq(weft__woken_by(me), &eb);
    ck_assert_int_eq(eb.result, 2);
}
END_TEST

START_TEST(abandon_unreached_wait)
{
    weft__waiter *me = weft__self();
    weft__waitq wq = WEFT__WAITQ_INIT;
    weft__wait_entry e;
    weft__wait_prepare(me, "test", NULL);
    weft__waitq_lock(&wq);
    weft__waitq_push(&wq, &e, me);
    ck_assert(weft__waitq_remove(&wq, &e));
    ck_assert(!weft__waitq_remove(&wq, &e));
    weft__waitq_unlock(&wq);
    ck_assert_rc(weft__wait_abandon(me), 0);
    /* A later wait works normally. */
    weft__wait_prepare(me, "test", NULL);
    ck_assert_rc(weft__park(me, WEFT_NOW), -ETIMEDOUT);
}
END_TEST

START_TEST(waitq_is_fifo_and_push_front_jumps)
{
    weft__waitq wq = WEFT__WAITQ_INIT;
    weft__waiter w;
    weft__wait_entry e[4];
    weft__waiter_init(&w, WEFT__WAITER_OS, weft__self()->ops, NULL);
    weft__waitq_lock(&wq);
    weft__waitq_push(&wq, &e[0], &w);
    weft__waitq_push(&wq, &e[1], &w);
    weft__waitq_push_front(&wq, &e[2], &w);
    weft__waitq_push(&wq, &e[3], &w);
    ck_assert_int_eq(wq.len, 4);
    ck_assert(weft__waitq_remove(&wq, &e[1]));
    ck_assert_ptr_eq(weft__waitq_pop(&wq), &e[2]);
    ck_assert_ptr_eq(weft__waitq_pop(&wq), &e[0]);
    ck_assert_ptr_eq(weft__waitq_pop(&wq), &e[3]);
    ck_assert_ptr_null(weft__waitq_pop(&wq));
    ck_assert_int_eq(wq.len, 0);
    weft__waitq_unlock(&wq);
}
END_TEST

/* The race the claim protocol exists for: waiters with tiny deadlines
 * against a waker that pops and wakes them.  Every successful wake must be
 * seen by exactly the waiter it claimed; none may be lost or doubled. */
struct race {
    weft__waitq wq;
    atomic_long woken_seen;
    atomic_long wakes_won;
    atomic_int stop;
    long rounds;
};

static int race_waiter(void *p)
{
    struct race *r = p;
    weft__waiter *me = weft__self();
    for (long i = 0; i < r->rounds; i++) {
        weft__wait_entry e;
        weft__waitq_lock(&r->wq);
        int rc = weft__wait_on(&r->wq, &e, false,
                               weft_deadline_in(1000 * (i % 20)), "race", r);
        if (rc == 0) {
            if (weft__woken_by(me) != &e || e.result != 5)
                return -1;
            atomic_fetch_add(&r->woken_seen, 1);
        } else {
            if (rc != -ETIMEDOUT)
                return -2;
            weft__waitq_unlock(&r->wq);
        }
    }
    return 0;
}

static int race_waker(void *p)
{
    struct race *r = p;
    while (!atomic_load(&r->stop)) {
        weft__waitq_lock(&r->wq);
        atomic_fetch_add(&r->wakes_won, weft__wake_one(&r->wq, 5));
        weft__waitq_unlock(&r->wq);
    }
    return 0;
}

START_TEST(timeouts_racing_wakes_lose_nothing)
{
    static struct race r;
    r.wq = (weft__waitq)WEFT__WAITQ_INIT;
    r.rounds = 3000 * test_scale();
    tt *w1 = tt_start(race_waker, &r);
    tt *a = tt_start(race_waiter, &r);
    tt *b = tt_start(race_waiter, &r);
    ck_assert_int_eq(tt_join(a), 0);
    ck_assert_int_eq(tt_join(b), 0);
    atomic_store(&r.stop, 1);
    ck_assert_int_eq(tt_join(w1), 0);
    ck_assert_int_eq(atomic_load(&r.woken_seen), atomic_load(&r.wakes_won));
    ck_assert(weft__waitq_empty(&r.wq));
}
END_TEST

/* A canceller racing a waiter that ends one wait and prepares the next
 * must never leave the waiter waiting for a wake-up nobody will send. */
struct cancel_race {
    _Atomic(weft__waiter *) who;
    atomic_int stop;
    long rounds;
};

static int cancel_race_waiter(void *p)
{
    struct cancel_race *r = p;
    weft__waiter *w = weft__self();
    atomic_store(&r->who, w);
    for (long i = 0; i < r->rounds; i++) {
        weft__wait_prepare(w, "test", NULL);
        int rc = weft__park(w, WEFT_NOW);
        if (rc == -ECANCELED)
            weft__waiter_uncancel(w);
        else if (rc != -ETIMEDOUT)
            return -1;
    }
    atomic_store(&r->stop, 1);
    return 0;
}

static int cancel_race_canceller(void *p)
{
    struct cancel_race *r = p;
    weft__waiter *w;
    while ((w = atomic_load(&r->who)) == NULL)
        ;
    while (!atomic_load(&r->stop))
        weft__waiter_cancel(w);
    return 0;
}

START_TEST(cancel_racing_next_wait_never_hangs)
{
    static struct cancel_race r;
    r.rounds = 300000 * test_scale();
    tt *c = tt_start(cancel_race_canceller, &r);
    tt *w = tt_start(cancel_race_waiter, &r);
    ck_assert_int_eq(tt_join(w), 0);
    ck_assert_int_eq(tt_join(c), 0);
}
END_TEST

/* ---- spin budgets from the environment -------------------------------- */

/* The budgets are computed by a constructor, so the test runs this binary
 * again with a huge WEFT_SPIN_NS and only this case: the budget must be
 * capped (ns * 1000 used to overflow, a huge or wrapped budget; UBSan
 * aborts on it). */
START_TEST(huge_spin_budget_from_env_is_capped)
{
    if (getenv("WEFT_TEST_SPIN_CHILD") != NULL) {
        ck_assert_uint_le(weft__park_spin_iters, 1000000u);
        ck_assert_uint_gt(weft__park_spin_iters, 0u);
        ck_assert_uint_le(weft__lock_spin_iters, 1000000u);
        return;
    }
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 1); /* keep its Check summary out of ours */
        setenv("WEFT_TEST_SPIN_CHILD", "1", 1);
        setenv("WEFT_SPIN_NS", "9223372036854775807", 1);
        setenv("WEFT_LOCK_SPIN_NS", "9223372036854775", 1);
        setenv("CK_RUN_CASE", "spin-env", 1);
        setenv("CK_FORK", "no", 1);
        execl("/proc/self/exe", "test_park", (char *)NULL);
        _exit(127);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child status %#x", status);
}
END_TEST

/* A cancel aimed at a thread's very first wait, racing its prepare: the
 * wait must end in -ECANCELED, never in a "woken" 0 that nobody sent (the
 * claim of a waiter that never waited must not look like an armed wait's). */
struct first_wait {
    _Atomic(weft__waiter *) who;
    int rc;
};

static int first_wait_waiter(void *p)
{
    struct first_wait *f = p;
    weft__waiter *w = weft__self();
    atomic_store(&f->who, w);
    weft__wait_prepare(w, "test", NULL);
    f->rc = weft__park(w, weft_deadline_in(MS(10000)));
    return 0;
}

START_TEST(cancel_racing_first_wait_is_ecanceled)
{
    for (int i = 0; i < 300; i++) {
        struct first_wait f = {NULL, 1};
        tt *t = tt_start(first_wait_waiter, &f);
        weft__waiter *w;
        while ((w = atomic_load(&f.who)) == NULL)
            ;
        weft__waiter_cancel(w);
        tt_join(t);
        ck_assert_msg(f.rc == -ECANCELED, "round %d: park returned %d", i,
                      f.rc);
    }
}
END_TEST

static Suite *park_suite(void)
{
    Suite *s = suite_create("park");
    TCase *c = tcase_create("park");
    tcase_set_timeout(c, 30);
    tcase_add_test(c, park_times_out_at_deadline);
    tcase_add_test(c, park_with_past_deadline_returns_at_once);
    tcase_add_test(c, self_is_stable_per_thread);
    tcase_add_test(c, self_differs_between_threads);
    tcase_add_test(c, wake_passes_result_and_data);
    tcase_add_test(c, cancel_wakes_parked_waiter);
    tcase_add_test(c, cancelled_waiter_fails_every_park_until_uncancelled);
    tcase_add_test(c, wake_after_timeout_fails_and_goes_to_next);
    tcase_add_test(c, waiter_on_two_queues_is_woken_once);
    tcase_add_test(c, abandon_unreached_wait);
    tcase_add_test(c, waitq_is_fifo_and_push_front_jumps);
    suite_add_tcase(s, c);
    /* Races that spin two threads against each other: tagged so that the
     * Valgrind run, which serialises threads, can leave them out. */
    TCase *race = tcase_create("race");
    tcase_set_timeout(race, 30);
    tcase_set_tags(race, "race");
    tcase_add_test(race, timeouts_racing_wakes_lose_nothing);
    tcase_add_test(race, cancel_racing_next_wait_never_hangs);
    tcase_add_test(race, cancel_racing_first_wait_is_ecanceled);
    suite_add_tcase(s, race);
    TCase *env = tcase_create("spin-env");
    tcase_set_tags(env, "reexec"); /* re-executes itself: not under Valgrind */
    tcase_set_timeout(env, 30);
    tcase_add_test(env, huge_spin_budget_from_env_is_capped);
    suite_add_tcase(s, env);
    return s;
}

TEST_MAIN(park_suite)
