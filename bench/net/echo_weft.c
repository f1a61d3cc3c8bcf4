/* echo_weft.c - weft's echo server for the echo benchmarks: a green thread
 * per connection, written as plainly as the Go anchor
 * (bench/anchors/echo.go).
 *
 * Design.  An acceptor green thread loops on weft_accept and spawns one
 * detached green thread per connection (default options: a 64 KiB stack of
 * which only the touched pages are resident).  That green thread loops on
 * weft_read of up to 512 bytes (the buffer size of the other servers) and
 * weft_write_all of what it got; when a descriptor is not ready the green
 * thread parks on weft's poller and its worker runs other connections, so
 * the code reads as blocking code.  The alternative of a callback per
 * readiness event is what the epoll anchor does; the point of this server
 * is that weft's blocking style costs (almost) nothing against it.
 *
 * Workers: WEFT_WORKERS, default the CPU count (Go's GOMAXPROCS default is
 * the same).  It prints "port N" on stdout (127.0.0.1, port 0 unless given
 * one) and serves until killed.  RLIMIT_NOFILE is raised to its hard limit
 * so that it can hold 10,000 connections.
 *
 * Usage: echo_weft [port]
 *
 * Locking: none; each connection's state lives on its own green thread's
 * stack.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "weft.h"

#define BUF 512

static int serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[BUF];

    for (;;) {
        ssize_t n = weft_read(fd, buf, sizeof buf, WEFT_FOREVER);
        if (n <= 0)
            break; /* end of file, reset or error: the connection is over */
        if (weft_write_all(fd, buf, (size_t)n, NULL, WEFT_FOREVER) != 0)
            break;
    }
    weft_close(fd);
    return 0;
}

static int acceptor(void *arg)
{
    int lfd = (int)(intptr_t)arg;

    for (;;) {
        int fd = weft_accept(lfd, NULL, NULL, WEFT_FOREVER);
        if (fd < 0) {
            if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS ||
                fd == -ENOMEM) {
                /* Out of resources: the connection waits in the backlog
                 * until some close. */
                weft_sleep_until(weft_deadline_in(10 * 1000000));
                continue;
            }
            if (fd == -ECONNABORTED || fd == -EINTR)
                continue;
            fprintf(stderr, "echo_weft: accept: %s\n", weft_strerror(fd));
            return 1;
        }
        if (weft_green_spawn(NULL, serve, (void *)(intptr_t)fd, NULL) != 0)
            weft_close(fd);
    }
}

int main(int argc, char **argv)
{
    struct rlimit rl;
    weft_green *acc;
    int rc, result = 0;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int lfd = weft_tcp_listen(NULL, argc > 1 ? atoi(argv[1]) : 0, 0);
    if (lfd < 0) {
        fprintf(stderr, "echo_weft: listen: %s\n", weft_strerror(lfd));
        return 1;
    }
    rc = weft_green_spawn(&acc, acceptor, (void *)(intptr_t)lfd, NULL);
    if (rc != 0) {
        fprintf(stderr, "echo_weft: spawn: %s\n", weft_strerror(rc));
        return 1;
    }
    printf("port %d\n", weft_sock_port(lfd));
    fflush(stdout);
    rc = weft_green_join(acc, &result, WEFT_FOREVER);
    return rc != 0 || result != 0;
}
