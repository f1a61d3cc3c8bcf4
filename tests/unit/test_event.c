/* test_event.c - weft_event: set/clear/is_set, waits at once on a set
 * event, deadlines, waking every waiter, fini while waited on, and
 * cancellation. */
#include "support.h"

#include <sched.h>
#include <stdatomic.h>

#include "park/park.h"

START_TEST(static_init_is_clear)
{
    static weft_event e = WEFT_EVENT_INIT;
    ck_assert(!weft_event_is_set(&e));
    ck_assert_rc(weft_event_wait(&e, WEFT_NOW), -ETIMEDOUT);
    ck_assert_rc(weft_event_fini(&e), 0);
}
END_TEST

START_TEST(init_set_clear_is_set)
{
    weft_event e;
    weft_event_init(&e);
    ck_assert(!weft_event_is_set(&e));
    weft_event_set(&e);
    ck_assert(weft_event_is_set(&e));
    weft_event_set(&e); /* idempotent */
    ck_assert(weft_event_is_set(&e));
    weft_event_clear(&e);
    ck_assert(!weft_event_is_set(&e));
    weft_event_clear(&e);
    ck_assert(!weft_event_is_set(&e));
    ck_assert_rc(weft_event_fini(&e), 0);
}
END_TEST

START_TEST(wait_on_set_event_returns_at_once)
{
    weft_event e = WEFT_EVENT_INIT;
    weft_event_set(&e);
    int64_t t0 = weft_now();
    ck_assert_rc(weft_event_wait(&e, WEFT_NOW), 0);
    ck_assert_rc(weft_event_wait(&e, WEFT_FOREVER), 0);
    ck_assert_rc(weft_event_wait(&e, weft_deadline_in(MS(5000))), 0);
    ck_assert_elapsed(t0, 0, MS(1000));
    ck_assert(weft_event_is_set(&e)); /* level-triggered: stays set */
}
END_TEST

START_TEST(wait_times_out_at_deadline)
{
    weft_event e = WEFT_EVENT_INIT;
    int64_t t0 = weft_now();
    ck_assert_rc(weft_event_wait(&e, weft_deadline_in(MS(50))), -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(50), MS(2000));
    ck_assert_rc(weft_event_fini(&e), 0);
}
END_TEST

START_TEST(cleared_event_waits_again)
{
    weft_event e = WEFT_EVENT_INIT;
    weft_event_set(&e);
    weft_event_clear(&e);
    ck_assert_rc(weft_event_wait(&e, weft_deadline_in(MS(10))), -ETIMEDOUT);
}
END_TEST

struct ew {
    weft_event e;
    atomic_int done;
    _Atomic(weft__waiter *) who;
};

static int wait_forever(void *p)
{
    struct ew *w = p;
    atomic_store(&w->who, weft__self());
    int rc = weft_event_wait(&w->e, WEFT_FOREVER);
    if (rc == 0)
        atomic_fetch_add(&w->done, 1);
    return rc;
}

static uint32_t n_waiting(weft_event *e)
{
    weft__waitq_lock(&e->wq);
    uint32_t n = e->wq.len;
    weft__waitq_unlock(&e->wq);
    return n;
}

START_TEST(set_wakes_a_waiter)
{
    struct ew w = {.e = WEFT_EVENT_INIT};
    tt *t = tt_start(wait_forever, &w);
    while (weft_event_fini(&w.e) != -EBUSY)
        sched_yield();
    ck_assert_int_eq(atomic_load(&w.done), 0);
    weft_event_set(&w.e);
    ck_assert_rc(tt_join(t), 0);
    ck_assert_rc(weft_event_fini(&w.e), 0);
}
END_TEST

START_TEST(set_wakes_every_waiter)
{
    struct ew w = {.e = WEFT_EVENT_INIT};
    tt *t[6];
    for (int i = 0; i < 6; i++)
        t[i] = tt_start(wait_forever, &w);
    while (n_waiting(&w.e) < 6)
        sched_yield();
    weft_event_set(&w.e);
    for (int i = 0; i < 6; i++)
        ck_assert_rc(tt_join(t[i]), 0);
    ck_assert_int_eq(atomic_load(&w.done), 6);
}
END_TEST

START_TEST(set_then_clear_still_releases_the_waiters)
{
    struct ew w = {.e = WEFT_EVENT_INIT};
    tt *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = tt_start(wait_forever, &w);
    while (n_waiting(&w.e) < 3)
        sched_yield();
    weft_event_set(&w.e);
    weft_event_clear(&w.e);
    for (int i = 0; i < 3; i++)
        ck_assert_rc(tt_join(t[i]), 0);
    ck_assert(!weft_event_is_set(&w.e));
}
END_TEST

START_TEST(fini_while_waited_on_is_ebusy)
{
    struct ew w = {.e = WEFT_EVENT_INIT};
    tt *t = tt_start(wait_forever, &w);
    while (weft_event_fini(&w.e) != -EBUSY)
        sched_yield();
    ck_assert_rc(weft_event_fini(&w.e), -EBUSY);
    weft_event_set(&w.e);
    ck_assert_rc(tt_join(t), 0);
    ck_assert_rc(weft_event_fini(&w.e), 0);
}
END_TEST

START_TEST(cancelled_waiter_returns_ecanceled)
{
    struct ew w = {.e = WEFT_EVENT_INIT};
    tt *t = tt_start(wait_forever, &w);
    while (weft_event_fini(&w.e) != -EBUSY)
        sched_yield();
    weft__waiter_cancel(atomic_load(&w.who));
    ck_assert_rc(tt_join(t), -ECANCELED);
    ck_assert_rc(weft_event_fini(&w.e), 0);
    ck_assert(!weft_event_is_set(&w.e));
}
END_TEST

static int wait_50ms(void *p)
{
    int64_t t0 = weft_now();
    int rc = weft_event_wait(p, weft_deadline_in(MS(50)));
    ck_assert_elapsed(t0, MS(50), MS(2000));
    return rc;
}

START_TEST(timed_out_waiter_leaves_others_waiting)
{
    struct ew w = {.e = WEFT_EVENT_INIT};
    tt *forever = tt_start(wait_forever, &w);
    ck_assert_rc(tt_join(tt_start(wait_50ms, &w.e)), -ETIMEDOUT);
    while (weft_event_fini(&w.e) != -EBUSY)
        sched_yield();
    ck_assert_int_eq(atomic_load(&w.done), 0);
    weft_event_set(&w.e);
    ck_assert_rc(tt_join(forever), 0);
}
END_TEST

static Suite *event_suite(void)
{
    Suite *s = suite_create("event");
    TCase *c = tcase_create("event");
    tcase_set_timeout(c, 20);
    tcase_add_test(c, static_init_is_clear);
    tcase_add_test(c, init_set_clear_is_set);
    tcase_add_test(c, wait_on_set_event_returns_at_once);
    tcase_add_test(c, wait_times_out_at_deadline);
    tcase_add_test(c, cleared_event_waits_again);
    tcase_add_test(c, set_wakes_a_waiter);
    tcase_add_test(c, set_wakes_every_waiter);
    tcase_add_test(c, set_then_clear_still_releases_the_waiters);
    tcase_add_test(c, fini_while_waited_on_is_ebusy);
    tcase_add_test(c, cancelled_waiter_returns_ecanceled);
    tcase_add_test(c, timed_out_waiter_leaves_others_waiting);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(event_suite)
