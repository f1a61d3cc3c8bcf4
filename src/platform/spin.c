/* spin.c - how long to spin before sleeping, in iterations of cpu_relax.
 *
 * Spinning budgets are meant in time (a wake-up through the kernel costs
 * tens of microseconds here, so spinning a few microseconds first pays),
 * but one cpu_relax costs anything from 1 to 60 ns depending on the CPU
 * (AMD's recent cores make PAUSE very long).  So the cost of one relax is
 * measured once at start-up and the budgets are converted to iteration
 * counts.  WEFT_SPIN_NS, WEFT_LOCK_SPIN_NS and WEFT_HANDOFF_SPIN_NS override
 * the defaults (for benchmarks); 0 disables spinning.
 */
#include "platform.h"

#include <sched.h>
#include <stdlib.h>

#define PARK_SPIN_NS_DEFAULT 4000
#define LOCK_SPIN_NS_DEFAULT 1000
#define HANDOFF_SPIN_NS_DEFAULT 50000

unsigned weft__park_spin_iters = 100;
unsigned weft__lock_spin_iters = 25;
unsigned weft__handoff_spin_iters = 1000;

static long env_ns(const char *name, long dflt)
{
    const char *s = getenv(name);
    if (s == NULL || *s == '\0')
        return dflt;
    long v = strtol(s, NULL, 10);
    return v < 0 ? dflt : v;
}

/* ns is capped at 1 s first: ns * 1000 must not overflow (the result is
 * capped far below what 1 s gives anyway). */
#define SPIN_NS_MAX 1000000000L

static unsigned iters_for(long ns, int64_t relax_ps)
{
    if (ns > SPIN_NS_MAX)
        ns = SPIN_NS_MAX;
    int64_t n = (int64_t)ns * 1000 / relax_ps;
    if (ns > 0 && n < 1)
        n = 1;
    return n > 1000000 ? 1000000u : (unsigned)n;
}

__attribute__((constructor)) static void spin_init(void)
{
    enum { N = 2000 };
    int64_t t0 = weft__clock_now();
    for (int i = 0; i < N; i++)
        weft__cpu_relax();
    int64_t ps = (weft__clock_now() - t0) * 1000 / N;
    if (ps < 100)
        ps = 100; /* a relax that is nearly free: assume 0.1 ns */
    weft__park_spin_iters = iters_for(env_ns("WEFT_SPIN_NS", PARK_SPIN_NS_DEFAULT), ps);
    weft__lock_spin_iters = iters_for(env_ns("WEFT_LOCK_SPIN_NS", LOCK_SPIN_NS_DEFAULT), ps);
    weft__handoff_spin_iters = iters_for(env_ns("WEFT_HANDOFF_SPIN_NS", HANDOFF_SPIN_NS_DEFAULT), ps);
}

void weft__spin_step(unsigned i)
{
    if (i >= weft__park_spin_iters && (i & 31) == 0)
        sched_yield();
    else
        weft__cpu_relax();
}
