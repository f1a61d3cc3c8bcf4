/* test_offload.c - weft_offload: the result, errors, the deadline and
 * cancellation before fn starts (fn then never runs) and after (the call
 * waits for fn), callers from OS and green threads (a green caller parks,
 * not its worker), many concurrent offloads with exact counts, the bound on
 * pool threads and idle threads exiting. */
#include "support.h"

#include <stdatomic.h>

#include "green/green.h"
#include "io/offload.h"

static bool wait_for(bool (*cond)(void *), void *arg, long ms)
{
    int64_t end = weft_deadline_in(MS(ms) * test_slow());
    while (!cond(arg)) {
        if (weft_now() >= end)
            return false;
        (void)weft_sleep_until(weft_deadline_in(MS(1)));
    }
    return true;
}

static int add_one(void *p)
{
    return (int)(intptr_t)p + 1;
}

static _Atomic int ran;

static int count_run(void *p)
{
    (void)p;
    atomic_fetch_add(&ran, 1);
    return 7;
}

START_TEST(returns_fn_result)
{
    int r = 0;
    ck_assert_rc(weft_offload(add_one, (void *)41, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 42);
    ck_assert_rc(weft_offload(add_one, (void *)1, NULL,
                              weft_deadline_in(MS(5000))), 0);
    ck_assert_int_ge(weft__offload_threads(), 1);
    ck_assert_int_eq(weft__offload_max(), 64);
}
END_TEST

START_TEST(bad_arguments_and_past_deadline)
{
    int r = -1;
    ck_assert_rc(weft_offload(NULL, NULL, &r, WEFT_FOREVER), -EINVAL);
    ck_assert_rc(weft_offload(count_run, NULL, &r, WEFT_NOW), -ETIMEDOUT);
    ck_assert_rc(weft_offload(count_run, NULL, &r, weft_now() - 1), -ETIMEDOUT);
    ck_assert_int_eq(atomic_load(&ran), 0);
    ck_assert_int_eq(r, -1);
    ck_assert_int_eq(weft__offload_threads(), 0); /* started lazily */
}
END_TEST

/* ---- a pool held busy ------------------------------------------------- */

static weft_event release_ev = WEFT_EVENT_INIT;
static _Atomic int running, started;

static int blocked_fn(void *p)
{
    atomic_fetch_add(&started, 1);
    atomic_fetch_add(&running, 1);
    int rc = weft_event_wait(&release_ev, WEFT_FOREVER);
    atomic_fetch_sub(&running, 1);
    return rc == 0 ? (int)(intptr_t)p : -1;
}

static int offload_blocked(void *p)
{
    int r = -1;
    int rc = weft_offload(blocked_fn, p, &r, WEFT_FOREVER);
    return rc != 0 ? rc : r;
}

static bool n_started(void *p)
{
    return atomic_load(&started) >= (int)(intptr_t)p;
}

START_TEST(deadline_before_start)
{
    int r = -1;
    setenv("WEFT_OFFLOAD_THREADS", "1", 1);
    tt *t = tt_start(offload_blocked, (void *)5);
    ck_assert(wait_for(n_started, (void *)1, 10000));
    int64_t t0 = weft_now();
    ck_assert_rc(weft_offload(count_run, NULL, &r, weft_deadline_in(MS(50))),
                 -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(50), MS(2000));
    ck_assert_int_eq(atomic_load(&ran), 0);
    ck_assert_int_eq(r, -1);
    weft_event_set(&release_ev);
    ck_assert_int_eq(tt_join(t), 5);
    ck_assert_int_eq(atomic_load(&ran), 0); /* and never will */
    ck_assert_rc(weft_offload(count_run, NULL, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(atomic_load(&ran), 1);
    ck_assert_int_eq(weft__offload_threads(), 1);
}
END_TEST

static _Atomic bool returned;

static int offload_with_deadline(void *p)
{
    int r = -1;
    int rc = weft_offload(blocked_fn, p, &r, weft_deadline_in(MS(20)));
    atomic_store(&returned, true);
    return rc != 0 ? rc : r;
}

START_TEST(deadline_after_start_waits_for_fn)
{
    tt *t = tt_start(offload_with_deadline, (void *)9);
    ck_assert(wait_for(n_started, (void *)1, 10000));
    /* Well past the caller's deadline, fn still runs and the call waits. */
    (void)weft_sleep_until(weft_deadline_in(MS(100)));
    ck_assert(!atomic_load(&returned));
    weft_event_set(&release_ev);
    ck_assert_int_eq(tt_join(t), 9);
}
END_TEST

/* ---- cancellation (green callers) ------------------------------------- */

static int green_offload_count(void *p)
{
    int r = -1;
    (void)p;
    return weft_offload(count_run, NULL, &r, WEFT_FOREVER);
}

START_TEST(cancel_before_start)
{
    weft_green *g;
    int r = 0;
    setenv("WEFT_OFFLOAD_THREADS", "1", 1);
    tt *t = tt_start(offload_blocked, (void *)3);
    ck_assert(wait_for(n_started, (void *)1, 10000));
    ck_assert_rc(weft_green_spawn(&g, green_offload_count, NULL, NULL), 0);
    /* Whether g is already parked in offload or not yet there, it returns
     * -ECANCELED without fn running: the pool's one thread is held. */
    ck_assert_rc(weft_green_cancel(g), 0);
    ck_assert_rc(weft_green_join(g, &r, weft_deadline_in(MS(10000))), 0);
    ck_assert_rc(r, -ECANCELED);
    weft_event_set(&release_ev);
    ck_assert_int_eq(tt_join(t), 3);
    ck_assert_int_eq(atomic_load(&ran), 0);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

static int green_offload_then_wait(void *p)
{
    weft_event never = WEFT_EVENT_INIT;
    int r = -1;
    int rc = weft_offload(blocked_fn, p, &r, WEFT_FOREVER);
    if (rc != 0)
        return rc;
    if (r != 11)
        return -1000;
    /* The cancellation that came while fn ran is still pending. */
    return weft_event_wait(&never, weft_deadline_in(MS(10000)));
}

START_TEST(cancel_after_start_waits_for_fn)
{
    weft_green *g;
    int r = 0;
    ck_assert_rc(weft_green_spawn(&g, green_offload_then_wait, (void *)11,
                                  NULL), 0);
    ck_assert(wait_for(n_started, (void *)1, 10000));
    ck_assert_rc(weft_green_cancel(g), 0);
    ck_assert_rc(weft_green_join(g, &r, weft_deadline_in(MS(100))), -ETIMEDOUT);
    weft_event_set(&release_ev);
    ck_assert_rc(weft_green_join(g, &r, weft_deadline_in(MS(10000))), 0);
    ck_assert_rc(r, -ECANCELED);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

/* ---- green callers park, not their worker ----------------------------- */

static int set_release(void *p)
{
    (void)p;
    weft_event_set(&release_ev);
    return 0;
}

START_TEST(green_caller_parks_not_its_worker)
{
    weft_green *a, *b;
    int r = -1;
    /* No spare workers: if the offloading green thread held its worker, b
     * could never run and fn would wait for it forever (the joins time
     * out).  With spares allowed, a worker descheduled by a loaded host
     * for a switch interval brings one in, which proves nothing either
     * way. */
    setenv("WEFT_MAX_SPARES", "0", 1);
    ck_assert_rc(weft_runtime_start(1), 0);
    ck_assert_rc(weft_green_spawn(&a, offload_blocked, (void *)21, NULL), 0);
    ck_assert(wait_for(n_started, (void *)1, 10000));
    /* fn waits for b, which runs on the same (only) worker. */
    ck_assert_rc(weft_green_spawn(&b, set_release, NULL, NULL), 0);
    ck_assert_rc(weft_green_join(a, &r, weft_deadline_in(MS(10000))), 0);
    ck_assert_int_eq(r, 21);
    ck_assert_rc(weft_green_join(b, &r, weft_deadline_in(MS(10000))), 0);
    ck_assert_int_eq(weft__sched_spares_started(), 0);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

/* ---- many at once, and the bound -------------------------------------- */

#define PER_CALLER 50

static int many_calls(void *p)
{
    (void)p;
    for (int i = 0; i < PER_CALLER; i++) {
        int r = -1;
        if (weft_offload(count_run, NULL, &r, WEFT_FOREVER) != 0 || r != 7)
            return 1;
    }
    return 0;
}

START_TEST(many_concurrent_from_os_and_green)
{
    enum { NOS = 8, NGREEN = 16 };
    weft_green *g[NGREEN];
    int r;
    ck_assert_rc(weft_runtime_start(2), 0);
    for (int i = 0; i < NGREEN; i++)
        ck_assert_rc(weft_green_spawn(&g[i], many_calls, NULL, NULL), 0);
    ck_assert_int_eq(tt_run_n(NOS, many_calls, NULL, 0), 0);
    for (int i = 0; i < NGREEN; i++) {
        ck_assert_rc(weft_green_join(g[i], &r, weft_deadline_in(MS(20000))), 0);
        ck_assert_int_eq(r, 0);
    }
    ck_assert_int_eq(atomic_load(&ran), (NOS + NGREEN) * PER_CALLER);
    ck_assert_int_le(weft__offload_threads(), weft__offload_max());
    ck_assert_int_le(weft__offload_peak(), weft__offload_max());
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

static bool n_running(void *p)
{
    return atomic_load(&running) >= (int)(intptr_t)p;
}

START_TEST(pool_is_bounded)
{
    enum { N = 10 };
    tt *t[N];
    setenv("WEFT_OFFLOAD_THREADS", "3", 1);
    ck_assert_int_eq(weft__offload_max(), 3);
    for (int i = 0; i < N; i++)
        t[i] = tt_start(offload_blocked, (void *)(intptr_t)i);
    ck_assert(wait_for(n_running, (void *)3, 10000));
    int64_t end = weft_deadline_in(MS(100));
    while (weft_now() < end) {
        ck_assert_int_le(atomic_load(&running), 3);
        ck_assert_int_le(weft__offload_threads(), 3);
        (void)weft_sleep_until(weft_deadline_in(MS(5)));
    }
    weft_event_set(&release_ev);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(tt_join(t[i]), i);
    ck_assert_int_eq(atomic_load(&started), N);
    ck_assert_int_eq(weft__offload_peak(), 3);
    ck_assert_int_eq(weft__offload_threads(), 3);
}
END_TEST

START_TEST(bad_env_uses_default)
{
    setenv("WEFT_OFFLOAD_THREADS", "0", 1);
    ck_assert_int_eq(weft__offload_max(), 64);
}
END_TEST

static bool no_threads(void *p)
{
    (void)p;
    return weft__offload_threads() == 0;
}

START_TEST(idle_threads_exit)
{
    int r = 0;
    setenv("WEFT_OFFLOAD_IDLE_MS", "20", 1);
    ck_assert_rc(weft_offload(add_one, (void *)1, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 2);
    ck_assert(wait_for(no_threads, NULL, 10000));
    /* And the pool starts again. */
    ck_assert_rc(weft_offload(add_one, (void *)2, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 3);
}
END_TEST

static Suite *offload_suite(void)
{
    Suite *s = suite_create("offload");
    TCase *c = tcase_create("offload");
    tcase_set_timeout(c, 30);
    tcase_add_test(c, returns_fn_result);
    tcase_add_test(c, bad_arguments_and_past_deadline);
    tcase_add_test(c, deadline_before_start);
    tcase_add_test(c, deadline_after_start_waits_for_fn);
    tcase_add_test(c, cancel_before_start);
    tcase_add_test(c, cancel_after_start_waits_for_fn);
    tcase_add_test(c, green_caller_parks_not_its_worker);
    tcase_add_test(c, many_concurrent_from_os_and_green);
    tcase_add_test(c, pool_is_bounded);
    tcase_add_test(c, bad_env_uses_default);
    tcase_add_test(c, idle_threads_exit);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(offload_suite)
