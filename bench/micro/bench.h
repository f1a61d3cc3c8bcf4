/* bench.h - what every micro benchmark shares: the clock, the scale, the
 * repetition count, medians, a latency histogram, a start gate for threads
 * and the one output format that tools/run-bench.sh reads.
 *
 * Method.  The machines we measure on are shared and noisy, so no single
 * timing means much.  Every benchmark runs weft and its anchor (the same
 * work written with pthreads) several times in the same process, alternating
 * which goes first in each repetition (weft, anchor, anchor, weft, ...), and
 * reports the median of each and their ratio.  Absolute figures move from run
 * to run; the ratios move much less.
 *
 * Output.  Lines starting with '#' are for people.  A line
 *     result <key> <impl> <value> <unit> <lower|higher>
 * is one median figure (<key> names the measurement, <impl> is "weft" or the
 * anchor's name; the last word says which direction is better).  The Go and
 * Python anchors print the same lines, so the runner can set them side by
 * side.
 *
 * Environment: WEFT_BENCH_SCALE multiplies the work per run (default 1.0;
 * 0.1 for a quick look); WEFT_BENCH_REPS sets the repetitions (default 5).
 *
 * Everything here is static inline so that each benchmark is one
 * translation unit linked only with libweft.a, libc and pthreads.
 */
#ifndef WEFT_BENCH_H
#define WEFT_BENCH_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline int64_t bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline double bench_scale(void)
{
    const char *s = getenv("WEFT_BENCH_SCALE");
    double v = s && *s ? strtod(s, NULL) : 1.0;
    return v > 0 ? v : 1.0;
}

static inline int bench_reps(void)
{
    const char *s = getenv("WEFT_BENCH_REPS");
    int v = s && *s ? atoi(s) : 5;
    return v >= 1 ? v : 1;
}

/* n scaled by WEFT_BENCH_SCALE, at least min. */
static inline long bench_scaled(long n, long min)
{
    double v = (double)n * bench_scale();
    return v < (double)min ? min : (long)v;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of v[0..n) (v is sorted in place). */
static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Print one result line (see the top of this file) and its human form. */
static inline void bench_result(const char *key, const char *impl,
                                double value, const char *unit,
                                const char *better)
{
    printf("result %s %s %.6g %s %s\n", key, impl, value, unit, better);
}

/* Print the median of v for impl, with the spread of the repetitions. */
static inline double bench_report(const char *key, const char *impl,
                                  double *v, int n, const char *unit,
                                  const char *better)
{
    double med = bench_median(v, n);
    printf("#   %-10s median %10.4g %-8s (min %.4g, max %.4g, %d runs)\n",
           impl, med, unit, v[0], v[n - 1], n);
    bench_result(key, impl, med, unit, better);
    return med;
}

/* ---- latency histogram --------------------------------------------------
 * Log-linear buckets: values below 8 ns exactly, then 8 buckets per power
 * of two, so a percentile read from it is within 12.5% of the truth.  The
 * exact maximum is kept apart.  Recording is a few instructions, cheap
 * enough to do for every operation. */
#define BENCH_HIST_BUCKETS (8 * 48)

typedef struct bench_hist {
    uint64_t count;
    int64_t max;
    uint64_t b[BENCH_HIST_BUCKETS];
} bench_hist;

static inline int bench_hist_index(int64_t v)
{
    if (v < 8)
        return v < 0 ? 0 : (int)v;
    int e = 63 - __builtin_clzll((unsigned long long)v); /* e >= 3 */
    int i = (e - 2) * 8 + (int)((v >> (e - 3)) & 7);
    return i < BENCH_HIST_BUCKETS ? i : BENCH_HIST_BUCKETS - 1;
}

/* The smallest value that falls into bucket i. */
static inline int64_t bench_hist_low(int i)
{
    if (i < 8)
        return i;
    int e = i / 8 + 2;
    return ((int64_t)8 + (i & 7)) << (e - 3);
}

static inline void bench_hist_add(bench_hist *h, int64_t v)
{
    h->b[bench_hist_index(v)]++;
    h->count++;
    if (v > h->max)
        h->max = v;
}

static inline void bench_hist_merge(bench_hist *into, const bench_hist *h)
{
    for (int i = 0; i < BENCH_HIST_BUCKETS; i++)
        into->b[i] += h->b[i];
    into->count += h->count;
    if (h->max > into->max)
        into->max = h->max;
}

/* The value below which a fraction q of the samples lie (the upper edge of
 * the bucket holding that rank, capped by the exact maximum). */
static inline int64_t bench_hist_quantile(const bench_hist *h, double q)
{
    uint64_t rank = (uint64_t)(q * (double)h->count), seen = 0;
    if (h->count == 0)
        return 0;
    for (int i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen > rank) {
            int64_t hi = i + 1 < BENCH_HIST_BUCKETS ? bench_hist_low(i + 1)
                                                    : h->max;
            return hi < h->max ? hi : h->max;
        }
    }
    return h->max;
}

/* ---- threads -------------------------------------------------------------
 * Benchmarks start plain pthreads: every weft primitive works from any OS
 * thread, and the anchors need the same threads. */

static inline pthread_t bench_start(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    if (pthread_create(&t, NULL, fn, arg) != 0) {
        fprintf(stderr, "bench: pthread_create failed\n");
        exit(2);
    }
    return t;
}

static inline void bench_join(pthread_t t)
{
    pthread_join(t, NULL);
}

/* A one-shot start gate: each of n threads arrives and spins until all
 * have, so that timed work starts together and thread start-up is not
 * timed. */
typedef struct bench_gate {
    _Atomic int arrived;
    int n;
} bench_gate;

static inline void bench_gate_init(bench_gate *g, int n)
{
    atomic_init(&g->arrived, 0);
    g->n = n;
}

static inline void bench_gate_wait(bench_gate *g)
{
    atomic_fetch_add(&g->arrived, 1);
    while (atomic_load(&g->arrived) < g->n)
        sched_yield(); /* more threads than cores must still all arrive */
}

/* Stop the benchmark with a message (a broken run must not print figures). */
static inline void bench_fail(const char *what)
{
    fprintf(stderr, "bench: %s\n", what);
    exit(1);
}

#endif
