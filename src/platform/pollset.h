/* pollset.h - the poller backend: one process-wide readiness set (epoll on
 * Linux) plus a way to interrupt a thread blocked in it.  Only this file
 * and pollset_epoll.c know which system call is behind it; src/io/poller.c
 * builds the netpoller on top.
 *
 * Descriptors are added once, edge-triggered, for both directions: the set
 * reports a change of readiness (a new edge), not a level, so a reader that
 * saw EAGAIN must wait for the next event.  Each descriptor carries a
 * 64-bit token chosen by the caller and returned with its events.
 */
#ifndef WEFT_POLLSET_H
#define WEFT_POLLSET_H

#include <stdint.h>

enum {
    WEFT__PE_IN = 1,   /* readable, or the peer shut its side down */
    WEFT__PE_OUT = 2,  /* writable */
    WEFT__PE_ERR = 4,  /* error or hang-up: wakes both directions */
};

typedef struct weft__pollev {
    uint64_t token;
    uint32_t events;   /* WEFT__PE_* */
} weft__pollev;

/* Create the set (idempotent; thread-safe).  0 or a negative errno code. */
int weft__pollset_open(void);

/* Add fd with token.  0, -EPERM for a descriptor that cannot be polled
 * (a regular file or a directory: always ready), or another negative errno
 * code. */
int weft__pollset_add(int fd, uint64_t token);

/* Remove fd (errors ignored: a closed descriptor has left already). */
void weft__pollset_del(int fd);

/* Collect up to max events, waiting until one comes, the absolute
 * monotonic deadline passes (WEFT_FOREVER: no limit; 0: do not wait), or
 * weft__pollset_interrupt is called.  Returns the number of events (0 on
 * timeout or interruption) or a negative errno code.  Several threads may
 * call it at once; an edge is reported to one of them. */
int weft__pollset_wait(weft__pollev *ev, int max, int64_t deadline);

/* Make a thread blocked in weft__pollset_wait (now or next) return.
 * Async-signal-safe. */
void weft__pollset_interrupt(void);

#endif
