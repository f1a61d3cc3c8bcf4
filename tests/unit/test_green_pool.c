/* test_green_pool.c - weft_green_pool: the bound on concurrency (max in
 * flight tracked), spawn parking the caller while full (deadline, WEFT_NOW,
 * cancellation), FIFO slots, counts, resize both ways (negative free),
 * waitall, the reentrant inline spawn, destroy's -EBUSY, failures, and imap
 * (order under random durations, failures reported when reached, memory
 * bounded by the size, timeouts, end with tasks in flight, the one-call
 * form, a member running imap on its own full pool).  Each Check test runs
 * in its own process, so each starts its own runtime. */
#include "support.h"

#include <stdatomic.h>
#include <string.h>

static _Atomic int in_flight, max_in_flight, done_count;

static void enter(void)
{
    int now = atomic_fetch_add(&in_flight, 1) + 1;
    int m = atomic_load(&max_in_flight);
    while (now > m && !atomic_compare_exchange_weak(&max_in_flight, &m, now))
        ;
}

static void leave(void)
{
    atomic_fetch_sub(&in_flight, 1);
    atomic_fetch_add(&done_count, 1);
}

static uint32_t rnd(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static int busy_task(void *p)
{
    uint32_t s = (uint32_t)(uintptr_t)p;
    enter();
    for (int i = rnd(&s) % 4; i > 0; i--)
        weft_green_yield();
    if (rnd(&s) % 3 == 0)
        weft_sleep_until(weft_deadline_in(rnd(&s) % 200000));
    leave();
    return 0;
}

static int wait_event(void *p)
{
    enter();
    int rc = weft_event_wait(p, WEFT_FOREVER);
    leave();
    return rc;
}

static int ret_arg(void *p)
{
    return (int)(intptr_t)p;
}

START_TEST(bad_arguments)
{
    weft_green_pool *p;
    weft_green_imap *it;
    ck_assert_rc(weft_green_pool_create(NULL, 1), -EINVAL);
    ck_assert_rc(weft_green_pool_create(&p, -1), -EINVAL);
    ck_assert_rc(weft_green_pool_create(&p, 0), 0);
    ck_assert_rc(weft_green_pool_spawn(NULL, ret_arg, NULL, WEFT_NOW), -EINVAL);
    ck_assert_rc(weft_green_pool_spawn(p, NULL, NULL, WEFT_NOW), -EINVAL);
    ck_assert_rc(weft_green_pool_resize(NULL, 1), -EINVAL);
    ck_assert_rc(weft_green_pool_resize(p, -1), -EINVAL);
    ck_assert_rc(weft_green_pool_waitall(NULL, WEFT_NOW), -EINVAL);
    ck_assert_rc(weft_green_pool_destroy(NULL), -EINVAL);
    ck_assert_rc(weft_green_imap_start(NULL, p, NULL, NULL, 0), -EINVAL);
    ck_assert_rc(weft_green_imap_start(&it, NULL, NULL, NULL, 0), -EINVAL);
    ck_assert_rc(weft_green_imap_next(NULL, NULL, NULL, WEFT_NOW), -EINVAL);
    ck_assert_rc(weft_green_imap_end(NULL), -EINVAL);
    ck_assert_rc(weft_green_pool_imap(p, NULL, NULL, 0, NULL, NULL, WEFT_NOW),
                 -EINVAL);
    ck_assert_int_eq(weft_green_pool_running(NULL), 0);
    /* Size 0: nothing runs; a spawn cannot get a slot. */
    ck_assert_int_eq(weft_green_pool_size(p), 0);
    ck_assert_int_eq(weft_green_pool_free_count(p), 0);
    ck_assert_rc(weft_green_pool_spawn(p, ret_arg, NULL, WEFT_NOW), -ETIMEDOUT);
    ck_assert_rc(weft_green_pool_waitall(p, WEFT_NOW), 0);
    ck_assert_rc(weft_green_pool_destroy(p), 0);
}
END_TEST

static int spawn_many(void *p)
{
    weft_green_pool *pool = p;
    for (int i = 0; i < 300; i++)
        if (weft_green_pool_spawn(pool, busy_task, (void *)(uintptr_t)(i * 7 + 1),
                                  WEFT_FOREVER) != 0)
            return 1;
    return 0;
}

/* Spawners on OS threads and green threads; never more than size run. */
START_TEST(concurrency_never_exceeds_size)
{
    weft_green_pool *p;
    weft_green *g[2];
    tt *t;
    ck_assert_rc(weft_runtime_start(2), 0);
    ck_assert_rc(weft_green_pool_create(&p, 4), 0);
    t = tt_start(spawn_many, p);
    for (int i = 0; i < 2; i++)
        ck_assert_rc(weft_green_spawn(&g[i], spawn_many, p, NULL), 0);
    ck_assert_int_eq(tt_join(t), 0);
    for (int i = 0; i < 2; i++) {
        int r = -1;
        ck_assert_rc(weft_green_join(g[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 0);
    }
    ck_assert_rc(weft_green_pool_waitall(p, weft_deadline_in(MS(20000))), 0);
    ck_assert_int_eq(atomic_load(&done_count), 900);
    ck_assert_int_le(atomic_load(&max_in_flight), 4);
    ck_assert_int_ge(atomic_load(&max_in_flight), 1);
    ck_assert_int_eq(weft_green_pool_running(p), 0);
    ck_assert_int_eq(weft_green_pool_failures(p), 0);
    ck_assert_rc(weft_green_pool_destroy(p), 0);
}
END_TEST

START_TEST(spawn_parks_while_full)
{
    weft_green_pool *p;
    weft_event go = WEFT_EVENT_INIT;
    ck_assert_rc(weft_green_pool_create(&p, 1), 0);
    ck_assert_rc(weft_green_pool_spawn(p, wait_event, &go, WEFT_NOW), 0);
    ck_assert_int_eq(weft_green_pool_running(p), 1);
    ck_assert_int_eq(weft_green_pool_free_count(p), 0);
    ck_assert_rc(weft_green_pool_spawn(p, ret_arg, NULL, WEFT_NOW), -ETIMEDOUT);
    int64_t t0 = weft_now();
    ck_assert_rc(weft_green_pool_spawn(p, ret_arg, NULL, weft_deadline_in(MS(50))),
                 -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(50), MS(2000));
    ck_assert_int_eq(weft_green_pool_waiting(p), 0);
    ck_assert_rc(weft_green_pool_destroy(p), -EBUSY);
    ck_assert_rc(weft_green_pool_waitall(p, WEFT_NOW), -ETIMEDOUT);
    t0 = weft_now();
    ck_assert_rc(weft_green_pool_waitall(p, weft_deadline_in(MS(30))), -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(30), MS(2000));
    weft_event_set(&go);
    ck_assert_rc(weft_green_pool_spawn(p, ret_arg, NULL, weft_deadline_in(MS(5000))), 0);
    ck_assert_rc(weft_green_pool_waitall(p, weft_deadline_in(MS(5000))), 0);
    ck_assert_rc(weft_green_pool_destroy(p), 0);
}
END_TEST

/* Parked spawners get slots in the order they parked (one worker, green
 * spawners; the pool of size 1 is held by a blocker). */
static weft_green_pool *fifo_pool;
static int order[8], norder;

static int record(void *p)
{
    order[norder++] = (int)(intptr_t)p; /* one worker: no race */
    return 0;
}

static int fifo_spawner(void *p)
{
    return weft_green_pool_spawn(fifo_pool, record, p, WEFT_FOREVER);
}

START_TEST(parked_spawners_are_served_fifo)
{
    weft_event go = WEFT_EVENT_INIT;
    weft_green *g[5];
    ck_assert_rc(weft_runtime_start(1), 0);
    ck_assert_rc(weft_green_pool_create(&fifo_pool, 1), 0);
    ck_assert_rc(weft_green_pool_spawn(fifo_pool, wait_event, &go, WEFT_NOW), 0);
    for (int i = 0; i < 5; i++)
        ck_assert_rc(weft_green_spawn(&g[i], fifo_spawner, (void *)(intptr_t)i, NULL), 0);
    while (weft_green_pool_waiting(fifo_pool) < 5)
        weft_sleep_until(weft_deadline_in(MS(1)));
    ck_assert_int_eq(weft_green_pool_free_count(fifo_pool), 0);
    weft_event_set(&go);
    for (int i = 0; i < 5; i++) {
        int r = -1;
        ck_assert_rc(weft_green_join(g[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 0);
    }
    ck_assert_rc(weft_green_pool_waitall(fifo_pool, WEFT_FOREVER), 0);
    ck_assert_int_eq(norder, 5);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(order[i], i);
    ck_assert_rc(weft_green_pool_destroy(fifo_pool), 0);
}
END_TEST

static int spawn_forever(void *p)
{
    return weft_green_pool_spawn(p, ret_arg, NULL, WEFT_FOREVER);
}

START_TEST(cancelled_spawner_gets_ecanceled)
{
    weft_green_pool *p;
    weft_event go = WEFT_EVENT_INIT;
    weft_green *g;
    int r = 0;
    ck_assert_rc(weft_green_pool_create(&p, 1), 0);
    ck_assert_rc(weft_green_pool_spawn(p, wait_event, &go, WEFT_NOW), 0);
    ck_assert_rc(weft_green_spawn(&g, spawn_forever, p, NULL), 0);
    while (weft_green_pool_waiting(p) < 1)
        weft_sleep_until(weft_deadline_in(MS(1)));
    ck_assert_rc(weft_green_pool_destroy(p), -EBUSY);
    ck_assert_rc(weft_green_cancel(g), 0);
    ck_assert_rc(weft_green_join(g, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, -ECANCELED);
    ck_assert_int_eq(weft_green_pool_waiting(p), 0);
    ck_assert_int_eq(weft_green_pool_running(p), 1);
    weft_event_set(&go);
    ck_assert_rc(weft_green_pool_waitall(p, WEFT_FOREVER), 0);
    ck_assert_rc(weft_green_pool_destroy(p), 0);
}
END_TEST

/* Shrink below the number running: free goes negative, nothing new starts
 * until running < size; grow: parked spawners start at once. */
START_TEST(resize_shrink_and_grow)
{
    weft_green_pool *p;
    weft_event go[3] = {WEFT_EVENT_INIT, WEFT_EVENT_INIT, WEFT_EVENT_INIT};
    weft_event go2 = WEFT_EVENT_INIT;
    weft_green *sp;
    int r = -1;
    ck_assert_rc(weft_green_pool_create(&p, 3), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_rc(weft_green_pool_spawn(p, wait_event, &go[i], WEFT_NOW), 0);
    ck_assert_rc(weft_green_pool_resize(p, 1), 0);
    ck_assert_int_eq(weft_green_pool_size(p), 1);
    ck_assert_int_eq(weft_green_pool_free_count(p), -2);
    ck_assert_rc(weft_green_spawn(&sp, spawn_forever, p, NULL), 0);
    while (weft_green_pool_waiting(p) < 1)
        weft_sleep_until(weft_deadline_in(MS(1)));
    weft_event_set(&go[0]);
    while (weft_green_pool_running(p) > 2)
        weft_sleep_until(weft_deadline_in(MS(1)));
    ck_assert_int_eq(weft_green_pool_free_count(p), -1);
    ck_assert_int_eq(weft_green_pool_waiting(p), 1); /* still parked */
    weft_event_set(&go[1]);
    while (weft_green_pool_running(p) > 1)
        weft_sleep_until(weft_deadline_in(MS(1)));
    ck_assert_int_eq(weft_green_pool_waiting(p), 1); /* running == size */
    /* Grow: the parked spawner gets a slot. */
    ck_assert_rc(weft_green_pool_resize(p, 5), 0);
    ck_assert_rc(weft_green_join(sp, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 0);
    ck_assert_rc(weft_green_pool_spawn(p, wait_event, &go2, WEFT_NOW), 0);
    ck_assert_int_le(weft_green_pool_running(p), 3);
    weft_event_set(&go[2]);
    weft_event_set(&go2);
    ck_assert_rc(weft_green_pool_waitall(p, weft_deadline_in(MS(5000))), 0);
    ck_assert_int_eq(weft_green_pool_free_count(p), 5);
    ck_assert_rc(weft_green_pool_destroy(p), 0);
}
END_TEST

/* A member spawning into its own full pool runs the function inline. */
static weft_green_pool *re_pool;
static _Atomic uint64_t inner_id, outer_id;

static int inner(void *p)
{
    (void)p;
    atomic_store(&inner_id, weft_green_id(NULL));
    return 9; /* a failure, counted */
}

static int outer(void *p)
{
    (void)p;
    atomic_store(&outer_id, weft_green_id(NULL));
    if (weft_green_pool_spawn(re_pool, inner, NULL, WEFT_NOW) != 0)
        return 1;
    if (atomic_load(&inner_id) != weft_green_id(NULL))
        return 2; /* it must have run here, already */
    if (weft_green_pool_waitall(re_pool, WEFT_NOW) != -EDEADLK)
        return 3;
    return 0;
}

START_TEST(member_spawn_into_full_pool_runs_inline)
{
    ck_assert_rc(weft_green_pool_create(&re_pool, 1), 0);
    ck_assert_rc(weft_green_pool_spawn(re_pool, outer, NULL, WEFT_FOREVER), 0);
    ck_assert_rc(weft_green_pool_waitall(re_pool, weft_deadline_in(MS(5000))), 0);
    ck_assert_int_ne(atomic_load(&outer_id), 0);
    ck_assert_int_eq(atomic_load(&inner_id), atomic_load(&outer_id));
    ck_assert_int_eq(weft_green_pool_failures(re_pool), 1); /* inner's 9 */
    ck_assert_rc(weft_green_pool_destroy(re_pool), 0);
}
END_TEST

START_TEST(failures_are_counted)
{
    weft_green_pool *p;
    ck_assert_rc(weft_green_pool_create(&p, 3), 0);
    for (int i = 0; i < 10; i++)
        ck_assert_rc(weft_green_pool_spawn(p, ret_arg, (void *)(intptr_t)(i % 3 == 0 ? -1 : 0),
                                           WEFT_FOREVER), 0);
    ck_assert_rc(weft_green_pool_waitall(p, weft_deadline_in(MS(5000))), 0);
    ck_assert_int_eq(weft_green_pool_failures(p), 4);
    ck_assert_rc(weft_green_pool_destroy(p), 0);
}
END_TEST

/* waitall from OS threads and green threads at once; destroy after. */
static _Atomic int waiters_in;

static int waitall_waiter(void *p)
{
    atomic_fetch_add(&waiters_in, 1);
    return weft_green_pool_waitall(p, weft_deadline_in(MS(10000)));
}

START_TEST(waitall_from_os_and_green_threads)
{
    weft_green_pool *p;
    weft_event go = WEFT_EVENT_INIT;
    tt *os[2];
    weft_green *g[2];
    ck_assert_rc(weft_green_pool_create(&p, 2), 0);
    ck_assert_rc(weft_green_pool_spawn(p, wait_event, &go, WEFT_NOW), 0);
    ck_assert_rc(weft_green_pool_spawn(p, wait_event, &go, WEFT_NOW), 0);
    for (int i = 0; i < 2; i++) {
        os[i] = tt_start(waitall_waiter, p);
        ck_assert_rc(weft_green_spawn(&g[i], waitall_waiter, p, NULL), 0);
    }
    while (atomic_load(&waiters_in) < 4)
        weft_sleep_until(weft_deadline_in(MS(1)));
    weft_event_set(&go);
    for (int i = 0; i < 2; i++) {
        int r = -1;
        ck_assert_int_eq(tt_join(os[i]), 0);
        ck_assert_rc(weft_green_join(g[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 0);
    }
    ck_assert_int_eq(atomic_load(&done_count), 2);
    ck_assert_rc(weft_green_pool_destroy(p), 0);
}
END_TEST

/* ---- imap ------------------------------------------------------------- */

static _Atomic int started;

static int double_it(void *in, void **out)
{
    uintptr_t v = (uintptr_t)in;
    uint32_t s = (uint32_t)v * 2654435761u;
    atomic_fetch_add(&started, 1);
    enter();
    if (rnd(&s) % 2)
        weft_sleep_until(weft_deadline_in(rnd(&s) % 2000000));
    else
        weft_green_yield();
    leave();
    *out = (void *)(v * 2);
    return v == 13 ? -EIO : 0;
}

static void *inputs[200];

static void fill_inputs(void)
{
    for (uintptr_t i = 0; i < 200; i++)
        inputs[i] = (void *)i;
}

START_TEST(imap_keeps_input_order)
{
    weft_green_pool *p;
    weft_green_imap *it;
    void *out;
    int trc, rc;
    size_t i = 0;
    fill_inputs();
    ck_assert_rc(weft_runtime_start(2), 0);
    ck_assert_rc(weft_green_pool_create(&p, 5), 0);
    ck_assert_rc(weft_green_imap_start(&it, p, double_it, inputs, 200), 0);
    while ((rc = weft_green_imap_next(it, &out, &trc, weft_deadline_in(MS(10000)))) == 0) {
        ck_assert_int_eq((uintptr_t)out, i * 2);
        ck_assert_int_eq(trc, i == 13 ? -EIO : 0); /* reported when reached */
        i++;
    }
    ck_assert_rc(rc, -EPIPE);
    ck_assert_int_eq(i, 200);
    ck_assert_rc(weft_green_imap_next(it, &out, &trc, WEFT_NOW), -EPIPE);
    ck_assert_rc(weft_green_imap_end(it), 0);
    ck_assert_int_le(atomic_load(&max_in_flight), 5);
    ck_assert_rc(weft_green_pool_waitall(p, weft_deadline_in(MS(5000))), 0);
    ck_assert_int_eq(weft_green_pool_failures(p), 0); /* imap codes go to next */
    ck_assert_rc(weft_green_pool_destroy(p), 0);
}
END_TEST

/* Memory bounded by the size: without consumption, at most size start. */
START_TEST(imap_starts_at_most_size_ahead)
{
    weft_green_pool *p;
    weft_green_imap *it;
    void *out;
    fill_inputs();
    ck_assert_rc(weft_green_pool_create(&p, 4), 0);
    ck_assert_rc(weft_green_imap_start(&it, p, double_it, inputs, 200), 0);
    ck_assert_rc(weft_green_imap_next(it, &out, NULL, WEFT_FOREVER), 0);
    ck_assert_rc(weft_green_pool_waitall(p, weft_deadline_in(MS(5000))), 0);
    ck_assert_int_eq(atomic_load(&started), 4);
    ck_assert_rc(weft_green_imap_next(it, &out, NULL, WEFT_FOREVER), 0);
    ck_assert_int_eq((uintptr_t)out, 2);
    ck_assert_rc(weft_green_pool_waitall(p, weft_deadline_in(MS(5000))), 0);
    ck_assert_int_eq(atomic_load(&started), 5);
    ck_assert_rc(weft_green_pool_destroy(p), -EBUSY); /* iterator alive */
    ck_assert_rc(weft_green_imap_end(it), 0);
    ck_assert_rc(weft_green_pool_destroy(p), 0);
}
END_TEST

static weft_event gate = WEFT_EVENT_INIT;  /* inputs 0..2 wait on it */
static weft_event gate2 = WEFT_EVENT_INIT; /* the others on this one */

static int gated(void *in, void **out)
{
    int rc = weft_event_wait((uintptr_t)in < 3 ? &gate : &gate2, WEFT_FOREVER);
    *out = in;
    return rc;
}

/* A timed-out next consumes nothing; end with tasks in flight never
 * blocks, and they finish on their own. */
START_TEST(imap_timeout_then_end_in_flight)
{
    weft_green_pool *p;
    weft_green_imap *it;
    void *out = NULL;
    int trc = -1;
    fill_inputs();
    ck_assert_rc(weft_green_pool_create(&p, 3), 0);
    ck_assert_rc(weft_green_imap_start(&it, p, gated, inputs, 10), 0);
    ck_assert_rc(weft_green_imap_next(it, &out, &trc, WEFT_NOW), -ETIMEDOUT);
    int64_t t0 = weft_now();
    ck_assert_rc(weft_green_imap_next(it, &out, &trc, weft_deadline_in(MS(40))), -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(40), MS(2000));
    ck_assert_int_eq(weft_green_pool_running(p), 3);
    weft_event_set(&gate);
    ck_assert_rc(weft_green_imap_next(it, &out, &trc, WEFT_FOREVER), 0);
    ck_assert_int_eq((uintptr_t)out, 0);
    ck_assert_int_eq(trc, 0);
    ck_assert_rc(weft_green_imap_next(it, &out, &trc, WEFT_FOREVER), 0);
    ck_assert_int_eq((uintptr_t)out, 1);
    ck_assert_rc(weft_green_imap_end(it), 0); /* tasks 3.. wait on gate2 */
    weft_event_set(&gate2);
    ck_assert_rc(weft_green_pool_waitall(p, weft_deadline_in(MS(5000))), 0);
    ck_assert_rc(weft_green_pool_destroy(p), 0);
}
END_TEST

START_TEST(imap_one_call_form)
{
    weft_green_pool *p;
    void *outs[50];
    int rcs[50];
    fill_inputs();
    ck_assert_rc(weft_green_pool_create(&p, 6), 0);
    ck_assert_rc(weft_green_pool_imap(p, double_it, inputs, 50, outs, rcs,
                                      weft_deadline_in(MS(10000))), -EIO);
    for (int i = 0; i < 50; i++) {
        ck_assert_int_eq((uintptr_t)outs[i], (uintptr_t)i * 2);
        ck_assert_int_eq(rcs[i], i == 13 ? -EIO : 0);
    }
    ck_assert_rc(weft_green_pool_imap(p, double_it, inputs, 13, outs, NULL,
                                      WEFT_FOREVER), 0);
    ck_assert_rc(weft_green_pool_imap(p, double_it, NULL, 0, NULL, NULL,
                                      WEFT_NOW), 0);
    /* Interrupted: the call's code for every input not handed back. */
    ck_assert_rc(weft_green_pool_imap(p, gated, inputs, 20, outs, rcs,
                                      weft_deadline_in(MS(30))), -ETIMEDOUT);
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(rcs[i], -ETIMEDOUT);
    weft_event_set(&gate);
    weft_event_set(&gate2);
    ck_assert_rc(weft_green_pool_waitall(p, weft_deadline_in(MS(5000))), 0);
    ck_assert_rc(weft_green_pool_destroy(p), 0);
}
END_TEST

/* A task runs imap over its own full pool: every spawn runs inline. */
static int member_imap(void *p)
{
    void *outs[20];
    int rc = weft_green_pool_imap(p, double_it, inputs, 20, outs, NULL,
                                  WEFT_FOREVER);
    if (rc != -EIO)
        return 1;
    for (uintptr_t i = 0; i < 20; i++)
        if ((uintptr_t)outs[i] != i * 2)
            return 2;
    return 0;
}

START_TEST(member_imap_on_own_full_pool)
{
    weft_green_pool *p;
    fill_inputs();
    ck_assert_rc(weft_green_pool_create(&p, 1), 0);
    ck_assert_rc(weft_green_pool_spawn(p, member_imap, p, WEFT_FOREVER), 0);
    ck_assert_rc(weft_green_pool_waitall(p, weft_deadline_in(MS(10000))), 0);
    ck_assert_int_eq(weft_green_pool_failures(p), 0);
    ck_assert_int_eq(atomic_load(&started), 20);
    ck_assert_rc(weft_green_pool_destroy(p), 0);
}
END_TEST

/* A green thread consuming an imap, an OS thread spawning meanwhile. */
static int green_consumer(void *p)
{
    void *outs[100];
    int rcs[100];
    if (weft_green_pool_imap(p, double_it, inputs, 100, outs, rcs,
                             WEFT_FOREVER) != -EIO)
        return 1;
    for (uintptr_t i = 0; i < 100; i++)
        if ((uintptr_t)outs[i] != i * 2)
            return 2;
    return 0;
}

START_TEST(green_imap_with_os_spawner)
{
    weft_green_pool *p;
    weft_green *g;
    int r = -1;
    fill_inputs();
    ck_assert_rc(weft_runtime_start(2), 0);
    ck_assert_rc(weft_green_pool_create(&p, 3), 0);
    ck_assert_rc(weft_green_spawn(&g, green_consumer, p, NULL), 0);
    ck_assert_int_eq(spawn_many(p), 0);
    ck_assert_rc(weft_green_join(g, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 0);
    ck_assert_rc(weft_green_pool_waitall(p, weft_deadline_in(MS(10000))), 0);
    ck_assert_int_le(atomic_load(&max_in_flight), 3);
    ck_assert_int_eq(atomic_load(&done_count), 400);
    ck_assert_rc(weft_green_pool_destroy(p), 0);
}
END_TEST

static Suite *green_pool_suite(void)
{
    Suite *s = suite_create("green_pool");
    TCase *c = tcase_create("core");
    tcase_set_timeout(c, 30);
    tcase_add_test(c, bad_arguments);
    tcase_add_test(c, concurrency_never_exceeds_size);
    tcase_add_test(c, spawn_parks_while_full);
    tcase_add_test(c, parked_spawners_are_served_fifo);
    tcase_add_test(c, cancelled_spawner_gets_ecanceled);
    tcase_add_test(c, resize_shrink_and_grow);
    tcase_add_test(c, member_spawn_into_full_pool_runs_inline);
    tcase_add_test(c, failures_are_counted);
    tcase_add_test(c, waitall_from_os_and_green_threads);
    tcase_add_test(c, imap_keeps_input_order);
    tcase_add_test(c, imap_starts_at_most_size_ahead);
    tcase_add_test(c, imap_timeout_then_end_in_flight);
    tcase_add_test(c, imap_one_call_form);
    tcase_add_test(c, member_imap_on_own_full_pool);
    tcase_add_test(c, green_imap_with_os_spawner);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(green_pool_suite)
