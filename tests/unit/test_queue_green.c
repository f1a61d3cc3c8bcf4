/* test_queue_green.c - weft_queue parts that the queue ping-pong work
 * added: FIFO queues of maxsize 1 on the lock-free ring (fast.c, "Maxsize
 * 1"), and the yield a green thread makes before it parks on an empty or
 * full queue (queue_internal.h), which the one-worker scheduler makes
 * deterministic: a yield lets the partner run, and a yield that did not pay
 * makes the next waits on that queue park at once. */
#include "support.h"

#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "queue/queue_internal.h" /* q->fast, WEFT__QUEUE_YIELD_SKIP */

#define P(i) ((void *)(uintptr_t)(i))

static weft_queue *mkq(weft_queue_kind kind, size_t maxsize)
{
    weft_queue *q;
    ck_assert_rc(weft_queue_create(&q, kind, maxsize), 0);
    return q;
}

/* ---- maxsize 1 on the ring ------------------------------------------ */

START_TEST(one_is_lock_free_bounded_and_in_order)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 1);
    void *x;

    ck_assert_ptr_nonnull(q->fast);
    ck_assert(weft_queue_empty(q));
    /* Many laps of the two cells, each put/get checked. */
    for (uintptr_t i = 1; i <= 1000; i++) {
        ck_assert_rc(weft_queue_put(q, P(i), WEFT_NOW), 0);
        ck_assert(weft_queue_full(q));
        ck_assert_uint_eq(weft_queue_size(q), 1);
        ck_assert_rc(weft_queue_put_nowait(q, P(i + 1)), -EAGAIN);
        ck_assert_rc(weft_queue_put(q, P(i + 1), WEFT_NOW), -ETIMEDOUT);
        ck_assert_rc(weft_queue_put(q, P(i + 1), weft_deadline_in(MS(1))),
                     -ETIMEDOUT);
        ck_assert_rc(weft_queue_get(q, &x, WEFT_NOW), 0);
        ck_assert_ptr_eq(x, P(i));
        ck_assert_rc(weft_queue_get_nowait(q, &x), -EAGAIN);
        ck_assert_uint_eq(weft_queue_size(q), 0);
    }
    ck_assert_uint_eq(weft_queue_unfinished(q), 1000);
    for (int i = 0; i < 1000; i++)
        ck_assert_rc(weft_queue_task_done(q), 0);
    ck_assert_rc(weft_queue_task_done(q), -EOVERFLOW);
    ck_assert_rc(weft_queue_join(q, WEFT_NOW), 0);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(one_immediate_shutdown_hands_back_the_item)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 1);
    void *buf[4];
    void *x;

    ck_assert_rc(weft_queue_put(q, P(7), WEFT_NOW), 0);
    ck_assert_rc(weft_queue_get(q, &x, WEFT_NOW), 0);
    ck_assert_rc(weft_queue_put(q, P(8), WEFT_NOW), 0);
    weft_queue_shutdown(q, true);
    ck_assert_rc(weft_queue_get(q, &x, WEFT_NOW), -EPIPE);
    ck_assert_rc(weft_queue_put(q, P(9), WEFT_NOW), -EPIPE);
    ck_assert_uint_eq(weft_queue_take_undelivered(q, buf, 4), 1);
    ck_assert_ptr_eq(buf[0], P(8));
    ck_assert_uint_eq(weft_queue_take_undelivered(q, buf, 4), 0);
    ck_assert_uint_eq(weft_queue_unfinished(q), 1); /* the one got */
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

struct putarg {
    weft_queue *q;
    void *item;
    int64_t deadline;
};

static int put_thread(void *p)
{
    struct putarg *a = p;
    return weft_queue_put(a->q, a->item, a->deadline);
}

static void await_waiters(weft_queue *q, size_t n)
{
    while (weft_queue_waiters(q) != n)
        sched_yield();
}

START_TEST(one_parked_putter_is_moved_in_by_a_get)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 1);
    struct putarg a = {q, P(2), WEFT_FOREVER};
    void *x;
    tt *t;

    ck_assert_rc(weft_queue_put(q, P(1), WEFT_NOW), 0);
    t = tt_start(put_thread, &a);
    await_waiters(q, 1);
    ck_assert_rc(weft_queue_get(q, &x, WEFT_NOW), 0);
    ck_assert_ptr_eq(x, P(1));
    ck_assert_rc(tt_join(t), 0);
    /* The get moved the putter's item in before it woke it. */
    ck_assert_uint_eq(weft_queue_size(q), 1);
    ck_assert_rc(weft_queue_get(q, &x, WEFT_NOW), 0);
    ck_assert_ptr_eq(x, P(2));
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

START_TEST(one_parked_putter_times_out_and_keeps_its_item)
{
    weft_queue *q = mkq(WEFT_QUEUE_FIFO, 1);
    struct putarg a = {q, P(2), 0};
    void *x;

    ck_assert_rc(weft_queue_put(q, P(1), WEFT_NOW), 0);
    a.deadline = weft_deadline_in(MS(20));
    ck_assert_rc(put_thread(&a), -ETIMEDOUT);
    ck_assert_uint_eq(weft_queue_waiters(q), 0);
    ck_assert_uint_eq(weft_queue_size(q), 1);
    ck_assert_rc(weft_queue_get(q, &x, WEFT_NOW), 0);
    ck_assert_ptr_eq(x, P(1));
    ck_assert_rc(weft_queue_get(q, &x, WEFT_NOW), -ETIMEDOUT);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

/* ---- a green thread yields before it parks --------------------------- */

struct yield_case {
    weft_queue *q;
    _Atomic long waiters_seen; /* by the partner, before it acts */
    void *got;
};

static int getter(void *p)
{
    struct yield_case *c = p;
    return weft_queue_get(c->q, &c->got, WEFT_FOREVER);
}

static int putter_after_look(void *p)
{
    struct yield_case *c = p;
    atomic_store(&c->waiters_seen, (long)weft_queue_waiters(c->q));
    return weft_queue_put(c->q, P(42), WEFT_FOREVER);
}

static int filler(void *p)
{
    struct yield_case *c = p;
    return weft_queue_put(c->q, P(43), WEFT_FOREVER); /* the queue is full */
}

static int getter_after_look(void *p)
{
    struct yield_case *c = p;
    atomic_store(&c->waiters_seen, (long)weft_queue_waiters(c->q));
    return weft_queue_get(c->q, &c->got, WEFT_FOREVER);
}

/* Run a and b as green threads spawned from a green thread on the one
 * worker (FIFO: a first), and wait for both. */
struct pair {
    weft_green_fn a, b;
    void *arg;
};

static int run_pair(void *p)
{
    struct pair *pr = p;
    weft_green *ga, *gb;
    int ra = -1, rb = -1;

    if (weft_green_spawn(&ga, pr->a, pr->arg, NULL) != 0 ||
        weft_green_spawn(&gb, pr->b, pr->arg, NULL) != 0)
        return -ENOMEM;
    if (weft_green_join(ga, &ra, WEFT_FOREVER) != 0 ||
        weft_green_join(gb, &rb, WEFT_FOREVER) != 0)
        return -EIO;
    return ra != 0 ? ra : rb;
}

/* One worker, whose order these tests rely on: and no spare worker taking
 * its queue when a slow spawn (ThreadSanitizer, a loaded machine) holds it
 * past the switch interval, so the interval is a minute (each test runs in
 * a process of its own). */
static void start_one_worker(void)
{
    ck_assert_rc(weft_runtime_set_switch_interval(60 * WEFT_NSEC_PER_SEC), 0);
    ck_assert_rc(weft_runtime_start(1), 0);
}

static void drive(weft_green_fn fn, void *arg)
{
    weft_green *g;
    int res = -1;

    ck_assert_rc(weft_green_spawn(&g, fn, arg, NULL), 0);
    ck_assert_rc(weft_green_join(g, &res, WEFT_FOREVER), 0);
    ck_assert_rc(res, 0);
}

/* A getter on an empty queue yields; its partner, run meanwhile, finds no
 * parked waiter and puts; the getter then takes the item without parking.
 * Every kind of queue: the ring (maxsize 1 and 4), segments (unbounded)
 * and the locked storage (LIFO). */
START_TEST(green_getter_yields_to_its_partner_before_parking)
{
    static const struct {
        weft_queue_kind kind;
        size_t maxsize;
    } kinds[] = {{WEFT_QUEUE_FIFO, 1},
                 {WEFT_QUEUE_FIFO, 4},
                 {WEFT_QUEUE_FIFO, 0},
                 {WEFT_QUEUE_LIFO, 1},
                 {WEFT_QUEUE_PRIORITY, 0}};

    start_one_worker();
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        struct yield_case c = {.q = mkq(kinds[k].kind, kinds[k].maxsize)};
        struct pair pr = {getter, putter_after_look, &c};

        atomic_store(&c.waiters_seen, -1);
        drive(run_pair, &pr);
        ck_assert_int_eq(atomic_load(&c.waiters_seen), 0);
        ck_assert_ptr_eq(c.got, P(42));
        ck_assert_rc(weft_queue_destroy(c.q, NULL), 0);
    }
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

/* The same for a putter on a full queue: its partner's get finds no
 * parked putter. */
START_TEST(green_putter_yields_to_its_partner_before_parking)
{
    static const size_t maxsizes[] = {1, 3};

    start_one_worker();
    for (size_t k = 0; k < sizeof maxsizes / sizeof maxsizes[0]; k++) {
        struct yield_case c = {.q = mkq(WEFT_QUEUE_FIFO, maxsizes[k])};
        struct pair pr = {filler, getter_after_look, &c};
        void *x;

        for (size_t i = 0; i < maxsizes[k]; i++)
            ck_assert_rc(weft_queue_put(c.q, P(i + 1), WEFT_NOW), 0);
        atomic_store(&c.waiters_seen, -1);
        drive(run_pair, &pr);
        ck_assert_int_eq(atomic_load(&c.waiters_seen), 0);
        ck_assert_ptr_eq(c.got, P(1));
        /* The filler's item went in behind the rest. */
        for (size_t i = 1; i < maxsizes[k]; i++)
            ck_assert_rc(weft_queue_get(c.q, &x, WEFT_NOW), 0);
        ck_assert_rc(weft_queue_get(c.q, &x, WEFT_NOW), 0);
        ck_assert_ptr_eq(x, P(43));
        ck_assert_rc(weft_queue_destroy(c.q, NULL), 0);
    }
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

/* A yield that does not pay (nothing was put meanwhile) parks the getter,
 * and the next WEFT__QUEUE_YIELD_SKIP waits on that queue park without
 * yielding; after them the getter yields again. */
struct miss_case {
    weft_queue *q;
    long gets;
    _Atomic long got;
};

static int counting_getter(void *p)
{
    struct miss_case *c = p;
    void *x;

    for (long i = 0; i < c->gets; i++) {
        int rc = weft_queue_get(c->q, &x, WEFT_FOREVER);
        if (rc != 0)
            return rc;
        if (x != P(i + 1))
            return -EIO;
        atomic_fetch_add(&c->got, 1);
    }
    return 0;
}

static int miss_driver(void *p)
{
    struct miss_case *c = p;
    weft_green *g;
    int res = -1;

    c->gets = WEFT__QUEUE_YIELD_SKIP + 2;
    if (weft_green_spawn(&g, counting_getter, c, NULL) != 0)
        return -ENOMEM;
    /* The getter runs, finds the queue empty and yields back to us. */
    weft_green_yield();
    if (weft_queue_waiters(c->q) != 0)
        return -EPROTO; /* it parked instead of yielding */
    /* We put nothing: its look after the yield misses, and it parks. */
    weft_green_yield();
    if (weft_queue_waiters(c->q) != 1)
        return -EPROTO;
    for (long i = 0; i < c->gets; i++) {
        if (weft_queue_put(c->q, P(i + 1), WEFT_NOW) != 0)
            return -EIO;
        /* The getter takes the item, then waits again: for the next
         * WEFT__QUEUE_YIELD_SKIP gets it parks at once, so one yield of
         * ours finds it parked; the last get yields first again. */
        weft_green_yield();
        if (i + 1 == c->gets)
            break;
        if (atomic_load(&c->got) != i + 1)
            return -EPROTO;
        if (weft_queue_waiters(c->q) != (i < WEFT__QUEUE_YIELD_SKIP ? 1 : 0))
            return -EPROTO;
        if (i >= WEFT__QUEUE_YIELD_SKIP)
            weft_green_yield(); /* let its yield miss: then it parks */
    }
    if (weft_green_join(g, &res, WEFT_FOREVER) != 0)
        return -EIO;
    return res;
}

START_TEST(green_yield_that_misses_makes_the_next_waits_park_at_once)
{
    struct miss_case c = {.q = mkq(WEFT_QUEUE_FIFO, 1)};

    start_one_worker();
    drive(miss_driver, &c);
    ck_assert_int_eq(atomic_load(&c.got), (long)WEFT__QUEUE_YIELD_SKIP + 2);
    ck_assert_rc(weft_queue_destroy(c.q, NULL), 0);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

/* A green getter cancelled while it is in its yield (not yet parked)
 * still returns -ECANCELED once it parks, and takes nothing. */
static int cancel_me_getter(void *p)
{
    struct yield_case *c = p;
    return weft_queue_get(c->q, &c->got, WEFT_FOREVER);
}

static int cancel_driver(void *p)
{
    struct yield_case *c = p;
    weft_green *g;
    int res = 0;

    if (weft_green_spawn(&g, cancel_me_getter, c, NULL) != 0)
        return -ENOMEM;
    weft_green_yield(); /* the getter yields back to us, unparked */
    if (weft_queue_waiters(c->q) != 0)
        return -EPROTO;
    if (weft_green_cancel(g) != 0)
        return -EIO;
    if (weft_green_join(g, &res, WEFT_FOREVER) != 0)
        return -EIO;
    return res == -ECANCELED ? 0 : -EPROTO;
}

START_TEST(green_getter_cancelled_during_its_yield_is_ecanceled)
{
    struct yield_case c = {.q = mkq(WEFT_QUEUE_FIFO, 1)};

    start_one_worker();
    drive(cancel_driver, &c);
    ck_assert_ptr_null(c.got);
    ck_assert_uint_eq(weft_queue_waiters(c.q), 0);
    ck_assert_rc(weft_queue_destroy(c.q, NULL), 0);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

static Suite *queue_green_suite(void)
{
    Suite *s = suite_create("queue_green");
    TCase *c = tcase_create("one");
    tcase_set_timeout(c, 30);
    tcase_add_test(c, one_is_lock_free_bounded_and_in_order);
    tcase_add_test(c, one_immediate_shutdown_hands_back_the_item);
    tcase_add_test(c, one_parked_putter_is_moved_in_by_a_get);
    tcase_add_test(c, one_parked_putter_times_out_and_keeps_its_item);
    suite_add_tcase(s, c);
    c = tcase_create("yield");
    tcase_set_timeout(c, 30);
    tcase_add_test(c, green_getter_yields_to_its_partner_before_parking);
    tcase_add_test(c, green_putter_yields_to_its_partner_before_parking);
    tcase_add_test(c,
                   green_yield_that_misses_makes_the_next_waits_park_at_once);
    tcase_add_test(c, green_getter_cancelled_during_its_yield_is_ecanceled);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(queue_green_suite)
