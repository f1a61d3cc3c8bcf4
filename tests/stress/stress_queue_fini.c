/* stress_queue_fini.c - a lock-free FIFO queue destroyed as soon as its
 * owner has seen the queue finished, while the other thread may still be
 * inside the call that finished it: the consumer destroys it right after
 * the last get, while the put that delivered the item may still look at
 * the getter count (after_put); or the owner destroys it right after a
 * polling join returned, while the task_done that let it return may still
 * look at the joiner count.  src/queue/fast.c closes both windows with
 * the in-flight slot (src/platform/inflight.h), which destroy waits out.
 * Pairs outnumber the cores, so a thread is now and then preempted inside
 * its window; before the slots, ThreadSanitizer failed every run of the
 * first two cases at the default scale (nothing ordered the read before
 * the free), AddressSanitizer most runs at WEFT_TEST_SCALE=5.  Without a
 * sanitizer the test passes either way: the read goes unnoticed.  Bounded
 * by a round count and a time budget, both scaled; each case per store
 * (ring, segments). */
#include "support.h"

#include <stdatomic.h>

#include "platform/platform.h"

struct pair {
    _Atomic(weft_queue *) slot; /* the consumer hands over the next queue */
    _Atomic int stop;
    int join;                   /* the worker gets and task_dones instead */
    size_t maxsize;
    long rounds;
    int64_t until;
};

static int producer(void *p)
{
    struct pair *x = p;

    for (;;) {
        weft_queue *q;
        void *item = NULL;
        while ((q = atomic_exchange(&x->slot, NULL)) == NULL) {
            if (atomic_load(&x->stop))
                return 0;
            weft__cpu_relax();
        }
        if (!x->join) {
            if (weft_queue_put(q, (void *)1, WEFT_FOREVER) != 0)
                return -1; /* the put was the last touch */
            continue;
        }
        if (weft_queue_get(q, &item, WEFT_FOREVER) != 0 || item != (void *)1)
            return -1;
        if (weft_queue_task_done(q) != 0) /* last touch */
            return -1;
    }
}

static int consumer(void *p)
{
    struct pair *x = p;

    for (long r = 0; r < x->rounds && weft_now() < x->until; r++) {
        weft_queue *q;
        void *item = NULL;
        int rc;

        if (weft_queue_create(&q, WEFT_QUEUE_FIFO, x->maxsize) != 0)
            return -1;
        if (x->join) {
            /* The other side gets the item and calls task_done; a join
             * that polls (never parks) returns the moment the count
             * drops, while task_done may still look at the joiners. */
            if (weft_queue_put(q, (void *)1, WEFT_FOREVER) != 0)
                return -1;
            atomic_store(&x->slot, q);
            while ((rc = weft_queue_join(q, WEFT_NOW)) == -ETIMEDOUT)
                weft__cpu_relax();
            if (rc != 0 || weft_queue_destroy(q, NULL) != 0)
                return -4;
            continue;
        }
        atomic_store(&x->slot, q);
        /* Poll without parking: a parked getter would be served under the
         * guard, which destroy waits for. */
        while ((rc = weft_queue_get(q, &item, WEFT_NOW)) == -ETIMEDOUT)
            weft__cpu_relax();
        if (rc != 0 || item != (void *)1)
            return -2;
        if (weft_queue_destroy(q, NULL) != 0)
            return -3;
    }
    atomic_store(&x->stop, 1);
    return 0;
}

static void run_pairs(size_t maxsize, int join)
{
    enum { P = 4 };
    static struct pair x[P];
    tt *a[P], *b[P];

    for (int i = 0; i < P; i++) {
        atomic_store(&x[i].slot, NULL);
        atomic_store(&x[i].stop, 0);
        x[i].maxsize = maxsize;
        x[i].join = join;
        x[i].rounds = 1000000 * test_scale();
        x[i].until = weft_deadline_in(MS(2000) * test_scale() * test_slow());
        a[i] = tt_start(producer, &x[i]);
        b[i] = tt_start(consumer, &x[i]);
    }
    for (int i = 0; i < P; i++) {
        ck_assert_int_eq(tt_join(b[i]), 0);
        ck_assert_int_eq(tt_join(a[i]), 0);
    }
}

START_TEST(destroy_right_after_the_last_get_ring)
{
    run_pairs(16, 0);
}
END_TEST

START_TEST(destroy_right_after_the_last_get_segments)
{
    run_pairs(0, 0);
}
END_TEST

START_TEST(destroy_right_after_join_ring)
{
    run_pairs(16, 1);
}
END_TEST

START_TEST(destroy_right_after_join_segments)
{
    run_pairs(0, 1);
}
END_TEST

static Suite *queue_fini_suite(void)
{
    Suite *s = suite_create("queue_fini_stress");
    TCase *c = tcase_create("destroy_after_get");

    tcase_set_timeout(c, 60);
    tcase_add_test(c, destroy_right_after_the_last_get_ring);
    tcase_add_test(c, destroy_right_after_the_last_get_segments);
    tcase_add_test(c, destroy_right_after_join_ring);
    tcase_add_test(c, destroy_right_after_join_segments);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(queue_fini_suite)
