/* test_green.c - green threads: spawn/join/detach, yield order on one
 * worker, sleep, cancellation of parked and running green threads, names,
 * ids, current, many green threads with exact counts, stealing between
 * workers, a blocked green thread not blocking its worker, local keys, and
 * the runtime's start/shutdown errors.  Each Check test runs in its own
 * process, so each starts its own runtime. */
#include "support.h"

#include <stdatomic.h>
#include <string.h>

#include "green/green.h"

static int ret_arg(void *p)
{
    return (int)(intptr_t)p;
}

START_TEST(spawn_join_returns_result)
{
    weft_green *g;
    int r = 0;
    ck_assert_rc(weft_green_spawn(&g, ret_arg, (void *)(intptr_t)42, NULL), 0);
    ck_assert_rc(weft_green_join(g, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 42);
    ck_assert_int_ge(weft_runtime_workers(), 1);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(5000))), 0);
    ck_assert_int_eq(weft_runtime_workers(), 0);
}
END_TEST

START_TEST(bad_arguments)
{
    weft_green *g;
    weft_green_opts o = {NULL, (size_t)2 << 30};
    ck_assert_rc(weft_green_spawn(&g, NULL, NULL, NULL), -EINVAL);
    ck_assert_rc(weft_green_spawn(&g, ret_arg, NULL, &o), -EINVAL);
    ck_assert_rc(weft_green_join(NULL, NULL, WEFT_NOW), -EINVAL);
    ck_assert_rc(weft_green_detach(NULL), -EINVAL);
    ck_assert_rc(weft_green_cancel(NULL), -EINVAL);
    ck_assert_rc(weft_green_yield(), -EPERM); /* OS thread */
    ck_assert_ptr_null(weft_green_current());
    ck_assert_ptr_null(weft_green_name(NULL));
    ck_assert_int_eq(weft_green_id(NULL), 0);
    ck_assert_rc(weft_runtime_start(-1), -EINVAL);
    ck_assert_rc(weft_runtime_shutdown(WEFT_NOW), -ESRCH);
}
END_TEST

static int wait_event(void *p)
{
    return weft_event_wait(p, WEFT_FOREVER);
}

START_TEST(join_times_out_then_joins)
{
    weft_event e = WEFT_EVENT_INIT;
    weft_green *g;
    int r = -1;
    ck_assert_rc(weft_green_spawn(&g, wait_event, &e, NULL), 0);
    int64_t t0 = weft_now();
    ck_assert_rc(weft_green_join(g, &r, weft_deadline_in(MS(50))), -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(50), MS(2000));
    ck_assert_rc(weft_green_join(g, &r, WEFT_NOW), -ETIMEDOUT);
    weft_event_set(&e);
    ck_assert_rc(weft_green_join(g, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 0);
}
END_TEST

static int join_other(void *p)
{
    int r = -1;
    int rc = weft_green_join(p, &r, WEFT_FOREVER);
    return rc != 0 ? rc : r;
}

START_TEST(join_from_green_thread)
{
    weft_green *a, *b;
    int r = 0;
    ck_assert_rc(weft_green_spawn(&a, ret_arg, (void *)7, NULL), 0);
    ck_assert_rc(weft_green_spawn(&b, join_other, a, NULL), 0);
    ck_assert_rc(weft_green_join(b, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 7);
}
END_TEST

static int self_join(void *p)
{
    (void)p;
    return weft_green_join(weft_green_current(), NULL, WEFT_FOREVER);
}

START_TEST(self_join_is_edeadlk)
{
    weft_green *g;
    int r = 0;
    ck_assert_rc(weft_green_spawn(&g, self_join, NULL, NULL), 0);
    ck_assert_rc(weft_green_join(g, &r, WEFT_FOREVER), 0);
    ck_assert_rc(r, -EDEADLK);
}
END_TEST

static int set_event(void *p)
{
    weft_event_set(p);
    return 0;
}

START_TEST(detach_runs_to_end)
{
    weft_event e = WEFT_EVENT_INIT;
    weft_green *g;
    ck_assert_rc(weft_green_spawn(&g, set_event, &e, NULL), 0);
    ck_assert_rc(weft_green_detach(g), 0);
    ck_assert_rc(weft_event_wait(&e, weft_deadline_in(MS(5000))), 0);
    /* spawn with out == NULL: detached from the start */
    weft_event_clear(&e);
    ck_assert_rc(weft_green_spawn(NULL, set_event, &e, NULL), 0);
    ck_assert_rc(weft_event_wait(&e, weft_deadline_in(MS(5000))), 0);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(5000))), 0);
}
END_TEST

/* ---- deterministic order on one worker -------------------------------- */

static char order[64];
static int norder;

static int yielder(void *p)
{
    char c = (char)(intptr_t)p;
    for (int i = 0; i < 3; i++) {
        order[norder++] = c; /* one worker: no race */
        ck_assert_rc(weft_green_yield(), 0);
    }
    return 0;
}

static int yield_root(void *p)
{
    weft_green *g[3];
    (void)p;
    for (int i = 0; i < 3; i++)
        ck_assert_rc(weft_green_spawn(&g[i], yielder, (void *)(intptr_t)('a' + i),
                                      NULL), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_rc(weft_green_join(g[i], NULL, WEFT_FOREVER), 0);
    return 0;
}

START_TEST(yield_interleaves_in_spawn_order)
{
    weft_green *g;
    ck_assert_rc(weft_runtime_start(1), 0);
    ck_assert_rc(weft_runtime_start(1), -EBUSY);
    ck_assert_rc(weft_green_spawn(&g, yield_root, NULL, NULL), 0);
    ck_assert_rc(weft_green_join(g, NULL, WEFT_FOREVER), 0);
    order[norder] = 0;
    ck_assert_str_eq(order, "abcabcabc");
}
END_TEST

/* ---- sleep ------------------------------------------------------------- */

static int sleeper(void *p)
{
    int64_t t0 = weft_now();
    int rc = (intptr_t)p ? weft_sleep_until(weft_deadline_in(MS(50)))
                         : weft_green_sleep_until(weft_deadline_in(MS(50)));
    if (rc != 0)
        return rc;
    return weft_now() - t0 >= MS(50) ? 0 : 1;
}

START_TEST(sleep_is_not_early)
{
    weft_green *g[2];
    int r;
    for (int i = 0; i < 2; i++)
        ck_assert_rc(weft_green_spawn(&g[i], sleeper, (void *)(intptr_t)i, NULL),
                     0);
    int64_t t0 = weft_now();
    for (int i = 0; i < 2; i++) {
        ck_assert_rc(weft_green_join(g[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 0);
    }
    ck_assert_elapsed(t0, MS(40), MS(2000));
}
END_TEST

/* ---- cancellation ------------------------------------------------------ */

struct cx {
    weft_lock l;
    weft_event e, started;
    weft_queue *q;
    int what;
};

static int cancel_victim(void *p)
{
    struct cx *c = p;
    intptr_t item;
    weft_event_set(&c->started);
    switch (c->what) {
    case 0:
        return weft_lock_acquire(&c->l, WEFT_FOREVER);
    case 1:
        return weft_queue_get(c->q, (void **)&item, WEFT_FOREVER);
    default:
        return weft_event_wait(&c->e, WEFT_FOREVER);
    }
}

START_TEST(cancel_parked_wait_returns_ecanceled)
{
    for (int what = 0; what < 3; what++) {
        struct cx c = {.l = WEFT_LOCK_INIT, .e = WEFT_EVENT_INIT,
                       .started = WEFT_EVENT_INIT, .what = what};
        weft_green *g;
        int r = 0;
        ck_assert_rc(weft_queue_create(&c.q, WEFT_QUEUE_FIFO, 0), 0);
        ck_assert_rc(weft_lock_acquire(&c.l, WEFT_FOREVER), 0);
        ck_assert_rc(weft_green_spawn(&g, cancel_victim, &c, NULL), 0);
        ck_assert_rc(weft_event_wait(&c.started, WEFT_FOREVER), 0);
        ck_assert_rc(weft_green_cancel(g), 0);
        ck_assert_rc(weft_green_join(g, &r, weft_deadline_in(MS(5000))), 0);
        ck_assert_rc(r, -ECANCELED);
        ck_assert_rc(weft_lock_release(&c.l), 0);
        ck_assert_rc(weft_queue_destroy(c.q, NULL), 0);
    }
}
END_TEST

static int cancel_self_then_wait(void *p)
{
    weft_event *e = p;
    ck_assert_rc(weft_green_cancel(weft_green_current()), 0);
    /* Not parked when cancelled: delivered at the next blocking point. */
    int rc = weft_event_wait(e, WEFT_FOREVER);
    if (rc != -ECANCELED)
        return 1;
    return weft_green_sleep_until(weft_deadline_in(MS(1000)));
}

START_TEST(cancel_is_delivered_at_next_blocking_call)
{
    weft_event e = WEFT_EVENT_INIT;
    weft_green *g;
    int r = 0;
    ck_assert_rc(weft_green_spawn(&g, cancel_self_then_wait, &e, NULL), 0);
    int64_t t0 = weft_now();
    ck_assert_rc(weft_green_join(g, &r, WEFT_FOREVER), 0);
    ck_assert_rc(r, -ECANCELED);
    ck_assert_elapsed(t0, 0, MS(900));
}
END_TEST

/* ---- names, ids, current ----------------------------------------------- */

static int who(void *p)
{
    weft_green **out = p;
    *out = weft_green_current();
    if (strcmp(weft_green_name(NULL), "worker-bee") != 0)
        return 1;
    return weft_green_id(NULL) == weft_green_id(*out) ? 0 : 2;
}

START_TEST(names_ids_current)
{
    weft_green_opts o = {"worker-bee", 0};
    weft_green *g, *seen = NULL, *h;
    int r = -1;
    ck_assert_rc(weft_green_spawn(&g, who, &seen, &o), 0);
    ck_assert_str_eq(weft_green_name(g), "worker-bee");
    uint64_t id = weft_green_id(g);
    ck_assert_int_ne(id, 0);
    ck_assert_rc(weft_green_join(g, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 0);
    ck_assert_ptr_eq(seen, g);
    ck_assert_rc(weft_green_spawn(&h, ret_arg, NULL, NULL), 0);
    ck_assert_int_gt(weft_green_id(h), id);
    ck_assert(strncmp(weft_green_name(h), "Green-", 6) == 0);
    ck_assert_rc(weft_green_join(h, NULL, WEFT_FOREVER), 0);
}
END_TEST

/* ---- many green threads, exact counts ---------------------------------- */

struct many {
    weft_lock l;
    long count;
};

static int many_body(void *p)
{
    struct many *m = p;
    for (int i = 0; i < 3; i++) {
        if (weft_lock_acquire(&m->l, WEFT_FOREVER) != 0)
            return 1;
        m->count++;
        weft_green_yield();
        weft_lock_release(&m->l);
        weft_green_yield();
    }
    return 0;
}

START_TEST(many_green_threads_exact_counts)
{
    long n = 10000 * test_scale();
    struct many m = {.l = WEFT_LOCK_INIT};
    weft_green **g = calloc((size_t)n, sizeof *g);
    int r;
    ck_assert_rc(weft_runtime_start(2), 0);
    /* In waves of 5,000 live at once: ThreadSanitizer counts every fiber
     * as a thread (weft__gctx_limit). */
    for (long w = 0; w < n; w += 5000) {
        long end = w + 5000 < n ? w + 5000 : n;
        for (long i = w; i < end; i++)
            ck_assert_rc(weft_green_spawn(&g[i], many_body, &m, NULL), 0);
        for (long i = w; i < end; i++) {
            ck_assert_rc(weft_green_join(g[i], &r, WEFT_FOREVER), 0);
            ck_assert_int_eq(r, 0);
        }
    }
    ck_assert_int_eq(m.count, 3 * n);
    free(g);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

/* ---- stealing ---------------------------------------------------------- */

static _Atomic int ran_on[2];
static int spawner_on = -1;

static int light_task(void *p)
{
    (void)p;
    int id = weft__green_worker_id();
    ck_assert(id == 0 || id == 1);
    atomic_fetch_add(&ran_on[id], 1);
    /* A task on the spawner's worker holds that worker (without yielding)
     * until a task has run on the other one, so the only way the rest can
     * run is by being stolen.  The deadline only bounds a failing test; on
     * a loaded machine the idle worker may take a while to get a CPU. */
    if (id == spawner_on) {
        int64_t end = weft_now() + 10 * WEFT_NSEC_PER_SEC;
        while (atomic_load(&ran_on[1 - id]) == 0 && weft_now() < end)
            ;
    }
    return 0;
}

static int spawner(void *p)
{
    weft_green **g = p;
    /* No park while spawning: the spawner stays on this worker. */
    spawner_on = weft__green_worker_id();
    for (int i = 0; i < 1000; i++)
        if (weft_green_spawn(&g[i], light_task, NULL, NULL) != 0)
            return 1;
    for (int i = 0; i < 1000; i++)
        if (weft_green_join(g[i], NULL, WEFT_FOREVER) != 0)
            return 2;
    return 0;
}

START_TEST(idle_worker_steals)
{
    static weft_green *kids[1000];
    weft_green *g;
    int r = -1;
    /* The spawner holds its worker on purpose: no spare worker may take
     * part (under a sanitizer the spawning outlasts a 10 ms slice). */
    ck_assert_rc(weft_runtime_set_switch_interval(3600 * WEFT_NSEC_PER_SEC),
                 0);
    ck_assert_rc(weft_runtime_start(2), 0);
    ck_assert_rc(weft_green_spawn(&g, spawner, kids, NULL), 0);
    ck_assert_rc(weft_green_join(g, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 0);
    ck_assert_int_eq(ran_on[0] + ran_on[1], 1000);
    ck_assert(spawner_on == 0 || spawner_on == 1);
    ck_assert_msg(ran_on[1 - spawner_on] > 0,
                  "spawned on %d; ran on 0: %d, on 1: %d", spawner_on,
                  ran_on[0], ran_on[1]);
}
END_TEST

/* ---- a parked green thread leaves its worker free ----------------------- */

START_TEST(blocked_green_does_not_block_worker)
{
    weft_event e = WEFT_EVENT_INIT;
    weft_green *a, *b;
    int r = -1;
    ck_assert_rc(weft_runtime_start(1), 0);
    ck_assert_rc(weft_green_spawn(&a, wait_event, &e, NULL), 0);
    ck_assert_rc(weft_green_spawn(&b, set_event, &e, NULL), 0);
    ck_assert_rc(weft_green_join(a, &r, weft_deadline_in(MS(5000))), 0);
    ck_assert_int_eq(r, 0);
    ck_assert_rc(weft_green_join(b, &r, weft_deadline_in(MS(5000))), 0);
}
END_TEST

/* ---- green-thread-local keys -------------------------------------------- */

static _Atomic int dtor_calls;
static void dtor(void *v)
{
    atomic_fetch_add(&dtor_calls, (int)(intptr_t)v);
}

static int use_key(void *p)
{
    weft_green_key *k = p;
    if (weft_green_key_get(*k) != NULL)
        return 1;
    ck_assert_rc(weft_green_key_set(*k, (void *)5), 0);
    weft_green_yield();
    return weft_green_key_get(*k) == (void *)5 ? 0 : 2;
}

START_TEST(local_keys_and_destructors)
{
    weft_green_key k;
    weft_green *g[4];
    int r;
    ck_assert_rc(weft_green_key_create(&k, dtor), 0);
    ck_assert_rc(weft_green_key_set(k, (void *)1), -EPERM);
    ck_assert_ptr_null(weft_green_key_get(k));
    for (int i = 0; i < 4; i++)
        ck_assert_rc(weft_green_spawn(&g[i], use_key, &k, NULL), 0);
    for (int i = 0; i < 4; i++) {
        ck_assert_rc(weft_green_join(g[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 0);
    }
    ck_assert_int_eq(dtor_calls, 20);
}
END_TEST

/* ---- shutdown ----------------------------------------------------------- */

static int shutdown_from_green(void *p)
{
    (void)p;
    return weft_runtime_shutdown(WEFT_NOW);
}

START_TEST(shutdown_waits_for_green_threads)
{
    weft_event e = WEFT_EVENT_INIT;
    weft_green *g;
    int r = 0;
    ck_assert_rc(weft_green_spawn(&g, shutdown_from_green, NULL, NULL), 0);
    ck_assert_rc(weft_green_join(g, &r, WEFT_FOREVER), 0);
    ck_assert_rc(r, -EDEADLK);
    ck_assert_rc(weft_green_spawn(NULL, wait_event, &e, NULL), 0);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(50))), -ETIMEDOUT);
    ck_assert_int_gt(weft_runtime_workers(), 0);
    weft_event_set(&e);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(5000))), 0);
    /* and start again */
    ck_assert_rc(weft_runtime_start(1), 0);
    ck_assert_rc(weft_green_spawn(&g, ret_arg, (void *)3, NULL), 0);
    ck_assert_rc(weft_green_join(g, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 3);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(5000))), 0);
}
END_TEST

static Suite *green_suite(void)
{
    Suite *s = suite_create("green");
    TCase *c = tcase_create("core");
    tcase_set_timeout(c, 30);
    tcase_add_test(c, spawn_join_returns_result);
    tcase_add_test(c, bad_arguments);
    tcase_add_test(c, join_times_out_then_joins);
    tcase_add_test(c, join_from_green_thread);
    tcase_add_test(c, self_join_is_edeadlk);
    tcase_add_test(c, detach_runs_to_end);
    tcase_add_test(c, yield_interleaves_in_spawn_order);
    tcase_add_test(c, sleep_is_not_early);
    tcase_add_test(c, cancel_parked_wait_returns_ecanceled);
    tcase_add_test(c, cancel_is_delivered_at_next_blocking_call);
    tcase_add_test(c, names_ids_current);
    tcase_add_test(c, many_green_threads_exact_counts);
    tcase_add_test(c, idle_worker_steals);
    tcase_add_test(c, blocked_green_does_not_block_worker);
    tcase_add_test(c, local_keys_and_destructors);
    tcase_add_test(c, shutdown_waits_for_green_threads);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(green_suite)
