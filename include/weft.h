/* weft.h - the umbrella header of weft, a concurrency runtime for C.
 *
 * Conventions that hold for every function declared under weft/:
 *
 * - Errors: a function that can fail returns int, 0 on success or a negative
 *   errno-style code (weft/error.h lists them and what each means);
 *   weft_strerror(code) explains any of them.  Results come back through
 *   out-parameters.  errno is never the channel.
 * - Deadlines: every call that can block takes, as its last argument, an
 *   absolute deadline in nanoseconds of the monotonic clock: WEFT_FOREVER,
 *   WEFT_NOW (do not wait), or weft_deadline_in(ns) / weft_deadline_ms(ms)
 *   (weft/time.h).  Non-blocking forms are named _try or _nowait and return
 *   -EAGAIN where they would have waited.
 * - Misuse that Python reports with an exception (releasing a lock one does
 *   not hold, too many task_done calls, over-releasing a bounded semaphore)
 *   returns an error code and leaves the object as it was.
 * - Names: weft_<noun>_<verb>; _create/_destroy when weft allocates,
 *   _init/_fini (plus a static WEFT_..._INIT) when the caller provides the
 *   storage.
 * - The library never exits and never prints to stdout; it writes to stderr
 *   only through its logger (weft/log.h).
 */
#ifndef WEFT_H
#define WEFT_H

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0
#define WEFT_VERSION_STRING "0.1.0"

#include "weft/error.h"
#include "weft/time.h"
#include "weft/log.h"
#include "weft/thread.h"
#include "weft/sync.h"
#include "weft/queue.h"
#include "weft/green.h"
#include "weft/group.h"
#include "weft/io.h"
#include "weft/debug.h"
#include "weft/signal.h"
#include "weft/future.h"
#include "weft/executor.h"
#include "weft/process.h"

#endif
