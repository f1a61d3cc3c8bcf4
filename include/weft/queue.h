/* weft/queue.h - multi-producer multi-consumer queues (Python's queue
 * module: Queue, LifoQueue, PriorityQueue) of void * items.
 *
 * A queue is FIFO, LIFO or priority (lowest priority first, and items of
 * equal priority come out in the order they were put: the queue keeps a
 * sequence number, so callers need not).  It is bounded (maxsize > 0: put
 * waits while it is full) or unbounded (maxsize 0).
 *
 * Unfinished tasks.  Every put adds one unfinished task; every
 * weft_queue_task_done removes one; weft_queue_join waits until none is left.
 * Calling task_done more often than put is -EOVERFLOW and changes nothing.
 *
 * Shutdown (Python 3.13's semantics).  weft_queue_shutdown is one-way.
 * After it, put fails with -EPIPE, and producers blocked in put wake with
 * -EPIPE.  A graceful shutdown lets consumers drain what is left; get fails
 * with -EPIPE once the queue is empty, and consumers blocked in get wake with
 * -EPIPE.  An immediate shutdown also takes every queued item out of the
 * queue (get fails with -EPIPE at once) and subtracts them from the
 * unfinished tasks; nothing is lost: those items wait in the queue's
 * undelivered list until weft_queue_take_undelivered hands them back.
 *
 * Blocking calls take an absolute deadline (weft/time.h) and are cancellation
 * points in green threads.  Every call is safe from any thread.
 */
#ifndef WEFT_QUEUE_H
#define WEFT_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_queue weft_queue;

typedef enum weft_queue_kind {
    WEFT_QUEUE_FIFO = 0,
    WEFT_QUEUE_LIFO = 1,
    WEFT_QUEUE_PRIORITY = 2,
} weft_queue_kind;

/* maxsize 0: unbounded.  -EINVAL on a bad kind, -ENOMEM. */
int weft_queue_create(weft_queue **out, weft_queue_kind kind, size_t maxsize);

/* Free the queue.  -EBUSY (and nothing freed) while anyone waits on it.
 * Items still inside (queued or undelivered) are passed to free_item if it
 * is not NULL, so that nothing is leaked.  A consumer may destroy the queue
 * as soon as it has got the last item (or a join has returned): destroy
 * waits for the put (task_done) that delivered it to finish touching the
 * queue. */
int weft_queue_destroy(weft_queue *q, void (*free_item)(void *item));

/* Put an item (priority 0 for a priority queue).  0, -ETIMEDOUT (still
 * full at the deadline), -EPIPE (shut down), -ECANCELED, -ENOMEM (the
 * storage could not grow: for an unbounded FIFO queue, a new segment could
 * not be allocated).  On any error the item was not queued and stays the
 * caller's.  If a consumer is already waiting, the item goes straight to it
 * (the oldest item, on a FIFO queue), and parked putters are served in
 * order.  Unbounded FIFO queues and bounded ones of maxsize 2 to 65536 are
 * lock-free while neither side has to wait; there a put or get that
 * overlaps another one still finishing may see the queue full (empty) for
 * those few instructions. */
int weft_queue_put(weft_queue *q, void *item, int64_t deadline);
/* Put with a priority; on FIFO and LIFO queues the priority is ignored. */
int weft_queue_put_prio(weft_queue *q, void *item, int64_t prio,
                        int64_t deadline);
/* Never waits: -EAGAIN when full (and -EPIPE, -ENOMEM as above). */
int weft_queue_put_nowait(weft_queue *q, void *item);

/* Take an item into *item.  0, -ETIMEDOUT (still empty at the deadline),
 * -EPIPE (shut down and, for a graceful shutdown, empty), -ECANCELED. */
int weft_queue_get(weft_queue *q, void **item, int64_t deadline);
/* The same, also giving the item's priority (0 on FIFO/LIFO); prio may be
 * NULL. */
int weft_queue_get_prio(weft_queue *q, void **item, int64_t *prio,
                        int64_t deadline);
/* Never waits: -EAGAIN when empty (-EPIPE as above). */
int weft_queue_get_nowait(weft_queue *q, void **item);

/* Snapshots, as in Python: each is exact when taken, apart from puts and
 * gets in progress at that instant (a thread always sees its own earlier
 * puts and gets), but may be stale by the time the caller looks.  After an
 * immediate shutdown the queue is empty (the undelivered items do not
 * count). */
size_t weft_queue_size(const weft_queue *q);
bool weft_queue_empty(const weft_queue *q);
bool weft_queue_full(const weft_queue *q);
size_t weft_queue_maxsize(const weft_queue *q);
/* How many threads are parked in put, get or join right now (a snapshot,
 * for tests, monitoring and deadlock reports; destroy is -EBUSY while it
 * is not 0). */
size_t weft_queue_waiters(const weft_queue *q);

/* One fetched item has been processed.  -EOVERFLOW if called more times
 * than items were put. */
int weft_queue_task_done(weft_queue *q);
/* Wait until every item put has been marked done: returns 0 once the count
 * of unfinished tasks has been zero at some moment since the call.  0,
 * -ETIMEDOUT, -ECANCELED. */
int weft_queue_join(weft_queue *q, int64_t deadline);
size_t weft_queue_unfinished(const weft_queue *q);

/* Shut the queue down (see above); a second call may turn a graceful
 * shutdown into an immediate one, never back. */
void weft_queue_shutdown(weft_queue *q, bool immediate);
bool weft_queue_is_shutdown(const weft_queue *q);

/* Items an immediate shutdown took out of the queue, in the order get
 * would have returned them (oldest first for FIFO, newest first for LIFO,
 * lowest priority first): moves up to cap of them into out and returns how
 * many it moved; call until it returns 0.  0 before an immediate shutdown.
 * Any thread. */
size_t weft_queue_take_undelivered(weft_queue *q, void **out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
