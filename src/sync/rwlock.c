/* rwlock.c - weft_rwlock: many readers or one writer, writers preferred.
 *
 * Design.  All state sits behind one guard, the guard of wq (the writers'
 * queue); rq (the readers' queue) is a second list under that same guard,
 * whose own guard word is never used.  Waiters are handed the lock directly
 * at release: a woken writer returns as the writer, a woken reader returns
 * already counted in readers, so nobody woken has to compete again.
 *
 * Policy.  A reader may enter only when there is no writer and no writer
 * waits (writer preference: a stream of readers cannot starve a writer).
 * The last reader out hands the lock to the first waiting writer.  A writer
 * releasing hands it to ALL readers that queued meanwhile, if any, and
 * otherwise to the next writer; so writers cannot starve readers either
 * (the phase-alternation policy of Go's sync.RWMutex).
 *   (Rejected: one atomic state word with lock-free reader entry, as Go
 *   does.  Faster for read-mostly loads, but far more intricate; the guard
 *   is held for a few instructions only.  A later optimisation if benchmarks
 *   ask for it.)
 * A writer that times out or is cancelled may have been the only thing
 * holding readers back: it then admits the queued readers itself.
 *
 * Invariants (all guarded by wq's guard).  writer != NULL implies
 * readers == 0.  nwriters (nreaders) counts the writers (readers) that
 * queued and have neither been handed the lock nor left: the entries on wq
 * (rq) plus those a waker popped but could not claim because their park had
 * just ended; such a waiter counts itself out when it takes the guard back.
 * (Counting it out at the pop as well was a double decrement, found by the
 * microsecond-deadline stress test.)  Entries on rq exist only while a
 * writer holds or waits.  Entries on wq exist only while the lock is held.
 */
#include <errno.h>
#include <stdlib.h>

#include "../park/park.h"
#include "weft/sync.h"

struct weft_rwlock {
    weft__waitq wq;        /* waiting writers; its guard guards everything */
    weft__waitq rq;        /* waiting readers; list only, guard unused */
    long readers;          /* readers inside */
    int nwriters;          /* writers waiting (see Invariants) */
    int nreaders;          /* readers waiting (see Invariants) */
    weft__waiter *writer;  /* the writer inside, or NULL */
};

int weft_rwlock_create(weft_rwlock **out)
{
    weft_rwlock *self = calloc(1, sizeof *self);

    if (!self)
        return -ENOMEM;
    self->wq = (weft__waitq)WEFT__WAITQ_INIT;
    self->rq = (weft__waitq)WEFT__WAITQ_INIT;
    *out = self;
    return 0;
}

int weft_rwlock_destroy(weft_rwlock *self)
{
    bool busy;

    weft__waitq_lock(&self->wq);
    busy = self->readers != 0 || self->writer != NULL ||
           self->nwriters != 0 || self->nreaders != 0;
    weft__waitq_unlock(&self->wq);
    if (busy)
        return -EBUSY;
    free(self);
    return 0;
}

/* Admit every queued reader.  Guard held. */
static void admit_readers(weft_rwlock *self)
{
    weft__wait_entry *e;

    while ((e = weft__waitq_pop(&self->rq)) != NULL) {
        if (weft__wake(e, 0)) {
            self->nreaders--;
            self->readers++;
        }
    }
}

/* Hand the free lock to the first waiting writer that is still there.
 * Guard held.  Returns false if none was. */
static bool admit_writer(weft_rwlock *self)
{
    weft__wait_entry *e;

    while ((e = weft__waitq_pop(&self->wq)) != NULL) {
        self->writer = e->waiter;
        if (weft__wake(e, 0)) {
            self->nwriters--;
            return true;
        }
        self->writer = NULL;
    }
    return false;
}

/* Park on rq.  Guard held on entry; released on return. */
static int read_wait(weft_rwlock *self, int64_t deadline)
{
    weft__waiter *me = weft__self();
    weft__wait_entry e;
    int rc;

    self->nreaders++;
    weft__wait_prepare(me, "rwlock read", self);
    weft__waitq_push(&self->rq, &e, me);
    weft__waitq_unlock(&self->wq);
    rc = weft__park(me, deadline);
    if (rc != 0) {
        weft__waitq_lock(&self->wq);
        weft__waitq_remove(&self->rq, &e);
        self->nreaders--;
        weft__waitq_unlock(&self->wq);
    }
    return rc; /* 0: the waker counted us in readers */
}

static bool read_allowed(const weft_rwlock *self)
{
    return self->writer == NULL && self->nwriters == 0;
}

int weft_rwlock_read_acquire(weft_rwlock *self, int64_t deadline)
{
    weft__waitq_lock(&self->wq);
    if (read_allowed(self)) {
        self->readers++;
        weft__waitq_unlock(&self->wq);
        return 0;
    }
    if (self->writer == weft__self()) {
        weft__waitq_unlock(&self->wq);
        return -EDEADLK;
    }
    if (deadline == WEFT_NOW) {
        weft__waitq_unlock(&self->wq);
        return -ETIMEDOUT;
    }
    return read_wait(self, deadline);
}

int weft_rwlock_read_try(weft_rwlock *self)
{
    int rc = weft_rwlock_read_acquire(self, WEFT_NOW);
    return rc == -ETIMEDOUT ? -EAGAIN : rc;
}

int weft_rwlock_read_release(weft_rwlock *self)
{
    weft__waitq_lock(&self->wq);
    if (self->readers == 0) {
        weft__waitq_unlock(&self->wq);
        return -EPERM;
    }
    if (--self->readers == 0 && !admit_writer(self))
        /* Every waiting writer had just left: they may have been holding
         * readers back. */
        admit_readers(self);
    weft__waitq_unlock(&self->wq);
    return 0;
}

/* Park on wq as a writer.  Guard held on entry; released on return. */
static int write_wait(weft_rwlock *self, int64_t deadline)
{
    weft__wait_entry e;
    int rc;

    self->nwriters++;
    rc = weft__wait_on(&self->wq, &e, false, deadline, "rwlock write", self);
    if (rc == 0)
        return 0; /* the waker made us the writer */
    /* Guard held, entry unlinked.  If we were the last waiting writer and
     * no writer is inside, the readers we held back may go now.  (A free
     * lock with writers still queued is not expected; the first check
     * makes sure it cannot strand them.) */
    self->nwriters--;
    if (self->writer == NULL && self->readers == 0 && admit_writer(self)) {
        weft__waitq_unlock(&self->wq);
        return rc;
    }
    if (self->writer == NULL && self->nwriters == 0)
        admit_readers(self);
    weft__waitq_unlock(&self->wq);
    return rc;
}

int weft_rwlock_write_acquire(weft_rwlock *self, int64_t deadline)
{
    weft__waiter *me = weft__self();

    weft__waitq_lock(&self->wq);
    if (self->writer == me) {
        weft__waitq_unlock(&self->wq);
        return -EDEADLK;
    }
    if (self->writer == NULL && self->readers == 0 &&
        weft__waitq_empty(&self->wq)) {
        self->writer = me;
        weft__waitq_unlock(&self->wq);
        return 0;
    }
    if (deadline == WEFT_NOW) {
        weft__waitq_unlock(&self->wq);
        return -ETIMEDOUT;
    }
    return write_wait(self, deadline);
}

int weft_rwlock_write_try(weft_rwlock *self)
{
    int rc = weft_rwlock_write_acquire(self, WEFT_NOW);
    return rc == -ETIMEDOUT ? -EAGAIN : rc;
}

int weft_rwlock_write_release(weft_rwlock *self)
{
    weft__waitq_lock(&self->wq);
    if (self->writer != weft__self()) {
        weft__waitq_unlock(&self->wq);
        return -EPERM;
    }
    self->writer = NULL;
    if (!weft__waitq_empty(&self->rq))
        admit_readers(self);
    if (self->readers == 0 && !admit_writer(self))
        admit_readers(self);
    weft__waitq_unlock(&self->wq);
    return 0;
}
