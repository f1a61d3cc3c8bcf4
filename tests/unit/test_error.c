/* test_error.c - weft_strerror/weft_errname over the whole error table,
 * unknown codes and 0; the deadline helpers of weft/time.h. */
#include "support.h"

#include <math.h>

#include <string.h>

struct code {
    const char *name;
    int value;
    const char *msg;
};

static const struct code table[] = {
#define X(name, value, msg) {#name, value, msg},
    WEFT_ERRNO_MAP(X)
#undef X
};
#define NCODES ((int)(sizeof table / sizeof table[0]))

START_TEST(every_code_has_name_and_message)
{
    ck_assert_int_ge(NCODES, 12);
    for (int i = 0; i < NCODES; i++) {
        ck_assert_int_lt(table[i].value, 0);
        ck_assert_str_eq(weft_errname(table[i].value), table[i].name);
        ck_assert_str_eq(weft_strerror(table[i].value), table[i].msg);
        ck_assert_int_gt((int)strlen(table[i].msg), 0);
        ck_assert_str_ne(weft_strerror(table[i].value), "unknown error");
    }
}
END_TEST

START_TEST(codes_are_distinct)
{
    for (int i = 0; i < NCODES; i++)
        for (int j = 0; j < i; j++) {
            ck_assert_int_ne(table[i].value, table[j].value);
            ck_assert_str_ne(table[i].name, table[j].name);
        }
}
END_TEST

START_TEST(zero_is_success)
{
    ck_assert_str_eq(weft_strerror(0), "success");
    ck_assert_str_eq(weft_errname(0), "OK");
}
END_TEST

START_TEST(unknown_codes)
{
    /* An errno value outside the table: the C library's name and message. */
    ck_assert_str_eq(weft_errname(-ENOENT), "ENOENT");
    ck_assert_str_eq(weft_strerror(-ENOENT), strerror(ENOENT));
    /* Nothing anyone knows. */
    ck_assert_str_eq(weft_errname(-9999), "UNKNOWN");
    ck_assert_str_eq(weft_strerror(-9999), "unknown error");
    ck_assert_str_eq(weft_errname(7), "UNKNOWN");
    ck_assert_ptr_nonnull(weft_strerror(7));
    ck_assert_ptr_nonnull(weft_strerror(INT32_MIN));
    ck_assert_str_eq(weft_errname(WEFT_EBROKEN), "WEFT_EBROKEN");
}
END_TEST

/* Codes outside the table and unknown to the C library get the fixed
 * message, not strerror's "Unknown error N" (formatted in a buffer shared by
 * every thread). */
START_TEST(unknown_errno_values_get_a_constant_message)
{
    ck_assert_str_eq(weft_strerror(-3999), "unknown error");
    ck_assert_str_eq(weft_strerror(-1234), "unknown error");
    const char *a = weft_strerror(-ENOENT);
    ck_assert_ptr_eq(a, weft_strerror(-ENOENT)); /* constant, not a buffer */
}
END_TEST

/* NaN is "do not wait"; only negative timeouts are forever. */
START_TEST(deadline_sec_nan_is_now)
{
    ck_assert_int_eq(weft_deadline_sec(NAN), WEFT_NOW);
    ck_assert_int_eq(weft_deadline_sec(-NAN), WEFT_NOW);
    ck_assert_int_eq(weft_deadline_sec(-INFINITY), WEFT_FOREVER);
    ck_assert_int_eq(weft_deadline_sec(INFINITY), INT64_MAX);
}
END_TEST

START_TEST(deadline_in_negative_is_forever)
{
    ck_assert_int_eq(weft_deadline_in(-1), WEFT_FOREVER);
    ck_assert_int_eq(weft_deadline_in(-12345), WEFT_FOREVER);
    ck_assert_int_eq(weft_deadline_ms(-1), WEFT_FOREVER);
    ck_assert_int_eq(weft_deadline_sec(-1), WEFT_FOREVER);
    ck_assert_int_eq(weft_deadline_sec(-0.5), WEFT_FOREVER);
    int64_t now = weft_now();
    int64_t d = weft_deadline_in(0);
    ck_assert_int_ge(d, now);
    ck_assert_int_le(d, weft_now());
}
END_TEST

START_TEST(deadlines_saturate)
{
    ck_assert_int_eq(weft_deadline_in(INT64_MAX), INT64_MAX);
    ck_assert_int_eq(weft_deadline_in(INT64_MAX - 1), INT64_MAX);
    ck_assert_int_eq(weft_deadline_ms(INT64_MAX), INT64_MAX);
    ck_assert_int_eq(weft_deadline_ms(INT64_MAX / 1000), INT64_MAX);
    ck_assert_int_eq(weft_deadline_sec(1e300), INT64_MAX);
    ck_assert_int_eq(weft_deadline_sec(1e10), INT64_MAX);
}
END_TEST

START_TEST(ms_and_sec_helpers)
{
    int64_t before = weft_now();
    int64_t a = weft_deadline_ms(250);
    int64_t b = weft_deadline_sec(0.25);
    int64_t after = weft_now();
    ck_assert_int_ge(a, before + MS(250));
    ck_assert_int_le(a, after + MS(250));
    ck_assert_int_ge(b, before + MS(250));
    ck_assert_int_le(b, after + MS(250) + 1);
    int64_t c = weft_deadline_sec(1.5);
    ck_assert_int_ge(c - weft_now(), MS(1400));
}
END_TEST

START_TEST(remaining)
{
    ck_assert_int_eq(weft_remaining(WEFT_FOREVER), -1);
    ck_assert_int_eq(weft_remaining(WEFT_NOW), 0);
    ck_assert_int_eq(weft_remaining(weft_now() - MS(10)), 0);
    int64_t d = weft_deadline_in(MS(500));
    int64_t r = weft_remaining(d);
    ck_assert_int_gt(r, 0);
    ck_assert_int_le(r, MS(500));
}
END_TEST

START_TEST(sleep_until_returns_at_or_after_deadline)
{
    for (int i = 0; i < 5; i++) {
        int64_t t0 = weft_now();
        int64_t d = weft_deadline_in(MS(10) + i * MS(3));
        ck_assert_rc(weft_sleep_until(d), 0);
        ck_assert_int_ge(weft_now(), d);
        ck_assert_elapsed(t0, MS(10), MS(2000));
    }
    int64_t t0 = weft_now();
    ck_assert_rc(weft_sleep_until(WEFT_NOW), 0);
    ck_assert_rc(weft_sleep_until(t0 - MS(100)), 0);
    ck_assert_elapsed(t0, 0, MS(1000));
}
END_TEST

START_TEST(now_is_positive_and_monotonic)
{
    int64_t prev = weft_now();
    ck_assert_int_gt(prev, 0);
    for (int i = 0; i < 100000; i++) {
        int64_t n = weft_now();
        ck_assert_int_ge(n, prev);
        prev = n;
    }
}
END_TEST

static Suite *error_suite(void)
{
    Suite *s = suite_create("error");
    TCase *c = tcase_create("error");
    tcase_set_timeout(c, 20);
    tcase_add_test(c, every_code_has_name_and_message);
    tcase_add_test(c, codes_are_distinct);
    tcase_add_test(c, zero_is_success);
    tcase_add_test(c, unknown_codes);
    tcase_add_test(c, unknown_errno_values_get_a_constant_message);
    tcase_add_test(c, deadline_sec_nan_is_now);
    tcase_add_test(c, deadline_in_negative_is_forever);
    tcase_add_test(c, deadlines_saturate);
    tcase_add_test(c, ms_and_sec_helpers);
    tcase_add_test(c, remaining);
    tcase_add_test(c, sleep_until_returns_at_or_after_deadline);
    tcase_add_test(c, now_is_positive_and_monotonic);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(error_suite)
