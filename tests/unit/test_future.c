/* test_future.c - futures: states and their transitions, results and
 * errors with deadlines, cancel, done-callbacks (order, exactly once, at
 * once when done, a failing one logged), the unread-failure report, owned
 * values, waiting from OS and green threads, and the multi-future waits
 * (wait in its three modes, as-completed). */
#include "support.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ---- log capture -------------------------------------------------------- */

static char log_path[64];

static void capture_log(void)
{
    strcpy(log_path, "/tmp/weft-test-future-XXXXXX");
    int fd = mkstemp(log_path);
    ck_assert_int_ge(fd, 0);
    ck_assert_rc(weft_log_set_fd(fd), 0);
}

static char *captured_log(void)
{
    static char buf[8192];
    FILE *fp = fopen(log_path, "r");
    ck_assert_ptr_nonnull(fp);
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = 0;
    fclose(fp);
    return buf;
}

static void end_capture(void)
{
    weft_log_set_fd(-1);
    unlink(log_path);
}

/* ---- states ------------------------------------------------------------- */

START_TEST(new_future_is_pending)
{
    weft_future *f;
    ck_assert_rc(weft_future_create(&f), 0);
    ck_assert_int_eq(weft_future_get_state(f), WEFT_FUTURE_PENDING);
    ck_assert(!weft_future_done(f));
    ck_assert(!weft_future_running(f));
    ck_assert(!weft_future_cancelled(f));
    ck_assert_str_eq(weft_future_state_name(WEFT_FUTURE_PENDING), "pending");
    ck_assert_str_eq(weft_future_state_name(WEFT_FUTURE_FAILED), "failed");
    ck_assert_rc(weft_future_result(f, NULL, WEFT_NOW), -ETIMEDOUT);
    ck_assert_rc(weft_future_create(NULL), -EINVAL);
    weft_future_release(f);
    weft_future_release(NULL);
}
END_TEST

START_TEST(result_is_handed_over_once_set)
{
    weft_future *f;
    int x = 42;
    void *v = NULL;
    ck_assert_rc(weft_future_create(&f), 0);
    ck_assert_rc(weft_future_set_running(f), 0);
    ck_assert(weft_future_running(f));
    ck_assert_rc(weft_future_set_running(f), -EINVAL);
    ck_assert_rc(weft_future_set_result(f, &x), 0);
    ck_assert_int_eq(weft_future_get_state(f), WEFT_FUTURE_FINISHED);
    ck_assert_rc(weft_future_result(f, &v, WEFT_NOW), 0);
    ck_assert_ptr_eq(v, &x);
    ck_assert_rc(weft_future_result(f, NULL, WEFT_FOREVER), 0);
    int code = 1;
    const char *msg = "x";
    ck_assert_rc(weft_future_error(f, &code, &msg, WEFT_NOW), 0);
    ck_assert_int_eq(code, 0);
    ck_assert_ptr_null(msg);
    /* Done is final: nothing changes it again. */
    ck_assert_rc(weft_future_set_result(f, NULL), -EINVAL);
    ck_assert_rc(weft_future_set_error(f, -EIO, "late"), -EINVAL);
    ck_assert_rc(weft_future_cancel(f), -EBUSY);
    ck_assert_rc(weft_future_result(f, &v, WEFT_NOW), 0);
    ck_assert_ptr_eq(v, &x);
    weft_future_release(f);
}
END_TEST

START_TEST(error_has_code_and_message)
{
    weft_future *f;
    ck_assert_rc(weft_future_create(&f), 0);
    ck_assert_rc(weft_future_set_error(f, 0, "zero"), -EINVAL);
    ck_assert_rc(weft_future_set_error(f, 5, "positive"), -EINVAL);
    ck_assert(!weft_future_done(f));
    ck_assert_rc(weft_future_set_error(f, -ENOENT, "no file %s", "a.txt"),
                 0);
    ck_assert_int_eq(weft_future_get_state(f), WEFT_FUTURE_FAILED);
    void *v = (void *)1;
    ck_assert_rc(weft_future_result(f, &v, WEFT_NOW), WEFT_EFAILED);
    ck_assert_ptr_eq(v, (void *)1); /* untouched */
    int code = 0;
    const char *msg = NULL;
    ck_assert_rc(weft_future_error(f, &code, &msg, WEFT_FOREVER), 0);
    ck_assert_int_eq(code, -ENOENT);
    ck_assert_str_eq(msg, "no file a.txt");
    ck_assert_rc(weft_future_set_result(f, NULL), -EINVAL);
    weft_future_release(f);

    /* No format: the code's own message. */
    ck_assert_rc(weft_future_create(&f), 0);
    ck_assert_rc(weft_future_set_error(f, -ETIMEDOUT, NULL), 0);
    ck_assert_rc(weft_future_error(f, &code, &msg, WEFT_NOW), 0);
    ck_assert_str_eq(msg, weft_strerror(-ETIMEDOUT));
    weft_future_release(f);
}
END_TEST

START_TEST(cancel_only_while_pending)
{
    weft_future *f;
    ck_assert_rc(weft_future_create(&f), 0);
    ck_assert_rc(weft_future_cancel(f), 0);
    ck_assert(weft_future_cancelled(f));
    ck_assert(weft_future_done(f));
    ck_assert_rc(weft_future_cancel(f), 0); /* already: still 0 */
    ck_assert_rc(weft_future_result(f, NULL, WEFT_FOREVER), -ECANCELED);
    ck_assert_rc(weft_future_error(f, NULL, NULL, WEFT_FOREVER), -ECANCELED);
    ck_assert_rc(weft_future_set_running(f), -ECANCELED);
    ck_assert_rc(weft_future_set_result(f, NULL), -EINVAL);
    ck_assert_rc(weft_future_set_error(f, -EIO, NULL), -EINVAL);
    weft_future_release(f);

    ck_assert_rc(weft_future_create(&f), 0);
    ck_assert_rc(weft_future_set_running(f), 0);
    ck_assert_rc(weft_future_cancel(f), -EBUSY);
    ck_assert(weft_future_running(f));
    ck_assert_rc(weft_future_set_result(f, NULL), 0);
    ck_assert_rc(weft_future_cancel(f), -EBUSY);
    ck_assert_rc(weft_future_cancel(NULL), -EINVAL);
    weft_future_release(f);
}
END_TEST

START_TEST(result_deadline_passes)
{
    weft_future *f;
    ck_assert_rc(weft_future_create(&f), 0);
    int64_t t0 = weft_now();
    ck_assert_rc(weft_future_result(f, NULL, weft_deadline_in(MS(50))),
                 -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(50), MS(2000));
    ck_assert_rc(weft_future_wait(f, WEFT_NOW), -ETIMEDOUT);
    ck_assert_rc(weft_future_error(f, NULL, NULL, WEFT_NOW), -ETIMEDOUT);
    ck_assert_rc(weft_future_set_result(f, NULL), 0);
    ck_assert_rc(weft_future_wait(f, WEFT_NOW), 0);
    weft_future_release(f);
}
END_TEST

/* ---- waiting across threads -------------------------------------------- */

struct setter {
    weft_future *f;
    weft_event ready; /* the waiter is about to wait */
    int value;
};

static int set_later(void *arg)
{
    struct setter *s = arg;
    weft_event_wait(&s->ready, WEFT_FOREVER);
    return weft_future_set_result(s->f, &s->value);
}

START_TEST(os_thread_waiter_is_woken)
{
    struct setter s = {NULL, WEFT_EVENT_INIT, 7};
    ck_assert_rc(weft_future_create(&s.f), 0);
    tt *t = tt_start(set_later, &s);
    weft_event_set(&s.ready);
    void *v = NULL;
    ck_assert_rc(weft_future_result(s.f, &v, WEFT_FOREVER), 0);
    ck_assert_ptr_eq(v, &s.value);
    ck_assert_int_eq(tt_join(t), 0);
    weft_future_release(s.f);
}
END_TEST

static int green_waits(void *arg)
{
    struct setter *s = arg;
    void *v = NULL;
    weft_event_set(&s->ready);
    int rc = weft_future_result(s->f, &v, WEFT_FOREVER);
    if (rc != 0)
        return rc;
    return v == &s->value ? 0 : -EINVAL;
}

START_TEST(green_thread_waits_os_thread_sets)
{
    ck_assert_rc(weft_runtime_start(2), 0);
    struct setter s = {NULL, WEFT_EVENT_INIT, 9};
    ck_assert_rc(weft_future_create(&s.f), 0);
    weft_green *g;
    ck_assert_rc(weft_green_spawn(&g, green_waits, &s, NULL), 0);
    weft_event_wait(&s.ready, WEFT_FOREVER);
    ck_assert_rc(weft_future_set_result(s.f, &s.value), 0);
    int rc = -1;
    ck_assert_rc(weft_green_join(g, &rc, WEFT_FOREVER), 0);
    ck_assert_rc(rc, 0);
    weft_future_release(s.f);
    ck_assert_rc(weft_runtime_shutdown(WEFT_FOREVER), 0);
}
END_TEST

static int green_sets(void *arg)
{
    struct setter *s = arg;
    weft_event_wait(&s->ready, WEFT_FOREVER);
    return weft_future_set_result(s->f, &s->value);
}

START_TEST(os_thread_waits_green_thread_sets)
{
    ck_assert_rc(weft_runtime_start(1), 0);
    struct setter s = {NULL, WEFT_EVENT_INIT, 3};
    ck_assert_rc(weft_future_create(&s.f), 0);
    weft_green *g;
    ck_assert_rc(weft_green_spawn(&g, green_sets, &s, NULL), 0);
    weft_event_set(&s.ready);
    void *v = NULL;
    ck_assert_rc(weft_future_result(s.f, &v, WEFT_FOREVER), 0);
    ck_assert_ptr_eq(v, &s.value);
    ck_assert_rc(weft_green_join(g, NULL, WEFT_FOREVER), 0);
    weft_future_release(s.f);
    ck_assert_rc(weft_runtime_shutdown(WEFT_FOREVER), 0);
}
END_TEST

static int green_waits_forever(void *arg)
{
    struct setter *s = arg;
    weft_event_set(&s->ready);
    return weft_future_result(s->f, NULL, WEFT_FOREVER);
}

START_TEST(cancelled_green_waiter_returns_ecanceled)
{
    ck_assert_rc(weft_runtime_start(1), 0);
    struct setter s = {NULL, WEFT_EVENT_INIT, 0};
    ck_assert_rc(weft_future_create(&s.f), 0);
    weft_green *g;
    ck_assert_rc(weft_green_spawn(&g, green_waits_forever, &s, NULL), 0);
    weft_event_wait(&s.ready, WEFT_FOREVER);
    ck_assert_rc(weft_green_cancel(g), 0);
    int rc = 0;
    ck_assert_rc(weft_green_join(g, &rc, WEFT_FOREVER), 0);
    ck_assert_rc(rc, -ECANCELED);
    /* The future is untouched by its waiter's cancellation. */
    ck_assert_int_eq(weft_future_get_state(s.f), WEFT_FUTURE_PENDING);
    ck_assert(!weft_future_cancelled(s.f));
    weft_future_release(s.f);
    ck_assert_rc(weft_runtime_shutdown(WEFT_FOREVER), 0);
}
END_TEST

/* ---- callbacks ---------------------------------------------------------- */

struct trace {
    char order[32];
    _Atomic int n;
};

static int cb_a(weft_future *f, void *arg)
{
    struct trace *t = arg;
    t->order[atomic_fetch_add(&t->n, 1)] = 'a';
    return weft_future_done(f) ? 0 : -EINVAL;
}
static int cb_b(weft_future *f, void *arg)
{
    struct trace *t = arg;
    t->order[atomic_fetch_add(&t->n, 1)] = 'b';
    return 0;
}
static int cb_fails(weft_future *f, void *arg)
{
    struct trace *t = arg;
    t->order[atomic_fetch_add(&t->n, 1)] = 'x';
    return -EIO;
}

START_TEST(callbacks_run_once_in_order)
{
    struct trace t = {{0}, 0};
    weft_future *f;
    ck_assert_rc(weft_future_create(&f), 0);
    capture_log();
    ck_assert_rc(weft_future_add_done_callback(f, cb_a, &t), 0);
    ck_assert_rc(weft_future_add_done_callback(f, cb_fails, &t), 0);
    ck_assert_rc(weft_future_add_done_callback(f, cb_b, &t), 0);
    ck_assert_int_eq(t.n, 0);
    ck_assert_rc(weft_future_set_result(f, NULL), 0);
    ck_assert_str_eq(t.order, "axb");
    /* Added after completion: runs at once, here. */
    ck_assert_rc(weft_future_add_done_callback(f, cb_b, &t), 0);
    ck_assert_str_eq(t.order, "axbb");
    ck_assert_rc(weft_future_set_result(f, NULL), -EINVAL);
    ck_assert_str_eq(t.order, "axbb"); /* never again */
    ck_assert_ptr_nonnull(strstr(captured_log(), "done-callback failed"));
    ck_assert_ptr_nonnull(strstr(captured_log(), "EIO"));
    end_capture();
    ck_assert_rc(weft_future_add_done_callback(f, NULL, &t), -EINVAL);
    weft_future_release(f);
}
END_TEST

START_TEST(callbacks_run_on_cancel_and_failure)
{
    struct trace t = {{0}, 0};
    weft_future *f;
    ck_assert_rc(weft_future_create(&f), 0);
    ck_assert_rc(weft_future_add_done_callback(f, cb_a, &t), 0);
    ck_assert_rc(weft_future_cancel(f), 0);
    ck_assert_str_eq(t.order, "a");
    weft_future_release(f);
    ck_assert_rc(weft_future_create(&f), 0);
    ck_assert_rc(weft_future_add_done_callback(f, cb_b, &t), 0);
    ck_assert_rc(weft_future_set_error(f, -EIO, "boom"), 0);
    ck_assert_str_eq(t.order, "ab");
    ck_assert_rc(weft_future_result(f, NULL, WEFT_NOW), WEFT_EFAILED);
    weft_future_release(f);
}
END_TEST

/* A callback that drops the last reference other than the completer's. */
static int cb_release(weft_future *f, void *arg)
{
    (void)arg;
    weft_future_release(f);
    return 0;
}

START_TEST(callback_may_release_its_future)
{
    weft_future *f;
    ck_assert_rc(weft_future_create(&f), 0);
    weft_future_retain(f);
    ck_assert_rc(weft_future_add_done_callback(f, cb_release, NULL), 0);
    ck_assert_rc(weft_future_set_result(f, NULL), 0);
    weft_future_release(f);
}
END_TEST

struct racer {
    weft_future *f;
    _Atomic int *runs;
    weft_barrier *b;
};

static int count_cb(weft_future *f, void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
    return weft_future_done(f) ? 0 : -EINVAL;
}

static int add_callbacks(void *arg)
{
    struct racer *r = arg;
    weft_barrier_wait(r->b, WEFT_FOREVER);
    for (int i = 0; i < 50; i++)
        if (weft_future_add_done_callback(r->f, count_cb, r->runs) != 0)
            return -1;
    return 0;
}

static int complete_it(void *arg)
{
    struct racer *r = arg;
    weft_barrier_wait(r->b, WEFT_FOREVER);
    return weft_future_set_result(r->f, NULL);
}

START_TEST(callbacks_racing_completion_run_exactly_once)
{
    int rounds = (int)(200 * test_scale());
    for (int k = 0; k < rounds; k++) {
        _Atomic int runs = 0;
        weft_barrier *b;
        ck_assert_rc(weft_barrier_create(&b, 4, NULL, NULL), 0);
        struct racer r = {NULL, &runs, b};
        ck_assert_rc(weft_future_create(&r.f), 0);
        tt *t[4];
        for (int i = 0; i < 3; i++)
            t[i] = tt_start(add_callbacks, &r);
        t[3] = tt_start(complete_it, &r);
        for (int i = 0; i < 4; i++)
            ck_assert_int_eq(tt_join(t[i]), 0);
        ck_assert_int_eq(runs, 150);
        weft_future_release(r.f);
        ck_assert_rc(weft_barrier_destroy(b), 0);
    }
}
END_TEST

/* ---- lifetime ----------------------------------------------------------- */

START_TEST(unread_failure_is_reported_at_release)
{
    weft_future *f;
    capture_log();
    ck_assert_rc(weft_future_create(&f), 0);
    ck_assert_rc(weft_future_set_error(f, -ENOSPC, "disk %d full", 3), 0);
    weft_future_release(f);
    char *log = captured_log();
    ck_assert_ptr_nonnull(strstr(log, "nobody read its error"));
    ck_assert_ptr_nonnull(strstr(log, "disk 3 full"));
    ck_assert_ptr_nonnull(strstr(log, "ENOSPC"));
    end_capture();

    /* Read: no report. */
    capture_log();
    ck_assert_rc(weft_future_create(&f), 0);
    ck_assert_rc(weft_future_set_error(f, -ENOSPC, "read one"), 0);
    ck_assert_rc(weft_future_result(f, NULL, WEFT_NOW), WEFT_EFAILED);
    weft_future_release(f);
    ck_assert_ptr_null(strstr(captured_log(), "read one"));
    end_capture();
}
END_TEST

static _Atomic int frees;
static void count_free(void *p)
{
    atomic_fetch_add(&frees, 1);
    free(p);
}

START_TEST(owned_value_lives_as_long_as_the_future)
{
    weft_future *f;
    ck_assert_rc(weft_future_create(&f), 0);
    char *buf = strdup("bytes!");
    weft_future_retain(f);
    ck_assert_rc(weft_future_set_result_owned(f, buf, 6, count_free), 0);
    void *v;
    ck_assert_rc(weft_future_result(f, &v, WEFT_NOW), 0);
    ck_assert_int_eq(weft_future_result_size(f), 6);
    ck_assert_mem_eq(v, "bytes!", 6);
    weft_future_release(f);
    ck_assert_int_eq(frees, 0);
    weft_future_release(f);
    ck_assert_int_eq(frees, 1);

    /* Refused: the value stays the caller's. */
    ck_assert_rc(weft_future_create(&f), 0);
    ck_assert_rc(weft_future_cancel(f), 0);
    buf = strdup("x");
    ck_assert_rc(weft_future_set_result_owned(f, buf, 1, count_free),
                 -EINVAL);
    weft_future_release(f);
    ck_assert_int_eq(frees, 1);
    free(buf);
}
END_TEST

/* ---- wait on several ---------------------------------------------------- */

static weft_future *make(void)
{
    weft_future *f;
    ck_assert_rc(weft_future_create(&f), 0);
    return f;
}

START_TEST(wait_modes_at_once)
{
    weft_future *fs[3] = {make(), make(), make()};
    bool done[3];
    size_t nd = 99;
    ck_assert_rc(weft_futures_wait(fs, 0, WEFT_ALL_COMPLETED, NULL, &nd,
                                   WEFT_NOW), 0);
    ck_assert_int_eq(nd, 0);
    ck_assert_rc(weft_futures_wait(fs, 3, WEFT_FIRST_COMPLETED, done, &nd,
                                   WEFT_NOW), -ETIMEDOUT);
    ck_assert_int_eq(nd, 0);
    ck_assert_rc(weft_future_set_result(fs[1], NULL), 0);
    ck_assert_rc(weft_futures_wait(fs, 3, WEFT_FIRST_COMPLETED, done, &nd,
                                   WEFT_NOW), 0);
    ck_assert_int_eq(nd, 1);
    ck_assert(!done[0] && done[1] && !done[2]);
    ck_assert_rc(weft_futures_wait(fs, 3, WEFT_FIRST_FAILURE, done, &nd,
                                   WEFT_NOW), -ETIMEDOUT);
    ck_assert_rc(weft_futures_wait(fs, 3, WEFT_ALL_COMPLETED, done, &nd,
                                   WEFT_NOW), -ETIMEDOUT);
    ck_assert_rc(weft_future_set_error(fs[2], -EIO, NULL), 0);
    ck_assert_rc(weft_futures_wait(fs, 3, WEFT_FIRST_FAILURE, done, &nd,
                                   WEFT_NOW), 0);
    ck_assert_int_eq(nd, 2);
    ck_assert_rc(weft_future_cancel(fs[0]), 0);
    ck_assert_rc(weft_futures_wait(fs, 3, WEFT_ALL_COMPLETED, done, &nd,
                                   WEFT_FOREVER), 0);
    ck_assert_int_eq(nd, 3);
    ck_assert_rc(weft_futures_wait(fs, 3, 0, NULL, NULL, WEFT_NOW), -EINVAL);
    weft_future *withnull[2] = {fs[0], NULL};
    ck_assert_rc(weft_futures_wait(withnull, 2, WEFT_ALL_COMPLETED, NULL,
                                   NULL, WEFT_NOW), -EINVAL);
    weft_future_error(fs[2], NULL, NULL, WEFT_NOW);
    for (int i = 0; i < 3; i++)
        weft_future_release(fs[i]);
}
END_TEST

struct completer {
    weft_future **fs;
    int n;
    int fail_at; /* index completed with an error, or -1 */
    weft_event go;
};

/* Completes fs[0..n) one by one, in reverse order. */
static int complete_all(void *arg)
{
    struct completer *c = arg;
    weft_event_wait(&c->go, WEFT_FOREVER);
    for (int i = c->n - 1; i >= 0; i--) {
        int rc = i == c->fail_at ? weft_future_set_error(c->fs[i], -EIO, NULL)
                                 : weft_future_set_result(c->fs[i], NULL);
        if (rc != 0)
            return rc;
    }
    return 0;
}

START_TEST(wait_all_across_threads)
{
    enum { N = 64 };
    weft_future *fs[N + 1];
    for (int i = 0; i < N; i++)
        fs[i] = make();
    fs[N] = fs[5]; /* a duplicate */
    struct completer c = {fs, N, -1, WEFT_EVENT_INIT};
    tt *t = tt_start(complete_all, &c);
    weft_event_set(&c.go);
    bool done[N + 1];
    size_t nd = 0;
    ck_assert_rc(weft_futures_wait(fs, N + 1, WEFT_ALL_COMPLETED, done, &nd,
                                   WEFT_FOREVER), 0);
    ck_assert_int_eq(nd, N + 1);
    ck_assert_int_eq(tt_join(t), 0);
    for (int i = 0; i < N; i++)
        weft_future_release(fs[i]);
}
END_TEST

START_TEST(wait_first_failure_returns_at_the_failure)
{
    enum { N = 8 };
    weft_future *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = make();
    /* Completed in reverse: 7, 6, ... the failure at 4 ends the wait even
     * though 0..3 stay pending (they are never completed). */
    struct completer c = {fs + 4, 4, 0, WEFT_EVENT_INIT};
    tt *t = tt_start(complete_all, &c);
    weft_event_set(&c.go);
    size_t nd = 0;
    bool done[N];
    ck_assert_rc(weft_futures_wait(fs, N, WEFT_FIRST_FAILURE, done, &nd,
                                   weft_deadline_in(MS(10000))), 0);
    ck_assert_int_eq(tt_join(t), 0);
    ck_assert_int_eq(nd, 4);
    ck_assert(done[4] && !done[3]);
    ck_assert_int_eq(weft_future_get_state(fs[4]), WEFT_FUTURE_FAILED);
    /* A deadline: 0..3 never complete. */
    int64_t t0 = weft_now();
    ck_assert_rc(weft_futures_wait(fs, N, WEFT_ALL_COMPLETED, done, &nd,
                                   weft_deadline_in(MS(30))), -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(30), MS(2000));
    ck_assert_int_eq(nd, 4);
    weft_future_error(fs[4], NULL, NULL, WEFT_NOW);
    for (int i = 0; i < N; i++)
        weft_future_release(fs[i]);
}
END_TEST

START_TEST(as_completed_hands_back_in_completion_order)
{
    enum { N = 6 };
    weft_future *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = make();
    /* 3 and 1 are done before the iteration starts: they come first, in
     * input order; the rest come as they complete (5, 4, 2, 0). */
    ck_assert_rc(weft_future_set_result(fs[3], NULL), 0);
    ck_assert_rc(weft_future_set_result(fs[1], NULL), 0);
    weft_as_completed *it;
    ck_assert_rc(weft_as_completed_start(&it, fs, N), 0);
    weft_future *got;
    ck_assert_rc(weft_as_completed_next(it, &got, WEFT_NOW), 0);
    ck_assert_ptr_eq(got, fs[1]);
    ck_assert_rc(weft_as_completed_next(it, &got, WEFT_NOW), 0);
    ck_assert_ptr_eq(got, fs[3]);
    ck_assert_rc(weft_as_completed_next(it, &got, WEFT_NOW), -ETIMEDOUT);
    int order[] = {5, 4, 2, 0};
    for (int k = 0; k < 4; k++) {
        ck_assert_rc(weft_future_set_result(fs[order[k]], NULL), 0);
        ck_assert_rc(weft_as_completed_next(it, &got, WEFT_FOREVER), 0);
        ck_assert_ptr_eq(got, fs[order[k]]);
    }
    ck_assert_rc(weft_as_completed_next(it, &got, WEFT_FOREVER), -EPIPE);
    ck_assert_rc(weft_as_completed_end(it), 0);
    for (int i = 0; i < N; i++)
        weft_future_release(fs[i]);
}
END_TEST

START_TEST(as_completed_across_threads_and_early_end)
{
    enum { N = 32 };
    weft_future *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = make();
    weft_as_completed *it;
    ck_assert_rc(weft_as_completed_start(&it, fs, N), 0);
    /* The iterator holds its own references. */
    weft_future *keep[N];
    memcpy(keep, fs, sizeof fs);
    struct completer c = {keep, N, 7, WEFT_EVENT_INIT};
    tt *t = tt_start(complete_all, &c);
    weft_event_set(&c.go);
    int seen[N] = {0};
    weft_future *got;
    for (int k = 0; k < N / 2; k++) {
        ck_assert_rc(weft_as_completed_next(it, &got, WEFT_FOREVER), 0);
        ck_assert(weft_future_done(got));
        for (int i = 0; i < N; i++)
            seen[i] += got == fs[i];
    }
    ck_assert_int_eq(tt_join(t), 0);
    /* Ended with half not handed back. */
    ck_assert_rc(weft_as_completed_end(it), 0);
    int total = 0;
    for (int i = 0; i < N; i++) {
        ck_assert_int_le(seen[i], 1);
        total += seen[i];
    }
    ck_assert_int_eq(total, N / 2);
    weft_future_error(fs[7], NULL, NULL, WEFT_NOW);
    for (int i = 0; i < N; i++)
        weft_future_release(fs[i]);
    ck_assert_rc(weft_as_completed_start(NULL, fs, 1), -EINVAL);
    ck_assert_rc(weft_as_completed_end(NULL), -EINVAL);
}
END_TEST

START_TEST(as_completed_of_nothing_ends_at_once)
{
    weft_as_completed *it;
    weft_future *got;
    ck_assert_rc(weft_as_completed_start(&it, NULL, 0), 0);
    ck_assert_rc(weft_as_completed_next(it, &got, WEFT_FOREVER), -EPIPE);
    ck_assert_rc(weft_as_completed_end(it), 0);
}
END_TEST

static int green_wait_any(void *arg)
{
    weft_future **fs = arg;
    size_t nd = 0;
    int rc = weft_futures_wait(fs, 2, WEFT_FIRST_COMPLETED, NULL, &nd,
                               WEFT_FOREVER);
    return rc != 0 ? rc : (int)nd;
}

START_TEST(green_thread_waits_on_several)
{
    ck_assert_rc(weft_runtime_start(2), 0);
    weft_future *fs[2] = {make(), make()};
    weft_green *g;
    ck_assert_rc(weft_green_spawn(&g, green_wait_any, fs, NULL), 0);
    ck_assert_rc(weft_future_set_result(fs[1], NULL), 0);
    int rc = -1;
    ck_assert_rc(weft_green_join(g, &rc, WEFT_FOREVER), 0);
    ck_assert_int_eq(rc, 1);
    weft_future_release(fs[0]);
    weft_future_release(fs[1]);
    ck_assert_rc(weft_runtime_shutdown(WEFT_FOREVER), 0);
}
END_TEST

static Suite *future_suite(void)
{
    Suite *s = suite_create("future");
    TCase *c = tcase_create("future");
    tcase_set_timeout(c, 30);
    tcase_add_test(c, new_future_is_pending);
    tcase_add_test(c, result_is_handed_over_once_set);
    tcase_add_test(c, error_has_code_and_message);
    tcase_add_test(c, cancel_only_while_pending);
    tcase_add_test(c, result_deadline_passes);
    tcase_add_test(c, os_thread_waiter_is_woken);
    tcase_add_test(c, green_thread_waits_os_thread_sets);
    tcase_add_test(c, os_thread_waits_green_thread_sets);
    tcase_add_test(c, cancelled_green_waiter_returns_ecanceled);
    tcase_add_test(c, callbacks_run_once_in_order);
    tcase_add_test(c, callbacks_run_on_cancel_and_failure);
    tcase_add_test(c, callback_may_release_its_future);
    tcase_add_test(c, callbacks_racing_completion_run_exactly_once);
    tcase_add_test(c, unread_failure_is_reported_at_release);
    tcase_add_test(c, owned_value_lives_as_long_as_the_future);
    tcase_add_test(c, wait_modes_at_once);
    tcase_add_test(c, wait_all_across_threads);
    tcase_add_test(c, wait_first_failure_returns_at_the_failure);
    tcase_add_test(c, as_completed_hands_back_in_completion_order);
    tcase_add_test(c, as_completed_across_threads_and_early_end);
    tcase_add_test(c, as_completed_of_nothing_ends_at_once);
    tcase_add_test(c, green_thread_waits_on_several);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(future_suite)
