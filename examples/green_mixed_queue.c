/* green_mixed_queue.c - producer-consumer between green threads and OS
 * threads through one weft queue.
 *
 * Two OS threads and two green threads produce; two green threads and one
 * OS thread consume, all through one bounded weft_queue (so producers of
 * both kinds also park when it is full: a green producer parks itself, not
 * its worker).  Each producer numbers its items; when every producer is
 * done, main shuts the queue down gracefully and the consumers drain it and
 * stop on -EPIPE.  The consumers are a weft_group, the producers another,
 * so main waits for each side with one call.
 *
 * The example checks itself: every item delivered exactly once, to both
 * kinds of consumer, nothing left in the queue.  Exit status 0 only then.
 *
 * Usage: green_mixed_queue [items_per_producer]   (default 20000)
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "weft.h"

#define NPROD 4 /* 0, 1: OS threads; 2, 3: green threads */

static weft_queue *q;
static int per_producer;
static _Atomic unsigned char *seen; /* per item: times delivered */
static _Atomic long got_by_green, got_by_os;

static int producer(void *arg)
{
    int p = (int)(intptr_t)arg;

    for (int i = 0; i < per_producer; i++) {
        intptr_t item = (intptr_t)p * per_producer + i + 1; /* never NULL */
        int rc = weft_queue_put(q, (void *)item, WEFT_FOREVER);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int consumer(void *arg)
{
    void *item;
    long n = 0;
    int rc;

    (void)arg;
    while ((rc = weft_queue_get(q, &item, WEFT_FOREVER)) == 0) {
        atomic_fetch_add(&seen[(intptr_t)item - 1], 1);
        n++;
    }
    atomic_fetch_add(weft_green_current() ? &got_by_green : &got_by_os, n);
    return rc == -EPIPE ? 0 : rc;
}

int main(int argc, char **argv)
{
    weft_group *producers, *consumers;
    weft_thread *os_prod[2], *os_cons;
    long total, dup = 0, lost = 0;
    int rc, r;

    per_producer = argc > 1 ? atoi(argv[1]) : 20000;
    if (per_producer < 1) {
        fprintf(stderr, "usage: green_mixed_queue [items_per_producer>0]\n");
        return 2;
    }
    total = (long)NPROD * per_producer;
    seen = calloc((size_t)total, sizeof *seen);
    if (seen == NULL || weft_queue_create(&q, WEFT_QUEUE_FIFO, 100) != 0 ||
        weft_group_create(&producers, 0) != 0 ||
        weft_group_create(&consumers, 0) != 0)
        return 1;

    for (int i = 0; i < 2; i++)
        if (weft_group_spawn(consumers, consumer, NULL, NULL, NULL) != 0)
            return 1;
    if (weft_thread_start(&os_cons, consumer, NULL, NULL) != 0)
        return 1;
    for (int p = 0; p < 2; p++)
        if (weft_thread_start(&os_prod[p], producer, (void *)(intptr_t)p, NULL) != 0)
            return 1;
    for (int p = 2; p < NPROD; p++)
        if (weft_group_spawn(producers, producer, (void *)(intptr_t)p, NULL, NULL) != 0)
            return 1;

    /* Producers of both kinds done, then shut down; consumers drain. */
    rc = weft_group_wait(producers, WEFT_FOREVER);
    for (int p = 0; p < 2; p++)
        if (weft_thread_join(os_prod[p], &r, WEFT_FOREVER) != 0 || r != 0)
            rc = rc ? rc : -EIO;
    if (rc != 0) {
        fprintf(stderr, "a producer failed: %s\n", weft_strerror(rc));
        return 1;
    }
    weft_queue_shutdown(q, false);
    rc = weft_group_wait(consumers, weft_deadline_in(30 * WEFT_NSEC_PER_SEC));
    if (weft_thread_join(os_cons, &r, WEFT_FOREVER) != 0 || r != 0)
        rc = rc ? rc : -EIO;
    if (rc != 0) {
        fprintf(stderr, "a consumer failed: %s\n", weft_strerror(rc));
        return 1;
    }

    for (long i = 0; i < total; i++) {
        unsigned c = atomic_load(&seen[i]);
        lost += c == 0;
        dup += c > 1;
    }
    printf("%ld items from 2 OS and 2 green producers\n", total);
    printf("green consumers got %ld, the OS consumer got %ld\n",
           atomic_load(&got_by_green), atomic_load(&got_by_os));
    printf("lost %ld, duplicated %ld, left in queue %zu\n", lost, dup,
           weft_queue_size(q));
    int ok = lost == 0 && dup == 0 && weft_queue_size(q) == 0 &&
             atomic_load(&got_by_green) + atomic_load(&got_by_os) == total &&
             weft_group_destroy(producers) == 0 &&
             weft_group_destroy(consumers) == 0 &&
             weft_queue_destroy(q, NULL) == 0;
    free((void *)seen);
    printf("%s\n", ok ? "every item delivered exactly once"
                      : "green_mixed_queue: FAILED");
    return ok ? 0 : 1;
}
