/* producer_consumer.c - the seed's pipeline: a producer and a consumer
 * joined by a bounded queue, stopped by an event.
 *
 * In the seed (004) the producer puts random "messages" into
 * queue.Queue(maxsize=10) until main sets an event; the consumer gets until
 * the event is set and the queue is empty.  That loop has a well-known hole:
 * if the queue empties after the consumer checked it, the consumer blocks
 * in get() forever.  weft closes it with the queue's shutdown (Python 3.13):
 * the producer, told to stop, shuts the queue down gracefully; the consumer
 * drains what is left and its get then fails with -EPIPE, so it stops
 * exactly when every message has been stored, never earlier, never hanging.
 *
 * Usage: producer_consumer [run-ms]   (default 200)
 */
#include <stdio.h>
#include <stdlib.h>

#include "weft.h"

struct pipeline {
    weft_queue *q;
    weft_event stop;
    long produced, consumed;      /* each written by one thread only */
    long sum_produced, sum_consumed;
};

static int producer(void *arg)
{
    struct pipeline *p = arg;
    unsigned seed = 42;

    while (!weft_event_is_set(&p->stop)) {
        long message = 1 + (long)(rand_r(&seed) % 101);
        weft_debug("Producer got message: %ld", message);
        /* Wait for room, but look at the event at least every 10 ms. */
        int rc = weft_queue_put(p->q, (void *)message, weft_deadline_ms(10));
        if (rc == -ETIMEDOUT)
            continue;
        if (rc != 0)
            return rc;
        p->produced++;
        p->sum_produced += message;
    }
    weft_info("Producer received event. Exiting");
    weft_queue_shutdown(p->q, false); /* graceful: let the consumer drain */
    return 0;
}

static int consumer(void *arg)
{
    struct pipeline *p = arg;
    void *item;
    int rc;

    while ((rc = weft_queue_get(p->q, &item, WEFT_FOREVER)) == 0) {
        long message = (long)item;
        weft_debug("Consumer storing message: %ld (size=%zu)", message,
                   weft_queue_size(p->q));
        p->consumed++;
        p->sum_consumed += message;
        weft_queue_task_done(p->q);
    }
    weft_info("Consumer: queue shut down and drained. Exiting");
    return rc == -EPIPE ? 0 : rc;
}

int main(int argc, char **argv)
{
    long run_ms = argc > 1 ? atol(argv[1]) : 200;
    struct pipeline p = {.stop = WEFT_EVENT_INIT};
    weft_thread *prod, *cons;
    weft_thread_opts po = {"producer", 0, 0}, co = {"consumer", 0, 0};
    int prc = 0, crc = 0;

    if (weft_queue_create(&p.q, WEFT_QUEUE_FIFO, 10) != 0)
        return 1;
    if (weft_thread_start(&prod, producer, &p, &po) != 0 ||
        weft_thread_start(&cons, consumer, &p, &co) != 0)
        return 1;
    weft_sleep_until(weft_deadline_ms(run_ms));
    weft_info("Main: about to set event");
    weft_event_set(&p.stop);
    weft_thread_join(prod, &prc, WEFT_FOREVER);
    weft_thread_join(cons, &crc, WEFT_FOREVER);
    weft_queue_join(p.q, WEFT_FOREVER); /* every message marked done */

    printf("produced %ld messages (sum %ld), consumed %ld (sum %ld), "
           "left in queue %zu\n",
           p.produced, p.sum_produced, p.consumed, p.sum_consumed,
           weft_queue_size(p.q));
    bool ok = prc == 0 && crc == 0 && p.produced == p.consumed &&
              p.sum_produced == p.sum_consumed && p.produced > 0;
    printf("pipeline: %s\n", ok ? "every message delivered exactly once"
                                : "MESSAGES LOST");
    weft_queue_destroy(p.q, NULL);
    return ok ? 0 : 1;
}
