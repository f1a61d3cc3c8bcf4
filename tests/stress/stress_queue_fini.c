/* stress_queue_fini.c - a lock-free FIFO queue destroyed by its consumer
 * as soon as it has the last item, while the producer may still be inside
 * the put that delivered it.  weft_queue_destroy is -EBUSY only while a
 * thread is parked on the queue, and include/weft/sync.h's rule for every
 * primitive is that the destroy waits out a thread still inside the call
 * that handed something over; the locked queues do (the put holds the
 * guard, which destroy takes), the lock-free path (src/queue/fast.c) reads
 * the queue again after publishing the item (after_put's look at nget) and
 * may serve waiters on it.  Pairs outnumber the cores, so a producer is
 * now and then preempted between its publish and that look; under
 * AddressSanitizer the read of the freed queue is reported (the window is
 * a few instructions wide: at WEFT_TEST_SCALE=5 most runs fail within
 * about 20 s on this 2-core machine).  ThreadSanitizer sees it without the
 * preemption - nothing orders that read before the free - and fails every
 * run at the default scale.  Without a sanitizer the test passes: the read
 * goes unnoticed.  Bounded by a round count and a time budget, both
 * scaled; one case per store (ring, segments). */
#include "support.h"

#include <stdatomic.h>

#include "platform/platform.h"

struct pair {
    _Atomic(weft_queue *) slot; /* the consumer hands over the next queue */
    _Atomic int stop;
    size_t maxsize;
    long rounds;
    int64_t until;
};

static int producer(void *p)
{
    struct pair *x = p;

    for (;;) {
        weft_queue *q;
        while ((q = atomic_exchange(&x->slot, NULL)) == NULL) {
            if (atomic_load(&x->stop))
                return 0;
            weft__cpu_relax();
        }
        if (weft_queue_put(q, (void *)1, WEFT_FOREVER) != 0) /* last touch */
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

static void run_pairs(size_t maxsize)
{
    enum { P = 4 };
    static struct pair x[P];
    tt *a[P], *b[P];

    for (int i = 0; i < P; i++) {
        atomic_store(&x[i].slot, NULL);
        atomic_store(&x[i].stop, 0);
        x[i].maxsize = maxsize;
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
    run_pairs(16);
}
END_TEST

START_TEST(destroy_right_after_the_last_get_segments)
{
    run_pairs(0);
}
END_TEST

static Suite *queue_fini_suite(void)
{
    Suite *s = suite_create("queue_fini_stress");
    TCase *c = tcase_create("destroy_after_get");

    tcase_set_timeout(c, 60);
    tcase_add_test(c, destroy_right_after_the_last_get_ring);
    tcase_add_test(c, destroy_right_after_the_last_get_segments);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(queue_fini_suite)
