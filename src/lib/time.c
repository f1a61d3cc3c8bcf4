/* time.c - deadlines (weft/time.h) over the platform's monotonic clock. */
#include <errno.h>

#include "../park/park.h"
#include "../platform/platform.h"
#include "weft/time.h"

int64_t weft_now(void)
{
    return weft__clock_now();
}

int64_t weft_deadline_in(int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return WEFT_FOREVER;
    int64_t now = weft__clock_now();
    if (timeout_ns > INT64_MAX - now)
        return INT64_MAX;
    return now + timeout_ns;
}

int64_t weft_deadline_ms(int64_t timeout_ms)
{
    if (timeout_ms < 0)
        return WEFT_FOREVER;
    if (timeout_ms > INT64_MAX / WEFT_NSEC_PER_MSEC)
        return INT64_MAX;
    return weft_deadline_in(timeout_ms * WEFT_NSEC_PER_MSEC);
}

/* NaN compares false with everything and converting it to an integer is
 * undefined: it means "do not wait" (WEFT_NOW), never forever. */
int64_t weft_deadline_sec(double timeout_s)
{
    if (timeout_s != timeout_s)
        return WEFT_NOW;
    if (timeout_s < 0)
        return WEFT_FOREVER;
    if (timeout_s >= 9.2e9)
        return INT64_MAX;
    return weft_deadline_in((int64_t)(timeout_s * 1e9));
}

int64_t weft_remaining(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t left = deadline - weft__clock_now();
    return left > 0 ? left : 0;
}

/* Sleeping is parking with nobody to wake us: the deadline ends it, or a
 * cancellation does.  Green threads get this for free through park. */
int weft_sleep_until(int64_t deadline)
{
    weft__waiter *w = weft__self();
    weft__wait_prepare(w, "sleep", NULL);
    int rc = weft__park(w, deadline);
    if (rc == -ETIMEDOUT || rc == 0)
        return 0;
    return rc;
}
