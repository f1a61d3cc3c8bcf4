/* green_idle_connections.c - 10,000 idle connections, each held by its own
 * green thread, and what they cost in resident memory.
 *
 * The server side is this process: an acceptor green thread spawns one
 * green thread per connection, which echoes what it reads and otherwise
 * sits parked in weft_read on weft's poller, costing its touched stack
 * pages and a few small structures, not an OS thread.  The clients are a
 * child process (forked before weft starts, and using only plain sockets),
 * because both ends of 10,000 connections in one process would need 20,000
 * descriptors, the usual hard limit.  The child connects in batches of 256,
 * makes one round trip on each connection (so every server green thread
 * has run and parked again), then says "ready" through a pipe.  The parent
 * reads its own VmRSS before the first connection and then, and prints the
 * resident memory per connection.  Then it tells the child to finish; the
 * child sends "q" on every connection, the server's green thread closes
 * its end, the child sees the end of file and exits; main cancels the
 * acceptor and weft_runtime_shutdown waits for every green thread.
 *
 * Everything is bounded: the pipe waits and the socket calls have
 * deadlines (the child's by SO_RCVTIMEO and poll timeouts), so the program
 * ends by itself even if something is wrong.
 *
 * Usage: green_idle_connections [count]   (default: WEFT_IDLE_CONNS, else
 * 10000).  RLIMIT_NOFILE is raised to its hard limit; if that is below
 * count + 64 the program says so and exits 1.
 * Prints "held N idle connections, one green thread each" and the memory
 * line; exits 0 only if all N were held and all closed cleanly.
 */
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include "weft.h"

#define BATCH 256
#define STEP_NS (120LL * 1000000000) /* bound on each phase */

static _Atomic long held, closed_clean;

/* Resident set size in KiB, from /proc/self/status. */
static long rss_kib(void)
{
    char line[256];
    long kib = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

/* ---- the server: this process, green threads ------------------------------ */

static int serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[64];
    int counted = 0;

    for (;;) {
        ssize_t n = weft_read(fd, buf, sizeof buf, weft_deadline_in(STEP_NS));
        if (n <= 0)
            break;
        if (buf[n - 1] == 'q') { /* the client is done: we hang up first */
            atomic_fetch_add(&closed_clean, 1);
            break;
        }
        if (!counted) {
            counted = 1;
            atomic_fetch_add(&held, 1);
        }
        if (weft_write_all(fd, buf, (size_t)n, NULL,
                           weft_deadline_in(STEP_NS)) != 0)
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
        if (fd == -ECANCELED)
            return 0;
        if (fd < 0) {
            fprintf(stderr, "accept: %s\n", weft_strerror(fd));
            return 1;
        }
        if (weft_green_spawn(NULL, serve, (void *)(intptr_t)fd, NULL) != 0) {
            fprintf(stderr, "spawn failed\n");
            weft_close(fd);
        }
    }
}

/* ---- the clients: a child process, plain sockets -------------------------- */

static int wait_readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1;
}

static int dial(int port)
{
    struct sockaddr_in a;
    struct timeval tv = {30, 0};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int child(long n, int from_parent, int to_parent)
{
    int port = 0;
    char c;
    int *fds = calloc((size_t)n, sizeof *fds);

    if (fds == NULL || !wait_readable(from_parent, 30000) ||
        read(from_parent, &port, sizeof port) != sizeof port)
        return 1;
    for (long i = 0; i < n; i += BATCH) {
        long end = i + BATCH < n ? i + BATCH : n;
        for (long j = i; j < end; j++)
            if ((fds[j] = dial(port)) < 0) {
                perror("child: connect");
                return 1;
            }
        /* One round trip each, which also paces us to the acceptor. */
        for (long j = i; j < end; j++)
            if (write(fds[j], "x", 1) != 1) {
                perror("child: write");
                return 1;
            }
        for (long j = i; j < end; j++)
            if (read(fds[j], &c, 1) != 1 || c != 'x') {
                fprintf(stderr, "child: connection %ld: no echo\n", j);
                return 1;
            }
    }
    if (write(to_parent, "r", 1) != 1)
        return 1;
    /* Hold them until the parent has measured. */
    if (!wait_readable(from_parent, 120000) || read(from_parent, &c, 1) != 1)
        return 1;
    for (long j = 0; j < n; j++)
        if (write(fds[j], "q", 1) != 1)
            return 1;
    for (long j = 0; j < n; j++) {
        if (read(fds[j], &c, 1) != 0) /* the server's end of file */
            return 1;
        close(fds[j]);
    }
    return 0;
}

/* ---- main ------------------------------------------------------------------ */

static long conn_count(int argc, char **argv)
{
    const char *s = argc > 1 ? argv[1] : getenv("WEFT_IDLE_CONNS");
    return s && *s ? strtol(s, NULL, 10) : 10000;
}

int main(int argc, char **argv)
{
    long n = conn_count(argc, argv);
    int to_child[2], to_parent[2], status, result = -1, ok = 1;
    struct rlimit rl;
    weft_green *acc;
    char c;

    if (n <= 0 || n > 1000000) {
        fprintf(stderr, "usage: %s [count]   (or WEFT_IDLE_CONNS)\n", argv[0]);
        return 2;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)n + 64) {
        fprintf(stderr, "%ld connections need %ld descriptors on each side, "
                "but the hard limit RLIMIT_NOFILE is %llu (ulimit -Hn)\n",
                n, n + 64, (unsigned long long)rl.rlim_max);
        return 1;
    }
    if (pipe(to_child) != 0 || pipe(to_parent) != 0) {
        perror("pipe");
        return 1;
    }
    fflush(stdout);
    pid_t pid = fork(); /* before weft starts any thread */
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        close(to_child[1]);
        close(to_parent[0]);
        _exit(child(n, to_child[0], to_parent[1]));
    }
    close(to_child[0]);
    close(to_parent[1]);

    int lfd = weft_tcp_listen(NULL, 0, 0);
    int port = weft_sock_port(lfd);
    if (lfd < 0 || weft_green_spawn(&acc, acceptor, (void *)(intptr_t)lfd,
                                    NULL) != 0) {
        fprintf(stderr, "listen: %s\n", weft_strerror(lfd));
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return 1;
    }
    long before = rss_kib();
    int64_t t0 = weft_now();
    if (write(to_child[1], &port, sizeof port) != sizeof port)
        ok = 0;
    /* Main is an OS thread: weft_read polls the pipe, with a deadline. */
    if (ok && weft_read(to_parent[0], &c, 1, weft_deadline_in(STEP_NS)) != 1) {
        fprintf(stderr, "the clients never became ready\n");
        ok = 0;
    }
    long after = rss_kib();
    double secs = (double)(weft_now() - t0) / 1e9;
    if (ok) {
        printf("held %ld idle connections, one green thread each "
               "(connected and echoed once in %.2f s)\n",
               atomic_load(&held), secs);
        printf("resident memory: %.1f MB before, %.1f MB with %ld idle "
               "connections: %.2f KiB per connection\n",
               before * 1024 / 1e6, after * 1024 / 1e6, n,
               (double)(after - before) / (double)n);
        fflush(stdout);
    }
    /* Let the child finish (or, on failure, stop it) and wait for it. */
    if (ok && write(to_child[1], "q", 1) != 1)
        ok = 0;
    if (!ok)
        kill(pid, SIGKILL);
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        fprintf(stderr, "the client process failed\n");
        ok = 0;
    }
    weft_green_cancel(acc);
    if (weft_green_join(acc, &result, weft_deadline_in(STEP_NS)) != 0 ||
        result != 0)
        ok = 0;
    weft_close(lfd);
    if (weft_runtime_shutdown(weft_deadline_in(STEP_NS)) != 0) {
        fprintf(stderr, "some connection threads did not return\n");
        ok = 0;
    }
    if (atomic_load(&held) != n || atomic_load(&closed_clean) != n)
        ok = 0;
    printf("%ld of %ld connections closed cleanly; %s\n",
           atomic_load(&closed_clean), n,
           ok ? "every green thread returned" : "FAILED");
    close(to_child[1]);
    close(to_parent[0]);
    return ok ? 0 : 1;
}
