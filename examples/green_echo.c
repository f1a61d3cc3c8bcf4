/* green_echo.c - a green echo server and its green clients, in one program,
 * talking over loopback.
 *
 * The server listens on 127.0.0.1 port 0 (any free port); an acceptor green
 * thread spawns one green thread per connection, which reads what arrives
 * and writes it back.  Each client is a green thread too: it dials the
 * server, sends its lines one at a time (one of them longer than the
 * server's buffer, so the echo comes back in several pieces), reads until
 * the whole line is back and compares it byte for byte.  Every call is
 * written as blocking code; when a socket is not ready the green thread
 * parks on weft's poller and its worker runs the others.
 *
 * It stops by itself: when the clients are done, main cancels the acceptor
 * (its weft_accept returns -ECANCELED), closes the listening socket, and
 * weft_runtime_shutdown waits for the server's connection threads, which
 * end when their clients hang up.  Every call has a deadline, so a fault
 * shows as an error, never as a hang.
 *
 * Usage: green_echo [clients] [lines]   (default 4 and 5)
 * Prints a few of the lines each client got back, then
 *   "echoed N lines (B bytes) for C clients, every byte as sent".
 * Exits 0 only if every line came back exactly.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"

#define SERVER_BUF 256      /* the server's read buffer */
#define LONG_LINE 3000      /* longer than SERVER_BUF: comes back in pieces */
#define TIMEOUT_NS (10LL * 1000000000)

static int port;
static int nlines;
static _Atomic long lines_ok, bytes_ok, failures;
static weft_lock print_lock = WEFT_LOCK_INIT;

/* ---- the server ---------------------------------------------------------- */

static int serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[SERVER_BUF];

    for (;;) {
        ssize_t n = weft_read(fd, buf, sizeof buf, weft_deadline_in(TIMEOUT_NS));
        if (n <= 0)
            break; /* 0: the client hung up */
        if (weft_write_all(fd, buf, (size_t)n, NULL,
                           weft_deadline_in(TIMEOUT_NS)) != 0)
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
            return 0; /* main is done with us */
        if (fd < 0) {
            fprintf(stderr, "accept: %s\n", weft_strerror(fd));
            return 1;
        }
        if (weft_green_spawn(NULL, serve, (void *)(intptr_t)fd, NULL) != 0)
            weft_close(fd);
    }
}

/* ---- the clients --------------------------------------------------------- */

/* Line j of client id: text, and for one line a long run of letters. */
static size_t make_line(char *out, size_t cap, int id, int j)
{
    int n = snprintf(out, cap, "hello from client %d, line %d", id, j);
    size_t len = (size_t)n;
    if (j == 1) {
        len += (size_t)snprintf(out + len, cap - len, ", long: ");
        for (; len < LONG_LINE - 1; len++)
            out[len] = (char)('a' + (len + (size_t)id) % 26);
    }
    out[len++] = '\n';
    return len;
}

static int client(void *arg)
{
    int id = (int)(intptr_t)arg;
    char line[LONG_LINE + 64], back[LONG_LINE + 64];
    int fd = weft_tcp_dial(NULL, port, weft_deadline_in(TIMEOUT_NS));

    if (fd < 0) {
        fprintf(stderr, "client %d: dial: %s\n", id, weft_strerror(fd));
        atomic_fetch_add(&failures, 1);
        return 1;
    }
    for (int j = 0; j < nlines; j++) {
        size_t len = make_line(line, sizeof line, id, j), got = 0;
        int rc = weft_write_all(fd, line, len, NULL,
                                weft_deadline_in(TIMEOUT_NS));
        while (rc == 0 && got < len) {
            ssize_t n = weft_read(fd, back + got, len - got,
                                  weft_deadline_in(TIMEOUT_NS));
            if (n <= 0)
                rc = n == 0 ? -ECONNRESET : (int)n;
            else
                got += (size_t)n;
        }
        if (rc != 0 || memcmp(line, back, len) != 0) {
            fprintf(stderr, "client %d line %d: %s\n", id, j,
                    rc ? weft_strerror(rc) : "came back different");
            atomic_fetch_add(&failures, 1);
            break;
        }
        atomic_fetch_add(&lines_ok, 1);
        atomic_fetch_add(&bytes_ok, (long)len);
        if (j == 0 || j == nlines - 1) {
            /* Show the short lines as they came back. */
            weft_lock_acquire(&print_lock, WEFT_FOREVER);
            printf("client %d got: %.*s", id, (int)len, back);
            weft_lock_release(&print_lock);
        } else if (j == 1) {
            weft_lock_acquire(&print_lock, WEFT_FOREVER);
            printf("client %d got: a %zu-byte line, echoed in pieces of at "
                   "most %d bytes\n", id, len, SERVER_BUF);
            weft_lock_release(&print_lock);
        }
    }
    weft_close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    int nclients = argc > 1 ? atoi(argv[1]) : 4;
    weft_green *acc, **clients;
    int rc, result;

    nlines = argc > 2 ? atoi(argv[2]) : 5;
    if (nclients <= 0 || nclients > 10000 || nlines <= 0) {
        fprintf(stderr, "usage: %s [clients] [lines]\n", argv[0]);
        return 2;
    }
    clients = calloc((size_t)nclients, sizeof *clients);
    int lfd = weft_tcp_listen(NULL, 0, 0);
    if (clients == NULL || lfd < 0) {
        fprintf(stderr, "listen: %s\n", weft_strerror(lfd < 0 ? lfd : -ENOMEM));
        return 1;
    }
    port = weft_sock_port(lfd);
    printf("green echo server on 127.0.0.1, %d clients, %d lines each\n",
           nclients, nlines);

    rc = weft_green_spawn(&acc, acceptor, (void *)(intptr_t)lfd, NULL);
    for (int i = 0; rc == 0 && i < nclients; i++)
        rc = weft_green_spawn(&clients[i], client, (void *)(intptr_t)i, NULL);
    if (rc != 0) {
        fprintf(stderr, "spawn: %s\n", weft_strerror(rc));
        return 1; /* the runtime's threads die with the process */
    }
    for (int i = 0; i < nclients; i++)
        if (weft_green_join(clients[i], NULL, weft_deadline_in(4 * TIMEOUT_NS)) != 0)
            atomic_fetch_add(&failures, 1);

    /* Stop accepting: the acceptor is parked in weft_accept (or about to
     * be); cancelling it ends that call with -ECANCELED. */
    weft_green_cancel(acc);
    if (weft_green_join(acc, &result, weft_deadline_in(TIMEOUT_NS)) != 0 ||
        result != 0)
        atomic_fetch_add(&failures, 1);
    weft_close(lfd);
    if (weft_runtime_shutdown(weft_deadline_in(TIMEOUT_NS)) != 0)
        atomic_fetch_add(&failures, 1);

    long expect = (long)nclients * nlines;
    printf("echoed %ld lines (%ld bytes) for %d clients, %s\n",
           atomic_load(&lines_ok), atomic_load(&bytes_ok), nclients,
           atomic_load(&lines_ok) == expect && atomic_load(&failures) == 0
               ? "every byte as sent"
               : "SOME LINES WERE WRONG OR LOST");
    free(clients);
    return atomic_load(&lines_ok) == expect && atomic_load(&failures) == 0 ? 0
                                                                          : 1;
}
