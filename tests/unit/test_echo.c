/* test_echo.c - echo over loopback TCP the way the examples and the echo
 * benchmark do it: a green thread per connection on the server side, many
 * clients at once, every byte checked.
 *
 * In-process tests: a green echo server (acceptor + one green thread per
 * connection, a small read buffer so that messages come back in pieces)
 * with several concurrent clients, green threads or OS threads (which wait
 * in poll(2) rather than park), each sending messages of varied sizes with
 * a pattern unique to the client and the message, and comparing every
 * byte; then the server is stopped by cancelling its acceptor, and every
 * connection thread must return.  Example tests: examples/green_echo with
 * several clients, and examples/green_idle_connections at a reduced count
 * (WEFT_IDLE_CONNS; the sanitizers make each connection dearer), found in
 * WEFT_EXAMPLES_DIR as test_examples.c does.
 */
#include "support.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#define SERVER_BUF 100
#define MAX_MSG 9000
#define STEP MS(20000)

/* ---- an in-process green echo server ------------------------------------- */

static _Atomic int conns_open, conns_served;

static int serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[SERVER_BUF];

    atomic_fetch_add(&conns_served, 1);
    for (;;) {
        ssize_t n = weft_read(fd, buf, sizeof buf, weft_deadline_in(STEP));
        if (n <= 0)
            break;
        if (weft_write_all(fd, buf, (size_t)n, NULL, weft_deadline_in(STEP)))
            break;
    }
    weft_close(fd);
    atomic_fetch_sub(&conns_open, 1);
    return 0;
}

static int acceptor(void *arg)
{
    int lfd = (int)(intptr_t)arg;

    for (;;) {
        int fd = weft_accept(lfd, NULL, NULL, WEFT_FOREVER);
        if (fd == -ECANCELED)
            return 0;
        if (fd < 0)
            return fd;
        atomic_fetch_add(&conns_open, 1);
        if (weft_green_spawn(NULL, serve, (void *)(intptr_t)fd, NULL) != 0) {
            weft_close(fd);
            atomic_fetch_sub(&conns_open, 1);
            return -ENOMEM;
        }
    }
}

typedef struct server {
    int lfd, port;
    weft_green *acc;
} server;

static void server_start(server *s)
{
    atomic_store(&conns_open, 0);
    atomic_store(&conns_served, 0);
    s->lfd = weft_tcp_listen(NULL, 0, 0);
    ck_assert_int_ge(s->lfd, 0);
    s->port = weft_sock_port(s->lfd);
    ck_assert_int_gt(s->port, 0);
    ck_assert_rc(weft_green_spawn(&s->acc, acceptor,
                                  (void *)(intptr_t)s->lfd, NULL), 0);
}

/* Stop accepting, then wait (bounded) until every connection thread has
 * seen its client hang up and returned. */
static void server_stop(server *s)
{
    int result = -1;
    ck_assert_rc(weft_green_cancel(s->acc), 0);
    ck_assert_rc(weft_green_join(s->acc, &result, weft_deadline_in(STEP)), 0);
    ck_assert_int_eq(result, 0);
    ck_assert_rc(weft_close(s->lfd), 0);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(STEP)), 0);
    ck_assert_int_eq(atomic_load(&conns_open), 0);
}

/* ---- clients ---------------------------------------------------------------- */

typedef struct client {
    int port, id, msgs;
    long bytes;      /* out: bytes echoed correctly */
    int rc;          /* out: 0 or what went wrong */
    unsigned char sent[MAX_MSG], got[MAX_MSG]; /* not on a green stack */
} client;

/* Message j of client id: a size from 1 to MAX_MSG, contents unique to
 * (id, j, position). */
static size_t fill(unsigned char *m, int id, int j)
{
    static const size_t sizes[] = {1, 64, 99, 100, 101, 1000, 4096, MAX_MSG};
    size_t len = sizes[(size_t)(id + j) % (sizeof sizes / sizeof sizes[0])];
    for (size_t i = 0; i < len; i++)
        m[i] = (unsigned char)(id * 31 + j * 7 + (int)(i * 13 % 251));
    return len;
}

static int run_client(void *arg)
{
    client *c = arg;
    int fd = weft_tcp_dial(NULL, c->port, weft_deadline_in(STEP));

    if (fd < 0)
        return c->rc = fd;
    for (int j = 0; j < c->msgs && c->rc == 0; j++) {
        size_t len = fill(c->sent, c->id, j), got = 0;
        c->rc = weft_write_all(fd, c->sent, len, NULL, weft_deadline_in(STEP));
        while (c->rc == 0 && got < len) {
            ssize_t n = weft_read(fd, c->got + got, len - got,
                                  weft_deadline_in(STEP));
            if (n <= 0)
                c->rc = n == 0 ? -ECONNRESET : (int)n;
            else
                got += (size_t)n;
        }
        if (c->rc == 0 && memcmp(c->sent, c->got, len) != 0)
            c->rc = -EPROTO; /* a byte came back different */
        if (c->rc == 0)
            c->bytes += (long)len;
    }
    int rc = weft_close(fd); /* no ck_assert off the test's thread */
    if (c->rc == 0)
        c->rc = rc;
    return c->rc;
}

static long expected_bytes(int id, int msgs)
{
    static unsigned char m[MAX_MSG];
    long total = 0;
    for (int j = 0; j < msgs; j++)
        total += (long)fill(m, id, j);
    return total;
}

START_TEST(green_clients_get_every_byte_back)
{
    enum { N = 8 };
    server s;
    client *c = calloc(N, sizeof *c);
    weft_green *g[N];
    int msgs = (int)(20 * test_scale());

    server_start(&s);
    for (int i = 0; i < N; i++) {
        c[i].port = s.port, c[i].id = i, c[i].msgs = msgs;
        ck_assert_rc(weft_green_spawn(&g[i], run_client, &c[i], NULL), 0);
    }
    for (int i = 0; i < N; i++) {
        ck_assert_rc(weft_green_join(g[i], NULL, weft_deadline_in(4 * STEP)),
                     0);
        ck_assert_rc(c[i].rc, 0);
        ck_assert_int_eq(c[i].bytes, expected_bytes(i, msgs));
    }
    server_stop(&s);
    ck_assert_int_eq(atomic_load(&conns_served), N);
    free(c);
}
END_TEST

START_TEST(os_thread_clients_get_every_byte_back)
{
    enum { N = 4 };
    server s;
    client *c = calloc(N, sizeof *c);
    tt *t[N];
    int msgs = (int)(10 * test_scale());

    server_start(&s);
    for (int i = 0; i < N; i++) {
        c[i].port = s.port, c[i].id = 100 + i, c[i].msgs = msgs;
        t[i] = tt_start(run_client, &c[i]);
    }
    for (int i = 0; i < N; i++) {
        ck_assert_rc(tt_join(t[i]), 0);
        ck_assert_int_eq(c[i].bytes, expected_bytes(100 + i, msgs));
    }
    server_stop(&s);
    ck_assert_int_eq(atomic_load(&conns_served), N);
    free(c);
}
END_TEST

/* Many connections at once, each with one short exchange, green and OS
 * clients mixed: the acceptor keeps up and no connection is mixed up with
 * another. */
START_TEST(many_concurrent_connections)
{
    enum { G = 64, O = 4 };
    server s;
    client *c = calloc(G + O, sizeof *c);
    weft_green *g[G];
    tt *t[O];

    server_start(&s);
    for (int i = 0; i < G + O; i++)
        c[i].port = s.port, c[i].id = 200 + i, c[i].msgs = 2;
    for (int i = 0; i < O; i++)
        t[i] = tt_start(run_client, &c[G + i]);
    for (int i = 0; i < G; i++)
        ck_assert_rc(weft_green_spawn(&g[i], run_client, &c[i], NULL), 0);
    for (int i = 0; i < G; i++) {
        ck_assert_rc(weft_green_join(g[i], NULL, weft_deadline_in(4 * STEP)),
                     0);
        ck_assert_rc(c[i].rc, 0);
        ck_assert_int_eq(c[i].bytes, expected_bytes(200 + i, 2));
    }
    for (int i = 0; i < O; i++)
        ck_assert_rc(tt_join(t[i]), 0);
    server_stop(&s);
    ck_assert_int_eq(atomic_load(&conns_served), G + O);
    free(c);
}
END_TEST

/* ---- the example programs ----------------------------------------------------- */

static char out[1 << 16];

static int run_example(const char *cmd_args)
{
    const char *dir = getenv("WEFT_EXAMPLES_DIR");
    char cmd[4096];
    ck_assert_msg(dir != NULL, "WEFT_EXAMPLES_DIR is not set");
    snprintf(cmd, sizeof cmd, "%s/%s 2>&1", dir, cmd_args);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    int status = pclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(green_echo_example_echoes_exactly)
{
    ck_assert_int_eq(run_example("green_echo 8 12"), 0);
    ck_assert_msg(strstr(out, "echoed 96 lines"), "%s", out);
    ck_assert_msg(strstr(out, "every byte as sent"), "%s", out);
    ck_assert_msg(strstr(out, "client 7 got: hello from client 7, line 11\n"),
                  "%s", out);
    ck_assert_msg(strstr(out, "client 0 got: a 3000-byte line"), "%s", out);
}
END_TEST

START_TEST(idle_connections_example_reaches_its_count)
{
    char want[128];
    long n = 400 * test_scale();
    snprintf(want, sizeof want, "%ld", n);
    setenv("WEFT_IDLE_CONNS", want, 1);
    ck_assert_int_eq(run_example("green_idle_connections"), 0);
    snprintf(want, sizeof want, "held %ld idle connections, one green thread",
             n);
    ck_assert_msg(strstr(out, want), "%s", out);
    snprintf(want, sizeof want, "%ld of %ld connections closed cleanly; every "
             "green thread returned", n, n);
    ck_assert_msg(strstr(out, want), "%s", out);
    ck_assert_msg(strstr(out, "KiB per connection"), "%s", out);
}
END_TEST

START_TEST(idle_connections_example_rejects_a_bad_count)
{
    ck_assert_int_eq(run_example("green_idle_connections 0"), 2);
    ck_assert_msg(strstr(out, "usage:"), "%s", out);
}
END_TEST

static Suite *echo_suite(void)
{
    Suite *s = suite_create("echo");
    TCase *c = tcase_create("echo");
    tcase_set_timeout(c, 60);
    tcase_add_test(c, green_clients_get_every_byte_back);
    tcase_add_test(c, os_thread_clients_get_every_byte_back);
    tcase_add_test(c, many_concurrent_connections);
    tcase_add_test(c, green_echo_example_echoes_exactly);
    tcase_add_test(c, idle_connections_example_reaches_its_count);
    tcase_add_test(c, idle_connections_example_rejects_a_bad_count);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(echo_suite)
