/* monitor.c - placeholder until the monitor lands: nothing watches the
 * workers yet, so ensure succeeds and kick has nobody to wake. */
#include "green/monitor.h"

int weft__monitor_ensure(void)
{
    return 0;
}

void weft__monitor_kick(void)
{
}
