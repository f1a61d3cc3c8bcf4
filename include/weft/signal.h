/* weft/signal.h - receiving signals in a green thread (or an OS thread)
 * as ordinary blocking calls, through the netpoller.
 *
 *     weft_signal_watch(SIGINT);
 *     weft_signal_watch(SIGTERM);
 *     sigset_t set; sigemptyset(&set); sigaddset(&set, SIGINT); ...
 *     int sig = weft_signal_wait(&set, WEFT_FOREVER);  // parks
 *
 * Watching a signal installs a small handler for it (the previous action is
 * kept and restored by unwatch) that counts the delivery and writes a byte
 * to a pipe the poller watches, so a green thread waiting for it is woken
 * like one waiting for a socket, and its worker runs other green threads
 * meanwhile.  Deliveries are counted, not queued with their details: N
 * deliveries of one signal before anyone waits are N returns of wait (the
 * kernel itself merges deliveries of a standard signal that arrive while
 * it is pending).  No signal mask needs changing in any thread.
 * Watching SIGQUIT replaces the dump handler of weft_dump_on_sigquit.
 */
#ifndef WEFT_SIGNAL_H
#define WEFT_SIGNAL_H

#include <signal.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Start counting deliveries of signo.  0, -EINVAL (not a signal that can
 * be caught: SIGKILL, SIGSTOP, out of range), -EALREADY if it is watched
 * already, or an error from creating the pipe. */
int weft_signal_watch(int signo);

/* Stop: restore the action signo had before watch, drop its count.  0 or
 * -EINVAL (not watched). */
int weft_signal_unwatch(int signo);

/* Wait for a delivery of one of the watched signals in set and consume
 * it: returns its number (> 0), -ETIMEDOUT, -ECANCELED, or -EINVAL (set
 * NULL or holding no watched signal).  Several waiters may wait at once;
 * each delivery goes to one of the waiters whose set holds it. */
int weft_signal_wait(const sigset_t *set, int64_t deadline);

/* Raise-safe check without waiting: how many deliveries of signo are
 * counted and not yet consumed (0 if not watched). */
long weft_signal_pending(int signo);

#ifdef __cplusplus
}
#endif
#endif
