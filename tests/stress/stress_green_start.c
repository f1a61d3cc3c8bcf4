/* stress_green_start.c - starts on the hot stack under load
 * (src/green/green.c, "Starting"): four
 * workers, green spawners and an OS-thread spawner at once, children of
 * two stack sizes that fill a buffer on their stack with a pattern of
 * their own, then yield and park (on a semaphore other children post) a
 * few times, letting thieves move them between workers, and check the
 * pattern at the end: two live green threads on one stack (a hot stack
 * handed out twice, a stack reaped while still run on) would overwrite
 * each other's pattern or crash.  Detached and joined children mixed;
 * counts are exact; sizes scale with WEFT_TEST_SCALE.  And the live
 * count's per-worker credit (sched.c): shutdown still waits for every
 * detached green thread, and returns. */
#include "support.h"

#include <stdatomic.h>
#include <string.h>

#include "green/green.h"

static _Atomic long ran, bad_pattern;
static weft_sem tokens;

static int child(void *p)
{
    long id = (long)(intptr_t)p;
    char buf[256];
    char c = (char)('A' + id % 50);

    memset(buf, c, sizeof buf);
    for (int k = 0; k < 3; k++) {
        if ((id + k) % 3 == 0) {
            (void)weft_green_yield();
        } else {
            /* Park now and then: post first, so a token is always there
             * for someone and the waits end. */
            weft_sem_release(&tokens, 1);
            if (weft_sem_acquire(&tokens, WEFT_FOREVER) != 0)
                return -1;
        }
    }
    for (size_t i = 0; i < sizeof buf; i++)
        if (buf[i] != c) {
            atomic_fetch_add(&bad_pattern, 1);
            break;
        }
    atomic_fetch_add(&ran, 1);
    return (int)(id & 0xff);
}

/* Spawn n children in bursts, join the joinable ones. */
static int spawner(void *p)
{
    long n = (long)(intptr_t)p;
    weft_green *v[32];
    long ids[32];
    int r, bad = 0;

    for (long i = 0; i < n; i += 32) {
        int k = 0;
        for (; k < 32 && i + k < n; k++) {
            weft_green_opts o = {.stack_size = (k & 3) == 1 ? 32 * 1024 : 0};
            bool detach = (k % 7) == 0;
            ids[k] = i + k;
            if (weft_green_spawn(detach ? NULL : &v[k], child,
                                 (void *)(intptr_t)(i + k), &o) != 0)
                return -1;
            if (detach)
                v[k] = NULL;
        }
        for (int j = 0; j < k; j++)
            if (v[j] != NULL &&
                (weft_green_join(v[j], &r, WEFT_FOREVER) != 0 ||
                 r != (int)(ids[j] & 0xff)))
                bad++;
    }
    return bad;
}

static int os_spawner(void *p)
{
    return spawner(p);
}

START_TEST(hot_stacks_under_load)
{
    long n = 20000 * test_scale();
    enum { SPAWNERS = 6 };
    weft_green *s[SPAWNERS];
    int r;

    atomic_store(&ran, 0);
    atomic_store(&bad_pattern, 0);
    weft_sem_init(&tokens, 0);
    ck_assert_rc(weft_runtime_start(4), 0);
    for (int i = 0; i < SPAWNERS; i++)
        ck_assert_rc(weft_green_spawn(&s[i], spawner, (void *)(intptr_t)n,
                                      NULL), 0);
    tt *t = tt_start(os_spawner, (void *)(intptr_t)n);
    for (int i = 0; i < SPAWNERS; i++) {
        ck_assert_rc(weft_green_join(s[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 0);
    }
    ck_assert_int_eq(tt_join(t), 0);
    /* Detached children may still be running: shutdown waits for them. */
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(20000))), 0);
    ck_assert_int_eq(atomic_load(&ran), (SPAWNERS + 1) * n);
    ck_assert_int_eq(atomic_load(&bad_pattern), 0);
}
END_TEST

/* ---- the live count's per-worker credit -------------------------------- */

/* sched.c, "live green threads": spawns and reaps on a worker move its
 * credit, not the shared count, and a worker returns its credit when it
 * runs out of work.  Shutdown must still wait for every green thread
 * (a count that reached zero early would let it return while detached
 * children run: the count below would be short) and must not wait
 * forever for credit never returned (its deadline would pass).  Detached
 * trees spawned from an OS thread and from green threads, children
 * stolen across three workers, so spawns and reaps land on different
 * workers; many restarts. */
static _Atomic long leaves;

static int leaf(void *p)
{
    if ((intptr_t)p & 1)
        (void)weft_green_yield();
    atomic_fetch_add(&leaves, 1);
    return 0;
}

static int branch(void *p)
{
    long k = (long)(intptr_t)p;

    for (long i = 0; i < k; i++)
        if (weft_green_spawn(NULL, leaf, (void *)(intptr_t)i, NULL) != 0)
            return -1;
    atomic_fetch_add(&leaves, 1);
    return 0;
}

START_TEST(shutdown_waits_for_every_detached_thread)
{
    long rounds = 30 * test_scale();
    enum { BRANCHES = 40, K = 50 };

    for (long r = 0; r < rounds; r++) {
        atomic_store(&leaves, 0);
        ck_assert_rc(weft_runtime_start(3), 0);
        for (int i = 0; i < BRANCHES; i++)
            ck_assert_rc(weft_green_spawn(NULL, branch,
                                          (void *)(intptr_t)(K + (i & 3)),
                                          NULL), 0);
        ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(20000))), 0);
        /* Every branch and every leaf ran before shutdown returned. */
        ck_assert_int_eq(atomic_load(&leaves),
                         BRANCHES + BRANCHES / 4 * (4 * K + 0 + 1 + 2 + 3));
    }
}
END_TEST

static Suite *green_start_stress_suite(void)
{
    Suite *s = suite_create("green_start_stress");
    TCase *c = tcase_create("core");
    tcase_set_timeout(c, 60);
    tcase_add_test(c, hot_stacks_under_load);
    tcase_add_test(c, shutdown_waits_for_every_detached_thread);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(green_start_stress_suite)
