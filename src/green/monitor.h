/* monitor.h - the monitor thread's interface to the rest of weft.
 *
 * The monitor is one OS thread, started on demand, that wakes about every
 * millisecond while the green runtime runs (and rarely when it is idle) to
 * watch the workers, and calls weft__debug_poll (src/debug/debug.h) at each
 * round so that the dump on SIGQUIT and the deadlock check run there.
 */
#ifndef WEFT_MONITOR_H
#define WEFT_MONITOR_H

/* Start the monitor thread if it is not running.  0 or a negative errno
 * code.  Any thread. */
int weft__monitor_ensure(void);

/* Make the monitor run a round now.  Async-signal-safe (a signal handler
 * calls it). */
void weft__monitor_kick(void);

#endif
