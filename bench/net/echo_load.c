/* echo_load.c - the one load client for the echo benchmarks: N connections
 * to 127.0.0.1:PORT, each a closed loop of a 64-byte request and its 64-byte
 * echo, driven by one epoll loop in one thread.
 *
 * Every server (weft's green thread per connection, Go's goroutine per
 * connection, the plain epoll loop) is driven by this same program with the
 * same settings, so the client's own cost is the same for all of them: one
 * thread, level-triggered epoll, one read(2) and one write(2) per request.
 * (A client per server language was rejected: the client's cost would then
 * differ between servers, and on 2 vCPUs the client takes half the
 * machine.)
 *
 * Method.  Connections are opened with non-blocking connect(2), at most
 * CONNECT_INFLIGHT at a time so that the server's accept backlog never
 * overflows; a connect that fails for lack of resources (EAGAIN,
 * EADDRNOTAVAIL, a refused or reset connection from an overflowing backlog)
 * is retried after a pause, until an overall deadline.  Then each
 * connection sends its first request; the warm-up lets the server reach its
 * steady state (Go's and weft's schedulers, the kernel's socket buffers),
 * then the measured window counts the responses completed inside it.  The
 * window is bounded in time, so a slow server gives a small count, never a
 * long run.  Every response is compared byte for byte with its request
 * (which carries the connection's number and the request's sequence number,
 * so crossed or stale data is caught too); any mismatch, short response,
 * end of file or error is counted and makes the run fail: a broken run
 * prints no figure.
 *
 * Idle mode (-I PID): open N connections, make one round trip on each (so
 * the server has accepted and set up every connection), let it settle, and
 * read the server's VmRSS from /proc/PID/status before the first connect
 * and after the round trips; prints the resident memory per connection and
 * the server's total, then holds the connections for -H ms and closes them.
 *
 * Output: "# ..." lines for people and, on success,
 *     result echo_64b_<N>c <impl> <req/s> req/s higher
 * or in idle mode
 *     result echo_idle_rss_per_conn <impl> <KiB> KiB lower
 *     result echo_idle_rss_total <impl> <MB> MB lower
 * (the second is the server's whole VmRSS with the N idle connections, in
 * 10^6 bytes; the format is bench/micro/bench.h's).  Exit status 0 only
 * when every response was right.
 *
 * Usage: echo_load -p PORT -c CONNS -n IMPL [-w WARM_MS] [-m MEASURE_MS]
 *                  [-P SERVER_PID] [-I SERVER_PID [-H HOLD_MS]]
 * -P: also print the server's and the client's CPU time per response
 * (from /proc/PID/stat and CLOCK_PROCESS_CPUTIME_ID), as a "#" line.
 *
 * The descriptor limit: RLIMIT_NOFILE is raised to its hard limit; if that
 * is below CONNS + a few, the run says so and fails.
 *
 * Single-threaded: no locking.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../micro/bench.h"

#define MSG 64
#define CONNECT_INFLIGHT 128
#define CONNECT_DEADLINE_NS (60LL * 1000000000)
#define MAX_EVENTS 512

enum cstate { C_IDLE, C_CONNECTING, C_RUNNING, C_DONE };

typedef struct conn {
    int fd;
    enum cstate state;
    uint32_t id;
    uint32_t seq;       /* sequence number of the request in flight */
    uint32_t got;       /* bytes of its response received so far */
    int64_t retry_at;   /* C_IDLE: do not connect before this time */
    unsigned char rbuf[MSG];
} conn;

static conn *conns;
static int nconns;
static int port;
static int ep;
static long errors;
static int64_t max_gap, last_resp; /* the longest pause between responses */
static long retries;
static int last_retry_errno;

/* The request number seq of connection id: the two numbers in text, then
 * a pattern that depends on both, so that any byte out of place shows. */
static void make_msg(unsigned char *m, uint32_t id, uint32_t seq)
{
    int n = snprintf((char *)m, MSG, "c%07u s%010u ", id, seq);
    for (int i = n; i < MSG - 1; i++)
        m[i] = (unsigned char)('a' + (id * 7u + seq * 13u + (unsigned)i) % 26);
    m[MSG - 1] = '\n';
}

static void fail_conn(conn *c, const char *what, int err)
{
    if (errors < 10)
        fprintf(stderr, "echo_load: connection %u: %s%s%s\n", c->id, what,
                err ? ": " : "", err ? strerror(err) : "");
    errors++;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->state = C_DONE;
}

/* Send the request c->seq.  64 bytes fit any socket buffer with nothing in
 * flight, so a short write means something is broken. */
static void send_req(conn *c)
{
    unsigned char m[MSG];
    make_msg(m, c->id, c->seq);
    c->got = 0;
    ssize_t n = write(c->fd, m, MSG);
    if (n != MSG)
        fail_conn(c, n < 0 ? "write" : "short write", n < 0 ? errno : 0);
}

/* Read what is there of c's response; true when it is complete (and was
 * checked byte for byte). */
static int recv_resp(conn *c)
{
    unsigned char want[MSG];
    ssize_t n = read(c->fd, c->rbuf + c->got, MSG - c->got);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return 0;
        fail_conn(c, "read", errno);
        return 0;
    }
    if (n == 0) {
        fail_conn(c, "end of file from the server", 0);
        return 0;
    }
    c->got += (uint32_t)n;
    if (c->got < MSG)
        return 0;
    make_msg(want, c->id, c->seq);
    if (memcmp(want, c->rbuf, MSG) != 0) {
        fail_conn(c, "response differs from the request", 0);
        return 0;
    }
    /* More bytes than one response in a closed loop would also be wrong;
     * the next read sees them as part of the next response, which then
     * differs. */
    return 1;
}

static int start_connect(conn *c)
{
    struct sockaddr_in a;
    int one = 1;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -errno;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0 &&
        errno != EINPROGRESS) {
        int e = errno;
        close(c->fd);
        c->fd = -1;
        return -e;
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        int e = errno;
        close(c->fd);
        c->fd = -1;
        return -e;
    }
    c->state = C_CONNECTING;
    return 0;
}

/* A connect failed for a reason that goes away (resources, an overflowing
 * backlog): try this connection again a little later. */
static int retryable(int e)
{
    return e == EAGAIN || e == EADDRNOTAVAIL || e == ECONNREFUSED ||
           e == ECONNRESET || e == ETIMEDOUT || e == ENOBUFS || e == EMFILE;
}

static void connect_failed(conn *c, int e, int64_t now)
{
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    if (!retryable(e)) {
        c->state = C_DONE;
        fprintf(stderr, "echo_load: connect: %s\n", strerror(e));
        errors++;
        return;
    }
    retries++;
    last_retry_errno = e;
    c->state = C_IDLE;
    c->retry_at = now + 20 * 1000000; /* 20 ms */
}

/* Open every connection, at most CONNECT_INFLIGHT at a time; each one's
 * first request goes out as soon as it is connected and waits there, since
 * the loop reads no responses yet.  0 when all are connected. */
static int connect_all(void)
{
    struct epoll_event evs[MAX_EVENTS];
    int64_t t0 = bench_now(), deadline = t0 + CONNECT_DEADLINE_NS;
    int next = 0, inflight = 0, connected = 0;

    while (connected < nconns) {
        int64_t now = bench_now();
        if (now > deadline) {
            fprintf(stderr, "echo_load: only %d of %d connections after %lld s "
                    "(%ld retries, the last for %s)\n", connected, nconns,
                    (long long)(CONNECT_DEADLINE_NS / 1000000000), retries,
                    last_retry_errno ? strerror(last_retry_errno) : "-");
            return -1;
        }
        /* Start connects: new ones in order, then any due for a retry. */
        for (int scan = 0; inflight < CONNECT_INFLIGHT && scan < nconns &&
                           next < nconns; scan++) {
            conn *c = &conns[next];
            if (c->state != C_IDLE || c->retry_at > now)
                break;
            next++;
            int rc = start_connect(c);
            if (rc == 0)
                inflight++;
            else
                connect_failed(c, -rc, now);
        }
        if (next >= nconns && inflight < CONNECT_INFLIGHT) {
            for (int i = 0; i < nconns && inflight < CONNECT_INFLIGHT; i++) {
                conn *c = &conns[i];
                if (c->state != C_IDLE || c->retry_at > now)
                    continue;
                int rc = start_connect(c);
                if (rc == 0)
                    inflight++;
                else
                    connect_failed(c, -rc, now);
            }
        }
        if (errors)
            return -1;
        int n = epoll_wait(ep, evs, MAX_EVENTS, 20);
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            int err = 0;
            socklen_t len = sizeof err;
            if (c->state != C_CONNECTING)
                continue;
            inflight--;
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
                err = errno;
            if (err != 0) {
                connect_failed(c, err, bench_now());
                continue;
            }
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            c->state = C_RUNNING;
            connected++;
        }
        /* A reset may come at the first read, not at connect (the backlog
         * dropped the connection): those show up as errors in the run. */
    }
    printf("# %d connections in %.0f ms (%ld connect retries%s%s)\n", nconns,
           (double)(bench_now() - t0) / 1e6, retries,
           retries ? ", the last for " : "",
           retries ? strerror(last_retry_errno) : "");
    return 0;
}

/* Run the closed loops until end; count the responses completed at or
 * after from.  A negative count on error. */
static long run_until(int64_t from, int64_t end)
{
    struct epoll_event evs[MAX_EVENTS];
    long count = 0;
    int64_t now = bench_now();

    while (now < end) {
        int ms = (int)((end - now) / 1000000) + 1;
        int n = epoll_wait(ep, evs, MAX_EVENTS, ms < 100 ? ms : 100);
        if (n < 0 && errno != EINTR) {
            perror("echo_load: epoll_wait");
            return -1;
        }
        now = bench_now();
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (c->state != C_RUNNING)
                continue;
            if (evs[i].events & (EPOLLERR | EPOLLHUP) &&
                !(evs[i].events & EPOLLIN)) {
                fail_conn(c, "error or hang-up", 0);
                continue;
            }
            if (!recv_resp(c))
                continue;
            if (now >= from) {
                count++;
                if (last_resp && now - last_resp > max_gap)
                    max_gap = now - last_resp;
                last_resp = now;
            }
            c->seq++;
            send_req(c);
        }
        if (errors)
            return -1;
    }
    return count;
}

/* Close with a reset rather than a FIN: the client's side of a normal
 * close lingers in TIME_WAIT for a minute, and a benchmark run opens some
 * 200,000 connections to a few ports in two minutes, which would exhaust
 * the ephemeral ports (connect then fails with EADDRNOTAVAIL after a long,
 * system-time-heavy search).  Every server sees the reset as the end of the
 * connection. */
static void close_abort(int fd)
{
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

/* The CPU time process pid has used, in ns (utime + stime of all its
 * threads from /proc/PID/stat, in clock ticks), or -1. */
static int64_t cpu_ns(long pid)
{
    char path[64], buf[1024];
    unsigned long ut = 0, st = 0;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the name may hold spaces */
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
                                   "%*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (int64_t)(ut + st) * (1000000000 / sysconf(_SC_CLK_TCK));
}

static int64_t self_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long rss_kib(long pid)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

static int raise_nofile(int need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)need) {
        fprintf(stderr,
                "echo_load: %d connections need %d descriptors, but the hard "
                "limit RLIMIT_NOFILE is %llu (raise it: ulimit -Hn)\n",
                nconns, need, (unsigned long long)rl.rlim_max);
        return -1;
    }
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: echo_load -p PORT -c CONNS -n IMPL [-w WARM_MS] "
                    "[-m MEASURE_MS] [-P SERVER_PID] [-I SERVER_PID [-H HOLD_MS]]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *impl = NULL;
    long warm_ms = 300, measure_ms = 1000, pid = 0, hold_ms = 0, spid = 0;
    int opt, rc = 0;

    while ((opt = getopt(argc, argv, "p:c:n:w:m:I:H:P:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'c': nconns = atoi(optarg); break;
        case 'n': impl = optarg; break;
        case 'w': warm_ms = atol(optarg); break;
        case 'm': measure_ms = atol(optarg); break;
        case 'I': pid = atol(optarg); break;
        case 'H': hold_ms = atol(optarg); break;
        case 'P': spid = atol(optarg); break;
        default: usage();
        }
    }
    if (port <= 0 || port > 65535 || nconns <= 0 || impl == NULL ||
        warm_ms < 0 || measure_ms <= 0 || hold_ms < 0)
        usage();
    if (raise_nofile(nconns + 16) != 0)
        return 1;
    conns = calloc((size_t)nconns, sizeof *conns);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (conns == NULL || ep < 0) {
        perror("echo_load");
        return 1;
    }
    for (int i = 0; i < nconns; i++) {
        conns[i].fd = -1;
        conns[i].id = (uint32_t)i;
        conns[i].state = C_IDLE;
    }

    long before = pid ? rss_kib(pid) : 0;
    if (pid && before < 0) {
        fprintf(stderr, "echo_load: cannot read /proc/%ld/status\n", pid);
        return 1;
    }
    if (connect_all() != 0)
        goto out_fail;
    for (int i = 0; i < nconns; i++)
        send_req(&conns[i]);

    if (pid) {
        /* One round trip on every connection, then let the server settle:
         * each connection's handler is then parked in its read. */
        long done = 0;
        int64_t end = bench_now() + 30LL * 1000000000;
        while (done < nconns && bench_now() < end && !errors) {
            struct epoll_event evs[MAX_EVENTS];
            int n = epoll_wait(ep, evs, MAX_EVENTS, 100);
            for (int i = 0; i < n; i++) {
                conn *c = evs[i].data.ptr;
                if (c->state == C_RUNNING && recv_resp(c)) {
                    done++;
                    struct epoll_event ev = {.events = 0, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
        }
        if (errors || done < nconns) {
            fprintf(stderr, "echo_load: %ld of %d round trips done\n", done,
                    nconns);
            goto out_fail;
        }
        struct timespec settle = {0, 300 * 1000000};
        nanosleep(&settle, NULL);
        long after = rss_kib(pid);
        double per = (double)(after - before) / nconns;
        printf("# server %s: VmRSS %ld KiB before, %ld KiB with %d idle "
               "connections: %.2f KiB per connection\n",
               impl, before, after, nconns, per);
        bench_result("echo_idle_rss_per_conn", impl, per, "KiB", "lower");
        bench_result("echo_idle_rss_total", impl, (double)after * 1024 / 1e6,
                     "MB", "lower");
        if (hold_ms > 0) {
            struct timespec h = {hold_ms / 1000, (hold_ms % 1000) * 1000000};
            nanosleep(&h, NULL);
        }
    } else {
        int64_t t0 = bench_now() + warm_ms * 1000000;
        int64_t t1 = t0 + measure_ms * 1000000;
        long count = run_until(t0, t0);
        int64_t scpu = spid ? cpu_ns(spid) : -1, ccpu = self_cpu_ns();
        count = count < 0 ? count : run_until(t0, t1);
        if (count < 0)
            goto out_fail;
        double rate = (double)count / ((double)(t1 - t0) / 1e9);
        printf("# %s, %d connections: %ld responses in %ld ms", impl, nconns,
               count, measure_ms);
        /* CPU per response, which the host's other load disturbs less than
         * the rate does (10 ms ticks for the server). */
        if (scpu >= 0 && count > 0)
            printf("; server CPU %.1f us/response (%.0f%% of a CPU)",
                   (double)(cpu_ns(spid) - scpu) / 1e3 / (double)count,
                   (double)(cpu_ns(spid) - scpu) * 100.0 / (double)(t1 - t0));
        if (count > 0)
            printf("; client CPU %.1f us/response",
                   (double)(self_cpu_ns() - ccpu) / 1e3 / (double)count);
        /* A stall of the server shows here even when the rate hides it. */
        printf("; longest pause between responses %.1f ms",
               (double)(count > 0 ? max_gap : t1 - t0) / 1e6);
        printf("\n");
        char key[64];
        snprintf(key, sizeof key, "echo_64b_%dc", nconns);
        bench_result(key, impl, rate, "req/s", "higher");
    }
    goto out;
out_fail:
    rc = 1;
out:
    for (int i = 0; i < nconns; i++)
        if (conns[i].fd >= 0)
            close_abort(conns[i].fd);
    if (errors)
        fprintf(stderr, "echo_load: %ld errors\n", errors);
    free(conns);
    close(ep);
    return rc;
}
