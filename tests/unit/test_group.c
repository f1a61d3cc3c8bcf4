/* test_group.c - weft_group: wait for every child, the first failure's
 * code, cancel-on-failure really cancelling a parked child, cancelling a
 * child before it starts, close (-EPIPE), -ECANCELED spawns, -EDEADLK,
 * deadlines, destroy's -EBUSY, per-child results, waiters on OS and green
 * threads, and a stress run over several workers.  Each Check test runs in
 * its own process, so each starts its own runtime. */
#include "support.h"

#include <stdatomic.h>
#include <string.h>

static _Atomic int counter;

static int count_ok(void *p)
{
    (void)p;
    atomic_fetch_add(&counter, 1);
    return 0;
}

static int ret_arg(void *p)
{
    return (int)(intptr_t)p;
}

static int wait_event(void *p)
{
    return weft_event_wait(p, WEFT_FOREVER);
}

struct parked {
    weft_event ready;  /* set just before the child parks */
    weft_event go;     /* what it parks on */
    _Atomic int after; /* how its wait ended, +1000 */
};

static int park_on_go(void *p)
{
    struct parked *s = p;
    int rc;
    weft_event_set(&s->ready);
    rc = weft_event_wait(&s->go, WEFT_FOREVER);
    atomic_store(&s->after, rc + 1000);
    return rc;
}

START_TEST(all_children_succeed)
{
    weft_group *g;
    size_t idx[20];
    ck_assert_rc(weft_group_create(&g, 0), 0);
    for (int i = 0; i < 20; i++)
        ck_assert_rc(weft_group_spawn(g, count_ok, NULL, NULL, &idx[i]), 0);
    ck_assert_rc(weft_group_wait(g, weft_deadline_in(MS(5000))), 0);
    ck_assert_int_eq(atomic_load(&counter), 20);
    ck_assert_int_eq(weft_group_running(g), 0);
    for (int i = 0; i < 20; i++) {
        int r = -1;
        ck_assert_int_eq(idx[i], (size_t)i);
        ck_assert_rc(weft_group_result(g, idx[i], &r), 0);
        ck_assert_int_eq(r, 0);
    }
    ck_assert_rc(weft_group_first_failure(g, NULL), 0);
    ck_assert_rc(weft_group_destroy(g), 0);
}
END_TEST

START_TEST(bad_arguments)
{
    weft_group *g;
    int r;
    ck_assert_rc(weft_group_create(NULL, 0), -EINVAL);
    ck_assert_rc(weft_group_create(&g, 0x80), -EINVAL);
    ck_assert_rc(weft_group_create(&g, WEFT_GROUP_CANCEL_ON_FAILURE), 0);
    ck_assert_rc(weft_group_spawn(NULL, count_ok, NULL, NULL, NULL), -EINVAL);
    ck_assert_rc(weft_group_spawn(g, NULL, NULL, NULL, NULL), -EINVAL);
    weft_green_opts big = {NULL, (size_t)2 << 30};
    ck_assert_rc(weft_group_spawn(g, count_ok, NULL, &big, NULL), -EINVAL);
    ck_assert_rc(weft_group_wait(NULL, WEFT_NOW), -EINVAL);
    ck_assert_rc(weft_group_cancel(NULL), -EINVAL);
    ck_assert_rc(weft_group_destroy(NULL), -EINVAL);
    ck_assert_rc(weft_group_result(NULL, 0, &r), -EINVAL);
    ck_assert_rc(weft_group_result(g, 0, NULL), -EINVAL);
    ck_assert_rc(weft_group_result(g, 0, &r), -EINVAL); /* no child 0 */
    ck_assert_rc(weft_group_first_failure(NULL, NULL), -EINVAL);
    ck_assert_int_eq(weft_group_running(NULL), 0);
    /* A failed spawn left nothing running and no failure behind. */
    ck_assert_int_eq(weft_group_running(g), 0);
    ck_assert_rc(weft_group_first_failure(g, NULL), 0);
    ck_assert_rc(weft_group_wait(g, WEFT_NOW), 0); /* empty: closes */
    ck_assert_rc(weft_group_destroy(g), 0);
}
END_TEST

/* One worker: children run in spawn order, so "first" is known. */
START_TEST(first_failure_in_time_wins)
{
    weft_group *g;
    size_t at = 99;
    int r;
    ck_assert_rc(weft_runtime_start(1), 0);
    ck_assert_rc(weft_group_create(&g, 0), 0);
    ck_assert_rc(weft_group_spawn(g, ret_arg, (void *)0, NULL, NULL), 0);
    ck_assert_rc(weft_group_spawn(g, ret_arg, (void *)-5, NULL, NULL), 0);
    ck_assert_rc(weft_group_spawn(g, ret_arg, (void *)-9, NULL, NULL), 0);
    ck_assert_rc(weft_group_spawn(g, ret_arg, (void *)0, NULL, NULL), 0);
    ck_assert_rc(weft_group_wait(g, WEFT_FOREVER), -5);
    ck_assert_rc(weft_group_wait(g, WEFT_NOW), -5); /* same answer again */
    ck_assert_rc(weft_group_first_failure(g, &at), -5);
    ck_assert_int_eq(at, 1);
    ck_assert_rc(weft_group_result(g, 2, &r), 0);
    ck_assert_int_eq(r, -9); /* ran too: no cancel flag */
    ck_assert_rc(weft_group_destroy(g), 0);
}
END_TEST

START_TEST(cancel_on_failure_cancels_parked_child)
{
    weft_group *g;
    struct parked s = {WEFT_EVENT_INIT, WEFT_EVENT_INIT, 0};
    int r;
    ck_assert_rc(weft_group_create(&g, WEFT_GROUP_CANCEL_ON_FAILURE), 0);
    ck_assert_rc(weft_group_spawn(g, park_on_go, &s, NULL, NULL), 0);
    ck_assert_rc(weft_event_wait(&s.ready, WEFT_FOREVER), 0);
    ck_assert_rc(weft_group_spawn(g, ret_arg, (void *)-EIO, NULL, NULL), 0);
    ck_assert_rc(weft_group_wait(g, weft_deadline_in(MS(5000))), -EIO);
    ck_assert_int_eq(atomic_load(&s.after), 1000 - ECANCELED);
    ck_assert_rc(weft_group_result(g, 0, &r), 0);
    ck_assert_int_eq(r, -ECANCELED);
    ck_assert(!weft_event_is_set(&s.go)); /* nobody set it: cancelled */
    /* A cancelling, then closed group refuses spawns. */
    ck_assert_rc(weft_group_spawn(g, count_ok, NULL, NULL, NULL), -EPIPE);
    ck_assert_rc(weft_group_destroy(g), 0);
}
END_TEST

/* After the failure and before wait: new spawns get -ECANCELED. */
START_TEST(cancel_on_failure_refuses_new_children)
{
    weft_group *g;
    struct parked s = {WEFT_EVENT_INIT, WEFT_EVENT_INIT, 0};
    ck_assert_rc(weft_group_create(&g, WEFT_GROUP_CANCEL_ON_FAILURE), 0);
    ck_assert_rc(weft_group_spawn(g, ret_arg, (void *)7, NULL, NULL), 0);
    while (weft_group_first_failure(g, NULL) == 0)
        weft_sleep_until(weft_deadline_in(MS(1)));
    ck_assert_rc(weft_group_spawn(g, park_on_go, &s, NULL, NULL), -ECANCELED);
    ck_assert_rc(weft_group_wait(g, weft_deadline_in(MS(5000))), 7);
    ck_assert_rc(weft_group_destroy(g), 0);
}
END_TEST

START_TEST(no_flag_failure_leaves_others_running)
{
    weft_group *g;
    struct parked s = {WEFT_EVENT_INIT, WEFT_EVENT_INIT, 0};
    int r;
    ck_assert_rc(weft_group_create(&g, 0), 0);
    ck_assert_rc(weft_group_spawn(g, park_on_go, &s, NULL, NULL), 0);
    ck_assert_rc(weft_group_spawn(g, ret_arg, (void *)3, NULL, NULL), 0);
    ck_assert_rc(weft_event_wait(&s.ready, WEFT_FOREVER), 0);
    int64_t t0 = weft_now();
    ck_assert_rc(weft_group_wait(g, weft_deadline_in(MS(50))), -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(50), MS(2000));
    ck_assert_int_eq(weft_group_running(g), 1);
    ck_assert_rc(weft_group_result(g, 0, &r), -EAGAIN);
    ck_assert_rc(weft_group_destroy(g), -EBUSY);
    /* Not closed by the timeout. */
    ck_assert_rc(weft_group_spawn(g, count_ok, NULL, NULL, NULL), 0);
    weft_event_set(&s.go);
    ck_assert_rc(weft_group_wait(g, weft_deadline_in(MS(5000))), 3);
    ck_assert_rc(weft_group_result(g, 0, &r), 0);
    ck_assert_int_eq(r, 0);
    ck_assert_rc(weft_group_destroy(g), 0);
}
END_TEST

START_TEST(wait_now_and_close)
{
    weft_group *g;
    weft_event go = WEFT_EVENT_INIT;
    ck_assert_rc(weft_group_create(&g, 0), 0);
    ck_assert_rc(weft_group_spawn(g, wait_event, &go, NULL, NULL), 0);
    ck_assert_rc(weft_group_wait(g, WEFT_NOW), -ETIMEDOUT);
    weft_event_set(&go);
    ck_assert_rc(weft_group_wait(g, WEFT_FOREVER), 0);
    ck_assert_rc(weft_group_spawn(g, count_ok, NULL, NULL, NULL), -EPIPE);
    ck_assert_rc(weft_group_cancel(g), 0); /* closed: nothing to do */
    ck_assert_rc(weft_group_wait(g, WEFT_NOW), 0);
    ck_assert_rc(weft_group_destroy(g), 0);
}
END_TEST

static int sleep_long(void *p)
{
    (void)p;
    return weft_sleep_until(weft_deadline_in(MS(60000)));
}

START_TEST(group_cancel_cancels_every_child)
{
    weft_group *g;
    struct parked s = {WEFT_EVENT_INIT, WEFT_EVENT_INIT, 0};
    ck_assert_rc(weft_group_create(&g, 0), 0);
    ck_assert_rc(weft_group_spawn(g, park_on_go, &s, NULL, NULL), 0);
    for (int i = 0; i < 10; i++)
        ck_assert_rc(weft_group_spawn(g, sleep_long, NULL, NULL, NULL), 0);
    ck_assert_rc(weft_event_wait(&s.ready, WEFT_FOREVER), 0);
    int64_t t0 = weft_now();
    ck_assert_rc(weft_group_cancel(g), 0);
    ck_assert_rc(weft_group_spawn(g, count_ok, NULL, NULL, NULL), -ECANCELED);
    ck_assert_rc(weft_group_wait(g, weft_deadline_in(MS(10000))), -ECANCELED);
    ck_assert_elapsed(t0, 0, MS(5000));
    for (size_t i = 0; i < 11; i++) {
        int r;
        ck_assert_rc(weft_group_result(g, i, &r), 0);
        ck_assert_int_eq(r, -ECANCELED);
    }
    ck_assert_rc(weft_group_destroy(g), 0);
}
END_TEST

/* One worker, the spawner a green thread: the children are queued but not
 * started when the group is cancelled; each cancels itself as it starts. */
struct pending {
    weft_group *g;
    _Atomic int started;
};

static int note_then_sleep(void *p)
{
    struct pending *s = p;
    atomic_fetch_add(&s->started, 1);
    return weft_sleep_until(weft_deadline_in(MS(60000)));
}

static int spawn_then_cancel(void *p)
{
    struct pending *s = p;
    for (int i = 0; i < 5; i++)
        if (weft_group_spawn(s->g, note_then_sleep, s, NULL, NULL) != 0)
            return 1;
    if (atomic_load(&s->started) != 0)
        return 2; /* deterministic mode: none ran yet */
    return weft_group_cancel(s->g);
}

START_TEST(cancel_reaches_children_not_started)
{
    struct pending s = {NULL, 0};
    weft_green *t;
    int r = -1;
    ck_assert_rc(weft_runtime_start(1), 0);
    ck_assert_rc(weft_group_create(&s.g, 0), 0);
    ck_assert_rc(weft_green_spawn(&t, spawn_then_cancel, &s, NULL), 0);
    ck_assert_rc(weft_green_join(t, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 0);
    ck_assert_rc(weft_group_wait(s.g, weft_deadline_in(MS(10000))), -ECANCELED);
    ck_assert_int_eq(atomic_load(&s.started), 5);
    ck_assert_rc(weft_group_destroy(s.g), 0);
}
END_TEST

/* A child spawns siblings (also while the parent waits); wait covers them. */
static weft_group *nest_g;

static int spawn_siblings(void *p)
{
    int depth = (int)(intptr_t)p;
    atomic_fetch_add(&counter, 1);
    if (depth == 0)
        return 0;
    weft_green_yield(); /* let the waiter park first, usually */
    for (int i = 0; i < 2; i++)
        if (weft_group_spawn(nest_g, spawn_siblings,
                             (void *)(intptr_t)(depth - 1), NULL, NULL) != 0)
            return -EIO;
    return 0;
}

START_TEST(children_spawn_siblings)
{
    ck_assert_rc(weft_group_create(&nest_g, 0), 0);
    ck_assert_rc(weft_group_spawn(nest_g, spawn_siblings, (void *)5, NULL, NULL), 0);
    ck_assert_rc(weft_group_wait(nest_g, weft_deadline_in(MS(10000))), 0);
    ck_assert_int_eq(atomic_load(&counter), 63); /* 2^6 - 1 */
    ck_assert_rc(weft_group_destroy(nest_g), 0);
}
END_TEST

static int wait_own_group(void *p)
{
    return weft_group_wait(p, WEFT_FOREVER);
}

START_TEST(child_waiting_for_its_group_is_edeadlk)
{
    weft_group *g;
    int r;
    ck_assert_rc(weft_group_create(&g, 0), 0);
    ck_assert_rc(weft_group_spawn(g, wait_own_group, g, NULL, NULL), 0);
    ck_assert_rc(weft_group_wait(g, weft_deadline_in(MS(5000))), -EDEADLK);
    ck_assert_rc(weft_group_result(g, 0, &r), 0);
    ck_assert_int_eq(r, -EDEADLK);
    ck_assert_rc(weft_group_destroy(g), 0);
}
END_TEST

/* Waiters on OS threads and green threads all get the answer. */
struct waiter_arg {
    weft_group *g;
    weft_event *parked;
};

static int waiter(void *p)
{
    struct waiter_arg *a = p;
    atomic_fetch_add(&counter, 1);
    return weft_group_wait(a->g, weft_deadline_in(MS(10000)));
}

START_TEST(many_waiters_os_and_green)
{
    weft_group *g;
    weft_event go = WEFT_EVENT_INIT;
    struct waiter_arg a;
    tt *os[3];
    weft_green *gr[3];
    ck_assert_rc(weft_group_create(&g, 0), 0);
    a.g = g;
    ck_assert_rc(weft_group_spawn(g, wait_event, &go, NULL, NULL), 0);
    ck_assert_rc(weft_group_spawn(g, ret_arg, (void *)11, NULL, NULL), 0);
    for (int i = 0; i < 3; i++) {
        os[i] = tt_start(waiter, &a);
        ck_assert_rc(weft_green_spawn(&gr[i], waiter, &a, NULL), 0);
    }
    while (atomic_load(&counter) < 6)
        weft_sleep_until(weft_deadline_in(MS(1)));
    weft_event_set(&go);
    for (int i = 0; i < 3; i++) {
        int r = 0;
        ck_assert_int_eq(tt_join(os[i]), 11);
        ck_assert_rc(weft_green_join(gr[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 11);
    }
    ck_assert_rc(weft_group_destroy(g), 0);
}
END_TEST

/* A green waiter cancelled: -ECANCELED, the group stays open and busy. */
START_TEST(cancelled_waiter_leaves_group_open)
{
    weft_group *g;
    weft_event go = WEFT_EVENT_INIT;
    struct waiter_arg a;
    weft_green *w;
    int r = 0;
    ck_assert_rc(weft_group_create(&g, 0), 0);
    a.g = g;
    ck_assert_rc(weft_group_spawn(g, wait_event, &go, NULL, NULL), 0);
    ck_assert_rc(weft_green_spawn(&w, waiter, &a, NULL), 0);
    while (atomic_load(&counter) < 1)
        weft_sleep_until(weft_deadline_in(MS(1)));
    ck_assert_rc(weft_green_cancel(w), 0);
    ck_assert_rc(weft_green_join(w, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, -ECANCELED);
    ck_assert_int_eq(weft_group_running(g), 1);
    ck_assert_rc(weft_group_spawn(g, count_ok, NULL, NULL, NULL), 0);
    weft_event_set(&go);
    ck_assert_rc(weft_group_wait(g, WEFT_FOREVER), 0);
    ck_assert_rc(weft_group_destroy(g), 0);
}
END_TEST

/* A green thread is the parent: spawns and waits from a green thread. */
static int green_parent(void *p)
{
    weft_group *g;
    int rc;
    (void)p;
    if (weft_group_create(&g, WEFT_GROUP_CANCEL_ON_FAILURE) != 0)
        return 100;
    for (int i = 0; i < 50; i++)
        if (weft_group_spawn(g, count_ok, NULL, NULL, NULL) != 0)
            return 101;
    rc = weft_group_wait(g, WEFT_FOREVER);
    if (weft_group_destroy(g) != 0)
        return 102;
    return rc;
}

START_TEST(green_parent_waits)
{
    weft_green *t;
    int r = -1;
    ck_assert_rc(weft_green_spawn(&t, green_parent, NULL, NULL), 0);
    ck_assert_rc(weft_green_join(t, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 0);
    ck_assert_int_eq(atomic_load(&counter), 50);
}
END_TEST

/* Stress: many groups over two workers, one child in each fails after a
 * yield, the rest sleep or park; every group ends with that failure and
 * no child left running. */
static int maybe_fail(void *p)
{
    int k = (int)(intptr_t)p;
    weft_green_yield();
    if (k == 3)
        return -EIO;
    if (k % 2)
        return weft_sleep_until(weft_deadline_in(MS(30000)));
    weft_event e = WEFT_EVENT_INIT;
    return weft_event_wait(&e, WEFT_FOREVER);
}

static int stress_one(void *p)
{
    long rounds = (long)(intptr_t)p;
    for (long r = 0; r < rounds; r++) {
        weft_group *g;
        int rc;
        if (weft_group_create(&g, WEFT_GROUP_CANCEL_ON_FAILURE) != 0)
            return 1;
        for (int k = 0; k < 8; k++) {
            rc = weft_group_spawn(g, maybe_fail, (void *)(intptr_t)k, NULL, NULL);
            if (rc != 0 && rc != -ECANCELED)
                return 2;
        }
        if (weft_group_wait(g, weft_deadline_in(MS(20000))) != -EIO)
            return 3;
        if (weft_group_running(g) != 0 || weft_group_destroy(g) != 0)
            return 4;
    }
    return 0;
}

START_TEST(stress_cancel_on_failure)
{
    long rounds = 200 * test_scale();
    weft_green *gr[2];
    ck_assert_rc(weft_runtime_start(2), 0);
    for (int i = 0; i < 2; i++)
        ck_assert_rc(weft_green_spawn(&gr[i], stress_one, (void *)(intptr_t)rounds, NULL), 0);
    ck_assert_int_eq(stress_one((void *)(intptr_t)rounds), 0); /* OS thread */
    for (int i = 0; i < 2; i++) {
        int r = -1;
        ck_assert_rc(weft_green_join(gr[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 0);
    }
}
END_TEST

static Suite *group_suite(void)
{
    Suite *s = suite_create("group");
    TCase *c = tcase_create("core");
    tcase_set_timeout(c, 30);
    tcase_add_test(c, all_children_succeed);
    tcase_add_test(c, bad_arguments);
    tcase_add_test(c, first_failure_in_time_wins);
    tcase_add_test(c, cancel_on_failure_cancels_parked_child);
    tcase_add_test(c, cancel_on_failure_refuses_new_children);
    tcase_add_test(c, no_flag_failure_leaves_others_running);
    tcase_add_test(c, wait_now_and_close);
    tcase_add_test(c, group_cancel_cancels_every_child);
    tcase_add_test(c, cancel_reaches_children_not_started);
    tcase_add_test(c, children_spawn_siblings);
    tcase_add_test(c, child_waiting_for_its_group_is_edeadlk);
    tcase_add_test(c, many_waiters_os_and_green);
    tcase_add_test(c, cancelled_waiter_leaves_group_open);
    tcase_add_test(c, green_parent_waits);
    tcase_add_test(c, stress_cancel_on_failure);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(group_suite)
