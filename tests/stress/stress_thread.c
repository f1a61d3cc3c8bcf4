/* stress_thread.c - many short threads started and joined concurrently by
 * four starters while another thread keeps enumerating: exact result sums,
 * exact live counts at the end, bounded counts meanwhile, no leaks (run
 * under AddressSanitizer). */
#include "support.h"

#include <stdatomic.h>

enum { STARTERS = 4, BATCH = 8 };

static _Atomic long total;
static _Atomic int stop;

static int short_fn(void *p)
{
    atomic_fetch_add(&total, (long)(intptr_t)p);
    return (int)(intptr_t)p;
}

static void quiet_hook(weft_thread *t, int rc)
{
    (void)t;
    (void)rc;
}

static int starter(void *p)
{
    long rounds = (long)(intptr_t)p;
    weft_thread *t[BATCH];
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < BATCH; i++)
            if (weft_thread_start(&t[i], short_fn, (void *)(intptr_t)(i + 1),
                                  NULL))
                return 1;
        for (int i = 0; i < BATCH; i++) {
            int res;
            if (weft_thread_join(t[i], &res, WEFT_FOREVER) || res != i + 1)
                return 2;
        }
    }
    return 0;
}

static int enumerator(void *p)
{
    weft_thread *list[64];
    long *max = p;
    while (!atomic_load(&stop)) {
        int n = weft_thread_enumerate(list, 64);
        /* main and this, plus at most the starters and BATCH each */
        if (n < 2 || n > 2 + STARTERS * (1 + BATCH))
            return 1;
        for (int i = 0; i < n && i < 64; i++) {
            if (weft_thread_name(list[i])[0] == '\0')
                return 2;
            weft_thread_release(list[i]);
        }
        if (n > *max)
            *max = n;
    }
    return 0;
}

START_TEST(start_join_while_enumerating)
{
    long rounds = 200 * test_scale();
    long max = 0;
    weft_thread *s[STARTERS], *e;
    (void)weft_thread_current();
    weft_thread_set_failure_hook(quiet_hook); /* results are non-zero */
    ck_assert_rc(weft_thread_start(&e, enumerator, &max, NULL), 0);
    for (int i = 0; i < STARTERS; i++)
        ck_assert_rc(weft_thread_start(&s[i], starter,
                                       (void *)(intptr_t)rounds, NULL), 0);
    for (int i = 0; i < STARTERS; i++) {
        int r = -1;
        ck_assert_rc(weft_thread_join(s[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 0);
    }
    atomic_store(&stop, 1);
    int r = -1;
    ck_assert_rc(weft_thread_join(e, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 0);
    ck_assert_int_eq(atomic_load(&total),
                     STARTERS * rounds * (BATCH * (BATCH + 1) / 2));
    ck_assert_int_eq(weft_thread_active_count(), 1);
}
END_TEST

static int detached_fn(void *p)
{
    atomic_fetch_add((_Atomic long *)p, 1);
    return 0;
}

static int detacher(void *p)
{
    long rounds = 100 * test_scale();
    for (long r = 0; r < rounds * BATCH; r++) {
        weft_thread *t;
        if (weft_thread_start(&t, detached_fn, p, NULL) ||
            weft_thread_detach(t))
            return 1;
    }
    return 0;
}

START_TEST(detached_threads_all_finish)
{
    static _Atomic long done;
    weft_thread *s[STARTERS];
    for (int i = 0; i < STARTERS; i++)
        ck_assert_rc(weft_thread_start(&s[i], detacher, (void *)&done, NULL),
                     0);
    for (int i = 0; i < STARTERS; i++)
        ck_assert_rc(weft_thread_join(s[i], NULL, WEFT_FOREVER), 0);
    /* Detached threads are non-daemon: join_all waits for them all. */
    ck_assert_rc(weft_thread_join_all(weft_deadline_in(MS(20000))), 0);
    ck_assert_int_eq(atomic_load(&done), STARTERS * 100 * test_scale() * BATCH);
    ck_assert_int_eq(weft_thread_active_count(), 1);
}
END_TEST

static Suite *thread_stress_suite(void)
{
    Suite *s = suite_create("thread-stress");
    TCase *c = tcase_create("thread-stress");
    tcase_set_timeout(c, 60);
    tcase_add_test(c, start_join_while_enumerating);
    tcase_add_test(c, detached_threads_all_finish);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(thread_stress_suite)
