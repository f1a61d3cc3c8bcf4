/* pool.c - the process pool's public calls: create, submit, kill_task,
 * shutdown, destroy and the counts.  The work itself happens in the
 * manager thread (manager.c); see pool.h for who owns what.
 *
 * Design: submit builds the TASK frame (copying the input) before it takes
 * the lock.  Fast path: when the queue is empty and the manager has marked
 * a worker idle, submit writes the frame to that worker's socket itself
 * (submit_direct, under lock; see pool.h) and wakes nobody: the worker's
 * reply wakes the manager, which completes the future.  That saves one
 * wake-up of four per task (submitter -> manager).  Otherwise it appends
 * the task to the queue and wakes the manager through an eventfd, written
 * only when no wake-up is pending already (wake_pending), so a burst of
 * submits costs one write.  A bounded queue
 * makes submit wait on the condition `space` (it parks: green threads may
 * call it).  Shutdown sets the flag, cancels the queue if told to, wakes
 * the manager and waits on the event `done`, which the manager sets once
 * every worker and the forkserver have exited and been reaped.
 *
 * kill_task finds f's task wherever it is: queued (it is cancelled, or
 * failed with -ECANCELED if it was put back RUNNING after its worker died
 * before starting it), running (the manager is asked to kill the worker),
 * sent behind a running task (kill_behind: failed at once and marked
 * abandoned; the manager kills the worker when it reaches it), or with its
 * result just read (finishing: -EBUSY, the future is being completed).
 *   (Rejected: a weft_queue between submitters and the manager.  The
 *   manager sleeps in ppoll on sockets, not on a weft wait, and kill_task
 *   must find a queued task to take it out; a plain list under the lock
 *   does both.)
 *
 * Locking: lock guards the queue, the flags, workers' cur, behind,
 * finishing, kill, idle, direct and gone, and tasks' abandoned and
 * requeued flags; never held while completing a future, and across I/O
 * only for the one non-blocking send of a direct submit (so that the
 * manager cannot close that socket meanwhile).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "process/pool.h"
#include "lib/assert.h"

void weft__process_wake(weft_process_pool *p)
{
    uint64_t one = 1;
    if (atomic_exchange(&p->wake_pending, 1) != 0)
        return;
    while (write(p->efd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

void weft__process_task_free(ptask *t)
{
    if (t == NULL)
        return;
    weft_bytes_fini(&t->frame);
    weft_future_release(t->fut);
    free(t);
}

int weft__process_pool_max_workers(const weft_process_pool *p)
{
    return p->max_workers;
}

static void pool_free(weft_process_pool *p)
{
    if (p->efd >= 0)
        close(p->efd);
    weft_bytes_fini(&p->initframe);
    free(p->w);
    free(p);
}

/* The INIT frame for opts' initializer: 0, -EINVAL (unknown), -ENOMEM. */
static int build_init(weft_process_pool *p, const weft_process_pool_opts *o)
{
    int rc;
    p->init = weft__process_lookup(o->initializer);
    if (p->init == NULL || (o->initarg == NULL && o->initarg_len != 0))
        return -EINVAL;
    rc = weft__frame_begin(&p->initframe, WEFT__FRAME_INIT);
    if (rc == 0)
        rc = weft_bytes_put_str(&p->initframe, p->init->module);
    if (rc == 0)
        rc = weft_bytes_put_u64(&p->initframe, p->init->offset);
    if (rc == 0)
        rc = weft_bytes_put_blob(&p->initframe, o->initarg, o->initarg_len);
    weft__frame_end(&p->initframe);
    return rc;
}

int weft_process_pool_create(weft_process_pool **out,
                             const weft_process_pool_opts *opts)
{
    weft_process_pool_opts o = {0};
    weft_thread_opts topts = WEFT_THREAD_OPTS_DEFAULT;
    weft_process_pool *p;
    pid_t pid;
    int rc;

    if (out == NULL)
        return -EINVAL;
    if (opts)
        o = *opts;
    if (o.max_workers < 0 || o.max_tasks_per_worker < 0 ||
        o.task_timeout_ns < 0)
        return -EINVAL;
    if (o.max_workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        o.max_workers = n > 0 ? (int)n : 1;
    }
    p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    p->efd = -1;
    p->fs_sock = -1;
    weft_bytes_init(&p->initframe);
    p->max_workers = o.max_workers;
    p->max_tasks = o.max_tasks_per_worker;
    p->timeout_ns = o.task_timeout_ns;
    p->capacity = o.queue_capacity;
    weft_lock_init(&p->lock);
    weft_cond_init(&p->space, &p->lock);
    weft_event_init(&p->done);
    p->w = calloc((size_t)o.max_workers, sizeof *p->w);
    if (p->w == NULL) {
        pool_free(p);
        return -ENOMEM;
    }
    for (int i = 0; i < o.max_workers; i++) {
        p->w[i].fd = -1;
        p->w[i].pidfd = -1;
    }
    if (o.initializer != NULL && (rc = build_init(p, &o)) != 0) {
        pool_free(p);
        return rc;
    }
    p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->efd < 0) {
        rc = errno == EMFILE || errno == ENFILE ? -EAGAIN : -errno;
        pool_free(p);
        return rc;
    }
    rc = weft__forkserver_spawn(&pid, &p->fs_sock);
    if (rc != 0) {
        pool_free(p);
        return rc;
    }
    atomic_store(&p->fs_pid, pid);
    topts.name = "weft-procpool";
    topts.daemon = 1;
    rc = weft_thread_start(&p->mgr, weft__process_manager, p, &topts);
    if (rc != 0) {
        close(p->fs_sock); /* the server sees EOF and exits */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        pool_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* Under lock, with the queue empty: hand t to an idle worker and write its
 * frame to the worker's socket (non-blocking; the manager sends what did
 * not fit).  true if a worker took it.  A worker whose socket refuses
 * every byte (it died; the manager has not yet seen it) is marked gone and
 * the next idle one is tried: a task no worker received is never failed
 * for a death it did not see. */
static bool submit_direct(weft_process_pool *p, ptask *t)
{
    for (int i = 0; i < p->max_workers; i++) {
        pworker *w = &p->w[i];
        ssize_t put;
        if (!w->idle)
            continue;
        w->idle = false;
        do {
            put = send(w->fd, t->frame.data, t->frame.len,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
        } while (put < 0 && errno == EINTR);
        if (put < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            w->gone = true;
            continue;
        }
        /* Nobody else holds the future yet: it cannot be cancelled. */
        WEFT_ASSERT(weft_future_set_running(t->fut) == 0);
        t->sent = put < 0 ? 0 : (size_t)put;
        t->deadline = t->timeout_ns > 0 ? weft_now() + t->timeout_ns
                                        : WEFT_FOREVER;
        w->direct = t;
        return true;
    }
    return false;
}

int weft__process_submit_frame(weft_process_pool *p,
                               const weft__proc_entry *entry,
                               weft_bytes *frame, uint64_t nitems, bool chunk,
                               int64_t timeout_ns, weft_future **out,
                               int64_t deadline)
{
    ptask *t;
    int rc;

    t = calloc(1, sizeof *t);
    if (t == NULL)
        return -ENOMEM;
    rc = weft_future_create(&t->fut);
    if (rc != 0) {
        free(t);
        return rc;
    }
    t->entry = entry;
    t->nitems = nitems;
    t->chunk = chunk;
    t->timeout_ns = timeout_ns < 0 ? 0 : timeout_ns ? timeout_ns
                                                    : p->timeout_ns;
    weft_lock_acquire(&p->lock, WEFT_FOREVER);
    while (!p->shutdown && !atomic_load(&p->broken) && p->capacity != 0 &&
           p->qlen >= p->capacity) {
        rc = weft_cond_wait(&p->space, deadline);
        if (rc != 0)
            break;
    }
    if (p->shutdown)
        rc = -EPIPE;
    else if (atomic_load(&p->broken))
        rc = WEFT_EBROKEN;
    if (rc != 0) {
        weft_lock_release(&p->lock);
        weft__process_task_free(t);
        return rc;
    }
    t->frame = *frame;
    weft_bytes_init(frame);
    if (out)
        *out = weft_future_retain(t->fut);
    if (p->head == NULL && submit_direct(p, t)) {
        /* The manager learns of t from the worker's reply; it must look
         * now only to send the rest of the frame or to watch a deadline. */
        bool wake = t->sent < t->frame.len || t->timeout_ns > 0;
        weft_lock_release(&p->lock);
        if (wake)
            weft__process_wake(p);
        return 0;
    }
    if (p->tail)
        p->tail->next = t;
    else
        p->head = t;
    p->tail = t;
    p->qlen++;
    weft_lock_release(&p->lock);
    weft__process_wake(p);
    return 0;
}

int weft_process_pool_submit(weft_process_pool *p, const char *name,
                             const void *in, size_t len, int64_t timeout_ns,
                             weft_future **out, int64_t deadline)
{
    const weft__proc_entry *e;
    weft_bytes frame = WEFT_BYTES_INIT;
    int rc;

    if (p == NULL || name == NULL || (in == NULL && len != 0))
        return -EINVAL;
    e = weft__process_lookup(name);
    if (e == NULL)
        return -ENOENT;
    rc = weft__frame_task(&frame, e, 1);
    if (rc == 0)
        rc = weft_bytes_put_blob(&frame, in, len);
    if (rc == 0) {
        weft__frame_end(&frame);
        rc = weft__process_submit_frame(p, e, &frame, 1, false, timeout_ns,
                                        out, deadline);
    }
    weft_bytes_fini(&frame);
    return rc;
}

/* Cancel t, taken out of the queue (not under lock), and free it.  A task
 * put back in the queue after its worker died before starting it is
 * RUNNING already: it fails with -ECANCELED instead. */
static void cancel_queued(ptask *t, const char *by)
{
    if (weft_future_cancel(t->fut) != 0)
        weft_future_set_error(t->fut, -ECANCELED, "task '%s' cancelled by "
                              "%s before it started", t->entry->name, by);
    weft__process_task_free(t);
}

/* Under lock, which it releases: kill_task of t, sent to a worker behind
 * the task it runs and not started.  Its future fails now; the manager
 * ignores its result, never sends it again, and kills the worker once it
 * starts t (when the task before it reports), so the task it runs now is
 * not touched. */
static int kill_behind(weft_process_pool *p, ptask *t)
{
    weft_future *f = t->fut;
    const char *name = t->entry->name; /* registry entries live forever */
    if (t->abandoned || weft_future_done(f)) {
        weft_lock_release(&p->lock);
        return -EBUSY;
    }
    t->abandoned = true;
    /* Hold f: the manager may free t (and drop the pool's reference) once
     * the lock is released.  Nobody else completes an abandoned task. */
    weft_future_retain(f);
    weft_lock_release(&p->lock);
    weft_future_set_error(f, -ECANCELED, "task '%s' cancelled by "
                          "weft_process_pool_kill_task before it started; "
                          "its worker is killed when it reaches it", name);
    weft_future_release(f);
    return 0;
}

int weft_process_pool_kill_task(weft_process_pool *p, weft_future *f)
{
    ptask *t, *prev = NULL;

    if (p == NULL || f == NULL)
        return -EINVAL;
    weft_lock_acquire(&p->lock, WEFT_FOREVER);
    for (t = p->head; t; prev = t, t = t->next) {
        if (t->fut != f)
            continue;
        if (prev)
            prev->next = t->next;
        else
            p->head = t->next;
        if (p->tail == t)
            p->tail = prev;
        p->qlen--;
        weft_cond_notify(&p->space, 1);
        weft_lock_release(&p->lock);
        cancel_queued(t, "weft_process_pool_kill_task");
        return 0;
    }
    for (int i = 0; i < p->max_workers; i++) {
        pworker *w = &p->w[i];
        ptask *run = w->direct ? w->direct : w->cur;
        if (w->behind != NULL && w->behind->fut == f)
            return kill_behind(p, w->behind);
        if (w->finishing != NULL && w->finishing->fut == f) {
            weft_lock_release(&p->lock); /* its result is in */
            return -EBUSY;
        }
        if (run == NULL || run->fut != f)
            continue;
        if (weft_future_done(f)) {
            weft_lock_release(&p->lock);
            return -EBUSY;
        }
        w->kill = true;
        weft_lock_release(&p->lock);
        weft__process_wake(p);
        return 0;
    }
    weft_lock_release(&p->lock);
    return weft_future_done(f) ? -EBUSY : -ESRCH;
}

int weft_process_pool_shutdown(weft_process_pool *p, unsigned flags,
                               int64_t deadline)
{
    ptask *cancel = NULL;

    if (p == NULL ||
        (flags & ~(unsigned)(WEFT_SHUTDOWN_NOWAIT |
                             WEFT_SHUTDOWN_CANCEL_PENDING)) != 0)
        return -EINVAL;
    weft_lock_acquire(&p->lock, WEFT_FOREVER);
    p->shutdown = true;
    if (flags & WEFT_SHUTDOWN_CANCEL_PENDING) {
        cancel = p->head;
        p->head = p->tail = NULL;
        p->qlen = 0;
    }
    weft_cond_notify_all(&p->space);
    weft_lock_release(&p->lock);
    while (cancel) {
        ptask *t = cancel;
        cancel = t->next;
        cancel_queued(t, "shutdown");
    }
    weft__process_wake(p);
    if (flags & WEFT_SHUTDOWN_NOWAIT)
        return 0;
    return weft_event_wait(&p->done, deadline);
}

int weft_process_pool_destroy(weft_process_pool *p)
{
    int rc;
    if (p == NULL)
        return -EINVAL;
    rc = weft_process_pool_shutdown(p, 0, WEFT_FOREVER);
    if (rc != 0)
        return rc;
    rc = weft_thread_join(p->mgr, NULL, WEFT_FOREVER);
    if (rc != 0)
        return rc;
    for (int i = 0; i < p->max_workers; i++) {
        free(p->w[i].rx);
        weft__process_task_free(p->w[i].finishing); /* NULL: free_slot */
    }
    weft_event_fini(&p->done);
    weft_cond_fini(&p->space);
    weft_lock_fini(&p->lock);
    pool_free(p);
    return 0;
}

int weft_process_pool_workers(weft_process_pool *p)
{
    return p ? atomic_load(&p->nworkers) : 0;
}

size_t weft_process_pool_pending(weft_process_pool *p)
{
    size_t n;
    if (p == NULL)
        return 0;
    weft_lock_acquire(&p->lock, WEFT_FOREVER);
    n = p->qlen;
    weft_lock_release(&p->lock);
    return n;
}

bool weft_process_pool_broken(weft_process_pool *p)
{
    return p ? atomic_load(&p->broken) : false;
}

pid_t weft_process_pool_forkserver_pid(weft_process_pool *p)
{
    return p ? atomic_load(&p->fs_pid) : 0;
}
