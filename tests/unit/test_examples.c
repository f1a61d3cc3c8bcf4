/* test_examples.c - the example programs run and say what they must.
 *
 * Each example checks its own result and exits 0 only when it is right; the
 * tests also look for the lines that carry the result, so an example that
 * silently stopped checking would be noticed.  The examples are found in
 * WEFT_EXAMPLES_DIR (set by make test).
 */
#include "support.h"

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

/* Run an example with args, capture stdout+stderr (up to cap bytes). */
static int run_example(const char *cmd_args, char *out, size_t cap)
{
    const char *dir = getenv("WEFT_EXAMPLES_DIR");
    char cmd[4096];
    ck_assert_msg(dir != NULL, "WEFT_EXAMPLES_DIR is not set");
    snprintf(cmd, sizeof cmd, "%s/%s 2>&1", dir, cmd_args);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    int status = pclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char out[1 << 16];

START_TEST(counter_total_is_exact)
{
    ck_assert_int_eq(run_example("counter 8 20000", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "Counter: 4\n"), "%s", out);
    ck_assert_msg(strstr(out, "Counter: 160000 (expected 160000)"), "%s", out);
    ck_assert_msg(strstr(out, "worker-1") && strstr(out, "worker-2"), "%s", out);
}
END_TEST

START_TEST(hasher_lock_applies_every_hash)
{
    ck_assert_int_eq(run_example("hasher 3", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "every run applied every hash"), "%s", out);
    ck_assert_msg(strstr(out, "lost updates over all runs:"), "%s", out);
}
END_TEST

START_TEST(producer_consumer_delivers_everything)
{
    ck_assert_int_eq(run_example("producer_consumer 50", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "every message delivered exactly once"), "%s", out);
    ck_assert_msg(strstr(out, "[producer] Producer received event"), "%s", out);
    ck_assert_msg(strstr(out, "[consumer] Consumer: queue shut down"), "%s", out);
    ck_assert_msg(strstr(out, "left in queue 0"), "%s", out);
}
END_TEST

START_TEST(barrier_releases_together)
{
    ck_assert_int_eq(run_example("barrier 6", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "every thread released together, every round"),
                  "%s", out);
    ck_assert_msg(strstr(out, "round 3: all 6 ready"), "%s", out);
}
END_TEST

START_TEST(connection_pool_is_bounded)
{
    ck_assert_int_eq(run_example("connection_pool 8 3", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "made 40 requests"), "%s", out);
    ck_assert_msg(strstr(out, "at most 3 in use at once"), "%s", out);
    ck_assert_msg(strstr(out, "EOVERFLOW"), "%s", out);
}
END_TEST

START_TEST(logging_names_threads)
{
    ck_assert_int_eq(run_example("logging_threads", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "[reader] step 3 of 3 done"), "%s", out);
    ck_assert_msg(strstr(out, "[parser] step 1 of 3 done"), "%s", out);
    ck_assert_msg(strstr(out, "[writer] step 2 of 3 done"), "%s", out);
    ck_assert_msg(strstr(out, "[MainThread] starting 3 workers"), "%s", out);
    ck_assert_msg(strstr(out, "[Dummy-"), "%s", out);
    ck_assert_msg(!strstr(out, "doing some work"), "debug lines leaked: %s", out);
}
END_TEST

START_TEST(logging_debug_level_from_env)
{
    ck_assert_int_eq(run_example("logging_threads", out, sizeof out), 0);
    setenv("WEFT_LOG_LEVEL", "debug", 1);
    ck_assert_int_eq(run_example("logging_threads", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "DEBUG") && strstr(out, "doing some work"),
                  "%s", out);
}
END_TEST

START_TEST(quickstart_from_readme_runs)
{
    ck_assert_int_eq(run_example("quickstart", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "[consumer] got 1\n"), "%s", out);
    ck_assert_msg(strstr(out, "[consumer] got 100\n"), "%s", out);
    ck_assert_msg(strstr(out, "consumer: success"), "%s", out);
}
END_TEST

START_TEST(green_sleepers_all_wake)
{
    ck_assert_int_eq(run_example("green_sleepers 2000 50", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "2000 of 2000 green threads slept 50 ms"), "%s",
                  out);
}
END_TEST

START_TEST(green_agent_applies_every_update)
{
    ck_assert_int_eq(run_example("green_agent 1500 6", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "processed 1500 of 1500 updates (1500 dispatched), "
                              "0 resources wrong"), "%s", out);
    ck_assert_msg(strstr(out, "(pool size 6)"), "%s", out);
    ck_assert_msg(strstr(out, "in network order, every revision current"),
                  "%s", out);
    ck_assert_msg(strstr(out, "agent: every update applied exactly once"),
                  "%s", out);
}
END_TEST

START_TEST(green_mixed_queue_delivers_everything)
{
    ck_assert_int_eq(run_example("green_mixed_queue 5000", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "20000 items from 2 OS and 2 green producers"),
                  "%s", out);
    ck_assert_msg(strstr(out, "lost 0, duplicated 0, left in queue 0"), "%s",
                  out);
    ck_assert_msg(strstr(out, "every item delivered exactly once"), "%s", out);
}
END_TEST

START_TEST(green_selfish_every_counter_advances)
{
    ck_assert_int_eq(run_example("green_selfish 300", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "5 of 5 counters advanced"), "%s", out);
    ck_assert_msg(strstr(out, "without yielding"), "%s", out);
    setenv("WEFT_WORKERS", "1", 1);
    ck_assert_int_eq(run_example("green_selfish 300", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "on 1 worker(s)"), "%s", out);
    ck_assert_msg(strstr(out, "5 of 5 counters advanced"), "%s", out);
}
END_TEST

/* test_echo.c runs these two harder (more clients, more connections). */
START_TEST(green_echo_runs)
{
    ck_assert_int_eq(run_example("green_echo", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "echoed 20 lines (12448 bytes) for 4 clients, "
                              "every byte as sent"), "%s", out);
}
END_TEST

START_TEST(green_idle_connections_runs)
{
    ck_assert_int_eq(run_example("green_idle_connections 200", out,
                                 sizeof out), 0);
    ck_assert_msg(strstr(out, "held 200 idle connections"), "%s", out);
    ck_assert_msg(strstr(out, "200 of 200 connections closed cleanly"), "%s",
                  out);
}
END_TEST

START_TEST(downloader_gets_every_page)
{
    ck_assert_int_eq(run_example("downloader", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "every page arrived whole; the bad URLs failed "
                              "with their reasons"), "%s", out);
    ck_assert_msg(strstr(out, "HTTP 404"), "%s", out);
}
END_TEST

START_TEST(executor_pipeline_delivers_every_result)
{
    ck_assert_int_eq(run_example("executor_pipeline", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "every result arrived"), "%s", out);
}
END_TEST

START_TEST(process_examples_run)
{
    ck_assert_int_eq(run_example("process_fib", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "OK: 10 of 10 results match"), "%s", out);
    ck_assert_int_eq(run_example("process_crash", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "child processes left after destroy: 0"), "%s",
                  out);
}
END_TEST

static Suite *examples_suite(void)
{
    Suite *s = suite_create("examples");
    TCase *c = tcase_create("examples");
    tcase_set_timeout(c, 60);
    tcase_add_test(c, counter_total_is_exact);
    tcase_add_test(c, hasher_lock_applies_every_hash);
    tcase_add_test(c, producer_consumer_delivers_everything);
    tcase_add_test(c, barrier_releases_together);
    tcase_add_test(c, connection_pool_is_bounded);
    tcase_add_test(c, logging_names_threads);
    tcase_add_test(c, logging_debug_level_from_env);
    tcase_add_test(c, quickstart_from_readme_runs);
    tcase_add_test(c, green_sleepers_all_wake);
    tcase_add_test(c, green_agent_applies_every_update);
    tcase_add_test(c, green_mixed_queue_delivers_everything);
    tcase_add_test(c, green_selfish_every_counter_advances);
    tcase_add_test(c, green_echo_runs);
    tcase_add_test(c, green_idle_connections_runs);
    tcase_add_test(c, downloader_gets_every_page);
    tcase_add_test(c, executor_pipeline_delivers_every_result);
    tcase_add_test(c, process_examples_run);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(examples_suite)
