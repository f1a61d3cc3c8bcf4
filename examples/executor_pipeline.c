/* executor_pipeline.c - producers and consumers joined by an executor: work
 * goes in as tasks, results come out through futures, and a task that fails
 * is reported without stopping the others.
 *
 * Part 1, map: weft_map_start pulls its inputs lazily from a producer
 * function and keeps at most 4 tasks in flight on a pool of 3 threads.  The
 * tasks take different times (so they finish out of order), and item 13
 * fails.  The consumer reads with weft_map_next and still gets every
 * result in input order: the line for each item shows the order in which
 * its task actually finished.  The failure arrives as that item's code in
 * its place; the items after it come as usual.
 *
 * Part 2, done-callbacks feeding a queue: two producer threads submit 50
 * tasks each to a green executor (tasks on green threads) and attach a
 * done-callback to each future that puts it into a weft_queue; two
 * consumer threads take futures off the queue in the order they finish and
 * read each one's result, or its error code and message (one task in 25
 * fails).  The producers give back their references as soon as the
 * callback is attached: the queue holds the futures until a consumer takes
 * them.
 *
 * Prints the map's results in order, then the consumers' totals.  Exits 0
 * only if every result is right, in order where promised, and exactly the
 * tasks meant to fail failed.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "weft.h"

#define TIMEOUT_NS (5LL * 1000000000)

static int bad;

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", what, weft_strerror(rc));
        exit(1);
    }
}

/* ---- part 1: map, results in input order --------------------------------- */

#define MAP_ITEMS 20
#define MAP_FAILS 13

static _Atomic int finish_seq;
static _Atomic int finished_as[MAP_ITEMS + 1]; /* item -> its finishing rank */

/* The producer: items 1..MAP_ITEMS, one at a time, as the map asks. */
static int produce(void *state, void **input)
{
    int *next = state;

    if (*next > MAP_ITEMS)
        return -EPIPE;
    *input = (void *)(intptr_t)(*next)++;
    return 0;
}

/* Square the item after a delay that depends on the item (0 to 40 ms), so
 * the tasks finish out of order; item MAP_FAILS fails. */
static int square(void *arg, void **result)
{
    int i = (int)(intptr_t)arg;

    weft_sleep_until(weft_deadline_ms((i * 7) % 5 * 10));
    atomic_store(&finished_as[i], atomic_fetch_add(&finish_seq, 1) + 1);
    if (i == MAP_FAILS)
        return weft_task_fail(-EDOM, "item %d is unlucky", i);
    *result = (void *)(intptr_t)(i * i);
    return 0;
}

static void part_map(void)
{
    weft_executor_opts o = {.max_workers = 3, .name_prefix = "square"};
    weft_executor *ex;
    weft_map *m;
    int next = 1, i = 0, rc, task_rc, out_of_order = 0;
    void *res;

    printf("map: items 1..%d through 3 threads, at most 4 in flight\n",
           MAP_ITEMS);
    check(weft_thread_pool_create(&ex, &o), "thread pool");
    check(weft_map_start(&m, ex, square, produce, &next, 4), "map start");
    while ((rc = weft_map_next(m, &res, &task_rc,
                               weft_deadline_in(TIMEOUT_NS))) == 0) {
        int rank;

        i++;
        rank = atomic_load(&finished_as[i]);
        if (rank != i)
            out_of_order++;
        if (task_rc == 0) {
            printf("  item %2d -> %3d   (its task finished #%d)\n", i,
                   (int)(intptr_t)res, rank);
            if ((intptr_t)res != (intptr_t)i * i || i == MAP_FAILS)
                bad = 1;
        } else {
            printf("  item %2d FAILED: %s   (its task finished #%d)\n", i,
                   weft_errname(task_rc), rank);
            if (i != MAP_FAILS || task_rc != -EDOM)
                bad = 1;
        }
    }
    if (rc != -EPIPE || i != MAP_ITEMS) {
        fprintf(stderr, "map ended with %s after %d items\n",
                weft_strerror(rc), i);
        bad = 1;
    }
    printf("  %d results in input order, though %d of the tasks finished at "
           "another place than their input's\n", i, out_of_order);
    check(weft_map_end(m), "map end");
    check(weft_executor_destroy(ex), "thread pool destroy");
}

/* ---- part 2: done-callbacks feed a queue ---------------------------------- */

#define PRODUCERS 2
#define CONSUMERS 2
#define PER_PRODUCER 50
#define TOTAL (PRODUCERS * PER_PRODUCER)

static weft_executor *gex;
static weft_queue *done_q;
static _Atomic int claimed, sum, failures, wrong;

/* Twice the item, on a green thread; every 25th item fails. */
static int twice(void *arg, void **result)
{
    int i = (int)(intptr_t)arg;

    weft_green_yield(); /* let the others run: they finish out of order */
    if (i % 25 == 0)
        return weft_task_fail(-ERANGE, "item %d is out of range", i);
    *result = (void *)(intptr_t)(2 * i);
    return 0;
}

/* The done-callback: hand the finished future to the consumers, with a
 * reference of its own. */
static int to_queue(weft_future *f, void *arg)
{
    int rc = weft_queue_put(arg, weft_future_retain(f), WEFT_NOW);

    if (rc != 0)
        weft_future_release(f);
    return rc;
}

static int producer(void *arg)
{
    int base = (int)(intptr_t)arg * PER_PRODUCER;

    for (int k = 1; k <= PER_PRODUCER; k++) {
        weft_future *f;
        int rc = weft_executor_submit(gex, twice, (void *)(intptr_t)(base + k),
                                      &f, weft_deadline_in(TIMEOUT_NS));
        if (rc != 0)
            return rc;
        rc = weft_future_add_done_callback(f, to_queue, done_q);
        weft_future_release(f); /* the queue keeps its own */
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int consumer(void *arg)
{
    while (atomic_fetch_add(&claimed, 1) < TOTAL) {
        void *item;
        int rc = weft_queue_get(done_q, &item, weft_deadline_in(TIMEOUT_NS));
        if (rc != 0)
            return rc;
        weft_future *f = item;
        void *v;
        int code;
        const char *msg;

        rc = weft_future_result(f, &v, WEFT_NOW); /* done: never waits */
        if (rc == 0) {
            atomic_fetch_add(&sum, (int)(intptr_t)v);
        } else if (rc == WEFT_EFAILED &&
                   weft_future_error(f, &code, &msg, WEFT_NOW) == 0) {
            printf("  consumer %d: a task failed: %s (%s)\n",
                   (int)(intptr_t)arg, msg, weft_errname(code));
            atomic_fetch_add(&failures, 1);
        } else {
            atomic_fetch_add(&wrong, 1);
        }
        weft_future_release(f);
    }
    return 0;
}

static void part_callbacks(void)
{
    weft_thread *th[PRODUCERS + CONSUMERS];
    int expect_sum = 0, expect_fail = 0;

    printf("callbacks: %d producers submit %d tasks each to a green executor;"
           " %d consumers take the futures as they finish\n",
           PRODUCERS, PER_PRODUCER, CONSUMERS);
    check(weft_queue_create(&done_q, WEFT_QUEUE_FIFO, 0), "queue");
    check(weft_green_executor_create(&gex, NULL), "green executor");
    for (int k = 0; k < CONSUMERS; k++)
        check(weft_thread_start(&th[PRODUCERS + k], consumer,
                                (void *)(intptr_t)(k + 1), NULL), "consumer");
    for (int k = 0; k < PRODUCERS; k++)
        check(weft_thread_start(&th[k], producer, (void *)(intptr_t)k, NULL),
              "producer");
    for (int k = 0; k < PRODUCERS + CONSUMERS; k++) {
        int res;
        check(weft_thread_join(th[k], &res, weft_deadline_in(2 * TIMEOUT_NS)),
              "join");
        if (res != 0) {
            fprintf(stderr, "a %s ended with %s\n",
                    k < PRODUCERS ? "producer" : "consumer", weft_strerror(res));
            bad = 1;
        }
    }
    for (int i = 1; i <= TOTAL; i++) {
        if (i % 25 == 0)
            expect_fail++;
        else
            expect_sum += 2 * i;
    }
    printf("  %d results summing to %d, %d failures reported\n",
           TOTAL - atomic_load(&failures), atomic_load(&sum),
           atomic_load(&failures));
    if (atomic_load(&sum) != expect_sum ||
        atomic_load(&failures) != expect_fail || atomic_load(&wrong) != 0)
        bad = 1;
    check(weft_executor_destroy(gex), "green executor destroy");
    check(weft_queue_destroy(done_q, NULL), "queue destroy");
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    part_map();
    part_callbacks();
    if (weft_runtime_workers() > 0)
        check(weft_runtime_shutdown(weft_deadline_in(TIMEOUT_NS)),
              "runtime shutdown");
    printf(bad ? "FAILED\n" : "every result arrived; the failures were "
                              "reported and the rest went on\n");
    return bad;
}
