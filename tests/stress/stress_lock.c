/* stress_lock.c - weft_lock's wake-up windows under fire: the flyer (a
 * woken waiter that naps between looks at the lock, see src/sync/lock.c),
 * the slot it leaves vacant, the re-park that asks for the hand-off, and a
 * flyer that leaves at its deadline while others are queued.  Every test
 * counts exactly (a plain counter under the lock) and must end: a lost
 * wake-up shows as a hang, which the test's timeout turns into a failure.
 */
#include "support.h"

#include <stdatomic.h>

#include "platform/platform.h"

static long scaled(long n)
{
    return n * test_scale();
}

struct hammer {
    weft_lock l;
    long counter;           /* guarded by l */
    atomic_int inside;
    atomic_int overlap;
    atomic_long timeouts;
    long iters;
};

/* Take the lock one of four ways by turn: forever, with a deadline a few
 * microseconds away (often passing while we fly or nap), try, or WEFT_NOW;
 * a failed attempt is retried, so every thread counts exactly iters.  A
 * green thread retries try and WEFT_NOW after a yield (the holder may be
 * another green thread of its worker). */
static void retry_pause(void)
{
    if (weft_green_current())
        weft_green_yield();
    else
        weft__cpu_relax();
}

static int acquire_mixed(struct hammer *h, long i)
{
    int rc;

    switch (i % 4) {
    case 0:
        return weft_lock_acquire(&h->l, WEFT_FOREVER);
    case 1:
        while ((rc = weft_lock_acquire(&h->l, weft_deadline_in(2000 + i % 7 * 9000))) ==
               -ETIMEDOUT)
            atomic_fetch_add(&h->timeouts, 1);
        return rc;
    case 2:
        while ((rc = weft_lock_try(&h->l)) == -EAGAIN)
            retry_pause();
        return rc;
    default:
        while ((rc = weft_lock_acquire(&h->l, WEFT_NOW)) == -ETIMEDOUT)
            retry_pause();
        return rc;
    }
}

static int hammer_worker(void *p)
{
    struct hammer *h = *(struct hammer **)p;
    for (long i = 0; i < h->iters; i++) {
        int rc = acquire_mixed(h, i);
        if (rc)
            return rc;
        if (atomic_fetch_add(&h->inside, 1) != 0)
            atomic_store(&h->overlap, 1);
        h->counter++;
        /* Now and then hold it a while, so waiters park, fly and nap. */
        if (i % 97 == 0)
            for (volatile int k = 0; k < 3000; k++)
                ;
        atomic_fetch_sub(&h->inside, 1);
        rc = weft_lock_release(&h->l);
        if (rc)
            return rc;
        /* And now and then stay away, so a flyer finds the lock free. */
        if (i % 61 == 0)
            for (volatile int k = 0; k < 5000; k++)
                ;
    }
    return 0;
}

static void run_hammer(int n, long iters)
{
    struct hammer h = {.l = WEFT_LOCK_INIT, .iters = iters};
    struct hammer *args[4] = {&h, &h, &h, &h};
    ck_assert_int_le(n, 4);
    ck_assert_int_eq(tt_run_n(n, hammer_worker, args, sizeof args[0]), 0);
    ck_assert_int_eq(h.counter, n * iters);
    ck_assert_int_eq(atomic_load(&h.overlap), 0);
    /* Everyone has left: a vacant flyer's slot is not a user. */
    ck_assert_rc(weft_lock_fini(&h.l), 0);
}

START_TEST(two_threads_mixed_acquires)
{
    run_hammer(2, scaled(300000));
}
END_TEST

START_TEST(three_threads_mixed_acquires)
{
    run_hammer(3, scaled(200000));
}
END_TEST

START_TEST(four_threads_mixed_acquires)
{
    run_hammer(4, scaled(150000));
}
END_TEST

/* The hot loop of the benchmark: two threads re-taking the lock at once,
 * so the loser flies and naps while the other holds it. */
static int tight_worker(void *p)
{
    struct hammer *h = *(struct hammer **)p;
    for (long i = 0; i < h->iters; i++) {
        if (weft_lock_acquire(&h->l, WEFT_FOREVER))
            return 1;
        h->counter++;
        if (weft_lock_release(&h->l))
            return 1;
    }
    return 0;
}

START_TEST(tight_loop_two_threads)
{
    struct hammer h = {.l = WEFT_LOCK_INIT, .iters = scaled(2000000)};
    struct hammer *args[2] = {&h, &h};
    ck_assert_int_eq(tt_run_n(2, tight_worker, args, sizeof args[0]), 0);
    ck_assert_int_eq(h.counter, 2 * h.iters);
    ck_assert_rc(weft_lock_fini(&h.l), 0);
}
END_TEST

/* The last release: a hog takes the lock in a tight loop for a while, then
 * releases it for good while the other thread flies or naps.  The waiter
 * must find it free (at the end of its nap at the latest); repeated with
 * varying lengths so the final release lands in every window. */
struct last {
    weft_lock l;
    weft_event go;
    long rounds;
    long counter;
};

static int last_hog(void *p)
{
    struct last *s = p;
    for (long i = 0; i < s->rounds; i++) {
        if (weft_lock_acquire(&s->l, WEFT_FOREVER))
            return 1;
        if (i == 0)
            weft_event_set(&s->go);
        s->counter++;
        if (weft_lock_release(&s->l))
            return 1;
    }
    return 0;
}

static int last_waiter(void *p)
{
    struct last *s = p;
    if (weft_event_wait(&s->go, WEFT_FOREVER))
        return 1;
    if (weft_lock_acquire(&s->l, WEFT_FOREVER))
        return 1;
    s->counter++;
    return weft_lock_release(&s->l);
}

START_TEST(last_release_is_never_missed)
{
    for (long r = 0; r < scaled(1000); r++) {
        struct last s = {WEFT_LOCK_INIT, WEFT_EVENT_INIT, 500 + r * 37 % 20000,
                         0};
        tt *h = tt_start(last_hog, &s);
        tt *w = tt_start(last_waiter, &s);
        ck_assert_rc(tt_join(w), 0);
        ck_assert_rc(tt_join(h), 0);
        ck_assert_int_eq(s.counter, s.rounds + 1);
        ck_assert_rc(weft_lock_fini(&s.l), 0);
    }
}
END_TEST

/* A flyer whose deadline passes while another waiter is queued behind it:
 * releases skipped waking the queue while it flew, so on leaving it must
 * look at the lock and wake the queue.  Two threads time out constantly
 * (short deadlines), one waits forever; the forever one must finish. */
struct bail {
    struct hammer h;
    atomic_int stop;
};

static int bail_timed(void *p)
{
    struct bail *b = p;
    long got = 0;
    while (!atomic_load(&b->stop)) {
        int rc = weft_lock_acquire(&b->h.l, weft_deadline_in(3000 + got % 5 * 20000));
        if (rc == -ETIMEDOUT) {
            atomic_fetch_add(&b->h.timeouts, 1);
            continue;
        }
        if (rc)
            return rc;
        b->h.counter++;
        got++;
        for (volatile int k = 0; k < 2000; k++)
            ;
        if (weft_lock_release(&b->h.l))
            return 1;
    }
    return 0;
}

static int bail_forever(void *p)
{
    struct bail *b = p;
    for (long i = 0; i < b->h.iters; i++) {
        if (weft_lock_acquire(&b->h.l, WEFT_FOREVER))
            return 1;
        b->h.counter++;
        if (weft_lock_release(&b->h.l))
            return 1;
    }
    atomic_store(&b->stop, 1);
    return 0;
}

START_TEST(flyer_leaving_at_deadline_wakes_the_queue)
{
    struct bail b = {.h = {.l = WEFT_LOCK_INIT, .iters = scaled(100000)}};
    tt *t1 = tt_start(bail_timed, &b);
    tt *t2 = tt_start(bail_timed, &b);
    tt *f = tt_start(bail_forever, &b);
    ck_assert_rc(tt_join(f), 0);
    ck_assert_rc(tt_join(t1), 0);
    ck_assert_rc(tt_join(t2), 0);
    ck_assert_int_ge(b.h.counter, b.h.iters);
    ck_assert_rc(weft_lock_fini(&b.h.l), 0);
}
END_TEST

/* Green threads and OS threads on one lock: a green flyer naps through its
 * scheduler's timers, and cancellation of a green thread that waits (or
 * naps) for the lock leaves the lock clean and the counts exact. */
#define NGREEN 4

static int green_worker(void *p)
{
    struct hammer *h = p;
    for (long i = 0; i < h->iters; i++) {
        int rc = acquire_mixed(h, i);
        if (rc)
            return rc;
        h->counter++;
        if (i % 13 == 0)
            weft_green_yield(); /* hold it across a switch */
        if (weft_lock_release(&h->l))
            return 1;
    }
    return 0;
}

static int os_worker(void *p)
{
    return tight_worker(&p);
}

START_TEST(green_and_os_threads_mixed)
{
    struct hammer h = {.l = WEFT_LOCK_INIT, .iters = scaled(20000)};
    weft_green *g[NGREEN];
    int r;

    for (int i = 0; i < NGREEN; i++)
        ck_assert_rc(weft_green_spawn(&g[i], green_worker, &h, NULL), 0);
    tt *t1 = tt_start(os_worker, &h);
    tt *t2 = tt_start(os_worker, &h);
    ck_assert_rc(tt_join(t1), 0);
    ck_assert_rc(tt_join(t2), 0);
    for (int i = 0; i < NGREEN; i++) {
        ck_assert_rc(weft_green_join(g[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 0);
    }
    ck_assert_int_eq(h.counter, (NGREEN + 2) * h.iters);
    ck_assert_rc(weft_lock_fini(&h.l), 0);
}
END_TEST

struct cancelled {
    struct hammer h;
    atomic_long got;
    atomic_int cancelled;
    atomic_int stop;
};

/* Loops until cancelled in a wait, or until stop (a green thread that
 * never had to wait sees no cancellation). */
static int cancellable(void *p)
{
    struct cancelled *c = p;
    while (!atomic_load(&c->stop)) {
        int rc = weft_lock_acquire(&c->h.l, WEFT_FOREVER);
        if (rc == -ECANCELED) {
            atomic_fetch_add(&c->cancelled, 1);
            return 0;
        }
        if (rc)
            return rc;
        c->h.counter++;
        atomic_fetch_add(&c->got, 1);
        if (weft_lock_release(&c->h.l))
            return 1;
        if (atomic_load(&c->got) % 8 == 0)
            weft_green_yield();
    }
    return 0;
}

START_TEST(cancelled_green_waiters_leave_cleanly)
{
    struct cancelled c = {.h = {.l = WEFT_LOCK_INIT, .iters = scaled(100000)}};
    weft_green *g[2];
    int r;

    for (int round = 0; round < 20; round++) {
        long before = c.h.counter;
        atomic_store(&c.got, 0);
        atomic_store(&c.stop, 0);
        for (int i = 0; i < 2; i++)
            ck_assert_rc(weft_green_spawn(&g[i], cancellable, &c, NULL), 0);
        /* An OS thread hogs the lock meanwhile, so they wait and fly. */
        c.h.iters = scaled(20000);
        tt *t = tt_start(os_worker, &c.h);
        while (atomic_load(&c.got) < 100)
            weft__cpu_relax();
        for (int i = 0; i < 2; i++)
            ck_assert_rc(weft_green_cancel(g[i]), 0);
        ck_assert_rc(tt_join(t), 0);
        atomic_store(&c.stop, 1);
        for (int i = 0; i < 2; i++) {
            ck_assert_rc(weft_green_join(g[i], &r, WEFT_FOREVER), 0);
            ck_assert_int_eq(r, 0);
        }
        ck_assert_int_eq(c.h.counter - before,
                         c.h.iters + atomic_load(&c.got));
        ck_assert_rc(weft_lock_fini(&c.h.l), 0);
    }
    ck_assert_int_le(atomic_load(&c.cancelled), 40);
}
END_TEST

static Suite *lock_stress_suite(void)
{
    Suite *s = suite_create("lock_stress");
    TCase *c = tcase_create("lock_stress");
    tcase_set_timeout(c, 30);
    tcase_add_test(c, two_threads_mixed_acquires);
    tcase_add_test(c, three_threads_mixed_acquires);
    tcase_add_test(c, four_threads_mixed_acquires);
    tcase_add_test(c, tight_loop_two_threads);
    tcase_add_test(c, last_release_is_never_missed);
    tcase_add_test(c, flyer_leaving_at_deadline_wakes_the_queue);
    tcase_add_test(c, green_and_os_threads_mixed);
    tcase_add_test(c, cancelled_green_waiters_leave_cleanly);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(lock_stress_suite)
