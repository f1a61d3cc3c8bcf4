/* test_tls.c - weft_tls_key: per-thread values, destructors at weft and
 * foreign thread exit, deletion and slot reuse, exhaustion. */
#include "support.h"

#include <stdatomic.h>

static _Atomic int dtor_calls;
static _Atomic(void *) dtor_last;

static void count_dtor(void *v)
{
    atomic_fetch_add(&dtor_calls, 1);
    atomic_store(&dtor_last, v);
}

static weft_thread *start(weft_thread_fn fn, void *arg)
{
    weft_thread *t = NULL;
    ck_assert_rc(weft_thread_start(&t, fn, arg, NULL), 0);
    return t;
}

static int join(weft_thread *t)
{
    int r = -1;
    ck_assert_rc(weft_thread_join(t, &r, WEFT_FOREVER), 0);
    return r;
}

static weft_tls_key key;

static int set_and_check(void *p)
{
    if (weft_tls_get(key) != NULL)
        return 1;
    if (weft_tls_set(key, p))
        return 2;
    for (int i = 0; i < 1000; i++)
        if (weft_tls_get(key) != p)
            return 3;
    return 0;
}

START_TEST(values_are_per_thread)
{
    int vals[8];
    weft_thread *t[8];
    ck_assert_rc(weft_tls_key_create(&key, NULL), 0);
    ck_assert_ptr_null(weft_tls_get(key));
    ck_assert_rc(weft_tls_set(key, &vals[0]), 0);
    for (int i = 0; i < 8; i++)
        t[i] = start(set_and_check, &vals[i]);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(join(t[i]), 0);
    ck_assert_ptr_eq(weft_tls_get(key), &vals[0]);
    ck_assert_rc(weft_tls_key_delete(key), 0);
}
END_TEST

static int set_value(void *p)
{
    return weft_tls_set(key, p);
}

START_TEST(destructor_runs_at_exit_with_value)
{
    static int v;
    ck_assert_rc(weft_tls_key_create(&key, count_dtor), 0);
    weft_thread *t = start(set_value, &v);
    ck_assert_int_eq(join(t), 0);
    /* join returns only after the destructors ran. */
    ck_assert_int_eq(atomic_load(&dtor_calls), 1);
    ck_assert_ptr_eq(atomic_load(&dtor_last), &v);
}
END_TEST

START_TEST(destructor_not_called_for_null)
{
    static int v;
    ck_assert_rc(weft_tls_key_create(&key, count_dtor), 0);
    ck_assert_int_eq(join(start(set_value, NULL)), 0);
    ck_assert_int_eq(atomic_load(&dtor_calls), 0);
    /* Set, then cleared: nothing to destroy either. */
    weft_tls_key other;
    ck_assert_rc(weft_tls_key_create(&other, count_dtor), 0);
    ck_assert_int_eq(join(start(set_value, &v)), 0);
    ck_assert_int_eq(atomic_load(&dtor_calls), 1);
}
END_TEST

static int set_then_clear(void *p)
{
    if (weft_tls_set(key, p))
        return 1;
    return weft_tls_set(key, NULL);
}

START_TEST(cleared_value_is_not_destroyed)
{
    static int v;
    ck_assert_rc(weft_tls_key_create(&key, count_dtor), 0);
    ck_assert_int_eq(join(start(set_then_clear, &v)), 0);
    ck_assert_int_eq(atomic_load(&dtor_calls), 0);
}
END_TEST

static int set_then_delete(void *p)
{
    if (weft_tls_set(key, p))
        return 1;
    return weft_tls_key_delete(key);
}

START_TEST(delete_and_reuse_gets_fresh_generation)
{
    static int v;
    weft_tls_key k1, k2;
    ck_assert_rc(weft_tls_key_create(&k1, count_dtor), 0);
    ck_assert_rc(weft_tls_set(k1, &v), 0);
    ck_assert_rc(weft_tls_key_delete(k1), 0);
    ck_assert_rc(weft_tls_key_delete(k1), -EINVAL);
    ck_assert_ptr_null(weft_tls_get(k1));
    ck_assert_rc(weft_tls_set(k1, &v), -EINVAL);
    ck_assert_rc(weft_tls_key_create(&k2, NULL), 0);
    ck_assert_uint_eq(k2.idx, k1.idx); /* the slot is reused... */
    ck_assert_ptr_null(weft_tls_get(k2)); /* ...without the old value */
    ck_assert_ptr_null(weft_tls_get(k1));
    /* A key deleted while a thread holds a value: no destructor. */
    ck_assert_rc(weft_tls_key_create(&key, count_dtor), 0);
    ck_assert_int_eq(join(start(set_then_delete, &v)), 0);
    ck_assert_int_eq(atomic_load(&dtor_calls), 0);
    /* A zeroed key is never valid. */
    weft_tls_key zero = {0, 0};
    ck_assert_ptr_null(weft_tls_get(zero));
    ck_assert_rc(weft_tls_set(zero, &v), -EINVAL);
    ck_assert_rc(weft_tls_key_delete(zero), -EINVAL);
    ck_assert_rc(weft_tls_key_create(NULL, NULL), -EINVAL);
}
END_TEST

START_TEST(keys_exhaust_with_eagain)
{
    static weft_tls_key keys[WEFT_TLS_KEYS_MAX];
    int n = 0;
    while (n < WEFT_TLS_KEYS_MAX && weft_tls_key_create(&keys[n], NULL) == 0)
        n++;
    ck_assert_int_eq(n, WEFT_TLS_KEYS_MAX);
    weft_tls_key extra;
    ck_assert_rc(weft_tls_key_create(&extra, NULL), -EAGAIN);
    /* Every key holds its own value. */
    for (int i = 0; i < n; i++)
        ck_assert_rc(weft_tls_set(keys[i], &keys[i]), 0);
    for (int i = 0; i < n; i++)
        ck_assert_ptr_eq(weft_tls_get(keys[i]), &keys[i]);
    ck_assert_rc(weft_tls_key_delete(keys[17]), 0);
    ck_assert_rc(weft_tls_key_create(&extra, NULL), 0);
    ck_assert_uint_eq(extra.idx, keys[17].idx);
    ck_assert_ptr_null(weft_tls_get(extra));
}
END_TEST

static int foreign_set(void *p)
{
    return weft_tls_set(key, p);
}

START_TEST(foreign_thread_destructors_run)
{
    static int v;
    ck_assert_rc(weft_tls_key_create(&key, count_dtor), 0);
    ck_assert_int_eq(tt_join(tt_start(foreign_set, &v)), 0);
    ck_assert_int_eq(atomic_load(&dtor_calls), 1);
    ck_assert_ptr_eq(atomic_load(&dtor_last), &v);
}
END_TEST

static _Atomic int rounds;

static void resetting_dtor(void *v)
{
    /* Sets a new value each time: POSIX-style rounds stop after 4. */
    atomic_fetch_add(&rounds, 1);
    weft_tls_set(key, v);
}

START_TEST(destructor_rounds_are_bounded)
{
    static int v;
    ck_assert_rc(weft_tls_key_create(&key, resetting_dtor), 0);
    ck_assert_int_eq(join(start(set_value, &v)), 0);
    ck_assert_int_eq(atomic_load(&rounds), 4);
    atomic_store(&rounds, 0);
    ck_assert_int_eq(tt_join(tt_start(foreign_set, &v)), 0);
    ck_assert_int_eq(atomic_load(&rounds), 4);
}
END_TEST

static weft_tls_key key2;
static _Atomic int chained;

static void chain_dtor(void *v)
{
    /* A destructor that sets another key's value: that value is destroyed
     * too, in the same round or the next. */
    atomic_fetch_add(&chained, 1);
    if (v == (void *)&key)
        weft_tls_set(key2, &key2);
}

static int set_chain(void *p)
{
    (void)p;
    return weft_tls_set(key, &key);
}

START_TEST(destructor_may_set_other_keys)
{
    ck_assert_rc(weft_tls_key_create(&key, chain_dtor), 0);
    ck_assert_rc(weft_tls_key_create(&key2, chain_dtor), 0);
    ck_assert_int_eq(join(start(set_chain, NULL)), 0);
    ck_assert_int_eq(atomic_load(&chained), 2);
}
END_TEST

static int many_keys_body(void *p)
{
    weft_tls_key *ks = p;
    for (int i = 0; i < 16; i++)
        if (weft_tls_set(ks[i], &ks[i]))
            return 1;
    return 0;
}

START_TEST(many_threads_many_keys)
{
    weft_tls_key ks[16];
    weft_thread *t[16];
    for (int i = 0; i < 16; i++)
        ck_assert_rc(weft_tls_key_create(&ks[i], count_dtor), 0);
    for (int i = 0; i < 16; i++)
        t[i] = start(many_keys_body, ks);
    for (int i = 0; i < 16; i++)
        ck_assert_int_eq(join(t[i]), 0);
    ck_assert_int_eq(atomic_load(&dtor_calls), 16 * 16);
}
END_TEST

static Suite *tls_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *c = tcase_create("tls");
    tcase_set_timeout(c, 20);
    tcase_add_test(c, values_are_per_thread);
    tcase_add_test(c, destructor_runs_at_exit_with_value);
    tcase_add_test(c, destructor_not_called_for_null);
    tcase_add_test(c, cleared_value_is_not_destroyed);
    tcase_add_test(c, delete_and_reuse_gets_fresh_generation);
    tcase_add_test(c, keys_exhaust_with_eagain);
    tcase_add_test(c, foreign_thread_destructors_run);
    tcase_add_test(c, destructor_rounds_are_bounded);
    tcase_add_test(c, destructor_may_set_other_keys);
    tcase_add_test(c, many_threads_many_keys);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(tls_suite)
