/* bench_process.c - process-pool tasks per second on a trivial task (echo
 * 8 bytes back), one at a time (submit, wait, repeat) and in a batch
 * (submit 10,000, then await all; WEFT_BENCH_SCALE scales it), against
 * CPython's concurrent.futures.ProcessPoolExecutor with the same number of
 * workers (bench/anchors/process_pool.py prints the same keys as
 * "python").  The pool is created once, outside the timing, and its
 * workers are started by a warm-up batch, as Python's are.
 */
#include "bench.h"
#include "weft.h"

static int echo(const void *in, size_t len, weft_bytes *out)
{
    return weft_bytes_append(out, in, len);
}

static double one_at_a_time(weft_process_pool *p, long n)
{
    int64_t t0 = bench_now();
    for (long i = 0; i < n; i++) {
        weft_future *f;
        if (weft_process_pool_submit(p, "echo", "12345678", 8, 0, &f,
                                     WEFT_FOREVER) != 0 ||
            weft_future_result(f, NULL, WEFT_FOREVER) != 0)
            bench_fail("process pool task failed");
        weft_future_release(f);
    }
    return (double)n / ((double)(bench_now() - t0) / 1e9);
}

static double batch(weft_process_pool *p, long n)
{
    weft_future **fs = malloc((size_t)n * sizeof *fs);
    int64_t t0;
    if (fs == NULL)
        bench_fail("out of memory");
    t0 = bench_now();
    for (long i = 0; i < n; i++)
        if (weft_process_pool_submit(p, "echo", "12345678", 8, 0, &fs[i],
                                     WEFT_FOREVER) != 0)
            bench_fail("submit failed");
    for (long i = 0; i < n; i++) {
        if (weft_future_result(fs[i], NULL, WEFT_FOREVER) != 0)
            bench_fail("process pool task failed");
        weft_future_release(fs[i]);
    }
    double r = (double)n / ((double)(bench_now() - t0) / 1e9);
    free(fs);
    return r;
}

int main(void)
{
    int reps = bench_reps();
    long n_one = bench_scaled(2000, 100), n_batch = bench_scaled(10000, 500);
    weft_process_pool_opts o = {0};
    weft_process_pool *p;
    double one[16], bat[16];
    long cores = sysconf(_SC_NPROCESSORS_ONLN);

    if (reps > 16)
        reps = 16;
    o.max_workers = cores > 0 ? (int)cores : 1;
    if (weft_process_register("echo", echo) != 0)
        bench_fail("register failed");
    if (weft_process_pool_create(&p, &o) != 0)
        bench_fail("pool create failed");
    batch(p, 200); /* start the workers */
    printf("# process pool, %d workers: echo 8 bytes; %ld one at a time, "
           "%ld in a batch\n", o.max_workers, n_one, n_batch);
    for (int r = 0; r < reps; r++) {
        one[r] = one_at_a_time(p, n_one);
        bat[r] = batch(p, n_batch);
    }
    bench_report("process_pool_one", "weft", one, reps, "tasks/s", "higher");
    bench_report("process_pool_batch", "weft", bat, reps, "tasks/s",
                 "higher");
    weft_process_pool_destroy(p);
    return 0;
}
