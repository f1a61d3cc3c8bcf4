/* support.h - helpers shared by every test file.
 *
 * Tests start their threads through tt_start/tt_join so that one test body
 * can later run on OS threads and on green threads alike.  Scale and
 * timing:
 *   WEFT_TEST_SCALE  multiplies the size of stress loops (default 1)
 *   WEFT_TEST_SLOW   multiplies timing tolerances (default 1; sanitizer
 *                    runs set it higher)
 * Timing is only ever asserted loosely: a deadline must not fire early, and
 * must fire within a generous bound.  No test sleeps to synchronise.
 */
#ifndef WEFT_TEST_SUPPORT_H
#define WEFT_TEST_SUPPORT_H

#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "weft.h"

typedef struct tt tt;

/* Start fn(arg) on a new OS thread; never NULL (fails the test instead). */
tt *tt_start(int (*fn)(void *), void *arg);
/* Join and return fn's result. */
int tt_join(tt *t);

/* Start n threads running fn(args + i * argsize) and join them all;
 * returns the number of non-zero results. */
int tt_run_n(int n, int (*fn)(void *), void *args, size_t argsize);

long test_scale(void);
long test_slow(void);

/* weft_dump's report as a string (free it). */
char *test_dump(void);
#define MS(x) ((int64_t)(x) * WEFT_NSEC_PER_MSEC)

/* Assert that a timed call took at least lo ns and at most hi ns (hi is
 * stretched by WEFT_TEST_SLOW). */
#define ck_assert_elapsed(t0, lo, hi)                                        \
    do {                                                                     \
        int64_t el_ = weft_now() - (t0);                                     \
        ck_assert_msg(el_ >= (lo), "returned after %lld ns, before %lld",    \
                      (long long)el_, (long long)(lo));                      \
        ck_assert_msg(el_ <= (int64_t)(hi) * test_slow(),                    \
                      "returned after %lld ns, bound %lld", (long long)el_,  \
                      (long long)(hi) * test_slow());                        \
    } while (0)

#define ck_assert_rc(expr, want)                                             \
    do {                                                                     \
        int rc_ = (expr);                                                    \
        ck_assert_msg(rc_ == (want), "%s returned %d (%s), wanted %d (%s)",  \
                      #expr, rc_, weft_errname(rc_), (int)(want),            \
                      weft_errname(want));                                   \
    } while (0)

/* main() for a test file whose suite is built by make_suite(). */
int test_main(Suite *(*make_suite)(void));
#define TEST_MAIN(make_suite)                                                \
    int main(void) { return test_main(make_suite); }

#endif
