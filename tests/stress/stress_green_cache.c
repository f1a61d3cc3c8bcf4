/* stress_green_cache.c - the per-worker caches of green structs and stacks
 * under load: spawners on several workers whose children exit on other
 * workers (structs and stacks flow from cache to cache through the global
 * pools), detached and joined children mixed, stacks of two sizes, while an
 * OS thread walks the green threads the way the debug dump does (the walk
 * and the cache meet as a Dekker pair: a struct the walk sees alive keeps
 * its name until the walk ends); and repeated runtime restarts with full
 * caches.  Counts are exact; sizes scale with WEFT_TEST_SCALE. */
#include "support.h"

#include <stdatomic.h>
#include <string.h>

#include "green/green.h"

static _Atomic long ran;
static _Atomic int walking_done;

static int child(void *p)
{
    (void)p;
    atomic_fetch_add(&ran, 1);
    return 3;
}

static int grandparent(void *p)
{
    long n = (long)(intptr_t)p;
    weft_green *v[48];
    int r, bad = 0;

    for (long i = 0; i < n; i += 48) {
        int k = 0;
        for (; k < 48 && i + k < n; k++) {
            weft_green_opts o = {.stack_size = (k & 3) == 0 ? 32 * 1024 : 0};
            bool detach = (k % 5) == 0;
            if (weft_green_spawn(detach ? NULL : &v[k], child, NULL, &o) != 0)
                return -1;
            if (detach)
                v[k] = NULL;
            if ((k & 7) == 0)
                (void)weft_green_yield(); /* let a thief take some */
        }
        for (int j = 0; j < k; j++)
            if (v[j] != NULL &&
                (weft_green_join(v[j], &r, WEFT_FOREVER) != 0 || r != 3))
                bad++;
    }
    return bad;
}

/* Like the debug dump: every green thread alive, its name read in full. */
static void visit(weft_green *g, void *arg)
{
    size_t *sum = arg;
    *sum += strlen(g->name ? g->name : "") + (size_t)(g->id & 1);
}

static int walker(void *p)
{
    size_t sum = 0;
    long walks = 0;
    (void)p;
    while (!atomic_load(&walking_done)) {
        weft__green_walk(visit, &sum);
        walks++;
    }
    return sum > 0 || walks >= 0 ? 0 : 1;
}

START_TEST(spawn_exit_across_workers_with_walker)
{
    long per = 20000 * test_scale();
    weft_green *g[6];
    int r;
    tt *w;

    atomic_store(&ran, 0);
    ck_assert_rc(weft_runtime_start(3), 0);
    w = tt_start(walker, NULL);
    for (int i = 0; i < 6; i++)
        ck_assert_rc(weft_green_spawn(&g[i], grandparent,
                                      (void *)(intptr_t)per, NULL), 0);
    for (int i = 0; i < 6; i++) {
        ck_assert_rc(weft_green_join(g[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 0);
    }
    /* Detached children may still be running: shutdown waits for them. */
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(20000))), 0);
    atomic_store(&walking_done, 1);
    ck_assert_int_eq(tt_join(w), 0);
    ck_assert_int_eq(atomic_load(&ran), 6 * per);
    weft__stack_stats st;
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.in_use, 0);
}
END_TEST

START_TEST(restarts_with_full_caches)
{
    long rounds = 20 * test_scale();
    weft_green *g[4];
    int r;

    atomic_store(&ran, 0);
    for (long k = 0; k < rounds; k++) {
        ck_assert_rc(weft_runtime_start(2), 0);
        for (int i = 0; i < 4; i++)
            ck_assert_rc(weft_green_spawn(&g[i], grandparent,
                                          (void *)(intptr_t)500, NULL), 0);
        for (int i = 0; i < 4; i++) {
            ck_assert_rc(weft_green_join(g[i], &r, WEFT_FOREVER), 0);
            ck_assert_int_eq(r, 0);
        }
        ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(20000))), 0);
    }
    ck_assert_int_eq(atomic_load(&ran), rounds * 4 * 500);
    weft__stack_stats st;
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.in_use, 0);
}
END_TEST

static Suite *green_cache_stress_suite(void)
{
    Suite *s = suite_create("green_cache_stress");
    TCase *c = tcase_create("core");
    tcase_set_timeout(c, 60);
    tcase_add_test(c, spawn_exit_across_workers_with_walker);
    tcase_add_test(c, restarts_with_full_caches);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(green_cache_stress_suite)
