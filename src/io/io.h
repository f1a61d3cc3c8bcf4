/* io.h - between the descriptor operations (fd.c) and the netpoller
 * (poller.c). */
#ifndef WEFT_IO_INTERNAL_H
#define WEFT_IO_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct weft__pfd weft__pfd;

/* What an operation saw before its system call: the entry, the
 * descriptor's generation and its edge counts. */
typedef struct weft__io_snap {
    weft__pfd *p;
    int fd;
    uint32_t gen, rseq, wseq;
    uint32_t notsock;   /* known not to be a socket: use write(2) */
} weft__io_snap;

/* Get fd ready for weft's I/O (O_NONBLOCK, in the pollset; once), take a
 * snapshot, and hold a reference for the system call to come, which
 * weft__io_release drops right after it (never hold one across a wait).
 * 0, -EBADF (closing or not open), or another negative errno code. */
int weft__io_prepare(int fd, weft__io_snap *s);
void weft__io_release(const weft__io_snap *s);

/* After the system call said EAGAIN: wait for an edge in events
 * (WEFT_READABLE/WEFT_WRITABLE) since s.  0 (try again), -ETIMEDOUT,
 * -ECANCELED, -EBADF (closed or forgotten meanwhile). */
int weft__io_wait(const weft__io_snap *s, int events, int64_t deadline);

/* Whether s's descriptor is ready for events now (a level, asked of the
 * kernel without waiting): 1, 0, or a negative errno code (-EBADF). */
int weft__io_ready(const weft__io_snap *s, int events);

/* Whether a read at s's edge count would find the buffer empty (a short
 * read of this stream socket was made at that count): then wait first. */
bool weft__io_known_empty(const weft__io_snap *s);
/* After a read of asked bytes that returned got (or -errno). */
void weft__io_read_done(const weft__io_snap *s, size_t asked, ssize_t got);

/* send(2) on s's descriptor said ENOTSOCK: remember it. */
void weft__io_mark_notsock(const weft__io_snap *s);

/* Make fd an internal descriptor of weft's: whoever collects its events
 * calls hook (which must consume its readiness, e.g. drain a pipe) instead
 * of waking waiters.  0 or a negative errno code. */
int weft__io_set_hook(int fd, void (*hook)(void));

/* fd leaves weft: waiters get -EBADF, later events are dropped.  0 or
 * -EBADF for a negative fd. */
int weft__io_forget(int fd);

/* weft_close: new calls fail with -EBADF, parked ones are woken with it,
 * calls in flight are waited for, then close(2).  Its result. */
int weft__io_close(int fd);

/* fd was just created non-blocking by weft (accept, socket): forget any
 * state left by an earlier descriptor of the same number closed behind
 * weft's back, and register it (no fcntl needed). */
void weft__io_fresh(int fd);

#endif
