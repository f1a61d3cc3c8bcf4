/* worker.c - the life of a worker process: read a frame, run the task it
 * names, write the result, repeat until QUIT or the parent goes.
 *
 * Design: a worker is a forked child of the forkserver and runs one thread,
 * so it uses plain blocking I/O and static state.  It reads into a buffer
 * whatever the socket holds (one read may bring several frames, and a
 * small frame never costs a second read for its body) and writes each
 * reply with one send.  The parent may send the next task while this one
 * runs (two in flight; manager.c); tasks run in the order they arrive and
 * a task's result always leaves before the next task starts, so the
 * parent knows which task a dead worker was running (the first without a
 * result) and that the one after it never started.  It runs the
 * initializer (an INIT frame, first if the pool has one), then TASK frames:
 * each carries the function as (module, offset) (registry.c) and n inputs;
 * the reply carries n (code, bytes) pairs, the bytes being the output or
 * the failure message.  Any error on its socket (the parent died or closed
 * it) ends the worker with _exit: there is nobody left to report to.  The
 * worker never runs atexit handlers or flushes stdio buffers it inherited
 * (_exit, not exit), so it cannot write the parent's buffered output twice.
 *
 * State: in_worker, fail_msg and fail_set are this process's own (one
 * thread); in the parent in_worker stays false and nothing else is used.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "process/process.h"

static bool in_worker;
static char fail_msg[1024];
static bool fail_set;

bool weft_process_in_worker(void)
{
    return in_worker;
}

int weft_process_fail(int code, const char *fmt, ...)
{
    va_list ap;
    if (!in_worker || fmt == NULL)
        return code;
    va_start(ap, fmt);
    vsnprintf(fail_msg, sizeof fail_msg, fmt, ap);
    va_end(ap);
    fail_set = true;
    return code;
}

/* Run fn on one input and append (code, output-or-message) to reply. */
static int run_one(weft_process_fn fn, const void *in, size_t len,
                   weft_bytes *out, weft_bytes *reply)
{
    int rc;

    weft_bytes_clear(out);
    fail_set = false;
    rc = fn(in, len, out);
    if (rc > 0)
        rc = WEFT_EFAILED;
    if (rc == 0) {
        rc = weft_bytes_put_i64(reply, 0);
        return rc ? rc : weft_bytes_put_blob(reply, out->data, out->len);
    }
    if (weft_bytes_put_i64(reply, rc) != 0)
        return -ENOMEM;
    if (!fail_set)
        snprintf(fail_msg, sizeof fail_msg, "%s", weft_strerror(rc));
    return weft_bytes_put_blob(reply, fail_msg, strlen(fail_msg) + 1);
}

/* The worker's receive buffer: bytes read from the socket and not yet
 * served.  One read takes whatever has arrived, so frames that came
 * together cost one system call. */
typedef struct rxbuf {
    unsigned char *data;
    size_t len, cap, skip; /* skip: bytes of the last frame, consumed at
                              the next call */
} rxbuf;

#define RX_MIN 65536

/* The next whole frame: its type, *body and *len point into rx (valid until
 * the next call); or -EPIPE / -EPROTO / -ENOMEM.  Blocks only when no whole
 * frame is buffered. */
static int read_frame(int fd, rxbuf *rx, const unsigned char **body,
                      uint64_t *len)
{
    weft__frame h;

    if (rx->skip > 0) {
        memmove(rx->data, rx->data + rx->skip, rx->len - rx->skip);
        rx->len -= rx->skip;
        rx->skip = 0;
    }
    for (;;) {
        size_t want = sizeof h;
        ssize_t got;
        if (rx->len >= sizeof h) {
            memcpy(&h, rx->data, sizeof h);
            if (h.magic != WEFT__FRAME_MAGIC || h.len > WEFT__FRAME_MAX)
                return -EPROTO;
            want = sizeof h + (size_t)h.len;
            if (rx->len >= want) {
                *body = rx->data + sizeof h;
                *len = h.len;
                rx->skip = want;
                return (int)h.type;
            }
        }
        if (want > rx->cap || rx->cap < RX_MIN) {
            size_t cap = want > RX_MIN ? want : RX_MIN;
            unsigned char *d = realloc(rx->data, cap);
            if (d == NULL)
                return -ENOMEM;
            rx->data = d;
            rx->cap = cap;
        }
        got = read(fd, rx->data + rx->len, rx->cap - rx->len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -EPIPE;
        rx->len += (size_t)got;
    }
}

/* One INIT or TASK frame: run it and build the reply frame. */
static int serve(int type, const unsigned char *body, size_t blen,
                 weft_bytes *out, weft_bytes *reply)
{
    weft_bytes_reader r;
    const char *module;
    uint64_t off, n;
    weft_process_fn fn;
    const void *in;
    size_t len;
    int rc;

    weft_bytes_reader_init(&r, body, blen);
    if (weft_bytes_get_str(&r, &module, NULL) != 0 ||
        weft_bytes_get_u64(&r, &off) != 0)
        return -EPROTO;
    fn = weft__process_resolve(module, off);
    if (type == WEFT__FRAME_INIT) {
        if (weft_bytes_get_blob(&r, &in, &len) != 0)
            return -EPROTO;
        rc = weft__frame_begin(reply, WEFT__FRAME_INITR);
        if (rc == 0 && fn == NULL) {
            snprintf(fail_msg, sizeof fail_msg,
                     "module '%s' is not loaded in the worker", module);
            rc = weft_bytes_put_i64(reply, -ENOENT);
            if (rc == 0)
                rc = weft_bytes_put_blob(reply, fail_msg, strlen(fail_msg) + 1);
        } else if (rc == 0) {
            rc = run_one(fn, in, len, out, reply);
        }
        weft__frame_end(reply);
        return rc;
    }
    if (weft_bytes_get_u64(&r, &n) != 0)
        return -EPROTO;
    rc = weft__frame_begin(reply, WEFT__FRAME_RESULT);
    if (rc == 0)
        rc = weft_bytes_put_u64(reply, n);
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        if (weft_bytes_get_blob(&r, &in, &len) != 0)
            return -EPROTO;
        if (fn == NULL) {
            snprintf(fail_msg, sizeof fail_msg,
                     "module '%s' is not loaded in the worker", module);
            rc = weft_bytes_put_i64(reply, -ENOENT);
            if (rc == 0)
                rc = weft_bytes_put_blob(reply, fail_msg, strlen(fail_msg) + 1);
        } else {
            rc = run_one(fn, in, len, out, reply);
        }
    }
    weft__frame_end(reply);
    return rc;
}

void weft__process_worker_main(int fd)
{
    weft_bytes out = WEFT_BYTES_INIT, reply = WEFT_BYTES_INIT;
    rxbuf rx = {NULL, 0, 0, 0};

    in_worker = true;
    for (;;) {
        const unsigned char *body = NULL;
        uint64_t blen = 0;
        int type = read_frame(fd, &rx, &body, &blen);
        if (type == WEFT__FRAME_INIT || type == WEFT__FRAME_TASK) {
            if (serve(type, body, (size_t)blen, &out, &reply) != 0)
                _exit(120); /* out of memory or a garbled frame */
            if (weft__io_write_full(fd, reply.data, reply.len) != 0)
                _exit(0);
        } else if (type < 0 || type == WEFT__FRAME_QUIT) {
            _exit(0);
        } else {
            _exit(121); /* a frame a worker never receives */
        }
    }
}
