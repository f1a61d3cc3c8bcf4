/* weft/time.h - deadlines.
 *
 * Every blocking call in weft takes, as its last argument, an absolute
 * deadline in nanoseconds of the monotonic clock (CLOCK_MONOTONIC):
 *
 *   WEFT_FOREVER   wait as long as it takes
 *   0 (WEFT_NOW)   do not wait at all: the call fails with -ETIMEDOUT if it
 *                  cannot complete at once (the _try/_nowait forms turn
 *                  that into -EAGAIN)
 *   any other      wait until weft_now() reaches it, then -ETIMEDOUT
 *
 * A deadline, unlike a timeout, survives retries and spurious wake-ups:
 * code that waits in a loop keeps one deadline and never recomputes it.
 * The helpers below turn relative timeouts into deadlines.
 */
#ifndef WEFT_TIME_H
#define WEFT_TIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_FOREVER ((int64_t)-1)
#define WEFT_NOW ((int64_t)0)

#define WEFT_NSEC_PER_USEC INT64_C(1000)
#define WEFT_NSEC_PER_MSEC INT64_C(1000000)
#define WEFT_NSEC_PER_SEC INT64_C(1000000000)

/* Nanoseconds of the monotonic clock.  Never 0 or negative. */
int64_t weft_now(void);

/* The deadline timeout_ns from now; a negative timeout means forever.
 * Saturates instead of overflowing. */
int64_t weft_deadline_in(int64_t timeout_ns);

/* The same, in milliseconds and in (floating) seconds, as Python writes
 * timeouts.  weft_deadline_ms(-1) and weft_deadline_sec(-1) are forever:
 * only a negative timeout means forever.  weft_deadline_sec(NAN) is WEFT_NOW
 * (do not wait): a NaN is more likely a bug than a wish to wait for ever.
 * Infinity saturates like any huge timeout. */
int64_t weft_deadline_ms(int64_t timeout_ms);
int64_t weft_deadline_sec(double timeout_s);

/* Nanoseconds left until deadline: 0 if it has passed, -1 if forever. */
int64_t weft_remaining(int64_t deadline);

/* Sleep the calling OS thread until deadline (a green thread, later, parks
 * instead).  Returns 0, or -ECANCELED in a cancelled green thread. */
int weft_sleep_until(int64_t deadline);

#ifdef __cplusplus
}
#endif
#endif
