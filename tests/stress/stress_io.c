/* stress_io.c - the netpoller under load: close racing waits (every
 * parked reader ends, none hangs), descriptor numbers reused at once
 * while old readers still wake, and a byte relay through many socket
 * pairs driven by green threads and OS threads at once, with exact byte
 * counts.  Sizes scale with WEFT_TEST_SCALE. */
#include "support.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/poller.h"
#include "weft.h"

struct racer {
    int fd;
    _Atomic int result_set;
    ssize_t result;
};

static int read_once(void *p)
{
    struct racer *r = p;
    char c;
    r->result = weft_read(r->fd, &c, 1, weft_deadline_in(MS(30000)));
    atomic_store(&r->result_set, 1);
    return 0;
}

static int close_it(void *p)
{
    (void)weft_green_yield();
    return weft_close((int)(intptr_t)p);
}

/* A reader and a closer race, hundreds of times: the reader returns
 * -EBADF (closed while parked or before it started), data (the peer wrote
 * first) or 0 (end of file) - never hangs, never -ETIMEDOUT. */
START_TEST(close_races_read)
{
    long n = 500 * test_scale();
    for (long i = 0; i < n; i++) {
        int sv[2];
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                         0);
        struct racer r = {.fd = sv[0]};
        weft_green *a, *b;
        ck_assert_rc(weft_green_spawn(&a, read_once, &r, NULL), 0);
        if (i % 3 == 0)
            (void)!write(sv[1], "x", 1);
        ck_assert_rc(weft_green_spawn(&b, close_it, (void *)(intptr_t)sv[0],
                                      NULL), 0);
        ck_assert_rc(weft_green_join(a, NULL, weft_deadline_in(MS(30000))), 0);
        ck_assert_rc(weft_green_join(b, NULL, weft_deadline_in(MS(30000))), 0);
        ck_assert(r.result == 1 || r.result == 0 || r.result == -EBADF);
        weft_close(sv[1]);
    }
    ck_assert_int_eq(weft__poller_waiters(), 0);
}
END_TEST

/* ---- relay ------------------------------------------------------------ */

struct hop {
    int in, out;   /* read from in, write to out (-1: count only) */
    long bytes;    /* to pass along */
    _Atomic long *sunk;
};

static int relay(void *p)
{
    struct hop *h = p;
    char buf[512];
    long left = h->bytes;
    while (left > 0) {
        ssize_t n = weft_read(h->in, buf, sizeof buf, weft_deadline_in(MS(30000)));
        if (n <= 0)
            return (int)(n == 0 ? -1 : n);
        left -= n;
        if (h->out >= 0) {
            if (weft_write_all(h->out, buf, (size_t)n, NULL, WEFT_FOREVER) != 0)
                return -2;
        } else {
            atomic_fetch_add(h->sunk, n);
        }
    }
    return 0;
}

static int os_relay(void *p)
{
    return relay(p);
}

/* Chains of socket pairs: a source writes, every hop passes the bytes on,
 * alternately in green threads and OS threads, the sink counts them. */
START_TEST(relay_chains_count_exactly)
{
    enum { CHAINS = 16, HOPS = 6 };
    long bytes = 200000 * test_scale();
    static _Atomic long sunk;
    int fds[CHAINS][HOPS + 1][2];
    struct hop hops[CHAINS][HOPS];
    weft_green *g[CHAINS][HOPS];
    tt *t[CHAINS][HOPS];
    ck_assert_rc(weft_runtime_start(2), 0);
    for (int c = 0; c < CHAINS; c++) {
        for (int h = 0; h <= HOPS; h++)
            ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
                                        fds[c][h]), 0);
        for (int h = 0; h < HOPS; h++) {
            hops[c][h] = (struct hop){fds[c][h][1],
                                      h + 1 < HOPS ? fds[c][h + 1][0] : -1,
                                      bytes, &sunk};
            g[c][h] = NULL;
            t[c][h] = NULL;
            if ((c + h) % 5 == 4)
                t[c][h] = tt_start(os_relay, &hops[c][h]);
            else
                ck_assert_rc(weft_green_spawn(&g[c][h], relay, &hops[c][h],
                                              NULL), 0);
        }
    }
    char *src = malloc((size_t)bytes);
    memset(src, 'q', (size_t)bytes);
    for (int c = 0; c < CHAINS; c++)
        ck_assert_rc(weft_write_all(fds[c][0][0], src, (size_t)bytes, NULL,
                                    weft_deadline_in(MS(60000))), 0);
    for (int c = 0; c < CHAINS; c++)
        for (int h = 0; h < HOPS; h++) {
            int r = -9;
            if (t[c][h] != NULL)
                r = tt_join(t[c][h]);
            else
                ck_assert_rc(weft_green_join(g[c][h], &r,
                                             weft_deadline_in(MS(60000))), 0);
            ck_assert_rc(r, 0);
        }
    ck_assert_int_eq(atomic_load(&sunk), bytes * CHAINS);
    for (int c = 0; c < CHAINS; c++)
        for (int h = 0; h <= HOPS; h++) {
            weft_close(fds[c][h][0]);
            weft_close(fds[c][h][1]);
        }
    free(src);
}
END_TEST

static Suite *io_stress_suite(void)
{
    Suite *s = suite_create("stress_io");
    TCase *tc = tcase_create("stress_io");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, close_races_read);
    tcase_add_test(tc, relay_chains_count_exactly);
    suite_add_tcase(s, tc);
    return s;
}

TEST_MAIN(io_stress_suite)
