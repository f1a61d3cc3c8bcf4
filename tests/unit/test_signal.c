/* test_signal.c - signals received as blocking calls (weft/signal.h):
 * green and OS waiters, counting, deadlines, cancellation, waiters with
 * different sets, a waiter woken while another green thread computes,
 * unwatch restoring the old action, every argument error, and the Ctrl-C
 * example stopped by a real SIGINT. */
#include "support.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/poller.h"
#include "weft.h"

static sigset_t one(int s)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, s);
    return set;
}

START_TEST(argument_errors)
{
    sigset_t set = one(SIGUSR1);
    ck_assert_rc(weft_signal_watch(0), -EINVAL);
    ck_assert_rc(weft_signal_watch(SIGKILL), -EINVAL);
    ck_assert_rc(weft_signal_watch(SIGSTOP), -EINVAL);
    ck_assert_rc(weft_signal_watch(65), -EINVAL);
    ck_assert_rc(weft_signal_unwatch(SIGUSR1), -EINVAL);
    ck_assert_rc(weft_signal_wait(NULL, WEFT_NOW), -EINVAL);
    ck_assert_rc(weft_signal_wait(&set, WEFT_NOW), -EINVAL); /* unwatched */
    ck_assert_int_eq(weft_signal_pending(SIGUSR1), 0);
    ck_assert_rc(weft_signal_watch(SIGUSR1), 0);
    ck_assert_rc(weft_signal_watch(SIGUSR1), -EALREADY);
    ck_assert_rc(weft_signal_wait(&set, WEFT_NOW), -ETIMEDOUT);
    ck_assert_rc(weft_signal_unwatch(SIGUSR1), 0);
    ck_assert_rc(weft_signal_unwatch(SIGUSR1), -EINVAL);
}
END_TEST

START_TEST(deliveries_are_counted)
{
    sigset_t set = one(SIGUSR1);
    ck_assert_rc(weft_signal_watch(SIGUSR1), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(raise(SIGUSR1), 0); /* delivered before it returns */
    ck_assert_int_eq(weft_signal_pending(SIGUSR1), 3);
    for (int i = 0; i < 3; i++)
        ck_assert_rc(weft_signal_wait(&set, WEFT_NOW), SIGUSR1);
    ck_assert_rc(weft_signal_wait(&set, weft_deadline_in(MS(20))), -ETIMEDOUT);
}
END_TEST

struct waiter {
    sigset_t set;
    int64_t deadline;
    int got;
};

static int green_wait(void *p)
{
    struct waiter *w = p;
    w->got = weft_signal_wait(&w->set, w->deadline);
    return 0;
}

static void wait_waiters(long n)
{
    int64_t until = weft_deadline_in(MS(10000));
    while (weft__poller_waiters() < n && weft_now() < until)
        (void)weft_sleep_until(weft_deadline_in(MS(1)));
    ck_assert_int_ge(weft__poller_waiters(), n);
}

START_TEST(green_waiter_woken_by_kill)
{
    struct waiter w = {.set = one(SIGUSR2), .deadline = WEFT_FOREVER};
    weft_green *g;
    ck_assert_rc(weft_signal_watch(SIGUSR2), 0);
    ck_assert_rc(weft_green_spawn(&g, green_wait, &w, NULL), 0);
    wait_waiters(1);
    ck_assert_int_eq(kill(getpid(), SIGUSR2), 0);
    ck_assert_rc(weft_green_join(g, NULL, weft_deadline_in(MS(10000))), 0);
    ck_assert_int_eq(w.got, SIGUSR2);
}
END_TEST

static int kill_self(void *p)
{
    return kill(getpid(), (int)(intptr_t)p);
}

START_TEST(os_waiter_woken)
{
    sigset_t set = one(SIGUSR1);
    ck_assert_rc(weft_signal_watch(SIGUSR1), 0);
    /* Started the runtime (first wait) and parked; another OS thread
     * sends it. */
    tt *t = tt_start(kill_self, (void *)(intptr_t)SIGUSR1);
    ck_assert_rc(weft_signal_wait(&set, weft_deadline_in(MS(10000))), SIGUSR1);
    ck_assert_int_eq(tt_join(t), 0);
    /* Again, now with the runtime idle and this thread sure to be parked
     * before the signal: a green thread sends it once we wait. */
    struct waiter w = {.set = set, .deadline = weft_deadline_in(MS(10000))};
    weft_green *g;
    ck_assert_rc(weft_green_spawn(&g, green_wait, &w, NULL), 0);
    wait_waiters(1);
    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
    ck_assert_rc(weft_green_join(g, NULL, weft_deadline_in(MS(10000))), 0);
    ck_assert_int_eq(w.got, SIGUSR1);
}
END_TEST

START_TEST(deadline_and_cancel)
{
    struct waiter w = {.set = one(SIGUSR1), .deadline = 0};
    weft_green *g;
    ck_assert_rc(weft_signal_watch(SIGUSR1), 0);
    int64_t t0 = weft_now();
    w.deadline = weft_deadline_in(MS(40));
    ck_assert_rc(weft_green_spawn(&g, green_wait, &w, NULL), 0);
    ck_assert_rc(weft_green_join(g, NULL, weft_deadline_in(MS(10000))), 0);
    ck_assert_rc(w.got, -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(40), MS(3000));
    w.deadline = WEFT_FOREVER;
    ck_assert_rc(weft_green_spawn(&g, green_wait, &w, NULL), 0);
    wait_waiters(1);
    ck_assert_rc(weft_green_cancel(g), 0);
    ck_assert_rc(weft_green_join(g, NULL, weft_deadline_in(MS(10000))), 0);
    ck_assert_rc(w.got, -ECANCELED);
    ck_assert_int_eq(weft__poller_waiters(), 0);
}
END_TEST

START_TEST(waiters_with_different_sets)
{
    struct waiter a = {.set = one(SIGUSR1), .deadline = WEFT_FOREVER},
                  b = {.set = one(SIGUSR2), .deadline = WEFT_FOREVER};
    weft_green *ga, *gb;
    ck_assert_rc(weft_signal_watch(SIGUSR1), 0);
    ck_assert_rc(weft_signal_watch(SIGUSR2), 0);
    ck_assert_rc(weft_green_spawn(&ga, green_wait, &a, NULL), 0);
    ck_assert_rc(weft_green_spawn(&gb, green_wait, &b, NULL), 0);
    wait_waiters(2);
    ck_assert_int_eq(kill(getpid(), SIGUSR2), 0);
    ck_assert_rc(weft_green_join(gb, NULL, weft_deadline_in(MS(10000))), 0);
    ck_assert_int_eq(b.got, SIGUSR2);
    ck_assert_rc(weft_green_join(ga, NULL, WEFT_NOW), -ETIMEDOUT);
    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
    ck_assert_rc(weft_green_join(ga, NULL, weft_deadline_in(MS(10000))), 0);
    ck_assert_int_eq(a.got, SIGUSR1);
}
END_TEST

static _Atomic int custom;

static void handler(int s)
{
    (void)s;
    atomic_fetch_add(&custom, 1);
}

START_TEST(unwatch_wakes_waiter_and_restores_action)
{
    struct sigaction sa = {0}, old;
    struct waiter w = {.set = one(SIGUSR1), .deadline = WEFT_FOREVER};
    weft_green *g;
    sa.sa_handler = handler;
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old), 0);
    ck_assert_rc(weft_signal_watch(SIGUSR1), 0);
    ck_assert_rc(weft_green_spawn(&g, green_wait, &w, NULL), 0);
    wait_waiters(1);
    ck_assert_rc(weft_signal_unwatch(SIGUSR1), 0);
    ck_assert_rc(weft_green_join(g, NULL, weft_deadline_in(MS(10000))), 0);
    ck_assert_rc(w.got, -EINVAL);
    ck_assert_int_eq(raise(SIGUSR1), 0);
    ck_assert_int_eq(atomic_load(&custom), 1);
}
END_TEST

static _Atomic int stop_compute;

static int compute(void *p)
{
    volatile unsigned long x = 0;
    (void)p;
    while (!atomic_load_explicit(&stop_compute, memory_order_relaxed))
        x++;
    return 0;
}

START_TEST(waiter_runs_while_another_computes)
{
    struct waiter w = {.set = one(SIGINT), .deadline = WEFT_FOREVER};
    weft_green *c, *g;
    ck_assert_rc(weft_runtime_start(2), 0);
    ck_assert_rc(weft_signal_watch(SIGINT), 0);
    ck_assert_rc(weft_green_spawn(&c, compute, NULL, NULL), 0);
    ck_assert_rc(weft_green_spawn(&g, green_wait, &w, NULL), 0);
    wait_waiters(1);
    ck_assert_int_eq(kill(getpid(), SIGINT), 0);
    ck_assert_rc(weft_green_join(g, NULL, weft_deadline_in(MS(10000))), 0);
    ck_assert_int_eq(w.got, SIGINT);
    atomic_store(&stop_compute, 1);
    ck_assert_rc(weft_green_join(c, NULL, weft_deadline_in(MS(10000))), 0);
}
END_TEST

/* The example, stopped by a real SIGINT once it says it is ready. */
START_TEST(ctrl_c_example_stops_cleanly)
{
    const char *dir = getenv("WEFT_EXAMPLES_DIR");
    char path[4096], out[4096];
    int fds[2];
    ck_assert_msg(dir != NULL, "WEFT_EXAMPLES_DIR is not set");
    snprintf(path, sizeof path, "%s/green_ctrl_c", dir);
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        execl(path, path, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t k;
    bool signalled = false;
    while ((k = weft_read(fds[0], out + n, sizeof out - 1 - n,
                          weft_deadline_in(MS(20000)))) > 0) {
        n += (size_t)k;
        out[n] = '\0';
        if (!signalled && strstr(out, "ready")) {
            ck_assert_int_eq(kill(pid, SIGINT), 0);
            signalled = true;
        }
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(signalled, "never ready: %s", out);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", out);
    ck_assert_msg(strstr(out, "stopped by SIGINT after finding"), "%s", out);
    weft_close(fds[0]);
}
END_TEST

static Suite *signal_suite(void)
{
    Suite *s = suite_create("signal");
    TCase *tc = tcase_create("signal");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, argument_errors);
    tcase_add_test(tc, deliveries_are_counted);
    tcase_add_test(tc, green_waiter_woken_by_kill);
    tcase_add_test(tc, os_waiter_woken);
    tcase_add_test(tc, deadline_and_cancel);
    tcase_add_test(tc, waiters_with_different_sets);
    tcase_add_test(tc, unwatch_wakes_waiter_and_restores_action);
    tcase_add_test(tc, waiter_runs_while_another_computes);
    tcase_add_test(tc, ctrl_c_example_stops_cleanly);
    suite_add_tcase(s, tc);
    return s;
}

TEST_MAIN(signal_suite)
