/* green_sleepers.c - 100,000 green threads sleeping at once.
 *
 * Each green thread sleeps until one common deadline a second away, then
 * counts itself; main waits for all of them with weft_runtime_shutdown.
 * With 64 KiB guarded stacks carved from large mappings, 100,000 sleepers
 * cost a few hundred MiB of address space per thousand and only the pages
 * they touch; an OS thread each would need 800 GiB of virtual stack.
 *
 * Usage: green_sleepers [count] [sleep_ms]   (default 100000 and 1000)
 * Prints one line: how many slept, how long it took, and the resident
 * memory per green thread.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"

static _Atomic long woke;
static int64_t wake_at;

static int sleeper(void *arg)
{
    (void)arg;
    if (weft_green_sleep_until(wake_at) != 0)
        return 1;
    if (weft_now() < wake_at)
        return 2; /* woke early: never */
    atomic_fetch_add(&woke, 1);
    return 0;
}

/* Resident set size in KiB, from /proc/self/status. */
static long rss_kib(void)
{
    char line[256];
    long kib = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
    long ms = argc > 2 ? strtol(argv[2], NULL, 10) : 1000;
    long before = rss_kib(), peak = 0;
    int rc;

    if (n <= 0 || ms < 0) {
        fprintf(stderr, "usage: %s [count] [sleep_ms]\n", argv[0]);
        return 2;
    }
    int64_t t0 = weft_now();
    wake_at = weft_deadline_ms(ms);
    for (long i = 0; i < n; i++) {
        rc = weft_green_spawn(NULL, sleeper, NULL, NULL);
        if (rc != 0) {
            fprintf(stderr, "spawn %ld failed: %s\n", i, weft_strerror(rc));
            return 1;
        }
    }
    peak = rss_kib();
    rc = weft_runtime_shutdown(weft_deadline_ms(ms + 60000));
    if (rc != 0) {
        fprintf(stderr, "shutdown: %s\n", weft_strerror(rc));
        return 1;
    }
    printf("%ld of %ld green threads slept %ld ms at once; took %.0f ms; "
           "%.2f KiB resident per green thread\n",
           (long)woke, n, ms, (double)(weft_now() - t0) / 1e6,
           (double)(peak - before) / (double)n);
    return woke == n ? 0 : 1;
}
