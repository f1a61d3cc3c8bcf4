/* io.h - between the descriptor operations (fd.c) and the netpoller
 * (poller.c). */
#ifndef WEFT_IO_INTERNAL_H
#define WEFT_IO_INTERNAL_H

#include <stdint.h>

typedef struct weft__pfd weft__pfd;

/* What an operation saw before its system call: the entry, the
 * descriptor's generation and its edge counts. */
typedef struct weft__io_snap {
    weft__pfd *p;
    int fd;
    uint32_t gen, rseq, wseq;
    uint32_t notsock;   /* known not to be a socket: use write(2) */
} weft__io_snap;

/* Get fd ready for weft's I/O (O_NONBLOCK, in the pollset; once) and take
 * a snapshot.  0, -EBADF, or another negative errno code. */
int weft__io_prepare(int fd, weft__io_snap *s);

/* After the system call said EAGAIN: wait for an edge in events
 * (WEFT_READABLE/WEFT_WRITABLE) since s.  0 (try again), -ETIMEDOUT,
 * -ECANCELED, -EBADF (closed or forgotten meanwhile). */
int weft__io_wait(const weft__io_snap *s, int events, int64_t deadline);

/* Whether s's descriptor is ready for events now (a level, asked of the
 * kernel without waiting): 1, 0, or a negative errno code (-EBADF). */
int weft__io_ready(const weft__io_snap *s, int events);

/* send(2) on s's descriptor said ENOTSOCK: remember it. */
void weft__io_mark_notsock(const weft__io_snap *s);

/* fd leaves weft: waiters get -EBADF, later events are dropped.  0 or
 * -EBADF for a negative fd. */
int weft__io_forget(int fd);

/* fd was just created by weft (accept, socket): forget any state left by
 * an earlier descriptor of the same number closed behind weft's back. */
void weft__io_fresh(int fd);

#endif
