/* quickstart.c - the README's example: a producer (main) and a consumer
 * thread through a bounded queue, shut down gracefully when done.  Kept
 * here, built and run by the tests, so that the README's code is known to
 * work. */
#include <stdio.h>
#include <weft.h>

static weft_queue *q;

static int consumer(void *arg)
{
    void *item;
    int rc;
    while ((rc = weft_queue_get(q, &item, weft_deadline_ms(1000))) == 0) {
        weft_info("got %ld", (long)item);       /* "... INFO  [consumer] got 1" */
        weft_queue_task_done(q);
    }
    return rc == -EPIPE ? 0 : rc;                /* -EPIPE: shut down and drained */
}

int main(void)
{
    weft_thread *t;
    weft_thread_opts opts = {.name = "consumer", .daemon = 0};

    weft_queue_create(&q, WEFT_QUEUE_FIFO, 10);  /* bounded: put waits when full */
    weft_thread_start(&t, consumer, NULL, &opts);
    for (long i = 1; i <= 100; i++)
        weft_queue_put(q, (void *)i, WEFT_FOREVER);
    weft_queue_shutdown(q, false);               /* graceful: let it drain */
    int rc;
    weft_thread_join(t, &rc, WEFT_FOREVER);
    printf("consumer: %s\n", weft_strerror(rc));
    weft_queue_destroy(q, NULL);
    return 0;
}
