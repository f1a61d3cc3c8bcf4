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
 * weft OS thread other than the green workers and weft's own runtime
 * threads is asleep in a wait without a deadline too, the main thread
 * included even if it was never adopted), nothing can ever make progress:
 * Go reports "all goroutines are asleep - deadlock!".  weft's monitor
 * notices this state (it must hold on two looks at least 5 ms apart, with
 * no thread having left its wait in between, so a report is never made on
 * a moment's coincidence), logs a report at error level naming who waits
 * on what ("lock 0x... held by green thread 'B'", "queue get 0x...", "event
 * 0x... (join of green thread 'A')"), since when, and where each green
 * thread was spawned, and passes it to the deadlock hook if one is set.
 * One report per deadlock: it is reported again only after some progress
 * has been made.  The environment variable WEFT_DEADLOCK=abort makes weft
 * abort after the report (as Go exits), =off disables the check.
 * Blind spots: an OS thread weft has never seen (not started by weft, not
 * the main thread, never adopted through weft_thread_current or the
 * logger) cannot be seen waking a green thread, nor can a signal handler;
 * a program whose green threads wait for such a thread should adopt it or
 * set WEFT_DEADLOCK=off.
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
