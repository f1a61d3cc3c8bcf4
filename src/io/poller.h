/* poller.h - the netpoller's interface to the scheduler and the debug
 * layer (see poller.c for the design). */
#ifndef WEFT_POLLER_H
#define WEFT_POLLER_H

/* How many green threads are parked on the poller now (for the deadlock
 * check: a green thread waiting for I/O can be woken from outside). */
long weft__poller_waiters(void);

#endif
