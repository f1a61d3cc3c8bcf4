/* fence.c - asymmetric memory fences: a nearly free "light" fence for the
 * hot side of a Dekker-style handshake and an expensive "heavy" one for the
 * cold side.
 *
 * Why: a lock's release must notice a waiter that is about to sleep.  The
 * textbook way is an atomic read-modify-write (or a full fence) in every
 * release, and on the machines we run on one locked instruction costs about
 * 5.5 ns - as much as the whole rest of an uncontended lock/unlock pair.
 * With membarrier(2) the waiter, which is about to sleep anyway (tens of
 * microseconds), pays instead: its heavy fence makes every running thread of
 * the process execute a full memory barrier, so the releaser needs only a
 * compiler barrier between its store and its load.  This is the technique of
 * liburcu and of Folly's asymmetric fences.
 *
 * If membarrier's private expedited command cannot be registered (an old
 * kernel, seccomp, Valgrind), both fences are full fences: correct, only
 * slower on the hot side.  The choice is made once, before main, and never
 * changes, so the two sides always agree.
 */
#include "platform.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

int weft__membarrier_ok;

static long membarrier(int cmd)
{
    return syscall(SYS_membarrier, cmd, 0, 0);
}

__attribute__((constructor)) static void fence_init(void)
{
    long cmds = membarrier(MEMBARRIER_CMD_QUERY);
    if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED))
        return;
    if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0)
        return;
    weft__membarrier_ok = 1;
}

void weft__fence_heavy(void)
{
    if (weft__membarrier_ok &&
        membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0)
        return;
    weft__full_fence();
}
