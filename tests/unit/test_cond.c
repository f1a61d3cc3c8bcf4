/* test_cond.c - weft_cond: ownership errors, deadlines, notify counts and
 * FIFO order, wait_for, rlock conditions, cancellation, and a timed-out
 * waiter never eating a notify meant for another. */
#include "support.h"

#include <sched.h>
#include <stdatomic.h>

#include "park/park.h"

/* A condition, its lock, and a few waiter threads that record how they
 * fared.  "queued" counts waiters that called wait while holding the lock:
 * once the test holds the lock after seeing queued == k, all k are on the
 * condition's queue (wait queues before it releases). */
struct cw {
    weft_lock l;
    weft_cond c;
    int64_t deadline;
    int queued;         /* guarded by l */
    int woken;          /* guarded by l */
    int order[8];       /* guarded by l: waiter ids in wake-up order */
    bool flag;          /* guarded by l: the predicate of wait_for */
    _Atomic(weft__waiter *) who[8];
};

struct cwarg {
    struct cw *cw;
    int id;
};

static void cw_init(struct cw *w)
{
    *w = (struct cw){.l = WEFT_LOCK_INIT};
    weft_cond_init(&w->c, &w->l);
    w->deadline = WEFT_FOREVER;
}

static int waiter(void *p)
{
    struct cwarg *a = p;
    struct cw *w = a->cw;
    atomic_store(&w->who[a->id], weft__self());
    int rc = weft_lock_acquire(&w->l, WEFT_FOREVER);
    if (rc)
        return rc;
    w->queued++;
    rc = weft_cond_wait(&w->c, w->deadline);
    if (!weft_lock_held(&w->l))
        return -999; /* the lock must be held again, whatever rc */
    if (rc == 0)
        w->order[w->woken++] = a->id;
    weft_lock_release(&w->l);
    return rc;
}

/* Return holding the lock, with n waiters queued on the condition. */
static void lock_when_queued(struct cw *w, int n)
{
    for (;;) {
        ck_assert_rc(weft_lock_acquire(&w->l, WEFT_FOREVER), 0);
        if (w->queued >= n)
            return;
        ck_assert_rc(weft_lock_release(&w->l), 0);
        sched_yield();
    }
}

/* Spin until n waiters have been woken (lock not held on return). */
static void until_woken(struct cw *w, int n)
{
    for (;;) {
        ck_assert_rc(weft_lock_acquire(&w->l, WEFT_FOREVER), 0);
        int k = w->woken;
        ck_assert_rc(weft_lock_release(&w->l), 0);
        if (k >= n)
            return;
        sched_yield();
    }
}

static bool flag_set(void *p)
{
    return ((struct cw *)p)->flag;
}

START_TEST(static_init_and_fini)
{
    static weft_lock l = WEFT_LOCK_INIT;
    static weft_cond c = WEFT_COND_INIT(&l);
    static weft_rlock r = WEFT_RLOCK_INIT;
    static weft_cond cr = WEFT_COND_INIT_RLOCK(&r);
    ck_assert_rc(weft_lock_acquire(&l, WEFT_FOREVER), 0);
    ck_assert_rc(weft_cond_notify(&c, 1), 0);
    ck_assert_rc(weft_cond_wait(&c, weft_deadline_in(1000)), -ETIMEDOUT);
    ck_assert_rc(weft_lock_release(&l), 0);
    ck_assert_rc(weft_rlock_acquire(&r, WEFT_FOREVER), 0);
    ck_assert_rc(weft_cond_notify_all(&cr), 0);
    ck_assert_rc(weft_rlock_release(&r), 0);
    ck_assert_rc(weft_cond_fini(&c), 0);
    ck_assert_rc(weft_cond_fini(&cr), 0);
}
END_TEST

START_TEST(without_the_lock_is_eperm)
{
    struct cw w;
    cw_init(&w);
    ck_assert_rc(weft_cond_wait(&w.c, WEFT_FOREVER), -EPERM);
    ck_assert_rc(weft_cond_wait_for(&w.c, flag_set, &w, WEFT_FOREVER),
                 -EPERM);
    ck_assert_rc(weft_cond_notify(&w.c, 1), -EPERM);
    ck_assert_rc(weft_cond_notify_all(&w.c), -EPERM);
    ck_assert(!weft_lock_locked(&w.l));
}
END_TEST

static int notify_other(void *p)
{
    return weft_cond_notify(p, 1);
}

START_TEST(lock_held_by_another_thread_is_eperm)
{
    struct cw w;
    cw_init(&w);
    ck_assert_rc(weft_lock_acquire(&w.l, WEFT_FOREVER), 0);
    ck_assert_rc(tt_join(tt_start(notify_other, &w.c)), -EPERM);
    ck_assert_rc(weft_lock_release(&w.l), 0);
}
END_TEST

START_TEST(negative_n_is_einval_zero_is_noop)
{
    struct cw w;
    cw_init(&w);
    struct cwarg a = {&w, 0};
    tt *t = tt_start(waiter, &a);
    lock_when_queued(&w, 1);
    ck_assert_rc(weft_cond_notify(&w.c, -1), -EINVAL);
    ck_assert_rc(weft_cond_notify(&w.c, 0), 0);
    ck_assert_rc(weft_cond_fini(&w.c), -EBUSY); /* still waiting */
    ck_assert_rc(weft_cond_notify(&w.c, 1), 0);
    ck_assert_rc(weft_lock_release(&w.l), 0);
    ck_assert_rc(tt_join(t), 0);
    ck_assert_rc(weft_cond_fini(&w.c), 0);
}
END_TEST

START_TEST(wait_now_times_out_holding_lock)
{
    struct cw w;
    cw_init(&w);
    ck_assert_rc(weft_lock_acquire(&w.l, WEFT_FOREVER), 0);
    int64_t t0 = weft_now();
    ck_assert_rc(weft_cond_wait(&w.c, WEFT_NOW), -ETIMEDOUT);
    ck_assert_elapsed(t0, 0, MS(1000));
    ck_assert(weft_lock_held(&w.l));
    ck_assert_rc(weft_lock_release(&w.l), 0);
}
END_TEST

START_TEST(wait_times_out_at_deadline_holding_lock)
{
    struct cw w;
    cw_init(&w);
    ck_assert_rc(weft_lock_acquire(&w.l, WEFT_FOREVER), 0);
    int64_t t0 = weft_now();
    ck_assert_rc(weft_cond_wait(&w.c, weft_deadline_in(MS(50))), -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(50), MS(2000));
    ck_assert(weft_lock_held(&w.l));
    ck_assert_rc(weft_lock_release(&w.l), 0);
    ck_assert_rc(weft_cond_fini(&w.c), 0);
}
END_TEST

START_TEST(notify_wakes_in_fifo_order)
{
    struct cw w;
    cw_init(&w);
    struct cwarg a[3] = {{&w, 0}, {&w, 1}, {&w, 2}};
    tt *t[3];
    for (int i = 0; i < 3; i++) {
        t[i] = tt_start(waiter, &a[i]);
        lock_when_queued(&w, i + 1); /* queue them one by one */
        ck_assert_rc(weft_lock_release(&w.l), 0);
    }
    for (int i = 0; i < 3; i++) {
        ck_assert_rc(weft_lock_acquire(&w.l, WEFT_FOREVER), 0);
        ck_assert_rc(weft_cond_notify(&w.c, 1), 0);
        ck_assert_rc(weft_lock_release(&w.l), 0);
        until_woken(&w, i + 1);
    }
    for (int i = 0; i < 3; i++) {
        ck_assert_rc(tt_join(t[i]), 0);
        ck_assert_int_eq(w.order[i], i);
    }
}
END_TEST

START_TEST(notify_n_wakes_exactly_n)
{
    struct cw w;
    cw_init(&w);
    struct cwarg a[4] = {{&w, 0}, {&w, 1}, {&w, 2}, {&w, 3}};
    tt *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = tt_start(waiter, &a[i]);
    lock_when_queued(&w, 4);
    ck_assert_rc(weft_cond_notify(&w.c, 2), 0);
    ck_assert_rc(weft_lock_release(&w.l), 0);
    until_woken(&w, 2);
    /* The other two are still queued: no more than two woke. */
    ck_assert_rc(weft_lock_acquire(&w.l, WEFT_FOREVER), 0);
    ck_assert_int_eq(w.woken, 2);
    ck_assert_rc(weft_cond_fini(&w.c), -EBUSY);
    ck_assert_rc(weft_cond_notify(&w.c, 100), 0); /* more than are there */
    ck_assert_rc(weft_lock_release(&w.l), 0);
    for (int i = 0; i < 4; i++)
        ck_assert_rc(tt_join(t[i]), 0);
    ck_assert_int_eq(w.woken, 4);
    ck_assert_rc(weft_cond_fini(&w.c), 0);
}
END_TEST

START_TEST(notify_all_wakes_everyone)
{
    struct cw w;
    cw_init(&w);
    struct cwarg a[5];
    tt *t[5];
    for (int i = 0; i < 5; i++) {
        a[i] = (struct cwarg){&w, i};
        t[i] = tt_start(waiter, &a[i]);
    }
    lock_when_queued(&w, 5);
    ck_assert_rc(weft_cond_notify_all(&w.c), 0);
    ck_assert_rc(weft_lock_release(&w.l), 0);
    for (int i = 0; i < 5; i++)
        ck_assert_rc(tt_join(t[i]), 0);
    ck_assert_int_eq(w.woken, 5);
}
END_TEST

START_TEST(wait_for_checks_predicate_first)
{
    struct cw w;
    cw_init(&w);
    w.flag = true;
    ck_assert_rc(weft_lock_acquire(&w.l, WEFT_FOREVER), 0);
    ck_assert_rc(weft_cond_wait_for(&w.c, flag_set, &w, WEFT_NOW), 0);
    ck_assert_rc(weft_cond_wait_for(&w.c, flag_set, &w, WEFT_FOREVER), 0);
    ck_assert(weft_lock_held(&w.l));
    ck_assert_rc(weft_lock_release(&w.l), 0);
}
END_TEST

START_TEST(wait_for_times_out_when_predicate_stays_false)
{
    struct cw w;
    cw_init(&w);
    ck_assert_rc(weft_lock_acquire(&w.l, WEFT_FOREVER), 0);
    int64_t t0 = weft_now();
    ck_assert_rc(weft_cond_wait_for(&w.c, flag_set, &w,
                                    weft_deadline_in(MS(50))),
                 -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(50), MS(2000));
    ck_assert(weft_lock_held(&w.l));
    ck_assert_rc(weft_lock_release(&w.l), 0);
}
END_TEST

static int wait_for_flag(void *p)
{
    struct cw *w = p;
    int rc = weft_lock_acquire(&w->l, WEFT_FOREVER);
    if (rc)
        return rc;
    w->queued++;
    rc = weft_cond_wait_for(&w->c, flag_set, w, weft_deadline_in(MS(10000)));
    if (rc == 0 && !w->flag)
        rc = -998;
    weft_lock_release(&w->l);
    return rc;
}

START_TEST(wait_for_rechecks_after_each_wakeup)
{
    struct cw w;
    cw_init(&w);
    tt *t = tt_start(wait_for_flag, &w);
    lock_when_queued(&w, 1);
    /* A notify with the predicate still false: it must wait again. */
    ck_assert_rc(weft_cond_notify(&w.c, 1), 0);
    ck_assert_rc(weft_lock_release(&w.l), 0);
    for (;;) { /* until it is queued again */
        ck_assert_rc(weft_lock_acquire(&w.l, WEFT_FOREVER), 0);
        if (weft_cond_fini(&w.c) == -EBUSY)
            break;
        ck_assert_rc(weft_lock_release(&w.l), 0);
        sched_yield();
    }
    w.flag = true;
    ck_assert_rc(weft_cond_notify(&w.c, 1), 0);
    ck_assert_rc(weft_lock_release(&w.l), 0);
    ck_assert_rc(tt_join(t), 0);
}
END_TEST

/* An rlock condition: wait releases every level and restores them. */
struct rw {
    weft_rlock r;
    weft_cond c;
    int queued;
    uint32_t level_after;
};

static int rlock_waiter(void *p)
{
    struct rw *w = p;
    for (int i = 0; i < 3; i++)
        if (weft_rlock_acquire(&w->r, WEFT_FOREVER))
            return -1;
    w->queued = 1;
    int rc = weft_cond_wait(&w->c, WEFT_FOREVER);
    w->level_after = weft_rlock_level(&w->r);
    for (int i = 0; i < 3; i++)
        rc |= weft_rlock_release(&w->r);
    return rc;
}

START_TEST(rlock_condition_releases_every_level)
{
    struct rw w = {.r = WEFT_RLOCK_INIT};
    weft_cond_init_rlock(&w.c, &w.r);
    tt *t = tt_start(rlock_waiter, &w);
    for (;;) {
        ck_assert_rc(weft_rlock_acquire(&w.r, WEFT_FOREVER), 0);
        if (w.queued)
            break;
        ck_assert_rc(weft_rlock_release(&w.r), 0);
        sched_yield();
    }
    /* We hold it, so the waiter's three levels were all released. */
    ck_assert_uint_eq(weft_rlock_level(&w.r), 1);
    ck_assert_rc(weft_cond_notify(&w.c, 1), 0);
    ck_assert_rc(weft_rlock_release(&w.r), 0);
    ck_assert_rc(tt_join(t), 0);
    ck_assert_uint_eq(w.level_after, 3);
    ck_assert(!weft_rlock_locked(&w.r));
}
END_TEST

static int rlock_wait_other(void *p)
{
    return weft_cond_wait(p, WEFT_FOREVER);
}

START_TEST(rlock_condition_non_owner_is_eperm)
{
    struct rw w = {.r = WEFT_RLOCK_INIT};
    weft_cond_init_rlock(&w.c, &w.r);
    ck_assert_rc(weft_cond_wait(&w.c, WEFT_FOREVER), -EPERM);
    ck_assert_rc(weft_rlock_acquire(&w.r, WEFT_FOREVER), 0);
    ck_assert_rc(tt_join(tt_start(rlock_wait_other, &w.c)), -EPERM);
    ck_assert_rc(weft_rlock_release(&w.r), 0);
    ck_assert_rc(weft_cond_notify(&w.c, 1), -EPERM);
}
END_TEST

START_TEST(cancelled_waiter_returns_holding_lock)
{
    struct cw w;
    cw_init(&w);
    struct cwarg a = {&w, 0};
    tt *t = tt_start(waiter, &a);
    lock_when_queued(&w, 1);
    weft__waiter_cancel(atomic_load(&w.who[0]));
    /* It cannot return before we release the lock: it re-acquires it. */
    ck_assert_rc(weft_lock_release(&w.l), 0);
    ck_assert_rc(tt_join(t), -ECANCELED);
    ck_assert_int_eq(w.woken, 0);
    ck_assert(!weft_lock_locked(&w.l));
    ck_assert_rc(weft_cond_fini(&w.c), 0);
}
END_TEST

/* A waiter times out while the notifier holds the lock, so it sits in its
 * lock re-acquire; a notify sent then must reach the other waiter, not the
 * one that already left. */
START_TEST(timed_out_waiter_does_not_eat_a_notify)
{
    struct cw w;
    cw_init(&w);
    struct cwarg a = {&w, 0}, b = {&w, 1};
    w.deadline = weft_deadline_in(MS(30));
    tt *ta = tt_start(waiter, &a);
    lock_when_queued(&w, 1);
    w.deadline = WEFT_FOREVER;
    tt *tb = tt_start(waiter, &b);
    ck_assert_rc(weft_lock_release(&w.l), 0);
    lock_when_queued(&w, 2);
    /* Hold the lock until a's entry is gone from the queue (it unlinks
     * before it waits for the lock), or 2 s at most. */
    int64_t end = weft_deadline_in(MS(2000) * test_slow());
    uint32_t len;
    do {
        sched_yield();
        weft__waitq_lock(&w.c.wq);
        len = w.c.wq.len;
        weft__waitq_unlock(&w.c.wq);
    } while (len > 1 && weft_now() < end);
    ck_assert_uint_eq(len, 1);
    ck_assert_rc(weft_cond_notify(&w.c, 1), 0);
    ck_assert_rc(weft_lock_release(&w.l), 0);
    ck_assert_rc(tt_join(ta), -ETIMEDOUT);
    ck_assert_rc(tt_join(tb), 0);
    ck_assert_int_eq(w.woken, 1);
    ck_assert_int_eq(w.order[0], 1);
}
END_TEST

/* Producer/consumer through one slot: every item arrives exactly once. */
struct slot {
    weft_lock l;
    weft_cond not_empty, not_full;
    bool full;
    long item, sum, n;
};

static bool slot_full(void *p)
{
    return ((struct slot *)p)->full;
}
static bool slot_empty(void *p)
{
    return !((struct slot *)p)->full;
}

static int producer(void *p)
{
    struct slot *s = p;
    for (long i = 1; i <= s->n; i++) {
        if (weft_lock_acquire(&s->l, WEFT_FOREVER) ||
            weft_cond_wait_for(&s->not_full, slot_empty, s, WEFT_FOREVER))
            return -1;
        s->item = i;
        s->full = true;
        weft_cond_notify(&s->not_empty, 1);
        weft_lock_release(&s->l);
    }
    return 0;
}

START_TEST(one_slot_handover_is_exact)
{
    struct slot s = {.l = WEFT_LOCK_INIT, .n = 2000 * test_scale()};
    weft_cond_init(&s.not_empty, &s.l);
    weft_cond_init(&s.not_full, &s.l);
    tt *t = tt_start(producer, &s);
    for (long i = 1; i <= s.n; i++) {
        ck_assert_rc(weft_lock_acquire(&s.l, WEFT_FOREVER), 0);
        ck_assert_rc(weft_cond_wait_for(&s.not_empty, slot_full, &s,
                                        WEFT_FOREVER),
                     0);
        ck_assert_int_eq(s.item, i);
        s.sum += s.item;
        s.full = false;
        ck_assert_rc(weft_cond_notify(&s.not_full, 1), 0);
        ck_assert_rc(weft_lock_release(&s.l), 0);
    }
    ck_assert_rc(tt_join(t), 0);
    ck_assert_int_eq(s.sum, s.n * (s.n + 1) / 2);
}
END_TEST

static Suite *cond_suite(void)
{
    Suite *s = suite_create("cond");
    TCase *c = tcase_create("cond");
    tcase_set_timeout(c, 20);
    tcase_add_test(c, static_init_and_fini);
    tcase_add_test(c, without_the_lock_is_eperm);
    tcase_add_test(c, lock_held_by_another_thread_is_eperm);
    tcase_add_test(c, negative_n_is_einval_zero_is_noop);
    tcase_add_test(c, wait_now_times_out_holding_lock);
    tcase_add_test(c, wait_times_out_at_deadline_holding_lock);
    tcase_add_test(c, notify_wakes_in_fifo_order);
    tcase_add_test(c, notify_n_wakes_exactly_n);
    tcase_add_test(c, notify_all_wakes_everyone);
    tcase_add_test(c, wait_for_checks_predicate_first);
    tcase_add_test(c, wait_for_times_out_when_predicate_stays_false);
    tcase_add_test(c, wait_for_rechecks_after_each_wakeup);
    tcase_add_test(c, rlock_condition_releases_every_level);
    tcase_add_test(c, rlock_condition_non_owner_is_eperm);
    tcase_add_test(c, cancelled_waiter_returns_holding_lock);
    tcase_add_test(c, timed_out_waiter_does_not_eat_a_notify);
    tcase_add_test(c, one_slot_handover_is_exact);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(cond_suite)
