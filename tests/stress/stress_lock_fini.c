/* stress_lock_fini.c - a lock destroyed and freed right after its last
 * release, as include/weft/sync.h allows: "_fini ... must return 0 before
 * its storage is freed ... _fini is what waits that thread out".
 *
 * The pattern is the classic hand-over of an object whose lock guards a
 * "last user" flag: A takes the lock once, marks the flag and releases; B,
 * spinning in acquire, gets the lock as soon as A's release stored
 * locked = 0, sees the flag, releases, calls weft_lock_fini (0: nobody
 * holds, waits or is queued) and frees the object.  A must not touch the
 * lock after the point where B could get in, or it reads (or, through
 * release_slow, writes) freed memory; src/sync/lock.c's release loads
 * waiters after its store of locked, so it names the lock in its in-flight
 * slot (src/platform/inflight.h) for that window and fini waits it out.
 * Pairs outnumber the cores, so A is now and then preempted inside the
 * window.  Before the slots, AddressSanitizer reported the read of the
 * freed lock as a heap-use-after-free in about half the runs at
 * WEFT_TEST_SCALE=5 on this 2-core machine, and ThreadSanitizer (nothing
 * ordered that read before the free) failed every run at the default
 * scale.  Without a sanitizer the test passes either way: the read goes
 * unnoticed.  Bounded by a round count and a time budget, both scaled. */
#include "support.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "platform/platform.h"

struct obj {
    weft_lock l;
    int last;                   /* guarded by l */
};

struct pair {
    _Atomic(struct obj *) slot; /* B hands A the next object */
    _Atomic int stop;
    long rounds;
    int64_t until;
};

static int side_a(void *p)
{
    struct pair *x = p;

    for (;;) {
        struct obj *o;
        while ((o = atomic_exchange(&x->slot, NULL)) == NULL) {
            if (atomic_load(&x->stop))
                return 0;
            weft__cpu_relax();
        }
        if (weft_lock_acquire(&o->l, WEFT_FOREVER) != 0)
            return -1;
        o->last = 1;
        if (weft_lock_release(&o->l) != 0) /* our last touch of o */
            return -1;
    }
}

static int side_b(void *p)
{
    struct pair *x = p;

    for (long r = 0; r < x->rounds && weft_now() < x->until; r++) {
        struct obj *o = malloc(sizeof *o);
        int done = 0;

        if (o == NULL)
            return -1;
        weft_lock_init(&o->l);
        o->last = 0;
        atomic_store(&x->slot, o);
        while (!done) {
            if (weft_lock_acquire(&o->l, WEFT_FOREVER) != 0)
                return -1;
            done = o->last;
            if (weft_lock_release(&o->l) != 0)
                return -1;
        }
        if (weft_lock_fini(&o->l) != 0)
            return -2;
        free(o);
    }
    atomic_store(&x->stop, 1);
    return 0;
}

START_TEST(free_right_after_the_last_release)
{
    enum { P = 4 };
    static struct pair x[P];
    tt *a[P], *b[P];

    for (int i = 0; i < P; i++) {
        atomic_store(&x[i].slot, NULL);
        atomic_store(&x[i].stop, 0);
        x[i].rounds = 1000000 * test_scale();
        x[i].until = weft_deadline_in(MS(2000) * test_scale() * test_slow());
        a[i] = tt_start(side_a, &x[i]);
        b[i] = tt_start(side_b, &x[i]);
    }
    for (int i = 0; i < P; i++) {
        ck_assert_int_eq(tt_join(b[i]), 0);
        ck_assert_int_eq(tt_join(a[i]), 0);
    }
}
END_TEST

static Suite *lock_fini_suite(void)
{
    Suite *s = suite_create("lock_fini_stress");
    TCase *c = tcase_create("free_after_release");

    tcase_set_timeout(c, 60);
    tcase_add_test(c, free_right_after_the_last_release);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(lock_fini_suite)
