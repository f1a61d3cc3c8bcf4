/* test_rwlock.c - weft_rwlock: shared readers, exclusive writer, writer
 * preference, every error, deadlines, a timed-out writer releasing the
 * readers it held back, cancellation, destroy while in use. */
#include "support.h"

#include <sched.h>
#include <stdatomic.h>

#include "park/park.h"

struct rw {
    weft_rwlock *l;
    int64_t deadline;
    atomic_int started;
    atomic_int inside;
    _Atomic(weft__waiter *) who;
};

static int reader(void *p)
{
    struct rw *w = p;
    atomic_fetch_add(&w->started, 1);
    int rc = weft_rwlock_read_acquire(w->l, w->deadline);
    if (rc)
        return rc;
    atomic_fetch_add(&w->inside, 1);
    return 0; /* keeps its read hold; the test releases it */
}

static int writer(void *p)
{
    struct rw *w = p;
    atomic_store(&w->who, weft__self());
    atomic_fetch_add(&w->started, 1);
    int rc = weft_rwlock_write_acquire(w->l, w->deadline);
    if (rc)
        return rc;
    atomic_fetch_add(&w->inside, 1);
    return weft_rwlock_write_release(w->l);
}

/* Readers may not enter once a writer waits: the probe for "a writer is
 * queued" is a failing read_try (when no writer holds it). */
static void until_writer_waits(weft_rwlock *l)
{
    for (;;) {
        int rc = weft_rwlock_read_try(l);
        if (rc == -EAGAIN)
            return;
        ck_assert_rc(rc, 0);
        ck_assert_rc(weft_rwlock_read_release(l), 0);
        sched_yield();
    }
}

START_TEST(create_and_destroy)
{
    weft_rwlock *l;
    ck_assert_rc(weft_rwlock_create(&l), 0);
    ck_assert_rc(weft_rwlock_destroy(l), 0);
}
END_TEST

START_TEST(readers_share_it)
{
    struct rw w = {.deadline = WEFT_FOREVER};
    ck_assert_rc(weft_rwlock_create(&w.l), 0);
    ck_assert_rc(weft_rwlock_read_acquire(w.l, WEFT_FOREVER), 0);
    ck_assert_rc(weft_rwlock_read_try(w.l), 0);
    ck_assert_rc(tt_join(tt_start(reader, &w)), 0); /* a third, elsewhere */
    ck_assert_rc(weft_rwlock_write_try(w.l), -EAGAIN);
    for (int i = 0; i < 3; i++)
        ck_assert_rc(weft_rwlock_read_release(w.l), 0);
    ck_assert_rc(weft_rwlock_read_release(w.l), -EPERM);
    ck_assert_rc(weft_rwlock_write_try(w.l), 0);
    ck_assert_rc(weft_rwlock_write_release(w.l), 0);
    ck_assert_rc(weft_rwlock_destroy(w.l), 0);
}
END_TEST

START_TEST(read_release_without_hold_is_eperm)
{
    weft_rwlock *l;
    ck_assert_rc(weft_rwlock_create(&l), 0);
    ck_assert_rc(weft_rwlock_read_release(l), -EPERM);
    ck_assert_rc(weft_rwlock_write_acquire(l, WEFT_FOREVER), 0);
    ck_assert_rc(weft_rwlock_read_release(l), -EPERM); /* a write hold */
    ck_assert_rc(weft_rwlock_write_release(l), 0);
    ck_assert_rc(weft_rwlock_destroy(l), 0);
}
END_TEST

static int write_release_other(void *p)
{
    return weft_rwlock_write_release(p);
}

START_TEST(write_release_by_non_writer_is_eperm)
{
    weft_rwlock *l;
    ck_assert_rc(weft_rwlock_create(&l), 0);
    ck_assert_rc(weft_rwlock_write_release(l), -EPERM);
    ck_assert_rc(weft_rwlock_read_acquire(l, WEFT_FOREVER), 0);
    ck_assert_rc(weft_rwlock_write_release(l), -EPERM); /* a read hold */
    ck_assert_rc(weft_rwlock_read_release(l), 0);
    ck_assert_rc(weft_rwlock_write_acquire(l, WEFT_FOREVER), 0);
    ck_assert_rc(tt_join(tt_start(write_release_other, l)), -EPERM);
    ck_assert_rc(weft_rwlock_write_try(l), -EDEADLK); /* still ours */
    ck_assert_rc(weft_rwlock_write_release(l), 0);
    ck_assert_rc(weft_rwlock_destroy(l), 0);
}
END_TEST

START_TEST(writer_reacquiring_is_edeadlk)
{
    weft_rwlock *l;
    ck_assert_rc(weft_rwlock_create(&l), 0);
    ck_assert_rc(weft_rwlock_write_acquire(l, WEFT_FOREVER), 0);
    ck_assert_rc(weft_rwlock_write_acquire(l, WEFT_FOREVER), -EDEADLK);
    ck_assert_rc(weft_rwlock_write_try(l), -EDEADLK);
    ck_assert_rc(weft_rwlock_read_acquire(l, WEFT_FOREVER), -EDEADLK);
    ck_assert_rc(weft_rwlock_read_try(l), -EDEADLK);
    ck_assert_rc(weft_rwlock_write_release(l), 0);
    ck_assert_rc(weft_rwlock_destroy(l), 0);
}
END_TEST

static int read_try_other(void *p)
{
    return weft_rwlock_read_try(p);
}
static int read_now_other(void *p)
{
    return weft_rwlock_read_acquire(p, WEFT_NOW);
}
static int write_now_other(void *p)
{
    return weft_rwlock_write_acquire(p, WEFT_NOW);
}
static int write_try_other(void *p)
{
    return weft_rwlock_write_try(p);
}

START_TEST(try_and_now_forms_do_not_wait)
{
    weft_rwlock *l;
    ck_assert_rc(weft_rwlock_create(&l), 0);
    ck_assert_rc(weft_rwlock_write_acquire(l, WEFT_FOREVER), 0);
    int64_t t0 = weft_now();
    ck_assert_rc(tt_join(tt_start(read_try_other, l)), -EAGAIN);
    ck_assert_rc(tt_join(tt_start(read_now_other, l)), -ETIMEDOUT);
    ck_assert_rc(tt_join(tt_start(write_try_other, l)), -EAGAIN);
    ck_assert_rc(tt_join(tt_start(write_now_other, l)), -ETIMEDOUT);
    ck_assert_elapsed(t0, 0, MS(1000));
    ck_assert_rc(weft_rwlock_write_release(l), 0);
    ck_assert_rc(weft_rwlock_read_acquire(l, WEFT_NOW), 0);
    ck_assert_rc(weft_rwlock_write_acquire(l, WEFT_NOW), -ETIMEDOUT);
    ck_assert_rc(weft_rwlock_read_release(l), 0);
    ck_assert_rc(weft_rwlock_destroy(l), 0);
}
END_TEST

static int write_50ms(void *p)
{
    int64_t t0 = weft_now();
    int rc = weft_rwlock_write_acquire(p, weft_deadline_in(MS(50)));
    ck_assert_elapsed(t0, MS(50), MS(2000));
    return rc;
}

static int read_50ms(void *p)
{
    int64_t t0 = weft_now();
    int rc = weft_rwlock_read_acquire(p, weft_deadline_in(MS(50)));
    ck_assert_elapsed(t0, MS(50), MS(2000));
    return rc;
}

START_TEST(acquires_time_out_at_deadline)
{
    weft_rwlock *l;
    ck_assert_rc(weft_rwlock_create(&l), 0);
    ck_assert_rc(weft_rwlock_read_acquire(l, WEFT_FOREVER), 0);
    ck_assert_rc(tt_join(tt_start(write_50ms, l)), -ETIMEDOUT);
    ck_assert_rc(weft_rwlock_read_release(l), 0);
    ck_assert_rc(weft_rwlock_write_acquire(l, WEFT_FOREVER), 0);
    ck_assert_rc(tt_join(tt_start(read_50ms, l)), -ETIMEDOUT);
    ck_assert_rc(weft_rwlock_write_release(l), 0);
    ck_assert_rc(weft_rwlock_destroy(l), 0); /* nothing left queued */
}
END_TEST

START_TEST(waiting_writer_blocks_new_readers)
{
    struct rw w = {.deadline = WEFT_FOREVER};
    ck_assert_rc(weft_rwlock_create(&w.l), 0);
    ck_assert_rc(weft_rwlock_read_acquire(w.l, WEFT_FOREVER), 0);
    tt *t = tt_start(writer, &w);
    until_writer_waits(w.l);
    ck_assert_rc(tt_join(tt_start(read_try_other, w.l)), -EAGAIN);
    ck_assert_rc(tt_join(tt_start(read_50ms, w.l)), -ETIMEDOUT);
    ck_assert_int_eq(atomic_load(&w.inside), 0);
    ck_assert_rc(weft_rwlock_read_release(w.l), 0); /* hands it over */
    ck_assert_rc(tt_join(t), 0);
    ck_assert_int_eq(atomic_load(&w.inside), 1);
    ck_assert_rc(weft_rwlock_destroy(w.l), 0);
}
END_TEST

START_TEST(timed_out_writer_admits_the_readers_it_held_back)
{
    struct rw w = {.deadline = WEFT_FOREVER};
    ck_assert_rc(weft_rwlock_create(&w.l), 0);
    ck_assert_rc(weft_rwlock_read_acquire(w.l, WEFT_FOREVER), 0);
    struct rw wr = {.l = w.l, .deadline = weft_deadline_in(MS(100))};
    tt *tw = tt_start(writer, &wr);
    until_writer_waits(w.l);
    tt *tr = tt_start(reader, &w); /* queues behind the writer */
    while (!atomic_load(&w.started))
        sched_yield();
    /* We keep our read hold: only the writer's timeout can let it in. */
    ck_assert_rc(tt_join(tw), -ETIMEDOUT);
    ck_assert_rc(tt_join(tr), 0);
    ck_assert_int_eq(atomic_load(&w.inside), 1);
    ck_assert_rc(weft_rwlock_read_release(w.l), 0);
    ck_assert_rc(weft_rwlock_read_release(w.l), 0);
    ck_assert_rc(weft_rwlock_destroy(w.l), 0);
}
END_TEST

START_TEST(writer_release_admits_queued_readers)
{
    struct rw w = {.deadline = WEFT_FOREVER};
    ck_assert_rc(weft_rwlock_create(&w.l), 0);
    ck_assert_rc(weft_rwlock_write_acquire(w.l, WEFT_FOREVER), 0);
    tt *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = tt_start(reader, &w);
    while (atomic_load(&w.started) < 3)
        sched_yield();
    ck_assert_rc(weft_rwlock_write_release(w.l), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_rc(tt_join(t[i]), 0);
    ck_assert_int_eq(atomic_load(&w.inside), 3);
    ck_assert_rc(weft_rwlock_write_try(w.l), -EAGAIN);
    for (int i = 0; i < 3; i++)
        ck_assert_rc(weft_rwlock_read_release(w.l), 0);
    ck_assert_rc(weft_rwlock_destroy(w.l), 0);
}
END_TEST

START_TEST(destroy_in_use_is_ebusy)
{
    struct rw w = {.deadline = WEFT_FOREVER};
    ck_assert_rc(weft_rwlock_create(&w.l), 0);
    ck_assert_rc(weft_rwlock_read_acquire(w.l, WEFT_FOREVER), 0);
    ck_assert_rc(weft_rwlock_destroy(w.l), -EBUSY);
    tt *t = tt_start(writer, &w);
    until_writer_waits(w.l);
    ck_assert_rc(weft_rwlock_destroy(w.l), -EBUSY);
    ck_assert_rc(weft_rwlock_read_release(w.l), 0);
    ck_assert_rc(tt_join(t), 0);
    ck_assert_rc(weft_rwlock_write_acquire(w.l, WEFT_FOREVER), 0);
    ck_assert_rc(weft_rwlock_destroy(w.l), -EBUSY);
    ck_assert_rc(weft_rwlock_write_release(w.l), 0);
    ck_assert_rc(weft_rwlock_destroy(w.l), 0);
}
END_TEST

START_TEST(cancelled_writer_returns_ecanceled)
{
    struct rw w = {.deadline = WEFT_FOREVER};
    ck_assert_rc(weft_rwlock_create(&w.l), 0);
    ck_assert_rc(weft_rwlock_read_acquire(w.l, WEFT_FOREVER), 0);
    tt *t = tt_start(writer, &w);
    until_writer_waits(w.l);
    weft__waiter_cancel(atomic_load(&w.who));
    ck_assert_rc(tt_join(t), -ECANCELED);
    /* Its leaving lets readers in again. */
    ck_assert_rc(weft_rwlock_read_try(w.l), 0);
    ck_assert_rc(weft_rwlock_read_release(w.l), 0);
    ck_assert_rc(weft_rwlock_read_release(w.l), 0);
    ck_assert_rc(weft_rwlock_destroy(w.l), 0);
}
END_TEST

/* Readers and writers hammer it: never a reader with a writer inside,
 * never two writers, and the writers' plain counter ends exact. */
struct mix {
    weft_rwlock *l;
    atomic_int readers, writers;
    atomic_int bad;
    long counter;
    long iters;
};

static int mix_worker(void *p)
{
    struct mix *m = *(struct mix **)p;
    static atomic_int next;
    int id = atomic_fetch_add(&next, 1);
    for (long i = 0; i < m->iters; i++) {
        if ((i + id) % 4 == 0) {
            if (weft_rwlock_write_acquire(m->l, WEFT_FOREVER))
                return -1;
            if (atomic_fetch_add(&m->writers, 1) != 0 ||
                atomic_load(&m->readers) != 0)
                atomic_store(&m->bad, 1);
            m->counter++;
            atomic_fetch_sub(&m->writers, 1);
            if (weft_rwlock_write_release(m->l))
                return -1;
        } else {
            if (weft_rwlock_read_acquire(m->l, WEFT_FOREVER))
                return -1;
            atomic_fetch_add(&m->readers, 1);
            if (atomic_load(&m->writers) != 0)
                atomic_store(&m->bad, 1);
            (void)m->counter;
            atomic_fetch_sub(&m->readers, 1);
            if (weft_rwlock_read_release(m->l))
                return -1;
        }
    }
    return 0;
}

START_TEST(readers_and_writers_exclude_each_other)
{
    struct mix m = {.iters = 4000 * test_scale()};
    ck_assert_rc(weft_rwlock_create(&m.l), 0);
    struct mix *args[4] = {&m, &m, &m, &m};
    ck_assert_int_eq(tt_run_n(4, mix_worker, args, sizeof args[0]), 0);
    ck_assert_int_eq(atomic_load(&m.bad), 0);
    ck_assert_int_eq(m.counter, m.iters); /* each worker writes iters/4 */
    ck_assert_rc(weft_rwlock_destroy(m.l), 0);
}
END_TEST

static Suite *rwlock_suite(void)
{
    Suite *s = suite_create("rwlock");
    TCase *c = tcase_create("rwlock");
    tcase_set_timeout(c, 20);
    tcase_add_test(c, create_and_destroy);
    tcase_add_test(c, readers_share_it);
    tcase_add_test(c, read_release_without_hold_is_eperm);
    tcase_add_test(c, write_release_by_non_writer_is_eperm);
    tcase_add_test(c, writer_reacquiring_is_edeadlk);
    tcase_add_test(c, try_and_now_forms_do_not_wait);
    tcase_add_test(c, acquires_time_out_at_deadline);
    tcase_add_test(c, waiting_writer_blocks_new_readers);
    tcase_add_test(c, timed_out_writer_admits_the_readers_it_held_back);
    tcase_add_test(c, writer_release_admits_queued_readers);
    tcase_add_test(c, destroy_in_use_is_ebusy);
    tcase_add_test(c, cancelled_writer_returns_ecanceled);
    tcase_add_test(c, readers_and_writers_exclude_each_other);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(rwlock_suite)
