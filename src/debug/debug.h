/* debug.h - the debug layer's interface to the monitor thread. */
#ifndef WEFT_DEBUG_INTERNAL_H
#define WEFT_DEBUG_INTERNAL_H

#include <stdint.h>

/* Called on the monitor thread at each of its rounds (now: monotonic ns):
 * serves a pending SIGQUIT dump and runs the deadlock check. */
void weft__debug_poll(int64_t now);

#endif
