/* echo_epoll.c - the C anchor of the echo benchmarks: a plain
 * single-threaded, non-blocking epoll echo server, written the way a C
 * programmer would without a framework.
 *
 * Design.  One thread, one level-triggered epoll set: the listening socket
 * (accept4 until EAGAIN) and every connection, registered for EPOLLIN.  A
 * readable connection gets one read(2) of up to BUF bytes and that many
 * bytes written back at once; only if the write is short (the peer is not
 * reading) are the rest kept in a buffer allocated for that connection, and
 * the connection waits for EPOLLOUT instead of EPOLLIN until they are gone.
 * So an idle connection costs the kernel's socket and one epoll entry and
 * nothing in this process but a NULL slot.  Edge-triggered epoll was
 * rejected for the anchor: it saves an epoll_ctl only in the rare short
 * write case and is not what the plain loop looks like.
 *
 * It prints "port N" on stdout (it binds 127.0.0.1 port 0 unless given a
 * port) and serves until killed.  RLIMIT_NOFILE is raised to its hard limit
 * so that it can hold 10,000 connections.
 *
 * Usage: echo_epoll [port]
 *
 * Single-threaded: no locking.
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 512
#define MAX_EVENTS 256

/* Bytes not yet written back to a connection (only after a short write). */
typedef struct pending {
    size_t off, len;
    char data[BUF];
} pending;

static pending **pend; /* indexed by descriptor */
static size_t npend;
static int ep;

static void drop(int fd)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    if ((size_t)fd < npend) {
        free(pend[fd]);
        pend[fd] = NULL;
    }
}

static int watch(int fd, int op, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.fd = fd};
    return epoll_ctl(ep, op, fd, &ev);
}

/* Write what is pending for fd; back to EPOLLIN when it is all gone. */
static void flush(int fd)
{
    pending *p = pend[fd];
    while (p->len > 0) {
        ssize_t n = write(fd, p->data + p->off, p->len);
        if (n < 0) {
            if (errno == EAGAIN)
                return;
            if (errno == EINTR)
                continue;
            drop(fd);
            return;
        }
        p->off += (size_t)n;
        p->len -= (size_t)n;
    }
    free(p);
    pend[fd] = NULL;
    watch(fd, EPOLL_CTL_MOD, EPOLLIN);
}

static void echo(int fd)
{
    char buf[BUF];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        drop(fd);
        return;
    }
    ssize_t w = write(fd, buf, (size_t)n);
    if (w == n)
        return;
    if (w < 0 && errno != EAGAIN) {
        drop(fd);
        return;
    }
    /* Short write: keep the rest and wait until the socket drains. */
    pending *p = malloc(sizeof *p);
    if (p == NULL) {
        drop(fd);
        return;
    }
    p->off = 0;
    p->len = (size_t)(n - (w > 0 ? w : 0));
    memcpy(p->data, buf + (w > 0 ? w : 0), p->len);
    pend[fd] = p;
    watch(fd, EPOLL_CTL_MOD, EPOLLOUT);
}

static void accept_all(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or out of descriptors until some close */
        if ((size_t)fd >= npend || watch(fd, EPOLL_CTL_ADD, EPOLLIN) != 0)
            close(fd);
    }
}

int main(int argc, char **argv)
{
    struct rlimit rl;
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int one = 1;

    signal(SIGPIPE, SIG_IGN);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    npend = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 20)
                ? (1u << 20)
                : (size_t)rl.rlim_cur;
    pend = calloc(npend, sizeof *pend);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (pend == NULL || lfd < 0 || ep < 0) {
        perror("echo_epoll");
        return 1;
    }
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)(argc > 1 ? atoi(argv[1]) : 0));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(lfd, SOMAXCONN) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) != 0 ||
        watch(lfd, EPOLL_CTL_ADD, EPOLLIN) != 0) {
        perror("echo_epoll: listen");
        return 1;
    }
    printf("port %d\n", ntohs(a.sin_port));
    fflush(stdout);

    for (;;) {
        struct epoll_event evs[MAX_EVENTS];
        int n = epoll_wait(ep, evs, MAX_EVENTS, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd)
                accept_all(lfd);
            else if (pend[fd] != NULL)
                flush(fd);
            else
                echo(fd);
        }
    }
}
