/* test_queue.c - weft_queue: order of each kind, growth, bounds, deadlines,
 * the non-blocking forms, task_done/join, every shutdown case, destroy and
 * the error codes. */
#include "support.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "queue/queue_internal.h" /* weft__queue_create_seg */

#define P(i) ((void *)(uintptr_t)(i))
#define I(p) ((uintptr_t)(p))

static weft_queue *mkq(weft_queue_kind kind, size_t maxsize)
{
    weft_queue *q = NULL;
    ck_assert_rc(weft_queue_create(&q, kind, maxsize), 0);
    ck_assert_ptr_nonnull(q);
    return q;
}

/* Wait (without sleeping) until n threads are parked on q. */
static void await_waiters(weft_queue *q, size_t n)
{
    int64_t end = weft_deadline_in(MS(10000) * test_slow());
    while (weft_queue_waiters(q) < n) {
        ck_assert_msg(weft_now() < end, "no thread parked on the queue");
        sched_yield();
    }
}

static void *get1(weft_queue *q)
{
    void *x = NULL;
    ck_assert_rc(weft_queue_get(q, &x, WEFT_FOREVER), 0);
    return x;
}

/* ---- threads used by several tests ------------------------------------ */

struct qarg {
    weft_queue *q;
    void *item;
    int64_t prio;
    int64_t timeout;
    _Atomic int started;
};

static int64_t arg_deadline(struct qarg *a)
{
    return a->timeout < 0 ? WEFT_FOREVER : weft_deadline_in(a->timeout);
}

static int put_thread(void *p)
{
    struct qarg *a = p;
    atomic_store(&a->started, 1);
    return weft_queue_put_prio(a->q, a->item, a->prio, arg_deadline(a));
}

static int get_thread(void *p)
{
    struct qarg *a = p;
    atomic_store(&a->started, 1);
    return weft_queue_get_prio(a->q, &a->item, &a->prio, arg_deadline(a));
}

static int join_thread(void *p)
{
    struct qarg *a = p;
    atomic_store(&a->started, 1);
    return weft_queue_join(a->q, arg_deadline(a));
}

/* ---- creation and order ----------------------------------------------- */

START_TEST(create_bad_kind_is_einval)
{
    weft_queue *q = P(0x1);
    ck_assert_rc(weft_queue_create(&q, (weft_queue_kind)3, 0), -EINVAL);
    ck_assert_rc(weft_queue_create(&q, (weft_queue_kind)-1, 4), -EINVAL);
    ck_assert_ptr_eq(q, P(0x1)); /* out untouched */
}
END_TEST

START_TEST(fifo_order)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 0);
    for (int i = 1; i <= 10; i++)
        ck_assert_rc(weft_queue_put(q, P(i), WEFT_FOREVER), 0);
    for (int i = 1; i <= 10; i++)
        ck_assert_uint_eq(I(get1(q)), i);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(lifo_order)
{
    weft_queue *q = mkq(WEFT_QUEUE_LIFO, 0);
    for (int i = 1; i <= 10; i++)
        ck_assert_rc(weft_queue_put(q, P(i), WEFT_FOREVER), 0);
    for (int i = 10; i >= 1; i--)
        ck_assert_uint_eq(I(get1(q)), i);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(priority_order_lowest_first)
{
    weft_queue *q = mkq(WEFT_QUEUE_PRIORITY, 0);
    int64_t prios[] = {5, -3, 9, 0, 7, INT64_MIN, 2, INT64_MAX, 1};
    int64_t sorted[] = {INT64_MIN, -3, 0, 1, 2, 5, 7, 9, INT64_MAX};
    int64_t pr;
    void *x;

    for (int i = 0; i < 9; i++)
        ck_assert_rc(weft_queue_put_prio(q, P(100 + i), prios[i], WEFT_NOW),
                     0);
    for (int i = 0; i < 9; i++) {
        ck_assert_rc(weft_queue_get_prio(q, &x, &pr, WEFT_NOW), 0);
        ck_assert_int_eq(pr, sorted[i]);
    }
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(priority_equal_prios_are_fifo)
{
    weft_queue *q = mkq(WEFT_QUEUE_PRIORITY, 0);
    int64_t pr;
    void *x;

    /* Three priorities interleaved, 50 items each. */
    for (int i = 0; i < 150; i++)
        ck_assert_rc(weft_queue_put_prio(q, P(i), i % 3, WEFT_FOREVER), 0);
    for (int p = 0; p < 3; p++)
        for (int k = 0; k < 50; k++) {
            ck_assert_rc(weft_queue_get_prio(q, &x, &pr, WEFT_FOREVER), 0);
            ck_assert_int_eq(pr, p);
            ck_assert_uint_eq(I(x), (uintptr_t)(k * 3 + p));
        }
    /* Plain put is priority 0 and still FIFO among equals. */
    for (int i = 0; i < 20; i++)
        ck_assert_rc(weft_queue_put(q, P(i), WEFT_FOREVER), 0);
    for (int i = 0; i < 20; i++)
        ck_assert_uint_eq(I(get1(q)), i);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(get_prio_gives_prio_and_zero_on_fifo_lifo)
{
    weft_queue_kind kinds[] = {WEFT_QUEUE_FIFO, WEFT_QUEUE_LIFO};
    int64_t pr = 99;
    void *x;

    for (int k = 0; k < 2; k++) {
        weft_queue *q = mkq(kinds[k], 0);
        ck_assert_rc(weft_queue_put_prio(q, P(1), 42, WEFT_FOREVER), 0);
        ck_assert_rc(weft_queue_get_prio(q, &x, &pr, WEFT_FOREVER), 0);
        ck_assert_uint_eq(I(x), 1);
        ck_assert_int_eq(pr, 0);
        /* prio may be NULL */
        ck_assert_rc(weft_queue_put(q, P(2), WEFT_FOREVER), 0);
        ck_assert_rc(weft_queue_get_prio(q, &x, NULL, WEFT_FOREVER), 0);
        ck_assert_uint_eq(I(x), 2);
        ck_assert_rc(weft_queue_destroy(q, NULL), 0);
    }
    weft_queue *q = mkq(WEFT_QUEUE_PRIORITY, 0);
    ck_assert_rc(weft_queue_put_prio(q, P(7), -42, WEFT_FOREVER), 0);
    ck_assert_rc(weft_queue_get_prio(q, &x, &pr, WEFT_FOREVER), 0);
    ck_assert_int_eq(pr, -42);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(unbounded_grows_past_initial_capacity)
{
    enum { N = 100000 };
    weft_queue_kind kinds[] = {WEFT_QUEUE_FIFO, WEFT_QUEUE_LIFO,
                               WEFT_QUEUE_PRIORITY};

    for (int k = 0; k < 3; k++) {
        weft_queue *q = mkq(kinds[k], 0);
        for (int i = 0; i < N; i++)
            ck_assert_rc(weft_queue_put_prio(q, P(i), (N - i) % 7, WEFT_NOW),
                         0);
        ck_assert_uint_eq(weft_queue_size(q), N);
        ck_assert(!weft_queue_full(q));
        if (kinds[k] == WEFT_QUEUE_FIFO)
            for (int i = 0; i < N; i++)
                ck_assert_uint_eq(I(get1(q)), i);
        else if (kinds[k] == WEFT_QUEUE_LIFO)
            for (int i = N - 1; i >= 0; i--)
                ck_assert_uint_eq(I(get1(q)), i);
        else {
            int64_t last = INT64_MIN, pr;
            void *x;
            for (int i = 0; i < N; i++) {
                ck_assert_rc(weft_queue_get_prio(q, &x, &pr, WEFT_NOW), 0);
                ck_assert_int_ge(pr, last);
                ck_assert_int_eq(pr, (N - (int64_t)I(x)) % 7);
                last = pr;
            }
        }
        ck_assert(weft_queue_empty(q));
        ck_assert_rc(weft_queue_destroy(q, NULL), 0);
    }
}
END_TEST

START_TEST(fifo_keeps_order_across_wrap_and_growth)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 0);
    uintptr_t next_put = 0, next_get = 0;

    /* Leave the ring's head in the middle, then grow it several times. */
    for (int round = 0; round < 12; round++) {
        for (int i = 0; i < 37 * (round + 1); i++)
            ck_assert_rc(weft_queue_put_nowait(q, P(next_put++)), 0);
        for (int i = 0; i < 29 * (round + 1); i++)
            ck_assert_uint_eq(I(get1(q)), next_get++);
    }
    while (next_get < next_put)
        ck_assert_uint_eq(I(get1(q)), next_get++);
    ck_assert(weft_queue_empty(q));
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

/* ---- bounds and snapshots --------------------------------------------- */

START_TEST(size_empty_full_maxsize)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 3);
    ck_assert_uint_eq(weft_queue_maxsize(q), 3);
    ck_assert_uint_eq(weft_queue_size(q), 0);
    ck_assert(weft_queue_empty(q));
    ck_assert(!weft_queue_full(q));
    ck_assert_rc(weft_queue_put(q, P(1), WEFT_NOW), 0);
    ck_assert_uint_eq(weft_queue_size(q), 1);
    ck_assert(!weft_queue_empty(q));
    ck_assert_rc(weft_queue_put(q, P(2), WEFT_NOW), 0);
    ck_assert_rc(weft_queue_put(q, P(3), WEFT_NOW), 0);
    ck_assert(weft_queue_full(q));
    ck_assert_uint_eq(weft_queue_size(q), 3);
    get1(q);
    ck_assert(!weft_queue_full(q));
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);

    q = mkq(WEFT_QUEUE_LIFO, 0);
    ck_assert_uint_eq(weft_queue_maxsize(q), 0);
    ck_assert(!weft_queue_full(q));
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(put_nowait_full_is_eagain)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 2);
    ck_assert_rc(weft_queue_put_nowait(q, P(1)), 0);
    ck_assert_rc(weft_queue_put_nowait(q, P(2)), 0);
    ck_assert_rc(weft_queue_put_nowait(q, P(3)), -EAGAIN);
    ck_assert_uint_eq(weft_queue_size(q), 2);
    ck_assert_uint_eq(weft_queue_unfinished(q), 2);
    ck_assert_uint_eq(I(get1(q)), 1);
    ck_assert_uint_eq(I(get1(q)), 2);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(get_nowait_empty_is_eagain)
{
    weft_queue *q = mkq(WEFT_QUEUE_PRIORITY, 0);
    void *x = P(77);
    ck_assert_rc(weft_queue_get_nowait(q, &x), -EAGAIN);
    ck_assert_uint_eq(I(x), 77);
    ck_assert_rc(weft_queue_put_nowait(q, P(5)), 0);
    ck_assert_rc(weft_queue_get_nowait(q, &x), 0);
    ck_assert_uint_eq(I(x), 5);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(now_deadline_is_etimedout)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 1);
    void *x;
    int64_t t0 = weft_now();
    ck_assert_rc(weft_queue_get(q, &x, WEFT_NOW), -ETIMEDOUT);
    ck_assert_rc(weft_queue_put(q, P(1), WEFT_NOW), 0);
    ck_assert_rc(weft_queue_put(q, P(2), WEFT_NOW), -ETIMEDOUT);
    ck_assert_elapsed(t0, 0, MS(100));
    ck_assert_uint_eq(weft_queue_size(q), 1);
    ck_assert_uint_eq(weft_queue_unfinished(q), 1);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(get_deadline_times_out)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 0);
    void *x = P(9);
    int64_t t0 = weft_now();
    ck_assert_rc(weft_queue_get(q, &x, weft_deadline_in(MS(50))),
                 -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(50), MS(1000));
    ck_assert_uint_eq(I(x), 9);
    ck_assert_uint_eq(weft_queue_waiters(q), 0);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(put_deadline_times_out)
{
    weft_queue *q = mkq(WEFT_QUEUE_LIFO, 1);
    ck_assert_rc(weft_queue_put(q, P(1), WEFT_FOREVER), 0);
    int64_t t0 = weft_now();
    ck_assert_rc(weft_queue_put(q, P(2), weft_deadline_in(MS(50))),
                 -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(50), MS(1000));
    ck_assert_uint_eq(weft_queue_size(q), 1);
    ck_assert_uint_eq(weft_queue_unfinished(q), 1);
    ck_assert_uint_eq(I(get1(q)), 1);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(bounded_put_blocks_until_get)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 1);
    struct qarg a = {.q = q, .item = P(2), .timeout = -1};
    ck_assert_rc(weft_queue_put(q, P(1), WEFT_FOREVER), 0);
    tt *t = tt_start(put_thread, &a);
    await_waiters(q, 1);
    ck_assert_uint_eq(weft_queue_size(q), 1);
    /* The get makes room and moves the parked putter's item in. */
    ck_assert_uint_eq(I(get1(q)), 1);
    ck_assert_rc(tt_join(t), 0);
    ck_assert_uint_eq(weft_queue_size(q), 1);
    ck_assert_uint_eq(weft_queue_unfinished(q), 2);
    ck_assert_uint_eq(I(get1(q)), 2);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(blocked_putters_enter_in_order)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 2);
    struct qarg a[3];
    tt *t[3];

    ck_assert_rc(weft_queue_put(q, P(1), WEFT_FOREVER), 0);
    ck_assert_rc(weft_queue_put(q, P(2), WEFT_FOREVER), 0);
    for (int i = 0; i < 3; i++) {
        a[i] = (struct qarg){.q = q, .item = P(3 + i), .timeout = -1};
        t[i] = tt_start(put_thread, &a[i]);
        await_waiters(q, (size_t)i + 1);
    }
    for (int i = 1; i <= 5; i++)
        ck_assert_uint_eq(I(get1(q)), i);
    for (int i = 0; i < 3; i++)
        ck_assert_rc(tt_join(t[i]), 0);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(get_blocks_until_put)
{
    weft_queue *q = mkq(WEFT_QUEUE_PRIORITY, 0);
    struct qarg a = {.q = q, .timeout = -1};
    tt *t = tt_start(get_thread, &a);
    await_waiters(q, 1);
    ck_assert_rc(weft_queue_put_prio(q, P(5), 17, WEFT_FOREVER), 0);
    ck_assert_rc(tt_join(t), 0);
    ck_assert_uint_eq(I(a.item), 5);
    ck_assert_int_eq(a.prio, 17);
    /* Handed straight over: never stored, but still one unfinished task. */
    ck_assert_uint_eq(weft_queue_size(q), 0);
    ck_assert_uint_eq(weft_queue_unfinished(q), 1);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(blocked_getters_served_in_order)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 0);
    struct qarg a[3];
    tt *t[3];

    for (int i = 0; i < 3; i++) {
        a[i] = (struct qarg){.q = q, .timeout = -1};
        t[i] = tt_start(get_thread, &a[i]);
        await_waiters(q, (size_t)i + 1);
    }
    for (int i = 0; i < 3; i++)
        ck_assert_rc(weft_queue_put(q, P(10 + i), WEFT_FOREVER), 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_rc(tt_join(t[i]), 0);
        ck_assert_uint_eq(I(a[i].item), 10 + i);
    }
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(get_with_deadline_succeeds_when_put_in_time)
{
    weft_queue *q = mkq(WEFT_QUEUE_LIFO, 0);
    struct qarg a = {.q = q, .timeout = MS(10000)};
    tt *t = tt_start(get_thread, &a);
    while (!atomic_load(&a.started))
        sched_yield();
    ck_assert_rc(weft_queue_put(q, P(3), WEFT_FOREVER), 0);
    ck_assert_rc(tt_join(t), 0);
    ck_assert_uint_eq(I(a.item), 3);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

/* Getters with tiny deadlines race puts: whichever way each race goes,
 * every item is received exactly once. */
struct race {
    weft_queue *q;
    int n;
    _Atomic int got;
    _Atomic long sum;
};

static int racing_getter(void *p)
{
    struct race *r = p;
    void *x;
    int rc;
    while (atomic_load(&r->got) < r->n) {
        rc = weft_queue_get(r->q, &x, weft_deadline_in(1000 * (rand() % 20)));
        if (rc == 0) {
            atomic_fetch_add(&r->got, 1);
            atomic_fetch_add(&r->sum, (long)I(x));
        } else if (rc != -ETIMEDOUT) {
            return rc;
        }
    }
    return 0;
}

START_TEST(timed_out_getter_never_loses_an_item)
{
    struct race r = {.q = mkq(WEFT_QUEUE_FIFO, 0), .n = 20000};
    tt *t = tt_start(racing_getter, &r);
    long want = 0;
    for (int i = 1; i <= r.n; i++) {
        ck_assert_rc(weft_queue_put(r.q, P(i), WEFT_FOREVER), 0);
        want += i;
        if (i % 64 == 0)
            sched_yield();
    }
    ck_assert_rc(tt_join(t), 0);
    ck_assert_int_eq(atomic_load(&r.got), r.n);
    ck_assert_int_eq(atomic_load(&r.sum), want);
    ck_assert(weft_queue_empty(r.q));
    ck_assert_rc(weft_queue_destroy(r.q, NULL), 0);
}
END_TEST

/* ---- task_done and join ----------------------------------------------- */

START_TEST(task_done_too_often_is_eoverflow)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 0);
    ck_assert_rc(weft_queue_task_done(q), -EOVERFLOW);
    ck_assert_uint_eq(weft_queue_unfinished(q), 0);
    ck_assert_rc(weft_queue_put(q, P(1), WEFT_FOREVER), 0);
    ck_assert_rc(weft_queue_put(q, P(2), WEFT_FOREVER), 0);
    ck_assert_uint_eq(weft_queue_unfinished(q), 2);
    ck_assert_rc(weft_queue_task_done(q), 0);
    ck_assert_rc(weft_queue_task_done(q), 0);
    ck_assert_rc(weft_queue_task_done(q), -EOVERFLOW);
    /* State unchanged: the count stays 0, items are still queued. */
    ck_assert_uint_eq(weft_queue_unfinished(q), 0);
    ck_assert_uint_eq(weft_queue_size(q), 2);
    ck_assert_rc(weft_queue_join(q, WEFT_NOW), 0);
    ck_assert_rc(weft_queue_put(q, P(3), WEFT_FOREVER), 0);
    ck_assert_uint_eq(weft_queue_unfinished(q), 1);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(join_with_nothing_unfinished_returns_at_once)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 0);
    ck_assert_rc(weft_queue_join(q, WEFT_NOW), 0);
    ck_assert_rc(weft_queue_join(q, WEFT_FOREVER), 0);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(join_deadline_times_out_while_unfinished)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 0);
    ck_assert_rc(weft_queue_put(q, P(1), WEFT_FOREVER), 0);
    get1(q); /* fetched but not done */
    ck_assert_rc(weft_queue_join(q, WEFT_NOW), -ETIMEDOUT);
    int64_t t0 = weft_now();
    ck_assert_rc(weft_queue_join(q, weft_deadline_in(MS(50))), -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(50), MS(1000));
    ck_assert_rc(weft_queue_task_done(q), 0);
    ck_assert_rc(weft_queue_join(q, WEFT_NOW), 0);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

static int worker(void *p)
{
    weft_queue *q = p;
    void *x;
    int rc;
    while ((rc = weft_queue_get(q, &x, WEFT_FOREVER)) == 0) {
        if (I(x) == 0)
            return weft_queue_task_done(q);
        rc = weft_queue_task_done(q);
        if (rc != 0)
            return rc;
    }
    return rc;
}

START_TEST(join_waits_for_every_task_done)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 4);
    struct qarg j = {.q = q, .timeout = -1};
    tt *w = tt_start(worker, q);
    for (int i = 1; i <= 1000; i++)
        ck_assert_rc(weft_queue_put(q, P(i), WEFT_FOREVER), 0);
    tt *t = tt_start(join_thread, &j);
    ck_assert_rc(weft_queue_put(q, P(0), WEFT_FOREVER), 0); /* stop */
    ck_assert_rc(tt_join(t), 0);
    ck_assert_rc(tt_join(w), 0);
    ck_assert_uint_eq(weft_queue_unfinished(q), 0);
    ck_assert_rc(weft_queue_join(q, WEFT_NOW), 0);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(parked_joiner_woken_by_last_task_done)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 0);
    struct qarg j1 = {.q = q, .timeout = -1}, j2 = {.q = q, .timeout = -1};
    ck_assert_rc(weft_queue_put(q, P(1), WEFT_FOREVER), 0);
    ck_assert_rc(weft_queue_put(q, P(2), WEFT_FOREVER), 0);
    tt *t1 = tt_start(join_thread, &j1);
    tt *t2 = tt_start(join_thread, &j2);
    await_waiters(q, 2);
    get1(q);
    get1(q);
    ck_assert_rc(weft_queue_task_done(q), 0);
    ck_assert_uint_eq(weft_queue_waiters(q), 2); /* one still unfinished */
    ck_assert_rc(weft_queue_task_done(q), 0);
    ck_assert_rc(tt_join(t1), 0);
    ck_assert_rc(tt_join(t2), 0);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

/* ---- shutdown --------------------------------------------------------- */

START_TEST(put_after_shutdown_is_epipe)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 0);
    ck_assert(!weft_queue_is_shutdown(q));
    weft_queue_shutdown(q, false);
    ck_assert(weft_queue_is_shutdown(q));
    ck_assert_rc(weft_queue_put(q, P(1), WEFT_FOREVER), -EPIPE);
    ck_assert_rc(weft_queue_put(q, P(1), WEFT_NOW), -EPIPE);
    ck_assert_rc(weft_queue_put_prio(q, P(1), 3, WEFT_FOREVER), -EPIPE);
    ck_assert_rc(weft_queue_put_nowait(q, P(1)), -EPIPE);
    ck_assert_uint_eq(weft_queue_unfinished(q), 0);
    ck_assert_uint_eq(weft_queue_size(q), 0);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(graceful_shutdown_drains_then_epipe)
{
    weft_queue *q = mkq(WEFT_QUEUE_LIFO, 0);
    void *x;
    for (int i = 1; i <= 3; i++)
        ck_assert_rc(weft_queue_put(q, P(i), WEFT_FOREVER), 0);
    weft_queue_shutdown(q, false);
    ck_assert_uint_eq(weft_queue_size(q), 3);
    ck_assert_uint_eq(I(get1(q)), 3);
    ck_assert_rc(weft_queue_get_nowait(q, &x), 0);
    ck_assert_uint_eq(I(x), 2);
    ck_assert_rc(weft_queue_get(q, &x, WEFT_NOW), 0);
    ck_assert_uint_eq(I(x), 1);
    ck_assert_rc(weft_queue_get(q, &x, WEFT_FOREVER), -EPIPE);
    ck_assert_rc(weft_queue_get(q, &x, WEFT_NOW), -EPIPE);
    ck_assert_rc(weft_queue_get_nowait(q, &x), -EPIPE);
    /* Nothing to hand back after a graceful shutdown. */
    ck_assert_uint_eq(weft_queue_take_undelivered(q, &x, 1), 0);
    /* join still waits for the task_done calls. */
    ck_assert_uint_eq(weft_queue_unfinished(q), 3);
    ck_assert_rc(weft_queue_join(q, WEFT_NOW), -ETIMEDOUT);
    for (int i = 0; i < 3; i++)
        ck_assert_rc(weft_queue_task_done(q), 0);
    ck_assert_rc(weft_queue_join(q, WEFT_NOW), 0);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(graceful_shutdown_wakes_blocked_getters)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 0);
    struct qarg a = {.q = q, .timeout = -1}, b = {.q = q, .timeout = MS(20000)};
    tt *ta = tt_start(get_thread, &a);
    tt *tb = tt_start(get_thread, &b);
    await_waiters(q, 2);
    int64_t t0 = weft_now();
    weft_queue_shutdown(q, false);
    ck_assert_rc(tt_join(ta), -EPIPE);
    ck_assert_rc(tt_join(tb), -EPIPE);
    ck_assert_elapsed(t0, 0, MS(2000));
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(shutdown_wakes_blocked_putter_even_with_room)
{
    for (int imm = 0; imm <= 1; imm++) {
        weft_queue *q = mkq(WEFT_QUEUE_FIFO, 1);
        struct qarg a = {.q = q, .item = P(2), .timeout = -1};
        void *x;
        ck_assert_rc(weft_queue_put(q, P(1), WEFT_FOREVER), 0);
        tt *t = tt_start(put_thread, &a);
        await_waiters(q, 1);
        weft_queue_shutdown(q, imm);
        ck_assert_rc(tt_join(t), -EPIPE);
        /* Room now, but the put stays refused. */
        if (!imm) {
            ck_assert_uint_eq(I(get1(q)), 1);
            ck_assert_rc(weft_queue_get(q, &x, WEFT_NOW), -EPIPE);
        } else {
            ck_assert_rc(weft_queue_take_undelivered(q, &x, 1), 1);
            ck_assert_uint_eq(I(x), 1);
        }
        ck_assert_rc(weft_queue_put(q, P(3), WEFT_FOREVER), -EPIPE);
        ck_assert_uint_eq(weft_queue_unfinished(q), imm ? 0 : 1);
        ck_assert_rc(weft_queue_destroy(q, NULL), 0);
    }
}
END_TEST

START_TEST(graceful_shutdown_on_full_queue_lets_getters_drain)
{
    weft_queue *q = mkq(WEFT_QUEUE_PRIORITY, 2);
    int64_t pr;
    void *x;
    ck_assert_rc(weft_queue_put_prio(q, P(1), 5, WEFT_FOREVER), 0);
    ck_assert_rc(weft_queue_put_prio(q, P(2), 1, WEFT_FOREVER), 0);
    weft_queue_shutdown(q, false);
    ck_assert(weft_queue_full(q));
    ck_assert_rc(weft_queue_get_prio(q, &x, &pr, WEFT_FOREVER), 0);
    ck_assert_int_eq(pr, 1);
    ck_assert_rc(weft_queue_get_prio(q, &x, &pr, WEFT_FOREVER), 0);
    ck_assert_int_eq(pr, 5);
    ck_assert_rc(weft_queue_get_prio(q, &x, &pr, WEFT_FOREVER), -EPIPE);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

static void check_undelivered(weft_queue_kind kind, const int *want)
{
    weft_queue *q = mkq(kind, 0);
    void *out[4];
    size_t n, total = 0;
    void *x;

    for (int i = 0; i < 10; i++)
        ck_assert_rc(weft_queue_put_prio(q, P(i), (i * 7) % 10, WEFT_NOW), 0);
    get1(q); /* one handed out before the shutdown */
    ck_assert_uint_eq(weft_queue_take_undelivered(q, out, 4), 0);
    weft_queue_shutdown(q, true);
    ck_assert(weft_queue_is_shutdown(q));
    ck_assert_uint_eq(weft_queue_size(q), 0);
    ck_assert(weft_queue_empty(q));
    ck_assert_rc(weft_queue_get(q, &x, WEFT_FOREVER), -EPIPE);
    ck_assert_rc(weft_queue_get_nowait(q, &x), -EPIPE);
    /* The 9 queued items left the unfinished count; the fetched one not. */
    ck_assert_uint_eq(weft_queue_unfinished(q), 1);
    while ((n = weft_queue_take_undelivered(q, out, 4)) != 0) {
        ck_assert_uint_le(n, 4);
        for (size_t i = 0; i < n; i++)
            ck_assert_uint_eq(I(out[i]), want[total + i]);
        total += n;
    }
    ck_assert_uint_eq(total, 9);
    ck_assert_uint_eq(weft_queue_take_undelivered(q, out, 4), 0);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}

START_TEST(immediate_shutdown_hands_back_items_in_queue_order)
{
    static const int fifo[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    static const int lifo[] = {8, 7, 6, 5, 4, 3, 2, 1, 0};
    /* prio(i) = 7i mod 10: i=0 (0) was fetched; then 3 (1), 6 (2), 9 (3),
     * 2 (4), 5 (5), 8 (6), 1 (7), 4 (8), 7 (9). */
    static const int prio[] = {3, 6, 9, 2, 5, 8, 1, 4, 7};
    check_undelivered(WEFT_QUEUE_FIFO, fifo);
    check_undelivered(WEFT_QUEUE_LIFO, lifo);
    check_undelivered(WEFT_QUEUE_PRIORITY, prio);
}
END_TEST

START_TEST(immediate_shutdown_wakes_blocked_getter)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 0);
    struct qarg a = {.q = q, .timeout = -1};
    tt *t = tt_start(get_thread, &a);
    await_waiters(q, 1);
    weft_queue_shutdown(q, true);
    ck_assert_rc(tt_join(t), -EPIPE);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(join_after_immediate_shutdown)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 0);
    struct qarg j = {.q = q, .timeout = -1};
    void *out[8];
    for (int i = 0; i < 5; i++)
        ck_assert_rc(weft_queue_put(q, P(i), WEFT_FOREVER), 0);
    get1(q);
    get1(q); /* two handed out */
    tt *t = tt_start(join_thread, &j);
    await_waiters(q, 1);
    weft_queue_shutdown(q, true);
    ck_assert_uint_eq(weft_queue_unfinished(q), 2);
    /* The joiner still waits for the two handed-out items. */
    ck_assert_uint_eq(weft_queue_waiters(q), 1);
    ck_assert_rc(weft_queue_task_done(q), 0);
    ck_assert_rc(weft_queue_join(q, WEFT_NOW), -ETIMEDOUT);
    ck_assert_rc(weft_queue_task_done(q), 0);
    ck_assert_rc(tt_join(t), 0);
    ck_assert_rc(weft_queue_task_done(q), -EOVERFLOW);
    ck_assert_uint_eq(weft_queue_take_undelivered(q, out, 8), 3);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(immediate_shutdown_wakes_joiner_when_nothing_handed_out)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 0);
    struct qarg j = {.q = q, .timeout = -1};
    for (int i = 0; i < 3; i++)
        ck_assert_rc(weft_queue_put(q, P(i), WEFT_FOREVER), 0);
    tt *t = tt_start(join_thread, &j);
    await_waiters(q, 1);
    weft_queue_shutdown(q, true);
    ck_assert_rc(tt_join(t), 0);
    ck_assert_uint_eq(weft_queue_unfinished(q), 0);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(immediate_shutdown_clamps_unfinished_at_zero)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 0);
    for (int i = 0; i < 3; i++)
        ck_assert_rc(weft_queue_put(q, P(i), WEFT_FOREVER), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_rc(weft_queue_task_done(q), 0); /* done early, as Python allows */
    weft_queue_shutdown(q, true);
    ck_assert_uint_eq(weft_queue_unfinished(q), 0);
    ck_assert_rc(weft_queue_task_done(q), -EOVERFLOW);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(shutdown_upgrades_to_immediate_never_back)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 0);
    void *out[4];
    void *x;
    for (int i = 1; i <= 3; i++)
        ck_assert_rc(weft_queue_put(q, P(i), WEFT_FOREVER), 0);
    weft_queue_shutdown(q, false);
    weft_queue_shutdown(q, false); /* idempotent */
    ck_assert_uint_eq(I(get1(q)), 1);
    weft_queue_shutdown(q, true); /* upgrade */
    ck_assert_rc(weft_queue_get(q, &x, WEFT_NOW), -EPIPE);
    ck_assert_uint_eq(weft_queue_unfinished(q), 1);
    weft_queue_shutdown(q, false); /* no way back */
    ck_assert_rc(weft_queue_get(q, &x, WEFT_NOW), -EPIPE);
    ck_assert_uint_eq(weft_queue_size(q), 0);
    weft_queue_shutdown(q, true);
    ck_assert_uint_eq(weft_queue_take_undelivered(q, out, 4), 2);
    ck_assert_uint_eq(I(out[0]), 2);
    ck_assert_uint_eq(I(out[1]), 3);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(timed_getter_sees_epipe_after_shutdown)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 0);
    void *x;
    weft_queue_shutdown(q, false);
    int64_t t0 = weft_now();
    ck_assert_rc(weft_queue_get(q, &x, weft_deadline_in(MS(5000))), -EPIPE);
    ck_assert_elapsed(t0, 0, MS(1000));
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

/* ---- destroy ---------------------------------------------------------- */

static int freed_count;
static uintptr_t freed_sum;
static void count_free(void *item)
{
    freed_count++;
    freed_sum += I(item);
}

START_TEST(destroy_passes_leftovers_to_free_item)
{
    weft_queue_kind kinds[] = {WEFT_QUEUE_FIFO, WEFT_QUEUE_LIFO,
                               WEFT_QUEUE_PRIORITY};
    for (int k = 0; k < 3; k++) {
        weft_queue *q = mkq(kinds[k], 0);
        for (int i = 1; i <= 100; i++)
            ck_assert_rc(weft_queue_put_prio(q, P(i), i % 5, WEFT_NOW), 0);
        freed_count = 0;
        freed_sum = 0;
        ck_assert_rc(weft_queue_destroy(q, count_free), 0);
        ck_assert_int_eq(freed_count, 100);
        ck_assert_uint_eq(freed_sum, 5050);
    }
}
END_TEST

START_TEST(destroy_frees_undelivered_items_too)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 0);
    void *out[2];
    for (int i = 1; i <= 10; i++)
        ck_assert_rc(weft_queue_put(q, P(i), WEFT_NOW), 0);
    weft_queue_shutdown(q, true);
    ck_assert_uint_eq(weft_queue_take_undelivered(q, out, 2), 2);
    freed_count = 0;
    freed_sum = 0;
    ck_assert_rc(weft_queue_destroy(q, count_free), 0);
    ck_assert_int_eq(freed_count, 8);
    ck_assert_uint_eq(freed_sum, 55 - 3);
}
END_TEST

START_TEST(destroy_with_items_and_null_free_item)
{
    /* Items are the caller's; with no free_item they are simply dropped
     * (ASan checks that the storage itself is freed). */
    weft_queue *q = mkq(WEFT_QUEUE_PRIORITY, 0);
    for (int i = 0; i < 1000; i++)
        ck_assert_rc(weft_queue_put(q, P(i), WEFT_NOW), 0);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(destroy_is_ebusy_while_anyone_waits)
{
    /* A getter, a putter, a joiner: each in turn keeps destroy away. */
    for (int which = 0; which < 3; which++) {
        weft_queue *q = mkq(WEFT_QUEUE_FIFO, 1);
        struct qarg a = {.q = q, .item = P(2), .timeout = -1};
        tt *t;
        if (which == 0) {
            t = tt_start(get_thread, &a);
        } else {
            ck_assert_rc(weft_queue_put(q, P(1), WEFT_FOREVER), 0);
            t = tt_start(which == 1 ? put_thread : join_thread, &a);
        }
        await_waiters(q, 1);
        freed_count = 0;
        ck_assert_rc(weft_queue_destroy(q, count_free), -EBUSY);
        ck_assert_int_eq(freed_count, 0);
        /* The queue is intact and usable. */
        if (which == 0) {
            ck_assert_rc(weft_queue_put(q, P(7), WEFT_FOREVER), 0);
            ck_assert_rc(tt_join(t), 0);
            ck_assert_uint_eq(I(a.item), 7);
        } else if (which == 1) {
            ck_assert_uint_eq(I(get1(q)), 1);
            ck_assert_rc(tt_join(t), 0);
            ck_assert_uint_eq(I(get1(q)), 2);
        } else {
            get1(q);
            ck_assert_rc(weft_queue_task_done(q), 0);
            ck_assert_rc(tt_join(t), 0);
        }
        ck_assert_uint_eq(weft_queue_waiters(q), 0);
        ck_assert_rc(weft_queue_destroy(q, NULL), 0);
    }
}
END_TEST

/* ---- FIFO: the two sides (src/queue/fifo.c) ---------------------------- */

/* A putter parked on a full queue is let in by whichever get makes room:
 * a blocking get, a get_nowait and a timed get each move one parked item
 * in before they return, in the order the putters parked. */
START_TEST(fifo_parked_putters_served_by_every_kind_of_get)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 2);
    struct qarg a[3];
    tt *t[3];
    void *x;

    ck_assert_rc(weft_queue_put(q, P(1), WEFT_FOREVER), 0);
    ck_assert_rc(weft_queue_put(q, P(2), WEFT_FOREVER), 0);
    for (int i = 0; i < 3; i++) {
        a[i] = (struct qarg){.q = q, .item = P(3 + i), .timeout = -1};
        t[i] = tt_start(put_thread, &a[i]);
        await_waiters(q, (size_t)i + 1);
    }
    ck_assert_uint_eq(I(get1(q)), 1);
    ck_assert_rc(tt_join(t[0]), 0);
    ck_assert_uint_eq(weft_queue_size(q), 2);
    ck_assert_rc(weft_queue_get_nowait(q, &x), 0);
    ck_assert_uint_eq(I(x), 2);
    ck_assert_rc(tt_join(t[1]), 0);
    ck_assert_uint_eq(weft_queue_size(q), 2);
    ck_assert_rc(weft_queue_get(q, &x, weft_deadline_in(MS(10000))), 0);
    ck_assert_uint_eq(I(x), 3);
    ck_assert_rc(tt_join(t[2]), 0);
    ck_assert_uint_eq(weft_queue_size(q), 2);
    ck_assert_uint_eq(weft_queue_waiters(q), 0);
    ck_assert_uint_eq(weft_queue_unfinished(q), 5);
    ck_assert_uint_eq(I(get1(q)), 4);
    ck_assert_uint_eq(I(get1(q)), 5);
    ck_assert(weft_queue_empty(q));
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

/* A timed putter parked on a full queue that gets room before its
 * deadline succeeds (it never reports -ETIMEDOUT once there was room). */
START_TEST(fifo_timed_putter_gets_room_before_deadline)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 1);
    struct qarg a = {.q = q, .item = P(2), .timeout = MS(20000)};
    ck_assert_rc(weft_queue_put(q, P(1), WEFT_FOREVER), 0);
    tt *t = tt_start(put_thread, &a);
    while (!atomic_load(&a.started))
        sched_yield();
    ck_assert_uint_eq(I(get1(q)), 1);
    ck_assert_rc(tt_join(t), 0);
    ck_assert_uint_eq(I(get1(q)), 2);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

/* Graceful shutdown with more parked getters than items: the items still
 * reach getters, the rest fail with -EPIPE, nothing is lost. */
START_TEST(fifo_graceful_shutdown_serves_items_then_fails_the_rest)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 0);
    struct qarg a[3];
    tt *t[3];
    int ok = 0, pipe = 0;

    for (int i = 0; i < 3; i++) {
        a[i] = (struct qarg){.q = q, .timeout = -1};
        t[i] = tt_start(get_thread, &a[i]);
    }
    await_waiters(q, 3);
    ck_assert_rc(weft_queue_put(q, P(7), WEFT_FOREVER), 0);
    weft_queue_shutdown(q, false);
    for (int i = 0; i < 3; i++) {
        int rc = tt_join(t[i]);
        if (rc == 0) {
            ok++;
            ck_assert_uint_eq(I(a[i].item), 7);
        } else {
            ck_assert_rc(rc, -EPIPE);
            pipe++;
        }
    }
    ck_assert_int_eq(ok, 1);
    ck_assert_int_eq(pipe, 2);
    ck_assert_uint_eq(weft_queue_size(q), 0);
    ck_assert_uint_eq(weft_queue_unfinished(q), 1);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

/* The ring grows while a consumer takes items from it: order is kept and
 * no item is lost or repeated. */
struct grow_arg {
    weft_queue *q;
    int n;
    int bad;
};

static int ordered_getter(void *p)
{
    struct grow_arg *g = p;
    void *x;
    for (int i = 1; i <= g->n; i++) {
        int rc = weft_queue_get(g->q, &x, WEFT_FOREVER);
        if (rc != 0)
            return rc;
        if (I(x) != (uintptr_t)i && g->bad == 0)
            g->bad = i;
    }
    return 0;
}

START_TEST(fifo_growth_with_a_running_consumer_keeps_order)
{
    struct grow_arg g = {.q = mkq(WEFT_QUEUE_FIFO, 0), .n = 50000};
    tt *t = tt_start(ordered_getter, &g);
    for (int i = 1; i <= g.n; i++) {
        ck_assert_rc(weft_queue_put(g.q, P(i), WEFT_FOREVER), 0);
        if (i % 4096 == 0) /* let the consumer catch up now and then */
            sched_yield();
    }
    ck_assert_rc(tt_join(t), 0);
    ck_assert_int_eq(g.bad, 0);
    ck_assert(weft_queue_empty(g.q));
    ck_assert_uint_eq(weft_queue_unfinished(g.q), (size_t)g.n);
    ck_assert_rc(weft_queue_destroy(g.q, NULL), 0);
}
END_TEST

/* A bounded queue larger than the first ring still holds exactly maxsize
 * items: it grows up to maxsize, then put waits. */
START_TEST(fifo_large_bound_grows_then_is_exact)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 3000);
    void *x;
    for (int i = 1; i <= 3000; i++)
        ck_assert_rc(weft_queue_put_nowait(q, P(i)), 0);
    ck_assert(weft_queue_full(q));
    ck_assert_rc(weft_queue_put_nowait(q, P(0)), -EAGAIN);
    ck_assert_rc(weft_queue_put(q, P(0), WEFT_NOW), -ETIMEDOUT);
    for (int i = 1; i <= 1000; i++) {
        ck_assert_rc(weft_queue_get_nowait(q, &x), 0);
        ck_assert_uint_eq(I(x), i);
        ck_assert_rc(weft_queue_put_nowait(q, P(3000 + i)), 0);
    }
    for (int i = 1001; i <= 4000; i++) {
        ck_assert_rc(weft_queue_get_nowait(q, &x), 0);
        ck_assert_uint_eq(I(x), i);
    }
    ck_assert_rc(weft_queue_get_nowait(q, &x), -EAGAIN);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(ecanceled_is_not_reached_by_os_threads)
{
    /* OS threads are never cancelled: a long deadline that is met by a put
     * returns 0, and the wait leaves no entry behind. */
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 0);
    struct qarg a = {.q = q, .timeout = MS(30000)};
    tt *t = tt_start(get_thread, &a);
    await_waiters(q, 1);
    ck_assert_rc(weft_queue_put(q, P(1), WEFT_FOREVER), 0);
    ck_assert_rc(tt_join(t), 0);
    ck_assert_uint_eq(weft_queue_waiters(q), 0);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

/* ---- the lock-free ring of bounded FIFO queues (maxsize >= 2) ---------- */

START_TEST(ring_non_power_of_two_wraps_in_order)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 3);
    uintptr_t next_in = 1, next_out = 1;
    void *x;
    for (int round = 0; round < 1000; round++) {
        /* Fill to the bound (1..3 items already there), then drain some. */
        while (weft_queue_size(q) < 3)
            ck_assert_rc(weft_queue_put_nowait(q, P(next_in++)), 0);
        ck_assert(weft_queue_full(q));
        ck_assert_rc(weft_queue_put_nowait(q, P(0)), -EAGAIN);
        ck_assert_rc(weft_queue_put(q, P(0), WEFT_NOW), -ETIMEDOUT);
        for (int k = 0; k <= round % 3; k++) {
            ck_assert_rc(weft_queue_get_nowait(q, &x), 0);
            ck_assert_uint_eq(I(x), next_out++);
        }
    }
    while (weft_queue_get_nowait(q, &x) == 0)
        ck_assert_uint_eq(I(x), next_out++);
    ck_assert_uint_eq(next_out, next_in);
    ck_assert_rc(weft_queue_get_nowait(q, &x), -EAGAIN);
    ck_assert_rc(weft_queue_get(q, &x, WEFT_NOW), -ETIMEDOUT);
    ck_assert_uint_eq(weft_queue_unfinished(q), next_in - 1);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(ring_parked_getters_served_in_order)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 4);
    struct qarg a[3];
    tt *t[3];

    for (int i = 0; i < 3; i++) {
        a[i] = (struct qarg){.q = q, .timeout = -1};
        t[i] = tt_start(get_thread, &a[i]);
        await_waiters(q, (size_t)i + 1);
    }
    for (int i = 0; i < 3; i++)
        ck_assert_rc(weft_queue_put(q, P(10 + i), WEFT_FOREVER), 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_rc(tt_join(t[i]), 0);
        ck_assert_uint_eq(I(a[i].item), 10 + i);
    }
    ck_assert_uint_eq(weft_queue_size(q), 0);
    ck_assert_uint_eq(weft_queue_unfinished(q), 3);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(ring_take_undelivered_in_parts_after_wrap)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 5);
    void *buf[2];
    size_t n;
    uintptr_t want = 3;

    for (int i = 1; i <= 5; i++)
        ck_assert_rc(weft_queue_put_nowait(q, P(i)), 0);
    ck_assert_uint_eq(I(get1(q)), 1);
    ck_assert_uint_eq(I(get1(q)), 2);
    ck_assert_rc(weft_queue_put_nowait(q, P(6)), 0);
    ck_assert_rc(weft_queue_put_nowait(q, P(7)), 0); /* wrapped */
    ck_assert_rc(weft_queue_task_done(q), 0);
    ck_assert_uint_eq(weft_queue_take_undelivered(q, buf, 2), 0);
    weft_queue_shutdown(q, true);
    ck_assert_uint_eq(weft_queue_size(q), 0);
    /* Two handed out, one of them done: one task left. */
    ck_assert_uint_eq(weft_queue_unfinished(q), 1);
    ck_assert_rc(weft_queue_get_nowait(q, &buf[0]), -EPIPE);
    ck_assert_rc(weft_queue_put_nowait(q, P(8)), -EPIPE);
    while ((n = weft_queue_take_undelivered(q, buf, 2)) != 0)
        for (size_t i = 0; i < n; i++)
            ck_assert_uint_eq(I(buf[i]), want++);
    ck_assert_uint_eq(want, 8);
    ck_assert_rc(weft_queue_task_done(q), 0);
    ck_assert_rc(weft_queue_task_done(q), -EOVERFLOW);
    ck_assert_rc(weft_queue_join(q, WEFT_NOW), 0);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(ring_task_done_and_join)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 2);
    struct qarg a = {.q = q, .timeout = -1};
    ck_assert_rc(weft_queue_task_done(q), -EOVERFLOW);
    ck_assert_rc(weft_queue_put(q, P(1), WEFT_FOREVER), 0);
    ck_assert_rc(weft_queue_put(q, P(2), WEFT_FOREVER), 0);
    ck_assert_rc(weft_queue_join(q, WEFT_NOW), -ETIMEDOUT);
    tt *t = tt_start(join_thread, &a);
    await_waiters(q, 1);
    ck_assert_uint_eq(I(get1(q)), 1);
    ck_assert_rc(weft_queue_task_done(q), 0);
    ck_assert_uint_eq(weft_queue_unfinished(q), 1);
    ck_assert_uint_eq(I(get1(q)), 2);
    ck_assert_rc(weft_queue_task_done(q), 0);
    ck_assert_rc(tt_join(t), 0);
    ck_assert_rc(weft_queue_task_done(q), -EOVERFLOW);
    ck_assert_uint_eq(weft_queue_unfinished(q), 0);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(ring_parked_putter_times_out_and_keeps_item)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 2);
    struct qarg a = {.q = q, .item = P(3), .timeout = MS(50)};
    ck_assert_rc(weft_queue_put(q, P(1), WEFT_FOREVER), 0);
    ck_assert_rc(weft_queue_put(q, P(2), WEFT_FOREVER), 0);
    tt *t = tt_start(put_thread, &a);
    ck_assert_rc(tt_join(t), -ETIMEDOUT);
    ck_assert_uint_eq(weft_queue_waiters(q), 0);
    ck_assert_uint_eq(weft_queue_size(q), 2);
    ck_assert_uint_eq(weft_queue_unfinished(q), 2);
    ck_assert_uint_eq(I(get1(q)), 1);
    ck_assert_uint_eq(I(get1(q)), 2);
    ck_assert_rc(weft_queue_get_nowait(q, &a.item), -EAGAIN);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

/* ---- unbounded FIFO: the segment store (seg.c) ------------------------- */

/* An unbounded FIFO queue whose segments hold (1 << shift) - 1 items. */
static weft_queue *mkseg(unsigned shift)
{
    weft_queue *q = NULL;
    ck_assert_rc(weft__queue_create_seg(&q, shift), 0);
    ck_assert_ptr_nonnull(q);
    ck_assert_uint_eq(weft_queue_maxsize(q), 0);
    return q;
}

static const unsigned seg_shifts[] = {1, 2, 3, 5, WEFT__SEG_SHIFT};
#define NSHIFTS (sizeof seg_shifts / sizeof seg_shifts[0])

START_TEST(seg_bad_shift_is_einval)
{
    weft_queue *q = NULL;
    ck_assert_rc(weft__queue_create_seg(&q, 0), -EINVAL);
    ck_assert_rc(weft__queue_create_seg(&q, WEFT__SEG_SHIFT_MAX + 1),
                 -EINVAL);
    ck_assert_ptr_null(q);
}
END_TEST

/* Bursts of puts and gets of varying lengths cross segment boundaries at
 * every offset; order, size and unfinished stay exact throughout. */
START_TEST(seg_order_size_and_counts_across_segments)
{
    for (size_t k = 0; k < NSHIFTS; k++) {
        weft_queue *q = mkseg(seg_shifts[k]);
        uintptr_t next_put = 1, next_get = 1;
        void *x;

        for (int round = 0; round < 300; round++) {
            int np = (round * 7) % 23 + 1, ng = (round * 5) % 19 + 1;
            for (int i = 0; i < np; i++)
                ck_assert_rc(weft_queue_put(q, P(next_put++), WEFT_NOW), 0);
            for (int i = 0; i < ng && next_get < next_put; i++) {
                ck_assert_rc(weft_queue_get_nowait(q, &x), 0);
                ck_assert_uint_eq(I(x), next_get++);
            }
            ck_assert_uint_eq(weft_queue_size(q), next_put - next_get);
            ck_assert_uint_eq(weft_queue_unfinished(q), next_put - 1);
            ck_assert(!weft_queue_full(q));
        }
        while (next_get < next_put) {
            ck_assert_rc(weft_queue_get(q, &x, WEFT_NOW), 0);
            ck_assert_uint_eq(I(x), next_get++);
        }
        ck_assert_rc(weft_queue_get_nowait(q, &x), -EAGAIN);
        ck_assert_rc(weft_queue_get(q, &x, WEFT_NOW), -ETIMEDOUT);
        ck_assert(weft_queue_empty(q));
        for (uintptr_t i = 1; i < next_put; i++)
            ck_assert_rc(weft_queue_task_done(q), 0);
        ck_assert_rc(weft_queue_task_done(q), -EOVERFLOW);
        ck_assert_rc(weft_queue_join(q, WEFT_NOW), 0);
        ck_assert_rc(weft_queue_destroy(q, NULL), 0);
    }
}
END_TEST

/* A large backlog (many segments allocated at once), then drained: the
 * default segment size crossed many times. */
START_TEST(seg_large_backlog_in_order)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 0);
    long n = 100000;
    void *x;

    for (long i = 1; i <= n; i++)
        ck_assert_rc(weft_queue_put_nowait(q, P(i)), 0);
    ck_assert_uint_eq(weft_queue_size(q), (size_t)n);
    for (long i = 1; i <= n; i++) {
        ck_assert_rc(weft_queue_get_nowait(q, &x), 0);
        ck_assert_uint_eq(I(x), (uintptr_t)i);
    }
    ck_assert_uint_eq(weft_queue_size(q), 0);
    ck_assert_uint_eq(weft_queue_unfinished(q), (size_t)n);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(seg_take_undelivered_in_parts_across_segments)
{
    for (size_t k = 0; k < NSHIFTS; k++) {
        weft_queue *q = mkseg(seg_shifts[k]);
        void *buf[3], *x;
        uintptr_t want = 8;
        size_t n;

        for (int i = 1; i <= 40; i++)
            ck_assert_rc(weft_queue_put(q, P(i), WEFT_FOREVER), 0);
        for (int i = 1; i <= 7; i++) {
            ck_assert_uint_eq(I(get1(q)), (uintptr_t)i);
            ck_assert_rc(weft_queue_task_done(q), 0);
        }
        ck_assert_uint_eq(weft_queue_take_undelivered(q, buf, 3), 0);
        weft_queue_shutdown(q, true);
        ck_assert_uint_eq(weft_queue_size(q), 0);
        ck_assert_uint_eq(weft_queue_unfinished(q), 0);
        ck_assert_rc(weft_queue_get_nowait(q, &x), -EPIPE);
        ck_assert_rc(weft_queue_get(q, &x, WEFT_FOREVER), -EPIPE);
        ck_assert_rc(weft_queue_put_nowait(q, P(99)), -EPIPE);
        while ((n = weft_queue_take_undelivered(q, buf, 3)) != 0)
            for (size_t i = 0; i < n; i++)
                ck_assert_uint_eq(I(buf[i]), want++);
        ck_assert_uint_eq(want, 41);
        ck_assert_rc(weft_queue_task_done(q), -EOVERFLOW);
        ck_assert_rc(weft_queue_destroy(q, NULL), 0);
    }
}
END_TEST

START_TEST(seg_graceful_shutdown_drains_across_segments)
{
    for (size_t k = 0; k < NSHIFTS; k++) {
        weft_queue *q = mkseg(seg_shifts[k]);
        void *buf[1], *x;

        for (int i = 1; i <= 30; i++)
            ck_assert_rc(weft_queue_put(q, P(i), WEFT_FOREVER), 0);
        weft_queue_shutdown(q, false);
        ck_assert_rc(weft_queue_put(q, P(31), WEFT_FOREVER), -EPIPE);
        ck_assert_uint_eq(weft_queue_size(q), 30);
        for (int i = 1; i <= 30; i++) {
            ck_assert_rc(weft_queue_get(q, &x, WEFT_FOREVER), 0);
            ck_assert_uint_eq(I(x), (uintptr_t)i);
        }
        ck_assert_rc(weft_queue_get(q, &x, WEFT_FOREVER), -EPIPE);
        ck_assert_rc(weft_queue_get_nowait(q, &x), -EPIPE);
        ck_assert_uint_eq(weft_queue_take_undelivered(q, buf, 1), 0);
        ck_assert_uint_eq(weft_queue_unfinished(q), 30);
        /* Upgrading to immediate withdraws nothing: nothing is left. */
        weft_queue_shutdown(q, true);
        ck_assert_uint_eq(weft_queue_unfinished(q), 30);
        ck_assert_uint_eq(weft_queue_take_undelivered(q, buf, 1), 0);
        ck_assert_rc(weft_queue_destroy(q, NULL), 0);
    }
}
END_TEST

START_TEST(seg_destroy_frees_queued_and_undelivered_items)
{
    for (size_t k = 0; k < NSHIFTS; k++) {
        for (int imm = 0; imm <= 1; imm++) {
            weft_queue *q = mkseg(seg_shifts[k]);
            void *buf[4];
            /* Items 1..50 put, 1..9 got; immediate: 4 more taken back. */
            for (int i = 1; i <= 50; i++)
                ck_assert_rc(weft_queue_put(q, P(i), WEFT_NOW), 0);
            for (int i = 1; i <= 9; i++)
                ck_assert_uint_eq(I(get1(q)), (uintptr_t)i);
            if (imm) {
                weft_queue_shutdown(q, true);
                ck_assert_uint_eq(weft_queue_take_undelivered(q, buf, 4), 4);
                ck_assert_uint_eq(I(buf[3]), 13);
            }
            freed_count = 0;
            freed_sum = 0;
            ck_assert_rc(weft_queue_destroy(q, count_free), 0);
            ck_assert_int_eq(freed_count, imm ? 37 : 41);
            ck_assert_uint_eq(freed_sum,
                              1275 - 45 - (imm ? 10 + 11 + 12 + 13 : 0));
        }
    }
}
END_TEST

/* Items that own memory: ASan's leak check sees any item or segment that
 * destroy misses. */
START_TEST(seg_destroy_with_malloced_items)
{
    weft_queue *q = mkseg(2);
    void *x;
    for (int i = 0; i < 100; i++) {
        int *p = malloc(sizeof *p);
        ck_assert_ptr_nonnull(p);
        *p = i;
        ck_assert_rc(weft_queue_put(q, p, WEFT_NOW), 0);
    }
    for (int i = 0; i < 33; i++) {
        ck_assert_rc(weft_queue_get_nowait(q, &x), 0);
        ck_assert_int_eq(*(int *)x, i);
        free(x);
    }
    ck_assert_rc(weft_queue_destroy(q, free), 0);
}
END_TEST

START_TEST(seg_parked_getters_served_in_order)
{
    weft_queue *q = mkseg(1);
    struct qarg a[3];
    tt *t[3];

    for (int i = 0; i < 3; i++) {
        a[i] = (struct qarg){.q = q, .timeout = -1};
        t[i] = tt_start(get_thread, &a[i]);
        await_waiters(q, (size_t)i + 1);
    }
    for (int i = 0; i < 3; i++)
        ck_assert_rc(weft_queue_put(q, P(10 + i), WEFT_NOW), 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_rc(tt_join(t[i]), 0);
        ck_assert_uint_eq(I(a[i].item), 10 + i);
    }
    ck_assert_uint_eq(weft_queue_size(q), 0);
    ck_assert_uint_eq(weft_queue_unfinished(q), 3);
    ck_assert_uint_eq(weft_queue_waiters(q), 0);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(seg_timed_getter_times_out_then_gets)
{
    weft_queue *q = mkseg(2);
    void *x;
    int64_t t0 = weft_now();
    ck_assert_rc(weft_queue_get(q, &x, weft_deadline_in(MS(30))), -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(30), MS(2000));
    ck_assert_uint_eq(weft_queue_waiters(q), 0);
    ck_assert_rc(weft_queue_put(q, P(5), WEFT_NOW), 0);
    ck_assert_rc(weft_queue_get(q, &x, weft_deadline_in(MS(30))), 0);
    ck_assert_uint_eq(I(x), 5);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

/* Address-space limits do not mix with the sanitizers' shadow memory, so
 * the -ENOMEM test runs in release builds only. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define NO_RLIMIT_AS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define NO_RLIMIT_AS 1
#endif
#endif

#ifndef NO_RLIMIT_AS
/* The virtual memory this process maps now (VmSize), in bytes. */
static size_t vm_size(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kb = 0;
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %zu kB", &kb) == 1)
            break;
    fclose(f);
    ck_assert_uint_gt(kb, 0);
    return kb * 1024;
}
#endif

/* A put that needs a new segment and cannot allocate it fails with -ENOMEM
 * and changes nothing; once memory is back it succeeds. */
START_TEST(seg_enomem_leaves_the_queue_unchanged)
{
#ifdef NO_RLIMIT_AS
    return;
#else
    /* 1 MiB segments: malloc maps each one on its own. */
    weft_queue *q = mkseg(16);
    size_t cap = ((size_t)1 << 16) - 1;
    struct rlimit old, lim;
    void *x;
    int rc;

    for (size_t i = 1; i < cap; i++)
        ck_assert_rc(weft_queue_put_nowait(q, P(i)), 0);
    ck_assert_rc(getrlimit(RLIMIT_AS, &old), 0);
    lim = old;
    lim.rlim_cur = vm_size() + 256 * 1024;
    ck_assert_rc(setrlimit(RLIMIT_AS, &lim), 0);
    /* The put of the segment's last slot must allocate the next one. */
    rc = weft_queue_put_nowait(q, P(cap));
    ck_assert_rc(setrlimit(RLIMIT_AS, &old), 0);
    ck_assert_rc(rc, -ENOMEM);
    ck_assert_uint_eq(weft_queue_size(q), cap - 1);
    ck_assert_uint_eq(weft_queue_unfinished(q), cap - 1);
    ck_assert_rc(weft_queue_put(q, P(cap), WEFT_NOW), 0);
    ck_assert_rc(weft_queue_put(q, P(cap + 1), WEFT_NOW), 0);
    ck_assert_uint_eq(weft_queue_size(q), cap + 1);
    for (size_t i = 1; i <= cap + 1; i++) {
        ck_assert_rc(weft_queue_get_nowait(q, &x), 0);
        ck_assert_uint_eq(I(x), i);
    }
    ck_assert_rc(weft_queue_get_nowait(q, &x), -EAGAIN);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
#endif
}
END_TEST

static Suite *queue_suite(void)
{
    Suite *s = suite_create("queue");
    TCase *c = tcase_create("queue");
    tcase_set_timeout(c, 30);
    tcase_add_test(c, create_bad_kind_is_einval);
    tcase_add_test(c, fifo_order);
    tcase_add_test(c, lifo_order);
    tcase_add_test(c, priority_order_lowest_first);
    tcase_add_test(c, priority_equal_prios_are_fifo);
    tcase_add_test(c, get_prio_gives_prio_and_zero_on_fifo_lifo);
    tcase_add_test(c, unbounded_grows_past_initial_capacity);
    tcase_add_test(c, fifo_keeps_order_across_wrap_and_growth);
    tcase_add_test(c, size_empty_full_maxsize);
    tcase_add_test(c, put_nowait_full_is_eagain);
    tcase_add_test(c, get_nowait_empty_is_eagain);
    tcase_add_test(c, now_deadline_is_etimedout);
    tcase_add_test(c, get_deadline_times_out);
    tcase_add_test(c, put_deadline_times_out);
    tcase_add_test(c, bounded_put_blocks_until_get);
    tcase_add_test(c, blocked_putters_enter_in_order);
    tcase_add_test(c, get_blocks_until_put);
    tcase_add_test(c, blocked_getters_served_in_order);
    tcase_add_test(c, get_with_deadline_succeeds_when_put_in_time);
    tcase_add_test(c, timed_out_getter_never_loses_an_item);
    tcase_add_test(c, task_done_too_often_is_eoverflow);
    tcase_add_test(c, join_with_nothing_unfinished_returns_at_once);
    tcase_add_test(c, join_deadline_times_out_while_unfinished);
    tcase_add_test(c, join_waits_for_every_task_done);
    tcase_add_test(c, parked_joiner_woken_by_last_task_done);
    tcase_add_test(c, put_after_shutdown_is_epipe);
    tcase_add_test(c, graceful_shutdown_drains_then_epipe);
    tcase_add_test(c, graceful_shutdown_wakes_blocked_getters);
    tcase_add_test(c, shutdown_wakes_blocked_putter_even_with_room);
    tcase_add_test(c, graceful_shutdown_on_full_queue_lets_getters_drain);
    tcase_add_test(c, immediate_shutdown_hands_back_items_in_queue_order);
    tcase_add_test(c, immediate_shutdown_wakes_blocked_getter);
    tcase_add_test(c, join_after_immediate_shutdown);
    tcase_add_test(c, immediate_shutdown_wakes_joiner_when_nothing_handed_out);
    tcase_add_test(c, immediate_shutdown_clamps_unfinished_at_zero);
    tcase_add_test(c, shutdown_upgrades_to_immediate_never_back);
    tcase_add_test(c, timed_getter_sees_epipe_after_shutdown);
    tcase_add_test(c, destroy_passes_leftovers_to_free_item);
    tcase_add_test(c, destroy_frees_undelivered_items_too);
    tcase_add_test(c, destroy_with_items_and_null_free_item);
    tcase_add_test(c, destroy_is_ebusy_while_anyone_waits);
    tcase_add_test(c, ecanceled_is_not_reached_by_os_threads);
    tcase_add_test(c, fifo_parked_putters_served_by_every_kind_of_get);
    tcase_add_test(c, fifo_timed_putter_gets_room_before_deadline);
    tcase_add_test(c, fifo_graceful_shutdown_serves_items_then_fails_the_rest);
    tcase_add_test(c, fifo_growth_with_a_running_consumer_keeps_order);
    tcase_add_test(c, fifo_large_bound_grows_then_is_exact);
    tcase_add_test(c, ring_non_power_of_two_wraps_in_order);
    tcase_add_test(c, ring_parked_getters_served_in_order);
    tcase_add_test(c, ring_take_undelivered_in_parts_after_wrap);
    tcase_add_test(c, ring_task_done_and_join);
    tcase_add_test(c, seg_bad_shift_is_einval);
    tcase_add_test(c, seg_order_size_and_counts_across_segments);
    tcase_add_test(c, seg_large_backlog_in_order);
    tcase_add_test(c, seg_take_undelivered_in_parts_across_segments);
    tcase_add_test(c, seg_graceful_shutdown_drains_across_segments);
    tcase_add_test(c, seg_destroy_frees_queued_and_undelivered_items);
    tcase_add_test(c, seg_destroy_with_malloced_items);
    tcase_add_test(c, seg_parked_getters_served_in_order);
    tcase_add_test(c, seg_timed_getter_times_out_then_gets);
    tcase_add_test(c, seg_enomem_leaves_the_queue_unchanged);
    tcase_add_test(c, ring_parked_putter_times_out_and_keeps_item);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(queue_suite)
