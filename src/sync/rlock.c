/* rlock.c - weft_rlock: a reentrant lock, a weft_lock plus a recursion count.
 *
 * Design.  The inner weft_lock is held exactly while count > 0, and its
 * owner field is the rlock's owner.  The owner re-acquires by bumping count
 * without touching the inner lock; everybody else goes through
 * weft_lock_acquire, so the rlock inherits the lock's spinning, parking,
 * barging and hand-off policy for free.
 *   (Rejected: a separate owner word and wait queue of its own.  It would
 *   duplicate lock.c's fairness logic, and conditions bound to an rlock could
 *   no longer release and re-acquire it through the lock's internal helpers.)
 *
 * Invariants.  count > 0 iff the inner lock is held by an rlock acquire;
 * count is read and written by the owner only (ownership passes through the
 * inner lock's acquire/release, which orders the accesses).
 */
#include <errno.h>

#include "../park/park.h"
#include "sync.h"

void weft_rlock_init(weft_rlock *self)
{
    weft_lock_init(&self->lock);
    self->count = 0;
}

int weft_rlock_fini(weft_rlock *self)
{
    return weft_lock_fini(&self->lock);
}

/* The owner's re-entry: only ever called by the owner. */
static int reenter(weft_rlock *self)
{
    if (self->count == UINT32_MAX)
        return -EOVERFLOW;
    self->count++;
    return 0;
}

int weft_rlock_acquire(weft_rlock *self, int64_t deadline)
{
    int rc;

    if (weft_lock_held(&self->lock))
        return reenter(self);
    rc = weft_lock_acquire(&self->lock, deadline);
    if (rc == 0)
        self->count = 1;
    return rc;
}

int weft_rlock_try(weft_rlock *self)
{
    int rc;

    if (weft_lock_held(&self->lock))
        return reenter(self);
    rc = weft_lock_try(&self->lock);
    if (rc == 0)
        self->count = 1;
    return rc;
}

int weft_rlock_release(weft_rlock *self)
{
    if (!weft_lock_held(&self->lock))
        return -EPERM;
    if (--self->count > 0)
        return 0;
    return weft_lock_release(&self->lock);
}

bool weft_rlock_locked(const weft_rlock *self)
{
    return weft_lock_locked(&self->lock);
}

uint32_t weft_rlock_level(const weft_rlock *self)
{
    return weft_lock_held(&self->lock) ? self->count : 0;
}
