/* test_once.c - weft_once: runs once, everyone gets fn's value, late
 * callers wait for a running fn, recursion, cancellation, visibility. */
#include "support.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "park/park.h"

struct ow {
    weft_once once;
    atomic_int runs;
    int rc;
    long data[16];          /* written by fn, plain */
    weft_event go;          /* fn waits for it when blocking */
    bool blocking;
    atomic_int started;
    _Atomic(weft__waiter *) who;
};

static int fn(void *p)
{
    struct ow *w = p;
    atomic_fetch_add(&w->runs, 1);
    if (w->blocking)
        weft_event_wait(&w->go, WEFT_FOREVER);
    for (int i = 0; i < 16; i++)
        w->data[i] = i * 7;
    return w->rc;
}

START_TEST(static_init_runs_fn_once)
{
    static struct ow w = {.once = WEFT_ONCE_INIT, .rc = 42};
    ck_assert(!weft_once_done(&w.once));
    ck_assert_int_eq(weft_once_call(&w.once, fn, &w), 42);
    ck_assert(weft_once_done(&w.once));
    ck_assert_int_eq(weft_once_call(&w.once, fn, &w), 42);
    ck_assert_int_eq(atomic_load(&w.runs), 1);
}
END_TEST

START_TEST(zeroed_storage_is_a_new_once)
{
    struct ow w;
    memset(&w, 0, sizeof w);
    w.rc = 0;
    ck_assert(!weft_once_done(&w.once));
    ck_assert_int_eq(weft_once_call(&w.once, fn, &w), 0);
    ck_assert(weft_once_done(&w.once));
}
END_TEST

START_TEST(error_value_is_returned_to_everyone)
{
    struct ow w = {.once = WEFT_ONCE_INIT, .rc = -EIO};
    ck_assert_int_eq(weft_once_call(&w.once, fn, &w), -EIO);
    ck_assert(weft_once_done(&w.once)); /* done even though it failed */
    ck_assert_int_eq(weft_once_call(&w.once, fn, &w), -EIO);
    ck_assert_int_eq(atomic_load(&w.runs), 1);
}
END_TEST

static int other_fn(void *p)
{
    (void)p;
    return -1;
}

START_TEST(later_calls_ignore_their_own_fn)
{
    struct ow w = {.once = WEFT_ONCE_INIT, .rc = 7};
    ck_assert_int_eq(weft_once_call(&w.once, fn, &w), 7);
    ck_assert_int_eq(weft_once_call(&w.once, other_fn, NULL), 7);
}
END_TEST

static int caller(void *p)
{
    struct ow *w = *(struct ow **)p;
    int rc = weft_once_call(&w->once, fn, w);
    if (rc != w->rc)
        return -1;
    for (int i = 0; i < 16; i++) /* fn's writes are visible */
        if (w->data[i] != i * 7)
            return -2;
    return 0;
}

START_TEST(concurrent_callers_wait_and_share_the_value)
{
    struct ow w = {.once = WEFT_ONCE_INIT, .rc = 5, .blocking = true,
                   .go = WEFT_EVENT_INIT};
    struct ow *args[6] = {&w, &w, &w, &w, &w, &w};
    tt *t[6];
    for (int i = 0; i < 6; i++)
        t[i] = tt_start(caller, &args[i]);
    /* The first caller is inside fn; let the others come and wait. */
    while (atomic_load(&w.runs) == 0)
        sched_yield();
    for (int spin = 0; spin < 1000; spin++)
        sched_yield();
    ck_assert(!weft_once_done(&w.once));
    weft_event_set(&w.go);
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(tt_join(t[i]), 0);
    ck_assert_int_eq(atomic_load(&w.runs), 1);
}
END_TEST

START_TEST(many_rounds_run_fn_exactly_once)
{
    for (int round = 0; round < 50; round++) {
        struct ow w = {.once = WEFT_ONCE_INIT, .rc = round};
        struct ow *args[4] = {&w, &w, &w, &w};
        ck_assert_int_eq(tt_run_n(4, caller, args, sizeof args[0]), 0);
        ck_assert_int_eq(atomic_load(&w.runs), 1);
    }
}
END_TEST

static weft_once rec_once = WEFT_ONCE_INIT;
static int rec_inner;

static int recursive_fn(void *p)
{
    (void)p;
    rec_inner = weft_once_call(&rec_once, recursive_fn, NULL);
    return 3;
}

START_TEST(recursive_call_is_edeadlk)
{
    ck_assert_int_eq(weft_once_call(&rec_once, recursive_fn, NULL), 3);
    ck_assert_rc(rec_inner, -EDEADLK);
    ck_assert_int_eq(weft_once_call(&rec_once, recursive_fn, NULL), 3);
}
END_TEST

static int waiting_caller(void *p)
{
    struct ow *w = p;
    atomic_store(&w->who, weft__self());
    atomic_store(&w->started, 1);
    return weft_once_call(&w->once, fn, w);
}

static int first_caller(void *p)
{
    struct ow *w = p;
    return weft_once_call(&w->once, fn, w);
}

START_TEST(cancelled_waiter_returns_ecanceled)
{
    struct ow w = {.once = WEFT_ONCE_INIT, .rc = 9, .blocking = true,
                   .go = WEFT_EVENT_INIT};
    tt *runner = tt_start(first_caller, &w);
    while (atomic_load(&w.runs) == 0)
        sched_yield();
    tt *t = tt_start(waiting_caller, &w);
    while (!atomic_load(&w.started))
        sched_yield();
    weft__waiter_cancel(atomic_load(&w.who));
    ck_assert_rc(tt_join(t), -ECANCELED);
    ck_assert(!weft_once_done(&w.once));
    weft_event_set(&w.go);
    ck_assert_int_eq(tt_join(runner), 9);
    ck_assert_int_eq(weft_once_call(&w.once, fn, &w), 9);
    ck_assert_int_eq(atomic_load(&w.runs), 1);
}
END_TEST

START_TEST(fini_is_ebusy_while_fn_runs)
{
    struct ow w = {.once = WEFT_ONCE_INIT, .rc = 3, .blocking = true,
                   .go = WEFT_EVENT_INIT};
    ck_assert_rc(weft_once_fini(&w.once), 0); /* never called: free */
    tt *runner = tt_start(first_caller, &w);
    while (atomic_load(&w.runs) == 0)
        sched_yield();
    ck_assert_rc(weft_once_fini(&w.once), -EBUSY);
    weft_event_set(&w.go);
    ck_assert_int_eq(tt_join(runner), 3);
    ck_assert_rc(weft_once_fini(&w.once), 0);
}
END_TEST

static int idle_waiting_caller(void *p)
{
    struct sched_param sp = {0};
    (void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
    return waiting_caller(p);
}

/* A waiter cancelled while the test holds the once's guard is stuck on the
 * guard with its entry queued; the runner, finishing, may pop that entry and
 * lose the claim.  fini must not return 0 before that waiter has left: the
 * test poisons the storage as soon as fini returns 0, and a waiter still on
 * its way would hang on the poisoned guard (or touch freed memory under
 * ASan).  On one CPU, with the waiter at idle priority, the runner usually
 * gets the guard first. */
START_TEST(fini_waits_for_a_waiter_whose_wake_lost_the_claim)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    (void)sched_setaffinity(0, sizeof one, &one);
    for (int i = 0; i < 100; i++) {
        struct ow *w = calloc(1, sizeof *w);
        ck_assert_ptr_nonnull(w);
        w->rc = 4;
        w->blocking = true;
        weft_event_init(&w->go);
        tt *runner = tt_start(first_caller, w);
        while (atomic_load(&w->runs) == 0)
            sched_yield();
        tt *t = tt_start(idle_waiting_caller, w);
        /* Queued once fini sees a waiter (or a running fn: then retry). */
        weft__waiter *who;
        while ((who = atomic_load(&w->who)) == NULL)
            sched_yield();
        for (;;) {
            weft__waitq_lock(&w->once.wq);
            bool queued = !weft__waitq_empty(&w->once.wq);
            if (queued) {
                weft__waiter_cancel(who);
                weft_event_set(&w->go); /* the runner finishes fn */
            }
            weft__waitq_unlock(&w->once.wq);
            if (queued)
                break;
            sched_yield();
        }
        ck_assert_int_eq(tt_join(runner), 4);
        while (weft_once_fini(&w->once) != 0)
            sched_yield();
        memset(&w->once, 0xa5, sizeof w->once);
        int rc = tt_join(t);
        ck_assert_msg(rc == 4 || rc == -ECANCELED, "call returned %d", rc);
        free(w);
    }
}
END_TEST

static Suite *once_suite(void)
{
    Suite *s = suite_create("once");
    TCase *c = tcase_create("once");
    tcase_set_timeout(c, 20);
    tcase_add_test(c, static_init_runs_fn_once);
    tcase_add_test(c, fini_is_ebusy_while_fn_runs);
    tcase_add_test(c, fini_waits_for_a_waiter_whose_wake_lost_the_claim);
    tcase_add_test(c, zeroed_storage_is_a_new_once);
    tcase_add_test(c, error_value_is_returned_to_everyone);
    tcase_add_test(c, later_calls_ignore_their_own_fn);
    tcase_add_test(c, concurrent_callers_wait_and_share_the_value);
    tcase_add_test(c, many_rounds_run_fn_exactly_once);
    tcase_add_test(c, recursive_call_is_edeadlk);
    tcase_add_test(c, cancelled_waiter_returns_ecanceled);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(once_suite)
