/* wire.c - the byte-level plumbing of the process pool: frames between the
 * parent and a worker, packets (with fds) between the parent and the
 * forkserver, and whole blocking writes.
 *
 * Design: a frame is a fixed header (type, magic, body length) and a body
 * written with weft_bytes, built in one buffer so the parent sends it with
 * as few writes as the socket allows.  The parent's manager does its own
 * non-blocking, resumable reads and writes (manager.c); the helpers here
 * are for the worker and the forkserver, which are single-threaded and may
 * block.  Every send uses MSG_NOSIGNAL: a peer that died must give EPIPE,
 * never a SIGPIPE that kills the sender.
 *   (Rejected: SOCK_SEQPACKET for the worker sockets too.  A packet's size
 *   is bounded by the socket buffer, and task inputs and outputs are not.)
 *
 * Locking: none; each socket has one reader and one writer.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "process/process.h"

int weft__frame_begin(weft_bytes *b, uint32_t type)
{
    weft__frame h = {type, WEFT__FRAME_MAGIC, 0};
    weft_bytes_clear(b);
    return weft_bytes_append(b, &h, sizeof h);
}

void weft__frame_end(weft_bytes *b)
{
    uint64_t len = b->len - sizeof(weft__frame);
    memcpy(b->data + offsetof(weft__frame, len), &len, sizeof len);
}

int weft__frame_task(weft_bytes *b, const weft__proc_entry *entry,
                     uint64_t n)
{
    int rc = weft__frame_begin(b, WEFT__FRAME_TASK);
    if (rc == 0)
        rc = weft_bytes_put_str(b, entry->module);
    if (rc == 0)
        rc = weft_bytes_put_u64(b, entry->offset);
    if (rc == 0)
        rc = weft_bytes_put_u64(b, n);
    return rc;
}

int weft__io_write_full(int fd, const void *p, size_t n)
{
    const unsigned char *c = p;
    while (n > 0) {
        ssize_t put = send(fd, c, n, MSG_NOSIGNAL);
        if (put < 0 && errno == EINTR)
            continue;
        if (put < 0)
            return -errno;
        c += put;
        n -= (size_t)put;
    }
    return 0;
}

int weft__fs_send(int sock, const weft__fs_msg *m, const int *fds, int nfds)
{
    struct iovec iov = {(void *)m, sizeof *m};
    union {
        char buf[CMSG_SPACE(2 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh;
    int real[2], nreal = 0;

    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    for (int i = 0; i < nfds && i < 2; i++)
        if (fds[i] >= 0)
            real[nreal++] = fds[i];
    if (nreal > 0) {
        struct cmsghdr *c;
        memset(&u, 0, sizeof u);
        mh.msg_control = u.buf;
        mh.msg_controllen = CMSG_SPACE((size_t)nreal * sizeof(int));
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nreal * sizeof(int));
        memcpy(CMSG_DATA(c), real, (size_t)nreal * sizeof(int));
    }
    for (;;) {
        ssize_t put = sendmsg(sock, &mh, MSG_NOSIGNAL);
        if (put >= 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

int weft__fs_recv(int sock, weft__fs_msg *m, int fds[2])
{
    struct iovec iov = {m, sizeof *m};
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh;
    ssize_t got;

    fds[0] = fds[1] = -1;
    for (;;) {
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof u.buf;
        got = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (got >= 0 || errno != EINTR)
            break;
    }
    if (got < 0)
        return errno == EWOULDBLOCK ? -EAGAIN
               : errno == ECONNRESET ? -EPIPE : -errno;
    if (got == 0)
        return -EPIPE;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            int got_fds[4];
            if (n > 4)
                n = 4;
            memcpy(got_fds, CMSG_DATA(c), n * sizeof(int));
            for (size_t i = 0; i < n; i++) {
                if (i < 2 && fds[i] < 0)
                    fds[i] = got_fds[i];
                else
                    close(got_fds[i]); /* more than we asked for */
            }
        }
    }
    if ((size_t)got != sizeof *m) {
        for (int i = 0; i < 2; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        return -EPROTO;
    }
    return 0;
}
