/* poller.h - the netpoller's interface to the scheduler, the monitor and
 * the debug layer (see poller.c for the design). */
#ifndef WEFT_POLLER_H
#define WEFT_POLLER_H

#include <stdbool.h>
#include <stdint.h>

/* How many green threads are parked on the poller now (for the deadlock
 * check: a green thread waiting for I/O can be woken from outside). */
long weft__poller_waiters(void);

/* Whether anyone waits for readiness, i.e. whether collecting events can
 * make a green thread runnable.  A relaxed read: callers poll again later
 * anyway. */
bool weft__poller_wanted(void);

/* When events were last collected (monotonic ns; 0: never). */
int64_t weft__poller_last_poll(void);

/* Collect readiness events, waiting until the absolute deadline at most
 * (WEFT_NOW: not at all), and wake the green threads waiting for them.
 * Returns the number of events.  Any thread: on a worker the woken green
 * threads go to its own run queue, elsewhere to the global queue. */
int weft__poller_poll(int64_t deadline);

/* Make a thread blocked in weft__poller_poll return.  Async-signal-safe. */
void weft__poller_interrupt(void);

#endif
