/* stress_sync.c - many threads hammering each sync primitive for a bounded
 * count, checking exact totals, invariants and the absence of lost
 * wake-ups (a lost one hangs a FOREVER wait, which the test timeout turns
 * into a failure).  The last cases use deadlines of a few microseconds, so
 * that waiters time out while they are being woken and the claim race in
 * the park layer is taken both ways, over and over. */
#include "support.h"

#include <stdatomic.h>
#include <stdlib.h>

#define NTHREADS 4

static long scaled(long n)
{
    return n * test_scale();
}

/* Deadlines of 1 to 8 microseconds. */
static int64_t tiny_deadline(unsigned *seed)
{
    return weft_deadline_in(1000 + (int64_t)(rand_r(seed) % 7000));
}

/* ---- lock ------------------------------------------------------------- */

struct lk {
    weft_lock l;
    long counter, iters;
};

static int lock_worker(void *p)
{
    struct lk *x = *(struct lk **)p;
    for (long i = 0; i < x->iters; i++) {
        if (weft_lock_acquire(&x->l, WEFT_FOREVER))
            return -1;
        x->counter++;
        if (weft_lock_release(&x->l))
            return -1;
    }
    return 0;
}

START_TEST(lock_counter_is_exact)
{
    struct lk x = {.l = WEFT_LOCK_INIT, .iters = scaled(50000)};
    struct lk *args[NTHREADS] = {&x, &x, &x, &x};
    ck_assert_int_eq(tt_run_n(NTHREADS, lock_worker, args, sizeof args[0]), 0);
    ck_assert_int_eq(x.counter, NTHREADS * x.iters);
    ck_assert_rc(weft_lock_fini(&x.l), 0);
}
END_TEST

/* ---- condition: bounded buffer ---------------------------------------- */

#define BUF 4

struct pc {
    weft_lock l;
    weft_cond not_empty, not_full;
    long buf[BUF];
    int head, len;      /* guarded by l */
    long produced_each; /* constant */
    long taken, total;  /* guarded by l */
    long sum;           /* guarded by l */
    bool tiny;          /* consumers use microsecond deadlines */
};

static bool pc_can_get(void *p)
{
    struct pc *c = p;
    return c->len > 0 || c->taken == c->total;
}
static bool pc_can_put(void *p)
{
    return ((struct pc *)p)->len < BUF;
}

static int pc_producer(void *p)
{
    struct pc *c = *(struct pc **)p;
    for (long i = 1; i <= c->produced_each; i++) {
        if (weft_lock_acquire(&c->l, WEFT_FOREVER) ||
            weft_cond_wait_for(&c->not_full, pc_can_put, c, WEFT_FOREVER))
            return -1;
        c->buf[(c->head + c->len++) % BUF] = i;
        weft_cond_notify(&c->not_empty, 1);
        weft_lock_release(&c->l);
    }
    return 0;
}

static int pc_consumer(void *p)
{
    struct pc *c = *(struct pc **)p;
    unsigned seed = (unsigned)(uintptr_t)&seed;
    for (;;) {
        if (weft_lock_acquire(&c->l, WEFT_FOREVER))
            return -1;
        for (;;) {
            int rc = weft_cond_wait_for(&c->not_empty, pc_can_get, c,
                                        c->tiny ? tiny_deadline(&seed)
                                                : WEFT_FOREVER);
            if (rc == 0)
                break;
            if (rc != -ETIMEDOUT || !weft_lock_held(&c->l))
                return -2;
        }
        if (c->len == 0) { /* all taken */
            weft_lock_release(&c->l);
            return 0;
        }
        c->sum += c->buf[c->head];
        c->head = (c->head + 1) % BUF;
        c->len--;
        if (++c->taken == c->total)
            weft_cond_notify_all(&c->not_empty); /* wake the others to end */
        weft_cond_notify(&c->not_full, 1);
        weft_lock_release(&c->l);
    }
}

static void run_pc(bool tiny, long each)
{
    struct pc c = {.l = WEFT_LOCK_INIT, .produced_each = each, .tiny = tiny};
    weft_cond_init(&c.not_empty, &c.l);
    weft_cond_init(&c.not_full, &c.l);
    c.total = 2 * each;
    struct pc *args[1] = {&c};
    tt *t[4];
    t[0] = tt_start(pc_producer, args);
    t[1] = tt_start(pc_producer, args);
    t[2] = tt_start(pc_consumer, args);
    t[3] = tt_start(pc_consumer, args);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(tt_join(t[i]), 0);
    ck_assert_int_eq(c.taken, c.total);
    ck_assert_int_eq(c.sum, 2 * (each * (each + 1) / 2));
    ck_assert_rc(weft_cond_fini(&c.not_empty), 0);
    ck_assert_rc(weft_cond_fini(&c.not_full), 0);
    ck_assert_rc(weft_lock_fini(&c.l), 0);
}

START_TEST(cond_producer_consumer_is_exact)
{
    run_pc(false, scaled(20000));
}
END_TEST

/* ---- semaphore -------------------------------------------------------- */

struct sm {
    weft_sem s;
    int64_t limit;
    atomic_long inside, max_inside, done;
    long iters;
    bool tiny;
};

static int sem_worker(void *p)
{
    struct sm *x = *(struct sm **)p;
    unsigned seed = (unsigned)(uintptr_t)&seed;
    for (long i = 0; i < x->iters; i++) {
        int rc;
        do
            rc = weft_sem_acquire(&x->s, x->tiny ? tiny_deadline(&seed)
                                                 : WEFT_FOREVER);
        while (rc == -ETIMEDOUT);
        if (rc)
            return rc;
        long in = atomic_fetch_add(&x->inside, 1) + 1;
        long m = atomic_load(&x->max_inside);
        while (in > m && !atomic_compare_exchange_weak(&x->max_inside, &m, in))
            ;
        atomic_fetch_add(&x->done, 1);
        atomic_fetch_sub(&x->inside, 1);
        rc = weft_sem_release(&x->s, 1);
        if (rc)
            return rc; /* -EOVERFLOW here: a permit was duplicated */
    }
    return 0;
}

static void run_sem(bool bounded, bool tiny, long iters)
{
    struct sm x = {.limit = 3, .iters = iters, .tiny = tiny};
    if (bounded)
        ck_assert_rc(weft_sem_init_bounded(&x.s, 3), 0);
    else
        ck_assert_rc(weft_sem_init(&x.s, 3), 0);
    struct sm *args[6] = {&x, &x, &x, &x, &x, &x};
    ck_assert_int_eq(tt_run_n(6, sem_worker, args, sizeof args[0]), 0);
    ck_assert_int_le(atomic_load(&x.max_inside), 3);
    ck_assert_int_eq(atomic_load(&x.done), 6 * iters);
    ck_assert_int_eq(weft_sem_value(&x.s), 3); /* no permit lost or made */
    ck_assert_rc(weft_sem_fini(&x.s), 0);
}

START_TEST(sem_limits_concurrency_exactly)
{
    run_sem(false, false, scaled(20000));
    run_sem(true, false, scaled(20000));
}
END_TEST

/* Releasers give permits back in batches of 1 to 4 (release(n) serves up
 * to n parked waiters and leaves the rest in the value) while acquirers,
 * half of whose attempts have microsecond deadlines, each take a fixed
 * quota.  Every permit is acquired exactly once: the value ends at 0, and
 * a lost wake-up hangs a FOREVER attempt.  The bounded run starts full at
 * its bound of 6; a release refused with -EOVERFLOW is retried, so it also
 * checks that a refused release changed nothing. */
struct smn {
    weft_sem s;
    long per_releaser, per_acquirer;
    atomic_long refused;
};

struct smn_arg {
    struct smn *x;
    bool releaser;
};

static int semn_worker(void *p)
{
    struct smn_arg *a = p;
    struct smn *x = a->x;
    unsigned seed = (unsigned)(uintptr_t)&seed;
    int rc;
    if (a->releaser) {
        for (long left = x->per_releaser; left > 0;) {
            long n = 1 + rand_r(&seed) % 4;
            if (n > left)
                n = left;
            rc = weft_sem_release(&x->s, n);
            if (rc == -EOVERFLOW) {
                atomic_fetch_add(&x->refused, 1);
                continue;
            }
            if (rc)
                return rc;
            left -= n;
        }
        return 0;
    }
    for (long i = 0; i < x->per_acquirer; i++) {
        do
            rc = weft_sem_acquire(&x->s, rand_r(&seed) % 2
                                             ? tiny_deadline(&seed)
                                             : WEFT_FOREVER);
        while (rc == -ETIMEDOUT);
        if (rc)
            return rc;
    }
    return 0;
}

static void run_semn(bool bounded, long per)
{
    struct smn x = {.per_releaser = per, .per_acquirer = per};
    struct smn_arg args[6];
    if (bounded) {
        ck_assert_rc(weft_sem_init_bounded(&x.s, 6), 0);
        x.per_acquirer += 2; /* 3 acquirers take the initial 6 as well */
    } else {
        ck_assert_rc(weft_sem_init(&x.s, 0), 0);
    }
    for (int i = 0; i < 6; i++)
        args[i] = (struct smn_arg){&x, i % 2 == 0};
    ck_assert_int_eq(tt_run_n(6, semn_worker, args, sizeof args[0]), 0);
    ck_assert_int_eq(weft_sem_value(&x.s), 0);
    ck_assert_rc(weft_sem_try(&x.s), -EAGAIN);
    ck_assert_rc(weft_sem_fini(&x.s), 0);
    if (!bounded)
        ck_assert_int_eq(atomic_load(&x.refused), 0);
}

START_TEST(sem_release_n_against_timing_out_waiters)
{
    run_semn(false, scaled(20000));
    run_semn(true, scaled(20000));
}
END_TEST

/* ---- event ------------------------------------------------------------ */

struct ev {
    weft_event e;
    atomic_int stop;
    atomic_long waits;
    long per_waiter;
    bool tiny;
};

static int ev_setter(void *p)
{
    struct ev *x = p;
    while (!atomic_load(&x->stop)) {
        weft_event_set(&x->e);
        weft_event_clear(&x->e);
    }
    weft_event_set(&x->e);
    return 0;
}

static int ev_waiter(void *p)
{
    struct ev *x = *(struct ev **)p;
    unsigned seed = (unsigned)(uintptr_t)&seed;
    for (long i = 0; i < x->per_waiter; i++) {
        int rc;
        do
            rc = weft_event_wait(&x->e, x->tiny ? tiny_deadline(&seed)
                                                : WEFT_FOREVER);
        while (rc == -ETIMEDOUT);
        if (rc)
            return rc;
        atomic_fetch_add(&x->waits, 1);
    }
    return 0;
}

static void run_event(bool tiny, long per)
{
    struct ev x = {.e = WEFT_EVENT_INIT, .per_waiter = per, .tiny = tiny};
    tt *s = tt_start(ev_setter, &x);
    struct ev *args[3] = {&x, &x, &x};
    ck_assert_int_eq(tt_run_n(3, ev_waiter, args, sizeof args[0]), 0);
    atomic_store(&x.stop, 1);
    ck_assert_int_eq(tt_join(s), 0);
    ck_assert_int_eq(atomic_load(&x.waits), 3 * per);
    ck_assert_rc(weft_event_fini(&x.e), 0);
}

START_TEST(event_storm_waiters_always_finish)
{
    run_event(false, scaled(5000));
}
END_TEST

/* ---- barrier ---------------------------------------------------------- */

struct br {
    weft_barrier *b;
    long cycles;
    atomic_int *seen; /* per cycle: bitmask of indexes */
    atomic_long actions;
};

static int br_action(void *p)
{
    atomic_fetch_add(&((struct br *)p)->actions, 1);
    return 0;
}

static int br_worker(void *p)
{
    struct br *x = *(struct br **)p;
    for (long c = 0; c < x->cycles; c++) {
        int rc = weft_barrier_wait(x->b, WEFT_FOREVER);
        if (rc < 0 || rc >= NTHREADS)
            return rc < 0 ? rc : -1;
        if (atomic_fetch_or(&x->seen[c], 1 << rc) & (1 << rc))
            return -2;
    }
    return 0;
}

START_TEST(barrier_cycles_give_each_index_once)
{
    struct br x = {.cycles = scaled(5000)};
    x.seen = calloc((size_t)x.cycles, sizeof *x.seen);
    ck_assert_ptr_nonnull(x.seen);
    ck_assert_rc(weft_barrier_create(&x.b, NTHREADS, br_action, &x), 0);
    struct br *args[NTHREADS] = {&x, &x, &x, &x};
    ck_assert_int_eq(tt_run_n(NTHREADS, br_worker, args, sizeof args[0]), 0);
    for (long c = 0; c < x.cycles; c++)
        ck_assert_int_eq(atomic_load(&x.seen[c]), (1 << NTHREADS) - 1);
    ck_assert_int_eq(atomic_load(&x.actions), x.cycles);
    ck_assert(!weft_barrier_broken(x.b));
    ck_assert_rc(weft_barrier_destroy(x.b), 0);
    free(x.seen);
}
END_TEST

/* ---- rwlock ----------------------------------------------------------- */

struct rl {
    weft_rwlock *l;
    atomic_int readers, writers, bad;
    atomic_long reads, writes_timed_out;
    long counter; /* written under the write lock only */
    long iters;
    bool tiny;    /* writers use microsecond deadlines */
};

static int rl_worker(void *p)
{
    struct rl *x = *(struct rl **)p;
    static atomic_int next;
    int id = atomic_fetch_add(&next, 1);
    unsigned seed = (unsigned)(uintptr_t)&seed;
    for (long i = 0; i < x->iters; i++) {
        if ((i + id) % 3 == 0) {
            int rc;
            while ((rc = weft_rwlock_write_acquire(
                        x->l, x->tiny ? tiny_deadline(&seed)
                                      : WEFT_FOREVER)) == -ETIMEDOUT)
                atomic_fetch_add(&x->writes_timed_out, 1);
            if (rc)
                return rc;
            if (atomic_fetch_add(&x->writers, 1) != 0 ||
                atomic_load(&x->readers) != 0)
                atomic_store(&x->bad, 1);
            x->counter++;
            atomic_fetch_sub(&x->writers, 1);
            if (weft_rwlock_write_release(x->l))
                return -1;
        } else {
            if (weft_rwlock_read_acquire(x->l, WEFT_FOREVER))
                return -1;
            atomic_fetch_add(&x->readers, 1);
            if (atomic_load(&x->writers) != 0)
                atomic_store(&x->bad, 1);
            atomic_fetch_add(&x->reads, 1);
            atomic_fetch_sub(&x->readers, 1);
            if (weft_rwlock_read_release(x->l))
                return -1;
        }
    }
    return 0;
}

static void run_rwlock(bool tiny, long iters)
{
    struct rl x = {.iters = iters, .tiny = tiny};
    ck_assert_rc(weft_rwlock_create(&x.l), 0);
    struct rl *args[6] = {&x, &x, &x, &x, &x, &x};
    ck_assert_int_eq(tt_run_n(6, rl_worker, args, sizeof args[0]), 0);
    ck_assert_int_eq(atomic_load(&x.bad), 0);
    ck_assert_int_eq(x.counter + atomic_load(&x.reads), 6 * iters);
    ck_assert_rc(weft_rwlock_destroy(x.l), 0);
}

START_TEST(rwlock_readers_never_meet_a_writer)
{
    run_rwlock(false, scaled(5000));
}
END_TEST

/* ---- timeouts racing wake-ups ----------------------------------------- */

START_TEST(sem_waiters_time_out_while_being_handed_permits)
{
    run_sem(false, true, scaled(10000));
    run_sem(true, true, scaled(10000));
}
END_TEST

START_TEST(cond_waiters_time_out_while_being_notified)
{
    run_pc(true, scaled(10000));
}
END_TEST

START_TEST(event_waiters_time_out_while_being_set)
{
    run_event(true, scaled(3000));
}
END_TEST

START_TEST(rwlock_writers_time_out_while_being_admitted)
{
    /* Readers wait forever: a timed-out writer that forgot to admit the
     * readers it held back hangs this test. */
    run_rwlock(true, scaled(5000));
}
END_TEST

/* Lock waiters with microsecond deadlines against hand-off and retry
 * wake-ups; every timed-out attempt is retried, so the count is exact. */
static int lock_tiny_worker(void *p)
{
    struct lk *x = *(struct lk **)p;
    unsigned seed = (unsigned)(uintptr_t)&seed;
    for (long i = 0; i < x->iters; i++) {
        int rc;
        while ((rc = weft_lock_acquire(&x->l, tiny_deadline(&seed))) ==
               -ETIMEDOUT)
            ;
        if (rc)
            return rc;
        x->counter++;
        if (weft_lock_release(&x->l))
            return -1;
    }
    return 0;
}

START_TEST(lock_waiters_time_out_while_being_handed_the_lock)
{
    struct lk x = {.l = WEFT_LOCK_INIT, .iters = scaled(20000)};
    struct lk *args[NTHREADS] = {&x, &x, &x, &x};
    ck_assert_int_eq(
        tt_run_n(NTHREADS, lock_tiny_worker, args, sizeof args[0]), 0);
    ck_assert_int_eq(x.counter, NTHREADS * x.iters);
    ck_assert_rc(weft_lock_fini(&x.l), 0);
}
END_TEST

/* One case per test, so that CK_RUN_CASE=<name> runs one alone. */
#define ADD(s, name)                                                         \
    do {                                                                     \
        TCase *c_ = tcase_create(#name);                                     \
        tcase_set_timeout(c_, 60);                                           \
        tcase_add_test(c_, name);                                            \
        suite_add_tcase(s, c_);                                              \
    } while (0)

static Suite *stress_sync_suite(void)
{
    Suite *s = suite_create("stress_sync");
    ADD(s, lock_counter_is_exact);
    ADD(s, cond_producer_consumer_is_exact);
    ADD(s, sem_limits_concurrency_exactly);
    ADD(s, event_storm_waiters_always_finish);
    ADD(s, barrier_cycles_give_each_index_once);
    ADD(s, rwlock_readers_never_meet_a_writer);
    ADD(s, sem_waiters_time_out_while_being_handed_permits);
    ADD(s, sem_release_n_against_timing_out_waiters);
    ADD(s, cond_waiters_time_out_while_being_notified);
    ADD(s, event_waiters_time_out_while_being_set);
    ADD(s, rwlock_writers_time_out_while_being_admitted);
    ADD(s, lock_waiters_time_out_while_being_handed_the_lock);
    return s;
}

TEST_MAIN(stress_sync_suite)
