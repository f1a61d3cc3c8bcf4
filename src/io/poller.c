/* poller.c - placeholder until the netpoller lands: nobody waits on it. */
#include "io/poller.h"

long weft__poller_waiters(void)
{
    return 0;
}
