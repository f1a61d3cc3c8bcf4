/* test_green_start.c - a green thread's start (src/green/green.c,
 * "Starting"): the spawn reserves a
 * stack and the first run swaps it for the worker's hot stack, so every
 * live green thread must still run on a stack of its own, of the size it
 * asked for, counted by the pool from the spawn on; threads started and
 * ended back to back (each reap leaving the hot stack to the next start)
 * are all joined, detached and reaped. */
#include "support.h"

#include <stdatomic.h>
#include <string.h>

#include "green/green.h"

/* ---- live green threads run on stacks of their own ------------------- */

#define LIVE 64

struct live {
    weft_event go;
    char *at[LIVE];               /* a local's address, by index */
    weft_green *g[LIVE];
    _Atomic int arrived;
};

struct live_arg {
    struct live *l;
    int i;
};

static struct live_arg largs[LIVE];

static int nop(void *p)
{
    return (int)(intptr_t)p;
}

/* Fill a buffer on the stack with a pattern of its own, park, check it. */
static int live_fn(void *p)
{
    struct live_arg *a = p;
    weft_green *g = weft_green_current();
    char buf[512];

    memset(buf, 'a' + a->i % 26, sizeof buf);
    a->l->at[a->i] = buf;
    if (buf < (char *)g->stack.lo ||
        buf >= (char *)g->stack.lo + g->stack.size)
        return -1;
    atomic_fetch_add(&a->l->arrived, 1);
    if (weft_event_wait(&a->l->go, WEFT_FOREVER) != 0)
        return -2;
    for (size_t k = 0; k < sizeof buf; k++)
        if (buf[k] != 'a' + a->i % 26)
            return -3; /* another thread ran on this stack */
    return a->i;
}

/* On one worker: live threads spawned between short ones (which rotate
 * the hot stack through starts and reaps) each keep their own stack. */
static int live_driver(void *p)
{
    struct live *l = p;
    int r;

    for (int i = 0; i < LIVE; i++) {
        weft_green *s;
        largs[i].l = l;
        largs[i].i = i;
        if (weft_green_spawn(&l->g[i], live_fn, &largs[i], NULL) != 0)
            return 1;
        if (weft_green_spawn(&s, nop, (void *)(intptr_t)i, NULL) != 0)
            return 2;
        if (weft_green_join(s, &r, WEFT_FOREVER) != 0 || r != i)
            return 3;
    }
    while (atomic_load(&l->arrived) < LIVE)
        weft_green_yield();
    for (int i = 0; i < LIVE; i++)
        for (int j = 0; j < i; j++)
            if (l->g[i]->stack.lo == l->g[j]->stack.lo)
                return 4;
    weft_event_set(&l->go);
    for (int i = 0; i < LIVE; i++)
        if (weft_green_join(l->g[i], &r, WEFT_FOREVER) != 0 || r != i)
            return 5;
    return 0;
}

START_TEST(live_threads_keep_their_own_stacks)
{
    static struct live l;
    weft_green *d;
    int r;

    weft_event_init(&l.go);
    ck_assert_rc(weft_runtime_start(1), 0);
    ck_assert_rc(weft_green_spawn(&d, live_driver, &l, NULL), 0);
    ck_assert_rc(weft_green_join(d, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 0);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

/* ---- a stack of another size is not swapped ------------------------- */

/* Touch most of a 256 KiB stack: on a 64 KiB one this hits the guard. */
static int deep(void *p)
{
    weft_green *g = weft_green_current();
    volatile char big[200 * 1024];
    (void)p;
    big[0] = 1;
    big[sizeof big - 1] = 2;
    if (g->stack.size != 256 * 1024)
        return -1;
    return big[0] + big[sizeof big - 1];
}

static int sizes_driver(void *p)
{
    weft_green_opts big = {.stack_size = 256 * 1024};
    int r;
    (void)p;

    for (int i = 0; i < 200; i++) {
        weft_green *a, *b;
        /* The default-sized one leaves a 64 KiB hot stack behind. */
        if (weft_green_spawn(&a, nop, (void *)(intptr_t)7, NULL) != 0 ||
            weft_green_spawn(&b, deep, NULL, &big) != 0)
            return 1;
        if (weft_green_join(a, &r, WEFT_FOREVER) != 0 || r != 7)
            return 2;
        if (weft_green_join(b, &r, WEFT_FOREVER) != 0 || r != 3)
            return 3;
    }
    return 0;
}

START_TEST(a_stack_of_another_size_runs_as_reserved)
{
    weft_green *d;
    int r;

    ck_assert_rc(weft_runtime_start(1), 0);
    ck_assert_rc(weft_green_spawn(&d, sizes_driver, NULL, NULL), 0);
    ck_assert_rc(weft_green_join(d, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 0);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

/* ---- the spawn reserves its stack ---------------------------------- */

#define RESERVE 500

static weft_green *rh[RESERVE];

static int reserve_driver(void *p)
{
    weft__stack_stats st;
    (void)p;

    /* One worker, no yield: none of these has run yet. */
    for (int i = 0; i < RESERVE; i++)
        if (weft_green_spawn(&rh[i], nop, (void *)(intptr_t)i, NULL) != 0)
            return 1;
    weft__stack_get_stats(&st);
    if (st.in_use < RESERVE + 1) /* theirs and this driver's */
        return 2;
    for (int i = 0; i < RESERVE; i++) {
        int r;
        if (weft_green_join(rh[i], &r, WEFT_FOREVER) != 0 || r != i)
            return 3;
    }
    return 0;
}

START_TEST(spawn_reserves_a_stack_before_the_first_run)
{
    weft_green *d;
    int r;

    ck_assert_rc(weft_runtime_start(1), 0);
    ck_assert_rc(weft_green_spawn(&d, reserve_driver, NULL, NULL), 0);
    ck_assert_rc(weft_green_join(d, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 0);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

/* ---- back-to-back starts and exits: joins, detach and shutdown -------- */

static int exits_driver(void *p)
{
    long n = (long)(intptr_t)p;
    int r;

    for (long i = 0; i < n; i++) {
        weft_green *a, *b, *c;
        /* Queued together: each starts on the stack the last one left. */
        if (weft_green_spawn(&a, nop, (void *)(intptr_t)1, NULL) != 0 ||
            weft_green_spawn(&b, nop, (void *)(intptr_t)2, NULL) != 0 ||
            weft_green_spawn(NULL, nop, NULL, NULL) != 0 ||
            weft_green_spawn(&c, nop, (void *)(intptr_t)3, NULL) != 0)
            return 1;
        if (weft_green_join(c, &r, WEFT_FOREVER) != 0 || r != 3)
            return 2;
        if (weft_green_detach(b) != 0)
            return 3;
        if (weft_green_join(a, &r, WEFT_FOREVER) != 0 || r != 1)
            return 4;
    }
    return 0;
}

START_TEST(back_to_back_exits_are_reaped)
{
    weft_green *d;
    int r;

    ck_assert_rc(weft_runtime_start(1), 0);
    ck_assert_rc(weft_green_spawn(&d, exits_driver, (void *)(intptr_t)2000,
                                  NULL), 0);
    ck_assert_rc(weft_green_join(d, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 0);
    /* Every thread reaped: shutdown waits for none. */
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

static Suite *green_start_suite(void)
{
    Suite *s = suite_create("green_start");
    TCase *c = tcase_create("core");
    tcase_set_timeout(c, 30);
    tcase_add_test(c, live_threads_keep_their_own_stacks);
    tcase_add_test(c, a_stack_of_another_size_runs_as_reserved);
    tcase_add_test(c, spawn_reserves_a_stack_before_the_first_run);
    tcase_add_test(c, back_to_back_exits_are_reaped);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(green_start_suite)
