/* stress_executor.c - executors under racing submitters, cancellers and
 * shutdown.  Every submission is accounted for exactly once: refused
 * (-EPIPE after shutdown), cancelled (its future says so), or run (its
 * task counted itself, and its future holds its result); nothing is lost
 * and nothing runs twice.  The same over OS threads and green threads, and
 * with the waits (as-completed, wait-any) racing completion. */
#include "support.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NSUB = 3, PER_SUB = 4000 };

struct shared {
    weft_executor *ex;
    _Atomic int *runs;            /* per task: how many times it ran */
    _Atomic long refused, cancelled, ran;
    long per_sub;
    bool cancel;              /* the shutdown cancels pending work */
};

struct sub {
    struct shared *s;
    int id;
};

static int count_task(void *arg, void **result)
{
    _Atomic int *slot = arg;
    atomic_fetch_add(slot, 1);
    *result = arg;
    return 0;
}

/* Account for each future of batch: ran or cancelled, nothing else. */
static int settle(struct shared *s, weft_future **batch, int nb)
{
    for (int j = 0; j < nb; j++) {
        void *v = NULL;
        int rc = weft_future_result(batch[j], &v, WEFT_FOREVER);
        if (rc == -ECANCELED && weft_future_cancelled(batch[j]))
            atomic_fetch_add(&s->cancelled, 1);
        else if (rc == 0 && v != NULL)
            atomic_fetch_add(&s->ran, 1);
        else
            return rc != 0 ? rc : -EINVAL;
        weft_future_release(batch[j]);
    }
    return 0;
}

static int submitter(void *arg)
{
    struct sub *me = arg;
    struct shared *s = me->s;
    unsigned rnd = (unsigned)me->id * 2654435761u + 1;
    weft_future *batch[16];
    int nb = 0;
    for (long i = 0; i < s->per_sub; i++) {
        long k = me->id * s->per_sub + i;
        weft_future *f = NULL;
        int rc = weft_executor_submit(s->ex, count_task, &s->runs[k], &f,
                                      WEFT_FOREVER);
        if (rc == -EPIPE) {
            atomic_fetch_add(&s->refused, 1);
            continue;
        }
        if (rc != 0)
            return rc;
        rnd = rnd * 1103515245u + 12345u;
        if ((rnd >> 16) % 4 == 0)
            weft_future_cancel(f); /* may or may not win */
        batch[nb++] = f;
        if (nb == 16 && (rc = settle(s, batch, nb)) != 0)
            return rc;
        nb = nb == 16 ? 0 : nb;
    }
    return settle(s, batch, nb);
}

static int shutter(void *arg)
{
    struct shared *s = arg;
    unsigned flags = s->cancel ? WEFT_SHUTDOWN_CANCEL_PENDING : 0;
    /* Shut down once some work has been accepted, while submitters run. */
    while (atomic_load(&s->ran) + atomic_load(&s->cancelled) < 500)
        weft_sleep_until(weft_deadline_in(WEFT_NSEC_PER_MSEC / 10));
    return weft_executor_shutdown(s->ex, flags, WEFT_FOREVER);
}

static void run_race(int green, bool shut, int workers, bool cancel)
{
    if (green)
        ck_assert_rc(weft_runtime_start(2), 0);
    struct shared s;
    memset(&s, 0, sizeof s);
    s.per_sub = PER_SUB * test_scale();
    long total = NSUB * s.per_sub;
    s.runs = calloc((size_t)total, sizeof *s.runs);
    s.cancel = cancel;
    weft_executor_opts o = {.max_workers = workers};
    ck_assert_rc(green ? weft_green_executor_create(&s.ex, &o)
                       : weft_thread_pool_create(&s.ex, &o), 0);
    struct sub subs[NSUB];
    tt *t[NSUB + 1];
    for (int i = 0; i < NSUB; i++) {
        subs[i] = (struct sub){&s, i};
        t[i] = tt_start(submitter, &subs[i]);
    }
    if (shut)
        t[NSUB] = tt_start(shutter, &s);
    for (int i = 0; i < NSUB; i++)
        ck_assert_rc(tt_join(t[i]), 0);
    if (shut)
        ck_assert_rc(tt_join(t[NSUB]), 0);
    ck_assert_rc(weft_executor_destroy(s.ex), 0);
    long once = 0;
    for (long k = 0; k < total; k++) {
        ck_assert_int_le(s.runs[k], 1);
        once += s.runs[k];
    }
    ck_assert_int_eq(once, s.ran);
    ck_assert_int_eq(s.ran + s.cancelled + s.refused, total);
    if (!shut)
        ck_assert_int_eq(s.refused, 0);
    free(s.runs);
    if (green)
        ck_assert_rc(weft_runtime_shutdown(WEFT_FOREVER), 0);
}

START_TEST(submit_and_cancel_race)
{
    run_race(_i, false, 3, false);
}
END_TEST

START_TEST(shutdown_races_submit)
{
    run_race(_i, true, 3, true);
}
END_TEST

/* One worker: every worker is started after the first submit, so the
 * submitters take the lock-free inbox, racing the shutdown's close. */
START_TEST(shutdown_races_the_inbox)
{
    run_race(_i % 2, true, 1, _i >= 2);
}
END_TEST

/* ---- waits racing completion -------------------------------------------- */

static int slow_id(void *arg, void **result)
{
    *result = arg;
    for (volatile int i = 0; i < (int)((uintptr_t)arg % 500); i++)
        ;
    return 0;
}

START_TEST(as_completed_and_wait_race_completion)
{
    weft_executor *ex;
    weft_executor_opts o = {.max_workers = 2};
    ck_assert_rc(weft_thread_pool_create(&ex, &o), 0);
    int rounds = (int)(300 * test_scale());
    enum { N = 20 };
    for (int r = 0; r < rounds; r++) {
        weft_future *fs[N];
        for (int i = 0; i < N; i++)
            ck_assert_rc(weft_executor_submit(ex, slow_id,
                                              (void *)(uintptr_t)(r * N + i),
                                              &fs[i], WEFT_FOREVER), 0);
        if (r % 2 == 0) {
            weft_as_completed *it;
            ck_assert_rc(weft_as_completed_start(&it, fs, N), 0);
            int seen = 0;
            weft_future *got;
            while (weft_as_completed_next(it, &got, WEFT_FOREVER) == 0) {
                ck_assert(weft_future_done(got));
                seen++;
            }
            ck_assert_int_eq(seen, N);
            ck_assert_rc(weft_as_completed_end(it), 0);
        } else {
            size_t nd = 0;
            ck_assert_rc(weft_futures_wait(fs, N, WEFT_FIRST_COMPLETED, NULL,
                                           &nd, WEFT_FOREVER), 0);
            ck_assert_int_ge(nd, 1);
            ck_assert_rc(weft_futures_wait(fs, N, WEFT_ALL_COMPLETED, NULL,
                                           &nd, WEFT_FOREVER), 0);
            ck_assert_int_eq(nd, N);
        }
        for (int i = 0; i < N; i++)
            weft_future_release(fs[i]);
    }
    ck_assert_rc(weft_executor_destroy(ex), 0);
}
END_TEST

static Suite *executor_stress_suite(void)
{
    Suite *s = suite_create("executor_stress");
    TCase *c = tcase_create("executor_stress");
    tcase_set_timeout(c, 120);
    tcase_add_loop_test(c, submit_and_cancel_race, 0, 2);
    tcase_add_loop_test(c, shutdown_races_submit, 0, 2);
    tcase_add_loop_test(c, shutdown_races_the_inbox, 0, 4);
    tcase_add_test(c, as_completed_and_wait_race_completion);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(executor_stress_suite)
