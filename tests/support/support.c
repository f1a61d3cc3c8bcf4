/* support.c - see support.h. */
#include "support.h"

#include <pthread.h>
#include <stdio.h>

struct tt {
    pthread_t tid;
    int (*fn)(void *);
    void *arg;
    int rc;
};

static void *tt_main(void *p)
{
    tt *t = p;
    t->rc = t->fn(t->arg);
    return NULL;
}

tt *tt_start(int (*fn)(void *), void *arg)
{
    tt *t = calloc(1, sizeof *t);
    ck_assert_ptr_nonnull(t);
    t->fn = fn;
    t->arg = arg;
    ck_assert_int_eq(pthread_create(&t->tid, NULL, tt_main, t), 0);
    return t;
}

int tt_join(tt *t)
{
    ck_assert_int_eq(pthread_join(t->tid, NULL), 0);
    int rc = t->rc;
    free(t);
    return rc;
}

int tt_run_n(int n, int (*fn)(void *), void *args, size_t argsize)
{
    tt **ts = calloc((size_t)n, sizeof *ts);
    int bad = 0;
    ck_assert_ptr_nonnull(ts);
    for (int i = 0; i < n; i++)
        ts[i] = tt_start(fn, (char *)args + (size_t)i * argsize);
    for (int i = 0; i < n; i++)
        bad += tt_join(ts[i]) != 0;
    free(ts);
    return bad;
}

static long env_long(const char *name, long dflt)
{
    const char *s = getenv(name);
    long v = s ? strtol(s, NULL, 10) : 0;
    return v > 0 ? v : dflt;
}

long test_scale(void)
{
    return env_long("WEFT_TEST_SCALE", 1);
}

long test_slow(void)
{
    return env_long("WEFT_TEST_SLOW", 1);
}

int test_main(Suite *(*make_suite)(void))
{
    SRunner *sr = srunner_create(make_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

char *test_dump(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(weft_dump(f), 0);
    fclose(f);
    return buf;
}
