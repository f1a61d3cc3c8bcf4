/* fd.c - the descriptor operations of weft/io.h: try the system call, and
 * on EAGAIN wait for the descriptor through the netpoller (poller.c), then
 * try again.
 *
 * Every operation is the same loop: take a snapshot of the descriptor's
 * edge counts (weft__io_prepare), make the non-blocking call, and if it
 * would block, wait for an edge in the needed direction since the
 * snapshot (weft__io_wait: a green thread parks, an OS thread polls) until
 * the deadline.  EINTR retries.  The deadline and cancellation are checked
 * only when the call would block, as everywhere in weft: an operation that
 * can complete at once does so.
 *
 * Writes to sockets go through send(2)/sendmsg(2) with MSG_NOSIGNAL, so a
 * peer that has gone away gives -EPIPE instead of killing the process with
 * SIGPIPE; a descriptor that turns out not to be a socket (a pipe) is
 * remembered and written with write(2).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "io/io.h"
#include "weft/io.h"
#include "weft/time.h"

enum op { READ, WRITE, READV, WRITEV, RECV, SEND, ACCEPT };

struct args {
    void *buf;
    const void *cbuf;
    size_t len;
    const struct iovec *iov;
    int iovcnt;
    int flags;
    struct sockaddr *addr;
    socklen_t *addrlen;
};

static bool writes(enum op op)
{
    return op == WRITE || op == WRITEV || op == SEND;
}

/* One attempt: the call's result, or -errno. */
static ssize_t attempt(enum op op, const weft__io_snap *s, struct args *a)
{
    struct msghdr m;
    ssize_t n = -1;

    switch (op) {
    case READ:
        n = read(s->fd, a->buf, a->len);
        break;
    case RECV:
        n = recv(s->fd, a->buf, a->len, a->flags);
        break;
    case READV:
        n = readv(s->fd, a->iov, a->iovcnt);
        break;
    case WRITE:
    case SEND:
        if (op == SEND || !s->notsock) {
            n = send(s->fd, a->cbuf, a->len, a->flags | MSG_NOSIGNAL);
            if (n >= 0 || errno != ENOTSOCK || op == SEND)
                break;
            weft__io_mark_notsock(s);
        }
        n = write(s->fd, a->cbuf, a->len);
        break;
    case WRITEV:
        if (!s->notsock) {
            memset(&m, 0, sizeof m);
            m.msg_iov = (struct iovec *)a->iov;
            m.msg_iovlen = (size_t)a->iovcnt;
            n = sendmsg(s->fd, &m, MSG_NOSIGNAL);
            if (n >= 0 || errno != ENOTSOCK)
                break;
            weft__io_mark_notsock(s);
        }
        n = writev(s->fd, a->iov, a->iovcnt);
        break;
    case ACCEPT:
        n = accept4(s->fd, a->addr, a->addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        break;
    }
    return n >= 0 ? n : -errno;
}

static ssize_t run(int fd, enum op op, struct args *a, int64_t deadline)
{
    weft__io_snap s;
    ssize_t n;
    bool plain;
    int rc;

    for (;;) {
        rc = weft__io_prepare(fd, &s);
        if (rc != 0)
            return rc;
        plain = (op == READ || op == RECV) && a->flags == 0;
        if (plain && deadline != WEFT_NOW && weft__io_known_empty(&s)) {
            weft__io_release(&s);
            n = -EAGAIN; /* the last read emptied it and no edge came */
        } else {
            n = attempt(op, &s, a);
            weft__io_release(&s);
            if (plain)
                weft__io_read_done(&s, a->len, n);
        }
        if (n >= 0 || (n != -EAGAIN && n != -EWOULDBLOCK && n != -EINTR))
            return n;
        if (n == -EINTR)
            continue;
        rc = weft__io_wait(&s, writes(op) ? WEFT_WRITABLE : WEFT_READABLE,
                           deadline);
        if (rc != 0)
            return rc;
    }
}

int weft_fd_wait(int fd, int events, int64_t deadline)
{
    weft__io_snap s;
    int rc;

    if ((events & (WEFT_READABLE | WEFT_WRITABLE)) == 0 ||
        (events & ~(WEFT_READABLE | WEFT_WRITABLE)) != 0)
        return -EINVAL;
    rc = weft__io_prepare(fd, &s);
    if (rc != 0)
        return rc;
    /* Edge-triggered: there is no edge to wait for if the descriptor is
     * ready already, so ask the kernel first. */
    rc = weft__io_ready(&s, events);
    weft__io_release(&s);
    if (rc != 0)
        return rc > 0 ? 0 : rc;
    return weft__io_wait(&s, events, deadline);
}

ssize_t weft_read(int fd, void *buf, size_t len, int64_t deadline)
{
    struct args a = {.buf = buf, .len = len};
    return run(fd, READ, &a, deadline);
}

ssize_t weft_write(int fd, const void *buf, size_t len, int64_t deadline)
{
    struct args a = {.cbuf = buf, .len = len};
    return run(fd, WRITE, &a, deadline);
}

int weft_write_all(int fd, const void *buf, size_t len, size_t *done,
                   int64_t deadline)
{
    const char *p = buf;
    size_t off = 0;
    ssize_t n;
    int rc = 0;

    while (off < len) {
        n = weft_write(fd, p + off, len - off, deadline);
        if (n < 0) {
            rc = (int)n;
            break;
        }
        off += (size_t)n;
    }
    if (done != NULL)
        *done = off;
    return rc;
}

ssize_t weft_readv(int fd, const struct iovec *iov, int iovcnt,
                   int64_t deadline)
{
    struct args a = {.iov = iov, .iovcnt = iovcnt};
    return run(fd, READV, &a, deadline);
}

ssize_t weft_writev(int fd, const struct iovec *iov, int iovcnt,
                    int64_t deadline)
{
    struct args a = {.iov = iov, .iovcnt = iovcnt};
    return run(fd, WRITEV, &a, deadline);
}

ssize_t weft_recv(int fd, void *buf, size_t len, int flags,
                  int64_t deadline)
{
    struct args a = {.buf = buf, .len = len, .flags = flags};
    return run(fd, RECV, &a, deadline);
}

ssize_t weft_send(int fd, const void *buf, size_t len, int flags,
                  int64_t deadline)
{
    struct args a = {.cbuf = buf, .len = len, .flags = flags};
    return run(fd, SEND, &a, deadline);
}

int weft_accept(int fd, struct sockaddr *addr, socklen_t *addrlen,
                int64_t deadline)
{
    struct args a = {.addr = addr, .addrlen = addrlen};
    ssize_t n = run(fd, ACCEPT, &a, deadline);

    if (n >= 0)
        weft__io_fresh((int)n);
    return (int)n;
}

int weft_connect(int fd, const struct sockaddr *addr, socklen_t addrlen,
                 int64_t deadline)
{
    weft__io_snap s;
    socklen_t len = sizeof(int);
    int rc, err = 0;

    rc = weft__io_prepare(fd, &s);
    if (rc != 0)
        return rc;
    rc = connect(fd, addr, addrlen) == 0 ? 0 : -errno;
    weft__io_release(&s);
    if (rc != -EINPROGRESS && rc != -EINTR)
        return rc;
    /* In progress: the socket turns writable when it is done, either way.
     * A non-blocking connect interrupted by a signal goes on in the
     * background too. */
    for (;;) {
        rc = weft__io_prepare(fd, &s);
        if (rc != 0)
            return rc;
        rc = weft__io_ready(&s, WEFT_WRITABLE);
        weft__io_release(&s);
        if (rc < 0)
            return rc;
        if (rc > 0)
            break;
        rc = weft__io_wait(&s, WEFT_WRITABLE, deadline);
        if (rc != 0)
            return rc;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        return -errno;
    return -err;
}

int weft_close(int fd)
{
    return weft__io_close(fd);
}

int weft_fd_forget(int fd)
{
    return weft__io_forget(fd);
}

/* ---- TCP conveniences -------------------------------------------------- */

/* Parse a numeric host and port into ss; the address family or -EINVAL. */
static int parse(const char *host, int port, struct sockaddr_storage *ss,
                 socklen_t *len)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;

    if (port < 0 || port > 65535)
        return -EINVAL;
    memset(ss, 0, sizeof *ss);
    if (host == NULL || host[0] == '\0')
        host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof *v4;
        return AF_INET;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *len = sizeof *v6;
        return AF_INET6;
    }
    return -EINVAL;
}

static int new_socket(int family)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    weft__io_fresh(fd);
    return fd;
}

int weft_tcp_listen(const char *host, int port, int backlog)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, one = 1, af = parse(host, port, &ss, &len), rc;

    if (af < 0)
        return af;
    fd = new_socket(af);
    if (fd < 0)
        return fd;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 ||
        listen(fd, backlog > 0 ? backlog : SOMAXCONN) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

int weft_tcp_dial(const char *host, int port, int64_t deadline)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, one = 1, af = parse(host, port, &ss, &len), rc;

    if (af < 0)
        return af;
    if (port == 0)
        return -EINVAL;
    fd = new_socket(af);
    if (fd < 0)
        return fd;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    rc = weft_connect(fd, (struct sockaddr *)&ss, len, deadline);
    if (rc != 0) {
        (void)weft_close(fd);
        return rc;
    }
    return fd;
}

int weft_sock_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;

    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -errno;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -EAFNOSUPPORT;
}
