/* test_executor.c - the thread pool and the green executor: results and
 * failures (with weft_task_fail's message), lazy start and reuse of idle
 * workers, the bound on workers, names, initializers (a failing one breaks
 * the executor), bounded queues, shutdown (waiting, cancelling pending,
 * submit after, from a worker, two at once), the exit policy (a non-daemon pool lets
 * its queued work finish at exit; a daemon pool does not hold the exit),
 * map (order, laziness, failures, early end), and 100,000 futures. */
#include "support.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef int (*create_fn)(weft_executor **, const weft_executor_opts *);

/* Each test runs once over OS threads and once over green threads. */
static create_fn kind(int i)
{
    return i == 0 ? weft_thread_pool_create : weft_green_executor_create;
}

static void start_kind(int i)
{
    if (i == 1)
        ck_assert_rc(weft_runtime_start(2), 0);
}

static void end_kind(int i)
{
    if (i == 1)
        ck_assert_rc(weft_runtime_shutdown(WEFT_FOREVER), 0);
}

static int add_one(void *arg, void **result)
{
    *result = (void *)((intptr_t)arg + 1);
    return 0;
}

static int fail_with_message(void *arg, void **result)
{
    (void)result;
    return weft_task_fail(-ENOENT, "no item %d", (int)(intptr_t)arg);
}

static int fail_plain(void *arg, void **result)
{
    return -EIO;
}

START_TEST(results_and_failures)
{
    start_kind(_i);
    weft_executor *ex;
    ck_assert_rc(kind(_i)(&ex, NULL), 0);
    ck_assert_int_eq(weft_executor_workers(ex), 0); /* lazy */
    enum { N = 200 };
    weft_future *fs[N];
    for (int i = 0; i < N; i++)
        ck_assert_rc(weft_executor_submit(ex, add_one, (void *)(intptr_t)i,
                                          &fs[i], WEFT_FOREVER), 0);
    for (int i = 0; i < N; i++) {
        void *v;
        ck_assert_rc(weft_future_result(fs[i], &v, WEFT_FOREVER), 0);
        ck_assert_int_eq((intptr_t)v, i + 1);
        weft_future_release(fs[i]);
    }
    weft_future *f;
    ck_assert_rc(weft_executor_submit(ex, fail_with_message, (void *)5, &f,
                                      WEFT_FOREVER), 0);
    ck_assert_rc(weft_future_result(f, NULL, WEFT_FOREVER), WEFT_EFAILED);
    int code;
    const char *msg;
    ck_assert_rc(weft_future_error(f, &code, &msg, WEFT_NOW), 0);
    ck_assert_int_eq(code, -ENOENT);
    ck_assert_str_eq(msg, "no item 5");
    weft_future_release(f);
    ck_assert_rc(weft_executor_submit(ex, fail_plain, NULL, &f,
                                      WEFT_FOREVER), 0);
    ck_assert_rc(weft_future_error(f, &code, &msg, WEFT_FOREVER), 0);
    ck_assert_int_eq(code, -EIO);
    ck_assert_str_eq(msg, weft_strerror(-EIO));
    weft_future_release(f);
    ck_assert_rc(weft_executor_submit(ex, NULL, NULL, &f, WEFT_FOREVER),
                 -EINVAL);
    ck_assert_rc(weft_executor_submit(NULL, add_one, NULL, &f, WEFT_FOREVER),
                 -EINVAL);
    ck_assert_rc(weft_executor_destroy(ex), 0);
    end_kind(_i);
}
END_TEST

START_TEST(task_fail_outside_a_task_only_returns)
{
    ck_assert_int_eq(weft_task_fail(-EIO, "x %d", 1), -EIO);
    ck_assert_int_eq(weft_task_fail(0, "x"), 0);
}
END_TEST

START_TEST(idle_worker_is_reused_before_a_new_one_starts)
{
    start_kind(_i);
    weft_executor *ex;
    weft_executor_opts o = {.max_workers = 8};
    ck_assert_rc(kind(_i)(&ex, &o), 0);
    for (int i = 0; i < 50; i++) {
        weft_future *f;
        ck_assert_rc(weft_executor_submit(ex, add_one, NULL, &f,
                                          WEFT_FOREVER), 0);
        ck_assert_rc(weft_future_result(f, NULL, WEFT_FOREVER), 0);
        weft_future_release(f);
    }
    /* One at a time: the worker that ran the first ran them all (it
     * lowers its busy count before completing each task, so the next
     * submit finds it on its way back and starts no other); never eight. */
    ck_assert_int_le(weft_executor_workers(ex), 1);
    ck_assert_int_ge(weft_executor_workers(ex), 1);
    ck_assert_rc(weft_executor_destroy(ex), 0);
    end_kind(_i);
}
END_TEST

struct gate {
    weft_event open;
    _Atomic int running;
    _Atomic int max_running;
    _Atomic int started;
};

static int gated(void *arg, void **result)
{
    struct gate *g = arg;
    int now = atomic_fetch_add(&g->running, 1) + 1;
    int m = atomic_load(&g->max_running);
    while (now > m && !atomic_compare_exchange_weak(&g->max_running, &m, now))
        ;
    atomic_fetch_add(&g->started, 1);
    int rc = weft_event_wait(&g->open, WEFT_FOREVER);
    atomic_fetch_sub(&g->running, 1);
    return rc;
}

static void wait_started(struct gate *g, int n)
{
    /* Poll an atomic counter with a bounded wait: the tasks announce
     * themselves; no sleep stands in for their progress. */
    int64_t until = weft_deadline_in(MS(20000));
    while (atomic_load(&g->started) < n) {
        ck_assert_msg(weft_now() < until, "only %d of %d tasks started",
                      atomic_load(&g->started), n);
        weft_sleep_until(weft_deadline_in(MS(1)));
    }
}

START_TEST(workers_are_bounded_and_named)
{
    start_kind(_i);
    weft_executor *ex;
    weft_executor_opts o = {.max_workers = 3, .name_prefix = "pfx"};
    ck_assert_rc(kind(_i)(&ex, &o), 0);
    struct gate g = {WEFT_EVENT_INIT, 0, 0, 0};
    weft_future *fs[10];
    for (int i = 0; i < 10; i++)
        ck_assert_rc(weft_executor_submit(ex, gated, &g, &fs[i],
                                          WEFT_FOREVER), 0);
    wait_started(&g, 3);
    ck_assert_int_eq(weft_executor_workers(ex), 3);
    ck_assert_int_eq(weft_executor_pending(ex), 7);
    if (_i == 0) {
        weft_thread *ts[64];
        int n = weft_thread_enumerate(ts, 64);
        int named = 0;
        for (int i = 0; i < n && i < 64; i++) {
            named += strncmp(weft_thread_name(ts[i]), "pfx_", 4) == 0;
            weft_thread_release(ts[i]);
        }
        ck_assert_int_eq(named, 3);
    }
    weft_event_set(&g.open);
    for (int i = 0; i < 10; i++) {
        ck_assert_rc(weft_future_result(fs[i], NULL, WEFT_FOREVER), 0);
        weft_future_release(fs[i]);
    }
    ck_assert_int_eq(g.max_running, 3);
    ck_assert_rc(weft_executor_destroy(ex), 0);
    end_kind(_i);
}
END_TEST

static _Thread_local int tls_init_value;
static weft_green_key green_key;

static int init_ok(void *arg)
{
    tls_init_value = (int)(intptr_t)arg;
    if (weft_green_current() != NULL)
        weft_green_key_set(green_key, arg);
    return 0;
}

static int read_init(void *arg, void **result)
{
    *result = weft_green_current() != NULL
                  ? weft_green_key_get(green_key)
                  : (void *)(intptr_t)tls_init_value;
    return 0;
}

START_TEST(initializer_runs_in_each_worker)
{
    start_kind(_i);
    if (_i == 1)
        ck_assert_rc(weft_green_key_create(&green_key, NULL), 0);
    weft_executor *ex;
    weft_executor_opts o = {.max_workers = 2, .initializer = init_ok,
                            .initarg = (void *)77};
    ck_assert_rc(kind(_i)(&ex, &o), 0);
    for (int i = 0; i < 20; i++) {
        weft_future *f;
        void *v;
        ck_assert_rc(weft_executor_submit(ex, read_init, NULL, &f,
                                          WEFT_FOREVER), 0);
        ck_assert_rc(weft_future_result(f, &v, WEFT_FOREVER), 0);
        ck_assert_int_eq((intptr_t)v, 77);
        weft_future_release(f);
    }
    ck_assert_rc(weft_executor_destroy(ex), 0);
    end_kind(_i);
}
END_TEST

static int init_fails(void *arg)
{
    return -EACCES;
}

START_TEST(failing_initializer_breaks_the_executor)
{
    start_kind(_i);
    weft_executor *ex;
    weft_executor_opts o = {.max_workers = 1, .initializer = init_fails};
    ck_assert_rc(kind(_i)(&ex, &o), 0);
    weft_future *f;
    ck_assert_rc(weft_executor_submit(ex, add_one, NULL, &f, WEFT_FOREVER),
                 0);
    ck_assert_rc(weft_future_result(f, NULL, WEFT_FOREVER), WEFT_EFAILED);
    int code;
    const char *msg;
    ck_assert_rc(weft_future_error(f, &code, &msg, WEFT_NOW), 0);
    ck_assert_int_eq(code, WEFT_EBROKEN);
    ck_assert_ptr_nonnull(strstr(msg, "initializer"));
    ck_assert_ptr_nonnull(strstr(msg, "EACCES"));
    weft_future_release(f);
    ck_assert(weft_executor_broken(ex));
    ck_assert_rc(weft_executor_submit(ex, add_one, NULL, &f, WEFT_FOREVER),
                 WEFT_EBROKEN);
    ck_assert_rc(weft_executor_destroy(ex), 0);
    end_kind(_i);
}
END_TEST

START_TEST(bounded_queue_parks_the_submitter)
{
    start_kind(_i);
    weft_executor *ex;
    weft_executor_opts o = {.max_workers = 1, .queue_capacity = 2};
    ck_assert_rc(kind(_i)(&ex, &o), 0);
    struct gate g = {WEFT_EVENT_INIT, 0, 0, 0};
    weft_future *fs[3];
    ck_assert_rc(weft_executor_submit(ex, gated, &g, &fs[0], WEFT_FOREVER),
                 0);
    wait_started(&g, 1);
    ck_assert_rc(weft_executor_submit(ex, gated, &g, &fs[1], WEFT_FOREVER),
                 0);
    ck_assert_rc(weft_executor_submit(ex, gated, &g, &fs[2], WEFT_FOREVER),
                 0);
    weft_future *extra = NULL;
    ck_assert_rc(weft_executor_submit(ex, gated, &g, &extra, WEFT_NOW),
                 -ETIMEDOUT);
    int64_t t0 = weft_now();
    ck_assert_rc(weft_executor_submit(ex, gated, &g, &extra,
                                      weft_deadline_in(MS(30))), -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(30), MS(2000));
    ck_assert_ptr_null(extra);
    weft_event_set(&g.open);
    ck_assert_rc(weft_executor_submit(ex, gated, &g, &extra, WEFT_FOREVER),
                 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_rc(weft_future_result(fs[i], NULL, WEFT_FOREVER), 0);
        weft_future_release(fs[i]);
    }
    ck_assert_rc(weft_future_result(extra, NULL, WEFT_FOREVER), 0);
    weft_future_release(extra);
    ck_assert_rc(weft_executor_destroy(ex), 0);
    end_kind(_i);
}
END_TEST

START_TEST(shutdown_waits_or_cancels_pending)
{
    start_kind(_i);
    for (int cancel = 0; cancel <= 1; cancel++) {
        weft_executor *ex;
        weft_executor_opts o = {.max_workers = 1};
        ck_assert_rc(kind(_i)(&ex, &o), 0);
        struct gate g = {WEFT_EVENT_INIT, 0, 0, 0};
        weft_future *fs[4];
        for (int i = 0; i < 4; i++)
            ck_assert_rc(weft_executor_submit(ex, gated, &g, &fs[i],
                                              WEFT_FOREVER), 0);
        wait_started(&g, 1);
        unsigned flags = cancel ? WEFT_SHUTDOWN_CANCEL_PENDING : 0;
        /* The running task holds the worker: the wait times out, but the
         * shutdown has happened. */
        ck_assert_rc(weft_executor_shutdown(ex, flags,
                                            weft_deadline_in(MS(20))),
                     -ETIMEDOUT);
        weft_future *late;
        ck_assert_rc(weft_executor_submit(ex, add_one, NULL, &late,
                                          WEFT_FOREVER), -EPIPE);
        weft_event_set(&g.open);
        ck_assert_rc(weft_executor_shutdown(ex, 0, WEFT_FOREVER), 0);
        ck_assert_int_eq(weft_executor_workers(ex), 0);
        ck_assert_rc(weft_future_result(fs[0], NULL, WEFT_NOW), 0);
        for (int i = 1; i < 4; i++) {
            if (cancel) {
                ck_assert(weft_future_cancelled(fs[i]));
            } else {
                ck_assert_rc(weft_future_result(fs[i], NULL, WEFT_NOW), 0);
            }
        }
        for (int i = 0; i < 4; i++)
            weft_future_release(fs[i]);
        ck_assert_rc(weft_executor_destroy(ex), 0);
    }
    end_kind(_i);
}
END_TEST

START_TEST(shutdown_nowait_returns_at_once)
{
    start_kind(_i);
    weft_executor *ex;
    ck_assert_rc(kind(_i)(&ex, NULL), 0);
    struct gate g = {WEFT_EVENT_INIT, 0, 0, 0};
    weft_future *f;
    ck_assert_rc(weft_executor_submit(ex, gated, &g, &f, WEFT_FOREVER), 0);
    wait_started(&g, 1);
    ck_assert_rc(weft_executor_shutdown(ex, WEFT_SHUTDOWN_NOWAIT,
                                        WEFT_FOREVER), 0);
    ck_assert(!weft_future_done(f));
    weft_event_set(&g.open);
    ck_assert_rc(weft_future_result(f, NULL, WEFT_FOREVER), 0);
    weft_future_release(f);
    ck_assert_rc(weft_executor_destroy(ex), 0);
    end_kind(_i);
}
END_TEST

/* Whether the dump shows a wait whose description contains what. */
static bool dump_shows(const char *what)
{
    char *buf = test_dump();
    bool seen = strstr(buf, what) != NULL;
    free(buf);
    return seen;
}

static void wait_dump_shows(const char *what)
{
    int64_t until = weft_deadline_in(MS(20000));
    while (!dump_shows(what)) {
        ck_assert_msg(weft_now() < until, "no wait '%s' seen", what);
        weft_sleep_until(weft_deadline_in(MS(1)));
    }
}

static int shutdown_forever(void *arg)
{
    weft_thread_current(); /* adopted, so that the dump lists its wait */
    return weft_executor_shutdown(arg, 0, WEFT_FOREVER);
}

/* Two shutdowns at once: the first joins the worker; the second finds no
 * worker left to join and waits for the last one to exit.  That wait must
 * not hold the executor's guard, which the exiting worker needs (it once
 * did: a deadlock that the shutdown stress test hit under TSan). */
START_TEST(second_shutdown_waits_without_the_guard)
{
    start_kind(_i);
    weft_executor *ex;
    weft_executor_opts o = {.max_workers = 1};
    ck_assert_rc(kind(_i)(&ex, &o), 0);
    struct gate g = {WEFT_EVENT_INIT, 0, 0, 0};
    weft_future *f;
    ck_assert_rc(weft_executor_submit(ex, gated, &g, &f, WEFT_FOREVER), 0);
    wait_started(&g, 1);
    tt *a = tt_start(shutdown_forever, ex);
    wait_dump_shows("join of");
    tt *b = tt_start(shutdown_forever, ex);
    wait_dump_shows("executor shutdown");
    weft_event_set(&g.open);
    ck_assert_rc(tt_join(a), 0);
    ck_assert_rc(tt_join(b), 0);
    ck_assert_rc(weft_future_result(f, NULL, WEFT_FOREVER), 0);
    weft_future_release(f);
    ck_assert_rc(weft_executor_destroy(ex), 0);
    end_kind(_i);
}
END_TEST

static int shutdown_self(void *arg, void **result)
{
    weft_executor *ex = arg;
    int rc = weft_executor_shutdown(ex, 0, WEFT_FOREVER);
    if (rc != -EDEADLK)
        return -EINVAL;
    return weft_executor_destroy(ex) == -EDEADLK ? 0 : -EINVAL;
}

START_TEST(shutdown_from_a_worker_is_edeadlk)
{
    start_kind(_i);
    weft_executor *ex;
    ck_assert_rc(kind(_i)(&ex, NULL), 0);
    weft_future *f;
    ck_assert_rc(weft_executor_submit(ex, shutdown_self, ex, &f,
                                      WEFT_FOREVER), 0);
    ck_assert_rc(weft_future_result(f, NULL, WEFT_FOREVER), 0);
    weft_future_release(f);
    ck_assert_rc(weft_executor_destroy(ex), 0);
    end_kind(_i);
}
END_TEST

START_TEST(unobserved_failure_is_logged)
{
    start_kind(_i);
    char path[] = "/tmp/weft-test-executor-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_rc(weft_log_set_fd(fd), 0);
    weft_executor *ex;
    ck_assert_rc(kind(_i)(&ex, NULL), 0);
    ck_assert_rc(weft_executor_submit(ex, fail_with_message, (void *)11,
                                      NULL, WEFT_FOREVER), 0);
    ck_assert_rc(weft_executor_destroy(ex), 0);
    weft_log_set_fd(-1);
    char buf[4096];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    ck_assert_int_gt(n, 0);
    buf[n] = 0;
    ck_assert_ptr_nonnull(strstr(buf, "no item 11"));
    close(fd);
    unlink(path);
    end_kind(_i);
}
END_TEST

/* ---- exit policy (in a child process) ----------------------------------- */

static int write_byte(void *arg, void **result)
{
    struct gate *g = ((void **)arg)[0];
    int fd = (int)(intptr_t)((void **)arg)[1];
    if (g != NULL)
        weft_event_wait(&g->open, WEFT_FOREVER); /* never opened */
    return write(fd, "x", 1) == 1 ? 0 : -EIO;
}

static int run_exit_child(bool daemon)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(p[0]);
        static struct gate g = {WEFT_EVENT_INIT, 0, 0, 0};
        static void *blocked[2], *quick[2];
        blocked[0] = &g;
        blocked[1] = (void *)(intptr_t)p[1];
        quick[0] = NULL;
        quick[1] = (void *)(intptr_t)p[1];
        weft_executor *ex;
        weft_executor_opts o = {.max_workers = 1, .daemon = daemon};
        if (weft_thread_pool_create(&ex, &o) != 0)
            _exit(2);
        /* daemon: a task that never ends holds the only worker, and the
         * exit must not wait for it.  non-daemon: a queued task runs to
         * completion before the process ends. */
        weft_executor_submit(ex, write_byte, daemon ? blocked : quick, NULL,
                             WEFT_FOREVER);
        exit(0);
    }
    close(p[1]);
    int status = 0;
    int64_t until = weft_deadline_in(MS(20000));
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (weft_now() > until) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            ck_abort_msg("the child did not exit");
        }
        weft_sleep_until(weft_deadline_in(MS(2)));
    }
    char c;
    int got = (int)read(p[0], &c, 1);
    close(p[0]);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return got;
}

START_TEST(exit_runs_queued_work_of_a_non_daemon_pool)
{
    ck_assert_int_eq(run_exit_child(false), 1);
}
END_TEST

START_TEST(daemon_pool_does_not_hold_the_exit)
{
    ck_assert_int_eq(run_exit_child(true), 0);
}
END_TEST

/* ---- map ---------------------------------------------------------------- */

struct source {
    int next, n;
    _Atomic int pulled;
    _Atomic int *consumed;
    int max_ahead;
};

static int source_next(void *state, void **input)
{
    struct source *s = state;
    if (s->next == s->n)
        return -EPIPE;
    int ahead = atomic_load(&s->pulled) - atomic_load(s->consumed);
    if (ahead > s->max_ahead)
        s->max_ahead = ahead;
    atomic_fetch_add(&s->pulled, 1);
    *input = (void *)(intptr_t)s->next++;
    return 0;
}

static int square_or_fail(void *arg, void **result)
{
    intptr_t x = (intptr_t)arg;
    if (x % 10 == 7)
        return weft_task_fail(-EDOM, "%d ends in 7", (int)x);
    *result = (void *)(x * x);
    return 0;
}

START_TEST(map_keeps_order_and_bounds_work_in_flight)
{
    start_kind(_i);
    weft_executor *ex;
    weft_executor_opts o = {.max_workers = 4};
    ck_assert_rc(kind(_i)(&ex, &o), 0);
    _Atomic int consumed = 0;
    struct source s = {0, 100, 0, &consumed, 0};
    weft_map *m;
    ck_assert_rc(weft_map_start(&m, ex, square_or_fail, source_next, &s, 5),
                 0);
    for (int i = 0; i < 100; i++) {
        void *v = NULL;
        int trc = 1;
        ck_assert_rc(weft_map_next(m, &v, &trc, WEFT_FOREVER), 0);
        atomic_fetch_add(&consumed, 1);
        if (i % 10 == 7) {
            ck_assert_int_eq(trc, -EDOM);
        } else {
            ck_assert_int_eq(trc, 0);
            ck_assert_int_eq((intptr_t)v, (intptr_t)i * i);
        }
    }
    ck_assert_rc(weft_map_next(m, NULL, NULL, WEFT_FOREVER), -EPIPE);
    ck_assert_rc(weft_map_next(m, NULL, NULL, WEFT_FOREVER), -EPIPE);
    ck_assert_rc(weft_map_end(m), 0);
    /* Lazy: never more than 5 pulled and not handed back. */
    ck_assert_int_le(s.max_ahead, 5);
    ck_assert_rc(weft_executor_destroy(ex), 0);
    end_kind(_i);
}
END_TEST

START_TEST(map_over_array_and_early_end)
{
    start_kind(_i);
    weft_executor *ex;
    ck_assert_rc(kind(_i)(&ex, NULL), 0);
    void *in[50];
    for (int i = 0; i < 50; i++)
        in[i] = (void *)(intptr_t)(i * 10 + 1);
    weft_map *m;
    ck_assert_rc(weft_map_start_array(&m, ex, square_or_fail, in, 50, 0), 0);
    for (int i = 0; i < 10; i++) {
        void *v;
        int trc;
        ck_assert_rc(weft_map_next(m, &v, &trc, WEFT_FOREVER), 0);
        ck_assert_int_eq(trc, 0);
        ck_assert_int_eq((intptr_t)v, (intptr_t)(i * 10 + 1) * (i * 10 + 1));
    }
    ck_assert_rc(weft_map_end(m), 0);
    ck_assert_rc(weft_map_start_array(&m, ex, square_or_fail, NULL, 3, 0),
                 -EINVAL);
    ck_assert_rc(weft_map_start(&m, ex, square_or_fail, NULL, NULL, 0),
                 -EINVAL);
    ck_assert_rc(weft_executor_destroy(ex), 0);
    end_kind(_i);
}
END_TEST

START_TEST(map_after_shutdown_reports_epipe)
{
    start_kind(_i);
    weft_executor *ex;
    ck_assert_rc(kind(_i)(&ex, NULL), 0);
    ck_assert_rc(weft_executor_shutdown(ex, 0, WEFT_FOREVER), 0);
    void *in[1] = {0};
    weft_map *m;
    ck_assert_rc(weft_map_start_array(&m, ex, square_or_fail, in, 1, 0), 0);
    ck_assert_rc(weft_map_next(m, NULL, NULL, WEFT_FOREVER), -EPIPE);
    ck_assert_rc(weft_map_end(m), 0);
    ck_assert_rc(weft_executor_destroy(ex), 0);
    end_kind(_i);
}
END_TEST

/* ---- many --------------------------------------------------------------- */

START_TEST(hundred_thousand_futures)
{
    start_kind(_i);
    weft_executor *ex;
    ck_assert_rc(kind(_i)(&ex, NULL), 0);
    size_t n = (size_t)(100000 * test_scale());
    weft_future **fs = malloc(n * sizeof *fs);
    ck_assert_ptr_nonnull(fs);
    for (size_t i = 0; i < n; i++)
        ck_assert_rc(weft_executor_submit(ex, add_one, (void *)i, &fs[i],
                                          WEFT_FOREVER), 0);
    size_t nd = 0;
    ck_assert_rc(weft_futures_wait(fs, n, WEFT_ALL_COMPLETED, NULL, &nd,
                                   WEFT_FOREVER), 0);
    ck_assert_int_eq(nd, n);
    for (size_t i = 0; i < n; i++) {
        void *v;
        ck_assert_rc(weft_future_result(fs[i], &v, WEFT_NOW), 0);
        ck_assert_int_eq((uintptr_t)v, i + 1);
        weft_future_release(fs[i]);
    }
    free(fs);
    ck_assert_rc(weft_executor_destroy(ex), 0);
    end_kind(_i);
}
END_TEST

static int submit_from_green(void *arg)
{
    weft_executor *ex = arg;
    for (int i = 0; i < 100; i++) {
        weft_future *f;
        void *v;
        int rc = weft_executor_submit(ex, add_one, (void *)(intptr_t)i, &f,
                                      WEFT_FOREVER);
        if (rc != 0)
            return rc;
        rc = weft_future_result(f, &v, WEFT_FOREVER);
        weft_future_release(f);
        if (rc != 0 || (intptr_t)v != i + 1)
            return -EINVAL;
    }
    return 0;
}

START_TEST(green_threads_use_a_thread_pool)
{
    ck_assert_rc(weft_runtime_start(2), 0);
    weft_executor *ex;
    ck_assert_rc(weft_thread_pool_create(&ex, NULL), 0);
    weft_green *g[4];
    for (int i = 0; i < 4; i++)
        ck_assert_rc(weft_green_spawn(&g[i], submit_from_green, ex, NULL), 0);
    for (int i = 0; i < 4; i++) {
        int rc = -1;
        ck_assert_rc(weft_green_join(g[i], &rc, WEFT_FOREVER), 0);
        ck_assert_rc(rc, 0);
    }
    ck_assert_rc(weft_executor_destroy(ex), 0);
    ck_assert_rc(weft_runtime_shutdown(WEFT_FOREVER), 0);
}
END_TEST

static Suite *executor_suite(void)
{
    Suite *s = suite_create("executor");
    TCase *c = tcase_create("executor");
    tcase_set_timeout(c, 60);
    tcase_add_loop_test(c, results_and_failures, 0, 2);
    tcase_add_test(c, task_fail_outside_a_task_only_returns);
    tcase_add_loop_test(c, idle_worker_is_reused_before_a_new_one_starts, 0,
                        2);
    tcase_add_loop_test(c, workers_are_bounded_and_named, 0, 2);
    tcase_add_loop_test(c, initializer_runs_in_each_worker, 0, 2);
    tcase_add_loop_test(c, failing_initializer_breaks_the_executor, 0, 2);
    tcase_add_loop_test(c, bounded_queue_parks_the_submitter, 0, 2);
    tcase_add_loop_test(c, shutdown_waits_or_cancels_pending, 0, 2);
    tcase_add_loop_test(c, shutdown_nowait_returns_at_once, 0, 2);
    tcase_add_loop_test(c, shutdown_from_a_worker_is_edeadlk, 0, 2);
    tcase_add_loop_test(c, second_shutdown_waits_without_the_guard, 0, 2);
    tcase_add_loop_test(c, unobserved_failure_is_logged, 0, 2);
    tcase_add_test(c, exit_runs_queued_work_of_a_non_daemon_pool);
    tcase_add_test(c, daemon_pool_does_not_hold_the_exit);
    tcase_add_loop_test(c, map_keeps_order_and_bounds_work_in_flight, 0, 2);
    tcase_add_loop_test(c, map_over_array_and_early_end, 0, 2);
    tcase_add_loop_test(c, map_after_shutdown_reports_epipe, 0, 2);
    tcase_add_loop_test(c, hundred_thousand_futures, 0, 2);
    tcase_add_test(c, green_threads_use_a_thread_pool);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(executor_suite)
