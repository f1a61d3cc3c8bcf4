/* weft/debug.h - introspection: a dump of every thread and green thread,
 * on demand and on SIGQUIT, and the deadlock report.
 *
 * The dump lists each weft OS thread and each live green thread: its name,
 * id, state (running, runnable, parked...), what it waits on (for example
 * "lock 0x55d0... ", "queue get", "fd 7 readable", "sleep"), for how long,
 * and for a green thread where it was spawned (file:line).
 *
 * The deadlock report.  When every green thread is parked with no
 * deadline, no timer, no I/O and no OS thread left that could wake it (every
 * weft OS thread that is not a worker is parked without a deadline too),
 * nothing can ever make progress: Go reports "all goroutines are asleep -
 * deadlock!".  weft's monitor notices this state within about a switch
 * interval, logs a report at error level naming who waits on what, and
 * passes it to the deadlock hook if one is set.  One report per deadlock:
 * it is reported again only after some progress has been made.  The
 * environment variable WEFT_DEADLOCK=abort makes weft abort after the
 * report (as Go exits), =off disables the check.
 */
#ifndef WEFT_DEBUG_H
#define WEFT_DEBUG_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Write the dump to f (a snapshot: threads may change state while it is
 * taken; each line is consistent).  0 or a negative errno code. */
int weft_dump(FILE *f);

/* Install (on != 0) or remove a SIGQUIT handler that makes weft's monitor
 * write the dump to stderr (the handler itself only wakes the monitor, so
 * it is async-signal-safe).  0 or a negative errno code. */
int weft_dump_on_sigquit(int on);

/* Called on weft's monitor thread with the deadlock report (a
 * NUL-terminated multi-line text, valid during the call).  It may wake the
 * deadlocked threads (fill a queue, cancel a green thread) to resolve the
 * deadlock.  NULL removes the hook. */
typedef void (*weft_deadlock_hook)(const char *report, void *arg);
void weft_set_deadlock_hook(weft_deadlock_hook hook, void *arg);

#ifdef __cplusplus
}
#endif
#endif
