/* test_barrier.c - weft_barrier: arrival indexes per cycle, the action
 * (before release, failing), breaking by timeout, cancellation, abort,
 * reset, accessors and destroy while in use, deadlines and cancellation
 * while the action runs, surplus arrivals. */
#include "support.h"

#include <sched.h>
#include <stdatomic.h>

#include "park/park.h"

struct bw {
    weft_barrier *b;
    int64_t deadline;
    int cycles;
    atomic_int returned;        /* waits that have returned */
    atomic_int seen[64];        /* per cycle: bitmask of indexes */
    atomic_int actions;
    atomic_int action_saw_returned;
    int action_rc;
    _Atomic(weft__waiter *) who[8];
    atomic_int nwho;
};

static int action(void *p)
{
    struct bw *w = p;
    atomic_fetch_add(&w->actions, 1);
    atomic_fetch_add(&w->action_saw_returned, atomic_load(&w->returned));
    return w->action_rc;
}

static int party(void *p)
{
    struct bw *w = *(struct bw **)p;
    atomic_store(&w->who[atomic_fetch_add(&w->nwho, 1)], weft__self());
    for (int c = 0; c < w->cycles; c++) {
        int rc = weft_barrier_wait(w->b, w->deadline);
        atomic_fetch_add(&w->returned, 1);
        if (rc < 0)
            return rc;
        if (rc >= weft_barrier_parties(w->b))
            return -1000;
        if (atomic_fetch_or(&w->seen[c], 1 << rc) & (1 << rc))
            return -1001; /* an index twice in one cycle */
    }
    return 0;
}

static void until_n_waiting(weft_barrier *b, int n)
{
    while (weft_barrier_n_waiting(b) < n)
        sched_yield();
}

START_TEST(parties_below_one_is_einval)
{
    weft_barrier *b = NULL;
    ck_assert_rc(weft_barrier_create(&b, 0, NULL, NULL), -EINVAL);
    ck_assert_rc(weft_barrier_create(&b, -3, NULL, NULL), -EINVAL);
    ck_assert_ptr_null(b);
}
END_TEST

START_TEST(accessors_of_a_new_barrier)
{
    weft_barrier *b;
    ck_assert_rc(weft_barrier_create(&b, 3, NULL, NULL), 0);
    ck_assert_int_eq(weft_barrier_parties(b), 3);
    ck_assert_int_eq(weft_barrier_n_waiting(b), 0);
    ck_assert(!weft_barrier_broken(b));
    ck_assert_rc(weft_barrier_destroy(b), 0);
}
END_TEST

START_TEST(single_party_passes_at_once_and_runs_action)
{
    struct bw w = {0};
    ck_assert_rc(weft_barrier_create(&w.b, 1, action, &w), 0);
    for (int i = 0; i < 5; i++)
        ck_assert_rc(weft_barrier_wait(w.b, WEFT_NOW), 0);
    ck_assert_int_eq(atomic_load(&w.actions), 5);
    ck_assert_rc(weft_barrier_destroy(w.b), 0);
}
END_TEST

START_TEST(each_index_once_per_cycle)
{
    struct bw w = {.deadline = WEFT_FOREVER, .cycles = 64};
    ck_assert_rc(weft_barrier_create(&w.b, 4, NULL, NULL), 0);
    struct bw *args[4] = {&w, &w, &w, &w};
    ck_assert_int_eq(tt_run_n(4, party, args, sizeof args[0]), 0);
    for (int c = 0; c < 64; c++)
        ck_assert_int_eq(atomic_load(&w.seen[c]), 0xf);
    ck_assert(!weft_barrier_broken(w.b));
    ck_assert_int_eq(weft_barrier_n_waiting(w.b), 0);
    ck_assert_rc(weft_barrier_destroy(w.b), 0);
}
END_TEST

START_TEST(action_runs_once_before_anyone_is_released)
{
    struct bw w = {.deadline = WEFT_FOREVER, .cycles = 20};
    ck_assert_rc(weft_barrier_create(&w.b, 3, action, &w), 0);
    struct bw *args[3] = {&w, &w, &w};
    ck_assert_int_eq(tt_run_n(3, party, args, sizeof args[0]), 0);
    ck_assert_int_eq(atomic_load(&w.actions), 20);
    /* In cycle c the action sees exactly 3*c returns: none of its own. */
    ck_assert_int_eq(atomic_load(&w.action_saw_returned), 3 * (19 * 20 / 2));
    ck_assert_rc(weft_barrier_destroy(w.b), 0);
}
END_TEST

static int wait_once(void *p)
{
    struct bw *w = p;
    atomic_store(&w->who[atomic_fetch_add(&w->nwho, 1)], weft__self());
    return weft_barrier_wait(w->b, w->deadline);
}

START_TEST(last_arrival_runs_action_with_last_index)
{
    struct bw w = {.deadline = WEFT_FOREVER};
    ck_assert_rc(weft_barrier_create(&w.b, 2, action, &w), 0);
    tt *t = tt_start(wait_once, &w);
    until_n_waiting(w.b, 1);
    ck_assert_int_eq(weft_barrier_n_waiting(w.b), 1);
    ck_assert_rc(weft_barrier_destroy(w.b), -EBUSY);
    ck_assert_int_eq(weft_barrier_wait(w.b, WEFT_FOREVER), 1);
    ck_assert_int_eq(tt_join(t), 0);
    ck_assert_int_eq(atomic_load(&w.actions), 1);
    ck_assert_rc(weft_barrier_destroy(w.b), 0);
}
END_TEST

START_TEST(failing_action_breaks_the_barrier)
{
    struct bw w = {.deadline = WEFT_FOREVER, .action_rc = -EIO};
    ck_assert_rc(weft_barrier_create(&w.b, 3, action, &w), 0);
    tt *t1 = tt_start(wait_once, &w);
    tt *t2 = tt_start(wait_once, &w);
    until_n_waiting(w.b, 2);
    ck_assert_rc(weft_barrier_wait(w.b, WEFT_FOREVER), -EIO);
    ck_assert_rc(tt_join(t1), WEFT_EBROKEN);
    ck_assert_rc(tt_join(t2), WEFT_EBROKEN);
    ck_assert(weft_barrier_broken(w.b));
    ck_assert_int_eq(weft_barrier_n_waiting(w.b), 0);
    ck_assert_rc(weft_barrier_wait(w.b, WEFT_FOREVER), WEFT_EBROKEN);
    ck_assert_rc(weft_barrier_destroy(w.b), 0);
}
END_TEST

START_TEST(timeout_breaks_it_for_everyone)
{
    struct bw w = {.deadline = WEFT_FOREVER};
    ck_assert_rc(weft_barrier_create(&w.b, 3, NULL, NULL), 0);
    tt *t = tt_start(wait_once, &w);
    until_n_waiting(w.b, 1);
    int64_t t0 = weft_now();
    ck_assert_rc(weft_barrier_wait(w.b, weft_deadline_in(MS(50))),
                 -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(50), MS(2000));
    ck_assert_rc(tt_join(t), WEFT_EBROKEN);
    ck_assert(weft_barrier_broken(w.b));
    int64_t t1 = weft_now();
    ck_assert_rc(weft_barrier_wait(w.b, WEFT_FOREVER), WEFT_EBROKEN);
    ck_assert_elapsed(t1, 0, MS(1000));
    ck_assert_rc(weft_barrier_destroy(w.b), 0);
}
END_TEST

START_TEST(wait_now_that_would_block_breaks_it)
{
    weft_barrier *b;
    ck_assert_rc(weft_barrier_create(&b, 2, NULL, NULL), 0);
    ck_assert_rc(weft_barrier_wait(b, WEFT_NOW), -ETIMEDOUT);
    ck_assert(weft_barrier_broken(b));
    weft_barrier_reset(b);
    ck_assert(!weft_barrier_broken(b));
    ck_assert_rc(weft_barrier_destroy(b), 0);
}
END_TEST

START_TEST(cancellation_breaks_it)
{
    struct bw w = {.deadline = WEFT_FOREVER};
    ck_assert_rc(weft_barrier_create(&w.b, 3, NULL, NULL), 0);
    tt *t1 = tt_start(wait_once, &w);
    until_n_waiting(w.b, 1);
    tt *t2 = tt_start(wait_once, &w);
    until_n_waiting(w.b, 2);
    /* Cancel the second arrival. */
    weft__waiter_cancel(atomic_load(&w.who[1]));
    ck_assert_rc(tt_join(t2), -ECANCELED);
    ck_assert_rc(tt_join(t1), WEFT_EBROKEN);
    ck_assert(weft_barrier_broken(w.b));
    ck_assert_rc(weft_barrier_destroy(w.b), 0);
}
END_TEST

START_TEST(abort_breaks_current_and_future_waits)
{
    struct bw w = {.deadline = WEFT_FOREVER};
    ck_assert_rc(weft_barrier_create(&w.b, 3, NULL, NULL), 0);
    tt *t1 = tt_start(wait_once, &w);
    tt *t2 = tt_start(wait_once, &w);
    until_n_waiting(w.b, 2);
    weft_barrier_abort(w.b);
    ck_assert_rc(tt_join(t1), WEFT_EBROKEN);
    ck_assert_rc(tt_join(t2), WEFT_EBROKEN);
    ck_assert(weft_barrier_broken(w.b));
    ck_assert_rc(weft_barrier_wait(w.b, WEFT_FOREVER), WEFT_EBROKEN);
    weft_barrier_abort(w.b); /* twice is fine */
    ck_assert(weft_barrier_broken(w.b));
    ck_assert_rc(weft_barrier_destroy(w.b), 0);
}
END_TEST

START_TEST(reset_fails_waiters_and_makes_it_usable)
{
    struct bw w = {.deadline = WEFT_FOREVER};
    ck_assert_rc(weft_barrier_create(&w.b, 2, NULL, NULL), 0);
    tt *t = tt_start(wait_once, &w);
    until_n_waiting(w.b, 1);
    weft_barrier_reset(w.b);
    ck_assert_rc(tt_join(t), WEFT_EBROKEN);
    ck_assert(!weft_barrier_broken(w.b));
    ck_assert_int_eq(weft_barrier_n_waiting(w.b), 0);
    /* A full new cycle works, with fresh indexes. */
    t = tt_start(wait_once, &w);
    until_n_waiting(w.b, 1);
    ck_assert_int_eq(weft_barrier_wait(w.b, WEFT_FOREVER), 1);
    ck_assert_int_eq(tt_join(t), 0);
    ck_assert_rc(weft_barrier_destroy(w.b), 0);
}
END_TEST

START_TEST(reset_repairs_a_broken_barrier)
{
    struct bw w = {.deadline = WEFT_FOREVER, .cycles = 10};
    ck_assert_rc(weft_barrier_create(&w.b, 2, NULL, NULL), 0);
    weft_barrier_abort(w.b);
    ck_assert_rc(weft_barrier_wait(w.b, WEFT_FOREVER), WEFT_EBROKEN);
    weft_barrier_reset(w.b);
    ck_assert(!weft_barrier_broken(w.b));
    struct bw *args[2] = {&w, &w};
    ck_assert_int_eq(tt_run_n(2, party, args, sizeof args[0]), 0);
    ck_assert_rc(weft_barrier_destroy(w.b), 0);
}
END_TEST

/* An action that aborts the barrier it runs in: its runner and the others
 * see the cycle broken. */
static int aborting_action(void *p)
{
    weft_barrier_abort(*(weft_barrier **)p);
    return 0;
}

START_TEST(abort_during_action_breaks_that_cycle)
{
    struct bw w = {.deadline = WEFT_FOREVER};
    ck_assert_rc(weft_barrier_create(&w.b, 2, aborting_action, &w.b), 0);
    tt *t = tt_start(wait_once, &w);
    until_n_waiting(w.b, 1);
    ck_assert_rc(weft_barrier_wait(w.b, WEFT_FOREVER), WEFT_EBROKEN);
    ck_assert_rc(tt_join(t), WEFT_EBROKEN);
    ck_assert(weft_barrier_broken(w.b));
    ck_assert_rc(weft_barrier_destroy(w.b), 0);
}
END_TEST

/* ---- deadlines and cancellation while the action runs ------------------ */

struct slow {
    weft_barrier *b;
    int64_t deadline;
    _Atomic(weft__waiter *) who;
    atomic_int cancel_it;       /* the action cancels the waiter */
    atomic_int still_cancelled; /* the waiter saw its cancellation kept */
    atomic_int surplus_done;
    int64_t surplus_deadline;
    tt *surplus;
};

static int timed_party(void *p)
{
    struct slow *s = p;
    atomic_store(&s->who, weft__self());
    int rc = weft_barrier_wait(s->b, s->deadline);
    if (weft__waiter_cancelled(weft__self())) {
        atomic_store(&s->still_cancelled, 1);
        weft__waiter_uncancel(weft__self());
    }
    return rc;
}

/* The action: end the other party's park (cancel it, or let its deadline
 * pass), then give it time to react.  Not synchronisation: the waiter gets
 * the right result whenever its park ends; on the old code it broke the
 * barrier meanwhile, and the action merely gives it the time to go wrong
 * (and stops early if it did). */
static int outlive_the_waiter(void *p)
{
    struct slow *s = p;
    int64_t until;
    if (atomic_load(&s->cancel_it)) {
        weft__waiter_cancel(atomic_load(&s->who));
        until = weft_deadline_in(MS(50) * test_slow());
    } else {
        until = s->deadline + MS(50) * test_slow();
    }
    while (!weft_barrier_broken(s->b) && weft_now() < until)
        weft_sleep_until(weft_deadline_in(MS(1)));
    return 0;
}

START_TEST(deadline_passing_during_the_action_waits_for_its_outcome)
{
    struct slow s = {.deadline = weft_deadline_in(MS(30))};
    ck_assert_rc(weft_barrier_create(&s.b, 2, outlive_the_waiter, &s), 0);
    tt *t = tt_start(timed_party, &s);
    until_n_waiting(s.b, 1);
    ck_assert_rc(weft_barrier_wait(s.b, WEFT_FOREVER), 1);
    ck_assert_rc(tt_join(t), 0);
    ck_assert(!weft_barrier_broken(s.b));
    ck_assert_rc(weft_barrier_destroy(s.b), 0);
}
END_TEST

START_TEST(cancel_during_the_action_waits_for_its_outcome_and_stays_pending)
{
    struct slow s = {.deadline = WEFT_FOREVER, .cancel_it = 1};
    ck_assert_rc(weft_barrier_create(&s.b, 2, outlive_the_waiter, &s), 0);
    tt *t = tt_start(timed_party, &s);
    until_n_waiting(s.b, 1);
    ck_assert_rc(weft_barrier_wait(s.b, WEFT_FOREVER), 1);
    ck_assert_rc(tt_join(t), 0);
    ck_assert(atomic_load(&s.still_cancelled));
    ck_assert(!weft_barrier_broken(s.b));
    ck_assert_rc(weft_barrier_destroy(s.b), 0);
}
END_TEST

static int failing_after_the_waiter(void *p)
{
    outlive_the_waiter(p);
    return -EIO;
}

START_TEST(deadline_passing_during_a_failing_action_gets_ebroken)
{
    struct slow s = {.deadline = weft_deadline_in(MS(30))};
    ck_assert_rc(weft_barrier_create(&s.b, 2, failing_after_the_waiter, &s),
                 0);
    tt *t = tt_start(timed_party, &s);
    until_n_waiting(s.b, 1);
    ck_assert_rc(weft_barrier_wait(s.b, WEFT_FOREVER), -EIO);
    ck_assert_rc(tt_join(t), WEFT_EBROKEN);
    ck_assert(weft_barrier_broken(s.b));
    ck_assert_rc(weft_barrier_destroy(s.b), 0);
}
END_TEST

static int surplus_party(void *p)
{
    struct slow *s = p;
    int rc = weft_barrier_wait(s->b, s->surplus_deadline);
    atomic_store(&s->surplus_done, 1);
    return rc;
}

/* The action lets a surplus arrival in and outlives its deadline. */
static int outlive_a_surplus_arrival(void *p)
{
    struct slow *s = p;
    s->surplus_deadline = weft_deadline_in(MS(20));
    s->surplus = tt_start(surplus_party, s);
    /* Not synchronisation: on the old code the surplus arrival returned
     * -ETIMEDOUT meanwhile; now it waits, and the action merely gives it
     * the time to go wrong. */
    int64_t until = s->surplus_deadline + MS(50) * test_slow();
    while (!atomic_load(&s->surplus_done) && weft_now() < until)
        weft_sleep_until(weft_deadline_in(MS(1)));
    return 0;
}

START_TEST(surplus_arrival_waits_out_the_action_then_its_timeout_breaks)
{
    struct slow s = {.deadline = WEFT_FOREVER};
    ck_assert_rc(weft_barrier_create(&s.b, 2, outlive_a_surplus_arrival, &s),
                 0);
    tt *t = tt_start(timed_party, &s);
    until_n_waiting(s.b, 1);
    ck_assert_rc(weft_barrier_wait(s.b, WEFT_FOREVER), 1);
    ck_assert_rc(tt_join(t), 0);
    /* It arrived in the next cycle with its deadline passed. */
    ck_assert_rc(tt_join(s.surplus), -ETIMEDOUT);
    ck_assert(weft_barrier_broken(s.b));
    ck_assert_rc(weft_barrier_destroy(s.b), 0);
}
END_TEST

static Suite *barrier_suite(void)
{
    Suite *s = suite_create("barrier");
    TCase *c = tcase_create("barrier");
    tcase_set_timeout(c, 20);
    tcase_add_test(c, parties_below_one_is_einval);
    tcase_add_test(c, accessors_of_a_new_barrier);
    tcase_add_test(c, single_party_passes_at_once_and_runs_action);
    tcase_add_test(c, each_index_once_per_cycle);
    tcase_add_test(c, action_runs_once_before_anyone_is_released);
    tcase_add_test(c, last_arrival_runs_action_with_last_index);
    tcase_add_test(c, failing_action_breaks_the_barrier);
    tcase_add_test(c, timeout_breaks_it_for_everyone);
    tcase_add_test(c, wait_now_that_would_block_breaks_it);
    tcase_add_test(c, cancellation_breaks_it);
    tcase_add_test(c, abort_breaks_current_and_future_waits);
    tcase_add_test(c, reset_fails_waiters_and_makes_it_usable);
    tcase_add_test(c, reset_repairs_a_broken_barrier);
    tcase_add_test(c, abort_during_action_breaks_that_cycle);
    tcase_add_test(c, deadline_passing_during_the_action_waits_for_its_outcome);
    tcase_add_test(c, cancel_during_the_action_waits_for_its_outcome_and_stays_pending);
    tcase_add_test(c, deadline_passing_during_a_failing_action_gets_ebroken);
    tcase_add_test(c, surplus_arrival_waits_out_the_action_then_its_timeout_breaks);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(barrier_suite)
