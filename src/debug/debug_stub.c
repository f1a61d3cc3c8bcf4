/* debug_stub.c - placeholder until the dump and the deadlock report land. */
#include "debug/debug.h"

void weft__debug_poll(int64_t now)
{
    (void)now;
}
