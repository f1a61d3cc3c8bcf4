/* process_crash.c - a process pool whose tasks crash while the others
 * complete (Python's ProcessPoolExecutor breaks for good when one worker
 * dies; multiprocessing.Pool hangs).
 *
 * A pool of 4 workers runs 20 tasks.  Most square a number; some crash on
 * purpose: a SIGSEGV, a SIGKILL of the worker by itself, an exit(3), and an
 * endless loop under a 300 ms timeout.  Every task's outcome is printed:
 * the failed ones by name and reason (which worker, which signal or exit
 * code).  Then the same pool runs 10 more tasks, to show it still works,
 * and after destroy the program counts its child processes: none may be
 * left.
 *
 * Exit code 0 iff every healthy task gave the right answer, every crashing
 * one failed with the right code, the pool worked afterwards and no child
 * process is left.
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "weft.h"

static int square(const void *in, size_t len, weft_bytes *out)
{
    weft_bytes_reader r;
    int64_t x;
    weft_bytes_reader_init(&r, in, len);
    if (weft_bytes_get_i64(&r, &x) != 0)
        return weft_process_fail(-EINVAL, "want an int64");
    return weft_bytes_put_i64(out, x * x);
}

static int segfault(const void *in, size_t len, weft_bytes *out)
{
    volatile int *p = NULL;
    (void)*p; /* a real fault, not raise(): the kernel sends SIGSEGV */
    raise(SIGSEGV);
    return 0;
}

static int self_kill(const void *in, size_t len, weft_bytes *out)
{
    raise(SIGKILL);
    return 0;
}

static int exit3(const void *in, size_t len, weft_bytes *out)
{
    _exit(3);
}

static int forever(const void *in, size_t len, weft_bytes *out)
{
    volatile unsigned long n = 0;
    for (;;)
        n++;
    return 0;
}

/* Children of this process, from /proc (every thread's list). */
static int children(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)) != NULL) {
        char path[300];
        FILE *f;
        int c;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
        if ((f = fopen(path, "r")) == NULL)
            continue;
        while (fscanf(f, "%d", &c) == 1)
            n++;
        fclose(f);
    }
    if (d)
        closedir(d);
    return n;
}

enum { N = 20, AFTER = 10 };

int main(void)
{
    weft_process_pool_opts opts = {0};
    weft_process_pool *pool;
    weft_future *f[N];
    const char *name[N];
    int wrong = 0, ok = 0, failed = 0;

    weft_process_register("square", square);
    weft_process_register("segfault", segfault);
    weft_process_register("self_kill", self_kill);
    weft_process_register("exit3", exit3);
    weft_process_register("forever", forever);
    opts.max_workers = 4;
    if (weft_process_pool_create(&pool, &opts) != 0)
        return 1;
    for (int i = 0; i < N; i++) {
        int64_t x = i, timeout = 0;
        name[i] = i == 3 ? "segfault" : i == 7 ? "self_kill"
                : i == 11 ? "exit3" : i == 15 ? "forever" : "square";
        if (i == 15)
            timeout = 300 * WEFT_NSEC_PER_MSEC;
        if (weft_process_pool_submit(pool, name[i], &x, sizeof x, timeout,
                                     &f[i], WEFT_FOREVER) != 0)
            return 1;
    }
    for (int i = 0; i < N; i++) {
        void *v;
        int rc = weft_future_result(f[i], &v, WEFT_FOREVER);
        bool healthy = strcmp(name[i], "square") == 0;
        if (rc == 0) {
            int64_t y;
            memcpy(&y, v, sizeof y);
            printf("task %2d %-9s -> %lld\n", i, name[i], (long long)y);
            wrong += !healthy || y != (int64_t)i * i;
            ok++;
        } else {
            int code = 0;
            const char *msg = "";
            weft_future_error(f[i], &code, &msg, WEFT_NOW);
            printf("task %2d %-9s FAILED %s: %s\n", i, name[i],
                   weft_errname(code), msg);
            wrong += healthy ||
                     code != (strcmp(name[i], "forever") == 0 ? -ETIMEDOUT
                                                               : WEFT_EWORKER);
            failed++;
        }
        weft_future_release(f[i]);
    }
    printf("%d tasks completed, %d failed alone\n", ok, failed);

    /* the pool goes on */
    for (int i = 0; i < AFTER; i++) {
        int64_t x = 100 + i, y;
        weft_future *g;
        void *v;
        if (weft_process_pool_submit(pool, "square", &x, sizeof x, 0, &g,
                                     WEFT_FOREVER) != 0 ||
            weft_future_result(g, &v, WEFT_FOREVER) != 0) {
            wrong++;
        } else {
            memcpy(&y, v, sizeof y);
            wrong += y != x * x;
        }
        weft_future_release(g);
    }
    printf("the pool still works: %d more tasks done\n", AFTER);
    weft_process_pool_destroy(pool);
    int left = children();
    printf("child processes left after destroy: %d\n", left);
    wrong += left != 0;
    printf("%s\n", wrong ? "FAILED" : "OK: every crash failed only its task");
    return wrong ? 1 : 0;
}
