/* downloader.c - download several pages concurrently with a thread pool
 * and handle each as it completes (Python's ThreadPoolExecutor with
 * as_completed, the seed's "downloading links concurrently"), then the same
 * pages one after another, and compare the times.
 *
 * So that it needs no network, the program serves the pages itself: a small
 * HTTP/1.0 server on 127.0.0.1, port 0 (any free port), written with green
 * threads and weft's I/O calls (weft/io.h): an acceptor green thread and one
 * green thread per connection.  Each page has a size and a delay; the
 * server waits out the delay with a deadline of its own
 * (weft_green_sleep_until) before it answers, so a slow page parks only its
 * own green thread.  Two of the URLs fail: one names a page the server does
 * not have (HTTP 404), the other a port where nothing listens (connection
 * refused).
 *
 * The client side is what the seed's Python does, in C: a thread pool of 5
 * workers (weft_thread_pool_create), one weft_executor_submit per URL, and
 * weft_as_completed_next to take the futures in the order they finish.  A
 * download that fails fails its future with a code and a message
 * (weft_task_fail), which the loop prints; the others go on.
 *
 * It stops by itself: main cancels the acceptor, closes the listening
 * socket and shuts the runtime down.  Every call has a deadline, so a fault
 * shows as an error, never as a hang.
 *
 * Prints one line per page as it completes (url, bytes, milliseconds since
 * the start) for the concurrent run and then for the serial run, then both
 * times.  Exits 0 only if every good page arrived whole, the two bad URLs
 * failed, and the concurrent run beat the serial one.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"

#define IO_TIMEOUT_NS (5LL * 1000000000)
#define WORKERS 5

/* The server's pages: path, body size, delay before the answer. */
typedef struct page {
    const char *path;
    size_t size;
    int delay_ms;
} page;

static const page pages[] = {
    {"/index.html", 1200, 250},
    {"/news.html", 48000, 100},
    {"/about.html", 700, 50},
    {"/archive.tar", 300000, 150},
    {"/slow.html", 9000, 400},
};
#define NPAGES (sizeof pages / sizeof pages[0])

/* ---- the server: green threads ------------------------------------------ */

static const page *find_page(const char *path)
{
    for (size_t i = 0; i < NPAGES; i++)
        if (strcmp(pages[i].path, path) == 0)
            return &pages[i];
    return NULL;
}

/* Serve one request on the connection (passed as an intptr_t), then close
 * it: HTTP/1.0, one request per connection. */
static int serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char req[1024], path[256], head[128];
    size_t got = 0;
    int64_t deadline = weft_deadline_in(IO_TIMEOUT_NS);

    /* Read the request head, up to its blank line. */
    while (got < sizeof req - 1) {
        ssize_t n = weft_read(fd, req + got, sizeof req - 1 - got, deadline);
        if (n <= 0)
            break;
        got += (size_t)n;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    req[got] = '\0';
    const page *p = NULL;
    if (sscanf(req, "GET %255s HTTP/1.", path) == 1)
        p = find_page(path);
    if (p == NULL) {
        const char *nf = "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        weft_write_all(fd, nf, strlen(nf), NULL, deadline);
        weft_close(fd);
        return 0;
    }
    /* The page's delay: this green thread parks until its deadline; the
     * other connections are served meanwhile. */
    weft_green_sleep_until(weft_deadline_ms(p->delay_ms));
    char *body = malloc(p->size);
    if (body != NULL) {
        for (size_t i = 0; i < p->size; i++)
            body[i] = (char)('a' + i % 26);
        int hn = snprintf(head, sizeof head,
                          "HTTP/1.0 200 OK\r\nContent-Length: %zu\r\n\r\n",
                          p->size);
        if (weft_write_all(fd, head, (size_t)hn, NULL, deadline) == 0)
            weft_write_all(fd, body, p->size, NULL, deadline);
        free(body);
    }
    weft_close(fd);
    return 0;
}

/* Accept connections until cancelled, one green thread each. */
static int acceptor(void *arg)
{
    int lfd = (int)(intptr_t)arg;

    for (;;) {
        int fd = weft_accept(lfd, NULL, NULL, WEFT_FOREVER);
        if (fd == -ECANCELED)
            return 0;
        if (fd < 0) {
            fprintf(stderr, "accept: %s\n", weft_strerror(fd));
            return fd;
        }
        if (weft_green_spawn(NULL, serve, (void *)(intptr_t)fd, NULL) != 0)
            weft_close(fd);
    }
}

/* ---- the client: plain blocking code, run by the pool's OS threads ------- */

typedef struct url {
    char text[96];
    int port;
    char path[64];
} url;

/* Fetch u; the result is the body's size.  A failure fails the task with
 * a code and a message naming what went wrong. */
static int download(void *arg, void **result)
{
    const url *u = arg;
    int64_t deadline = weft_deadline_in(IO_TIMEOUT_NS);
    char req[160], *buf = NULL;
    size_t len = 0, cap = 0;
    int rc, status = 0;

    int fd = weft_tcp_dial("127.0.0.1", u->port, deadline);
    if (fd < 0)
        return weft_task_fail(fd, "connect: %s", weft_strerror(fd));
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
                     u->path);
    rc = weft_write_all(fd, req, (size_t)n, NULL, deadline);
    for (ssize_t got = 1; rc == 0 && got > 0;) {
        if (cap - len < 16384) {
            char *nb = realloc(buf, cap * 2 + 16384);
            if (nb == NULL) {
                rc = -ENOMEM;
                break;
            }
            buf = nb;
            cap = cap * 2 + 16384;
        }
        got = weft_read(fd, buf + len, cap - len - 1, deadline);
        if (got < 0)
            rc = (int)got;
        else
            len += (size_t)got;
    }
    weft_close(fd);
    if (rc != 0) {
        free(buf);
        return weft_task_fail(rc, "%s", weft_strerror(rc));
    }
    buf[len] = '\0';
    char *body = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || body == NULL) {
        free(buf);
        return weft_task_fail(-EPROTO, "not an HTTP answer");
    }
    if (status != 200) {
        char reason[64] = "";
        sscanf(buf, "HTTP/1.%*d %*d %63[^\r\n]", reason);
        free(buf);
        return weft_task_fail(-ENOENT, "HTTP %d %s", status, reason);
    }
    *result = (void *)(uintptr_t)(len - (size_t)(body + 4 - buf));
    free(buf);
    return 0;
}

/* ---- main ---------------------------------------------------------------- */

static int64_t t_start;

static double ms_since(int64_t t0)
{
    return (double)(weft_now() - t0) / 1e6;
}

/* Check one outcome and print it; returns 0 if it is what the URL should
 * give (the page's size, or a failure for the two bad URLs). */
static int report(const url *u, size_t want, int rc, uintptr_t bytes,
                  int code, const char *msg)
{
    if (rc == 0) {
        printf("  %-44s %7lu bytes  at %4.0f ms\n", u->text,
               (unsigned long)bytes, ms_since(t_start));
        return bytes == want && want != 0 ? 0 : 1;
    }
    printf("  %-44s FAILED at %4.0f ms: %s (%s)\n", u->text,
           ms_since(t_start), msg ? msg : "?", weft_errname(code));
    return want == 0 ? 0 : 1;
}

int main(void)
{
    url urls[NPAGES + 2];
    size_t want[NPAGES + 2];
    weft_future *fs[NPAGES + 2];
    size_t nurls = 0;
    int bad = 0, rc;

    setvbuf(stdout, NULL, _IOLBF, 0);
    rc = weft_runtime_start(0);
    int lfd = rc == 0 ? weft_tcp_listen("127.0.0.1", 0, 0) : rc;
    if (lfd < 0) {
        fprintf(stderr, "start the server: %s\n", weft_strerror(lfd));
        return 1;
    }
    int port = weft_sock_port(lfd);
    /* A port where nothing listens: take a free one and give it back. */
    int gone = weft_tcp_listen("127.0.0.1", 0, 0);
    int dead_port = gone >= 0 ? weft_sock_port(gone) : 1;
    if (gone >= 0)
        weft_close(gone);
    weft_green *acc;
    if ((rc = weft_green_spawn(&acc, acceptor, (void *)(intptr_t)lfd, NULL))) {
        fprintf(stderr, "spawn the acceptor: %s\n", weft_strerror(rc));
        return 1;
    }

    for (size_t i = 0; i < NPAGES + 2; i++) {
        url *u = &urls[nurls];
        u->port = i == NPAGES + 1 ? dead_port : port;
        snprintf(u->path, sizeof u->path, "%s",
                 i < NPAGES ? pages[i].path : "/missing.html");
        snprintf(u->text, sizeof u->text, "http://127.0.0.1:%d%s", u->port,
                 u->path);
        want[nurls++] = i < NPAGES ? pages[i].size : 0;
    }

    /* Concurrently: a pool of 5, futures taken as they complete. */
    printf("downloading %zu URLs with a pool of %d threads, as completed:\n",
           nurls, WORKERS);
    weft_executor_opts o = {.max_workers = WORKERS, .name_prefix = "dl"};
    weft_executor *ex;
    weft_as_completed *it;
    if ((rc = weft_thread_pool_create(&ex, &o))) {
        fprintf(stderr, "pool: %s\n", weft_strerror(rc));
        return 1;
    }
    t_start = weft_now();
    for (size_t i = 0; i < nurls; i++)
        if ((rc = weft_executor_submit(ex, download, &urls[i], &fs[i],
                                       weft_deadline_in(IO_TIMEOUT_NS)))) {
            fprintf(stderr, "submit: %s\n", weft_strerror(rc));
            return 1;
        }
    if ((rc = weft_as_completed_start(&it, fs, nurls))) {
        fprintf(stderr, "as_completed: %s\n", weft_strerror(rc));
        return 1;
    }
    weft_future *f;
    while ((rc = weft_as_completed_next(it, &f, weft_deadline_in(
                                            2 * IO_TIMEOUT_NS))) == 0) {
        size_t i = 0;
        void *v = NULL;
        int code = 0;
        const char *msg = NULL;

        while (fs[i] != f)
            i++;
        int r = weft_future_result(f, &v, WEFT_NOW);
        if (r == WEFT_EFAILED)
            weft_future_error(f, &code, &msg, WEFT_NOW);
        bad |= report(&urls[i], want[i], r, (uintptr_t)v, code, msg);
    }
    if (rc != -EPIPE) {
        fprintf(stderr, "as_completed_next: %s\n", weft_strerror(rc));
        bad = 1;
    }
    double t_conc = ms_since(t_start);
    weft_as_completed_end(it);
    for (size_t i = 0; i < nurls; i++)
        weft_future_release(fs[i]);
    weft_executor_destroy(ex);

    /* Serially: the same downloads, one after another, in this thread. */
    printf("the same URLs one after another:\n");
    t_start = weft_now();
    for (size_t i = 0; i < nurls; i++) {
        void *v = NULL;
        /* Outside a task weft_task_fail only returns the code: the message
         * here is the code's. */
        int r = download(&urls[i], &v);
        bad |= report(&urls[i], want[i], r, (uintptr_t)v, r,
                      weft_strerror(r));
    }
    double t_ser = ms_since(t_start);

    printf("concurrent: %.0f ms, serial: %.0f ms (%.1fx)\n", t_conc, t_ser,
           t_ser / t_conc);
    if (t_conc >= t_ser) {
        printf("the concurrent run was not faster\n");
        bad = 1;
    }

    weft_green_cancel(acc);
    weft_green_join(acc, NULL, weft_deadline_in(IO_TIMEOUT_NS));
    weft_close(lfd);
    rc = weft_runtime_shutdown(weft_deadline_in(IO_TIMEOUT_NS));
    if (rc != 0) {
        fprintf(stderr, "runtime shutdown: %s\n", weft_strerror(rc));
        bad = 1;
    }
    printf(bad ? "FAILED\n" : "every page arrived whole; the bad URLs failed "
                              "with their reasons\n");
    return bad;
}
