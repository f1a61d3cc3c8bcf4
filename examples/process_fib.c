/* process_fib.c - the seed's Fibonacci computation fanned out over a
 * process pool: fib(25) .. fib(34) computed by 4 worker processes (the
 * seed's NPROCS = 4), results printed in input order with
 * weft_process_map, then checked against a serial run in this process.
 *
 * The task is a plain C function registered by name; it takes its n as an
 * int64 and returns fib(n) as an int64 (weft_bytes helpers, no hand-written
 * encoding).  Workers come from a forkserver, so this works the same from a
 * program that already runs threads.
 *
 * Exit code 0 iff every result matches the serial one.
 */
#include <stdio.h>
#include <string.h>

#include "weft.h"

static int64_t fib(int64_t n)
{
    return n <= 2 ? 1 : fib(n - 1) + fib(n - 2);
}

static int fib_task(const void *in, size_t len, weft_bytes *out)
{
    weft_bytes_reader r;
    int64_t n;
    weft_bytes_reader_init(&r, in, len);
    if (weft_bytes_get_i64(&r, &n) != 0 || n < 0 || n > 60)
        return weft_process_fail(-EINVAL, "fib wants an int64 in 0..60");
    return weft_bytes_put_i64(out, fib(n));
}

enum { LO = 25, HI = 34, N = HI - LO + 1 };

int main(void)
{
    weft_process_pool_opts opts = {0};
    weft_process_pool *pool;
    weft_process_map *m;
    weft_process_input in[N];
    int64_t ns[N], got[N];
    int64_t t0, t_pool, t_serial;
    int rc, bad = 0;

    if (weft_process_register("fib", fib_task) != 0)
        return 1;
    opts.max_workers = 4;
    rc = weft_process_pool_create(&pool, &opts);
    if (rc != 0) {
        fprintf(stderr, "pool: %s\n", weft_strerror(rc));
        return 1;
    }
    for (int i = 0; i < N; i++) {
        ns[i] = LO + i;
        in[i].data = &ns[i];
        in[i].len = sizeof ns[i];
    }
    /* largest first would balance better; input order is what map keeps */
    t0 = weft_now();
    rc = weft_process_map_start(&m, pool, "fib", in, N, 1, 0);
    if (rc != 0)
        return 1;
    for (int i = 0; i < N; i++) {
        int task_rc;
        const void *data;
        size_t len;
        rc = weft_process_map_next(m, &task_rc, &data, &len, WEFT_FOREVER);
        if (rc != 0 || task_rc != 0 || len != sizeof got[i]) {
            fprintf(stderr, "fib(%lld): %s\n", (long long)ns[i],
                    rc ? weft_strerror(rc) : (const char *)data);
            return 1;
        }
        memcpy(&got[i], data, sizeof got[i]);
        printf("fib(%lld) = %lld\n", (long long)ns[i], (long long)got[i]);
    }
    t_pool = weft_now() - t0;
    weft_process_map_end(m);
    weft_process_pool_destroy(pool);

    t0 = weft_now();
    for (int i = 0; i < N; i++) {
        int64_t want = fib(ns[i]);
        if (want != got[i]) {
            printf("MISMATCH fib(%lld): pool %lld, serial %lld\n",
                   (long long)ns[i], (long long)got[i], (long long)want);
            bad++;
        }
    }
    t_serial = weft_now() - t0;
    printf("pool of 4 processes: %.1f ms; serial in this process: %.1f ms\n",
           t_pool / 1e6, t_serial / 1e6);
    printf("%s: %d of %d results match the serial run\n",
           bad ? "FAILED" : "OK", N - bad, N);
    return bad ? 1 : 0;
}
