/* test_monitor.c - the monitor and the hand-off to spare workers: selfish
 * green threads all advance (one and two workers), a green thread stuck in
 * a blocking system call does not hold up the others on its worker, a long
 * computation does not stop a green client from getting answers from an OS
 * thread, spares go back to rest when the hog ends and stop at shutdown,
 * the bound on spares, the warning and its contents, and the switch
 * interval's API and environment variable.
 *
 * Every test observes progress, never timing: the main thread waits for a
 * condition in a loop bounded by a generous deadline (wait_for). */
#include "support.h"

#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "green/green.h"
#include "green/monitor.h"

/* Wait until cond(arg) holds, for at most ms (stretched under sanitizers);
 * returns whether it held.  Looks every millisecond. */
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

/* ---- selfish green threads -------------------------------------------- */

#define NSELFISH 5

static atomic_bool stop;
static _Atomic unsigned long counter[NSELFISH];

static int selfish(void *p)
{
    _Atomic unsigned long *c = p;
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    return 0;
}

static bool all_advanced(void *p)
{
    int n = (int)(intptr_t)p;
    for (int i = 0; i < n; i++)
        if (atomic_load(&counter[i]) == 0)
            return false;
    return true;
}

static void run_selfish(int workers, int n)
{
    weft_green *g[NSELFISH];
    ck_assert_rc(weft_runtime_start(workers), 0);
    for (int i = 0; i < n; i++)
        ck_assert_rc(weft_green_spawn(&g[i], selfish, &counter[i], NULL), 0);
    ck_assert_msg(wait_for(all_advanced, (void *)(intptr_t)n, 10000),
                  "not every selfish green thread advanced");
    ck_assert_int_le(weft__sched_spares_started(), weft__sched_spares_max());
    atomic_store(&stop, true);
    for (int i = 0; i < n; i++)
        ck_assert_rc(weft_green_join(g[i], NULL, weft_deadline_in(MS(10000))), 0);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
    ck_assert_int_eq(weft__sched_spares_started(), 0);
}

START_TEST(selfish_all_advance_two_workers)
{
    run_selfish(2, NSELFISH);
}
END_TEST

START_TEST(selfish_all_advance_one_worker)
{
    run_selfish(1, NSELFISH);
}
END_TEST

/* ---- a blocking system call ------------------------------------------- */

static int pipefd[2];
static atomic_bool blocking;
static _Atomic long ticks;

static int ticker(void *p)
{
    (void)p;
    while (!atomic_load(&stop)) {
        atomic_fetch_add(&ticks, 1);
        ck_assert_rc(weft_green_yield(), 0);
    }
    return 0;
}

/* Spawns the ticker (queued behind it on the one worker), then blocks its
 * worker in poll(2) until the pipe has data. */
static int blocker(void *p)
{
    struct pollfd pfd = {pipefd[0], POLLIN, 0};
    weft_green **t = p;
    char c;

    if (weft_green_spawn(t, ticker, NULL, NULL) != 0)
        return -1;
    atomic_store(&blocking, true);
    if (poll(&pfd, 1, -1) != 1 || read(pipefd[0], &c, 1) != 1)
        return -2;
    return weft__green_worker_id() >= 0 ? 0 : -3;
}

static bool ticked_enough(void *p)
{
    (void)p;
    return atomic_load(&ticks) >= 1000;
}

START_TEST(blocking_call_hands_off_queue)
{
    weft_green *b, *t = NULL;
    int r = -1;
    ck_assert_int_eq(pipe(pipefd), 0);
    ck_assert_rc(weft_runtime_start(1), 0);
    ck_assert_rc(weft_green_spawn(&b, blocker, &t, NULL), 0);
    ck_assert_msg(wait_for(ticked_enough, NULL, 10000),
                  "the green thread behind a blocked one made no progress "
                  "(%ld ticks)", atomic_load(&ticks));
    ck_assert(atomic_load(&blocking));
    ck_assert_int_ge(weft__sched_spares_started(), 1);
    ck_assert_int_eq(write(pipefd[1], "x", 1), 1);
    ck_assert_rc(weft_green_join(b, &r, weft_deadline_in(MS(10000))), 0);
    ck_assert_int_eq(r, 0);
    atomic_store(&stop, true);
    ck_assert_rc(weft_green_join(t, NULL, weft_deadline_in(MS(10000))), 0);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
    close(pipefd[0]);
    close(pipefd[1]);
}
END_TEST

/* ---- a long computation and a client served by an OS thread ----------- */

static weft_queue *req, *ans;
static atomic_bool computing;
static _Atomic long answers_during;

static int server(void *p)
{
    void *item;
    (void)p;
    while (weft_queue_get(req, &item, WEFT_FOREVER) == 0) {
        if (item == NULL)
            return 0;
        if (weft_queue_put(ans, item, WEFT_FOREVER) != 0)
            return -1;
    }
    return -2;
}

static int client(void *p)
{
    void *item;
    (void)p;
    for (intptr_t i = 1; !atomic_load(&stop); i++) {
        if (weft_queue_put(req, (void *)i, WEFT_FOREVER) != 0)
            return -1;
        if (weft_queue_get(ans, &item, WEFT_FOREVER) != 0 || item != (void *)i)
            return -2;
        if (atomic_load(&computing))
            atomic_fetch_add(&answers_during, 1);
    }
    return 0;
}

static int computation(void *p)
{
    int64_t end = weft_now() + 2 * WEFT_NSEC_PER_SEC;
    volatile unsigned long x = 0;
    (void)p;
    atomic_store(&computing, true);
    while (weft_now() < end)
        for (int i = 0; i < 1000; i++)
            x = x * 31 + (unsigned long)i;
    atomic_store(&computing, false);
    return 0;
}

START_TEST(computation_does_not_stop_client)
{
    weft_green *c, *k;
    tt *srv;
    int r = -1;
    ck_assert_rc(weft_queue_create(&req, WEFT_QUEUE_FIFO, 0), 0);
    ck_assert_rc(weft_queue_create(&ans, WEFT_QUEUE_FIFO, 0), 0);
    srv = tt_start(server, NULL);
    ck_assert_rc(weft_runtime_start(1), 0);
    ck_assert_rc(weft_green_spawn(&c, client, NULL, NULL), 0);
    ck_assert_rc(weft_green_spawn(&k, computation, NULL, NULL), 0);
    ck_assert_rc(weft_green_join(k, &r, weft_deadline_in(MS(30000))), 0);
    ck_assert_int_eq(r, 0);
    /* Answers kept coming while the worker was held for two seconds. */
    ck_assert_int_ge(atomic_load(&answers_during), 20);
    atomic_store(&stop, true);
    ck_assert_rc(weft_green_join(c, &r, weft_deadline_in(MS(10000))), 0);
    ck_assert_int_eq(r, 0);
    ck_assert_rc(weft_queue_put(req, NULL, WEFT_FOREVER), 0);
    ck_assert_int_eq(tt_join(srv), 0);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
    ck_assert_rc(weft_queue_destroy(req, NULL), 0);
    ck_assert_rc(weft_queue_destroy(ans, NULL), 0);
}
END_TEST

/* ---- spares rest when the hog ends ------------------------------------ */

static bool spare_active(void *p)
{
    (void)p;
    return weft__sched_spares_active() > 0;
}

static bool no_spare_active(void *p)
{
    (void)p;
    return weft__sched_spares_active() == 0;
}

static atomic_bool hog_stop;

static int hog(void *p)
{
    (void)p;
    while (!atomic_load_explicit(&hog_stop, memory_order_relaxed))
        ;
    return 0;
}

START_TEST(spares_rest_after_hog)
{
    weft_green *h, *t;
    ck_assert_rc(weft_runtime_start(1), 0);
    ck_assert_int_eq(weft__sched_spares_started(), 0);
    ck_assert_rc(weft_green_spawn(&h, hog, NULL, NULL), 0);
    ck_assert_rc(weft_green_spawn(&t, ticker, NULL, NULL), 0);
    ck_assert(wait_for(ticked_enough, NULL, 10000));
    ck_assert(wait_for(spare_active, NULL, 10000));
    /* The hog ends: the ticker goes back to the regular worker and the
     * spare rests, though the ticker never stops yielding. */
    atomic_store(&hog_stop, true);
    ck_assert_rc(weft_green_join(h, NULL, weft_deadline_in(MS(10000))), 0);
    ck_assert_msg(wait_for(no_spare_active, NULL, 10000),
                  "%d spares still active", weft__sched_spares_active());
    long before = atomic_load(&ticks);
    ck_assert(wait_for(ticked_enough, NULL, 10000));
    ck_assert_int_ge(weft__sched_spares_started(), 1);
    atomic_store(&stop, true);
    ck_assert_rc(weft_green_join(t, NULL, weft_deadline_in(MS(10000))), 0);
    ck_assert_int_ge(atomic_load(&ticks), before);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
    ck_assert_int_eq(weft__sched_spares_started(), 0);
    ck_assert_int_eq(weft__sched_spares_active(), 0);
    ck_assert_int_eq(weft__sched_spares_max(), 0);
    /* The runtime starts again, with its spares. */
    atomic_store(&hog_stop, false);
    atomic_store(&stop, false);
    atomic_store(&ticks, 0);
    ck_assert_rc(weft_runtime_start(1), 0);
    ck_assert_rc(weft_green_spawn(&h, hog, NULL, NULL), 0);
    ck_assert_rc(weft_green_spawn(&t, ticker, NULL, NULL), 0);
    ck_assert(wait_for(ticked_enough, NULL, 10000));
    atomic_store(&hog_stop, true);
    atomic_store(&stop, true);
    ck_assert_rc(weft_green_join(h, NULL, weft_deadline_in(MS(10000))), 0);
    ck_assert_rc(weft_green_join(t, NULL, weft_deadline_in(MS(10000))), 0);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

START_TEST(spares_are_bounded)
{
    weft_green *g[NSELFISH];
    setenv("WEFT_MAX_SPARES", "1", 1);
    ck_assert_rc(weft_runtime_start(1), 0);
    ck_assert_int_eq(weft__sched_spares_max(), 1);
    for (int i = 0; i < 3; i++)
        ck_assert_rc(weft_green_spawn(&g[i], selfish, &counter[i], NULL), 0);
    /* Two of the three get an OS thread (the worker and the one spare). */
    ck_assert(wait_for(spare_active, NULL, 10000));
    int64_t end = weft_deadline_in(MS(300));
    while (weft_now() < end) {
        ck_assert_int_le(weft__sched_spares_started(), 1);
        (void)weft_sleep_until(weft_deadline_in(MS(5)));
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 3; i++)
        ck_assert_rc(weft_green_join(g[i], NULL, weft_deadline_in(MS(10000))), 0);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

START_TEST(default_spare_bound)
{
    unsetenv("WEFT_MAX_SPARES");
    ck_assert_rc(weft_runtime_start(1), 0);
    ck_assert_int_eq(weft__sched_spares_max(), 8);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
    ck_assert_rc(weft_runtime_start(3), 0);
    ck_assert_int_eq(weft__sched_spares_max(), 12);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

/* ---- the warning ------------------------------------------------------ */

static int count_in(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p++)
        n++;
    return n;
}

START_TEST(warning_names_the_hog)
{
    char path[] = "/tmp/weft-test-monitor-XXXXXX";
    char buf[1 << 14], want[128];
    weft_green_opts o = {"hog-me", 0};
    weft_green *h, *t;
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_rc(weft_log_set_file(path), 0);
    ck_assert_rc(weft_runtime_start(1), 0);
    ck_assert_rc(weft_green_spawn(&h, hog, NULL, &o), 0);
    ck_assert_rc(weft_green_spawn(&t, ticker, NULL, NULL), 0);
    ck_assert(wait_for(ticked_enough, NULL, 10000));
    ck_assert(wait_for(spare_active, NULL, 10000));
    atomic_store(&hog_stop, true);
    atomic_store(&stop, true);
    ck_assert_rc(weft_green_join(h, NULL, weft_deadline_in(MS(10000))), 0);
    ck_assert_rc(weft_green_join(t, NULL, weft_deadline_in(MS(10000))), 0);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
    ck_assert_rc(weft_log_set_fd(-1), 0);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    unlink(path);
    snprintf(want, sizeof want, "green thread hog-me (id %llu, spawned at "
             "tests/unit/test_monitor.c:",
             (unsigned long long)1);
    ck_assert_msg(strstr(buf, "WARNING") && strstr(buf, "[weft-monitor]"),
                  "%s", buf);
    ck_assert_msg(strstr(buf, want), "%s", buf);
    ck_assert_msg(strstr(buf, "held worker 0 for "), "%s", buf);
    ck_assert_msg(strstr(buf, "without yielding"), "%s", buf);
    /* One warning for the one episode. */
    ck_assert_int_eq(count_in(buf, "hog-me"), 1);
}
END_TEST

/* ---- the switch interval ---------------------------------------------- */

START_TEST(switch_interval_api)
{
    unsetenv("WEFT_SWITCH_INTERVAL_MS");
    ck_assert_int_eq(weft_runtime_switch_interval(), MS(10));
    ck_assert_rc(weft_runtime_set_switch_interval(0), -EINVAL);
    ck_assert_rc(weft_runtime_set_switch_interval(-1), -EINVAL);
    ck_assert_rc(weft_runtime_set_switch_interval(MS(1) - 1), -EINVAL);
    ck_assert_rc(weft_runtime_set_switch_interval(3601 * WEFT_NSEC_PER_SEC),
                 -EINVAL);
    ck_assert_int_eq(weft_runtime_switch_interval(), MS(10));
    ck_assert_rc(weft_runtime_set_switch_interval(MS(1)), 0);
    ck_assert_int_eq(weft_runtime_switch_interval(), MS(1));
    ck_assert_rc(weft_runtime_set_switch_interval(3600 * WEFT_NSEC_PER_SEC), 0);
    ck_assert_int_eq(weft_runtime_switch_interval(), 3600 * WEFT_NSEC_PER_SEC);
    ck_assert_rc(weft_runtime_set_switch_interval(MS(25)), 0);
    ck_assert_int_eq(weft_runtime_switch_interval(), MS(25));
}
END_TEST

START_TEST(switch_interval_from_env)
{
    setenv("WEFT_SWITCH_INTERVAL_MS", "40", 1);
    ck_assert_int_eq(weft_runtime_switch_interval(), MS(40));
}
END_TEST

START_TEST(switch_interval_bad_env)
{
    (void)weft_log_set_level(WEFT_LOG_CRITICAL);
    setenv("WEFT_SWITCH_INTERVAL_MS", "ten", 1);
    ck_assert_int_eq(weft_runtime_switch_interval(), MS(10));
}
END_TEST

/* A long interval: a hog shorter than it is left alone. */
START_TEST(long_interval_sends_no_spare)
{
    weft_green *h, *t;
    ck_assert_rc(weft_runtime_set_switch_interval(3600 * WEFT_NSEC_PER_SEC), 0);
    ck_assert_rc(weft_runtime_start(1), 0);
    ck_assert_rc(weft_green_spawn(&h, hog, NULL, NULL), 0);
    ck_assert_rc(weft_green_spawn(&t, ticker, NULL, NULL), 0);
    int64_t end = weft_deadline_in(MS(200));
    while (weft_now() < end)
        (void)weft_sleep_until(weft_deadline_in(MS(5)));
    ck_assert_int_eq(weft__sched_spares_started(), 0);
    ck_assert_int_eq(atomic_load(&ticks), 0); /* queued behind the hog */
    atomic_store(&stop, true);
    atomic_store(&hog_stop, true);
    ck_assert_rc(weft_green_join(h, NULL, weft_deadline_in(MS(10000))), 0);
    ck_assert_rc(weft_green_join(t, NULL, weft_deadline_in(MS(10000))), 0);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

START_TEST(monitor_ensure_and_kick)
{
    weft__monitor_kick(); /* nobody to wake yet: harmless */
    ck_assert_rc(weft__monitor_ensure(), 0);
    ck_assert_rc(weft__monitor_ensure(), 0);
    weft__monitor_kick();
    weft__monitor_kick();
    /* Without a runtime the monitor finds nothing to watch. */
    ck_assert(!weft__sched_watch(weft_now(), MS(10)));
    ck_assert_int_eq(weft__sched_spares_max(), 0);
}
END_TEST

static Suite *monitor_suite(void)
{
    Suite *s = suite_create("monitor");
    TCase *c = tcase_create("monitor");
    tcase_set_timeout(c, 30);
    tcase_add_test(c, selfish_all_advance_two_workers);
    tcase_add_test(c, selfish_all_advance_one_worker);
    tcase_add_test(c, blocking_call_hands_off_queue);
    tcase_add_test(c, computation_does_not_stop_client);
    tcase_add_test(c, spares_rest_after_hog);
    tcase_add_test(c, spares_are_bounded);
    tcase_add_test(c, default_spare_bound);
    tcase_add_test(c, warning_names_the_hog);
    tcase_add_test(c, switch_interval_api);
    tcase_add_test(c, switch_interval_from_env);
    tcase_add_test(c, switch_interval_bad_env);
    tcase_add_test(c, long_interval_sends_no_spare);
    tcase_add_test(c, monitor_ensure_and_kick);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(monitor_suite)
