/* weft/io.h - file-descriptor operations that park a green thread, not its
 * worker, and the offload pool for calls that cannot be made non-blocking.
 *
 * In a green thread each operation is tried at once; if the descriptor is
 * not ready the green thread parks on the poller (epoll, edge-triggered,
 * each descriptor registered once at its first use) and its worker runs
 * other green threads meanwhile.  In an OS thread the same call blocks the
 * thread in poll(2).  Either way the call honours its deadline and, in a
 * green thread, cancellation (-ECANCELED).
 *
 * A descriptor used with these calls is switched to O_NONBLOCK at its first
 * use and must be closed with weft_close (or handed back with
 * weft_fd_forget before a plain close): weft_close wakes every green thread
 * parked on it with -EBADF and makes sure no readiness of the old
 * descriptor is ever reported to a later one that reuses its number.
 *
 * Return values follow read(2)/write(2) where they return a count: a count
 * >= 0, or a negative errno code (never -1 with errno).  Others return 0 or
 * a negative errno code, as everywhere in weft.
 */
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Readiness to wait for (may be or'ed). */
#define WEFT_READABLE 1
#define WEFT_WRITABLE 2

/* Wait until fd is ready for one of events.  0 (ready, or an error or
 * hang-up is pending: the next operation will report it), -ETIMEDOUT,
 * -ECANCELED, -EBADF (fd closed by weft_close while waiting, or not open),
 * -EINVAL (events empty). */
int weft_fd_wait(int fd, int events, int64_t deadline);

/* One read(2): the bytes read (at least 1), 0 at end of file, or a negative
 * errno code (-ETIMEDOUT, -ECANCELED, -EBADF, -ECONNRESET...). */
ssize_t weft_read(int fd, void *buf, size_t len, int64_t deadline);
/* One write(2): the bytes written (at least 1 when len > 0), or a negative
 * errno code (-EPIPE: SIGPIPE is never raised by weft's socket writes). */
ssize_t weft_write(int fd, const void *buf, size_t len, int64_t deadline);
/* Write all len bytes, looping over partial writes.  0 when all are
 * written, else a negative errno code; *done (if not NULL) gets the number
 * of bytes written either way. */
int weft_write_all(int fd, const void *buf, size_t len, size_t *done,
                   int64_t deadline);
ssize_t weft_readv(int fd, const struct iovec *iov, int iovcnt,
                   int64_t deadline);
ssize_t weft_writev(int fd, const struct iovec *iov, int iovcnt,
                    int64_t deadline);
/* recv(2)/send(2) with their flags (send adds MSG_NOSIGNAL). */
ssize_t weft_recv(int fd, void *buf, size_t len, int flags,
                  int64_t deadline);
ssize_t weft_send(int fd, const void *buf, size_t len, int flags,
                  int64_t deadline);

/* Accept a connection on listening socket fd.  Returns the new descriptor
 * (non-blocking, close-on-exec) or a negative errno code.  addr/addrlen may
 * be NULL. */
int weft_accept(int fd, struct sockaddr *addr, socklen_t *addrlen,
                int64_t deadline);
/* Connect socket fd to addr: 0 or a negative errno code (-ECONNREFUSED,
 * -ETIMEDOUT...).  After -ETIMEDOUT or -ECANCELED the socket's state is
 * unspecified: close it. */
int weft_connect(int fd, const struct sockaddr *addr, socklen_t addrlen,
                 int64_t deadline);

/* Close fd: later operations on it fail with -EBADF, parked ones end with
 * -EBADF, it leaves the poller, system calls on it already in flight in
 * other threads are waited for (they do not block: a few microseconds; a
 * read of a regular file takes what it takes), and only then close(2), so
 * no operation can reach the next descriptor that takes its number.  0 or
 * a negative errno code (-EBADF for a descriptor being closed already).
 * An OS thread blocked waiting on fd (in poll) is not woken by it. */
int weft_close(int fd);
/* Forget fd without closing it (the caller will close it some other way).
 * Parked operations on it end with -EBADF.  0, or -EBADF if fd < 0. */
int weft_fd_forget(int fd);

/* TCP conveniences with numeric addresses ("127.0.0.1", "::1"; NULL or ""
 * means the IPv4 loopback), so that no name lookup blocks.  listen: a
 * non-blocking listening socket with SO_REUSEADDR (port 0: any free port;
 * backlog <= 0: SOMAXCONN); returns the descriptor or a negative errno code.
 * dial: a connected non-blocking socket with TCP_NODELAY, or a negative
 * errno code.  port_of: the local port of a socket, or a negative code. */
int weft_tcp_listen(const char *host, int port, int backlog);
int weft_tcp_dial(const char *host, int port, int64_t deadline);
int weft_sock_port(int fd);

/* Run fn(arg) on one of weft's offload OS threads (started as needed, at
 * most WEFT_OFFLOAD_THREADS, default 64; idle ones exit after a few
 * seconds) while the caller parks: for calls that block in the kernel and
 * have no non-blocking form (regular files, getaddrinfo) or long
 * computations.  0 with *result (if not NULL) set to fn's return value;
 * -ETIMEDOUT / -ECANCELED if the deadline passed or the caller was
 * cancelled before fn started (fn then never runs); once fn has started
 * the call waits for it to return, since an OS thread cannot be stopped
 * safely in the middle of a call.  -EINVAL if fn is NULL.  Any thread. */
int weft_offload(int (*fn)(void *arg), void *arg, int *result,
                 int64_t deadline);

#ifdef __cplusplus
}
#endif
#endif
