/* green_ctrl_c.c - a program that stops cleanly on Ctrl-C while a green
 * thread computes.
 *
 * One green thread counts primes in a loop that never blocks; another
 * waits for SIGINT or SIGTERM with weft_signal_wait, which parks it on the
 * poller like a socket read, so its worker is free for the computation
 * meanwhile.  When the signal comes, the waiter sets the stop flag, the
 * computation returns, and main reports and exits 0: no handler doing work
 * in signal context, no lost signal, no thread killed in the middle of
 * something.  (A CPython program would get KeyboardInterrupt only in the
 * main thread, and only between bytecodes.)
 *
 * Usage: green_ctrl_c [self]
 *   Prints "ready" when it is waiting; stop it with Ctrl-C (or kill -TERM).
 *   With "self" it sends itself SIGINT a moment after it is ready (for the
 *   demonstration).  It gives up by itself after 60 seconds.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "weft.h"

static _Atomic int stop;
static _Atomic long primes;

static int compute(void *arg)
{
    (void)arg;
    for (long n = 2; !atomic_load_explicit(&stop, memory_order_relaxed);
         n++) {
        long d = 2;
        while (d * d <= n && n % d != 0)
            d++;
        if (d * d > n)
            atomic_fetch_add_explicit(&primes, 1, memory_order_relaxed);
    }
    return 0;
}

static int wait_for_signal(void *arg)
{
    sigset_t set;
    (void)arg;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    printf("ready: computing; press Ctrl-C to stop\n");
    fflush(stdout);
    int sig = weft_signal_wait(&set, weft_deadline_in(60 * WEFT_NSEC_PER_SEC));
    atomic_store(&stop, 1);
    return sig;
}

static void send_sigint(void *arg)
{
    (void)arg;
    kill(getpid(), SIGINT);
}

int main(int argc, char **argv)
{
    weft_green *computer, *waiter;
    weft_timer *t = NULL;
    int sig = 0;

    if (weft_signal_watch(SIGINT) != 0 || weft_signal_watch(SIGTERM) != 0) {
        fprintf(stderr, "cannot watch signals\n");
        return 1;
    }
    if (weft_green_spawn(&computer, compute, NULL, NULL) != 0 ||
        weft_green_spawn(&waiter, wait_for_signal, NULL, NULL) != 0)
        return 1;
    if (argc > 1 && strcmp(argv[1], "self") == 0)
        weft_timer_start(&t, weft_deadline_ms(200), send_sigint, NULL);
    weft_green_join(waiter, &sig, WEFT_FOREVER);
    weft_green_join(computer, NULL, WEFT_FOREVER);
    if (t != NULL)
        weft_timer_join(t, WEFT_FOREVER);
    if (sig < 0) {
        printf("no signal came: %s\n", weft_strerror(sig));
        return 1;
    }
    printf("stopped by %s after finding %ld primes\n",
           sig == SIGINT ? "SIGINT" : "SIGTERM", atomic_load(&primes));
    return 0;
}
