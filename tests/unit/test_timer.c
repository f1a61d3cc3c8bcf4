/* test_timer.c - weft_timer: fires at its deadline and not before, cancel
 * before and after firing, the cancel/fire race, join deadlines, join
 * racing a cancel from another thread. */
#include "support.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

struct rec {
    _Atomic int calls;
    _Atomic int64_t at;
    weft_event fired;
};

static void record(void *p)
{
    struct rec *r = p;
    atomic_store(&r->at, weft_now());
    atomic_fetch_add(&r->calls, 1);
    weft_event_set(&r->fired);
}

#define REC_INIT {0, 0, WEFT_EVENT_INIT}

START_TEST(fires_after_deadline_not_before)
{
    struct rec r = REC_INIT;
    weft_timer *t;
    int64_t deadline = weft_deadline_in(MS(50));
    ck_assert_rc(weft_timer_start(&t, deadline, record, &r), 0);
    ck_assert(!weft_timer_fired(t));
    ck_assert_rc(weft_event_wait(&r.fired, weft_deadline_in(MS(5000))), 0);
    ck_assert_int_ge(atomic_load(&r.at), deadline);
    ck_assert_int_le(atomic_load(&r.at) - deadline, MS(2000) * test_slow());
    ck_assert(weft_timer_fired(t));
    ck_assert_rc(weft_timer_join(t, WEFT_FOREVER), 0);
    ck_assert_int_eq(atomic_load(&r.calls), 1);
}
END_TEST

START_TEST(deadline_in_the_past_fires_at_once)
{
    struct rec r = REC_INIT;
    weft_timer *t;
    ck_assert_rc(weft_timer_start(&t, WEFT_NOW, record, &r), 0);
    ck_assert_rc(weft_timer_join(t, weft_deadline_in(MS(5000))), 0);
    ck_assert_int_eq(atomic_load(&r.calls), 1);
}
END_TEST

START_TEST(cancel_before_fire)
{
    struct rec r = REC_INIT;
    weft_timer *t;
    ck_assert_rc(weft_timer_start(&t, weft_deadline_in(MS(60000)), record,
                                  &r), 0);
    ck_assert_rc(weft_timer_cancel(t), 0);
    ck_assert_rc(weft_timer_cancel(t), 0); /* again: still cancelled */
    int64_t t0 = weft_now();
    ck_assert_rc(weft_timer_join(t, weft_deadline_in(MS(5000))), 0);
    ck_assert_elapsed(t0, 0, MS(2000)); /* the thread stopped waiting */
    ck_assert_int_eq(atomic_load(&r.calls), 0);
}
END_TEST

START_TEST(cancel_after_fire_is_eagain)
{
    struct rec r = REC_INIT;
    weft_timer *t;
    ck_assert_rc(weft_timer_start(&t, weft_deadline_in(MS(10)), record, &r),
                 0);
    ck_assert_rc(weft_event_wait(&r.fired, weft_deadline_in(MS(5000))), 0);
    ck_assert_rc(weft_timer_cancel(t), -EAGAIN);
    ck_assert(weft_timer_fired(t));
    ck_assert_rc(weft_timer_join(t, WEFT_FOREVER), 0);
    ck_assert_int_eq(atomic_load(&r.calls), 1);
}
END_TEST

struct slow {
    weft_event started, release;
};

static void slow_fn(void *p)
{
    struct slow *s = p;
    weft_event_set(&s->started);
    weft_event_wait(&s->release, WEFT_FOREVER);
}

START_TEST(cancel_while_running_is_eagain_and_join_times_out)
{
    struct slow s = {WEFT_EVENT_INIT, WEFT_EVENT_INIT};
    weft_timer *t;
    ck_assert_rc(weft_timer_start(&t, WEFT_NOW, slow_fn, &s), 0);
    ck_assert_rc(weft_event_wait(&s.started, weft_deadline_in(MS(5000))), 0);
    ck_assert_rc(weft_timer_cancel(t), -EAGAIN);
    ck_assert(weft_timer_fired(t));
    int64_t t0 = weft_now();
    ck_assert_rc(weft_timer_join(t, WEFT_NOW), -ETIMEDOUT);
    ck_assert_rc(weft_timer_join(t, weft_deadline_in(MS(50))), -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(50), MS(2000));
    weft_event_set(&s.release);
    ck_assert_rc(weft_timer_join(t, weft_deadline_in(MS(5000))), 0);
}
END_TEST

START_TEST(join_times_out_while_waiting)
{
    struct rec r = REC_INIT;
    weft_timer *t;
    ck_assert_rc(weft_timer_start(&t, weft_deadline_in(MS(60000)), record,
                                  &r), 0);
    int64_t t0 = weft_now();
    ck_assert_rc(weft_timer_join(t, weft_deadline_in(MS(50))), -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(50), MS(2000));
    ck_assert_rc(weft_timer_cancel(t), 0);
    ck_assert_rc(weft_timer_join(t, WEFT_FOREVER), 0);
    ck_assert_int_eq(atomic_load(&r.calls), 0);
}
END_TEST

START_TEST(bad_arguments)
{
    weft_timer *t;
    ck_assert_rc(weft_timer_start(&t, WEFT_NOW, NULL, NULL), -EINVAL);
    ck_assert_rc(weft_timer_start(NULL, WEFT_NOW, record, NULL), -EINVAL);
    ck_assert_rc(weft_timer_cancel(NULL), -EINVAL);
    ck_assert_rc(weft_timer_join(NULL, WEFT_NOW), -EINVAL);
    ck_assert(!weft_timer_fired(NULL));
}
END_TEST

static void count(void *p)
{
    atomic_fetch_add((_Atomic int *)p, 1);
}

/* Many timers; half are cancelled as they are about to fire.  Exactly one
 * of "cancel returned 0" and "fn ran" holds for each. */
START_TEST(many_timers_cancel_race_exactly_one_wins)
{
    enum { N = 64 };
    static _Atomic int calls[N];
    weft_timer *t[N];
    int cancelled = 0;
    int rounds = (int)test_scale();
    for (int r = 0; r < rounds; r++) {
        int64_t base = weft_deadline_in(MS(20));
        for (int i = 0; i < N; i++) {
            atomic_store(&calls[i], 0);
            ck_assert_rc(weft_timer_start(&t[i], base + (i % 8) * MS(1),
                                          count, &calls[i]), 0);
        }
        weft_sleep_until(base + MS(3));
        for (int i = 0; i < N; i += 2) {
            int rc = weft_timer_cancel(t[i]);
            ck_assert(rc == 0 || rc == -EAGAIN);
            cancelled += rc == 0;
            ck_assert_int_eq(rc == 0, !weft_timer_fired(t[i]));
        }
        for (int i = 0; i < N; i++) {
            ck_assert_rc(weft_timer_join(t[i], weft_deadline_in(MS(10000))),
                         0);
            if (i % 2)
                ck_assert_int_eq(atomic_load(&calls[i]), 1);
        }
        int ran_even = 0;
        for (int i = 0; i < N; i += 2)
            ran_even += atomic_load(&calls[i]);
        ck_assert_int_eq(ran_even + cancelled, N / 2);
        cancelled = 0;
    }
}
END_TEST

static int cancel_at_idle_priority(void *p)
{
    struct sched_param sp = {0};
    /* Easy to preempt inside cancel: widens the window below. */
    (void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
    return weft_timer_cancel(p);
}

/* cancel on one thread racing join on another: the timer thread sees the
 * cancel event set and ends while the canceller is still inside
 * weft_event_set; join must not free the timer (and its event) before the
 * canceller has left.  A stress test: the whole process runs on one CPU and
 * the canceller at idle priority, so it is often preempted inside set; the
 * use-after-free shows under ASan (and TSan). */
START_TEST(join_waits_for_a_canceller_still_inside_cancel)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    (void)sched_setaffinity(0, sizeof one, &one);
    int rounds = 500 * (int)test_scale();
    for (int i = 0; i < rounds; i++) {
        _Atomic int calls = 0;
        weft_timer *t;
        ck_assert_rc(weft_timer_start(&t, WEFT_FOREVER, count, &calls), 0);
        tt *c = tt_start(cancel_at_idle_priority, t);
        ck_assert_rc(weft_timer_join(t, WEFT_FOREVER), 0);
        ck_assert_rc(tt_join(c), 0);
        ck_assert_int_eq(atomic_load(&calls), 0);
    }
}
END_TEST

static Suite *timer_suite(void)
{
    Suite *s = suite_create("timer");
    TCase *c = tcase_create("timer");
    tcase_set_timeout(c, 30);
    tcase_add_test(c, fires_after_deadline_not_before);
    tcase_add_test(c, deadline_in_the_past_fires_at_once);
    tcase_add_test(c, cancel_before_fire);
    tcase_add_test(c, cancel_after_fire_is_eagain);
    tcase_add_test(c, cancel_while_running_is_eagain_and_join_times_out);
    tcase_add_test(c, join_times_out_while_waiting);
    tcase_add_test(c, bad_arguments);
    tcase_add_test(c, many_timers_cancel_race_exactly_one_wins);
    tcase_add_test(c, join_waits_for_a_canceller_still_inside_cancel);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(timer_suite)
