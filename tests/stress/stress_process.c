/* stress_process.c - the process pool under load: several threads submit
 * many tasks, some of which crash their workers (SIGSEGV, exit) or are
 * killed with kill_task, while workers are also retired by
 * max_tasks_per_worker, or while one-at-a-time submitters (the direct
 * path to an idle worker) race workers being killed, or while kill_task
 * hits tasks queued, sent behind a running one, running or done; every
 * future must end exactly as its task dictates, no submit may hang, and no
 * process may be left.  Sized for a
 * 2-core machine and scaled by WEFT_TEST_SCALE.
 */
#include "support.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

static int t_square(const void *in, size_t len, weft_bytes *out)
{
    weft_bytes_reader r;
    int64_t x;
    weft_bytes_reader_init(&r, in, len);
    if (weft_bytes_get_i64(&r, &x) != 0)
        return -EINVAL;
    if (x % 37 == 5)
        raise(SIGSEGV);
    if (x % 53 == 7)
        _exit(4);
    return weft_bytes_put_i64(out, x * x);
}

static bool crashes(int64_t x)
{
    return x % 37 == 5 || x % 53 == 7;
}

typedef struct job {
    weft_process_pool *p;
    int64_t base;
    long n;
    long ok, died;
} job;

static int hammer(void *arg)
{
    job *j = arg;
    enum { W = 16 };
    weft_future *win[W];
    int64_t xs[W];
    long head = 0;

    for (long i = 0; i < j->n + W; i++) {
        if (i >= W) { /* the oldest in the window */
            weft_future *f = win[head % W];
            void *v;
            int rc = weft_future_result(f, &v, weft_deadline_ms(60000));
            int64_t x = xs[head % W], y;
            if (crashes(x)) {
                int code = 0;
                if (rc != WEFT_EFAILED ||
                    weft_future_error(f, &code, NULL, WEFT_NOW) != 0 ||
                    code != WEFT_EWORKER)
                    return 1;
                j->died++;
            } else {
                if (rc != 0)
                    return 2;
                memcpy(&y, v, sizeof y);
                if (y != x * x)
                    return 3;
                j->ok++;
            }
            weft_future_release(f);
            head++;
        }
        if (i < j->n) {
            int64_t x = j->base + i;
            xs[i % W] = x;
            if (weft_process_pool_submit(j->p, "sq", &x, sizeof x, 0,
                                         &win[i % W], WEFT_FOREVER) != 0)
                return 4;
        }
    }
    return 0;
}

START_TEST(crashing_tasks_under_load)
{
    enum { T = 3 };
    job jobs[T];
    weft_process_pool_opts o = {0};
    weft_process_pool *p;
    long n = 400 * test_scale(), ok = 0, died = 0, want_died = 0;

    ck_assert_rc(weft_process_register("sq", t_square), 0);
    o.max_workers = 3;
    o.max_tasks_per_worker = 50;
    ck_assert_rc(weft_process_pool_create(&p, &o), 0);
    for (int i = 0; i < T; i++) {
        jobs[i] = (job){p, (int64_t)i * 100000, n, 0, 0};
        for (long k = 0; k < n; k++)
            want_died += crashes(jobs[i].base + k);
    }
    ck_assert_int_eq(tt_run_n(T, hammer, jobs, sizeof jobs[0]), 0);
    for (int i = 0; i < T; i++) {
        ok += jobs[i].ok;
        died += jobs[i].died;
    }
    ck_assert_int_eq(ok + died, T * n);
    ck_assert_int_eq(died, want_died);
    ck_assert(!weft_process_pool_broken(p));
    ck_assert_rc(weft_process_pool_destroy(p), 0);
}
END_TEST

static int t_spin(const void *in, size_t len, weft_bytes *out)
{
    volatile unsigned long n = 0;
    for (;;)
        n++;
    return 0;
}

START_TEST(kill_and_create_pools_repeatedly)
{
    long rounds = 10 * test_scale();
    ck_assert_rc(weft_process_register("sq", t_square), 0);
    ck_assert_rc(weft_process_register("spin", t_spin), 0);
    for (long r = 0; r < rounds; r++) {
        weft_process_pool_opts o = {0};
        weft_process_pool *p;
        weft_future *f[4];
        o.max_workers = 2;
        ck_assert_rc(weft_process_pool_create(&p, &o), 0);
        for (int i = 0; i < 4; i++)
            ck_assert_rc(weft_process_pool_submit(p, "spin", "", 0, 0, &f[i],
                                                  WEFT_FOREVER), 0);
        /* kill whatever runs, cancel what waits, in any order */
        for (int i = 3; i >= 0; i--) {
            int rc = weft_process_pool_kill_task(p, f[i]);
            ck_assert(rc == 0 || rc == -EBUSY);
        }
        for (int i = 0; i < 4; i++) {
            int rc = weft_future_error(f[i], NULL, NULL,
                                       weft_deadline_ms(30000));
            ck_assert(rc == 0 || rc == -ECANCELED);
            weft_future_release(f[i]);
        }
        ck_assert_rc(weft_process_pool_destroy(p), 0);
    }
}
END_TEST

static int t_plain(const void *in, size_t len, weft_bytes *out)
{
    int64_t x;
    if (len != sizeof x)
        return -EINVAL;
    memcpy(&x, in, sizeof x);
    if (x < 0)
        return weft_bytes_put_i64(out, (int64_t)getpid());
    return weft_bytes_put_i64(out, x * x);
}

typedef struct one_job {
    weft_process_pool *p;
    long n;
    long ok, died;
    _Atomic int *stop; /* the killer: run until set */
} one_job;

/* Submit, wait, repeat (the direct path when a worker is idle): each task
 * ends with its result, or with WEFT_EWORKER if its worker was killed. */
static int one_at_a_time(void *arg)
{
    one_job *j = arg;
    for (long i = 0; i < j->n; i++) {
        weft_future *f;
        int64_t x = i, y;
        void *v;
        int rc, code = 0;
        if (weft_process_pool_submit(j->p, "plain", &x, sizeof x, 0, &f,
                                     WEFT_FOREVER) != 0)
            return 1;
        rc = weft_future_result(f, &v, weft_deadline_ms(60000));
        if (rc == 0) {
            memcpy(&y, v, sizeof y);
            if (y != x * x)
                return 2;
            j->ok++;
        } else if (rc == WEFT_EFAILED &&
                   weft_future_error(f, &code, NULL, WEFT_NOW) == 0 &&
                   code == WEFT_EWORKER) {
            j->died++;
        } else {
            return 3;
        }
        weft_future_release(f);
    }
    return 0;
}

/* Ask a worker its pid and kill it, until told to stop. */
static int killer(void *arg)
{
    one_job *j = arg;
    while (!atomic_load(j->stop)) {
        weft_future *f;
        int64_t x = -1, pid;
        void *v;
        if (weft_process_pool_submit(j->p, "plain", &x, sizeof x, 0, &f,
                                     WEFT_FOREVER) != 0)
            return 1;
        if (weft_future_result(f, &v, weft_deadline_ms(60000)) == 0) {
            memcpy(&pid, v, sizeof pid);
            kill((pid_t)pid, SIGKILL);
            j->died++; /* kills made */
        }
        weft_future_release(f);
    }
    return 0;
}

START_TEST(direct_submits_while_workers_are_killed)
{
    enum { T = 2 };
    one_job jobs[T], kj;
    _Atomic int stop = 0;
    weft_process_pool_opts o = {0};
    weft_process_pool *p;
    long n = 1500 * test_scale(), ok = 0, died = 0;
    tt *k;

    ck_assert_rc(weft_process_register("plain", t_plain), 0);
    o.max_workers = 2;
    ck_assert_rc(weft_process_pool_create(&p, &o), 0);
    kj = (one_job){p, 0, 0, 0, &stop};
    for (int i = 0; i < T; i++)
        jobs[i] = (one_job){p, n, 0, 0, &stop};
    k = tt_start(killer, &kj);
    ck_assert_int_eq(tt_run_n(T, one_at_a_time, jobs, sizeof jobs[0]), 0);
    atomic_store(&stop, 1);
    ck_assert_int_eq(tt_join(k), 0);
    for (int i = 0; i < T; i++) {
        ok += jobs[i].ok;
        died += jobs[i].died;
    }
    ck_assert_int_eq(ok + died, T * n);
    ck_assert_int_le(died, kj.died); /* a kill fails at most one task */
    ck_assert(!weft_process_pool_broken(p));
    ck_assert_rc(weft_process_pool_destroy(p), 0);
}
END_TEST

/* Batches of small tasks (workers kept two deep) with every seventh
 * future killed by kill_task at once, whether it is queued, sent behind a
 * running task, running or done: each future ends with its own result or
 * with -ECANCELED, a cancelled one only where kill_task said 0, and the
 * tasks around the killed ones all complete. */
START_TEST(kill_task_while_pipelined)
{
    enum { N = 240 };
    long rounds = 15 * test_scale();
    weft_process_pool_opts o = {0};
    weft_process_pool *p;
    long ok = 0, cancelled = 0, kills = 0, hit = 0;

    ck_assert_rc(weft_process_register("plain", t_plain), 0);
    o.max_workers = 2;
    ck_assert_rc(weft_process_pool_create(&p, &o), 0);
    for (long r = 0; r < rounds; r++) {
        weft_future *f[N];
        bool killed[N];
        for (int i = 0; i < N; i++) {
            int64_t x = i;
            ck_assert_rc(weft_process_pool_submit(p, "plain", &x, sizeof x, 0,
                                                  &f[i], WEFT_FOREVER), 0);
            killed[i] = false;
            if (i >= 7 && i % 7 == 0) {
                int rc = weft_process_pool_kill_task(p, f[i - 7 + r % 7]);
                ck_assert(rc == 0 || rc == -EBUSY);
                killed[i - 7 + r % 7] = rc == 0;
                kills += rc == 0;
            }
        }
        for (int i = 0; i < N; i++) {
            void *v;
            int64_t y;
            int rc = weft_future_result(f[i], &v, weft_deadline_ms(60000));
            if (rc == 0) {
                memcpy(&y, v, sizeof y);
                ck_assert_int_eq(y, (int64_t)i * i);
                ok++;
            } else {
                int code = 0;
                const char *msg = "";
                if (rc == WEFT_EFAILED)
                    ck_assert_rc(weft_future_error(f[i], &code, &msg,
                                                   WEFT_NOW), 0);
                if (killed[i]) {
                    ck_assert_msg(rc == -ECANCELED || code == -ECANCELED,
                                  "%d %d %s", rc, code, msg);
                    cancelled++;
                } else {
                    /* Its worker finished the killed task and started
                     * this one in the microseconds before the SIGKILL
                     * landed: the kill hit it, and it says so. */
                    ck_assert_msg(code == WEFT_EWORKER &&
                                      strstr(msg, "killed by signal 9"),
                                  "task %d: %d %d %s", i, rc, code, msg);
                    hit++;
                }
            }
            weft_future_release(f[i]);
        }
    }
    ck_assert_int_eq(ok + cancelled + hit, rounds * N);
    ck_assert_int_le(cancelled + hit, kills);
    if (hit > 0)
        printf("# %ld of %ld kills hit the task behind\n", hit, kills);
    ck_assert(!weft_process_pool_broken(p));
    ck_assert_rc(weft_process_pool_destroy(p), 0);
}
END_TEST

static Suite *process_stress_suite(void)
{
    Suite *s = suite_create("process_stress");
    TCase *tc = tcase_create("stress");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, crashing_tasks_under_load);
    tcase_add_test(tc, kill_and_create_pools_repeatedly);
    tcase_add_test(tc, direct_submits_while_workers_are_killed);
    tcase_add_test(tc, kill_task_while_pipelined);
    suite_add_tcase(s, tc);
    return s;
}

TEST_MAIN(process_stress_suite)
