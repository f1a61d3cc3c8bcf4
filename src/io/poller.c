/* poller.c - the netpoller: which green thread waits for which descriptor,
 * and the readiness events that wake them.
 *
 * Design (Go's netpoller; ../shared/reference/runtime-anchors.md).  Every
 * descriptor weft's I/O touches gets an entry in a table indexed by its
 * number, made at its first use: the descriptor is switched to O_NONBLOCK
 * and added once to the process-wide pollset (src/platform/pollset.h:
 * epoll, edge-triggered, both directions).  An operation tries the system
 * call first; only on EAGAIN does it wait, and then
 *   - a green thread parks on the entry's wait queue for that direction;
 *     whoever collects the descriptor's next edge wakes every green thread
 *     queued for it, and they try again;
 *   - an OS thread blocks in ppoll(2) on that one descriptor, so that OS
 *     threads need no running green runtime.
 * Workers collect events (sched.c): without waiting when their run queues
 * are empty, every few dozen scheduling rounds while busy, and, while idle,
 * one worker at a time blocks in the pollset until its earliest timer or
 * until interrupted (wakep and shutdown interrupt it).
 *
 * Lost edges.  An edge that comes between the EAGAIN and the park would
 * never be reported again.  Each entry counts the edges it has seen per
 * direction (rseq, wseq).  An operation reads the count before its system
 * call (weft__io_prepare) and parks only if, under the entry's guard, the
 * count is still the same; the collector bumps the count before it takes
 * the guard to wake.  So either the waiter sees the new count and retries,
 * or it is queued before the collector looks at the queue.
 *
 * Skipping a read that would say EAGAIN.  A read of a stream socket that
 * returns less than it asked for has emptied the socket's buffer; the
 * entry remembers the edge count it was taken at (drained).  The next read
 * at the same count goes straight to the wait: new data makes a new edge
 * (edge-triggered), and collecting it bumps the count, so the wait's check
 * under the guard or the wake-up catches it.  A request-response server
 * saves one system call per request this way.  Not for datagram or
 * sequenced-packet sockets (a short read there is one message, not an
 * empty buffer): registration asks SO_TYPE.
 *
 * Closing.  A system call on a descriptor runs under a reference taken in
 * weft__io_prepare; weft_close sets CLOSING in the same word (new calls
 * fail with -EBADF), wakes the parked waiters, waits on that word for the
 * calls in flight to end, and only then calls close(2): a call can never
 * reach another descriptor that took the number (Go's fdMutex does this
 * job).  References are never held across a wait.
 *
 * Reuse of descriptor numbers.  weft_close and weft_fd_forget bump the
 * entry's generation, take the descriptor out of the pollset and wake its
 * waiters with -EBADF.  The token registered with the pollset carries the
 * generation, and an event whose generation is old is dropped, so an edge
 * of a closed descriptor never wakes a waiter of the next one with its
 * number.  Descriptors that weft creates itself (accept, the TCP helpers)
 * start from a fresh entry in case their number was closed behind weft's
 * back.  Entries are never freed: table chunks live as long as the process,
 * so a collector may look at any entry at any time.
 *
 * Locking: an entry's rq.guard guards its two wait queues, its state and
 * its registration; gen, state and the edge counts are atomics so that the
 * fast path and the collector read them without the guard.  The table's
 * chunk pointers are set once with a CAS.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "io/io.h"
#include "io/poller.h"
#include "lib/assert.h"
#include "park/park.h"
#include "platform/platform.h"
#include "platform/pollset.h"
#include "weft/io.h"
#include "weft/time.h"

#define CHUNK_BITS 12
#define CHUNK (1 << CHUNK_BITS)
#define MAX_FD (1 << 21)
#define NCHUNKS (MAX_FD / CHUNK)

enum { UNREG = 0, POLLED = 1, UNPOLLABLE = 2 };

struct weft__pfd {
    weft__waitq rq;             /* readers; its guard guards the entry */
    weft__waitq wq;             /* writers */
    _Atomic uint32_t gen;       /* bumped by forget; in the token */
    _Atomic uint32_t state;     /* UNREG, POLLED, UNPOLLABLE */
    _Atomic uint32_t rseq;      /* edges seen, per direction */
    _Atomic uint32_t wseq;
    _Atomic uint32_t notsock;   /* 1: send(2) said ENOTSOCK; reset by
                                   forget */
    void (*_Atomic hook)(void); /* an internal descriptor's handler (the
                                   signal pipe): called on its events
                                   instead of waking waiters */
    _Atomic uint32_t refs;      /* system calls in flight, and CLOSING:
                                   a futex word for weft_close */
    _Atomic uint32_t stream;    /* a stream socket: a short read means
                                   its buffer was empty */
    _Atomic uint32_t drained;   /* rseq + 1 when a read saw it empty at
                                   that count; 0: unknown */
} __attribute__((aligned(64)));

#define CLOSING 0x80000000u

static _Atomic(weft__pfd *) table[NCHUNKS];
static _Atomic long nwaiters;     /* green threads parked on entries */
static _Atomic int64_t last_poll; /* when events were last collected */

long weft__poller_waiters(void)
{
    return atomic_load_explicit(&nwaiters, memory_order_relaxed);
}

bool weft__poller_wanted(void)
{
    return atomic_load_explicit(&nwaiters, memory_order_relaxed) > 0;
}

int64_t weft__poller_last_poll(void)
{
    return atomic_load_explicit(&last_poll, memory_order_relaxed);
}

/* The entry of fd, made if create; NULL if fd is out of range or (without
 * create) has never been used. */
static weft__pfd *entry(int fd, bool create)
{
    weft__pfd *c, *fresh = NULL;

    if (fd < 0 || fd >= MAX_FD)
        return NULL;
    c = atomic_load_explicit(&table[fd >> CHUNK_BITS], memory_order_acquire);
    if (WEFT_LIKELY(c != NULL))
        return &c[fd & (CHUNK - 1)];
    if (!create)
        return NULL;
    fresh = aligned_alloc(64, CHUNK * sizeof *fresh);
    if (fresh == NULL)
        return NULL;
    for (int i = 0; i < CHUNK; i++)
        fresh[i] = (weft__pfd){0};
    if (!atomic_compare_exchange_strong(&table[fd >> CHUNK_BITS], &c,
                                        fresh)) {
        free(fresh); /* another thread made it first: c is theirs */
        return &c[fd & (CHUNK - 1)];
    }
    return &fresh[fd & (CHUNK - 1)];
}

static uint64_t token(int fd, uint32_t gen)
{
    return (uint64_t)gen << 32 | (uint32_t)fd;
}

static uint32_t is_stream(int fd)
{
    int type = 0;
    socklen_t len = sizeof type;

    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
           type == SOCK_STREAM;
}

/* First use of fd: non-blocking mode and the pollset.  Guard held. */
static int register_locked(weft__pfd *p, int fd, bool nonblocking)
{
    int flags, rc;

    if (atomic_load(&p->state) != UNREG)
        return 0;
    if (!nonblocking) {
        flags = fcntl(fd, F_GETFL);
        if (flags < 0)
            return -errno;
        if (!(flags & O_NONBLOCK) &&
            fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
            return -errno;
    }
    atomic_store(&p->stream, is_stream(fd));
    atomic_store(&p->drained, 0);
    rc = weft__pollset_open();
    if (rc == 0)
        rc = weft__pollset_add(fd, token(fd, atomic_load(&p->gen)));
    if (rc == -EPERM) {
        atomic_store(&p->state, UNPOLLABLE);
        return 0;
    }
    if (rc == 0)
        atomic_store(&p->state, POLLED);
    return rc;
}

int weft__io_prepare(int fd, weft__io_snap *s)
{
    weft__pfd *p = entry(fd, true);
    uint32_t r;
    int rc = 0;

    if (p == NULL)
        return fd < 0 || fd >= MAX_FD ? -EBADF : -ENOMEM;
    /* A reference for the system call to come: weft_close waits for the
     * calls in flight before close(2), so that none of them can reach a
     * descriptor that took the number meanwhile. */
    r = atomic_load_explicit(&p->refs, memory_order_relaxed);
    do {
        if (r & CLOSING)
            return -EBADF;
    } while (!atomic_compare_exchange_weak(&p->refs, &r, r + 1));
    if (WEFT_UNLIKELY(atomic_load_explicit(&p->state, memory_order_acquire)
                      == UNREG)) {
        weft__waitq_lock(&p->rq);
        rc = register_locked(p, fd, false);
        weft__waitq_unlock(&p->rq);
    }
    s->p = p;
    s->fd = fd;
    if (rc != 0) {
        weft__io_release(s);
        return rc;
    }
    s->gen = atomic_load(&p->gen);
    s->rseq = atomic_load(&p->rseq);
    s->wseq = atomic_load(&p->wseq);
    s->notsock = atomic_load_explicit(&p->notsock, memory_order_relaxed);
    return 0;
}

void weft__io_release(const weft__io_snap *s)
{
    uint32_t r = atomic_fetch_sub(&s->p->refs, 1);

    if ((r & CLOSING) && (r & ~CLOSING) == 1)
        (void)weft__futex_wake(&s->p->refs, 1); /* the closer waits */
}

bool weft__io_known_empty(const weft__io_snap *s)
{
    /* Only a green thread waits for the edge count to move; an OS thread
     * polls the level, and must then read. */
    return atomic_load_explicit(&s->p->drained, memory_order_relaxed) ==
               s->rseq + 1 &&
           weft__self()->kind == WEFT__WAITER_GREEN &&
           atomic_load_explicit(&s->p->state, memory_order_relaxed) == POLLED;
}

void weft__io_read_done(const weft__io_snap *s, size_t asked, ssize_t got)
{
    /* The snapshot's count, taken before the read: an edge collected
     * after it makes the next read look again. */
    if (got >= 0 && (size_t)got < asked && got > 0 &&
        atomic_load_explicit(&s->p->stream, memory_order_relaxed))
        atomic_store_explicit(&s->p->drained, s->rseq + 1,
                              memory_order_relaxed);
}

void weft__io_mark_notsock(const weft__io_snap *s)
{
    atomic_store_explicit(&s->p->notsock, 1, memory_order_relaxed);
}

/* ppoll fd for events until the deadline (WEFT_NOW: just ask): 1 ready
 * (or an error or hang-up is pending), 0 once the deadline has passed,
 * -EBADF for a descriptor that is not open, or another negative code. */
static int poll_fd(int fd, int events, int64_t deadline)
{
    struct pollfd pfd = {.fd = fd, .events = 0};
    struct timespec ts, *tsp;
    int64_t left;
    int n;

    if (events & WEFT_READABLE)
        pfd.events |= POLLIN | POLLRDHUP;
    if (events & WEFT_WRITABLE)
        pfd.events |= POLLOUT;
    for (;;) {
        tsp = NULL;
        if (deadline != WEFT_FOREVER) {
            left = deadline - weft__clock_now();
            if (left < 0)
                left = 0;
            ts.tv_sec = left / 1000000000;
            ts.tv_nsec = left % 1000000000;
            tsp = &ts;
        }
        n = ppoll(&pfd, 1, tsp, NULL);
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n > 0)
            return pfd.revents & POLLNVAL ? -EBADF : 1;
        if (n == 0 && deadline != WEFT_FOREVER &&
            weft__clock_now() >= deadline)
            return 0;
    }
}

/* An OS thread (or an unpollable descriptor) waits in ppoll. */
static int os_wait(int fd, int events, int64_t deadline)
{
    int rc = poll_fd(fd, events, deadline);

    return rc == 0 ? -ETIMEDOUT : rc < 0 ? rc : 0;
}

int weft__io_ready(const weft__io_snap *s, int events)
{
    return poll_fd(s->fd, events, WEFT_NOW);
}

/* Whether an edge came in a direction the caller waits for since s was
 * taken. */
static bool moved(const weft__io_snap *s, int events)
{
    return ((events & WEFT_READABLE) && atomic_load(&s->p->rseq) != s->rseq) ||
           ((events & WEFT_WRITABLE) && atomic_load(&s->p->wseq) != s->wseq);
}

int weft__io_wait(const weft__io_snap *s, int events, int64_t deadline)
{
    weft__pfd *p = s->p;
    weft__waiter *w = weft__self();
    weft__wait_entry er, ew, *by;
    bool both = (events & WEFT_READABLE) && (events & WEFT_WRITABLE);
    int rc;

    if (w->kind != WEFT__WAITER_GREEN ||
        atomic_load(&p->state) == UNPOLLABLE)
        return os_wait(s->fd, events, deadline);
    weft__waitq_lock(&p->rq);
    if (atomic_load(&p->gen) != s->gen ||
        atomic_load(&p->state) != POLLED) {
        weft__waitq_unlock(&p->rq);
        return -EBADF;
    }
    if (moved(s, events)) {
        weft__waitq_unlock(&p->rq);
        return 0; /* an edge came meanwhile: try again */
    }
    weft__wait_prepare(w, events & WEFT_READABLE ? "fd readable"
                                                 : "fd writable", p);
    if (events & WEFT_READABLE)
        weft__waitq_push(&p->rq, &er, w);
    if (events & WEFT_WRITABLE)
        weft__waitq_push(&p->wq, &ew, w);
    atomic_fetch_add(&nwaiters, 1);
    weft__waitq_unlock(&p->rq);
    rc = weft__park(w, deadline);
    atomic_fetch_sub(&nwaiters, 1);
    if (rc != 0 || both) {
        /* Our other entry (or both, on a timeout) may still be queued, and
         * lives on this stack: unlink it under the guard, which also waits
         * out a waker that popped it and lost the claim. */
        weft__waitq_lock(&p->rq);
        if (events & WEFT_READABLE)
            (void)weft__waitq_remove(&p->rq, &er);
        if (events & WEFT_WRITABLE)
            (void)weft__waitq_remove(&p->wq, &ew);
        weft__waitq_unlock(&p->rq);
        if (rc != 0)
            return rc;
    }
    by = weft__woken_by(w);
    return by->result;
}

int weft__io_set_hook(int fd, void (*hook)(void))
{
    weft__io_snap s;
    int rc = weft__io_prepare(fd, &s);

    if (rc == 0) {
        atomic_store_explicit(&s.p->hook, hook, memory_order_release);
        weft__io_release(&s);
    }
    return rc;
}

void weft__poller_waiter_add(long d)
{
    atomic_fetch_add(&nwaiters, d);
}

/* Leave the poller and wake the waiters with -EBADF.  Guard held. */
static void detach_locked(weft__pfd *p, int fd)
{
    if (atomic_load(&p->state) != UNREG) {
        atomic_fetch_add(&p->gen, 1);
        if (atomic_load(&p->state) == POLLED)
            weft__pollset_del(fd);
        atomic_store(&p->state, UNREG);
        atomic_store(&p->notsock, 0);
        atomic_store(&p->hook, NULL);
    }
    (void)weft__wake_all(&p->rq, -EBADF);
    (void)weft__wake_all(&p->wq, -EBADF);
}

int weft__io_forget(int fd)
{
    weft__pfd *p = entry(fd, false);

    if (fd < 0)
        return -EBADF;
    if (p == NULL)
        return 0;
    weft__waitq_lock(&p->rq);
    detach_locked(p, fd);
    weft__waitq_unlock(&p->rq);
    return 0;
}

int weft__io_close(int fd)
{
    weft__pfd *p = entry(fd, false);
    uint32_t r;

    if (fd < 0)
        return -EBADF;
    if (p != NULL) {
        /* New calls now fail with -EBADF; parked ones are woken. */
        r = atomic_fetch_or(&p->refs, CLOSING);
        if (r & CLOSING)
            return -EBADF; /* closed by someone else right now */
        weft__waitq_lock(&p->rq);
        detach_locked(p, fd);
        weft__waitq_unlock(&p->rq);
        /* Calls in flight are non-blocking system calls (or a read of a
         * regular file): wait for them, on the futex word, briefly. */
        while ((r = atomic_load(&p->refs)) != CLOSING)
            (void)weft__futex_wait(&p->refs, r, WEFT_FOREVER);
        /* The entry is ready for the descriptor that will take the number
         * once close(2) returns. */
        atomic_store(&p->refs, 0);
    }
    return close(fd) == 0 ? 0 : -errno;
}

void weft__io_fresh(int fd)
{
    weft__pfd *p = entry(fd, true);

    if (p == NULL)
        return; /* out of range or no memory: the first call will say */
    /* Registered still: its number was closed without weft_close. */
    if (atomic_load(&p->state) != UNREG)
        (void)weft__io_forget(fd);
    /* Created non-blocking by weft: register it now, without fcntl. */
    weft__waitq_lock(&p->rq);
    (void)register_locked(p, fd, true);
    weft__waitq_unlock(&p->rq);
}

/* One event: bump the edge counts, then wake the waiters of the
 * directions that became ready. */
static void dispatch(const weft__pollev *ev)
{
    int fd = (int)(uint32_t)ev->token;
    weft__pfd *p = entry(fd, false);
    bool rd = ev->events & (WEFT__PE_IN | WEFT__PE_ERR);
    bool wr = ev->events & (WEFT__PE_OUT | WEFT__PE_ERR);

    void (*hook)(void);

    if (p == NULL || atomic_load(&p->gen) != (uint32_t)(ev->token >> 32))
        return; /* an edge of a descriptor closed since */
    if ((hook = atomic_load_explicit(&p->hook, memory_order_acquire))) {
        hook();
        return;
    }
    if (rd)
        atomic_fetch_add(&p->rseq, 1);
    if (wr)
        atomic_fetch_add(&p->wseq, 1);
    weft__waitq_lock(&p->rq);
    if (rd)
        (void)weft__wake_all(&p->rq, 0);
    if (wr)
        (void)weft__wake_all(&p->wq, 0);
    weft__waitq_unlock(&p->rq);
}

int weft__poller_poll(int64_t deadline)
{
    weft__pollev ev[128];
    int n;

    if (weft__pollset_open() != 0)
        return 0;
    n = weft__pollset_wait(ev, 128, deadline);
    atomic_store_explicit(&last_poll, weft__clock_now(),
                          memory_order_relaxed);
    for (int i = 0; i < n; i++)
        dispatch(&ev[i]);
    return n > 0 ? n : 0;
}

void weft__poller_interrupt(void)
{
    weft__pollset_interrupt();
}
