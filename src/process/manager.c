/* manager.c - a process pool's manager thread: it starts workers through
 * the forkserver, sends them tasks, reads their results, enforces
 * deadlines, and turns every way a worker can end into the failure of the
 * one task it was running.
 *
 * Design: one OS thread per pool, in a ppoll loop over the eventfd that
 * user threads write (new task, kill, shutdown), the forkserver socket
 * (FORKED, EXITED) and each worker's socket (non-blocking; frames are read
 * and written resumably, so short reads and writes, EINTR and EOF at any
 * byte are all ordinary).  Each read takes all that a worker sent (several
 * frames at once, one system call per burst); a frame is handled as soon
 * as it is whole.  When nothing is queued a worker with nothing in flight
 * is marked idle, and a submit may then write a task to it directly
 * (pool.h); the manager takes such a task as the worker's cur
 * (claim_direct) before it acts on that worker, and learns of it at the
 * latest from the worker's reply.  The poll timeout is the nearest task
 * deadline (monotonic clock, measured here, never by the worker).  This
 * thread is internal and waits in ppoll directly; no user thread ever
 * waits on it except through weft waits (pool.c).
 *   (Rejected: one thread per worker blocking on its socket.  Twice the
 *   threads, and timeouts and exits would still need a watcher.)
 *
 * Pipelining.  A worker has up to two tasks in flight (CPython keeps one
 * extra call queued, EXTRA_QUEUED_CALLS): cur, which it runs, and behind,
 * sent and waiting in its socket, so that after writing a result it reads
 * its next task at once instead of waiting for this thread to wake, read
 * the result and send.  A worker with nothing in flight gets one task
 * (plan); the second is sent when a result comes back (on_result: behind
 * becomes cur, then fill_locked sends more), and only while at least one
 * task per worker waits, so a short queue is spread over the workers
 * rather than stacked behind a slow task, and a task queued behind a slow
 * one stays cancellable until then.  A worker is never sent more tasks
 * than its max_tasks share lets it run.  The result is handled after the
 * worker has its next task: completing the future (which may wake a
 * waiter, run callbacks) overlaps the worker's work.
 *   (Rejected: a "started" notice from the worker per task.  A frame more
 *   per task, and not needed: the worker runs its tasks in order and
 *   writes each result before it starts the next, so the first task in flight
 *   without a result is the one it runs.)
 *
 * What "sent" means.  A task's future is RUNNING from the moment it leaves
 * the queue (as CPython's moving a call into its call queue), so cancel
 * fails on a task behind another.  Its timeout counts from when it starts:
 * at once for a worker with nothing in flight, and for behind when the
 * result of the task before it is read.  kill_task of behind fails it at
 * once (pool.c marks it abandoned); the worker runs the task before it
 * undisturbed and is killed when it reaches the abandoned one (on_result),
 * whose result is ignored if it comes at all.
 *
 * How a worker's end is judged.  The forkserver reaps every worker and
 * sends EXITED with the wait status; that, not the socket's EOF, is when
 * the manager decides: it first drains what the dead worker wrote (a
 * result sent just before the end still counts, and moves behind to cur),
 * then settles its tasks: cur, the first without a result, is the one it
 * ran and fails with WEFT_EWORKER and the signal or exit code (unless its
 * frame was never wholly sent: then it never started); behind never
 * started and goes back to the head of the queue for another worker or
 * the replacement.  A crash fails only the task it hit.  A timeout or
 * kill_task first reads what the worker has written (if cur's result is
 * there, cur finished and nothing is done), then fails cur, marks it
 * abandoned and SIGKILLs the worker (through its pidfd: no pid-reuse
 * race), leaving the slot DYING with its socket open until EXITED.  If the
 * worker finished cur and started behind in the few microseconds before
 * the signal landed, its result for cur is read then, and behind is what
 * the kill hit: it fails, as in a crash, rather than run twice.
 * Otherwise behind goes back to the queue.  If the forkserver itself dies, every worker dies
 * with it (PDEATHSIG); the pool is then broken and what was put back
 * fails with it.
 *
 * Invariants: a worker is W_BUSY or W_DYING when cur != NULL, and W_BUSY
 * means cur != NULL (once claim_direct has run: a directly submitted task
 * is `direct` until then); behind != NULL implies cur != NULL; an
 * abandoned cur only in a DYING worker; a task is always findable by
 * kill_task (queue, direct, cur, behind or finishing) until its future is
 * completed; a task popped from the queue is either sent (set_running
 * succeeded, or it was requeued RUNNING) or dropped because it was
 * cancelled, never both; idle is set only for a W_IDLE worker with an
 * open socket and nothing to send, and cleared (under lock) before the
 * manager closes that socket.
 * Locking: see pool.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "process/pool.h"
#include "lib/assert.h"
#include "weft/log.h"

/* "killed by signal 11 (SIGSEGV)" or "exited with code 3". */
static void describe_status(int status, char *buf, size_t cap)
{
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *abbrev = sigabbrev_np(sig);
        snprintf(buf, cap, "killed by signal %d (SIG%s)", sig,
                 abbrev ? abbrev : "?");
    } else if (WIFEXITED(status)) {
        snprintf(buf, cap, "exited with code %d", WEXITSTATUS(status));
    } else {
        snprintf(buf, cap, "ended with status %#x", (unsigned)status);
    }
}

/* ---- completing tasks (never under lock) ------------------------------- */

/* Clear w's task after its future was completed, and free it. */
static void task_done(weft_process_pool *p, pworker *w)
{
    ptask *t = w->cur;
    weft_lock_acquire(&p->lock, WEFT_FOREVER);
    w->cur = NULL;
    w->kill = false;
    weft_lock_release(&p->lock);
    weft__process_task_free(t);
}

/* Complete t from a RESULT body (len bytes at body, not taken: the value
 * is copied out, as the body lives in the worker's receive buffer). */
static void complete(ptask *t, pid_t pid, const unsigned char *body,
                     size_t len)
{
    weft_bytes_reader r;
    uint64_t n;
    int64_t rc;
    const void *data;
    size_t dlen;
    unsigned char *copy;

    weft_bytes_reader_init(&r, body, len);
    if (t->chunk) {
        data = body;
        dlen = len;
    } else if (weft_bytes_get_u64(&r, &n) != 0 || n != 1 ||
               weft_bytes_get_i64(&r, &rc) != 0 ||
               weft_bytes_get_blob(&r, &data, &dlen) != 0) {
        weft_future_set_error(t->fut, WEFT_EWORKER,
                              "task '%s' failed: worker %d sent a garbled "
                              "result", t->entry->name, (int)pid);
        return;
    } else if (rc != 0) {
        const char *msg = dlen > 0 && ((const char *)data)[dlen - 1] == '\0'
                              ? data : "";
        weft_future_set_error(t->fut, rc < 0 && rc > INT32_MIN ? (int)rc
                                                               : WEFT_EFAILED,
                              "task '%s' failed: %s", t->entry->name, msg);
        return;
    }
    copy = malloc(dlen ? dlen : 1);
    if (copy == NULL) {
        weft_future_set_error(t->fut, -ENOMEM, "task '%s': no memory for "
                              "its result", t->entry->name);
        return;
    }
    memcpy(copy, data, dlen);
    weft_future_set_result_owned(t->fut, copy, dlen, free);
}

/* Fail w's task with code and why (the worker's pid is named). */
static void task_fail(weft_process_pool *p, pworker *w, int code,
                      const char *verb, const char *why)
{
    weft_future_set_error(w->cur->fut, code, "task '%s' %s: worker %d %s",
                          w->cur->entry->name, verb, (int)w->pid, why);
    task_done(p, w);
}

/* Mark the pool broken with msg and fail every queued task with it. */
static void set_broken(weft_process_pool *p, const char *msg)
{
    ptask *q;
    bool first = false;
    weft_lock_acquire(&p->lock, WEFT_FOREVER);
    if (!atomic_load(&p->broken)) {
        snprintf(p->broken_msg, sizeof p->broken_msg, "%s", msg);
        atomic_store(&p->broken, true);
        first = true;
    }
    q = p->head;
    p->head = p->tail = NULL;
    p->qlen = 0;
    weft_cond_notify_all(&p->space);
    weft_lock_release(&p->lock);
    if (first)
        weft_error("process pool broken: %s", msg);
    while (q) {
        ptask *t = q;
        q = t->next;
        weft_future_set_error(t->fut, WEFT_EBROKEN, "task '%s' not run: %s",
                              t->entry->name, p->broken_msg);
        weft__process_task_free(t);
    }
}

/* ---- workers --------------------------------------------------------------- */

/* Under lock: take a task a submit handed to w directly (pool.h) as cur,
 * and stop direct submits to w.  The manager calls this before it acts on
 * a worker that may be idle; after it, w's state is the truth again.  The
 * rest of a frame the socket did not take is sent as t->sent says. */
static void claim_direct_locked(pworker *w)
{
    ptask *t = w->direct;
    w->idle = false;
    if (t == NULL)
        return;
    w->direct = NULL;
    w->cur = t;
    w->state = W_BUSY;
}

static void claim_direct(weft_process_pool *p, pworker *w)
{
    weft_lock_acquire(&p->lock, WEFT_FOREVER);
    claim_direct_locked(w);
    weft_lock_release(&p->lock);
}

/* Under lock: the first queued task not cancelled, now RUNNING, or NULL;
 * the cancelled ones go on *dropped (never sent, freed by the caller).  A
 * requeued task is RUNNING already. */
static ptask *pop_task(weft_process_pool *p, ptask **dropped)
{
    while (p->head != NULL) {
        ptask *t = p->head;
        p->head = t->next;
        if (p->head == NULL)
            p->tail = NULL;
        p->qlen--;
        t->next = NULL;
        weft_cond_notify(&p->space, 1);
        if (t->requeued || weft_future_set_running(t->fut) == 0)
            return t;
        t->next = *dropped; /* cancelled while queued: never sent */
        *dropped = t;
    }
    return NULL;
}

/* Under lock: put t, sent to a worker that never started it, back at the
 * head of the queue (its future stays RUNNING: requeued tells pop_task).
 * false if the pool is broken: nothing would run it, the caller fails it. */
static bool requeue_locked(weft_process_pool *p, ptask *t)
{
    if (atomic_load(&p->broken))
        return false;
    t->sent = 0;
    t->deadline = 0;
    t->requeued = true;
    t->next = p->head;
    p->head = t;
    if (p->tail == NULL)
        p->tail = t;
    p->qlen++;
    return true;
}

/* Under lock: give w queued tasks until it has two in flight, never more
 * than it will run before its max_tasks share retires it.  The second
 * (behind) is taken only while at least one task per worker waits (it
 * included): a short queue goes one task per worker, so a task rarely
 * waits behind a slow one while another worker could have run it. */
static void fill_locked(weft_process_pool *p, pworker *w, ptask **dropped)
{
    while (w->behind == NULL && p->head != NULL) {
        int inflight = w->cur != NULL;
        ptask *t;
        if (p->max_tasks > 0 && w->ntasks + inflight >= p->max_tasks)
            return;
        if (inflight && p->qlen < (size_t)p->max_workers)
            return;
        t = pop_task(p, dropped);
        if (t == NULL)
            return;
        if (w->cur == NULL)
            w->cur = t;
        else
            w->behind = t;
    }
}

static void free_tasks(ptask *t)
{
    while (t) {
        ptask *next = t->next;
        weft__process_task_free(t);
        t = next;
    }
}

static void fail_broken(weft_process_pool *p, ptask *t)
{
    weft_future_set_error(t->fut, WEFT_EBROKEN, "task '%s' not run: %s",
                          t->entry->name, p->broken_msg);
    weft__process_task_free(t);
}

static void count_workers(weft_process_pool *p)
{
    int n = 0;
    for (int i = 0; i < p->max_workers; i++)
        n += p->w[i].state != W_FREE && p->w[i].state != W_DYING;
    atomic_store(&p->nworkers, n);
}

/* Close w's socket and leave it DYING until the forkserver reports it. */
static void close_worker(pworker *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    w->rxlen = 0;
    w->tx = NULL;
    w->state = W_DYING;
}

/* SIGKILL w and leave it DYING until the forkserver reports it.  Its
 * socket stays open: what it wrote before it died is read (the result of
 * cur means it had started behind) before EXITED judges it. */
static void kill_worker(pworker *w)
{
    if (w->pidfd < 0 || pidfd_send_signal(w->pidfd, SIGKILL, NULL, 0) != 0)
        kill(w->pid, SIGKILL); /* no pidfd: the pid is ours until reaped */
    w->tx = NULL;
    w->state = W_DYING;
}

static bool read_worker(weft_process_pool *p, pworker *w);
static void lost_worker(weft_process_pool *p, pworker *w);

/* Fail w's running task with code (timeout, kill_task) and kill w.  With
 * drain, what w has written is read first: if the task's result is in,
 * it finished and nothing is done (the kill came too late), and the
 * window in which w could finish it and start behind before the signal
 * lands shrinks to a few microseconds.  The task stays cur, abandoned,
 * until w's end is judged: a result it still sends is ignored but says
 * that behind had started (and was hit by the kill). */
static void abandon_cur(weft_process_pool *p, pworker *w, bool drain,
                        int code, const char *verb, const char *why)
{
    ptask *t;
    int before = w->ntasks;
    if (drain && w->fd >= 0 && !read_worker(p, w))
        lost_worker(p, w);
    if (w->ntasks != before || w->state != W_BUSY)
        return; /* it finished (or more) while we looked */
    t = w->cur;
    weft_future_set_error(t->fut, code, "task '%s' %s: worker %d %s",
                          t->entry->name, verb, (int)w->pid, why);
    weft_lock_acquire(&p->lock, WEFT_FOREVER);
    t->abandoned = true;
    w->kill = false;
    weft_lock_release(&p->lock);
    kill_worker(w);
}

/* w's process is gone (or lost with the forkserver) and all it wrote has
 * been read.  It ran its tasks in order, so cur, the first without a
 * result, is the one it was running and fails with why, unless its frame
 * was never wholly sent (then it never started); behind never started.
 * Tasks that never started go back to the head of the queue, in order;
 * abandoned ones (already failed) are just freed. */
static void settle(weft_process_pool *p, pworker *w, const char *why)
{
    ptask *run, *t, *drop = NULL, *broken = NULL;

    weft_lock_acquire(&p->lock, WEFT_FOREVER);
    run = w->cur;
    t = w->behind;
    w->behind = NULL;
    if (t != NULL && !t->abandoned && !requeue_locked(p, t)) {
        t->next = broken;
        broken = t;
    } else if (t != NULL && t->abandoned) {
        t->next = drop;
        drop = t;
    }
    if (run != NULL &&
        (run->abandoned || run->sent < run->frame.len)) {
        w->cur = NULL;
        w->kill = false;
        if (run->abandoned) {
            run->next = drop;
            drop = run;
        } else if (!requeue_locked(p, run)) {
            run->next = broken;
            broken = run;
        }
        run = NULL;
    }
    weft_lock_release(&p->lock);
    free_tasks(drop);
    while (broken) {
        t = broken;
        broken = t->next;
        fail_broken(p, t);
    }
    if (run != NULL)
        task_fail(p, w, WEFT_EWORKER, "failed", why);
}

static void free_slot(weft_process_pool *p, pworker *w)
{
    ptask *t;
    WEFT_ASSERT(w->cur == NULL && w->behind == NULL);
    if (w->fd >= 0)
        close(w->fd);
    if (w->pidfd >= 0)
        close(w->pidfd);
    free(w->rx);
    w->rx = NULL;
    w->rxlen = w->rxcap = 0;
    w->fd = w->pidfd = -1;
    w->tx = NULL;
    w->pid = 0;
    w->ntasks = 0;
    w->state = W_FREE;
    weft_lock_acquire(&p->lock, WEFT_FOREVER);
    w->gone = false;
    t = w->finishing;
    w->finishing = NULL;
    weft_lock_release(&p->lock);
    weft__process_task_free(t);
}

static int write_worker(pworker *w);

/* True if a frame (INIT, cur's or behind's) is not wholly sent to w. */
static bool tx_pending(const pworker *w)
{
    return w->tx != NULL ||
           (w->cur != NULL && w->cur->sent < w->cur->frame.len) ||
           (w->behind != NULL && w->behind->sent < w->behind->frame.len);
}

/* w sent the RESULT of cur, so behind (if any) has started: it becomes
 * cur, and its timeout runs from now.  Hand w more queued work first
 * (fill_locked), so that it has its next task at hand while this thread
 * completes the finished task's future (and wakes its waiter); or mark it
 * idle for direct submits; or retire it if it did its share.  If the task
 * that starts now was killed by kill_task before it started, kill w.  A
 * DYING worker (killed, its results drained) gets nothing new. */
static void on_result(weft_process_pool *p, pworker *w,
                      const unsigned char *body, size_t len)
{
    ptask *t = w->cur, *old, *dropped = NULL;
    bool dying = w->state == W_DYING, ignore, retire, lost = false;
    bool kill = false;

    w->ntasks++;
    retire = p->max_tasks > 0 && w->ntasks >= p->max_tasks;
    weft_lock_acquire(&p->lock, WEFT_FOREVER);
    ignore = t->abandoned;
    old = w->finishing;
    w->finishing = t;
    w->kill = false;
    w->cur = w->behind;
    w->behind = NULL;
    if (w->cur != NULL && w->cur->abandoned)
        kill = !dying;
    else if (!dying && !retire && !w->gone)
        fill_locked(p, w, &dropped);
    if (!dying)
        w->state = w->cur != NULL ? W_BUSY : W_IDLE;
    w->idle = !dying && w->cur == NULL && !retire && !w->gone &&
              p->head == NULL && !p->shutdown && !atomic_load(&p->broken);
    weft_lock_release(&p->lock);
    WEFT_ASSERT(!retire || dying || w->cur == NULL);
    if (w->cur != NULL && w->cur->deadline == 0)
        w->cur->deadline = w->cur->timeout_ns > 0
                               ? weft_now() + w->cur->timeout_ns
                               : WEFT_FOREVER;
    if (kill)
        kill_worker(w); /* it started a task already failed by kill_task */
    else if (!dying && tx_pending(w))
        lost = write_worker(w) != 0;
    if (!ignore)
        complete(t, w->pid, body, len);
    weft__process_task_free(old);
    free_tasks(dropped);
    if (lost)
        lost_worker(p, w); /* its tasks stay: EXITED judges them */
    else if (retire && !dying && !kill)
        close_worker(w); /* EOF makes it exit; EXITED frees the slot */
}

/* A whole frame arrived from w (body points into w's receive buffer). */
static void on_frame(weft_process_pool *p, pworker *w, uint32_t type,
                     const unsigned char *body, size_t len)
{
    if (w->state == W_IDLE)
        claim_direct(p, w); /* the frame may answer a direct submit */
    if (type == WEFT__FRAME_RESULT && w->cur != NULL &&
        (w->state == W_BUSY || w->state == W_DYING)) {
        on_result(p, w, body, len);
    } else if (type == WEFT__FRAME_INITR && w->state == W_INIT) {
        weft_bytes_reader r;
        int64_t rc;
        const void *msg;
        size_t mlen;
        weft_bytes_reader_init(&r, body, len);
        if (weft_bytes_get_i64(&r, &rc) != 0 ||
            weft_bytes_get_blob(&r, &msg, &mlen) != 0 ||
            (rc != 0 && (mlen == 0 || ((const char *)msg)[mlen - 1] != '\0'))) {
            rc = -EPROTO;
            msg = "garbled reply";
        }
        if (rc == 0) {
            w->state = W_IDLE;
        } else {
            char buf[600];
            snprintf(buf, sizeof buf,
                     "initializer '%s' failed in worker %d with code %d: %s",
                     p->init->name, (int)w->pid, (int)rc, (const char *)msg);
            close_worker(w);
            set_broken(p, buf);
        }
    } else if (w->state != W_DYING) {
        weft_warning("process pool: worker %d sent an unexpected frame %u; "
                     "killing it", (int)w->pid, type);
        if (w->state == W_BUSY)
            abandon_cur(p, w, false, WEFT_EWORKER, "failed",
                        "broke the protocol");
        else
            kill_worker(w);
        close_worker(w); /* nothing it sends can be trusted now */
    }
}

#define RX_MIN 65536

/* Read what w has sent and handle each whole frame.  One read takes all
 * that has arrived (up to the buffer's room); a read that leaves room
 * means the socket is drained, so no second read just to see EAGAIN.
 * false when the socket ended (EOF, reset, garbage). */
static bool read_worker(weft_process_pool *p, pworker *w)
{
    bool drained = false;

    while (w->fd >= 0) {
        weft__frame h;
        size_t want = sizeof h, room;
        ssize_t got;

        if (w->rxlen >= sizeof h) {
            memcpy(&h, w->rx, sizeof h);
            if (h.magic != WEFT__FRAME_MAGIC || h.len > WEFT__FRAME_MAX)
                return false;
            want = sizeof h + (size_t)h.len;
            if (w->rxlen >= want) {
                on_frame(p, w, h.type, w->rx + sizeof h, (size_t)h.len);
                if (w->fd < 0) /* closed: the buffer was reset */
                    return true;
                memmove(w->rx, w->rx + want, w->rxlen - want);
                w->rxlen -= want;
                continue;
            }
        }
        if (drained)
            return true;
        if (want > w->rxcap || w->rxcap < RX_MIN ||
            (w->rxlen == 0 && w->rxcap > 16 * RX_MIN)) {
            size_t cap = want > RX_MIN ? want : RX_MIN;
            unsigned char *d = realloc(w->rx, cap);
            if (d == NULL)
                return false;
            w->rx = d;
            w->rxcap = cap;
        }
        room = w->rxcap - w->rxlen;
        got = read(w->fd, w->rx + w->rxlen, room);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (got <= 0)
            return false; /* EOF or reset: the worker is gone or going */
        w->rxlen += (size_t)got;
        drained = (size_t)got < room;
    }
    return true;
}

/* Send what is pending to w: the INIT frame, then the rest of cur's frame,
 * then behind's, in that order (the worker reads them so).  0, or -1 when
 * the socket ended. */
static int write_worker(pworker *w)
{
    for (;;) {
        const unsigned char *from;
        size_t left, *done;
        ssize_t put;

        if (w->tx != NULL && w->txoff < w->txlen) {
            from = w->tx + w->txoff;
            left = w->txlen - w->txoff;
            done = &w->txoff;
        } else if (w->cur != NULL && w->cur->sent < w->cur->frame.len) {
            w->tx = NULL;
            from = w->cur->frame.data + w->cur->sent;
            left = w->cur->frame.len - w->cur->sent;
            done = &w->cur->sent;
        } else if (w->behind != NULL &&
                   w->behind->sent < w->behind->frame.len) {
            w->tx = NULL;
            from = w->behind->frame.data + w->behind->sent;
            left = w->behind->frame.len - w->behind->sent;
            done = &w->behind->sent;
        } else {
            w->tx = NULL;
            return 0;
        }
        put = send(w->fd, from, left, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (put < 0 && errno == EINTR)
            continue;
        if (put < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (put < 0)
            return -1;
        *done += (size_t)put;
    }
}

/* Start sending the INIT frame[0..len) to w. */
static int start_send(pworker *w, const unsigned char *frame, size_t len)
{
    w->tx = frame;
    w->txlen = len;
    w->txoff = 0;
    return write_worker(w);
}

/* The socket of w ended (EOF, reset, garbage): stop listening; EXITED
 * decides what it means. */
static void lost_worker(weft_process_pool *p, pworker *w)
{
    int state, keep_phase;
    claim_direct(p, w);
    state = w->state;
    keep_phase = w->cur != NULL || state == W_INIT;
    close_worker(w);
    /* close_worker says DYING; a BUSY or INIT worker keeps its phase so
     * EXITED can name the task or the initializer. */
    if (keep_phase)
        w->state = state;
}

/* The forkserver reaped pid with status. */
static void on_exited(weft_process_pool *p, pid_t pid, int status)
{
    char why[80];
    pworker *w = NULL;

    for (int i = 0; i < p->max_workers; i++)
        if (p->w[i].state != W_FREE && p->w[i].state != W_FORKING &&
            p->w[i].pid == pid)
            w = &p->w[i];
    if (w == NULL)
        return;
    claim_direct(p, w);
    if (w->fd >= 0)
        read_worker(p, w); /* what it wrote before it ended */
    describe_status(status, why, sizeof why);
    if (w->state == W_INIT) {
        char buf[600];
        snprintf(buf, sizeof buf,
                 "worker %d %s while running the initializer '%s'",
                 (int)pid, why, p->init->name);
        set_broken(p, buf);
    }
    settle(p, w, why);
    free_slot(p, w);
}

static void on_forked(weft_process_pool *p, const weft__fs_msg *m, int fds[2])
{
    pworker *w;

    if (m->token >= (uint64_t)p->max_workers ||
        p->w[m->token].state != W_FORKING) {
        for (int i = 0; i < 2; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        return;
    }
    w = &p->w[m->token];
    if (m->err != 0 || fds[0] < 0) {
        char buf[200];
        if (fds[1] >= 0)
            close(fds[1]);
        free_slot(p, w);
        snprintf(buf, sizeof buf, "could not start a worker: %s",
                 weft_strerror(m->err ? m->err : -EPROTO));
        weft_warning("process pool: %s", buf);
        bool any = false;
        for (int i = 0; i < p->max_workers; i++)
            any |= p->w[i].state != W_FREE && p->w[i].state != W_DYING;
        if (!any)
            set_broken(p, buf);
        return;
    }
    w->pid = m->pid;
    w->fd = fds[0];
    w->pidfd = fds[1];
    w->ntasks = 0;
    fcntl(w->fd, F_SETFL, fcntl(w->fd, F_GETFL) | O_NONBLOCK);
    if (p->init != NULL) {
        w->state = W_INIT;
        if (start_send(w, p->initframe.data, p->initframe.len) != 0)
            lost_worker(p, w);
    } else {
        w->state = W_IDLE;
    }
}

/* Read every packet the forkserver has sent.  false once it is gone. */
static bool read_server(weft_process_pool *p)
{
    for (;;) {
        weft__fs_msg m;
        int fds[2];
        int rc = weft__fs_recv(p->fs_sock, &m, fds);
        if (rc == -EAGAIN)
            return true;
        if (rc != 0)
            return false;
        if (m.type == WEFT__FS_FORKED) {
            on_forked(p, &m, fds);
        } else {
            for (int i = 0; i < 2; i++)
                if (fds[i] >= 0)
                    close(fds[i]);
            if (m.type == WEFT__FS_EXITED)
                on_exited(p, m.pid, m.status);
        }
    }
}

/* The forkserver is gone, and with it every worker (PDEATHSIG). */
static void server_died(weft_process_pool *p)
{
    for (int i = 0; i < p->max_workers; i++) {
        pworker *w = &p->w[i];
        claim_direct(p, w);
        settle(p, w, "lost: the pool's forkserver died");
        free_slot(p, w);
    }
    set_broken(p, "the pool's forkserver died"); /* fails what settle put back */
}

/* ---- the loop ---------------------------------------------------------------- */

/* Under lock: kills asked for, tasks to send, workers to start or retire.
 * Returns true when the pool is finished (shut down or broken, nothing
 * queued, no process left).  Fills *kills with workers to kill.  A worker
 * with nothing in flight gets one task here; a second one is sent only
 * when a result comes back (on_result), so a task queued behind a slow
 * one stays cancellable until then. */
static bool plan(weft_process_pool *p, pworker **kills, int *nkills,
                 ptask **dropped, bool server_ok)
{
    int coming = 0, alive = 0;
    size_t queued;
    bool ending;

    *nkills = 0;
    weft_lock_acquire(&p->lock, WEFT_FOREVER);
    for (int i = 0; i < p->max_workers; i++) {
        pworker *w = &p->w[i];
        claim_direct_locked(w);
        if (w->kill) {
            w->kill = false;
            if (w->state == W_BUSY && w->cur != NULL)
                kills[(*nkills)++] = w;
        }
    }
    for (int i = 0; i < p->max_workers && p->head != NULL; i++) {
        pworker *w = &p->w[i];
        ptask *t;
        if (w->state != W_IDLE || w->gone)
            continue;
        t = pop_task(p, dropped);
        if (t != NULL) {
            w->cur = t;
            w->state = W_BUSY;
        }
    }
    ending = (p->shutdown || atomic_load(&p->broken)) && p->head == NULL;
    for (int i = 0; i < p->max_workers; i++) {
        pworker *w = &p->w[i];
        w->idle = w->state == W_IDLE && w->fd >= 0 && w->tx == NULL &&
                  !w->gone && p->head == NULL && !ending;
    }
    for (int i = 0; i < p->max_workers; i++) {
        int s = p->w[i].state;
        coming += s == W_FORKING || s == W_INIT;
        alive += s != W_FREE && s != W_DYING;
    }
    queued = p->qlen;
    weft_lock_release(&p->lock);

    /* Start workers for what waits, up to max_workers. */
    if (server_ok && !ending) {
        for (int i = 0; i < p->max_workers && queued > (size_t)coming &&
                        alive < p->max_workers; i++) {
            pworker *w = &p->w[i];
            weft__fs_msg m = {WEFT__FS_FORK, 0, (uint64_t)i, 0, 0};
            if (w->state != W_FREE)
                continue;
            if (weft__fs_send(p->fs_sock, &m, NULL, 0) != 0)
                break;
            w->state = W_FORKING;
            coming++;
            alive++;
        }
    }
    if (ending) {
        bool any = false;
        for (int i = 0; i < p->max_workers; i++) {
            pworker *w = &p->w[i];
            if (w->state == W_IDLE)
                close_worker(w); /* EOF: it exits */
            any |= w->state != W_FREE;
        }
        return !any;
    }
    return false;
}

/* Send the tasks plan() gave to workers; each starts (its timeout runs)
 * now, as the worker had nothing else to do. */
static void send_dispatched(weft_process_pool *p)
{
    int64_t now = 0;
    for (int i = 0; i < p->max_workers; i++) {
        pworker *w = &p->w[i];
        if (w->state != W_BUSY || w->cur == NULL || w->cur->deadline != 0)
            continue;
        if (now == 0)
            now = weft_now();
        w->cur->deadline = w->cur->timeout_ns > 0 ? now + w->cur->timeout_ns
                                                  : WEFT_FOREVER;
        if (w->fd >= 0 && write_worker(w) != 0)
            lost_worker(p, w);
    }
}

/* Fail and kill every running task past its deadline (a task behind it
 * has not started and is put back at EXITED); the nearest deadline left. */
static int64_t check_deadlines(weft_process_pool *p)
{
    int64_t now = weft_now(), next = WEFT_FOREVER;
    for (int i = 0; i < p->max_workers; i++) {
        pworker *w = &p->w[i];
        char why[80];
        int64_t d;
        if (w->state != W_BUSY || w->cur == NULL)
            continue;
        d = w->cur->deadline;
        if (d <= 0) /* not started yet, or no limit */
            continue;
        if (now >= d) {
            snprintf(why, sizeof why, "killed (SIGKILL) after %lld ms",
                     (long long)(w->cur->timeout_ns / WEFT_NSEC_PER_MSEC));
            abandon_cur(p, w, true, -ETIMEDOUT, "timed out", why);
            if (w->state == W_BUSY && w->cur != NULL && w->cur->deadline > 0)
                next = next == WEFT_FOREVER || w->cur->deadline < next
                           ? w->cur->deadline : next; /* it finished */
        } else if (next == WEFT_FOREVER || d < next) {
            next = d;
        }
    }
    return next;
}

int weft__process_manager(void *arg)
{
    weft_process_pool *p = arg;
    int n = p->max_workers;
    struct pollfd *pf = calloc((size_t)n + 2, sizeof *pf);
    pworker **kills = calloc((size_t)n, sizeof *kills);
    int *who = calloc((size_t)n + 2, sizeof *who);
    bool server_ok = true;
    pid_t fs_pid;

    WEFT_ASSERT(pf && kills && who); /* small; see the release note below */
    for (;;) {
        ptask *dropped = NULL;
        int nkills, npf = 0;
        int64_t next;

        if (plan(p, kills, &nkills, &dropped, server_ok))
            break;
        while (dropped) {
            ptask *t = dropped;
            dropped = t->next;
            weft__process_task_free(t);
        }
        for (int i = 0; i < nkills; i++)
            abandon_cur(p, kills[i], true, -ECANCELED, "cancelled",
                        "killed (SIGKILL) by weft_process_pool_kill_task");
        send_dispatched(p);
        next = check_deadlines(p);
        count_workers(p);

        pf[npf++] = (struct pollfd){p->efd, POLLIN, 0};
        if (server_ok)
            pf[npf++] = (struct pollfd){p->fs_sock, POLLIN, 0};
        for (int i = 0; i < n; i++) {
            pworker *w = &p->w[i];
            if (w->fd < 0)
                continue;
            who[npf] = i;
            pf[npf++] = (struct pollfd){
                w->fd,
                (short)(POLLIN | (w->state != W_DYING && tx_pending(w)
                                      ? POLLOUT : 0)),
                0};
        }
        struct timespec ts, *tsp = NULL;
        if (next != WEFT_FOREVER) {
            int64_t left = next - weft_now();
            if (left < 0)
                left = 0;
            ts.tv_sec = left / WEFT_NSEC_PER_SEC;
            ts.tv_nsec = left % WEFT_NSEC_PER_SEC;
            tsp = &ts;
        }
        if (ppoll(pf, (nfds_t)npf, tsp, NULL) < 0) {
            WEFT_ASSERT(errno == EINTR || errno == ENOMEM);
            continue;
        }
        if (pf[0].revents) {
            /* Read, then clear: a submit that saw wake_pending set before
             * the clear queued its task before it looked, and plan() (next,
             * under the lock) sees that task; one after the clear writes. */
            uint64_t v;
            while (read(p->efd, &v, sizeof v) < 0 && errno == EINTR) {
            }
            atomic_store(&p->wake_pending, 0);
        }
        for (int k = server_ok ? 2 : 1; k < npf; k++) {
            pworker *w = &p->w[who[k]];
            if (pf[k].revents == 0 || w->fd != pf[k].fd)
                continue;
            if ((pf[k].revents & POLLOUT) && write_worker(w) != 0) {
                lost_worker(p, w);
                continue;
            }
            if ((pf[k].revents & (POLLIN | POLLHUP | POLLERR)) &&
                !read_worker(p, w))
                lost_worker(p, w);
        }
        if (server_ok && pf[1].revents && !read_server(p)) {
            server_ok = false;
            server_died(p);
        }
    }
    count_workers(p);
    close(p->fs_sock);
    p->fs_sock = -1;
    fs_pid = atomic_load(&p->fs_pid);
    while (waitpid(fs_pid, NULL, 0) < 0 && errno == EINTR) {
    }
    atomic_store(&p->fs_pid, 0);
    free(pf);
    free(kills);
    free(who);
    weft_event_set(&p->done);
    return 0;
}
