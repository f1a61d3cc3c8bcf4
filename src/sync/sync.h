/* sync.h - the sync layer's internal interface: what conditions need from
 * locks and rlocks beyond the public API.
 */
#ifndef WEFT_SYNC_INTERNAL_H
#define WEFT_SYNC_INTERNAL_H

#include "weft/sync.h"

/* Release a lock held by the caller without the owner check (the caller has
 * already checked). */
void weft__lock_release_unchecked(weft_lock *self);

/* Re-acquire a lock after a condition wait: waits as long as it takes and
 * ignores cancellation meanwhile (a cancelled green thread's condition wait
 * still returns with the lock held; the cancellation stays pending and is
 * seen at the next park). */
void weft__lock_reacquire(weft_lock *self);

#endif
